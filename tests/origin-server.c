/* A small HTTP origin for the integration tests, the demo and the network
 * benchmark: it serves one file, with range requests, as a CDN would, and
 * counts the bytes that reached the client (whatever it asked for) so a
 * run can tell what crossed the WAN.
 *   usage: canopy-test-origin FILE ADDRESS PORT
 * Prints "origin http://ADDRESS:PORT/NAME" once listening; on SIGTERM it
 * prints "served BYTES" and exits. */
#include "build-config.h"

#include <glib-unix.h>
#include <libsoup/soup.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct {
  GMappedFile *file;
  char *path;
  guint64 served;
  guint64 requests; /* answered with data, ranges or whole */
} Origin;

/* One answer's body on its way. */
typedef struct {
  guint64 written;        /* handed to the kernel */
  guint64 acked_at_start; /* by the connection before it */
} Answer;

/* What the client of @msg's connection acknowledged so far. */
static guint64
bytes_acked (SoupServerMessage *msg)
{
  GSocket *socket = soup_server_message_get_socket (msg);
  struct tcp_info info = { 0 };
  socklen_t length = sizeof info;

  if (socket == NULL
      || getsockopt (g_socket_get_fd (socket), IPPROTO_TCP, TCP_INFO, &info, &length) != 0)
    return 0;
  return info.tcpi_bytes_acked;
}

static void
on_wrote_body_data (SoupServerMessage *msg, guint chunk_size, gpointer user_data)
{
  Answer *answer = user_data;

  (void) msg;
  answer->written += chunk_size;
}

/* A line per answer, for a test to show when the count is off. */
static void
log_answer (SoupServerMessage *msg, const char *how, guint64 reached)
{
  const char *range = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                    "Range");

  printf ("%.3f %s %s: %" G_GUINT64_FORMAT " bytes reached the client\n",
          (double) g_get_monotonic_time () / G_USEC_PER_SEC, range != NULL ? range : "whole",
          how, reached);
  fflush (stdout);
}

/* A whole answer reached its client. */
static void
on_request_finished (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  Origin *origin = user_data;
  Answer *answer = g_object_get_data (G_OBJECT (msg), "canopy-answer");

  (void) server;
  if (answer == NULL)
    return;
  origin->served += answer->written;
  log_answer (msg, "answered", answer->written);
}

/* A client that stopped reading a range half way, or died, was sent what
 * it acknowledged: what still sat in the send buffer never crossed the
 * network. */
static void
on_request_aborted (SoupServer *server, SoupServerMessage *msg, gpointer user_data)
{
  Origin *origin = user_data;
  Answer *answer = g_object_get_data (G_OBJECT (msg), "canopy-answer");

  guint64 reached;

  (void) server;
  if (answer == NULL)
    return;
  reached = MIN (answer->written, bytes_acked (msg) - answer->acked_at_start);
  origin->served += reached;
  log_answer (msg, "cut short", reached);
}

static void
serve (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
       gpointer user_data)
{
  Origin *origin = user_data;
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response = soup_server_message_get_response_headers (msg);
  gsize size = g_mapped_file_get_length (origin->file);
  const char *data = g_mapped_file_get_contents (origin->file);
  SoupRange *ranges = NULL;
  int n_ranges = 0;
  goffset start = 0, end = (goffset) size - 1;

  if (!g_str_equal (path, origin->path))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  if (soup_message_headers_get_ranges (request, (goffset) size, &ranges, &n_ranges))
    {
      start = ranges[0].start;
      end = MIN (ranges[0].end, (goffset) size - 1);
      soup_message_headers_free_ranges (request, ranges);
      soup_message_headers_set_content_range (response, start, end, (goffset) size);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
    }
  else
    soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  if (soup_server_message_get_method (msg) == SOUP_METHOD_HEAD)
    return;
  soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_STATIC,
                                    data + start, (gsize) (end - start + 1));
  {
    /* The client read every earlier answer on the connection before it
     * asked for this one. */
    Answer *answer = g_new0 (Answer, 1);

    answer->acked_at_start = bytes_acked (msg);
    g_object_set_data_full (G_OBJECT (msg), "canopy-answer", answer, g_free);
    g_signal_connect (msg, "wrote-body-data", G_CALLBACK (on_wrote_body_data), answer);
  }
  origin->requests++;
}

static gboolean
on_term (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SoupServer) server = NULL;
  g_autoptr (GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  g_autoptr (GSocketAddress) address = NULL;
  g_autofree char *name = NULL;
  Origin origin = { 0 };

  if (argc != 4)
    {
      fprintf (stderr, "usage: %s FILE ADDRESS PORT\n", argv[0]);
      return 2;
    }
  origin.file = g_mapped_file_new (argv[1], FALSE, &error);
  if (origin.file == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  name = g_path_get_basename (argv[1]);
  origin.path = g_strconcat ("/", name, NULL);
  server = soup_server_new (NULL, NULL);
  soup_server_add_handler (server, NULL, serve, &origin, NULL);
  g_signal_connect (server, "request-finished", G_CALLBACK (on_request_finished), &origin);
  g_signal_connect (server, "request-aborted", G_CALLBACK (on_request_aborted), &origin);
  address = g_inet_socket_address_new_from_string (argv[2], (guint) atoi (argv[3]));
  if (address == NULL || !soup_server_listen (server, address, 0, &error))
    {
      fprintf (stderr, "cannot listen on %s port %s: %s\n", argv[2], argv[3],
               error != NULL ? error->message : "not an address");
      return 1;
    }
  {
    GSList *uris = soup_server_get_uris (server);
    printf ("origin http://%s:%d%s\n", argv[2], g_uri_get_port (uris->data), origin.path);
    g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  }
  fflush (stdout);
  g_unix_signal_add (SIGTERM, on_term, loop);
  g_unix_signal_add (SIGINT, on_term, loop);
  g_main_loop_run (loop);
  printf ("served %" G_GUINT64_FORMAT " in %" G_GUINT64_FORMAT " requests\n", origin.served,
          origin.requests);
  g_mapped_file_unref (origin.file);
  g_free (origin.path);
  return 0;
}
