/* /metrics in the Prometheus text exposition format. Each family comes from
 * one collector in the table below; per-office byte counters by source
 * kind join it as a collector once distribution records them. */
#include "build-config.h"

#include "server/console-private.h"
#include "lib/i18n.h"

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
                           canopy_server_get_id (console->server), NULL };

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
  CanopySessions *sessions = canopy_server_get_sessions (console->server);
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
         canopy_store_count_devices (canopy_server_get_store (console->server)));
  gauge (m, "canopy_offices", "Offices of the topology in force, the central office included.",
         canopy_topology_get_offices (canopy_server_get_topology (console->server))->len);
}

static void
collect_licences (CanopyConsole *console, Metrics *m)
{
  CanopyLicensing *licensing = canopy_server_get_licensing (console->server);

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
}

static void (*const collectors[]) (CanopyConsole *, Metrics *) = {
  collect_build, collect_sessions, collect_devices, collect_licences, collect_console,
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
