#!/usr/bin/env bash
# net_cli.sh -- the command lines of peertv-tracker, peertv-peer and
# peertv-source: --help and --version, usage errors (exit 2, one message
# naming the option), and runtime refusals (exit 1, a clear message): a
# channel that does not exist, an unreachable tracker address form, a key
# file with loose permissions.
set -euo pipefail
NET_TEST=net_cli
# shellcheck source=test/net_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_lib.sh"

# expect STATUS PATTERN CMD...: CMD exits with STATUS and its output matches
expect() {
  local want=$1 pat=$2 rc=0
  shift 2
  timeout 20 "$@" >"$tmp/out" 2>&1 || rc=$?
  if [[ $rc != "$want" ]] || ! grep -q -- "$pat" "$tmp/out"; then
    echo "# $* -> exit $rc, output: $(head -c 300 "$tmp/out")"
    return 1
  fi
}

for p in tracker peer source; do
  check "peertv-$p --help lists its options" expect 0 "Usage: peertv-$p" "$bin/peertv-$p" --help
  check "peertv-$p --version" expect 0 "peertv-$p [0-9]" "$bin/peertv-$p" --version
  check "peertv-$p refuses an unknown option" expect 2 "" "$bin/peertv-$p" --no-such-option
done
for p in peer source; do
  check "peertv-$p needs --tracker and --channel" expect 2 "tracker and --channel are required" \
    "$bin/peertv-$p" --channel c
  check "peertv-$p: a bad --upload-limit is named" expect 2 "upload-limit wants a rate" \
    "$bin/peertv-$p" --tracker 127.0.0.1:1 --channel c --upload-limit fast
  check "peertv-$p: a bad --duration is named" expect 2 "duration wants seconds" \
    "$bin/peertv-$p" --tracker 127.0.0.1:1 --channel c --duration -3
  check "peertv-$p: a bad --poll-interval is named" expect 2 "poll-interval wants milliseconds" \
    "$bin/peertv-$p" --tracker 127.0.0.1:1 --channel c --poll-interval 500
  check "peertv-$p: a tracker that is not HOST:PORT" expect 1 "must be HOST:PORT" \
    "$bin/peertv-$p" --tracker nowhere --channel c --key "$tmp/$p.key"
  check "peertv-$p: --relay-only without --turn" expect 1 "relay-only needs --turn" \
    "$bin/peertv-$p" --tracker 127.0.0.1:1 --channel c --relay-only --key "$tmp/$p.key"
done
check "peertv-peer: a bad --buffer is named" expect 2 "buffer wants seconds" \
  "$bin/peertv-peer" --tracker 127.0.0.1:1 --channel c --buffer 0
check "peertv-source: --chunk-ms out of range" expect 2 "chunk-ms wants 50..2000" \
  "$bin/peertv-source" --tracker 127.0.0.1:1 --channel c --chunk-ms 10
check "peertv-source: an input it cannot take (a URI)" expect 2 "unsupported input" \
  "$bin/peertv-source" --tracker 127.0.0.1:1 --channel c --input rtsp://cam/stream
check "peertv-source: a malformed udp:// input" expect 2 "expected udp://HOST:PORT" \
  "$bin/peertv-source" --tracker 127.0.0.1:1 --channel c --input udp://cam
check "peertv-source: --reencode without --input" expect 2 "reencode needs --input" \
  "$bin/peertv-source" --tracker 127.0.0.1:1 --channel c --reencode
check "peertv-tracker: a bad --listen" expect 2 "listen wants ADDR:PORT" \
  "$bin/peertv-tracker" --listen 7070 --db "$tmp/x.db"
touch "$tmp/loose.key"
chmod 644 "$tmp/loose.key"
check "a key file others can read is refused" expect 1 "key file" \
  "$bin/peertv-source" --tracker 127.0.0.1:1 --channel c --key "$tmp/loose.key"

start_tracker 127.0.0.1:0
check "a peer asking for a channel nobody publishes is told so and exits 1" \
  expect 1 "no live channel" "$bin/peertv-peer" --tracker "127.0.0.1:$tport" --channel absent \
  --local-addr 127.0.0.1
net_finish
