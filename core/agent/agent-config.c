/* canopy-agent's configuration: schema-checked by libcanopy, read into
 * fields here, with defaults for what an admin leaves out. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-config"

#include "agent/agent-config.h"
#include "lib/i18n.h"

#include <string.h>

/* The office-peer listener runs the first transport plugin with the
 * admin's settings for it, listening where <peers> says: the plugin's
 * element is its own, so the agent derives one rather than inventing a
 * second syntax for each plugin. */
static gboolean
derive_peer_transport (CanopyAgentConfig *config, GError **error)
{
  const CanopyConfigNode *transport = g_ptr_array_index (config->transports, 0);
  g_autoptr (GPtrArray) children = canopy_config_node_get_children (transport, NULL);
  g_autoptr (GString) xml = g_string_new ("<agent><server host='-'/>");
  g_autofree char *open = g_markup_printf_escaped ("<transport plugin='%s'>",
                                                   canopy_config_node_get_attribute (transport,
                                                                                     "plugin"));
  g_autofree char *listen = g_markup_printf_escaped ("<listen address='%s' port='%u'/>",
                                                     config->peer_address, config->peer_port);

  g_string_append (xml, open);
  for (guint i = 0; i < children->len; i++)
    if (!g_str_equal (canopy_config_node_get_name (children->pdata[i]), "listen"))
      {
        g_autofree char *child = canopy_config_node_to_xml (children->pdata[i]);
        g_string_append (xml, child);
      }
  g_string_append_printf (xml, "%s</transport></agent>", listen);
  config->peer_document = canopy_config_load_data (xml->str, (gssize) xml->len,
                                                   canopy_config_node_get_file (transport),
                                                   CANOPY_SCHEMA_AGENT, error);
  if (config->peer_document == NULL)
    return FALSE;
  config->peer_transport = canopy_config_node_get_child (
    canopy_config_get_root (config->peer_document), "transport");
  return TRUE;
}

/* "3600", "90m", "12h", "30d", "2w" as µs; FALSE for anything else or
 * for zero. */
static gboolean
parse_age (const char *text, gint64 *us)
{
  static const struct { char unit; gint64 seconds; } units[] = {
    { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
  };
  g_autofree char *copy = g_strstrip (g_strdup (text));
  gsize n = strlen (copy);
  gint64 scale = 1;
  guint64 value;

  for (guint i = 0; n > 0 && i < G_N_ELEMENTS (units); i++)
    if (copy[n - 1] == units[i].unit)
      {
        scale = units[i].seconds;
        copy[--n] = '\0';
        g_strchomp (copy);
      }
  /* Ten years at most: beyond it no cache entry ages anyway. */
  if (!g_ascii_string_to_unsigned (copy, 10, 1, (guint64) 3650 * 86400 / scale, &value, NULL))
    return FALSE;
  *us = (gint64) value * scale * G_USEC_PER_SEC;
  return TRUE;
}

static gboolean
load_cache (CanopyAgentConfig *config, const CanopyConfigNode *root, GError **error)
{
  const char *max_age = NULL;

  const CanopyConfigNode *cache = canopy_config_node_get_child (root, "cache");
  const char *directory = cache != NULL ? canopy_config_node_get_attribute (cache, "directory")
                                        : NULL;
  const char *quota = cache != NULL ? canopy_config_node_get_attribute (cache, "quota") : NULL;

  config->cache_directory = directory != NULL
                              ? g_strdup (directory)
                              : g_build_filename (config->state_directory, "cache", NULL);
  config->cache_quota = CANOPY_DEFAULT_CACHE_QUOTA;
  if (quota != NULL && !canopy_config_parse_size (quota, &config->cache_quota))
    {
      canopy_config_node_set_error (cache, error,
                                    _("the cache quota \"%s\" is not a size; write bytes or a "
                                      "number with a unit such as 500MB or 10GiB"),
                                    quota);
      return FALSE;
    }
  max_age = cache != NULL ? canopy_config_node_get_attribute (cache, "max-age") : NULL;
  if (max_age != NULL && !parse_age (max_age, &config->cache_max_age))
    {
      canopy_config_node_set_error (cache, error,
                                    _("the cache max-age \"%s\" is not a duration; write "
                                      "seconds or a number with a unit such as 90m, 12h, 30d "
                                      "or 2w (at most ten years)"),
                                    max_age);
      return FALSE;
    }
  return TRUE;
}

static gboolean
load_peers (CanopyAgentConfig *config, const CanopyConfigNode *root, GError **error)
{
  const CanopyConfigNode *peers = canopy_config_node_get_child (root, "peers");
  const char *address = peers != NULL ? canopy_config_node_get_attribute (peers, "address")
                                      : NULL;
  guint64 port = CANOPY_DEFAULT_PEER_PORT, slots = CANOPY_DEFAULT_UPLOAD_SLOTS;

  if (peers != NULL
      && (!canopy_config_node_get_uint (peers, "port", 0, G_MAXUINT16, CANOPY_DEFAULT_PEER_PORT,
                                        &port, error)
          || !canopy_config_node_get_uint (peers, "upload-slots", 1, 256,
                                           CANOPY_DEFAULT_UPLOAD_SLOTS, &slots, error)))
    return FALSE;
  config->peer_address = g_strdup (address != NULL ? address : "0.0.0.0");
  config->peer_port = (guint16) port;
  config->upload_slots = (guint) slots;
  return derive_peer_transport (config, error);
}

/* An element without children allows nothing: an admin may stop a
 * device from taking any deployment. */
static void
load_destinations (CanopyAgentConfig *config, const CanopyConfigNode *root)
{
  static const char *const defaults[] = { CANOPY_AGENT_CONFIG_DESTINATIONS, NULL };
  const CanopyConfigNode *destinations = canopy_config_node_get_child (root, "destinations");
  g_autoptr (GPtrArray) directories = NULL;
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  if (destinations == NULL)
    {
      config->destinations = g_strdupv ((char **) defaults);
      return;
    }
  directories = canopy_config_node_get_children (destinations, "directory");
  for (guint i = 0; i < directories->len; i++)
    g_strv_builder_add (builder, canopy_config_node_get_attribute (
                                   g_ptr_array_index (directories, i), "path"));
  config->destinations = g_strv_builder_end (builder);
}

/* Several <server> elements are the servers of a cluster, tried in order. */
static gboolean
load_servers (CanopyAgentConfig *config, const CanopyConfigNode *root, GError **error)
{
  g_autoptr (GPtrArray) elements = canopy_config_node_get_children (root, "server");

  config->servers = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_server_address_free);
  for (guint i = 0; i < elements->len; i++)
    {
      const CanopyConfigNode *server = g_ptr_array_index (elements, i);
      guint64 port;

      if (!canopy_config_node_get_uint (server, "port", 1, G_MAXUINT16, CANOPY_DEFAULT_PORT,
                                        &port, error))
        return FALSE;
      g_ptr_array_add (config->servers,
                       canopy_server_address_new (canopy_config_node_get_attribute (server, "host"),
                                                  (guint16) port));
    }
  return TRUE;
}

CanopyAgentConfig *
canopy_agent_config_load (const char *path, GError **error)
{
  g_autoptr (CanopyAgentConfig) config = g_new0 (CanopyAgentConfig, 1);
  const CanopyConfigNode *root;
  const CanopyConfigNode *logging;

  config->document = canopy_config_load (path, CANOPY_SCHEMA_AGENT, error);
  if (config->document == NULL)
    return NULL;

  root = canopy_config_get_root (config->document);
  if (!load_servers (config, root, error))
    return NULL;
  config->state_directory =
    g_strdup (canopy_config_node_get_child_text (root, "state-directory",
                                                 LOCALSTATEDIR "/lib/canopy-agent"));
  config->shared_key_file = g_strdup (canopy_config_node_get_child_text (root, "shared-key-file",
                                                                         NULL));
  if (config->shared_key_file == NULL)
    config->shared_key_file = g_build_filename (config->state_directory, "shared-key", NULL);
  /* The host name is what an admin recognises the device by. */
  config->name = g_strdup (canopy_config_node_get_child_text (root, "name", g_get_host_name ()));
  {
    g_autoptr (GPtrArray) groups = canopy_config_node_get_children (root, "group");
    g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

    for (guint i = 0; i < groups->len; i++)
      g_strv_builder_add (builder, canopy_config_node_get_text (g_ptr_array_index (groups, i)));
    config->groups = g_strv_builder_end (builder);
  }
  logging = canopy_config_node_get_child (root, "logging");
  config->debug_domains = g_strdup (logging != NULL
                                    ? canopy_config_node_get_attribute (logging, "debug") : NULL);
  config->transports = canopy_config_node_get_children (root, "transport");
  load_destinations (config, root);
  if (!load_cache (config, root, error) || !load_peers (config, root, error))
    return NULL;
  return g_steal_pointer (&config);
}

void
canopy_agent_config_free (CanopyAgentConfig *config)
{
  if (config == NULL)
    return;
  g_clear_pointer (&config->transports, g_ptr_array_unref);
  canopy_config_free (config->peer_document);
  g_free (config->peer_address);
  g_free (config->cache_directory);
  g_free (config->debug_domains);
  g_free (config->state_directory);
  g_free (config->shared_key_file);
  g_strfreev (config->groups);
  g_free (config->name);
  g_strfreev (config->destinations);
  g_clear_pointer (&config->servers, g_ptr_array_unref);
  canopy_config_free (config->document);
  g_free (config);
}
