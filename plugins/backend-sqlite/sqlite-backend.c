/* The SQLite storage backend: one owner-only database file in WAL mode,
 * canopy's records as typed tables (see docs/schema.md), prepared
 * statements, every batch in one transaction, forward-only numbered
 * migrations run at open in one transaction. */
#include "build-config.h"

#include "sqlite-backend.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <inttypes.h>

#define DEFAULT_BUSY_TIMEOUT_MS 5000

/* Text holding a lower-case canonical UUID. */
#define UUID_CHECK(c) "CHECK (length(" c ") = 36 AND " c " NOT GLOB '*[^0-9a-f-]*')"

/* Version 1: the release before typed tables kept every record as an
 * opaque GVariant blob; kept so that such a database is converted. */
static const char migration_1[] =
  "CREATE TABLE records (kind INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
  "                      PRIMARY KEY (kind, key)) WITHOUT ROWID;"
  "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
  "                   value BLOB NOT NULL);"
  "CREATE INDEX logs_by_kind ON logs (kind, id);";

/* Version 2: typed tables. Times are ISO-8601 text in UTC with µs
 * ("2026-12-05T06:12:30.123456Z"), NULL for never; booleans 0 or 1. */
static const char migration_2[] =
  "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
  "  applied_at TEXT NOT NULL);"
  "CREATE TABLE devices (device_id TEXT PRIMARY KEY " UUID_CHECK ("device_id") ","
  "  name TEXT NOT NULL, agent_version TEXT NOT NULL, office TEXT NOT NULL,"
  "  first_seen TEXT, last_seen TEXT, online_usec INTEGER NOT NULL,"
  "  bytes_served INTEGER NOT NULL, peers_served INTEGER NOT NULL,"
  "  chunks_rejected INTEGER NOT NULL) WITHOUT ROWID;"
  "CREATE INDEX devices_by_office ON devices (office);"
  "CREATE INDEX devices_by_last_seen ON devices (last_seen);"
  "CREATE TABLE device_groups (device_id TEXT NOT NULL"
  "    REFERENCES devices (device_id) ON DELETE CASCADE,"
  "  position INTEGER NOT NULL, group_name TEXT NOT NULL,"
  "  PRIMARY KEY (device_id, position)) WITHOUT ROWID;"
  "CREATE INDEX device_groups_by_group ON device_groups (group_name);"
  "CREATE TABLE device_addresses (device_id TEXT NOT NULL"
  "    REFERENCES devices (device_id) ON DELETE CASCADE,"
  "  position INTEGER NOT NULL, address TEXT NOT NULL,"
  "  prefix_length INTEGER NOT NULL CHECK (prefix_length BETWEEN 0 AND 128),"
  "  PRIMARY KEY (device_id, position)) WITHOUT ROWID;"
  "CREATE INDEX device_addresses_by_address ON device_addresses (address);"
  "CREATE TABLE offices (office_name TEXT PRIMARY KEY, parent TEXT NOT NULL,"
  "  office_type INTEGER NOT NULL, wan_rate_bps INTEGER NOT NULL,"
  "  metered INTEGER NOT NULL CHECK (metered IN (0, 1)),"
  "  automatic INTEGER NOT NULL CHECK (automatic IN (0, 1))) WITHOUT ROWID;"
  "CREATE TABLE office_subnets (office_name TEXT NOT NULL"
  "    REFERENCES offices (office_name) ON DELETE CASCADE,"
  "  position INTEGER NOT NULL, subnet TEXT NOT NULL,"
  "  PRIMARY KEY (office_name, position)) WITHOUT ROWID;"
  "CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
  "CREATE TABLE contents (content_id TEXT PRIMARY KEY " UUID_CHECK ("content_id") ","
  "  name TEXT NOT NULL, version TEXT NOT NULL, origin TEXT NOT NULL,"
  "  manifest BLOB NOT NULL, registered_at TEXT, expires_at TEXT) WITHOUT ROWID;"
  "CREATE TABLE deployments (deployment_id TEXT PRIMARY KEY " UUID_CHECK ("deployment_id") ","
  "  content_id TEXT NOT NULL " UUID_CHECK ("content_id") ","
  "  destination TEXT NOT NULL, state INTEGER NOT NULL, created_at TEXT,"
  "  start_at TEXT, deadline TEXT,"
  "  window_start_min INTEGER NOT NULL CHECK (window_start_min BETWEEN 0 AND 1440),"
  "  window_end_min INTEGER NOT NULL CHECK (window_end_min BETWEEN 0 AND 1440),"
  "  background INTEGER NOT NULL CHECK (background IN (0, 1))) WITHOUT ROWID;"
  "CREATE INDEX deployments_by_content ON deployments (content_id);"
  "CREATE TABLE deployment_groups (deployment_id TEXT NOT NULL"
  "    REFERENCES deployments (deployment_id) ON DELETE CASCADE,"
  "  position INTEGER NOT NULL, group_name TEXT NOT NULL,"
  "  PRIMARY KEY (deployment_id, position)) WITHOUT ROWID;"
  "CREATE TABLE assignments (deployment_id TEXT NOT NULL " UUID_CHECK ("deployment_id") ","
  "  device_id TEXT NOT NULL " UUID_CHECK ("device_id") ","
  "  chunks_verified INTEGER NOT NULL, done INTEGER NOT NULL CHECK (done IN (0, 1)),"
  "  PRIMARY KEY (deployment_id, device_id)) WITHOUT ROWID;"
  "CREATE INDEX assignments_by_device ON assignments (device_id);"
  "CREATE TABLE assignment_bytes (deployment_id TEXT NOT NULL, device_id TEXT NOT NULL,"
  "  source TEXT NOT NULL, bytes INTEGER NOT NULL,"
  "  PRIMARY KEY (deployment_id, device_id, source),"
  "  FOREIGN KEY (deployment_id, device_id)"
  "    REFERENCES assignments (deployment_id, device_id) ON DELETE CASCADE) WITHOUT ROWID;"
  "CREATE TABLE licences (device_id TEXT PRIMARY KEY " UUID_CHECK ("device_id") ","
  "  activated_at TEXT, last_seen TEXT, released_at TEXT) WITHOUT ROWID;"
  "CREATE TABLE transfers (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT,"
  "  content_id TEXT NOT NULL, from_device TEXT NOT NULL, to_device TEXT NOT NULL,"
  "  source INTEGER NOT NULL, chunks INTEGER NOT NULL, bytes INTEGER NOT NULL,"
  "  verified INTEGER NOT NULL CHECK (verified IN (0, 1)));"
  "CREATE INDEX transfers_by_content ON transfers (content_id, id);"
  "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT,"
  "  actor TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);"
  "CREATE INDEX audit_by_at ON audit (at);";

/* Version 3: console admins and their tokens in tables of their own
 * (they were setting records "admin/NAME" and "admin-token/ID"). */
static const char migration_3[] =
  "CREATE TABLE admins (admin_name TEXT PRIMARY KEY,"
  "  role TEXT NOT NULL CHECK (role IN ('administrator', 'operator', 'auditor')),"
  "  created_at TEXT) WITHOUT ROWID;"
  "CREATE TABLE admin_tokens (token_id TEXT PRIMARY KEY,"
  "  admin_name TEXT NOT NULL REFERENCES admins (admin_name) ON DELETE CASCADE,"
  "  secret_sha256 BLOB NOT NULL CHECK (length(secret_sha256) = 32),"
  "  created_at TEXT, expires_at TEXT) WITHOUT ROWID;"
  "CREATE INDEX admin_tokens_by_admin ON admin_tokens (admin_name);";

static gboolean convert_blobs (CanopySqliteBackend *b, GError **error);
static gboolean move_admins (CanopySqliteBackend *b, GError **error);

/* Each step takes the schema from the version before it to its own: its
 * SQL, then (for a conversion SQL cannot express) its function. Adding a
 * column is one more step with an ALTER TABLE. */
static const struct {
  const char *sql;
  gboolean (*convert) (CanopySqliteBackend *b, GError **error);
} migrations[] = {
  { migration_1, NULL },
  { migration_2, convert_blobs },
  { migration_3, move_admins },
};
#define SCHEMA_VERSION ((int) G_N_ELEMENTS (migrations))

/* The prepared statements of one table. */
typedef struct {
  sqlite3_stmt *upsert;
  sqlite3_stmt *get;
  sqlite3_stmt *list;
  sqlite3_stmt *remove;
  sqlite3_stmt *clear;
  sqlite3_stmt *child_remove[CANOPY_TABLE_MAX_CHILDREN];
  sqlite3_stmt *child_insert[CANOPY_TABLE_MAX_CHILDREN];
  sqlite3_stmt *child_get[CANOPY_TABLE_MAX_CHILDREN];
} TableStatements;

struct _CanopySqliteBackend {
  sqlite3 *db;
  char *path;
  guint n_prepared; /* record kinds whose statements are prepared */
  gboolean logs_prepared;
  TableStatements records[CANOPY_N_RECORD_KINDS];
  sqlite3_stmt *append[CANOPY_N_LOG_KINDS];
  sqlite3_stmt *list_log[CANOPY_N_LOG_KINDS];
};

/* One sentence per failure, naming the database and saying what to do. */
static gboolean
set_sqlite_error (CanopySqliteBackend *b, int rc, const char *doing, GError **error)
{
  const char *detail = b->db != NULL ? sqlite3_errmsg (b->db) : sqlite3_errstr (rc);

  switch (rc & 0xff)
    {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_LOCKED,
                   _("The database %s is locked by another process (%s: %s); stop the other "
                     "process that uses it"), b->path, doing, detail);
      break;
    case SQLITE_FULL:
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_FULL,
                   _("The disk holding the database %s is full (%s); nothing of this change "
                     "was written. Free some space"), b->path, doing);
      break;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT,
                   _("The database %s is damaged or is not a canopy database (%s); restore it "
                     "from a backup or move it away to start afresh"), b->path, detail);
      break;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_AUTH:
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNAVAILABLE,
                   _("Cannot use the database %s (%s: %s); check the file, its directory and "
                     "their permissions"), b->path, doing, detail);
      break;
    default:
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_FAILED,
                   _("The database %s failed (%s: %s)"), b->path, doing, detail);
      break;
    }
  return FALSE;
}

static gboolean
exec (CanopySqliteBackend *b, const char *sql, const char *doing, GError **error)
{
  int rc = sqlite3_exec (b->db, sql, NULL, NULL, NULL);

  return rc == SQLITE_OK || set_sqlite_error (b, rc, doing, error);
}

/* The file is created owner-only before SQLite opens it; SQLite gives its
 * -wal and -shm files the same permissions. */
static gboolean
prepare_file (const char *path, GError **error)
{
  GStatBuf st;
  int fd;

  if (g_stat (path, &st) == 0)
    {
      if ((st.st_mode & 077) != 0 && g_chmod (path, st.st_mode & 0700) == 0)
        g_message (_("The database %s was readable by other users; it is now owner-only"),
                   path);
      return TRUE;
    }
  fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST)
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNAVAILABLE,
                   _("Cannot create the database %s: %s; check that its directory exists and "
                     "canopyd may write there"), path, g_strerror (saved_errno));
      return FALSE;
    }
  if (fd >= 0)
    close (fd);
  return TRUE;
}

static gboolean
check_integrity (CanopySqliteBackend *b, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (b->db, "PRAGMA quick_check(1)", -1, &stmt, NULL);
  gboolean ok = FALSE;

  if (rc == SQLITE_OK && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    ok = g_strcmp0 ((const char *) sqlite3_column_text (stmt, 0), "ok") == 0;
  sqlite3_finalize (stmt);
  if (rc != SQLITE_ROW)
    return set_sqlite_error (b, rc, _("checking the database"), error);
  if (!ok)
    return set_sqlite_error (b, SQLITE_CORRUPT, _("checking the database"), error);
  return TRUE;
}

gboolean
canopy_sqlite_backend_begin (CanopySqliteBackend *b, GError **error)
{
  return exec (b, "BEGIN IMMEDIATE", _("starting a transaction"), error);
}

gboolean
canopy_sqlite_backend_commit (CanopySqliteBackend *b, GError **error)
{
  if (exec (b, "COMMIT", _("committing"), error))
    return TRUE;
  /* A failed COMMIT (a full disk) may leave the transaction open. */
  if (!sqlite3_get_autocommit (b->db))
    sqlite3_exec (b->db, "ROLLBACK", NULL, NULL, NULL);
  return FALSE;
}

void
canopy_sqlite_backend_rollback (CanopySqliteBackend *b)
{
  if (!sqlite3_get_autocommit (b->db))
    sqlite3_exec (b->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs @write inside the caller's transaction, or in one of its own. */
typedef gboolean (*WriteFunc) (CanopySqliteBackend *b, gpointer data, GError **error);

static gboolean
in_transaction (CanopySqliteBackend *b, WriteFunc write, gpointer data, GError **error)
{
  gboolean own = sqlite3_get_autocommit (b->db) != 0;

  if (own && !canopy_sqlite_backend_begin (b, error))
    return FALSE;
  if (!write (b, data, error))
    {
      if (own)
        canopy_sqlite_backend_rollback (b);
      return FALSE;
    }
  return !own || canopy_sqlite_backend_commit (b, error);
}

/* --- SQL from the shared table descriptions ---------------------------- */

static void
append_names (GString *sql, const CanopyColumn *columns, guint n, const char *separator)
{
  for (guint i = 0; i < n; i++)
    g_string_append_printf (sql, "%s%s", i > 0 ? separator : "", columns[i].name);
}

static void
append_key_match (GString *sql, const CanopyTable *table)
{
  g_string_append (sql, " WHERE ");
  for (guint i = 0; i < table->n_keys; i++)
    g_string_append_printf (sql, "%s%s = ?%u", i > 0 ? " AND " : "", table->keys[i].name,
                            i + 1);
}

static void
append_placeholders (GString *sql, guint n)
{
  for (guint i = 0; i < n; i++)
    g_string_append_printf (sql, "%s?%u", i > 0 ? ", " : "", i + 1);
}

static char *
sql_upsert (const CanopyTable *t)
{
  GString *sql = g_string_new (NULL);

  g_string_append_printf (sql, "INSERT INTO %s (", t->name);
  append_names (sql, t->keys, t->n_keys, ", ");
  g_string_append (sql, ", ");
  append_names (sql, t->columns, t->n_columns, ", ");
  g_string_append (sql, ") VALUES (");
  append_placeholders (sql, t->n_keys + t->n_columns);
  g_string_append (sql, ") ON CONFLICT (");
  append_names (sql, t->keys, t->n_keys, ", ");
  g_string_append (sql, ") DO UPDATE SET ");
  for (guint i = 0; i < t->n_columns; i++)
    g_string_append_printf (sql, "%s%s = excluded.%s", i > 0 ? ", " : "", t->columns[i].name,
                            t->columns[i].name);
  return g_string_free (sql, FALSE);
}

static char *
sql_select (const CanopyTable *t, const CanopyColumn *columns, guint n, const char *from,
            gboolean by_key, const char *order)
{
  GString *sql = g_string_new ("SELECT ");

  if (!by_key)
    {
      append_names (sql, t->keys, t->n_keys, ", ");
      g_string_append (sql, ", ");
    }
  append_names (sql, columns, n, ", ");
  g_string_append_printf (sql, " FROM %s", from);
  if (by_key)
    append_key_match (sql, t);
  if (order != NULL)
    g_string_append_printf (sql, " ORDER BY %s", order);
  return g_string_free (sql, FALSE);
}

static char *
sql_delete (const CanopyTable *t, const char *from, gboolean by_key)
{
  GString *sql = g_string_new (NULL);

  g_string_append_printf (sql, "DELETE FROM %s", from);
  if (by_key)
    append_key_match (sql, t);
  return g_string_free (sql, FALSE);
}

static char *
sql_child_insert (const CanopyTable *t, const CanopyChildTable *c)
{
  GString *sql = g_string_new (NULL);

  g_string_append_printf (sql, "INSERT INTO %s (", c->name);
  append_names (sql, t->keys, t->n_keys, ", ");
  g_string_append (sql, ", ");
  append_names (sql, c->columns, c->n_columns, ", ");
  g_string_append (sql, ") VALUES (");
  append_placeholders (sql, t->n_keys + c->n_columns);
  g_string_append (sql, ")");
  return g_string_free (sql, FALSE);
}

static char *
sql_log_append (const CanopyTable *t)
{
  GString *sql = g_string_new (NULL);

  g_string_append_printf (sql, "INSERT INTO %s (id, ", t->name);
  append_names (sql, t->columns, t->n_columns, ", ");
  g_string_append (sql, ") VALUES (");
  append_placeholders (sql, t->n_columns + 1);
  g_string_append (sql, ")");
  return g_string_free (sql, FALSE);
}

static char *
sql_log_list (const CanopyTable *t)
{
  GString *sql = g_string_new ("SELECT id, ");

  append_names (sql, t->columns, t->n_columns, ", ");
  g_string_append_printf (sql, " FROM %s WHERE id > ?1 ORDER BY id LIMIT ?2", t->name);
  return g_string_free (sql, FALSE);
}

static gboolean
prepare (CanopySqliteBackend *b, char *sql, sqlite3_stmt **stmt, GError **error)
{
  g_autofree char *owned = sql;
  int rc = sqlite3_prepare_v3 (b->db, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, NULL);

  return rc == SQLITE_OK || set_sqlite_error (b, rc, _("preparing statements"), error);
}

/* Prepares the statements of the record kinds before @n_kinds (those
 * whose tables a migration has created so far) and of the logs. */
static gboolean
prepare_statements (CanopySqliteBackend *b, guint n_kinds, GError **error)
{
  for (CanopyRecordKind kind = b->n_prepared; kind < n_kinds; kind++)
    {
      const CanopyTable *t = canopy_record_table (kind);
      TableStatements *s = &b->records[kind];
      g_autoptr (GString) order = g_string_new (NULL);

      append_names (order, t->keys, t->n_keys, ", ");
      if (!prepare (b, sql_upsert (t), &s->upsert, error)
          || !prepare (b, sql_select (t, t->columns, t->n_columns, t->name, TRUE, NULL), &s->get,
                       error)
          || !prepare (b, sql_select (t, t->columns, t->n_columns, t->name, FALSE, order->str),
                       &s->list, error)
          || !prepare (b, sql_delete (t, t->name, TRUE), &s->remove, error)
          || !prepare (b, sql_delete (t, t->name, FALSE), &s->clear, error))
        return FALSE;
      for (guint c = 0; c < t->n_children; c++)
        {
          const CanopyChildTable *child = &t->children[c];
          if (!prepare (b, sql_delete (t, child->name, TRUE), &s->child_remove[c], error)
              || !prepare (b, sql_child_insert (t, child), &s->child_insert[c], error)
              || !prepare (b, sql_select (t, child->columns, child->n_columns, child->name, TRUE,
                                          NULL),
                           &s->child_get[c], error))
            return FALSE;
        }
      b->n_prepared = kind + 1;
    }
  for (CanopyLogKind kind = 0; !b->logs_prepared && kind < CANOPY_N_LOG_KINDS; kind++)
    if (!prepare (b, sql_log_append (canopy_log_table (kind)), &b->append[kind], error)
        || !prepare (b, sql_log_list (canopy_log_table (kind)), &b->list_log[kind], error))
      return FALSE;
  b->logs_prepared = TRUE;
  return TRUE;
}

static void
finalize_statements (CanopySqliteBackend *b)
{
  for (CanopyRecordKind kind = 0; kind < CANOPY_N_RECORD_KINDS; kind++)
    {
      TableStatements *s = &b->records[kind];
      sqlite3_finalize (s->upsert);
      sqlite3_finalize (s->get);
      sqlite3_finalize (s->list);
      sqlite3_finalize (s->remove);
      sqlite3_finalize (s->clear);
      for (guint c = 0; c < CANOPY_TABLE_MAX_CHILDREN; c++)
        {
          sqlite3_finalize (s->child_remove[c]);
          sqlite3_finalize (s->child_insert[c]);
          sqlite3_finalize (s->child_get[c]);
        }
    }
  for (CanopyLogKind kind = 0; kind < CANOPY_N_LOG_KINDS; kind++)
    {
      sqlite3_finalize (b->append[kind]);
      sqlite3_finalize (b->list_log[kind]);
    }
  memset (b->records, 0, sizeof b->records);
  memset (b->append, 0, sizeof b->append);
  memset (b->list_log, 0, sizeof b->list_log);
  b->n_prepared = 0;
  b->logs_prepared = FALSE;
}

/* --- values to columns and back ---------------------------------------- */

/* Binds @value, of @column's type, as parameter @index (from 1). The
 * statement is reset before the value goes away, so text is transient. */
static void
bind_value (sqlite3_stmt *stmt, int index, const CanopyColumn *column, GVariant *value)
{
  switch (column->type)
    {
    case CANOPY_COLUMN_TEXT:
    case CANOPY_COLUMN_UUID:
      sqlite3_bind_text (stmt, index, g_variant_get_string (value, NULL), -1, SQLITE_TRANSIENT);
      break;
    case CANOPY_COLUMN_INT32:
      sqlite3_bind_int64 (stmt, index,
                          g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE)
                            ? g_variant_get_byte (value)
                            : g_variant_get_uint32 (value));
      break;
    case CANOPY_COLUMN_INT64:
      sqlite3_bind_int64 (stmt, index,
                          g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64)
                            ? (sqlite3_int64) g_variant_get_uint64 (value)
                            : g_variant_get_int64 (value));
      break;
    case CANOPY_COLUMN_TIME:
      {
        gint64 usec = g_variant_get_int64 (value);
        if (usec == 0)
          sqlite3_bind_null (stmt, index);
        else
          sqlite3_bind_text (stmt, index, canopy_time_to_iso8601 (usec), -1, g_free);
      }
      break;
    case CANOPY_COLUMN_BOOL:
      sqlite3_bind_int (stmt, index, g_variant_get_boolean (value) ? 1 : 0);
      break;
    case CANOPY_COLUMN_BYTES:
      sqlite3_bind_blob64 (stmt, index, g_variant_get_data (value), g_variant_get_size (value),
                           SQLITE_TRANSIENT);
      break;
    }
}

static void
bind_tuple (sqlite3_stmt *stmt, int first, const CanopyColumn *columns, guint n, GVariant *tuple)
{
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GVariant) value = g_variant_get_child_value (tuple, i);
      bind_value (stmt, first + (int) i, &columns[i], value);
    }
}

/* Column @index of the current row, as a value of @column's type. */
static GVariant *
read_value (sqlite3_stmt *stmt, int index, const CanopyColumn *column)
{
  switch (column->type)
    {
    case CANOPY_COLUMN_TEXT:
    case CANOPY_COLUMN_UUID:
      {
        const char *text = (const char *) sqlite3_column_text (stmt, index);
        return g_variant_new_string (text != NULL ? text : "");
      }
    case CANOPY_COLUMN_INT32:
      if (g_str_equal (column->variant_type, "y"))
        return g_variant_new_byte ((guint8) sqlite3_column_int (stmt, index));
      return g_variant_new_uint32 ((guint32) sqlite3_column_int64 (stmt, index));
    case CANOPY_COLUMN_INT64:
      if (g_str_equal (column->variant_type, "t"))
        return g_variant_new_uint64 ((guint64) sqlite3_column_int64 (stmt, index));
      return g_variant_new_int64 (sqlite3_column_int64 (stmt, index));
    case CANOPY_COLUMN_TIME:
      return g_variant_new_int64 (
        canopy_time_from_iso8601 ((const char *) sqlite3_column_text (stmt, index)));
    case CANOPY_COLUMN_BOOL:
      return g_variant_new_boolean (sqlite3_column_int (stmt, index) != 0);
    case CANOPY_COLUMN_BYTES:
      /* Copied: the column's bytes last only until the next step. */
      return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, sqlite3_column_blob (stmt, index),
                                        (gsize) sqlite3_column_bytes (stmt, index), 1);
    }
  g_assert_not_reached ();
}

static GVariant *
read_tuple (sqlite3_stmt *stmt, int first, const CanopyColumn *columns, guint n)
{
  g_autofree GVariant **values = g_new0 (GVariant *, n);

  for (guint i = 0; i < n; i++)
    values[i] = read_value (stmt, first + (int) i, &columns[i]);
  return g_variant_ref_sink (g_variant_new_tuple (values, n));
}

static gboolean
step_done (CanopySqliteBackend *b, sqlite3_stmt *stmt, const char *doing, GError **error)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_DONE || set_sqlite_error (b, rc, doing, error);
}

/* --- records ------------------------------------------------------------- */

/* Writes one record's rows: its main row, then its child rows afresh. */
static gboolean
write_rows (CanopySqliteBackend *b, CanopyRecordKind kind, const CanopyRows *rows,
            GError **error)
{
  const CanopyTable *t = canopy_record_table (kind);
  TableStatements *s = &b->records[kind];

  bind_tuple (s->upsert, 1, t->keys, t->n_keys, rows->keys);
  bind_tuple (s->upsert, (int) t->n_keys + 1, t->columns, t->n_columns, rows->columns);
  if (!step_done (b, s->upsert, _("writing records"), error))
    return FALSE;
  for (guint c = 0; c < t->n_children; c++)
    {
      const CanopyChildTable *child = &t->children[c];

      bind_tuple (s->child_remove[c], 1, t->keys, t->n_keys, rows->keys);
      if (!step_done (b, s->child_remove[c], _("writing records"), error))
        return FALSE;
      for (guint r = 0; r < rows->children[c]->len; r++)
        {
          bind_tuple (s->child_insert[c], 1, t->keys, t->n_keys, rows->keys);
          bind_tuple (s->child_insert[c], (int) t->n_keys + 1, child->columns, child->n_columns,
                      g_ptr_array_index (rows->children[c], r));
          if (!step_done (b, s->child_insert[c], _("writing records"), error))
            return FALSE;
        }
    }
  return TRUE;
}

static gboolean
write_record (CanopySqliteBackend *b, CanopyRecordKind kind, const char *key, GVariant *value,
              GError **error)
{
  CanopyRows rows = { 0 };
  gboolean ok = canopy_table_split (canopy_record_table (kind), key, value, &rows, error)
                && write_rows (b, kind, &rows, error);

  canopy_rows_clear (&rows);
  return ok;
}

/* Reads the value of the record whose key columns @keys holds; the main
 * row's columns are those of @stmt's current row from @first. */
static GVariant *
read_record (CanopySqliteBackend *b, CanopyRecordKind kind, GVariant *keys, sqlite3_stmt *stmt,
             int first, GError **error)
{
  const CanopyTable *t = canopy_record_table (kind);
  TableStatements *s = &b->records[kind];
  CanopyRows rows = { 0 };
  GVariant *value = NULL;
  int rc = SQLITE_DONE;

  rows.columns = read_tuple (stmt, first, t->columns, t->n_columns);
  for (guint c = 0; c < t->n_children; c++)
    {
      const CanopyChildTable *child = &t->children[c];

      rows.children[c] = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
      bind_tuple (s->child_get[c], 1, t->keys, t->n_keys, keys);
      while ((rc = sqlite3_step (s->child_get[c])) == SQLITE_ROW)
        g_ptr_array_add (rows.children[c],
                         read_tuple (s->child_get[c], 0, child->columns, child->n_columns));
      sqlite3_reset (s->child_get[c]);
      sqlite3_clear_bindings (s->child_get[c]);
      if (rc != SQLITE_DONE)
        {
          set_sqlite_error (b, rc, _("reading a record"), error);
          canopy_rows_clear (&rows);
          return NULL;
        }
    }
  value = canopy_table_join (t, &rows, error);
  canopy_rows_clear (&rows);
  return value != NULL ? g_variant_ref_sink (value) : NULL;
}

typedef struct {
  CanopyRecordKind kind;
  const CanopyRecord *records;
  gsize n;
  gboolean clear_first;
} PutBatch;

static gboolean
write_records (CanopySqliteBackend *b, gpointer data, GError **error)
{
  PutBatch *batch = data;

  /* Deleting the main rows deletes their child rows (ON DELETE CASCADE). */
  if (batch->clear_first
      && !step_done (b, b->records[batch->kind].clear, _("replacing records"), error))
    return FALSE;
  for (gsize i = 0; i < batch->n; i++)
    if (!write_record (b, batch->kind, batch->records[i].key, batch->records[i].value, error))
      return FALSE;
  return TRUE;
}

gboolean
canopy_sqlite_backend_put (CanopySqliteBackend *b, CanopyRecordKind kind,
                           const CanopyRecord *records, gsize n, gboolean replace_all,
                           GError **error)
{
  PutBatch batch = { kind, records, n, replace_all };

  return in_transaction (b, write_records, &batch, error);
}

static GBytes *
variant_bytes (GVariant *value)
{
  return g_bytes_new (g_variant_get_data (value), g_variant_get_size (value));
}

GBytes *
canopy_sqlite_backend_get (CanopySqliteBackend *b, CanopyRecordKind kind, const char *key,
                           GError **error)
{
  const CanopyTable *t = canopy_record_table (kind);
  sqlite3_stmt *stmt = b->records[kind].get;
  g_autoptr (GVariant) keys = NULL;
  g_autoptr (GVariant) value = NULL;
  gboolean own = sqlite3_get_autocommit (b->db) != 0;
  int rc;

  keys = canopy_table_split_key (t, key, NULL);
  if (keys == NULL)
    {
      /* a key that cannot be stored was never stored */
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND,
                   _("No %s record \"%s\" in %s"), canopy_record_kind_to_string (kind), key,
                   b->path);
      return NULL;
    }
  /* the main row and its child rows from one snapshot */
  if (own && !exec (b, "BEGIN", _("reading a record"), error))
    return NULL;
  bind_tuple (stmt, 1, t->keys, t->n_keys, keys);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    value = read_record (b, kind, keys, stmt, 0, error);
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (own)
    sqlite3_exec (b->db, "COMMIT", NULL, NULL, NULL);
  if (rc == SQLITE_DONE)
    g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND,
                 _("No %s record \"%s\" in %s"), canopy_record_kind_to_string (kind), key,
                 b->path);
  else if (rc != SQLITE_ROW)
    set_sqlite_error (b, rc, _("reading a record"), error);
  return value != NULL ? variant_bytes (value) : NULL;
}

gboolean
canopy_sqlite_backend_list (CanopySqliteBackend *b, CanopyRecordKind kind, CanopyRecordFunc func,
                            gpointer user_data, GError **error)
{
  const CanopyTable *t = canopy_record_table (kind);
  sqlite3_stmt *stmt = b->records[kind].list;
  gboolean own = sqlite3_get_autocommit (b->db) != 0;
  gboolean ok = TRUE;
  int rc;

  if (own && !exec (b, "BEGIN", _("listing records"), error))
    return FALSE;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      g_autoptr (GVariant) keys = read_tuple (stmt, 0, t->keys, t->n_keys);
      g_autoptr (GVariant) value = read_record (b, kind, keys, stmt, (int) t->n_keys, error);
      g_autofree char *key = canopy_table_join_key (t, keys);

      if (value == NULL)
        {
          ok = FALSE;
          break;
        }
      if (!func (key, g_variant_get_data (value), g_variant_get_size (value), user_data))
        break;
    }
  sqlite3_reset (stmt);
  if (own)
    sqlite3_exec (b->db, "COMMIT", NULL, NULL, NULL);
  if (!ok)
    return FALSE;
  return rc == SQLITE_DONE || rc == SQLITE_ROW
         || set_sqlite_error (b, rc, _("listing records"), error);
}

typedef struct {
  CanopyRecordKind kind;
  const char *const *keys;
} RemoveBatch;

static gboolean
delete_records (CanopySqliteBackend *b, gpointer data, GError **error)
{
  RemoveBatch *batch = data;
  const CanopyTable *t = canopy_record_table (batch->kind);
  sqlite3_stmt *stmt = b->records[batch->kind].remove;

  for (const char *const *key = batch->keys; *key != NULL; key++)
    {
      g_autoptr (GVariant) keys = canopy_table_split_key (t, *key, NULL);

      if (keys == NULL)
        continue; /* never stored */
      bind_tuple (stmt, 1, t->keys, t->n_keys, keys);
      if (!step_done (b, stmt, _("removing records"), error))
        return FALSE;
    }
  return TRUE;
}

gboolean
canopy_sqlite_backend_remove (CanopySqliteBackend *b, CanopyRecordKind kind,
                              const char *const *keys, GError **error)
{
  RemoveBatch batch = { kind, keys };

  return in_transaction (b, delete_records, &batch, error);
}

/* --- logs ---------------------------------------------------------------- */

static gboolean
write_entry (CanopySqliteBackend *b, CanopyLogKind kind, gint64 id, GVariant *entry,
             GError **error)
{
  const CanopyTable *t = canopy_log_table (kind);
  sqlite3_stmt *stmt = b->append[kind];
  CanopyRows rows = { 0 };

  if (!canopy_table_split (t, NULL, entry, &rows, error))
    return FALSE;
  if (id > 0)
    sqlite3_bind_int64 (stmt, 1, id);
  else
    sqlite3_bind_null (stmt, 1);
  bind_tuple (stmt, 2, t->columns, t->n_columns, rows.columns);
  canopy_rows_clear (&rows);
  return step_done (b, stmt, _("appending to a log"), error);
}

typedef struct {
  CanopyLogKind kind;
  GVariant *const *entries;
  gsize n;
} AppendBatch;

static gboolean
write_entries (CanopySqliteBackend *b, gpointer data, GError **error)
{
  AppendBatch *batch = data;

  for (gsize i = 0; i < batch->n; i++)
    if (!write_entry (b, batch->kind, 0, batch->entries[i], error))
      return FALSE;
  return TRUE;
}

gboolean
canopy_sqlite_backend_append (CanopySqliteBackend *b, CanopyLogKind kind,
                              GVariant *const *entries, gsize n, GError **error)
{
  AppendBatch batch = { kind, entries, n };

  return in_transaction (b, write_entries, &batch, error);
}

gboolean
canopy_sqlite_backend_list_log (CanopySqliteBackend *b, CanopyLogKind kind, gint64 after,
                                guint limit, CanopyLogFunc func, gpointer user_data,
                                GError **error)
{
  const CanopyTable *t = canopy_log_table (kind);
  sqlite3_stmt *stmt = b->list_log[kind];
  gboolean ok = TRUE;
  int rc;

  sqlite3_bind_int64 (stmt, 1, after);
  sqlite3_bind_int64 (stmt, 2, limit > 0 ? (sqlite3_int64) limit : -1);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      CanopyRows rows = { 0 };
      g_autoptr (GVariant) entry = NULL;

      rows.columns = read_tuple (stmt, 1, t->columns, t->n_columns);
      entry = canopy_table_join (t, &rows, error);
      canopy_rows_clear (&rows);
      if (entry == NULL)
        {
          ok = FALSE;
          break;
        }
      g_variant_ref_sink (entry);
      if (!func (sqlite3_column_int64 (stmt, 0), g_variant_get_data (entry),
                 g_variant_get_size (entry), user_data))
        break;
    }
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (!ok)
    return FALSE;
  return rc == SQLITE_DONE || rc == SQLITE_ROW
         || set_sqlite_error (b, rc, _("listing a log"), error);
}

/* --- opening and migrations --------------------------------------------- */

/* The value types of schema version 1, frozen here: when a record type
 * grows a member later, its version 1 blobs are still read with the type
 * they were written with, and the conversion must add the new member. */
#define N_BLOB_KINDS 7
static const char *const blob_types[N_BLOB_KINDS] = {
  "(sasa(sy)ssxxxtuu)", "(suastbb)", "(s)", "(sssayx)", "(sassux)", "(uatb)", "(xxx)",
};
static const char *const blob_log_types[CANOPY_N_LOG_KINDS] = {
  "(xsssuutb)",
  "(xsss)",
};

/* A blob of schema version 1 as a value of @type, or NULL when it is not
 * one (in normal form, as the core wrote it). */
static GVariant *
blob_value (const char *type, sqlite3_stmt *stmt, int index)
{
  gsize length = (gsize) sqlite3_column_bytes (stmt, index);
  g_autoptr (GBytes) bytes = g_bytes_new (sqlite3_column_blob (stmt, index), length);
  g_autoptr (GVariant) value = g_variant_ref_sink (
    g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, FALSE));

  return g_variant_is_normal_form (value) ? g_steal_pointer (&value) : NULL;
}

static const char *const record_types[N_BLOB_KINDS] = {
  CANOPY_RECORD_DEVICE_TYPE,  CANOPY_RECORD_OFFICE_TYPE,     CANOPY_RECORD_SETTING_TYPE,
  CANOPY_RECORD_CONTENT_TYPE, CANOPY_RECORD_DEPLOYMENT_TYPE, CANOPY_RECORD_PROGRESS_TYPE,
  CANOPY_RECORD_ACTIVATION_TYPE,
};

/* Migration 2's conversion: each blob of the version 1 tables becomes
 * typed rows, with its key and its log ID; the old tables go. A record
 * that cannot be converted fails the whole upgrade, which leaves the
 * database as it was. */
static gboolean
convert_blobs (CanopySqliteBackend *b, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc;
  guint records = 0, entries = 0;

  if (!prepare_statements (b, N_BLOB_KINDS, error))
    return FALSE;
  if (!prepare (b, g_strdup ("SELECT kind, key, value FROM records ORDER BY kind, key"), &stmt,
                error))
    return FALSE;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      int kind = sqlite3_column_int (stmt, 0);
      g_autofree char *key = g_strdup ((const char *) sqlite3_column_text (stmt, 1));
      g_autoptr (GVariant) value = NULL;
      g_autoptr (GError) local = NULL;

      if (kind < 0 || kind >= N_BLOB_KINDS
          || (value = blob_value (blob_types[kind], stmt, 2)) == NULL)
        {
          g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT,
                       _("The database %s holds a damaged record \"%s\" that cannot be "
                         "upgraded; restore it from a backup"), b->path, key);
          sqlite3_finalize (stmt);
          return FALSE;
        }
      /* Types grew since version 1: the new members are zero. */
      g_autoptr (GVariant) upgraded =
        canopy_record_upgrade (value, G_VARIANT_TYPE (record_types[kind]));

      if (!write_record (b, kind, key, upgraded, &local))
        {
          g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT,
                       _("Cannot upgrade the record \"%s\" of the database %s: %s"), key,
                       b->path, local->message);
          sqlite3_finalize (stmt);
          return FALSE;
        }
      records++;
    }
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE)
    return set_sqlite_error (b, rc, _("upgrading the schema"), error);

  if (!prepare (b, g_strdup ("SELECT id, kind, value FROM logs ORDER BY id"), &stmt, error))
    return FALSE;
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      int kind = sqlite3_column_int (stmt, 1);
      g_autoptr (GVariant) entry = NULL;

      if (kind < 0 || kind >= CANOPY_N_LOG_KINDS
          || (entry = blob_value (blob_log_types[kind], stmt, 2)) == NULL
          || !write_entry (b, kind, sqlite3_column_int64 (stmt, 0), entry, NULL))
        {
          gint64 id = sqlite3_column_int64 (stmt, 0);
          sqlite3_finalize (stmt);
          g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT,
                       _("The database %s holds a damaged log entry %" PRId64
                         " that cannot be upgraded; restore it from a backup"), b->path, id);
          return FALSE;
        }
      entries++;
    }
  sqlite3_finalize (stmt);
  if (rc != SQLITE_DONE)
    return set_sqlite_error (b, rc, _("upgrading the schema"), error);
  if (records + entries > 0)
    g_message (_("Converted %u records and %u log entries of %s to typed tables"), records,
               entries, b->path);
  return exec (b, "DROP TABLE records; DROP TABLE logs", _("upgrading the schema"), error);
}

static gboolean
write_admin_records (CanopySqliteBackend *b, CanopyRecordKind kind, GArray *records,
                     GError **error)
{
  for (guint i = 0; i < records->len; i++)
    {
      CanopyRecord *record = &g_array_index (records, CanopyRecord, i);
      if (!write_record (b, kind, record->key, record->value, error))
        return FALSE;
    }
  return TRUE;
}

/* Migration 3's move: the admins' and tokens' setting records become rows
 * of admins and admin_tokens, and leave settings. */
static gboolean
move_admins (CanopySqliteBackend *b, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  CanopyAdminSettings moved;
  gboolean ok;
  int rc;

  if (!prepare_statements (b, CANOPY_N_RECORD_KINDS, error)
      || !prepare (b, g_strdup ("SELECT name, value FROM settings WHERE name LIKE 'admin/%'"
                                " OR name LIKE 'admin-token/%'"),
                   &stmt, error))
    return FALSE;
  canopy_admin_settings_init (&moved);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    canopy_admin_settings_add (&moved, (const char *) sqlite3_column_text (stmt, 0),
                               (const char *) sqlite3_column_text (stmt, 1));
  sqlite3_finalize (stmt);
  canopy_admin_settings_finish (&moved);
  ok = (rc == SQLITE_DONE || set_sqlite_error (b, rc, _("upgrading the schema"), error))
       && write_admin_records (b, CANOPY_RECORD_ADMIN, moved.admins, error)
       && write_admin_records (b, CANOPY_RECORD_ADMIN_TOKEN, moved.tokens, error);
  if (ok && moved.moved->len > 0)
    {
      g_ptr_array_add (moved.moved, NULL);
      ok = canopy_sqlite_backend_remove (b, CANOPY_RECORD_SETTING,
                                         (const char *const *) moved.moved->pdata, error);
      if (ok)
        g_message (_("Moved the console admins of %s from the settings to their own tables "
                     "(admins: %u, tokens: %u)"),
                   b->path, moved.admins->len, moved.tokens->len);
    }
  canopy_admin_settings_clear (&moved);
  return ok;
}

static gboolean
migrate (CanopySqliteBackend *b, GError **error)
{
  sqlite3_stmt *stmt = NULL;
  int version = 0;
  int rc = sqlite3_prepare_v2 (b->db, "PRAGMA user_version", -1, &stmt, NULL);

  if (rc == SQLITE_OK && (rc = sqlite3_step (stmt)) == SQLITE_ROW)
    version = sqlite3_column_int (stmt, 0);
  sqlite3_finalize (stmt);
  if (rc != SQLITE_ROW)
    return set_sqlite_error (b, rc, _("reading the schema version"), error);
  if (version > SCHEMA_VERSION)
    {
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_TOO_NEW,
                   _("The database %s has schema version %d, written by a newer canopy; this "
                     "one knows up to version %d. Upgrade canopy; the database was not "
                     "touched"), b->path, version, SCHEMA_VERSION);
      return FALSE;
    }
  if (version == SCHEMA_VERSION)
    return TRUE;
  if (!exec (b, "BEGIN IMMEDIATE", _("starting the schema upgrade"), error))
    return FALSE;
  for (int v = version; v < SCHEMA_VERSION; v++)
    {
      /* PRAGMA user_version is what this code reads; schema_migrations
       * (from version 2) is the record an admin reads. */
      g_autofree char *set = g_strdup_printf (
        "PRAGMA user_version = %d;%s", v + 1,
        v + 1 >= 2 ? "INSERT INTO schema_migrations (version, applied_at) VALUES "
                     "((SELECT user_version FROM pragma_user_version),"
                     " strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
                   : "");
      if (!exec (b, migrations[v].sql, _("upgrading the schema"), error)
          || (migrations[v].convert != NULL && !migrations[v].convert (b, error))
          || !exec (b, set, _("upgrading the schema"), error))
        {
          finalize_statements (b);
          sqlite3_exec (b->db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
    }
  if (!exec (b, "COMMIT", _("upgrading the schema"), error))
    {
      finalize_statements (b);
      sqlite3_exec (b->db, "ROLLBACK", NULL, NULL, NULL);
      return FALSE;
    }
  if (version > 0)
    g_message (_("Upgraded the database %s from schema version %d to %d"), b->path, version,
               SCHEMA_VERSION);
  return TRUE;
}

void
canopy_sqlite_backend_close (CanopySqliteBackend *b)
{
  if (b == NULL)
    return;
  finalize_statements (b);
  if (b->db != NULL && !sqlite3_get_autocommit (b->db))
    sqlite3_exec (b->db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close_v2 (b->db);
  g_free (b->path);
  g_free (b);
}

CanopySqliteBackend *
canopy_sqlite_backend_open (const char *path, guint busy_timeout_ms, GError **error)
{
  g_autoptr (CanopySqliteBackend) b = g_new0 (CanopySqliteBackend, 1);
  int rc;

  b->path = g_strdup (path);
  if (!prepare_file (path, error))
    return NULL;
  rc = sqlite3_open_v2 (path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK)
    {
      set_sqlite_error (b, rc, _("opening"), error);
      return NULL;
    }
  sqlite3_extended_result_codes (b->db, 1);
  sqlite3_busy_timeout (b->db, (int) busy_timeout_ms);
  if (!exec (b, "PRAGMA journal_mode = WAL", _("opening"), error)
      || !exec (b, "PRAGMA synchronous = FULL", _("opening"), error)
      || !exec (b, "PRAGMA foreign_keys = ON", _("opening"), error)
      || !check_integrity (b, error) || !migrate (b, error)
      || !prepare_statements (b, CANOPY_N_RECORD_KINDS, error))
    return NULL;
  return g_steal_pointer (&b);
}

const char *
canopy_sqlite_backend_get_path (const CanopySqliteBackend *b)
{
  return b->path;
}

gboolean
canopy_sqlite_backend_check_health (CanopySqliteBackend *b, GError **error)
{
  return exec (b, "SELECT 1 FROM settings LIMIT 1", _("checking health"), error);
}

guint
canopy_sqlite_backend_get_schema_version (const CanopySqliteBackend *b)
{
  return SCHEMA_VERSION;
}
