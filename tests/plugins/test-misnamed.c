/* A plugin whose descriptor names another plugin than its file does. */
#include <canopy/canopy.h>

static const struct {
  int unused;
} ops;

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "someone-else", "1.0", NULL, NULL, &ops);
