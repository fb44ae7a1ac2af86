/* test_evq.c -- the calendar event queue pops in exactly the heap's order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ptv_sim_evq.h"
#include "test_rand.h"

static ptv_event ev(ptv_tstamp t, uint32_t a) {
  ptv_event e;
  memset(&e, 0, sizeof(e));
  e.t = t;
  e.a = a;
  e.kind = a % 7u;
  e.b = (uint64_t)a << 20;
  return e;
}

static void test_empty(void **state) {
  (void)state;
  ptv_evq q;
  assert_int_equal(ptv_evq_init(&q), 0);
  ptv_event e;
  assert_int_equal(ptv_evq_pop(&q, &e), 0);
  assert_true(ptv_evq_peek_time(&q) == PTV_TSTAMP_MAX);
  assert_null(ptv_evq_ahead(&q, 0));
  ptv_evq_free(&q);
}

/* Same time: scheduling order, across the late heap, the wheel and the far
 * heap. */
static void test_ties_keep_push_order(void **state) {
  (void)state;
  ptv_evq q;
  assert_int_equal(ptv_evq_init(&q), 0);
  ptv_tstamp far = 5 * PTV_S; /* beyond the wheel */
  for (uint32_t i = 0; i < 10; i++) {
    ptv_event e = ev(i % 2 ? far : 1000, i);
    assert_int_equal(ptv_evq_push(&q, &e), 0);
  }
  ptv_event e;
  for (uint32_t i = 0; i < 10; i += 2) {
    assert_int_equal(ptv_evq_pop(&q, &e), 1);
    assert_true(e.t == 1000);
    assert_int_equal(e.a, i);
  }
  /* Pushed now at the far time: after the five already waiting there. */
  for (uint32_t i = 10; i < 13; i++) {
    ptv_event x = ev(far, i);
    assert_int_equal(ptv_evq_push(&q, &x), 0);
  }
  uint32_t want[] = {1, 3, 5, 7, 9, 10, 11, 12};
  for (int i = 0; i < 8; i++) {
    assert_true(ptv_evq_peek_time(&q) == far);
    assert_int_equal(ptv_evq_pop(&q, &e), 1);
    assert_int_equal(e.a, want[i]);
  }
  assert_int_equal(ptv_evq_pop(&q, &e), 0);
  assert_int_equal(q.n, 0);
  ptv_evq_free(&q);
}

/* A simulation-like workload: pops interleaved with pushes at now + delays
 * from 0 to beyond the wheel, many ties; the queue must match the heap
 * event for event, and ahead() must predict the next pops while nothing is
 * pushed. */
static void run_against_heap(uint64_t seed, ptv_tstamp maxdelay, int tiny) {
  rng_state = seed;
  ptv_evq q;
  ptv_heap h;
  assert_int_equal(ptv_evq_init(&q), 0);
  ptv_heap_init(&h);
  uint32_t next = 0;
  for (int i = 0; i < 2000; i++) {
    ptv_event e = ev((ptv_tstamp)(xrand() % (uint64_t)maxdelay), next++);
    if (tiny) e.t &= ~(ptv_tstamp)1023; /* many exact ties */
    assert_int_equal(ptv_evq_push(&q, &e), 0);
    assert_int_equal(ptv_heap_push(&h, &e), 0);
  }
  ptv_tstamp now = 0;
  for (int step = 0; step < 200000; step++) {
    assert_true(ptv_evq_peek_time(&q) == ptv_heap_peek_time(&h));
    const ptv_event *ah = ptv_evq_ahead(&q, 1);
    ptv_event predicted;
    int have_pred = ah != NULL && q.late.n == 0; /* the pop comes from cur */
    if (ah) predicted = *ah;
    ptv_event a, b;
    int ra = ptv_evq_pop(&q, &a), rb = ptv_heap_pop(&h, &b);
    assert_int_equal(ra, rb);
    if (!ra) break;
    assert_true(a.t == b.t);
    assert_int_equal(a.a, b.a);
    assert_int_equal(a.kind, b.kind);
    assert_true(a.b == b.b);
    assert_true(a.t >= now);
    now = a.t;
    int pushes = (int)(xrand() % 3); /* 0, 1 or 2: the queue drains slowly */
    if (step > 150000) pushes = 0;
    if (pushes == 0 && have_pred) {
      /* ahead(1) before the pop is the next event now */
      assert_true(ptv_evq_peek_time(&q) == predicted.t);
      const ptv_event *nx = ptv_evq_ahead(&q, 0);
      assert_non_null(nx);
      assert_int_equal(nx->a, predicted.a);
    }
    for (int k = 0; k < pushes; k++) {
      uint64_t r = xrand();
      ptv_tstamp d = r % 8 == 0 ? 0 : (ptv_tstamp)(xrand() % (uint64_t)maxdelay);
      ptv_event e = ev(now + d, next++);
      if (tiny && d) e.t = now + (d & ~(ptv_tstamp)1023);
      assert_int_equal(ptv_evq_push(&q, &e), 0);
      assert_int_equal(ptv_heap_push(&h, &e), 0);
    }
    assert_int_equal(q.n, h.n);
  }
  assert_int_equal(q.n, 0);
  ptv_evq_free(&q);
  ptv_heap_free(&h);
}

static void test_matches_heap_short_delays(void **state) {
  (void)state;
  run_against_heap(1, 150 * PTV_MS, 0);
}
static void test_matches_heap_long_delays(void **state) {
  (void)state;
  run_against_heap(2, 4 * PTV_S, 0); /* most go through the far heap */
}
static void test_matches_heap_ties(void **state) {
  (void)state;
  run_against_heap(3, 2 * PTV_S, 1);
}
/* Sparse: long empty stretches make the queue jump to the far heap. */
static void test_matches_heap_sparse(void **state) {
  (void)state;
  run_against_heap(4, 600 * PTV_S, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_ties_keep_push_order),
      cmocka_unit_test(test_matches_heap_short_delays),
      cmocka_unit_test(test_matches_heap_long_delays),
      cmocka_unit_test(test_matches_heap_ties),
      cmocka_unit_test(test_matches_heap_sparse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
