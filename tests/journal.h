/* A journal socket for tests: binds a datagram socket in a test directory,
 * as journald's /run/systemd/journal/socket, and parses what canopy's
 * programs send there in journald's native protocol (the memfd form
 * included), so tests read the fields an admin filters on. */
#pragma once

#include <glib.h>

typedef struct _CanopyTestJournal CanopyTestJournal;

/* Listens at DIR/journal.socket; reads on a thread of its own. */
CanopyTestJournal *canopy_test_journal_new (const char *dir);
void canopy_test_journal_free (CanopyTestJournal *journal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (CanopyTestJournal, canopy_test_journal_free)

/* The socket's path, for CANOPY_JOURNAL_SOCKET. */
const char *canopy_test_journal_get_path (const CanopyTestJournal *journal);

/**
 * canopy_test_journal_find:
 * @...: pairs of field name and value the entries must have, %NULL-ended
 *
 * Returns: (transfer container) (element-type GHashTable): the entries
 *   received so far with every field given, each a field → value table.
 */
GPtrArray *canopy_test_journal_find (CanopyTestJournal *journal, ...) G_GNUC_NULL_TERMINATED;

/* The number of datagrams that did not parse as the native protocol. */
guint canopy_test_journal_count_errors (CanopyTestJournal *journal);

/* Parses one datagram of the native protocol; NULL if it is not one. */
GHashTable *canopy_test_journal_parse (const char *data, gsize length);
