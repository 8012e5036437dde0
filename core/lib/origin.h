/* Content origins: the CDN (an HTTP or HTTPS URL) or file storage (a path).
 * The server reads an origin once to build a manifest; agents read ranges
 * of it when they are told to fetch from the origin. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define CANOPY_ORIGIN_ERROR (canopy_origin_error_quark ())
GQuark canopy_origin_error_quark (void);

typedef enum {
  CANOPY_ORIGIN_ERROR_LOCATION, /* neither an http(s) URL nor an absolute path */
  CANOPY_ORIGIN_ERROR_HTTP,     /* the server answered with an error status */
  CANOPY_ORIGIN_ERROR_SHORT,    /* fewer bytes than asked for */
  CANOPY_ORIGIN_ERROR_FAILED,   /* network, TLS or file error */
} CanopyOriginError;

typedef struct _CanopyOrigin CanopyOrigin;

/**
 * canopy_origin_new:
 * @location: "https://cdn.example.com/app.msi", "http://...", "/srv/pkg/app.msi"
 *   or "file:///srv/pkg/app.msi"
 *
 * HTTPS certificates are checked against the system's trust store;
 * redirects are followed.
 */
CanopyOrigin *canopy_origin_new (const char *location, GError **error);
void canopy_origin_free (CanopyOrigin *origin);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyOrigin, canopy_origin_free)

const char *canopy_origin_get_location (const CanopyOrigin *origin);

/**
 * canopy_origin_open:
 *
 * Opens the whole content for reading, blocking: for worker threads (the
 * server building a manifest). Each call uses its own HTTP session.
 */
GInputStream *canopy_origin_open (CanopyOrigin *origin, GCancellable *cancellable,
                                  GError **error);

/* Range requests a fetch keeps outstanding at one origin at most, each
 * on its own connection. */
#define CANOPY_ORIGIN_MAX_REQUESTS 4

/**
 * CanopyOriginPieceFunc:
 * @piece: its position among the pieces asked for
 * @data: its bytes, as soon as the last of them arrived
 */
typedef void (*CanopyOriginPieceFunc) (guint piece, GBytes *data, gpointer user_data);

/**
 * canopy_origin_read_range_async:
 * @offset: first byte
 * @pieces: (array length=n_pieces): the lengths of the adjacent pieces
 *   (chunks) the range is made of, from @offset on
 * @on_piece: called with @user_data for each piece, in order, as soon as
 *   it is in: the range streams, it is not held back until its end
 *
 * Reads a range without blocking, on the thread-default main context: one
 * HTTP range request, or a seek and read on a file. @callback follows the
 * last piece, or an error; cancelling @cancellable (from @on_piece too)
 * ends the request with G_IO_ERROR_CANCELLED.
 */
void canopy_origin_read_range_async (CanopyOrigin *origin, guint64 offset, const gsize *pieces,
                                     guint n_pieces, CanopyOriginPieceFunc on_piece,
                                     GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data);
/**
 * canopy_origin_read_range_finish:
 *
 * Returns: TRUE when every piece was delivered
 */
gboolean canopy_origin_read_range_finish (CanopyOrigin *origin, GAsyncResult *result,
                                          GError **error);
/**
 * canopy_origin_read_range_get_wait:
 * @result: as passed to the read's callback
 *
 * Returns: µs from the HTTP request, once on its connection, to the first
 *   byte of the answer: the round trip with the queues on the way, for the
 *   background WAN class; -1 for file storage or when unknown.
 */
gint64 canopy_origin_read_range_get_wait (GAsyncResult *result);

/**
 * canopy_origin_get_wait:
 *
 * Returns: canopy_origin_read_range_get_wait() of the latest answer to
 *   start, as soon as it starts; -1 before the first
 */
gint64 canopy_origin_get_wait (const CanopyOrigin *origin);

/**
 * canopy_origin_get_round_trip:
 *
 * Returns: the network's round trip to an HTTP origin in µs, without the
 *   origin's own time or the queues on the way: the least any of its
 *   connections measured (Linux TCP_INFO); canopy_origin_get_wait() while
 *   none has
 */
gint64 canopy_origin_get_round_trip (const CanopyOrigin *origin);
/**
 * canopy_origin_streams:
 *
 * Returns: TRUE for HTTP, whose range reads stream over a connection and
 *   keep to canopy_origin_set_rate(); FALSE for file storage, whose ranges
 *   are read whole by a worker, at the disk's speed
 */
gboolean canopy_origin_streams (const CanopyOrigin *origin);
/**
 * canopy_origin_set_rate:
 * @bytes_per_s: the rate HTTP range reads keep to, together; 0 for none
 *
 * Limits how fast the answers are read, with a burst of one second's
 * worth: what is not read yet stays in the connection's receive buffer,
 * so TCP slows the origin down to the rate.
 */
void canopy_origin_set_rate (CanopyOrigin *origin, double bytes_per_s);
/**
 * canopy_origin_set_receive_window:
 * @bytes: the TCP receive buffer of each HTTP connection; 0 for the
 *   system's own (autotuned up to its maximum)
 *
 * Bounds what each connection has in flight, so a background lead adds
 * no more than its target to the link's queue even when it has the link
 * alone: applied to the connections open now and to those opened later.
 */
void canopy_origin_set_receive_window (CanopyOrigin *origin, guint bytes);

G_END_DECLS
