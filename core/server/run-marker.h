/* Whether canopyd stopped cleanly last time. A marker file in the state
 * directory exists exactly while canopyd runs: finding one at start means
 * the last run was killed or the machine went down, which the admin should
 * hear about even though nothing stored is lost. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CanopyRunMarker CanopyRunMarker;

/**
 * canopy_run_marker_begin:
 * @state_directory: where the marker lives
 * @error: a #G_FILE_ERROR naming the marker file
 *
 * Notes whether the last run stopped cleanly, then marks this one as
 * running.
 */
CanopyRunMarker *canopy_run_marker_begin (const char *state_directory, GError **error);

/**
 * canopy_run_marker_get_unclean_start:
 *
 * Returns: when the last run, which did not stop cleanly, started (wall
 *   clock µs; 1 if that is not known), or 0 if it stopped cleanly.
 */
gint64 canopy_run_marker_get_unclean_start (const CanopyRunMarker *marker);

/* When this run started (wall clock µs). */
gint64 canopy_run_marker_get_start (const CanopyRunMarker *marker);

/* A clean stop: removes the marker and frees @marker. */
void canopy_run_marker_end (CanopyRunMarker *marker);

G_END_DECLS
