/* The transport scaffold's frames: what both transports put on the wire,
 * read back byte by byte, and each rule a frame header can break. */
#include "build-config.h"

#include <string.h>

#include "tests/canopy-test.h"
#include "plugins/transport-common/transport-common.h"

/* Only the limits matter to the frame rules. */
static CanopyTransportCommon *
limits_new (void)
{
  CanopyTransportCommon *transport = g_new0 (CanopyTransportCommon, 1);
  transport->max_header = 1024;
  transport->max_payload = 4096;
  return transport;
}

/* Feeds @len bytes to @in as a peer might, @step at a time. */
static CanopyTransportInFrameStatus
feed (CanopyTransportInFrame *in, const CanopyTransportCommon *transport, const guint8 *data,
      gsize len, gsize step, gboolean hello_allowed, const char **what)
{
  CanopyTransportInFrameStatus status = CANOPY_TRANSPORT_IN_FRAME_MORE;

  while (len > 0 && status == CANOPY_TRANSPORT_IN_FRAME_MORE)
    {
      gsize want;
      guint8 *target = canopy_transport_common_in_frame_target (in, &want);
      gsize n = MIN (MIN (want, step), len);

      memcpy (target, data, n);
      data += n;
      len -= n;
      status = canopy_transport_common_in_frame_advance (in, n, transport, hello_allowed,
                                                         !hello_allowed, what);
    }
  return status;
}

/* The bytes a message frame is made of, header and payload after it. */
static GByteArray *
wire_bytes (guint8 kind, const char *header, const char *payload)
{
  g_autoptr (GBytes) body = payload != NULL ? g_bytes_new (payload, strlen (payload)) : NULL;
  CanopyTransportOutFrame out = { 0 };
  GByteArray *wire = g_byte_array_new ();

  canopy_transport_common_out_frame_init (&out, kind, header, strlen (header), body);
  g_byte_array_append (wire, out.prefix, out.prefix_len);
  if (out.payload_data != NULL)
    g_byte_array_append (wire, out.payload_data, out.total - out.prefix_len);
  canopy_transport_common_out_frame_clear (&out);
  return wire;
}

static void
test_layout (void)
{
  g_autoptr (GByteArray) wire = wire_bytes (CANOPY_TRANSPORT_COMMON_FRAME_MESSAGE, "hdr", "payload");
  const guint8 expected[] = { 'C', 'N', 'P', 'Y', 1, 0, 0, 0, 0, 0, 0, 3,
                              0,   0,   0,   0,   0, 0, 0, 7, 'h', 'd', 'r' };

  CU_ASSERT_EQUAL (wire->len, sizeof expected + 7);
  CU_ASSERT_EQUAL (memcmp (wire->data, expected, sizeof expected), 0);
  CU_ASSERT_EQUAL (memcmp (wire->data + sizeof expected, "payload", 7), 0);
}

static void
test_round_trip (void)
{
  g_autofree CanopyTransportCommon *transport = limits_new ();
  g_autoptr (GByteArray) wire = wire_bytes (CANOPY_TRANSPORT_COMMON_FRAME_MESSAGE, "hdr", "payload");

  for (gsize step = 1; step <= wire->len; step++)
    {
      CanopyTransportInFrame in = { 0 };
      g_autoptr (GBytes) header = NULL;
      g_autoptr (GBytes) payload = NULL;
      const char *what = NULL;

      CU_ASSERT_EQUAL (feed (&in, transport, wire->data, wire->len, step, FALSE, &what),
                       CANOPY_TRANSPORT_IN_FRAME_WHOLE);
      canopy_transport_common_in_frame_take (&in, &header, &payload);
      CU_ASSERT_EQUAL (g_bytes_get_size (header), 3);
      CU_ASSERT_EQUAL (g_bytes_get_size (payload), 7);
      CU_ASSERT_EQUAL (in.frame_got, 0);
      canopy_transport_common_in_frame_clear (&in);
    }
}

/* Each rule, broken alone, is named; nothing past the header is read. */
static void
test_rules (void)
{
  static const struct {
    gsize offset;
    guint8 value;
    gboolean hello_allowed;
    const char *what;
  } cases[] = {
    { 0, 'X', FALSE, "bad magic" },
    { 4, 2, FALSE, "unsupported version" },
    { 6, 1, FALSE, "reserved bits set" },
    { 5, 7, FALSE, "unknown frame kind" },
    { 5, CANOPY_TRANSPORT_COMMON_FRAME_HELLO, FALSE, "unexpected frame kind" },
    { 0, 'C', TRUE, "unexpected frame kind" },
    { 10, 0x10, FALSE, "header length out of bounds" },
    { 18, 0x20, FALSE, "payload length out of bounds" },
  };
  g_autofree CanopyTransportCommon *transport = limits_new ();

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GByteArray) wire = wire_bytes (CANOPY_TRANSPORT_COMMON_FRAME_MESSAGE, "hdr",
                                                "payload");
      CanopyTransportInFrame in = { 0 };
      const char *what = NULL;

      wire->data[cases[i].offset] = cases[i].value;
      CU_ASSERT_EQUAL (feed (&in, transport, wire->data, CANOPY_TRANSPORT_COMMON_FRAME_SIZE, 5,
                             cases[i].hello_allowed, &what),
                       CANOPY_TRANSPORT_IN_FRAME_MALFORMED);
      CU_ASSERT_STRING_EQUAL (what, cases[i].what);
      CU_ASSERT_PTR_NULL (in.header);
      canopy_transport_common_in_frame_clear (&in);
    }
}

static void
test_device_ids (void)
{
  g_autofree char *longest = g_strnfill (CANOPY_TRANSPORT_COMMON_MAX_ID_LENGTH, 'a');
  g_autofree char *too_long = g_strnfill (CANOPY_TRANSPORT_COMMON_MAX_ID_LENGTH + 1, 'a');

  CU_ASSERT_TRUE (canopy_transport_common_id_is_valid ((const guint8 *) "device-1", 8));
  CU_ASSERT_TRUE (canopy_transport_common_id_is_valid ((const guint8 *) longest, strlen (longest)));
  CU_ASSERT_FALSE (canopy_transport_common_id_is_valid ((const guint8 *) "", 0));
  CU_ASSERT_FALSE (canopy_transport_common_id_is_valid ((const guint8 *) too_long,
                                                        strlen (too_long)));
  CU_ASSERT_FALSE (canopy_transport_common_id_is_valid ((const guint8 *) "a b", 3));
  CU_ASSERT_FALSE (canopy_transport_common_id_is_valid ((const guint8 *) "caf\xc3\xa9", 5));
}

CANOPY_TEST_SUITE (transport_common, "transport-common", NULL, NULL,
                   { "frame layout", test_layout },
                   { "round trip in any pieces", test_round_trip },
                   { "frame rules", test_rules },
                   { "device IDs", test_device_ids })
