/* The SQL Server backend through FreeTDS db-lib: canopy's records as
 * typed T-SQL tables (see tsql-schema.c and docs/schema.md), every value
 * sent as a typed parameter of sp_executesql, numbered migrations applied
 * at open in one transaction under an application lock (several canopyd
 * may start at once), every batch in one transaction, reconnection with
 * backoff when the server goes away. The password is read from a file at
 * each login and wiped after it; it never reaches a log or an error
 * message. */
#include "build-config.h"

#include "freetds-backend.h"
#include "tsql-schema.h"

#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <inttypes.h>
#include <string.h>
#include <sybdb.h>
#include <sybfront.h>
#include <sys/stat.h>

#define RETRY_FIRST_S 1
#define RETRY_MAX_S 60

/* SQL Server's message number for "chosen as the deadlock victim": the
 * transaction was rolled back and may simply be run again. */
#define DEADLOCK_VICTIM 1205
#define DEADLOCK_RETRIES 3

struct _CanopyFreetdsBackend {
  CanopyFreetdsSettings settings;
  DBPROCESS *dbproc;
  char *last_error;     /* what db-lib or the server said last */
  int last_message;     /* the server's message number with it, or 0 */
  gint64 retry_at;      /* monotonic µs before which no reconnect is tried */
  guint retry_s;
  gboolean in_transaction;
  /* the last lease read, which take_lease() hands out until the next call */
  char *lease_name, *lease_holder, *lease_detail;
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
      current->last_message = (int) msgno;
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

static gboolean read_results (CanopyFreetdsBackend *b, RowFunc row, gpointer user_data,
                              const char *doing, GError **error);

static gboolean
prepare_call (CanopyFreetdsBackend *b, GError **error)
{
  current = b;
  g_clear_pointer (&b->last_error, g_free);
  b->last_message = 0;
  return ensure_connected (b, error);
}

static gboolean
call_failed (CanopyFreetdsBackend *b, const char *doing, GError **error)
{
  CanopyBackendError code = dbdead (b->dbproc) ? CANOPY_BACKEND_ERROR_UNAVAILABLE
                                               : CANOPY_BACKEND_ERROR_FAILED;

  if (b->last_message == DEADLOCK_VICTIM)
    code = CANOPY_BACKEND_ERROR_LOCKED;
  if (!dbdead (b->dbproc))
    dbcancel (b->dbproc);
  return fail (b, code, doing, error);
}

/* Sends @sql, a batch holding no values (DDL, transaction control), and
 * reads every result set, handing rows to @row. */
static gboolean
query (CanopyFreetdsBackend *b, const char *sql, RowFunc row, gpointer user_data,
       const char *doing, GError **error)
{
  if (!prepare_call (b, error))
    return FALSE;
  if (dbcmd (b->dbproc, sql) == FAIL || dbsqlexec (b->dbproc) == FAIL)
    return call_failed (b, doing, error);
  return read_results (b, row, user_data, doing, error);
}

static gboolean
read_results (CanopyFreetdsBackend *b, RowFunc row, gpointer user_data, const char *doing,
              GError **error)
{
  RETCODE rc;
  gboolean go_on = TRUE;

  while ((rc = dbresults (b->dbproc)) != NO_MORE_RESULTS)
    {
      STATUS next;

      if (rc == FAIL)
        return call_failed (b, doing, error);
      /* Every row is read, even after @row had enough: the next call
       * needs the connection idle. */
      while ((next = dbnextrow (b->dbproc)) == REG_ROW)
        if (go_on && row != NULL)
          go_on = row (b->dbproc, user_data);
      if (next == FAIL)
        return call_failed (b, doing, error);
    }
  return TRUE;
}

static gboolean
run (CanopyFreetdsBackend *b, const char *sql, const char *doing, GError **error)
{
  return query (b, sql, NULL, NULL, doing, error);
}

/* --- parameters ---------------------------------------------------------- */

#define MAX_PARAMS CANOPY_TSQL_MAX_PARAMS

/* What db-lib sends for one parameter. @data points into the caller's
 * values, which outlive the call; a number travels from @integer or @bit,
 * whose address execute() takes once the parameters stop growing. */
typedef struct {
  char name[8];
  int type;
  DBINT length; /* bytes; 0: NULL; -1: a fixed-size type */
  const void *data;
  DBBIGINT integer;
  DBBIT bit;
} Param;

/* Parameters: a GArray of Param, numbered @p1, @p2, ... in order. */
static GArray *
params_new (void)
{
  return g_array_new (FALSE, TRUE, sizeof (Param));
}

static Param *
next_param (GArray *params)
{
  Param *p;

  g_array_set_size (params, params->len + 1);
  p = &g_array_index (params, Param, params->len - 1);
  g_snprintf (p->name, sizeof p->name, "@p%u", params->len);
  return p;
}

/* Text goes as NVARCHAR (db-lib turns SYBVARCHAR into that for TDS 7 and
 * converts UTF-8 to UCS-2); beyond NVARCHAR(4000), as NTEXT, which the
 * server reads into an NVARCHAR(MAX) parameter. An empty string travels as
 * NULL: the statements read NULL text back as empty. */
static void
param_text (Param *p, const char *text, gsize length)
{
  p->type = length > 4000 ? SYBNTEXT : SYBVARCHAR;
  p->length = (DBINT) length;
  p->data = length > 0 ? text : NULL;
}

static void
param_integer (Param *p, gint64 value)
{
  p->type = SYBINT8;
  p->integer = value;
  p->length = -1;
}

static void
params_add (GArray *params, const CanopyColumn *column, GVariant *value)
{
  Param *p = next_param (params);

  switch (column->type)
    {
    case CANOPY_COLUMN_TEXT:
    case CANOPY_COLUMN_UUID:
      {
        gsize length;
        const char *text = g_variant_get_string (value, &length);
        param_text (p, text, length);
      }
      break;
    case CANOPY_COLUMN_INT32:
      param_integer (p, g_variant_is_of_type (value, G_VARIANT_TYPE_BYTE)
                          ? g_variant_get_byte (value)
                          : g_variant_get_uint32 (value));
      break;
    case CANOPY_COLUMN_INT64:
      param_integer (p, g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64)
                          ? (gint64) g_variant_get_uint64 (value)
                          : g_variant_get_int64 (value));
      break;
    case CANOPY_COLUMN_TIME:
      param_integer (p, g_variant_get_int64 (value));
      if (p->integer == 0)
        p->length = 0; /* never: NULL */
      break;
    case CANOPY_COLUMN_BOOL:
      p->type = SYBBIT;
      p->bit = g_variant_get_boolean (value) ? 1 : 0;
      p->length = -1;
      break;
    case CANOPY_COLUMN_BYTES:
      /* beyond VARBINARY(8000), as IMAGE into the VARBINARY(MAX) */
      p->type = g_variant_get_size (value) > 8000 ? SYBIMAGE : SYBVARBINARY;
      p->length = (DBINT) g_variant_get_size (value);
      p->data = p->length > 0 ? g_variant_get_data (value) : NULL;
      break;
    }
}

static void
params_add_tuple (GArray *params, const CanopyColumn *columns, guint n, GVariant *tuple)
{
  for (guint i = 0; i < n; i++)
    {
      /* The child stays alive in @tuple, which the caller holds. */
      g_autoptr (GVariant) value = g_variant_get_child_value (tuple, i);
      params_add (params, &columns[i], value);
    }
}

static gboolean
rpc_param (CanopyFreetdsBackend *b, const char *name, int type, DBINT length, const void *data)
{
  return dbrpcparam (b->dbproc, name, 0, type, length == 0 ? 0 : -1, length,
                     (BYTE *) data)
         != FAIL;
}

/* Runs @statement through sp_executesql with @params, handing the rows of
 * its result sets to @row. */
static gboolean
execute (CanopyFreetdsBackend *b, const CanopyTsqlStatement *statement, GArray *params,
         RowFunc row, gpointer user_data, const char *doing, GError **error)
{
  gboolean ok;
  Param text;

  g_return_val_if_fail ((params != NULL ? params->len : 0) == statement->n_params, FALSE);
  g_return_val_if_fail (statement->n_params <= MAX_PARAMS, FALSE);
  if (!prepare_call (b, error))
    return FALSE;
  ok = dbrpcinit (b->dbproc, "sp_executesql", 0) != FAIL;
  param_text (&text, statement->sql, strlen (statement->sql));
  ok = ok && rpc_param (b, "@stmt", text.type, text.length, text.data);
  if (ok && statement->n_params > 0)
    {
      param_text (&text, statement->declarations, strlen (statement->declarations));
      ok = rpc_param (b, "@params", text.type, text.length, text.data);
    }
  for (guint i = 0; ok && params != NULL && i < params->len; i++)
    {
      Param *p = &g_array_index (params, Param, i);
      const void *data = p->data;

      if (p->type == SYBINT8)
        data = &p->integer;
      else if (p->type == SYBBIT)
        data = &p->bit;
      ok = rpc_param (b, p->name, p->type, p->length, data);
    }
  if (!ok)
    {
      /* drop the half-built call */
      dbrpcinit (b->dbproc, "", DBRPCRESET);
      return fail (b, CANOPY_BACKEND_ERROR_FAILED, doing, error);
    }
  if (dbrpcsend (b->dbproc) == FAIL || dbsqlok (b->dbproc) == FAIL)
    return call_failed (b, doing, error);
  return read_results (b, row, user_data, doing, error);
}

/* --- reading rows -------------------------------------------------------- */

static gint64
cell_integer (DBPROCESS *dbproc, int column)
{
  const BYTE *data = dbdata (dbproc, column);

  switch (dbdatlen (dbproc, column))
    {
    case 8:
      {
        gint64 v;
        memcpy (&v, data, sizeof v);
        return v;
      }
    case 4:
      {
        gint32 v;
        memcpy (&v, data, sizeof v);
        return v;
      }
    case 2:
      {
        gint16 v;
        memcpy (&v, data, sizeof v);
        return v;
      }
    case 1:
      return data[0];
    default:
      return 0; /* NULL */
    }
}

/* Column @column (from 1) of the current row as a value of @c's type. */
static GVariant *
cell_value (DBPROCESS *dbproc, int column, const CanopyColumn *c)
{
  const BYTE *data = dbdata (dbproc, column);
  gsize length = (gsize) MAX (dbdatlen (dbproc, column), 0);

  switch (c->type)
    {
    case CANOPY_COLUMN_TEXT:
    case CANOPY_COLUMN_UUID:
      if (data == NULL || length == 0)
        return g_variant_new_string ("");
      return g_variant_new_take_string (g_utf8_make_valid ((const char *) data, (gssize) length));
    case CANOPY_COLUMN_INT32:
      if (g_str_equal (c->variant_type, "y"))
        return g_variant_new_byte ((guint8) cell_integer (dbproc, column));
      return g_variant_new_uint32 ((guint32) cell_integer (dbproc, column));
    case CANOPY_COLUMN_INT64:
      if (g_str_equal (c->variant_type, "t"))
        return g_variant_new_uint64 ((guint64) cell_integer (dbproc, column));
      return g_variant_new_int64 (cell_integer (dbproc, column));
    case CANOPY_COLUMN_TIME:
      return g_variant_new_int64 (cell_integer (dbproc, column));
    case CANOPY_COLUMN_BOOL:
      return g_variant_new_boolean (cell_integer (dbproc, column) != 0);
    case CANOPY_COLUMN_BYTES:
      /* copied: db-lib reuses its row buffer */
      if (data == NULL)
        return g_variant_new_array (G_VARIANT_TYPE_BYTE, NULL, 0);
      return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, length, 1);
    }
  g_assert_not_reached ();
}

static GVariant *
cell_tuple (DBPROCESS *dbproc, int first, const CanopyColumn *columns, guint n)
{
  g_autofree GVariant **values = g_new0 (GVariant *, n);

  for (guint i = 0; i < n; i++)
    values[i] = cell_value (dbproc, first + (int) i, &columns[i]);
  return g_variant_ref_sink (g_variant_new_tuple (values, n));
}

/* Rows as pairs of tuples: the first @n_first columns (keys, or a log's
 * id), then the next @n_second. */
typedef struct {
  const CanopyColumn *first;
  guint n_first;
  const CanopyColumn *second;
  guint n_second;
  GPtrArray *rows; /* of Row */
} Collect;

typedef struct {
  GVariant *first;  /* (nullable) */
  GVariant *second;
} Row;

static void
row_free (Row *row)
{
  g_clear_pointer (&row->first, g_variant_unref);
  g_clear_pointer (&row->second, g_variant_unref);
  g_free (row);
}

static void
collect_init (Collect *c, const CanopyColumn *first, guint n_first, const CanopyColumn *second,
              guint n_second)
{
  c->first = first;
  c->n_first = n_first;
  c->second = second;
  c->n_second = n_second;
  c->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) row_free);
}

static gboolean
collect_row (DBPROCESS *dbproc, gpointer user_data)
{
  Collect *c = user_data;
  Row *row = g_new0 (Row, 1);

  if (c->n_first > 0)
    row->first = cell_tuple (dbproc, 1, c->first, c->n_first);
  row->second = cell_tuple (dbproc, 1 + (int) c->n_first, c->second, c->n_second);
  g_ptr_array_add (c->rows, row);
  return TRUE;
}

static gboolean
read_first_integer (DBPROCESS *dbproc, gpointer user_data)
{
  *(gint64 *) user_data = cell_integer (dbproc, 1);
  return FALSE;
}

/* --- transactions -------------------------------------------------------- */

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
  if (run (b, "COMMIT TRANSACTION", _("committing"), error))
    return TRUE;
  run (b, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION", _("rolling back"), NULL);
  return FALSE;
}

void
canopy_freetds_backend_rollback (CanopyFreetdsBackend *b)
{
  b->in_transaction = FALSE;
  run (b, "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION", _("rolling back"), NULL);
}

typedef gboolean (*WriteFunc) (CanopyFreetdsBackend *b, gpointer data, GError **error);

/* Runs @write inside the caller's transaction, or in one of its own that
 * is run again when the server chose it as a deadlock victim (two
 * canopyd writing neighbouring keys): the server rolled all of it back. */
static gboolean
in_transaction (CanopyFreetdsBackend *b, WriteFunc write, gpointer data, GError **error)
{
  if (b->in_transaction)
    return write (b, data, error);
  for (guint attempt = 0;; attempt++)
    {
      g_autoptr (GError) local = NULL;
      int message;

      if (!canopy_freetds_backend_begin (b, error))
        return FALSE;
      if (write (b, data, &local))
        return canopy_freetds_backend_commit (b, error);
      message = b->last_message; /* before the rollback's call clears it */
      canopy_freetds_backend_rollback (b);
      if (message != DEADLOCK_VICTIM || attempt + 1 >= DEADLOCK_RETRIES)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      g_usleep ((attempt + 1) * 20 * 1000);
    }
}

/* --- records ------------------------------------------------------------- */

/* One record's rows in one round trip, when they fit in one call. */
static gboolean
write_rows_at_once (CanopyFreetdsBackend *b, const CanopyTable *t, const CanopyRows *rows,
                    gboolean *done, GError **error)
{
  guint n_rows[CANOPY_TABLE_MAX_CHILDREN] = { 0 };
  CanopyTsqlStatement write = { 0 };
  g_autoptr (GArray) p = params_new ();
  gboolean ok;

  for (guint c = 0; c < t->n_children; c++)
    n_rows[c] = rows->children[c]->len;
  *done = canopy_tsql_record_write (t, n_rows, &write);
  if (!*done)
    return TRUE;
  params_add_tuple (p, t->keys, t->n_keys, rows->keys);
  params_add_tuple (p, t->columns, t->n_columns, rows->columns);
  for (guint c = 0; c < t->n_children; c++)
    for (guint r = 0; r < n_rows[c]; r++)
      params_add_tuple (p, t->children[c].columns, t->children[c].n_columns,
                        g_ptr_array_index (rows->children[c], r));
  ok = execute (b, &write, p, NULL, NULL, _("writing records"), error);
  canopy_tsql_statement_clear (&write);
  return ok;
}

/* One record's rows: its main row, then its child rows (afresh when they
 * are more than one call carries). */
static gboolean
write_rows (CanopyFreetdsBackend *b, const CanopyTable *t, const CanopyRows *rows,
            GError **error)
{
  CanopyTsqlStatement upsert = { 0 };
  g_autoptr (GArray) p = params_new ();
  gboolean ok, done;

  if (!write_rows_at_once (b, t, rows, &done, error))
    return FALSE;
  if (done)
    return TRUE;
  /* more child rows than one call carries: a statement at a time */
  canopy_tsql_upsert (t, &upsert);
  params_add_tuple (p, t->keys, t->n_keys, rows->keys);
  params_add_tuple (p, t->columns, t->n_columns, rows->columns);
  ok = execute (b, &upsert, p, NULL, NULL, _("writing records"), error);
  canopy_tsql_statement_clear (&upsert);
  for (guint c = 0; ok && c < t->n_children; c++)
    {
      const CanopyChildTable *child = &t->children[c];
      CanopyTsqlStatement remove = { 0 }, insert = { 0 };

      canopy_tsql_child_delete (t, c, &remove);
      canopy_tsql_child_insert (t, c, &insert);
      g_array_set_size (p, 0);
      params_add_tuple (p, t->keys, t->n_keys, rows->keys);
      ok = execute (b, &remove, p, NULL, NULL, _("writing records"), error);
      for (guint r = 0; ok && r < rows->children[c]->len; r++)
        {
          g_array_set_size (p, 0);
          params_add_tuple (p, t->keys, t->n_keys, rows->keys);
          params_add_tuple (p, child->columns, child->n_columns,
                            g_ptr_array_index (rows->children[c], r));
          ok = execute (b, &insert, p, NULL, NULL, _("writing records"), error);
        }
      canopy_tsql_statement_clear (&remove);
      canopy_tsql_statement_clear (&insert);
    }
  return ok;
}

static gboolean
write_record (CanopyFreetdsBackend *b, CanopyRecordKind kind, const char *key, GVariant *value,
              GError **error)
{
  const CanopyTable *t = canopy_record_table (kind);
  CanopyRows rows = { 0 };
  gboolean ok = canopy_table_split (t, key, value, &rows, error) && write_rows (b, t, &rows, error);

  canopy_rows_clear (&rows);
  return ok;
}

typedef struct {
  CanopyRecordKind kind;
  const CanopyRecord *records;
  gsize n;
  gboolean clear_first;
} PutBatch;

static gboolean
write_records (CanopyFreetdsBackend *b, gpointer data, GError **error)
{
  PutBatch *batch = data;

  if (batch->clear_first)
    {
      /* the child rows go with their main rows (ON DELETE CASCADE) */
      CanopyTsqlStatement clear = { 0 };
      gboolean ok;

      canopy_tsql_delete (canopy_record_table (batch->kind), FALSE, &clear);
      ok = execute (b, &clear, NULL, NULL, NULL, _("replacing records"), error);
      canopy_tsql_statement_clear (&clear);
      if (!ok)
        return FALSE;
    }
  for (gsize i = 0; i < batch->n; i++)
    if (!write_record (b, batch->kind, batch->records[i].key, batch->records[i].value, error))
      return FALSE;
  return TRUE;
}

gboolean
canopy_freetds_backend_put (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                            const CanopyRecord *records, gsize n, gboolean replace_all,
                            GError **error)
{
  PutBatch batch = { kind, records, n, replace_all };

  return in_transaction (b, write_records, &batch, error);
}

/* The rows of the child table @c of the record with key columns @keys. */
static GPtrArray *
read_child_rows (CanopyFreetdsBackend *b, const CanopyTable *t, guint c, GVariant *keys,
                 GError **error)
{
  const CanopyChildTable *child = &t->children[c];
  CanopyTsqlStatement select = { 0 };
  g_autoptr (GArray) p = params_new ();
  Collect collect;
  GPtrArray *rows = NULL;

  collect_init (&collect, NULL, 0, child->columns, child->n_columns);
  canopy_tsql_child_select (t, c, TRUE, &select);
  params_add_tuple (p, t->keys, t->n_keys, keys);
  if (execute (b, &select, p, collect_row, &collect, _("reading a record"), error))
    {
      rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
      for (guint r = 0; r < collect.rows->len; r++)
        {
          Row *row = g_ptr_array_index (collect.rows, r);
          g_ptr_array_add (rows, g_steal_pointer (&row->second));
        }
    }
  canopy_tsql_statement_clear (&select);
  g_ptr_array_unref (collect.rows);
  return rows;
}

GBytes *
canopy_freetds_backend_get (CanopyFreetdsBackend *b, CanopyRecordKind kind, const char *key,
                            GError **error)
{
  const CanopyTable *t = canopy_record_table (kind);
  g_autoptr (GVariant) keys = canopy_table_split_key (t, key, NULL);
  g_autoptr (GVariant) value = NULL;
  CanopyTsqlStatement select = { 0 };
  CanopyRows rows = { 0 };
  g_autoptr (GArray) p = params_new ();
  Collect collect;
  gboolean ok;

  if (keys == NULL)
    {
      /* a key that cannot be stored was never stored */
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND,
                   _("No %s record \"%s\""), canopy_record_kind_to_string (kind), key);
      return NULL;
    }
  collect_init (&collect, NULL, 0, t->columns, t->n_columns);
  canopy_tsql_select (t, TRUE, &select);
  params_add_tuple (p, t->keys, t->n_keys, keys);
  ok = execute (b, &select, p, collect_row, &collect, _("reading a record"), error);
  canopy_tsql_statement_clear (&select);
  if (ok && collect.rows->len == 0)
    {
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_NOT_FOUND,
                   _("No %s record \"%s\""), canopy_record_kind_to_string (kind), key);
      ok = FALSE;
    }
  if (ok)
    {
      Row *row = g_ptr_array_index (collect.rows, 0);
      rows.columns = g_steal_pointer (&row->second);
      for (guint c = 0; ok && c < t->n_children; c++)
        ok = (rows.children[c] = read_child_rows (b, t, c, keys, error)) != NULL;
      if (ok && (value = canopy_table_join (t, &rows, error)) != NULL)
        g_variant_ref_sink (value);
    }
  canopy_rows_clear (&rows);
  g_ptr_array_unref (collect.rows);
  if (value == NULL)
    return NULL;
  return g_bytes_new (g_variant_get_data (value), g_variant_get_size (value));
}

/* Every row of the child table @c, grouped by their record's key. */
static GHashTable *
read_all_child_rows (CanopyFreetdsBackend *b, const CanopyTable *t, guint c, GError **error)
{
  const CanopyChildTable *child = &t->children[c];
  CanopyTsqlStatement select = { 0 };
  Collect collect;
  GHashTable *by_key = NULL;

  collect_init (&collect, t->keys, t->n_keys, child->columns, child->n_columns);
  canopy_tsql_child_select (t, c, FALSE, &select);
  if (execute (b, &select, NULL, collect_row, &collect, _("listing records"), error))
    {
      by_key = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify) g_ptr_array_unref);
      for (guint r = 0; r < collect.rows->len; r++)
        {
          Row *row = g_ptr_array_index (collect.rows, r);
          char *key = canopy_table_join_key (t, row->first);
          GPtrArray *rows = g_hash_table_lookup (by_key, key);

          if (rows == NULL)
            {
              rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
              g_hash_table_insert (by_key, key, rows);
            }
          else
            g_free (key);
          g_ptr_array_add (rows, g_steal_pointer (&row->second));
        }
    }
  canopy_tsql_statement_clear (&select);
  g_ptr_array_unref (collect.rows);
  return by_key;
}

typedef struct {
  char *key;
  Row *row;
} KeyedRow;

static int
compare_keyed (gconstpointer a, gconstpointer b)
{
  return strcmp (((const KeyedRow *) a)->key, ((const KeyedRow *) b)->key);
}

gboolean
canopy_freetds_backend_list (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                             CanopyRecordFunc func, gpointer user_data, GError **error)
{
  const CanopyTable *t = canopy_record_table (kind);
  GHashTable *children[CANOPY_TABLE_MAX_CHILDREN] = { NULL };
  g_autoptr (GArray) sorted = g_array_new (FALSE, FALSE, sizeof (KeyedRow));
  CanopyTsqlStatement select = { 0 };
  Collect collect;
  gboolean ok;

  collect_init (&collect, t->keys, t->n_keys, t->columns, t->n_columns);
  canopy_tsql_select (t, FALSE, &select);
  ok = execute (b, &select, NULL, collect_row, &collect, _("listing records"), error);
  canopy_tsql_statement_clear (&select);
  for (guint c = 0; ok && c < t->n_children; c++)
    ok = (children[c] = read_all_child_rows (b, t, c, error)) != NULL;
  /* In key order as the other backends list them: a UNIQUEIDENTIFIER
   * sorts otherwise in SQL Server. */
  for (guint r = 0; ok && r < collect.rows->len; r++)
    {
      Row *row = g_ptr_array_index (collect.rows, r);
      KeyedRow keyed = { canopy_table_join_key (t, row->first), row };
      g_array_append_val (sorted, keyed);
    }
  g_array_sort (sorted, compare_keyed);
  for (guint r = 0; ok && r < sorted->len; r++)
    {
      KeyedRow *keyed = &g_array_index (sorted, KeyedRow, r);
      CanopyRows rows = { 0 };
      g_autoptr (GVariant) value = NULL;

      rows.columns = g_variant_ref (keyed->row->second);
      for (guint c = 0; c < t->n_children; c++)
        {
          GPtrArray *found = g_hash_table_lookup (children[c], keyed->key);
          rows.children[c] = found != NULL
                               ? g_ptr_array_ref (found)
                               : g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
        }
      value = canopy_table_join (t, &rows, error);
      canopy_rows_clear (&rows);
      if (value == NULL)
        ok = FALSE;
      else if (!func (keyed->key, g_variant_get_data (g_variant_ref_sink (value)),
                      g_variant_get_size (value), user_data))
        break;
    }
  for (guint r = 0; r < sorted->len; r++)
    g_free (g_array_index (sorted, KeyedRow, r).key);
  for (guint c = 0; c < CANOPY_TABLE_MAX_CHILDREN; c++)
    g_clear_pointer (&children[c], g_hash_table_unref);
  g_ptr_array_unref (collect.rows);
  return ok;
}

typedef struct {
  CanopyRecordKind kind;
  const char *const *keys;
} RemoveBatch;

static gboolean
delete_records (CanopyFreetdsBackend *b, gpointer data, GError **error)
{
  RemoveBatch *batch = data;
  const CanopyTable *t = canopy_record_table (batch->kind);
  CanopyTsqlStatement remove = { 0 };
  gboolean ok = TRUE;

  canopy_tsql_delete (t, TRUE, &remove);
  for (const char *const *key = batch->keys; ok && *key != NULL; key++)
    {
      g_autoptr (GVariant) keys = canopy_table_split_key (t, *key, NULL);
      g_autoptr (GArray) p = params_new ();

      if (keys == NULL)
        continue; /* never stored */
      params_add_tuple (p, t->keys, t->n_keys, keys);
      ok = execute (b, &remove, p, NULL, NULL, _("removing records"), error);
    }
  canopy_tsql_statement_clear (&remove);
  return ok;
}

gboolean
canopy_freetds_backend_remove (CanopyFreetdsBackend *b, CanopyRecordKind kind,
                               const char *const *keys, GError **error)
{
  RemoveBatch batch = { kind, keys };

  return keys[0] == NULL || in_transaction (b, delete_records, &batch, error);
}

/* --- logs ---------------------------------------------------------------- */

/* Appends @entry; with @id > 0 under that ID (a converted entry). */
static gboolean
write_entry (CanopyFreetdsBackend *b, CanopyLogKind kind, gint64 id, GVariant *entry,
             GError **error)
{
  const CanopyTable *t = canopy_log_table (kind);
  CanopyTsqlStatement append = { 0 };
  CanopyRows rows = { 0 };
  g_autoptr (GArray) p = params_new ();
  gboolean ok;

  if (!canopy_table_split (t, NULL, entry, &rows, error))
    return FALSE;
  canopy_tsql_log_append (t, id > 0, &append);
  if (id > 0)
    param_integer (next_param (p), id);
  params_add_tuple (p, t->columns, t->n_columns, rows.columns);
  ok = execute (b, &append, p, NULL, NULL, _("appending to a log"), error);
  canopy_tsql_statement_clear (&append);
  canopy_rows_clear (&rows);
  return ok;
}

typedef struct {
  CanopyLogKind kind;
  GVariant *const *entries;
  gsize n;
} AppendBatch;

static gboolean
write_entries (CanopyFreetdsBackend *b, gpointer data, GError **error)
{
  AppendBatch *batch = data;

  for (gsize i = 0; i < batch->n; i++)
    if (!write_entry (b, batch->kind, 0, batch->entries[i], error))
      return FALSE;
  return TRUE;
}

gboolean
canopy_freetds_backend_append (CanopyFreetdsBackend *b, CanopyLogKind kind,
                               GVariant *const *entries, gsize n, GError **error)
{
  AppendBatch batch = { kind, entries, n };

  return n == 0 || in_transaction (b, write_entries, &batch, error);
}

static const CanopyColumn id_column[] = { { "id", CANOPY_COLUMN_INT64, "x" } };

gboolean
canopy_freetds_backend_list_log (CanopyFreetdsBackend *b, CanopyLogKind kind, gint64 after,
                                 guint limit, CanopyLogFunc func, gpointer user_data,
                                 GError **error)
{
  const CanopyTable *t = canopy_log_table (kind);
  CanopyTsqlStatement list = { 0 };
  g_autoptr (GArray) p = params_new ();
  Collect collect;
  gboolean ok;

  collect_init (&collect, id_column, 1, t->columns, t->n_columns);
  canopy_tsql_log_list (t, &list);
  param_integer (next_param (p), after);
  param_integer (next_param (p), limit > 0 ? (gint64) limit : G_MAXINT64);
  ok = execute (b, &list, p, collect_row, &collect, _("listing a log"), error);
  canopy_tsql_statement_clear (&list);
  for (guint r = 0; ok && r < collect.rows->len; r++)
    {
      Row *row = g_ptr_array_index (collect.rows, r);
      CanopyRows rows = { 0 };
      g_autoptr (GVariant) entry = NULL;
      gint64 id;

      g_variant_get (row->first, "(x)", &id);
      rows.columns = g_variant_ref (row->second);
      entry = canopy_table_join (t, &rows, error);
      canopy_rows_clear (&rows);
      if (entry == NULL)
        ok = FALSE;
      else if (!func (id, g_variant_get_data (g_variant_ref_sink (entry)),
                      g_variant_get_size (entry), user_data))
        break;
    }
  g_ptr_array_unref (collect.rows);
  return ok;
}

/* --- migrations ---------------------------------------------------------- */

#define N_BLOB_KINDS 7

/* The value types a blob of @kind may have been written with by the
 * release that kept blobs: today's, or the first release's. */
static const char *const blob_types[N_BLOB_KINDS][2] = {
  { CANOPY_RECORD_DEVICE_TYPE, NULL },
  { CANOPY_RECORD_OFFICE_TYPE, NULL },
  { CANOPY_RECORD_SETTING_TYPE, NULL },
  { CANOPY_RECORD_CONTENT_TYPE, CANOPY_RECORD_CONTENT_TYPE_V1 },
  { CANOPY_RECORD_DEPLOYMENT_TYPE, CANOPY_RECORD_DEPLOYMENT_TYPE_V1 },
  { CANOPY_RECORD_PROGRESS_TYPE, NULL },
  { CANOPY_RECORD_ACTIVATION_TYPE, NULL },
};
static const char *const blob_log_types[CANOPY_N_LOG_KINDS] = {
  CANOPY_LOG_TRANSFER_TYPE,
  CANOPY_LOG_AUDIT_TYPE,
};

/* @bytes as a value of @type in normal form (as the core wrote it), or
 * NULL. */
static GVariant *
blob_as (const char *type, GBytes *bytes)
{
  g_autoptr (GVariant) value = g_variant_ref_sink (
    g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, FALSE));

  return g_variant_is_normal_form (value) ? g_steal_pointer (&value) : NULL;
}

/* A record blob as today's value of @kind, or NULL when it is none. */
static GVariant *
blob_record (gint64 kind, GBytes *bytes)
{
  if (kind < 0 || kind >= N_BLOB_KINDS)
    return NULL;
  for (guint i = 0; i < 2 && blob_types[kind][i] != NULL; i++)
    {
      g_autoptr (GVariant) value = blob_as (blob_types[kind][i], bytes);
      if (value != NULL)
        return canopy_record_upgrade (value, G_VARIANT_TYPE (blob_types[kind][0]));
    }
  return NULL;
}

static const CanopyColumn blob_columns[] = {
  { "kind", CANOPY_COLUMN_INT64, "x" },
  { "key", CANOPY_COLUMN_TEXT, "s" },
  { "value", CANOPY_COLUMN_BYTES, "ay" },
};
static const CanopyColumn blob_log_columns[] = {
  { "kind", CANOPY_COLUMN_INT64, "x" },
  { "value", CANOPY_COLUMN_BYTES, "ay" },
};

static GBytes *
blob_bytes (GVariant *row, gsize index)
{
  g_autoptr (GVariant) value = g_variant_get_child_value (row, index);

  return g_variant_get_data_as_bytes (value);
}

static gboolean
damaged (CanopyFreetdsBackend *b, const char *what, GError **error)
{
  g_autofree char *where = canopy_freetds_settings_describe (&b->settings);

  g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_CORRUPT,
               _("The database on SQL Server %s holds %s that cannot be upgraded; restore it "
                 "from a backup"), where, what);
  return FALSE;
}

/* Migration 2's conversion: each blob of the version 1 tables becomes
 * typed rows, with its key and its log ID; the old tables go. Anything
 * that cannot be converted fails the whole upgrade, which leaves the
 * database as it was. */
static gboolean
convert_blobs (CanopyFreetdsBackend *b, GError **error)
{
  Collect records;
  gint64 after = 0;
  guint n_entries = 0, page;
  gboolean ok;
  CanopyTsqlStatement logs = { 0 };

  canopy_tsql_blob_logs_page (&logs);
  collect_init (&records, NULL, 0, blob_columns, G_N_ELEMENTS (blob_columns));
  ok = query (b, "SELECT CAST(kind AS BIGINT), [key], value FROM canopy_records "
                 "ORDER BY kind, [key]",
              collect_row, &records, _("upgrading the schema"), error);
  for (guint r = 0; ok && r < records.rows->len; r++)
    {
      GVariant *row = ((Row *) g_ptr_array_index (records.rows, r))->second;
      g_autoptr (GBytes) bytes = blob_bytes (row, 2);
      g_autoptr (GVariant) value = NULL;
      g_autoptr (GError) local = NULL;
      const char *key;
      gint64 kind;

      g_variant_get (row, "(x&s@ay)", &kind, &key, NULL);
      value = blob_record (kind, bytes);
      if (value == NULL || !write_record (b, (CanopyRecordKind) kind, key, value, &local))
        {
          g_autofree char *what = g_strdup_printf (_("a damaged record \"%s\""), key);
          ok = damaged (b, what, error);
        }
    }
  /* Logs may be long: a page at a time. */
  do
    {
      Collect entries;
      g_autoptr (GArray) p = params_new ();

      collect_init (&entries, id_column, 1, blob_log_columns, G_N_ELEMENTS (blob_log_columns));
      param_integer (next_param (p), after);
      ok = ok && execute (b, &logs, p, collect_row, &entries, _("upgrading the schema"), error);
      page = ok ? entries.rows->len : 0;
      for (guint r = 0; ok && r < page; r++)
        {
          Row *row = g_ptr_array_index (entries.rows, r);
          g_autoptr (GVariant) entry = NULL;
          gint64 kind;

          g_variant_get (row->first, "(x)", &after);
          g_variant_get_child (row->second, 0, "x", &kind);
          {
            g_autoptr (GBytes) bytes = blob_bytes (row->second, 1);
            if (kind >= 0 && kind < CANOPY_N_LOG_KINDS)
              entry = blob_as (blob_log_types[kind], bytes);
          }
          if (entry == NULL || !write_entry (b, (CanopyLogKind) kind, after, entry, NULL))
            {
              g_autofree char *what = g_strdup_printf (_("a damaged log entry %" PRId64), after);
              ok = damaged (b, what, error);
            }
          n_entries++;
        }
      g_ptr_array_unref (entries.rows);
    }
  while (ok && page == CANOPY_TSQL_BLOB_PAGE);
  canopy_tsql_statement_clear (&logs);
  if (ok && records.rows->len + n_entries > 0)
    {
      g_autofree char *where = canopy_freetds_settings_describe (&b->settings);
      g_message (_("Converted %u records and %u log entries on SQL Server %s to typed tables"),
                 records.rows->len, n_entries, where);
    }
  g_ptr_array_unref (records.rows);
  return ok && run (b, "DROP TABLE canopy_records; DROP TABLE canopy_logs",
                    _("upgrading the schema"), error);
}

static gboolean
write_moved (CanopyFreetdsBackend *b, CanopyRecordKind kind, GArray *records, GError **error)
{
  for (guint i = 0; i < records->len; i++)
    {
      CanopyRecord *record = &g_array_index (records, CanopyRecord, i);
      if (!write_record (b, kind, record->key, record->value, error))
        return FALSE;
    }
  return TRUE;
}

static const CanopyColumn setting_columns[] = {
  { "name", CANOPY_COLUMN_TEXT, "s" },
  { "value", CANOPY_COLUMN_TEXT, "s" },
};

/* Migration 3's move: the admins' and tokens' setting rows become rows of
 * admins and admin_tokens, and leave settings. */
static gboolean
move_admins (CanopyFreetdsBackend *b, GError **error)
{
  CanopyAdminSettings moved;
  Collect settings;
  RemoveBatch gone = { CANOPY_RECORD_SETTING, NULL };
  gboolean ok;

  canopy_admin_settings_init (&moved);
  collect_init (&settings, NULL, 0, setting_columns, G_N_ELEMENTS (setting_columns));
  ok = query (b, CANOPY_TSQL_SELECT_ADMIN_SETTINGS, collect_row, &settings,
              _("upgrading the schema"), error);
  for (guint r = 0; ok && r < settings.rows->len; r++)
    {
      const char *name, *value;

      g_variant_get (((Row *) g_ptr_array_index (settings.rows, r))->second, "(&s&s)", &name,
                     &value);
      canopy_admin_settings_add (&moved, name, value);
    }
  canopy_admin_settings_finish (&moved);
  g_ptr_array_add (moved.moved, NULL);
  gone.keys = (const char *const *) moved.moved->pdata;
  ok = ok && write_moved (b, CANOPY_RECORD_ADMIN, moved.admins, error)
       && write_moved (b, CANOPY_RECORD_ADMIN_TOKEN, moved.tokens, error)
       && delete_records (b, &gone, error);
  if (ok && moved.moved->len > 1)
    {
      g_autofree char *where = canopy_freetds_settings_describe (&b->settings);
      g_message (_("Moved the console admins on SQL Server %s from the settings to their own "
                   "tables (admins: %u, tokens: %u)"),
                 where, moved.admins->len, moved.tokens->len);
    }
  g_ptr_array_unref (settings.rows);
  canopy_admin_settings_clear (&moved);
  return ok;
}

static gboolean
run_migration (CanopyFreetdsBackend *b, const CanopyTsqlMigration *m, GError **error)
{
  CanopyTsqlStatement record = { 0 };
  g_autoptr (GArray) p = params_new ();
  gboolean ok = run (b, m->sql, _("upgrading the schema"), error);

  switch (m->convert)
    {
    case CANOPY_TSQL_CONVERT_NONE:
      break;
    case CANOPY_TSQL_CONVERT_BLOBS:
      ok = ok && convert_blobs (b, error);
      break;
    case CANOPY_TSQL_MOVE_ADMINS:
      ok = ok && move_admins (b, error);
      break;
    }
  canopy_tsql_record_version (&record);
  param_integer (next_param (p), m->version);
  ok = ok && execute (b, &record, p, NULL, NULL, _("upgrading the schema"), error);
  canopy_tsql_statement_clear (&record);
  return ok;
}

/* Brings the schema to the newest version in one transaction that holds
 * the schema's application lock: a second canopyd starting at the same
 * time waits, then finds the work done. A database of a newer canopy is
 * refused untouched. canopy_meta's schema_version is what releases before
 * schema_migrations read, so they refuse a database upgraded since. */
static gboolean
migrate (CanopyFreetdsBackend *b, GError **error)
{
  g_autofree char *where = canopy_freetds_settings_describe (&b->settings);
  guint n;
  const CanopyTsqlMigration *migrations = canopy_tsql_migrations (&n);
  gint64 newest = migrations[n - 1].version, locked = -1000, version = 0;

  if (!canopy_freetds_backend_begin (b, error))
    return FALSE;
  if (!query (b, CANOPY_TSQL_TAKE_SCHEMA_LOCK, read_first_integer, &locked,
              _("locking the schema"), error))
    goto failed;
  if (locked < 0)
    {
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_LOCKED,
                   _("Another canopyd held the schema lock of the database on SQL Server %s "
                     "for a minute (sp_getapplock returned %" PRId64 "); start this one again "
                     "when the other has started"), where, locked);
      goto failed;
    }
  if (!query (b, CANOPY_TSQL_READ_VERSION, read_first_integer, &version,
              _("reading the schema version"), error))
    goto failed;
  if (version > newest)
    {
      canopy_freetds_backend_rollback (b);
      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_TOO_NEW,
                   _("The database on SQL Server %s has schema version %" PRId64 ", written by a "
                     "newer canopy; this one knows up to version %" PRId64 ". Upgrade canopy; "
                     "the database was not touched"), where, version, newest);
      return FALSE;
    }
  if (version < newest && !run (b, CANOPY_TSQL_CREATE_VERSION_TABLES, _("upgrading the schema"),
                                error))
    goto failed;
  for (guint i = 0; i < n; i++)
    if (migrations[i].version > version && !run_migration (b, &migrations[i], error))
      goto failed;
  if (!canopy_freetds_backend_commit (b, error))
    return FALSE;
  if (version > 0 && version < newest)
    g_message (_("Upgraded the database on SQL Server %s from schema version %" PRId64 " to %"
                 PRId64), where, version, newest);
  return TRUE;
failed:
  canopy_freetds_backend_rollback (b);
  return FALSE;
}

/* --- opening ------------------------------------------------------------- */

static CanopyFreetdsBackend *
backend_new (const CanopyFreetdsSettings *settings)
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
  return b;
}

CanopyFreetdsBackend *
canopy_freetds_backend_open (const CanopyFreetdsSettings *settings, GError **error)
{
  CanopyFreetdsBackend *b = backend_new (settings);

  if (!connect_now (b, error) || !migrate (b, error))
    {
      canopy_freetds_backend_close (b);
      return NULL;
    }
  return b;
}

static gboolean
read_last_text (DBPROCESS *dbproc, gpointer user_data)
{
  char **text = user_data;

  g_free (*text);
  *text = g_strndup ((const char *) dbdata (dbproc, 1), (gsize) MAX (dbdatlen (dbproc, 1), 0));
  return TRUE;
}

char *
canopy_freetds_run_script (const CanopyFreetdsSettings *settings, const char *sql,
                           GError **error)
{
  CanopyFreetdsBackend *b = backend_new (settings);
  char *last = NULL;

  if (!connect_now (b, error)
      || !query (b, sql, read_last_text, &last, _("running a script"), error))
    g_clear_pointer (&last, g_free);
  else if (last == NULL)
    last = g_strdup ("");
  canopy_freetds_backend_close (b);
  return last;
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
  g_free (b->lease_name);
  g_free (b->lease_holder);
  g_free (b->lease_detail);
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
  *(char **) user_data = g_strndup ((const char *) dbdata (dbproc, 1),
                                    (gsize) MAX (dbdatlen (dbproc, 1), 0));
  return FALSE;
}

char *
canopy_freetds_backend_get_server_version (CanopyFreetdsBackend *b, GError **error)
{
  g_autofree char *version = NULL;

  if (!query (b, "SELECT CAST(SERVERPROPERTY('ProductVersion') AS NVARCHAR(64))", read_text,
              &version, _("reading the server version"), error))
    return NULL;
  return g_strdup_printf ("Microsoft SQL Server %s", version != NULL ? version : "?");
}

guint
canopy_freetds_backend_get_schema_version (const CanopyFreetdsBackend *b)
{
  guint n;
  const CanopyTsqlMigration *migrations = canopy_tsql_migrations (&n);

  return migrations[n - 1].version;
}

/* --- clusters ------------------------------------------------------------ */

/* Migration 4 created the cluster's tables in every database at open,
 * under the schema lock: nothing is left to create. */
gboolean
canopy_freetds_backend_cluster_prepare (CanopyFreetdsBackend *b, GError **error)
{
  return TRUE;
}

/* The values of a cluster statement that writes, and its rows if any. */
typedef struct {
  const CanopyTsqlStatement *statement;
  GArray *params;
  Collect *collect; /* (nullable) */
  const char *doing;
} ClusterWrite;

static gboolean
cluster_write (CanopyFreetdsBackend *b, gpointer data, GError **error)
{
  ClusterWrite *w = data;

  /* a deadlock victim's rows are read again */
  if (w->collect != NULL)
    g_ptr_array_set_size (w->collect->rows, 0);
  return execute (b, w->statement, w->params, w->collect != NULL ? collect_row : NULL,
                  w->collect, w->doing, error);
}

/* Runs @statement in a transaction of its own, run again when the server
 * chose it as a deadlock victim (servers starting together). */
static gboolean
cluster_run (CanopyFreetdsBackend *b, const CanopyTsqlStatement *statement, GArray *params,
             Collect *collect, const char *doing, GError **error)
{
  ClusterWrite w = { statement, params, collect, doing };

  return in_transaction (b, cluster_write, &w, error);
}

static void
param_string (GArray *params, const char *text)
{
  param_text (next_param (params), text, strlen (text));
}

gboolean
canopy_freetds_backend_cluster_heartbeat (CanopyFreetdsBackend *b, const char *server_id,
                                          const char *name, gboolean starting, GError **error)
{
  CanopyTsqlStatement beat = { 0 };
  g_autoptr (GArray) p = params_new ();
  gboolean ok;

  canopy_tsql_cluster_heartbeat (starting, &beat);
  param_string (p, server_id);
  param_string (p, name);
  ok = cluster_run (b, &beat, p, NULL,
                    starting ? _("registering this server") : _("recording this server's "
                                                                 "heartbeat"),
                    error);
  canopy_tsql_statement_clear (&beat);
  return ok;
}

gboolean
canopy_freetds_backend_cluster_leave (CanopyFreetdsBackend *b, const char *server_id,
                                      GError **error)
{
  CanopyTsqlStatement leave = { 0 };
  g_autoptr (GArray) p = params_new ();
  gboolean ok;

  canopy_tsql_cluster_leave (&leave);
  param_string (p, server_id);
  ok = cluster_run (b, &leave, p, NULL, _("leaving the cluster"), error);
  canopy_tsql_statement_clear (&leave);
  return ok;
}

static const CanopyColumn server_columns[] = {
  { "server_id", CANOPY_COLUMN_UUID, "s" },
  { "name", CANOPY_COLUMN_TEXT, "s" },
  { "started_at", CANOPY_COLUMN_TIME, "x" },
  { "heartbeat_at", CANOPY_COLUMN_TIME, "x" },
  { "silent_us", CANOPY_COLUMN_INT64, "x" },
};

gboolean
canopy_freetds_backend_cluster_list_servers (CanopyFreetdsBackend *b,
                                             CanopyClusterServerFunc func, gpointer user_data,
                                             GError **error)
{
  CanopyTsqlStatement list = { 0 };
  Collect collect;
  gboolean ok;

  collect_init (&collect, NULL, 0, server_columns, G_N_ELEMENTS (server_columns));
  canopy_tsql_cluster_list_servers (&list);
  ok = execute (b, &list, NULL, collect_row, &collect, _("listing the cluster's servers"),
                error);
  canopy_tsql_statement_clear (&list);
  /* handed out once the connection is idle: @func may use the backend */
  for (guint r = 0; ok && r < collect.rows->len; r++)
    {
      CanopyClusterServer server;

      g_variant_get (((Row *) g_ptr_array_index (collect.rows, r))->second, "(&s&sxxx)",
                     &server.server_id, &server.name, &server.started_at, &server.heartbeat_at,
                     &server.silent_us);
      if (!func (&server, user_data))
        break;
    }
  g_ptr_array_unref (collect.rows);
  return ok;
}

static const CanopyColumn lease_columns[] = {
  { "name", CANOPY_COLUMN_TEXT, "s" },
  { "holder", CANOPY_COLUMN_UUID, "s" },
  { "detail", CANOPY_COLUMN_TEXT, "s" },
  { "remaining_us", CANOPY_COLUMN_INT64, "x" },
};

static void
lease_from_row (GVariant *row, CanopyClusterLease *lease)
{
  g_variant_get (row, "(&s&s&sx)", &lease->name, &lease->holder, &lease->detail,
                 &lease->remaining_us);
}

gboolean
canopy_freetds_backend_cluster_take_lease (CanopyFreetdsBackend *b, const char *name,
                                           const char *holder, const char *detail,
                                           guint duration_ms, CanopyClusterLease *lease,
                                           GError **error)
{
  CanopyTsqlStatement take = { 0 };
  g_autoptr (GArray) p = params_new ();
  Collect collect;
  gboolean ok;

  collect_init (&collect, NULL, 0, lease_columns, G_N_ELEMENTS (lease_columns));
  canopy_tsql_cluster_take_lease (&take);
  param_string (p, name);
  param_string (p, holder);
  param_string (p, detail);
  param_integer (next_param (p), duration_ms);
  ok = cluster_run (b, &take, p, &collect, _("taking a lease"), error);
  canopy_tsql_statement_clear (&take);
  if (ok && collect.rows->len == 0)
    {
      /* released between the take and the read: nobody holds it now */
      g_autofree char *where = canopy_freetds_settings_describe (&b->settings);

      g_set_error (error, CANOPY_BACKEND_ERROR, CANOPY_BACKEND_ERROR_LOCKED,
                   _("The lease \"%s\" on SQL Server %s changed while it was taken; try again"),
                   name, where);
      ok = FALSE;
    }
  if (ok)
    {
      CanopyClusterLease read;

      lease_from_row (((Row *) g_ptr_array_index (collect.rows, 0))->second, &read);
      g_free (b->lease_name);
      g_free (b->lease_holder);
      g_free (b->lease_detail);
      b->lease_name = g_strdup (read.name);
      b->lease_holder = g_strdup (read.holder);
      b->lease_detail = g_strdup (read.detail);
      lease->name = b->lease_name;
      lease->holder = b->lease_holder;
      lease->detail = b->lease_detail;
      lease->remaining_us = read.remaining_us;
    }
  g_ptr_array_unref (collect.rows);
  return ok;
}

gboolean
canopy_freetds_backend_cluster_list_leases (CanopyFreetdsBackend *b,
                                            CanopyClusterLeaseFunc func, gpointer user_data,
                                            GError **error)
{
  CanopyTsqlStatement list = { 0 };
  Collect collect;
  gboolean ok;

  collect_init (&collect, NULL, 0, lease_columns, G_N_ELEMENTS (lease_columns));
  canopy_tsql_cluster_list_leases (&list);
  ok = execute (b, &list, NULL, collect_row, &collect, _("listing leases"), error);
  canopy_tsql_statement_clear (&list);
  for (guint r = 0; ok && r < collect.rows->len; r++)
    {
      CanopyClusterLease lease;

      lease_from_row (((Row *) g_ptr_array_index (collect.rows, r))->second, &lease);
      if (!func (&lease, user_data))
        break;
    }
  g_ptr_array_unref (collect.rows);
  return ok;
}
