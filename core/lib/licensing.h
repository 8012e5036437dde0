/* Licensing: one activated device uses one licence. Going over the
 * licensed count is never blocked; it is reported as overage. Licences of
 * devices removed or gone too long are released. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CanopyLicensing CanopyLicensing;

typedef struct {
  char *device_id;
  gint64 activated_at; /* µs since the epoch */
  gint64 last_seen;
} CanopyActivation;

/**
 * canopy_licensing_new:
 * @seats: licensed devices
 * @release_after: µs without contact after which a device's licence is
 *   released; 0 never
 */
CanopyLicensing *canopy_licensing_new (guint seats, gint64 release_after);
void canopy_licensing_free (CanopyLicensing *licensing);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyLicensing, canopy_licensing_free)

void canopy_licensing_set_seats (CanopyLicensing *licensing, guint seats);
guint canopy_licensing_get_seats (const CanopyLicensing *licensing);
guint canopy_licensing_get_used (const CanopyLicensing *licensing);
/**
 * canopy_licensing_set_expiry:
 * @expires: when the licence ends, µs since the epoch; 0: never
 *
 * An expired licence blocks nothing: the health check and the report say
 * it is expired, so the admin renews it.
 */
void canopy_licensing_set_expiry (CanopyLicensing *licensing, gint64 expires);
gint64 canopy_licensing_get_expiry (const CanopyLicensing *licensing);
gboolean canopy_licensing_is_expired (const CanopyLicensing *licensing, gint64 now);

/* Activated devices beyond the licensed count. */
guint canopy_licensing_get_overage (const CanopyLicensing *licensing);

/**
 * canopy_licensing_activate:
 *
 * Activates @device_id (or records that it was seen, if it is active).
 *
 * Returns: %TRUE if this activation went over the licensed count.
 */
gboolean canopy_licensing_activate (CanopyLicensing *licensing, const char *device_id,
                                    gint64 now);

/** canopy_licensing_restore: Loads a stored activation at start-up. */
void canopy_licensing_restore (CanopyLicensing *licensing, const CanopyActivation *activation);

/** canopy_licensing_release: Returns: whether the device held a licence. */
gboolean canopy_licensing_release (CanopyLicensing *licensing, const char *device_id);

/**
 * canopy_licensing_release_stale:
 *
 * Returns: (transfer full): IDs of the devices released because they have
 *   not been seen for longer than the release time.
 */
GStrv canopy_licensing_release_stale (CanopyLicensing *licensing, gint64 now);

const CanopyActivation *canopy_licensing_lookup (const CanopyLicensing *licensing,
                                                 const char *device_id);

/** canopy_licensing_get_activations: Returns: (transfer container): by activation time. */
GPtrArray *canopy_licensing_get_activations (const CanopyLicensing *licensing);

/* One row of the activated-devices report. */
typedef struct {
  const char *device_id;
  const char *name;
  const char *office;
  const char *address;
  const char *agent_version;
} CanopyLicenceReportDevice;

/**
 * canopy_licensing_report_csv:
 * @describe: finds what the report shows of a device; may return %NULL
 *   for a device the server no longer knows
 *
 * Returns: (transfer full): the activated-devices report: device ID, name,
 *   office, address, agent version, activation time and last seen (UTC,
 *   ISO 8601) and the licence's state ("valid" or "expired"), one row per
 *   device holding a licence.
 */
char *canopy_licensing_report_csv (const CanopyLicensing *licensing,
                                   const CanopyLicenceReportDevice *(*describe) (
                                     const char *device_id, gpointer user_data),
                                   gpointer user_data);

G_END_DECLS
