/* Agent cache: only verified chunks are stored, a restart resumes from
 * them, damaged files are discarded, packages are assembled atomically,
 * the quota is kept, and a full disk loses nothing already stored. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "agent/cache.h"
#include "agent/install.h"
#include "agent/install-policy.h"
#include "lib/signing.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define CHUNK 4096

static guint8 *
make_content (gsize size, guint seed)
{
  guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) ((i + seed) * 2654435761u >> 11);
  return data;
}

static CanopyManifest *
build (const guint8 *data, gsize size)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data (data, size, NULL);

  return canopy_manifest_build (stream, "Package", "1.0", CHUNK, NULL, NULL);
}

static char *
data_path (const char *dir, const CanopyManifest *m)
{
  return g_build_filename (dir, m->content_id, "data", NULL);
}

/* Flips a byte of the content's data file, as a failing disk would. */
static void
damage (const char *dir, const CanopyManifest *m, gsize offset)
{
  g_autofree char *path = data_path (dir, m);

  canopy_test_damage_file (path, offset, G_MAXSIZE);
}

static void
test_store_verify_resume (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("cache");
  gsize size = 10 * CHUNK + 100;
  g_autofree guint8 *data = make_content (size, 1);
  g_autoptr (CanopyManifest) m = build (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = canopy_cache_open (dir, 0, &error);
  CanopyCacheEntry *entry = canopy_cache_open_entry (cache, m, &error);
  g_autofree guint8 *bad = g_memdup2 (data, CHUNK);
  g_autoptr (GBytes) bits = NULL;

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (canopy_cache_entry_store_chunk (entry, 0, data, CHUNK, &error));
  CU_ASSERT (canopy_cache_entry_store_chunk (entry, 3, data + 3 * CHUNK, CHUNK, &error));
  CU_ASSERT (canopy_cache_entry_store_chunk (entry, 10, data + 10 * CHUNK, 100, &error));
  CANOPY_ASSERT_NO_ERROR (error);

  bad[17] ^= 1;
  CU_ASSERT_FALSE (canopy_cache_entry_store_chunk (entry, 1, bad, CHUNK, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT));
  g_clear_error (&error);
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (entry, 1));
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), 3);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 2 * CHUNK + 100);
  bits = canopy_cache_entry_get_bitfield (entry);
  CU_ASSERT_EQUAL (g_bytes_get_size (bits), 2);
  CU_ASSERT_EQUAL (((const guint8 *) g_bytes_get_data (bits, NULL))[0], 0x09);
  CU_ASSERT_EQUAL (((const guint8 *) g_bytes_get_data (bits, NULL))[1], 0x04);

  /* A restarted agent finds its verified chunks again. */
  g_clear_pointer (&cache, canopy_cache_free);
  cache = canopy_cache_open (dir, 0, &error);
  /* Before the manifest is at hand, the size is what the disk holds:
   * whole blocks. */
  CU_ASSERT (canopy_cache_get_size (cache) >= 2 * CHUNK + 100);
  CU_ASSERT (canopy_cache_get_size (cache) <= 3 * CHUNK);
  entry = canopy_cache_open_entry (cache, m, &error);
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), 3);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 2 * CHUNK + 100);
  CU_ASSERT (canopy_cache_entry_has_chunk (entry, 3));

  /* A chunk damaged on disk is discarded when the cache is reopened. */
  damage (dir, m, 3 * CHUNK + 100);
  g_clear_pointer (&cache, canopy_cache_free);
  cache = canopy_cache_open (dir, 0, &error);
  entry = canopy_cache_open_entry (cache, m, &error);
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), 2);
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (entry, 3));
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), CHUNK + 100);
}

static void
fill (CanopyCacheEntry *entry, const guint8 *data)
{
  const CanopyManifest *m = canopy_cache_entry_get_manifest (entry);

  for (guint i = 0; i < canopy_manifest_get_n_chunks (m); i++)
    canopy_cache_entry_store_chunk (entry, i, data + (gsize) i * CHUNK,
                                    canopy_manifest_get_chunk_length (m, i), NULL);
}

static void
test_assemble (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("assemble");
  g_autofree char *dest = g_build_filename (dir, "package.msi", NULL);
  const char *allowed[] = { dir, NULL };
  gsize size = 5 * CHUNK + 7;
  g_autofree guint8 *data = make_content (size, 2);
  g_autoptr (CanopyManifest) m = build (data, size);
  g_autoptr (GError) error = NULL;
  g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
  g_autoptr (CanopyCache) cache = canopy_cache_open (cache_dir, 0, &error);
  CanopyCacheEntry *entry = canopy_cache_open_entry (cache, m, &error);
  g_autofree char *written = NULL;
  gsize written_len = 0;
  guint n = canopy_manifest_get_n_chunks (m);

  for (guint i = 0; i + 1 < n; i++)
    canopy_cache_entry_store_chunk (entry, i, data + (gsize) i * CHUNK, CHUNK, &error);
  CU_ASSERT_FALSE (canopy_install_assemble (entry, allowed, dest, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_MISSING));
  CU_ASSERT_FALSE (g_file_test (dest, G_FILE_TEST_EXISTS));
  g_clear_error (&error);

  canopy_cache_entry_store_chunk (entry, n - 1, data + (gsize) (n - 1) * CHUNK, 7, &error);
  CU_ASSERT (canopy_cache_entry_is_complete (entry));
  CU_ASSERT (canopy_install_assemble (entry, allowed, dest, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (g_file_get_contents (dest, &written, &written_len, NULL));
  CU_ASSERT_EQUAL (written_len, size);
  CU_ASSERT (memcmp (written, data, size) == 0);
  {
    g_autoptr (GBytes) chunk = canopy_cache_entry_read_chunk (entry, 2, &error);
    CU_ASSERT_EQUAL_FATAL (g_bytes_get_size (chunk), CHUNK);
    CU_ASSERT (memcmp (g_bytes_get_data (chunk, NULL), data + 2 * CHUNK, CHUNK) == 0);
  }
}

static void
assert_file_equals (const char *path, const guint8 *data, gsize size)
{
  g_autofree char *written = NULL;
  gsize written_len = 0;

  CU_ASSERT_FATAL (g_file_get_contents (path, &written, &written_len, NULL));
  CU_ASSERT_EQUAL (written_len, size);
  CU_ASSERT (written_len == size && memcmp (written, data, size) == 0);
}

/* What the install does once the package's SHA-256 is checked. */
static gboolean
copy_into (CanopyCacheEntry *entry, const char *dir, const char *dest, GError **error)
{
  const char *allowed[] = { dir, NULL };
  g_autofree char *name = NULL;
  int fd = canopy_install_policy_open_parent (allowed, dest, &name, error);
  gboolean ok = fd >= 0 && canopy_cache_entry_copy_at (entry, fd, name, error);

  if (fd >= 0)
    close (fd);
  return ok;
}

/* The package put in place is a file of its own (a reflink or a copy),
 * not a second name of the cache's: changing it in place leaves the
 * verified cache as it was. */
static void
test_copy (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("copy");
  g_autofree char *dest = g_build_filename (dir, "installed", "package.msi", NULL);
  g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
  gsize size = 6 * CHUNK + 9;
  g_autofree guint8 *data = make_content (size, 8);
  g_autoptr (CanopyManifest) m = build (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = canopy_cache_open (cache_dir, 0, &error);
  CanopyCacheEntry *entry = canopy_cache_open_entry (cache, m, &error);
  g_autofree char *cached = data_path (cache_dir, m);
  GStatBuf st, cached_st;

  fill (entry, data);
  CU_ASSERT (copy_into (entry, dir, dest, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  assert_file_equals (dest, data, size);
  CU_ASSERT_FATAL (g_stat (dest, &st) == 0 && g_stat (cached, &cached_st) == 0);
  CU_ASSERT_NOT_EQUAL (st.st_ino, cached_st.st_ino);
  CU_ASSERT_EQUAL (st.st_nlink, 1);
  CU_ASSERT_EQUAL (st.st_mode & 0777, 0644);

  /* Put in place again, over itself: no temporary name is left. */
  CU_ASSERT (copy_into (entry, dir, dest, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  {
    g_autofree char *installed = g_path_get_dirname (dest);
    g_autoptr (GDir) d = g_dir_open (installed, 0, NULL);
    guint files = 0;

    while (d != NULL && g_dir_read_name (d) != NULL)
      files++;
    CU_ASSERT_EQUAL (files, 1);
  }

  /* Someone edits the installed file in place: the cache is untouched,
   * every chunk still verifies, and the next copy is the package. */
  canopy_test_damage_file (dest, 2 * CHUNK + 5, G_MAXSIZE);
  CU_ASSERT_EQUAL (canopy_cache_entry_recheck (entry), 0);
  CU_ASSERT (canopy_cache_entry_is_complete (entry));
  CU_ASSERT (copy_into (entry, dir, dest, &error));
  assert_file_equals (dest, data, size);
}

/* Cache data changed on disk while the agent runs: assembling reports it,
 * and a recheck forgets exactly the damaged chunks, so they are fetched
 * again; once stored again the package is whole. */
static void
test_recheck (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("recheck");
  g_autofree char *dest = g_build_filename (dir, "package.msi", NULL);
  g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
  const char *allowed[] = { dir, NULL };
  gsize size = 6 * CHUNK + 9;
  g_autofree guint8 *data = make_content (size, 5);
  g_autoptr (CanopyManifest) m = build (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = canopy_cache_open (cache_dir, 0, &error);
  CanopyCacheEntry *entry = canopy_cache_open_entry (cache, m, &error);

  fill (entry, data);
  damage (cache_dir, m, 3 * CHUNK + 1);
  CU_ASSERT_FALSE (canopy_install_assemble (entry, allowed, dest, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_CORRUPT));
  g_clear_error (&error);
  CU_ASSERT_FALSE (g_file_test (dest, G_FILE_TEST_EXISTS));
  CU_ASSERT_EQUAL (canopy_cache_entry_recheck (entry), 1);
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (entry, 3));
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), canopy_manifest_get_n_chunks (m) - 1);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), size - CHUNK);
  fill (entry, data);
  CU_ASSERT (canopy_install_assemble (entry, allowed, dest, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  assert_file_equals (dest, data, size);
}

/* A package an earlier version put in place as a hard link to the cache,
 * then edited: the recheck lets go of the shared file whole, so chunks
 * fetched again never overwrite the user's edit. */
static void
test_recheck_shared (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("recheck-shared");
  g_autofree char *dest = g_build_filename (dir, "package.msi", NULL);
  g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
  gsize size = 4 * CHUNK + 3;
  g_autofree guint8 *data = make_content (size, 6);
  g_autoptr (CanopyManifest) m = build (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = canopy_cache_open (cache_dir, 0, &error);
  CanopyCacheEntry *entry = canopy_cache_open_entry (cache, m, &error);
  g_autofree char *cached = data_path (cache_dir, m);
  g_autofree char *edited = NULL;
  gsize edited_len = 0;

  fill (entry, data);
  g_assert (link (cached, dest) == 0);
  canopy_test_damage_file (dest, CHUNK + 2, G_MAXSIZE);
  g_assert (g_file_get_contents (dest, &edited, &edited_len, NULL));
  CU_ASSERT_EQUAL (canopy_cache_entry_recheck (entry), canopy_manifest_get_n_chunks (m));
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), 0);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 0);
  fill (entry, data);
  CU_ASSERT (canopy_cache_entry_is_complete (entry));
  assert_file_equals (dest, (const guint8 *) edited, edited_len);
  assert_file_equals (cached, data, size);
}

/* A cache left by a version that kept one file per chunk: the chunks that
 * verify are kept, the rest and the old partial package go. */
static void
test_legacy_layout (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("legacy");
  gsize size = 4 * CHUNK;
  g_autofree guint8 *data = make_content (size, 9);
  g_autoptr (CanopyManifest) m = build (data, size);
  g_autofree char *content_dir = g_build_filename (dir, m->content_id, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = NULL;
  CanopyCacheEntry *entry;

  g_assert (g_mkdir_with_parents (content_dir, 0700) == 0);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *path = g_strdup_printf ("%s/chunk-%08u", content_dir, i);
      g_autofree guint8 *chunk = g_memdup2 (data + (gsize) i * CHUNK, CHUNK);

      chunk[0] ^= i == 1; /* chunk 1 was damaged */
      g_assert (g_file_set_contents (path, (const char *) chunk, CHUNK, NULL));
    }
  {
    g_autofree char *partial = g_build_filename (content_dir, "install-d1", NULL);
    g_assert (g_file_set_contents (partial, "half", 4, NULL));
  }
  cache = canopy_cache_open (dir, 0, &error);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 3 * CHUNK);
  entry = canopy_cache_open_entry (cache, m, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), 2);
  CU_ASSERT (canopy_cache_entry_has_chunk (entry, 0));
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (entry, 1));
  CU_ASSERT (canopy_cache_entry_has_chunk (entry, 2));
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 2 * CHUNK);
  {
    g_autoptr (GDir) d = g_dir_open (content_dir, 0, NULL);
    const char *name;

    while (d != NULL && (name = g_dir_read_name (d)) != NULL)
      CU_ASSERT (g_str_equal (name, "data") || g_str_equal (name, "manifest"));
  }
}

/* Waits until @dir holds @n entries, all content directories. */
static gboolean
wait_only_contents (const char *dir, guint n)
{
  for (guint tries = 0; tries < 500; tries++)
    {
      g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
      const char *name;
      guint contents = 0, others = 0;

      while (d != NULL && (name = g_dir_read_name (d)) != NULL)
        {
          if (g_uuid_string_is_valid (name))
            contents++;
          else
            others++;
        }
      if (contents == n && others == 0)
        return TRUE;
      g_main_context_iteration (NULL, FALSE);
      g_usleep (10000);
    }
  return FALSE;
}

static void
test_quota_eviction (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("quota");
  gsize size = 8 * CHUNK;
  g_autofree guint8 *a = make_content (size, 3), *b = make_content (size, 4);
  g_autofree guint8 *c = make_content (size, 5);
  g_autoptr (CanopyManifest) ma = build (a, size), mb = build (b, size), mc = build (c, size);
  g_autofree guint8 *huge = make_content (30 * CHUNK, 6);
  g_autoptr (CanopyManifest) mhuge = build (huge, 30 * CHUNK);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = canopy_cache_open (dir, 20 * CHUNK, &error);
  const char *keep[] = { ma->content_id, NULL };

  fill (canopy_cache_open_entry (cache, ma, &error), a);
  g_usleep (20000);
  fill (canopy_cache_open_entry (cache, mb, &error), b);
  g_usleep (20000);
  fill (canopy_cache_open_entry (cache, mc, &error), c);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 24 * CHUNK);

  /* The oldest, a, is in use: b goes instead. */
  CU_ASSERT_EQUAL (canopy_cache_evict (cache, keep), 1);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 16 * CHUNK);
  CU_ASSERT_FALSE (g_file_test (mb->content_id, G_FILE_TEST_EXISTS));
  {
    g_autofree char *pb = g_build_filename (dir, mb->content_id, NULL);
    g_autofree char *pa = g_build_filename (dir, ma->content_id, NULL);
    CU_ASSERT_FALSE (g_file_test (pb, G_FILE_TEST_EXISTS));
    CU_ASSERT (g_file_test (pa, G_FILE_TEST_EXISTS));
  }
  CU_ASSERT_EQUAL (canopy_cache_evict (cache, keep), 0);
  /* The files go in a worker; then only the contents kept are left. */
  CU_ASSERT (wait_only_contents (dir, 2));

  CU_ASSERT_PTR_NULL (canopy_cache_open_entry (cache, mhuge, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_QUOTA));
  CANOPY_ASSERT_CONTAINS (error->message, "raise the cache quota");
}

/* An agent stopped before the worker deleted what it evicted: reopening
 * the cache deletes it, and it never counted in the size. */
static void
test_eviction_leftovers (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("leftovers");
  g_autofree char *key_path = g_build_filename (dir, "signing.pem", NULL);
  g_autofree char *cache_dir = g_build_filename (dir, "cache", NULL);
  g_autofree char *trash = g_build_filename (cache_dir, ".evicted-0123-4567", NULL);
  g_autofree char *trash_data = g_build_filename (trash, "data", NULL);
  g_autoptr (CanopySigningKey) signing = NULL;
  g_autoptr (GBytes) public_key = NULL;
  g_autoptr (CanopyVerifyKey) key = NULL;
  g_autoptr (CanopyCache) cache = NULL;
  g_autoptr (GError) error = NULL;

  g_assert (canopy_signing_key_generate_file (key_path, &error));
  signing = canopy_signing_key_load (key_path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  public_key = canopy_signing_key_get_public (signing);
  key = canopy_verify_key_new (public_key, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  g_assert (g_mkdir_with_parents (trash, 0700) == 0);
  g_assert (g_file_set_contents (trash_data, "left behind", -1, NULL));

  cache = canopy_cache_open (cache_dir, 0, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (canopy_cache_get_size (cache), 0);
  CU_ASSERT_EQUAL (canopy_cache_reopen (cache, key), 0);
  CU_ASSERT_FALSE (g_file_test (trash, G_FILE_TEST_EXISTS));
}

static guint
count_descriptors (void)
{
  g_autoptr (GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  guint n = 0;

  while (dir != NULL && g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* An agent keeps every content its quota allows, possibly thousands of
 * small ones: an open content must not hold a descriptor. */
static void
test_many_contents (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("many");
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = canopy_cache_open (dir, 0, &error);
  g_autoptr (GPtrArray) manifests = g_ptr_array_new_with_free_func (
    (GDestroyNotify) canopy_manifest_free);
  guint before = count_descriptors ();

  for (guint i = 0; i < 300; i++)
    {
      g_autofree guint8 *data = make_content (CHUNK + i, 100 + i);
      CanopyManifest *m = build (data, CHUNK + i);
      CanopyCacheEntry *entry = canopy_cache_open_entry (cache, m, &error);

      g_ptr_array_add (manifests, m);
      CU_ASSERT_PTR_NOT_NULL_FATAL (entry);
      fill (entry, data);
    }
  CU_ASSERT (count_descriptors () < before + 10);
  {
    g_autoptr (GPtrArray) entries = canopy_cache_get_entries (cache);
    CU_ASSERT_EQUAL (entries->len, 300);
  }
}

/* A real full disk: a small tmpfs mounted by the test (it runs as root). */
static void
test_full_disk (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("full");
  gsize size = 64 * CHUNK;
  g_autofree guint8 *data = make_content (size, 7);
  g_autoptr (CanopyManifest) m = build (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = NULL;
  CanopyCacheEntry *entry;
  guint stored = 0;
  gboolean failed = FALSE;

  if (mount ("tmpfs", dir, "tmpfs", 0, "size=64k") != 0)
    {
      canopy_test_skip ("cannot mount a small tmpfs here (%s); full-disk case not run",
              g_strerror (errno));
      return;
    }
  cache = canopy_cache_open (dir, 0, &error);
  entry = canopy_cache_open_entry (cache, m, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  for (guint i = 0; i < 64 && !failed; i++)
    {
      if (canopy_cache_entry_store_chunk (entry, i, data + (gsize) i * CHUNK, CHUNK, &error))
        stored++;
      else
        failed = TRUE;
    }
  CU_ASSERT (failed);
  /* Told apart from other disk errors: the agent waits for space. */
  CU_ASSERT (g_error_matches (error, CANOPY_CACHE_ERROR, CANOPY_CACHE_ERROR_NO_SPACE));
  if (error != NULL)
    CANOPY_ASSERT_CONTAINS (error->message, "is full");
  /* What was stored before the disk filled is intact and nothing half-written
   * was left behind. */
  g_clear_pointer (&cache, canopy_cache_free);
  cache = canopy_cache_open (dir, 0, NULL);
  entry = canopy_cache_open_entry (cache, m, NULL);
  CU_ASSERT_EQUAL (canopy_cache_entry_count_chunks (entry), stored);
  {
    g_autofree char *path = g_build_filename (dir, m->content_id, NULL);
    g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    guint tmp_files = 0;

    while (d != NULL && (name = g_dir_read_name (d)) != NULL)
      tmp_files += strstr (name, ".tmp") != NULL;
    CU_ASSERT_EQUAL (tmp_files, 0);
  }
  g_clear_pointer (&cache, canopy_cache_free);
  umount2 (dir, MNT_DETACH);
}

/* Pseudo-random bytes: content-defined chunking needs bytes that do not
 * repeat to find its cuts. */
static guint8 *
random_content (gsize size, guint64 seed)
{
  guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    {
      seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
      data[i] = (guint8) (seed >> 24);
    }
  return data;
}

static CanopyManifest *
build_cdc (const guint8 *data, gsize size, const char *version)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data (data, size, NULL);

  return canopy_manifest_build (stream, "Package", version, CANOPY_MANIFEST_CONTENT_DEFINED,
                                NULL, NULL);
}

/* Version 2 (64 KiB inserted near the start, a few bytes changed) takes
 * every chunk it shares with version 1 from the cache, verified; what it
 * lacks afterwards is exactly its chunks version 1 does not have, and a
 * damaged chunk of version 1 is not taken. */
static void
test_reuse_earlier_version (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("reuse");
  const gsize size = 12 * 1024 * 1024, insert = 64 * 1024;
  g_autofree guint8 *v1 = random_content (size, 11);
  g_autofree guint8 *extra = random_content (insert, 12);
  g_autofree guint8 *v2 = g_malloc (size + insert);
  g_autoptr (CanopyManifest) m1 = build_cdc (v1, size, "1");
  g_autoptr (CanopyManifest) m2 = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyCache) cache = canopy_cache_open (dir, 0, &error);
  CanopyCacheEntry *e1 = canopy_cache_open_entry (cache, m1, &error);
  CanopyCacheEntry *e2;
  g_autoptr (GHashTable) in_v1 = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                                        (GDestroyNotify) g_bytes_unref, NULL);
  guint64 reused = 0, expected_bytes = 0;
  guint expected = 0, taken;

  memcpy (v2, v1, 100000);
  memcpy (v2 + 100000, extra, insert);
  memcpy (v2 + 100000 + insert, v1 + 100000, size - 100000);
  v2[size / 2] ^= 1;
  v2[size - 10] ^= 1;
  m2 = build_cdc (v2, size + insert, "2");
  CANOPY_ASSERT_NO_ERROR (error);
  for (guint i = 0; i < canopy_manifest_get_n_chunks (m1); i++)
    {
      CU_ASSERT (canopy_cache_entry_store_chunk (
        e1, i, v1 + canopy_manifest_get_chunk_offset (m1, i),
        canopy_manifest_get_chunk_length (m1, i), &error));
      g_hash_table_add (in_v1, g_bytes_new (canopy_manifest_get_chunk_hash (m1, i),
                                            CANOPY_MANIFEST_HASH_SIZE));
    }
  for (guint i = 0; i < canopy_manifest_get_n_chunks (m2); i++)
    {
      g_autoptr (GBytes) hash = g_bytes_new (canopy_manifest_get_chunk_hash (m2, i),
                                             CANOPY_MANIFEST_HASH_SIZE);

      if (g_hash_table_contains (in_v1, hash))
        expected++, expected_bytes += canopy_manifest_get_chunk_length (m2, i);
    }
  CU_ASSERT (expected + 6 >= canopy_manifest_get_n_chunks (m2));

  /* A chunk of version 1 damaged on disk is read, fails, and is not used. */
  damage (dir, m1, canopy_manifest_get_chunk_offset (m1, 6) + 5);
  e2 = canopy_cache_open_entry (cache, m2, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  taken = canopy_cache_entry_reuse (e2, &reused);
  CU_ASSERT_EQUAL (taken, expected - 1);
  CU_ASSERT_EQUAL (reused, expected_bytes - canopy_manifest_get_chunk_length (m1, 6));
  CU_ASSERT_FALSE (canopy_cache_entry_has_chunk (e1, 6));
  for (guint i = 0; i < canopy_manifest_get_n_chunks (m2); i++)
    if (canopy_cache_entry_has_chunk (e2, i))
      {
        g_autoptr (GBytes) chunk = canopy_cache_entry_read_chunk (e2, i, &error);

        CANOPY_ASSERT_NO_ERROR (error);
        CU_ASSERT (memcmp (g_bytes_get_data (chunk, NULL),
                           v2 + canopy_manifest_get_chunk_offset (m2, i),
                           canopy_manifest_get_chunk_length (m2, i))
                   == 0);
      }
  /* Nothing left to take: a second pass takes nothing. */
  CU_ASSERT_EQUAL (canopy_cache_entry_reuse (e2, &reused), 0);
}

CANOPY_TEST_SUITE (cache, "cache", NULL, NULL,
                   { "chunks of an earlier version reused", test_reuse_earlier_version },
                   { "store, verify, resume", test_store_verify_resume },
                   { "assemble", test_assemble },
                   { "package copied, not linked", test_copy },
                   { "damaged chunks forgotten and fetched again", test_recheck },
                   { "a hard-linked package edited is let go", test_recheck_shared },
                   { "cache of an earlier version", test_legacy_layout },
                   { "quota and eviction", test_quota_eviction },
                   { "eviction leftovers deleted on reopen", test_eviction_leftovers },
                   { "many contents, no descriptor each", test_many_contents },
                   { "full disk", test_full_disk })
