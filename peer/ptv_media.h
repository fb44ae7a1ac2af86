/* ptv_media.h -- a media input: a live test pattern or a file, encoded to
 * H.264 + AAC in MPEG-TS and cut into chunks for the broadcaster.
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
 *   a path  a local file in any container and codecs GStreamer can decode.
 *           Video is re-timed to 30 fps (so keyframes fall on chunk edges)
 *           at the file's own size; a file without audio gives a video-only
 *           stream. Files are NOT paced: chunks come as fast as the
 *           machine decodes and encodes, so a caller that broadcasts must
 *           pace them by pts_us itself (ptv_media_hold bounds how far
 *           ahead it has to keep them).
 *   Anything else (URIs such as rtsp://, devices) is refused.
 *
 * Threading: GStreamer runs its own streaming threads; every callback below
 * is called on the libuv loop's thread only, from a uv_async_t. All
 * functions must be called from that thread.
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
  const char *input;   /* "test" or a file path (copied) */
  uint32_t video_kbps; /* x264 target bitrate; 0: 1000 */
  uint32_t chunk_us;   /* media time per chunk, 100 ms..10 s; 0: 500 ms */
} ptv_media_config;

typedef struct ptv_media_callbacks {
  /* One chunk: len is a multiple of 188 and every 188 bytes start with the
   * TS sync byte 0x47. keyframe: the chunk starts with a video keyframe
   * (a player can start decoding here); 0 only when no keyframe came for
   * 2 x chunk_us, or for data before the first keyframe. pts_us: media time
   * (the pipeline's running time) of the chunk's first packet, which for a
   * keyframe chunk is its keyframe; it grows by about chunk_us per chunk.
   * The bytes are valid only during the call. */
  void (*on_chunk)(void *user, const uint8_t *ts, size_t len, int keyframe, uint64_t pts_us);
  /* Called once, last: error=0 at the end of the input (after its last,
   * possibly short, chunk); error=1 when the pipeline failed, with a
   * one-line message (e.g. "in.txt: Could not determine type of stream.").
   * The media may be freed from inside this callback, or from on_chunk. */
  void (*on_end)(void *user, int error, const char *message);
} ptv_media_callbacks;

/* Checks the input and builds (but does not start) the pipeline.
 * err/err_len (may be NULL/0) receives a one-line message on failure.
 * Returns 0 and sets *out, or:
 *   PTV_ERR_INVALID_ARG  NULL argument, chunk_us out of range, an input that
 *                        is neither "test" nor a path (e.g. "rtsp://x"), or
 *                        a path that is not a regular file
 *   PTV_ERR_NOT_FOUND    the file does not exist (checked before any
 *                        GStreamer work), or a GStreamer element the
 *                        pipeline needs is not installed (the message names
 *                        it and its Debian package)
 *   PTV_ERR_IO           the file cannot be read, GStreamer failed to
 *                        initialise, or the libuv handle could not be made
 *   PTV_ERR_NOMEM        allocation failed */
int ptv_media_new(ptv_media **out, uv_loop_t *loop, const ptv_media_config *c,
                  const ptv_media_callbacks *cb, void *user, char *err, size_t err_len);

/* Starts the pipeline; chunks follow on the loop. Errors found later (a
 * file GStreamer cannot decode, a file without video) arrive as
 * on_end(error=1). Returns 0, or:
 *   PTV_ERR_INVALID_ARG  m is NULL or was already started
 *   PTV_ERR_IO           GStreamer refused to start; ptv_media_error()
 *                        says why, and no callback will follow */
int ptv_media_start(ptv_media *m);

/* The last error's one-line message ("" if none): the reason start failed,
 * or the message given to on_end. Valid until the next call on m. */
const char *ptv_media_error(const ptv_media *m);

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
