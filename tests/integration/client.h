/* A hand-made peer over the real TCP transport, for tests that send a
 * server or an agent what no agent of this version would send, and count
 * what comes back. */
#pragma once

#include "tests/canopy-test.h"
#include "lib/config.h"
#include "lib/plugin-loader.h"
#include "lib/transport.h"
#include "lib/wire.h"

#define CANOPY_TEST_CLIENT_KINDS (CANOPY_WIRE_BUSY + 1)

typedef struct {
  CanopyPluginLoader *loader; /* one each: a loader loads a plugin once */
  CanopyConfig *config;
  CanopyTransport *transport;
  CanopyTransportConnection *conn;
  gboolean failed; /* the connection could not be made */
  gboolean closed;
  guint counts[CANOPY_TEST_CLIENT_KINDS];
  GVariant *last[CANOPY_TEST_CLIENT_KINDS]; /* the last body of each kind */
  GBytes *data; /* the payload of the last DATA */
} CanopyTestClient;

/**
 * canopy_test_client_connect:
 * @key_path: the shared key file of the server it connects to
 * @id: the device ID it claims in the handshake
 *
 * Connects to 127.0.0.1:@port; fails the test if it cannot.
 */
void canopy_test_client_connect (CanopyTestClient *client, const char *key_path, const char *id,
                                 guint16 port);

/* The same, for a connection that may fail (a wrong key): whether it was made. */
gboolean canopy_test_client_try_connect (CanopyTestClient *client, const char *key_path,
                                         const char *id, guint16 port);

void canopy_test_client_send (CanopyTestClient *client, CanopyWireKind kind, GVariant *body);

/* Runs the main context until @client holds @n messages of @kind, for 20 s
 * at most, or until the connection is closed. */
gboolean canopy_test_client_wait (CanopyTestClient *client, CanopyWireKind kind, guint n);

/* Runs the main context until the connection is closed, for 20 s at most. */
gboolean canopy_test_client_wait_closed (CanopyTestClient *client);

void canopy_test_client_clear (CanopyTestClient *client);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CanopyTestClient, canopy_test_client_clear)
