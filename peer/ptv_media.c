/* ptv_media.c -- GStreamer input -> H.264/AAC MPEG-TS -> chunks on a libuv loop.
 *
 * Pipelines (x264 keyframes every chunk_us, scene cuts off so keyframes stay
 * periodic and every chunk can start at one):
 *
 *   test: videotestsrc (live, ball) ! clockoverlay ! textoverlay (frame
 *         counter, set per frame by a pad probe) ! x264enc ! h264parse ! mux
 *         audiotestsrc (live, sine) ! AAC ! aacparse ! mux
 *   file: uridecodebin, and per decoded stream a branch added when its pad
 *         appears: video -> videorate 30 fps ! x264enc ! h264parse ! mux;
 *         audio -> AAC ! aacparse ! mux
 *   live: udpsrc (MPEG-TS caps) | srtsrc | v4l2src ! decodebin, told to
 *         stop at H.264 and AAC unless re-encoding; then per stream:
 *         video/x-h264 -> h264parse (SPS/PPS before every keyframe) ! mux,
 *         audio/mpeg (AAC) -> aacparse ! mux, anything else as for a file
 *   mpegtsmux ! appsink
 *
 * mpegtsmux keeps its default alignment (one TS packet per buffer): with
 * alignment=7 (GStreamer 1.22) it clears GST_BUFFER_FLAG_DELTA_UNIT on no
 * buffer and a keyframe may start inside a 7-packet buffer, so chunks could
 * not be cut at keyframes. Per packet, the first packet it writes for a
 * keyframe (the PAT it repeats there) is the only one without DELTA_UNIT.
 *
 * Threads: the appsink callbacks run on its streaming thread, which also
 * cuts the chunks; the bus sync handler and decodebin's pad-added run on
 * whichever thread posts. They only append to a mutex-protected queue and
 * wake a uv_async_t; the loop thread delivers. No GLib main loop is needed.
 * A streaming thread waits while the queue holds QUEUE_MAX bytes (a file
 * encodes faster than the loop may drain); ptv_media_free wakes it first.
 *
 * Live network and camera inputs are restartable: a watchdog timer on the
 * loop checks when data last reached the appsink; a stall, an error or an
 * EOS queues a FAIL, and the loop tears that pipeline down and builds a new
 * one from a retry timer. gen numbers the pipelines, so news an old one
 * queued is not taken for the new one's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptv_media.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "ptv_err.h"
#include "ptv_gst.h"

#define TS_PACKET 188
#define FPS 30u
#define QUEUE_MAX ((size_t)16 << 20)
#define CHUNK_MIN_CAP ((size_t)64 * 1024)
/* Frame times are rounded to nanoseconds: 15 frames at 30 fps may sum to
 * a hair under 500 ms. */
#define PTS_SLACK_NS 1000000
#define DEF_KBPS 1000u
#define MAX_KBPS 100000u
#define DEF_CHUNK_US 500000u
#define MIN_CHUNK_US 100000u
#define MAX_CHUNK_US 10000000u
#define MSG_MAX 256
/* A file must reach its first encoded frame within this, and show a
 * stream within NOSTREAM_NS. */
#define PREROLL_NS (10 * GST_SECOND)
#define NOSTREAM_NS (3 * GST_SECOND)
/* A fresh live pipeline gets this long for its first data (an SRT
 * handshake, the PAT/PMT, a first keyframe) before it counts as stalled. */
#define START_WAIT_NS ((uint64_t)2000000000u)
/* Rebuilds of a stalled live input wait 1, 2, 4, then 5 s. */
#define RETRY_MAX_MS 5000u
/* Passed-through time stamps that jump this far restart the chunk grid. */
#define JUMP_NS ((int64_t)3 * GST_SECOND)

enum { IN_TEST, IN_FILE, IN_UDP, IN_SRT, IN_V4L2 };
enum { IT_CHUNK, IT_END, IT_FAIL, IT_INFO };

typedef struct item {
  struct item *next;
  int type;       /* IT_* */
  int flag;       /* chunk: keyframe; end: error */
  unsigned gen;   /* the pipeline that queued it */
  uint64_t pts_us;
  uint8_t *data;  /* chunk bytes (owned) */
  size_t len;
  char msg[MSG_MAX];
} item;

struct ptv_media {
  uv_loop_t *loop;
  uv_async_t async;
  uv_timer_t watch, retry; /* live inputs: stall watchdog, rebuild */
  int handles;             /* libuv handles not closed yet */
  ptv_media_callbacks cb;
  void *user;
  char *input;
  const char *device; /* v4l2: the path inside input */
  int kind;           /* IN_* */
  int restartable;    /* udp, srt, v4l2 */
  int allow_pass;     /* restartable and not reencode: keep H.264/AAC */
  uint32_t kbps, chunk_us;
  const char *aac; /* encoder element name */
  GstElement *pipeline, *mux, *counter;
  int started, in_cb, freeing;
  int held; /* ptv_media_hold: deliver nothing */
  char err[MSG_MAX];
  /* live inputs, loop thread only */
  int running;      /* the current pipeline plays and no FAIL was taken */
  int stalled;      /* on_stall(1) said so */
  unsigned retries; /* rebuilds since data last came */
  uint64_t stall_ns;
  GstClockTime base_time; /* the first pipeline's, given to the rebuilt ones */

  /* Shared with GStreamer's threads, under mu. */
  pthread_mutex_t mu;
  pthread_cond_t room;
  item *head, *tail;
  size_t queued;
  int async_ok; /* the uv_async_t exists: wake it */
  int ended;    /* an end is queued: nothing more goes in */
  int stopping; /* teardown runs: drop everything, wait for nothing */
  int have_video, have_audio;
  int pass;     /* the video is passed through: cut chunks on the grid */
  unsigned gen;
  uint64_t last_data; /* uv_hrtime() of the last TS packet, or of the start */
  int got_chunk;      /* the pipeline has cut a chunk */

  /* Chunker and frame counter: only one streaming thread each. */
  uint8_t *cur;
  size_t cur_len, cur_cap;
  GstClockTime cur_pts, last_pts;
  GstClockTime edge, last_key, gop; /* passthrough: the grid, the sender's keyframes */
  GstClockTime key_edge; /* re-encoding: the next chunk edge (force_keys) */
  int cur_key;
  uint64_t frames;
  FILE *capture_log; /* written by the frame probe's thread only */
};

/* ---- GStreamer set-up --------------------------------------------------- */





static int check_elements(ptv_media *m, char *err, size_t err_len) {
  static const char *const aacs[] = {"fdkaacenc", "avenc_aac", "voaacenc"};
  for (size_t i = 0; i < sizeof aacs / sizeof aacs[0] && !m->aac; i++)
    if (ptv_gst_have(aacs[i])) m->aac = aacs[i];
  if (!m->aac) return ptv_gst_need("avenc_aac", "gstreamer1.0-libav", err, err_len);
  int r = 0;
  if (!r) r = ptv_gst_need("x264enc", "gstreamer1.0-plugins-ugly", err, err_len);
  if (!r) r = ptv_gst_need("mpegtsmux", "gstreamer1.0-plugins-bad", err, err_len);
  if (!r) r = ptv_gst_need("h264parse", "gstreamer1.0-plugins-bad", err, err_len);
  if (!r) r = ptv_gst_need("aacparse", "gstreamer1.0-plugins-good", err, err_len);
  if (!r) r = ptv_gst_need("appsink", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("videoconvert", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("audioconvert", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("audioresample", "gstreamer1.0-plugins-base", err, err_len);
  if (m->kind == IN_TEST) {
    if (!r) r = ptv_gst_need("videotestsrc", "gstreamer1.0-plugins-base", err, err_len);
    if (!r) r = ptv_gst_need("audiotestsrc", "gstreamer1.0-plugins-base", err, err_len);
    if (!r) r = ptv_gst_need("clockoverlay", "gstreamer1.0-x", err, err_len);
    if (!r) r = ptv_gst_need("textoverlay", "gstreamer1.0-x", err, err_len);
    return r;
  }
  if (!r) r = ptv_gst_need("videorate", "gstreamer1.0-plugins-base", err, err_len);
  if (m->kind == IN_FILE && !r) r = ptv_gst_need("uridecodebin", "gstreamer1.0-plugins-base", err, err_len);
  if (m->restartable && !r) r = ptv_gst_need("decodebin", "gstreamer1.0-plugins-base", err, err_len);
  if (m->restartable && !r) r = ptv_gst_need("audiorate", "gstreamer1.0-plugins-base", err, err_len);
  if (m->kind == IN_UDP) {
    if (!r) r = ptv_gst_need("udpsrc", "gstreamer1.0-plugins-good", err, err_len);
    if (!r) r = ptv_gst_need("tsdemux", "gstreamer1.0-plugins-bad", err, err_len);
  }
  if (m->kind == IN_SRT && !r) r = ptv_gst_need("srtsrc", "gstreamer1.0-plugins-bad", err, err_len);
  if (m->kind == IN_V4L2 && !r) r = ptv_gst_need("v4l2src", "gstreamer1.0-plugins-good", err, err_len);
  return r;
}

/* x264 named "venc": keyframes are forced on the chunk grid (force_keys),
 * key-int-max (two chunks) is only a fallback; no scene-cut keyframes,
 * which would fall off the grid. */
static char *video_encoder(const ptv_media *m) {
  unsigned keyint = (unsigned)(((uint64_t)FPS * m->chunk_us + 999999u) / 1000000u);
  return g_strdup_printf("x264enc name=venc tune=zerolatency speed-preset=veryfast bitrate=%u "
                         "key-int-max=%u option-string=\"scenecut=0\" ! h264parse config-interval=-1",
                         (unsigned)m->kbps, 2 * keyint);
}

/* Forces a keyframe on the first frame at or past each chunk edge (within
 * half a frame). A fixed key-int-max cannot do it when a chunk is not a
 * whole number of frames: 250 ms at 30 fps gave a keyframe every 8 frames,
 * 267 ms, and the chunks ran 7% slower than the swarm's chunk clock. Now
 * they last 267 and 233 ms in turn, 250 on average. Runs on the encoder's
 * streaming thread, the only user of key_edge. */
static GstPadProbeReturn force_keys(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  ptv_media *m = user;
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!b || !GST_BUFFER_PTS_IS_VALID(b)) return GST_PAD_PROBE_OK;
  GstClockTime pts = GST_BUFFER_PTS(b) + GST_SECOND / FPS / 2, len = (GstClockTime)m->chunk_us * 1000;
  if (GST_CLOCK_TIME_IS_VALID(m->key_edge) && pts < m->key_edge) return GST_PAD_PROBE_OK;
  if (!GST_CLOCK_TIME_IS_VALID(m->key_edge)) m->key_edge = GST_BUFFER_PTS(b);
  while (m->key_edge <= pts) m->key_edge += len;
  gst_pad_send_event(pad, gst_video_event_new_downstream_force_key_unit(
                              GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, GST_CLOCK_TIME_NONE, TRUE, 0));
  return GST_PAD_PROBE_OK;
}

/* Hooks force_keys to the encoder "venc" in bin, if there is one. */
static void hook_encoder(ptv_media *m, GstElement *bin) {
  GstElement *enc = gst_bin_get_by_name(GST_BIN(bin), "venc");
  if (!enc) return;
  GstPad *pad = gst_element_get_static_pad(enc, "sink");
  if (pad) {
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, force_keys, m, NULL);
    gst_object_unref(pad);
  }
  gst_object_unref(enc);
}

/* Live inputs' audio arrives with jittered time stamps (a demuxer follows
 * the sender's clock); audiorate makes them contiguous, else the encoder's
 * frames overlap and a player sees time stamps going back. */
static char *audio_encoder(const ptv_media *m) {
  return g_strdup_printf("audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! %s%s ! aacparse",
                         m->restartable ? "audiorate ! " : "", m->aac);
}

/* ---- the queue to the loop thread ------------------------------------------ */

static void item_free(item *it) {
  if (!it) return;
  free(it->data);
  free(it);
}

/* Any thread. Takes ownership of it. Only chunks wait for room: news must
 * get through, and the loop thread queues some too. */
static void push(ptv_media *m, item *it) {
  pthread_mutex_lock(&m->mu);
  while (it->type == IT_CHUNK && !m->stopping && !m->ended && m->queued >= QUEUE_MAX)
    pthread_cond_wait(&m->room, &m->mu);
  if (m->stopping || m->ended) {
    pthread_mutex_unlock(&m->mu);
    item_free(it);
    return;
  }
  if (it->type == IT_END) m->ended = 1;
  it->gen = m->gen;
  if (m->tail) m->tail->next = it;
  else m->head = it;
  m->tail = it;
  m->queued += it->len;
  int wake = m->async_ok;
  pthread_mutex_unlock(&m->mu);
  if (wake) uv_async_send(&m->async);
}

static void push_msg(ptv_media *m, int type, int flag, const char *fmt, va_list ap) {
  item *it = calloc(1, sizeof *it);
  if (!it) {
    if (type == IT_INFO) return;
    /* Still stop the stream: a consumer waiting for on_end would hang, but
     * chunks after a failure must not go out. */
    pthread_mutex_lock(&m->mu);
    m->ended = 1;
    pthread_mutex_unlock(&m->mu);
    return;
  }
  it->type = type;
  it->flag = flag;
  vsnprintf(it->msg, sizeof it->msg, fmt, ap);
  for (char *p = it->msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  push(m, it);
}

static void push_end(ptv_media *m, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void push_end(ptv_media *m, int error, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  push_msg(m, IT_END, error, fmt, ap);
  va_end(ap);
}

/* A failure: the end of a file or the test pattern, a restart of a live
 * input. */
static void push_fail(ptv_media *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push_fail(ptv_media *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  push_msg(m, m->restartable ? IT_FAIL : IT_END, 1, fmt, ap);
  va_end(ap);
}

static void push_info(ptv_media *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push_info(ptv_media *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  push_msg(m, IT_INFO, 0, fmt, ap);
  va_end(ap);
}

/* The first failure's message queued (by GStreamer's threads), or "". */
static void queued_error(ptv_media *m, char *buf, size_t len) {
  buf[0] = '\0';
  pthread_mutex_lock(&m->mu);
  for (item *it = m->head; it; it = it->next)
    if ((it->type == IT_END || it->type == IT_FAIL) && it->flag) {
      snprintf(buf, len, "%s", it->msg);
      break;
    }
  pthread_mutex_unlock(&m->mu);
}

/* ---- chunking (appsink's streaming thread) ---------------------------------- */

static item *take_chunk(ptv_media *m) {
  if (!m->cur_len) return NULL;
  item *it = calloc(1, sizeof *it);
  if (!it) return NULL;
  it->type = IT_CHUNK;
  it->flag = m->cur_key;
  it->pts_us = GST_CLOCK_TIME_IS_VALID(m->cur_pts) ? m->cur_pts / 1000u : 0;
  it->data = m->cur;
  it->len = m->cur_len;
  /* hand the buffer over; the next one starts at this one's size */
  m->cur = NULL;
  m->cur_cap = 0;
  m->cur_len = 0;
  size_t want = it->len + it->len / 4;
  m->cur = malloc(want);
  if (m->cur) m->cur_cap = want;
  return it;
}

static void emit_chunk(ptv_media *m) {
  if (!m->cur_len) return;
  pthread_mutex_lock(&m->mu);
  m->got_chunk = 1;
  pthread_mutex_unlock(&m->mu);
  item *it = take_chunk(m);
  if (!it) {
    push_end(m, 1, "%s: out of memory", m->input);
    m->cur_len = 0;
    return;
  }
  push(m, it);
}

static int append(ptv_media *m, const uint8_t *p, size_t n) {
  if (m->cur_len + n > m->cur_cap) {
    size_t cap = m->cur_cap ? m->cur_cap * 2 : CHUNK_MIN_CAP;
    while (cap < m->cur_len + n) cap *= 2;
    uint8_t *b = realloc(m->cur, cap);
    if (!b) return PTV_ERR_NOMEM;
    m->cur = b;
    m->cur_cap = cap;
  }
  memcpy(m->cur + m->cur_len, p, n);
  m->cur_len += n;
  return 0;
}

/* Our own encoder puts a keyframe on the first frame past each chunk edge
 * (force_keys): cut there, i.e. at a keyframe once the chunk holds all but
 * a frame of chunk_us (or after 2 x chunk_us without one). */
static int cut_on_keys(const ptv_media *m, GstClockTime pts, int key) {
  int64_t held = GST_CLOCK_DIFF(m->cur_pts, pts), len_ns = (int64_t)m->chunk_us * 1000;
  return (key && held + (int64_t)(GST_SECOND / FPS) + PTS_SLACK_NS > len_ns) || held >= 2 * len_ns;
}

/* Whether the sender's next keyframe, from its last interval, falls
 * within half a chunk of the next edge. */
static int key_due_near(const ptv_media *m, int64_t half) {
  if (!GST_CLOCK_TIME_IS_VALID(m->last_key) || !GST_CLOCK_TIME_IS_VALID(m->gop) || !m->gop) return 0;
  GstClockTime next = m->last_key + m->gop;
  while (GST_CLOCK_DIFF(next, m->edge) > half) next += m->gop;
  return GST_CLOCK_DIFF(m->edge, next) <= half;
}

/* Passed-through video keeps the sender's keyframes, which need not come
 * every chunk_us. The cuts follow a grid of chunk_us, so that chunks last
 * chunk_us on average (the swarm plays one per chunk_us). A keyframe
 * within half a chunk of the next edge is cut at instead, and the grid
 * moves to it; where the sender's keyframe interval puts the next one
 * near the edge, the cut waits for it (up to half a chunk). So with an
 * interval that is a multiple of chunk_us every keyframe starts a chunk,
 * whatever the drift, and the chunks between are cut at the edges. */
static int cut_on_grid(ptv_media *m, GstClockTime pts, int key) {
  int64_t len = (int64_t)m->chunk_us * 1000, half = len / 2;
  if (key) {
    if (GST_CLOCK_TIME_IS_VALID(m->last_key) && pts > m->last_key) m->gop = pts - m->last_key;
    m->last_key = pts;
  }
  if (!GST_CLOCK_TIME_IS_VALID(m->edge)) m->edge = m->cur_pts + (GstClockTime)len;
  int64_t ahead = GST_CLOCK_DIFF(m->edge, pts); /* pts - edge */
  if (ahead < -(2 * len + JUMP_NS) || ahead > 4 * len + JUMP_NS) {
    m->edge = pts + (GstClockTime)len; /* the sender's clock jumped */
    return 1;
  }
  if (key && ahead + half + PTS_SLACK_NS >= 0) {
    int64_t k = ahead + half + PTS_SLACK_NS >= len ? (ahead + half + PTS_SLACK_NS) / len : 0;
    m->edge += (GstClockTime)((k + 1) * len); /* one chunk past the edge nearest pts */
    return 1;
  }
  if (ahead + PTS_SLACK_NS >= 0 && (ahead >= half || !key_due_near(m, half))) {
    m->edge += (GstClockTime)len;
    return 1;
  }
  return 0;
}

static void chunk_buffer(ptv_media *m, GstBuffer *b, const uint8_t *p, size_t n, int pass) {
  GstClockTime pts = GST_BUFFER_PTS(b);
  if (GST_CLOCK_TIME_IS_VALID(pts)) m->last_pts = pts;
  else pts = m->last_pts;
  int key = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  if (m->cur_len && !GST_CLOCK_TIME_IS_VALID(m->cur_pts)) m->cur_pts = pts;
  /* cut only where a TS packet starts */
  if (m->cur_len && m->cur_len % TS_PACKET == 0 && n && p[0] == 0x47 && GST_CLOCK_TIME_IS_VALID(pts) &&
      GST_CLOCK_TIME_IS_VALID(m->cur_pts) && (pass ? cut_on_grid(m, pts, key) : cut_on_keys(m, pts, key)))
    emit_chunk(m);
  if (!m->cur_len) {
    m->cur_pts = pts;
    m->cur_key = key;
  }
  if (append(m, p, n) < 0) push_end(m, 1, "%s: out of memory", m->input);
}

static GstFlowReturn on_sample(GstAppSink *sink, gpointer user) {
  ptv_media *m = user;
  GstSample *s = gst_app_sink_pull_sample(sink);
  if (!s) return GST_FLOW_FLUSHING;
  pthread_mutex_lock(&m->mu);
  m->last_data = uv_hrtime();
  int pass = m->pass;
  pthread_mutex_unlock(&m->mu);
  GstBuffer *b = gst_sample_get_buffer(s);
  GstMapInfo mi;
  if (b && gst_buffer_map(b, &mi, GST_MAP_READ)) {
    chunk_buffer(m, b, mi.data, mi.size, pass);
    gst_buffer_unmap(b, &mi);
  }
  gst_sample_unref(s);
  return GST_FLOW_OK;
}

static void on_eos(GstAppSink *sink, gpointer user) {
  ptv_media *m = user;
  emit_chunk(m); /* the last, possibly short, chunk */
  if (m->restartable) push_fail(m, "%s: the input ended", m->input);
  else push_end(m, 0, "end of input");
}

static GstBusSyncReply on_bus(GstBus *bus, GstMessage *msg, gpointer user) {
  ptv_media *m = user;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *e = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &e, &dbg);
    push_fail(m, "%s: %s", m->input, e && e->message ? e->message : "unknown GStreamer error");
    g_clear_error(&e);
    g_free(dbg);
  }
  /* nothing reads the bus asynchronously: drop everything (a sync handler
   * that drops a message owns it) */
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

/* ---- the pipelines ------------------------------------------------------------ */

/* mpegtsmux writes PTS = running time + 1 hour (its TS_MUX_CLOCK_BASE, so
 * that early DTS stay positive); the capture log names frames as the
 * stream does (test/test_player joins them with a player's frame log). */
#define TSMUX_PTS_BASE_90K 324000000ull

/* Burns the frame number into each test frame (timeoverlay cannot count
 * frames in GStreamer 1.22), and logs its capture time (capture_log). */
static GstPadProbeReturn on_frame(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  ptv_media *m = user;
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
  if (m->capture_log && b && GST_BUFFER_PTS_IS_VALID(b)) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t pts90 = (gst_util_uint64_scale(GST_BUFFER_PTS(b), 90000, GST_SECOND) + TSMUX_PTS_BASE_90K) &
                     ((1ull << 33) - 1);
    fprintf(m->capture_log, "%" PRIu64 " %lld\n", pts90,
            (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000);
  }
  char t[48];
  snprintf(t, sizeof t, "frame %" PRIu64, m->frames++);
  g_object_set(m->counter, "text", t, NULL);
  return GST_PAD_PROBE_OK;
}

/* Adds a branch from a description, linked from `from` into a new mux pad. */
static int add_branch(ptv_media *m, GstPad *from, const char *desc) {
  GError *e = NULL;
  GstElement *bin = gst_parse_bin_from_description(desc, TRUE, &e);
  if (!bin || e) {
    push_fail(m, "%s: cannot build a branch: %s", m->input, e ? e->message : "?");
    g_clear_error(&e);
    if (bin) gst_object_unref(bin);
    return -1;
  }
  hook_encoder(m, bin);
  gst_bin_add(GST_BIN(m->pipeline), bin);
  GstPad *in = gst_element_get_static_pad(bin, "sink"), *out = gst_element_get_static_pad(bin, "src");
  GstPad *mpad = gst_element_request_pad_simple(m->mux, "sink_%d");
  int ok = in && out && mpad && gst_pad_link(out, mpad) == GST_PAD_LINK_OK;
  if (ok) ok = gst_element_sync_state_with_parent(bin);
  if (ok) ok = gst_pad_link(from, in) == GST_PAD_LINK_OK;
  if (!ok) push_fail(m, "%s: cannot link a decoded stream into the encoder", m->input);
  if (in) gst_object_unref(in);
  if (out) gst_object_unref(out);
  if (mpad) gst_object_unref(mpad);
  return ok ? 0 : -1;
}

static void on_pad_added(GstElement *dec, GstPad *pad, gpointer user) {
  ptv_media *m = user;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, NULL);
  const char *name = caps && gst_caps_get_size(caps) ? gst_structure_get_name(gst_caps_get_structure(caps, 0)) : "";
  int video = g_str_has_prefix(name, "video/"), audio = g_str_has_prefix(name, "audio/");
  /* decodebin hands these over undecoded only when told to (allow_pass) */
  int pass = (video && !strcmp(name, "video/x-h264")) || (audio && !strcmp(name, "audio/mpeg"));
  if (caps) gst_caps_unref(caps);
  /* the first video and the first audio stream; others stay unlinked */
  pthread_mutex_lock(&m->mu);
  int take = (video && !m->have_video) || (audio && !m->have_audio);
  if (take && video) {
    m->have_video = 1;
    m->pass = pass;
  }
  if (take && audio) m->have_audio = 1;
  pthread_mutex_unlock(&m->mu);
  if (!take) return;
  char *desc;
  if (pass) {
    /* config-interval=-1: SPS/PPS before every keyframe, so any keyframe
     * chunk decodes on its own */
    desc = g_strdup(video ? "queue ! h264parse config-interval=-1 ! "
                            "video/x-h264,stream-format=byte-stream,alignment=au ! queue"
                          : "queue ! aacparse ! queue");
    push_info(m, video ? "video H.264 passed through (not re-encoded; keyframes as sent)"
                       : "audio AAC passed through (not re-encoded)");
  } else {
    char *enc = video ? video_encoder(m) : audio_encoder(m);
    /* videorate to a fixed rate so key-int-max frames is exactly chunk_us */
    desc = video ? g_strdup_printf("queue ! videoconvert ! videorate ! video/x-raw,format=I420,framerate=%u/1 ! %s ! queue",
                                   FPS, enc)
                 : g_strdup_printf("queue ! %s ! queue", enc);
    g_free(enc);
    if (video)
      push_info(m, "video encoded to H.264 (x264, %u kbit/s, a keyframe every chunk)", (unsigned)m->kbps);
    else push_info(m, "audio encoded to AAC (%s)", m->aac);
  }
  add_branch(m, pad, desc);
  g_free(desc);
}

static void on_no_more_pads(GstElement *dec, gpointer user) {
  ptv_media *m = user;
  pthread_mutex_lock(&m->mu);
  int video = m->have_video;
  pthread_mutex_unlock(&m->mu);
  if (!video)
    push_fail(m, "%s: %s has no video stream", m->input, m->kind == IN_FILE ? "the file" : "the input");
}

static int build_test(ptv_media *m, char *err, size_t err_len) {
  char *venc = video_encoder(m), *aenc = audio_encoder(m);
  char *desc = g_strdup_printf(
      "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=%u/1 ! "
      "clockoverlay time-format=\"%%H:%%M:%%S\" halignment=left valignment=top font-desc=\"Sans 20\" ! "
      "textoverlay name=counter text=\"frame\" halignment=left valignment=bottom font-desc=\"Sans 20\" ! "
      "videoconvert ! video/x-raw,format=I420 ! %s ! queue ! mux. "
      "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! %s ! queue ! mux. "
      "mpegtsmux name=mux ! appsink name=sink",
      FPS, venc, aenc);
  g_free(venc);
  g_free(aenc);
  GError *e = NULL;
  GstElement *p = gst_parse_launch(desc, &e);
  g_free(desc);
  if (!p || e) {
    ptv_gst_msg(err, err_len, "cannot build the test pipeline: %s", e ? e->message : "?");
    g_clear_error(&e);
    if (p) gst_object_unref(p);
    return PTV_ERR_NOT_FOUND;
  }
  m->pipeline = gst_object_ref_sink(p);
  m->mux = gst_bin_get_by_name(GST_BIN(p), "mux");
  m->counter = gst_bin_get_by_name(GST_BIN(p), "counter");
  GstPad *vpad = m->counter ? gst_element_get_static_pad(m->counter, "video_sink") : NULL;
  if (!m->mux || !vpad) {
    if (vpad) gst_object_unref(vpad);
    ptv_gst_msg(err, err_len, "the test pipeline lacks its multiplexer or overlay");
    return PTV_ERR_NOT_FOUND;
  }
  gst_pad_add_probe(vpad, GST_PAD_PROBE_TYPE_BUFFER, on_frame, m, NULL);
  gst_object_unref(vpad);
  hook_encoder(m, p);
  return 0;
}

/* The source element of a live input, set to its URI or device. */
static GstElement *live_source(ptv_media *m, char *err, size_t err_len) {
  const char *factory = m->kind == IN_UDP ? "udpsrc" : m->kind == IN_SRT ? "srtsrc" : "v4l2src";
  GstElement *src = gst_element_factory_make(factory, "src");
  if (!src) {
    ptv_gst_msg(err, err_len, "cannot create %s", factory);
    return NULL;
  }
  if (m->kind == IN_V4L2) {
    g_object_set(src, "device", m->device, NULL);
    return src;
  }
  GError *e = NULL;
  if (!gst_uri_handler_set_uri(GST_URI_HANDLER(src), m->input, &e)) {
    ptv_gst_msg(err, err_len, "%s: %s", m->input, e && e->message ? e->message : "not a URI the source takes");
    g_clear_error(&e);
    gst_object_unref(src);
    return NULL;
  }
  if (m->kind == IN_UDP) {
    /* MPEG-TS, so no type finding; a roomy socket buffer, as a burst of
     * a keyframe at a high rate must not be dropped */
    GstCaps *caps = gst_caps_from_string("video/mpegts,systemstream=(boolean)true,packetsize=(int)188");
    g_object_set(src, "caps", caps, "buffer-size", 4 << 20, NULL);
    gst_caps_unref(caps);
  }
  return src;
}

/* tsdemux, live, follows the sender's PCR against our clock: that moves
 * frames by milliseconds, which passed-through video keeps (two frames in
 * one 1/30 s slot, and players complain). The sender's own time stamps
 * are what the stream means. */
static void on_element_added(GstBin *bin, GstBin *sub, GstElement *e, gpointer user) {
  GstElementFactory *f = gst_element_get_factory(e);
  if (f && !strcmp(GST_OBJECT_NAME(f), "tsdemux")) g_object_set(e, "ignore-pcr", TRUE, NULL);
}

/* uridecodebin (file) or source ! decodebin (live), into mpegtsmux ! appsink;
 * the decoded streams' branches are added as their pads appear. */
static int build_decoding(ptv_media *m, char *err, size_t err_len) {
  GstElement *src = NULL, *dec;
  if (m->kind == IN_FILE) {
    GError *e = NULL;
    gchar *uri = gst_filename_to_uri(m->input, &e);
    if (!uri) {
      ptv_gst_msg(err, err_len, "%s: %s", m->input, e ? e->message : "cannot make a URI");
      g_clear_error(&e);
      return PTV_ERR_INVALID_ARG;
    }
    dec = gst_element_factory_make("uridecodebin", "dec");
    if (dec) g_object_set(dec, "uri", uri, NULL);
    g_free(uri);
  } else {
    if (!(src = live_source(m, err, err_len))) return PTV_ERR_NOT_FOUND;
    dec = gst_element_factory_make("decodebin", "dec");
    if (dec && m->allow_pass) {
      /* stop at H.264 and AAC (MPEG-2 or -4): no decoding, no encoding */
      GstCaps *caps = gst_caps_from_string("video/x-raw(ANY); audio/x-raw(ANY); video/x-h264; "
                                           "audio/mpeg, mpegversion=(int){2,4}");
      g_object_set(dec, "caps", caps, NULL);
      gst_caps_unref(caps);
    }
  }
  m->pipeline = gst_object_ref_sink(gst_pipeline_new("ptv-media"));
  GstElement *mux = gst_element_factory_make("mpegtsmux", "mux");
  GstElement *sink = gst_element_factory_make("appsink", "sink");
  if (!dec || !mux || !sink) {
    if (src) gst_object_unref(src);
    if (dec) gst_object_unref(dec);
    if (mux) gst_object_unref(mux);
    if (sink) gst_object_unref(sink);
    ptv_gst_msg(err, err_len, "cannot create the %s pipeline's elements", m->kind == IN_FILE ? "file" : "input");
    return PTV_ERR_NOT_FOUND;
  }
  gst_bin_add_many(GST_BIN(m->pipeline), dec, mux, sink, NULL);
  if (src) {
    gst_bin_add(GST_BIN(m->pipeline), src);
    if (!gst_element_link(src, dec)) {
      ptv_gst_msg(err, err_len, "cannot link the input to decodebin");
      return PTV_ERR_NOT_FOUND;
    }
  }
  if (!gst_element_link(mux, sink)) {
    ptv_gst_msg(err, err_len, "cannot link mpegtsmux to appsink");
    return PTV_ERR_NOT_FOUND;
  }
  m->mux = gst_object_ref(mux);
  if (src) g_signal_connect(m->pipeline, "deep-element-added", G_CALLBACK(on_element_added), m);
  g_signal_connect(dec, "pad-added", G_CALLBACK(on_pad_added), m);
  g_signal_connect(dec, "no-more-pads", G_CALLBACK(on_no_more_pads), m);
  return 0;
}

static int setup_sink(ptv_media *m, char *err, size_t err_len) {
  GstElement *sink = gst_bin_get_by_name(GST_BIN(m->pipeline), "sink");
  if (!sink || !GST_IS_APP_SINK(sink)) {
    if (sink) gst_object_unref(sink);
    ptv_gst_msg(err, err_len, "the pipeline has no appsink");
    return PTV_ERR_NOT_FOUND;
  }
  /* sync=false: live sources pace themselves, and files are paced by the
   * caller */
  g_object_set(sink, "sync", FALSE, "max-buffers", 256u, "drop", FALSE, "emit-signals", FALSE, NULL);
  GstAppSinkCallbacks cbs = {.eos = on_eos, .new_sample = on_sample};
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, m, NULL);
  gst_object_unref(sink);
  GstBus *bus = gst_element_get_bus(m->pipeline);
  gst_bus_set_sync_handler(bus, on_bus, m, NULL);
  gst_object_unref(bus);
  return 0;
}

static int build(ptv_media *m, char *err, size_t err_len) {
  int r = m->kind == IN_TEST ? build_test(m, err, err_len) : build_decoding(m, err, err_len);
  if (!r) r = setup_sink(m, err, err_len);
  return r;
}

/* A file is decoded up to its first encoded frame now, so one that cannot
 * be played fails before the caller goes on (joins a channel). */
static int preroll(ptv_media *m, char *err, size_t err_len) {
  GstStateChangeReturn r = gst_element_set_state(m->pipeline, GST_STATE_PAUSED);
  char msg[MSG_MAX] = "";
  int streams = 0;
  /* decodebin may swallow a demuxer's error (it filters those of elements
   * it is still setting up, e.g. qtdemux's "no playable streams" for an
   * MP4 cut before its index), leaving the preroll hanging: a file that
   * shows no stream in NOSTREAM_NS is taken as one without any */
  for (GstClockTime waited = 0; r == GST_STATE_CHANGE_ASYNC && !msg[0] && waited < PREROLL_NS;
       waited += GST_SECOND / 10) {
    r = gst_element_get_state(m->pipeline, NULL, NULL, GST_SECOND / 10);
    queued_error(m, msg, sizeof msg);
    pthread_mutex_lock(&m->mu);
    streams = m->have_video || m->have_audio;
    pthread_mutex_unlock(&m->mu);
    if (r == GST_STATE_CHANGE_ASYNC && !streams && waited >= NOSTREAM_NS) break;
  }
  queued_error(m, msg, sizeof msg);
  /* the bin learns of an error before its bus hands it to on_bus: give
   * the failing thread a moment to queue its message */
  for (int i = 0; i < 50 && !msg[0] && r == GST_STATE_CHANGE_FAILURE; i++) {
    g_usleep(2000);
    queued_error(m, msg, sizeof msg);
  }
  pthread_mutex_lock(&m->mu);
  int video = m->have_video;
  pthread_mutex_unlock(&m->mu);
  if (msg[0]) ptv_gst_msg(err, err_len, "%s", msg);
  else if (r == GST_STATE_CHANGE_FAILURE) ptv_gst_msg(err, err_len, "%s: GStreamer cannot play it", m->input);
  else if (r == GST_STATE_CHANGE_ASYNC && !streams)
    ptv_gst_msg(err, err_len, "%s: no playable stream found (a truncated or damaged file?)", m->input);
  else if (r == GST_STATE_CHANGE_ASYNC)
    ptv_gst_msg(err, err_len, "%s: not decodable within %u s", m->input, (unsigned)(PREROLL_NS / GST_SECOND));
  else if (!video) ptv_gst_msg(err, err_len, "%s: the file has no video stream", m->input);
  else return 0;
  return r == GST_STATE_CHANGE_ASYNC && streams && !msg[0] ? PTV_ERR_IO : PTV_ERR_MALFORMED;
}

/* ---- the loop side ---------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  ptv_media *m = h->data;
  if (--m->handles > 0) return;
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->room);
  free(m->input);
  free(m);
}

static void drop_queue(ptv_media *m) {
  pthread_mutex_lock(&m->mu);
  item *it = m->head;
  m->head = m->tail = NULL;
  m->queued = 0;
  pthread_mutex_unlock(&m->mu);
  while (it) {
    item *next = it->next;
    item_free(it);
    it = next;
  }
}

/* Stops and releases the pipeline (joining its streaming threads; nothing
 * calls into m after this). The partial chunk stays in cur. */
static void stop_pipeline(ptv_media *m) {
  pthread_mutex_lock(&m->mu);
  m->stopping = 1;
  pthread_cond_broadcast(&m->room); /* a streaming thread may wait for room */
  pthread_mutex_unlock(&m->mu);
  if (m->pipeline) {
    gst_element_set_state(m->pipeline, GST_STATE_NULL);
    GstBus *bus = gst_element_get_bus(m->pipeline);
    gst_bus_set_sync_handler(bus, NULL, NULL, NULL);
    gst_object_unref(bus);
  }
  if (m->counter) gst_object_unref(m->counter);
  if (m->mux) gst_object_unref(m->mux);
  if (m->pipeline) gst_object_unref(m->pipeline);
  m->counter = m->mux = m->pipeline = NULL;
  m->running = 0;
  pthread_mutex_lock(&m->mu);
  m->stopping = 0;
  m->have_video = m->have_audio = m->pass = 0;
  m->gen++;
  pthread_mutex_unlock(&m->mu);
}

static void teardown(ptv_media *m) {
  stop_pipeline(m);
  pthread_mutex_lock(&m->mu);
  m->stopping = 1; /* for good */
  pthread_mutex_unlock(&m->mu);
  drop_queue(m);
  free(m->cur);
  m->cur = NULL;
  if (m->capture_log) fclose(m->capture_log); /* its probe's thread is joined */
  m->capture_log = NULL;
  if (!m->handles) {
    m->handles = 1;
    on_closed((uv_handle_t *)&m->async);
    return;
  }
  uv_close((uv_handle_t *)&m->async, on_closed);
  uv_close((uv_handle_t *)&m->watch, on_closed);
  uv_close((uv_handle_t *)&m->retry, on_closed);
}

static void on_watch(uv_timer_t *t);

/* Plays the pipeline built last. Returns 0 or PTV_ERR_IO. */
static int start_pipeline(ptv_media *m) {
  /* a new stream: the chunker starts over (a stopped one's rest went out) */
  m->cur_len = 0;
  m->cur_pts = m->last_pts = m->edge = m->last_key = m->gop = m->key_edge = GST_CLOCK_TIME_NONE;
  pthread_mutex_lock(&m->mu);
  m->last_data = uv_hrtime();
  m->got_chunk = 0;
  pthread_mutex_unlock(&m->mu);
  if (m->restartable) {
    /* One clock and base time for every pipeline of the input: running
     * time, hence the time stamps in the stream, goes on across a rebuild
     * (with the gap), so the stream after a stall continues the one before
     * (a player would stumble over time stamps going back). */
    GstClock *clock = gst_system_clock_obtain();
    if (!GST_CLOCK_TIME_IS_VALID(m->base_time)) m->base_time = gst_clock_get_time(clock);
    gst_pipeline_use_clock(GST_PIPELINE(m->pipeline), clock);
    gst_object_unref(clock);
    gst_element_set_start_time(m->pipeline, GST_CLOCK_TIME_NONE);
    gst_element_set_base_time(m->pipeline, m->base_time);
  }
  if (gst_element_set_state(m->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) return PTV_ERR_IO;
  m->running = 1;
  if (m->restartable) {
    uint64_t tick = m->chunk_us / 4000u;
    uv_timer_start(&m->watch, on_watch, tick, tick);
  }
  return 0;
}

/* Whether a live pipeline that went silent is rebuilt: once it has made a
 * chunk, so that a sender starting over (new time stamps, new continuity
 * counters) meets a fresh demuxer. Not SRT: it reports a lost caller as
 * an error or EOS itself, and a silent caller may still be connected. */
static int rebuild_on_silence(const ptv_media *m, int got_chunk) {
  return got_chunk && m->kind != IN_SRT;
}

/* Live input: no data for 2 x chunk_us (START_WAIT_NS until the pipeline
 * made its first chunk) is a stall; the loop takes it from the queue
 * (flag 0: silence, not an error). A silent pipeline kept while the stall
 * is known is left waiting: it listens, which is all a rebuild would do. */
static void on_watch(uv_timer_t *t) {
  ptv_media *m = t->data;
  if (!m->running || m->freeing) return;
  pthread_mutex_lock(&m->mu);
  uint64_t last = m->last_data;
  int got = m->got_chunk;
  pthread_mutex_unlock(&m->mu);
  if (m->stalled && !rebuild_on_silence(m, got)) return;
  uint64_t now = uv_hrtime(), limit = 2u * (uint64_t)m->chunk_us * 1000u;
  if (!got && limit < START_WAIT_NS) limit = START_WAIT_NS;
  if (now - last < limit) return;
  uv_timer_stop(t);
  item *it = calloc(1, sizeof *it);
  if (!it) return;
  it->type = IT_FAIL;
  ptv_gst_msg(it->msg, sizeof it->msg, "%s: no data for %.1f s", m->input, (double)(now - last) / 1e9);
  push(m, it);
}

static void schedule_retry(ptv_media *m);

static void on_retry(uv_timer_t *t) {
  ptv_media *m = t->data;
  if (m->freeing) return;
  char err[MSG_MAX];
  if (build(m, err, sizeof err) == 0 && start_pipeline(m) == 0) return;
  stop_pipeline(m); /* its error, queued, is stale now */
  schedule_retry(m);
}

static void schedule_retry(ptv_media *m) {
  uint64_t ms = m->retries < 3 ? 1000u << m->retries : RETRY_MAX_MS;
  if (ms > RETRY_MAX_MS) ms = RETRY_MAX_MS;
  m->retries++;
  uv_timer_start(&m->retry, on_retry, ms, 0);
}

/* Loop thread, inside on_async: the live pipeline failed or ended
 * (error=1), or went silent. Reports the stall once. A failed pipeline is
 * rebuilt after a backoff, a silent one at once or not at all
 * (rebuild_on_silence). */
static void live_failed(ptv_media *m, int error, const char *msg) {
  pthread_mutex_lock(&m->mu);
  int got = m->got_chunk;
  uint64_t last = m->last_data;
  pthread_mutex_unlock(&m->mu);
  if (!error && uv_hrtime() - last < 2u * (uint64_t)m->chunk_us * 1000u) {
    uv_timer_again(&m->watch); /* data came since the watchdog spoke */
    return;
  }
  int rebuild = error || rebuild_on_silence(m, got);
  if (rebuild) {
    uv_timer_stop(&m->watch);
    stop_pipeline(m);
    /* what it made before it stopped */
    item *it = take_chunk(m);
    if (it && m->cb.on_chunk) m->cb.on_chunk(m->user, it->data, it->len, it->flag, it->pts_us);
    item_free(it);
    m->cur_len = 0;
    if (m->freeing) return;
  }
  if (!m->stalled) {
    m->stalled = 1;
    m->stall_ns = uv_hrtime();
    snprintf(m->err, sizeof m->err, "%s", msg);
    if (m->cb.on_stall) m->cb.on_stall(m->user, 1, msg);
    if (m->freeing) return;
  }
  if (error) schedule_retry(m);
  else if (rebuild) uv_timer_start(&m->retry, on_retry, 0, 0);
  else uv_timer_again(&m->watch); /* keeps the silent pipeline watched */
}

static void on_async(uv_async_t *a) {
  ptv_media *m = a->data;
  if (m->held && !m->freeing) return; /* the items wait in the queue */
  pthread_mutex_lock(&m->mu);
  item *it = m->head;
  m->head = m->tail = NULL;
  m->queued = 0;
  pthread_cond_broadcast(&m->room);
  unsigned gen = m->gen;
  pthread_mutex_unlock(&m->mu);
  m->in_cb = 1;
  while (it) {
    if (m->held && !m->freeing) break; /* a callback held: the rest waits */
    item *next = it->next;
    if (m->freeing) {
      /* drop */
    } else if (it->type == IT_END) {
      if (it->flag) snprintf(m->err, sizeof m->err, "%s", it->msg);
      if (m->cb.on_end) m->cb.on_end(m->user, it->flag, it->msg);
    } else if (it->type == IT_FAIL) {
      /* only the first news of the current pipeline counts */
      if (it->gen == gen && m->running) live_failed(m, it->flag, it->msg);
      gen = m->gen;
    } else if (it->type == IT_INFO) {
      if (it->gen == gen && m->cb.on_info) m->cb.on_info(m->user, it->msg);
    } else {
      if (m->stalled && it->gen == gen) {
        char msg[MSG_MAX];
        snprintf(msg, sizeof msg, "%s: data again after %.1f s", m->input,
                 (double)(uv_hrtime() - m->stall_ns) / 1e9);
        m->stalled = 0;
        m->retries = 0;
        if (m->cb.on_stall) m->cb.on_stall(m->user, 0, msg);
      }
      if (!m->freeing && m->cb.on_chunk) m->cb.on_chunk(m->user, it->data, it->len, it->flag, it->pts_us);
    }
    item_free(it);
    it = next;
  }
  m->in_cb = 0;
  if (it) {
    /* put the rest back, ahead of what came meanwhile; it counts against
     * QUEUE_MAX again, so the streaming thread waits once that is full */
    size_t bytes = 0;
    item *last = it;
    for (item *x = it; x; x = x->next) {
      bytes += x->len;
      last = x;
    }
    pthread_mutex_lock(&m->mu);
    last->next = m->head;
    if (!m->head) m->tail = last;
    m->head = it;
    m->queued += bytes;
    pthread_mutex_unlock(&m->mu);
  }
  if (m->freeing) teardown(m);
}

/* "HOST:PORT[?query]" with a port of 1..65535; host may be empty if
 * allowed, an IPv6 one is in brackets. */
static int valid_hostport(const char *hp, int empty_host) {
  size_t n = strcspn(hp, "?");
  const char *colon = NULL;
  for (const char *p = hp; p < hp + n; p++)
    if (*p == ':') colon = p;
  if (!colon || (colon == hp && !empty_host)) return 0;
  if (hp[0] == '[' && colon[-1] != ']') return 0;
  if (hp[0] != '[' && memchr(hp, ':', (size_t)(colon - hp))) return 0; /* bare IPv6 */
  if (memchr(hp, '/', n) || memchr(hp, ' ', n)) return 0;
  const char *d = colon + 1;
  size_t digits = (size_t)(hp + n - d);
  if (digits < 1 || digits > 5 || strspn(d, "0123456789") < digits) return 0;
  long port = strtol(d, NULL, 10);
  return port >= 1 && port <= 65535;
}

static int check_input(const char *in, int *kind, char *err, size_t err_len) {
  if (!strcmp(in, "test")) {
    *kind = IN_TEST;
    return 0;
  }
  if (!strncmp(in, "udp://", 6) || !strncmp(in, "srt://", 6)) {
    int srt = in[0] == 's';
    *kind = srt ? IN_SRT : IN_UDP;
    if (valid_hostport(in + 6, srt)) return 0;
    ptv_gst_msg(err, err_len, "bad input '%s' (expected %s://HOST:PORT%s)", in, srt ? "srt" : "udp",
            srt ? "[?mode=listener|caller...]" : "");
    return PTV_ERR_PARSE;
  }
  const char *path = in;
  if (!strncmp(in, "v4l2://", 7)) {
    *kind = IN_V4L2;
    path = in + 7;
    if (path[0] != '/') {
      ptv_gst_msg(err, err_len, "bad input '%s' (expected v4l2:///dev/videoN)", in);
      return PTV_ERR_PARSE;
    }
  } else {
    *kind = IN_FILE;
    if (!*in || strstr(in, "://")) {
      ptv_gst_msg(err, err_len, "unsupported input '%s' (expected \"test\", a file path, udp://HOST:PORT, "
              "srt://HOST:PORT or v4l2:///dev/videoN)", in);
      return PTV_ERR_INVALID_ARG;
    }
  }
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      ptv_gst_msg(err, err_len, "no such %s: %s", *kind == IN_V4L2 ? "device" : "file", path);
      return PTV_ERR_NOT_FOUND;
    }
    ptv_gst_msg(err, err_len, "%s: %s", path, strerror(errno));
    return PTV_ERR_IO;
  }
  if (*kind == IN_V4L2 ? !S_ISCHR(st.st_mode) : !S_ISREG(st.st_mode)) {
    ptv_gst_msg(err, err_len, "%s: %s", path, *kind == IN_V4L2 ? "not a video device" : "not a regular file");
    return PTV_ERR_INVALID_ARG;
  }
  if (access(path, R_OK) != 0) {
    ptv_gst_msg(err, err_len, "%s: %s", path, strerror(errno));
    return PTV_ERR_IO;
  }
  return 0;
}

int ptv_media_new(ptv_media **out, uv_loop_t *loop, const ptv_media_config *c,
                  const ptv_media_callbacks *cb, void *user, char *err, size_t err_len) {
  if (err && err_len) err[0] = '\0';
  if (out) *out = NULL;
  if (!out || !loop || !c || !c->input || !cb) {
    ptv_gst_msg(err, err_len, "missing argument");
    return PTV_ERR_INVALID_ARG;
  }
  uint32_t kbps = c->video_kbps ? c->video_kbps : DEF_KBPS;
  uint32_t chunk_us = c->chunk_us ? c->chunk_us : DEF_CHUNK_US;
  if (kbps > MAX_KBPS || chunk_us < MIN_CHUNK_US || chunk_us > MAX_CHUNK_US) {
    ptv_gst_msg(err, err_len, "video_kbps must be at most %u and chunk_us within %u..%u", MAX_KBPS, MIN_CHUNK_US,
            MAX_CHUNK_US);
    return PTV_ERR_INVALID_ARG;
  }
  int kind;
  int r = check_input(c->input, &kind, err, err_len); /* before any GStreamer work */
  if (r) return r;
  if (ptv_gst_init(err, err_len) != 0) return PTV_ERR_IO;
  ptv_media *m = calloc(1, sizeof *m);
  if (!m || !(m->input = strdup(c->input))) {
    free(m);
    ptv_gst_msg(err, err_len, "out of memory");
    return PTV_ERR_NOMEM;
  }
  m->loop = loop;
  m->cb = *cb;
  m->user = user;
  m->kind = kind;
  m->device = kind == IN_V4L2 ? m->input + 7 : NULL;
  m->restartable = kind == IN_UDP || kind == IN_SRT || kind == IN_V4L2;
  m->allow_pass = m->restartable && !c->reencode;
  m->kbps = kbps;
  m->chunk_us = chunk_us;
  m->base_time = GST_CLOCK_TIME_NONE;
  m->async.data = m->watch.data = m->retry.data = m;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->room, NULL);
  r = check_elements(m, err, err_len);
  if (!r && c->capture_log && kind == IN_TEST) {
    if ((m->capture_log = fopen(c->capture_log, "w")) != NULL) {
      setvbuf(m->capture_log, NULL, _IOLBF, 0);
    } else {
      ptv_gst_msg(err, err_len, "cannot write %s: %s", c->capture_log, strerror(errno));
      r = PTV_ERR_IO;
    }
  }
  if (!r) r = build(m, err, err_len);
  if (!r && kind == IN_FILE) r = preroll(m, err, err_len);
  if (!r && uv_async_init(loop, &m->async, on_async) != 0) {
    ptv_gst_msg(err, err_len, "uv_async_init failed");
    r = PTV_ERR_IO;
  }
  if (r) {
    teardown(m); /* no handle yet: frees m now */
    return r;
  }
  uv_timer_init(loop, &m->watch);
  uv_timer_init(loop, &m->retry);
  m->handles = 3;
  /* the preroll may have queued news already */
  pthread_mutex_lock(&m->mu);
  m->async_ok = 1;
  int pending = m->head != NULL;
  pthread_mutex_unlock(&m->mu);
  if (pending) uv_async_send(&m->async);
  *out = m;
  return 0;
}

int ptv_media_start(ptv_media *m) {
  if (!m || m->started || m->freeing) return PTV_ERR_INVALID_ARG;
  m->started = 1;
  if (start_pipeline(m) == 0) return 0;
  /* The failing element posted its error (in this thread, through the sync
   * handler): keep it as the message, and deliver nothing. */
  pthread_mutex_lock(&m->mu);
  m->ended = 1;
  pthread_mutex_unlock(&m->mu);
  gst_element_set_state(m->pipeline, GST_STATE_NULL);
  char msg[MSG_MAX];
  queued_error(m, msg, sizeof msg);
  if (msg[0]) snprintf(m->err, sizeof m->err, "%s", msg);
  else snprintf(m->err, sizeof m->err, "%s: GStreamer could not start the pipeline", m->input);
  drop_queue(m);
  return PTV_ERR_IO;
}

const char *ptv_media_error(const ptv_media *m) { return m ? m->err : ""; }

int ptv_media_live(const ptv_media *m) { return m && m->kind != IN_FILE; }

void ptv_media_hold(ptv_media *m, int hold) {
  if (!m || m->freeing) return;
  m->held = hold != 0;
  if (!m->held && m->handles) uv_async_send(&m->async); /* deliver what waits */
}

void ptv_media_free(ptv_media *m) {
  if (!m || m->freeing) return;
  m->freeing = 1;
  if (m->in_cb) return; /* on_async tears down after the callback returns */
  teardown(m);
}
