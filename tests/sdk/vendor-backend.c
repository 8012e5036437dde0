/* A vendor's backend plugin, built outside the tree against the installed
 * SDK headers and canopy-plugin.pc alone. */
#include <canopy/canopy.h>

static const struct {
  int unused;
} ops;

static const char schema[] =
  "<element name='backend' xmlns='http://relaxng.org/ns/structure/1.0'>"
  "  <attribute name='plugin'/>"
  "  <element name='endpoint'><text/></element>"
  "</element>";

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "vendor", "2.3",
                      "a vendor's storage backend", schema, &ops);
