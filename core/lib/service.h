/* Service lifecycle shared by canopyd and canopy-agent: a main loop that
 * stops on SIGTERM/SIGINT and reloads on SIGHUP. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CanopyService CanopyService;

/**
 * CanopyServiceReloadFunc:
 * @user_data: what canopy_service_new() was given
 *
 * Called on the main loop when SIGHUP arrives. It must keep the running
 * configuration if the new one is not valid, and say why.
 */
typedef void (*CanopyServiceReloadFunc) (gpointer user_data);

/**
 * canopy_service_new:
 * @context: (nullable): the main context to run; %NULL for the default
 * @reload: (nullable): what to do on SIGHUP
 * @user_data: passed to @reload
 */
CanopyService *canopy_service_new (GMainContext *context,
                                   CanopyServiceReloadFunc reload,
                                   gpointer user_data);
void canopy_service_free (CanopyService *service);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyService, canopy_service_free)

/**
 * canopy_service_run:
 *
 * Runs the main loop until canopy_service_quit() or a termination signal.
 *
 * Returns: the signal that stopped it, or 0.
 */
int canopy_service_run (CanopyService *service);

/**
 * CanopyServiceDrainFunc:
 *
 * Asked once a stop signal has come, and every 10 ms after, whether the work
 * in flight (worker threads whose results come back on the loop) is done;
 * the loop runs on until it says so, so that nothing waits in a nested loop.
 * The first call also stops new work from starting.
 */
typedef gboolean (*CanopyServiceDrainFunc) (gpointer user_data);

/* Sets the drain of canopy_service_run()'s stop, called with the reload's
 * user data; %NULL: the loop stops at once. */
void canopy_service_set_drain (CanopyService *service, CanopyServiceDrainFunc drain);

/** canopy_service_quit: Stops canopy_service_run() from inside the loop. */
void canopy_service_quit (CanopyService *service);

G_END_DECLS
