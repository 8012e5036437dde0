/* The daemon command line shared by canopyd and canopy-agent, so both
 * behave the same way for admins and for systemd. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-program"

#include "lib/program.h"
#include "lib/i18n.h"
#include "lib/log.h"
#include "lib/plugin-loader.h"
#include "lib/service.h"

#include <locale.h>
#include <sys/resource.h>

typedef struct {
  const CanopyProgramClass *klass;
  gpointer state;
  CanopyLog *log;
  const char *debug_override;
} Program;

void
canopy_program_init_i18n (void)
{
  const char *localedir = g_getenv ("CANOPY_LOCALEDIR");

  setlocale (LC_ALL, "");
  /* CANOPY_LOCALEDIR points a build tree's programs (and its tests) at
   * catalogs that are not installed yet. */
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && *localedir != '\0' ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
}

static void
apply_logging (Program *program)
{
  canopy_log_set_debug_domains (program->log,
                                program->debug_override != NULL
                                  ? program->debug_override
                                  : program->klass->get_debug_domains (program->state));
}

static void
on_reload (gpointer user_data)
{
  Program *program = user_data;
  g_autoptr (GError) error = NULL;
  g_autofree char *summary = NULL;

  if (!program->klass->reload (program->state, &error))
    {
      g_warning (_("Keeping the running configuration, because the new one is not valid:\n%s"),
                 error->message);
      return;
    }
  apply_logging (program);
  summary = program->klass->describe (program->state);
  g_message (_("Configuration reloaded: %s"), summary);
}

static int
check_config (const CanopyProgramClass *klass, const char *path)
{
  g_autoptr (GError) error = NULL;
  gpointer state = klass->load (path, &error);

  if (state == NULL)
    {
      g_printerr ("%s\n", error->message);
      return CANOPY_EXIT_CONFIG;
    }
  klass->free (state);
  g_print (_("%s: the configuration is valid\n"), path);
  return CANOPY_EXIT_OK;
}

static int
list_plugins (void)
{
  g_autoptr (CanopyPluginLoader) loader = canopy_plugin_loader_new (NULL);
  g_auto (GStrv) names = canopy_plugin_loader_discover (loader);
  g_autofree char *path = g_strjoinv (G_SEARCHPATH_SEPARATOR_S,
                                      (char **) canopy_plugin_loader_get_search_path (loader));

  g_print (_("Plugins in %s:\n"), path);
  for (char **name = names; *name != NULL; name++)
    {
      g_autoptr (GError) error = NULL;
      const CanopyPlugin *plugin =
        canopy_plugin_loader_load (loader, *name, CANOPY_PLUGIN_LOADER_ANY_KIND, &error);
      const CanopyPluginDescriptor *desc;

      if (plugin == NULL)
        {
          g_print ("  %-12s %s\n", *name, error->message);
          continue;
        }
      desc = canopy_plugin_get_descriptor (plugin);
      g_print ("  %-12s %-10s %-8s %s\n", *name, canopy_plugin_kind_to_string (desc->kind),
               desc->version, desc->description != NULL ? desc->description : "");
    }
  return CANOPY_EXIT_OK;
}

/* A server holds a socket per agent: allow as many descriptors as the
 * system lets this process have. */
static void
raise_descriptor_limit (void)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_NOFILE, &limit);
    }
}

static gboolean
on_drain (gpointer user_data)
{
  Program *program = user_data;

  return program->klass->drain (program->state);
}

static int
run (Program *program, const char *config_path)
{
  const CanopyProgramClass *klass = program->klass;
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyService) service = NULL;
  g_autofree char *summary = NULL;
  int signum;

  raise_descriptor_limit ();
  program->state = klass->load (config_path, &error);
  if (program->state == NULL)
    {
      g_printerr (_("%s cannot start:\n%s\n"), klass->name, error->message);
      return CANOPY_EXIT_CONFIG;
    }
  apply_logging (program);

  service = canopy_service_new (NULL, on_reload, program);
  if (klass->drain != NULL)
    canopy_service_set_drain (service, on_drain);
  if (klass->start != NULL && !klass->start (program->state, &error))
    {
      g_printerr (_("%s cannot start:\n%s\n"), klass->name, error->message);
      klass->free (program->state);
      return CANOPY_EXIT_RUNTIME;
    }
  summary = klass->describe (program->state);
  canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_PROGRAM_STARTED, NULL,
                    _("%s %s started: %s"), klass->name, PACKAGE_VERSION, summary);
  signum = canopy_service_run (service);
  if (klass->stop != NULL)
    klass->stop (program->state);
  klass->free (program->state);
  canopy_log_event (G_LOG_DOMAIN, G_LOG_LEVEL_MESSAGE, CANOPY_LOG_PROGRAM_STOPPED, NULL,
                    _("%s stopped (signal %d)"), klass->name, signum);
  return CANOPY_EXIT_OK;
}

static const CanopyProgramCommand *
find_command (const CanopyProgramClass *klass, const char *name)
{
  for (const CanopyProgramCommand *c = klass->commands; c != NULL && c->name != NULL; c++)
    if (g_str_equal (c->name, name))
      return c;
  return NULL;
}

static char *
describe_commands (const CanopyProgramClass *klass)
{
  GString *text = g_string_new (NULL);

  for (const CanopyProgramCommand *c = klass->commands; c != NULL && c->name != NULL; c++)
    g_string_append_printf (text, "%s  %s %-12s %s", text->len > 0 ? "\n" : "", klass->name,
                            c->name, _(c->summary));
  if (text->len > 0)
    g_string_prepend (text, _("Commands:\n"));
  return g_string_free (text, FALSE);
}

/* "--debug help": the domains a debug setting can name. */
static int
list_log_domains (void)
{
  g_print (_("Log domains (a name also covers every domain that starts with it and a dash, "
             "\"canopyd\" every \"canopyd-*\"; \"all\" covers every domain):\n"));
  for (const char *const *d = canopy_log_get_known_domains (); *d != NULL; d++)
    g_print ("  %s\n", *d);
  return CANOPY_EXIT_OK;
}

int
canopy_program_main (const CanopyProgramClass *klass, int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  g_autofree char *check_path = NULL;
  g_autofree char *debug = NULL;
  g_autofree char *config_help = NULL;
  gboolean version = FALSE;
  gboolean plugins = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, NULL, N_("FILE") },
    { "check-config", 0, 0, G_OPTION_ARG_FILENAME, &check_path,
      N_("Check FILE and the plugins it names, then exit"), N_("FILE") },
    { "debug", 'd', 0, G_OPTION_ARG_STRING, &debug,
      N_("Show debug messages of these log domains (comma-separated, \"all\", or \"help\" "
         "to list them)"),
      N_("DOMAINS") },
    { "list-plugins", 0, 0, G_OPTION_ARG_NONE, &plugins,
      N_("List the installed plugins and exit"), NULL },
    { "version", 'V', 0, G_OPTION_ARG_NONE, &version, N_("Print the version and exit"), NULL },
    G_OPTION_ENTRY_NULL
  };
  g_autoptr (GOptionContext) context = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyLog) log = canopy_log_new ();
  Program program = { klass, NULL, log, NULL };

  const CanopyProgramCommand *command = argc > 1 ? find_command (klass, argv[1]) : NULL;
  g_autofree char *commands_help = NULL;

  canopy_program_init_i18n ();
  canopy_log_install (log);
  if (command != NULL)
    return command->run (argc - 1, argv + 1);

  config_help = g_strdup_printf (_("Read the configuration from FILE (default: %s)"),
                                 klass->default_config);
  entries[0].description = config_help;
  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, _(klass->summary));
  commands_help = describe_commands (klass);
  if (commands_help[0] != '\0')
    g_option_context_set_description (context, commands_help);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr (_("%s\nRun \"%s --help\" to see the options.\n"), error->message, klass->name);
      return CANOPY_EXIT_USAGE;
    }
  if (argc > 1)
    {
      g_printerr (_("Unexpected argument \"%s\".\nRun \"%s --help\" to see the options.\n"),
                  argv[1], klass->name);
      return CANOPY_EXIT_USAGE;
    }
  if (version)
    {
      g_print ("%s %s (plugin ABI %d)\n", klass->name, PACKAGE_VERSION, CANOPY_PLUGIN_ABI);
      return CANOPY_EXIT_OK;
    }
  if (check_path != NULL)
    return check_config (klass, check_path);
  if (plugins)
    return list_plugins ();
  if (g_strcmp0 (debug, "help") == 0)
    return list_log_domains ();

  program.debug_override = debug;
  canopy_log_set_debug_domains (log, debug);
  return run (&program, config_path != NULL ? config_path : klass->default_config);
}
