/* A hand-made peer over the real TCP transport (see client.h). */
#include "build-config.h"

#include "tests/integration/client.h"
#include "lib/keys.h"
#include "lib/shared-key.h"

#define WAIT_S 20

static void
on_message (CanopyTransportConnection *conn, GBytes *header, GBytes *payload,
            gpointer user_data)
{
  CanopyTestClient *client = user_data;
  CanopyWireKind kind;
  GVariant *body = canopy_wire_decode (header, &kind, NULL);

  if (body == NULL || kind >= CANOPY_TEST_CLIENT_KINDS)
    {
      g_clear_pointer (&body, g_variant_unref);
      return;
    }
  client->counts[kind]++;
  g_clear_pointer (&client->last[kind], g_variant_unref);
  client->last[kind] = body;
  if (kind == CANOPY_WIRE_DATA && payload != NULL)
    {
      g_clear_pointer (&client->data, g_bytes_unref);
      client->data = g_bytes_ref (payload);
    }
}

static void
on_closed (CanopyTransportConnection *conn, const GError *error, gpointer user_data)
{
  ((CanopyTestClient *) user_data)->closed = TRUE;
}

static void
on_nothing (CanopyTransportConnection *conn, gpointer user_data)
{
}

static const CanopyTransportEvents client_events = {
  .incoming = on_nothing,
  .message = on_message,
  .drained = on_nothing,
  .closed = on_closed,
};

static void
on_connected (GObject *source, GAsyncResult *result, gpointer user_data)
{
  CanopyTestClient *client = user_data;

  client->conn = canopy_transport_connect_finish (client->transport, result, NULL);
  client->failed = client->conn == NULL;
}

/* Runs the main context until @done says so, for WAIT_S at most. */
static gboolean
run_until (CanopyTestClient *client, gboolean (*done) (CanopyTestClient *, gconstpointer),
           gconstpointer data)
{
  gint64 deadline = g_get_monotonic_time () + canopy_test_timeout (WAIT_S) * G_USEC_PER_SEC;

  while (!done (client, data) && g_get_monotonic_time () < deadline)
    if (!g_main_context_iteration (NULL, FALSE))
      g_usleep (1000);
  return done (client, data);
}

static gboolean
is_connected (CanopyTestClient *client, gconstpointer data)
{
  return client->conn != NULL || client->failed;
}

gboolean
canopy_test_client_try_connect (CanopyTestClient *client, const char *key_path, const char *id,
                                guint16 port)
{
  g_autoptr (CanopySharedKey) key = canopy_shared_key_load (key_path, NULL);
  const CanopyConfigNode *element;
  g_autoptr (GError) error = NULL;
  const CanopyPlugin *tcp;
  CanopyTransportCredentials creds;

  client->loader = canopy_plugin_loader_new (NULL);
  client->config = canopy_config_load_data (
    "<agent><server host='127.0.0.1'/><transport plugin='tcp'/></agent>", -1, "client.xml",
    CANOPY_SCHEMA_AGENT, NULL);
  element = canopy_config_node_get_child (canopy_config_get_root (client->config), "transport");
  tcp = canopy_plugin_loader_load_for_node (client->loader, element,
                                            CANOPY_PLUGIN_KIND_TRANSPORT, &error);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_FATAL (key != NULL && tcp != NULL
                   && canopy_keys_make_transport_credentials (key, id, &creds, &error));
  client->transport = canopy_transport_new (tcp, element, &creds, NULL, &client_events, client,
                                            &error);
  canopy_keys_wipe (creds.secret, sizeof creds.secret);
  CANOPY_ASSERT_NO_ERROR (error);
  CU_ASSERT_PTR_NOT_NULL_FATAL (client->transport);
  canopy_transport_connect_async (client->transport, "127.0.0.1", port, NULL, on_connected,
                                  client);
  run_until (client, is_connected, NULL);
  return client->conn != NULL;
}

void
canopy_test_client_connect (CanopyTestClient *client, const char *key_path, const char *id,
                            guint16 port)
{
  CU_ASSERT_FATAL (canopy_test_client_try_connect (client, key_path, id, port));
}

void
canopy_test_client_send (CanopyTestClient *client, CanopyWireKind kind, GVariant *body)
{
  CU_ASSERT (canopy_wire_send (client->conn, kind, body, NULL, NULL));
}

static gboolean
has_messages (CanopyTestClient *client, gconstpointer data)
{
  const guint *want = data; /* kind, count */

  return client->counts[want[0]] >= want[1] || client->closed;
}

gboolean
canopy_test_client_wait (CanopyTestClient *client, CanopyWireKind kind, guint n)
{
  guint want[2] = { kind, n };

  g_return_val_if_fail (kind < CANOPY_TEST_CLIENT_KINDS, FALSE);
  run_until (client, has_messages, want);
  return client->counts[kind] >= n;
}

static gboolean
is_closed (CanopyTestClient *client, gconstpointer data)
{
  return client->closed;
}

gboolean
canopy_test_client_wait_closed (CanopyTestClient *client)
{
  return run_until (client, is_closed, NULL);
}

void
canopy_test_client_clear (CanopyTestClient *client)
{
  g_clear_pointer (&client->transport, canopy_transport_free);
  for (guint i = 0; i < CANOPY_TEST_CLIENT_KINDS; i++)
    g_clear_pointer (&client->last[i], g_variant_unref);
  g_clear_pointer (&client->data, g_bytes_unref);
  g_clear_pointer (&client->config, canopy_config_free);
  g_clear_pointer (&client->loader, canopy_plugin_loader_free);
}
