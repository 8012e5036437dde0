/* Ed25519 signing keys (GnuTLS): the server's content-signing key and the
 * licence issuer's key, with their public halves. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CANOPY_SIGNING_ERROR (canopy_signing_error_quark ())
GQuark canopy_signing_error_quark (void);

typedef enum {
  CANOPY_SIGNING_ERROR_READ,
  CANOPY_SIGNING_ERROR_KEY,
} CanopySigningError;

typedef struct _CanopySigningKey CanopySigningKey;
typedef struct _CanopyVerifyKey CanopyVerifyKey;

/**
 * canopy_signing_key_generate_file:
 * @path: where to write a new key, PKCS#8 PEM, owner-only
 */
gboolean canopy_signing_key_generate_file (const char *path, GError **error);

/** canopy_signing_key_load: Reads a PKCS#8 PEM Ed25519 key. */
CanopySigningKey *canopy_signing_key_load (const char *path, GError **error);
void canopy_signing_key_free (CanopySigningKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopySigningKey, canopy_signing_key_free)

/** canopy_signing_key_get_public: Returns: (transfer full): the raw 32-byte public key. */
GBytes *canopy_signing_key_get_public (const CanopySigningKey *key);

/** canopy_signing_key_sign: Returns: (transfer full): the 64-byte signature of @data. */
GBytes *canopy_signing_key_sign (const CanopySigningKey *key, const guint8 *data, gsize length,
                                 GError **error);

CanopyVerifyKey *canopy_verify_key_new (GBytes *public_key, GError **error);
/* The same from base64 text, as `canopyctl licence-keygen` prints it. */
CanopyVerifyKey *canopy_verify_key_new_from_base64 (const char *text, GError **error);
void canopy_verify_key_free (CanopyVerifyKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyVerifyKey, canopy_verify_key_free)

/** canopy_verify_key_verify: Returns: whether @signature is @key's over @data. */
gboolean canopy_verify_key_verify (const CanopyVerifyKey *key, const guint8 *data, gsize length,
                                   const guint8 *signature, gsize signature_length);

G_END_DECLS
