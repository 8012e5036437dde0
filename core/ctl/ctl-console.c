/* canopyctl's console-API subcommands. An admin's token is read from a
 * file or typed at a prompt and kept in the profile (mode 0600); it never
 * appears on the command line. */
#include "build-config.h"

#include "ctl/ctl-console.h"
#include "ctl/ctl-client.h"
#include "ctl/ctl-table.h"
#include "lib/i18n.h"
#include "lib/keys.h"

#include <errno.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static char *
profile_path (const CtlGlobal *global)
{
  return global->profile_path != NULL ? g_strdup (global->profile_path)
                                      : ctl_profile_default_path ();
}

/* Prints @error and returns the exit status it stands for; with --json the
 * server's own error object goes to standard output too. */
/* The "error" of canopyctl's own JSON errors, one per exit status. */
static const char *
error_name (const GError *error)
{
  static const char *const names[] = {
    [CTL_ERROR_FAILED] = "refused",         [CTL_ERROR_USAGE] = "usage",
    [CTL_ERROR_CONNECT] = "unreachable",    [CTL_ERROR_AUTH] = "key-mismatch",
    [CTL_ERROR_SERVER] = "server-failed",   [CTL_ERROR_TIMEOUT] = "timeout",
    [CTL_ERROR_NOT_FOUND] = "not-found",    [CTL_ERROR_NOT_LOGGED_IN] = "not-logged-in",
    [CTL_ERROR_NO_MATCH] = "no-match",
  };

  if (error->domain == CTL_ERROR && error->code > 0 && error->code < (int) G_N_ELEMENTS (names))
    return names[error->code];
  return "refused";
}

static void
print_json_error (const GError *error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (JsonNode) root = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, error_name (error));
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, error->message);
  json_builder_end_object (b);
  root = json_builder_get_root (b);
  ctl_console_print_json (root);
}

int
ctl_console_fail (const CtlGlobal *global, CtlClient *client, const GError *error)
{
  JsonNode *body = client != NULL ? ctl_client_get_error_body (client) : NULL;

  /* With --json a script always gets a JSON error: the server's, or
   * canopyctl's own in the same shape. */
  if (global->json && body != NULL)
    {
      g_autofree char *text = json_to_string (body, TRUE);
      g_print ("%s\n", text);
    }
  else if (global->json)
    print_json_error (error);
  g_printerr ("%s\n", error->message);
  return error->domain == CTL_ERROR ? error->code : CTL_ERROR_FAILED;
}

int
ctl_console_usage (const char *text)
{
  g_printerr (_("Usage: %s\nRun \"canopyctl help\" to see every command.\n"), text);
  return CTL_ERROR_USAGE;
}

CtlClient *
ctl_console_open_client (const CtlGlobal *global, GError **error)
{
  g_autofree char *path = profile_path (global);
  g_autoptr (CtlProfile) profile = ctl_profile_load (path, error);

  return profile != NULL ? ctl_client_new (profile, error) : NULL;
}

void
ctl_console_print_json (JsonNode *node)
{
  g_autofree char *text = json_to_string (node, TRUE);

  g_print ("%s\n", text);
}

void
ctl_console_print_wrapped (const CtlGlobal *global, const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);

  for (char **l = lines; *l != NULL; l++)
    {
      g_autofree char *wrapped = ctl_table_wrap (*l, 0, global->style.width);

      if (l[1] == NULL && (*l)[0] == '\0')
        break;
      g_print ("%s\n", wrapped);
    }
}

void
ctl_console_print_list (JsonNode *node, const char *member)
{
  g_autoptr (JsonObject) wrapper = NULL;
  g_autoptr (JsonNode) root = NULL;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      ctl_console_print_json (node);
      return;
    }
  wrapper = json_object_new ();
  json_object_set_member (wrapper, member, json_node_copy (node));
  root = json_node_init_object (json_node_alloc (), wrapper);
  ctl_console_print_json (root);
}

/* Parses options; FALSE (usage printed) on anything left over or wrong. */
gboolean
ctl_console_parse_options (int *argc, char ***argv, const GOptionEntry *entries, int max_args)
{
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;

  g_option_context_set_help_enabled (context, FALSE);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return FALSE;
    }
  return *argc - 1 <= max_args;
}

/* --- login ---------------------------------------------------------------- */

static char *
prompt_token (GError **error)
{
  struct termios saved, quiet;
  char line[256];
  gboolean echo_off;
  char *text = NULL;

  /* A prompt is for a person; a pipe gets none. */
  if (isatty (STDIN_FILENO))
    g_printerr (_("Admin token (as \"canopyd admin-add\" printed it): "));
  echo_off = tcgetattr (STDIN_FILENO, &saved) == 0;
  if (echo_off)
    {
      quiet = saved;
      quiet.c_lflag &= ~(tcflag_t) ECHO;
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &quiet);
    }
  if (fgets (line, sizeof line, stdin) != NULL)
    text = g_strdup (line);
  if (echo_off)
    {
      tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved);
      g_printerr ("\n");
    }
  canopy_keys_wipe (line, sizeof line);
  if (text == NULL)
    g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                 _("No token was given; type it at the prompt, pipe it to standard input or "
                   "name a file with --token-file"));
  return text;
}

static void
free_secret (char *text)
{
  if (text != NULL)
    canopy_keys_wipe (text, strlen (text));
  g_free (text);
}

/* An admin's token, from @token_file or typed; never from the command
 * line, where other users could read it. */
static char *
read_token (const char *token_file, GError **error)
{
  char *text = NULL;
  char *token;

  if (token_file != NULL)
    {
      if (!g_file_get_contents (token_file, &text, NULL, error))
        {
          (*error)->domain = CTL_ERROR;
          (*error)->code = CTL_ERROR_FAILED;
          return NULL;
        }
    }
  else if ((text = prompt_token (error)) == NULL)
    return NULL;
  token = g_strdup (g_strstrip (text));
  free_secret (text);
  if (!g_str_has_prefix (token, "cnp_") || strchr (token, ' ') != NULL)
    {
      free_secret (token);
      /* What was given is not a token at all: a usage mistake, not a
       * token the server refused. */
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   _("This is not an admin token: tokens start with \"cnp_\". The shared key "
                     "no longer opens the console; ask an administrator for a token "
                     "(\"canopyd admin-add NAME --role ROLE\" on the server)"));
      return NULL;
    }
  return token;
}

/* The trust the profile records: a pinned fingerprint, or a CA file. */
static gboolean
read_trust (CtlProfile *profile, const char *fingerprint, const char *certificate,
            const char *ca_file, GError **error)
{
  if (certificate != NULL)
    {
      g_autoptr (GTlsCertificate) cert = g_tls_certificate_new_from_file (certificate, error);
      g_autoptr (GByteArray) der = NULL;
      g_autoptr (GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);

      if (cert == NULL)
        return FALSE;
      g_object_get (cert, "certificate", &der, NULL);
      g_checksum_update (checksum, der->data, der->len);
      profile->fingerprint = ctl_profile_normalize_fingerprint (g_checksum_get_string (checksum));
    }
  else if (fingerprint != NULL)
    {
      profile->fingerprint = ctl_profile_normalize_fingerprint (fingerprint);
      if (profile->fingerprint == NULL)
        {
          g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                       _("\"%s\" is not a SHA-256 fingerprint; copy the 32 pairs of hex digits "
                         "\"canopyd init\" printed"),
                       fingerprint);
          return FALSE;
        }
    }
  else if (ca_file != NULL)
    profile->ca_file = g_canonicalize_filename (ca_file, NULL);
  else
    {
      g_set_error (error, CTL_ERROR, CTL_ERROR_USAGE,
                   _("Say how to trust the server's certificate: --fingerprint SHA256 (printed "
                     "by \"canopyd init\"), --certificate FILE (its console-cert.pem) or "
                     "--ca-file FILE (the CA that signed yours)"));
      return FALSE;
    }
  return TRUE;
}

int
ctl_console_login (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *server = NULL, *fingerprint = NULL, *certificate = NULL, *ca_file = NULL;
  g_autofree char *token_file = NULL;
  const GOptionEntry entries[] = {
    { "server", 0, 0, G_OPTION_ARG_STRING, &server, NULL, NULL },
    { "fingerprint", 0, 0, G_OPTION_ARG_STRING, &fingerprint, NULL, NULL },
    { "certificate", 0, 0, G_OPTION_ARG_FILENAME, &certificate, NULL, NULL },
    { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &ca_file, NULL, NULL },
    { "token-file", 0, 0, G_OPTION_ARG_FILENAME, &token_file, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (CtlProfile) profile = g_new0 (CtlProfile, 1);
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) answer = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *path = profile_path (global);

  if (!ctl_console_parse_options (&argc, &argv, entries, 0) || server == NULL)
    return ctl_console_usage (_("canopyctl login --server https://HOST:PORT (--fingerprint SHA256 | "
                    "--certificate FILE | --ca-file FILE) [--token-file FILE]"));
  profile->url = g_strdup (server);
  if (!read_trust (profile, fingerprint, certificate, ca_file, &error)
      || (profile->token = read_token (token_file, &error)) == NULL
      || (client = ctl_client_new (profile, &error)) == NULL
      || (answer = ctl_client_request_json (client, "GET", "/api/v1/whoami", NULL, &error))
           == NULL
      || !ctl_profile_save (profile, path, &error))
    return ctl_console_fail (global, client, error);
  if (global->json)
    ctl_console_print_json (answer);
  else
    g_print (_("Logged in to %s as %s (%s); the profile is in %s\n"), profile->url,
             json_object_get_string_member_with_default (json_node_get_object (answer), "name",
                                                         "?"),
             json_object_get_string_member_with_default (json_node_get_object (answer), "role",
                                                         "?"),
             path);
  return 0;
}

int
ctl_console_logout (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *path = profile_path (global);

  if (argc != 1)
    return ctl_console_usage ("canopyctl logout");
  if (g_unlink (path) != 0 && errno != ENOENT)
    {
      g_printerr (_("Cannot remove the connection profile %s: %s\n"), path, g_strerror (errno));
      return CTL_ERROR_FAILED;
    }
  if (global->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "result");
      json_builder_add_string_value (b, "logged-out");
      json_builder_set_member_name (b, "profile");
      json_builder_add_string_value (b, path);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      ctl_console_print_json (root);
    }
  else
    g_print (_("Logged out; %s is removed\n"), path);
  return 0;
}

/* --- simple reads ---------------------------------------------------------- */

/* GETs @path; prints it as JSON or hands it to @table. */
int
ctl_console_get_and_show (const CtlGlobal *global, const char *path, CtlShowFunc table)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = ctl_console_open_client (global, &error);
  g_autoptr (JsonNode) answer = NULL;

  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  answer = ctl_client_request_json (client, "GET", path, NULL, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    ctl_console_print_json (answer);
  else
    table (global, answer);
  return 0;
}

static void
show_server_id (const CtlGlobal *global, JsonNode *answer)
{
  JsonObject *o = json_node_get_object (answer);

  g_print ("%s\n", json_object_get_string_member_with_default (o, "server_id", "?"));
}

int
ctl_console_server_id (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl server-id");
  return ctl_console_get_and_show (global, "/api/v1/server-id", show_server_id);
}

static char *
join_array (JsonObject *o, const char *member, const char *separator)
{
  JsonArray *array = json_object_has_member (o, member) ? json_object_get_array_member (o, member)
                                                        : NULL;
  g_autoptr (GString) out = g_string_new (NULL);

  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    g_string_append_printf (out, "%s%s", i > 0 ? separator : "",
                            json_array_get_string_element (array, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
show_settings (const CtlGlobal *global, JsonNode *answer)
{
  JsonObject *o = json_node_get_object (answer);
  const char *headers[] = { _("SETTING"), _("VALUE"), NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);
  g_autofree char *groups = join_array (o, "assigned_groups", ", ");
  const char *name[] = { _("Server name or IP"),
                         json_object_get_string_member_with_default (o, "server_name", "?"),
                         NULL };
  const char *opt[] = { _("Distribution optimization"),
                        json_object_get_boolean_member_with_default (
                          o, "distribution_optimization", FALSE) ? _("on") : _("off"),
                        NULL };
  const char *grp[] = { _("Assigned groups"), groups[0] != '\0' ? groups : _("(none)"), NULL };
  const char *topo[] = { _("Topology spreadsheet"),
                         json_object_get_boolean_member_with_default (o, "topology_uploaded",
                                                                      FALSE)
                           ? _("uploaded") : _("none"),
                         NULL };
  const char *no_office[] = {
    _("No-office clients"),
    g_strcmp0 (json_object_get_string_member_with_default (o, "no_office_clients", "origin"),
               "refuse") == 0
      ? _("refused")
      : _("fetch from the origin"),
    NULL
  };

  ctl_table_add_row (table, name);
  ctl_table_add_row (table, opt);
  ctl_table_add_row (table, grp);
  ctl_table_add_row (table, topo);
  ctl_table_add_row (table, no_office);
  ctl_table_print (table, &global->style);
}

int
ctl_console_settings (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl settings");
  return ctl_console_get_and_show (global, "/api/v1/settings", show_settings);
}

/* --- settings-set ------------------------------------------------------------ */

static gboolean
parse_switch (const char *text, gboolean *value)
{
  if (g_strv_contains ((const char *const[]){ "on", "true", "yes", NULL }, text))
    *value = TRUE;
  else if (g_strv_contains ((const char *const[]){ "off", "false", "no", NULL }, text))
    *value = FALSE;
  else
    return FALSE;
  return TRUE;
}

/* The groups after --groups, --add-group and --remove-group, from @current. */
static JsonNode *
edit_groups (JsonObject *current, const char *groups, char **add, char **remove)
{
  g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
  JsonArray *array = json_array_new ();
  JsonNode *node = json_node_new (JSON_NODE_ARRAY);

  if (groups != NULL)
    {
      g_auto (GStrv) parts = g_strsplit (groups, ",", -1);
      for (char **p = parts; *p != NULL; p++)
        if (g_strstrip (*p)[0] != '\0')
          g_ptr_array_add (list, g_strdup (*p));
    }
  else
    {
      JsonArray *old = json_object_get_array_member (current, "assigned_groups");
      for (guint i = 0; i < json_array_get_length (old); i++)
        g_ptr_array_add (list, g_strdup (json_array_get_string_element (old, i)));
    }
  for (char **a = add; a != NULL && *a != NULL; a++)
    g_ptr_array_add (list, g_strdup (*a));
  for (guint i = 0; i < list->len; i++)
    if (remove == NULL || !g_strv_contains ((const char *const *) remove,
                                            g_ptr_array_index (list, i)))
      json_array_add_string_element (array, g_ptr_array_index (list, i));
  json_node_take_array (node, array);
  return node;
}

int
ctl_console_settings_set (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *name = NULL, *optimization = NULL, *groups = NULL, *no_office = NULL;
  g_auto (GStrv) add = NULL, remove = NULL;
  const GOptionEntry entries[] = {
    { "server-name", 0, 0, G_OPTION_ARG_STRING, &name, NULL, NULL },
    { "optimization", 0, 0, G_OPTION_ARG_STRING, &optimization, NULL, NULL },
    { "groups", 0, 0, G_OPTION_ARG_STRING, &groups, NULL, NULL },
    { "add-group", 0, 0, G_OPTION_ARG_STRING_ARRAY, &add, NULL, NULL },
    { "remove-group", 0, 0, G_OPTION_ARG_STRING_ARRAY, &remove, NULL, NULL },
    { "no-office-clients", 0, 0, G_OPTION_ARG_STRING, &no_office, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) current = NULL, answer = NULL;
  g_autoptr (JsonObject) change = json_object_new ();
  g_autoptr (JsonNode) body = json_node_new (JSON_NODE_OBJECT);
  gboolean on = FALSE;

  if (!ctl_console_parse_options (&argc, &argv, entries, 0)
      || (name == NULL && optimization == NULL && groups == NULL && add == NULL && remove == NULL
          && no_office == NULL)
      || (optimization != NULL && !parse_switch (optimization, &on)))
    return ctl_console_usage (_("canopyctl settings-set [--server-name NAME] [--optimization on|off] "
                    "[--groups G1,G2 | --add-group G | --remove-group G] "
                    "[--no-office-clients origin|refuse]"));
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  if (name != NULL)
    json_object_set_string_member (change, "server_name", name);
  if (optimization != NULL)
    json_object_set_boolean_member (change, "distribution_optimization", on);
  /* The server checks the value and says what it may be. */
  if (no_office != NULL)
    json_object_set_string_member (change, "no_office_clients", no_office);
  if (groups != NULL || add != NULL || remove != NULL)
    {
      current = ctl_client_request_json (client, "GET", "/api/v1/settings", NULL, &error);
      if (current == NULL)
        return ctl_console_fail (global, client, error);
      json_object_set_member (change, "assigned_groups",
                              edit_groups (json_node_get_object (current), groups, add, remove));
    }
  json_node_set_object (body, change);
  answer = ctl_client_request_json (client, "PUT", "/api/v1/settings", body, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    ctl_console_print_json (answer);
  else
    show_settings (global, answer);
  return 0;
}

/* --- topology ---------------------------------------------------------------- */

int
ctl_console_topology_upload (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (GBytes) csv = NULL, response = NULL;
  g_autoptr (JsonNode) answer = NULL;
  char *text = NULL;
  gsize length = 0;

  if (argc != 2)
    return ctl_console_usage (_("canopyctl topology-upload FILE.csv (\"-\" reads standard input)"));
  if (g_str_equal (argv[1], "-"))
    {
      g_autoptr (GInputStream) in = g_unix_input_stream_new (STDIN_FILENO, FALSE);
      g_autoptr (GOutputStream) out = g_memory_output_stream_new_resizable ();
      if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error) < 0)
        return ctl_console_fail (global, NULL, error);
      csv = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
    }
  else
    {
      if (!g_file_get_contents (argv[1], &text, &length, &error))
        return ctl_console_fail (global, NULL, error);
      csv = g_bytes_new_take (text, length);
    }
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  response = ctl_client_request (client, "PUT", "/api/v1/topology", "text/csv", csv, &error);
  if (response == NULL)
    return ctl_console_fail (global, client, error);
  answer = json_from_string (g_bytes_get_data (response, NULL), NULL);
  if (global->json && answer != NULL)
    ctl_console_print_json (answer);
  else if (answer != NULL && JSON_NODE_HOLDS_OBJECT (answer))
    g_print ("%s\n", json_object_get_string_member_with_default (json_node_get_object (answer),
                                                                 "message", ""));
  return 0;
}

/* Writes @bytes to @path, or to standard output when @path is NULL or "-". */
static int
write_out (const CtlGlobal *global, const char *path, GBytes *bytes)
{
  g_autoptr (GError) error = NULL;

  if (path == NULL || g_str_equal (path, "-"))
    {
      fwrite (g_bytes_get_data (bytes, NULL), 1, g_bytes_get_size (bytes), stdout);
      return 0;
    }
  if (!g_file_set_contents (path, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes),
                            &error))
    return ctl_console_fail (global, NULL, error);
  g_printerr (_("Written to %s\n"), path);
  return 0;
}

static int
download (const CtlGlobal *global, const char *api_path, const char *file)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = ctl_console_open_client (global, &error);
  g_autoptr (GBytes) response = NULL;

  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  response = ctl_client_request (client, "GET", api_path, NULL, NULL, &error);
  if (response == NULL)
    return ctl_console_fail (global, client, error);
  return write_out (global, file, response);
}

int
ctl_console_topology_download (const CtlGlobal *global, int argc, char **argv)
{
  if (argc > 2)
    return ctl_console_usage (_("canopyctl topology-download [FILE.csv]"));
  return download (global, "/api/v1/topology", argc == 2 ? argv[1] : NULL);
}

int
ctl_console_licences_report (const CtlGlobal *global, int argc, char **argv)
{
  if (argc > 2)
    return ctl_console_usage (_("canopyctl licences-report [FILE.csv]"));
  return download (global, "/api/v1/licences/report.csv", argc == 2 ? argv[1] : NULL);
}

int
ctl_console_metrics (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl metrics");
  return download (global, "/metrics", NULL);
}

/* --- health, devices, offices ------------------------------------------------ */

static void
show_health (const CtlGlobal *global, JsonNode *answer)
{
  JsonObject *o = json_node_get_object (answer);
  JsonArray *checks = json_object_get_array_member (o, "checks");
  const char *headers[] = { _("CHECK"), _("STATUS"), _("MESSAGE"), NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);

  for (guint i = 0; i < json_array_get_length (checks); i++)
    {
      JsonObject *c = json_array_get_object_element (checks, i);
      const char *row[] = { json_object_get_string_member_with_default (c, "name", "?"),
                            json_object_get_string_member_with_default (c, "status", "?"),
                            json_object_get_string_member_with_default (c, "message", ""),
                            NULL };
      ctl_table_add_row (table, row);
    }
  ctl_table_print (table, &global->style);
  /* A cut message would hide what to do: the checks that are not ok are
   * said again in full, wrapped to the terminal. */
  if (!global->style.wide && global->style.width > 0)
    for (guint i = 0; i < json_array_get_length (checks); i++)
      {
        JsonObject *c = json_array_get_object_element (checks, i);
        g_autofree char *text = NULL;

        if (g_strcmp0 (json_object_get_string_member_with_default (c, "status", ""), "ok") == 0)
          continue;
        text = g_strdup_printf ("\n%s (%s): %s",
                                json_object_get_string_member_with_default (c, "name", "?"),
                                json_object_get_string_member_with_default (c, "status", "?"),
                                json_object_get_string_member_with_default (c, "message", ""));
        ctl_console_print_wrapped (global, text);
      }
  g_print (_("\nOverall: %s\n"), json_object_get_string_member_with_default (o, "status", "?"));
}

int
ctl_console_health (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) answer = NULL;

  if (argc != 1)
    return ctl_console_usage ("canopyctl health");
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  answer = ctl_client_request_json (client, "GET", "/api/v1/health", NULL, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    ctl_console_print_json (answer);
  else
    show_health (global, answer);
  /* A failed check is a failure for scripts; warnings are not. */
  return g_strcmp0 (json_object_get_string_member_with_default (json_node_get_object (answer),
                                                                "status", ""),
                    "error") == 0
           ? CTL_ERROR_FAILED
           : 0;
}

static void
show_devices (const CtlGlobal *global, JsonNode *answer)
{
  JsonArray *devices = json_object_get_array_member (json_node_get_object (answer), "devices");
  const char *headers[] = { _("NAME"), _("OFFICE"), _("VERSION"), _("ONLINE"), _("RANK"),
                            _("WHY PREFERRED"), _("ID"), NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);

  /* The sentence and the UUID make a line far wider than a terminal. */
  ctl_table_set_wide_only (table, 5);
  ctl_table_set_wide_only (table, 6);
  for (guint i = 0; i < json_array_get_length (devices); i++)
    {
      JsonObject *d = json_array_get_object_element (devices, i);
      JsonObject *p = json_object_get_object_member (d, "preference");
      g_autofree char *rank = g_strdup_printf (
        "%" G_GINT64_FORMAT "%s", json_object_get_int_member_with_default (p, "rank", 0),
        json_object_get_boolean_member_with_default (p, "lead", FALSE) ? _(" (lead)") : "");
      const char *name = json_object_get_string_member_with_default (d, "name", "");
      const char *id = json_object_get_string_member_with_default (d, "device_id", "?");
      const char *row[] = { name[0] != '\0' ? name : id,
                            json_object_get_string_member_with_default (d, "office", "?"),
                            json_object_get_string_member_with_default (d, "agent_version", "?"),
                            json_object_get_boolean_member_with_default (d, "online", FALSE)
                              ? _("yes") : _("no"),
                            rank,
                            json_object_get_string_member_with_default (p, "why", ""),
                            id, NULL };
      ctl_table_add_row (table, row);
    }
  ctl_table_print (table, &global->style);
}

int
ctl_console_devices (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *office = NULL, *group = NULL;
  const GOptionEntry entries[] = {
    { "office", 0, 0, G_OPTION_ARG_STRING, &office, NULL, NULL },
    { "group", 0, 0, G_OPTION_ARG_STRING, &group, NULL, NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GString) path = g_string_new ("/api/v1/devices");

  g_autoptr (GError) error = NULL;
  g_autoptr (CtlClient) client = NULL;
  g_autoptr (JsonNode) answer = NULL;
  JsonArray *devices;

  if (!ctl_console_parse_options (&argc, &argv, entries, 0))
    return ctl_console_usage ("canopyctl devices [--office NAME] [--group NAME]");
  if (office != NULL || group != NULL)
    {
      g_autofree char *o = office != NULL ? g_uri_escape_string (office, NULL, FALSE) : NULL;
      g_autofree char *g = group != NULL ? g_uri_escape_string (group, NULL, FALSE) : NULL;
      g_string_append_printf (path, "?%s%s%s%s%s", o != NULL ? "office=" : "", o != NULL ? o : "",
                              o != NULL && g != NULL ? "&" : "", g != NULL ? "group=" : "",
                              g != NULL ? g : "");
    }
  client = ctl_console_open_client (global, &error);
  if (client == NULL)
    return ctl_console_fail (global, NULL, error);
  answer = ctl_client_request_json (client, "GET", path->str, NULL, &error);
  if (answer == NULL)
    return ctl_console_fail (global, client, error);
  if (global->json)
    ctl_console_print_json (answer);
  else
    show_devices (global, answer);
  devices = json_object_get_array_member (json_node_get_object (answer), "devices");
  /* As grep: a filter that matches nothing is worth an exit status. */
  if ((office != NULL || group != NULL) && json_array_get_length (devices) == 0)
    {
      g_printerr (_("No device matches %s%s%s%s%s; \"canopyctl offices\" lists the offices, "
                    "\"canopyctl settings\" the assigned groups\n"),
                  office != NULL ? "--office " : "", office != NULL ? office : "",
                  office != NULL && group != NULL ? " " : "", group != NULL ? "--group " : "",
                  group != NULL ? group : "");
      return CTL_ERROR_NO_MATCH;
    }
  return 0;
}

static void
show_offices (const CtlGlobal *global, JsonNode *answer)
{
  JsonArray *offices = json_object_get_array_member (json_node_get_object (answer), "offices");
  const char *headers[] = { _("OFFICE"), _("PARENT"), _("TYPE"), _("DEVICES"), _("ONLINE"),
                            _("SUBNETS"), _("TIME ZONE"), _("WAN NOW"), _("WAN SCHEDULE"),
                            NULL };
  g_autoptr (CtlTable) table = ctl_table_new (headers);

  for (guint i = 0; i < json_array_get_length (offices); i++)
    {
      JsonObject *o = json_array_get_object_element (offices, i);
      gint64 rate = json_object_get_int_member_with_default (o, "wan_rate_now", 0);
      g_autofree char *wan = rate > 0 ? g_strdup_printf (_("%.1f Mbit/s"), rate / 1e6)
                                      : g_strdup (_("no limit"));
      const char *schedule = json_object_get_string_member_with_default (o, "wan_schedule", "");
      g_autofree char *subnets = join_array (o, "subnets", "; ");
      g_autofree char *devices = g_strdup_printf (
        "%" G_GINT64_FORMAT, json_object_get_int_member_with_default (o, "devices", 0));
      g_autofree char *online = g_strdup_printf (
        "%" G_GINT64_FORMAT, json_object_get_int_member_with_default (o, "online", 0));
      const char *row[] = { json_object_get_string_member_with_default (o, "name", "?"),
                            json_object_get_string_member_with_default (o, "parent", NULL),
                            json_object_get_string_member_with_default (o, "type", "?"),
                            devices, online, subnets,
                            json_object_get_string_member_with_default (o, "time_zone", "UTC"),
                            wan, schedule[0] != '\0' ? schedule : NULL, NULL };
      ctl_table_add_row (table, row);
    }
  ctl_table_print (table, &global->style);
}

int
ctl_console_offices (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl offices");
  return ctl_console_get_and_show (global, "/api/v1/offices", show_offices);
}
