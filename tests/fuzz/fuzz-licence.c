/* Fuzz target: a licence file given to the server, checked with the
 * issuer's public key. */
#include "build-config.h"

#include "tests/fuzz/fuzz.h"
#include "lib/licence-file.h"

gboolean
canopy_fuzz_licence (const uint8_t *data, size_t size)
{
  static CanopyVerifyKey *issuer;
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyLicenceFile) licence = NULL;

  if (issuer == NULL)
    issuer = canopy_verify_key_new_from_base64 (CANOPY_FUZZ_PUBLIC_KEY, NULL);
  g_assert (issuer != NULL);
  licence = canopy_licence_file_read (text, issuer, &error);
  if (licence == NULL)
    {
      g_assert (error != NULL);
      return FALSE;
    }
  g_assert (error == NULL);
  g_assert (licence->customer != NULL);
  if (licence->expires != NULL)
    {
      g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
      canopy_licence_file_is_expired (licence, now);
    }
  return TRUE;
}
