#!/bin/sh
# Soak test (not in CI): repeated deployments for SOAK_MINUTES while agents
# are stopped and restarted, printing every SAMPLE seconds the memory (VmRSS)
# and open descriptors of canopyd and of every agent. At the end it compares,
# for canopyd and the long-lived agents (never restarted), the median of the
# first quarter of the samples after warm-up with that of the last quarter,
# and exits 1 if a round failed or one of them grew beyond the thresholds.
# It stops every process it started; logs and state stay in SOAK_DIR.
# Needs canopy installed under PREFIX and the test origin built (docs/testing.md,
# "Soak test").
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
SOAK_MINUTES=${SOAK_MINUTES:-60}
OFFICES=${OFFICES:-2}
AGENTS_PER_OFFICE=${AGENTS_PER_OFFICE:-3}
LONG_LIVED_PER_OFFICE=${LONG_LIVED_PER_OFFICE:-2}
SIZE_MIB=${SIZE_MIB:-24}
PAUSE=${PAUSE:-15}
CHURN=${CHURN:-40}
DOWN=${DOWN:-10}
SAMPLE=${SAMPLE:-30}
ROUND_TIMEOUT=${ROUND_TIMEOUT:-300}
WARMUP=${WARMUP:-$((SOAK_MINUTES * 5))}
MAX_RSS_GROWTH=${MAX_RSS_GROWTH:-10}
MAX_FD_GROWTH=${MAX_FD_GROWTH:-5}
PREFIX=${PREFIX:-/opt/canopy-soak}
ORIGIN=${ORIGIN:-$top/_build/tests/canopy-test-origin}
SOAK_DIR=${SOAK_DIR:-/tmp/canopy-soak.$(date +%Y%m%d-%H%M%S)}
port=${PORT:-18443}
console=${CONSOLE_PORT:-18480}

prefix=$PREFIX
run=$SOAK_DIR
. "$top/tools/local-run.sh"

for program in "$prefix/sbin/canopyd" "$prefix/sbin/canopy-agent" "$prefix/bin/canopyctl" "$ORIGIN"; do
  [ -x "$program" ] || { echo "soak: $program is missing (see docs/testing.md, Soak test)" >&2; exit 2; }
done
if [ "$LONG_LIVED_PER_OFFICE" -ge "$AGENTS_PER_OFFICE" ] && [ "$CHURN" -gt 0 ]; then
  echo "soak: no agent to churn: LONG_LIVED_PER_OFFICE must be below AGENTS_PER_OFFICE" >&2
  exit 2
fi

rand() { # N -> 0..N-1
  echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % $1 ))
}
now() { date +%s; }
key() { echo "$1" | tr -- - _; } # an agent's name as part of a variable name
get() { eval "echo \${$1_$(key "$2")}"; }
set_var() { eval "$1_$(key "$2")=\$3"; }
note() { echo "$(date +%T) $*" >> "$run/events.log"; }
fail() { failures=$((failures + 1)); note "FAILURE: $*"; echo "  FAILURE: $*"; }

rm -rf "$run"
mkdir -p "$run/installed"
chmod 700 "$run"
interrupted=""
on_signal() { interrupted=yes; }
trap 'stop_started' EXIT
trap 'on_signal' INT TERM

alive() { # PID: a child of ours that has not exited
  started_here "$1" && [ "$(cut -d ' ' -f 3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}
# waits for a child that was signalled, at most 10 s before SIGKILL
stop_child() { # PID SIGNAL
  local waited=0
  started_here "$1" && kill "-$2" "$1" 2>/dev/null
  while [ "$waited" -lt 100 ] && alive "$1"; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if [ "$waited" -ge 100 ]; then
    fail "process $1 did not stop within 10 s of SIG$2"
    started_here "$1" && kill -KILL "$1" 2>/dev/null
  fi
  wait "$1" 2>/dev/null
  forget_started "$1"
}

echo "== soak: ${SOAK_MINUTES} min, $OFFICES offices x $AGENTS_PER_OFFICE agents" \
     "($LONG_LIVED_PER_OFFICE long-lived each), ${SIZE_MIB} MiB a round then ${PAUSE}s of pause," \
     "an agent stopped every ${CHURN}s (0: never) for 1-${DOWN}s, a sample every ${SAMPLE}s; logs in $run"
write_topology "$OFFICES"
write_server_config
"$prefix/sbin/canopyd" init --config "$run/canopyd.xml" > "$run/init.log" 2>&1 \
  || { echo "soak: canopyd init failed: see $run/init.log" >&2; exit 1; }
start_server
tries=0
until ctl_login > "$run/login.log" 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "soak: cannot log in: see $run/login.log, $run/canopyd.log" >&2; exit 1; }
  sleep 1
done

long_lived=""
churned=""
office=1
while [ "$office" -le "$OFFICES" ]; do
  i=1
  while [ "$i" -le "$AGENTS_PER_OFFICE" ]; do
    name=$(office_name "$office" | tr 'A-Z' 'a-z')-$i
    write_agent_config "$name" Branch "127.0.$office.$((10 + i))" "$((SIZE_MIB * 3))MiB"
    start_agent "$name"
    set_var pid "$name" "$agent_pid"
    set_var down "$name" 0
    set_var restarts "$name" 0
    if [ "$i" -le "$LONG_LIVED_PER_OFFICE" ]; then long_lived="$long_lived $name"
    else churned="$churned $name"; fi
    i=$((i + 1))
  done
  office=$((office + 1))
done
n_churned=$(echo $churned | wc -w)
agents=$((OFFICES * AGENTS_PER_OFFICE))
tries=0
until [ "$(ctl --json devices --group Branch 2>/dev/null | grep -c '"online" : true')" -ge "$agents" ]; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "soak: the agents did not enrol: see $run/*.log" >&2; exit 1; }
  sleep 1
done

# one line every SAMPLE seconds; every figure also goes to samples.tsv
printf '%-6s %-6s %-4s %-14s' time rounds fail canopyd
for name in $long_lived; do printf ' %-14s' "$name"; done
printf ' |'
for name in $churned; do printf ' %-14s' "$name*"; done
printf '\n%-6s %-6s %-4s %s\n' "" "" "" "(each: VmRSS KiB/open fds; * restarted, long-lived ones are not)"
echo "elapsed	name	kind	pid	rss_kib	fds	rss_anon_kib" > "$run/samples.tsv"
figures() { # ELAPSED NAME KIND PID -> prints RSS/FDS, records them
  local rss anon fds
  rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$4/status" 2>/dev/null)
  anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$4/status" 2>/dev/null)
  fds=$(ls "/proc/$4/fd" 2>/dev/null | wc -l)
  if [ -z "$rss" ]; then printf ' %-14s' gone; return; fi
  printf ' %-14s' "$rss/$fds"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$rss" "$fds" "$anon" >> "$run/samples.tsv"
}
sample() {
  local elapsed=$(($(now) - start)) name pid
  printf '%-6s %-6s %-4s' "$((elapsed / 60)):$(printf %02d $((elapsed % 60)))" "$rounds" "$failures"
  figures "$elapsed" canopyd server "$server_pid"
  for name in $long_lived; do figures "$elapsed" "$name" long-lived "$(get pid "$name")"; done
  printf ' |'
  for name in $churned; do
    pid=$(get pid "$name")
    if [ "$pid" = 0 ]; then printf ' %-14s' down
    else figures "$elapsed" "$name" churned "$pid"; fi
  done
  printf '\n'
}

# a round: a new package at a new origin, registered, deployed to Branch,
# waited for, checked, then its deployment and content removed
round=0 rounds=0 failures=0 wait_pid="" content="" deployment=""
begin_round() {
  round=$((round + 1))
  head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$run/package.bin"
  if ! start_origin "$ORIGIN" "$run/package.bin" "$run/origin.log"; then
    fail "round $round: the origin did not start"; origin_pid=""; return
  fi
  content=$(ctl_content_add Package "1.$round" "$url" 2>> "$run/ctl.log")
  [ -n "$content" ] || { fail "round $round: content-add failed"; end_round; return; }
  deployment=$(ctl_deploy "$content" Branch "$run/installed/package-$round.bin" 2>> "$run/ctl.log")
  [ -n "$deployment" ] || { fail "round $round: deploy failed"; end_round; return; }
  round_start=$(now)
  note "round $round: content $content deployment $deployment"
  ctl deployment-wait "$deployment" --timeout "$ROUND_TIMEOUT" >> "$run/rounds.log" 2>&1 &
  wait_pid=$!
  pids="$pids $wait_pid"
}
end_round() { # after the wait, or on a failure starting the round
  local status=1
  if [ -n "$wait_pid" ]; then
    wait "$wait_pid"
    status=$?
    forget_started "$wait_pid"
    wait_pid=""
    if [ "$status" != 0 ]; then
      fail "round $round: deployment-wait exited with $status"
      ctl deployments >> "$run/rounds.log" 2>&1
    elif ! cmp -s "$run/package.bin" "$run/installed/package-$round.bin"; then
      fail "round $round: the installed copy differs from the package"
    else
      rounds=$((rounds + 1))
      echo "$round	$(($(now) - round_start))" >> "$run/round-times.tsv"
    fi
  fi
  if [ -n "$deployment" ]; then
    ctl deployment-remove "$deployment" >> "$run/ctl.log" 2>&1 || fail "round $round: deployment-remove failed"
  fi
  if [ -n "$content" ]; then
    ctl content-remove "$content" >> "$run/ctl.log" 2>&1 || fail "round $round: content-remove failed"
  fi
  if [ -n "$origin_pid" ]; then
    stop_child "$origin_pid" TERM
    cat "$run/origin.log" >> "$run/origins.log"
  fi
  origin_pid="" content="" deployment=""
  next_round=$(($(now) + PAUSE))
  rm -f "$run/installed/package-$round.bin"
}

# churn: every CHURN seconds one of the churned agents is stopped, by SIGKILL
# or SIGTERM, and started again 1-DOWN seconds later
churn() {
  local name pid sig
  set -- $churned
  shift "$(rand "$n_churned")"
  name=$1
  pid=$(get pid "$name")
  if [ "$(rand 2)" = 0 ]; then sig=KILL; else sig=TERM; fi
  note "churn: $name ($pid) SIG$sig"
  stop_child "$pid" "$sig"
  set_var pid "$name" 0
  set_var down "$name" $(($(now) + 1 + $(rand "$DOWN")))
  down_agent=$name
}
restart_down_agent() {
  start_agent "$down_agent"
  set_var pid "$down_agent" "$agent_pid"
  set_var restarts "$down_agent" $(($(get restarts "$down_agent") + 1))
  note "churn: $down_agent started again ($agent_pid)"
  down_agent=""
}

start=$(now)
finish=$((start + SOAK_MINUTES * 60))
next_sample=$start
next_round=$start
next_churn=$((start + CHURN))
down_agent=""
origin_pid=""
sample
next_sample=$((next_sample + SAMPLE))
while :; do
  t=$(now)
  running=$([ "$t" -lt "$finish" ] && [ -z "$interrupted" ] && echo yes)
  if [ -n "$wait_pid" ] && ! alive "$wait_pid"; then end_round; fi
  if [ -n "$down_agent" ] && { [ "$t" -ge "$(get down "$down_agent")" ] || [ -z "$running" ]; }; then
    restart_down_agent
  fi
  if [ -n "$running" ] && [ "$CHURN" -gt 0 ] && [ -z "$down_agent" ] && [ "$t" -ge "$next_churn" ]; then
    churn
    next_churn=$((t + CHURN))
  fi
  if [ -z "$wait_pid" ]; then
    [ -n "$running" ] || break
    [ "$t" -lt "$next_round" ] || begin_round
  fi
  for name in canopyd $long_lived; do
    if [ "$name" = canopyd ]; then pid=$server_pid; else pid=$(get pid "$name"); fi
    if ! alive "$pid"; then
      fail "$name ($pid) died: see $run/$name.log"
      interrupted=yes
      set_var pid "$name" 0
    fi
  done
  if [ "$t" -ge "$next_sample" ]; then
    sample
    next_sample=$((next_sample + SAMPLE))
  fi
  [ -z "$interrupted" ] || [ -z "$wait_pid" ] || { stop_child "$wait_pid" TERM; wait_pid=""; end_round; }
  sleep 1
done
sample
elapsed=$(($(now) - start))
stop_started

echo "== summary after $((elapsed / 60)) min $((elapsed % 60)) s: $rounds rounds done, $failures failures${interrupted:+ (interrupted)}"
if [ -s "$run/round-times.tsv" ]; then
  sort -n -k 2 "$run/round-times.tsv" | awk '{ t[NR] = $2 }
    END { printf "   round time: min %d s, median %d s, max %d s\n", t[1], t[int((NR + 1) / 2)], t[NR] }'
fi
echo "   restarts:$(for name in $churned; do printf ' %s %s' "$name" "$(get restarts "$name")"; done)"
echo "   first and last quarter of the samples after ${WARMUP}s of warm-up (medians):"
awk -F '\t' -v warmup="$WARMUP" -v max_rss="$MAX_RSS_GROWTH" -v max_fd="$MAX_FD_GROWTH" '
  function median(a, from, to,    n, i, j, v, s) {
    n = 0
    for (i = from; i <= to; i++) s[++n] = a[i]
    for (i = 2; i <= n; i++) { v = s[i]; for (j = i - 1; j >= 1 && s[j] > v; j--) s[j + 1] = s[j]; s[j + 1] = v }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
  }
  NR > 1 && $3 != "churned" && $1 >= warmup {
    if (!($2 in n)) order[++names] = $2
    n[$2]++; rss[$2, n[$2]] = $5; fds[$2, n[$2]] = $6
  }
  END {
    printf "   %-10s %8s %10s %10s %8s %6s %6s %6s\n", "process", "samples", "RSS first", "RSS last", "growth", "fds 1st", "last", "growth"
    bad = 0
    for (k = 1; k <= names; k++) {
      p = order[k]; q = int(n[p] / 4); if (q < 1) q = 1
      for (i = 1; i <= n[p]; i++) { r[i] = rss[p, i]; f[i] = fds[p, i] }
      r1 = median(r, 1, q); r2 = median(r, n[p] - q + 1, n[p])
      f1 = median(f, 1, q); f2 = median(f, n[p] - q + 1, n[p])
      g = r1 > 0 ? (r2 - r1) * 100 / r1 : 0
      flag = ""
      if (g > max_rss) flag = flag " RSS GREW"
      if (f2 - f1 > max_fd) flag = flag " FDS GREW"
      if (n[p] < 4) flag = flag " (too few samples to judge)"
      if (flag ~ /GREW/) bad = 1
      printf "   %-10s %8d %9dK %9dK %+7.1f%% %6d %6d %+6d%s\n", p, n[p], r1, r2, g, f1, f2, f2 - f1, flag
      delete r; delete f
    }
    if (names == 0) print "   (no sample after the warm-up)"
    exit bad
  }' "$run/samples.tsv"
grew=$?
echo "   criticals and warnings in the logs: $(cat "$run"/*.log | grep -c -E 'CRITICAL|WARNING')"
if [ "$failures" -gt 0 ] || [ "$grew" != 0 ] || [ -n "$interrupted" ]; then
  echo "== soak FAILED (thresholds: RSS +${MAX_RSS_GROWTH}%, fds +${MAX_FD_GROWTH}); logs in $run"
  exit 1
fi
echo "== soak passed: flat within RSS +${MAX_RSS_GROWTH}% and fds +${MAX_FD_GROWTH}; logs in $run"
