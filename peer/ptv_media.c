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
 * encodes faster than the loop may drain); ptv_media_free wakes it first. */
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
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>

#include "ptv_err.h"

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

typedef struct item {
  struct item *next;
  int end;        /* 0: a chunk; 1: the end */
  int flag;       /* chunk: keyframe; end: error */
  uint64_t pts_us;
  uint8_t *data;  /* chunk bytes (owned) */
  size_t len;
  char msg[MSG_MAX];
} item;

struct ptv_media {
  uv_loop_t *loop;
  uv_async_t async;
  int async_live;
  ptv_media_callbacks cb;
  void *user;
  char *input;
  int is_test;
  uint32_t kbps, chunk_us;
  const char *aac; /* encoder element name */
  GstElement *pipeline, *mux, *counter;
  int started, in_cb, freeing;
  int held; /* ptv_media_hold: deliver nothing */
  char err[MSG_MAX];

  /* Shared with GStreamer's threads, under mu. */
  pthread_mutex_t mu;
  pthread_cond_t room;
  item *head, *tail;
  size_t queued;
  int ended;    /* an end is queued: nothing more goes in */
  int stopping; /* teardown runs: drop everything, wait for nothing */
  int have_video, have_audio;

  /* Chunker and frame counter: only one streaming thread each. */
  uint8_t *cur;
  size_t cur_len, cur_cap;
  GstClockTime cur_pts, last_pts;
  int cur_key;
  uint64_t frames;
};

static void set_msg(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_msg(char *buf, size_t len, const char *fmt, ...) {
  if (!buf || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  /* one line: GStreamer messages may hold newlines */
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
}

/* ---- GStreamer set-up --------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ok;
static char init_msg[MSG_MAX];

static void do_init(void) {
  GError *e = NULL;
  if (gst_init_check(NULL, NULL, &e)) init_ok = 1;
  else set_msg(init_msg, sizeof init_msg, "GStreamer failed to initialise: %s", e ? e->message : "unknown error");
  g_clear_error(&e);
}

static int have_element(const char *name) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f) return 0;
  gst_object_unref(f);
  return 1;
}

/* Names the Debian package so the message says how to fix it. */
static int need(const char *name, const char *pkg, char *err, size_t err_len) {
  if (have_element(name)) return 0;
  set_msg(err, err_len, "GStreamer element %s is missing (apt-get install %s)", name, pkg);
  return PTV_ERR_NOT_FOUND;
}

static int check_elements(ptv_media *m, char *err, size_t err_len) {
  static const char *const aacs[] = {"fdkaacenc", "avenc_aac", "voaacenc"};
  for (size_t i = 0; i < sizeof aacs / sizeof aacs[0] && !m->aac; i++)
    if (have_element(aacs[i])) m->aac = aacs[i];
  if (!m->aac) return need("avenc_aac", "gstreamer1.0-libav", err, err_len);
  int r = 0;
  if (!r) r = need("x264enc", "gstreamer1.0-plugins-ugly", err, err_len);
  if (!r) r = need("mpegtsmux", "gstreamer1.0-plugins-bad", err, err_len);
  if (!r) r = need("h264parse", "gstreamer1.0-plugins-bad", err, err_len);
  if (!r) r = need("aacparse", "gstreamer1.0-plugins-good", err, err_len);
  if (!r) r = need("appsink", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = need("videoconvert", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = need("audioconvert", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = need("audioresample", "gstreamer1.0-plugins-base", err, err_len);
  if (m->is_test) {
    if (!r) r = need("videotestsrc", "gstreamer1.0-plugins-base", err, err_len);
    if (!r) r = need("audiotestsrc", "gstreamer1.0-plugins-base", err, err_len);
    if (!r) r = need("clockoverlay", "gstreamer1.0-x", err, err_len);
    if (!r) r = need("textoverlay", "gstreamer1.0-x", err, err_len);
  } else {
    if (!r) r = need("uridecodebin", "gstreamer1.0-plugins-base", err, err_len);
    if (!r) r = need("videorate", "gstreamer1.0-plugins-base", err, err_len);
  }
  return r;
}

/* x264: key-int-max frames = one chunk, so each chunk starts at a keyframe;
 * no scene-cut keyframes, which would shift the period off chunk edges. */
static char *video_encoder(const ptv_media *m) {
  unsigned keyint = (unsigned)(((uint64_t)FPS * m->chunk_us + 999999u) / 1000000u);
  return g_strdup_printf("x264enc tune=zerolatency speed-preset=veryfast bitrate=%u key-int-max=%u "
                         "option-string=\"scenecut=0\" ! h264parse config-interval=-1",
                         (unsigned)m->kbps, keyint);
}

static char *audio_encoder(const ptv_media *m) {
  return g_strdup_printf("audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! %s ! aacparse",
                         m->aac);
}

/* ---- the queue to the loop thread ------------------------------------------ */

static void item_free(item *it) {
  if (!it) return;
  free(it->data);
  free(it);
}

/* Any thread. Takes ownership of it. */
static void push(ptv_media *m, item *it) {
  pthread_mutex_lock(&m->mu);
  while (!it->end && !m->stopping && !m->ended && m->queued >= QUEUE_MAX)
    pthread_cond_wait(&m->room, &m->mu);
  if (m->stopping || m->ended) {
    pthread_mutex_unlock(&m->mu);
    item_free(it);
    return;
  }
  if (it->end) m->ended = 1;
  if (m->tail) m->tail->next = it;
  else m->head = it;
  m->tail = it;
  m->queued += it->len;
  pthread_mutex_unlock(&m->mu);
  uv_async_send(&m->async);
}

static void push_end(ptv_media *m, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void push_end(ptv_media *m, int error, const char *fmt, ...) {
  item *it = calloc(1, sizeof *it);
  if (!it) {
    /* Still stop the stream: a consumer waiting for on_end would hang, but
     * chunks after a failure must not go out. */
    pthread_mutex_lock(&m->mu);
    m->ended = 1;
    pthread_mutex_unlock(&m->mu);
    return;
  }
  it->end = 1;
  it->flag = error;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(it->msg, sizeof it->msg, fmt, ap);
  va_end(ap);
  for (char *p = it->msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  push(m, it);
}

/* ---- chunking (appsink's streaming thread) ---------------------------------- */

static void emit_chunk(ptv_media *m) {
  if (!m->cur_len) return;
  item *it = calloc(1, sizeof *it);
  if (!it) {
    push_end(m, 1, "%s: out of memory", m->input);
    m->cur_len = 0;
    return;
  }
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

static void chunk_buffer(ptv_media *m, GstBuffer *b, const uint8_t *p, size_t n) {
  GstClockTime pts = GST_BUFFER_PTS(b);
  if (GST_CLOCK_TIME_IS_VALID(pts)) m->last_pts = pts;
  else pts = m->last_pts;
  int key = !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  if (m->cur_len && !GST_CLOCK_TIME_IS_VALID(m->cur_pts)) m->cur_pts = pts;
  /* cut only where a TS packet starts */
  if (m->cur_len && m->cur_len % TS_PACKET == 0 && n && p[0] == 0x47 && GST_CLOCK_TIME_IS_VALID(pts) &&
      GST_CLOCK_TIME_IS_VALID(m->cur_pts)) {
    int64_t held = GST_CLOCK_DIFF(m->cur_pts, pts), len_ns = (int64_t)m->chunk_us * 1000;
    if ((key && held + PTS_SLACK_NS >= len_ns) || held >= 2 * len_ns) emit_chunk(m);
  }
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
  GstBuffer *b = gst_sample_get_buffer(s);
  GstMapInfo mi;
  if (b && gst_buffer_map(b, &mi, GST_MAP_READ)) {
    chunk_buffer(m, b, mi.data, mi.size);
    gst_buffer_unmap(b, &mi);
  }
  gst_sample_unref(s);
  return GST_FLOW_OK;
}

static void on_eos(GstAppSink *sink, gpointer user) {
  ptv_media *m = user;
  emit_chunk(m); /* the last, possibly short, chunk */
  push_end(m, 0, "end of input");
}

static GstBusSyncReply on_bus(GstBus *bus, GstMessage *msg, gpointer user) {
  ptv_media *m = user;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *e = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &e, &dbg);
    push_end(m, 1, "%s: %s", m->input, e && e->message ? e->message : "unknown GStreamer error");
    g_clear_error(&e);
    g_free(dbg);
  }
  /* nothing reads the bus asynchronously: drop everything (a sync handler
   * that drops a message owns it) */
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

/* ---- the pipelines ------------------------------------------------------------ */

/* Burns the frame number into each test frame (timeoverlay cannot count
 * frames in GStreamer 1.22). */
static GstPadProbeReturn on_frame(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  ptv_media *m = user;
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
    push_end(m, 1, "%s: cannot build a branch: %s", m->input, e ? e->message : "?");
    g_clear_error(&e);
    if (bin) gst_object_unref(bin);
    return -1;
  }
  gst_bin_add(GST_BIN(m->pipeline), bin);
  GstPad *in = gst_element_get_static_pad(bin, "sink"), *out = gst_element_get_static_pad(bin, "src");
  GstPad *mpad = gst_element_request_pad_simple(m->mux, "sink_%d");
  int ok = in && out && mpad && gst_pad_link(out, mpad) == GST_PAD_LINK_OK;
  if (ok) ok = gst_element_sync_state_with_parent(bin);
  if (ok) ok = gst_pad_link(from, in) == GST_PAD_LINK_OK;
  if (!ok) push_end(m, 1, "%s: cannot link a decoded stream into the encoder", m->input);
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
  if (caps) gst_caps_unref(caps);
  /* the first video and the first audio stream; others stay unlinked */
  pthread_mutex_lock(&m->mu);
  int take = (video && !m->have_video) || (audio && !m->have_audio);
  if (take && video) m->have_video = 1;
  if (take && audio) m->have_audio = 1;
  pthread_mutex_unlock(&m->mu);
  if (!take) return;
  char *enc = video ? video_encoder(m) : audio_encoder(m);
  /* videorate to a fixed rate so key-int-max frames is exactly chunk_us */
  char *desc = video ? g_strdup_printf("queue ! videoconvert ! videorate ! video/x-raw,format=I420,framerate=%u/1 ! %s ! queue",
                                       FPS, enc)
                     : g_strdup_printf("queue ! %s ! queue", enc);
  add_branch(m, pad, desc);
  g_free(enc);
  g_free(desc);
}

static void on_no_more_pads(GstElement *dec, gpointer user) {
  ptv_media *m = user;
  pthread_mutex_lock(&m->mu);
  int video = m->have_video;
  pthread_mutex_unlock(&m->mu);
  if (!video) push_end(m, 1, "%s: the file has no video stream", m->input);
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
    set_msg(err, err_len, "cannot build the test pipeline: %s", e ? e->message : "?");
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
    set_msg(err, err_len, "the test pipeline lacks its multiplexer or overlay");
    return PTV_ERR_NOT_FOUND;
  }
  gst_pad_add_probe(vpad, GST_PAD_PROBE_TYPE_BUFFER, on_frame, m, NULL);
  gst_object_unref(vpad);
  return 0;
}

static int build_file(ptv_media *m, char *err, size_t err_len) {
  GError *e = NULL;
  gchar *uri = gst_filename_to_uri(m->input, &e);
  if (!uri) {
    set_msg(err, err_len, "%s: %s", m->input, e ? e->message : "cannot make a URI");
    g_clear_error(&e);
    return PTV_ERR_INVALID_ARG;
  }
  m->pipeline = gst_object_ref_sink(gst_pipeline_new("ptv-media"));
  GstElement *dec = gst_element_factory_make("uridecodebin", "dec");
  GstElement *mux = gst_element_factory_make("mpegtsmux", "mux");
  GstElement *sink = gst_element_factory_make("appsink", "sink");
  if (!dec || !mux || !sink) {
    g_free(uri);
    if (dec) gst_object_unref(dec);
    if (mux) gst_object_unref(mux);
    if (sink) gst_object_unref(sink);
    set_msg(err, err_len, "cannot create the file pipeline's elements");
    return PTV_ERR_NOT_FOUND;
  }
  g_object_set(dec, "uri", uri, NULL);
  g_free(uri);
  gst_bin_add_many(GST_BIN(m->pipeline), dec, mux, sink, NULL);
  if (!gst_element_link(mux, sink)) {
    set_msg(err, err_len, "cannot link mpegtsmux to appsink");
    return PTV_ERR_NOT_FOUND;
  }
  m->mux = gst_object_ref(mux);
  g_signal_connect(dec, "pad-added", G_CALLBACK(on_pad_added), m);
  g_signal_connect(dec, "no-more-pads", G_CALLBACK(on_no_more_pads), m);
  return 0;
}

static int setup_sink(ptv_media *m, char *err, size_t err_len) {
  GstElement *sink = gst_bin_get_by_name(GST_BIN(m->pipeline), "sink");
  if (!sink || !GST_IS_APP_SINK(sink)) {
    if (sink) gst_object_unref(sink);
    set_msg(err, err_len, "the pipeline has no appsink");
    return PTV_ERR_NOT_FOUND;
  }
  /* sync=false: the live source paces itself, and files are not paced yet */
  g_object_set(sink, "sync", FALSE, "max-buffers", 256u, "drop", FALSE, "emit-signals", FALSE, NULL);
  GstAppSinkCallbacks cbs = {.eos = on_eos, .new_sample = on_sample};
  gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, m, NULL);
  gst_object_unref(sink);
  GstBus *bus = gst_element_get_bus(m->pipeline);
  gst_bus_set_sync_handler(bus, on_bus, m, NULL);
  gst_object_unref(bus);
  return 0;
}

/* ---- the loop side ---------------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  ptv_media *m = h->data;
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

static void teardown(ptv_media *m) {
  pthread_mutex_lock(&m->mu);
  m->stopping = 1;
  pthread_cond_broadcast(&m->room); /* a streaming thread may wait for room */
  pthread_mutex_unlock(&m->mu);
  if (m->pipeline) {
    /* joins the streaming threads: nothing calls into m after this */
    gst_element_set_state(m->pipeline, GST_STATE_NULL);
    GstBus *bus = gst_element_get_bus(m->pipeline);
    gst_bus_set_sync_handler(bus, NULL, NULL, NULL);
    gst_object_unref(bus);
  }
  if (m->counter) gst_object_unref(m->counter);
  if (m->mux) gst_object_unref(m->mux);
  if (m->pipeline) gst_object_unref(m->pipeline);
  m->counter = m->mux = m->pipeline = NULL;
  drop_queue(m);
  free(m->cur);
  m->cur = NULL;
  if (m->async_live) {
    uv_close((uv_handle_t *)&m->async, on_closed);
  } else {
    on_closed((uv_handle_t *)&m->async);
  }
}

static void on_async(uv_async_t *a) {
  ptv_media *m = a->data;
  if (m->held && !m->freeing) return; /* the items wait in the queue */
  pthread_mutex_lock(&m->mu);
  item *it = m->head;
  m->head = m->tail = NULL;
  m->queued = 0;
  pthread_cond_broadcast(&m->room);
  pthread_mutex_unlock(&m->mu);
  m->in_cb = 1;
  while (it) {
    if (m->held && !m->freeing) break; /* a callback held: the rest waits */
    item *next = it->next;
    if (!m->freeing) {
      if (it->end) {
        if (it->flag) snprintf(m->err, sizeof m->err, "%s", it->msg);
        if (m->cb.on_end) m->cb.on_end(m->user, it->flag, it->msg);
      } else if (m->cb.on_chunk) {
        m->cb.on_chunk(m->user, it->data, it->len, it->flag, it->pts_us);
      }
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

static int check_input(const char *in, int *is_test, char *err, size_t err_len) {
  if (!strcmp(in, "test")) {
    *is_test = 1;
    return 0;
  }
  *is_test = 0;
  if (!*in || strstr(in, "://")) {
    set_msg(err, err_len, "unsupported input '%s' (expected \"test\" or a file path)", in);
    return PTV_ERR_INVALID_ARG;
  }
  struct stat st;
  if (stat(in, &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      set_msg(err, err_len, "no such file: %s", in);
      return PTV_ERR_NOT_FOUND;
    }
    set_msg(err, err_len, "%s: %s", in, strerror(errno));
    return PTV_ERR_IO;
  }
  if (!S_ISREG(st.st_mode)) {
    set_msg(err, err_len, "%s: not a regular file", in);
    return PTV_ERR_INVALID_ARG;
  }
  if (access(in, R_OK) != 0) {
    set_msg(err, err_len, "%s: %s", in, strerror(errno));
    return PTV_ERR_IO;
  }
  return 0;
}

int ptv_media_new(ptv_media **out, uv_loop_t *loop, const ptv_media_config *c,
                  const ptv_media_callbacks *cb, void *user, char *err, size_t err_len) {
  if (err && err_len) err[0] = '\0';
  if (out) *out = NULL;
  if (!out || !loop || !c || !c->input || !cb) {
    set_msg(err, err_len, "missing argument");
    return PTV_ERR_INVALID_ARG;
  }
  uint32_t kbps = c->video_kbps ? c->video_kbps : DEF_KBPS;
  uint32_t chunk_us = c->chunk_us ? c->chunk_us : DEF_CHUNK_US;
  if (kbps > MAX_KBPS || chunk_us < MIN_CHUNK_US || chunk_us > MAX_CHUNK_US) {
    set_msg(err, err_len, "video_kbps must be at most %u and chunk_us within %u..%u", MAX_KBPS, MIN_CHUNK_US,
            MAX_CHUNK_US);
    return PTV_ERR_INVALID_ARG;
  }
  int is_test;
  int r = check_input(c->input, &is_test, err, err_len); /* before any GStreamer work */
  if (r) return r;
  pthread_once(&init_once, do_init);
  if (!init_ok) {
    set_msg(err, err_len, "%s", init_msg);
    return PTV_ERR_IO;
  }
  ptv_media *m = calloc(1, sizeof *m);
  if (!m || !(m->input = strdup(c->input))) {
    free(m);
    set_msg(err, err_len, "out of memory");
    return PTV_ERR_NOMEM;
  }
  m->loop = loop;
  m->cb = *cb;
  m->user = user;
  m->is_test = is_test;
  m->kbps = kbps;
  m->chunk_us = chunk_us;
  m->cur_pts = m->last_pts = GST_CLOCK_TIME_NONE;
  m->async.data = m;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->room, NULL);
  r = check_elements(m, err, err_len);
  if (!r) r = is_test ? build_test(m, err, err_len) : build_file(m, err, err_len);
  if (!r) r = setup_sink(m, err, err_len);
  if (!r && uv_async_init(loop, &m->async, on_async) != 0) {
    set_msg(err, err_len, "uv_async_init failed");
    r = PTV_ERR_IO;
  }
  if (r) {
    teardown(m); /* async not live: frees m now */
    return r;
  }
  m->async_live = 1;
  *out = m;
  return 0;
}

int ptv_media_start(ptv_media *m) {
  if (!m || m->started || m->freeing) return PTV_ERR_INVALID_ARG;
  m->started = 1;
  if (gst_element_set_state(m->pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE) return 0;
  /* The failing element posted its error (in this thread, through the sync
   * handler): keep it as the message, and deliver nothing. */
  pthread_mutex_lock(&m->mu);
  m->ended = 1;
  pthread_mutex_unlock(&m->mu);
  gst_element_set_state(m->pipeline, GST_STATE_NULL);
  snprintf(m->err, sizeof m->err, "%s: GStreamer could not start the pipeline", m->input);
  pthread_mutex_lock(&m->mu);
  for (item *it = m->head; it; it = it->next)
    if (it->end && it->flag) snprintf(m->err, sizeof m->err, "%s", it->msg);
  pthread_mutex_unlock(&m->mu);
  drop_queue(m);
  return PTV_ERR_IO;
}

const char *ptv_media_error(const ptv_media *m) { return m ? m->err : ""; }

void ptv_media_hold(ptv_media *m, int hold) {
  if (!m || m->freeing) return;
  m->held = hold != 0;
  if (!m->held && m->async_live) uv_async_send(&m->async); /* deliver what waits */
}

void ptv_media_free(ptv_media *m) {
  if (!m || m->freeing) return;
  m->freeing = 1;
  if (m->in_cb) return; /* on_async tears down after the callback returns */
  teardown(m);
}
