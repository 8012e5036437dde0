/* Console API authentication: an admin's bearer token, with repeated
 * wrong tokens from one address slowed down for a growing time. */
#pragma once

#include <glib.h>
#include "server/admins.h"

G_BEGIN_DECLS

typedef struct _CanopyConsoleAuth CanopyConsoleAuth;

typedef enum {
  CANOPY_CONSOLE_AUTH_OK,
  CANOPY_CONSOLE_AUTH_MISSING, /* no "Authorization" header */
  CANOPY_CONSOLE_AUTH_UNKNOWN, /* a token whose ID is not known: read the admins again */
  CANOPY_CONSOLE_AUTH_INVALID, /* not a token of this server's admins, or revoked */
  CANOPY_CONSOLE_AUTH_EXPIRED, /* an admin's token, past its expiry */
  CANOPY_CONSOLE_AUTH_LOCKED,  /* too many wrong tokens from this address */
} CanopyConsoleAuthResult;

/* Wrong tokens from one address within the window before it is locked out. */
#define CANOPY_CONSOLE_AUTH_MAX_FAILURES 5
#define CANOPY_CONSOLE_AUTH_WINDOW_S 60
/* The first lockout; each further one doubles, up to the maximum. */
#define CANOPY_CONSOLE_AUTH_LOCKOUT_S 30
#define CANOPY_CONSOLE_AUTH_MAX_LOCKOUT_S 900

/**
 * canopy_console_auth_new:
 * @admins: (transfer full): the admins and tokens to accept
 */
CanopyConsoleAuth *canopy_console_auth_new (CanopyAdmins *admins);
void canopy_console_auth_free (CanopyConsoleAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyConsoleAuth, canopy_console_auth_free)

/** canopy_console_auth_get_admins: Returns: (transfer none): the admins in force. */
CanopyAdmins *canopy_console_auth_get_admins (CanopyConsoleAuth *auth);
/* Replaces the admins in force with @admins (transfer full), as re-read. */
void canopy_console_auth_set_admins (CanopyConsoleAuth *auth, CanopyAdmins *admins);

/**
 * canopy_console_auth_check:
 * @address: the client's address, as text
 * @authorization: (nullable): the request's Authorization header
 * @final: whether the admins were just read again: an unknown token ID is
 *   then wrong, not %CANOPY_CONSOLE_AUTH_UNKNOWN
 * @now: monotonic µs
 * @wall_clock: seconds since the epoch, for expiry
 * @token: (out) (transfer none): with OK or EXPIRED, the token presented
 * @retry_after: (out): with %CANOPY_CONSOLE_AUTH_LOCKED, seconds to wait
 *
 * A valid token is accepted even from a locked-out address, and an
 * unknown one is %CANOPY_CONSOLE_AUTH_UNKNOWN from there too (it may have
 * been made since the last read); the caller bounds how often it reads.
 */
CanopyConsoleAuthResult canopy_console_auth_check (CanopyConsoleAuth *auth, const char *address,
                                                   const char *authorization, gboolean final,
                                                   gint64 now, gint64 wall_clock,
                                                   const CanopyAdminToken **token,
                                                   guint *retry_after);

/** canopy_console_auth_get_failures: Returns: wrong tokens presented so far. */
guint64 canopy_console_auth_get_failures (const CanopyConsoleAuth *auth);

G_END_DECLS
