/* The core's side of the transport contract: a loaded transport plugin
 * instance and the wrappers every caller goes through, never the raw table. */
#pragma once

#include <gio/gio.h>
#include <canopy/transport.h>
#include "lib/plugin-loader.h"

G_BEGIN_DECLS

/**
 * CanopyTransport:
 *
 * One running instance of a transport plugin.
 */
typedef struct _CanopyTransport CanopyTransport;

/**
 * canopy_transport_new:
 * @plugin: a loaded plugin of kind %CANOPY_PLUGIN_KIND_TRANSPORT
 * @element: its `<transport>` element (validated by the loader)
 * @creds: local device ID and transport secret (copied by the plugin)
 * @context: (nullable): where events run; %NULL for the thread-default
 * @events: handlers (must outlive the transport)
 * @user_data: for @events
 * @error: the plugin's configuration error
 */
CanopyTransport *canopy_transport_new (const CanopyPlugin *plugin,
                                       const CanopyConfigNode *element,
                                       const CanopyTransportCredentials *creds,
                                       GMainContext *context,
                                       const CanopyTransportEvents *events,
                                       gpointer user_data,
                                       GError **error);

/* Closes every connection silently and frees the instance. */
void canopy_transport_free (CanopyTransport *transport);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyTransport, canopy_transport_free)

/** canopy_transport_get_name: Returns: the plugin's name ("tcp"). */
const char *canopy_transport_get_name (const CanopyTransport *transport);

/* Listens on every configured address. */
gboolean canopy_transport_listen (CanopyTransport *transport, GError **error);

/** canopy_transport_get_listen_addresses: Returns: (transfer container). */
GPtrArray *canopy_transport_get_listen_addresses (CanopyTransport *transport);

/* Connects and authenticates; @callback runs on the transport's context. */
void canopy_transport_connect_async (CanopyTransport *transport,
                                     const char *host,
                                     guint16 port,
                                     GCancellable *cancellable,
                                     GAsyncReadyCallback callback,
                                     gpointer user_data);
/** canopy_transport_connect_finish: Returns: (transfer none). */
CanopyTransportConnection *canopy_transport_connect_finish (CanopyTransport *transport,
                                                            GAsyncResult *result,
                                                            GError **error);

/* Queues a message; see #CanopyTransportOps.send. */
gboolean canopy_transport_send (CanopyTransportConnection *conn,
                                GBytes *header,
                                GBytes *payload,
                                GError **error);

/* Closes @conn at once; no event follows. */
void canopy_transport_close (CanopyTransportConnection *conn);

gsize canopy_transport_connection_get_queued_bytes (CanopyTransportConnection *conn);
const char *canopy_transport_connection_get_peer_id (CanopyTransportConnection *conn);
GSocketAddress *canopy_transport_connection_get_peer_address (CanopyTransportConnection *conn);

G_END_DECLS
