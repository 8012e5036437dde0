/* One epoll descriptor behind one GSource. Callbacks run from the
 * source's dispatch; a watch removed while events for it are pending is
 * marked dead and freed after the batch, never called again. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-watch"

#include <canopy/watch.h>
#include "lib/i18n.h"

#include <errno.h>
#include <gio/gio.h>
#include <sys/epoll.h>
#include <unistd.h>

/* Events taken per dispatch: enough to drain a busy server in few turns,
 * few enough that timers and other sources still get their turn. */
#define MAX_EVENTS 256

typedef struct {
  int fd;
  CanopyWatchFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
  gboolean dead;
  gboolean woken; /* in the set's list of watches to call without polling */
} Watch;

typedef struct {
  GSource source;
  CanopyWatchSet *set;
} WatchSource;

struct _CanopyWatchSet {
  int epfd;
  GSource *source;
  GHashTable *watches; /* fd → Watch */
  GPtrArray *graveyard; /* removed during dispatch, freed after it */
  GArray *woken;        /* descriptors to call with %G_IO_OUT next turn */
  guint dispatching;    /* depth: callbacks may run a nested loop */
};

static void
watch_free (Watch *watch)
{
  if (watch->destroy != NULL)
    watch->destroy (watch->user_data);
  g_free (watch);
}

static guint32
to_epoll (GIOCondition events)
{
  return ((events & G_IO_IN) ? EPOLLIN : 0) | ((events & G_IO_OUT) ? EPOLLOUT : 0);
}

static GIOCondition
from_epoll (guint32 events)
{
  return ((events & EPOLLIN) ? G_IO_IN : 0) | ((events & EPOLLOUT) ? G_IO_OUT : 0)
         | ((events & EPOLLERR) ? G_IO_ERR : 0) | ((events & (EPOLLHUP | EPOLLRDHUP)) ? G_IO_HUP : 0);
}

static void
watch_call (CanopyWatchSet *set, int fd, GIOCondition condition)
{
  Watch *watch = g_hash_table_lookup (set->watches, GINT_TO_POINTER (fd));

  if (watch == NULL || watch->dead)
    return;
  if (watch->func (fd, condition, watch->user_data) == G_SOURCE_REMOVE)
    canopy_watch_set_remove (set, fd);
}

/* Calls the watches woken since the last turn, then those epoll reports. */
static void
watch_set_run (CanopyWatchSet *set)
{
  struct epoll_event events[MAX_EVENTS];
  g_autoptr (GArray) woken = NULL;
  int n;

  /* Taken whole, so that wakes from the callbacks wait for the next
   * turn; most turns have none, and allocate nothing. */
  if (set->woken->len > 0)
    {
      woken = set->woken;
      set->woken = g_array_new (FALSE, FALSE, sizeof (int));
    }
  for (guint i = 0; woken != NULL && i < woken->len; i++)
    {
      int fd = g_array_index (woken, int, i);
      Watch *watch = g_hash_table_lookup (set->watches, GINT_TO_POINTER (fd));

      /* A watch added since under a removed one's number was not woken:
       * the wake is not for it (a connection still connecting, say). */
      if (watch == NULL || !watch->woken)
        continue;
      watch->woken = FALSE;
      watch_call (set, fd, G_IO_OUT);
    }
  n = epoll_wait (set->epfd, events, MAX_EVENTS, 0);
  for (int i = 0; i < n; i++)
    watch_call (set, events[i].data.fd, from_epoll (events[i].events));
}

static gboolean
watch_source_prepare (GSource *source, gint *timeout)
{
  *timeout = -1;
  return ((WatchSource *) source)->set->woken->len > 0;
}

static gboolean
watch_source_check (GSource *source)
{
  return ((WatchSource *) source)->set->woken->len > 0;
}

static gboolean
watch_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data)
{
  CanopyWatchSet *set = ((WatchSource *) source)->set;

  set->dispatching++;
  watch_set_run (set);
  if (--set->dispatching == 0)
    g_ptr_array_set_size (set->graveyard, 0);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs watch_source_funcs = {
  .prepare = watch_source_prepare,
  .check = watch_source_check,
  .dispatch = watch_source_dispatch,
};

/* A whole sentence with the system's reason, e.g. _("Cannot add a socket to
 * the event set: %s"); a macro, so that the format is a checked literal. */
#define set_errno_error(error, format, saved_errno)                                       \
  g_set_error ((error), G_IO_ERROR, g_io_error_from_errno (saved_errno), (format),        \
               g_strerror (saved_errno))

CanopyWatchSet *
canopy_watch_set_new (GMainContext *context, GError **error)
{
  CanopyWatchSet *set;
  int epfd = epoll_create1 (EPOLL_CLOEXEC);

  if (epfd < 0)
    {
      set_errno_error (error, _("Cannot create the event set: %s"), errno);
      return NULL;
    }
  set = g_new0 (CanopyWatchSet, 1);
  set->epfd = epfd;
  set->watches = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) watch_free);
  set->graveyard = g_ptr_array_new_with_free_func ((GDestroyNotify) watch_free);
  set->woken = g_array_new (FALSE, FALSE, sizeof (int));
  set->source = g_source_new (&watch_source_funcs, sizeof (WatchSource));
  ((WatchSource *) set->source)->set = set;
  g_source_set_name (set->source, "canopy watch set");
  /* A source that may not recurse is blocked while it dispatches, and
   * GLib takes its descriptor out of the poll set and puts it back,
   * waking the loop through its eventfd each time: two system calls and
   * one empty turn of the loop per dispatch. Nothing here relies on the
   * block (a nested loop finds the set consistent: see dispatching). */
  g_source_set_can_recurse (set->source, TRUE);
  g_source_add_unix_fd (set->source, epfd, G_IO_IN);
  g_source_attach (set->source, context != NULL ? context
                                                : g_main_context_get_thread_default ());
  return set;
}

void
canopy_watch_set_free (CanopyWatchSet *set)
{
  if (set == NULL)
    return;
  g_source_destroy (set->source);
  g_source_unref (set->source);
  g_hash_table_unref (set->watches);
  g_ptr_array_unref (set->graveyard);
  g_array_unref (set->woken);
  close (set->epfd);
  g_free (set);
}

gboolean
canopy_watch_set_add (CanopyWatchSet *set, int fd, GIOCondition events, CanopyWatchFunc func,
                      gpointer user_data, GDestroyNotify destroy, GError **error)
{
  struct epoll_event ev = { .events = to_epoll (events) | EPOLLRDHUP, .data.fd = fd };
  Watch *watch;

  g_return_val_if_fail (!g_hash_table_contains (set->watches, GINT_TO_POINTER (fd)), FALSE);

  if (epoll_ctl (set->epfd, EPOLL_CTL_ADD, fd, &ev) != 0)
    {
      set_errno_error (error, _("Cannot add a socket to the event set: %s"), errno);
      return FALSE;
    }
  watch = g_new0 (Watch, 1);
  watch->fd = fd;
  watch->func = func;
  watch->user_data = user_data;
  watch->destroy = destroy;
  g_hash_table_insert (set->watches, GINT_TO_POINTER (fd), watch);
  return TRUE;
}

gboolean
canopy_watch_set_modify (CanopyWatchSet *set, int fd, GIOCondition events, GError **error)
{
  struct epoll_event ev = { .events = to_epoll (events) | EPOLLRDHUP, .data.fd = fd };

  if (epoll_ctl (set->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)
    {
      set_errno_error (error, _("Cannot change a socket in the event set: %s"), errno);
      return FALSE;
    }
  return TRUE;
}

void
canopy_watch_set_remove (CanopyWatchSet *set, int fd)
{
  Watch *watch = NULL;

  if (!g_hash_table_steal_extended (set->watches, GINT_TO_POINTER (fd), NULL,
                                    (gpointer *) &watch))
    return;
  /* The descriptor may already be closed: then the kernel dropped it. */
  epoll_ctl (set->epfd, EPOLL_CTL_DEL, fd, NULL);
  if (set->dispatching)
    {
      watch->dead = TRUE;
      g_ptr_array_add (set->graveyard, watch);
    }
  else
    watch_free (watch);
}

void
canopy_watch_set_wake (CanopyWatchSet *set, int fd)
{
  Watch *watch = g_hash_table_lookup (set->watches, GINT_TO_POINTER (fd));

  if (watch == NULL || watch->dead || watch->woken)
    return;
  watch->woken = TRUE;
  g_array_append_val (set->woken, fd);
}

guint
canopy_watch_set_size (const CanopyWatchSet *set)
{
  return g_hash_table_size (set->watches);
}
