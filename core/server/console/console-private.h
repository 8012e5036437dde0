/* What the console API's files share: the console's state and the
 * handlers each file contributes to the route table. */
#pragma once

#include <libsoup/soup.h>
#include "server/console/console-api.h"
#include "server/console/console-auth.h"
#include "server/console/console-json.h"
#include "server/distributor.h"

G_BEGIN_DECLS

struct _CanopyConsole {
  CanopyConsoleContext context; /* what it serves */
  gboolean registered;       /* the web console's resource is registered */
  SoupServer *soup;
  struct _CanopyConsoleListener *listener; /* accepts and polices the connections */
  CanopyConsoleAuth *auth;
  char *key_path;            /* the shared key file, for the health check */
  guint8 key_digest[32];     /* SHA-256 of the running shared key, ditto */
  gint64 admins_read_at;     /* monotonic µs of the last read of the admins */
  gboolean reading_admins;   /* a read is due or running in a worker thread */
  guint read_timer;          /* the read is due when this fires */
  GPtrArray *waiting;        /* paused SoupServerMessages waiting for that read */
  GCancellable *cancellable; /* cancelled when the console goes */
  guint probes;              /* health checks running in a worker thread */
  guint64 responses[6];      /* by status class: [2] counts 2xx, ... */
  gboolean close_connections; /* every response closes its connection */
};

typedef void (*CanopyConsoleHandler) (CanopyConsole *console, SoupServerMessage *msg);

/* What the owner may have replaced since the last request, read afresh
 * (transfer none). */
const CanopyServerConfig *canopy_console_config (CanopyConsole *console);
const CanopySettings *canopy_console_settings (CanopyConsole *console);
const CanopyTopology *canopy_console_topology (CanopyConsole *console);

/* The admin a request's token belongs to. */
typedef struct {
  char *name;
  CanopyAdminRole role;
  char *token_id;
} CanopyConsoleCaller;

/* Returns: (transfer none) (nullable): who sent @msg, once authenticated. */
const CanopyConsoleCaller *canopy_console_get_caller (SoupServerMessage *msg);

/* Who made a change, for the audit log: "admin NAME (ROLE) from ADDRESS". */
char *canopy_console_actor (SoupServerMessage *msg);

/* @msg holds its response and is paused: unpauses it once every change
 * queued so far is committed to the database. */
void canopy_console_respond_when_saved (CanopyConsole *console, SoupServerMessage *msg);

/* Puts @admins (transfer full) in force, as just read. */
void canopy_console_set_admins (CanopyConsole *console, CanopyAdmins *admins);

/* Request bodies larger than these are refused with 413. */
#define CANOPY_CONSOLE_JSON_LIMIT (64 * 1024)
#define CANOPY_CONSOLE_CSV_LIMIT (8 * 1024 * 1024)

/* console-settings.c */
void canopy_console_get_server_id (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_settings (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_put_settings (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_topology (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_put_topology (CanopyConsole *console, SoupServerMessage *msg);

/* console-health.c */
void canopy_console_get_health (CanopyConsole *console, SoupServerMessage *msg);

/* console-views.c */
/* The query parameters of @msg, or NULL with a 400 sent when one is not
 * in @allowed. */
GHashTable *canopy_console_read_query (SoupServerMessage *msg, const char *const *allowed);
/* Reads "offset" (from 0) and "limit" (1 to @max_limit) of @query into
 * @offset and @limit, left alone when absent; FALSE with a 400 sent when
 * one is not such a number. */
gboolean canopy_console_read_page (SoupServerMessage *msg, GHashTable *query, guint max_limit,
                                   guint *offset, guint *limit);
#define CANOPY_CONSOLE_PAGE_MAX 1000
void canopy_console_get_devices (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_offices (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_licence_report (CanopyConsole *console, SoupServerMessage *msg);

/* console-content.c */
void canopy_console_get_content (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_content (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_delete_content (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_content_expiry (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_publish (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_deployments (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_deployments (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_delete_deployments (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_cancel_deployment (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_retire_deployment (CanopyConsole *console, SoupServerMessage *msg);
/* Adds the members that name a content to an object: id, name, version, size. */
void canopy_console_add_content_identity (JsonBuilder *b, const CanopyContent *content);

/* console-timing.c */
/* Reads "start", "deadline" and "window" of a new deployment; FALSE with
 * a 400 sent when one is wrong. */
gboolean canopy_console_read_timing (SoupServerMessage *msg, JsonObject *object,
                                     CanopyDeploymentTiming *timing);
/* Adds them to an object: RFC 3339 times or null, "HH:MM-HH:MM" or null. */
void canopy_console_add_timing (JsonBuilder *b, const CanopyDeploymentTiming *timing);
gboolean canopy_console_parse_window (const char *text, guint16 *start, guint16 *end);
/* "expires" of a content: an RFC 3339 time, or "" or null for never. */
gboolean canopy_console_read_expiry (SoupServerMessage *msg, JsonObject *object,
                                     gint64 *expires_at);
void canopy_console_add_expiry (JsonBuilder *b, gint64 expires_at);

/* console-device-status.c */
void canopy_console_get_deployment_devices (CanopyConsole *console, SoupServerMessage *msg);

/* console-content-store.c */
void canopy_console_get_content_store (CanopyConsole *console, SoupServerMessage *msg);

/* console-admins.c */
void canopy_console_get_whoami (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_admins (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_admins (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_admin_tokens (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_delete_admin (CanopyConsole *console, SoupServerMessage *msg);

/**
 * canopy_console_admins_job_start:
 *
 * Reads the admins from the database in a worker thread; the callback
 * gets them from canopy_console_admins_job_finish().
 */
void canopy_console_admins_job_start (CanopyConsole *console, GAsyncReadyCallback callback,
                                      gpointer user_data);
CanopyAdmins *canopy_console_admins_job_finish (CanopyConsole *console, GAsyncResult *result,
                                                GError **error);

/* console-audit.c */
void canopy_console_get_audit (CanopyConsole *console, SoupServerMessage *msg);

/* console-metrics.c */
void canopy_console_get_metrics (CanopyConsole *console, SoupServerMessage *msg);

G_END_DECLS
