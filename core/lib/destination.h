/* Deployment destinations: what can never be a valid place for a package,
 * whatever the device. The server refuses it when a deployment is made;
 * the agent checks again, since it runs as root and the server may be
 * wrong, and applies its own policy on top (agent/install-policy.h). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CANOPY_DESTINATION_ERROR (canopy_destination_error_quark ())
GQuark canopy_destination_error_quark (void);

typedef enum {
  CANOPY_DESTINATION_ERROR_INVALID, /* empty, relative, "..", NUL, control characters, /dev */
  CANOPY_DESTINATION_ERROR_REFUSED, /* valid, but the device's policy does not allow it */
} CanopyDestinationError;

/**
 * canopy_destination_check:
 * @destination: the path as received
 * @length: its length in bytes as received, or -1 when it cannot hold a
 *   NUL (a C string from a trusted place); a NUL before @length is refused
 *
 * Refuses an empty or relative path, one with a "." or ".." component, a
 * NUL, a control character, or text that is not UTF-8: each could make
 * the path name something other than what an admin reads. Also refuses
 * paths under /dev, /proc and /sys, where no package can belong.
 */
gboolean canopy_destination_check (const char *destination, gssize length, GError **error);

G_END_DECLS
