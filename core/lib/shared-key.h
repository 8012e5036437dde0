/* The shared authentication key: 256 random bits, shown once to the admin
 * in a form a person can copy, stored owner-only. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CANOPY_SHARED_KEY_ERROR (canopy_shared_key_error_quark ())
GQuark canopy_shared_key_error_quark (void);

/**
 * CanopySharedKeyError:
 * @CANOPY_SHARED_KEY_ERROR_MALFORMED: the text is not a key at all (length,
 *   characters)
 * @CANOPY_SHARED_KEY_ERROR_MISTYPED: a group's check character does not
 *   match: a typing mistake, not a wrong key
 * @CANOPY_SHARED_KEY_ERROR_INSECURE_FILE: the key file can be read by others
 * @CANOPY_SHARED_KEY_ERROR_IO: the key file cannot be read or written
 */
typedef enum {
  CANOPY_SHARED_KEY_ERROR_MALFORMED,
  CANOPY_SHARED_KEY_ERROR_MISTYPED,
  CANOPY_SHARED_KEY_ERROR_INSECURE_FILE,
  CANOPY_SHARED_KEY_ERROR_IO,
} CanopySharedKeyError;

#define CANOPY_SHARED_KEY_SIZE 32

typedef struct {
  guint8 bytes[CANOPY_SHARED_KEY_SIZE];
} CanopySharedKey;

/* Wipes the key before freeing it. */
void canopy_shared_key_free (CanopySharedKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopySharedKey, canopy_shared_key_free)

/** canopy_shared_key_generate: Returns: a new key from GnuTLS's key RNG. */
CanopySharedKey *canopy_shared_key_generate (GError **error);

/**
 * canopy_shared_key_format:
 *
 * Returns: (transfer full): the key as 13 groups of five characters
 *   (Crockford base32; four key characters and one check character each)
 *   joined by dashes. Free it with canopy_shared_key_free_text().
 */
char *canopy_shared_key_format (const CanopySharedKey *key);

/* Wipes and frees text that held a key. */
void canopy_shared_key_free_text (char *text);

/**
 * canopy_shared_key_parse:
 * @text: a key as printed; case, spaces and dashes do not matter, and the
 *   letters O, I and L are read as 0, 1 and 1
 * @error: %CANOPY_SHARED_KEY_ERROR_MISTYPED naming the group with the typo,
 *   or %CANOPY_SHARED_KEY_ERROR_MALFORMED; never quotes the key
 */
CanopySharedKey *canopy_shared_key_parse (const char *text, GError **error);

/**
 * canopy_shared_key_load:
 * @path: a key file written by canopy_shared_key_save()
 * @error: refuses a file that group or others can read
 */
CanopySharedKey *canopy_shared_key_load (const char *path, GError **error);

/**
 * canopy_shared_key_save:
 *
 * Writes the key atomically (temporary file, fsync, rename), readable and
 * writable by the owner only.
 */
gboolean canopy_shared_key_save (const CanopySharedKey *key, const char *path, GError **error);

G_END_DECLS
