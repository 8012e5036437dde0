/* Origins: a real HTTP server on loopback (libsoup's), with range
 * requests, a redirect, a server that ignores ranges and error statuses;
 * and file storage. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/origin.h"

#include <libsoup/soup.h>
#include <string.h>

#define CONTENT_SIZE (3 * 1024 * 1024 + 17)

typedef struct {
  SoupServer *server;
  char *base;
  GBytes *content;
  guint range_requests;
} Origin;

static void
serve (SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
       gpointer user_data)
{
  Origin *o = user_data;
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response = soup_server_message_get_response_headers (msg);
  gsize size;
  const char *data = g_bytes_get_data (o->content, &size);
  SoupRange *ranges = NULL;
  int n_ranges = 0;

  if (g_str_equal (path, "/moved"))
    {
      soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, "/pkg");
      return;
    }
  if (!g_str_equal (path, "/pkg") && !g_str_equal (path, "/norange"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  if (g_str_equal (path, "/pkg")
      && soup_message_headers_get_ranges (request, (goffset) size, &ranges, &n_ranges))
    {
      o->range_requests++;
      ranges[0].end = MIN (ranges[0].end, (goffset) size - 1);
      soup_message_headers_set_content_range (response, ranges[0].start, ranges[0].end,
                                              (goffset) size);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
      soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                        data + ranges[0].start,
                                        (gsize) (ranges[0].end - ranges[0].start + 1));
      soup_message_headers_free_ranges (request, ranges);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY, data,
                                    size);
}

static void
origin_start (Origin *o)
{
  g_autoptr (GError) error = NULL;
  GSList *uris;
  guint8 *data = g_malloc (CONTENT_SIZE);

  for (gsize i = 0; i < CONTENT_SIZE; i++)
    data[i] = (guint8) (i * 7919 >> 5);
  o->content = g_bytes_new_take (data, CONTENT_SIZE);
  o->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (o->server, NULL, serve, o, NULL);
  g_assert (soup_server_listen_local (o->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  uris = soup_server_get_uris (o->server);
  o->base = g_uri_to_string (uris->data);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  if (g_str_has_suffix (o->base, "/"))
    o->base[strlen (o->base) - 1] = '\0';
}

static void
origin_stop (Origin *o)
{
  soup_server_disconnect (o->server);
  g_object_unref (o->server);
  g_bytes_unref (o->content);
  g_free (o->base);
}

/* Pieces of a range read: a chunk's size, so a range is made of several
 * and its last one is shorter. */
#define PIECE (256 * 1024 + 1)

typedef struct {
  GByteArray *bytes; /* the pieces, joined in the order they came */
  guint pieces;      /* delivered so far */
  GError *error;
  gboolean done;
  GCancellable *cancellable; /* (nullable) what a piece's callback may cancel */
} Result;

static void
on_piece (guint piece, GBytes *data, gpointer user_data)
{
  Result *r = user_data;

  /* In order, each once, and all of them before the read ends. */
  CU_ASSERT_EQUAL (piece, r->pieces);
  CU_ASSERT_FALSE (r->done);
  r->pieces++;
  g_byte_array_append (r->bytes, g_bytes_get_data (data, NULL), g_bytes_get_size (data));
}

static void
on_range (GObject *source, GAsyncResult *res, gpointer user_data)
{
  Result *r = user_data;

  if (!canopy_origin_read_range_finish (NULL, res, &r->error))
    g_clear_pointer (&r->bytes, g_byte_array_unref);
  r->done = TRUE;
}

static GBytes *
read_range (CanopyOrigin *origin, guint64 offset, gsize length, GError **error)
{
  Result r = { g_byte_array_new (), 0, NULL, FALSE, NULL };
  guint n = (guint) ((length + PIECE - 1) / PIECE);
  g_autofree gsize *pieces = g_new (gsize, n);

  for (guint i = 0; i < n; i++)
    pieces[i] = MIN (PIECE, length - (gsize) i * PIECE);
  canopy_origin_read_range_async (origin, offset, pieces, n, on_piece, NULL, on_range, &r);
  while (!r.done)
    g_main_context_iteration (NULL, TRUE);
  if (r.error != NULL)
    {
      g_propagate_error (error, r.error);
      return NULL;
    }
  CU_ASSERT_EQUAL (r.pieces, n);
  return g_byte_array_free_to_bytes (r.bytes);
}

static void
assert_range (CanopyOrigin *origin, Origin *o, guint64 offset, gsize length)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) got = read_range (origin, offset, length, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL_FATAL (g_bytes_get_size (got), length);
  CU_ASSERT (memcmp (g_bytes_get_data (got, NULL),
                     (const guint8 *) g_bytes_get_data (o->content, NULL) + offset, length) == 0);
}

static void
test_http_ranges (void)
{
  Origin o = { 0 };
  g_autofree char *url = NULL, *moved = NULL, *norange = NULL;
  g_autoptr (CanopyOrigin) origin = NULL;
  g_autoptr (CanopyOrigin) redirected = NULL;
  g_autoptr (CanopyOrigin) ignoring = NULL;

  origin_start (&o);
  url = g_strconcat (o.base, "/pkg", NULL);
  moved = g_strconcat (o.base, "/moved", NULL);
  norange = g_strconcat (o.base, "/norange", NULL);
  origin = canopy_origin_new (url, NULL);
  assert_range (origin, &o, 0, 1024 * 1024);
  assert_range (origin, &o, 3 * 1024 * 1024, 17);
  CU_ASSERT_EQUAL (o.range_requests, 2);
  redirected = canopy_origin_new (moved, NULL);
  assert_range (redirected, &o, 1024 * 1024, 1024 * 1024);
  ignoring = canopy_origin_new (norange, NULL);
  assert_range (ignoring, &o, 2 * 1024 * 1024, 4096);
  origin_stop (&o);
}

static void
test_http_errors (void)
{
  Origin o = { 0 };
  g_autofree char *url = NULL, *missing = NULL;
  g_autoptr (CanopyOrigin) origin = NULL;
  g_autoptr (CanopyOrigin) absent = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) nothing = NULL;
  g_autoptr (GBytes) past_end = NULL;

  origin_start (&o);
  url = g_strconcat (o.base, "/pkg", NULL);
  missing = g_strconcat (o.base, "/missing", NULL);
  absent = canopy_origin_new (missing, NULL);
  nothing = read_range (absent, 0, 10, &error);
  CU_ASSERT_PTR_NULL (nothing);
  CU_ASSERT (g_error_matches (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_HTTP));
  CANOPY_ASSERT_CONTAINS (error->message, "HTTP 404");
  g_clear_error (&error);

  /* Reading past the end is an error, not a short success. */
  origin = canopy_origin_new (url, NULL);
  past_end = read_range (origin, CONTENT_SIZE - 10, 100, &error);
  CU_ASSERT_PTR_NULL (past_end);
  CU_ASSERT (g_error_matches (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_SHORT));
  g_clear_error (&error);
  origin_stop (&o);
}

static void
test_unreachable_and_bad_locations (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyOrigin) refused = canopy_origin_new ("http://127.0.0.1:1/pkg", NULL);
  g_autoptr (GBytes) nothing = read_range (refused, 0, 10, &error);
  g_autoptr (CanopyOrigin) relative = NULL;

  CU_ASSERT_PTR_NULL (nothing);
  CU_ASSERT (g_error_matches (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_FAILED));
  CANOPY_ASSERT_CONTAINS (error->message, "http://127.0.0.1:1/pkg");
  g_clear_error (&error);
  relative = canopy_origin_new ("packages/app.msi", &error);
  CU_ASSERT_PTR_NULL (relative);
  CU_ASSERT (g_error_matches (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_LOCATION));
  g_clear_error (&error);
  CU_ASSERT_PTR_NULL (canopy_origin_new ("https:///nohost", &error));
}

static void
test_file_storage (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("origin");
  g_autofree char *path = g_build_filename (dir, "app.msi", NULL);
  g_autofree char *uri = g_strconcat ("file://", path, NULL);
  guint8 data[100000];
  g_autoptr (CanopyOrigin) origin = NULL;
  g_autoptr (CanopyOrigin) by_uri = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) got = NULL;
  g_autoptr (GBytes) past_end = NULL;
  g_autoptr (GInputStream) stream = NULL;

  for (gsize i = 0; i < sizeof data; i++)
    data[i] = (guint8) (i ^ (i >> 8));
  CU_ASSERT_FATAL (g_file_set_contents (path, (const char *) data, sizeof data, NULL));
  origin = canopy_origin_new (path, &error);
  CU_ASSERT_FALSE (canopy_origin_streams (origin));
  got = read_range (origin, 70000, 30000, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (memcmp (g_bytes_get_data (got, NULL), data + 70000, 30000) == 0);
  past_end = read_range (origin, 90000, 30000, &error);
  CU_ASSERT (g_error_matches (error, CANOPY_ORIGIN_ERROR, CANOPY_ORIGIN_ERROR_SHORT));
  CANOPY_ASSERT_CONTAINS (error->message, "publish it again");
  g_clear_error (&error);

  by_uri = canopy_origin_new (uri, &error);
  stream = canopy_origin_open (by_uri, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  {
    guint8 buffer[sizeof data];
    gsize n = 0;
    CU_ASSERT (g_input_stream_read_all (stream, buffer, sizeof buffer, &n, NULL, NULL));
    CU_ASSERT_EQUAL (n, sizeof data);
  }
}

static void
cancel_after_first (guint piece, GBytes *data, gpointer user_data)
{
  Result *r = user_data;

  on_piece (piece, data, user_data);
  g_cancellable_cancel (r->cancellable);
}

/* A fetch that no longer wants the rest of a range stops it from a piece's
 * callback: nothing more is delivered, the read ends as cancelled, and the
 * origin serves the next request. */
static void
test_cancel_from_piece (void)
{
  Origin o = { 0 };
  g_autofree char *url = NULL;
  g_autoptr (CanopyOrigin) origin = NULL;
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  Result r = { g_byte_array_new (), 0, NULL, FALSE, cancellable };
  gsize pieces[] = { PIECE, PIECE, PIECE };

  origin_start (&o);
  url = g_strconcat (o.base, "/pkg", NULL);
  origin = canopy_origin_new (url, NULL);
  canopy_origin_read_range_async (origin, 0, pieces, G_N_ELEMENTS (pieces), cancel_after_first,
                                  cancellable, on_range, &r);
  while (!r.done)
    g_main_context_iteration (NULL, TRUE);
  CU_ASSERT_EQUAL (r.pieces, 1);
  CU_ASSERT (g_error_matches (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED));
  g_clear_error (&r.error);
  assert_range (origin, &o, 17, PIECE * 2);
  origin_stop (&o);
}

/* Range reads keep to the rate set, through TCP's flow control: 3 MiB at
 * 1 MiB/s, after a second's worth at once, take two seconds at least. */
static void
test_rate (void)
{
  Origin o = { 0 };
  g_autofree char *url = NULL;
  g_autoptr (CanopyOrigin) origin = NULL;
  gint64 start;

  origin_start (&o);
  url = g_strconcat (o.base, "/pkg", NULL);
  origin = canopy_origin_new (url, NULL);
  CU_ASSERT (canopy_origin_streams (origin));
  canopy_origin_set_rate (origin, 1024.0 * 1024.0);
  start = g_get_monotonic_time ();
  assert_range (origin, &o, 0, 3 * 1024 * 1024);
  CU_ASSERT (g_get_monotonic_time () - start >= 19 * G_USEC_PER_SEC / 10);
  origin_stop (&o);
}

CANOPY_TEST_SUITE (origin, "origin", NULL, NULL,
                   { "range reads keep to the rate set", test_rate },
                   { "a piece's callback stops the rest of a range", test_cancel_from_piece },
                   { "HTTP ranges, redirect, no-range server", test_http_ranges },
                   { "HTTP errors", test_http_errors },
                   { "unreachable and bad locations", test_unreachable_and_bad_locations },
                   { "file storage", test_file_storage })
