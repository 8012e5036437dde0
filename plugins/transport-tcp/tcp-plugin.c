/* The tcp transport plugin module: its descriptor, and nothing else; the
 * implementation lives in the convenience library unit tests link. */
#include "build-config.h"

#include "plugins/transport-tcp/tcp-transport.h"

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_TRANSPORT, "tcp", "1.0",
                      "TCP with TLS 1.3, authenticated by a key derived from the shared key",
                      canopy_tcp_transport_schema, &canopy_tcp_transport_ops);
