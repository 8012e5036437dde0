/* The QUIC transport: ngtcp2 over UDP, TLS 1.3 with an external PSK derived
 * from the transport secret, one stream per message, non-blocking on one context. */
#pragma once

#include <canopy/canopy.h>

G_BEGIN_DECLS

/* The operations table and the RelaxNG fragment of `<transport plugin="quic">`. */
extern const CanopyTransportOps canopy_quic_transport_ops;
extern const char canopy_quic_transport_schema[];

G_END_DECLS
