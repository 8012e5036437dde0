/* Console API authentication: the admins' tokens, and the table of
 * addresses that present wrong ones, bounded so that a flood of addresses
 * cannot grow it without limit. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-auth"

#include "server/console/console-auth.h"

/* Addresses tracked at most; the oldest entries go first beyond this. */
#define MAX_TRACKED 4096

typedef struct {
  guint failures;     /* within the current window */
  gint64 window_start; /* monotonic µs */
  gint64 locked_until; /* monotonic µs, 0 when not locked */
  guint lockouts;      /* how many times in a row it was locked */
} Failures;

struct _CanopyConsoleAuth {
  CanopyAdmins *admins; /* as last read from the database */
  GHashTable *failing;  /* address → Failures */
  guint64 total_failures;
};

CanopyConsoleAuth *
canopy_console_auth_new (CanopyAdmins *admins)
{
  CanopyConsoleAuth *auth = g_new0 (CanopyConsoleAuth, 1);

  auth->failing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  auth->admins = admins;
  return auth;
}

void
canopy_console_auth_free (CanopyConsoleAuth *auth)
{
  if (auth == NULL)
    return;
  canopy_admins_free (auth->admins);
  g_hash_table_unref (auth->failing);
  g_free (auth);
}

CanopyAdmins *
canopy_console_auth_get_admins (CanopyConsoleAuth *auth)
{
  return auth->admins;
}

void
canopy_console_auth_set_admins (CanopyConsoleAuth *auth, CanopyAdmins *admins)
{
  canopy_admins_free (auth->admins);
  auth->admins = admins;
}

/* The header's token, or NULL when it is not a bearer token. */
static const char *
parse_bearer (const char *authorization)
{
  const char *token;

  if (g_ascii_strncasecmp (authorization, "Bearer ", 7) != 0)
    return NULL;
  token = authorization + 7;
  while (*token == ' ')
    token++;
  return token;
}

static void
forget_expired (CanopyConsoleAuth *auth, gint64 now)
{
  GHashTableIter iter;
  Failures *f;

  g_hash_table_iter_init (&iter, auth->failing);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &f))
    if (f->locked_until < now && now - f->window_start > CANOPY_CONSOLE_AUTH_WINDOW_S * G_USEC_PER_SEC)
      g_hash_table_iter_remove (&iter);
}

static void
record_failure (CanopyConsoleAuth *auth, const char *address, gint64 now)
{
  Failures *f = g_hash_table_lookup (auth->failing, address);

  auth->total_failures++;
  if (f == NULL)
    {
      if (g_hash_table_size (auth->failing) >= MAX_TRACKED)
        forget_expired (auth, now);
      if (g_hash_table_size (auth->failing) >= MAX_TRACKED)
        g_hash_table_remove_all (auth->failing);
      f = g_new0 (Failures, 1);
      f->window_start = now;
      g_hash_table_insert (auth->failing, g_strdup (address), f);
    }
  if (now - f->window_start > CANOPY_CONSOLE_AUTH_WINDOW_S * G_USEC_PER_SEC)
    {
      f->window_start = now;
      f->failures = 0;
    }
  if (++f->failures >= CANOPY_CONSOLE_AUTH_MAX_FAILURES)
    {
      guint lockout = MIN ((guint) CANOPY_CONSOLE_AUTH_LOCKOUT_S << MIN (f->lockouts, 10u),
                           (guint) CANOPY_CONSOLE_AUTH_MAX_LOCKOUT_S);

      f->locked_until = now + (gint64) lockout * G_USEC_PER_SEC;
      f->lockouts++;
      f->failures = 0;
      f->window_start = now;
    }
}

static gboolean
is_locked (CanopyConsoleAuth *auth, const char *address, gint64 now, guint *retry_after)
{
  Failures *f = g_hash_table_lookup (auth->failing, address);

  if (f == NULL || f->locked_until <= now)
    return FALSE;
  *retry_after = (guint) ((f->locked_until - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
  return TRUE;
}

CanopyConsoleAuthResult
canopy_console_auth_check (CanopyConsoleAuth *auth, const char *address,
                           const char *authorization, gboolean final, gint64 now,
                           gint64 wall_clock, const CanopyAdminToken **token,
                           guint *retry_after)
{
  const char *text = authorization != NULL ? parse_bearer (authorization) : NULL;
  CanopyAdminsCheck check = CANOPY_ADMINS_CHECK_MALFORMED;

  *token = NULL;
  *retry_after = 0;
  if (text != NULL)
    check = canopy_admins_check (auth->admins, text, wall_clock, token);
  /* A valid token gets in even from a locked address: it is 256 random
   * bits, so the lockout only slows guessers and keeps the log short. */
  if (check == CANOPY_ADMINS_CHECK_OK)
    return CANOPY_CONSOLE_AUTH_OK;
  if (check == CANOPY_ADMINS_CHECK_EXPIRED)
    return CANOPY_CONSOLE_AUTH_EXPIRED;
  /* Even from a locked address: it may be a token made since the last read. */
  if (check == CANOPY_ADMINS_CHECK_UNKNOWN && !final)
    return CANOPY_CONSOLE_AUTH_UNKNOWN;
  if (is_locked (auth, address, now, retry_after))
    return CANOPY_CONSOLE_AUTH_LOCKED;
  if (authorization == NULL)
    return CANOPY_CONSOLE_AUTH_MISSING;
  record_failure (auth, address, now);
  return CANOPY_CONSOLE_AUTH_INVALID;
}

guint64
canopy_console_auth_get_failures (const CanopyConsoleAuth *auth)
{
  return auth->total_failures;
}
