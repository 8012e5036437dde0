/* canopyctl: the admin's command line. Each subcommand is one entry of a
 * table; the console-API subcommands live in ctl-console.c. */
#include "build-config.h"

#include "ctl/ctl-admins.h"
#include "ctl/ctl-client.h"
#include "ctl/ctl-console.h"
#include "ctl/ctl-content.h"
#include "ctl/ctl-device-status.h"
#include "lib/config.h"
#include "lib/i18n.h"
#include "lib/licence-file.h"
#include "lib/program.h"

#include <string.h>


/* Exit codes, documented in README.md; the console commands add those of
 * CtlError (3 to 5). */
enum {
  CTL_EXIT_OK = 0,
  CTL_EXIT_FAILED = CTL_ERROR_FAILED,
  CTL_EXIT_USAGE = CTL_ERROR_USAGE,
};

typedef struct {
  const char *name;
  const char *args;
  const char *summary;
  int (*run) (const CtlGlobal *global, int argc, char **argv);
} CtlCommand;

static int ctl_help (const CtlGlobal *global, int argc, char **argv);

static int
ctl_version (const CtlGlobal *global, int argc, char **argv)
{
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
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GError) error = NULL;
      const char *schema = NULL;
      g_autoptr (CanopyConfig) config = canopy_config_load_any (argv[i], &schema, &error);

      if (config == NULL)
        {
          g_printerr ("%s\n", error->message);
          status = CTL_EXIT_FAILED;
          continue;
        }
      g_print (_("%s: follows the %s schema\n"), argv[i],
               g_str_equal (schema, CANOPY_SCHEMA_AGENT) ? "canopy-agent" : "canopyd");
    }
  return status;
}

static int
print_public_key (const char *key_path)
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
  return print_public_key (argv[1]);
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
  expires = licence->expires != NULL ? g_date_time_format (licence->expires, "%Y-%m-%d")
                                     : g_strdup (_("never"));
  g_print (_("customer: %s\nseats: %u\nexpires: %s\nsignature: valid\n"), licence->customer,
           licence->seats, expires);
  return CTL_EXIT_OK;
}

static const CtlCommand commands[] = {
  { "admin-add", N_("NAME --role administrator|operator|auditor [--expires DAYS]"),
    N_("Add a console admin, or give one a new token; the token is printed once"),
    ctl_admins_add },
  { "admin-revoke", N_("NAME|TOKEN-ID"),
    N_("Remove a console admin with their tokens, or revoke one token"), ctl_admins_revoke },
  { "admins", "", N_("List the console admins and their token IDs (never a token)"),
    ctl_admins_list },
  { "content", "", N_("List the registered content"), ctl_content_list },
  { "content-add", N_("--name NAME --version VERSION LOCATION"),
    N_("Register content from an http(s) URL or an absolute path on the server; the server "
       "reads it once to build and sign its manifest"),
    ctl_content_add },
  { "content-expire", N_("ID TIME|never"),
    N_("Give content an expiry date (RFC 3339); past it the server retires its deployments"),
    ctl_content_expire },
  { "content-remove", N_("ID"), N_("Forget a content (remove its deployments first)"),
    ctl_content_remove },
  { "content-store", "",
    N_("Show the server's content store: directory, quota, space used, upload slots, bytes "
       "sent, and for each content whether the server seeds it and, if not, why"),
    ctl_content_store },
  { "deploy", N_("--content ID --group GROUP [--group GROUP...] --destination PATH "
                 "[--start TIME] [--deadline TIME] [--window HH:MM-HH:MM] [--background]"),
    N_("Deploy content to the devices of groups, put at PATH on each device; content moves "
       "after the start, inside the daily window of each office's local time, or at any time "
       "once the deadline passed; with --background, each office's lead yields to other "
       "traffic on its WAN link"),
    ctl_content_deploy },
  { "deployment-remove", N_("ID"), N_("Remove a deployment"), ctl_content_deployment_remove },
  { "deployment-cancel", N_("ID"),
    N_("Stop a deployment on every device; it stays listed with what each did"),
    ctl_content_deployment_cancel },
  { "deployment-retire", N_("ID"),
    N_("Retire a deployment: stop it everywhere and remove its package from each device "
       "where the file is unchanged; changed files are left alone and reported"),
    ctl_content_deployment_retire },
  { "deployment-show",
    N_("ID [--office NAME] [--state waiting|fetching|done|failed|refused|cancelled]"),
    N_("Show each target device of a deployment: state, progress, bytes by source, role, "
       "sources, last error and last report"),
    ctl_device_status_show },
  { "deployment-wait", N_("ID [--timeout SECONDS]"),
    N_("Wait until every known device of the deployment is done (exit status 6 on timeout)"),
    ctl_content_deployment_wait },
  { "deployments", "",
    N_("List deployments with each office's progress: devices done, lead, peer and WAN bytes"),
    ctl_content_deployments },
  { "devices", N_("[--office NAME] [--group NAME]"),
    N_("List enrolled devices and why each is preferred in its office"), ctl_console_devices },
  { "health", "", N_("Run the health check (exit status 1 if a check failed)"),
    ctl_console_health },
  { "help", "", N_("Show the subcommands"), ctl_help },
  { "licence-issue", N_("--key FILE --customer NAME --seats N [--expires DATE]"),
    N_("Write a signed licence file to standard output"), ctl_licence_issue },
  { "licence-keygen", N_("FILE"), N_("Make a licence issuer key; print its public key"),
    ctl_licence_keygen },
  { "licence-show", N_("FILE KEY"), N_("Check a licence file's signature and show it"),
    ctl_licence_show },
  { "licences-report", N_("[FILE.csv]"),
    N_("Download the activated-licences report (standard output without FILE)"),
    ctl_console_licences_report },
  { "login", N_("--server URL (--fingerprint SHA256 | --certificate FILE | --ca-file FILE) "
                "[--token-file FILE]"),
    N_("Check an admin's token (\"canopyd admin-add\" prints one) against the server and save "
       "the connection profile; the token is read from the file, or typed at the prompt or "
       "piped in, never given on the command line"),
    ctl_console_login },
  { "logout", "", N_("Remove the connection profile"), ctl_console_logout },
  { "metrics", "", N_("Print the server's Prometheus metrics"), ctl_console_metrics },
  { "offices", "", N_("List the offices of the topology in force"), ctl_console_offices },
  { "publish", "",
    N_("Publish content: sign every manifest again and offer every deployment again"),
    ctl_content_publish },
  { "server-id", "", N_("Print the server ID (quote it to support)"), ctl_console_server_id },
  { "settings", "", N_("Show the Peer Distribution settings"), ctl_console_settings },
  { "settings-set",
    N_("[--server-name NAME] [--optimization on|off] [--groups G1,G2 | --add-group G | "
       "--remove-group G] [--no-office-clients origin|refuse]"),
    N_("Change settings; they are audited, saved and in force at once"),
    ctl_console_settings_set },
  { "topology-download", N_("[FILE.csv]"), N_("Download the topology as recorded"),
    ctl_console_topology_download },
  { "topology-upload", N_("FILE.csv"),
    N_("Upload the topology spreadsheet; a file with problems is refused whole, line by line"),
    ctl_console_topology_upload },
  { "validate", N_("FILE..."), N_("Check configuration files against their schema, offline"),
    ctl_validate },
  { "version", "", N_("Print the version"), ctl_version },
  { "whoami", "", N_("Show the admin and role the profile's token belongs to"),
    ctl_admins_whoami },
};

static int
ctl_help (const CtlGlobal *global, int argc, char **argv)
{
  g_print (_("Usage: canopyctl [--json] [--profile FILE] COMMAND [ARGUMENTS]\n\n"
             "  --json          print the server's JSON instead of a table\n"
             "  --profile FILE  the connection profile (default $CANOPY_PROFILE, else "
             "~/.config/canopy/profile)\n\nCommands:\n"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree char *usage = g_strdup_printf ("%s %s", commands[i].name,
                                                commands[i].args[0] != '\0'
                                                  ? _(commands[i].args) : "");
      g_print ("  %s\n      %s\n", usage, _(commands[i].summary));
    }
  g_print (_("\nExit status: 0 success, 1 the command failed (the server refused it, a file is "
             "not valid, a health check failed), 2 wrong usage, 3 the server cannot be reached "
             "or its certificate is not trusted, 4 key mismatch, not logged in or too many "
             "wrong keys, 5 the server failed, 6 deployment-wait timed out.\n"));
  return CTL_EXIT_OK;
}

/* Takes --json and --profile FILE out of @argv, wherever they are. */
static gboolean
take_global_options (int *argc, char **argv, CtlGlobal *global)
{
  int out = 1;

  for (int i = 1; i < *argc; i++)
    {
      if (g_str_equal (argv[i], "--json"))
        global->json = TRUE;
      else if (g_str_equal (argv[i], "--profile"))
        {
          if (i + 1 >= *argc)
            return FALSE;
          global->profile_path = argv[++i];
        }
      else if (g_str_has_prefix (argv[i], "--profile="))
        global->profile_path = argv[i] + strlen ("--profile=");
      else
        argv[out++] = argv[i];
    }
  argv[out] = NULL;
  *argc = out;
  return TRUE;
}

int
main (int argc, char **argv)
{
  CtlGlobal global = { FALSE, NULL };
  const char *name;

  canopy_program_init_i18n ();
  if (!take_global_options (&argc, argv, &global))
    {
      g_printerr (_("--profile needs a file name. Run \"canopyctl help\" to see the "
                    "options.\n"));
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

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (commands[i].name, name))
      return commands[i].run (&global, argc - 1, argv + 1);

  g_printerr (_("Unknown command \"%s\". Run \"canopyctl help\" to see the commands.\n"), name);
  return CTL_EXIT_USAGE;
}
