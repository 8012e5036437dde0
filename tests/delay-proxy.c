/* A delaying TCP proxy with a thread per direction and connection:
 * blocking sockets keep it short, and the test's main loop never waits
 * on it. */
#include "build-config.h"

#include "tests/delay-proxy.h"

#include <gio/gio.h>
#include <string.h>

typedef struct {
  gint64 at; /* monotonic µs it was read; 0 ends the stream */
  GBytes *data;
} Piece;

typedef struct {
  CanopyTestDelayProxy *proxy;
  GSocket *client;
  GSocket *upstream;
  GAsyncQueue *pieces; /* Piece, upstream → client */
  GThread *threads[3];
} Connection;

struct _CanopyTestDelayProxy {
  GSocket *listener;
  char *upstream_host;
  guint16 upstream_port;
  gint delay_us;   /* atomic */
  gint stopping;   /* atomic */
  GMutex lock;
  GPtrArray *connections;
  GThread *acceptor;
};

static void
piece_free (Piece *piece)
{
  g_clear_pointer (&piece->data, g_bytes_unref);
  g_free (piece);
}

/* Client to upstream, at once: requests are small and go upstream. */
static gpointer
forward_requests (gpointer user_data)
{
  Connection *c = user_data;
  char buffer[16384];
  gssize got;

  while ((got = g_socket_receive (c->client, buffer, sizeof buffer, NULL, NULL)) > 0)
    if (g_socket_send (c->upstream, buffer, (gsize) got, NULL, NULL) != got)
      break;
  g_socket_shutdown (c->upstream, FALSE, TRUE, NULL);
  return NULL;
}

static gpointer
read_answers (gpointer user_data)
{
  Connection *c = user_data;
  char buffer[65536];
  gssize got;

  while ((got = g_socket_receive (c->upstream, buffer, sizeof buffer, NULL, NULL)) > 0)
    {
      Piece *piece = g_new0 (Piece, 1);

      piece->at = g_get_monotonic_time ();
      piece->data = g_bytes_new (buffer, (gsize) got);
      g_async_queue_push (c->pieces, piece);
    }
  g_async_queue_push (c->pieces, g_new0 (Piece, 1));
  return NULL;
}

static gboolean
send_all (GSocket *socket, GBytes *data)
{
  gsize length, sent = 0;
  const char *bytes = g_bytes_get_data (data, &length);

  while (sent < length)
    {
      gssize n = g_socket_send (socket, bytes + sent, length - sent, NULL, NULL);
      if (n <= 0)
        return FALSE;
      sent += (gsize) n;
    }
  return TRUE;
}

/* Upstream to client, each piece when its delay is over: the delay in
 * force when it leaves counts, so a change shows at once. */
static gpointer
deliver_answers (gpointer user_data)
{
  Connection *c = user_data;
  gboolean open = TRUE;

  for (;;)
    {
      Piece *piece = g_async_queue_pop (c->pieces);
      gint64 due;

      if (piece->at == 0)
        {
          piece_free (piece);
          break;
        }
      due = piece->at + g_atomic_int_get (&c->proxy->delay_us);
      while (open && g_get_monotonic_time () < due && !g_atomic_int_get (&c->proxy->stopping))
        g_usleep (MIN (due - g_get_monotonic_time (), 1000));
      if (open && !send_all (c->client, piece->data))
        open = FALSE;
      piece_free (piece);
    }
  g_socket_shutdown (c->client, FALSE, TRUE, NULL);
  return NULL;
}

static void
connection_free (Connection *c)
{
  g_socket_shutdown (c->client, TRUE, TRUE, NULL);
  if (c->upstream != NULL)
    g_socket_shutdown (c->upstream, TRUE, TRUE, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (c->threads); i++)
    if (c->threads[i] != NULL)
      g_thread_join (c->threads[i]);
  g_clear_object (&c->client);
  g_clear_object (&c->upstream);
  g_async_queue_unref (c->pieces);
  g_free (c);
}

static GSocket *
connect_upstream (CanopyTestDelayProxy *proxy)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (proxy->upstream_host);
  g_autoptr (GSocketAddress) target = g_inet_socket_address_new (address, proxy->upstream_port);
  GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, NULL);

  if (socket != NULL && g_socket_connect (socket, target, NULL, NULL))
    return socket;
  g_clear_object (&socket);
  return NULL;
}

static gpointer
accept_connections (gpointer user_data)
{
  CanopyTestDelayProxy *proxy = user_data;
  GSocket *client;

  while ((client = g_socket_accept (proxy->listener, NULL, NULL)) != NULL)
    {
      Connection *c = g_new0 (Connection, 1);

      c->proxy = proxy;
      c->client = client;
      c->pieces = g_async_queue_new_full ((GDestroyNotify) piece_free);
      c->upstream = connect_upstream (proxy);
      g_mutex_lock (&proxy->lock);
      g_ptr_array_add (proxy->connections, c);
      g_mutex_unlock (&proxy->lock);
      if (c->upstream == NULL || g_atomic_int_get (&proxy->stopping))
        {
          g_socket_shutdown (c->client, TRUE, TRUE, NULL);
          continue;
        }
      c->threads[0] = g_thread_new ("proxy-requests", forward_requests, c);
      c->threads[1] = g_thread_new ("proxy-answers", read_answers, c);
      c->threads[2] = g_thread_new ("proxy-deliver", deliver_answers, c);
    }
  return NULL;
}

CanopyTestDelayProxy *
canopy_test_delay_proxy_new (const char *upstream_host, guint16 upstream_port, guint16 *port)
{
  CanopyTestDelayProxy *proxy = g_new0 (CanopyTestDelayProxy, 1);
  g_autoptr (GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr (GSocketAddress) bound = NULL;

  proxy->upstream_host = g_strdup (upstream_host);
  proxy->upstream_port = upstream_port;
  proxy->connections = g_ptr_array_new ();
  g_mutex_init (&proxy->lock);
  proxy->listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                  G_SOCKET_PROTOCOL_TCP, NULL);
  g_assert (proxy->listener != NULL);
  g_assert (g_socket_bind (proxy->listener, any, TRUE, NULL));
  g_assert (g_socket_listen (proxy->listener, NULL));
  bound = g_socket_get_local_address (proxy->listener, NULL);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  proxy->acceptor = g_thread_new ("proxy-accept", accept_connections, proxy);
  return proxy;
}

void
canopy_test_delay_proxy_set_delay (CanopyTestDelayProxy *proxy, gint64 delay_us)
{
  g_atomic_int_set (&proxy->delay_us, (gint) delay_us);
}

void
canopy_test_delay_proxy_free (CanopyTestDelayProxy *proxy)
{
  if (proxy == NULL)
    return;
  g_atomic_int_set (&proxy->stopping, 1);
  /* Wakes the acceptor out of accept() for good. */
  g_socket_shutdown (proxy->listener, TRUE, TRUE, NULL);
  g_socket_close (proxy->listener, NULL);
  g_thread_join (proxy->acceptor);
  for (guint i = 0; i < proxy->connections->len; i++)
    connection_free (g_ptr_array_index (proxy->connections, i));
  g_ptr_array_unref (proxy->connections);
  g_object_unref (proxy->listener);
  g_mutex_clear (&proxy->lock);
  g_free (proxy->upstream_host);
  g_free (proxy);
}
