/* A loadable module that is not a canopy plugin: no descriptor. */
#include <gmodule.h>

G_MODULE_EXPORT int canopy_test_something_else (void);

G_MODULE_EXPORT int
canopy_test_something_else (void)
{
  return 42;
}
