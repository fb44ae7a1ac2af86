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
NET_TEST=net_forge
# shellcheck source=test/net_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_lib.sh"

start_tracker 127.0.0.1:0
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
for i in $(seq "$NP"); do port[i]=$(http_port "$tmp/p$i.out"); done
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
net_finish
