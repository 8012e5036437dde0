/* canopyctl's commands for console admins, over the console API: who the
 * profile's token belongs to, the admins and their token IDs (never a
 * token), a new admin or token (printed once), and revocation. */
#include "build-config.h"

#include "ctl/ctl-admins.h"
#include "ctl/ctl-table.h"
#include "lib/i18n.h"

#include <json-glib/json-glib.h>
#include <string.h>

static const char *
member_or (JsonObject *o, const char *name, const char *fallback)
{
  JsonNode *node = json_object_get_member (o, name);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return fallback;
  return json_node_get_string (node);
}

static void
show_whoami (const CtlGlobal *global, JsonNode *answer)
{
  JsonObject *o = json_node_get_object (answer);

  g_print (_("%s (%s), token %s, expires %s\n"), member_or (o, "name", "?"),
           member_or (o, "role", "?"), member_or (o, "token_id", "?"),
           member_or (o, "expires", _("never")));
}

int
ctl_admins_whoami (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl whoami");
  return ctl_console_get_and_show (global, "/api/v1/whoami", show_whoami);
}

static void
show_admins (const CtlGlobal *global, JsonNode *answer)
{
  JsonArray *admins = json_object_get_array_member (json_node_get_object (answer), "admins");
  const char *headers[] = { _("NAME"), _("ROLE"), _("TOKEN ID"), _("EXPIRES"), NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);

  for (guint i = 0; i < json_array_get_length (admins); i++)
    {
      JsonObject *admin = json_array_get_object_element (admins, i);
      JsonArray *tokens = json_object_get_array_member (admin, "tokens");
      const char *name = member_or (admin, "name", "?"), *role = member_or (admin, "role", "?");

      if (json_array_get_length (tokens) == 0)
        {
          const char *row[] = { name, role, "-", "-", NULL };
          ctl_table_add_row (table, row);
        }
      for (guint t = 0; t < json_array_get_length (tokens); t++)
        {
          JsonObject *token = json_array_get_object_element (tokens, t);
          const char *row[] = { name, role, member_or (token, "id", "?"),
                                member_or (token, "expires", _("never")), NULL };
          ctl_table_add_row (table, row);
        }
    }
  ctl_table_print (table, &global->style);
}

int
ctl_admins_list (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl admins");
  return ctl_console_get_and_show (global, "/api/v1/admins", show_admins);
}

int
ctl_admins_add (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *role = NULL;
  double days = -1;
  const GOptionEntry entries[] = {
    { "role", 0, 0, G_OPTION_ARG_STRING, &role, NULL, NULL },
    { "expires", 0, 0, G_OPTION_ARG_DOUBLE, &days, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) body = NULL, answer = NULL;
  JsonObject *o;

  if (!ctl_console_parse_options (&argc, &argv, entries, 1) || argc != 2 || role == NULL)
    return ctl_console_usage (_("canopyctl admin-add NAME --role administrator|operator|auditor "
                                "[--expires DAYS]"));
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, argv[1]);
  json_builder_set_member_name (b, "role");
  json_builder_add_string_value (b, role);
  if (days != -1)
    {
      json_builder_set_member_name (b, "expires_days");
      json_builder_add_double_value (b, days);
    }
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  if ((client = ctl_console_open_client (global, &error)) == NULL
      || (answer = ctl_client_request_json (client, "POST", "/api/v1/admins", body, &error))
           == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    {
      ctl_console_print_json (answer);
      return 0;
    }
  o = json_node_get_object (answer);
  if (json_object_get_boolean_member_with_default (o, "existed", FALSE))
    g_print (_("The admin \"%s\" (%s) exists; a new token was issued.\n"),
             member_or (o, "name", "?"), member_or (o, "role", "?"));
  else
    g_print (_("Admin \"%s\" (%s) added.\n"), member_or (o, "name", "?"),
             member_or (o, "role", "?"));
  g_print (_("  token:    %s\n"), member_or (o, "token", "?"));
  g_print (_("  token ID: %s\n"), member_or (o, "token_id", "?"));
  g_print (_("  expires:  %s\n\n"), member_or (o, "expires", _("never")));
  g_print (_("Copy the token now: it is shown only this once. Give it to the admin, who logs "
             "in with \"canopyctl login ... --token-file FILE\" or the web console.\n"));
  return 0;
}

/* The path that removes @what: an admin by name, or the token of that ID. */
static char *
find_target (JsonNode *list, const char *what)
{
  JsonArray *admins = json_object_get_array_member (json_node_get_object (list), "admins");

  for (guint i = 0; i < json_array_get_length (admins); i++)
    {
      JsonObject *admin = json_array_get_object_element (admins, i);
      JsonArray *tokens = json_object_get_array_member (admin, "tokens");
      const char *name = member_or (admin, "name", "");

      if (g_str_equal (name, what))
        return g_strdup_printf ("/api/v1/admins/%s", name);
      for (guint t = 0; t < json_array_get_length (tokens); t++)
        if (g_str_equal (member_or (json_array_get_object_element (tokens, t), "id", ""), what))
          return g_strdup_printf ("/api/v1/admins/%s/tokens/%s", name, what);
    }
  return NULL;
}

int
ctl_admins_revoke (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) list = NULL;
  g_autoptr (GBytes) response = NULL;
  g_autofree char *target = NULL;

  if (argc != 2)
    return ctl_console_usage ("canopyctl admin-revoke NAME|TOKEN-ID");
  if ((client = ctl_console_open_client (global, &error)) == NULL
      || (list = ctl_client_request_json (client, "GET", "/api/v1/admins", NULL, &error)) == NULL)
    return ctl_console_fail (global, client, error);
  target = find_target (list, argv[1]);
  if (target == NULL)
    {
      g_printerr (_("There is no admin or token \"%s\"; \"canopyctl admins\" lists them\n"),
                  argv[1]);
      return CTL_ERROR_FAILED;
    }
  response = ctl_client_request (client, "DELETE", target, NULL, NULL, &error);
  if (response == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    return 0;
  if (strstr (target, "/tokens/") != NULL)
    g_print (_("The token %s is revoked.\n"), argv[1]);
  else
    g_print (_("The admin \"%s\" and every token of theirs are removed.\n"), argv[1]);
  return 0;
}
