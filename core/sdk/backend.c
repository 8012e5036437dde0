/* The SDK's backend names: the error domain a backend plugin reports in,
 * and the names of the record and log kinds it stores. */
#include "build-config.h"

#define G_LOG_DOMAIN "canopy-backend"

#include <canopy/backend.h>

static const char *const record_names[CANOPY_N_RECORD_KINDS] = {
  "device", "office", "setting", "content", "deployment", "progress", "activation",
  "admin", "admin-token",
};

static const char *const log_names[CANOPY_N_LOG_KINDS] = { "transfer", "audit" };

G_DEFINE_QUARK (canopy-backend-error-quark, canopy_backend_error)

const char *
canopy_record_kind_to_string (CanopyRecordKind kind)
{
  return kind < CANOPY_N_RECORD_KINDS ? record_names[kind] : "unknown";
}

const char *
canopy_log_kind_to_string (CanopyLogKind kind)
{
  return kind < CANOPY_N_LOG_KINDS ? log_names[kind] : "unknown";
}

