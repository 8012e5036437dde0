/* A package put in place from the cache as soon as its last chunk is
 * verified: the chunks are hashed in order as they come, so that putting
 * it in place is a flush and a link, not another pass over the package. */
#pragma once

#include <glib.h>
#include "agent/cache.h"
#include "lib/manifest.h"

G_BEGIN_DECLS

typedef struct _CanopyInstall CanopyInstall;

/**
 * canopy_install_new:
 * @entry: the content's cache entry (a reference is kept)
 *
 * Starts with the chunks @entry already holds, read back to be hashed:
 * it blocks, so call it from a worker thread.
 */
CanopyInstall *canopy_install_new (CanopyCacheEntry *entry);

/**
 * canopy_install_add_chunk:
 * @data: chunk @index, verified and stored in the cache
 *
 * Hashes it when every chunk before it is in. Thread-safe. After a
 * failure to read the cache back, the install takes no more chunks and
 * canopy_install_commit() reports it.
 */
void canopy_install_add_chunk (CanopyInstall *install, guint index, GBytes *data);

/**
 * canopy_install_commit:
 * @destination: where the package goes; its directory is created if
 *   missing
 * @error: G_FILE_ERROR_FAILED when the package is not complete or does not
 *   match its SHA-256, else what canopy_cache_entry_link() reports
 *
 * Checks the package's SHA-256 and puts the cache's copy at @destination
 * (canopy_cache_entry_link()). On any failure @destination is left as it
 * was, and the package can still be copied from the cache.
 */
gboolean canopy_install_commit (CanopyInstall *install, const char *destination, GError **error);

void canopy_install_free (CanopyInstall *install);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyInstall, canopy_install_free)

G_END_DECLS
