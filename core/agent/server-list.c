/* The servers an agent may enrol with. A cluster of canopyd shares one
 * database, so any of them will do: the agent stays with the one that
 * works and moves to the next at the first sign of failure, without the
 * pause it takes when every server failed. Names are resolved here, not by
 * the transport, so that a name with several addresses is several servers. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-agent-uplink"

#include "agent/server-list.h"
#include "lib/i18n.h"

typedef struct {
  CanopyServerAddress address; /* an IP address */
  char *name;                  /* as configured */
} Target;

struct _CanopyServerList {
  GPtrArray *configured; /* CanopyServerAddress */
  GPtrArray *targets;    /* Target */
  guint current;
  guint tried; /* addresses given up on since the last success or resolution */
  CanopyServerAddress *preferred; /* (nullable) the address that last worked */
};

/* A resolution under way: its own targets, so that the list is touched
 * only by finish(), on the caller's side. */
typedef struct {
  const GPtrArray *configured;
  guint next;
  GPtrArray *targets;
  GString *failures;
} Resolution;

CanopyServerAddress *
canopy_server_address_new (const char *host, guint16 port)
{
  CanopyServerAddress *address = g_new0 (CanopyServerAddress, 1);

  address->host = g_strdup (host);
  address->port = port;
  return address;
}

void
canopy_server_address_free (CanopyServerAddress *address)
{
  if (address == NULL)
    return;
  g_free (address->host);
  g_free (address);
}

static void
target_free (Target *target)
{
  g_free (target->address.host);
  g_free (target->name);
  g_free (target);
}

static void
resolution_free (Resolution *resolution)
{
  g_ptr_array_unref (resolution->targets);
  g_string_free (resolution->failures, TRUE);
  g_free (resolution);
}

static void
add_target (GPtrArray *targets, const char *address, guint16 port, const char *name)
{
  Target *target;

  for (guint i = 0; i < targets->len; i++)
    {
      Target *seen = g_ptr_array_index (targets, i);

      if (seen->address.port == port && g_strcmp0 (seen->address.host, address) == 0)
        return;
    }
  target = g_new0 (Target, 1);
  target->address.host = g_strdup (address);
  target->address.port = port;
  target->name = g_strdup (name);
  g_ptr_array_add (targets, target);
}

CanopyServerList *
canopy_server_list_new (const GPtrArray *configured)
{
  CanopyServerList *list = g_new0 (CanopyServerList, 1);

  list->configured = g_ptr_array_new_with_free_func ((GDestroyNotify) canopy_server_address_free);
  for (guint i = 0; i < configured->len; i++)
    {
      const CanopyServerAddress *address = g_ptr_array_index (configured, i);

      g_ptr_array_add (list->configured,
                       canopy_server_address_new (address->host, address->port));
    }
  list->targets = g_ptr_array_new_with_free_func ((GDestroyNotify) target_free);
  return list;
}

void
canopy_server_list_free (CanopyServerList *list)
{
  if (list == NULL)
    return;
  g_ptr_array_unref (list->configured);
  g_ptr_array_unref (list->targets);
  canopy_server_address_free (list->preferred);
  g_free (list);
}

static void resolve_next (GTask *task);

static void
on_resolved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr (GTask) task = user_data;
  Resolution *resolution = g_task_get_task_data (task);
  const CanopyServerAddress *configured =
    g_ptr_array_index (resolution->configured, resolution->next);
  g_autoptr (GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);

  if (g_task_return_error_if_cancelled (task))
    {
      g_resolver_free_addresses (addresses);
      return;
    }
  if (addresses == NULL)
    g_string_append_printf (resolution->failures, "%s\"%s\" (%s)",
                            resolution->failures->len > 0 ? ", " : "", configured->host,
                            error->message);
  for (GList *l = addresses; l != NULL; l = l->next)
    {
      g_autofree char *text = g_inet_address_to_string (l->data);

      add_target (resolution->targets, text, configured->port, configured->host);
    }
  g_resolver_free_addresses (addresses);
  resolution->next++;
  resolve_next (g_steal_pointer (&task));
}

/* Takes @task. */
static void
resolve_next (GTask *task)
{
  Resolution *resolution = g_task_get_task_data (task);
  const CanopyServerAddress *configured;
  g_autoptr (GInetAddress) literal = NULL;
  g_autoptr (GResolver) resolver = NULL;

  for (; resolution->next < resolution->configured->len; resolution->next++)
    {
      configured = g_ptr_array_index (resolution->configured, resolution->next);
      literal = g_inet_address_new_from_string (configured->host);
      if (literal == NULL)
        {
          resolver = g_resolver_get_default ();
          g_resolver_lookup_by_name_async (resolver, configured->host,
                                           g_task_get_cancellable (task), on_resolved, task);
          return;
        }
      add_target (resolution->targets, configured->host, configured->port, configured->host);
      g_clear_object (&literal);
    }
  if (resolution->targets->len == 0)
    g_task_return_new_error (task, G_RESOLVER_ERROR, G_RESOLVER_ERROR_NOT_FOUND,
                             _("None of the canopy servers in <server> resolves to an address: "
                               "%s. Check the names in the agent's configuration and its DNS "
                               "settings, or give IP addresses"),
                             resolution->failures->str);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
canopy_server_list_resolve_async (CanopyServerList *list, GCancellable *cancellable,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Resolution *resolution = g_new0 (Resolution, 1);

  g_task_set_source_tag (task, canopy_server_list_resolve_async);
  resolution->configured = list->configured;
  resolution->targets = g_ptr_array_new_with_free_func ((GDestroyNotify) target_free);
  resolution->failures = g_string_new (NULL);
  g_task_set_task_data (task, resolution, (GDestroyNotify) resolution_free);
  resolve_next (task);
}

gboolean
canopy_server_list_resolve_finish (CanopyServerList *list, GAsyncResult *result, GError **error)
{
  Resolution *resolution = g_task_get_task_data (G_TASK (result));

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  if (resolution->failures->len > 0)
    g_message (_("Some canopy servers in <server> do not resolve: %s; trying the others"),
               resolution->failures->str);
  g_ptr_array_unref (list->targets);
  list->targets = g_ptr_array_ref (resolution->targets);
  list->current = 0;
  list->tried = 0;
  for (guint i = 0; list->preferred != NULL && i < list->targets->len; i++)
    {
      const Target *target = g_ptr_array_index (list->targets, i);

      if (target->address.port == list->preferred->port
          && g_strcmp0 (target->address.host, list->preferred->host) == 0)
        list->current = i;
    }
  return TRUE;
}

const CanopyServerAddress *
canopy_server_list_current (const CanopyServerList *list)
{
  const Target *target = g_ptr_array_index (list->targets, list->current);

  return &target->address;
}

const char *
canopy_server_list_current_name (const CanopyServerList *list)
{
  const Target *target = g_ptr_array_index (list->targets, list->current);

  return target->name;
}

gboolean
canopy_server_list_advance (CanopyServerList *list)
{
  if (list->targets->len == 0)
    return FALSE;
  list->current = (list->current + 1) % list->targets->len;
  list->tried++;
  return list->tried < list->targets->len;
}

void
canopy_server_list_succeeded (CanopyServerList *list)
{
  const CanopyServerAddress *current = canopy_server_list_current (list);

  list->tried = 0;
  canopy_server_address_free (list->preferred);
  list->preferred = canopy_server_address_new (current->host, current->port);
}

guint
canopy_server_list_size (const CanopyServerList *list)
{
  return list->targets->len;
}
