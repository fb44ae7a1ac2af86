# shellcheck shell=bash
# net_lib.sh -- what the loopback network tests (test/net_*.sh) share.
# Source it after `set -euo pipefail` with NET_TEST set to the script's name:
#   NET_TEST=net_swarm; . "$(dirname "$0")/net_lib.sh"
# It checks the programs are built and jq/curl exist (else exit 99, a hard
# error for automake), makes $tmp (removed at exit unless PTV_KEEP=1 or a
# check failed), kills every pid in ${pids[@]} at exit, and provides
# check, wait_line, start_tracker and the summary `net_finish`.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top_builddir=${top_builddir:-$here/../build}
bin=$top_builddir
for _p in peertv-tracker peertv-source peertv-peer; do
  [[ -x $bin/$_p ]] || { echo "$NET_TEST: $bin/$_p not built" >&2; exit 99; }
done
for _c in jq curl bc; do
  command -v "$_c" >/dev/null || { echo "$NET_TEST: $_c is needed (apt-get install $_c)" >&2; exit 99; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ptv_$NET_TEST.XXXXXX")
pids=()
net_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${PTV_KEEP:-0} = 1 ]]; then echo "# logs kept in $tmp"; else rm -rf "$tmp"; fi
}
trap net_cleanup EXIT

n=0
failed=0
# clear_udp_lock -s|-x: net_inputs.sh sends MPEG-TS in clear over loopback
# UDP, which net_capture.sh's capture of all loopback UDP would take for a
# leak (a clean-clone run failed on it when the two overlapped under make
# -j2): the sender holds this lock shared, the capture exclusive, for the
# rest of the script (fd 9).
clear_udp_lock() {
  exec 9>"$top_builddir/test/clear-udp.lock"
  flock "$1" 9
}

check() { # check DESCRIPTION COMMAND...: one TAP-like line
  local what=$1
  shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $what"; else echo "not ok $n - $what"; failed=$((failed + 1)); fi
}

wait_line() { # wait_line FILE PATTERN: up to 10 s for a line to appear
  local i
  for i in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "# timed out waiting for '$2' in $1" >&2
  return 1
}

# start_tracker LISTEN: a tracker on $tmp/tracker.db with HTTP on any port;
# sets tracker_pid, tport (its port) and hport (its HTTP port).
listening_lines() { # how many times the tracker said it listens
  local c
  c=$(grep -c "listening on" "$tmp/tracker.out" 2>/dev/null) || true
  echo "${c:-0}"
}
start_tracker() {
  local before
  before=$(listening_lines)
  "$bin/peertv-tracker" --listen "$1" --db "$tmp/tracker.db" --http 127.0.0.1:0 \
    >>"$tmp/tracker.out" 2>>"$tmp/tracker.err" &
  tracker_pid=$!
  pids+=("$tracker_pid")
  for _ in $(seq 100); do
    (($(listening_lines) > before)) && break
    sleep 0.1
  done
  tport=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$tmp/tracker.out" | tail -1)
  hport=$(sed -n 's/.* http [0-9.]*:\([0-9]*\).*/\1/p' "$tmp/tracker.out" | tail -1)
}

# http_port FILE: the port a program printed ("http ADDR:PORT") in FILE.
http_port() {
  wait_line "$1" "^http " && sed -n 's/^http [0-9.]*:\([0-9]*\)$/\1/p' "$1"
}

net_finish() { # exit status: 1 (logs kept) if any check failed
  if ((failed)); then
    echo "# $failed of $n checks failed; logs in $tmp"
    PTV_KEEP=1
    exit 1
  fi
}

# media_setup: for the tests with real video (net_media, net_inputs,
# net_video10). Skips the test (77) without ffprobe, ffmpeg or GStreamer's
# x264enc, and sets san_env: in sanitizer builds, the environment for our
# programs that run GStreamer. What GStreamer's libraries never free at exit
# is not ours (as in test/test_media.c): fontconfig's and pango's caches
# (the test pattern's overlays) and GLib's first quark table; whole stacks
# through those libraries (no frame pointers) need the slow unwinder.
media_setup() {
  local _c
  for _c in ffprobe ffmpeg; do
    command -v "$_c" >/dev/null || { echo "$NET_TEST: SKIP: $_c is missing (apt-get install ffmpeg)"; exit 77; }
  done
  if command -v gst-inspect-1.0 >/dev/null && ! gst-inspect-1.0 --exists x264enc; then
    echo "$NET_TEST: SKIP: GStreamer element x264enc is missing (apt-get install gstreamer1.0-plugins-ugly)"
    exit 77
  fi
  san_env=()
  if [[ ${PTV_SANITIZERS:-no} = yes ]]; then
    printf 'leak:libfontconfig.so\nleak:libpangoft2-1.0.so\nleak:libgstpango.so\nleak:_dl_init\n' \
      >"$tmp/lsan.supp"
    san_env=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
      "LSAN_OPTIONS=${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$tmp/lsan.supp:print_suppressions=0")
  fi
}
