#include "ptv_source.h"
#include "ptv_err.h"

int ptv_source_init(ptv_source *s, ptv_tstamp epoch, uint32_t chunk_us,
                    uint32_t stream_kbps, uint32_t keyint) {
  if (chunk_us == 0 || stream_kbps == 0) return PTV_ERR_INVALID_ARG;
  s->epoch = epoch;
  s->chunk_us = chunk_us;
  s->stream_kbps = stream_kbps;
  s->keyint = keyint ? keyint : 1;
  s->next_id = 0;
  return 0;
}

ptv_tstamp ptv_source_next_due(const ptv_source *s) {
  return s->epoch + (ptv_tstamp)(s->next_id + 1) * s->chunk_us;
}

uint32_t ptv_source_chunk_bytes(const ptv_source *s) {
  /* kbps * us / 8000 = bytes; 64-bit to avoid overflow at high rates. */
  return (uint32_t)((uint64_t)s->stream_kbps * s->chunk_us / 8000u);
}

int ptv_source_poll(ptv_source *s, ptv_tstamp now, ptv_chunk_meta *m) {
  if (now < ptv_source_next_due(s)) return 0;
  m->id = s->next_id;
  m->ts_us = s->epoch + (ptv_tstamp)s->next_id * s->chunk_us;
  m->size = ptv_source_chunk_bytes(s);
  m->keyframe = (s->next_id % s->keyint) == 0;
  s->next_id++;
  return 1;
}
