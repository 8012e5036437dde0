/* canopyctl's connection profile: the server's URL, the console token
 * derived from the shared key (never the key), and how to trust the
 * server's certificate. Stored owner-only. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
  char *url;         /* https://host:port */
  char *token;       /* the console token, hex */
  char *fingerprint; /* the pinned SHA-256 of the server certificate, or NULL */
  char *ca_file;     /* a CA bundle to check the certificate with, or NULL */
} CtlProfile;

void ctl_profile_free (CtlProfile *profile);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlProfile, ctl_profile_free)

/* Returns: (transfer full): $CANOPY_PROFILE, or ~/.config/canopy/profile. */
char *ctl_profile_default_path (void);

/* @error: says to run "canopyctl login" when there is no profile. */
CtlProfile *ctl_profile_load (const char *path, GError **error);

/* Writes atomically, mode 0600, in a directory made 0700 if missing. */
gboolean ctl_profile_save (const CtlProfile *profile, const char *path, GError **error);

/**
 * ctl_profile_normalize_fingerprint:
 *
 * Returns: (transfer full): @text as upper-case hex pairs joined by colons,
 *   or %NULL when it is not a SHA-256 fingerprint (64 hex digits, with or
 *   without colons).
 */
char *ctl_profile_normalize_fingerprint (const char *text);

G_END_DECLS
