/* Wrappers around a transport plugin's operations table (the SDK side of
 * transports is core/sdk/transport.c). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-transport"

#include "lib/transport.h"
#include "lib/i18n.h"
#include "lib/log.h"

/* A remote party can cause these at will; the first from each address is
 * logged in full, the rest summed up once a minute. */
#define REJECT_LOG_WINDOW_S 60

struct _CanopyTransport {
  const CanopyTransportOps *ops;
  gpointer instance;
  char *name;
  const CanopyTransportEvents *events; /* the user's */
  gpointer user_data;
  CanopyLogLimit *key_mismatches;
  CanopyLogLimit *bad_frames;
};

static char *
host_of (GSocketAddress *address)
{
  if (G_IS_INET_SOCKET_ADDRESS (address))
    return g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
  return g_strdup ("?");
}

static void
on_key_mismatch_summary (const char *host, guint suppressed, gpointer user_data)
{
  g_message (_("%u more connections from %s were refused for a key mismatch in the last "
               "minute. A device there holds an old or wrong shared key: give it the current "
               "one"), suppressed, host);
}

static void
on_bad_frame_summary (const char *host, guint suppressed, gpointer user_data)
{
  g_message (_("%u more connections from %s were dropped for malformed frames in the last "
               "minute. Update the software there, or find what else speaks to this port"),
             suppressed, host);
}

static void
relay_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  CanopyTransport *transport = user_data;

  transport->events->incoming (conn, transport->user_data);
}

/* Plugins do not log what an incoming connection did wrong: it is logged
 * here, with a rate limit, for every plugin alike. */
static void
relay_rejected (GSocketAddress *peer_address, const GError *error, gpointer user_data)
{
  CanopyTransport *transport = user_data;
  g_autofree char *host = host_of (peer_address);

  if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_KEY_MISMATCH)
      && canopy_log_limit_allow (transport->key_mismatches, host))
    g_message ("%s", error->message);
  else if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_PROTOCOL)
           && canopy_log_limit_allow (transport->bad_frames, host))
    g_message ("%s", error->message);
  if (transport->events->rejected != NULL)
    transport->events->rejected (peer_address, error, transport->user_data);
}

static void
relay_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
               gpointer user_data)
{
  CanopyTransport *transport = user_data;

  transport->events->message (conn, header, payload, transport->user_data);
}

static void
relay_drained (CanopyTransportConnection *conn, gpointer user_data)
{
  CanopyTransport *transport = user_data;

  transport->events->drained (conn, transport->user_data);
}

static void
relay_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  CanopyTransport *transport = user_data;

  if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_PROTOCOL))
    {
      g_autofree char *host = host_of (canopy_transport_connection_get_peer_address (conn));

      if (canopy_log_limit_allow (transport->bad_frames, host))
        g_message ("%s", error->message);
    }
  transport->events->closed (conn, error, transport->user_data);
}

static const CanopyTransportEvents relay_events = {
  .incoming = relay_incoming,
  .rejected = relay_rejected,
  .message = relay_message,
  .drained = relay_drained,
  .closed = relay_closed,
};

CanopyTransport *
canopy_transport_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                      const CanopyTransportCredentials *creds, GMainContext *context,
                      const CanopyTransportEvents *events, gpointer user_data, GError **error)
{
  const CanopyTransportOps *ops;
  g_autoptr (CanopyTransport) transport = NULL;

  g_return_val_if_fail (plugin != NULL && creds != NULL && events != NULL, NULL);
  g_return_val_if_fail (canopy_plugin_get_descriptor (plugin)->kind == CANOPY_PLUGIN_KIND_TRANSPORT,
                        NULL);

  ops = canopy_plugin_get_ops (plugin);
  if (context == NULL)
    context = g_main_context_get_thread_default ();
  if (context == NULL)
    context = g_main_context_default ();
  transport = g_new0 (CanopyTransport, 1);
  transport->ops = ops;
  transport->name = g_strdup (canopy_plugin_get_name (plugin));
  transport->events = events;
  transport->user_data = user_data;
  transport->key_mismatches = canopy_log_limit_new (REJECT_LOG_WINDOW_S,
                                                    on_key_mismatch_summary, NULL);
  transport->bad_frames = canopy_log_limit_new (REJECT_LOG_WINDOW_S, on_bad_frame_summary,
                                                NULL);
  transport->instance = ops->new (element, creds, context, &relay_events, transport, error);
  if (transport->instance == NULL)
    return NULL;
  return g_steal_pointer (&transport);
}

void
canopy_transport_free (CanopyTransport *transport)
{
  if (transport == NULL)
    return;
  if (transport->instance != NULL)
    transport->ops->free (transport->instance);
  canopy_log_limit_free (transport->key_mismatches);
  canopy_log_limit_free (transport->bad_frames);
  g_free (transport->name);
  g_free (transport);
}

const char *
canopy_transport_get_name (const CanopyTransport *transport)
{
  return transport->name;
}

gboolean
canopy_transport_listen (CanopyTransport *transport, GError **error)
{
  return transport->ops->listen (transport->instance, error);
}

GPtrArray *
canopy_transport_get_listen_addresses (CanopyTransport *transport)
{
  return transport->ops->get_listen_addresses (transport->instance);
}

void
canopy_transport_connect_async (CanopyTransport *transport, const char *host, guint16 port,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
  transport->ops->connect_async (transport->instance, host, port, cancellable, callback, user_data);
}

CanopyTransportConnection *
canopy_transport_connect_finish (CanopyTransport *transport, GAsyncResult *result, GError **error)
{
  return transport->ops->connect_finish (transport->instance, result, error);
}

gboolean
canopy_transport_send (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                       GError **error)
{
  g_return_val_if_fail (conn != NULL && header != NULL, FALSE);
  return conn->ops->send (conn, header, payload, error);
}

void
canopy_transport_close (CanopyTransportConnection *conn)
{
  if (conn != NULL)
    conn->ops->close (conn);
}

gsize
canopy_transport_connection_get_queued_bytes (CanopyTransportConnection *conn)
{
  return conn->ops->get_queued_bytes (conn);
}

const char *
canopy_transport_connection_get_peer_id (CanopyTransportConnection *conn)
{
  return conn->ops->get_peer_id (conn);
}

GSocketAddress *
canopy_transport_connection_get_peer_address (CanopyTransportConnection *conn)
{
  return conn->ops->get_peer_address (conn);
}
