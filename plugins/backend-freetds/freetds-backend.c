/* The SQL Server backend through FreeTDS db-lib: the same records and logs
 * as the SQLite backend in two T-SQL tables, every batch in one
 * transaction, reconnection with backoff when the server goes away. The
 * password is read from a file at each login and wiped after it; it never
 * reaches a log or an error message. */
#include "build-config.h"

#include "freetds-backend.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sybdb.h>
#include <sybfront.h>
#include <sys/stat.h>

#define RETRY_FIRST_S 1
#define RETRY_MAX_S 60

/* Each step takes the schema from the version before it to its own. */
static const char *const migrations[] = {
  /* 1 */
  "CREATE TABLE canopy_records (kind INT NOT NULL, [key] NVARCHAR(256) NOT NULL,"
  "  value VARBINARY(MAX) NOT NULL, CONSTRAINT canopy_records_pk PRIMARY KEY (kind, [key]));"
  "CREATE TABLE canopy_logs (id BIGINT IDENTITY(1,1) PRIMARY KEY, kind INT NOT NULL,"
  "  value VARBINARY(MAX) NOT NULL);"
  "CREATE INDEX canopy_logs_by_kind ON canopy_logs (kind, id);",
};
#define SCHEMA_VERSION ((int) G_N_ELEMENTS (migrations))

struct _CanopyFreetdsBackend {
  CanopyFreetdsSettings settings;
  DBPROCESS *dbproc;
  char *last_error;     /* what db-lib or the server said last */
  gint64 retry_at;      /* monotonic µs before which no reconnect is tried */
  guint retry_s;
  gboolean in_transaction;
};

/* db-lib's handlers are process-wide; they report to the backend that is
 * running a call on this thread. */
static __thread CanopyFreetdsBackend *current;

static int
on_dblib_error (DBPROCESS *dbproc, int severity, int dberr, int oserr, char *dberrstr,
                char *oserrstr)
{
  if (current != NULL && dberrstr != NULL)
    {
      g_free (current->last_error);
      current->last_error = g_strdup (dberrstr);
    }
  return INT_CANCEL;
}

static int
on_server_message (DBPROCESS *dbproc, DBINT msgno, int msgstate, int severity, char *msgtext,
                   char *srvname, char *procname, int line)
{
  /* Severity 10 and below are informational ("changed database context"). */
  if (current != NULL && severity > 10 && msgtext != NULL)
    {
      g_free (current->last_error);
      current->last_error = g_strdup (msgtext);
    }
  return 0;
}

static void
ensure_dblib (void)
{
  static gsize initialised = 0;

  if (g_once_init_enter (&initialised))
    {
      dbinit ();
      dberrhandle (on_dblib_error);
      dbmsghandle (on_server_message);
      g_once_init_leave (&initialised, 1);
    }
}

void
canopy_freetds_settings_clear (CanopyFreetdsSettings *s)
{
  g_clear_pointer (&s->host, g_free);
  g_clear_pointer (&s->instance, g_free);
  g_clear_pointer (&s->database, g_free);
  g_clear_pointer (&s->user, g_free);
  g_clear_pointer (&s->password_file, g_free);
  g_clear_pointer (&s->tds_version, g_free);
}

char *
canopy_freetds_settings_describe (const CanopyFreetdsSettings *s)
{
  if (s->instance != NULL)
    return g_strdup_printf ("%s\\%s, database %s", s->host, s->instance, s->database);
  return g_strdup_printf ("%s port %u, database %s", s->host, s->port, s->database);
}

static gboolean
fail (CanopyFreetdsBackend *b, CanopyBackendError code, const char *doing, GError **error)
{
  g_autofree char *where = canopy_freetds_settings_describe (&b->settings);

  g_set_error (error, CANOPY_BACKEND_ERROR, code, _("SQL Server %s: %s failed (%s)"), where,
               doing, b->last_error != NULL ? b->last_error : _("no reason given"));
  return FALSE;
}

/* The password, from a file only its owner can read. */
static char *
read_password (const CanopyFreetdsSettings *s, GError **error)
{
  GStatBuf st;
  char *text = NULL;
  gsize length = 0;
  g_autoptr (GError) local_error = NULL;

  if (g_stat (s->password_file, &st) != 0
      || !g_file_get_contents (s->password_file, &text, &length, &local_error))
    {
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNAVAILABLE,
                   _("Cannot read the SQL Server password file %s; create it with the "
                     "password on one line, mode 0600"), s->password_file);
      return NULL;
    }
  if ((st.st_mode & 077) != 0)
    {
      memset (text, 0, length);
      g_free (text);
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_UNAVAILABLE,
                   _("Refusing the SQL Server password file %s: other users can read it. Run "
                     "\"chmod 600 %s\""), s->password_file, s->password_file);
      return NULL;
    }
  g_strchomp (text);
  return text;
}

static int
tds_version (const char *text)
{
  static const struct {
    const char *name;
    int version;
  } versions[] = {
    { "7.0", DBVERSION_70 }, { "7.1", DBVERSION_71 }, { "7.2", DBVERSION_72 },
    { "7.3", DBVERSION_73 }, { "7.4", DBVERSION_74 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (versions); i++)
    if (g_strcmp0 (text, versions[i].name) == 0)
      return versions[i].version;
  return DBVERSION_74;
}

static gboolean
run (CanopyFreetdsBackend *b, const char *sql, const char *doing, GError **error);

static gboolean
connect_now (CanopyFreetdsBackend *b, GError **error)
{
  const CanopyFreetdsSettings *s = &b->settings;
  LOGINREC *login;
  char *password;
  g_autofree char *server = NULL;

  password = read_password (s, error);
  if (password == NULL)
    return FALSE;
  login = dblogin ();
  DBSETLUSER (login, s->user);
  DBSETLPWD (login, password);
  DBSETLAPP (login, "canopyd");
  DBSETLDBNAME (login, s->database);
  DBSETLVERSION (login, tds_version (s->tds_version));
  DBSETLENCRYPT (login, s->encrypt);
  DBSETLCHARSET (login, "UTF-8");
  memset (password, 0, strlen (password));
  g_free (password);
  server = s->instance != NULL ? g_strdup_printf ("%s\\%s", s->host, s->instance)
                               : g_strdup_printf ("%s:%u", s->host, s->port);
  dbsetlogintime ((int) s->login_timeout_s);
  dbsettime ((int) s->query_timeout_s);
  b->dbproc = dbopen (login, server);
  /* The login record holds the password: free it at once. */
  dbloginfree (login);
  if (b->dbproc == NULL)
    return fail (b, CANOPY_BACKEND_ERROR_UNAVAILABLE, _("logging in"), error);
  /* Whole VARBINARY(MAX) values, never cut at the default 4 KiB. */
  return run (b, "SET TEXTSIZE 2147483647; SET XACT_ABORT ON", _("setting up the session"),
              error);
}

/* Reconnects when the link died, with a growing pause between attempts so
 * an outage is not met by a storm of logins. */
static gboolean
ensure_connected (CanopyFreetdsBackend *b, GError **error)
{
  gint64 now = g_get_monotonic_time ();

  if (b->dbproc != NULL && !dbdead (b->dbproc))
    return TRUE;
  if (b->dbproc != NULL)
    {
      dbclose (b->dbproc);
      b->dbproc = NULL;
      b->in_transaction = FALSE;
    }
  if (now < b->retry_at)
    return fail (b, CANOPY_BACKEND_ERROR_UNAVAILABLE, _("reconnecting (waiting before the next "
                                                         "attempt)"), error);
  if (!connect_now (b, error))
    {
      b->retry_at = now + (gint64) b->retry_s * G_USEC_PER_SEC;
      b->retry_s = MIN (b->retry_s * 2, RETRY_MAX_S);
      return FALSE;
    }
  b->retry_s = RETRY_FIRST_S;
  b->retry_at = 0;
  return TRUE;
}

typedef gboolean (*RowFunc) (DBPROCESS *dbproc, gpointer user_data);

/* Sends @sql and reads every result set, handing rows to @row. */
static gboolean
query (CanopyFreetdsBackend *b, const char *sql, RowFunc row, gpointer user_data,
       const char *doing, GError **error)
{
  RETCODE rc;
  gboolean go_on = TRUE;

  current = b;
  g_clear_pointer (&b->last_error, g_free);
  if (!ensure_connected (b, error))
    return FALSE;
  if (dbcmd (b->dbproc, sql) == FAIL || dbsqlexec (b->dbproc) == FAIL)
    {
      CanopyBackendError code = dbdead (b->dbproc) ? CANOPY_BACKEND_ERROR_UNAVAILABLE
                                                   : CANOPY_BACKEND_ERROR_FAILED;
      dbcancel (b->dbproc);
      return fail (b, code, doing, error);
    }
  while ((rc = dbresults (b->dbproc)) != NO_MORE_RESULTS)
    {
      if (rc == FAIL)
        {
          dbcancel (b->dbproc);
          return fail (b, CANOPY_BACKEND_ERROR_FAILED, doing, error);
        }
      while (dbnextrow (b->dbproc) != NO_MORE_ROWS)
        if (go_on && row != NULL)
          go_on = row (b->dbproc, user_data);
    }
  return TRUE;
}

static gboolean
run (CanopyFreetdsBackend *b, const char *sql, const char *doing, GError **error)
{
  return query (b, sql, NULL, NULL, doing, error);
}

/* T-SQL literals: N'...' with quotes doubled, 0x... for bytes. Every value
 * goes through these two functions. */
static void
append_text (GString *sql, const char *text)
{
  g_string_append (sql, "N'");
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '\'')
        g_string_append_c (sql, '\'');
      g_string_append_c (sql, *p);
    }
  g_string_append_c (sql, '\'');
}

static void
append_bytes (GString *sql, const guint8 *data, gsize length)
{
  g_string_append (sql, "0x");
  for (gsize i = 0; i < length; i++)
    g_string_append_printf (sql, "%02X", data[i]);
}

static gboolean
read_int (DBPROCESS *dbproc, gpointer user_data)
{
  DBINT value = 0;

  if (dbdatlen (dbproc, 1) > 0)
    memcpy (&value, dbdata (dbproc, 1), sizeof value);
  *(int *) user_data = value;
  return TRUE;
}

static gboolean
migrate (CanopyFreetdsBackend *b, GError **error)
{
  int version = 0;

  if (!run (b, "IF OBJECT_ID('canopy_meta') IS NULL "
               "CREATE TABLE canopy_meta (name NVARCHAR(64) PRIMARY KEY, value INT NOT NULL)",
            _("creating the schema table"), error)
      || !query (b, "SELECT CAST(value AS INT) FROM canopy_meta WHERE name = 'schema_version'",
                 read_int, &version, _("reading the schema version"), error))
    return FALSE;
  if (version > SCHEMA_VERSION)
    {
      g_autofree char *where = canopy_freetds_settings_describe (&b->settings);
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_TOO_NEW,
                   _("The database on SQL Server %s has schema version %d, written by a newer "
                     "canopy; this one knows up to version %d. Upgrade canopy; the database "
                     "was not touched"), where, version, SCHEMA_VERSION);
      return FALSE;
    }
  for (int v = version; v < SCHEMA_VERSION; v++)
    {
      g_autofree char *sql = g_strdup_printf (
        "BEGIN TRANSACTION; %s; "
        "MERGE canopy_meta AS m USING (SELECT 'schema_version' AS name) AS s ON m.name = s.name "
        "WHEN MATCHED THEN UPDATE SET value = %d "
        "WHEN NOT MATCHED THEN INSERT (name, value) VALUES ('schema_version', %d); "
        "COMMIT TRANSACTION",
        migrations[v], v + 1, v + 1);
      if (!run (b, sql, _("upgrading the schema"), error))
        return FALSE;
    }
  return TRUE;
}

CanopyFreetdsBackend *
canopy_freetds_backend_open (const CanopyFreetdsSettings *settings, GError **error)
{
  CanopyFreetdsBackend *b = g_new0 (CanopyFreetdsBackend, 1);

  ensure_dblib ();
  b->settings = *settings;
  b->settings.host = g_strdup (settings->host);
  b->settings.instance = g_strdup (settings->instance);
  b->settings.database = g_strdup (settings->database);
  b->settings.user = g_strdup (settings->user);
  b->settings.password_file = g_strdup (settings->password_file);
  b->settings.tds_version = g_strdup (settings->tds_version);
  b->retry_s = RETRY_FIRST_S;
  current = b;
  if (!connect_now (b, error) || !migrate (b, error))
    {
      canopy_freetds_backend_close (b);
      return NULL;
    }
  return b;
}

void
canopy_freetds_backend_close (CanopyFreetdsBackend *b)
{
  if (b == NULL)
    return;
  if (current == b)
    current = NULL;
  if (b->dbproc != NULL)
    dbclose (b->dbproc);
  canopy_freetds_settings_clear (&b->settings);
  g_free (b->last_error);
  g_free (b);
}

gboolean
canopy_freetds_backend_check_health (CanopyFreetdsBackend *b, GError **error)
{
  return run (b, "SELECT 1", _("checking health"), error);
}

static gboolean
read_text (DBPROCESS *dbproc, gpointer user_data)
{
  g_free (*(char **) user_data);
  *(char **) user_data = g_strndup ((const char *) dbdata (dbproc, 1), (gsize) dbdatlen (dbproc, 1));
  return FALSE;
}

char *
canopy_freetds_backend_get_server_version (CanopyFreetdsBackend *b, GError **error)
{
  char *version = NULL;

  if (!query (b, "SELECT CAST(SERVERPROPERTY('ProductVersion') AS NVARCHAR(64))", read_text,
              &version, _("reading the server version"), error))
    return NULL;
  return g_strdup_printf ("Microsoft SQL Server %s", version != NULL ? version : "?");
}

guint
canopy_freetds_backend_get_schema_version (const CanopyFreetdsBackend *b)
{
  return SCHEMA_VERSION;
}

gboolean
canopy_freetds_backend_begin (CanopyFreetdsBackend *b, GError **error)
{
  if (!run (b, "BEGIN TRANSACTION", _("starting a transaction"), error))
    return FALSE;
  b->in_transaction = TRUE;
  return TRUE;
}

gboolean
canopy_freetds_backend_commit (CanopyFreetdsBackend *b, GError **error)
{
  b->in_transaction = FALSE;
  return run (b, "COMMIT TRANSACTION", _("committing"), error);
}

void
canopy_freetds_backend_rollback (CanopyFreetdsBackend *b)
{
  b->in_transaction = FALSE;
  run (b, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION", _("rolling back"), NULL);
}

/* A batch travels as one T-SQL script inside one transaction (its own, or
 * the caller's): the server applies all of it or, with XACT_ABORT, none. */
static gboolean
run_batch (CanopyFreetdsBackend *b, GString *body, const char *doing, GError **error)
{
  g_autoptr (GString) sql = g_string_new (NULL);
  gboolean own = !b->in_transaction;

  if (own)
    g_string_append (sql, "BEGIN TRANSACTION;\n");
  g_string_append (sql, body->str);
  if (own)
    g_string_append (sql, "COMMIT TRANSACTION;\n");
  if (run (b, sql->str, doing, error))
    return TRUE;
  if (own)
    canopy_freetds_backend_rollback (b);
  return FALSE;
}

gboolean
canopy_freetds_backend_put (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                            const CanopyRecord *records, gsize n, gboolean replace_all,
                            GError **error)
{
  g_autoptr (GString) body = g_string_new (NULL);

  if (replace_all)
    g_string_append_printf (body, "DELETE FROM canopy_records WHERE kind = %d;\n", kind);
  for (gsize i = 0; i < n; i++)
    {
      GString *key = g_string_new (NULL);
      GString *value = g_string_new (NULL);

      append_text (key, records[i].key);
      append_bytes (value, g_variant_get_data (records[i].value),
                    g_variant_get_size (records[i].value));
      g_string_append_printf (body,
                              "UPDATE canopy_records SET value = %s WHERE kind = %d AND [key] = %s;"
                              "\nIF @@ROWCOUNT = 0 INSERT INTO canopy_records (kind, [key], value)"
                              " VALUES (%d, %s, %s);\n",
                              value->str, kind, key->str, kind, key->str, value->str);
      g_string_free (key, TRUE);
      g_string_free (value, TRUE);
    }
  return run_batch (b, body, _("writing records"), error);
}

typedef struct {
  GBytes *value;
} GetState;

static gboolean
read_value (DBPROCESS *dbproc, gpointer user_data)
{
  GetState *state = user_data;

  state->value = g_bytes_new (dbdata (dbproc, 1), (gsize) dbdatlen (dbproc, 1));
  return FALSE;
}

GBytes *
canopy_freetds_backend_get (CanopyFreetdsBackend *b, CanopyRecordKind kind, const char *key,
                            GError **error)
{
  g_autoptr (GString) sql = g_string_new (NULL);
  GetState state = { NULL };

  g_string_append_printf (sql, "SELECT value FROM canopy_records WHERE kind = %d AND [key] = ",
                          kind);
  append_text (sql, key);
  if (!query (b, sql->str, read_value, &state, _("reading a record"), error))
    return NULL;
  if (state.value == NULL)
    g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND,
                 _("No %s record \"%s\""), canopy_record_kind_to_string (kind), key);
  return state.value;
}

typedef struct {
  CanopyRecordFunc func;
  gpointer user_data;
} ListState;

static gboolean
read_record (DBPROCESS *dbproc, gpointer user_data)
{
  ListState *state = user_data;
  g_autofree char *key = g_strndup ((const char *) dbdata (dbproc, 1),
                                    (gsize) dbdatlen (dbproc, 1));

  return state->func (key, dbdata (dbproc, 2), (gsize) dbdatlen (dbproc, 2), state->user_data);
}

gboolean
canopy_freetds_backend_list (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                             CanopyRecordFunc func, gpointer user_data, GError **error)
{
  g_autofree char *sql = g_strdup_printf ("SELECT [key], value FROM canopy_records WHERE kind = %d"
                                          " ORDER BY [key]", kind);
  ListState state = { func, user_data };

  return query (b, sql, read_record, &state, _("listing records"), error);
}

gboolean
canopy_freetds_backend_remove (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                               const char *const *keys, GError **error)
{
  g_autoptr (GString) body = g_string_new (NULL);

  for (const char *const *key = keys; *key != NULL; key++)
    {
      g_string_append_printf (body, "DELETE FROM canopy_records WHERE kind = %d AND [key] = ",
                              kind);
      append_text (body, *key);
      g_string_append (body, ";\n");
    }
  return body->len == 0 || run_batch (b, body, _("removing records"), error);
}

gboolean
canopy_freetds_backend_append (CanopyFreetdsBackend *b, CanopyLogKind kind,
                               GVariant *const *entries, gsize n, GError **error)
{
  g_autoptr (GString) body = g_string_new (NULL);

  for (gsize i = 0; i < n; i++)
    {
      g_string_append_printf (body, "INSERT INTO canopy_logs (kind, value) VALUES (%d, ", kind);
      append_bytes (body, g_variant_get_data (entries[i]), g_variant_get_size (entries[i]));
      g_string_append (body, ");\n");
    }
  return body->len == 0 || run_batch (b, body, _("appending to a log"), error);
}

typedef struct {
  CanopyLogFunc func;
  gpointer user_data;
} LogState;

static gboolean
read_entry (DBPROCESS *dbproc, gpointer user_data)
{
  LogState *state = user_data;
  gint64 id = 0;

  if (dbdatlen (dbproc, 1) == sizeof id)
    memcpy (&id, dbdata (dbproc, 1), sizeof id);
  return state->func (id, dbdata (dbproc, 2), (gsize) dbdatlen (dbproc, 2), state->user_data);
}

gboolean
canopy_freetds_backend_list_log (CanopyFreetdsBackend *b, CanopyLogKind kind, gint64 after,
                                 guint limit, CanopyLogFunc func, gpointer user_data,
                                 GError **error)
{
  g_autofree char *top = limit > 0 ? g_strdup_printf ("TOP (%u) ", limit) : g_strdup ("");
  g_autofree char *sql = g_strdup_printf ("SELECT %sid, value FROM canopy_logs WHERE kind = %d "
                                          "AND id > %" G_GINT64_FORMAT " ORDER BY id",
                                          top, kind, after);
  LogState state = { func, user_data };

  return query (b, sql, read_entry, &state, _("listing a log"), error);
}
