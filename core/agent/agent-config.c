/* canopy-agent's configuration: schema-checked by libcanopy, read into
 * fields here, with defaults for what an admin leaves out. */
#include "build-config.h"

#include "agent/agent-config.h"

CanopyAgentConfig *
canopy_agent_config_load (const char *path, GError **error)
{
  g_autoptr (CanopyAgentConfig) config = g_new0 (CanopyAgentConfig, 1);
  const CanopyConfigNode *root;
  const CanopyConfigNode *server;
  const CanopyConfigNode *logging;
  guint64 port;

  config->document = canopy_config_load (path, CANOPY_SCHEMA_AGENT, error);
  if (config->document == NULL)
    return NULL;

  root = canopy_config_get_root (config->document);
  server = canopy_config_node_get_child (root, "server");
  config->server_host = g_strdup (canopy_config_node_get_attribute (server, "host"));
  if (!canopy_config_node_get_uint (server, "port", 1, G_MAXUINT16, CANOPY_DEFAULT_PORT, &port,
                                    error))
    return NULL;
  config->server_port = (guint16) port;
  config->state_directory =
    g_strdup (canopy_config_node_get_child_text (root, "state-directory",
                                                 LOCALSTATEDIR "/lib/canopy-agent"));
  config->shared_key_file = g_strdup (canopy_config_node_get_child_text (root, "shared-key-file",
                                                                         NULL));
  if (config->shared_key_file == NULL)
    config->shared_key_file = g_build_filename (config->state_directory, "shared-key", NULL);
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
  return g_steal_pointer (&config);
}

void
canopy_agent_config_free (CanopyAgentConfig *config)
{
  if (config == NULL)
    return;
  g_clear_pointer (&config->transports, g_ptr_array_unref);
  g_free (config->debug_domains);
  g_free (config->state_directory);
  g_free (config->shared_key_file);
  g_strfreev (config->groups);
  g_free (config->server_host);
  canopy_config_free (config->document);
  g_free (config);
}
