/* Logging: a GLib structured-log writer that filters debug messages by
 * domain and sends everything to journald or to stderr. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-log"

#include "lib/log.h"

#include <string.h>
#include <unistd.h>

struct _CanopyLog {
  char *setting;
  GStrv domains;
  gboolean all;
};

CanopyLog *
canopy_log_new (void)
{
  CanopyLog *log = g_new0 (CanopyLog, 1);

  log->setting = g_strdup ("");
  log->domains = g_new0 (char *, 1);
  return log;
}

void
canopy_log_free (CanopyLog *log)
{
  if (log == NULL)
    return;
  g_strfreev (log->domains);
  g_free (log->setting);
  g_free (log);
}

void
canopy_log_set_debug_domains (CanopyLog *log, const char *domains)
{
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  g_auto (GStrv) parts = g_strsplit_set (domains != NULL ? domains : "", ", ", -1);

  log->all = FALSE;
  for (char **p = parts; *p != NULL; p++)
    {
      if (**p == '\0')
        continue;
      if (g_str_equal (*p, "all"))
        log->all = TRUE;
      g_strv_builder_add (builder, *p);
    }
  g_strfreev (log->domains);
  log->domains = g_strv_builder_end (builder);
  g_free (log->setting);
  log->setting = g_strjoinv (",", log->domains);
}

const char *
canopy_log_get_debug_domains (const CanopyLog *log)
{
  return log->setting;
}

/* Every log domain of canopy's programs and plugins, for "--debug help";
 * tests/unit/test-log.c checks it against the sources. */
static const char *const known_domains[] = {
  "canopy-agent", "canopy-agent-cache", "canopy-agent-config", "canopy-agent-fetch",
  "canopy-agent-install", "canopy-agent-install-policy", "canopy-agent-peers",
  "canopy-agent-uplink", "canopy-atomic-file", "canopy-backend", "canopy-config",
  "canopy-config-node", "canopy-csv", "canopy-destination", "canopy-freetds", "canopy-identity",
  "canopy-keys", "canopy-licence-file", "canopy-licensing", "canopy-log", "canopy-manifest",
  "canopy-origin", "canopy-planner", "canopy-plugin", "canopy-plugin-loader", "canopy-program",
  "canopy-quic", "canopy-ranking", "canopy-service", "canopy-shared-key", "canopy-signing",
  "canopy-sqlite", "canopy-tcp", "canopy-topology", "canopy-transport", "canopy-watch",
  "canopy-wire", "canopyctl", "canopyd", "canopyd-admin-commands", "canopyd-admins",
  "canopyd-catalog", "canopyd-console-admins", "canopyd-console-api", "canopyd-console-auth",
  "canopyd-console-cert", "canopyd-console-content", "canopyd-console-content-store",
  "canopyd-console-health", "canopyd-console-json", "canopyd-console-listener",
  "canopyd-console-metrics", "canopyd-console-settings", "canopyd-console-views",
  "canopyd-content-sources", "canopyd-content-store", "canopyd-distribution-settings",
  "canopyd-distributor", "canopyd-health", "canopyd-run-marker", "canopyd-server",
  "canopyd-server-config", "canopyd-sessions", "canopyd-setup", "canopyd-write-behind", NULL,
};

const char *const *
canopy_log_get_known_domains (void)
{
  return known_domains;
}

static const char *
field_string (const GLogField *fields, gsize n_fields, const char *key)
{
  for (gsize i = 0; i < n_fields; i++)
    if (g_str_equal (fields[i].key, key))
      return fields[i].length < 0 ? fields[i].value : NULL;
  return NULL;
}

/* A setting names a domain or a family of them: "canopyd" shows
 * "canopyd" and every "canopyd-*", "canopy" every domain of canopy. */
static gboolean
shows_debug (const CanopyLog *log, const char *domain)
{
  if (log->all)
    return TRUE;
  if (domain == NULL)
    return FALSE;
  for (char **d = log->domains; *d != NULL; d++)
    {
      gsize n = strlen (*d);

      if (strncmp (domain, *d, n) == 0 && (domain[n] == '\0' || domain[n] == '-'))
        return TRUE;
    }
  return FALSE;
}

static GLogWriterOutput
canopy_log_writer (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                   gpointer user_data)
{
  const CanopyLog *log = user_data;

  if ((level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) != 0
      && !shows_debug (log, field_string (fields, n_fields, "GLIB_DOMAIN")))
    return G_LOG_WRITER_HANDLED;

  if (g_log_writer_is_journald (STDERR_FILENO)
      && g_log_writer_journald (level, fields, n_fields, NULL) == G_LOG_WRITER_HANDLED)
    return G_LOG_WRITER_HANDLED;
  return g_log_writer_standard_streams (level, fields, n_fields, NULL);
}

void
canopy_log_install (CanopyLog *log)
{
  g_log_set_writer_func (canopy_log_writer, log, NULL);
}

char *
canopy_log_format_time (gint64 us)
{
  g_autoptr (GDateTime) time = us > 0 ? g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC)
                                      : NULL;

  return time != NULL ? g_date_time_format_iso8601 (time) : NULL;
}

/* Keys remembered at once; more share the key "*", so a flood from many
 * addresses cannot grow the table. */
#define LOG_LIMIT_MAX_KEYS 1024

typedef struct {
  gint64 window_start; /* monotonic µs */
  guint suppressed;
} LogLimitEntry;

struct _CanopyLogLimit {
  GMutex lock;         /* events may come from any thread; the timer runs on the default context */
  gint64 window;       /* µs */
  CanopyLogLimitSummary summary;
  gpointer user_data;
  GHashTable *entries; /* key → LogLimitEntry */
  guint timer;
};

/* Ends the windows that are over: a summary for each key with events
 * held back, and keys that stayed quiet are forgotten. */
static void
log_limit_sweep (CanopyLogLimit *limit, gint64 now)
{
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, limit->entries);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      LogLimitEntry *entry = value;

      if (now - entry->window_start < limit->window)
        continue;
      if (entry->suppressed > 0)
        limit->summary (key, entry->suppressed, limit->user_data);
      g_hash_table_iter_remove (&iter);
    }
}

static gboolean
on_log_limit_timer (gpointer user_data)
{
  CanopyLogLimit *limit = user_data;

  g_mutex_lock (&limit->lock);
  log_limit_sweep (limit, g_get_monotonic_time ());
  g_mutex_unlock (&limit->lock);
  return G_SOURCE_CONTINUE;
}

CanopyLogLimit *
canopy_log_limit_new (guint window_s, CanopyLogLimitSummary summary, gpointer user_data)
{
  CanopyLogLimit *limit = g_new0 (CanopyLogLimit, 1);

  g_return_val_if_fail (window_s > 0 && summary != NULL, NULL);
  g_mutex_init (&limit->lock);
  limit->window = (gint64) window_s * G_USEC_PER_SEC;
  limit->summary = summary;
  limit->user_data = user_data;
  limit->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  /* Checked twice per window, so a summary comes at most 1.5 windows late. */
  limit->timer = g_timeout_add_seconds (MAX (window_s / 2, 1), on_log_limit_timer, limit);
  return limit;
}

void
canopy_log_limit_free (CanopyLogLimit *limit)
{
  if (limit == NULL)
    return;
  g_source_remove (limit->timer);
  g_hash_table_unref (limit->entries);
  g_mutex_clear (&limit->lock);
  g_free (limit);
}

static gboolean
log_limit_allow_locked (CanopyLogLimit *limit, const char *key)
{
  gint64 now = g_get_monotonic_time ();
  LogLimitEntry *entry;

  if (!g_hash_table_contains (limit->entries, key)
      && g_hash_table_size (limit->entries) >= LOG_LIMIT_MAX_KEYS)
    key = "*";
  entry = g_hash_table_lookup (limit->entries, key);
  if (entry != NULL && now - entry->window_start >= limit->window)
    {
      log_limit_sweep (limit, now);
      entry = NULL;
    }
  if (entry == NULL)
    {
      entry = g_new0 (LogLimitEntry, 1);
      entry->window_start = now;
      g_hash_table_insert (limit->entries, g_strdup (key), entry);
      return TRUE;
    }
  entry->suppressed++;
  return FALSE;
}

gboolean
canopy_log_limit_allow (CanopyLogLimit *limit, const char *key)
{
  gboolean allow;

  g_mutex_lock (&limit->lock);
  allow = log_limit_allow_locked (limit, key);
  g_mutex_unlock (&limit->lock);
  return allow;
}
