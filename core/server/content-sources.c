/* The content-source policy: which origins a console token may register. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-content-sources"

#include "server/content-sources.h"
#include "lib/i18n.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK (canopy-content-sources-error-quark, canopy_content_sources_error)

/* Whether @path is @directory or inside it; both canonical. */
static gboolean
is_within (const char *path, const char *directory)
{
  gsize n = strlen (directory);

  if (n > 0 && directory[n - 1] == '/')
    n--;
  return strncmp (path, directory, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* An allowed directory that does not exist (yet) allows nothing. */
static gboolean
is_within_any (const char *path, const char *const *directories)
{
  for (guint i = 0; directories != NULL && directories[i] != NULL; i++)
    {
      g_autofree char *canonical = realpath (directories[i], NULL);

      if (canonical != NULL && is_within (path, canonical))
        return TRUE;
    }
  return FALSE;
}

static gboolean
is_within_any_by_name (const char *path, const char *const *directories)
{
  for (guint i = 0; directories != NULL && directories[i] != NULL; i++)
    if (is_within (path, directories[i]))
      return TRUE;
  return FALSE;
}

static char *
check_file (const char *const *directories, const char *const *private_directories,
            const char *location, GError **error)
{
  g_autofree char *canonical = realpath (location, NULL);

  /* A path that cannot be resolved is "not allowed" unless it is under a
   * source by name, so the answer does not tell a token holder which
   * files exist elsewhere on the server. */
  if (canonical == NULL && !is_within_any_by_name (location, directories))
    canonical = g_strdup (location);
  else if (canonical == NULL)
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_CONTENT_SOURCES_ERROR, CANOPY_CONTENT_SOURCES_ERROR_UNREADABLE,
                   _("Cannot read the package %s: %s; check the path"), location,
                   g_strerror (saved_errno));
      return NULL;
    }
  if (is_within_any (canonical, private_directories))
    {
      g_set_error (error, CANOPY_CONTENT_SOURCES_ERROR, CANOPY_CONTENT_SOURCES_ERROR_PRIVATE,
                   _("%s is in the server's own state directory, which is never a content "
                     "source; copy the package to a directory listed in <content-sources> in "
                     "canopyd.xml"),
                   location);
      return NULL;
    }
  if (!is_within_any (canonical, directories))
    {
      g_set_error (error, CANOPY_CONTENT_SOURCES_ERROR, CANOPY_CONTENT_SOURCES_ERROR_NOT_ALLOWED,
                   _("%s is not under an allowed content source; add its directory to "
                     "<content-sources> in canopyd.xml and restart canopyd, or register the "
                     "package from an https:// URL"),
                   g_str_equal (canonical, location) ? location : canonical);
      return NULL;
    }
  return g_steal_pointer (&canonical);
}

char *
canopy_content_sources_check (const char *const *directories,
                              const char *const *private_directories, const char *location,
                              GError **error)
{
  g_return_val_if_fail (location != NULL, NULL);
  if (g_str_has_prefix (location, "https://") || g_str_has_prefix (location, "http://"))
    return g_strdup (location);
  if (!g_path_is_absolute (location))
    {
      g_set_error (error, CANOPY_CONTENT_SOURCES_ERROR, CANOPY_CONTENT_SOURCES_ERROR_SCHEME,
                   _("\"%s\" is neither an http:// or https:// URL nor an absolute path; "
                     "register the package from its URL, or from its absolute path under a "
                     "directory listed in <content-sources> in canopyd.xml"),
                   location);
      return NULL;
    }
  return check_file (directories, private_directories, location, error);
}
