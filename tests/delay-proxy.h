/* A TCP proxy on loopback that holds what the upstream sends for a delay
 * the test may change at any moment: a WAN path whose queue fills and
 * empties, for the background class's tests, with no root. */
#pragma once

#include <glib.h>

typedef struct _CanopyTestDelayProxy CanopyTestDelayProxy;

/* Listens on 127.0.0.1 (its port in @port) and forwards each connection
 * to @upstream_host:@upstream_port. */
CanopyTestDelayProxy *canopy_test_delay_proxy_new (const char *upstream_host,
                                                   guint16 upstream_port, guint16 *port);
/* From now on, bytes from the upstream reach the client @delay_us after
 * the proxy read them. */
void canopy_test_delay_proxy_set_delay (CanopyTestDelayProxy *proxy, gint64 delay_us);
/* Closes every connection and waits for its threads. */
void canopy_test_delay_proxy_free (CanopyTestDelayProxy *proxy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyTestDelayProxy, canopy_test_delay_proxy_free)
