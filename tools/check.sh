#!/bin/sh
# Sets everything up on a fresh Debian 12 machine and runs the whole test
# suite: the CUnit suites (make check) and a distcheck that also builds a
# vendor plugin against the installed SDK.
set -eu
cd "$(dirname "$0")/.."
sh tools/prepare.sh
cd _build
../configure --enable-werror
make -j"$(nproc)"
make check
make distcheck
