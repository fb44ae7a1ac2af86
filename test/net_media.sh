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
# While peer 1 plays, its GET /stream.ts serves three players at once
# (ffprobe and two ffmpeg decoding 5 s each, all without an error line) and
# a 2 s curl capture that starts on a TS packet and holds a PAT; /stats
# counts them in http_streams. The source answers /stream.ts with 404.
# A fourth peer decodes what it plays (--play=null, fakesinks): its /stats
# "media" reads h264 640x360 + aac, frames_played grows by about 30 a
# second while it plays, and few frames are dropped; a peer without --play
# fills the same from parsing (decoding false, frames counted).
#
# Skips (77) if ffprobe/ffmpeg or the x264enc element is missing.
# Environment: top_builddir, PTV_KEEP=1 keeps the logs.
set -euo pipefail

NET_TEST=net_media
# shellcheck source=test/net_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_lib.sh"

media_setup


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

# ---- peer 4 decodes (--play=null): /stats "media" ----------------------------------
# Sanitizer builds: the slow unwinder that the leak suppressions need makes
# every malloc of the decoders slow enough to drop most frames as late on 2
# cores, so this peer runs ASan and UBSan with the fast one and without leak
# checks (test/test_player checks ptv_player for leaks, with full stacks).
play_env=()
[[ ${PTV_SANITIZERS:-no} = yes ]] && play_env=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
env "${play_env[@]}" "$bin/peertv-peer" --tracker "127.0.0.1:$tport" --channel media --local-addr 127.0.0.1 \
  --http 127.0.0.1:0 --duration "$RUN_S" --play=null --stats-file "$tmp/player.json" \
  >"$tmp/player.out" 2>"$tmp/player.err" &
player_pid=$!
pids+=("$player_pid")
(
  pport=$(http_port "$tmp/player.out") || exit 0
  wait_line "$tmp/player.err" "playing from chunk" || exit 0
  sleep 2
  curl -sf --max-time 2 "http://127.0.0.1:$pport/stats" | jq -c .media >"$tmp/media1" || true
  sleep 2
  curl -sf --max-time 2 "http://127.0.0.1:$pport/stats" | jq -c .media >"$tmp/media2" || true
) &
media_job=$!
pids+=("$media_job")

# ---- GET /stream.ts on peer 1, in the background while the file plays ------------
sport=$(http_port "$tmp/source.out")
p1port=$(http_port "$tmp/peer1.out")
url="http://127.0.0.1:$p1port/stream.ts"
(
  wait_line "$tmp/peer1.err" "playing from chunk" || true
  timeout 20 ffprobe -v error -show_streams -of json "$url" >"$tmp/http_probe.json" 2>"$tmp/http_probe.err" &
  a=$!
  timeout 20 ffmpeg -nostdin -v error -i "$url" -t 5 -f null - >/dev/null 2>"$tmp/http_ff1.err" &
  b=$!
  timeout 20 ffmpeg -nostdin -v error -i "$url" -t 5 -f null - >/dev/null 2>"$tmp/http_ff2.err" &
  c=$!
  curl -s --max-time 2 "$url" >"$tmp/http_cap.ts" &
  d=$!
  # the most seen over 1.8 s (curl's 2 s and ffmpeg's 5 s): one sample at
  # 1 s could come before a slow-starting ffmpeg connected (seen under ASan)
  most=0
  for _ in $(seq 9); do
    sleep 0.2
    k=$(curl -sf --max-time 2 "http://127.0.0.1:$p1port/stats" | jq .http_streams 2>/dev/null) || k=0
    [[ $k =~ ^[0-9]+$ ]] && ((k > most)) && most=$k
  done
  echo "$most" >"$tmp/http_during"
  wait "$d" || true
  curl -sI --max-time 2 "$url" >"$tmp/http_head" || true
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$sport/stream.ts" \
    >"$tmp/http_src" || true
  ra=0 rb=0 rc=0
  wait "$a" || ra=$?
  wait "$b" || rb=$?
  wait "$c" || rc=$?
  echo "$ra $rb $rc" >"$tmp/http_rcs"
  sleep 0.3
  curl -sf --max-time 2 "http://127.0.0.1:$p1port/stats" | jq .http_streams >"$tmp/http_after" || true
) &
http_job=$!
pids+=("$http_job")

# A 3 s H.264 MP4 with B-frames and AAC (issue 5's file input), broadcast on
# a channel of its own meanwhile, with one peer recording it. (ultrafast
# would leave the B-frames out: veryfast with 2 of them, checked below.)
ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440 -t 3 \
  -c:v libx264 -preset veryfast -bf 2 -c:a aac -shortest "$tmp/in.mp4"
check "the file input has B-frames" \
  test "$(ffprobe -v error -select_streams v:0 -show_entries frame=pict_type -of csv=p=0 "$tmp/in.mp4" |
    grep -c B)" -gt 0
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

wait "$http_job" || true
read -r ra rb rc <"$tmp/http_rcs" || true
hstreams=$(jq -r '[.streams[] | [.codec_name, .codec_type, .width // empty, .height // empty] | join("|")] | join(" ")' \
  "$tmp/http_probe.json" 2>/dev/null || true)
echo "# /stream.ts on peer 1: ffprobe exit ${ra:-?} ($hstreams), ffmpeg exits ${rb:-?} ${rc:-?}," \
  "curl got $(stat -c %s "$tmp/http_cap.ts" 2>/dev/null) bytes; http_streams $(cat "$tmp/http_during" 2>/dev/null) during," \
  "$(cat "$tmp/http_after" 2>/dev/null) after; source: $(cat "$tmp/http_src" 2>/dev/null)"
for f in http_probe http_ff1 http_ff2; do [[ ! -s $tmp/$f.err ]] || echo "# $f: $(head -3 "$tmp/$f.err")"; done
check "GET /stream.ts: ffprobe sees h264 640x360 + aac" \
  test "${ra:-1}" = 0 -a -n "$(grep "h264|video|640|360" <<<"$hstreams")" -a -n "$(grep "aac|audio" <<<"$hstreams")"
check "GET /stream.ts: two ffmpeg at once decode 5 s each, exit 0, no error line" \
  test "${rb:-1}" = 0 -a "${rc:-1}" = 0 -a ! -s "$tmp/http_ff1.err" -a ! -s "$tmp/http_ff2.err" -a ! -s "$tmp/http_probe.err"
# 188-byte packets, one line each: the first starts with 0x47, and some
# packet is on PID 0 with payload_unit_start (a PAT)
ts_hex=$(od -An -tx1 -v -w188 "$tmp/http_cap.ts" 2>/dev/null | cut -c1-9) || true
check "GET /stream.ts: curl's capture starts with a TS packet (0x47) and contains a PAT" \
  test "$(head -1 <<<"$ts_hex" | cut -c1-3)" = " 47" -a -n "$(grep -E '^ 47 [4-5]0 00$' <<<"$ts_hex" | head -1)"
during=$(cat "$tmp/http_during" 2>/dev/null) || true
after=$(cat "$tmp/http_after" 2>/dev/null) || true
check "/stats http_streams counts the players (>= 3 during, 0 after)" \
  test "${during:-0}" -ge 3 -a "${after:-x}" = 0
check "HEAD /stream.ts answers 200 video/mp2t; a source answers /stream.ts with 404" \
  test -n "$(grep -i '^HTTP/1.1 200' "$tmp/http_head")" -a -n "$(grep -i '^content-type: video/mp2t' "$tmp/http_head")" \
  -a "$(cat "$tmp/http_src" 2>/dev/null)" = 404

wait "$media_job" || true
m1=$(cat "$tmp/media1" 2>/dev/null) || true
m2=$(cat "$tmp/media2" 2>/dev/null) || true
echo "# peer 4 (--play=null) /stats media, 2 s apart: ${m1:-none}"
echo "#   then: ${m2:-none}"
check "--play=null: /stats media is h264 640x360 + aac, decoding" \
  test "$(jq -r '[.codec, .width, .height, .audio_codec, .decoding] | join(" ")' <<<"${m1:-null}" 2>/dev/null)" = "h264 640 360 aac true"
f1=$(jq -r '.frames_played // 0' <<<"${m1:-null}" 2>/dev/null) || f1=0
f2=$(jq -r '.frames_played // 0' <<<"${m2:-null}" 2>/dev/null) || f2=0
d1=$(jq -r '.frames_dropped // 999999' <<<"${m1:-null}" 2>/dev/null) || d1=999999
d2=$(jq -r '.frames_dropped // 999999' <<<"${m2:-null}" 2>/dev/null) || d2=999999
# 2 s at 30 fps is 60 frames: 40..80 allows for the chunk-wise playout.
# Drops are counted over those 2 s: the first frames after the start may be
# late when the decoders start short of CPU (under AddressSanitizer on 2
# cores, 10-13 of them at session 10's code), which the player's timeline
# absorbs; late frames while playing are what must stay rare: at most 10%,
# or 25% under AddressSanitizer, where the decoders run 2-3x slower and
# `make check -j2` runs another test beside (a clean-clone run at session
# 12's code: 12 late of 65; the same build alone, twice: none).
drop_pct=10
[[ ${PTV_SANITIZERS:-no} = yes ]] && drop_pct=25
check "--play=null: frames_played grows ~30/s ($f1 -> $f2) and few are dropped while playing ($d1 -> $d2, <= $drop_pct%)" \
  test "$f1" -gt 0 -a $((f2 - f1)) -ge 40 -a $((f2 - f1)) -le 80 -a $(((d2 - d1) * 100)) -le $((drop_pct * (f2 - f1)))
wait "$player_pid" || echo "# peer 4 exited $?"
check "--play=null: the final stats file has media.frames_played >= $f2" \
  test "$(jq -r '.media.frames_played // 0' "$tmp/player.json" 2>/dev/null || echo 0)" -ge "$f2"
check "a peer without --play fills media by parsing: h264 640x360, frames counted, not decoding" \
  test "$(jq -r '.media | [.codec, .width, .height, .decoding, (.frames_played > 0)] | join(" ")' "$tmp/peer2.json" \
    2>/dev/null)" = "h264 640 360 false true"
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
