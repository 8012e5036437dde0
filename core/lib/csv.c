/* CSV as spreadsheet programs write and read it, shared by every import,
 * export and report. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-csv"

#include "lib/csv.h"
#include "lib/i18n.h"

#include <string.h>

G_DEFINE_QUARK (canopy-csv-error-quark, canopy_csv_error)

/* Characters that make a spreadsheet program read a cell as a formula
 * (CSV injection): "=HYPERLINK(...)" in an office name must stay text. */
#define FORMULA_STARTS "=+-@\t\r"

/* Whether @value is guarded on output: it starts with a formula
 * character, after any number of single quotes. A value that already
 * starts with a quote before one gets another, so reading strips exactly
 * one and every value round-trips. */
static gboolean
needs_guard (const char *value)
{
  while (*value == '\'')
    value++;
  return *value != '\0' && strchr (FORMULA_STARTS, *value) != NULL;
}

static void
append_field (GString *out, const char *value)
{
  gboolean guard = needs_guard (value);

  if (!guard && strpbrk (value, ",\"\n\r") == NULL && !g_ascii_isspace (value[0]))
    {
      g_string_append (out, value);
      return;
    }
  g_string_append_c (out, '"');
  if (guard)
    g_string_append_c (out, '\'');
  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

void
canopy_csv_append_row (GString *out, const char *const *fields, gsize n_fields)
{
  for (gsize i = 0; i < n_fields; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      append_field (out, fields[i] != NULL ? fields[i] : "");
    }
  g_string_append (out, "\r\n");
}

void
canopy_csv_reader_init (CanopyCsvReader *reader, const char *text)
{
  /* Spreadsheet programs start UTF-8 files with a byte order mark. */
  reader->p = g_str_has_prefix (text, "\xef\xbb\xbf") ? text + 3 : text;
  reader->line = 1;
}

gboolean
canopy_csv_read_record (CanopyCsvReader *reader, GPtrArray *fields, guint *record_line, GError **error)
{
  GString *field = g_string_new (NULL);
  gboolean quoted = FALSE, was_quoted = FALSE;

  g_ptr_array_set_size (fields, 0);
  if (*reader->p == '\0')
    {
      g_string_free (field, TRUE);
      return FALSE;
    }
  *record_line = reader->line;
  for (;;)
    {
      char c = *reader->p;

      if (quoted)
        {
          if (c == '\0')
            {
              g_set_error (error, CANOPY_CSV_ERROR, CANOPY_CSV_ERROR_QUOTE,
                           _("line %u, column %u: a quoted field is not closed; add the "
                             "closing \""), *record_line, fields->len + 1);
              g_string_free (field, TRUE);
              return FALSE;
            }
          reader->p++;
          if (c == '"' && *reader->p == '"')
            {
              g_string_append_c (field, '"');
              reader->p++;
            }
          else if (c == '"')
            quoted = FALSE;
          else
            {
              if (c == '\n')
                reader->line++;
              g_string_append_c (field, c);
            }
          continue;
        }
      if (c == '"' && field->len == 0 && !was_quoted)
        {
          quoted = was_quoted = TRUE;
          reader->p++;
          continue;
        }
      if (c == ',' || c == '\n' || c == '\0' || (c == '\r' && reader->p[1] == '\n'))
        {
          /* The guard our own export put before a formula character. */
          if (field->str[0] == '\'' && needs_guard (field->str))
            g_string_erase (field, 0, 1);
          g_ptr_array_add (fields, g_string_free (field, FALSE));
          if (c == ',')
            {
              reader->p++;
              field = g_string_new (NULL);
              was_quoted = FALSE;
              continue;
            }
          reader->p += c == '\r' ? 2 : (c == '\n' ? 1 : 0);
          if (c != '\0')
            reader->line++;
          return TRUE;
        }
      g_string_append_c (field, c);
      reader->p++;
    }
}

