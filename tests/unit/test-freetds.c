/* The SQL Server backend, as far as it can run without a SQL Server: its
 * configuration, the password file's checks, and a server that cannot be
 * reached. The conformance suite runs the rest against a real server when
 * CANOPY_TEST_MSSQL_HOST names one. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "plugins/backend-freetds/freetds-backend.h"
#include "plugins/backend-freetds/tsql-schema.h"
#include "tests/mssql-server.h"
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

/* --- against a SQL Server named by CANOPY_TEST_MSSQL_* ------------------ */

#define DEVICE "0a000000-0000-4000-8000-00000000000a"

static char *
script (const CanopyFreetdsSettings *s, const char *sql)
{
  g_autoptr (GError) error = NULL;
  char *out = canopy_freetds_run_script (s, sql, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  return out;
}

static void
drop_everything (const CanopyFreetdsSettings *s)
{
  g_autoptr (GError) error = NULL;

  CU_ASSERT (canopy_test_mssql_drop_everything (s, &error));
  CANOPY_ASSERT_NO_ERROR (error);
}

static void
append_blob (GString *sql, GVariant *value)
{
  const guint8 *data = g_variant_get_data (value);

  g_string_append (sql, "0x");
  for (gsize i = 0; i < g_variant_get_size (value); i++)
    g_string_append_printf (sql, "%02X", data[i]);
}

/* The release that kept blobs: its tables, a device, an admin with a
 * token (setting rows, GVariant text inside), an audit entry of ID 7. */
static char *
blob_release_sql (void)
{
  guint n;
  const CanopyTsqlMigration *m = canopy_tsql_migrations (&n);
  const char *groups[] = { "Finance", NULL };
  GVariantBuilder addresses;
  g_autoptr (GVariant) device = NULL, admin = NULL, token = NULL, audit = NULL;
  GString *sql = g_string_new (m[0].sql);

  g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
  g_variant_builder_add (&addresses, "(sy)", "198.18.10.7", 24);
  device = g_variant_ref_sink (g_variant_new (
    "(s^asa(sy)ssxxxtuu)", "PC-17", groups, &addresses, "0.1.0", "North",
    G_GINT64_CONSTANT (1764900000123456), G_GINT64_CONSTANT (1764910000654321),
    G_GINT64_CONSTANT (500), G_GUINT64_CONSTANT (1) << 33, 7u, 2u));
  admin = g_variant_ref_sink (g_variant_new ("(s)", "('administrator', int64 1764900000)"));
  token = g_variant_ref_sink (g_variant_new (
    "(s)", "('alice', '00ff102030405060708090a0b0c0d0e0f00112233445566778899aabbccddeef', "
           "int64 1764900000, int64 0)"));
  audit = g_variant_ref_sink (g_variant_new ("(xsss)", G_GINT64_CONSTANT (1764900000000000),
                                             "alice", "deploy", "x"));
  g_string_append (sql, " CREATE TABLE canopy_meta (name NVARCHAR(64) PRIMARY KEY,"
                        " value INT NOT NULL);"
                        " INSERT INTO canopy_meta VALUES (N'schema_version', 1);"
                        " INSERT INTO canopy_records (kind, [key], value) VALUES (0, N'" DEVICE
                        "', ");
  append_blob (sql, device);
  g_string_append (sql, "), (2, N'admin/alice', ");
  append_blob (sql, admin);
  g_string_append (sql, "), (2, N'admin-token/0123456789abcdef', ");
  append_blob (sql, token);
  g_string_append (sql, "); SET IDENTITY_INSERT canopy_logs ON;"
                        " INSERT INTO canopy_logs (id, kind, value) VALUES (7, 1, ");
  append_blob (sql, audit);
  g_string_append (sql, "); SET IDENTITY_INSERT canopy_logs OFF");
  return g_string_free (sql, FALSE);
}

static gboolean
take_record (const char *key, const guint8 *value, gsize length, gpointer user_data)
{
  g_hash_table_insert (user_data, g_strdup (key), g_bytes_new (value, length));
  return TRUE;
}

static gboolean
take_entry (gint64 id, const guint8 *value, gsize length, gpointer user_data)
{
  g_ptr_array_add (user_data, GINT_TO_POINTER ((int) id));
  return TRUE;
}

static void
assert_bytes_are (GBytes *bytes, GVariant *want)
{
  CU_ASSERT (bytes != NULL && g_bytes_get_size (bytes) == g_variant_get_size (want)
             && memcmp (g_bytes_get_data (bytes, NULL), g_variant_get_data (want),
                        g_variant_get_size (want)) == 0);
}

static void
test_upgrades (void)
{
  CanopyFreetdsSettings s;
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyFreetdsBackend) b = NULL;
  g_autofree char *release = blob_release_sql ();
  g_autofree char *loaded = NULL, *left = NULL, *version = NULL, *refused = NULL;
  g_autoptr (GHashTable) admins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify) g_bytes_unref);
  g_autoptr (GHashTable) tokens = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify) g_bytes_unref);
  g_autoptr (GPtrArray) audit = g_ptr_array_new ();
  g_autoptr (GVariant) want_admin = g_variant_ref_sink (
    g_variant_new ("(sx)", "administrator", G_GINT64_CONSTANT (1764900000000000)));

  if (!canopy_test_mssql_settings (&s))
    {
      canopy_test_skip ("SQL Server schema upgrades (set CANOPY_TEST_MSSQL_HOST, _PORT, "
                        "_DATABASE, _USER and _PASSWORD_FILE to run them against a SQL Server)");
      return;
    }
  drop_everything (&s);
  loaded = script (&s, release);
  CU_ASSERT_PTR_NOT_NULL_FATAL (loaded);

  /* converted: every record, the admins moved on, the log's IDs kept */
  b = canopy_freetds_backend_open (&s, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (b);
  CU_ASSERT_EQUAL (canopy_freetds_backend_get_schema_version (b), 4);
  {
    g_autoptr (GBytes) device = canopy_freetds_backend_get (b, CANOPY_RECORD_DEVICE, DEVICE,
                                                            &error);
    CANOPY_ASSERT_NO_ERROR (error);
    CU_ASSERT (device != NULL && g_bytes_get_size (device) > 0);
  }
  CU_ASSERT (canopy_freetds_backend_list (b, CANOPY_RECORD_ADMIN, take_record, admins, &error));
  CU_ASSERT (canopy_freetds_backend_list (b, CANOPY_RECORD_ADMIN_TOKEN, take_record, tokens,
                                          &error));
  CU_ASSERT (canopy_freetds_backend_list_log (b, CANOPY_LOG_AUDIT, 0, 0, take_entry, audit,
                                              &error));
  CANOPY_ASSERT_NO_ERROR (error);
  assert_bytes_are (g_hash_table_lookup (admins, "alice"), want_admin);
  CU_ASSERT_EQUAL (g_hash_table_size (tokens), 1);
  CU_ASSERT (g_hash_table_contains (tokens, "0123456789abcdef"));
  CU_ASSERT (audit->len == 1 && GPOINTER_TO_INT (g_ptr_array_index (audit, 0)) == 7);
  g_clear_pointer (&b, canopy_freetds_backend_close);
  left = script (&s, "SELECT CAST(COUNT(*) AS NVARCHAR(16)) + N'|' + CASE WHEN "
                     "OBJECT_ID(N'canopy_records', N'U') IS NULL THEN N'gone' ELSE N'kept' END "
                     "FROM settings WHERE name LIKE N'admin%'");
  CU_ASSERT_STRING_EQUAL (left, "0|gone");
  version = script (&s, "SELECT CAST(MAX(version) AS NVARCHAR(16)) + N'|' + "
                        "(SELECT CAST(value AS NVARCHAR(16)) FROM canopy_meta) "
                        "FROM schema_migrations");
  CU_ASSERT_STRING_EQUAL (version, "4|4");

  /* a newer canopy's database: refused, not touched */
  g_free (script (&s, "UPDATE canopy_meta SET value = 999 WHERE name = N'schema_version'"));
  b = canopy_freetds_backend_open (&s, &error);
  CU_ASSERT_PTR_NULL (b);
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_TOO_NEW));
  if (error != NULL)
    CANOPY_ASSERT_CONTAINS (error->message, "999");
  refused = script (&s, "SELECT CAST(value AS NVARCHAR(16)) FROM canopy_meta");
  CU_ASSERT_STRING_EQUAL (refused, "999");
  drop_everything (&s);
  canopy_freetds_settings_clear (&s);
}

CANOPY_TEST_SUITE (freetds, "freetds", NULL, NULL,
                   { "settings from the configuration", test_settings },
                   { "schema refuses a bad port", test_schema },
                   { "password file checks", test_password_file_checks },
                   { "unreachable server", test_unreachable_server },
                   { "SQL Server schema upgrades", test_upgrades })
