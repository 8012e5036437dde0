/* Key derivation for plugins: HKDF-SHA256 with a label, so every secret a
 * plugin needs comes from one it was given, never from the shared key. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * canopy_key_derive:
 * @secret: input keying material (e.g. the transport secret)
 * @secret_len: its length in bytes
 * @label: a distinct, versioned purpose ("canopy transport psk v1"); used
 *   as the HKDF salt, so different labels give unrelated keys
 * @context: (nullable): bytes that bind the key to one use, e.g. a peer's
 *   device ID; HKDF's info is @label, a zero byte, then @context
 * @context_len: length of @context
 * @out: where the derived key goes
 * @out_len: how many bytes to derive (1 to 8160)
 * @error: a %G_IO_ERROR_FAILED if GnuTLS refuses (never includes key bytes)
 *
 * HKDF-SHA256 (RFC 5869) through GnuTLS. Intermediate secrets are wiped.
 *
 * Returns: %TRUE when @out holds the key.
 */
gboolean canopy_key_derive (const guint8 *secret,
                            gsize secret_len,
                            const char *label,
                            const void *context,
                            gsize context_len,
                            guint8 *out,
                            gsize out_len,
                            GError **error);

G_END_DECLS
