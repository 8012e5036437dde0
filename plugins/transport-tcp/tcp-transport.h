/* The TCP transport: TLS 1.3 with an external PSK derived from the
 * transport secret, framed messages, all non-blocking on one context. */
#pragma once

#include <canopy/canopy.h>

G_BEGIN_DECLS

/* The operations table and the RelaxNG fragment of `<transport plugin="tcp">`. */
extern const CanopyTransportOps canopy_tcp_transport_ops;
extern const char canopy_tcp_transport_schema[];

G_END_DECLS
