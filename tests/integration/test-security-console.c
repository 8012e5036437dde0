/* Hostile clients with real processes: idle sockets against the console,
 * a crash right after a welcome, hellos that lie about what they are,
 * floods of wrong keys, an expired licence. Each asserts what an admin
 * relies on: the console answers, nothing welcomed is lost, the log stays
 * readable, and the health check says what to do. */
#include "build-config.h"

#include "tests/integration/client.h"
#include "tests/integration/site.h"
#include "lib/licence-file.h"
#include "lib/shared-key.h"
#include "lib/signing.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections that send nothing. Under valgrind every accept costs fifty
 * times more, so fewer cover the same code. */
#define IDLE_CONNECTIONS 300
#define VALGRIND_IDLE_CONNECTIONS 60
/* From each source address: under the default cap of 32 per address. */
#define IDLE_PER_SOURCE 30
/* From one more address, past that cap. */
#define OVER_CAP 40
#define CAP_PER_ADDRESS 32
/* Connections that send the first byte of a TLS record, then stall. */
#define STALLED 24
/* canopyd runs 4 threads idle; a handshake thread per idle connection
 * (81 threads at 100 connections) is what must not come back. */
#define MAX_EXTRA_THREADS 12
#define WRONG_KEYS 50
#define BAD_FRAMES 30

static CanopyTestSite site;

static int
suite_cleanup (void)
{
  canopy_test_site_stop (&site, FALSE);
  return 0;
}

/* A plain TCP connection to the console from @source (a loopback address). */
static int
connect_from (const char *source, guint port)
{
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in from = { .sin_family = AF_INET };
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons ((guint16) port) };

  g_assert (fd >= 0);
  g_assert (inet_pton (AF_INET, source, &from.sin_addr) == 1);
  g_assert (inet_pton (AF_INET, "127.0.0.1", &to.sin_addr) == 1);
  if (bind (fd, (struct sockaddr *) &from, sizeof from) != 0
      || connect (fd, (struct sockaddr *) &to, sizeof to) != 0)
    {
      fprintf (stderr, "\n    cannot connect from %s: %s\n", source, g_strerror (errno));
      close (fd);
      return -1;
    }
  return fd;
}

/* Whether the server has closed @fd's connection: end of file or reset. */
static gboolean
closed_by_server (int fd)
{
  struct pollfd p = { .fd = fd, .events = POLLIN };
  char byte;
  ssize_t n;

  if (poll (&p, 1, 0) <= 0)
    return FALSE;
  n = recv (fd, &byte, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static guint
count_closed (const int *fds, guint n)
{
  guint closed = 0;

  for (guint i = 0; i < n; i++)
    closed += fds[i] >= 0 && closed_by_server (fds[i]);
  return closed;
}

static gboolean
accept_any_certificate (SoupMessage *msg, GTlsCertificate *certificate,
                        GTlsCertificateFlags errors, gpointer user_data)
{
  return TRUE;
}

/* GET /livez on a fresh connection; returns how long it took, in µs. */
static gint64
time_livez (CanopyTestSite *s)
{
  g_autofree char *uri = g_strdup_printf ("https://127.0.0.1:%u/livez", s->console_port);
  g_autoptr (SoupSession) session = soup_session_new_with_options ("timeout", 60, NULL);
  g_autoptr (SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr (GBytes) body = NULL;
  g_autoptr (GError) error = NULL;
  gint64 start = g_get_monotonic_time ();

  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  body = soup_session_send_and_read (session, msg, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (soup_message_get_status (msg), SOUP_STATUS_OK);
  return g_get_monotonic_time () - start;
}

static gboolean
on_accept_certificate (GTlsConnection *conn, GTlsCertificate *certificate,
                       GTlsCertificateFlags errors, gpointer user_data)
{
  return TRUE;
}

/* A TLS connection that finishes its handshake, then sends no request:
 * the server must close it after its idle timeout. Returns the seconds
 * it stayed open, or -1 if it was still open after @wait_s. */
static double
established_idle_lifetime (guint port, guint wait_s)
{
  g_autoptr (GSocketClient) client = g_socket_client_new ();
  g_autoptr (GSocketConnection) tcp = NULL;
  g_autoptr (GIOStream) tls = NULL;
  g_autoptr (GError) error = NULL;
  gint64 start;
  char byte;
  gssize n;

  tcp = g_socket_client_connect_to_host (client, "127.0.0.1", (guint16) port, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  tls = g_tls_client_connection_new (G_IO_STREAM (tcp), NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  g_signal_connect (tls, "accept-certificate", G_CALLBACK (on_accept_certificate), NULL);
  CU_ASSERT_FATAL (g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error));
  start = g_get_monotonic_time ();
  g_socket_set_timeout (g_socket_connection_get_socket (tcp), wait_s);
  n = g_input_stream_read (g_io_stream_get_input_stream (tls), &byte, 1, NULL, &error);
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return -1;
  CU_ASSERT (n <= 0); /* the server says nothing unasked */
  return (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
}

static void
close_all (int *fds, guint n)
{
  for (guint i = 0; i < n; i++)
    if (fds[i] >= 0)
      close (fds[i]);
}

static void
test_idle_connections (void)
{
  /* Short limits so that the test is quick; valgrind needs more time
   * for the same work. */
  guint handshake_s = canopy_test_valgrind () ? 20 : 3;
  guint idle_s = canopy_test_valgrind () ? 20 : 3;
  g_autofree char *attributes = g_strdup_printf ("handshake-timeout='%u' idle-timeout='%u'",
                                                 handshake_s, idle_s);
  CanopyTestSiteOptions options = { .console_attributes = attributes };
  guint n = canopy_test_valgrind () ? VALGRIND_IDLE_CONNECTIONS : IDLE_CONNECTIONS;
  gint64 livez_limit = (canopy_test_instrumented () ? 10 : 1) * G_USEC_PER_SEC;
  g_autofree int *idle = g_new (int, n);
  int over[OVER_CAP];
  int stalled[STALLED];
  guint threads_before, threads_during, closed;
  gint64 took, deadline, start;
  double lifetime;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  canopy_test_site_pump (500);
  threads_before = canopy_test_process_threads (site.server);
  start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *source = g_strdup_printf ("127.0.0.%u", 2 + i / IDLE_PER_SOURCE);
      idle[i] = connect_from (source, site.console_port);
      CU_ASSERT (idle[i] >= 0);
    }
  for (guint i = 0; i < OVER_CAP; i++)
    over[i] = connect_from ("127.0.0.250", site.console_port);
  /* These start a handshake, which glib-networking runs in a thread that
   * waits for the client: a few at a time, never one each. */
  for (guint i = 0; i < STALLED; i++)
    {
      stalled[i] = connect_from ("127.0.0.240", site.console_port);
      CU_ASSERT (stalled[i] >= 0 && send (stalled[i], "\x16", 1, MSG_NOSIGNAL) == 1);
    }
  canopy_test_site_pump (300);
  if (g_getenv ("CANOPY_TEST_DEBUG") != NULL)
    fprintf (stderr, "\n    connecting took %.2f s\n",
             (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC);

  /* The console still answers, at once, on a fresh connection. */
  took = time_livez (&site);
  if (took >= livez_limit)
    fprintf (stderr, "\n    /livez took %.2f s with %u idle connections\n",
             (double) took / G_USEC_PER_SEC, n);
  CU_ASSERT (took < livez_limit);

  /* Idle sockets hold no thread: no handshake has begun. */
  threads_during = canopy_test_process_threads (site.server);
  if (g_getenv ("CANOPY_TEST_DEBUG") != NULL)
    fprintf (stderr, "\n    canopyd threads: %u before, %u with the connections held\n",
             threads_before, threads_during);
  if (threads_during > threads_before + MAX_EXTRA_THREADS)
    fprintf (stderr, "\n    canopyd went from %u to %u threads\n", threads_before,
             threads_during);
  CU_ASSERT (threads_during <= threads_before + MAX_EXTRA_THREADS);

  /* Past the cap of one address, connections are closed as accepted;
   * the others wait for their handshake timeout. */
  CU_ASSERT (canopy_test_process_wait_output (site.server,
                                              "refused a connection from 127.0.0.250",
                                              canopy_test_timeout (5)));
  deadline = g_get_monotonic_time () + canopy_test_timeout (2) * G_USEC_PER_SEC;
  while (count_closed (over, OVER_CAP) < OVER_CAP - CAP_PER_ADDRESS
         && g_get_monotonic_time () < deadline)
    canopy_test_site_pump (100);
  closed = count_closed (idle, n);
  if (closed > 0)
    fprintf (stderr, "\n    %u idle connections closed before their handshake timeout; "
                     "canopyd said: %s\n", closed, canopy_test_process_output (site.server));
  CU_ASSERT_EQUAL (count_closed (over, OVER_CAP), OVER_CAP - CAP_PER_ADDRESS);
  CU_ASSERT_EQUAL (closed, 0);

  /* Then the server closes every one of them. */
  deadline = g_get_monotonic_time () + (handshake_s + canopy_test_timeout (5)) * G_USEC_PER_SEC;
  while ((closed = count_closed (idle, n)) < n && g_get_monotonic_time () < deadline)
    canopy_test_site_pump (200);
  if (closed < n)
    fprintf (stderr, "\n    %u of %u idle connections still open after the handshake "
                     "timeout\n", n - closed, n);
  CU_ASSERT_EQUAL (closed, n);
  /* Stalled ones waiting for a handshake slot are closed in the same time. */
  while ((closed = count_closed (stalled, STALLED)) < STALLED
         && g_get_monotonic_time () < deadline)
    canopy_test_site_pump (200);
  CU_ASSERT_EQUAL (closed, STALLED);
  close_all (idle, n);
  close_all (over, OVER_CAP);
  close_all (stalled, STALLED);

  /* A connection that finished its handshake and asks nothing is closed
   * after the idle timeout, not kept for good. */
  lifetime = established_idle_lifetime (site.console_port, idle_s + canopy_test_timeout (10));
  CU_ASSERT (lifetime >= idle_s - 1.0);
  CU_ASSERT (lifetime >= 0);
  CU_ASSERT (canopy_test_process_threads (site.server) <= threads_before + MAX_EXTRA_THREADS);
  canopy_test_site_stop (&site, TRUE);
}

static JsonObject *
find_device (JsonNode *devices, const char *device_id)
{
  return canopy_test_site_find (json_node_get_object (devices), "devices", "device_id",
                                device_id);
}

/* A welcomed device is in the database: a crash of the server right
 * after the welcome loses neither the device nor its licence. */
static void
test_enrolment_survives_kill (void)
{
  CanopyTestSiteOptions options = { 0 };
  guint slot = canopy_test_site_slot (1, 0);
  g_autoptr (JsonNode) devices = NULL;
  JsonObject *device;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  site.agents[slot] = canopy_test_site_agent_start (&site, 1, 0);
  CU_ASSERT_FATAL (canopy_test_process_wait_output (site.agents[slot],
                                                    "Enrolled with canopy server", 30));
  canopy_test_site_kill_hard (&site.server);
  /* Stopped too, so that it cannot enrol again with the new server. */
  canopy_test_site_kill_hard (&site.agents[slot]);
  canopy_test_site_server_start (&site);

  devices = canopy_test_site_api (&site, "GET", "/api/v1/devices", NULL, SOUP_STATUS_OK);
  device = find_device (devices, site.device_ids[slot]);
  if (device == NULL)
    fprintf (stderr, "\n    device %s lost by the crash; canopyd said: %s\n",
             site.device_ids[slot], canopy_test_process_output (site.server));
  CU_ASSERT_PTR_NOT_NULL_FATAL (device);
  CU_ASSERT (json_object_get_boolean_member (device, "licensed"));
  canopy_test_site_stop (&site, TRUE);
}

/* Sends a hello as an agent of this version would, with @address/@prefix
 * as its one address; returns the refusal's reason and message. */
static guint32
hello_refusal (CanopyTestSite *s, const char *id, const char *address, guint8 prefix,
               char **message)
{
  g_autofree char *key_path = g_build_filename (s->state, "shared-key", NULL);
  g_auto (CanopyTestClient) client = { 0 };
  const char *groups[] = { "Branch", NULL };
  GVariantBuilder addresses;
  const char *text;
  guint32 reason = 0;

  canopy_test_client_connect (&client, key_path, id, (guint16) s->agent_port);
  g_variant_builder_init (&addresses, G_VARIANT_TYPE ("a(sy)"));
  g_variant_builder_add (&addresses, "(sy)", address, prefix);
  canopy_test_client_send (&client, CANOPY_WIRE_HELLO,
                           g_variant_new ("(ssa(sy)^asqs)", id, PACKAGE_VERSION, &addresses,
                                          groups, 0, "rogue"));
  CU_ASSERT (canopy_test_client_wait (&client, CANOPY_WIRE_REFUSED, 1));
  CU_ASSERT_EQUAL (client.counts[CANOPY_WIRE_WELCOME], 0);
  *message = NULL;
  if (client.last[CANOPY_WIRE_REFUSED] == NULL)
    return 0;
  g_variant_get (client.last[CANOPY_WIRE_REFUSED], "(u&s&s&s)", &reason, &text, NULL, NULL);
  *message = g_strdup (text);
  return reason;
}

static void
test_malformed_hello_refused (void)
{
  CanopyTestSiteOptions options = { 0 };
  const char *good_id = "4b0f3c1e-8d2a-4f5b-9c6d-7e8f90a1b2c3";
  g_autofree char *office_address = NULL;
  g_autofree char *m1 = NULL, *m2 = NULL, *m3 = NULL;
  g_autoptr (JsonNode) devices = NULL;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  office_address = canopy_test_site_agent_address (&site, 1, 7);
  CU_ASSERT_EQUAL (hello_refusal (&site, "not-a-uuid", office_address, 24, &m1),
                   CANOPY_WIRE_REFUSED_INVALID);
  CANOPY_ASSERT_CONTAINS (m1, "is not a UUID");
  CU_ASSERT_EQUAL (hello_refusal (&site, good_id, "999.1.2.3", 24, &m2),
                   CANOPY_WIRE_REFUSED_INVALID);
  CANOPY_ASSERT_CONTAINS (m2, "not an IP address");
  CU_ASSERT_EQUAL (hello_refusal (&site, good_id, office_address, 33, &m3),
                   CANOPY_WIRE_REFUSED_INVALID);
  CANOPY_ASSERT_CONTAINS (m3, "prefix length");
  /* Nothing of them was recorded. */
  devices = canopy_test_site_api (&site, "GET", "/api/v1/devices", NULL, SOUP_STATUS_OK);
  CU_ASSERT_PTR_NULL (find_device (devices, "not-a-uuid"));
  CU_ASSERT_PTR_NULL (find_device (devices, good_id));
  canopy_test_site_stop (&site, TRUE);
}

static guint
count_lines_with (const char *text, const char *words)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    n += strstr (lines[i], words) != NULL;
  return n;
}

/* Anyone can knock with a wrong key as often as they like: the server's
 * log says so once, not fifty times. */
static void
test_wrong_keys_rate_limited (void)
{
  CanopyTestSiteOptions options = { 0 };
  g_autofree char *dir = canopy_test_make_tmpdir ("stranger");
  g_autofree char *key_path = g_build_filename (dir, "shared-key", NULL);
  g_autoptr (CanopySharedKey) stranger = canopy_shared_key_generate (NULL);
  guint refused = 0, lines;

  if (!canopy_test_site_available ())
    return;
  CU_ASSERT_FATAL (stranger != NULL && canopy_shared_key_save (stranger, key_path, NULL));
  canopy_test_site_begin (&site, &options);
  for (guint i = 0; i < WRONG_KEYS; i++)
    {
      g_auto (CanopyTestClient) client = { 0 };

      refused += !canopy_test_client_try_connect (&client, key_path,
                                                  "4b0f3c1e-8d2a-4f5b-9c6d-7e8f90a1b2c3",
                                                  (guint16) site.agent_port);
    }
  CU_ASSERT_EQUAL (refused, WRONG_KEYS);
  canopy_test_site_pump (500);
  lines = count_lines_with (canopy_test_process_output (site.server), "Key mismatch");
  if (lines != 1)
    fprintf (stderr, "\n    %u key-mismatch lines for %u wrong keys\n", lines, WRONG_KEYS);
  CU_ASSERT_EQUAL (lines, 1);
  canopy_test_site_stop (&site, TRUE);
}

/* A key holder that sends frames canopy cannot read, over and over: each
 * connection is closed, and the log says so once, not thirty times. */
static void
test_unreadable_frames_rate_limited (void)
{
  CanopyTestSiteOptions options = { 0 };
  g_autofree char *key_path = NULL;
  guint closed = 0, lines;

  if (!canopy_test_site_available ())
    return;
  canopy_test_site_begin (&site, &options);
  key_path = g_build_filename (site.state, "shared-key", NULL);
  for (guint i = 0; i < BAD_FRAMES; i++)
    {
      g_auto (CanopyTestClient) client = { 0 };
      g_autofree char *id = g_uuid_string_random ();
      g_autoptr (GBytes) frame = canopy_wire_encode (
        CANOPY_WIRE_HEARTBEAT, g_variant_new ("(xt)", (gint64) i, (guint64) 0));
      g_autofree guint8 *bad = g_memdup2 (g_bytes_get_data (frame, NULL), g_bytes_get_size (frame));
      g_autoptr (GBytes) garbage = NULL;

      memcpy (bad, "JUNK", 4); /* not canopy's magic */
      garbage = g_bytes_new (bad, g_bytes_get_size (frame));
      canopy_test_client_connect (&client, key_path, id, (guint16) site.agent_port);
      CU_ASSERT (canopy_transport_send (client.conn, garbage, NULL, NULL));
      closed += canopy_test_client_wait_closed (&client);
    }
  CU_ASSERT_EQUAL (closed, BAD_FRAMES);
  canopy_test_site_pump (500);
  lines = count_lines_with (canopy_test_process_output (site.server), "cannot read");
  if (lines != 1)
    fprintf (stderr, "\n    %u lines for %u unreadable frames\n", lines, BAD_FRAMES);
  CU_ASSERT_EQUAL (lines, 1);
  canopy_test_site_stop (&site, TRUE);
}

static char *
write_expired_licence (const char *dir, char **issuer_base64)
{
  g_autofree char *key_path = g_build_filename (dir, "issuer.pem", NULL);
  char *path = g_build_filename (dir, "licence.txt", NULL);
  g_autoptr (CanopySigningKey) issuer = NULL;
  g_autoptr (GBytes) public_key = NULL;
  g_autoptr (GDateTime) expired = g_date_time_new_utc (2020, 1, 31, 0, 0, 0);
  CanopyLicenceFile licence = { (char *) "Example Corp", 5, expired };
  g_autofree char *text = NULL;

  CU_ASSERT_FATAL (canopy_signing_key_generate_file (key_path, NULL));
  issuer = canopy_signing_key_load (key_path, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL (issuer);
  public_key = canopy_signing_key_get_public (issuer);
  *issuer_base64 = g_base64_encode (g_bytes_get_data (public_key, NULL),
                                    g_bytes_get_size (public_key));
  text = canopy_licence_file_write (&licence, issuer, NULL);
  CU_ASSERT_FATAL (text != NULL && g_file_set_contents (path, text, -1, NULL));
  return path;
}

static void
test_expired_licence (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("licence");
  g_autofree char *issuer = NULL;
  g_autofree char *path = NULL;
  g_autofree char *xml = NULL;
  CanopyTestSiteOptions options = { 0 };
  g_autoptr (JsonNode) holder = NULL;
  JsonObject *check;

  if (!canopy_test_site_available ())
    return;
  path = write_expired_licence (dir, &issuer);
  xml = g_strdup_printf ("  <licensing file='%s' issuer-key='%s'/>\n", path, issuer);
  options.server_xml = xml;
  canopy_test_site_begin (&site, &options);
  check = canopy_test_site_health_check (&site, "licences", &holder);
  CU_ASSERT_PTR_NOT_NULL_FATAL (check);
  CU_ASSERT_STRING_EQUAL (json_object_get_string_member (check, "status"), "warning");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"),
                          "The licence expired on 2020-01-31");
  CANOPY_ASSERT_CONTAINS (json_object_get_string_member (check, "message"), "renew it");
  canopy_test_site_stop (&site, TRUE);
}

CANOPY_TEST_SUITE (security_console, "security-console", NULL, suite_cleanup,
                   { "idle connections closed, console answers, threads bounded",
                     test_idle_connections },
                   { "enrolment survives kill -9 right after the welcome",
                     test_enrolment_survives_kill },
                   { "hello with a bad device ID or address refused",
                     test_malformed_hello_refused },
                   { "wrong-key handshakes logged with a rate limit",
                     test_wrong_keys_rate_limited },
                   { "unreadable frames logged with a rate limit",
                     test_unreadable_frames_rate_limited },
                   { "expired licence shown as expired", test_expired_licence })
