/* The conversion of console admins from setting records (the releases
 * before the admins table) to records of their own kinds. The old values
 * are GVariant text: "(sx)" role and created (seconds since the epoch)
 * for an admin, "(ssxx)" admin, SHA-256 of the secret in lower-case hex,
 * created and expires (seconds, 0: never) for a token. The new records
 * keep times in µs and the hash as bytes. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-backend"

#include <canopy/admin-settings.h>

#include <glib/gi18n-lib.h>
#include <string.h>

#define OLD_ADMIN_TYPE "(sx)"
#define OLD_TOKEN_TYPE "(ssxx)"
#define HASH_SIZE 32

static void
clear_record (gpointer data)
{
  CanopyRecord *record = data;

  g_free ((char *) record->key);
  g_variant_unref (record->value);
}

void
canopy_admin_settings_init (CanopyAdminSettings *s)
{
  s->admins = g_array_new (FALSE, FALSE, sizeof (CanopyRecord));
  g_array_set_clear_func (s->admins, clear_record);
  s->tokens = g_array_new (FALSE, FALSE, sizeof (CanopyRecord));
  g_array_set_clear_func (s->tokens, clear_record);
  s->moved = g_ptr_array_new_with_free_func (g_free);
}

void
canopy_admin_settings_clear (CanopyAdminSettings *s)
{
  g_clear_pointer (&s->admins, g_array_unref);
  g_clear_pointer (&s->tokens, g_array_unref);
  g_clear_pointer (&s->moved, g_ptr_array_unref);
}

static gboolean
is_role (const char *role)
{
  return g_str_equal (role, "administrator") || g_str_equal (role, "operator")
         || g_str_equal (role, "auditor");
}

static GVariant *
admin_value (const char *text)
{
  g_autoptr (GVariant) old = g_variant_parse (G_VARIANT_TYPE (OLD_ADMIN_TYPE), text, NULL, NULL,
                                              NULL);
  const char *role;
  gint64 created;

  if (old == NULL)
    return NULL;
  g_variant_get (old, "(&sx)", &role, &created);
  if (!is_role (role))
    return NULL;
  return g_variant_ref_sink (g_variant_new (CANOPY_RECORD_ADMIN_TYPE, role,
                                            created * G_USEC_PER_SEC));
}

static GVariant *
token_value (const char *text)
{
  g_autoptr (GVariant) old = g_variant_parse (G_VARIANT_TYPE (OLD_TOKEN_TYPE), text, NULL, NULL,
                                              NULL);
  const char *admin, *hex;
  gint64 created, expires;
  guint8 hash[HASH_SIZE];

  if (old == NULL)
    return NULL;
  g_variant_get (old, "(&s&sxx)", &admin, &hex, &created, &expires);
  if (strlen (hex) != HASH_SIZE * 2)
    return NULL;
  for (gsize i = 0; i < HASH_SIZE; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]), lo = g_ascii_xdigit_value (hex[2 * i + 1]);
      if (hi < 0 || lo < 0)
        return NULL;
      hash[i] = (guint8) (hi << 4 | lo);
    }
  return g_variant_ref_sink (g_variant_new (
    "(s@ayxx)", admin,
    g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, hash, sizeof hash, 1),
    created * G_USEC_PER_SEC, expires * G_USEC_PER_SEC));
}

gboolean
canopy_admin_settings_add (CanopyAdminSettings *s, const char *name, const char *value)
{
  gboolean is_admin = g_str_has_prefix (name, CANOPY_ADMIN_SETTING_PREFIX);
  gboolean is_token = g_str_has_prefix (name, CANOPY_ADMIN_TOKEN_SETTING_PREFIX);
  const char *key;
  GVariant *converted;

  if (!is_admin && !is_token)
    return FALSE;
  key = name + strlen (is_admin ? CANOPY_ADMIN_SETTING_PREFIX
                                : CANOPY_ADMIN_TOKEN_SETTING_PREFIX);
  converted = is_admin ? admin_value (value) : token_value (value);
  if (converted == NULL || *key == '\0')
    {
      g_clear_pointer (&converted, g_variant_unref);
      g_warning (_("The stored console admin setting \"%s\" is damaged and stays in the "
                   "settings table; add that admin again with \"canopyd admin-add\""), name);
      return TRUE;
    }
  {
    CanopyRecord record = { g_strdup (key), converted };
    g_array_append_val (is_admin ? s->admins : s->tokens, record);
  }
  g_ptr_array_add (s->moved, g_strdup (name));
  return TRUE;
}

static int
compare_records (gconstpointer a, gconstpointer b)
{
  return strcmp (((const CanopyRecord *) a)->key, ((const CanopyRecord *) b)->key);
}

void
canopy_admin_settings_finish (CanopyAdminSettings *s)
{
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < s->admins->len; i++)
    g_hash_table_add (names, (gpointer) g_array_index (s->admins, CanopyRecord, i).key);
  for (guint i = s->tokens->len; i-- > 0;)
    {
      CanopyRecord *token = &g_array_index (s->tokens, CanopyRecord, i);
      const char *admin;

      g_variant_get_child (token->value, 0, "&s", &admin);
      if (!g_hash_table_contains (names, admin))
        g_array_remove_index_fast (s->tokens, i);
    }
  g_array_sort (s->admins, compare_records);
  g_array_sort (s->tokens, compare_records);
}
