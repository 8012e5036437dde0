/* Fuzz targets: a content manifest as an agent receives it (checked with
 * the server's key) and as the server re-reads it from its database (no
 * key), in either format (fixed-size or content-defined chunks). A
 * manifest accepted must be consistent and serialize unchanged. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"
#include "lib/manifest.h"

static void
check_manifest (const CanopyManifest *manifest, GBytes *input)
{
  g_autoptr (GBytes) again = canopy_manifest_serialize (manifest);
  guint n_chunks = canopy_manifest_get_n_chunks (manifest);
  guint64 total = 0;

  g_assert (manifest->chunk_size > 0);
  g_assert (g_bytes_get_size (manifest->chunk_hashes)
            == (gsize) n_chunks * CANOPY_MANIFEST_HASH_SIZE);
  for (guint i = 0; i < n_chunks; i++)
    {
      guint32 length = canopy_manifest_get_chunk_length (manifest, i);

      g_assert (length > 0 && length <= manifest->chunk_size);
      g_assert (canopy_manifest_get_chunk_offset (manifest, i) == total);
      total += length;
    }
  g_assert (total == manifest->size);
  g_assert (g_bytes_equal (input, again));
}

static gboolean
fuzz_manifest (const uint8_t *data, size_t size, const CanopyVerifyKey *key)
{
  g_autoptr (GBytes) bytes = g_bytes_new (data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyManifest) manifest = canopy_manifest_parse (bytes, key, &error);

  if (manifest == NULL)
    {
      g_assert (error != NULL);
      return FALSE;
    }
  g_assert (error == NULL);
  g_assert (key == NULL || manifest->signature != NULL);
  check_manifest (manifest, bytes);
  return TRUE;
}

gboolean
canopy_fuzz_manifest (const uint8_t *data, size_t size)
{
  return fuzz_manifest (data, size, NULL);
}

gboolean
canopy_fuzz_manifest_key (const uint8_t *data, size_t size)
{
  static CanopyVerifyKey *key;

  if (key == NULL)
    key = canopy_verify_key_new_from_base64 (CANOPY_FUZZ_PUBLIC_KEY, NULL);
  g_assert (key != NULL);
  return fuzz_manifest (data, size, key);
}
