/* The programs as an admin runs them: real canopyd, canopy-agent and
 * canopyctl processes from the build tree, with the test plugins. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "tests/config/expectations.h"
#include "lib/log.h"
#include "lib/shared-key.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

static char *
program (const char *name)
{
  return canopy_test_build_path (name, NULL);
}

static char *
data_path (const char *name)
{
  return canopy_test_src_path ("tests", "config", "data", name, NULL);
}

static void
test_version_and_help (void)
{
  g_autofree char *canopyd = program ("canopyd");
  g_autofree char *agent = program ("canopy-agent");
  g_autofree char *ctl = program ("canopyctl");
  g_autofree char *out = NULL;
  const char *version[] = { canopyd, "--version", NULL };
  const char *help[] = { agent, "--help", NULL };
  const char *bogus[] = { canopyd, "--no-such-option", NULL };
  const char *ctl_version[] = { ctl, "--version", NULL };
  const char *ctl_bogus[] = { ctl, "frobnicate", NULL };

  CU_ASSERT_EQUAL (canopy_test_run (version, &out), 0);
  CANOPY_ASSERT_CONTAINS (out, "canopyd " PACKAGE_VERSION);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (canopy_test_run (help, &out), 0);
  CANOPY_ASSERT_CONTAINS (out, "--check-config");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (canopy_test_run (bogus, &out), 2);
  CANOPY_ASSERT_CONTAINS (out, "--help");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (canopy_test_run (ctl_version, &out), 0);
  CANOPY_ASSERT_CONTAINS (out, "canopyctl " PACKAGE_VERSION);
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (canopy_test_run (ctl_bogus, &out), 2);
  CANOPY_ASSERT_CONTAINS (out, "Unknown command \"frobnicate\"");
}

/* Each file under @dir: valid ones pass --check-config of the program
 * whose configuration they are; invalid ones fail naming what they expect. */
static guint
check_config_files (const char *dir_path)
{
  g_autoptr (GDir) dir = g_dir_open (dir_path, 0, NULL);
  const char *name;
  guint checked = 0;

  CU_ASSERT_PTR_NOT_NULL_FATAL (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir_path, name, NULL);
      g_autofree char *exe = program (g_str_has_prefix (name, "canopy-agent") ? "canopy-agent"
                                                                              : "canopyd");
      const char *argv[] = { exe, "--check-config", path, NULL };
      g_autofree char *out = NULL;
      int status;

      if (!g_str_has_suffix (name, ".xml"))
        continue;
      status = canopy_test_run (argv, &out);
      checked++;
      if (g_str_has_suffix (name, "-invalid.xml"))
        {
          g_auto (GStrv) expected = canopy_test_read_expectations (path);

          CU_ASSERT_EQUAL (status, 1);
          CU_ASSERT_PTR_NOT_NULL_FATAL (expected);
          for (char **e = expected; *e != NULL; e++)
            CANOPY_ASSERT_CONTAINS (out, *e);
          /* Every message names a line and an element, inside plugins' elements too. */
          if (strstr (out, ".xml:0:") != NULL || strstr (out, "<?>") != NULL)
            fprintf (stderr, "\n    %s: a message without its line or element: %s\n", name, out);
          CU_ASSERT (strstr (out, ".xml:0:") == NULL && strstr (out, "<?>") == NULL);
        }
      else if (!g_str_has_prefix (name, "unknown-root"))
        {
          if (status != 0)
            fprintf (stderr, "\n    %s: %s\n", name, out);
          CU_ASSERT_EQUAL (status, 0);
          CANOPY_ASSERT_CONTAINS (out, "the configuration is valid");
        }
    }
  return checked;
}

static void
test_check_config (void)
{
  g_autofree char *data = canopy_test_src_path ("tests", "config", "data", NULL);
  g_autofree char *check = canopy_test_src_path ("tests", "config", "data", "check", NULL);

  CU_ASSERT (check_config_files (data) >= 10);
  CU_ASSERT (check_config_files (check) >= 5);
}

static void
test_ctl_validate (void)
{
  g_autofree char *ctl = program ("canopyctl");
  g_autofree char *good = data_path ("canopy-agent-minimal.xml");
  g_autofree char *bad = data_path ("canopyd-misspelt-element-invalid.xml");
  const char *ok_argv[] = { ctl, "validate", good, NULL };
  const char *bad_argv[] = { ctl, "validate", good, bad, NULL };
  g_autofree char *out = NULL;

  CU_ASSERT_EQUAL (canopy_test_run (ok_argv, &out), 0);
  CANOPY_ASSERT_CONTAINS (out, "follows the canopy-agent schema");
  g_clear_pointer (&out, g_free);
  CU_ASSERT_EQUAL (canopy_test_run (bad_argv, &out), 1);
  CANOPY_ASSERT_CONTAINS (out, "canopyd-misspelt-element-invalid.xml:6:");
}

static void
test_ctl_licence (void)
{
  g_autofree char *ctl = program ("canopyctl");
  g_autofree char *dir = canopy_test_make_tmpdir ("licence");
  g_autofree char *key = g_build_filename (dir, "issuer.pem", NULL);
  g_autofree char *file = g_build_filename (dir, "licence.txt", NULL);
  const char *keygen[] = { ctl, "licence-keygen", key, NULL };
  const char *issue[] = { ctl, "licence-issue", "--key", key, "--customer", "Example Corp",
                          "--seats", "25", "--expires", "2027-06-30", NULL };
  g_autofree char *pub_out = NULL, *licence = NULL, *shown = NULL, *tampered_out = NULL;
  g_autofree char *pub = NULL;
  char *line;

  CU_ASSERT_EQUAL_FATAL (canopy_test_run (keygen, &pub_out), 0);
  /* The public key is the output's last line. */
  g_strstrip (pub_out);
  line = strrchr (pub_out, '\n');
  pub = g_strdup (line != NULL ? line + 1 : pub_out);
  CU_ASSERT_EQUAL (canopy_test_run (keygen, NULL), 1); /* never overwritten */
  CU_ASSERT_EQUAL_FATAL (canopy_test_run (issue, &licence), 0);
  CU_ASSERT_FATAL (g_file_set_contents (file, licence, -1, NULL));
  {
    const char *show[] = { ctl, "licence-show", file, pub, NULL };
    CU_ASSERT_EQUAL (canopy_test_run (show, &shown), 0);
    CANOPY_ASSERT_CONTAINS (shown, "seats: 25");
    CANOPY_ASSERT_CONTAINS (shown, "signature: valid");
    memcpy (strstr (licence, "seats: 25"), "seats: 99", 9);
    CU_ASSERT_FATAL (g_file_set_contents (file, licence, -1, NULL));
    CU_ASSERT_EQUAL (canopy_test_run (show, &tampered_out), 1);
    CANOPY_ASSERT_CONTAINS (tampered_out, "signature does not match");
  }
}

static void
test_list_plugins (void)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "--list-plugins", NULL };
  g_autofree char *out = NULL;

  CU_ASSERT_EQUAL (canopy_test_run (argv, &out), 0);
  CANOPY_ASSERT_CONTAINS (out, "test-transport");
  CANOPY_ASSERT_CONTAINS (out, "transport for the loader tests");
  CANOPY_ASSERT_CONTAINS (out, "built for plugin ABI 42");
}

/* A server configuration in @dir, its state in @dir/state, on the real
 * SQLite backend; no transport. */
static char *
write_config (const char *dir, const char *debug)
{
  g_autofree char *path = g_build_filename (dir, "canopyd.xml", NULL);
  g_autofree char *xml = g_strdup_printf ("<server>\n"
                                          "  <name>reload-test</name>\n"
                                          "  <state-directory>%s/state</state-directory>\n"
                                          "  <logging debug='%s'/>\n"
                                          "  <backend plugin='sqlite'>\n"
                                          "    <database>%s/canopy.db</database>\n"
                                          "  </backend>\n"
                                          "</server>\n",
                                          dir, debug, dir);

  g_assert (g_file_set_contents (path, xml, -1, NULL));
  return g_steal_pointer (&path);
}

/* Runs "canopyd init" for the configuration at @config. */
static void
init_server (const char *config)
{
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "init", "--config", config, NULL };
  g_autofree char *out = NULL;

  if (canopy_test_run (argv, &out) != 0)
    fprintf (stderr, "\n    canopyd init failed: %s\n", out);
}

static void
test_run_reload_and_stop (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("daemon");
  g_autofree char *config = write_config (dir, "");
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "--config", config, NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyTestProcess) proc = NULL;

  init_server (config);
  proc = canopy_test_process_spawn (argv, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (proc, "started", 20));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (proc), "backend sqlite (SQLite");

  /* A broken file: the daemon keeps running on the old one and says why. */
  CU_ASSERT_FATAL (g_file_set_contents (config, "<server><bogus/></server>", -1, NULL));
  canopy_test_process_signal (proc, SIGHUP);
  CU_ASSERT (canopy_test_process_wait_output (proc, "Keeping the running configuration", 20));
  CU_ASSERT (canopy_test_process_wait_output (proc, "canopyd.xml:1: element <bogus>", 5));
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (proc), "canopyd stopped"));

  /* A good file is taken, and its debug setting applies from then on: the
   * next reload shows the loader's debug messages. */
  g_free (write_config (dir, "canopy"));
  canopy_test_process_signal (proc, SIGHUP);
  CU_ASSERT (canopy_test_process_wait_output (proc, "Configuration reloaded", 20));
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (proc), "loaded backend plugin"));
  canopy_test_process_signal (proc, SIGHUP);
  CU_ASSERT (canopy_test_process_wait_output (proc, "loaded backend plugin sqlite", 20));

  canopy_test_process_signal (proc, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (proc, 20), 0);
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (proc), "canopyd stopped");
}

static void
test_debug_domains_filter (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("debug");
  g_autofree char *config = write_config (dir, "");
  g_autofree char *canopyd = program ("canopyd");
  const char *quiet[] = { canopyd, "--config", config, NULL };
  const char *loud[] = { canopyd, "--debug", "canopy", "--config", config, NULL };
  const char *const *runs[] = { quiet, loud };

  init_server (config);
  for (gsize i = 0; i < G_N_ELEMENTS (runs); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CanopyTestProcess) proc = canopy_test_process_spawn (runs[i], &error);

      CANOPY_ASSERT_NO_ERROR (error);
      CU_ASSERT_FATAL (canopy_test_process_wait_output (proc, "started", 20));
      canopy_test_process_signal (proc, SIGINT);
      CU_ASSERT_EQUAL (canopy_test_process_wait_exit (proc, 20), 0);
      CU_ASSERT_EQUAL (strstr (canopy_test_process_output (proc), "loaded backend plugin") != NULL,
                       i == 1);
    }
}

/* "--debug help" lists every log domain, one per module, for both
 * daemons, and starts nothing. */
static void
test_debug_help (void)
{
  const char *names[] = { "canopyd", "canopy-agent" };

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = program (names[i]);
      const char *argv[] = { path, "--debug", "help", NULL };
      g_autoptr (GError) error = NULL;
      g_autoptr (CanopyTestProcess) proc = canopy_test_process_spawn (argv, &error);
      const char *out;

      CANOPY_ASSERT_NO_ERROR (error);
      CU_ASSERT_EQUAL (canopy_test_process_wait_exit (proc, 20), 0);
      out = canopy_test_process_output (proc);
      CANOPY_ASSERT_CONTAINS (out, "Log domains");
      for (const char *const *d = canopy_log_get_known_domains (); *d != NULL; d++)
        {
          g_autofree char *line = g_strdup_printf ("\n  %s\n", *d);

          CANOPY_ASSERT_CONTAINS (out, line);
        }
      CU_ASSERT (strstr (out, " started") == NULL);
    }
}

static void
test_invalid_config_refuses_to_start (void)
{
  g_autofree char *canopyd = program ("canopyd");
  g_autofree char *bad = data_path ("canopyd-misspelt-element-invalid.xml");
  const char *argv[] = { canopyd, "--config", bad, NULL };
  g_autofree char *out = NULL;

  CU_ASSERT_EQUAL (canopy_test_run (argv, &out), 1);
  CANOPY_ASSERT_CONTAINS (out, "canopyd cannot start");
  CANOPY_ASSERT_CONTAINS (out, "<stat-directory>");
  CU_ASSERT_PTR_NULL (strstr (out, "started"));
}

static void
test_agent_needs_a_key (void)
{
  g_autofree char *agent = program ("canopy-agent");
  g_autofree char *dir = canopy_test_make_tmpdir ("agent");
  g_autofree char *config = g_build_filename (dir, "agent.xml", NULL);
  g_autofree char *xml = g_strdup_printf ("<agent><server host='198.18.0.1'/>"
                                          "<state-directory>%s/state</state-directory>"
                                          "<transport plugin='test-transport'/></agent>", dir);
  const char *argv[] = { agent, "--config", config, NULL };
  g_autofree char *out = NULL;

  CU_ASSERT_FATAL (g_file_set_contents (config, xml, -1, NULL));
  CU_ASSERT_EQUAL (canopy_test_run (argv, &out), 3);
  CANOPY_ASSERT_CONTAINS (out, "shared key file");
  CANOPY_ASSERT_CONTAINS (out, "/state/shared-key");
}

/* The agent with a cache and an office-peer listener starts, says where it
 * serves peers (a free port: 0), and stops cleanly while its server is
 * unreachable. */
static void
test_agent_serves_peers (void)
{
  g_autofree char *agent = program ("canopy-agent");
  g_autofree char *tcp = canopy_test_build_path ("plugins", "transport-tcp", ".libs",
                                                 "canopy-tcp.so", NULL);
  g_autofree char *dir = canopy_test_make_tmpdir ("agent-peers");
  g_autofree char *config = g_build_filename (dir, "agent.xml", NULL);
  g_autofree char *key_path = g_build_filename (dir, "shared-key", NULL);
  g_autofree char *cache = g_build_filename (dir, "cache", NULL);
  g_autofree char *xml = g_strdup_printf (
    "<agent><server host='127.0.0.1' port='1'/>"
    "<state-directory>%s/state</state-directory><shared-key-file>%s</shared-key-file>"
    "<cache directory='%s' quota='512MiB'/><peers address='127.0.0.1' port='0' "
    "upload-slots='3'/><transport plugin='tcp'><connect timeout-ms='500'/></transport></agent>",
    dir, key_path, cache);
  const char *argv[] = { agent, "--config", config, NULL };
  g_autoptr (CanopySharedKey) key = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyTestProcess) proc = NULL;

  if (!g_file_test (tcp, G_FILE_TEST_EXISTS))
    {
      canopy_test_skip ("the tcp transport was not built");
      return;
    }
  key = canopy_shared_key_generate (&error);
  CU_ASSERT_FATAL (canopy_shared_key_save (key, key_path, &error));
  CU_ASSERT_FATAL (g_file_set_contents (config, xml, -1, NULL));
  proc = canopy_test_process_spawn (argv, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (canopy_test_process_wait_output (proc, "with 3 upload slots", 20));
  CANOPY_ASSERT_CONTAINS (canopy_test_process_output (proc), "Serving office peers on 127.0.0.1");
  CU_ASSERT_PTR_NULL (strstr (canopy_test_process_output (proc), "port 0 with"));
  CU_ASSERT (g_file_test (cache, G_FILE_TEST_IS_DIR));
  canopy_test_process_signal (proc, SIGTERM);
  CU_ASSERT_EQUAL (canopy_test_process_wait_exit (proc, 20), 0);
}

static void
test_server_needs_init (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("noinit");
  g_autofree char *config = write_config (dir, "");
  g_autofree char *canopyd = program ("canopyd");
  const char *argv[] = { canopyd, "--config", config, NULL };
  g_autofree char *out = NULL;

  CU_ASSERT_EQUAL (canopy_test_run (argv, &out), 3);
  CANOPY_ASSERT_CONTAINS (out, "canopyd init");
}

static char *
key_from_output (const char *out)
{
  const char *line = strstr (out, "shared key:  ");

  if (line == NULL)
    return NULL;
  line += strlen ("shared key:  ");
  return g_strndup (line, strcspn (line, "\n"));
}

static void
test_init_creates_and_keeps_state (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("init");
  g_autofree char *config = write_config (dir, "");
  g_autofree char *state = g_build_filename (dir, "state", NULL);
  g_autofree char *xml = g_strdup_printf ("<server><state-directory>%s</state-directory>"
                                          "<backend plugin='sqlite'/></server>", state);
  g_autofree char *canopyd = program ("canopyd");
  const char *init[] = { canopyd, "init", "--config", config, NULL };
  const char *regenerate[] = { canopyd, "init", "--config", config, "--regenerate-key", NULL };
  g_autofree char *first = NULL, *second = NULL, *third = NULL;
  g_autofree char *key1 = NULL, *key3 = NULL;
  g_autofree char *key_file = g_build_filename (state, "shared-key", NULL);
  g_autofree char *stored = NULL;
  GStatBuf st;

  CU_ASSERT_FATAL (g_file_set_contents (config, xml, -1, NULL));
  CU_ASSERT_EQUAL (canopy_test_run (init, &first), 0);
  CANOPY_ASSERT_CONTAINS (first, "canopy.db, SQLite");
  key1 = key_from_output (first);
  CU_ASSERT_PTR_NOT_NULL_FATAL (key1);
  CU_ASSERT_EQUAL (strlen (key1), 77);
  CU_ASSERT (g_file_test (state, G_FILE_TEST_IS_DIR));
  CU_ASSERT_EQUAL (g_stat (state, &st), 0);
  CU_ASSERT_EQUAL (st.st_mode & 0777, 0700);
  CU_ASSERT_EQUAL (g_stat (key_file, &st), 0);
  CU_ASSERT_EQUAL (st.st_mode & 0777, 0600);
  CU_ASSERT (g_file_get_contents (key_file, &stored, NULL, NULL));
  CANOPY_ASSERT_CONTAINS (stored, key1);

  /* Run again: the key is kept and not shown. */
  CU_ASSERT_EQUAL (canopy_test_run (init, &second), 0);
  CU_ASSERT_PTR_NULL (strstr (second, key1));
  CANOPY_ASSERT_CONTAINS (second, "kept");
  g_clear_pointer (&stored, g_free);
  CU_ASSERT (g_file_get_contents (key_file, &stored, NULL, NULL));
  CANOPY_ASSERT_CONTAINS (stored, key1);

  /* Regenerate: a new key, shown once, replaces the old one. */
  CU_ASSERT_EQUAL (canopy_test_run (regenerate, &third), 0);
  key3 = key_from_output (third);
  CU_ASSERT_PTR_NOT_NULL_FATAL (key3);
  CU_ASSERT_STRING_NOT_EQUAL (key1, key3);
  g_clear_pointer (&stored, g_free);
  CU_ASSERT (g_file_get_contents (key_file, &stored, NULL, NULL));
  CANOPY_ASSERT_CONTAINS (stored, key3);
}

CANOPY_TEST_SUITE (daemons, "daemons", NULL, NULL,
                   { "version and help", test_version_and_help },
                   { "check-config on every example", test_check_config },
                   { "canopyctl validate", test_ctl_validate },
                   { "list plugins", test_list_plugins },
                   { "canopyctl licence files", test_ctl_licence },
                   { "run, reload on SIGHUP, stop on SIGTERM", test_run_reload_and_stop },
                   { "debug domains filter", test_debug_domains_filter },
                   { "--debug help lists every log domain", test_debug_help },
                   { "invalid config refuses to start", test_invalid_config_refuses_to_start },
                   { "agent needs a shared key", test_agent_needs_a_key },
                   { "agent serves office peers", test_agent_serves_peers },
                   { "server needs canopyd init", test_server_needs_init },
                   { "init creates and keeps state", test_init_creates_and_keeps_state })
