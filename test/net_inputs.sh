#!/usr/bin/env bash
# net_inputs.sh -- peertv-source's other inputs, on loopback, each streamed
# through to a peer's --record file that ffprobe and ffmpeg must take
# (h264 video, decoded without an error line):
#   * a VP8/Opus WebM file (made by ffmpeg): re-encoded to H.264 + AAC;
#   * MPEG-TS over UDP from ffmpeg (H.264 Constrained Baseline, a keyframe
#     a second, mono 44.1 kHz AAC): passed through, so the recording keeps
#     the sender's profile and sample rate (our encoders make High and
#     48 kHz stereo) and the source says so. The sender then stops for 3 s:
#     the source logs one "input stalled" line and keeps the channel, the
#     peer's /stats state turns "stalled" (it plays the source's signed
#     stall notices, which it does not record); a new sender brings
#     "playing" back, the source logs "input resumed", and the recording,
#     both streams in one file, still decodes;
#   * srt:// in listener mode, fed by ffmpeg as an SRT caller.
# Bad inputs (an audio-only Ogg file, an MP4 cut before its index,
# v4l2:///dev/video99) fail in a few seconds with one line and exit 1,
# before any key file or tracker.
#
# Skips (77) if ffprobe/ffmpeg, the x264enc element or ffmpeg's libx264,
# libvpx or libopus encoders are missing; srt:// only if srtsrc or ffmpeg's
# SRT protocol are missing (said in a comment line).
# Environment: top_builddir, PTV_KEEP=1 keeps the logs.
set -euo pipefail

NET_TEST=net_inputs
# shellcheck source=test/net_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_lib.sh"
clear_udp_lock -s

media_setup
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null)
for _e in libx264 libvpx libopus; do
  grep -q " $_e " <<<"$encoders" || { echo "$NET_TEST: SKIP: ffmpeg lacks the $_e encoder"; exit 77; }
done
have_srt=1
if ! ffmpeg -hide_banner -protocols 2>/dev/null | grep -qx ' *srt' ||
  { command -v gst-inspect-1.0 >/dev/null && ! gst-inspect-1.0 --exists srtsrc; }; then
  have_srt=0
fi

# exec: in the background, $! is then peertv-source itself
source_() { exec env "${san_env[@]}" "$bin/peertv-source" "$@"; }

free_port() { # a UDP port nobody listens on
  local p
  for _ in $(seq 50); do
    p=$((30000 + RANDOM % 20000))
    ss -Hlnu "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return; }
  done
  echo "$p"
}

# state_is PORT STATE SECONDS: the peer's /stats state becomes STATE in time
state_is() {
  local i s
  for i in $(seq $(($3 * 10))); do
    s=$(curl -sf --max-time 1 "http://127.0.0.1:$1/stats" | jq -r .state 2>/dev/null) || true
    [[ $s = "$2" ]] && return 0
    sleep 0.1
  done
  echo "# state still '${s:-?}', not '$2', after $3 s" >&2
  return 1
}

# streams FILE: "codec|profile|sample_rate ..." as ffprobe sees them
streams() {
  ffprobe -v error -show_entries stream=codec_name,profile,sample_rate -of json "$1" 2>/dev/null |
    jq -r '[.streams[] | [.codec_name, .profile, .sample_rate // empty] | join("|")] | join(" ")' || true
}

# decodes FILE: ffmpeg decodes it all without an error line
decodes() {
  local errs
  errs=$(ffmpeg -nostdin -v error -i "$1" -f null - 2>&1 | head -5)
  [[ -z $errs ]] || echo "# ffmpeg on $(basename "$1"): $errs"
  [[ -z $errs ]]
}

# decodes_but_tail FILE SECONDS: FILE decodes without an error up to
# SECONDS before its end. A recording from a live input that ended may stop
# inside a frame: chunks are cut on the time grid, so a frame can begin in
# the last chunk that came and end in one that never did (an SRT live
# connection that closes also drops what its receiver still held:
# Haivision/srt#2760; the SRT recording here is 4.9 s of the 6 s sent).
# Seen once (2026-12-04): the last frame 172 bytes short, all else intact.
decodes_but_tail() {
  local errs dur
  dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$1")
  dur=$(echo "$dur - $2" | bc)
  errs=$(ffmpeg -nostdin -v error -t "$dur" -i "$1" -f null - 2>&1 | head -5)
  [[ -z $errs ]] || echo "# ffmpeg on $(basename "$1") (first $dur s): $errs"
  [[ -z $errs ]]
}

# ---- bad inputs: one line, exit 1, quickly, before key file and tracker ----------
ffmpeg -v error -f lavfi -i sine=frequency=440 -t 1 -c:a libopus "$tmp/tone.ogg"
ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440 -t 3 \
  -c:v libx264 -preset ultrafast -c:a aac -shortest "$tmp/full.mp4"
head -c 30000 "$tmp/full.mp4" >"$tmp/cut.mp4"
bad_args=(--tracker 127.0.0.1:1 --channel c --key "$tmp/bad.key")
i=0
for input in "$tmp/tone.ogg" "$tmp/cut.mp4" v4l2:///dev/video99; do
  i=$((i + 1))
  rc=0
  t=$(date +%s.%N)
  timeout 20 env "${san_env[@]}" "$bin/peertv-source" "${bad_args[@]}" --input "$input" \
    >"$tmp/bad$i.out" 2>"$tmp/bad$i.err" || rc=$?
  el=$(echo "$(date +%s.%N) - $t" | bc)
  echo "# --input $(basename "$input") -> exit $rc after ${el} s: $(cat "$tmp/bad$i.err")"
  check "--input $(basename "$input"): exit 1 within 5 s, one line naming it" \
    test "$rc" = 1 -a "$(wc -l <"$tmp/bad$i.err")" = 1 -a "$(echo "$el < 5" | bc)" = 1 \
    -a -n "$(grep -F "${input#v4l2://}" "$tmp/bad$i.err")"
done
bad_why() {
  grep -q "has no video" "$tmp/bad1.err" && grep -q "no playable stream" "$tmp/bad2.err" &&
    grep -q "no such device" "$tmp/bad3.err"
}
check "the lines say why: no video; no playable streams; no such device" bad_why
check "no bad input created the key file" test ! -e "$tmp/bad.key"

# ---- the swarm --------------------------------------------------------------------
start_tracker 127.0.0.1:0
echo "# tracker on 127.0.0.1:$tport"
common=(--tracker "127.0.0.1:$tport" --local-addr 127.0.0.1)

# A 3 s VP8/Opus WebM file, on a channel of its own.
ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440 -t 3 \
  -c:v libvpx -b:v 300k -c:a libopus -shortest "$tmp/in.webm"
source_ "${common[@]}" --channel webm --input "$tmp/in.webm" --chunk-ms 500 --key "$tmp/webm.key" \
  >"$tmp/webm.out" 2>"$tmp/webm.err" &
webm_pid=$!
pids+=("$webm_pid")

# MPEG-TS over UDP, passed through; 250 ms chunks (the default).
uport=$(free_port)
source_ "${common[@]}" --channel udp --input "udp://127.0.0.1:$uport" --key "$tmp/udp.key" \
  --rate 800k --http 127.0.0.1:0 >"$tmp/udp.out" 2>"$tmp/udp.err" &
udp_pid=$!
pids+=("$udp_pid")

if ((have_srt)); then
  sport=$(free_port)
  source_ "${common[@]}" --channel srt --input "srt://127.0.0.1:$sport?mode=listener" \
    --key "$tmp/srt.key" --rate 800k >"$tmp/srt.out" 2>"$tmp/srt.err" &
  srt_pid=$!
  pids+=("$srt_pid")
fi

wait_line "$tmp/webm.err" "joined channel"
wait_line "$tmp/udp.err" "input udp://.* started"
peer_() { # peer_ NAME CHANNEL: a recording peer with /stats
  "$bin/peertv-peer" "${common[@]}" --channel "$2" --http 127.0.0.1:0 --record "$tmp/$1.ts" \
    --stats-file "$tmp/$1.json" >"$tmp/$1.out" 2>"$tmp/$1.err" &
  pids+=("$!")
}
peer_ pwebm webm
pwebm_pid=${pids[-1]}
peer_ pudp udp
pudp_pid=${pids[-1]}
if ((have_srt)); then
  wait_line "$tmp/srt.err" "input srt://.* started"
  peer_ psrt srt
  psrt_pid=${pids[-1]}
fi

# send SECONDS URL: ffmpeg sends H.264 baseline (a keyframe a second) and
# mono 44.1 kHz AAC in MPEG-TS, in real time
send() {
  ffmpeg -nostdin -v error -re -f lavfi -i testsrc=size=320x240:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=44100 -t "$1" -c:v libx264 -profile:v baseline \
    -pix_fmt yuv420p -preset ultrafast -tune zerolatency -g 30 -b:v 400k -c:a aac -ac 1 \
    -f mpegts "$2"
}
if ((have_srt)); then
  send 6 "srt://127.0.0.1:$sport?mode=caller" >"$tmp/srt_send.out" 2>"$tmp/srt_send.err" &
  srt_send=$!
  pids+=("$srt_send")
fi
pport=$(http_port "$tmp/pudp.out")
send 6 "udp://127.0.0.1:$uport?pkt_size=1316"
# The sender stopped: the source stalls; the peer plays what it has (its
# buffer, about 2 s) and then the stall notices.
t_stop=$(date +%s.%N)
check "UDP: the peer's /stats state turns 'stalled' once the sender stopped" state_is "$pport" stalled 6
check "UDP: the source's /stats state is 'stalled' as well" state_is "$(http_port "$tmp/udp.out")" stalled 1
stall_s=$(echo "$(date +%s.%N) - $t_stop" | bc)
sleep "$(echo "s = 3 - $stall_s; if (s < 0) s = 0; s" | bc)"
send 5 "udp://127.0.0.1:$uport?pkt_size=1316" &
send2=$!
pids+=("$send2")
check "UDP: a new sender brings the state back to 'playing'" state_is "$pport" playing 8
check "UDP: and the source's back to 'source'" state_is "$(http_port "$tmp/udp.out")" source 2
wait "$send2" || true
echo "# udp source: $(grep -E "input" "$tmp/udp.err" | cut -d' ' -f3- | tr '\n' ';')"
echo "# udp peer: $(grep -E "channel|playing" "$tmp/pudp.err" | cut -d' ' -f3- | tr '\n' ';')"
check "UDP: the source says video and audio pass through" \
  test -n "$(grep "video H.264 passed through" "$tmp/udp.err")" -a -n "$(grep "audio AAC passed through" "$tmp/udp.err")"
# One line per stall, however many rebuilds: as many 'input stalled' as
# 'input resumed' lines, or one more (the second sender's end stalls it
# again; a slow first sender may have stalled it at the start too).
one_line_per_stall() {
  local s r
  s=$(grep -c "input stalled: udp://127.0.0.1:$uport: no data" "$tmp/udp.err") || true
  r=$(grep -c "input resumed: udp://127.0.0.1:$uport" "$tmp/udp.err") || true
  ((r >= 1 && (s == r || s == r + 1)))
}
check "UDP: the source logged one 'input stalled' line per stall, and 'input resumed'" one_line_per_stall
kill -TERM "$pudp_pid" 2>/dev/null || true
wait "$pudp_pid" || true
ustreams=$(streams "$tmp/pudp.ts")
notices=$(jq -r .stall_notices "$tmp/pudp.json" 2>/dev/null) || true
echo "# udp recording: $(stat -c %s "$tmp/pudp.ts" 2>/dev/null) bytes, streams: $ustreams; $notices stall notices played"
check "UDP: the recording is the sender's H.264 (Constrained Baseline) and AAC (44.1 kHz)" \
  test -n "$(grep "h264|Constrained Baseline" <<<"$ustreams")" -a -n "$(grep "aac|LC|44100" <<<"$ustreams")"
check "UDP: the recording (before and after the stall) decodes without an error" decodes "$tmp/pudp.ts"
# no stall notice (a TS null packet with this text) went into the recording
check "UDP: stall notices were played (/stats) but not recorded" \
  test "${notices:-0}" -ge 2 -a -z "$(grep -a -l PEERTV-STALLED "$tmp/pudp.ts")"
kill -TERM "$udp_pid"
rc=0
wait "$udp_pid" || rc=$?
check "UDP: the source stops cleanly on SIGTERM" test "$rc" = 0

# the WebM channel ended by itself meanwhile
rc=0
wait "$webm_pid" || rc=$?
echo "# webm source: exit $rc: $(grep -E "input" "$tmp/webm.err" | cut -d' ' -f3- | tr '\n' ';')"
check "WebM: the source re-encodes, plays the file to its end and exits 0" \
  test "$rc" = 0 -a -n "$(grep "video encoded to H.264" "$tmp/webm.err")" -a -n "$(grep "input ended" "$tmp/webm.err")"
wait "$pwebm_pid" || true
wstreams=$(streams "$tmp/pwebm.ts")
echo "# webm recording: $(stat -c %s "$tmp/pwebm.ts" 2>/dev/null) bytes, streams: $wstreams"
check "WebM: the recording is H.264 + AAC and decodes without an error" \
  test -n "$(grep "h264|" <<<"$wstreams")" -a -n "$(grep "aac|" <<<"$wstreams")"
check "WebM: the recording decodes without an error" decodes "$tmp/pwebm.ts"

if ((have_srt)); then
  wait "$srt_send" || true
  sleep 2.5 # the peer plays its buffer out
  kill -TERM "$psrt_pid" 2>/dev/null || true
  wait "$psrt_pid" || true
  sstreams=$(streams "$tmp/psrt.ts")
  echo "# srt source: $(grep -E "input" "$tmp/srt.err" | cut -d' ' -f3- | tr '\n' ';')"
  echo "# srt sender: $(head -3 "$tmp/srt_send.err"); recording: $(stat -c %s "$tmp/psrt.ts" 2>/dev/null) bytes, streams: $sstreams"
  check "SRT listener: the recording is the sender's H.264 (passed through) and decodes" \
    test -n "$(grep "h264|Constrained Baseline" <<<"$sstreams")" -a "$(stat -c %s "$tmp/psrt.ts")" -gt 100000
  check "SRT listener: the recording decodes without an error (but its last second)" \
    decodes_but_tail "$tmp/psrt.ts" 1
  kill -TERM "$srt_pid"
  rc=0
  wait "$srt_pid" || rc=$?
  check "SRT: the source stops cleanly on SIGTERM" test "$rc" = 0
else
  echo "# srt:// not tested: srtsrc or ffmpeg's srt protocol is missing"
fi

net_finish
