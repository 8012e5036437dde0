/* A package written out as its chunks are verified. Chunks arrive in
 * almost any order; the package's SHA-256 needs them in order, so each is
 * hashed as soon as every chunk before it is in, from memory when it was
 * kept, else read back from the partial file. */
#include "build-config.h"

#include "agent/install.h"
#include "lib/atomic-file.h"
#include "lib/i18n.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Chunks kept in memory while they wait for earlier ones to be hashed: a
 * few requests' worth, since chunks are asked for in order; beyond it they
 * are read back, which costs a copy but no memory. */
#define MAX_WAITING 16

struct _CanopyInstall {
  GMutex lock; /* guards everything below but fd, which pwrite() shares */
  const CanopyManifest *manifest;
  char *partial;
  int fd;
  guint n;
  gboolean *added;
  guint n_added;
  guint hashed; /* chunks [0, hashed) are in the hash */
  gboolean hashing; /* a thread is hashing: it alone touches the hash */
  CanopyManifestHash *hash;
  GHashTable *waiting; /* index → GBytes */
  GError *failure;
  gboolean committed;
};

/* A macro so that each message is one whole sentence, checked as a format. */
#define SET_ERRNO_ERROR(error, saved_errno, format, path)                                       \
  do                                                                                            \
    {                                                                                           \
      int errno_ = (saved_errno);                                                               \
      g_set_error ((error), G_FILE_ERROR, g_file_error_from_errno (errno_), (format), (path),   \
                   g_strerror (errno_));                                                        \
    }                                                                                           \
  while (0)

CanopyInstall *
canopy_install_new (const CanopyManifest *manifest, const char *partial, GError **error)
{
  g_autoptr (CanopyInstall) install = g_new0 (CanopyInstall, 1);

  g_mutex_init (&install->lock);
  install->fd = open (partial, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (install->fd < 0)
    {
      SET_ERRNO_ERROR (error, errno, _("Cannot create %s: %s"), partial);
      return NULL;
    }
  install->manifest = manifest;
  install->partial = g_strdup (partial);
  install->n = canopy_manifest_get_n_chunks (manifest);
  install->added = g_new0 (gboolean, install->n);
  install->hash = canopy_manifest_hash_new ();
  install->waiting = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_bytes_unref);
  return g_steal_pointer (&install);
}

/* Whether a file in the cache can be renamed to @destination: a package
 * written elsewhere would have to be copied again at the end. */
static gboolean
can_rename_to (CanopyCacheEntry *entry, const char *destination)
{
  g_autofree char *dir = g_path_get_dirname (destination);
  g_autofree char *here = canopy_cache_entry_build_path (entry, ".");
  GStatBuf there_st, here_st;

  /* A directory that does not exist yet is created beside its parent. */
  while (g_stat (dir, &there_st) != 0)
    {
      char *parent = g_path_get_dirname (dir);

      if (g_str_equal (parent, dir))
        {
          g_free (parent);
          return FALSE;
        }
      g_free (dir);
      dir = parent;
    }
  return g_stat (here, &here_st) == 0 && here_st.st_dev == there_st.st_dev;
}

/* IDs come from the server; only a tame one names a file. */
static gboolean
is_file_name_safe (const char *id)
{
  gsize len = strlen (id);

  return len > 0 && len <= 64
         && strspn (id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_") == len;
}

CanopyInstall *
canopy_install_begin (CanopyCacheEntry *entry, const char *id, const char *destination)
{
  const CanopyManifest *manifest = canopy_cache_entry_get_manifest (entry);
  guint n = canopy_manifest_get_n_chunks (manifest);
  g_autofree char *name = NULL;
  g_autofree char *partial = NULL;
  g_autoptr (CanopyInstall) install = NULL;
  g_autoptr (GError) error = NULL;

  if (!is_file_name_safe (id) || !can_rename_to (entry, destination))
    return NULL;
  name = g_strconcat ("install-", id, NULL);
  partial = canopy_cache_entry_build_path (entry, name);
  install = canopy_install_new (manifest, partial, &error);
  if (install == NULL)
    {
      g_debug ("not writing %s as its chunks come: %s", destination, error->message);
      return NULL;
    }
  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GMappedFile) chunk = NULL;
      g_autoptr (GBytes) data = NULL;

      if (!canopy_cache_entry_has_chunk (entry, i))
        continue;
      chunk = canopy_cache_entry_map_chunk (entry, i, NULL);
      if (chunk == NULL)
        return NULL;
      data = g_mapped_file_get_bytes (chunk);
      canopy_install_add_chunk (install, i, data);
    }
  return g_steal_pointer (&install);
}

static gboolean
write_at (CanopyInstall *install, const guint8 *data, gsize length, off_t offset, GError **error)
{
  while (length > 0)
    {
      ssize_t n = pwrite (install->fd, data, length, offset);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          SET_ERRNO_ERROR (error, n < 0 ? errno : ENOSPC, _("Cannot write %s: %s"),
                           install->partial);
          return FALSE;
        }
      data += n;
      length -= (gsize) n;
      offset += n;
    }
  return TRUE;
}

static GBytes *
read_at (CanopyInstall *install, gsize length, off_t offset, GError **error)
{
  g_autofree guint8 *data = g_malloc (length);
  gsize got = 0;

  while (got < length)
    {
      ssize_t n = pread (install->fd, data + got, length - got, offset + (off_t) got);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          SET_ERRNO_ERROR (error, n < 0 ? errno : EIO, _("Cannot read %s: %s"),
                           install->partial);
          return NULL;
        }
      got += (gsize) n;
    }
  return g_bytes_new_take (g_steal_pointer (&data), length);
}

static off_t
chunk_offset (const CanopyInstall *install, guint index)
{
  return (off_t) index * install->manifest->chunk_size;
}

/* Call locked: hashes every chunk that no longer waits for an earlier one.
 * The lock is let go while hashing, so that other chunks are stored
 * meanwhile (their progress is what the server watches for a stalled
 * lead): a thread that finds another hashing leaves its chunk to it. */
static gboolean
hash_ready (CanopyInstall *install, GError **error)
{
  gboolean ok = TRUE;

  if (install->hashing)
    return TRUE;
  install->hashing = TRUE;
  while (ok && install->hashed < install->n && install->added[install->hashed])
    {
      guint index = install->hashed;
      g_autoptr (GBytes) data = NULL;
      gboolean kept = g_hash_table_steal_extended (install->waiting, GUINT_TO_POINTER (index),
                                                   NULL, (gpointer *) &data);

      g_mutex_unlock (&install->lock);
      if (!kept)
        data = read_at (install, canopy_manifest_get_chunk_length (install->manifest, index),
                        chunk_offset (install, index), error);
      if (data != NULL)
        canopy_manifest_hash_update (install->hash, g_bytes_get_data (data, NULL),
                                     g_bytes_get_size (data));
      g_mutex_lock (&install->lock);
      ok = data != NULL;
      install->hashed += ok;
    }
  install->hashing = FALSE;
  return ok;
}

void
canopy_install_add_chunk (CanopyInstall *install, guint index, GBytes *data)
{
  g_autoptr (GError) error = NULL;
  gsize length;
  const guint8 *bytes = g_bytes_get_data (data, &length);
  off_t offset = chunk_offset (install, index);
  g_autoptr (GMutexLocker) locker = NULL;

  g_return_if_fail (index < install->n);
  /* Written unlocked: chunks go to distinct places. */
  if (!write_at (install, bytes, length, offset, &error))
    {
      locker = g_mutex_locker_new (&install->lock);
      if (install->failure == NULL)
        install->failure = g_steal_pointer (&error);
      return;
    }
#ifdef SYNC_FILE_RANGE_WRITE
  /* Flushing now, while the network is the bottleneck, leaves little for
   * the flush before the rename, when the disk would be. */
  sync_file_range (install->fd, offset, (off_t) length, SYNC_FILE_RANGE_WRITE);
#endif
  locker = g_mutex_locker_new (&install->lock);
  if (install->failure != NULL || install->added[index])
    return;
  install->added[index] = TRUE;
  install->n_added++;
  if (index == install->hashed
      || (index > install->hashed && g_hash_table_size (install->waiting) < MAX_WAITING))
    g_hash_table_insert (install->waiting, GUINT_TO_POINTER (index), g_bytes_ref (data));
  if (!hash_ready (install, &error))
    install->failure = g_steal_pointer (&error);
}

/* Call locked: whether every chunk is in, hashed, and the package matches. */
static gboolean
check_complete (CanopyInstall *install, GError **error)
{
  if (install->failure != NULL)
    {
      g_propagate_error (error, g_error_copy (install->failure));
      return FALSE;
    }
  if (install->n_added < install->n)
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, _("%s holds %u of %u chunks"),
                   install->partial, install->n_added, install->n);
      return FALSE;
    }
  if (!hash_ready (install, error))
    return FALSE;
  if (!canopy_manifest_hash_matches (install->hash, install->manifest))
    {
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                   _("%s does not match the package's SHA-256"), install->partial);
      return FALSE;
    }
  return TRUE;
}

gboolean
canopy_install_commit (CanopyInstall *install, const char *destination, GError **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&install->lock);
  g_autofree char *dir = g_path_get_dirname (destination);
  int fd = install->fd;

  if (!check_complete (install, error))
    return FALSE;
  install->fd = -1;
  if (fsync (fd) != 0)
    {
      SET_ERRNO_ERROR (error, errno, _("Cannot write %s: %s"), install->partial);
      close (fd);
      return FALSE;
    }
  if (close (fd) != 0)
    {
      SET_ERRNO_ERROR (error, errno, _("Cannot write %s: %s"), install->partial);
      return FALSE;
    }
  if (g_mkdir_with_parents (dir, 0755) != 0)
    {
      SET_ERRNO_ERROR (error, errno, _("Cannot create the directory %s: %s"), dir);
      return FALSE;
    }
  if (g_rename (install->partial, destination) != 0)
    {
      SET_ERRNO_ERROR (error, errno, _("Cannot write %s: %s"), destination);
      return FALSE;
    }
  install->committed = TRUE;
  canopy_atomic_file_sync_parent (destination);
  return TRUE;
}

void
canopy_install_free (CanopyInstall *install)
{
  if (install == NULL)
    return;
  if (install->fd >= 0)
    close (install->fd);
  if (!install->committed && install->partial != NULL)
    g_unlink (install->partial);
  g_free (install->partial);
  g_free (install->added);
  canopy_manifest_hash_free (install->hash);
  g_clear_pointer (&install->waiting, g_hash_table_unref);
  g_clear_error (&install->failure);
  g_mutex_clear (&install->lock);
  g_free (install);
}
