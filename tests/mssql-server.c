/* The SQL Server of CANOPY_TEST_MSSQL_*: its settings, and emptying its
 * database between runs (the conformance suite expects an empty one). */
#include "build-config.h"

#include "tests/mssql-server.h"

#include <string.h>

gboolean
canopy_test_mssql_settings (CanopyFreetdsSettings *s)
{
  const char *host = g_getenv ("CANOPY_TEST_MSSQL_HOST");

  if (host == NULL)
    return FALSE;
  memset (s, 0, sizeof *s);
  s->host = g_strdup (host);
  s->port = (guint) g_ascii_strtoull (g_getenv ("CANOPY_TEST_MSSQL_PORT") ?: "1433", NULL, 10);
  s->database = g_strdup (g_getenv ("CANOPY_TEST_MSSQL_DATABASE") ?: "canopy_test");
  s->user = g_strdup (g_getenv ("CANOPY_TEST_MSSQL_USER") ?: "canopy");
  s->password_file = g_strdup (g_getenv ("CANOPY_TEST_MSSQL_PASSWORD_FILE") ?: "/dev/null");
  s->tds_version = g_strdup ("7.4");
  s->encrypt = TRUE;
  s->login_timeout_s = 10;
  s->query_timeout_s = 120;
  return TRUE;
}

static void
append_drop (GString *sql, const char *table)
{
  g_string_append_printf (sql, "IF OBJECT_ID(N'%s', N'U') IS NOT NULL DROP TABLE %s; ", table,
                          table);
}

gboolean
canopy_test_mssql_drop_everything (const CanopyFreetdsSettings *s, GError **error)
{
  static const char *const others[] = { "leases", "servers", "canopy_records", "canopy_logs", "canopy_meta",
                                        "schema_migrations" };
  g_autoptr (GString) sql = g_string_new (NULL);
  g_autofree char *done = NULL;

  /* later kinds reference earlier ones (a token its admin) */
  for (int kind = CANOPY_N_RECORD_KINDS - 1; kind >= 0; kind--)
    {
      const CanopyTable *t = canopy_record_table ((CanopyRecordKind) kind);
      for (guint c = 0; c < t->n_children; c++)
        append_drop (sql, t->children[c].name);
      append_drop (sql, t->name);
    }
  for (CanopyLogKind kind = 0; kind < CANOPY_N_LOG_KINDS; kind++)
    append_drop (sql, canopy_log_table (kind)->name);
  for (gsize i = 0; i < G_N_ELEMENTS (others); i++)
    append_drop (sql, others[i]);
  done = canopy_freetds_run_script (s, sql->str, error);
  return done != NULL;
}
