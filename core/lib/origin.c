/* Content origins through libsoup (HTTP, HTTPS) and GIO (files). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-origin"

#include "lib/origin.h"
#include "lib/i18n.h"

#include <libsoup/soup.h>
#include <string.h>
#include <sys/socket.h>

/* What the system's autotuning would reach anyway: asking for no limit. */
#define UNLIMITED_WINDOW (8 * 1024 * 1024)

struct _CanopyOrigin {
  char *location;
  GFile *file;          /* for file storage */
  SoupSession *session; /* for HTTP; created on first async use */
  GPtrArray *sockets;   /* GSocket of the session's connections, for the window */
  guint receive_window; /* bytes per connection; 0: the system's */
};

typedef struct {
  CanopyOrigin *origin;
  guint64 offset;
  gsize length;
  SoupMessage *message;
  gint64 wait_us; /* request sent to first byte of the answer; -1: unknown */
} RangeRequest;

G_DEFINE_QUARK (canopy-origin-error-quark, canopy_origin_error)

static void
range_request_free (RangeRequest *request)
{
  g_clear_object (&request->message);
  g_free (request);
}

CanopyOrigin *
canopy_origin_new (const char *location, GError **error)
{
  g_autoptr (CanopyOrigin) origin = g_new0 (CanopyOrigin, 1);

  origin->location = g_strdup (location);
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
  g_task_return_pointer (task, g_bytes_new_take (g_steal_pointer (&buffer), got),
                         (GDestroyNotify) g_bytes_unref);
}

static void
on_range_read (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  RangeRequest *request = g_task_get_task_data (task);
  CanopyOrigin *origin = request->origin;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) body = soup_session_send_and_read_finish (SOUP_SESSION (source), result,
                                                               &error);
  goffset start = 0, end = 0, total = 0;
  SoupMessageMetrics *metrics = soup_message_get_metrics (request->message);

  /* From the request on its connection, so neither a connection set up
   * nor a wait for a free one counts: what remains is the round trip,
   * the origin's own time and the queues on the way. */
  if (metrics != NULL && soup_message_metrics_get_request_start (metrics) > 0
      && soup_message_metrics_get_response_start (metrics)
           >= soup_message_metrics_get_request_start (metrics))
    request->wait_us = (gint64) (soup_message_metrics_get_response_start (metrics)
                                 - soup_message_metrics_get_request_start (metrics));
  if (body == NULL)
    {
      GError *wrapped = NULL;
      set_failed (&wrapped, origin, error);
      g_task_return_error (task, wrapped);
      return;
    }
  if (!check_status (origin, request->message, TRUE, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  /* A server that ignores ranges sends everything: take our part of it. */
  if (soup_message_get_status (request->message) == SOUP_STATUS_OK)
    start = 0;
  else if (!soup_message_headers_get_content_range (
             soup_message_get_response_headers (request->message), &start, &end, &total)
           || (guint64) start != request->offset)
    {
      g_task_return_new_error (task, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_HTTP,
                               _("The origin %s answered a range request with another range"),
                               origin->location);
      return;
    }
  if (soup_message_get_status (request->message) == SOUP_STATUS_OK)
    {
      if (g_bytes_get_size (body) < request->offset + request->length)
        {
          g_task_return_new_error (task, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_SHORT,
                                   _("The origin %s is shorter than its manifest says: it was "
                                     "changed after it was published; publish it again"),
                                   origin->location);
          return;
        }
      g_task_return_pointer (task, g_bytes_new_from_bytes (body, request->offset,
                                                           request->length),
                             (GDestroyNotify) g_bytes_unref);
      return;
    }
  if (g_bytes_get_size (body) != request->length)
    {
      g_task_return_new_error (task, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_SHORT,
                               _("The origin %s sent %zu bytes of a %zu-byte range"),
                               origin->location, g_bytes_get_size (body), request->length);
      return;
    }
  g_task_return_pointer (task, g_steal_pointer (&body), (GDestroyNotify) g_bytes_unref);
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
  g_ptr_array_add (origin->sockets, g_object_ref (socket));
  if (origin->receive_window > 0)
    apply_window (socket, origin->receive_window);
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
canopy_origin_read_range_async (CanopyOrigin *origin, guint64 offset, gsize length,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  RangeRequest *request = g_new0 (RangeRequest, 1);

  g_task_set_source_tag (task, canopy_origin_read_range_async);
  request->origin = origin;
  request->offset = offset;
  request->length = length;
  request->wait_us = -1;
  g_task_set_task_data (task, request, (GDestroyNotify) range_request_free);

  if (origin->file != NULL)
    {
      g_task_run_in_thread (task, file_range_read);
      return;
    }
  /* As many connections as a fetch keeps requests outstanding at one
   * source, so no request waits behind another on a connection. */
  if (origin->session == NULL)
    {
      origin->session = soup_session_new_with_options ("max-conns-per-host", 4, NULL);
      origin->sockets = g_ptr_array_new_with_free_func (g_object_unref);
    }
  request->message = soup_message_new (SOUP_METHOD_GET, origin->location);
  soup_message_add_flags (request->message, SOUP_MESSAGE_COLLECT_METRICS);
  g_signal_connect (request->message, "network-event", G_CALLBACK (on_network_event), origin);
  soup_message_headers_set_range (soup_message_get_request_headers (request->message),
                                  (goffset) offset, (goffset) (offset + length - 1));
  soup_session_send_and_read_async (origin->session, request->message, G_PRIORITY_DEFAULT,
                                    cancellable, on_range_read, g_steal_pointer (&task));
}

GBytes *
canopy_origin_read_range_finish (CanopyOrigin *origin, GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

gint64
canopy_origin_read_range_get_wait (GAsyncResult *result)
{
  RangeRequest *request = g_task_get_task_data (G_TASK (result));

  return request != NULL ? request->wait_us : -1;
}
