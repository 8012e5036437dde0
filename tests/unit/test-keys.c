/* Key derivation: HKDF-SHA256 as RFC 5869 defines it, checked against an
 * independent computation with GHmac, and distinct labels. */
#include "build-config.h"

#include <string.h>

#include "tests/canopy-test.h"
#include "lib/keys.h"

/* HKDF-SHA256 for one output block, from GLib's HMAC alone. */
static void
reference_hkdf (const guint8 *ikm, gsize ikm_len, const char *salt, const guint8 *info,
                gsize info_len, guint8 out[32])
{
  guint8 prk[32], one = 1;
  gsize len = sizeof prk;
  g_autoptr (GHmac) extract = g_hmac_new (G_CHECKSUM_SHA256, (const guchar *) salt, strlen (salt));
  g_autoptr (GHmac) expand = NULL;

  g_hmac_update (extract, ikm, (gssize) ikm_len);
  g_hmac_get_digest (extract, prk, &len);
  expand = g_hmac_new (G_CHECKSUM_SHA256, prk, sizeof prk);
  g_hmac_update (expand, info, (gssize) info_len);
  g_hmac_update (expand, &one, 1);
  len = 32;
  g_hmac_get_digest (expand, out, &len);
}

static void
test_keys_matches_rfc5869 (void)
{
  guint8 secret[32], got[32], want[32], info[64];
  const char *label = "canopy transport psk v1";
  g_autoptr (GError) error = NULL;

  for (guint i = 0; i < sizeof secret; i++)
    secret[i] = (guint8) (i * 7 + 1);
  CU_ASSERT (canopy_key_derive (secret, sizeof secret, label, "device-a", 8, got, sizeof got,
                                &error));
  CANOPY_ASSERT_NO_ERROR (error);
  memcpy (info, label, strlen (label));
  info[strlen (label)] = 0;
  memcpy (info + strlen (label) + 1, "device-a", 8);
  reference_hkdf (secret, sizeof secret, label, info, strlen (label) + 1 + 8, want);
  CU_ASSERT (memcmp (got, want, sizeof got) == 0);
}

static void
test_keys_labels_are_distinct (void)
{
  CanopySharedKey key;
  guint8 transport[CANOPY_TRANSPORT_SECRET_SIZE], console[CANOPY_TRANSPORT_SECRET_SIZE];
  guint8 again[CANOPY_TRANSPORT_SECRET_SIZE], other[CANOPY_TRANSPORT_SECRET_SIZE];
  g_autoptr (GError) error = NULL;

  memset (key.bytes, 0x42, sizeof key.bytes);
  CU_ASSERT (canopy_keys_derive_transport_secret (&key, transport, &error));
  CU_ASSERT (canopy_key_derive (key.bytes, sizeof key.bytes, "canopy other purpose v1", NULL, 0,
                                console, sizeof console, &error));
  CU_ASSERT (canopy_keys_derive_transport_secret (&key, again, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (memcmp (transport, again, sizeof again) == 0);
  CU_ASSERT (memcmp (transport, console, sizeof console) != 0);
  CU_ASSERT (memcmp (transport, key.bytes, sizeof transport) != 0);

  key.bytes[31] ^= 1;
  CU_ASSERT (canopy_keys_derive_transport_secret (&key, other, &error));
  CU_ASSERT (memcmp (transport, other, sizeof other) != 0);

  canopy_keys_wipe (transport, sizeof transport);
  for (guint i = 0; i < sizeof transport; i++)
    CU_ASSERT_EQUAL (transport[i], 0);
}

static void
test_keys_context_binds (void)
{
  guint8 secret[32] = { 9 }, a[32], b[32], none[32];

  CU_ASSERT (canopy_key_derive (secret, sizeof secret, "l", "device-a", 8, a, sizeof a, NULL));
  CU_ASSERT (canopy_key_derive (secret, sizeof secret, "l", "device-b", 8, b, sizeof b, NULL));
  CU_ASSERT (canopy_key_derive (secret, sizeof secret, "l", NULL, 0, none, sizeof none, NULL));
  CU_ASSERT (memcmp (a, b, sizeof a) != 0);
  CU_ASSERT (memcmp (a, none, sizeof a) != 0);
}

CANOPY_TEST_SUITE (keys, "keys", NULL, NULL,
                   { "matches-rfc5869", test_keys_matches_rfc5869 },
                   { "labels-are-distinct", test_keys_labels_are_distinct },
                   { "context-binds", test_keys_context_binds });
