/* Content origins through libsoup (HTTP, HTTPS) and GIO (files). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-origin"

#include "lib/origin.h"
#include "lib/i18n.h"

#include <libsoup/soup.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* What the system's autotuning would reach anyway: asking for no limit. */
#define UNLIMITED_WINDOW (8 * 1024 * 1024)

/* Bytes a plain HTTP/1 answer's socket gathers before it wakes the loop:
 * far below any receive window set (ORIGIN_WINDOW_MIN in fetch.c), far
 * above the few packets that arrive between two turns otherwise. */
#define WAKE_BYTES (64 * 1024)

/* Bytes read from one answer in one turn of the loop at most. */
#define READ_TURN_MAX (4 * 1024 * 1024)

struct _CanopyOrigin {
  char *location;
  GFile *file;          /* for file storage */
  SoupSession *session; /* for HTTP; created on first async use */
  GPtrArray *sockets;   /* GSocket of the session's connections, for the window */
  guint receive_window; /* bytes per connection; 0: the system's */
  gint64 wait_us;       /* the latest answer's wait; -1: none yet */
  double rate;          /* bytes/s the range reads keep to; 0: no limit */
  double tokens;
  gint64 tokens_at;     /* monotonic µs */
};

/* One range request, delivered piece by piece as its bytes arrive. */
typedef struct {
  CanopyOrigin *origin;
  guint64 offset;
  gsize length;
  gsize *pieces;
  guint n_pieces;
  CanopyOriginPieceFunc on_piece;
  gpointer user_data;
  guint piece;     /* the piece being read */
  gsize got;       /* its bytes read so far */
  guint8 *buffer;  /* (nullable) its bytes */
  guint64 skip;    /* bytes before the range, from a server that ignores ranges */
  GBytes *data;    /* file storage: the whole range, read in a worker thread */
  SoupMessage *message;
  GInputStream *body;
  GSocket *socket;   /* (nullable) its connection's, for plain HTTP/1 */
  GSource *readable; /* (nullable) the body's, attached while it is read */
  gsize taken;       /* bytes of the range read so far */
  int low_water;     /* the socket's SO_RCVLOWAT while watched; 0: untouched */
  gint64 wait_us; /* request sent to first byte of the answer; -1: unknown */
} RangeRequest;

G_DEFINE_QUARK (canopy-origin-error-quark, canopy_origin_error)
/* On each connection's GSocket: its libsoup connection ID (a guint64). */
#define CONNECTION_ID "canopy-origin-connection-id"

static void
set_low_water (RangeRequest *request, int bytes)
{
  g_autoptr (GError) error = NULL;

  if (!g_socket_set_option (request->socket, SOL_SOCKET, SO_RCVLOWAT, bytes, &error))
    g_debug ("cannot set the socket's low water mark: %s", error->message);
  request->low_water = bytes;
}

/* The socket of a plain HTTP/1 answer wakes the loop once WAKE_BYTES have
 * come, or what remains of the answer if less, lest the last bytes never
 * wake it. */
static void
fit_low_water (RangeRequest *request)
{
  int wanted = (int) MAX (1, MIN (WAKE_BYTES, request->length - request->taken));

  if (request->socket != NULL && request->readable != NULL && wanted != request->low_water)
    set_low_water (request, wanted);
}

/* Stops watching the body (it holds a reference to the request's task);
 * its socket goes back to libsoup as it was, to read the next answer's
 * headers. */
static void
stop_watching (RangeRequest *request)
{
  if (request->readable == NULL)
    return;
  g_source_destroy (request->readable);
  g_clear_pointer (&request->readable, g_source_unref);
  if (request->low_water > 1)
    set_low_water (request, 1);
  request->low_water = 0;
}

static void
range_request_free (RangeRequest *request)
{
  stop_watching (request);
  g_clear_object (&request->socket);
  g_clear_object (&request->body);
  g_clear_object (&request->message);
  g_clear_pointer (&request->data, g_bytes_unref);
  g_free (request->buffer);
  g_free (request->pieces);
  g_free (request);
}

CanopyOrigin *
canopy_origin_new (const char *location, GError **error)
{
  g_autoptr (CanopyOrigin) origin = g_new0 (CanopyOrigin, 1);

  origin->location = g_strdup (location);
  origin->wait_us = -1;
  if (g_str_has_prefix (location, "http://") || g_str_has_prefix (location, "https://"))
    {
      g_autoptr (GUri) uri = g_uri_parse (location, SOUP_HTTP_URI_FLAGS, NULL);
      if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
        {
          g_set_error (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_LOCATION,
                       _("\"%s\" is not a valid URL; write it as https://host/path"), location);
          return NULL;
        }
      return g_steal_pointer (&origin);
    }
  if (g_str_has_prefix (location, "file://"))
    origin->file = g_file_new_for_uri (location);
  else if (g_path_is_absolute (location))
    origin->file = g_file_new_for_path (location);
  else
    {
      g_set_error (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_LOCATION,
                   _("\"%s\" is neither an http:// or https:// URL nor an absolute path"),
                   location);
      return NULL;
    }
  return g_steal_pointer (&origin);
}

void
canopy_origin_free (CanopyOrigin *origin)
{
  if (origin == NULL)
    return;
  g_clear_object (&origin->file);
  g_clear_object (&origin->session);
  g_clear_pointer (&origin->sockets, g_ptr_array_unref);
  g_free (origin->location);
  g_free (origin);
}

const char *
canopy_origin_get_location (const CanopyOrigin *origin)
{
  return origin->location;
}

static gboolean
check_status (CanopyOrigin *origin, SoupMessage *message, gboolean want_partial, GError **error)
{
  guint status = soup_message_get_status (message);

  if (status == SOUP_STATUS_OK || (want_partial && status == SOUP_STATUS_PARTIAL_CONTENT))
    return TRUE;
  g_set_error (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_HTTP,
               _("The origin %s answered HTTP %u (%s); check the URL and that the content is "
                 "published there"), origin->location, status,
               soup_message_get_reason_phrase (message) ? soup_message_get_reason_phrase (message)
                                                        : "");
  return FALSE;
}

static void
set_failed (GError **error, CanopyOrigin *origin, const GError *cause)
{
  g_set_error (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_FAILED,
               _("Cannot read the origin %s: %s"), origin->location, cause->message);
}

GInputStream *
canopy_origin_open (CanopyOrigin *origin, GCancellable *cancellable, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (SoupSession) session = NULL;
  g_autoptr (SoupMessage) message = NULL;
  g_autoptr (GInputStream) stream = NULL;

  if (origin->file != NULL)
    {
      GInputStream *file_stream = G_INPUT_STREAM (g_file_read (origin->file, cancellable,
                                                               &local_error));
      if (file_stream == NULL)
        set_failed (error, origin, local_error);
      return file_stream;
    }
  session = soup_session_new ();
  message = soup_message_new (SOUP_METHOD_GET, origin->location);
  stream = soup_session_send (session, message, cancellable, &local_error);
  if (stream == NULL)
    {
      set_failed (error, origin, local_error);
      return NULL;
    }
  if (!check_status (origin, message, FALSE, error))
    return NULL;
  return g_steal_pointer (&stream);
}

static void
file_range_read (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  RangeRequest *request = task_data;
  CanopyOrigin *origin = request->origin;
  g_autoptr (GError) error = NULL;
  g_autoptr (GFileInputStream) stream = g_file_read (origin->file, cancellable, &error);
  g_autofree guint8 *buffer = g_malloc (request->length);
  gsize got = 0;

  if (stream == NULL
      || !g_seekable_seek (G_SEEKABLE (stream), (goffset) request->offset, G_SEEK_SET,
                           cancellable, &error)
      || !g_input_stream_read_all (G_INPUT_STREAM (stream), buffer, request->length, &got,
                                   cancellable, &error))
    {
      GError *wrapped = NULL;
      set_failed (&wrapped, origin, error);
      g_task_return_error (task, wrapped);
      return;
    }
  if (got != request->length)
    {
      g_task_return_new_error (task, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_SHORT,
                               _("The origin %s is shorter than its manifest says: it was "
                                 "changed after it was published; publish it again"),
                               origin->location);
      return;
    }
  request->data = g_bytes_new_take (g_steal_pointer (&buffer), got);
  g_task_return_boolean (task, TRUE);
}

/* File storage: the range was read whole in a worker; its pieces are
 * handed over here, on the caller's main context. */
static void
on_file_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  RangeRequest *request = g_task_get_task_data (task);
  GError *error = NULL;
  gsize at = 0;

  (void) source;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_task_return_error (task, error);
      return;
    }
  for (guint i = 0; i < request->n_pieces; i++)
    {
      g_autoptr (GBytes) piece = NULL;

      if (g_task_return_error_if_cancelled (task))
        return;
      piece = g_bytes_new_from_bytes (request->data, at, request->pieces[i]);
      at += request->pieces[i];
      request->on_piece (i, piece, request->user_data);
    }
  g_task_return_boolean (task, TRUE);
}

static void read_body (GTask *task);

/* Fails the request; a cancellation stays one, so that the caller can
 * tell its own doing from the origin's. */
static void
fail_body (GTask *task, GError *error)
{
  RangeRequest *request = g_task_get_task_data (task);
  GError *wrapped = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_task_return_error (task, error);
      return;
    }
  set_failed (&wrapped, request->origin, error);
  g_error_free (error);
  g_task_return_error (task, wrapped);
}

static void
fail_short (GTask *task)
{
  RangeRequest *request = g_task_get_task_data (task);

  g_task_return_new_error (task, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_SHORT,
                           _("The origin %s ended %zu bytes into a %zu-byte range: the "
                             "connection was cut (the agent asks again by itself), or the "
                             "content was changed after it was published (publish it again)"),
                           request->origin->location, request->taken, request->length);
}

/* Whether a read or skip of @n bytes leaves the answer to go on; if not,
 * @task is failed with @error or as cut short. What was taken counts
 * against the rate. */
static gboolean
body_went_on (GTask *task, gssize n, GError *error)
{
  RangeRequest *request = g_task_get_task_data (task);

  if (n < 0)
    {
      fail_body (task, error);
      return FALSE;
    }
  if (n == 0)
    {
      fail_short (task);
      return FALSE;
    }
  request->origin->tokens -= (double) n;
  return TRUE;
}

static void
on_body_closed (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;

  /* A close that fails costs only the connection's reuse. */
  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  g_task_return_boolean (task, TRUE);
}

/* @n more bytes of the piece under way: a piece complete is handed on. */
static void
body_took (RangeRequest *request, gsize n)
{
  request->taken += n;
  request->got += n;
  if (request->got == request->pieces[request->piece])
    {
      g_autoptr (GBytes) piece = g_bytes_new_take (g_steal_pointer (&request->buffer),
                                                  request->got);

      request->got = 0;
      request->on_piece (request->piece++, piece, request->user_data);
    }
}

static void
on_body_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  RangeRequest *request = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (!body_went_on (task, n, error))
    return;
  body_took (request, (gsize) n);
  read_body (g_steal_pointer (&task));
}

static void
on_body_skipped (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  RangeRequest *request = g_task_get_task_data (task);
  GError *error = NULL;
  gssize n = g_input_stream_skip_finish (G_INPUT_STREAM (source), result, &error);

  if (!body_went_on (task, n, error))
    return;
  request->skip -= (guint64) n;
  read_body (g_steal_pointer (&task));
}

static gboolean
on_paced (gpointer user_data)
{
  read_body (user_data);
  return G_SOURCE_REMOVE;
}

/* Whether a read may go ahead at the rate set; if not, it is resumed when
 * it may. What is not read stays in the socket's buffer, whose closing
 * window slows the origin down, as a download limited to a rate does. */
static gboolean
read_paced (GTask *task)
{
  RangeRequest *request = g_task_get_task_data (task);
  CanopyOrigin *origin = request->origin;
  gint64 now;

  if (origin->rate <= 0)
    return TRUE;
  now = g_get_monotonic_time ();
  origin->tokens = MIN (origin->rate, origin->tokens
                                        + origin->rate * (double) (now - origin->tokens_at)
                                            / G_USEC_PER_SEC);
  origin->tokens_at = now;
  if (origin->tokens > 0)
    return TRUE;
  g_timeout_add ((guint) (-origin->tokens / origin->rate * 1000.0) + 1, on_paced,
                 g_object_ref (task));
  return FALSE;
}

static void read_available (GTask *task);

static gboolean
on_body_readable (GObject *stream, gpointer user_data)
{
  (void) stream;
  read_available (g_object_ref (user_data));
  return G_SOURCE_CONTINUE;
}

static gboolean
on_socket_readable (GSocket *socket, GIOCondition condition, gpointer user_data)
{
  (void) socket;
  (void) condition;
  read_available (g_object_ref (user_data));
  return G_SOURCE_CONTINUE;
}

static gboolean
on_read_resumed (gpointer user_data)
{
  read_available (g_object_ref (user_data));
  return G_SOURCE_REMOVE;
}

/* Waits for more of the body on one source that stays attached from read
 * to read. A source attached per read, as g_input_stream_read_async()
 * does, and one blocked while it dispatches, as GLib does to a source that
 * may not recurse, each add and remove the socket in the loop's poll set
 * and wake the loop through its eventfd: an empty turn of the loop and
 * two system calls per source (libsoup's body source nests several) per
 * read, over a hundred thousand per 128 MiB. On plain HTTP/1 the body
 * waits for nothing but its connection's socket (a read that would block
 * found every buffer above it empty), so that is watched alone. */
static void
watch_body (GTask *task)
{
  RangeRequest *request = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (request->readable != NULL)
    return;
  if (request->socket != NULL)
    {
      request->readable = g_socket_create_source (request->socket,
                                                  G_IO_IN | G_IO_HUP | G_IO_ERR, cancellable);
      g_source_set_callback (request->readable, G_SOURCE_FUNC (on_socket_readable),
                             g_object_ref (task), g_object_unref);
    }
  else
    {
      request->readable = g_pollable_input_stream_create_source (
        G_POLLABLE_INPUT_STREAM (request->body), cancellable);
      g_source_set_callback (request->readable, G_SOURCE_FUNC (on_body_readable),
                             g_object_ref (task), g_object_unref);
    }
  g_source_set_can_recurse (request->readable, TRUE);
  g_source_attach (request->readable, g_task_get_context (task));
  fit_low_water (request);
}

/* Reads what the connection has, straight into the buffer of the piece
 * it belongs to, until it has no more, the rate says wait, or the answer
 * ends; takes @task. So as not to hold the loop while a fast origin keeps
 * the socket full, it lets the loop turn after a few pieces. */
static void
read_available (GTask *task)
{
  RangeRequest *request = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  gsize turn = 0;

  for (;;)
    {
      GError *error = NULL;
      gssize n;

      if (request->piece == request->n_pieces || turn >= READ_TURN_MAX)
        break;
      if (!read_paced (task))
        {
          stop_watching (request);
          g_object_unref (task);
          return;
        }
      if (request->buffer == NULL)
        request->buffer = g_malloc (request->pieces[request->piece]);
      n = g_pollable_input_stream_read_nonblocking (
        G_POLLABLE_INPUT_STREAM (request->body), request->buffer + request->got,
        request->pieces[request->piece] - request->got, cancellable, &error);
      if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          g_error_free (error);
          watch_body (task);
          g_object_unref (task);
          return;
        }
      if (!body_went_on (task, n, error))
        {
          stop_watching (request);
          g_object_unref (task);
          return;
        }
      turn += (gsize) n;
      body_took (request, (gsize) n);
      if (request->low_water > 1 && request->length - request->taken < (gsize) request->low_water)
        fit_low_water (request);
    }
  stop_watching (request);
  if (request->piece == request->n_pieces)
    read_body (task);
  else
    g_idle_add_full (G_PRIORITY_DEFAULT, on_read_resumed, task, g_object_unref);
}

/* Reads the answer straight into the buffer of the piece it belongs to,
 * as much at a time as the connection has. */
static void
read_body (GTask *task)
{
  RangeRequest *request = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);

  if (!read_paced (task))
    {
      g_object_unref (task);
      return;
    }
  if (request->skip > 0)
    {
      g_input_stream_skip_async (request->body, (gsize) MIN (request->skip, G_MAXSSIZE),
                                 G_PRIORITY_DEFAULT, cancellable, on_body_skipped, task);
      return;
    }
  if (request->piece == request->n_pieces)
    {
      /* The body is read to its end, so its connection serves the next. */
      g_input_stream_close_async (request->body, G_PRIORITY_DEFAULT, NULL, on_body_closed, task);
      return;
    }
  if (G_IS_POLLABLE_INPUT_STREAM (request->body)
      && g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (request->body)))
    {
      read_available (task);
      return;
    }
  if (request->buffer == NULL)
    request->buffer = g_malloc (request->pieces[request->piece]);
  g_input_stream_read_async (request->body, request->buffer + request->got,
                             request->pieces[request->piece] - request->got,
                             G_PRIORITY_DEFAULT, cancellable, on_body_read, task);
}

/* The range it answered with, or where ours starts in a whole answer. */
static gboolean
check_range (RangeRequest *request, GError **error)
{
  goffset start = 0, end = 0, total = 0;

  if (soup_message_get_status (request->message) == SOUP_STATUS_OK)
    {
      /* A server that ignores ranges sends everything: take our part. */
      request->skip = request->offset;
      return TRUE;
    }
  if (!soup_message_headers_get_content_range (
        soup_message_get_response_headers (request->message), &start, &end, &total)
      || (guint64) start != request->offset)
    {
      g_set_error (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_HTTP,
                   _("The origin %s answered a range request with another range"),
                   request->origin->location);
      return FALSE;
    }
  return TRUE;
}

/* The socket of the plain HTTP/1 connection that answered @message, where
 * it is known (a connection made for one of this origin's requests). */
static GSocket *
plain_socket (CanopyOrigin *origin, SoupMessage *message)
{
  guint64 id = soup_message_get_connection_id (message);

  if (soup_message_get_tls_peer_certificate (message) != NULL
      || soup_message_get_http_version (message) == SOUP_HTTP_2_0)
    return NULL;
  for (guint i = 0; i < origin->sockets->len; i++)
    {
      GSocket *socket = g_ptr_array_index (origin->sockets, i);
      const guint64 *socket_id = g_object_get_data (G_OBJECT (socket), CONNECTION_ID);

      if (socket_id != NULL && *socket_id == id && !g_socket_is_closed (socket))
        return g_object_ref (socket);
    }
  return NULL;
}

static void
on_range_sent (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  RangeRequest *request = g_task_get_task_data (task);
  GError *error = NULL;
  SoupMessageMetrics *metrics = soup_message_get_metrics (request->message);

  request->body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  /* From the request on its connection, so neither a connection set up
   * nor a wait for a free one counts: what remains is the round trip,
   * the origin's own time and the queues on the way. */
  if (metrics != NULL && soup_message_metrics_get_request_start (metrics) > 0
      && soup_message_metrics_get_response_start (metrics)
           >= soup_message_metrics_get_request_start (metrics))
    request->wait_us = (gint64) (soup_message_metrics_get_response_start (metrics)
                                 - soup_message_metrics_get_request_start (metrics));
  if (request->wait_us >= 0)
    request->origin->wait_us = request->wait_us;
  if (request->body == NULL)
    {
      fail_body (task, error);
      return;
    }
  if (!check_status (request->origin, request->message, TRUE, &error)
      || !check_range (request, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  request->socket = plain_socket (request->origin, request->message);
  read_body (g_steal_pointer (&task));
}

static void
apply_window (GSocket *socket, guint window)
{
  g_autoptr (GError) error = NULL;

  if (!g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF,
                            (gint) (window > 0 ? window : UNLIMITED_WINDOW), &error))
    g_debug ("cannot set the receive window: %s", error->message);
}

/* Each new connection of the session, once connected (so its window
 * scale was chosen for a large window and can be narrowed and widened
 * again later). */
static void
on_network_event (SoupMessage *message, GSocketClientEvent event, GIOStream *connection,
                  gpointer user_data)
{
  CanopyOrigin *origin = user_data;
  GSocket *socket;

  if (event != G_SOCKET_CLIENT_CONNECTED || !G_IS_SOCKET_CONNECTION (connection))
    return;
  socket = g_socket_connection_get_socket (G_SOCKET_CONNECTION (connection));
  for (guint i = 0; i < origin->sockets->len;)
    if (g_socket_is_closed (g_ptr_array_index (origin->sockets, i)))
      g_ptr_array_remove_index_fast (origin->sockets, i);
    else
      i++;
  g_object_set_data_full (G_OBJECT (socket), CONNECTION_ID,
                           g_memdup2 (&(guint64){ soup_message_get_connection_id (message) },
                                      sizeof (guint64)),
                           g_free);
  g_ptr_array_add (origin->sockets, g_object_ref (socket));
  if (origin->receive_window > 0)
    apply_window (socket, origin->receive_window);
}

gint64
canopy_origin_get_wait (const CanopyOrigin *origin)
{
  return origin->wait_us;
}

gint64
canopy_origin_get_round_trip (const CanopyOrigin *origin)
{
  gint64 least = -1;

  for (guint i = 0; origin->sockets != NULL && i < origin->sockets->len; i++)
    {
      GSocket *socket = g_ptr_array_index (origin->sockets, i);
      struct tcp_info info = { 0 };
      socklen_t length = sizeof info;

      if (g_socket_is_closed (socket)
          || getsockopt (g_socket_get_fd (socket), IPPROTO_TCP, TCP_INFO, &info, &length) != 0
          || info.tcpi_min_rtt == 0)
        continue;
      if (least < 0 || info.tcpi_min_rtt < least)
        least = info.tcpi_min_rtt;
    }
  return least >= 0 ? least : origin->wait_us;
}

gboolean
canopy_origin_streams (const CanopyOrigin *origin)
{
  return origin->file == NULL;
}

void
canopy_origin_set_rate (CanopyOrigin *origin, double bytes_per_s)
{
  if (origin->rate == bytes_per_s)
    return;
  /* A second's worth to begin with, as the fetch's own bucket holds. */
  origin->rate = bytes_per_s;
  origin->tokens = bytes_per_s;
  origin->tokens_at = g_get_monotonic_time ();
}

void
canopy_origin_set_receive_window (CanopyOrigin *origin, guint bytes)
{
  if (origin->receive_window == bytes)
    return;
  origin->receive_window = bytes;
  for (guint i = 0; origin->sockets != NULL && i < origin->sockets->len; i++)
    {
      GSocket *socket = g_ptr_array_index (origin->sockets, i);
      if (!g_socket_is_closed (socket))
        apply_window (socket, bytes);
    }
}

void
canopy_origin_read_range_async (CanopyOrigin *origin, guint64 offset, const gsize *pieces,
                                guint n_pieces, CanopyOriginPieceFunc on_piece,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  RangeRequest *request = g_new0 (RangeRequest, 1);

  g_return_if_fail (n_pieces > 0);
  g_task_set_source_tag (task, canopy_origin_read_range_async);
  request->origin = origin;
  request->offset = offset;
  request->pieces = g_memdup2 (pieces, n_pieces * sizeof *pieces);
  request->n_pieces = n_pieces;
  for (guint i = 0; i < n_pieces; i++)
    request->length += pieces[i];
  request->on_piece = on_piece;
  request->user_data = user_data;
  request->wait_us = -1;
  g_task_set_task_data (task, request, (GDestroyNotify) range_request_free);

  if (origin->file != NULL)
    {
      GTask *read = g_task_new (NULL, cancellable, on_file_read, g_steal_pointer (&task));

      g_task_set_task_data (read, request, NULL);
      g_task_run_in_thread (read, file_range_read);
      g_object_unref (read);
      return;
    }
  /* As many connections as a fetch keeps requests outstanding at one
   * source, so no request waits behind another on a connection. */
  if (origin->session == NULL)
    {
      origin->session = soup_session_new_with_options ("max-conns-per-host",
                                                       CANOPY_ORIGIN_MAX_REQUESTS, NULL);
      origin->sockets = g_ptr_array_new_with_free_func (g_object_unref);
    }
  request->message = soup_message_new (SOUP_METHOD_GET, origin->location);
  soup_message_add_flags (request->message, SOUP_MESSAGE_COLLECT_METRICS);
  g_signal_connect (request->message, "network-event", G_CALLBACK (on_network_event), origin);
  soup_message_headers_set_range (soup_message_get_request_headers (request->message),
                                  (goffset) offset, (goffset) (offset + request->length - 1));
  soup_session_send_async (origin->session, request->message, G_PRIORITY_DEFAULT, cancellable,
                           on_range_sent, g_steal_pointer (&task));
}

gboolean
canopy_origin_read_range_finish (CanopyOrigin *origin, GAsyncResult *result, GError **error)
{
  (void) origin;
  return g_task_propagate_boolean (G_TASK (result), error);
}

gint64
canopy_origin_read_range_get_wait (GAsyncResult *result)
{
  RangeRequest *request = g_task_get_task_data (G_TASK (result));

  return request != NULL ? request->wait_us : -1;
}
