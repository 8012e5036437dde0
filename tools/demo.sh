#!/bin/sh
# Sets everything up on a fresh Debian 12 machine (as root), installs canopy
# under /opt/canopy-demo, and runs a real distribution on this one machine:
# canopyd on its embedded SQLite default with the console API, an HTTP
# origin (the CDN), and two offices of three agents each on their own
# loopback addresses (127.0.1.0/24 and 127.0.2.0/24), plus one agent outside
# the assigned group that stays dormant. A 64 MiB package is registered and
# deployed with canopyctl; the demo ends by printing, per office, the bytes
# that crossed its WAN link over the content size, then stops every process
# it started.
set -eu
cd "$(dirname "$0")/.."
sh tools/prepare.sh
cd _build
prefix=/opt/canopy-demo
echo "== building and installing canopy under $prefix"
../configure --prefix="$prefix" --localstatedir="$prefix/var" --sysconfdir="$prefix/etc" > /dev/null
make -j"$(nproc)" > /dev/null
make tests/canopy-test-origin > /dev/null
make install > /dev/null
origin_program=$(pwd)/tests/canopy-test-origin

demo="$prefix/var/demo"
rm -rf "$demo"
mkdir -p "$demo"
chmod 700 "$demo"
port=17443
console=17480
ctl="$prefix/bin/canopyctl --profile $demo/profile"

cat > "$demo/topology.csv" <<EOF
office,parent,type,subnets,wan_rate,metered
North,,Default,127.0.1.0/24,200M,no
South,,Default,127.0.2.0/24,200M,no
EOF

cat > "$demo/canopyd.xml" <<EOF
<server>
  <name>localhost</name>
  <state-directory>$demo/server</state-directory>
  <assigned-group>Branch</assigned-group>
  <distribution-optimization enabled="true" topology="$demo/topology.csv"/>
  <licensing seats="100"/>
  <heartbeat interval="2"/>
  <console address="127.0.0.1" port="$console"/>
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

head -c $((64 * 1024 * 1024)) /dev/urandom > "$demo/package.bin"
"$origin_program" "$demo/package.bin" 127.0.0.1 0 > "$demo/origin.log" 2>&1 &
pids="$pids $!"
sleep 1
url=$(sed -n 's/^origin //p' "$demo/origin.log")

start_agent() { # name group peer-address
  mkdir -p "$demo/$1"
  install -m 0600 "$demo/server/shared-key" "$demo/$1/shared-key"
  cat > "$demo/$1.xml" <<EOF
<agent>
  <server host="127.0.0.1" port="$port"/>
  <state-directory>$demo/$1</state-directory>
  <group>$2</group>
  <peers address="$3" port="0"/>
  <transport plugin="tcp"/>
</agent>
EOF
  "$prefix/sbin/canopy-agent" --config "$demo/$1.xml" > "$demo/$1.log" 2>&1 &
  pids="$pids $!"
}
for i in 1 2 3; do
  start_agent "north-$i" Branch "127.0.1.1$i"
  start_agent "south-$i" Branch "127.0.2.1$i"
done
start_agent sales-1 Sales 127.0.1.20
sleep 3

echo "== canopyctl login, then the devices the server knows"
$ctl login --server "https://127.0.0.1:$console" \
  --certificate "$demo/server/console-cert.pem" --key-file "$demo/server/shared-key"
$ctl devices

echo "== register the package from the origin ($url) and deploy it to Branch"
content=$($ctl --json content-add --name Package --version 1.0 "$url" \
  | sed -n 's/^ *"id" : "\(.*\)",$/\1/p' | head -n 1)
deployment=$($ctl --json deploy --content "$content" --group Branch \
  --destination "$demo/installed/package.bin" | sed -n 's/^ *"id" : "\(.*\)"$/\1/p')
$ctl deployment-wait "$deployment" --timeout 300
$ctl deployments

echo "== bytes that crossed each office's WAN link, over the content size"
$ctl --json deployments | awk '
  /"office" :/ { gsub(/[",]/, "", $3); office = $3 }
  /"wan_ratio" :/ { gsub(/,/, "", $3); printf "  %-6s %.3f\n", office, $3 }'
cmp "$demo/package.bin" "$demo/installed/package.bin" && echo "  the installed copy matches the original"

echo "== the dormant agent outside the assigned group says"
grep -i "refused" "$demo/sales-1.log" | head -n 1
cleanup
pids=""
echo "== every process stopped; logs and state are in $demo"
