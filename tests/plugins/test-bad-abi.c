/* A plugin built for a future ABI: the loader must refuse it. */
#include <canopy/canopy.h>

static const struct {
  int unused;
} ops;

G_MODULE_EXPORT const CanopyPluginDescriptor canopy_plugin_descriptor = {
  .abi_version = CANOPY_PLUGIN_ABI_VERSION + 41,
  .kind = CANOPY_PLUGIN_KIND_BACKEND,
  .name = "test-bad-abi",
  .version = "1.0",
  .ops = &ops,
};
