/* canopy-agent's running state: configuration plus the transports it
 * reaches the server and its peers with. */
#include "build-config.h"

#include "agent/agent.h"
#include "lib/i18n.h"
#include "lib/plugin-loader.h"

struct _CanopyAgent {
  char *config_path;
  CanopyAgentConfig *config;
  CanopyPluginLoader *loader;
  GPtrArray *transports; /* const CanopyPlugin * */
};

void
canopy_agent_free (CanopyAgent *agent)
{
  if (agent == NULL)
    return;
  g_clear_pointer (&agent->transports, g_ptr_array_unref);
  canopy_plugin_loader_free (agent->loader);
  canopy_agent_config_free (agent->config);
  g_free (agent->config_path);
  g_free (agent);
}

CanopyAgent *
canopy_agent_new (const char *config_path, GError **error)
{
  g_autoptr (CanopyAgent) agent = g_new0 (CanopyAgent, 1);

  agent->config_path = g_strdup (config_path);
  agent->config = canopy_agent_config_load (config_path, error);
  if (agent->config == NULL)
    return NULL;
  agent->loader = canopy_plugin_loader_new (NULL);
  agent->transports = canopy_plugin_loader_load_nodes (agent->loader, agent->config->transports,
                                                       CANOPY_PLUGIN_KIND_TRANSPORT, error);
  if (agent->transports == NULL)
    return NULL;
  return g_steal_pointer (&agent);
}

const CanopyAgentConfig *
canopy_agent_get_config (const CanopyAgent *agent)
{
  return agent->config;
}

char *
canopy_agent_describe (const CanopyAgent *agent)
{
  g_autoptr (GString) transports = g_string_new (NULL);

  for (guint i = 0; i < agent->transports->len; i++)
    g_string_append_printf (transports, "%s%s", i > 0 ? ", " : "",
                            canopy_plugin_get_name (g_ptr_array_index (agent->transports, i)));
  return g_strdup_printf (_("server %s port %u, transports: %s, state directory %s"),
                          agent->config->server_host, agent->config->server_port,
                          transports->str, agent->config->state_directory);
}

gboolean
canopy_agent_reload (CanopyAgent *agent, GError **error)
{
  g_autoptr (CanopyAgent) candidate = canopy_agent_new (agent->config_path, error);

  if (candidate == NULL)
    return FALSE;
  canopy_agent_config_free (g_steal_pointer (&agent->config));
  agent->config = g_steal_pointer (&candidate->config);
  return TRUE;
}
