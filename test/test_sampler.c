/* test_sampler.c -- unit tests for Cyclon gossip peer sampling. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ptv_sampler.h"

#define VIEW PTV_SAMPLER_VIEW
#define SHUF PTV_SAMPLER_SHUFFLE

/* ---- helpers ------------------------------------------------------------ */

static uint64_t xs_rand(void *arg) {
  uint64_t *s = arg;
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ULL;
}

/* A random source that returns a fixed sequence, then zeros. */
typedef struct {
  const uint64_t *v;
  size_t n, i;
} seq_rng;

static uint64_t seq_rand(void *arg) {
  seq_rng *r = arg;
  return r->i < r->n ? r->v[r->i++] : 0;
}

static ptv_peer_desc mk(ptv_id id, uint8_t age) {
  ptv_peer_desc d;
  memset(&d, 0, sizeof(d));
  d.id = id;
  d.age = age;
  d.nat = (uint8_t)(id % 3);
  d.upload_kbps = id * 10;
  return d;
}

static int view_find(const ptv_sampler *s, ptv_id id) {
  for (int i = 0; i < s->n; i++)
    if (s->v[i].id == id) return i;
  return -1;
}

static int desc_find(const ptv_peer_desc *d, size_t n, ptv_id id) {
  for (size_t i = 0; i < n; i++)
    if (d[i].id == id) return (int)i;
  return -1;
}

/* The invariants every operation must keep. */
static void check_view(const ptv_sampler *s) {
  assert_true(s->n <= VIEW);
  for (int i = 0; i < s->n; i++) {
    assert_int_not_equal(s->v[i].id, s->self);
    assert_int_not_equal(s->v[i].id, PTV_ID_NONE);
    for (int j = i + 1; j < s->n; j++) assert_int_not_equal(s->v[i].id, s->v[j].id);
  }
}

/* Fills s with ids first..first+n-1, ages given by age(i) = i % 50. */
static void fill(ptv_sampler *s, ptv_id first, int n) {
  for (int i = 0; i < n; i++) {
    ptv_peer_desc d = mk(first + (ptv_id)i, (uint8_t)(i % 50));
    ptv_sampler_add(s, &d);
  }
}

/* ---- init / add / remove ---------------------------------------------- */

static void test_init(void **state) {
  ptv_sampler s;
  memset(&s, 0xee, sizeof(s));
  ptv_sampler_init(&s, 7);
  assert_int_equal(s.self, 7);
  assert_int_equal(s.n, 0);
}

static void test_add_ignores_self_and_none(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 7);
  ptv_peer_desc d = mk(7, 0);
  ptv_sampler_add(&s, &d);
  d = mk(PTV_ID_NONE, 0);
  ptv_sampler_add(&s, &d);
  assert_int_equal(s.n, 0);
  d = mk(8, 3);
  ptv_sampler_add(&s, &d);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.v[0].id, 8);
  assert_int_equal(s.v[0].age, 3);
  assert_int_equal(s.v[0].upload_kbps, 80);
}

static void test_add_refresh_keeps_younger(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  ptv_peer_desc d = mk(5, 10);
  ptv_sampler_add(&s, &d);
  /* Older copy: ignored, including its other fields. */
  d = mk(5, 20);
  d.upload_kbps = 9999;
  ptv_sampler_add(&s, &d);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.v[0].age, 10);
  assert_int_equal(s.v[0].upload_kbps, 50);
  /* Younger copy: replaces. */
  d = mk(5, 2);
  d.upload_kbps = 1234;
  ptv_sampler_add(&s, &d);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.v[0].age, 2);
  assert_int_equal(s.v[0].upload_kbps, 1234);
  check_view(&s);
}

static void test_add_full_evicts_oldest(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 0);
  for (int i = 0; i < VIEW; i++) {
    /* id 100+i, age 10 except id 113 which is oldest */
    ptv_peer_desc d = mk(100 + (ptv_id)i, i == 13 ? 200 : 10);
    ptv_sampler_add(&s, &d);
  }
  assert_int_equal(s.n, VIEW);
  ptv_peer_desc d = mk(500, 0);
  ptv_sampler_add(&s, &d);
  assert_int_equal(s.n, VIEW);
  assert_true(view_find(&s, 500) >= 0);
  assert_int_equal(view_find(&s, 113), -1);
  for (int i = 0; i < VIEW; i++)
    if (i != 13) assert_true(view_find(&s, 100 + (ptv_id)i) >= 0);
  check_view(&s);

  /* Refreshing an entry already present never evicts anyone. */
  d = mk(500, 0);
  ptv_sampler_add(&s, &d);
  assert_int_equal(s.n, VIEW);
  for (int i = 0; i < VIEW; i++)
    if (i != 13) assert_true(view_find(&s, 100 + (ptv_id)i) >= 0);
}

static void test_view_bounded_many_adds(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 42);
  uint64_t rs = 99;
  for (int i = 0; i < 2000; i++) {
    ptv_peer_desc d = mk((ptv_id)(xs_rand(&rs) % 60), (uint8_t)(xs_rand(&rs) % 256));
    ptv_sampler_add(&s, &d);
    check_view(&s);
  }
  assert_int_equal(s.n, VIEW);
}

static void test_remove(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 0);
  fill(&s, 1, 5);
  assert_int_equal(ptv_sampler_remove(&s, 3), 1);
  assert_int_equal(s.n, 4);
  assert_int_equal(view_find(&s, 3), -1);
  assert_int_equal(ptv_sampler_remove(&s, 3), 0);
  assert_int_equal(ptv_sampler_remove(&s, 77), 0);
  assert_int_equal(s.n, 4);
  for (ptv_id id = 1; id <= 5; id++)
    if (id != 3) assert_true(view_find(&s, id) >= 0);
  /* Removing the last slot and down to empty. */
  assert_int_equal(ptv_sampler_remove(&s, s.v[s.n - 1].id), 1);
  while (s.n) assert_int_equal(ptv_sampler_remove(&s, s.v[0].id), 1);
  assert_int_equal(ptv_sampler_remove(&s, 1), 0);
}

/* ---- shuffle start ------------------------------------------------------ */

static void test_shuffle_start_empty(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 9);
  ptv_peer_desc me = mk(9, 0), out[SHUF];
  ptv_id target = 1234;
  uint64_t rs = 1;
  assert_int_equal(ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target), 0);
  assert_int_equal(target, PTV_ID_NONE);
  assert_int_equal(s.n, 0);
}

static void test_shuffle_start_single_entry(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 9);
  ptv_peer_desc d = mk(4, 7);
  ptv_sampler_add(&s, &d);
  ptv_peer_desc me = mk(9, 33), out[SHUF];
  ptv_id target = PTV_ID_NONE;
  uint64_t rs = 1;
  assert_int_equal(ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target), 1);
  assert_int_equal(target, 4);
  assert_int_equal(s.n, 0);
  assert_int_equal(out[0].id, 9);
  assert_int_equal(out[0].age, 0);
}

static void test_shuffle_start_full(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 9);
  uint8_t ages[VIEW];
  for (int i = 0; i < VIEW; i++) {
    ages[i] = (uint8_t)(i * 3 % 40); /* distinct except the one we bump */
    if (i == 11) ages[i] = 90;          /* the unique oldest: id 211 */
    ptv_peer_desc d = mk(200 + (ptv_id)i, ages[i]);
    ptv_sampler_add(&s, &d);
  }
  ptv_peer_desc me = mk(9, 77); /* caller's own age is overridden */
  me.upload_kbps = 4321;
  ptv_peer_desc out[SHUF];
  ptv_id target = PTV_ID_NONE;
  uint64_t rs = 12345;
  size_t k = ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target);
  assert_int_equal(k, SHUF);
  assert_int_equal(target, 211);
  assert_int_equal(s.n, VIEW - 1);
  assert_int_equal(view_find(&s, 211), -1);
  /* Self first, fresh. */
  assert_int_equal(out[0].id, 9);
  assert_int_equal(out[0].age, 0);
  assert_int_equal(out[0].upload_kbps, 4321);
  /* Every remaining entry aged by one. */
  for (int i = 0; i < VIEW; i++) {
    if (i == 11) continue;
    int j = view_find(&s, 200 + (ptv_id)i);
    assert_true(j >= 0);
    assert_int_equal(s.v[j].age, ages[i] + 1);
  }
  /* The others are distinct view entries (aged copies), never the target. */
  for (size_t i = 1; i < k; i++) {
    assert_int_not_equal(out[i].id, 211);
    assert_int_not_equal(out[i].id, 9);
    int j = view_find(&s, out[i].id);
    assert_true(j >= 0);
    assert_memory_equal(&out[i], &s.v[j], sizeof(out[i]));
    assert_int_equal(desc_find(out + i + 1, k - i - 1, out[i].id), -1);
  }
  check_view(&s);
}

static void test_shuffle_start_small_view(void **state) {
  /* Fewer than SHUFFLE-1 others: sends all of them plus self. */
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  fill(&s, 10, 4); /* ages 0..3, oldest id 13 */
  ptv_peer_desc me = mk(1, 0), out[SHUF];
  ptv_id target;
  uint64_t rs = 5;
  size_t k = ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target);
  assert_int_equal(target, 13);
  assert_int_equal(k, 4); /* self + 3 */
  for (ptv_id id = 10; id <= 12; id++) assert_true(desc_find(out, k, id) >= 0);
  assert_int_equal(desc_find(out, k, 13), -1);
}

static void test_shuffle_start_rnd_extremes(void **state) {
  /* A random source returning huge values must still pick in range and
   * without repeats. */
  static const uint64_t big[] = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX,
                                 1ULL << 63, UINT64_MAX, 3, UINT64_MAX};
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  fill(&s, 10, VIEW);
  seq_rng r = {big, sizeof(big) / sizeof(big[0]), 0};
  ptv_peer_desc me = mk(1, 0), out[SHUF];
  ptv_id target;
  size_t k = ptv_sampler_shuffle_start(&s, &me, seq_rand, &r, out, &target);
  assert_int_equal(k, SHUF);
  for (size_t i = 1; i < k; i++) {
    assert_true(view_find(&s, out[i].id) >= 0);
    assert_int_equal(desc_find(out + i + 1, k - i - 1, out[i].id), -1);
  }
}

static void test_ages_saturate(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  ptv_peer_desc d;
  d = mk(10, 255);
  ptv_sampler_add(&s, &d);
  d = mk(11, 254);
  ptv_sampler_add(&s, &d);
  d = mk(12, 255);
  ptv_sampler_add(&s, &d);
  d = mk(13, 0);
  ptv_sampler_add(&s, &d);
  ptv_peer_desc me = mk(1, 0), out[SHUF];
  ptv_id target;
  uint64_t rs = 3;
  ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target);
  /* First oldest at 255 (id 10) leaves; the others saturate, not wrap. */
  assert_int_equal(target, 10);
  assert_int_equal(s.v[view_find(&s, 11)].age, 255);
  assert_int_equal(s.v[view_find(&s, 12)].age, 255);
  assert_int_equal(s.v[view_find(&s, 13)].age, 1);
  /* Keep shuffling a view that never refills: ages stay at 255 and the
   * entry aged from 0 is never mistaken for old. */
  ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target);
  assert_true(target == 11 || target == 12);
  ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target);
  assert_true(target == 11 || target == 12);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.v[0].id, 13);
  assert_int_equal(s.v[0].age, 3);

}

static void test_shuffle_start_oldest_tie_removes_one(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  ptv_peer_desc d = mk(10, 5);
  ptv_sampler_add(&s, &d);
  d = mk(11, 5);
  ptv_sampler_add(&s, &d);
  ptv_peer_desc me = mk(1, 0), out[SHUF];
  ptv_id target;
  uint64_t rs = 3;
  size_t k = ptv_sampler_shuffle_start(&s, &me, xs_rand, &rs, out, &target);
  assert_true(target == 10 || target == 11);
  assert_int_equal(s.n, 1);
  assert_int_not_equal(s.v[0].id, target);
  assert_int_equal(k, 2);
  assert_int_equal(out[1].id, s.v[0].id);
}

/* ---- merge -------------------------------------------------------------- */

static void test_merge_not_full(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  ptv_peer_desc d = mk(10, 8);
  ptv_sampler_add(&s, &d);
  d = mk(11, 2);
  ptv_sampler_add(&s, &d);
  ptv_peer_desc in[] = {
      mk(1, 0),            /* self: skipped */
      mk(PTV_ID_NONE, 0),  /* none: skipped */
      mk(10, 3),           /* younger: replaces */
      mk(11, 9),           /* older: ignored */
      mk(12, 4),           /* new */
      mk(12, 1),           /* duplicate inside in, younger: replaces */
      mk(13, 6),           /* new */
  };
  ptv_sampler_merge(&s, in, sizeof(in) / sizeof(in[0]), NULL, 0);
  check_view(&s);
  assert_int_equal(s.n, 4);
  assert_int_equal(s.v[view_find(&s, 10)].age, 3);
  assert_int_equal(s.v[view_find(&s, 11)].age, 2);
  assert_int_equal(s.v[view_find(&s, 12)].age, 1);
  assert_int_equal(s.v[view_find(&s, 13)].age, 6);
}

static void test_merge_equal_age_keeps_existing(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  ptv_peer_desc d = mk(10, 4);
  ptv_sampler_add(&s, &d);
  ptv_peer_desc in = mk(10, 4);
  in.upload_kbps = 1;
  ptv_sampler_merge(&s, &in, 1, NULL, 0);
  assert_int_equal(s.n, 1);
  assert_int_equal(s.v[0].age, 4);
}

static void test_merge_full_replaces_sent_first(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  /* ids 100..119; id 119 is the oldest, the sent ones are young. */
  for (int i = 0; i < VIEW; i++) {
    ptv_peer_desc d = mk(100 + (ptv_id)i, (uint8_t)(i == 19 ? 99 : i == 18 ? 98 : 1));
    ptv_sampler_add(&s, &d);
  }
  ptv_peer_desc sent[] = {mk(1, 0) /* self, never in view */, mk(105, 1),
                          mk(999, 1) /* not in view */, mk(107, 1)};
  ptv_peer_desc in[] = {mk(300, 0), mk(301, 0), mk(302, 0), mk(303, 0),
                        mk(110, 0) /* already present: refresh only */};
  ptv_sampler_merge(&s, in, 5, sent, 4);
  check_view(&s);
  assert_int_equal(s.n, VIEW);
  for (ptv_id id = 300; id <= 303; id++) assert_true(view_find(&s, id) >= 0);
  /* Sent entries went first, then the oldest (119, then 118). */
  assert_int_equal(view_find(&s, 105), -1);
  assert_int_equal(view_find(&s, 107), -1);
  assert_int_equal(view_find(&s, 119), -1);
  assert_int_equal(view_find(&s, 118), -1);
  for (ptv_id id = 100; id < 118; id++)
    if (id != 105 && id != 107) assert_true(view_find(&s, id) >= 0);
  assert_int_equal(s.v[view_find(&s, 110)].age, 0);
}

static void test_merge_full_sent_used_once(void **state) {
  /* A sent entry already replaced is not reused; with only one sent entry,
   * the second new one evicts the oldest. */
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  for (int i = 0; i < VIEW; i++) {
    ptv_peer_desc d = mk(100 + (ptv_id)i, (uint8_t)(i == 3 ? 50 : 5));
    ptv_sampler_add(&s, &d);
  }
  ptv_peer_desc sent[] = {mk(110, 5)};
  ptv_peer_desc in[] = {mk(400, 0), mk(401, 0)};
  ptv_sampler_merge(&s, in, 2, sent, 1);
  check_view(&s);
  assert_int_equal(s.n, VIEW);
  assert_true(view_find(&s, 400) >= 0);
  assert_true(view_find(&s, 401) >= 0);
  assert_int_equal(view_find(&s, 110), -1); /* the sent one, first */
  assert_int_equal(view_find(&s, 103), -1); /* then the oldest */

  /* A newcomer can itself be the oldest by the time the next one arrives. */
  ptv_sampler_init(&s, 1);
  for (int i = 0; i < VIEW; i++) {
    ptv_peer_desc d = mk(100 + (ptv_id)i, (uint8_t)(i == 3 ? 50 : 5));
    ptv_sampler_add(&s, &d);
  }
  ptv_peer_desc in2[] = {mk(400, 60), mk(401, 0)};
  ptv_sampler_merge(&s, in2, 2, sent, 1);
  check_view(&s);
  assert_int_equal(view_find(&s, 110), -1);
  assert_int_equal(view_find(&s, 400), -1);
  assert_true(view_find(&s, 401) >= 0);
  assert_true(view_find(&s, 103) >= 0);
}

/* ---- shuffle answer / full exchange ------------------------------------ */

static void test_shuffle_answer(void **state) {
  ptv_sampler b;
  ptv_sampler_init(&b, 2);
  fill(&b, 500, VIEW); /* full */
  ptv_peer_desc in[SHUF];
  for (int i = 0; i < SHUF; i++) in[i] = mk(700 + (ptv_id)i, 0);
  in[3] = mk(2, 0); /* B's own id arrives too: must not enter */
  ptv_peer_desc out[SHUF];
  uint64_t rs = 77;
  size_t k = ptv_sampler_shuffle_answer(&b, in, SHUF, xs_rand, &rs, out);
  assert_int_equal(k, SHUF);
  check_view(&b);
  assert_int_equal(b.n, VIEW);
  for (size_t i = 0; i < k; i++) {
    assert_true(out[i].id >= 500 && out[i].id < 500 + VIEW);
    assert_int_equal(desc_find(out + i + 1, k - i - 1, out[i].id), -1);
  }
  /* The 7 foreign entries went in, each replacing one we sent. */
  int sent_left = 0;
  for (size_t i = 0; i < k; i++) sent_left += view_find(&b, out[i].id) >= 0;
  for (int i = 0; i < SHUF; i++)
    if (i != 3) assert_true(view_find(&b, 700 + (ptv_id)i) >= 0);
  assert_int_equal(sent_left, 1); /* 8 sent, 7 replaced */

  /* Small view: answers with all it has and simply grows. */
  ptv_sampler c;
  ptv_sampler_init(&c, 3);
  fill(&c, 600, 3);
  k = ptv_sampler_shuffle_answer(&c, in, SHUF, xs_rand, &rs, out);
  assert_int_equal(k, 3);
  assert_int_equal(c.n, 3 + SHUF); /* id 2 is not c's self */
  check_view(&c);
}

static void test_full_exchange(void **state) {
  /* A shuffles with B: afterwards B knows A (fresh), A does not know itself,
   * and both views stay bounded and duplicate-free. */
  ptv_sampler a, b;
  ptv_sampler_init(&a, 1);
  ptv_sampler_init(&b, 2);
  fill(&a, 100, VIEW - 1);
  ptv_peer_desc bd = mk(2, 200); /* the oldest: A's target */
  ptv_sampler_add(&a, &bd);
  fill(&b, 300, VIEW);
  ptv_peer_desc ad = mk(1, 40); /* B already knows A, by an old entry */
  ptv_sampler_add(&b, &ad);

  ptv_peer_desc me = mk(1, 0), req[SHUF], rep[SHUF];
  ptv_id target;
  uint64_t rs = 2024;
  size_t nreq = ptv_sampler_shuffle_start(&a, &me, xs_rand, &rs, req, &target);
  assert_int_equal(nreq, SHUF);
  assert_int_equal(target, 2);
  assert_int_equal(view_find(&a, 2), -1);
  assert_int_equal(a.n, VIEW - 1);
  size_t nrep = ptv_sampler_shuffle_answer(&b, req, nreq, xs_rand, &rs, rep);
  assert_int_equal(nrep, SHUF);
  ptv_sampler_merge(&a, rep, nrep, req, nreq);
  check_view(&a);
  check_view(&b);
  int ja = view_find(&b, 1);
  assert_true(ja >= 0);
  assert_int_equal(b.v[ja].age, 0);
  /* Every answer entry except A itself entered A's view: the first into the
   * free slot, the rest replacing req[1], req[2], ... in order. */
  size_t m = 0;
  for (size_t i = 0; i < nrep; i++) {
    if (rep[i].id == 1) continue;
    assert_true(view_find(&a, rep[i].id) >= 0);
    m++;
  }
  assert_true(m >= SHUF - 1);
  assert_int_equal(a.n, VIEW);
  for (size_t i = 1; i < nreq; i++) {
    if (i < m) assert_int_equal(view_find(&a, req[i].id), -1);
    else assert_true(view_find(&a, req[i].id) >= 0);
  }
}

static void test_random_overlay_invariants(void **state) {
  /* 60 nodes gossiping for many rounds; after each step every view keeps
   * the invariants, and a node that died is forgotten by everyone. */
  enum { N = 60, ROUNDS = 150, DEAD = 17 };
  static ptv_sampler s[N];
  uint64_t rs = 0xabcdefULL;
  for (int i = 0; i < N; i++) {
    ptv_sampler_init(&s[i], (ptv_id)i);
    for (int j = 1; j <= 5; j++) {
      ptv_peer_desc d = mk((ptv_id)((i + j) % N), 0);
      ptv_sampler_add(&s[i], &d);
    }
  }
  for (int round = 0; round < ROUNDS; round++) {
    for (int i = 0; i < N; i++) {
      if (round >= 30 && i == DEAD) continue;
      ptv_peer_desc me = mk((ptv_id)i, 0), req[SHUF], rep[SHUF];
      ptv_id t;
      size_t nreq = ptv_sampler_shuffle_start(&s[i], &me, xs_rand, &rs, req, &t);
      check_view(&s[i]);
      if (nreq == 0) continue;
      assert_true(nreq <= SHUF);
      assert_int_equal(req[0].id, (ptv_id)i);
      assert_true(t < N && t != (ptv_id)i);
      if (round >= 30 && t == DEAD) continue; /* silent: entry already dropped */
      size_t nrep = ptv_sampler_shuffle_answer(&s[t], req, nreq, xs_rand, &rs, rep);
      assert_true(nrep <= SHUF);
      check_view(&s[t]);
      ptv_sampler_merge(&s[i], rep, nrep, req, nreq);
      check_view(&s[i]);
    }
  }
  int total = 0, knows_dead = 0;
  for (int i = 0; i < N; i++) {
    total += s[i].n;
    if (i != DEAD) knows_dead += view_find(&s[i], DEAD) >= 0;
  }
  assert_true(total > N * 5); /* views actually filled up */
  assert_int_equal(knows_dead, 0);
}

static void test_shuffle_selection_is_random(void **state) {
  /* Over many answers, every view entry gets sent, not just a fixed few,
   * and each answer is SHUFFLE distinct entries. */
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  fill(&s, 10, VIEW);
  int seen[VIEW] = {0};
  uint64_t rs = 31337;
  for (int round = 0; round < 500; round++) {
    ptv_peer_desc out[SHUF];
    size_t k = ptv_sampler_shuffle_answer(&s, NULL, 0, xs_rand, &rs, out);
    assert_int_equal(k, SHUF);
    assert_int_equal(s.n, VIEW); /* nothing merged, nothing lost */
    for (size_t i = 0; i < k; i++) {
      assert_int_equal(desc_find(out + i + 1, k - i - 1, out[i].id), -1);
      seen[out[i].id - 10]++;
    }
  }
  /* Expected 500 * 8 / 20 = 200 each. */
  for (int i = 0; i < VIEW; i++) assert_true(seen[i] > 120 && seen[i] < 280);
}

/* ---- pick ----------------------------------------------------------------- */

static void test_pick(void **state) {
  ptv_sampler s;
  ptv_sampler_init(&s, 1);
  uint64_t rs = 1;
  assert_null(ptv_sampler_pick(&s, xs_rand, &rs));
  fill(&s, 10, 7);
  int seen[7] = {0};
  for (int i = 0; i < 2000; i++) {
    const ptv_peer_desc *p = ptv_sampler_pick(&s, xs_rand, &rs);
    assert_non_null(p);
    assert_true(p >= s.v && p < s.v + s.n);
    seen[p->id - 10]++;
  }
  for (int i = 0; i < 7; i++) assert_true(seen[i] > 150); /* ~285 each */
  static const uint64_t big[] = {UINT64_MAX};
  seq_rng r = {big, 1, 0};
  const ptv_peer_desc *p = ptv_sampler_pick(&s, seq_rand, &r);
  assert_true(p >= s.v && p < s.v + s.n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init),
      cmocka_unit_test(test_add_ignores_self_and_none),
      cmocka_unit_test(test_add_refresh_keeps_younger),
      cmocka_unit_test(test_add_full_evicts_oldest),
      cmocka_unit_test(test_view_bounded_many_adds),
      cmocka_unit_test(test_remove),
      cmocka_unit_test(test_shuffle_start_empty),
      cmocka_unit_test(test_shuffle_start_single_entry),
      cmocka_unit_test(test_shuffle_start_full),
      cmocka_unit_test(test_shuffle_start_small_view),
      cmocka_unit_test(test_shuffle_start_rnd_extremes),
      cmocka_unit_test(test_ages_saturate),
      cmocka_unit_test(test_shuffle_start_oldest_tie_removes_one),
      cmocka_unit_test(test_merge_not_full),
      cmocka_unit_test(test_merge_equal_age_keeps_existing),
      cmocka_unit_test(test_merge_full_replaces_sent_first),
      cmocka_unit_test(test_merge_full_sent_used_once),
      cmocka_unit_test(test_shuffle_answer),
      cmocka_unit_test(test_full_exchange),
      cmocka_unit_test(test_random_overlay_invariants),
      cmocka_unit_test(test_shuffle_selection_is_random),
      cmocka_unit_test(test_pick),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
