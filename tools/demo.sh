#!/bin/sh
# Sets everything up on a fresh Debian 12 machine, installs canopy under
# /opt/canopy-demo, and runs the server on its embedded SQLite default,
# showing its status; then stops it.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
./autogen.sh > /dev/null
rm -rf _build
mkdir -p _build
cd _build
prefix=/opt/canopy-demo
../configure --prefix="$prefix" --localstatedir="$prefix/var" > /dev/null
make -j"$(nproc)" > /dev/null
make install > /dev/null
state="$prefix/var/lib/canopy"
mkdir -p "$state"
chmod 700 "$state"
sed -e "s#/var/lib/canopy#$state#g" -e "s#<name>p2p.example.com</name>#<name>$(hostname)</name>#" \
  "$prefix/etc/canopy/canopyd.xml" > "$state/demo.xml"

echo "== installed plugins"
"$prefix/sbin/canopyd" --list-plugins
echo "== configuration check"
"$prefix/sbin/canopyd" --check-config "$state/demo.xml"
echo "== running canopyd (stops after 5 seconds)"
"$prefix/sbin/canopyd" --config "$state/demo.xml" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
sleep 5
kill -TERM "$pid"
wait "$pid"
trap - EXIT
echo "== canopyd stopped cleanly"
