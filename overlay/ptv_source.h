/* ptv_source.h -- the source's chunker: a live stream as fixed-duration chunks.
 *
 * Chunk k covers stream time [epoch + k*d, epoch + (k+1)*d) and is complete,
 * hence publishable, at its end. Sizes follow the stream rate; a chunk starts
 * with a keyframe every `keyint` chunks so a joining peer can start decoding
 * at a chunk boundary. The real source (peer/) feeds real MPEG-TS sizes through
 * ptv_source_push; the simulator uses the synthetic clock.
 */
#ifndef PTV_SOURCE_H
#define PTV_SOURCE_H

#include "ptv_types.h"

typedef struct {
  ptv_chunk_id id;
  ptv_tstamp ts_us;     /* stream time of the chunk start */
  uint32_t size;        /* payload bytes */
  uint8_t keyframe;
} ptv_chunk_meta;

typedef struct {
  ptv_tstamp epoch;
  uint32_t chunk_us;
  uint32_t stream_kbps;
  uint32_t keyint;      /* chunks between keyframes, >= 1 */
  ptv_chunk_id next_id;
} ptv_source;

/* Returns 0 or PTV_ERR_INVALID_ARG (zero duration or rate). */
int ptv_source_init(ptv_source *s, ptv_tstamp epoch, uint32_t chunk_us,
                    uint32_t stream_kbps, uint32_t keyint);

/* Time at which the next chunk becomes complete. */
ptv_tstamp ptv_source_next_due(const ptv_source *s);

/* If a synthetic chunk is complete at `now`, fills *m, advances and returns 1;
 * else returns 0. */
int ptv_source_poll(ptv_source *s, ptv_tstamp now, ptv_chunk_meta *m);

/* Size in bytes of one chunk at the configured rate. */
uint32_t ptv_source_chunk_bytes(const ptv_source *s);

#endif
