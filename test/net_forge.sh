#!/usr/bin/env bash
# net_forge.sh -- forged chunks on the real network (issue 4). A tracker, a
# source (1 Mbit/s, 250 ms chunks) and 7 peers on loopback; one peer runs
# with PTV_TEST_FORGE=1 and corrupts a byte of every chunk it forwards
# (keeping the source's signature). After 25 s:
#   - honest peers refused forged chunks (chunks_bad > 0 on at least two),
#   - no honest peer keeps the forger as a partner,
#   - the tracker banned it (two distinct reporters) and told it so,
#   - every honest peer still plays with continuity >= 0.97 (a chunk only
#     the forger held can be lost while everyone turns to the source).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_builddir=${top_builddir:-$here/../build}
bin=$top_builddir
for p in peertv-tracker peertv-source peertv-peer; do
  [[ -x $bin/$p ]] || { echo "net_forge.sh: $bin/$p not built" >&2; exit 99; }
done
command -v jq >/dev/null && command -v curl >/dev/null || { echo "net_forge.sh: needs jq and curl" >&2; exit 99; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ptv_net_forge.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${PTV_KEEP:-0} = 1 ]]; then echo "# logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
n=0
failed=0
check() {
  local what=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; failed=$((failed + 1)); fi
}
wait_line() {
  local i
  for i in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "# timed out waiting for '$2' in $1" >&2
  return 1
}

"$bin/peertv-tracker" --listen 127.0.0.1:0 --db "$tmp/t.db" --http 127.0.0.1:0 >"$tmp/t.out" 2>"$tmp/t.err" &
pids+=("$!")
wait_line "$tmp/t.out" listening
tport=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$tmp/t.out")
hport=$(sed -n 's/.* http [0-9.]*:\([0-9]*\).*/\1/p' "$tmp/t.out")
"$bin/peertv-source" --tracker "127.0.0.1:$tport" --channel forge --rate 1M --key "$tmp/s.key" \
  --local-addr 127.0.0.1 >"$tmp/s.out" 2>"$tmp/s.err" &
pids+=("$!")
wait_line "$tmp/s.err" "joined channel"
NP=7
FORGER=${PTV_FORGER:-1}
port=()
for i in $(seq "$NP"); do
  forge=0
  [[ $i = "$FORGER" ]] && forge=1
  PTV_TEST_FORGE=$forge "$bin/peertv-peer" --tracker "127.0.0.1:$tport" --channel forge \
    --local-addr 127.0.0.1 --http 127.0.0.1:0 >"$tmp/p$i.out" 2>"$tmp/p$i.err" &
  pids+=("$!")
  sleep 0.2
done
for i in $(seq "$NP"); do
  wait_line "$tmp/p$i.out" "^http "
  port[i]=$(sed -n 's/^http [0-9.]*:\([0-9]*\)$/\1/p' "$tmp/p$i.out")
done
sleep 25
for i in $(seq "$NP"); do curl -sf --max-time 3 "http://127.0.0.1:${port[i]}/stats" >"$tmp/s$i.json" || true; done
# its id from its log: once banned it is told so and leaves (no /stats)
fid=$(sed -n 's/.*joined channel forge as \([0-9]*\).*/\1/p' "$tmp/p$FORGER.err" 2>/dev/null | head -1)
fid=${fid:-0}
bad_total=0
refusers=0
keep=0
lowc=0
for i in $(seq "$NP"); do
  [[ $i = "$FORGER" ]] && continue
  read -r b c has < <(jq -r --argjson f "$fid" '[.chunks_bad, .continuity, (.partner_ids | index($f) != null)] | @tsv' "$tmp/s$i.json")
  echo "# peer $i: chunks_bad $b continuity $c forger_partner $has"
  bad_total=$((bad_total + b))
  ((b > 0)) && refusers=$((refusers + 1))
  [[ $has == true ]] && keep=$((keep + 1))
  (($(echo "$c < 0.97" | bc))) && lowc=$((lowc + 1))
done
bans=$(curl -sf --max-time 3 "http://127.0.0.1:$hport/metrics" | awk '$1 == "peertv_tracker_bans_total" {print $2}')
echo "# forger $fid: $(grep -c "banned" "$tmp/p$FORGER.err" || true) 'banned' lines in its log; tracker bans $bans"
check "at least two honest peers refused forged chunks" test "$refusers" -ge 2
check "no honest peer keeps the forger as a partner" test "$keep" -eq 0
check "the tracker banned the forger" test "${bans:-0}" -ge 1
check "every honest peer plays with continuity >= 0.97" test "$lowc" -eq 0
check "the forger was told it is banned" grep -q "banned" "$tmp/p$FORGER.err"
if ((failed)); then PTV_KEEP=1; exit 1; fi
