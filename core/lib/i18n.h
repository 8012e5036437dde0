/* Translation macros for canopy's own code (not installed). */
#pragma once

#include <glib/gi18n-lib.h>
