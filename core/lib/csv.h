/* CSV as spreadsheet programs write and read it: RFC 4180 quoting, CRLF
 * or LF line ends, an optional byte order mark. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * canopy_csv_append_row:
 * @out: where to write
 * @fields: (array length=n_fields): the row's fields, UTF-8
 * @n_fields: how many
 *
 * Quotes a field when it holds a comma, quote or line break, or begins
 * with white space, so that reading the row back gives the same fields.
 * A field that begins with a formula character (= + - @ tab CR, after
 * any single quotes) is written quoted with a single quote before it, so
 * a spreadsheet program shows it as text and never runs it as a formula
 * (CSV injection); canopy_csv_read_record() strips that quote again.
 */
void canopy_csv_append_row (GString *out, const char *const *fields, gsize n_fields);

#define CANOPY_CSV_ERROR (canopy_csv_error_quark ())
GQuark canopy_csv_error_quark (void);

typedef enum {
  CANOPY_CSV_ERROR_QUOTE, /* a quoted field is not closed */
} CanopyCsvError;

typedef struct {
  const char *p;
  guint line;
} CanopyCsvReader;

void canopy_csv_reader_init (CanopyCsvReader *reader, const char *text);

/**
 * canopy_csv_read_record:
 * @reader: a reader
 * @fields: (element-type utf8): replaced by the record's fields
 * @record_line: (out): the line the record starts on
 * @error: an error naming the line and column
 *
 * Reads one record. Quoted fields may hold commas, quotes ("") and line
 * breaks. A field that begins with a single quote followed by a formula
 * character (after any further single quotes) loses that first quote:
 * it is the guard canopy_csv_append_row() writes, or the one a
 * spreadsheet user typed to mean "text".
 *
 * Returns: %FALSE at the end of the text or on error.
 */
gboolean canopy_csv_read_record (CanopyCsvReader *reader, GPtrArray *fields,
                                 guint *record_line, GError **error);

G_END_DECLS
