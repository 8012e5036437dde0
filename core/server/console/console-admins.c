/* The console API's admin management: who is calling, the admins and
 * their tokens listed (never a secret), added, issued and revoked. Every
 * change is read, applied and written in a worker thread against the
 * database itself, the one "canopyd admin-add" writes too, so neither
 * loses what the other did. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-admins"

#include "server/console/console-private.h"
#include "lib/i18n.h"
#include "lib/log.h"

#include <string.h>

typedef enum {
  JOB_READ,
  JOB_ADD,    /* a new admin and a first token */
  JOB_ISSUE,  /* another token for an admin */
  JOB_REMOVE, /* an admin and every token of theirs */
  JOB_REVOKE, /* one token */
} JobKind;

typedef struct {
  JobKind kind;
  CanopyStore *store;
  char *name;
  CanopyAdminRole role;
  gint64 expires;
  char *token_id;    /* JOB_REVOKE's token; the new token's ID after ADD/ISSUE */
  char *token_text;  /* the new token; the only copy of its secret */
  gboolean existed;  /* JOB_ADD found the admin */
  CanopyAdmins *admins; /* as written */
} Job;

static void
job_free (Job *job)
{
  g_free (job->name);
  g_free (job->token_id);
  canopy_admins_free_text (job->token_text);
  canopy_admins_free (job->admins);
  g_free (job);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Job, job_free)

static gboolean
is_last_administrator (const CanopyAdmins *admins, const char *name)
{
  g_autoptr (GPtrArray) list = canopy_admins_list (admins);
  const CanopyAdmin *admin = canopy_admins_lookup (admins, name);
  guint administrators = 0;

  for (guint i = 0; i < list->len; i++)
    if (((CanopyAdmin *) list->pdata[i])->role == CANOPY_ADMIN_ROLE_ADMINISTRATOR)
      administrators++;
  return admin != NULL && admin->role == CANOPY_ADMIN_ROLE_ADMINISTRATOR && administrators == 1;
}

/* In the worker thread, with the backend to itself. */
static gboolean
run_job (CanopyBackend *backend, gpointer user_data, GError **error)
{
  Job *job = user_data;
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const CanopyAdmin *admin = NULL;
  const CanopyAdminToken *token = NULL;
  g_auto (GStrv) removed = NULL;

  job->admins = canopy_admins_load (backend, error);
  if (job->admins == NULL)
    return FALSE;
  switch (job->kind)
    {
    case JOB_READ:
      return TRUE;
    case JOB_ADD:
      /* As "canopyd admin-add": an admin of that name and role gets
       * another token; another role is a conflict. */
      job->existed = canopy_admins_lookup (job->admins, job->name) != NULL;
      admin = canopy_admins_add (job->admins, job->name, job->role, now, error);
      if (admin == NULL)
        return FALSE;
      if (job->existed)
        admin = NULL;
      G_GNUC_FALLTHROUGH;
    case JOB_ISSUE:
      token = canopy_admins_issue_token (job->admins, job->name, now, job->expires,
                                         &job->token_text, error);
      if (token == NULL)
        return FALSE;
      job->token_id = g_strdup (token->id);
      break;
    case JOB_REMOVE:
      if (canopy_admins_lookup (job->admins, job->name) == NULL)
        {
          g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_NOT_FOUND,
                       _("There is no admin \"%s\"; GET /api/v1/admins lists them"), job->name);
          return FALSE;
        }
      /* Nobody could manage admins through the console any more. */
      if (is_last_administrator (job->admins, job->name))
        {
          g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_EXISTS,
                       _("\"%s\" is the last administrator; add another administrator first"),
                       job->name);
          return FALSE;
        }
      if (!canopy_admins_revoke (job->admins, job->name, &removed, error))
        return FALSE;
      break;
    case JOB_REVOKE:
      token = canopy_admins_lookup_token (job->admins, job->token_id);
      if (token == NULL || !g_str_equal (token->admin, job->name))
        {
          g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_NOT_FOUND,
                       _("The admin \"%s\" has no token \"%s\"; GET /api/v1/admins lists the "
                         "token IDs"), job->name, job->token_id);
          return FALSE;
        }
      token = NULL;
      if (!canopy_admins_revoke (job->admins, job->token_id, &removed, error))
        return FALSE;
      break;
    }
  return canopy_admins_save (backend, admin, token, (const char *const *) removed, error);
}

static void
job_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Job *job = task_data;
  GError *error = NULL;

  if (canopy_store_with_backend (job->store, run_job, job, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
start_job (CanopyConsole *console, Job *job, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, console->cancellable, callback, user_data);

  job->store = console->context.store;
  g_task_set_task_data (task, job, (GDestroyNotify) job_free);
  /* The store must outlive the thread: canopy_console_free() waits. */
  g_task_set_return_on_cancel (task, FALSE);
  console->probes++;
  g_task_run_in_thread (task, job_in_thread);
}

/* Returns: (transfer none) (nullable): the finished job, or NULL with @error. */
static Job *
finish_job (CanopyConsole *console, GAsyncResult *result, GError **error)
{
  console->probes--;
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  return g_task_get_task_data (G_TASK (result));
}

void
canopy_console_admins_job_start (CanopyConsole *console, GAsyncReadyCallback callback,
                                 gpointer user_data)
{
  start_job (console, g_new0 (Job, 1), callback, user_data);
}

CanopyAdmins *
canopy_console_admins_job_finish (CanopyConsole *console, GAsyncResult *result, GError **error)
{
  Job *job = finish_job (console, result, error);

  return job != NULL ? g_steal_pointer (&job->admins) : NULL;
}

/* --- reads ------------------------------------------------------------------ */

static void
add_time (JsonBuilder *b, const char *name, gint64 seconds)
{
  g_autofree char *text = seconds != 0 ? canopy_log_format_time (seconds * G_USEC_PER_SEC)
                                       : NULL;

  json_builder_set_member_name (b, name);
  if (text != NULL)
    json_builder_add_string_value (b, text);
  else
    json_builder_add_null_value (b);
}

void
canopy_console_get_whoami (CanopyConsole *console, SoupServerMessage *msg)
{
  const CanopyConsoleCaller *caller = canopy_console_get_caller (msg);
  const CanopyAdminToken *token = canopy_admins_lookup_token (
    canopy_console_auth_get_admins (console->auth), caller->token_id);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, caller->name);
  json_builder_set_member_name (b, "role");
  json_builder_add_string_value (b, canopy_admin_role_to_string (caller->role));
  json_builder_set_member_name (b, "token_id");
  json_builder_add_string_value (b, caller->token_id);
  add_time (b, "expires", token != NULL ? token->expires : 0);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}

void
canopy_console_get_admins (CanopyConsole *console, SoupServerMessage *msg)
{
  const CanopyAdmins *admins = canopy_console_auth_get_admins (console->auth);
  g_autoptr (GPtrArray) list = canopy_admins_list (admins);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "admins");
  json_builder_begin_array (b);
  for (guint i = 0; i < list->len; i++)
    {
      const CanopyAdmin *admin = list->pdata[i];
      g_autoptr (GPtrArray) tokens = canopy_admins_list_tokens (admins, admin->name);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, admin->name);
      json_builder_set_member_name (b, "role");
      json_builder_add_string_value (b, canopy_admin_role_to_string (admin->role));
      add_time (b, "created", admin->created);
      json_builder_set_member_name (b, "tokens");
      json_builder_begin_array (b);
      for (guint t = 0; t < tokens->len; t++)
        {
          const CanopyAdminToken *token = tokens->pdata[t];

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "id");
          json_builder_add_string_value (b, token->id);
          add_time (b, "created", token->created);
          add_time (b, "expires", token->expires);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}

/* --- changes ---------------------------------------------------------------- */

typedef struct {
  CanopyConsole *console;
  SoupServerMessage *msg;
  char *actor;
} Change;

static void
change_free (Change *change)
{
  g_object_unref (change->msg);
  g_free (change->actor);
  g_free (change);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Change, change_free)

static void
respond_job_error (SoupServerMessage *msg, const GError *error)
{
  guint status = SOUP_STATUS_INTERNAL_SERVER_ERROR;
  const char *code = "database";

  if (error->domain == CANOPY_ADMINS_ERROR)
    switch ((CanopyAdminsError) error->code)
      {
      case CANOPY_ADMINS_ERROR_INVALID:
        status = SOUP_STATUS_UNPROCESSABLE_ENTITY, code = "invalid-value";
        break;
      case CANOPY_ADMINS_ERROR_EXISTS:
        status = SOUP_STATUS_CONFLICT, code = "conflict";
        break;
      case CANOPY_ADMINS_ERROR_NOT_FOUND:
        status = SOUP_STATUS_NOT_FOUND, code = "not-found";
        break;
      case CANOPY_ADMINS_ERROR_RANDOM:
      case CANOPY_ADMINS_ERROR_CORRUPT:
        break;
      }
  canopy_console_respond_error (msg, status, code, error->message);
}

static void
on_changed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (Change) change = user_data;
  CanopyConsole *console = change->console;
  g_autoptr (GError) error = NULL;
  Job *job = finish_job (console, result, &error);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  CanopyStore *store;

  if (g_cancellable_is_cancelled (console->cancellable))
    return;
  soup_server_message_unpause (change->msg);
  if (job == NULL)
    {
      respond_job_error (change->msg, error);
      return;
    }
  canopy_console_set_admins (console, g_steal_pointer (&job->admins));
  store = console->context.store;
  switch (job->kind)
    {
    case JOB_READ:
      g_assert_not_reached ();
    case JOB_ADD:
    case JOB_ISSUE:
      {
        g_autofree char *detail = g_strdup_printf ("%s token %s", job->name, job->token_id);

        canopy_store_audit (store, change->actor,
                            job->kind == JOB_ADD && !job->existed ? "admin-added"
                                                                  : "admin-token-issued",
                            detail);
      }
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, job->name);
      json_builder_set_member_name (b, "role");
      json_builder_add_string_value (
        b, canopy_admin_role_to_string (
             canopy_admins_lookup (canopy_console_auth_get_admins (console->auth), job->name)
               ->role));
      json_builder_set_member_name (b, "existed");
      json_builder_add_boolean_value (b, job->existed || job->kind == JOB_ISSUE);
      json_builder_set_member_name (b, "token_id");
      json_builder_add_string_value (b, job->token_id);
      json_builder_set_member_name (b, "token");
      json_builder_add_string_value (b, job->token_text);
      add_time (b, "expires", job->expires);
      json_builder_end_object (b);
      canopy_console_respond_json (change->msg, SOUP_STATUS_CREATED, json_builder_get_root (b));
      break;
    case JOB_REMOVE:
      canopy_store_audit (store, change->actor, "admin-removed", job->name);
      soup_server_message_set_status (change->msg, SOUP_STATUS_NO_CONTENT, NULL);
      break;
    case JOB_REVOKE:
      {
        g_autofree char *detail = g_strdup_printf ("%s token %s", job->name, job->token_id);

        canopy_store_audit (store, change->actor, "admin-token-revoked", detail);
      }
      soup_server_message_set_status (change->msg, SOUP_STATUS_NO_CONTENT, NULL);
      break;
    }
}

static void
run_change (CanopyConsole *console, SoupServerMessage *msg, Job *job)
{
  Change *change = g_new0 (Change, 1);

  change->console = console;
  change->msg = g_object_ref (msg);
  change->actor = canopy_console_actor (msg);
  soup_server_message_pause (msg);
  start_job (console, job, on_changed, change);
}

/* The expiry a request asks for ("expires_days", 0 for never), or the
 * configured lifetime; FALSE with the response set when it is wrong. */
static gboolean
read_expiry (CanopyConsole *console, SoupServerMessage *msg, JsonObject *object, gint64 *expires)
{
  const CanopyServerConfig *config = canopy_console_config (console);
  double days = (double) config->console_token_lifetime_days;
  JsonNode *node = json_object_get_member (object, "expires_days");

  if (node != NULL)
    {
      GType type = json_node_get_value_type (node);

      if (type != G_TYPE_INT64 && type != G_TYPE_DOUBLE)
        days = -1;
      else
        days = json_node_get_double (node);
    }
  if (!(days >= 0 && days <= 36500))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "invalid-value",
                                    _("Field \"expires_days\" must be a number of days from 0 "
                                      "(never) to 36500"));
      return FALSE;
    }
  *expires = days > 0 ? g_get_real_time () / G_USEC_PER_SEC + MAX ((gint64) (days * 86400 + 0.5), 1) : 0;
  return TRUE;
}

/* Only these members, of these JSON types. */
static gboolean
check_body (SoupServerMessage *msg, JsonObject *object, const char *const *strings)
{
  g_autoptr (GList) members = json_object_get_members (object);

  for (GList *m = members; m != NULL; m = m->next)
    {
      JsonNode *node = json_object_get_member (object, m->data);
      g_autofree char *text = NULL;

      if (g_str_equal (m->data, "expires_days"))
        continue;
      if (!g_strv_contains (strings, m->data))
        {
          g_autofree char *fields = g_strjoinv (", ", (char **) strings);

          text = g_strdup_printf (_("Unknown field \"%s\"; the fields are: %s, expires_days"),
                                  (const char *) m->data, fields);
          canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "unknown-field", text);
          return FALSE;
        }
      if (json_node_get_value_type (node) != G_TYPE_STRING)
        {
          text = g_strdup_printf (_("Field \"%s\" must be a string"), (const char *) m->data);
          canopy_console_respond_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "invalid-value",
                                        text);
          return FALSE;
        }
    }
  return TRUE;
}

static JsonObject *
read_body (SoupServerMessage *msg, const char *const *strings)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonObject) object = NULL;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  /* No body at all is an empty object: a token with the default expiry. */
  if (body->length == 0)
    return json_object_new ();
  object = canopy_console_read_object (msg, &error);
  if (object == NULL)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "bad-request", error->message);
      return NULL;
    }
  return check_body (msg, object, strings) ? g_steal_pointer (&object) : NULL;
}

void
canopy_console_post_admins (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const strings[] = { "name", "role", NULL };
  g_autoptr (JsonObject) object = read_body (msg, strings);
  g_autoptr (GError) error = NULL;
  g_autoptr (Job) job = g_new0 (Job, 1);
  const char *name, *role;

  if (object == NULL || !read_expiry (console, msg, object, &job->expires))
    return;
  name = json_object_get_string_member_with_default (object, "name", NULL);
  role = json_object_get_string_member_with_default (object, "role", NULL);
  if (name == NULL || role == NULL)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "missing-field",
                                    _("Fields \"name\" and \"role\" are required; the roles are "
                                      "administrator, operator and auditor"));
      return;
    }
  job->role = canopy_admin_role_from_string (role, &error);
  if (job->role == CANOPY_ADMIN_ROLE_NONE)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "invalid-value",
                                    error->message);
      return;
    }
  job->kind = JOB_ADD;
  job->name = g_strdup (name);
  run_change (console, msg, g_steal_pointer (&job));
}

/* "/api/v1/admins/NAME[/tokens[/ID]]" split; NULL when it is not that. */
static GStrv
split_path (SoupServerMessage *msg)
{
  const char *path = g_uri_get_path (soup_server_message_get_uri (msg));
  g_auto (GStrv) parts = g_strsplit (path + strlen ("/api/v1/admins/"), "/", 4);
  guint n = g_strv_length (parts);

  if (n == 0 || n > 3 || parts[0][0] == '\0' || (n >= 2 && !g_str_equal (parts[1], "tokens"))
      || (n == 3 && parts[2][0] == '\0'))
    {
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found",
                                    _("Admins are addressed as /api/v1/admins/NAME, their "
                                      "tokens as /api/v1/admins/NAME/tokens[/ID]"));
      return NULL;
    }
  return g_steal_pointer (&parts);
}

void
canopy_console_post_admin_tokens (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const strings[] = { NULL };
  g_auto (GStrv) parts = split_path (msg);
  g_autoptr (JsonObject) object = NULL;
  g_autoptr (Job) job = g_new0 (Job, 1);

  if (parts == NULL)
    return;
  if (g_strv_length (parts) != 2)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found",
                                    _("POST /api/v1/admins/NAME/tokens issues a token"));
      return;
    }
  object = read_body (msg, strings);
  if (object == NULL || !read_expiry (console, msg, object, &job->expires))
    return;
  job->kind = JOB_ISSUE;
  job->name = g_strdup (parts[0]);
  run_change (console, msg, g_steal_pointer (&job));
}

void
canopy_console_delete_admin (CanopyConsole *console, SoupServerMessage *msg)
{
  g_auto (GStrv) parts = split_path (msg);
  g_autoptr (Job) job = g_new0 (Job, 1);

  if (parts == NULL)
    return;
  switch (g_strv_length (parts))
    {
    case 1:
      job->kind = JOB_REMOVE;
      break;
    case 3:
      job->kind = JOB_REVOKE;
      job->token_id = g_strdup (parts[2]);
      break;
    default:
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found",
                                    _("DELETE /api/v1/admins/NAME removes an admin, DELETE "
                                      "/api/v1/admins/NAME/tokens/ID revokes one token"));
      return;
    }
  job->name = g_strdup (parts[0]);
  run_change (console, msg, g_steal_pointer (&job));
}
