/* The wire protocol above the transports: a fixed frame header (magic,
 * version, kind, body length) and a GVariant body of the kind's type.
 * Chunk data travels as the transport message's payload, never here. */
#pragma once

#include <glib.h>
#include <canopy/transport.h>

G_BEGIN_DECLS

#define CANOPY_WIRE_ERROR (canopy_wire_error_quark ())
GQuark canopy_wire_error_quark (void);

typedef enum {
  CANOPY_WIRE_ERROR_MAGIC,    /* not a canopy frame */
  CANOPY_WIRE_ERROR_VERSION,  /* a protocol version this build does not speak */
  CANOPY_WIRE_ERROR_KIND,     /* unknown message kind */
  CANOPY_WIRE_ERROR_LENGTH,   /* lengths do not add up, or exceed the limit */
  CANOPY_WIRE_ERROR_BODY,     /* body not of the kind's type or not in normal form */
} CanopyWireError;

#define CANOPY_WIRE_VERSION 1
/* Bodies are small: manifests are the largest, and travel in chunks. */
#define CANOPY_WIRE_MAX_BODY (1024 * 1024)
#define CANOPY_WIRE_HEADER_SIZE 12

typedef enum {
  /* agent ↔ server */
  CANOPY_WIRE_HELLO = 1,
  CANOPY_WIRE_WELCOME = 2,
  CANOPY_WIRE_REFUSED = 3,
  CANOPY_WIRE_HEARTBEAT = 4,
  CANOPY_WIRE_ASSIGNMENT = 5,
  CANOPY_WIRE_PROGRESS = 6,
  CANOPY_WIRE_DONE = 7,
  CANOPY_WIRE_FAILED = 8,
  CANOPY_WIRE_WITHDRAW = 9,   /* server → agent: stop a deployment */
  CANOPY_WIRE_WITHDRAWN = 10, /* agent → server: what it did */
  CANOPY_WIRE_UNINSTALL = 11, /* server → agent: remove a deployment's package */
  CANOPY_WIRE_UNINSTALLED = 12, /* agent → server: what it did */
  CANOPY_WIRE_WAN_CLASS = 13,  /* server → agent: how politely a lead crosses the WAN */
  CANOPY_WIRE_WAN_PACING = 14, /* agent → server: a background lead's rate and delay */
  /* agent ↔ agent */
  CANOPY_WIRE_PEER_HELLO = 32,
  CANOPY_WIRE_HAVE = 33,
  CANOPY_WIRE_REQUEST = 34,
  CANOPY_WIRE_DATA = 35,
  CANOPY_WIRE_CANCEL = 36,
  CANOPY_WIRE_BUSY = 37,
  /* agent ↔ agent, by chunk hash across contents */
  CANOPY_WIRE_CHUNK_QUERY = 38,
  CANOPY_WIRE_CHUNK_HAVE = 39,
  CANOPY_WIRE_CHUNK_REQUEST = 40,
} CanopyWireKind;

/* Named in a peer-hello's content IDs by an agent that answers
 * chunk-query and chunk-request: agents without it take it for a content
 * they do not hold and ignore it, so they are never sent those kinds. */
#define CANOPY_WIRE_FEATURE_CHUNKS_BY_HASH "+chunks-by-hash"
/* SHA-256s in one chunk-query: 32 KiB of hashes, well inside a frame. */
#define CANOPY_WIRE_MAX_QUERY_HASHES 1024
#define CANOPY_WIRE_HASH_SIZE 32

/* Why the server refused an agent (the REFUSED body's first field). */
typedef enum {
  CANOPY_WIRE_REFUSED_KEY_MISMATCH = 1,
  CANOPY_WIRE_REFUSED_VERSION = 2,
  CANOPY_WIRE_REFUSED_NOT_IN_GROUP = 3,
  CANOPY_WIRE_REFUSED_NO_LICENCE = 4,
  CANOPY_WIRE_REFUSED_NO_OFFICE = 5,
  CANOPY_WIRE_REFUSED_INVALID = 6, /* a device ID or address that cannot be one */
} CanopyWireRefusal;

/* What an agent did when its server withdrew a deployment (the WITHDRAWN
 * body's second field). */
typedef enum {
  CANOPY_WIRE_WITHDRAWN_NOTHING = 0,   /* it had nothing of the deployment under way */
  CANOPY_WIRE_WITHDRAWN_STOPPED = 1,   /* it stopped fetching; nothing was installed */
  CANOPY_WIRE_WITHDRAWN_INSTALLED = 2, /* it had installed the package before */
} CanopyWireWithdrawn;

/* What an agent did when its server asked it to remove a deployment's
 * package (the UNINSTALLED body's second field). */
typedef enum {
  CANOPY_WIRE_UNINSTALLED_REMOVED = 0,       /* the file it installed, unchanged, is gone */
  CANOPY_WIRE_UNINSTALLED_CHANGED = 1,       /* the file was changed since: left alone */
  CANOPY_WIRE_UNINSTALLED_ABSENT = 2,        /* the file is no longer there */
  CANOPY_WIRE_UNINSTALLED_NOT_INSTALLED = 3, /* canopy installed nothing of it here */
  CANOPY_WIRE_UNINSTALLED_FAILED = 4,        /* it could not check or remove it */
} CanopyWireUninstalled;

/**
 * canopy_wire_kind_type:
 * @kind: a message kind
 *
 * Returns: (nullable): the GVariant type of its body, or %NULL if @kind is
 *   not a kind this version knows.
 */
const GVariantType *canopy_wire_kind_type (CanopyWireKind kind);

/** canopy_wire_kind_to_string: Returns: the kind's name, for logs. */
const char *canopy_wire_kind_to_string (CanopyWireKind kind);

/**
 * canopy_wire_encode:
 * @kind: the message kind
 * @body: (transfer floating): a value of the kind's type
 *
 * Returns: (transfer full): the frame: header then the body's bytes.
 */
GBytes *canopy_wire_encode (CanopyWireKind kind, GVariant *body);

/**
 * canopy_wire_decode:
 * @frame: bytes received as a transport message's header
 * @kind: (out): the message kind
 * @error: says what is wrong with the frame; the peer that sent it should
 *   be disconnected
 *
 * Checks the magic, version, kind and lengths, then reads the body with the
 * kind's type and refuses it unless it is in normal form, so that nothing
 * read from a peer is ever interpreted in two ways.
 *
 * Returns: (transfer full): the body, or %NULL.
 */
GVariant *canopy_wire_decode (GBytes *frame, CanopyWireKind *kind, GError **error);

/**
 * canopy_wire_send:
 * @body: (transfer floating): a value of @kind's type
 * @payload: (nullable): chunk data, sent after the frame without a copy
 *
 * Encodes the frame and queues it on @conn; see canopy_transport_send().
 */
gboolean canopy_wire_send (CanopyTransportConnection *conn, CanopyWireKind kind, GVariant *body,
                           GBytes *payload, GError **error);

/**
 * canopy_wire_compare_versions:
 *
 * Compares dotted version numbers numerically ("0.10.2" > "0.9.7");
 * missing parts count as 0.
 *
 * Returns: <0, 0 or >0 as @a is older than, the same as, or newer than @b.
 */
int canopy_wire_compare_versions (const char *a, const char *b);

/**
 * canopy_wire_read_chunk_query:
 * @body: a decoded chunk-query body
 * @content_id: (out): the requester's content, which labels the answer
 * @first: (out): the index in it of the first hash
 * @hashes: (out) (transfer full): the SHA-256s, 32 bytes each, back to back
 *
 * Checks what the type cannot: a content ID, 1 to
 * %CANOPY_WIRE_MAX_QUERY_HASHES hashes of 32 bytes each, and indices
 * that do not wrap around.
 *
 * Returns: whether @body is a chunk-query to answer; else @error (in
 *   %CANOPY_WIRE_ERROR_BODY) says what is wrong with it.
 */
gboolean canopy_wire_read_chunk_query (GVariant *body, const char **content_id, guint32 *first,
                                       GBytes **hashes, GError **error);

/**
 * canopy_wire_read_chunk_request:
 * @body: a decoded chunk-request body
 * @content_id: (out): the requester's content, which labels the answer
 * @index: (out): the chunk's index in it
 * @hash: (out caller-allocates): the chunk's SHA-256
 *
 * Returns: whether @body names a chunk by a SHA-256 of 32 bytes in a
 *   content; else @error (in %CANOPY_WIRE_ERROR_BODY) says what is wrong.
 */
gboolean canopy_wire_read_chunk_request (GVariant *body, const char **content_id,
                                         guint32 *index, guint8 hash[CANOPY_WIRE_HASH_SIZE],
                                         GError **error);

G_END_DECLS
