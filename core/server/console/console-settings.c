/* The Peer Distribution settings through the console API: read, change
 * (checked whole, then saved, audited and put in force at once), and the
 * topology spreadsheet uploaded and downloaded. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-settings"

#include "server/console/console-private.h"
#include "lib/i18n.h"

#include <string.h>

static const CanopySettingsField all_fields[] = {
  CANOPY_SETTINGS_NAME, CANOPY_SETTINGS_OPTIMIZATION, CANOPY_SETTINGS_GROUPS,
  CANOPY_SETTINGS_TOPOLOGY, CANOPY_SETTINGS_NO_OFFICE,
};

void
canopy_console_get_server_id (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "server_id");
  json_builder_add_string_value (builder, console->context.server_id);
  json_builder_set_member_name (builder, "version");
  json_builder_add_string_value (builder, PACKAGE_VERSION);
  json_builder_end_object (builder);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (builder));
}

void
canopy_console_get_settings (CanopyConsole *console, SoupServerMessage *msg)
{
  canopy_console_respond_json (msg, SOUP_STATUS_OK,
                               canopy_settings_to_json (canopy_console_settings (console)));
}

/* Saves, audits and applies @after (transfer full); @fields changed. */
static void
commit (CanopyConsole *console, SoupServerMessage *msg, const CanopySettings *before,
        CanopySettings *after, guint fields, CanopyTopology *topology)
{
  CanopyStore *store = console->context.store;
  g_autofree char *actor = canopy_console_actor (msg);

  canopy_settings_save (after, fields, store);
  for (gsize i = 0; i < G_N_ELEMENTS (all_fields); i++)
    if (fields & all_fields[i])
      {
        g_autofree char *detail = canopy_settings_describe_change (before, after, all_fields[i]);
        const char *action = canopy_settings_field_to_action (all_fields[i]);

        canopy_store_audit (store, actor, action, detail);
      }
  console->context.apply_settings (console->context.owner, after, topology);
}

static void
respond_settings_error (SoupServerMessage *msg, const GError *error)
{
  if (error->domain == CANOPY_CONSOLE_JSON_ERROR)
    canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST,
                                  error->code == CANOPY_CONSOLE_JSON_ERROR_MALFORMED
                                    ? "malformed-json" : "bad-request",
                                  error->message);
  else if (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_UNKNOWN_FIELD))
    canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "unknown-field", error->message);
  else if (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_NO_TOPOLOGY))
    canopy_console_respond_error (msg, SOUP_STATUS_CONFLICT, "no-topology", error->message);
  else
    canopy_console_respond_error (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "invalid-value",
                                  error->message);
}

void
canopy_console_put_settings (CanopyConsole *console, SoupServerMessage *msg)
{
  const CanopySettings *before = canopy_console_settings (console);
  g_autoptr (CanopySettings) after = canopy_settings_copy (before);
  g_autoptr (JsonObject) object = NULL;
  g_autoptr (CanopyTopology) topology = NULL;
  g_autoptr (GError) error = NULL;
  guint changed = 0;

  object = canopy_console_read_object (msg, &error);
  if (object == NULL || !canopy_settings_apply_json (after, object, &changed, &error))
    {
      respond_settings_error (msg, error);
      return;
    }
  /* Turning optimization on or off changes where offices come from. */
  if (changed & CANOPY_SETTINGS_OPTIMIZATION)
    {
      topology = canopy_settings_build_topology (after, NULL, NULL, &error);
      if (topology == NULL)
        {
          respond_settings_error (msg, error);
          return;
        }
    }
  if (changed != 0)
    commit (console, msg, before, g_steal_pointer (&after), changed,
            g_steal_pointer (&topology));
  canopy_console_get_settings (console, msg);
}

void
canopy_console_get_topology (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autofree char *csv = canopy_topology_export_csv (canopy_console_topology (console));

  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Content-Disposition", "attachment; filename=\"topology.csv\"");
  canopy_console_respond_text (msg, SOUP_STATUS_OK, "text/csv; charset=utf-8", csv);
}

static JsonNode *
problems_to_json (GPtrArray *problems, GArray *locations)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  json_builder_begin_array (builder);
  for (guint i = 0; i < problems->len; i++)
    {
      const CanopyTopologyLocation *where = &g_array_index (locations, CanopyTopologyLocation, i);

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "line");
      json_builder_add_int_value (builder, where->line);
      if (where->column > 0)
        {
          json_builder_set_member_name (builder, "column");
          json_builder_add_int_value (builder, where->column);
        }
      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, g_ptr_array_index (problems, i));
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  return json_builder_get_root (builder);
}

static void
respond_uploaded (SoupServerMessage *msg, guint offices, gboolean applied)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();
  g_autofree char *text = NULL;

  if (applied)
    text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                         "The topology with %u office is in force; devices "
                                         "are placed in its office when they next connect",
                                         "The topology with %u offices is in force; devices "
                                         "are placed in its offices when they next connect",
                                         offices),
                            offices);
  else
    text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                         "The topology with %u office is saved; it takes "
                                         "effect when distribution optimization is turned "
                                         "on",
                                         "The topology with %u offices is saved; it takes "
                                         "effect when distribution optimization is turned "
                                         "on",
                                         offices),
                            offices);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "offices");
  json_builder_add_int_value (builder, offices);
  json_builder_set_member_name (builder, "applied");
  json_builder_add_boolean_value (builder, applied);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, text);
  json_builder_end_object (builder);
  canopy_console_respond_json (msg, SOUP_STATUS_OK, json_builder_get_root (builder));
}

void
canopy_console_put_topology (CanopyConsole *console, SoupServerMessage *msg)
{
  const CanopySettings *before = canopy_console_settings (console);
  g_autoptr (CanopySettings) after = canopy_settings_copy (before);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) problems = NULL;
  g_autoptr (GArray) locations = NULL;
  g_autoptr (CanopyTopology) topology = NULL;
  gboolean applied = after->distribution_optimization;
  guint offices;

  after->topology_csv = canopy_console_read_text (msg, &error);
  if (after->topology_csv == NULL)
    {
      canopy_console_respond_error (msg, SOUP_STATUS_BAD_REQUEST, "bad-request", error->message);
      return;
    }
  topology = canopy_topology_import_csv_located (after->topology_csv, NULL, &problems,
                                                 &locations);
  if (topology == NULL)
    {
      g_autofree char *text = g_strdup_printf (
        g_dngettext (GETTEXT_PACKAGE,
                     "The topology spreadsheet has %u problem and was not taken; nothing "
                     "changed. Correct the line named and upload it again",
                     "The topology spreadsheet has %u problems and was not taken; nothing "
                     "changed. Correct each line named and upload it again",
                     problems->len),
        problems->len);
      canopy_console_respond_error_with (msg, SOUP_STATUS_UNPROCESSABLE_ENTITY, "invalid-topology",
                                         text, "problems", problems_to_json (problems, locations));
      return;
    }
  /* The central office is always there; count the admin's own. */
  offices = canopy_topology_get_offices (topology)->len - 1;
  commit (console, msg, before, g_steal_pointer (&after), CANOPY_SETTINGS_TOPOLOGY,
          applied ? g_steal_pointer (&topology) : NULL);
  respond_uploaded (msg, offices, applied);
}
