/* canopy SDK: everything a plugin may include.
 * Vendors build against these headers and canopy-plugin.pc alone. */
#pragma once

#include <canopy/version.h>
#include <canopy/plugin.h>
#include <canopy/config-node.h>
#include <canopy/backend.h>
#include <canopy/backend-cluster.h>
#include <canopy/record-table.h>
#include <canopy/admin-settings.h>
#include <canopy/keys.h>
#include <canopy/transport.h>
#include <canopy/watch.h>
