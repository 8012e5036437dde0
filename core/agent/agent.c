/* canopy-agent's running state: configuration plus the transports it
 * reaches the server and its peers with. */
#include "build-config.h"

#include "agent/agent.h"
#include "agent/uplink.h"
#include "lib/i18n.h"
#include "lib/identity.h"
#include "lib/keys.h"
#include "lib/plugin-loader.h"

#include <errno.h>

struct _CanopyAgent {
  char *config_path;
  CanopyAgentConfig *config;
  CanopyPluginLoader *loader;
  GPtrArray *transports; /* const CanopyPlugin * */
  char *device_id;
  CanopyUplink *uplink;
};

void
canopy_agent_free (CanopyAgent *agent)
{
  if (agent == NULL)
    return;
  canopy_agent_stop (agent);
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

gboolean
canopy_agent_start (CanopyAgent *agent, GError **error)
{
  const CanopyAgentConfig *config = agent->config;
  g_autofree char *id_path = g_build_filename (config->state_directory, "device-id", NULL);
  g_autoptr (CanopySharedKey) key = NULL;
  CanopyTransportCredentials creds;
  gboolean created = FALSE;

  if (g_mkdir_with_parents (config->state_directory, 0700) != 0)
    {
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno),
                   _("Cannot create the state directory %s: %s"), config->state_directory,
                   g_strerror (errno));
      return FALSE;
    }
  agent->device_id = canopy_identity_ensure (id_path, _("device ID"), &created, error);
  if (agent->device_id == NULL)
    return FALSE;
  if (created)
    g_message (_("This device's canopy ID is %s"), agent->device_id);
  key = canopy_shared_key_load (config->shared_key_file, error);
  if (key == NULL
      || !canopy_keys_make_transport_credentials (key, agent->device_id, &creds, error))
    return FALSE;
  agent->uplink = canopy_uplink_new (g_ptr_array_index (agent->transports, 0),
                                     g_ptr_array_index (config->transports, 0), &creds,
                                     config->server_host, config->server_port,
                                     (const char *const *) config->groups, error);
  canopy_keys_wipe (creds.secret, sizeof creds.secret);
  if (agent->uplink == NULL)
    return FALSE;
  canopy_uplink_start (agent->uplink);
  return TRUE;
}

void
canopy_agent_stop (CanopyAgent *agent)
{
  g_clear_pointer (&agent->uplink, canopy_uplink_free);
  g_clear_pointer (&agent->device_id, g_free);
}
