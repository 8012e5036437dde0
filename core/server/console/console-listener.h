/* The console API's connections: accepted, capped, TLS-handshaken and
 * timed out here, then handed to libsoup, which never sees a client that
 * has not finished its handshake. */
#pragma once

#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _CanopyConsoleListener CanopyConsoleListener;

typedef struct {
  guint handshake_timeout; /* seconds from accept to the end of the TLS handshake */
  guint idle_timeout;      /* seconds a connection may wait with no request in flight */
  guint max_per_address;   /* connections open from one client address */
  guint max_connections;   /* connections open in all */
} CanopyConsoleLimits;

/**
 * canopy_console_listener_new:
 * @soup: (transfer none): the server the established connections go to;
 *   must outlive the listener
 * @certificate: the console's certificate, with its key
 *
 * Returns: (transfer full): a listener that listens nowhere yet.
 */
CanopyConsoleListener *canopy_console_listener_new (SoupServer *soup,
                                                    GTlsCertificate *certificate,
                                                    const CanopyConsoleLimits *limits);

/**
 * canopy_console_listener_listen:
 * @address: (nullable): an IP address; %NULL: every address, IPv4 and IPv6
 * @port: 0 picks a free port
 * @uris: (out) (transfer full): where it listens, "https://ADDRESS:PORT/"
 */
gboolean canopy_console_listener_listen (CanopyConsoleListener *listener, const char *address,
                                         guint port, GStrv *uris, GError **error);

/* Connections open now, handshaking or handed to libsoup. */
guint canopy_console_listener_count (const CanopyConsoleListener *listener);

/* Connections closed as accepted, past a cap, since the start. */
guint64 canopy_console_listener_get_refused (const CanopyConsoleListener *listener);

/* Stops listening and closes every connection. */
void canopy_console_listener_free (CanopyConsoleListener *listener);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyConsoleListener, canopy_console_listener_free)

G_END_DECLS
