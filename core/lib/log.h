/* Logging: one structured-log writer for every canopy program, journald
 * when the service runs under systemd, debug output per log domain. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CanopyLog CanopyLog;

/**
 * canopy_log_new:
 *
 * Creates the settings the writer reads. Owned by the main program; it
 * must outlive every log call once canopy_log_install() has run.
 */
CanopyLog *canopy_log_new (void);
void canopy_log_free (CanopyLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyLog, canopy_log_free)

/**
 * canopy_log_set_debug_domains:
 * @log: the settings
 * @domains: (nullable): comma- or space-separated log domains whose debug
 *   messages are shown ("canopy-config,canopy-tcp"), "all", or %NULL/""
 *   for none
 *
 * May be called again at any time, for example on SIGHUP.
 */
void canopy_log_set_debug_domains (CanopyLog *log, const char *domains);

/** canopy_log_get_debug_domains: Returns: the current setting, "" for none. */

/**
 * canopy_log_get_known_domains:
 *
 * Returns: (transfer none): every log domain canopy's programs and plugins
 *   log under, sorted, %NULL-terminated: one per module ("canopy-topology",
 *   "canopyd-sessions", "canopy-agent-cache", "canopy-tcp", ...). A debug
 *   setting may name a family by its prefix: "canopyd" is every "canopyd-*".
 */
const char *const *canopy_log_get_known_domains (void);
const char *canopy_log_get_debug_domains (const CanopyLog *log);

/**
 * canopy_log_install:
 * @log: the settings
 *
 * Makes @log's writer GLib's log writer for the rest of the process.
 */
void canopy_log_install (CanopyLog *log);

/* A wall-clock time (µs since the epoch) as ISO 8601 in UTC, the form of
 * every time an admin reads; NULL if @us is not a time after the epoch. */
char *canopy_log_format_time (gint64 us);

typedef struct _CanopyLogLimit CanopyLogLimit;

/**
 * CanopyLogLimitSummary:
 * @key: what the events are about (a client address), or "*" for the
 *   keys past the table's size
 * @suppressed: events of @key that were not logged since the last line
 *
 * Logs one line for what canopy_log_limit_allow() held back.
 */
typedef void (*CanopyLogLimitSummary) (const char *key, guint suppressed, gpointer user_data);

/**
 * canopy_log_limit_new:
 * @window_s: the first event of a key is logged, the rest of the window
 *   only counted; a summary follows at most once per window
 * @summary: called when the window of a key with held-back events ends
 *
 * A rate limit for log lines a remote party can cause at will (wrong keys,
 * bad frames, refused connections), so a flood costs neither the disk nor
 * the admin's attention, while the first of each is still said in full.
 * Safe from any thread; summaries come from a timer on the global default
 * main context, so they need that context to run.
 */
CanopyLogLimit *canopy_log_limit_new (guint window_s, CanopyLogLimitSummary summary,
                                      gpointer user_data);
void canopy_log_limit_free (CanopyLogLimit *limit);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyLogLimit, canopy_log_limit_free)

/* Whether an event of @key is to be logged now; if not, it is counted. */
gboolean canopy_log_limit_allow (CanopyLogLimit *limit, const char *key);

G_END_DECLS
