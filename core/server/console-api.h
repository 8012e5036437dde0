/* The console API: HTTPS + JSON under /api/v1/, Prometheus metrics under
 * /metrics and the web console under /console/, for canopyctl, browsers
 * and monitoring. */
#pragma once

#include <glib.h>
#include "lib/shared-key.h"
#include "server/admins.h"

G_BEGIN_DECLS

typedef struct _CanopyServer CanopyServer;
typedef struct _CanopyConsole CanopyConsole;

#define CANOPY_CONSOLE_ERROR (canopy_console_error_quark ())
GQuark canopy_console_error_quark (void);

typedef enum {
  CANOPY_CONSOLE_ERROR_CERTIFICATE, /* the TLS certificate or key cannot be used */
  CANOPY_CONSOLE_ERROR_LISTEN,      /* the address or port cannot be listened on */
} CanopyConsoleError;

/**
 * canopy_console_new:
 * @server: the running server (not owned; outlives the console)
 * @key: the shared key; the console keeps only its hash, for the health
 *   check to tell whether the key file changed. It never opens the
 *   console: admins' tokens do.
 * @error: names the certificate file or the address at fault
 *
 * Listens with the configured certificate, or the one "canopyd init" made.
 */
CanopyConsole *canopy_console_new (CanopyServer *server, const CanopySharedKey *key,
                                   GError **error);
void canopy_console_free (CanopyConsole *console);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyConsole, canopy_console_free)

/* Calls @func for each route of the API with the least role it needs
 * (tests check every one of them refuses what it must). */
void canopy_console_routes_foreach (void (*func) (const char *method, const char *path,
                                                  CanopyAdminRole role, gpointer user_data),
                                    gpointer user_data);

G_END_DECLS
