/* The command line every canopy daemon shares: --config, --check-config,
 * --debug, --list-plugins, --version, and a main loop with reload. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Exit codes of canopyd and canopy-agent, documented in README.md. */
typedef enum {
  CANOPY_EXIT_OK = 0,
  CANOPY_EXIT_CONFIG = 1,
  CANOPY_EXIT_USAGE = 2,
  CANOPY_EXIT_RUNTIME = 3,
} CanopyExitCode;

/**
 * CanopyProgramCommand:
 * @name: the word that selects it (`canopyd init`)
 * @summary: one translatable line (N_()) for --help
 * @run: runs it with the arguments after @name; returns a #CanopyExitCode
 *
 * A one-shot subcommand of a daemon, such as the installer step.
 */
typedef struct {
  const char *name;
  const char *summary;
  int (*run) (int argc, char **argv);
} CanopyProgramCommand;

/**
 * CanopyProgramClass:
 * @name: the program's name, as typed
 * @summary: one translatable sentence (N_()) for --help
 * @default_config: the configuration file used without --config
 * @load: reads the configuration and loads its plugins; starts nothing
 * @free: frees what @load returned
 * @describe: one line for the log, saying what is configured
 * @get_debug_domains: the configuration's debug log domains
 * @reload: rereads the configuration; on error the running one stays
 * @start: (nullable): starts serving on the main loop, after @load
 * @drain: (nullable): asked after a stop signal until it returns %TRUE: stops
 *   new work and says whether the work in flight is done (see
 *   #CanopyServiceDrainFunc)
 * @stop: (nullable): stops what @start started
 * @commands: (nullable): subcommands, ended by an entry whose name is %NULL
 *
 * What a daemon supplies to canopy_program_main().
 */
typedef struct {
  const char *name;
  const char *summary;
  const char *default_config;
  gpointer (*load) (const char *path, GError **error);
  void (*free) (gpointer state);
  char *(*describe) (gpointer state);
  const char *(*get_debug_domains) (gpointer state);
  gboolean (*reload) (gpointer state, GError **error);
  gboolean (*start) (gpointer state, GError **error);
  gboolean (*drain) (gpointer state);
  void (*stop) (gpointer state);
  const CanopyProgramCommand *commands;
} CanopyProgramClass;

/**
 * canopy_program_main:
 * @klass: the daemon
 * @argc: from main()
 * @argv: from main()
 *
 * Returns: the process exit status, a #CanopyExitCode.
 */
int canopy_program_main (const CanopyProgramClass *klass, int argc, char **argv);

/**
 * canopy_program_init_i18n:
 *
 * Sets the locale and binds canopy's message catalog; the first call of
 * every canopy program's main().
 */
void canopy_program_init_i18n (void);

G_END_DECLS
