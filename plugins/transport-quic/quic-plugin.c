/* The quic transport plugin module: its descriptor, and nothing else; the
 * implementation lives in the convenience library unit tests link. */
#include "build-config.h"

#include "plugins/transport-quic/quic-transport.h"

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_TRANSPORT, "quic", "1.0",
                      "QUIC (ngtcp2) with TLS 1.3, authenticated by a key derived from the "
                      "shared key",
                      canopy_quic_transport_schema, &canopy_quic_transport_ops);
