/* The shared authentication key in the form people copy: Crockford base32
 * in groups, each with a Luhn mod 32 check character, so a typing mistake
 * is reported as such and never mistaken for a wrong key. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-shared-key"

#include "lib/shared-key.h"
#include "lib/i18n.h"
#include "lib/atomic-file.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <string.h>
#include <sys/stat.h>

#define ALPHABET "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#define BASE 32
#define SYMBOLS 52 /* ceil (256 / 5) */
#define GROUP_SYMBOLS 4
#define GROUPS (SYMBOLS / GROUP_SYMBOLS)
#define FORMATTED_LENGTH (GROUPS * (GROUP_SYMBOLS + 1) + GROUPS - 1)

G_DEFINE_QUARK (canopy-shared-key-error-quark, canopy_shared_key_error)

void
canopy_shared_key_free (CanopySharedKey *key)
{
  if (key == NULL)
    return;
  gnutls_memset (key, 0, sizeof *key);
  g_free (key);
}

void
canopy_shared_key_free_text (char *text)
{
  if (text == NULL)
    return;
  gnutls_memset (text, 0, strlen (text));
  g_free (text);
}

CanopySharedKey *
canopy_shared_key_generate (GError **error)
{
  CanopySharedKey *key = g_new0 (CanopySharedKey, 1);
  int rc = gnutls_rnd (GNUTLS_RND_KEY, key->bytes, sizeof key->bytes);

  if (rc < 0)
    {
      g_set_error (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_IO,
                   _("Cannot draw random bits for a new key: %s"), gnutls_strerror (rc));
      canopy_shared_key_free (key);
      return NULL;
    }
  return key;
}

/* Luhn mod 32 over the group's position and its symbols: catches every
 * single wrong character, most swaps of neighbours, and groups typed in
 * the wrong order. */
static guint
group_check (guint group, const guint8 *values)
{
  guint sum = 0;
  guint factor = 2;

  for (int i = GROUP_SYMBOLS - 1; i >= -1; i--)
    {
      guint value = i >= 0 ? values[i] : group;
      guint addend = factor * value;

      factor = factor == 2 ? 1 : 2;
      sum += addend / BASE + addend % BASE;
    }
  return (BASE - sum % BASE) % BASE;
}

static guint
bit_at (const guint8 *bytes, guint bit)
{
  return (bytes[bit / 8] >> (7 - bit % 8)) & 1;
}

char *
canopy_shared_key_format (const CanopySharedKey *key)
{
  guint8 values[SYMBOLS];
  GString *text = g_string_sized_new (FORMATTED_LENGTH + 1);

  for (guint s = 0; s < SYMBOLS; s++)
    {
      values[s] = 0;
      for (guint b = 0; b < 5; b++)
        {
          guint bit = s * 5 + b;
          values[s] = (guint8) (values[s] << 1 | (bit < 256 ? bit_at (key->bytes, bit) : 0));
        }
    }
  for (guint g = 0; g < GROUPS; g++)
    {
      if (g > 0)
        g_string_append_c (text, '-');
      for (guint i = 0; i < GROUP_SYMBOLS; i++)
        g_string_append_c (text, ALPHABET[values[g * GROUP_SYMBOLS + i]]);
      g_string_append_c (text, ALPHABET[group_check (g, values + g * GROUP_SYMBOLS)]);
    }
  gnutls_memset (values, 0, sizeof values);
  return g_string_free (text, FALSE);
}

static int
symbol_value (char c)
{
  const char *p;

  c = g_ascii_toupper (c);
  if (c == 'O')
    c = '0';
  else if (c == 'I' || c == 'L')
    c = '1';
  p = strchr (ALPHABET, c);
  return p != NULL && c != '\0' ? (int) (p - ALPHABET) : -1;
}

/* Symbols of @text without separators; -1 entries mark characters that are
 * not in the alphabet. Returns how many were read. */
static gsize
read_symbols (const char *text, int *values, gsize max)
{
  gsize n = 0;

  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '-' || g_ascii_isspace (*p))
        continue;
      if (n < max)
        values[n] = symbol_value (*p);
      n++;
    }
  return n;
}

CanopySharedKey *
canopy_shared_key_parse (const char *text, GError **error)
{
  int symbols[GROUPS * (GROUP_SYMBOLS + 1)];
  guint8 values[SYMBOLS];
  g_autoptr (CanopySharedKey) key = g_new0 (CanopySharedKey, 1);
  gsize n = read_symbols (text, symbols, G_N_ELEMENTS (symbols));

  if (n != G_N_ELEMENTS (symbols))
    {
      g_set_error (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_MALFORMED,
                   _("This is not a canopy shared key: it has %zu characters "
                     "besides dashes, and a key has %u (%u groups of %u). Copy the whole key "
                     "the installer printed"),
                   n, (guint) G_N_ELEMENTS (symbols), (guint) GROUPS, GROUP_SYMBOLS + 1);
      gnutls_memset (symbols, 0, sizeof symbols);
      return NULL;
    }
  for (guint g = 0; g < GROUPS; g++)
    {
      const int *group = symbols + g * (GROUP_SYMBOLS + 1);
      gboolean readable = TRUE;

      for (guint i = 0; i <= GROUP_SYMBOLS; i++)
        readable = readable && group[i] >= 0;
      for (guint i = 0; readable && i < GROUP_SYMBOLS; i++)
        values[g * GROUP_SYMBOLS + i] = (guint8) group[i];
      if (!readable || group_check (g, values + g * GROUP_SYMBOLS) != (guint) group[GROUP_SYMBOLS])
        {
          g_set_error (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_MISTYPED,
                       _("The shared key is mistyped in group %u of %u (a group is five "
                         "characters between dashes). Compare that group with the key the "
                         "installer printed"),
                       g + 1, (guint) GROUPS);
          gnutls_memset (symbols, 0, sizeof symbols);
          gnutls_memset (values, 0, sizeof values);
          return NULL;
        }
    }
  for (guint bit = 0; bit < 256; bit++)
    if ((values[bit / 5] >> (4 - bit % 5)) & 1)
      key->bytes[bit / 8] |= (guint8) (1 << (7 - bit % 8));
  gnutls_memset (symbols, 0, sizeof symbols);
  gnutls_memset (values, 0, sizeof values);
  return g_steal_pointer (&key);
}

CanopySharedKey *
canopy_shared_key_load (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr (GError) local_error = NULL;
  GStatBuf st;
  CanopySharedKey *key;

  if (g_stat (path, &st) != 0)
    {
      int saved_errno = errno;
      g_set_error (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_IO,
                   _("Cannot read the shared key file %s: %s. Run \"canopyd init\" to create "
                     "it"), path, g_strerror (saved_errno));
      return NULL;
    }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      g_set_error (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_INSECURE_FILE,
                   _("Refusing the shared key file %s: other users can read it. Run "
                     "\"chmod 600 %s\"; if others may have copied it, regenerate the key"),
                   path, path);
      return NULL;
    }
  if (!g_file_get_contents (path, &text, NULL, &local_error))
    {
      g_set_error (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_IO,
                   _("Cannot read the shared key file: %s"), local_error->message);
      return NULL;
    }
  key = canopy_shared_key_parse (text, &local_error);
  gnutls_memset (text, 0, strlen (text));
  if (key == NULL)
    g_set_error (error, CANOPY_SHARED_KEY_ERROR, local_error->code, "%s: %s", path,
                 local_error->message);
  return key;
}

gboolean
canopy_shared_key_save (const CanopySharedKey *key, const char *path, GError **error)
{
  char *text = canopy_shared_key_format (key);
  g_autofree char *line = g_strconcat (text, "\n", NULL);
  g_autoptr (GError) local_error = NULL;
  gboolean ok = canopy_atomic_file_write (path, (const guint8 *) line, strlen (line), 0600,
                                          &local_error);

  canopy_shared_key_free_text (text);
  gnutls_memset (line, 0, strlen (line));
  if (!ok)
    g_set_error (error, CANOPY_SHARED_KEY_ERROR, CANOPY_SHARED_KEY_ERROR_IO,
                 _("Cannot save the shared key: %s"), local_error->message);
  return ok;
}
