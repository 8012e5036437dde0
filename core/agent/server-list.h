/* The servers an agent may enrol with: the configured ones, each name
 * expanded to every address it resolves to, tried in turn. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * CanopyServerAddress:
 * @host: a name or an IP address
 * @port: its port
 */
typedef struct {
  char *host;
  guint16 port;
} CanopyServerAddress;

CanopyServerAddress *canopy_server_address_new (const char *host, guint16 port);
void canopy_server_address_free (CanopyServerAddress *address);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyServerAddress, canopy_server_address_free)

typedef struct _CanopyServerList CanopyServerList;

/* @configured: the <server> elements in order, as #CanopyServerAddress. */
CanopyServerList *canopy_server_list_new (const GPtrArray *configured);
void canopy_server_list_free (CanopyServerList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyServerList, canopy_server_list_free)

/* Resolves every configured name again (a cluster's name may now resolve
 * to other servers), keeping the one that last worked first. */
void canopy_server_list_resolve_async (CanopyServerList *list, GCancellable *cancellable,
                                       GAsyncReadyCallback callback, gpointer user_data);
/* FALSE, with an error naming every name that failed, when no address is
 * left to try. */
gboolean canopy_server_list_resolve_finish (CanopyServerList *list, GAsyncResult *result,
                                            GError **error);

/* The address to try now: an IP address and port. */
const CanopyServerAddress *canopy_server_list_current (const CanopyServerList *list);
/* How the admin configured the current address ("p2p.example.com"). */
const char *canopy_server_list_current_name (const CanopyServerList *list);
/* Moves to the next address; FALSE once every address was tried since the
 * last one that worked: time to pause, then resolve again. */
gboolean canopy_server_list_advance (CanopyServerList *list);
/* The current address worked: later rounds start with it. */
void canopy_server_list_succeeded (CanopyServerList *list);
/* How many addresses the last resolution gave. */
guint canopy_server_list_size (const CanopyServerList *list);

G_END_DECLS
