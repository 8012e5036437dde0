/* The record of installed packages: a key file, one group per deployment
 * with the destination and the package's SHA-256, rewritten whole and
 * atomically on each change (a device holds few packages). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent"

#include "agent/installed.h"
#include "agent/install-policy.h"
#include "lib/atomic-file.h"
#include "lib/i18n.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _CanopyInstalled {
  char *path;
  GKeyFile *keys;
};

CanopyInstalled *
canopy_installed_load (const char *path)
{
  CanopyInstalled *installed = g_new0 (CanopyInstalled, 1);
  g_autoptr (GError) error = NULL;

  installed->path = g_strdup (path);
  installed->keys = g_key_file_new ();
  if (!g_key_file_load_from_file (installed->keys, path, G_KEY_FILE_NONE, &error)
      && !g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
    g_warning (_("Cannot read the record of installed packages %s (%s); packages installed "
                 "before are not removed when their deployment is retired"),
               path, error->message);
  return installed;
}

void
canopy_installed_free (CanopyInstalled *installed)
{
  if (installed == NULL)
    return;
  g_free (installed->path);
  g_key_file_free (installed->keys);
  g_free (installed);
}

static gboolean
save (CanopyInstalled *installed, GError **error)
{
  gsize length;
  g_autofree char *data = g_key_file_to_data (installed->keys, &length, NULL);

  return canopy_atomic_file_write (installed->path, (const guint8 *) data, length, 0600, error);
}

gboolean
canopy_installed_add (CanopyInstalled *installed, const char *deployment_id,
                      const char *destination, const guint8 *sha256, GError **error)
{
  GString *digest = g_string_new (NULL);

  for (guint i = 0; i < CANOPY_INSTALLED_HASH_SIZE; i++)
    g_string_append_printf (digest, "%02x", sha256[i]);
  g_key_file_set_string (installed->keys, deployment_id, "destination", destination);
  g_key_file_set_string (installed->keys, deployment_id, "sha256", digest->str);
  g_string_free (digest, TRUE);
  return save (installed, error);
}

gboolean
canopy_installed_forget (CanopyInstalled *installed, const char *deployment_id, GError **error)
{
  if (!g_key_file_remove_group (installed->keys, deployment_id, NULL))
    return TRUE;
  return save (installed, error);
}

gboolean
canopy_installed_has (CanopyInstalled *installed, const char *deployment_id,
                      const char *destination, const guint8 *sha256)
{
  g_autofree char *recorded = g_key_file_get_string (installed->keys, deployment_id,
                                                      "destination", NULL);
  g_autofree char *digest = g_key_file_get_string (installed->keys, deployment_id, "sha256",
                                                    NULL);
  GString *wanted = g_string_new (NULL);
  gboolean same;

  for (guint i = 0; i < CANOPY_INSTALLED_HASH_SIZE; i++)
    g_string_append_printf (wanted, "%02x", sha256[i]);
  same = g_strcmp0 (recorded, destination) == 0 && g_strcmp0 (digest, wanted->str) == 0;
  g_string_free (wanted, TRUE);
  return same;
}

/* SHA-256 of what @fd holds. */
static gboolean
hash_fd (int fd, guint8 *digest)
{
  g_autoptr (GChecksum) hash = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree guint8 *buffer = g_malloc (64 * 1024);
  gsize length = CANOPY_INSTALLED_HASH_SIZE;
  ssize_t n;

  while ((n = read (fd, buffer, 64 * 1024)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      g_checksum_update (hash, buffer, (gsize) n);
  g_checksum_get_digest (hash, digest, &length);
  return n == 0;
}

CanopyWireUninstalled
canopy_installed_remove_file (const char *const *directories, const char *destination,
                              const guint8 *sha256, char **message)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = NULL;
  guint8 digest[CANOPY_INSTALLED_HASH_SIZE];
  struct stat st;
  int dir, fd;
  gboolean hashed;

  dir = canopy_install_policy_open_parent (directories, destination, &name, &error);
  if (dir < 0)
    {
      *message = g_strdup_printf (_("could not reach %s to remove it: %s"), destination,
                                  error->message);
      return CANOPY_WIRE_UNINSTALLED_FAILED;
    }
  fd = openat (dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 && errno == ENOENT)
    {
      close (dir);
      *message = g_strdup_printf (_("%s was already gone; nothing to remove"), destination);
      return CANOPY_WIRE_UNINSTALLED_ABSENT;
    }
  if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    {
      *message = g_strdup_printf (_("%s is no longer the regular file canopy installed; it "
                                    "was left alone"), destination);
      if (fd >= 0)
        close (fd);
      close (dir);
      return CANOPY_WIRE_UNINSTALLED_CHANGED;
    }
  hashed = hash_fd (fd, digest);
  close (fd);
  if (!hashed || memcmp (digest, sha256, sizeof digest) != 0)
    {
      close (dir);
      *message = g_strdup_printf (_("%s was changed since canopy installed it (its SHA-256 "
                                    "differs); it was left alone: remove it by hand if it "
                                    "must go"), destination);
      return CANOPY_WIRE_UNINSTALLED_CHANGED;
    }
  if (unlinkat (dir, name, 0) != 0)
    {
      int saved = errno;

      close (dir);
      *message = g_strdup_printf (_("could not remove %s: %s"), destination,
                                  g_strerror (saved));
      return CANOPY_WIRE_UNINSTALLED_FAILED;
    }
  close (dir);
  *message = g_strdup_printf (_("removed %s, unchanged since canopy installed it"),
                              destination);
  return CANOPY_WIRE_UNINSTALLED_REMOVED;
}
