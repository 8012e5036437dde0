/* canopy's schema in T-SQL for SQL Server: the numbered migrations (DDL)
 * and the parameterised statements built from the SDK's table
 * descriptions. Nothing here talks to a server, so all of it is unit
 * tested without one; freetds-backend.c sends these statements with
 * sp_executesql and binds every value as a typed parameter. */
#pragma once

#include <canopy/canopy.h>

G_BEGIN_DECLS

/**
 * CanopyTsqlStatement:
 * @sql: the statement, parameters named @p1, @p2, ...
 * @declarations: sp_executesql's @params: "@p1 UNIQUEIDENTIFIER, ..."
 * @n_params: how many parameters: the key columns' values first, then
 *   the other columns', in the table description's order
 */
typedef struct {
  char *sql;
  char *declarations;
  guint n_params;
} CanopyTsqlStatement;

void canopy_tsql_statement_clear (CanopyTsqlStatement *statement);

/* How a migration's SQL is followed, for what SQL cannot express. */
typedef enum {
  CANOPY_TSQL_CONVERT_NONE,
  CANOPY_TSQL_CONVERT_BLOBS, /* canopy_records and canopy_logs into the typed tables */
  CANOPY_TSQL_MOVE_ADMINS,   /* admins' settings rows into admins and admin_tokens */
} CanopyTsqlConvert;

typedef struct {
  guint version;       /* 1, 2, ...: the schema version it makes */
  const char *summary; /* what it does, for logs and docs */
  const char *sql;     /* its DDL: one T-SQL batch, no values */
  CanopyTsqlConvert convert;
} CanopyTsqlMigration;

/**
 * canopy_tsql_migrations:
 * @n: (out): how many
 *
 * Returns: the migrations in the order they apply; the last one's
 *   version is the newest schema version.
 */
const CanopyTsqlMigration *canopy_tsql_migrations (guint *n);

/* The application lock every canopy schema upgrade holds for its
 * transaction, so that two canopyd starting at once migrate once; the
 * batch returns sp_getapplock's result (0 or 1: taken; negative: not). */
#define CANOPY_TSQL_SCHEMA_LOCK "canopy-schema"
#define CANOPY_TSQL_TAKE_SCHEMA_LOCK                                                           \
  "DECLARE @result INT; EXEC @result = sp_getapplock @Resource = N'" CANOPY_TSQL_SCHEMA_LOCK    \
  "', @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 60000; "           \
  "SELECT CAST(@result AS BIGINT)"

/* The schema version: no row (a new database) reads as 0. canopy_meta is
 * what the release with blob tables created and read. */
#define CANOPY_TSQL_READ_VERSION                                                               \
  "IF OBJECT_ID(N'canopy_meta', N'U') IS NOT NULL "                                           \
  "SELECT CAST(value AS BIGINT) FROM canopy_meta WHERE name = N'schema_version'"

/* Created before the first migration runs, when missing. */
#define CANOPY_TSQL_CREATE_VERSION_TABLES                                                      \
  "IF OBJECT_ID(N'canopy_meta', N'U') IS NULL "                                               \
  "CREATE TABLE canopy_meta (name NVARCHAR(64) NOT NULL PRIMARY KEY, value INT NOT NULL); "   \
  "IF OBJECT_ID(N'schema_migrations', N'U') IS NULL "                                         \
  "CREATE TABLE schema_migrations (version INT NOT NULL CONSTRAINT schema_migrations_pk "     \
  "PRIMARY KEY, applied_at DATETIME2(6) NOT NULL CONSTRAINT schema_migrations_applied_at "    \
  "DEFAULT SYSUTCDATETIME())"

/* Records migration @p1 as applied. */
void canopy_tsql_record_version (CanopyTsqlStatement *out);

/* The admins' rows of settings before version 3 (name, value). */
#define CANOPY_TSQL_SELECT_ADMIN_SETTINGS                                                      \
  "SELECT name, value FROM settings WHERE name LIKE N'admin/%' OR name LIKE N'admin-token/%'"

/* Version 1's log entries are converted a page at a time: id > @p1. */
#define CANOPY_TSQL_BLOB_PAGE 1000
void canopy_tsql_blob_logs_page (CanopyTsqlStatement *out);


/**
 * canopy_tsql_parameter_type:
 * @is_key: the value is matched against a key column
 *
 * Returns: the T-SQL type a parameter holding a value of @column is
 *   declared with. Times travel as BIGINT µs since the Unix epoch and
 *   integers of every width as BIGINT.
 */
const char *canopy_tsql_parameter_type (const CanopyColumn *column, gboolean is_key);

/**
 * canopy_tsql_column_type:
 *
 * Returns: the T-SQL type of @column in the tables (keys get a bounded
 *   NVARCHAR so that they can be indexed).
 */
const char *canopy_tsql_column_type (const CanopyColumn *column, gboolean is_key);

/* Inserts or replaces the main row of a record: keys, then columns. */
void canopy_tsql_upsert (const CanopyTable *table, CanopyTsqlStatement *out);

/* SQL Server's limits: parameters of one call, rows of one INSERT. */
#define CANOPY_TSQL_MAX_PARAMS 2100
#define CANOPY_TSQL_MAX_ROWS 1000

/**
 * canopy_tsql_record_write:
 * @n_rows: for each child table, how many rows the record has there
 *
 * One statement that writes a whole record in one round trip: the upsert,
 * then for each child table a delete of the rows that are not among the
 * new ones and an insert of the new rows that are not there yet, so a
 * record written again unchanged changes no row. Parameters:
 * the keys, the columns, then each child row's columns in order (the
 * child rows reuse the keys' parameters).
 *
 * Returns: %FALSE, with @out untouched, when the record has more rows
 *   than one call can carry; write it with the statements below then.
 */
gboolean canopy_tsql_record_write (const CanopyTable *table, const guint *n_rows,
                                   CanopyTsqlStatement *out);

/* With @by_key the value columns of one row (parameters: its keys);
 * without, the keys and value columns of every row. */
void canopy_tsql_select (const CanopyTable *table, gboolean by_key, CanopyTsqlStatement *out);

/* Deletes the row of a key (parameters: its keys), or every row. */
void canopy_tsql_delete (const CanopyTable *table, gboolean by_key, CanopyTsqlStatement *out);

/* The child table @child of @table: insert one row (keys, then the
 * child's columns), select (its columns by key, or keys and columns of
 * every row), delete the rows of a key. */
void canopy_tsql_child_insert (const CanopyTable *table, guint child, CanopyTsqlStatement *out);
void canopy_tsql_child_select (const CanopyTable *table, guint child, gboolean by_key,
                               CanopyTsqlStatement *out);
void canopy_tsql_child_delete (const CanopyTable *table, guint child, CanopyTsqlStatement *out);

/* Appends a log entry (its columns), or with @with_id one whose id is
 * the first parameter (a converted entry keeps its ID). */
void canopy_tsql_log_append (const CanopyTable *table, gboolean with_id,
                             CanopyTsqlStatement *out);

/* Lists a log's entries with id > @p1, at most @p2, in id order; the
 * first column is the id. */
void canopy_tsql_log_list (const CanopyTable *table, CanopyTsqlStatement *out);

/* --- clusters (see <canopy/backend-cluster.h>) -------------------------
 *
 * The tables of migration 4. Times are taken from the database's UTC
 * clock (SYSUTCDATETIME()), read back as µs since the epoch or as µs
 * between then and now; IDs read back in lower case. */

/* Records that server @p1 (its ID), named @p2, is alive now; with
 * @starting, that it started now. Registers it when it is not. */
void canopy_tsql_cluster_heartbeat (gboolean starting, CanopyTsqlStatement *out);

/* Releases every lease server @p1 holds and removes it from the
 * registry. */
void canopy_tsql_cluster_leave (CanopyTsqlStatement *out);

/* Every server by ID: its ID, name, start and heartbeat (µs since the
 * epoch), and µs since its heartbeat. */
void canopy_tsql_cluster_list_servers (CanopyTsqlStatement *out);

/* Takes the lease @p1 for holder @p2, with detail @p3, for @p4 ms from
 * now, when it is absent, lapsed or already @p2's (and changes nothing
 * otherwise); then reads it as it stands: name, holder, detail and µs
 * until it lapses (no row: it was released meanwhile). Run it in a
 * transaction, so that what is read is what the take left. */
void canopy_tsql_cluster_take_lease (CanopyTsqlStatement *out);

/* Every lease by name: name, holder, detail, µs until it lapses. */
void canopy_tsql_cluster_list_leases (CanopyTsqlStatement *out);

G_END_DECLS
