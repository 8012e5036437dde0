/* Storage backend conformance: the same assertions for every backend
 * plugin, through the real loader and the core's wrappers.
 *   sqlite   always (a database in a temporary directory);
 *   freetds  when CANOPY_TEST_MSSQL_HOST names a reachable SQL Server
 *            (with _PORT, _DATABASE, _USER, _PASSWORD_FILE);
 *   a vendor's plugin when CANOPY_CONFORMANCE_BACKEND names it and
 *            CANOPY_CONFORMANCE_CONFIG a file holding its <server> config. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/backend.h"
#include "lib/config.h"
#include "server/admins.h"
#include "plugins/backend-sqlite/sqlite-backend.h"
#include "tests/pg-server.h"
#ifdef CANOPY_TEST_FREETDS
#include "tests/mssql-server.h"
#endif

#include <sqlite3.h>
#include <string.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  CanopyPluginLoader *loader;
  CanopyConfig *config;
  const CanopyConfigNode *element;
  char *state;
  char *pg_dir; /* the PostgreSQL server this test started, or NULL */
} Target;

/* --- a PostgreSQL server of the test's own ----------------------------- *
 * initdb into a temporary directory owned by the postgres system user
 * (PostgreSQL refuses to run as root), listening only on a Unix socket in
 * that directory; stopped and removed at the end, even after a failed
 * assertion (the suite's cleanup). */

static char *pg_started_dir; /* for the suite cleanup after a fatal assertion */

static int
suite_cleanup (void)
{
  if (pg_started_dir != NULL)
    canopy_test_pg_stop (pg_started_dir);
  g_clear_pointer (&pg_started_dir, g_free);
  return 0;
}

/* The configuration of the backend named @name, or NULL (and why) when it
 * cannot be tested here. */
static char *
target_xml (const char *name, const char *state, char **pg_dir, char **skip_reason)
{
  if (g_str_equal (name, "sqlite"))
    return g_strdup_printf ("<server><backend plugin='sqlite'><database>%s/conformance.db"
                            "</database><busy-timeout ms='2000'/></backend></server>", state);
  if (g_str_equal (name, "postgresql"))
    {
      g_autofree char *password_file = g_build_filename (state, "pg.password", NULL);
      g_autoptr (GError) failure = NULL;
      g_autofree char *dir = canopy_test_pg_start (password_file, skip_reason, &failure);

      if (dir == NULL)
        {
          if (failure != NULL)
            {
              CU_FAIL ("the test's PostgreSQL server did not start");
              g_printerr ("%s\n", failure->message);
              *skip_reason = g_strdup ("its server did not start");
            }
          return NULL;
        }
      *pg_dir = g_strdup (dir);
      g_free (pg_started_dir);
      pg_started_dir = g_strdup (dir);
      return g_strdup_printf ("<server><backend plugin='postgresql'><server host='%s' port='5432'/>"
                              "<database>postgres</database><user>canopy</user>"
                              "<password-file>%s</password-file></backend></server>",
                              dir, password_file);
    }
  if (g_str_equal (name, "freetds"))
    {
      const char *host = g_getenv ("CANOPY_TEST_MSSQL_HOST");
      if (host == NULL)
        {
          *skip_reason = g_strdup ("set CANOPY_TEST_MSSQL_HOST, _PORT, _DATABASE, _USER and "
                                   "_PASSWORD_FILE to run it against a SQL Server");
          return NULL;
        }
#ifdef CANOPY_TEST_FREETDS
      {
        /* what an earlier run left would be counted as this run's */
        CanopyFreetdsSettings settings;
        g_autoptr (GError) failure = NULL;

        canopy_test_mssql_settings (&settings);
        if (!canopy_test_mssql_drop_everything (&settings, &failure))
          {
            CU_FAIL ("the test's SQL Server database could not be emptied");
            g_printerr ("%s\n", failure->message);
          }
        canopy_freetds_settings_clear (&settings);
      }
#endif
      return g_strdup_printf ("<server><backend plugin='freetds'><server host='%s' port='%s'/>"
                              "<database>%s</database><user>%s</user>"
                              "<password-file>%s</password-file></backend></server>",
                              host, g_getenv ("CANOPY_TEST_MSSQL_PORT") ?: "1433",
                              g_getenv ("CANOPY_TEST_MSSQL_DATABASE") ?: "canopy_test",
                              g_getenv ("CANOPY_TEST_MSSQL_USER") ?: "canopy",
                              g_getenv ("CANOPY_TEST_MSSQL_PASSWORD_FILE") ?: "/dev/null");
    }
  {
    g_autofree char *text = NULL;
    const char *path = g_getenv ("CANOPY_CONFORMANCE_CONFIG");

    if (path == NULL || !g_file_get_contents (path, &text, NULL, NULL))
      {
        *skip_reason = g_strdup ("set CANOPY_CONFORMANCE_CONFIG to its configuration file");
        return NULL;
      }
    return g_steal_pointer (&text);
  }
}

static gboolean
target_setup (Target *t, const char *name)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *skip = NULL;
  g_autofree char *xml = NULL;
  g_autofree char *module = g_strdup_printf ("canopy-%s.so", name);
  const CanopyPlugin *plugin;

  memset (t, 0, sizeof *t);
  t->state = canopy_test_make_tmpdir ("backend");
  xml = target_xml (name, t->state, &t->pg_dir, &skip);
  if (xml == NULL)
    {
      canopy_test_skip ("%s backend conformance (%s)", name, skip);
      return FALSE;
    }
  t->loader = canopy_plugin_loader_new (NULL);
  t->config = canopy_config_load_data (xml, -1, "conformance.xml", CANOPY_SCHEMA_SERVER, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  t->element = canopy_config_node_get_child (canopy_config_get_root (t->config), "backend");
  plugin = canopy_plugin_loader_load_for_node (t->loader, t->element, CANOPY_PLUGIN_KIND_BACKEND,
                                               &error);
  if (plugin == NULL && g_error_matches (error, CANOPY_PLUGIN_ERROR,
                                         CANOPY_PLUGIN_ERROR_NOT_FOUND))
    {
      canopy_test_skip ("%s backend conformance (%s was not built)", name, module);
      return FALSE;
    }
  CANOPY_ASSERT_NO_ERROR (error);
  return TRUE;
}

static CanopyBackend *
target_open (Target *t)
{
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *plugin = canopy_plugin_loader_lookup (
    t->loader, canopy_config_node_get_attribute (t->element, "plugin"));
  CanopyBackend *backend = canopy_backend_open (plugin, t->element, t->state, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  return backend;
}

static void
target_teardown (Target *t)
{
  canopy_config_free (t->config);
  canopy_plugin_loader_free (t->loader);
  if (t->pg_dir != NULL)
    {
      canopy_test_pg_stop (t->pg_dir);
      g_clear_pointer (&pg_started_dir, g_free);
    }
  g_free (t->pg_dir);
  g_free (t->state);
}

/* Device, content and deployment IDs are UUIDs: the typed schemas keep
 * them as such. */
#define DEV_A "0a000000-0000-4000-8000-00000000000a"
#define DEV_B "0b000000-0000-4000-8000-00000000000b"
#define DEV_C "0c000000-0000-4000-8000-00000000000c"
#define DEV_D "0d000000-0000-4000-8000-00000000000d"
#define DEPLOYMENT "d0000000-0000-4000-8000-000000000001"
#define CONTENT "c0000000-0000-4000-8000-000000000001"

static GVariant *
device_value (const char *name, gint64 last_seen)
{
  const char *groups[] = { "Finance", NULL };
  GVariantBuilder addresses;

  g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
  g_variant_builder_add (&addresses, "(sy)", "198.18.10.7", 24);
  return g_variant_new ("(s^asa(sy)ssxxxtuu)", name, groups, &addresses, "0.1.0", "North",
                        G_GINT64_CONSTANT (1000), last_seen, G_GINT64_CONSTANT (500),
                        G_GUINT64_CONSTANT (1) << 33, 7, 0);
}

static gboolean
collect_keys (const char *key, GVariant *value, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup (key));
  return TRUE;
}

static gboolean
collect_values (const char *key, GVariant *value, gpointer user_data)
{
  g_hash_table_insert (user_data, g_strdup (key), g_variant_ref (value));
  return TRUE;
}

static GPtrArray *
list_keys (CanopyBackend *backend, CanopyRecordKind kind)
{
  GPtrArray *keys = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;

  CU_ASSERT (canopy_backend_list (backend, kind, collect_keys, keys, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  return keys;
}

/* A device with @n_groups groups from @first_group on, and @n_addresses
 * addresses whose prefix length is @prefix. */
static GVariant *
device_with_lists (guint first_group, guint n_groups, guint n_addresses, guint8 prefix)
{
  GVariantBuilder groups, addresses;

  g_variant_builder_init (&groups, G_VARIANT_TYPE ("as"));
  for (guint i = 0; i < n_groups; i++)
    g_variant_builder_add_value (&groups,
                                 g_variant_new_take_string (g_strdup_printf ("Group %u",
                                                                             first_group + i)));
  g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
  for (guint i = 0; i < n_addresses; i++)
    {
      g_autofree char *address = g_strdup_printf ("198.18.%u.7", i);
      g_variant_builder_add (&addresses, "(sy)", address, prefix);
    }
  return g_variant_ref_sink (g_variant_new ("(sasa(sy)ssxxxtuu)", "PC D", &groups, &addresses,
                                            "0.1.0", "North", G_GINT64_CONSTANT (1000),
                                            G_GINT64_CONSTANT (2000), G_GINT64_CONSTANT (0),
                                            G_GUINT64_CONSTANT (0), 0, 0));
}

/* A record written again with its lists grown, shrunk, reordered, changed
 * in one field, unchanged, longer than one statement carries, and empty
 * reads back exactly as written each time. */
static void
check_lists_rewritten (CanopyBackend *backend)
{
  static const struct {
    guint first_group, n_groups, n_addresses;
    guint8 prefix;
  } steps[] = {
    { 0, 3, 2, 24 }, { 0, 3, 2, 24 }, { 1, 2, 2, 24 }, { 0, 3, 2, 25 },
    { 5, 1, 1, 25 }, { 0, 60, 40, 16 }, { 0, 59, 40, 16 }, { 0, 0, 0, 0 }, { 2, 2, 1, 8 },
  };
  const char *gone[] = { DEV_D, NULL };

  for (gsize i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GVariant) value = device_with_lists (steps[i].first_group, steps[i].n_groups,
                                                      steps[i].n_addresses, steps[i].prefix);
      CanopyRecord record = { DEV_D, value };
      g_autoptr (GVariant) got = NULL;

      CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_DEVICE, &record, 1, &error));
      CANOPY_ASSERT_NO_ERROR (error);
      got = canopy_backend_get (backend, CANOPY_RECORD_DEVICE, DEV_D, &error);
      CANOPY_ASSERT_NO_ERROR (error);
      if (got == NULL || !g_variant_equal (got, value))
        fprintf (stderr, "\n    step %" G_GSIZE_FORMAT ": read back a different device\n", i);
      CU_ASSERT (got != NULL && g_variant_equal (got, value));
    }
  CU_ASSERT (canopy_backend_remove (backend, CANOPY_RECORD_DEVICE, gone, NULL));
}

/* Device @i of a batch: a key of its own, two groups and two addresses. */
static CanopyRecord
batch_device (guint i, guint8 prefix)
{
  CanopyRecord record = {
    g_strdup_printf ("0e%06x-0000-4000-8000-%012x", i, i),
    device_with_lists (i, 2, 2, prefix),
  };

  return record;
}

static void
batch_clear (CanopyRecord *records, guint n)
{
  for (guint i = 0; i < n; i++)
    {
      g_free ((char *) records[i].key);
      g_variant_unref (records[i].value);
    }
}

/* A batch of many records (more statements than a backend may send before
 * reading their answers) is written whole; one the database refuses (a
 * prefix length past 128, against the schema's check) anywhere in a batch
 * leaves none of the batch written, says why, and the backend writes the
 * next batch as if nothing had happened. */
static void
check_batches (CanopyBackend *backend)
{
  enum { N = 400 };
  static const guint refused_at[] = { 1, N - 1 };
  CanopyRecord records[N];
  g_autoptr (GPtrArray) keys = NULL;

  for (gsize r = 0; r < G_N_ELEMENTS (refused_at); r++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GVariant) got = NULL;

      for (guint i = 0; i < N; i++)
        records[i] = batch_device (i, i == refused_at[r] ? 200 : 24);
      CU_ASSERT_FALSE (canopy_backend_put (backend, CANOPY_RECORD_DEVICE, records, N, &error));
      CU_ASSERT_PTR_NOT_NULL (error);
      if (error != NULL)
        CANOPY_ASSERT_CONTAINS (error->message, "prefix_length");
      got = canopy_backend_get (backend, CANOPY_RECORD_DEVICE, records[0].key, NULL);
      CU_ASSERT_PTR_NULL (got);
      batch_clear (records, N);
    }
  for (guint i = 0; i < N; i++)
    records[i] = batch_device (i, 24);
  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_DEVICE, records, N, NULL));
  for (guint i = 0; i < N; i += 57)
    {
      g_autoptr (GVariant) got = canopy_backend_get (backend, CANOPY_RECORD_DEVICE,
                                                     records[i].key, NULL);

      CU_ASSERT (got != NULL && g_variant_equal (got, records[i].value));
    }
  keys = g_ptr_array_new_null_terminated (N, NULL, TRUE);
  for (guint i = 0; i < N; i++)
    g_ptr_array_add (keys, (gpointer) records[i].key);
  CU_ASSERT (canopy_backend_remove (backend, CANOPY_RECORD_DEVICE,
                                    (const char *const *) keys->pdata, NULL));
  batch_clear (records, N);
}

static void
check_records_round_trip (CanopyBackend *backend)
{
  g_autoptr (GError) error = NULL;
  CanopyRecord records[3] = {
    { DEV_B, g_variant_ref_sink (device_value ("PC B", 2000)) },
    { DEV_A, g_variant_ref_sink (device_value ("PC A", 2000)) },
    { DEV_C, g_variant_ref_sink (device_value ("PC C", 2000)) },
  };
  g_autoptr (GVariant) got = NULL;
  g_autoptr (GPtrArray) keys = NULL;
  const char *gone[] = { DEV_C, "never-there", NULL };

  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_DEVICE, records, 3, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  got = canopy_backend_get (backend, CANOPY_RECORD_DEVICE, DEV_A, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (g_variant_equal (got, records[1].value));

  /* Writing a key again replaces it: a heartbeat batch. */
  g_variant_unref (records[1].value);
  records[1].value = g_variant_ref_sink (device_value ("PC A", 9999));
  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_DEVICE, records + 1, 1, &error));
  g_clear_pointer (&got, g_variant_unref);
  got = canopy_backend_get (backend, CANOPY_RECORD_DEVICE, DEV_A, &error);
  CU_ASSERT (g_variant_equal (got, records[1].value));

  keys = list_keys (backend, CANOPY_RECORD_DEVICE);
  CU_ASSERT_EQUAL_FATAL (keys->len, 3);
  {
    /* a listed value is the stored value, lists and all */
    g_autoptr (GHashTable) values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                           (GDestroyNotify) g_variant_unref);
    CU_ASSERT (canopy_backend_list (backend, CANOPY_RECORD_DEVICE, collect_values, values,
                                    &error));
    CU_ASSERT (g_variant_equal (g_hash_table_lookup (values, DEV_A), records[1].value));
    CU_ASSERT (g_variant_equal (g_hash_table_lookup (values, DEV_B), records[0].value));
  }
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (keys, 0), DEV_A);
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (keys, 1), DEV_B);
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (keys, 2), DEV_C);

  CU_ASSERT (canopy_backend_remove (backend, CANOPY_RECORD_DEVICE, gone, &error));
  g_clear_pointer (&got, g_variant_unref);
  got = canopy_backend_get (backend, CANOPY_RECORD_DEVICE, DEV_C, &error);
  CU_ASSERT_PTR_NULL (got);
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND));
  for (int i = 0; i < 3; i++)
    g_variant_unref (records[i].value);
}

static void
check_every_kind (CanopyBackend *backend)
{
  const char *groups[] = { "Finance", NULL };
  const char *ranges[] = { "198.18.10.0/24", NULL };
  guint64 bytes[] = { 10, 20, 30, 40 };
  const guint8 manifest[] = { 1, 2, 3, 4, 5 };
  /* a SHA-256 is bytes, zeros and all, not text */
  static const guint8 hash[32] = { 0xa5, 0, 0xff, [16] = 0x7f, [31] = 0x01 };
  GVariant *values[CANOPY_N_RECORD_KINDS] = {
    device_value ("PC", 1),
    g_variant_new ("(su^astbb)", "", 0u, ranges, G_GUINT64_CONSTANT (100000000), FALSE, TRUE),
    g_variant_new ("(s)", "Finance, Sales"),
    g_variant_new ("(sss@ayxx)", "Office Suite", "16.0", "https://cdn.example.com/o.msi",
                   g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, manifest, 5, 1),
                   G_GINT64_CONSTANT (42), G_GINT64_CONSTANT (1800000000000000)),
    g_variant_new ("(s^assuxxxuub)", CONTENT, groups, "/opt/office", 0u,
                   G_GINT64_CONSTANT (43), G_GINT64_CONSTANT (44), G_GINT64_CONSTANT (45),
                   1320u, 360u, TRUE),
    g_variant_new ("(u@atb)", 12u,
                   g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, bytes, 4, 8), TRUE),
    g_variant_new ("(xxx)", G_GINT64_CONSTANT (1), G_GINT64_CONSTANT (2), G_GINT64_CONSTANT (0)),
    g_variant_new ("(sx)", "operator", G_GINT64_CONSTANT (1764900000000000)),
    g_variant_new ("(s@ayxx)", "ann.lee@example.com",
                   g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, hash, sizeof hash, 1),
                   G_GINT64_CONSTANT (1764900000000000), G_GINT64_CONSTANT (0)),
  };

  const char *keys[CANOPY_N_RECORD_KINDS] = {
    [CANOPY_RECORD_DEVICE] = DEV_A,
    [CANOPY_RECORD_OFFICE] = "North/East",
    [CANOPY_RECORD_SETTING] = "assigned-groups",
    [CANOPY_RECORD_CONTENT] = CONTENT,
    [CANOPY_RECORD_DEPLOYMENT] = DEPLOYMENT,
    [CANOPY_RECORD_PROGRESS] = DEPLOYMENT "/" DEV_A,
    [CANOPY_RECORD_ACTIVATION] = DEV_A,
    [CANOPY_RECORD_ADMIN] = "ann.lee@example.com",
    [CANOPY_RECORD_ADMIN_TOKEN] = "00112233aabbccdd",
  };

  for (CanopyRecordKind kind = 0; kind < CANOPY_N_RECORD_KINDS; kind++)
    {
      g_autoptr (GError) error = NULL;
      CanopyRecord record = { keys[kind], g_variant_ref_sink (values[kind]) };
      g_autoptr (GVariant) got = NULL;

      CU_ASSERT (canopy_backend_put (backend, kind, &record, 1, &error));
      CANOPY_ASSERT_NO_ERROR (error);
      got = canopy_backend_get (backend, kind, keys[kind], &error);
      CANOPY_ASSERT_NO_ERROR (error);
      CU_ASSERT (got != NULL && g_variant_equal (got, record.value));
      g_variant_unref (record.value);
    }
}

/* A token needs its admin; an admin's removal takes their tokens. */
static void
check_admin_tokens_follow_admin (CanopyBackend *backend)
{
  static const guint8 hash[32] = { 1, 2, 3 };
  g_autoptr (GError) error = NULL;
  CanopyRecord admin = { "bo", g_variant_ref_sink (g_variant_new ("(sx)", "auditor",
                                                                 G_GINT64_CONSTANT (5000000))) };
  CanopyRecord token = { "fedcba9876543210", g_variant_ref_sink (g_variant_new (
    "(s@ayxx)", "nobody", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, hash, 32, 1),
    G_GINT64_CONSTANT (5000000), G_GINT64_CONSTANT (9000000))) };
  const char *gone[] = { "bo", NULL };
  g_autoptr (GVariant) got = NULL;

  CU_ASSERT_FALSE (canopy_backend_put (backend, CANOPY_RECORD_ADMIN_TOKEN, &token, 1, &error));
  CU_ASSERT_PTR_NOT_NULL (error);
  g_clear_error (&error);
  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_ADMIN, &admin, 1, &error));
  g_variant_unref (token.value);
  token.value = g_variant_ref_sink (g_variant_new (
    "(s@ayxx)", "bo", g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, hash, 32, 1),
    G_GINT64_CONSTANT (5000000), G_GINT64_CONSTANT (9000000)));
  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_ADMIN_TOKEN, &token, 1, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  got = canopy_backend_get (backend, CANOPY_RECORD_ADMIN_TOKEN, token.key, &error);
  CU_ASSERT (got != NULL && g_variant_equal (got, token.value));
  CU_ASSERT (canopy_backend_remove (backend, CANOPY_RECORD_ADMIN, gone, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  g_clear_pointer (&got, g_variant_unref);
  got = canopy_backend_get (backend, CANOPY_RECORD_ADMIN_TOKEN, token.key, &error);
  CU_ASSERT_PTR_NULL (got);
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND));
  g_variant_unref (admin.value);
  g_variant_unref (token.value);
}

/* --- admins kept as settings by the releases before the admins table --- */

#define OLD_ADMIN "alice"
#define OLD_TOKEN_ID "0123456789abcdef"
#define OLD_CREATED G_GINT64_CONSTANT (1764900000)

/* @text doubled quotes: an SQL string literal's inside. */
static char *
sql_quoted (const char *text)
{
  g_auto (GStrv) parts = g_strsplit (text, "'", -1);

  return g_strjoinv ("''", parts);
}

/* The INSERT of the settings rows that "canopyd admin-add alice --role
 * administrator" wrote in those releases (GVariant text as
 * canopy_admins_admin_value() and _token_value() printed it), a token of
 * an admin already removed, and the token's text into @token. */
static char *
old_admin_settings_sql (char **token)
{
  guint8 secret[32];
  g_autoptr (GString) secret_hex = g_string_new (NULL);
  g_autoptr (GChecksum) sha = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr (GVariant) admin = NULL, token_value = NULL, orphan = NULL;
  g_autofree char *admin_text = NULL, *token_text = NULL, *orphan_text = NULL;
  g_autofree char *a = NULL, *b = NULL, *c = NULL;

  for (guint i = 0; i < sizeof secret; i++)
    {
      secret[i] = (guint8) (i * 7 + 3);
      g_string_append_printf (secret_hex, "%02x", secret[i]);
    }
  g_checksum_update (sha, secret, sizeof secret);
  *token = g_strconcat ("cnp_" OLD_TOKEN_ID "_", secret_hex->str, NULL);
  admin = g_variant_ref_sink (g_variant_new ("(sx)", "administrator", OLD_CREATED));
  token_value = g_variant_ref_sink (g_variant_new ("(ssxx)", OLD_ADMIN,
                                                   g_checksum_get_string (sha), OLD_CREATED,
                                                   G_GINT64_CONSTANT (0)));
  orphan = g_variant_ref_sink (g_variant_new ("(ssxx)", "gone", g_checksum_get_string (sha),
                                              OLD_CREATED, G_GINT64_CONSTANT (0)));
  admin_text = g_variant_print (admin, FALSE);
  token_text = g_variant_print (token_value, FALSE);
  orphan_text = g_variant_print (orphan, FALSE);
  a = sql_quoted (admin_text);
  b = sql_quoted (token_text);
  c = sql_quoted (orphan_text);
  return g_strdup_printf ("INSERT INTO settings (name, value) VALUES "
                          "('admin/" OLD_ADMIN "', '%s'), ('admin-token/" OLD_TOKEN_ID "', '%s'),"
                          " ('admin-token/feedfacefeedface', '%s')",
                          a, b, c);
}

/* Opens the database a test turned back into the schema before the
 * admins table, with the admin rows that release wrote: the admin and
 * their token are in the new tables, sign in as before, and left the
 * settings; the other settings stay. */
static void
check_admins_moved (Target *t, const char *token)
{
  g_autoptr (CanopyBackend) backend = target_open (t);
  g_autoptr (CanopyAdmins) admins = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) settings = NULL;
  const CanopyAdminToken *found = NULL;
  const CanopyAdmin *alice;

  CU_ASSERT_PTR_NOT_NULL_FATAL (backend);
  admins = canopy_admins_load (backend, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (admins);
  alice = canopy_admins_lookup (admins, OLD_ADMIN);
  CU_ASSERT_PTR_NOT_NULL_FATAL (alice);
  CU_ASSERT_EQUAL (alice->role, CANOPY_ADMIN_ROLE_ADMINISTRATOR);
  CU_ASSERT_EQUAL (alice->created, OLD_CREATED);
  CU_ASSERT_EQUAL (canopy_admins_check (admins, token, OLD_CREATED + 60, &found),
                   CANOPY_ADMINS_CHECK_OK);
  CU_ASSERT (found != NULL && g_str_equal (found->admin, OLD_ADMIN) && found->expires == 0);
  /* the token of an admin removed long ago could never sign in */
  CU_ASSERT_PTR_NULL (canopy_admins_lookup_token (admins, "feedfacefeedface"));
  CU_ASSERT_EQUAL (canopy_admins_count (admins), 1);
  settings = list_keys (backend, CANOPY_RECORD_SETTING);
  CU_ASSERT (g_ptr_array_find_with_equal_func (settings, "assigned-groups", g_str_equal, NULL));
  for (guint i = 0; i < settings->len; i++)
    CU_ASSERT_FALSE (g_str_has_prefix (g_ptr_array_index (settings, i), "admin"));
}

static void
check_sqlite_admins_moved (Target *t)
{
  g_autofree char *path = g_build_filename (t->state, "conformance.db", NULL);
  g_autofree char *token = NULL;
  g_autofree char *insert = old_admin_settings_sql (&token);
  g_autofree char *downgrade = g_strconcat (
    "DROP TABLE admin_tokens; DROP TABLE admins; DELETE FROM schema_migrations WHERE version = 3;"
    "PRAGMA user_version = 2;", insert, NULL);
  sqlite3 *db = NULL;

  CU_ASSERT_FATAL (sqlite3_open (path, &db) == SQLITE_OK);
  CU_ASSERT (sqlite3_exec (db, downgrade, NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close (db);
  check_admins_moved (t, token);
  /* opened again: nothing moves twice */
  check_admins_moved (t, token);
}

static void
check_transactions (CanopyBackend *backend)
{
  g_autoptr (GError) error = NULL;
  CanopyRecord setting = { "assigned-groups", g_variant_ref_sink (g_variant_new ("(s)", "A")) };
  CanopyRecord changed = { "assigned-groups", g_variant_ref_sink (g_variant_new ("(s)", "B")) };
  g_autoptr (GVariant) got = NULL;

  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_SETTING, &setting, 1, &error));
  CU_ASSERT (canopy_backend_begin (backend, &error));
  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_SETTING, &changed, 1, &error));
  canopy_backend_rollback (backend);
  got = canopy_backend_get (backend, CANOPY_RECORD_SETTING, "assigned-groups", &error);
  CU_ASSERT (got != NULL && g_variant_equal (got, setting.value));
  g_clear_pointer (&got, g_variant_unref);

  CU_ASSERT (canopy_backend_begin (backend, &error));
  CU_ASSERT (canopy_backend_put (backend, CANOPY_RECORD_SETTING, &changed, 1, &error));
  CU_ASSERT (canopy_backend_commit (backend, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  got = canopy_backend_get (backend, CANOPY_RECORD_SETTING, "assigned-groups", &error);
  CU_ASSERT (got != NULL && g_variant_equal (got, changed.value));
  g_variant_unref (setting.value);
  g_variant_unref (changed.value);
}

static void
check_replace_all (CanopyBackend *backend)
{
  g_autoptr (GError) error = NULL;
  const char *ranges[] = { "198.18.1.0/24", NULL };
  CanopyRecord old[2] = {
    { "Old A", g_variant_ref_sink (g_variant_new ("(su^astbb)", "", 0u, ranges,
                                                  G_GUINT64_CONSTANT (0), FALSE, FALSE)) },
    { "Old B", g_variant_ref_sink (g_variant_new ("(su^astbb)", "", 0u, ranges,
                                                  G_GUINT64_CONSTANT (0), FALSE, FALSE)) },
  };
  CanopyRecord fresh = { "New", g_variant_ref_sink (g_variant_new (
                                  "(su^astbb)", "", 2u, ranges, G_GUINT64_CONSTANT (1), TRUE,
                                  FALSE)) };
  g_autoptr (GPtrArray) keys = NULL;

  CU_ASSERT (canopy_backend_replace_all (backend, CANOPY_RECORD_OFFICE, old, 2, &error));
  CU_ASSERT (canopy_backend_replace_all (backend, CANOPY_RECORD_OFFICE, &fresh, 1, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  keys = list_keys (backend, CANOPY_RECORD_OFFICE);
  CU_ASSERT_EQUAL (keys->len, 1);
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (keys, 0), "New");
  g_variant_unref (old[0].value);
  g_variant_unref (old[1].value);
  g_variant_unref (fresh.value);
}

static gboolean
collect_ids (gint64 id, GVariant *entry, gpointer user_data)
{
  g_array_append_val ((GArray *) user_data, id);
  return TRUE;
}

static void
check_logs (CanopyBackend *backend)
{
  g_autoptr (GError) error = NULL;
  GVariant *entries[5];
  g_autoptr (GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr (GArray) later = g_array_new (FALSE, FALSE, sizeof (gint64));

  for (int i = 0; i < 5; i++)
    entries[i] = g_variant_ref_sink (g_variant_new ("(xsss)", (gint64) i, "admin",
                                                    "settings.assigned-groups", "Finance"));
  CU_ASSERT (canopy_backend_append (backend, CANOPY_LOG_AUDIT, entries, 5, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (canopy_backend_list_log (backend, CANOPY_LOG_AUDIT, 0, 0, collect_ids, ids, &error));
  CU_ASSERT_EQUAL_FATAL (ids->len, 5);
  for (guint i = 1; i < ids->len; i++)
    CU_ASSERT (g_array_index (ids, gint64, i) > g_array_index (ids, gint64, i - 1));
  CU_ASSERT (canopy_backend_list_log (backend, CANOPY_LOG_AUDIT, g_array_index (ids, gint64, 1),
                                      2, collect_ids, later, &error));
  CU_ASSERT_EQUAL (later->len, 2);
  for (int i = 0; i < 5; i++)
    g_variant_unref (entries[i]);
}

/* What a restart must not lose. */
static void
check_persistence (Target *t)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyBackend) again = target_open (t);
  g_autoptr (GVariant) got = NULL;
  CanopyBackendInfo info;

  CU_ASSERT_PTR_NOT_NULL_FATAL (again);
  got = canopy_backend_get (again, CANOPY_RECORD_DEVICE, DEV_A, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (canopy_backend_check_health (again, &error));
  CU_ASSERT (canopy_backend_get_info (again, &info, &error));
  CU_ASSERT (info.schema_version >= 1);
  CU_ASSERT_PTR_NOT_NULL (info.server_version);
  CU_ASSERT_PTR_NOT_NULL (info.location);
  canopy_backend_info_clear (&info);
}

/* Writes @n devices whose IDs end in @tag, in batches of 10, each batch
 * read back at once; returns how many writes failed. */
static guint
write_devices (Target *t, guint tag, guint n)
{
  g_autoptr (CanopyBackend) backend = target_open (t);
  guint failures = 0;

  if (backend == NULL)
    return n;
  for (guint i = 0; i < n; i += 10)
    {
      CanopyRecord records[10];
      char keys[10][37];

      for (guint j = 0; j < 10; j++)
        {
          g_snprintf (keys[j], sizeof keys[j], "%08x-0000-4000-8000-%012x", i + j, tag);
          records[j].key = keys[j];
          records[j].value = g_variant_ref_sink (device_value (keys[j], (gint64) (i + j)));
        }
      if (!canopy_backend_put (backend, CANOPY_RECORD_DEVICE, records, 10, NULL))
        failures += 10;
      else
        for (guint j = 0; j < 10; j++)
          {
            g_autoptr (GVariant) got = canopy_backend_get (backend, CANOPY_RECORD_DEVICE, keys[j],
                                                           NULL);
            if (got == NULL || !g_variant_equal (got, records[j].value))
              failures++;
          }
      for (guint j = 0; j < 10; j++)
        g_variant_unref (records[j].value);
    }
  return failures;
}

/* Two processes write and read the same database at once (two canopyd
 * on one database, or canopyd and a second tool): nothing is lost. */
static void
check_two_processes (Target *t)
{
  const guint n = 200;
  g_autoptr (CanopyBackend) backend = NULL;
  g_autoptr (GPtrArray) keys = NULL;
  guint mine = 0, theirs = 0;
  int status = 0;
  pid_t child = fork ();

  CU_ASSERT_FATAL (child >= 0);
  if (child == 0)
    _exit (write_devices (t, 0xbbbb, n) == 0 ? 0 : 1);
  CU_ASSERT_EQUAL (write_devices (t, 0xaaaa, n), 0);
  CU_ASSERT (waitpid (child, &status, 0) == child);
  CU_ASSERT (WIFEXITED (status) && WEXITSTATUS (status) == 0);

  backend = target_open (t);
  CU_ASSERT_PTR_NOT_NULL_FATAL (backend);
  keys = list_keys (backend, CANOPY_RECORD_DEVICE);
  for (guint i = 0; i < keys->len; i++)
    {
      const char *key = g_ptr_array_index (keys, i);
      mine += g_str_has_suffix (key, "00000000aaaa");
      theirs += g_str_has_suffix (key, "00000000bbbb");
    }
  CU_ASSERT_EQUAL (mine, n);
  CU_ASSERT_EQUAL (theirs, n);
}

static void
run_conformance (const char *name)
{
  Target t;
  g_autoptr (CanopyBackend) backend = NULL;

  if (!target_setup (&t, name))
    {
      target_teardown (&t);
      return;
    }
  backend = target_open (&t);
  if (backend != NULL)
    {
      check_records_round_trip (backend);
      check_lists_rewritten (backend);
      check_batches (backend);
      check_every_kind (backend);
      check_admin_tokens_follow_admin (backend);
      check_transactions (backend);
      check_replace_all (backend);
      check_logs (backend);
      g_clear_pointer (&backend, canopy_backend_close);
      check_persistence (&t);
      check_two_processes (&t);
      if (g_str_equal (name, "sqlite"))
        check_sqlite_admins_moved (&t);
    }
  target_teardown (&t);
}

/* The embedded database is one server's: asking it for a cluster says so
 * by name instead of misbehaving. */
static void
check_no_cluster (Target *t)
{
  g_autoptr (CanopyBackend) backend = target_open (t);
  g_autoptr (GError) error = NULL;

  CU_ASSERT_FALSE (canopy_backend_supports_cluster (backend));
  CU_ASSERT_FALSE (canopy_backend_cluster_prepare (backend, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNSUPPORTED));
  CU_ASSERT (error != NULL && strstr (error->message, "\"sqlite\"") != NULL);
}

static void
test_sqlite (void)
{
  Target t;

  run_conformance ("sqlite");
  if (target_setup (&t, "sqlite"))
    check_no_cluster (&t);
  target_teardown (&t);
}

static char *
psql (Target *t, const char *sql)
{
  g_autofree char *password_file = g_build_filename (t->state, "pg.password", NULL);

  return canopy_test_pg_psql (t->pg_dir, password_file, sql);
}

/* What a report writer sees in psql: typed columns. */
static void
check_psql_reads_typed_columns (Target *t)
{
  g_autofree char *row = psql (t, "SELECT device_id, name, pg_typeof(device_id), "
                                  "pg_typeof(last_seen), bytes_served FROM devices "
                                  "WHERE device_id = '" DEV_A "'");
  g_autofree char *groups = psql (t, "SELECT string_agg(group_name, ',' ORDER BY position) "
                                     "FROM device_groups WHERE device_id = '" DEV_A "'");

  CU_ASSERT_STRING_EQUAL (row, DEV_A "|PC|uuid|timestamp with time zone|8589934592\n");
  CU_ASSERT_STRING_EQUAL (groups, "Finance\n");
}

static void
check_pg_admins_moved (Target *t)
{
  g_autofree char *token = NULL;
  g_autofree char *insert = old_admin_settings_sql (&token);
  g_autofree char *downgrade = g_strconcat (
    "DROP TABLE admin_tokens; DROP TABLE admins; DROP FUNCTION canopy_notify_progress () CASCADE;"
    " DELETE FROM schema_migrations WHERE version >= 2;",
    insert, NULL);
  g_autofree char *done = psql (t, downgrade);
  g_autofree char *types = NULL;

  CU_ASSERT_PTR_NOT_NULL (done);
  check_admins_moved (t, token);
  check_admins_moved (t, token);
  types = psql (t, "SELECT admin_name, role, pg_typeof(admins.created_at), length(secret_sha256) "
                   "FROM admins JOIN admin_tokens USING (admin_name)");
  CU_ASSERT_PTR_NOT_NULL_FATAL (types);
  CU_ASSERT_STRING_EQUAL (types, OLD_ADMIN "|administrator|timestamp with time zone|32\n");
}

/* A database the last release's own "canopyd admin-add" wrote (admins in
 * settings; tests/integration/data): after the upgrade both admins keep
 * their roles and expiry, the tokens it printed sign in, and settings
 * keeps no admin row. */
static void
check_pg_release_admins (Target *t)
{
  g_autofree char *fixture = canopy_test_src_path ("tests", "integration", "data",
                                                   "release-admins-postgresql.sql", NULL);
  g_autofree char *sql = NULL, *alice = NULL, *bob = NULL;
  g_autofree char *emptied = NULL, *loaded = NULL, *left = NULL, *versions = NULL;
  g_autoptr (CanopyBackend) backend = NULL;
  g_autoptr (CanopyAdmins) admins = NULL;
  g_autoptr (GError) error = NULL;
  const CanopyAdminToken *found = NULL;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;

  g_assert (g_file_get_contents (fixture, &sql, NULL, NULL));
  alice = canopy_test_fixture_token (sql, "alice");
  bob = canopy_test_fixture_token (sql, "bob");
  emptied = psql (t, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
  loaded = psql (t, sql);
  CU_ASSERT_PTR_NOT_NULL_FATAL (loaded);

  backend = target_open (t);
  CU_ASSERT_PTR_NOT_NULL_FATAL (backend);
  admins = canopy_admins_load (backend, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (admins);
  CU_ASSERT_EQUAL (canopy_admins_count (admins), 2);
  CU_ASSERT (canopy_admins_lookup (admins, "alice") != NULL
             && canopy_admins_lookup (admins, "alice")->role == CANOPY_ADMIN_ROLE_ADMINISTRATOR);
  CU_ASSERT (canopy_admins_lookup (admins, "bob") != NULL
             && canopy_admins_lookup (admins, "bob")->role == CANOPY_ADMIN_ROLE_AUDITOR);
  CU_ASSERT_EQUAL (canopy_admins_check (admins, alice, now, &found), CANOPY_ADMINS_CHECK_OK);
  CU_ASSERT (found != NULL && found->expires == 0);
  CU_ASSERT_EQUAL (canopy_admins_check (admins, bob, now, &found), CANOPY_ADMINS_CHECK_OK);
  CU_ASSERT (found != NULL && found->expires == G_GINT64_CONSTANT (2111820692));
  g_clear_pointer (&backend, canopy_backend_close);

  left = psql (t, "SELECT count(*) FROM settings WHERE name LIKE 'admin%'");
  versions = psql (t, "SELECT string_agg(version::text, ',' ORDER BY version) "
                      "FROM schema_migrations");
  CU_ASSERT_STRING_EQUAL (left != NULL ? left : "", "0\n");
  CU_ASSERT_STRING_EQUAL (versions != NULL ? versions : "", "1,2,3\n");
}

/* A database from a newer canopy is refused and not touched. */
static void
check_too_new (Target *t)
{
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *plugin = canopy_plugin_loader_lookup (
    t->loader, canopy_config_node_get_attribute (t->element, "plugin"));
  g_autoptr (CanopyBackend) backend = NULL;
  g_autofree char *after = NULL;
  g_autofree char *inserted = psql (t, "INSERT INTO schema_migrations (version) VALUES (999)");

  CU_ASSERT_PTR_NOT_NULL (inserted);
  backend = canopy_backend_open (plugin, t->element, t->state, &error);
  CU_ASSERT_PTR_NULL (backend);
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_TOO_NEW));
  if (error != NULL)
    {
      CANOPY_ASSERT_CONTAINS (error->message, "999");
      CU_ASSERT (strstr (error->message, "pg.password") == NULL);
    }
  after = psql (t, "SELECT max(version), count(*) FROM schema_migrations");
  CU_ASSERT_STRING_EQUAL (after, "999|4\n");
}


/* --- clusters -------------------------------------------------------------- */

#define SERVER_A "5a000000-0000-4000-8000-00000000000a"
#define SERVER_B "5b000000-0000-4000-8000-00000000000b"

static gboolean
collect_servers (const CanopyClusterServer *server, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup_printf ("%s %s %d", server->server_id, server->name,
                                               server->silent_us < 60 * G_USEC_PER_SEC
                                                 && server->heartbeat_at > 0
                                                 && server->started_at > 0));
  return TRUE;
}

static char *
take (CanopyBackend *backend, const char *holder, const char *detail, guint ms)
{
  g_autoptr (GError) error = NULL;
  CanopyClusterLease lease;

  CU_ASSERT_FATAL (canopy_backend_cluster_take_lease (backend, "North", holder, detail, ms,
                                                      &lease, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_STRING_EQUAL (lease.name, "North");
  return g_strdup_printf ("%s %s", lease.holder, lease.detail);
}

/* Two connections stand for two servers: the registry, a lease that only
 * one holds until it lapses, and another session's change notified. */
static void
check_cluster (Target *t)
{
  g_autoptr (CanopyBackend) a = target_open (t);
  g_autoptr (CanopyBackend) b = target_open (t);
  g_autoptr (GPtrArray) servers = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GError) error = NULL;
  CanopyChangeKinds changed = 0;
  g_autofree char *held = NULL;
  gint64 deadline;

  CU_ASSERT_FATAL (canopy_backend_supports_cluster (a));
  CU_ASSERT (canopy_backend_supports_notification (a));
  /* both prepare at once, as two servers starting together do */
  CU_ASSERT_FATAL (canopy_backend_cluster_prepare (a, &error));
  CU_ASSERT_FATAL (canopy_backend_cluster_prepare (b, &error));
  CANOPY_ASSERT_NO_ERROR (error);

  CU_ASSERT (canopy_backend_cluster_heartbeat (a, SERVER_A, "alpha", TRUE, &error));
  CU_ASSERT (canopy_backend_cluster_heartbeat (b, SERVER_B, "beta", TRUE, &error));
  CU_ASSERT (canopy_backend_cluster_heartbeat (a, SERVER_A, "alpha", FALSE, &error));
  CU_ASSERT (canopy_backend_cluster_list_servers (b, collect_servers, servers, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL_FATAL (servers->len, 2);
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (servers, 0), SERVER_A " alpha 1");
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (servers, 1), SERVER_B " beta 1");

  /* the first taker holds it; the other is refused and told who holds it */
  held = take (a, SERVER_A, "lead-a", 60000);
  CU_ASSERT_STRING_EQUAL (held, SERVER_A " lead-a");
  g_free (held);
  held = take (b, SERVER_B, "lead-b", 60000);
  CU_ASSERT_STRING_EQUAL (held, SERVER_A " lead-a");
  g_free (held);
  /* the holder renews and changes what it publishes */
  held = take (a, SERVER_A, "lead-a2", 300);
  CU_ASSERT_STRING_EQUAL (held, SERVER_A " lead-a2");
  g_free (held);
  /* once lapsed, it is the other's */
  g_usleep (600 * 1000);
  held = take (b, SERVER_B, "lead-b", 60000);
  CU_ASSERT_STRING_EQUAL (held, SERVER_B " lead-b");
  g_free (held);
  held = take (a, SERVER_A, "lead-a", 60000);
  CU_ASSERT_STRING_EQUAL (held, SERVER_B " lead-b");
  g_clear_pointer (&held, g_free);

  /* a clean leave releases what the server held */
  CU_ASSERT (canopy_backend_cluster_leave (b, SERVER_B, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  held = take (a, SERVER_A, "lead-a", 60000);
  CU_ASSERT_STRING_EQUAL (held, SERVER_A " lead-a");
  g_clear_pointer (&held, g_free);
  g_ptr_array_set_size (servers, 0);
  CU_ASSERT (canopy_backend_cluster_list_servers (a, collect_servers, servers, &error));
  CU_ASSERT_EQUAL (servers->len, 1);

  /* b listens (nothing reported from before), a registers content */
  CU_ASSERT (canopy_backend_cluster_wait_changes (b, 0, &changed, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  {
    CanopyRecord record = { CONTENT, g_variant_ref_sink (g_variant_new (
                                       "(sss@ayxx)", "app", "1", "https://example.com/app",
                                       g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "m", 1, 1),
                                       G_GINT64_CONSTANT (1000), G_GINT64_CONSTANT (0))) };

    CU_ASSERT (canopy_backend_put (a, CANOPY_RECORD_CONTENT, &record, 1, &error));
    CANOPY_ASSERT_NO_ERROR (error);
    g_variant_unref (record.value);
  }
  changed = 0;
  deadline = g_get_monotonic_time () + canopy_test_timeout (10) * G_USEC_PER_SEC;
  while ((changed & (1u << CANOPY_RECORD_CONTENT)) == 0 && g_get_monotonic_time () < deadline)
    {
      CanopyChangeKinds now = 0;

      CU_ASSERT_FATAL (canopy_backend_cluster_wait_changes (b, 500, &now, &error));
      changed |= now;
    }
  CU_ASSERT (changed & (1u << CANOPY_RECORD_CONTENT));
  CU_ASSERT_FALSE (changed & (1u << CANOPY_RECORD_DEVICE));
}

static void
test_postgresql (void)
{
  Target t;
  g_autoptr (CanopyBackend) backend = NULL;

  if (!target_setup (&t, "postgresql"))
    {
      target_teardown (&t);
      return;
    }
  backend = target_open (&t);
  if (backend != NULL)
    {
      check_records_round_trip (backend);
      check_lists_rewritten (backend);
      check_batches (backend);
      check_every_kind (backend);
      check_admin_tokens_follow_admin (backend);
      check_transactions (backend);
      check_replace_all (backend);
      check_logs (backend);
      g_clear_pointer (&backend, canopy_backend_close);
      check_persistence (&t);
      check_psql_reads_typed_columns (&t);
      check_two_processes (&t);
      check_pg_admins_moved (&t);
      check_pg_release_admins (&t);
      check_cluster (&t);
      check_too_new (&t);
    }
  target_teardown (&t);
}

static void
test_freetds (void)
{
  run_conformance ("freetds");
}

static void
test_vendor (void)
{
  run_conformance (g_getenv ("CANOPY_CONFORMANCE_BACKEND"));
}

CANOPY_TEST_SUITE (backend_conformance, "backend-conformance", NULL, suite_cleanup,
                   { "sqlite", test_sqlite },
                   { "postgresql (a server the test starts)", test_postgresql },
                   { "freetds (SQL Server)", test_freetds })

/* A vendor's backend runs the same suite when named by
 * CANOPY_CONFORMANCE_BACKEND and CANOPY_CONFORMANCE_CONFIG; without them
 * there is nothing to run, so the suite is not registered at all. */
static const CanopyTestCase vendor_cases[] = { { "vendor backend", test_vendor }, { NULL, NULL } };

__attribute__ ((constructor)) static void
vendor_register (void)
{
  if (g_getenv ("CANOPY_CONFORMANCE_BACKEND") != NULL)
    canopy_test_add_suite ("backend-conformance-vendor", NULL, NULL, vendor_cases);
}
