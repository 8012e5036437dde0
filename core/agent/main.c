/* canopy-agent: the peer client's entry point. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent"

#include "agent/agent.h"
#include "lib/i18n.h"
#include "lib/program.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

static gpointer
agent_load (const char *path, GError **error)
{
  return canopy_agent_new (path, error);
}

static char *
agent_describe (gpointer state)
{
  return canopy_agent_describe (state);
}

static const char *
agent_debug_domains (gpointer state)
{
  return canopy_agent_get_config (state)->debug_domains;
}

static gboolean
agent_reload (gpointer state, GError **error)
{
  return canopy_agent_reload (state, error);
}

static gboolean
agent_start (gpointer state, GError **error)
{
  return canopy_agent_start (state, error);
}

static void
agent_stop (gpointer state)
{
  canopy_agent_stop (state);
}

static const CanopyProgramClass canopy_agent = {
  .name = "canopy-agent",
  .summary = N_("canopy agent: fetches software packages once per office and shares them with "
                "the devices of the office."),
  .default_config = CANOPY_AGENT_CONFIG_DEFAULT,
  .load = agent_load,
  .free = (void (*) (gpointer)) canopy_agent_free,
  .describe = agent_describe,
  .get_debug_domains = agent_debug_domains,
  .reload = agent_reload,
  .start = agent_start,
  .stop = agent_stop,
};

/* Every chunk arrives in its own buffer of a chunk's size (1 MiB by
 * default). glibc maps buffers that large afresh each time, or trims them
 * off the heap as soon as they are freed, so each chunk paid for faulting
 * in 256 new pages and a TLB flush on every CPU: keep them on the heap. */
static void
keep_chunk_buffers (void)
{
#ifdef __GLIBC__
  mallopt (M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt (M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
}

int
main (int argc, char **argv)
{
  keep_chunk_buffers ();
  return canopy_program_main (&canopy_agent, argc, argv);
}
