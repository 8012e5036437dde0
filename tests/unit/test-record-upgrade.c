/* Records written by an older release read as today's types: the fields
 * it did not have are zero, and what it had is kept exactly. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/backend.h"

static void
test_deployment_v1 (void)
{
  const char *groups[] = { "Finance", "Sales", NULL };
  g_autoptr (GVariant) old = g_variant_ref_sink (
    g_variant_new ("(s^assux)", "content-1", groups, "/opt/office", 2u,
                   G_GINT64_CONSTANT (1700000000000000)));
  g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (old);
  g_autoptr (GVariant) got = canopy_record_from_bytes (CANOPY_RECORD_DEPLOYMENT, bytes);
  g_autofree const char **read_groups = NULL;
  const char *content, *destination;
  guint32 state;
  gint64 created, start, deadline;
  guint32 from, to;
  gboolean background;

  CU_ASSERT_PTR_NOT_NULL_FATAL (got);
  CU_ASSERT (g_variant_is_of_type (got, G_VARIANT_TYPE (CANOPY_RECORD_DEPLOYMENT_TYPE)));
  g_variant_get (got, "(&s^a&s&suxxxuub)", &content, &read_groups, &destination, &state,
                 &created, &start, &deadline, &from, &to, &background);
  CU_ASSERT_FALSE (background);
  CU_ASSERT_STRING_EQUAL (content, "content-1");
  CU_ASSERT_EQUAL (g_strv_length ((char **) read_groups), 2);
  CU_ASSERT_STRING_EQUAL (read_groups[1], "Sales");
  CU_ASSERT_STRING_EQUAL (destination, "/opt/office");
  CU_ASSERT_EQUAL (state, 2);
  CU_ASSERT_EQUAL (created, G_GINT64_CONSTANT (1700000000000000));
  CU_ASSERT_EQUAL (start, 0);
  CU_ASSERT_EQUAL (deadline, 0);
  CU_ASSERT_EQUAL (from, to);
}

static void
test_content_v1 (void)
{
  static const guint8 manifest[] = { 1, 2, 3 };
  g_autoptr (GVariant) old = g_variant_ref_sink (
    g_variant_new ("(sss@ayx)", "Suite", "1.0", "https://cdn.example.com/s.msi",
                   g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, manifest, 3, 1),
                   G_GINT64_CONSTANT (42)));
  g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (old);
  g_autoptr (GVariant) got = canopy_record_from_bytes (CANOPY_RECORD_CONTENT, bytes);
  g_autoptr (GVariant) data = NULL;
  const char *name, *version, *location;
  gint64 registered, expires;

  CU_ASSERT_PTR_NOT_NULL_FATAL (got);
  g_variant_get (got, "(&s&s&s@ayxx)", &name, &version, &location, &data, &registered, &expires);
  CU_ASSERT_STRING_EQUAL (name, "Suite");
  CU_ASSERT_STRING_EQUAL (location, "https://cdn.example.com/s.msi");
  CU_ASSERT_EQUAL (g_variant_n_children (data), 3);
  CU_ASSERT_EQUAL (registered, 42);
  CU_ASSERT_EQUAL (expires, 0);
}

static void
test_current_and_damaged (void)
{
  const char *groups[] = { "Finance", NULL };
  g_autoptr (GVariant) now = g_variant_ref_sink (
    g_variant_new ("(s^assuxxxuub)", "c", groups, "/d", 0u, G_GINT64_CONSTANT (1),
                   G_GINT64_CONSTANT (2), G_GINT64_CONSTANT (3), 1320u, 360u,
                   TRUE));
  g_autoptr (GBytes) bytes = g_variant_get_data_as_bytes (now);
  g_autoptr (GVariant) got = canopy_record_from_bytes (CANOPY_RECORD_DEPLOYMENT, bytes);
  static const guint8 junk[] = { 0xff, 0x00, 0x13, 0x37, 0x42 };
  g_autoptr (GBytes) damaged = g_bytes_new_static (junk, sizeof junk);
  g_autoptr (GVariant) none = canopy_record_from_bytes (CANOPY_RECORD_DEPLOYMENT, damaged);

  CU_ASSERT (got != NULL && g_variant_equal (got, now));
  CU_ASSERT_PTR_NULL (none);
}

CANOPY_TEST_SUITE (record_upgrade, "record-upgrade", NULL, NULL,
                   { "deployment of the first release", test_deployment_v1 },
                   { "content of the first release", test_content_v1 },
                   { "current record kept, damaged refused", test_current_and_damaged })
