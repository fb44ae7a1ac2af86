/* ptv_sim_evq.h -- the simulator's event queue: a calendar queue (timing
 * wheel) in front of a heap.
 *
 * Events pop in exactly the order of ptv_heap: by (time, insertion
 * sequence). With 10,000 peers about 150,000 events are pending; a heap pop
 * then walks ~9 levels of cold memory. Here an event is appended to the
 * bucket of its time (PTV_EVQ_BUCKET_US wide, PTV_EVQ_BUCKETS of them, about
 * one second ahead); a bucket is sorted once, by a stable counting sort on
 * the time within the bucket, when the clock reaches it, and then read in
 * order. Events beyond the wheel wait in a heap; events pushed into the
 * bucket being read wait in a small heap merged on pop. Because the order is
 * known in advance, ptv_evq_ahead() lets the caller prefetch what the next
 * events will touch. */
#ifndef PTV_SIM_EVQ_H
#define PTV_SIM_EVQ_H

#include "ptv_sim_heap.h"

#define PTV_EVQ_SHIFT 8 /* bucket width 2^8 = 256 us */
#define PTV_EVQ_BUCKET_US ((ptv_tstamp)1 << PTV_EVQ_SHIFT)
#define PTV_EVQ_BUCKETS 4096u /* power of two: the wheel spans 1.05 s */

typedef struct {
  ptv_event *v;
  uint32_t n, cap;
} ptv_evq_bucket;

typedef struct {
  ptv_event *cur; /* the current bucket, sorted; read from cur_i */
  size_t cur_n, cur_i, cur_cap;
  ptv_heap late;  /* pushed at or before the current bucket after it was sorted */
  ptv_evq_bucket *wheel;
  uint64_t base;  /* bucket number (t >> PTV_EVQ_SHIFT) of the current bucket */
  size_t in_wheel;
  ptv_heap far;   /* beyond the wheel */
  uint64_t seq;
  size_t n;       /* events pending */
} ptv_evq;

/* Returns 0 or PTV_ERR_NOMEM. */
int ptv_evq_init(ptv_evq *q);
void ptv_evq_free(ptv_evq *q);
/* Inserts a copy of *e (its seq is assigned here). Returns 0 or
 * PTV_ERR_NOMEM. */
int ptv_evq_push(ptv_evq *q, const ptv_event *e);
/* Removes the earliest event into *e. Returns 1, or 0 if empty. Moving on to
 * the next bucket may allocate; if that fails the process aborts (a run
 * cannot go on without its events). */
int ptv_evq_pop(ptv_evq *q, ptv_event *e);
/* Earliest time, or PTV_TSTAMP_MAX if empty. May sort the next bucket. */
ptv_tstamp ptv_evq_peek_time(ptv_evq *q);
/* The k-th next event of the current bucket (k = 0: the next one), or NULL.
 * A hint for prefetching only: an event pushed since may come first. */
static inline const ptv_event *ptv_evq_ahead(const ptv_evq *q, size_t k) {
  return q->cur_i + k < q->cur_n ? &q->cur[q->cur_i + k] : NULL;
}

#endif
