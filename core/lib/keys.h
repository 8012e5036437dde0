/* Secrets derived from the shared key, each with its own HKDF label, so a
 * plugin never holds the shared key itself. */
#pragma once

#include <glib.h>
#include <canopy/keys.h>
#include <canopy/transport.h>
#include "lib/shared-key.h"

G_BEGIN_DECLS

/* The HKDF labels; changing one cuts off every peer that uses the old. */
#define CANOPY_KEYS_LABEL_TRANSPORT "canopy transport psk v1"

/**
 * canopy_keys_derive_transport_secret:
 * @key: the shared key
 * @out: receives the %CANOPY_TRANSPORT_SECRET_SIZE byte transport secret
 *
 * What transports authenticate with (#CanopyTransportCredentials.secret).
 */
gboolean canopy_keys_derive_transport_secret (const CanopySharedKey *key,
                                              guint8 out[CANOPY_TRANSPORT_SECRET_SIZE],
                                              GError **error);

/**
 * canopy_keys_make_transport_credentials:
 * @key: the shared key
 * @device_id: this end's ID (not copied; must outlive @creds' use)
 * @creds: filled in; wipe with canopy_keys_wipe() after handing it over
 */
gboolean canopy_keys_make_transport_credentials (const CanopySharedKey *key,
                                                 const char *device_id,
                                                 CanopyTransportCredentials *creds,
                                                 GError **error);

/* Overwrites @len bytes at @data with zeros in a way the compiler keeps. */
void canopy_keys_wipe (void *data, gsize len);

G_END_DECLS
