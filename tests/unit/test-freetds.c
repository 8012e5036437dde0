/* The SQL Server backend, as far as it can run without a SQL Server: its
 * configuration, the password file's checks, and a server that cannot be
 * reached. The conformance suite runs the rest against a real server when
 * CANOPY_TEST_MSSQL_HOST names one. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "plugins/backend-freetds/freetds-backend.h"
#include "lib/config.h"
#include "lib/plugin-loader.h"

#include <glib/gstdio.h>
#include <string.h>

#define SECRET "s3cr3t-Passw0rd"

static CanopyConfig *
load (const char *inner)
{
  g_autofree char *xml = g_strdup_printf ("<server><backend plugin='freetds'>%s</backend>"
                                          "</server>", inner);
  g_autoptr (GError) error = NULL;
  CanopyConfig *config = canopy_config_load_data (xml, -1, "freetds.xml", CANOPY_SCHEMA_SERVER,
                                                  &error);

  CANOPY_ASSERT_NO_ERROR (error);
  return config;
}

static const CanopyConfigNode *
backend_of (CanopyConfig *config)
{
  return canopy_config_node_get_child (canopy_config_get_root (config), "backend");
}

static char *
password_file (mode_t mode)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("mssql");
  char *path = g_build_filename (dir, "password", NULL);

  g_assert (g_file_set_contents (path, SECRET "\n", -1, NULL));
  g_chmod (path, mode);
  return path;
}

static void
test_settings (void)
{
  g_autoptr (CanopyConfig) config = load ("<server host='sql.example.com' instance='SQLEXPRESS'/>"
                                          "<database>canopy</database><user>canopy</user>"
                                          "<password-file>/etc/canopy/mssql</password-file>"
                                          "<encryption>off</encryption>"
                                          "<login-timeout s='3'/>");
  CanopyFreetdsSettings s;
  g_autoptr (GError) error = NULL;
  g_autofree char *described = NULL;

  CU_ASSERT_FATAL (canopy_freetds_settings_from_config (backend_of (config), &s, &error));
  CU_ASSERT_STRING_EQUAL (s.host, "sql.example.com");
  CU_ASSERT_STRING_EQUAL (s.instance, "SQLEXPRESS");
  CU_ASSERT_STRING_EQUAL (s.tds_version, "7.4");
  CU_ASSERT_FALSE (s.encrypt);
  CU_ASSERT_EQUAL (s.login_timeout_s, 3);
  CU_ASSERT_EQUAL (s.query_timeout_s, 30);
  described = canopy_freetds_settings_describe (&s);
  CU_ASSERT_STRING_EQUAL (described, "sql.example.com\\SQLEXPRESS, database canopy");
  canopy_freetds_settings_clear (&s);
}

/* The plugin's schema, through the real loader. */
static void
test_schema (void)
{
  g_autoptr (CanopyConfig) config = load ("<server host='sql.example.com' port='99999'/>"
                                          "<database>canopy</database><user>canopy</user>"
                                          "<password-file>/etc/canopy/mssql</password-file>");
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  g_autoptr (GError) error = NULL;

  CU_ASSERT_PTR_NULL (canopy_plugin_loader_load_for_node (loader, backend_of (config),
                                                          CANOPY_PLUGIN_KIND_BACKEND, &error));
  CU_ASSERT_PTR_NOT_NULL_FATAL (error);
  CANOPY_ASSERT_CONTAINS (error->message, "freetds.xml:1:");
  CANOPY_ASSERT_CONTAINS (error->message, "<server>");
}

static void
assert_open_fails (const char *password_path, guint port, CanopyBackendError code,
                   const char *text)
{
  CanopyFreetdsSettings s = { (char *) "127.0.0.1", port, NULL, (char *) "canopy",
                              (char *) "canopy", (char *) password_path, (char *) "7.4", FALSE,
                              2, 5 };
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();
  g_autoptr (CanopyFreetdsBackend) b = canopy_freetds_backend_open (&s, &error);

  CU_ASSERT_PTR_NULL (b);
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, (int) code));
  if (error != NULL)
    {
      CANOPY_ASSERT_CONTAINS (error->message, text);
      /* The password never shows. */
      CU_ASSERT_PTR_NULL (strstr (error->message, SECRET));
    }
  /* Fails within the login timeout, not after TCP's own. */
  CU_ASSERT (g_get_monotonic_time () - start < 20 * G_USEC_PER_SEC);
}

static void
test_password_file_checks (void)
{
  g_autofree char *readable = password_file (0644);

  assert_open_fails ("/nonexistent/mssql-password", 1, CANOPY_BACKEND_ERROR_UNAVAILABLE,
                     "mode 0600");
  assert_open_fails (readable, 1, CANOPY_BACKEND_ERROR_UNAVAILABLE, "chmod 600");
}

static void
test_unreachable_server (void)
{
  g_autofree char *secret = password_file (0600);

  /* Nothing listens on port 1 of this machine. */
  assert_open_fails (secret, 1, CANOPY_BACKEND_ERROR_UNAVAILABLE, "127.0.0.1 port 1");
}

CANOPY_TEST_SUITE (freetds, "freetds", NULL, NULL,
                   { "settings from the configuration", test_settings },
                   { "schema refuses a bad port", test_schema },
                   { "password file checks", test_password_file_checks },
                   { "unreachable server", test_unreachable_server })
