/* What the console API's files share: the console's state and the
 * handlers each file contributes to the route table. */
#pragma once

#include <libsoup/soup.h>
#include "server/console-api.h"
#include "server/console-auth.h"
#include "server/console-json.h"
#include "server/server.h"

G_BEGIN_DECLS

struct _CanopyConsole {
  CanopyServer *server;
  SoupServer *soup;
  CanopyConsoleAuth *auth;
  char *key_path;            /* the shared key file, for the health check */
  GCancellable *cancellable; /* cancelled when the console goes */
  guint probes;              /* health checks running in a worker thread */
  guint64 responses[6];      /* by status class: [2] counts 2xx, ... */
  gboolean close_connections; /* every response closes its connection */
};

typedef void (*CanopyConsoleHandler) (CanopyConsole *console, SoupServerMessage *msg);

/* Who made a change, for the audit log: the client's address. */
char *canopy_console_actor (SoupServerMessage *msg);

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
void canopy_console_get_devices (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_offices (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_licence_report (CanopyConsole *console, SoupServerMessage *msg);

/* console-content.c */
void canopy_console_get_content (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_content (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_delete_content (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_publish (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_get_deployments (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_post_deployments (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_delete_deployments (CanopyConsole *console, SoupServerMessage *msg);
void canopy_console_cancel_deployment (CanopyConsole *console, SoupServerMessage *msg);
/* Adds the members that name a content to an object: id, name, version, size. */
void canopy_console_add_content_identity (JsonBuilder *b, const CanopyContent *content);

/* console-content-store.c */
void canopy_console_get_content_store (CanopyConsole *console, SoupServerMessage *msg);

/* console-metrics.c */
void canopy_console_get_metrics (CanopyConsole *console, SoupServerMessage *msg);

G_END_DECLS
