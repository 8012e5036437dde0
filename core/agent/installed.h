/* The packages this agent installed, kept in the state directory, so
 * that retiring a deployment removes only a file canopy put there and
 * that still has the package's hash: a file the user changed since, or
 * one canopy never wrote, is left alone and reported. */
#pragma once

#include <glib.h>
#include "lib/wire.h"

G_BEGIN_DECLS

#define CANOPY_INSTALLED_HASH_SIZE 32

typedef struct _CanopyInstalled CanopyInstalled;

/* Reads @path (missing: none installed yet; damaged: logged, and treated as none). */
CanopyInstalled *canopy_installed_load (const char *path);
void canopy_installed_free (CanopyInstalled *installed);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyInstalled, canopy_installed_free)

/* Records that deployment @deployment_id put a package of SHA-256 @sha256
 * at @destination, and saves the record atomically. */
gboolean canopy_installed_add (CanopyInstalled *installed, const char *deployment_id,
                               const char *destination, const guint8 *sha256, GError **error);

/* Forgets @deployment_id's record and saves. */
gboolean canopy_installed_forget (CanopyInstalled *installed, const char *deployment_id,
                                  GError **error);

/* Whether canopy recorded installing @deployment_id's package at
 * @destination with that hash. */
gboolean canopy_installed_has (CanopyInstalled *installed, const char *deployment_id,
                               const char *destination, const guint8 *sha256);

/**
 * canopy_installed_remove_file:
 * @directories: where this device allows packages (<destinations>)
 * @destination: the installed package's path
 * @sha256: the package's SHA-256
 * @message: (out) (transfer full): a sentence for the admin
 *
 * Opens @destination's parent without following symbolic links, hashes
 * the file and removes it only if it is a regular file with @sha256.
 * Blocks: call it from a worker thread.
 *
 * Returns: what was done (never NOT_INSTALLED).
 */
CanopyWireUninstalled canopy_installed_remove_file (const char *const *directories,
                                                   const char *destination,
                                                   const guint8 *sha256, char **message);

G_END_DECLS
