/* The console API's connections. libsoup's own listener gives a client
 * that sends nothing a TLS handshake thread from GLib's shared pool for
 * as long as it likes, and never closes it: a hundred idle sockets made
 * the console unresponsive. Here a connection is capped at accept, waits
 * for its first byte without a thread, must finish its handshake in time,
 * and is closed when it holds no request for too long. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-listener"

#include "server/console/console-listener.h"
#include "lib/i18n.h"
#include "lib/log.h"

#include <gio/gio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

/* Idle connections are looked for this often. */
#define SWEEP_INTERVAL_S 1
#define LOG_WINDOW_S 60
#define LISTEN_BACKLOG 256
/* glib-networking runs each handshake in a thread of GLib's shared pool,
 * blocked until the client answers: clients that send a byte and stall
 * would each hold one. At most this many run at once, and this many for
 * one address, so one stalling address cannot hold the others up; the
 * rest wait their turn, within their own handshake timeout. Handshakes
 * take milliseconds, so the queue is empty unless someone is stalling. */
#define MAX_HANDSHAKES 64
#define MAX_HANDSHAKES_PER_ADDRESS 4

typedef enum {
  CONN_WAITING,     /* accepted, no byte yet: no TLS state, no thread */
  CONN_QUEUED,      /* has spoken, waits for a handshake slot */
  CONN_HANDSHAKING, /* glib-networking's handshake runs */
  CONN_HANDED,      /* established, libsoup serves it */
} ConnState;

typedef struct {
  gint refs;               /* the table's, the queue's, a handshake's in progress */
  CanopyConsoleListener *listener; /* NULL once out of the table */
  GSocketConnection *tcp;
  GIOStream *tls;
  GSocketAddress *remote;  /* also libsoup's, which tells us the connection of a request */
  char *host;
  ConnState state;
  GCancellable *cancellable;
  GSource *first_byte;
  guint handshake_timer;
  guint in_flight;         /* requests whose headers are in and not yet answered */
  gint64 idle_since;       /* monotonic µs */
} Conn;

struct _CanopyConsoleListener {
  SoupServer *soup;
  GTlsCertificate *certificate;
  CanopyConsoleLimits limits;
  GSocketService *service;
  GHashTable *conns;     /* remote GSocketAddress → Conn */
  GHashTable *per_host;  /* host → open connections (GUINT_TO_POINTER) */
  CanopyLogLimit *refusals;
  guint64 refused;       /* connections closed past a cap */
  guint handshakes;      /* running now, at most MAX_HANDSHAKES */
  GHashTable *handshakes_per_host; /* host → running now (GUINT_TO_POINTER) */
  GQueue queue;          /* Conn waiting for a handshake slot, each with a reference */
  guint sweep_timer;
  gulong started_handler;
};

static void
on_refusals_summary (const char *host, guint suppressed, gpointer user_data)
{
  g_message (g_dngettext (GETTEXT_PACKAGE,
                          "The console API refused %u more connection from %s in the last "
                          "minute (connection limit reached)",
                          "The console API refused %u more connections from %s in the last "
                          "minute (connection limit reached)",
                          suppressed), suppressed, host);
}

static void
count_add (GHashTable *counts, const char *host, int delta)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, host)) + delta;

  if (n > 0)
    g_hash_table_insert (counts, g_strdup (host), GUINT_TO_POINTER (n));
  else
    g_hash_table_remove (counts, host);
}

static guint
count_of (GHashTable *counts, const char *host)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (counts, host));
}

/* A handshake slot is given back. */
static void
handshake_ended (CanopyConsoleListener *listener, Conn *conn)
{
  listener->handshakes--;
  count_add (listener->handshakes_per_host, conn->host, -1);
}

static void
conn_unref (Conn *conn)
{
  if (--conn->refs > 0)
    return;
  g_object_unref (conn->cancellable);
  g_clear_object (&conn->tls);
  g_object_unref (conn->tcp);
  g_object_unref (conn->remote);
  g_free (conn->host);
  g_free (conn);
}

/* Out of the table: no longer counted, and whatever runs for it stops. */
static void
conn_detach (Conn *conn)
{
  CanopyConsoleListener *listener = conn->listener;

  count_add (listener->per_host, conn->host, -1);
  if (conn->first_byte != NULL)
    {
      g_source_destroy (conn->first_byte);
      g_clear_pointer (&conn->first_byte, g_source_unref);
    }
  g_clear_handle_id (&conn->handshake_timer, g_source_remove);
  /* Its slot is free now; on_handshake, when it comes, knows it is not
   * to give it back again. The queue is served at the next occasion. */
  if (conn->state == CONN_HANDSHAKING)
    handshake_ended (listener, conn);
  g_cancellable_cancel (conn->cancellable);
  conn->listener = NULL;
  conn_unref (conn);
}

/* Ends a connection that libsoup does not serve yet. */
static void
conn_drop (Conn *conn)
{
  g_io_stream_close (G_IO_STREAM (conn->tcp), NULL, NULL);
  g_hash_table_remove (conn->listener->conns, conn->remote);
}

/* Makes libsoup see the end of a connection it serves: its next read
 * meets end-of-file and it closes the stream itself, which the sweep
 * then notices. Closing the descriptor under libsoup's feet would not. */
static void
conn_shut (Conn *conn)
{
  g_socket_shutdown (g_socket_connection_get_socket (conn->tcp), TRUE, TRUE, NULL);
}

static gboolean
on_handshake_timeout (gpointer user_data)
{
  Conn *conn = user_data;

  conn->handshake_timer = 0;
  g_debug ("console client %s did not finish its TLS handshake in %u s; closing it", conn->host,
           conn->listener->limits.handshake_timeout);
  if (conn->state == CONN_HANDSHAKING)
    g_cancellable_cancel (conn->cancellable); /* on_handshake drops it */
  else
    conn_drop (conn);
  return G_SOURCE_REMOVE;
}

static void
hand_to_soup (Conn *conn)
{
  CanopyConsoleListener *listener = conn->listener;
  g_autoptr (GSocketAddress) local = g_socket_connection_get_local_address (conn->tcp, NULL);
  g_autoptr (GError) error = NULL;

  conn->state = CONN_HANDED;
  conn->idle_since = g_get_monotonic_time ();
  if (!soup_server_accept_iostream (listener->soup, conn->tls, local, conn->remote, &error))
    {
      g_message (_("The console API could not serve a connection from %s: %s"), conn->host,
                 error->message);
      conn_drop (conn);
    }
}

static void start_queued (CanopyConsoleListener *listener);

static void
on_handshake (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Conn *conn = user_data;
  CanopyConsoleListener *listener = conn->listener;
  g_autoptr (GError) error = NULL;
  gboolean ok = g_tls_connection_handshake_finish (G_TLS_CONNECTION (source), result, &error);

  if (listener == NULL) /* dropped meanwhile */
    {
      if (ok)
        g_io_stream_close (G_IO_STREAM (conn->tcp), NULL, NULL);
      conn_unref (conn);
      return;
    }
  handshake_ended (listener, conn);
  conn->state = CONN_WAITING;
  conn_unref (conn);
  if (!ok)
    {
      /* A browser that distrusts the certificate ends up here too. */
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("TLS handshake with console client %s failed: %s", conn->host, error->message);
      conn_drop (conn);
    }
  else
    {
      g_clear_handle_id (&conn->handshake_timer, g_source_remove);
      hand_to_soup (conn);
    }
  start_queued (listener);
}

static void
start_handshake (Conn *conn)
{
  g_autoptr (GError) error = NULL;

  conn->tls = g_tls_server_connection_new (G_IO_STREAM (conn->tcp),
                                           conn->listener->certificate, &error);
  if (conn->tls == NULL)
    {
      g_warning (_("The console API cannot start TLS: %s. Check that glib-networking is "
                   "installed"), error->message);
      conn_drop (conn);
      return;
    }
  conn->state = CONN_HANDSHAKING;
  conn->listener->handshakes++;
  count_add (conn->listener->handshakes_per_host, conn->host, 1);
  conn->refs++;
  g_tls_connection_handshake_async (G_TLS_CONNECTION (conn->tls), G_PRIORITY_DEFAULT,
                                    conn->cancellable, on_handshake, conn);
}

/* Gives free handshake slots to the connections waiting longest, but no
 * more than its share to one address; those dropped while they waited
 * are only let go. */
static void
start_queued (CanopyConsoleListener *listener)
{
  GList *link = listener->queue.head;

  while (link != NULL && listener->handshakes < MAX_HANDSHAKES)
    {
      Conn *conn = link->data;
      GList *next = link->next;

      if (conn->listener == NULL
          || count_of (listener->handshakes_per_host, conn->host) < MAX_HANDSHAKES_PER_ADDRESS)
        {
          g_queue_delete_link (&listener->queue, link);
          if (conn->listener != NULL)
            start_handshake (conn);
          conn_unref (conn);
        }
      link = next;
    }
}

/* The client has spoken: only now does it get TLS state and, with
 * glib-networking, a handshake thread. */
static gboolean
on_first_byte (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  Conn *conn = user_data;

  g_clear_pointer (&conn->first_byte, g_source_unref);
  if ((condition & G_IO_IN) == 0)
    {
      conn_drop (conn); /* hung up without a word */
      return G_SOURCE_REMOVE;
    }
  conn->state = CONN_QUEUED;
  conn->refs++;
  g_queue_push_tail (&conn->listener->queue, conn);
  start_queued (conn->listener);
  return G_SOURCE_REMOVE;
}

static char *
host_of (GSocketAddress *address)
{
  if (G_IS_INET_SOCKET_ADDRESS (address))
    return g_inet_address_to_string (
      g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
  return g_strdup ("?");
}

/* Forgets the connections libsoup has closed since the last sweep. */
static void
reap_closed (CanopyConsoleListener *listener)
{
  GHashTableIter iter;
  Conn *conn;

  g_hash_table_iter_init (&iter, listener->conns);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &conn))
    if (conn->state == CONN_HANDED && g_io_stream_is_closed (conn->tls))
      g_hash_table_iter_remove (&iter);
}

static gboolean
below_caps (CanopyConsoleListener *listener, const char *host, guint *n, guint *total)
{
  *n = count_of (listener->per_host, host);
  *total = g_hash_table_size (listener->conns);
  return *total < listener->limits.max_connections && *n < listener->limits.max_per_address;
}

/* Beyond a cap the connection is closed at once: it costs a descriptor
 * for a moment, never a slot, a thread or TLS state. */
static gboolean
within_caps (CanopyConsoleListener *listener, const char *host)
{
  guint n, total;

  if (below_caps (listener, host, &n, &total))
    return TRUE;
  /* Connections closed since the last sweep do not count. */
  reap_closed (listener);
  if (below_caps (listener, host, &n, &total))
    return TRUE;
  listener->refused++;
  if (canopy_log_limit_allow (listener->refusals, host))
    {
      if (total >= listener->limits.max_connections)
        g_message (_("The console API refused a connection from %s: %u connections are open, "
                     "the most <console max-connections> allows; raise it if that many admins "
                     "and scripts are expected"), host, total);
      else
        g_message (_("The console API refused a connection from %s: it has %u open, the most "
                     "<console max-connections-per-address> allows; a script that opens "
                     "connections without closing them does this"), host, n);
    }
  return FALSE;
}

static gboolean
on_incoming (GSocketService *service, GSocketConnection *tcp, GObject *source,
             gpointer user_data)
{
  CanopyConsoleListener *listener = user_data;
  g_autoptr (GSocketAddress) remote = g_socket_connection_get_remote_address (tcp, NULL);
  g_autofree char *host = host_of (remote);
  GSocket *socket = g_socket_connection_get_socket (tcp);
  Conn *conn;

  if (remote == NULL || !within_caps (listener, host))
    {
      g_io_stream_close (G_IO_STREAM (tcp), NULL, NULL);
      return TRUE;
    }
  conn = g_new0 (Conn, 1);
  conn->refs = 1;
  conn->listener = listener;
  conn->tcp = g_object_ref (tcp);
  conn->remote = g_steal_pointer (&remote);
  conn->host = g_steal_pointer (&host);
  conn->cancellable = g_cancellable_new ();
  g_hash_table_insert (listener->conns, conn->remote, conn);
  count_add (listener->per_host, conn->host, 1);
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
  conn->handshake_timer = g_timeout_add_seconds (listener->limits.handshake_timeout,
                                                 on_handshake_timeout, conn);
  conn->first_byte = g_socket_create_source (socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (conn->first_byte, (GSourceFunc) (void (*) (void)) on_first_byte, conn,
                         NULL);
  g_source_attach (conn->first_byte, g_main_context_get_thread_default ());
  return TRUE;
}

/* Forgets what libsoup closed and shuts what stayed idle too long. */
static gboolean
on_sweep (gpointer user_data)
{
  CanopyConsoleListener *listener = user_data;
  gint64 limit = g_get_monotonic_time ()
                 - (gint64) listener->limits.idle_timeout * G_USEC_PER_SEC;
  GHashTableIter iter;
  Conn *conn;

  g_hash_table_iter_init (&iter, listener->conns);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &conn))
    {
      if (conn->state != CONN_HANDED)
        continue;
      if (g_io_stream_is_closed (conn->tls))
        g_hash_table_iter_remove (&iter);
      else if (conn->in_flight == 0 && conn->idle_since < limit)
        {
          g_debug ("console client %s sent no request for %u s; closing its connection",
                   conn->host, listener->limits.idle_timeout);
          conn_shut (conn);
        }
    }
  start_queued (listener);
  return G_SOURCE_CONTINUE;
}

static Conn *
conn_of (CanopyConsoleListener *listener, SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);

  return remote != NULL ? g_hash_table_lookup (listener->conns, remote) : NULL;
}

static void
on_request_finished (SoupServerMessage *msg, gpointer user_data)
{
  Conn *conn = conn_of (user_data, msg);

  if (conn != NULL && conn->in_flight > 0 && --conn->in_flight == 0)
    conn->idle_since = g_get_monotonic_time ();
}

/* A request is in flight from its headers to its response: a slow upload
 * or a long health check is not idleness, a client that never sends
 * headers is. */
static void
on_request_headers (SoupServerMessage *msg, gpointer user_data)
{
  Conn *conn = conn_of (user_data, msg);

  if (conn == NULL)
    return;
  conn->in_flight++;
  g_signal_connect (msg, "finished", G_CALLBACK (on_request_finished), user_data);
}

static void
on_request_started (SoupServer *soup, SoupServerMessage *msg, gpointer user_data)
{
  g_signal_connect (msg, "got-headers", G_CALLBACK (on_request_headers), user_data);
}

CanopyConsoleListener *
canopy_console_listener_new (SoupServer *soup, GTlsCertificate *certificate,
                             const CanopyConsoleLimits *limits)
{
  CanopyConsoleListener *listener = g_new0 (CanopyConsoleListener, 1);

  listener->soup = soup;
  listener->certificate = g_object_ref (certificate);
  listener->limits = *limits;
  listener->limits.handshake_timeout = MAX (listener->limits.handshake_timeout, 1);
  listener->limits.idle_timeout = MAX (listener->limits.idle_timeout, 1);
  listener->conns = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) conn_detach);
  listener->per_host = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  listener->handshakes_per_host = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  listener->refusals = canopy_log_limit_new (LOG_WINDOW_S, on_refusals_summary, NULL);
  listener->service = g_socket_service_new ();
  /* GLib's default backlog of 10 makes a burst of connections wait for
   * SYN retransmits (a second, then three): the caps, not the kernel
   * queue, decide who gets in. */
  g_socket_listener_set_backlog (G_SOCKET_LISTENER (listener->service), LISTEN_BACKLOG);
  g_signal_connect (listener->service, "incoming", G_CALLBACK (on_incoming), listener);
  listener->started_handler = g_signal_connect (soup, "request-started",
                                                G_CALLBACK (on_request_started), listener);
  listener->sweep_timer = g_timeout_add_seconds (SWEEP_INTERVAL_S, on_sweep, listener);
  return listener;
}

static char *
uri_of (GSocketAddress *address)
{
  g_autofree char *host = host_of (address);
  guint port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));

  if (strchr (host, ':') != NULL)
    return g_strdup_printf ("https://[%s]:%u/", host, port);
  return g_strdup_printf ("https://%s:%u/", host, port);
}

static gboolean
listen_any (CanopyConsoleListener *listener, guint port, GPtrArray *uris, GError **error)
{
  GSocketListener *sockets = G_SOCKET_LISTENER (listener->service);

  if (port == 0)
    {
      port = g_socket_listener_add_any_inet_port (sockets, NULL, error);
      if (port == 0)
        return FALSE;
    }
  else if (!g_socket_listener_add_inet_port (sockets, (guint16) port, NULL, error))
    return FALSE;
  g_ptr_array_add (uris, g_strdup_printf ("https://0.0.0.0:%u/", port));
  g_ptr_array_add (uris, g_strdup_printf ("https://[::]:%u/", port));
  return TRUE;
}

gboolean
canopy_console_listener_listen (CanopyConsoleListener *listener, const char *address,
                                guint port, GStrv *uris, GError **error)
{
  g_autoptr (GPtrArray) builder = g_ptr_array_new_with_free_func (g_free);

  if (address == NULL)
    {
      if (!listen_any (listener, port, builder, error))
        return FALSE;
    }
  else
    {
      g_autoptr (GSocketAddress) wanted = g_inet_socket_address_new_from_string (address, port);
      g_autoptr (GSocketAddress) effective = NULL;

      if (wanted == NULL)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       _("\"%s\" is not an IP address"), address);
          return FALSE;
        }
      if (!g_socket_listener_add_address (G_SOCKET_LISTENER (listener->service), wanted,
                                          G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                          &effective, error))
        return FALSE;
      g_ptr_array_add (builder, uri_of (effective));
    }
  g_socket_service_start (listener->service);
  g_ptr_array_add (builder, NULL);
  *uris = (GStrv) g_ptr_array_free (g_steal_pointer (&builder), FALSE);
  return TRUE;
}

guint
canopy_console_listener_count (const CanopyConsoleListener *listener)
{
  return g_hash_table_size (listener->conns);
}

guint64
canopy_console_listener_get_refused (const CanopyConsoleListener *listener)
{
  return listener->refused;
}

void
canopy_console_listener_free (CanopyConsoleListener *listener)
{
  GHashTableIter iter;
  Conn *conn;

  if (listener == NULL)
    return;
  g_socket_service_stop (listener->service);
  g_socket_listener_close (G_SOCKET_LISTENER (listener->service));
  g_signal_handlers_disconnect_by_data (listener->service, listener);
  g_clear_object (&listener->service);
  g_signal_handler_disconnect (listener->soup, listener->started_handler);
  g_source_remove (listener->sweep_timer);
  /* Connections libsoup serves are closed by soup_server_disconnect();
   * the others are closed here. */
  g_hash_table_iter_init (&iter, listener->conns);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &conn))
    if (conn->state != CONN_HANDED)
      g_io_stream_close (G_IO_STREAM (conn->tcp), NULL, NULL);
  g_hash_table_unref (listener->conns);
  g_queue_clear_full (&listener->queue, (GDestroyNotify) conn_unref);
  g_hash_table_unref (listener->per_host);
  g_hash_table_unref (listener->handshakes_per_host);
  canopy_log_limit_free (listener->refusals);
  g_object_unref (listener->certificate);
  g_free (listener);
}
