/* What only the quic plugin needs checked beyond the conformance suite:
 * more messages than streams, a wildcard listener, and a peer that goes
 * silent without closing (the idle timeout). */
#include "build-config.h"

#include <stdio.h>
#include <string.h>

#include "tests/canopy-test.h"
#include "lib/config.h"
#include "lib/keys.h"
#include "lib/plugin-loader.h"
#include "lib/transport.h"

typedef struct {
  GMainContext *context;
  CanopyConfig *config;
  CanopyTransport *transport;
  CanopyTransportConnection *incoming;
  CanopyTransportConnection *connected;
  GError *closed;
  guint messages;
  /* Each "message N" arrived once and intact. QUIC carries each message on
   * its own stream, so the contract does not promise their order. */
  gboolean each_once;
  guint8 seen[1024];
  guint64 payload_bytes;
  gboolean hash_payloads; /* every payload must be the same as the first */
  char *first_sha256;
  guint bad_payloads;
} QuicPeer;

static void
quic_peer_on_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  ((QuicPeer *) user_data)->incoming = conn;
}

static void
quic_peer_on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                      gpointer user_data)
{
  QuicPeer *peer = user_data;
  gsize len;
  const char *data = g_bytes_get_data (header, &len);
  g_autofree char *text = g_strndup (data, len);
  guint n = G_MAXUINT;

  if (sscanf (text, "message %u", &n) != 1 || n >= sizeof peer->seen || peer->seen[n]++ > 0)
    peer->each_once = FALSE;
  peer->messages++;
  if (payload != NULL)
    peer->payload_bytes += g_bytes_get_size (payload);
  if (payload != NULL && peer->hash_payloads)
    {
      g_autofree char *sha = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, payload);
      if (peer->first_sha256 == NULL)
        peer->first_sha256 = g_steal_pointer (&sha);
      else if (!g_str_equal (sha, peer->first_sha256))
        peer->bad_payloads++;
    }
}

static void
quic_peer_on_drained (CanopyTransportConnection *conn, gpointer user_data)
{
}

static void
quic_peer_on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  QuicPeer *peer = user_data;
  g_clear_error (&peer->closed);
  peer->closed = g_error_copy (error);
  if (peer->incoming == conn)
    peer->incoming = NULL;
  if (peer->connected == conn)
    peer->connected = NULL;
}

static const CanopyTransportEvents quic_peer_events = {
  .incoming = quic_peer_on_incoming,
  .message = quic_peer_on_message,
  .drained = quic_peer_on_drained,
  .closed = quic_peer_on_closed,
};

static const CanopyPlugin *
quic_plugin (CanopyPluginLoader *loader)
{
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *plugin = canopy_plugin_loader_load (loader, "quic",
                                                          CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (plugin);
  return plugin;
}

static QuicPeer *
quic_peer_new (const CanopyPlugin *plugin, const char *id, const char *inner, gboolean own_context)
{
  QuicPeer *peer = g_new0 (QuicPeer, 1);
  g_autoptr (GError) error = NULL;
  g_autofree char *xml = g_strdup_printf ("<agent><server host='::1'/>"
                                          "<transport plugin='quic'>%s</transport></agent>",
                                          inner);
  const CanopyConfigNode *element;
  CanopySharedKey key;
  CanopyTransportCredentials creds;

  peer->each_once = TRUE;
  peer->context = own_context ? g_main_context_new ()
                              : g_main_context_ref (g_main_context_default ());
  peer->config = canopy_config_load_data (xml, -1, "<quic-test>", CANOPY_SCHEMA_AGENT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  element = canopy_config_node_get_child (canopy_config_get_root (peer->config), "transport");
  canopy_config_validate_node (element, canopy_plugin_get_descriptor (plugin)->config_schema,
                               &error);
  CANOPY_ASSERT_NO_ERROR (error);
  memset (key.bytes, 0x42, sizeof key.bytes);
  canopy_keys_make_transport_credentials (&key, id, &creds, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  peer->transport = canopy_transport_new (plugin, element, &creds, peer->context,
                                          &quic_peer_events, peer, &error);
  canopy_keys_wipe (&creds, sizeof creds);
  CANOPY_ASSERT_NO_ERROR (error);
  return peer;
}

static void
quic_peer_free (QuicPeer *peer)
{
  g_clear_pointer (&peer->transport, canopy_transport_free);
  while (g_main_context_iteration (peer->context, FALSE))
    ;
  g_clear_pointer (&peer->config, canopy_config_free);
  g_clear_error (&peer->closed);
  g_free (peer->first_sha256);
  g_main_context_unref (peer->context);
  g_free (peer);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (QuicPeer, quic_peer_free)

/* Runs both contexts (once if they are the same) until @done holds or @ms pass. */
static gboolean
quic_wait (QuicPeer *a, QuicPeer *b, gboolean (*done) (QuicPeer *, QuicPeer *), guint ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) ms * 1000;
  while (!done (a, b) && g_get_monotonic_time () < deadline)
    {
      gboolean busy = FALSE;
      busy |= g_main_context_iteration (a->context, FALSE);
      if (b->context != a->context)
        busy |= g_main_context_iteration (b->context, FALSE);
      if (!busy)
        g_usleep (200);
    }
  return done (a, b);
}

static void
quic_on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QuicPeer *peer = user_data;
  g_autoptr (GError) error = NULL;
  peer->connected = canopy_transport_connect_finish (peer->transport, result, &error);
  CANOPY_ASSERT_NO_ERROR (error);
}

static gboolean
quic_is_connected (QuicPeer *client, QuicPeer *server)
{
  return client->connected != NULL && server->incoming != NULL;
}

static guint16
quic_listen (QuicPeer *server)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) addresses = NULL;
  CU_ASSERT_FATAL (canopy_transport_listen (server->transport, &error));
  addresses = canopy_transport_get_listen_addresses (server->transport);
  CU_ASSERT_FATAL (addresses->len == 1);
  return g_inet_socket_address_get_port (addresses->pdata[0]);
}

static void
quic_connect_to (QuicPeer *client, QuicPeer *server, const char *host, guint16 port)
{
  client->connected = NULL;
  server->incoming = NULL;
  canopy_transport_connect_async (client->transport, host, port, NULL, quic_on_connected, client);
  CU_ASSERT_FATAL (quic_wait (client, server, quic_is_connected, 20000));
}

static void
quic_connect (QuicPeer *client, QuicPeer *server, guint16 port)
{
  quic_connect_to (client, server, "::1", port);
}

#define QUIC_TEST_MESSAGES 300

static gboolean
quic_all_arrived (QuicPeer *client, QuicPeer *server)
{
  return server->messages == QUIC_TEST_MESSAGES;
}

/* Far more messages than the peer grants streams at once, some with a
 * payload larger than a stream's initial window: each stream must be
 * retired on both ends and its credit given back, so every message arrives
 * once. */
static void
test_quic_more_messages_than_streams (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin = quic_plugin (loader);
  g_autoptr (QuicPeer) server = quic_peer_new (plugin, "server-1",
                                               "<listen address='::1' port='0'/>"
                                               "<limits max-streams='4'/>", FALSE);
  g_autoptr (QuicPeer) client = quic_peer_new (plugin, "device-a",
                                               "<limits max-streams='4'"
                                               " send-queue-high='268435456'/>", FALSE);
  g_autoptr (GBytes) payload = g_bytes_new_take (g_malloc0 (1536 * 1024), 1536 * 1024);

  quic_connect (client, server, quic_listen (server));
  for (guint i = 0; i < QUIC_TEST_MESSAGES; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text = g_strdup_printf ("message %u", i);
      g_autoptr (GBytes) header = g_bytes_new (text, strlen (text));
      CU_ASSERT (canopy_transport_send (client->connected, header, i % 50 == 0 ? payload : NULL,
                                        &error));
      CANOPY_ASSERT_NO_ERROR (error);
    }
  CU_ASSERT (quic_wait (client, server, quic_all_arrived, 20000));
  CU_ASSERT_EQUAL (server->messages, QUIC_TEST_MESSAGES);
  CU_ASSERT (server->each_once);
  CU_ASSERT_EQUAL (server->payload_bytes, 6 * 1536 * 1024);
  CU_ASSERT_PTR_NULL (server->closed);
}

static gboolean
quic_two_arrived (QuicPeer *client, QuicPeer *server)
{
  return server->messages == 2;
}

/* "::" and "0.0.0.0" each answer from the address the client wrote to. */
static void
test_quic_wildcard_listener (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin = quic_plugin (loader);
  g_autoptr (QuicPeer) server = quic_peer_new (plugin, "server-1",
                                               "<listen address='::' port='0'/>"
                                               "<listen address='0.0.0.0' port='0'/>", FALSE);
  g_autoptr (QuicPeer) client = quic_peer_new (plugin, "device-a", "", FALSE);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) addresses = NULL;
  const char *hosts[] = { "::1", "127.0.0.1" };

  CU_ASSERT_FATAL (canopy_transport_listen (server->transport, &error));
  addresses = canopy_transport_get_listen_addresses (server->transport);
  CU_ASSERT_FATAL (addresses->len == 2);
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *text = g_strdup_printf ("message %u", i);
      g_autoptr (GBytes) header = g_bytes_new (text, strlen (text));
      quic_connect_to (client, server, hosts[i],
                       g_inet_socket_address_get_port (addresses->pdata[i]));
      CU_ASSERT_STRING_EQUAL (canopy_transport_connection_get_peer_id (client->connected),
                              "server-1");
      CU_ASSERT (canopy_transport_send (client->connected, header, NULL, &error));
      CANOPY_ASSERT_NO_ERROR (error);
    }
  CU_ASSERT (quic_wait (client, server, quic_two_arrived, 10000));
  CU_ASSERT (server->each_once);
}

static gboolean
quic_server_closed (QuicPeer *client, QuicPeer *server)
{
  return server->closed != NULL;
}

/* A client that stops answering without a word is cut off by the idle
 * timeout, and the process lives on. */
static void
test_quic_idle_timeout (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin = quic_plugin (loader);
  g_autoptr (QuicPeer) server = quic_peer_new (plugin, "server-1",
                                               "<listen address='::1' port='0'/>"
                                               "<idle timeout-s='1'/>", TRUE);
  g_autoptr (QuicPeer) client = quic_peer_new (plugin, "device-a", "<idle timeout-s='1'/>", TRUE);
  gint64 start;

  quic_connect (client, server, quic_listen (server));
  start = g_get_monotonic_time ();
  /* Only the server runs from here on: the client is silent. */
  CU_ASSERT_FATAL (quic_wait (server, server, quic_server_closed, 10000));
  CU_ASSERT (g_error_matches (server->closed, CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_CLOSED));
  CANOPY_ASSERT_CONTAINS (server->closed->message, "idle timeout");
  CU_ASSERT (g_get_monotonic_time () - start >= 900 * 1000);
}

/* A UDP relay between a client and a server that drops some datagrams
 * each way, as a lossy WAN link would. */
typedef struct {
  GSocket *front; /* the client's side */
  GSocket *back;  /* connected to the server */
  GSource *front_source;
  GSource *back_source;
  GSocketAddress *server;
  GSocketAddress *client;
  GRand *rand;
  double loss;
  guint dropped;
  guint relayed;
} QuicLossyRelay;

static gboolean
quic_relay_on_front (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  QuicLossyRelay *relay = user_data;
  guint8 buf[65536];
  GSocketAddress *from = NULL;
  gssize n;

  while ((n = g_socket_receive_from (socket, &from, (gchar *) buf, sizeof buf, NULL, NULL)) > 0)
    {
      g_clear_object (&relay->client);
      relay->client = from;
      from = NULL;
      if (g_rand_double (relay->rand) < relay->loss)
        relay->dropped++;
      else if (g_socket_send (relay->back, (gchar *) buf, (gsize) n, NULL, NULL) > 0)
        relay->relayed++;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
quic_relay_on_back (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  QuicLossyRelay *relay = user_data;
  guint8 buf[65536];
  gssize n;

  while ((n = g_socket_receive (socket, (gchar *) buf, sizeof buf, NULL, NULL)) > 0)
    {
      if (relay->client == NULL || g_rand_double (relay->rand) < relay->loss)
        relay->dropped++;
      else if (g_socket_send_to (relay->front, relay->client, (gchar *) buf, (gsize) n, NULL,
                                 NULL) > 0)
        relay->relayed++;
    }
  return G_SOURCE_CONTINUE;
}

static GSocket *
quic_relay_socket (GSocketAddress *bind_to, GSocketAddress *connect_to, GSocketSourceFunc func,
                   QuicLossyRelay *relay, GSource **source_out)
{
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV6, G_SOCKET_TYPE_DATAGRAM,
                                  G_SOCKET_PROTOCOL_UDP, NULL);
  GSource *source;

  CU_ASSERT_FATAL (socket != NULL);
  g_socket_set_blocking (socket, FALSE);
  if (bind_to != NULL)
    CU_ASSERT_FATAL (g_socket_bind (socket, bind_to, FALSE, NULL));
  if (connect_to != NULL)
    CU_ASSERT_FATAL (g_socket_connect (socket, connect_to, NULL, NULL));
  source = g_socket_create_source (socket, G_IO_IN, NULL);
  g_source_set_callback (source, G_SOURCE_FUNC (func), relay, NULL);
  g_source_attach (source, NULL);
  *source_out = source;
  return socket;
}

static guint16
quic_relay_start (QuicLossyRelay *relay, guint16 server_port, double loss)
{
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) front = NULL;

  relay->rand = g_rand_new_with_seed (11);
  relay->loss = loss;
  relay->server = g_inet_socket_address_new (loopback, server_port);
  relay->front = quic_relay_socket (any, NULL, quic_relay_on_front, relay,
                                    &relay->front_source);
  relay->back = quic_relay_socket (NULL, relay->server, quic_relay_on_back, relay,
                                   &relay->back_source);
  front = g_socket_get_local_address (relay->front, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (front));
}

/* What a NAT does when its mapping expires: the client's datagrams reach
 * the server from a new port. */
static void
quic_relay_rebind (QuicLossyRelay *relay)
{
  g_source_destroy (relay->back_source);
  g_clear_pointer (&relay->back_source, g_source_unref);
  g_socket_close (relay->back, NULL);
  g_clear_object (&relay->back);
  relay->back = quic_relay_socket (NULL, relay->server, quic_relay_on_back, relay,
                                   &relay->back_source);
}

static void
quic_relay_stop (QuicLossyRelay *relay)
{
  g_source_destroy (relay->front_source);
  g_source_destroy (relay->back_source);
  g_clear_pointer (&relay->front_source, g_source_unref);
  g_clear_pointer (&relay->back_source, g_source_unref);
  g_socket_close (relay->front, NULL);
  g_socket_close (relay->back, NULL);
  g_clear_object (&relay->front);
  g_clear_object (&relay->back);
  g_clear_object (&relay->client);
  g_clear_object (&relay->server);
  g_rand_free (relay->rand);
}

#define QUIC_LOSSY_MESSAGES 40

static gboolean
quic_lossy_arrived (QuicPeer *client, QuicPeer *server)
{
  return server->messages == QUIC_LOSSY_MESSAGES;
}

/* 5% of datagrams lost each way: every message still arrives whole. */
static void
test_quic_lossy_link (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin = quic_plugin (loader);
  g_autoptr (QuicPeer) server = quic_peer_new (plugin, "server-1",
                                               "<listen address='::1' port='0'/>", FALSE);
  g_autoptr (QuicPeer) client = quic_peer_new (plugin, "device-a",
                                               "<limits send-queue-high='268435456'/>", FALSE);
  g_autoptr (GBytes) payload = NULL;
  QuicLossyRelay relay = { 0 };
  guint8 *data = g_malloc (256 * 1024);
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);

  for (gsize i = 0; i < 256 * 1024; i++)
    data[i] = (guint8) g_rand_int (rand);
  payload = g_bytes_new_take (data, 256 * 1024);
  server->hash_payloads = TRUE;
  quic_connect (client, server, quic_relay_start (&relay, quic_listen (server), 0.05));
  for (guint i = 0; i < QUIC_LOSSY_MESSAGES; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text = g_strdup_printf ("message %u", i);
      g_autoptr (GBytes) header = g_bytes_new (text, strlen (text));
      CU_ASSERT (canopy_transport_send (client->connected, header, i % 2 == 0 ? payload : NULL,
                                        &error));
      CANOPY_ASSERT_NO_ERROR (error);
    }
  CU_ASSERT (quic_wait (client, server, quic_lossy_arrived, 30000));
  CU_ASSERT_EQUAL (server->messages, QUIC_LOSSY_MESSAGES);
  CU_ASSERT_EQUAL (server->payload_bytes, QUIC_LOSSY_MESSAGES / 2 * 256 * 1024);
  CU_ASSERT_EQUAL (server->bad_payloads, 0);
  CU_ASSERT (relay.dropped > 0);
  CU_ASSERT_PTR_NULL (server->closed);
  quic_relay_stop (&relay);
}

static gboolean
quic_half_arrived (QuicPeer *client, QuicPeer *server)
{
  return server->messages == QUIC_LOSSY_MESSAGES / 2;
}

static void
quic_send_numbered (QuicPeer *client, guint from, guint to, GBytes *payload)
{
  for (guint i = from; i < to; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *text = g_strdup_printf ("message %u", i);
      g_autoptr (GBytes) header = g_bytes_new (text, strlen (text));
      CU_ASSERT (canopy_transport_send (client->connected, header, payload, &error));
      CANOPY_ASSERT_NO_ERROR (error);
    }
}

static guint16
quic_port_of (GSocketAddress *address)
{
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
}

/* The client's address changes under a live connection (NAT rebinding):
 * the server follows it and the messages keep coming. */
static void
test_quic_nat_rebinding (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin = quic_plugin (loader);
  g_autoptr (QuicPeer) server = quic_peer_new (plugin, "server-1",
                                               "<listen address='::1' port='0'/>", FALSE);
  g_autoptr (QuicPeer) client = quic_peer_new (plugin, "device-a", "", FALSE);
  g_autoptr (GBytes) payload = g_bytes_new_take (g_malloc0 (64 * 1024), 64 * 1024);
  QuicLossyRelay relay = { 0 };
  guint16 before;

  quic_connect (client, server, quic_relay_start (&relay, quic_listen (server), 0));
  quic_send_numbered (client, 0, QUIC_LOSSY_MESSAGES / 2, payload);
  CU_ASSERT_FATAL (quic_wait (client, server, quic_half_arrived, 10000));
  before = quic_port_of (canopy_transport_connection_get_peer_address (server->incoming));

  quic_relay_rebind (&relay);
  quic_send_numbered (client, QUIC_LOSSY_MESSAGES / 2, QUIC_LOSSY_MESSAGES, payload);
  CU_ASSERT (quic_wait (client, server, quic_lossy_arrived, 15000));
  CU_ASSERT (server->each_once);
  CU_ASSERT_PTR_NULL (server->closed);
  CU_ASSERT_PTR_NOT_NULL_FATAL (server->incoming);
  CU_ASSERT_NOT_EQUAL (quic_port_of (canopy_transport_connection_get_peer_address (
                         server->incoming)), before);
  quic_relay_stop (&relay);
}

typedef struct {
  CanopyTransport *transport;
  GError *error;
  gboolean done;
} QuicConnectResult;

static void
quic_on_connect_failed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  QuicConnectResult *out = user_data;
  (void) source;
  CU_ASSERT_PTR_NULL (canopy_transport_connect_finish (out->transport, result, &out->error));
  out->done = TRUE;
}

/* Nothing listens: the ICMP answer to the first datagram is a refusal,
 * long before the connect timeout. */
static void
test_quic_refused (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  const CanopyPlugin *plugin = quic_plugin (loader);
  g_autoptr (QuicPeer) client = quic_peer_new (plugin, "device-a", "<connect timeout-ms='20000'/>",
                                               FALSE);
  g_autoptr (GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV6, G_SOCKET_TYPE_DATAGRAM,
                                             G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  QuicConnectResult result = { client->transport, NULL, FALSE };
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  guint16 port;

  /* A port that was free a moment ago. */
  CU_ASSERT_FATAL (g_socket_bind (socket, any, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_socket_close (socket, NULL);

  canopy_transport_connect_async (client->transport, "::1", port, NULL, quic_on_connect_failed,
                                  &result);
  while (!result.done && g_get_monotonic_time () < deadline)
    g_main_context_iteration (client->context, TRUE);
  CU_ASSERT_FATAL (result.done);
  CU_ASSERT (g_error_matches (result.error, CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_REFUSED));
  g_clear_error (&result.error);
}

CANOPY_TEST_SUITE (quic_transport, "transport-quic", NULL, NULL,
                   { "refused", test_quic_refused },
                   { "more-messages-than-streams", test_quic_more_messages_than_streams },
                   { "wildcard-listener", test_quic_wildcard_listener },
                   { "idle-timeout", test_quic_idle_timeout },
                   { "lossy-link", test_quic_lossy_link },
                   { "nat-rebinding", test_quic_nat_rebinding });
