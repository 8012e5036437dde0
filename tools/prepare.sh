#!/bin/sh
# Installs what canopy needs, generates the build system and makes an
# empty _build directory: the common start of check.sh and demo.sh.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
./autogen.sh > /dev/null
rm -rf _build
mkdir -p _build
