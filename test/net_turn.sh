#!/usr/bin/env bash
# net_turn.sh -- relayed paths through a real TURN server (coturn from
# Debian) on loopback. A source and two peers run with --relay-only, so ICE
# may use only TURN-relayed candidate pairs; after 10 s both peers play
# (continuity >= 0.99), every selected pair is relay -> relay, and the relayed
# addresses are in the port range given to this coturn. Skipped (77)
# without turnserver.
set -euo pipefail
NET_TEST=net_turn
# shellcheck source=test/net_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_lib.sh"
command -v turnserver >/dev/null || { echo "net_turn.sh: turnserver (coturn) not installed; skipped"; exit 77; }

free_port() { # a UDP/TCP port nobody listens on, from a range tests rarely use
  local p
  for _ in $(seq 50); do
    p=$((30000 + RANDOM % 5000))
    ss -Hlnu "sport = :$p" 2>/dev/null | grep -q . || ss -Hlnt "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
  echo 34781
}

tport_turn=$(free_port)
relay_min=$((40000 + RANDOM % 20000))
turnserver -n --listening-ip=127.0.0.1 --listening-port="$tport_turn" --relay-ip=127.0.0.1 \
  --min-port="$relay_min" --max-port=$((relay_min + 200)) --lt-cred-mech --user=ptv:secret \
  --realm=peertv --no-tls --no-dtls --allow-loopback-peers --no-cli --userdb="$tmp/turndb" \
  --pidfile="$tmp/turn.pid" --log-file=stdout --simple-log >"$tmp/turn.log" 2>&1 &
pids+=("$!")
sleep 1
kill -0 "${pids[0]}" 2>/dev/null || { echo "net_turn.sh: turnserver did not start:"; tail -5 "$tmp/turn.log"; exit 1; }

start_tracker 127.0.0.1:0
relay=(--turn "127.0.0.1:$tport_turn" --turn-user ptv --turn-pass secret --relay-only --local-addr 127.0.0.1)
"$bin/peertv-source" --tracker "127.0.0.1:$tport" --channel relayed --rate 1M --key "$tmp/s.key" \
  "${relay[@]}" >"$tmp/s.out" 2>"$tmp/s.err" &
pids+=("$!")
wait_line "$tmp/s.err" "joined channel"
port=()
for i in 1 2; do
  "$bin/peertv-peer" --tracker "127.0.0.1:$tport" --channel relayed "${relay[@]}" --http 127.0.0.1:0 \
    >"$tmp/p$i.out" 2>"$tmp/p$i.err" &
  pids+=("$!")
done
for i in 1 2; do port[i]=$(http_port "$tmp/p$i.out"); done
sleep 10
ok_play=0
all_relay=1
for i in 1 2; do
  curl -sf --max-time 3 "http://127.0.0.1:${port[i]}/stats" >"$tmp/s$i.json" || continue
  read -r st c due < <(jq -r '[.state, .continuity, .chunks_due] | @tsv' "$tmp/s$i.json")
  echo "# peer $i: $st continuity $c due $due paths $(jq -c .paths.selected "$tmp/s$i.json")"
  [[ $st == playing ]] && (($(echo "$c >= 0.99" | bc))) && ((due >= 20)) && ok_play=$((ok_play + 1))
  jq -e '(.paths.selected | length) > 0 and all(.paths.selected[]; test("^relay .* -> relay "))' \
    "$tmp/s$i.json" >/dev/null || all_relay=0
done
check "both peers play over relayed paths (continuity >= 0.99)" test "$ok_play" -eq 2
check "every selected pair is relay -> relay" test "$all_relay" -eq 1
# the relayed addresses are the ones our coturn hands out
ports=$(jq -r '.paths.selected[]' "$tmp"/s*.json | grep -o '127\.0\.0\.1:[0-9]*' | cut -d: -f2)
inrange=1
for p in $ports; do ((p >= relay_min && p <= relay_min + 200)) || inrange=0; done
check "the relayed addresses come from our TURN server's port range" \
  test -n "$ports" -a "$inrange" -eq 1
net_finish
