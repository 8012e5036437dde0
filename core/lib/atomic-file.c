/* Atomic file writes, for keys, cached chunks and assembled packages. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-atomic-file"

#include "lib/atomic-file.h"
#include "lib/i18n.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

struct _CanopyAtomicFile {
  char *path;
  char *tmp;
  int fd;
};

static gboolean
set_errno_error (GError **error, const char *path, int saved_errno)
{
  g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
               _("Cannot write %s: %s"), path, g_strerror (saved_errno));
  return FALSE;
}

CanopyAtomicFile *
canopy_atomic_file_begin (const char *path, mode_t mode, GError **error)
{
  CanopyAtomicFile *file = g_new0 (CanopyAtomicFile, 1);

  file->path = g_strdup (path);
  file->tmp = g_strconcat (path, ".tmp-XXXXXX", NULL);
  file->fd = g_mkstemp_full (file->tmp, O_WRONLY | O_CLOEXEC, (int) mode);
  if (file->fd < 0)
    {
      set_errno_error (error, path, errno);
      g_free (file->tmp);
      g_free (file->path);
      g_free (file);
      return NULL;
    }
  return file;
}

gboolean
canopy_atomic_file_append (CanopyAtomicFile *file, const guint8 *data, gsize length,
                           GError **error)
{
  while (length > 0)
    {
      gssize n = write (file->fd, data, length);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return set_errno_error (error, file->path, n < 0 ? errno : ENOSPC);
      data += n;
      length -= (gsize) n;
    }
  return TRUE;
}

void
canopy_atomic_file_abort (CanopyAtomicFile *file)
{
  if (file == NULL)
    return;
  if (file->fd >= 0)
    close (file->fd);
  g_unlink (file->tmp);
  g_free (file->tmp);
  g_free (file->path);
  g_free (file);
}

void
canopy_atomic_file_sync_parent (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);
  int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd >= 0)
    {
      fsync (fd);
      close (fd);
    }
}

gboolean
canopy_atomic_file_commit (CanopyAtomicFile *file, GError **error)
{
  int fd = file->fd;
  gboolean ok = fsync (fd) == 0;
  int saved_errno = errno;

  file->fd = -1;
  if (close (fd) != 0 && ok)
    ok = FALSE, saved_errno = errno;
  if (ok && g_rename (file->tmp, file->path) != 0)
    ok = FALSE, saved_errno = errno;
  if (!ok)
    {
      set_errno_error (error, file->path, saved_errno);
      canopy_atomic_file_abort (file);
      return FALSE;
    }
  canopy_atomic_file_sync_parent (file->path);
  g_free (file->tmp);
  g_free (file->path);
  g_free (file);
  return TRUE;
}

gboolean
canopy_atomic_file_write (const char *path, const guint8 *data, gsize length, mode_t mode,
                          GError **error)
{
  CanopyAtomicFile *file = canopy_atomic_file_begin (path, mode, error);

  if (file == NULL)
    return FALSE;
  if (!canopy_atomic_file_append (file, data, length, error))
    {
      canopy_atomic_file_abort (file);
      return FALSE;
    }
  return canopy_atomic_file_commit (file, error);
}
