/* test_heap.c -- unit tests for the simulator's event queue. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ptv_sim_heap.h"
#include "test_rand.h"

static ptv_event ev(ptv_tstamp t, uint32_t a) {
  ptv_event e;
  memset(&e, 0, sizeof(e));
  e.t = t;
  e.a = a;
  e.kind = a * 3u + 1u;
  e.b = (uint64_t)a << 33 | 5u;
  e.ptr = (void *)(uintptr_t)(a + 1u);
  e.seq = 0xdeadbeef; /* must be ignored: push assigns its own */
  return e;
}

static void push(ptv_heap *h, ptv_tstamp t, uint32_t a) {
  ptv_event e = ev(t, a);
  assert_int_equal(ptv_heap_push(h, &e), 0);
}

/* Checks the heap property over the whole array. */
static void check_heap(const ptv_heap *h) {
  assert_true(h->n <= h->cap);
  for (size_t i = 1; i < h->n; i++) {
    const ptv_event *p = &h->v[(i - 1) / PTV_HEAP_ARITY], *c = &h->v[i];
    assert_true(p->t < c->t || (p->t == c->t && p->seq < c->seq));
  }
}

static void test_empty(void **state) {
  ptv_heap h;
  ptv_heap_init(&h);
  ptv_event e;
  memset(&e, 0x77, sizeof(e));
  assert_int_equal(ptv_heap_pop(&h, &e), 0);
  assert_true(ptv_heap_peek_time(&h) == PTV_TSTAMP_MAX);
  assert_int_equal(h.n, 0);
  ptv_heap_free(&h);
  ptv_heap_free(&h); /* freeing twice is harmless */
}

static void test_order_by_time(void **state) {
  ptv_heap h;
  ptv_heap_init(&h);
  static const ptv_tstamp ts[] = {50, 10, 40, 30, 20, 0, 60};
  for (uint32_t i = 0; i < 7; i++) {
    push(&h, ts[i], i);
    check_heap(&h);
  }
  assert_int_equal(h.n, 7);
  assert_true(ptv_heap_peek_time(&h) == 0);
  ptv_tstamp want[] = {0, 10, 20, 30, 40, 50, 60};
  uint32_t want_a[] = {5, 1, 4, 3, 2, 0, 6};
  for (int i = 0; i < 7; i++) {
    ptv_event e;
    assert_true(ptv_heap_peek_time(&h) == want[i]);
    assert_int_equal(ptv_heap_pop(&h, &e), 1);
    assert_true(e.t == want[i]);
    assert_int_equal(e.a, want_a[i]);
    check_heap(&h);
  }
  ptv_event e;
  assert_int_equal(ptv_heap_pop(&h, &e), 0);
  assert_true(ptv_heap_peek_time(&h) == PTV_TSTAMP_MAX);
  ptv_heap_free(&h);
}

static void test_payload_preserved_seq_assigned(void **state) {
  ptv_heap h;
  ptv_heap_init(&h);
  for (uint32_t i = 0; i < 5; i++) push(&h, 100 - i, i);
  for (uint32_t k = 0; k < 5; k++) {
    ptv_event e;
    assert_int_equal(ptv_heap_pop(&h, &e), 1);
    uint32_t i = 4 - k;
    ptv_event want = ev(100 - i, i);
    assert_true(e.t == want.t);
    assert_int_equal(e.a, want.a);
    assert_int_equal(e.kind, want.kind);
    assert_true(e.b == want.b);
    assert_ptr_equal(e.ptr, want.ptr);
    assert_true(e.seq == i); /* seq counts pushes from 0 */
  }
  ptv_heap_free(&h);
}

static void test_ties_in_insertion_order(void **state) {
  ptv_heap h;
  ptv_heap_init(&h);
  /* Interleave three times; within each, FIFO. */
  for (uint32_t i = 0; i < 300; i++) push(&h, (ptv_tstamp)(1000 * (i % 3)), i);
  uint32_t last[3] = {0, 0, 0};
  int seen[3] = {0, 0, 0};
  ptv_tstamp prev_t = 0;
  ptv_event e;
  while (ptv_heap_pop(&h, &e)) {
    int g = (int)(e.t / 1000);
    assert_true(e.t >= prev_t);
    prev_t = e.t;
    if (seen[g]) assert_true(e.a > last[g]);
    assert_int_equal(e.a % 3, (uint32_t)g);
    last[g] = e.a;
    seen[g]++;
  }
  assert_int_equal(seen[0], 100);
  assert_int_equal(seen[1], 100);
  assert_int_equal(seen[2], 100);
  ptv_heap_free(&h);
}

static void test_ties_across_pops(void **state) {
  /* An event pushed later at the same time as one still queued runs after
   * it, even if other events were popped in between. */
  ptv_heap h;
  ptv_heap_init(&h);
  push(&h, 5, 0);
  push(&h, 7, 1);
  push(&h, 7, 2);
  ptv_event e;
  assert_int_equal(ptv_heap_pop(&h, &e), 1);
  assert_int_equal(e.a, 0);
  push(&h, 7, 3);
  push(&h, 6, 4);
  push(&h, 7, 5);
  uint32_t want[] = {4, 1, 2, 3, 5};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(ptv_heap_pop(&h, &e), 1);
    assert_int_equal(e.a, want[i]);
  }
  ptv_heap_free(&h);
}

static int cmp_ev(const void *x, const void *y) {
  const ptv_event *a = x, *b = y;
  if (a->t != b->t) return a->t < b->t ? -1 : 1;
  return a->a < b->a ? -1 : a->a > b->a;
}

static void test_10k_random_pop_sorted(void **state) {
  enum { N = 10000 };
  ptv_heap h;
  ptv_heap_init(&h);
  ptv_event *ref = malloc(N * sizeof(*ref));
  assert_non_null(ref);
  rng_state = 0x9e3779b97f4a7c15ULL;
  for (uint32_t i = 0; i < N; i++) {
    /* Narrow range so many events share a time. */
    ref[i] = ev(xrand() % 2000, i);
    assert_int_equal(ptv_heap_push(&h, &ref[i]), 0);
  }
  check_heap(&h);
  assert_int_equal(h.n, N);
  /* (t, insertion index) is exactly the order the heap must produce. */
  qsort(ref, N, sizeof(*ref), cmp_ev);
  for (uint32_t i = 0; i < N; i++) {
    ptv_event e;
    assert_int_equal(ptv_heap_pop(&h, &e), 1);
    assert_true(e.t == ref[i].t);
    assert_int_equal(e.a, ref[i].a);
    assert_true(e.seq == e.a);
  }
  ptv_event e;
  assert_int_equal(ptv_heap_pop(&h, &e), 0);
  free(ref);
  ptv_heap_free(&h);
}

static void test_extreme_times(void **state) {
  ptv_heap h;
  ptv_heap_init(&h);
  push(&h, PTV_TSTAMP_MAX, 0);
  push(&h, 0, 1);
  push(&h, PTV_TSTAMP_MAX - 1, 2);
  push(&h, PTV_TSTAMP_MAX, 3);
  uint32_t want[] = {1, 2, 0, 3};
  for (int i = 0; i < 4; i++) {
    ptv_event e;
    assert_int_equal(ptv_heap_pop(&h, &e), 1);
    assert_int_equal(e.a, want[i]);
  }
  /* An event at PTV_TSTAMP_MAX is still an event. */
  push(&h, PTV_TSTAMP_MAX, 9);
  assert_int_equal(h.n, 1);
  ptv_event e;
  assert_int_equal(ptv_heap_pop(&h, &e), 1);
  assert_int_equal(e.a, 9);
  ptv_heap_free(&h);
}

static void test_growth(void **state) {
  ptv_heap h;
  ptv_heap_init(&h);
  size_t prev_cap = 0;
  int grew = 0;
  /* Push in decreasing time so every push sifts to the root, across several
   * reallocations. */
  for (uint32_t i = 0; i < 5000; i++) {
    push(&h, 1000000 - i, i);
    assert_true(h.cap >= h.n);
    if (h.cap != prev_cap) {
      grew++;
      prev_cap = h.cap;
    }
    assert_true(ptv_heap_peek_time(&h) == 1000000 - i);
  }
  assert_true(grew >= 3); /* at least two reallocations beyond the first */
  assert_true(grew <= 8); /* geometric growth, not one slot at a time */
  check_heap(&h);
  for (uint32_t i = 0; i < 5000; i++) {
    ptv_event e;
    assert_int_equal(ptv_heap_pop(&h, &e), 1);
    assert_int_equal(e.a, 4999 - i);
  }
  ptv_heap_free(&h);
  assert_null(h.v);
  assert_int_equal(h.n, 0);
  assert_int_equal(h.cap, 0);
  /* Usable again after free. */
  push(&h, 3, 1);
  push(&h, 2, 2);
  ptv_event e;
  assert_int_equal(ptv_heap_pop(&h, &e), 1);
  assert_int_equal(e.a, 2);
  ptv_heap_free(&h);
}

static void test_interleaved_against_model(void **state) {
  /* Random pushes and pops compared with a sorted-array model. */
  enum { MAXN = 4000 };
  ptv_heap h;
  ptv_heap_init(&h);
  ptv_event *model = malloc(MAXN * sizeof(*model));
  assert_non_null(model);
  size_t mn = 0;
  uint32_t next = 0;
  ptv_tstamp now = 0;
  rng_state = 42;
  for (int step = 0; step < 20000; step++) {
    if (mn < MAXN && (mn == 0 || xrand() % 100 < 55)) {
      /* Schedule at or after "now", as the simulator does. */
      ptv_event x = ev(now + xrand() % 50, next++);
      assert_int_equal(ptv_heap_push(&h, &x), 0);
      size_t i = mn++;
      while (i > 0 && cmp_ev(&model[i - 1], &x) > 0) {
        model[i] = model[i - 1];
        i--;
      }
      model[i] = x;
    } else {
      ptv_event e;
      assert_true(ptv_heap_peek_time(&h) == model[0].t);
      assert_int_equal(ptv_heap_pop(&h, &e), 1);
      assert_true(e.t == model[0].t);
      assert_int_equal(e.a, model[0].a);
      now = e.t;
      memmove(model, model + 1, (mn - 1) * sizeof(*model));
      mn--;
    }
    assert_int_equal(h.n, mn);
  }
  check_heap(&h);
  free(model);
  ptv_heap_free(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty),
      cmocka_unit_test(test_order_by_time),
      cmocka_unit_test(test_payload_preserved_seq_assigned),
      cmocka_unit_test(test_ties_in_insertion_order),
      cmocka_unit_test(test_ties_across_pops),
      cmocka_unit_test(test_10k_random_pop_sorted),
      cmocka_unit_test(test_extreme_times),
      cmocka_unit_test(test_growth),
      cmocka_unit_test(test_interleaved_against_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
