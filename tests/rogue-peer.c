/* canopy-test-rogue: a device that holds the shared key and lies to its
 * office. It enrols like canopy-agent (same configuration file), tells its
 * peers it holds every chunk of whatever it is assigned and tells the
 * server it keeps progressing, but never delivers: CANOPY_ROGUE_MODE says
 * how it fails a request ("silent": never answers, "cancel": says it does
 * not hold the chunk and announces it again, "garbage": sends random data). */
#include "build-config.h"

#include "agent/agent-config.h"
#include "agent/uplink.h"
#include "lib/identity.h"
#include "lib/keys.h"
#include "lib/manifest.h"
#include "lib/plugin-loader.h"
#include "lib/program.h"
#include "lib/shared-key.h"
#include "lib/wire.h"

#include <string.h>

typedef enum {
  ROGUE_SILENT,
  ROGUE_CANCEL,
  ROGUE_GARBAGE,
} RogueMode;

typedef struct {
  CanopyAgentConfig *config;
  CanopyPluginLoader *loader;
  GPtrArray *transports; /* const CanopyPlugin * */
  RogueMode mode;
  char *device_id;
  CanopyUplink *uplink;
  CanopyTransport *peers;
  GPtrArray *conns; /* CanopyTransportConnection *, not owned */
  char *deployment_id;
  CanopyManifest *manifest;
  guint claimed; /* chunks it pretends to hold, to the server */
  guint progress_timer;
} Rogue;

static void
rogue_free (gpointer data)
{
  Rogue *rogue = data;

  if (rogue->progress_timer != 0)
    g_source_remove (rogue->progress_timer);
  g_clear_pointer (&rogue->uplink, canopy_uplink_free);
  g_clear_pointer (&rogue->peers, canopy_transport_free);
  g_clear_pointer (&rogue->conns, g_ptr_array_unref);
  canopy_manifest_free (rogue->manifest);
  g_free (rogue->deployment_id);
  g_free (rogue->device_id);
  g_clear_pointer (&rogue->transports, g_ptr_array_unref);
  canopy_plugin_loader_free (rogue->loader);
  canopy_agent_config_free (rogue->config);
  g_free (rogue);
}

static void
send_quietly (CanopyTransportConnection *conn, CanopyWireKind kind, GVariant *body,
              GBytes *payload)
{
  g_autoptr (GBytes) frame = canopy_wire_encode (kind, body);

  canopy_transport_send (conn, frame, payload, NULL);
}

/* The lie itself: every chunk, whatever it holds (nothing). */
static void
send_have (Rogue *rogue, CanopyTransportConnection *conn)
{
  gsize length = (canopy_manifest_get_n_chunks (rogue->manifest) + 7) / 8;
  g_autofree guint8 *bits = g_malloc (length);

  memset (bits, 0xff, length);
  send_quietly (conn, CANOPY_WIRE_HAVE,
                g_variant_new ("(s@ay)", rogue->manifest->content_id,
                               g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bits, length, 1)),
                NULL);
}

static void
send_hello (Rogue *rogue, CanopyTransportConnection *conn)
{
  GVariantBuilder ids;

  g_variant_builder_init (&ids, G_VARIANT_TYPE_STRING_ARRAY);
  if (rogue->manifest != NULL)
    g_variant_builder_add (&ids, "s", rogue->manifest->content_id);
  send_quietly (conn, CANOPY_WIRE_PEER_HELLO,
                g_variant_new ("(sas)", rogue->device_id, &ids),
                NULL);
}

static void
answer_request (Rogue *rogue, CanopyTransportConnection *conn, guint index)
{
  const char *content_id = rogue->manifest->content_id;
  guint32 length;
  g_autofree guint8 *junk = NULL;

  g_message ("rogue: request for chunk %u from %s", index,
             canopy_transport_connection_get_peer_id (conn));
  switch (rogue->mode)
    {
    case ROGUE_SILENT:
      break;
    case ROGUE_CANCEL:
      send_quietly (conn, CANOPY_WIRE_CANCEL, g_variant_new ("(su)", content_id, index), NULL);
      send_have (rogue, conn);
      break;
    case ROGUE_GARBAGE:
      length = canopy_manifest_get_chunk_length (rogue->manifest, index);
      junk = g_malloc (length);
      for (guint32 i = 0; i < length; i++)
        junk[i] = (guint8) g_random_int ();
      send_quietly (conn, CANOPY_WIRE_DATA, g_variant_new ("(su)", content_id, index),
                    g_bytes_new_take (g_steal_pointer (&junk), length));
      break;
    }
}

static void
on_peer_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                 gpointer user_data)
{
  Rogue *rogue = user_data;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (header, &kind, NULL);
  const char *content_id;
  guint32 index;

  if (body == NULL || rogue->manifest == NULL)
    return;
  if (kind == CANOPY_WIRE_PEER_HELLO)
    send_have (rogue, conn);
  else if (kind == CANOPY_WIRE_REQUEST)
    {
      g_variant_get (body, "(&su)", &content_id, &index);
      if (g_str_equal (content_id, rogue->manifest->content_id)
          && index < canopy_manifest_get_n_chunks (rogue->manifest))
        answer_request (rogue, conn, index);
    }
}

static void
on_peer_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  Rogue *rogue = user_data;

  g_ptr_array_add (rogue->conns, conn);
  send_hello (rogue, conn);
}

static void
on_peer_drained (CanopyTransportConnection *conn, gpointer user_data)
{
}

static void
on_peer_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  Rogue *rogue = user_data;

  g_ptr_array_remove (rogue->conns, conn);
}

static const CanopyTransportEvents peer_events = {
  .incoming = on_peer_incoming,
  .message = on_peer_message,
  .drained = on_peer_drained,
  .closed = on_peer_closed,
};

/* Progress that never stalls, so the server's stall detection alone
 * would keep it as its office's lead. */
static gboolean
on_progress (gpointer user_data)
{
  Rogue *rogue = user_data;
  guint n = canopy_manifest_get_n_chunks (rogue->manifest);
  guint64 by_kind[4] = { 0, 0, 0, 0 };

  rogue->claimed = MIN (rogue->claimed + 1, n - 1);
  by_kind[3] = (guint64) rogue->claimed * rogue->manifest->chunk_size;
  canopy_uplink_send (
    rogue->uplink, CANOPY_WIRE_PROGRESS,
    g_variant_new ("(su@at@a(stu))", rogue->deployment_id, rogue->claimed,
                   g_variant_new_fixed_array (G_VARIANT_TYPE_UINT64, by_kind, 4, sizeof (guint64)),
                   g_variant_new_array (G_VARIANT_TYPE ("(stu)"), NULL, 0)),
    NULL);
  return G_SOURCE_CONTINUE;
}

static void
on_assignment (CanopyUplink *uplink, GVariant *body, gpointer user_data)
{
  Rogue *rogue = user_data;
  g_autoptr (GVariant) manifest = NULL;
  g_autoptr (GBytes) bytes = NULL;
  const char *deployment_id;
  guint32 role;

  g_variant_get (body, "(&s@ayu@a(ussq)&st)", &deployment_id, &manifest, &role, NULL, NULL,
                 NULL);
  g_message ("rogue: assigned deployment %s as role %u", deployment_id, role);
  if (rogue->manifest != NULL || canopy_uplink_get_verify_key (uplink) == NULL)
    return;
  bytes = g_variant_get_data_as_bytes (manifest);
  rogue->manifest = canopy_manifest_parse (bytes, canopy_uplink_get_verify_key (uplink), NULL);
  if (rogue->manifest == NULL)
    return;
  rogue->deployment_id = g_strdup (deployment_id);
  for (guint i = 0; i < rogue->conns->len; i++)
    send_have (rogue, g_ptr_array_index (rogue->conns, i));
  rogue->progress_timer = g_timeout_add_seconds (1, on_progress, rogue);
}

static const CanopyUplinkEvents uplink_events = {
  .assignment = on_assignment,
};

static gpointer
rogue_load (const char *path, GError **error)
{
  Rogue *rogue = g_new0 (Rogue, 1);
  const char *mode = g_getenv ("CANOPY_ROGUE_MODE");

  rogue->mode = g_strcmp0 (mode, "cancel") == 0    ? ROGUE_CANCEL
                : g_strcmp0 (mode, "garbage") == 0 ? ROGUE_GARBAGE
                                                   : ROGUE_SILENT;
  rogue->conns = g_ptr_array_new ();
  rogue->config = canopy_agent_config_load (path, error);
  if (rogue->config != NULL)
    {
      rogue->loader = canopy_plugin_loader_new (NULL);
      rogue->transports = canopy_plugin_loader_load_nodes (rogue->loader,
                                                           rogue->config->transports,
                                                           CANOPY_PLUGIN_KIND_TRANSPORT, error);
    }
  if (rogue->transports == NULL)
    {
      rogue_free (rogue);
      return NULL;
    }
  return rogue;
}

static char *
rogue_describe (gpointer state)
{
  return g_strdup ("a rogue office peer");
}

static const char *
rogue_debug_domains (gpointer state)
{
  return ((Rogue *) state)->config->debug_domains;
}

static gboolean
rogue_reload (gpointer state, GError **error)
{
  return TRUE;
}

static gboolean
rogue_start (gpointer state, GError **error)
{
  Rogue *rogue = state;
  const CanopyAgentConfig *config = rogue->config;
  g_autofree char *id_path = g_build_filename (config->state_directory, "device-id", NULL);
  g_autoptr (CanopySharedKey) key = NULL;
  g_autoptr (GPtrArray) addresses = NULL;
  CanopyTransportCredentials creds;
  const CanopyPlugin *plugin = g_ptr_array_index (rogue->transports, 0);
  gboolean ok, created;

  g_mkdir_with_parents (config->state_directory, 0700);
  rogue->device_id = canopy_identity_ensure (id_path, "device ID", &created, error);
  key = rogue->device_id != NULL ? canopy_shared_key_load (config->shared_key_file, error) : NULL;
  if (key == NULL
      || !canopy_keys_make_transport_credentials (key, rogue->device_id, &creds, error))
    return FALSE;
  rogue->uplink = canopy_uplink_new (plugin, g_ptr_array_index (config->transports, 0), &creds,
                                     config->servers,
                                     (const char *const *) config->groups, config->name, error);
  rogue->peers = canopy_transport_new (plugin, config->peer_transport, &creds, NULL,
                                       &peer_events, rogue, error);
  canopy_keys_wipe (creds.secret, sizeof creds.secret);
  ok = rogue->uplink != NULL && rogue->peers != NULL && canopy_transport_listen (rogue->peers, error);
  if (!ok)
    return FALSE;
  addresses = canopy_transport_get_listen_addresses (rogue->peers);
  canopy_uplink_set_peer_port (
    rogue->uplink, g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addresses->pdata[0])));
  canopy_uplink_set_peer_address (rogue->uplink, config->peer_address);
  canopy_uplink_set_events (rogue->uplink, &uplink_events, rogue);
  canopy_uplink_start (rogue->uplink);
  g_message ("rogue device %s started", rogue->device_id);
  return TRUE;
}

static const CanopyProgramClass rogue_program = {
  .name = "canopy-test-rogue",
  .summary = "a device that lies to its office peers, for the fault-injection tests",
  .default_config = "rogue.xml",
  .load = rogue_load,
  .free = rogue_free,
  .describe = rogue_describe,
  .get_debug_domains = rogue_debug_domains,
  .reload = rogue_reload,
  .start = rogue_start,
};

int
main (int argc, char **argv)
{
  return canopy_program_main (&rogue_program, argc, argv);
}
