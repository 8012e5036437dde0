/* Records written by an older release read as today's types: the fields
 * it did not have are zero, and what it had is kept exactly. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/backend.h"

#include <canopy/admin-settings.h>

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

/* Admins as setting rows of the releases before the admins table become
 * records of their own kinds: times in µs, the hash as bytes; a token of
 * an admin long gone is dropped, every other setting left alone. */
static void
test_admins_from_settings (void)
{
  CanopyAdminSettings s;
  const char hash_hex[] = "00ff102030405060708090a0b0c0d0e0f00112233445566778899aabbccddeef";
  g_autofree char *token = g_strdup_printf ("('zoe', '%s', int64 1764900000, int64 1767500000)",
                                            hash_hex);
  g_autofree char *orphan = g_strdup_printf ("('gone', '%s', int64 1, int64 0)", hash_hex);
  CanopyRecord *r;
  const guint8 *hash;
  gsize hash_size;
  const char *admin;
  gint64 created, expires;

  canopy_admin_settings_init (&s);
  CU_ASSERT_FALSE (canopy_admin_settings_add (&s, "assigned-groups", "Finance"));
  CU_ASSERT_FALSE (canopy_admin_settings_add (&s, "administrator", "x"));
  CU_ASSERT (canopy_admin_settings_add (&s, "admin-token/00112233aabbccdd", token));
  CU_ASSERT (canopy_admin_settings_add (&s, "admin/zoe", "('operator', int64 1764900000)"));
  CU_ASSERT (canopy_admin_settings_add (&s, "admin/amy", "('auditor', 1764800000)"));
  CU_ASSERT (canopy_admin_settings_add (&s, "admin-token/ffffffffffffffff", orphan));
  canopy_admin_settings_finish (&s);

  CU_ASSERT_EQUAL_FATAL (s.admins->len, 2);
  r = &g_array_index (s.admins, CanopyRecord, 0);
  CU_ASSERT_STRING_EQUAL (r->key, "amy");
  r = &g_array_index (s.admins, CanopyRecord, 1);
  CU_ASSERT_STRING_EQUAL (r->key, "zoe");
  CU_ASSERT (g_variant_is_of_type (r->value, G_VARIANT_TYPE (CANOPY_RECORD_ADMIN_TYPE)));
  {
    g_autoptr (GVariant) want = g_variant_ref_sink (
      g_variant_new ("(sx)", "operator", G_GINT64_CONSTANT (1764900000000000)));
    CU_ASSERT (g_variant_equal (r->value, want));
  }
  CU_ASSERT_EQUAL_FATAL (s.tokens->len, 1);
  r = &g_array_index (s.tokens, CanopyRecord, 0);
  CU_ASSERT_STRING_EQUAL (r->key, "00112233aabbccdd");
  CU_ASSERT (g_variant_is_of_type (r->value, G_VARIANT_TYPE (CANOPY_RECORD_ADMIN_TOKEN_TYPE)));
  {
    g_autoptr (GVariant) bytes = g_variant_get_child_value (r->value, 1);
    g_variant_get (r->value, "(&s@ayxx)", &admin, NULL, &created, &expires);
    hash = g_variant_get_fixed_array (bytes, &hash_size, 1);
    CU_ASSERT_STRING_EQUAL (admin, "zoe");
    CU_ASSERT_EQUAL_FATAL (hash_size, 32);
    CU_ASSERT (hash[0] == 0x00 && hash[1] == 0xff && hash[31] == 0xef);
    CU_ASSERT_EQUAL (created, G_GINT64_CONSTANT (1764900000000000));
    CU_ASSERT_EQUAL (expires, G_GINT64_CONSTANT (1767500000000000));
  }
  /* the four rows leave settings, the orphan too */
  CU_ASSERT_EQUAL (s.moved->len, 4);
  canopy_admin_settings_clear (&s);
}

CANOPY_TEST_SUITE (record_upgrade, "record-upgrade", NULL, NULL,
                   { "admins of the settings table", test_admins_from_settings },
                   { "deployment of the first release", test_deployment_v1 },
                   { "content of the first release", test_content_v1 },
                   { "current record kept, damaged refused", test_current_and_damaged })
