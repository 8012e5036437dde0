/* Where content may be registered from: http(s) URLs, and files only under
 * the directories canopyd.xml names in <content-sources>. Whoever holds a
 * console token can register content, and every key holder can then fetch
 * it; without this a token would read any file the server can (its own
 * keys, /etc/shadow) and hand it to the fleet. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CANOPY_CONTENT_SOURCES_ERROR (canopy_content_sources_error_quark ())
GQuark canopy_content_sources_error_quark (void);

typedef enum {
  CANOPY_CONTENT_SOURCES_ERROR_SCHEME,      /* neither http(s) nor an absolute path */
  CANOPY_CONTENT_SOURCES_ERROR_UNREADABLE,  /* the file cannot be resolved */
  CANOPY_CONTENT_SOURCES_ERROR_NOT_ALLOWED, /* not under an allowed directory */
  CANOPY_CONTENT_SOURCES_ERROR_PRIVATE,     /* in the server's own state */
} CanopyContentSourcesError;

/**
 * canopy_content_sources_check:
 * @directories: (nullable): the allowed directories; none allows no file
 * @private_directories: (nullable): directories never allowed, even under
 *   an allowed one (the state directory, the content store)
 * @location: what the admin asked to register
 *
 * Resolves a file path to its canonical form (every symbolic link and
 * "..") before comparing, so a link in an allowed directory that points
 * out of it is refused.
 *
 * Returns: (transfer full): the location to register (a file's canonical
 *   path, a URL unchanged), or %NULL with @error saying why and what to do.
 */
char *canopy_content_sources_check (const char *const *directories,
                                    const char *const *private_directories,
                                    const char *location, GError **error);

G_END_DECLS
