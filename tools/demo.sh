#!/bin/sh
# Sets everything up on a fresh Debian 12 machine (as root), installs canopy
# under /opt/canopy-demo, and runs it: the server on its embedded SQLite
# default, and three agents on this machine that enrol over TCP+TLS (two in
# an assigned group, one outside it). Prints what each says, then stops
# everything it started.
set -eu
cd "$(dirname "$0")/.."
sh tools/prepare.sh
cd _build
prefix=/opt/canopy-demo
echo "== building and installing canopy under $prefix"
../configure --prefix="$prefix" --localstatedir="$prefix/var" --sysconfdir="$prefix/etc" > /dev/null
make -j"$(nproc)" > /dev/null
make install > /dev/null

demo="$prefix/var/demo"
rm -rf "$demo"
mkdir -p "$demo"
chmod 700 "$demo"
port=17443

cat > "$demo/canopyd.xml" <<EOF
<server>
  <name>$(hostname)</name>
  <state-directory>$demo/server</state-directory>
  <assigned-group>Finance</assigned-group>
  <licensing seats="100"/>
  <heartbeat interval="2"/>
  <backend plugin="sqlite"><database>$demo/server/canopy.db</database></backend>
  <transport plugin="tcp"><listen address="127.0.0.1" port="$port"/></transport>
</server>
EOF

pids=""
cleanup() {
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

echo "== installed plugins"
"$prefix/sbin/canopyd" --list-plugins
echo "== canopyd init (the installer step)"
"$prefix/sbin/canopyd" init --config "$demo/canopyd.xml"
echo "== configuration check"
"$prefix/sbin/canopyd" --check-config "$demo/canopyd.xml"

"$prefix/sbin/canopyd" --config "$demo/canopyd.xml" > "$demo/canopyd.log" 2>&1 &
pids="$pids $!"
sleep 1

for agent in finance-1:Finance finance-2:Finance sales-1:Sales; do
  name=${agent%%:*}
  group=${agent#*:}
  mkdir -p "$demo/$name"
  install -m 0600 "$demo/server/shared-key" "$demo/$name/shared-key"
  cat > "$demo/$name.xml" <<EOF
<agent>
  <server host="127.0.0.1" port="$port"/>
  <state-directory>$demo/$name</state-directory>
  <group>$group</group>
  <transport plugin="tcp"/>
</agent>
EOF
  "$prefix/sbin/canopy-agent" --config "$demo/$name.xml" > "$demo/$name.log" 2>&1 &
  pids="$pids $!"
done
sleep 5

echo "== canopyd"
cat "$demo/canopyd.log"
for name in finance-1 finance-2 sales-1; do
  echo "== canopy-agent $name"
  cat "$demo/$name.log"
done
cleanup
pids=""
echo "== every process stopped; logs and state are in $demo"
