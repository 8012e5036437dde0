/* When a deployment's content may move, as the console API reads and
 * shows it: "start" and "deadline" as RFC 3339 times with their offset,
 * "window" as "HH:MM-HH:MM" in the local time of each device's office;
 * and when a content expires ("expires"). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-api"

#include "server/console/console-private.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/topology.h"

static void
invalid (SoupServerMessage *msg, const char *text)
{
  canopy_console_respond_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "invalid-value", text);
}

/* An optional string member; FALSE (400 sent) when it is not a string. */
static gboolean
optional_string (SoupServerMessage *msg, JsonObject *object, const char *name,
                 const char **value)
{
  JsonNode *node = json_object_get_member (object, name);
  g_autofree char *text = NULL;

  *value = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    {
      *value = json_node_get_string (node);
      return TRUE;
    }
  text = g_strdup_printf (_("Field \"%s\" must be a string"), name);
  invalid (msg, text);
  return FALSE;
}

static gboolean
read_time (SoupServerMessage *msg, JsonObject *object, const char *name, gint64 *us)
{
  const char *text;
  g_autoptr (GDateTime) time = NULL;
  g_autofree char *message = NULL;

  *us = 0;
  if (!optional_string (msg, object, name, &text))
    return FALSE;
  if (text == NULL || text[0] == '\0')
    return TRUE;
  time = g_date_time_new_from_iso8601 (text, NULL);
  if (time != NULL && g_date_time_to_unix (time) > 0)
    {
      *us = g_date_time_to_unix (time) * G_USEC_PER_SEC;
      return TRUE;
    }
  message = g_strdup_printf (_("The %s \"%s\" is not a time; write it as RFC 3339 with its "
                               "offset, for example 2026-12-24T22:00:00Z or "
                               "2026-12-24T23:00:00+01:00"), name, text);
  invalid (msg, message);
  return FALSE;
}

gboolean
canopy_console_parse_window (const char *text, guint16 *start, guint16 *end)
{
  g_auto (GStrv) parts = g_strsplit (text, "-", -1);
  guint s, e;

  if (g_strv_length (parts) != 2)
    return FALSE;
  g_strstrip (parts[0]);
  g_strstrip (parts[1]);
  if (!canopy_parse_clock (parts[0], FALSE, &s) || !canopy_parse_clock (parts[1], TRUE, &e)
      || s == e % 1440)
    return FALSE;
  *start = (guint16) s;
  *end = (guint16) (e % 1440);
  return TRUE;
}

gboolean
canopy_console_read_timing (SoupServerMessage *msg, JsonObject *object,
                            CanopyDeploymentTiming *timing)
{
  const char *window;

  *timing = (CanopyDeploymentTiming) { 0 };
  if (!read_time (msg, object, "start", &timing->start_at)
      || !read_time (msg, object, "deadline", &timing->deadline)
      || !optional_string (msg, object, "window", &window))
    return FALSE;
  if (window != NULL && window[0] != '\0'
      && !canopy_console_parse_window (window, &timing->window_start, &timing->window_end))
    {
      g_autofree char *message = g_strdup_printf (
        _("The window \"%s\" is not a daily period; write it as HH:MM-HH:MM in the local time "
          "of the devices' offices, for example 22:00-06:00"), window);
      invalid (msg, message);
      return FALSE;
    }
  if (timing->deadline > 0 && timing->deadline <= timing->start_at)
    {
      invalid (msg, _("The deadline must come after the start; give a later deadline or an "
                      "earlier start"));
      return FALSE;
    }
  return TRUE;
}

gboolean
canopy_console_read_expiry (SoupServerMessage *msg, JsonObject *object, gint64 *expires_at)
{
  return read_time (msg, object, "expires", expires_at);
}

static void
add_time (JsonBuilder *b, const char *name, gint64 us)
{
  g_autofree char *text = canopy_log_format_time (us);

  json_builder_set_member_name (b, name);
  if (text != NULL)
    json_builder_add_string_value (b, text);
  else
    json_builder_add_null_value (b);
}

void
canopy_console_add_timing (JsonBuilder *b, const CanopyDeploymentTiming *timing)
{
  add_time (b, "start", timing->start_at);
  add_time (b, "deadline", timing->deadline);
  json_builder_set_member_name (b, "window");
  if (timing->window_start != timing->window_end)
    {
      guint end = timing->window_end == 0 ? 1440 : timing->window_end;
      g_autofree char *text = g_strdup_printf ("%02u:%02u-%02u:%02u", timing->window_start / 60,
                                               timing->window_start % 60, end / 60, end % 60);

      json_builder_add_string_value (b, text);
    }
  else
    json_builder_add_null_value (b);
}

void
canopy_console_add_expiry (JsonBuilder *b, gint64 expires_at)
{
  add_time (b, "expires", expires_at);
}
