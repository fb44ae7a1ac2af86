/* ptv_ts.h -- an MPEG-TS demultiplexer for the watching side, sans-I/O.
 *
 * Takes the played stream's bytes (whole 188-byte TS packets, in order),
 * finds the programme through the PAT and PMT, and reassembles the PES
 * packets of its first video and first audio stream into access units
 * (one video frame per PES, as mpegtsmux and most muxers write them; one or
 * more ADTS frames per audio PES). It also reads what a viewer's stats show
 * without decoding anything: the codecs (from the PMT's stream types), the
 * picture size and frame rate (from the H.264 sequence parameter set), the
 * frames seen and the frames lost in gaps (from the video timestamps).
 *
 * Used by peertv-peer twice: by the host, on every played chunk, for the
 * /stats "media" object (no GStreamer, so every peer can afford it), and by
 * ptv_player, which pushes the access units into its decoders. Fuzzed
 * (test/fuzz_ts.c): any byte string is safe to push.
 *
 * Video units before the first keyframe, and after ptv_ts_discont until the
 * next one, are not handed out (nor counted as frames): they cannot be
 * decoded. Packets before the first PMT are kept (up to 2048) and replayed
 * once it names the streams: mpegtsmux writes the PAT and PMT after the
 * keyframe's first packets, so a stream joined at a keyframe chunk names
 * its streams only after the frame it should start with.
 *
 * Frames lost: after ptv_ts_discont (chunks were skipped), the first video
 * unit's DTS minus the last one before the gap, in frame durations, less
 * one, is added to frames_lost (gaps over 60 s are not counted: a jump, not
 * lost frames). The frame duration is the SPS timing information's, or else
 * the last DTS step seen.
 *
 * Functions that return int return 0 or a negative PTV_ERR_* (ptv_err.h).
 */
#ifndef PTV_TS_H
#define PTV_TS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PTV_TS_PACKET 188
#define PTV_TS_NO_TS INT64_MIN /* a unit without a timestamp */

typedef struct ptv_ts ptv_ts;

enum { PTV_TS_VIDEO = 0, PTV_TS_AUDIO = 1 };

/* One access unit (the whole PES payload). pts/dts are the stream's 33-bit
 * 90 kHz values as written (PTV_TS_NO_TS if absent; dts = pts when the PES
 * has no DTS). discont: the first unit of this kind after ptv_ts_discont.
 * key: a video unit holding an IDR slice (always 1 for audio). The bytes
 * are valid only during the call. */
typedef void (*ptv_ts_unit_cb)(void *user, int kind, const uint8_t *data, size_t len, int64_t pts,
                               int64_t dts, int discont, int key);

typedef struct ptv_ts_info {
  const char *video_codec; /* "h264", "h265", "mpeg2video", "mpeg1video",
                              "unknown", or NULL before a PMT named one */
  const char *audio_codec; /* "aac", "aac_latm", "mp2", "mp3", "ac3",
                              "eac3", "unknown", or NULL */
  uint8_t video_type, audio_type; /* their PMT stream_type (0: none) */
  uint32_t width, height;  /* from the H.264 SPS (cropped); 0 if unknown */
  double fps;              /* SPS timing info, else from DTS steps; 0 */
  uint64_t video_frames;   /* video units completed */
  uint64_t audio_units;    /* audio PES completed */
  uint64_t frames_lost;    /* see above */
  uint64_t bytes;          /* bytes pushed */
  uint64_t media_us;       /* video time covered: the DTS steps between
                              consecutive units, plus one frame duration for
                              the first unit after a start or a gap */
  uint64_t bad_packets;    /* packets without the sync byte, or malformed
                              tables and PES headers, skipped */
  uint64_t chunks, chunks_skipped; /* ptv_ts_chunk: taken, skipped */
  uint64_t gaps;           /* ptv_ts_gap calls after the start */
} ptv_ts_info;

/* Returns 0 and sets *out, or PTV_ERR_INVALID_ARG (out NULL),
 * PTV_ERR_NOMEM. cb may be NULL (info only). */
int ptv_ts_new(ptv_ts **out, ptv_ts_unit_cb cb, void *user);

/* Pushes bytes; packets are cut every 188 bytes from the first byte, and a
 * trailing partial packet is kept for the next push. Units complete as the
 * next PES of their stream starts, or when a PES with a length is full;
 * the callback runs from inside this call. Returns 0, or
 * PTV_ERR_INVALID_ARG (t NULL, or buf NULL with len > 0). Malformed input
 * is skipped and counted, never an error. */
int ptv_ts_push(ptv_ts *t, const uint8_t *buf, size_t len);

/* Completes the pending units now, as if the next PES had started: for a
 * caller whose units of data (chunks) end at PES boundaries, so the last
 * frame of a chunk need not wait for the next chunk. */
void ptv_ts_flush(ptv_ts *t);

/* The next bytes do not follow the previous ones (data was skipped): drops
 * partial units and the partial packet, and marks the next units discont. */
void ptv_ts_discont(ptv_ts *t);

/* The played stream, chunk by chunk (what peertv-peer's host plays, the
 * bytes --record writes): starts at the first chunk flagged keyframe, and
 * after a gap skips chunks until the next keyframe chunk (what follows a
 * hole cannot be decoded), which is pushed after ptv_ts_discont; every
 * chunk taken is pushed and flushed (chunks end at PES boundaries).
 * Returns 1 if the chunk was taken, 0 if skipped, or PTV_ERR_INVALID_ARG
 * as ptv_ts_push. */
int ptv_ts_chunk(ptv_ts *t, const uint8_t *buf, size_t len, int keyframe);

/* A chunk due was missing (ignored before the first chunk taken). */
void ptv_ts_gap(ptv_ts *t);

void ptv_ts_get_info(const ptv_ts *t, ptv_ts_info *out);

/* NULL is ignored. */
void ptv_ts_free(ptv_ts *t);

/* Parses an H.264 sequence parameter set NAL unit (from its header byte
 * 0x67, emulation prevention bytes included) into the cropped picture size
 * and, when its VUI has timing information, the frame rate (else 0).
 * Returns 0, PTV_ERR_INVALID_ARG (NULL, or not an SPS), PTV_ERR_SHORT (it
 * ends early) or PTV_ERR_MALFORMED (a value out of range). */
int ptv_ts_parse_sps(const uint8_t *nal, size_t len, uint32_t *width, uint32_t *height, double *fps);

#ifdef __cplusplus
}
#endif
#endif
