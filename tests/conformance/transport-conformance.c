/* The same assertions for every transport plugin, loaded as real modules
 * from the build tree; a plugin that was not built is skipped, visibly. */
#include "build-config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "tests/canopy-test.h"
#include "lib/config.h"
#include "lib/keys.h"
#include "lib/plugin-loader.h"
#include "lib/transport.h"

#define CONFORMANCE_LARGE_PAYLOAD (256u * 1024 * 1024)
#define CONFORMANCE_CONNECTIONS 1000
#define CONFORMANCE_TIMEOUT_MS 30000

typedef struct {
  GMainContext *context;
  CanopyConfig *config;
  CanopyTransport *transport;
  CanopyTransportConnection *connected; /* last connect_async result */
  GError *connect_error;
  guint connects_done;
  GPtrArray *incoming;          /* CanopyTransportConnection, not owned */
  GPtrArray *rejected;          /* GError */
  GPtrArray *closed;            /* GError */
  guint messages;
  guint64 payload_bytes;
  char *last_header;
  gboolean last_had_payload;
  char *last_payload_sha256;
  guint drained;
  gboolean echo;                /* answer every message with its header */
  gboolean hash_payloads;
} Peer;

typedef struct {
  const char *plugin_name;
  CanopyPluginLoader *loader;
  const CanopyPlugin *plugin;
} Fixture;

/* --- events --------------------------------------------------------------- */

static void
peer_on_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  Peer *peer = user_data;
  g_ptr_array_add (peer->incoming, conn);
}

static void
peer_on_rejected (GSocketAddress *address, const GError *error, gpointer user_data)
{
  Peer *peer = user_data;
  (void) address;
  g_ptr_array_add (peer->rejected, g_error_copy (error));
}

static void
peer_on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                 gpointer user_data)
{
  Peer *peer = user_data;
  gsize len;
  const char *data = g_bytes_get_data (header, &len);

  peer->messages++;
  g_free (peer->last_header);
  peer->last_header = g_strndup (data, len);
  peer->last_had_payload = payload != NULL;
  if (payload != NULL)
    {
      peer->payload_bytes += g_bytes_get_size (payload);
      if (peer->hash_payloads)
        {
          g_free (peer->last_payload_sha256);
          peer->last_payload_sha256 = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, payload);
        }
    }
  if (peer->echo)
    {
      g_autoptr (GError) error = NULL;
      gboolean sent = canopy_transport_send (conn, header, NULL, &error);
      CANOPY_ASSERT_NO_ERROR (error);
      CU_ASSERT (sent);
    }
}

static void
peer_on_drained (CanopyTransportConnection *conn, gpointer user_data)
{
  Peer *peer = user_data;
  (void) conn;
  peer->drained++;
}

static void
peer_on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  Peer *peer = user_data;
  CU_ASSERT_PTR_NOT_NULL (error);
  g_ptr_array_remove (peer->incoming, conn);
  if (peer->connected == conn)
    peer->connected = NULL;
  g_ptr_array_add (peer->closed, error != NULL ? g_error_copy (error)
                                               : g_error_new_literal (G_IO_ERROR, 0, "no error"));
}

static const CanopyTransportEvents peer_events = {
  .incoming = peer_on_incoming,
  .rejected = peer_on_rejected,
  .message = peer_on_message,
  .drained = peer_on_drained,
  .closed = peer_on_closed,
};

/* --- peers ---------------------------------------------------------------- */

typedef struct {
  guint8 key_byte;        /* the shared key is this byte 32 times */
  const char *limits;     /* extra attributes of <limits>, or NULL */
  gboolean own_context;   /* a context of its own, so it can be stalled */
} PeerOptions;

static Peer *
peer_new (Fixture *fixture, const char *device_id, const PeerOptions *options)
{
  Peer *peer = g_new0 (Peer, 1);
  g_autoptr (GError) error = NULL;
  g_autofree char *xml = g_strdup_printf (
    "<agent><server host='::1'/>"
    "<transport plugin='%s'>"
    "<listen address='::1' port='0'/>"
    "<connect timeout-ms='20000'/>"
    "<limits %s/>"
    "</transport></agent>",
    fixture->plugin_name,
    options->limits != NULL ? options->limits
                            : "max-header='65536' max-payload='300000000' "
                              "send-queue-high='8388608'");
  const CanopyConfigNode *element;
  CanopySharedKey key;
  CanopyTransportCredentials creds;

  peer->context = options->own_context ? g_main_context_new ()
                                       : g_main_context_ref (g_main_context_default ());
  peer->incoming = g_ptr_array_new ();
  peer->rejected = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);
  peer->closed = g_ptr_array_new_with_free_func ((GDestroyNotify) g_error_free);

  peer->config = canopy_config_load_data (xml, -1, "<conformance>", CANOPY_SCHEMA_AGENT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  element = canopy_config_node_get_child (canopy_config_get_root (peer->config), "transport");
  canopy_config_validate_node (element,
                               canopy_plugin_get_descriptor (fixture->plugin)->config_schema,
                               &error);
  CANOPY_ASSERT_NO_ERROR (error);

  memset (key.bytes, options->key_byte, sizeof key.bytes);
  canopy_keys_make_transport_credentials (&key, device_id, &creds, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  peer->transport = canopy_transport_new (fixture->plugin, element, &creds, peer->context,
                                          &peer_events, peer, &error);
  canopy_keys_wipe (&creds, sizeof creds);
  canopy_keys_wipe (&key, sizeof key);
  CANOPY_ASSERT_NO_ERROR (error);
  return peer;
}

static void
peer_free (Peer *peer)
{
  g_clear_pointer (&peer->transport, canopy_transport_free);
  /* Let cancelled connects and closing sockets finish on their context. */
  while (g_main_context_iteration (peer->context, FALSE))
    ;
  g_clear_pointer (&peer->config, canopy_config_free);
  g_ptr_array_unref (peer->incoming);
  g_ptr_array_unref (peer->rejected);
  g_ptr_array_unref (peer->closed);
  g_clear_error (&peer->connect_error);
  g_free (peer->last_header);
  g_free (peer->last_payload_sha256);
  g_main_context_unref (peer->context);
  g_free (peer);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC (Peer, peer_free)

static guint16
peer_listen (Peer *peer)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) addresses = NULL;

  CU_ASSERT_FATAL (canopy_transport_listen (peer->transport, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  addresses = canopy_transport_get_listen_addresses (peer->transport);
  CU_ASSERT_FATAL (addresses->len >= 1);
  return g_inet_socket_address_get_port (addresses->pdata[0]);
}

static void
peer_on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Peer *peer = user_data;
  GError *error = NULL;
  CanopyTransportConnection *conn;

  (void) source;
  conn = canopy_transport_connect_finish (peer->transport, result, &error);
  peer->connects_done++;
  if (conn != NULL)
    peer->connected = conn;
  else
    {
      g_clear_error (&peer->connect_error);
      peer->connect_error = error;
    }
}

/* One turn of every listed peer's context, napping when all are idle. */
static void
peers_turn (Peer **peers)
{
  gboolean busy = FALSE;
  for (guint i = 0; peers[i] != NULL; i++)
    for (guint j = 0; j < 64 && g_main_context_iteration (peers[i]->context, FALSE); j++)
      busy = TRUE;
  if (!busy)
    g_usleep (200);
}

/* Waits, running the listed peers' contexts, until @expr holds or @ms
 * pass; evaluates to whether it held. */
#define WAIT_ON(peer_list, expr, ms)                                           \
  ({                                                                           \
    gint64 deadline_ = g_get_monotonic_time () + (gint64) (ms) * 1000;        \
    gboolean held_;                                                            \
    while (!(held_ = (expr)) && g_get_monotonic_time () < deadline_)           \
      peers_turn (peer_list);                                                  \
    held_;                                                                     \
  })

static CanopyTransportConnection *
peer_connect (Peer *client, Peer *server, guint16 port)
{
  Peer *both[] = { client, server, NULL };
  guint before = client->connects_done;

  client->connected = NULL;
  canopy_transport_connect_async (client->transport, "::1", port, NULL, peer_on_connected, client);
  CU_ASSERT_FATAL (WAIT_ON (both, client->connects_done > before, CONFORMANCE_TIMEOUT_MS));
  if (client->connect_error != NULL
      && !g_error_matches (client->connect_error, CANOPY_TRANSPORT_ERROR,
                           CANOPY_TRANSPORT_ERROR_KEY_MISMATCH))
    fprintf (stderr, "\n    connect failed: %s\n", client->connect_error->message);
  return client->connected;
}

/* --- fixture -------------------------------------------------------------- */

static gboolean
fixture_init (Fixture *fixture, const char *plugin_name)
{
  g_autoptr (GError) error = NULL;

  fixture->plugin_name = plugin_name;
  fixture->loader = canopy_plugin_loader_new (NULL);
  fixture->plugin = canopy_plugin_loader_load (fixture->loader, plugin_name,
                                               CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  if (g_error_matches (error, CANOPY_PLUGIN_ERROR, CANOPY_PLUGIN_ERROR_NOT_FOUND))
    {
      canopy_test_skip ("transport plugin \"%s\" is not built "
              "(no canopy-%s.so on CANOPY_PLUGIN_PATH)", plugin_name, plugin_name);
      return FALSE;
    }
  CANOPY_ASSERT_NO_ERROR (error);
  return TRUE;
}

static void
fixture_clear (Fixture *fixture)
{
  g_clear_pointer (&fixture->loader, canopy_plugin_loader_free);
}

static gsize
process_rss_anon_kib (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return 0;
  line = strstr (status, "RssAnon:");
  return line != NULL ? (gsize) g_ascii_strtoull (line + 8, NULL, 10) : 0;
}

static guint
count_errors (GPtrArray *errors, int code)
{
  guint n = 0;
  for (guint i = 0; i < errors->len; i++)
    if (g_error_matches (errors->pdata[i], CANOPY_TRANSPORT_ERROR, code))
      n++;
  return n;
}

static const PeerOptions default_options = { 0x42, NULL, FALSE };

/* --- the assertions -------------------------------------------------------- */

/* Both directions, the peer ID from the handshake on both ends. */
static void
conformance_exchange (Fixture *fixture)
{
  g_autoptr (Peer) server = peer_new (fixture, "server-1", &default_options);
  g_autoptr (Peer) client = peer_new (fixture, "device-a", &default_options);
  Peer *both[] = { client, server, NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) header = g_bytes_new_static ("hello", 5);
  g_autoptr (GBytes) payload = g_bytes_new_static ("world", 5);
  g_autoptr (GBytes) reply = g_bytes_new_static ("reply", 5);
  CanopyTransportConnection *conn, *accepted;
  guint16 port = peer_listen (server);

  conn = peer_connect (client, server, port);
  CU_ASSERT_PTR_NOT_NULL_FATAL (conn);
  CU_ASSERT_STRING_EQUAL (canopy_transport_connection_get_peer_id (conn), "server-1");
  CU_ASSERT_PTR_NOT_NULL (canopy_transport_connection_get_peer_address (conn));

  CU_ASSERT_FATAL (WAIT_ON (both, server->incoming->len == 1, CONFORMANCE_TIMEOUT_MS));
  accepted = server->incoming->pdata[0];
  CU_ASSERT_STRING_EQUAL (canopy_transport_connection_get_peer_id (accepted), "device-a");
  CU_ASSERT_PTR_NOT_NULL (canopy_transport_connection_get_peer_address (accepted));

  CU_ASSERT (canopy_transport_send (conn, header, payload, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (WAIT_ON (both, server->messages == 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT_STRING_EQUAL (server->last_header, "hello");
  CU_ASSERT (server->last_had_payload);
  CU_ASSERT_EQUAL (server->payload_bytes, 5);

  CU_ASSERT (canopy_transport_send (accepted, reply, NULL, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (WAIT_ON (both, client->messages == 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT_STRING_EQUAL (client->last_header, "reply");
  CU_ASSERT (!client->last_had_payload);

  /* A closed connection refuses to send, with the CLOSED code. */
  canopy_transport_close (conn);
  CU_ASSERT_FATAL (WAIT_ON (both, server->closed->len == 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT (g_error_matches (server->closed->pdata[0], CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_CLOSED));
  CU_ASSERT_EQUAL (client->closed->len, 0);
}

static void
conformance_wrong_key_one_way (Fixture *fixture, guint8 server_key, guint8 client_key)
{
  PeerOptions server_options = { server_key, NULL, FALSE };
  PeerOptions client_options = { client_key, NULL, FALSE };
  g_autoptr (Peer) server = peer_new (fixture, "server-1", &server_options);
  g_autoptr (Peer) client = peer_new (fixture, "device-a", &client_options);
  Peer *both[] = { client, server, NULL };
  guint16 port = peer_listen (server);

  CU_ASSERT_PTR_NULL (peer_connect (client, server, port));
  CU_ASSERT_FATAL (client->connect_error != NULL);
  CU_ASSERT (g_error_matches (client->connect_error, CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_KEY_MISMATCH));
  CANOPY_ASSERT_CONTAINS (client->connect_error->message, "shared key");

  CU_ASSERT_FATAL (WAIT_ON (both, server->rejected->len == 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT (g_error_matches (server->rejected->pdata[0], CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_KEY_MISMATCH));
  CANOPY_ASSERT_CONTAINS (((GError *) server->rejected->pdata[0])->message, "shared key");
  CU_ASSERT_EQUAL (server->incoming->len, 0);
  CU_ASSERT_EQUAL (server->messages, 0);
  CU_ASSERT_EQUAL (client->messages, 0);
}

static void
conformance_wrong_key (Fixture *fixture)
{
  conformance_wrong_key_one_way (fixture, 0x42, 0x43);
  conformance_wrong_key_one_way (fixture, 0x44, 0x42);
}

static char *
write_random_file (const char *dir, gsize size)
{
  char *path = g_build_filename (dir, "payload.bin", NULL);
  FILE *file = fopen (path, "wb");
  g_autoptr (GRand) rand = g_rand_new_with_seed (4);
  guint32 *block = g_new (guint32, 1024 * 1024 / 4);

  CU_ASSERT_PTR_NOT_NULL_FATAL (file);
  for (gsize done = 0; done < size; done += 1024 * 1024)
    {
      for (gsize i = 0; i < 1024 * 1024 / 4; i++)
        block[i] = g_rand_int (rand);
      CU_ASSERT_FATAL (fwrite (block, 1, 1024 * 1024, file) == 1024 * 1024);
    }
  CU_ASSERT_FATAL (fclose (file) == 0);
  g_free (block);
  return path;
}

static void
conformance_large_payload (Fixture *fixture)
{
  g_autoptr (Peer) server = peer_new (fixture, "server-1", &default_options);
  g_autoptr (Peer) client = peer_new (fixture, "device-a", &default_options);
  Peer *both[] = { client, server, NULL };
  g_autofree char *dir = canopy_test_make_tmpdir ("transport-large");
  g_autofree char *path = write_random_file (dir, CONFORMANCE_LARGE_PAYLOAD);
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) mapped = g_mapped_file_new (path, FALSE, &error);
  g_autoptr (GBytes) header = g_bytes_new_static ("chunk", 5);
  g_autoptr (GBytes) payload = NULL;
  g_autoptr (GBytes) medium = NULL;
  g_autoptr (GBytes) small = g_bytes_new_static ("tail.", 5);
  g_autofree char *expected = NULL;
  g_autofree char *expected_medium = NULL;
  CanopyTransportConnection *conn;

  CANOPY_ASSERT_NO_ERROR (error);
  payload = canopy_transport_payload_new_mapped (mapped, 0, CONFORMANCE_LARGE_PAYLOAD, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_EQUAL (g_bytes_get_data (payload, NULL), g_mapped_file_get_contents (mapped));
  expected = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, payload);
  server->hash_payloads = TRUE;

  conn = peer_connect (client, server, peer_listen (server));
  CU_ASSERT_PTR_NOT_NULL_FATAL (conn);
  CU_ASSERT (canopy_transport_send (conn, header, payload, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (WAIT_ON (both, server->messages == 1, 60000));
  CU_ASSERT_EQUAL (server->payload_bytes, CONFORMANCE_LARGE_PAYLOAD);
  CU_ASSERT_STRING_EQUAL (server->last_payload_sha256, expected);

  /* What follows on the same connection, a payload of a few hundred KiB
   * and then a small one, arrives too, each whole. */
  medium = g_bytes_new_from_bytes (payload, 0, 300 * 1024);
  expected_medium = g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, medium);
  CU_ASSERT (canopy_transport_send (conn, header, medium, &error));
  CU_ASSERT_FATAL (WAIT_ON (both, server->messages == 2, 10000));
  CU_ASSERT_STRING_EQUAL (server->last_payload_sha256, expected_medium);
  CU_ASSERT (canopy_transport_send (conn, header, small, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (WAIT_ON (both, server->messages == 3, 10000));
  CU_ASSERT_EQUAL (server->payload_bytes, CONFORMANCE_LARGE_PAYLOAD + 300 * 1024 + 5);
  CU_ASSERT_EQUAL (server->closed->len, 0);
}

static void
raise_fd_limit (rlim_t want)
{
  struct rlimit limit;
  CU_ASSERT_FATAL (getrlimit (RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur < want)
    {
      limit.rlim_cur = MIN (want, limit.rlim_max);
      CU_ASSERT_FATAL (setrlimit (RLIMIT_NOFILE, &limit) == 0);
    }
  CU_ASSERT_FATAL (limit.rlim_cur >= want);
}

static void
on_concurrent_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Peer *peer = user_data;
  g_autoptr (GError) error = NULL;
  CanopyTransportConnection *conn;
  g_autofree char *text = NULL;
  g_autoptr (GBytes) header = NULL;

  (void) source;
  conn = canopy_transport_connect_finish (peer->transport, result, &error);
  peer->connects_done++;
  CANOPY_ASSERT_NO_ERROR (error);
  text = g_strdup_printf ("ping %u", peer->connects_done);
  header = g_bytes_new (text, strlen (text));
  CU_ASSERT (canopy_transport_send (conn, header, NULL, &error));
  CANOPY_ASSERT_NO_ERROR (error);
}

static void
conformance_concurrent (Fixture *fixture)
{
  g_autoptr (Peer) server = NULL;
  g_autoptr (Peer) client = NULL;
  Peer *both[3];
  guint16 port;

  raise_fd_limit (2 * CONFORMANCE_CONNECTIONS + 256);
  server = peer_new (fixture, "server-1", &default_options);
  client = peer_new (fixture, "device-a", &default_options);
  both[0] = client;
  both[1] = server;
  both[2] = NULL;
  server->echo = TRUE;
  port = peer_listen (server);

  for (guint i = 0; i < CONFORMANCE_CONNECTIONS; i++)
    canopy_transport_connect_async (client->transport, "::1", port, NULL,
                                    on_concurrent_connected, client);
  CU_ASSERT (WAIT_ON (both, client->messages == CONFORMANCE_CONNECTIONS, 45000));
  CU_ASSERT_EQUAL (client->connects_done, CONFORMANCE_CONNECTIONS);
  CU_ASSERT_EQUAL (server->incoming->len, CONFORMANCE_CONNECTIONS);
  CU_ASSERT_EQUAL (server->messages, CONFORMANCE_CONNECTIONS);
  CU_ASSERT_EQUAL (client->messages, CONFORMANCE_CONNECTIONS);
  CU_ASSERT_EQUAL (server->rejected->len, 0);
  CU_ASSERT_EQUAL (server->closed->len, 0);
}

/* After trouble, the listener must still take a new client. */
static void
assert_still_serving (Fixture *fixture, Peer *server, guint16 port)
{
  g_autoptr (Peer) late = peer_new (fixture, "device-late", &default_options);
  Peer *both[] = { late, server, NULL };
  g_autoptr (GBytes) header = g_bytes_new_static ("still there?", 12);
  g_autoptr (GError) error = NULL;
  guint before = server->messages;
  CanopyTransportConnection *conn = peer_connect (late, server, port);

  CU_ASSERT_PTR_NOT_NULL_FATAL (conn);
  CU_ASSERT (canopy_transport_send (conn, header, NULL, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (WAIT_ON (both, server->messages == before + 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT_STRING_EQUAL (server->last_header, "still there?");
}

static void
conformance_peer_vanishes (Fixture *fixture)
{
  PeerOptions stalled = { 0x42, NULL, TRUE };
  g_autoptr (Peer) server = peer_new (fixture, "server-1", &stalled);
  Peer *client = peer_new (fixture, "device-a", &stalled);
  Peer *both[] = { client, server, NULL };
  Peer *only_server[] = { server, NULL };
  g_autoptr (GBytes) header = g_bytes_new_static ("big", 3);
  g_autoptr (GBytes) payload = g_bytes_new_take (g_malloc0 (64 * 1024 * 1024), 64 * 1024 * 1024);
  g_autoptr (GError) error = NULL;
  guint16 port = peer_listen (server);
  CanopyTransportConnection *conn = peer_connect (client, server, port);
  gsize total;

  CU_ASSERT_PTR_NOT_NULL_FATAL (conn);
  CU_ASSERT_FATAL (WAIT_ON (both, server->incoming->len == 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT (canopy_transport_send (conn, header, payload, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  total = canopy_transport_connection_get_queued_bytes (conn);

  /* Part of the message leaves, the server reads it, then the client is
   * gone without finishing it. Both run: over QUIC the queue shrinks only
   * when the server acknowledges what it received. */
  CU_ASSERT_FATAL (WAIT_ON (both, canopy_transport_connection_get_queued_bytes (conn) < total,
                            CONFORMANCE_TIMEOUT_MS));
  WAIT_ON (only_server, FALSE, 200);
  CU_ASSERT_EQUAL (server->messages, 0);
  peer_free (client);

  CU_ASSERT_FATAL (WAIT_ON (only_server, server->closed->len == 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT (((GError *) server->closed->pdata[0])->domain == CANOPY_TRANSPORT_ERROR);
  CU_ASSERT_EQUAL (server->messages, 0);
  assert_still_serving (fixture, server, port);
}

/* Garbage from a raw socket, over both TCP and UDP to the listen port,
 * whichever the transport uses. */
static void
send_raw_garbage (guint16 port)
{
  struct sockaddr_in6 address = { .sin6_family = AF_INET6, .sin6_port = htons (port),
                                  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  static const char garbage[] = "\x16\x03\x01\xff\xffGET / HTTP/1.0\r\n\r\n\x00\x01\x02";
  int tcp = socket (AF_INET6, SOCK_STREAM, 0);
  int udp = socket (AF_INET6, SOCK_DGRAM, 0);

  if (connect (tcp, (struct sockaddr *) &address, sizeof address) == 0)
    CU_ASSERT (write (tcp, garbage, sizeof garbage) > 0);
  for (int i = 0; i < 16; i++)
    sendto (udp, garbage, sizeof garbage - (gsize) i, 0, (struct sockaddr *) &address,
            sizeof address);
  close (tcp);
  close (udp);
}

static void
conformance_malformed (Fixture *fixture)
{
  PeerOptions strict = { 0x42, "max-header='1024' max-payload='1048576'", FALSE };
  PeerOptions lax = { 0x42, "max-header='65536' max-payload='4294967296'", FALSE };
  g_autoptr (Peer) server = peer_new (fixture, "server-1", &strict);
  g_autoptr (Peer) client = peer_new (fixture, "device-a", &lax);
  Peer *both[] = { client, server, NULL };
  g_autofree char *dir = canopy_test_make_tmpdir ("transport-oversized");
  g_autofree char *path = g_build_filename (dir, "sparse.bin", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) mapped = NULL;
  g_autoptr (GBytes) payload = NULL;
  g_autoptr (GBytes) small = g_bytes_new_static ("x", 1);
  g_autoptr (GBytes) big_header = g_bytes_new_take (g_malloc0 (4096), 4096);
  guint16 port = peer_listen (server);
  CanopyTransportConnection *conn;
  gsize rss_before;
  int fd;

  send_raw_garbage (port);
  WAIT_ON (both, FALSE, 300);
  CU_ASSERT_EQUAL (server->incoming->len, 0);
  assert_still_serving (fixture, server, port);

  /* A payload the receiver's limit refuses: announced as 2 GiB (a sparse
   * file, so the sender holds no memory for it); the receiver must drop
   * the connection on the frame header, not allocate. */
  fd = open (path, O_CREAT | O_WRONLY, 0600);
  CU_ASSERT_FATAL (fd >= 0 && ftruncate (fd, (off_t) 2 << 30) == 0);
  close (fd);
  mapped = g_mapped_file_new (path, FALSE, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  payload = canopy_transport_payload_new_mapped (mapped, 0, (gsize) 2 << 30, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  rss_before = process_rss_anon_kib ();
  conn = peer_connect (client, server, port);
  CU_ASSERT_PTR_NOT_NULL_FATAL (conn);
  CU_ASSERT (canopy_transport_send (conn, small, payload, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (WAIT_ON (both, count_errors (server->closed, CANOPY_TRANSPORT_ERROR_PROTOCOL) == 1,
                            CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT (WAIT_ON (both, client->closed->len == 1, CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT_EQUAL (server->messages, 1); /* only assert_still_serving's */
  CU_ASSERT (process_rss_anon_kib () < rss_before + 64 * 1024);

  /* A header over the receiver's limit. */
  conn = peer_connect (client, server, port);
  CU_ASSERT_PTR_NOT_NULL_FATAL (conn);
  CU_ASSERT (canopy_transport_send (conn, big_header, NULL, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (WAIT_ON (both, count_errors (server->closed, CANOPY_TRANSPORT_ERROR_PROTOCOL) == 2,
                            CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT_EQUAL (server->messages, 1);
  assert_still_serving (fixture, server, port);
}

static void
conformance_back_pressure (Fixture *fixture)
{
  PeerOptions reader_options = { 0x42, NULL, TRUE };
  PeerOptions sender_options = { 0x42, "max-payload='1048576' send-queue-high='1048576'", TRUE };
  g_autoptr (Peer) server = peer_new (fixture, "server-1", &reader_options);
  g_autoptr (Peer) client = peer_new (fixture, "device-a", &sender_options);
  Peer *both[] = { client, server, NULL };
  Peer *only_client[] = { client, NULL };
  g_autoptr (GBytes) header = g_bytes_new_static ("data", 4);
  g_autoptr (GBytes) payload = g_bytes_new_take (g_malloc0 (256 * 1024), 256 * 1024);
  /* The high-water mark, one message past it, and room for framing and
   * encryption overhead of bytes on their way to the kernel. */
  const gsize bound = 1048576 + 256 * 1024 + 4 + 64 * 1024;
  guint16 port = peer_listen (server);
  CanopyTransportConnection *conn = peer_connect (client, server, port);
  gint64 start, until;
  guint sent = 0, drained_while_stalled;
  gboolean refused = FALSE, refused_at_end = TRUE;

  CU_ASSERT_PTR_NOT_NULL_FATAL (conn);
  /* The reader's context stops running: the sender fills the kernel's
   * buffers, then its own queue, which must stop at the high-water mark
   * and stay there (the queue may drain while the kernel still takes
   * data, so `drained` may fire early on). */
  start = g_get_monotonic_time ();
  until = start + 1500 * 1000;
  while (g_get_monotonic_time () < until)
    {
      g_autoptr (GError) error = NULL;
      if (canopy_transport_send (conn, header, payload, &error))
        {
          sent++;
          if (g_get_monotonic_time () > start + 1000 * 1000)
            refused_at_end = FALSE;
        }
      else
        {
          CU_ASSERT_FATAL (g_error_matches (error, CANOPY_TRANSPORT_ERROR,
                                            CANOPY_TRANSPORT_ERROR_QUEUE_FULL));
          refused = TRUE;
        }
      CU_ASSERT (canopy_transport_connection_get_queued_bytes (conn) <= bound);
      WAIT_ON (only_client, FALSE, 1);
    }
  CU_ASSERT (refused);
  CU_ASSERT (refused_at_end);
  CU_ASSERT (canopy_transport_connection_get_queued_bytes (conn) >= 1048576);
  CU_ASSERT (canopy_transport_connection_get_queued_bytes (conn) <= bound);
  drained_while_stalled = client->drained;

  /* The reader resumes: everything arrives and the sender hears it drained. */
  CU_ASSERT (WAIT_ON (both, client->drained > drained_while_stalled && server->messages == sent,
                      CONFORMANCE_TIMEOUT_MS));
  CU_ASSERT_EQUAL (server->messages, sent);
  CU_ASSERT (client->drained > drained_while_stalled);
  CU_ASSERT_EQUAL (server->closed->len, 0);
}

/* --- one suite per plugin ----------------------------------------------------- */

typedef void (*ConformanceFunc) (Fixture *fixture);

static void
conformance_run (const char *plugin_name, ConformanceFunc func)
{
  Fixture fixture = { 0 };
  if (fixture_init (&fixture, plugin_name))
    func (&fixture);
  fixture_clear (&fixture);
}

#define CONFORMANCE_CASES(p)                                                                  \
  static void p##_exchange (void) { conformance_run (#p, conformance_exchange); }             \
  static void p##_wrong_key (void) { conformance_run (#p, conformance_wrong_key); }           \
  static void p##_large_payload (void) { conformance_run (#p, conformance_large_payload); }   \
  static void p##_concurrent (void) { conformance_run (#p, conformance_concurrent); }         \
  static void p##_peer_vanishes (void) { conformance_run (#p, conformance_peer_vanishes); }   \
  static void p##_malformed (void) { conformance_run (#p, conformance_malformed); }           \
  static void p##_back_pressure (void) { conformance_run (#p, conformance_back_pressure); }   \
  CANOPY_TEST_SUITE (p##_conformance, "transport-conformance-" #p, NULL, NULL,                \
                     { "exchange", p##_exchange },                                            \
                     { "wrong-key", p##_wrong_key },                                          \
                     { "large-payload", p##_large_payload },                                  \
                     { "concurrent-1000", p##_concurrent },                                   \
                     { "peer-vanishes", p##_peer_vanishes },                                  \
                     { "malformed-oversized", p##_malformed },                                \
                     { "back-pressure", p##_back_pressure })

/* Every transport plugin canopy ships, built or not. */
CONFORMANCE_CASES (tcp);
CONFORMANCE_CASES (quic);
