/* A well-formed backend plugin for the loader tests; it does nothing. */
#include <canopy/canopy.h>

static const struct {
  int unused;
} ops;

static const char schema[] =
  "<element name='backend' xmlns='http://relaxng.org/ns/structure/1.0'>"
  "  <attribute name='plugin'/>"
  "  <element name='database'><text/></element>"
  "</element>";

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "test-backend", "1.0",
                      "backend for the loader tests", schema, &ops);
