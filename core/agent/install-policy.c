/* The agent's destination policy, applied where the package is written. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-install-policy"

#include "agent/install-policy.h"
#include "lib/destination.h"
#include "lib/i18n.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REFUSE(error, ...)                                                                \
  g_set_error (error, CANOPY_DESTINATION_ERROR, CANOPY_DESTINATION_ERROR_REFUSED, __VA_ARGS__)

/* The part of @destination below @directory, or NULL when it is not
 * below it; compared as text, since no component is "." or "..". */
static const char *
below (const char *destination, const char *directory)
{
  gsize n = strlen (directory);

  while (n > 1 && directory[n - 1] == '/')
    n--;
  if (n == 1 && directory[0] == '/')
    return destination + 1;
  if (strncmp (destination, directory, n) != 0 || destination[n] != '/')
    return NULL;
  return destination + n + 1;
}

static const char *
find_allowed (const char *const *directories, const char *destination, const char **directory)
{
  for (guint i = 0; directories != NULL && directories[i] != NULL; i++)
    {
      const char *rest = below (destination, directories[i]);

      if (rest != NULL && *rest != '\0')
        {
          *directory = directories[i];
          return rest;
        }
    }
  return NULL;
}

/* The allowed directory itself is the admin's choice, symbolic links and
 * all; it is made if missing (the packaged default may not exist yet). */
static int
open_allowed (const char *directory, GError **error)
{
  int fd = open (directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd < 0 && errno == ENOENT && g_mkdir_with_parents (directory, 0755) == 0)
    fd = open (directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      int saved_errno = errno;
      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                   _("Cannot open the allowed destination directory %s: %s"), directory,
                   g_strerror (saved_errno));
    }
  return fd;
}

/* One step down: never through a symbolic link, making what is missing. */
static int
open_child (int parent, const char *component, const char *destination, GError **error)
{
  int fd = openat (parent, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int saved_errno;

  if (fd < 0 && errno == ENOENT)
    {
      if (mkdirat (parent, component, 0755) != 0 && errno != EEXIST)
        {
          saved_errno = errno;
          g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                       _("Cannot create the directory \"%s\" for %s: %s"), component,
                       destination, g_strerror (saved_errno));
          return -1;
        }
      fd = openat (parent, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
  if (fd >= 0)
    return fd;
  saved_errno = errno;
  if (saved_errno == ELOOP || saved_errno == ENOTDIR)
    REFUSE (error,
            _("This device refuses to write \"%s\": its parent \"%s\" is a symbolic link or "
              "not a directory, and packages are never written through one; deploy to the "
              "real directory"),
            destination, component);
  else
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved_errno),
                 _("Cannot open the directory \"%s\" for %s: %s"), component, destination,
                 g_strerror (saved_errno));
  return -1;
}

/* A package only ever replaces a package: renaming over a device node
 * would remove it, and over a directory fail late. */
static gboolean
check_target (int parent, const char *name, const char *destination, GError **error)
{
  struct stat st;

  if (fstatat (parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISREG (st.st_mode))
    return TRUE;
  if (S_ISDIR (st.st_mode))
    REFUSE (error, _("This device refuses to write \"%s\": it is a directory, not a regular "
                     "file; add the package's file name to the destination"),
            destination);
  else if (S_ISLNK (st.st_mode))
    REFUSE (error, _("This device refuses to write \"%s\": it is a symbolic link, not a "
                     "regular file, and packages are never written through one; deploy to the "
                     "real file"),
            destination);
  else if (S_ISCHR (st.st_mode) || S_ISBLK (st.st_mode))
    REFUSE (error, _("This device refuses to write \"%s\": it is a device node, not a regular "
                     "file; choose another destination"),
            destination);
  else if (S_ISFIFO (st.st_mode))
    REFUSE (error, _("This device refuses to write \"%s\": it is a fifo, not a regular file; "
                     "choose another destination"),
            destination);
  else
    REFUSE (error, _("This device refuses to write \"%s\": it exists and is not a regular "
                     "file; choose another destination"),
            destination);
  return FALSE;
}

/* Returns the part of @destination below its allowed @directory. */
static const char *
check_allowed (const char *const *directories, const char *destination, const char **directory,
               GError **error)
{
  const char *rest;
  g_autofree char *allowed = NULL;

  if (!canopy_destination_check (destination, -1, error))
    return NULL;
  rest = find_allowed (directories, destination, directory);
  if (rest != NULL)
    return rest;
  if (directories == NULL || directories[0] == NULL)
    {
      REFUSE (error, _("This device refuses to write \"%s\": its <destinations> in "
                       "canopy-agent.xml allows no directory; add one to deploy to this "
                       "device"),
              destination);
      return NULL;
    }
  allowed = g_strjoinv (", ", (char **) directories);
  REFUSE (error, _("This device refuses to write \"%s\": it is not under a directory this "
                   "device allows (%s); add its directory to <destinations> in "
                   "canopy-agent.xml on the devices, or deploy under one of them"),
          destination, allowed);
  return NULL;
}

gboolean
canopy_install_policy_check (const char *const *directories, const char *destination,
                             GError **error)
{
  const char *directory = NULL;

  return check_allowed (directories, destination, &directory, error) != NULL;
}

int
canopy_install_policy_open_parent (const char *const *directories, const char *destination,
                                   char **name, GError **error)
{
  const char *directory = NULL;
  const char *rest;
  g_auto (GStrv) components = NULL;
  guint n;
  int fd;

  g_return_val_if_fail (name != NULL, -1);
  rest = check_allowed (directories, destination, &directory, error);
  if (rest == NULL)
    return -1;
  components = g_strsplit (rest, "/", -1);
  n = g_strv_length (components);
  fd = open_allowed (directory, error);
  for (guint i = 0; fd >= 0 && i + 1 < n; i++)
    {
      int child;

      if (components[i][0] == '\0')
        continue; /* "a//b" */
      child = open_child (fd, components[i], destination, error);
      close (fd);
      fd = child;
    }
  if (fd < 0)
    return -1;
  if (!check_target (fd, components[n - 1], destination, error))
    {
      close (fd);
      return -1;
    }
  *name = g_strdup (components[n - 1]);
  return fd;
}
