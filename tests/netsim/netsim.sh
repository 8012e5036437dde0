#!/bin/sh
# The WAN benchmark: a central site and branch offices built from network
# namespaces, one agent per device namespace, a shaped WAN link with a real
# round trip per office.
#
#   central (canopyd, HTTP origin)          198.18.0.1/24 ── veth ── gateway 198.18.0.2
#     └─ per office N, from the gateway: tun ─ canopy-delayline ─ tun
#        (198.19.N.1 ↔ 198.19.N.2; RTT_MS/2 each way, this kernel has no
#        netem), shaped to WAN_RATE each way with tc tbf at both routers;
#        the office router's bridge 198.18.N.1/24 with one veth per device
#        namespace (198.18.N.10+), shaped to LAN_RATE
#
# First a plain curl of the file through office 1's WAN link (the
# reference), then SIZE_MIB of content to OFFICES × DEVICES agents. Prints
# the time to the last completion over the ideal (content size / WAN
# rate); per office, the bytes that crossed its WAN link over the content
# size (from the router's WAN interface counters, so nothing the agents
# report is trusted), the lead's WAN throughput against curl's and the
# seconds from the lead's completion to the office's last; the CPU-seconds
# per GiB delivered of the agents (min/median/max) and of canopyd. Every
# installed copy is compared with the original byte for byte; a difference
# fails the run. The kernel's neighbour-table limits are raised for the run
# (32 devices overflow the shared ARP table) and, like every namespace,
# delay line and process it started, restored on every exit path.
#
#   usage: sudo sh tests/netsim/netsim.sh BUILDDIR
#   environment: OFFICES (2), DEVICES (8), SIZE_MIB (256), WAN_RATE (100mbit),
#                LAN_RATE (1gbit), RTT_MS (20), KEEP=1 keeps the logs,
#                NETSIM_PERF_FREQ=HZ records the lead agent with perf record
#                (NETSIM_PERF_CALLS=1 adds call graphs, =dwarf through libraries
#                built without frame pointers) into ./netsim-perf.data,
#                or device NETSIM_PERF_DEVICE of office 1 instead;
#                NETSIM_PERF_FREQ=stat counts its context switches and system
#                calls per thread into ./netsim-perf.stat instead;
#                NETSIM_AGENT_DEBUG=DOMAINS starts every agent with --debug
set -eu

BUILD=$(cd "${1:?usage: netsim.sh BUILDDIR}" && pwd)
OFFICES=${OFFICES:-2}
DEVICES=${DEVICES:-8}
SIZE_MIB=${SIZE_MIB:-256}
WAN_RATE=${WAN_RATE:-100mbit}
LAN_RATE=${LAN_RATE:-1gbit}
RTT_MS=${RTT_MS:-20}
# Short: interface names derived from it have at most 15 characters.
PREFIX=cn$(($$ % 10000))
WORK=$(mktemp -d /tmp/canopy-netsim-XXXXXX)
PIDS=""
AGENT_PIDS=""
NEIGH_SET=""
CLEANED=""
# The neighbour tables are the kernel's, shared by every namespace: 32
# devices that all talk to each other need more than the default 1024.
NEIGH_WANT="4096 8192 16384"

log () { printf '%s\n' "$*" >&2; }

# Puts back the neighbour-table limits this run raised, unless something
# else changed them since.
restore_neigh () {
  [ -n "$NEIGH_SET" ] || return 0
  i=1
  for old in $NEIGH_SET; do
    key=net.ipv4.neigh.default.gc_thresh$i
    want=$(echo "$NEIGH_WANT" | cut -d ' ' -f "$i")
    if [ "$(sysctl -n "$key")" = "$want" ]; then sysctl -qw "$key=$old" || true; fi
    i=$((i + 1))
  done
  NEIGH_SET=""
}

raise_neigh () {
  old=""
  for i in 1 2 3; do old="$old $(sysctl -n "net.ipv4.neigh.default.gc_thresh$i")"; done
  NEIGH_SET=$old
  i=1
  for want in $NEIGH_WANT; do
    now=$(echo "$old" | awk -v i="$i" '{ print $i }')
    [ "$now" -ge "$want" ] || sysctl -qw "net.ipv4.neigh.default.gc_thresh$i=$want"
    i=$((i + 1))
  done
}

cleanup () {
  [ -z "$CLEANED" ] || return 0
  CLEANED=1
  # Whoever read our output may be gone (an interrupted pipeline): the
  # cleaning goes on regardless.
  trap '' PIPE
  for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in $PIDS; do kill -9 "$pid" 2>/dev/null || true; done
  for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns delete "$ns"
  done
  # Tun devices not moved yet, if setting up failed half-way.
  for link in $(ip -o link show | awk -F': ' '{ print $2 }' | grep "^${PREFIX}[ab][0-9]*$" || true); do
    ip link delete "$link" 2>/dev/null || true
  done
  restore_neigh
  if [ -n "${KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

rate_bits () { # 100mbit -> 100000000
  echo "$1" | awk '{ n = $1 + 0 }
    /gbit$/ { n *= 1e9 } /mbit$/ { n *= 1e6 } /kbit$/ { n *= 1e3 } { printf "%d\n", n }'
}

shape () { # namespace interface rate
  ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$3" burst 256kb latency 50ms
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

# canopyd and the origin in the central namespace, behind a gateway that
# routes to the offices: the WAN queues then build at a router as on a
# real WAN (shaped on the sending host, TCP small queues would keep them
# empty).
build_central () {
  ns c
  ns g
  ip link add "$PREFIX-cc" type veth peer name "$PREFIX-cg"
  ip link set "$PREFIX-cc" netns "$PREFIX-c" name core
  ip link set "$PREFIX-cg" netns "$PREFIX-g" name core
  inns c ip addr add 198.18.0.1/24 dev core
  inns g ip addr add 198.18.0.2/24 dev core
  inns c ip link set core up
  inns g ip link set core up
  inns c ip route add default via 198.18.0.2
  inns g sysctl -qw net.ipv4.ip_forward=1
}

# The WAN link: two tun devices joined by the delay line, half the round
# trip each way, shaped at the gateway (towards the office) and at the
# office router (towards the centre).
build_wan () { # N
  n=$1
  start_bg - "$WORK/delayline-$n.log" "$BUILD/tests/netsim/canopy-delayline" \
    "${PREFIX}a$n" "${PREFIX}b$n" "$(awk -v r="$RTT_MS" 'BEGIN { print r / 2 }')"
  DELAYLINE_PIDS="${DELAYLINE_PIDS:-} $LAST_PID"
  for _ in $(seq 50); do grep -q ready "$WORK/delayline-$n.log" 2>/dev/null && break; sleep 0.1; done
  grep -q ready "$WORK/delayline-$n.log" || { log "the delay line of office $n did not start"; exit 1; }
  ip link set "${PREFIX}a$n" netns "$PREFIX-g" name "wan$n"
  ip link set "${PREFIX}b$n" netns "$PREFIX-r$n" name wan
  inns g ip addr add "198.19.$n.1" peer "198.19.$n.2" dev "wan$n"
  inns "r$n" ip addr add "198.19.$n.2" peer "198.19.$n.1" dev wan
  inns g ip link set "wan$n" up
  inns "r$n" ip link set wan up
  shape "$PREFIX-g" "wan$n" "$WAN_RATE"
  shape "$PREFIX-r$n" wan "$WAN_RATE"
  inns g ip route add "198.18.$n.0/24" via "198.19.$n.2" dev "wan$n"
  inns "r$n" ip route add default via "198.19.$n.1" dev wan
}

build_office () { # N
  n=$1
  ns "r$n"
  build_wan "$n"
  inns "r$n" ip link add name lan type bridge
  inns "r$n" ip addr add "198.18.$n.1/24" dev lan
  inns "r$n" ip link set lan up
  inns "r$n" sysctl -qw net.ipv4.ip_forward=1
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

# User plus system CPU ticks of a process, all its threads included (the
# process line of /proc/PID/stat sums them, exited threads too).
cpu_ticks () { # pid
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
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
  cat > "$WORK/canopyd.xml" <<XML
<server>
  <state-directory>$WORK/server</state-directory>
  <assigned-group>Branch</assigned-group>
  <distribution-optimization enabled="true" topology="$WORK/topology.csv"/>
  <heartbeat interval="5"/>
  <backend plugin="sqlite"/>
  <transport plugin="tcp"><listen address="198.18.0.1" port="7443"/></transport>
  <console address="198.18.0.1" port="7480"/>
</server>
XML
}

# Each agent sees its own directory at $WORK/agent (a bind mount in a
# mount namespace of its own), so one destination path gives each device
# its own installed copy, on the same mount as its cache.
write_agent_config () { # office device
  dir="$WORK/agent-$1-$2"
  mkdir -p "$dir/state" "$dir/installed" "$WORK/agent"
  cp "$WORK/server/shared-key" "$dir/state/shared-key"
  cat > "$dir/agent.xml" <<XML
<agent>
  <server host="198.18.0.1" port="7443"/>
  <state-directory>$WORK/agent/state</state-directory>
  <group>Branch</group>
  <peers address="198.18.$1.$((10 + $2))" port="7444"/>
  <destinations><directory path="$WORK/agent/installed"/></destinations>
  <transport plugin="tcp"/>
</agent>
XML
}

start_agent () { # office device
  start_bg "d${1}x$2" "$WORK/agent-$1-$2.log" unshare --mount --propagation private \
    sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh \
    "$WORK/agent-$1-$2" "$WORK/agent" \
    env LC_ALL=C "$BUILD/canopy-agent" --config "$WORK/agent/agent.xml" \
    ${NETSIM_AGENT_DEBUG:+--debug "$NETSIM_AGENT_DEBUG"}
  AGENT_PIDS="$AGENT_PIDS $LAST_PID"
}

# Every agent still runs, as itself (the PIDs measured are the agents').
check_agents () {
  i=0
  for pid in $AGENT_PIDS; do
    i=$((i + 1))
    if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != canopy-agent ]; then
      n=$(((i - 1) / DEVICES + 1)) d=$(((i - 1) % DEVICES))
      log "the agent of device $d of office $n is not running; its log:"
      cat "$WORK/agent-$n-$d.log" >&2
      exit 1
    fi
  done
}

# Seconds since the epoch (with milliseconds) of the last line of FILE
# matching PATTERN, from the log's own timestamp (DATE THH:MM:SS.mmmZ).
log_time () { # file pattern
  stamp=$(grep -- "$2" "$1" | tail -n 1 | cut -d ' ' -f 1)
  [ -n "$stamp" ] || { log "no line \"$2\" in $1"; exit 1; }
  date -u -d "$stamp" +%s.%N
}

ctl () { inns c "$BUILD/canopyctl" --profile "$WORK/profile" "$@"; }

login () {
  (umask 077 && "$BUILD/canopyd" admin-add netsim --role operator --config "$WORK/canopyd.xml" \
    | sed -n 's/^ *token: *//p' > "$WORK/admin-token")
  ctl login --server https://198.18.0.1:7480 --certificate "$WORK/server/console-cert.pem" \
    --token-file "$WORK/admin-token" > /dev/null
}

deploy () { # origin URL
  content=$(ctl --json content-add --name Package --version 1.0 "$1" \
    | sed -n 's/^ *"id" : "\(.*\)",$/\1/p' | head -n 1)
  DEPLOYMENT=$(ctl --json deploy --content "$content" --group Branch \
    --destination "$WORK/agent/installed/package.bin" | sed -n 's/^ *"id" : "\(.*\)"$/\1/p')
  [ -n "$DEPLOYMENT" ] || { log "deploying the package failed"; exit 1; }
}

# The reference: plain HTTP through office 1's WAN link, before canopy
# moves anything. Sets CURL_SPEED (bytes/s) and CURL_TIME (s).
reference () {
  inns d1x0 ping -n -q -c 5 -i 0.2 198.18.0.1 > "$WORK/ping.txt" || true
  BASE_RTT=$(sed -n 's|^rtt [^=]*= [0-9.]*/\([0-9.]*\)/.*|\1|p' "$WORK/ping.txt")
  set -- $(inns d1x0 env LC_ALL=C curl -s -f -o /dev/null -w '%{speed_download} %{time_total}' \
    http://198.18.0.1:8080/package.bin)
  CURL_SPEED=$1 CURL_TIME=$2
}

# The agent of an office that logged fetching as its office's lead (the
# first one, should the role move).
office_lead () { # office
  d=0
  while [ "$d" -lt "$DEVICES" ]; do
    if grep -q "as its office's lead" "$WORK/agent-$1-$d.log"; then echo "$d"; return; fi
    d=$((d + 1))
  done
  echo -
}

# The issue's goal for this run's time / ideal.
time_goal () {
  if [ "$DEVICES" -eq 1 ] && [ "$OFFICES" -eq 1 ]; then
    echo "<= curl's"
  elif [ "$RTT_MS" -ge 100 ]; then
    echo "<= 1.15 at 100 ms"
  elif [ $((OFFICES * DEVICES)) -ge 16 ]; then
    echo "<= 1.30 from 16 devices"
  else
    echo "<= 1.10"
  fi
}

start_perf () {
  [ -n "${NETSIM_PERF_FREQ:-}" ] || return 0
  lead=-
  for _ in $(seq 300); do
    lead=$(office_lead 1)
    [ "$lead" = - ] || break
    sleep 0.1
  done
  [ "$lead" != - ] || { log "no lead in office 1 to record with perf"; return 0; }
  PERF_DEVICE=${NETSIM_PERF_DEVICE:-$lead}
  pid=$(echo "$AGENT_PIDS" | awk -v i="$((PERF_DEVICE + 1))" '{ print $i }')
  calls=
  case ${NETSIM_PERF_CALLS:-} in
    '') ;;
    dwarf) calls="--call-graph dwarf" ;;
    *) calls=-g ;;
  esac
  if [ "$NETSIM_PERF_FREQ" = stat ]; then
    start_bg - "$WORK/perf.log" perf stat -e task-clock,context-switches,raw_syscalls:sys_enter \
      --per-thread -p "$pid" -o "$PWD/netsim-perf.stat"
    PERF_OUT=$PWD/netsim-perf.stat
  else
    # shellcheck disable=SC2086 # empty or one option
    start_bg - "$WORK/perf.log" perf record -F "$NETSIM_PERF_FREQ" $calls -p "$pid" \
      -o "$PWD/netsim-perf.data"
    PERF_OUT=$PWD/netsim-perf.data
  fi
  PERF_PID=$LAST_PID
}

stop_perf () {
  [ -n "${PERF_PID:-}" ] || return 0
  kill -INT "$PERF_PID" 2>/dev/null || true
  wait "$PERF_PID" 2>/dev/null || true
  log "perf: device $PERF_DEVICE of office 1 (lead: $lead) recorded in $PERF_OUT"
}

# The agents' CPU per GiB delivered, each agent over its own copy.
agents_cpu () { # size
  i=0
  for pid in $AGENT_PIDS; do
    i=$((i + 1))
    eval "before=\$cpu_before_$i"
    echo $(($(cpu_ticks "$pid") - before))
  done | sort -n | awk -v hz="$(getconf CLK_TCK)" -v s="$1" '
    { v[NR] = $1 / hz; sum += $1 / hz }
    END { gib = s / 1073741824; m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%.2f / %.2f / %.2f (min / median / max; %.1f CPU-seconds in all)", \
        v[1] / gib, m / gib, v[NR] / gib, sum }'
}

main () {
  export CANOPY_PLUGIN_PATH="$BUILD/plugins/backend-sqlite/.libs:$BUILD/plugins/transport-tcp/.libs"
  log "building $OFFICES offices × $DEVICES devices, WAN $WAN_RATE with a $RTT_MS ms round trip, LAN $LAN_RATE"
  raise_neigh
  build_central
  n=1
  while [ "$n" -le "$OFFICES" ]; do build_office "$n"; n=$((n + 1)); done

  head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom > "$WORK/package.bin"
  size=$(stat -c %s "$WORK/package.bin")
  write_topology
  write_server_config
  "$BUILD/canopyd" init --config "$WORK/canopyd.xml" > /dev/null
  start_bg c "$WORK/origin.log" "$BUILD/tests/canopy-test-origin" "$WORK/package.bin" 198.18.0.1 8080
  start_bg c "$WORK/canopyd.log" env LC_ALL=C "$BUILD/canopyd" --config "$WORK/canopyd.xml"
  SERVER_PID=$LAST_PID
  sleep 2
  reference
  n=1
  while [ "$n" -le "$OFFICES" ]; do
    d=0
    while [ "$d" -lt "$DEVICES" ]; do
      write_agent_config "$n" "$d"
      start_agent "$n" "$d"
      d=$((d + 1))
    done
    n=$((n + 1))
  done
  login
  sleep 3
  check_agents

  n=1
  while [ "$n" -le "$OFFICES" ]; do
    eval "wan_before_$n=$(wan_bytes "$n")"
    n=$((n + 1))
  done
  i=0
  for pid in $AGENT_PIDS; do i=$((i + 1)); eval "cpu_before_$i=$(cpu_ticks "$pid")"; done
  server_before=$(cpu_ticks "$SERVER_PID")
  deploy "http://198.18.0.1:8080/package.bin"
  start_perf
  # In the background: a signal to this shell is handled at once, not
  # when the wait ends.
  ctl deployment-wait "$DEPLOYMENT" --timeout 900 > "$WORK/wait.log" 2>&1 &
  wait "$!" || { cat "$WORK/wait.log" >&2; log "the deployment did not complete"; exit 1; }
  stop_perf
  agents=$(agents_cpu "$size")
  server_cpu=$(($(cpu_ticks "$SERVER_PID") - server_before))

  # From the deployment's creation (the server's log) to each device's
  # install (its agent's log), by the logs' own timestamps.
  start=$(log_time "$WORK/canopyd.log" " created by ")
  ideal=$(awk -v s="$size" -v r="$(rate_bits "$WAN_RATE")" 'BEGIN {print s * 8 / r}')
  last=0
  n=1
  while [ "$n" -le "$OFFICES" ]; do
    d=0 office_last=0
    while [ "$d" -lt "$DEVICES" ]; do
      done_at=$(log_time "$WORK/agent-$n-$d.log" "(deployment $DEPLOYMENT): ")
      eval "done_${n}_$d=$done_at"
      office_last=$(awk -v a="$office_last" -v b="$done_at" 'BEGIN { print (b > a) ? b : a }')
      d=$((d + 1))
    done
    eval "last_$n=$office_last"
    last=$(awk -v a="$last" -v b="$office_last" 'BEGIN { print (b > a) ? b : a }')
    n=$((n + 1))
  done

  printf 'netsim: %s MiB to %s offices × %s devices, WAN %s, %s ms round trip (measured %s ms), LAN %s\n' \
    "$SIZE_MIB" "$OFFICES" "$DEVICES" "$WAN_RATE" "$RTT_MS" "${BASE_RTT:-?}" "$LAN_RATE"
  awk -v s="$size" -v sp="$CURL_SPEED" -v t="$CURL_TIME" -v i="$ideal" 'BEGIN {
    printf "  reference, curl through office 1'"'"'s WAN link: %.1f Mbit/s, %.2f s; time / ideal %.2f\n", \
      sp * 8 / 1e6, t, t / i }'
  awk -v a="$start" -v b="$last" -v i="$ideal" -v g="$(time_goal)" 'BEGIN {
    printf "  last completion: %.2f s; ideal (size / WAN rate) %.1f s; time / ideal %.2f (goal %s)\n", \
      b - a, i, (b - a) / i, g }'
  ctl --json deployments > "$WORK/deployments.json"
  n=1
  while [ "$n" -le "$OFFICES" ]; do
    eval "before=\$wan_before_$n; office_last=\$last_$n"
    after=$(wan_bytes "$n")
    payload=$(awk -v office="Office $n" '
      /"office" :/ { line = $0; sub(/^[^:]*: "/, "", line); sub(/",?$/, "", line); current = line }
      /"wan_ratio" :/ && current == office { v = $3; sub(/,/, "", v); print v }' \
      "$WORK/deployments.json")
    printf '  Office %s: WAN bytes on the wire / size %.3f (goal <= 1.04); payload as reported %.3f\n' \
      "$n" "$(awk -v a="$after" -v b="$before" -v s="$size" 'BEGIN {print (a - b) / s}')" \
      "${payload:-0}"
    lead=$(office_lead "$n")
    if [ "$lead" = - ]; then
      printf '    no agent logged fetching as the lead\n'
    else
      eval "lead_done=\$done_${n}_$lead"
      lead_start=$(log_time "$WORK/agent-$n-$lead.log" "Deployment $DEPLOYMENT: fetching ")
      awk -v s="$size" -v a="$lead_start" -v b="$lead_done" -v sp="$CURL_SPEED" -v d="$lead" \
          -v l="$office_last" 'BEGIN {
        r = s / (b - a)
        printf "    lead (device %d): %.1f Mbit/s over the WAN = %.2f × curl'"'"'s; %.2f s fetching\n", \
          d, r * 8 / 1e6, r / sp, b - a
        printf "    from the lead'"'"'s completion to the office'"'"'s last: %.2f s\n", l - b }'
    fi
    n=$((n + 1))
  done
  awk -v hz="$(getconf CLK_TCK)" -v t="$server_cpu" -v s="$size" -v n="$((OFFICES * DEVICES))" 'BEGIN {
    printf "  canopyd: %.2f CPU-seconds per GiB delivered (%.1f CPU-seconds for %d copies)\n", \
      t / hz / (s * n / 1073741824), t / hz, n }'
  printf '  agents: CPU-seconds per GiB each received: %s (goal <= 3.5)\n' "$agents"

  bad=0
  n=1
  while [ "$n" -le "$OFFICES" ]; do
    d=0
    while [ "$d" -lt "$DEVICES" ]; do
      cmp -s "$WORK/agent-$n-$d/installed/package.bin" "$WORK/package.bin" || {
        log "device $d of office $n: the installed copy differs from the original"; bad=1; }
      d=$((d + 1))
    done
    n=$((n + 1))
  done
  [ "$bad" = 0 ] || exit 1
  printf '  every installed copy (%s) matches the original byte for byte\n' "$((OFFICES * DEVICES))"
}

main
