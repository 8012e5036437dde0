/* /metrics in the Prometheus text exposition format. Each family comes from
 * one collector in the table below. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-console-metrics"

#include "server/console/console-private.h"
#include "server/console/console-listener.h"
#include "lib/i18n.h"
#include "lib/planner.h"

typedef struct {
  GString *out;
} Metrics;

/* Label values may hold any UTF-8; the format escapes \, " and newline. */
static void
append_escaped (GString *out, const char *value)
{
  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (out, '\\');
      if (*p == '\n')
        g_string_append (out, "\\n");
      else
        g_string_append_c (out, *p);
    }
}

static void
family (Metrics *m, const char *name, const char *type, const char *help)
{
  g_string_append_printf (m->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* @labels: name, value pairs ended by NULL. */
static void
sample (Metrics *m, const char *name, const char *const *labels, guint64 value)
{
  g_string_append (m->out, name);
  if (labels != NULL && labels[0] != NULL)
    {
      g_string_append_c (m->out, '{');
      for (const char *const *l = labels; l[0] != NULL; l += 2)
        {
          g_string_append_printf (m->out, "%s%s=\"", l == labels ? "" : ",", l[0]);
          append_escaped (m->out, l[1]);
          g_string_append_c (m->out, '"');
        }
      g_string_append_c (m->out, '}');
    }
  g_string_append_printf (m->out, " %" G_GUINT64_FORMAT "\n", value);
}

static void
gauge (Metrics *m, const char *name, const char *help, guint64 value)
{
  family (m, name, "gauge", help);
  sample (m, name, NULL, value);
}

static void
collect_build (CanopyConsole *console, Metrics *m)
{
  const char *labels[] = { "version", PACKAGE_VERSION, "server_id",
                           console->context.server_id, NULL };

  family (m, "canopy_build_info", "gauge", "The running canopyd: version and server ID.");
  sample (m, "canopy_build_info", labels, 1);
}

static void
count_by_office (const char *device_id, const char *agent_version, const char *office,
                 gpointer user_data)
{
  GHashTable *by_office = user_data;
  const char *key = office != NULL ? office : "";

  g_hash_table_replace (by_office, (gpointer) key,
                        GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (by_office, key))
                                          + 1));
}

static void
collect_sessions (CanopyConsole *console, Metrics *m)
{
  CanopySessions *sessions = console->context.sessions;
  g_autoptr (GHashTable) by_office = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer office, count;

  gauge (m, "canopy_sessions_enrolled", "Agent sessions past enrolment.",
         canopy_sessions_count_enrolled (sessions));
  canopy_sessions_foreach_enrolled (sessions, count_by_office, by_office);
  family (m, "canopy_office_devices_online", "gauge", "Enrolled agents connected, by office.");
  g_hash_table_iter_init (&iter, by_office);
  while (g_hash_table_iter_next (&iter, &office, &count))
    {
      const char *labels[] = { "office", office, NULL };
      sample (m, "canopy_office_devices_online", labels, GPOINTER_TO_UINT (count));
    }
}

static void
collect_devices (CanopyConsole *console, Metrics *m)
{
  gauge (m, "canopy_devices_enrolled", "Devices the server has enrolled, online or not.",
         canopy_store_count_devices (console->context.store));
  gauge (m, "canopy_offices", "Offices of the topology in force, the central office included.",
         canopy_topology_get_offices (canopy_console_topology (console))->len);
}

static void
collect_licences (CanopyConsole *console, Metrics *m)
{
  CanopyLicensing *licensing = console->context.licensing;

  gauge (m, "canopy_licence_seats", "Licensed devices.", canopy_licensing_get_seats (licensing));
  gauge (m, "canopy_licences_used", "Devices holding a licence.",
         canopy_licensing_get_used (licensing));
  gauge (m, "canopy_licence_overage", "Devices holding a licence beyond the licensed count.",
         canopy_licensing_get_overage (licensing));
}

static void
collect_console (CanopyConsole *console, Metrics *m)
{
  family (m, "canopy_console_responses_total", "counter",
          "Console API responses by status class.");
  for (guint c = 1; c < G_N_ELEMENTS (console->responses); c++)
    {
      g_autofree char *code = g_strdup_printf ("%uxx", c);
      const char *labels[] = { "code", code, NULL };
      sample (m, "canopy_console_responses_total", labels, console->responses[c]);
    }
  family (m, "canopy_console_auth_failures_total", "counter",
          "Console API requests with a key that does not match the server's.");
  sample (m, "canopy_console_auth_failures_total", NULL,
          canopy_console_auth_get_failures (console->auth));
  family (m, "canopy_console_connections", "gauge",
          "Console API connections open, handshaking or served.");
  sample (m, "canopy_console_connections", NULL, canopy_console_listener_count (console->listener));
  family (m, "canopy_console_connections_refused_total", "counter",
          "Console API connections closed as accepted, past a connection cap.");
  sample (m, "canopy_console_connections_refused_total", NULL,
          canopy_console_listener_get_refused (console->listener));
}

/* An office's totals over every deployment. */
typedef struct {
  guint64 bytes[CANOPY_SOURCE_N_KINDS]; /* by CanopySourceKind */
  guint64 wan_bytes;
} OfficeBytes;

/* The label values of CanopySourceKind, as the deployments API names them. */
static const char *const source_labels[] = { "office_peer", "parent_peer", "server", "origin",
                                             "earlier_versions" };
G_STATIC_ASSERT (G_N_ELEMENTS (source_labels) == G_N_ELEMENTS (((OfficeBytes *) NULL)->bytes));

static void
add_progress (GHashTable *by_office, GPtrArray *offices)
{
  for (guint i = 0; offices != NULL && i < offices->len; i++)
    {
      const CanopyOfficeProgress *p = g_ptr_array_index (offices, i);
      OfficeBytes *sum = g_hash_table_lookup (by_office, p->office);

      if (sum == NULL)
        {
          sum = g_new0 (OfficeBytes, 1);
          g_hash_table_insert (by_office, g_strdup (p->office), sum);
        }
      for (guint k = 0; k < G_N_ELEMENTS (source_labels); k++)
        sum->bytes[k] += p->bytes[k];
      sum->wan_bytes += p->wan_bytes;
    }
}

static void
sample_office_bytes (Metrics *m, GHashTable *by_office)
{
  GHashTableIter iter;
  gpointer office, value;

  family (m, "canopy_office_received_bytes", "gauge",
          "Verified bytes the devices of an office received, by source kind, summed over the "
          "deployments that exist.");
  g_hash_table_iter_init (&iter, by_office);
  while (g_hash_table_iter_next (&iter, &office, &value))
    for (guint k = 0; k < G_N_ELEMENTS (source_labels); k++)
      {
        const char *labels[] = { "office", office, "source", source_labels[k], NULL };
        sample (m, "canopy_office_received_bytes", labels, ((OfficeBytes *) value)->bytes[k]);
      }
  family (m, "canopy_office_wan_bytes", "gauge",
          "Bytes that reached an office across its WAN link, summed over the deployments that "
          "exist.");
  g_hash_table_iter_init (&iter, by_office);
  while (g_hash_table_iter_next (&iter, &office, &value))
    {
      const char *labels[] = { "office", office, NULL };
      sample (m, "canopy_office_wan_bytes", labels, ((OfficeBytes *) value)->wan_bytes);
    }
}

/* Each background lead's latest report, per deployment and office. */
static void
sample_background (Metrics *m, GPtrArray *list, GPtrArray *progress)
{
  static const struct {
    const char *name;
    const char *help;
  } families[] = {
    { "canopy_background_rate_bits_per_second",
      "The rate a background lead's LEDBAT controller allows it on its WAN link now." },
    { "canopy_background_queueing_delay_microseconds",
      "The queueing delay a background lead measures on its WAN requests, over the base "
      "delay." },
    { "canopy_background_base_delay_microseconds",
      "The base delay (least delay of the last ten minutes) a background lead measures." },
  };

  for (guint f = 0; f < G_N_ELEMENTS (families); f++)
    {
      family (m, families[f].name, "gauge", families[f].help);
      for (guint i = 0; i < list->len; i++)
        {
          const CanopyDeploymentInfo *info = g_ptr_array_index (list, i);
          GPtrArray *offices = g_ptr_array_index (progress, i);

          for (guint o = 0; offices != NULL && o < offices->len; o++)
            {
              const CanopyOfficeProgress *p = g_ptr_array_index (offices, o);
              const char *labels[] = { "deployment", info->id, "office", p->office, NULL };
              gint64 values[] = { (gint64) p->pacing_rate, p->queueing_delay_us,
                                  p->base_delay_us };

              if (p->pacing_rate > 0 && values[f] >= 0)
                sample (m, families[f].name, labels, (guint64) values[f]);
            }
        }
    }
}

static void
unref_progress (gpointer offices)
{
  if (offices != NULL)
    g_ptr_array_unref (offices);
}

/* Gauges, not counters: removing a deployment takes its bytes away. */
static void
collect_deployments (CanopyConsole *console, Metrics *m)
{
  CanopyDistributor *distributor = console->context.distributor;
  g_autoptr (GPtrArray) list = canopy_distributor_list (distributor);
  g_autoptr (GHashTable) by_office = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                            g_free);
  g_autoptr (GPtrArray) progress = g_ptr_array_new_with_free_func (unref_progress);
  guint64 devices = 0, done = 0;

  for (guint i = 0; i < list->len; i++)
    {
      const CanopyDeploymentInfo *info = g_ptr_array_index (list, i);
      GPtrArray *offices = canopy_distributor_get_progress (distributor, info->id);

      devices += info->devices;
      done += info->done;
      add_progress (by_office, offices);
      g_ptr_array_add (progress, offices);
    }
  gauge (m, "canopy_deployments", "Deployments that exist.", list->len);
  gauge (m, "canopy_deployment_devices", "Target devices known, summed over the deployments.",
         devices);
  gauge (m, "canopy_deployment_devices_done",
         "Target devices that finished, summed over the deployments.", done);
  sample_office_bytes (m, by_office);
  sample_background (m, list, progress);
}

/* Only with a store: a scraper tells "none configured" by their absence. */
static void
collect_content_store (CanopyConsole *console, Metrics *m)
{
  const CanopyContentStore *store = console->context.content_store;

  if (store == NULL)
    return;
  gauge (m, "canopy_content_store_used_bytes", "Bytes the content store's offered copies take.",
         canopy_content_store_get_used (store));
  gauge (m, "canopy_content_store_quota_bytes",
         "Bytes the content store's copies may take; 0 for no limit but the disk.",
         canopy_content_store_get_quota (store));
  family (m, "canopy_content_store_uploaded_bytes_total", "counter",
          "Chunk bytes the content store sent to agents since canopyd started.");
  sample (m, "canopy_content_store_uploaded_bytes_total", NULL,
          canopy_content_store_get_uploaded (store));
  gauge (m, "canopy_content_store_contents",
         "Contents whose copy the content store offers to agents.",
         canopy_content_store_count_offered (store));
}

/* Where the target devices stand, over every deployment: a scraper alerts
 * on failed or refused ones, and sees windows hold devices waiting. */
static void
collect_device_states (CanopyConsole *console, Metrics *m)
{
  CanopyDistributor *distributor = console->context.distributor;
  g_autoptr (GPtrArray) list = canopy_distributor_list (distributor);
  guint64 counts[CANOPY_N_DEVICE_STATES] = { 0 };

  for (guint i = 0; i < list->len; i++)
    {
      const CanopyDeploymentInfo *info = g_ptr_array_index (list, i);
      g_autoptr (GPtrArray) devices = canopy_distributor_get_devices (distributor, info->id,
                                                                      NULL, -1);

      for (guint j = 0; devices != NULL && j < devices->len; j++)
        counts[((CanopyDeviceStatus *) g_ptr_array_index (devices, j))->state]++;
    }
  family (m, "canopy_deployment_devices_by_state", "gauge",
          "Target devices in each state (waiting, fetching, done, failed, refused, "
          "cancelled), summed over the deployments.");
  for (guint s = 0; s < CANOPY_N_DEVICE_STATES; s++)
    {
      const char *labels[] = { "state", canopy_device_state_to_string (s), NULL };
      sample (m, "canopy_deployment_devices_by_state", labels, counts[s]);
    }
}

/* Each office's WAN rate now, its bandwidth schedule applied. */
static void
collect_office_rates (CanopyConsole *console, Metrics *m)
{
  GPtrArray *offices = canopy_topology_get_offices (canopy_console_topology (console));
  gint64 now = g_get_real_time ();

  family (m, "canopy_office_wan_rate_bits", "gauge",
          "The WAN rate an office's lead may use now, in bit/s, by its bandwidth schedule; "
          "0 for no limit.");
  for (guint i = 0; i < offices->len; i++)
    {
      const CanopyOffice *office = g_ptr_array_index (offices, i);
      const char *labels[] = { "office", office->name, NULL };

      sample (m, "canopy_office_wan_rate_bits", labels, canopy_office_rate_at (office, now));
    }
}

static void (*const collectors[]) (CanopyConsole *, Metrics *) = {
  collect_build, collect_sessions, collect_devices, collect_licences, collect_deployments,
  collect_device_states, collect_office_rates, collect_content_store, collect_console,
};

void
canopy_console_get_metrics (CanopyConsole *console, SoupServerMessage *msg)
{
  g_autoptr (GString) out = g_string_new (NULL);
  Metrics m = { out };

  for (gsize i = 0; i < G_N_ELEMENTS (collectors); i++)
    collectors[i] (console, &m);
  canopy_console_respond_text (msg, SOUP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                               out->str);
}
