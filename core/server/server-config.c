/* canopyd's configuration: schema-checked by libcanopy, read into fields
 * here, with the defaults an admin would expect. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-server-config"

#include "server/server-config.h"
#include "server/distributor.h"
#include "lib/i18n.h"

/* The Peer Distribution settings an admin may bootstrap in the file. */
static gboolean
read_peer_distribution (CanopyServerConfig *config, const CanopyConfigNode *root, GError **error)
{
  g_autoptr (GPtrArray) groups = canopy_config_node_get_children (root, "assigned-group");
  const CanopyConfigNode *optimization = canopy_config_node_get_child (root,
                                                                       "distribution-optimization");
  const CanopyConfigNode *licensing = canopy_config_node_get_child (root, "licensing");
  const CanopyConfigNode *heartbeat = canopy_config_node_get_child (root, "heartbeat");
  const CanopyConfigNode *background = canopy_config_node_get_child (root,
                                                                     "background-transfer");
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; i < groups->len; i++)
    g_strv_builder_add (builder, canopy_config_node_get_text (g_ptr_array_index (groups, i)));
  config->assigned_groups = g_strv_builder_end (builder);
  config->licensed_seats = 0;
  config->heartbeat_interval = 30;
  if (optimization != NULL)
    {
      if (!canopy_config_node_get_boolean (optimization, "enabled", FALSE,
                                           &config->distribution_optimization, error))
        return FALSE;
      config->topology_file = g_strdup (canopy_config_node_get_attribute (optimization,
                                                                          "topology"));
      if (config->distribution_optimization && config->topology_file == NULL)
        {
          canopy_config_node_set_error (optimization, error,
                                        _("distribution optimization is on but no topology "
                                          "spreadsheet is named; add topology=\"PATH.csv\""));
          return FALSE;
        }
    }
  if (licensing != NULL)
    {
      if (!canopy_config_node_get_uint (licensing, "seats", 0, G_MAXUINT, 0,
                                        &config->licensed_seats, error)
          || !canopy_config_node_get_uint (licensing, "release-after-days", 0, 36500, 0,
                                           &config->release_after_days, error))
        return FALSE;
      config->licence_file = g_strdup (canopy_config_node_get_attribute (licensing, "file"));
      config->licence_issuer_key = g_strdup (canopy_config_node_get_attribute (licensing,
                                                                               "issuer-key"));
      if ((config->licence_file == NULL) != (config->licence_issuer_key == NULL))
        {
          canopy_config_node_set_error (licensing, error,
                                        _("\"file\" and \"issuer-key\" go together: a licence "
                                          "file is checked against its issuer's key"));
          return FALSE;
        }
    }
  if (heartbeat != NULL
      && !canopy_config_node_get_uint (heartbeat, "interval", 1, 3600, 30,
                                       &config->heartbeat_interval, error))
    return FALSE;
  /* RFC 6817: at most 100 ms, or LEDBAT itself makes the link sluggish. */
  config->background_target_ms = CANOPY_DISTRIBUTOR_DEFAULT_BACKGROUND_TARGET_MS;
  if (background != NULL
      && !canopy_config_node_get_uint (background, "target-delay", 5, 100,
                                       CANOPY_DISTRIBUTOR_DEFAULT_BACKGROUND_TARGET_MS,
                                       &config->background_target_ms, error))
    return FALSE;
  return TRUE;
}

/* Several canopyd on one database: on only when the element is there. */
static gboolean
read_cluster (CanopyServerConfig *config, const CanopyConfigNode *root, GError **error)
{
  const CanopyConfigNode *cluster = canopy_config_node_get_child (root, "cluster");

  config->cluster_lease_s = CANOPY_SERVER_CONFIG_LEASE_S;
  if (cluster == NULL)
    return TRUE;
  config->cluster = TRUE;
  config->cluster_poll = g_strcmp0 (canopy_config_node_get_attribute (cluster, "changes"),
                                    "poll") == 0;
  return canopy_config_node_get_uint (cluster, "lease-seconds", 5, 300,
                                      CANOPY_SERVER_CONFIG_LEASE_S, &config->cluster_lease_s,
                                      error);
}

/* Bounds on what a client that never finishes (or never starts) can
 * hold: slots, descriptors and handshake threads. */
static gboolean
read_console_limits (CanopyServerConfig *config, const CanopyConfigNode *console,
                     GError **error)
{
  return canopy_config_node_get_uint (console, "handshake-timeout", 1, 3600,
                                      CANOPY_SERVER_CONFIG_HANDSHAKE_TIMEOUT,
                                      &config->console_handshake_timeout, error)
         && canopy_config_node_get_uint (console, "idle-timeout", 1, 86400,
                                         CANOPY_SERVER_CONFIG_IDLE_TIMEOUT,
                                         &config->console_idle_timeout, error)
         && canopy_config_node_get_uint (console, "max-connections-per-address", 1, 65535,
                                         CANOPY_SERVER_CONFIG_MAX_PER_ADDRESS,
                                         &config->console_max_per_address, error)
         && canopy_config_node_get_uint (console, "max-connections", 1, 65535,
                                         CANOPY_SERVER_CONFIG_MAX_CONNECTIONS,
                                         &config->console_max_connections, error);
}

/* The console API: on when the element is there, HTTPS always. */
static gboolean
read_console (CanopyServerConfig *config, const CanopyConfigNode *root, GError **error)
{
  const CanopyConfigNode *console = canopy_config_node_get_child (root, "console");

  config->console_port = CANOPY_SERVER_CONFIG_CONSOLE_PORT;
  config->console_token_lifetime_days = CANOPY_SERVER_CONFIG_TOKEN_LIFETIME_DAYS;
  config->console_handshake_timeout = CANOPY_SERVER_CONFIG_HANDSHAKE_TIMEOUT;
  config->console_idle_timeout = CANOPY_SERVER_CONFIG_IDLE_TIMEOUT;
  config->console_max_per_address = CANOPY_SERVER_CONFIG_MAX_PER_ADDRESS;
  config->console_max_connections = CANOPY_SERVER_CONFIG_MAX_CONNECTIONS;
  if (console == NULL)
    return TRUE;
  config->console = TRUE;
  if (!canopy_config_node_get_uint (console, "port", 0, 65535, CANOPY_SERVER_CONFIG_CONSOLE_PORT,
                                    &config->console_port, error)
      || !canopy_config_node_get_uint (console, "token-lifetime-days", 0, 36500,
                                       CANOPY_SERVER_CONFIG_TOKEN_LIFETIME_DAYS,
                                       &config->console_token_lifetime_days, error)
      || !read_console_limits (config, console, error))
    return FALSE;
  config->console_address = g_strdup (canopy_config_node_get_attribute (console, "address"));
  if (config->console_address != NULL && !g_hostname_is_ip_address (config->console_address))
    {
      canopy_config_node_set_error (console, error,
                                    _("address=\"%s\" is not an IP address; write one such as "
                                      "\"127.0.0.1\" or \"::\", or leave it out to listen on "
                                      "every address"),
                                    config->console_address);
      return FALSE;
    }
  config->console_certificate = g_strdup (canopy_config_node_get_attribute (console,
                                                                            "certificate"));
  config->console_key = g_strdup (canopy_config_node_get_attribute (console, "key"));
  if ((config->console_certificate == NULL) != (config->console_key == NULL))
    {
      canopy_config_node_set_error (console, error,
                                    _("\"certificate\" and \"key\" go together: name both "
                                      "files, or neither to use the ones \"canopyd init\" "
                                      "made"));
      return FALSE;
    }
  return TRUE;
}

/* The content store: on when the element is there. */
static gboolean
read_content_store (CanopyServerConfig *config, const CanopyConfigNode *root, GError **error)
{
  const CanopyConfigNode *store = canopy_config_node_get_child (root, "content-store");
  const char *directory, *quota;

  config->content_store_upload_slots = CANOPY_SERVER_CONFIG_UPLOAD_SLOTS;
  if (store == NULL)
    return TRUE;
  directory = canopy_config_node_get_attribute (store, "directory");
  quota = canopy_config_node_get_attribute (store, "quota");
  config->content_store_directory = directory != NULL
                                      ? g_strdup (directory)
                                      : g_build_filename (config->state_directory, "content",
                                                          NULL);
  if (quota != NULL && !canopy_config_parse_size (quota, &config->content_store_quota))
    {
      canopy_config_node_set_error (store, error,
                                    _("the content store quota \"%s\" is not a size; write "
                                      "bytes or a number with a unit such as 500GB or 2TiB"),
                                    quota);
      return FALSE;
    }
  return canopy_config_node_get_uint (store, "upload-slots", 1, 1024,
                                      CANOPY_SERVER_CONFIG_UPLOAD_SLOTS,
                                      &config->content_store_upload_slots, error);
}

/* Directories packages may be registered from by path: none unless
 * listed, since a console token would otherwise read any file the server
 * can and hand it to every device. */
static void
read_content_sources (CanopyServerConfig *config, const CanopyConfigNode *root)
{
  const CanopyConfigNode *sources = canopy_config_node_get_child (root, "content-sources");
  g_autoptr (GPtrArray) directories = sources != NULL
                                        ? canopy_config_node_get_children (sources, "directory")
                                        : g_ptr_array_new ();
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; i < directories->len; i++)
    g_strv_builder_add (builder, canopy_config_node_get_attribute (
                                   g_ptr_array_index (directories, i), "path"));
  config->content_sources = g_strv_builder_end (builder);
}

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
  if (!read_peer_distribution (config, root, error) || !read_console (config, root, error)
      || !read_content_store (config, root, error) || !read_cluster (config, root, error))
    return NULL;
  read_content_sources (config, root);
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
  g_strfreev (config->assigned_groups);
  g_strfreev (config->content_sources);
  g_free (config->licence_file);
  g_free (config->topology_file);
  g_free (config->licence_issuer_key);
  g_free (config->console_address);
  g_free (config->console_certificate);
  g_free (config->console_key);
  g_free (config->content_store_directory);
  g_free (config->state_directory);
  g_free (config->name);
  canopy_config_free (config->document);
  g_free (config);
}
