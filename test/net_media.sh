#!/usr/bin/env bash
# net_media.sh -- a real picture through the swarm, on loopback. A tracker,
# `peertv-source --input test --chunk-ms 500` (ptv_media: a live 640x360
# test pattern and a tone, H.264 + AAC in MPEG-TS) and 3 peers with
# --record for about 12 s. Every recording must be a stream a player takes:
# ffprobe sees h264 640x360 and aac, ffmpeg decodes it without an error
# line, and its duration is within 2 s of what the peer played (chunks
# played x 500 ms, from its --stats-file). Meanwhile a second source plays
# a 3 s file made by ffmpeg: paced in real time, it ends the channel and
# exits 0. Bad inputs (a missing file, rtsp://x) fail at once with one line.
#
# Skips (77) if ffprobe/ffmpeg or the x264enc element is missing.
# Environment: top_builddir, PTV_KEEP=1 keeps the logs.
set -euo pipefail

NET_TEST=net_media
# shellcheck source=test/net_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_lib.sh"

for _c in ffprobe ffmpeg; do
  command -v "$_c" >/dev/null || { echo "$NET_TEST: SKIP: $_c is missing (apt-get install ffmpeg)"; exit 77; }
done
if command -v gst-inspect-1.0 >/dev/null && ! gst-inspect-1.0 --exists x264enc; then
  echo "$NET_TEST: SKIP: GStreamer element x264enc is missing (apt-get install gstreamer1.0-plugins-ugly)"
  exit 77
fi

# Sanitizer builds: what GStreamer's libraries never free at exit is not
# ours (as in test/test_media.c): fontconfig's and pango's caches (the test
# pattern's overlays) and GLib's first quark table. Whole stacks through
# those libraries (no frame pointers) need the slow unwinder: sources only.
san_env=()
if [[ ${PTV_SANITIZERS:-no} = yes ]]; then
  printf 'leak:libfontconfig.so\nleak:libpangoft2-1.0.so\nleak:libgstpango.so\nleak:_dl_init\n' \
    >"$tmp/lsan.supp"
  san_env=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
    "LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$tmp/lsan.supp")
fi

CHUNK_MS=500
RUN_S=12
NPEERS=3
ms=(--tracker 127.0.0.1:1 --channel c --key "$tmp/bad.key")

# ---- bad inputs: one line, non-zero, before any network work ---------------------
rc=0
env "${san_env[@]}" "$bin/peertv-source" "${ms[@]}" --input /nonexistent.mp4 >"$tmp/bad1.out" 2>"$tmp/bad1.err" || rc=$?
echo "# --input /nonexistent.mp4 -> exit $rc: $(cat "$tmp/bad1.err")"
check "--input /nonexistent.mp4 exits 1 with one line naming the file" \
  test "$rc" = 1 -a "$(wc -l <"$tmp/bad1.err")" = 1 -a -n "$(grep -F /nonexistent.mp4 "$tmp/bad1.err")"
rc=0
env "${san_env[@]}" "$bin/peertv-source" "${ms[@]}" --input rtsp://x >"$tmp/bad2.out" 2>"$tmp/bad2.err" || rc=$?
echo "# --input rtsp://x -> exit $rc: $(cat "$tmp/bad2.err")"
check "--input rtsp://x exits non-zero (2, usage) with one line" \
  test "$rc" = 2 -a "$(wc -l <"$tmp/bad2.err")" = 1
check "neither bad input created the key file (it failed before the rest)" test ! -e "$tmp/bad.key"

# ---- the swarm ----------------------------------------------------------------------
start_tracker 127.0.0.1:0
echo "# tracker on 127.0.0.1:$tport"
env "${san_env[@]}" "$bin/peertv-source" --tracker "127.0.0.1:$tport" --channel media --input test \
  --chunk-ms "$CHUNK_MS" --key "$tmp/source.key" --local-addr 127.0.0.1 --http 127.0.0.1:0 \
  >"$tmp/source.out" 2>"$tmp/source.err" &
src_pid=$!
pids+=("$src_pid")
if ! wait_line "$tmp/source.err" "input test started"; then
  if grep -q "x264enc is missing" "$tmp/source.err"; then
    echo "$NET_TEST: SKIP: $(tail -1 "$tmp/source.err")"
    exit 77
  fi
  cat "$tmp/source.err" >&2
fi

peer_pid=()
for i in $(seq "$NPEERS"); do
  "$bin/peertv-peer" --tracker "127.0.0.1:$tport" --channel media --local-addr 127.0.0.1 \
    --http 127.0.0.1:0 --duration "$RUN_S" --record "$tmp/peer$i.ts" \
    --stats-file "$tmp/peer$i.json" >"$tmp/peer$i.out" 2>"$tmp/peer$i.err" &
  peer_pid[i]=$!
  pids+=("$!")
done

# A 3 s file (video and audio), broadcast on a channel of its own meanwhile,
# with one peer recording it.
ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440 -t 3 \
  -c:v libx264 -preset ultrafast -c:a aac -shortest "$tmp/in.mp4"
t_file=$(date +%s.%N)
env "${san_env[@]}" "$bin/peertv-source" --tracker "127.0.0.1:$tport" --channel file --input "$tmp/in.mp4" \
  --chunk-ms "$CHUNK_MS" --key "$tmp/file.key" --local-addr 127.0.0.1 \
  >"$tmp/file.out" 2>"$tmp/file.err" &
file_pid=$!
pids+=("$file_pid")
wait_line "$tmp/file.err" "joined channel"
"$bin/peertv-peer" --tracker "127.0.0.1:$tport" --channel file --local-addr 127.0.0.1 \
  --record "$tmp/fpeer.ts" --stats-file "$tmp/fpeer.json" >"$tmp/fpeer.out" 2>"$tmp/fpeer.err" &
fpeer_pid=$!
pids+=("$fpeer_pid")
rc=0
wait "$file_pid" || rc=$?
el=$(echo "$(date +%s.%N) - $t_file" | bc)
echo "# file source: exit $rc after ${el} s: $(grep -E "input|last chunk" "$tmp/file.err" | cut -d' ' -f3- | tr '\n' ';')"
check "a file input plays to its end, says 'input ended' and exits 0" \
  test "$rc" = 0 -a -n "$(grep "input ended" "$tmp/file.err")"
# 3 s of media paced in real time (first chunk at once, the last 2.5 s
# later) plus the grace (2 s + 2 chunks): not the fraction of a second the
# encoder takes plus the grace.
check "the file is paced in real time (>= 5 s from start to exit)" \
  test "$(echo "$el >= 5" | bc)" = 1
frc=0
wait "$fpeer_pid" || frc=$?
check "the file's peer leaves when the channel ends (exit 0)" test "$frc" = 0

for i in $(seq "$NPEERS"); do wait "${peer_pid[i]}" || echo "# peer $i exited $?"; done
kill -TERM "$src_pid"
src_rc=0
wait "$src_pid" || src_rc=$?
check "the test-pattern source stops cleanly on SIGTERM" test "$src_rc" = 0

# ---- the recordings ------------------------------------------------------------------
# check_rec NAME WIDTH HEIGHT MIN_CHUNKS: NAME.ts against NAME.json
check_rec() {
  local name=$1 w=$2 h=$3 min=$4 rec=$tmp/$1.ts due missed played streams dur errs diff
  if [[ ! -s $rec || ! -s $tmp/$name.json ]]; then
    echo "# $name: no recording or no stats"
    return 1
  fi
  read -r due missed < <(jq -r '[.chunks_due, .chunks_missed] | @tsv' "$tmp/$name.json")
  played=$(echo "($due - $missed) * $CHUNK_MS / 1000" | bc -l)
  streams=$(ffprobe -v error -show_streams -of json "$rec" |
    jq -r '[.streams[] | [.codec_name, .codec_type, .width // empty, .height // empty] | join("|")] | join(" ")')
  dur=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$rec" 2>&1)
  errs=$(ffmpeg -v error -i "$rec" -f null - 2>&1 | head -5)
  diff=$(echo "d = $dur - $played; if (d < 0) d = -d; d" | bc -l)
  printf '# %s: %d bytes, duration %.2f s, played %.2f s (%d due, %d missed), |diff| %.2f s; streams: %s\n' \
    "$name" "$(stat -c %s "$rec")" "$dur" "$played" "$due" "$missed" "$diff" "$streams"
  [[ -z $errs ]] || echo "# $name: ffmpeg says: $errs"
  grep -q "h264|video|$w|$h" <<<"$streams" && grep -q "aac|audio" <<<"$streams" && [[ -z $errs ]] &&
    (($(echo "$diff <= 2" | bc))) && ((due - missed >= min))
}
bad=0
for i in $(seq "$NPEERS"); do check_rec "peer$i" 640 360 8 || bad=$((bad + 1)); done
check "all $NPEERS recordings: h264 640x360 + aac, decode without errors, duration within 2 s of the time played (>= 4 s)" \
  test "$bad" -eq 0
check "the file's recording: h264 320x240 + aac, decodes, duration within 2 s of the time played (>= 2 s)" \
  check_rec fpeer 320 240 4

net_finish
