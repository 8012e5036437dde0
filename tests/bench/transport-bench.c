/* Throughput of each transport plugin against a plain TCP socket copy:
 * 1 GiB through one loopback connection, the receiver SHA-256-hashing all
 * of it as agents will. Run with `make bench`; not a timed test. */
#include "build-config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "lib/config.h"
#include "lib/keys.h"
#include "lib/plugin-loader.h"
#include "lib/transport.h"

#define BENCH_TOTAL ((gsize) 1 << 30)
#define BENCH_CHUNK ((gsize) 1 << 20)  /* one message per content chunk */
#define BENCH_BUFFER ((gsize) 64 << 20) /* source data, sent in slices */
#define BENCH_RUNS 3

typedef struct {
  /* set up by the main thread */
  const CanopyPlugin *plugin;
  GBytes *source;
  /* receiver thread */
  GMainContext *context;
  gnutls_hash_hd_t hash;
  gsize received;
  guint16 port;
  char digest[65];
  gint done;
  GMutex lock;
  GCond cond;
  GMainContext *sender_context;
} Bench;

static const char *const bench_plugins[] = { "tcp", "quic" };

static void
bench_digest_hex (gnutls_hash_hd_t hash, char out[65])
{
  guint8 digest[32];
  gnutls_hash_deinit (hash, digest);
  for (int i = 0; i < 32; i++)
    g_snprintf (out + 2 * i, 3, "%02x", digest[i]);
}

static void
bench_finish (Bench *bench)
{
  bench_digest_hex (bench->hash, bench->digest);
  g_mutex_lock (&bench->lock);
  g_atomic_int_set (&bench->done, 1);
  g_cond_broadcast (&bench->cond);
  g_mutex_unlock (&bench->lock);
  if (bench->sender_context != NULL)
    g_main_context_wakeup (bench->sender_context);
}

/* --- the plain socket copy -------------------------------------------------- */

static gpointer
plain_receiver (gpointer data)
{
  Bench *bench = data;
  int listener = socket (AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 address = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
  socklen_t len = sizeof address;
  guint8 *buffer = g_malloc (BENCH_CHUNK);
  int fd;

  g_assert (bind (listener, (struct sockaddr *) &address, sizeof address) == 0);
  g_assert (listen (listener, 1) == 0);
  g_assert (getsockname (listener, (struct sockaddr *) &address, &len) == 0);
  g_mutex_lock (&bench->lock);
  bench->port = ntohs (address.sin6_port);
  g_cond_broadcast (&bench->cond);
  g_mutex_unlock (&bench->lock);

  fd = accept (listener, NULL, NULL);
  g_assert (fd >= 0);
  while (bench->received < BENCH_TOTAL)
    {
      ssize_t n = read (fd, buffer, BENCH_CHUNK);
      g_assert (n > 0);
      gnutls_hash (bench->hash, buffer, (gsize) n);
      bench->received += (gsize) n;
    }
  close (fd);
  close (listener);
  g_free (buffer);
  bench_finish (bench);
  return NULL;
}

/* Connected before the clock starts, as the plugins are (transport_send). */
static int
plain_connect (Bench *bench)
{
  int fd = socket (AF_INET6, SOCK_STREAM, 0);
  struct sockaddr_in6 address = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT,
                                  .sin6_port = htons (bench->port) };

  g_assert (connect (fd, (struct sockaddr *) &address, sizeof address) == 0);
  return fd;
}

static void
plain_send (Bench *bench, int fd)
{
  gsize size;
  const guint8 *source = g_bytes_get_data (bench->source, &size);

  for (gsize sent = 0; sent < BENCH_TOTAL;)
    {
      gsize offset = sent % size;
      ssize_t n = write (fd, source + offset, MIN (BENCH_CHUNK, size - offset));
      g_assert (n > 0);
      sent += (gsize) n;
    }
  close (fd);
}

/* --- a transport plugin ------------------------------------------------------ */

typedef struct {
  Bench *bench;
  CanopyTransportConnection *conn;
  gsize sent;
  GError *error;
} Sender;

static void
receiver_on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                     gpointer user_data)
{
  Bench *bench = user_data;
  gsize len;
  const guint8 *data;

  (void) conn;
  (void) header;
  if (payload == NULL)
    return;
  data = g_bytes_get_data (payload, &len);
  gnutls_hash (bench->hash, data, len);
  bench->received += len;
  if (bench->received == BENCH_TOTAL)
    bench_finish (bench);
}

static void
on_incoming (CanopyTransportConnection *conn, gpointer user_data)
{
  (void) conn;
  (void) user_data;
}

/* Closing is expected only once the receiver has everything. */
static void
check_closed (Bench *bench, const GError *error)
{
  if (!g_atomic_int_get (&bench->done))
    g_error ("the connection closed before the end: %s", error->message);
}

static void
receiver_on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  (void) conn;
  check_closed (user_data, error);
}

static void
sender_on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  Sender *sender = user_data;
  (void) conn;
  check_closed (sender->bench, error);
}

static void
sender_pump (Sender *sender)
{
  gsize size;
  g_autoptr (GBytes) header = g_bytes_new_static ("chunk", 5);

  size = g_bytes_get_size (sender->bench->source);
  while (sender->sent < BENCH_TOTAL)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GBytes) slice = g_bytes_new_from_bytes (sender->bench->source,
                                                         sender->sent % size, BENCH_CHUNK);
      if (!canopy_transport_send (sender->conn, header, slice, &error))
        {
          if (!g_error_matches (error, CANOPY_TRANSPORT_ERROR, CANOPY_TRANSPORT_ERROR_QUEUE_FULL))
            g_error ("send failed: %s", error->message);
          return; /* resumes on `drained` */
        }
      sender->sent += BENCH_CHUNK;
    }
}

static void
sender_on_drained (CanopyTransportConnection *conn, gpointer user_data)
{
  (void) conn;
  sender_pump (user_data);
}

static void
ignore_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
                gpointer user_data)
{
  (void) conn;
  (void) header;
  (void) payload;
  (void) user_data;
}

static void
ignore_drained (CanopyTransportConnection *conn, gpointer user_data)
{
  (void) conn;
  (void) user_data;
}

static const CanopyTransportEvents receiver_events = {
  .incoming = on_incoming,
  .message = receiver_on_message,
  .drained = ignore_drained,
  .closed = receiver_on_closed,
};

static const CanopyTransportEvents sender_events = {
  .incoming = on_incoming,
  .message = ignore_message,
  .drained = sender_on_drained,
  .closed = sender_on_closed,
};

static CanopyConfig *
bench_config (const char *plugin_name)
{
  g_autoptr (GError) error = NULL;
  /* CANOPY_BENCH_UDP_PAYLOAD=9000 gives QUIC the datagrams of a LAN with
   * jumbo frames (loopback carries any size); the default is Ethernet's. */
  const char *udp_payload = g_getenv ("CANOPY_BENCH_UDP_PAYLOAD");
  g_autofree char *udp = udp_payload != NULL && g_str_equal (plugin_name, "quic")
                           ? g_strdup_printf ("<udp max-payload='%s'/>", udp_payload)
                           : g_strdup ("");
  g_autofree char *xml = g_strdup_printf (
    "<agent><server host='::1'/><transport plugin='%s'>"
    "<listen address='::1' port='0'/>%s"
    "</transport></agent>", plugin_name, udp);
  CanopyConfig *config = canopy_config_load_data (xml, -1, "<bench>", CANOPY_SCHEMA_AGENT, &error);
  if (config == NULL)
    g_error ("%s", error->message);
  return config;
}

static CanopyTransport *
bench_transport (const CanopyPlugin *plugin, CanopyConfig *config, const char *id,
                 GMainContext *context, const CanopyTransportEvents *events, gpointer user_data)
{
  g_autoptr (GError) error = NULL;
  CanopySharedKey key;
  CanopyTransportCredentials creds;
  CanopyTransport *transport;
  const CanopyConfigNode *element =
    canopy_config_node_get_child (canopy_config_get_root (config), "transport");

  memset (key.bytes, 0x5a, sizeof key.bytes);
  if (!canopy_keys_make_transport_credentials (&key, id, &creds, &error))
    g_error ("%s", error->message);
  transport = canopy_transport_new (plugin, element, &creds, context, events, user_data, &error);
  canopy_keys_wipe (&creds, sizeof creds);
  if (transport == NULL)
    g_error ("%s", error->message);
  return transport;
}

static gpointer
transport_receiver (gpointer data)
{
  Bench *bench = data;
  g_autoptr (CanopyConfig) config = bench_config (canopy_plugin_get_name (bench->plugin));
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) addresses = NULL;
  CanopyTransport *transport;

  g_main_context_push_thread_default (bench->context);
  transport = bench_transport (bench->plugin, config, "receiver", bench->context,
                               &receiver_events, bench);
  if (!canopy_transport_listen (transport, &error))
    g_error ("%s", error->message);
  addresses = canopy_transport_get_listen_addresses (transport);
  g_mutex_lock (&bench->lock);
  bench->port = g_inet_socket_address_get_port (addresses->pdata[0]);
  g_cond_broadcast (&bench->cond);
  g_mutex_unlock (&bench->lock);

  while (!g_atomic_int_get (&bench->done))
    g_main_context_iteration (bench->context, TRUE);
  canopy_transport_free (transport);
  g_main_context_pop_thread_default (bench->context);
  return NULL;
}

typedef struct {
  Sender *sender;
  CanopyTransport *transport;
  gboolean done;
} ConnectWait;

static void
on_connect_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ConnectWait *wait = user_data;
  (void) source;
  wait->sender->conn = canopy_transport_connect_finish (wait->transport, result,
                                                        &wait->sender->error);
  wait->done = TRUE;
}

/* Connects (not timed), then times 1 GiB from the first send to the
 * receiver's last hashed byte. */
static double
transport_send (Bench *bench, GMainContext *context)
{
  g_autoptr (CanopyConfig) config = bench_config (canopy_plugin_get_name (bench->plugin));
  Sender sender = { bench, NULL, 0, NULL };
  ConnectWait wait = { &sender, NULL, FALSE };
  CanopyTransport *transport;
  gint64 start;

  transport = bench_transport (bench->plugin, config, "sender", context, &sender_events, &sender);
  wait.transport = transport;
  canopy_transport_connect_async (transport, "::1", bench->port, NULL, on_connect_done, &wait);
  while (!wait.done)
    g_main_context_iteration (context, TRUE);
  if (sender.conn == NULL)
    g_error ("connect failed: %s", sender.error->message);

  start = g_get_monotonic_time ();
  sender_pump (&sender);
  while (!g_atomic_int_get (&bench->done))
    g_main_context_iteration (context, TRUE);
  canopy_transport_free (transport);
  return (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
}

/* --- runs ------------------------------------------------------------------ */

static double
bench_run_once (const CanopyPlugin *plugin, GBytes *source, char digest[65])
{
  Bench bench = { 0 };
  GThread *thread;
  double seconds;
  gint64 start;
  g_autoptr (GMainContext) sender_context = g_main_context_new ();

  bench.plugin = plugin;
  bench.source = source;
  g_mutex_init (&bench.lock);
  g_cond_init (&bench.cond);
  gnutls_hash_init (&bench.hash, GNUTLS_DIG_SHA256);
  if (plugin != NULL)
    {
      bench.context = g_main_context_new ();
      bench.sender_context = sender_context;
    }
  thread = g_thread_new ("receiver", plugin != NULL ? transport_receiver : plain_receiver, &bench);
  g_mutex_lock (&bench.lock);
  while (bench.port == 0)
    g_cond_wait (&bench.cond, &bench.lock);
  g_mutex_unlock (&bench.lock);

  if (plugin != NULL)
    {
      g_main_context_push_thread_default (sender_context);
      seconds = transport_send (&bench, sender_context);
      g_main_context_pop_thread_default (sender_context);
    }
  else
    {
      int fd = plain_connect (&bench);

      start = g_get_monotonic_time ();
      plain_send (&bench, fd);
      g_mutex_lock (&bench.lock);
      while (!g_atomic_int_get (&bench.done))
        g_cond_wait (&bench.cond, &bench.lock);
      g_mutex_unlock (&bench.lock);
      seconds = (double) (g_get_monotonic_time () - start) / G_USEC_PER_SEC;
    }
  g_thread_join (thread);
  if (bench.context != NULL)
    g_main_context_unref (bench.context);
  memcpy (digest, bench.digest, 65);
  g_mutex_clear (&bench.lock);
  g_cond_clear (&bench.cond);
  return seconds;
}

static int
compare_doubles (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

/* One timed run; MB/s, after checking the receiver's digest. */
static double
bench_rate (const char *label, const CanopyPlugin *plugin, GBytes *source, const char *expected)
{
  char digest[65];
  double seconds = bench_run_once (plugin, source, digest);
  if (strcmp (digest, expected) != 0)
    g_error ("%s: the receiver's SHA-256 %s differs from the data's %s", label, digest, expected);
  return (double) BENCH_TOTAL / 1e6 / seconds;
}

static double
bench_median (double *values)
{
  double sorted[BENCH_RUNS];
  memcpy (sorted, values, sizeof sorted);
  qsort (sorted, BENCH_RUNS, sizeof sorted[0], compare_doubles);
  return sorted[BENCH_RUNS / 2];
}

static void
bench_print (const char *label, double *rates)
{
  printf ("  %-18s %8.0f MB/s   (runs: %.0f %.0f %.0f)\n", label, bench_median (rates),
          rates[0], rates[1], rates[2]);
}

static char *
bench_expected_digest (GBytes *source)
{
  gnutls_hash_hd_t hash;
  gsize size;
  const guint8 *data = g_bytes_get_data (source, &size);
  char *out = g_malloc (65);

  gnutls_hash_init (&hash, GNUTLS_DIG_SHA256);
  for (gsize done = 0; done < BENCH_TOTAL; done += BENCH_CHUNK)
    gnutls_hash (hash, data + done % size, BENCH_CHUNK);
  bench_digest_hex (hash, out);
  return out;
}

int
main (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  guint32 *data = g_malloc (BENCH_BUFFER);
  g_autoptr (GBytes) source = NULL;
  g_autofree char *expected = NULL;
  const CanopyPlugin *plugins[G_N_ELEMENTS (bench_plugins)] = { NULL };
  double plain[BENCH_RUNS], rates[G_N_ELEMENTS (bench_plugins)][BENCH_RUNS];
  double ratios[G_N_ELEMENTS (bench_plugins)][BENCH_RUNS];
  const char *only;

  for (gsize i = 0; i < BENCH_BUFFER / 4; i++)
    data[i] = g_rand_int (rand);
  source = g_bytes_new_take (data, BENCH_BUFFER);
  expected = bench_expected_digest (source);

  printf ("transport-bench: %zu MiB through one loopback connection, %u rounds, "
          "receiver hashes with SHA-256\n", BENCH_TOTAL >> 20, BENCH_RUNS);
  /* CANOPY_BENCH_ONLY=tcp runs just that one, for profiling it. */
  only = g_getenv ("CANOPY_BENCH_ONLY");
  for (gsize i = 0; i < G_N_ELEMENTS (bench_plugins); i++)
    {
      g_autoptr (GError) error = NULL;
      if (only != NULL && !g_str_equal (only, bench_plugins[i]))
        continue;
      plugins[i] = canopy_plugin_loader_load (loader, bench_plugins[i],
                                              CANOPY_PLUGIN_KIND_TRANSPORT, &error);
      if (plugins[i] == NULL)
        printf ("  %-18s SKIPPED: %s\n", bench_plugins[i], error->message);
    }

  /* Rounds interleave the candidates, so a busy moment on the machine
   * hits all of them alike; each ratio is taken within its round. */
  for (int run = 0; run < BENCH_RUNS; run++)
    {
      plain[run] = only == NULL ? bench_rate ("plain", NULL, source, expected) : 1.0;
      for (gsize i = 0; i < G_N_ELEMENTS (bench_plugins); i++)
        if (plugins[i] != NULL)
          {
            rates[i][run] = bench_rate (bench_plugins[i], plugins[i], source, expected);
            ratios[i][run] = rates[i][run] / plain[run];
          }
    }

  if (only == NULL)
    bench_print ("plain TCP copy", plain);
  for (gsize i = 0; i < G_N_ELEMENTS (bench_plugins); i++)
    if (plugins[i] != NULL)
      {
        g_autofree char *label = g_strdup_printf ("%s transport", bench_plugins[i]);
        bench_print (label, rates[i]);
        if (only == NULL)
          printf ("  %-18s %8.2f x plain copy (median of the rounds' ratios: %.2f %.2f %.2f)\n",
                  "", bench_median (ratios[i]), ratios[i][0], ratios[i][1], ratios[i][2]);
      }
  return 0;
}
