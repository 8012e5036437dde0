#!/bin/sh
# Sets everything up on a fresh Debian 12 machine and runs the whole test
# suite: the CUnit suites (make check), a distcheck that also builds a
# vendor plugin against the installed SDK, the suites again under ASan and
# UBSan, the integration suites with the daemons under valgrind, and a
# short run of every fuzz target.
set -eu
cd "$(dirname "$0")/.."
started=$(date +%s)
step () { echo "check.sh: $* ($(( $(date +%s) - started )) s so far)"; }

sh tools/prepare.sh
# A test that cannot run here is a skip; CI allows only the skips listed.
CANOPY_TEST_ALLOWED_SKIPS=$(pwd)/tests/ci-allowed-skips
export CANOPY_TEST_ALLOWED_SKIPS
cd _build
../configure --enable-werror
make -j"$(nproc)"
step "make check"
make check
step "make distcheck"
make distcheck

# The whole suite under AddressSanitizer and UndefinedBehaviorSanitizer:
# any report stops the run. Leaks are valgrind's job below.
step "ASan and UBSan build"
rm -rf ../_build-asan && mkdir ../_build-asan && cd ../_build-asan
sanitize="-fsanitize=address,undefined -fno-omit-frame-pointer"
../configure CFLAGS="$sanitize -g -O1" LDFLAGS="$sanitize"
make -j"$(nproc)"
step "make check under ASan and UBSan"
ASAN_OPTIONS=halt_on_error=1:detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  G_SLICE=always-malloc make check

# canopyd and canopy-agent under valgrind memcheck in the integration
# suites: a memory error or a definite leak fails the test that stops them.
step "make check-valgrind"
cd ../_build
make check-valgrind

# Each fuzz target for 10 seconds over its corpus (clang's libFuzzer).
step "fuzz build"
rm -rf ../_build-fuzz && mkdir ../_build-fuzz && cd ../_build-fuzz
../configure CC=clang --enable-fuzzing
make -j"$(nproc)"
step "make fuzz"
make fuzz FUZZ_SECONDS=10
step "all passed"
