#include "ptv_sim_evq.h"
#include "ptv_err.h"
#include <stdlib.h>
#include <string.h>

#define MASK ((uint64_t)PTV_EVQ_BUCKETS - 1)

static uint64_t bucket_of(ptv_tstamp t) { return (uint64_t)t >> PTV_EVQ_SHIFT; }

static int before(const ptv_event *x, const ptv_event *y) {
  return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

int ptv_evq_init(ptv_evq *q) {
  memset(q, 0, sizeof(*q));
  ptv_heap_init(&q->late);
  ptv_heap_init(&q->far);
  q->wheel = calloc(PTV_EVQ_BUCKETS, sizeof(*q->wheel));
  return q->wheel ? 0 : PTV_ERR_NOMEM;
}

void ptv_evq_free(ptv_evq *q) {
  if (q->wheel)
    for (size_t i = 0; i < PTV_EVQ_BUCKETS; i++) free(q->wheel[i].v);
  free(q->wheel);
  free(q->cur);
  ptv_heap_free(&q->late);
  ptv_heap_free(&q->far);
  memset(q, 0, sizeof(*q));
}

static int append(ptv_evq_bucket *b, const ptv_event *e) {
  if (b->n == b->cap) {
    uint32_t nc = b->cap ? b->cap * 2 : 16;
    ptv_event *nv = realloc(b->v, nc * sizeof(*nv));
    if (!nv) return PTV_ERR_NOMEM;
    b->v = nv;
    b->cap = nc;
  }
  b->v[b->n++] = *e;
  return 0;
}

/* Where an event with a seq goes: the late heap at or before the current
 * bucket, the wheel within reach, else the far heap. */
static int place(ptv_evq *q, const ptv_event *e) {
  uint64_t b = bucket_of(e->t);
  if (b <= q->base) return ptv_heap_insert(&q->late, e);
  if (b - q->base < PTV_EVQ_BUCKETS) {
    int rv = append(&q->wheel[b & MASK], e);
    if (rv == 0) q->in_wheel++;
    return rv;
  }
  return ptv_heap_insert(&q->far, e);
}

int ptv_evq_push(ptv_evq *q, const ptv_event *e) {
  ptv_event x = *e;
  x.seq = q->seq++;
  int rv = place(q, &x);
  if (rv == 0) q->n++;
  return rv;
}

/* Sorts bucket b into cur by time within the bucket. The bucket holds its
 * events in seq order (those moved from the far heap come first and in
 * (t, seq) order, all with smaller seqs than the ones pushed directly), so
 * a stable sort on t alone gives (t, seq) order. */
static int load(ptv_evq *q, ptv_evq_bucket *b) {
  if (b->n > q->cur_cap) {
    size_t nc = q->cur_cap ? q->cur_cap : 256;
    while (nc < b->n) nc *= 2;
    ptv_event *nv = realloc(q->cur, nc * sizeof(*nv));
    if (!nv) return PTV_ERR_NOMEM;
    q->cur = nv;
    q->cur_cap = nc;
  }
  uint32_t count[PTV_EVQ_BUCKET_US + 1];
  memset(count, 0, sizeof(count));
  for (uint32_t i = 0; i < b->n; i++) count[(b->v[i].t & (PTV_EVQ_BUCKET_US - 1)) + 1]++;
  for (size_t k = 1; k <= PTV_EVQ_BUCKET_US; k++) count[k] += count[k - 1];
  for (uint32_t i = 0; i < b->n; i++) q->cur[count[b->v[i].t & (PTV_EVQ_BUCKET_US - 1)]++] = b->v[i];
  q->cur_n = b->n;
  q->cur_i = 0;
  q->in_wheel -= b->n;
  b->n = 0;
  return 0;
}

/* With the current bucket and the late heap drained: moves on to the next
 * bucket holding events. Returns 1, or 0 if the queue is empty. On running
 * out of memory the process cannot go on deterministically: it exits. */
static int advance(ptv_evq *q) {
  for (;;) {
    if (q->in_wheel == 0) {
      if (q->far.n == 0) return 0;
      q->base = bucket_of(q->far.v[0].t); /* jump over the empty stretch */
    } else {
      q->base++;
    }
    /* Far events whose bucket came within reach join the wheel now, before
     * any event pushed directly there (those have larger seqs). */
    while (q->far.n && bucket_of(q->far.v[0].t) - q->base < PTV_EVQ_BUCKETS) {
      ptv_event e;
      ptv_heap_pop(&q->far, &e);
      if (append(&q->wheel[bucket_of(e.t) & MASK], &e) != 0) abort();
      q->in_wheel++;
    }
    ptv_evq_bucket *b = &q->wheel[q->base & MASK];
    if (b->n) {
      if (load(q, b) != 0) abort();
      return 1;
    }
  }
}

static int ready(ptv_evq *q) {
  if (q->cur_i < q->cur_n || q->late.n) return 1;
  return advance(q);
}

ptv_tstamp ptv_evq_peek_time(ptv_evq *q) {
  if (!ready(q)) return PTV_TSTAMP_MAX;
  if (q->cur_i < q->cur_n && (!q->late.n || before(&q->cur[q->cur_i], &q->late.v[0])))
    return q->cur[q->cur_i].t;
  return q->late.v[0].t;
}

int ptv_evq_pop(ptv_evq *q, ptv_event *e) {
  if (!ready(q)) return 0;
  if (q->cur_i < q->cur_n && (!q->late.n || before(&q->cur[q->cur_i], &q->late.v[0])))
    *e = q->cur[q->cur_i++];
  else
    ptv_heap_pop(&q->late, e);
  q->n--;
  return 1;
}
