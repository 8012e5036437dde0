/* Console API authentication. The token is compared in constant time, and
 * the table of failing addresses is bounded so that a flood of addresses
 * cannot grow it without limit. */
#include "build-config.h"

#include "server/console-auth.h"

#include <gnutls/gnutls.h>
#include <string.h>

/* Addresses tracked at most; the oldest entries go first beyond this. */
#define MAX_TRACKED 4096

typedef struct {
  guint failures;     /* within the current window */
  gint64 window_start; /* monotonic µs */
  gint64 locked_until; /* monotonic µs, 0 when not locked */
  guint lockouts;      /* how many times in a row it was locked */
} Failures;

struct _CanopyConsoleAuth {
  guint8 token[CANOPY_KEYS_CONSOLE_TOKEN_SIZE];
  GHashTable *failing; /* address → Failures */
  guint64 total_failures;
};

CanopyConsoleAuth *
canopy_console_auth_new (const CanopySharedKey *key, GError **error)
{
  g_autoptr (CanopyConsoleAuth) auth = g_new0 (CanopyConsoleAuth, 1);

  auth->failing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  if (!canopy_keys_derive_console_token (key, auth->token, error))
    return NULL;
  return g_steal_pointer (&auth);
}

void
canopy_console_auth_free (CanopyConsoleAuth *auth)
{
  if (auth == NULL)
    return;
  canopy_keys_wipe (auth->token, sizeof auth->token);
  g_hash_table_unref (auth->failing);
  g_free (auth);
}

char *
canopy_console_token_format (const guint8 token[CANOPY_KEYS_CONSOLE_TOKEN_SIZE])
{
  GString *out = g_string_sized_new (CANOPY_KEYS_CONSOLE_TOKEN_SIZE * 2 + 1);

  for (gsize i = 0; i < CANOPY_KEYS_CONSOLE_TOKEN_SIZE; i++)
    g_string_append_printf (out, "%02x", token[i]);
  return g_string_free (out, FALSE);
}

/* The header's token as bytes; FALSE when it is not 64 hex digits. */
static gboolean
parse_bearer (const char *authorization, guint8 out[CANOPY_KEYS_CONSOLE_TOKEN_SIZE])
{
  const char *hex;

  if (g_ascii_strncasecmp (authorization, "Bearer ", 7) != 0)
    return FALSE;
  hex = authorization + 7;
  while (*hex == ' ')
    hex++;
  if (strlen (hex) != CANOPY_KEYS_CONSOLE_TOKEN_SIZE * 2)
    return FALSE;
  for (gsize i = 0; i < CANOPY_KEYS_CONSOLE_TOKEN_SIZE; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]), lo = g_ascii_xdigit_value (hex[2 * i + 1]);

      if (hi < 0 || lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
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

CanopyConsoleAuthResult
canopy_console_auth_check (CanopyConsoleAuth *auth, const char *address,
                           const char *authorization, gint64 now, guint *retry_after)
{
  Failures *f = g_hash_table_lookup (auth->failing, address);
  guint8 presented[CANOPY_KEYS_CONSOLE_TOKEN_SIZE];
  gboolean match;

  *retry_after = 0;
  if (f != NULL && f->locked_until > now)
    {
      *retry_after = (guint) ((f->locked_until - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
      return CANOPY_CONSOLE_AUTH_LOCKED;
    }
  if (authorization == NULL)
    return CANOPY_CONSOLE_AUTH_MISSING;
  match = parse_bearer (authorization, presented)
          && gnutls_memcmp (presented, auth->token, sizeof presented) == 0;
  canopy_keys_wipe (presented, sizeof presented);
  if (!match)
    {
      record_failure (auth, address, now);
      return CANOPY_CONSOLE_AUTH_MISMATCH;
    }
  g_hash_table_remove (auth->failing, address);
  return CANOPY_CONSOLE_AUTH_OK;
}

guint64
canopy_console_auth_get_failures (const CanopyConsoleAuth *auth)
{
  return auth->total_failures;
}

gboolean
canopy_console_auth_matches_key (const CanopyConsoleAuth *auth, const CanopySharedKey *key)
{
  guint8 token[CANOPY_KEYS_CONSOLE_TOKEN_SIZE];
  gboolean match = canopy_keys_derive_console_token (key, token, NULL)
                   && gnutls_memcmp (token, auth->token, sizeof token) == 0;

  canopy_keys_wipe (token, sizeof token);
  return match;
}
