/* Console API authentication and settings, without a server: admins and
 * their tokens, the token check, the lockout of an address with a clock the test moves, and the
 * strict reading of settings changes. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "server/console/console-auth.h"
#include "server/distribution-settings.h"

#include <string.h>

#define NOW 1800000000 /* seconds since the epoch, 2027 */

/* An auth with one administrator "ada" holding one token, given in @bearer. */
static CanopyConsoleAuth *
new_auth (char **bearer)
{
  g_autoptr (CanopyAdmins) admins = canopy_admins_new ();
  g_autoptr (GError) error = NULL;
  char *text = NULL;

  g_assert (canopy_admins_add (admins, "ada", CANOPY_ADMIN_ROLE_ADMINISTRATOR, NOW, &error));
  g_assert (canopy_admins_issue_token (admins, "ada", NOW, NOW + 3600, &text, &error));
  *bearer = g_strconcat ("Bearer ", text, NULL);
  canopy_admins_free_text (text);
  return canopy_console_auth_new (g_steal_pointer (&admins));
}

static CanopyConsoleAuthResult
check (CanopyConsoleAuth *auth, const char *address, const char *authorization, gint64 now,
       guint *retry)
{
  const CanopyAdminToken *token;

  return canopy_console_auth_check (auth, address, authorization, TRUE, now, NOW, &token, retry);
}

static void
test_token (void)
{
  g_autofree char *bearer = NULL;
  g_autoptr (CanopyConsoleAuth) auth = new_auth (&bearer);
  const CanopyAdminToken *token = NULL;
  g_autofree char *other_id = NULL;
  guint retry;

  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", bearer, TRUE, 0, NOW, &token, &retry),
                   CANOPY_CONSOLE_AUTH_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL (token);
  CU_ASSERT_STRING_EQUAL (token->admin, "ada");
  CU_ASSERT_EQUAL (check (auth, "a", NULL, 0, &retry), CANOPY_CONSOLE_AUTH_MISSING);
  CU_ASSERT_EQUAL (check (auth, "a", "Bearer 00", 0, &retry), CANOPY_CONSOLE_AUTH_INVALID);
  CU_ASSERT_EQUAL (check (auth, "a", "Basic dXNlcjpwYXNz", 0, &retry),
                   CANOPY_CONSOLE_AUTH_INVALID);
  /* The scheme is case-insensitive (RFC 7235). */
  bearer[0] = 'b';
  CU_ASSERT_EQUAL (check (auth, "a", bearer, 0, &retry), CANOPY_CONSOLE_AUTH_OK);
  /* An unknown ID is for the caller to look up before it is final. */
  other_id = g_strdup (bearer);
  other_id[strlen ("Bearer cnp_")] = other_id[strlen ("Bearer cnp_")] == '0' ? '1' : '0';
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", other_id, FALSE, 0, NOW, &token, &retry),
                   CANOPY_CONSOLE_AUTH_UNKNOWN);
  CU_ASSERT_EQUAL (check (auth, "a", other_id, 0, &retry), CANOPY_CONSOLE_AUTH_INVALID);
  /* Past its expiry, the right token says so. */
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", bearer, TRUE, 0, NOW + 3600, &token,
                                              &retry),
                   CANOPY_CONSOLE_AUTH_EXPIRED);
  /* One changed digit of the secret is wrong. */
  bearer[strlen (bearer) - 1] = bearer[strlen (bearer) - 1] == '0' ? '1' : '0';
  CU_ASSERT_EQUAL (check (auth, "a", bearer, 0, &retry), CANOPY_CONSOLE_AUTH_INVALID);
  CU_ASSERT_EQUAL (canopy_console_auth_get_failures (auth), 4);
}

static void
test_admins (void)
{
  g_autoptr (CanopyAdmins) admins = canopy_admins_new ();
  g_autoptr (CanopyAdmins) loaded = canopy_admins_new ();
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) removed = NULL;
  const CanopyAdminToken *token, *found;
  char *text = NULL;
  g_autoptr (GVariant) value = NULL;

  CU_ASSERT_PTR_NULL (canopy_admins_add (admins, "-x", CANOPY_ADMIN_ROLE_AUDITOR, NOW, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_INVALID));
  g_clear_error (&error);
  CU_ASSERT_PTR_NOT_NULL (canopy_admins_add (admins, "bo", CANOPY_ADMIN_ROLE_AUDITOR, NOW,
                                             &error));
  /* Another role is a conflict, not a silent change. */
  CU_ASSERT_PTR_NULL (canopy_admins_add (admins, "bo", CANOPY_ADMIN_ROLE_OPERATOR, NOW, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_EXISTS));
  g_clear_error (&error);
  token = canopy_admins_issue_token (admins, "bo", NOW, 0, &text, &error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (token);
  CU_ASSERT (g_str_has_prefix (text, "cnp_"));
  /* The record round-trips and never holds the secret. */
  value = g_variant_ref_sink (canopy_admins_token_value (token));
  CU_ASSERT (g_variant_is_of_type (value, G_VARIANT_TYPE (CANOPY_RECORD_ADMIN_TOKEN_TYPE)));
  {
    g_autofree char *printed = g_variant_print (value, FALSE);
    CU_ASSERT_PTR_NULL (strstr (printed, text + strlen ("cnp_") + 17));
  }
  canopy_admins_load_token (token->id, value, loaded);
  {
    const CanopyAdmin *bo = canopy_admins_lookup (admins, "bo");
    g_autoptr (GVariant) admin_value = g_variant_ref_sink (canopy_admins_admin_value (bo));
    canopy_admins_load_admin (bo->name, admin_value, loaded);
  }
  CU_ASSERT_EQUAL (canopy_admins_check (loaded, text, NOW, &found), CANOPY_ADMINS_CHECK_OK);
  CU_ASSERT_EQUAL (canopy_admins_lookup (loaded, "bo")->role, CANOPY_ADMIN_ROLE_AUDITOR);
  CU_ASSERT_EQUAL (canopy_admins_lookup (loaded, "bo")->created, NOW);
  CU_ASSERT_EQUAL (found->created, NOW);
  CU_ASSERT_EQUAL (found->expires, 0);
  /* Revoking the admin takes their tokens along. */
  CU_ASSERT (canopy_admins_revoke (loaded, "bo", &removed, &error));
  CU_ASSERT_EQUAL (g_strv_length (removed), 2);
  CU_ASSERT_EQUAL (canopy_admins_check (loaded, text, NOW, &found), CANOPY_ADMINS_CHECK_UNKNOWN);
  CU_ASSERT_FALSE (canopy_admins_revoke (loaded, "bo", &removed, &error));
  canopy_admins_free_text (text);
}

static void
test_lockout (void)
{
  g_autofree char *bearer = NULL;
  g_autoptr (CanopyConsoleAuth) auth = new_auth (&bearer);
  gint64 now = 1000 * G_USEC_PER_SEC;
  guint retry = 0;

  for (int i = 0; i < CANOPY_CONSOLE_AUTH_MAX_FAILURES; i++)
    CU_ASSERT_EQUAL (check (auth, "10.0.0.1", "Bearer 00", now, &retry),
                     CANOPY_CONSOLE_AUTH_INVALID);
  CU_ASSERT_EQUAL (check (auth, "10.0.0.1", "Bearer 00", now, &retry),
                   CANOPY_CONSOLE_AUTH_LOCKED);
  CU_ASSERT_EQUAL (retry, CANOPY_CONSOLE_AUTH_LOCKOUT_S);
  /* The right token still gets in from the locked address. */
  CU_ASSERT_EQUAL (check (auth, "10.0.0.1", bearer, now, &retry), CANOPY_CONSOLE_AUTH_OK);
  /* Another address is not affected. */
  CU_ASSERT_EQUAL (check (auth, "10.0.0.2", "Bearer 00", now, &retry),
                   CANOPY_CONSOLE_AUTH_INVALID);
  /* After the lockout wrong tokens are counted again. */
  now += (CANOPY_CONSOLE_AUTH_LOCKOUT_S + 1) * G_USEC_PER_SEC;
  CU_ASSERT_EQUAL (check (auth, "10.0.0.1", "Bearer 00", now, &retry),
                   CANOPY_CONSOLE_AUTH_INVALID);
  /* Failures spread wider than the window never lock. */
  for (int i = 0; i < 3 * CANOPY_CONSOLE_AUTH_MAX_FAILURES; i++)
    {
      now += (CANOPY_CONSOLE_AUTH_WINDOW_S / 2) * G_USEC_PER_SEC;
      CU_ASSERT_NOT_EQUAL (check (auth, "10.0.0.3", "Bearer 00", now, &retry),
                           CANOPY_CONSOLE_AUTH_LOCKED);
    }
}

static void
test_lockout_grows (void)
{
  g_autofree char *bearer = NULL;
  g_autoptr (CanopyConsoleAuth) auth = new_auth (&bearer);
  gint64 now = 0;
  guint retry = 0;

  for (int round = 0; round < 2; round++)
    {
      for (int i = 0; i < CANOPY_CONSOLE_AUTH_MAX_FAILURES; i++)
        check (auth, "10.0.0.1", "Bearer 00", now, &retry);
      CU_ASSERT_EQUAL (check (auth, "10.0.0.1", "Bearer 00", now, &retry),
                       CANOPY_CONSOLE_AUTH_LOCKED);
      CU_ASSERT_EQUAL (retry, (guint) CANOPY_CONSOLE_AUTH_LOCKOUT_S << round);
      now += (gint64) retry * G_USEC_PER_SEC + 1;
    }
}

static CanopySettings *
sample_settings (void)
{
  CanopySettings *settings = g_new0 (CanopySettings, 1);

  settings->name = g_strdup ("p2p.example.com");
  settings->assigned_groups = g_strsplit ("Finance", ",", -1);
  return settings;
}

static guint
apply (CanopySettings *settings, const char *json, GError **error)
{
  g_autoptr (JsonNode) node = json_from_string (json, NULL);
  guint changed = 0;

  g_assert (node != NULL);
  canopy_settings_apply_json (settings, json_node_get_object (node), &changed, error);
  return changed;
}

static void
test_settings_json (void)
{
  g_autoptr (CanopySettings) settings = sample_settings ();
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) shown = NULL;
  g_autofree char *text = NULL;

  CU_ASSERT_EQUAL (apply (settings, "{\"assigned_groups\": [\"Finance\", \"Sales\", \"Sales\"]}",
                          &error),
                   CANOPY_SETTINGS_GROUPS);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (g_strv_length (settings->assigned_groups), 2);
  CU_ASSERT_EQUAL (apply (settings, "{\"server_name\": \"p2p.example.com\"}", &error), 0);
  CU_ASSERT_EQUAL (apply (settings, "{\"server_name\": \"198.18.0.1\"}", &error),
                   CANOPY_SETTINGS_NAME);

  apply (settings, "{\"server_name\": \"ok.example.com\", \"colour\": 1}", &error);
  CU_ASSERT (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_UNKNOWN_FIELD));
  CU_ASSERT_STRING_EQUAL (settings->name, "198.18.0.1"); /* nothing partly applied */
  g_clear_error (&error);
  apply (settings, "{\"server_name\": \"-bad-.example\"}", &error);
  CU_ASSERT (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_INVALID));
  g_clear_error (&error);
  apply (settings, "{\"assigned_groups\": \"Finance\"}", &error);
  CU_ASSERT (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_INVALID));
  g_clear_error (&error);
  apply (settings, "{\"assigned_groups\": [\"Fin\\nance\"]}", &error);
  CU_ASSERT (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_INVALID));
  g_clear_error (&error);

  /* No-office clients fetch from the origin unless the admin refuses them. */
  CU_ASSERT_EQUAL (settings->no_office_clients, CANOPY_NO_OFFICE_ORIGIN);
  apply (settings, "{\"no_office_clients\": \"nobody\"}", &error);
  CU_ASSERT (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_INVALID));
  CANOPY_ASSERT_CONTAINS (error->message, "\"refuse\"");
  g_clear_error (&error);
  CU_ASSERT_EQUAL (apply (settings, "{\"no_office_clients\": \"refuse\"}", &error),
                   CANOPY_SETTINGS_NO_OFFICE);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_EQUAL (settings->no_office_clients, CANOPY_NO_OFFICE_REFUSE);
  CU_ASSERT_STRING_EQUAL (canopy_settings_field_to_action (CANOPY_SETTINGS_NO_OFFICE),
                          "settings.no-office-clients");
  CU_ASSERT_EQUAL (apply (settings, "{\"no_office_clients\": \"origin\"}", &error),
                   CANOPY_SETTINGS_NO_OFFICE);

  shown = canopy_settings_to_json (settings);
  text = json_to_string (shown, FALSE);
  CU_ASSERT_STRING_EQUAL (text, "{\"server_name\":\"198.18.0.1\",\"distribution_optimization\""
                                ":false,\"assigned_groups\":[\"Finance\",\"Sales\"],"
                                "\"topology_uploaded\":false,\"no_office_clients\":\"origin\"}");
}

static void
test_settings_topology (void)
{
  g_autoptr (CanopySettings) settings = sample_settings ();
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) problems = NULL;
  g_autoptr (GArray) locations = NULL;
  g_autoptr (CanopyTopology) off = canopy_settings_build_topology (settings, NULL, NULL, &error);

  CU_ASSERT_PTR_NOT_NULL (off);
  settings->distribution_optimization = TRUE;
  CU_ASSERT_PTR_NULL (canopy_settings_build_topology (settings, NULL, NULL, &error));
  CU_ASSERT (g_error_matches (error, CANOPY_SETTINGS_ERROR, CANOPY_SETTINGS_ERROR_NO_TOPOLOGY));
  g_clear_error (&error);
  settings->topology_csv = g_strdup ("office,subnets\nA,198.18.0.0/24\nB,not-a-subnet\n");
  CU_ASSERT_PTR_NULL (canopy_settings_build_topology (settings, &problems, &locations, &error));
  CU_ASSERT_EQUAL_FATAL (locations->len, 1);
  CU_ASSERT_EQUAL (g_array_index (locations, CanopyTopologyLocation, 0).line, 3);
  CU_ASSERT_EQUAL (g_array_index (locations, CanopyTopologyLocation, 0).column, 2);
}

CANOPY_TEST_SUITE (console_auth, "console-auth", NULL, NULL,
                   { "token", test_token },
                   { "admins", test_admins },
                   { "lockout", test_lockout },
                   { "lockout grows", test_lockout_grows },
                   { "settings from JSON", test_settings_json },
                   { "settings and topology", test_settings_topology })
