/* canopy-agent's running state: configuration plus the transports it
 * reaches the server and its peers with. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent"

#include "agent/agent.h"
#include "agent/installed.h"
#include "agent/cache.h"
#include "agent/fetch.h"
#include "agent/peers.h"
#include "agent/uplink.h"
#include "lib/atomic-file.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/identity.h"
#include "lib/keys.h"
#include "lib/plugin-loader.h"
#include "lib/wire.h"

#include <errno.h>
#include <string.h>

/* The server's content-signing key, kept so a restarted agent can reopen
 * its cache and serve its peers before the server answers. */
#define SERVER_KEY_FILE "server-signing-key"
/* How often contents unused for longer than <cache max-age> are looked
 * for, besides at start and after each fetch. */
#define EXPIRE_CHECK_S 60

struct _CanopyAgent {
  char *config_path;
  CanopyAgentConfig *config;
  CanopyPluginLoader *loader;
  GPtrArray *transports; /* const CanopyPlugin * */
  char *device_id;
  CanopyUplink *uplink;
  CanopyCache *cache;
  CanopyPeers *peers;
  GHashTable *fetches; /* deployment ID → CanopyFetch */
  CanopyInstalled *installed; /* what this agent put at destinations */
  guint reap_idle;
  guint expire_timer;
  GCancellable *cancellable; /* cancelled when the agent stops */
  gboolean reopening;
  GBytes *reopen_next; /* (nullable) a key that arrived while reopening */
  /* Deployment IDs whose fetch waits for the cache to be reopened, so that
   * it finds the chunks of earlier versions before it asks anyone. */
  GPtrArray *unstarted;
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
  g_autoptr (GString) servers = g_string_new (NULL);
  const GPtrArray *configured = agent->config->servers;

  for (guint i = 0; i < agent->transports->len; i++)
    g_string_append_printf (transports, "%s%s", i > 0 ? ", " : "",
                            canopy_plugin_get_name (g_ptr_array_index (agent->transports, i)));
  for (guint i = 0; i < configured->len; i++)
    {
      const CanopyServerAddress *server = g_ptr_array_index (configured, i);

      g_string_append_printf (servers, "%s%s:%u", i > 0 ? ", " : "", server->host,
                              server->port);
    }
  return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                      "server %s, transports: %s, state directory %s",
                                      "servers %s, transports: %s, state directory %s",
                                      configured->len),
                          servers->str, transports->str, agent->config->state_directory);
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

static guint64
agent_cached_bytes (gpointer user_data)
{
  CanopyAgent *agent = user_data;

  return canopy_cache_get_size (agent->cache);
}

static void
save_server_key (CanopyAgent *agent, GBytes *key)
{
  g_autofree char *path = g_build_filename (agent->config->state_directory, SERVER_KEY_FILE,
                                            NULL);
  g_autoptr (GBytes) old = NULL;
  g_autoptr (GError) error = NULL;
  char *contents = NULL;
  gsize length;

  if (g_file_get_contents (path, &contents, &length, NULL))
    old = g_bytes_new_take (contents, length);
  if (old != NULL && g_bytes_equal (old, key))
    return;
  if (!canopy_atomic_file_write (path, g_bytes_get_data (key, NULL), g_bytes_get_size (key), 0600,
                                 &error))
    g_message (_("Cannot keep the server's signing key in %s: %s; cached content is served "
                 "again only once the server answers after a restart"),
               path, error->message);
}

static void reopen_cache (CanopyAgent *agent, GBytes *public_key);

static void
start_unstarted (CanopyAgent *agent)
{
  g_autoptr (GPtrArray) ids = g_steal_pointer (&agent->unstarted);

  for (guint i = 0; ids != NULL && i < ids->len; i++)
    {
      CanopyFetch *fetch = g_hash_table_lookup (agent->fetches, g_ptr_array_index (ids, i));

      /* Withdrawn meanwhile: nothing to start. */
      if (fetch != NULL)
        canopy_fetch_start (fetch);
    }
}

/* Runs on the main loop once the worker hashed the cached chunks: peers
 * that asked for these contents before they were open hear of them now. */
static void
on_cache_reopened (GObject *object, GAsyncResult *result, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) ids = canopy_cache_reopen_finish (result, &error);
  g_autoptr (GBytes) next = NULL;

  /* Cancelled: the agent stopped, and may be gone. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  agent->reopening = FALSE;
  if (ids == NULL)
    g_debug ("cannot reopen the cache: %s", error->message);
  for (guint i = 0; ids != NULL && ids[i] != NULL; i++)
    if (agent->peers != NULL)
      canopy_peers_announce (agent->peers, ids[i]);
  if (ids != NULL)
    g_debug ("reopened %u cached contents", g_strv_length (ids));
  next = g_steal_pointer (&agent->reopen_next);
  if (next != NULL)
    {
      reopen_cache (agent, next);
      return;
    }
  start_unstarted (agent);
}

/* Reopens what the cache held with @public_key off the main loop: hashing
 * every cached chunk takes long, and the agent keeps serving meanwhile. */
static void
reopen_cache (CanopyAgent *agent, GBytes *public_key)
{
  if (agent->reopening)
    {
      g_clear_pointer (&agent->reopen_next, g_bytes_unref);
      agent->reopen_next = g_bytes_ref (public_key);
      return;
    }
  agent->reopening = TRUE;
  canopy_cache_reopen_async (agent->cache, public_key, agent->cancellable, on_cache_reopened,
                             agent);
}

/* Reopens what the cache held before a restart, so office peers are
 * served before the server answers; a key that no longer matches leaves
 * the content closed. */
static void
reopen_cache_from_saved_key (CanopyAgent *agent)
{
  g_autofree char *path = g_build_filename (agent->config->state_directory, SERVER_KEY_FILE,
                                            NULL);
  g_autofree char *contents = NULL;
  gsize length;
  g_autoptr (GBytes) bytes = NULL;

  if (!g_file_get_contents (path, &contents, &length, NULL))
    return;
  bytes = g_bytes_new_take (g_steal_pointer (&contents), length);
  reopen_cache (agent, bytes);
}

static void
agent_welcome (CanopyUplink *uplink, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  const CanopyServerAddress *server = canopy_uplink_get_server (uplink);

  /* The server's content store answers where the server does. */
  if (agent->peers != NULL && server != NULL)
    canopy_peers_set_server (agent->peers, server->host, server->port);
  if (canopy_uplink_get_verify_key (uplink) == NULL)
    return;
  save_server_key (agent, canopy_uplink_get_public_key (uplink));
  reopen_cache (agent, canopy_uplink_get_public_key (uplink));
}

/* Contents no deployment under way uses, and unused for longer than
 * <cache max-age>, go: a package deployed once a year does not sit on
 * every device's disk meanwhile. */
static void
expire_cache (CanopyAgent *agent, const char *const *keep)
{
  guint removed;

  if (agent->config->cache_max_age <= 0)
    return;
  removed = canopy_cache_expire (agent->cache, agent->config->cache_max_age, keep);
  if (removed > 0)
    g_message (_("Removed %u contents from the cache that were unused for longer than its "
                 "max-age"), removed);
}

/* Finished fetches are dropped (a repeated assignment is answered from the
 * cache), then the cache is brought back within its quota and its
 * max-age. */
static gboolean
reap_fetches (gpointer user_data)
{
  CanopyAgent *agent = user_data;
  g_autoptr (GStrvBuilder) keep = g_strv_builder_new ();
  g_auto (GStrv) keep_ids = NULL;
  GHashTableIter iter;
  gpointer value;
  guint removed;

  agent->reap_idle = 0;
  g_hash_table_iter_init (&iter, agent->fetches);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (canopy_fetch_is_finished (value))
      g_hash_table_iter_remove (&iter);
    else
      g_strv_builder_add (keep, canopy_fetch_get_content_id (value));
  keep_ids = g_strv_builder_end (keep);
  removed = canopy_cache_evict (agent->cache, (const char *const *) keep_ids);
  if (removed > 0)
    g_message (g_dngettext (GETTEXT_PACKAGE,
                            "Removed %u of the least recently used content from the cache "
                            "to stay within its quota",
                            "Removed %u of the least recently used contents from the cache "
                            "to stay within its quota",
                            removed), removed);
  expire_cache (agent, (const char *const *) keep_ids);
  return G_SOURCE_REMOVE;
}

static gboolean
expire_due (gpointer user_data)
{
  CanopyAgent *agent = user_data;
  g_autoptr (GStrvBuilder) keep = g_strv_builder_new ();
  g_auto (GStrv) keep_ids = NULL;
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, agent->fetches);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_strv_builder_add (keep, canopy_fetch_get_content_id (value));
  keep_ids = g_strv_builder_end (keep);
  expire_cache (agent, (const char *const *) keep_ids);
  return G_SOURCE_CONTINUE;
}

/* A package put in place is recorded before the server hears of it, so
 * that retiring its deployment can remove it. */
static void
record_installed (CanopyAgent *agent, CanopyFetch *fetch, GVariant *body)
{
  g_autoptr (GVariant) sha = NULL;
  g_autoptr (GError) error = NULL;
  const guint8 *digest;
  gsize length;

  g_variant_get_child (body, 1, "@ay", &sha);
  digest = g_variant_get_fixed_array (sha, &length, 1);
  if (length != CANOPY_INSTALLED_HASH_SIZE
      || !canopy_installed_add (agent->installed, canopy_fetch_get_deployment_id (fetch),
                                canopy_fetch_get_destination (fetch), digest, &error))
    g_warning (_("Cannot record that deployment %s installed %s (%s); it will not be removed "
                 "if the deployment is retired"),
               canopy_fetch_get_deployment_id (fetch), canopy_fetch_get_destination (fetch),
               error != NULL ? error->message : _("bad hash"));
}

static void
agent_report (CanopyFetch *fetch, guint kind, GVariant *body, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  g_autoptr (GError) error = NULL;

  if (kind == CANOPY_WIRE_DONE)
    record_installed (agent, fetch, body);
  if (!canopy_uplink_send (agent->uplink, kind, body, &error))
    g_debug ("cannot report on deployment %s: %s", canopy_fetch_get_deployment_id (fetch),
             error->message);
  if ((kind == CANOPY_WIRE_DONE || kind == CANOPY_WIRE_FAILED) && agent->reap_idle == 0)
    agent->reap_idle = g_idle_add (reap_fetches, agent);
}

static void
agent_assignment (CanopyUplink *uplink, GVariant *body, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  const CanopyVerifyKey *key = canopy_uplink_get_verify_key (uplink);
  g_autoptr (GError) error = NULL;
  const char *deployment_id = NULL;
  CanopyFetch *fetch;

  g_variant_get_child (body, 0, "&s", &deployment_id);
  fetch = g_hash_table_lookup (agent->fetches, deployment_id);
  if (fetch != NULL && canopy_fetch_update (fetch, body, &error))
    return;
  if (fetch == NULL && key != NULL)
    {
      fetch = canopy_fetch_new (agent->cache, agent->peers, key, body, agent_report, agent,
                                &error);
      if (fetch != NULL)
        {
          canopy_fetch_set_destinations (fetch,
                                         (const char *const *) agent->config->destinations);
          canopy_fetch_set_subject (fetch, agent->device_id, canopy_uplink_get_office (uplink));
          g_hash_table_insert (agent->fetches, g_strdup (deployment_id), fetch);
          if (agent->reopening)
            {
              if (agent->unstarted == NULL)
                agent->unstarted = g_ptr_array_new_with_free_func (g_free);
              g_ptr_array_add (agent->unstarted, g_strdup (deployment_id));
            }
          else
            canopy_fetch_start (fetch);
          return;
        }
    }
  if (error == NULL)
    g_set_error (&error, CANOPY_FETCH_ERROR, CANOPY_FETCH_ERROR_ASSIGNMENT,
                 _("This agent has no usable content-signing key from the server"));
  {
    CanopyLogSubject subject = { deployment_id, NULL, agent->device_id,
                                 canopy_uplink_get_office (uplink) };

    canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_FETCH_FAILED, &subject,
                      _("Cannot carry out deployment %s: %s"), deployment_id, error->message);
  }
  canopy_uplink_send (uplink, CANOPY_WIRE_FAILED,
                      g_variant_new ("(ss)", deployment_id, error->message), NULL);
}

/* The server removed or cancelled a deployment: its fetch stops before it
 * installs anything, and the server hears what this device did. */
/* Comes right after the assignment it applies to, so the fetch exists and
 * has not sent a request yet: its requests are opened on a worker thread. */
static void
agent_wan_class (CanopyUplink *uplink, GVariant *body, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  const char *deployment_id;
  gboolean background;
  guint32 target_ms;
  CanopyFetch *fetch;

  g_variant_get (body, "(&sbu)", &deployment_id, &background, &target_ms);
  fetch = g_hash_table_lookup (agent->fetches, deployment_id);
  if (fetch != NULL)
    canopy_fetch_set_wan_class (fetch, background, target_ms);
}

static void
agent_withdraw (CanopyUplink *uplink, GVariant *body, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  const char *deployment_id, *reason;
  CanopyFetch *fetch;
  CanopyWireWithdrawn outcome = CANOPY_WIRE_WITHDRAWN_NOTHING;

  g_variant_get (body, "(&s&s)", &deployment_id, &reason);
  fetch = g_hash_table_lookup (agent->fetches, deployment_id);
  if (fetch != NULL)
    outcome = canopy_fetch_is_finished (fetch) ? CANOPY_WIRE_WITHDRAWN_INSTALLED
                                               : CANOPY_WIRE_WITHDRAWN_STOPPED;
  if (outcome == CANOPY_WIRE_WITHDRAWN_STOPPED)
    g_message (_("Deployment %s was withdrawn (%s): stopped fetching it; nothing was "
                 "installed"), deployment_id, reason);
  else
    g_debug ("deployment %s withdrawn (%s); nothing under way", deployment_id, reason);
  /* Freeing the fetch cancels it, its install included. */
  g_hash_table_remove (agent->fetches, deployment_id);
  canopy_uplink_send (uplink, CANOPY_WIRE_WITHDRAWN,
                      g_variant_new ("(su)", deployment_id, (guint32) outcome), NULL);
}

/* --- uninstall ---------------------------------------------------------- */

typedef struct {
  char *deployment_id;
  char *destination;
  guint8 sha256[CANOPY_INSTALLED_HASH_SIZE];
  GStrv directories;
  CanopyWireUninstalled outcome;
  char *message;
} Uninstall;

static void
uninstall_free (Uninstall *u)
{
  g_free (u->deployment_id);
  g_free (u->destination);
  g_strfreev (u->directories);
  g_free (u->message);
  g_free (u);
}

static void
uninstall_thread (GTask *task, gpointer object, gpointer task_data, GCancellable *cancellable)
{
  Uninstall *u = task_data;

  u->outcome = canopy_installed_remove_file ((const char *const *) u->directories,
                                             u->destination, u->sha256, &u->message);
  g_task_return_boolean (task, TRUE);
}

static void
uninstall_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  Uninstall *u = g_task_get_task_data (G_TASK (result));
  g_autoptr (GError) error = NULL;

  /* Cancelled when the agent stops: @agent may be gone. */
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    return;
  g_message (_("Deployment %s was retired: %s"), u->deployment_id, u->message);
  if (u->outcome != CANOPY_WIRE_UNINSTALLED_FAILED
      && !canopy_installed_forget (agent->installed, u->deployment_id, &error))
    g_warning (_("Cannot update the record of installed packages: %s"), error->message);
  canopy_uplink_send (agent->uplink, CANOPY_WIRE_UNINSTALLED,
                      g_variant_new ("(sus)", u->deployment_id, (guint32) u->outcome,
                                     u->message),
                      NULL);
}

/* The server retired a deployment: its fetch stops, and its package is
 * removed if this agent installed it there and nobody changed it since.
 * Hashing a large package takes a while: a worker thread does it. */
static void
agent_uninstall (CanopyUplink *uplink, GVariant *body, gpointer user_data)
{
  CanopyAgent *agent = user_data;
  g_autoptr (GVariant) sha = NULL;
  g_autoptr (GTask) task = NULL;
  const char *deployment_id, *destination;
  const guint8 *digest;
  gsize length;
  Uninstall *u;

  g_variant_get (body, "(&s&s@ay)", &deployment_id, &destination, &sha);
  digest = g_variant_get_fixed_array (sha, &length, 1);
  g_hash_table_remove (agent->fetches, deployment_id);
  if (length != CANOPY_INSTALLED_HASH_SIZE
      || !canopy_installed_has (agent->installed, deployment_id, destination, digest))
    {
      g_autofree char *message = g_strdup_printf (
        _("canopy did not install this deployment's package at %s on this device; nothing was "
          "removed"), destination);

      g_message (_("Deployment %s was retired: %s"), deployment_id, message);
      canopy_uplink_send (uplink, CANOPY_WIRE_UNINSTALLED,
                          g_variant_new ("(sus)", deployment_id,
                                         (guint32) CANOPY_WIRE_UNINSTALLED_NOT_INSTALLED,
                                         message),
                          NULL);
      return;
    }
  u = g_new0 (Uninstall, 1);
  u->deployment_id = g_strdup (deployment_id);
  u->destination = g_strdup (destination);
  memcpy (u->sha256, digest, sizeof u->sha256);
  u->directories = g_strdupv (agent->config->destinations);
  task = g_task_new (NULL, agent->cancellable, uninstall_done, agent);
  g_task_set_return_on_cancel (task, FALSE);
  g_task_set_task_data (task, u, (GDestroyNotify) uninstall_free);
  g_task_run_in_thread (task, uninstall_thread);
}

static const CanopyUplinkEvents agent_uplink_events = {
  .welcome = agent_welcome,
  .assignment = agent_assignment,
  .cached_bytes = agent_cached_bytes,
  .withdraw = agent_withdraw,
  .uninstall = agent_uninstall,
  .wan_class = agent_wan_class,
};

/* A port in use does not stop the agent: it still fetches, and the server
 * is told it serves no peers. */
static void
start_peers (CanopyAgent *agent, const CanopyTransportCredentials *creds)
{
  const CanopyAgentConfig *config = agent->config;
  g_autoptr (GError) error = NULL;
  guint16 port = 0;

  agent->peers = canopy_peers_new (g_ptr_array_index (agent->transports, 0),
                                   config->peer_transport, creds, agent->cache,
                                   config->upload_slots, &error);
  if (agent->peers == NULL)
    {
      g_message (_("Cannot set up the office-peer transport: %s; this device fetches from the "
                   "origin only until it is fixed"), error->message);
      return;
    }
  if (!canopy_peers_listen (agent->peers, &port, &error))
    {
      g_message (_("Cannot serve office peers on %s port %u: %s. Free the port or choose "
                   "another in <peers port=\"...\"/>; until then this device does not share "
                   "content with its office"),
                 config->peer_address, config->peer_port, error->message);
      return;
    }
  g_message (g_dngettext (GETTEXT_PACKAGE,
                          "Serving office peers on %s port %u with %u upload slot",
                          "Serving office peers on %s port %u with %u upload slots",
                          config->upload_slots), config->peer_address,
             port, config->upload_slots);
  canopy_uplink_set_peer_port (agent->uplink, port);
  canopy_uplink_set_peer_address (agent->uplink, config->peer_address);
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
  agent->cache = canopy_cache_open (config->cache_directory, config->cache_quota, error);
  if (agent->cache == NULL)
    return FALSE;
  agent->cancellable = g_cancellable_new ();
  /* Before the cache is read again: what expired is not checked first. */
  expire_cache (agent, NULL);
  if (config->cache_max_age > 0)
    agent->expire_timer = g_timeout_add_seconds (EXPIRE_CHECK_S, expire_due, agent);
  reopen_cache_from_saved_key (agent);
  agent->fetches = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) canopy_fetch_free);
  {
    g_autofree char *installed = g_build_filename (config->state_directory, "installed", NULL);
    agent->installed = canopy_installed_load (installed);
  }
  key = canopy_shared_key_load (config->shared_key_file, error);
  if (key == NULL
      || !canopy_keys_make_transport_credentials (key, agent->device_id, &creds, error))
    return FALSE;
  agent->uplink = canopy_uplink_new (g_ptr_array_index (agent->transports, 0),
                                     g_ptr_array_index (config->transports, 0), &creds,
                                     config->servers,
                                     (const char *const *) config->groups, config->name,
                                     error);
  if (agent->uplink != NULL)
    start_peers (agent, &creds);
  canopy_keys_wipe (creds.secret, sizeof creds.secret);
  if (agent->uplink == NULL)
    return FALSE;
  canopy_uplink_set_events (agent->uplink, &agent_uplink_events, agent);
  canopy_uplink_start (agent->uplink);
  return TRUE;
}

void
canopy_agent_stop (CanopyAgent *agent)
{
  if (agent->reap_idle != 0)
    g_source_remove (agent->reap_idle);
  agent->reap_idle = 0;
  if (agent->expire_timer != 0)
    g_source_remove (agent->expire_timer);
  agent->expire_timer = 0;
  /* Workers still running (reopening, storing, assembling) keep their own
   * references to the cache and entries; their results are dropped. */
  if (agent->cancellable != NULL)
    g_cancellable_cancel (agent->cancellable);
  g_clear_object (&agent->cancellable);
  g_clear_pointer (&agent->reopen_next, g_bytes_unref);
  g_clear_pointer (&agent->unstarted, g_ptr_array_unref);
  agent->reopening = FALSE;
  /* Fetches first: they are clients of the peers and write to the cache. */
  g_clear_pointer (&agent->fetches, g_hash_table_unref);
  g_clear_pointer (&agent->uplink, canopy_uplink_free);
  g_clear_pointer (&agent->peers, canopy_peers_free);
  g_clear_pointer (&agent->cache, canopy_cache_free);
  g_clear_pointer (&agent->installed, canopy_installed_free);
  g_clear_pointer (&agent->device_id, g_free);
}
