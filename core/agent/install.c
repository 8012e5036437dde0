/* A package put in place from the cache, where the device's policy
 * allows (install-policy.h). Chunks arrive in almost any
 * order; the package's SHA-256 needs them in order, so each is hashed as
 * soon as every chunk before it is in, from memory when it was kept, else
 * read back from the cache. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-install"

#include "agent/install.h"
#include "agent/install-policy.h"
#include "lib/i18n.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (canopy-install-error-quark, canopy_install_error)

/* Chunks kept in memory while they wait for earlier ones to be hashed: a
 * few requests' worth, since chunks are asked for in order; beyond it they
 * are read back, which costs a copy but no memory. */
#define MAX_WAITING 16

/* The copy's pages are handed to the disk every so many bytes, so that
 * the flush before the rename has little left to write. */
#define COPY_FLUSH_BYTES ((off_t) 8 * 1024 * 1024)

struct _CanopyInstall {
  GMutex lock; /* guards everything below */
  CanopyCacheEntry *entry;
  const CanopyManifest *manifest;
  guint n;
  gboolean *added;
  guint n_added;
  guint hashed; /* chunks [0, hashed) are in the hash */
  gboolean hashing; /* a thread is hashing: it alone touches the hash */
  CanopyManifestHash *hash;
  GHashTable *waiting; /* index → GBytes */
  GError *failure;
  /* The copy at the destination, written by the hashing thread as the
   * hash takes each chunk; -1 when there is none (see start_copy()). */
  int copy;
  int copy_dirfd;
  char *copy_tmp;
  char *copy_name;
  off_t copied;
  off_t flushed;
};

/* Takes the copy back out of the destination's directory. */
static void
drop_copy (CanopyInstall *install)
{
  if (install->copy >= 0)
    {
      close (install->copy);
      unlinkat (install->copy_dirfd, install->copy_tmp, 0);
      install->copy = -1;
    }
  if (install->copy_dirfd >= 0)
    close (install->copy_dirfd);
  install->copy_dirfd = -1;
  g_clear_pointer (&install->copy_tmp, g_free);
  g_clear_pointer (&install->copy_name, g_free);
}

/* Appends @data to the copy. Its space was reserved when it was opened,
 * so a write fails only on an error of the disk: the copy is then
 * dropped, and the package is copied from the cache at the end, which
 * reports the cause. */
static void
copy_chunk (CanopyInstall *install, GBytes *data)
{
  gsize length;
  const guint8 *bytes = g_bytes_get_data (data, &length);

  while (install->copy >= 0 && length > 0)
    {
      ssize_t n = write (install->copy, bytes, length);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          g_debug ("the copy beside %s stops, copied at the end instead: %s",
                   install->copy_name, g_strerror (n < 0 ? errno : ENOSPC));
          drop_copy (install);
          return;
        }
      bytes += n;
      length -= (gsize) n;
      install->copied += n;
    }
  if (install->copy >= 0 && install->copied - install->flushed >= COPY_FLUSH_BYTES)
    {
      sync_file_range (install->copy, install->flushed, install->copied - install->flushed,
                       SYNC_FILE_RANGE_WRITE);
      install->flushed = install->copied;
    }
}

/* Opens the copy beside @destination where the device's policy allows it
 * now; where it does not, or the file system clones the cache's file,
 * there is none and the commit copies or refuses as before. */
static void
start_copy (CanopyInstall *install, const char *const *directories, const char *destination)
{
  g_autoptr (GError) error = NULL;

  if (destination == NULL)
    return;
  install->copy_dirfd = canopy_install_policy_open_parent (directories, destination,
                                                           &install->copy_name, &error);
  if (install->copy_dirfd >= 0)
    install->copy = canopy_cache_entry_open_copy_at (install->entry, install->copy_dirfd,
                                                     install->copy_name, &install->copy_tmp,
                                                     &error);
  if (install->copy < 0)
    drop_copy (install);
  if (error != NULL)
    g_debug ("no copy beside %s as the chunks come: %s", destination, error->message);
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
        data = canopy_cache_entry_read_chunk (install->entry, index, error);
      if (data != NULL)
        {
          canopy_manifest_hash_update (install->hash, g_bytes_get_data (data, NULL),
                                       g_bytes_get_size (data));
          copy_chunk (install, data);
        }
      g_mutex_lock (&install->lock);
      ok = data != NULL;
      install->hashed += ok;
    }
  install->hashing = FALSE;
  return ok;
}

/* Call locked. */
static void
add_locked (CanopyInstall *install, guint index, GBytes *data)
{
  g_autoptr (GError) error = NULL;

  if (install->failure != NULL || install->added[index])
    return;
  install->added[index] = TRUE;
  install->n_added++;
  if (data != NULL
      && (index == install->hashed
          || (index > install->hashed && g_hash_table_size (install->waiting) < MAX_WAITING)))
    g_hash_table_insert (install->waiting, GUINT_TO_POINTER (index), g_bytes_ref (data));
  if (!hash_ready (install, &error))
    install->failure = g_steal_pointer (&error);
}

CanopyInstall *
canopy_install_new (CanopyCacheEntry *entry, const char *const *directories,
                    const char *destination)
{
  CanopyInstall *install = g_new0 (CanopyInstall, 1);
  g_autoptr (GMutexLocker) locker = NULL;

  g_mutex_init (&install->lock);
  install->entry = canopy_cache_entry_ref (entry);
  install->manifest = canopy_cache_entry_get_manifest (entry);
  install->n = canopy_manifest_get_n_chunks (install->manifest);
  install->added = g_new0 (gboolean, install->n);
  install->hash = canopy_manifest_hash_new ();
  install->waiting = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) g_bytes_unref);
  install->copy = install->copy_dirfd = -1;
  start_copy (install, directories, destination);
  locker = g_mutex_locker_new (&install->lock);
  for (guint i = 0; i < install->n; i++)
    if (canopy_cache_entry_has_chunk (entry, i))
      add_locked (install, i, NULL);
  return install;
}

void
canopy_install_add_chunk (CanopyInstall *install, guint index, GBytes *data)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&install->lock);

  g_return_if_fail (index < install->n);
  add_locked (install, index, data);
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
      g_set_error (error, CANOPY_INSTALL_ERROR, CANOPY_INSTALL_ERROR_INCOMPLETE,
                   _("\"%s\" is not complete: %u of %u chunks are in the cache"),
                   install->manifest->name, install->n_added, install->n);
      return FALSE;
    }
  if (!hash_ready (install, error))
    return FALSE;
  if (!canopy_manifest_hash_matches (install->hash, install->manifest))
    {
      g_set_error (error, CANOPY_INSTALL_ERROR, CANOPY_INSTALL_ERROR_MISMATCH,
                   _("\"%s\" does not match the package's SHA-256; it was not put in place"),
                   install->manifest->name);
      return FALSE;
    }
  return TRUE;
}

/* The destination's parent, opened by the device's policy: what is
 * written after it is written relative to it, never by path. */
static int
open_parent (const char *const *directories, const char *destination, char **name,
             GError **error)
{
  return canopy_install_policy_open_parent (directories, destination, name, error);
}

/* Whether the copy made as the chunks came is whole and lies beside the
 * destination the policy opened now (the destination or the policy may
 * have changed since it was started). */
static gboolean
copy_fits (const CanopyInstall *install, int dirfd, const char *name)
{
  struct stat now, then;

  return install->copy >= 0 && (guint64) install->copied == install->manifest->size
         && g_strcmp0 (name, install->copy_name) == 0 && fstat (dirfd, &now) == 0
         && fstat (install->copy_dirfd, &then) == 0 && now.st_dev == then.st_dev
         && now.st_ino == then.st_ino;
}

gboolean
canopy_install_commit (CanopyInstall *install, const char *const *directories,
                       const char *destination, GError **error)
{
  g_autoptr (GMutexLocker) locker = g_mutex_locker_new (&install->lock);
  g_autofree char *name = NULL;
  int dirfd;
  gboolean ok;

  if (!check_complete (install, error))
    return FALSE;
  dirfd = open_parent (directories, destination, &name, error);
  if (dirfd < 0)
    return FALSE;
  if (copy_fits (install, dirfd, name))
    {
      ok = canopy_cache_entry_commit_copy_at (install->entry, dirfd, install->copy,
                                              install->copy_tmp, name, error);
      install->copy = -1;
    }
  else
    ok = canopy_cache_entry_copy_at (install->entry, dirfd, name, error);
  drop_copy (install);
  close (dirfd);
  return ok;
}

gboolean
canopy_install_assemble (CanopyCacheEntry *entry, const char *const *directories,
                         const char *destination, GError **error)
{
  g_autofree char *name = NULL;
  int dirfd = open_parent (directories, destination, &name, error);
  gboolean ok;

  if (dirfd < 0)
    return FALSE;
  ok = canopy_cache_entry_assemble_at (entry, dirfd, name, error);
  close (dirfd);
  return ok;
}

void
canopy_install_free (CanopyInstall *install)
{
  if (install == NULL)
    return;
  drop_copy (install);
  canopy_cache_entry_unref (install->entry);
  g_free (install->added);
  canopy_manifest_hash_free (install->hash);
  g_clear_pointer (&install->waiting, g_hash_table_unref);
  g_clear_error (&install->failure);
  g_mutex_clear (&install->lock);
  g_free (install);
}
