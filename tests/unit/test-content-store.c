/* The content store's accounting without a server: what the quota lets
 * in before and during a copy, the bytes the offered copies take, and the
 * check that its directory can still be written. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/manifest.h"
#include "server/content-store.h"

#include <glib/gstdio.h>
#include <string.h>

#define QUOTA 1000

/* Copies @size bytes into @store as content @id the way a registration
 * does; returns the manifest to offer, or NULL with @error from the commit. */
static GBytes *
copy_in (CanopyContentStore *store, const char *id, gsize size, GError **error)
{
  g_autofree guint8 *data = g_malloc0 (size + 1);
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (CanopyManifest) manifest = NULL;
  CanopyContentStoreWriter *writer = canopy_content_store_begin (store, id, id, error);

  if (writer == NULL)
    return NULL;
  memset (data, id[0], size);
  stream = g_memory_input_stream_new_from_data (data, (gssize) size, NULL);
  manifest = canopy_manifest_build_full (stream, id, id, "1.0", 256,
                                         canopy_content_store_writer_sink, writer, NULL, NULL);
  g_assert (manifest != NULL);
  if (!canopy_content_store_commit (writer, error))
    return NULL;
  return canopy_manifest_serialize (manifest);
}

static void
test_quota (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("store");
  g_autoptr (CanopyContentStore) store = canopy_content_store_new (dir, QUOTA, "server", 2, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) a = NULL, b = NULL;

  CU_ASSERT_PTR_NOT_NULL_FATAL (store);
  CU_ASSERT_STRING_EQUAL (canopy_content_store_get_directory (store), dir);
  CU_ASSERT_EQUAL (canopy_content_store_get_quota (store), QUOTA);
  CU_ASSERT_EQUAL (canopy_content_store_get_upload_slots (store), 2);
  CU_ASSERT (canopy_content_store_check_fits (store, "x", QUOTA, NULL));
  CU_ASSERT_FALSE (canopy_content_store_check_fits (store, "x", QUOTA + 1, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CONTENT_STORE_ERROR,
                              CANOPY_CONTENT_STORE_ERROR_QUOTA));
  g_clear_error (&error);

  a = copy_in (store, "a", 600, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  /* A copy counts once it is offered, never twice. */
  CU_ASSERT_EQUAL (canopy_content_store_get_used (store), 0);
  CU_ASSERT (canopy_content_store_offer (store, a, NULL));
  CU_ASSERT (canopy_content_store_offer (store, a, NULL));
  CU_ASSERT_EQUAL (canopy_content_store_get_used (store), 600);
  CU_ASSERT_EQUAL (canopy_content_store_count_offered (store), 1);
  CU_ASSERT (canopy_content_store_check_fits (store, "b", 400, NULL));
  CU_ASSERT_FALSE (canopy_content_store_check_fits (store, "b", 401, NULL));

  /* What does not fit fails the copy with a sentence saying what to do. */
  b = copy_in (store, "b", 500, &error);
  CU_ASSERT_PTR_NULL (b);
  CU_ASSERT (g_error_matches (error, CANOPY_CONTENT_STORE_ERROR,
                              CANOPY_CONTENT_STORE_ERROR_QUOTA));
  CANOPY_ASSERT_CONTAINS (error != NULL ? error->message : NULL,
                          "\"b\" does not fit in what is left of the content store's quota");
  CANOPY_ASSERT_CONTAINS (error != NULL ? error->message : NULL, "run Publish Content");
  g_clear_error (&error);

  canopy_content_store_remove (store, "a");
  CU_ASSERT_EQUAL (canopy_content_store_get_used (store), 0);
  CU_ASSERT_EQUAL (canopy_content_store_count_offered (store), 0);
  CU_ASSERT (canopy_content_store_check_fits (store, "b", QUOTA, NULL));
}

static void
test_no_quota (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("store");
  g_autoptr (CanopyContentStore) store = canopy_content_store_new (dir, 0, "server", 1, NULL);

  CU_ASSERT_PTR_NOT_NULL_FATAL (store);
  CU_ASSERT (canopy_content_store_check_fits (store, "x", G_MAXUINT64, NULL));
}

static gboolean
holds_files (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);

  return d != NULL && g_dir_read_name (d) != NULL;
}

static void
test_directory (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("store");
  g_autofree char *moved = g_strconcat (dir, ".moved", NULL);
  g_autoptr (GError) error = NULL;

  CU_ASSERT (canopy_content_store_check_directory (dir, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  /* The probe leaves nothing behind. */
  CU_ASSERT_FALSE (holds_files (dir));

  g_assert (g_rename (dir, moved) == 0);
  CU_ASSERT_FALSE (canopy_content_store_check_directory (dir, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_CONTENT_STORE_ERROR,
                              CANOPY_CONTENT_STORE_ERROR_DIRECTORY));
  CANOPY_ASSERT_CONTAINS (error != NULL ? error->message : NULL,
                          "cannot write in its directory");
  CANOPY_ASSERT_CONTAINS (error != NULL ? error->message : NULL, dir);
  g_assert (g_rename (moved, dir) == 0);
}

CANOPY_TEST_SUITE (content_store_accounting, "content-store-accounting", NULL, NULL,
                   { "quota before and during a copy, bytes used", test_quota },
                   { "no quota: only the disk limits", test_no_quota },
                   { "directory check: writable, then gone", test_directory });
