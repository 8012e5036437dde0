/* Threads whose work can wait: a server's database writer and cluster
 * reader, which must not take the CPU from the main loop that answers
 * every device's heartbeat. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * canopy_background_thread_new:
 * @name: the thread's name, as `top -H` and `perf` show it
 * @func: what the thread runs
 * @data: @func's argument
 *
 * Starts a thread as g_thread_new() does, at a lower scheduling priority
 * (nice 10) than the process's other threads. When the machine's CPUs are
 * all busy, the main loop then runs first and the thread takes what is
 * left: a full read of a fleet's devices delays no heartbeat answer.
 *
 * Returns: (transfer full): the thread, to join
 */
GThread *canopy_background_thread_new (const char *name, GThreadFunc func, gpointer data);

G_END_DECLS
