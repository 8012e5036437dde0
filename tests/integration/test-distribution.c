/* Content distribution end to end, with real processes on loopback: one
 * canopyd (SQLite, TCP, console API), an HTTP origin, and two offices of
 * four agents each on their own 127.0.N.0/24 addresses. The content is
 * registered and deployed through the console API; every copy must match
 * the original, and what reached each office from outside it must stay
 * within 1.05 × the content size. With a content store, canopyd seeds the
 * leads itself and the origin is read once, at registration. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/config.h"
#include "lib/keys.h"
#include "lib/plugin-loader.h"
#include "lib/shared-key.h"
#include "lib/transport.h"
#include "lib/wire.h"

#include <json-glib/json-glib.h>
#include <libsoup/soup.h>
#include <signal.h>
#include <string.h>

#define OFFICES 2
#define AGENTS_PER_OFFICE 4
#define CONTENT_SIZE content_size ()
/* Slot for the extra agent the corrupted-peer test starts. */
#define N_AGENTS (OFFICES * AGENTS_PER_OFFICE + 1)

typedef struct {
  char *dir;
  char *config;
  char *state;
  char *package;
  guint agent_port;
  guint console_port;
  CanopyTestProcess *server;
  CanopyTestProcess *origin;
  CanopyTestProcess *agents[N_AGENTS];
  char *origin_url;
  char *token;
  SoupSession *session;
  const char *wan_rate;  /* the offices' WAN rate in the topology; "" unlimited */
  gboolean content_store; /* canopyd keeps a copy in DIR/content */
  char *device_ids[N_AGENTS];
} Site;

static char *
program (const char *name)
{
  return canopy_test_build_path (name, NULL);
}

/* Under valgrind, where every byte costs fifty times more, a few chunks
 * cover the same code. */
static gsize
content_size (void)
{
  gsize mib = canopy_test_valgrind () ? 4 : 64;

  return mib * 1024 * 1024 + 12345;
}

static gboolean
available (void)
{
  g_autofree char *tcp = canopy_test_build_path ("plugins", "transport-tcp", ".libs",
                                                 "canopy-tcp.so", NULL);
  g_autofree char *sqlite = canopy_test_build_path ("plugins", "backend-sqlite", ".libs",
                                                    "canopy-sqlite.so", NULL);

  if (g_file_test (tcp, G_FILE_TEST_EXISTS) && g_file_test (sqlite, G_FILE_TEST_EXISTS))
    return TRUE;
  printf ("\n    SKIPPED: needs the tcp transport and the sqlite backend, and one was not "
          "built\n");
  return FALSE;
}

static guint
port_after (const char *output, const char *prefix)
{
  const char *at = strstr (output, prefix);

  return at != NULL ? (guint) g_ascii_strtoull (at + strlen (prefix), NULL, 10) : 0;
}

static void
write_server_config (Site *s)
{
  g_autofree char *topology = g_build_filename (s->dir, "topology.csv", NULL);
  g_autofree char *store = s->content_store
                             ? g_strdup_printf ("  <content-store directory='%s/content'/>\n",
                                                s->dir)
                             : g_strdup ("");
  g_autofree char *xml = g_strdup_printf (
    "<server>\n"
    "  <state-directory>%s</state-directory>\n"
    "  <assigned-group>Branch</assigned-group>\n"
    "  <distribution-optimization enabled='true' topology='%s'/>\n"
    "  <heartbeat interval='1'/>\n"
    "  <console address='127.0.0.1' port='%u'/>\n"
    "%s"
    "  <backend plugin='sqlite'/>\n"
    "  <transport plugin='tcp'><listen address='127.0.0.1' port='%u'/></transport>\n"
    "</server>\n",
    s->state, topology, s->console_port, store, s->agent_port);

  g_autofree char *csv = g_strdup_printf ("office,parent,type,subnets,wan_rate\n"
                                          "North,,Default,127.0.1.0/24,%s\n"
                                          "South,,Default,127.0.2.0/24,%s\n",
                                          s->wan_rate, s->wan_rate);

  g_assert (g_file_set_contents (topology, csv, -1, NULL));
  g_assert (g_file_set_contents (s->config, xml, -1, NULL));
}

static void
server_start (Site *s)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "--config", s->config, NULL };
  const char *output;

  s->server = canopy_test_process_spawn (argv, NULL);
  CU_ASSERT_FATAL (s->server != NULL
                   && canopy_test_process_wait_output (s->server, " started: ", 20));
  output = canopy_test_process_output (s->server);
  s->console_port = port_after (output, "Console API listening on https://127.0.0.1:");
  s->agent_port = port_after (output, "tcp 127.0.0.1 port ");
  CU_ASSERT_FATAL (s->console_port != 0 && s->agent_port != 0);
  /* Keep the ports across restarts: agents are configured with them. */
  write_server_config (s);
}

static void
origin_start (Site *s)
{
  g_autofree char *origin = program ("tests/canopy-test-origin");
  const char *argv[] = { origin, s->package, "127.0.0.1", "0", NULL };
  const char *line;

  s->origin = canopy_test_process_spawn (argv, NULL);
  CU_ASSERT_FATAL (s->origin != NULL
                   && canopy_test_process_wait_output (s->origin, "origin http://", 10));
  line = strstr (canopy_test_process_output (s->origin), "origin ");
  s->origin_url = g_strndup (line + strlen ("origin "), strcspn (line + strlen ("origin "), "\n"));
}

static CanopyTestProcess *
agent_start (Site *s, guint office, guint index)
{
  g_autofree char *agent = program ("canopy-agent");
  g_autofree char *name = g_strdup_printf ("agent-%u-%u", office, index);
  g_autofree char *state = g_build_filename (s->dir, name, NULL);
  g_autofree char *config = g_strconcat (state, ".xml", NULL);
  g_autofree char *key_from = g_build_filename (s->state, "shared-key", NULL);
  g_autofree char *key = g_build_filename (state, "shared-key", NULL);
  g_autofree char *id_path = g_build_filename (state, "device-id", NULL);
  g_autofree char *text = NULL;
  g_autofree char *xml = g_strdup_printf (
    "<agent><server host='127.0.0.1' port='%u'/><state-directory>%s</state-directory>"
    "<group>Branch</group><peers address='127.0.%u.%u' port='0'/>"
    "<transport plugin='tcp'/></agent>",
    s->agent_port, state, office, 10 + index);
  const char *argv[] = { agent, "--config", config, NULL };
  CanopyTestProcess *proc;
  const char *id;
  guint slot;

  g_mkdir_with_parents (state, 0700);
  g_assert (g_file_get_contents (key_from, &text, NULL, NULL));
  g_assert (g_file_set_contents_full (key, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_assert (g_file_set_contents (config, xml, -1, NULL));
  proc = canopy_test_process_spawn (argv, NULL);
  g_assert (proc != NULL);
  /* The agent says its ID when it makes it; a restarted one has it on disk. */
  CU_ASSERT_FATAL (canopy_test_process_wait_output (proc, " started", 20));
  g_free (text);
  g_assert (g_file_get_contents (id_path, &text, NULL, NULL));
  id = g_strstrip (text);
  slot = index < AGENTS_PER_OFFICE ? (office - 1) * AGENTS_PER_OFFICE + index : N_AGENTS - 1;
  g_free (s->device_ids[slot]);
  s->device_ids[slot] = g_strdup (id);
  return proc;
}

/* The server's certificate was made by this test's own `canopyd init`. */
static gboolean
accept_own_certificate (SoupMessage *msg, GTlsCertificate *certificate,
                        GTlsCertificateFlags errors, gpointer user_data)
{
  return TRUE;
}

static JsonNode *
api (Site *s, const char *method, const char *path, const char *body, guint expected)
{
  g_autofree char *uri = g_strdup_printf ("https://127.0.0.1:%u%s", s->console_port, path);
  g_autofree char *bearer = g_strconcat ("Bearer ", s->token, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr (GBytes) response = NULL;
  g_autoptr (GError) error = NULL;

  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_own_certificate), NULL);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Authorization", bearer);
  if (body != NULL)
    {
      g_autoptr (GBytes) bytes = g_bytes_new (body, strlen (body));
      soup_message_set_request_body_from_bytes (msg, "application/json", bytes);
    }
  response = soup_session_send_and_read (s->session, msg, NULL, &error);
  if (error != NULL)
    fprintf (stderr, "\n    %s %s failed; canopyd said: %s\n", method, path,
             canopy_test_process_output (s->server));
  CANOPY_ASSERT_NO_ERROR (error);
  if (soup_message_get_status (msg) != expected)
    fprintf (stderr, "\n    %s %s: %u %.*s\n", method, path, soup_message_get_status (msg),
             (int) g_bytes_get_size (response), (const char *) g_bytes_get_data (response, NULL));
  CU_ASSERT_EQUAL_FATAL (soup_message_get_status (msg), expected);
  return json_from_string (g_bytes_get_data (response, NULL), NULL);
}

static char *
make_token (const Site *s)
{
  g_autofree char *path = g_build_filename (s->state, "shared-key", NULL);
  g_autoptr (CanopySharedKey) key = canopy_shared_key_load (path, NULL);
  guint8 token[CANOPY_KEYS_CONSOLE_TOKEN_SIZE];
  GString *hex = g_string_new (NULL);

  g_assert (key != NULL && canopy_keys_derive_console_token (key, token, NULL));
  for (gsize i = 0; i < sizeof token; i++)
    g_string_append_printf (hex, "%02x", token[i]);
  return g_string_free (hex, FALSE);
}

static void
write_package (Site *s)
{
  guint8 *data = g_malloc (CONTENT_SIZE);
  guint32 x = 2463534242u;

  for (gsize i = 0; i < CONTENT_SIZE; i++)
    {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      data[i] = (guint8) x;
    }
  s->package = g_build_filename (s->dir, "package.bin", NULL);
  g_assert (g_file_set_contents (s->package, (const char *) data, CONTENT_SIZE, NULL));
  g_free (data);
}

static void
site_start (Site *s)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *init[] = { canopyd, "init", "--config", NULL, NULL };
  g_autofree char *out = NULL;

  s->dir = canopy_test_make_tmpdir ("distribution");
  s->config = g_build_filename (s->dir, "canopyd.xml", NULL);
  s->state = g_build_filename (s->dir, "state", NULL);
  write_server_config (s);
  init[3] = s->config;
  CU_ASSERT_EQUAL_FATAL (canopy_test_run (init, &out), 0);
  server_start (s);
  write_package (s);
  origin_start (s);
  s->token = make_token (s);
  s->session = soup_session_new_with_options ("timeout", 120, NULL);
  for (guint o = 0; o < OFFICES; o++)
    for (guint i = 0; i < AGENTS_PER_OFFICE; i++)
      s->agents[o * AGENTS_PER_OFFICE + i] = agent_start (s, o + 1, i);
}

/* The site of the running test. It is static so that a test that stops
 * at a failed fatal assertion still has its processes stopped: by the
 * next test, or by the suite's cleanup. */
static Site site;

/* A daemon that did not exit with 0 (under valgrind, 99 is a memory error
 * or a leak) shows the end of its output, which says why. */
static void
assert_clean_exit (CanopyTestProcess *proc, int status)
{
  const char *output = canopy_test_process_output (proc);
  gsize length = strlen (output);

  CU_ASSERT_EQUAL (status, 0);
  if (status != 0)
    fprintf (stderr, "\n    exit status %d; its output ends:\n%s\n", status,
             output + (length > 8000 ? length - 8000 : 0));
}

/* Stops every process of @s; @check asserts that each stopped cleanly
 * (not in a suite cleanup, where CUnit takes no assertions). */
static void
site_stop (Site *s, gboolean check)
{
  int status;

  for (guint i = 0; i < G_N_ELEMENTS (s->agents); i++)
    if (s->agents[i] != NULL)
      {
        canopy_test_process_signal (s->agents[i], SIGTERM);
        status = canopy_test_process_wait_exit (s->agents[i], 20);
        if (check)
          assert_clean_exit (s->agents[i], status);
        g_clear_pointer (&s->agents[i], canopy_test_process_free);
      }
  if (s->server != NULL)
    {
      canopy_test_process_signal (s->server, SIGTERM);
      status = canopy_test_process_wait_exit (s->server, 20);
      if (check)
        assert_clean_exit (s->server, status);
      g_clear_pointer (&s->server, canopy_test_process_free);
    }
  if (s->origin != NULL)
    {
      canopy_test_process_signal (s->origin, SIGTERM);
      canopy_test_process_wait_exit (s->origin, 10);
      g_clear_pointer (&s->origin, canopy_test_process_free);
    }
  g_clear_object (&s->session);
  for (guint i = 0; i < G_N_ELEMENTS (s->device_ids); i++)
    g_free (s->device_ids[i]);
  g_free (s->dir);
  g_free (s->config);
  g_free (s->state);
  g_free (s->package);
  g_free (s->origin_url);
  g_free (s->token);
}

/* Registers the package; returns its content ID. */
static char *
register_package (Site *s)
{
  g_autofree char *content_body = g_strdup_printf (
    "{\"name\": \"Package\", \"version\": \"1.0\", \"location\": \"%s\"}", s->origin_url);
  g_autoptr (JsonNode) content = api (s, "POST", "/api/v1/content", content_body,
                                      SOUP_STATUS_CREATED);
  const char *content_id = json_object_get_string_member (json_node_get_object (content), "id");

  CU_ASSERT_EQUAL (json_object_get_int_member (json_node_get_object (content), "size"),
                   CONTENT_SIZE);
  return g_strdup (content_id);
}

/* Runs the main context for @ms, so the processes' output keeps being
 * read and none of them blocks on a full pipe. */
static void
pump (guint ms)
{
  gint64 until = g_get_monotonic_time () + (gint64) ms * 1000;

  while (g_get_monotonic_time () < until)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (10000);
}

/* Waits until @expected devices report the deployment done; returns the
 * deployment's JSON (the last poll). */
static JsonNode *
wait_done (Site *s, guint expected, guint timeout_s)
{
  gint64 deadline =
    g_get_monotonic_time () + (gint64) canopy_test_timeout (timeout_s) * G_USEC_PER_SEC;

  for (;;)
    {
      g_autoptr (JsonNode) list = api (s, "GET", "/api/v1/deployments", NULL, SOUP_STATUS_OK);
      JsonArray *array = json_node_get_array (list);
      JsonObject *d = json_array_get_length (array) > 0 ? json_array_get_object_element (array, 0)
                                                       : NULL;

      if (d != NULL && json_object_get_int_member (d, "done") >= expected)
        return json_node_copy (json_array_get_element (array, 0));
      if (g_get_monotonic_time () > deadline)
        {
          g_autofree char *text = json_to_string (list, TRUE);
          fprintf (stderr, "\n    not done in %u s: %s\n", timeout_s, text);
          return NULL;
        }
      pump (500);
    }
}

static gboolean
same_file (const char *a, const char *b)
{
  g_autofree char *x = NULL, *y = NULL;
  gsize nx = 0, ny = 0;

  return g_file_get_contents (a, &x, &nx, NULL) && g_file_get_contents (b, &y, &ny, NULL)
         && nx == ny && memcmp (x, y, nx) == 0;
}

/* The deployment as the API lists it (the only one of the run). */
static JsonObject *
deployment (Site *s, JsonNode **holder)
{
  JsonArray *array;

  *holder = api (s, "GET", "/api/v1/deployments", NULL, SOUP_STATUS_OK);
  array = json_node_get_array (*holder);
  return json_array_get_length (array) > 0 ? json_array_get_object_element (array, 0) : NULL;
}

static JsonObject *
office_of (JsonObject *d, const char *name)
{
  JsonArray *offices = json_object_get_array_member (d, "offices");

  for (guint i = 0; i < json_array_get_length (offices); i++)
    {
      JsonObject *office = json_array_get_object_element (offices, i);
      if (g_str_equal (json_object_get_string_member (office, "office"), name))
        return office;
    }
  return NULL;
}

/* Waits until North's lead has fetched @fraction of the content from the
 * origin; returns the lead's device ID. */
static char *
wait_north_progress (Site *s, double fraction)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) canopy_test_timeout (120) * G_USEC_PER_SEC;

  while (g_get_monotonic_time () < deadline)
    {
      g_autoptr (JsonNode) holder = NULL;
      JsonObject *d = deployment (s, &holder);
      JsonObject *north = d != NULL ? office_of (d, "North") : NULL;

      if (north != NULL
          && json_object_get_int_member (north, "bytes_origin") >= fraction * CONTENT_SIZE
          && json_object_get_string_member (north, "lead")[0] != '\0')
        return g_strdup (json_object_get_string_member (north, "lead"));
      pump (200);
    }
  return NULL;
}

/* kill -9, as a power cut or a crash would. */
static void
kill_hard (CanopyTestProcess **proc)
{
  canopy_test_process_signal (*proc, SIGKILL);
  canopy_test_process_wait_exit (*proc, 10);
  g_clear_pointer (proc, canopy_test_process_free);
}

static guint
agent_index (Site *s, const char *device_id)
{
  for (guint i = 0; i < N_AGENTS; i++)
    if (g_strcmp0 (s->device_ids[i], device_id) == 0)
      return i;
  g_assert_not_reached ();
}

/* What the origin served, over all offices: the count the origin keeps
 * itself, so a device that died before reporting cannot hide anything. */
static guint64
stop_origin (Site *s)
{
  const char *line;
  guint64 served;

  canopy_test_process_signal (s->origin, SIGTERM);
  canopy_test_process_wait_exit (s->origin, 10);
  line = strstr (canopy_test_process_output (s->origin), "served ");
  served = line != NULL ? g_ascii_strtoull (line + strlen ("served "), NULL, 10) : G_MAXUINT64;
  g_clear_pointer (&s->origin, canopy_test_process_free);
  return served;
}

/* Each office takes the content across its WAN link at most 1.05 times:
 * by what the devices report per office, and by what the origin served in
 * all. The server reads the content once to build its manifest, and every
 * office needs it once, so all of the excess over those copies must stay
 * within 0.05 of one copy. */
static void
assert_wan_once (Site *s, JsonNode *done)
{
  guint64 served = stop_origin (s);

  JsonArray *offices = json_object_get_array_member (json_node_get_object (done), "offices");
  /* Under valgrind a lead can take longer than the stall allowance to
   * verify its first chunk, and is rightly replaced. */
  gboolean check = !canopy_test_valgrind ();

  printf ("[origin served %.3f × content: the server's read and %u offices%s] ",
          (double) served / CONTENT_SIZE, OFFICES, check ? "" : ", not checked under valgrind");
  CU_ASSERT (!check || served <= (guint64) ((1 + OFFICES + 0.05) * CONTENT_SIZE));

  CU_ASSERT_EQUAL (json_array_get_length (offices), OFFICES);
  for (guint i = 0; i < json_array_get_length (offices); i++)
    {
      JsonObject *office = json_array_get_object_element (offices, i);
      double ratio = json_object_get_double_member (office, "wan_ratio");

      printf ("[%s: WAN %.3f × content] ", json_object_get_string_member (office, "office"),
              ratio);
      CU_ASSERT (ratio > 0.0 && (!check || ratio <= 1.05));
    }
}

/* Deploys registered content to the Branch group. */
static void
deploy_content (Site *s, const char *content_id)
{
  g_autofree char *body = NULL;
  g_autoptr (JsonNode) created = NULL;

  /* The agents share this machine's file system, so they share the
   * destination; each checks its copy's SHA-256 before the atomic rename,
   * and the server counts a device done only when the hash it reports is
   * the content's. */
  body = g_strdup_printf ("{\"content\": \"%s\", \"groups\": [\"Branch\"], "
                          "\"destination\": \"%s/copies/package.bin\"}",
                          content_id, s->dir);
  created = api (s, "POST", "/api/v1/deployments", body, SOUP_STATUS_CREATED);
}

static char *
deploy (Site *s)
{
  char *content_id = register_package (s);

  deploy_content (s, content_id);
  return content_id;
}

static void
assert_copy (Site *s)
{
  g_autofree char *copy = g_build_filename (s->dir, "copies", "package.bin", NULL);

  CU_ASSERT (same_file (copy, s->package));
}

static Site *
site_begin_full (const char *wan_rate, gboolean content_store)
{
  site_stop (&site, FALSE);
  memset (&site, 0, sizeof site);
  site.wan_rate = wan_rate;
  site.content_store = content_store;
  site_start (&site);
  return &site;
}

static Site *
site_begin (const char *wan_rate)
{
  return site_begin_full (wan_rate, FALSE);
}

static void
site_end (void)
{
  site_stop (&site, TRUE);
  memset (&site, 0, sizeof site);
}

static int
suite_cleanup (void)
{
  site_stop (&site, FALSE);
  memset (&site, 0, sizeof site);
  return 0;
}

static void
test_two_offices (void)
{
  Site *s = NULL;
  const char *wan_rate = "";
  g_autofree char *content_id = NULL;
  g_autoptr (JsonNode) done = NULL;

  if (!available ())
    return;
  s = site_begin (wan_rate);
  content_id = deploy (s);
  done = wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_wan_once (s, done);
  assert_copy (s);
  site_end ();
}

/* The lead of North is killed half way; the next preferred device takes
 * over from what the office holds, and the office still takes the
 * content across its WAN link about once. */
static void
test_lead_killed (void)
{
  Site *s = NULL;
  const char *wan_rate = "40M";
  g_autofree char *content_id = NULL;
  g_autofree char *lead = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint index;

  if (!available ())
    return;
  s = site_begin (wan_rate);
  content_id = deploy (s);
  lead = wait_north_progress (s, 0.4);
  CU_ASSERT_PTR_NOT_NULL_FATAL (lead);
  index = agent_index (s, lead);
  kill_hard (&s->agents[index]);
  done = wait_done (s, OFFICES * AGENTS_PER_OFFICE - 1, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_wan_once (s, done);
  assert_copy (s);
  site_end ();
}

/* An agent killed half way resumes from its verified chunks. */
static void
test_agent_restart_resumes (void)
{
  Site *s = NULL;
  const char *wan_rate = "40M";
  g_autofree char *content_id = NULL;
  g_autofree char *lead = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint victim;

  if (!available ())
    return;
  s = site_begin (wan_rate);
  content_id = deploy (s);
  lead = wait_north_progress (s, 0.5);
  CU_ASSERT_PTR_NOT_NULL_FATAL (lead);
  /* A North device that is not the lead. */
  victim = agent_index (s, lead) == 0 ? 1 : 0;
  kill_hard (&s->agents[victim]);
  s->agents[victim] = agent_start (s, 1, victim);
  CU_ASSERT (canopy_test_process_wait_output (s->agents[victim], "chunks already verified", 60));
  done = wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_wan_once (s, done);
  site_end ();
}

/* canopyd stops half way and comes back: deployments and progress are
 * read back from its database, agents reconnect and finish. */
/* The health check's entry @name as "STATUS: MESSAGE". */
static char *
health_entry (Site *s, const char *name)
{
  g_autoptr (JsonNode) health = api (s, "GET", "/api/v1/health", NULL, SOUP_STATUS_OK);
  JsonArray *checks = json_object_get_array_member (json_node_get_object (health), "checks");

  for (guint i = 0; i < json_array_get_length (checks); i++)
    {
      JsonObject *check = json_array_get_object_element (checks, i);

      if (g_str_equal (json_object_get_string_member (check, "name"), name))
        return g_strdup_printf ("%s: %s", json_object_get_string_member (check, "status"),
                                json_object_get_string_member (check, "message"));
    }
  return g_strdup ("");
}

static void
test_server_restart (void)
{
  Site *s = NULL;
  const char *wan_rate = "40M";
  g_autofree char *content_id = NULL;
  g_autofree char *lead = NULL;
  g_autofree char *last_stop = NULL;
  g_autoptr (JsonNode) done = NULL;

  if (!available ())
    return;
  s = site_begin (wan_rate);
  content_id = deploy (s);
  lead = wait_north_progress (s, 0.3);
  CU_ASSERT_PTR_NOT_NULL_FATAL (lead);
  kill_hard (&s->server);
  server_start (s);
  /* The admin hears of the crash, in the log and in the health check. */
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s->server), "did not stop cleanly");
  last_stop = health_entry (s, "last-stop");
  CU_ASSERT (g_str_has_prefix (last_stop, "warning: "));
  CANOPY_ASSERT_CONTAINS (last_stop, "stopped without shutting down");
  done = wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_copy (s);
  site_end ();
}

/* A device whose cached chunks were damaged after it verified them serves
 * bad data: a newcomer detects every bad chunk, drops that peer, still
 * completes, and the server names the device that served them. */
static void
test_corrupted_peer (void)
{
  Site *s = NULL;
  const char *wan_rate = "";
  g_autofree char *content_id = NULL;
  g_autofree char *chunks = NULL;
  g_autoptr (JsonNode) done = NULL;
  g_autoptr (JsonNode) again = NULL;
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (!available ())
    return;
  s = site_begin (wan_rate);
  content_id = deploy (s);
  done = wait_done (s, OFFICES * AGENTS_PER_OFFICE, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);

  /* Every North device but agent-1-0 leaves; agent-1-0's disk goes bad. */
  for (guint i = 1; i < AGENTS_PER_OFFICE; i++)
    {
      canopy_test_process_signal (s->agents[i], SIGTERM);
      canopy_test_process_wait_exit (s->agents[i], 20);
      g_clear_pointer (&s->agents[i], canopy_test_process_free);
    }
  chunks = g_build_filename (s->dir, "agent-1-0", "cache", content_id, NULL);
  dir = g_dir_open (chunks, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "chunk-"))
      {
        g_autofree char *path = g_build_filename (chunks, name, NULL);
        g_autofree char *data = NULL;
        gsize length;

        g_assert (g_file_get_contents (path, &data, &length, NULL));
        data[length / 3] ^= 0x5a;
        g_assert (g_file_set_contents (path, data, (gssize) length, NULL));
      }
  /* A newcomer in North, and a healthy North peer back online. */
  s->agents[N_AGENTS - 1] = agent_start (s, 1, AGENTS_PER_OFFICE);
  s->agents[1] = agent_start (s, 1, 1);
  again = wait_done (s, OFFICES * AGENTS_PER_OFFICE + 1, 180);
  CU_ASSERT_PTR_NOT_NULL_FATAL (again);
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s->server), "failed verification");
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s->server), s->device_ids[0]);
  site_end ();
}


/* The copy canopyd keeps of @content_id. */
static char *
stored_copy (Site *s, const char *content_id)
{
  return g_build_filename (s->dir, "content", content_id, NULL);
}

static guint64
office_bytes (JsonObject *d, const char *office, const char *kind)
{
  g_autofree char *member = g_strconcat ("bytes_", kind, NULL);
  JsonObject *o = office_of (d, office);

  CU_ASSERT_PTR_NOT_NULL_FATAL (o);
  return (guint64) json_object_get_int_member (o, member);
}

static const char *const office_names[OFFICES] = { "North", "South" };

/* A site whose canopyd has a content store, with the package registered;
 * @copy (optional) gets the path of the stored copy. */
static Site *
store_site_begin (char **content_id, char **copy)
{
  Site *s = site_begin_full ("", TRUE);

  *content_id = register_package (s);
  if (copy != NULL)
    *copy = stored_copy (s, *content_id);
  return s;
}

/* canopyd keeps a copy when it registers the content, and the origin then
 * goes away for good: each office's lead takes the content from the
 * server's store, the offices share it, and the origin served exactly the
 * one read that built the manifest. */
static void
test_content_store_seeds (void)
{
  Site *s = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *copy = NULL;
  g_autoptr (JsonNode) done = NULL;
  guint64 served;
  JsonObject *d;

  if (!available ())
    return;
  s = store_site_begin (&content_id, &copy);
  CU_ASSERT (same_file (copy, s->package));
  CU_ASSERT (canopy_test_process_wait_output (s->server, "The content store keeps", 10));
  served = stop_origin (s);
  printf ("[origin served %.3f × content] ", (double) served / CONTENT_SIZE);
  CU_ASSERT_EQUAL (served, CONTENT_SIZE);

  deploy_content (s, content_id);
  done = wait_done (s, OFFICES * AGENTS_PER_OFFICE, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_copy (s);
  d = json_node_get_object (done);
  for (guint o = 0; o < OFFICES; o++)
    {
      const char *office = office_names[o];
      guint64 server = office_bytes (d, office, "server");

      printf ("[%s: %.3f × content from the server] ", office, (double) server / CONTENT_SIZE);
      /* The lead takes it all from the server; the office shares it. */
      CU_ASSERT (server >= CONTENT_SIZE && server <= (guint64) (1.05 * CONTENT_SIZE));
      CU_ASSERT_EQUAL (office_bytes (d, office, "origin"), 0);
      CU_ASSERT (office_bytes (d, office, "office_peer") > 0);
    }
  site_end ();
}

/* A byte of the stored copy rots after registration: the server checks
 * each chunk before it sends it, so the damaged one never leaves it; it
 * says which, and the leads take that chunk from the origin. */
static void
test_content_store_damaged (void)
{
  Site *s = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *copy = NULL;
  g_autoptr (JsonNode) done = NULL;
  const long damaged = 5 * 1024 * 1024 + 4321;
  FILE *file;
  int byte;
  JsonObject *d;

  if (!available ())
    return;
  s = store_site_begin (&content_id, &copy);
  /* In place, as a failing disk would: the server has the file mapped. */
  file = fopen (copy, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL (file);
  g_assert (fseek (file, damaged, SEEK_SET) == 0 && (byte = fgetc (file)) != EOF);
  g_assert (fseek (file, damaged, SEEK_SET) == 0 && fputc (byte ^ 0x01, file) != EOF);
  g_assert (fclose (file) == 0);

  deploy_content (s, content_id);
  done = wait_done (s, OFFICES * AGENTS_PER_OFFICE, 120);
  CU_ASSERT_PTR_NOT_NULL_FATAL (done);
  assert_copy (s);
  CU_ASSERT (canopy_test_process_wait_output (
    s->server, "Chunk 5 of \"Package\" 1.0 in the content store does not match", 10));
  d = json_node_get_object (done);
  for (guint o = 0; o < OFFICES; o++)
    {
      const char *office = office_names[o];
      guint64 origin = office_bytes (d, office, "origin");
      guint64 server = office_bytes (d, office, "server");

      printf ("[%s: %.3f × content from the server, %.3f from the origin] ", office,
              (double) server / CONTENT_SIZE, (double) origin / CONTENT_SIZE);
      /* Everything but the damaged chunk came from the server. */
      CU_ASSERT (origin >= 1024 * 1024);
      CU_ASSERT (server >= CONTENT_SIZE - origin);
      CU_ASSERT (server + origin <= (guint64) (1.05 * CONTENT_SIZE));
    }
  site_end ();
}


/* A hand-made peer of the content store, to send it what no agent would. */
typedef struct {
  CanopyPluginLoader *loader; /* one each: a loader loads a plugin once */
  CanopyConfig *config;
  CanopyTransport *transport;
  CanopyTransportConnection *conn;
  gboolean failed;
  gboolean closed;
  guint counts[CANOPY_WIRE_BUSY + 1];
  GBytes *data; /* the last chunk received */
} Prober;

static void
prober_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                gpointer user_data)
{
  Prober *p = user_data;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (header, &kind, NULL);

  if (body == NULL || kind > CANOPY_WIRE_BUSY)
    return;
  p->counts[kind]++;
  if (kind == CANOPY_WIRE_DATA && payload != NULL)
    {
      g_clear_pointer (&p->data, g_bytes_unref);
      p->data = g_bytes_ref (payload);
    }
}

static void
prober_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  ((Prober *) user_data)->closed = TRUE;
}

static void
prober_ignore (CanopyTransportConnection *conn, gpointer user_data)
{
}

static const CanopyTransportEvents prober_events = {
  .incoming = prober_ignore,
  .message = prober_message,
  .drained = prober_ignore,
  .closed = prober_closed,
};

static void
prober_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Prober *p = user_data;

  p->conn = canopy_transport_connect_finish (p->transport, result, NULL);
  p->failed = p->conn == NULL;
}

/* Runs the main context until *@flag is set, for 20 s at most. */
static gboolean
wait_for (const gboolean *flag)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (!*flag && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return *flag;
}

static void
prober_connect (Site *s, Prober *p)
{
  g_autofree char *path = g_build_filename (s->state, "shared-key", NULL);
  g_autoptr (CanopySharedKey) key = canopy_shared_key_load (path, NULL);
  const CanopyConfigNode *element;
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *tcp;
  CanopyTransportCredentials creds;
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  p->loader = canopy_plugin_loader_new (NULL);
  p->config = canopy_config_load_data (
    "<agent><server host='127.0.0.1'/><transport plugin='tcp'/></agent>", -1, "prober.xml",
    CANOPY_SCHEMA_AGENT, NULL);
  element = canopy_config_node_get_child (canopy_config_get_root (p->config), "transport");
  tcp = canopy_plugin_loader_load_for_node (p->loader, element, CANOPY_PLUGIN_KIND_TRANSPORT,
                                            &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (key != NULL && tcp != NULL
                   && canopy_keys_make_transport_credentials (key, "prober", &creds, &error));
  p->transport = canopy_transport_new (tcp, element, &creds, NULL, &prober_events, p, NULL);
  canopy_keys_wipe (creds.secret, sizeof creds.secret);
  CU_ASSERT_PTR_NOT_NULL_FATAL (p->transport);
  canopy_transport_connect_async (p->transport, "127.0.0.1", (guint16) s->agent_port, NULL,
                                  prober_connected, p);
  while (p->conn == NULL && !p->failed && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  CU_ASSERT_PTR_NOT_NULL_FATAL (p->conn);
}

static void
prober_send (Prober *p, CanopyWireKind kind, GVariant *body)
{
  CU_ASSERT (canopy_wire_send (p->conn, kind, body, NULL, NULL));
}

/* Runs the main context until the prober has @n messages of @kind. */
static gboolean
prober_wait (Prober *p, CanopyWireKind kind, guint n)
{
  gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;

  while (p->counts[kind] < n && !p->closed && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return p->counts[kind] >= n;
}

static void
prober_clear (Prober *p)
{
  g_clear_pointer (&p->transport, canopy_transport_free);
  g_clear_pointer (&p->data, g_bytes_unref);
  g_clear_pointer (&p->config, canopy_config_free);
  g_clear_pointer (&p->loader, canopy_plugin_loader_free);
}

/* What no agent sends: chunks past the end, unknown content, a frame that
 * is not one. Each gets a clear answer or a closed connection, and the
 * store goes on serving. */
static void
test_content_store_bad_peer (void)
{
  Site *s = NULL;
  g_autofree char *content_id = NULL;
  g_autofree char *package = NULL;
  g_autoptr (GBytes) garbage = g_bytes_new_static ("not a canopy frame", 18);
  const char *ids[2] = { NULL, NULL };
  Prober bad = { 0 }, good = { 0 };
  gsize length;

  if (!available ())
    return;
  s = store_site_begin (&content_id, NULL);
  ids[0] = content_id;
  prober_connect (s, &bad);
  prober_send (&bad, CANOPY_WIRE_PEER_HELLO, g_variant_new ("(s^as)", "prober", ids));
  CU_ASSERT (prober_wait (&bad, CANOPY_WIRE_HAVE, 1));
  CU_ASSERT_EQUAL (bad.counts[CANOPY_WIRE_PEER_HELLO], 1);

  prober_send (&bad, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", content_id, 100000));
  prober_send (&bad, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", "no-such-content", 0));
  CU_ASSERT (prober_wait (&bad, CANOPY_WIRE_CANCEL, 2));
  CU_ASSERT (canopy_test_process_wait_output (s->server, "the request is refused", 10));
  CU_ASSERT_FALSE (bad.closed);

  /* A frame that is not one: that connection goes, nothing else. */
  CU_ASSERT (canopy_transport_send (bad.conn, garbage, NULL, NULL));
  CU_ASSERT (wait_for (&bad.closed));

  prober_connect (s, &good);
  prober_send (&good, CANOPY_WIRE_PEER_HELLO, g_variant_new ("(s^as)", "prober", ids));
  prober_send (&good, CANOPY_WIRE_REQUEST, g_variant_new ("(su)", content_id, 1));
  CU_ASSERT (prober_wait (&good, CANOPY_WIRE_DATA, 1));
  g_assert (g_file_get_contents (s->package, &package, &length, NULL));
  CU_ASSERT_FATAL (good.data != NULL && g_bytes_get_size (good.data) == 1024 * 1024);
  CU_ASSERT (memcmp (g_bytes_get_data (good.data, NULL), package + 1024 * 1024, 1024 * 1024)
             == 0);
  prober_clear (&bad);
  prober_clear (&good);
  site_end ();
}

CANOPY_TEST_SUITE (distribution, "distribution", NULL, suite_cleanup,
                   { "two offices, WAN once each", test_two_offices },
                   { "lead killed half way", test_lead_killed },
                   { "agent restarted resumes", test_agent_restart_resumes },
                   { "server restarted", test_server_restart },
                   { "corrupted peer dropped", test_corrupted_peer },
                   { "content store seeds, origin gone", test_content_store_seeds },
                   { "content store chunk damaged", test_content_store_damaged },
                   { "content store refuses bad peer input", test_content_store_bad_peer });
