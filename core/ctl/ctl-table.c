/* Tables: one header line, then rows. A table wider than the terminal
 * loses its wide-only columns, then its widest cells are cut with an
 * ellipsis until every line fits; -o wide shows everything whole. */
#include "build-config.h"

#include "ctl/ctl-table.h"

#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define GAP 2
/* A column is not cut narrower than this. */
#define MIN_WIDTH 6

struct _CtlTable {
  guint columns;
  gboolean *wide_only;
  GPtrArray *rows; /* GStrv, the headers first */
};

CtlTable *
ctl_table_new (const char *const *headers)
{
  CtlTable *table = g_new0 (CtlTable, 1);

  table->columns = g_strv_length ((char **) headers);
  table->wide_only = g_new0 (gboolean, table->columns);
  table->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  g_ptr_array_add (table->rows, g_strdupv ((char **) headers));
  return table;
}

void
ctl_table_free (CtlTable *table)
{
  if (table == NULL)
    return;
  g_ptr_array_unref (table->rows);
  g_free (table->wide_only);
  g_free (table);
}

void
ctl_table_set_wide_only (CtlTable *table, guint column)
{
  g_return_if_fail (column < table->columns);
  table->wide_only[column] = TRUE;
}

void
ctl_table_add_row (CtlTable *table, const char *const *cells)
{
  char **row = g_new0 (char *, table->columns + 1);

  for (guint c = 0; c < table->columns; c++)
    {
      /* A cell is one line: a newline would break the columns. */
      row[c] = g_strdup (cells[c] != NULL && cells[c][0] != '\0' ? cells[c] : "-");
      g_strdelimit (row[c], "\n\t\r", ' ');
    }
  g_ptr_array_add (table->rows, row);
}

guint
ctl_table_get_n_rows (const CtlTable *table)
{
  return table->rows->len - 1;
}

guint
ctl_table_terminal_width (void)
{
  const char *columns = g_getenv ("COLUMNS");
  struct winsize size;

  if (columns != NULL && atoi (columns) > 0)
    return (guint) atoi (columns);
  if (isatty (STDOUT_FILENO) && ioctl (STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
    return size.ws_col;
  return 0;
}

char *
ctl_table_ellipsize (const char *text, glong width)
{
  g_autoptr (GString) out = NULL;
  const char *end;

  if (width <= 0 || g_utf8_strlen (text, -1) <= width)
    return g_strdup (text);
  end = g_utf8_offset_to_pointer (text, width - 1);
  out = g_string_new_len (text, end - text);
  g_string_append (out, "…");
  return g_string_free (g_steal_pointer (&out), FALSE);
}

char *
ctl_table_wrap (const char *text, guint indent, guint width)
{
  g_auto (GStrv) words = g_strsplit (text, " ", -1);
  g_autoptr (GString) out = g_string_new (NULL);
  glong line = 0;

  for (char **w = words; *w != NULL; w++)
    {
      glong length = g_utf8_strlen (*w, -1);

      if ((*w)[0] == '\0')
        continue;
      if (line > 0 && width > 0 && line + 1 + length > (glong) width)
        {
          g_string_append_c (out, '\n');
          line = 0;
        }
      if (line == 0)
        {
          for (guint i = 0; i < indent; i++)
            g_string_append_c (out, ' ');
          line = indent;
          /* A word longer than the line is cut rather than overflow it. */
          if (width > 0 && indent + length > width)
            {
              g_autofree char *cut = ctl_table_ellipsize (*w, (glong) (width - indent));
              g_string_append (out, cut);
              line = width;
              continue;
            }
        }
      else
        {
          g_string_append_c (out, ' ');
          line++;
        }
      g_string_append (out, *w);
      line += length;
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Narrows the widest columns until the line fits @width. */
static void
fit_widths (glong *widths, const gboolean *shown, guint columns, guint width)
{
  for (;;)
    {
      glong total = 0;
      gint widest = -1;

      for (guint c = 0; c < columns; c++)
        if (shown[c])
          {
            total += widths[c] + (total > 0 ? GAP : 0);
            if (widths[c] > MIN_WIDTH && (widest < 0 || widths[c] > widths[widest]))
              widest = (gint) c;
          }
      if (total <= (glong) width || widest < 0)
        return;
      widths[widest]--;
    }
}

static void
print_names (const CtlTable *table)
{
  for (guint r = 1; r < table->rows->len; r++)
    g_print ("%s\n", ((char **) g_ptr_array_index (table->rows, r))[0]);
}

void
ctl_table_print (const CtlTable *table, const CtlTableStyle *style)
{
  g_autofree glong *widths = g_new0 (glong, table->columns);
  g_autofree gboolean *shown = g_new0 (gboolean, table->columns);
  guint last = 0;

  if (style->names_only)
    {
      print_names (table);
      return;
    }
  for (guint c = 0; c < table->columns; c++)
    {
      shown[c] = style->wide || !table->wide_only[c];
      if (shown[c])
        last = c;
    }
  for (guint r = 0; r < table->rows->len; r++)
    {
      char **row = g_ptr_array_index (table->rows, r);
      for (guint c = 0; c < table->columns; c++)
        widths[c] = MAX (widths[c], g_utf8_strlen (row[c], -1));
    }
  if (!style->wide && style->width > 0)
    fit_widths (widths, shown, table->columns, style->width);
  for (guint r = style->no_headers ? 1 : 0; r < table->rows->len; r++)
    {
      char **row = g_ptr_array_index (table->rows, r);
      g_autoptr (GString) line = g_string_new (NULL);

      for (guint c = 0; c < table->columns; c++)
        {
          g_autofree char *cell = NULL;

          if (!shown[c])
            continue;
          cell = style->wide ? g_strdup (row[c]) : ctl_table_ellipsize (row[c], widths[c]);
          g_string_append (line, cell);
          if (c < last)
            for (glong pad = g_utf8_strlen (cell, -1); pad < widths[c] + GAP; pad++)
              g_string_append_c (line, ' ');
        }
      g_print ("%s\n", line->str);
    }
}
