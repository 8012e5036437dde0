/* canopyd's running state: configuration plus loaded plugins, built
 * together so that a reload can be checked whole before it is taken. */
#include "build-config.h"

#include "server/server.h"
#include "lib/i18n.h"

struct _CanopyServer {
  char *config_path;
  CanopyServerConfig *config;
  CanopyPluginLoader *loader;
  const CanopyPlugin *backend;
  GPtrArray *transports; /* const CanopyPlugin * */
};

void
canopy_server_free (CanopyServer *server)
{
  if (server == NULL)
    return;
  g_clear_pointer (&server->transports, g_ptr_array_unref);
  canopy_plugin_loader_free (server->loader);
  canopy_server_config_free (server->config);
  g_free (server->config_path);
  g_free (server);
}

CanopyServer *
canopy_server_new (const char *config_path, GError **error)
{
  g_autoptr (CanopyServer) server = g_new0 (CanopyServer, 1);

  server->config_path = g_strdup (config_path);
  server->config = canopy_server_config_load (config_path, error);
  if (server->config == NULL)
    return NULL;

  server->loader = canopy_plugin_loader_new (NULL);
  server->backend = canopy_plugin_loader_load_for_node (server->loader, server->config->backend,
                                                        CANOPY_PLUGIN_KIND_BACKEND, error);
  if (server->backend == NULL)
    return NULL;

  server->transports = canopy_plugin_loader_load_nodes (server->loader,
                                                        server->config->transports,
                                                        CANOPY_PLUGIN_KIND_TRANSPORT, error);
  if (server->transports == NULL)
    return NULL;
  return g_steal_pointer (&server);
}

const CanopyServerConfig *
canopy_server_get_config (const CanopyServer *server)
{
  return server->config;
}

static char *
describe_plugin (const CanopyPlugin *plugin)
{
  return g_strdup_printf ("%s %s", canopy_plugin_get_name (plugin),
                          canopy_plugin_get_descriptor (plugin)->version);
}

char *
canopy_server_describe (const CanopyServer *server)
{
  g_autofree char *backend = describe_plugin (server->backend);
  g_autoptr (GString) transports = g_string_new (NULL);

  for (guint i = 0; i < server->transports->len; i++)
    {
      g_autofree char *one = describe_plugin (g_ptr_array_index (server->transports, i));
      g_string_append_printf (transports, "%s%s", i > 0 ? ", " : "", one);
    }
  return g_strdup_printf (_("server \"%s\", backend %s, transports: %s, state directory %s"),
                          server->config->name, backend,
                          transports->len > 0 ? transports->str : _("none"),
                          server->config->state_directory);
}

/* Plugins are already part of the process; switching them while sessions
 * and database connections are open is a restart's job. */
static gboolean
same_plugins (const CanopyServerConfig *a, const CanopyServerConfig *b)
{
  if (g_strcmp0 (canopy_config_node_get_attribute (a->backend, "plugin"),
                 canopy_config_node_get_attribute (b->backend, "plugin")) != 0
      || a->transports->len != b->transports->len)
    return FALSE;
  for (guint i = 0; i < a->transports->len; i++)
    if (g_strcmp0 (canopy_config_node_get_attribute (g_ptr_array_index (a->transports, i), "plugin"),
                   canopy_config_node_get_attribute (g_ptr_array_index (b->transports, i), "plugin"))
        != 0)
      return FALSE;
  return TRUE;
}

const CanopyServerConfig *
canopy_server_reload (CanopyServer *server, GError **error)
{
  g_autoptr (CanopyServer) candidate = canopy_server_new (server->config_path, error);

  if (candidate == NULL)
    return NULL;
  if (!same_plugins (server->config, candidate->config))
    g_message (_("The set of plugins in %s changed; restart canopyd for that change to take "
                 "effect"), server->config_path);
  /* The running plugins stay; the settings of the new file replace the old. */
  canopy_server_config_free (g_steal_pointer (&server->config));
  server->config = g_steal_pointer (&candidate->config);
  return server->config;
}
