/* Shared key: the printed form round-trips, typing mistakes are told
 * apart from wrong keys, and key files are owner-only. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/shared-key.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

static void
test_round_trip (void)
{
  for (int i = 0; i < 200; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (CanopySharedKey) key = canopy_shared_key_generate (&error);
      g_autofree char *text = canopy_shared_key_format (key);
      g_autoptr (CanopySharedKey) back = canopy_shared_key_parse (text, &error);

      CANOPY_ASSERT_NO_ERROR (error);
      CU_ASSERT_EQUAL (strlen (text), 13 * 5 + 12);
      CU_ASSERT (memcmp (key->bytes, back->bytes, CANOPY_SHARED_KEY_SIZE) == 0);
    }
}

static void
test_lenient_reading (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySharedKey) key = canopy_shared_key_generate (&error);
  g_autofree char *text = canopy_shared_key_format (key);
  g_autofree char *lower = g_ascii_strdown (text, -1);
  g_auto (GStrv) groups = g_strsplit (lower, "-", -1);
  g_autofree char *spaced = g_strjoinv ("  ", groups);
  g_autoptr (CanopySharedKey) back = NULL;

  /* Letters people confuse with digits are read as those digits. */
  for (char *p = spaced; *p != '\0'; p++)
    if (*p == '0')
      *p = 'o';
    else if (*p == '1')
      *p = 'l';
  back = canopy_shared_key_parse (spaced, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (memcmp (key->bytes, back->bytes, CANOPY_SHARED_KEY_SIZE) == 0);
}

static void
test_typo_is_mistyped_not_wrong (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySharedKey) key = canopy_shared_key_generate (&error);
  g_autofree char *text = canopy_shared_key_format (key);
  guint detected = 0, tried = 0;

  for (gsize pos = 0; text[pos] != '\0'; pos++)
    {
      const char *alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
      g_autofree char *group_text = NULL;

      if (text[pos] == '-')
        continue;
      group_text = g_strdup_printf ("group %u of 13", (guint) (pos / 6 + 1));
      for (const char *c = alphabet; *c != '\0'; c++)
        {
          g_autofree char *typo = g_strdup (text);
          g_autoptr (CanopySharedKey) back = NULL;

          if (*c == text[pos])
            continue;
          typo[pos] = *c;
          back = canopy_shared_key_parse (typo, &error);
          tried++;
          if (back == NULL && g_error_matches (error, CANOPY_SHARED_KEY_ERROR,
                                               CANOPY_SHARED_KEY_ERROR_MISTYPED)
              && strstr (error->message, group_text) != NULL)
            detected++;
          g_clear_error (&error);
        }
    }
  /* Every single-character typo, anywhere, names its group. */
  CU_ASSERT_EQUAL (detected, tried);
}

static void
test_swapped_neighbours_detected (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySharedKey) key = canopy_shared_key_generate (&error);
  g_autofree char *text = canopy_shared_key_format (key);
  guint detected = 0, tried = 0;

  for (gsize pos = 0; text[pos + 1] != '\0'; pos++)
    {
      g_autofree char *swapped = g_strdup (text);
      g_autoptr (CanopySharedKey) back = NULL;

      if (text[pos] == '-' || text[pos + 1] == '-' || text[pos] == text[pos + 1])
        continue;
      swapped[pos] = text[pos + 1];
      swapped[pos + 1] = text[pos];
      back = canopy_shared_key_parse (swapped, &error);
      tried++;
      detected += back == NULL;
      g_clear_error (&error);
    }
  /* Luhn mod N misses a swap only for one pair of values per position. */
  CU_ASSERT (detected * 10 >= tried * 9);
}

static void
test_malformed (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySharedKey) key = canopy_shared_key_parse ("ABCDE-FGHJK", &error);

  CU_ASSERT_PTR_NULL (key);
  CU_ASSERT (g_error_matches (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_MALFORMED));
  CANOPY_ASSERT_CONTAINS (error->message, "65");
}

static void
test_key_file (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("key");
  g_autofree char *path = g_build_filename (dir, "shared-key", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySharedKey) key = canopy_shared_key_generate (&error);
  g_autoptr (CanopySharedKey) back = NULL;
  g_autofree char *text = canopy_shared_key_format (key);
  GStatBuf st;

  CU_ASSERT (canopy_shared_key_save (key, path, &error));
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL_FATAL (g_stat (path, &st), 0);
  CU_ASSERT_EQUAL (st.st_mode & 0777, 0600);
  back = canopy_shared_key_load (path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT (memcmp (key->bytes, back->bytes, CANOPY_SHARED_KEY_SIZE) == 0);
  g_clear_pointer (&back, canopy_shared_key_free);

  g_chmod (path, 0644);
  back = canopy_shared_key_load (path, &error);
  CU_ASSERT_PTR_NULL (back);
  CU_ASSERT (g_error_matches (error, CANOPY_SHARED_KEY_ERROR,
                              CANOPY_SHARED_KEY_ERROR_INSECURE_FILE));
  CANOPY_ASSERT_CONTAINS (error->message, "chmod 600");
  /* The key itself never appears in an error. */
  CU_ASSERT_PTR_NULL (strstr (error->message, text));
  g_clear_error (&error);

  back = canopy_shared_key_load ("/nonexistent/shared-key", &error);
  CU_ASSERT (g_error_matches (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_IO));
  CANOPY_ASSERT_CONTAINS (error->message, "canopyd init");
}

CANOPY_TEST_SUITE (shared_key, "shared-key", NULL, NULL,
                   { "round trip", test_round_trip },
                   { "lenient reading", test_lenient_reading },
                   { "typo is mistyped, not wrong", test_typo_is_mistyped_not_wrong },
                   { "swapped neighbours detected", test_swapped_neighbours_detected },
                   { "malformed", test_malformed },
                   { "key file", test_key_file })
