/* Record kinds as relational tables: the column names and types every
 * backend's schema uses, and the dialect-free decomposition of a record's
 * GVariant value into rows of typed columns (and back), so each backend
 * only writes its own DDL and binds values. */
#pragma once

#include <glib.h>
#include <canopy/backend.h>

G_BEGIN_DECLS

/**
 * CanopyColumnType:
 * @CANOPY_COLUMN_TEXT: UTF-8 text; a GVariant "s"
 * @CANOPY_COLUMN_UUID: a UUID in lower-case canonical text; a GVariant "s"
 * @CANOPY_COLUMN_INT32: an integer that fits 32 bits unsigned; a GVariant
 *   "u" or "y"
 * @CANOPY_COLUMN_INT64: a 64-bit integer (byte counts); a GVariant "x" or
 *   "t" (stored signed; counts never reach 2^63)
 * @CANOPY_COLUMN_TIME: a time in UTC; a GVariant "x" of µs since the Unix
 *   epoch, where 0 means "never" and is stored as NULL
 * @CANOPY_COLUMN_BOOL: a boolean; a GVariant "b"
 * @CANOPY_COLUMN_BYTES: binary data; a GVariant "ay"
 */
typedef enum {
  CANOPY_COLUMN_TEXT,
  CANOPY_COLUMN_UUID,
  CANOPY_COLUMN_INT32,
  CANOPY_COLUMN_INT64,
  CANOPY_COLUMN_TIME,
  CANOPY_COLUMN_BOOL,
  CANOPY_COLUMN_BYTES,
} CanopyColumnType;

/**
 * CanopyColumn:
 * @name: the column's name in every backend's schema
 * @type: what it holds
 * @variant_type: the GVariant type of its values ("s", "u", "x", ...)
 */
typedef struct {
  const char *name;
  CanopyColumnType type;
  const char *variant_type;
} CanopyColumn;

/**
 * CanopyChildTable:
 * @name: the table's name
 * @columns: its columns after the parent's key columns: the first is the
 *   element's position in the list (an INT32 "position", or a TEXT column
 *   whose values are @position_names), then the element's own columns
 * @n_columns: how many
 * @position_names: (nullable): names of the positions, for lists indexed
 *   by a kind (bytes by source kind); %NULL when positions are numbers
 *
 * A list member of a record, kept as one row per element.
 */
typedef struct {
  const char *name;
  const CanopyColumn *columns;
  guint n_columns;
  const char *const *position_names;
} CanopyChildTable;

#define CANOPY_TABLE_MAX_CHILDREN 2

/**
 * CanopyTable:
 * @name: the main table's name
 * @keys: the key columns; a record's key is their values joined by "/"
 *   (none for a log: its key is the backend's increasing "id")
 * @n_keys: how many
 * @columns: the value columns, in the order of the value's scalar members
 * @n_columns: how many
 * @children: the child tables, in the order of the value's list members
 * @n_children: how many
 * @members: for each member of the value's tuple, the index of its
 *   column (0, 1, ...) or, negative, -1 - the index of its child table
 * @n_members: how many
 */
typedef struct {
  const char *name;
  const CanopyColumn *keys;
  guint n_keys;
  const CanopyColumn *columns;
  guint n_columns;
  const CanopyChildTable *children;
  guint n_children;
  const gint8 *members;
  guint n_members;
} CanopyTable;

/** canopy_record_table: Returns: the table that keeps records of @kind. */
const CanopyTable *canopy_record_table (CanopyRecordKind kind);

/** canopy_log_table: Returns: the table that keeps entries of @kind. */
const CanopyTable *canopy_log_table (CanopyLogKind kind);

/**
 * CanopyRows:
 * @keys: (nullable): a tuple of the key columns' values
 * @columns: a tuple of the value columns' values
 * @children: for each child table, a #GPtrArray of tuples, one per row,
 *   of the child's columns (position first)
 *
 * One record as rows. Every value has its column's variant type; a TIME
 * of 0 and an empty TEXT are values like any other (the backend decides
 * what NULL means on its side).
 */
typedef struct {
  GVariant *keys;
  GVariant *columns;
  GPtrArray *children[CANOPY_TABLE_MAX_CHILDREN];
} CanopyRows;

/** canopy_rows_clear: frees what @rows holds and zeroes it. */
void canopy_rows_clear (CanopyRows *rows);

/**
 * canopy_table_split_key:
 *
 * Returns: (transfer full): a tuple of the key columns' values of @key,
 *   or %NULL with %CANOPY_BACKEND_ERROR_FAILED when @key does not have
 *   that shape (a UUID column given something else).
 */
GVariant *canopy_table_split_key (const CanopyTable *table, const char *key, GError **error);

/** canopy_table_join_key: Returns: (transfer full): the key of @keys. */
char *canopy_table_join_key (const CanopyTable *table, GVariant *keys);

/**
 * canopy_table_split:
 * @key: (nullable): the record's key; %NULL for a log entry
 * @value: a value of the table's type
 *
 * Fills @rows (which must be zeroed) with @value's rows.
 */
gboolean canopy_table_split (const CanopyTable *table, const char *key, GVariant *value,
                             CanopyRows *rows, GError **error);

/**
 * canopy_table_join:
 *
 * Returns: (transfer full): the value @rows describe (the key is
 *   ignored), or %NULL with %CANOPY_BACKEND_ERROR_CORRUPT when a stored
 *   row cannot be part of a value (an unknown position name, a value of
 *   the wrong type).
 */
GVariant *canopy_table_join (const CanopyTable *table, const CanopyRows *rows, GError **error);

/**
 * canopy_record_upgrade:
 * @old: a record written with an older type: a tuple whose members are
 *   the first members of @type
 * @type: the record type of today (a kind's CANOPY_RECORD_*_TYPE)
 *
 * Record types only grow at their end; this reads an older record as
 * today's, the members it lacks being zero (0, "", %FALSE, empty).
 *
 * Returns: (transfer full): @old as a value of @type.
 */
GVariant *canopy_record_upgrade (GVariant *old, const GVariantType *type);

/**
 * canopy_time_to_iso8601:
 * @usec: µs since the Unix epoch, not 0
 *
 * Returns: (transfer full): @usec in UTC as "2026-12-05T06:12:30.123456Z",
 *   for backends that keep times as text.
 */
char *canopy_time_to_iso8601 (gint64 usec);

/**
 * canopy_time_from_iso8601:
 *
 * Returns: µs since the Unix epoch, or 0 when @text is not an ISO-8601
 *   time.
 */
gint64 canopy_time_from_iso8601 (const char *text);

G_END_DECLS
