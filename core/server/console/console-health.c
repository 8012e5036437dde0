/* GET /api/v1/health: runs the health checks (server/health.c), the
 * blocking probe in a worker thread, and renders them as JSON. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-health"

#include "server/console/console-private.h"
#include "server/health.h"

typedef struct {
  CanopyConsole *console;
  SoupServerMessage *msg;
} Pending;

static void
pending_free (Pending *pending)
{
  g_object_unref (pending->msg);
  g_free (pending);
}

static void
probe_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  canopy_health_probe_run (task_data);
  g_task_return_boolean (task, TRUE);
}

static JsonNode *
build_report (CanopyConsole *console, const CanopyHealthProbe *probe)
{
  CanopyHealthInputs in = {
    .store = console->context.store,
    .sessions = console->context.sessions,
    .catalog = console->context.catalog,
    .distributor = console->context.distributor,
    .content_store = console->context.content_store,
    .licensing = console->context.licensing,
    .run_marker = console->context.run_marker,
    .settings = canopy_console_settings (console),
    .key_digest = console->key_digest,
    .cluster = console->context.cluster,
  };
  g_autoptr (GPtrArray) checks = canopy_health_compute (&in, probe);
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "checks");
  json_builder_begin_array (b);
  for (guint i = 0; i < checks->len; i++)
    {
      const CanopyHealthCheck *check = g_ptr_array_index (checks, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, check->name);
      json_builder_set_member_name (b, "status");
      json_builder_add_string_value (b, canopy_health_status_to_string (check->status));
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, check->message);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, canopy_health_status_to_string (canopy_health_worst (checks)));
  json_builder_set_member_name (b, "server_id");
  json_builder_add_string_value (b, console->context.server_id);
  json_builder_set_member_name (b, "version");
  json_builder_add_string_value (b, PACKAGE_VERSION);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

static void
on_probed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Pending *pending = user_data;
  GTask *task = G_TASK (result);

  pending->console->probes--;
  /* The console is going when its cancellable fired; the message with it. */
  if (!g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      canopy_console_respond_json (pending->msg, SOUP_STATUS_OK,
                                   build_report (pending->console, g_task_get_task_data (task)));
      soup_server_message_unpause (pending->msg);
    }
  pending_free (pending);
}

void
canopy_console_get_health (CanopyConsole *console, SoupServerMessage *msg)
{
  CanopyContentStore *content_store = console->context.content_store;
  CanopyHealthProbe *probe = canopy_health_probe_new (
    console->context.store, console->key_path,
    content_store != NULL ? canopy_content_store_get_directory (content_store) : NULL);
  Pending *pending = g_new0 (Pending, 1);
  g_autoptr (GTask) task = NULL;

  pending->console = console;
  pending->msg = g_object_ref (msg);
  task = g_task_new (NULL, console->cancellable, on_probed, pending);
  g_task_set_task_data (task, probe, (GDestroyNotify) canopy_health_probe_free);
  g_task_set_return_on_cancel (task, FALSE);
  soup_server_message_pause (msg);
  console->probes++;
  g_task_run_in_thread (task, probe_in_thread);
}
