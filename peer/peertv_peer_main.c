/* peertv-peer -- watch a PeerTV channel. See docs/peertv-peer.1.
 *
 * With --play, ptv_player decodes what the host plays (the host's output,
 * ptv_host_output); the glue lives here, not in ptv_host.c, so that the
 * host library needs no GStreamer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ptv_err.h"
#include "ptv_host.h"
#include "ptv_player.h"
#include "ptv_rt.h"
#include "ptv_wire.h"

/* ---- --play: the host's output is a ptv_player --------------------------- */

static ptv_player *g_player;

/* errors reach player_error (once) */
static void out_chunk(void *user, const uint8_t *ts, size_t len, int keyframe) {
  (void)user;
  ptv_player_push(g_player, ts, len, keyframe);
}

static void out_gap(void *user) {
  (void)user;
  ptv_player_gap(g_player);
}

static void out_media(void *user, ptv_host_media *m) {
  (void)user;
  ptv_player_stats st;
  ptv_player_get_stats(g_player, &st);
  m->codec = st.video_codec;
  m->audio_codec = st.audio_codec;
  m->width = st.width;
  m->height = st.height;
  m->fps = st.fps;
  m->bitrate_kbps = st.bitrate_kbps;
  m->frames_played = st.frames_played;
  m->frames_late = st.frames_late;
  m->frames_lost = st.frames_lost;
  m->first_frame_at = st.first_frame_us;
  m->decoding = !st.failed;
}

static void out_stop(void *user) {
  (void)user;
  ptv_player_free(g_player);
  g_player = NULL;
}

static void player_error(void *user, const char *message) {
  (void)user;
  ptv_rt_log(0, "player: %s; playback stopped (still relaying)", message);
}

static const ptv_host_output PLAYER_OUTPUT = {
    .user = NULL, .chunk = out_chunk, .gap = out_gap, .media = out_media, .stop = out_stop};

static void usage(FILE *f) {
  fputs("Usage: peertv-peer --tracker HOST:PORT --channel NAME [options]\n"
        "Watch a PeerTV channel: find partners through the tracker, connect to them\n"
        "with ICE, exchange SRTP-protected chunks, play them and upload to others.\n\n"
        "Options:\n"
        "  --tracker HOST:PORT    the tracker (required)\n"
        "  --channel NAME         the channel (required)\n"
        "  --http ADDR:PORT       serve GET /stats (JSON) and GET /stream.ts (live\n"
        "                         MPEG-TS for players) there (port 0: any; printed)\n"
        "  --record FILE          write the played stream (MPEG-TS chunks) to FILE\n"
        "  --play[=SINK]          decode and show the stream: SINK window (default: a\n"
        "                         window and sound; decodes to fakesinks if there is no\n"
        "                         display) or null (decode to fakesinks, timed as a\n"
        "                         display would be: benchmarks, tests)\n"
        "  --frame-log FILE       with --play: one line per video frame reaching the\n"
        "                         video sink: its stream PTS (90 kHz) and the wall-clock\n"
        "                         time in microseconds when it is due on screen\n"
        "  --upload-limit RATE    upload cap over all partners, e.g. 4M, 800k (default 10M)\n"
        "  --buffer SECONDS       playback buffer (default 2)\n"
        "  --stun HOST:PORT       STUN server for server-reflexive candidates\n"
        "  --turn HOST:PORT       TURN server (UDP relay); with --turn-user/--turn-pass\n"
        "  --turn-user USER, --turn-pass PASS\n"
        "  --local-addr ADDR      use only this local address for ICE (e.g. 127.0.0.1)\n"
        "  --relay-only           use only TURN-relayed paths (hides our addresses;\n"
        "                         needs --turn)\n"
        "  --key FILE             identity key (created 0600 if missing; default: a\n"
        "                         new key each run)\n"
        "  --strategy S           overlay strategy: mesh (default) or chandelier\n"
        "  --partners N           partners to seek (default 8, at most 58); up to N + 6\n"
        "                         are accepted (a strong uploader serving many)\n"
        "  --duration SECONDS     leave after this long (default: until SIGINT/SIGTERM)\n"
        "  --poll-interval MS     handle network I/O at most every MS ms: less CPU,\n"
        "                         up to MS more delay per hop (default auto: the\n"
        "                         chunk duration / 10, within 1..10; 0: at once;\n"
        "                         with --play, default 0)\n"
        "  --stats-file FILE      write the final /stats JSON there when leaving\n"
        "  --delay-log FILE       one line per chunk received: chunk id, its delay\n"
        "                         from the source in microseconds, sender id, 1 if\n"
        "                         stamped before we started (benchmarks)\n"
        "  -v, --verbose          more log lines; -q, --quiet: errors only\n"
        "  --help, --version\n\n"
        "Exit status: 0 left cleanly, 1 runtime failure (or refused by the tracker),\n"
        "2 usage error.\n",
        f);
}

int main(int argc, char **argv) {
  ptv_host_config c;
  memset(&c, 0, sizeof(c));
  c.role = PTV_ROLE_PEER;
  static const struct option opts[] = {
      PTV_HOST_LONG_OPTIONS,
      {"record", required_argument, NULL, 'r'},      {"buffer", required_argument, NULL, 'b'},
      {"strategy", required_argument, NULL, 'S'},    {"delay-log", required_argument, NULL, 'G'},
      {"partners", required_argument, NULL, 'P'},
      {"play", optional_argument, NULL, 'Y'},        {"frame-log", required_argument, NULL, 'F'},
      {"help", no_argument, NULL, 'h'},              {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *prog = "peertv-peer";
  ptv_rt_set_prog(prog);
  int o, rv;
  char *e;
  int play = 0; /* 1 window, 2 null sinks */
  const char *frame_log = NULL;
  while ((o = getopt_long(argc, argv, "vq", opts, NULL)) != -1) {
    if ((rv = ptv_host_option(&c, o, optarg, prog)) != 0) {
      if (rv < 0) return 2;
      continue;
    }
    switch (o) {
    case 'r': c.record = optarg; break;
    case 'b': {
      double s = strtod(optarg, &e);
      if (*e || s <= 0 || s > 60) {
        fprintf(stderr, "peertv-peer: --buffer wants seconds in (0, 60], not '%s'\n", optarg);
        return 2;
      }
      c.buffer_us = (ptv_tstamp)(s * 1e6);
      break;
    }
    case 'S':
      if (strcmp(optarg, "mesh") && strcmp(optarg, "chandelier")) {
        fprintf(stderr, "peertv-peer: --strategy is mesh or chandelier, not '%s'\n", optarg);
        return 2;
      }
      c.chandelier = strcmp(optarg, "chandelier") == 0;
      break;
    case 'G': c.delay_log = optarg; break;
    case 'Y':
      if (optarg && strcmp(optarg, "window") && strcmp(optarg, "null")) {
        fprintf(stderr, "peertv-peer: --play is --play, --play=window or --play=null, not '%s'\n", optarg);
        return 2;
      }
      play = optarg && !strcmp(optarg, "null") ? 2 : 1;
      break;
    case 'F': frame_log = optarg; break;
    case 'P': {
      long v = strtol(optarg, &e, 10);
      if (*e || e == optarg || v < 1 || v > 58) {
        fprintf(stderr, "peertv-peer: --partners wants a count in [1, 58], not '%s'\n", optarg);
        return 2;
      }
      c.partners = (uint8_t)v;
      break;
    }
    case 'h': usage(stdout); return 0;
    case 'V': puts("peertv-peer " PACKAGE_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (ptv_host_options_done(&c, optind, argc, prog) != 0) return 2;
  /* A decoding viewer handles I/O at once unless told otherwise: its CPU
   * goes to the decoders, and under AddressSanitizer test/net_media.sh's
   * --play=null peer showed steady-state late frames (12 in 2 s) with the
   * default interval and none without. */
  if (play && c.poll_us == 0) c.poll_us = -1;
  if (frame_log && !play) {
    fprintf(stderr, "peertv-peer: --frame-log needs --play (see --help)\n");
    return 2;
  }
  if (play == 1 && !getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY")) {
    ptv_rt_log(1, "no display ($DISPLAY and $WAYLAND_DISPLAY are unset): decoding to fakesinks");
    play = 2;
  }
  if (play) {
    char err[512];
    ptv_player_config pc = {.null_sinks = play == 2, .frame_log = frame_log, .on_error = player_error};
    rv = ptv_player_new(&g_player, uv_default_loop(), &pc, err, sizeof(err));
    if (rv != 0) {
      fprintf(stderr, "peertv-peer: %s\n", err[0] ? err : ptv_strerror(rv));
      return 1;
    }
    c.output = &PLAYER_OUTPUT;
  }
  rv = ptv_host_run(&c);
  if (g_player) { /* the host failed before it started */
    ptv_player_free(g_player);
    uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* closes its handle */
  }
  return rv;
}
