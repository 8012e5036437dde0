/* canopyctl: the admin's command line. Each subcommand is one entry of a
 * table; the console-API subcommands live in ctl-console.c. */
#include "build-config.h"

#include "ctl/ctl-admins.h"
#include "ctl/ctl-client.h"
#include "ctl/ctl-console.h"
#include "ctl/ctl-content.h"
#include "ctl/ctl-device-status.h"
#include "ctl/ctl-table.h"
#include "lib/config.h"
#include "lib/i18n.h"
#include "lib/licence-file.h"
#include "lib/program.h"

#include <string.h>


/* Exit codes, documented in docs/commands.md; the console commands add
 * those of CtlError (3 to 9). */
enum {
  CTL_EXIT_OK = 0,
  CTL_EXIT_FAILED = CTL_ERROR_FAILED,
  CTL_EXIT_USAGE = CTL_ERROR_USAGE,
};

typedef struct {
  const char *name;
  const char *args;    /* the usage after the name */
  const char *summary;
  const char *options; /* "OPTION\tWHAT" lines; NULL: only the global ones */
  const char *example; /* a whole command line, not translated */
  int (*run) (const CtlGlobal *global, int argc, char **argv);
} CtlCommand;

static int ctl_help (const CtlGlobal *global, int argc, char **argv);

static int
ctl_version (const CtlGlobal *global, int argc, char **argv)
{
  if (argc != 1)
    return ctl_console_usage ("canopyctl version");
  if (global->json)
    g_print ("{\n  \"program\" : \"canopyctl\",\n  \"version\" : \"%s\"\n}\n", PACKAGE_VERSION);
  else
    g_print ("canopyctl %s\n", PACKAGE_VERSION);
  return CTL_EXIT_OK;
}

static int
ctl_validate (const CtlGlobal *global, int argc, char **argv)
{
  int status = CTL_EXIT_OK;

  if (argc < 2)
    {
      g_printerr (_("Name the configuration files to check: canopyctl validate FILE...\n"));
      return CTL_EXIT_USAGE;
    }
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "files");
  json_builder_begin_array (b);
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) error = NULL;
      const char *schema = NULL;
      g_autoptr (CanopyConfig) config = canopy_config_load_any (argv[i], &schema, &error);
      const char *program = config == NULL ? NULL
                            : g_str_equal (schema, CANOPY_SCHEMA_AGENT) ? "canopy-agent"
                                                                        : "canopyd";

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "file");
      json_builder_add_string_value (b, argv[i]);
      json_builder_set_member_name (b, "valid");
      json_builder_add_boolean_value (b, config != NULL);
      json_builder_set_member_name (b, "schema");
      if (program != NULL)
        json_builder_add_string_value (b, program);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, error != NULL ? error->message : "");
      json_builder_end_object (b);
      if (config == NULL)
        {
          g_printerr ("%s\n", error->message);
          status = CTL_EXIT_FAILED;
        }
      else if (!global->json)
        g_print (_("%s: follows the %s schema\n"), argv[i], program);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  if (global->json)
    {
      g_autoptr (JsonNode) root = json_builder_get_root (b);
      ctl_console_print_json (root);
    }
  return status;
}

static int
print_public_key (const CtlGlobal *global, const char *key_path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySigningKey) key = canopy_signing_key_load (key_path, &error);
  g_autoptr (GBytes) pub = NULL;
  g_autofree char *encoded = NULL;

  if (key == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CTL_EXIT_FAILED;
    }
  pub = canopy_signing_key_get_public (key);
  encoded = g_base64_encode (g_bytes_get_data (pub, NULL), g_bytes_get_size (pub));
  if (global->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "key_file");
      json_builder_add_string_value (b, key_path);
      json_builder_set_member_name (b, "public_key");
      json_builder_add_string_value (b, encoded);
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      ctl_console_print_json (root);
    }
  else
    g_print ("%s\n", encoded);
  return CTL_EXIT_OK;
}

static int
ctl_licence_keygen (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (argc != 2)
    {
      g_printerr (_("Name the file for the new issuer key: canopyctl licence-keygen FILE\n"));
      return CTL_EXIT_USAGE;
    }
  if (g_file_test (argv[1], G_FILE_TEST_EXISTS))
    {
      g_printerr (_("%s exists already; an issuer key is never overwritten\n"), argv[1]);
      return CTL_EXIT_FAILED;
    }
  if (!canopy_signing_key_generate_file (argv[1], &error))
    {
      g_printerr ("%s\n", error->message);
      return CTL_EXIT_FAILED;
    }
  g_printerr (_("Issuer key written to %s. Its public key, for the servers' configuration:\n"),
              argv[1]);
  return print_public_key (global, argv[1]);
}

static int
ctl_licence_issue (const CtlGlobal *global, int argc, char **argv)
{
  g_autofree char *key_path = NULL, *customer = NULL, *expires = NULL;
  int seats = 0;
  const GOptionEntry entries[] = {
    { "key", 0, 0, G_OPTION_ARG_FILENAME, &key_path, N_("The issuer key"), N_("FILE") },
    { "customer", 0, 0, G_OPTION_ARG_STRING, &customer, N_("Who the licence is for"),
      N_("NAME") },
    { "seats", 0, 0, G_OPTION_ARG_INT, &seats, N_("Licensed devices"), N_("N") },
    { "expires", 0, 0, G_OPTION_ARG_STRING, &expires, N_("Last valid day (YYYY-MM-DD)"),
      N_("DATE") },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySigningKey) key = NULL;
  CanopyLicenceFile licence = { NULL, 0, NULL };
  g_autofree char *text = NULL;

  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error) || key_path == NULL
      || customer == NULL || seats <= 0 || strchr (customer, '\n') != NULL)
    {
      g_printerr (_("Usage: canopyctl licence-issue --key FILE --customer NAME --seats N "
                    "[--expires YYYY-MM-DD]\n"));
      return CTL_EXIT_USAGE;
    }
  if (expires != NULL)
    {
      g_autofree char *iso = g_strconcat (expires, "T00:00:00Z", NULL);
      licence.expires = g_date_time_new_from_iso8601 (iso, NULL);
      if (licence.expires == NULL)
        {
          g_printerr (_("\"%s\" is not a date; write YYYY-MM-DD\n"), expires);
          return CTL_EXIT_USAGE;
        }
    }
  key = canopy_signing_key_load (key_path, &error);
  licence.customer = customer;
  licence.seats = (guint) seats;
  if (key != NULL)
    text = canopy_licence_file_write (&licence, key, &error);
  g_clear_pointer (&licence.expires, g_date_time_unref);
  if (text == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CTL_EXIT_FAILED;
    }
  g_print ("%s", text);
  return CTL_EXIT_OK;
}

static int
ctl_licence_show (const CtlGlobal *global, int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *text = NULL;
  g_autoptr (CanopyVerifyKey) verify = NULL;
  g_autoptr (CanopyLicenceFile) licence = NULL;
  g_autofree char *expires = NULL;

  if (argc != 3)
    {
      g_printerr (_("Usage: canopyctl licence-show FILE ISSUER-PUBLIC-KEY\n"));
      return CTL_EXIT_USAGE;
    }
  if (!g_file_get_contents (argv[1], &text, NULL, &error)
      || (verify = canopy_verify_key_new_from_base64 (argv[2], &error)) == NULL
      || (licence = canopy_licence_file_read (text, verify, &error)) == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CTL_EXIT_FAILED;
    }
  if (global->json)
    {
      g_autoptr (JsonBuilder) b = json_builder_new ();
      g_autoptr (JsonNode) root = NULL;
      g_autofree char *when = licence->expires != NULL
                                ? g_date_time_format (licence->expires, "%Y-%m-%dT%H:%M:%SZ")
                                : NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "customer");
      json_builder_add_string_value (b, licence->customer);
      json_builder_set_member_name (b, "seats");
      json_builder_add_int_value (b, licence->seats);
      json_builder_set_member_name (b, "expires");
      if (when != NULL)
        json_builder_add_string_value (b, when);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "signature");
      json_builder_add_string_value (b, "valid");
      json_builder_end_object (b);
      root = json_builder_get_root (b);
      ctl_console_print_json (root);
      return CTL_EXIT_OK;
    }
  expires = licence->expires != NULL ? g_date_time_format (licence->expires, "%Y-%m-%d")
                                     : g_strdup (_("never"));
  g_print (_("customer: %s\nseats: %u\nexpires: %s\nsignature: valid\n"), licence->customer,
           licence->seats, expires);
  return CTL_EXIT_OK;
}

/* Each option line is "OPTION\tWHAT IT DOES"; docs/commands.md has a
 * section per command saying the same at more length (a test checks both). */
static const CtlCommand commands[] = {
  { "admin-add", N_("NAME --role ROLE [--expires DAYS]"),
    N_("Add a console admin, or give one a new token; the token is printed once"),
    N_("--role ROLE\tadministrator, operator or auditor\n"
       "--expires DAYS\tdays until the token expires (fractions allowed; 0: never)"),
    "canopyctl admin-add carl --role auditor --expires 30", ctl_admins_add },
  { "admin-revoke", N_("NAME|TOKEN-ID"),
    N_("Remove a console admin with their tokens, or revoke one token"), NULL,
    "canopyctl admin-revoke carl", ctl_admins_revoke },
  { "admins", "", N_("List the console admins and their token IDs (never a token)"), NULL,
    "canopyctl admins", ctl_admins_list },
  { "content", "", N_("List the registered content"), NULL, "canopyctl content -o wide",
    ctl_content_list },
  { "content-add", N_("--name NAME --version VERSION LOCATION"),
    N_("Register content from an http(s) URL or an absolute path on the server; the server "
       "reads it once to build and sign its manifest"),
    N_("--name NAME\tthe content's name, as devices and admins see it\n"
       "--version VERSION\tits version"),
    "canopyctl content-add --name Editor --version 2.1 https://files.example.com/editor.pkg",
    ctl_content_add },
  { "content-expire", N_("CONTENT TIME|never"),
    N_("Give content an expiry date (RFC 3339); past it the server retires its deployments"),
    NULL, "canopyctl content-expire \"Editor 2.1\" 2027-06-30T00:00:00Z", ctl_content_expire },
  { "content-remove", N_("CONTENT"),
    N_("Forget a content (remove its deployments first); CONTENT is its ID, a unique ID "
       "prefix, or \"NAME VERSION\""),
    NULL, "canopyctl content-remove \"Editor 2.1\"", ctl_content_remove },
  { "content-store", "",
    N_("Show the server's content store: directory, quota, space used, upload slots, bytes "
       "sent, and for each content whether the server seeds it and, if not, why"),
    NULL, "canopyctl content-store", ctl_content_store },
  { "deploy", N_("--content CONTENT --group GROUP [--group GROUP...] --destination PATH "
                 "[--start TIME] [--deadline TIME] [--window HH:MM-HH:MM] [--background]"),
    N_("Deploy content to the devices of assigned groups, put at PATH on each device; a "
       "group that is not assigned, or the same deployment twice, is refused. Content moves "
       "after the start, inside the daily window of each office's local time, or at any time "
       "once the deadline passed"),
    N_("--content CONTENT\tthe content's ID, a unique ID prefix, or \"NAME VERSION\"\n"
       "--group GROUP\tan assigned group; repeat for several\n"
       "--destination PATH\tthe absolute path of the package on each device\n"
       "--start TIME\tmove nothing before this RFC 3339 time\n"
       "--deadline TIME\tpast this RFC 3339 time, ignore the window\n"
       "--window HH:MM-HH:MM\ta daily window in each office's local time\n"
       "--background\teach office's lead yields to other traffic on its WAN link"),
    "canopyctl deploy --content \"Editor 2.1\" --group Finance --destination /opt/editor.pkg",
    ctl_content_deploy },
  { "deployment-cancel", N_("DEPLOYMENT"),
    N_("Stop a deployment on every device; it stays listed with what each did"), NULL,
    "canopyctl deployment-cancel 3f2a", ctl_content_deployment_cancel },
  { "deployment-remove", N_("DEPLOYMENT"),
    N_("Remove a deployment; DEPLOYMENT is its ID or a unique ID prefix"), NULL,
    "canopyctl deployment-remove 3f2a", ctl_content_deployment_remove },
  { "deployment-retire", N_("DEPLOYMENT"),
    N_("Retire a deployment: stop it everywhere and remove its package from each device "
       "where the file is unchanged; changed files are left alone and reported"),
    NULL, "canopyctl deployment-retire 3f2a", ctl_content_deployment_retire },
  { "deployment-show",
    N_("DEPLOYMENT [--office NAME] [--state waiting|fetching|done|failed|refused|cancelled]"),
    N_("Show each target device of a deployment: state, progress, bytes by source, role, "
       "sources, last error and last report"),
    N_("--office NAME\tonly the devices of this office\n"
       "--state STATE\tonly the devices in this state"),
    "canopyctl deployment-show 3f2a --state failed", ctl_device_status_show },
  { "deployment-wait", N_("DEPLOYMENT [--timeout SECONDS]"),
    N_("Wait until every known device of the deployment is done, showing bytes, rate, WAN "
       "bytes per office and time left"),
    N_("--timeout SECONDS\tgive up after SECONDS (exit status 6); default: wait as long as "
       "it takes"),
    "canopyctl deployment-wait 3f2a --timeout 3600", ctl_content_deployment_wait },
  { "deployments", "",
    N_("List deployments with each office's progress: devices done, lead, peer and WAN bytes"),
    NULL, "canopyctl deployments", ctl_content_deployments },
  { "devices", N_("[--office NAME] [--group NAME]"),
    N_("List enrolled devices by name, with office, version, rank and why each is preferred "
       "(exit status 9 when a filter matches none)"),
    N_("--office NAME\tonly the devices of this office\n"
       "--group NAME\tonly the devices of this group"),
    "canopyctl devices --office North -o wide", ctl_console_devices },
  { "health", "", N_("Run the health check (exit status 1 if a check failed)"), NULL,
    "canopyctl health", ctl_console_health },
  { "help", N_("[COMMAND]"), N_("Show the commands, or what one command does"),
    N_("--list\tthe command names only, one a line (for shell completion)"),
    "canopyctl help deploy", ctl_help },
  { "licence-issue", N_("--key FILE --customer NAME --seats N [--expires DATE]"),
    N_("Write a signed licence file to standard output"),
    N_("--key FILE\tthe issuer key (\"canopyctl licence-keygen\" makes one)\n"
       "--customer NAME\twho the licence is for\n"
       "--seats N\thow many devices it licenses\n"
       "--expires DATE\tthe last valid day, YYYY-MM-DD; default: never"),
    "canopyctl licence-issue --key issuer.pem --customer \"Example Ltd\" --seats 500 > "
    "example.licence",
    ctl_licence_issue },
  { "licence-keygen", N_("FILE"), N_("Make a licence issuer key; print its public key"), NULL,
    "canopyctl licence-keygen issuer.pem", ctl_licence_keygen },
  { "licence-show", N_("FILE KEY"), N_("Check a licence file's signature and show it"), NULL,
    "canopyctl licence-show example.licence \"$(cat issuer.pub)\"", ctl_licence_show },
  { "licences-report", N_("[FILE.csv]"),
    N_("Download the activated-licences report (standard output without FILE)"), NULL,
    "canopyctl licences-report licences.csv", ctl_console_licences_report },
  { "login", N_("--server URL (--fingerprint SHA256 | --certificate FILE | --ca-file FILE) "
                "[--token-file FILE]"),
    N_("Check an admin's token against the server and save the connection profile; the "
       "token is read from the file, typed at the prompt or piped in, never given on the "
       "command line"),
    N_("--server URL\tthe console's address, https://HOST:PORT\n"
       "--fingerprint SHA256\tpin the certificate \"canopyd init\" made, by its fingerprint\n"
       "--certificate FILE\tpin the certificate in this PEM file\n"
       "--ca-file FILE\ttrust certificates this CA signed\n"
       "--token-file FILE\tread the token from this file"),
    "canopyctl login --server https://p2p.example.com:7444 --certificate console-cert.pem "
    "--token-file alice.token",
    ctl_console_login },
  { "logout", "", N_("Remove the connection profile"), NULL, "canopyctl logout",
    ctl_console_logout },
  { "metrics", "", N_("Print the server's Prometheus metrics"), NULL, "canopyctl metrics",
    ctl_console_metrics },
  { "offices", "", N_("List the offices of the topology in force"), NULL, "canopyctl offices",
    ctl_console_offices },
  { "publish", "",
    N_("Publish content: sign every manifest again and offer every deployment again"), NULL,
    "canopyctl publish", ctl_content_publish },
  { "server-id", "", N_("Print the server ID (quote it to support)"), NULL,
    "canopyctl server-id", ctl_console_server_id },
  { "settings", "", N_("Show the Peer Distribution settings"), NULL, "canopyctl settings",
    ctl_console_settings },
  { "settings-set",
    N_("[--server-name NAME] [--optimization on|off] [--groups G1,G2 | --add-group G | "
       "--remove-group G] [--no-office-clients origin|refuse]"),
    N_("Change settings; they are audited, saved and in force at once"),
    N_("--server-name NAME\tthe name or IP agents reach the server at\n"
       "--optimization on|off\tdistribution optimization (offices from the topology)\n"
       "--groups G1,G2\tthe assigned groups, replacing the list\n"
       "--add-group G\tassign a group too; may be repeated\n"
       "--remove-group G\tno longer assign a group; may be repeated\n"
       "--no-office-clients origin|refuse\twhat a device in no office gets"),
    "canopyctl settings-set --add-group Finance --optimization on", ctl_console_settings_set },
  { "topology-download", N_("[FILE.csv]"), N_("Download the topology as recorded"), NULL,
    "canopyctl topology-download offices.csv", ctl_console_topology_download },
  { "topology-upload", N_("FILE.csv"),
    N_("Upload the topology spreadsheet (\"-\": standard input); a file with problems is "
       "refused whole, line by line"),
    NULL, "canopyctl topology-upload offices.csv", ctl_console_topology_upload },
  { "validate", N_("FILE..."), N_("Check configuration files against their schema, offline"),
    NULL, "canopyctl validate /etc/canopy/canopyd.xml", ctl_validate },
  { "version", "", N_("Print the version"), NULL, "canopyctl version --json", ctl_version },
  { "whoami", "", N_("Show the admin and role the profile's token belongs to"), NULL,
    "canopyctl whoami", ctl_admins_whoami },
};

static const CtlCommand *
find_command (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (commands[i].name, name))
      return &commands[i];
  return NULL;
}

/* Help lines fit the terminal; without one, 80 columns. */
static guint
help_width (void)
{
  guint width = ctl_table_terminal_width ();

  return width > 0 ? MIN (width, 100) : 80;
}

static void
print_wrapped (const char *text, guint indent)
{
  g_autofree char *wrapped = ctl_table_wrap (text, indent, help_width ());

  g_print ("%s\n", wrapped);
}

/* Options as "  OPTION  WHAT", each WHAT wrapped on lines of its own when
 * the option is long. */
static void
print_options (const char *options)
{
  g_auto (GStrv) lines = g_strsplit (options, "\n", -1);

  for (char **l = lines; *l != NULL; l++)
    {
      g_auto (GStrv) parts = g_strsplit (*l, "\t", 2);

      if (parts[0] == NULL || parts[1] == NULL)
        continue;
      print_wrapped (parts[0], 2);
      print_wrapped (parts[1], 6);
    }
}

static const char global_options[] =
  N_("--json\tprint JSON (the same as -o json)\n"
     "-o, --output table|wide|json|name\ta table fitted to the terminal, every column whole, "
     "JSON, or the names only\n"
     "--no-headers\ttables without their header line\n"
     "--profile FILE\tthe connection profile (default $CANOPY_PROFILE, else "
     "~/.config/canopy/profile)");

static int
help_for (const CtlCommand *command)
{
  g_autofree char *usage = g_strdup_printf ("canopyctl %s %s", command->name,
                                            _(command->args));

  g_print (_("Usage:\n"));
  print_wrapped (usage, 2);
  g_print ("\n");
  print_wrapped (_(command->summary), 0);
  g_print (_("\nOptions:\n"));
  if (command->options != NULL)
    print_options (_(command->options));
  print_options (_(global_options));
  g_print (_("\nExample:\n"));
  print_wrapped (command->example, 2);
  g_print (_("\nExit status: see \"canopyctl help\".\n"));
  return CTL_EXIT_OK;
}

static int
ctl_help (const CtlGlobal *global, int argc, char **argv)
{
  const CtlCommand *command;

  if (argc == 2 && g_str_equal (argv[1], "--list"))
    {
      for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
        g_print ("%s\n", commands[i].name);
      return CTL_EXIT_OK;
    }
  if (argc == 2)
    {
      command = find_command (argv[1]);
      if (command == NULL)
        {
          g_printerr (_("There is no command \"%s\". Run \"canopyctl help\" to see the "
                        "commands.\n"), argv[1]);
          return CTL_EXIT_USAGE;
        }
      return help_for (command);
    }
  if (argc > 2)
    return ctl_console_usage ("canopyctl help [COMMAND]");
  g_print (_("Usage: canopyctl [OPTIONS] COMMAND [ARGUMENTS]\n"
             "       canopyctl COMMAND --help\n\nOptions:\n"));
  print_options (_(global_options));
  g_print (_("\nCommands:\n"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      print_wrapped (commands[i].name, 2);
      print_wrapped (_(commands[i].summary), 6);
    }
  g_print (_("\nExit status:\n"));
  print_wrapped (_("0 success; 1 the server refused the request, a file is not valid or a "
                   "health check failed; 2 wrong usage; 3 the server cannot be reached or its "
                   "certificate is not trusted; 4 the token is wrong, expired or revoked, or "
                   "the role too low (key mismatch); 5 the server failed; 6 deployment-wait "
                   "timed out; 7 no such ID or name; 8 not logged in; 9 a filter matched "
                   "nothing."),
                 2);
  return CTL_EXIT_OK;
}

static gboolean
set_output (CtlGlobal *global, const char *format)
{
  global->json = g_str_equal (format, "json");
  global->style.wide = g_str_equal (format, "wide");
  global->style.names_only = g_str_equal (format, "name");
  return g_strv_contains ((const char *const[]){ "table", "wide", "json", "name", NULL },
                          format);
}

/* Takes the global options out of @argv, wherever they are. */
static gboolean
take_global_options (int *argc, char **argv, CtlGlobal *global)
{
  int out = 1;

  for (int i = 1; i < *argc; i++)
    {
      if (g_str_equal (argv[i], "--json"))
        global->json = TRUE;
      else if (g_str_equal (argv[i], "--no-headers"))
        global->style.no_headers = TRUE;
      else if (g_str_equal (argv[i], "--profile") || g_str_equal (argv[i], "-o")
               || g_str_equal (argv[i], "--output"))
        {
          if (i + 1 >= *argc)
            return FALSE;
          if (argv[i][1] == 'p' || argv[i][2] == 'p')
            global->profile_path = argv[++i];
          else if (!set_output (global, argv[++i]))
            return FALSE;
        }
      else if (g_str_has_prefix (argv[i], "--profile="))
        global->profile_path = argv[i] + strlen ("--profile=");
      else if (g_str_has_prefix (argv[i], "--output="))
        {
          if (!set_output (global, argv[i] + strlen ("--output=")))
            return FALSE;
        }
      else
        argv[out++] = argv[i];
    }
  argv[out] = NULL;
  *argc = out;
  return TRUE;
}

/* "COMMAND --help" anywhere among its arguments shows its help, before
 * anything is parsed, sent or opened. */
static gboolean
asks_help (int argc, char **argv)
{
  for (int i = 2; i < argc; i++)
    if (g_str_equal (argv[i], "--help") || g_str_equal (argv[i], "-h"))
      return TRUE;
  return FALSE;
}

int
main (int argc, char **argv)
{
  CtlGlobal global = { FALSE, NULL, { FALSE, FALSE, FALSE, 0 } };
  const CtlCommand *command;
  const char *name;

  canopy_program_init_i18n ();
  global.style.width = ctl_table_terminal_width ();
  if (!take_global_options (&argc, argv, &global))
    {
      g_printerr (_("--profile needs a file name, and -o one of table, wide, json or name. "
                    "Run \"canopyctl help\" to see the options.\n"));
      return CTL_EXIT_USAGE;
    }
  if (argc < 2)
    {
      ctl_help (&global, argc, argv);
      return CTL_EXIT_USAGE;
    }
  name = argv[1];
  if (g_str_equal (name, "--help") || g_str_equal (name, "-h"))
    name = "help";
  else if (g_str_equal (name, "--version") || g_str_equal (name, "-V"))
    name = "version";

  command = find_command (name);
  if (command != NULL)
    return asks_help (argc, argv) ? help_for (command)
                                  : command->run (&global, argc - 1, argv + 1);

  g_printerr (_("Unknown command \"%s\". Run \"canopyctl help\" to see the commands.\n"), name);
  return CTL_EXIT_USAGE;
}
