/* Packages written as their chunks come: in any order, hashed in order,
 * put in place only whole and matching their SHA-256. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "agent/install.h"

#include <string.h>

#define CHUNK 4096
/* More chunks than the install keeps waiting in memory, so some are read
 * back from the partial file. */
#define N_CHUNKS 40

typedef struct {
  char *dir;
  char *partial;
  char *destination;
  guint8 *data;
  gsize size;
  CanopyManifest *manifest;
} Fixture;

static void
fixture_clear (Fixture *f)
{
  g_free (f->dir);
  g_free (f->partial);
  g_free (f->destination);
  g_free (f->data);
  canopy_manifest_free (f->manifest);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Fixture, fixture_clear)

static void
fixture_init (Fixture *f, const char *name)
{
  g_autoptr (GInputStream) stream = NULL;

  f->dir = canopy_test_make_tmpdir (name);
  f->partial = g_build_filename (f->dir, "partial", NULL);
  f->destination = g_build_filename (f->dir, "installed", "package.bin", NULL);
  f->size = N_CHUNKS * CHUNK - 100;
  f->data = g_malloc (f->size);
  for (gsize i = 0; i < f->size; i++)
    f->data[i] = (guint8) (i * 2654435761u >> 13);
  stream = g_memory_input_stream_new_from_data (f->data, f->size, NULL);
  f->manifest = canopy_manifest_build (stream, "Package", "1.0", CHUNK, NULL, NULL);
}

static void
add (CanopyInstall *install, const Fixture *f, guint index)
{
  g_autoptr (GBytes) chunk = g_bytes_new (f->data + (gsize) index * CHUNK,
                                          canopy_manifest_get_chunk_length (f->manifest, index));

  canopy_install_add_chunk (install, index, chunk);
}

static void
test_any_order (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *written = NULL;
  gsize written_len = 0;

  fixture_init (&f, "install-order");
  install = canopy_install_new (f.manifest, f.partial, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  /* Backwards, then one twice: nothing can be hashed until chunk 0. */
  for (guint i = N_CHUNKS; i-- > 1;)
    add (install, &f, i);
  add (install, &f, 7);
  add (install, &f, 0);
  CU_ASSERT (canopy_install_commit (install, f.destination, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (g_file_get_contents (f.destination, &written, &written_len, NULL));
  CU_ASSERT_EQUAL (written_len, f.size);
  CU_ASSERT (written != NULL && memcmp (written, f.data, f.size) == 0);
  CU_ASSERT_FALSE (g_file_test (f.partial, G_FILE_TEST_EXISTS));
}

static void
test_incomplete (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autoptr (GError) error = NULL;

  fixture_init (&f, "install-incomplete");
  install = canopy_install_new (f.manifest, f.partial, &error);
  for (guint i = 0; i + 1 < N_CHUNKS; i++)
    add (install, &f, i);
  CU_ASSERT_FALSE (canopy_install_commit (install, f.destination, &error));
  CU_ASSERT (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_FAILED));
  CU_ASSERT_FALSE (g_file_test (f.destination, G_FILE_TEST_EXISTS));
  g_clear_pointer (&install, canopy_install_free);
  CU_ASSERT_FALSE (g_file_test (f.partial, G_FILE_TEST_EXISTS));
}

static void
test_mismatch (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (CanopyInstall) install = NULL;
  g_autoptr (GError) error = NULL;

  fixture_init (&f, "install-mismatch");
  /* Chunks that match their hashes but not the package's: a manifest
   * inconsistent with itself, or a partial file changed on disk. */
  f.manifest->sha256[0] ^= 1;
  install = canopy_install_new (f.manifest, f.partial, &error);
  for (guint i = 0; i < N_CHUNKS; i++)
    add (install, &f, i);
  CU_ASSERT_FALSE (canopy_install_commit (install, f.destination, &error));
  CU_ASSERT (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_FAILED));
  CU_ASSERT_FALSE (g_file_test (f.destination, G_FILE_TEST_EXISTS));
}

static void
test_unwritable (void)
{
  g_auto (Fixture) f = { 0 };
  g_autoptr (GError) error = NULL;
  g_autofree char *missing = NULL;

  fixture_init (&f, "install-unwritable");
  missing = g_build_filename (f.dir, "no", "such", "partial", NULL);
  CU_ASSERT_PTR_NULL (canopy_install_new (f.manifest, missing, &error));
  CU_ASSERT (g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT));
}

CANOPY_TEST_SUITE (install, "install", NULL, NULL,
                   { "chunks in any order", test_any_order },
                   { "incomplete package not put in place", test_incomplete },
                   { "package SHA-256 checked", test_mismatch },
                   { "partial file that cannot be created", test_unwritable })
