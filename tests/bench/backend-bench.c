/* Storage benchmark: 100,000 devices upserted, then 100,000 heartbeat
 * updates, in batches, through the real backend plugin and the core's
 * wrappers; a raw SQLite insert loop in the same run is the reference.
 * Then the same against PostgreSQL (a server the benchmark starts, as the
 * tests do) with a tenth of the devices, against a raw libpq upsert loop
 * with the same batches as its reference.
 * Prints rows per second (median of three runs), ratios and database size.
 *   usage: backend-bench [DEVICES] [BATCH] */
#include "build-config.h"

#include "lib/backend.h"
#include "lib/config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#ifdef CANOPY_BENCH_POSTGRESQL
#include <libpq-fe.h>
#include "tests/pg-server.h"
#endif

#define RUNS 3

static GVariant *
device (guint i, gint64 last_seen)
{
  const char *groups[] = { "Finance", "Branch-North", NULL };
  GVariantBuilder addresses;
  g_autofree char *name = g_strdup_printf ("PC-%06u", i);
  g_autofree char *address = g_strdup_printf ("10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);

  g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
  g_variant_builder_add (&addresses, "(sy)", address, 24);
  return g_variant_ref_sink (g_variant_new ("(s^asa(sy)ssxxxtuu)", name, groups, &addresses,
                                            "0.1.0", "North", G_GINT64_CONSTANT (1700000000000000),
                                            last_seen, G_GINT64_CONSTANT (0),
                                            G_GUINT64_CONSTANT (0), 0, 0));
}

static double
write_batches (CanopyBackend *backend, guint n, guint batch, gint64 stamp, GPtrArray *keys)
{
  gint64 start = g_get_monotonic_time ();
  g_autofree CanopyRecord *records = g_new0 (CanopyRecord, batch);

  for (guint first = 0; first < n; first += batch)
    {
      guint count = MIN (batch, n - first);
      g_autoptr (GError) error = NULL;

      for (guint i = 0; i < count; i++)
        {
          records[i].key = g_ptr_array_index (keys, first + i);
          records[i].value = device (first + i, stamp);
        }
      if (!canopy_backend_put (backend, CANOPY_RECORD_DEVICE, records, count, &error))
        g_error ("write failed: %s", error->message);
      for (guint i = 0; i < count; i++)
        g_variant_unref (records[i].value);
    }
  return n / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
}

/* Stops the benchmark on any SQLite failure: a reference that failed
 * would be fast for nothing. */
static void
check_sqlite (sqlite3 *db, int rc, int expected, const char *what)
{
  if (rc != expected)
    g_error ("the reference's %s failed: %s", what, sqlite3_errmsg (db));
}

/* The reference: the same rows, the same batches, straight into SQLite,
 * every return code checked as the backend checks its own. */
static double
raw_sqlite (const char *path, guint n, guint batch, GPtrArray *keys)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 start;

  g_unlink (path);
  check_sqlite (db, sqlite3_open (path, &db), SQLITE_OK, "open");
  check_sqlite (db, sqlite3_exec (db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                      "CREATE TABLE t (kind INTEGER, key TEXT, value BLOB, "
                                      "PRIMARY KEY (kind, key)) WITHOUT ROWID",
                                  NULL, NULL, NULL), SQLITE_OK, "schema");
  check_sqlite (db, sqlite3_prepare_v2 (db, "INSERT OR REPLACE INTO t VALUES (0, ?1, ?2)", -1,
                                        &stmt, NULL), SQLITE_OK, "prepare");
  start = g_get_monotonic_time ();
  for (guint first = 0; first < n; first += batch)
    {
      check_sqlite (db, sqlite3_exec (db, "BEGIN", NULL, NULL, NULL), SQLITE_OK, "BEGIN");
      for (guint i = first; i < MIN (first + batch, n); i++)
        {
          g_autoptr (GVariant) value = device (i, 1);

          check_sqlite (db, sqlite3_bind_text (stmt, 1, g_ptr_array_index (keys, i), -1,
                                               SQLITE_STATIC), SQLITE_OK, "bind");
          check_sqlite (db, sqlite3_bind_blob (stmt, 2, g_variant_get_data (value),
                                               (int) g_variant_get_size (value), SQLITE_STATIC),
                        SQLITE_OK, "bind");
          check_sqlite (db, sqlite3_step (stmt), SQLITE_DONE, "insert");
          check_sqlite (db, sqlite3_reset (stmt), SQLITE_OK, "reset");
        }
      check_sqlite (db, sqlite3_exec (db, "COMMIT", NULL, NULL, NULL), SQLITE_OK, "COMMIT");
    }
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return n / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
}

#ifdef CANOPY_BENCH_POSTGRESQL
static void
check_pg (PGconn *conn, PGresult *res, const char *what)
{
  ExecStatusType status = PQresultStatus (res);

  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
    g_error ("the reference's %s failed: %s", what, PQerrorMessage (conn));
  PQclear (res);
}

/* The reference: the same devices, the same batches, as one upsert per
 * device of its key and value into one table, with a prepared statement
 * over the same Unix socket; one transaction per batch. */
static double
raw_libpq (const char *dir, const char *password_file, guint n, guint batch, GPtrArray *keys)
{
  g_autofree char *password = NULL;
  const char *names[] = { "host", "port", "dbname", "user", "password", NULL };
  const char *values[6] = { dir, "5432", "postgres", "canopy", NULL, NULL };
  PGconn *conn;
  gint64 start;

  g_assert (g_file_get_contents (password_file, &password, NULL, NULL));
  values[4] = password;
  conn = PQconnectdbParams (names, values, 0);
  if (PQstatus (conn) != CONNECTION_OK)
    g_error ("the reference cannot connect: %s", PQerrorMessage (conn));
  check_pg (conn, PQexec (conn, "DROP TABLE IF EXISTS raw_reference;"
                                "CREATE TABLE raw_reference (key uuid PRIMARY KEY,"
                                " value bytea NOT NULL)"), "schema");
  check_pg (conn, PQprepare (conn, "upsert", "INSERT INTO raw_reference VALUES ($1, $2) "
                                             "ON CONFLICT (key) DO UPDATE SET value = "
                                             "EXCLUDED.value", 2, NULL), "prepare");
  start = g_get_monotonic_time ();
  for (guint first = 0; first < n; first += batch)
    {
      check_pg (conn, PQexec (conn, "BEGIN"), "BEGIN");
      for (guint i = first; i < MIN (first + batch, n); i++)
        {
          g_autoptr (GVariant) value = device (i, 1);
          const char *params[2] = { g_ptr_array_index (keys, i), g_variant_get_data (value) };
          int lengths[2] = { 0, (int) g_variant_get_size (value) };
          int formats[2] = { 0, 1 };

          check_pg (conn, PQexecPrepared (conn, "upsert", 2, params, lengths, formats, 0),
                    "upsert");
        }
      check_pg (conn, PQexec (conn, "COMMIT"), "COMMIT");
    }
  PQfinish (conn);
  return n / ((g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC);
}
#endif

static int
compare_doubles (gconstpointer a, gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static double
median (double *values)
{
  qsort (values, RUNS, sizeof (double), (int (*) (const void *, const void *)) compare_doubles);
  return values[RUNS / 2];
}

/* Opens the backend @xml configures, fresh for each run (@reset empties
 * it), and times the two workloads. */
static void
bench_backend (const char *xml, const char *dir, guint n, guint batch, GPtrArray *keys,
               void (*reset) (gpointer), gpointer reset_data, double *upserts, double *heartbeats,
               int run)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyConfig) config = canopy_config_load_data (xml, -1, "bench.xml",
                                                             CANOPY_SCHEMA_SERVER, &error);
  const CanopyConfigNode *element = NULL;
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin;
  g_autoptr (CanopyBackend) backend = NULL;

  if (config == NULL)
    g_error ("%s", error->message);
  element = canopy_config_node_get_child (canopy_config_get_root (config), "backend");
  plugin = canopy_plugin_loader_load_for_node (loader, element, CANOPY_PLUGIN_KIND_BACKEND,
                                               &error);
  if (plugin == NULL)
    g_error ("%s", error->message);
  reset (reset_data);
  backend = canopy_backend_open (plugin, element, dir, &error);
  if (backend == NULL)
    g_error ("%s", error->message);
  upserts[run] = write_batches (backend, n, batch, 1, keys);
  heartbeats[run] = write_batches (backend, n, batch, 2, keys);
}

static void
reset_sqlite (gpointer path)
{
  g_autofree char *wal = g_strconcat (path, "-wal", NULL);

  g_unlink (path);
  g_unlink (wal);
}

#ifdef CANOPY_BENCH_POSTGRESQL
typedef struct {
  const char *dir;
  const char *password_file;
} PgTarget;

static void
reset_postgresql (gpointer data)
{
  PgTarget *t = data;
  g_autofree char *out = canopy_test_pg_psql (
    t->dir, t->password_file,
    /* every table, those of later schema versions too */
    "DROP SCHEMA public CASCADE; CREATE SCHEMA public");

  if (out == NULL)
    g_error ("cannot empty the benchmark's PostgreSQL database");
}

static void
bench_postgresql (const char *dir, guint n, guint batch, GPtrArray *keys)
{
  g_autofree char *password_file = g_build_filename (dir, "pg.password", NULL);
  g_autofree char *skip = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *pg_dir = canopy_test_pg_start (password_file, &skip, &error);
  g_autofree char *backend_xml = NULL;
  g_autofree char *xml = NULL;
  double upserts[RUNS], heartbeats[RUNS], reference[RUNS];
  PgTarget target;

  if (pg_dir == NULL)
    {
      printf ("backend-bench: postgresql skipped (%s)\n", skip != NULL ? skip : error->message);
      return;
    }
  backend_xml = canopy_test_pg_backend_xml (pg_dir, password_file);
  xml = g_strdup_printf ("<server>%s</server>", backend_xml);
  target = (PgTarget) { pg_dir, password_file };
  for (int run = 0; run < RUNS; run++)
    {
      bench_backend (xml, dir, n, batch, keys, reset_postgresql, &target, upserts, heartbeats,
                     run);
      reference[run] = raw_libpq (pg_dir, password_file, n, batch, keys);
    }
  canopy_test_pg_stop (pg_dir);
  printf ("backend-bench: postgresql (Unix socket, fsync off), %u devices, batches of %u, "
          "median of %d runs\n", n, batch, RUNS);
  printf ("  upsert devices:     %10.0f rows/s  (%.2f x raw libpq)\n", median (upserts),
          median (upserts) / median (reference));
  printf ("  heartbeat updates:  %10.0f rows/s  (%.2f x raw libpq)\n", median (heartbeats),
          median (heartbeats) / median (reference));
  printf ("  raw libpq upserts:  %10.0f rows/s  (reference)\n", median (reference));
}
#endif

int
main (int argc, char **argv)
{
  guint n = argc > 1 ? (guint) atoi (argv[1]) : 100000;
  guint batch = argc > 2 ? (guint) atoi (argv[2]) : 1000;
  g_autofree char *dir = g_dir_make_tmp ("canopy-bench-XXXXXX", NULL);
  g_autofree char *db = g_build_filename (dir, "bench.db", NULL);
  g_autofree char *raw_db = g_build_filename (dir, "raw.db", NULL);
  g_autofree char *xml = g_strdup_printf ("<server><backend plugin='sqlite'><database>%s"
                                          "</database></backend></server>", db);
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func (g_free);
  double upserts[RUNS], heartbeats[RUNS], reference[RUNS];
  GStatBuf st;
  goffset size = 0;

  for (guint i = 0; i < n; i++)
    g_ptr_array_add (keys, g_uuid_string_random ());
  for (int run = 0; run < RUNS; run++)
    {
      bench_backend (xml, dir, n, batch, keys, reset_sqlite, db, upserts, heartbeats, run);
      reference[run] = raw_sqlite (raw_db, n, batch, keys);
    }
  if (g_stat (db, &st) == 0)
    size = st.st_size;

  printf ("backend-bench: sqlite, %u devices, batches of %u, median of %d runs\n", n, batch,
          RUNS);
  printf ("  upsert devices:     %10.0f rows/s  (%.2f x raw SQLite)\n", median (upserts),
          median (upserts) / median (reference));
  printf ("  heartbeat updates:  %10.0f rows/s  (%.2f x raw SQLite)\n", median (heartbeats),
          median (heartbeats) / median (reference));
  printf ("  raw SQLite inserts: %10.0f rows/s  (reference)\n", median (reference));
  printf ("  database size:      %.1f MiB (%.0f bytes per device)\n",
          size / (1024.0 * 1024.0), n > 0 ? (double) size / n : 0.0);
  g_unlink (raw_db);
#ifdef CANOPY_BENCH_POSTGRESQL
  /* a round trip per statement: a tenth of the devices keeps the run short */
  bench_postgresql (dir, MAX (n / 10, 1), MIN (batch, MAX (n / 10, 1)), keys);
#endif
  return 0;
}
