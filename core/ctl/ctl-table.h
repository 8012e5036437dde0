/* Readable tables for canopyctl's default output: columns padded to the
 * widest cell, counted in characters, not bytes, and fitted to the
 * terminal by cutting the widest cells with an ellipsis. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CtlTable CtlTable;

/* How a table is printed: -o wide, --no-headers, -o name and the width. */
typedef struct {
  gboolean wide;       /* every column, nothing cut */
  gboolean no_headers; /* rows only, for scripts */
  gboolean names_only; /* -o name: the first column, one a line */
  guint width;         /* the line width to fit; 0: no limit */
} CtlTableStyle;

/* @headers: the column titles, ended by NULL. */
CtlTable *ctl_table_new (const char *const *headers);
void ctl_table_free (CtlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlTable, ctl_table_free)

/* Column @column is shown only with -o wide. */
void ctl_table_set_wide_only (CtlTable *table, guint column);

/* @cells: one per column; NULL shows as "-". */
void ctl_table_add_row (CtlTable *table, const char *const *cells);

/* The number of rows, headers not counted. */
guint ctl_table_get_n_rows (const CtlTable *table);

/* Prints to standard output. */
void ctl_table_print (const CtlTable *table, const CtlTableStyle *style);

/* The width of the terminal: $COLUMNS, else standard output's terminal,
 * else 0 (no limit: a file or a pipe gets whole lines). */
guint ctl_table_terminal_width (void);

/* @text cut to @width characters, its end an ellipsis when cut. */
char *ctl_table_ellipsize (const char *text, glong width);

/* @text wrapped at spaces into lines of @width characters at most, each
 * after @indent spaces; 0: no wrapping. */
char *ctl_table_wrap (const char *text, guint indent, guint width);

G_END_DECLS
