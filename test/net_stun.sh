#!/usr/bin/env bash
# net_stun.sh -- server-reflexive (STUN) candidates through real NATs, in a
# lab of network namespaces and iptables:
#
#   PUB    a bridge, 10.77.0.1: tracker, sources, coturn (--stun-only)
#   NATA   router 10.77.0.2 <-> 192.168.1.1    NATB  10.77.0.3 <-> 192.168.2.1
#          each a home NAT: MASQUERADE out, and from outside only replies
#          get in (to the hosts behind and to the router itself)
#   HOSTA  192.168.1.2 (peer a)                HOSTB 192.168.2.2 (peer b)
#
# Two channels run side by side, each with its own source: "stun", whose
# peers a and b have --stun, and "nostun", the control, whose a and b have
# not. After 10 s both --stun peers play (continuity >= 0.99, >= 20 chunks
# due), and a <-> b -- the path across both NATs -- is up on both sides over
# a pair with a srflx candidate, its remote the other NAT's public address.
# Without --stun, a <-> b is tried and fails (host candidates on private nets
# cannot be reached), and no pair between them is selected: the lab really
# blocks what STUN gets through. About 12 s. Skipped (77) unless root, with
# `ip netns`, iptables and turnserver; every namespace and process goes at
# exit, pass or fail (PTV_KEEP=1 keeps the logs).
set -euo pipefail
NET_TEST=net_stun
# shellcheck source=test/net_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_lib.sh"
skip() { echo "net_stun.sh: $*; skipped"; exit 77; }
((EUID == 0)) || skip "needs root (network namespaces, iptables)"
command -v ip >/dev/null || skip "ip (iproute2) not installed"
command -v iptables >/dev/null || skip "iptables not installed (apt-get install iptables)"
command -v turnserver >/dev/null || skip "turnserver (coturn) not installed"

# Namespace names carry our pid: parallel runs do not collide. Interface
# names live inside the namespaces, so they need no prefix.
ns=ptvs$$
PUB=${ns}pub NATA=${ns}nata NATB=${ns}natb HOSTA=${ns}hosta HOSTB=${ns}hostb
made=()
lab_cleanup() {
  local s
  net_cleanup
  for s in "${made[@]}"; do ip netns del "$s" 2>/dev/null || true; done
}
trap lab_cleanup EXIT
trap 'exit 130' INT TERM
# in_ns NS CMD...: for commands in the foreground. Those in the background
# are started as `ip netns exec NS CMD &`: ip execs CMD, so $! is CMD's pid
# (through a function it would be a subshell's, and CMD would outlive it).
in_ns() { ip netns exec "$@"; }
mkns() {
  ip netns add "$1" 2>/dev/null || return 1
  made+=("$1")
  ip -n "$1" link set lo up
}

mkns "$PUB" || skip "cannot create network namespaces (ip netns add)"
ip -n "$PUB" link add br0 type bridge
ip -n "$PUB" addr add 10.77.0.1/24 dev br0
ip -n "$PUB" link set br0 up
nat() { # nat NS HOSTNS X: router 10.77.0.X / 192.168.(X-1).1, host .2 behind
  local r=$1 h=$2 pub=10.77.0.$3 net=192.168.$(($3 - 1))
  mkns "$r"
  mkns "$h"
  ip -n "$r" link add wan type veth peer name "up$3" netns "$PUB"
  ip -n "$PUB" link set "up$3" master br0 up
  ip -n "$r" addr add "$pub/24" dev wan
  ip -n "$r" link add lan type veth peer name eth0 netns "$h"
  ip -n "$r" addr add "$net.1/24" dev lan
  ip -n "$r" link set wan up
  ip -n "$r" link set lan up
  ip -n "$h" addr add "$net.2/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" route add default via "$net.1"
  in_ns "$r" sysctl -qw net.ipv4.ip_forward=1
  in_ns "$r" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
  in_ns "$r" iptables -P FORWARD DROP
  in_ns "$r" iptables -A FORWARD -i lan -o wan -j ACCEPT
  in_ns "$r" iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  # Like a home router, the router itself takes only replies from outside.
  # This matters: a hole-punching check that reaches the router before the
  # host behind it has sent to that address (b's first check to a's srflx)
  # is accepted (port unreachable) and leaves a conntrack entry; the host's
  # own packet to that address then clashes with it, MASQUERADE gives it
  # another source port, the mapping STUN found no longer holds, and a <-> b
  # fails (seen: without these two rules check 2 fails every time).
  in_ns "$r" iptables -A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  in_ns "$r" iptables -A INPUT -i wan -j DROP
}
nat "$NATA" "$HOSTA" 2
nat "$NATB" "$HOSTB" 3

ip netns exec "$PUB" turnserver -n --listening-ip=10.77.0.1 --listening-port=3478 --stun-only \
  --no-auth --no-tls --no-dtls --no-cli --userdb="$tmp/turndb" --pidfile="$tmp/turn.pid" \
  --log-file=stdout --simple-log >"$tmp/turn.log" 2>&1 &
pids+=("$!")
ip netns exec "$PUB" "$bin/peertv-tracker" --listen 10.77.0.1:7070 --db "$tmp/tracker.db" \
  --http 127.0.0.1:0 >"$tmp/tracker.out" 2>"$tmp/tracker.err" &
pids+=("$!")
wait_line "$tmp/tracker.out" "listening on"
kill -0 "${pids[0]}" 2>/dev/null || { echo "net_stun.sh: turnserver did not start:"; tail -5 "$tmp/turn.log"; exit 1; }

# Two channels side by side: "stun" (peers with --stun) and "nostun" (the
# control, peers without). Each has its own source in PUB, one peer in
# HOSTA (a) and one in HOSTB (b). A peer looks for 8 partners, so with 3
# members all partner with all: each channel has one cross-NAT pair, a <-> b.
trk=(--tracker 10.77.0.1:7070)
for ch in stun nostun; do
  ip netns exec "$PUB" "$bin/peertv-source" "${trk[@]}" --channel "$ch" --rate 1M --key "$tmp/$ch.key" \
    >"$tmp/src_$ch.out" 2>"$tmp/src_$ch.err" &
  pids+=("$!")
done
for ch in stun nostun; do wait_line "$tmp/src_$ch.err" "joined channel"; done
declare -A hostns=([a]=$HOSTA [b]=$HOSTB)
for ch in stun nostun; do
  opt=()
  [[ $ch = stun ]] && opt=(--stun 10.77.0.1:3478)
  for h in a b; do
    # -v: the log says "path to ID up (PAIR) ..." and "path to ID failed: WHY"
    ip netns exec "${hostns[$h]}" "$bin/peertv-peer" "${trk[@]}" --channel "$ch" "${opt[@]}" -v \
      --http 127.0.0.1:0 >"$tmp/$ch$h.out" 2>"$tmp/$ch$h.err" &
    pids+=("$!")
  done
done
declare -A hport id
for ch in stun nostun; do
  for h in a b; do hport[$ch$h]=$(http_port "$tmp/$ch$h.out"); done
done
stats() { # stats CHANNEL a|b: its /stats into $tmp/CHANNELa.json ({} if none), its id
  ip netns exec "${hostns[$2]}" curl -sf --max-time 3 "http://127.0.0.1:${hport[$1$2]}/stats" \
    >"$tmp/$1$2.json" || echo '{}' >"$tmp/$1$2.json"
  id[$1$2]=$(jq -r '.id // empty' "$tmp/$1$2.json")
  echo "# $1 peer $2 (id ${id[$1$2]}): $(jq -c '[.state, .continuity, .chunks_due, .partner_ids, .paths.selected]' "$tmp/$1$2.json")"
}
# Selected pairs are "TYPE ADDR:PORT -> TYPE ADDR:PORT" (local -> remote),
# one per partner whose path is up, not labelled with the partner: a's pair
# with b is the one whose remote is behind NATB -- its public address
# 10.77.0.3 (or b's own, 192.168.2.2, which cannot work); b's with a,
# 10.77.0.2 or 192.168.1.2. Nothing else lives there.
declare -A other=([a]='^(10\.77\.0\.3|192\.168\.2\.2):' [b]='^(10\.77\.0\.2|192\.168\.1\.2):')
cross() { # cross CHANNEL a|b: that peer's selected pair(s) with the other host
  jq -r --arg re "${other[$2]}" '.paths.selected[]? | select(split(" -> ")[1] | split(" ")[1] | test($re))' \
    "$tmp/$1$2.json"
}
sleep 10

for h in a b; do stats stun "$h"; done
ok_play=0
for h in a b; do
  read -r st c due < <(jq -r '[.state // "none", .continuity // 0, .chunks_due // 0] | @tsv' "$tmp/stun$h.json")
  [[ $st == playing ]] && (($(echo "$c >= 0.99" | bc))) && ((due >= 20)) && ok_play=$((ok_play + 1))
done
check "both --stun peers behind NATs play (continuity >= 0.99, >= 20 chunks due)" test "$ok_play" -eq 2

pair_re='^(host|srflx|prflx) [0-9.]+:[0-9]+ -> (host|srflx|prflx) [0-9.]+:[0-9]+$'
srflx_with() { # srflx_with a|b: its pair with the other is up, has srflx, and the other is a partner
  local me=$1 them=$2 p
  p=$(cross stun "$me")
  [[ $p =~ $pair_re && $p == *srflx* ]] &&
    jq -e --argjson t "${id[stun$them]:-0}" '.partner_ids | index($t) != null' "$tmp/stun$me.json" >/dev/null
}
both_srflx() { srflx_with a b && srflx_with b a; }
echo "# with STUN: a -> b: $(cross stun a | tr '\n' ' '); b -> a: $(cross stun b | tr '\n' ' ')"
check "a <-> b across both NATs is up, over a pair with a srflx candidate (seen from both)" \
  both_srflx

# The control. Without --stun, a and b offer only host candidates, their
# private addresses, which the other cannot reach (nothing routes to
# 192.168.x from outside); their checks die at the NATs and ICE fails when
# they time out (~7 s here; the path set-up timeout is 10 s). Each still
# reaches the public source, as a prflx candidate (its NAT's address). Wait
# until a or b logs that its path to the other failed -- so the pair was
# tried -- then neither may have a selected pair with the other.
gave_up=0
for _ in $(seq 80); do
  for h in a b; do [[ -n ${id[nostun$h]:-} ]] || stats nostun "$h" >/dev/null; done
  if [[ -n ${id[nostuna]:-} && -n ${id[nostunb]:-} ]] &&
    { grep -q "path to ${id[nostunb]} failed" "$tmp/nostuna.err" ||
      grep -q "path to ${id[nostuna]} failed" "$tmp/nostunb.err"; }; then
    gave_up=1
    break
  fi
  sleep 0.1
done
for h in a b; do stats nostun "$h"; done
na=$(cross nostun a)
nb=$(cross nostun b)
nsel=$(jq -r '.paths.selected[]?' "$tmp/nostuna.json" "$tmp/nostunb.json" | wc -l)
echo "# without STUN: a -> b: ${na:-none}; b -> a: ${nb:-none}"
grep "path to" "$tmp"/*.err | sed "s|^$tmp/|#   |" || true
check "without --stun, a <-> b is tried and fails: the NATs block host-only paths" \
  test "$gave_up" -eq 1 -a -z "$na$nb" -a "$nsel" -ge 2
net_finish
