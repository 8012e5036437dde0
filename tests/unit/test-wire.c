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
    CANOPY_WIRE_UNINSTALL, CANOPY_WIRE_UNINSTALLED,
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
                   { "random frames", test_random_frames })
