/* Many file descriptors behind one GSource: the main loop polls a single
 * epoll descriptor however many sockets a server watches, so tens of
 * thousands of sessions do not cost a poll() over every one each turn. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * CanopyWatchSet:
 *
 * A set of watched descriptors, attached to one #GMainContext.
 */
typedef struct _CanopyWatchSet CanopyWatchSet;

/**
 * CanopyWatchFunc:
 * @fd: the descriptor
 * @condition: what happened (%G_IO_IN, %G_IO_OUT, %G_IO_ERR, %G_IO_HUP)
 * @user_data: what canopy_watch_set_add() was given
 *
 * Returns: %G_SOURCE_REMOVE to stop watching @fd (its destroy notify
 *   runs), %G_SOURCE_CONTINUE to go on.
 */
typedef gboolean (*CanopyWatchFunc) (int fd, GIOCondition condition, gpointer user_data);

/**
 * canopy_watch_set_new:
 * @context: (nullable): where callbacks run; %NULL for the thread-default
 * @error: if the epoll descriptor cannot be created
 */
CanopyWatchSet *canopy_watch_set_new (GMainContext *context, GError **error);

/** canopy_watch_set_free: Stops every watch (running destroy notifies). */
void canopy_watch_set_free (CanopyWatchSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyWatchSet, canopy_watch_set_free)

/**
 * canopy_watch_set_add:
 * @set: a set
 * @fd: a descriptor not yet in @set
 * @events: %G_IO_IN and/or %G_IO_OUT (errors and hang-ups always report)
 * @func: called on the set's context when @fd is ready
 * @user_data: for @func
 * @destroy: (nullable): frees @user_data when the watch ends
 * @error: if the kernel refuses the descriptor
 */
gboolean canopy_watch_set_add (CanopyWatchSet *set, int fd, GIOCondition events,
                               CanopyWatchFunc func, gpointer user_data,
                               GDestroyNotify destroy, GError **error);

/** canopy_watch_set_modify: Changes the events watched on @fd. */
gboolean canopy_watch_set_modify (CanopyWatchSet *set, int fd, GIOCondition events,
                                  GError **error);

/**
 * canopy_watch_set_remove:
 *
 * Stops watching @fd; safe from inside any callback of the set, including
 * @fd's own.
 */
void canopy_watch_set_remove (CanopyWatchSet *set, int fd);

/**
 * canopy_watch_set_wake:
 *
 * Calls @fd's callback with %G_IO_OUT on the next turn of the loop,
 * without asking the kernel: for a connection that has just queued
 * something to send, where watching for %G_IO_OUT would cost two system
 * calls to start and stop. Several wakes before that turn call it once.
 * Call from the set's context only.
 */
void canopy_watch_set_wake (CanopyWatchSet *set, int fd);

/** canopy_watch_set_size: Returns: how many descriptors are watched. */
guint canopy_watch_set_size (const CanopyWatchSet *set);

G_END_DECLS
