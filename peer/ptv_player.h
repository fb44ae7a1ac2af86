/* ptv_player.h -- plays the watched stream: MPEG-TS chunks in, picture and
 * sound out (peertv-peer --play).
 *
 * The chunks the host plays (the bytes --record writes) go through ptv_ts,
 * which starts at a keyframe chunk, skips from a gap to the next keyframe
 * chunk, and hands over access units with their 90 kHz timestamps. Each
 * unit becomes a GstBuffer in an appsrc per stream:
 *
 *   appsrc (H.264 or another video) ! decodebin ! queue ! videoconvert ! video sink
 *   appsrc (AAC or another audio)   ! decodebin ! queue ! audioconvert ! audioresample ! audio sink
 *
 * Sinks: autovideosink and autoaudiosink (a window, sound; they fall back
 * to fakesinks where no display or device answers, and DirectFB's sink is
 * never chosen: it crashes the process then), or fakesinks that still
 * decode and keep time (null: headless machines, benchmarks, tests); the
 * null video sink drops frames later than 20 ms like a video sink does.
 *
 * Timing: the pipeline runs on the system clock with a base time we set,
 * so a unit's running time is ours to choose: (pts - first pts) + shift.
 * The first unit is due at once; a chunk whose first unit would be late by
 * more than half the latency (playback paused, or the chunk came late), or
 * early by more than 300 ms (playback jumped ahead), moves shift so it is
 * due at once again; the video sink reporting frames late (QoS: the
 * decoders were slow to start, or short of CPU) moves it at the next unit
 * by that lateness + a quarter of the latency. Once no frame was late for
 * 2 s, chunks that come more than a quarter of the latency ahead of the
 * timeline move it back 5 ms each (no jump), winning that latency back.
 * Buffers after a move carry DISCONT. Frames show at their
 * running time + the latency (default 100 ms: time to decode).
 *
 * Threading: from ptv_player_new on, a thread loads the decoders and
 * opens the sinks (see ptv_player_ready); GStreamer's streaming threads
 * only count and log; errors reach the loop through a uv_async_t. All
 * functions must be called on the loop's thread.
 *
 * Functions that return int return 0 or a negative PTV_ERR_* (ptv_err.h).
 */
#ifndef PTV_PLAYER_H
#define PTV_PLAYER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptv_player ptv_player;

typedef struct ptv_player_config {
  int null_sinks;        /* 1: fakesinks instead of a window and sound */
  uint32_t latency_ms;   /* 0: 100 */
  /* One line per video frame that reaches the video sink: its PTS as in
   * the stream (90 kHz, 33 bits) and the wall-clock time (CLOCK_REALTIME,
   * microseconds since the epoch) it is due on screen, or now if that is
   * past: "pts90 wall_us". NULL: no log. */
  const char *frame_log;
  /* A GStreamer error, or a stream we cannot play, stopped playback (on
   * the loop, after the call that met it; once): a one-line message. The
   * player may be freed from inside. NULL: ignored. */
  void (*on_error)(void *user, const char *message);
  void *user;
} ptv_player_config;

typedef struct ptv_player_stats {
  const char *video_codec, *audio_codec; /* as ptv_ts_info; NULL: none yet */
  uint32_t width, height;   /* from the SPS; 0 unknown */
  double fps;               /* from the SPS, else the timestamps; 0 unknown */
  double bitrate_kbps;      /* TS bytes taken / video time they cover */
  uint64_t frames_in;       /* video frames that reached the video sink */
  uint64_t frames_played;   /* frames_in less those the sink dropped as late */
  uint64_t frames_late;     /* dropped as late: by the sink, and before
                               it on its QoS request (the decoder,
                               videoconvert) */
  uint64_t frames_lost;     /* in skipped chunks (ptv_ts frames_lost) */
  uint64_t frames_dropped;  /* frames_late + frames_lost */
  uint64_t chunks, chunks_skipped, rebases; /* skipped: also before ready */
  int64_t first_frame_us;   /* CLOCK_MONOTONIC us when the first frame
                               reached the sink; 0: none yet */
  int failed;               /* an error stopped playback */
} ptv_player_stats;

/* Checks that GStreamer starts and the elements exist; the pipeline is
 * built at the first chunk taken (its PMT names the codecs).
 * err/err_len (may be NULL/0) receives a one-line message. Returns 0 and
 * sets *out, or:
 *   PTV_ERR_INVALID_ARG  NULL out, loop or c
 *   PTV_ERR_NOT_FOUND    a GStreamer element is missing (the message names
 *                        it and its Debian package)
 *   PTV_ERR_IO           GStreamer failed to initialise, the frame log
 *                        cannot be opened, or the uv_async_t failed
 *   PTV_ERR_NOMEM        allocation failed */
int ptv_player_new(ptv_player **out, uv_loop_t *loop, const ptv_player_config *c, char *err,
                   size_t err_len);

/* 1 once the player takes chunks: a thread loads the decoders and opens
 * the sinks (an autovideosink probes the display: up to seconds) from
 * ptv_player_new on, so that neither the first frames nor the loop wait
 * for it; chunks pushed before are skipped. 0 before, or if p is NULL. */
int ptv_player_ready(ptv_player *p);

/* One played chunk, in order (see ptv_ts_chunk); skipped while not
 * ptv_player_ready. Returns 1 taken, 0 skipped, or:
 *   PTV_ERR_INVALID_ARG  p NULL, or ts NULL with len > 0
 *   PTV_ERR_CLOSED       playback stopped after an error (ptv_player_error)
 *   PTV_ERR_IO           the pipeline could not be built or started */
int ptv_player_push(ptv_player *p, const uint8_t *ts, size_t len, int keyframe);

/* A chunk due was missing: the next keyframe chunk follows as a
 * discontinuity. NULL is ignored. */
void ptv_player_gap(ptv_player *p);

/* NULL p: zeros. */
void ptv_player_get_stats(const ptv_player *p, ptv_player_stats *out);

/* The error's one-line message ("" if none). */
const char *ptv_player_error(const ptv_player *p);

/* Stops the pipeline (joining its threads) and frees everything; the
 * memory goes when the loop closes the uv_async_t, so the loop must run
 * once more. NULL is ignored. */
void ptv_player_free(ptv_player *p);

#ifdef __cplusplus
}
#endif
#endif
