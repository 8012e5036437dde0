/* What an admin types for an item (a whole ID, a unique ID prefix, or a
 * name) resolved against the server's list, and the names canopyctl shows
 * in place of IDs: devices by name, content as "NAME VERSION". */
#pragma once

#include "ctl/ctl-client.h"

G_BEGIN_DECLS

typedef enum {
  CTL_KIND_CONTENT,
  CTL_KIND_DEPLOYMENT,
  CTL_KIND_DEVICE,
} CtlKind;

/**
 * ctl_resolve:
 * @typed: what the admin typed
 * @error: CTL_ERROR_NOT_FOUND when nothing matches, CTL_ERROR_USAGE when
 *   several do (each listed, with what to type instead)
 *
 * Says on standard error which item it took when @typed was not a whole ID.
 * Returns: (transfer full): the item's whole ID.
 */
char *ctl_resolve (CtlClient *client, CtlKind kind, const char *typed, GError **error);

/* The names to show for IDs: content IDs to "NAME VERSION", device IDs to
 * the device's name (its ID when it has none). */
typedef struct _CtlNames CtlNames;

CtlNames *ctl_names_new (CtlClient *client);
void ctl_names_free (CtlNames *names);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlNames, ctl_names_free)

/* Returns: (transfer none): the name for @id, or @id when unknown. */
const char *ctl_names_lookup (const CtlNames *names, const char *id);
/* The content's size in bytes, 0 when unknown. */
guint64 ctl_names_content_size (const CtlNames *names, const char *content_id);

G_END_DECLS
