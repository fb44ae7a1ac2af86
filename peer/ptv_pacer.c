/* ptv_pacer.c -- token bucket in fixed point (see ptv_pacer.h). */
#include "ptv_pacer.h"

#include "ptv_err.h"

#define UBITS_PER_BYTE 8000000LL /* micro-bits: rate_bps x microseconds */

/* Tokens the bucket would hold at `now` (not stored). */
static int64_t tokens_at(const ptv_pacer *p, ptv_tstamp now) {
  uint64_t dt, room;

  if (p->rate_bps == 0 || p->tokens >= p->cap || now <= p->last) {
    return p->tokens >= p->cap ? p->cap : p->tokens;
  }
  dt = now - p->last;
  room = (uint64_t)(p->cap - p->tokens);
  /* Compare in time first so rate x dt cannot overflow. */
  if (dt >= room / p->rate_bps + 1) {
    return p->cap;
  }
  return p->tokens + (int64_t)(p->rate_bps * dt);
}

static int check(size_t burst_bytes) {
  return burst_bytes == 0 || burst_bytes > PTV_PACER_MAX_BYTES
             ? PTV_ERR_INVALID_ARG
             : 0;
}

int ptv_pacer_init(ptv_pacer *p, uint64_t rate_bps, size_t burst_bytes,
                   ptv_tstamp now) {
  if (p == NULL || check(burst_bytes) != 0) {
    return PTV_ERR_INVALID_ARG;
  }
  p->rate_bps = rate_bps;
  p->cap = (int64_t)burst_bytes * UBITS_PER_BYTE;
  p->tokens = p->cap;
  p->last = now;
  return 0;
}

int ptv_pacer_set_rate(ptv_pacer *p, uint64_t rate_bps, size_t burst_bytes,
                       ptv_tstamp now) {
  if (p == NULL || check(burst_bytes) != 0) {
    return PTV_ERR_INVALID_ARG;
  }
  if (now > p->last) {
    p->tokens = tokens_at(p, now);
    p->last = now;
  }
  p->rate_bps = rate_bps;
  p->cap = (int64_t)burst_bytes * UBITS_PER_BYTE;
  if (p->tokens > p->cap) {
    p->tokens = p->cap;
  }
  return 0;
}

int ptv_pacer_take(ptv_pacer *p, size_t bytes, ptv_tstamp now) {
  int64_t cost, need;

  if (p == NULL || bytes == 0 || bytes > PTV_PACER_MAX_BYTES) {
    return PTV_ERR_INVALID_ARG;
  }
  if (p->rate_bps == 0) {
    return 0;
  }
  if (now > p->last) {
    p->tokens = tokens_at(p, now);
    p->last = now;
  }
  cost = (int64_t)bytes * UBITS_PER_BYTE;
  need = cost < p->cap ? cost : p->cap;
  if (p->tokens < need) {
    return PTV_ERR_AGAIN;
  }
  p->tokens -= cost;
  return 0;
}

ptv_tstamp ptv_pacer_next(const ptv_pacer *p, size_t bytes, ptv_tstamp now) {
  int64_t cost, need, have;
  uint64_t wait;

  if (p == NULL || bytes == 0 || bytes > PTV_PACER_MAX_BYTES) {
    return PTV_TSTAMP_MAX;
  }
  if (p->rate_bps == 0) {
    return now;
  }
  if (now < p->last) {
    now = p->last;
  }
  have = tokens_at(p, now);
  cost = (int64_t)bytes * UBITS_PER_BYTE;
  need = cost < p->cap ? cost : p->cap;
  if (have >= need) {
    return now;
  }
  wait = ((uint64_t)(need - have) + p->rate_bps - 1) / p->rate_bps;
  return now + wait;
}
