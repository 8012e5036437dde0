/* Identities kept on disk: the server ID and each agent's device ID, a
 * UUID made once and kept for the life of the installation. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CANOPY_IDENTITY_ERROR (canopy_identity_error_quark ())
GQuark canopy_identity_error_quark (void);

typedef enum {
  CANOPY_IDENTITY_ERROR_READ,
  CANOPY_IDENTITY_ERROR_INVALID,
  CANOPY_IDENTITY_ERROR_WRITE,
} CanopyIdentityError;

/**
 * canopy_identity_load:
 * @path: a file holding one UUID
 * @what: what the ID is, for messages ("server ID", "device ID")
 */
char *canopy_identity_load (const char *path, const char *what, GError **error);

/**
 * canopy_identity_ensure:
 * @created: (out) (optional): set when this call made a new ID
 *
 * Loads the ID in @path, or makes and records a new one if the file does
 * not exist.
 */
char *canopy_identity_ensure (const char *path, const char *what, gboolean *created,
                              GError **error);

G_END_DECLS
