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

/* The writer canopy_log_install() sets, for a test to call directly: a
 * process has one writer, set once. */
GLogWriterOutput canopy_log_write (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                   gpointer log);

/* --- events an admin filters on -------------------------------------------
 *
 * Each kind of event has a MESSAGE_ID, documented for "journalctl -x" in
 * conf/canopy.catalog (tests/unit/test-log.c checks that every ID here is
 * there and used), so "journalctl MESSAGE_ID=..." finds every deployment
 * summary, say. */
#define CANOPY_LOG_PROGRAM_STARTED "7c663274fc040cd24e344dc556079934"
#define CANOPY_LOG_PROGRAM_STOPPED "e2dc8c83d0ec013d9f88da7bf1a6ebba"
#define CANOPY_LOG_DEPLOYMENT_CREATED "202c6d1a59fca0197d437014a27d4caa"
#define CANOPY_LOG_DEPLOYMENT_FINISHED "1ad1b5b7174333558539aa5ab6453603"
#define CANOPY_LOG_DEPLOYMENT_CANCELLED "1da125ef6384ba8f6941572ebe9a2d68"
#define CANOPY_LOG_DEVICE_DONE "8b86c75ece87f2dbf1eca23604fc7353"
#define CANOPY_LOG_DEVICE_FAILED "8266992922eb800d198a47efbb33e663"
#define CANOPY_LOG_DEVICE_REPORTED "c164a2388c37c7c35659a6c6e8bffae4"
#define CANOPY_LOG_LEAD_CHANGED "adfc1a23acb1187959179cbe77a4d5c8"
#define CANOPY_LOG_FETCH_STARTED "bce3ff07a26faaab293d5364bddd1734"
#define CANOPY_LOG_FETCH_SOURCES "c7ed7f9db0f5bbe9e7c2eade5bf56a5a"
#define CANOPY_LOG_FETCH_DONE "6e841a029f2b033a77dd27bab0d8437d"
#define CANOPY_LOG_FETCH_FAILED "403ff4a121514b97b5fd0295ff7f4f11"

/* What an event is about, as journald fields (CANOPY_DEPLOYMENT,
 * CANOPY_CONTENT, CANOPY_DEVICE, CANOPY_OFFICE); %NULL members are left out. */
typedef struct {
  const char *deployment;
  const char *content;
  const char *device;
  const char *office;
} CanopyLogSubject;

/**
 * canopy_log_event:
 * @domain: the module's log domain (G_LOG_DOMAIN)
 * @level: as g_log()
 * @message_id: one of the CANOPY_LOG_* IDs above
 * @subject: (nullable): what the event is about
 *
 * Logs a message with the fields an admin filters on under journald;
 * outside journald it is a line like any other.
 */
void canopy_log_event (const char *domain, GLogLevelFlags level, const char *message_id,
                       const CanopyLogSubject *subject, const char *format, ...)
  G_GNUC_PRINTF (5, 6);

/* The environment variable that names a journal socket to log to as well
 * as standard error, whatever that is (a journal in a container, tests).
 * Under systemd's journald, canopy logs to /run/systemd/journal/socket
 * alone. */
#define CANOPY_LOG_JOURNAL_SOCKET_ENV "CANOPY_JOURNAL_SOCKET"

/* How long something took, for a log line: "1 h 02 min", "3 min 05 s", "52 s". */
char *canopy_log_format_duration (gint64 us);

/* One plain-text log line, as written outside journald: the date and
 * time in UTC, the domain, the level and @message, ending in a newline. */
char *canopy_log_format_line (gint64 now_us, const char *domain, GLogLevelFlags level,
                              const char *message);

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
