/* canopy's schema in T-SQL (see docs/schema.md): UNIQUEIDENTIFIER for
 * IDs, DATETIME2(6) in UTC for times (NULL for never), BIGINT for counts,
 * BIT for booleans, VARBINARY(MAX) for bytes, NVARCHAR for text. The
 * statements come from the SDK's table descriptions, as the other
 * backends' do; values only ever travel as parameters. */
#include "build-config.h"

#include "tsql-schema.h"

#include <string.h>

/* Version 1: the release before typed tables kept every record as an
 * opaque blob; kept so that such a database is converted. */
static const char migration_1[] =
  "CREATE TABLE canopy_records (kind INT NOT NULL, [key] NVARCHAR(256) NOT NULL,"
  "  value VARBINARY(MAX) NOT NULL, CONSTRAINT canopy_records_pk PRIMARY KEY (kind, [key]));"
  "CREATE TABLE canopy_logs (id BIGINT IDENTITY(1,1) PRIMARY KEY, kind INT NOT NULL,"
  "  value VARBINARY(MAX) NOT NULL);"
  "CREATE INDEX canopy_logs_by_kind ON canopy_logs (kind, id);";

#define TIME_COLUMN "DATETIME2(6) NULL"
/* Text keys compare byte for byte, as in the other backends: "Bo" and
 * "bo" are two admins, not a duplicate key under a case-insensitive
 * database collation. */
#define TEXT_KEY "NVARCHAR(256) COLLATE Latin1_General_100_BIN2 NOT NULL"

/* Version 2: the typed tables, as in the SQLite and PostgreSQL backends. */
static const char migration_2[] =
  "CREATE TABLE devices (device_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT devices_pk PRIMARY KEY,"
  "  name NVARCHAR(MAX) NOT NULL, agent_version NVARCHAR(MAX) NOT NULL,"
  "  office NVARCHAR(256) NOT NULL, first_seen " TIME_COLUMN ", last_seen " TIME_COLUMN ","
  "  online_usec BIGINT NOT NULL, bytes_served BIGINT NOT NULL, peers_served BIGINT NOT NULL,"
  "  chunks_rejected BIGINT NOT NULL);"
  "CREATE INDEX devices_by_office ON devices (office);"
  "CREATE INDEX devices_by_last_seen ON devices (last_seen);"
  "CREATE TABLE device_groups (device_id UNIQUEIDENTIFIER NOT NULL, position INT NOT NULL,"
  "  group_name NVARCHAR(256) NOT NULL,"
  "  CONSTRAINT device_groups_pk PRIMARY KEY (device_id, position),"
  "  CONSTRAINT device_groups_device FOREIGN KEY (device_id)"
  "    REFERENCES devices (device_id) ON DELETE CASCADE);"
  "CREATE INDEX device_groups_by_group ON device_groups (group_name);"
  "CREATE TABLE device_addresses (device_id UNIQUEIDENTIFIER NOT NULL, position INT NOT NULL,"
  "  address NVARCHAR(64) NOT NULL,"
  "  prefix_length INT NOT NULL CONSTRAINT device_addresses_prefix"
  "    CHECK (prefix_length BETWEEN 0 AND 128),"
  "  CONSTRAINT device_addresses_pk PRIMARY KEY (device_id, position),"
  "  CONSTRAINT device_addresses_device FOREIGN KEY (device_id)"
  "    REFERENCES devices (device_id) ON DELETE CASCADE);"
  "CREATE INDEX device_addresses_by_address ON device_addresses (address);"
  "CREATE TABLE offices (office_name " TEXT_KEY " CONSTRAINT offices_pk PRIMARY KEY,"
  "  parent NVARCHAR(256) NOT NULL, office_type INT NOT NULL, wan_rate_bps BIGINT NOT NULL,"
  "  metered BIT NOT NULL, automatic BIT NOT NULL);"
  "CREATE TABLE office_subnets (office_name " TEXT_KEY ", position INT NOT NULL,"
  "  subnet NVARCHAR(128) NOT NULL,"
  "  CONSTRAINT office_subnets_pk PRIMARY KEY (office_name, position),"
  "  CONSTRAINT office_subnets_office FOREIGN KEY (office_name)"
  "    REFERENCES offices (office_name) ON DELETE CASCADE);"
  "CREATE TABLE settings (name " TEXT_KEY " CONSTRAINT settings_pk PRIMARY KEY,"
  "  value NVARCHAR(MAX) NOT NULL);"
  "CREATE TABLE contents (content_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT contents_pk PRIMARY KEY,"
  "  name NVARCHAR(MAX) NOT NULL, version NVARCHAR(MAX) NOT NULL, origin NVARCHAR(MAX) NOT NULL,"
  "  manifest VARBINARY(MAX) NOT NULL, registered_at " TIME_COLUMN ","
  "  expires_at " TIME_COLUMN ");"
  "CREATE TABLE deployments (deployment_id UNIQUEIDENTIFIER NOT NULL"
  "    CONSTRAINT deployments_pk PRIMARY KEY,"
  "  content_id UNIQUEIDENTIFIER NOT NULL, destination NVARCHAR(MAX) NOT NULL,"
  "  state INT NOT NULL, created_at " TIME_COLUMN ", start_at " TIME_COLUMN ","
  "  deadline " TIME_COLUMN ","
  "  window_start_min INT NOT NULL CONSTRAINT deployments_window_start"
  "    CHECK (window_start_min BETWEEN 0 AND 1440),"
  "  window_end_min INT NOT NULL CONSTRAINT deployments_window_end"
  "    CHECK (window_end_min BETWEEN 0 AND 1440),"
  "  background BIT NOT NULL);"
  "CREATE INDEX deployments_by_content ON deployments (content_id);"
  "CREATE TABLE deployment_groups (deployment_id UNIQUEIDENTIFIER NOT NULL,"
  "  position INT NOT NULL, group_name NVARCHAR(256) NOT NULL,"
  "  CONSTRAINT deployment_groups_pk PRIMARY KEY (deployment_id, position),"
  "  CONSTRAINT deployment_groups_deployment FOREIGN KEY (deployment_id)"
  "    REFERENCES deployments (deployment_id) ON DELETE CASCADE);"
  "CREATE TABLE assignments (deployment_id UNIQUEIDENTIFIER NOT NULL,"
  "  device_id UNIQUEIDENTIFIER NOT NULL, chunks_verified BIGINT NOT NULL, done BIT NOT NULL,"
  "  CONSTRAINT assignments_pk PRIMARY KEY (deployment_id, device_id));"
  "CREATE INDEX assignments_by_device ON assignments (device_id);"
  "CREATE TABLE assignment_bytes (deployment_id UNIQUEIDENTIFIER NOT NULL,"
  "  device_id UNIQUEIDENTIFIER NOT NULL,"
  "  source NVARCHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL, bytes BIGINT NOT NULL,"
  "  CONSTRAINT assignment_bytes_pk PRIMARY KEY (deployment_id, device_id, source),"
  "  CONSTRAINT assignment_bytes_assignment FOREIGN KEY (deployment_id, device_id)"
  "    REFERENCES assignments (deployment_id, device_id) ON DELETE CASCADE);"
  "CREATE TABLE licences (device_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT licences_pk PRIMARY KEY,"
  "  activated_at " TIME_COLUMN ", last_seen " TIME_COLUMN ", released_at " TIME_COLUMN ");"
  "CREATE TABLE transfers (id BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT transfers_pk PRIMARY KEY,"
  "  at " TIME_COLUMN ", content_id NVARCHAR(256) NOT NULL, from_device NVARCHAR(256) NOT NULL,"
  "  to_device NVARCHAR(256) NOT NULL, source INT NOT NULL, chunks BIGINT NOT NULL,"
  "  bytes BIGINT NOT NULL, verified BIT NOT NULL);"
  "CREATE INDEX transfers_by_content ON transfers (content_id, id);"
  "CREATE TABLE audit (id BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT audit_pk PRIMARY KEY,"
  "  at " TIME_COLUMN ", actor NVARCHAR(256) NOT NULL, action NVARCHAR(256) NOT NULL,"
  "  detail NVARCHAR(MAX) NOT NULL);"
  "CREATE INDEX audit_by_at ON audit (at);";

/* Version 3: console admins and their tokens in tables of their own
 * (they were setting rows "admin/NAME" and "admin-token/ID"). */
static const char migration_3[] =
  "CREATE TABLE admins (admin_name " TEXT_KEY " CONSTRAINT admins_pk PRIMARY KEY,"
  "  role NVARCHAR(32) NOT NULL CONSTRAINT admins_role"
  "    CHECK (role IN (N'administrator', N'operator', N'auditor')),"
  "  created_at " TIME_COLUMN ");"
  "CREATE TABLE admin_tokens (token_id " TEXT_KEY " CONSTRAINT admin_tokens_pk PRIMARY KEY,"
  "  admin_name " TEXT_KEY ","
  "  secret_sha256 VARBINARY(32) NOT NULL CONSTRAINT admin_tokens_sha256"
  "    CHECK (DATALENGTH(secret_sha256) = 32),"
  "  created_at " TIME_COLUMN ", expires_at " TIME_COLUMN ","
  "  CONSTRAINT admin_tokens_admin FOREIGN KEY (admin_name)"
  "    REFERENCES admins (admin_name) ON DELETE CASCADE);"
  "CREATE INDEX admin_tokens_by_admin ON admin_tokens (admin_name);";

/* Version 4: what servers sharing the database (<cluster>) keep there,
 * as in the PostgreSQL backend: the registry with heartbeats, and the
 * offices' lead leases. Empty where one canopyd uses the database. Their
 * times are the database's UTC clock, so that servers whose clocks differ
 * agree on ages and expiries. Changes to records need no table of their
 * own: the servers poll the records themselves (changes="poll"). */
static const char migration_4[] =
  "CREATE TABLE servers (server_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT servers_pk PRIMARY KEY,"
  "  name NVARCHAR(MAX) NOT NULL, started_at DATETIME2(6) NOT NULL,"
  "  heartbeat_at DATETIME2(6) NOT NULL);"
  "CREATE TABLE leases (name " TEXT_KEY " CONSTRAINT leases_pk PRIMARY KEY,"
  "  holder UNIQUEIDENTIFIER NOT NULL, detail NVARCHAR(MAX) NOT NULL,"
  "  expires_at DATETIME2(6) NOT NULL);"
  /* a server leaving releases its leases by holder */
  "CREATE INDEX leases_by_holder ON leases (holder);";

static const CanopyTsqlMigration migrations[] = {
  { 1, "opaque blobs in canopy_records and canopy_logs", migration_1, CANOPY_TSQL_CONVERT_NONE },
  { 2, "typed tables; the blobs converted", migration_2, CANOPY_TSQL_CONVERT_BLOBS },
  { 3, "admins and admin_tokens; the admins moved out of settings", migration_3,
    CANOPY_TSQL_MOVE_ADMINS },
  { 4, "servers and leases, for servers sharing the database", migration_4,
    CANOPY_TSQL_CONVERT_NONE },
};

const CanopyTsqlMigration *
canopy_tsql_migrations (guint *n)
{
  *n = G_N_ELEMENTS (migrations);
  return migrations;
}

void
canopy_tsql_statement_clear (CanopyTsqlStatement *s)
{
  g_clear_pointer (&s->sql, g_free);
  g_clear_pointer (&s->declarations, g_free);
  s->n_params = 0;
}

const char *
canopy_tsql_parameter_type (const CanopyColumn *column, gboolean is_key)
{
  switch (column->type)
    {
    case CANOPY_COLUMN_UUID:
      return "UNIQUEIDENTIFIER";
    case CANOPY_COLUMN_TEXT:
      /* a key's type matches its column's, so that lookups seek */
      return is_key ? "NVARCHAR(256)" : "NVARCHAR(MAX)";
    case CANOPY_COLUMN_INT32:
    case CANOPY_COLUMN_INT64:
    case CANOPY_COLUMN_TIME:
      return "BIGINT";
    case CANOPY_COLUMN_BOOL:
      return "BIT";
    case CANOPY_COLUMN_BYTES:
      return "VARBINARY(MAX)";
    }
  g_return_val_if_reached ("SQL_VARIANT");
}

const char *
canopy_tsql_column_type (const CanopyColumn *column, gboolean is_key)
{
  switch (column->type)
    {
    case CANOPY_COLUMN_UUID:
      return "UNIQUEIDENTIFIER";
    case CANOPY_COLUMN_TEXT:
      return is_key ? "NVARCHAR(256)" : "NVARCHAR(MAX)";
    case CANOPY_COLUMN_INT32:
      return "INT";
    case CANOPY_COLUMN_INT64:
      return "BIGINT";
    case CANOPY_COLUMN_TIME:
      return "DATETIME2(6)";
    case CANOPY_COLUMN_BOOL:
      return "BIT";
    case CANOPY_COLUMN_BYTES:
      return "VARBINARY(MAX)";
    }
  g_return_val_if_reached ("SQL_VARIANT");
}

/* --- building statements ------------------------------------------------ */

/* Parameters in order, with the declaration list sp_executesql needs. */
typedef struct {
  GString *sql;
  GString *declarations;
  guint n;
} Builder;

static void
builder_init (Builder *b, const char *start)
{
  b->sql = g_string_new (start);
  b->declarations = g_string_new (NULL);
  b->n = 0;
}

static void
builder_finish (Builder *b, CanopyTsqlStatement *out)
{
  out->sql = g_string_free (b->sql, FALSE);
  out->declarations = g_string_free (b->declarations, FALSE);
  out->n_params = b->n;
}

/* Declares the next parameter; returns its number. */
static guint
declare (Builder *b, const char *type)
{
  b->n++;
  g_string_append_printf (b->declarations, "%s@p%u %s", b->n > 1 ? ", " : "", b->n, type);
  return b->n;
}

/* The value a parameter gives a column. An empty text or byte string
 * travels as NULL through db-lib (a length of 0 means NULL there), and
 * canopy never stores NULL text: read it back as empty. A time travels as
 * µs since the epoch and becomes a DATETIME2 in UTC, in three steps
 * because DATEADD takes only an INT. */
static void
append_value (GString *sql, const CanopyColumn *column, guint p)
{
  switch (column->type)
    {
    case CANOPY_COLUMN_TEXT:
      g_string_append_printf (sql, "COALESCE(@p%u, N'')", p);
      break;
    case CANOPY_COLUMN_BYTES:
      g_string_append_printf (sql, "COALESCE(@p%u, 0x)", p);
      break;
    case CANOPY_COLUMN_TIME:
      g_string_append_printf (sql,
                              "DATEADD(MICROSECOND, CAST(@p%u %% 1000000 AS INT), "
                              "DATEADD(SECOND, CAST((@p%u / 1000000) %% 86400 AS INT), "
                              "DATEADD(DAY, CAST(@p%u / 86400000000 AS INT), "
                              "CAST('1970-01-01' AS DATETIME2(6)))))",
                              p, p, p);
      break;
    default:
      g_string_append_printf (sql, "@p%u", p);
      break;
    }
}

/* A column as the backend reads it: IDs in lower case (SQL Server
 * writes them in upper case), times as BIGINT µs since the epoch,
 * integers as BIGINT. */
static void
append_read (GString *sql, const CanopyColumn *column)
{
  switch (column->type)
    {
    case CANOPY_COLUMN_UUID:
      g_string_append_printf (sql, "LOWER(CONVERT(NCHAR(36), %s))", column->name);
      break;
    case CANOPY_COLUMN_TIME:
      g_string_append_printf (sql, "DATEDIFF_BIG(MICROSECOND, CAST('1970-01-01' AS DATETIME2(6)),"
                                   " %s)", column->name);
      break;
    case CANOPY_COLUMN_INT32:
    case CANOPY_COLUMN_INT64:
      g_string_append_printf (sql, "CAST(%s AS BIGINT)", column->name);
      break;
    default:
      g_string_append (sql, column->name);
      break;
    }
}

static void
append_reads (GString *sql, const CanopyColumn *columns, guint n, gboolean comma_first)
{
  for (guint i = 0; i < n; i++)
    {
      if (i > 0 || comma_first)
        g_string_append (sql, ", ");
      append_read (sql, &columns[i]);
    }
}

static void
append_names (GString *sql, const CanopyColumn *columns, guint n, gboolean comma_first)
{
  for (guint i = 0; i < n; i++)
    g_string_append_printf (sql, "%s%s", i > 0 || comma_first ? ", " : "", columns[i].name);
}

/* " WHERE k1 = @p1 AND k2 = @p2", declaring the keys' parameters. */
static void
append_key_match (Builder *b, const CanopyTable *t)
{
  g_string_append (b->sql, " WHERE ");
  for (guint i = 0; i < t->n_keys; i++)
    {
      guint p = declare (b, canopy_tsql_parameter_type (&t->keys[i], TRUE));
      g_string_append_printf (b->sql, "%s%s = @p%u", i > 0 ? " AND " : "", t->keys[i].name, p);
    }
}

/* " WHERE k1 = @p1 AND k2 = @p2", the keys being the first parameters. */
static void
append_parent_match (GString *sql, const CanopyTable *t)
{
  g_string_append (sql, " WHERE ");
  for (guint i = 0; i < t->n_keys; i++)
    g_string_append_printf (sql, "%s%s = @p%u", i > 0 ? " AND " : "", t->keys[i].name, i + 1);
}

void
canopy_tsql_upsert (const CanopyTable *t, CanopyTsqlStatement *out)
{
  Builder b;
  guint first_column;

  /* The keys' parameters come first: declare them, then the columns'. */
  builder_init (&b, NULL);
  for (guint i = 0; i < t->n_keys; i++)
    declare (&b, canopy_tsql_parameter_type (&t->keys[i], TRUE));
  first_column = b.n + 1;
  for (guint i = 0; i < t->n_columns; i++)
    declare (&b, canopy_tsql_parameter_type (&t->columns[i], FALSE));
  /* UPDLOCK and SERIALIZABLE hold the key (or the gap where it would go)
   * to the end of the transaction: two servers writing one new key at
   * once queue instead of both inserting. */
  g_string_append_printf (b.sql, "UPDATE %s WITH (UPDLOCK, SERIALIZABLE) SET ", t->name);
  for (guint i = 0; i < t->n_columns; i++)
    {
      g_string_append_printf (b.sql, "%s%s = ", i > 0 ? ", " : "", t->columns[i].name);
      append_value (b.sql, &t->columns[i], first_column + i);
    }
  append_parent_match (b.sql, t);
  g_string_append_printf (b.sql, "; IF @@ROWCOUNT = 0 INSERT INTO %s (", t->name);
  append_names (b.sql, t->keys, t->n_keys, FALSE);
  append_names (b.sql, t->columns, t->n_columns, TRUE);
  g_string_append (b.sql, ") VALUES (");
  for (guint i = 0; i < t->n_keys; i++)
    g_string_append_printf (b.sql, "%s@p%u", i > 0 ? ", " : "", i + 1);
  for (guint i = 0; i < t->n_columns; i++)
    {
      g_string_append (b.sql, ", ");
      append_value (b.sql, &t->columns[i], first_column + i);
    }
  g_string_append (b.sql, ")");
  builder_finish (&b, out);
}

/* A child row's columns as two rows are compared for sameness: text and
 * bytes byte for byte, with their length, since SQL Server's comparison
 * follows the column's (perhaps case-insensitive) collation and ignores
 * trailing spaces; through INTERSECT, where NULL matches NULL (a time
 * may be NULL). */
static void
append_compared (GString *sql, const char *table, const CanopyChildTable *child)
{
  for (guint i = 0; i < child->n_columns; i++)
    {
      const char *name = child->columns[i].name;

      g_string_append_printf (sql, "%s%s.%s", i > 0 ? ", " : "", table, name);
      if (child->columns[i].type == CANOPY_COLUMN_TEXT)
        g_string_append (sql, " COLLATE Latin1_General_100_BIN2");
      if (child->columns[i].type == CANOPY_COLUMN_TEXT
          || child->columns[i].type == CANOPY_COLUMN_BYTES)
        g_string_append_printf (sql, ", DATALENGTH(%s.%s)", table, name);
    }
}

/* "SELECT <the stored row> INTERSECT SELECT <new row v>": not empty when
 * the two are the same. */
static void
append_same_row (GString *sql, const CanopyChildTable *child)
{
  g_string_append (sql, "SELECT ");
  append_compared (sql, child->name, child);
  g_string_append (sql, " INTERSECT SELECT ");
  append_compared (sql, "v", child);
}

/* "(VALUES (…), (…)) AS v (columns)": @n_rows new child rows, declaring
 * their parameters. */
static char *
child_values (Builder *b, const CanopyChildTable *child, guint n_rows)
{
  GString *values = g_string_new ("(VALUES ");

  for (guint r = 0; r < n_rows; r++)
    {
      g_string_append (values, r > 0 ? ", (" : "(");
      for (guint i = 0; i < child->n_columns; i++)
        {
          if (i > 0)
            g_string_append (values, ", ");
          append_value (values, &child->columns[i],
                        declare (b, canopy_tsql_parameter_type (&child->columns[i], FALSE)));
        }
      g_string_append (values, ")");
    }
  g_string_append (values, ") AS v (");
  append_names (values, child->columns, child->n_columns, FALSE);
  g_string_append (values, ")");
  return g_string_free (values, FALSE);
}

/* The child rows of @child for the record whose keys are the first
 * parameters: the old rows that are not among the new ones go, then the
 * new rows that are not there yet go in. A device's groups and addresses,
 * written with its every heartbeat, are then left alone. */
static void
append_child_rows (Builder *b, const CanopyTable *t, const CanopyChildTable *child, guint n_rows)
{
  g_autofree char *values = NULL;

  g_string_append_printf (b->sql, "; DELETE FROM %s", child->name);
  append_parent_match (b->sql, t);
  if (n_rows == 0)
    return;
  values = child_values (b, child, n_rows);
  g_string_append (b->sql, " AND NOT EXISTS (");
  append_same_row (b->sql, child);
  g_string_append_printf (b->sql, " FROM %s)", values);

  g_string_append_printf (b->sql, "; INSERT INTO %s (", child->name);
  append_names (b->sql, t->keys, t->n_keys, FALSE);
  append_names (b->sql, child->columns, child->n_columns, TRUE);
  g_string_append (b->sql, ") SELECT ");
  for (guint i = 0; i < t->n_keys; i++)
    g_string_append_printf (b->sql, "@p%u, ", i + 1);
  for (guint i = 0; i < child->n_columns; i++)
    g_string_append_printf (b->sql, "%sv.%s", i > 0 ? ", " : "", child->columns[i].name);
  g_string_append_printf (b->sql, " FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s", values,
                          child->name);
  append_parent_match (b->sql, t);
  g_string_append (b->sql, " AND EXISTS (");
  append_same_row (b->sql, child);
  g_string_append (b->sql, "))");
}

gboolean
canopy_tsql_record_write (const CanopyTable *t, const guint *n_rows, CanopyTsqlStatement *out)
{
  CanopyTsqlStatement upsert = { 0 };
  guint n_params = t->n_keys + t->n_columns;
  Builder b;

  for (guint c = 0; c < t->n_children; c++)
    {
      if (n_rows[c] > CANOPY_TSQL_MAX_ROWS)
        return FALSE;
      n_params += n_rows[c] * t->children[c].n_columns;
    }
  if (n_params > CANOPY_TSQL_MAX_PARAMS)
    return FALSE;
  canopy_tsql_upsert (t, &upsert);
  b.sql = g_string_new (upsert.sql);
  b.declarations = g_string_new (upsert.declarations);
  b.n = upsert.n_params;
  canopy_tsql_statement_clear (&upsert);
  for (guint c = 0; c < t->n_children; c++)
    append_child_rows (&b, t, &t->children[c], n_rows[c]);
  builder_finish (&b, out);
  return TRUE;
}

/* @columns of @table, a table of @t's kind (the main one or a child):
 * the key columns first when not @by_key, else of the record of a key. */
static void
build_select (const CanopyTable *t, const char *table, const CanopyColumn *columns,
              guint n_columns, gboolean by_key, CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, "SELECT ");
  if (!by_key)
    append_reads (b.sql, t->keys, t->n_keys, FALSE);
  append_reads (b.sql, columns, n_columns, !by_key);
  g_string_append_printf (b.sql, " FROM %s", table);
  if (by_key)
    append_key_match (&b, t);
  builder_finish (&b, out);
}

void
canopy_tsql_select (const CanopyTable *t, gboolean by_key, CanopyTsqlStatement *out)
{
  build_select (t, t->name, t->columns, t->n_columns, by_key, out);
}

void
canopy_tsql_delete (const CanopyTable *t, gboolean by_key, CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, NULL);
  g_string_append_printf (b.sql, "DELETE FROM %s", t->name);
  if (by_key)
    append_key_match (&b, t);
  builder_finish (&b, out);
}

void
canopy_tsql_child_insert (const CanopyTable *t, guint child, CanopyTsqlStatement *out)
{
  const CanopyChildTable *c = &t->children[child];
  Builder b;

  g_return_if_fail (child < t->n_children);
  builder_init (&b, NULL);
  g_string_append_printf (b.sql, "INSERT INTO %s (", c->name);
  append_names (b.sql, t->keys, t->n_keys, FALSE);
  append_names (b.sql, c->columns, c->n_columns, TRUE);
  g_string_append (b.sql, ") VALUES (");
  for (guint i = 0; i < t->n_keys; i++)
    g_string_append_printf (b.sql, "%s@p%u", i > 0 ? ", " : "",
                            declare (&b, canopy_tsql_parameter_type (&t->keys[i], TRUE)));
  for (guint i = 0; i < c->n_columns; i++)
    {
      g_string_append (b.sql, ", ");
      append_value (b.sql, &c->columns[i],
                    declare (&b, canopy_tsql_parameter_type (&c->columns[i], FALSE)));
    }
  g_string_append (b.sql, ")");
  builder_finish (&b, out);
}

void
canopy_tsql_child_select (const CanopyTable *t, guint child, gboolean by_key,
                          CanopyTsqlStatement *out)
{
  const CanopyChildTable *c = &t->children[child];

  g_return_if_fail (child < t->n_children);
  build_select (t, c->name, c->columns, c->n_columns, by_key, out);
}

void
canopy_tsql_child_delete (const CanopyTable *t, guint child, CanopyTsqlStatement *out)
{
  Builder b;

  g_return_if_fail (child < t->n_children);
  builder_init (&b, NULL);
  g_string_append_printf (b.sql, "DELETE FROM %s", t->children[child].name);
  append_key_match (&b, t);
  builder_finish (&b, out);
}

void
canopy_tsql_log_append (const CanopyTable *t, gboolean with_id, CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, NULL);
  if (with_id)
    {
      g_string_append_printf (b.sql, "SET IDENTITY_INSERT %s ON; ", t->name);
      declare (&b, "BIGINT");
    }
  g_string_append_printf (b.sql, "INSERT INTO %s (%s", t->name, with_id ? "id, " : "");
  append_names (b.sql, t->columns, t->n_columns, FALSE);
  g_string_append (b.sql, ") VALUES (");
  if (with_id)
    g_string_append (b.sql, "@p1, ");
  for (guint i = 0; i < t->n_columns; i++)
    {
      if (i > 0)
        g_string_append (b.sql, ", ");
      append_value (b.sql, &t->columns[i],
                    declare (&b, canopy_tsql_parameter_type (&t->columns[i], FALSE)));
    }
  g_string_append (b.sql, ")");
  if (with_id)
    g_string_append_printf (b.sql, "; SET IDENTITY_INSERT %s OFF", t->name);
  builder_finish (&b, out);
}

void
canopy_tsql_log_list (const CanopyTable *t, CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, NULL);
  declare (&b, "BIGINT");
  declare (&b, "BIGINT");
  g_string_append (b.sql, "SELECT TOP (@p2) id");
  append_reads (b.sql, t->columns, t->n_columns, TRUE);
  g_string_append_printf (b.sql, " FROM %s WHERE id > @p1 ORDER BY id", t->name);
  builder_finish (&b, out);
}

void
canopy_tsql_record_version (CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, "UPDATE canopy_meta SET value = @p1 WHERE name = N'schema_version'; "
                    "IF @@ROWCOUNT = 0 INSERT INTO canopy_meta (name, value) "
                    "VALUES (N'schema_version', @p1); "
                    "INSERT INTO schema_migrations (version) VALUES (@p1)");
  declare (&b, "INT");
  builder_finish (&b, out);
}

void
canopy_tsql_blob_logs_page (CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, NULL);
  g_string_append_printf (b.sql, "SELECT TOP (%d) id, CAST(kind AS BIGINT), value "
                                 "FROM canopy_logs WHERE id > @p1 ORDER BY id",
                          CANOPY_TSQL_BLOB_PAGE);
  declare (&b, "BIGINT");
  builder_finish (&b, out);
}

/* --- clusters ------------------------------------------------------------ */

/* The database's clock, once per statement, in the columns' precision. */
#define CLUSTER_NOW "DECLARE @now DATETIME2(6) = SYSUTCDATETIME(); "
#define EPOCH "CAST('1970-01-01' AS DATETIME2(6))"

void
canopy_tsql_cluster_heartbeat (gboolean starting, CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, CLUSTER_NOW);
  declare (&b, "UNIQUEIDENTIFIER");
  declare (&b, "NVARCHAR(MAX)");
  /* HOLDLOCK holds the key, or the gap where it would go, for the whole
   * statement: two sessions registering one ID at once queue. */
  g_string_append_printf (b.sql,
                          "MERGE INTO servers WITH (HOLDLOCK) AS s "
                          "USING (SELECT @p1 AS server_id) AS me ON s.server_id = me.server_id "
                          "WHEN MATCHED THEN UPDATE SET name = COALESCE(@p2, N''), "
                          "heartbeat_at = @now%s "
                          "WHEN NOT MATCHED THEN INSERT (server_id, name, started_at, "
                          "heartbeat_at) VALUES (@p1, COALESCE(@p2, N''), @now, @now);",
                          starting ? ", started_at = @now" : "");
  builder_finish (&b, out);
}

void
canopy_tsql_cluster_leave (CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, "DELETE FROM leases WHERE holder = @p1; "
                    "DELETE FROM servers WHERE server_id = @p1");
  declare (&b, "UNIQUEIDENTIFIER");
  builder_finish (&b, out);
}

void
canopy_tsql_cluster_list_servers (CanopyTsqlStatement *out)
{
  Builder b;

  /* by the ID's text, as the other backends list them: SQL Server sorts
   * a UNIQUEIDENTIFIER by its last bytes first */
  builder_init (&b, CLUSTER_NOW
                "SELECT LOWER(CONVERT(NCHAR(36), server_id)), name, "
                "DATEDIFF_BIG(MICROSECOND, " EPOCH ", started_at), "
                "DATEDIFF_BIG(MICROSECOND, " EPOCH ", heartbeat_at), "
                "DATEDIFF_BIG(MICROSECOND, heartbeat_at, @now) FROM servers "
                "ORDER BY LOWER(CONVERT(NCHAR(36), server_id)) COLLATE Latin1_General_100_BIN2");
  builder_finish (&b, out);
}

#define LEASE_COLUMNS                                                                          \
  "name, LOWER(CONVERT(NCHAR(36), holder)), detail, DATEDIFF_BIG(MICROSECOND, @now, expires_at)"

void
canopy_tsql_cluster_take_lease (CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, CLUSTER_NOW);
  declare (&b, "NVARCHAR(256)");
  declare (&b, "UNIQUEIDENTIFIER");
  declare (&b, "NVARCHAR(MAX)");
  declare (&b, "INT");
  /* One statement decides: it takes the row when it is absent, lapsed or
   * already the caller's, and changes nothing otherwise. HOLDLOCK
   * (serializable) keeps a second server from inserting the same absent
   * name between the match and the insert, so two servers never both
   * hold it. The name is compared as the key is (a derived table's column
   * would otherwise carry the database's collation, and conflict). */
  g_string_append (b.sql,
                   "MERGE INTO leases WITH (HOLDLOCK) AS l "
                   "USING (SELECT @p1 COLLATE Latin1_General_100_BIN2 AS name) AS wanted "
                   "ON l.name = wanted.name "
                   "WHEN MATCHED AND (l.holder = @p2 OR l.expires_at <= @now) THEN "
                   "UPDATE SET holder = @p2, detail = COALESCE(@p3, N''), "
                   "expires_at = DATEADD(MILLISECOND, @p4, @now) "
                   "WHEN NOT MATCHED THEN INSERT (name, holder, detail, expires_at) "
                   "VALUES (@p1, @p2, COALESCE(@p3, N''), DATEADD(MILLISECOND, @p4, @now)); "
                   "SELECT " LEASE_COLUMNS " FROM leases WHERE name = @p1");
  builder_finish (&b, out);
}

void
canopy_tsql_cluster_list_leases (CanopyTsqlStatement *out)
{
  Builder b;

  builder_init (&b, CLUSTER_NOW "SELECT " LEASE_COLUMNS " FROM leases ORDER BY name");
  builder_finish (&b, out);
}
