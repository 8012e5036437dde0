/* GET /api/v1/deployments/ID/devices: where each target device of a
 * deployment stands, paged, by office and state. The answer's shape is a
 * contract the web console codes against (docs/console-api.md). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-api"

#include "server/console/console-private.h"
#include "server/distributor.h"
#include "lib/i18n.h"
#include "lib/log.h"

#include <string.h>
#include <inttypes.h>

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000
#define PREFIX "/api/v1/deployments/"
#define SUFFIX "/devices"

static const char *const source_members[] = { "office_peer", "parent_peer", "server", "origin" };

/* The deployment ID of a path PREFIX ID SUFFIX, or NULL. */
static char *
path_deployment_id (const char *path)
{
  const char *start, *end;

  if (!g_str_has_prefix (path, PREFIX) || !g_str_has_suffix (path, SUFFIX))
    return NULL;
  start = path + strlen (PREFIX);
  end = path + strlen (path) - strlen (SUFFIX);
  if (end <= start || memchr (start, '/', end - start) != NULL)
    return NULL;
  return g_strndup (start, end - start);
}

static void
invalid (SoupServerMessage *msg, const char *text)
{
  canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "invalid-value", text);
}

/* A whole number within [0, max] from the query, or @fallback if absent. */
static gboolean
read_count (SoupServerMessage *msg, GHashTable *params, const char *name, guint64 min,
            guint64 max, guint64 fallback, guint64 *value)
{
  const char *text = params != NULL ? g_hash_table_lookup (params, name) : NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *message = NULL;

  *value = fallback;
  if (text == NULL)
    return TRUE;
  if (g_ascii_string_to_unsigned (text, 10, min, max, value, &error))
    return TRUE;
  message = g_strdup_printf (_("The %s \"%s\" is not a whole number from %" PRIu64
                               " to %" PRIu64 "; give one in that range"),
                             name, text, min, max);
  invalid (msg, message);
  return FALSE;
}

/* Reads the query; on a problem responds 400 and returns FALSE. */
static gboolean
read_filters (SoupServerMessage *msg, const char **office, int *state, guint64 *offset,
              guint64 *limit, GHashTable **out)
{
  static const char *const allowed[] = { "office", "state", "offset", "limit", NULL };
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr (GHashTable) params = NULL;
  GHashTableIter iter;
  const char *name, *state_text;
  CanopyDeviceState parsed;

  if (query != NULL
      && (params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL)) == NULL)
    {
      invalid (msg, _("The query string cannot be read; write it as ?name=value&name=value "
                      "with %-escapes"));
      return FALSE;
    }
  if (params != NULL)
    {
      g_hash_table_iter_init (&iter, params);
      while (g_hash_table_iter_next (&iter, (gpointer *) &name, NULL))
        if (!g_strv_contains (allowed, name))
          {
            g_autofree char *text = g_strdup_printf (
              _("Unknown query parameter \"%s\"; this request takes: office, state, offset, "
                "limit"), name);
            invalid (msg, text);
            return FALSE;
          }
    }
  *office = params != NULL ? g_hash_table_lookup (params, "office") : NULL;
  state_text = params != NULL ? g_hash_table_lookup (params, "state") : NULL;
  *state = -1;
  if (state_text != NULL)
    {
      if (!canopy_device_state_from_string (state_text, &parsed))
        {
          g_autofree char *text = g_strdup_printf (
            _("The state \"%s\" is not one of: waiting, fetching, done, failed, refused, "
              "cancelled"), state_text);
          invalid (msg, text);
          return FALSE;
        }
      *state = (int) parsed;
    }
  if (!read_count (msg, params, "offset", 0, G_MAXUINT32, 0, offset)
      || !read_count (msg, params, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT, limit))
    return FALSE;
  *out = g_steal_pointer (&params);
  return TRUE;
}

static void
add_device (JsonBuilder *b, const CanopyDeviceStatus *s)
{
  g_autofree char *last_report = canopy_log_format_time (s->last_report);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "device_id");
  json_builder_add_string_value (b, s->device_id);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, s->name);
  json_builder_set_member_name (b, "office");
  json_builder_add_string_value (b, s->office);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, canopy_device_state_to_string (s->state));
  json_builder_set_member_name (b, "percent");
  json_builder_add_int_value (b, s->percent);
  json_builder_set_member_name (b, "bytes_done");
  json_builder_add_int_value (b, (gint64) s->bytes_done);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, (gint64) s->size);
  json_builder_set_member_name (b, "bytes");
  json_builder_begin_object (b);
  for (guint k = 0; k < G_N_ELEMENTS (source_members); k++)
    {
      json_builder_set_member_name (b, source_members[k]);
      json_builder_add_int_value (b, (gint64) s->bytes[k]);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "role");
  json_builder_add_string_value (b, s->role);
  json_builder_set_member_name (b, "sources");
  json_builder_add_value (b, canopy_console_json_strv ((const char *const *) s->sources));
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, s->error);
  json_builder_set_member_name (b, "last_report");
  if (last_report != NULL)
    json_builder_add_string_value (b, last_report);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
}

void
canopy_console_get_deployment_devices (CanopyConsole *console, SoupServerMessage *msg)
{
  const char *path = g_uri_get_path (soup_server_message_get_uri (msg));
  g_autofree char *id = path_deployment_id (path);
  g_autoptr (GHashTable) params = NULL;
  g_autoptr (GPtrArray) devices = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *office = NULL;
  int state = -1;
  guint64 offset = 0, limit = DEFAULT_LIMIT;

  if (id == NULL)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found",
                                    _("No such resource; the devices of a deployment are at "
                                      "/api/v1/deployments/ID/devices"));
      return;
    }
  if (!read_filters (msg, &office, &state, &offset, &limit, &params))
    return;
  devices = canopy_distributor_get_devices (console->context.distributor, id, office, state);
  if (devices == NULL)
    {
      g_autofree char *text = g_strdup_printf (
        _("No deployment has the ID %s; list the deployments to see the IDs"), id);
      canopy_console_respond_error (msg, SOUP_STATUS_NOT_FOUND, "not-found", text);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "deployment");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "total");
  json_builder_add_int_value (b, devices->len);
  json_builder_set_member_name (b, "offset");
  json_builder_add_int_value (b, (gint64) offset);
  json_builder_set_member_name (b, "limit");
  json_builder_add_int_value (b, (gint64) limit);
  json_builder_set_member_name (b, "devices");
  json_builder_begin_array (b);
  for (guint64 i = offset; i < devices->len && i < offset + limit; i++)
    add_device (b, g_ptr_array_index (devices, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (b));
}
