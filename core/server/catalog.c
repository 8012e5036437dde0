/* The content catalog. Building a manifest reads the whole package, so it
 * runs in a worker thread; everything else is on the main loop. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-catalog"

#include "server/catalog.h"
#include "server/content-sources.h"
#include "lib/i18n.h"
#include "lib/manifest.h"
#include "lib/origin.h"

#include <string.h>

G_DEFINE_QUARK (canopy-catalog-error-quark, canopy_catalog_error)

struct _CanopyCatalog {
  CanopyStore *store;
  CanopyContentStore *content_store; /* (nullable) */
  const CanopySigningKey *key;
  CanopyVerifyKey *verify_key;
  GHashTable *contents;      /* ID → CanopyContent */
  GHashTable *copy_errors;   /* ID → GError: why the content store has no copy */
  GQueue copy_queue;         /* IDs Publish Content copies, one at a time */
  char *copying;             /* (nullable) the ID being copied now */
  GCancellable *cancellable; /* cancelled when the catalog goes */
  GStrv sources;             /* directories files may be registered from */
  GStrv private_directories; /* never a source (state, content store) */
  /* (cluster) IDs of the content seen in the database: one of them missing
   * from it later was removed by another server, while one registered here
   * and never seen there may only be unwritten yet */
  GHashTable *seen_stored;
};

typedef struct {
  char *name;
  char *version;
  char *location;
  guint32 chunk_size;
  const CanopySigningKey *key;
  GStrv sources;             /* copies of the catalog's, for the thread */
  GStrv private_directories;
  char *content_id;                 /* chosen before the read, for the copy */
  CanopyContentStoreWriter *writer; /* (nullable) the copy being written */
  GError *store_error;              /* why no copy was kept */
  /* (nullable) Set when Publish Content copies a registered content: the
   * read must give the package this manifest was signed for. */
  CanopyManifest *expected;
} Registration;

static void
content_free (CanopyContent *content)
{
  g_free (content->id);
  g_free (content->name);
  g_free (content->version);
  g_free (content->location);
  g_clear_pointer (&content->manifest, g_bytes_unref);
  g_free (content);
}

static CanopyContent *
content_new (const CanopyManifest *manifest, const char *location, gint64 registered_at)
{
  CanopyContent *content = g_new0 (CanopyContent, 1);

  content->id = g_strdup (manifest->content_id);
  content->name = g_strdup (manifest->name);
  content->version = g_strdup (manifest->version);
  content->location = g_strdup (location);
  content->manifest = canopy_manifest_serialize (manifest);
  content->size = manifest->size;
  content->n_chunks = canopy_manifest_get_n_chunks (manifest);
  content->registered_at = registered_at;
  return content;
}

static void
record_content (CanopyCatalog *catalog, const CanopyContent *content)
{
  canopy_store_put (catalog->store, CANOPY_RECORD_CONTENT, content->id,
                    g_variant_new ("(sss@ayxx)", content->name, content->version,
                                   content->location,
                                   g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                             content->manifest, TRUE),
                                   content->registered_at, content->expires_at));
}

static gboolean
load_content (const char *key, GVariant *value, gpointer user_data)
{
  CanopyCatalog *catalog = user_data;
  const char *name, *version, *location;
  g_autoptr (GVariant) bytes = NULL;
  g_autoptr (GBytes) data = NULL;
  g_autoptr (CanopyManifest) manifest = NULL;
  g_autoptr (GError) error = NULL;
  gint64 registered_at, expires_at;
  CanopyContent *content;

  g_variant_get (value, "(&s&s&s@ayxx)", &name, &version, &location, &bytes, &registered_at,
                 &expires_at);
  data = g_variant_get_data_as_bytes (bytes);
  manifest = canopy_manifest_parse (data, catalog->verify_key, &error);
  if (manifest == NULL || g_strcmp0 (manifest->content_id, key) != 0)
    {
      g_warning (_("Content %s (%s %s) is left out: its stored manifest cannot be used (%s). "
                   "Run publish content to sign it again, or register it anew"),
                 key, name, version,
                 error != NULL ? error->message : _("it belongs to another content"));
      return TRUE;
    }
  content = content_new (manifest, location, registered_at);
  content->expires_at = expires_at;
  g_hash_table_insert (catalog->contents, g_strdup (key), content);
  /* read from the database, at start or from another server */
  g_hash_table_add (catalog->seen_stored, g_strdup (key));
  return TRUE;
}

gboolean
canopy_catalog_merge_stored (CanopyCatalog *catalog, const char *id, GVariant *value)
{
  CanopyContent *content = g_hash_table_lookup (catalog->contents, id);
  gint64 expires_at;

  if (content != NULL)
    {
      g_variant_get_child (value, 5, "x", &expires_at);
      content->expires_at = expires_at;
      return FALSE;
    }
  load_content (id, value, catalog);
  return g_hash_table_contains (catalog->contents, id);
}

void
canopy_catalog_merge_removed (CanopyCatalog *catalog, GHashTable *stored)
{
  g_autoptr (GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter iter;
  gpointer id;

  g_hash_table_iter_init (&iter, catalog->contents);
  while (g_hash_table_iter_next (&iter, &id, NULL))
    if (g_hash_table_contains (stored, id))
      g_hash_table_add (catalog->seen_stored, g_strdup (id));
    else if (g_hash_table_contains (catalog->seen_stored, id))
      g_ptr_array_add (gone, g_strdup (id));
  for (guint i = 0; i < gone->len; i++)
    {
      g_message (_("Content %s was removed on another server of the cluster"),
                 (const char *) g_ptr_array_index (gone, i));
      canopy_catalog_remove (catalog, g_ptr_array_index (gone, i), NULL);
    }
}

gboolean
canopy_catalog_set_expiry (CanopyCatalog *catalog, const char *id, gint64 expires_at,
                           GError **error)
{
  CanopyContent *content = g_hash_table_lookup (catalog->contents, id);

  if (content == NULL)
    {
      g_set_error (error, CANOPY_CATALOG_ERROR, CANOPY_CATALOG_ERROR_UNKNOWN,
                   _("No content has the ID %s; list the content to see the IDs"), id);
      return FALSE;
    }
  content->expires_at = expires_at;
  record_content (catalog, content);
  return TRUE;
}

CanopyCatalog *
canopy_catalog_new (CanopyStore *store, const CanopySigningKey *key, GError **error)
{
  g_autoptr (GBytes) public_key = canopy_signing_key_get_public (key);
  CanopyCatalog *catalog = g_new0 (CanopyCatalog, 1);

  catalog->store = store;
  catalog->key = key;
  catalog->contents = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify) content_free);
  catalog->copy_errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                (GDestroyNotify) g_error_free);
  catalog->seen_stored = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&catalog->copy_queue);
  catalog->cancellable = g_cancellable_new ();
  catalog->verify_key = canopy_verify_key_new (public_key, error);
  if (catalog->verify_key == NULL
      || !canopy_store_list (store, CANOPY_RECORD_CONTENT, load_content, catalog, error))
    {
      canopy_catalog_free (catalog);
      return NULL;
    }
  return catalog;
}

/* Content registered before <content-sources> existed, or from a
 * directory since taken out of it, is not served from the store: its
 * copy may be a file the server should never have handed out. A file
 * that cannot be read now is not a reason (its copy is what is served). */
static gboolean
source_still_allowed (CanopyCatalog *catalog, const CanopyContent *content, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autofree char *checked = canopy_content_sources_check (
    (const char *const *) catalog->sources, (const char *const *) catalog->private_directories,
    content->location, &local_error);

  if (checked != NULL
      || g_error_matches (local_error, CANOPY_CONTENT_SOURCES_ERROR,
                          CANOPY_CONTENT_SOURCES_ERROR_UNREADABLE))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

void
canopy_catalog_set_content_store (CanopyCatalog *catalog, CanopyContentStore *content_store)
{
  GHashTableIter iter;
  gpointer value;

  catalog->content_store = content_store;
  if (content_store == NULL)
    return;
  g_hash_table_iter_init (&iter, catalog->contents);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      const CanopyContent *content = value;
      g_autoptr (GError) error = NULL;

      if (!source_still_allowed (catalog, content, &error))
        {
          g_warning (_("The content store no longer serves %s %s: %s"), content->name,
                     content->version, error->message);
          canopy_content_store_remove (content_store, content->id);
          g_hash_table_replace (catalog->copy_errors, g_strdup (content->id),
                                g_steal_pointer (&error));
          continue;
        }
      if (canopy_content_store_offer (content_store, content->manifest, &error))
        continue;
      /* Content registered before the store was configured has no copy;
       * canopy_catalog_why_not_stored() says so without a kept error. */
      if (g_error_matches (error, CANOPY_CONTENT_STORE_ERROR, CANOPY_CONTENT_STORE_ERROR_MISSING))
        g_debug ("%s", error->message);
      else
        {
          g_warning ("%s", error->message);
          g_hash_table_replace (catalog->copy_errors, g_strdup (content->id),
                                g_steal_pointer (&error));
        }
    }
}

void
canopy_catalog_set_content_sources (CanopyCatalog *catalog, const char *const *directories,
                                    const char *const *private_directories)
{
  g_strfreev (catalog->sources);
  g_strfreev (catalog->private_directories);
  catalog->sources = g_strdupv ((char **) directories);
  catalog->private_directories = g_strdupv ((char **) private_directories);
}

void
canopy_catalog_free (CanopyCatalog *catalog)
{
  if (catalog == NULL)
    return;
  /* A copy still reading its origin finds the catalog gone by this. */
  g_cancellable_cancel (catalog->cancellable);
  g_clear_object (&catalog->cancellable);
  g_queue_clear_full (&catalog->copy_queue, g_free);
  g_free (catalog->copying);
  g_hash_table_unref (catalog->copy_errors);
  g_hash_table_unref (catalog->contents);
  g_hash_table_unref (catalog->seen_stored);
  g_clear_pointer (&catalog->verify_key, canopy_verify_key_free);
  g_strfreev (catalog->sources);
  g_strfreev (catalog->private_directories);
  g_free (catalog);
}

static void
registration_free (Registration *registration)
{
  g_free (registration->name);
  g_free (registration->version);
  g_free (registration->location);
  g_strfreev (registration->sources);
  g_strfreev (registration->private_directories);
  g_free (registration->content_id);
  canopy_content_store_abort (registration->writer);
  g_clear_error (&registration->store_error);
  g_clear_pointer (&registration->expected, canopy_manifest_free);
  g_free (registration);
}

/* A new registration is signed; a copy for Publish Content must be the
 * very package its manifest was signed for, or it would be served under a
 * signature that does not cover it. */
static gboolean
sign_or_match (const Registration *registration, CanopyManifest *manifest, GError **error)
{
  const CanopyManifest *expected = registration->expected;

  if (expected == NULL)
    return canopy_manifest_sign (manifest, registration->key, error);
  if (manifest->size == expected->size
      && memcmp (manifest->sha256, expected->sha256, sizeof manifest->sha256) == 0)
    return TRUE;
  g_set_error (error, CANOPY_CATALOG_ERROR, CANOPY_CATALOG_ERROR_CHANGED,
               _("The origin %s of \"%s\" no longer holds the package that was registered (the "
                 "size or SHA-256 differs), so no copy is kept. Put the registered package back "
                 "at the origin and run Publish Content, or register the new package as new "
                 "content"),
               registration->location, registration->name);
  return FALSE;
}

/* An assignment carries the whole manifest as its payload: one larger
 * than the transports' default payload limit would reach no agent. */
static gboolean
check_fits_assignment (const CanopyManifest *manifest, GError **error)
{
  g_autoptr (GBytes) bytes = canopy_manifest_serialize (manifest);
  gsize limit = CANOPY_MANIFEST_MAX_SERIALIZED;

  if (g_bytes_get_size (bytes) <= limit)
    return TRUE;
  g_set_error (error, CANOPY_CATALOG_ERROR, CANOPY_CATALOG_ERROR_TOO_LARGE,
               _("\"%s\" is too large for canopy: its %u chunks make a manifest of %zu bytes, "
                 "more than the %zu an assignment "
                 "carries. Split the package into several contents"),
               manifest->name, canopy_manifest_get_n_chunks (manifest), g_bytes_get_size (bytes),
               limit);
  return FALSE;
}

static void
build_in_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  Registration *registration = task_data;
  g_autoptr (CanopyOrigin) origin = NULL;
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (CanopyManifest) manifest = NULL;
  GError *error = NULL;
  char *checked;

  /* Here, not on the main loop: resolving a path may wait on a network
   * file system. The canonical path is what is read and recorded, so a
   * link changed later cannot turn it into another file. Publish Content
   * checks again: a source no longer allowed is not copied. */
  checked = canopy_content_sources_check ((const char *const *) registration->sources,
                                          (const char *const *) registration->private_directories,
                                          registration->location, &error);
  if (checked == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_free (registration->location);
  registration->location = checked;
  origin = canopy_origin_new (registration->location, &error);
  if (origin != NULL)
    stream = canopy_origin_open (origin, cancellable, &error);
  if (stream != NULL)
    manifest = canopy_manifest_build_full (stream, registration->content_id, registration->name,
                                           registration->version, registration->chunk_size,
                                           registration->writer != NULL
                                             ? canopy_content_store_writer_sink : NULL,
                                           registration->writer, cancellable, &error);
  if (manifest != NULL && !check_fits_assignment (manifest, &error))
    g_clear_pointer (&manifest, canopy_manifest_free);
  if (manifest == NULL || !sign_or_match (registration, manifest, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  /* The copy goes in place here, off the main loop: fsync may take long. */
  if (registration->writer != NULL)
    canopy_content_store_commit (g_steal_pointer (&registration->writer),
                                 &registration->store_error);
  g_task_return_pointer (task, g_steal_pointer (&manifest),
                         (GDestroyNotify) canopy_manifest_free);
}

static Registration *
registration_new (CanopyCatalog *catalog, const char *content_id, const char *name,
                  const char *version, const char *location, guint32 chunk_size)
{
  Registration *registration = g_new0 (Registration, 1);

  registration->name = g_strdup (name);
  registration->version = g_strdup (version);
  registration->location = g_strdup (location);
  /* 0 asks for content-defined chunks, so versions share their unchanged
   * chunks; tests ask for fixed sizes to know where chunks start. */
  registration->chunk_size = chunk_size;
  registration->key = catalog->key;
  registration->sources = g_strdupv (catalog->sources);
  registration->private_directories = g_strdupv (catalog->private_directories);
  registration->content_id = g_strdup (content_id);
  if (catalog->content_store != NULL)
    registration->writer = canopy_content_store_begin (catalog->content_store, content_id, name,
                                                       &registration->store_error);
  return registration;
}

void
canopy_catalog_register_async (CanopyCatalog *catalog, const char *name, const char *version,
                               const char *location, guint32 chunk_size,
                               GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data)
{
  g_autoptr (GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autofree char *content_id = g_uuid_string_random ();

  g_task_set_task_data (task,
                        registration_new (catalog, content_id, name, version, location,
                                          chunk_size),
                        (GDestroyNotify) registration_free);
  g_task_set_source_tag (task, canopy_catalog_register_async);
  g_task_run_in_thread (task, build_in_thread);
}

/* A copy that could not be kept costs the server its seeding of that
 * content, nothing else: the manifest is registered either way. Why is
 * kept for the console until a copy succeeds or the content goes. */
static void
offer_copy (CanopyCatalog *catalog, const CanopyContent *content, const GError *copy_error)
{
  g_autoptr (GError) error = NULL;

  if (copy_error == NULL
      && canopy_content_store_offer (catalog->content_store, content->manifest, &error))
    {
      g_hash_table_remove (catalog->copy_errors, content->id);
      g_message (_("The content store keeps a copy of %s %s and seeds it to office leads"),
                 content->name, content->version);
      return;
    }
  if (error == NULL)
    error = g_error_copy (copy_error);
  g_warning (_("Content %s %s is registered, but the server keeps no copy of it, so leads "
               "fetch it from its origin: %s"),
             content->name, content->version, error->message);
  canopy_content_store_remove (catalog->content_store, content->id);
  g_hash_table_replace (catalog->copy_errors, g_strdup (content->id), g_steal_pointer (&error));
}

const CanopyContent *
canopy_catalog_register_finish (CanopyCatalog *catalog, GAsyncResult *result, GError **error)
{
  Registration *registration = g_task_get_task_data (G_TASK (result));
  g_autoptr (CanopyManifest) manifest = g_task_propagate_pointer (G_TASK (result), error);
  CanopyContent *content;

  if (manifest == NULL)
    return NULL;
  content = content_new (manifest, registration->location, g_get_real_time ());
  g_hash_table_insert (catalog->contents, g_strdup (content->id), content);
  record_content (catalog, content);
  {
    g_autofree char *size = g_format_size_full (content->size, G_FORMAT_SIZE_IEC_UNITS);

    g_message (g_dngettext (GETTEXT_PACKAGE,
                            "Registered content \"%s\" %s (ID %s, %s in %u chunk) from %s",
                            "Registered content \"%s\" %s (ID %s, %s in %u chunks) from %s",
                            content->n_chunks),
               content->name, content->version, content->id, size, content->n_chunks,
               content->location);
  }
  if (catalog->content_store != NULL)
    offer_copy (catalog, content, registration->store_error);
  return content;
}

const CanopyContent *
canopy_catalog_lookup (CanopyCatalog *catalog, const char *id)
{
  return g_hash_table_lookup (catalog->contents, id);
}

static int
compare_registered (gconstpointer a, gconstpointer b)
{
  const CanopyContent *x = *(const CanopyContent *const *) a;
  const CanopyContent *y = *(const CanopyContent *const *) b;

  return x->registered_at != y->registered_at ? (x->registered_at < y->registered_at ? -1 : 1)
                                              : g_strcmp0 (x->id, y->id);
}

GPtrArray *
canopy_catalog_list (CanopyCatalog *catalog)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, catalog->contents);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (list, value);
  g_ptr_array_sort (list, compare_registered);
  return list;
}

gboolean
canopy_catalog_remove (CanopyCatalog *catalog, const char *id, GError **error)
{
  if (!g_hash_table_remove (catalog->contents, id))
    {
      g_set_error (error, CANOPY_CATALOG_ERROR, CANOPY_CATALOG_ERROR_UNKNOWN,
                   _("No content has the ID %s; list the content to see the IDs"), id);
      return FALSE;
    }
  canopy_store_remove (catalog->store, CANOPY_RECORD_CONTENT, id);
  g_hash_table_remove (catalog->seen_stored, id);
  g_hash_table_remove (catalog->copy_errors, id);
  if (catalog->content_store != NULL)
    canopy_content_store_remove (catalog->content_store, id);
  return TRUE;
}

/* --- copies that Publish Content makes ---------------------------------- */

static gboolean
copy_pending (CanopyCatalog *catalog, const char *id)
{
  return g_strcmp0 (catalog->copying, id) == 0
         || g_queue_find_custom (&catalog->copy_queue, id, (GCompareFunc) g_strcmp0) != NULL;
}

static void copy_next (CanopyCatalog *catalog);

/* The origin's own message says what failed; the admin also needs to
 * know that this was a copy, and how to try again. */
static GError *
copy_read_error (const CanopyContent *content, const GError *cause)
{
  if (g_error_matches (cause, CANOPY_CATALOG_ERROR, CANOPY_CATALOG_ERROR_CHANGED)
      || cause->domain == CANOPY_CONTENT_SOURCES_ERROR)
    return g_error_copy (cause);
  return g_error_new (cause->domain, cause->code,
                      _("Publish Content could not read \"%s\" from its origin again (%s). "
                        "Make the origin readable by the server, then run Publish Content "
                        "again"),
                      content->name, cause->message);
}

static void
on_copied (GObject *source, GAsyncResult *result, gpointer user_data)
{
  GTask *task = G_TASK (result);
  Registration *registration = g_task_get_task_data (task);
  g_autoptr (CanopyManifest) manifest = NULL;
  g_autoptr (GError) error = NULL;
  CanopyCatalog *catalog = user_data;
  const CanopyContent *content;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    return;
  manifest = g_task_propagate_pointer (task, &error);
  g_clear_pointer (&catalog->copying, g_free);
  content = canopy_catalog_lookup (catalog, registration->content_id);
  /* Removed while it was copied: its copy goes too. */
  if (content == NULL)
    canopy_content_store_remove (catalog->content_store, registration->content_id);
  else if (manifest == NULL)
    {
      g_autoptr (GError) read_error = copy_read_error (content, error);
      offer_copy (catalog, content, read_error);
    }
  else
    offer_copy (catalog, content, registration->store_error);
  copy_next (catalog);
}

/* Starts the copy of @content, reading its origin again in a worker
 * thread; when it cannot start, the reason is kept. */
static void
start_copy (CanopyCatalog *catalog, const CanopyContent *content)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopyManifest) expected = canopy_manifest_parse (content->manifest, NULL, &error);
  g_autoptr (GTask) task = NULL;
  Registration *registration;

  if (expected == NULL
      || !canopy_content_store_check_fits (catalog->content_store, content->name, content->size,
                                           &error))
    {
      offer_copy (catalog, content, error);
      return;
    }
  registration = registration_new (catalog, content->id, content->name, content->version,
                                   content->location,
                                   canopy_manifest_get_format (expected)
                                       == CANOPY_MANIFEST_FORMAT_CONTENT_DEFINED
                                     ? CANOPY_MANIFEST_CONTENT_DEFINED
                                     : expected->chunk_size);
  registration->expected = g_steal_pointer (&expected);
  if (registration->writer == NULL)
    {
      offer_copy (catalog, content, registration->store_error);
      registration_free (registration);
      return;
    }
  g_message (_("Copying %s %s from its origin %s into the content store"), content->name,
             content->version, content->location);
  task = g_task_new (NULL, catalog->cancellable, on_copied, catalog);
  g_task_set_task_data (task, registration, (GDestroyNotify) registration_free);
  g_task_run_in_thread (task, build_in_thread);
  catalog->copying = g_strdup (content->id);
}

/* One copy at a time: each is checked against what is left of the quota
 * when it starts, and the origins are not all read at once. */
static void
copy_next (CanopyCatalog *catalog)
{
  char *id;

  while (catalog->copying == NULL && (id = g_queue_pop_head (&catalog->copy_queue)) != NULL)
    {
      g_autofree char *owned = id;
      const CanopyContent *content = canopy_catalog_lookup (catalog, id);

      if (content != NULL && !canopy_content_store_holds (catalog->content_store, id))
        start_copy (catalog, content);
    }
}

/* Queues a copy of every content the store does not offer, oldest first.
 * Returns: how many are being or waiting to be copied. */
static guint
copy_missing (CanopyCatalog *catalog)
{
  g_autoptr (GPtrArray) list = canopy_catalog_list (catalog);

  for (guint i = 0; i < list->len; i++)
    {
      const CanopyContent *content = g_ptr_array_index (list, i);

      if (!canopy_content_store_holds (catalog->content_store, content->id)
          && !copy_pending (catalog, content->id))
        g_queue_push_tail (&catalog->copy_queue, g_strdup (content->id));
    }
  copy_next (catalog);
  return g_queue_get_length (&catalog->copy_queue) + (catalog->copying != NULL ? 1 : 0);
}

const char *
canopy_catalog_why_not_stored (CanopyCatalog *catalog, const char *id)
{
  const GError *error;

  if (catalog->content_store == NULL)
    return _("The server keeps no copies: no <content-store> is configured. Add one to canopyd's "
             "configuration and restart canopyd, then run Publish Content to copy the registered "
             "content into it");
  if (canopy_content_store_holds (catalog->content_store, id))
    return NULL;
  if (copy_pending (catalog, id))
    return _("Publish Content is copying it from its origin (one content at a time); the server "
             "seeds it once the copy is whole. Wait for it");
  error = g_hash_table_lookup (catalog->copy_errors, id);
  if (error != NULL)
    return error->message;
  return _("The content store has no copy of it: it was registered before the store was "
           "configured, or its copy failed before canopyd last started. Run Publish Content to "
           "copy it from its origin");
}

int
canopy_catalog_publish (CanopyCatalog *catalog, guint *copies, GError **error)
{
  GHashTableIter iter;
  gpointer value;
  int published = 0;
  guint pending;

  g_hash_table_iter_init (&iter, catalog->contents);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      CanopyContent *content = value;
      g_autoptr (CanopyManifest) manifest = canopy_manifest_parse (content->manifest, NULL, error);

      if (manifest == NULL || !canopy_manifest_sign (manifest, catalog->key, error))
        return -1;
      g_bytes_unref (content->manifest);
      content->manifest = canopy_manifest_serialize (manifest);
      record_content (catalog, content);
      published++;
    }
  pending = catalog->content_store != NULL ? copy_missing (catalog) : 0;
  if (copies != NULL)
    *copies = pending;
  return published;
}
