#!/bin/sh
# The Debian packages as an admin meets them (suite "deb", docs/packaging.md):
# "make deb" builds them, lintian finds no error, "dpkg -i" installs them on
# this machine, canopyd and an agent are started as their systemd units
# would start them (systemd is not PID 1 in CI: the unit's user, ExecStartPre
# and ExecStart, its capability bounding set and no_new_privs), one package
# is deployed through the installed canopyctl and compared byte for byte,
# and "dpkg --purge" removes everything again.
#
# Usage: deb-test.sh BUILDDIR. Exit 0 passed, 77 cannot run here (the reason
# on the last line), anything else failed.
set -eu
# An admin's shell, not the test runner's: the runner's LD_LIBRARY_PATH
# would make the installed canopyd load the build tree's libcanopy (an
# ASan build's, in CI), and its G_DEBUG, CANOPY_PLUGIN_PATH and sanitizer
# options would reach dpkg-buildpackage and the maintainer scripts.
if [ "${CANOPY_DEB_TEST_CLEAN_ENV:-}" != 1 ]; then
  exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME="${HOME:-/root}" TMPDIR="${TMPDIR:-/tmp}" LANG=C.UTF-8 CANOPY_DEB_TEST_CLEAN_ENV=1 \
    ${CANOPY_TEST_KEEP_TMP:+CANOPY_TEST_KEEP_TMP="$CANOPY_TEST_KEEP_TMP"} /bin/sh "$0" "$@"
fi
builddir=$(cd "$1" && pwd)
packages="canopy-server canopy-agent canopy-cli canopy-common libcanopy0 canopy-plugin-dev
  canopy-transport-tcp canopy-transport-quic canopy-backend-sqlite canopy-backend-freetds
  canopy-backend-postgresql"

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: installing packages needs root"
  exit 77
fi
for p in $packages; do
  if dpkg-query -W -f='${Status}\n' "$p" 2> /dev/null | grep -q ' installed$'; then
    echo "FAIL: $p is installed already on this machine; this test installs and purges its own"
    exit 1
  fi
done
for tool in dpkg-buildpackage lintian setpriv; do
  command -v "$tool" > /dev/null || { echo "FAIL: $tool is missing: run tools/install-deps.sh"; exit 1; }
done

# A directory every user may traverse: canopyd reads its configuration and
# the package as the user "canopy".
work=$(mktemp -d /tmp/canopy-deb-test.XXXXXX)
chmod 755 "$work"
pids=""
installed=""
cleanup() {
  for pid in $pids; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in $pids; do wait "$pid" 2> /dev/null || true; done
  if [ -n "$installed" ]; then
    # shellcheck disable=SC2086
    dpkg --purge $packages > "$work/purge.log" 2>&1 || cat "$work/purge.log"
  fi
  if [ "${CANOPY_TEST_KEEP_TMP:-}" = "" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== make deb"
make -C "$builddir" deb > "$work/make-deb.log" 2>&1 || { tail -n 30 "$work/make-deb.log"; fail "make deb failed"; }
debs=$(ls "$builddir"/deb/*_0*.deb | grep -v -- '-dbgsym_')
expected=$(echo $packages | wc -w)
[ "$(echo "$debs" | wc -l)" -eq "$expected" ] || fail "expected $expected packages, got: $debs"

echo "== lintian"
lintian --fail-on error --suppress-tags bad-distribution-in-changes-file $debs > "$work/lintian.log" 2>&1 ||
  { cat "$work/lintian.log"; fail "lintian reports errors"; }
if grep '^E:' "$work/lintian.log"; then fail "lintian reports errors"; fi

echo "== the SQL Server backend alone pulls FreeTDS"
for deb in $debs; do
  deps=$(dpkg-deb -f "$deb" Depends)
  case "$deb" in
    */canopy-backend-freetds_*) echo "$deps" | grep -q libsybdb || fail "canopy-backend-freetds does not depend on FreeTDS";;
    *) if echo "$deps" | grep -q libsybdb; then fail "$deb depends on FreeTDS: $deps"; fi;;
  esac
done

echo "== dpkg -i"
installed=yes
# shellcheck disable=SC2086
dpkg -i $debs > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i failed"; }
grep -q "The shared key that enrols agents is in /var/lib/canopy/shared-key" "$work/install.log" ||
  { cat "$work/install.log"; fail "the postinst does not say where the shared key is"; }
if grep -E '([0-9A-Z]{5}-){4}' "$work/install.log"; then fail "the postinst printed the shared key"; fi
getent passwd canopy > /dev/null || fail "no system user canopy"
[ "$(stat -c '%U %a' /var/lib/canopy/shared-key)" = "canopy 600" ] ||
  fail "shared-key is $(stat -c '%U %a' /var/lib/canopy/shared-key), not canopy 600"
[ "$(stat -c '%U %a' /var/lib/canopy)" = "canopy 700" ] || fail "/var/lib/canopy is not canopy's, 0700"
dpkg-query -W -f='${Conffiles}\n' canopy-server | grep -q ' /etc/canopy/canopyd.xml ' ||
  fail "/etc/canopy/canopyd.xml is not a conffile"
dpkg-query -W -f='${Conffiles}\n' canopy-agent | grep -q ' /etc/canopy/canopy-agent.xml ' ||
  fail "/etc/canopy/canopy-agent.xml is not a conffile"
for p in transport-tcp transport-quic backend-sqlite backend-freetds backend-postgresql; do
  /usr/sbin/canopyd --list-plugins | grep -q "${p#*-}" || fail "canopyd does not list the installed ${p#*-} plugin"
done
LANGUAGE=de LC_ALL=C.UTF-8 /usr/sbin/canopyd --check-config /nonexistent.xml 2>&1 | grep -q 'kann nicht gelesen werden' ||
  fail "the installed canopyd does not speak German"
pkg-config --variable=plugindir canopy-plugin | grep -q '/canopy/plugins-1$' || fail "canopy-plugin.pc is not installed"

# The unit's hardening, as written.
unit=/lib/systemd/system/canopyd.service
for line in User=canopy ProtectSystem=strict StateDirectory=canopy NoNewPrivileges=yes \
    CapabilityBoundingSet= PrivateTmp=yes ProtectHome=yes; do
  grep -qx "$line" "$unit" || fail "$unit lacks $line"
done
agent_unit=/lib/systemd/system/canopy-agent.service
for line in ProtectSystem=strict StateDirectory=canopy-agent NoNewPrivileges=yes \
    "ReadWritePaths=-/opt -/var/lib/canopy/packages" "CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_FOWNER"; do
  grep -qx "$line" "$agent_unit" || fail "$agent_unit lacks $line"
done
if command -v systemd-analyze > /dev/null; then
  systemd-analyze verify "$unit" "$agent_unit" > "$work/verify.log" 2>&1 || { cat "$work/verify.log"; fail "systemd-analyze verify"; }
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); console=$(free_port)
mkdir -m 755 "$work/packages" "$work/dest"
cat > "$work/canopyd.xml" <<XML
<server>
  <name>localhost</name>
  <state-directory>/var/lib/canopy</state-directory>
  <assigned-group>Branch</assigned-group>
  <licensing seats="10"/>
  <heartbeat interval="2"/>
  <console address="127.0.0.1" port="$console"/>
  <content-sources><directory path="$work/packages"/></content-sources>
  <backend plugin="sqlite"><database>/var/lib/canopy/canopy.db</database></backend>
  <transport plugin="tcp"><listen address="127.0.0.1" port="$port"/></transport>
</server>
XML
cat > "$work/canopy-agent.xml" <<XML
<agent>
  <server host="127.0.0.1" port="$port"/>
  <state-directory>/var/lib/canopy-agent</state-directory>
  <group>Branch</group>
  <peers address="127.0.0.1" port="0"/>
  <destinations><directory path="$work/dest"/></destinations>
  <transport plugin="tcp"/>
</agent>
XML
chmod 644 "$work/canopyd.xml" "$work/canopy-agent.xml"

# ExecStartPre= and ExecStart= of a unit, with the packaged configuration
# file replaced by the test's (free ports on loopback).
unit_exec() { # UNIT KEY CONFIG
  sed -n "s|^$2=||p" "$1" | head -n 1 | sed "s|/etc/canopy/[a-z-]*\.xml|$3|"
}
as_canopyd() { # the unit's User=, Group=, no_new_privs and empty bounding set
  exec setpriv --reuid=canopy --regid=canopy --init-groups --no-new-privs --bounding-set=-all \
    --inh-caps=-all sh -c "umask 077 && cd / && exec $*"
}
as_agent() { # root, no_new_privs, bounded to CAP_DAC_OVERRIDE and CAP_FOWNER
  exec setpriv --no-new-privs --bounding-set=-all,+dac_override,+fowner --inh-caps=-all \
    sh -c "umask 077 && exec $*"
}

echo "== canopyd as its unit runs it"
(as_canopyd "$(unit_exec "$unit" ExecStartPre "$work/canopyd.xml")") > "$work/check.log" 2>&1 ||
  { cat "$work/check.log"; fail "ExecStartPre of canopyd.service failed"; }
as_canopyd "$(unit_exec "$unit" ExecStart "$work/canopyd.xml")" > "$work/canopyd.log" 2>&1 &
pids="$pids $!"
(as_canopyd /usr/sbin/canopyd admin-add deb-admin --role administrator --config "$work/canopyd.xml") |
  sed -n 's/^ *token: *//p' > "$work/token"
[ -s "$work/token" ] || fail "canopyd admin-add printed no token"

echo "== canopy-agent as its unit runs it"
install -m 0600 /var/lib/canopy/shared-key /var/lib/canopy-agent/shared-key
(as_agent "$(unit_exec "$agent_unit" ExecStartPre "$work/canopy-agent.xml")") > "$work/agent-check.log" 2>&1 ||
  { cat "$work/agent-check.log"; fail "ExecStartPre of canopy-agent.service failed"; }
as_agent "$(unit_exec "$agent_unit" ExecStart "$work/canopy-agent.xml")" > "$work/agent.log" 2>&1 &
pids="$pids $!"

ctl() { /usr/bin/canopyctl --profile "$work/profile" "$@"; }
tries=0
until ctl login --server "https://127.0.0.1:$console" --certificate /var/lib/canopy/console-cert.pem \
    --token-file "$work/token" > "$work/login.log" 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { cat "$work/login.log" "$work/canopyd.log"; fail "canopyctl login failed"; }
  sleep 1
done
tries=0
until ctl --json devices 2> /dev/null | grep -Eq '"online" *: *true'; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { cat "$work/agent.log" "$work/canopyd.log"; fail "the agent did not enrol"; }
  sleep 1
done

echo "== deploy one package"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom > "$work/packages/package.bin"
chmod 644 "$work/packages/package.bin"
content=$(ctl --json content-add --name Package --version 1.0 "$work/packages/package.bin" |
  sed -n 's/^ *"id" : "\(.*\)",$/\1/p' | head -n 1)
[ -n "$content" ] || fail "content-add returned no ID"
deployment=$(ctl --json deploy --content "$content" --group Branch --destination "$work/dest/package.bin" |
  sed -n 's/^ *"id" : "\(.*\)"$/\1/p')
[ -n "$deployment" ] || fail "deploy returned no ID"
ctl deployment-wait "$deployment" --timeout 120 ||
  { cat "$work/agent.log" "$work/canopyd.log"; fail "the deployment did not complete"; }
cmp "$work/packages/package.bin" "$work/dest/package.bin" || fail "the installed copy differs from the original"
echo "   installed copy matches byte for byte"

echo "== dpkg --purge"
for pid in $pids; do kill -TERM "$pid" 2> /dev/null || true; done
for pid in $pids; do wait "$pid" 2> /dev/null || true; done
pids=""
# shellcheck disable=SC2086
dpkg --purge $packages > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge failed"; }
installed=""
for path in /usr/sbin/canopyd /usr/sbin/canopy-agent /usr/bin/canopyctl /etc/canopy /var/lib/canopy \
    /var/lib/canopy-agent /lib/systemd/system/canopyd.service; do
  [ ! -e "$path" ] || fail "$path is left after the purge"
done
if getent passwd canopy > /dev/null; then fail "the user canopy is left after the purge"; fi
echo "PASS"
