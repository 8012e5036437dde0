/* TCP transport: GSockets watched through one epoll set, GnuTLS TLS 1.3 with
 * an external PSK per client identity, and length-checked message frames. */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <glib/gi18n-lib.h>
#include <gnutls/gnutls.h>

#include "plugins/transport-tcp/tcp-transport.h"

/* The PSK for identity I is HKDF(transport secret, this label, I), so the
 * server can compute it for whatever device ID a client presents, and a
 * client cannot pose as another device without the shared key. */
#define TCP_PSK_LABEL "canopy tcp psk v1"

/* Frame: magic "CNPY", version, kind, two reserved zero bytes, header
 * length (u32), payload length (u64), all big-endian; checked before any
 * allocation. */
#define TCP_FRAME_MAGIC 0x434e5059u
#define TCP_FRAME_VERSION 1
#define TCP_FRAME_SIZE 20
#define TCP_FRAME_MESSAGE 0
#define TCP_FRAME_HELLO 1

/* TLS's largest record: one gnutls_record_send() call per record. */
#define TCP_RECORD_SIZE 16384
#define TCP_MAX_ID_LENGTH 255

/* GnuTLS asks the socket for one record at a time (16 KiB); reading
 * through a buffer takes many records per system call instead, and
 * likewise records are gathered before they are written. A buffer starts
 * small and doubles whenever one system call fills it, so only
 * connections that move bulk data grow to the maximum (the benchmark
 * shows 4 MiB reads and 1 MiB writes are where throughput levels off). */
#define TCP_BUFFER_INITIAL_SIZE (64 * 1024)
#define TCP_READ_BUFFER_MAX (4 * 1024 * 1024)
#define TCP_WRITE_BUFFER_MAX (1024 * 1024)

#define TCP_DEFAULT_MAX_PAYLOAD (64u * 1024 * 1024)
#define TCP_DEFAULT_QUEUE_HIGH (8u * 1024 * 1024)

/* TLS 1.3 only; ECDHE with the PSK for forward secrecy; AES-GCM first as
 * it is hardware-accelerated on the machines agents run on. */
#define TCP_PRIORITY                                                           \
  "NONE:+VERS-TLS1.3:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AEAD:"      \
  "+ECDHE-PSK:+PSK:+GROUP-X25519:+GROUP-SECP256R1:+SIGN-ALL:+COMP-NULL"

typedef struct _TcpTransport TcpTransport;

typedef enum {
  TCP_CONN_CONNECTING, /* client: TCP connect in progress */
  TCP_CONN_HANDSHAKE,  /* TLS handshake */
  TCP_CONN_HELLO,      /* client: waiting for the server's device ID */
  TCP_CONN_OPEN,
  TCP_CONN_DEAD,
} TcpConnState;

typedef struct {
  guint8 *prefix; /* frame header + message header (small, copied) */
  gsize prefix_len;
  GBytes *payload; /* never copied: often a slice of a mapped file */
  gsize sent;
} TcpOutMessage;

typedef struct {
  CanopyTransportConnection parent;
  gint ref_count;
  TcpTransport *transport;
  GSocket *socket;
  int fd;
  gnutls_session_t session;
  gboolean is_client;
  TcpConnState state;
  char *peer_id;
  GSocketAddress *peer_address;
  GIOCondition watching;
  GSource *timeout;
  GTask *connect_task;
  GCancellable *cancellable;
  gulong cancel_id;

  GQueue out;
  gsize queued;
  gboolean want_drained;

  guint8 *rbuf; /* bytes read from the socket, not yet given to GnuTLS */
  gsize rbuf_start;
  gsize rbuf_end;
  gsize rbuf_size;
  guint8 *wbuf; /* records GnuTLS produced, not yet taken by the kernel */
  gsize wbuf_start;
  gsize wbuf_end;
  gsize wbuf_size;

  guint8 frame[TCP_FRAME_SIZE];
  gsize frame_got;
  guint8 kind;
  guint8 *in_header;
  gsize in_header_len;
  gsize in_header_got;
  guint8 *in_payload;
  gsize in_payload_len;
  gsize in_payload_got;
} TcpConnection;

typedef struct {
  TcpTransport *transport;
  GSocket *socket;
  GSource *backoff;   /* (nullable) while the listener rests after running out of descriptors */
  gboolean exhausted; /* out of descriptors since the last accepted connection */
} TcpListener;

/* How long a listener out of file descriptors stops accepting: the
 * pending connection stays ready, so accepting again at once would spin. */
#define TCP_ACCEPT_BACKOFF_MS 100

struct _TcpTransport {
  GMainContext *context;
  const CanopyTransportEvents *events;
  gpointer user_data;
  char *device_id;
  guint8 secret[CANOPY_TRANSPORT_SECRET_SIZE];
  const CanopyConfigNode *element;

  guint connect_timeout_ms;
  guint keepalive_idle_s;
  gsize max_header;
  gsize max_payload;
  gsize queue_high;
  gsize queue_low;

  CanopyWatchSet *watches;
  GPtrArray *listeners;   /* TcpListener */
  GHashTable *connections; /* TcpConnection -> itself (holds a reference) */
  GPtrArray *resolving;    /* TcpResolve, owned by their resolver callback */
  gnutls_priority_t priority;
  gnutls_psk_server_credentials_t server_creds;
  gnutls_psk_client_credentials_t client_creds;
};

static void tcp_conn_update_watch (TcpConnection *conn);

/* Messages not yet encrypted plus records not yet taken by the kernel:
 * what back-pressure is measured on. */
static gsize
tcp_conn_queued_total (TcpConnection *conn)
{
  return conn->queued + (conn->wbuf_end - conn->wbuf_start);
}

static gboolean tcp_conn_write_out (TcpConnection *conn);
static void tcp_conn_receive (TcpConnection *conn);
static gboolean tcp_conn_on_ready (int fd, GIOCondition condition, gpointer user_data);

/* --- connections: lifetime ------------------------------------------------ */

static TcpConnection *
tcp_conn_ref (TcpConnection *conn)
{
  g_atomic_int_inc (&conn->ref_count);
  return conn;
}

static void
tcp_out_message_free (TcpOutMessage *msg)
{
  g_free (msg->prefix);
  g_clear_pointer (&msg->payload, g_bytes_unref);
  g_free (msg);
}

static void
tcp_conn_unref (gpointer data)
{
  TcpConnection *conn = data;
  if (!g_atomic_int_dec_and_test (&conn->ref_count))
    return;
  g_queue_clear_full (&conn->out, (GDestroyNotify) tcp_out_message_free);
  if (conn->session != NULL)
    gnutls_deinit (conn->session);
  g_clear_object (&conn->socket);
  g_clear_object (&conn->peer_address);
  g_clear_object (&conn->connect_task);
  g_clear_object (&conn->cancellable);
  g_free (conn->peer_id);
  g_free (conn->in_header);
  g_free (conn->in_payload);
  g_free (conn->rbuf);
  g_free (conn->wbuf);
  g_free (conn);
}

/* Stops all I/O on @conn and drops the transport's reference; events stop.
 * @orderly sends a TLS close_notify first (best effort, never blocks). */
static void
tcp_conn_destroy (TcpConnection *conn, gboolean orderly)
{
  gboolean was_open = conn->state == TCP_CONN_OPEN;

  if (conn->state == TCP_CONN_DEAD)
    return;
  conn->state = TCP_CONN_DEAD;
  if (conn->timeout != NULL)
    {
      g_source_destroy (conn->timeout);
      g_clear_pointer (&conn->timeout, g_source_unref);
    }
  if (conn->cancel_id != 0)
    g_cancellable_disconnect (conn->cancellable, conn->cancel_id);
  conn->cancel_id = 0;
  if (conn->watching != 0)
    canopy_watch_set_remove (conn->transport->watches, conn->fd);
  conn->watching = 0;
  if (orderly && was_open && conn->session != NULL)
    {
      gnutls_bye (conn->session, GNUTLS_SHUT_WR);
      tcp_conn_write_out (conn);
    }
  if (conn->socket != NULL)
    g_socket_close (conn->socket, NULL);
  g_hash_table_remove (conn->transport->connections, conn);
}

/* Reports @error for @conn the way its state calls for (closed event,
 * connect failure or rejected event), then destroys it. Takes @error. */
static void
tcp_conn_fail (TcpConnection *conn, GError *error)
{
  TcpTransport *transport = conn->transport;
  TcpConnState state = conn->state;
  GTask *task;

  if (state == TCP_CONN_DEAD)
    {
      g_error_free (error);
      return;
    }
  tcp_conn_ref (conn);
  task = g_steal_pointer (&conn->connect_task);
  tcp_conn_destroy (conn, FALSE);
  if (state == TCP_CONN_OPEN)
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
  tcp_conn_unref (conn);
}

static char *
tcp_conn_describe (TcpConnection *conn)
{
  if (conn->peer_id != NULL)
    return g_strdup (conn->peer_id);
  if (conn->peer_address != NULL)
    return g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (conn->peer_address));
  return g_strdup ("?");
}

static void
tcp_conn_fail_protocol (TcpConnection *conn, const char *what)
{
  g_autofree char *peer = tcp_conn_describe (conn);
  GError *error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_PROTOCOL,
                               _("Peer “%s” sent a malformed frame (%s); the connection "
                                 "was dropped."), peer, what);
  /* Logged by the transport's user, with a rate limit (canopy_transport_new). */
  tcp_conn_fail (conn, error);
}

static void
tcp_conn_fail_closed (TcpConnection *conn, const char *reason)
{
  g_autofree char *peer = tcp_conn_describe (conn);
  gboolean mid_message = conn->frame_got > 0;
  GError *error;
  if (mid_message)
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                         _("The connection to “%s” ended in the middle of a message (%s)."),
                         peer, reason);
  else
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                         _("The connection to “%s” was closed (%s)."), peer, reason);
  tcp_conn_fail (conn, error);
}

/* A handshake failure that means the two ends hold different shared keys.
 * TLS 1.3 PSK: the server cannot verify the client's binder, and the
 * client receives the server's alert about it. */
static gboolean
tcp_is_key_mismatch (TcpConnection *conn, int rc)
{
  if (conn->is_client)
    {
      gnutls_alert_description_t alert;
      if (rc != GNUTLS_E_FATAL_ALERT_RECEIVED)
        return FALSE;
      alert = gnutls_alert_get (conn->session);
      return alert == GNUTLS_A_DECRYPT_ERROR || alert == GNUTLS_A_ILLEGAL_PARAMETER
             || alert == GNUTLS_A_HANDSHAKE_FAILURE || alert == GNUTLS_A_BAD_RECORD_MAC
             || alert == GNUTLS_A_UNKNOWN_PSK_IDENTITY || alert == GNUTLS_A_INSUFFICIENT_SECURITY;
    }
  /* GnuTLS reports a PSK binder that does not verify as an illegal
   * parameter. */
  return rc == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER || rc == GNUTLS_E_DECRYPTION_FAILED
         || rc == GNUTLS_E_INSUFFICIENT_CREDENTIALS;
}

static void
tcp_conn_fail_handshake (TcpConnection *conn, int rc)
{
  g_autofree char *peer = tcp_conn_describe (conn);
  GError *error;
  if (tcp_is_key_mismatch (conn, rc))
    {
      error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_KEY_MISMATCH,
                           _("Key mismatch with “%s”: the peer does not hold the same shared "
                             "key. Check that both ends were given the current shared key."),
                           peer);
      /* Said plainly in the log of both ends, as admins look there first;
       * an incoming one is logged by canopy_transport_new's relay, with a
       * rate limit, as anyone can cause it at will. */
      if (conn->is_client)
        g_message ("%s", error->message);
    }
  else if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PUSH_ERROR
           || rc == GNUTLS_E_PULL_ERROR)
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                         _("The connection to “%s” closed during the TLS handshake (%s)."),
                         peer, gnutls_strerror (rc));
  else
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                         _("The TLS handshake with “%s” failed: %s."), peer, gnutls_strerror (rc));
  if (!conn->is_client)
    {
      gnutls_alert_send_appropriate (conn->session, rc);
      tcp_conn_write_out (conn);
    }
  tcp_conn_fail (conn, error);
}

static gboolean
tcp_conn_on_timeout (gpointer user_data)
{
  TcpConnection *conn = user_data;
  g_autofree char *peer = tcp_conn_describe (conn);

  g_clear_pointer (&conn->timeout, g_source_unref);
  tcp_conn_fail (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_TIMEOUT,
                                    _("Connecting to “%s” took longer than %u ms; check that "
                                      "the peer is running and reachable."),
                                    peer, conn->transport->connect_timeout_ms));
  return G_SOURCE_REMOVE;
}

static TcpConnection *
tcp_conn_new (TcpTransport *transport, GSocket *socket, gboolean is_client)
{
  TcpConnection *conn = g_new0 (TcpConnection, 1);
  conn->parent.ops = &canopy_tcp_transport_ops;
  conn->ref_count = 1;
  conn->transport = transport;
  conn->socket = socket;
  conn->fd = g_socket_get_fd (socket);
  conn->is_client = is_client;
  g_queue_init (&conn->out);
  g_hash_table_add (transport->connections, conn);

  conn->timeout = g_timeout_source_new (transport->connect_timeout_ms);
  g_source_set_callback (conn->timeout, tcp_conn_on_timeout, conn, NULL);
  g_source_attach (conn->timeout, transport->context);
  return conn;
}

static gboolean
tcp_conn_watch (TcpConnection *conn, GIOCondition events, GError **error)
{
  if (!canopy_watch_set_add (conn->transport->watches, conn->fd, events, tcp_conn_on_ready,
                             tcp_conn_ref (conn), tcp_conn_unref, error))
    return FALSE;
  conn->watching = events;
  return TRUE;
}

static void
tcp_socket_tune (TcpTransport *transport, GSocket *socket)
{
  int fd = g_socket_get_fd (socket);
  int one = 1;
  g_socket_set_blocking (socket, FALSE);
  setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (transport->keepalive_idle_s > 0)
    {
      int idle = (int) transport->keepalive_idle_s;
      g_socket_set_keepalive (socket, TRUE);
      setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    }
}

/* --- TLS ------------------------------------------------------------------ */

static int
tcp_psk_server_key (gnutls_session_t session, const gnutls_datum_t *identity, gnutls_datum_t *key)
{
  TcpConnection *conn = gnutls_session_get_ptr (session);
  if (identity->size == 0 || identity->size > TCP_MAX_ID_LENGTH)
    return -1;
  for (unsigned i = 0; i < identity->size; i++)
    if (identity->data[i] <= ' ' || identity->data[i] >= 0x7f)
      return -1;

  key->data = gnutls_malloc (CANOPY_TRANSPORT_SECRET_SIZE);
  key->size = CANOPY_TRANSPORT_SECRET_SIZE;
  if (key->data == NULL
      || !canopy_key_derive (conn->transport->secret, sizeof conn->transport->secret,
                             TCP_PSK_LABEL, identity->data, identity->size, key->data,
                             key->size, NULL))
    return -1;
  return 0;
}

static ssize_t
tcp_conn_pull (gnutls_transport_ptr_t ptr, void *data, size_t len)
{
  TcpConnection *conn = ptr;
  gsize n;

  if (conn->rbuf_start == conn->rbuf_end)
    {
      ssize_t got;
      if (conn->rbuf == NULL)
        {
          conn->rbuf_size = TCP_BUFFER_INITIAL_SIZE;
          conn->rbuf = g_malloc (conn->rbuf_size);
        }
      got = recv (conn->fd, conn->rbuf, conn->rbuf_size, 0);
      if (got <= 0)
        {
          if (got < 0)
            gnutls_transport_set_errno (conn->session, errno);
          return got;
        }
      conn->rbuf_start = 0;
      conn->rbuf_end = (gsize) got;
      if (conn->rbuf_end == conn->rbuf_size && conn->rbuf_size < TCP_READ_BUFFER_MAX)
        {
          conn->rbuf_size *= 2;
          conn->rbuf = g_realloc (conn->rbuf, conn->rbuf_size);
        }
    }
  n = MIN (len, conn->rbuf_end - conn->rbuf_start);
  memcpy (data, conn->rbuf + conn->rbuf_start, n);
  conn->rbuf_start += n;
  return (ssize_t) n;
}

/* Hands buffered records to the kernel until it takes no more.
 * Returns: FALSE on a socket error (errno says which), TRUE otherwise. */
static gboolean
tcp_conn_write_out (TcpConnection *conn)
{
  while (conn->wbuf_start < conn->wbuf_end)
    {
      /* MSG_NOSIGNAL: a vanished peer is an error to report, not SIGPIPE. */
      ssize_t n = send (conn->fd, conn->wbuf + conn->wbuf_start,
                        conn->wbuf_end - conn->wbuf_start, MSG_NOSIGNAL);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return errno == EAGAIN || errno == EWOULDBLOCK;
        }
      conn->wbuf_start += (gsize) n;
    }
  conn->wbuf_start = conn->wbuf_end = 0;
  return TRUE;
}

static gboolean
tcp_conn_has_unwritten (TcpConnection *conn)
{
  return conn->wbuf_start < conn->wbuf_end;
}

static ssize_t
tcp_conn_push (gnutls_transport_ptr_t ptr, const giovec_t *iov, int iovcnt)
{
  TcpConnection *conn = ptr;
  gsize total = 0;

  for (int i = 0; i < iovcnt; i++)
    total += iov[i].iov_len;
  if (conn->wbuf == NULL)
    {
      conn->wbuf_size = TCP_BUFFER_INITIAL_SIZE;
      conn->wbuf = g_malloc (conn->wbuf_size);
    }
  while (conn->wbuf_end + total > conn->wbuf_size && conn->wbuf_size < TCP_WRITE_BUFFER_MAX)
    {
      conn->wbuf_size *= 2;
      conn->wbuf = g_realloc (conn->wbuf, conn->wbuf_size);
    }
  if (conn->wbuf_end + total > conn->wbuf_size)
    {
      if (!tcp_conn_write_out (conn))
        {
          gnutls_transport_set_errno (conn->session, errno);
          return -1;
        }
      if (conn->wbuf_start > 0)
        {
          memmove (conn->wbuf, conn->wbuf + conn->wbuf_start, conn->wbuf_end - conn->wbuf_start);
          conn->wbuf_end -= conn->wbuf_start;
          conn->wbuf_start = 0;
        }
      if (conn->wbuf_end + total > conn->wbuf_size)
        {
          gnutls_transport_set_errno (conn->session, EAGAIN);
          return -1;
        }
    }
  for (int i = 0; i < iovcnt; i++)
    {
      memcpy (conn->wbuf + conn->wbuf_end, iov[i].iov_base, iov[i].iov_len);
      conn->wbuf_end += iov[i].iov_len;
    }
  return (ssize_t) total;
}

static int
tcp_conn_pull_timeout (gnutls_transport_ptr_t ptr, unsigned int ms)
{
  TcpConnection *conn = ptr;
  struct pollfd pfd = { .fd = conn->fd, .events = POLLIN };

  if (conn->rbuf_start < conn->rbuf_end)
    return 1;
  return poll (&pfd, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int) ms);
}

static gboolean
tcp_conn_start_tls (TcpConnection *conn, GError **error)
{
  TcpTransport *transport = conn->transport;
  /* No session tickets: connections are long-lived and never resumed. */
  unsigned flags = (conn->is_client ? GNUTLS_CLIENT : GNUTLS_SERVER) | GNUTLS_NONBLOCK
                   | GNUTLS_NO_TICKETS;
  int rc = gnutls_init (&conn->session, flags);
  if (rc == 0)
    rc = gnutls_priority_set (conn->session, transport->priority);
  if (rc == 0)
    rc = gnutls_credentials_set (conn->session, GNUTLS_CRD_PSK,
                                 conn->is_client ? (void *) transport->client_creds
                                                 : (void *) transport->server_creds);
  if (rc != 0)
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot set up a TLS session: %s."), gnutls_strerror (rc));
      return FALSE;
    }
  gnutls_session_set_ptr (conn->session, conn);
  gnutls_transport_set_ptr (conn->session, conn);
  gnutls_transport_set_vec_push_function (conn->session, tcp_conn_push);
  gnutls_transport_set_pull_function (conn->session, tcp_conn_pull);
  gnutls_transport_set_pull_timeout_function (conn->session, tcp_conn_pull_timeout);
  gnutls_handshake_set_timeout (conn->session, 0);
  conn->state = TCP_CONN_HANDSHAKE;
  return TRUE;
}

static void
tcp_conn_queue_frame (TcpConnection *conn, guint8 kind, const void *header, gsize header_len,
                      GBytes *payload)
{
  gsize payload_len = payload != NULL ? g_bytes_get_size (payload) : 0;
  TcpOutMessage *msg = g_new0 (TcpOutMessage, 1);
  guint32 magic = GUINT32_TO_BE (TCP_FRAME_MAGIC);
  guint32 hlen = GUINT32_TO_BE ((guint32) header_len);
  guint64 plen = GUINT64_TO_BE ((guint64) payload_len);

  msg->prefix_len = TCP_FRAME_SIZE + header_len;
  msg->prefix = g_malloc (msg->prefix_len);
  memcpy (msg->prefix, &magic, 4);
  msg->prefix[4] = TCP_FRAME_VERSION;
  msg->prefix[5] = kind;
  msg->prefix[6] = 0;
  msg->prefix[7] = 0;
  memcpy (msg->prefix + 8, &hlen, 4);
  memcpy (msg->prefix + 12, &plen, 8);
  memcpy (msg->prefix + TCP_FRAME_SIZE, header, header_len);
  if (payload_len > 0)
    msg->payload = g_bytes_ref (payload);
  g_queue_push_tail (&conn->out, msg);
  conn->queued += msg->prefix_len + payload_len;
  if (tcp_conn_queued_total (conn) >= conn->transport->queue_high)
    conn->want_drained = TRUE;
  tcp_conn_update_watch (conn);
}

static void
tcp_conn_handshake (TcpConnection *conn)
{
  int rc = gnutls_handshake (conn->session);
  const char *identity;

  if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED && rc < 0)
    {
      tcp_conn_fail_handshake (conn, rc);
      return;
    }
  if (!tcp_conn_write_out (conn))
    {
      tcp_conn_fail_closed (conn, g_strerror (errno));
      return;
    }
  if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
    {
      tcp_conn_update_watch (conn);
      return;
    }

  g_debug ("TLS handshake with %s done: %s", conn->is_client ? "server" : "client",
           gnutls_cipher_get_name (gnutls_cipher_get (conn->session)));
  if (conn->is_client)
    {
      /* The server's ID arrives in its first frame, inside the channel
       * the PSK authenticated. It may already sit in the read buffer,
       * where the socket's readiness would never announce it. */
      conn->state = TCP_CONN_HELLO;
      tcp_conn_update_watch (conn);
      tcp_conn_receive (conn);
      return;
    }

  identity = gnutls_psk_server_get_username (conn->session);
  conn->peer_id = g_strdup (identity != NULL ? identity : "");
  conn->state = TCP_CONN_OPEN;
  g_source_destroy (conn->timeout);
  g_clear_pointer (&conn->timeout, g_source_unref);
  tcp_conn_queue_frame (conn, TCP_FRAME_HELLO, conn->transport->device_id,
                        strlen (conn->transport->device_id), NULL);
  conn->transport->events->incoming (&conn->parent, conn->transport->user_data);
  /* Data that came with the client's last handshake flight. */
  if (conn->state == TCP_CONN_OPEN)
    tcp_conn_receive (conn);
}

/* --- connections: I/O ----------------------------------------------------- */

static void
tcp_conn_update_watch (TcpConnection *conn)
{
  GIOCondition want;

  if (conn->state == TCP_CONN_DEAD || conn->watching == 0)
    return;
  if (conn->state == TCP_CONN_CONNECTING)
    want = G_IO_OUT;
  else if (conn->state == TCP_CONN_HANDSHAKE)
    want = gnutls_record_get_direction (conn->session) ? G_IO_OUT : G_IO_IN;
  else
    want = G_IO_IN | (conn->out.length > 0 ? G_IO_OUT : 0);
  if (tcp_conn_has_unwritten (conn))
    want |= G_IO_OUT;
  if (want != conn->watching
      && canopy_watch_set_modify (conn->transport->watches, conn->fd, want, NULL))
    conn->watching = want;
}

/* Writes queued messages until the kernel's buffer is full.
 * Returns: FALSE if @conn failed (and was reported). */
static gboolean
tcp_conn_flush (TcpConnection *conn)
{
  while (conn->out.length > 0)
    {
      TcpOutMessage *msg = g_queue_peek_head (&conn->out);
      const guint8 *data;
      gsize len, total;
      ssize_t n;

      if (msg->sent < msg->prefix_len)
        {
          data = msg->prefix + msg->sent;
          len = msg->prefix_len - msg->sent;
        }
      else
        {
          gsize payload_len;
          const guint8 *payload = g_bytes_get_data (msg->payload, &payload_len);
          data = payload + (msg->sent - msg->prefix_len);
          len = payload_len - (msg->sent - msg->prefix_len);
        }
      /* After GNUTLS_E_AGAIN the same call repeats with the same data,
       * which this computation guarantees. */
      n = gnutls_record_send (conn->session, data, MIN (len, TCP_RECORD_SIZE));
      if (n == GNUTLS_E_AGAIN)
        break;
      if (n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n < 0)
        {
          tcp_conn_fail_closed (conn, gnutls_strerror ((int) n));
          return FALSE;
        }
      msg->sent += (gsize) n;
      conn->queued -= (gsize) n;
      total = msg->prefix_len + (msg->payload != NULL ? g_bytes_get_size (msg->payload) : 0);
      if (msg->sent == total)
        tcp_out_message_free (g_queue_pop_head (&conn->out));
    }
  if (!tcp_conn_write_out (conn))
    {
      tcp_conn_fail_closed (conn, g_strerror (errno));
      return FALSE;
    }
  tcp_conn_update_watch (conn);

  if (conn->want_drained && tcp_conn_queued_total (conn) <= conn->transport->queue_low
      && conn->state == TCP_CONN_OPEN)
    {
      conn->want_drained = FALSE;
      conn->transport->events->drained (&conn->parent, conn->transport->user_data);
    }
  return conn->state != TCP_CONN_DEAD;
}

/* Checks a complete frame header and allocates exactly what it announces,
 * within the configured limits. */
static gboolean
tcp_conn_parse_frame (TcpConnection *conn)
{
  TcpTransport *transport = conn->transport;
  guint32 magic, hlen;
  guint64 plen;
  memcpy (&magic, conn->frame, 4);
  memcpy (&hlen, conn->frame + 8, 4);
  memcpy (&plen, conn->frame + 12, 8);
  magic = GUINT32_FROM_BE (magic);
  hlen = GUINT32_FROM_BE (hlen);
  plen = GUINT64_FROM_BE (plen);
  conn->kind = conn->frame[5];

  if (magic != TCP_FRAME_MAGIC)
    tcp_conn_fail_protocol (conn, "bad magic");
  else if (conn->frame[4] != TCP_FRAME_VERSION)
    tcp_conn_fail_protocol (conn, "unsupported version");
  else if (conn->frame[6] != 0 || conn->frame[7] != 0)
    tcp_conn_fail_protocol (conn, "reserved bits set");
  else if (conn->kind != TCP_FRAME_MESSAGE && conn->kind != TCP_FRAME_HELLO)
    tcp_conn_fail_protocol (conn, "unknown frame kind");
  else if ((conn->kind == TCP_FRAME_HELLO) != (conn->state == TCP_CONN_HELLO))
    tcp_conn_fail_protocol (conn, "unexpected frame kind");
  else if (hlen == 0 || hlen > transport->max_header)
    tcp_conn_fail_protocol (conn, "header length out of bounds");
  else if (plen > transport->max_payload || (conn->kind == TCP_FRAME_HELLO && plen != 0))
    tcp_conn_fail_protocol (conn, "payload length out of bounds");
  else
    {
      conn->in_header_len = hlen;
      conn->in_header = g_malloc (hlen);
      conn->in_header_got = 0;
      conn->in_payload_len = (gsize) plen;
      conn->in_payload = plen > 0 ? g_try_malloc ((gsize) plen) : NULL;
      conn->in_payload_got = 0;
      if (plen > 0 && conn->in_payload == NULL)
        {
          tcp_conn_fail_closed (conn, "out of memory");
          return FALSE;
        }
      return TRUE;
    }
  return FALSE;
}

static gboolean
tcp_id_is_valid (const guint8 *id, gsize len)
{
  if (len == 0 || len > TCP_MAX_ID_LENGTH)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (id[i] <= ' ' || id[i] >= 0x7f)
      return FALSE;
  return TRUE;
}

/* A whole frame arrived: the server's hello, or a message to deliver. */
static void
tcp_conn_complete_frame (TcpConnection *conn)
{
  TcpTransport *transport = conn->transport;
  g_autoptr (GBytes) header = g_bytes_new_take (g_steal_pointer (&conn->in_header),
                                                conn->in_header_len);
  g_autoptr (GBytes) payload = NULL;

  if (conn->in_payload_len > 0)
    payload = g_bytes_new_take (g_steal_pointer (&conn->in_payload), conn->in_payload_len);
  conn->frame_got = 0;

  if (conn->kind == TCP_FRAME_HELLO)
    {
      gsize len;
      const guint8 *id = g_bytes_get_data (header, &len);
      GTask *task;

      if (!tcp_id_is_valid (id, len))
        {
          tcp_conn_fail_protocol (conn, "invalid device ID");
          return;
        }
      conn->peer_id = g_strndup ((const char *) id, len);
      conn->state = TCP_CONN_OPEN;
      g_source_destroy (conn->timeout);
      g_clear_pointer (&conn->timeout, g_source_unref);
      task = g_steal_pointer (&conn->connect_task);
      g_task_return_pointer (task, conn, NULL);
      g_object_unref (task);
      return;
    }
  transport->events->message (&conn->parent, header, payload, transport->user_data);
}

/* Where the next received bytes go, and how many are still expected. */
static guint8 *
tcp_conn_read_target (TcpConnection *conn, gsize *want)
{
  if (conn->frame_got < TCP_FRAME_SIZE)
    {
      *want = TCP_FRAME_SIZE - conn->frame_got;
      return conn->frame + conn->frame_got;
    }
  if (conn->in_header_got < conn->in_header_len)
    {
      *want = conn->in_header_len - conn->in_header_got;
      return conn->in_header + conn->in_header_got;
    }
  *want = conn->in_payload_len - conn->in_payload_got;
  return conn->in_payload + conn->in_payload_got;
}

static void
tcp_conn_advance (TcpConnection *conn, gsize n)
{
  if (conn->frame_got < TCP_FRAME_SIZE)
    {
      conn->frame_got += n;
      if (conn->frame_got == TCP_FRAME_SIZE && !tcp_conn_parse_frame (conn))
        return;
    }
  else if (conn->in_header_got < conn->in_header_len)
    conn->in_header_got += n;
  else
    conn->in_payload_got += n;

  if (conn->frame_got == TCP_FRAME_SIZE && conn->in_header_got == conn->in_header_len
      && conn->in_payload_got == conn->in_payload_len)
    tcp_conn_complete_frame (conn);
}

/* Reads until the kernel has nothing more (GnuTLS may hold decrypted
 * bytes of a record, so stopping early could stall a level-triggered
 * watch). */
static void
tcp_conn_receive (TcpConnection *conn)
{
  while (conn->state == TCP_CONN_OPEN || conn->state == TCP_CONN_HELLO)
    {
      gsize want;
      guint8 *target = tcp_conn_read_target (conn, &want);
      ssize_t n = gnutls_record_recv (conn->session, target, want);
      if (n == GNUTLS_E_AGAIN)
        return;
      if (n == GNUTLS_E_INTERRUPTED)
        continue;
      if (n == 0)
        {
          tcp_conn_fail_closed (conn, _("the peer closed it"));
          return;
        }
      if (n < 0)
        {
          tcp_conn_fail_closed (conn, gnutls_strerror ((int) n));
          return;
        }
      tcp_conn_advance (conn, (gsize) n);
    }
}

static void
tcp_conn_finish_connect (TcpConnection *conn)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GError) tls_error = NULL;

  if (!g_socket_check_connect_result (conn->socket, &error))
    {
      g_autofree char *peer = tcp_conn_describe (conn);
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        tcp_conn_fail (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_REFUSED,
                                          _("Nothing accepts connections at “%s”; check the "
                                            "address and that the peer is running."), peer));
      else
        tcp_conn_fail (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                                          _("Cannot connect to “%s”: %s."), peer, error->message));
      return;
    }
  if (!tcp_conn_start_tls (conn, &tls_error))
    {
      tcp_conn_fail (conn, g_steal_pointer (&tls_error));
      return;
    }
  tcp_conn_handshake (conn);
}

static gboolean
tcp_conn_on_ready (int fd, GIOCondition condition, gpointer user_data)
{
  TcpConnection *conn = tcp_conn_ref (user_data);
  gboolean alive;

  (void) fd;
  (void) condition;
  switch (conn->state)
    {
    case TCP_CONN_CONNECTING:
      tcp_conn_finish_connect (conn);
      break;
    case TCP_CONN_HANDSHAKE:
      tcp_conn_handshake (conn);
      break;
    case TCP_CONN_HELLO:
    case TCP_CONN_OPEN:
      if ((conn->out.length > 0 || tcp_conn_has_unwritten (conn)) && !tcp_conn_flush (conn))
        break;
      tcp_conn_receive (conn);
      break;
    case TCP_CONN_DEAD:
      break;
    }
  alive = conn->state != TCP_CONN_DEAD;
  tcp_conn_unref (conn);
  return alive ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* --- listening ------------------------------------------------------------ */

static void
tcp_accept_one (TcpTransport *transport, GSocket *client)
{
  TcpConnection *conn;
  g_autoptr (GError) error = NULL;

  tcp_socket_tune (transport, client);
  conn = tcp_conn_new (transport, client, FALSE);
  conn->peer_address = g_socket_get_remote_address (client, NULL);
  if (!tcp_conn_start_tls (conn, &error) || !tcp_conn_watch (conn, G_IO_IN, &error))
    {
      g_message ("%s", error->message);
      tcp_conn_destroy (conn, FALSE);
      return;
    }
  tcp_conn_handshake (conn);
}

static gboolean tcp_listener_on_ready (int fd, GIOCondition condition, gpointer user_data);

static gboolean
tcp_listener_watch (TcpListener *listener, GError **error)
{
  return canopy_watch_set_add (listener->transport->watches, g_socket_get_fd (listener->socket),
                               G_IO_IN, tcp_listener_on_ready, listener, NULL, error);
}

static gboolean
tcp_listener_on_rested (gpointer user_data)
{
  TcpListener *listener = user_data;
  g_autoptr (GError) error = NULL;

  g_clear_pointer (&listener->backoff, g_source_unref);
  if (!tcp_listener_watch (listener, &error))
    g_warning (_("Cannot accept connections again: %s. Restart the service."), error->message);
  return G_SOURCE_REMOVE;
}

/* Out of file descriptors: the connection waiting in the backlog makes the
 * socket readable at once again, so the listener rests instead of spinning,
 * and the admin hears of it once per episode, not once per attempt. */
static void
tcp_listener_rest (TcpListener *listener, const GError *error)
{
  if (!listener->exhausted)
    g_message (_("Cannot accept a connection: %s. New connections wait until others close; "
                 "raise the open-files limit (LimitNOFILE=) if this recurs."),
               error->message);
  listener->exhausted = TRUE;
  canopy_watch_set_remove (listener->transport->watches, g_socket_get_fd (listener->socket));
  listener->backoff = g_timeout_source_new (TCP_ACCEPT_BACKOFF_MS);
  g_source_set_callback (listener->backoff, tcp_listener_on_rested, listener, NULL);
  g_source_attach (listener->backoff, listener->transport->context);
}

static gboolean
tcp_listener_on_ready (int fd, GIOCondition condition, gpointer user_data)
{
  TcpListener *listener = user_data;

  (void) fd;
  (void) condition;
  /* A bounded batch per wake-up keeps one busy listener from starving
   * established connections. */
  for (int i = 0; i < 64; i++)
    {
      g_autoptr (GError) error = NULL;
      GSocket *client = g_socket_accept (listener->socket, NULL, &error);

      if (client == NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES))
        {
          tcp_listener_rest (listener, error);
          return G_SOURCE_CONTINUE; /* already removed: the rest timer adds it back */
        }
      if (client == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            g_message (_("Cannot accept a connection: %s."), error->message);
          break;
        }
      if (listener->exhausted)
        g_message (_("Accepting connections again after running out of file descriptors."));
      listener->exhausted = FALSE;
      tcp_accept_one (listener->transport, client);
    }
  return G_SOURCE_CONTINUE;
}

static void
tcp_listener_free (gpointer data)
{
  TcpListener *listener = data;

  if (listener->backoff != NULL)
    g_source_destroy (listener->backoff);
  g_clear_pointer (&listener->backoff, g_source_unref);
  canopy_watch_set_remove (listener->transport->watches, g_socket_get_fd (listener->socket));
  g_socket_close (listener->socket, NULL);
  g_object_unref (listener->socket);
  g_free (listener);
}

static GSocket *
tcp_listen_socket (GInetAddress *inet, const char *host, guint16 port, GError **error)
{
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GSocket) socket = g_socket_new (g_inet_address_get_family (inet),
                                             G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  int one = 1;

  if (socket == NULL)
    return NULL;
  g_socket_set_blocking (socket, FALSE);
  /* "::" and "0.0.0.0" may both be listed; each binds its own family. */
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    setsockopt (g_socket_get_fd (socket), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  g_socket_set_listen_backlog (socket, 4096);
  if (!g_socket_bind (socket, address, TRUE, &local_error)
      || !g_socket_listen (socket, &local_error))
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot listen on address “%s” port %u: %s. Check that no other "
                     "program uses that port."), host, (guint) port, local_error->message);
      return NULL;
    }
  return g_steal_pointer (&socket);
}

static gboolean
tcp_listen_one (TcpTransport *transport, const CanopyConfigNode *node, GError **error)
{
  const char *host = canopy_config_node_get_attribute (node, "address");
  g_autoptr (GInetAddress) inet = NULL;
  TcpListener *listener;
  GSocket *socket;
  guint64 port;

  if (!canopy_config_node_get_uint (node, "port", 0, G_MAXUINT16, 7443, &port, error))
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
  socket = tcp_listen_socket (inet, host, (guint16) port, error);
  if (socket == NULL)
    return FALSE;

  listener = g_new0 (TcpListener, 1);
  listener->transport = transport;
  listener->socket = socket;
  if (!tcp_listener_watch (listener, error))
    {
      g_socket_close (listener->socket, NULL);
      g_object_unref (listener->socket);
      g_free (listener);
      return FALSE;
    }
  g_ptr_array_add (transport->listeners, listener);
  return TRUE;
}

static gboolean
tcp_transport_listen (gpointer instance, GError **error)
{
  TcpTransport *transport = instance;
  g_autoptr (GPtrArray) nodes = canopy_config_node_get_children (transport->element, "listen");
  for (guint i = 0; i < nodes->len; i++)
    if (!tcp_listen_one (transport, nodes->pdata[i], error))
      {
        g_ptr_array_set_size (transport->listeners, 0);
        return FALSE;
      }
  return TRUE;
}

static GPtrArray *
tcp_transport_get_listen_addresses (gpointer instance)
{
  TcpTransport *transport = instance;
  GPtrArray *addresses = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < transport->listeners->len; i++)
    {
      TcpListener *listener = transport->listeners->pdata[i];
      GSocketAddress *address = g_socket_get_local_address (listener->socket, NULL);
      if (address != NULL)
        g_ptr_array_add (addresses, address);
    }
  return addresses;
}

/* --- connecting ----------------------------------------------------------- */

static gboolean
tcp_conn_cancel_in_context (gpointer user_data)
{
  TcpConnection *conn = user_data;
  if (conn->state != TCP_CONN_DEAD && conn->connect_task != NULL)
    tcp_conn_fail (conn, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                      _("Connecting was cancelled.")));
  return G_SOURCE_REMOVE;
}

/* Runs on whichever thread cancels, possibly inside g_cancellable_connect();
 * the work is done later on the transport's own context. */
static void
tcp_conn_on_cancelled (GCancellable *cancellable, gpointer user_data)
{
  TcpConnection *conn = user_data;
  g_autoptr (GSource) idle = g_idle_source_new ();

  (void) cancellable;
  g_source_set_callback (idle, tcp_conn_cancel_in_context, tcp_conn_ref (conn), tcp_conn_unref);
  g_source_attach (idle, conn->transport->context);
}

static void
tcp_conn_begin_connect (TcpConnection *conn, GInetAddress *inet, guint16 port)
{
  g_autoptr (GError) error = NULL;

  conn->peer_address = g_inet_socket_address_new (inet, port);
  if (!g_socket_connect (conn->socket, conn->peer_address, NULL, &error)
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    {
      g_autofree char *peer = tcp_conn_describe (conn);
      int code = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
                   ? CANOPY_TRANSPORT_ERROR_REFUSED : CANOPY_TRANSPORT_ERROR_FAILED;
      tcp_conn_fail (conn, g_error_new (CANOPY_TRANSPORT_ERROR, code,
                                        _("Cannot connect to “%s”: %s."), peer, error->message));
      return;
    }
  if (!tcp_conn_watch (conn, G_IO_OUT, &error))
    tcp_conn_fail (conn, g_steal_pointer (&error));
}

/* Starts connecting to one address; takes @task. */
static void
tcp_connect_to (TcpTransport *transport, GTask *task, GInetAddress *inet, guint16 port)
{
  g_autoptr (GError) error = NULL;
  GCancellable *cancellable = g_task_get_cancellable (task);
  TcpConnection *conn;
  GSocket *socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, &error);

  if (socket == NULL)
    {
      g_task_return_new_error (task, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                               _("Cannot create a socket: %s."), error->message);
      g_object_unref (task);
      return;
    }
  tcp_socket_tune (transport, socket);
  conn = tcp_conn_new (transport, socket, TRUE);
  conn->state = TCP_CONN_CONNECTING;
  conn->connect_task = task;
  if (cancellable != NULL)
    {
      conn->cancellable = g_object_ref (cancellable);
      conn->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (tcp_conn_on_cancelled),
                                               conn, NULL);
    }
  tcp_conn_begin_connect (conn, inet, port);
}

/* A host name being resolved; the transport forgets it (and fails its
 * task) if it is freed first. */
typedef struct {
  TcpTransport *transport;
  GTask *task;
  char *host;
  guint16 port;
} TcpResolve;

static void
tcp_resolve_free (TcpResolve *resolve)
{
  g_clear_object (&resolve->task);
  g_free (resolve->host);
  g_free (resolve);
}

static void
tcp_on_resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  TcpResolve *resolve = user_data;
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
        tcp_connect_to (resolve->transport, g_steal_pointer (&resolve->task), addresses->data,
                        resolve->port);
    }
  g_resolver_free_addresses (addresses);
  tcp_resolve_free (resolve);
}

static void
tcp_transport_connect_async (gpointer instance, const char *host, guint16 port,
                             GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  TcpTransport *transport = instance;
  g_autoptr (GInetAddress) inet = g_inet_address_new_from_string (host);
  g_autoptr (GResolver) resolver = NULL;
  GTask *task;
  TcpResolve *resolve;

  /* The task, and the resolver's answer, complete on the transport's
   * context, not the caller's. */
  g_main_context_push_thread_default (transport->context);
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, tcp_transport_connect_async);
  g_task_set_check_cancellable (task, FALSE);
  if (inet != NULL)
    {
      g_main_context_pop_thread_default (transport->context);
      tcp_connect_to (transport, task, inet, port);
      return;
    }

  resolve = g_new0 (TcpResolve, 1);
  resolve->transport = transport;
  resolve->task = task;
  resolve->host = g_strdup (host);
  resolve->port = port;
  g_ptr_array_add (transport->resolving, resolve);
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, host, cancellable, tcp_on_resolved, resolve);
  g_main_context_pop_thread_default (transport->context);
}

static CanopyTransportConnection *
tcp_transport_connect_finish (gpointer instance, GAsyncResult *result, GError **error)
{
  (void) instance;
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* --- messages ------------------------------------------------------------- */

static gboolean
tcp_transport_send (CanopyTransportConnection *parent, GBytes *header, GBytes *payload,
                    GError **error)
{
  TcpConnection *conn = (TcpConnection *) parent;
  TcpTransport *transport = conn->transport;
  gsize header_len = g_bytes_get_size (header);
  gsize payload_len = payload != NULL ? g_bytes_get_size (payload) : 0;

  if (conn->state != TCP_CONN_OPEN)
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
  if (tcp_conn_queued_total (conn) >= transport->queue_high)
    {
      conn->want_drained = TRUE;
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_QUEUE_FULL,
                   _("The send queue to “%s” is full; wait until it drains."), conn->peer_id);
      return FALSE;
    }
  tcp_conn_queue_frame (conn, TCP_FRAME_MESSAGE, g_bytes_get_data (header, NULL), header_len,
                        payload);
  return TRUE;
}

static gsize
tcp_conn_get_queued_bytes (CanopyTransportConnection *parent)
{
  return tcp_conn_queued_total ((TcpConnection *) parent);
}

static const char *
tcp_conn_get_peer_id (CanopyTransportConnection *parent)
{
  return ((TcpConnection *) parent)->peer_id;
}

static GSocketAddress *
tcp_conn_get_peer_address (CanopyTransportConnection *parent)
{
  return ((TcpConnection *) parent)->peer_address;
}

static void
tcp_transport_close (CanopyTransportConnection *parent)
{
  TcpConnection *conn = (TcpConnection *) parent;
  tcp_conn_destroy (conn, TRUE);
}

/* --- instance ------------------------------------------------------------- */

static gboolean
tcp_transport_configure (TcpTransport *transport, const CanopyConfigNode *element, GError **error)
{
  const CanopyConfigNode *connect = canopy_config_node_get_child (element, "connect");
  const CanopyConfigNode *keepalive = canopy_config_node_get_child (element, "keepalive");
  const CanopyConfigNode *limits = canopy_config_node_get_child (element, "limits");
  guint64 timeout = 10000, idle = 60, max_header = CANOPY_TRANSPORT_MAX_HEADER_SIZE;
  guint64 max_payload = TCP_DEFAULT_MAX_PAYLOAD, high = TCP_DEFAULT_QUEUE_HIGH, low;

  if ((connect != NULL
       && !canopy_config_node_get_uint (connect, "timeout-ms", 1, 3600000, 10000, &timeout, error))
      || (keepalive != NULL
          && !canopy_config_node_get_uint (keepalive, "idle-s", 0, 86400, 60, &idle, error))
      || (limits != NULL
          && (!canopy_config_node_get_uint (limits, "max-header", 64,
                                            CANOPY_TRANSPORT_MAX_HEADER_SIZE,
                                            CANOPY_TRANSPORT_MAX_HEADER_SIZE, &max_header, error)
              || !canopy_config_node_get_uint (limits, "max-payload", 0, G_MAXSSIZE,
                                               TCP_DEFAULT_MAX_PAYLOAD, &max_payload, error)
              || !canopy_config_node_get_uint (limits, "send-queue-high", 4096, G_MAXSSIZE,
                                               TCP_DEFAULT_QUEUE_HIGH, &high, error))))
    return FALSE;
  low = high / 2;
  if (limits != NULL
      && !canopy_config_node_get_uint (limits, "send-queue-low", 0, high, high / 2, &low, error))
    return FALSE;

  transport->connect_timeout_ms = (guint) timeout;
  transport->keepalive_idle_s = (guint) idle;
  transport->max_header = (gsize) max_header;
  transport->max_payload = (gsize) max_payload;
  transport->queue_high = (gsize) high;
  transport->queue_low = (gsize) low;
  return TRUE;
}

static gboolean
tcp_transport_setup_tls (TcpTransport *transport, GError **error)
{
  guint8 psk[CANOPY_TRANSPORT_SECRET_SIZE];
  gnutls_datum_t key = { psk, sizeof psk };
  int rc;

  if (!canopy_key_derive (transport->secret, sizeof transport->secret, TCP_PSK_LABEL,
                          transport->device_id, strlen (transport->device_id), psk, sizeof psk,
                          error))
    return FALSE;
  rc = gnutls_priority_init (&transport->priority, TCP_PRIORITY, NULL);
  if (rc == 0)
    rc = gnutls_psk_allocate_server_credentials (&transport->server_creds);
  if (rc == 0)
    {
      gnutls_psk_set_server_credentials_function2 (transport->server_creds, tcp_psk_server_key);
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

static void tcp_transport_free (gpointer instance);

static gpointer
tcp_transport_new (const CanopyConfigNode *element, const CanopyTransportCredentials *creds,
                   GMainContext *context, const CanopyTransportEvents *events,
                   gpointer user_data, GError **error)
{
  TcpTransport *transport;

  g_return_val_if_fail (creds != NULL && creds->device_id != NULL, NULL);
  g_return_val_if_fail (events != NULL && events->incoming != NULL && events->message != NULL
                          && events->drained != NULL && events->closed != NULL, NULL);

  if (!tcp_id_is_valid ((const guint8 *) creds->device_id, strlen (creds->device_id)))
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("The device ID “%s” cannot be used as a TLS identity: it must be 1 to "
                     "255 printable characters without spaces."), creds->device_id);
      return NULL;
    }

  transport = g_new0 (TcpTransport, 1);
  transport->context = g_main_context_ref (context);
  transport->events = events;
  transport->user_data = user_data;
  transport->element = element;
  transport->device_id = g_strdup (creds->device_id);
  memcpy (transport->secret, creds->secret, sizeof transport->secret);
  transport->listeners = g_ptr_array_new_with_free_func (tcp_listener_free);
  transport->connections = g_hash_table_new_full (NULL, NULL, tcp_conn_unref, NULL);
  transport->resolving = g_ptr_array_new ();

  if (!tcp_transport_configure (transport, element, error)
      || !tcp_transport_setup_tls (transport, error)
      || (transport->watches = canopy_watch_set_new (context, error)) == NULL)
    {
      tcp_transport_free (transport);
      return NULL;
    }
  return transport;
}

static void
tcp_transport_free (gpointer instance)
{
  TcpTransport *transport = instance;
  GHashTableIter iter;
  gpointer key;
  g_autoptr (GPtrArray) conns = g_ptr_array_new_with_free_func (tcp_conn_unref);

  if (transport == NULL)
    return;
  /* Pending connects learn they were cancelled; open ones end silently. */
  g_hash_table_iter_init (&iter, transport->connections);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (conns, tcp_conn_ref (key));
  for (guint i = 0; i < conns->len; i++)
    {
      TcpConnection *conn = conns->pdata[i];
      GTask *task = g_steal_pointer (&conn->connect_task);
      tcp_conn_destroy (conn, TRUE);
      if (task != NULL)
        {
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   _("The transport was shut down before the connection was "
                                     "established."));
          g_object_unref (task);
        }
    }
  for (guint i = 0; i < transport->resolving->len; i++)
    {
      TcpResolve *resolve = transport->resolving->pdata[i];
      resolve->transport = NULL;
      g_task_return_new_error (resolve->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The transport was shut down before the connection was "
                                 "established."));
    }
  g_clear_pointer (&transport->resolving, g_ptr_array_unref);
  g_clear_pointer (&transport->listeners, g_ptr_array_unref);
  g_clear_pointer (&transport->connections, g_hash_table_unref);
  g_clear_pointer (&transport->watches, canopy_watch_set_free);
  if (transport->priority != NULL)
    gnutls_priority_deinit (transport->priority);
  if (transport->server_creds != NULL)
    gnutls_psk_free_server_credentials (transport->server_creds);
  if (transport->client_creds != NULL)
    gnutls_psk_free_client_credentials (transport->client_creds);
  gnutls_memset (transport->secret, 0, sizeof transport->secret);
  g_main_context_unref (transport->context);
  g_free (transport->device_id);
  g_free (transport);
}

const CanopyTransportOps canopy_tcp_transport_ops = {
  .new = tcp_transport_new,
  .listen = tcp_transport_listen,
  .get_listen_addresses = tcp_transport_get_listen_addresses,
  .connect_async = tcp_transport_connect_async,
  .connect_finish = tcp_transport_connect_finish,
  .send = tcp_transport_send,
  .get_queued_bytes = tcp_conn_get_queued_bytes,
  .get_peer_id = tcp_conn_get_peer_id,
  .get_peer_address = tcp_conn_get_peer_address,
  .close = tcp_transport_close,
  .free = tcp_transport_free,
};

const char canopy_tcp_transport_schema[] =
  "<element name='transport' xmlns='http://relaxng.org/ns/structure/1.0'"
  "         datatypeLibrary='http://www.w3.org/2001/XMLSchema-datatypes'>"
  "  <attribute name='plugin'><value>tcp</value></attribute>"
  "  <interleave>"
  "    <zeroOrMore><element name='listen'>"
  "      <optional><attribute name='address'><text/></attribute></optional>"
  "      <optional><attribute name='port'><data type='unsignedShort'/></attribute></optional>"
  "    </element></zeroOrMore>"
  "    <optional><element name='connect'>"
  "      <optional><attribute name='timeout-ms'><data type='unsignedInt'/></attribute></optional>"
  "    </element></optional>"
  "    <optional><element name='keepalive'>"
  "      <optional><attribute name='idle-s'><data type='unsignedInt'/></attribute></optional>"
  "    </element></optional>"
  "    <optional><element name='limits'>"
  "      <optional><attribute name='max-header'><data type='unsignedInt'/></attribute></optional>"
  "      <optional><attribute name='max-payload'><data type='unsignedLong'/></attribute></optional>"
  "      <optional><attribute name='send-queue-high'><data type='unsignedLong'/></attribute></optional>"
  "      <optional><attribute name='send-queue-low'><data type='unsignedLong'/></attribute></optional>"
  "    </element></optional>"
  "  </interleave>"
  "</element>";
