/* Atomic file writes: a temporary file in the same directory, fsync,
 * rename, fsync of the directory. After a crash the file is either the old
 * one or the new one, never half of each. */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

typedef struct _CanopyAtomicFile CanopyAtomicFile;

/**
 * canopy_atomic_file_begin:
 * @path: the file to create or replace when committed
 * @mode: permissions of the new file (0600 for secrets)
 * @error: a #G_FILE_ERROR naming @path and the system's reason
 */
CanopyAtomicFile *canopy_atomic_file_begin (const char *path, mode_t mode, GError **error);

/* Appends to the temporary file; a full disk is G_FILE_ERROR_NOSPC. */
gboolean canopy_atomic_file_append (CanopyAtomicFile *file, const guint8 *data, gsize length,
                                    GError **error);

/* Flushes to disk and puts the file in place; frees @file either way. */
gboolean canopy_atomic_file_commit (CanopyAtomicFile *file, GError **error);

/* Removes the temporary file and frees @file; @path is left as it was. */
void canopy_atomic_file_abort (CanopyAtomicFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyAtomicFile, canopy_atomic_file_abort)

/* Flushes the directory holding @path, so that a rename into it survives
 * a crash. */
void canopy_atomic_file_sync_parent (const char *path);

/* The whole sequence for contents already in memory. */
gboolean canopy_atomic_file_write (const char *path, const guint8 *data, gsize length,
                                   mode_t mode, GError **error);

G_END_DECLS
