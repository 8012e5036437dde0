# Functions to run canopy on this one machine: canopyd with the console API,
# an HTTP origin (the CDN) and agents in offices on their own loopback
# addresses. Sourced by tools/demo.sh and tests/soak/soak.sh (POSIX sh and
# `local`, which dash and bash have).
#
# The caller sets, before using them:
#   prefix   where canopy is installed (PREFIX/sbin/canopyd, ...)
#   run      the directory for configurations, state and logs
#   port     the server's transport port; console: the console API port
# and they keep in $pids the processes they started, which stop_started
# stops (forget_started PID takes one out once the caller has reaped it).

pids=""
ctl() { "$prefix/bin/canopyctl" --profile "$run/profile" "$@"; }

office_name() { # N -> the name of office N (1-based)
  set -- "$1" North South East West Central Harbour Valley Ridge
  if [ "$1" -le 8 ]; then shift "$1"; echo "$1"; else echo "Office$1"; fi
}

write_topology() { # OFFICES: office N on 127.0.N.0/24, 200 Mbit/s WAN links
  local i=1
  echo "office,parent,type,subnets,wan_rate,metered" > "$run/topology.csv"
  while [ "$i" -le "$1" ]; do
    echo "$(office_name "$i"),,Default,127.0.$i.0/24,200M,no" >> "$run/topology.csv"
    i=$((i + 1))
  done
}

write_server_config() { # canopyd.xml: SQLite, TCP+TLS, console, group Branch
  cat > "$run/canopyd.xml" <<EOF
<server>
  <name>localhost</name>
  <state-directory>$run/server</state-directory>
  <assigned-group>Branch</assigned-group>
  <distribution-optimization enabled="true" topology="$run/topology.csv"/>
  <licensing seats="100"/>
  <heartbeat interval="2"/>
  <console address="127.0.0.1" port="$console"/>
  <backend plugin="sqlite"><database>$run/server/canopy.db</database></backend>
  <transport plugin="tcp"><listen address="127.0.0.1" port="$port"/></transport>
</server>
EOF
}

start_server() { # sets server_pid; $CANOPYD_WRAPPER (e.g. valgrind ...) runs canopyd
  ${CANOPYD_WRAPPER:-} "$prefix/sbin/canopyd" --config "$run/canopyd.xml" > "$run/canopyd.log" 2>&1 &
  server_pid=$!
  pids="$pids $server_pid"
}

start_origin() { # PROGRAM FILE LOG: sets origin_pid and url once it listens
  local tries=0
  "$1" "$2" 127.0.0.1 0 > "$3" 2>&1 &
  origin_pid=$!
  pids="$pids $origin_pid"
  url=""
  while [ -z "$url" ] && [ "$tries" -lt 100 ]; do
    sleep 0.1
    url=$(sed -n 's/^origin //p' "$3")
    tries=$((tries + 1))
  done
  [ -n "$url" ] || { echo "the origin did not start: see $3" >&2; return 1; }
}

write_agent_config() { # NAME GROUP PEER-ADDRESS [CACHE-QUOTA]
  mkdir -p "$run/$1"
  install -m 0600 "$run/server/shared-key" "$run/$1/shared-key"
  local cache=""
  [ -z "${4:-}" ] || cache="
  <cache quota=\"$4\"/>"
  cat > "$run/$1.xml" <<EOF
<agent>
  <server host="127.0.0.1" port="$port"/>
  <state-directory>$run/$1</state-directory>
  <group>$2</group>$cache
  <peers address="$3" port="0"/>
  <destinations><directory path="$run"/></destinations>
  <transport plugin="tcp"/>
</agent>
EOF
}

start_agent() { # NAME: sets agent_pid, appends to its log; $AGENT_WRAPPER as above
  ${AGENT_WRAPPER:-} "$prefix/sbin/canopy-agent" --config "$run/$1.xml" >> "$run/$1.log" 2>&1 &
  agent_pid=$!
  pids="$pids $agent_pid"
}

admin_add() { # NAME ROLE: the token "canopyd admin-add" prints, kept in $run/NAME.token (0600)
  (umask 077 && "$prefix/sbin/canopyd" admin-add "$1" --role "$2" --config "$run/canopyd.xml" \
    | sed -n 's/^ *token: *//p' > "$run/$1.token")
  [ -s "$run/$1.token" ] || { echo "canopyd admin-add $1 printed no token" >&2; return 1; }
}

ctl_login() { # as the administrator "demo-admin", made on first use
  [ -s "$run/demo-admin.token" ] || admin_add demo-admin administrator || return 1
  ctl login --server "https://127.0.0.1:$console" \
    --certificate "$run/server/console-cert.pem" --token-file "$run/demo-admin.token"
}

ctl_content_add() { # NAME VERSION URL: prints the content's ID
  ctl --json content-add --name "$1" --version "$2" "$3" \
    | sed -n 's/^ *"id" : "\(.*\)",$/\1/p' | head -n 1
}

ctl_deploy() { # CONTENT GROUP DESTINATION: prints the deployment's ID
  ctl --json deploy --content "$1" --group "$2" --destination "$3" \
    | sed -n 's/^ *"id" : "\(.*\)"$/\1/p'
}

started_here() { # PID: still a child of this shell (PIDs are reused once reaped)
  [ "$(awk '/^PPid:/ { print $2 }' "/proc/$1/status" 2>/dev/null)" = "$$" ]
}

forget_started() { # PID: no longer ours to stop (it was reaped)
  local p rest=""
  for p in $pids; do [ "$p" = "$1" ] || rest="$rest $p"; done
  pids=$rest
}

stop_started() {
  local pid
  for pid in $pids; do started_here "$pid" && kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
  pids=""
}
