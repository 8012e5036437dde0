/* canopyctl deployment-show: reads every page of the deployment's devices
 * (GET /api/v1/deployments/ID/devices) and prints one row per device, or
 * the devices as one JSON answer with --json. */
#include "build-config.h"

#include "ctl/ctl-device-status.h"
#include "ctl/ctl-resolve.h"
#include "ctl/ctl-table.h"
#include "lib/i18n.h"

#include <string.h>

/* The server's largest page. */
#define PAGE 1000

static const char *const source_members[] = { "office_peer", "parent_peer", "server", "origin",
                                               "earlier_versions" };

static gint64
member_int (JsonObject *o, const char *name)
{
  return json_object_get_int_member_with_default (o, name, 0);
}

static char *
format_bytes (gint64 bytes)
{
  return g_format_size_full (bytes > 0 ? (guint64) bytes : 0, G_FORMAT_SIZE_IEC_UNITS);
}

/* "peers 10 MiB, server 2 MiB": the sources that gave anything. */
static char *
format_by_source (JsonObject *device)
{
  static const char *labels[] = { N_("office peers"), N_("parent office"), N_("server"),
                                  N_("origin"), N_("earlier versions") };
  G_STATIC_ASSERT (G_N_ELEMENTS (labels) == G_N_ELEMENTS (source_members));
  JsonObject *bytes = json_object_has_member (device, "bytes")
                        ? json_object_get_object_member (device, "bytes") : NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint k = 0; bytes != NULL && k < G_N_ELEMENTS (source_members); k++)
    {
      gint64 n = member_int (bytes, source_members[k]);
      g_autofree char *text = NULL;

      if (n <= 0)
        continue;
      text = format_bytes (n);
      g_string_append_printf (out, "%s%s %s", out->len > 0 ? ", " : "", _(labels[k]), text);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static char *
join_array (JsonObject *o, const char *name)
{
  JsonArray *array = json_object_has_member (o, name) ? json_object_get_array_member (o, name)
                                                      : NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    g_string_append_printf (out, "%s%s", i > 0 ? ", " : "",
                            json_array_get_string_element (array, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static const char *
member_text (JsonObject *o, const char *name)
{
  JsonNode *node = json_object_get_member (o, name);

  return node != NULL && JSON_NODE_HOLDS_VALUE (node)
             && json_node_get_value_type (node) == G_TYPE_STRING
           ? json_node_get_string (node)
           : NULL;
}

static void
print_table (const CtlGlobal *global, JsonArray *devices, const char *id)
{
  const char *headers[] = { _("NAME"), _("DEVICE"), _("OFFICE"), _("STATE"), _("DONE"),
                            _("ROLE"), _("SOURCES"), _("BYTES BY SOURCE"), _("LAST REPORT"),
                            NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);
  g_autoptr (GString) errors = g_string_new (NULL);

  /* Devices by name; the ID one flag away, as everywhere in canopyctl. */
  ctl_table_set_wide_only (table, 1);
  if (json_array_get_length (devices) == 0)
    {
      g_print (_("Deployment %s has no target device that matches; its groups may have no "
                 "device enrolled yet.\n"), id);
      return;
    }
  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      JsonObject *d = json_array_get_object_element (devices, i);
      g_autofree char *done = g_strdup_printf ("%" G_GINT64_FORMAT "%%",
                                               member_int (d, "percent"));
      g_autofree char *sources = join_array (d, "sources");
      g_autofree char *by_source = format_by_source (d);
      const char *error = member_text (d, "error");
      const char *row[] = { member_text (d, "name"), member_text (d, "device_id"),
                            member_text (d, "office"), member_text (d, "state"), done,
                            member_text (d, "role"), sources[0] != '\0' ? sources : NULL,
                            by_source[0] != '\0' ? by_source : NULL,
                            member_text (d, "last_report"), NULL };

      ctl_table_add_row (table, row);
      if (error != NULL && error[0] != '\0')
        g_string_append_printf (errors, "  %s: %s\n", member_text (d, "name"), error);
    }
  ctl_table_print (table, &global->style);
  if (errors->len > 0)
    g_print (_("\nLast error of each device that reported one:\n%s"), errors->str);
}

/* "/api/v1/deployments/ID/devices?...", every value escaped. */
static char *
page_path (const char *id, const char *office, const char *state, guint offset)
{
  g_autofree char *escaped_id = g_uri_escape_string (id, NULL, FALSE);
  GString *path = g_string_new (NULL);

  g_string_printf (path, "/api/v1/deployments/%s/devices?offset=%u&limit=%u", escaped_id,
                   offset, PAGE);
  if (office != NULL)
    {
      g_autofree char *escaped = g_uri_escape_string (office, NULL, FALSE);
      g_string_append_printf (path, "&office=%s", escaped);
    }
  if (state != NULL)
    {
      g_autofree char *escaped = g_uri_escape_string (state, NULL, FALSE);
      g_string_append_printf (path, "&state=%s", escaped);
    }
  return g_string_free (path, FALSE);
}

int
ctl_device_status_show (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *office = NULL, *state = NULL;
  const GOptionEntry entries[] = {
    { "office", 0, 0, G_OPTION_ARG_STRING, &office, NULL, NULL },
    { "state", 0, 0, G_OPTION_ARG_STRING, &state, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonArray) all = json_array_new ();
  gint64 total = 0;
  g_autofree char *id = NULL;

  if (!ctl_console_parse_options (&argc, &argv, entries, 1) || argc != 2)
    return ctl_console_usage (_("canopyctl deployment-show DEPLOYMENT [--office NAME] "
                                "[--state waiting|fetching|done|failed|refused|cancelled]"));
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  id = ctl_resolve (client, CTL_KIND_DEPLOYMENT, argv[1], &error);
  if (id == NULL)
    return ctl_console_fail (global, client, error);
  for (guint offset = 0;; offset += PAGE)
    {
      g_autofree char *path = page_path (id, office, state, offset);
      g_autoptr (JsonNode) answer = ctl_client_request_json (client, "GET", path, NULL, &error);
      JsonObject *o;
      JsonArray *devices;

      if (answer == NULL)
        return ctl_console_fail (global, client, error);
      o = JSON_NODE_HOLDS_OBJECT (answer) ? json_node_get_object (answer) : NULL;
      devices = o != NULL && json_object_has_member (o, "devices")
                  ? json_object_get_array_member (o, "devices") : NULL;
      if (devices == NULL)
        {
          g_printerr (_("The server's answer has no device list; is it a canopyd of this "
                        "release?\n"));
          return CTL_ERROR_FAILED;
        }
      total = member_int (o, "total");
      for (guint i = 0; i < json_array_get_length (devices); i++)
        json_array_add_element (all, json_node_copy (json_array_get_element (devices, i)));
      if (json_array_get_length (devices) == 0 || offset + PAGE >= total)
        break;
    }
  if (global->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      JsonNode *list = json_node_new (JSON_NODE_ARRAY);

      json_node_set_array (list, all);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "deployment");
      json_builder_add_string_value (b, id);
      json_builder_set_member_name (b, "total");
      json_builder_add_int_value (b, total);
      json_builder_set_member_name (b, "devices");
      json_builder_add_value (b, list);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      ctl_console_print_json (root);
      return 0;
    }
  print_table (global, all, id);
  return 0;
}
