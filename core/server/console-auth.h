/* Console API authentication: a bearer token derived from the shared key,
 * compared in constant time, with repeated failures from one address
 * locked out for a growing time. */
#pragma once

#include <glib.h>
#include "lib/keys.h"

G_BEGIN_DECLS

typedef struct _CanopyConsoleAuth CanopyConsoleAuth;

typedef enum {
  CANOPY_CONSOLE_AUTH_OK,
  CANOPY_CONSOLE_AUTH_MISSING,  /* no "Authorization: Bearer" header */
  CANOPY_CONSOLE_AUTH_MISMATCH, /* a token, not the one of this server's key */
  CANOPY_CONSOLE_AUTH_LOCKED,   /* too many failures from this address */
} CanopyConsoleAuthResult;

/* Failures from one address within the window before it is locked out. */
#define CANOPY_CONSOLE_AUTH_MAX_FAILURES 5
#define CANOPY_CONSOLE_AUTH_WINDOW_S 60
/* The first lockout; each further one doubles, up to the maximum. */
#define CANOPY_CONSOLE_AUTH_LOCKOUT_S 30
#define CANOPY_CONSOLE_AUTH_MAX_LOCKOUT_S 900

/**
 * canopy_console_auth_new:
 * @key: the shared key; only the token derived from it is kept
 */
CanopyConsoleAuth *canopy_console_auth_new (const CanopySharedKey *key, GError **error);
void canopy_console_auth_free (CanopyConsoleAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyConsoleAuth, canopy_console_auth_free)

/**
 * canopy_console_auth_check:
 * @address: the client's address, as text
 * @authorization: (nullable): the request's Authorization header
 * @now: monotonic µs
 * @retry_after: (out): with %CANOPY_CONSOLE_AUTH_LOCKED, seconds to wait
 *
 * A locked-out address is refused even with the right token, so the
 * lockout does not tell a guesser which token was right.
 */
CanopyConsoleAuthResult canopy_console_auth_check (CanopyConsoleAuth *auth, const char *address,
                                                   const char *authorization, gint64 now,
                                                   guint *retry_after);

/* Whether @key gives the token this console accepts (constant time). */
gboolean canopy_console_auth_matches_key (const CanopyConsoleAuth *auth,
                                          const CanopySharedKey *key);

/** canopy_console_auth_get_failures: Returns: wrong tokens presented so far. */
guint64 canopy_console_auth_get_failures (const CanopyConsoleAuth *auth);

/**
 * canopy_console_token_format:
 *
 * Returns: (transfer full): the token as lower-case hex, what clients send
 *   after "Bearer ". Wipe it with canopy_shared_key_free_text().
 */
char *canopy_console_token_format (const guint8 token[CANOPY_KEYS_CONSOLE_TOKEN_SIZE]);

G_END_DECLS
