/* QUIC transport: ngtcp2 over UDP sockets watched through one epoll set,
 * TLS 1.3 with an external PSK per client identity, one stream per message.
 * This file is the plugin's glue; the shared scaffold is transport-common. */
#include "build-config.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <gnutls/crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "plugins/transport-quic/quic-private.h"

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

/* --- TLS ------------------------------------------------------------------ */

static int
quic_psk_server_key (gnutls_session_t session, const gnutls_datum_t *identity, gnutls_datum_t *key)
{
  ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr (session);
  QuicConnection *conn = ref->user_data;
  return canopy_transport_common_psk_key (&conn->transport->base, identity, key);
}

static gboolean
quic_conn_start_tls (QuicConnection *conn, GError **error)
{
  const gnutls_datum_t alpn = { (unsigned char *) QUIC_ALPN, sizeof QUIC_ALPN - 1 };
  int rc = canopy_transport_common_session_init (&conn->transport->base, conn->base.is_client, 0,
                                                 &conn->session);

  if (rc == 0)
    rc = conn->base.is_client ? ngtcp2_crypto_gnutls_configure_client_session (conn->session)
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
    (ngtcp2_duration) transport->base.connect_timeout_ms * NGTCP2_MILLISECONDS;

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

/* A server connection for the client Initial in @hd. */
QuicConnection *
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
  quic_conn_get_path (conn, &path);
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

/* --- listening ------------------------------------------------------------ */

/* A wildcard socket learns each datagram's local address, to answer from it. */
static void
quic_socket_want_pktinfo (QuicSocket *socket, GInetAddress *inet)
{
  int one = 1;

  socket->pktinfo = TRUE;
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    setsockopt (socket->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
  else
    setsockopt (socket->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
}

static gpointer
quic_listen_on (CanopyTransportCommon *base, GInetAddress *inet, const char *host, guint16 port,
                GError **error)
{
  g_autoptr (GSocketAddress) address = NULL;
  g_autoptr (GError) local_error = NULL;
  QuicSocket *socket = quic_socket_new ((QuicTransport *) base, inet, error);

  if (socket == NULL)
    return NULL;
  address = g_inet_socket_address_new (inet, port);
  if (!g_socket_bind (socket->socket, address, FALSE, &local_error))
    {
      g_set_error (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                   _("Cannot listen on address \"%s\" UDP port %u: %s. Check that no other "
                     "program uses that port."), host, (guint) port, local_error->message);
      quic_socket_free (socket);
      return NULL;
    }
  quic_socket_learn_local (socket);
  if (g_inet_address_get_is_any (inet))
    quic_socket_want_pktinfo (socket, inet);
  if (!quic_socket_watch (socket, error))
    {
      quic_socket_free (socket);
      return NULL;
    }
  return socket;
}

static GSocket *
quic_listener_get_socket (gpointer listener)
{
  return ((QuicSocket *) listener)->socket;
}

static void
quic_listener_free (gpointer data)
{
  quic_socket_free (data);
}

/* --- connecting ----------------------------------------------------------- */

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
  quic_conn_get_path (conn, &path);
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
quic_connect_to (CanopyTransportCommon *base, GTask *task, GInetAddress *inet, guint16 port)
{
  QuicTransport *transport = (QuicTransport *) base;
  g_autoptr (GError) error = NULL;
  g_autoptr (GSocketAddress) address = g_inet_socket_address_new (inet, port);
  QuicSocket *socket = quic_socket_new (transport, inet, &error);
  QuicConnection *conn;

  if (socket == NULL)
    {
      canopy_transport_common_task_return_socket_error (task, error);
      g_object_unref (task);
      return;
    }
  conn = quic_conn_new (transport, socket, TRUE);
  conn->owns_socket = TRUE;
  socket->conn = conn;
  canopy_transport_common_conn_start_connect (&conn->base, task);
  if (!g_socket_address_to_native (address, &conn->remote, sizeof conn->remote, &error))
    {
      quic_conn_fail_full (conn, g_error_new (CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_FAILED,
                                              _("Cannot connect: %s."), error->message), NULL);
      return;
    }
  conn->remote_len = (ngtcp2_socklen) g_socket_address_get_native_size (address);
  conn->base.peer_address = g_object_ref (address);
  /* A connected socket hears only its server, and learns of a refusal. */
  if (!g_socket_connect (socket->socket, address, NULL, &error)
      || !quic_socket_watch (socket, &error))
    {
      quic_conn_fail_full (conn, canopy_transport_common_connect_error (
                                   &conn->base, CANOPY_TRANSPORT_ERROR_FAILED, error->message),
                           NULL);
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

/* --- instance ------------------------------------------------------------- */

/* What only QUIC reads; canopy_transport_common_new() reads the rest. */
static gboolean
quic_transport_configure (QuicTransport *transport, const CanopyConfigNode *element,
                          GError **error)
{
  const CanopyConfigNode *idle = canopy_config_node_get_child (element, "idle");
  const CanopyConfigNode *limits = canopy_config_node_get_child (element, "limits");
  const CanopyConfigNode *udp = canopy_config_node_get_child (element, "udp");
  guint64 idle_s = 60, streams = QUIC_DEFAULT_STREAMS, udp_payload = QUIC_DEFAULT_UDP_PAYLOAD;
  guint64 buffer = QUIC_DEFAULT_SOCKET_BUFFER;
  gboolean gso = TRUE;

  if ((idle != NULL
       && !canopy_config_node_get_uint (idle, "timeout-s", 1, 86400, 60, &idle_s, error))
      || (limits != NULL
          && !canopy_config_node_get_uint (limits, "max-streams", 1, 1024, QUIC_DEFAULT_STREAMS,
                                           &streams, error))
      || (udp != NULL
          && (!canopy_config_node_get_uint (udp, "max-payload", 1200,
                                            NGTCP2_DEFAULT_MAX_RECV_UDP_PAYLOAD_SIZE,
                                            QUIC_DEFAULT_UDP_PAYLOAD, &udp_payload, error)
              || !canopy_config_node_get_uint (udp, "socket-buffer", 65536, G_MAXINT,
                                               QUIC_DEFAULT_SOCKET_BUFFER, &buffer, error)
              || !canopy_config_node_get_boolean (udp, "gso", TRUE, &gso, error))))
    return FALSE;

  transport->idle_timeout_s = (guint) idle_s;
  transport->max_streams = (guint) streams;
  transport->udp_payload = (gsize) udp_payload;
  transport->socket_buffer = (gsize) buffer;
  transport->gso = gso;
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
  return canopy_watch_set_add (transport->base.watches, transport->timer_fd, G_IO_IN,
                               quic_timer_on_ready, transport, NULL, error);
}

static void
quic_transport_init (CanopyTransportCommon *base)
{
  QuicTransport *transport = (QuicTransport *) base;

  /* Keys belong to the connections' lists. */
  transport->cids = g_hash_table_new (quic_cid_hash, quic_cid_equal);
  transport->dirty = g_ptr_array_new_with_free_func (canopy_transport_common_conn_unref);
  transport->timers = g_sequence_new (NULL);
  transport->timer_fd = -1;
  transport->timer_armed = G_MAXINT64;
}

static gboolean
quic_transport_setup (CanopyTransportCommon *base, const CanopyConfigNode *element,
                      GError **error)
{
  QuicTransport *transport = (QuicTransport *) base;

  if (!quic_transport_configure (transport, element, error)
      || !quic_transport_setup_timer (transport, error))
    return FALSE;
  transport->rx_buffer = g_malloc (QUIC_RX_BUFFER_SIZE);
  /* A batch of up to 64 KiB, and room for one more packet after it. */
  transport->tx_buffer_size = QUIC_GSO_MAX_BYTES + transport->udp_payload;
  transport->tx_buffer = g_malloc (transport->tx_buffer_size);
  return TRUE;
}

/* Every connection is closed by now; the timer fd leaves the epoll set as
 * it closes, before the set itself is freed. */
static void
quic_transport_finalize (CanopyTransportCommon *base)
{
  QuicTransport *transport = (QuicTransport *) base;

  g_clear_pointer (&transport->dirty, g_ptr_array_unref);
  g_clear_pointer (&transport->cids, g_hash_table_unref);
  if (transport->timer_fd >= 0)
    close (transport->timer_fd);
  g_clear_pointer (&transport->timers, g_sequence_free);
  g_free (transport->rx_buffer);
  g_free (transport->tx_buffer);
}

CANOPY_TRANSPORT_COMMON_DEFINE (quic, QuicTransport, QUIC_PSK_LABEL, QUIC_PRIORITY,
                                quic_transport_init, quic_transport_setup,
                                quic_transport_finalize);

/* The elements and attributes quic_transport_configure() reads. */
#define QUIC_SCHEMA_ELEMENTS                                                                   \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ELEMENT (                                                     \
    "idle", CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("timeout-s", "unsignedInt"))             \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ELEMENT (                                                     \
    "limits", CANOPY_TRANSPORT_COMMON_SCHEMA_LIMITS                                            \
                CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("max-streams", "unsignedInt"))       \
  CANOPY_TRANSPORT_COMMON_SCHEMA_ELEMENT (                                                     \
    "udp", CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("max-payload", "unsignedShort")           \
             CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("socket-buffer", "unsignedInt")         \
               CANOPY_TRANSPORT_COMMON_SCHEMA_ATTRIBUTE ("gso", "boolean"))

const char canopy_quic_transport_schema[] =
  CANOPY_TRANSPORT_COMMON_SCHEMA ("quic", QUIC_SCHEMA_ELEMENTS);
