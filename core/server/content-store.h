/* The server's content store: with <content-store> configured, canopyd keeps
 * a copy of each package it registers and seeds it to office leads over the
 * agent-to-agent protocol, on its own transport listener. */
#pragma once

#include <glib.h>
#include "server/sessions.h"

G_BEGIN_DECLS

#define CANOPY_CONTENT_STORE_ERROR (canopy_content_store_error_quark ())
GQuark canopy_content_store_error_quark (void);

typedef enum {
  CANOPY_CONTENT_STORE_ERROR_DIRECTORY, /* the directory cannot be created or used */
  CANOPY_CONTENT_STORE_ERROR_QUOTA,     /* the package does not fit in the quota */
  CANOPY_CONTENT_STORE_ERROR_NO_SPACE,  /* the disk holding the store is full */
  CANOPY_CONTENT_STORE_ERROR_IO,        /* any other read or write failure */
  CANOPY_CONTENT_STORE_ERROR_MISSING,   /* no stored copy of that content */
  CANOPY_CONTENT_STORE_ERROR_MISMATCH,  /* the stored copy is not the package of its manifest */
} CanopyContentStoreError;

typedef struct _CanopyContentStore CanopyContentStore;

/**
 * canopy_content_store_new:
 * @directory: where the copies live; created owner-only if missing
 * @quota: bytes the copies may take together; 0 for no limit but the disk
 * @server_id: the ID agents know the server by (the transport proves it)
 * @upload_slots: how many agents may be sent chunks at once
 * @error: %CANOPY_CONTENT_STORE_ERROR_DIRECTORY naming the directory
 *
 * Leftover temporary files of an interrupted registration are removed.
 * Nothing is offered until canopy_content_store_offer().
 */
CanopyContentStore *canopy_content_store_new (const char *directory, guint64 quota,
                                              const char *server_id, guint upload_slots,
                                              GError **error);
void canopy_content_store_free (CanopyContentStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyContentStore, canopy_content_store_free)

/** canopy_content_store_get_server_id: Returns: the ID the server's sources carry. */
const char *canopy_content_store_get_server_id (const CanopyContentStore *store);

/* --- keeping a copy while the package is read for its manifest ----------- */

typedef struct _CanopyContentStoreWriter CanopyContentStoreWriter;

/**
 * canopy_content_store_begin:
 * @content_id: the ID the content will have
 * @name: the content's name, for messages
 *
 * Starts a copy in a temporary file of the store, within what is left of
 * the quota now. Runs on the main loop; the writer is then used from the
 * thread that reads the package.
 */
CanopyContentStoreWriter *canopy_content_store_begin (CanopyContentStore *store,
                                                      const char *content_id, const char *name,
                                                      GError **error);

/**
 * canopy_content_store_writer_sink:
 * @writer: (type CanopyContentStoreWriter)
 *
 * A #CanopyManifestSinkFunc: appends the bytes. The first failure (quota,
 * full disk) ends the copy and is kept for canopy_content_store_commit();
 * the read that builds the manifest goes on regardless.
 */
void canopy_content_store_writer_sink (const guint8 *data, gsize length, gpointer writer);

/**
 * canopy_content_store_commit:
 * @error: why no copy was kept: a whole sentence saying what to do
 *
 * Flushes the copy and renames it into place (temporary file, fsync,
 * rename). Frees @writer either way.
 */
gboolean canopy_content_store_commit (CanopyContentStoreWriter *writer, GError **error);

/* Drops the copy (the registration failed); frees @writer. */
void canopy_content_store_abort (CanopyContentStoreWriter *writer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyContentStoreWriter, canopy_content_store_abort)

/* --- what is offered ---------------------------------------------------- */

/**
 * canopy_content_store_offer:
 * @manifest: the content's serialized, signed manifest
 * @error: %CANOPY_CONTENT_STORE_ERROR_MISSING when there is no copy,
 *   %CANOPY_CONTENT_STORE_ERROR_MISMATCH when its size is not the
 *   manifest's; the content is then not offered
 *
 * Offers the stored copy of a content to agents. Its chunks are checked
 * against the manifest each time one is served.
 */
gboolean canopy_content_store_offer (CanopyContentStore *store, GBytes *manifest,
                                     GError **error);

/* Whether the store offers @content_id: leads may be sent to it. */
gboolean canopy_content_store_holds (const CanopyContentStore *store, const char *content_id);

/* Stops offering @content_id and deletes its copy. */
void canopy_content_store_remove (CanopyContentStore *store, const char *content_id);

/** canopy_content_store_get_uploaded: Returns: chunk bytes sent to agents since the start. */
guint64 canopy_content_store_get_uploaded (const CanopyContentStore *store);

/* --- what the console shows --------------------------------------------- */

/* Where the copies live, as configured. */
const char *canopy_content_store_get_directory (const CanopyContentStore *store);
/** canopy_content_store_get_quota: Returns: bytes the copies may take; 0 for no limit. */
guint64 canopy_content_store_get_quota (const CanopyContentStore *store);
/** canopy_content_store_get_used: Returns: bytes the offered copies take. */
guint64 canopy_content_store_get_used (const CanopyContentStore *store);
guint canopy_content_store_get_upload_slots (const CanopyContentStore *store);
/** canopy_content_store_count_offered: Returns: how many contents are offered. */
guint canopy_content_store_count_offered (const CanopyContentStore *store);

/**
 * canopy_content_store_check_fits:
 * @name: the content's name, for the message
 * @size: the package's size in bytes
 * @error: %CANOPY_CONTENT_STORE_ERROR_QUOTA, saying what to do
 *
 * Whether @size bytes fit in what is left of the quota now, so that a copy
 * known to be too large is not read from its origin at all.
 */
gboolean canopy_content_store_check_fits (const CanopyContentStore *store, const char *name,
                                          guint64 size, GError **error);

/**
 * canopy_content_store_check_directory:
 * @directory: a store's directory (canopy_content_store_get_directory())
 * @error: %CANOPY_CONTENT_STORE_ERROR_DIRECTORY, saying what to check
 *
 * Whether copies can still be written there: creates and deletes a file.
 * It waits on the disk, so it is called from a worker thread, with a copy
 * of the name rather than the store.
 */
gboolean canopy_content_store_check_directory (const char *directory, GError **error);

/**
 * canopy_content_store_get_peer_handler:
 *
 * How the sessions hand over a connection whose first message is a
 * peer-hello; the handler's user data is the store, which must outlive
 * the sessions.
 */
const CanopySessionsPeerHandler *canopy_content_store_get_peer_handler (void);

G_END_DECLS
