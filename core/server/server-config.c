/* canopyd's configuration: schema-checked by libcanopy, read into fields
 * here, with the defaults an admin would expect. */
#include "build-config.h"

#include "server/server-config.h"

CanopyServerConfig *
canopy_server_config_load (const char *path, GError **error)
{
  g_autoptr (CanopyServerConfig) config = g_new0 (CanopyServerConfig, 1);
  const CanopyConfigNode *root;
  const CanopyConfigNode *logging;

  config->document = canopy_config_load (path, CANOPY_SCHEMA_SERVER, error);
  if (config->document == NULL)
    return NULL;

  root = canopy_config_get_root (config->document);
  config->name = g_strdup (canopy_config_node_get_child_text (root, "name", g_get_host_name ()));
  config->state_directory = g_strdup (canopy_config_node_get_child_text (root, "state-directory",
                                                                         LOCALSTATEDIR "/lib/canopy"));
  logging = canopy_config_node_get_child (root, "logging");
  config->debug_domains = g_strdup (logging != NULL
                                    ? canopy_config_node_get_attribute (logging, "debug") : NULL);
  config->backend = canopy_config_node_get_child (root, "backend");
  config->transports = canopy_config_node_get_children (root, "transport");
  return g_steal_pointer (&config);
}

void
canopy_server_config_free (CanopyServerConfig *config)
{
  if (config == NULL)
    return;
  g_clear_pointer (&config->transports, g_ptr_array_unref);
  g_free (config->debug_domains);
  g_free (config->state_directory);
  g_free (config->name);
  canopy_config_free (config->document);
  g_free (config);
}
