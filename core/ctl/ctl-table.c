/* Tables: one header line, then rows; the last column is not padded so a
 * long explanation wraps in the terminal instead of pushing others. */
#include "build-config.h"

#include "ctl/ctl-table.h"

struct _CtlTable {
  guint columns;
  GPtrArray *rows; /* GStrv, the headers first */
};

CtlTable *
ctl_table_new (const char *const *headers)
{
  CtlTable *table = g_new0 (CtlTable, 1);

  table->columns = g_strv_length ((char **) headers);
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
  g_free (table);
}

void
ctl_table_add_row (CtlTable *table, const char *const *cells)
{
  char **row = g_new0 (char *, table->columns + 1);

  for (guint c = 0; c < table->columns; c++)
    row[c] = g_strdup (cells[c] != NULL ? cells[c] : "-");
  g_ptr_array_add (table->rows, row);
}

void
ctl_table_print (const CtlTable *table)
{
  g_autofree glong *widths = g_new0 (glong, table->columns);

  for (guint r = 0; r < table->rows->len; r++)
    {
      char **row = g_ptr_array_index (table->rows, r);
      for (guint c = 0; c < table->columns; c++)
        widths[c] = MAX (widths[c], g_utf8_strlen (row[c], -1));
    }
  for (guint r = 0; r < table->rows->len; r++)
    {
      char **row = g_ptr_array_index (table->rows, r);
      g_autoptr (GString) line = g_string_new (NULL);

      for (guint c = 0; c < table->columns; c++)
        {
          g_string_append (line, row[c]);
          if (c + 1 < table->columns)
            for (glong pad = g_utf8_strlen (row[c], -1); pad < widths[c] + 2; pad++)
              g_string_append_c (line, ' ');
        }
      g_print ("%s\n", line->str);
    }
}
