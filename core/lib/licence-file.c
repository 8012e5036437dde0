/* Signed licence files: a few "key: value" lines an admin can read, then
 * the issuer's signature over exactly those bytes. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-licence-file"

#include "lib/licence-file.h"
#include "lib/i18n.h"

#include <string.h>

#define HEADER "canopy licence 1\n"
#define SIGNATURE_KEY "signature: "
#define MAX_SEATS 10000000

G_DEFINE_QUARK (canopy-licence-file-error-quark, canopy_licence_file_error)

void
canopy_licence_file_free (CanopyLicenceFile *licence)
{
  if (licence == NULL)
    return;
  g_free (licence->customer);
  g_clear_pointer (&licence->expires, g_date_time_unref);
  g_free (licence);
}

static char *
format_body (const CanopyLicenceFile *licence)
{
  g_autofree char *expires = licence->expires != NULL
                               ? g_date_time_format (licence->expires, "%Y-%m-%d")
                               : g_strdup ("never");

  return g_strdup_printf (HEADER "customer: %s\nseats: %u\nexpires: %s\n", licence->customer,
                          licence->seats, expires);
}

char *
canopy_licence_file_write (const CanopyLicenceFile *licence, const CanopySigningKey *issuer,
                           GError **error)
{
  g_autofree char *body = NULL;
  g_autoptr (GBytes) signature = NULL;
  g_autofree char *encoded = NULL;

  g_return_val_if_fail (licence->customer != NULL && strchr (licence->customer, '\n') == NULL,
                        NULL);
  body = format_body (licence);
  signature = canopy_signing_key_sign (issuer, (const guint8 *) body, strlen (body), error);
  if (signature == NULL)
    return NULL;
  encoded = g_base64_encode (g_bytes_get_data (signature, NULL), g_bytes_get_size (signature));
  return g_strconcat (body, SIGNATURE_KEY, encoded, "\n", NULL);
}

static gboolean
format_error (GError **error, guint line, const char *what)
{
  g_set_error (error, CANOPY_LICENCE_FILE_ERROR, CANOPY_LICENCE_FILE_ERROR_FORMAT,
               _("Licence file, line %u: %s; use the file exactly as the issuer sent it"), line,
               what);
  return FALSE;
}

/* The value of "@key: value" on @line, or NULL. */
static const char *
field_value (const char *line, const char *key)
{
  gsize n = strlen (key);

  if (strncmp (line, key, n) != 0 || line[n] != ':' || line[n + 1] != ' ')
    return NULL;
  return line + n + 2;
}

static GDateTime *
parse_day (const char *text)
{
  g_autofree char *iso = g_strconcat (text, "T23:59:59Z", NULL);

  if (strlen (text) != 10)
    return NULL;
  return g_date_time_new_from_iso8601 (iso, NULL);
}

static gboolean
parse_fields (char **lines, CanopyLicenceFile *licence, GError **error)
{
  const char *customer = field_value (lines[1], "customer");
  const char *seats = lines[2] != NULL ? field_value (lines[2], "seats") : NULL;
  const char *expires = lines[2] && lines[3] ? field_value (lines[3], "expires") : NULL;
  guint64 n;

  if (customer == NULL || *customer == '\0')
    return format_error (error, 2, _("\"customer:\" is missing"));
  if (seats == NULL || !g_ascii_string_to_unsigned (seats, 10, 1, MAX_SEATS, &n, NULL))
    return format_error (error, 3, _("\"seats:\" is missing or not a number of devices"));
  if (expires == NULL)
    return format_error (error, 4, _("\"expires:\" is missing"));
  licence->customer = g_strdup (customer);
  licence->seats = (guint) n;
  if (!g_str_equal (expires, "never"))
    {
      licence->expires = parse_day (expires);
      if (licence->expires == NULL)
        return format_error (error, 4, _("\"expires:\" is not a date (YYYY-MM-DD) or \"never\""));
    }
  return TRUE;
}

CanopyLicenceFile *
canopy_licence_file_read (const char *text, const CanopyVerifyKey *issuer, GError **error)
{
  const char *sig_line = strstr (text, "\n" SIGNATURE_KEY);
  g_autofree char *body = NULL;
  g_autofree char *encoded = NULL;
  g_autofree guchar *signature = NULL;
  gsize sig_len = 0;
  g_auto (GStrv) lines = NULL;
  g_autoptr (CanopyLicenceFile) licence = g_new0 (CanopyLicenceFile, 1);

  if (!g_str_has_prefix (text, HEADER))
    return format_error (error, 1, _("this is not a canopy licence file")), NULL;
  if (sig_line == NULL)
    return format_error (error, 5, _("the signature is missing")), NULL;
  body = g_strndup (text, (gsize) (sig_line - text) + 1);
  encoded = g_strstrip (g_strdup (sig_line + 1 + strlen (SIGNATURE_KEY)));
  signature = g_base64_decode (encoded, &sig_len);
  if (!canopy_verify_key_verify (issuer, (const guint8 *) body, strlen (body), signature, sig_len))
    {
      g_set_error (error, CANOPY_LICENCE_FILE_ERROR, CANOPY_LICENCE_FILE_ERROR_SIGNATURE,
                   _("The licence file's signature does not match: it was altered, or it was "
                     "issued with another key than the one configured. Ask the issuer for the "
                     "file again"));
      return NULL;
    }
  lines = g_strsplit (body, "\n", -1);
  if (g_strv_length (lines) != 5 || !parse_fields (lines, licence, error))
    {
      if (error != NULL && *error == NULL)
        format_error (error, 5, _("unexpected lines"));
      return NULL;
    }
  return g_steal_pointer (&licence);
}

gboolean
canopy_licence_file_is_expired (const CanopyLicenceFile *licence, GDateTime *now)
{
  return licence->expires != NULL && g_date_time_compare (now, licence->expires) > 0;
}
