/* The health check: each part of the server with a status and a message
 * that says what to do. The database round trip and the key file are read
 * by canopy_health_probe_run(), in a worker thread; the rest is in memory.
 * The console renders the result (console-health.c). */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-health"

#include "server/health.h"
#include "lib/i18n.h"
#include "lib/keys.h"
#include "lib/log.h"
#include "lib/transport.h"
#include "lib/wire.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <inttypes.h>

static const char *const status_names[] = { "ok", "warning", "error" };

const char *
canopy_health_status_to_string (CanopyHealthStatus status)
{
  g_return_val_if_fail (status <= CANOPY_HEALTH_ERROR, NULL);
  return status_names[status];
}

void
canopy_health_check_free (CanopyHealthCheck *check)
{
  if (check == NULL)
    return;
  g_free (check->name);
  g_free (check->message);
  g_free (check);
}

CanopyHealthStatus
canopy_health_worst (const GPtrArray *checks)
{
  CanopyHealthStatus worst = CANOPY_HEALTH_OK;

  for (guint i = 0; i < checks->len; i++)
    worst = MAX (worst, ((const CanopyHealthCheck *) checks->pdata[i])->status);
  return worst;
}

struct _CanopyHealthProbe {
  CanopyStore *store;
  char *key_path;
  /* results */
  char *backend;       /* what answered, or NULL */
  char *backend_error;
  CanopySharedKey *key; /* the key file as it is now, or NULL */
  char *key_error;
  char *store_directory; /* (nullable) the content store's */
  char *store_error;     /* why copies cannot be written there, or NULL */
};

CanopyHealthProbe *
canopy_health_probe_new (CanopyStore *store, const char *key_path,
                         const char *content_store_directory)
{
  CanopyHealthProbe *probe = g_new0 (CanopyHealthProbe, 1);

  probe->store = store;
  probe->key_path = g_strdup (key_path);
  probe->store_directory = g_strdup (content_store_directory);
  return probe;
}

void
canopy_health_probe_free (CanopyHealthProbe *probe)
{
  if (probe == NULL)
    return;
  g_free (probe->key_path);
  g_free (probe->backend);
  g_free (probe->backend_error);
  canopy_shared_key_free (probe->key);
  g_free (probe->key_error);
  g_free (probe->store_directory);
  g_free (probe->store_error);
  g_free (probe);
}

void
canopy_health_probe_run (CanopyHealthProbe *probe)
{
  g_autoptr (GError) error = NULL;

  probe->backend = canopy_store_check_health (probe->store, &error);
  if (probe->backend == NULL)
    probe->backend_error = g_strdup (error->message);
  g_clear_error (&error);
  probe->key = canopy_shared_key_load (probe->key_path, &error);
  if (probe->key == NULL)
    probe->key_error = g_strdup (error->message);
  g_clear_error (&error);
  if (probe->store_directory != NULL
      && !canopy_content_store_check_directory (probe->store_directory, &error))
    probe->store_error = g_strdup (error->message);
}

static void
add_check (GPtrArray *checks, const char *name, CanopyHealthStatus status, const char *message)
{
  CanopyHealthCheck *check = g_new0 (CanopyHealthCheck, 1);

  check->name = g_strdup (name);
  check->status = status;
  check->message = g_strdup (message);
  g_ptr_array_add (checks, check);
}

static void
check_backend (const CanopyHealthInputs *in, const CanopyHealthProbe *probe, GPtrArray *checks)
{
  g_autofree char *text = NULL;

  if (probe->backend == NULL)
    {
      text = g_strdup_printf (_("The storage backend does not answer: %s. Check that the "
                                "database is running and reachable; changes are kept in memory "
                                "until it is back"),
                              probe->backend_error);
      add_check (checks, "backend", CANOPY_HEALTH_ERROR, text);
    }
  else if (canopy_store_is_failing (in->store))
    {
      text = g_strdup_printf (_("The storage backend %s answers but the last write failed; "
                                "changes are kept in memory and written again every second. "
                                "Check the log for the reason (a full disk, a lock)"),
                              probe->backend);
      add_check (checks, "backend", CANOPY_HEALTH_WARNING, text);
    }
  else
    {
      text = g_strdup_printf (_("The storage backend %s answers and accepts writes"),
                              probe->backend);
      add_check (checks, "backend", CANOPY_HEALTH_OK, text);
    }
}

static void
check_transports (const CanopyHealthInputs *in, GPtrArray *checks)
{
  GPtrArray *transports = canopy_sessions_get_transports (in->sessions);

  if (transports->len == 0)
    add_check (checks, "transport", CANOPY_HEALTH_ERROR,
               _("No transport is configured, so no agent can connect; add a <transport> "
                 "element to the configuration and restart canopyd"));
  for (guint i = 0; i < transports->len; i++)
    {
      CanopyTransport *transport = g_ptr_array_index (transports, i);
      g_autoptr (GPtrArray) addresses = canopy_transport_get_listen_addresses (transport);
      g_autofree char *name = g_strdup_printf ("transport %s", canopy_transport_get_name (transport));
      g_autoptr (GString) where = g_string_new (NULL);
      g_autofree char *text = NULL;

      for (guint a = 0; a < addresses->len; a++)
        {
          GInetSocketAddress *address = g_ptr_array_index (addresses, a);
          g_autofree char *ip = g_inet_address_to_string (
            g_inet_socket_address_get_address (address));
          g_string_append_printf (where, "%s%s port %u", a > 0 ? ", " : "", ip,
                                  g_inet_socket_address_get_port (address));
        }
      if (addresses->len == 0)
        add_check (checks, name, CANOPY_HEALTH_ERROR,
                   _("The transport listens nowhere, so agents cannot reach it; add a <listen> "
                     "element to it and restart canopyd"));
      else
        {
          text = g_strdup_printf (_("Listening on %s; agents must be able to reach one of "
                                    "these through the firewall"),
                                  where->str);
          add_check (checks, name, CANOPY_HEALTH_OK, text);
        }
    }
}

/* Whether @key is the one canopyd started with (constant time). */
static gboolean
key_matches (const CanopyHealthInputs *in, const CanopySharedKey *key)
{
  guint8 digest[32];
  gboolean match;

  gnutls_hash_fast (GNUTLS_DIG_SHA256, key->bytes, sizeof key->bytes, digest);
  match = gnutls_memcmp (digest, in->key_digest, sizeof digest) == 0;
  canopy_keys_wipe (digest, sizeof digest);
  return match;
}

static void
check_key (const CanopyHealthInputs *in, const CanopyHealthProbe *probe, GPtrArray *checks)
{
  g_autofree char *text = NULL;

  if (probe->key == NULL)
    {
      text = g_strdup_printf (_("The shared key file cannot be read now (%s); canopyd keeps "
                                "using the key it started with. Restore the file or run "
                                "\"canopyd init\""),
                              probe->key_error);
      add_check (checks, "key", CANOPY_HEALTH_ERROR, text);
      return;
    }
  /* The request itself proved the running key; compare the file with it. */
  if (key_matches (in, probe->key))
    add_check (checks, "key", CANOPY_HEALTH_OK,
               _("The shared key file holds the key canopyd runs with; agents holding it are "
                 "accepted"));
  else
    add_check (checks, "key", CANOPY_HEALTH_ERROR,
               _("Key mismatch: the shared key file was replaced (\"canopyd init "
                 "--regenerate-key\") after canopyd started. Restart canopyd to use the new key, "
                 "then give the new key to the agents and the console"));
}

typedef struct {
  guint devices;
  guint outside;
} VersionCount;

static void
count_versions (gpointer key, gpointer value, gpointer user_data)
{
  VersionCount *count = user_data;
  const char *version;

  g_variant_get_child (value, 3, "&s", &version);
  count->devices++;
  if (canopy_wire_compare_versions (version, CANOPY_SESSIONS_OLDEST_AGENT) < 0
      || canopy_wire_compare_versions (version, PACKAGE_VERSION) > 0)
    count->outside++;
}

static void
check_versions (const CanopyHealthInputs *in, GPtrArray *checks)
{
  VersionCount count = { 0, 0 };
  g_autofree char *server = g_strdup_printf (_("canopyd %s; it supports agents %s to %s"),
                                             PACKAGE_VERSION, CANOPY_SESSIONS_OLDEST_AGENT,
                                             PACKAGE_VERSION);
  g_autofree char *text = NULL;

  add_check (checks, "server-version", CANOPY_HEALTH_OK, server);
  g_hash_table_foreach (canopy_store_get_devices (in->store),
                        count_versions, &count);
  if (count.outside > 0)
    {
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "%u of %u devices runs an agent outside the "
                                           "supported range %s to %s and is refused; "
                                           "deploy a supported agent to it",
                                           "%u of %u devices run an agent outside the "
                                           "supported range %s to %s and are refused; "
                                           "deploy a supported agent to them",
                                           count.outside),
                              count.outside, count.devices, CANOPY_SESSIONS_OLDEST_AGENT,
                              PACKAGE_VERSION);
      add_check (checks, "agent-versions", CANOPY_HEALTH_WARNING, text);
    }
  else
    {
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "The %u known device runs a supported agent",
                                           "All %u known devices run a supported agent",
                                           count.devices), count.devices);
      add_check (checks, "agent-versions", CANOPY_HEALTH_OK, text);
    }
}

static void
check_licences (const CanopyHealthInputs *in, GPtrArray *checks)
{
  CanopyLicensing *licensing = in->licensing;
  guint used = canopy_licensing_get_used (licensing);
  guint seats = canopy_licensing_get_seats (licensing);
  guint overage = canopy_licensing_get_overage (licensing);
  g_autofree char *text = NULL;
  gint64 expires = canopy_licensing_get_expiry (licensing);

  /* Expiry blocks nothing either, but an admin must see it: it is the
   * first thing said, never "valid". */
  if (canopy_licensing_is_expired (licensing, g_get_real_time ()))
    {
      g_autoptr (GDateTime) when = g_date_time_new_from_unix_utc (expires / G_USEC_PER_SEC);
      g_autofree char *day = when != NULL ? g_date_time_format (when, "%Y-%m-%d") : NULL;

      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "The licence expired on %s (%u of %u licence in "
                                           "use). Nothing is blocked, but renew it: ask "
                                           "your vendor for a new licence file, name it in "
                                           "<licensing file> and restart canopyd",
                                           "The licence expired on %s (%u of %u licences in "
                                           "use). Nothing is blocked, but renew it: ask "
                                           "your vendor for a new licence file, name it in "
                                           "<licensing file> and restart canopyd",
                                           seats),
                              day != NULL ? day : "?", used, seats);
      add_check (checks, "licences", CANOPY_HEALTH_WARNING, text);
    }
  else if (overage > 0)
    {
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "Licence overage: %u device is active and %u are "
                                           "licensed, %u over. Nothing is blocked; add "
                                           "licences",
                                           "Licence overage: %u devices are active and %u "
                                           "are licensed, %u over. Nothing is blocked; add "
                                           "licences",
                                           used),
                              used, seats, overage);
      add_check (checks, "licences", CANOPY_HEALTH_WARNING, text);
    }
  else
    {
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "%u of %u licence in use",
                                           "%u of %u licences in use",
                                           seats), used, seats);
      add_check (checks, "licences", CANOPY_HEALTH_OK, text);
    }
}

/* An unclean stop stays a warning for a day: long enough for the admin to
 * see it, short enough not to hide the next one behind it. */
#define UNCLEAN_STOP_WARNING_US (24 * G_TIME_SPAN_HOUR)

/* The other servers of a cluster, each named with its ID and last
 * heartbeat; one whose heartbeat lapsed is flagged (its agents move to
 * the others, and its offices' leases go to them once they lapse). */
static void
check_cluster (const CanopyHealthInputs *in, GPtrArray *checks)
{
  g_autoptr (GPtrArray) members = NULL;
  g_autoptr (GString) others = g_string_new (NULL);
  g_autofree char *problem = NULL;
  g_autofree char *text = NULL;
  guint lapsed = 0, n = 0;

  if (in->cluster == NULL)
    return;
  members = canopy_cluster_get_members (in->cluster);
  problem = canopy_cluster_get_problem (in->cluster);
  for (guint i = 0; i < members->len; i++)
    {
      const CanopyClusterMember *m = g_ptr_array_index (members, i);
      gboolean gone = m->silent_us > CANOPY_CLUSTER_LAPSED_S * G_USEC_PER_SEC;

      if (g_str_equal (m->server_id, canopy_cluster_get_server_id (in->cluster)))
        continue;
      n++;
      lapsed += gone;
      if (others->len > 0)
        g_string_append (others, "; ");
      g_string_append_printf (others,
                              gone ? _("LAPSED \"%s\" (ID %s), last heartbeat %" PRId64 " s ago")
                                   : _("alive \"%s\" (ID %s), last heartbeat %" PRId64 " s ago"),
                              m->name, m->server_id, (gint64) (m->silent_us / G_USEC_PER_SEC));
    }
  if (problem != NULL)
    {
      text = g_strdup_printf (_("This server cannot do its part in the cluster: %s. It keeps "
                                "serving its devices; check the database"), problem);
      add_check (checks, "cluster", CANOPY_HEALTH_ERROR, text);
    }
  else if (lapsed > 0)
    {
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "%u of the %u other server stopped sending heartbeats: "
                                           "%s. Its devices move to the others; start it again, "
                                           "or remove it for good",
                                           "%u of the %u other servers stopped sending heartbeats: "
                                           "%s. Their devices move to the others; start them "
                                           "again, or remove them for good", n),
                              lapsed, n, others->str);
      add_check (checks, "cluster", CANOPY_HEALTH_WARNING, text);
    }
  else
    {
      text = n > 0 ? g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                   "This server (ID %s) shares its database with "
                                                   "%u other server: %s",
                                                   "This server (ID %s) shares its database with "
                                                   "%u other servers: %s", n),
                                      canopy_cluster_get_server_id (in->cluster), n, others->str)
                   : g_strdup_printf (_("This server (ID %s) is in a cluster and no other server "
                                        "has joined it yet"),
                                      canopy_cluster_get_server_id (in->cluster));
      add_check (checks, "cluster", CANOPY_HEALTH_OK, text);
    }
}

static void
check_last_stop (const CanopyHealthInputs *in, GPtrArray *checks)
{
  const CanopyRunMarker *marker = in->run_marker;
  gint64 unclean = canopy_run_marker_get_unclean_start (marker);
  gint64 start = canopy_run_marker_get_start (marker);
  g_autofree char *started = canopy_log_format_time (start);
  g_autofree char *text = NULL;

  if (unclean != 0 && g_get_real_time () - start < UNCLEAN_STOP_WARNING_US)
    {
      text = g_strdup_printf (_("canopyd was restarted at %s after it stopped without shutting "
                                "down (killed, or the machine went down). Stored state was "
                                "kept and deployments went on; look in the system log "
                                "(journalctl -u canopyd) for why it stopped"),
                              started);
      add_check (checks, "last-stop", CANOPY_HEALTH_WARNING, text);
      return;
    }
  text = g_strdup_printf (_("canopyd has run since %s"), started);
  add_check (checks, "last-stop", CANOPY_HEALTH_OK, text);
}

static void
check_groups (const CanopyHealthInputs *in, GPtrArray *checks)
{
  const CanopySettings *settings = in->settings;
  guint n = settings->assigned_groups != NULL ? g_strv_length (settings->assigned_groups) : 0;
  g_autofree char *text = NULL;

  if (n == 0)
    {
      add_check (checks, "assigned-groups", CANOPY_HEALTH_WARNING,
                 _("No group is assigned, so no device is enrolled; assign the groups that "
                   "should receive applications"));
      return;
    }
  text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                       "%u group is assigned; its devices are enrolled",
                                       "%u groups are assigned; their devices are enrolled",
                                       n), n);
  add_check (checks, "assigned-groups", CANOPY_HEALTH_OK, text);
}

/* Devices' trouble is shown for an hour: long enough to be seen while it
 * matters, short enough that a fixed problem clears by itself. */
#define RECENT_US (G_GINT64_CONSTANT (3600) * G_USEC_PER_SEC)

static char *
describe_lost (guint n, const char *ids)
{
  return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                       "%u device stopped answering in the last hour and "
                                       "is offline: %s. Check the network between its "
                                       "office and the server (a cut WAN link, a firewall) "
                                       "and that the device is powered on; it reconnects by "
                                       "itself and goes on with its deployments",
                                       "%u devices stopped answering in the last hour and "
                                       "are offline: %s. Check the network between their "
                                       "office and the server (a cut WAN link, a firewall) "
                                       "and that the devices are powered on; they reconnect "
                                       "by themselves and go on with their deployments",
                                       n),
                          n, ids);
}

static char *
describe_reported (guint n, const char *ids)
{
  return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                       "%u device was reported by its office peers in the "
                                       "last hour for chunks that failed verification or "
                                       "that it announced and withheld: %s. Its peers no "
                                       "longer fetch that content from it. Check that "
                                       "device's disk and cache; a device that was tampered "
                                       "with must be removed, and the shared key "
                                       "regenerated",
                                       "%u devices were reported by their office peers in "
                                       "the last hour for chunks that failed verification "
                                       "or that they announced and withheld: %s. Their "
                                       "peers no longer fetch that content from them. Check "
                                       "those devices' disks and caches; a device that was "
                                       "tampered with must be removed, and the shared key "
                                       "regenerated",
                                       n),
                          n, ids);
}

/* A check on devices in trouble: ok with none, else a warning naming them. */
static void
check_devices (GPtrArray *checks, const char *name, GStrv ids, const char *ok,
               char *(*describe) (guint n, const char *ids))
{
  g_autofree char *joined = g_strjoinv (", ", ids);
  g_autofree char *text = NULL;

  if (ids[0] == NULL)
    {
      add_check (checks, name, CANOPY_HEALTH_OK, ok);
      return;
    }
  text = describe (g_strv_length (ids), joined);
  add_check (checks, name, CANOPY_HEALTH_WARNING, text);
}

/* Devices whose addresses are in no office of the topology: what they get,
 * by the no_office_clients setting, and how to bring them into an office. */
static void
check_no_office_clients (const CanopyHealthInputs *in, GPtrArray *checks)
{
  g_auto (GStrv) refused = NULL;
  g_auto (GStrv) enrolled = canopy_sessions_get_no_office_clients (in->sessions,
                                                                  &refused);
  g_autoptr (GString) text = g_string_new (NULL);

  if (enrolled[0] == NULL && refused[0] == NULL)
    {
      add_check (checks, "no-office-clients", CANOPY_HEALTH_OK,
                 _("No device is a no-office client: every device's address is in an office "
                   "of the topology"));
      return;
    }
  if (enrolled[0] != NULL)
    {
      g_autofree char *ids = g_strjoinv (", ", enrolled);

      g_string_append_printf (text,
                              g_dngettext (GETTEXT_PACKAGE,
                                           "%u device is a no-office client: %s. Its "
                                           "address is in no office of the topology, so it "
                                           "gets no peer-to-peer download and fetches the "
                                           "software from the origin (CDN or file storage) "
                                           "across its own link. Add its subnet to the "
                                           "topology spreadsheet to let it share, or set "
                                           "no_office_clients to \"refuse\" to keep it from "
                                           "fetching.",
                                           "%u devices are no-office clients: %s. Their "
                                           "addresses are in no office of the topology, so "
                                           "they get no peer-to-peer download and fetch the "
                                           "software from the origin (CDN or file storage), "
                                           "each across its own link. Add their subnets to "
                                           "the topology spreadsheet to let them share, or "
                                           "set no_office_clients to \"refuse\" to keep "
                                           "them from fetching.",
                                           g_strv_length (enrolled)),
                              g_strv_length (enrolled), ids);
    }
  if (refused[0] != NULL)
    {
      g_autofree char *ids = g_strjoinv (", ", refused);

      if (text->len > 0)
        g_string_append_c (text, ' ');
      g_string_append_printf (text,
                              g_dngettext (GETTEXT_PACKAGE,
                                           "%u device was refused as a no-office client and "
                                           "gets nothing: %s. Its address is in no office "
                                           "of the topology and no_office_clients is "
                                           "\"refuse\"; add its subnet to the topology "
                                           "spreadsheet, or set no_office_clients to "
                                           "\"origin\" so it fetches from the origin.",
                                           "%u devices were refused as no-office clients "
                                           "and get nothing: %s. Their addresses are in no "
                                           "office of the topology and no_office_clients is "
                                           "\"refuse\"; add their subnets to the topology "
                                           "spreadsheet, or set no_office_clients to "
                                           "\"origin\" so they fetch from the origin.",
                                           g_strv_length (refused)),
                              g_strv_length (refused), ids);
    }
  add_check (checks, "no-office-clients", CANOPY_HEALTH_WARNING, text->str);
}

static void
check_lost_devices (const CanopyHealthInputs *in, GPtrArray *checks)
{
  g_auto (GStrv) lost = canopy_distributor_list_lost (in->distributor, RECENT_US);

  check_devices (checks, "lost-devices", lost,
                 _("No device stopped answering in the last hour"), describe_lost);
}

static void
check_reported_devices (const CanopyHealthInputs *in, GPtrArray *checks)
{
  g_auto (GStrv) reported
      = canopy_distributor_list_reported (in->distributor, RECENT_US);

  check_devices (checks, "peer-integrity", reported,
                 _("No device was reported by its office peers for bad or withheld chunks in "
                   "the last hour"),
                 describe_reported);
}

static char *
describe_failures (guint n, const char *failures)
{
  return g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                       "%u device said in the last hour that it cannot "
                                       "complete a deployment, and has made no progress "
                                       "since: %s. Act on the reason given (free disk "
                                       "space, fix the destination's permissions, or deploy "
                                       "under a directory the device's <destinations> "
                                       "allow); the device tries again by itself",
                                       "%u devices said in the last hour that they cannot "
                                       "complete a deployment, and have made no progress "
                                       "since: %s. Act on the reason given (free disk "
                                       "space, fix the destination's permissions, or deploy "
                                       "under a directory the devices' <destinations> "
                                       "allow); the devices try again by themselves",
                                       n),
                          n, failures);
}

static void
check_failures (const CanopyHealthInputs *in, GPtrArray *checks)
{
  g_auto (GStrv) failures
      = canopy_distributor_list_failures (in->distributor, RECENT_US);

  check_devices (checks, "device-failures", failures,
                 _("No device reported in the last hour that it cannot complete a deployment"),
                 describe_failures);
}

/* "NAME VERSION: why; ..." for each registered content the store lacks. */
static char *
list_unstored (CanopyCatalog *catalog, guint *n_unstored, guint *n_contents)
{
  g_autoptr (GPtrArray) list = canopy_catalog_list (catalog);
  g_autoptr (GString) out = g_string_new (NULL);

  *n_unstored = 0;
  *n_contents = list->len;
  for (guint i = 0; i < list->len; i++)
    {
      const CanopyContent *content = g_ptr_array_index (list, i);
      const char *reason = canopy_catalog_why_not_stored (catalog, content->id);

      if (reason == NULL)
        continue;
      g_string_append_printf (out, "%s%s %s: %s", out->len > 0 ? "; " : "", content->name,
                              content->version, reason);
      (*n_unstored)++;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
check_content_store (const CanopyHealthInputs *in, const CanopyHealthProbe *probe,
                     GPtrArray *checks)
{
  const CanopyContentStore *store = in->content_store;
  guint unstored, contents;
  g_autofree char *which = NULL;
  g_autofree char *used = NULL;
  g_autofree char *text = NULL;

  if (store == NULL)
    {
      add_check (checks, "content-store", CANOPY_HEALTH_OK,
                 _("No content store is configured: the server keeps metadata only, and leads "
                   "fetch content from its origin"));
      return;
    }
  which = list_unstored (in->catalog, &unstored, &contents);
  if (probe->store_error != NULL)
    {
      text = unstored == 0 ? g_strdup (probe->store_error)
                           : g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                                           "%s. It lacks %u of the %u "
                                                           "registered content: %s",
                                                           "%s. It lacks %u of the %u "
                                                           "registered contents: %s",
                                                           contents),
                                              probe->store_error, unstored, contents, which);
      add_check (checks, "content-store", CANOPY_HEALTH_ERROR, text);
    }
  else if (unstored > 0)
    {
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "The content store lacks %u of the %u registered "
                                           "content, so its leads fetch it from their "
                                           "origin: %s",
                                           "The content store lacks %u of the %u registered "
                                           "contents, so their leads fetch them from their "
                                           "origin: %s",
                                           contents),
                              unstored, contents, which);
      add_check (checks, "content-store", CANOPY_HEALTH_WARNING, text);
    }
  else if (contents == 0)
    {
      text = g_strdup_printf (_("The content store in %s is ready; it keeps a copy of each "
                                "content registered from now on"),
                              canopy_content_store_get_directory (store));
      add_check (checks, "content-store", CANOPY_HEALTH_OK, text);
    }
  else
    {
      used = g_format_size_full (canopy_content_store_get_used (store), G_FORMAT_SIZE_IEC_UNITS);
      text = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                           "The content store in %s holds the %u registered "
                                           "content (%s) and seeds it to office leads",
                                           "The content store in %s holds all %u registered "
                                           "contents (%s) and seeds them to office leads",
                                           contents),
                              canopy_content_store_get_directory (store), contents, used);
      add_check (checks, "content-store", CANOPY_HEALTH_OK, text);
    }
}

GPtrArray *
canopy_health_compute (const CanopyHealthInputs *in, const CanopyHealthProbe *probe)
{
  GPtrArray *checks = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_health_check_free);

  check_backend (in, probe, checks);
  check_transports (in, checks);
  check_key (in, probe, checks);
  check_versions (in, checks);
  check_licences (in, checks);
  check_groups (in, checks);
  check_no_office_clients (in, checks);
  check_lost_devices (in, checks);
  check_reported_devices (in, checks);
  check_failures (in, checks);
  check_content_store (in, probe, checks);
  check_last_stop (in, checks);
  check_cluster (in, checks);
  return checks;
}
