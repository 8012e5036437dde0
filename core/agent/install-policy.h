/* Where this device lets deployments write: the directories its
 * configuration names (<destinations>), never a device node, a directory
 * or a fifo, never through ".." or a symbolic link below them. The agent
 * runs as root and the server may be wrong or taken over, so the device
 * decides, and says why it refused. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * canopy_install_policy_check:
 *
 * What can be told from @destination alone, before anything is fetched:
 * that it is valid (canopy_destination_check()) and under one of
 * @directories. canopy_install_policy_open_parent() checks the rest when
 * the package is written.
 */
gboolean canopy_install_policy_check (const char *const *directories, const char *destination,
                                      GError **error);

/**
 * canopy_install_policy_open_parent:
 * @directories: the allowed directories (absolute; each may itself be, or
 *   lie under, a symbolic link the admin chose)
 * @destination: the package's path, as the server sent it
 * @name: (out) (transfer full): the file's name within the parent
 * @error: CANOPY_DESTINATION_ERROR_INVALID or _REFUSED with the reason,
 *   or a G_FILE_ERROR when a directory cannot be made
 *
 * Walks from the allowed directory down to @destination's parent one
 * component at a time with O_NOFOLLOW, creating what is missing, so no
 * symbolic link swapped in meanwhile can lead the write elsewhere: the
 * package is then written relative to the returned descriptor (openat(),
 * renameat()). The target, if it exists, must be a regular file.
 *
 * Returns: the parent directory's descriptor (close it), or -1.
 */
int canopy_install_policy_open_parent (const char *const *directories, const char *destination,
                                       char **name, GError **error);

G_END_DECLS
