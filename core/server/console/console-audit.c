/* GET /api/v1/audit: the audit log, newest first, a page at a time. The
 * log is read from the database in a worker thread, so a long log never
 * holds up the main loop. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-audit"

#include "server/console/console-private.h"
#include "lib/i18n.h"
#include "lib/log.h"

typedef struct {
  gint64 id;
  gint64 time_us;
  char *actor;
  char *action;
  char *detail;
} AuditEntry;

static void
audit_entry_free (gpointer data)
{
  AuditEntry *entry = data;

  g_free (entry->actor);
  g_free (entry->action);
  g_free (entry->detail);
  g_free (entry);
}

typedef struct {
  CanopyConsole *console;
  SoupServerMessage *msg;
  guint offset;
  guint limit;
  char *action; /* only entries of this action; NULL: all */
  GPtrArray *entries; /* oldest first, filled by the worker */
} AuditRead;

static void
audit_read_free (gpointer data)
{
  AuditRead *read = data;

  g_clear_object (&read->msg);
  g_free (read->action);
  g_clear_pointer (&read->entries, g_ptr_array_unref);
  g_free (read);
}

static gboolean
collect_entry (gint64 id, GVariant *value, gpointer user_data)
{
  AuditRead *read = user_data;
  AuditEntry *entry = g_new0 (AuditEntry, 1);

  g_variant_get (value, "(xsss)", &entry->time_us, &entry->actor, &entry->action,
                 &entry->detail);
  entry->id = id;
  if (read->action != NULL && g_strcmp0 (read->action, entry->action) != 0)
    audit_entry_free (entry);
  else
    g_ptr_array_add (read->entries, entry);
  return TRUE;
}

static gboolean
list_audit (CanopyBackend *backend, gpointer user_data, GError **error)
{
  return canopy_backend_list_log (backend, CANOPY_LOG_AUDIT, 0, 0, collect_entry, user_data,
                                  error);
}

static void
read_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  AuditRead *read = task_data;
  GError *error = NULL;

  if (canopy_store_with_backend (read->console->context.store, list_audit, read, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
add_entry (JsonBuilder *b, const AuditEntry *entry)
{
  g_autofree char *when = canopy_log_format_time (entry->time_us);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_int_value (b, entry->id);
  json_builder_set_member_name (b, "time");
  json_builder_add_string_value (b, when != NULL ? when : "");
  json_builder_set_member_name (b, "actor");
  json_builder_add_string_value (b, entry->actor);
  json_builder_set_member_name (b, "action");
  json_builder_add_string_value (b, entry->action);
  json_builder_set_member_name (b, "detail");
  json_builder_add_string_value (b, entry->detail);
  json_builder_end_object (b);
}

static JsonNode *
build_page (const AuditRead *read)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  guint total = read->entries->len;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "entries");
  json_builder_begin_array (b);
  /* Newest first: entry @i of the page is the (offset + i)th from the end. */
  for (guint i = read->offset; i < total && i - read->offset < read->limit; i++)
    add_entry (b, g_ptr_array_index (read->entries, total - 1 - i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "total");
  json_builder_add_int_value (b, total);
  json_builder_set_member_name (b, "offset");
  json_builder_add_int_value (b, read->offset);
  json_builder_set_member_name (b, "limit");
  json_builder_add_int_value (b, read->limit);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
on_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = G_TASK (result);
  AuditRead *read = g_task_get_task_data (task);
  g_autoptr (GError) error = NULL;

  read->console->probes--;
  /* The console is going when its cancellable fired; the message with it. */
  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    return;
  if (g_task_propagate_boolean (task, &error))
    canopy_console_respond_json (read->msg, SOUP_STATUS_OK, build_page (read));
  else
    {
      g_autofree char *text = g_strdup_printf (_("The audit log cannot be read from the "
                                                 "database: %s; check the health check's "
                                                 "backend entry"), error->message);

      canopy_console_respond_error (read->msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
                                    "backend-unavailable", text);
    }
  soup_server_message_unpause (read->msg);
}

void
canopy_console_get_audit (CanopyConsole *console, SoupServerMessage *msg)
{
  static const char *const allowed[] = { "offset", "limit", "action", NULL };
  g_autoptr (GHashTable) query = canopy_console_read_query (msg, allowed);
  g_autoptr (GTask) task = NULL;
  AuditRead *read;
  guint offset = 0, limit = 100;

  if (query == NULL
      || !canopy_console_read_page (msg, query, CANOPY_CONSOLE_PAGE_MAX, &offset, &limit))
    return;
  read = g_new0 (AuditRead, 1);
  read->console = console;
  read->msg = g_object_ref (msg);
  read->offset = offset;
  read->limit = limit;
  read->action = g_strdup (g_hash_table_lookup (query, "action"));
  read->entries = g_ptr_array_new_with_free_func (audit_entry_free);
  task = g_task_new (NULL, console->cancellable, on_read, NULL);
  g_task_set_task_data (task, read, audit_read_free);
  g_task_set_return_on_cancel (task, FALSE);
  soup_server_message_pause (msg);
  console->probes++;
  g_task_run_in_thread (task, read_in_thread);
}
