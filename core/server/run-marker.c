/* The marker holds the wall-clock start of the run that wrote it, so the
 * next run can say which run ended badly. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-run-marker"

#include "server/run-marker.h"
#include "lib/atomic-file.h"
#include "lib/i18n.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>

#define MARKER_FILE "canopyd.running"

struct _CanopyRunMarker {
  char *path;
  gint64 start;
  gint64 unclean_start;
};

static gint64
read_start (const char *path)
{
  g_autofree char *text = NULL;
  gint64 start;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 1;
  start = g_ascii_strtoll (text, NULL, 10);
  return start > 0 ? start : 1;
}

CanopyRunMarker *
canopy_run_marker_begin (const char *state_directory, GError **error)
{
  g_autofree char *path = g_build_filename (state_directory, MARKER_FILE, NULL);
  gint64 start = g_get_real_time ();
  g_autofree char *text = g_strdup_printf ("%" G_GINT64_FORMAT "\n", start);
  CanopyRunMarker *marker;

  marker = g_new0 (CanopyRunMarker, 1);
  marker->start = start;
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    marker->unclean_start = read_start (path);
  if (!canopy_atomic_file_write (path, (const guint8 *) text, strlen (text), 0600, error))
    {
      g_free (marker);
      return NULL;
    }
  marker->path = g_steal_pointer (&path);
  return marker;
}

gint64
canopy_run_marker_get_unclean_start (const CanopyRunMarker *marker)
{
  return marker->unclean_start;
}

gint64
canopy_run_marker_get_start (const CanopyRunMarker *marker)
{
  return marker->start;
}

void
canopy_run_marker_end (CanopyRunMarker *marker)
{
  if (marker == NULL)
    return;
  if (g_unlink (marker->path) != 0 && errno != ENOENT)
    {
      int saved = errno;
      g_warning (_("Cannot remove %s: %s. The next start of canopyd will report this stop as "
                   "unclean; check the state directory's permissions"),
                 marker->path, g_strerror (saved));
    }
  g_free (marker->path);
  g_free (marker);
}
