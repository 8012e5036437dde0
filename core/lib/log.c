/* Logging: a GLib structured-log writer that filters debug messages by
 * domain and sends everything to journald, in its native protocol with
 * every field (written here rather than by GLib so that the socket can be
 * another, for tests and containers), or to standard error as dated lines. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-log"

#include "lib/i18n.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <inttypes.h>

struct _CanopyLog {
  char *setting;
  GStrv domains;
  gboolean all;
  int journal_fd; /* -1: plain text on standard error */
  gboolean also_text; /* a journal named by CANOPY_JOURNAL_SOCKET: standard error too */
  struct sockaddr_un journal_address;
};

static int journal_open (struct sockaddr_un *address);

CanopyLog *
canopy_log_new (void)
{
  CanopyLog *log = g_new0 (CanopyLog, 1);

  log->setting = g_strdup ("");
  log->domains = g_new0 (char *, 1);
  log->journal_fd = journal_open (&log->journal_address);
  log->also_text = log->journal_fd >= 0 && g_getenv (CANOPY_LOG_JOURNAL_SOCKET_ENV) != NULL
                   && g_getenv (CANOPY_LOG_JOURNAL_SOCKET_ENV)[0] != '\0';
  return log;
}

void
canopy_log_free (CanopyLog *log)
{
  if (log == NULL)
    return;
  if (log->journal_fd >= 0)
    close (log->journal_fd);
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
  "canopy-agent-uplink", "canopy-agent-wan-pacer", "canopy-atomic-file", "canopy-background-thread",
  "canopy-backend", "canopy-config",
  "canopy-config-node", "canopy-csv", "canopy-destination", "canopy-freetds", "canopy-identity",
  "canopy-keys", "canopy-licence-file", "canopy-licensing", "canopy-log", "canopy-manifest",
  "canopy-origin", "canopy-planner", "canopy-postgresql", "canopy-plugin", "canopy-plugin-loader", "canopy-program",
  "canopy-quic", "canopy-ranking", "canopy-service", "canopy-shared-key", "canopy-signing",
  "canopy-sqlite", "canopy-tcp", "canopy-topology", "canopy-transport", "canopy-watch",
  "canopy-wire", "canopyctl", "canopyd", "canopyd-admin-commands", "canopyd-admins",
  "canopyd-catalog", "canopyd-cluster", "canopyd-console-admins", "canopyd-console-api", "canopyd-console-audit", "canopyd-console-auth",
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

/* --- journald's native protocol ----------------------------------------- */

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Opens the journal socket when the service runs under journald, or when
 * CANOPY_JOURNAL_SOCKET names one; -1 otherwise. */
static int
journal_open (struct sockaddr_un *address)
{
  const char *path = g_getenv (CANOPY_LOG_JOURNAL_SOCKET_ENV);
  int fd;

  if (path == NULL || path[0] == '\0')
    path = g_log_writer_is_journald (STDERR_FILENO) ? JOURNAL_SOCKET : NULL;
  if (path == NULL || strlen (path) >= sizeof address->sun_path)
    return -1;
  memset (address, 0, sizeof *address);
  address->sun_family = AF_UNIX;
  strcpy (address->sun_path, path);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  return fd;
}

static int
level_to_priority (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return 3;
  if (level & G_LOG_LEVEL_CRITICAL)
    return 4;
  if (level & G_LOG_LEVEL_WARNING)
    return 4;
  if (level & G_LOG_LEVEL_MESSAGE)
    return 5;
  if (level & G_LOG_LEVEL_INFO)
    return 6;
  return 7;
}

/* Journal field names are upper-case letters, digits and "_", not first. */
static gboolean
journal_key_valid (const char *key)
{
  if (key[0] == '\0' || key[0] == '_')
    return FALSE;
  for (const char *c = key; *c != '\0'; c++)
    if (!g_ascii_isupper (*c) && !g_ascii_isdigit (*c) && *c != '_')
      return FALSE;
  return TRUE;
}

static void
journal_append (GString *out, const char *key, const char *value, gssize length)
{
  gsize n = length < 0 ? strlen (value) : (gsize) length;

  /* A value with a newline goes as its length and its bytes. */
  if (memchr (value, '\n', n) != NULL)
    {
      guint64 le = GUINT64_TO_LE ((guint64) n);

      g_string_append (out, key);
      g_string_append_c (out, '\n');
      g_string_append_len (out, (const char *) &le, sizeof le);
    }
  else
    {
      g_string_append (out, key);
      g_string_append_c (out, '=');
    }
  g_string_append_len (out, value, n);
  g_string_append_c (out, '\n');
}

/* A datagram too big for the socket goes in a sealed memfd, as
 * sd_journal_send() does. */
static gboolean
journal_send_memfd (int fd, const struct sockaddr_un *address, const GString *entry)
{
  union {
    struct cmsghdr header;
    char space[CMSG_SPACE (sizeof (int))];
  } control;
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  int memfd = memfd_create ("canopy-journal", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  gboolean sent;

  if (memfd < 0)
    return FALSE;
  if (write (memfd, entry->str, entry->len) != (gssize) entry->len
      || fcntl (memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
    {
      close (memfd);
      return FALSE;
    }
  memset (&control, 0, sizeof control);
  msg.msg_name = (void *) address;
  msg.msg_namelen = sizeof *address;
  msg.msg_control = &control;
  msg.msg_controllen = sizeof control;
  cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &memfd, sizeof (int));
  sent = sendmsg (fd, &msg, MSG_NOSIGNAL) >= 0;
  close (memfd);
  return sent;
}

static gboolean
journal_write (const CanopyLog *log, GLogLevelFlags level, const GLogField *fields,
               gsize n_fields)
{
  g_autoptr (GString) entry = g_string_sized_new (256);
  char priority[2] = { (char) ('0' + level_to_priority (level)), '\0' };

  journal_append (entry, "PRIORITY", priority, -1);
  if (g_get_prgname () != NULL)
    journal_append (entry, "SYSLOG_IDENTIFIER", g_get_prgname (), -1);
  for (gsize i = 0; i < n_fields; i++)
    {
      if (fields[i].value == NULL || g_str_equal (fields[i].key, "PRIORITY")
          || g_str_equal (fields[i].key, "SYSLOG_IDENTIFIER") || !journal_key_valid (fields[i].key))
        continue;
      journal_append (entry, fields[i].key, fields[i].value, fields[i].length);
    }
  if (sendto (log->journal_fd, entry->str, entry->len, MSG_NOSIGNAL,
              (const struct sockaddr *) &log->journal_address, sizeof log->journal_address) >= 0)
    return TRUE;
  if (errno == EMSGSIZE || errno == ENOBUFS)
    return journal_send_memfd (log->journal_fd, &log->journal_address, entry);
  return FALSE;
}

/* --- plain text ---------------------------------------------------------- */

static const char *
level_name (GLogLevelFlags level)
{
  if (level & G_LOG_LEVEL_ERROR)
    return "ERROR";
  if (level & G_LOG_LEVEL_CRITICAL)
    return "CRITICAL";
  if (level & G_LOG_LEVEL_WARNING)
    return "WARNING";
  if (level & G_LOG_LEVEL_MESSAGE)
    return "Message";
  if (level & G_LOG_LEVEL_INFO)
    return "INFO";
  return "DEBUG";
}

/* "2026-12-05T05:18:03.123Z canopyd-distributor-Message: text": the date
 * and time in UTC, so lines from several machines sort together. */
char *
canopy_log_format_line (gint64 now_us, const char *domain, GLogLevelFlags level,
                        const char *message)
{
  g_autoptr (GDateTime) time = g_date_time_new_from_unix_utc (now_us / G_USEC_PER_SEC);
  g_autofree char *date = time != NULL ? g_date_time_format (time, "%Y-%m-%dT%H:%M:%S")
                                       : g_strdup ("?");

  return g_strdup_printf ("%s.%03dZ %s%s%s: %s\n", date, (int) (now_us % G_USEC_PER_SEC / 1000),
                          domain != NULL ? domain : "", domain != NULL ? "-" : "",
                          level_name (level), message != NULL ? message : "");
}

static void
text_write (GLogLevelFlags level, const GLogField *fields, gsize n_fields)
{
  g_autofree char *line = canopy_log_format_line (
    g_get_real_time (), field_string (fields, n_fields, "GLIB_DOMAIN"), level,
    field_string (fields, n_fields, "MESSAGE"));
  gsize done = 0, n = strlen (line);

  /* One write, so lines of several threads do not mix. */
  while (done < n)
    {
      gssize w = write (STDERR_FILENO, line + done, n - done);

      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0)
        break;
      done += w;
    }
}

GLogWriterOutput
canopy_log_write (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                  gpointer user_data)
{
  const CanopyLog *log = user_data;

  if ((level & (G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO)) != 0
      && !shows_debug (log, field_string (fields, n_fields, "GLIB_DOMAIN")))
    return G_LOG_WRITER_HANDLED;

  /* journald failing (restarted, say) costs the line its fields, not the line. */
  if (log->journal_fd >= 0 && journal_write (log, level, fields, n_fields) && !log->also_text)
    return G_LOG_WRITER_HANDLED;
  text_write (level, fields, n_fields);
  return G_LOG_WRITER_HANDLED;
}

void
canopy_log_install (CanopyLog *log)
{
  g_log_set_writer_func (canopy_log_write, log, NULL);
}

void
canopy_log_event (const char *domain, GLogLevelFlags level, const char *message_id,
                  const CanopyLogSubject *subject, const char *format, ...)
{
  g_autofree char *message = NULL;
  GLogField fields[7];
  gsize n = 0;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  fields[n++] = (GLogField) { "MESSAGE", message, -1 };
  fields[n++] = (GLogField) { "MESSAGE_ID", message_id, -1 };
  if (domain != NULL)
    fields[n++] = (GLogField) { "GLIB_DOMAIN", domain, -1 };
  if (subject != NULL && subject->deployment != NULL)
    fields[n++] = (GLogField) { "CANOPY_DEPLOYMENT", subject->deployment, -1 };
  if (subject != NULL && subject->content != NULL)
    fields[n++] = (GLogField) { "CANOPY_CONTENT", subject->content, -1 };
  if (subject != NULL && subject->device != NULL)
    fields[n++] = (GLogField) { "CANOPY_DEVICE", subject->device, -1 };
  if (subject != NULL && subject->office != NULL && subject->office[0] != '\0')
    fields[n++] = (GLogField) { "CANOPY_OFFICE", subject->office, -1 };
  g_log_structured_array (level, fields, n);
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

char *
canopy_log_format_duration (gint64 us)
{
  gint64 s = MAX (us, 0) / G_USEC_PER_SEC;

  if (s >= 3600)
    return g_strdup_printf (_("%" PRId64 " h %02d min"), s / 3600, (int) (s % 3600 / 60));
  if (s >= 60)
    return g_strdup_printf (_("%d min %02d s"), (int) (s / 60), (int) (s % 60));
  return g_strdup_printf (_("%.1f s"), MAX (us, 0) / (double) G_USEC_PER_SEC);
}
