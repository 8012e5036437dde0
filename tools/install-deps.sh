#!/bin/sh
# Installs the Debian 12 packages canopy needs to build, test and run.
# Does nothing (and needs no network) when they are all present already.
set -eu
packages="autoconf automake libtool autopoint gettext pkg-config make gcc clang
  libglib2.0-dev libglib2.0-dev-bin libgnutls28-dev libxml2-dev libxml2-utils
  libcunit1-dev libsqlite3-dev sqlite3 freetds-dev freetds-bin libpq-dev postgresql
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libsoup-3.0-dev libjson-glib-dev glib-networking
  iproute2 xz-utils valgrind faketime jq perl man-db groff-base systemd
  rsync zsync casync curl iputils-ping chromium fonts-dejavu-core
  debhelper dpkg-dev lintian"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing
fi
