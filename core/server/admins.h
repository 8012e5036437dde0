/* Console admins: named people with a role, each holding random bearer
 * tokens that are stored only as a hash, expire, and are revoked one by one. */
#pragma once

#include <glib.h>
#include "lib/backend.h"

G_BEGIN_DECLS

#define CANOPY_ADMINS_ERROR (canopy_admins_error_quark ())
GQuark canopy_admins_error_quark (void);

typedef enum {
  CANOPY_ADMINS_ERROR_INVALID,   /* a bad name, role or lifetime */
  CANOPY_ADMINS_ERROR_EXISTS,    /* an admin of that name exists, with another role */
  CANOPY_ADMINS_ERROR_NOT_FOUND, /* no admin or token of that name or ID */
  CANOPY_ADMINS_ERROR_RANDOM,    /* the random generator failed */
  CANOPY_ADMINS_ERROR_CORRUPT,   /* a stored record cannot be read */
} CanopyAdminsError;

/* Ordered: a role can do everything the roles below it can. */
typedef enum {
  CANOPY_ADMIN_ROLE_NONE,
  CANOPY_ADMIN_ROLE_AUDITOR,       /* every GET */
  CANOPY_ADMIN_ROLE_OPERATOR,      /* content and deployments */
  CANOPY_ADMIN_ROLE_ADMINISTRATOR, /* everything */
} CanopyAdminRole;

/* What every token starts with, so a leaked one is easy to recognise. */
#define CANOPY_ADMINS_TOKEN_PREFIX "cnp_"
#define CANOPY_ADMINS_TOKEN_ID_SIZE 8      /* random bytes, shown as hex */
#define CANOPY_ADMINS_TOKEN_SECRET_SIZE 32 /* random bytes, shown as hex */

/* What canopy_admins_revoke() names the removed records by: these
 * prefixes, then the admin's name or the token's ID. */
#define CANOPY_ADMINS_ADMIN_KEY_PREFIX "admin/"
#define CANOPY_ADMINS_TOKEN_KEY_PREFIX "admin-token/"

const char *canopy_admin_role_to_string (CanopyAdminRole role);
/* Returns: the role, or %CANOPY_ADMIN_ROLE_NONE with @error. */
CanopyAdminRole canopy_admin_role_from_string (const char *text, GError **error);

typedef struct {
  char *name;
  CanopyAdminRole role;
  gint64 created; /* seconds since the epoch */
} CanopyAdmin;

typedef struct {
  char *id;    /* hex; public, it names the token in lists and logs */
  char *admin; /* the holder's name */
  guint8 hash[32]; /* SHA-256 of the secret */
  gint64 created;
  gint64 expires; /* seconds since the epoch; 0: never */
} CanopyAdminToken;

typedef struct _CanopyAdmins CanopyAdmins;

CanopyAdmins *canopy_admins_new (void);
void canopy_admins_free (CanopyAdmins *admins);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyAdmins, canopy_admins_free)

/**
 * canopy_admins_load_admin:
 * @user_data: a #CanopyAdmins
 *
 * A #CanopyBackendRecordFunc over %CANOPY_RECORD_ADMIN records.
 */
gboolean canopy_admins_load_admin (const char *key, GVariant *value, gpointer user_data);

/* The same over %CANOPY_RECORD_ADMIN_TOKEN records. */
gboolean canopy_admins_load_token (const char *key, GVariant *value, gpointer user_data);

/* Reads every admin and token from @backend (blocking). */
CanopyAdmins *canopy_admins_load (CanopyBackend *backend, GError **error);

guint canopy_admins_count (const CanopyAdmins *admins);
/* Returns: (transfer none) (nullable) */
const CanopyAdmin *canopy_admins_lookup (const CanopyAdmins *admins, const char *name);
const CanopyAdminToken *canopy_admins_lookup_token (const CanopyAdmins *admins, const char *id);
/* Returns: (transfer container): the admins, sorted by name. */
GPtrArray *canopy_admins_list (const CanopyAdmins *admins);
/* Returns: (transfer container): @name's tokens (every token when NULL), oldest first. */
GPtrArray *canopy_admins_list_tokens (const CanopyAdmins *admins, const char *name);

/**
 * canopy_admins_add:
 *
 * Adds an admin in memory; an admin of that name and role is kept as is.
 * Returns: (transfer none): the admin, or %NULL with @error.
 */
const CanopyAdmin *canopy_admins_add (CanopyAdmins *admins, const char *name,
                                      CanopyAdminRole role, gint64 now, GError **error);

/**
 * canopy_admins_issue_token:
 * @expires: seconds since the epoch; 0: never
 * @text: (out) (transfer full): the token the admin presents; the only
 *   copy of its secret. Wipe it with canopy_admins_free_text().
 *
 * Returns: (transfer none): the new token, in memory.
 */
const CanopyAdminToken *canopy_admins_issue_token (CanopyAdmins *admins, const char *name,
                                                   gint64 now, gint64 expires, char **text,
                                                   GError **error);

/**
 * canopy_admins_revoke:
 * @what: an admin's name (the admin and every token of theirs go) or a
 *   token ID (that token goes)
 * @removed: (out) (transfer full): the keys of the removed records
 */
gboolean canopy_admins_revoke (CanopyAdmins *admins, const char *what, GStrv *removed,
                               GError **error);

/* The references canopy_admins_revoke() returns, and the record values
 * that keep @admin / @token (their keys are the name and the ID). */
char *canopy_admins_admin_key (const CanopyAdmin *admin);
GVariant *canopy_admins_admin_value (const CanopyAdmin *admin);
char *canopy_admins_token_key (const CanopyAdminToken *token);
GVariant *canopy_admins_token_value (const CanopyAdminToken *token);

/**
 * canopy_admins_save:
 * @admin: (nullable): an admin to write
 * @token: (nullable): a token to write
 * @removed: (nullable): references of records to remove, as
 *   canopy_admins_revoke() returns them
 *
 * Writes these records in one transaction (blocking).
 */
gboolean canopy_admins_save (CanopyBackend *backend, const CanopyAdmin *admin,
                             const CanopyAdminToken *token, const char *const *removed,
                             GError **error);

typedef enum {
  CANOPY_ADMINS_CHECK_OK,
  CANOPY_ADMINS_CHECK_MALFORMED, /* not a token of this format */
  CANOPY_ADMINS_CHECK_UNKNOWN,   /* no token has its ID */
  CANOPY_ADMINS_CHECK_WRONG,     /* the ID is known, the secret is not its */
  CANOPY_ADMINS_CHECK_EXPIRED,
} CanopyAdminsCheck;

/**
 * canopy_admins_check:
 * @text: a token as presented
 * @now: seconds since the epoch
 * @token: (out) (transfer none): with OK or EXPIRED, the token
 *
 * The secret is compared with the stored hash in constant time.
 */
CanopyAdminsCheck canopy_admins_check (const CanopyAdmins *admins, const char *text, gint64 now,
                                       const CanopyAdminToken **token);

/* Wipes and frees a token's text. */
void canopy_admins_free_text (char *text);

/* Returns: (transfer full): @time (seconds since the epoch) as "2026-03-01 14:05 UTC". */
char *canopy_admins_format_time (gint64 time);

G_END_DECLS
