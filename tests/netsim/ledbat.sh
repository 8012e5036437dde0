#!/bin/sh
# The background WAN class benchmark: one office behind a WAN link shaped
# to WAN_RATE with a real delay (a user-space delay line between two tun
# devices, DELAY_MS each way; this kernel has no netem), a foreground bulk
# TCP flow across it, and a deployment started alongside, first in the
# background class, then in the normal class, in the same run.
#
#   central namespace: canopyd, HTTP origins     lan 198.18.201.1
#        │ veth
#   router namespace                              lan 198.18.201.2, wan 198.18.200.1
#        │ tun ─ canopy-delayline ─ tun  (tc tbf WAN_RATE, QUEUE_MS of queue, each way)
#   office namespace: one agent (the lead), curl, ping    wan 198.18.200.2
#
# Prints, for each class: the foreground flow's throughput with the
# deployment against alone (goal >= 80 % in the background class), the
# delay pings see over the base round trip (p95; goal <= target + 25 ms
# while the deployment runs alone in the background class), how many
# seconds after the foreground flow stopped the deployment had 90 % of the
# link, and its share over SHARE_SECONDS after SETTLE_SECONDS (goal
# >= 90 %). Everything it creates is removed when it ends, also on failure.
#
#   usage: sudo sh tests/netsim/ledbat.sh BUILDDIR
#   environment: WAN_RATE (50mbit), DELAY_MS (20), QUEUE_MS (250),
#                TARGET_MS (25), FG_SECONDS (20), SETTLE_SECONDS (15),
#                SHARE_SECONDS (15),
#                SIZE_MIB (512), KEEP=1 keeps the logs
set -eu

BUILD=$(cd "${1:?usage: ledbat.sh BUILDDIR}" && pwd)
WAN_RATE=${WAN_RATE:-50mbit}
DELAY_MS=${DELAY_MS:-20}
QUEUE_MS=${QUEUE_MS:-250}
TARGET_MS=${TARGET_MS:-25}
FG_SECONDS=${FG_SECONDS:-20}
SETTLE_SECONDS=${SETTLE_SECONDS:-15}
SHARE_SECONDS=${SHARE_SECONDS:-15}
SIZE_MIB=${SIZE_MIB:-512}
# Short: tun names derived from it have at most 15 characters.
ID=$(($$ % 10000))
PREFIX=ledbat$ID
TUN_C=lb${ID}c
TUN_O=lb${ID}o
WORK=$(mktemp -d /tmp/canopy-ledbat-XXXXXX)
PIDS=""

log () { printf '%s\n' "$*" >&2; }

cleanup () {
  for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in $PIDS; do kill -9 "$pid" 2>/dev/null || true; done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns"
  done
  # Devices not moved yet, if setting up failed half-way.
  ip link delete "$TUN_C" 2>/dev/null || true
  ip link delete "$TUN_O" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

rate_bits () { # 50mbit -> 50000000
  echo "$1" | awk '{ n = $1 + 0 }
    /gbit$/ { n *= 1e9 } /mbit$/ { n *= 1e6 } /kbit$/ { n *= 1e3 } { printf "%d\n", n }'
}

ns () { ip netns add "$PREFIX-$1"; ip netns exec "$PREFIX-$1" ip link set lo up; }
inns () { where=$1; shift; ip netns exec "$PREFIX-$where" "$@"; }

start_bg () { # namespace logfile command... ("-" for the root namespace)
  where=$1 out=$2; shift 2
  if [ "$where" = - ]; then "$@" > "$out" 2>&1 & else
    ip netns exec "$PREFIX-$where" "$@" > "$out" 2>&1 & fi
  PIDS="$PIDS $!"
  LAST_PID=$!
}

# The link: the central namespace reaches the office through a router
# namespace, so the queue builds at a router as on a real WAN (shaped on
# the sending host itself, TCP small queues would keep it empty); from the
# router a tun device, the delay line, and a tun device in the office.
# tbf on both tun devices with QUEUE_MS of queue at WAN_RATE: a router's
# buffer, larger than the target, so a greedy flow fills it.
build_link () {
  ns c
  ns r
  ns o
  ip link add "$PREFIX-v" type veth peer name "$PREFIX-w"
  ip link set "$PREFIX-v" netns "$PREFIX-c" name lan
  ip link set "$PREFIX-w" netns "$PREFIX-r" name lan
  inns c ip addr add 198.18.201.1/30 dev lan
  inns r ip addr add 198.18.201.2/30 dev lan
  inns c ip link set lan up
  inns r ip link set lan up
  inns c ip route add 198.18.200.0/24 via 198.18.201.2
  inns r sysctl -qw net.ipv4.ip_forward=1
  start_bg - "$WORK/delayline.log" "$BUILD/tests/netsim/canopy-delayline" "$TUN_C" "$TUN_O" \
    "$DELAY_MS"
  DELAYLINE_PID=$LAST_PID
  for _ in $(seq 50); do grep -q ready "$WORK/delayline.log" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$WORK/delayline.log" || { log "the delay line did not start"; exit 1; }
  ip link set "$TUN_C" netns "$PREFIX-r" name wan
  ip link set "$TUN_O" netns "$PREFIX-o" name wan
  inns r ip addr add 198.18.200.1 peer 198.18.200.2 dev wan
  inns o ip addr add 198.18.200.2 peer 198.18.200.1 dev wan
  limit=$(($(rate_bits "$WAN_RATE") / 8 * QUEUE_MS / 1000))
  for side in r o; do
    inns "$side" ip link set wan up
    inns "$side" tc qdisc add dev wan root tbf rate "$WAN_RATE" burst 32kb limit "$limit"
  done
  inns o ip route add default via 198.18.200.1 dev wan
}

write_configs () {
  printf 'office,parent,type,subnets,wan_rate,metered,transfer_class\n' > "$WORK/topology.csv"
  printf 'Branch,,Default,198.18.200.2/32,%s,no,normal\n' "$(rate_bits "$WAN_RATE")" \
    >> "$WORK/topology.csv"
  mkdir -p "$WORK/server" "$WORK/agent"
  cat > "$WORK/canopyd.xml" <<XML
<server>
  <state-directory>$WORK/server</state-directory>
  <assigned-group>Branch</assigned-group>
  <distribution-optimization enabled="true" topology="$WORK/topology.csv"/>
  <heartbeat interval="5"/>
  <background-transfer target-delay="$TARGET_MS"/>
  <backend plugin="sqlite"/>
  <transport plugin="tcp"><listen address="198.18.201.1" port="7443"/></transport>
  <console address="198.18.201.1" port="7480"/>
</server>
XML
}

write_agent_config () {
  cp "$WORK/server/shared-key" "$WORK/agent/shared-key"
  cat > "$WORK/agent/agent.xml" <<XML
<agent>
  <server host="198.18.201.1" port="7443"/>
  <state-directory>$WORK/agent</state-directory>
  <group>Branch</group>
  <peers address="198.18.200.2" port="7444"/>
  <destinations><directory path="$WORK/installed"/></destinations>
  <transport plugin="tcp"/>
</agent>
XML
}

ctl () { inns c "$BUILD/canopyctl" --profile "$WORK/profile" "$@"; }

login () {
  (umask 077 && "$BUILD/canopyd" admin-add ledbat --role operator --config "$WORK/canopyd.xml" \
    | sed -n 's/^ *token: *//p' > "$WORK/admin-token")
  ctl login --server https://198.18.201.1:7480 --certificate "$WORK/server/console-cert.pem" \
    --token-file "$WORK/admin-token" > /dev/null
}

add_content () { # name URL: prints the content ID
  ctl --json content-add --name "$1" --version 1.0 "$2" \
    | sed -n 's/^ *"id" : "\(.*\)",$/\1/p' | head -n 1
}

deploy () { # content ID, destination, extra options: prints the deployment ID
  content=$1 dest=$2; shift 2
  ctl --json deploy --content "$content" --group Branch --destination "$dest" "$@" \
    | sed -n 's/^ *"id" : "\(.*\)"$/\1/p'
}

wan_rx () { inns o cat /sys/class/net/wan/statistics/rx_bytes; }

# Pings from the office for SECONDS into FILE, in the background.
start_pings () { # seconds file
  start_bg o "$2" ping -n -i 0.1 -w "$1" 198.18.201.1
  PING_PID=$LAST_PID
}

# p50 and p95 of the round trips in FILE, ms.
rtt_percentiles () {
  sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "$1" | sort -n | awk '
    { v[NR] = $1 } END { if (NR == 0) { print "nan nan"; exit }
      p50 = v[int((NR - 1) * 0.50) + 1]; p95 = v[int((NR - 1) * 0.95) + 1]; print p50, p95 }'
}

# The foreground flow: a bulk download for FG_SECONDS; prints bytes/s.
foreground () { # file for curl's output
  inns o curl -s -o /dev/null --max-time "$FG_SECONDS" -w '%{speed_download}\n' \
    http://198.18.201.1:8082/bulk.bin > "$1" 2>/dev/null || true
  tail -n 1 "$1"
}

# The office lead's report, from the deployments API: rate (bits/s) and
# queueing delay (ms), or "-" when there is none.
lead_pacing () { # deployment ID
  ctl --json deployments | awk -v id="$1" '
    /"id" :/ { line = $0; sub(/^[^:]*: "/, "", line); sub(/",?$/, "", line); if (line ~ /-/) cur = line }
    cur == id && /"background_rate" :/ { r = $3; sub(/,/, "", r) }
    cur == id && /"queueing_delay_ms" :/ { q = $3; sub(/,/, "", q) }
    END { if (r == "" || r == "null") r = "-"; if (q == "" || q == "null") q = "-"
          printf "%s %s\n", r, q }'
}

# One class: the deployment starts with the foreground flow; then the flow
# stops and the deployment has the link.
run_class () { # class content-ID
  class=$1 content=$2
  dest="$WORK/installed/$class.bin"
  if [ "$class" = background ]; then opt=--background; else opt=; fi
  # shellcheck disable=SC2086 # empty or one option
  dep=$(deploy "$content" "$dest" $opt)
  [ -n "$dep" ] || { log "deploying in the $class class failed"; exit 1; }
  start_pings "$FG_SECONDS" "$WORK/ping-$class-fg.txt"
  before=$(wan_rx)
  fg=$(foreground "$WORK/curl-$class.txt")
  after=$(wan_rx)
  wait "$PING_PID" 2> /dev/null || true
  pacing=$(lead_pacing "$dep")
  # The deployment alone on the link: how soon it takes the link (each
  # second's bytes for SETTLE_SECONDS), then its share and the delay it
  # adds over SHARE_SECONDS.
  link=$(rate_bits "$WAN_RATE")
  took=-
  last=$(wan_rx)
  for second in $(seq "$SETTLE_SECONDS"); do
    sleep 1
    now=$(wan_rx)
    if [ "$took" = - ] && [ $(((now - last) * 8)) -ge $((link * 9 / 10)) ]; then took=$second; fi
    last=$now
  done
  start_pings "$SHARE_SECONDS" "$WORK/ping-$class-alone.txt"
  alone_before=$(wan_rx)
  sleep "$SHARE_SECONDS"
  alone_after=$(wan_rx)
  wait "$PING_PID" 2> /dev/null || true
  ctl deployment-cancel "$dep" > /dev/null || true
  sleep 2

  fg_rtt=$(rtt_percentiles "$WORK/ping-$class-fg.txt")
  alone_rtt=$(rtt_percentiles "$WORK/ping-$class-alone.txt")
  awk -v class="$class" -v fg="$fg" -v fg0="$FG_ALONE" -v b="$before" -v a="$after" \
      -v ab="$alone_before" -v aa="$alone_after" -v secs="$FG_SECONDS" -v ss="$SHARE_SECONDS" \
      -v link="$link" -v base="$BASE_P50" -v fgr="$fg_rtt" -v alr="$alone_rtt" \
      -v target="$TARGET_MS" -v pacing="$pacing" -v took="$took" -v settle="$SETTLE_SECONDS" 'BEGIN {
    split(fgr, f, " "); split(alr, l, " "); split(pacing, p, " ")
    bg = (class == "background")
    dep_fg = (a - b) - fg * secs
    if (dep_fg < 0) dep_fg = 0
    if (p[1] == "-") reported = "no background rate (normal class)"
    else reported = sprintf("rate %.1f Mbit/s, queueing delay %.1f ms", p[1] / 1e6, p[2])
    printf "  %s class:\n", class
    printf "    foreground with the deployment: %.1f Mbit/s = %.0f %% of alone%s\n", \
      fg * 8 / 1e6, 100 * fg / fg0, (bg ? " (goal >= 80 %)" : "")
    printf "    deployment meanwhile: %.1f Mbit/s; its lead reported %s\n", \
      dep_fg * 8 / secs / 1e6, reported
    printf "    ping over the base round trip, with the foreground: p50 %+.1f ms, p95 %+.1f ms\n", \
      f[1] - base, f[2] - base
    if (took == "-") ramp = sprintf("not within %d s", settle)
    else ramp = sprintf("%d s", took)
    printf "    foreground stopped: the deployment had >= 90 %% of the link after %s\n", ramp
    printf "    deployment alone, the %d s after those %d s: %.1f Mbit/s = %.0f %% of the link%s\n", \
      ss, settle, (aa - ab) * 8 / ss / 1e6, 100 * (aa - ab) * 8 / ss / link, \
      (bg ? " (goal >= 90 %)" : "")
    goal = sprintf(" (goal <= target %d + 25 ms)", target)
    printf "    ping over the base round trip, deployment alone: p50 %+.1f ms, p95 %+.1f ms%s\n", \
      l[1] - base, l[2] - base, (bg ? goal : "")
  }'
}

main () {
  export CANOPY_PLUGIN_PATH="$BUILD/plugins/backend-sqlite/.libs:$BUILD/plugins/transport-tcp/.libs"
  log "building the office: WAN $WAN_RATE, $DELAY_MS ms each way, $QUEUE_MS ms of queue"
  build_link
  for class in background normal; do
    head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$WORK/$class.bin"
  done
  truncate -s 8G "$WORK/bulk.bin"
  write_configs
  "$BUILD/canopyd" init --config "$WORK/canopyd.xml" > /dev/null
  start_bg c "$WORK/origin-bg.log" "$BUILD/tests/canopy-test-origin" "$WORK/background.bin" \
    198.18.201.1 8080
  start_bg c "$WORK/origin-normal.log" "$BUILD/tests/canopy-test-origin" "$WORK/normal.bin" \
    198.18.201.1 8081
  start_bg c "$WORK/origin-bulk.log" "$BUILD/tests/canopy-test-origin" "$WORK/bulk.bin" \
    198.18.201.1 8082
  start_bg c "$WORK/canopyd.log" "$BUILD/canopyd" --config "$WORK/canopyd.xml"
  sleep 2
  write_agent_config
  start_bg o "$WORK/agent.log" "$BUILD/canopy-agent" --config "$WORK/agent/agent.xml"
  login
  bg_content=$(add_content Background http://198.18.201.1:8080/background.bin)
  normal_content=$(add_content Normal http://198.18.201.1:8081/normal.bin)
  sleep 3

  start_pings 5 "$WORK/ping-base.txt"
  wait "$PING_PID" 2> /dev/null || true
  BASE_P50=$(rtt_percentiles "$WORK/ping-base.txt" | cut -d ' ' -f 1)
  start_pings "$FG_SECONDS" "$WORK/ping-fg-alone.txt"
  FG_ALONE=$(foreground "$WORK/curl-alone.txt")
  wait "$PING_PID" 2> /dev/null || true
  fg_alone_rtt=$(rtt_percentiles "$WORK/ping-fg-alone.txt")

  printf 'ledbat: WAN %s, %s ms each way (delay line), %s ms of queue, background target %s ms\n' \
    "$WAN_RATE" "$DELAY_MS" "$QUEUE_MS" "$TARGET_MS"
  awk -v base="$BASE_P50" -v fg="$FG_ALONE" -v r="$fg_alone_rtt" 'BEGIN { split(r, f, " ");
    printf "  base round trip (idle link, p50): %.1f ms\n", base
    printf "  foreground alone: %.1f Mbit/s; ping over the base: p50 %+.1f ms, p95 %+.1f ms\n",
      fg * 8 / 1e6, f[1] - base, f[2] - base }'
  run_class background "$bg_content"
  run_class normal "$normal_content"
  kill "$DELAYLINE_PID" 2>/dev/null || true
}

main
