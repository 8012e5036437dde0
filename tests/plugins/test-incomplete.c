/* A plugin with no operations table. */
#include <canopy/canopy.h>

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "test-incomplete", "1.0", NULL, NULL, NULL);
