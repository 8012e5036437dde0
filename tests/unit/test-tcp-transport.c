/* The tcp plugin against a hand-written peer in a child process: a real
 * TLS-PSK client that sends frames the plugin must refuse, or is killed
 * in the middle of a message. */
#include "build-config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <glib-unix.h>
#include <gnutls/gnutls.h>

#include "tests/canopy-test.h"
#include "lib/config.h"
#include "lib/keys.h"
#include "lib/plugin-loader.h"
#include "lib/transport.h"

/* The wire details a hand-written peer needs (tcp-transport.c and
 * plugins/transport-common/transport-common.h). */
#define RAW_PSK_LABEL "canopy tcp psk v1"
#define RAW_FRAME_SIZE 20
#define RAW_KEY_BYTE 0x42

typedef struct {
  CanopyTransportConnection *incoming;
  GError *closed;
  guint messages;
} RawServer;

static void
raw_on_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  ((RawServer *) user_data)->incoming = conn;
}

static void
raw_on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                gpointer user_data)
{
  ((RawServer *) user_data)->messages++;
}

static void
raw_on_drained (CanopyTransportConnection *conn, gpointer user_data)
{
}

static void
raw_on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  RawServer *server = user_data;
  g_clear_error (&server->closed);
  server->closed = g_error_copy (error);
  server->incoming = NULL;
}

static const CanopyTransportEvents raw_events = {
  .incoming = raw_on_incoming,
  .message = raw_on_message,
  .drained = raw_on_drained,
  .closed = raw_on_closed,
};

static void
raw_frame (guint8 *frame, guint32 magic, guint8 version, guint32 header_len, guint64 payload_len)
{
  guint32 m = GUINT32_TO_BE (magic), h = GUINT32_TO_BE (header_len);
  guint64 p = GUINT64_TO_BE (payload_len);
  memcpy (frame, &m, 4);
  frame[4] = version;
  frame[5] = 0;
  frame[6] = frame[7] = 0;
  memcpy (frame + 8, &h, 4);
  memcpy (frame + 12, &p, 8);
}

/* The child: a blocking TLS 1.3 PSK client as device "raw-peer"; writes
 * @len bytes of @data after the handshake, then tells the parent through
 * @ready and waits to be killed (or exits when @linger is FALSE). */
G_GNUC_NORETURN static void
raw_child (guint16 port, const guint8 *data, gsize len, int ready, gboolean linger)
{
  struct sockaddr_in6 address = { .sin6_family = AF_INET6, .sin6_port = htons (port),
                                  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  guint8 secret[CANOPY_TRANSPORT_SECRET_SIZE], psk[32];
  CanopySharedKey key;
  gnutls_psk_client_credentials_t creds;
  gnutls_session_t session;
  gnutls_datum_t psk_datum = { psk, sizeof psk };
  int fd = socket (AF_INET6, SOCK_STREAM, 0);

  /* A lingering child never outlives a runner that stopped on a failure. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  memset (key.bytes, RAW_KEY_BYTE, sizeof key.bytes);
  if (!canopy_keys_derive_transport_secret (&key, secret, NULL)
      || !canopy_key_derive (secret, sizeof secret, RAW_PSK_LABEL, "raw-peer", 8, psk, sizeof psk,
                             NULL)
      || connect (fd, (struct sockaddr *) &address, sizeof address) != 0)
    _exit (2);
  gnutls_psk_allocate_client_credentials (&creds);
  gnutls_psk_set_client_credentials (creds, "raw-peer", &psk_datum, GNUTLS_PSK_KEY_RAW);
  gnutls_init (&session, GNUTLS_CLIENT);
  gnutls_priority_set_direct (session, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+ECDHE-PSK:+PSK", NULL);
  gnutls_credentials_set (session, GNUTLS_CRD_PSK, creds);
  gnutls_transport_set_int (session, fd);
  if (gnutls_handshake (session) < 0)
    _exit (3);
  for (gsize done = 0; done < len;)
    {
      ssize_t n = gnutls_record_send (session, data + done, MIN (len - done, 16384));
      if (n < 0)
        _exit (4);
      done += (gsize) n;
    }
  if (write (ready, "x", 1) != 1)
    _exit (5);
  while (linger)
    pause ();
  _exit (0);
}

typedef struct {
  CanopyPluginLoader *loader;
  CanopyConfig *config;
  CanopyTransport *transport;
  RawServer server;
  guint16 port;
} RawFixture;

static gboolean
raw_fixture_init (RawFixture *fixture)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) addresses = NULL;
  const CanopyPlugin *plugin;
  const CanopyConfigNode *element;
  CanopySharedKey key;
  CanopyTransportCredentials creds;

  memset (fixture, 0, sizeof *fixture);
  fixture->loader = canopy_plugin_loader_new (NULL);
  plugin = canopy_plugin_loader_load (fixture->loader, "tcp", CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  fixture->config = canopy_config_load_data (
    "<agent><server host='::1'/><transport plugin='tcp'><listen address='::1' port='0'/>"
    "<limits max-payload='1048576'/></transport></agent>",
    -1, "<test>", CANOPY_SCHEMA_AGENT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  element = canopy_config_node_get_child (canopy_config_get_root (fixture->config), "transport");
  memset (key.bytes, RAW_KEY_BYTE, sizeof key.bytes);
  canopy_keys_make_transport_credentials (&key, "server-1", &creds, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  fixture->transport = canopy_transport_new (plugin, element, &creds, NULL, &raw_events,
                                             &fixture->server, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (canopy_transport_listen (fixture->transport, &error));
  addresses = canopy_transport_get_listen_addresses (fixture->transport);
  fixture->port = g_inet_socket_address_get_port (addresses->pdata[0]);
  return TRUE;
}

static void
raw_fixture_clear (RawFixture *fixture)
{
  g_clear_pointer (&fixture->transport, canopy_transport_free);
  g_clear_pointer (&fixture->config, canopy_config_free);
  g_clear_pointer (&fixture->loader, canopy_plugin_loader_free);
  g_clear_error (&fixture->server.closed);
}

static gboolean
raw_wait_closed (RawFixture *fixture, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  while (fixture->server.closed == NULL && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (500);
  return fixture->server.closed != NULL;
}

/* Spawns the raw peer and runs the loop until it has written @data. */
static pid_t
raw_spawn (RawFixture *fixture, const guint8 *data, gsize len, gboolean linger)
{
  int ready[2];
  char byte;
  pid_t pid;

  CU_ASSERT_FATAL (pipe (ready) == 0);
  pid = fork ();
  CU_ASSERT_FATAL (pid >= 0);
  if (pid == 0)
    raw_child (fixture->port, data, len, ready[1], linger);
  close (ready[1]);
  g_unix_set_fd_nonblocking (ready[0], TRUE, NULL);
  for (int i = 0; i < 20000 && read (ready[0], &byte, 1) != 1; i++)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (500);
  close (ready[0]);
  return pid;
}

static void
raw_check_frame_refused (guint32 magic, guint8 version, guint32 header_len, guint64 payload_len)
{
  RawFixture fixture;
  guint8 frame[RAW_FRAME_SIZE + 8] = { 0 };
  int status;
  pid_t pid;

  raw_fixture_init (&fixture);
  raw_frame (frame, magic, version, header_len, payload_len);
  pid = raw_spawn (&fixture, frame, sizeof frame, FALSE);
  CU_ASSERT (raw_wait_closed (&fixture, 10000));
  CU_ASSERT (g_error_matches (fixture.server.closed, CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_PROTOCOL));
  CU_ASSERT_EQUAL (fixture.server.messages, 0);
  CU_ASSERT (waitpid (pid, &status, 0) == pid && WIFEXITED (status)
             && WEXITSTATUS (status) == 0);
  raw_fixture_clear (&fixture);
}

static void
test_tcp_bad_magic (void)
{
  raw_check_frame_refused (0xdeadbeef, 1, 4, 0);
}

static void
test_tcp_bad_version (void)
{
  raw_check_frame_refused (0x434e5059u, 9, 4, 0);
}

static void
test_tcp_empty_header (void)
{
  raw_check_frame_refused (0x434e5059u, 1, 0, 0);
}

static void
test_tcp_huge_lengths (void)
{
  raw_check_frame_refused (0x434e5059u, 1, 0xffffffffu, G_MAXUINT64);
}

/* A real peer process killed in the middle of a message: the server
 * reports the connection closed and keeps serving. */
static void
test_tcp_peer_killed (void)
{
  RawFixture fixture;
  gsize len = RAW_FRAME_SIZE + 4 + 300000;
  g_autofree guint8 *data = g_malloc0 (len);
  int status;
  pid_t pid;

  raw_fixture_init (&fixture);
  raw_frame (data, 0x434e5059u, 1, 4, 1000000); /* announces more than it sends */
  pid = raw_spawn (&fixture, data, len, TRUE);
  CU_ASSERT (kill (pid, SIGKILL) == 0);
  CU_ASSERT (waitpid (pid, &status, 0) == pid && WIFSIGNALED (status));
  CU_ASSERT (raw_wait_closed (&fixture, 10000));
  CU_ASSERT (g_error_matches (fixture.server.closed, CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_CLOSED));
  CANOPY_ASSERT_CONTAINS (fixture.server.closed->message, "middle of a message");
  CU_ASSERT_EQUAL (fixture.server.messages, 0);

  /* Still serving: a well-formed frame from a new peer arrives. */
  g_clear_error (&fixture.server.closed);
  raw_frame (data, 0x434e5059u, 1, 4, 0);
  pid = raw_spawn (&fixture, data, RAW_FRAME_SIZE + 4, FALSE);
  for (int i = 0; i < 20000 && fixture.server.messages == 0; i++)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (500);
  CU_ASSERT_EQUAL (fixture.server.messages, 1);
  CU_ASSERT (waitpid (pid, &status, 0) == pid);
  raw_fixture_clear (&fixture);
}

typedef struct {
  gboolean done;
  CanopyTransportConnection *conn;
  GError *error;
  CanopyTransport *transport;
} RawConnect;

static void
raw_on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  RawConnect *wait = user_data;
  wait->conn = canopy_transport_connect_finish (wait->transport, result, &wait->error);
  wait->done = TRUE;
}

static CanopyTransport *
raw_transport (CanopyPluginLoader *loader, CanopyConfig **config, const char *xml,
               const char *id, RawServer *events_data)
{
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *plugin = canopy_plugin_loader_lookup (loader, "tcp");
  CanopySharedKey key;
  CanopyTransportCredentials creds;
  CanopyTransport *transport;

  if (plugin == NULL)
    plugin = canopy_plugin_loader_load (loader, "tcp", CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  *config = canopy_config_load_data (xml, -1, "<test>", CANOPY_SCHEMA_AGENT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  memset (key.bytes, RAW_KEY_BYTE, sizeof key.bytes);
  canopy_keys_make_transport_credentials (&key, id, &creds, &error);
  transport = canopy_transport_new (
    plugin, canopy_config_node_get_child (canopy_config_get_root (*config), "transport"), &creds,
    NULL, &raw_events, events_data, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  return transport;
}

static RawConnect
raw_connect (CanopyTransport *client, const char *host, guint16 port)
{
  RawConnect wait = { FALSE, NULL, NULL, client };
  canopy_transport_connect_async (client, host, port, NULL, raw_on_connected, &wait);
  for (int i = 0; i < 20000 && !wait.done; i++)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (500);
  CU_ASSERT (wait.done);
  return wait;
}

/* Several listen addresses, IPv4 and IPv6, each accepting. */
static void
test_tcp_dual_stack (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  g_autoptr (CanopyConfig) server_config = NULL;
  g_autoptr (CanopyConfig) client_config = NULL;
  g_autoptr (GPtrArray) addresses = NULL;
  g_autoptr (GError) error = NULL;
  RawServer server = { 0 }, client_events = { 0 };
  CanopyTransport *server_transport = raw_transport (
    loader, &server_config,
    "<agent><server host='::1'/><transport plugin='tcp'>"
    "<listen address='127.0.0.1' port='0'/><listen address='::1' port='0'/>"
    "<keepalive idle-s='30'/></transport></agent>", "server-1", &server);
  CanopyTransport *client = raw_transport (
    loader, &client_config,
    "<agent><server host='::1'/><transport plugin='tcp'/></agent>", "device-a", &client_events);

  CU_ASSERT_FATAL (canopy_transport_listen (server_transport, &error));
  addresses = canopy_transport_get_listen_addresses (server_transport);
  CU_ASSERT_EQUAL_FATAL (addresses->len, 2);
  for (guint i = 0; i < 2; i++)
    {
      GInetSocketAddress *address = addresses->pdata[i];
      g_autofree char *host = g_inet_address_to_string (g_inet_socket_address_get_address (address));
      RawConnect wait = raw_connect (client, host, g_inet_socket_address_get_port (address));
      CANOPY_ASSERT_NO_ERROR (wait.error);
      CU_ASSERT_PTR_NOT_NULL (wait.conn);
      CU_ASSERT_STRING_EQUAL (canopy_transport_connection_get_peer_id (wait.conn), "server-1");
    }
  CU_ASSERT_EQUAL (g_inet_address_get_family (g_inet_socket_address_get_address (addresses->pdata[0])),
                   G_SOCKET_FAMILY_IPV4);

  /* A host name goes through the resolver; connect to the listener of
   * the family "localhost" resolves to first. */
  {
    g_autoptr (GResolver) resolver = g_resolver_get_default ();
    GList *resolved = g_resolver_lookup_by_name (resolver, "localhost", NULL, &error);
    GSocketFamily family;
    RawConnect wait;

    CANOPY_ASSERT_NO_ERROR (error);
    family = g_inet_address_get_family (resolved->data);
    g_resolver_free_addresses (resolved);
    for (guint i = 0; i < 2; i++)
      {
        GInetSocketAddress *address = addresses->pdata[i];
        if (g_inet_address_get_family (g_inet_socket_address_get_address (address)) != family)
          continue;
        wait = raw_connect (client, "localhost", g_inet_socket_address_get_port (address));
        CANOPY_ASSERT_NO_ERROR (wait.error);
        CU_ASSERT_PTR_NOT_NULL (wait.conn);
      }
  }
  canopy_transport_free (client);
  canopy_transport_free (server_transport);
}

/* Nothing listening: REFUSED; a listener that never speaks TLS: TIMEOUT. */
static void
test_tcp_connect_errors (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  g_autoptr (CanopyConfig) client_config = NULL;
  g_autoptr (GSocket) silent = g_socket_new (G_SOCKET_FAMILY_IPV6, G_SOCKET_TYPE_STREAM,
                                             G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_autoptr (GError) error = NULL;
  RawServer events = { 0 };
  CanopyTransport *client = raw_transport (
    loader, &client_config,
    "<agent><server host='::1'/><transport plugin='tcp'><connect timeout-ms='300'/>"
    "</transport></agent>", "device-a", &events);
  RawConnect refused, timed_out;
  guint16 port;

  CU_ASSERT_FATAL (g_socket_bind (silent, any, TRUE, &error) && g_socket_listen (silent, &error));
  bound = g_socket_get_local_address (silent, &error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));

  timed_out = raw_connect (client, "::1", port);
  CU_ASSERT (g_error_matches (timed_out.error, CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_TIMEOUT));
  g_clear_error (&timed_out.error);

  g_socket_close (silent, NULL);
  refused = raw_connect (client, "::1", port);
  CU_ASSERT (g_error_matches (refused.error, CANOPY_TRANSPORT_ERROR,
                              CANOPY_TRANSPORT_ERROR_REFUSED));
  g_clear_error (&refused.error);
  canopy_transport_free (client);
}

static gboolean
raw_on_deadline (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static gint64
thread_cpu_us (void)
{
  struct rusage usage;

  getrusage (RUSAGE_THREAD, &usage);
  return (gint64) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * G_USEC_PER_SEC
         + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

static guint
count_in_file (const char *path, const char *needle)
{
  g_autofree char *contents = NULL;
  guint n = 0;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  for (const char *p = contents; (p = strstr (p, needle)) != NULL; p++)
    n++;
  return n;
}

/* Out of file descriptors, accept fails while the connection stays
 * pending: the listener must rest (not spin, not flood the log) and accept
 * it once descriptors are free again. */
static void
test_tcp_accept_emfile (void)
{
  RawFixture fixture;
  g_autofree char *dir = canopy_test_make_tmpdir ("emfile");
  g_autofree char *log_path = g_build_filename (dir, "stderr.log", NULL);
  struct rlimit saved, low;
  gboolean over = FALSE;
  gint64 cpu, deadline;
  int ready[2], saved_stderr, log_fd, probe, status;
  pid_t pid;

  raw_fixture_init (&fixture);
  CU_ASSERT_FATAL (pipe (ready) == 0);
  pid = fork ();
  CU_ASSERT_FATAL (pid >= 0);
  /* The child stays connected until the end: one that left right after its
   * handshake could close before the server, busy on a loaded machine,
   * finished its own side, and no connection would be reported. */
  if (pid == 0)
    raw_child (fixture.port, NULL, 0, ready[1], TRUE);
  close (ready[1]);
  log_fd = open (log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  saved_stderr = dup (2);
  CU_ASSERT_FATAL (log_fd >= 0 && saved_stderr >= 0 && dup2 (log_fd, 2) == 2);
  /* The lowest free descriptor becomes the limit: accept cannot get one. */
  probe = dup (0);
  close (probe);
  CU_ASSERT_FATAL (getrlimit (RLIMIT_NOFILE, &saved) == 0);
  low = saved;
  low.rlim_cur = (rlim_t) probe;
  CU_ASSERT_FATAL (setrlimit (RLIMIT_NOFILE, &low) == 0);

  cpu = thread_cpu_us ();
  g_timeout_add (600, raw_on_deadline, &over);
  while (!over)
    g_main_context_iteration (NULL, TRUE);
  cpu = thread_cpu_us () - cpu;

  CU_ASSERT_FATAL (setrlimit (RLIMIT_NOFILE, &saved) == 0);
  deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  while (fixture.server.incoming == NULL && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  fflush (stderr);
  dup2 (saved_stderr, 2);
  close (saved_stderr);
  close (log_fd);
  close (ready[0]);

  /* Spinning would burn the whole 600 ms; resting wakes a few times. */
  if (cpu >= 300000)
    printf ("\n    listener used %" G_GINT64_FORMAT " µs of CPU while out of descriptors\n", cpu);
  CU_ASSERT (cpu < 300000);
  CU_ASSERT_EQUAL (count_in_file (log_path, "Cannot accept a connection"), 1);
  CU_ASSERT_EQUAL (count_in_file (log_path, "Accepting connections again"), 1);
  CU_ASSERT_PTR_NOT_NULL (fixture.server.incoming);
  kill (pid, SIGTERM);
  CU_ASSERT (waitpid (pid, &status, 0) == pid && WIFSIGNALED (status)
             && WTERMSIG (status) == SIGTERM);
  raw_fixture_clear (&fixture);
}

CANOPY_TEST_SUITE (tcp_transport, "transport-tcp", NULL, NULL,
                   { "bad-magic", test_tcp_bad_magic },
                   { "bad-version", test_tcp_bad_version },
                   { "empty-header", test_tcp_empty_header },
                   { "huge-lengths", test_tcp_huge_lengths },
                   { "peer-killed", test_tcp_peer_killed },
                   { "dual-stack", test_tcp_dual_stack },
                   { "connect-errors", test_tcp_connect_errors },
                   { "accept out of descriptors", test_tcp_accept_emfile });
