/* Threads below the main loop's priority. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "lib/background-thread.h"

#include <sys/resource.h>
#include <unistd.h>

static gpointer
own_nice (gpointer data)
{
  (void) data;
  return GINT_TO_POINTER (getpriority (PRIO_PROCESS, (id_t) gettid ()) + 100);
}

/* The thread runs at nice 10 or lower priority; the caller's stays. */
static void
test_lowered (void)
{
  int before = getpriority (PRIO_PROCESS, (id_t) gettid ());
  GThread *thread = canopy_background_thread_new ("test-background", own_nice, NULL);
  int nice = GPOINTER_TO_INT (g_thread_join (thread)) - 100;

  CU_ASSERT (nice >= 10);
  CU_ASSERT (nice > before);
  CU_ASSERT_EQUAL (getpriority (PRIO_PROCESS, (id_t) gettid ()), before);
}

CANOPY_TEST_SUITE (background_thread, "background-thread", NULL, NULL,
                   { "priority lowered", test_lowered })
