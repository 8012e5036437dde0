/* Enrolment with real processes: canopyd and canopy-agent over the real
 * TCP+TLS transport on loopback. Each refusal reason reaches the agent's
 * log; a dormant device is accepted once its group is assigned; a wrong
 * or regenerated key is a key mismatch in both logs. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/integration/client.h"
#include "tests/integration/site.h"
#include "tests/pg-server.h"

#include <signal.h>
#include <string.h>

/* Device IDs are UUIDs; the server refuses anything else. */
#define OLD_AGENT_ID "6f1d2c3b-0a9e-4c8d-9b7a-112233445566"

typedef struct {
  char *dir;
  char *config;
  char *state;
  const char *groups; /* <assigned-group> elements */
  CanopyTestProcess *server;
  guint port;
  guint seats; /* <licensing seats>; 0: 10 */
  char *backend_xml; /* the <backend> element; NULL: SQLite in dir */
} Server;

static char *
program (const char *name)
{
  return canopy_test_build_path (name, NULL);
}

static void
server_write_config (Server *s)
{
  g_autofree char *sqlite = g_strdup_printf (
    "<backend plugin='sqlite'><database>%s/canopy.db</database></backend>", s->dir);
  g_autofree char *xml = g_strdup_printf (
    "<server>\n"
    "  <state-directory>%s</state-directory>\n"
    "  %s\n"
    "  <heartbeat interval='1'/>\n"
    "  <licensing seats='%u'/>\n"
    "  %s\n"
    "  <transport plugin='tcp'><listen address='127.0.0.1' port='%u'/></transport>\n"
    "</server>\n",
    s->state, s->groups, s->seats != 0 ? s->seats : 10,
    s->backend_xml != NULL ? s->backend_xml : sqlite, s->port);

  g_assert (g_file_set_contents (s->config, xml, -1, NULL));
}

static void
server_init (Server *s, gboolean regenerate)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "init", "--config", s->config,
                         regenerate ? "--regenerate-key" : NULL, NULL };
  g_autofree char *out = NULL;

  server_write_config (s);
  CU_ASSERT_EQUAL (canopy_test_run (argv, &out), 0);
}

/* Starts canopyd; the port it picked is read from its "started" line. */
static void
server_start (Server *s)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "--config", s->config, NULL };
  const char *line;

  s->server = canopy_test_process_spawn (argv, NULL);
  g_assert (s->server != NULL);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (s->server, " started: ", 20));
  line = strstr (canopy_test_process_output (s->server), "127.0.0.1 port ");
  CU_ASSERT_PTR_NOT_NULL_FATAL (line);
  s->port = (guint) g_ascii_strtoull (line + strlen ("127.0.0.1 port "), NULL, 10);
  /* Keep the port across restarts, as agents are configured with it. */
  server_write_config (s);
}

static void
server_setup (Server *s, const char *groups_xml)
{
  s->dir = canopy_test_make_tmpdir ("enrol");
  s->config = g_build_filename (s->dir, "canopyd.xml", NULL);
  s->state = g_build_filename (s->dir, "state", NULL);
  s->groups = groups_xml;
  s->port = 0;
  s->seats = 0;
  server_init (s, FALSE);
  server_start (s);
}

static void
server_stop (Server *s)
{
  if (s->server == NULL)
    return;
  canopy_test_process_signal (s->server, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (s->server, 20), 0);
  g_clear_pointer (&s->server, canopy_test_process_free);
}

static void
server_teardown (Server *s)
{
  server_stop (s);
  g_free (s->dir);
  g_free (s->config);
  g_free (s->state);
  g_free (s->backend_xml);
}

/* An agent with its own state directory; @key_from is the file its shared
 * key is copied from. */
static CanopyTestProcess *
agent_start (Server *s, const char *name, const char *group, const char *key_from)
{
  g_autofree char *agent = program ("canopy-agent");
  g_autofree char *state = g_build_filename (s->dir, name, NULL);
  g_autofree char *key = g_build_filename (state, "shared-key", NULL);
  g_autofree char *config = g_strconcat (state, ".xml", NULL);
  g_autofree char *text = NULL;
  g_autofree char *xml = g_strdup_printf ("<agent><server host='127.0.0.1' port='%u'/>"
                                          "<state-directory>%s</state-directory>"
                                          "<group>%s</group><transport plugin='tcp'/></agent>",
                                          s->port, state, group);
  const char *argv[] = { agent, "--config", config, NULL };

  g_mkdir_with_parents (state, 0700);
  g_assert (g_file_get_contents (key_from, &text, NULL, NULL));
  g_assert (g_file_set_contents_full (key, text, -1, G_FILE_SET_CONTENTS_NONE, 0600, NULL));
  g_assert (g_file_set_contents (config, xml, -1, NULL));
  return canopy_test_process_spawn (argv, NULL);
}

static char *
server_key (Server *s)
{
  return g_build_filename (s->state, "shared-key", NULL);
}

static void
test_enrolled (void)
{
  Server s = { 0 };
  g_autofree char *key = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;

  if (!canopy_test_site_available ())
    return;
  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  key = server_key (&s);
  agent = agent_start (&s, "a1", "Finance", key);
  CU_ASSERT (canopy_test_process_wait_output (agent, "Enrolled with canopy server", 20));
  CU_ASSERT (canopy_test_process_wait_output (s.server, "Enrolled agent", 20));
  /* Heartbeats keep the session: after several intervals it is still there. */
  g_usleep (3500 * 1000);
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (s.server), "missed"));
  canopy_test_process_signal (agent, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (agent, 20), 0);
  CU_ASSERT (canopy_test_process_wait_output (s.server, "disconnected", 20));
  server_teardown (&s);
}

static void
test_dormant_until_group_assigned (void)
{
  Server s = { 0 };
  g_autofree char *key = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;

  if (!canopy_test_site_available ())
    return;
  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  key = server_key (&s);
  agent = agent_start (&s, "sales-1", "Sales", key);
  CU_ASSERT (canopy_test_process_wait_output (agent, "refused this device", 20));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (agent), "none of the groups");

  /* Saving the settings with the group assigned: the dormant agent gets in. */
  s.groups = "<assigned-group>Finance</assigned-group><assigned-group>Sales</assigned-group>";
  server_write_config (&s);
  canopy_test_process_signal (s.server, SIGHUP);
  CU_ASSERT (canopy_test_process_wait_output (s.server, "Configuration reloaded", 20));
  CU_ASSERT (canopy_test_process_wait_output (agent, "Enrolled with canopy server", 30));
  server_teardown (&s);
}

static void
test_wrong_key (void)
{
  Server s = { 0 };
  g_autofree char *other_dir = NULL, *other_key = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;

  if (!canopy_test_site_available ())
    return;
  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  /* A key from another installation. */
  other_dir = canopy_test_make_tmpdir ("other");
  {
    Server other = { other_dir, g_build_filename (other_dir, "c.xml", NULL),
                     g_build_filename (other_dir, "state", NULL), "", NULL, 1 };
    server_init (&other, FALSE);
    other_key = server_key (&other);
    g_free (other.config);
    g_free (other.state);
  }
  agent = agent_start (&s, "intruder", "Finance", other_key);
  CU_ASSERT (canopy_test_process_wait_output (agent, "does not accept this device's shared key",
                                              20));
  CU_ASSERT (canopy_test_process_wait_output (s.server, "Key mismatch", 20));
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (s.server), "Enrolled agent"));
  server_teardown (&s);
}

static void
test_regenerated_key_cuts_off (void)
{
  Server s = { 0 };
  g_autofree char *key = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;

  if (!canopy_test_site_available ())
    return;
  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  key = server_key (&s);
  agent = agent_start (&s, "old-key", "Finance", key);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (agent, "Enrolled with canopy server", 20));

  server_stop (&s);
  server_init (&s, TRUE);
  server_start (&s);
  CU_ASSERT (canopy_test_process_wait_output (agent, "does not accept this device's shared key",
                                              30));
  server_teardown (&s);
}

static void
test_no_office (void)
{
  Server s = { 0 };
  g_autofree char *key = NULL;
  g_autofree char *csv_path = NULL;
  g_autofree char *groups = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;
  g_autofree char *dir = NULL;

  if (!canopy_test_site_available ())
    return;
  /* Offices only in 198.18.0.0/15: this machine's addresses are in none. */
  dir = canopy_test_make_tmpdir ("topology");
  csv_path = g_build_filename (dir, "offices.csv", NULL);
  g_assert (g_file_set_contents (csv_path, "office,parent,subnets\nNorth,,198.18.10.0/24\n",
                                 -1, NULL));
  groups = g_strdup_printf ("<assigned-group>Finance</assigned-group>"
                            "<distribution-optimization enabled='true' topology='%s'/>",
                            csv_path);
  server_setup (&s, groups);
  key = server_key (&s);
  agent = agent_start (&s, "roaming", "Finance", key);
  /* By default a no-office client is enrolled to fetch from the origin. */
  CU_ASSERT (canopy_test_process_wait_output (agent, "as a no-office client", 20));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (agent), "fetches from the origin");
  server_teardown (&s);
}

static void
test_bad_topology_refuses_start (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("badtopo");
  g_autofree char *csv_path = g_build_filename (dir, "offices.csv", NULL);
  g_autofree char *config = g_build_filename (dir, "canopyd.xml", NULL);
  g_autofree char *xml = g_strdup_printf (
    "<server><state-directory>%s/state</state-directory>"
    "<distribution-optimization enabled='true' topology='%s'/>"
    "<backend plugin='sqlite'><database>%s/canopy.db</database></backend></server>",
    dir, csv_path, dir);
  g_autofree char *canopyd = program ("canopyd");
  const char *init[] = { canopyd, "init", "--config", config, NULL };
  const char *run[] = { canopyd, "--config", config, NULL };
  g_autofree char *out = NULL;

  g_assert (g_file_set_contents (csv_path, "office,parent,subnets\nA,,198.18.1.0/24\n"
                                           "B,Nowhere,198.18.1.128/25\n", -1, NULL));
  g_assert (g_file_set_contents (config, xml, -1, NULL));
  CU_ASSERT_EQUAL (canopy_test_run (init, NULL), 0);
  CU_ASSERT_EQUAL (canopy_test_run (run, &out), 3);
  CANOPY_ASSERT_CONTAINS (out, "offices.csv has problems");
  CANOPY_ASSERT_CONTAINS (out, "line 3, column 2 (parent)");
}

/* An agent of a version the server does not support, played by the test
 * itself over the real transport: it must be told the supported range. */
static void
test_unsupported_version (void)
{
  Server s = { 0 };
  g_autofree char *key_path = NULL;
  g_auto (CanopyTestClient) agent = { 0 };
  const char *groups[] = { "Finance", NULL };
  GVariantBuilder addresses;
  const char *message, *oldest, *newest;
  guint32 reason;
  g_autofree char *refusal = NULL;

  if (!canopy_test_site_available ())
    return;
  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  key_path = server_key (&s);
  canopy_test_client_connect (&agent, key_path, OLD_AGENT_ID, (guint16) s.port);
  g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
  g_variant_builder_add (&addresses, "(sy)", "198.18.0.9", 24);
  canopy_test_client_send (&agent, CANOPY_WIRE_HELLO,
                           g_variant_new ("(ssa(sy)^asqs)", OLD_AGENT_ID, "0.0.1", &addresses,
                                          groups, 0, "old-agent"));
  CU_ASSERT_FATAL (canopy_test_client_wait (&agent, CANOPY_WIRE_REFUSED, 1));
  g_variant_get (agent.last[CANOPY_WIRE_REFUSED], "(u&s&s&s)", &reason, &message, &oldest,
                 &newest);
  refusal = g_strdup_printf ("%u %s [%s, %s]", reason, message, oldest, newest);
  CANOPY_ASSERT_CONTAINS (refusal, "2 agent version 0.0.1 is not supported");
  CANOPY_ASSERT_CONTAINS (refusal, "[0.1.0, " PACKAGE_VERSION "]");
  CU_ASSERT_EQUAL (agent.counts[CANOPY_WIRE_WELCOME], 0);
  server_teardown (&s);
}

/* Enrolments and licences survive a restart of the server. */
static void
test_restart_keeps_enrolment (void)
{
  Server s = { 0 };
  g_autofree char *key = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;

  if (!canopy_test_site_available ())
    return;
  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s.server),
                          "devices known: 0, licences in use: 0");
  key = server_key (&s);
  agent = agent_start (&s, "kept", "Finance", key);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (agent, "Enrolled with canopy server", 20));
  canopy_test_process_signal (agent, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (agent, 20), 0);
  server_stop (&s);
  server_start (&s);
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s.server),
                          "devices known: 1, licences in use: 1");
  server_teardown (&s);
}

/* The server this suite started, stopped by the suite cleanup when a
 * fatal assertion left a test early. */
static char *pg_started_dir;

static int
suite_cleanup (void)
{
  if (pg_started_dir != NULL)
    canopy_test_pg_stop (pg_started_dir);
  g_clear_pointer (&pg_started_dir, g_free);
  return 0;
}

/* canopyd on PostgreSQL (a server the test starts): an agent enrols, the
 * server restarts, and the device and its licence are still known, in
 * the devices table a report reads. */
static void
test_restart_on_postgresql (void)
{
  Server s = { 0 };
  g_autofree char *key = NULL;
  g_autofree char *skip = NULL;
  g_autoptr (GError) failure = NULL;
  g_autofree char *pg_dir = NULL;
  g_autofree char *password_file = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *rows = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;
  g_autofree char *plugin = canopy_test_build_path ("plugins", "backend-postgresql", ".libs",
                                                    "canopy-postgresql.so", NULL);

  if (!canopy_test_site_available ())
    return;
  if (!g_file_test (plugin, G_FILE_TEST_EXISTS))
    {
      canopy_test_skip ("canopyd on PostgreSQL (canopy-postgresql.so was not built)");
      return;
    }
  dir = canopy_test_make_tmpdir ("enrol-pg");
  password_file = g_build_filename (dir, "pg.password", NULL);
  pg_dir = canopy_test_pg_start (password_file, &skip, &failure);
  if (pg_dir == NULL)
    {
      if (skip != NULL)
        canopy_test_skip ("canopyd on PostgreSQL (%s)", skip);
      else
        {
          CU_FAIL ("the test's PostgreSQL server did not start");
          g_printerr ("%s\n", failure->message);
        }
      return;
    }
  pg_started_dir = g_strdup (pg_dir);
  s.backend_xml = canopy_test_pg_backend_xml (pg_dir, password_file);
  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s.server), "devices known: 0, licences in use: 0");
  key = server_key (&s);
  agent = agent_start (&s, "kept-pg", "Finance", key);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (agent, "Enrolled with canopy server", 20));
  canopy_test_process_signal (agent, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (agent, 20), 0);
  server_stop (&s);
  server_start (&s);
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s.server), "devices known: 1, licences in use: 1");
  rows = canopy_test_pg_psql (pg_dir, password_file,
                              "SELECT count(*) FROM devices JOIN licences USING (device_id)"
                              " WHERE released_at IS NULL");
  CU_ASSERT_STRING_EQUAL (rows, "1\n");
  server_teardown (&s);
  canopy_test_pg_stop (pg_dir);
  g_clear_pointer (&pg_started_dir, g_free);
}

/* The docs say settings change at once: a new seat count in the file
 * is in force after SIGHUP, in the licence report, without a restart, and
 * an enrolled device counts against it. */
static void
test_reload_changes_seats (void)
{
  Server s = { 0 };
  g_autofree char *key = NULL;
  g_autoptr (CanopyTestProcess) agent = NULL;

  server_setup (&s, "<assigned-group>Finance</assigned-group>");
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (s.server), "licences in use: 0 of 10");
  key = server_key (&s);
  agent = agent_start (&s, "counted", "Finance", key);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (agent, "Enrolled with canopy server", 20));

  s.seats = 25;
  server_write_config (&s);
  canopy_test_process_signal (s.server, SIGHUP);
  CU_ASSERT (canopy_test_process_wait_output (s.server, "licences in use: 1 of 25", 20));
  CU_ASSERT (canopy_test_process_wait_output (s.server, "Licensed seats are now 25", 5));

  canopy_test_process_signal (agent, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (agent, 20), 0);
  server_teardown (&s);
}

CANOPY_TEST_SUITE (enrolment, "enrolment", NULL, suite_cleanup,
                   { "SIGHUP applies a new seat count", test_reload_changes_seats },
                   { "agent enrolled over TCP+TLS", test_enrolled },
                   { "dormant until its group is assigned", test_dormant_until_group_assigned },
                   { "wrong key: key mismatch in both logs", test_wrong_key },
                   { "unsupported agent version", test_unsupported_version },
                   { "no-office client enrolled for the origin", test_no_office },
                   { "bad topology refuses to start", test_bad_topology_refuses_start },
                   { "regenerated key cuts off old agents", test_regenerated_key_cuts_off },
                   { "restart keeps enrolments and licences", test_restart_keeps_enrolment },
                   { "restart on PostgreSQL keeps enrolments", test_restart_on_postgresql })
