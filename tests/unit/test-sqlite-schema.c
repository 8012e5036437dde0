/* The SQLite backend's typed schema: a database written by the release
 * that kept blobs (schema version 1) is converted with every record and
 * log entry intact, a damaged one is refused untouched, and the tables
 * are plain SQL an admin reads with the sqlite3 program. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "plugins/backend-sqlite/sqlite-backend.h"

#include <sqlite3.h>
#include <string.h>

#define DEVICE "0a000000-0000-4000-8000-00000000000a"
#define DEPLOYMENT "d0000000-0000-4000-8000-000000000001"
#define CONTENT "c0000000-0000-4000-8000-000000000001"

/* What the previous release ran to create its database. */
static const char v1_schema[] =
  "CREATE TABLE records (kind INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
  "                      PRIMARY KEY (kind, key)) WITHOUT ROWID;"
  "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
  "                   value BLOB NOT NULL);"
  "CREATE INDEX logs_by_kind ON logs (kind, id);"
  "PRAGMA user_version = 1;";

static GVariant *
record_value (CanopyRecordKind kind)
{
  const char *groups[] = { "Finance", "Sales", NULL };
  const char *ranges[] = { "198.18.10.0/24", "198.18.11.0/24", NULL };
  guint64 bytes[] = { 10, 0, 30, G_GUINT64_CONSTANT (1) << 40 };
  const guint8 manifest[] = { 1, 2, 3, 0, 5 };
  GVariantBuilder addresses;

  switch (kind)
    {
    case CANOPY_RECORD_DEVICE:
      /* built only here: a builder no value takes would leak */
      g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
      g_variant_builder_add (&addresses, "(sy)", "198.18.10.7", 24);
      g_variant_builder_add (&addresses, "(sy)", "2001:db8::7", 64);
      return g_variant_new ("(s^asa(sy)ssxxxtuu)", "PC-17", groups, &addresses, "0.1.0", "North",
                            G_GINT64_CONSTANT (1764900000123456), G_GINT64_CONSTANT (1764910000654321),
                            G_GINT64_CONSTANT (500), G_GUINT64_CONSTANT (1) << 33, 7u, 2u);
    case CANOPY_RECORD_OFFICE:
      return g_variant_new ("(su^astbb)", "HQ", 1u, ranges, G_GUINT64_CONSTANT (100000000), TRUE,
                            FALSE);
    case CANOPY_RECORD_SETTING:
      return g_variant_new ("(s)", "Finance, Sales");
    case CANOPY_RECORD_CONTENT:
      return g_variant_new ("(sss@ayx)", "Office Suite", "16.0", "https://cdn.example.com/o.msi",
                            g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, manifest, 5, 1),
                            G_GINT64_CONSTANT (1764900000000000));
    case CANOPY_RECORD_DEPLOYMENT:
      return g_variant_new ("(s^assux)", CONTENT, groups, "/opt/office", 1u,
                            G_GINT64_CONSTANT (1764900000000001));
    case CANOPY_RECORD_PROGRESS:
      return g_variant_new ("(u@atb)", 12u,
                            g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, bytes, 4, 8), TRUE);
    case CANOPY_RECORD_ACTIVATION:
      return g_variant_new ("(xxx)", G_GINT64_CONSTANT (1764900000000000),
                            G_GINT64_CONSTANT (1764910000000000), G_GINT64_CONSTANT (0));
    default:
      g_assert_not_reached ();
    }
}

/* The record of @kind as today's release reads it: the members its type
 * gained since schema 1 (a content's expiry, a deployment's timing and
 * class) are zero. */
static GVariant *
upgraded_value (CanopyRecordKind kind)
{
  const char *groups[] = { "Finance", "Sales", NULL };
  const guint8 manifest[] = { 1, 2, 3, 0, 5 };

  switch (kind)
    {
    case CANOPY_RECORD_CONTENT:
      return g_variant_new ("(sss@ayxx)", "Office Suite", "16.0", "https://cdn.example.com/o.msi",
                            g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, manifest, 5, 1),
                            G_GINT64_CONSTANT (1764900000000000), G_GINT64_CONSTANT (0));
    case CANOPY_RECORD_DEPLOYMENT:
      return g_variant_new ("(s^assuxxxuub)", CONTENT, groups, "/opt/office", 1u,
                            G_GINT64_CONSTANT (1764900000000001), G_GINT64_CONSTANT (0),
                            G_GINT64_CONSTANT (0), 0u, 0u, FALSE);
    default:
      return record_value (kind);
    }
}

/* The kinds schema version 1 knew. */
#define N_BLOB_KINDS (CANOPY_RECORD_ACTIVATION + 1)

static const char *const keys[N_BLOB_KINDS] = {
  [CANOPY_RECORD_DEVICE] = DEVICE,
  [CANOPY_RECORD_OFFICE] = "North",
  [CANOPY_RECORD_SETTING] = "assigned-groups",
  [CANOPY_RECORD_CONTENT] = CONTENT,
  [CANOPY_RECORD_DEPLOYMENT] = DEPLOYMENT,
  [CANOPY_RECORD_PROGRESS] = DEPLOYMENT "/" DEVICE,
  [CANOPY_RECORD_ACTIVATION] = DEVICE,
};

static void
insert_blob (sqlite3 *db, const char *sql, int kind, const char *key, GVariant *value)
{
  sqlite3_stmt *stmt = NULL;

  g_assert (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL) == SQLITE_OK);
  sqlite3_bind_int (stmt, 1, kind);
  sqlite3_bind_blob (stmt, 2, g_variant_get_data (value), (int) g_variant_get_size (value),
                     SQLITE_TRANSIENT);
  if (key != NULL)
    sqlite3_bind_text (stmt, 3, key, -1, SQLITE_TRANSIENT);
  CU_ASSERT (sqlite3_step (stmt) == SQLITE_DONE);
  sqlite3_finalize (stmt);
}

/* A database as the previous release left it: one record of each kind
 * and log entries with IDs that must survive (7 and 9: a gap). */
static void
write_v1_database (const char *path, gboolean damaged)
{
  sqlite3 *db = NULL;

  g_assert (sqlite3_open (path, &db) == SQLITE_OK);
  g_assert (sqlite3_exec (db, v1_schema, NULL, NULL, NULL) == SQLITE_OK);
  for (CanopyRecordKind kind = 0; kind < N_BLOB_KINDS; kind++)
    {
      g_autoptr (GVariant) value = g_variant_ref_sink (record_value (kind));
      insert_blob (db, "INSERT INTO records (kind, value, key) VALUES (?1, ?2, ?3)", kind,
                   keys[kind], value);
    }
  /* a console admin, as that release kept one: a setting whose value is
   * GVariant text (role, created in seconds) */
  {
    g_autoptr (GVariant) admin = g_variant_ref_sink (
      g_variant_new ("(s)", "('auditor', int64 1764900000)"));
    insert_blob (db, "INSERT INTO records (kind, value, key) VALUES (?1, ?2, ?3)",
                 CANOPY_RECORD_SETTING, "admin/ann", admin);
  }
  g_assert (sqlite3_exec (db, "INSERT INTO sqlite_sequence (name, seq) VALUES ('logs', 6)", NULL,
                          NULL, NULL) == SQLITE_OK);
  {
    g_autoptr (GVariant) audit = g_variant_ref_sink (
      g_variant_new ("(xsss)", G_GINT64_CONSTANT (1764900000000000), "admin", "deploy", "x"));
    g_autoptr (GVariant) transfer = g_variant_ref_sink (g_variant_new (
      "(xsssuutb)", G_GINT64_CONSTANT (1764900000000002), CONTENT, DEVICE, DEVICE, 0u, 3u,
      G_GUINT64_CONSTANT (3145728), TRUE));
    insert_blob (db, "INSERT INTO logs (kind, value) VALUES (?1, ?2)", CANOPY_LOG_AUDIT, NULL,
                 audit);
    g_assert (sqlite3_exec (db, "INSERT INTO logs (kind, value) VALUES (9, x'00');"
                                "DELETE FROM logs WHERE kind = 9", NULL, NULL, NULL)
              == SQLITE_OK);
    insert_blob (db, "INSERT INTO logs (kind, value) VALUES (?1, ?2)", CANOPY_LOG_TRANSFER,
                 NULL, transfer);
  }
  if (damaged)
    g_assert (sqlite3_exec (db, "INSERT INTO records VALUES (0, 'x', x'0102')", NULL, NULL,
                            NULL) == SQLITE_OK);
  sqlite3_close (db);
}

static gboolean
collect_entry (gint64 id, const guint8 *value, gsize length, gpointer user_data)
{
  g_ptr_array_add (user_data, g_strdup_printf ("%" G_GINT64_FORMAT, id));
  g_ptr_array_add (user_data, g_bytes_new (value, length));
  return TRUE;
}

static char *
run_sqlite3 (const char *path, const char *sql)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *out = NULL;
  const char *argv[] = { "sqlite3", "-readonly", path, sql, NULL };
  int status = 0;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL,
                     &status, &error))
    return NULL;
  return g_steal_pointer (&out);
}

static void
test_blob_database_is_converted (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("schema");
  g_autofree char *path = g_build_filename (dir, "canopy.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySqliteBackend) b = NULL;
  g_autoptr (GPtrArray) audit = g_ptr_array_new ();
  g_autoptr (GPtrArray) transfers = g_ptr_array_new ();
  g_autofree char *version = NULL;

  write_v1_database (path, FALSE);
  b = canopy_sqlite_backend_open (path, 1000, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (b);
  CU_ASSERT_EQUAL (canopy_sqlite_backend_get_schema_version (b), 3);
  for (CanopyRecordKind kind = 0; kind < N_BLOB_KINDS; kind++)
    {
      g_autoptr (GVariant) want = g_variant_ref_sink (upgraded_value (kind));
      g_autoptr (GBytes) got = canopy_sqlite_backend_get (b, kind, keys[kind], &error);

      CANOPY_ASSERT_NO_ERROR (error);
      g_clear_error (&error);
      CU_ASSERT_PTR_NOT_NULL (got);
      if (got != NULL)
        {
          /* byte for byte what the old release stored, new members zero */
          CU_ASSERT_EQUAL (g_bytes_get_size (got), g_variant_get_size (want));
          CU_ASSERT (memcmp (g_bytes_get_data (got, NULL), g_variant_get_data (want),
                             g_variant_get_size (want)) == 0);
        }
    }
  CU_ASSERT (canopy_sqlite_backend_list_log (b, CANOPY_LOG_AUDIT, 0, 0, collect_entry, audit,
                                             &error));
  CU_ASSERT (canopy_sqlite_backend_list_log (b, CANOPY_LOG_TRANSFER, 0, 0, collect_entry,
                                             transfers, &error));
  /* the admin moved on to the admins table (schema 3) */
  {
    g_autoptr (GBytes) admin = canopy_sqlite_backend_get (b, CANOPY_RECORD_ADMIN, "ann", &error);
    g_autoptr (GBytes) setting = canopy_sqlite_backend_get (b, CANOPY_RECORD_SETTING, "admin/ann",
                                                            NULL);
    g_autoptr (GVariant) want = g_variant_ref_sink (
      g_variant_new ("(sx)", "auditor", G_GINT64_CONSTANT (1764900000000000)));

    CANOPY_ASSERT_NO_ERROR (error);
    CU_ASSERT (admin != NULL && g_bytes_get_size (admin) == g_variant_get_size (want)
               && memcmp (g_bytes_get_data (admin, NULL), g_variant_get_data (want),
                          g_variant_get_size (want)) == 0);
    CU_ASSERT_PTR_NULL (setting);
  }
  CU_ASSERT_EQUAL_FATAL (audit->len, 2);
  CU_ASSERT_EQUAL_FATAL (transfers->len, 2);
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (audit, 0), "7");
  CU_ASSERT_STRING_EQUAL (g_ptr_array_index (transfers, 0), "9");
  g_free (g_ptr_array_index (audit, 0));
  g_bytes_unref (g_ptr_array_index (audit, 1));
  g_free (g_ptr_array_index (transfers, 0));
  g_bytes_unref (g_ptr_array_index (transfers, 1));
  g_clear_pointer (&b, canopy_sqlite_backend_close);

  version = run_sqlite3 (path, "SELECT group_concat(version) FROM schema_migrations;"
                               "SELECT count(*) FROM sqlite_master WHERE name = 'records';");
  if (version == NULL)
    {
      canopy_test_skip ("the sqlite3 program is not installed");
      return;
    }
  CU_ASSERT_STRING_EQUAL (version, "2,3\n0\n");
}

static void
test_damaged_blob_is_refused_untouched (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("schema");
  g_autofree char *path = g_build_filename (dir, "canopy.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySqliteBackend) b = NULL;
  g_autofree char *left = NULL;

  write_v1_database (path, TRUE);
  b = canopy_sqlite_backend_open (path, 1000, &error);
  CU_ASSERT_PTR_NULL (b);
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT));
  if (error != NULL)
    {
      CANOPY_ASSERT_CONTAINS (error->message, path);
      CANOPY_ASSERT_CONTAINS (error->message, "\"x\"");
    }
  left = run_sqlite3 (path, "PRAGMA user_version; SELECT count(*) FROM records;"
                            "SELECT count(*) FROM sqlite_master WHERE name = 'devices';");
  if (left != NULL)
    CU_ASSERT_STRING_EQUAL (left, "1\n9\n0\n");
}

/* What a report writer sees: named columns, readable times and IDs. */
static void
test_tables_read_with_plain_sql (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("schema");
  g_autofree char *path = g_build_filename (dir, "canopy.db", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySqliteBackend) b = canopy_sqlite_backend_open (path, 1000, &error);
  g_autoptr (GVariant) device = g_variant_ref_sink (record_value (CANOPY_RECORD_DEVICE));
  g_autoptr (GVariant) progress = g_variant_ref_sink (record_value (CANOPY_RECORD_PROGRESS));
  CanopyRecord d = { DEVICE, device }, p = { DEPLOYMENT "/" DEVICE, progress };
  g_autofree char *row = NULL;
  g_autofree char *bytes = NULL;
  g_autofree char *groups = NULL;

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (b);
  CU_ASSERT (canopy_sqlite_backend_put (b, CANOPY_RECORD_DEVICE, &d, 1, FALSE, &error));
  CU_ASSERT (canopy_sqlite_backend_put (b, CANOPY_RECORD_PROGRESS, &p, 1, FALSE, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  row = run_sqlite3 (path, "SELECT device_id, name, office, last_seen, bytes_served "
                           "FROM devices");
  if (row == NULL)
    {
      canopy_test_skip ("the sqlite3 program is not installed");
      return;
    }
  CU_ASSERT_STRING_EQUAL (row, DEVICE "|PC-17|North|2025-12-05T04:46:40.654321Z|8589934592\n");
  groups = run_sqlite3 (path, "SELECT group_concat(group_name, ',') FROM "
                              "(SELECT group_name FROM device_groups ORDER BY position)");
  CU_ASSERT_STRING_EQUAL (groups, "Finance,Sales\n");
  bytes = run_sqlite3 (path, "SELECT source || '=' || bytes FROM assignment_bytes "
                             "WHERE device_id = '" DEVICE "' ORDER BY bytes");
  CU_ASSERT_STRING_EQUAL (bytes, "parent-office=0\noffice-peer=10\nserver=30\n"
                                 "origin=1099511627776\n");

  /* a key that is not a UUID has nowhere to go */
  d.key = "PC-17";
  CU_ASSERT_FALSE (canopy_sqlite_backend_put (b, CANOPY_RECORD_DEVICE, &d, 1, FALSE, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_FAILED));
  if (error != NULL)
    CANOPY_ASSERT_CONTAINS (error->message, "devices.device_id");
}

CANOPY_TEST_SUITE (sqlite_schema, "sqlite-schema", NULL, NULL,
                   { "blob database of schema 1 converted", test_blob_database_is_converted },
                   { "damaged blob refused untouched", test_damaged_blob_is_refused_untouched },
                   { "tables read with plain SQL", test_tables_read_with_plain_sql })
