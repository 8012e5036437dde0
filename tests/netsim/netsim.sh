#!/bin/sh
# The WAN benchmark: a central site and branch offices built from network
# namespaces, one agent per device namespace, a shaped WAN link per office.
#
#   central (canopyd, HTTP origin)       198.18.0.1/24 on br-c
#     └─ per office N: router namespace, WAN veth 198.19.N.1 ↔ 198.19.N.2,
#        shaped to WAN_RATE each way (tc tbf), bridge 198.18.N.1/24 with
#        one veth per device namespace (198.18.N.10+), shaped to LAN_RATE
#
# Distributes SIZE_MIB of content to OFFICES × DEVICES agents and prints
# the time to the last completion over the ideal (content size / WAN rate)
# and, per office, the bytes that crossed its WAN link over the content
# size (read from the router's WAN interface counters, so nothing the
# agents report is trusted). This kernel has no netem: no delay is added.
#
#   usage: sudo sh tests/netsim/netsim.sh BUILDDIR
#   environment: OFFICES (2), DEVICES (8), SIZE_MIB (256), WAN_RATE (100mbit),
#                LAN_RATE (1gbit)
set -eu

BUILD=$(cd "${1:?usage: netsim.sh BUILDDIR}" && pwd)
OFFICES=${OFFICES:-2}
DEVICES=${DEVICES:-8}
SIZE_MIB=${SIZE_MIB:-256}
WAN_RATE=${WAN_RATE:-100mbit}
LAN_RATE=${LAN_RATE:-1gbit}
# Short: interface names derived from it have at most 15 characters.
PREFIX=cn$(($$ % 10000))
WORK=$(mktemp -d /tmp/canopy-netsim-XXXXXX)
PIDS=""

log () { printf '%s\n' "$*" >&2; }

cleanup () {
  for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in $PIDS; do kill -9 "$pid" 2>/dev/null || true; done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns"
  done
  [ -n "${KEEP:-}" ] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

rate_bits () { # 100mbit -> 100000000
  echo "$1" | awk '{ n = $1 + 0 }
    /gbit$/ { n *= 1e9 } /mbit$/ { n *= 1e6 } /kbit$/ { n *= 1e3 } { printf "%d\n", n }'
}

shape () { # namespace interface rate
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$3" burst 256kb latency 50ms
}

ns () { ip netns add "$PREFIX-$1"; ip netns exec "$PREFIX-$1" ip link set lo up; }
inns () { where=$1; shift; ip netns exec "$PREFIX-$where" "$@"; }

build_central () {
  ns c
  inns c ip link add name br-c type bridge
  inns c ip addr add 198.18.0.1/24 dev br-c
  inns c ip link set br-c up
  inns c sysctl -qw net.ipv4.ip_forward=1
}

build_office () { # N
  n=$1
  ns "r$n"
  ip link add "$PREFIX-w$n" type veth peer name "$PREFIX-x$n"
  ip link set "$PREFIX-w$n" netns "$PREFIX-c" name "wan$n"
  ip link set "$PREFIX-x$n" netns "$PREFIX-r$n" name wan
  inns c ip addr add "198.19.$n.1/30" dev "wan$n"
  inns c ip link set "wan$n" up
  inns c ip route add "198.18.$n.0/24" via "198.19.$n.2"
  inns "r$n" ip addr add "198.19.$n.2/30" dev wan
  inns "r$n" ip link set wan up
  inns "r$n" ip link add name lan type bridge
  inns "r$n" ip addr add "198.18.$n.1/24" dev lan
  inns "r$n" ip link set lan up
  inns "r$n" ip route add default via "198.19.$n.1"
  inns "r$n" sysctl -qw net.ipv4.ip_forward=1
  shape "$PREFIX-c" "wan$n" "$WAN_RATE"
  shape "$PREFIX-r$n" wan "$WAN_RATE"
  d=0
  while [ "$d" -lt "$DEVICES" ]; do
    build_device "$n" "$d"
    d=$((d + 1))
  done
}

build_device () { # office device
  dev="d$1x$2"
  ns "$dev"
  ip link add "$PREFIX-v$dev" type veth peer name "$PREFIX-p$dev"
  ip link set "$PREFIX-v$dev" netns "$PREFIX-r$1" name "p$2"
  ip link set "$PREFIX-p$dev" netns "$PREFIX-$dev" name eth0
  inns "r$1" ip link set "p$2" master lan up
  inns "$dev" ip addr add "198.18.$1.$((10 + $2))/24" dev eth0
  inns "$dev" ip link set eth0 up
  inns "$dev" ip route add default via "198.18.$1.1"
  shape "$PREFIX-$dev" eth0 "$LAN_RATE"
}

wan_bytes () { # office: bytes received by its router from the central side
  inns "r$1" cat /sys/class/net/wan/statistics/rx_bytes
}

start_bg () { # namespace logfile command...
  where=$1 out=$2; shift 2
  ip netns exec "$PREFIX-$where" "$@" > "$out" 2>&1 &
  PIDS="$PIDS $!"
  LAST_PID=$!
}

cpu_seconds () { # pids...: user and system CPU seconds, threads included
  for pid in "$@"; do cat "/proc/$pid/stat"; done 2>/dev/null \

    | sed 's/^.*) //' \
    | awk -v hz="$(getconf CLK_TCK)" '{ u += $12; s += $13 }
        END { printf "%.1f s (%.1f user + %.1f system)", (u + s) / hz, u / hz, s / hz }'
}

write_topology () {
  {
    echo "office,parent,type,subnets,wan_rate,metered"
    n=1
    while [ "$n" -le "$OFFICES" ]; do
      echo "Office $n,,Default,198.18.$n.0/24,${TOPOLOGY_RATE-$(rate_bits "$WAN_RATE")},no"
      n=$((n + 1))
    done
  } > "$WORK/topology.csv"
}

write_server_config () {
  mkdir -p "$WORK/server"
  cat > "$WORK/canopyd.xml" <<EOF
<server>
  <state-directory>$WORK/server</state-directory>
  <assigned-group>Branch</assigned-group>
  <distribution-optimization enabled="true" topology="$WORK/topology.csv"/>
  <heartbeat interval="5"/>
  <backend plugin="sqlite"/>
  <transport plugin="tcp"><listen address="198.18.0.1" port="7443"/></transport>
  <console address="198.18.0.1" port="7480"/>
</server>
EOF
}

write_agent_config () { # office device
  dir="$WORK/agent-$1-$2"
  mkdir -p "$dir"
  cp "$WORK/server/shared-key" "$dir/shared-key"
  cat > "$dir/agent.xml" <<EOF
<agent>
  <server host="198.18.0.1" port="7443"/>
  <state-directory>$dir</state-directory>
  <group>Branch</group>
  <peers address="198.18.$1.$((10 + $2))" port="7444"/>
  <destinations><directory path="$WORK/installed"/></destinations>
  <transport plugin="tcp"/>
</agent>
EOF
}

log_seconds () { # the time of the last canopyd log line containing $1
  grep "$1" "$WORK/canopyd.log" | tail -n 1 \
    | sed -n 's/^[0-9-]*T\([0-9][0-9]\):\([0-9][0-9]\):\([0-9.]*\)Z .*/\1 \2 \3/p' \
    | awk '{ print $1 * 3600 + $2 * 60 + $3 }'
}

main () {
  export CANOPY_PLUGIN_PATH="$BUILD/plugins/backend-sqlite/.libs:$BUILD/plugins/transport-tcp/.libs"
  log "building $OFFICES offices × $DEVICES devices, WAN $WAN_RATE, LAN $LAN_RATE"
  build_central
  n=1
  while [ "$n" -le "$OFFICES" ]; do build_office "$n"; n=$((n + 1)); done

  head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$WORK/package.bin"
  size=$(stat -c %s "$WORK/package.bin")
  write_topology
  write_server_config
  "$BUILD/canopyd" init --config "$WORK/canopyd.xml" > /dev/null
  start_bg c "$WORK/origin.log" "$BUILD/tests/canopy-test-origin" "$WORK/package.bin" 198.18.0.1 8080
  ORIGIN_PID=$LAST_PID
  start_bg c "$WORK/canopyd.log" "$BUILD/canopyd" --config "$WORK/canopyd.xml"
  SERVER_PID=$LAST_PID
  sleep 2
  if [ -n "${NETSIM_PROBE:-}" ]; then
    inns d1x0 curl -s -o /dev/null -w 'plain HTTP across the WAN: %{speed_download} B/s\n' \
      http://198.18.0.1:8080/package.bin
  fi
  n=1
  while [ "$n" -le "$OFFICES" ]; do
    d=0
    while [ "$d" -lt "$DEVICES" ]; do
      write_agent_config "$n" "$d"
      start_bg "d${n}x$d" "$WORK/agent-$n-$d.log" "$BUILD/canopy-agent" \
        --config "$WORK/agent-$n-$d/agent.xml"
      AGENT_PIDS="${AGENT_PIDS:-} $LAST_PID"
      d=$((d + 1))
    done
    n=$((n + 1))
  done
  sleep 3

  n=1
  while [ "$n" -le "$OFFICES" ]; do
    eval "wan_before_$n=$(wan_bytes "$n")"
    n=$((n + 1))
  done
  deploy "http://198.18.0.1:8080/package.bin"
  wait_all_done "$((OFFICES * DEVICES))"
  # From the deployment's creation to the last device done, by the
  # server's own log timestamps (DATE THH:MM:SS.mmmZ).
  start=$(log_seconds " created by ")
  end=$(log_seconds " finished after ")

  ideal=$(awk -v s="$size" -v r="$(rate_bits "$WAN_RATE")" 'BEGIN {print s * 8 / r}')
  took=$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')
  printf 'netsim: %s MiB to %s offices × %s devices, WAN %s, LAN %s (no added delay)\n' \
    "$SIZE_MIB" "$OFFICES" "$DEVICES" "$WAN_RATE" "$LAN_RATE"
  printf '  last completion: %.1f s; ideal (size / WAN rate) %.1f s; ratio %.2f (target <= 1.2)\n' \
    "$took" "$ideal" "$(awk -v t="$took" -v i="$ideal" 'BEGIN {print t / i}')"
  ctl --json deployments > "$WORK/deployments.json"
  n=1
  while [ "$n" -le "$OFFICES" ]; do
    eval "before=\$wan_before_$n"
    after=$(wan_bytes "$n")
    payload=$(awk -v office="Office $n" '
      /"office" :/ { line = $0; sub(/^[^:]*: "/, "", line); sub(/",?$/, "", line); current = line }
      /"wan_ratio" :/ && current == office { v = $3; sub(/,/, "", v); print v }' \
      "$WORK/deployments.json")
    printf '  Office %s: WAN payload / content size = %.3f (target <= 1.02); on the wire, with TCP/IP and TLS overhead, %.3f\n' \
      "$n" "$payload" "$(awk -v a="$after" -v b="$before" -v s="$size" 'BEGIN {print (a - b) / s}')"
    n=$((n + 1))
  done
  # shellcheck disable=SC2086 # lists of PIDs
  printf '  CPU: agents %s; canopyd %s; origin %s\n' "$(cpu_seconds $AGENT_PIDS)" \
    "$(cpu_seconds "$SERVER_PID")" "$(cpu_seconds "$ORIGIN_PID")"
  cmp -s "$WORK/installed/package.bin" "$WORK/package.bin" || { log "MISMATCH"; exit 1; }
  printf '  every device reported the package SHA-256 the manifest names; the installed copy matches\n'
}

ctl () { inns c "$BUILD/canopyctl" --profile "$WORK/profile" "$@"; }

deploy () { # origin URL
  (umask 077 && "$BUILD/canopyd" admin-add netsim --role operator --config "$WORK/canopyd.xml" \
    | sed -n 's/^ *token: *//p' > "$WORK/admin-token")
  ctl login --server https://198.18.0.1:7480 --certificate "$WORK/server/console-cert.pem" \
    --token-file "$WORK/admin-token" > /dev/null
  content=$(ctl --json content-add --name Package --version 1.0 "$1" \
    | sed -n 's/^ *"id" : "\(.*\)",$/\1/p' | head -n 1)
  DEPLOYMENT=$(ctl --json deploy --content "$content" --group Branch \
    --destination "$WORK/installed/package.bin" | sed -n 's/^ *"id" : "\(.*\)"$/\1/p')
}

wait_all_done () { # devices
  ctl deployment-wait "$DEPLOYMENT" --timeout 900 > /dev/null
}

main
