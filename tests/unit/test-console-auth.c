/* Console API authentication and settings, without a server: the token
 * check, the lockout of an address with a clock the test moves, and the
 * strict reading of settings changes. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "server/console-auth.h"
#include "server/settings.h"

#include <string.h>

static CanopyConsoleAuth *
new_auth (char **bearer)
{
  g_autoptr (CanopySharedKey) key = canopy_shared_key_generate (NULL);
  guint8 token[CANOPY_KEYS_CONSOLE_TOKEN_SIZE];
  g_autofree char *hex = NULL;

  g_assert (key != NULL && canopy_keys_derive_console_token (key, token, NULL));
  hex = canopy_console_token_format (token);
  *bearer = g_strconcat ("Bearer ", hex, NULL);
  return canopy_console_auth_new (key, NULL);
}

static void
test_token (void)
{
  g_autofree char *bearer = NULL;
  g_autoptr (CanopyConsoleAuth) auth = new_auth (&bearer);
  guint retry;

  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", bearer, 0, &retry),
                   CANOPY_CONSOLE_AUTH_OK);
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", NULL, 0, &retry),
                   CANOPY_CONSOLE_AUTH_MISSING);
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", "Bearer 00", 0, &retry),
                   CANOPY_CONSOLE_AUTH_MISMATCH);
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", "Basic dXNlcjpwYXNz", 0, &retry),
                   CANOPY_CONSOLE_AUTH_MISMATCH);
  /* The scheme is case-insensitive (RFC 7235), the token is hex in any case. */
  bearer[0] = 'b';
  for (char *p = bearer + 7; *p != '\0'; p++)
    *p = g_ascii_toupper (*p);
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", bearer, 0, &retry),
                   CANOPY_CONSOLE_AUTH_OK);
  /* One changed digit is a mismatch. */
  bearer[strlen (bearer) - 1] = bearer[strlen (bearer) - 1] == '0' ? '1' : '0';
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "a", bearer, 0, &retry),
                   CANOPY_CONSOLE_AUTH_MISMATCH);
  CU_ASSERT_EQUAL (canopy_console_auth_get_failures (auth), 3);
}

static void
test_lockout (void)
{
  g_autofree char *bearer = NULL;
  g_autoptr (CanopyConsoleAuth) auth = new_auth (&bearer);
  gint64 now = 1000 * G_USEC_PER_SEC;
  guint retry = 0;

  for (int i = 0; i < CANOPY_CONSOLE_AUTH_MAX_FAILURES; i++)
    CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "10.0.0.1", "Bearer 00", now, &retry),
                     CANOPY_CONSOLE_AUTH_MISMATCH);
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "10.0.0.1", bearer, now, &retry),
                   CANOPY_CONSOLE_AUTH_LOCKED);
  CU_ASSERT_EQUAL (retry, CANOPY_CONSOLE_AUTH_LOCKOUT_S);
  /* Another address is not affected. */
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "10.0.0.2", bearer, now, &retry),
                   CANOPY_CONSOLE_AUTH_OK);
  /* After the lockout the right token gets in again. */
  now += (CANOPY_CONSOLE_AUTH_LOCKOUT_S + 1) * G_USEC_PER_SEC;
  CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "10.0.0.1", bearer, now, &retry),
                   CANOPY_CONSOLE_AUTH_OK);
  /* Failures spread wider than the window never lock. */
  for (int i = 0; i < 3 * CANOPY_CONSOLE_AUTH_MAX_FAILURES; i++)
    {
      now += (CANOPY_CONSOLE_AUTH_WINDOW_S / 2) * G_USEC_PER_SEC;
      CU_ASSERT_NOT_EQUAL (canopy_console_auth_check (auth, "10.0.0.3", "Bearer 00", now, &retry),
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
        canopy_console_auth_check (auth, "10.0.0.1", "Bearer 00", now, &retry);
      CU_ASSERT_EQUAL (canopy_console_auth_check (auth, "10.0.0.1", "Bearer 00", now, &retry),
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

  shown = canopy_settings_to_json (settings);
  text = json_to_string (shown, FALSE);
  CU_ASSERT_STRING_EQUAL (text, "{\"server_name\":\"198.18.0.1\",\"distribution_optimization\""
                                ":false,\"assigned_groups\":[\"Finance\",\"Sales\"],"
                                "\"topology_uploaded\":false}");
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
                   { "lockout", test_lockout },
                   { "lockout grows", test_lockout_grows },
                   { "settings from JSON", test_settings_json },
                   { "settings and topology", test_settings_topology })
