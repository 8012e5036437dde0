/* The console API's TLS certificate: a self-signed one that "canopyd init"
 * makes for the server's name, and the fingerprint clients pin. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CANOPY_CONSOLE_CERT_ERROR (canopy_console_cert_error_quark ())
GQuark canopy_console_cert_error_quark (void);

typedef enum {
  CANOPY_CONSOLE_CERT_ERROR_FAILED, /* GnuTLS refused; the message says why */
  CANOPY_CONSOLE_CERT_ERROR_INVALID, /* not a PEM certificate */
} CanopyConsoleCertError;

/* File names inside the state directory. */
#define CANOPY_CONSOLE_CERT_FILE "console-cert.pem"
#define CANOPY_CONSOLE_KEY_FILE "console-key.pem"

/**
 * canopy_console_cert_generate:
 * @server_name: the name or IP address clients reach the server by; it
 *   goes into the subject and the subject alternative names, with
 *   "localhost", 127.0.0.1 and ::1
 * @cert_path: where the certificate (PEM) goes, mode 0644
 * @key_path: where the private key (PKCS#8 PEM) goes, mode 0600
 * @error: names the file or the GnuTLS failure
 *
 * Makes an ECDSA P-256 key and a self-signed certificate valid for ten
 * years, written atomically.
 */
gboolean canopy_console_cert_generate (const char *server_name, const char *cert_path,
                                       const char *key_path, GError **error);

/**
 * canopy_console_cert_fingerprint:
 * @pem: a PEM certificate
 *
 * Returns: (transfer full): its SHA-256 fingerprint as upper-case hex
 *   pairs joined by colons, as browsers show it, or %NULL with @error.
 */
char *canopy_console_cert_fingerprint (const char *pem, GError **error);

G_END_DECLS
