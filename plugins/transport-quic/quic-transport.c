/* QUIC transport: ngtcp2 over UDP sockets watched through one epoll set,
 * TLS 1.3 with an external PSK per client identity, one stream per message. */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <glib/gi18n-lib.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "plugins/transport-quic/quic-transport.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* Authentication: TLS 1.3 with an external PSK, as the TCP transport does.
 * GnuTLS runs the same PSK handshake whether its records travel over TCP
 * or, through ngtcp2_crypto_gnutls, in QUIC CRYPTO frames, so no
 * certificate or separate proof is needed: the client's binder proves it
 * holds the key for the identity it presents (its device ID), the
 * server's Finished proves the server derived the same key. The PSK for
 * identity I is HKDF(transport secret, this label, I). The label differs
 * from TCP's so the two transports never share a key. */
#define QUIC_PSK_LABEL "canopy quic psk v1"
#define QUIC_ALPN "canopy/1"

/* TLS 1.3 only (QUIC requires it, without the middlebox compatibility
 * mode); ECDHE with the PSK for forward secrecy. */
#define QUIC_PRIORITY                                                          \
  "NONE:%DISABLE_TLS13_COMPAT_MODE:+VERS-TLS1.3:+AES-128-GCM:+AES-256-GCM:"   \
  "+CHACHA20-POLY1305:+AEAD:+ECDHE-PSK:+PSK:+GROUP-X25519:+GROUP-SECP256R1:"  \
  "+SIGN-ALL:+COMP-NULL"

/* Each message travels on a stream of its own: a frame header (magic
 * "CNPY", version, kind, two reserved zero bytes, header length u32,
 * payload length u64, big-endian, as over TCP), the header, the payload,
 * then the stream's FIN. The server's first stream carries a HELLO frame
 * with its device ID. The streams are bidirectional and the receiver
 * answers each with an empty FIN: ngtcp2 0.12 never retires a peer's
 * unidirectional stream (so never frees it nor grants a new one), while
 * a bidirectional stream closed both ways is retired on both ends.
 *
 * Streams are opened and filled in the order messages were sent, and a
 * later message moves ahead only while an earlier one waits for flow
 * control; each is delivered as soon as it is whole. So a small message
 * is not held up behind a large one, and may therefore arrive before a
 * large message sent ahead of it (TCP would keep the order). */
#define QUIC_FRAME_MAGIC 0x434e5059u
#define QUIC_FRAME_VERSION 1
#define QUIC_FRAME_SIZE 20
#define QUIC_FRAME_MESSAGE 0
#define QUIC_FRAME_HELLO 1

/* Application error codes in CONNECTION_CLOSE. */
#define QUIC_APP_CLOSED 0
#define QUIC_APP_PROTOCOL 1

/* Every connection ID this transport issues has this length, so a short
 * header packet's destination ID can be found without state. */
#define QUIC_CID_LEN 18
#define QUIC_MAX_ID_LENGTH 255

#define QUIC_DEFAULT_PORT 7443
#define QUIC_DEFAULT_MAX_PAYLOAD (64u * 1024 * 1024)
#define QUIC_DEFAULT_QUEUE_HIGH (8u * 1024 * 1024)
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

typedef enum {
  QUIC_CONN_HANDSHAKE, /* QUIC + TLS handshake */
  QUIC_CONN_HELLO,     /* client: waiting for the server's device ID */
  QUIC_CONN_OPEN,
  QUIC_CONN_DEAD,
} QuicConnState;

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
  int64_t stream_id; /* first: the key of the in-flight table */
  guint8 *prefix;    /* frame header + message header (small, copied) */
  gsize prefix_len;
  GBytes *payload; /* never copied: often a slice of a mapped file */
  const guint8 *payload_data;
  gsize total;   /* prefix + payload */
  gsize written; /* handed to ngtcp2 */
  gsize unacked; /* counted in the connection's queued bytes */
  gboolean has_stream;
  gboolean blocked; /* flow control held it in this write round */
} QuicOutMessage;

typedef struct {
  int64_t stream_id; /* first: the key of the incoming table */
  guint8 frame[QUIC_FRAME_SIZE];
  gsize frame_got;
  guint8 kind;
  guint8 *header;
  gsize header_len;
  gsize header_got;
  guint8 *payload;
  gsize payload_len;
  gsize payload_got;
} QuicInMessage;

typedef struct {
  GBytes *header;
  GBytes *payload;
} QuicDelivery;

struct _QuicConnection {
  CanopyTransportConnection parent;
  ngtcp2_crypto_conn_ref conn_ref; /* what the GnuTLS session points to */
  gint ref_count;
  QuicTransport *transport;
  QuicSocket *socket;
  gboolean owns_socket;
  ngtcp2_conn *quic;
  gnutls_session_t session;
  gboolean is_client;
  QuicConnState state;
  char *peer_id;
  GSocketAddress *peer_address;
  ngtcp2_sockaddr_union remote;
  ngtcp2_socklen remote_len;
  ngtcp2_sockaddr_union local; /* the address the peer reaches us at */
  ngtcp2_socklen local_len;
  ngtcp2_sockaddr_union peer_native; /* what peer_address says */
  ngtcp2_socklen peer_native_len;

  GTask *connect_task;
  GCancellable *cancellable;
  gulong cancel_id;
  gint64 deadline; /* monotonic µs by which the handshake must be done; 0: none */
  gint64 wake;     /* when the transport's timer next visits; G_MAXINT64: never */
  GSequenceIter *timer_iter;
  gboolean kicked; /* something to send: write on the next loop turn */
  GPtrArray *cids; /* server: the connection IDs routed here (ngtcp2_cid) */

  GQueue out;          /* QuicOutMessage not yet fully written, in order */
  GHashTable *flying;  /* stream ID -> QuicOutMessage written, not yet acknowledged */
  gsize queued;
  gboolean want_drained;
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
  GMainContext *context;
  const CanopyTransportEvents *events;
  gpointer user_data;
  char *device_id;
  guint8 secret[CANOPY_TRANSPORT_SECRET_SIZE];
  const CanopyConfigNode *element;

  guint connect_timeout_ms;
  guint idle_timeout_s;
  gsize max_header;
  gsize max_payload;
  gsize queue_high;
  gsize queue_low;
  guint max_streams;
  gsize udp_payload;
  gsize socket_buffer;
  gboolean gso;

  CanopyWatchSet *watches;
  GPtrArray *listeners;     /* QuicSocket */
  GHashTable *connections;  /* QuicConnection -> itself (holds a reference) */
  GHashTable *cids;         /* ngtcp2_cid -> QuicConnection (server side) */
  GPtrArray *resolving;     /* QuicResolve, owned by their resolver callback */
  GPtrArray *dirty;         /* connections to process after a batch of datagrams */
  GSequence *timers;        /* QuicConnection by wake time */
  int timer_fd;             /* fires at the first wake time */
  gint64 timer_armed;       /* what it is set to; G_MAXINT64: disarmed */
  gnutls_priority_t priority;
  gnutls_psk_server_credentials_t server_creds;
  gnutls_psk_client_credentials_t client_creds;
  guint8 *rx_buffer;
  guint8 *tx_buffer;
  gsize tx_buffer_size;
};

static void quic_conn_process (QuicConnection *conn);
static void quic_conn_set_wake (QuicConnection *conn, gint64 wake);
static void quic_socket_free (QuicSocket *socket);
static void quic_socket_update_watch (QuicSocket *socket);

static ngtcp2_tstamp
quic_now (void)
{
  return (ngtcp2_tstamp) g_get_monotonic_time () * NGTCP2_MICROSECONDS;
}

static gboolean
quic_id_is_valid (const guint8 *id, gsize len)
{
  if (len == 0 || len > QUIC_MAX_ID_LENGTH)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (id[i] <= ' ' || id[i] >= 0x7f)
      return FALSE;
  return TRUE;
}

/* --- connections: lifetime ------------------------------------------------ */

static QuicConnection *
quic_conn_ref (QuicConnection *conn)
{
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

static void
quic_out_message_free (gpointer data)
{
  QuicOutMessage *msg = data;
  g_free (msg->prefix);
  g_clear_pointer (&msg->payload, g_bytes_unref);
  g_free (msg);
}

static void
quic_in_message_free (gpointer data)
{
  QuicInMessage *msg = data;
  g_free (msg->header);
  g_free (msg->payload);
  g_free (msg);
}

static void
quic_delivery_free (gpointer data)
{
  QuicDelivery *delivery = data;
  g_bytes_unref (delivery->header);
  g_clear_pointer (&delivery->payload, g_bytes_unref);
  g_free (delivery);
}

static void
quic_conn_unref (gpointer data)
{
  QuicConnection *conn = data;
  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  g_queue_clear_full (&conn->out, quic_out_message_free);
  g_queue_clear_full (&conn->deliveries, quic_delivery_free);
  g_clear_pointer (&conn->flying, g_hash_table_unref);
  g_clear_pointer (&conn->in, g_hash_table_unref);
  g_clear_pointer (&conn->finished, g_array_unref);
  if (conn->quic != NULL)
    ngtcp2_conn_del (conn->quic);
  if (conn->session != NULL)
    gnutls_deinit (conn->session);
  if (conn->owns_socket)
    quic_socket_free (conn->socket);
  g_clear_pointer (&conn->cids, g_ptr_array_unref);
  g_clear_object (&conn->peer_address);
  g_clear_object (&conn->connect_task);
  g_clear_object (&conn->cancellable);
  g_clear_error (&conn->pending_error);
  g_free (conn->peer_id);
  g_free (conn->hello_id);
  g_free (conn->unsent);
  g_free (conn);
}

static char *
quic_conn_describe (QuicConnection *conn)
{
  if (conn->peer_id != NULL)
    return g_strdup (conn->peer_id);
  if (conn->peer_address != NULL)
    return g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (conn->peer_address));
  return g_strdup ("?");
}

/* One sendmsg(): a datagram, or with @segment not 0 a GSO batch the
 * kernel cuts into datagrams of that size. Returns: 0 or an errno. */
static int
quic_conn_sendmsg (QuicConnection *conn, const guint8 *data, gsize len, gsize segment)
{
  struct iovec iov = { (void *) data, len };
  union {
    char buf[CMSG_SPACE (sizeof (guint16)) + CMSG_SPACE (sizeof (struct in6_pktinfo))];
    struct cmsghdr align;
  } control;
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;

  memset (&control, 0, sizeof control);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cmsg = CMSG_FIRSTHDR (&msg);
  if (!conn->is_client)
    {
      msg.msg_name = &conn->remote;
      msg.msg_namelen = conn->remote_len;
    }
  if (segment != 0)
    {
      guint16 size = (guint16) segment;
      cmsg->cmsg_level = SOL_UDP;
      cmsg->cmsg_type = UDP_SEGMENT;
      cmsg->cmsg_len = CMSG_LEN (sizeof size);
      memcpy (CMSG_DATA (cmsg), &size, sizeof size);
      cmsg = CMSG_NXTHDR (&msg, cmsg);
    }
  /* From the address the peer wrote to, which a wildcard socket would
   * otherwise leave to the routing table. */
  if (conn->socket->pktinfo && conn->local.sa.sa_family == AF_INET6)
    {
      struct in6_pktinfo info = { .ipi6_addr = conn->local.in6.sin6_addr };
      cmsg->cmsg_level = IPPROTO_IPV6;
      cmsg->cmsg_type = IPV6_PKTINFO;
      cmsg->cmsg_len = CMSG_LEN (sizeof info);
      memcpy (CMSG_DATA (cmsg), &info, sizeof info);
      cmsg = CMSG_NXTHDR (&msg, cmsg);
    }
  else if (conn->socket->pktinfo && conn->local.sa.sa_family == AF_INET)
    {
      struct in_pktinfo info = { .ipi_spec_dst = conn->local.in.sin_addr };
      cmsg->cmsg_level = IPPROTO_IP;
      cmsg->cmsg_type = IP_PKTINFO;
      cmsg->cmsg_len = CMSG_LEN (sizeof info);
      memcpy (CMSG_DATA (cmsg), &info, sizeof info);
      cmsg = CMSG_NXTHDR (&msg, cmsg);
    }
  msg.msg_controllen = cmsg != NULL ? (size_t) ((char *) cmsg - control.buf) : sizeof control.buf;
  if (msg.msg_controllen == 0)
    msg.msg_control = NULL;
  while (sendmsg (conn->socket->fd, &msg, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      return errno;
  return 0;
}

/* Hands datagrams (all @segment bytes long but the last) to the kernel,
 * in one GSO call where it can. Returns: FALSE when the socket has no
 * room; what did not go waits in @conn->unsent. Other errors are losses
 * QUIC recovers from, except a refusal, which ends a handshake. */
static gboolean
quic_conn_send_datagrams (QuicConnection *conn, const guint8 *data, gsize len, gsize segment)
{
  QuicTransport *transport = conn->transport;
  gsize off = 0;

  while (off < len)
    {
      gboolean batch = transport->gso && len - off > segment;
      gsize chunk = batch ? len - off : MIN (segment, len - off);
      int err = quic_conn_sendmsg (conn, data + off, chunk, batch ? segment : 0);

      if (err == EAGAIN || err == EWOULDBLOCK)
        {
          guint8 *rest = g_memdup2 (data + off, len - off);
          g_free (conn->unsent);
          conn->unsent = rest;
          conn->unsent_len = len - off;
          conn->unsent_segment = segment;
          return FALSE;
        }
      if (batch && (err == EIO || err == EINVAL))
        {
          /* The kernel or the device cannot segment: stop asking. */
          g_debug ("UDP segmentation offload unavailable (%s); sending datagrams one by one",
                   g_strerror (err));
          transport->gso = FALSE;
          continue;
        }
      if (err == ECONNREFUSED && conn->state == QUIC_CONN_HANDSHAKE && conn->pending_error == NULL)
        {
          g_autofree char *peer = quic_conn_describe (conn);
          conn->pending_error = g_error_new (CANOPY_TRANSPORT_ERROR,
                                             CANOPY_TRANSPORT_ERROR_REFUSED,
                                             _("Nothing accepts connections at “%s”; check the "
                                               "address and that the peer is running."), peer);
        }
      off += chunk;
    }
  return TRUE;
}

/* Sends a CONNECTION_CLOSE once, best effort: if it is lost the peer
 * notices by its idle timeout. */
static void
quic_conn_send_close (QuicConnection *conn, const ngtcp2_connection_close_error *ccerr)
{
  QuicTransport *transport = conn->transport;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_ssize n;

  if (conn->quic == NULL || ngtcp2_conn_is_in_closing_period (conn->quic)
      || ngtcp2_conn_is_in_draining_period (conn->quic))
    return;
  ngtcp2_path_storage_zero (&ps);
  n = ngtcp2_conn_write_connection_close (conn->quic, &ps.path, &pi, transport->tx_buffer,
                                          transport->udp_payload, ccerr, quic_now ());
  if (n > 0)
    {
      quic_conn_send_datagrams (conn, transport->tx_buffer, (gsize) n, (gsize) n);
      g_clear_pointer (&conn->unsent, g_free);
    }
}

/* Stops all I/O on @conn and drops the transport's reference; events
 * stop. @ccerr, when not %NULL, is sent to the peer first. */
static void
quic_conn_destroy (QuicConnection *conn, const ngtcp2_connection_close_error *ccerr)
{
  QuicTransport *transport = conn->transport;

  if (conn->state == QUIC_CONN_DEAD)
    return;
  if (ccerr != NULL)
    quic_conn_send_close (conn, ccerr);
  conn->state = QUIC_CONN_DEAD;
  quic_conn_set_wake (conn, G_MAXINT64);
  if (conn->cancel_id != 0)
    g_cancellable_disconnect (conn->cancellable, conn->cancel_id);
  conn->cancel_id = 0;
  for (guint i = 0; conn->cids != NULL && i < conn->cids->len; i++)
    if (g_hash_table_lookup (transport->cids, conn->cids->pdata[i]) == conn)
      g_hash_table_remove (transport->cids, conn->cids->pdata[i]);
  if (g_queue_remove (&conn->socket->blocked, conn))
    quic_conn_unref (conn);
  /* A client's socket is closed with the connection's last reference, as
   * its watch callback may be running now. */
  if (conn->owns_socket && conn->socket->watching != 0)
    {
      canopy_watch_set_remove (transport->watches, conn->socket->fd);
      conn->socket->watching = 0;
    }
  g_hash_table_remove (transport->connections, conn);
}

static void
quic_conn_close_with_app_code (QuicConnection *conn, guint64 code)
{
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_application_error (&ccerr, code, NULL, 0);
  quic_conn_destroy (conn, &ccerr);
}

/* Reports @error for @conn the way its state calls for (closed event,
 * connect failure or rejected event), then destroys it, sending @ccerr.
 * Takes @error. */
static void
quic_conn_fail_full (QuicConnection *conn, GError *error,
                     const ngtcp2_connection_close_error *ccerr)
{
  QuicTransport *transport = conn->transport;
  QuicConnState state = conn->state;
  GTask *task;

  if (state == QUIC_CONN_DEAD)
    {
      g_error_free (error);
      return;
    }
  quic_conn_ref (conn);
  task = g_steal_pointer (&conn->connect_task);
  quic_conn_destroy (conn, ccerr);
  if (state == QUIC_CONN_OPEN)
    transport->events->closed (&conn->parent, error, transport->user_data);
  else if (task != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
    }
  else if (transport->events->rejected != NULL)
    transport->events->rejected (conn->peer_address, error, transport->user_data);
  if (error != NULL)
    g_error_free (error);
  quic_conn_unref (conn);
}

/* Fails @conn and tells the peer it was closed without naming a reason. */
static void
quic_conn_fail (QuicConnection *conn, GError *error)
{
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_application_error (&ccerr, QUIC_APP_CLOSED, NULL, 0);
  quic_conn_fail_full (conn, error, &ccerr);
}

static GError *
quic_conn_protocol_error (QuicConnection *conn, const char *what)
{
  g_autofree char *peer = quic_conn_describe (conn);
  GError *error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_PROTOCOL,
                               _("Peer “%s” sent a malformed frame (%s); the connection "
                                 "was dropped."), peer, what);
  /* Logged by the transport's user, with a rate limit (canopy_transport_new). */
  return error;
}

static void
quic_conn_fail_protocol (QuicConnection *conn, GError *error)
{
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_application_error (&ccerr, QUIC_APP_PROTOCOL, NULL, 0);
  quic_conn_fail_full (conn, error, &ccerr);
}

/* A TLS alert that, between two canopy ends, means the keys differ: the
 * server cannot verify the client's PSK binder (GnuTLS sends a
 * decrypt_error or illegal_parameter alert), or a Finished does not
 * verify. */
static gboolean
quic_alert_is_key_mismatch (guint8 alert)
{
  return alert == GNUTLS_A_DECRYPT_ERROR || alert == GNUTLS_A_ILLEGAL_PARAMETER
         || alert == GNUTLS_A_HANDSHAKE_FAILURE || alert == GNUTLS_A_BAD_RECORD_MAC
         || alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY || alert == GNUTLS_A_INSUFFICIENT_SECURITY;
}

static GError *
quic_conn_key_mismatch_error (QuicConnection *conn)
{
  g_autofree char *peer = quic_conn_describe (conn);
  GError *error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_KEY_MISMATCH,
                               _("Key mismatch with “%s”: the peer does not hold the same shared "
                                 "key. Check that both ends were given the current shared key."),
                               peer);
  /* Said plainly in the log of both ends, as admins look there first;
   * an incoming one is logged by canopy_transport_new's relay, with a
   * rate limit, as anyone can cause it at will. */
  if (conn->is_client)
    g_message ("%s", error->message);
  return error;
}

/* The TLS stack failed locally: tell the peer with the alert GnuTLS chose. */
static void
quic_conn_fail_crypto (QuicConnection *conn)
{
  guint8 alert = ngtcp2_conn_get_tls_alert (conn->quic);
  ngtcp2_connection_close_error ccerr;
  g_autofree char *peer = quic_conn_describe (conn);
  GError *error;

  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_transport_error_tls_alert (&ccerr, alert, NULL, 0);
  if (quic_alert_is_key_mismatch (alert))
    error = quic_conn_key_mismatch_error (conn);
  else
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                         _("The TLS handshake with “%s” failed: %s."), peer,
                         gnutls_alert_get_name ((gnutls_alert_description_t) alert));
  quic_conn_fail_full (conn, error, &ccerr);
}

/* The peer closed the connection (or refused the handshake): say why. */
static void
quic_conn_fail_draining (QuicConnection *conn)
{
  ngtcp2_connection_close_error ccerr;
  g_autofree char *peer = quic_conn_describe (conn);
  GError *error;

  ngtcp2_conn_get_connection_close_error (conn->quic, &ccerr);
  if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT
      && ccerr.error_code >= NGTCP2_CRYPTO_ERROR && ccerr.error_code <= NGTCP2_CRYPTO_ERROR + 0xff
      && conn->state != QUIC_CONN_OPEN)
    {
      guint8 alert = (guint8) (ccerr.error_code - NGTCP2_CRYPTO_ERROR);
      if (quic_alert_is_key_mismatch (alert))
        error = quic_conn_key_mismatch_error (conn);
      else
        error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                             _("The peer “%s” refused the TLS handshake: %s."), peer,
                             gnutls_alert_get_name ((gnutls_alert_description_t) alert));
    }
  else if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION
           && ccerr.error_code == QUIC_APP_PROTOCOL)
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                         _("The peer “%s” closed the connection: it refused a message of ours "
                           "as malformed or over its limits."), peer);
  else if (g_hash_table_size (conn->in) > 0)
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                         _("The connection to “%s” ended in the middle of a message (%s)."),
                         peer, _("the peer closed it"));
  else
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                         _("The connection to “%s” was closed (%s)."), peer,
                         _("the peer closed it"));
  quic_conn_fail_full (conn, error, NULL);
}

/* An ngtcp2 call failed with @rv: report it as what it means. */
static void
quic_conn_fail_liberr (QuicConnection *conn, int rv)
{
  g_autofree char *peer = quic_conn_describe (conn);
  ngtcp2_connection_close_error ccerr;

  if (conn->pending_error != NULL)
    {
      /* One of our callbacks refused what the peer sent. */
      GError *error = g_steal_pointer (&conn->pending_error);
      if (g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_PROTOCOL))
        quic_conn_fail_protocol (conn, error);
      else
        quic_conn_fail (conn, error);
      return;
    }
  switch (rv)
    {
    case NGTCP2_ERR_DRAINING:
      quic_conn_fail_draining (conn);
      return;
    case NGTCP2_ERR_CRYPTO:
      quic_conn_fail_crypto (conn);
      return;
    case NGTCP2_ERR_IDLE_CLOSE:
      quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR,
                                              CANOPY_TRANSPORT_ERROR_CLOSED,
                                              _("The connection to “%s” was closed (%s)."), peer,
                                              _("nothing was heard from the peer for longer "
                                                "than the idle timeout")), NULL);
      return;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
      quic_conn_fail (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_TIMEOUT,
                                         _("Connecting to “%s” took longer than %u ms; check "
                                           "that the peer is running and reachable."), peer,
                                         conn->transport->connect_timeout_ms));
      return;
    default:
      break;
    }
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_transport_error_liberr (&ccerr, rv, NULL, 0);
  if (conn->state == QUIC_CONN_OPEN)
    quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                                            _("The connection to “%s” was closed (%s)."), peer,
                                            ngtcp2_strerror (rv)), &ccerr);
  else
    quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                                            _("The QUIC handshake with “%s” failed: %s."), peer,
                                            ngtcp2_strerror (rv)), &ccerr);
}

/* --- timers ----------------------------------------------------------------- */

/* One timer for the whole transport: connections wait in a sequence
 * ordered by when they next need attention (ngtcp2's expiry, the connect
 * deadline, or at once when there is something to send), so tens of
 * thousands of connections cost one timer, not one each. The timer is a
 * timerfd in the transport's epoll set rather than a GSource: the main
 * loop sleeps in whole milliseconds, and QUIC's pacing waits tens of
 * microseconds between bursts on a fast link. */
static gint
quic_timer_compare (gconstpointer a, gconstpointer b, gpointer user_data)
{
  const QuicConnection *x = a, *y = b;
  (void) user_data;
  if (x->wake != y->wake)
    return x->wake < y->wake ? -1 : 1;
  return x < y ? -1 : x > y;
}

static void
quic_timer_update (QuicTransport *transport)
{
  GSequenceIter *first = g_sequence_get_begin_iter (transport->timers);
  gint64 wake = g_sequence_iter_is_end (first) ? G_MAXINT64
                                              : ((QuicConnection *) g_sequence_get (first))->wake;
  struct itimerspec spec = { { 0, 0 }, { 0, 0 } };

  if (wake == transport->timer_armed || transport->timer_fd < 0)
    return;
  transport->timer_armed = wake;
  if (wake != G_MAXINT64)
    {
      /* An absolute time in the past fires at once; zero would disarm. */
      gint64 at = MAX (wake, 0);
      spec.it_value.tv_sec = at / G_USEC_PER_SEC;
      spec.it_value.tv_nsec = (at % G_USEC_PER_SEC) * 1000 + 1;
    }
  timerfd_settime (transport->timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static void
quic_conn_set_wake (QuicConnection *conn, gint64 wake)
{
  QuicTransport *transport = conn->transport;

  if (conn->timer_iter != NULL && wake == conn->wake)
    return;
  if (conn->timer_iter != NULL)
    {
      g_sequence_remove (conn->timer_iter);
      conn->timer_iter = NULL;
    }
  conn->wake = wake;
  if (wake != G_MAXINT64 && conn->state != QUIC_CONN_DEAD)
    conn->timer_iter = g_sequence_insert_sorted (transport->timers, conn, quic_timer_compare,
                                                 NULL);
  quic_timer_update (transport);
}

/* Asks for @conn to be processed (and write) on the next loop turn. */
static void
quic_conn_kick (QuicConnection *conn)
{
  conn->kicked = TRUE;
  if (conn->state != QUIC_CONN_DEAD && (conn->timer_iter == NULL || conn->wake > 0))
    quic_conn_set_wake (conn, 0);
}

static void
quic_conn_rearm (QuicConnection *conn)
{
  ngtcp2_tstamp expiry;
  gint64 wake = G_MAXINT64;

  if (conn->state == QUIC_CONN_DEAD)
    return;
  expiry = ngtcp2_conn_get_expiry (conn->quic);
  if (expiry != UINT64_MAX)
    wake = (gint64) ((expiry + NGTCP2_MICROSECONDS - 1) / NGTCP2_MICROSECONDS);
  if (conn->deadline != 0)
    wake = MIN (wake, conn->deadline);
  if (conn->kicked)
    wake = 0;
  quic_conn_set_wake (conn, wake);
}

static void
quic_conn_on_timer (QuicConnection *conn, gint64 now)
{
  ngtcp2_tstamp ts = (ngtcp2_tstamp) now * NGTCP2_MICROSECONDS;

  if (conn->deadline != 0 && now >= conn->deadline)
    {
      g_autofree char *peer = quic_conn_describe (conn);
      quic_conn_fail (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_TIMEOUT,
                                         _("Connecting to “%s” took longer than %u ms; check "
                                           "that the peer is running and reachable."),
                                         peer, conn->transport->connect_timeout_ms));
      return;
    }
  if (ngtcp2_conn_get_expiry (conn->quic) <= ts)
    {
      int rv = ngtcp2_conn_handle_expiry (conn->quic, ts);
      if (rv != 0)
        {
          quic_conn_fail_liberr (conn, rv);
          return;
        }
    }
  quic_conn_process (conn);
}

static gboolean
quic_timer_on_ready (int fd, GIOCondition condition, gpointer user_data)
{
  QuicTransport *transport = user_data;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (GPtrArray) due = g_ptr_array_new_with_free_func (quic_conn_unref);
  guint64 expirations;

  (void) condition;
  if (read (fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
    g_debug ("reading the timer: %s", g_strerror (errno));
  /* Read, so the timer must be set again even to the same time. */
  transport->timer_armed = G_MAXINT64 - 1;
  while (TRUE)
    {
      GSequenceIter *first = g_sequence_get_begin_iter (transport->timers);
      QuicConnection *conn;
      if (g_sequence_iter_is_end (first))
        break;
      conn = g_sequence_get (first);
      if (conn->wake > now)
        break;
      g_sequence_remove (first);
      conn->timer_iter = NULL;
      conn->wake = G_MAXINT64;
      g_ptr_array_add (due, quic_conn_ref (conn));
    }
  for (guint i = 0; i < due->len; i++)
    {
      QuicConnection *conn = due->pdata[i];
      if (conn->state != QUIC_CONN_DEAD)
        quic_conn_on_timer (conn, now);
    }
  quic_timer_update (transport);
  return G_SOURCE_CONTINUE;
}

/* --- ngtcp2 callbacks ------------------------------------------------------- */

static ngtcp2_conn *
quic_get_conn (ngtcp2_crypto_conn_ref *ref)
{
  return ((QuicConnection *) ref->user_data)->quic;
}

static void
quic_rand (uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *rand_ctx)
{
  (void) rand_ctx;
  gnutls_rnd (GNUTLS_RND_RANDOM, dest, destlen);
}

/* Connection IDs are looked up for every datagram a listener receives,
 * so the table's keys are plain ngtcp2_cid, found without allocating. */
static guint
quic_cid_hash (gconstpointer key)
{
  const ngtcp2_cid *cid = key;
  guint hash = (guint) cid->datalen;
  for (gsize i = 0; i < cid->datalen; i++)
    hash = hash * 31 + cid->data[i];
  return hash;
}

static gboolean
quic_cid_equal (gconstpointer a, gconstpointer b)
{
  return ngtcp2_cid_eq (a, b);
}

static void
quic_conn_add_cid (QuicConnection *conn, const ngtcp2_cid *cid)
{
  ngtcp2_cid *copy = g_memdup2 (cid, sizeof *cid);
  if (conn->cids == NULL)
    conn->cids = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (conn->cids, copy);
  g_hash_table_replace (conn->transport->cids, copy, conn);
}

static int
quic_on_new_cid (ngtcp2_conn *quic, ngtcp2_cid *cid, uint8_t *token, size_t cidlen,
                 void *user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  if (gnutls_rnd (GNUTLS_RND_NONCE, cid->data, cidlen) != 0
      || gnutls_rnd (GNUTLS_RND_NONCE, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  cid->datalen = cidlen;
  if (!conn->is_client)
    quic_conn_add_cid (conn, cid);
  return 0;
}

static int
quic_on_remove_cid (ngtcp2_conn *quic, const ngtcp2_cid *cid, void *user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  if (!conn->is_client && g_hash_table_lookup (conn->transport->cids, cid) == conn)
    g_hash_table_remove (conn->transport->cids, cid);
  return 0;
}

static int
quic_on_handshake_completed (ngtcp2_conn *quic, void *user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  conn->handshake_done = TRUE;
  return 0;
}

/* Checks a complete frame header and allocates what it announces, within
 * the configured limits. A payload buffer is address space until data
 * arrives to fill it, and at most max-streams messages are in progress,
 * so memory stays bounded by what the peer really sent. */
static gboolean
quic_in_parse_frame (QuicConnection *conn, QuicInMessage *msg)
{
  QuicTransport *transport = conn->transport;
  guint32 magic, hlen;
  guint64 plen;
  const char *what = NULL;

  memcpy (&magic, msg->frame, 4);
  memcpy (&hlen, msg->frame + 8, 4);
  memcpy (&plen, msg->frame + 12, 8);
  magic = GUINT32_FROM_BE (magic);
  hlen = GUINT32_FROM_BE (hlen);
  plen = GUINT64_FROM_BE (plen);
  msg->kind = msg->frame[5];

  if (magic != QUIC_FRAME_MAGIC)
    what = "bad magic";
  else if (msg->frame[4] != QUIC_FRAME_VERSION)
    what = "unsupported version";
  else if (msg->frame[6] != 0 || msg->frame[7] != 0)
    what = "reserved bits set";
  else if (msg->kind != QUIC_FRAME_MESSAGE && msg->kind != QUIC_FRAME_HELLO)
    what = "unknown frame kind";
  else if (msg->kind == QUIC_FRAME_HELLO && (!conn->is_client || conn->hello_id != NULL))
    what = "unexpected frame kind";
  else if (hlen == 0 || hlen > transport->max_header)
    what = "header length out of bounds";
  else if (plen > transport->max_payload || (msg->kind == QUIC_FRAME_HELLO && plen != 0))
    what = "payload length out of bounds";
  if (what != NULL)
    {
      conn->pending_error = quic_conn_protocol_error (conn, what);
      return FALSE;
    }
  msg->header_len = hlen;
  msg->header = g_malloc (hlen);
  msg->payload_len = (gsize) plen;
  msg->payload = plen > 0 ? g_try_malloc ((gsize) plen) : NULL;
  if (plen > 0 && msg->payload == NULL)
    {
      g_autofree char *peer = quic_conn_describe (conn);
      conn->pending_error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                                         _("The connection to “%s” was closed (%s)."), peer,
                                         "out of memory");
      return FALSE;
    }
  return TRUE;
}

/* Copies stream data into @msg. Returns: FALSE on a protocol error. */
static gboolean
quic_in_append (QuicConnection *conn, QuicInMessage *msg, const guint8 *data, gsize len)
{
  while (len > 0)
    {
      guint8 *target;
      gsize want, n;

      if (msg->frame_got < QUIC_FRAME_SIZE)
        {
          want = QUIC_FRAME_SIZE - msg->frame_got;
          target = msg->frame + msg->frame_got;
        }
      else if (msg->header_got < msg->header_len)
        {
          want = msg->header_len - msg->header_got;
          target = msg->header + msg->header_got;
        }
      else
        {
          want = msg->payload_len - msg->payload_got;
          target = msg->payload + msg->payload_got;
        }
      if (want == 0)
        {
          conn->pending_error = quic_conn_protocol_error (conn, "data after the message");
          return FALSE;
        }
      n = MIN (want, len);
      memcpy (target, data, n);
      data += n;
      len -= n;
      if (msg->frame_got < QUIC_FRAME_SIZE)
        {
          msg->frame_got += n;
          if (msg->frame_got == QUIC_FRAME_SIZE && !quic_in_parse_frame (conn, msg))
            return FALSE;
        }
      else if (msg->header_got < msg->header_len)
        msg->header_got += n;
      else
        msg->payload_got += n;
    }
  return TRUE;
}

/* The stream ended: the message must be whole. */
static gboolean
quic_in_complete (QuicConnection *conn, QuicInMessage *msg)
{
  QuicDelivery *delivery;

  if (msg->frame_got < QUIC_FRAME_SIZE || msg->header_got < msg->header_len
      || msg->payload_got < msg->payload_len)
    {
      conn->pending_error = quic_conn_protocol_error (conn, "stream ended inside a message");
      return FALSE;
    }
  if (msg->kind == QUIC_FRAME_HELLO)
    {
      if (!quic_id_is_valid (msg->header, msg->header_len))
        {
          conn->pending_error = quic_conn_protocol_error (conn, "invalid device ID");
          return FALSE;
        }
      conn->hello_id = g_strndup ((const char *) msg->header, msg->header_len);
      return TRUE;
    }
  delivery = g_new0 (QuicDelivery, 1);
  delivery->header = g_bytes_new_take (g_steal_pointer (&msg->header), msg->header_len);
  if (msg->payload_len > 0)
    delivery->payload = g_bytes_new_take (g_steal_pointer (&msg->payload), msg->payload_len);
  g_queue_push_tail (&conn->deliveries, delivery);
  return TRUE;
}

static int
quic_on_stream_data (ngtcp2_conn *quic, uint32_t flags, int64_t stream_id, uint64_t offset,
                     const uint8_t *data, size_t datalen, void *user_data,
                     void *stream_user_data)
{
  QuicConnection *conn = user_data;
  QuicInMessage *msg = g_hash_table_lookup (conn->in, &stream_id);

  (void) offset;
  (void) stream_user_data;
  if (conn->pending_error != NULL)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (ngtcp2_conn_is_local_stream (quic, stream_id))
    {
      /* Our message's stream: the peer only ever answers with its FIN. */
      if (datalen == 0)
        return 0;
      conn->pending_error = quic_conn_protocol_error (conn, "data on a reply stream");
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
  if (msg == NULL)
    {
      msg = g_new0 (QuicInMessage, 1);
      msg->stream_id = stream_id;
      g_hash_table_insert (conn->in, &msg->stream_id, msg);
    }
  if (!quic_in_append (conn, msg, data, datalen)
      || ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) && !quic_in_complete (conn, msg)))
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
    {
      g_hash_table_remove (conn->in, &stream_id);
      g_array_append_val (conn->finished, stream_id);
    }
  /* Consumed at once: the peer may send as much again. */
  ngtcp2_conn_extend_max_stream_offset (quic, stream_id, datalen);
  ngtcp2_conn_extend_max_offset (quic, datalen);
  return 0;
}

static int
quic_on_acked (ngtcp2_conn *quic, int64_t stream_id, uint64_t offset, uint64_t datalen,
               void *user_data, void *stream_user_data)
{
  QuicConnection *conn = user_data;
  QuicOutMessage *msg = stream_user_data;

  (void) quic;
  (void) stream_id;
  (void) offset;
  if (msg != NULL)
    {
      gsize n = MIN ((gsize) datalen, msg->unacked);
      msg->unacked -= n;
      conn->queued -= n;
    }
  return 0;
}

static int
quic_on_stream_close (ngtcp2_conn *quic, uint32_t flags, int64_t stream_id,
                      uint64_t app_error_code, void *user_data, void *stream_user_data)
{
  QuicConnection *conn = user_data;

  (void) flags;
  (void) app_error_code;
  if (!ngtcp2_conn_is_local_stream (quic, stream_id))
    {
      g_hash_table_remove (conn->in, &stream_id);
      ngtcp2_conn_extend_max_streams_bidi (quic, 1);
      return 0;
    }
  if (stream_user_data != NULL)
    {
      QuicOutMessage *msg = stream_user_data;
      conn->queued -= msg->unacked;
      msg->unacked = 0;
      if (!g_hash_table_remove (conn->flying, &msg->stream_id))
        {
          /* Closed before it was all written (the peer stopped it). */
          g_queue_remove (&conn->out, msg);
          quic_out_message_free (msg);
        }
    }
  return 0;
}

static int
quic_on_stream_reset (ngtcp2_conn *quic, int64_t stream_id, uint64_t final_size,
                      uint64_t app_error_code, void *user_data, void *stream_user_data)
{
  QuicConnection *conn = user_data;
  (void) quic;
  (void) stream_id;
  (void) final_size;
  (void) app_error_code;
  (void) stream_user_data;
  /* Messages are never abandoned half way by a canopy peer. */
  if (conn->pending_error == NULL)
    conn->pending_error = quic_conn_protocol_error (conn, "stream reset");
  return NGTCP2_ERR_CALLBACK_FAILURE;
}

static int
quic_on_extend_streams (ngtcp2_conn *quic, uint64_t max_streams, void *user_data)
{
  (void) quic;
  (void) max_streams;
  quic_conn_kick (user_data);
  return 0;
}

static int
quic_on_extend_stream_data (ngtcp2_conn *quic, int64_t stream_id, uint64_t max_data,
                            void *user_data, void *stream_user_data)
{
  (void) quic;
  (void) stream_id;
  (void) max_data;
  (void) stream_user_data;
  quic_conn_kick (user_data);
  return 0;
}

static const ngtcp2_callbacks quic_client_callbacks = {
  .client_initial = ngtcp2_crypto_client_initial_cb,
  .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
  .handshake_completed = quic_on_handshake_completed,
  .encrypt = ngtcp2_crypto_encrypt_cb,
  .decrypt = ngtcp2_crypto_decrypt_cb,
  .hp_mask = ngtcp2_crypto_hp_mask_cb,
  .recv_stream_data = quic_on_stream_data,
  .acked_stream_data_offset = quic_on_acked,
  .stream_close = quic_on_stream_close,
  .recv_retry = ngtcp2_crypto_recv_retry_cb,
  .extend_max_local_streams_bidi = quic_on_extend_streams,
  .rand = quic_rand,
  .get_new_connection_id = quic_on_new_cid,
  .update_key = ngtcp2_crypto_update_key_cb,
  .stream_reset = quic_on_stream_reset,
  .extend_max_stream_data = quic_on_extend_stream_data,
  .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
  .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
  .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
  .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

static const ngtcp2_callbacks quic_server_callbacks = {
  .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
  .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
  .handshake_completed = quic_on_handshake_completed,
  .encrypt = ngtcp2_crypto_encrypt_cb,
  .decrypt = ngtcp2_crypto_decrypt_cb,
  .hp_mask = ngtcp2_crypto_hp_mask_cb,
  .recv_stream_data = quic_on_stream_data,
  .acked_stream_data_offset = quic_on_acked,
  .stream_close = quic_on_stream_close,
  .extend_max_local_streams_bidi = quic_on_extend_streams,
  .rand = quic_rand,
  .get_new_connection_id = quic_on_new_cid,
  .remove_connection_id = quic_on_remove_cid,
  .update_key = ngtcp2_crypto_update_key_cb,
  .stream_reset = quic_on_stream_reset,
  .extend_max_stream_data = quic_on_extend_stream_data,
  .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
  .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
  .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
  .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* --- TLS ------------------------------------------------------------------ */

static int
quic_psk_server_key (gnutls_session_t session, const gnutls_datum_t *identity, gnutls_datum_t *key)
{
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr (session);
  QuicConnection *conn = ref->user_data;

  if (!quic_id_is_valid (identity->data, identity->size))
    return -1;
  key->data = gnutls_malloc (CANOPY_TRANSPORT_SECRET_SIZE);
  key->size = CANOPY_TRANSPORT_SECRET_SIZE;
  if (key->data == NULL
      || !canopy_key_derive (conn->transport->secret, sizeof conn->transport->secret,
                             QUIC_PSK_LABEL, identity->data, identity->size, key->data,
                             key->size, NULL))
    return -1;
  return 0;
}

static gboolean
quic_conn_start_tls (QuicConnection *conn, GError **error)
{
  QuicTransport *transport = conn->transport;
  const gnutls_datum_t alpn = { (unsigned char *) QUIC_ALPN, sizeof QUIC_ALPN - 1 };
  /* No session tickets: connections are long-lived and never resumed. */
  unsigned flags = (conn->is_client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NO_TICKETS;
  int rc = gnutls_init (&conn->session, flags);

  if (rc == 0)
    rc = gnutls_priority_set (conn->session, transport->priority);
  if (rc == 0)
    rc = gnutls_credentials_set (conn->session, GNUTLS_CRD_PSK,
                                 conn->is_client ? (void *) transport->client_creds
                                                 : (void *) transport->server_creds);
  if (rc == 0)
    rc = conn->is_client ? ngtcp2_crypto_gnutls_configure_client_session (conn->session)
                         : ngtcp2_crypto_gnutls_configure_server_session (conn->session);
  if (rc == 0)
    rc = gnutls_alpn_set_protocols (conn->session, &alpn, 1, GNUTLS_ALPN_MANDATORY);
  if (rc != 0)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot set up a TLS session for QUIC: %s."),
                   rc == -1 ? "ngtcp2" : gnutls_strerror (rc));
      return FALSE;
    }
  conn->conn_ref.get_conn = quic_get_conn;
  conn->conn_ref.user_data = conn;
  gnutls_session_set_ptr (conn->session, &conn->conn_ref);
  ngtcp2_conn_set_tls_native_handle (conn->quic, conn->session);
  return TRUE;
}

/* --- connections: setup ---------------------------------------------------- */

static QuicConnection *
quic_conn_new (QuicTransport *transport, QuicSocket *socket, gboolean is_client)
{
  QuicConnection *conn = g_new0 (QuicConnection, 1);
  conn->parent.ops = &canopy_quic_transport_ops;
  conn->ref_count = 1;
  conn->transport = transport;
  conn->socket = socket;
  conn->is_client = is_client;
  conn->wake = G_MAXINT64;
  conn->deadline = g_get_monotonic_time () + (gint64) transport->connect_timeout_ms * 1000;
  g_queue_init (&conn->out);
  g_queue_init (&conn->deliveries);
  conn->finished = g_array_new (FALSE, FALSE, sizeof (int64_t));
  conn->flying = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, quic_out_message_free);
  conn->in = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, quic_in_message_free);
  g_hash_table_add (transport->connections, conn);
  return conn;
}

static void
quic_settings (QuicTransport *transport, ngtcp2_settings *settings,
               ngtcp2_transport_params *params)
{
  ngtcp2_settings_default (settings);
  settings->initial_ts = quic_now ();
  settings->cc_algo = NGTCP2_CC_ALGO_CUBIC;
  settings->max_tx_udp_payload_size = transport->udp_payload;
  /* Above the common Ethernet size the admin vouches for the path (a LAN
   * with jumbo frames): use it without probing. */
  settings->no_tx_udp_payload_size_shaping =
    transport->udp_payload > NGTCP2_MAX_PMTUD_UDP_PAYLOAD_SIZE;
  settings->max_window = QUIC_CONN_WINDOW_MAX;
  settings->max_stream_window = QUIC_STREAM_WINDOW_MAX;
  /* An ACK for every 8 packets, not 2: half the packets a bulk receiver
   * sends and the sender processes, for ~10% less CPU per byte. */
  settings->ack_thresh = QUIC_ACK_THRESHOLD;
  settings->handshake_timeout =
    (ngtcp2_duration) transport->connect_timeout_ms * NGTCP2_MILLISECONDS;

  ngtcp2_transport_params_default (params);
  params->initial_max_streams_uni = 0;
  params->initial_max_streams_bidi = transport->max_streams;
  params->initial_max_stream_data_bidi_remote = QUIC_STREAM_WINDOW;
  params->initial_max_stream_data_bidi_local = 0; /* the peer sends only a FIN back */
  params->initial_max_data = QUIC_CONN_WINDOW;
  params->max_idle_timeout = (ngtcp2_duration) transport->idle_timeout_s * NGTCP2_SECONDS;
  params->active_connection_id_limit = 4;
  params->disable_active_migration = 1;
}

static void
quic_conn_set_peer_address (QuicConnection *conn, const void *address, socklen_t len)
{
  memcpy (&conn->peer_native, address, MIN ((gsize) len, sizeof conn->peer_native));
  conn->peer_native_len = (ngtcp2_socklen) len;
  g_clear_object (&conn->peer_address);
  conn->peer_address = g_socket_address_new_from_native ((gpointer) address, len);
}

static void
quic_conn_set_remote (QuicConnection *conn, const struct sockaddr *address, socklen_t len)
{
  memcpy (&conn->remote, address, MIN ((gsize) len, sizeof conn->remote));
  conn->remote_len = (ngtcp2_socklen) len;
  quic_conn_set_peer_address (conn, address, len);
}

/* A server connection for the client Initial in @hd. */
static QuicConnection *
quic_conn_accept (QuicSocket *socket, const ngtcp2_pkt_hd *hd, const struct sockaddr *from,
                  socklen_t from_len, const ngtcp2_sockaddr_union *local, ngtcp2_socklen local_len)
{
  QuicTransport *transport = socket->transport;
  QuicConnection *conn = quic_conn_new (transport, socket, FALSE);
  g_autoptr (GError) error = NULL;
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  ngtcp2_path path;
  ngtcp2_cid scid;
  int rv;

  quic_conn_set_remote (conn, from, from_len);
  memcpy (&conn->local, local, local_len);
  conn->local_len = local_len;
  path.local.addr = (ngtcp2_sockaddr *) &conn->local;
  path.local.addrlen = conn->local_len;
  path.remote.addr = (ngtcp2_sockaddr *) &conn->remote;
  path.remote.addrlen = conn->remote_len;
  path.user_data = NULL;
  scid.datalen = QUIC_CID_LEN;
  gnutls_rnd (GNUTLS_RND_NONCE, scid.data, scid.datalen);
  quic_settings (transport, &settings, &params);
  params.original_dcid = hd->dcid;
  params.stateless_reset_token_present = 1;
  gnutls_rnd (GNUTLS_RND_NONCE, params.stateless_reset_token, sizeof params.stateless_reset_token);

  rv = ngtcp2_conn_server_new (&conn->quic, &hd->scid, &scid, &path, hd->version,
                               &quic_server_callbacks, &settings, &params, NULL, conn);
  if (rv != 0)
    {
      g_message (_("Cannot accept a QUIC connection: %s."), ngtcp2_strerror (rv));
      quic_conn_destroy (conn, NULL);
      return NULL;
    }
  if (!quic_conn_start_tls (conn, &error))
    {
      g_message ("%s", error->message);
      quic_conn_destroy (conn, NULL);
      return NULL;
    }
  quic_conn_add_cid (conn, &scid);
  quic_conn_add_cid (conn, &hd->dcid);
  return conn;
}

/* The server's ID travels first, inside the authenticated channel. */
static void quic_conn_queue_frame (QuicConnection *conn, guint8 kind, const void *header,
                                   gsize header_len, GBytes *payload, gboolean first);

static void
quic_conn_on_handshake (QuicConnection *conn)
{
  QuicTransport *transport = conn->transport;
  const char *identity;

  conn->handshake_done = FALSE;
  if (conn->is_client)
    {
      g_debug ("QUIC handshake with the server done");
      conn->state = QUIC_CONN_HELLO;
      return;
    }
  identity = gnutls_psk_server_get_username (conn->session);
  conn->peer_id = g_strdup (identity != NULL ? identity : "");
  conn->state = QUIC_CONN_OPEN;
  conn->deadline = 0;
  g_debug ("QUIC handshake with client %s done", conn->peer_id);
  quic_conn_queue_frame (conn, QUIC_FRAME_HELLO, transport->device_id,
                         strlen (transport->device_id), NULL, TRUE);
  transport->events->incoming (&conn->parent, transport->user_data);
}

static void
quic_conn_on_hello (QuicConnection *conn)
{
  GTask *task;

  conn->peer_id = g_steal_pointer (&conn->hello_id);
  conn->state = QUIC_CONN_OPEN;
  conn->deadline = 0;
  task = g_steal_pointer (&conn->connect_task);
  g_task_return_pointer (task, conn, NULL);
  g_object_unref (task);
}

/* --- connections: writing --------------------------------------------------- */

static void
quic_conn_queue_frame (QuicConnection *conn, guint8 kind, const void *header, gsize header_len,
                       GBytes *payload, gboolean first)
{
  gsize payload_len = payload != NULL ? g_bytes_get_size (payload) : 0;
  QuicOutMessage *msg = g_new0 (QuicOutMessage, 1);
  guint32 magic = GUINT32_TO_BE (QUIC_FRAME_MAGIC);
  guint32 hlen = GUINT32_TO_BE ((guint32) header_len);
  guint64 plen = GUINT64_TO_BE ((guint64) payload_len);

  msg->prefix_len = QUIC_FRAME_SIZE + header_len;
  msg->prefix = g_malloc (msg->prefix_len);
  memcpy (msg->prefix, &magic, 4);
  msg->prefix[4] = QUIC_FRAME_VERSION;
  msg->prefix[5] = kind;
  msg->prefix[6] = 0;
  msg->prefix[7] = 0;
  memcpy (msg->prefix + 8, &hlen, 4);
  memcpy (msg->prefix + 12, &plen, 8);
  memcpy (msg->prefix + QUIC_FRAME_SIZE, header, header_len);
  if (payload_len > 0)
    {
      msg->payload = g_bytes_ref (payload);
      msg->payload_data = g_bytes_get_data (payload, NULL);
    }
  msg->total = msg->prefix_len + payload_len;
  msg->unacked = msg->total;
  if (first)
    g_queue_push_head (&conn->out, msg);
  else
    g_queue_push_tail (&conn->out, msg);
  conn->queued += msg->total;
  if (conn->queued >= conn->transport->queue_high)
    conn->want_drained = TRUE;
  quic_conn_kick (conn);
}

/* The oldest message that may send now, its stream opened if need be:
 * messages go out in order, and a later one moves ahead only while an
 * earlier one waits for the peer's flow control. */
static QuicOutMessage *
quic_conn_next_message (QuicConnection *conn)
{
  for (GList *l = conn->out.head; l != NULL; l = l->next)
    {
      QuicOutMessage *msg = l->data;
      if (msg->blocked)
        continue;
      if (!msg->has_stream)
        {
          if (ngtcp2_conn_open_bidi_stream (conn->quic, &msg->stream_id, msg) != 0)
            return NULL; /* out of streams until the peer grants more */
          msg->has_stream = TRUE;
        }
      return msg;
    }
  return NULL;
}

static int
quic_message_vec (QuicOutMessage *msg, ngtcp2_vec vec[2])
{
  int n = 0;
  if (msg->written < msg->prefix_len)
    {
      vec[n].base = msg->prefix + msg->written;
      vec[n].len = msg->prefix_len - msg->written;
      n++;
    }
  if (msg->total > msg->prefix_len)
    {
      gsize from = MAX (msg->written, msg->prefix_len) - msg->prefix_len;
      vec[n].base = (uint8_t *) msg->payload_data + from;
      vec[n].len = msg->total - msg->prefix_len - from;
      n++;
    }
  return n;
}

static void
quic_message_advance (QuicConnection *conn, QuicOutMessage *msg, ngtcp2_ssize n)
{
  if (msg == NULL || n < 0)
    return;
  msg->written += (gsize) n;
  if (msg->written == msg->total)
    {
      /* All handed over with the FIN: kept for retransmission until
       * acknowledged and the stream closes. */
      g_queue_remove (&conn->out, msg);
      g_hash_table_insert (conn->flying, &msg->stream_id, msg);
    }
}

/* Whether ngtcp2 wants a packet sent to another address than the last:
 * the server probes or moves to a client's new address. */
static gboolean
quic_conn_path_changed (QuicConnection *conn, const ngtcp2_path *path)
{
  return !conn->is_client && path->remote.addrlen > 0
         && (path->remote.addrlen != conn->remote_len
             || memcmp (path->remote.addr, &conn->remote, conn->remote_len) != 0);
}

static void
quic_conn_follow_path (QuicConnection *conn, const ngtcp2_path *path)
{
  memcpy (&conn->remote, path->remote.addr, MIN ((gsize) path->remote.addrlen,
                                                  sizeof conn->remote));
  conn->remote_len = path->remote.addrlen;
}

/* Hands datagrams the kernel refused earlier to it again.
 * Returns: TRUE when none are left. */
static gboolean
quic_conn_flush_unsent (QuicConnection *conn)
{
  g_autofree guint8 *data = g_steal_pointer (&conn->unsent);
  if (data == NULL)
    return TRUE;
  return quic_conn_send_datagrams (conn, data, conn->unsent_len, conn->unsent_segment);
}

static void
quic_conn_wait_writable (QuicConnection *conn)
{
  QuicSocket *socket = conn->socket;
  if (g_queue_find (&socket->blocked, conn) == NULL)
    g_queue_push_tail (&socket->blocked, quic_conn_ref (conn));
  quic_socket_update_watch (socket);
}

/* Writes packets until ngtcp2 has nothing more, congestion control or
 * pacing holds it back, or the kernel is full; datagrams of one size go
 * to the kernel in one GSO call.
 * Returns: FALSE if @conn failed (and was reported). */
static gboolean
quic_conn_write (QuicConnection *conn)
{
  QuicTransport *transport = conn->transport;
  guint8 *buf = transport->tx_buffer;
  gsize max_udp = MIN (ngtcp2_conn_get_path_max_tx_udp_payload_size (conn->quic),
                       transport->udp_payload);
  ngtcp2_tstamp ts = quic_now ();
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  gsize max_segments, off = 0, segment = 0, nsegments = 0;
  guint batches = 0;

  if (!quic_conn_flush_unsent (conn))
    {
      quic_conn_wait_writable (conn);
      return TRUE;
    }
  conn->kicked = FALSE;
  /* A GSO batch is one UDP datagram to the kernel: at most 64 KiB. */
  max_segments = CLAMP (ngtcp2_conn_get_send_quantum (conn->quic) / max_udp, 1,
                        MIN (QUIC_GSO_MAX_SEGMENTS, QUIC_GSO_MAX_BYTES / max_udp));
  for (GList *l = conn->out.head; l != NULL; l = l->next)
    ((QuicOutMessage *) l->data)->blocked = FALSE;
  ngtcp2_path_storage_zero (&ps);

  while (TRUE)
    {
      gboolean answer = conn->finished->len > 0;
      QuicOutMessage *msg = answer || conn->state == QUIC_CONN_DEAD
                                || conn->state == QUIC_CONN_HANDSHAKE
                              ? NULL : quic_conn_next_message (conn);
      int64_t stream_id = answer ? g_array_index (conn->finished, int64_t, 0)
                                 : msg != NULL ? msg->stream_id : -1;
      ngtcp2_vec vec[2];
      int nvec = msg != NULL ? quic_message_vec (msg, vec) : 0;
      ngtcp2_ssize datalen = -1;
      uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE
                       | (stream_id != -1 ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0);
      ngtcp2_ssize n = ngtcp2_conn_writev_stream (conn->quic, &ps.path, &pi, buf + off, max_udp,
                                                  &datalen, flags, stream_id, vec, (size_t) nvec,
                                                  ts);
      if (answer && (datalen >= 0 || n == NGTCP2_ERR_STREAM_NOT_FOUND
                     || n == NGTCP2_ERR_STREAM_SHUT_WR))
        g_array_remove_index (conn->finished, 0);
      if (n < 0)
        {
          if (n == NGTCP2_ERR_WRITE_MORE)
            {
              quic_message_advance (conn, msg, datalen);
              continue;
            }
          if (answer && (n == NGTCP2_ERR_STREAM_NOT_FOUND || n == NGTCP2_ERR_STREAM_SHUT_WR))
            continue;
          if (msg != NULL
              && (n == NGTCP2_ERR_STREAM_DATA_BLOCKED || n == NGTCP2_ERR_STREAM_SHUT_WR))
            {
              msg->blocked = TRUE;
              continue;
            }
          quic_conn_fail_liberr (conn, (int) n);
          return FALSE;
        }
      quic_message_advance (conn, msg, datalen);
      if (n == 0)
        break;

      /* Datagrams of a GSO batch all have the first one's size, but the
       * last may be shorter; and they all go to one address. */
      if (quic_conn_path_changed (conn, &ps.path))
        {
          if (nsegments > 0 && !quic_conn_send_datagrams (conn, buf, off, segment))
            {
              /* Those were for the old address: let them go as lost. */
              g_clear_pointer (&conn->unsent, g_free);
            }
          quic_conn_follow_path (conn, &ps.path);
          if (nsegments > 0)
            {
              memmove (buf, buf + off, (gsize) n);
              off = 0;
              nsegments = 0;
            }
        }
      else if (nsegments > 0 && (gsize) n > segment)
        {
          if (!quic_conn_send_datagrams (conn, buf, off, segment))
            {
              /* This packet must not be lost either: keep it after them. */
              guint8 *both = g_malloc (conn->unsent_len + (gsize) n);
              memcpy (both, conn->unsent, conn->unsent_len);
              memcpy (both + conn->unsent_len, buf + off, (gsize) n);
              g_free (conn->unsent);
              conn->unsent = both;
              conn->unsent_len += (gsize) n;
              conn->unsent_segment = segment;
              break;
            }
          memmove (buf, buf + off, (gsize) n);
          off = 0;
          nsegments = 0;
        }
      if (nsegments == 0)
        segment = (gsize) n;
      off += (gsize) n;
      nsegments++;
      if (nsegments < max_segments && (gsize) n == segment)
        continue;
      if (!quic_conn_send_datagrams (conn, buf, off, segment))
        {
          off = nsegments = 0;
          break;
        }
      off = nsegments = 0;
      if (++batches == QUIC_WRITE_BATCHES)
        {
          /* Let other connections have their turn; carry on next turn. */
          quic_conn_kick (conn);
          break;
        }
    }
  if (nsegments > 0)
    quic_conn_send_datagrams (conn, buf, off, segment);
  ngtcp2_conn_update_pkt_tx_time (conn->quic, ts);
  if (conn->unsent != NULL)
    quic_conn_wait_writable (conn);
  if (conn->pending_error != NULL)
    {
      quic_conn_fail (conn, g_steal_pointer (&conn->pending_error));
      return FALSE;
    }
  return TRUE;
}

/* The peer's address is that of the path ngtcp2 has validated and uses. */
static void
quic_conn_update_peer_address (QuicConnection *conn)
{
  const ngtcp2_path *path = ngtcp2_conn_get_path (conn->quic);
  g_autofree char *was = NULL;
  g_autofree char *now = NULL;

  if (conn->is_client || path->remote.addrlen == 0
      || (path->remote.addrlen == conn->peer_native_len
          && memcmp (path->remote.addr, &conn->peer_native, conn->peer_native_len) == 0))
    return;
  was = quic_conn_describe (conn);
  quic_conn_set_peer_address (conn, path->remote.addr, path->remote.addrlen);
  now = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (conn->peer_address));
  g_debug ("Peer %s now reached at %s", was, now);
}

/* Acts on what ngtcp2 reported (handshake, messages), writes, then
 * reports drained and sets the timer. Events may close @conn. */
static void
quic_conn_process (QuicConnection *conn)
{
  QuicTransport *transport = conn->transport;

  quic_conn_ref (conn);
  if (conn->pending_error != NULL)
    quic_conn_fail_liberr (conn, 0);
  if (conn->handshake_done && conn->state == QUIC_CONN_HANDSHAKE)
    quic_conn_on_handshake (conn);
  if (conn->state == QUIC_CONN_HELLO && conn->hello_id != NULL)
    quic_conn_on_hello (conn);
  while (conn->state == QUIC_CONN_OPEN && conn->deliveries.length > 0)
    {
      QuicDelivery *delivery = g_queue_pop_head (&conn->deliveries);
      transport->events->message (&conn->parent, delivery->header, delivery->payload,
                                  transport->user_data);
      quic_delivery_free (delivery);
    }
  if (conn->state != QUIC_CONN_DEAD && quic_conn_write (conn))
    {
      quic_conn_update_peer_address (conn);
      if (conn->want_drained && conn->queued <= transport->queue_low
          && conn->state == QUIC_CONN_OPEN)
        {
          conn->want_drained = FALSE;
          transport->events->drained (&conn->parent, transport->user_data);
        }
      quic_conn_rearm (conn);
    }
  quic_conn_unref (conn);
}

/* --- sockets ------------------------------------------------------------------ */

static void
quic_conn_mark_dirty (QuicConnection *conn)
{
  GPtrArray *dirty = conn->transport->dirty;
  for (guint i = 0; i < dirty->len; i++)
    if (dirty->pdata[i] == conn)
      return;
  g_ptr_array_add (dirty, quic_conn_ref (conn));
}

/* @from is where the datagram came from: for a server connection it may
 * differ from the peer's address so far when a NAT rebinds the client's
 * port; ngtcp2 then validates the new path and moves the connection. */
static void
quic_conn_read (QuicConnection *conn, const guint8 *data, gsize len, const struct sockaddr *from,
                socklen_t from_len)
{
  ngtcp2_path path;
  ngtcp2_pkt_info pi = { 0 };
  int rv;

  if (conn->state == QUIC_CONN_DEAD)
    return;
  path.local.addr = (ngtcp2_sockaddr *) &conn->local;
  path.local.addrlen = conn->local_len;
  path.remote.addr = (ngtcp2_sockaddr *) (conn->is_client ? (struct sockaddr *) &conn->remote
                                                          : from);
  path.remote.addrlen = conn->is_client ? conn->remote_len : (ngtcp2_socklen) from_len;
  path.user_data = NULL;
  rv = ngtcp2_conn_read_pkt (conn->quic, &path, &pi, data, len, quic_now ());
  if (rv != 0)
    {
      quic_conn_fail_liberr (conn, rv);
      return;
    }
  quic_conn_mark_dirty (conn);
}

/* A listener's datagram: to the connection its destination ID names, or
 * a new connection if it is a client's first Initial; anything else is
 * dropped without a word (garbage costs no state). */
static void
quic_listener_dispatch (QuicSocket *socket, const guint8 *data, gsize len,
                        const struct sockaddr *from, socklen_t from_len,
                        const ngtcp2_sockaddr_union *local)
{
  QuicTransport *transport = socket->transport;
  ngtcp2_version_cid vc;
  ngtcp2_pkt_hd hd;
  ngtcp2_cid dcid;
  QuicConnection *conn;

  if (ngtcp2_pkt_decode_version_cid (&vc, data, len, QUIC_CID_LEN) != 0
      || vc.dcidlen > NGTCP2_MAX_CIDLEN)
    return;
  ngtcp2_cid_init (&dcid, vc.dcid, vc.dcidlen);
  conn = g_hash_table_lookup (transport->cids, &dcid);
  if (conn != NULL)
    {
      quic_conn_read (conn, data, len, from, from_len);
      return;
    }
  if (ngtcp2_accept (&hd, data, len) != 0)
    return;
  conn = quic_conn_accept (socket, &hd, from, from_len, local, socket->local_len);
  if (conn != NULL)
    quic_conn_read (conn, data, len, from, from_len);
}

static void
quic_socket_dispatch (QuicSocket *socket, const guint8 *data, gsize len,
                      const struct sockaddr *from, socklen_t from_len,
                      const ngtcp2_sockaddr_union *local)
{
  if (socket->conn != NULL)
    quic_conn_read (socket->conn, data, len, from, from_len);
  else
    quic_listener_dispatch (socket, data, len, from, from_len, local);
}

static void
quic_transport_process_dirty (QuicTransport *transport)
{
  while (transport->dirty->len > 0)
    {
      g_autoptr (GPtrArray) dirty = g_steal_pointer (&transport->dirty);
      transport->dirty = g_ptr_array_new_with_free_func (quic_conn_unref);
      for (guint i = 0; i < dirty->len; i++)
        {
          QuicConnection *conn = dirty->pdata[i];
          if (conn->state != QUIC_CONN_DEAD)
            quic_conn_process (conn);
        }
    }
}

/* What the kernel said about a datagram: the size of the datagrams GRO
 * joined, and for a wildcard socket the address it was sent to. */
static void
quic_socket_parse_cmsg (QuicSocket *socket, struct cmsghdr *cmsg, gsize *segment,
                        ngtcp2_sockaddr_union *local)
{
  if (cmsg->cmsg_level == SOL_UDP && cmsg->cmsg_type == UDP_GRO)
    {
      int size;
      memcpy (&size, CMSG_DATA (cmsg), sizeof size);
      if (size > 0)
        *segment = (gsize) size;
    }
  else if (socket->pktinfo && cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_PKTINFO)
    {
      struct in6_pktinfo info;
      memcpy (&info, CMSG_DATA (cmsg), sizeof info);
      local->in6.sin6_addr = info.ipi6_addr;
    }
  else if (socket->pktinfo && cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_PKTINFO)
    {
      struct in_pktinfo info;
      memcpy (&info, CMSG_DATA (cmsg), sizeof info);
      local->in.sin_addr = info.ipi_addr;
    }
}

/* Reads a bounded batch of datagrams (coalesced by GRO when the kernel
 * can), then lets each connection that received some act and answer once. */
static void
quic_socket_receive (QuicSocket *socket)
{
  QuicTransport *transport = socket->transport;

  for (int i = 0; i < QUIC_READ_BATCH; i++)
    {
      ngtcp2_sockaddr_union from;
      struct iovec iov = { transport->rx_buffer, QUIC_RX_BUFFER_SIZE };
      union {
        char buf[CMSG_SPACE (sizeof (int)) + CMSG_SPACE (sizeof (struct in6_pktinfo))];
        struct cmsghdr align;
      } control;
      ngtcp2_sockaddr_union local = socket->local;
      struct msghdr msg = { 0 };
      struct cmsghdr *cmsg;
      gsize segment;
      ssize_t n;

      msg.msg_name = &from;
      msg.msg_namelen = sizeof from;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control.buf;
      msg.msg_controllen = sizeof control.buf;
      n = recvmsg (socket->fd, &msg, 0);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == ECONNREFUSED && socket->conn != NULL
              && socket->conn->state == QUIC_CONN_HANDSHAKE)
            {
              QuicConnection *conn = socket->conn;
              g_autofree char *peer = quic_conn_describe (conn);
              quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR,
                                                      CANOPY_TRANSPORT_ERROR_REFUSED,
                                                      _("Nothing accepts connections at “%s”; "
                                                        "check the address and that the peer "
                                                        "is running."), peer), NULL);
            }
          break;
        }
      segment = (gsize) n;
      for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
        quic_socket_parse_cmsg (socket, cmsg, &segment, &local);
      for (gsize off = 0; off < (gsize) n; off += segment)
        quic_socket_dispatch (socket, transport->rx_buffer + off, MIN (segment, (gsize) n - off),
                              (struct sockaddr *) &from, msg.msg_namelen, &local);
      /* A client socket's connection may have ended meanwhile. */
      if (socket->conn != NULL && socket->conn->state == QUIC_CONN_DEAD)
        break;
    }
}

static void
quic_socket_on_writable (QuicSocket *socket)
{
  while (socket->blocked.length > 0)
    {
      QuicConnection *conn = g_queue_peek_head (&socket->blocked);
      if (!quic_conn_flush_unsent (conn))
        return;
      g_queue_pop_head (&socket->blocked);
      quic_conn_mark_dirty (conn);
      quic_conn_unref (conn);
    }
}

static gboolean
quic_socket_on_ready (int fd, GIOCondition condition, gpointer user_data)
{
  QuicSocket *socket = user_data;
  QuicTransport *transport = socket->transport;
  QuicConnection *owner = socket->conn != NULL ? quic_conn_ref (socket->conn) : NULL;

  (void) fd;
  if (condition & G_IO_OUT)
    quic_socket_on_writable (socket);
  if (condition & (G_IO_IN | G_IO_ERR | G_IO_HUP))
    {
      if (owner == NULL || owner->state != QUIC_CONN_DEAD)
        quic_socket_receive (socket);
    }
  if (owner == NULL || owner->state != QUIC_CONN_DEAD)
    quic_socket_update_watch (socket);
  quic_transport_process_dirty (transport);
  if (owner != NULL)
    quic_conn_unref (owner);
  return G_SOURCE_CONTINUE;
}

static void
quic_socket_update_watch (QuicSocket *socket)
{
  GIOCondition want = G_IO_IN | (socket->blocked.length > 0 ? G_IO_OUT : 0);
  if (socket->watching != 0 && want != socket->watching
      && canopy_watch_set_modify (socket->transport->watches, socket->fd, want, NULL))
    socket->watching = want;
}

static void
quic_socket_free (QuicSocket *socket)
{
  if (socket == NULL)
    return;
  while (socket->blocked.length > 0)
    quic_conn_unref (g_queue_pop_head (&socket->blocked));
  if (socket->watching != 0)
    canopy_watch_set_remove (socket->transport->watches, socket->fd);
  g_socket_close (socket->socket, NULL);
  g_object_unref (socket->socket);
  g_free (socket);
}

static void
quic_socket_tune (QuicTransport *transport, int fd)
{
  int size = (int) MIN (transport->socket_buffer, (gsize) G_MAXINT);
  int one = 1;

  /* Bulk transfers need more than the default buffers; the *FORCE
   * variants pass the system maximum when the service may. */
  if (setsockopt (fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt (fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt (fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    setsockopt (fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (transport->gso)
    setsockopt (fd, SOL_UDP, UDP_GRO, &one, sizeof one);
}

static QuicSocket *
quic_socket_new (QuicTransport *transport, GInetAddress *inet, GError **error)
{
  g_autoptr (GSocket) gsocket = g_socket_new (g_inet_address_get_family (inet),
                                              G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP,
                                              error);
  QuicSocket *socket;
  int one = 1;

  if (gsocket == NULL)
    return NULL;
  g_socket_set_blocking (gsocket, FALSE);
  socket = g_new0 (QuicSocket, 1);
  socket->transport = transport;
  socket->fd = g_socket_get_fd (gsocket);
  socket->socket = g_steal_pointer (&gsocket);
  g_queue_init (&socket->blocked);
  /* "::" and "0.0.0.0" may both be listed; each binds its own family. */
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    setsockopt (socket->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  quic_socket_tune (transport, socket->fd);
  return socket;
}

static gboolean
quic_socket_watch (QuicSocket *socket, GError **error)
{
  if (!canopy_watch_set_add (socket->transport->watches, socket->fd, G_IO_IN,
                             quic_socket_on_ready, socket, NULL, error))
    return FALSE;
  socket->watching = G_IO_IN;
  return TRUE;
}

static void
quic_socket_learn_local (QuicSocket *socket)
{
  socklen_t len = sizeof socket->local;
  if (getsockname (socket->fd, (struct sockaddr *) &socket->local, &len) == 0)
    socket->local_len = (ngtcp2_socklen) len;
}

/* --- listening ------------------------------------------------------------ */

static gboolean
quic_listen_one (QuicTransport *transport, const CanopyConfigNode *node, GError **error)
{
  const char *host = canopy_config_node_get_attribute (node, "address");
  g_autoptr (GInetAddress) inet = NULL;
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GError) local_error = NULL;
  QuicSocket *socket;
  guint64 port;

  if (!canopy_config_node_get_uint (node, "port", 0, G_MAXUINT16, QUIC_DEFAULT_PORT, &port, error))
    return FALSE;
  if (host == NULL)
    host = "::";
  inet = g_inet_address_new_from_string (host);
  if (inet == NULL)
    {
      canopy_config_node_set_error (node, error,
                                    _("“%s” is not an IPv4 or IPv6 address; write a literal "
                                      "address such as “::” or “0.0.0.0”."), host);
      return FALSE;
    }
  socket = quic_socket_new (transport, inet, error);
  if (socket == NULL)
    return FALSE;
  address = g_inet_socket_address_new (inet, (guint16) port);
  if (!g_socket_bind (socket->socket, address, FALSE, &local_error))
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot listen on address “%s” UDP port %u: %s. Check that no other "
                     "program uses that port."), host, (guint) port, local_error->message);
      quic_socket_free (socket);
      return FALSE;
    }
  quic_socket_learn_local (socket);
  if (g_inet_address_get_is_any (inet))
    {
      int one = 1;
      socket->pktinfo = TRUE;
      if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
        setsockopt (socket->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
      else
        setsockopt (socket->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    }
  if (!quic_socket_watch (socket, error))
    {
      quic_socket_free (socket);
      return FALSE;
    }
  g_ptr_array_add (transport->listeners, socket);
  return TRUE;
}

static gboolean
quic_transport_listen (gpointer instance, GError **error)
{
  QuicTransport *transport = instance;
  g_autoptr (GPtrArray) nodes = canopy_config_node_get_children (transport->element, "listen");
  for (guint i = 0; i < nodes->len; i++)
    if (!quic_listen_one (transport, nodes->pdata[i], error))
      {
        g_ptr_array_set_size (transport->listeners, 0);
        return FALSE;
      }
  return TRUE;
}

static GPtrArray *
quic_transport_get_listen_addresses (gpointer instance)
{
  QuicTransport *transport = instance;
  GPtrArray *addresses = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < transport->listeners->len; i++)
    {
      QuicSocket *socket = transport->listeners->pdata[i];
      GSocketAddress *address = g_socket_get_local_address (socket->socket, NULL);
      if (address != NULL)
        g_ptr_array_add (addresses, address);
    }
  return addresses;
}

static void
quic_listener_free (gpointer data)
{
  quic_socket_free (data);
}

/* --- connecting ----------------------------------------------------------- */

static gboolean
quic_conn_cancel_in_context (gpointer user_data)
{
  QuicConnection *conn = user_data;
  if (conn->state != QUIC_CONN_DEAD && conn->connect_task != NULL)
    quic_conn_fail (conn, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                       _("Connecting was cancelled.")));
  return G_SOURCE_REMOVE;
}

/* Runs on whichever thread cancels, possibly inside g_cancellable_connect();
 * the work is done later on the transport's own context. */
static void
quic_conn_on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  QuicConnection *conn = user_data;
  g_autoptr (GSource) idle = g_idle_source_new ();

  (void) cancellable;
  g_source_set_callback (idle, quic_conn_cancel_in_context, quic_conn_ref (conn), quic_conn_unref);
  g_source_attach (idle, conn->transport->context);
}

static gboolean
quic_conn_start_client (QuicConnection *conn, GError **error)
{
  QuicTransport *transport = conn->transport;
  ngtcp2_settings settings;
  ngtcp2_transport_params params;
  ngtcp2_path path;
  ngtcp2_cid dcid, scid;
  int rv;

  memcpy (&conn->local, &conn->socket->local, sizeof conn->local);
  conn->local_len = conn->socket->local_len;
  path.local.addr = (ngtcp2_sockaddr *) &conn->local;
  path.local.addrlen = conn->local_len;
  path.remote.addr = (ngtcp2_sockaddr *) &conn->remote;
  path.remote.addrlen = conn->remote_len;
  path.user_data = NULL;
  dcid.datalen = QUIC_CID_LEN;
  scid.datalen = QUIC_CID_LEN;
  gnutls_rnd (GNUTLS_RND_NONCE, dcid.data, dcid.datalen);
  gnutls_rnd (GNUTLS_RND_NONCE, scid.data, scid.datalen);
  quic_settings (transport, &settings, &params);
  rv = ngtcp2_conn_client_new (&conn->quic, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1,
                               &quic_client_callbacks, &settings, &params, NULL, conn);
  if (rv != 0)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot start a QUIC connection: %s."), ngtcp2_strerror (rv));
      return FALSE;
    }
  /* Idle connections stay up: a ping well before the idle timeout. */
  ngtcp2_conn_set_keep_alive_timeout (conn->quic,
                                      (ngtcp2_duration) transport->idle_timeout_s
                                        * NGTCP2_SECONDS / 3);
  return quic_conn_start_tls (conn, error);
}

/* Starts connecting to one address; takes @task. */
static void
quic_connect_to (QuicTransport *transport, GTask *task, GInetAddress *inet, guint16 port)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  GCancellable *cancellable = g_task_get_cancellable (task);
  QuicSocket *socket = quic_socket_new (transport, inet, &error);
  QuicConnection *conn;

  if (socket == NULL)
    {
      g_task_return_new_error (task, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                               _("Cannot create a socket: %s."), error->message);
      g_object_unref (task);
      return;
    }
  conn = quic_conn_new (transport, socket, TRUE);
  conn->owns_socket = TRUE;
  conn->connect_task = task;
  socket->conn = conn;
  if (cancellable != NULL)
    {
      conn->cancellable = g_object_ref (cancellable);
      conn->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (quic_conn_on_cancelled),
                                               conn, NULL);
    }
  if (!g_socket_address_to_native (address, &conn->remote, sizeof conn->remote, &error))
    {
      quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                                              _("Cannot connect: %s."), error->message), NULL);
      return;
    }
  conn->remote_len = (ngtcp2_socklen) g_socket_address_get_native_size (address);
  conn->peer_address = g_object_ref (address);
  /* A connected socket hears only its server, and learns of a refusal. */
  if (!g_socket_connect (socket->socket, address, NULL, &error)
      || !quic_socket_watch (socket, &error))
    {
      g_autofree char *peer = quic_conn_describe (conn);
      quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                                              _("Cannot connect to “%s”: %s."), peer,
                                              error->message), NULL);
      return;
    }
  quic_socket_learn_local (socket);
  if (!quic_conn_start_client (conn, &error))
    {
      quic_conn_fail_full (conn, g_steal_pointer (&error), NULL);
      return;
    }
  quic_conn_kick (conn);
}

/* A host name being resolved; the transport forgets it (and fails its
 * task) if it is freed first. */
typedef struct {
  QuicTransport *transport;
  GTask *task;
  char *host;
  guint16 port;
} QuicResolve;

static void
quic_resolve_free (QuicResolve *resolve)
{
  g_clear_object (&resolve->task);
  g_free (resolve->host);
  g_free (resolve);
}

static void
quic_on_resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QuicResolve *resolve = user_data;
  g_autoptr (GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);

  if (resolve->transport != NULL)
    {
      g_ptr_array_remove_fast (resolve->transport->resolving, resolve);
      if (addresses == NULL)
        g_task_return_new_error (resolve->task, CANOPY_TRANSPORT_ERROR,
                                 CANOPY_TRANSPORT_ERROR_FAILED,
                                 _("Cannot resolve the host name “%s”: %s. Check the name, "
                                   "or give an IP address instead."),
                                 resolve->host, error->message);
      else
        quic_connect_to (resolve->transport, g_steal_pointer (&resolve->task), addresses->data,
                         resolve->port);
    }
  g_resolver_free_addresses (addresses);
  quic_resolve_free (resolve);
}

static void
quic_transport_connect_async (gpointer instance, const char *host, guint16 port,
                              GCancellable *cancellable, GAsyncReadyCallback callback,
                              gpointer user_data)
{
  QuicTransport *transport = instance;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autoptr (GResolver) resolver = NULL;
  GTask *task;
  QuicResolve *resolve;

  /* The task, and the resolver's answer, complete on the transport's
   * context, not the caller's. */
  g_main_context_push_thread_default (transport->context);
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, quic_transport_connect_async);
  g_task_set_check_cancellable (task, FALSE);
  if (inet != NULL)
    {
      g_main_context_pop_thread_default (transport->context);
      quic_connect_to (transport, task, inet, port);
      return;
    }

  resolve = g_new0 (QuicResolve, 1);
  resolve->transport = transport;
  resolve->task = task;
  resolve->host = g_strdup (host);
  resolve->port = port;
  g_ptr_array_add (transport->resolving, resolve);
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, host, cancellable, quic_on_resolved, resolve);
  g_main_context_pop_thread_default (transport->context);
}

static CanopyTransportConnection *
quic_transport_connect_finish (gpointer instance, GAsyncResult *result, GError **error)
{
  (void) instance;
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- messages ------------------------------------------------------------- */

static gboolean
quic_transport_send (CanopyTransportConnection *parent, GBytes *header, GBytes *payload,
                     GError **error)
{
  QuicConnection *conn = (QuicConnection *) parent;
  QuicTransport *transport = conn->transport;
  gsize header_len = g_bytes_get_size (header);
  gsize payload_len = payload != NULL ? g_bytes_get_size (payload) : 0;

  if (conn->state != QUIC_CONN_OPEN)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                   _("The connection to “%s” is closed."), conn->peer_id);
      return FALSE;
    }
  if (header_len == 0 || header_len > transport->max_header || payload_len > transport->max_payload)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_TOO_LARGE,
                   _("A message of %" G_GSIZE_FORMAT " header bytes and %" G_GSIZE_FORMAT
                     " payload bytes exceeds the limits (%" G_GSIZE_FORMAT " and %"
                     G_GSIZE_FORMAT ")."),
                   header_len, payload_len, transport->max_header, transport->max_payload);
      return FALSE;
    }
  if (conn->queued >= transport->queue_high)
    {
      conn->want_drained = TRUE;
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_QUEUE_FULL,
                   _("The send queue to “%s” is full; wait until it drains."), conn->peer_id);
      return FALSE;
    }
  quic_conn_queue_frame (conn, QUIC_FRAME_MESSAGE, g_bytes_get_data (header, NULL), header_len,
                         payload, FALSE);
  return TRUE;
}

static gsize
quic_conn_get_queued_bytes (CanopyTransportConnection *parent)
{
  return ((QuicConnection *) parent)->queued;
}

static const char *
quic_conn_get_peer_id (CanopyTransportConnection *parent)
{
  return ((QuicConnection *) parent)->peer_id;
}

static GSocketAddress *
quic_conn_get_peer_address (CanopyTransportConnection *parent)
{
  return ((QuicConnection *) parent)->peer_address;
}

static void
quic_transport_close (CanopyTransportConnection *parent)
{
  quic_conn_close_with_app_code ((QuicConnection *) parent, QUIC_APP_CLOSED);
}

/* --- instance ------------------------------------------------------------- */

static gboolean
quic_transport_configure (QuicTransport *transport, const CanopyConfigNode *element,
                          GError **error)
{
  const CanopyConfigNode *connect = canopy_config_node_get_child (element, "connect");
  const CanopyConfigNode *idle = canopy_config_node_get_child (element, "idle");
  const CanopyConfigNode *limits = canopy_config_node_get_child (element, "limits");
  const CanopyConfigNode *udp = canopy_config_node_get_child (element, "udp");
  guint64 timeout = 10000, idle_s = 60, max_header = CANOPY_TRANSPORT_MAX_HEADER_SIZE;
  guint64 max_payload = QUIC_DEFAULT_MAX_PAYLOAD, high = QUIC_DEFAULT_QUEUE_HIGH, low;
  guint64 streams = QUIC_DEFAULT_STREAMS, udp_payload = QUIC_DEFAULT_UDP_PAYLOAD;
  guint64 buffer = QUIC_DEFAULT_SOCKET_BUFFER;
  gboolean gso = TRUE;

  if ((connect != NULL
       && !canopy_config_node_get_uint (connect, "timeout-ms", 1, 3600000, 10000, &timeout, error))
      || (idle != NULL
          && !canopy_config_node_get_uint (idle, "timeout-s", 1, 86400, 60, &idle_s, error))
      || (limits != NULL
          && (!canopy_config_node_get_uint (limits, "max-header", 64,
                                            CANOPY_TRANSPORT_MAX_HEADER_SIZE,
                                            CANOPY_TRANSPORT_MAX_HEADER_SIZE, &max_header, error)
              || !canopy_config_node_get_uint (limits, "max-payload", 0, G_MAXSSIZE,
                                               QUIC_DEFAULT_MAX_PAYLOAD, &max_payload, error)
              || !canopy_config_node_get_uint (limits, "send-queue-high", 4096, G_MAXSSIZE,
                                               QUIC_DEFAULT_QUEUE_HIGH, &high, error)
              || !canopy_config_node_get_uint (limits, "max-streams", 1, 1024,
                                               QUIC_DEFAULT_STREAMS, &streams, error)))
      || (udp != NULL
          && (!canopy_config_node_get_uint (udp, "max-payload", 1200,
                                            NGTCP2_DEFAULT_MAX_RECV_UDP_PAYLOAD_SIZE,
                                            QUIC_DEFAULT_UDP_PAYLOAD, &udp_payload, error)
              || !canopy_config_node_get_uint (udp, "socket-buffer", 65536, G_MAXINT,
                                               QUIC_DEFAULT_SOCKET_BUFFER, &buffer, error)
              || !canopy_config_node_get_boolean (udp, "gso", TRUE, &gso, error))))
    return FALSE;
  low = high / 2;
  if (limits != NULL
      && !canopy_config_node_get_uint (limits, "send-queue-low", 0, high, high / 2, &low, error))
    return FALSE;

  transport->connect_timeout_ms = (guint) timeout;
  transport->idle_timeout_s = (guint) idle_s;
  transport->max_header = (gsize) max_header;
  transport->max_payload = (gsize) max_payload;
  transport->queue_high = (gsize) high;
  transport->queue_low = (gsize) low;
  transport->max_streams = (guint) streams;
  transport->udp_payload = (gsize) udp_payload;
  transport->socket_buffer = (gsize) buffer;
  transport->gso = gso;
  return TRUE;
}

static gboolean
quic_transport_setup_tls (QuicTransport *transport, GError **error)
{
  guint8 psk[CANOPY_TRANSPORT_SECRET_SIZE];
  gnutls_datum_t key = { psk, sizeof psk };
  int rc;

  if (!canopy_key_derive (transport->secret, sizeof transport->secret, QUIC_PSK_LABEL,
                          transport->device_id, strlen (transport->device_id), psk, sizeof psk,
                          error))
    return FALSE;
  rc = gnutls_priority_init (&transport->priority, QUIC_PRIORITY, NULL);
  if (rc == 0)
    rc = gnutls_psk_allocate_server_credentials (&transport->server_creds);
  if (rc == 0)
    {
      gnutls_psk_set_server_credentials_function2 (transport->server_creds, quic_psk_server_key);
      rc = gnutls_psk_allocate_client_credentials (&transport->client_creds);
    }
  if (rc == 0)
    rc = gnutls_psk_set_client_credentials (transport->client_creds, transport->device_id, &key,
                                            GNUTLS_PSK_KEY_RAW);
  gnutls_memset (psk, 0, sizeof psk);
  if (rc != 0)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot set up TLS with a pre-shared key: %s."), gnutls_strerror (rc));
      return FALSE;
    }
  return TRUE;
}

static gboolean
quic_transport_setup_timer (QuicTransport *transport, GError **error)
{
  transport->timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (transport->timer_fd < 0)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot create a timer: %s."), g_strerror (errno));
      return FALSE;
    }
  return canopy_watch_set_add (transport->watches, transport->timer_fd, G_IO_IN,
                               quic_timer_on_ready, transport, NULL, error);
}

static void quic_transport_free (gpointer instance);

static gpointer
quic_transport_new (const CanopyConfigNode *element, const CanopyTransportCredentials *creds,
                    GMainContext *context, const CanopyTransportEvents *events,
                    gpointer user_data, GError **error)
{
  QuicTransport *transport;

  g_return_val_if_fail (creds != NULL && creds->device_id != NULL, NULL);
  g_return_val_if_fail (events != NULL && events->incoming != NULL && events->message != NULL
                          && events->drained != NULL && events->closed != NULL, NULL);

  if (!quic_id_is_valid ((const guint8 *) creds->device_id, strlen (creds->device_id)))
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("The device ID “%s” cannot be used as a TLS identity: it must be 1 to "
                     "255 printable characters without spaces."), creds->device_id);
      return NULL;
    }

  transport = g_new0 (QuicTransport, 1);
  transport->context = g_main_context_ref (context);
  transport->events = events;
  transport->user_data = user_data;
  transport->element = element;
  transport->device_id = g_strdup (creds->device_id);
  memcpy (transport->secret, creds->secret, sizeof transport->secret);
  transport->listeners = g_ptr_array_new_with_free_func (quic_listener_free);
  transport->connections = g_hash_table_new_full (NULL, NULL, quic_conn_unref, NULL);
  /* Keys belong to the connections' lists. */
  transport->cids = g_hash_table_new (quic_cid_hash, quic_cid_equal);
  transport->resolving = g_ptr_array_new ();
  transport->dirty = g_ptr_array_new_with_free_func (quic_conn_unref);
  transport->timers = g_sequence_new (NULL);
  transport->timer_fd = -1;
  transport->timer_armed = G_MAXINT64;

  if (!quic_transport_configure (transport, element, error)
      || !quic_transport_setup_tls (transport, error)
      || (transport->watches = canopy_watch_set_new (context, error)) == NULL
      || !quic_transport_setup_timer (transport, error))
    {
      quic_transport_free (transport);
      return NULL;
    }
  transport->rx_buffer = g_malloc (QUIC_RX_BUFFER_SIZE);
  /* A batch of up to 64 KiB, and room for one more packet after it. */
  transport->tx_buffer_size = QUIC_GSO_MAX_BYTES + transport->udp_payload;
  transport->tx_buffer = g_malloc (transport->tx_buffer_size);
  return transport;
}

static void
quic_transport_free (gpointer instance)
{
  QuicTransport *transport = instance;
  GHashTableIter iter;
  gpointer key;
  g_autoptr (GPtrArray) conns = g_ptr_array_new_with_free_func (quic_conn_unref);

  if (transport == NULL)
    return;
  /* Pending connects learn they were cancelled; open ones end silently. */
  g_hash_table_iter_init (&iter, transport->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, quic_conn_ref (key));
  for (guint i = 0; i < conns->len; i++)
    {
      QuicConnection *conn = conns->pdata[i];
      GTask *task = g_steal_pointer (&conn->connect_task);
      quic_conn_close_with_app_code (conn, QUIC_APP_CLOSED);
      if (task != NULL)
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   _("The transport was shut down before the connection was "
                                     "established."));
          g_object_unref (task);
        }
    }
  g_ptr_array_set_size (conns, 0);
  for (guint i = 0; i < transport->resolving->len; i++)
    {
      QuicResolve *resolve = transport->resolving->pdata[i];
      resolve->transport = NULL;
      g_task_return_new_error (resolve->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The transport was shut down before the connection was "
                                 "established."));
    }
  g_clear_pointer (&transport->resolving, g_ptr_array_unref);
  g_clear_pointer (&transport->dirty, g_ptr_array_unref);
  g_clear_pointer (&transport->listeners, g_ptr_array_unref);
  g_clear_pointer (&transport->connections, g_hash_table_unref);
  g_clear_pointer (&transport->cids, g_hash_table_unref);
  g_clear_pointer (&transport->watches, canopy_watch_set_free);
  if (transport->timer_fd >= 0)
    close (transport->timer_fd);
  g_clear_pointer (&transport->timers, g_sequence_free);
  if (transport->priority != NULL)
    gnutls_priority_deinit (transport->priority);
  if (transport->server_creds != NULL)
    gnutls_psk_free_server_credentials (transport->server_creds);
  if (transport->client_creds != NULL)
    gnutls_psk_free_client_credentials (transport->client_creds);
  gnutls_memset (transport->secret, 0, sizeof transport->secret);
  g_main_context_unref (transport->context);
  g_free (transport->rx_buffer);
  g_free (transport->tx_buffer);
  g_free (transport->device_id);
  g_free (transport);
}

const CanopyTransportOps canopy_quic_transport_ops = {
  .new = quic_transport_new,
  .listen = quic_transport_listen,
  .get_listen_addresses = quic_transport_get_listen_addresses,
  .connect_async = quic_transport_connect_async,
  .connect_finish = quic_transport_connect_finish,
  .send = quic_transport_send,
  .get_queued_bytes = quic_conn_get_queued_bytes,
  .get_peer_id = quic_conn_get_peer_id,
  .get_peer_address = quic_conn_get_peer_address,
  .close = quic_transport_close,
  .free = quic_transport_free,
};

const char canopy_quic_transport_schema[] =
  "<element name='transport' xmlns='http://relaxng.org/ns/structure/1.0'"
  "         datatypeLibrary='http://www.w3.org/2001/XMLSchema-datatypes'>"
  "  <attribute name='plugin'><value>quic</value></attribute>"
  "  <interleave>"
  "    <zeroOrMore><element name='listen'>"
  "      <optional><attribute name='address'><text/></attribute></optional>"
  "      <optional><attribute name='port'><data type='unsignedShort'/></attribute></optional>"
  "    </element></zeroOrMore>"
  "    <optional><element name='connect'>"
  "      <optional><attribute name='timeout-ms'><data type='unsignedInt'/></attribute></optional>"
  "    </element></optional>"
  "    <optional><element name='idle'>"
  "      <optional><attribute name='timeout-s'><data type='unsignedInt'/></attribute></optional>"
  "    </element></optional>"
  "    <optional><element name='limits'>"
  "      <optional><attribute name='max-header'><data type='unsignedInt'/></attribute></optional>"
  "      <optional><attribute name='max-payload'><data type='unsignedLong'/></attribute></optional>"
  "      <optional><attribute name='send-queue-high'><data type='unsignedLong'/></attribute></optional>"
  "      <optional><attribute name='send-queue-low'><data type='unsignedLong'/></attribute></optional>"
  "      <optional><attribute name='max-streams'><data type='unsignedInt'/></attribute></optional>"
  "    </element></optional>"
  "    <optional><element name='udp'>"
  "      <optional><attribute name='max-payload'><data type='unsignedShort'/></attribute></optional>"
  "      <optional><attribute name='socket-buffer'><data type='unsignedInt'/></attribute></optional>"
  "      <optional><attribute name='gso'><data type='boolean'/></attribute></optional>"
  "    </element></optional>"
  "  </interleave>"
  "</element>";
