/* The console API as its clients use it: a real canopyd on SQLite (and the
 * TCP transport, so an agent can enrol) driven over real HTTPS with
 * libsoup, the certificate pinned, then canopyctl against the same
 * server. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/backend.h"
#include "tests/integration/site.h"
#include "lib/plugin-loader.h"
#include "server/server-config.h"

#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#define GOOD_CSV "office,parent,type,subnets,wan_rate\n" \
                 "Branch,,Default,198.18.10.0/24,100M\n" \
                 "Branch WiFi,Branch,WiFi,198.18.11.0/24,\n"
/* Line 3 names a parent that does not exist. */
#define BAD_CSV "office,parent,subnets\nA,,198.18.1.0/24\nB,Nowhere,198.18.2.0/24\n"

/* The server every test of the suite talks to; the suite's own state. */
typedef struct {
  char *dir;
  char *config;
  char *state;
  CanopyTestProcess *process;
  guint agent_port;
  guint console_port;
  char *url;
  char *token;
  char *token_file; /* the token, for canopyctl login --token-file */
  char *fingerprint;
  char *ctl_profile; /* canopyctl's connection profile */
  SoupSession *session;
} ConsoleServer;

static ConsoleServer server;

typedef struct {
  guint status;
  char *body;
  char *retry_after;
  char *content_type;
} Response;

static void
response_clear (Response *r)
{
  g_clear_pointer (&r->body, g_free);
  g_clear_pointer (&r->retry_after, g_free);
  g_clear_pointer (&r->content_type, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Response, response_clear)

static char *
program (const char *name)
{
  return canopy_test_build_path (name, NULL);
}

static gboolean
plugins_available (void)
{
  g_autofree char *tcp = canopy_test_build_path ("plugins", "transport-tcp", ".libs",
                                                 "canopy-tcp.so", NULL);
  g_autofree char *sqlite = canopy_test_build_path ("plugins", "backend-sqlite", ".libs",
                                                    "canopy-sqlite.so", NULL);

  return g_file_test (tcp, G_FILE_TEST_EXISTS) && g_file_test (sqlite, G_FILE_TEST_EXISTS);
}

static void
write_config (void)
{
  g_autofree char *xml = g_strdup_printf (
    "<server>\n"
    "  <name>localhost</name>\n"
    "  <state-directory>%s</state-directory>\n"
    "  <assigned-group>Finance</assigned-group>\n"
    "  <heartbeat interval='1'/>\n"
    "  <licensing seats='10'/>\n"
    "  <console address='127.0.0.1' port='%u'/>\n"
    "  <content-sources><directory path='%s/packages'/></content-sources>\n"
    "  <backend plugin='sqlite'><database>%s/canopy.db</database></backend>\n"
    "  <transport plugin='tcp'><listen address='127.0.0.1' port='%u'/></transport>\n"
    "</server>\n",
    server.state, server.console_port, server.dir, server.dir, server.agent_port);

  g_assert (g_file_set_contents (server.config, xml, -1, NULL));
}

static guint
port_after (const char *output, const char *prefix)
{
  const char *at = strstr (output, prefix);

  return at != NULL ? (guint) g_ascii_strtoull (at + strlen (prefix), NULL, 10) : 0;
}

static gboolean
server_start (void)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "--config", server.config, NULL };
  const char *output;

  server.process = canopy_test_process_spawn (argv, NULL);
  if (server.process == NULL || !canopy_test_process_wait_output (server.process, "started", 20))
    {
      fprintf (stderr, "\n    canopyd did not start: %s\n",
               server.process != NULL ? canopy_test_process_output (server.process) : "");
      return FALSE;
    }
  output = canopy_test_process_output (server.process);
  server.console_port = port_after (output, "Console API listening on https://127.0.0.1:");
  server.agent_port = port_after (output, "tcp 127.0.0.1 port ");
  g_free (server.url);
  server.url = g_strdup_printf ("https://127.0.0.1:%u", server.console_port);
  /* Keep the ports across restarts. */
  write_config ();
  return server.console_port != 0 && server.agent_port != 0;
}

/* Returns canopyd's exit status; CUnit assertions are not allowed in the
 * suite's cleanup, so the caller asserts. */
static int
server_stop (void)
{
  int status;

  if (server.process == NULL)
    return 0;
  canopy_test_process_signal (server.process, SIGTERM);
  status = canopy_test_process_wait_exit (server.process, 20);
  g_clear_pointer (&server.process, canopy_test_process_free);
  return status;
}

static char *
fingerprint_of (GTlsCertificate *certificate)
{
  g_autoptr (GByteArray) der = NULL;
  g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize size = sizeof digest;
  GString *out = g_string_new (NULL);

  g_object_get (certificate, "certificate", &der, NULL);
  g_checksum_update (checksum, der->data, der->len);
  g_checksum_get_digest (checksum, digest, &size);
  for (gsize i = 0; i < size; i++)
    g_string_append_printf (out, "%s%02X", i > 0 ? ":" : "", digest[i]);
  return g_string_free (out, FALSE);
}

/* The certificate is self-signed: trust exactly the one init made. */
static gboolean
on_accept_certificate (SoupMessage *msg, GTlsCertificate *certificate, GTlsCertificateFlags errors,
                       gpointer user_data)
{
  g_autofree char *presented = fingerprint_of (certificate);

  return g_str_equal (presented, server.fingerprint);
}

static SoupSession *
new_session (const char *local_ip)
{
  g_autoptr (GInetAddress) ip = local_ip != NULL ? g_inet_address_new_from_string (local_ip)
                                                 : NULL;
  g_autoptr (GSocketAddress) local = ip != NULL ? g_inet_socket_address_new (ip, 0) : NULL;

  return soup_session_new_with_options ("timeout", 30, "local-address", local, NULL);
}

static void
request_with (SoupSession *session, const char *method, const char *path, const char *token,
              const char *content_type, const char *body, gssize length, Response *out)
{
  g_autofree char *uri = g_strconcat (server.url, path, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr (GBytes) response = NULL;
  g_autoptr (GError) error = NULL;
  SoupMessageHeaders *headers;

  g_signal_connect (msg, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);
  if (token != NULL)
    {
      g_autofree char *bearer = g_strconcat ("Bearer ", token, NULL);
      soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization",
                                    bearer);
    }
  if (body != NULL)
    {
      g_autoptr (GBytes) bytes = g_bytes_new (body, length >= 0 ? (gsize) length : strlen (body));
      soup_message_set_request_body_from_bytes (msg, content_type, bytes);
    }
  response = soup_session_send_and_read (session, msg, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  headers = soup_message_get_response_headers (msg);
  out->status = soup_message_get_status (msg);
  out->body = g_strndup (g_bytes_get_data (response, NULL), g_bytes_get_size (response));
  out->retry_after = g_strdup (soup_message_headers_get_one (headers, "Retry-After"));
  out->content_type = g_strdup (soup_message_headers_get_content_type (headers, NULL));
}

static void
request (const char *method, const char *path, const char *content_type, const char *body,
         Response *out)
{
  request_with (server.session, method, path, server.token, content_type, body, -1, out);
}

/* The member @name of the JSON object in @text, as a string. */
static char *
json_member (const char *text, const char *name)
{
  g_autoptr (JsonNode) root = json_from_string (text, NULL);
  JsonNode *member;

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return NULL;
  member = json_object_get_member (json_node_get_object (root), name);
  if (member == NULL)
    return NULL;
  if (JSON_NODE_HOLDS_VALUE (member) && json_node_get_value_type (member) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (member));
  return json_to_string (member, FALSE);
}

static int
suite_init (void)
{
  g_autofree char *canopyd = NULL;
  g_autofree char *cert_path = NULL, *pem = NULL, *out = NULL;
  g_autoptr (GTlsCertificate) certificate = NULL;

  if (!plugins_available ())
    return 0;
  canopyd = program ("canopyd");
  server.dir = canopy_test_make_tmpdir ("console");
  server.ctl_profile = g_build_filename (server.dir, "ctl-profile", NULL);
  server.config = g_build_filename (server.dir, "canopyd.xml", NULL);
  server.state = g_build_filename (server.dir, "state", NULL);
  write_config ();
  {
    const char *argv[] = { canopyd, "init", "--config", server.config, NULL };
    if (canopy_test_run (argv, &out) != 0)
      {
        fprintf (stderr, "\n    canopyd init failed: %s\n", out);
        return 1;
      }
  }
  cert_path = g_build_filename (server.state, "console-cert.pem", NULL);
  certificate = g_tls_certificate_new_from_file (cert_path, NULL);
  if (certificate == NULL)
    return 1;
  server.fingerprint = fingerprint_of (certificate);
  /* canopyd init prints the same fingerprint for the admin to compare. */
  if (strstr (out, server.fingerprint) == NULL)
    return 1;
  server.token = canopy_test_admin_add (server.config, "console-admin", "administrator", NULL,
                                        NULL);
  if (server.token == NULL)
    return 1;
  server.token_file = g_build_filename (server.dir, "admin-token", NULL);
  g_assert (g_file_set_contents_full (server.token_file, server.token, -1,
                                      G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  server.session = new_session (NULL);
  return server_start () ? 0 : 1;
}

static int
suite_cleanup (void)
{
  server_stop ();
  g_clear_object (&server.session);
  g_free (server.dir);
  g_free (server.ctl_profile);
  g_free (server.config);
  g_free (server.state);
  g_free (server.url);
  g_free (server.token);
  g_free (server.token_file);
  g_free (server.fingerprint);
  memset (&server, 0, sizeof server);
  return 0;
}

static gboolean
skipped (void)
{
  if (server.process != NULL)
    return FALSE;
  canopy_test_skip ("needs the tcp transport and the sqlite backend, and one was not "
          "built");
  return TRUE;
}

static void
test_wrong_key (void)
{
  g_auto (Response) wrong = { 0 };
  g_auto (Response) none = { 0 };
  g_auto (Response) right = { 0 };
  g_autofree char *code = NULL;
  const char *other = "cnp_0000000000000000_"
                      "0000000000000000000000000000000000000000000000000000000000000000";

  if (skipped ())
    return;
  request_with (server.session, "GET", "/api/v1/settings", other, NULL, NULL, -1, &wrong);
  CU_ASSERT_EQUAL (wrong.status, 401);
  code = json_member (wrong.body, "error");
  CU_ASSERT_STRING_EQUAL (code, "invalid-token");
  CANOPY_ASSERT_CONTAINS (wrong.body, "not valid here");
  CANOPY_ASSERT_CONTAINS (wrong.body, "canopyd admin-add");
  request_with (server.session, "GET", "/api/v1/settings", NULL, NULL, NULL, -1, &none);
  CU_ASSERT_EQUAL (none.status, 401);
  CANOPY_ASSERT_CONTAINS (none.body, "unauthenticated");
  /* Nothing but the web page and the liveness probe without the token. */
  request ("GET", "/api/v1/settings", NULL, NULL, &right);
  CU_ASSERT_EQUAL (right.status, 200);
}

/* From 127.0.0.2, so that the lockout does not hit the other tests. */
static void
test_rate_limit (void)
{
  g_autoptr (SoupSession) attacker = NULL;
  const char *other = "1111111111111111111111111111111111111111111111111111111111111111";

  if (skipped ())
    return;
  attacker = new_session ("127.0.0.2");
  for (int i = 0; i < 5; i++)
    {
      g_auto (Response) r = { 0 };
      request_with (attacker, "GET", "/api/v1/server-id", other, NULL, NULL, -1, &r);
      CU_ASSERT_EQUAL (r.status, 401);
    }
  {
    g_auto (Response) locked = { 0 };
    g_auto (Response) even_right = { 0 };
    g_auto (Response) elsewhere = { 0 };

    request_with (attacker, "GET", "/api/v1/server-id", other, NULL, NULL, -1, &locked);
    CU_ASSERT_EQUAL (locked.status, 429);
    CU_ASSERT_PTR_NOT_NULL (locked.retry_after);
    CU_ASSERT (locked.retry_after != NULL && atoi (locked.retry_after) > 0);
    CANOPY_ASSERT_CONTAINS (locked.body, "rate-limited");
    /* The right token still works from there: it cannot be guessed. */
    request_with (attacker, "GET", "/api/v1/server-id", server.token, NULL, NULL, -1,
                  &even_right);
    CU_ASSERT_EQUAL (even_right.status, 200);
    request ("GET", "/api/v1/server-id", NULL, NULL, &elsewhere);
    CU_ASSERT_EQUAL (elsewhere.status, 200);
  }
}

static CanopyTestProcess *
agent_start (const char *name, const char *group)
{
  g_autofree char *agent = program ("canopy-agent");
  g_autofree char *state = g_build_filename (server.dir, name, NULL);
  g_autofree char *key = g_build_filename (state, "shared-key", NULL);
  g_autofree char *server_key = g_build_filename (server.state, "shared-key", NULL);
  g_autofree char *config = g_strconcat (state, ".xml", NULL);
  g_autofree char *text = NULL;
  g_autofree char *xml = g_strdup_printf ("<agent><server host='127.0.0.1' port='%u'/>"
                                          "<state-directory>%s</state-directory>"
                                          "<group>%s</group><transport plugin='tcp'/></agent>",
                                          server.agent_port, state, group);
  const char *argv[] = { agent, "--config", config, NULL };

  g_mkdir_with_parents (state, 0700);
  g_assert (g_file_get_contents (server_key, &text, NULL, NULL));
  g_assert (g_file_set_contents_full (key, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_assert (g_file_set_contents (config, xml, -1, NULL));
  return canopy_test_process_spawn (argv, NULL);
}

typedef struct {
  const char *action;
  const char *detail;
  gboolean found;
} AuditSearch;

static gboolean
match_audit (gint64 id, GVariant *entry, gpointer user_data)
{
  AuditSearch *search = user_data;
  const char *actor, *action, *detail;

  g_variant_get (entry, "(x&s&s&s)", NULL, &actor, &action, &detail);
  if (g_str_equal (action, search->action) && strstr (detail, search->detail) != NULL
      && g_str_has_prefix (actor, "admin console-admin (administrator) from 127.0.0.1"))
    search->found = TRUE;
  return TRUE;
}

/* Reads the audit log from the database of the stopped server. */
static gboolean
audit_has (const char *action, const char *detail)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyServerConfig) config = canopy_server_config_load (server.config, &error);
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin = NULL;
  g_autoptr (CanopyBackend) backend = NULL;
  AuditSearch search = { action, detail, FALSE };

  CANOPY_ASSERT_NO_ERROR (error);
  plugin = canopy_plugin_loader_load_for_node (loader, config->backend,
                                               CANOPY_PLUGIN_KIND_BACKEND, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  backend = canopy_backend_open (plugin, config->backend, server.state, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (canopy_backend_list_log (backend, CANOPY_LOG_AUDIT, 0, 0, match_audit, &search,
                                      &error));
  CANOPY_ASSERT_NO_ERROR (error);
  return search.found;
}

/* Assigning a group lets its dormant device in on its next retry; the
 * change is audited, kept in the database and survives a restart. */
static void
test_settings_applied_audited_persisted (void)
{
  g_autoptr (CanopyTestProcess) agent = NULL;
  g_auto (Response) put = { 0 };
  g_auto (Response) after = { 0 };
  g_autofree char *name = NULL, *groups = NULL;

  if (skipped ())
    return;
  agent = agent_start ("sales-1", "Sales");
  CU_ASSERT (canopy_test_process_wait_output (agent, "refused this device", 20));
  request ("PUT", "/api/v1/settings", "application/json",
           "{\"server_name\": \"p2p.example.com\", \"assigned_groups\": [\"Finance\", \"Sales\"]}",
           &put);
  CU_ASSERT_EQUAL (put.status, 200);
  CANOPY_ASSERT_CONTAINS (put.body, "\"Sales\"");
  CU_ASSERT (canopy_test_process_wait_output (agent, "Enrolled with canopy server", 40));
  canopy_test_process_signal (agent, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (agent, 20), 0);

  CU_ASSERT_EQUAL (server_stop (), 0);
  CU_ASSERT (audit_has ("settings.assigned-groups", "[\"Finance\"] -> [\"Finance\", \"Sales\"]"));
  CU_ASSERT (audit_has ("settings.server-name", "\"localhost\" -> \"p2p.example.com\""));
  CU_ASSERT_FATAL (server_start ());
  request ("GET", "/api/v1/settings", NULL, NULL, &after);
  CU_ASSERT_EQUAL (after.status, 200);
  name = json_member (after.body, "server_name");
  groups = json_member (after.body, "assigned_groups");
  CU_ASSERT_STRING_EQUAL (name, "p2p.example.com");
  CU_ASSERT_STRING_EQUAL (groups, "[\"Finance\",\"Sales\"]");
}

static void
test_topology (void)
{
  g_auto (Response) before = { 0 };
  g_auto (Response) bad = { 0 };
  g_auto (Response) unchanged = { 0 };
  g_auto (Response) good = { 0 };
  g_auto (Response) on = { 0 };
  g_auto (Response) exported = { 0 };
  g_auto (Response) again = { 0 };
  g_auto (Response) exported_again = { 0 };
  g_autofree char *problems = NULL;

  if (skipped ())
    return;
  request ("GET", "/api/v1/topology", NULL, NULL, &before);
  CU_ASSERT_EQUAL (before.status, 200);
  CU_ASSERT_STRING_EQUAL (before.content_type, "text/csv");

  request ("PUT", "/api/v1/topology", "text/csv", BAD_CSV, &bad);
  CU_ASSERT_EQUAL (bad.status, 422);
  problems = json_member (bad.body, "problems");
  CANOPY_ASSERT_CONTAINS (problems, "\"line\":3");
  CANOPY_ASSERT_CONTAINS (problems, "parent office \\\"Nowhere\\\" is not defined");
  CANOPY_ASSERT_CONTAINS (bad.body, "nothing changed");
  request ("GET", "/api/v1/topology", NULL, NULL, &unchanged);
  CU_ASSERT_STRING_EQUAL (unchanged.body, before.body);

  request ("PUT", "/api/v1/topology", "text/csv", GOOD_CSV, &good);
  CU_ASSERT_EQUAL (good.status, 200);
  CANOPY_ASSERT_CONTAINS (good.body, "\"offices\" : 2");
  request ("PUT", "/api/v1/settings", "application/json",
           "{\"distribution_optimization\": true}", &on);
  CU_ASSERT_EQUAL (on.status, 200);
  request ("GET", "/api/v1/topology", NULL, NULL, &exported);
  CANOPY_ASSERT_CONTAINS (exported.body, "Branch WiFi,Branch,WiFi,198.18.11.0/24");
  CANOPY_ASSERT_CONTAINS (exported.body, "Branch,Central Office,Default,198.18.10.0/24,100M");
  /* What is downloaded uploads unchanged. */
  request ("POST", "/api/v1/topology", "text/csv", exported.body, &again);
  CU_ASSERT_EQUAL (again.status, 200);
  CANOPY_ASSERT_CONTAINS (again.body, "in force");
  request ("GET", "/api/v1/topology", NULL, NULL, &exported_again);
  CU_ASSERT_STRING_EQUAL (exported_again.body, exported.body);
}

static void
test_health_and_reads (void)
{
  g_auto (Response) health = { 0 };
  g_auto (Response) id = { 0 };
  g_auto (Response) devices = { 0 };
  g_auto (Response) filtered = { 0 };
  g_auto (Response) offices = { 0 };
  g_auto (Response) unknown = { 0 };
  g_autofree char *server_id = NULL;

  if (skipped ())
    return;
  request ("GET", "/api/v1/health", NULL, NULL, &health);
  CU_ASSERT_EQUAL (health.status, 200);
  CANOPY_ASSERT_CONTAINS (health.body, "\"name\" : \"backend\"");
  CANOPY_ASSERT_CONTAINS (health.body, "\"name\" : \"transport tcp\"");
  CANOPY_ASSERT_CONTAINS (health.body, "holds the key canopyd runs with");
  CANOPY_ASSERT_CONTAINS (health.body, "supports agents");
  CANOPY_ASSERT_CONTAINS (health.body, "licences in use");
  CANOPY_ASSERT_CONTAINS (health.body, "canopyd has run since");
  CANOPY_ASSERT_CONTAINS (health.body, "No content store is configured");
  CU_ASSERT_PTR_NULL (strstr (health.body, "\"error\""));

  request ("GET", "/api/v1/server-id", NULL, NULL, &id);
  server_id = json_member (id.body, "server_id");
  CU_ASSERT (server_id != NULL && g_uuid_string_is_valid (server_id));

  request ("GET", "/api/v1/devices", NULL, NULL, &devices);
  CU_ASSERT_EQUAL (devices.status, 200);
  CANOPY_ASSERT_CONTAINS (devices.body, "\"why\"");
  CANOPY_ASSERT_CONTAINS (devices.body, "available");
  request ("GET", "/api/v1/devices?group=Nobody", NULL, NULL, &filtered);
  CANOPY_ASSERT_CONTAINS (filtered.body, "\"devices\" : [");
  CU_ASSERT_PTR_NULL (strstr (filtered.body, "device_id"));
  request ("GET", "/api/v1/devices?colour=red", NULL, NULL, &unknown);
  CU_ASSERT_EQUAL (unknown.status, 400);
  CANOPY_ASSERT_CONTAINS (unknown.body, "colour");
  request ("GET", "/api/v1/offices", NULL, NULL, &offices);
  CANOPY_ASSERT_CONTAINS (offices.body, "Central Office");
}

static void
test_licences_and_metrics (void)
{
  g_auto (Response) csv = { 0 };
  g_auto (Response) metrics = { 0 };
  g_auto (Response) unauthenticated = { 0 };

  if (skipped ())
    return;
  request ("GET", "/api/v1/licences/report.csv", NULL, NULL, &csv);
  CU_ASSERT_EQUAL (csv.status, 200);
  CU_ASSERT_STRING_EQUAL (csv.content_type, "text/csv");
  CU_ASSERT (g_str_has_prefix (csv.body,
                               "device_id,name,office,address,agent_version,activated,last_seen"));
  /* The device enrolled by the settings test holds a licence. */
  CANOPY_ASSERT_CONTAINS (csv.body, ",0.1.0,");

  request ("GET", "/metrics", NULL, NULL, &metrics);
  CU_ASSERT_EQUAL (metrics.status, 200);
  CANOPY_ASSERT_CONTAINS (metrics.body, "# TYPE canopy_sessions_enrolled gauge");
  CANOPY_ASSERT_CONTAINS (metrics.body, "canopy_licence_seats 10\n");
  CANOPY_ASSERT_CONTAINS (metrics.body, "canopy_licences_used 1\n");
  CANOPY_ASSERT_CONTAINS (metrics.body, "canopy_licence_overage 0\n");
  CANOPY_ASSERT_CONTAINS (metrics.body, "canopy_console_auth_failures_total");
  /* This request's own connection is open. */
  CU_ASSERT_PTR_NULL (strstr (metrics.body, "canopy_console_connections 0\n"));
  CANOPY_ASSERT_CONTAINS (metrics.body, "# TYPE canopy_console_connections_refused_total counter");
  request_with (server.session, "GET", "/metrics", NULL, NULL, NULL, -1, &unauthenticated);
  CU_ASSERT_EQUAL (unauthenticated.status, 401);
}

static void
test_bad_input (void)
{
  g_auto (Response) before = { 0 };
  g_auto (Response) malformed = { 0 };
  g_auto (Response) unknown = { 0 };
  g_auto (Response) not_object = { 0 };
  g_auto (Response) wrong_type = { 0 };
  g_auto (Response) half = { 0 };
  g_auto (Response) oversized = { 0 };
  g_auto (Response) method = { 0 };
  g_auto (Response) after = { 0 };
  g_autofree char *big = g_strnfill (200 * 1024, 'x');

  if (skipped ())
    return;
  request ("GET", "/api/v1/settings", NULL, NULL, &before);
  request ("PUT", "/api/v1/settings", "application/json", "{\"assigned_groups\": [", &malformed);
  CU_ASSERT_EQUAL (malformed.status, 400);
  CANOPY_ASSERT_CONTAINS (malformed.body, "malformed-json");
  request ("PUT", "/api/v1/settings", "application/json", "{\"colour\": \"red\"}", &unknown);
  CU_ASSERT_EQUAL (unknown.status, 400);
  CANOPY_ASSERT_CONTAINS (unknown.body, "unknown-field");
  CANOPY_ASSERT_CONTAINS (unknown.body, "colour");
  request ("PUT", "/api/v1/settings", "application/json", "[1, 2]", &not_object);
  CU_ASSERT_EQUAL (not_object.status, 400);
  request ("PUT", "/api/v1/settings", "application/json",
           "{\"distribution_optimization\": \"yes\"}", &wrong_type);
  CU_ASSERT_EQUAL (wrong_type.status, 422);
  CANOPY_ASSERT_CONTAINS (wrong_type.body, "true or false");
  /* One bad field: the good one beside it is not taken either. */
  request ("PUT", "/api/v1/settings", "application/json",
           "{\"server_name\": \"changed.example.com\", \"assigned_groups\": [\" \"]}", &half);
  CU_ASSERT_EQUAL (half.status, 422);
  request_with (server.session, "PUT", "/api/v1/settings", server.token, "application/json", big,
                -1, &oversized);
  CU_ASSERT_EQUAL (oversized.status, 413);
  CANOPY_ASSERT_CONTAINS (oversized.body, "too-large");
  request ("DELETE", "/api/v1/settings", NULL, NULL, &method);
  CU_ASSERT_EQUAL (method.status, 405);
  request ("GET", "/api/v1/settings", NULL, NULL, &after);
  CU_ASSERT_STRING_EQUAL (after.body, before.body);
}

/* A client that closes its kept-alive connection costs the server no
 * descriptor: libsoup before 3.3 never closed such a connection, and every
 * canopyctl command left one in CLOSE_WAIT. */
static void
test_clients_leave (void)
{
  guint before, after = 0;

  if (skipped ())
    return;
  before = canopy_test_process_descriptors (server.process);
  CU_ASSERT (before > 0);
  for (int i = 0; i < 10; i++)
    {
      g_autoptr (SoupSession) session = new_session (NULL);
      g_auto (Response) r = { 0 };

      request_with (session, "GET", "/api/v1/server-id", server.token, NULL, NULL, -1, &r);
      CU_ASSERT_EQUAL (r.status, 200);
    }
  /* The server closes its end once it has read the client's close. */
  for (guint tries = 0; tries < canopy_test_timeout (5) * 10; tries++)
    {
      after = canopy_test_process_descriptors (server.process);
      if (after <= before)
        break;
      g_usleep (100 * 1000);
    }
  if (after > before)
    fprintf (stderr, "\n    canopyd had %u descriptors, %u after 10 clients left\n", before,
             after);
  CU_ASSERT (after <= before);
}

static void
test_web_console (void)
{
  g_auto (Response) page = { 0 };
  g_auto (Response) texts = { 0 };
  g_auto (Response) script = { 0 };
  g_auto (Response) alive = { 0 };

  if (skipped ())
    return;
  request_with (server.session, "GET", "/console/", NULL, NULL, NULL, -1, &page);
  CU_ASSERT_EQUAL (page.status, 200);
  CANOPY_ASSERT_CONTAINS (page.body, "messages.js");
  CANOPY_ASSERT_CONTAINS (page.body, "data-msg=\"settings.optimization\"");
  request_with (server.session, "GET", "/console/messages.js", NULL, NULL, NULL, -1, &texts);
  CU_ASSERT_STRING_EQUAL (texts.content_type, "text/javascript");
  CANOPY_ASSERT_CONTAINS (texts.body, "admin token");
  CANOPY_ASSERT_CONTAINS (texts.body, "Distribution Optimization");
  request_with (server.session, "GET", "/console/console.js", NULL, NULL, NULL, -1, &script);
  CU_ASSERT_STRING_EQUAL (script.content_type, "text/javascript");
  CANOPY_ASSERT_CONTAINS (script.body, "/api/v1/whoami");
  CU_ASSERT_PTR_NULL (strstr (script.body, "canopy console token v1"));
  request_with (server.session, "GET", "/livez", NULL, NULL, NULL, -1, &alive);
  CU_ASSERT_EQUAL (alive.status, 200);
}

/* How many elements the JSON array @text has; -1 when it is not one. */
static int
json_array_size (const char *text)
{
  g_autoptr (JsonNode) root = text != NULL ? json_from_string (text, NULL) : NULL;

  if (root == NULL || !JSON_NODE_HOLDS_ARRAY (root))
    return -1;
  return (int) json_array_get_length (json_node_get_array (root));
}

/* A package on the server's disk, in its allowed content source,
 * registered from its absolute path. */
static char *
write_package (const char *name)
{
  g_autofree char *directory = g_build_filename (server.dir, "packages", NULL);
  g_autofree char *path = g_build_filename (directory, name, NULL);
  g_autofree char *data = g_malloc (300 * 1024);

  g_assert (g_mkdir_with_parents (directory, 0755) == 0);
  for (gsize i = 0; i < 300 * 1024; i++)
    data[i] = (char) (i * 7 + i / 1024);
  g_assert (g_file_set_contents (path, data, 300 * 1024, NULL));
  return g_steal_pointer (&path);
}

/* Each refusal names its problem and leaves content and deployments as
 * they were. */
static void
assert_refused (const char *method, const char *path, const char *body, guint status,
                const char *code, const char *says)
{
  g_auto (Response) r = { 0 };
  g_autofree char *error = NULL, *message = NULL;

  request (method, path, "application/json", body, &r);
  CU_ASSERT_EQUAL (r.status, status);
  error = json_member (r.body, "error");
  message = json_member (r.body, "message");
  CU_ASSERT_STRING_EQUAL (error != NULL ? error : "", code);
  CANOPY_ASSERT_CONTAINS (message != NULL ? message : "", says);
}

static void
assert_count (const char *path, int expected)
{
  g_auto (Response) r = { 0 };

  request ("GET", path, NULL, NULL, &r);
  CU_ASSERT_EQUAL (r.status, 200);
  CU_ASSERT_EQUAL (json_array_size (r.body), expected);
}

static void
test_content_bad_input (void)
{
  g_autofree char *package = NULL, *body = NULL;

  if (skipped ())
    return;
  package = write_package ("refused.bin");
  assert_refused ("POST", "/api/v1/content", "{\"name\": \"App\", \"version\": \"1\"}", 400,
                  "missing-field", "\"location\" is required");
  body = g_strdup_printf ("{\"name\": \"App\", \"version\": \"1\", \"location\": \"%s\", "
                          "\"colour\": \"red\"}", package);
  assert_refused ("POST", "/api/v1/content", body, 400, "unknown-field", "colour");
  assert_refused ("POST", "/api/v1/content",
                  "{\"name\": 1, \"version\": \"1\", \"location\": \"/x\"}", 422,
                  "invalid-value", "must be a string");
  assert_refused ("POST", "/api/v1/content",
                  "{\"name\": \"App\", \"version\": \"1\", \"location\": \"pkg.bin\"}", 400,
                  "source-not-allowed", "absolute path");
  assert_refused ("POST", "/api/v1/content", "{\"name\": ", 400, "malformed-json", "not valid JSON");
  assert_count ("/api/v1/content", 0);
  assert_refused ("POST", "/api/v1/deployments",
                  "{\"content\": \"no-such-id\", \"groups\": [\"Finance\"], "
                  "\"destination\": \"/opt/app.bin\"}",
                  404, "unknown-content", "no-such-id");
  assert_refused ("DELETE", "/api/v1/deployments?id=no-such-id", NULL, 404, "not-found",
                  "no-such-id");
  assert_refused ("DELETE", "/api/v1/content", NULL, 400, "missing-id", "?id=");
  assert_count ("/api/v1/deployments", 0);
}

/* Register from a file path, deploy to a group, publish, remove: each
 * step through the API, each refusal changing nothing. */
static void
test_content_and_deployments (void)
{
  g_auto (Response) added = { 0 };
  g_auto (Response) listed = { 0 };
  g_auto (Response) created = { 0 };
  g_auto (Response) deployments = { 0 };
  g_auto (Response) metrics = { 0 };
  g_auto (Response) published = { 0 };
  g_auto (Response) removed = { 0 };
  g_auto (Response) store = { 0 };
  g_autofree char *package = NULL, *body = NULL, *id = NULL, *size = NULL, *deployment = NULL;
  g_autofree char *path = NULL, *count = NULL, *configured = NULL, *copying = NULL;

  if (skipped ())
    return;
  package = write_package ("app.bin");
  body = g_strdup_printf ("{\"name\": \"App\", \"version\": \"1.0\", \"location\": \"%s\"}",
                          package);
  request ("POST", "/api/v1/content", "application/json", body, &added);
  CU_ASSERT_EQUAL_FATAL (added.status, 201);
  id = json_member (added.body, "id");
  size = json_member (added.body, "size");
  CU_ASSERT_STRING_EQUAL (size, "307200");
  request ("GET", "/api/v1/content", NULL, NULL, &listed);
  CANOPY_ASSERT_CONTAINS (listed.body, id);
  CU_ASSERT_EQUAL (json_array_size (listed.body), 1);

  g_free (body);
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Finance\"], "
                          "\"destination\": \"opt/app.bin\"}", id);
  assert_refused ("POST", "/api/v1/deployments", body, 400, "invalid-destination",
                  "absolute path");
  g_free (body);
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [], "
                          "\"destination\": \"/opt/app.bin\"}", id);
  assert_refused ("POST", "/api/v1/deployments", body, 422, "invalid-value", "group");
  g_free (body);
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Finance\"], "
                          "\"destination\": \"/opt/app.bin\", \"background\": \"yes\"}", id);
  assert_refused ("POST", "/api/v1/deployments", body, 422, "invalid-value",
                  "\"background\" must be true or false");
  assert_count ("/api/v1/deployments", 0);
  g_free (body);
  /* The background WAN class is kept with the deployment and shown. */
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Finance\"], "
                          "\"destination\": \"/opt/quiet.bin\", \"background\": true}", id);
  {
    g_auto (Response) quiet = { 0 };
    g_auto (Response) listed_quiet = { 0 };
    g_auto (Response) gone = { 0 };
    g_autofree char *quiet_id = NULL, *quiet_path = NULL;

    request ("POST", "/api/v1/deployments", "application/json", body, &quiet);
    CU_ASSERT_EQUAL_FATAL (quiet.status, 201);
    quiet_id = json_member (quiet.body, "id");
    request ("GET", "/api/v1/deployments", NULL, NULL, &listed_quiet);
    CANOPY_ASSERT_CONTAINS (listed_quiet.body, "\"destination\" : \"/opt/quiet.bin\",\n"
                                               "    \"background\" : true");
    quiet_path = g_strdup_printf ("/api/v1/deployments?id=%s", quiet_id);
    request ("DELETE", quiet_path, NULL, NULL, &gone);
    CU_ASSERT_EQUAL (gone.status, 204);
  }
  assert_count ("/api/v1/deployments", 0);
  g_free (body);
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Finance\"], "
                          "\"destination\": \"/opt/app.bin\"}", id);
  request ("POST", "/api/v1/deployments", "application/json", body, &created);
  CU_ASSERT_EQUAL_FATAL (created.status, 201);
  deployment = json_member (created.body, "id");
  request ("GET", "/api/v1/deployments", NULL, NULL, &deployments);
  CANOPY_ASSERT_CONTAINS (deployments.body, deployment);
  CANOPY_ASSERT_CONTAINS (deployments.body, "\"destination\" : \"/opt/app.bin\"");
  CANOPY_ASSERT_CONTAINS (deployments.body, "\"background\" : false");
  CANOPY_ASSERT_CONTAINS (deployments.body, "\"offices\" : [");
  /* The same content, groups and destination again: 409 naming it. */
  assert_refused ("POST", "/api/v1/deployments", body, 409, "duplicate-deployment", deployment);
  g_free (body);
  /* A group that is not assigned: 422 listing the assigned ones. */
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Finance\", \"Nowhere\"], "
                          "\"destination\": \"/opt/other.bin\"}", id);
  assert_refused ("POST", "/api/v1/deployments", body, 422, "group-not-assigned",
                  "The assigned groups are: Finance");
  assert_count ("/api/v1/deployments", 1);

  path = g_strdup_printf ("/api/v1/content?id=%s", id);
  assert_refused ("DELETE", path, NULL, 409, "content-in-use", "remove the deployment");
  request ("GET", "/metrics", NULL, NULL, &metrics);
  CANOPY_ASSERT_CONTAINS (metrics.body, "canopy_deployments 1\n");
  CANOPY_ASSERT_CONTAINS (metrics.body, "# TYPE canopy_deployment_devices_done gauge");
  CANOPY_ASSERT_CONTAINS (metrics.body, "# TYPE canopy_office_received_bytes gauge");
  /* This server has no content store: no store metrics, and its view says why. */
  CU_ASSERT_PTR_NULL (strstr (metrics.body, "canopy_content_store_"));
  request ("GET", "/api/v1/content-store", NULL, NULL, &store);
  CU_ASSERT_EQUAL (store.status, 200);
  configured = json_member (store.body, "configured");
  CU_ASSERT_STRING_EQUAL (configured, "false");
  CU_ASSERT_PTR_NULL (strstr (store.body, "\"quota\""));
  CANOPY_ASSERT_CONTAINS (store.body, id);
  CANOPY_ASSERT_CONTAINS (store.body, "\"stored\" : false");
  CANOPY_ASSERT_CONTAINS (store.body, "no <content-store> is configured");
  request ("POST", "/api/v1/publish", NULL, NULL, &published);
  CU_ASSERT_EQUAL (published.status, 200);
  count = json_member (published.body, "published");
  CU_ASSERT_STRING_EQUAL (count, "1");
  copying = json_member (published.body, "copying");
  CU_ASSERT_STRING_EQUAL (copying, "0");

  g_free (path);
  path = g_strdup_printf ("/api/v1/deployments?id=%s", deployment);
  request ("DELETE", path, NULL, NULL, &removed);
  CU_ASSERT_EQUAL (removed.status, 204);
  assert_count ("/api/v1/deployments", 0);
  g_free (path);
  path = g_strdup_printf ("/api/v1/content?id=%s", id);
  response_clear (&removed);
  request ("DELETE", path, NULL, NULL, &removed);
  CU_ASSERT_EQUAL (removed.status, 204);
  assert_count ("/api/v1/content", 0);
}

/* canopyctl against the same server: login, tables, --json, exit codes. */
#define ctl(output, ...) canopy_test_ctl (server.ctl_profile, (output), __VA_ARGS__)

static void
test_canopyctl (void)
{
  g_autofree char *key = g_build_filename (server.state, "shared-key", NULL);
  g_autofree char *wrong_token = g_build_filename (server.dir, "wrong-token", NULL);
  g_autofree char *bad_csv = g_build_filename (server.dir, "bad.csv", NULL);
  g_autofree char *profile = g_build_filename (server.dir, "ctl-profile", NULL);
  g_autofree char *certificate = g_build_filename (server.state, "console-cert.pem", NULL);
  g_autofree char *out = NULL;
  GStatBuf st;

  if (skipped ())
    return;
  g_assert (g_file_set_contents (wrong_token, "cnp_0123456789abcdef_0123456789abcdef0123456789abcdef"
                                              "0123456789abcdef0123456789abcdef\n", -1, NULL));
  g_assert (g_file_set_contents (bad_csv, BAD_CSV, -1, NULL));

  /* The shared key opens nothing any more, and canopyctl says why. */
  CU_ASSERT_EQUAL (ctl (&out, "login", "--server", server.url, "--fingerprint",
                        server.fingerprint, "--token-file", key, NULL),
                   2);
  CANOPY_ASSERT_CONTAINS (out, "not an admin token");
  CU_ASSERT_FALSE (g_file_test (profile, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "login", "--server", server.url, "--fingerprint",
                        server.fingerprint, "--token-file", wrong_token, NULL),
                   4);
  CANOPY_ASSERT_CONTAINS (out, "not valid here");
  CU_ASSERT_FALSE (g_file_test (profile, G_FILE_TEST_EXISTS));
  g_clear_pointer (&out, g_free);
  /* Not logged in is not a wrong token: 8, not 4. */
  CU_ASSERT_EQUAL (ctl (&out, "settings", NULL), 8);
  CANOPY_ASSERT_CONTAINS (out, "canopyctl login");
  g_clear_pointer (&out, g_free);

  CU_ASSERT_EQUAL (ctl (&out, "login", "--server", server.url, "--certificate", certificate,
                        "--token-file", server.token_file, NULL),
                   0);
  CANOPY_ASSERT_CONTAINS (out, "Logged in");
  CANOPY_ASSERT_CONTAINS (out, "as console-admin (administrator)");
  CU_ASSERT (g_stat (profile, &st) == 0 && (st.st_mode & 0777) == 0600);
  g_clear_pointer (&out, g_free);

  CU_ASSERT_EQUAL (ctl (&out, "settings", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Assigned groups            Finance, Sales");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "settings", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "\"assigned_groups\" : [");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "settings-set", "--remove-group", "Sales", NULL), 0);
  CU_ASSERT_PTR_NULL (strstr (out, "Sales"));
  CANOPY_ASSERT_CONTAINS (out, "No-office clients          fetch from the origin");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "settings-set", "--no-office-clients", "refuse", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "No-office clients          refused");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "settings-set", "--no-office-clients", "nobody", NULL), 1);
  CANOPY_ASSERT_CONTAINS (out, "\"origin\"");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "settings-set", "--no-office-clients", "origin", NULL), 0);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "health", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Overall: ok");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "topology-upload", bad_csv, NULL), 1);
  CANOPY_ASSERT_CONTAINS (out, "line 3, column 2 (parent)");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "topology-upload", bad_csv, NULL), 1);
  CANOPY_ASSERT_CONTAINS (out, "\"line\" : 3");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "topology-download", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Branch WiFi");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "offices", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Branch WiFi");
  g_clear_pointer (&out, g_free);
  /* The reason and the ID are one flag away: -o wide. */
  CU_ASSERT_EQUAL (ctl (&out, "devices", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "NAME ");
  CU_ASSERT_PTR_NULL (strstr (out, "WHY PREFERRED"));
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "devices", "-o", "wide", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "WHY PREFERRED");
  g_clear_pointer (&out, g_free);
  /* A filter that matches nothing: exit status 9, as grep's 1. */
  CU_ASSERT_EQUAL (ctl (&out, "devices", "--office", "Nowhere", NULL), 9);
  CANOPY_ASSERT_CONTAINS (out, "No device matches --office Nowhere");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "server-id", NULL), 0);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "licences-report", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "device_id,name,office");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "metrics", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "canopy_licence_seats 10");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "settings-set", NULL), 2);
  g_clear_pointer (&out, g_free);

  /* Admins, over the API. */
  CU_ASSERT_EQUAL (ctl (&out, "whoami", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "console-admin (administrator)");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "admin-add", "carl", "--role", "auditor", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Admin \"carl\" (auditor) added");
  CANOPY_ASSERT_CONTAINS (out, "cnp_");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "admins", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "carl");
  CU_ASSERT_PTR_NULL (strstr (out, "cnp_"));
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "admin-add", "carl", "--role", "operator", NULL), 1);
  CANOPY_ASSERT_CONTAINS (out, "exists with the role auditor");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "admin-revoke", "carl", NULL), 0);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "admins", NULL), 0);
  CU_ASSERT_PTR_NULL (strstr (out, "carl"));
  g_clear_pointer (&out, g_free);
  /* The last administrator stays. */
  CU_ASSERT_NOT_EQUAL (ctl (&out, "admin-revoke", "console-admin", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "last administrator");
}

/* The content commands, after test_canopyctl logged in. */
static void
test_canopyctl_content (void)
{
  g_autofree char *package = NULL, *out = NULL, *id = NULL, *deployment = NULL;

  if (skipped ())
    return;
  package = write_package ("tool.bin");
  CU_ASSERT_EQUAL (ctl (&out, "content-add", "--name", "Tool", "--version", "2.0", package,
                        NULL),
                   0);
  CANOPY_ASSERT_CONTAINS (out, "Registered Tool 2.0 as");
  CANOPY_ASSERT_CONTAINS (out, "KiB in 1 chunk, manifest signed");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "content", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "\"name\" : \"Tool\"");
  {
    g_autofree char *list = json_member (out, "content");
    g_autoptr (JsonNode) root = json_from_string (list, NULL);
    JsonObject *first = NULL;

    CU_ASSERT_EQUAL_FATAL (json_array_size (list), 1);
    first = json_array_get_object_element (json_node_get_array (root), 0);
    id = g_strdup (json_object_get_string_member (first, "id"));
  }
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "content", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "LOCATION");
  CANOPY_ASSERT_CONTAINS (out, package);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "content-add", "--name", "Tool", package, NULL), 2);
  g_clear_pointer (&out, g_free);
  /* A relative path is a usage mistake, caught before the server is asked. */
  CU_ASSERT_EQUAL (ctl (&out, "content-add", "--name", "Tool", "--version", "3", "tool.bin",
                        NULL),
                   2);
  CANOPY_ASSERT_CONTAINS (out, "absolute path");
  g_clear_pointer (&out, g_free);

  CU_ASSERT_EQUAL (ctl (&out, "deploy", "--content", "no-such-id", "--group", "Finance",
                        "--destination", "/opt/tool.bin", NULL),
                   7);
  CANOPY_ASSERT_CONTAINS (out, "No content has the ID, ID prefix or name \"no-such-id\"");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "deploy", "--content", id, "--group", "Finance", NULL), 2);
  g_clear_pointer (&out, g_free);
  /* Sales is no longer assigned (test_canopyctl removed it): refused,
   * with the groups that are, and nothing created. */
  CU_ASSERT_EQUAL (ctl (&out, "deploy", "--content", id, "--group", "Finance", "--group",
                        "Sales", "--destination", "/opt/tool.bin", NULL),
                   1);
  CANOPY_ASSERT_CONTAINS (out, "The group \"Sales\" is not assigned");
  CANOPY_ASSERT_CONTAINS (out, "The assigned groups are: Finance.");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "deploy", "--content", id, "--group", "NoSuchGroup",
                        "--destination", "/opt/tool.bin", NULL),
                   1);
  CANOPY_ASSERT_CONTAINS (out, "\"error\" : \"group-not-assigned\"");
  CANOPY_ASSERT_CONTAINS (out, "\"assigned_groups\" : [");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "deployments", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "\"deployments\" : []");
  g_clear_pointer (&out, g_free);
  /* The content by "NAME VERSION", and canopyctl says which it took. */
  CU_ASSERT_EQUAL (ctl (&out, "--json", "deploy", "--content", "Tool 2.0", "--group", "Finance",
                        "--destination", "/opt/tool.bin", NULL),
                   0);
  CANOPY_ASSERT_CONTAINS (out, "\"Tool 2.0\" is content Tool 2.0");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "deployments", NULL), 0);
  {
    g_autofree char *list = json_member (out, "deployments");
    g_autoptr (JsonNode) root = json_from_string (list, NULL);

    CU_ASSERT_EQUAL_FATAL (json_array_size (list), 1);
    deployment = g_strdup (json_object_get_string_member (
      json_array_get_object_element (json_node_get_array (root), 0), "id"));
  }
  g_clear_pointer (&out, g_free);
  /* The same again is refused: 409, naming the deployment that exists. */
  CU_ASSERT_EQUAL (ctl (&out, "deploy", "--content", id, "--group", "Finance",
                        "--destination", "/opt/tool.bin", NULL),
                   1);
  CANOPY_ASSERT_CONTAINS (out, deployment);
  CANOPY_ASSERT_CONTAINS (out, "already puts this content at /opt/tool.bin");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "deployments", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, deployment);
  CANOPY_ASSERT_CONTAINS (out, ": Tool 2.0 to Finance at /opt/tool.bin");
  g_clear_pointer (&out, g_free);
  /* No Finance device runs here, so the wait runs out: exit status 6. */
  CU_ASSERT_EQUAL (ctl (&out, "deployment-wait", deployment, "--timeout", "1", NULL), 6);
  CANOPY_ASSERT_CONTAINS (out, "ran out");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "deployment-wait", "no-such-id", NULL), 7);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "publish", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Published 1 content item:");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "publish", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "\"published\" : 1");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "content-remove", id, NULL), 1);
  CANOPY_ASSERT_CONTAINS (out, "remove the deployment first");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "deployment-cancel", deployment, NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "cancelled: every device stops it");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "--json", "deployments", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "\"state\" : \"cancelled\"");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "deployments", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "Cancelled; what each device did");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "deployment-cancel", "no-such-id", NULL), 7);
  g_clear_pointer (&out, g_free);
  /* A unique prefix of the ID is enough. */
  {
    g_autofree char *prefix = g_strndup (deployment, 8);

    CU_ASSERT_EQUAL (ctl (&out, "deployment-remove", prefix, NULL), 0);
    CANOPY_ASSERT_CONTAINS (out, deployment);
  }
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "content-remove", id, NULL), 0);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "content-remove", id, NULL), 7);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (ctl (&out, "content", NULL), 0);
  CANOPY_ASSERT_CONTAINS (out, "No content is registered");
}

/* A pinned certificate that is not the server's: refused, exit 3. */
static void
test_canopyctl_pin (void)
{
  g_autofree char *exe = program ("canopyctl");
  g_autofree char *profile = g_build_filename (server.dir, "pin-profile", NULL);
  const char *argv[] = { exe, "--profile", profile, "login", "--server", server.url,
                         "--fingerprint",
                         "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                         "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
                         "--token-file", server.token_file, NULL };
  g_autofree char *out = NULL;

  if (skipped ())
    return;
  CU_ASSERT_EQUAL (canopy_test_run (argv, &out), 3);
  CANOPY_ASSERT_CONTAINS (out, "is not the one the profile trusts");
  CU_ASSERT_FALSE (g_file_test (profile, G_FILE_TEST_EXISTS));
}

CANOPY_TEST_SUITE (console, "console", suite_init, suite_cleanup,
                   { "wrong token: 401 invalid token", test_wrong_key },
                   { "repeated wrong tokens: 429 with Retry-After", test_rate_limit },
                   { "settings applied live, audited, kept across restart",
                     test_settings_applied_audited_persisted },
                   { "topology: bad rows refused by line, round trip", test_topology },
                   { "health, server ID, devices, offices", test_health_and_reads },
                   { "licence report and metrics", test_licences_and_metrics },
                   { "malformed, unknown, oversized: 4xx, nothing applied", test_bad_input },
                   { "clients that leave cost the server no descriptor", test_clients_leave },
                   { "web console and liveness", test_web_console },
                   { "content and deployments: bad input refused, nothing created",
                     test_content_bad_input },
                   { "content and deployments: register, deploy, publish, remove",
                     test_content_and_deployments },
                   { "canopyctl: login, tables, --json, exit codes", test_canopyctl },
                   { "canopyctl: content, deploy, wait, publish, remove",
                     test_canopyctl_content },
                   { "canopyctl: a wrong pin is refused", test_canopyctl_pin })
