/* The Peer Distribution settings. Every check happens on a copy before
 * anything is applied, so a request with one bad field changes nothing. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-distribution-settings"

#include "server/distribution-settings.h"
#include "lib/i18n.h"

#include <string.h>

#define MAX_GROUPS 1000
#define MAX_GROUP_LENGTH 256

/* Keys of the setting records in the backend. */
#define KEY_NAME "server-name"
#define KEY_OPTIMIZATION "distribution-optimization"
#define KEY_GROUPS "assigned-groups"
#define KEY_TOPOLOGY "topology-csv"
#define KEY_NO_OFFICE "no-office-clients"

G_DEFINE_QUARK (canopy-settings-error-quark, canopy_settings_error)

const char *
canopy_no_office_clients_to_string (CanopyNoOfficeClients value)
{
  return value == CANOPY_NO_OFFICE_REFUSE ? "refuse" : "origin";
}

static gboolean
no_office_clients_from_string (const char *text, CanopyNoOfficeClients *value)
{
  if (g_str_equal (text, "origin"))
    *value = CANOPY_NO_OFFICE_ORIGIN;
  else if (g_str_equal (text, "refuse"))
    *value = CANOPY_NO_OFFICE_REFUSE;
  else
    return FALSE;
  return TRUE;
}

void
canopy_settings_free (CanopySettings *settings)
{
  if (settings == NULL)
    return;
  g_free (settings->name);
  g_strfreev (settings->assigned_groups);
  g_free (settings->topology_csv);
  g_free (settings);
}

CanopySettings *
canopy_settings_copy (const CanopySettings *settings)
{
  CanopySettings *copy = g_new0 (CanopySettings, 1);

  copy->name = g_strdup (settings->name);
  copy->distribution_optimization = settings->distribution_optimization;
  copy->assigned_groups = g_strdupv (settings->assigned_groups);
  copy->topology_csv = g_strdup (settings->topology_csv);
  copy->no_office_clients = settings->no_office_clients;
  copy->stored = settings->stored;
  return copy;
}

CanopySettings *
canopy_settings_new_from_config (const CanopyServerConfig *config, GError **error)
{
  g_autoptr (CanopySettings) settings = g_new0 (CanopySettings, 1);

  settings->name = g_strdup (config->name);
  settings->distribution_optimization = config->distribution_optimization;
  settings->assigned_groups = g_strdupv (config->assigned_groups);
  if (config->distribution_optimization
      && !g_file_get_contents (config->topology_file, &settings->topology_csv, NULL, error))
    return NULL;
  return g_steal_pointer (&settings);
}

void
canopy_settings_update_from_config (CanopySettings *settings, const CanopyServerConfig *config)
{
  if (!(settings->stored & CANOPY_SETTINGS_NAME))
    {
      g_free (settings->name);
      settings->name = g_strdup (config->name);
    }
  if (!(settings->stored & CANOPY_SETTINGS_GROUPS))
    {
      g_strfreev (settings->assigned_groups);
      settings->assigned_groups = g_strdupv (config->assigned_groups);
    }
}

static gboolean
load_one (const char *key, GVariant *value, gpointer user_data)
{
  CanopySettings *settings = user_data;
  const char *text;

  g_variant_get (value, "(&s)", &text);
  if (g_str_equal (key, KEY_NAME))
    {
      g_free (settings->name);
      settings->name = g_strdup (text);
      settings->stored |= CANOPY_SETTINGS_NAME;
    }
  else if (g_str_equal (key, KEY_OPTIMIZATION))
    {
      settings->distribution_optimization = g_str_equal (text, "true");
      settings->stored |= CANOPY_SETTINGS_OPTIMIZATION;
    }
  else if (g_str_equal (key, KEY_GROUPS))
    {
      g_strfreev (settings->assigned_groups);
      settings->assigned_groups = text[0] != '\0' ? g_strsplit (text, "\n", -1)
                                                  : g_new0 (char *, 1);
      settings->stored |= CANOPY_SETTINGS_GROUPS;
    }
  else if (g_str_equal (key, KEY_TOPOLOGY))
    {
      g_free (settings->topology_csv);
      settings->topology_csv = text[0] != '\0' ? g_strdup (text) : NULL;
      settings->stored |= CANOPY_SETTINGS_TOPOLOGY;
    }
  else if (g_str_equal (key, KEY_NO_OFFICE))
    {
      if (no_office_clients_from_string (text, &settings->no_office_clients))
        settings->stored |= CANOPY_SETTINGS_NO_OFFICE;
      else
        g_warning (_("The stored setting no_office_clients is \"%s\", neither \"origin\" nor "
                     "\"refuse\"; using \"origin\" until an administrator sets it again"),
                   text);
    }
  return TRUE;
}

void
canopy_settings_load_record (CanopySettings *settings, const char *key, GVariant *value)
{
  load_one (key, value, settings);
}

gboolean
canopy_settings_load_stored (CanopySettings *settings, CanopyStore *store, GError **error)
{
  return canopy_store_list (store, CANOPY_RECORD_SETTING, load_one, settings, error);
}

static void
put (CanopyStore *store, const char *key, const char *value)
{
  canopy_store_put (store, CANOPY_RECORD_SETTING, key, g_variant_new ("(s)", value));
}

void
canopy_settings_save (CanopySettings *settings, guint fields, CanopyStore *store)
{
  if (fields & CANOPY_SETTINGS_NAME)
    put (store, KEY_NAME, settings->name);
  if (fields & CANOPY_SETTINGS_OPTIMIZATION)
    put (store, KEY_OPTIMIZATION, settings->distribution_optimization ? "true" : "false");
  if (fields & CANOPY_SETTINGS_GROUPS)
    {
      g_autofree char *joined = g_strjoinv ("\n", settings->assigned_groups);
      put (store, KEY_GROUPS, joined);
    }
  if (fields & CANOPY_SETTINGS_TOPOLOGY)
    put (store, KEY_TOPOLOGY, settings->topology_csv != NULL ? settings->topology_csv : "");
  if (fields & CANOPY_SETTINGS_NO_OFFICE)
    put (store, KEY_NO_OFFICE, canopy_no_office_clients_to_string (settings->no_office_clients));
  settings->stored |= fields;
}

CanopyTopology *
canopy_settings_build_topology (const CanopySettings *settings, GPtrArray **problems,
                                GArray **locations, GError **error)
{
  g_autoptr (GPtrArray) found = NULL;
  g_autoptr (GArray) where = NULL;
  CanopyTopology *topology;

  if (!settings->distribution_optimization)
    return canopy_topology_new (NULL);
  if (settings->topology_csv == NULL)
    {
      g_set_error (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_NO_TOPOLOGY,
                   _("Distribution optimization needs the topology spreadsheet; upload it "
                     "first, then turn distribution optimization on"));
      return NULL;
    }
  topology = canopy_topology_import_csv_located (settings->topology_csv, NULL, &found, &where);
  if (topology != NULL)
    return topology;
  g_set_error (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_TOPOLOGY,
               g_dngettext (GETTEXT_PACKAGE,
                            "The topology spreadsheet has %u problem; correct the line "
                            "named and upload it again",
                            "The topology spreadsheet has %u problems; correct each line "
                            "named and upload it again",
                            found->len),
               found->len);
  if (problems != NULL)
    *problems = g_steal_pointer (&found);
  if (locations != NULL)
    *locations = g_steal_pointer (&where);
  return NULL;
}

JsonNode *
canopy_settings_to_json (const CanopySettings *settings)
{
  g_autoptr (JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "server_name");
  json_builder_add_string_value (builder, settings->name);
  json_builder_set_member_name (builder, "distribution_optimization");
  json_builder_add_boolean_value (builder, settings->distribution_optimization);
  json_builder_set_member_name (builder, "assigned_groups");
  json_builder_begin_array (builder);
  for (char **g = settings->assigned_groups; g != NULL && *g != NULL; g++)
    json_builder_add_string_value (builder, *g);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "topology_uploaded");
  json_builder_add_boolean_value (builder, settings->topology_csv != NULL);
  json_builder_set_member_name (builder, "no_office_clients");
  json_builder_add_string_value (builder,
                                 canopy_no_office_clients_to_string (settings->no_office_clients));
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static gboolean
valid_label (const char *label, gsize length)
{
  if (length == 0 || length > 63 || label[0] == '-' || label[length - 1] == '-')
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isalnum (label[i]) && label[i] != '-')
      return FALSE;
  return TRUE;
}

gboolean
canopy_settings_check_name (const char *name, GError **error)
{
  const char *p = name;
  gsize length = strlen (name);
  gboolean ok = length > 0 && length <= 253;

  if (ok && g_hostname_is_ip_address (name))
    return TRUE;
  while (ok)
    {
      const char *dot = strchr (p, '.');
      gsize label = dot != NULL ? (gsize) (dot - p) : strlen (p);

      ok = valid_label (p, label);
      if (dot == NULL)
        break;
      p = dot + 1;
    }
  if (!ok)
    g_set_error (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_INVALID,
                 _("\"server_name\" must be a host name (letters, digits, hyphens and dots, "
                   "such as p2p.example.com) or an IP address"));
  return ok;
}

static gboolean
invalid (GError **error, const char *field, const char *what)
{
  g_set_error (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_INVALID,
               _("\"%s\" %s"), field, what);
  return FALSE;
}

static gboolean
is_string (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING;
}

static gboolean
check_group (const char *group, GError **error)
{
  gsize length = strlen (group);

  if (length == 0 || length > MAX_GROUP_LENGTH || g_ascii_isspace (group[0])
      || g_ascii_isspace (group[length - 1]))
    return invalid (error, "assigned_groups",
                    _("holds an empty group name, one over 256 bytes or one with spaces around "
                      "it; write each group as the UEM console names it"));
  for (const char *p = group; *p != '\0'; p++)
    if (g_ascii_iscntrl (*p))
      return invalid (error, "assigned_groups",
                      _("holds a group name with a control character (such as a line break); "
                        "remove it"));
  return TRUE;
}

static GStrv
read_groups (JsonNode *node, GError **error)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  JsonArray *array;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      invalid (error, "assigned_groups", _("must be a list of group names, such as "
                                           "[\"Finance\", \"Sales\"]"));
      return NULL;
    }
  array = json_node_get_array (node);
  if (json_array_get_length (array) > MAX_GROUPS)
    {
      invalid (error, "assigned_groups", _("names more than 1000 groups; assign a parent group "
                                           "instead"));
      return NULL;
    }
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      const char *group;

      if (!is_string (element))
        {
          invalid (error, "assigned_groups", _("must hold only strings"));
          return NULL;
        }
      group = json_node_get_string (element);
      if (!check_group (group, error))
        return NULL;
      if (g_hash_table_add (seen, (gpointer) group))
        g_strv_builder_add (builder, group);
    }
  return g_strv_builder_end (builder);
}

static gboolean
same_groups (const char *const *a, const char *const *b)
{
  return g_strv_equal (a != NULL ? a : (const char *const[]){ NULL },
                       b != NULL ? b : (const char *const[]){ NULL });
}

static gboolean
apply_member (CanopySettings *settings, const char *field, JsonNode *node, guint *changed,
              GError **error)
{
  if (g_str_equal (field, "server_name"))
    {
      if (!is_string (node))
        return invalid (error, field, _("must be a string"));
      if (!canopy_settings_check_name (json_node_get_string (node), error))
        return FALSE;
      if (g_strcmp0 (settings->name, json_node_get_string (node)) != 0)
        *changed |= CANOPY_SETTINGS_NAME;
      g_free (settings->name);
      settings->name = g_strdup (json_node_get_string (node));
    }
  else if (g_str_equal (field, "distribution_optimization"))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
        return invalid (error, field, _("must be true or false"));
      if (settings->distribution_optimization != json_node_get_boolean (node))
        *changed |= CANOPY_SETTINGS_OPTIMIZATION;
      settings->distribution_optimization = json_node_get_boolean (node);
    }
  else if (g_str_equal (field, "assigned_groups"))
    {
      GStrv groups = read_groups (node, error);

      if (groups == NULL)
        return FALSE;
      if (!same_groups ((const char *const *) groups,
                        (const char *const *) settings->assigned_groups))
        *changed |= CANOPY_SETTINGS_GROUPS;
      g_strfreev (settings->assigned_groups);
      settings->assigned_groups = groups;
    }
  else if (g_str_equal (field, "no_office_clients"))
    {
      CanopyNoOfficeClients value;

      if (!is_string (node) || !no_office_clients_from_string (json_node_get_string (node), &value))
        return invalid (error, field, _("must be \"origin\" (devices in no office fetch from the "
                                        "origin) or \"refuse\" (they are refused and stay "
                                        "dormant)"));
      if (settings->no_office_clients != value)
        *changed |= CANOPY_SETTINGS_NO_OFFICE;
      settings->no_office_clients = value;
    }
  else if (g_str_equal (field, "topology_uploaded"))
    return invalid (error, field, _("cannot be set; upload the spreadsheet to "
                                    "/api/v1/topology instead"));
  else
    {
      g_set_error (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_UNKNOWN_FIELD,
                   _("Unknown field \"%s\"; the settings are server_name, "
                     "distribution_optimization, assigned_groups and no_office_clients"),
                   field);
      return FALSE;
    }
  return TRUE;
}

gboolean
canopy_settings_apply_json (CanopySettings *settings, JsonObject *object, guint *changed,
                            GError **error)
{
  g_autoptr (CanopySettings) candidate = canopy_settings_copy (settings);
  g_autoptr (GList) members = json_object_get_members (object);

  *changed = 0;
  for (GList *m = members; m != NULL; m = m->next)
    if (!apply_member (candidate, m->data, json_object_get_member (object, m->data), changed,
                       error))
      {
        *changed = 0;
        return FALSE;
      }
  /* All fields are good: take them at once. */
  g_free (settings->name);
  g_strfreev (settings->assigned_groups);
  settings->name = g_steal_pointer (&candidate->name);
  settings->assigned_groups = g_steal_pointer (&candidate->assigned_groups);
  settings->distribution_optimization = candidate->distribution_optimization;
  settings->no_office_clients = candidate->no_office_clients;
  return TRUE;
}

static char *
describe_groups (const char *const *groups)
{
  g_autoptr (GString) out = g_string_new ("[");

  for (const char *const *g = groups; g != NULL && *g != NULL; g++)
    g_string_append_printf (out, "%s\"%s\"", g == groups ? "" : ", ", *g);
  g_string_append_c (out, ']');
  return g_string_free (g_steal_pointer (&out), FALSE);
}

char *
canopy_settings_describe_change (const CanopySettings *before, const CanopySettings *after,
                                 CanopySettingsField field)
{
  switch (field)
    {
    case CANOPY_SETTINGS_NAME:
      return g_strdup_printf ("\"%s\" -> \"%s\"", before->name, after->name);
    case CANOPY_SETTINGS_OPTIMIZATION:
      return g_strdup_printf ("%s -> %s", before->distribution_optimization ? "on" : "off",
                              after->distribution_optimization ? "on" : "off");
    case CANOPY_SETTINGS_GROUPS:
      {
        g_autofree char *a = describe_groups ((const char *const *) before->assigned_groups);
        g_autofree char *b = describe_groups ((const char *const *) after->assigned_groups);
        return g_strdup_printf ("%s -> %s", a, b);
      }
    case CANOPY_SETTINGS_NO_OFFICE:
      return g_strdup_printf ("%s -> %s",
                              canopy_no_office_clients_to_string (before->no_office_clients),
                              canopy_no_office_clients_to_string (after->no_office_clients));
    case CANOPY_SETTINGS_TOPOLOGY:
    default:
      return g_strdup_printf ("%" G_GSIZE_FORMAT " bytes",
                              after->topology_csv != NULL ? strlen (after->topology_csv) : 0);
    }
}

const char *
canopy_settings_field_to_action (CanopySettingsField field)
{
  switch (field)
    {
    case CANOPY_SETTINGS_NAME:
      return "settings.server-name";
    case CANOPY_SETTINGS_OPTIMIZATION:
      return "settings.distribution-optimization";
    case CANOPY_SETTINGS_GROUPS:
      return "settings.assigned-groups";
    case CANOPY_SETTINGS_NO_OFFICE:
      return "settings.no-office-clients";
    case CANOPY_SETTINGS_TOPOLOGY:
    default:
      return "topology.uploaded";
    }
}
