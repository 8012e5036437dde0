/* A package put in place from the cache as soon as its last chunk is
 * verified: the chunks are hashed in order as they come, so that putting
 * it in place is a copy (a reflink where it can), not another pass over
 * the package to check it. */
#pragma once

#include <glib.h>
#include "agent/cache.h"
#include "lib/manifest.h"

G_BEGIN_DECLS

#define CANOPY_INSTALL_ERROR (canopy_install_error_quark ())
GQuark canopy_install_error_quark (void);

typedef enum {
  CANOPY_INSTALL_ERROR_INCOMPLETE, /* chunks are missing from the cache */
  CANOPY_INSTALL_ERROR_MISMATCH,   /* the whole package does not match its SHA-256 */
} CanopyInstallError;

typedef struct _CanopyInstall CanopyInstall;

/**
 * canopy_install_new:
 * @entry: the content's cache entry (a reference is kept)
 * @directories: where this device allows packages (<destinations>)
 * @destination: (nullable): where the package is to go
 *
 * Starts with the chunks @entry already holds, read back to be hashed:
 * it blocks, so call it from a worker thread. Where the policy allows
 * @destination, each chunk hashed is also written, in order, to a file
 * beside it (canopy_cache_entry_open_copy_at()), so that the commit has
 * only to flush and rename it.
 */
CanopyInstall *canopy_install_new (CanopyCacheEntry *entry, const char *const *directories,
                                   const char *destination);

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
 * @directories: where this device allows packages (<destinations>)
 * @destination: where the package goes; missing directories below the
 *   allowed one are created
 * @error: %CANOPY_INSTALL_ERROR when the package is not complete or does not
 *   match its SHA-256, CANOPY_DESTINATION_ERROR when the policy refuses
 *   @destination, else what canopy_cache_entry_copy_at() reports
 *
 * Checks the package's SHA-256 and the destination against the device's
 * policy (canopy_install_policy_open_parent()), then puts at @destination
 * the copy made as the chunks came, or else a copy of the cache's file. On any failure @destination is left as it
 * was, and the package can still be assembled from the cache.
 */
gboolean canopy_install_commit (CanopyInstall *install, const char *const *directories,
                                const char *destination, GError **error);

/**
 * canopy_install_assemble:
 *
 * The slow way, when canopy_install_commit() could not: checks
 * @destination against the policy as it does, then copies the package
 * from the cache chunk by chunk, checking its SHA-256
 * (canopy_cache_entry_assemble_at()). Blocks.
 */
gboolean canopy_install_assemble (CanopyCacheEntry *entry, const char *const *directories,
                                  const char *destination, GError **error);

void canopy_install_free (CanopyInstall *install);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyInstall, canopy_install_free)

G_END_DECLS
