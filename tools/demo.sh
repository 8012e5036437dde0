#!/bin/sh
# Sets everything up on a fresh Debian 12 machine (as root), installs canopy
# under /opt/canopy-demo, and runs a real distribution on this one machine:
# canopyd on its embedded SQLite default with the console API, an HTTP
# origin (the CDN), and two offices of three agents each on their own
# loopback addresses (127.0.1.0/24 and 127.0.2.0/24), plus one agent outside
# the assigned group that stays dormant. A 64 MiB package is registered and
# deployed with canopyctl; the demo ends by printing, per office, the bytes
# that crossed its WAN link over the content size, then stops every process
# it started. It checks its own outcome and exits non-zero unless every
# device is done, each office's WAN ratio is at most 1.05 and the installed
# copy matches the original.
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

run="$prefix/var/demo"
rm -rf "$run"
mkdir -p "$run"
chmod 700 "$run"
port=17443
console=17480
. ../tools/local-run.sh  # (in _build)
write_topology 2
write_server_config
trap stop_started EXIT INT TERM

echo "== installed plugins"
"$prefix/sbin/canopyd" --list-plugins
echo "== canopyd init (the installer step)"
"$prefix/sbin/canopyd" init --config "$run/canopyd.xml"
echo "== canopyd admin-add (the first console admin; the shared key opens no console)"
admin_add demo-admin administrator && echo "  its token, printed once, is saved in $run/demo-admin.token"
echo "== configuration check"
"$prefix/sbin/canopyd" --check-config "$run/canopyd.xml"
start_server

head -c $((64 * 1024 * 1024)) /dev/urandom > "$run/package.bin"
start_origin "$origin_program" "$run/package.bin" "$run/origin.log"

devices=6  # three agents in each of the two offices of Branch
for i in 1 2 3; do
  for office in 1 2; do
    name=$(office_name "$office" | tr 'A-Z' 'a-z')-$i
    write_agent_config "$name" Branch "127.0.$office.1$i"
    start_agent "$name"
  done
done
write_agent_config sales-1 Sales 127.0.1.20
start_agent sales-1
sleep 3

echo "== canopyctl login, then the devices the server knows"
ctl_login
ctl devices

echo "== register the package from the origin ($url) and deploy it to Branch"
content=$(ctl_content_add Package 1.0 "$url")
deployment=$(ctl_deploy "$content" Branch "$run/installed/package.bin")
ctl deployment-wait "$deployment" --timeout 150 || echo "  deployment-wait gave up; the verdict below says what is missing"
ctl deployments

echo "== bytes that crossed each office's WAN link, over the content size"
ctl --json deployments > "$run/deployments.json"
jq -r '.deployments[0].offices[] | "\(.office) \(.wan_ratio)"' "$run/deployments.json" |
  awk '{ printf "  %-6s %.3f\n", $1, $2 }'

echo "== verdict"
failed=0
verdict() { # OK MESSAGE: prints the outcome of one promise of the demo
  if [ "$1" = true ]; then echo "  ok: $2"; else echo "  FAILED: $2"; failed=1; fi
}
verdict "$(jq --argjson n "$devices" '.deployments[0].devices == $n and .deployments[0].done == $n' "$run/deployments.json")" \
  "all $devices devices of Branch are done"
verdict "$(jq '[.deployments[0].offices[] | select(.devices > 0)] | length == 2 and all(.wan_ratio <= 1.05)' \
  "$run/deployments.json")" "each office's WAN link carried the package at most 1.05 times"
verdict "$(cmp -s "$run/package.bin" "$run/installed/package.bin" && echo true)" \
  "the installed copy matches the original byte for byte"

echo "== the dormant agent outside the assigned group says"
grep -i "refused" "$run/sales-1.log" | head -n 1
stop_started
echo "== every process stopped; logs and state are in $run"
if [ "$failed" -ne 0 ]; then
  echo "The demo did not hold its promises: read the logs in $run" >&2
  exit 1
fi
