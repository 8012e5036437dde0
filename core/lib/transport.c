/* Wrappers around a transport plugin's operations table (the SDK side of
 * transports is core/sdk/transport.c). */
#include "build-config.h"

#include "lib/transport.h"
#include "lib/i18n.h"

struct _CanopyTransport {
  const CanopyTransportOps *ops;
  gpointer instance;
  char *name;
};

CanopyTransport *
canopy_transport_new (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                      const CanopyTransportCredentials *creds, GMainContext *context,
                      const CanopyTransportEvents *events, gpointer user_data, GError **error)
{
  const CanopyTransportOps *ops;
  CanopyTransport *transport;
  gpointer instance;

  g_return_val_if_fail (plugin != NULL && creds != NULL && events != NULL, NULL);
  g_return_val_if_fail (canopy_plugin_get_descriptor (plugin)->kind == CANOPY_PLUGIN_KIND_TRANSPORT,
                        NULL);

  ops = canopy_plugin_get_ops (plugin);
  if (context == NULL)
    context = g_main_context_get_thread_default ();
  if (context == NULL)
    context = g_main_context_default ();
  instance = ops->new (element, creds, context, events, user_data, error);
  if (instance == NULL)
    return NULL;

  transport = g_new0 (CanopyTransport, 1);
  transport->ops = ops;
  transport->instance = instance;
  transport->name = g_strdup (canopy_plugin_get_name (plugin));
  return transport;
}

void
canopy_transport_free (CanopyTransport *transport)
{
  if (transport == NULL)
    return;
  transport->ops->free (transport->instance);
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
