/* peertv-source -- broadcast a PeerTV channel. See docs/peertv-source.1.
 *
 * Without --input the source publishes a synthetic MPEG-TS stream at
 * --rate (what the network tests and benchmarks use). With --input test or
 * a file, ptv_media encodes it to H.264/AAC in MPEG-TS chunks of --chunk-ms
 * and this program hands them to the host (ptv_host_publish), which signs
 * and pushes every chunk into the swarm. The media glue lives here, not in
 * ptv_host.c, so that only peertv-source links GStreamer.
 *
 * Pacing: the test pattern and the udp://, srt:// and v4l2:// inputs are
 * live (ptv_media delivers a chunk about every chunk_us) and are published
 * as they come. A file is decoded as fast as the
 * machine can, so its chunks wait in a FIFO of copies and go out when
 * now >= t0 + (pts_us - first pts_us), t0 being when the first came.
 * Backpressure: once the FIFO spans AHEAD_US of media, the media is held
 * (ptv_media_hold) until it spans less; held, ptv_media queues up to 16 MiB
 * and then GStreamer's streaming thread waits, so a long file is not
 * buffered whole: memory stays about 16 MiB + AHEAD_US of stream.
 *
 * Stalls: while a live input delivers nothing (ptv_media rebuilds it), the
 * channel stays up and one small signed chunk flagged PTV_CHUNK_STALLED
 * goes out per chunk period, so peers know the source is alive and what
 * they play is a stall, not a loss. */
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
#include "ptv_media.h"
#include "ptv_rt.h"
#include "ptv_wire.h"

#define AUDIO_KBPS 128u       /* ptv_media's AAC, counted into the stream rate */
#define TS_OVERHEAD_PCT 10u   /* MPEG-TS packet headers, PES, PAT/PMT */
/* After a file's last chunk, before the channel ends: partners fetch it and
 * (with the default 2 s buffer, lag about that plus a chunk) play it too. */
#define END_GRACE_MS(chunk_ms) (2000u + 2u * (chunk_ms))
#define MIN_VIDEO_KBPS 64u
#define MAX_VIDEO_KBPS 100000u /* ptv_media's limit */
#define MIN_MEDIA_CHUNK_MS 100 /* ptv_media's limit */
#define AHEAD_US 4000000u      /* a file's chunks kept ahead of publication */

/* ---- the media input ------------------------------------------------------ */

typedef struct fifo_chunk {
  struct fifo_chunk *next;
  uint64_t pts_us;
  int keyframe;
  size_t len;
  uint8_t data[];
} fifo_chunk;

typedef struct {
  const char *input;
  int is_file;
  uint32_t chunk_ms;
  ptv_media *m;
  uv_timer_t pace, stall; /* stall: a notice per chunk period */
  int pace_live, stall_live;
  uint64_t stall_notices;
  fifo_chunk *head, *tail; /* file chunks not yet due */
  size_t queued, queued_bytes;
  int have_t0;
  ptv_tstamp t0;
  uint64_t first_pts;
  int ended;   /* the file ended: stop once the FIFO is empty */
  int stopped; /* the host stopped us */
  int held;    /* ptv_media_hold(m, 1) is in force */
  uint64_t holds;
  uint64_t published;
} media_in;

static media_in MI;

static void fifo_clear(void) {
  while (MI.head) {
    fifo_chunk *c = MI.head;
    MI.head = c->next;
    free(c);
  }
  MI.tail = NULL;
  MI.queued = MI.queued_bytes = 0;
}

static void publish(const uint8_t *ts, size_t len, int keyframe) {
  if (ptv_host_publish(ts, len, keyframe ? PTV_CHUNK_KEYFRAME : 0) >= 0) MI.published++;
}

/* A stall notice: one MPEG-TS null packet (PID 0x1fff, which players skip
 * should one ever be played), its payload saying what it is. */
static void on_stall_tick(uv_timer_t *t) {
  (void)t;
  uint8_t p[188];
  memset(p, 0xff, sizeof p);
  p[0] = 0x47;
  p[1] = 0x1f;
  p[2] = 0xff;
  p[3] = 0x10;
  static const char note[] = "PEERTV-STALLED: the source's input delivers nothing";
  memcpy(p + 4, note, sizeof note - 1);
  if (ptv_host_publish(p, sizeof p, PTV_CHUNK_STALLED) >= 0) MI.stall_notices++;
}

static void pace_run(void);

/* Backpressure: hold the media while the FIFO spans AHEAD_US or more. */
static void flow(void) {
  uint64_t span = MI.head && MI.tail->pts_us > MI.head->pts_us ? MI.tail->pts_us - MI.head->pts_us : 0;
  int hold = span >= AHEAD_US;
  if (hold == MI.held || !MI.m) return;
  MI.held = hold;
  if (hold) MI.holds++;
  ptv_media_hold(MI.m, hold);
}

static void on_pace(uv_timer_t *t) {
  (void)t;
  pace_run();
}

/* Publishes the file chunks that are due, then waits for the next one; once
 * the file has ended and everything is out, stops after the grace period. */
static void pace_run(void) {
  if (MI.stopped) return;
  ptv_tstamp now = ptv_rt_now();
  while (MI.head) {
    fifo_chunk *c = MI.head;
    uint64_t off = c->pts_us > MI.first_pts ? c->pts_us - MI.first_pts : 0;
    ptv_tstamp due = MI.t0 + off;
    if (now < due) {
      uv_timer_start(&MI.pace, on_pace, (due - now + 999) / 1000, 0);
      return;
    }
    MI.head = c->next;
    if (!MI.head) MI.tail = NULL;
    MI.queued--;
    MI.queued_bytes -= c->len;
    publish(c->data, c->len, c->keyframe);
    free(c);
    if (MI.stopped) return;
    flow();
  }
  if (MI.ended) {
    MI.ended = 0;
    uint32_t grace = END_GRACE_MS(MI.chunk_ms);
    ptv_rt_log(1, "input: last chunk published (%llu in all, the input held %llu times);"
               " stopping in %.1f s", (unsigned long long)MI.published,
               (unsigned long long)MI.holds, grace / 1000.0);
    ptv_host_stop(0, grace);
  }
}

static void media_chunk(void *user, const uint8_t *ts, size_t len, int keyframe, uint64_t pts_us) {
  (void)user;
  if (MI.stopped) return;
  if (!MI.is_file) { /* live: paced by its own clock */
    publish(ts, len, keyframe);
    return;
  }
  fifo_chunk *c = malloc(sizeof(*c) + len);
  if (!c) {
    ptv_rt_log(0, "input: out of memory buffering the file (%zu chunks, %zu bytes held)", MI.queued,
               MI.queued_bytes);
    ptv_media_free(MI.m);
    MI.m = NULL;
    ptv_host_stop(1, 0);
    return;
  }
  c->next = NULL;
  c->pts_us = pts_us;
  c->keyframe = keyframe;
  c->len = len;
  memcpy(c->data, ts, len);
  if (!MI.have_t0) {
    MI.have_t0 = 1;
    MI.t0 = ptv_rt_now();
    MI.first_pts = pts_us;
  }
  if (MI.tail) MI.tail->next = c;
  else MI.head = c;
  MI.tail = c;
  MI.queued++;
  MI.queued_bytes += len;
  if (MI.head == c) pace_run(); /* else the timer waits for the head */
  flow();
}

static void media_stall(void *user, int stalled, const char *message) {
  (void)user;
  if (MI.stopped || !MI.stall_live) return;
  if (stalled) {
    ptv_rt_log(0, "input stalled: %s; the channel stays up, peers are told; retrying", message);
    uv_timer_start(&MI.stall, on_stall_tick, 0, MI.chunk_ms);
  } else {
    uv_timer_stop(&MI.stall);
    ptv_rt_log(1, "input resumed: %s (%llu stall notices sent)", message,
               (unsigned long long)MI.stall_notices);
    MI.stall_notices = 0;
  }
}

static void media_info(void *user, const char *message) {
  (void)user;
  ptv_rt_log(1, "input: %s", message);
}

static void media_end(void *user, int error, const char *message) {
  (void)user;
  ptv_media_free(MI.m); /* allowed from inside the callback */
  MI.m = NULL;
  if (MI.stopped) return;
  if (error) {
    ptv_rt_log(0, "input failed: %s", message);
    ptv_host_stop(1, 0);
    return;
  }
  if (MI.queued)
    ptv_rt_log(1, "input ended (%zu chunks still to publish, %.1f s)", MI.queued,
               MI.tail ? (double)(MI.tail->pts_us - MI.head->pts_us) / 1e6 : 0.0);
  else
    ptv_rt_log(1, "input ended");
  MI.ended = 1;
  pace_run();
}

static int media_start(void *user) {
  (void)user;
  if (uv_timer_init(uv_default_loop(), &MI.pace) != 0) {
    ptv_rt_log(0, "input: cannot make a timer");
    return -1;
  }
  MI.pace_live = 1;
  if (uv_timer_init(uv_default_loop(), &MI.stall) != 0) {
    ptv_rt_log(0, "input: cannot make a timer");
    return -1;
  }
  MI.stall_live = 1;
  if (ptv_media_start(MI.m) != 0) {
    ptv_rt_log(0, "input failed: %s", ptv_media_error(MI.m));
    return -1;
  }
  ptv_rt_log(1, "input %s started", MI.input);
  return 0;
}

static void media_stop(void *user) {
  (void)user;
  MI.stopped = 1;
  ptv_media_free(MI.m);
  MI.m = NULL;
  fifo_clear();
  if (MI.pace_live) uv_close((uv_handle_t *)&MI.pace, NULL);
  MI.pace_live = 0;
  if (MI.stall_live) uv_close((uv_handle_t *)&MI.stall, NULL);
  MI.stall_live = 0;
}

static const ptv_host_input MEDIA_INPUT = {.user = NULL, .start = media_start, .stop = media_stop};

static void usage(FILE *f) {
  fputs("Usage: peertv-source --tracker HOST:PORT --channel NAME [options]\n"
        "Broadcast a PeerTV channel: create it in the tracker under this source's key,\n"
        "cut the stream into signed chunks and push them into the swarm.\n\n"
        "Options:\n"
        "  --tracker HOST:PORT    the tracker (required)\n"
        "  --channel NAME         the channel to create or take back (required)\n"
        "  --input INPUT          what to broadcast, as H.264 + AAC in MPEG-TS:\n"
        "                         'test' (a live 640x360 test pattern and a tone), a\n"
        "                         local media file (played once, in real time; then the\n"
        "                         source ends the channel), udp://HOST:PORT (MPEG-TS\n"
        "                         over UDP, as ffmpeg or OBS send it), srt://HOST:PORT\n"
        "                         [?mode=listener|caller...], or v4l2:///dev/videoN (a\n"
        "                         camera). Default: synthetic test packets at --rate\n"
        "  --reencode             udp:// and srt:// inputs: re-encode H.264 video and\n"
        "                         AAC audio too (default: passed through as sent)\n"
        "  --video-bitrate RATE   H.264 bitrate when encoding, e.g. 1M (default 1M)\n"
        "  --rate RATE            stream rate, e.g. 2M (default 2M; with --input:\n"
        "                         (video bitrate + 128k audio) + 10%, e.g. 1241k for 1M)\n"
        "  --chunk-ms MS          chunk duration, 50..2000, with --input 100..2000\n"
        "                         (default 250; every chunk starts with a keyframe,\n"
        "                         except with passed-through video)\n"
        "  --key FILE             the channel's publisher key (created 0600 if missing;\n"
        "                         default: peertv-source.key)\n"
        "  --description TEXT     shown in the tracker's channel list\n"
        "  --capture-log FILE     with --input test: one line per video frame as it is\n"
        "                         captured: its stream PTS (90 kHz) and the wall-clock\n"
        "                         time in microseconds (glass-to-glass benchmarks)\n"
        "  --upload-limit RATE    upload cap (default 4 x the stream rate)\n"
        "  --http ADDR:PORT       serve GET /stats (JSON) there\n"
        "  --stun, --turn, --turn-user, --turn-pass, --local-addr, --relay-only:\n"
        "                         as peertv-peer\n"
        "  --duration SECONDS     stop after this long (default: until SIGINT/SIGTERM)\n"
        "  --poll-interval MS     handle network I/O at most every MS ms: less CPU,\n"
        "                         up to MS more delay per hop (default auto: the\n"
        "                         chunk duration / 10, within 1..10; 0: at once)\n"
        "  --stats-file FILE      write the final /stats JSON there when stopping\n"
        "  -v, --verbose          more log lines; -q, --quiet: errors only\n"
        "  --help, --version\n\n"
        "Exit status: 0 stopped cleanly (also: the input file was played to its end),\n"
        "1 runtime failure (a missing, undecodable or video-less input file, a missing\n"
        "device, a missing GStreamer element, refused by the tracker), 2 usage error\n"
        "(also an unsupported --input such as rtsp://..., or a malformed udp:// URI).\n"
        "A live input that stops delivering does not end the channel: the source logs\n"
        "'input stalled', tells the peers, and retries until it delivers again.\n",
        f);
}

int main(int argc, char **argv) {
  ptv_host_config c;
  memset(&c, 0, sizeof(c));
  c.role = PTV_ROLE_SOURCE;
  c.stream_kbps = 2000;
  c.chunk_us = 250000;
  c.key_path = "peertv-source.key";
  const char *input = NULL;
  uint32_t video_kbps = 1000;
  int rate_given = 0, video_given = 0, reencode = 0;
  const char *capture_log = NULL;
  static const struct option opts[] = {
      PTV_HOST_LONG_OPTIONS,
      {"input", required_argument, NULL, 'i'},       {"rate", required_argument, NULL, 'R'},
      {"video-bitrate", required_argument, NULL, 'B'}, {"reencode", no_argument, NULL, 'E'},
      {"chunk-ms", required_argument, NULL, 'C'},    {"description", required_argument, NULL, 'D'},
      {"capture-log", required_argument, NULL, 'L'},
      {"help", no_argument, NULL, 'h'},              {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *prog = "peertv-source";
  ptv_rt_set_prog(prog);
  int o, rv;
  char *e;
  while ((o = getopt_long(argc, argv, "vq", opts, NULL)) != -1) {
    if ((rv = ptv_host_option(&c, o, optarg, prog)) != 0) {
      if (rv < 0) return 2;
      continue;
    }
    switch (o) {
    case 'i':
      /* "synthetic": the default, named (kept for existing command lines) */
      input = strcmp(optarg, "synthetic") == 0 ? NULL : optarg;
      break;
    case 'R':
      if (ptv_rt_parse_rate(optarg, &c.stream_kbps) != 0) {
        fprintf(stderr, "peertv-source: --rate wants a rate such as 2M or 1500k, not '%s'\n", optarg);
        return 2;
      }
      rate_given = 1;
      break;
    case 'B':
      if (ptv_rt_parse_rate(optarg, &video_kbps) != 0 || video_kbps < MIN_VIDEO_KBPS ||
          video_kbps > MAX_VIDEO_KBPS) {
        fprintf(stderr, "peertv-source: --video-bitrate wants a rate from 64k to 100M such as 1M or"
                        " 800k, not '%s'\n", optarg);
        return 2;
      }
      video_given = 1;
      break;
    case 'C': {
      long ms = strtol(optarg, &e, 10);
      if (*e || ms < 50 || ms > 2000) {
        fprintf(stderr, "peertv-source: --chunk-ms wants 50..2000, not '%s'\n", optarg);
        return 2;
      }
      c.chunk_us = (uint32_t)ms * 1000u;
      break;
    }
    case 'D': c.description = optarg; break;
    case 'E': reencode = 1; break;
    case 'L': capture_log = optarg; break;
    case 'h': usage(stdout); return 0;
    case 'V': puts("peertv-source " PACKAGE_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (ptv_host_options_done(&c, optind, argc, prog) != 0) return 2;
  if (!input) {
    if (video_given || reencode || capture_log) {
      fprintf(stderr, "peertv-source: %s needs --input (see --help)\n",
              video_given ? "--video-bitrate" : reencode ? "--reencode" : "--capture-log");
      return 2;
    }
    return ptv_host_run(&c); /* the synthetic stream */
  }
  if (c.chunk_us < MIN_MEDIA_CHUNK_MS * 1000u) {
    fprintf(stderr, "peertv-source: --chunk-ms wants 100..2000 with --input, not %u\n",
            c.chunk_us / 1000u);
    return 2;
  }
  /* The engine plans uploads and the tracker announces the channel by this
   * rate: it must cover what the encoders make, not just the video. */
  if (!rate_given)
    c.stream_kbps = (uint32_t)(((uint64_t)video_kbps + AUDIO_KBPS) * (100u + TS_OVERHEAD_PCT) / 100u);
  /* The input is opened before anything else (key file, tracker): a missing
   * file or an input we cannot take fails here, with one line. */
  char err[512];
  if (capture_log && strcmp(input, "test") != 0) {
    fprintf(stderr, "peertv-source: --capture-log needs --input test (see --help)\n");
    return 2;
  }
  ptv_media_config mc = {.input = input, .video_kbps = video_kbps, .chunk_us = c.chunk_us,
                         .reencode = reencode, .capture_log = capture_log};
  ptv_media_callbacks mcb = {.on_chunk = media_chunk, .on_end = media_end, .on_stall = media_stall,
                             .on_info = media_info};
  rv = ptv_media_new(&MI.m, uv_default_loop(), &mc, &mcb, NULL, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "peertv-source: %s\n", err[0] ? err : ptv_strerror(rv));
    /* an input we do not take (rtsp://...) or a malformed URI is a usage
     * error; a missing or bad file, a missing element: runtime */
    return (rv == PTV_ERR_INVALID_ARG && strstr(err, "unsupported input")) || rv == PTV_ERR_PARSE ? 2 : 1;
  }
  MI.input = input;
  MI.is_file = !ptv_media_live(MI.m);
  MI.chunk_ms = c.chunk_us / 1000u;
  c.input = &MEDIA_INPUT;
  ptv_rt_log(2, "input %s: video %u kbit/s, stream rate %u kbit/s, %u ms chunks", input, video_kbps,
             c.stream_kbps, c.chunk_us / 1000u);
  return ptv_host_run(&c);
}
