/* Signed licence files: the licensed seat count from the issuer, signed
 * with the issuer's Ed25519 key so a server cannot be given more seats by
 * editing a file. */
#pragma once

#include <glib.h>
#include "lib/signing.h"

G_BEGIN_DECLS

#define CANOPY_LICENCE_FILE_ERROR (canopy_licence_file_error_quark ())
GQuark canopy_licence_file_error_quark (void);

typedef enum {
  CANOPY_LICENCE_FILE_ERROR_FORMAT,    /* not a licence file, or a bad field */
  CANOPY_LICENCE_FILE_ERROR_SIGNATURE, /* altered, or from another issuer */
} CanopyLicenceFileError;

typedef struct {
  char *customer;
  guint seats;
  GDateTime *expires; /* NULL: never */
} CanopyLicenceFile;

void canopy_licence_file_free (CanopyLicenceFile *licence);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyLicenceFile, canopy_licence_file_free)

/**
 * canopy_licence_file_write:
 *
 * Returns: (transfer full): the licence as text, signed with @issuer.
 */
char *canopy_licence_file_write (const CanopyLicenceFile *licence,
                                 const CanopySigningKey *issuer, GError **error);

/**
 * canopy_licence_file_read:
 * @text: a licence file's contents
 * @issuer: the issuer's public key
 * @error: names the line at fault, or says the signature does not match
 */
CanopyLicenceFile *canopy_licence_file_read (const char *text, const CanopyVerifyKey *issuer,
                                             GError **error);

/** canopy_licence_file_is_expired: Returns: whether @now is past the expiry day. */
gboolean canopy_licence_file_is_expired (const CanopyLicenceFile *licence, GDateTime *now);

G_END_DECLS
