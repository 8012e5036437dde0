/* The agent's chunk cache. One directory per content, holding the signed
 * manifest and one data file the size of the package, each chunk at its
 * place in it. A chunk counts as held only once it is written whole and
 * its bytes verified; whatever a crash leaves behind is checked again on
 * start. The package is put in place as a copy of the data file (a
 * reflink where the file system can), never as a second name of it: see
 * canopy_cache_entry_copy_at(). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-cache"

#include "agent/cache.h"
#include "lib/i18n.h"
#include "lib/atomic-file.h"

#include <gio/gio.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

/* The signed manifest, kept so a restarted agent can serve and resume the
 * content before the server sends it again. */
#define MANIFEST_FILE "manifest"
#define DATA_FILE "data"
/* What earlier versions kept: one file per chunk, and the package being
 * written beside them. Chunks that verify are moved into the data file. */
#define LEGACY_CHUNK_PREFIX "chunk-"
#define LEGACY_INSTALL_PREFIX "install-"
/* An evicted content directory is renamed so, and its files are deleted
 * by a worker: deleting a large file blocks for long, and the content's
 * own name is free at once. What a crash leaves is removed on reopening. */
#define TRASH_PREFIX ".evicted-"

/* An atomic reference-counted box: the cache's table holds one reference,
 * each worker using it another, and every entry holds the cache, so a
 * worker still storing a chunk when the agent stops finds both alive. */
struct _CanopyCacheEntry {
  CanopyCache *cache;
  CanopyManifest *manifest;
  char *path;
  char *data_path;
  guint8 *have; /* bitfield */
  guint count;
  gboolean removed; /* evicted or closed: its chunks no longer count in the size */
};

/* The fetcher stores chunks from worker threads while the main loop serves
 * them: @lock guards the entry table, @closed, every bitfield, count and
 * size. An atomic reference-counted box (see canopy_cache_free()). */
struct _CanopyCache {
  GMutex lock;
  GMutex opening; /* held while an entry is opened */
  char *directory;
  guint64 quota;
  guint64 size;
  gboolean closed;
  GHashTable *entries; /* content ID → CanopyCacheEntry (a reference) */
};

G_DEFINE_QUARK (canopy-cache-error-quark, canopy_cache_error)

/* Set with a whole sentence naming the path, then the system's reason:
 * _("Cannot open the cache file %s: %s"). Macros, so that each format is a
 * literal the compiler checks against its arguments. */
#define set_io_error(error, format, path, saved_errno)                                   \
  g_set_error ((error), CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO, (format), (path),     \
               g_strerror (saved_errno))
#define set_file_error(error, format, path, saved_errno)                                 \
  g_set_error ((error), G_FILE_ERROR, g_file_error_from_errno (saved_errno), (format),   \
               (path), g_strerror (saved_errno))

/* A full disk is told apart: it passes once space is freed, so the agent
 * waits and tries again instead of giving the deployment up. */
static gboolean
is_no_space (const GError *error)
{
  return g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOSPC);
}

static void
entry_clear (CanopyCacheEntry *entry)
{
  canopy_manifest_free (entry->manifest);
  g_free (entry->path);
  g_free (entry->data_path);
  g_free (entry->have);
  canopy_cache_unref (entry->cache);
}

CanopyCacheEntry *
canopy_cache_entry_ref (CanopyCacheEntry *entry)
{
  return g_atomic_rc_box_acquire (entry);
}

void
canopy_cache_entry_unref (CanopyCacheEntry *entry)
{
  if (entry != NULL)
    g_atomic_rc_box_release_full (entry, (GDestroyNotify) entry_clear);
}

static char *
legacy_chunk_path (const CanopyCacheEntry *entry, guint index)
{
  g_autofree char *name = g_strdup_printf (LEGACY_CHUNK_PREFIX "%08u", index);

  return g_build_filename (entry->path, name, NULL);
}

/* Bytes of chunks stored in one content directory, as far as the disk
 * tells without the manifest: the blocks of the data file (holes are
 * chunks not yet fetched) and any legacy chunk files. */
static guint64
directory_size (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;
  guint64 total = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *file = g_build_filename (path, name, NULL);
      GStatBuf st;

      if (g_stat (file, &st) != 0)
        continue;
      if (g_str_equal (name, DATA_FILE))
        total += MIN ((guint64) st.st_blocks * 512, (guint64) st.st_size);
      else if (g_str_has_prefix (name, LEGACY_CHUNK_PREFIX))
        total += (guint64) st.st_size;
    }
  return total;
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *file = g_build_filename (path, name, NULL);
      g_unlink (file);
    }
  g_rmdir (path);
}

static void
remove_trash_thread (GTask *task, gpointer object, gpointer task_data, GCancellable *cancellable)
{
  const char *const *paths = task_data;

  for (guint i = 0; paths[i] != NULL; i++)
    remove_tree (paths[i]);
  g_task_return_boolean (task, TRUE);
}

/* Deletes the directories @paths (consumed) in a worker. */
static void
remove_trash_async (GPtrArray *paths)
{
  g_autoptr (GTask) task = g_task_new (NULL, NULL, NULL, NULL);

  g_ptr_array_add (paths, NULL);
  g_task_set_source_tag (task, remove_trash_async);
  g_task_set_task_data (task, g_ptr_array_free (paths, FALSE), (GDestroyNotify) g_strfreev);
  g_task_run_in_thread (task, remove_trash_thread);
}

/* Moves the content directory @path out of the way, to be deleted by a
 * worker; deletes it here if it cannot be moved. */
static void
move_to_trash (CanopyCache *cache, const char *path, const char *content_id, GPtrArray *trash)
{
  g_autofree char *name = g_strdup_printf (TRASH_PREFIX "%s-%08x", content_id, g_random_int ());
  char *trash_path = g_build_filename (cache->directory, name, NULL);

  if (g_rename (path, trash_path) == 0)
    g_ptr_array_add (trash, trash_path);
  else
    {
      g_free (trash_path);
      remove_tree (path);
    }
}

CanopyCache *
canopy_cache_open (const char *directory, guint64 quota, GError **error)
{
  g_autoptr (CanopyCache) cache = g_atomic_rc_box_new0 (CanopyCache);
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *name;

  g_mutex_init (&cache->lock);
  g_mutex_init (&cache->opening);
  cache->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) canopy_cache_entry_unref);
  if (g_mkdir_with_parents (directory, 0700) != 0)
    {
      set_io_error (error, _("Cannot create the cache directory %s: %s"), directory, errno);
      return NULL;
    }
  cache->directory = g_strdup (directory);
  cache->quota = quota;
  dir = g_dir_open (directory, 0, &local_error);
  if (dir == NULL)
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                   _("Cannot read the cache directory: %s"), local_error->message);
      return NULL;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (directory, name, NULL);
      if (g_uuid_string_is_valid (name))
        cache->size += directory_size (path);
    }
  return g_steal_pointer (&cache);
}

static void
cache_clear (CanopyCache *cache)
{
  g_hash_table_unref (cache->entries);
  g_free (cache->directory);
  g_mutex_clear (&cache->lock);
  g_mutex_clear (&cache->opening);
}

CanopyCache *
canopy_cache_ref (CanopyCache *cache)
{
  return g_atomic_rc_box_acquire (cache);
}

void
canopy_cache_unref (CanopyCache *cache)
{
  if (cache != NULL)
    g_atomic_rc_box_release_full (cache, (GDestroyNotify) cache_clear);
}

void
canopy_cache_free (CanopyCache *cache)
{
  g_autoptr (GHashTable) entries = NULL;

  if (cache == NULL)
    return;
  /* The table's references are dropped outside the lock: the last of
   * them may be what keeps the cache alive. */
  g_mutex_lock (&cache->lock);
  cache->closed = TRUE;
  entries = g_steal_pointer (&cache->entries);
  cache->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) canopy_cache_entry_unref);
  {
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init (&iter, entries);
    while (g_hash_table_iter_next (&iter, NULL, &value))
      ((CanopyCacheEntry *) value)->removed = TRUE;
  }
  g_mutex_unlock (&cache->lock);
  g_clear_pointer (&entries, g_hash_table_unref);
  canopy_cache_unref (cache);
}

static GMutex *
cache_lock (const CanopyCache *cache)
{
  GMutex *lock = (GMutex *) &cache->lock;

  g_mutex_lock (lock);
  return lock;
}

guint64
canopy_cache_get_size (const CanopyCache *cache)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);

  return cache->size;
}

static void
touch (const char *path)
{
  utimensat (AT_FDCWD, path, NULL, 0);
}

/* Bit i of byte i/8, least significant first: the wire's have bitfield. */
static gboolean
test_bit (const CanopyCacheEntry *entry, guint index)
{
  return index < canopy_manifest_get_n_chunks (entry->manifest)
         && (entry->have[index / 8] & (1u << (index % 8))) != 0;
}

/* Call with the cache locked. Returns whether the chunk was new. */
static gboolean
mark (CanopyCacheEntry *entry, guint index)
{
  if (test_bit (entry, index))
    return FALSE;
  entry->have[index / 8] |= (guint8) (1u << (index % 8));
  entry->count++;
  return TRUE;
}

gboolean
canopy_cache_entry_has_chunk (const CanopyCacheEntry *entry, guint index)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);

  return test_bit (entry, index);
}

static off_t
chunk_offset (const CanopyCacheEntry *entry, guint index)
{
  return (off_t) canopy_manifest_get_chunk_offset (entry->manifest, index);
}

/* The data file is opened for each use, not held open: an agent may keep
 * more contents than it may hold descriptors. */
static int
open_data (const CanopyCacheEntry *entry, int flags, GError **error)
{
  int fd = open (entry->data_path, flags | O_CLOEXEC);

  if (fd < 0)
    set_file_error (error, _("Cannot open %s: %s"), entry->data_path, errno);
  return fd;
}

/* A short write is a full disk: the kernel writes what fits. */
static gboolean
write_at (int fd, const char *path, const guint8 *data, gsize length, off_t offset,
          GError **error)
{
  while (length > 0)
    {
      ssize_t n = pwrite (fd, data, length, offset);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          set_file_error (error, _("Cannot write %s: %s"), path, n < 0 ? errno : ENOSPC);
          return FALSE;
        }
      data += n;
      length -= (gsize) n;
      offset += n;
    }
  return TRUE;
}

/* A short read means the file was cut short under the cache. */
static gboolean
read_at (int fd, const char *path, guint8 *data, gsize length, off_t offset, GError **error)
{
  gsize got = 0;

  while (got < length)
    {
      ssize_t n = pread (fd, data + got, length - got, offset + (off_t) got);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          set_file_error (error, _("Cannot read %s: %s"), path, n < 0 ? errno : EIO);
          return FALSE;
        }
      got += (gsize) n;
    }
  return TRUE;
}

/* Whether the data file has nothing stored in [offset, offset + length):
 * a chunk never written is a hole, and needs no reading. */
static gboolean
is_hole (int fd, off_t offset, gsize length)
{
  off_t next = lseek (fd, offset, SEEK_DATA);

  if (next < 0)
    return errno == ENXIO;
  return next >= offset + (off_t) length;
}

static gboolean
is_zero (const guint8 *data, gsize length)
{
  return length == 0 || (data[0] == 0 && memcmp (data, data + 1, length - 1) == 0);
}

/* Moves chunk @index from an earlier version's chunk file into the data
 * file, if that file holds it verified. The file goes either way. */
static gboolean
import_legacy_chunk (CanopyCacheEntry *entry, int fd, guint index)
{
  g_autofree char *path = legacy_chunk_path (entry, index);
  g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, NULL);
  gboolean ok;

  if (file == NULL)
    return FALSE;
  ok = canopy_manifest_verify_chunk (entry->manifest, index,
                                     (const guint8 *) g_mapped_file_get_contents (file),
                                     g_mapped_file_get_length (file))
       && write_at (fd, entry->data_path,
                    (const guint8 *) g_mapped_file_get_contents (file),
                    g_mapped_file_get_length (file), chunk_offset (entry, index), NULL);
  g_unlink (path);
  return ok;
}

static void
remove_legacy_files (CanopyCacheEntry *entry)
{
  g_autoptr (GDir) dir = g_dir_open (entry->path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, LEGACY_CHUNK_PREFIX)
        || g_str_has_prefix (name, LEGACY_INSTALL_PREFIX))
      {
        g_autofree char *file = g_build_filename (entry->path, name, NULL);
        g_unlink (file);
      }
}

/* Reads back what an earlier run stored, trusting nothing unchecked.
 * Returns how many chunks did not verify although something was stored
 * for them. */
static guint
load_chunks (CanopyCacheEntry *entry)
{
  guint n = canopy_manifest_get_n_chunks (entry->manifest);
  g_autofree guint8 *buffer = g_malloc (entry->manifest->chunk_size);
  guint damaged = 0;
  int fd = open_data (entry, O_RDWR, NULL);

  for (guint i = 0; fd >= 0 && i < n; i++)
    {
      gsize length = canopy_manifest_get_chunk_length (entry->manifest, i);
      off_t offset = chunk_offset (entry, i);
      gboolean stored = !is_hole (fd, offset, length)
                        && read_at (fd, entry->data_path, buffer, length, offset, NULL);

      if (stored && canopy_manifest_verify_chunk (entry->manifest, i, buffer, length))
        mark (entry, i);
      else if (import_legacy_chunk (entry, fd, i))
        mark (entry, i);
      else if (stored && !is_zero (buffer, length))
        {
          g_message (_("Discarding chunk %u of \"%s\" from the cache: it no longer matches its "
                       "manifest (disk damage?); it will be fetched again"),
                     i, entry->manifest->name);
          damaged++;
        }
    }
  if (fd >= 0)
    close (fd);
  remove_legacy_files (entry);
  return damaged;
}

/* Keeps the signed manifest beside the chunks, once. */
static gboolean
save_manifest (CanopyCacheEntry *entry, GError **error)
{
  g_autofree char *path = g_build_filename (entry->path, MANIFEST_FILE, NULL);
  g_autoptr (GBytes) data = NULL;
  g_autoptr (GError) local_error = NULL;

  if (g_file_test (path, G_FILE_TEST_EXISTS) || entry->manifest->signature == NULL)
    return TRUE;
  data = canopy_manifest_serialize (entry->manifest);
  if (!canopy_atomic_file_write (path, g_bytes_get_data (data, NULL), g_bytes_get_size (data),
                                 0600, &local_error))
    {
      if (is_no_space (local_error))
        g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_NO_SPACE,
                     _("The disk holding the cache %s is full: the manifest of \"%s\" cannot "
                       "be stored. Free space on that disk or lower the cache quota"),
                     entry->cache->directory, entry->manifest->name);
      else
        g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                     _("Cannot store the manifest of \"%s\" in the cache: %s"),
                     entry->manifest->name, local_error->message);
      return FALSE;
    }
  return TRUE;
}

CanopyCacheEntry *
canopy_cache_lookup_entry (CanopyCache *cache, const char *content_id)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);

  return g_hash_table_lookup (cache->entries, content_id);
}

/* The open entry of @content_id, with a reference; NULL when it is not
 * open. */
static CanopyCacheEntry *
lookup_ref (CanopyCache *cache, const char *content_id)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);
  CanopyCacheEntry *entry = g_hash_table_lookup (cache->entries, content_id);

  return entry != NULL ? canopy_cache_entry_ref (entry) : NULL;
}

static gboolean
check_open (CanopyCache *cache, GError **error)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);

  if (!cache->closed)
    return TRUE;
  g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CLOSED,
               _("The cache is closed: the agent is stopping"));
  return FALSE;
}

/* Puts @entry (a reference the caller keeps) in the table, unless the
 * cache was closed, and counts its chunks in the size in place of
 * @estimate, what canopy_cache_open() counted for its directory. Returns a
 * reference to the entry. */
static CanopyCacheEntry *
insert_entry (CanopyCache *cache, CanopyCacheEntry *entry, guint64 estimate, GError **error)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);
  guint64 held = 0;

  if (cache->closed)
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CLOSED,
                   _("The cache is closed: the agent is stopping"));
      return NULL;
    }
  /* The size counted the directory from the disk alone; now it is known. */
  for (guint i = 0; i < canopy_manifest_get_n_chunks (entry->manifest); i++)
    if (test_bit (entry, i))
      held += canopy_manifest_get_chunk_length (entry->manifest, i);
  cache->size = cache->size - MIN (estimate, cache->size) + held;
  g_hash_table_insert (cache->entries, entry->manifest->content_id,
                       canopy_cache_entry_ref (entry));
  return canopy_cache_entry_ref (entry);
}

CanopyCacheEntry *
canopy_cache_open_entry (CanopyCache *cache, const CanopyManifest *manifest, GError **error)
{
  CanopyCacheEntry *entry = canopy_cache_acquire_entry (cache, manifest, error);

  /* The table keeps its own reference until eviction or canopy_cache_free(). */
  canopy_cache_entry_unref (entry);
  return entry;
}

/* A data file that is also an installed package: earlier versions put
 * packages in place as a hard link to it. */
static gboolean
is_installed (const CanopyCacheEntry *entry)
{
  GStatBuf st;

  return g_stat (entry->data_path, &st) == 0 && st.st_nlink > 1;
}

static gboolean open_data_file (CanopyCacheEntry *entry, GError **error);

/* Replaces the data file by an empty one of the cache's own, so that an
 * installed copy changed since it was put in place is never written into.
 * Nothing in it is held any more. */
static gboolean
start_own_file (CanopyCacheEntry *entry, GError **error)
{
  g_unlink (entry->data_path);
  memset (entry->have, 0, canopy_manifest_get_n_chunks (entry->manifest) / 8 + 1);
  entry->count = 0;
  return open_data_file (entry, error);
}

/* Opens the data file, sized as the package: chunks not stored yet are
 * holes, taking no space. */
static gboolean
open_data_file (CanopyCacheEntry *entry, GError **error)
{
  off_t size = (off_t) entry->manifest->size;
  int fd = open (entry->data_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  struct stat st;
  gboolean ok;

  if (fd < 0 || fstat (fd, &st) != 0)
    {
      set_io_error (error, _("Cannot open the cache file %s: %s"), entry->data_path, errno);
      if (fd >= 0)
        close (fd);
      return FALSE;
    }
  if (st.st_size != size && st.st_nlink > 1)
    {
      close (fd);
      return start_own_file (entry, error);
    }
  ok = st.st_size == size || ftruncate (fd, size) == 0;
  if (!ok)
    set_io_error (error, _("Cannot set the size of the cache file %s: %s"), entry->data_path,
                  errno);
  close (fd);
  return ok;
}

CanopyCacheEntry *
canopy_cache_acquire_entry (CanopyCache *cache, const CanopyManifest *manifest, GError **error)
{
  g_autoptr (CanopyCacheEntry) entry = lookup_ref (cache, manifest->content_id);
  g_autoptr (GMutexLocker) G_GNUC_UNUSED opening = NULL;
  guint64 estimate;

  if (entry != NULL)
    return g_steal_pointer (&entry);
  /* One content is opened at a time: two threads loading the same one
   * would each move legacy files and could each start a new data file. */
  opening = g_mutex_locker_new (&cache->opening);
  entry = lookup_ref (cache, manifest->content_id);
  if (entry != NULL)
    return g_steal_pointer (&entry);
  if (!check_open (cache, error))
    return NULL;
  if (!g_uuid_string_is_valid (manifest->content_id))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT,
                   _("The manifest of \"%s\" has an invalid content ID"), manifest->name);
      return NULL;
    }
  if (cache->quota > 0 && manifest->size > cache->quota)
    {
      g_autofree char *need = g_format_size (manifest->size);
      g_autofree char *quota = g_format_size (cache->quota);
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_QUOTA,
                   _("\"%s\" needs %s but the cache may hold only %s; raise the cache quota"),
                   manifest->name, need, quota);
      return NULL;
    }
  entry = g_atomic_rc_box_new0 (CanopyCacheEntry);
  entry->cache = canopy_cache_ref (cache);
  entry->manifest = canopy_manifest_copy (manifest);
  entry->path = g_build_filename (cache->directory, manifest->content_id, NULL);
  entry->data_path = g_build_filename (entry->path, DATA_FILE, NULL);
  entry->have = g_malloc0 (canopy_manifest_get_n_chunks (manifest) / 8 + 1);
  if (g_mkdir_with_parents (entry->path, 0700) != 0)
    {
      set_io_error (error, _("Cannot create the cache directory %s: %s"), entry->path, errno);
      return NULL;
    }
  if (!save_manifest (entry, error))
    return NULL;
  touch (entry->path);
  estimate = directory_size (entry->path);
  if (!open_data_file (entry, error))
    return NULL;
  if (load_chunks (entry) > 0 && is_installed (entry))
    {
      g_message (_("The installed copy of \"%s\" was changed after it was put in place; the "
                   "cache stops sharing it and fetches the content again"),
                 manifest->name);
      if (!start_own_file (entry, error))
        return NULL;
    }
  return insert_entry (cache, entry, estimate, error);
}

/* Returns the content IDs opened; stops early when @cancellable fires. */
static GPtrArray *
reopen_contents (CanopyCache *cache, const CanopyVerifyKey *key, GCancellable *cancellable)
{
  g_autoptr (GDir) dir = g_dir_open (cache->directory, 0, NULL);
  GPtrArray *opened = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL
         && !g_cancellable_is_cancelled (cancellable))
    {
      g_autoptr (CanopyCacheEntry) entry = NULL;
      g_autofree char *path = g_build_filename (cache->directory, name, MANIFEST_FILE, NULL);
      g_autofree char *data = NULL;
      gsize length;
      g_autoptr (GBytes) bytes = NULL;
      g_autoptr (CanopyManifest) manifest = NULL;
      g_autoptr (GError) error = NULL;

      /* Evicted by a run that stopped before deleting it. */
      if (g_str_has_prefix (name, TRASH_PREFIX))
        {
          g_autofree char *trash = g_build_filename (cache->directory, name, NULL);
          remove_tree (trash);
          continue;
        }
      if (!g_uuid_string_is_valid (name) || (entry = lookup_ref (cache, name)) != NULL
          || !g_file_get_contents (path, &data, &length, NULL))
        continue;
      bytes = g_bytes_new_take (g_steal_pointer (&data), length);
      manifest = canopy_manifest_parse (bytes, key, &error);
      /* Signed by another server key (regenerated): it cannot be trusted
       * now, and eviction removes it in time. */
      if (manifest == NULL || !g_str_equal (manifest->content_id, name))
        {
          g_debug ("not reopening cached content %s: %s", name,
                   error != NULL ? error->message : "content ID differs");
          continue;
        }
      entry = canopy_cache_acquire_entry (cache, manifest, &error);
      if (entry != NULL)
        g_ptr_array_add (opened, g_strdup (name));
      else if (!g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CLOSED))
        g_message (_("Cannot reopen cached content \"%s\": %s"), manifest->name,
                   error->message);
    }
  return opened;
}

guint
canopy_cache_reopen (CanopyCache *cache, const CanopyVerifyKey *key)
{
  g_autoptr (GPtrArray) opened = reopen_contents (cache, key, NULL);

  return opened->len;
}

typedef struct {
  CanopyCache *cache;
  GBytes *public_key;
} Reopen;

static void
reopen_free (Reopen *reopen)
{
  canopy_cache_unref (reopen->cache);
  g_bytes_unref (reopen->public_key);
  g_free (reopen);
}

static void
reopen_thread (GTask *task, gpointer object, gpointer task_data, GCancellable *cancellable)
{
  Reopen *reopen = task_data;
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyVerifyKey) key = canopy_verify_key_new (reopen->public_key, &error);
  GPtrArray *opened;

  if (key == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  opened = reopen_contents (reopen->cache, key, cancellable);
  g_ptr_array_add (opened, NULL);
  g_task_return_pointer (task, g_ptr_array_free (opened, FALSE), (GDestroyNotify) g_strfreev);
}

void
canopy_cache_reopen_async (CanopyCache *cache, GBytes *public_key, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  Reopen *reopen = g_new0 (Reopen, 1);

  reopen->cache = canopy_cache_ref (cache);
  reopen->public_key = g_bytes_ref (public_key);
  g_task_set_source_tag (task, canopy_cache_reopen_async);
  g_task_set_task_data (task, reopen, (GDestroyNotify) reopen_free);
  g_task_run_in_thread (task, reopen_thread);
}

GStrv
canopy_cache_reopen_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

GPtrArray *
canopy_cache_get_entries (CanopyCache *cache)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);
  GPtrArray *entries = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, cache->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (entries, value);
  return entries;
}

/* Where a chunk is held: another content and its index there. */
typedef struct {
  CanopyCacheEntry *entry;
  guint index;
} HeldChunk;

/* Every chunk the other open contents hold, by SHA-256; the entries are
 * referenced in @others so eviction on the main loop cannot free them. */
static GHashTable *
index_held_chunks (CanopyCacheEntry *entry, GPtrArray *others)
{
  GHashTable *held = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                            (GDestroyNotify) g_bytes_unref, g_free);
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, entry->cache->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      CanopyCacheEntry *other = value;
      guint n = canopy_manifest_get_n_chunks (other->manifest);

      if (other == entry || other->removed || other->count == 0)
        continue;
      g_ptr_array_add (others, canopy_cache_entry_ref (other));
      for (guint i = 0; i < n; i++)
        {
          HeldChunk *at;

          if (!test_bit (other, i))
            continue;
          at = g_new (HeldChunk, 1);
          at->entry = other;
          at->index = i;
          g_hash_table_replace (
            held,
            g_bytes_new_static (canopy_manifest_get_chunk_hash (other->manifest, i),
                                CANOPY_MANIFEST_HASH_SIZE),
            at);
        }
    }
  return held;
}

guint
canopy_cache_entry_reuse (CanopyCacheEntry *entry, guint64 *reused_bytes)
{
  g_autoptr (GPtrArray) others =
    g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_cache_entry_unref);
  g_autoptr (GHashTable) held = index_held_chunks (entry, others);
  const CanopyManifest *m = entry->manifest;
  g_autofree guint8 *buffer = NULL;
  guint taken = 0;

  *reused_bytes = 0;
  if (g_hash_table_size (held) == 0)
    return 0;
  buffer = g_malloc (MAX (m->chunk_size, 1u));
  for (guint i = 0; i < canopy_manifest_get_n_chunks (m); i++)
    {
      g_autoptr (GBytes) hash = NULL;
      HeldChunk *at;
      guint32 length = canopy_manifest_get_chunk_length (m, i);
      g_autoptr (GError) error = NULL;

      if (canopy_cache_entry_has_chunk (entry, i))
        continue;
      hash = g_bytes_new_static (canopy_manifest_get_chunk_hash (m, i), CANOPY_MANIFEST_HASH_SIZE);
      at = g_hash_table_lookup (held, hash);
      /* Same hash, same length: a chunk's length is part of what it hashes. */
      if (at == NULL || canopy_manifest_get_chunk_length (at->entry->manifest, at->index) != length)
        continue;
      if (!canopy_cache_entry_read_verified_chunk (at->entry, at->index, buffer, &error)
          || !canopy_cache_entry_store_chunk (entry, i, buffer, length, &error))
        {
          /* Not fatal: the chunk is fetched like any other. */
          g_debug ("Chunk %u of %s not taken from content %s: %s", i, m->content_id,
                   at->entry->manifest->content_id, error->message);
          continue;
        }
      taken++;
      *reused_bytes += length;
    }
  return taken;
}

CanopyCacheEntry *
canopy_cache_find_chunk (CanopyCache *cache, const guint8 *hash, guint *index)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, cache->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      CanopyCacheEntry *entry = value;
      guint n = canopy_manifest_get_n_chunks (entry->manifest);

      if (entry->removed || entry->count == 0)
        continue;
      for (guint i = 0; i < n; i++)
        if (test_bit (entry, i)
            && memcmp (canopy_manifest_get_chunk_hash (entry->manifest, i), hash,
                       CANOPY_MANIFEST_HASH_SIZE) == 0)
          {
            *index = i;
            return canopy_cache_entry_ref (entry);
          }
    }
  return NULL;
}

GBytes *
canopy_cache_hold_hashes (CanopyCache *cache, GBytes *hashes)
{
  gsize size;
  const guint8 *data = g_bytes_get_data (hashes, &size);
  guint n = (guint) (size / CANOPY_MANIFEST_HASH_SIZE);
  guint8 *bits = g_malloc0 ((n + 7) / 8 + 1);
  /* hash → its positions in @hashes + 1, as a list: a content may hold
   * the same chunk at several places. */
  g_autoptr (GHashTable) wanted = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                         (GDestroyNotify) g_bytes_unref,
                                                         (GDestroyNotify) g_array_unref);
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = NULL;
  GHashTableIter iter;
  gpointer value;

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GBytes) key = g_bytes_new_static (data + (gsize) i * CANOPY_MANIFEST_HASH_SIZE,
                                                   CANOPY_MANIFEST_HASH_SIZE);
      GArray *at = g_hash_table_lookup (wanted, key);

      if (at == NULL)
        {
          at = g_array_new (FALSE, FALSE, sizeof (guint));
          g_hash_table_insert (wanted, g_bytes_ref (key), at);
        }
      g_array_append_val (at, i);
    }
  locker = cache_lock (cache);
  g_hash_table_iter_init (&iter, cache->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      CanopyCacheEntry *entry = value;
      guint count = canopy_manifest_get_n_chunks (entry->manifest);

      if (entry->removed || entry->count == 0)
        continue;
      for (guint c = 0; c < count; c++)
        {
          g_autoptr (GBytes) key = NULL;
          GArray *at;

          if (!test_bit (entry, c))
            continue;
          key = g_bytes_new_static (canopy_manifest_get_chunk_hash (entry->manifest, c),
                                    CANOPY_MANIFEST_HASH_SIZE);
          at = g_hash_table_lookup (wanted, key);
          for (guint k = 0; at != NULL && k < at->len; k++)
            {
              guint i = g_array_index (at, guint, k);
              bits[i / 8] |= (guint8) (1u << (i % 8));
            }
        }
    }
  return g_bytes_new_take (bits, (n + 7) / 8);
}

const CanopyManifest *
canopy_cache_entry_get_manifest (const CanopyCacheEntry *entry)
{
  return entry->manifest;
}

guint
canopy_cache_entry_count_chunks (const CanopyCacheEntry *entry)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);

  return entry->count;
}

gboolean
canopy_cache_entry_is_complete (const CanopyCacheEntry *entry)
{
  return canopy_cache_entry_count_chunks (entry) == canopy_manifest_get_n_chunks (entry->manifest);
}

GBytes *
canopy_cache_entry_get_bitfield (const CanopyCacheEntry *entry)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);
  guint n = canopy_manifest_get_n_chunks (entry->manifest);

  return g_bytes_new (entry->have, (n + 7) / 8);
}

gboolean
canopy_cache_entry_store_chunk (CanopyCacheEntry *entry, guint index, const guint8 *data,
                                gsize length, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  int fd;

  if (!canopy_manifest_verify_chunk (entry->manifest, index, data, length))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT,
                   _("Chunk %u of \"%s\" does not match its manifest; it was not stored"),
                   index, entry->manifest->name);
      return FALSE;
    }
  if (canopy_cache_entry_has_chunk (entry, index))
    return TRUE;

  /* Written unlocked: two threads storing the same chunk write the same
   * verified bytes, and only one of them counts it. Not flushed to disk: a
   * restarted agent checks every chunk again (see load_chunks()), so one a
   * crash damaged is simply fetched again, and waiting for the disk chunk
   * by chunk made it the bottleneck. */
  fd = open_data (entry, O_WRONLY, &local_error);
  if (fd < 0
      || !write_at (fd, entry->data_path, data, length, chunk_offset (entry, index),
                    &local_error))
    {
      if (fd >= 0)
        close (fd);
      if (is_no_space (local_error))
        g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_NO_SPACE,
                     _("The disk holding the cache %s is full: chunk %u of \"%s\" cannot be "
                       "stored. Free space on that disk or lower the cache quota; the agent "
                       "keeps its verified chunks, goes on serving its office and tries again "
                       "by itself"),
                     entry->cache->directory, index, entry->manifest->name);
      else
        g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                     _("Cannot store chunk %u of \"%s\" in the cache: %s"), index,
                     entry->manifest->name, local_error->message);
      return FALSE;
    }
  /* No write-back started here, chunk by chunk: that cost the agent a
   * system call and the block layer's work per chunk on its own CPU; the
   * kernel's flusher writes the pages back meanwhile, and putting the
   * package in place flushes once (canopy_cache_entry_copy_at()). */
  close (fd);
  {
    g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);

    /* An entry evicted or closed meanwhile is no longer in the size. */
    if (mark (entry, index) && !entry->removed)
      entry->cache->size += length;
  }
  return TRUE;
}

GBytes *
canopy_cache_entry_read_chunk (CanopyCacheEntry *entry, guint index, GError **error)
{
  gsize length;
  g_autofree guint8 *data = NULL;
  g_autoptr (GError) local_error = NULL;
  int fd;
  gboolean ok;

  if (!canopy_cache_entry_has_chunk (entry, index))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_MISSING,
                   _("Chunk %u of \"%s\" is not in the cache"), index, entry->manifest->name);
      return NULL;
    }
  length = canopy_manifest_get_chunk_length (entry->manifest, index);
  data = g_malloc (length);
  fd = open_data (entry, O_RDONLY, &local_error);
  ok = fd >= 0
       && read_at (fd, entry->data_path, data, length, chunk_offset (entry, index), &local_error);
  if (fd >= 0)
    close (fd);
  if (!ok)
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                   _("Cannot read chunk %u of \"%s\" from the cache: %s"), index,
                   entry->manifest->name, local_error->message);
      return NULL;
    }
  touch (entry->path);
  return g_bytes_new_take (g_steal_pointer (&data), length);
}

/* Forgets chunk @index: it no longer counts as held, is no longer
 * announced, and a fetch of the content takes it again. */
static void
unmark (CanopyCacheEntry *entry, guint index)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);

  if (!test_bit (entry, index))
    return;
  entry->have[index / 8] &= (guint8) ~(1u << (index % 8));
  entry->count--;
  if (!entry->removed)
    entry->cache->size -= MIN (canopy_manifest_get_chunk_length (entry->manifest, index),
                               entry->cache->size);
}

/* Errors that say nothing about the chunk itself: the process or the
 * system ran short for a moment, and the next read may well succeed. */
static gboolean
is_transient (const GError *error)
{
  return g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_MFILE)
         || g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NFILE)
         || g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOMEM)
         || g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_AGAIN)
         || g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_INTR);
}

gboolean
canopy_cache_entry_read_verified_chunk (CanopyCacheEntry *entry, guint index, guint8 *buffer,
                                        GError **error)
{
  gsize length;
  g_autoptr (GError) local_error = NULL;
  int fd;
  gboolean ok;

  if (!canopy_cache_entry_has_chunk (entry, index))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_MISSING,
                   _("Chunk %u of \"%s\" is not in the cache"), index, entry->manifest->name);
      return FALSE;
    }
  length = canopy_manifest_get_chunk_length (entry->manifest, index);
  fd = open_data (entry, O_RDONLY, &local_error);
  ok = fd >= 0
       && read_at (fd, entry->data_path, buffer, length, chunk_offset (entry, index),
                   &local_error);
  if (fd >= 0)
    close (fd);
  if (!ok && is_transient (local_error))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                   _("Cannot read chunk %u of \"%s\" (content %s) from the cache: %s. The "
                     "chunk is kept; raise the agent's limits if this recurs"),
                   index, entry->manifest->name, entry->manifest->content_id,
                   local_error->message);
      return FALSE;
    }
  if (!ok)
    {
      unmark (entry, index);
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                   _("Cannot read chunk %u of \"%s\" (content %s) from the cache: %s. The "
                     "chunk was dropped from the cache and will be fetched again; if this "
                     "recurs, check the disk holding %s"),
                   index, entry->manifest->name, entry->manifest->content_id,
                   local_error->message, entry->cache->directory);
      return FALSE;
    }
  /* Checked as it leaves: a chunk the disk damaged since it was stored
   * would make the peer drop this agent as a liar, and stay damaged. */
  if (!canopy_manifest_verify_chunk (entry->manifest, index, buffer, length))
    {
      unmark (entry, index);
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT,
                   _("Chunk %u of \"%s\" (content %s) in %s no longer matches its manifest "
                     "(disk damage?). The chunk was dropped from the cache and will be fetched "
                     "again; if this recurs, check that disk"),
                   index, entry->manifest->name, entry->manifest->content_id,
                   entry->data_path);
      return FALSE;
    }
  touch (entry->path);
  return TRUE;
}

static void
set_assemble_error (CanopyCacheEntry *entry, const char *destination, const GError *cause,
                    GError **error)
{
  if (is_no_space (cause))
    g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_NO_SPACE,
                 _("The disk holding %s is full: \"%s\" cannot be put in place. Free space on "
                   "that disk; the agent keeps its verified chunks, goes on serving its office "
                   "and tries again by itself"),
                 destination, entry->manifest->name);
  else
    g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                 _("Cannot put \"%s\" in place: %s"), entry->manifest->name, cause->message);
}

static gboolean
check_complete (CanopyCacheEntry *entry, GError **error)
{
  if (canopy_cache_entry_is_complete (entry))
    return TRUE;
  g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_MISSING,
               _("\"%s\" is not complete: %u of %u chunks are in the cache"),
               entry->manifest->name, canopy_cache_entry_count_chunks (entry),
               canopy_manifest_get_n_chunks (entry->manifest));
  return FALSE;
}

/* The name beside @name a package is written to before it is renamed,
 * followed by eight hexadecimal digits. */
#define TEMP_PREFIX ".%s.canopy-"

/* A temporary file beside the package, in the directory the install
 * policy opened (never reached by path again), so the package appears
 * whole or not at all. */
static int
open_temp_at (int dirfd, const char *name, char **tmp, GError **error)
{
  for (guint attempt = 0; attempt < 100; attempt++)
    {
      g_autofree char *candidate = g_strdup_printf (TEMP_PREFIX "%08x", name, g_random_int ());
      int fd = openat (dirfd, candidate, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0644);

      if (fd >= 0)
        {
          *tmp = g_steal_pointer (&candidate);
          return fd;
        }
      if (errno != EEXIST)
        {
          set_file_error (error, _("Cannot create a file beside %s: %s"), name, errno);
          return -1;
        }
    }
  set_file_error (error, _("Cannot create a file beside %s: %s"), name, EEXIST);
  return -1;
}

/* Flushed before the rename: once in place, the package must outlive a
 * crash. Takes @fd; the temporary file goes on any failure. */
static gboolean
commit_temp_at (int dirfd, int fd, const char *tmp, const char *name, GError **error)
{
  gboolean ok = fchmod (fd, 0644) == 0 && fsync (fd) == 0;
  int saved_errno = errno;

  if (close (fd) != 0 && ok)
    ok = FALSE, saved_errno = errno;
  if (ok && renameat (dirfd, tmp, dirfd, name) != 0)
    ok = FALSE, saved_errno = errno;
  if (!ok)
    {
      unlinkat (dirfd, tmp, 0);
      set_file_error (error, _("Cannot write %s: %s"), name, saved_errno);
      return FALSE;
    }
  fsync (dirfd);
  return TRUE;
}

gboolean
canopy_cache_entry_assemble_at (CanopyCacheEntry *entry, int dirfd, const char *name,
                                GError **error)
{
  g_autoptr (CanopyManifestHash) sum = canopy_manifest_hash_new ();
  g_autoptr (GError) local_error = NULL;
  g_autofree char *tmp = NULL;
  guint n = canopy_manifest_get_n_chunks (entry->manifest);
  int fd;

  if (!check_complete (entry, error))
    return FALSE;
  fd = open_temp_at (dirfd, name, &tmp, &local_error);
  for (guint i = 0; fd >= 0 && i < n; i++)
    {
      g_autoptr (GBytes) chunk = canopy_cache_entry_read_chunk (entry, i, &local_error);
      const guint8 *data;
      gsize length;

      if (chunk == NULL)
        break;
      data = g_bytes_get_data (chunk, &length);
      canopy_manifest_hash_update (sum, data, length);
      if (!write_at (fd, name, data, length, chunk_offset (entry, i), &local_error))
        break;
    }
  if (local_error == NULL && !canopy_manifest_hash_matches (sum, entry->manifest))
    g_set_error (&local_error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT,
                 _("The assembled \"%s\" does not match the package's SHA-256; it was not "
                   "put in place"), entry->manifest->name);
  if (local_error != NULL)
    {
      if (fd >= 0)
        {
          close (fd);
          unlinkat (dirfd, tmp, 0);
        }
      if (local_error->domain == CANOPY_CACHE_ERROR)
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        set_assemble_error (entry, name, local_error, error);
      return FALSE;
    }
  if (!commit_temp_at (dirfd, fd, tmp, name, &local_error))
    {
      set_assemble_error (entry, name, local_error, error);
      return FALSE;
    }
  return TRUE;
}

/* The fallback for file systems without copy_file_range() between these
 * two files (or kernels without it): sendfile() copies in the kernel too. */
static gboolean
send_rest (int in, int out, guint64 left, int *saved_errno)
{
  while (left > 0)
    {
      ssize_t n = sendfile (out, in, NULL, MIN (left, (guint64) 1 << 30));

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          *saved_errno = n < 0 ? errno : EIO;
          return FALSE;
        }
      left -= (guint64) n;
    }
  return TRUE;
}

/* A reflink first (btrfs, XFS): no extra space, copy-on-write, so later
 * changes to either copy leave the other alone. Else copy_file_range(),
 * which the file system may also do without moving the bytes. */
static gboolean
copy_data (int in, int out, guint64 size, int *saved_errno)
{
  guint64 left = size;

  if (ioctl (out, FICLONE, in) == 0)
    return TRUE;
  while (left > 0)
    {
      ssize_t n = copy_file_range (in, NULL, out, NULL, MIN (left, (guint64) 1 << 30), 0);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
        return send_rest (in, out, left, saved_errno);
      if (n <= 0)
        {
          *saved_errno = n < 0 ? errno : EIO;
          return FALSE;
        }
      left -= (guint64) n;
    }
  return TRUE;
}

/* A copy an agent stopped abruptly (killed, power cut) left beside @name:
 * only this agent writes names of this shape there (open_temp_at()). */
static void
remove_stale_copies_at (int dirfd, const char *name)
{
  g_autofree char *prefix = g_strdup_printf (TEMP_PREFIX, name);
  gsize length = strlen (prefix);
  int fd = dup (dirfd);
  DIR *dir = fd >= 0 ? fdopendir (fd) : NULL;
  struct dirent *e;

  if (dir == NULL)
    {
      if (fd >= 0)
        close (fd);
      return;
    }
  while ((e = readdir (dir)) != NULL)
    if (strncmp (e->d_name, prefix, length) == 0 && strlen (e->d_name + length) == 8
        && strspn (e->d_name + length, "0123456789abcdef") == 8)
      unlinkat (dirfd, e->d_name, 0);
  closedir (dir);
}

/* The copy's blocks are taken up front: written as the chunks come, on a
 * disk shared with the cache, it would otherwise race the cache for the
 * last free blocks, and dropping it when it lost would hand them back in
 * the middle of a full-disk pause (which the admin would then hear of
 * twice). Where they cannot be taken, the package is copied at the end. */
static gboolean
reserve_copy (CanopyCacheEntry *entry, int fd, const char *name, GError **error)
{
  g_autofree char *size = NULL;
  int saved_errno;

  if (entry->manifest->size == 0
      || fallocate (fd, FALLOC_FL_KEEP_SIZE, 0, (off_t) entry->manifest->size) == 0)
    return TRUE;
  saved_errno = errno;
  size = g_format_size (entry->manifest->size);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               _("Cannot reserve %s beside %s for the package: %s"),
               size, name, g_strerror (saved_errno));
  return FALSE;
}

/* A copy written as the chunks come, so that putting the package in place
 * at the end is a flush and a rename: copying it whole then, when every
 * device of an office finishes at once, costs seconds. Not where the
 * cache's file can be cloned there: a reflink at the end costs nothing. */
int
canopy_cache_entry_open_copy_at (CanopyCacheEntry *entry, int dirfd, const char *name,
                                 char **tmp, GError **error)
{
  int in = open_data (entry, O_RDONLY, error);
  int out;
  gboolean wanted;

  if (in < 0)
    return -1;
  remove_stale_copies_at (dirfd, name);
  out = open_temp_at (dirfd, name, tmp, error);
  wanted = out >= 0 && ioctl (out, FICLONE, in) != 0 && reserve_copy (entry, out, name, error);
  close (in);
  if (out >= 0 && !wanted)
    {
      close (out);
      unlinkat (dirfd, *tmp, 0);
      g_clear_pointer (tmp, g_free);
      return -1;
    }
  return out;
}

gboolean
canopy_cache_entry_commit_copy_at (CanopyCacheEntry *entry, int dirfd, int fd, const char *tmp,
                                   const char *name, GError **error)
{
  g_autoptr (GError) local_error = NULL;

  if (commit_temp_at (dirfd, fd, tmp, name, &local_error))
    return TRUE;
  set_assemble_error (entry, name, local_error, error);
  return FALSE;
}

/* Why a copy and not a hard link: a second name shares the inode, so a
 * user or an installer editing the installed file in place would change
 * the verified cache under the agent, which would then serve damaged
 * chunks to its office and fail every later deployment of that content.
 * A reflink or a copy is a file of its own. */
gboolean
canopy_cache_entry_copy_at (CanopyCacheEntry *entry, int dirfd, const char *name,
                            GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *tmp = NULL;
  int in, out = -1, saved_errno = 0;
  gboolean ok;

  if (!check_complete (entry, error))
    return FALSE;
  in = open_data (entry, O_RDONLY, &local_error);
  if (in >= 0)
    out = open_temp_at (dirfd, name, &tmp, &local_error);
  ok = out >= 0 && copy_data (in, out, entry->manifest->size, &saved_errno);
  if (in >= 0)
    close (in);
  if (out >= 0 && !ok)
    {
      close (out);
      unlinkat (dirfd, tmp, 0);
      set_file_error (&local_error, _("Cannot write %s: %s"), name, saved_errno);
    }
  if (ok && !commit_temp_at (dirfd, out, tmp, name, &local_error))
    ok = FALSE;
  if (!ok)
    set_assemble_error (entry, name, local_error, error);
  return ok;
}

/* A data file an earlier version put in place as a hard link is also the
 * user's package: chunks fetched again must not be written into it. The
 * cache lets go of it whole and starts a file of its own. */
static guint
forget_shared_file (CanopyCacheEntry *entry)
{
  guint n = canopy_manifest_get_n_chunks (entry->manifest);
  guint dropped = 0;

  g_message (_("The installed copy of \"%s\" is the cache's own file, put in place by an "
               "earlier version, and was changed; the cache stops sharing it and fetches the "
               "content again"),
             entry->manifest->name);
  {
    g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = g_mutex_locker_new (&entry->cache->lock);

    for (guint i = 0; i < n; i++)
      if (test_bit (entry, i))
        {
          if (!entry->removed)
            entry->cache->size -= canopy_manifest_get_chunk_length (entry->manifest, i);
          dropped++;
        }
    memset (entry->have, 0, n / 8 + 1);
    entry->count = 0;
  }
  g_unlink (entry->data_path);
  open_data_file (entry, NULL);
  return dropped;
}

guint
canopy_cache_entry_recheck (CanopyCacheEntry *entry)
{
  guint n = canopy_manifest_get_n_chunks (entry->manifest);
  guint dropped = 0;

  if (is_installed (entry))
    return forget_shared_file (entry);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr (GBytes) chunk = canopy_cache_entry_read_chunk (entry, i, NULL);
      gsize length = canopy_manifest_get_chunk_length (entry->manifest, i);
      g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = NULL;

      if (chunk == NULL && !canopy_cache_entry_has_chunk (entry, i))
        continue;
      if (chunk != NULL
          && canopy_manifest_verify_chunk (entry->manifest, i, g_bytes_get_data (chunk, NULL),
                                           g_bytes_get_size (chunk)))
        continue;
      locker = g_mutex_locker_new (&entry->cache->lock);
      if (!test_bit (entry, i))
        continue;
      entry->have[i / 8] &= (guint8) ~(1u << (i % 8));
      entry->count--;
      if (!entry->removed)
        entry->cache->size -= length;
      dropped++;
    }
  if (dropped > 0)
    g_message (g_dngettext (GETTEXT_PACKAGE,
                            "Discarded %u chunk of \"%s\" from the cache: it no longer "
                            "matches the manifest (changed on disk); it is fetched again",
                            "Discarded %u chunks of \"%s\" from the cache: they no longer "
                            "match the manifest (changed on disk); they are fetched again",
                            dropped),
               dropped, entry->manifest->name);
  return dropped;
}

typedef struct {
  char *content_id;
  gint64 used;
} Candidate;

static int
compare_candidates (gconstpointer a, gconstpointer b)
{
  const Candidate *ca = a;
  const Candidate *cb = b;

  return ca->used < cb->used ? -1 : ca->used > cb->used;
}

static void
candidate_clear (Candidate *candidate)
{
  g_free (candidate->content_id);
}

/* The contents of the cache directory, least recently used first,
 * except those of @keep. */
static GArray *
list_candidates (CanopyCache *cache, const char *const *keep)
{
  GArray *candidates = g_array_new (FALSE, FALSE, sizeof (Candidate));
  g_autoptr (GDir) dir = g_dir_open (cache->directory, 0, NULL);
  const char *name;

  g_array_set_clear_func (candidates, (GDestroyNotify) candidate_clear);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (cache->directory, name, NULL);
      GStatBuf st;

      if (!g_uuid_string_is_valid (name) || (keep != NULL && g_strv_contains (keep, name))
          || g_stat (path, &st) != 0)
        continue;
      {
        Candidate c = { g_strdup (name),
                        (gint64) st.st_mtim.tv_sec * G_USEC_PER_SEC + st.st_mtim.tv_nsec / 1000 };
        g_array_append_val (candidates, c);
      }
    }
  g_array_sort (candidates, compare_candidates);
  return candidates;
}

/* Forgets @c and moves its directory to @trash. */
static void
remove_candidate (CanopyCache *cache, const Candidate *c, GPtrArray *trash)
{
  g_autofree char *path = g_build_filename (cache->directory, c->content_id, NULL);
  guint64 size = directory_size (path);
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);
  CanopyCacheEntry *entry = g_hash_table_lookup (cache->entries, c->content_id);

  /* A worker may still hold it; what it stores now is not counted. */
  if (entry != NULL)
    entry->removed = TRUE;
  g_hash_table_remove (cache->entries, c->content_id);
  move_to_trash (cache, path, c->content_id, trash);
  cache->size -= MIN (size, cache->size);
}

guint
canopy_cache_evict (CanopyCache *cache, const char *const *keep)
{
  g_autoptr (GArray) candidates = NULL;
  g_autoptr (GPtrArray) trash = g_ptr_array_new_with_free_func (g_free);
  guint removed = 0;

  if (cache->quota == 0 || canopy_cache_get_size (cache) <= cache->quota)
    return 0;
  candidates = list_candidates (cache, keep);
  for (guint i = 0; i < candidates->len && canopy_cache_get_size (cache) > cache->quota; i++)
    {
      remove_candidate (cache, &g_array_index (candidates, Candidate, i), trash);
      removed++;
    }
  if (trash->len > 0)
    remove_trash_async (g_steal_pointer (&trash));
  return removed;
}

guint
canopy_cache_expire (CanopyCache *cache, gint64 max_age_us, const char *const *keep)
{
  g_autoptr (GArray) candidates = NULL;
  g_autoptr (GPtrArray) trash = g_ptr_array_new_with_free_func (g_free);
  gint64 before = g_get_real_time () - max_age_us;
  guint removed = 0;

  if (max_age_us <= 0)
    return 0;
  candidates = list_candidates (cache, keep);
  for (guint i = 0; i < candidates->len; i++)
    {
      const Candidate *c = &g_array_index (candidates, Candidate, i);

      if (c->used >= before)
        break;
      remove_candidate (cache, c, trash);
      removed++;
    }
  if (trash->len > 0)
    remove_trash_async (g_steal_pointer (&trash));
  return removed;
}
