/* Ed25519 signing keys through GnuTLS. Private key bytes are wiped from
 * memory as soon as GnuTLS holds them. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-signing"

#include "lib/signing.h"
#include "lib/i18n.h"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

struct _CanopySigningKey {
  gnutls_privkey_t key;
  gnutls_pubkey_t pub;
};

struct _CanopyVerifyKey {
  gnutls_pubkey_t pub;
};

G_DEFINE_QUARK (canopy-signing-error-quark, canopy_signing_error)

static gboolean
set_key_error (GError **error, const char *what, int rc)
{
  g_set_error (error, CANOPY_SIGNING_ERROR, CANOPY_SIGNING_ERROR_KEY,
               _("Cannot use the signing key %s: %s"), what, gnutls_strerror (rc));
  return FALSE;
}

gboolean
canopy_signing_key_generate_file (const char *path, GError **error)
{
  gnutls_x509_privkey_t key = NULL;
  gnutls_datum_t pem = { NULL, 0 };
  g_autoptr (GError) local_error = NULL;
  gboolean ok;
  int rc;

  if ((rc = gnutls_x509_privkey_init (&key)) < 0)
    return set_key_error (error, path, rc);
  rc = gnutls_x509_privkey_generate2 (key, GNUTLS_PK_EDDSA_ED25519, 256, 0, NULL, 0);
  if (rc >= 0)
    rc = gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN,
                                            &pem);
  gnutls_x509_privkey_deinit (key);
  if (rc < 0)
    return set_key_error (error, path, rc);

  ok = g_file_set_contents_full (path, (const char *) pem.data, pem.size,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local_error);
  gnutls_memset (pem.data, 0, pem.size);
  gnutls_free (pem.data);
  if (!ok)
    g_set_error (error, CANOPY_SIGNING_ERROR, CANOPY_SIGNING_ERROR_READ,
                 _("Cannot write the signing key: %s"), local_error->message);
  return ok;
}

void
canopy_signing_key_free (CanopySigningKey *key)
{
  if (key == NULL)
    return;
  if (key->key != NULL)
    gnutls_privkey_deinit (key->key);
  if (key->pub != NULL)
    gnutls_pubkey_deinit (key->pub);
  g_free (key);
}

CanopySigningKey *
canopy_signing_key_load (const char *path, GError **error)
{
  g_autoptr (CanopySigningKey) key = g_new0 (CanopySigningKey, 1);
  g_autofree char *pem = NULL;
  gsize length;
  gnutls_datum_t datum;
  g_autoptr (GError) local_error = NULL;
  int rc;

  if (!g_file_get_contents (path, &pem, &length, &local_error))
    {
      g_set_error (error, CANOPY_SIGNING_ERROR, CANOPY_SIGNING_ERROR_READ,
                   _("Cannot read the signing key: %s"), local_error->message);
      return NULL;
    }
  datum.data = (unsigned char *) pem;
  datum.size = (unsigned int) length;
  if ((rc = gnutls_privkey_init (&key->key)) < 0
      || (rc = gnutls_privkey_import_x509_raw (key->key, &datum, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0
      || (rc = gnutls_pubkey_init (&key->pub)) < 0
      || (rc = gnutls_pubkey_import_privkey (key->pub, key->key, 0, 0)) < 0)
    {
      gnutls_memset (pem, 0, length);
      set_key_error (error, path, rc);
      return NULL;
    }
  gnutls_memset (pem, 0, length);
  if (gnutls_privkey_get_pk_algorithm (key->key, NULL) != GNUTLS_PK_EDDSA_ED25519)
    {
      g_set_error (error, CANOPY_SIGNING_ERROR, CANOPY_SIGNING_ERROR_KEY,
                   _("The signing key %s is not an Ed25519 key; move it away and make a new "
                     "one"), path);
      return NULL;
    }
  return g_steal_pointer (&key);
}

GBytes *
canopy_signing_key_get_public (const CanopySigningKey *key)
{
  gnutls_ecc_curve_t curve;
  gnutls_datum_t x = { NULL, 0 };
  GBytes *raw;

  if (gnutls_pubkey_export_ecc_raw (key->pub, &curve, &x, NULL) < 0)
    return NULL;
  raw = g_bytes_new (x.data, x.size);
  gnutls_free (x.data);
  return raw;
}

GBytes *
canopy_signing_key_sign (const CanopySigningKey *key, const guint8 *data, gsize length,
                         GError **error)
{
  gnutls_datum_t in = { (unsigned char *) data, (unsigned int) length };
  gnutls_datum_t sig = { NULL, 0 };
  int rc = gnutls_privkey_sign_data2 (key->key, GNUTLS_SIGN_EDDSA_ED25519, 0, &in, &sig);
  GBytes *signature;

  if (rc < 0)
    {
      set_key_error (error, _("to sign"), rc);
      return NULL;
    }
  signature = g_bytes_new (sig.data, sig.size);
  gnutls_free (sig.data);
  return signature;
}

void
canopy_verify_key_free (CanopyVerifyKey *key)
{
  if (key == NULL)
    return;
  if (key->pub != NULL)
    gnutls_pubkey_deinit (key->pub);
  g_free (key);
}

CanopyVerifyKey *
canopy_verify_key_new (GBytes *public_key, GError **error)
{
  g_autoptr (CanopyVerifyKey) key = g_new0 (CanopyVerifyKey, 1);
  gsize size;
  gnutls_datum_t x;
  int rc;

  x.data = (unsigned char *) g_bytes_get_data (public_key, &size);
  x.size = (unsigned int) size;
  if ((rc = gnutls_pubkey_init (&key->pub)) < 0
      || (rc = gnutls_pubkey_import_ecc_raw (key->pub, GNUTLS_ECC_CURVE_ED25519, &x, NULL)) < 0)
    {
      set_key_error (error, _("(public key)"), rc);
      return NULL;
    }
  return g_steal_pointer (&key);
}

CanopyVerifyKey *
canopy_verify_key_new_from_base64 (const char *text, GError **error)
{
  gsize length = 0;
  g_autofree guchar *raw = g_base64_decode (text, &length);
  g_autoptr (GBytes) bytes = g_bytes_new (raw, length);

  return canopy_verify_key_new (bytes, error);
}

gboolean
canopy_verify_key_verify (const CanopyVerifyKey *key, const guint8 *data, gsize length,
                          const guint8 *signature, gsize signature_length)
{
  gnutls_datum_t in = { (unsigned char *) data, (unsigned int) length };
  gnutls_datum_t sig = { (unsigned char *) signature, (unsigned int) signature_length };

  return signature_length > 0
         && gnutls_pubkey_verify_data2 (key->pub, GNUTLS_SIGN_EDDSA_ED25519, 0, &in, &sig) >= 0;
}
