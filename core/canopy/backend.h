/* The storage backend contract: what canopyd keeps across restarts, as
 * typed records and append-only logs, with batch writes and transactions.
 * No SQL crosses it: each backend owns its schema and its migrations. */
#pragma once

#include <glib.h>
#include <canopy/config-node.h>

G_BEGIN_DECLS

/**
 * CANOPY_BACKEND_ERROR:
 *
 * The error domain of everything a backend reports; codes are
 * #CanopyBackendError. Messages name the database (file, or host and
 * database) and never contain a password.
 */
#define CANOPY_BACKEND_ERROR (canopy_backend_error_quark ())
GQuark canopy_backend_error_quark (void);

/**
 * CanopyBackendError:
 * @CANOPY_BACKEND_ERROR_UNAVAILABLE: the database cannot be reached or
 *   opened (server down, file unreadable); retrying later may work
 * @CANOPY_BACKEND_ERROR_CORRUPT: the database or a stored record is
 *   damaged or is not a canopy database
 * @CANOPY_BACKEND_ERROR_LOCKED: another process holds the database
 * @CANOPY_BACKEND_ERROR_FULL: the disk or database is full; the
 *   transaction was rolled back
 * @CANOPY_BACKEND_ERROR_TOO_NEW: the database was written by a newer
 *   canopy; it is not touched
 * @CANOPY_BACKEND_ERROR_NOT_FOUND: no record has that key
 * @CANOPY_BACKEND_ERROR_UNSUPPORTED: the backend does not implement that
 *   operation (its table entry is %NULL)
 * @CANOPY_BACKEND_ERROR_FAILED: anything else
 */
typedef enum {
  CANOPY_BACKEND_ERROR_UNAVAILABLE,
  CANOPY_BACKEND_ERROR_CORRUPT,
  CANOPY_BACKEND_ERROR_LOCKED,
  CANOPY_BACKEND_ERROR_FULL,
  CANOPY_BACKEND_ERROR_TOO_NEW,
  CANOPY_BACKEND_ERROR_NOT_FOUND,
  CANOPY_BACKEND_ERROR_UNSUPPORTED,
  CANOPY_BACKEND_ERROR_FAILED,
} CanopyBackendError;

/**
 * CanopyRecordKind:
 * @CANOPY_RECORD_DEVICE: key device ID; value #CANOPY_RECORD_DEVICE_TYPE
 * @CANOPY_RECORD_OFFICE: key office name; value #CANOPY_RECORD_OFFICE_TYPE
 * @CANOPY_RECORD_SETTING: key setting name; value #CANOPY_RECORD_SETTING_TYPE
 * @CANOPY_RECORD_CONTENT: key content ID; value #CANOPY_RECORD_CONTENT_TYPE
 * @CANOPY_RECORD_DEPLOYMENT: key deployment ID; value
 *   #CANOPY_RECORD_DEPLOYMENT_TYPE
 * @CANOPY_RECORD_PROGRESS: key "DEPLOYMENT-ID/DEVICE-ID"; value
 *   #CANOPY_RECORD_PROGRESS_TYPE
 * @CANOPY_RECORD_ACTIVATION: key device ID; value
 *   #CANOPY_RECORD_ACTIVATION_TYPE
 * @CANOPY_RECORD_ADMIN: key a console admin's name; value
 *   #CANOPY_RECORD_ADMIN_TYPE
 * @CANOPY_RECORD_ADMIN_TOKEN: key a console token's ID (hex); value
 *   #CANOPY_RECORD_ADMIN_TOKEN_TYPE. Its admin must exist; removing the
 *   admin removes their tokens
 *
 * Records a backend keeps by key; writing a key again replaces its value.
 * The value of each kind is a #GVariant of the kind's fixed type; the core
 * checks it on the way in and on the way out, so a backend stores it as the
 * opaque bytes of g_variant_get_data() and returns exactly those bytes.
 */
typedef enum {
  CANOPY_RECORD_DEVICE,
  CANOPY_RECORD_OFFICE,
  CANOPY_RECORD_SETTING,
  CANOPY_RECORD_CONTENT,
  CANOPY_RECORD_DEPLOYMENT,
  CANOPY_RECORD_PROGRESS,
  CANOPY_RECORD_ACTIVATION,
  CANOPY_RECORD_ADMIN,
  CANOPY_RECORD_ADMIN_TOKEN,
  CANOPY_N_RECORD_KINDS,
} CanopyRecordKind;

/* name, groups, addresses (address, prefix length), agent version, office,
 * first seen, last seen (µs since the epoch), time online (µs), verified
 * bytes served to subnet peers, peers served, chunks peers rejected */
#define CANOPY_RECORD_DEVICE_TYPE "(sasa(sy)ssxxxtuu)"
/* parent ("" for the central office), type (0 Default, 1 WiFi, 2 VPN),
 * subnets and ranges, WAN rate (bit/s, 0 unlimited), metered, automatic */
#define CANOPY_RECORD_OFFICE_TYPE "(suastbb)"
/* value */
#define CANOPY_RECORD_SETTING_TYPE "(s)"
/* name, version, origin, signed manifest bytes, registered at, expires at
 * (0: never) */
#define CANOPY_RECORD_CONTENT_TYPE "(sssayxx)"
/* The content record before the expiry field; read with it 0. */
#define CANOPY_RECORD_CONTENT_TYPE_V1 "(sssayx)"
/* content ID, groups, destination path on the devices, state (0 active,
 * 1 paused, 2 removed, 3 retired), created at, start at (0: at once),
 * deadline (0: none), daily window start and end (minutes since midnight
 * in each device's office; equal: no window), background (the lead yields
 * to other WAN traffic, LEDBAT) */
#define CANOPY_RECORD_DEPLOYMENT_TYPE "(sassuxxxuub)"
/* The deployment record as releases before the window fields wrote it;
 * read as the current type with those fields 0 and false. */
#define CANOPY_RECORD_DEPLOYMENT_TYPE_V1 "(sassux)"
/* chunks verified, bytes by source kind (office peer, parent office,
 * server, origin), done */
#define CANOPY_RECORD_PROGRESS_TYPE "(uatb)"
/* activated at, last seen, released at (0 while active) */
#define CANOPY_RECORD_ACTIVATION_TYPE "(xxx)"
/* role ("administrator", "operator" or "auditor"), created at */
#define CANOPY_RECORD_ADMIN_TYPE "(sx)"
/* the holder's admin name, SHA-256 of the token's secret, created at,
 * expires at (0: never) */
#define CANOPY_RECORD_ADMIN_TOKEN_TYPE "(sayxx)"

/**
 * CanopyLogKind:
 * @CANOPY_LOG_TRANSFER: who served which chunks to whom; entries of
 *   #CANOPY_LOG_TRANSFER_TYPE
 * @CANOPY_LOG_AUDIT: who changed what; entries of #CANOPY_LOG_AUDIT_TYPE
 *
 * Append-only logs; each entry gets an increasing ID from the backend.
 */
typedef enum {
  CANOPY_LOG_TRANSFER,
  CANOPY_LOG_AUDIT,
  CANOPY_N_LOG_KINDS,
} CanopyLogKind;

/* time, content ID, from device, to device, source kind, chunks, bytes,
 * verified */
#define CANOPY_LOG_TRANSFER_TYPE "(xsssuutb)"
/* time, actor, action, detail */
#define CANOPY_LOG_AUDIT_TYPE "(xsss)"

/**
 * CanopyRecord:
 * @key: the record's key (UTF-8, at most 256 bytes)
 * @value: its value, of the kind's type
 */
typedef struct {
  const char *key;
  GVariant *value;
} CanopyRecord;

/**
 * CanopyRecordFunc:
 * @key: a record's key
 * @value: its value, as the backend stored it; valid during the call
 * @length: the value's length in bytes
 * @user_data: what the list call was given
 *
 * Returns: %FALSE to stop listing.
 */
typedef gboolean (*CanopyRecordFunc) (const char *key, const guint8 *value, gsize length,
                                      gpointer user_data);

/**
 * CanopyLogFunc:
 * @id: the entry's ID, increasing in the order entries were appended
 * @value: the entry, as stored; valid during the call
 * @length: its length in bytes
 * @user_data: what the list call was given
 *
 * Returns: %FALSE to stop listing.
 */
typedef gboolean (*CanopyLogFunc) (gint64 id, const guint8 *value, gsize length,
                                   gpointer user_data);

/**
 * CanopyBackendInfo:
 * @schema_version: the schema version of the open database
 * @server_version: (transfer full): the database engine and its version,
 *   for the health check ("SQLite 3.40.1")
 * @location: (transfer full): what the database is, for messages (a file
 *   name, or host and database name; never a password)
 */
typedef struct {
  guint schema_version;
  char *server_version;
  char *location;
} CanopyBackendInfo;

/**
 * CanopyBackendOps:
 * @open: opens (creating if needed) the database the plugin's element
 *   describes, running the backend's migrations to its newest schema
 *   version inside a transaction; refuses a database newer than the plugin
 *   with %CANOPY_BACKEND_ERROR_TOO_NEW. @state_directory is where canopyd
 *   keeps its state, for backends that keep files. Returns a handle.
 * @close: closes the handle; a transaction still open is rolled back
 * @get_info: fills @info
 * @check_health: a cheap round trip proving the database answers
 * @begin: starts a transaction; transactions do not nest
 * @commit: commits it
 * @rollback: rolls it back; nothing written since begin() remains
 * @put: inserts or replaces @n records of @kind. Outside a transaction the
 *   batch is written in one transaction of its own: all or nothing
 * @get: (nullable): the value stored under @key, or %NULL with
 *   %CANOPY_BACKEND_ERROR_NOT_FOUND
 * @list: calls @func for every record of @kind, in key order
 * @remove: deletes the records with these keys; absent keys are not an
 *   error
 * @replace_all: replaces every record of @kind with @records, atomically
 *   (a topology upload replaces all offices)
 * @append: appends @n entries to a log
 * @list_log: calls @func for the entries of @kind whose ID is greater
 *   than @after, in ID order, at most @limit of them (0: all)
 *
 * A backend plugin's descriptor points to this table. Every operation is
 * synchronous and may block: the core calls them from worker threads,
 * never from its main loop, and uses one handle from one thread at a time.
 * Members other than the transaction calls, @get_info and @check_health
 * must be set; a %NULL one makes the core report
 * %CANOPY_BACKEND_ERROR_UNSUPPORTED.
 */
typedef struct {
  gpointer (*open) (const CanopyConfigNode *element, const char *state_directory,
                    GError **error);
  void (*close) (gpointer handle);
  gboolean (*get_info) (gpointer handle, CanopyBackendInfo *info, GError **error);
  gboolean (*check_health) (gpointer handle, GError **error);
  gboolean (*begin) (gpointer handle, GError **error);
  gboolean (*commit) (gpointer handle, GError **error);
  void (*rollback) (gpointer handle);
  gboolean (*put) (gpointer handle, CanopyRecordKind kind, const CanopyRecord *records,
                   gsize n, GError **error);
  GBytes *(*get) (gpointer handle, CanopyRecordKind kind, const char *key, GError **error);
  gboolean (*list) (gpointer handle, CanopyRecordKind kind, CanopyRecordFunc func,
                    gpointer user_data, GError **error);
  gboolean (*remove) (gpointer handle, CanopyRecordKind kind, const char *const *keys,
                      GError **error);
  gboolean (*replace_all) (gpointer handle, CanopyRecordKind kind,
                           const CanopyRecord *records, gsize n, GError **error);
  gboolean (*append) (gpointer handle, CanopyLogKind kind, GVariant *const *entries, gsize n,
                      GError **error);
  gboolean (*list_log) (gpointer handle, CanopyLogKind kind, gint64 after, guint limit,
                        CanopyLogFunc func, gpointer user_data, GError **error);
} CanopyBackendOps;

/**
 * canopy_record_kind_to_string:
 *
 * Returns: the kind's name ("device", "office", ...), for messages and
 *   for backends that name tables after kinds.
 */
const char *canopy_record_kind_to_string (CanopyRecordKind kind);

/** canopy_log_kind_to_string: Returns: "transfer" or "audit". */
const char *canopy_log_kind_to_string (CanopyLogKind kind);

G_END_DECLS
