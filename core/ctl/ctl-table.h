/* Readable tables for canopyctl's default output: columns padded to the
 * widest cell, counted in characters, not bytes. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _CtlTable CtlTable;

/* @headers: the column titles, ended by NULL. */
CtlTable *ctl_table_new (const char *const *headers);
void ctl_table_free (CtlTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlTable, ctl_table_free)

/* @cells: one per column; NULL shows as "-". */
void ctl_table_add_row (CtlTable *table, const char *const *cells);

/* Prints to standard output. */
void ctl_table_print (const CtlTable *table);

G_END_DECLS
