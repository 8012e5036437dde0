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

#include "plugins/transport-common/transport-common.h"
#include "plugins/transport-tcp/tcp-transport.h"

/* The PSK label: the TCP transport's keys are its own (see
 * canopy_transport_common_psk_key()). */
#define TCP_PSK_LABEL "canopy tcp psk v1"

/* TLS's largest record: one gnutls_record_send() call per record. */
#define TCP_RECORD_SIZE 16384

/* GnuTLS asks the socket for one record at a time (16 KiB); reading
 * through a buffer takes many records per system call instead, and
 * likewise records are gathered before they are written. A buffer starts
 * small and doubles whenever one system call fills it, so only
 * connections that move bulk data grow to the maximum (the benchmark
 * shows 4 MiB reads and 1 MiB writes are where throughput levels off). */
#define TCP_BUFFER_INITIAL_SIZE (64 * 1024)
#define TCP_READ_BUFFER_MAX (4 * 1024 * 1024)
#define TCP_WRITE_BUFFER_MAX (1024 * 1024)

/* In the middle of a large message (a chunk), the socket wakes the agent
 * only once this much has arrived, instead of for every 64 KiB the
 * network hands up: each wake-up is a poll, a context switch and a read. */
#define TCP_WAKE_BYTES (256 * 1024)

/* TLS 1.3 only; ECDHE with the PSK for forward secrecy; AES-GCM first as
 * it is hardware-accelerated on the machines agents run on. */
#define TCP_PRIORITY                                                           \
  "NONE:+VERS-TLS1.3:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:+AEAD:"      \
  "+ECDHE-PSK:+PSK:+GROUP-X25519:+GROUP-SECP256R1:+SIGN-ALL:+COMP-NULL"

typedef struct _TcpTransport TcpTransport;

typedef struct {
  CanopyTransportOutFrame frame;
  gsize sent;
} TcpOutMessage;

typedef struct {
  CanopyTransportCommonConn base;
  TcpTransport *transport; /* base.transport, as the TCP transport it is */
  GSocket *socket;
  int fd;
  gnutls_session_t session;
  GIOCondition watching;
  GSource *timeout;

  GQueue out;
  gsize queued;

  int rcvlowat;            /* SO_RCVLOWAT as last set */
  gboolean kernel_drained; /* the socket had nothing more this turn */
  gboolean woken;          /* a flush is due on the watch set's next turn */
  guint8 *rbuf; /* bytes read from the socket, not yet given to GnuTLS */
  gsize rbuf_start;
  gsize rbuf_end;
  gsize rbuf_size;
  guint8 *wbuf; /* records GnuTLS produced, not yet taken by the kernel */
  gsize wbuf_start;
  gsize wbuf_end;
  gsize wbuf_size;

  CanopyTransportInFrame in;
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
  CanopyTransportCommon base;
  guint keepalive_idle_s;
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

static void
tcp_out_message_free (TcpOutMessage *msg)
{
  canopy_transport_common_out_frame_clear (&msg->frame);
  g_free (msg);
}

static void
tcp_conn_finalize (CanopyTransportCommonConn *base)
{
  TcpConnection *conn = (TcpConnection *) base;

  g_queue_clear_full (&conn->out, (GDestroyNotify) tcp_out_message_free);
  if (conn->session != NULL)
    gnutls_deinit (conn->session);
  g_clear_object (&conn->socket);
  canopy_transport_common_in_frame_clear (&conn->in);
  g_free (conn->rbuf);
  g_free (conn->wbuf);
}

/* Stops all I/O on @conn and drops the transport's reference; events stop.
 * @orderly sends a TLS close_notify first (best effort, never blocks). */
static void
tcp_conn_destroy (TcpConnection *conn, gboolean orderly)
{
  gboolean was_open = conn->base.state == CANOPY_TRANSPORT_COMMON_OPEN;

  if (conn->base.state == CANOPY_TRANSPORT_COMMON_DEAD)
    return;
  conn->base.state = CANOPY_TRANSPORT_COMMON_DEAD;
  if (conn->timeout != NULL)
    {
      g_source_destroy (conn->timeout);
      g_clear_pointer (&conn->timeout, g_source_unref);
    }
  canopy_transport_common_conn_stop_cancel (&conn->base);
  if (conn->watching != 0)
    canopy_watch_set_remove (conn->transport->base.watches, conn->fd);
  conn->watching = 0;
  if (orderly && was_open && conn->session != NULL)
    {
      gnutls_bye (conn->session, GNUTLS_SHUT_WR);
      tcp_conn_write_out (conn);
    }
  if (conn->socket != NULL)
    g_socket_close (conn->socket, NULL);
  g_hash_table_remove (conn->transport->base.connections, conn);
}

/* A failure says no farewell: TLS has nothing to tell a peer that failed. */
static void
tcp_conn_destroy_with (CanopyTransportCommonConn *conn, gconstpointer farewell)
{
  (void) farewell;
  tcp_conn_destroy ((TcpConnection *) conn, FALSE);
}

static void
tcp_conn_close (CanopyTransportCommonConn *conn)
{
  tcp_conn_destroy ((TcpConnection *) conn, TRUE);
}

/* Reports @error for @conn, then destroys it. Takes @error. */
static void
tcp_conn_fail (TcpConnection *conn, GError *error)
{
  canopy_transport_common_conn_fail (&conn->base, error, NULL);
}

static void
tcp_conn_fail_any (CanopyTransportCommonConn *conn, GError *error)
{
  tcp_conn_fail ((TcpConnection *) conn, error);
}

static void
tcp_conn_fail_protocol (TcpConnection *conn, const char *what)
{
  tcp_conn_fail (conn, canopy_transport_common_protocol_error (&conn->base, what));
}

static void
tcp_conn_fail_closed (TcpConnection *conn, const char *reason)
{
  tcp_conn_fail (conn, canopy_transport_common_closed_error (&conn->base, conn->in.frame_got > 0,
                                                             reason));
}

/* A handshake failure that means the two ends hold different shared keys.
 * TLS 1.3 PSK: the server cannot verify the client's binder, and the
 * client receives the server's alert about it. */
static gboolean
tcp_is_key_mismatch (TcpConnection *conn, int rc)
{
  if (conn->base.is_client)
    return rc == GNUTLS_E_FATAL_ALERT_RECEIVED
           && canopy_transport_common_alert_is_key_mismatch (gnutls_alert_get (conn->session));
  /* GnuTLS reports a PSK binder that does not verify as an illegal
   * parameter. */
  return rc == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER || rc == GNUTLS_E_DECRYPTION_FAILED
         || rc == GNUTLS_E_INSUFFICIENT_CREDENTIALS;
}

static void
tcp_conn_fail_handshake (TcpConnection *conn, int rc)
{
  GError *error;
  if (tcp_is_key_mismatch (conn, rc))
    error = canopy_transport_common_key_mismatch_error (&conn->base);
  else if (rc == GNUTLS_E_PREMATURE_TERMINATION || rc == GNUTLS_E_PUSH_ERROR
           || rc == GNUTLS_E_PULL_ERROR)
    {
      g_autofree char *peer = canopy_transport_common_conn_describe (&conn->base);
      error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                           _("The connection to \"%s\" closed during the TLS handshake (%s)."),
                           peer, gnutls_strerror (rc));
    }
  else
    error = canopy_transport_common_handshake_error (&conn->base, gnutls_strerror (rc));
  if (!conn->base.is_client)
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

  g_clear_pointer (&conn->timeout, g_source_unref);
  tcp_conn_fail (conn, canopy_transport_common_timeout_error (&conn->base));
  return G_SOURCE_REMOVE;
}

/* The handshake and the server's hello must be done in time. */
static void
tcp_conn_stop_timeout (TcpConnection *conn)
{
  g_source_destroy (conn->timeout);
  g_clear_pointer (&conn->timeout, g_source_unref);
}

static TcpConnection *
tcp_conn_new (TcpTransport *transport, GSocket *socket, gboolean is_client)
{
  TcpConnection *conn = g_new0 (TcpConnection, 1);
  canopy_transport_common_conn_init (&conn->base, &transport->base, is_client);
  conn->transport = transport;
  conn->socket = socket;
  conn->fd = g_socket_get_fd (socket);
  conn->rcvlowat = 1; /* the kernel's default */
  g_queue_init (&conn->out);

  conn->timeout = g_timeout_source_new (transport->base.connect_timeout_ms);
  g_source_set_callback (conn->timeout, tcp_conn_on_timeout, conn, NULL);
  g_source_attach (conn->timeout, transport->base.context);
  return conn;
}

static gboolean
tcp_conn_watch (TcpConnection *conn, GIOCondition events, GError **error)
{
  if (!canopy_watch_set_add (conn->transport->base.watches, conn->fd, events, tcp_conn_on_ready,
                             canopy_transport_common_conn_ref (conn),
                             canopy_transport_common_conn_unref, error))
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
  return canopy_transport_common_psk_key (&conn->transport->base, identity, key);
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
      /* A read that did not fill the buffer took all the kernel had: asking
       * again would fail with EAGAIN, one system call for nothing. What
       * arrives meanwhile makes the (level-triggered) watch fire again. */
      if (conn->kernel_drained)
        {
          gnutls_transport_set_errno (conn->session, EAGAIN);
          return -1;
        }
      got = recv (conn->fd, conn->rbuf, conn->rbuf_size, 0);
      if (got <= 0)
        {
          if (got < 0)
            gnutls_transport_set_errno (conn->session, errno);
          return got;
        }
      conn->kernel_drained = (gsize) got < conn->rbuf_size;
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
  int rc = canopy_transport_common_session_init (&conn->transport->base, conn->base.is_client,
                                                 GNUTLS_NONBLOCK, &conn->session);
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
  conn->base.state = CANOPY_TRANSPORT_COMMON_HANDSHAKE;
  return TRUE;
}

static void
tcp_conn_queue_frame (CanopyTransportCommonConn *base, guint8 kind, const void *header,
                      gsize header_len, GBytes *payload)
{
  TcpConnection *conn = (TcpConnection *) base;
  TcpOutMessage *msg = g_new0 (TcpOutMessage, 1);

  canopy_transport_common_out_frame_init (&msg->frame, kind, header, header_len, payload);
  g_queue_push_tail (&conn->out, msg);
  conn->queued += msg->frame.total;
  if (tcp_conn_queued_total (conn) >= conn->transport->base.queue_high)
    conn->base.want_drained = TRUE;
  /* An open connection whose socket takes more is written on the next
   * turn, with whatever else was queued by then; watching for G_IO_OUT is
   * left for when the kernel's buffer is full. */
  if (conn->watching != 0 && !(conn->watching & G_IO_OUT)
      && (conn->base.state == CANOPY_TRANSPORT_COMMON_OPEN
          || conn->base.state == CANOPY_TRANSPORT_COMMON_HELLO))
    {
      conn->woken = TRUE;
      canopy_watch_set_wake (conn->transport->base.watches, conn->fd);
      return;
    }
  tcp_conn_update_watch (conn);
}

static void
tcp_conn_handshake (TcpConnection *conn)
{
  int rc = gnutls_handshake (conn->session);

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

  g_debug ("TLS handshake with %s done: %s", conn->base.is_client ? "server" : "client",
           gnutls_cipher_get_name (gnutls_cipher_get (conn->session)));
  if (conn->base.is_client)
    {
      /* The server's ID arrives in its first frame, inside the channel
       * the PSK authenticated. It may already sit in the read buffer,
       * where the socket's readiness would never announce it. */
      conn->base.state = CANOPY_TRANSPORT_COMMON_HELLO;
      tcp_conn_update_watch (conn);
      tcp_conn_receive (conn);
      return;
    }

  tcp_conn_stop_timeout (conn);
  canopy_transport_common_conn_accepted (&conn->base, conn->session);
  /* Data that came with the client's last handshake flight. */
  if (conn->base.state == CANOPY_TRANSPORT_COMMON_OPEN)
    tcp_conn_receive (conn);
}

/* --- connections: I/O ----------------------------------------------------- */

static void
tcp_conn_update_watch (TcpConnection *conn)
{
  GIOCondition want;

  if (conn->base.state == CANOPY_TRANSPORT_COMMON_DEAD || conn->watching == 0)
    return;
  if (conn->base.state == CANOPY_TRANSPORT_COMMON_CONNECTING)
    want = G_IO_OUT;
  else if (conn->base.state == CANOPY_TRANSPORT_COMMON_HANDSHAKE)
    want = gnutls_record_get_direction (conn->session) ? G_IO_OUT : G_IO_IN;
  else
    want = G_IO_IN | (conn->out.length > 0 && !conn->woken ? G_IO_OUT : 0);
  if (tcp_conn_has_unwritten (conn))
    want |= G_IO_OUT;
  if (want != conn->watching
      && canopy_watch_set_modify (conn->transport->base.watches, conn->fd, want, NULL))
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
      gsize len;
      ssize_t n;

      if (msg->sent < msg->frame.prefix_len)
        {
          data = msg->frame.prefix + msg->sent;
          len = msg->frame.prefix_len - msg->sent;
        }
      else
        {
          data = msg->frame.payload_data + (msg->sent - msg->frame.prefix_len);
          len = msg->frame.total - msg->sent;
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
      if (msg->sent == msg->frame.total)
        tcp_out_message_free (g_queue_pop_head (&conn->out));
    }
  if (!tcp_conn_write_out (conn))
    {
      tcp_conn_fail_closed (conn, g_strerror (errno));
      return FALSE;
    }
  tcp_conn_update_watch (conn);

  canopy_transport_common_conn_check_drained (&conn->base, tcp_conn_queued_total (conn));
  return conn->base.state != CANOPY_TRANSPORT_COMMON_DEAD;
}

/* A whole frame arrived: the server's hello, or a message to deliver. */
static void
tcp_conn_complete_frame (TcpConnection *conn)
{
  TcpTransport *transport = conn->transport;
  g_autoptr (GBytes) header = NULL;
  g_autoptr (GBytes) payload = NULL;

  canopy_transport_common_in_frame_take (&conn->in, &header, &payload);
  if (conn->in.kind == CANOPY_TRANSPORT_COMMON_FRAME_HELLO)
    {
      gsize len;
      const guint8 *id = g_bytes_get_data (header, &len);

      if (!canopy_transport_common_id_is_valid (id, len))
        {
          tcp_conn_fail_protocol (conn, "invalid device ID");
          return;
        }
      tcp_conn_stop_timeout (conn);
      canopy_transport_common_conn_opened (&conn->base, g_strndup ((const char *) id, len));
      return;
    }
  transport->base.events->message (&conn->base.parent, header, payload,
                                   transport->base.user_data);
}

static void
tcp_conn_advance (TcpConnection *conn, gsize n)
{
  gboolean hello = conn->base.state == CANOPY_TRANSPORT_COMMON_HELLO;
  const char *what = NULL;

  switch (canopy_transport_common_in_frame_advance (&conn->in, n, &conn->transport->base, hello,
                                                    !hello, &what))
    {
    case CANOPY_TRANSPORT_IN_FRAME_MALFORMED:
      tcp_conn_fail_protocol (conn, what);
      break;
    case CANOPY_TRANSPORT_IN_FRAME_NO_MEMORY:
      tcp_conn_fail_closed (conn, "out of memory");
      break;
    case CANOPY_TRANSPORT_IN_FRAME_WHOLE:
      tcp_conn_complete_frame (conn);
      break;
    case CANOPY_TRANSPORT_IN_FRAME_MORE:
      break;
    }
}

/* Sets the socket's low-water mark to what the message being received
 * still certainly needs from the kernel: its payload bytes not yet
 * decrypted, less two records (GnuTLS may hold one in part), since
 * ciphertext is never shorter than its plaintext. Between messages (a
 * request, a have) it is 1 byte, so that small messages are not held
 * back. A closed or failed connection wakes the watch regardless. */
static void
tcp_conn_set_wake (TcpConnection *conn)
{
  const CanopyTransportInFrame *in = &conn->in;
  gsize left = 0;
  int lowat;

  if (in->frame_got == CANOPY_TRANSPORT_COMMON_FRAME_SIZE && in->header_got == in->header_len)
    left = in->payload_len - in->payload_got;
  lowat = left > 2 * TCP_RECORD_SIZE ? (int) MIN (left - 2 * TCP_RECORD_SIZE, TCP_WAKE_BYTES)
                                     : 1;
  if (lowat != conn->rcvlowat
      && setsockopt (conn->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) == 0)
    conn->rcvlowat = lowat;
}

/* Reads until the kernel has nothing more (GnuTLS may hold decrypted
 * bytes of a record, so stopping early could stall a level-triggered
 * watch). */
static void
tcp_conn_receive (TcpConnection *conn)
{
  while (conn->base.state == CANOPY_TRANSPORT_COMMON_OPEN
         || conn->base.state == CANOPY_TRANSPORT_COMMON_HELLO)
    {
      gsize want;
      guint8 *target = canopy_transport_common_in_frame_target (&conn->in, &want);
      ssize_t n = gnutls_record_recv (conn->session, target, want);
      if (n == GNUTLS_E_AGAIN)
        {
          tcp_conn_set_wake (conn);
          return;
        }
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
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        tcp_conn_fail (conn, canopy_transport_common_refused_error (&conn->base));
      else
        tcp_conn_fail (conn, canopy_transport_common_connect_error (
                               &conn->base, CANOPY_TRANSPORT_ERROR_FAILED, error->message));
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
  TcpConnection *conn = canopy_transport_common_conn_ref (user_data);
  gboolean alive;

  (void) fd;
  conn->kernel_drained = FALSE;
  conn->woken = FALSE;
  switch (conn->base.state)
    {
    case CANOPY_TRANSPORT_COMMON_CONNECTING:
      tcp_conn_finish_connect (conn);
      break;
    case CANOPY_TRANSPORT_COMMON_HANDSHAKE:
      tcp_conn_handshake (conn);
      break;
    case CANOPY_TRANSPORT_COMMON_HELLO:
    case CANOPY_TRANSPORT_COMMON_OPEN:
      if ((conn->out.length > 0 || tcp_conn_has_unwritten (conn)) && !tcp_conn_flush (conn))
        break;
      /* Reading drains GnuTLS's buffer too, so a wake with nothing
       * readable (see tcp_conn_queue_frame()) need not read. */
      if (condition != G_IO_OUT)
        tcp_conn_receive (conn);
      break;
    case CANOPY_TRANSPORT_COMMON_DEAD:
      break;
    }
  alive = conn->base.state != CANOPY_TRANSPORT_COMMON_DEAD;
  canopy_transport_common_conn_unref (conn);
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
  conn->base.peer_address = g_socket_get_remote_address (client, NULL);
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
  return canopy_watch_set_add (listener->transport->base.watches, g_socket_get_fd (listener->socket),
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
  canopy_watch_set_remove (listener->transport->base.watches, g_socket_get_fd (listener->socket));
  listener->backoff = g_timeout_source_new (TCP_ACCEPT_BACKOFF_MS);
  g_source_set_callback (listener->backoff, tcp_listener_on_rested, listener, NULL);
  g_source_attach (listener->backoff, listener->transport->base.context);
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
  canopy_watch_set_remove (listener->transport->base.watches, g_socket_get_fd (listener->socket));
  g_socket_close (listener->socket, NULL);
  g_object_unref (listener->socket);
  g_free (listener);
}

static GSocket *
tcp_listener_get_socket (gpointer listener)
{
  return ((TcpListener *) listener)->socket;
}

static GSocket *
tcp_listen_socket (GInetAddress *inet, const char *host, guint16 port, GError **error)
{
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GSocket) socket = canopy_transport_common_socket_new (inet, G_SOCKET_TYPE_STREAM,
                                                                   G_SOCKET_PROTOCOL_TCP, error);

  if (socket == NULL)
    return NULL;
  g_socket_set_listen_backlog (socket, 4096);
  if (!g_socket_bind (socket, address, TRUE, &local_error)
      || !g_socket_listen (socket, &local_error))
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot listen on address \"%s\" port %u: %s. Check that no other "
                     "program uses that port."), host, (guint) port, local_error->message);
      return NULL;
    }
  return g_steal_pointer (&socket);
}

static gpointer
tcp_listen_on (CanopyTransportCommon *base, GInetAddress *inet, const char *host, guint16 port,
               GError **error)
{
  TcpListener *listener;
  GSocket *socket = tcp_listen_socket (inet, host, port, error);

  if (socket == NULL)
    return NULL;
  listener = g_new0 (TcpListener, 1);
  listener->transport = (TcpTransport *) base;
  listener->socket = socket;
  if (!tcp_listener_watch (listener, error))
    {
      g_socket_close (listener->socket, NULL);
      g_object_unref (listener->socket);
      g_free (listener);
      return NULL;
    }
  return listener;
}

/* --- connecting ----------------------------------------------------------- */

static void
tcp_conn_begin_connect (TcpConnection *conn, GInetAddress *inet, guint16 port)
{
  g_autoptr (GError) error = NULL;

  conn->base.peer_address = g_inet_socket_address_new (inet, port);
  if (!g_socket_connect (conn->socket, conn->base.peer_address, NULL, &error)
      && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
    {
      int code = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED)
                   ? CANOPY_TRANSPORT_ERROR_REFUSED : CANOPY_TRANSPORT_ERROR_FAILED;
      tcp_conn_fail (conn, canopy_transport_common_connect_error (&conn->base, code,
                                                                  error->message));
      return;
    }
  if (!tcp_conn_watch (conn, G_IO_OUT, &error))
    tcp_conn_fail (conn, g_steal_pointer (&error));
}

/* Starts connecting to one address; takes @task. */
static void
tcp_connect_to (CanopyTransportCommon *base, GTask *task, GInetAddress *inet, guint16 port)
{
  TcpTransport *transport = (TcpTransport *) base;
  g_autoptr (GError) error = NULL;
  TcpConnection *conn;
  GSocket *socket = g_socket_new (g_inet_address_get_family (inet), G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, &error);

  if (socket == NULL)
    {
      canopy_transport_common_task_return_socket_error (task, error);
      g_object_unref (task);
      return;
    }
  tcp_socket_tune (transport, socket);
  conn = tcp_conn_new (transport, socket, TRUE);
  conn->base.state = CANOPY_TRANSPORT_COMMON_CONNECTING;
  canopy_transport_common_conn_start_connect (&conn->base, task);
  tcp_conn_begin_connect (conn, inet, port);
}

/* --- instance ------------------------------------------------------------- */

static gsize
tcp_conn_get_queued (CanopyTransportCommonConn *conn)
{
  return tcp_conn_queued_total ((TcpConnection *) conn);
}

/* What only TCP reads; canopy_transport_common_new() reads the rest. */
static gboolean
tcp_transport_setup (CanopyTransportCommon *base, const CanopyConfigNode *element, GError **error)
{
  TcpTransport *transport = (TcpTransport *) base;
  const CanopyConfigNode *keepalive = canopy_config_node_get_child (element, "keepalive");
  guint64 idle = 60;

  if (keepalive != NULL
      && !canopy_config_node_get_uint (keepalive, "idle-s", 0, 86400, 60, &idle, error))
    return FALSE;
  transport->keepalive_idle_s = (guint) idle;
  return TRUE;
}

CANOPY_TRANSPORT_COMMON_DEFINE (tcp, TcpTransport, TCP_PSK_LABEL, TCP_PRIORITY, NULL,
                                tcp_transport_setup, NULL);

const char canopy_tcp_transport_schema[] = CANOPY_TRANSPORT_COMMON_SCHEMA (
  "tcp", CANOPY_TRANSPORT_COMMON_SCHEMA_ELEMENT (
           "keepalive", CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("idle-s", "unsignedInt"))
           CANOPY_TRANSPORT_COMMON_SCHEMA_ELEMENT ("limits", CANOPY_TRANSPORT_COMMON_SCHEMA_LIMITS));
