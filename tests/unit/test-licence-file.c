/* Signed licence files: written and read back, refused when altered or
 * issued with another key, expiry. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/licence-file.h"

#include <string.h>

static CanopySigningKey *
make_issuer (void)
{
  g_autofree char *dir = canopy_test_make_tmpdir ("issuer");
  g_autofree char *path = g_build_filename (dir, "issuer.pem", NULL);
  g_autoptr (GError) error = NULL;
  CanopySigningKey *key;

  CU_ASSERT_FATAL (canopy_signing_key_generate_file (path, &error));
  key = canopy_signing_key_load (path, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  return key;
}

static void
test_round_trip_and_tamper (void)
{
  g_autoptr (CanopySigningKey) issuer = make_issuer ();
  g_autoptr (CanopySigningKey) stranger = make_issuer ();
  g_autoptr (GBytes) pub = canopy_signing_key_get_public (issuer);
  g_autoptr (GBytes) stranger_pub = canopy_signing_key_get_public (stranger);
  g_autoptr (CanopyVerifyKey) verify = canopy_verify_key_new (pub, NULL);
  g_autoptr (CanopyVerifyKey) wrong = canopy_verify_key_new (stranger_pub, NULL);
  CanopyLicenceFile licence = { (char *) "Example Corp", 500,
                                g_date_time_new_utc (2027, 12, 31, 0, 0, 0) };
  g_autoptr (GError) error = NULL;
  g_autofree char *text = canopy_licence_file_write (&licence, issuer, &error);
  g_autoptr (CanopyLicenceFile) back = NULL;
  g_autoptr (CanopyLicenceFile) refused = NULL;
  g_autofree char *more_seats = NULL;
  g_autoptr (GDateTime) before = g_date_time_new_utc (2027, 12, 31, 12, 0, 0);
  g_autoptr (GDateTime) after = g_date_time_new_utc (2028, 1, 1, 0, 0, 1);

  CANOPY_ASSERT_NO_ERROR (error);
  CANOPY_ASSERT_CONTAINS (text, "canopy licence 1\ncustomer: Example Corp\nseats: 500\n"
                                "expires: 2027-12-31\nsignature: ");
  back = canopy_licence_file_read (text, verify, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_STRING_EQUAL (back->customer, "Example Corp");
  CU_ASSERT_EQUAL (back->seats, 500);
  CU_ASSERT_FALSE (canopy_licence_file_is_expired (back, before));
  CU_ASSERT (canopy_licence_file_is_expired (back, after));

  /* More seats by editing the file: refused. */
  more_seats = g_strdup (text);
  memcpy (strstr (more_seats, "seats: 500"), "seats: 900", 10);
  refused = canopy_licence_file_read (more_seats, verify, &error);
  CU_ASSERT_PTR_NULL (refused);
  CU_ASSERT (g_error_matches (error, CANOPY_LICENCE_FILE_ERROR,
                              CANOPY_LICENCE_FILE_ERROR_SIGNATURE));
  g_clear_error (&error);
  refused = canopy_licence_file_read (text, wrong, &error);
  CU_ASSERT_PTR_NULL (refused);
  CU_ASSERT (g_error_matches (error, CANOPY_LICENCE_FILE_ERROR,
                              CANOPY_LICENCE_FILE_ERROR_SIGNATURE));
  g_clear_error (&error);
  refused = canopy_licence_file_read ("hello\n", verify, &error);
  CU_ASSERT (g_error_matches (error, CANOPY_LICENCE_FILE_ERROR, CANOPY_LICENCE_FILE_ERROR_FORMAT));
  CANOPY_ASSERT_CONTAINS (error->message, "line 1");
  g_date_time_unref (licence.expires);
}

static void
test_never_expires (void)
{
  g_autoptr (CanopySigningKey) issuer = make_issuer ();
  g_autoptr (GBytes) pub = canopy_signing_key_get_public (issuer);
  g_autoptr (CanopyVerifyKey) verify = canopy_verify_key_new (pub, NULL);
  CanopyLicenceFile licence = { (char *) "Lab", 3, NULL };
  g_autofree char *text = canopy_licence_file_write (&licence, issuer, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyLicenceFile) back = canopy_licence_file_read (text, verify, &error);
  g_autoptr (GDateTime) far = g_date_time_new_utc (2999, 1, 1, 0, 0, 0);

  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NULL (back->expires);
  CU_ASSERT_FALSE (canopy_licence_file_is_expired (back, far));
}

CANOPY_TEST_SUITE (licence_file, "licence-file", NULL, NULL,
                   { "round trip and tampering", test_round_trip_and_tamper },
                   { "never expires", test_never_expires })
