/* The transport contract: how the core moves messages between server and
 * agents through a plugin (TCP+TLS, QUIC), asynchronously on its own loop. */
#pragma once

#include <gio/gio.h>
#include <canopy/config-node.h>

G_BEGIN_DECLS

/**
 * CANOPY_TRANSPORT_ERROR:
 *
 * The error domain of everything a transport reports; codes are
 * #CanopyTransportError.
 */
#define CANOPY_TRANSPORT_ERROR (canopy_transport_error_quark ())
GQuark canopy_transport_error_quark (void);

/**
 * CanopyTransportError:
 * @CANOPY_TRANSPORT_ERROR_KEY_MISMATCH: the peer does not hold the same
 *   shared key; reported on both ends of the failed handshake
 * @CANOPY_TRANSPORT_ERROR_TIMEOUT: connecting or the handshake took longer
 *   than the configured timeout
 * @CANOPY_TRANSPORT_ERROR_CLOSED: the connection is closed (by the peer, or
 *   it vanished); also what send() reports on a closed connection
 * @CANOPY_TRANSPORT_ERROR_PROTOCOL: the peer sent a malformed or oversized
 *   frame; the connection was dropped
 * @CANOPY_TRANSPORT_ERROR_REFUSED: nothing listens at the address, or the
 *   peer refused the connection
 * @CANOPY_TRANSPORT_ERROR_FAILED: any other failure (address in use, no
 *   route, a TLS failure other than the key)
 * @CANOPY_TRANSPORT_ERROR_QUEUE_FULL: send() refused a message because the
 *   connection's send queue is at its high-water mark; wait for the
 *   `drained` event and send again
 * @CANOPY_TRANSPORT_ERROR_TOO_LARGE: send() refused a message whose header
 *   or payload exceeds the configured limits
 */
typedef enum {
  CANOPY_TRANSPORT_ERROR_KEY_MISMATCH,
  CANOPY_TRANSPORT_ERROR_TIMEOUT,
  CANOPY_TRANSPORT_ERROR_CLOSED,
  CANOPY_TRANSPORT_ERROR_PROTOCOL,
  CANOPY_TRANSPORT_ERROR_REFUSED,
  CANOPY_TRANSPORT_ERROR_FAILED,
  CANOPY_TRANSPORT_ERROR_QUEUE_FULL,
  CANOPY_TRANSPORT_ERROR_TOO_LARGE,
} CanopyTransportError;

/**
 * CANOPY_TRANSPORT_MAX_HEADER_SIZE:
 *
 * The largest message header any transport accepts (64 KiB); a plugin may
 * be configured lower, never higher. Headers are small protocol frames;
 * bulk data travels as the payload.
 */
#define CANOPY_TRANSPORT_MAX_HEADER_SIZE 65536

/**
 * CANOPY_TRANSPORT_SECRET_SIZE:
 *
 * Size in bytes of the transport secret in #CanopyTransportCredentials.
 */
#define CANOPY_TRANSPORT_SECRET_SIZE 32

/**
 * CanopyTransportCredentials:
 * @device_id: this end's device ID (or the server ID); a client presents
 *   it in the handshake and the other end learns it from there
 * @secret: the transport secret, derived by the core from the shared key
 *   with HKDF-SHA256 (label "canopy transport psk v1"); the shared key
 *   itself never reaches a plugin
 *
 * What a transport authenticates with. The plugin copies what it needs in
 * its new() operation and must wipe its copy (gnutls_memset() or
 * equivalent) when freed, and never log it.
 */
typedef struct {
  const char *device_id;
  guint8 secret[CANOPY_TRANSPORT_SECRET_SIZE];
} CanopyTransportCredentials;

typedef struct _CanopyTransportOps CanopyTransportOps;

/**
 * CanopyTransportConnection:
 * @ops: the plugin's operations table; the plugin sets it when it creates
 *   the connection, so the core can reach the plugin from a connection alone
 * @owner_data: free for the transport's user (the core) to attach its own
 *   state; the plugin initialises it to %NULL and never touches it again
 *
 * One authenticated connection. Each plugin defines its own connection
 * structure whose first member is this one. The transport owns it: it is
 * valid from the `incoming` event or connect_finish() until the `closed`
 * event handler returns, or until the user calls close() on it.
 */
typedef struct {
  const CanopyTransportOps *ops;
  gpointer owner_data;
} CanopyTransportConnection;

/**
 * CanopyTransportEvents:
 * @incoming: a peer connected to one of our listen addresses and proved it
 *   holds the shared key; @conn's peer ID is the device ID it presented in
 *   the handshake
 * @rejected: (nullable): an incoming connection failed before it was
 *   announced (a wrong key: %CANOPY_TRANSPORT_ERROR_KEY_MISMATCH; a
 *   timeout; a malformed handshake); @peer_address says from where. A
 *   plugin does not log a key mismatch or a malformed frame of an incoming
 *   connection: canopy logs them, with a rate limit.
 * @message: a whole message arrived; @header and @payload are only valid
 *   during the call (take a reference to keep them); @payload is %NULL when
 *   the sender sent none or an empty one. A plugin may deliver the
 *   messages of one connection in another order than they were sent (QUIC
 *   carries each on its own stream, so a small one overtakes a large one);
 *   a protocol that needs an order must not depend on arrival order
 * @drained: @conn's send queue fell to the low-water mark after having
 *   reached the high-water mark (or after a send() failed with
 *   %CANOPY_TRANSPORT_ERROR_QUEUE_FULL); fires once per such episode
 * @closed: @conn ended without the user asking: the peer closed it
 *   (%CANOPY_TRANSPORT_ERROR_CLOSED), vanished, or sent a malformed frame
 *   (%CANOPY_TRANSPORT_ERROR_PROTOCOL). @error is never %NULL. @conn is
 *   freed when the handler returns.
 *
 * What a transport reports, always on the #GMainContext it was created
 * with. Handlers may call send() and close() (even on the connection being
 * reported) but not free() the transport. Every member except @rejected
 * must be set.
 */
typedef struct {
  void (*incoming) (CanopyTransportConnection *conn, gpointer user_data);
  void (*rejected) (GSocketAddress *peer_address, const GError *error, gpointer user_data);
  void (*message) (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                   gpointer user_data);
  void (*drained) (CanopyTransportConnection *conn, gpointer user_data);
  void (*closed) (CanopyTransportConnection *conn, const GError *error, gpointer user_data);
} CanopyTransportEvents;

/**
 * CanopyTransportOps:
 * @new: creates an instance from the plugin's own configuration element
 *   (already validated against its schema), the credentials (copied; the
 *   caller wipes its own), the context every event and callback runs on,
 *   and the events with their @user_data (both must outlive the instance).
 *   Does not listen or connect yet.
 * @listen: starts accepting connections on every configured listen address
 *   (IPv4 and IPv6); fails with %CANOPY_TRANSPORT_ERROR_FAILED naming the
 *   address that cannot be bound. Port 0 picks a free port.
 * @get_listen_addresses: (transfer container) the bound addresses after
 *   listen(), as #GSocketAddress (with the real port when 0 was asked);
 *   the array unrefs its elements
 * @connect_async: connects to @host (a name or an IPv4/IPv6 literal) and
 *   @port, authenticates, then calls @callback on the instance's context;
 *   the configured connect timeout covers connecting and the handshake
 * @connect_finish: (transfer none) the authenticated connection, owned by
 *   the transport like incoming ones; or %NULL with
 *   %CANOPY_TRANSPORT_ERROR_KEY_MISMATCH, _TIMEOUT, _REFUSED or _FAILED
 *   (or %G_IO_ERROR_CANCELLED)
 * @send: queues one message: @header (1 byte to the configured max-header,
 *   at most %CANOPY_TRANSPORT_MAX_HEADER_SIZE) and an optional @payload
 *   (%NULL or empty for none). Both are referenced, never copied, until
 *   written; a payload made by canopy_transport_payload_new_mapped() goes
 *   from the mapping straight to the socket. Fails with _CLOSED on a
 *   closed connection, _TOO_LARGE beyond the limits, or _QUEUE_FULL when
 *   the queued bytes have reached the high-water mark (so the queue never
 *   exceeds the mark by more than one message). Never blocks.
 * @get_queued_bytes: header and payload bytes accepted by send() and not
 *   yet handed to the kernel (or, for QUIC, not yet acknowledged)
 * @get_peer_id: (transfer none) the device ID the peer proved in the
 *   handshake
 * @get_peer_address: (transfer none) the peer's address
 * @close: closes @conn at once, dropping unsent messages; no event fires
 *   for it afterwards and it is freed before close() returns
 * @free: closes every connection (without `closed` events), stops
 *   listening, cancels pending connects (their callbacks see
 *   %G_IO_ERROR_CANCELLED on the next loop turn), wipes the secret
 *
 * The table a transport plugin's descriptor points to. The core calls it
 * only through the wrappers in its transport module. Every member must be
 * set. Everything is non-blocking and runs on the instance's context.
 */
struct _CanopyTransportOps {
  gpointer (*new) (const CanopyConfigNode *element,
                   const CanopyTransportCredentials *creds,
                   GMainContext *context,
                   const CanopyTransportEvents *events,
                   gpointer user_data,
                   GError **error);
  gboolean (*listen) (gpointer instance, GError **error);
  GPtrArray *(*get_listen_addresses) (gpointer instance);
  void (*connect_async) (gpointer instance,
                         const char *host,
                         guint16 port,
                         GCancellable *cancellable,
                         GAsyncReadyCallback callback,
                         gpointer user_data);
  CanopyTransportConnection *(*connect_finish) (gpointer instance,
                                                GAsyncResult *result,
                                                GError **error);
  gboolean (*send) (CanopyTransportConnection *conn,
                    GBytes *header,
                    GBytes *payload,
                    GError **error);
  gsize (*get_queued_bytes) (CanopyTransportConnection *conn);
  const char *(*get_peer_id) (CanopyTransportConnection *conn);
  GSocketAddress *(*get_peer_address) (CanopyTransportConnection *conn);
  void (*close) (CanopyTransportConnection *conn);
  void (*free) (gpointer instance);
};

/**
 * canopy_transport_payload_new_mapped:
 * @file: a mapped file (referenced for as long as the payload lives)
 * @offset: where the slice starts
 * @length: how many bytes it has
 * @error: %CANOPY_TRANSPORT_ERROR_FAILED when the slice lies outside @file
 *
 * A payload that is a slice of @file without copying it: the returned
 * #GBytes points into the mapping and keeps @file alive.
 *
 * Returns: (transfer full): the payload, or %NULL.
 */
GBytes *canopy_transport_payload_new_mapped (GMappedFile *file,
                                             gsize offset,
                                             gsize length,
                                             GError **error);

G_END_DECLS
