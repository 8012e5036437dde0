/* The agent's chunk cache: verified chunks on disk, counted only once
 * whole, checked again after a restart, evicted by age beyond a size quota. Opening,
 * storing, reading and assembling block: call them from worker threads; the lookups
 * are cheap and thread-safe, for the main loop. Workers hold references
 * (canopy_cache_entry_ref()) so the agent may stop while they run. */
#pragma once

#include <gio/gio.h>
#include "lib/manifest.h"

G_BEGIN_DECLS

#define CANOPY_CACHE_ERROR (canopy_cache_error_quark ())
GQuark canopy_cache_error_quark (void);

typedef enum {
  CANOPY_CACHE_ERROR_IO,       /* the disk refused (full, read-only, permissions) */
  CANOPY_CACHE_ERROR_CORRUPT,  /* data does not match the manifest */
  CANOPY_CACHE_ERROR_MISSING,  /* a chunk that is not in the cache */
  CANOPY_CACHE_ERROR_QUOTA,    /* the content alone is larger than the quota */
  CANOPY_CACHE_ERROR_NO_SPACE, /* the disk is full: worth trying again once space is freed */
  CANOPY_CACHE_ERROR_CLOSED,   /* canopy_cache_free() was called: the agent is stopping */
} CanopyCacheError;

typedef struct _CanopyCache CanopyCache;
typedef struct _CanopyCacheEntry CanopyCacheEntry;

/**
 * canopy_cache_open:
 * @directory: created owner-only if missing
 * @quota: bytes the cache may hold; 0 for no limit
 */
CanopyCache *canopy_cache_open (const char *directory, guint64 quota, GError **error);

/* Takes a reference for a worker that may outlive the cache's owner. */
CanopyCache *canopy_cache_ref (CanopyCache *cache);
void canopy_cache_unref (CanopyCache *cache);

/**
 * canopy_cache_free:
 *
 * Closes the cache and drops the owner's reference: entries are forgotten
 * and no new one opens, but workers still holding a reference to the cache
 * or an entry finish safely; the memory goes with the last reference.
 */
void canopy_cache_free (CanopyCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyCache, canopy_cache_free)

/** canopy_cache_get_size: Returns: bytes of verified chunks held. */
guint64 canopy_cache_get_size (const CanopyCache *cache);

/**
 * canopy_cache_open_entry:
 * @manifest: a verified manifest (the cache keeps its own copy on disk)
 *
 * Opens the content's entry, creating it if new. Chunks left by an earlier
 * run are checked against the manifest again; those that fail are deleted.
 *
 * Returns: (transfer full): the entry; it keeps the cache alive.
 */
CanopyCacheEntry *canopy_cache_acquire_entry (CanopyCache *cache, const CanopyManifest *manifest,
                                              GError **error);

CanopyCacheEntry *canopy_cache_entry_ref (CanopyCacheEntry *entry);
void canopy_cache_entry_unref (CanopyCacheEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyCacheEntry, canopy_cache_entry_unref)

/**
 * canopy_cache_open_entry:
 *
 * canopy_cache_acquire_entry() for the thread that also evicts and frees
 * the cache (the main loop, or a test): the entry stays valid until then.
 *
 * Returns: (transfer none): the entry, owned by @cache.
 */
CanopyCacheEntry *canopy_cache_open_entry (CanopyCache *cache, const CanopyManifest *manifest,
                                           GError **error);

/**
 * canopy_cache_lookup_entry:
 *
 * Returns: (transfer none) (nullable): the entry of @content_id if it is
 *   open.
 */
CanopyCacheEntry *canopy_cache_lookup_entry (CanopyCache *cache, const char *content_id);

/**
 * canopy_cache_reopen:
 * @key: the server's content-signing key
 *
 * Opens every content an earlier run left, from the signed manifest the
 * cache keeps beside its chunks. Contents whose manifest does not verify
 * with @key are left closed.
 *
 * Hashes every chunk it finds: it blocks, so the main loop uses
 * canopy_cache_reopen_async().
 *
 * Returns: how many contents were opened.
 */
guint canopy_cache_reopen (CanopyCache *cache, const CanopyVerifyKey *key);

/**
 * canopy_cache_reopen_async:
 * @public_key: the server's content-signing public key (a copy is kept)
 *
 * canopy_cache_reopen() in a worker thread; @callback runs on the
 * thread-default main context. The task keeps @cache alive.
 */
void canopy_cache_reopen_async (CanopyCache *cache, GBytes *public_key,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);

/**
 * canopy_cache_reopen_finish:
 *
 * Returns: (transfer full): the content IDs opened (maybe none), or %NULL
 *   with @error set (cancelled, or a key that cannot be used).
 */
GStrv canopy_cache_reopen_finish (GAsyncResult *result, GError **error);

/** canopy_cache_get_entries: Returns: (transfer container): every open entry. */
GPtrArray *canopy_cache_get_entries (CanopyCache *cache);

const CanopyManifest *canopy_cache_entry_get_manifest (const CanopyCacheEntry *entry);
gboolean canopy_cache_entry_has_chunk (const CanopyCacheEntry *entry, guint index);
guint canopy_cache_entry_count_chunks (const CanopyCacheEntry *entry);
gboolean canopy_cache_entry_is_complete (const CanopyCacheEntry *entry);

/**
 * canopy_cache_entry_get_bitfield:
 *
 * Returns: (transfer full): bit i of byte i/8 (least significant first, as
 *   the wire's have) set when chunk i is held.
 */
GBytes *canopy_cache_entry_get_bitfield (const CanopyCacheEntry *entry);

/**
 * canopy_cache_entry_store_chunk:
 *
 * Verifies @data against the manifest, then writes it at its place in
 * the content's data file (not flushed, since a restart checks it again).
 * Nothing is stored unless it verifies.
 */
gboolean canopy_cache_entry_store_chunk (CanopyCacheEntry *entry, guint index,
                                         const guint8 *data, gsize length, GError **error);

/**
 * canopy_cache_entry_read_chunk:
 *
 * Returns: (transfer full): the chunk, read from disk.
 */
GBytes *canopy_cache_entry_read_chunk (CanopyCacheEntry *entry, guint index, GError **error);

/**
 * canopy_cache_entry_read_verified_chunk:
 * @buffer: (out caller-allocates): at least the chunk's length
 *   (canopy_manifest_get_chunk_length()) bytes
 *
 * Reads chunk @index into @buffer and checks it against the manifest, for
 * serving it to a peer. Blocks on the disk and hashes: call it from a
 * worker thread. A chunk that cannot be read, or no longer verifies, is
 * dropped from the cache (it no longer counts as held nor is announced,
 * so it is fetched again) unless the error was a passing shortage (too
 * many open files); @error says which chunk, which file and what to do.
 *
 * Returns: %TRUE when @buffer holds the verified chunk; %FALSE with
 *   %CANOPY_CACHE_ERROR_MISSING (not held), _IO or _CORRUPT.
 */
gboolean canopy_cache_entry_read_verified_chunk (CanopyCacheEntry *entry, guint index,
                                                 guint8 *buffer, GError **error);

/**
 * canopy_cache_entry_reuse:
 * @entry: a content being fetched
 * @reused_bytes: (out): the bytes of the chunks it took
 *
 * Fills the chunks @entry lacks from any other content of the cache that
 * holds a chunk of the same SHA-256 (an earlier version, another package),
 * so only chunks no content holds are fetched. Each is read and verified
 * against the other content's manifest, then against @entry's as it is
 * stored. Blocks on the disk and hashes: call it from a worker thread.
 *
 * Returns: how many chunks it took.
 */
guint canopy_cache_entry_reuse (CanopyCacheEntry *entry, guint64 *reused_bytes);

/**
 * canopy_cache_find_chunk:
 * @hash: a chunk's SHA-256
 * @index: (out): its index in the content returned
 *
 * Looks for a verified chunk of SHA-256 @hash in any open content, so a
 * chunk is served to office peers whichever content they want it for.
 *
 * Returns: (transfer full) (nullable): the content holding it, or %NULL.
 */
CanopyCacheEntry *canopy_cache_find_chunk (CanopyCache *cache, const guint8 *hash, guint *index);

/**
 * canopy_cache_hold_hashes:
 * @hashes: SHA-256s, 32 bytes each, back to back
 *
 * Returns: (transfer full): a bitfield over @hashes (bit i of byte i/8,
 *   least significant first): set when some open content holds a verified
 *   chunk of that SHA-256.
 */
GBytes *canopy_cache_hold_hashes (CanopyCache *cache, GBytes *hashes);

/**
 * canopy_cache_entry_copy_at:
 * @dirfd: the destination's directory, opened by the install policy
 * @name: the package's file name in it
 *
 * Puts a copy of the complete content at @name: a reflink where the file
 * system can (no extra space), else an in-kernel copy; written beside it,
 * flushed and renamed into place. The caller has checked the package's
 * SHA-256 (see install.h). Never a hard link: an installed file changed
 * in place must not change the cache.
 */
gboolean canopy_cache_entry_copy_at (CanopyCacheEntry *entry, int dirfd, const char *name,
                                     GError **error);

/**
 * canopy_cache_entry_open_copy_at:
 * @dirfd: the destination's directory, opened by the install policy
 * @name: the package's file name in it
 * @tmp: (out) (transfer full): the name of the file opened beside @name
 *
 * Opens a file beside @name for a copy of the content written in order as
 * its chunks come (see install.h), finished with
 * canopy_cache_entry_commit_copy_at(). Blocks.
 *
 * Returns: its descriptor; -1 without @error where the cache's file can
 *   be cloned into @dirfd (canopy_cache_entry_copy_at() costs nothing
 *   there), -1 with @error when the file cannot be made or its space
 *   (the content's size) cannot be reserved.
 */
int canopy_cache_entry_open_copy_at (CanopyCacheEntry *entry, int dirfd, const char *name,
                                     char **tmp, GError **error);

/**
 * canopy_cache_entry_commit_copy_at:
 * @fd: (transfer full): the copy's descriptor, from
 *   canopy_cache_entry_open_copy_at(), holding the whole package
 *
 * Flushes the copy and renames it to @name; on failure the copy is
 * removed and @error says why, as canopy_cache_entry_copy_at() does.
 */
gboolean canopy_cache_entry_commit_copy_at (CanopyCacheEntry *entry, int dirfd, int fd,
                                            const char *tmp, const char *name, GError **error);

/**
 * canopy_cache_entry_assemble_at:
 *
 * Copies the package chunk by chunk next to @name, checks its SHA-256
 * against the manifest, and renames it into place.
 *
 * Returns: %FALSE with CANOPY_CACHE_ERROR_CORRUPT when the cache's data no
 *   longer makes the package (see canopy_cache_entry_recheck()).
 */
gboolean canopy_cache_entry_assemble_at (CanopyCacheEntry *entry, int dirfd, const char *name,
                                         GError **error);

/**
 * canopy_cache_entry_recheck:
 *
 * Verifies every held chunk again and forgets those that no longer match
 * the manifest (changed on disk since they were stored), so they are
 * fetched again instead of failing every later deployment. Blocks.
 *
 * Returns: how many chunks were forgotten.
 */
guint canopy_cache_entry_recheck (CanopyCacheEntry *entry);

/**
 * canopy_cache_evict:
 * @keep: (nullable): content IDs in use, never evicted
 *
 * Removes the least recently used contents until the cache is within its
 * quota. Their directories are renamed out of the way here and deleted by
 * a worker thread, so the main loop does not wait for large files to go;
 * what a stopped agent left is deleted by canopy_cache_reopen().
 *
 * Returns: how many contents were removed.
 */
guint canopy_cache_evict (CanopyCache *cache, const char *const *keep);

/**
 * canopy_cache_expire:
 * @max_age_us: how long a content may go unused (not fetched, served or
 *   installed from)
 * @keep: (nullable): content IDs in use, never removed
 *
 * Removes the contents unused for longer than @max_age_us, as
 * canopy_cache_evict() removes them.
 *
 * Returns: how many contents were removed.
 */
guint canopy_cache_expire (CanopyCache *cache, gint64 max_age_us, const char *const *keep);

G_END_DECLS
