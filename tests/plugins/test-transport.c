/* A well-formed transport plugin for the loader tests; it does nothing. */
#include <canopy/canopy.h>

static const struct {
  int unused;
} ops;

static const char schema[] =
  "<element name='transport' xmlns='http://relaxng.org/ns/structure/1.0'"
  "         datatypeLibrary='http://www.w3.org/2001/XMLSchema-datatypes'>"
  "  <attribute name='plugin'/>"
  "  <zeroOrMore><element name='listen'>"
  "    <attribute name='port'><data type='unsignedShort'/></attribute>"
  "  </element></zeroOrMore>"
  "</element>";

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_TRANSPORT, "test-transport", "1.0",
                      "transport for the loader tests", schema, &ops);
