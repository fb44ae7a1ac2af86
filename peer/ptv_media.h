/* ptv_media.h -- a media input: a live test pattern, a file, a network
 * stream or a camera, as H.264 + AAC in MPEG-TS cut into chunks for the
 * broadcaster.
 *
 * A GStreamer pipeline decodes the input, encodes video with x264 (zero
 * latency, one keyframe every chunk_us) and audio to AAC, and multiplexes
 * both into MPEG-TS. The TS packets are cut into chunks that a player can
 * join at: a chunk starts at a TS packet boundary, and normally with a
 * video keyframe (preceded by the PAT and PMT the multiplexer writes there).
 *
 * Inputs:
 *   "test"  a live 640x360 30 fps moving ball with the wall clock and a frame
 *           counter burned in, and a 440 Hz tone. Paced by the clock.
 *   a path  a local file in any container and codecs GStreamer can decode,
 *           always re-encoded. Video is re-timed to 30 fps (so keyframes
 *           fall on chunk edges) at the file's own size; a file without
 *           audio gives a video-only stream. ptv_media_new prerolls it, so
 *           a file that cannot be decoded or has no video fails there.
 *           Files are NOT paced: chunks come as fast as the machine
 *           decodes and encodes, so a caller that broadcasts must pace
 *           them by pts_us itself (ptv_media_hold bounds how far ahead it
 *           has to keep them).
 *   "udp://HOST:PORT"  MPEG-TS over UDP (what `ffmpeg -f mpegts udp://...`
 *           and OBS send), received on HOST:PORT (a multicast HOST is
 *           joined).
 *   "srt://HOST:PORT[?mode=listener|caller&...]"  SRT (srtsrc); HOST may
 *           be empty for a listener.
 *   "v4l2:///dev/videoN"  a camera (video only).
 *   The last three are live (ptv_media_live): chunks come as the input
 *   delivers. Their H.264 video is passed through unless reencode is set:
 *   parsed, not decoded, with SPS/PPS in front of every keyframe; the
 *   keyframe interval is then the sender's, so chunks keep chunk_us on
 *   average but start with a keyframe only where one falls near a chunk
 *   edge (the others are flagged keyframe=0). AAC audio is passed through
 *   too; other codecs are decoded and encoded as for a file. A live input
 *   that stops delivering (no data for 2 x chunk_us, or its pipeline
 *   failed or ended) stalls: on_stall(1) once; a pipeline that failed or
 *   ended is rebuilt after 1, 2, 4, then every 5 s, a silent one at once
 *   if it had made a chunk (not for srt://, which reports a lost caller
 *   itself), and then waits; on_stall(0) comes with data, before its
 *   first chunk.
 *   Anything else (other URIs such as rtsp://) is refused.
 *
 * Threading: GStreamer runs its own streaming threads; every callback below
 * is called on the libuv loop's thread only, from libuv handles of the
 * media. All functions must be called from that thread.
 *
 * Functions that return int return 0 on success or a negative PTV_ERR_*
 * code (ptv_err.h).
 */
#ifndef PTV_MEDIA_H
#define PTV_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptv_media ptv_media;

typedef struct ptv_media_config {
  const char *input;   /* "test", a file path or a URI (copied) */
  uint32_t video_kbps; /* x264 target bitrate; 0: 1000 */
  uint32_t chunk_us;   /* media time per chunk, 100 ms..10 s; 0: 500 ms */
  int reencode;        /* live inputs: re-encode H.264 and AAC too */
  /* "test" only (benchmarks): a file that gets one line per video frame as
   * it is captured (entering the overlays, before the encoder): its PTS as
   * mpegtsmux writes it in the stream (90 kHz, 33 bits) and the wall-clock
   * time (CLOCK_REALTIME, microseconds since the epoch): "pts90 wall_us".
   * NULL: none. A file that cannot be written fails ptv_media_new with
   * PTV_ERR_IO. */
  const char *capture_log;
} ptv_media_config;

typedef struct ptv_media_callbacks {
  /* One chunk: len is a multiple of 188 and every 188 bytes start with the
   * TS sync byte 0x47. keyframe: the chunk starts with a video keyframe
   * (a player can start decoding here); 0 only when no keyframe came for
   * 2 x chunk_us, for data before the first keyframe, for passed-through
   * video between the sender's keyframes, and for the last data before a
   * live input stalled. pts_us: media time (the pipeline's running time)
   * of the chunk's first packet, which for a keyframe chunk is its
   * keyframe; it grows by chunk_us per chunk on average (restarting when a
   * stalled live input's pipeline is rebuilt). The bytes are valid only
   * during the call. */
  void (*on_chunk)(void *user, const uint8_t *ts, size_t len, int keyframe, uint64_t pts_us);
  /* Files and "test" only: called once, last: error=0 at the end of the
   * input (after its last, possibly short, chunk); error=1 when the
   * pipeline failed, with a one-line message (e.g. "in.mkv: Internal data
   * stream error.").
   * The media may be freed from inside this callback, or from on_chunk. */
  void (*on_end)(void *user, int error, const char *message);
  /* Live inputs only (may be NULL): stalled=1 once when the input stops
   * delivering, with a one-line reason ("udp://...: no data for 0.5 s",
   * or GStreamer's error); stalled=0 when data comes again, just before
   * the first chunk after the stall. The media may be freed from here. */
  void (*on_stall)(void *user, int stalled, const char *message);
  /* What the pipeline does with each stream, one line each, e.g. "video
   * H.264 passed through (not re-encoded)" (may be NULL; not for "test").
   * The media may be freed from here. */
  void (*on_info)(void *user, const char *message);
} ptv_media_callbacks;

/* Checks the input and builds (but does not start) the pipeline; a file
 * is prerolled (decoded up to its first encoded frame; up to 10 s).
 * err/err_len (may be NULL/0) receives a one-line message on failure.
 * Returns 0 and sets *out, or:
 *   PTV_ERR_INVALID_ARG  NULL argument, chunk_us out of range, an input that
 *                        is neither "test", a path nor a udp://, srt:// or
 *                        v4l2:// URI (the message says "unsupported input"),
 *                        a path that is not a regular file, or a v4l2://
 *                        path that is not a character device
 *   PTV_ERR_PARSE        a udp:// or srt:// URI without HOST:PORT (port
 *                        1..65535), or a v4l2:// one without an absolute
 *                        device path
 *   PTV_ERR_NOT_FOUND    the file or device does not exist (checked before
 *                        any GStreamer work), or a GStreamer element the
 *                        pipeline needs is not installed (the message names
 *                        it and its Debian package)
 *   PTV_ERR_MALFORMED    the file cannot be decoded (not a media file,
 *                        truncated before its index, ...; or no stream
 *                        showed within 3 s) or has no video
 *   PTV_ERR_IO           the file cannot be read, GStreamer failed to
 *                        initialise, the libuv handles could not be made,
 *                        the file did not preroll within 10 s, or
 *                        capture_log cannot be written
 *   PTV_ERR_NOMEM        allocation failed */
int ptv_media_new(ptv_media **out, uv_loop_t *loop, const ptv_media_config *c,
                  const ptv_media_callbacks *cb, void *user, char *err, size_t err_len);

/* Starts the pipeline; chunks follow on the loop. Errors found later in a
 * file or the test pattern arrive as on_end(error=1); a live input's
 * arrive as on_stall(1), and on_end never comes for it. Returns 0, or:
 *   PTV_ERR_INVALID_ARG  m is NULL or was already started
 *   PTV_ERR_IO           GStreamer refused to start; ptv_media_error()
 *                        says why, and no callback will follow */
int ptv_media_start(ptv_media *m);

/* The last error's one-line message ("" if none): the reason start failed,
 * or the message given to on_end. Valid until the next call on m. */
const char *ptv_media_error(const ptv_media *m);

/* 1 if the input is live (paced by its arrival or clock: "test", udp://,
 * srt://, v4l2://), 0 for a file (or m NULL). */
int ptv_media_live(const ptv_media *m);

/* Flow control, for a consumer that paces a file (which decodes faster
 * than real time) and must not buffer all of it: while held (hold=1) no
 * callback is made; chunks wait in the media's queue, and once that holds
 * 16 MiB GStreamer's streaming thread waits too, so the pipeline stops
 * decoding and memory stays bounded. hold=0 resumes: what waits is
 * delivered from the loop (not from inside this call). A callback may
 * hold; the chunks after it then wait. Meant for files: a live input held
 * for long falls behind its clock. NULL is ignored. */
void ptv_media_hold(ptv_media *m, int hold);

/* Stops the pipeline (joining GStreamer's streaming threads) and frees
 * everything, in any state, also from inside a callback; no callback
 * follows. The memory itself goes when the loop runs the uv_async_t's
 * close callback, so the loop must run once more. NULL is ignored. */
void ptv_media_free(ptv_media *m);

#ifdef __cplusplus
}
#endif
#endif
