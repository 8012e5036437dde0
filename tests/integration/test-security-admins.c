/* Issue 14, "admins are not devices": against a real canopyd, the shared
 * key every device holds opens no route; admins' roles, revocation,
 * expiry, the lockout and the audit behave as docs/security.md says; and
 * tokens never show where they must not. Each test fails on the console
 * that derived its token from the shared key. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/integration/site.h"
#include "server/console/console-api.h"
#include "lib/keys.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>

/* What the console used to derive its token with (canopy 0.x). */
#define OLD_CONSOLE_LABEL "canopy console token v1"

static CanopyTestSite site;

typedef struct {
  guint status;
  char *body;
} Reply;

static void
reply_clear (Reply *reply)
{
  g_free (reply->body);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Reply, reply_clear)

static gboolean
accept_any_certificate (SoupMessage *msg, GTlsCertificate *certificate,
                        GTlsCertificateFlags errors, gpointer user_data)
{
  return TRUE;
}

/* One console request to the console on @port with @token (NULL: none),
 * from @session. */
static void
call_port (SoupSession *session, guint port, const char *method, const char *path,
           const char *token, const char *body, Reply *reply)
{
  g_autofree char *uri = g_strdup_printf ("https://127.0.0.1:%u%s", port, path);
  g_autoptr (SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr (GBytes) response = NULL;
  g_autoptr (GError) error = NULL;

  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  if (token != NULL)
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", token, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                    bearer);
    }
  if (body != NULL)
    {
      g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  response = soup_session_send_and_read (session, msg, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  reply->status = soup_message_get_status (msg);
  reply->body = response != NULL ? g_strndup (g_bytes_get_data (response, NULL),
                                              g_bytes_get_size (response))
                                 : g_strdup ("");
}

static void
call_with (SoupSession *session, const char *method, const char *path, const char *token,
           const char *body, Reply *reply)
{
  call_port (session, site.console_port, method, path, token, body, reply);
}

static void
call (const char *method, const char *path, const char *token, const char *body, Reply *reply)
{
  call_with (site.session, method, path, token, body, reply);
}

/* The string member @name of the JSON object @text. */
static char *
member (const char *text, const char *name)
{
  g_autoptr (JsonNode) root = json_from_string (text, NULL);

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  return g_strdup (json_object_get_string_member_with_default (json_node_get_object (root),
                                                               name, NULL));
}

/* The site, started once for the suite; each test can run alone. */
static gboolean
site_up (void)
{
  CanopyTestSiteOptions options = { 0 };

  if (!canopy_test_site_available ())
    return FALSE;
  if (site.server == NULL)
    canopy_test_site_begin (&site, &options);
  return TRUE;
}

static char *
admin_add (const char *name, const char *role, const char *expires, char **output)
{
  char *token = canopy_test_admin_add (site.config, name, role, expires, output);

  CU_ASSERT_PTR_NOT_NULL_FATAL (token);
  return token;
}

/* The token a console derived from the shared key before admins existed. */
static char *
key_derived_token (void)
{
  g_autofree char *path = g_build_filename (site.state, "shared-key", NULL);
  g_autoptr (CanopySharedKey) key = canopy_shared_key_load (path, NULL);
  guint8 token[32];
  GString *hex = g_string_new (NULL);

  g_assert (key != NULL);
  g_assert (canopy_key_derive (key->bytes, sizeof key->bytes, OLD_CONSOLE_LABEL, NULL, 0, token,
                               sizeof token, NULL));
  for (gsize i = 0; i < sizeof token; i++)
    g_string_append_printf (hex, "%02x", token[i]);
  return g_string_free (hex, FALSE);
}

typedef struct {
  const char *token;
  guint checked;
} RouteCheck;

/* A session from 127.0.10.@n: each route's refusal from its own address,
 * so the lockout of wrong tokens does not answer 429 instead. */
static SoupSession *
session_from (guint n)
{
  g_autofree char *text = g_strdup_printf ("127.0.10.%u", n);
  g_autoptr (GInetAddress) ip = g_inet_address_new_from_string (text);
  g_autoptr (GSocketAddress) local = g_inet_socket_address_new (ip, 0);

  return soup_session_new_with_options ("timeout", 30, "local-address", local, NULL);
}

/* A concrete path for a route that takes one below it. */
static char *
concrete_path (const char *method, const char *path)
{
  if (!g_str_has_suffix (path, "/"))
    return g_strdup (path);
  return g_strconcat (path, g_str_equal (method, "POST") ? "site-admin/tokens" : "site-admin",
                      NULL);
}

static void
check_route_refused (const char *method, const char *path, CanopyAdminRole role,
                     gpointer user_data)
{
  RouteCheck *check = user_data;
  g_autofree char *concrete = concrete_path (method, path);
  g_auto (Reply) reply = { 0 };
  g_autofree char *code = NULL;
  gboolean body = g_str_equal (method, "POST") || g_str_equal (method, "PUT");
  g_autoptr (SoupSession) session = session_from (check->checked + 1);

  call_with (session, method, concrete, check->token, body ? "{}" : NULL, &reply);
  if (reply.status != 401)
    fprintf (stderr, "\n    %s %s with the shared key's token: %u %s\n", method, concrete,
             reply.status, reply.body);
  CU_ASSERT_EQUAL (reply.status, 401);
  code = member (reply.body, "error");
  CU_ASSERT_STRING_EQUAL (code != NULL ? code : "", "invalid-token");
  check->checked++;
}

/* Every device holds the shared key: what it derives opens nothing. */
static void
test_shared_key_opens_nothing (void)
{
  g_autofree char *derived = NULL;
  RouteCheck check = { NULL, 0 };
  g_auto (Reply) raw = { 0 };

  if (!site_up ())
    return;
  derived = key_derived_token ();
  check.token = derived;
  canopy_console_routes_foreach (check_route_refused, &check);
  CU_ASSERT (check.checked >= 20);
  /* Nor does the key itself, as the installer printed it. */
  {
    g_autofree char *path = g_build_filename (site.state, "shared-key", NULL);
    g_autofree char *key_text = NULL;

    g_assert (g_file_get_contents (path, &key_text, NULL, NULL));
    g_autoptr (SoupSession) session = session_from (200);

    call_with (session, "GET", "/metrics", g_strstrip (key_text), NULL, &raw);
    CU_ASSERT_EQUAL (raw.status, 401);
  }
}

static void
expect (const char *method, const char *path, const char *token, const char *body, guint status)
{
  g_auto (Reply) reply = { 0 };

  call (method, path, token, body, &reply);
  if (reply.status != status)
    fprintf (stderr, "\n    %s %s: %u, expected %u: %s\n", method, path, reply.status, status,
             reply.body);
  CU_ASSERT_EQUAL (reply.status, status);
  if (status == 403)
    {
      g_autofree char *code = member (reply.body, "error");
      CU_ASSERT_STRING_EQUAL (code != NULL ? code : "", "forbidden");
      CANOPY_ASSERT_CONTAINS (reply.body, "needs the role");
    }
}

/* A new admin through the API; returns the token, printed once. */
static char *
api_admin_add (const char *name, const char *role)
{
  g_autofree char *body = g_strdup_printf ("{\"name\": \"%s\", \"role\": \"%s\"}", name, role);
  g_auto (Reply) reply = { 0 };

  call ("POST", "/api/v1/admins", site.token, body, &reply);
  CU_ASSERT_EQUAL_FATAL (reply.status, 201);
  return member (reply.body, "token");
}

static void
test_roles (void)
{
  g_autofree char *operator = NULL, *auditor = NULL, *saved = NULL, *content = NULL;
  g_autofree char *who = NULL;
  g_auto (Reply) me = { 0 };
  const char *csv = "office,subnets\nNorth,127.0.1.0/24\n";

  if (!site_up ())
    return;
  operator = api_admin_add ("olga", "operator");
  auditor = api_admin_add ("aldo", "auditor");
  call ("GET", "/api/v1/whoami", operator, NULL, &me);
  CU_ASSERT_EQUAL (me.status, 200);
  who = member (me.body, "role");
  CU_ASSERT_STRING_EQUAL (who != NULL ? who : "", "operator");

  /* An operator: no settings, topology or admins; content and deployments yes. */
  expect ("PUT", "/api/v1/settings", operator, "{\"assigned_groups\": [\"X\"]}", 403);
  expect ("PUT", "/api/v1/topology", operator, csv, 403);
  expect ("POST", "/api/v1/topology", operator, csv, 403);
  expect ("POST", "/api/v1/admins", operator, "{\"name\": \"eve\", \"role\": \"administrator\"}",
          403);
  expect ("DELETE", "/api/v1/admins/site-admin", operator, NULL, 403);
  expect ("GET", "/api/v1/settings", operator, NULL, 200);
  saved = g_steal_pointer (&site.token);
  site.token = g_strdup (operator);
  content = canopy_test_site_register (&site);
  canopy_test_site_deploy_content (&site, content);
  g_free (site.token);
  site.token = g_steal_pointer (&saved);

  /* An auditor reads everything and changes nothing. */
  expect ("GET", "/api/v1/settings", auditor, NULL, 200);
  expect ("GET", "/api/v1/deployments", auditor, NULL, 200);
  expect ("GET", "/api/v1/admins", auditor, NULL, 200);
  expect ("GET", "/metrics", auditor, NULL, 200);
  expect ("POST", "/api/v1/deployments", auditor,
          "{\"content\": \"x\", \"groups\": [\"Branch\"], \"destination\": \"/tmp/x\"}", 403);
  expect ("POST", "/api/v1/content", auditor,
          "{\"name\": \"P\", \"version\": \"2\", \"location\": \"/tmp/x\"}", 403);
  expect ("DELETE", "/api/v1/content?id=x", auditor, NULL, 403);
  expect ("POST", "/api/v1/publish", auditor, NULL, 403);
  expect ("PUT", "/api/v1/settings", auditor, "{}", 403);
}

/* Polls whoami until it answers @status, for at most @seconds. */
static guint
whoami_until (const char *token, guint status, guint seconds, Reply *reply)
{
  gint64 end = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;

  for (;;)
    {
      g_clear_pointer (&reply->body, g_free);
      call ("GET", "/api/v1/whoami", token, NULL, reply);
      if (reply->status == status || g_get_monotonic_time () > end)
        return reply->status;
      g_usleep (200 * 1000);
    }
}

static void
test_revoked_and_expired (void)
{
  g_autofree char *cli = NULL, *api = NULL, *late = NULL, *id = NULL, *path = NULL;
  g_autofree char *canopyd = NULL, *out = NULL, *code = NULL;
  g_auto (Reply) reply = { 0 };

  if (!site_up ())
    return;
  /* Made by the command while canopyd runs: the server sees it at once. */
  cli = admin_add ("rita", "auditor", NULL, NULL);
  call ("GET", "/api/v1/whoami", cli, NULL, &reply);
  CU_ASSERT_EQUAL (reply.status, 200);
  id = member (reply.body, "token_id");
  CU_ASSERT_PTR_NOT_NULL_FATAL (id);
  /* Revoked by the command: refused within seconds. */
  canopyd = canopy_test_build_path ("canopyd", NULL);
  {
    const char *argv[] = { canopyd, "admin-revoke", id, "--config", site.config, NULL };
    CU_ASSERT_EQUAL (canopy_test_run (argv, &out), 0);
  }
  CU_ASSERT_EQUAL (whoami_until (cli, 401, 15, &reply), 401);
  code = member (reply.body, "error");
  CU_ASSERT_STRING_EQUAL (code != NULL ? code : "", "invalid-token");

  /* Revoked through the API: refused at once. */
  api = api_admin_add ("tom", "operator");
  g_clear_pointer (&reply.body, g_free);
  call ("GET", "/api/v1/whoami", api, NULL, &reply);
  g_free (id);
  id = member (reply.body, "token_id");
  path = g_strdup_printf ("/api/v1/admins/tom/tokens/%s", id);
  expect ("DELETE", path, site.token, NULL, 204);
  expect ("GET", "/api/v1/whoami", api, NULL, 401);

  /* Expired: 401, and it says so. 0.00003 days is under three seconds. */
  late = admin_add ("lea", "auditor", "0.00003", NULL);
  g_usleep (3500 * 1000);
  g_clear_pointer (&reply.body, g_free);
  call ("GET", "/api/v1/whoami", late, NULL, &reply);
  CU_ASSERT_EQUAL (reply.status, 401);
  g_free (code);
  code = member (reply.body, "error");
  CU_ASSERT_STRING_EQUAL (code != NULL ? code : "", "token-expired");
  CANOPY_ASSERT_CONTAINS (reply.body, "expired on");
  CANOPY_ASSERT_CONTAINS (reply.body, "admin-add lea");
}

/* Five wrong tokens lock the address out for guessers, not for the admin. */
static void
test_lockout_spares_valid_token (void)
{
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (GInetAddress) ip = g_inet_address_new_from_string ("127.0.0.3");
  g_autoptr (GSocketAddress) local = g_inet_socket_address_new (ip, 0);
  const char *wrong = "cnp_0123456789abcdef_0123456789abcdef0123456789abcdef0123456789abcdef"
                      "0123456789abcdef";
  g_auto (Reply) locked = { 0 };
  g_auto (Reply) right = { 0 };

  if (!site_up ())
    return;
  session = soup_session_new_with_options ("timeout", 30, "local-address", local, NULL);
  for (int i = 0; i < 5; i++)
    {
      g_auto (Reply) r = { 0 };
      call_with (session, "GET", "/api/v1/server-id", wrong, NULL, &r);
      CU_ASSERT_EQUAL (r.status, 401);
    }
  call_with (session, "GET", "/api/v1/server-id", wrong, NULL, &locked);
  CU_ASSERT_EQUAL (locked.status, 429);
  call_with (session, "GET", "/api/v1/server-id", site.token, NULL, &right);
  CU_ASSERT_EQUAL (right.status, 200);
}

/* Mutating calls name the admin in the audit, which canopyd also logs. */
static void
test_audit_names_admin (void)
{
  g_autofree char *token = NULL, *content = NULL, *saved = NULL;

  if (!site_up ())
    return;
  token = api_admin_add ("otto", "operator");
  saved = g_steal_pointer (&site.token);
  site.token = g_strdup (token);
  content = canopy_test_site_register (&site);
  g_free (site.token);
  site.token = g_steal_pointer (&saved);
  canopy_test_process_wait_output (site.server, "admin otto (operator) from 127.0.0.1: "
                                                "content-registered", 10);
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (site.server),
                          "admin otto (operator) from 127.0.0.1: content-registered");
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (site.server),
                          "admin site-admin (administrator) from 127.0.0.1: admin-added otto");
}

static guint
count (const char *haystack, const char *needle)
{
  guint n = 0;

  for (const char *at = strstr (haystack, needle); at != NULL; at = strstr (at + 1, needle))
    n++;
  return n;
}

/* A token shows once, where it is made, and nowhere else. */
static void
test_tokens_stay_secret (void)
{
  g_autofree char *output = NULL, *token = NULL, *list = NULL, *canopyd = NULL;
  g_autofree char *db_path = NULL, *db = NULL;
  gsize db_length = 0;
  const char *secret;

  if (!site_up ())
    return;
  token = admin_add ("sam", "administrator", NULL, &output);
  CU_ASSERT_EQUAL (count (output, "cnp_"), 1);
  CANOPY_ASSERT_CONTAINS (output, "shown only this once");
  secret = strrchr (token, '_') + 1;
  canopyd = canopy_test_build_path ("canopyd", NULL);
  {
    const char *argv[] = { canopyd, "admin-list", "--config", site.config, NULL };
    CU_ASSERT_EQUAL (canopy_test_run (argv, &list), 0);
  }
  CANOPY_ASSERT_CONTAINS (list, "sam");
  CANOPY_ASSERT_CONTAINS (list, "site-admin");
  CU_ASSERT_PTR_NULL (strstr (list, "cnp_"));
  CU_ASSERT_PTR_NULL (strstr (list, secret));
  /* Used, then looked for in the log and the database. */
  expect ("GET", "/api/v1/whoami", token, NULL, 200);
  {
    g_auto (Reply) admins = { 0 };
    call ("GET", "/api/v1/admins", token, NULL, &admins);
    CU_ASSERT_EQUAL (admins.status, 200);
    CANOPY_ASSERT_CONTAINS (admins.body, "\"sam\"");
    CU_ASSERT_PTR_NULL (strstr (admins.body, secret));
  }
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (site.server), secret));
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (site.server), site.token));
  db_path = g_build_filename (site.state, "canopy.db", NULL);
  CU_ASSERT_FATAL (g_file_get_contents (db_path, &db, &db_length, NULL));
  CU_ASSERT_PTR_NULL (memmem (db, db_length, secret, strlen (secret)));
}

/* A canopyd with a console and SQLite in a new directory @name, made by
 * "canopyd init" (what it said in @out); returns the configuration. */
static char *
init_server (const char *name, char **dir, char **out)
{
  g_autofree char *canopyd = canopy_test_build_path ("canopyd", NULL);
  g_autofree char *xml = NULL;
  char *config;

  *dir = canopy_test_make_tmpdir (name);
  config = g_build_filename (*dir, "canopyd.xml", NULL);
  xml = g_strdup_printf ("<server><state-directory>%s/state</state-directory>"
                         "<console address='127.0.0.1' port='0'/><backend plugin='sqlite'/>"
                         "<transport plugin='tcp'><listen address='127.0.0.1' port='0'/>"
                         "</transport></server>",
                         *dir);
  g_assert (g_file_set_contents (config, xml, -1, NULL));
  {
    const char *init[] = { canopyd, "init", "--config", config, NULL };
    CU_ASSERT_EQUAL_FATAL (canopy_test_run (init, out), 0);
  }
  return config;
}

/* An installation upgraded from the shared-key console has no admin: the
 * log says so and how to make the first, and nothing opens the console. */
static void
test_no_admin_says_what_to_do (void)
{
  g_autofree char *dir = NULL, *config = NULL, *canopyd = NULL, *out = NULL;
  g_autoptr (CanopyTestProcess) server = NULL;

  if (!canopy_test_site_available ())
    return;
  config = init_server ("no-admin", &dir, &out);
  canopyd = canopy_test_build_path ("canopyd", NULL);
  CANOPY_ASSERT_CONTAINS (out, "canopyd admin-add NAME --role administrator");
  {
    const char *argv[] = { canopyd, "--config", config, NULL };
    server = canopy_test_process_spawn (argv, NULL);
  }
  CU_ASSERT_FATAL (server != NULL && canopy_test_process_wait_output (server, " started: ", 20));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (server), "No console admin exists yet");
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (server),
                          "canopyd admin-add NAME --role administrator");
  canopy_test_process_signal (server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (server, 20), 0);
}

/* Admins that "canopyd admin-add" of the release before the admins table
 * made (rows of settings, in a database that release wrote) sign in to
 * the upgraded canopyd with the tokens it printed, keep their roles and
 * expiry, and have left the settings table. */
static void
test_release_admins_sign_in (void)
{
  g_autofree char *dir = NULL, *config = NULL, *canopyd = NULL, *out = NULL;
  g_autofree char *fixture = canopy_test_src_path ("tests", "integration", "data",
                                                   "release-admins-sqlite.sql", NULL);
  g_autofree char *sql = NULL, *alice = NULL, *bob = NULL, *db = NULL;
  g_autoptr (CanopyTestProcess) server = NULL;
  g_autoptr (SoupSession) session = NULL;
  g_auto (Reply) admins = { 0 };
  g_auto (Reply) as_bob = { 0 };
  g_auto (Reply) bob_writes = { 0 };
  const char *output, *listening;
  guint port = 0;
  sqlite3 *handle = NULL;

  if (!canopy_test_site_available ())
    return;
  g_assert (g_file_get_contents (fixture, &sql, NULL, NULL));
  alice = canopy_test_fixture_token (sql, "alice");
  bob = canopy_test_fixture_token (sql, "bob");
  config = init_server ("release-admins", &dir, &out);
  canopyd = canopy_test_build_path ("canopyd", NULL);
  /* this installation's database as the release left it */
  db = g_build_filename (dir, "state", "canopy.db", NULL);
  {
    static const char *const suffixes[] = { "", "-wal", "-shm" };
    for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++)
      {
        g_autofree char *file = g_strconcat (db, suffixes[i], NULL);
        g_unlink (file);
      }
  }
  CU_ASSERT_FATAL (sqlite3_open (db, &handle) == SQLITE_OK);
  CU_ASSERT (sqlite3_exec (handle, sql, NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close (handle);

  {
    const char *argv[] = { canopyd, "--config", config, NULL };
    server = canopy_test_process_spawn (argv, NULL);
  }
  CU_ASSERT_FATAL (server != NULL && canopy_test_process_wait_output (server, " started: ", 20));
  output = canopy_test_process_output (server);
  CANOPY_ASSERT_CONTAINS (output, "from the settings to their own tables (admins: 2, tokens: 2)");
  CU_ASSERT_PTR_NULL (strstr (output, "No console admin exists yet"));
  listening = strstr (output, "Console API listening on https://127.0.0.1:");
  if (listening != NULL)
    port = (guint) g_ascii_strtoull (listening + strlen ("Console API listening on "
                                                         "https://127.0.0.1:"),
                                     NULL, 10);
  CU_ASSERT_FATAL (port != 0);
  session = soup_session_new_with_options ("timeout", 30, NULL);
  call_port (session, port, "GET", "/api/v1/admins", alice, NULL, &admins);
  CU_ASSERT_EQUAL (admins.status, 200);
  CANOPY_ASSERT_CONTAINS (admins.body, "\"alice\"");
  CANOPY_ASSERT_CONTAINS (admins.body, "\"bob\"");
  CANOPY_ASSERT_CONTAINS (admins.body, "b181a0bfc22888a5");
  CANOPY_ASSERT_CONTAINS (admins.body, "2036-12-02");
  /* bob is still an auditor: he reads, and may not change anything */
  call_port (session, port, "GET", "/api/v1/admins", bob, NULL, &as_bob);
  CU_ASSERT_EQUAL (as_bob.status, 200);
  call_port (session, port, "POST", "/api/v1/admins", bob, "{\"name\": \"eve\", "
             "\"role\": \"administrator\"}", &bob_writes);
  CU_ASSERT_EQUAL (bob_writes.status, 403);
  canopy_test_process_signal (server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (server, 20), 0);
  {
    g_autofree char *left = NULL;
    const char *argv[] = { "sqlite3", "-readonly", db,
                           "SELECT count(*) FROM settings WHERE name LIKE 'admin%';"
                           "SELECT group_concat(admin_name || ':' || role) FROM "
                           "(SELECT admin_name, role FROM admins ORDER BY admin_name)",
                           NULL };
    if (canopy_test_run (argv, &left) == 0)
      CU_ASSERT_STRING_EQUAL (left, "0\nalice:administrator,bob:auditor\n");
  }
}

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

CANOPY_TEST_SUITE (security_admins, "security-admins", NULL, suite_cleanup,
                   { "the shared key's token gets 401 on every route", test_shared_key_opens_nothing },
                   { "roles: operator and auditor are refused with 403", test_roles },
                   { "revoked and expired tokens get 401", test_revoked_and_expired },
                   { "after 5 wrong tokens the right one still works",
                     test_lockout_spares_valid_token },
                   { "mutating calls are audited with the admin's name", test_audit_names_admin },
                   { "tokens show once: not in lists, log or database", test_tokens_stay_secret },
                   { "no admin yet: the log says how to add the first",
                     test_no_admin_says_what_to_do },
                   { "admins of the last release sign in after the upgrade",
                     test_release_admins_sign_in })
