/* Deployment destinations: the checks that need no device's policy. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-destination"

#include "lib/destination.h"
#include "lib/i18n.h"

#include <string.h>

G_DEFINE_QUARK (canopy-destination-error-quark, canopy_destination_error)

#define INVALID(error, ...)                                                          \
  (g_set_error (error, CANOPY_DESTINATION_ERROR, CANOPY_DESTINATION_ERROR_INVALID, __VA_ARGS__), \
   FALSE)

/* "." and ".." are refused rather than resolved: the server would store
 * one path and the device write another, and the admin would read the
 * first. */
static gboolean
has_dot_component (const char *destination)
{
  g_auto (GStrv) parts = g_strsplit (destination, "/", -1);

  for (guint i = 0; parts[i] != NULL; i++)
    if (g_str_equal (parts[i], ".") || g_str_equal (parts[i], ".."))
      return TRUE;
  return FALSE;
}

/* The kernel's own file systems: writing a package there would replace a
 * device node or change the running system, never install software. */
static gboolean
is_under_system_tree (const char *destination)
{
  static const char *const trees[] = { "/dev/", "/proc/", "/sys/", NULL };

  for (guint i = 0; trees[i] != NULL; i++)
    if (g_str_has_prefix (destination, trees[i]))
      return TRUE;
  return FALSE;
}

/* Each refusal is one whole sentence, for translators. */
gboolean
canopy_destination_check (const char *destination, gssize length, GError **error)
{
  g_autofree char *shown = NULL;

  g_return_val_if_fail (destination != NULL, FALSE);
  shown = g_strescape (destination, NULL);
  if (length >= 0 && strlen (destination) != (gsize) length)
    return INVALID (error,
                    _("The destination \"%s\" holds a NUL character, which would cut it "
                      "short; write the path without it"),
                    shown);
  if (!g_utf8_validate (destination, -1, NULL))
    return INVALID (error, _("The destination \"%s\" is not UTF-8 text; write the path in "
                             "UTF-8"),
                    shown);
  for (const char *p = destination; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      return INVALID (error,
                      _("The destination \"%s\" holds a control character; write the path "
                        "without it"),
                      shown);
  if (destination[0] == '\0')
    return INVALID (error, _("The destination is empty; write an absolute path to a file such "
                             "as \"/opt/app/app.msi\""));
  if (!g_path_is_absolute (destination))
    return INVALID (error,
                    _("The destination \"%s\" is not an absolute path; write an absolute path "
                      "to a file such as \"/opt/app/app.msi\""),
                    destination);
  if (g_str_has_suffix (destination, "/"))
    return INVALID (error,
                    _("The destination \"%s\" names a directory, not a file; add the "
                      "package's file name"),
                    destination);
  if (has_dot_component (destination))
    return INVALID (error,
                    _("The destination \"%s\" has a \".\" or \"..\" component; write the "
                      "path without it"),
                    destination);
  if (is_under_system_tree (destination))
    return INVALID (error,
                    _("The destination \"%s\" is under /dev, /proc or /sys, where no package "
                      "belongs; choose a directory such as /opt"),
                    destination);
  return TRUE;
}
