/* ptv_sim_heap.h -- the simulator's event queue: a 4-ary min-heap ordered by
 * (time, insertion sequence), so events at the same time run in the order
 * they were scheduled and a run is reproducible. */
#ifndef PTV_SIM_HEAP_H
#define PTV_SIM_HEAP_H

/* Children of v[i] are v[PTV_HEAP_ARITY * i + 1 ...]. A 4-ary heap has half
 * the depth of a binary one and a node's children share cache lines. */
#define PTV_HEAP_ARITY 4

#include "ptv_types.h"

typedef struct {
  ptv_tstamp t;
  uint64_t seq;
  uint32_t kind;
  uint32_t a;   /* kind-specific (node index, event index, ...) */
  uint64_t b;   /* kind-specific (timer version, ...) */
  void *ptr;    /* kind-specific (message) */
} ptv_event;

typedef struct {
  ptv_event *v;
  size_t n, cap;
  uint64_t seq;
} ptv_heap;

void ptv_heap_init(ptv_heap *h);
void ptv_heap_free(ptv_heap *h);
/* Inserts a copy of *e (its seq is assigned here). Returns 0 or PTV_ERR_NOMEM. */
int ptv_heap_push(ptv_heap *h, const ptv_event *e);
/* Inserts a copy of *e keeping its seq (for a caller that numbers events
 * itself, as ptv_evq does). Returns 0 or PTV_ERR_NOMEM. */
int ptv_heap_insert(ptv_heap *h, const ptv_event *e);
/* Removes the earliest event into *e. Returns 1, or 0 if empty. */
int ptv_heap_pop(ptv_heap *h, ptv_event *e);
/* Earliest time, or PTV_TSTAMP_MAX if empty. */
static inline ptv_tstamp ptv_heap_peek_time(const ptv_heap *h) {
  return h->n ? h->v[0].t : PTV_TSTAMP_MAX;
}

#endif
