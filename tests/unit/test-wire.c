/* Wire protocol: frames round-trip, and every way a frame can be wrong is
 * refused before its body is used. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/wire.h"

#include <string.h>

static GBytes *
hello_frame (void)
{
  g_autoptr (GVariantBuilder) addresses = g_variant_builder_new (G_VARIANT_TYPE ("a(sy)"));
  const char *groups[] = { "Finance", "Branch-North", NULL };

  g_variant_builder_add (addresses, "(sy)", "198.18.10.5", 24);
  g_variant_builder_add (addresses, "(sy)", "2001:db8::5", 64);
  return canopy_wire_encode (CANOPY_WIRE_HELLO,
                             g_variant_new ("(ssa(sy)^asqs)", "device-1", "0.1.0", addresses,
                                            groups, 7444, "pc-finance-01"));
}

static void
test_round_trip (void)
{
  g_autoptr (GBytes) frame = hello_frame ();
  g_autoptr (GError) error = NULL;
  CanopyWireKind kind = 0;
  g_autoptr (GVariant) body = canopy_wire_decode (frame, &kind, &error);
  const char *device = NULL;

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (kind, CANOPY_WIRE_HELLO);
  g_variant_get_child (body, 0, "&s", &device);
  CU_ASSERT_STRING_EQUAL (device, "device-1");
  CU_ASSERT_STRING_EQUAL (canopy_wire_kind_to_string (kind), "hello");
}

/* Bodies with 8-byte alignment sit at a 4-byte offset in the frame. */
static void
test_aligned_types (void)
{
  g_autoptr (GBytes) frame = canopy_wire_encode (CANOPY_WIRE_HEARTBEAT,
                                                 g_variant_new ("(xt)", G_GINT64_CONSTANT (-5),
                                                                G_GUINT64_CONSTANT (1) << 40));
  g_autoptr (GError) error = NULL;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (frame, &kind, &error);
  gint64 clock;
  guint64 bytes;

  CANOPY_ASSERT_NO_ERROR (error);
  g_variant_get (body, "(xt)", &clock, &bytes);
  CU_ASSERT_EQUAL (clock, -5);
  CU_ASSERT_EQUAL (bytes, G_GUINT64_CONSTANT (1) << 40);
}

static GBytes *
patched (GBytes *frame, gsize offset, const void *bytes, gsize n)
{
  gsize size = g_bytes_get_size (frame);
  guint8 *copy = g_memdup2 (g_bytes_get_data (frame, NULL), size);

  memcpy (copy + offset, bytes, n);
  return g_bytes_new_take (copy, size);
}

static void
assert_refused (GBytes *frame, CanopyWireError code, const char *text)
{
  g_autoptr (GError) error = NULL;
  CanopyWireKind kind;
  g_autoptr (GVariant) body = canopy_wire_decode (frame, &kind, &error);

  CU_ASSERT_PTR_NULL (body);
  CU_ASSERT (g_error_matches (error, CANOPY_WIRE_ERROR, (int) code));
  if (error != NULL)
    CANOPY_ASSERT_CONTAINS (error->message, text);
}

static void
test_bad_frames (void)
{
  g_autoptr (GBytes) frame = hello_frame ();
  gsize size = g_bytes_get_size (frame);
  const guint8 version[2] = { 0, 9 };
  const guint8 kind[2] = { 0x7f, 0x00 };
  const guint8 long_length[4] = { 0xff, 0xff, 0xff, 0xf0 };
  g_autoptr (GBytes) bad_magic = patched (frame, 0, "HTTP", 4);
  g_autoptr (GBytes) bad_version = patched (frame, 4, version, 2);
  g_autoptr (GBytes) bad_kind = patched (frame, 6, kind, 2);
  g_autoptr (GBytes) bad_length = patched (frame, 8, long_length, 4);
  g_autoptr (GBytes) truncated = g_bytes_new_from_bytes (frame, 0, size - 3);
  g_autoptr (GBytes) tiny = g_bytes_new_static ("CNPY", 4);

  assert_refused (bad_magic, CANOPY_WIRE_ERROR_MAGIC, "not a canopy message");
  assert_refused (tiny, CANOPY_WIRE_ERROR_MAGIC, "not a canopy message");
  assert_refused (bad_version, CANOPY_WIRE_ERROR_VERSION, "version 9");
  assert_refused (bad_kind, CANOPY_WIRE_ERROR_KIND, "unknown kind");
  assert_refused (bad_length, CANOPY_WIRE_ERROR_LENGTH, "\"hello\"");
  assert_refused (truncated, CANOPY_WIRE_ERROR_LENGTH, "does not match");
}

/* A body whose framing offsets point outside it is not in normal form. */
static void
test_non_normal_body (void)
{
  g_autoptr (GBytes) frame = canopy_wire_encode (CANOPY_WIRE_REQUEST,
                                                 g_variant_new ("(su)", "content-1", 7));
  gsize size = g_bytes_get_size (frame);
  guint8 *copy = g_memdup2 (g_bytes_get_data (frame, NULL), size);
  g_autoptr (GBytes) corrupt = NULL;

  /* "(su)" ends with one framing offset byte: point it past the end. */
  copy[size - 1] = 0xff;
  corrupt = g_bytes_new_take (copy, size);
  assert_refused (corrupt, CANOPY_WIRE_ERROR_BODY, "malformed \"request\"");
}

static void
test_every_kind_has_a_type (void)
{
  const CanopyWireKind kinds[] = {
    CANOPY_WIRE_HELLO, CANOPY_WIRE_WELCOME, CANOPY_WIRE_REFUSED, CANOPY_WIRE_HEARTBEAT,
    CANOPY_WIRE_ASSIGNMENT, CANOPY_WIRE_PROGRESS, CANOPY_WIRE_DONE, CANOPY_WIRE_FAILED,
    CANOPY_WIRE_PEER_HELLO, CANOPY_WIRE_HAVE, CANOPY_WIRE_REQUEST, CANOPY_WIRE_DATA,
    CANOPY_WIRE_CANCEL, CANOPY_WIRE_BUSY, CANOPY_WIRE_WITHDRAW, CANOPY_WIRE_WITHDRAWN,
    CANOPY_WIRE_UNINSTALL, CANOPY_WIRE_UNINSTALLED, CANOPY_WIRE_CHUNK_QUERY,
    CANOPY_WIRE_CHUNK_HAVE, CANOPY_WIRE_CHUNK_REQUEST,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      CU_ASSERT_PTR_NOT_NULL (canopy_wire_kind_type (kinds[i]));
      CU_ASSERT_STRING_NOT_EQUAL (canopy_wire_kind_to_string (kinds[i]), "unknown");
    }
  CU_ASSERT_PTR_NULL (canopy_wire_kind_type (999));
}

/* Random bytes must never crash the decoder or be accepted as a frame
 * of another type than its kind's. */
static void
test_random_frames (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (20261124);
  g_autoptr (GBytes) good = hello_frame ();

  for (int i = 0; i < 20000; i++)
    {
      gsize size = g_bytes_get_size (good);
      guint8 *copy = g_memdup2 (g_bytes_get_data (good, NULL), size);
      g_autoptr (GBytes) frame = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (GVariant) body = NULL;
      CanopyWireKind kind;

      for (int flips = g_rand_int_range (rand, 1, 6); flips > 0; flips--)
        copy[g_rand_int_range (rand, 4, (gint32) size)] = (guint8) g_rand_int (rand);
      frame = g_bytes_new_take (copy, size);
      body = canopy_wire_decode (frame, &kind, &error);
      CU_ASSERT ((body == NULL) != (error == NULL));
      if (body != NULL)
        CU_ASSERT (g_variant_is_of_type (body, canopy_wire_kind_type (kind)));
    }
}

/* Decodes @body sent as @kind, as a peer receives it. */
static GVariant *
over_the_wire (CanopyWireKind kind, GVariant *body)
{
  g_autoptr (GBytes) frame = canopy_wire_encode (kind, body);
  g_autoptr (GError) error = NULL;
  CanopyWireKind got;
  GVariant *decoded = canopy_wire_decode (frame, &got, &error);

  g_assert_no_error (error);
  g_assert (got == kind);
  return decoded;
}

static GVariant *
hash_of (guint8 fill, gsize size)
{
  g_autofree guint8 *bytes = g_malloc (MAX (size, 1));

  memset (bytes, fill, size);
  return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, size, 1);
}

/* A chunk-request names one chunk by a 32-byte SHA-256; anything else is
 * refused with a reason that says what was wrong. */
static void
test_chunk_request (void)
{
  g_autoptr (GVariant) good = over_the_wire (
    CANOPY_WIRE_CHUNK_REQUEST, g_variant_new ("(su@ay)", "content-2", 7, hash_of (0xab, 32)));
  g_autoptr (GVariant) short_hash = over_the_wire (
    CANOPY_WIRE_CHUNK_REQUEST, g_variant_new ("(su@ay)", "content-2", 7, hash_of (0xab, 31)));
  g_autoptr (GVariant) no_content = over_the_wire (
    CANOPY_WIRE_CHUNK_REQUEST, g_variant_new ("(su@ay)", "", 7, hash_of (0xab, 32)));
  g_autoptr (GError) error = NULL;
  guint8 hash[CANOPY_WIRE_HASH_SIZE];
  const char *content_id;
  guint32 index;

  CU_ASSERT (canopy_wire_read_chunk_request (good, &content_id, &index, hash, &error));
  CU_ASSERT_PTR_NULL (error);
  CU_ASSERT_STRING_EQUAL (content_id, "content-2");
  CU_ASSERT_EQUAL (index, 7);
  CU_ASSERT_EQUAL (hash[0], 0xab);
  CU_ASSERT_EQUAL (hash[31], 0xab);

  CU_ASSERT_FALSE (canopy_wire_read_chunk_request (short_hash, &content_id, &index, hash,
                                                   &error));
  CU_ASSERT (g_error_matches (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY));
  CANOPY_ASSERT_CONTAINS (error->message, "31 bytes");
  g_clear_error (&error);
  CU_ASSERT_FALSE (canopy_wire_read_chunk_request (no_content, &content_id, &index, hash,
                                                   &error));
  CU_ASSERT (g_error_matches (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY));
  CANOPY_ASSERT_CONTAINS (error->message, "naming no content");
}

static GVariant *
query_of (const char *content_id, guint32 first, guint n, gsize hash_size)
{
  GVariantBuilder hashes;

  g_variant_builder_init (&hashes, G_VARIANT_TYPE ("aay"));
  for (guint i = 0; i < n; i++)
    g_variant_builder_add_value (&hashes, hash_of ((guint8) i, i == n / 2 ? hash_size : 32));
  return over_the_wire (CANOPY_WIRE_CHUNK_QUERY,
                        g_variant_new ("(suaay)", content_id, first, &hashes));
}

/* A chunk-query holds 1 to 1,024 hashes of 32 bytes whose indices fit in
 * 32 bits, for a content; one holding anything else is refused. */
static void
test_chunk_query (void)
{
  g_autoptr (GVariant) good = query_of ("content-2", 1024, 3, 32);
  g_autoptr (GVariant) bad_hash = query_of ("content-2", 0, 3, 33);
  g_autoptr (GVariant) empty = query_of ("content-2", 0, 0, 32);
  g_autoptr (GVariant) too_many = query_of ("content-2", 0, CANOPY_WIRE_MAX_QUERY_HASHES + 1, 32);
  g_autoptr (GVariant) wraps = query_of ("content-2", G_MAXUINT32 - 1, 3, 32);
  g_autoptr (GVariant) feature = query_of (CANOPY_WIRE_FEATURE_CHUNKS_BY_HASH, 0, 3, 32);
  GVariant *refused[] = { bad_hash, empty, too_many, wraps, feature };
  const char *why[] = { "33 bytes", "0 chunks", "1025 chunks", "from index 4294967294",
                        "naming no content" };
  g_autoptr (GBytes) hashes = NULL;
  g_autoptr (GError) error = NULL;
  const char *content_id;
  guint32 first;

  CU_ASSERT (canopy_wire_read_chunk_query (good, &content_id, &first, &hashes, &error));
  CU_ASSERT_PTR_NULL (error);
  CU_ASSERT_STRING_EQUAL (content_id, "content-2");
  CU_ASSERT_EQUAL (first, 1024);
  CU_ASSERT_EQUAL (g_bytes_get_size (hashes), 3 * CANOPY_WIRE_HASH_SIZE);
  CU_ASSERT_EQUAL (((const guint8 *) g_bytes_get_data (hashes, NULL))[2 * 32], 2);
  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr (GBytes) none = NULL;

      g_clear_error (&error);
      CU_ASSERT_FALSE (canopy_wire_read_chunk_query (refused[i], &content_id, &first, &none,
                                                     &error));
      CU_ASSERT_PTR_NULL (none);
      CU_ASSERT (g_error_matches (error, CANOPY_WIRE_ERROR, CANOPY_WIRE_ERROR_BODY));
      if (error != NULL)
        CANOPY_ASSERT_CONTAINS (error->message, why[i]);
    }
}

static void
test_compare_versions (void)
{
  CU_ASSERT (canopy_wire_compare_versions ("0.10.2", "0.9.7") > 0);
  CU_ASSERT (canopy_wire_compare_versions ("0.1", "0.1.0") == 0);
  CU_ASSERT (canopy_wire_compare_versions ("1.0.0", "1.0.1") < 0);
  CU_ASSERT (canopy_wire_compare_versions ("2", "10") < 0);
}

CANOPY_TEST_SUITE (wire, "wire", NULL, NULL,
                   { "compare versions", test_compare_versions },
                   { "aligned types", test_aligned_types },
                   { "round trip", test_round_trip },
                   { "bad frames", test_bad_frames },
                   { "non-normal body", test_non_normal_body },
                   { "every kind has a type", test_every_kind_has_a_type },
                   { "chunk-request by hash", test_chunk_request },
                   { "chunk-query by hash", test_chunk_query },
                   { "random frames", test_random_frames })
