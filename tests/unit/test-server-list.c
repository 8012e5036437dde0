/* The agent's list of servers: names expanded to their addresses, every
 * address tried once per round, and the one that worked tried first. */
#include "build-config.h"

#include "tests/canopy-test.h"
#include "agent/server-list.h"

static void
on_resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
resolve (CanopyServerList *list, GError **error)
{
  GAsyncResult *result = NULL;
  gboolean ok;

  canopy_server_list_resolve_async (list, NULL, on_resolved, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  ok = canopy_server_list_resolve_finish (list, result, error);
  g_object_unref (result);
  return ok;
}

static GPtrArray *
servers (const char *first_host, int first_port, ...)
{
  GPtrArray *array = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_server_address_free);
  va_list args;

  g_ptr_array_add (array, canopy_server_address_new (first_host, (guint16) first_port));
  va_start (args, first_port);
  for (const char *host = va_arg (args, const char *); host != NULL;
       host = va_arg (args, const char *))
    g_ptr_array_add (array, canopy_server_address_new (host, (guint16) va_arg (args, int)));
  va_end (args);
  return array;
}

static void
test_each_address_once_per_round (void)
{
  g_autoptr (GPtrArray) configured = servers ("127.0.0.2", 7001, "127.0.0.3", 7002,
                                              "127.0.0.2", 7001, NULL);
  g_autoptr (CanopyServerList) list = canopy_server_list_new (configured);
  g_autoptr (GError) error = NULL;

  CU_ASSERT_FATAL (resolve (list, &error));
  /* The same address twice is one server. */
  CU_ASSERT_EQUAL (canopy_server_list_size (list), 2);
  CU_ASSERT_STRING_EQUAL (canopy_server_list_current (list)->host, "127.0.0.2");
  CU_ASSERT_TRUE (canopy_server_list_advance (list));
  CU_ASSERT_STRING_EQUAL (canopy_server_list_current (list)->host, "127.0.0.3");
  CU_ASSERT_EQUAL (canopy_server_list_current (list)->port, 7002);
  /* Both failed: the round is over. */
  CU_ASSERT_FALSE (canopy_server_list_advance (list));
}

static void
test_the_one_that_worked_first (void)
{
  g_autoptr (GPtrArray) configured = servers ("127.0.0.2", 7001, "127.0.0.3", 7002,
                                              "127.0.0.4", 7003, NULL);
  g_autoptr (CanopyServerList) list = canopy_server_list_new (configured);
  g_autoptr (GError) error = NULL;

  CU_ASSERT_FATAL (resolve (list, &error));
  CU_ASSERT_TRUE (canopy_server_list_advance (list));
  CU_ASSERT_TRUE (canopy_server_list_advance (list));
  canopy_server_list_succeeded (list);
  /* After a success every other address gets its turn again. */
  CU_ASSERT_TRUE (canopy_server_list_advance (list));
  CU_ASSERT_TRUE (canopy_server_list_advance (list));
  CU_ASSERT_FATAL (resolve (list, &error));
  CU_ASSERT_STRING_EQUAL (canopy_server_list_current (list)->host, "127.0.0.4");
}

static void
test_names_keep_their_name (void)
{
  g_autoptr (GPtrArray) configured = servers ("localhost", 7001, NULL);
  g_autoptr (CanopyServerList) list = canopy_server_list_new (configured);
  g_autoptr (GError) error = NULL;
  g_autoptr (GInetAddress) address = NULL;

  CU_ASSERT_FATAL (resolve (list, &error));
  CU_ASSERT (canopy_server_list_size (list) >= 1);
  for (guint i = 0; i < canopy_server_list_size (list); i++)
    {
      address = g_inet_address_new_from_string (canopy_server_list_current (list)->host);
      CU_ASSERT (address != NULL && g_inet_address_get_is_loopback (address));
      CU_ASSERT_STRING_EQUAL (canopy_server_list_current_name (list), "localhost");
      g_clear_object (&address);
      canopy_server_list_advance (list);
    }
}

CANOPY_TEST_SUITE (server_list, "server-list", NULL, NULL,
                   { "each address once per round", test_each_address_once_per_round },
                   { "the one that worked first", test_the_one_that_worked_first },
                   { "names keep their name", test_names_keep_their_name })
