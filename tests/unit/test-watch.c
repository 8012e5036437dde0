/* Watch sets: many descriptors behind one GSource, removal from inside
 * callbacks, hang-ups, and destroy notifies. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include <canopy/watch.h>

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  CanopyWatchSet *set;
  guint reads;
  guint hangups;
  guint destroyed;
  int remove_fds[2]; /* descriptors the next callback removes, or -1 */
} Counters;

static gboolean
on_ready (int fd, GIOCondition condition, gpointer user_data)
{
  Counters *c = user_data;
  char buf[16];

  if (condition & G_IO_HUP)
    {
      c->hangups++;
      return G_SOURCE_REMOVE;
    }
  if (read (fd, buf, sizeof buf) > 0)
    c->reads++;
  for (guint i = 0; i < G_N_ELEMENTS (c->remove_fds); i++)
    if (c->remove_fds[i] >= 0)
      {
        canopy_watch_set_remove (c->set, c->remove_fds[i]);
        c->remove_fds[i] = -1;
      }
  return G_SOURCE_CONTINUE;
}

static void
on_destroy (gpointer user_data)
{
  ((Counters *) user_data)->destroyed++;
}

static guint
usable_pairs (guint wanted)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
    {
      limit.rlim_cur = limit.rlim_max;
      setrlimit (RLIMIT_NOFILE, &limit);
      getrlimit (RLIMIT_NOFILE, &limit);
    }
  return MIN (wanted, (guint) (limit.rlim_cur - 64) / 2);
}

static void
test_many_descriptors_one_poll (void)
{
  guint n = usable_pairs (5000);
  g_autoptr (GError) error = NULL;
  Counters c = { NULL, 0, 0, 0, { -1, -1 } };
  g_autofree int *fds = g_new (int, 2 * n);
  GPollFD polls[64];
  gint timeout, priority;
  int n_polls, polls_before;

  /* What earlier tests left on the default context is polled anyway; only
   * what the watch set adds counts. */
  g_main_context_prepare (g_main_context_default (), &priority);
  polls_before = g_main_context_query (g_main_context_default (), G_MAXINT, &timeout, polls,
                                       G_N_ELEMENTS (polls));
  g_main_context_check (g_main_context_default (), priority, polls, MIN (polls_before, 64));
  c.set = canopy_watch_set_new (NULL, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  for (guint i = 0; i < n; i++)
    {
      CU_ASSERT_FATAL (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds + 2 * i) == 0);
      CU_ASSERT_FATAL (canopy_watch_set_add (c.set, fds[2 * i], G_IO_IN, on_ready, &c,
                                             on_destroy, &error));
    }
  CU_ASSERT_EQUAL (canopy_watch_set_size (c.set), n);
  for (guint i = 0; i < n; i++)
    CU_ASSERT_FATAL (write (fds[2 * i + 1], "x", 1) == 1);

  /* However many sockets, the main loop polls one descriptor for them. */
  g_main_context_prepare (g_main_context_default (), &priority);
  n_polls = g_main_context_query (g_main_context_default (), G_MAXINT, &timeout, polls,
                                  G_N_ELEMENTS (polls));
  g_main_context_check (g_main_context_default (), priority, polls, MIN (n_polls, 64));
  if (n_polls > polls_before + 1)
    fprintf (stderr, "\n    %d descriptors polled, %d before the watch set\n", n_polls,
             polls_before);
  CU_ASSERT (n_polls <= polls_before + 1);

  while (c.reads < n)
    g_main_context_iteration (NULL, TRUE);
  CU_ASSERT_EQUAL (c.reads, n);

  /* Peers hang up: each watch reports it and is removed. */
  for (guint i = 0; i < n; i++)
    close (fds[2 * i + 1]);
  while (c.hangups < n)
    g_main_context_iteration (NULL, TRUE);
  CU_ASSERT_EQUAL (canopy_watch_set_size (c.set), 0);
  CU_ASSERT_EQUAL (c.destroyed, n);
  canopy_watch_set_free (c.set);
  for (guint i = 0; i < n; i++)
    close (fds[2 * i]);
}

static void
test_remove_from_callback (void)
{
  g_autoptr (GError) error = NULL;
  Counters c = { NULL, 0, 0, 0, { -1, -1 } };
  int a[2], b[2];

  c.set = canopy_watch_set_new (NULL, &error);
  CU_ASSERT_FATAL (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a) == 0);
  CU_ASSERT_FATAL (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b) == 0);
  canopy_watch_set_add (c.set, a[0], G_IO_IN, on_ready, &c, on_destroy, &error);
  canopy_watch_set_add (c.set, b[0], G_IO_IN, on_ready, &c, on_destroy, &error);
  CANOPY_ASSERT_NO_ERROR (error);

  /* Both ready in one batch; whichever runs first removes both, itself
   * included, and the other is not called. */
  c.remove_fds[0] = a[0];
  c.remove_fds[1] = b[0];
  CU_ASSERT (write (a[1], "x", 1) == 1 && write (b[1], "y", 1) == 1);
  while (c.reads == 0)
    g_main_context_iteration (NULL, TRUE);
  CU_ASSERT_EQUAL (canopy_watch_set_size (c.set), 0);
  /* Nothing is called after removal, even with data pending. */
  CU_ASSERT (write (a[1], "x", 1) == 1 && write (b[1], "y", 1) == 1);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  CU_ASSERT_EQUAL (c.reads, 1);
  CU_ASSERT_EQUAL (c.destroyed, 2);
  canopy_watch_set_free (c.set);
  close (a[0]), close (a[1]), close (b[0]), close (b[1]);
}

typedef struct {
  CanopyWatchSet *set;
  guint calls;
  GIOCondition last;
} Wakes;

static gboolean
on_wake (int fd, GIOCondition condition, gpointer user_data)
{
  Wakes *w = user_data;

  (void) fd;
  w->calls++;
  w->last = condition;
  return G_SOURCE_CONTINUE;
}

/* A woken descriptor is called once on the next turn, with G_IO_OUT,
 * though the kernel reports nothing; one removed meanwhile is not. */
static void
test_wake (void)
{
  g_autoptr (GError) error = NULL;
  Wakes w = { 0 };
  Wakes other = { 0 };
  int a[2], b[2];

  w.set = canopy_watch_set_new (NULL, &error);
  CU_ASSERT_FATAL (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, a) == 0);
  CU_ASSERT_FATAL (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, b) == 0);
  CU_ASSERT (canopy_watch_set_add (w.set, a[0], G_IO_IN, on_wake, &w, NULL, &error));
  CU_ASSERT (canopy_watch_set_add (w.set, b[0], G_IO_IN, on_wake, &w, NULL, &error));
  CANOPY_ASSERT_NO_ERROR (error);

  canopy_watch_set_wake (w.set, a[0]);
  canopy_watch_set_wake (w.set, a[0]);
  canopy_watch_set_wake (w.set, b[0]);
  /* Removed, then its number watched again (as a reused descriptor
   * would be): the new watch was not woken. */
  canopy_watch_set_remove (w.set, b[0]);
  CU_ASSERT (canopy_watch_set_add (w.set, b[0], G_IO_IN, on_wake, &other, NULL, &error));
  /* Not blocking: the wake alone makes the set ready. */
  CU_ASSERT (g_main_context_iteration (NULL, FALSE));
  CU_ASSERT_EQUAL (w.calls, 1);
  CU_ASSERT_EQUAL (w.last, G_IO_OUT);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  CU_ASSERT_EQUAL (w.calls, 1);
  CU_ASSERT_EQUAL (other.calls, 0);

  /* Woken again after its turn, it is called again. */
  canopy_watch_set_wake (w.set, a[0]);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  CU_ASSERT_EQUAL (w.calls, 2);
  canopy_watch_set_free (w.set);
  close (a[0]), close (a[1]), close (b[0]), close (b[1]);
}

static void
test_free_runs_destroy_notifies (void)
{
  g_autoptr (GError) error = NULL;
  Counters c = { NULL, 0, 0, 0, { -1, -1 } };
  int p[2];

  c.set = canopy_watch_set_new (NULL, &error);
  CU_ASSERT_FATAL (socketpair (AF_UNIX, SOCK_STREAM, 0, p) == 0);
  canopy_watch_set_add (c.set, p[0], G_IO_IN | G_IO_OUT, on_ready, &c, on_destroy, &error);
  CU_ASSERT (canopy_watch_set_modify (c.set, p[0], G_IO_IN, &error));
  CU_ASSERT_FALSE (canopy_watch_set_modify (c.set, 9999, G_IO_IN, &error));
  CU_ASSERT_PTR_NOT_NULL (error);
  canopy_watch_set_free (c.set);
  CU_ASSERT_EQUAL (c.destroyed, 1);
  close (p[0]), close (p[1]);
}

CANOPY_TEST_SUITE (watch, "watch", NULL, NULL,
                   { "many descriptors, one poll", test_many_descriptors_one_poll },
                   { "remove from a callback", test_remove_from_callback },
                   { "wake without polling", test_wake },
                   { "free runs destroy notifies", test_free_runs_destroy_notifies })
