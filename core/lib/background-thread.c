/* Threads at a lower scheduling priority than the main loop. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-background-thread"

#include "lib/background-thread.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define BACKGROUND_NICE 10

typedef struct {
  char *name;
  GThreadFunc func;
  gpointer data;
} Start;

static gpointer
run_lowered (gpointer user_data)
{
  Start *start = user_data;
  GThreadFunc func = start->func;
  gpointer data = start->data;

  /* On Linux a nice value belongs to a thread, not to the whole process:
   * this lowers only the calling thread. Failing leaves it at the normal
   * priority, which is slower to answer under load but not wrong. */
  if (setpriority (PRIO_PROCESS, (id_t) gettid (), BACKGROUND_NICE) != 0)
    g_debug ("cannot lower the priority of thread %s: %s", start->name, g_strerror (errno));
  g_free (start->name);
  g_free (start);
  return func (data);
}

GThread *
canopy_background_thread_new (const char *name, GThreadFunc func, gpointer data)
{
  Start *start = g_new (Start, 1);

  start->name = g_strdup (name);
  start->func = func;
  start->data = data;
  return g_thread_new (name, run_lowered, start);
}
