/* Deployment destinations: the checks that need no device's policy. */
#include "build-config.h"

#include "lib/destination.h"
#include "lib/i18n.h"

#include <string.h>

G_DEFINE_QUARK (canopy-destination-error-quark, canopy_destination_error)

static gboolean
refuse (GError **error, const char *destination, const char *why)
{
  g_set_error (error, CANOPY_DESTINATION_ERROR, CANOPY_DESTINATION_ERROR_INVALID,
               _("The destination \"%s\" %s; write an absolute path to a file such as "
                 "\"/opt/app/app.msi\""),
               destination, why);
  return FALSE;
}

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

gboolean
canopy_destination_check (const char *destination, gssize length, GError **error)
{
  g_autofree char *shown = NULL;

  g_return_val_if_fail (destination != NULL, FALSE);
  if (length >= 0 && strlen (destination) != (gsize) length)
    {
      shown = g_strescape (destination, NULL);
      return refuse (error, shown, _("holds a NUL character, which would cut it short"));
    }
  if (!g_utf8_validate (destination, -1, NULL))
    return refuse (error, "?", _("is not UTF-8 text"));
  for (const char *p = destination; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      {
        shown = g_strescape (destination, NULL);
        return refuse (error, shown, _("holds a control character"));
      }
  if (destination[0] == '\0')
    return refuse (error, destination, _("is empty"));
  if (!g_path_is_absolute (destination))
    return refuse (error, destination, _("is not an absolute path"));
  if (g_str_has_suffix (destination, "/"))
    return refuse (error, destination, _("names a directory, not a file"));
  if (has_dot_component (destination))
    return refuse (error, destination, _("has a \".\" or \"..\" component"));
  return TRUE;
}
