/* A journal socket for tests; see journal.h. */
#include "build-config.h"

#include "tests/journal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct _CanopyTestJournal {
  char *path;
  int fd;
  GThread *thread;
  GMutex lock;
  GPtrArray *entries; /* GHashTable */
  guint errors;
};

GHashTable *
canopy_test_journal_parse (const char *data, gsize length)
{
  g_autoptr (GHashTable) fields = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *p = data, *end = data + length;

  while (p < end)
    {
      const char *nl = memchr (p, '\n', end - p);
      const char *eq;

      if (nl == NULL)
        return NULL;
      eq = memchr (p, '=', nl - p);
      if (eq != NULL)
        {
          g_hash_table_insert (fields, g_strndup (p, eq - p), g_strndup (eq + 1, nl - eq - 1));
          p = nl + 1;
          continue;
        }
      /* KEY\n, a 64-bit little-endian length, the value, \n */
      {
        guint64 n;
        const char *value = nl + 1 + sizeof n;

        if (value > end)
          return NULL;
        memcpy (&n, nl + 1, sizeof n);
        n = GUINT64_FROM_LE (n);
        if (n > (guint64) (end - value) || value + n >= end || value[n] != '\n')
          return NULL;
        g_hash_table_insert (fields, g_strndup (p, nl - p), g_strndup (value, n));
        p = value + n + 1;
      }
    }
  return g_hash_table_size (fields) > 0 ? g_steal_pointer (&fields) : NULL;
}

/* One datagram, or the memfd a big entry comes in. */
static gssize
receive (int fd, char *buffer, gsize size, char **big, gsize *big_length)
{
  union {
    struct cmsghdr header;
    char space[CMSG_SPACE (sizeof (int))];
  } control;
  struct iovec iov = { buffer, size };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  gssize n;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = &control;
  msg.msg_controllen = sizeof control;
  n = recvmsg (fd, &msg, MSG_CMSG_CLOEXEC);
  *big = NULL;
  for (cmsg = CMSG_FIRSTHDR (&msg); n >= 0 && cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
      {
        int memfd;
        struct stat st;

        memcpy (&memfd, CMSG_DATA (cmsg), sizeof memfd);
        if (fstat (memfd, &st) == 0)
          {
            *big = g_malloc (st.st_size + 1);
            *big_length = pread (memfd, *big, st.st_size, 0) == st.st_size ? st.st_size : 0;
          }
        close (memfd);
      }
  return n;
}

static gpointer
read_thread (gpointer user_data)
{
  CanopyTestJournal *journal = user_data;
  g_autofree char *buffer = g_malloc (1024 * 1024);

  for (;;)
    {
      g_autofree char *big = NULL;
      gsize big_length = 0;
      gssize n = receive (journal->fd, buffer, 1024 * 1024, &big, &big_length);
      GHashTable *entry;

      if (n < 0 && errno == EINTR)
        continue;
      /* A zero-length datagram without a memfd is the end (see _free). */
      if (n < 0 || (n == 0 && big == NULL))
        break;
      entry = big != NULL ? canopy_test_journal_parse (big, big_length)
                          : canopy_test_journal_parse (buffer, n);
      g_mutex_lock (&journal->lock);
      if (entry != NULL)
        g_ptr_array_add (journal->entries, entry);
      else
        journal->errors++;
      g_mutex_unlock (&journal->lock);
    }
  return NULL;
}

CanopyTestJournal *
canopy_test_journal_new (const char *dir)
{
  CanopyTestJournal *journal = g_new0 (CanopyTestJournal, 1);
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  int size = 8 * 1024 * 1024;

  journal->path = g_build_filename (dir, "journal.socket", NULL);
  g_assert (strlen (journal->path) < sizeof address.sun_path);
  strcpy (address.sun_path, journal->path);
  journal->fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  g_assert (journal->fd >= 0);
  /* Room for bursts while the thread parses, as journald has. */
  setsockopt (journal->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  unlink (journal->path);
  g_assert (bind (journal->fd, (struct sockaddr *) &address, sizeof address) == 0);
  g_mutex_init (&journal->lock);
  journal->entries = g_ptr_array_new_with_free_func ((GDestroyNotify) g_hash_table_unref);
  journal->thread = g_thread_new ("test-journal", read_thread, journal);
  return journal;
}

void
canopy_test_journal_free (CanopyTestJournal *journal)
{
  struct sockaddr_un address = { .sun_family = AF_UNIX };
  int fd;

  if (journal == NULL)
    return;
  /* An empty datagram tells the thread to stop. */
  strcpy (address.sun_path, journal->path);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sendto (fd, "", 0, 0, (struct sockaddr *) &address, sizeof address);
  close (fd);
  g_thread_join (journal->thread);
  close (journal->fd);
  unlink (journal->path);
  g_ptr_array_unref (journal->entries);
  g_mutex_clear (&journal->lock);
  g_free (journal->path);
  g_free (journal);
}

const char *
canopy_test_journal_get_path (const CanopyTestJournal *journal)
{
  return journal->path;
}

GPtrArray *
canopy_test_journal_find (CanopyTestJournal *journal, ...)
{
  GPtrArray *found = g_ptr_array_new_with_free_func ((GDestroyNotify) g_hash_table_unref);
  g_autoptr (GPtrArray) wanted = g_ptr_array_new ();
  const char *s;
  va_list args;

  va_start (args, journal);
  while ((s = va_arg (args, const char *)) != NULL)
    g_ptr_array_add (wanted, (gpointer) s);
  va_end (args);
  g_mutex_lock (&journal->lock);
  for (guint i = 0; i < journal->entries->len; i++)
    {
      GHashTable *entry = g_ptr_array_index (journal->entries, i);
      gboolean match = TRUE;

      for (guint w = 0; match && w + 1 < wanted->len; w += 2)
        match = g_strcmp0 (g_hash_table_lookup (entry, wanted->pdata[w]), wanted->pdata[w + 1])
                == 0;
      if (match)
        g_ptr_array_add (found, g_hash_table_ref (entry));
    }
  g_mutex_unlock (&journal->lock);
  return found;
}

guint
canopy_test_journal_count_errors (CanopyTestJournal *journal)
{
  guint n;

  g_mutex_lock (&journal->lock);
  n = journal->errors;
  g_mutex_unlock (&journal->lock);
  return n;
}
