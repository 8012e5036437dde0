/* The SDK's plugin kinds, by name. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-plugin"

#include <canopy/plugin.h>

const char *
canopy_plugin_kind_to_string (CanopyPluginKind kind)
{
  switch (kind)
    {
    case CANOPY_PLUGIN_KIND_TRANSPORT:
      return "transport";
    case CANOPY_PLUGIN_KIND_BACKEND:
      return "backend";
    default:
      return "unknown";
    }
}
