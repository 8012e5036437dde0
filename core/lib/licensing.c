/* Licensing: the activation table and the activated-devices report. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-licensing"

#include "lib/licensing.h"
#include "lib/csv.h"
#include "lib/log.h"

struct _CanopyLicensing {
  guint seats;
  gint64 release_after;
  gint64 expires; /* µs since the epoch; 0: never */
  GHashTable *activations; /* device ID → CanopyActivation */
};

static void
activation_free (CanopyActivation *activation)
{
  g_free (activation->device_id);
  g_free (activation);
}

CanopyLicensing *
canopy_licensing_new (guint seats, gint64 release_after)
{
  CanopyLicensing *licensing = g_new0 (CanopyLicensing, 1);

  licensing->seats = seats;
  licensing->release_after = release_after;
  licensing->activations = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                                  (GDestroyNotify) activation_free);
  return licensing;
}

void
canopy_licensing_free (CanopyLicensing *licensing)
{
  if (licensing == NULL)
    return;
  g_hash_table_unref (licensing->activations);
  g_free (licensing);
}

void
canopy_licensing_set_seats (CanopyLicensing *licensing, guint seats)
{
  licensing->seats = seats;
}

guint
canopy_licensing_get_seats (const CanopyLicensing *licensing)
{
  return licensing->seats;
}

guint
canopy_licensing_get_used (const CanopyLicensing *licensing)
{
  return g_hash_table_size (licensing->activations);
}

guint
canopy_licensing_get_overage (const CanopyLicensing *licensing)
{
  guint used = canopy_licensing_get_used (licensing);

  return used > licensing->seats ? used - licensing->seats : 0;
}

void
canopy_licensing_restore (CanopyLicensing *licensing, const CanopyActivation *activation)
{
  CanopyActivation *copy = g_new0 (CanopyActivation, 1);

  copy->device_id = g_strdup (activation->device_id);
  copy->activated_at = activation->activated_at;
  copy->last_seen = activation->last_seen;
  g_hash_table_replace (licensing->activations, copy->device_id, copy);
}

gboolean
canopy_licensing_activate (CanopyLicensing *licensing, const char *device_id, gint64 now)
{
  CanopyActivation *activation = g_hash_table_lookup (licensing->activations, device_id);

  if (activation != NULL)
    {
      activation->last_seen = MAX (activation->last_seen, now);
      return FALSE;
    }
  activation = g_new0 (CanopyActivation, 1);
  activation->device_id = g_strdup (device_id);
  activation->activated_at = now;
  activation->last_seen = now;
  g_hash_table_insert (licensing->activations, activation->device_id, activation);
  return canopy_licensing_get_used (licensing) > licensing->seats;
}

gboolean
canopy_licensing_release (CanopyLicensing *licensing, const char *device_id)
{
  return g_hash_table_remove (licensing->activations, device_id);
}

GStrv
canopy_licensing_release_stale (CanopyLicensing *licensing, gint64 now)
{
  g_autoptr (GStrvBuilder) released = g_strv_builder_new ();
  GHashTableIter iter;
  CanopyActivation *activation;

  if (licensing->release_after <= 0)
    return g_strv_builder_end (released);
  g_hash_table_iter_init (&iter, licensing->activations);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &activation))
    if (now - activation->last_seen > licensing->release_after)
      {
        g_strv_builder_add (released, activation->device_id);
        g_hash_table_iter_remove (&iter);
      }
  return g_strv_builder_end (released);
}

const CanopyActivation *
canopy_licensing_lookup (const CanopyLicensing *licensing, const char *device_id)
{
  return g_hash_table_lookup (licensing->activations, device_id);
}

static int
compare_activations (gconstpointer a, gconstpointer b)
{
  const CanopyActivation *aa = *(const CanopyActivation *const *) a;
  const CanopyActivation *ab = *(const CanopyActivation *const *) b;

  if (aa->activated_at != ab->activated_at)
    return aa->activated_at < ab->activated_at ? -1 : 1;
  return g_strcmp0 (aa->device_id, ab->device_id);
}

GPtrArray *
canopy_licensing_get_activations (const CanopyLicensing *licensing)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, licensing->activations);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (list, value);
  g_ptr_array_sort (list, compare_activations);
  return list;
}

void
canopy_licensing_set_expiry (CanopyLicensing *licensing, gint64 expires)
{
  licensing->expires = expires;
}

gint64
canopy_licensing_get_expiry (const CanopyLicensing *licensing)
{
  return licensing->expires;
}

gboolean
canopy_licensing_is_expired (const CanopyLicensing *licensing, gint64 now)
{
  return licensing->expires != 0 && now > licensing->expires;
}

static char *
format_time (gint64 us)
{
  char *text = canopy_log_format_time (us);

  return text != NULL ? text : g_strdup ("");
}

char *
canopy_licensing_report_csv (const CanopyLicensing *licensing,
                             const CanopyLicenceReportDevice *(*describe) (const char *, gpointer),
                             gpointer user_data)
{
  static const char *const header[] = { "device_id", "name", "office", "address",
                                        "agent_version", "activated", "last_seen", "licence" };
  /* Said on every row, as a report is often filtered or pasted. */
  const char *status = canopy_licensing_is_expired (licensing, g_get_real_time ()) ? "expired"
                                                                                   : "valid";
  g_autoptr (GPtrArray) activations = canopy_licensing_get_activations (licensing);
  GString *out = g_string_new (NULL);

  canopy_csv_append_row (out, header, G_N_ELEMENTS (header));
  for (guint i = 0; i < activations->len; i++)
    {
      const CanopyActivation *a = g_ptr_array_index (activations, i);
      const CanopyLicenceReportDevice *d = describe (a->device_id, user_data);
      g_autofree char *activated = format_time (a->activated_at);
      g_autofree char *seen = format_time (a->last_seen);
      const char *row[] = { a->device_id, d ? d->name : NULL, d ? d->office : NULL,
                            d ? d->address : NULL, d ? d->agent_version : NULL,
                            activated, seen, status };

      canopy_csv_append_row (out, row, G_N_ELEMENTS (row));
    }
  return g_string_free (out, FALSE);
}
