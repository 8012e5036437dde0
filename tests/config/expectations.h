/* Example files state what their error must say in a leading comment:
 * <!-- expect: FRAGMENT|FRAGMENT|... --> ; every fragment must appear. */
#pragma once

#include <glib.h>

GStrv canopy_test_read_expectations (const char *path);
