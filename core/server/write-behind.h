/* canopyd's storage: the backend behind a write-behind queue. */
#pragma once

#include <glib.h>
#include "lib/backend.h"
#include "lib/ranking.h"

G_BEGIN_DECLS

typedef struct _CanopyStore CanopyStore;

/**
 * canopy_store_open:
 *
 * Opens the backend (running its migrations) and loads the device records.
 * Blocking: called once at start, before serving.
 */
CanopyStore *canopy_store_open (const CanopyPlugin *plugin, const CanopyConfigNode *element,
                                const char *state_directory, GError **error);

/* Writes what is queued, then closes the backend. */
void canopy_store_free (CanopyStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyStore, canopy_store_free)

/**
 * canopy_store_put:
 * @value: (transfer floating): a value of @kind's type
 *
 * Queues a record; it reaches the backend within a second, in one
 * transaction with everything queued with it.
 */
void canopy_store_put (CanopyStore *store, CanopyRecordKind kind, const char *key,
                       GVariant *value);

/* Queues the removal of a record, written like a put. */
void canopy_store_remove (CanopyStore *store, CanopyRecordKind kind, const char *key);

typedef void (*CanopyStoreSyncFunc) (gpointer user_data);

/**
 * canopy_store_sync:
 * @func: called on the main context once everything queued before this
 *   call is committed to the backend; a failed write is retried, and
 *   @func waits for the retry
 * @destroy: (nullable): frees @user_data, after @func or instead of it
 *   when the store is freed first
 *
 * Asks for a write now and says when it is durable, without blocking:
 * an enrolment is saved before the device is welcomed.
 */
void canopy_store_sync (CanopyStore *store, CanopyStoreSyncFunc func, gpointer user_data,
                        GDestroyNotify destroy);

/**
 * canopy_store_device_history:
 * @record: a device record, as canopy_store_get_device() returns it
 * @history: (out caller-allocates): gets the office (pointing into
 *   @record), first seen, time online and serving counts; the device ID
 *   and whether it is online are the caller's to set
 *
 * What the ranking needs of a stored device.
 */
void canopy_store_device_history (GVariant *record, CanopyDeviceHistory *history);

/**
 * canopy_store_merge_device:
 * @value: the device's record as the database holds it
 *
 * Takes in a device another server of the cluster recorded, when it was
 * seen there later than here; nothing is written back.
 *
 * Returns: whether the record was taken.
 */
gboolean canopy_store_merge_device (CanopyStore *store, const char *device_id, GVariant *value);

/** canopy_store_get_device: Returns: (transfer none) (nullable): the device's record. */
GVariant *canopy_store_get_device (CanopyStore *store, const char *device_id);
guint canopy_store_count_devices (const CanopyStore *store);

/* Lists stored records (blocking; at start or for reports). */
gboolean canopy_store_list (CanopyStore *store, CanopyRecordKind kind,
                            CanopyBackendRecordFunc func, gpointer user_data, GError **error);

typedef gboolean (*CanopyStoreBackendFunc) (CanopyBackend *backend, gpointer user_data,
                                            GError **error);

/**
 * canopy_store_with_backend:
 *
 * Calls @func with the backend, for a worker thread: waits for a write in
 * flight rather than running the main loop, and keeps the backend from
 * other threads while @func runs. Sees only what was written, not what is
 * still queued.
 */
gboolean canopy_store_with_backend (CanopyStore *store, CanopyStoreBackendFunc func,
                                    gpointer user_data, GError **error);

/**
 * canopy_store_append:
 * @entry: (transfer floating): an entry of @kind's type
 *
 * Queues a log entry; written with the next batch, in order.
 */
void canopy_store_append (CanopyStore *store, CanopyLogKind kind, GVariant *entry);

/* Queues an audit event: who changed what; it is logged too. @detail
 * never holds a secret. */
void canopy_store_audit (CanopyStore *store, const char *actor, const char *action,
                         const char *detail);

/** canopy_store_get_devices: Returns: (transfer none): device ID → record. */
GHashTable *canopy_store_get_devices (CanopyStore *store);

/* Whether the last write to the backend failed (changes wait in memory). */
gboolean canopy_store_is_failing (const CanopyStore *store);

/**
 * canopy_store_check_health:
 *
 * A round trip to the database. Blocking; safe from a worker thread.
 *
 * Returns: (transfer full): what answered, or %NULL with @error.
 */
char *canopy_store_check_health (CanopyStore *store, GError **error);

/** canopy_store_describe: Returns: (transfer full): backend, engine, location, schema. */
char *canopy_store_describe (CanopyStore *store);

G_END_DECLS
