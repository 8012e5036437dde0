/* The QUIC plugin's own types and the functions its files share: the plugin
 * glue, connections, the ngtcp2 callbacks, the writer and UDP I/O. */
#pragma once

#include <sys/socket.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "plugins/transport-common/transport-common.h"
#include "plugins/transport-quic/quic-transport.h"

G_BEGIN_DECLS

/* Each message travels on a stream of its own: the shared frame header
 * (transport-common.h, as over TCP), the header, the payload, then the
 * stream's FIN. The server's first stream carries a HELLO frame with its
 * device ID. The streams are bidirectional and the receiver answers each
 * with an empty FIN: ngtcp2 0.12 never retires a peer's unidirectional
 * stream (so never frees it nor grants a new one), while a bidirectional
 * stream closed both ways is retired on both ends.
 *
 * Streams are opened and filled in the order messages were sent, and a
 * later message moves ahead only while an earlier one waits for flow
 * control; each is delivered as soon as it is whole. So a small message
 * is not held up behind a large one, and may therefore arrive before a
 * large message sent ahead of it (TCP would keep the order). */

/* Application error codes in CONNECTION_CLOSE. */
#define QUIC_APP_CLOSED 0
#define QUIC_APP_PROTOCOL 1

/* Every connection ID this transport issues has this length, so a short
 * header packet's destination ID can be found without state. */
#define QUIC_CID_LEN 18

#define QUIC_DEFAULT_UDP_PAYLOAD 1452
#define QUIC_DEFAULT_SOCKET_BUFFER (4u * 1024 * 1024)
#define QUIC_DEFAULT_STREAMS 16

/* Flow control windows start here and ngtcp2 widens them up to the
 * maxima as the measured bandwidth-delay product calls for. Received data
 * is consumed at once (copied into the message being assembled), so the
 * windows bound what is in flight, not what is buffered. */
#define QUIC_STREAM_WINDOW (1u * 1024 * 1024)
#define QUIC_STREAM_WINDOW_MAX (16u * 1024 * 1024)
#define QUIC_CONN_WINDOW (4u * 1024 * 1024)
#define QUIC_CONN_WINDOW_MAX (64u * 1024 * 1024)

/* Datagrams per GSO send (the kernel's limit is 64) and per wake-up of a
 * socket: bounded so one busy peer cannot starve the others. */
#define QUIC_GSO_MAX_SEGMENTS 64
#define QUIC_GSO_MAX_BYTES 65000
#define QUIC_READ_BATCH 256
#define QUIC_WRITE_BATCHES 8
#define QUIC_RX_BUFFER_SIZE 65536
#define QUIC_ACK_THRESHOLD 8

typedef struct _QuicTransport QuicTransport;
typedef struct _QuicConnection QuicConnection;

/* A UDP socket: a listener serves every connection that reached one
 * listen address; a client socket (connected) serves its one connection. */
typedef struct {
  QuicTransport *transport;
  GSocket *socket;
  int fd;
  QuicConnection *conn; /* client socket: its connection (not a reference) */
  ngtcp2_sockaddr_union local;
  ngtcp2_socklen local_len;
  gboolean pktinfo; /* bound to "::" or "0.0.0.0": learns and sets each datagram's local address */
  GQueue blocked; /* connections whose datagrams wait for room (references) */
  GIOCondition watching;
} QuicSocket;

typedef struct {
  int64_t stream_id; /* the key of the in-flight table */
  CanopyTransportOutFrame frame;
  gsize written; /* handed to ngtcp2 */
  gsize unacked; /* counted in the connection's queued bytes */
  gboolean has_stream;
  gboolean blocked; /* flow control held it in this write round */
} QuicOutMessage;

typedef struct {
  int64_t stream_id; /* the key of the incoming table */
  CanopyTransportInFrame in;
} QuicInMessage;

typedef struct {
  GBytes *header;
  GBytes *payload;
} QuicDelivery;

struct _QuicConnection {
  CanopyTransportCommonConn base;
  QuicTransport *transport; /* base.transport, as the QUIC transport it is */
  ngtcp2_crypto_conn_ref conn_ref; /* what the GnuTLS session points to */
  QuicSocket *socket;
  gboolean owns_socket;
  ngtcp2_conn *quic;
  gnutls_session_t session;
  ngtcp2_sockaddr_union remote;
  ngtcp2_socklen remote_len;
  ngtcp2_sockaddr_union local; /* the address the peer reaches us at */
  ngtcp2_socklen local_len;
  ngtcp2_sockaddr_union peer_native; /* what peer_address says */
  ngtcp2_socklen peer_native_len;

  gint64 deadline; /* monotonic µs by which the handshake must be done; 0: none */
  gint64 wake;     /* when the transport's timer next visits; G_MAXINT64: never */
  GSequenceIter *timer_iter;
  gboolean kicked; /* something to send: write on the next loop turn */
  GPtrArray *cids; /* server: the connection IDs routed here (ngtcp2_cid) */

  GQueue out;          /* QuicOutMessage not yet fully written, in order */
  GHashTable *flying;  /* stream ID -> QuicOutMessage written, not yet acknowledged */
  gsize queued;
  GHashTable *in;      /* stream ID -> QuicInMessage */
  GQueue deliveries;   /* QuicDelivery complete, not yet reported */
  GArray *finished;    /* int64 IDs of incoming streams read to their end, to answer with a FIN */
  char *hello_id;      /* client: the server's device ID, once received */

  /* What ngtcp2 callbacks found, acted on once ngtcp2 has returned. */
  gboolean handshake_done;
  GError *pending_error;

  guint8 *unsent; /* datagrams the kernel had no room for */
  gsize unsent_len;
  gsize unsent_segment;
};

struct _QuicTransport {
  CanopyTransportCommon base;
  guint idle_timeout_s;
  guint max_streams;
  gsize udp_payload;
  gsize socket_buffer;
  gboolean gso;

  GHashTable *cids;         /* ngtcp2_cid -> QuicConnection (server side) */
  GPtrArray *dirty;         /* connections to process after a batch of datagrams */
  GSequence *timers;        /* QuicConnection by wake time */
  int timer_fd;             /* fires at the first wake time */
  gint64 timer_armed;       /* what it is set to; G_MAXINT64: disarmed */
  guint8 *rx_buffer;
  guint8 *tx_buffer;
  gsize tx_buffer_size;
};

static inline ngtcp2_tstamp
quic_now (void)
{
  return (ngtcp2_tstamp) g_get_monotonic_time () * NGTCP2_MICROSECONDS;
}

/* quic-transport.c: the plugin glue */
QuicConnection *quic_conn_accept (QuicSocket *socket, const ngtcp2_pkt_hd *hd,
                                  const struct sockaddr *from, socklen_t from_len,
                                  const ngtcp2_sockaddr_union *local, ngtcp2_socklen local_len);

/* quic-connection.c: connections' life, failures and timers */
QuicConnection *quic_conn_new (QuicTransport *transport, QuicSocket *socket, gboolean is_client);
void quic_conn_finalize (CanopyTransportCommonConn *base);
void quic_out_message_free (gpointer data);
void quic_conn_destroy (QuicConnection *conn, const ngtcp2_connection_close_error *ccerr);
void quic_conn_destroy_with (CanopyTransportCommonConn *conn, gconstpointer farewell);
void quic_conn_close (CanopyTransportCommonConn *conn);
void quic_conn_fail_full (QuicConnection *conn, GError *error,
                          const ngtcp2_connection_close_error *ccerr);
void quic_conn_fail (QuicConnection *conn, GError *error);
void quic_conn_fail_any (CanopyTransportCommonConn *conn, GError *error);
void quic_conn_fail_liberr (QuicConnection *conn, int rv);
void quic_conn_set_remote (QuicConnection *conn, const struct sockaddr *address, socklen_t len);
void quic_conn_get_path (QuicConnection *conn, ngtcp2_path *path);
void quic_conn_set_wake (QuicConnection *conn, gint64 wake);
void quic_conn_kick (QuicConnection *conn);
gboolean quic_timer_on_ready (int fd, GIOCondition condition, gpointer user_data);
void quic_conn_process (QuicConnection *conn);
gsize quic_conn_get_queued (CanopyTransportCommonConn *conn);

/* quic-callbacks.c: what ngtcp2 calls */
extern const ngtcp2_callbacks quic_client_callbacks;
extern const ngtcp2_callbacks quic_server_callbacks;
ngtcp2_conn *quic_get_conn (ngtcp2_crypto_conn_ref *ref);
guint quic_cid_hash (gconstpointer key);
gboolean quic_cid_equal (gconstpointer a, gconstpointer b);
void quic_conn_add_cid (QuicConnection *conn, const ngtcp2_cid *cid);

/* quic-writer.c: messages into streams, packets into datagrams */
void quic_conn_queue_frame (CanopyTransportCommonConn *base, guint8 kind, const void *header,
                            gsize header_len, GBytes *payload);
gboolean quic_conn_write (QuicConnection *conn);

/* quic-udp.c: datagrams in and out, with GSO and GRO */
gboolean quic_conn_send_datagrams (QuicConnection *conn, const guint8 *data, gsize len,
                                   gsize segment);
gboolean quic_conn_flush_unsent (QuicConnection *conn);
void quic_conn_wait_writable (QuicConnection *conn);
QuicSocket *quic_socket_new (QuicTransport *transport, GInetAddress *inet, GError **error);
gboolean quic_socket_watch (QuicSocket *socket, GError **error);
void quic_socket_learn_local (QuicSocket *socket);
void quic_socket_free (QuicSocket *socket);

G_END_DECLS
