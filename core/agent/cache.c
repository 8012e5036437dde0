/* The agent's chunk cache. One directory per content, one file per
 * verified chunk: a chunk file appears whole and only once its bytes
 * verified, and whatever a crash leaves behind is checked again on start. */
#include "build-config.h"

#include "agent/cache.h"
#include "lib/i18n.h"
#include "lib/atomic-file.h"

#include <gio/gio.h>

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

/* Temporary files of interrupted writes (see atomic-file.h). */
#define TMP_SUFFIX ".tmp-"
/* The signed manifest, kept so a restarted agent can serve and resume the
 * content before the server sends it again. */
#define MANIFEST_FILE "manifest"

/* An atomic reference-counted box: the cache's table holds one reference,
 * each worker using it another, and every entry holds the cache, so a
 * worker still storing a chunk when the agent stops finds both alive. */
struct _CanopyCacheEntry {
  CanopyCache *cache;
  CanopyManifest *manifest;
  char *path;
  guint8 *have; /* bitfield */
  guint count;
  gboolean removed; /* evicted or closed: its chunks no longer count in the size */
};

/* The fetcher stores chunks from worker threads while the main loop serves
 * them: @lock guards the entry table, @closed, every bitfield, count and
 * size. An atomic reference-counted box (see canopy_cache_free()). */
struct _CanopyCache {
  GMutex lock;
  char *directory;
  guint64 quota;
  guint64 size;
  gboolean closed;
  GHashTable *entries; /* content ID → CanopyCacheEntry (a reference) */
};

G_DEFINE_QUARK (canopy-cache-error-quark, canopy_cache_error)

static void
set_io_error (GError **error, const char *what, const char *path, int saved_errno)
{
  g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO, _("Cannot %s %s: %s"), what,
               path, g_strerror (saved_errno));
}

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
chunk_path (const CanopyCacheEntry *entry, guint index)
{
  g_autofree char *name = g_strdup_printf ("chunk-%08u", index);

  return g_build_filename (entry->path, name, NULL);
}

/* Bytes of the chunk files in one content directory. */
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

      if (g_str_has_prefix (name, "chunk-") && !strstr (name, TMP_SUFFIX) && g_stat (file, &st) == 0)
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

CanopyCache *
canopy_cache_open (const char *directory, guint64 quota, GError **error)
{
  g_autoptr (CanopyCache) cache = g_atomic_rc_box_new0 (CanopyCache);
  g_autoptr (GDir) dir = NULL;
  g_autoptr (GError) local_error = NULL;
  const char *name;

  g_mutex_init (&cache->lock);
  cache->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) canopy_cache_entry_unref);
  if (g_mkdir_with_parents (directory, 0700) != 0)
    {
      set_io_error (error, _("create the cache directory"), directory, errno);
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

/* Reads back what an earlier run stored, trusting nothing unchecked. */
static void
load_chunks (CanopyCacheEntry *entry)
{
  guint n = canopy_manifest_get_n_chunks (entry->manifest);

  for (guint i = 0; i < n; i++)
    {
      g_autofree char *path = chunk_path (entry, i);
      g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, NULL);

      if (file == NULL)
        continue;
      if (canopy_manifest_verify_chunk (entry->manifest, i,
                                        (const guint8 *) g_mapped_file_get_contents (file),
                                        g_mapped_file_get_length (file)))
        mark (entry, i);
      else
        {
          g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);

          g_message (_("Discarding chunk %u of \"%s\" from the cache: it no longer matches its "
                       "manifest (disk damage?); it will be fetched again"),
                     i, entry->manifest->name);
          entry->cache->size -= MIN (entry->cache->size, g_mapped_file_get_length (file));
          g_unlink (path);
        }
    }
}

static CanopyManifest *
copy_manifest (const CanopyManifest *m)
{
  CanopyManifest *copy = g_new0 (CanopyManifest, 1);

  copy->content_id = g_strdup (m->content_id);
  copy->name = g_strdup (m->name);
  copy->version = g_strdup (m->version);
  copy->size = m->size;
  copy->chunk_size = m->chunk_size;
  copy->chunk_hashes = g_bytes_ref (m->chunk_hashes);
  memcpy (copy->sha256, m->sha256, sizeof copy->sha256);
  copy->signature = m->signature != NULL ? g_bytes_ref (m->signature) : NULL;
  return copy;
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

/* Puts @entry (a reference the caller keeps) in the table, unless another
 * thread opened the same content meanwhile or the cache was closed.
 * Returns a reference to the entry to use. */
static CanopyCacheEntry *
insert_entry (CanopyCache *cache, CanopyCacheEntry *entry, GError **error)
{
  g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);
  CanopyCacheEntry *raced = g_hash_table_lookup (cache->entries, entry->manifest->content_id);

  if (raced != NULL)
    return canopy_cache_entry_ref (raced);
  if (cache->closed)
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CLOSED,
                   _("The cache is closed: the agent is stopping"));
      return NULL;
    }
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

CanopyCacheEntry *
canopy_cache_acquire_entry (CanopyCache *cache, const CanopyManifest *manifest, GError **error)
{
  g_autoptr (CanopyCacheEntry) entry = lookup_ref (cache, manifest->content_id);

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
  entry->manifest = copy_manifest (manifest);
  entry->path = g_build_filename (cache->directory, manifest->content_id, NULL);
  entry->have = g_malloc0 (canopy_manifest_get_n_chunks (manifest) / 8 + 1);
  if (g_mkdir_with_parents (entry->path, 0700) != 0)
    {
      set_io_error (error, _("create the cache directory"), entry->path, errno);
      return NULL;
    }
  if (!save_manifest (entry, error))
    return NULL;
  touch (entry->path);
  load_chunks (entry);
  return insert_entry (cache, entry, error);
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
  g_autofree char *path = NULL;
  g_autoptr (GError) local_error = NULL;

  if (!canopy_manifest_verify_chunk (entry->manifest, index, data, length))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT,
                   _("Chunk %u of \"%s\" does not match its manifest; it was not stored"),
                   index, entry->manifest->name);
      return FALSE;
    }
  if (canopy_cache_entry_has_chunk (entry, index))
    return TRUE;

  /* Written unlocked: two threads storing the same chunk rename the same
   * verified bytes into place, and only one of them counts it. Not flushed
   * to disk: a restarted agent checks every chunk file again (see
   * load_chunks()), so one a crash damaged is simply fetched again, and
   * waiting for the disk chunk by chunk made it the bottleneck. */
  path = chunk_path (entry, index);
  if (!canopy_atomic_file_write_unsynced (path, data, length, 0600, &local_error))
    {
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
  {
    g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (entry->cache);

    /* An entry evicted or closed meanwhile is no longer in the size. */
    if (mark (entry, index) && !entry->removed)
      entry->cache->size += length;
  }
  return TRUE;
}

GMappedFile *
canopy_cache_entry_map_chunk (CanopyCacheEntry *entry, guint index, GError **error)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) local_error = NULL;
  GMappedFile *file;

  if (!canopy_cache_entry_has_chunk (entry, index))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_MISSING,
                   _("Chunk %u of \"%s\" is not in the cache"), index, entry->manifest->name);
      return NULL;
    }
  path = chunk_path (entry, index);
  file = g_mapped_file_new (path, FALSE, &local_error);
  if (file == NULL)
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_IO,
                   _("Cannot read chunk %u of \"%s\" from the cache: %s"), index,
                   entry->manifest->name, local_error->message);
      return NULL;
    }
  touch (entry->path);
  return file;
}

char *
canopy_cache_entry_build_path (const CanopyCacheEntry *entry, const char *name)
{
  return g_build_filename (entry->path, name, NULL);
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

gboolean
canopy_cache_entry_assemble (CanopyCacheEntry *entry, const char *destination, GError **error)
{
  g_autoptr (CanopyManifestHash) sum = canopy_manifest_hash_new ();
  g_autoptr (CanopyAtomicFile) out = NULL;
  g_autoptr (GError) local_error = NULL;
  guint n = canopy_manifest_get_n_chunks (entry->manifest);

  if (!canopy_cache_entry_is_complete (entry))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_MISSING,
                   _("\"%s\" is not complete: %u of %u chunks are in the cache"),
                   entry->manifest->name, canopy_cache_entry_count_chunks (entry), n);
      return FALSE;
    }
  out = canopy_atomic_file_begin (destination, 0644, &local_error);
  for (guint i = 0; out != NULL && i < n; i++)
    {
      g_autoptr (GMappedFile) chunk = canopy_cache_entry_map_chunk (entry, i, error);
      const guint8 *data;
      gsize length;

      if (chunk == NULL)
        return FALSE;
      data = (const guint8 *) g_mapped_file_get_contents (chunk);
      length = g_mapped_file_get_length (chunk);
      canopy_manifest_hash_update (sum, data, length);
      if (!canopy_atomic_file_append (out, data, length, &local_error))
        g_clear_pointer (&out, canopy_atomic_file_abort);
    }
  if (out == NULL)
    {
      set_assemble_error (entry, destination, local_error, error);
      return FALSE;
    }
  if (!canopy_manifest_hash_matches (sum, entry->manifest))
    {
      g_set_error (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT,
                   _("The assembled \"%s\" does not match the package's SHA-256; it was not "
                     "put in place"), entry->manifest->name);
      return FALSE;
    }
  if (!canopy_atomic_file_commit (g_steal_pointer (&out), &local_error))
    {
      set_assemble_error (entry, destination, local_error, error);
      return FALSE;
    }
  return TRUE;
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

guint
canopy_cache_evict (CanopyCache *cache, const char *const *keep)
{
  g_autoptr (GArray) candidates = g_array_new (FALSE, FALSE, sizeof (Candidate));
  g_autoptr (GDir) dir = g_dir_open (cache->directory, 0, NULL);
  const char *name;
  guint removed = 0;

  if (cache->quota == 0 || canopy_cache_get_size (cache) <= cache->quota || dir == NULL)
    return 0;
  g_array_set_clear_func (candidates, (GDestroyNotify) candidate_clear);
  while ((name = g_dir_read_name (dir)) != NULL)
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
  for (guint i = 0; i < candidates->len && canopy_cache_get_size (cache) > cache->quota; i++)
    {
      const Candidate *c = &g_array_index (candidates, Candidate, i);
      g_autofree char *path = g_build_filename (cache->directory, c->content_id, NULL);
      guint64 size = directory_size (path);
      g_autoptr (GMutexLocker) G_GNUC_UNUSED locker = cache_lock (cache);
      CanopyCacheEntry *entry = g_hash_table_lookup (cache->entries, c->content_id);

      /* A worker may still hold it; what it stores now is not counted. */
      if (entry != NULL)
        entry->removed = TRUE;
      g_hash_table_remove (cache->entries, c->content_id);
      remove_tree (path);
      cache->size -= MIN (size, cache->size);
      removed++;
    }
  return removed;
}
