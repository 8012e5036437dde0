#!/bin/sh
# Builds tests/sdk/vendor-backend.c with nothing but the installed SDK
# (pkg-config canopy-plugin) and has the installed canopyd load it.
# Usage: vendor-plugin-test.sh INSTALLED-CANOPYD SDK-TEST-DIR
set -eu
canopyd=$1
srcdir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cflags=$(pkg-config --cflags canopy-plugin)
libs=$(pkg-config --libs canopy-plugin)
plugindir=$(pkg-config --variable=plugindir canopy-plugin)
echo "SDK: cflags=$cflags libs=$libs plugindir=$plugindir"

${CC:-cc} -Wall -Werror -fPIC -shared $cflags -o "$work/canopy-vendor.so" \
    "$srcdir/vendor-backend.c" $libs
chmod go-w "$work/canopy-vendor.so"

CANOPY_PLUGIN_PATH="$work" "$canopyd" --check-config "$srcdir/vendor.xml"
CANOPY_PLUGIN_PATH="$work" "$canopyd" --list-plugins | grep -q "vendor .*backend .*2.3"
echo "vendor plugin built against the installed SDK and loaded: PASS"
