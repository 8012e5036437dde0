/* Console admins and their tokens, kept as records of their own kinds
 * (the admins and admin_tokens tables) in the storage backend. Why there and not in a file of the state directory: canopyd
 * and "canopyd admin-add" then share one database with its transactions
 * and locking, so the command works whether canopyd runs or not, two of
 * them never lose each other's changes, and a database backup holds the
 * admins too. The running canopyd re-reads the records when a token it
 * does not know is presented and at most a few seconds after its last
 * read (console-api.c), so it sees what the command changed. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopyd-admins"

#include "server/admins.h"
#include "lib/i18n.h"
#include "lib/keys.h"

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <string.h>

#define MAX_NAME_LENGTH 64

G_DEFINE_QUARK (canopy-admins-error-quark, canopy_admins_error)

struct _CanopyAdmins {
  GHashTable *admins; /* name → CanopyAdmin */
  GHashTable *tokens; /* ID → CanopyAdminToken */
};

static const char *const role_names[] = {
  [CANOPY_ADMIN_ROLE_NONE] = "none",
  [CANOPY_ADMIN_ROLE_AUDITOR] = "auditor",
  [CANOPY_ADMIN_ROLE_OPERATOR] = "operator",
  [CANOPY_ADMIN_ROLE_ADMINISTRATOR] = "administrator",
};

const char *
canopy_admin_role_to_string (CanopyAdminRole role)
{
  g_return_val_if_fail (role <= CANOPY_ADMIN_ROLE_ADMINISTRATOR, "none");
  return role_names[role];
}

CanopyAdminRole
canopy_admin_role_from_string (const char *text, GError **error)
{
  for (guint r = CANOPY_ADMIN_ROLE_AUDITOR; r <= CANOPY_ADMIN_ROLE_ADMINISTRATOR; r++)
    if (text != NULL && g_ascii_strcasecmp (text, role_names[r]) == 0)
      return r;
  g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_INVALID,
               _("\"%s\" is not a role; use administrator, operator or auditor"),
               text != NULL ? text : "");
  return CANOPY_ADMIN_ROLE_NONE;
}

static void
admin_free (CanopyAdmin *admin)
{
  g_free (admin->name);
  g_free (admin);
}

static void
token_free (CanopyAdminToken *token)
{
  g_free (token->id);
  g_free (token->admin);
  canopy_keys_wipe (token->hash, sizeof token->hash);
  g_free (token);
}

CanopyAdmins *
canopy_admins_new (void)
{
  CanopyAdmins *admins = g_new0 (CanopyAdmins, 1);

  admins->admins = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) admin_free);
  admins->tokens = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) token_free);
  return admins;
}

void
canopy_admins_free (CanopyAdmins *admins)
{
  if (admins == NULL)
    return;
  g_hash_table_unref (admins->tokens);
  g_hash_table_unref (admins->admins);
  g_free (admins);
}

void
canopy_admins_free_text (char *text)
{
  if (text != NULL)
    canopy_keys_wipe (text, strlen (text));
  g_free (text);
}

char *
canopy_admins_format_time (gint64 time)
{
  g_autoptr (GDateTime) dt = g_date_time_new_from_unix_utc (time);

  return dt != NULL ? g_date_time_format (dt, "%Y-%m-%d %H:%M UTC") : g_strdup ("?");
}

static gboolean
is_hex (const char *text, gsize length)
{
  if (strlen (text) != length)
    return FALSE;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isxdigit (text[i]) || g_ascii_isupper (text[i]))
      return FALSE;
  return TRUE;
}

static gboolean
hex_decode (const char *hex, guint8 *out, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      int hi = g_ascii_xdigit_value (hex[2 * i]), lo = g_ascii_xdigit_value (hex[2 * i + 1]);

      if (hi < 0 || lo < 0)
        return FALSE;
      out[i] = (guint8) (hi << 4 | lo);
    }
  return TRUE;
}

static char *
hex_encode (const guint8 *data, gsize n)
{
  GString *out = g_string_sized_new (n * 2 + 1);

  for (gsize i = 0; i < n; i++)
    g_string_append_printf (out, "%02x", data[i]);
  return g_string_free (out, FALSE);
}

/* Names show in logs and audit entries and are keys: keep them plain. */
static gboolean
check_name (const char *name, GError **error)
{
  gsize length = name != NULL ? strlen (name) : 0;

  if (length == 0 || length > MAX_NAME_LENGTH || !g_ascii_isalnum (name[0]))
    goto bad;
  for (gsize i = 0; i < length; i++)
    if (!g_ascii_isalnum (name[i]) && strchr ("._-@", name[i]) == NULL)
      goto bad;
  return TRUE;
bad:
  g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_INVALID,
               _("\"%s\" is not an admin name; use 1 to %d letters, digits, \".\", \"_\", "
                 "\"-\" or \"@\", starting with a letter or digit"),
               name != NULL ? name : "", MAX_NAME_LENGTH);
  return FALSE;
}

/* One damaged record costs that admin or token, not the console. */
static void
warn_damaged_admin (const char *name)
{
  g_warning (_("The stored console admin \"%s\" is damaged and is ignored; remove it with "
               "\"canopyd admin-revoke\" and add the admin again"), name);
}

static void
warn_damaged_token (const char *token_id)
{
  g_warning (_("The stored console admin token \"%s\" is damaged and is ignored; remove it "
               "with \"canopyd admin-revoke\" and issue a new one with \"canopyd admin-add\""),
             token_id);
}

gboolean
canopy_admins_load_admin (const char *key, GVariant *value, gpointer user_data)
{
  CanopyAdmins *admins = user_data;
  CanopyAdmin *admin;
  const char *role;
  gint64 created;

  g_variant_get (value, "(&sx)", &role, &created);
  if (canopy_admin_role_from_string (role, NULL) == CANOPY_ADMIN_ROLE_NONE)
    {
      warn_damaged_admin (key);
      return TRUE;
    }
  admin = g_new0 (CanopyAdmin, 1);
  admin->name = g_strdup (key);
  admin->role = canopy_admin_role_from_string (role, NULL);
  admin->created = created / G_USEC_PER_SEC;
  g_hash_table_replace (admins->admins, admin->name, admin);
  return TRUE;
}

gboolean
canopy_admins_load_token (const char *key, GVariant *value, gpointer user_data)
{
  CanopyAdmins *admins = user_data;
  CanopyAdminToken *token;
  g_autoptr (GVariant) hash = NULL;
  gint64 created, expires;

  g_variant_get (value, "(s@ayxx)", NULL, &hash, &created, &expires);
  if (g_variant_get_size (hash) != sizeof token->hash)
    {
      warn_damaged_token (key);
      return TRUE;
    }
  token = g_new0 (CanopyAdminToken, 1);
  token->id = g_strdup (key);
  g_variant_get_child (value, 0, "s", &token->admin);
  memcpy (token->hash, g_variant_get_data (hash), sizeof token->hash);
  token->created = created / G_USEC_PER_SEC;
  token->expires = expires / G_USEC_PER_SEC;
  g_hash_table_replace (admins->tokens, token->id, token);
  return TRUE;
}

CanopyAdmins *
canopy_admins_load (CanopyBackend *backend, GError **error)
{
  g_autoptr (CanopyAdmins) admins = canopy_admins_new ();

  if (!canopy_backend_list (backend, CANOPY_RECORD_ADMIN, canopy_admins_load_admin, admins,
                            error)
      || !canopy_backend_list (backend, CANOPY_RECORD_ADMIN_TOKEN, canopy_admins_load_token,
                               admins, error))
    return NULL;
  return g_steal_pointer (&admins);
}

guint
canopy_admins_count (const CanopyAdmins *admins)
{
  return g_hash_table_size (admins->admins);
}

const CanopyAdmin *
canopy_admins_lookup (const CanopyAdmins *admins, const char *name)
{
  return g_hash_table_lookup (admins->admins, name);
}

const CanopyAdminToken *
canopy_admins_lookup_token (const CanopyAdmins *admins, const char *id)
{
  return g_hash_table_lookup (admins->tokens, id);
}

static int
compare_admins (gconstpointer a, gconstpointer b)
{
  return strcmp ((*(CanopyAdmin *const *) a)->name, (*(CanopyAdmin *const *) b)->name);
}

static int
compare_tokens (gconstpointer a, gconstpointer b)
{
  const CanopyAdminToken *x = *(CanopyAdminToken *const *) a, *y = *(CanopyAdminToken *const *) b;

  return x->created != y->created ? (x->created < y->created ? -1 : 1) : strcmp (x->id, y->id);
}

GPtrArray *
canopy_admins_list (const CanopyAdmins *admins)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer admin;

  g_hash_table_iter_init (&iter, admins->admins);
  while (g_hash_table_iter_next (&iter, NULL, &admin))
    g_ptr_array_add (list, admin);
  g_ptr_array_sort (list, compare_admins);
  return list;
}

GPtrArray *
canopy_admins_list_tokens (const CanopyAdmins *admins, const char *name)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter iter;
  CanopyAdminToken *token;

  g_hash_table_iter_init (&iter, admins->tokens);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &token))
    if (name == NULL || g_str_equal (token->admin, name))
      g_ptr_array_add (list, token);
  g_ptr_array_sort (list, compare_tokens);
  return list;
}

const CanopyAdmin *
canopy_admins_add (CanopyAdmins *admins, const char *name, CanopyAdminRole role, gint64 now,
                   GError **error)
{
  CanopyAdmin *admin;

  g_return_val_if_fail (role != CANOPY_ADMIN_ROLE_NONE, NULL);
  if (!check_name (name, error))
    return NULL;
  admin = g_hash_table_lookup (admins->admins, name);
  if (admin != NULL && admin->role != role)
    {
      g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_EXISTS,
                   _("The admin \"%s\" exists with the role %s; to change the role, revoke the "
                     "admin (\"canopyd admin-revoke %s\") and add it again"),
                   name, canopy_admin_role_to_string (admin->role), name);
      return NULL;
    }
  if (admin == NULL)
    {
      admin = g_new0 (CanopyAdmin, 1);
      admin->name = g_strdup (name);
      admin->role = role;
      admin->created = now;
      g_hash_table_replace (admins->admins, admin->name, admin);
    }
  return admin;
}

static gboolean
random_bytes (guint8 *out, gsize n, GError **error)
{
  int rc = gnutls_rnd (GNUTLS_RND_KEY, out, n);

  if (rc != 0)
    g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_RANDOM,
                 _("Cannot make a random token (%s); check the GnuTLS installation"),
                 gnutls_strerror (rc));
  return rc == 0;
}

const CanopyAdminToken *
canopy_admins_issue_token (CanopyAdmins *admins, const char *name, gint64 now, gint64 expires,
                           char **text, GError **error)
{
  guint8 id[CANOPY_ADMINS_TOKEN_ID_SIZE], secret[CANOPY_ADMINS_TOKEN_SECRET_SIZE];
  CanopyAdminToken *token;
  char *secret_hex;

  if (g_hash_table_lookup (admins->admins, name) == NULL)
    {
      g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_NOT_FOUND,
                   _("There is no admin \"%s\"; add it first (\"canopyd admin-add %s --role "
                     "ROLE\")"), name, name);
      return NULL;
    }
  if (!random_bytes (id, sizeof id, error) || !random_bytes (secret, sizeof secret, error))
    return NULL;
  token = g_new0 (CanopyAdminToken, 1);
  token->id = hex_encode (id, sizeof id);
  token->admin = g_strdup (name);
  token->created = now;
  token->expires = expires;
  /* The secret is 256 random bits: a plain hash is as strong as a slow one. */
  gnutls_hash_fast (GNUTLS_DIG_SHA256, secret, sizeof secret, token->hash);
  secret_hex = hex_encode (secret, sizeof secret);
  *text = g_strconcat (CANOPY_ADMINS_TOKEN_PREFIX, token->id, "_", secret_hex, NULL);
  canopy_admins_free_text (secret_hex);
  canopy_keys_wipe (secret, sizeof secret);
  g_hash_table_replace (admins->tokens, token->id, token);
  return token;
}

gboolean
canopy_admins_revoke (CanopyAdmins *admins, const char *what, GStrv *removed, GError **error)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  CanopyAdmin *admin = g_hash_table_lookup (admins->admins, what);
  CanopyAdminToken *token = g_hash_table_lookup (admins->tokens, what);

  if (admin != NULL)
    {
      g_autoptr (GPtrArray) tokens = canopy_admins_list_tokens (admins, admin->name);

      for (guint i = 0; i < tokens->len; i++)
        {
          CanopyAdminToken *t = tokens->pdata[i];

          g_ptr_array_add (keys, canopy_admins_token_key (t));
          g_hash_table_remove (admins->tokens, t->id);
        }
      g_ptr_array_add (keys, canopy_admins_admin_key (admin));
      g_hash_table_remove (admins->admins, what);
    }
  else if (token != NULL)
    {
      g_ptr_array_add (keys, canopy_admins_token_key (token));
      g_hash_table_remove (admins->tokens, what);
    }
  else
    {
      g_set_error (error, CANOPY_ADMINS_ERROR, CANOPY_ADMINS_ERROR_NOT_FOUND,
                   _("There is no admin or token \"%s\"; \"canopyd admin-list\" shows the "
                     "admins and their token IDs"), what);
      return FALSE;
    }
  g_ptr_array_add (keys, NULL);
  *removed = (GStrv) g_ptr_array_free (g_steal_pointer (&keys), FALSE);
  return TRUE;
}

char *
canopy_admins_admin_key (const CanopyAdmin *admin)
{
  return g_strconcat (CANOPY_ADMINS_ADMIN_KEY_PREFIX, admin->name, NULL);
}

GVariant *
canopy_admins_admin_value (const CanopyAdmin *admin)
{
  return g_variant_new (CANOPY_RECORD_ADMIN_TYPE, canopy_admin_role_to_string (admin->role),
                        admin->created * G_USEC_PER_SEC);
}

char *
canopy_admins_token_key (const CanopyAdminToken *token)
{
  return g_strconcat (CANOPY_ADMINS_TOKEN_KEY_PREFIX, token->id, NULL);
}

GVariant *
canopy_admins_token_value (const CanopyAdminToken *token)
{
  return g_variant_new ("(s@ayxx)", token->admin,
                        g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, token->hash,
                                                   sizeof token->hash, 1),
                        token->created * G_USEC_PER_SEC, token->expires * G_USEC_PER_SEC);
}

/* The record keys of @removed's references of one kind. */
static GPtrArray *
removed_keys (const char *const *removed, const char *prefix)
{
  GPtrArray *keys = g_ptr_array_new ();

  for (; removed != NULL && *removed != NULL; removed++)
    if (g_str_has_prefix (*removed, prefix))
      g_ptr_array_add (keys, (gpointer) (*removed + strlen (prefix)));
  g_ptr_array_add (keys, NULL);
  return keys;
}

gboolean
canopy_admins_save (CanopyBackend *backend, const CanopyAdmin *admin,
                    const CanopyAdminToken *token, const char *const *removed, GError **error)
{
  g_autoptr (GVariant) admin_value = NULL, token_value = NULL;
  g_autoptr (GPtrArray) tokens_gone = removed_keys (removed, CANOPY_ADMINS_TOKEN_KEY_PREFIX);
  g_autoptr (GPtrArray) admins_gone = removed_keys (removed, CANOPY_ADMINS_ADMIN_KEY_PREFIX);

  if (!canopy_backend_begin (backend, error))
    return FALSE;
  /* An admin before their token, tokens before their admin: the token
   * table's foreign key holds at every step. */
  if (admin != NULL)
    {
      CanopyRecord record = { admin->name, NULL };
      admin_value = g_variant_ref_sink (canopy_admins_admin_value (admin));
      record.value = admin_value;
      if (!canopy_backend_put (backend, CANOPY_RECORD_ADMIN, &record, 1, error))
        goto failed;
    }
  if (token != NULL)
    {
      CanopyRecord record = { token->id, NULL };
      token_value = g_variant_ref_sink (canopy_admins_token_value (token));
      record.value = token_value;
      if (!canopy_backend_put (backend, CANOPY_RECORD_ADMIN_TOKEN, &record, 1, error))
        goto failed;
    }
  if ((tokens_gone->len > 1
       && !canopy_backend_remove (backend, CANOPY_RECORD_ADMIN_TOKEN,
                                  (const char *const *) tokens_gone->pdata, error))
      || (admins_gone->len > 1
          && !canopy_backend_remove (backend, CANOPY_RECORD_ADMIN,
                                     (const char *const *) admins_gone->pdata, error)))
    goto failed;
  return canopy_backend_commit (backend, error);
failed:
  canopy_backend_rollback (backend);
  return FALSE;
}

CanopyAdminsCheck
canopy_admins_check (const CanopyAdmins *admins, const char *text, gint64 now,
                     const CanopyAdminToken **token)
{
  const gsize id_length = CANOPY_ADMINS_TOKEN_ID_SIZE * 2;
  const gsize secret_length = CANOPY_ADMINS_TOKEN_SECRET_SIZE * 2;
  const gsize prefix_length = strlen (CANOPY_ADMINS_TOKEN_PREFIX);
  g_autofree char *id = NULL;
  guint8 secret[CANOPY_ADMINS_TOKEN_SECRET_SIZE], hash[32];
  const CanopyAdminToken *found;
  gboolean match;

  *token = NULL;
  if (strlen (text) != prefix_length + id_length + 1 + secret_length
      || !g_str_has_prefix (text, CANOPY_ADMINS_TOKEN_PREFIX)
      || text[prefix_length + id_length] != '_')
    return CANOPY_ADMINS_CHECK_MALFORMED;
  id = g_strndup (text + prefix_length, id_length);
  if (!is_hex (id, id_length)
      || !hex_decode (text + prefix_length + id_length + 1, secret, sizeof secret))
    return CANOPY_ADMINS_CHECK_MALFORMED;
  found = g_hash_table_lookup (admins->tokens, id);
  if (found == NULL || g_hash_table_lookup (admins->admins, found->admin) == NULL)
    {
      canopy_keys_wipe (secret, sizeof secret);
      return CANOPY_ADMINS_CHECK_UNKNOWN;
    }
  gnutls_hash_fast (GNUTLS_DIG_SHA256, secret, sizeof secret, hash);
  match = gnutls_memcmp (hash, found->hash, sizeof hash) == 0;
  canopy_keys_wipe (secret, sizeof secret);
  canopy_keys_wipe (hash, sizeof hash);
  if (!match)
    return CANOPY_ADMINS_CHECK_WRONG;
  *token = found;
  if (found->expires != 0 && found->expires <= now)
    return CANOPY_ADMINS_CHECK_EXPIRED;
  return CANOPY_ADMINS_CHECK_OK;
}
