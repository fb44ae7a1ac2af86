/* ptv_player.c -- see ptv_player.h.
 *
 * Why our own demultiplexer (ptv_ts) and not tsdemux: we need each frame's
 * stream PTS at the sink (the frame log joins it with the source's capture
 * log), exact knowledge of the gaps, and running times we choose. tsdemux
 * recovers live timing from PCRs and arrival times and maps timestamps
 * anew at each discontinuity, which hides all three. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptv_player.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include "ptv_err.h"
#include "ptv_gst.h"
#include "ptv_ts.h"

#define DEF_LATENCY_MS 100u
#define MAX_EARLY_NS ((int64_t)300 * GST_MSECOND)
#define RECLAIM_NS ((int64_t)5 * GST_MSECOND)    /* per chunk: 5% at 100 ms chunks */
#define CALM_NS ((int64_t)2 * GST_SECOND)        /* no late frame for this long */
#define SINK_LATENESS_NS ((int64_t)20 * GST_MSECOND) /* as GstVideoSink's default */
#define RING 256 /* running time -> stream PTS of the video units in flight */
#define MSG_MAX 256
#define TS_WRAP ((int64_t)1 << 33)

struct ptv_player {
  uv_loop_t *loop;
  uv_async_t async;
  ptv_player_config cfg;
  ptv_ts *ts;
  FILE *flog;
  GstElement *pipeline, *src[2], *vsink, *vdec, *vconv;
  GstClock *clock;
  GstClockTime base, latency;
  pthread_t warm;
  int warm_live;
  /* the sinks, made and opened (READY) by the warm-up thread: opening
   * autovideosink probes sinks and the display, 1.5 s on Xvfb, which the
   * loop's thread must not wait for; under mu until warm_done */
  GstElement *pre_sink[2];
  int warm_done;
  uint64_t chunks_early; /* chunks before the sinks were ready: skipped */
  int built, build_err, failed, freeing, in_cb, error_told;
  /* timing: running time = (pts - pts0) * 1e9 / 90000 + shift */
  int have_pts0;
  int64_t pts0, shift;
  int64_t late_at;  /* running time when frames were last reported late */
  int chunk_first; /* the next timestamped unit is the chunk's first */
  int discont[2];  /* the next buffer of this kind carries DISCONT */
  uint64_t rebases;

  /* Shared with the streaming threads, under mu. */
  pthread_mutex_t mu;
  int64_t ring_rt[RING], ring_pts[RING];
  unsigned ring_next;
  uint64_t frames_in, sink_dropped;
  /* video elements before the sink that drop late frames on its QoS
   * request (the decoder, videoconvert): each one's cumulative count */
  const void *qos_src[8];
  uint64_t qos_dropped[8];
  int64_t late_ns; /* the video sink's worst lateness since the last chunk */
  int64_t first_frame_us;
  char err[MSG_MAX];
};

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- GStreamer set-up ---------------------------------------------------- */




static int check_elements(const ptv_player_config *c, char *err, size_t err_len) {
  int r = ptv_gst_need("appsrc", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("decodebin", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("videoconvert", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("audioconvert", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("audioresample", "gstreamer1.0-plugins-base", err, err_len);
  if (!r) r = ptv_gst_need("h264parse", "gstreamer1.0-plugins-bad", err, err_len);
  if (!r) r = ptv_gst_need("avdec_h264", "gstreamer1.0-libav", err, err_len);
  if (!r && c->null_sinks) r = ptv_gst_need("fakesink", "libgstreamer1.0-0", err, err_len);
  if (!r && !c->null_sinks) r = ptv_gst_need("autovideosink", "gstreamer1.0-plugins-good", err, err_len);
  if (!r && !c->null_sinks) r = ptv_gst_need("autoaudiosink", "gstreamer1.0-plugins-good", err, err_len);
  return r;
}

/* Loads the usual decoders' plugins and opens the sinks while the peer
 * joins, not when the first chunk comes (libav alone takes 100-300 ms, an
 * autovideosink up to seconds: the first frames would be late, and the
 * loop would stall). */
static void *warm_up(void *arg) {
  ptv_player *p = arg;
  static const char *const warm[] = {"h264parse", "avdec_h264", "aacparse", "avdec_aac", "decodebin"};
  for (size_t i = 0; i < sizeof warm / sizeof warm[0]; i++) {
    GstElement *e = gst_element_factory_make(warm[i], NULL);
    if (e) gst_object_unref(gst_object_ref_sink(e));
  }
  GstElement *sink[2];
  if (p->cfg.null_sinks) {
    sink[0] = gst_element_factory_make("fakesink", "vsink");
    sink[1] = gst_element_factory_make("fakesink", "asink");
    if (sink[0])
      g_object_set(sink[0], "sync", TRUE, "qos", TRUE, "enable-last-sample", FALSE, "max-lateness",
                   (gint64)SINK_LATENESS_NS, NULL);
    if (sink[1]) g_object_set(sink[1], "sync", TRUE, "enable-last-sample", FALSE, NULL);
  } else {
    sink[0] = gst_element_factory_make("autovideosink", "vsink");
    sink[1] = gst_element_factory_make("autoaudiosink", "asink");
  }
  for (int k = 0; k < 2; k++)
    if (sink[k]) {
      gst_object_ref_sink(sink[k]);
      gst_element_set_state(sink[k], GST_STATE_READY); /* a failure shows when the pipeline starts */
    }
  pthread_mutex_lock(&p->mu);
  p->pre_sink[0] = sink[0];
  p->pre_sink[1] = sink[1];
  p->warm_done = 1;
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* The warm-up is over (its sinks may be used). */
static int warm_ready(ptv_player *p) {
  pthread_mutex_lock(&p->mu);
  int done = p->warm_done;
  pthread_mutex_unlock(&p->mu);
  if (done && p->warm_live) {
    pthread_join(p->warm, NULL);
    p->warm_live = 0;
  }
  return done;
}

static const char *video_caps(uint8_t type) {
  switch (type) {
  case 0x1b: return "video/x-h264,stream-format=byte-stream,alignment=au";
  case 0x24: return "video/x-h265,stream-format=byte-stream,alignment=au";
  case 0x02: return "video/mpeg,mpegversion=2,systemstream=false";
  case 0x01: return "video/mpeg,mpegversion=1,systemstream=false";
  default: return NULL;
  }
}

static const char *audio_caps(uint8_t type) {
  switch (type) {
  case 0x0f: return "audio/mpeg,mpegversion=4,stream-format=adts";
  case 0x11: return "audio/mpeg,mpegversion=4,stream-format=loas";
  case 0x03:
  case 0x04: return "audio/mpeg,mpegversion=1";
  case 0x81: return "audio/x-ac3";
  case 0x87: return "audio/x-eac3";
  default: return NULL;
  }
}

/* ---- streaming threads ------------------------------------------------------ */

/* A video frame reaches the sink: count it, log when it is due on screen. */
static GstPadProbeReturn on_frame(GstPad *pad, GstPadProbeInfo *info, gpointer user) {
  (void)pad;
  ptv_player *p = user;
  GstBuffer *b = GST_PAD_PROBE_INFO_BUFFER(info);
  int64_t now_mono = mono_us();
  pthread_mutex_lock(&p->mu);
  p->frames_in++;
  if (!p->first_frame_us) p->first_frame_us = now_mono;
  int64_t pts90 = -1;
  if (b && GST_BUFFER_PTS_IS_VALID(b)) {
    int64_t rt = (int64_t)GST_BUFFER_PTS(b);
    for (unsigned i = 0; i < RING; i++) {
      unsigned k = (p->ring_next + RING - 1 - i) % RING;
      if (p->ring_rt[k] == rt) {
        pts90 = p->ring_pts[k];
        break;
      }
    }
    if (p->flog && pts90 >= 0) {
      GstClockTime now = gst_clock_get_time(p->clock);
      int64_t due = (int64_t)(p->base + (GstClockTime)rt + p->latency) - (int64_t)now;
      fprintf(p->flog, "%lld %lld\n", (long long)pts90,
              (long long)(wall_us() + (due > 0 ? due / 1000 : 0)));
    }
  }
  pthread_mutex_unlock(&p->mu);
  return GST_PAD_PROBE_OK;
}

static GstBusSyncReply on_bus(GstBus *bus, GstMessage *msg, gpointer user) {
  (void)bus;
  ptv_player *p = user;
  GstObject *src = GST_MESSAGE_SRC(msg);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *e = NULL;
    gchar *dbg = NULL;
    gst_message_parse_error(msg, &e, &dbg);
    pthread_mutex_lock(&p->mu);
    if (!p->err[0])
      ptv_gst_msg(p->err, sizeof p->err, "%s: %s", src ? GST_OBJECT_NAME(src) : "?",
              e && e->message ? e->message : "unknown GStreamer error");
    pthread_mutex_unlock(&p->mu);
    g_clear_error(&e);
    g_free(dbg);
    uv_async_send(&p->async);
  } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_QOS && src) {
    /* cumulative counts of buffers the element dropped as late */
    GstFormat fmt;
    guint64 processed, dropped;
    gst_message_parse_qos_stats(msg, &fmt, &processed, &dropped);
    int sink = p->vsink && (src == GST_OBJECT(p->vsink) || gst_object_has_as_ancestor(src, GST_OBJECT(p->vsink)));
    int dec = (p->vdec && gst_object_has_as_ancestor(src, GST_OBJECT(p->vdec))) ||
              (p->vconv && src == GST_OBJECT(p->vconv));
    gint64 jitter;
    gst_message_parse_qos_values(msg, &jitter, NULL, NULL);
    pthread_mutex_lock(&p->mu);
    if (sink && jitter > p->late_ns) p->late_ns = jitter;
    if (sink && dropped != (guint64)-1 && dropped > p->sink_dropped) p->sink_dropped = dropped;
    for (int i = 0; dec && dropped != (guint64)-1 && i < 8; i++)
      if (!p->qos_src[i] || p->qos_src[i] == src) {
        p->qos_src[i] = src;
        if (dropped > p->qos_dropped[i]) p->qos_dropped[i] = dropped;
        break;
      }
    pthread_mutex_unlock(&p->mu);
  }
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

/* ---- the pipeline ----------------------------------------------------------------- */

/* libav's frame threads hold back a frame per extra thread: latency we do
 * not want for a live picture; slice threads add none. */
static void on_element(GstBin *bin, GstBin *sub, GstElement *e, gpointer user) {
  (void)bin;
  (void)sub;
  (void)user;
  GstElementFactory *f = gst_element_get_factory(e);
  const char *name = f ? GST_OBJECT_NAME(f) : "";
  if (g_str_has_prefix(name, "avdec_") && g_object_class_find_property(G_OBJECT_GET_CLASS(e), "thread-type"))
    gst_util_set_object_arg(G_OBJECT(e), "thread-type", "slice");
}

static void teardown_pipeline(ptv_player *p) {
  if (p->pipeline) {
    gst_element_set_state(p->pipeline, GST_STATE_NULL); /* joins the threads */
    GstBus *bus = gst_element_get_bus(p->pipeline);
    gst_bus_set_sync_handler(bus, NULL, NULL, NULL);
    gst_object_unref(bus);
  }
  for (int k = 0; k < 2; k++)
    if (p->src[k]) gst_object_unref(p->src[k]);
  if (p->vsink) gst_object_unref(p->vsink);
  if (p->vdec) gst_object_unref(p->vdec);
  if (p->vconv) gst_object_unref(p->vconv);
  if (p->pipeline) gst_object_unref(p->pipeline);
  if (p->clock) gst_object_unref(p->clock);
  p->src[0] = p->src[1] = p->vsink = p->vdec = p->vconv = p->pipeline = NULL;
  p->clock = NULL;
  for (int k = 0; k < 2; k++) /* not used: no such stream, or no build */
    if (p->pre_sink[k]) {
      gst_element_set_state(p->pre_sink[k], GST_STATE_NULL);
      gst_object_unref(p->pre_sink[k]);
      p->pre_sink[k] = NULL;
    }
}

static int build(ptv_player *p) {
  ptv_ts_info ti;
  ptv_ts_get_info(p->ts, &ti);
  const char *vc = ti.video_codec ? video_caps(ti.video_type) : NULL;
  const char *ac = ti.audio_codec ? audio_caps(ti.audio_type) : NULL;
  if (!vc && !ac) {
    ptv_gst_msg(p->err, sizeof p->err, "the stream has no video or audio we can play (video %s, audio %s)",
            ti.video_codec ? ti.video_codec : "none", ti.audio_codec ? ti.audio_codec : "none");
    return PTV_ERR_IO;
  }
  if (!p->pre_sink[0] || !p->pre_sink[1]) {
    ptv_gst_msg(p->err, sizeof p->err, "cannot make the player's sinks");
    return PTV_ERR_IO;
  }
  char *vdesc = vc ? g_strdup_printf("appsrc name=vsrc caps=\"%s\" ! decodebin name=vdec ! queue ! "
                                     "videoconvert name=vconv ",
                                     vc)
                   : g_strdup("");
  char *adesc = ac ? g_strdup_printf("appsrc name=asrc caps=\"%s\" ! decodebin ! queue ! audioconvert ! "
                                     "audioresample name=ares",
                                     ac)
                   : g_strdup("");
  char *desc = g_strdup_printf("%s%s", vdesc, adesc);
  g_free(vdesc);
  g_free(adesc);
  GError *e = NULL;
  GstElement *pl = gst_parse_launch(desc, &e);
  g_free(desc);
  if (!pl || e) {
    ptv_gst_msg(p->err, sizeof p->err, "cannot build the player: %s", e ? e->message : "?");
    g_clear_error(&e);
    if (pl) gst_object_unref(pl);
    return PTV_ERR_IO;
  }
  p->pipeline = gst_object_ref_sink(pl);
  g_signal_connect(pl, "deep-element-added", G_CALLBACK(on_element), NULL);
  p->src[0] = vc ? gst_bin_get_by_name(GST_BIN(pl), "vsrc") : NULL;
  p->src[1] = ac ? gst_bin_get_by_name(GST_BIN(pl), "asrc") : NULL;
  p->vdec = vc ? gst_bin_get_by_name(GST_BIN(pl), "vdec") : NULL;
  p->vconv = vc ? gst_bin_get_by_name(GST_BIN(pl), "vconv") : NULL;
  /* the sinks the warm-up opened, after the last element of each branch */
  static const char *const last[2] = {"vconv", "ares"};
  for (int k = 0; k < 2; k++) {
    if (!(k ? ac : vc)) continue;
    GstElement *from = gst_bin_get_by_name(GST_BIN(pl), last[k]), *sink = p->pre_sink[k];
    p->pre_sink[k] = NULL;
    int added = from && gst_bin_add(GST_BIN(pl), sink); /* the bin adds its own ref */
    int ok = added && gst_element_link(from, sink);
    if (from) gst_object_unref(from);
    if (ok && !k) p->vsink = gst_object_ref(sink);
    gst_object_unref(sink); /* ours (the warm-up's) */
    if (!ok) {
      ptv_gst_msg(p->err, sizeof p->err, "cannot link the player's %s sink", k ? "audio" : "video");
      teardown_pipeline(p);
      return PTV_ERR_IO;
    }
  }
  for (int k = 0; k < 2; k++)
    if (p->src[k])
      g_object_set(p->src[k], "is-live", TRUE, "format", GST_FORMAT_TIME, "max-bytes", (guint64)(8u << 20),
                   NULL);
  if (p->vsink) {
    GstPad *pad = gst_element_get_static_pad(p->vsink, "sink");
    if (pad) {
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_frame, p, NULL);
      gst_object_unref(pad);
    }
  }
  GstBus *bus = gst_element_get_bus(pl);
  gst_bus_set_sync_handler(bus, on_bus, p, NULL);
  gst_object_unref(bus);
  /* Our clock and base time: running time is what we stamp, and a frame is
   * due at base + running time + latency on the system clock. */
  p->clock = gst_system_clock_obtain();
  gst_pipeline_use_clock(GST_PIPELINE(pl), p->clock);
  gst_pipeline_set_latency(GST_PIPELINE(pl), p->latency);
  gst_element_set_start_time(pl, GST_CLOCK_TIME_NONE);
  p->base = gst_clock_get_time(p->clock);
  gst_element_set_base_time(pl, p->base);
  if (gst_element_set_state(pl, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    pthread_mutex_lock(&p->mu);
    if (!p->err[0]) ptv_gst_msg(p->err, sizeof p->err, "GStreamer could not start the player");
    pthread_mutex_unlock(&p->mu);
    teardown_pipeline(p);
    return PTV_ERR_IO;
  }
  p->built = 1;
  return 0;
}

/* ptv_ts's callback: one access unit -> one buffer. */
static void on_unit(void *user, int kind, const uint8_t *data, size_t len, int64_t pts, int64_t dts,
                    int discont, int key) {
  (void)dts;
  ptv_player *p = user;
  if (p->failed) return;
  if (!p->built) {
    /* the first unit: the PMT before it named the codecs */
    if ((p->build_err = build(p)) != 0) {
      p->failed = 1;
      return;
    }
  }
  if (!p->src[kind] || pts == PTV_TS_NO_TS) return;
  if (!p->have_pts0) {
    p->have_pts0 = 1;
    p->pts0 = pts;
    p->shift = (int64_t)(gst_clock_get_time(p->clock) - p->base);
  }
  int64_t d90 = (pts - p->pts0) & (TS_WRAP - 1);
  if (d90 >= TS_WRAP / 2) d90 -= TS_WRAP; /* a little before the first unit */
  int64_t rt = (int64_t)gst_util_uint64_scale_int((guint64)(d90 < 0 ? -d90 : d90), GST_SECOND, 90000);
  rt = (d90 < 0 ? -rt : rt) + p->shift;
  int64_t now_rt = (int64_t)(gst_clock_get_time(p->clock) - p->base);
  pthread_mutex_lock(&p->mu);
  int64_t late = p->late_ns;
  p->late_ns = 0;
  pthread_mutex_unlock(&p->mu);
  int64_t move = 0;
  int chunk_start = p->chunk_first;
  if (p->chunk_first) {
    /* due at once, within half the latency, or not much ahead: else move
     * the timeline so this chunk is due now */
    p->chunk_first = 0;
    if (now_rt - rt > (int64_t)p->latency / 2 || rt - now_rt > MAX_EARLY_NS) move = now_rt - rt;
  }
  if (!move && late > 0) {
    /* frames reached the sink late though the chunks came on time (the
     * decoders were slow to start, or short of CPU): show later from this
     * unit on, with a margin so that one slow frame does not make many
     * moves */
    move = late + (int64_t)p->latency / 4;
    p->late_at = now_rt;
  } else if (!move && chunk_start && rt - now_rt > (int64_t)p->latency / 4 && now_rt - p->late_at > CALM_NS) {
    /* chunks come ahead of the timeline (it moved for late frames, and
     * the load has passed): win the latency back a little per chunk,
     * frames a few ms closer, no jump */
    int64_t back = rt - now_rt - (int64_t)p->latency / 4;
    p->shift -= back < RECLAIM_NS ? back : RECLAIM_NS;
    rt -= back < RECLAIM_NS ? back : RECLAIM_NS;
  }
  if (move) {
    p->shift += move;
    rt += move;
    p->rebases++;
    p->discont[0] = p->discont[1] = 1;
  }
  if (rt < 0) return; /* before the start */
  GstBuffer *b = gst_buffer_new_memdup(data, len);
  if (!b) return;
  GST_BUFFER_PTS(b) = (GstClockTime)rt;
  if (discont || p->discont[kind]) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
  p->discont[kind] = 0;
  if (kind == 0 && !key) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  if (kind == 0) {
    pthread_mutex_lock(&p->mu);
    p->ring_rt[p->ring_next] = rt;
    p->ring_pts[p->ring_next] = pts;
    p->ring_next = (p->ring_next + 1) % RING;
    pthread_mutex_unlock(&p->mu);
  }
  gst_app_src_push_buffer(GST_APP_SRC(p->src[kind]), b); /* takes b */
}

/* ---- the loop side ------------------------------------------------------------------ */

static void on_closed(uv_handle_t *h) {
  ptv_player *p = h->data;
  pthread_mutex_destroy(&p->mu);
  free(p);
}

static void teardown(ptv_player *p) {
  if (p->warm_live) pthread_join(p->warm, NULL);
  p->warm_live = 0;
  teardown_pipeline(p);
  ptv_ts_free(p->ts);
  p->ts = NULL;
  if (p->flog) fclose(p->flog);
  p->flog = NULL;
  uv_close((uv_handle_t *)&p->async, on_closed);
}

static void on_async(uv_async_t *a) {
  ptv_player *p = a->data;
  if (p->freeing || p->error_told) return;
  pthread_mutex_lock(&p->mu);
  int bad = p->err[0] != 0;
  char msg[MSG_MAX];
  snprintf(msg, sizeof msg, "%s", p->err);
  pthread_mutex_unlock(&p->mu);
  if (!bad) return;
  p->error_told = 1;
  p->failed = 1;
  teardown_pipeline(p); /* nothing more to show: free its threads now */
  if (p->cfg.on_error) {
    p->in_cb = 1;
    p->cfg.on_error(p->cfg.user, msg);
    p->in_cb = 0;
    if (p->freeing) teardown(p);
  }
}

int ptv_player_new(ptv_player **out, uv_loop_t *loop, const ptv_player_config *c, char *err,
                   size_t err_len) {
  if (err && err_len) err[0] = '\0';
  if (out) *out = NULL;
  if (!out || !loop || !c) {
    ptv_gst_msg(err, err_len, "missing argument");
    return PTV_ERR_INVALID_ARG;
  }
  if (ptv_gst_init(err, err_len) != 0) return PTV_ERR_IO;
  int r = check_elements(c, err, err_len);
  if (r) return r;
  if (!c->null_sinks) {
    /* autovideosink tries DirectFB's sink when X fails, and Debian 12's
     * libdirectfb then crashes the process in its own thread (gst-launch
     * too, with DISPLAY naming no server): never let it be chosen */
    GstElementFactory *dfb = gst_element_factory_find("dfbvideosink");
    if (dfb) {
      gst_plugin_feature_set_rank(GST_PLUGIN_FEATURE(dfb), GST_RANK_NONE);
      gst_object_unref(dfb);
    }
  }

  ptv_player *p = calloc(1, sizeof *p);
  if (!p) {
    ptv_gst_msg(err, err_len, "out of memory");
    return PTV_ERR_NOMEM;
  }
  p->loop = loop;
  p->cfg = *c;
  p->latency = (GstClockTime)(c->latency_ms ? c->latency_ms : DEF_LATENCY_MS) * GST_MSECOND;
  p->async.data = p;
  pthread_mutex_init(&p->mu, NULL);
  if ((r = ptv_ts_new(&p->ts, on_unit, p)) != 0) {
    ptv_gst_msg(err, err_len, "out of memory");
  } else if (c->frame_log && !(p->flog = fopen(c->frame_log, "w"))) {
    ptv_gst_msg(err, err_len, "cannot write %s: %s", c->frame_log, strerror(errno));
    r = PTV_ERR_IO;
  } else if (uv_async_init(loop, &p->async, on_async) != 0) {
    ptv_gst_msg(err, err_len, "uv_async_init failed");
    r = PTV_ERR_IO;
  }
  if (r) {
    ptv_ts_free(p->ts);
    if (p->flog) fclose(p->flog);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return r;
  }
  if (p->flog) setvbuf(p->flog, NULL, _IOLBF, 0); /* readable while it runs */
  p->warm_live = pthread_create(&p->warm, NULL, warm_up, p) == 0;
  if (!p->warm_live) warm_up(p); /* no thread: here, then */
  p->cfg.frame_log = NULL; /* not ours to keep */
  *out = p;
  return 0;
}

int ptv_player_push(ptv_player *p, const uint8_t *ts, size_t len, int keyframe) {
  if (!p || (!ts && len) || p->freeing) return PTV_ERR_INVALID_ARG;
  if (p->failed) return PTV_ERR_CLOSED;
  if (!p->built && !warm_ready(p)) {
    /* the sinks are not open yet: the stream starts at a later keyframe
     * chunk (waiting here would stall the loop) */
    p->chunks_early++;
    return 0;
  }
  p->chunk_first = 1;
  int r = ptv_ts_chunk(p->ts, ts, len, keyframe);
  if (p->build_err) {
    p->failed = 1;
    uv_async_send(&p->async); /* on_error, once, from the loop */
    return p->build_err;
  }
  return r;
}

int ptv_player_ready(ptv_player *p) { return p && (p->built || warm_ready(p)); }

void ptv_player_gap(ptv_player *p) {
  if (p) ptv_ts_gap(p->ts);
}

void ptv_player_get_stats(const ptv_player *p, ptv_player_stats *out) {
  if (!out) return;
  memset(out, 0, sizeof *out);
  if (!p) return;
  ptv_ts_info ti;
  ptv_ts_get_info(p->ts, &ti);
  out->video_codec = ti.video_codec;
  out->audio_codec = ti.audio_codec;
  out->width = ti.width;
  out->height = ti.height;
  out->fps = ti.fps;
  out->bitrate_kbps = ti.media_us ? (double)ti.bytes * 8.0 / ((double)ti.media_us / 1e3) : 0;
  out->chunks = ti.chunks;
  out->chunks_skipped = ti.chunks_skipped + p->chunks_early;
  out->frames_lost = ti.frames_lost;
  out->rebases = p->rebases;
  out->failed = p->failed;
  pthread_mutex_t *mu = (pthread_mutex_t *)&p->mu; /* counters only */
  pthread_mutex_lock(mu);
  out->frames_in = p->frames_in;
  out->frames_late = p->sink_dropped;
  for (int i = 0; i < 8; i++) out->frames_late += p->qos_dropped[i];
  out->frames_played = p->frames_in > p->sink_dropped ? p->frames_in - p->sink_dropped : 0;
  out->first_frame_us = p->first_frame_us;
  pthread_mutex_unlock(mu);
  out->frames_dropped = out->frames_late + out->frames_lost;
}

const char *ptv_player_error(const ptv_player *p) { return p ? p->err : ""; }

void ptv_player_free(ptv_player *p) {
  if (!p || p->freeing) return;
  p->freeing = 1;
  if (p->in_cb) return; /* on_async tears down after the callback */
  teardown(p);
}
