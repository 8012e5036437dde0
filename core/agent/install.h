/* A package written out chunk by chunk as the chunks are verified, and
 * hashed in order meanwhile, so that putting it in place after the last
 * chunk is a flush and a rename, not another pass over the whole package. */
#pragma once

#include <glib.h>
#include "agent/cache.h"
#include "lib/manifest.h"

G_BEGIN_DECLS

typedef struct _CanopyInstall CanopyInstall;

/**
 * canopy_install_new:
 * @manifest: the package's verified manifest; it must outlive the install
 * @partial: the file the package is written to until it is complete,
 *   created or emptied; best on the destination's file system, so that it
 *   can be renamed into place
 * @error: a #G_FILE_ERROR naming @partial
 */
CanopyInstall *canopy_install_new (const CanopyManifest *manifest, const char *partial,
                                   GError **error);

/**
 * canopy_install_begin:
 * @entry: the content's cache entry; it must outlive the install
 * @id: what the package is written for (a deployment ID), which names the
 *   partial file in the entry's directory
 * @destination: where the package is to go
 *
 * canopy_install_new() for a content being fetched, with the chunks
 * @entry already holds. Blocks: call it from a worker thread.
 *
 * Returns: (nullable): the install, or %NULL when the package is better
 *   assembled from the cache at the end: @id cannot name a file, a file
 *   in the cache could not be renamed to @destination (another file
 *   system), or the disk refused.
 */
CanopyInstall *canopy_install_begin (CanopyCacheEntry *entry, const char *id,
                                     const char *destination);

/**
 * canopy_install_add_chunk:
 * @data: chunk @index, already verified against the manifest
 *
 * Writes it at its place and starts flushing it. Thread-safe. After a
 * failure the install takes no more chunks and canopy_install_commit()
 * reports it.
 */
void canopy_install_add_chunk (CanopyInstall *install, guint index, GBytes *data);

/**
 * canopy_install_commit:
 * @destination: where the package goes; its directory is created if
 *   missing
 * @error: a #G_FILE_ERROR (G_FILE_ERROR_NOSPC for a full disk,
 *   G_FILE_ERROR_FAILED when the package is not complete or does not match
 *   its SHA-256)
 *
 * Checks the package's SHA-256, flushes it to disk and renames it to
 * @destination. On any failure @destination is left as it was, and the
 * package can still be assembled from the cache.
 */
gboolean canopy_install_commit (CanopyInstall *install, const char *destination, GError **error);

/* Removes the partial file unless it was committed. */
void canopy_install_free (CanopyInstall *install);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyInstall, canopy_install_free)

G_END_DECLS
