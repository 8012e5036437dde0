/* HKDF-SHA256 derivation of every secret canopy uses from the shared key,
 * each under a distinct label; intermediate material is wiped. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-keys"

#include <string.h>
#include <gio/gio.h>
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>

#include "lib/keys.h"
#include "lib/i18n.h"

void
canopy_keys_wipe (void *data, gsize len)
{
  if (data != NULL && len > 0)
    gnutls_memset (data, 0, len);
}

gboolean
canopy_keys_derive_transport_secret (const CanopySharedKey *key,
                                     guint8 out[CANOPY_TRANSPORT_SECRET_SIZE], GError **error)
{
  return canopy_key_derive (key->bytes, sizeof key->bytes, CANOPY_KEYS_LABEL_TRANSPORT,
                            NULL, 0, out, CANOPY_TRANSPORT_SECRET_SIZE, error);
}

gboolean
canopy_keys_make_transport_credentials (const CanopySharedKey *key, const char *device_id,
                                        CanopyTransportCredentials *creds, GError **error)
{
  g_return_val_if_fail (device_id != NULL, FALSE);
  creds->device_id = device_id;
  return canopy_keys_derive_transport_secret (key, creds->secret, error);
}
