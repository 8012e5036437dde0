/* The SQLite storage backend: one owner-only database file in WAL mode,
 * prepared statements, every batch in one transaction, forward-only
 * migrations run at open. */
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

#define DEFAULT_BUSY_TIMEOUT_MS 5000

/* Each step takes the schema from the version before it to its own. */
static const char *const migrations[] = {
  /* 1 */
  "CREATE TABLE records (kind INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,"
  "                      PRIMARY KEY (kind, key)) WITHOUT ROWID;"
  "CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind INTEGER NOT NULL,"
  "                   value BLOB NOT NULL);"
  "CREATE INDEX logs_by_kind ON logs (kind, id);",
};
#define SCHEMA_VERSION ((int) G_N_ELEMENTS (migrations))

enum {
  STMT_PUT,
  STMT_GET,
  STMT_LIST,
  STMT_REMOVE,
  STMT_CLEAR,
  STMT_APPEND,
  STMT_LIST_LOG,
  N_STMTS,
};

static const char *const statements[N_STMTS] = {
  [STMT_PUT] = "INSERT OR REPLACE INTO records (kind, key, value) VALUES (?1, ?2, ?3)",
  [STMT_GET] = "SELECT value FROM records WHERE kind = ?1 AND key = ?2",
  [STMT_LIST] = "SELECT key, value FROM records WHERE kind = ?1 ORDER BY key",
  [STMT_REMOVE] = "DELETE FROM records WHERE kind = ?1 AND key = ?2",
  [STMT_CLEAR] = "DELETE FROM records WHERE kind = ?1",
  [STMT_APPEND] = "INSERT INTO logs (kind, value) VALUES (?1, ?2)",
  [STMT_LIST_LOG] = "SELECT id, value FROM logs WHERE kind = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
};

struct _CanopySqliteBackend {
  sqlite3 *db;
  char *path;
  sqlite3_stmt *stmts[N_STMTS];
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

void
canopy_sqlite_backend_close (CanopySqliteBackend *b)
{
  if (b == NULL)
    return;
  for (int i = 0; i < N_STMTS; i++)
    sqlite3_finalize (b->stmts[i]);
  if (b->db != NULL && !sqlite3_get_autocommit (b->db))
    sqlite3_exec (b->db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close_v2 (b->db);
  g_free (b->path);
  g_free (b);
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
      g_autofree char *set = g_strdup_printf ("PRAGMA user_version = %d", v + 1);
      if (!exec (b, migrations[v], _("upgrading the schema"), error)
          || !exec (b, set, _("upgrading the schema"), error))
        {
          sqlite3_exec (b->db, "ROLLBACK", NULL, NULL, NULL);
          return FALSE;
        }
    }
  if (!exec (b, "COMMIT", _("upgrading the schema"), error))
    return FALSE;
  if (version > 0)
    g_message (_("Upgraded the database %s from schema version %d to %d"), b->path, version,
               SCHEMA_VERSION);
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
      || !check_integrity (b, error) || !migrate (b, error))
    return NULL;
  for (int i = 0; i < N_STMTS; i++)
    {
      rc = sqlite3_prepare_v3 (b->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &b->stmts[i],
                               NULL);
      if (rc != SQLITE_OK)
        {
          set_sqlite_error (b, rc, _("preparing statements"), error);
          return NULL;
        }
    }
  return g_steal_pointer (&b);
}

const char *
canopy_sqlite_backend_get_path (const CanopySqliteBackend *b)
{
  return b->path;
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

static gboolean
step_done (CanopySqliteBackend *b, sqlite3_stmt *stmt, const char *doing, GError **error)
{
  int rc = sqlite3_step (stmt);

  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_DONE || set_sqlite_error (b, rc, doing, error);
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
  sqlite3_stmt *put = b->stmts[STMT_PUT];

  if (batch->clear_first)
    {
      sqlite3_bind_int (b->stmts[STMT_CLEAR], 1, batch->kind);
      if (!step_done (b, b->stmts[STMT_CLEAR], _("replacing records"), error))
        return FALSE;
    }
  for (gsize i = 0; i < batch->n; i++)
    {
      GVariant *value = batch->records[i].value;

      sqlite3_bind_int (put, 1, batch->kind);
      sqlite3_bind_text (put, 2, batch->records[i].key, -1, SQLITE_STATIC);
      sqlite3_bind_blob64 (put, 3, g_variant_get_data (value), g_variant_get_size (value),
                           SQLITE_STATIC);
      if (!step_done (b, put, _("writing records"), error))
        return FALSE;
    }
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

GBytes *
canopy_sqlite_backend_get (CanopySqliteBackend *b, CanopyRecordKind kind, const char *key,
                           GError **error)
{
  sqlite3_stmt *stmt = b->stmts[STMT_GET];
  GBytes *value = NULL;
  int rc;

  sqlite3_bind_int (stmt, 1, kind);
  sqlite3_bind_text (stmt, 2, key, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    value = g_bytes_new (sqlite3_column_blob (stmt, 0), (gsize) sqlite3_column_bytes (stmt, 0));
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  if (rc == SQLITE_DONE)
    g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND,
                 _("No %s record \"%s\" in %s"), canopy_record_kind_to_string (kind), key,
                 b->path);
  else if (rc != SQLITE_ROW)
    set_sqlite_error (b, rc, _("reading a record"), error);
  return value;
}

gboolean
canopy_sqlite_backend_list (CanopySqliteBackend *b, CanopyRecordKind kind, CanopyRecordFunc func,
                            gpointer user_data, GError **error)
{
  sqlite3_stmt *stmt = b->stmts[STMT_LIST];
  int rc;

  sqlite3_bind_int (stmt, 1, kind);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    if (!func ((const char *) sqlite3_column_text (stmt, 0), sqlite3_column_blob (stmt, 1),
               (gsize) sqlite3_column_bytes (stmt, 1), user_data))
      {
        rc = SQLITE_DONE;
        break;
      }
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_DONE || set_sqlite_error (b, rc, _("listing records"), error);
}

typedef struct {
  CanopyRecordKind kind;
  const char *const *keys;
} RemoveBatch;

static gboolean
delete_records (CanopySqliteBackend *b, gpointer data, GError **error)
{
  RemoveBatch *batch = data;
  sqlite3_stmt *stmt = b->stmts[STMT_REMOVE];

  for (const char *const *key = batch->keys; *key != NULL; key++)
    {
      sqlite3_bind_int (stmt, 1, batch->kind);
      sqlite3_bind_text (stmt, 2, *key, -1, SQLITE_STATIC);
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

typedef struct {
  CanopyLogKind kind;
  GVariant *const *entries;
  gsize n;
} AppendBatch;

static gboolean
write_entries (CanopySqliteBackend *b, gpointer data, GError **error)
{
  AppendBatch *batch = data;
  sqlite3_stmt *stmt = b->stmts[STMT_APPEND];

  for (gsize i = 0; i < batch->n; i++)
    {
      sqlite3_bind_int (stmt, 1, batch->kind);
      sqlite3_bind_blob64 (stmt, 2, g_variant_get_data (batch->entries[i]),
                           g_variant_get_size (batch->entries[i]), SQLITE_STATIC);
      if (!step_done (b, stmt, _("appending to a log"), error))
        return FALSE;
    }
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
  sqlite3_stmt *stmt = b->stmts[STMT_LIST_LOG];
  int rc;

  sqlite3_bind_int (stmt, 1, kind);
  sqlite3_bind_int64 (stmt, 2, after);
  sqlite3_bind_int64 (stmt, 3, limit > 0 ? (sqlite3_int64) limit : -1);
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    if (!func (sqlite3_column_int64 (stmt, 0), sqlite3_column_blob (stmt, 1),
               (gsize) sqlite3_column_bytes (stmt, 1), user_data))
      {
        rc = SQLITE_DONE;
        break;
      }
  sqlite3_reset (stmt);
  sqlite3_clear_bindings (stmt);
  return rc == SQLITE_DONE || set_sqlite_error (b, rc, _("listing a log"), error);
}

gboolean
canopy_sqlite_backend_check_health (CanopySqliteBackend *b, GError **error)
{
  return exec (b, "SELECT 1 FROM records LIMIT 1", _("checking health"), error);
}

guint
canopy_sqlite_backend_get_schema_version (const CanopySqliteBackend *b)
{
  return SCHEMA_VERSION;
}
