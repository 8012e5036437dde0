/* canopy's fuzz targets: one function per parser of outside input, run by
 * libFuzzer (make fuzz) and replayed over the corpus by make check. */
#pragma once

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

/* The public half of tests/fuzz/fuzz-key.pem, a key made for these tests
 * only: the manifest and licence targets check signatures with it, and the
 * valid seeds are signed with it. */
#define CANOPY_FUZZ_PUBLIC_KEY "Gzt32hYhZKRDzMphYvONwtg1BbVuSIqITIuvzg/FX4E="

/* Each takes any bytes and returns whether its parser accepted them (FALSE:
 * refused with an error); a bug shows as a crash, a sanitizer report, a
 * failed g_assert on an invariant or a GLib critical. */
typedef gboolean (*CanopyFuzzFunc) (const uint8_t *data, size_t size);

gboolean canopy_fuzz_wire (const uint8_t *data, size_t size);
gboolean canopy_fuzz_manifest (const uint8_t *data, size_t size);
gboolean canopy_fuzz_manifest_key (const uint8_t *data, size_t size);
gboolean canopy_fuzz_config_server (const uint8_t *data, size_t size);
gboolean canopy_fuzz_config_agent (const uint8_t *data, size_t size);
gboolean canopy_fuzz_topology (const uint8_t *data, size_t size);
gboolean canopy_fuzz_licence (const uint8_t *data, size_t size);
gboolean canopy_fuzz_settings (const uint8_t *data, size_t size);

/* Criticals and warnings are bugs when outside input causes them. */
void canopy_fuzz_init (void);

G_END_DECLS
