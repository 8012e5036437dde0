/* QUIC connections: their life, how their failures are reported, and the
 * one timer that serves them all. */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "plugins/transport-quic/quic-private.h"

/* --- connections: lifetime ------------------------------------------------ */

void
quic_out_message_free (gpointer data)
{
  QuicOutMessage *msg = data;
  canopy_transport_common_out_frame_clear (&msg->frame);
  g_free (msg);
}

static void
quic_in_message_free (gpointer data)
{
  QuicInMessage *msg = data;
  canopy_transport_common_in_frame_clear (&msg->in);
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

void
quic_conn_finalize (CanopyTransportCommonConn *base)
{
  QuicConnection *conn = (QuicConnection *) base;

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
  g_clear_error (&conn->pending_error);
  g_free (conn->hello_id);
  g_free (conn->unsent);
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
void
quic_conn_destroy (QuicConnection *conn, const ngtcp2_connection_close_error *ccerr)
{
  QuicTransport *transport = conn->transport;

  if (conn->base.state == CANOPY_TRANSPORT_COMMON_DEAD)
    return;
  if (ccerr != NULL)
    quic_conn_send_close (conn, ccerr);
  conn->base.state = CANOPY_TRANSPORT_COMMON_DEAD;
  quic_conn_set_wake (conn, G_MAXINT64);
  canopy_transport_common_conn_stop_cancel (&conn->base);
  for (guint i = 0; conn->cids != NULL && i < conn->cids->len; i++)
    if (g_hash_table_lookup (transport->cids, conn->cids->pdata[i]) == conn)
      g_hash_table_remove (transport->cids, conn->cids->pdata[i]);
  if (g_queue_remove (&conn->socket->blocked, conn))
    canopy_transport_common_conn_unref (conn);
  /* A client's socket is closed with the connection's last reference, as
   * its watch callback may be running now. */
  if (conn->owns_socket && conn->socket->watching != 0)
    {
      canopy_watch_set_remove (transport->base.watches, conn->socket->fd);
      conn->socket->watching = 0;
    }
  g_hash_table_remove (transport->base.connections, conn);
}

static void
quic_conn_close_with_app_code (QuicConnection *conn, guint64 code)
{
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_application_error (&ccerr, code, NULL, 0);
  quic_conn_destroy (conn, &ccerr);
}

void
quic_conn_destroy_with (CanopyTransportCommonConn *conn, gconstpointer farewell)
{
  quic_conn_destroy ((QuicConnection *) conn, farewell);
}

void
quic_conn_close (CanopyTransportCommonConn *conn)
{
  quic_conn_close_with_app_code ((QuicConnection *) conn, QUIC_APP_CLOSED);
}

/* Reports @error for @conn, then destroys it, sending @ccerr. Takes @error. */
void
quic_conn_fail_full (QuicConnection *conn, GError *error,
                     const ngtcp2_connection_close_error *ccerr)
{
  canopy_transport_common_conn_fail (&conn->base, error, ccerr);
}

/* Fails @conn and tells the peer it was closed without naming a reason. */
void
quic_conn_fail (QuicConnection *conn, GError *error)
{
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_application_error (&ccerr, QUIC_APP_CLOSED, NULL, 0);
  quic_conn_fail_full (conn, error, &ccerr);
}

void
quic_conn_fail_any (CanopyTransportCommonConn *conn, GError *error)
{
  quic_conn_fail ((QuicConnection *) conn, error);
}

static void
quic_conn_fail_protocol (QuicConnection *conn, GError *error)
{
  ngtcp2_connection_close_error ccerr;
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_application_error (&ccerr, QUIC_APP_PROTOCOL, NULL, 0);
  quic_conn_fail_full (conn, error, &ccerr);
}

/* The TLS stack failed locally: tell the peer with the alert GnuTLS chose. */
static void
quic_conn_fail_crypto (QuicConnection *conn)
{
  guint8 alert = ngtcp2_conn_get_tls_alert (conn->quic);
  ngtcp2_connection_close_error ccerr;
  GError *error;

  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_transport_error_tls_alert (&ccerr, alert, NULL, 0);
  if (canopy_transport_common_alert_is_key_mismatch (alert))
    error = canopy_transport_common_key_mismatch_error (&conn->base);
  else
    error = canopy_transport_common_handshake_error (
      &conn->base, gnutls_alert_get_name ((gnutls_alert_description_t) alert));
  quic_conn_fail_full (conn, error, &ccerr);
}

/* The peer closed the connection (or refused the handshake): say why. */
static void
quic_conn_fail_draining (QuicConnection *conn)
{
  ngtcp2_connection_close_error ccerr;
  g_autofree char *peer = canopy_transport_common_conn_describe (&conn->base);
  GError *error;

  ngtcp2_conn_get_connection_close_error (conn->quic, &ccerr);
  if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT
      && ccerr.error_code >= NGTCP2_CRYPTO_ERROR && ccerr.error_code <= NGTCP2_CRYPTO_ERROR + 0xff
      && conn->base.state != CANOPY_TRANSPORT_COMMON_OPEN)
    {
      guint8 alert = (guint8) (ccerr.error_code - NGTCP2_CRYPTO_ERROR);
      if (canopy_transport_common_alert_is_key_mismatch (alert))
        error = canopy_transport_common_key_mismatch_error (&conn->base);
      else
        error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                             _("The peer \"%s\" refused the TLS handshake: %s."), peer,
                             gnutls_alert_get_name ((gnutls_alert_description_t) alert));
    }
  else if (ccerr.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION
           && ccerr.error_code == QUIC_APP_PROTOCOL)
    error = g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_CLOSED,
                         _("The peer \"%s\" closed the connection: it refused a message of ours "
                           "as malformed or over its limits."), peer);
  else
    error = canopy_transport_common_closed_error (&conn->base, g_hash_table_size (conn->in) > 0,
                                                  _("the peer closed it"));
  quic_conn_fail_full (conn, error, NULL);
}

/* An ngtcp2 call failed with @rv: report it as what it means. */
void
quic_conn_fail_liberr (QuicConnection *conn, int rv)
{
  g_autofree char *peer = canopy_transport_common_conn_describe (&conn->base);
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
      quic_conn_fail_full (conn, canopy_transport_common_closed_error (
                                   &conn->base, FALSE,
                                   _("nothing was heard from the peer for longer than the idle "
                                     "timeout")), NULL);
      return;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
      quic_conn_fail (conn, canopy_transport_common_timeout_error (&conn->base));
      return;
    default:
      break;
    }
  ngtcp2_connection_close_error_default (&ccerr);
  ngtcp2_connection_close_error_set_transport_error_liberr (&ccerr, rv, NULL, 0);
  if (conn->base.state == CANOPY_TRANSPORT_COMMON_OPEN)
    quic_conn_fail_full (conn, canopy_transport_common_closed_error (&conn->base, FALSE,
                                                                     ngtcp2_strerror (rv)),
                         &ccerr);
  else
    quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                                            _("The QUIC handshake with \"%s\" failed: %s."), peer,
                                            ngtcp2_strerror (rv)), &ccerr);
}

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

void
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
  if (wake != G_MAXINT64 && conn->base.state != CANOPY_TRANSPORT_COMMON_DEAD)
    conn->timer_iter = g_sequence_insert_sorted (transport->timers, conn, quic_timer_compare,
                                                 NULL);
  quic_timer_update (transport);
}

/* Asks for @conn to be processed (and write) on the next loop turn. */
void
quic_conn_kick (QuicConnection *conn)
{
  conn->kicked = TRUE;
  if (conn->base.state != CANOPY_TRANSPORT_COMMON_DEAD && (conn->timer_iter == NULL || conn->wake > 0))
    quic_conn_set_wake (conn, 0);
}

static void
quic_conn_rearm (QuicConnection *conn)
{
  ngtcp2_tstamp expiry;
  gint64 wake = G_MAXINT64;

  if (conn->base.state == CANOPY_TRANSPORT_COMMON_DEAD)
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
      quic_conn_fail (conn, canopy_transport_common_timeout_error (&conn->base));
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

gboolean
quic_timer_on_ready (int fd, GIOCondition condition, gpointer user_data)
{
  QuicTransport *transport = user_data;
  gint64 now = g_get_monotonic_time ();
  g_autoptr (GPtrArray) due = g_ptr_array_new_with_free_func (canopy_transport_common_conn_unref);
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
      g_ptr_array_add (due, canopy_transport_common_conn_ref (conn));
    }
  for (guint i = 0; i < due->len; i++)
    {
      QuicConnection *conn = due->pdata[i];
      if (conn->base.state != CANOPY_TRANSPORT_COMMON_DEAD)
        quic_conn_on_timer (conn, now);
    }
  quic_timer_update (transport);
  return G_SOURCE_CONTINUE;
}

/* --- connections: setup and processing ---------------------------------------- */

QuicConnection *
quic_conn_new (QuicTransport *transport, QuicSocket *socket, gboolean is_client)
{
  QuicConnection *conn = g_new0 (QuicConnection, 1);
  canopy_transport_common_conn_init (&conn->base, &transport->base, is_client);
  conn->base.state = CANOPY_TRANSPORT_COMMON_HANDSHAKE;
  conn->transport = transport;
  conn->socket = socket;
  conn->wake = G_MAXINT64;
  conn->deadline = g_get_monotonic_time () + (gint64) transport->base.connect_timeout_ms * 1000;
  g_queue_init (&conn->out);
  g_queue_init (&conn->deliveries);
  conn->finished = g_array_new (FALSE, FALSE, sizeof (int64_t));
  conn->flying = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, quic_out_message_free);
  conn->in = g_hash_table_new_full (g_int64_hash, g_int64_equal, NULL, quic_in_message_free);
  return conn;
}

static void
quic_conn_set_peer_address (QuicConnection *conn, const void *address, socklen_t len)
{
  memcpy (&conn->peer_native, address, MIN ((gsize) len, sizeof conn->peer_native));
  conn->peer_native_len = (ngtcp2_socklen) len;
  g_clear_object (&conn->base.peer_address);
  conn->base.peer_address = g_socket_address_new_from_native ((gpointer) address, len);
}

/* The path ngtcp2 knows @conn by: our address and the peer's. */
void
quic_conn_get_path (QuicConnection *conn, ngtcp2_path *path)
{
  path->local.addr = (ngtcp2_sockaddr *) &conn->local;
  path->local.addrlen = conn->local_len;
  path->remote.addr = (ngtcp2_sockaddr *) &conn->remote;
  path->remote.addrlen = conn->remote_len;
  path->user_data = NULL;
}

void
quic_conn_set_remote (QuicConnection *conn, const struct sockaddr *address, socklen_t len)
{
  memcpy (&conn->remote, address, MIN ((gsize) len, sizeof conn->remote));
  conn->remote_len = (ngtcp2_socklen) len;
  quic_conn_set_peer_address (conn, address, len);
}

static void
quic_conn_on_handshake (QuicConnection *conn)
{
  conn->handshake_done = FALSE;
  if (conn->base.is_client)
    {
      g_debug ("QUIC handshake with the server done");
      conn->base.state = CANOPY_TRANSPORT_COMMON_HELLO;
      return;
    }
  conn->deadline = 0;
  canopy_transport_common_conn_accepted (&conn->base, conn->session);
  g_debug ("QUIC handshake with client %s done", conn->base.peer_id);
}

static void
quic_conn_on_hello (QuicConnection *conn)
{
  conn->deadline = 0;
  canopy_transport_common_conn_opened (&conn->base, g_steal_pointer (&conn->hello_id));
}

/* The peer's address is that of the path ngtcp2 has validated and uses. */
static void
quic_conn_update_peer_address (QuicConnection *conn)
{
  const ngtcp2_path *path = ngtcp2_conn_get_path (conn->quic);
  g_autofree char *was = NULL;
  g_autofree char *now = NULL;

  if (conn->base.is_client || path->remote.addrlen == 0
      || (path->remote.addrlen == conn->peer_native_len
          && memcmp (path->remote.addr, &conn->peer_native, conn->peer_native_len) == 0))
    return;
  was = canopy_transport_common_conn_describe (&conn->base);
  quic_conn_set_peer_address (conn, path->remote.addr, path->remote.addrlen);
  now = g_socket_connectable_to_string (G_SOCKET_CONNECTABLE (conn->base.peer_address));
  g_debug ("Peer %s now reached at %s", was, now);
}

/* Acts on what ngtcp2 reported (handshake, messages), writes, then
 * reports drained and sets the timer. Events may close @conn. */
void
quic_conn_process (QuicConnection *conn)
{
  QuicTransport *transport = conn->transport;

  canopy_transport_common_conn_ref (conn);
  if (conn->pending_error != NULL)
    quic_conn_fail_liberr (conn, 0);
  if (conn->handshake_done && conn->base.state == CANOPY_TRANSPORT_COMMON_HANDSHAKE)
    quic_conn_on_handshake (conn);
  if (conn->base.state == CANOPY_TRANSPORT_COMMON_HELLO && conn->hello_id != NULL)
    quic_conn_on_hello (conn);
  while (conn->base.state == CANOPY_TRANSPORT_COMMON_OPEN && conn->deliveries.length > 0)
    {
      QuicDelivery *delivery = g_queue_pop_head (&conn->deliveries);
      transport->base.events->message (&conn->base.parent, delivery->header, delivery->payload,
                                  transport->base.user_data);
      quic_delivery_free (delivery);
    }
  if (conn->base.state != CANOPY_TRANSPORT_COMMON_DEAD && quic_conn_write (conn))
    {
      quic_conn_update_peer_address (conn);
      canopy_transport_common_conn_check_drained (&conn->base, conn->queued);
      quic_conn_rearm (conn);
    }
  canopy_transport_common_conn_unref (conn);
}

gsize
quic_conn_get_queued (CanopyTransportCommonConn *conn)
{
  return ((QuicConnection *) conn)->queued;
}
