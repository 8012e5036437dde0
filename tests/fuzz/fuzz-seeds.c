/* Writes the binary seeds of the fuzz corpus: a frame of every wire kind
 * and manifests signed with tests/fuzz/fuzz-key.pem. Run by hand
 * (make fuzz-seeds) when the formats change; its output is in the tree. */
#include "build-config.h"

#include "lib/manifest.h"
#include "lib/wire.h"

#include <stdio.h>
#include <stdlib.h>

static const struct {
  CanopyWireKind kind;
  const char *text;
} wire_seeds[] = {
  { CANOPY_WIRE_HELLO,
    "('device-1', '0.1.0', [('198.18.10.5', byte 24), ('2001:db8::5', 64)], "
    "['Finance', 'Branch'], uint16 7444, 'pc-finance-01')" },
  { CANOPY_WIRE_WELCOME, "('3f1c0e7a-5d9b-4c1e-9e6f-2b8d7c4a1f00', '0.1.0', uint32 30, "
                         "'North', b'\\x01\\x02')" },
  { CANOPY_WIRE_REFUSED, "(uint32 2, 'unsupported version', '0.1.0', '0.1.0')" },
  { CANOPY_WIRE_HEARTBEAT, "(int64 1700000000, uint64 12345)" },
  { CANOPY_WIRE_ASSIGNMENT,
    "('content-1', b'manifest', uint32 1, [(uint32 1, 'device-2', '198.18.10.6', uint16 7444)], "
    "'/opt/pkg.bin', uint64 7)" },
  { CANOPY_WIRE_PROGRESS, "('content-1', uint32 3, [uint64 1, 2], [('office', uint64 10, "
                          "uint32 1)])" },
  { CANOPY_WIRE_DONE, "('content-1', b'sha')" },
  { CANOPY_WIRE_FAILED, "('content-1', 'the disk is full')" },
  { CANOPY_WIRE_PEER_HELLO, "('device-1', ['content-1', 'content-2'])" },
  { CANOPY_WIRE_HAVE, "('content-1', [byte 0xff, 0x01])" },
  { CANOPY_WIRE_REQUEST, "('content-1', uint32 0)" },
  { CANOPY_WIRE_DATA, "('content-1', uint32 4)" },
  { CANOPY_WIRE_CANCEL, "('content-1', uint32 4)" },
  { CANOPY_WIRE_BUSY, "('', uint32 0)" },
  { CANOPY_WIRE_CHUNK_QUERY,
    "('content-1', uint32 0, [b'0123456789abcdef0123456789abcdef', "
    "b'fedcba9876543210fedcba9876543210'])" },
  { CANOPY_WIRE_CHUNK_HAVE, "('content-1', uint32 0, [byte 0x01])" },
  { CANOPY_WIRE_CHUNK_REQUEST, "('content-1', uint32 1, b'fedcba9876543210fedcba9876543210')" },
};

static void
write_seed (const char *dir, const char *name, GBytes *bytes)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr (GError) error = NULL;

  g_mkdir_with_parents (dir, 0755);
  if (!g_file_set_contents (path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                            &error))
    {
      fprintf (stderr, "%s\n", error->message);
      exit (1);
    }
}

static GBytes *
manifest_seed (gsize size, guint32 chunk_size, const CanopySigningKey *key)
{
  g_autofree guint8 *data = g_malloc (size + 1);
  g_autoptr (GInputStream) stream = NULL;
  g_autoptr (CanopyManifest) manifest = NULL;

  guint32 x = 2463534242u;

  /* Content-defined chunks need bytes that do not repeat to be cut. */
  for (gsize i = 0; i < size; i++)
    {
      x ^= x << 13, x ^= x >> 17, x ^= x << 5;
      data[i] = chunk_size == CANOPY_MANIFEST_CONTENT_DEFINED ? (guint8) x : (guint8) (i * 7);
    }
  stream = g_memory_input_stream_new_from_data (g_memdup2 (data, size), size, g_free);
  manifest = canopy_manifest_build (stream, "package", "1.0", chunk_size, NULL, NULL);
  g_assert (manifest != NULL);
  if (key != NULL)
    g_assert (canopy_manifest_sign (manifest, key, NULL));
  return canopy_manifest_serialize (manifest);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CanopySigningKey) key = NULL;
  g_autofree char *wire_dir = NULL;
  g_autofree char *manifest_dir = NULL;
  g_autofree char *manifest_key_dir = NULL;

  if (argc != 3)
    {
      fprintf (stderr, "usage: %s KEY.pem CORPUS-DIR\n", argv[0]);
      return 2;
    }
  key = canopy_signing_key_load (argv[1], &error);
  if (key == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  wire_dir = g_build_filename (argv[2], "wire", NULL);
  manifest_dir = g_build_filename (argv[2], "manifest", NULL);
  manifest_key_dir = g_build_filename (argv[2], "manifest-key", NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (wire_seeds); i++)
    {
      CanopyWireKind kind = wire_seeds[i].kind;
      g_autoptr (GVariant) body =
        g_variant_parse (canopy_wire_kind_type (kind), wire_seeds[i].text, NULL, NULL, &error);
      g_autoptr (GBytes) frame = NULL;
      g_autofree char *name = NULL;

      if (body == NULL)
        {
          fprintf (stderr, "%s: %s\n", canopy_wire_kind_to_string (kind), error->message);
          return 1;
        }
      frame = canopy_wire_encode (kind, body);
      name = g_strdup_printf ("%s.bin", canopy_wire_kind_to_string (kind));
      write_seed (wire_dir, name, frame);
    }

  {
    g_autoptr (GBytes) small = manifest_seed (1000, 256, key);
    g_autoptr (GBytes) empty = manifest_seed (0, 1024, key);
    g_autoptr (GBytes) exact = manifest_seed (4096, 1024, key);
    g_autoptr (GBytes) unsigned_ = manifest_seed (3000, 1024, NULL);

    write_seed (manifest_key_dir, "signed-small.bin", small);
    write_seed (manifest_key_dir, "signed-empty.bin", empty);
    write_seed (manifest_key_dir, "signed-exact-chunks.bin", exact);
    write_seed (manifest_key_dir, "unsigned.bin", unsigned_);
    write_seed (manifest_dir, "signed-small.bin", small);
    write_seed (manifest_dir, "signed-empty.bin", empty);
    write_seed (manifest_dir, "unsigned.bin", unsigned_);
  }
  {
    /* Format 2: several content-defined chunks, and one short package. */
    g_autoptr (GBytes) cdc = manifest_seed (3 * 1024 * 1024, CANOPY_MANIFEST_CONTENT_DEFINED, key);
    g_autoptr (GBytes) cdc_small = manifest_seed (1000, CANOPY_MANIFEST_CONTENT_DEFINED, key);
    g_autoptr (GBytes) cdc_unsigned =
      manifest_seed (3 * 1024 * 1024, CANOPY_MANIFEST_CONTENT_DEFINED, NULL);

    write_seed (manifest_key_dir, "signed-content-defined.bin", cdc);
    write_seed (manifest_key_dir, "signed-content-defined-small.bin", cdc_small);
    write_seed (manifest_dir, "signed-content-defined.bin", cdc);
    write_seed (manifest_dir, "unsigned-content-defined.bin", cdc_unsigned);
  }
  return 0;
}
