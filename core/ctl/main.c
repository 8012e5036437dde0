/* canopyctl: the admin's command line. Each subcommand is one entry of a
 * table; the console-API subcommands join it as the API grows. */
#include "build-config.h"

#include "lib/config.h"
#include "lib/i18n.h"
#include "lib/program.h"


/* Exit codes, documented in README.md. */
enum {
  CTL_EXIT_OK = 0,
  CTL_EXIT_FAILED = 1,
  CTL_EXIT_USAGE = 2,
};

typedef struct {
  const char *name;
  const char *args;
  const char *summary;
  int (*run) (int argc, char **argv);
} CtlCommand;

static int ctl_help (int argc, char **argv);

static int
ctl_version (int argc, char **argv)
{
  g_print ("canopyctl %s\n", PACKAGE_VERSION);
  return CTL_EXIT_OK;
}

static int
ctl_validate (int argc, char **argv)
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

static const CtlCommand commands[] = {
  { "help", "", N_("Show the subcommands"), ctl_help },
  { "validate", N_("FILE..."), N_("Check configuration files against their schema, offline"),
    ctl_validate },
  { "version", "", N_("Print the version"), ctl_version },
};

static int
ctl_help (int argc, char **argv)
{
  g_print (_("Usage: canopyctl COMMAND [ARGUMENTS]\n\nCommands:\n"));
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree char *usage = g_strdup_printf ("%s %s", commands[i].name,
                                                commands[i].args[0] != '\0'
                                                  ? _(commands[i].args) : "");
      g_print ("  %-24s %s\n", usage, _(commands[i].summary));
    }
  g_print (_("\nExit status: 0 success, 1 the command failed, 2 wrong usage.\n"));
  return CTL_EXIT_OK;
}

int
main (int argc, char **argv)
{
  const char *name;

  canopy_program_init_i18n ();
  if (argc < 2)
    {
      ctl_help (argc, argv);
      return CTL_EXIT_USAGE;
    }
  name = argv[1];
  if (g_str_equal (name, "--help") || g_str_equal (name, "-h"))
    name = "help";
  else if (g_str_equal (name, "--version") || g_str_equal (name, "-V"))
    name = "version";

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (commands[i].name, name))
      return commands[i].run (argc - 1, argv + 1);

  g_printerr (_("Unknown command \"%s\". Run \"canopyctl help\" to see the commands.\n"), name);
  return CTL_EXIT_USAGE;
}
