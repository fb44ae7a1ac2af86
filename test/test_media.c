/* test_media.c -- unit tests for the GStreamer media input (ptv_media).
 *
 * Tested: the live test pattern (chunks of whole TS packets that start at
 * keyframes, pts_us about chunk_us apart, and a stream that ffprobe sees as
 * 640x360 H.264 + AAC and ffmpeg decodes without an error); a 3 s MP4 with
 * B-frames made at test time by ffmpeg (the same checks, then on_end with
 * error=0); MPEG-TS over UDP from ffmpeg into a passthrough and a
 * re-encoding input at once (the sender's profile, sample rate and
 * keyframe interval kept, keyframe chunks decodable on their own, chunks
 * chunk_us apart on average; on_info says what happens to each stream;
 * the sender stopping gives on_stall(1), a new one on_stall(0) and a
 * stream that decodes across the gap); bad inputs (a missing file or
 * device, an rtsp:// URI, malformed udp://, srt:// and v4l2:// URIs, and,
 * refused by ptv_media_new itself, WAV and Ogg files without video, an MP4
 * cut before its index and a text file; a character device that is no
 * camera fails ptv_media_start); freeing before start, right after start
 * and from inside on_chunk. Every ptv_media_free must return within a
 * second.
 *
 * Exits 77 (skipped) only if x264enc or an AAC encoder element is missing.
 * Needs ffmpeg and ffprobe (scripts/debian-packages.txt), with libx264 and
 * libopus. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gst/gst.h>
#include <uv.h>

#include "ptv_err.h"
#include "ptv_media.h"

#define MAX_CHUNKS 256
#define CHUNK_US 500000u

static char tmpdir[64];

typedef struct {
  ptv_media *m;
  uv_loop_t *loop;
  size_t n;
  uint64_t pts[MAX_CHUNKS];
  size_t len[MAX_CHUNKS];
  int key[MAX_CHUNKS];
  double at_ms[MAX_CHUNKS]; /* wall time of arrival since start */
  size_t misaligned;        /* chunks not made of whole TS packets */
  uint8_t *all;
  size_t all_len, all_cap;
  int ended, end_error, chunks_after_end;
  char end_msg[256];
  size_t free_after; /* free the media from on_chunk after this many (0: no) */
  double t0;
  size_t off[MAX_CHUNKS]; /* where each chunk starts in all */
  int stalls, resumes;    /* on_stall(1), on_stall(0) */
  int stalled;            /* the last on_stall's */
  size_t n_at_resume;     /* chunks before the last on_stall(0) */
  size_t n_at_stall;      /* chunks before the last on_stall(1) */
  char stall_msg[256];
  char info[1024];        /* on_info's lines, joined by '|' */
} rec;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void on_chunk(void *user, const uint8_t *ts, size_t len, int keyframe, uint64_t pts_us) {
  rec *r = user;
  if (r->ended) r->chunks_after_end++;
  if (r->n < MAX_CHUNKS) {
    r->off[r->n] = r->all_len;
    r->pts[r->n] = pts_us;
    r->len[r->n] = len;
    r->key[r->n] = keyframe;
    r->at_ms[r->n] = now_ms() - r->t0;
  }
  r->n++;
  int ok = len > 0 && len % 188 == 0;
  for (size_t off = 0; ok && off < len; off += 188) ok = ts[off] == 0x47;
  if (!ok) r->misaligned++;
  if (r->all_len + len > r->all_cap) {
    size_t cap = r->all_cap ? r->all_cap * 2 : 1 << 20;
    while (cap < r->all_len + len) cap *= 2;
    r->all = realloc(r->all, cap);
    assert_non_null(r->all);
    r->all_cap = cap;
  }
  memcpy(r->all + r->all_len, ts, len);
  r->all_len += len;
  if (r->free_after && r->n == r->free_after) {
    ptv_media_free(r->m);
    r->m = NULL;
    uv_stop(r->loop);
  }
}

static void on_end(void *user, int error, const char *message) {
  rec *r = user;
  r->ended++;
  r->end_error = error;
  snprintf(r->end_msg, sizeof r->end_msg, "%s", message ? message : "(null)");
  uv_stop(r->loop);
}

static void on_stall(void *user, int stalled, const char *message) {
  rec *r = user;
  print_message("on_stall(%d, \"%s\") after %zu chunks, at %.0f ms\n", stalled, message, r->n,
                now_ms() - r->t0);
  r->stalled = stalled;
  if (stalled) {
    r->stalls++;
    r->n_at_stall = r->n;
    snprintf(r->stall_msg, sizeof r->stall_msg, "%s", message ? message : "(null)");
  } else {
    r->resumes++;
    r->n_at_resume = r->n;
  }
}

static void on_info(void *user, const char *message) {
  rec *r = user;
  size_t l = strlen(r->info);
  snprintf(r->info + l, sizeof r->info - l, "%s|", message);
}

static const ptv_media_callbacks CBS = {on_chunk, on_end, on_stall, on_info};

static void on_timeout(uv_timer_t *t) { uv_stop(t->loop); }

/* Runs the loop until on_end, a free from on_chunk, or ms elapse. */
static void run_for(uv_loop_t *loop, uint64_t ms) {
  uv_timer_t t;
  uv_timer_init(loop, &t);
  uv_timer_start(&t, on_timeout, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* Runs the loop until done(arg) holds (checked every 100 ms) or ms elapse. */
typedef struct {
  int (*done)(void *);
  void *arg;
} until;

static void on_check(uv_timer_t *t) {
  until *u = t->data;
  if (u->done(u->arg)) uv_stop(t->loop);
}

static void run_until(uv_loop_t *loop, uint64_t ms, int (*done)(void *), void *arg) {
  until u = {done, arg};
  uv_timer_t c;
  uv_timer_init(loop, &c);
  c.data = &u;
  uv_timer_start(&c, on_check, 100, 100);
  run_for(loop, ms);
  uv_close((uv_handle_t *)&c, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* Frees (timing it) and lets the loop close the media's handle. */
static void free_and_close(rec *r) {
  double t = now_ms();
  ptv_media_free(r->m);
  r->m = NULL;
  double took = now_ms() - t;
  print_message("ptv_media_free took %.1f ms\n", took);
  assert_true(took < 1000);
  assert_int_equal(uv_run(r->loop, UV_RUN_DEFAULT), 0);
}

static void start_media_chunk(rec *r, uv_loop_t *loop, const char *input, int reencode,
                              uint32_t chunk_us) {
  memset(r, 0, sizeof *r);
  r->loop = loop;
  ptv_media_config c = {.input = input, .video_kbps = 1000, .chunk_us = chunk_us, .reencode = reencode};
  char err[256];
  int rc = ptv_media_new(&r->m, loop, &c, &CBS, r, err, sizeof err);
  if (rc) print_error("ptv_media_new(%s): %s\n", input, err);
  assert_int_equal(rc, 0);
  r->t0 = now_ms();
  rc = ptv_media_start(r->m);
  if (rc) print_error("ptv_media_start(%s): %s\n", input, ptv_media_error(r->m));
  assert_int_equal(rc, 0);
}

static void start_media_cfg(rec *r, uv_loop_t *loop, const char *input, int reencode) {
  start_media_chunk(r, loop, input, reencode, CHUNK_US);
}

static void start_media(rec *r, uv_loop_t *loop, const char *input) { start_media_cfg(r, loop, input, 0); }

static char *run_cmd(const char *cmd) {
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t cap = 4096, len = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  size_t n;
  while ((n = fread(out + len, 1, cap - len - 1, p)) > 0) {
    len += n;
    if (cap - len < 2) {
      cap *= 2;
      out = realloc(out, cap);
      assert_non_null(out);
    }
  }
  out[len] = '\0';
  int st = pclose(p);
  if (st != 0) print_error("command failed (%d): %s\n%s\n", st, cmd, out);
  assert_int_equal(st, 0);
  return out;
}

static int threads_now(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  int n = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Threads: %d", &n) == 1) break;
  fclose(f);
  return n;
}

/* The chunk rules and a decodable stream of width x height H.264 (+ AAC). */
static void check_stream(rec *r, const char *name, int width, int height, int audio) {
  size_t n = r->n < MAX_CHUNKS ? r->n : MAX_CHUNKS;
  size_t total = 0, minl = SIZE_MAX, maxl = 0;
  for (size_t i = 0; i < n; i++) {
    total += r->len[i];
    if (r->len[i] < minl) minl = r->len[i];
    if (r->len[i] > maxl) maxl = r->len[i];
    print_message("%s chunk %2zu: %6zu bytes key=%d pts=%8.3f s at %7.1f ms\n", name, i, r->len[i], r->key[i],
                  r->pts[i] / 1e6, r->at_ms[i]);
  }
  print_message("%s: %zu chunks, %zu bytes (min %zu, max %zu)\n", name, n, total, minl, maxl);
  assert_int_equal(r->misaligned, 0);
  for (size_t i = 1; i < n; i++) {
    assert_int_equal(r->key[i], 1);
    assert_true(r->pts[i] > r->pts[i - 1]);
    uint64_t d = r->pts[i] - r->pts[i - 1];
    /* The first chunk starts with the stream (audio may come first) and
     * ends at the first keyframe a chunk after the first video frame: a
     * file whose video starts 133 ms in (seen under ASan) makes it 633 ms. */
    uint64_t lo = CHUNK_US * 8 / 10,
             hi = i == 1 ? CHUNK_US * 2 : CHUNK_US * 12 / 10;
    if (d < lo || d > hi)
      print_error("%s: chunk %zu starts %" PRIu64 " us after chunk %zu\n", name, i, d, i - 1);
    assert_true(d >= lo && d <= hi);
  }

  char path[128], cmd[512];
  snprintf(path, sizeof path, "%s/%s.ts", tmpdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(r->all, 1, r->all_len, f), r->all_len);
  assert_int_equal(fclose(f), 0);

  snprintf(cmd, sizeof cmd, "ffprobe -v error -show_streams '%s' 2>&1", path);
  char *out = run_cmd(cmd);
  char w[32], h[32];
  snprintf(w, sizeof w, "\nwidth=%d\n", width);
  snprintf(h, sizeof h, "\nheight=%d\n", height);
  if (!strstr(out, "codec_name=h264\n") || !strstr(out, w) || !strstr(out, h) ||
      (audio && !strstr(out, "codec_name=aac\n")))
    print_error("%s: ffprobe says:\n%s\n", name, out);
  assert_non_null(strstr(out, "codec_name=h264\n"));
  assert_non_null(strstr(out, w));
  assert_non_null(strstr(out, h));
  if (audio) assert_non_null(strstr(out, "codec_name=aac\n"));
  free(out);

  snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -f null - 2>&1", path);
  out = run_cmd(cmd);
  if (*out) print_error("%s: ffmpeg decoding reports:\n%s\n", name, out);
  assert_string_equal(out, "");
  free(out);
  unlink(path);
}

static void test_live_pattern(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rec *r = calloc(1, sizeof *r);
  assert_non_null(r);
  start_media(r, &loop, "test");
  run_for(&loop, 4000);
  assert_int_equal(r->ended, 0); /* a live source does not end */
  free_and_close(r);
  assert_true(r->n >= 5);
  check_stream(r, "test", 640, 360, 1);
  /* live: chunks come at the pace of the clock, not in a burst */
  size_t n = r->n < MAX_CHUNKS ? r->n : MAX_CHUNKS;
  double span = r->at_ms[n - 1] - r->at_ms[1];
  print_message("test: chunks 1..%zu arrived over %.0f ms (pts span %.0f ms)\n", n - 1, span,
                (r->pts[n - 1] - r->pts[1]) / 1e3);
  assert_true(span > (r->pts[n - 1] - r->pts[1]) / 1e3 * 0.5);
  free(r->all);
  free(r);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* 250 ms is 7.5 frames at 30 fps: keyframes are forced on the chunk grid,
 * so chunks last 233 and 267 ms in turn and 250 ms on average, each from a
 * keyframe (a fixed keyframe interval gave 267 ms every time, and chunks
 * fell behind the swarm's chunk clock by 7%). */
static void test_chunk_grid(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  rec *r = calloc(1, sizeof *r);
  assert_non_null(r);
  start_media_chunk(r, &loop, "test", 0, 250000);
  run_for(&loop, 4000);
  free_and_close(r);
  size_t n = r->n < MAX_CHUNKS ? r->n : MAX_CHUNKS;
  assert_true(n >= 10);
  for (size_t i = 1; i < n; i++) {
    uint64_t d = r->pts[i] - r->pts[i - 1];
    print_message("grid chunk %2zu: key=%d, %6.1f ms after the one before\n", i, r->key[i], d / 1e3);
    assert_int_equal(r->key[i], 1);
    assert_true(d >= 200000 && d <= 300000);
  }
  double mean = (double)(r->pts[n - 1] - r->pts[1]) / (double)(n - 2);
  print_message("grid: %zu chunks, %.1f ms apart on average\n", n, mean / 1e3);
  assert_true(mean >= 245000 && mean <= 255000);
  free(r->all);
  free(r);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_file(void **state) {
  char mp4[128], cmd[768];
  snprintf(mp4, sizeof mp4, "%s/in.mp4", tmpdir);
  /* 3 s, 25 fps (the input re-times it to 30), B-frames, AAC */
  snprintf(cmd, sizeof cmd,
           "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=320x240:rate=25 "
           "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 3 -c:v libx264 -bf 2 -g 50 "
           "-pix_fmt yuv420p -c:a aac '%s' 2>&1",
           mp4);
  free(run_cmd(cmd));
  snprintf(cmd, sizeof cmd, "ffprobe -v error -show_streams -select_streams v '%s' 2>&1", mp4);
  char *out = run_cmd(cmd);
  assert_null(strstr(out, "has_b_frames=0"));
  assert_non_null(strstr(out, "has_b_frames="));
  free(out);

  uv_loop_t loop;
  uv_loop_init(&loop);
  rec *r = calloc(1, sizeof *r);
  assert_non_null(r);
  start_media(r, &loop, mp4);
  run_for(&loop, 30000);
  double took = now_ms() - r->t0;
  print_message("file: on_end(%d, \"%s\") after %.0f ms\n", r->end_error, r->end_msg, took);
  assert_int_equal(r->ended, 1);
  assert_int_equal(r->end_error, 0);
  free_and_close(r);
  assert_int_equal(r->chunks_after_end, 0);
  assert_true(r->n >= 5);
  /* the last chunk (cut at EOS) still starts at a keyframe; pts reach ~2.5 s */
  assert_true(r->pts[r->n - 1] >= 2000000);
  check_stream(r, "file", 320, 240, 1);
  free(r->all);
  free(r);
  unlink(mp4);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_bad_inputs(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  ptv_media *m = NULL;
  char err[256];
  ptv_media_config c = {.input = "/nonexistent/dir/nope.mp4", .video_kbps = 1000, .chunk_us = CHUNK_US};
  assert_int_equal(ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_NOT_FOUND);
  assert_null(m);
  print_message("missing file: %s\n", err);
  assert_non_null(strstr(err, "/nonexistent/dir/nope.mp4"));

  c.input = "rtsp://x";
  assert_int_equal(ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  print_message("rtsp: %s\n", err);
  c.input = "";
  assert_int_equal(ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  c.input = tmpdir; /* a directory */
  assert_int_equal(ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  c.input = "test";
  c.chunk_us = 1000; /* too short */
  assert_int_equal(ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_media_new(NULL, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_media_start(NULL), PTV_ERR_INVALID_ARG);
  ptv_media_free(NULL);

  /* malformed URIs of the schemes we take, and a directory as a device */
  static const char *const unparsable[] = {"udp://x", "udp://:5000", "udp://127.0.0.1:0",
                                           "udp://127.0.0.1:70000", "udp://127.0.0.1:5000/x",
                                           "srt://host", "srt://h:p", "v4l2://video0"};
  c.chunk_us = CHUNK_US;
  for (size_t i = 0; i < sizeof unparsable / sizeof unparsable[0]; i++) {
    c.input = unparsable[i];
    int rc = ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err);
    print_message("%s: %d %s\n", unparsable[i], rc, err);
    assert_int_equal(rc, PTV_ERR_PARSE);
    assert_non_null(strstr(err, unparsable[i]));
  }
  c.input = "v4l2:///dev/video99";
  assert_int_equal(ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_NOT_FOUND);
  print_message("v4l2: %s\n", err);
  assert_non_null(strstr(err, "no such device: /dev/video99"));
  c.input = "v4l2:///tmp";
  assert_int_equal(ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  assert_non_null(strstr(err, "not a video device"));
  assert_null(m);

  /* Files GStreamer cannot play fail in ptv_media_new (it prerolls them),
   * with the file's name in one line, and no callback: a WAV and an Ogg
   * file (decodable, no video), an MP4 cut before its index, and a text
   * file. */
  char path[128], cmd[512];
  static const struct {
    const char *name, *make, *says;
  } bad[] = {
      {"tone.wav",
       "ffmpeg -nostdin -v error -y -f lavfi -i sine=frequency=440:sample_rate=48000 -t 1 '%s' 2>&1",
       "no video"},
      {"tone.ogg", "ffmpeg -nostdin -v error -y -f lavfi -i sine=frequency=440 -t 1 -c:a libopus '%s' 2>&1",
       "no video"},
      {"cut.mp4",
       "ffmpeg -nostdin -v error -y -f lavfi -i testsrc=size=320x240:rate=25 -t 3 -c:v libx264 "
       "-pix_fmt yuv420p '%1$s.full.mp4' 2>&1 && head -c $(($(stat -c %%s '%1$s.full.mp4') / 2)) "
       "'%1$s.full.mp4' >'%1$s' && rm '%1$s.full.mp4'",
       "no playable stream"},
      {"notes.txt", "echo 'this is not a video' >'%s'", "Could not determine type"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, bad[i].name);
    snprintf(cmd, sizeof cmd, bad[i].make, path);
    free(run_cmd(cmd));
    c.input = path;
    c.chunk_us = CHUNK_US;
    double t = now_ms();
    int rc = ptv_media_new(&m, &loop, &c, &CBS, NULL, err, sizeof err);
    print_message("%s: %d (%.0f ms): %s\n", bad[i].name, rc, now_ms() - t, err);
    assert_int_equal(rc, PTV_ERR_MALFORMED);
    assert_null(m);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, bad[i].says));
    assert_null(strchr(err, '\n'));
    unlink(path);
  }
  /* nothing was left on the loop */
  assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);

  /* a character device that is no camera: v4l2src refuses it at start */
  rec *r = calloc(1, sizeof *r);
  assert_non_null(r);
  r->loop = &loop;
  c.input = "v4l2:///dev/null";
  assert_int_equal(ptv_media_new(&r->m, &loop, &c, &CBS, r, err, sizeof err), 0);
  assert_int_equal(ptv_media_live(r->m), 1);
  assert_int_equal(ptv_media_start(r->m), PTV_ERR_IO);
  print_message("v4l2:///dev/null: %s\n", ptv_media_error(r->m));
  assert_non_null(strstr(ptv_media_error(r->m), "/dev/null"));
  free_and_close(r);
  assert_int_equal(r->n + r->ended + r->stalls, 0);
  free(r);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* A UDP port nobody uses on 127.0.0.1 now. */
static int free_udp_port(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t alen = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* ffmpeg sends secs of 320x240 H.264 (Constrained Baseline, a keyframe
 * every 30 frames = 1 s, so every other 500 ms chunk) and mono 44.1 kHz AAC
 * as MPEG-TS over UDP in real time, in the background. */
static void send_udp(int port, int secs) {
  char cmd[768];
  snprintf(cmd, sizeof cmd,
           "ffmpeg -nostdin -v error -re -f lavfi -i testsrc=size=320x240:rate=30 "
           "-f lavfi -i sine=frequency=440:sample_rate=44100 -t %d -c:v libx264 -profile:v baseline "
           "-pix_fmt yuv420p -preset ultrafast -tune zerolatency -g 30 -b:v 400k -c:a aac -ac 1 "
           "-f mpegts 'udp://127.0.0.1:%d?pkt_size=1316' >/dev/null 2>&1 &",
           secs, port);
  assert_int_equal(system(cmd), 0);
}

/* Chunks from..to-1 of r into a file; returns what ffmpeg says decoding
 * it (caller frees). */
static char *decode_chunks(rec *r, size_t from, size_t to, const char *name, char *probe) {
  char path[128], cmd[512];
  snprintf(path, sizeof path, "%s/%s.ts", tmpdir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  size_t end = to < r->n ? r->off[to] : r->all_len;
  assert_int_equal(fwrite(r->all + r->off[from], 1, end - r->off[from], f), end - r->off[from]);
  assert_int_equal(fclose(f), 0);
  if (probe) {
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -show_entries stream=codec_name,profile,width,height,sample_rate "
             "-of compact '%s' 2>&1", path);
    char *out = run_cmd(cmd);
    snprintf(probe, 1024, "%s", out);
    free(out);
  }
  snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -v error -i '%s' -f null - 2>&1", path);
  char *out = run_cmd(cmd);
  unlink(path);
  return out;
}

/* Stalled after delivering, and nothing since. */
static int stalled_after_data(rec *r) { return r->stalled && r->n >= 7 && r->n_at_stall == r->n; }
static int both_stalled(void *arg) {
  rec **r = arg;
  return stalled_after_data(r[0]) && stalled_after_data(r[1]);
}
static int resumed(void *arg) {
  rec *r = arg;
  return r->resumes > r->stalls - 1 && r->n >= r->n_at_resume + 3;
}

/* MPEG-TS over UDP from ffmpeg, into two inputs at once: one passes the
 * H.264 and AAC through (the sender's profile, sample rate and keyframe
 * interval survive; chunks still average chunk_us and each keyframe chunk
 * decodes on its own), one re-encodes (every chunk a keyframe). When the
 * sender stops, both stall (on_stall(1), "no data"); the passthrough one
 * resumes (on_stall(0) before its next chunk) when a sender comes back,
 * with time stamps that go on. */
static void test_udp(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  rec *ra = calloc(1, sizeof *ra), *rb = calloc(1, sizeof *rb);
  assert_non_null(ra);
  assert_non_null(rb);
  int pa = free_udp_port(), pb = free_udp_port();
  char ua[64], ub[64];
  snprintf(ua, sizeof ua, "udp://127.0.0.1:%d", pa);
  snprintf(ub, sizeof ub, "udp://127.0.0.1:%d", pb);
  start_media_cfg(ra, &loop, ua, 0);
  start_media_cfg(rb, &loop, ub, 1);
  assert_int_equal(ptv_media_live(ra->m), 1);
  send_udp(pa, 4);
  send_udp(pb, 4);
  /* 4 s of stream, and the stall 1 s after (ffmpeg may be slow to start
   * on a loaded machine) */
  rec *both[2] = {ra, rb};
  run_until(&loop, 15000, both_stalled, both);
  print_message("passthrough: %s\nre-encoded: %s\n", ra->info, rb->info);
  assert_non_null(strstr(ra->info, "video H.264 passed through"));
  assert_non_null(strstr(ra->info, "audio AAC passed through"));
  assert_non_null(strstr(rb->info, "video encoded to H.264"));
  assert_non_null(strstr(rb->info, "audio encoded to AAC"));
  /* (a loaded machine may start the senders late: then each input also
   * stalled before its first chunk, and resumed) */
  for (int i = 0; i < 2; i++) {
    rec *r = i ? rb : ra;
    assert_int_equal(r->ended, 0);
    assert_int_equal(r->stalled, 1);
    assert_non_null(strstr(r->stall_msg, "no data"));
    assert_true(stalled_after_data(r));
    assert_int_equal(r->resumes, r->stalls - 1);
    assert_int_equal(r->misaligned, 0);
  }

  /* passthrough: the sender's keyframes (every other chunk), each keyframe
   * chunk decodable on its own; chunk_us apart on average */
  size_t n = ra->n < MAX_CHUNKS ? ra->n : MAX_CHUNKS, first = n, keys = 0, deltas = 0;
  for (size_t i = 0; i < n; i++) {
    print_message("udp chunk %2zu: %6zu bytes key=%d pts=%8.3f s\n", i, ra->len[i], ra->key[i],
                  ra->pts[i] / 1e6);
    if (ra->key[i] && first == n) first = i;
    if (first < i) ra->key[i] ? keys++ : deltas++;
  }
  assert_true(n >= 7 && first + 5 < n);
  assert_true(keys >= 1 && deltas >= 2);
  assert_true(keys + 1 >= deltas / 2);
  double mean = (double)(ra->pts[n - 1] - ra->pts[first]) / (double)(n - 1 - first);
  print_message("udp: %zu keyframe and %zu other chunks after chunk %zu, %.0f us apart on average\n", keys,
                deltas, first, mean);
  assert_true(mean >= CHUNK_US * 0.8 && mean <= CHUNK_US * 1.2);
  char probe[1024];
  for (size_t i = first, k = 0; i < n && k < 3; i++) {
    if (!ra->key[i]) continue;
    k++;
    char *out = decode_chunks(ra, i, i + 2, "udp-key", k == 1 ? probe : NULL);
    if (*out) print_error("udp: from keyframe chunk %zu ffmpeg says:\n%s\n", i, out);
    assert_string_equal(out, "");
    free(out);
  }
  print_message("udp: %s\n", probe);
  assert_non_null(strstr(probe, "profile=Constrained Baseline"));
  assert_non_null(strstr(probe, "sample_rate=44100"));
  check_stream(rb, "udp-reencoded", 320, 240, 1);

  /* the sender comes back: the passthrough input resumes */
  size_t before = ra->n;
  int resumes = ra->resumes;
  send_udp(pa, 2);
  run_until(&loop, 8000, resumed, ra);
  print_message("udp: %zu chunks after the stall\n", ra->n - before);
  assert_int_equal(ra->resumes, resumes + 1);
  assert_int_equal(ra->n_at_resume, before);
  assert_true(ra->n >= before + 3);
  for (size_t i = before - 2; i < ra->n && i < MAX_CHUNKS; i++)
    print_message("udp chunk %2zu: %6zu bytes key=%d pts=%8.3f s\n", i, ra->len[i], ra->key[i],
                  ra->pts[i] / 1e6);
  /* the stream goes on through the gap: from the last keyframe chunk
   * before the stall on, it decodes without time stamps going back */
  size_t k = before - 1;
  while (k > 0 && !ra->key[k]) k--;
  char *out = decode_chunks(ra, k, ra->n, "udp-resumed", NULL);
  if (*out) print_error("udp: across the stall ffmpeg says:\n%s\n", out);
  assert_string_equal(out, "");
  free(out);
  ptv_media_free(rb->m); /* its timers would keep the loop running */
  rb->m = NULL;
  free_and_close(ra);
  free(ra->all);
  free(rb->all);
  free(ra);
  free(rb);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_free_anytime(void **state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int threads0 = threads_now();
  rec *r = calloc(1, sizeof *r);
  assert_non_null(r);
  ptv_media_config c = {.input = "test", .video_kbps = 500, .chunk_us = 200000};
  char err[256];

  /* never started */
  r->loop = &loop;
  assert_int_equal(ptv_media_new(&r->m, &loop, &c, &CBS, r, err, sizeof err), 0);
  free_and_close(r);

  /* started, freed before the loop ran: no callback at all */
  memset(r, 0, sizeof *r);
  r->loop = &loop;
  assert_int_equal(ptv_media_new(&r->m, &loop, &c, &CBS, r, err, sizeof err), 0);
  assert_int_equal(ptv_media_start(r->m), 0);
  assert_int_equal(ptv_media_start(r->m), PTV_ERR_INVALID_ARG);
  usleep(300000);
  free_and_close(r);
  assert_int_equal(r->n, 0);
  assert_int_equal(r->ended, 0);

  /* freed from inside on_chunk: nothing after it */
  memset(r, 0, sizeof *r);
  r->loop = &loop;
  r->free_after = 2;
  assert_int_equal(ptv_media_new(&r->m, &loop, &c, &CBS, r, err, sizeof err), 0);
  assert_int_equal(ptv_media_start(r->m), 0);
  run_for(&loop, 10000);
  assert_null(r->m);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(r->n, 2);
  assert_int_equal(r->ended, 0);
  free(r->all);
  free(r);
  assert_int_equal(uv_loop_close(&loop), 0);
  int threads1 = threads_now();
  /* GStreamer's thread pool may keep a few idle threads; x264's and the
   * streaming threads must be gone. */
  print_message("threads: %d before, %d after three media\n", threads0, threads1);
  assert_true(threads1 <= threads0 + 4);
}

int main(int argc, char **argv) {
  /* GObjects must come from malloc, not GLib 2.74's slice magazines, for
   * LeakSanitizer to see a GStreamer object we fail to release. GLib reads
   * G_SLICE before main, hence the re-exec. */
  if (!getenv("G_SLICE") && argc > 0) {
    setenv("G_SLICE", "always-malloc", 1);
    execv("/proc/self/exe", argv);
  }
  GError *e = NULL;
  if (!gst_init_check(NULL, NULL, &e)) {
    fprintf(stderr, "test_media: GStreamer failed to initialise: %s\n", e ? e->message : "?");
    return 1;
  }
  const char *missing = NULL;
  GstElementFactory *fx = gst_element_factory_find("x264enc");
  if (!fx) missing = "x264enc (gstreamer1.0-plugins-ugly)";
  else gst_object_unref(fx);
  int aac = 0;
  const char *const aacs[] = {"fdkaacenc", "avenc_aac", "voaacenc"};
  for (size_t i = 0; i < 3; i++) {
    GstElementFactory *fa = gst_element_factory_find(aacs[i]);
    if (fa) {
      aac = 1;
      gst_object_unref(fa);
    }
  }
  if (!missing && !aac) missing = "an AAC encoder: avenc_aac (gstreamer1.0-libav), voaacenc or fdkaacenc";
  if (missing) {
    printf("test_media: SKIP: GStreamer element missing: %s\n", missing);
    return 77;
  }
  snprintf(tmpdir, sizeof tmpdir, "/tmp/ptv_media_XXXXXX");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_inputs),
      cmocka_unit_test(test_free_anytime),
      cmocka_unit_test(test_live_pattern),
      cmocka_unit_test(test_chunk_grid),
      cmocka_unit_test(test_file),
      cmocka_unit_test(test_udp),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  rmdir(tmpdir);
  return rc;
}

/* Sanitizer builds (--enable-sanitizers). Whole stacks through GLib and
 * GStreamer (built without frame pointers), so the suppressions below can
 * match; costs a few seconds. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

/* What is never freed at exit and is not ours: the test pattern's pango
 * overlays fill fontconfig's and pango's process-wide caches, and GLib's
 * constructor allocates the first quark table (dropped, not freed, once
 * GStreamer has registered more than 2048 quarks). Only stacks through those
 * libraries match, so a GStreamer object we fail to release is reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) {
  return "leak:libfontconfig.so\n"
         "leak:libpangoft2-1.0.so\n"
         "leak:libgstpango.so\n"
         "leak:_dl_init\n";
}
