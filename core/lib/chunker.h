/* Content-defined chunking: where a package is cut into chunks depends on
 * its bytes, not on their offsets, so an insertion moves only the cuts
 * around it and the other chunks keep their SHA-256 from version to version. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Chosen by measurement (docs/benchmarks.md#version-deltas): on a tar of
 * real files with 1 % to 20 % of them replaced, each halving of the
 * average cuts the bytes version 2 moves by a fifth to a third, while the
 * manifest (36 bytes a chunk) stays under 0.02 % of the package. 256 KiB is
 * the smallest average that keeps a have bitfield of a 64 GiB package
 * within one frame and per-chunk requests cheap; the maximum (1 MiB, the
 * former fixed size) bounds peers' buffers and the time of one request,
 * the minimum skips hashing where no cut may fall. */
#define CANOPY_CHUNKER_DEFAULT_MIN (64 * 1024)
#define CANOPY_CHUNKER_DEFAULT_AVG (256 * 1024)
#define CANOPY_CHUNKER_DEFAULT_MAX (1024 * 1024)

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
