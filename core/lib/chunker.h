/* Content-defined chunking: where a package is cut into chunks depends on
 * its bytes, not on their offsets, so an insertion moves only the cuts
 * around it and the other chunks keep their SHA-256 from version to version. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Chosen by measurement (docs/benchmarks.md): an average of 512 KiB keeps
 * a package's manifest small (36 bytes a chunk) and loses little reuse
 * against 256 KiB on real packages; the minimum skips hashing a quarter of
 * the bytes; the maximum bounds a peer's buffers and one request's size. */
#define CANOPY_CHUNKER_DEFAULT_MIN (128 * 1024)
#define CANOPY_CHUNKER_DEFAULT_AVG (512 * 1024)
#define CANOPY_CHUNKER_DEFAULT_MAX (2 * 1024 * 1024)

/* FastCDC with normalized chunking (level 2): a gear hash of the last 64
 * bytes, a harder cut condition before the average size and an easier one
 * after it, so chunk sizes cluster around the average. */
typedef struct {
  guint32 min_size;
  guint32 avg_size;
  guint32 max_size;
  guint64 mask_small; /* before avg_size: more bits must be zero */
  guint64 mask_large; /* after it: fewer */
} CanopyChunker;

/**
 * canopy_chunker_init:
 * @chunker: to fill
 * @min_size: no chunk but a package's last is shorter (> 0)
 * @avg_size: a power of two, between @min_size and @max_size
 * @max_size: no chunk is longer
 *
 * Returns: FALSE if the sizes are not so ordered or @avg_size is not a power
 *   of two (a programming error).
 */
gboolean canopy_chunker_init (CanopyChunker *chunker, guint32 min_size, guint32 avg_size,
                              guint32 max_size);

/* The chunker canopy's manifests use: CANOPY_CHUNKER_DEFAULT_*. */
void canopy_chunker_init_default (CanopyChunker *chunker);

/**
 * canopy_chunker_next:
 * @data: the bytes from the end of the previous chunk on
 * @length: how many; at least max_size unless @data reaches the package's end
 *
 * Returns: the length of the next chunk: the first cut point in @data, or
 *   MIN (@length, max_size) if there is none. The same bytes always give
 *   the same cut, whatever preceded them.
 */
gsize canopy_chunker_next (const CanopyChunker *chunker, const guint8 *data, gsize length);

G_END_DECLS
