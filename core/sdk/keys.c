/* The SDK's key derivation: HKDF-SHA256 under a label, so that every use
 * of a secret gets a key of its own; intermediate material is wiped. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-keys"

#include <canopy/keys.h>
#include "lib/i18n.h"

#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <string.h>

static void
wipe (void *data, gsize len)
{
  gnutls_memset (data, 0, len);
}

gboolean
canopy_key_derive (const guint8 *secret, gsize secret_len, const char *label,
                   const void *context, gsize context_len,
                   guint8 *out, gsize out_len, GError **error)
{
  guint8 prk[32];
  gsize label_len;
  gnutls_datum_t ikm, salt;
  int rc;

  g_return_val_if_fail (secret != NULL && secret_len > 0, FALSE);
  g_return_val_if_fail (label != NULL, FALSE);
  g_return_val_if_fail (out != NULL && out_len > 0 && out_len <= 255 * 32, FALSE);
  g_return_val_if_fail (context != NULL || context_len == 0, FALSE);

  label_len = strlen (label);
  ikm = (gnutls_datum_t) { (unsigned char *) secret, (unsigned int) secret_len };
  salt = (gnutls_datum_t) { (unsigned char *) label, (unsigned int) label_len };
  rc = gnutls_hkdf_extract (GNUTLS_MAC_SHA256, &ikm, &salt, prk);
  if (rc == 0)
    {
      /* info = label || 0 || context: the label alone separates purposes,
       * the context binds the key to one identity. */
      g_autofree guint8 *info_data = g_malloc (label_len + 1 + context_len);
      gnutls_datum_t key = { prk, sizeof prk };
      gnutls_datum_t info = { info_data, (unsigned int) (label_len + 1 + context_len) };

      memcpy (info_data, label, label_len);
      info_data[label_len] = 0;
      if (context_len > 0)
        memcpy (info_data + label_len + 1, context, context_len);
      rc = gnutls_hkdf_expand (GNUTLS_MAC_SHA256, &key, &info, out, out_len);
    }
  wipe (prk, sizeof prk);
  if (rc != 0)
    {
      wipe (out, out_len);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("Cannot derive a key with HKDF-SHA256 (%s); check the GnuTLS installation."),
                   gnutls_strerror (rc));
      return FALSE;
    }
  return TRUE;
}
