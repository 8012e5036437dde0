/* Manifests: chunk hashes, signing with the installer's key, and refusal
 * of anything altered or signed by another server. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/manifest.h"
#include "server/setup.h"

#include <string.h>

static guint8 *
make_content (gsize size)
{
  guint8 *data = g_malloc (MAX (size, 1));

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (i * 2654435761u >> 13);
  return data;
}

static CanopyManifest *
build (const guint8 *data, gsize size, guint32 chunk_size)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data (data, size, NULL);
  g_autoptr (GError) error = NULL;
  CanopyManifest *manifest = canopy_manifest_build (stream, "Office Suite", "16.0", chunk_size,
                                                    NULL, &error);

  CANOPY_ASSERT_NO_ERROR (error);
  return manifest;
}

static void
test_chunk_hashes (void)
{
  const guint32 chunk = 4096;
  const gsize sizes[] = { 0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk + chunk / 2, 1000003 };

  for (gsize s = 0; s < G_N_ELEMENTS (sizes); s++)
    {
      g_autofree guint8 *data = make_content (sizes[s]);
      g_autoptr (CanopyManifest) m = build (data, sizes[s], chunk);
      guint n = canopy_manifest_get_n_chunks (m);
      g_autofree char *whole = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, sizes[s]);
      g_autofree char *recorded = NULL;
      GString *hex = g_string_new (NULL);

      CU_ASSERT_EQUAL (m->size, sizes[s]);
      CU_ASSERT_EQUAL (n, (sizes[s] + chunk - 1) / chunk);
      for (guint i = 0; i < n; i++)
        {
          const guint8 *at = data + (gsize) i * chunk;
          guint32 len = canopy_manifest_get_chunk_length (m, i);

          CU_ASSERT_EQUAL (len, MIN (chunk, sizes[s] - (gsize) i * chunk));
          CU_ASSERT (canopy_manifest_verify_chunk (m, i, at, len));
          if (len > 1)
            CU_ASSERT_FALSE (canopy_manifest_verify_chunk (m, i, at, len - 1));
        }
      CU_ASSERT_FALSE (canopy_manifest_verify_chunk (m, n, data, 1));
      for (gsize i = 0; i < CANOPY_MANIFEST_HASH_SIZE; i++)
        g_string_append_printf (hex, "%02x", m->sha256[i]);
      recorded = g_string_free (hex, FALSE);
      CU_ASSERT_STRING_EQUAL (recorded, whole);
    }
}

static void
test_corrupt_chunk_refused (void)
{
  g_autofree guint8 *data = make_content (10000);
  g_autoptr (CanopyManifest) m = build (data, 10000, 4096);

  data[5000] ^= 1;
  CU_ASSERT (canopy_manifest_verify_chunk (m, 0, data, 4096));
  CU_ASSERT_FALSE (canopy_manifest_verify_chunk (m, 1, data + 4096, 4096));
}

static CanopySigningKey *
make_key (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("signing");
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySetupResult) setup = canopy_setup_run (dir, FALSE, &error);
  g_autofree char *path = g_build_filename (dir, CANOPY_SETUP_SIGNING_KEY_FILE, NULL);
  CanopySigningKey *key;

  CANOPY_ASSERT_NO_ERROR (error);
  key = canopy_signing_key_load (path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  return key;
}

static void
test_sign_serialize_parse (void)
{
  g_autofree guint8 *data = make_content (300000);
  g_autoptr (CanopyManifest) m = build (data, 300000, 65536);
  g_autoptr (CanopySigningKey) key = make_key ();
  g_autoptr (CanopySigningKey) other = make_key ();
  g_autoptr (GBytes) pub = canopy_signing_key_get_public (key);
  g_autoptr (GBytes) other_pub = canopy_signing_key_get_public (other);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyVerifyKey) verify = canopy_verify_key_new (pub, &error);
  g_autoptr (CanopyVerifyKey) wrong = canopy_verify_key_new (other_pub, &error);
  g_autoptr (GBytes) wire = NULL;
  g_autoptr (CanopyManifest) back = NULL;
  g_autoptr (CanopyManifest) not_ours = NULL;

  CU_ASSERT_EQUAL (g_bytes_get_size (pub), 32);
  CU_ASSERT (canopy_manifest_sign (m, key, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  wire = canopy_manifest_serialize (m);
  back = canopy_manifest_parse (wire, verify, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_STRING_EQUAL (back->content_id, m->content_id);
  CU_ASSERT_STRING_EQUAL (back->name, "Office Suite");
  CU_ASSERT_EQUAL (back->size, 300000);
  CU_ASSERT (memcmp (back->sha256, m->sha256, 32) == 0);
  CU_ASSERT (canopy_manifest_verify_chunk (back, 4, data + 4 * 65536, 300000 - 4 * 65536));

  not_ours = canopy_manifest_parse (wire, wrong, &error);
  CU_ASSERT_PTR_NULL (not_ours);
  CU_ASSERT (g_error_matches (error, CANOPY_MANIFEST_ERROR, CANOPY_MANIFEST_ERROR_SIGNATURE));
  g_clear_error (&error);

  /* Any single altered byte is refused, never half-read. */
  for (gsize i = 0; i < g_bytes_get_size (wire); i += 7)
    {
      gsize size = g_bytes_get_size (wire);
      guint8 *copy = g_memdup2 (g_bytes_get_data (wire, NULL), size);
      g_autoptr (GBytes) altered = NULL;
      g_autoptr (CanopyManifest) refused = NULL;

      copy[i] ^= 0x20;
      altered = g_bytes_new_take (copy, size);
      refused = canopy_manifest_parse (altered, verify, &error);
      CU_ASSERT_PTR_NULL (refused);
      CU_ASSERT_PTR_NOT_NULL (error);
      g_clear_error (&error);
    }
}

static void
test_unsigned_refused (void)
{
  g_autofree guint8 *data = make_content (100);
  g_autoptr (CanopyManifest) m = build (data, 100, 4096);
  g_autoptr (CanopySigningKey) key = make_key ();
  g_autoptr (GBytes) pub = canopy_signing_key_get_public (key);
  g_autoptr (CanopyVerifyKey) verify = canopy_verify_key_new (pub, NULL);
  g_autoptr (GBytes) wire = canopy_manifest_serialize (m);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyManifest) back = canopy_manifest_parse (wire, verify, &error);

  CU_ASSERT_PTR_NULL (back);
  CU_ASSERT (g_error_matches (error, CANOPY_MANIFEST_ERROR, CANOPY_MANIFEST_ERROR_SIGNATURE));
}

/* A slow WAN link is given the time its chunks take, a fast one the base:
 * 1 MiB at 256 kbit/s takes 32.8 s. */
static void
test_link_allowance (void)
{
  const gint64 base = 30 * G_USEC_PER_SEC;
  const guint64 mib = 1024 * 1024;

  CU_ASSERT_EQUAL (canopy_link_allowance (base, mib, 0, 4), base);
  CU_ASSERT_EQUAL (canopy_link_allowance (base, mib, 100000000, 4), base);
  CU_ASSERT_EQUAL (canopy_link_allowance (base, mib, 256000, 1), 32768000);
  CU_ASSERT_EQUAL (canopy_link_allowance (base, mib, 256000, 4), 4 * 32768000);
  CU_ASSERT_EQUAL (canopy_link_allowance (10 * G_USEC_PER_SEC, mib, 1000000, 4), 4 * 8388608);
}

CANOPY_TEST_SUITE (manifest, "manifest", NULL, NULL,
                   { "link allowance", test_link_allowance },
                   { "chunk hashes", test_chunk_hashes },
                   { "corrupt chunk refused", test_corrupt_chunk_refused },
                   { "sign, serialize, parse", test_sign_serialize_parse },
                   { "unsigned manifest refused", test_unsigned_refused })
