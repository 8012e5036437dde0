/* A plugin that needs a symbol no library provides: dlopen must fail. */
#include <canopy/canopy.h>

extern int canopy_test_symbol_that_does_not_exist (void);

static int (*const ops) (void) = canopy_test_symbol_that_does_not_exist;

CANOPY_PLUGIN_DEFINE (CANOPY_PLUGIN_KIND_BACKEND, "test-unresolved", "1.0", NULL, NULL, &ops);
