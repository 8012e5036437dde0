#!/bin/sh
# make bench-delta: version 2 of a realistic package against version 1.
# Builds a tar of SIZE_MIB (300) MiB of real files from /usr/share and
# /usr/lib, then for each of 1 %, 5 % and 20 % of its files replaced (and a
# fifth as many added) prints, over the bytes that really changed, what
# each tool moves for version 2 when version 1 is at hand: canopy (its
# chunks version 1 lacks, plus its manifest), rsync's literal data, zsync's
# fetched bytes and casync's new chunks (compressed, as its store serves
# them); for the tar itself, gzip'd and gzip --rsyncable. Then the
# chunker's throughput against SHA-256 alone, and changed bytes by average
# chunk size. RUNS (1) seeds per ratio, medians printed; KEEP=1 keeps the
# files. Usage: delta-bench.sh BUILDDIR
set -eu

builddir=${1:?usage: delta-bench.sh BUILDDIR}
tool="$builddir/tests/bench/delta-bench"
size_mib=${SIZE_MIB:-300}
runs=${RUNS:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/canopy-delta-bench.XXXXXX")
http_pid=""

cleanup () {
  [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] && echo "files kept in $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# rsync is the reference: install it if it is missing (Debian).
if ! command -v rsync > /dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends rsync > /dev/null
fi
have () { command -v "$1" > /dev/null 2>&1; }

# Real files, in an order fixed by a seeded shuffle, up to the size.
find /usr/share /usr/lib -xdev -type f -size +0 -size -8M -readable 2>/dev/null |
  LC_ALL=C sort |
  awk 'BEGIN { srand(1) } { printf "%.12f\t%s\n", rand(), $0 }' | LC_ALL=C sort -n |
  cut -f2- > "$work/shuffled"
tr '\n' '\0' < "$work/shuffled" | xargs -0 stat -c '%s	%n' > "$work/sized"
awk -F '\t' -v limit=$((size_mib * 1048576)) '
  total < limit { total += $1; print $2 > "'"$work/chosen"'"; next }
  { print $1 "\t" $2 > "'"$work/spare"'" }' "$work/sized"
mkdir "$work/v1"
rsync -a --files-from="$work/chosen" / "$work/v1/"
n_files=$(wc -l < "$work/chosen")

make_tar () { # DIR OUT
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf "$2" .
}
make_tar "$work/v1" "$work/v1.tar"
gzip -n -6 -c "$work/v1.tar" > "$work/v1.tar.gz"
gzip -n -6 --rsyncable -c "$work/v1.tar" > "$work/v1.tar.rgz"
echo "package: $(($(stat -c %s "$work/v1.tar") / 1048576)) MiB tar of $n_files files from /usr/share and /usr/lib"

# zsync fetches what it lacks from a URL with range requests: the test
# origin serves version 2 on loopback, as a CDN would.
origin="$builddir/tests/canopy-test-origin"

# Version 2 with PERCENT % of the files replaced by new bytes of the same
# size and a fifth as many added; prints the bytes that changed.
make_v2 () { # PERCENT SEED
  rm -rf "$work/v2"
  cp -a "$work/v1" "$work/v2"
  changed=0
  awk -v p="$1" -v seed="$2" 'BEGIN { srand(seed) } rand() * 100 < p' "$work/chosen" > "$work/replaced"
  while IFS= read -r f; do
    s=$(stat -c %s "$work/v2$f")
    head -c "$s" /dev/urandom > "$work/v2$f"
    changed=$((changed + s))
  done < "$work/replaced"
  n_add=$(($(wc -l < "$work/replaced") / 5 + 1))
  mkdir -p "$work/v2/usr/share/added"
  i=0
  awk -v seed="$2" 'BEGIN { srand(seed + 7) } rand() < 0.05' "$work/spare" | head -n "$n_add" |
    while IFS="$(printf '\t')" read -r s f; do
      i=$((i + 1))
      cp "$f" "$work/v2/usr/share/added/$i-$(basename "$f")"
      echo "$s"
    done > "$work/added"
  for s in $(cat "$work/added"); do changed=$((changed + s)); done
  make_tar "$work/v2" "$work/v2.tar"
  gzip -n -6 -c "$work/v2.tar" > "$work/v2.tar.gz"
  gzip -n -6 --rsyncable -c "$work/v2.tar" > "$work/v2.tar.rgz"
  echo "$changed"
}

rsync_literal () { # V1 V2
  rm -rf "$work/rs-src" "$work/rs-dst"
  mkdir "$work/rs-src" "$work/rs-dst"
  cp "$1" "$work/rs-dst/pkg"
  cp "$2" "$work/rs-src/pkg"
  rsync --stats --no-whole-file "$work/rs-src/pkg" "$work/rs-dst/pkg" |
    awk -F': ' '/^Literal data/ { gsub(/[^0-9]/, "", $2); print $2 }'
}

zsync_fetched () { # V1 V2
  have zsync && have zsyncmake && [ -x "$origin" ] || { echo "-"; return; }
  rm -f "$work/z.out" "$work/z.zsync" "$work/origin.log"
  "$origin" "$2" 127.0.0.1 0 > "$work/origin.log" 2>&1 &
  http_pid=$!
  i=0
  while ! grep -qs '^origin ' "$work/origin.log" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  url=$(awk '/^origin / { print $2 }' "$work/origin.log")
  (cd "$work" && zsyncmake -Z -u "$url" -o z.zsync "$2" > /dev/null 2>&1)
  (cd "$work" && zsync -i "$1" -o z.out z.zsync 2>&1) > "$work/z.log" || true
  kill "$http_pid" 2>/dev/null; wait "$http_pid" 2>/dev/null || true
  http_pid=""
  cmp -s "$work/z.out" "$2" || { echo "-"; return; }
  # What zsync says it fetched over HTTP.
  awk '/fetched/ { for (i = 1; i <= NF; i++) if ($i == "fetched") print $(i + 1) }' "$work/z.log" | tail -n 1
}

casync_new () { # V1 V2
  have casync || { echo "-"; return; }
  rm -rf "$work/ca1" "$work/ca2"
  casync make --store="$work/ca1" "$work/ca1.caibx" "$1" > /dev/null
  casync make --store="$work/ca2" "$work/ca2.caibx" "$2" > /dev/null
  (cd "$work/ca2" && find . -type f -name '*.cacnk') | LC_ALL=C sort > "$work/ca2.list"
  (cd "$work/ca1" && find . -type f -name '*.cacnk') | LC_ALL=C sort > "$work/ca1.list"
  LC_ALL=C comm -23 "$work/ca2.list" "$work/ca1.list" |
    (cd "$work/ca2" && xargs -r stat -c %s) | awk '{ t += $1 } END { print t + 0 }'
}

ratio () { # BYTES CHANGED
  case "$1" in -|"") echo "-" ;; *) awk -v b="$1" -v c="$2" 'BEGIN { printf "%.3f", b / c }' ;; esac
}

median () { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0 || v[1] == "-") print "-"; else print v[int((NR + 1) / 2)] }'; }

printf '\n%-8s %-13s %12s %8s %8s %8s %8s %10s\n' "files" "variant" "changed MiB" "canopy" "rsync" "zsync" "casync" "fixed 1MiB"
for pct in 1 5 20; do
  for variant in tar tar.gz tar.rgz; do : > "$work/res.$variant"; done
  for r in $(seq 1 "$runs"); do
    changed=$(make_v2 "$pct" "$((pct * 100 + r))")
    for variant in tar tar.gz tar.rgz; do
      a="$work/v1.$variant"; b="$work/v2.$variant"
      set -- $("$tool" delta "$a" "$b")
      canopy=$(($2 + $6)); fixed=$8
      echo "$(ratio "$canopy" "$changed") $(ratio "$(rsync_literal "$a" "$b")" "$changed") $(ratio "$(zsync_fetched "$a" "$b")" "$changed") $(ratio "$(casync_new "$a" "$b")" "$changed") $(ratio "$fixed" "$changed") $changed" >> "$work/res.$variant"
    done
    [ "$pct" = 5 ] && [ "$r" = 1 ] && cp "$work/v2.tar" "$work/v2-5.tar"
  done
  for variant in tar tar.gz tar.rgz; do
    name=$variant; [ "$variant" = tar.rgz ] && name="tar.gz rsync"
    printf '%-8s %-13s %12s %8s %8s %8s %8s %10s\n' "$pct%" "$name" \
      "$(cut -d' ' -f6 "$work/res.$variant" | median | awk '{ printf "%.1f", $1 / 1048576 }')" \
      "$(cut -d' ' -f1 "$work/res.$variant" | median)" "$(cut -d' ' -f2 "$work/res.$variant" | median)" \
      "$(cut -d' ' -f3 "$work/res.$variant" | median)" "$(cut -d' ' -f4 "$work/res.$variant" | median)" \
      "$(cut -d' ' -f5 "$work/res.$variant" | median)"
  done
done
echo "(each figure: bytes moved for version 2 over the bytes of the files replaced and added;"
echo " canopy = chunks version 1 lacks + manifest; rsync = literal data; zsync = fetched;"
echo " casync = its new compressed chunks; fixed 1MiB = canopy's former fixed-size chunks)"
have zsync || echo "zsync: not installed (apt-get install zsync)"
have casync || echo "casync: not installed (apt-get install casync)"

echo
"$tool" throughput "$work/v1.tar"
echo
echo "average chunk size against changed bytes, 5 % of the files replaced (tar):"
"$tool" sizes "$work/v1.tar" "$work/v2-5.tar"
