#!/bin/sh
# Generate the build system from a fresh clone.
set -e
srcdir=$(dirname "$0")
cd "$srcdir"
autopoint --force
autoreconf --force --install --verbose
