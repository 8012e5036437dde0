/* The console's self-signed certificate. ECDSA P-256 because every
 * browser and TLS library accepts it, unlike Ed25519 certificates. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-cert"

#include "server/console/console-cert.h"
#include "lib/atomic-file.h"
#include "lib/i18n.h"

#include <gio/gio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <string.h>

#define VALIDITY_DAYS (10 * 365)

G_DEFINE_QUARK (canopy-console-cert-error-quark, canopy_console_cert_error)

G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_x509_crt_t, gnutls_x509_crt_deinit, NULL)
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (gnutls_x509_privkey_t, gnutls_x509_privkey_deinit, NULL)

static gboolean
check (int rc, const char *what, GError **error)
{
  if (rc >= 0)
    return TRUE;
  g_set_error (error, CANOPY_CONSOLE_CERT_ERROR, CANOPY_CONSOLE_CERT_ERROR_FAILED,
               _("Cannot make the console certificate (%s: %s); check the GnuTLS installation, "
                 "or name a certificate of your own in <console certificate key>"),
               what, gnutls_strerror (rc));
  return FALSE;
}

static gboolean
add_ip_san (gnutls_x509_crt_t crt, const char *text, GError **error)
{
  g_autoptr (GInetAddress) address = g_inet_address_new_from_string (text);

  if (address == NULL)
    return TRUE;
  return check (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_IPADDRESS,
                                                      g_inet_address_to_bytes (address),
                                                      (unsigned) g_inet_address_get_native_size (
                                                        address),
                                                      GNUTLS_FSAN_APPEND),
                "subject alternative name", error);
}

static gboolean
add_names (gnutls_x509_crt_t crt, const char *server_name, GError **error)
{
  if (!check (gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, server_name,
                                             (unsigned) strlen (server_name)),
              "subject", error))
    return FALSE;
  if (g_hostname_is_ip_address (server_name))
    {
      if (!add_ip_san (crt, server_name, error))
        return FALSE;
    }
  else if (!check (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, server_name,
                                                         (unsigned) strlen (server_name),
                                                         GNUTLS_FSAN_APPEND),
                   "subject alternative name", error))
    return FALSE;
  /* The admin often runs canopyctl on the server itself. */
  return check (gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                                      GNUTLS_FSAN_APPEND),
                "subject alternative name", error)
         && add_ip_san (crt, "127.0.0.1", error) && add_ip_san (crt, "::1", error);
}

static gboolean
fill_certificate (gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *server_name,
                  GError **error)
{
  guint8 serial[16];
  time_t now = time (NULL);

  if (!check (gnutls_rnd (GNUTLS_RND_NONCE, serial, sizeof serial), "serial", error))
    return FALSE;
  serial[0] &= 0x7f; /* a positive number */
  return check (gnutls_x509_crt_set_version (crt, 3), "version", error)
         && check (gnutls_x509_crt_set_serial (crt, serial, sizeof serial), "serial", error)
         && check (gnutls_x509_crt_set_activation_time (crt, now - 3600), "validity", error)
         && check (gnutls_x509_crt_set_expiration_time (crt, now + (time_t) VALIDITY_DAYS * 86400),
                   "validity", error)
         && add_names (crt, server_name, error)
         && check (gnutls_x509_crt_set_key (crt, key), "key", error)
         && check (gnutls_x509_crt_set_basic_constraints (crt, 0, -1), "constraints", error)
         && check (gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE),
                   "key usage", error)
         && check (gnutls_x509_crt_set_key_purpose_oid (crt, GNUTLS_KP_TLS_WWW_SERVER, 0),
                   "key purpose", error)
         && check (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0), "signature",
                   error);
}

static gboolean
write_datum (const char *path, gnutls_datum_t *datum, mode_t mode, GError **error)
{
  gboolean ok = canopy_atomic_file_write (path, datum->data, datum->size, mode, error);

  gnutls_memset (datum->data, 0, datum->size);
  gnutls_free (datum->data);
  datum->data = NULL;
  return ok;
}

gboolean
canopy_console_cert_generate (const char *server_name, const char *cert_path,
                              const char *key_path, GError **error)
{
  g_auto (gnutls_x509_privkey_t) key = NULL;
  g_auto (gnutls_x509_crt_t) crt = NULL;
  gnutls_datum_t key_pem = { NULL, 0 }, crt_pem = { NULL, 0 };

  if (!check (gnutls_x509_privkey_init (&key), "key", error)
      || !check (gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                               GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1),
                                               0),
                 "key", error)
      || !check (gnutls_x509_crt_init (&crt), "certificate", error)
      || !fill_certificate (crt, key, server_name, error)
      || !check (gnutls_x509_privkey_export2_pkcs8 (key, GNUTLS_X509_FMT_PEM, NULL,
                                                    GNUTLS_PKCS_PLAIN, &key_pem),
                 "key", error))
    return FALSE;
  if (!check (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &crt_pem), "certificate",
              error))
    {
      gnutls_memset (key_pem.data, 0, key_pem.size);
      gnutls_free (key_pem.data);
      return FALSE;
    }
  /* The key first: a certificate without its key would be kept by a rerun. */
  if (!write_datum (key_path, &key_pem, 0600, error))
    {
      gnutls_free (crt_pem.data);
      return FALSE;
    }
  return write_datum (cert_path, &crt_pem, 0644, error);
}

char *
canopy_console_cert_fingerprint (const char *pem, GError **error)
{
  g_auto (gnutls_x509_crt_t) crt = NULL;
  gnutls_datum_t in = { (unsigned char *) pem, (unsigned) strlen (pem) };
  guint8 digest[32];
  size_t size = sizeof digest;
  GString *out = g_string_new (NULL);

  if (gnutls_x509_crt_init (&crt) < 0 || gnutls_x509_crt_import (crt, &in, GNUTLS_X509_FMT_PEM) < 0
      || gnutls_x509_crt_get_fingerprint (crt, GNUTLS_DIG_SHA256, digest, &size) < 0)
    {
      g_set_error (error, CANOPY_CONSOLE_CERT_ERROR, CANOPY_CONSOLE_CERT_ERROR_INVALID,
                   _("This is not a PEM certificate; give the file that begins with "
                     "\"-----BEGIN CERTIFICATE-----\""));
      return g_string_free (out, TRUE);
    }
  for (gsize i = 0; i < size; i++)
    g_string_append_printf (out, "%s%02X", i > 0 ? ":" : "", digest[i]);
  return g_string_free (out, FALSE);
}
