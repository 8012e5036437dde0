/* Content-defined chunking and the manifests built with it: cuts depend
 * on the bytes only, sizes stay in bounds, an insertion changes only the
 * chunks around it, and format 2 manifests round-trip while format 1 ones
 * (content registered before) stay readable. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/chunker.h"
#include "lib/manifest.h"
#include "lib/signing.h"

#include <string.h>

#define TEST_SIZE (24 * 1024 * 1024)

/* Bytes that do not repeat, the same on every run. */
static guint8 *
random_content (gsize size, guint32 seed)
{
  guint8 *data = g_malloc (MAX (size, 1));
  guint64 x = 0x9E3779B97F4A7C15u ^ seed;

  for (gsize i = 0; i < size; i++)
    {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      data[i] = (guint8) (x >> 24);
    }
  return data;
}

/* The chunk lengths the default chunker gives @data. */
static GArray *
cut_all (const guint8 *data, gsize size)
{
  CanopyChunker chunker;
  GArray *lengths = g_array_new (FALSE, FALSE, sizeof (gsize));

  canopy_chunker_init_default (&chunker);
  for (gsize at = 0; at < size;)
    {
      gsize cut = canopy_chunker_next (&chunker, data + at, size - at);

      g_array_append_val (lengths, cut);
      at += cut;
    }
  return lengths;
}

static void
test_bounds (void)
{
  g_autofree guint8 *data = random_content (TEST_SIZE, 1);
  g_autoptr (GArray) lengths = cut_all (data, TEST_SIZE);
  gsize total = 0;

  CU_ASSERT (lengths->len > 4);
  for (guint i = 0; i < lengths->len; i++)
    {
      gsize len = g_array_index (lengths, gsize, i);

      CU_ASSERT (len <= CANOPY_CHUNKER_DEFAULT_MAX);
      if (i + 1 < lengths->len)
        CU_ASSERT (len >= CANOPY_CHUNKER_DEFAULT_MIN);
      total += len;
    }
  CU_ASSERT_EQUAL (total, TEST_SIZE);
  /* Normalized chunking keeps the mean near the average asked for. */
  CU_ASSERT (TEST_SIZE / lengths->len >= CANOPY_CHUNKER_DEFAULT_AVG / 2);
  CU_ASSERT (TEST_SIZE / lengths->len <= CANOPY_CHUNKER_DEFAULT_AVG * 2);
}

/* Bytes that never cut (all zero) are cut at the maximum, so no chunk
 * grows past what a peer's buffer holds. */
static void
test_max_on_uniform_bytes (void)
{
  gsize size = 3 * CANOPY_CHUNKER_DEFAULT_MAX + 5;
  g_autofree guint8 *data = g_malloc0 (size);
  g_autoptr (GArray) lengths = cut_all (data, size);

  CU_ASSERT_EQUAL (lengths->len, 4);
  CU_ASSERT_EQUAL (g_array_index (lengths, gsize, 0), CANOPY_CHUNKER_DEFAULT_MAX);
  CU_ASSERT_EQUAL (g_array_index (lengths, gsize, 3), 5);
}

static void
test_deterministic (void)
{
  g_autofree guint8 *data = random_content (TEST_SIZE, 2);
  g_autofree guint8 *copy = g_memdup2 (data, TEST_SIZE);
  g_autoptr (GArray) a = cut_all (data, TEST_SIZE);
  g_autoptr (GArray) b = cut_all (copy, TEST_SIZE);
  CanopyChunker small;

  CU_ASSERT_EQUAL (a->len, b->len);
  CU_ASSERT (memcmp (a->data, b->data, a->len * sizeof (gsize)) == 0);
  /* Parameters are checked: the average must be a power of two in order. */
  CU_ASSERT (canopy_chunker_init (&small, 1024, 4096, 16384));
  g_test_expect_message (NULL, G_LOG_LEVEL_CRITICAL, "*assertion*");
  CU_ASSERT_FALSE (canopy_chunker_init (&small, 1024, 5000, 16384));
  g_test_assert_expected_messages ();
}

/* Sets of chunk hashes, to count what an edit changed. */
static GHashTable *
chunk_set (const CanopyManifest *m)
{
  GHashTable *set = g_hash_table_new_full (g_bytes_hash, g_bytes_equal,
                                           (GDestroyNotify) g_bytes_unref, NULL);

  for (guint i = 0; i < canopy_manifest_get_n_chunks (m); i++)
    g_hash_table_add (set, g_bytes_new (canopy_manifest_get_chunk_hash (m, i),
                                        CANOPY_MANIFEST_HASH_SIZE));
  return set;
}

static CanopyManifest *
build (const guint8 *data, gsize size, guint32 chunk_size)
{
  g_autoptr (GInputStream) stream = g_memory_input_stream_new_from_data (data, size, NULL);
  g_autoptr (GError) error = NULL;
  CanopyManifest *m = canopy_manifest_build (stream, "Office Suite", "17.0", chunk_size, NULL,
                                             &error);

  CANOPY_ASSERT_NO_ERROR (error);
  return m;
}

/* Bytes of @m's chunks that @old lacks. */
static guint64
new_bytes (const CanopyManifest *m, GHashTable *old)
{
  guint64 bytes = 0;

  for (guint i = 0; i < canopy_manifest_get_n_chunks (m); i++)
    {
      g_autoptr (GBytes) hash = g_bytes_new (canopy_manifest_get_chunk_hash (m, i),
                                             CANOPY_MANIFEST_HASH_SIZE);

      if (!g_hash_table_contains (old, hash))
        bytes += canopy_manifest_get_chunk_length (m, i);
    }
  return bytes;
}

/* 64 KiB inserted near the start and one byte changed in the middle: with
 * content-defined chunks only the chunks around each edit are new (at most
 * two maximum-size chunks each); with fixed chunks every chunk after the
 * insertion is. */
static void
test_insertion (void)
{
  const gsize insert_at = 300 * 1024, insert = 64 * 1024;
  g_autofree guint8 *v1 = random_content (TEST_SIZE, 3);
  g_autofree guint8 *extra = random_content (insert, 4);
  g_autofree guint8 *v2 = g_malloc (TEST_SIZE + insert);
  g_autoptr (CanopyManifest) m1 = NULL, m2 = NULL, f1 = NULL, f2 = NULL;
  g_autoptr (GHashTable) set1 = NULL, fixed1 = NULL;

  memcpy (v2, v1, insert_at);
  memcpy (v2 + insert_at, extra, insert);
  memcpy (v2 + insert_at + insert, v1 + insert_at, TEST_SIZE - insert_at);
  v2[TEST_SIZE / 2] ^= 0x5a;

  m1 = build (v1, TEST_SIZE, CANOPY_MANIFEST_CONTENT_DEFINED);
  m2 = build (v2, TEST_SIZE + insert, CANOPY_MANIFEST_CONTENT_DEFINED);
  set1 = chunk_set (m1);
  CU_ASSERT (new_bytes (m2, set1) <= 4 * (guint64) CANOPY_CHUNKER_DEFAULT_MAX);
  CU_ASSERT (new_bytes (m2, set1) >= insert);

  f1 = build (v1, TEST_SIZE, CANOPY_MANIFEST_DEFAULT_CHUNK_SIZE);
  f2 = build (v2, TEST_SIZE + insert, CANOPY_MANIFEST_DEFAULT_CHUNK_SIZE);
  fixed1 = chunk_set (f1);
  CU_ASSERT (new_bytes (f2, fixed1) >= TEST_SIZE - insert_at);
}

/* Format 2: offsets, lengths and hashes of every chunk, the package's
 * SHA-256, and a signed round trip that keeps them. */
static void
test_manifest_format_2 (void)
{
  g_autofree guint8 *data = random_content (TEST_SIZE / 2 + 7, 5);
  gsize size = TEST_SIZE / 2 + 7;
  g_autoptr (CanopyManifest) m = build (data, size, CANOPY_MANIFEST_CONTENT_DEFINED);
  g_autoptr (GArray) lengths = cut_all (data, size);
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = canopy_test_make_tmpdir ("chunker-key");
  g_autofree char *key_path = g_build_filename (dir, "signing.pem", NULL);
  g_autoptr (CanopySigningKey) key = NULL;
  g_autoptr (CanopyVerifyKey) verify = NULL;
  g_autoptr (GBytes) public_key = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (CanopyManifest) parsed = NULL;
  guint64 offset = 0;

  CU_ASSERT (canopy_signing_key_generate_file (key_path, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  key = canopy_signing_key_load (key_path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (canopy_manifest_get_format (m), CANOPY_MANIFEST_FORMAT_CONTENT_DEFINED);
  CU_ASSERT_EQUAL (canopy_manifest_get_n_chunks (m), lengths->len);
  for (guint i = 0; i < canopy_manifest_get_n_chunks (m); i++)
    {
      guint32 len = canopy_manifest_get_chunk_length (m, i);

      CU_ASSERT_EQUAL (len, g_array_index (lengths, gsize, i));
      CU_ASSERT_EQUAL (canopy_manifest_get_chunk_offset (m, i), offset);
      CU_ASSERT (len <= m->chunk_size);
      CU_ASSERT (canopy_manifest_verify_chunk (m, i, data + offset, len));
      CU_ASSERT_FALSE (canopy_manifest_verify_chunk (m, i, data + offset + 1, len));
      offset += len;
    }
  CU_ASSERT_EQUAL (offset, size);

  CU_ASSERT (canopy_manifest_sign (m, key, &error));
  bytes = canopy_manifest_serialize (m);
  public_key = canopy_signing_key_get_public (key);
  verify = canopy_verify_key_new (public_key, &error);
  parsed = canopy_manifest_parse (bytes, verify, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  if (parsed == NULL)
    return;
  CU_ASSERT_EQUAL (canopy_manifest_get_format (parsed), CANOPY_MANIFEST_FORMAT_CONTENT_DEFINED);
  CU_ASSERT_EQUAL (parsed->size, size);
  CU_ASSERT_EQUAL (parsed->chunk_size, m->chunk_size);
  CU_ASSERT (g_bytes_equal (parsed->chunk_hashes, m->chunk_hashes));
  CU_ASSERT (memcmp (parsed->chunk_offsets, m->chunk_offsets,
                     (canopy_manifest_get_n_chunks (m) + 1) * sizeof (guint64))
             == 0);
  CU_ASSERT (memcmp (parsed->sha256, m->sha256, sizeof m->sha256) == 0);
}

/* A format 2 body whose lengths do not add up to its size is damaged. */
static void
test_manifest_lengths_checked (void)
{
  static const guint8 sha[CANOPY_MANIFEST_HASH_SIZE] = { 0 };
  static const guint8 hashes[2 * CANOPY_MANIFEST_HASH_SIZE] = { 0 };
  const guint32 lengths[][2] = { { 10, 10 }, { 0, 21 }, { 11, 11 } };

  for (gsize i = 0; i < G_N_ELEMENTS (lengths); i++)
    {
      g_autoptr (GVariant) body = g_variant_ref_sink (g_variant_new (
        "(sssut@ay@ay@au)", "id", "name", "1", 0u, (guint64) 21,
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, sha, sizeof sha, 1),
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, hashes, sizeof hashes, 1),
        g_variant_new_fixed_array (G_VARIANT_TYPE_UINT32, lengths[i], 2, sizeof (guint32))));
      g_autoptr (GVariant) envelope = g_variant_ref_sink (g_variant_new (
        "(@ay@ay)",
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, g_variant_get_data (body),
                                   g_variant_get_size (body), 1),
        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, NULL, 0, 1)));
      g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (envelope);
      g_autoptr (GError) error = NULL;
      g_autoptr (CanopyManifest) m = canopy_manifest_parse (bytes, NULL, &error);

      CU_ASSERT_PTR_NULL (m);
      CU_ASSERT (g_error_matches (error, CANOPY_MANIFEST_ERROR, CANOPY_MANIFEST_ERROR_FORMAT));
    }
}

/* A manifest signed by the format 1 code (the fuzz corpus keeps those
 * bytes as the old code wrote them) is still read, chunks fixed-size. */
static void
test_old_format_readable (void)
{
  g_autofree char *path = canopy_test_src_path ("tests", "fuzz", "corpus", "manifest-key",
                                                "signed-exact-chunks.bin", NULL);
  g_autofree char *contents = NULL;
  gsize length;
  g_autoptr (GError) error = NULL;
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (CanopyManifest) m = NULL;
  g_autoptr (GBytes) again = NULL;

  CU_ASSERT (g_file_get_contents (path, &contents, &length, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  bytes = g_bytes_new (contents, length);
  m = canopy_manifest_parse (bytes, NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  if (m == NULL)
    return;
  CU_ASSERT_EQUAL (canopy_manifest_get_format (m), CANOPY_MANIFEST_FORMAT_FIXED);
  CU_ASSERT_EQUAL (m->chunk_size, 1024);
  CU_ASSERT_EQUAL (m->size, 4096);
  CU_ASSERT_EQUAL (canopy_manifest_get_n_chunks (m), 4);
  CU_ASSERT_EQUAL (canopy_manifest_get_chunk_offset (m, 3), 3072);
  again = canopy_manifest_serialize (m);
  CU_ASSERT (g_bytes_equal (again, bytes));
}

CANOPY_TEST_SUITE (chunker, "chunker", NULL, NULL,
                   { "size bounds", test_bounds },
                   { "maximum on uniform bytes", test_max_on_uniform_bytes },
                   { "deterministic boundaries", test_deterministic },
                   { "insertion changes only nearby chunks", test_insertion },
                   { "manifest format 2", test_manifest_format_2 },
                   { "format 2 lengths checked", test_manifest_lengths_checked },
                   { "format 1 manifest still readable", test_old_format_readable })
