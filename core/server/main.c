/* canopyd: the canopy server's entry point. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd"

#include "server/admin-commands.h"
#include "server/server.h"
#include "server/setup.h"
#include "lib/i18n.h"
#include "lib/program.h"

static gpointer
server_load (const char *path, GError **error)
{
  return canopy_server_new (path, error);
}

static char *
server_describe (gpointer state)
{
  return canopy_server_describe (state);
}

static const char *
server_debug_domains (gpointer state)
{
  return canopy_server_get_config (state)->debug_domains;
}

static gboolean
server_reload (gpointer state, GError **error)
{
  return canopy_server_reload (state, error) != NULL;
}

static void
print_setup (const CanopySetupResult *result)
{
  g_print (_("canopy server state in %s\n"), result->state_directory);
  g_print (_("  server ID:   %s\n"), result->server_id);
  if (result->key_is_new)
    {
      char *text = canopy_shared_key_format (result->shared_key);

      g_print (_("  shared key:  %s\n\n"), text);
      g_print (_("Copy the shared key now: it is shown only this once. Give it to the agents: "
                 "it enrols devices and never opens the console. Each group of five ends with "
                 "a check character, so a typing mistake is reported as one.\n"));
      canopy_shared_key_free_text (text);
    }
  else
    g_print (_("  shared key:  kept (run \"canopyd init --regenerate-key\" to replace it; "
               "every agent then needs the new key)\n"));
  if (result->signing_key_is_new)
    g_print (_("  A new content-signing key was created.\n"));
}

static int
init_command (int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  gboolean regenerate = FALSE;
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      N_("Read the configuration from FILE"), N_("FILE") },
    { "regenerate-key", 0, 0, G_OPTION_ARG_NONE, &regenerate,
      N_("Replace the shared key; holders of the old key are refused from then on"), NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GOptionContext) context = g_option_context_new (NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyServer) server = NULL;
  g_autoptr (CanopySetupResult) result = NULL;
  g_autofree char *database = NULL;
  g_autofree char *fingerprint = NULL;
  gboolean cert_is_new = FALSE;

  g_option_context_set_summary (context, _("Create the server's state: server ID, shared key, "
                                           "content-signing key and database. Safe to run "
                                           "again: what exists is kept."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr (_("%s\nRun \"canopyd init --help\" to see the options.\n"), error->message);
      return CANOPY_EXIT_USAGE;
    }
  server = canopy_server_new (config_path != NULL ? config_path : CANOPY_SERVER_CONFIG_DEFAULT,
                              &error);
  if (server == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_CONFIG;
    }
  result = canopy_setup_run (canopy_server_get_config (server)->state_directory, regenerate,
                             &error);
  if (result == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_RUNTIME;
    }
  database = canopy_server_init_database (server, regenerate ? "shared-key.regenerated" : NULL,
                                          &error);
  if (database == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_RUNTIME;
    }
  if (!canopy_setup_ensure_console_certificate (result->state_directory,
                                                canopy_server_get_config (server)->name,
                                                &cert_is_new, &fingerprint, &error))
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_RUNTIME;
    }
  print_setup (result);
  g_print (_("  database:    %s\n"), database);
  if (cert_is_new)
    g_print (_("  console certificate: new, SHA-256 fingerprint %s\n"), fingerprint);
  else
    g_print (_("  console certificate: kept, SHA-256 fingerprint %s\n"), fingerprint);
  g_print (_("    Compare it with what a browser shows, or give it to "
             "\"canopyctl login --fingerprint\".\n"));
  g_print (_("  console admins: manage them with \"canopyd admin-add NAME --role "
             "administrator\", which prints the token to log in with; see \"canopyd "
             "admin-list\".\n"));
  return CANOPY_EXIT_OK;
}

static gboolean
server_start (gpointer state, GError **error)
{
  return canopy_server_start (state, error);
}

static gboolean
server_drain (gpointer state)
{
  return canopy_server_drain (state);
}

static void
server_stop (gpointer state)
{
  canopy_server_stop (state);
}

static const CanopyProgramCommand commands[] = {
  { "init", N_("create the server ID, shared key, signing key and database (safe to rerun)"),
    init_command },
  { "admin-add", N_("add a console admin with a role, or give one a new token (printed once)"),
    canopy_admin_commands_add },
  { "admin-list", N_("list the console admins and their token IDs, never the tokens"),
    canopy_admin_commands_list },
  { "admin-revoke", N_("remove a console admin, or revoke one token by its ID"),
    canopy_admin_commands_revoke },
  { NULL, NULL, NULL },
};

static const CanopyProgramClass canopyd = {
  .name = "canopyd",
  .summary = N_("canopy server: enrolment, topology, licensing and distribution planning for "
                "peer-to-peer software deployment."),
  .default_config = CANOPY_SERVER_CONFIG_DEFAULT,
  .load = server_load,
  .free = (void (*) (gpointer)) canopy_server_free,
  .describe = server_describe,
  .get_debug_domains = server_debug_domains,
  .reload = server_reload,
  .start = server_start,
  .drain = server_drain,
  .stop = server_stop,
  .commands = commands,
};

int
main (int argc, char **argv)
{
  return canopy_program_main (&canopyd, argc, argv);
}
