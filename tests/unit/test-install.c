/* Packages put in place from the cache as their chunks come: in any
 * order, hashed in order, put in place only whole and matching their
 * SHA-256. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "agent/install.h"

#include <glib/gstdio.h>
#include <string.h>

#define CHUNK 4096
/* More chunks than the install keeps waiting in memory, so some are read
 * back from the cache. */
#define N_CHUNKS 40

typedef struct {
  char *dir;
  CanopyCache *cache;
  CanopyCacheEntry *entry;
  char *destination;
  guint8 *data;
  gsize size;
  CanopyManifest *manifest;
} Fixture;

static void
fixture_clear (Fixture *f)
{
  g_free (f->dir);
  canopy_cache_free (f->cache);
  g_free (f->destination);
  g_free (f->data);
  canopy_manifest_free (f->manifest);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Fixture, fixture_clear)

static void
fixture_init (Fixture *f, const char *name)
{
  g_autoptr (GInputStream) stream = NULL;
  g_autofree char *cache_dir = NULL;

  f->dir = canopy_test_make_tmpdir (name);
  f->destination = g_build_filename (f->dir, "installed", "package.bin", NULL);
  f->size = N_CHUNKS * CHUNK - 100;
  f->data = g_malloc (f->size);
  for (gsize i = 0; i < f->size; i++)
    f->data[i] = (guint8) (i * 2654435761u >> 13);
  stream = g_memory_input_stream_new_from_data (f->data, f->size, NULL);
  f->manifest = canopy_manifest_build (stream, "Package", "1.0", CHUNK, NULL, NULL);
  cache_dir = g_build_filename (f->dir, "cache", NULL);
  f->cache = canopy_cache_open (cache_dir, 0, NULL);
  f->entry = canopy_cache_open_entry (f->cache, f->manifest, NULL);
  g_assert (f->entry != NULL);
}

static GBytes *
chunk_bytes (const Fixture *f, guint index)
{
  return g_bytes_new (f->data + (gsize) index * CHUNK,
                      canopy_manifest_get_chunk_length (f->manifest, index));
}

static void
store (const Fixture *f, guint index)
{
  g_autoptr (GBytes) chunk = chunk_bytes (f, index);

  g_assert (canopy_cache_entry_store_chunk (f->entry, index, g_bytes_get_data (chunk, NULL),
                                            g_bytes_get_size (chunk), NULL));
}

/* What the fetcher does with each chunk: stores it, then adds it. */
static void
add (CanopyInstall *install, const Fixture *f, guint index)
{
  g_autoptr (GBytes) chunk = chunk_bytes (f, index);

  store (f, index);
  canopy_install_add_chunk (install, index, chunk);
}

/* Puts the package under @f's directory, the only one allowed. */
static gboolean
commit (CanopyInstall *install, const Fixture *f, const char *destination, GError **error)
{
  const char *allowed[] = { f->dir, NULL };

  return canopy_install_commit (install, allowed, destination, error);
}

/* An install that is to put the package at @destination. */
static CanopyInstall *
install_new (const Fixture *f, const char *destination)
{
  const char *allowed[] = { f->dir, NULL };

  return canopy_install_new (f->entry, allowed, destination);
}

/* The files written beside @destination and not (yet) renamed to it:
 * how many, and the size of the last. */
static guint
count_copies (const char *destination, goffset *size)
{
  g_autofree char *parent = g_path_get_dirname (destination);
  g_autofree char *base = g_path_get_basename (destination);
  g_autofree char *prefix = g_strdup_printf (".%s.canopy-", base);
  g_autoptr (GDir) dir = g_dir_open (parent, 0, NULL);
  const char *name;
  guint n = 0;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, prefix))
      {
        g_autofree char *path = g_build_filename (parent, name, NULL);
        g_autoptr (GFile) file = g_file_new_for_path (path);
        g_autoptr (GFileInfo) info = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                        G_FILE_QUERY_INFO_NONE, NULL, NULL);

        *size = info != NULL ? g_file_info_get_size (info) : -1;
        n++;
      }
  return n;
}

static void
assert_put_in_place (CanopyInstall *install, const Fixture *f)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *written = NULL;
  gsize written_len = 0;

  CU_ASSERT (commit (install, f, f->destination, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (g_file_get_contents (f->destination, &written, &written_len, NULL));
  CU_ASSERT_EQUAL (written_len, f->size);
  CU_ASSERT (written != NULL && memcmp (written, f->data, f->size) == 0);
}

/* An install given up (stopped, refused, failed) leaves nothing beside
 * the destination. */
static void
assert_no_copy_after (CanopyInstall *install, const char *destination)
{
  goffset size = 0;

  canopy_install_free (install);
  CU_ASSERT_EQUAL (count_copies (destination, &size), 0);
}

static void
test_any_order (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;

  fixture_init (&f, "install-order");
  install = install_new (&f, f.destination);
  /* Backwards, then one twice: nothing can be hashed until chunk 0. */
  for (guint i = N_CHUNKS; i-- > 1;)
    add (install, &f, i);
  add (install, &f, 7);
  add (install, &f, 0);
  assert_put_in_place (install, &f);
}

/* A restarted agent: the chunks already in the cache are read back and
 * hashed, then the rest come. */
static void
test_resumed (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;

  fixture_init (&f, "install-resumed");
  for (guint i = 0; i < N_CHUNKS; i += 2)
    store (&f, i);
  install = install_new (&f, f.destination);
  for (guint i = 1; i < N_CHUNKS; i += 2)
    add (install, &f, i);
  assert_put_in_place (install, &f);
}

static void
test_incomplete (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autoptr (GError) error = NULL;

  fixture_init (&f, "install-incomplete");
  install = install_new (&f, f.destination);
  for (guint i = 0; i + 1 < N_CHUNKS; i++)
    add (install, &f, i);
  CU_ASSERT_FALSE (commit (install, &f, f.destination, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_INSTALL_ERROR, CANOPY_INSTALL_ERROR_INCOMPLETE));
  CANOPY_ASSERT_CONTAINS (error->message, "39 of 40 chunks");
  CU_ASSERT_FALSE (g_file_test (f.destination, G_FILE_TEST_EXISTS));
  assert_no_copy_after (g_steal_pointer (&install), f.destination);
}

static void
test_mismatch (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autoptr (GError) error = NULL;

  fixture_init (&f, "install-mismatch");
  /* Chunks that match their hashes but not the package's: a manifest
   * inconsistent with itself. */
  f.manifest->sha256[0] ^= 1;
  g_clear_pointer (&f.cache, canopy_cache_free);
  {
    g_autofree char *cache_dir = g_build_filename (f.dir, "cache", NULL);
    f.cache = canopy_cache_open (cache_dir, 0, NULL);
    f.entry = canopy_cache_open_entry (f.cache, f.manifest, NULL);
  }
  install = install_new (&f, f.destination);
  for (guint i = 0; i < N_CHUNKS; i++)
    add (install, &f, i);
  CU_ASSERT_FALSE (commit (install, &f, f.destination, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_INSTALL_ERROR, CANOPY_INSTALL_ERROR_MISMATCH));
  CU_ASSERT_FALSE (g_file_test (f.destination, G_FILE_TEST_EXISTS));
  assert_no_copy_after (g_steal_pointer (&install), f.destination);
}

/* A destination below a file: nothing is put in place, the error names
 * it, and the cache still holds the package. */
static void
test_unwritable (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *file = NULL;
  g_autofree char *below = NULL;

  fixture_init (&f, "install-unwritable");
  file = g_build_filename (f.dir, "file", NULL);
  below = g_build_filename (file, "package.bin", NULL);
  g_assert (g_file_set_contents (file, "x", 1, NULL));
  install = install_new (&f, below);
  for (guint i = 0; i < N_CHUNKS; i++)
    add (install, &f, i);
  CU_ASSERT_FALSE (commit (install, &f, below, &error));
  CU_ASSERT_PTR_NOT_NULL_FATAL (error);
  CANOPY_ASSERT_CONTAINS (error->message, below);
  CANOPY_ASSERT_CONTAINS (error->message, "\"file\" is a symbolic link or not a directory");
  CU_ASSERT (canopy_cache_entry_is_complete (f.entry));
}

/* Chunks in order are written beside the destination as they come, so
 * that putting the package in place is a rename, with nothing left
 * beside it. */
static void
test_copied_as_they_come (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autofree char *installed = NULL;
  g_autofree char *stale = NULL;
  g_autofree char *users = NULL;
  goffset size = 0;

  fixture_init (&f, "install-as-they-come");
  /* What an agent killed while copying left, and a file of the user's
   * whose name is only alike. */
  installed = g_path_get_dirname (f.destination);
  stale = g_build_filename (installed, ".package.bin.canopy-0badf00d", NULL);
  users = g_build_filename (installed, ".package.bin.canopy-notes", NULL);
  g_assert (g_mkdir_with_parents (installed, 0755) == 0);
  g_assert (g_file_set_contents (stale, "half", -1, NULL));
  g_assert (g_file_set_contents (users, "mine", -1, NULL));
  install = install_new (&f, f.destination);
  CU_ASSERT_FALSE (g_file_test (stale, G_FILE_TEST_EXISTS));
  CU_ASSERT (g_file_test (users, G_FILE_TEST_EXISTS));
  g_assert (g_unlink (users) == 0);
  CU_ASSERT_EQUAL (count_copies (f.destination, &size), 1);
  for (guint i = 0; i < N_CHUNKS; i++)
    add (install, &f, i);
  CU_ASSERT_EQUAL (count_copies (f.destination, &size), 1);
  CU_ASSERT_EQUAL (size, (goffset) f.size);
  assert_put_in_place (install, &f);
  CU_ASSERT_EQUAL (count_copies (f.destination, &size), 0);
}

/* The server moved the package while it came: the copy begun beside the
 * old destination goes, and the package is put at the new one. */
static void
test_destination_moved (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autofree char *old = NULL;
  goffset size = 0;

  fixture_init (&f, "install-moved");
  old = g_build_filename (f.dir, "old", "package.bin", NULL);
  install = install_new (&f, old);
  CU_ASSERT_EQUAL (count_copies (old, &size), 1);
  for (guint i = 0; i < N_CHUNKS; i++)
    add (install, &f, i);
  assert_put_in_place (install, &f);
  CU_ASSERT_EQUAL (count_copies (old, &size), 0);
  CU_ASSERT_FALSE (g_file_test (old, G_FILE_TEST_EXISTS));
}

CANOPY_TEST_SUITE (install, "install", NULL, NULL,
                   { "chunks in any order", test_any_order },
                   { "resumed from the cache", test_resumed },
                   { "incomplete package not put in place", test_incomplete },
                   { "package SHA-256 checked", test_mismatch },
                   { "destination that cannot be created", test_unwritable },
                   { "copied beside the destination as the chunks come",
                     test_copied_as_they_come },
                   { "destination moved while the chunks came", test_destination_moved })
