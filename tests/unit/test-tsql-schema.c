/* The SQL Server backend's T-SQL, as far as it can be checked without a
 * SQL Server: the migrations are numbered in order and create every table
 * and column the SDK describes with the documented types, and every
 * statement carries values only as declared parameters. The statements
 * themselves run in the conformance suite against a real server when
 * CANOPY_TEST_MSSQL_HOST names one. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "plugins/backend-freetds/tsql-schema.h"

#include <string.h>

static void
test_types (void)
{
  const CanopyColumn uuid = { "device_id", CANOPY_COLUMN_UUID, "s" };
  const CanopyColumn text = { "name", CANOPY_COLUMN_TEXT, "s" };
  const CanopyColumn small = { "position", CANOPY_COLUMN_INT32, "u" };
  const CanopyColumn count = { "bytes", CANOPY_COLUMN_INT64, "t" };
  const CanopyColumn time = { "last_seen", CANOPY_COLUMN_TIME, "x" };
  const CanopyColumn flag = { "done", CANOPY_COLUMN_BOOL, "b" };
  const CanopyColumn bytes = { "manifest", CANOPY_COLUMN_BYTES, "ay" };

  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&uuid, TRUE), "UNIQUEIDENTIFIER");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&text, TRUE), "NVARCHAR(256)");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&text, FALSE), "NVARCHAR(MAX)");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&small, FALSE), "INT");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&count, FALSE), "BIGINT");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&time, FALSE), "DATETIME2(6)");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&flag, FALSE), "BIT");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_column_type (&bytes, FALSE), "VARBINARY(MAX)");
  /* Parameters: times as µs, every integer as BIGINT (a "u" exceeds INT),
   * a key's text bounded like its column so lookups seek. */
  CU_ASSERT_STRING_EQUAL (canopy_tsql_parameter_type (&uuid, TRUE), "UNIQUEIDENTIFIER");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_parameter_type (&text, TRUE), "NVARCHAR(256)");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_parameter_type (&text, FALSE), "NVARCHAR(MAX)");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_parameter_type (&small, FALSE), "BIGINT");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_parameter_type (&time, FALSE), "BIGINT");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_parameter_type (&flag, FALSE), "BIT");
  CU_ASSERT_STRING_EQUAL (canopy_tsql_parameter_type (&bytes, FALSE), "VARBINARY(MAX)");
}

static void
test_migrations_in_order (void)
{
  guint n;
  const CanopyTsqlMigration *m = canopy_tsql_migrations (&n);

  CU_ASSERT_EQUAL_FATAL (n, 4);
  for (guint i = 0; i < n; i++)
    {
      CU_ASSERT_EQUAL (m[i].version, i + 1);
      CU_ASSERT (m[i].sql != NULL && m[i].sql[0] != '\0');
    }
  /* the release with blobs is version 1, converted by version 2 */
  CU_ASSERT_PTR_NOT_NULL (strstr (m[0].sql, "CREATE TABLE canopy_records"));
  CU_ASSERT_EQUAL (m[0].convert, CANOPY_TSQL_CONVERT_NONE);
  CU_ASSERT_EQUAL (m[1].convert, CANOPY_TSQL_CONVERT_BLOBS);
  CU_ASSERT_EQUAL (m[2].convert, CANOPY_TSQL_MOVE_ADMINS);
  CU_ASSERT_EQUAL (m[3].convert, CANOPY_TSQL_CONVERT_NONE);
  /* a token's table references the admins': created after it */
  CU_ASSERT (strstr (m[2].sql, "CREATE TABLE admins") < strstr (m[2].sql,
                                                                "CREATE TABLE admin_tokens"));
  /* the upgrade holds the schema lock for its transaction */
  CANOPY_ASSERT_CONTAINS (CANOPY_TSQL_TAKE_SCHEMA_LOCK, "sp_getapplock");
  CANOPY_ASSERT_CONTAINS (CANOPY_TSQL_TAKE_SCHEMA_LOCK, "@LockOwner = N'Transaction'");
}

/* The CREATE TABLE of @name in the migrations after version 1. */
static char *
create_table (const char *name)
{
  guint n;
  const CanopyTsqlMigration *m = canopy_tsql_migrations (&n);
  g_autofree char *start = g_strdup_printf ("CREATE TABLE %s (", name);

  for (guint i = 1; i < n; i++)
    {
      const char *found = strstr (m[i].sql, start);
      if (found != NULL)
        {
          const char *end = strstr (found, ");");
          return g_strndup (found, end != NULL ? (gsize) (end - found) : strlen (found));
        }
    }
  return NULL;
}

/* @column is in @ddl with its type. */
static void
check_column (const char *table, const char *ddl, const CanopyColumn *column, gboolean is_key)
{
  g_autofree char *start = g_strdup_printf (" %s ", column->name);
  g_autofree char *first = g_strdup_printf ("(%s ", column->name);
  const char *found = strstr (ddl, start);
  const char *type;

  if (found == NULL)
    found = strstr (ddl, first);
  if (found == NULL)
    {
      g_printerr ("%s.%s is not created\n", table, column->name);
      CU_FAIL ("a column of the SDK's description is missing from the T-SQL schema");
      return;
    }
  type = found + strlen (start);
  switch (column->type)
    {
    case CANOPY_COLUMN_TEXT:
      CU_ASSERT (g_str_has_prefix (type, "NVARCHAR("));
      /* an indexed text is bounded (index keys are at most 1700 bytes),
       * a key compares byte for byte as in the other backends */
      if (is_key)
        {
          CU_ASSERT_FALSE (g_str_has_prefix (type, "NVARCHAR(MAX)"));
          g_autofree char *declared = g_strndup (type, strcspn (type, ","));
          CANOPY_ASSERT_CONTAINS (declared, " COLLATE Latin1_General_100_BIN2 NOT NULL");
        }
      break;
    case CANOPY_COLUMN_INT32:
      CU_ASSERT (g_str_has_prefix (type, "INT ") || g_str_has_prefix (type, "BIGINT "));
      break;
    case CANOPY_COLUMN_BYTES:
      CU_ASSERT (g_str_has_prefix (type, "VARBINARY("));
      break;
    default:
      if (!g_str_has_prefix (type, canopy_tsql_column_type (column, is_key)))
        {
          g_printerr ("%s.%s is %.24s...\n", table, column->name, type);
          CU_FAIL ("a column has another type than the documented one");
        }
      break;
    }
}

static void
check_table (const CanopyTable *t, gboolean is_log)
{
  g_autofree char *ddl = create_table (t->name);

  if (ddl == NULL)
    {
      g_printerr ("table %s\n", t->name);
      CU_FAIL ("a table of the SDK's description is not created in T-SQL");
      return;
    }
  for (guint i = 0; i < t->n_keys; i++)
    check_column (t->name, ddl, &t->keys[i], TRUE);
  for (guint i = 0; i < t->n_columns; i++)
    check_column (t->name, ddl, &t->columns[i], FALSE);
  if (is_log)
    CANOPY_ASSERT_CONTAINS (ddl, "id BIGINT IDENTITY(1,1) NOT NULL");
  else
    CANOPY_ASSERT_CONTAINS (ddl, "PRIMARY KEY");
  for (guint c = 0; c < t->n_children; c++)
    {
      const CanopyChildTable *child = &t->children[c];
      g_autofree char *child_ddl = create_table (child->name);
      g_autofree char *reference = g_strdup_printf ("REFERENCES %s (", t->name);

      CU_ASSERT_PTR_NOT_NULL_FATAL (child_ddl);
      for (guint i = 0; i < t->n_keys; i++)
        check_column (child->name, child_ddl, &t->keys[i], TRUE);
      for (guint i = 0; i < child->n_columns; i++)
        check_column (child->name, child_ddl, &child->columns[i], i == 0);
      /* deleted with their record */
      CANOPY_ASSERT_CONTAINS (child_ddl, reference);
      CANOPY_ASSERT_CONTAINS (child_ddl, "ON DELETE CASCADE");
    }
}

static void
test_every_table_created (void)
{
  for (CanopyRecordKind kind = 0; kind < CANOPY_N_RECORD_KINDS; kind++)
    check_table (canopy_record_table (kind), FALSE);
  for (CanopyLogKind kind = 0; kind < CANOPY_N_LOG_KINDS; kind++)
    check_table (canopy_log_table (kind), TRUE);
  {
    g_autofree char *tokens = create_table ("admin_tokens");
    CU_ASSERT_PTR_NOT_NULL_FATAL (tokens);
    CANOPY_ASSERT_CONTAINS (tokens, "REFERENCES admins (admin_name) ON DELETE CASCADE");
    CANOPY_ASSERT_CONTAINS (tokens, "DATALENGTH(secret_sha256) = 32");
  }
}

/* @s declares @p1..@pN, uses each, and holds no literal but the fixed
 * ones of the statement builder (the empty string, the epoch, the name
 * of the version row): no value was pasted into it. */
static void
check_statement (const CanopyTsqlStatement *s)
{
  g_auto (GStrv) declared = g_strsplit (s->declarations, ", ", -1);
  g_autofree char *unnamed = NULL;

  if (s->n_params == 0)
    {
      CU_ASSERT_STRING_EQUAL (s->declarations, "");
    }
  else
    {
      CU_ASSERT_EQUAL (g_strv_length (declared), s->n_params);
    }
  for (guint i = 1; i <= s->n_params + 1; i++)
    {
      g_autofree char *name = g_strdup_printf ("@p%u", i);
      g_autofree char *as_word = g_strdup_printf ("@p%u ", i);
      gboolean used = FALSE;

      for (const char *at = strstr (s->sql, name); at != NULL; at = strstr (at + 1, name))
        if (!g_ascii_isdigit (at[strlen (name)]))
          used = TRUE;
      CU_ASSERT_EQUAL (used, i <= s->n_params);
      if (i <= s->n_params)
        CU_ASSERT (g_str_has_prefix (declared[i - 1], as_word));
    }
  {
    g_auto (GStrv) a = g_strsplit (s->sql, "N''", -1);
    g_autofree char *b = g_strjoinv ("", a);
    g_auto (GStrv) c = g_strsplit (b, "'1970-01-01'", -1);
    g_autofree char *d = g_strjoinv ("", c);
    g_auto (GStrv) e = g_strsplit (d, "N'schema_version'", -1);
    unnamed = g_strjoinv ("", e);
  }
  if (strchr (unnamed, '\'') != NULL)
    {
      g_printerr ("%s\n", s->sql);
      CU_FAIL ("a statement holds a literal");
    }
}

static void
test_statements_take_parameters (void)
{
  for (CanopyRecordKind kind = 0; kind < CANOPY_N_RECORD_KINDS; kind++)
    {
      const CanopyTable *t = canopy_record_table (kind);
      CanopyTsqlStatement s = { 0 };

      canopy_tsql_upsert (t, &s);
      check_statement (&s);
      CU_ASSERT_EQUAL (s.n_params, t->n_keys + t->n_columns);
      canopy_tsql_statement_clear (&s);
      {
        const guint rows[CANOPY_TABLE_MAX_CHILDREN] = { 2, 3 };
        CU_ASSERT_FATAL (canopy_tsql_record_write (t, rows, &s));
        check_statement (&s);
        canopy_tsql_statement_clear (&s);
      }
      for (int by_key = 0; by_key < 2; by_key++)
        {
          canopy_tsql_select (t, by_key, &s);
          check_statement (&s);
          CU_ASSERT_EQUAL (s.n_params, by_key ? t->n_keys : 0);
          canopy_tsql_statement_clear (&s);
          canopy_tsql_delete (t, by_key, &s);
          check_statement (&s);
          canopy_tsql_statement_clear (&s);
        }
      for (guint c = 0; c < t->n_children; c++)
        {
          canopy_tsql_child_insert (t, c, &s);
          check_statement (&s);
          CU_ASSERT_EQUAL (s.n_params, t->n_keys + t->children[c].n_columns);
          canopy_tsql_statement_clear (&s);
          canopy_tsql_child_delete (t, c, &s);
          check_statement (&s);
          canopy_tsql_statement_clear (&s);
          canopy_tsql_child_select (t, c, TRUE, &s);
          check_statement (&s);
          canopy_tsql_statement_clear (&s);
        }
    }
  for (CanopyLogKind kind = 0; kind < CANOPY_N_LOG_KINDS; kind++)
    {
      const CanopyTable *t = canopy_log_table (kind);
      CanopyTsqlStatement s = { 0 };

      for (int with_id = 0; with_id < 2; with_id++)
        {
          canopy_tsql_log_append (t, with_id, &s);
          check_statement (&s);
          CU_ASSERT_EQUAL (s.n_params, t->n_columns + (guint) with_id);
          canopy_tsql_statement_clear (&s);
        }
      canopy_tsql_log_list (t, &s);
      check_statement (&s);
      canopy_tsql_statement_clear (&s);
    }
  {
    CanopyTsqlStatement s = { 0 };
    canopy_tsql_record_version (&s);
    check_statement (&s);
    canopy_tsql_statement_clear (&s);
    canopy_tsql_blob_logs_page (&s);
    check_statement (&s);
    canopy_tsql_statement_clear (&s);
  }
}

/* A record in one round trip: the child rows reuse the keys' parameters. */
static void
test_record_write (void)
{
  const CanopyTable *devices = canopy_record_table (CANOPY_RECORD_DEVICE);
  const CanopyTable *settings = canopy_record_table (CANOPY_RECORD_SETTING);
  const guint rows[CANOPY_TABLE_MAX_CHILDREN] = { 2, 1 };
  const guint none[CANOPY_TABLE_MAX_CHILDREN] = { 0, 0 };
  const guint too_many[CANOPY_TABLE_MAX_CHILDREN] = { CANOPY_TSQL_MAX_ROWS + 1, 0 };
  CanopyTsqlStatement s = { 0 };

  CU_ASSERT_FATAL (canopy_tsql_record_write (devices, rows, &s));
  check_statement (&s);
  CU_ASSERT_EQUAL (s.n_params, 10 + 2 * 2 + 3);
  CU_ASSERT (g_str_has_prefix (s.sql, "UPDATE devices WITH (UPDLOCK, SERIALIZABLE) SET "));
  /* the old rows that are not among the new ones go, compared byte for
   * byte; then the new rows that are not there yet go in */
  CANOPY_ASSERT_CONTAINS (s.sql,
                          "; DELETE FROM device_groups WHERE device_id = @p1 AND NOT EXISTS ("
                          "SELECT device_groups.position, device_groups.group_name COLLATE "
                          "Latin1_General_100_BIN2, DATALENGTH(device_groups.group_name) "
                          "INTERSECT SELECT v.position, v.group_name COLLATE "
                          "Latin1_General_100_BIN2, DATALENGTH(v.group_name) "
                          "FROM (VALUES (@p11, COALESCE(@p12, N'')), (@p13, COALESCE(@p14, N''))) "
                          "AS v (position, group_name)); "
                          "INSERT INTO device_groups (device_id, position, group_name) "
                          "SELECT @p1, v.position, v.group_name "
                          "FROM (VALUES (@p11, COALESCE(@p12, N'')), (@p13, COALESCE(@p14, N''))) "
                          "AS v (position, group_name) WHERE NOT EXISTS (SELECT 1 FROM "
                          "device_groups WHERE device_id = @p1 AND EXISTS ("
                          "SELECT device_groups.position, device_groups.group_name COLLATE "
                          "Latin1_General_100_BIN2, DATALENGTH(device_groups.group_name) "
                          "INTERSECT SELECT v.position, v.group_name COLLATE "
                          "Latin1_General_100_BIN2, DATALENGTH(v.group_name))); "
                          "DELETE FROM device_addresses WHERE device_id = @p1 AND NOT EXISTS (");
  CANOPY_ASSERT_CONTAINS (s.sql, "FROM (VALUES (@p15, COALESCE(@p16, N''), @p17)) "
                                 "AS v (position, address, prefix_length)");
  CU_ASSERT (g_str_has_suffix (s.declarations, "@p15 BIGINT, @p16 NVARCHAR(MAX), @p17 BIGINT"));
  canopy_tsql_statement_clear (&s);

  /* no rows: the old ones go, nothing is inserted */
  CU_ASSERT_FATAL (canopy_tsql_record_write (devices, none, &s));
  check_statement (&s);
  CU_ASSERT (g_str_has_suffix (s.sql, "DELETE FROM device_addresses WHERE device_id = @p1"));
  CU_ASSERT_PTR_NULL (strstr (s.sql, "INSERT INTO device_groups"));
  canopy_tsql_statement_clear (&s);

  /* a table without children: the upsert alone */
  CU_ASSERT_FATAL (canopy_tsql_record_write (settings, none, &s));
  check_statement (&s);
  CU_ASSERT_EQUAL (s.n_params, 2);
  canopy_tsql_statement_clear (&s);

  /* beyond what one INSERT carries: the caller writes row by row */
  CU_ASSERT_FALSE (canopy_tsql_record_write (devices, too_many, &s));
  CU_ASSERT_PTR_NULL (s.sql);
}

/* What the statements of one table say, word for word. */
static void
test_statement_text (void)
{
  const CanopyTable *devices = canopy_record_table (CANOPY_RECORD_DEVICE);
  const CanopyTable *assignments = canopy_record_table (CANOPY_RECORD_PROGRESS);
  CanopyTsqlStatement s = { 0 };

  canopy_tsql_upsert (devices, &s);
  CU_ASSERT (g_str_has_prefix (s.sql, "UPDATE devices WITH (UPDLOCK, SERIALIZABLE) SET "
                                      "name = COALESCE(@p2, N''), "));
  CANOPY_ASSERT_CONTAINS (s.sql, " WHERE device_id = @p1; IF @@ROWCOUNT = 0 INSERT INTO devices "
                                 "(device_id, name, agent_version, office, first_seen,");
  CANOPY_ASSERT_CONTAINS (s.sql, "first_seen = DATEADD(MICROSECOND, CAST(@p5 % 1000000 AS INT),");
  CU_ASSERT (g_str_has_prefix (s.declarations, "@p1 UNIQUEIDENTIFIER, @p2 NVARCHAR(MAX), "
                                               "@p3 NVARCHAR(MAX), @p4 NVARCHAR(MAX), "
                                               "@p5 BIGINT, "));
  canopy_tsql_statement_clear (&s);

  canopy_tsql_select (assignments, FALSE, &s);
  CU_ASSERT_STRING_EQUAL (s.sql, "SELECT LOWER(CONVERT(NCHAR(36), deployment_id)), "
                                 "LOWER(CONVERT(NCHAR(36), device_id)), "
                                 "CAST(chunks_verified AS BIGINT), done FROM assignments");
  canopy_tsql_statement_clear (&s);
  canopy_tsql_child_select (assignments, 0, TRUE, &s);
  CU_ASSERT_STRING_EQUAL (s.sql, "SELECT source, CAST(bytes AS BIGINT) FROM assignment_bytes "
                                 "WHERE deployment_id = @p1 AND device_id = @p2");
  CU_ASSERT_STRING_EQUAL (s.declarations, "@p1 UNIQUEIDENTIFIER, @p2 UNIQUEIDENTIFIER");
  canopy_tsql_statement_clear (&s);

  canopy_tsql_log_list (canopy_log_table (CANOPY_LOG_AUDIT), &s);
  CU_ASSERT_STRING_EQUAL (s.sql, "SELECT TOP (@p2) id, DATEDIFF_BIG(MICROSECOND, "
                                 "CAST('1970-01-01' AS DATETIME2(6)), at), actor, action, detail "
                                 "FROM audit WHERE id > @p1 ORDER BY id");
  canopy_tsql_statement_clear (&s);
  canopy_tsql_log_append (canopy_log_table (CANOPY_LOG_AUDIT), TRUE, &s);
  CU_ASSERT (g_str_has_prefix (s.sql, "SET IDENTITY_INSERT audit ON; INSERT INTO audit "
                                      "(id, at, actor, action, detail) VALUES (@p1, "));
  CU_ASSERT (g_str_has_suffix (s.sql, "; SET IDENTITY_INSERT audit OFF"));
  canopy_tsql_statement_clear (&s);
}

/* Migration 4: the cluster's registry and leases, keyed and indexed,
 * times as DATETIME2 in UTC. */
static void
test_cluster_tables (void)
{
  g_autofree char *servers = create_table ("servers");
  g_autofree char *leases = create_table ("leases");
  guint n;
  const CanopyTsqlMigration *m = canopy_tsql_migrations (&n);

  CU_ASSERT_PTR_NOT_NULL_FATAL (servers);
  CU_ASSERT_PTR_NOT_NULL_FATAL (leases);
  CANOPY_ASSERT_CONTAINS (servers, "server_id UNIQUEIDENTIFIER NOT NULL CONSTRAINT servers_pk "
                                   "PRIMARY KEY");
  CANOPY_ASSERT_CONTAINS (servers, "started_at DATETIME2(6) NOT NULL");
  CANOPY_ASSERT_CONTAINS (servers, "heartbeat_at DATETIME2(6) NOT NULL");
  CANOPY_ASSERT_CONTAINS (leases, "name NVARCHAR(256) COLLATE Latin1_General_100_BIN2 NOT NULL "
                                  "CONSTRAINT leases_pk PRIMARY KEY");
  CANOPY_ASSERT_CONTAINS (leases, "holder UNIQUEIDENTIFIER NOT NULL");
  CANOPY_ASSERT_CONTAINS (leases, "expires_at DATETIME2(6) NOT NULL");
  CANOPY_ASSERT_CONTAINS (m[n - 1].sql, "CREATE INDEX leases_by_holder ON leases (holder)");
}

/* Every cluster statement takes its values as typed parameters, uses the
 * database's UTC clock, and takes a lease in one MERGE under HOLDLOCK that
 * grants only when free, lapsed or already the caller's. */
static void
test_cluster_statements (void)
{
  CanopyTsqlStatement s = { 0 };

  for (int starting = 0; starting < 2; starting++)
    {
      canopy_tsql_cluster_heartbeat (starting, &s);
      check_statement (&s);
      CU_ASSERT_STRING_EQUAL (s.declarations, "@p1 UNIQUEIDENTIFIER, @p2 NVARCHAR(MAX)");
      CANOPY_ASSERT_CONTAINS (s.sql, "DECLARE @now DATETIME2(6) = SYSUTCDATETIME(); ");
      CANOPY_ASSERT_CONTAINS (s.sql, "MERGE INTO servers WITH (HOLDLOCK) AS s ");
      CU_ASSERT_EQUAL (strstr (s.sql, "started_at = @now") != NULL, starting);
      canopy_tsql_statement_clear (&s);
    }
  canopy_tsql_cluster_take_lease (&s);
  check_statement (&s);
  CU_ASSERT_STRING_EQUAL (s.declarations, "@p1 NVARCHAR(256), @p2 UNIQUEIDENTIFIER, "
                                          "@p3 NVARCHAR(MAX), @p4 INT");
  CANOPY_ASSERT_CONTAINS (s.sql, "MERGE INTO leases WITH (HOLDLOCK) AS l ");
  CANOPY_ASSERT_CONTAINS (s.sql, "WHEN MATCHED AND (l.holder = @p2 OR l.expires_at <= @now) "
                                 "THEN UPDATE SET holder = @p2, ");
  CANOPY_ASSERT_CONTAINS (s.sql, "expires_at = DATEADD(MILLISECOND, @p4, @now)");
  CU_ASSERT (g_str_has_suffix (s.sql, "DATEDIFF_BIG(MICROSECOND, @now, expires_at) "
                                      "FROM leases WHERE name = @p1"));
  canopy_tsql_statement_clear (&s);
  canopy_tsql_cluster_leave (&s);
  check_statement (&s);
  CU_ASSERT_STRING_EQUAL (s.sql, "DELETE FROM leases WHERE holder = @p1; "
                                 "DELETE FROM servers WHERE server_id = @p1");
  canopy_tsql_statement_clear (&s);
  canopy_tsql_cluster_list_servers (&s);
  check_statement (&s);
  CANOPY_ASSERT_CONTAINS (s.sql, "DATEDIFF_BIG(MICROSECOND, heartbeat_at, @now) FROM servers");
  canopy_tsql_statement_clear (&s);
  canopy_tsql_cluster_list_leases (&s);
  check_statement (&s);
  CU_ASSERT (g_str_has_suffix (s.sql, " FROM leases ORDER BY name"));
  canopy_tsql_statement_clear (&s);
}

CANOPY_TEST_SUITE (tsql_schema, "tsql-schema", NULL, NULL,
                   { "types of columns and parameters", test_types },
                   { "migrations numbered in order", test_migrations_in_order },
                   { "every table and column created", test_every_table_created },
                   { "statements take values only as parameters",
                     test_statements_take_parameters },
                   { "a record in one statement", test_record_write },
                   { "statement text", test_statement_text },
                   { "the cluster's tables", test_cluster_tables },
                   { "the cluster's statements", test_cluster_statements })
