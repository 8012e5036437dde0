/* canopyd's running state: configuration plus loaded plugins, built
 * together so that a reload can be checked whole before it is taken. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-server"

#include "server/server.h"
#include "lib/signing.h"
#include "server/catalog.h"
#include "server/cluster.h"
#include "server/console/console-api.h"
#include "server/content-store.h"
#include "server/distributor.h"
#include "server/run-marker.h"
#include "server/sessions.h"
#include "server/distribution-settings.h"
#include "server/setup.h"
#include "lib/i18n.h"
#include "lib/keys.h"
#include "lib/licence-file.h"
#include "lib/log.h"

struct _CanopyServer {
  char *config_path;
  CanopyServerConfig *config;
  CanopyPluginLoader *loader;
  const CanopyPlugin *backend;
  GPtrArray *transports; /* const CanopyPlugin * */
  char *server_id;
  CanopySigningKey *signing_key;
  CanopyTopology *topology;
  CanopyLicensing *licensing;
  CanopyStore *store;
  CanopySessions *sessions;
  CanopyCatalog *catalog;
  CanopyContentStore *content_store; /* (nullable) */
  CanopyDistributor *distributor;
  CanopySettings *settings; /* as in force: the file's, overlaid by the console's */
  CanopyConsole *console;
  CanopyRunMarker *run_marker;
  CanopyCluster *cluster; /* (nullable) several servers share the database */
};

void
canopy_server_free (CanopyServer *server)
{
  if (server == NULL)
    return;
  canopy_server_stop (server);
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
  if (server->sessions != NULL)
    {
      g_autofree char *listeners = canopy_sessions_describe_listeners (server->sessions);
      g_autofree char *store = canopy_store_describe (server->store);
      return g_strdup_printf (_("server \"%s\" (ID %s), backend %s, devices known: %u, "
                                "licences in use: %u of %u, listening on %s, state directory %s"),
                              server->settings->name, server->server_id, store,
                              canopy_store_count_devices (server->store),
                              canopy_licensing_get_used (server->licensing),
                              canopy_licensing_get_seats (server->licensing),
                              listeners[0] != '\0' ? listeners : _("nothing"),
                              server->config->state_directory);
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

static gboolean licensed_seats (const CanopyServerConfig *config, guint *seats,
                                gint64 *expires, GError **error);

const CanopyServerConfig *
canopy_server_reload (CanopyServer *server, GError **error)
{
  g_autoptr (CanopyServer) candidate = canopy_server_new (server->config_path, error);
  guint seats;
  gint64 expires;

  /* The licence is read before anything is taken: a file that does not
   * verify keeps the running configuration whole. */
  if (candidate == NULL || !licensed_seats (candidate->config, &seats, &expires, error))
    return NULL;
  if (!same_plugins (server->config, candidate->config))
    g_message (_("The set of plugins in %s changed; restart canopyd for that change to take "
                 "effect"), server->config_path);
  /* The running plugins stay; the settings of the new file replace the old. */
  canopy_server_config_free (g_steal_pointer (&server->config));
  server->config = g_steal_pointer (&candidate->config);
  if (server->sessions != NULL)
    {
      /* Settings changed through the console stay as they are. */
      canopy_settings_update_from_config (server->settings, server->config);
      canopy_sessions_set_assigned_groups (server->sessions,
                                           (const char *const *) server->settings->assigned_groups);
    }
  if (server->licensing != NULL && canopy_licensing_get_seats (server->licensing) != seats)
    {
      g_message (_("Licensed seats are now %u (were %u)"), seats,
                 canopy_licensing_get_seats (server->licensing));
      canopy_licensing_set_seats (server->licensing, seats);
    }
  if (server->licensing != NULL)
    canopy_licensing_set_expiry (server->licensing, expires);
  return server->config;
}

/* Seats from a signed licence file when one is configured, else from the
 * configuration. An expired licence still counts: overage is reported,
 * never enforced. */
static gboolean
licensed_seats (const CanopyServerConfig *config, guint *seats, gint64 *expires, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (CanopyVerifyKey) issuer = NULL;
  g_autoptr (CanopyLicenceFile) licence = NULL;
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();

  *seats = (guint) config->licensed_seats;
  *expires = 0;
  if (config->licence_file == NULL)
    return TRUE;
  if (!g_file_get_contents (config->licence_file, &text, NULL, error))
    return FALSE;
  issuer = canopy_verify_key_new_from_base64 (config->licence_issuer_key, error);
  if (issuer == NULL)
    return FALSE;
  licence = canopy_licence_file_read (text, issuer, error);
  if (licence == NULL)
    return FALSE;
  if (canopy_licence_file_is_expired (licence, now))
    g_warning (_("The licence for \"%s\" has expired; devices keep working, but renew it: "
                 "ask your vendor for a new licence file and name it in <licensing file>"),
               licence->customer);
  if (licence->expires != NULL)
    *expires = g_date_time_to_unix (licence->expires) * G_USEC_PER_SEC;
  *seats = licence->seats;
  return TRUE;
}

/* With distribution optimization on, the admin's spreadsheet defines the
 * offices; every problem in it is reported, with its line and column. */
static CanopyTopology *
load_topology (const CanopyServerConfig *config, const CanopySettings *settings, GError **error)
{
  g_autoptr (GPtrArray) problems = NULL;
  g_autoptr (GError) local_error = NULL;
  CanopyTopology *topology = canopy_settings_build_topology (settings, &problems, NULL,
                                                               &local_error);
  g_autofree char *joined = NULL;

  if (topology != NULL)
    return topology;
  if (problems == NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  g_ptr_array_add (problems, NULL);
  joined = g_strjoinv ("\n  ", (char **) problems->pdata);
  if (settings->stored & CANOPY_SETTINGS_TOPOLOGY)
    g_set_error (error, CANOPY_TOPOLOGY_ERROR, CANOPY_TOPOLOGY_ERROR_SYNTAX,
                 _("The topology spreadsheet uploaded through the console has problems; upload "
                   "a corrected one, or turn distribution optimization off:\n  %s"),
                 joined);
  else
    g_set_error (error, CANOPY_TOPOLOGY_ERROR, CANOPY_TOPOLOGY_ERROR_SYNTAX,
                 _("The topology spreadsheet %s has problems; fix them and start again:\n  %s"),
                 config->topology_file, joined);
  return NULL;
}

static gboolean
restore_auto_office (const char *key, GVariant *value, gpointer user_data)
{
  g_autoptr (GVariantIter) ranges = NULL;
  const char *text;
  gboolean automatic;

  g_variant_get (value, "(&suastbb)", NULL, NULL, &ranges, NULL, NULL, &automatic);
  while (automatic && g_variant_iter_next (ranges, "&s", &text))
    {
      g_autoptr (GError) error = NULL;
      CanopyAddressRange subnet;

      if (canopy_address_range_parse (text, &subnet, &error))
        canopy_topology_add_auto_office (user_data, &subnet);
      else
        g_warning (_("The stored automatic office \"%s\" has a bad subnet and was left out; "
                     "it is made again when its devices connect: %s"),
                   key, error->message);
    }
  return TRUE;
}

/* With distribution optimization off, the offices made from the subnets
 * devices reported, as stored: the topology is whole before the devices
 * reconnect. */
static gboolean
restore_auto_offices (CanopyServer *server, CanopyTopology *topology, GError **error)
{
  if (server->settings->distribution_optimization)
    return TRUE;
  return canopy_store_list (server->store, CANOPY_RECORD_OFFICE, restore_auto_office, topology,
                            error);
}

static gboolean
start_transports (CanopyServer *server, const CanopySharedKey *key, GError **error)
{
  CanopyTransportCredentials creds;
  gboolean ok = TRUE;

  if (!canopy_keys_make_transport_credentials (key, server->server_id, &creds, error))
    return FALSE;
  for (guint i = 0; i < server->transports->len && ok; i++)
    ok = canopy_sessions_add_transport (server->sessions, g_ptr_array_index (server->transports, i),
                                        g_ptr_array_index (server->config->transports, i), &creds,
                                        error);
  canopy_keys_wipe (creds.secret, sizeof creds.secret);
  return ok;
}

CanopyBackend *
canopy_server_open_backend (CanopyServer *server, GError **error)
{
  return canopy_backend_open (server->backend, server->config->backend,
                              server->config->state_directory, error);
}

char *
canopy_server_init_database (CanopyServer *server, const char *audit_action, GError **error)
{
  g_autoptr (CanopyBackend) backend = canopy_backend_open (server->backend, server->config->backend,
                                                           server->config->state_directory,
                                                           error);
  CanopyBackendInfo info;
  char *description;

  if (backend == NULL)
    return NULL;
  if (audit_action != NULL)
    {
      g_autoptr (GVariant) entry = g_variant_ref_sink (
        g_variant_new ("(xsss)", g_get_real_time (), g_get_user_name (), audit_action, ""));
      if (!canopy_backend_append (backend, CANOPY_LOG_AUDIT, &entry, 1, error))
        return NULL;
    }
  if (!canopy_backend_get_info (backend, &info, error))
    return NULL;
  description = g_strdup_printf (_("%s, %s, schema version %u"), info.location,
                                 info.server_version, info.schema_version);
  canopy_backend_info_clear (&info);
  return description;
}

static gboolean
restore_activation (const char *key, GVariant *value, gpointer user_data)
{
  CanopyActivation activation = { (char *) key, 0, 0 };
  gint64 released;

  g_variant_get (value, "(xxx)", &activation.activated_at, &activation.last_seen, &released);
  if (released == 0)
    canopy_licensing_restore (user_data, &activation);
  return TRUE;
}

/* After the store is open, so the stored state is known to be readable
 * before a crash is blamed on anything. */
static gboolean
begin_run (CanopyServer *server, GError **error)
{
  gint64 unclean;

  server->run_marker = canopy_run_marker_begin (server->config->state_directory, error);
  if (server->run_marker == NULL)
    return FALSE;
  unclean = canopy_run_marker_get_unclean_start (server->run_marker);
  if (unclean != 0)
    {
      g_autofree char *when = canopy_log_format_time (unclean);

      g_warning (_("canopyd did not stop cleanly last time (the run that began at %s): it was "
                   "killed or the machine went down. What was stored is kept and deployments "
                   "go on; look in the system log (journalctl -u canopyd) for why it stopped"),
                 when);
    }
  return TRUE;
}

/* Before the transports listen, so the first agents find it ready. */
static gboolean
start_content_store (CanopyServer *server, GError **error)
{
  const CanopyServerConfig *config = server->config;

  if (config->content_store_directory == NULL)
    return TRUE;
  server->content_store = canopy_content_store_new (config->content_store_directory,
                                                    config->content_store_quota,
                                                    server->server_id,
                                                    (guint) config->content_store_upload_slots,
                                                    error);
  if (server->content_store == NULL)
    return FALSE;
  canopy_catalog_set_content_store (server->catalog, server->content_store);
  canopy_sessions_set_peer_handler (server->sessions,
                                    canopy_content_store_get_peer_handler (),
                                    server->content_store);
  canopy_distributor_set_content_store (server->distributor, server->content_store);
  g_message (_("Content store in %s: the server keeps a copy of the content it registers and "
               "seeds it to office leads"), config->content_store_directory);
  return TRUE;
}

static CanopyConsole *start_console (CanopyServer *server, const CanopySharedKey *key,
                                     GError **error);
static void start_cluster (CanopyServer *server);

gboolean
canopy_server_start (CanopyServer *server, GError **error)
{
  const CanopyServerConfig *config = server->config;
  g_autofree char *key_path = g_build_filename (config->state_directory,
                                                CANOPY_SETUP_SHARED_KEY_FILE, NULL);
  g_autofree char *signing_path = g_build_filename (config->state_directory,
                                                    CANOPY_SETUP_SIGNING_KEY_FILE, NULL);
  g_autoptr (CanopySharedKey) key = NULL;
  g_autoptr (GBytes) public_key = NULL;
  CanopySessionsSettings settings = { 0 };
  guint seats;
  gint64 expires;

  server->server_id = canopy_setup_load_server_id (config->state_directory, error);
  if (server->server_id == NULL)
    return FALSE;
  key = canopy_shared_key_load (key_path, error);
  if (key == NULL || !licensed_seats (config, &seats, &expires, error))
    return FALSE;
  server->signing_key = canopy_signing_key_load (signing_path, error);
  if (server->signing_key == NULL)
    return FALSE;
  public_key = canopy_signing_key_get_public (server->signing_key);

  server->settings = canopy_settings_new_from_config (config, error);
  if (server->settings == NULL)
    return FALSE;
  server->licensing = canopy_licensing_new (seats, (gint64) config->release_after_days * 86400
                                                     * G_USEC_PER_SEC);
  canopy_licensing_set_expiry (server->licensing, expires);
  /* Before the state is loaded: no other server's change after it is missed. */
  if (config->cluster)
    {
      server->cluster = canopy_cluster_new (server->backend, config->backend,
                                            config->state_directory, server->server_id,
                                            config->name, (guint) config->cluster_lease_s,
                                            config->cluster_poll, error);
      if (server->cluster == NULL)
        return FALSE;
    }
  server->store = canopy_store_open (server->backend, config->backend, config->state_directory,
                                     error);
  if (server->store == NULL || !begin_run (server, error)
      || !canopy_store_list (server->store, CANOPY_RECORD_ACTIVATION, restore_activation,
                             server->licensing, error)
      || !canopy_settings_load_stored (server->settings, server->store, error))
    return FALSE;
  server->topology = load_topology (config, server->settings, error);
  if (server->topology == NULL || !restore_auto_offices (server, server->topology, error))
    return FALSE;
  settings.server_id = server->server_id;
  settings.signing_public_key = public_key;
  settings.heartbeat_interval = (guint) config->heartbeat_interval;
  settings.assigned_groups = (const char *const *) server->settings->assigned_groups;
  settings.distribution_optimization = server->settings->distribution_optimization;
  settings.refuse_no_office = server->settings->no_office_clients == CANOPY_NO_OFFICE_REFUSE;
  settings.topology = server->topology;
  settings.licensing = server->licensing;
  settings.store = server->store;
  server->sessions = canopy_sessions_new (&settings);
  server->catalog = canopy_catalog_new (server->store, server->signing_key, error);
  if (server->catalog == NULL)
    return FALSE;
  {
    const char *private_directories[] = { config->state_directory,
                                          config->content_store_directory, NULL };

    canopy_catalog_set_content_sources (server->catalog,
                                        (const char *const *) config->content_sources,
                                        private_directories);
  }
  server->distributor = canopy_distributor_new (server->store, server->catalog, server->topology,
                                                server->sessions, error);
  if (server->distributor != NULL)
    canopy_distributor_set_background_target (server->distributor,
                                               (guint) config->background_target_ms);
  if (server->distributor == NULL || !start_content_store (server, error)
      || !start_transports (server, key, error))
    return FALSE;
  if (config->console)
    server->console = start_console (server, key, error);
  if (config->console && server->console == NULL)
    return FALSE;
  start_cluster (server);
  return TRUE;
}

gboolean
canopy_server_drain (CanopyServer *server)
{
  return server->console == NULL || canopy_console_drain (server->console);
}

void
canopy_server_stop (CanopyServer *server)
{
  /* first: its deliveries reach everything below */
  g_clear_pointer (&server->cluster, canopy_cluster_free);
  g_clear_pointer (&server->console, canopy_console_free);
  g_clear_pointer (&server->distributor, canopy_distributor_free);
  /* The sessions hand their peer connections back to the content store
   * when freed, so it goes after them. */
  g_clear_pointer (&server->sessions, canopy_sessions_free);
  g_clear_pointer (&server->catalog, canopy_catalog_free);
  g_clear_pointer (&server->content_store, canopy_content_store_free);
  g_clear_pointer (&server->store, canopy_store_free);
  g_clear_pointer (&server->licensing, canopy_licensing_free);
  g_clear_pointer (&server->topology, canopy_topology_free);
  g_clear_pointer (&server->signing_key, canopy_signing_key_free);
  g_clear_pointer (&server->server_id, g_free);
  g_clear_pointer (&server->settings, canopy_settings_free);
  g_clear_pointer (&server->run_marker, canopy_run_marker_end);
}

/* --- what the console reads and changes --------------------------------- */

static const CanopyServerConfig *
console_get_config (gpointer owner)
{
  return ((CanopyServer *) owner)->config;
}

static const CanopySettings *
console_get_settings (gpointer owner)
{
  return ((CanopyServer *) owner)->settings;
}

static const CanopyTopology *
console_get_topology (gpointer owner)
{
  return ((CanopyServer *) owner)->topology;
}

/* Puts new settings in force at once: assigned groups accept dormant
 * devices on their next retry, a new topology places the next hellos. */
static void
console_apply_settings (gpointer owner, CanopySettings *settings, CanopyTopology *topology)
{
  CanopyServer *server = owner;
  g_autoptr (GError) error = NULL;

  canopy_settings_free (server->settings);
  server->settings = settings;
  if (topology != NULL && !restore_auto_offices (server, topology, &error))
    g_warning (_("The automatic offices could not be read back: %s; they are made again as "
                 "their devices connect"), error->message);
  if (topology != NULL)
    {
      canopy_sessions_set_topology (server->sessions, topology,
                                    settings->distribution_optimization);
      canopy_distributor_set_topology (server->distributor, topology);
      canopy_topology_free (server->topology);
      server->topology = topology;
    }
  canopy_sessions_set_assigned_groups (server->sessions,
                                       (const char *const *) settings->assigned_groups);
  canopy_sessions_set_refuse_no_office (server->sessions,
                                        settings->no_office_clients == CANOPY_NO_OFFICE_REFUSE);
}

/* --- several servers on one database ------------------------------------ */

/* Settings another server changed: the file's, overlaid by what is stored
 * now; the offices are built again only when what defines them changed. */
static void
merge_settings (CanopyServer *server, GPtrArray *records)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySettings) settings = canopy_settings_new_from_config (server->config, &error);
  CanopyTopology *topology = NULL;

  if (settings == NULL)
    {
      g_warning (_("Settings changed on another server could not be taken in: %s"),
                 error->message);
      return;
    }
  for (guint i = 0; i < records->len; i++)
    {
      const CanopyClusterRecord *r = g_ptr_array_index (records, i);
      canopy_settings_load_record (settings, r->key, r->value);
    }
  if (settings->distribution_optimization != server->settings->distribution_optimization
      || g_strcmp0 (settings->topology_csv, server->settings->topology_csv) != 0)
    {
      topology = load_topology (server->config, settings, &error);
      if (topology == NULL)
        {
          g_warning (_("The offices changed on another server could not be taken in: %s"),
                     error->message);
          return;
        }
    }
  console_apply_settings (server, g_steal_pointer (&settings), topology);
}

/* Licences are counted over the whole cluster: the activations every
 * server stored. One released there (or gone) is released here, unless
 * the device activated here a moment ago and its own is not written yet. */
static void
merge_activation (CanopyServer *server, const char *device_id, GVariant *value)
{
  const CanopyActivation *known = canopy_licensing_lookup (server->licensing, device_id);
  gint64 released = 1; /* a row that went is a licence released */

  if (value != NULL)
    g_variant_get_child (value, 2, "x", &released);
  if (released == 0 && known == NULL)
    restore_activation (device_id, value, server->licensing);
  else if (released != 0 && known != NULL
           && known->activated_at < g_get_real_time () - 10 * G_USEC_PER_SEC)
    canopy_licensing_release (server->licensing, device_id);
}

static GHashTable *
record_keys (GPtrArray *records)
{
  GHashTable *keys = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < records->len; i++)
    g_hash_table_add (keys, ((CanopyClusterRecord *) g_ptr_array_index (records, i))->key);
  return keys;
}

/* What another server removed: what this server saw stored and is
 * missing now. Never while this server's own writes fail: what it reads
 * then is not the database as its own writes will leave it. */
static void
merge_removals (CanopyServer *server, const CanopyClusterChanges *changes)
{
  if (canopy_store_is_failing (server->store))
    return;
  if (changes->kinds & (1u << CANOPY_RECORD_DEPLOYMENT))
    {
      g_autoptr (GHashTable) stored = record_keys (changes->records[CANOPY_RECORD_DEPLOYMENT]);
      canopy_distributor_merge_removed (server->distributor, stored);
    }
  if (changes->kinds & (1u << CANOPY_RECORD_CONTENT))
    {
      g_autoptr (GHashTable) stored = record_keys (changes->records[CANOPY_RECORD_CONTENT]);
      canopy_catalog_merge_removed (server->catalog, stored);
    }
}

/* Every server's console lists the cluster's devices, and what the
 * devices of other servers did. */
static void
cluster_row_changed (CanopyRecordKind kind, const char *key, GVariant *value,
                     gpointer user_data)
{
  CanopyServer *server = user_data;

  if (kind == CANOPY_RECORD_ACTIVATION)
    merge_activation (server, key, value);
  else if (kind == CANOPY_RECORD_DEVICE && value != NULL)
    canopy_store_merge_device (server->store, key, value);
  else if (kind == CANOPY_RECORD_PROGRESS && value != NULL)
    canopy_distributor_merge_progress (server->distributor, key, value);
}

static void
cluster_changed (const CanopyClusterChanges *changes, gpointer user_data)
{
  CanopyServer *server = user_data;
  gboolean new_content = FALSE;

  if (changes->kinds & (1u << CANOPY_RECORD_SETTING))
    merge_settings (server, changes->records[CANOPY_RECORD_SETTING]);
  if (changes->kinds & (1u << CANOPY_RECORD_CONTENT))
    for (guint i = 0; i < changes->records[CANOPY_RECORD_CONTENT]->len; i++)
      {
        const CanopyClusterRecord *r = g_ptr_array_index (changes->records[CANOPY_RECORD_CONTENT],
                                                          i);
        new_content |= canopy_catalog_merge_stored (server->catalog, r->key, r->value);
      }
  if (changes->kinds & (1u << CANOPY_RECORD_DEPLOYMENT))
    for (guint i = 0; i < changes->records[CANOPY_RECORD_DEPLOYMENT]->len; i++)
      {
        const CanopyClusterRecord *r = g_ptr_array_index (
          changes->records[CANOPY_RECORD_DEPLOYMENT], i);
        canopy_distributor_merge_stored (server->distributor, r->key, r->value);
      }
  merge_removals (server, changes);
  /* deployments waiting for content they had not seen yet */
  if (new_content)
    canopy_distributor_leases_changed (server->distributor);
  if (changes->kinds & (1u << CANOPY_RECORD_OFFICE))
    {
      g_autoptr (GError) error = NULL;

      if (!restore_auto_offices (server, server->topology, &error))
        g_warning (_("The automatic offices could not be read back: %s; they are made again as "
                     "their devices connect"), error->message);
    }
  /* an admin added, or a token revoked, on another server counts here at once */
  if ((changes->kinds & ((1u << CANOPY_RECORD_ADMIN) | (1u << CANOPY_RECORD_ADMIN_TOKEN)))
      && server->console != NULL)
    canopy_console_admins_changed (server->console);
}

static void
cluster_leases_changed (gpointer user_data)
{
  CanopyServer *server = user_data;

  canopy_distributor_leases_changed (server->distributor);
}

static gboolean
gate_may_lead (const char *office, char **holder_detail, gpointer user_data)
{
  CanopyServer *server = user_data;

  return canopy_cluster_holds_lease (server->cluster, office, holder_detail);
}

/* Wants the lease of each office this server would lead, publishing its
 * leads there; lets go of the others. */
static void
gate_leading (GHashTable *offices, gpointer user_data)
{
  CanopyServer *server = user_data;
  GHashTableIter iter;
  gpointer office, detail;

  g_hash_table_iter_init (&iter, offices);
  while (g_hash_table_iter_next (&iter, &office, &detail))
    canopy_cluster_want_lease (server->cluster, office, ((GString *) detail)->str);
  canopy_cluster_keep_only (server->cluster, offices);
}

static const CanopyDistributorLeadGate lead_gate = {
  .may_lead = gate_may_lead,
  .leading = gate_leading,
};

static void
start_cluster (CanopyServer *server)
{
  static const CanopyClusterCallbacks callbacks = {
    .changed = cluster_changed,
    .row_changed = cluster_row_changed,
    .leases_changed = cluster_leases_changed,
  };

  if (server->cluster == NULL)
    return;
  canopy_distributor_set_lead_gate (server->distributor, &lead_gate, server);
  canopy_cluster_start (server->cluster, &callbacks, server);
  if (canopy_cluster_is_notified (server->cluster))
    g_message (_("Cluster: this server (ID %s) shares its database with the others; their "
                 "changes are taken in as the database notifies them"), server->server_id);
  else
    g_message (_("Cluster: this server (ID %s) shares its database with the others; their "
                 "changes are taken in as the database is polled for them"), server->server_id);
}

static CanopyConsole *
start_console (CanopyServer *server, const CanopySharedKey *key, GError **error)
{
  CanopyConsoleContext context = {
    .server_id = server->server_id,
    .store = server->store,
    .sessions = server->sessions,
    .catalog = server->catalog,
    .distributor = server->distributor,
    .content_store = server->content_store,
    .licensing = server->licensing,
    .run_marker = server->run_marker,
    .cluster = server->cluster,
    .owner = server,
    .get_config = console_get_config,
    .get_settings = console_get_settings,
    .get_topology = console_get_topology,
    .apply_settings = console_apply_settings,
  };

  return canopy_console_new (&context, key, error);
}
