/* The content catalog: packages registered from an origin (an HTTP(S) URL
 * or a file path), each read once to build a manifest that the server
 * signs. The server keeps the metadata, not the package, unless it has a
 * content store: then the same read also leaves a copy there. */
#pragma once

#include <gio/gio.h>
#include "lib/signing.h"
#include "server/content-store.h"
#include "server/write-behind.h"

G_BEGIN_DECLS

#define CANOPY_CATALOG_ERROR (canopy_catalog_error_quark ())
GQuark canopy_catalog_error_quark (void);

typedef enum {
  CANOPY_CATALOG_ERROR_UNKNOWN, /* no content has that ID */
  CANOPY_CATALOG_ERROR_CHANGED, /* the origin no longer holds the registered package */
  CANOPY_CATALOG_ERROR_TOO_LARGE, /* its manifest would not fit in an assignment */
} CanopyCatalogError;

typedef struct {
  char *id;
  char *name;
  char *version;
  char *location;       /* the origin */
  GBytes *manifest;     /* serialized and signed */
  guint64 size;
  guint n_chunks;
  gint64 registered_at; /* µs since the epoch */
  gint64 expires_at;    /* µs since the epoch; 0: never. Past it, its deployments are retired */
} CanopyContent;

typedef struct _CanopyCatalog CanopyCatalog;

/**
 * canopy_catalog_new:
 * @store: where content records live (not owned; outlives the catalog)
 * @key: the content-signing key (not owned; outlives the catalog)
 *
 * Loads the registered content. A stored manifest that does not parse or
 * is not signed by @key is reported and left out, never served.
 */
CanopyCatalog *canopy_catalog_new (CanopyStore *store, const CanopySigningKey *key,
                                   GError **error);
void canopy_catalog_free (CanopyCatalog *catalog);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyCatalog, canopy_catalog_free)

/**
 * canopy_catalog_set_content_store:
 * @content_store: (nullable) (not owned): outlives the catalog
 *
 * From now on registrations keep a copy in @content_store, and removals
 * delete it. Call canopy_catalog_set_content_sources() first: a content
 * whose origin the sources no longer allow is not offered and its copy is
 * deleted. Every other registered content whose copy is there, whole, is
 * offered; one whose copy is not the size of its manifest is reported and
 * not offered (canopy_catalog_why_not_stored() says so).
 */
void canopy_catalog_set_content_store (CanopyCatalog *catalog,
                                       CanopyContentStore *content_store);

/**
 * canopy_catalog_set_content_sources:
 * @directories: (nullable): where files may be registered from; none
 *   until set: URLs only
 * @private_directories: (nullable): never a source, even inside one of
 *   @directories (the state directory, the content store)
 *
 * Registrations and Publish Content copies from then on check their
 * origin with canopy_content_sources_check(); a refused one fails with a
 * CANOPY_CONTENT_SOURCES_ERROR.
 */
void canopy_catalog_set_content_sources (CanopyCatalog *catalog, const char *const *directories,
                                         const char *const *private_directories);

/**
 * canopy_catalog_register_async:
 * @location: "https://cdn.example.com/app.msi" or "/srv/packages/app.msi"
 *   (under a content source; the canonical path is recorded)
 * @chunk_size: bytes per chunk; 0 (CANOPY_MANIFEST_CONTENT_DEFINED) to cut where
 *   the content says, so that versions share their unchanged chunks
 *
 * Reads the content once in a worker thread, builds and signs its
 * manifest, then records it. With a content store, the same read writes
 * the copy; a copy that fails (quota, full disk) is logged and leaves the
 * registration whole, without the server as a source of that content.
 */
void canopy_catalog_register_async (CanopyCatalog *catalog, const char *name,
                                    const char *version, const char *location,
                                    guint32 chunk_size, GCancellable *cancellable,
                                    GAsyncReadyCallback callback, gpointer user_data);

/** canopy_catalog_register_finish: Returns: (transfer none): the new content. */
const CanopyContent *canopy_catalog_register_finish (CanopyCatalog *catalog,
                                                     GAsyncResult *result, GError **error);

/** canopy_catalog_lookup: Returns: (transfer none) (nullable): the content with that ID. */
const CanopyContent *canopy_catalog_lookup (CanopyCatalog *catalog, const char *id);

/**
 * canopy_catalog_set_expiry:
 * @expires_at: µs since the epoch; 0: never
 *
 * Gives the content an expiry date and records it; the distributor
 * retires its deployments once it passes.
 */
gboolean canopy_catalog_set_expiry (CanopyCatalog *catalog, const char *id, gint64 expires_at,
                                    GError **error);

/** canopy_catalog_list: Returns: (transfer container): every content, oldest first. */
GPtrArray *canopy_catalog_list (CanopyCatalog *catalog);

/* Forgets a content; deployments of it must be removed first. */
gboolean canopy_catalog_remove (CanopyCatalog *catalog, const char *id, GError **error);

/**
 * canopy_catalog_publish:
 * @copies: (out) (optional): how many contents are being or waiting to be
 *   copied into the content store
 *
 * Signs every manifest again with the current key and records it, so the
 * catalog can be rebuilt after a catastrophe or a new signing key. With a
 * content store, every content it does not offer is read from its origin
 * again, one at a time in a worker thread, and its copy kept and offered
 * when the bytes are those of the signed manifest.
 *
 * Returns: how many contents were published, or -1 with @error.
 */
int canopy_catalog_publish (CanopyCatalog *catalog, guint *copies, GError **error);

/**
 * canopy_catalog_why_not_stored:
 * @id: a registered content's ID
 *
 * Returns: (nullable): %NULL when the content store offers the content,
 *   else why not, as a whole sentence saying what to do: no store is
 *   configured, a copy is under way, the copy failed (its error, kept in
 *   memory until a copy succeeds), or there is none.
 */
const char *canopy_catalog_why_not_stored (CanopyCatalog *catalog, const char *id);

/**
 * canopy_catalog_merge_stored:
 * @value: a content record as stored (CANOPY_RECORD_CONTENT_TYPE)
 *
 * Takes in content another server of the cluster registered (or its new
 * expiry).
 *
 * Returns: whether @id is new here.
 */
gboolean canopy_catalog_merge_stored (CanopyCatalog *catalog, const char *id, GVariant *value);

/* Removes the content another server of the cluster removed: what this
 * server saw in the database before (read at start, taken in from another
 * server, or its own once a reading found it written) and is missing from
 * @stored (a set of IDs). Content registered here and never seen stored
 * may only be unwritten yet, and stays. */
void canopy_catalog_merge_removed (CanopyCatalog *catalog, GHashTable *stored);

G_END_DECLS
