/* ptv_pacer.h -- a token bucket for pacing datagrams (sans-I/O).
 *
 * Tokens accrue at rate_bps bits per second up to burst_bytes. A send of n
 * bytes is allowed when the bucket holds n bytes of tokens (or, for n larger
 * than the burst, when the bucket is full); the bucket may then go into
 * debt, which later refills repay, so over any long window at most
 * rate x window + burst + one datagram leaves. Time is passed in; nothing
 * here reads a clock or allocates.
 *
 * Used twice: inside each ptv_link to pace its congestion-controlled rate,
 * and once per process by the driver to hold --upload-limit across all
 * links (it calls ptv_link_write only while ptv_pacer_take succeeds). */
#ifndef PTV_PACER_H
#define PTV_PACER_H

#include <stddef.h>
#include <stdint.h>

#include "ptv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest single take; keeps the fixed-point arithmetic inside 64 bits. */
#define PTV_PACER_MAX_BYTES ((size_t)UINT32_MAX)

typedef struct {
  uint64_t rate_bps; /* 0 = unlimited */
  int64_t tokens;    /* micro-bits (1 byte = 8,000,000); negative = debt */
  int64_t cap;       /* burst in micro-bits */
  ptv_tstamp last;   /* time tokens were last brought up to date */
} ptv_pacer;

/* Starts a full bucket at `now`. rate_bps 0 means no limit.
 * Returns 0, or PTV_ERR_INVALID_ARG if p is NULL, burst_bytes is 0 or
 * burst_bytes > PTV_PACER_MAX_BYTES. */
int ptv_pacer_init(ptv_pacer *p, uint64_t rate_bps, size_t burst_bytes,
                   ptv_tstamp now);

/* Changes rate and burst from `now` on; tokens earned so far at the old rate
 * are kept (clipped to the new burst). Returns 0 or PTV_ERR_INVALID_ARG (as
 * for ptv_pacer_init). */
int ptv_pacer_set_rate(ptv_pacer *p, uint64_t rate_bps, size_t burst_bytes,
                       ptv_tstamp now);

/* Takes `bytes` if allowed now. Returns 0 (taken), PTV_ERR_AGAIN (not yet:
 * see ptv_pacer_next) or PTV_ERR_INVALID_ARG (p NULL, bytes 0 or bytes >
 * PTV_PACER_MAX_BYTES). A `now` earlier than a previous call's is treated as
 * that earlier time (the clock never runs backwards here). */
int ptv_pacer_take(ptv_pacer *p, size_t bytes, ptv_tstamp now);

/* Earliest time >= now at which ptv_pacer_take(p, bytes, t) will succeed,
 * assuming nothing else is taken meanwhile; `now` if it would succeed now.
 * Does not change p. Returns PTV_TSTAMP_MAX for invalid arguments. */
ptv_tstamp ptv_pacer_next(const ptv_pacer *p, size_t bytes, ptv_tstamp now);

#ifdef __cplusplus
}
#endif
#endif
