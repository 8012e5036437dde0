/* canopyd: the canopy server's entry point. */
#include "build-config.h"

#include "server/server.h"
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
};

int
main (int argc, char **argv)
{
  return canopy_program_main (&canopyd, argc, argv);
}
