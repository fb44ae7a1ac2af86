/* test_chandelier.c -- unit tests for Chandelier's pure decision functions
 * (chandelier/ptv_ch_policy.h): estimation, parent choice and the swap
 * rule, hysteresis, the market, global placement and the carrying
 * constraint, and the parameter parser.
 *
 * Expectations come from the contracts in ptv_ch_policy.h, not from the
 * implementation: thresholds are derived from the parameters (never from
 * literal defaults), and placements are checked against the properties the
 * header promises. At the end: regressions for the bugs they found. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_ch_policy.h"
#include "test_rand.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The settable names: the fields, times as "<name>_s" in seconds. `stripes`
 * is not runtime-settable (the sub-stream count is part of the stream). */
static const char *const k_names[] = {
    "max_tier",  "max_per_parent", "improve_gap", "slot_pct", "per_stripe_chunks",
    "outbid_pct", "deliv_bad",     "deliv_bad_held", "suspect_deliv", "grace_s",     "hold_s",   "improve_s",
    "refuse_s",  "ask_s",          "lag_margin_s", "settle_s", "settle_fed_s",  "silent_s", "suspect_block_s",
    "fail_block_s", "backlog_max_s", "source_busy_s", "nonup_defer_s", "source_swap", "keep_fed",
    "nonup_stripes", "nonup_poor_s", "nonup_partners", "nonup_turn_s", "loop_guard_s", "unfed_max_s", "loop_depth", "source_roots",
    "push_kids",
};

/* "bid beats price by more than pct %", exactly, in integers. */
static int beats(uint32_t bid, uint32_t price, unsigned pct) {
  return (uint64_t)bid * 100u > (uint64_t)price * (100u + pct);
}

/* Field by field (the struct has padding). */
static int params_equal(const ptv_ch_params *a, const ptv_ch_params *b) {
  return a->stripes == b->stripes && a->max_tier == b->max_tier &&
         a->max_per_parent == b->max_per_parent && a->improve_gap == b->improve_gap &&
         a->slot_pct == b->slot_pct && a->per_stripe_chunks == b->per_stripe_chunks &&
         a->outbid_pct == b->outbid_pct && a->deliv_bad == b->deliv_bad &&
         a->deliv_bad_held == b->deliv_bad_held && a->suspect_deliv == b->suspect_deliv &&
         a->grace_us == b->grace_us && a->hold_us == b->hold_us &&
         a->improve_us == b->improve_us && a->refuse_us == b->refuse_us &&
         a->ask_us == b->ask_us && a->lag_margin_us == b->lag_margin_us &&
         a->settle_us == b->settle_us && a->settle_fed_us == b->settle_fed_us && a->silent_us == b->silent_us &&
         a->suspect_block_us == b->suspect_block_us && a->fail_block_us == b->fail_block_us &&
         a->backlog_max_us == b->backlog_max_us && a->source_busy_us == b->source_busy_us &&
         a->nonup_defer_us == b->nonup_defer_us && a->source_swap == b->source_swap &&
         a->keep_fed == b->keep_fed && a->nonup_stripes == b->nonup_stripes &&
         a->nonup_poor_us == b->nonup_poor_us && a->nonup_partners == b->nonup_partners &&
         a->nonup_turn_us == b->nonup_turn_us && a->loop_guard_us == b->loop_guard_us &&
         a->unfed_max_us == b->unfed_max_us &&
         a->loop_depth == b->loop_depth && a->source_roots == b->source_roots &&
         a->push_kids == b->push_kids;
}

static ptv_ch_params defaults(void) {
  ptv_ch_params p;
  ptv_ch_params_default(&p);
  return p;
}

/* ---- estimation ------------------------------------------------------------ */

/* The documented formula: claim x (prior weight + measured share x measured
 * weight), measured weight samples / (samples + 8). */
static double est_contract(uint32_t claim, uint16_t deliv, uint32_t samples) {
  double w = (double)samples / ((double)samples + 8.0);
  return (double)claim * ((1.0 - w) + (double)deliv / 65535.0 * w);
}

static void test_estimate_prior_without_samples(void **state) {
  static const uint32_t claims[] = {0, 1, 500, 4000, 123457, UINT32_MAX / 2, UINT32_MAX};
  static const uint16_t delivs[] = {0, 1, 16384, 65534, 65535};
  for (size_t i = 0; i < NELEM(claims); i++)
    for (size_t j = 0; j < NELEM(delivs); j++)
      assert_int_equal(ptv_ch_estimate(claims[i], delivs[j], 0), claims[i]);
}

static void test_estimate_converges_to_measured(void **state) {
  /* claim 4000, a quarter delivered, 1000 samples: near 1000. The prior
   * still weighs 8/1008, which adds 4000 x 0.75 x 8/1008 ~ 24: the documented
   * value is 4000 x (8 + 1000/4) / 1008 ~ 1023.8. */
  uint32_t e = ptv_ch_estimate(4000, (uint16_t)(65535 / 4), 1000);
  assert_in_range(e, 1000, 1030); /* within 3 % of the measured 1000 */
  assert_true(fabs((double)e - est_contract(4000, (uint16_t)(65535 / 4), 1000)) <= 1.0);
  /* Even more samples: within 0.5 %. */
  uint32_t e2 = ptv_ch_estimate(4000, (uint16_t)(65535 / 4), 100000);
  assert_in_range(e2, 995, 1005);
  assert_true(e2 < e);
  /* Nothing delivered, many samples: the estimate collapses toward 0. */
  assert_true(ptv_ch_estimate(4000, 0, 10000) < 4000 / 100);
  /* Against the documented formula, on a grid (integer rounding: <= 1). */
  static const uint32_t claims[] = {1, 300, 4000, 99991, 2000000};
  static const uint16_t delivs[] = {0, 1, 9000, 32767, 50000, 65535};
  static const uint32_t samples[] = {0, 1, 2, 8, 16, 100, 1000, 4096};
  for (size_t a = 0; a < NELEM(claims); a++)
    for (size_t b = 0; b < NELEM(delivs); b++)
      for (size_t c = 0; c < NELEM(samples); c++) {
        double want = est_contract(claims[a], delivs[b], samples[c]);
        double got = ptv_ch_estimate(claims[a], delivs[b], samples[c]);
        assert_true(fabs(got - want) <= 1.0);
      }
}

static void test_estimate_half_weight_at_eight_samples(void **state) {
  /* After 8 samples the measurement and the prior weigh the same: a peer
   * delivering nothing is estimated at half its claim. */
  assert_in_range(ptv_ch_estimate(4000, 0, 8), 1999, 2000);
  /* ...and one delivering half at three quarters. */
  assert_in_range(ptv_ch_estimate(4000, 32768, 8), 2999, 3001);
}

static void test_estimate_monotone(void **state) {
  const uint32_t claim = 5000;
  /* Non-decreasing in deliv, for several sample counts. */
  static const uint32_t samples[] = {1, 8, 50, 1000};
  for (size_t s = 0; s < NELEM(samples); s++) {
    uint32_t prev = 0;
    for (uint32_t d = 0; d <= 65535; d += 257) {
      uint32_t e = ptv_ch_estimate(claim, (uint16_t)d, samples[s]);
      assert_true(e >= prev);
      prev = e;
    }
    assert_true(ptv_ch_estimate(claim, 65535, samples[s]) > ptv_ch_estimate(claim, 0, samples[s]));
  }
  /* Non-increasing in samples when the peer delivers less than all. */
  static const uint16_t delivs[] = {0, 10000, 32767, 60000};
  for (size_t d = 0; d < NELEM(delivs); d++) {
    uint32_t prev = UINT32_MAX;
    for (uint32_t s = 0; s <= 2000; s++) {
      uint32_t e = ptv_ch_estimate(claim, delivs[d], s);
      assert_true(e <= prev);
      prev = e;
    }
    assert_true(ptv_ch_estimate(claim, delivs[d], 2000) < ptv_ch_estimate(claim, delivs[d], 1));
  }
}

static void test_estimate_full_delivery_keeps_claim(void **state) {
  static const uint32_t claims[] = {1, 777, 4000, 1000000, UINT32_MAX / 2};
  static const uint32_t samples[] = {0, 1, 7, 8, 9, 100, 1000, 65536};
  for (size_t i = 0; i < NELEM(claims); i++)
    for (size_t j = 0; j < NELEM(samples); j++)
      assert_int_equal(ptv_ch_estimate(claims[i], 65535, samples[j]), claims[i]);
}

static void test_estimate_large_claim_no_overflow(void **state) {
  const uint32_t claim = UINT32_MAX / 2;
  static const uint32_t samples[] = {0, 1, 8, 16, 100, 1000};
  static const uint16_t delivs[] = {0, 1, 16384, 32768, 65534, 65535};
  for (size_t i = 0; i < NELEM(samples); i++)
    for (size_t j = 0; j < NELEM(delivs); j++) {
      uint32_t e = ptv_ch_estimate(claim, delivs[j], samples[i]);
      assert_true(e <= claim);
      double want = est_contract(claim, delivs[j], samples[i]);
      assert_true(fabs((double)e - want) <= 1.0);
    }
  /* The largest claim too. */
  assert_int_equal(ptv_ch_estimate(UINT32_MAX, 65535, 1000), UINT32_MAX);
  assert_true(ptv_ch_estimate(UINT32_MAX, 32768, 1000) <= UINT32_MAX / 2 + UINT32_MAX / 100);
  assert_true(ptv_ch_estimate(UINT32_MAX, 32768, 1000) >= UINT32_MAX / 2);
}

/* ---- choosing a stripe parent ------------------------------------------------ */

/* A usable peer candidate: known tier, a free slot, NAT compatible. */
static ptv_ch_cand cand(uint8_t tier, uint32_t est) {
  ptv_ch_cand c;
  memset(&c, 0, sizeof(c));
  c.tier = tier;
  c.free_slots = 2;
  c.est_kbps = est;
  c.can_connect = 1;
  return c;
}

static ptv_ch_cand full_cand(uint8_t tier, uint32_t est, uint32_t price) {
  ptv_ch_cand c = cand(tier, est);
  c.free_slots = 0;
  c.price_kbps = price;
  return c;
}

static void test_pick_lowest_tier_wins(void **state) {
  ptv_ch_params pp = defaults();
  /* The deeper ones have far larger estimates: tier still wins. */
  ptv_ch_cand c[] = {cand(3, 90000), cand(1, 100), cand(2, 50000), cand(4, 99999)};
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 1);
  /* Move the lowest to the end: still found. */
  ptv_ch_cand d[] = {cand(3, 90000), cand(2, 50000), cand(4, 99999), cand(1, 100)};
  assert_int_equal(ptv_ch_pick_parent(d, NELEM(d), 1000, 255, &pp), 3);
  /* The source at tier 0 beats peers at tier 1. */
  ptv_ch_cand e[] = {cand(1, 90000), cand(0, 100)};
  e[1].is_source = 1;
  assert_int_equal(ptv_ch_pick_parent(e, NELEM(e), 1000, 255, &pp), 1);
}

/* The swap rule and the other exclusions: a best candidate made unusable in
 * each way gives way to the next-best compatible one. */
static void test_pick_exclusions_swap_rule(void **state) {
  ptv_ch_params pp = defaults();
  assert_true(pp.max_tier > 3);
  for (int variant = 0; variant <= 8; variant++) {
    /* [0] the best (tier 1, largest estimate), [1] the next best (tier 2),
     * [2] a worse one (tier 3). */
    ptv_ch_cand c[] = {cand(1, 9000), cand(2, 5000), cand(3, 8000)};
    int expect = 1;
    switch (variant) {
    case 0: expect = 0; break;                   /* baseline: nothing excluded */
    case 1: c[0].tier = 255; break;              /* unknown tier */
    case 2: c[0].tier = pp.max_tier; break;      /* at the tier bound */
    case 3: c[0].is_child = 1; break;            /* our child for this stripe */
    case 4: c[0].blocked = 1; break;             /* refused us / failed lately */
    case 5: c[0].can_connect = 0; break;         /* NAT incompatible: swap rule */
    case 6:                                      /* tier above max, both deeper */
      c[0].tier = (uint8_t)(pp.max_tier + 1);
      c[1].can_connect = 0;
      expect = 2;
      break;
    case 7: /* an uplink further behind than backlog_max: overloaded */
      c[0].backlog_ms = (uint32_t)(pp.backlog_max_us / PTV_MS) + 1;
      break;
    case 8: /* exactly at the bound is still usable */
      c[0].backlog_ms = (uint32_t)(pp.backlog_max_us / PTV_MS);
      expect = 0;
      break;
    }
    assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), expect);
  }
  /* Just under max_tier is usable. */
  ptv_ch_cand m[] = {cand((uint8_t)(pp.max_tier - 1), 100)};
  assert_int_equal(ptv_ch_pick_parent(m, 1, 1000, 255, &pp), 0);
  /* The swap rule applies to the source too. */
  ptv_ch_cand s[] = {cand(0, 99999), cand(1, 10)};
  s[0].is_source = 1;
  s[0].can_connect = 0;
  assert_int_equal(ptv_ch_pick_parent(s, NELEM(s), 1000, 255, &pp), 1);
  /* Every one excluded: none. */
  ptv_ch_cand x[] = {cand(1, 1), cand(2, 1), cand(3, 1), cand(4, 1), cand(255, 1)};
  x[0].can_connect = 0;
  x[1].blocked = 1;
  x[2].is_child = 1;
  x[3].tier = pp.max_tier;
  assert_int_equal(ptv_ch_pick_parent(x, NELEM(x), 1000, 255, &pp), -1);
}

/* The backlog bound: the best candidate, behind by 3 s of uploads (a
 * free-rider with children for 4x its upload), is passed over for the next
 * one; with the bound off (0) it is chosen again. */
static void test_pick_backlog(void **state) {
  ptv_ch_params pp = defaults();
  ptv_ch_cand c[] = {cand(1, 4000), cand(2, 1000)};
  c[0].backlog_ms = 3000;
  c[1].backlog_ms = 400;
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 1);
  c[1].backlog_ms = 3000; /* every one overloaded: none */
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), -1);
  pp.backlog_max_us = 0;
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 0);
}

static void test_pick_outbid_threshold(void **state) {
  ptv_ch_params pp = defaults();
  const uint32_t price = 1000;
  /* The price raised by outbid_pct; our bid must be strictly above it. */
  const uint32_t thr = price * (100u + pp.outbid_pct) / 100u;
  assert_int_equal(price * (100u + pp.outbid_pct) % 100u, 0); /* exact threshold */
  ptv_ch_cand c[] = {full_cand(1, 5000, price)};
  assert_int_equal(ptv_ch_pick_parent(c, 1, thr - 1, 255, &pp), -1);
  assert_int_equal(ptv_ch_pick_parent(c, 1, thr, 255, &pp), -1);
  assert_int_equal(ptv_ch_pick_parent(c, 1, thr + 1, 255, &pp), 0);
  assert_int_equal(ptv_ch_pick_parent(c, 1, price, 255, &pp), -1);
  /* The threshold follows the parameter. */
  pp.outbid_pct = 50;
  assert_int_equal(ptv_ch_pick_parent(c, 1, 1500, 255, &pp), -1);
  assert_int_equal(ptv_ch_pick_parent(c, 1, 1501, 255, &pp), 0);
  pp.outbid_pct = 0;
  assert_int_equal(ptv_ch_pick_parent(c, 1, 1000, 255, &pp), -1);
  assert_int_equal(ptv_ch_pick_parent(c, 1, 1001, 255, &pp), 0);
  /* Huge prices and bids do not overflow the comparison. */
  pp = defaults();
  ptv_ch_cand h[] = {full_cand(1, 5000, UINT32_MAX / 2)};
  assert_int_equal(ptv_ch_pick_parent(h, 1, UINT32_MAX, 255, &pp), 0);
  h[0].price_kbps = UINT32_MAX;
  assert_int_equal(ptv_ch_pick_parent(h, 1, UINT32_MAX, 255, &pp), -1);
  /* An unaffordable full tier-1 parent gives way to a free deeper one;
   * an affordable one wins by tier. */
  ptv_ch_cand d[] = {cand(3, 100), full_cand(1, 5000, price)};
  assert_int_equal(ptv_ch_pick_parent(d, NELEM(d), thr, 255, &pp), 0);
  assert_int_equal(ptv_ch_pick_parent(d, NELEM(d), thr + 1, 255, &pp), 1);
}

static void test_pick_free_slot_over_outbidding(void **state) {
  ptv_ch_params pp = defaults();
  /* Same tier: a free slot beats an affordable full parent, even one with a
   * far larger estimate, in either order. */
  ptv_ch_cand a[] = {full_cand(2, 90000, 10), cand(2, 100)};
  assert_int_equal(ptv_ch_pick_parent(a, NELEM(a), 100000, 255, &pp), 1);
  ptv_ch_cand b[] = {cand(2, 100), full_cand(2, 90000, 10)};
  assert_int_equal(ptv_ch_pick_parent(b, NELEM(b), 100000, 255, &pp), 0);
}

static void test_pick_larger_estimate_breaks_ties(void **state) {
  ptv_ch_params pp = defaults();
  ptv_ch_cand a[] = {cand(2, 500), cand(2, 900), cand(2, 700)};
  assert_int_equal(ptv_ch_pick_parent(a, NELEM(a), 1000, 255, &pp), 1);
  ptv_ch_cand b[] = {cand(2, 900), cand(2, 500), cand(2, 700)};
  assert_int_equal(ptv_ch_pick_parent(b, NELEM(b), 1000, 255, &pp), 0);
  ptv_ch_cand c[] = {cand(2, 500), cand(2, 700), cand(2, 900)};
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 2);
  /* Among affordable full parents of one tier too. */
  ptv_ch_cand d[] = {full_cand(1, 100, 10), full_cand(1, 800, 10)};
  assert_int_equal(ptv_ch_pick_parent(d, NELEM(d), 1000, 255, &pp), 1);
}

static void test_pick_max_per_parent(void **state) {
  ptv_ch_params pp = defaults();
  assert_true(pp.max_per_parent >= 1);
  ptv_ch_cand c[] = {cand(1, 9000), cand(2, 100)};
  c[0].from_it = (uint8_t)(pp.max_per_parent - 1);
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 0);
  c[0].from_it = pp.max_per_parent; /* we take as many as allowed already */
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 1);
  c[0].from_it = (uint8_t)(pp.max_per_parent + 3);
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 1);
  /* The source has no such limit. */
  c[0].tier = 0;
  c[0].is_source = 1;
  c[0].from_it = pp.max_per_parent;
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 0);
  c[0].from_it = 16;
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 0);
  /* The limit follows the parameter. */
  ptv_ch_cand d[] = {cand(1, 9000), cand(2, 100)};
  d[0].from_it = 1;
  pp.max_per_parent = 1;
  assert_int_equal(ptv_ch_pick_parent(d, NELEM(d), 1000, 255, &pp), 1);
  pp.max_per_parent = 2;
  assert_int_equal(ptv_ch_pick_parent(d, NELEM(d), 1000, 255, &pp), 0);
}

static void test_pick_below(void **state) {
  ptv_ch_params pp = defaults();
  ptv_ch_cand c[] = {cand(3, 9000), cand(2, 100), cand(1, 50)};
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 255, &pp), 2);
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 2, &pp), 2);
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 1, &pp), -1);
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 0, &pp), -1);
  /* With the tier-1 one unusable, `below` 2 leaves nothing (tier 2 is not
   * below 2), `below` 3 allows tier 2. */
  c[2].blocked = 1;
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 2, &pp), -1);
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 3, &pp), 1);
  assert_int_equal(ptv_ch_pick_parent(c, NELEM(c), 1000, 4, &pp), 1);
}

static void test_pick_none(void **state) {
  ptv_ch_params pp = defaults();
  ptv_ch_cand c[] = {cand(1, 100)};
  assert_int_equal(ptv_ch_pick_parent(c, 0, 1000, 255, &pp), -1);
  ptv_ch_cand f[] = {full_cand(1, 100, 5000), full_cand(2, 100, 800)};
  assert_int_equal(ptv_ch_pick_parent(f, NELEM(f), 100, 255, &pp), -1);
}

/* Against a brute-force reading of the contract on random candidate sets. */
static void test_pick_random_against_contract(void **state) {
  ptv_ch_params pp = defaults();
  rng_state = 0x9e3779b97f4a7c15ULL;
  for (int round = 0; round < 20000; round++) {
    ptv_ch_cand c[8];
    size_t nc = (size_t)(xrand() % 9);
    for (size_t i = 0; i < nc; i++) {
      memset(&c[i], 0, sizeof(c[i]));
      uint64_t r = xrand();
      c[i].tier = (r & 15) == 0 ? 255 : (uint8_t)(r >> 4 & 15);
      c[i].free_slots = (uint8_t)(r >> 8 & 1 ? r >> 9 & 3 : 0);
      c[i].price_kbps = (uint32_t)(r >> 12 & 2047);
      c[i].est_kbps = (uint32_t)(r >> 24 & 4095);
      c[i].from_it = (uint8_t)(r >> 36 & 7);
      c[i].is_child = (r >> 39 & 7) == 0;
      c[i].blocked = (r >> 42 & 7) == 0;
      c[i].is_source = (r >> 45 & 7) == 0;
      c[i].can_connect = (r >> 48 & 7) != 0;
      c[i].backlog_ms = (r >> 51 & 7) == 0 ? 1001 + (uint32_t)(r >> 54 & 1023) : (uint32_t)(r >> 54 & 1023);
    }
    uint32_t bid = (uint32_t)(xrand() % 2500);
    uint8_t below = xrand() % 3 == 0 ? (uint8_t)(xrand() % 16) : 255;
    int got = ptv_ch_pick_parent(c, nc, bid, below, &pp);
    /* Which candidates qualify, by the contract. */
    int ok[8];
    int any = 0;
    for (size_t i = 0; i < nc; i++) {
      const ptv_ch_cand *x = &c[i];
      ok[i] = x->tier != 255 && x->tier < pp.max_tier && !x->is_child && !x->blocked &&
              x->can_connect && (x->is_source || x->from_it < pp.max_per_parent) &&
              (below == 255 || x->tier < below) &&
              (uint64_t)x->backlog_ms * PTV_MS <= pp.backlog_max_us &&
              (x->free_slots > 0 || beats(bid, x->price_kbps, pp.outbid_pct));
      any |= ok[i];
    }
    if (!any) {
      assert_int_equal(got, -1);
      continue;
    }
    assert_true(got >= 0 && (size_t)got < nc);
    assert_true(ok[got]);
    /* No qualifying candidate is strictly better than the one chosen. */
    const ptv_ch_cand *g = &c[got];
    for (size_t i = 0; i < nc; i++) {
      if (!ok[i]) continue;
      const ptv_ch_cand *x = &c[i];
      assert_true(x->tier >= g->tier);
      if (x->tier != g->tier) continue;
      assert_true(!(x->free_slots > 0 && g->free_slots == 0));
      if ((x->free_slots > 0) == (g->free_slots > 0)) assert_true(x->est_kbps <= g->est_kbps);
    }
  }
}

/* ---- hysteresis ---------------------------------------------------------------- */

/* The loop guard: a peer that needs a parent on a stripe it passes on
 * takes none deeper than it was while its subtree may still show the
 * depths it had through it; the bound opens one level per loop_guard_us
 * unfed, as the news goes down the subtree a map round per level. */
static void test_orphan_below(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  assert_true(pp.loop_guard_us > 0);
  const uint8_t was = 5;
  const ptv_tstamp step = pp.loop_guard_us;
  uint8_t below = ptv_ch_orphan_below(was, 1, step / 2, &pp);
  assert_int_equal(below, was + 1);
  /* With that bound, a subtree member (depth was + 1 or more) is never
   * chosen, even as the only candidate; a peer at our old depth or above is. */
  ptv_ch_cand sub[] = {cand(was + 1, 90000), cand(was + 3, 90000)};
  assert_int_equal(ptv_ch_pick_parent(sub, NELEM(sub), 1000, below, &pp), -1);
  ptv_ch_cand mix[] = {cand(was + 1, 90000), cand(was, 10), cand(was + 2, 90000)};
  assert_int_equal(ptv_ch_pick_parent(mix, NELEM(mix), 1000, below, &pp), 1);
  /* One level more per step: a grandchild not yet told (depth was + 2)
   * only after two steps, never before. */
  assert_int_equal(ptv_ch_orphan_below(was, 1, step - 1, &pp), was + 1);
  assert_int_equal(ptv_ch_orphan_below(was, 1, step, &pp), was + 2);
  assert_int_equal(ptv_ch_orphan_below(was, 1, 2 * step - 1, &pp), was + 2);
  /* (our children, at was + 1, are never candidates: is_child) */
  ptv_ch_cand deep[] = {cand(was + 2, 90000), cand(was + 3, 90000)};
  assert_int_equal(
      ptv_ch_pick_parent(deep, NELEM(deep), 1000, ptv_ch_orphan_below(was, 1, step, &pp), &pp), -1);
  assert_int_equal(
      ptv_ch_pick_parent(deep, NELEM(deep), 1000, ptv_ch_orphan_below(was, 1, 2 * step, &pp), &pp),
      0);
  /* Open (255) once the bound is past max_tier, and so for ever after. */
  const ptv_tstamp open_at = (ptv_tstamp)(pp.max_tier - was - 1) * step;
  assert_int_equal(ptv_ch_orphan_below(was, 1, open_at, &pp), pp.max_tier);
  assert_int_equal(ptv_ch_orphan_below(was, 1, open_at + step, &pp), 255);
  assert_int_equal(ptv_ch_orphan_below(was, 1, UINT64_MAX / 2, &pp), 255);
  /* No bound: nothing passed on there, depth never known, guard off. */
  assert_int_equal(ptv_ch_orphan_below(was, 0, 0, &pp), 255);
  assert_int_equal(ptv_ch_orphan_below(255, 1, 0, &pp), 255);
  assert_int_equal(ptv_ch_orphan_below(254, 1, 0, &pp), 255);
  assert_int_equal(ptv_ch_orphan_below(0, 1, 0, &pp), 1); /* the source's child: only the source */
  pp.loop_guard_us = 0;
  assert_int_equal(ptv_ch_orphan_below(was, 1, 0, &pp), 255);
}

/* A voluntary move is bounded by the current parent's tier; from an unfed
 * parent (254, 255) by the loop guard, as any other move: its 255 would
 * bound nothing and let the peer take a grandchild not yet told. */
static void test_move_below(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  assert_int_equal(ptv_ch_move_below(1, 3, 5, 1, 0, &pp), 3);
  assert_int_equal(ptv_ch_move_below(1, 0, 1, 1, 0, &pp), 0);
  assert_int_equal(ptv_ch_move_below(1, 255, 5, 1, 0, &pp), 6);
  assert_int_equal(ptv_ch_move_below(1, 254, 5, 1, 0, &pp), 6);
  assert_int_equal(ptv_ch_move_below(1, 255, 5, 1, pp.loop_guard_us, &pp), 7);
  assert_int_equal(ptv_ch_move_below(1, 255, 5, 0, 0, &pp), 255); /* no subtree: no loop */
  assert_int_equal(ptv_ch_move_below(0, 3, 5, 1, 0, &pp), 6);
  assert_int_equal(ptv_ch_move_below(0, 255, 5, 1, 0, &pp), 6);
}

/* A parent unfed (and held) for unfed_max_us is left; not one fed, not
 * one unfed a moment, not one just taken, not with the rule off. */
static void test_parent_unfed_long(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  const ptv_tstamp t = pp.unfed_max_us;
  assert_true(t > 0);
  assert_int_equal(ptv_ch_parent_unfed_long(255, t, t, &pp), 1);
  assert_int_equal(ptv_ch_parent_unfed_long(254, 10 * t, 10 * t, &pp), 1);
  assert_int_equal(ptv_ch_parent_unfed_long(253, 10 * t, 10 * t, &pp), 0);
  assert_int_equal(ptv_ch_parent_unfed_long(3, 10 * t, 10 * t, &pp), 0);
  assert_int_equal(ptv_ch_parent_unfed_long(255, t - 1, 10 * t, &pp), 0);
  assert_int_equal(ptv_ch_parent_unfed_long(255, 10 * t, t - 1, &pp), 0);
  pp.unfed_max_us = 0;
  assert_int_equal(ptv_ch_parent_unfed_long(255, 10 * t, 10 * t, &pp), 0);
}

/* A parent still heard (failing) that the guard's bound leaves no
 * replacement for is left, so that the bound opens a level per
 * loop_guard_us; not one gone (nothing to leave), not a voluntary move, not
 * without a bound (then nobody at all had room: keep what feeds us). */
static void test_leave_unreplaced(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  uint8_t below = ptv_ch_orphan_below(5, 1, 0, &pp); /* still fed: the bound holds */
  assert_int_equal(below, 6);
  assert_int_equal(ptv_ch_leave_unreplaced(0, below, 1), 1);
  assert_int_equal(ptv_ch_leave_unreplaced(0, below, 0), 0);
  assert_int_equal(ptv_ch_leave_unreplaced(1, below, 1), 0);
  assert_int_equal(ptv_ch_leave_unreplaced(0, ptv_ch_orphan_below(5, 0, 0, &pp), 1), 0);
  assert_int_equal(
      ptv_ch_leave_unreplaced(0, ptv_ch_orphan_below(5, 1, 100 * pp.loop_guard_us, &pp), 1), 0);
}

static void test_parent_looping(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  /* The bound leaves room for a tree max_tier deep and moves above it. */
  assert_true(pp.loop_depth > pp.max_tier && pp.loop_depth < 254);
  assert_int_equal(ptv_ch_parent_looping(0, &pp), 0);
  assert_int_equal(ptv_ch_parent_looping(pp.max_tier, &pp), 0);
  assert_int_equal(ptv_ch_parent_looping((uint8_t)(pp.loop_depth - 1), &pp), 0);
  assert_int_equal(ptv_ch_parent_looping(pp.loop_depth, &pp), 1);
  assert_int_equal(ptv_ch_parent_looping(254, &pp), 1);
  assert_int_equal(ptv_ch_parent_looping(255, &pp), 0); /* an orphan, not a loop */
  pp.loop_depth = 0;
  assert_int_equal(ptv_ch_parent_looping(254, &pp), 0);
}

static void test_worth_switch(void **state) {
  ptv_ch_params pp = defaults();
  assert_true(pp.improve_gap >= 1 && pp.hold_us > 0);
  const uint8_t cur = 8;
  const uint8_t good = (uint8_t)(cur - pp.improve_gap);     /* gains exactly the gap */
  const uint8_t small = (uint8_t)(cur - pp.improve_gap + 1); /* one tier short */
  /* Before hold_us: never, however good. */
  assert_int_equal(ptv_ch_worth_switch(cur, good, 0, &pp), 0);
  assert_int_equal(ptv_ch_worth_switch(cur, good, pp.hold_us - 1, &pp), 0);
  assert_int_equal(ptv_ch_worth_switch(cur, 0, pp.hold_us - 1, &pp), 0);
  assert_int_equal(ptv_ch_worth_switch(255, 1, pp.hold_us - 1, &pp), 0);
  /* After hold_us: a gain of improve_gap or more. */
  assert_int_equal(ptv_ch_worth_switch(cur, good, pp.hold_us, &pp), 1);
  assert_int_equal(ptv_ch_worth_switch(cur, good, 100 * pp.hold_us, &pp), 1);
  assert_int_equal(ptv_ch_worth_switch(cur, 0, pp.hold_us, &pp), 1);
  /* A smaller gain, no gain, or a loss: no. */
  assert_int_equal(ptv_ch_worth_switch(cur, small, 100 * pp.hold_us, &pp), 0);
  assert_int_equal(ptv_ch_worth_switch(cur, cur, 100 * pp.hold_us, &pp), 0);
  assert_int_equal(ptv_ch_worth_switch(cur, cur + 3, 100 * pp.hold_us, &pp), 0);
  /* Current tier unknown: any known candidate, after hold. */
  assert_int_equal(ptv_ch_worth_switch(255, 200, pp.hold_us, &pp), 1);
  assert_int_equal(ptv_ch_worth_switch(255, 1, pp.hold_us, &pp), 1);
  /* Candidate tier unknown: never. */
  assert_int_equal(ptv_ch_worth_switch(255, 255, 100 * pp.hold_us, &pp), 0);
  assert_int_equal(ptv_ch_worth_switch(200, 255, 100 * pp.hold_us, &pp), 0);
  /* The gap follows the parameter. */
  pp.improve_gap = 5;
  assert_int_equal(ptv_ch_worth_switch(10, 6, pp.hold_us, &pp), 0);
  assert_int_equal(ptv_ch_worth_switch(10, 5, pp.hold_us, &pp), 1);
  pp.improve_gap = 1;
  assert_int_equal(ptv_ch_worth_switch(10, 9, pp.hold_us, &pp), 1);
  assert_int_equal(ptv_ch_worth_switch(10, 10, pp.hold_us, &pp), 0);
}

static void test_parent_failing(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  assert_true(pp.grace_us > 0 && pp.grace_us < pp.hold_us && pp.deliv_bad > 0 &&
              pp.deliv_bad < 65535 && pp.deliv_bad_held < pp.deliv_bad);
  ptv_tstamp young = pp.hold_us - 1; /* past its grace, not yet proven */
  /* During the grace period: never, even delivering nothing. */
  assert_int_equal(ptv_ch_parent_failing(0, 0, 0, &pp), 0);
  assert_int_equal(ptv_ch_parent_failing(0, pp.grace_us - 1, 0, &pp), 0);
  /* After it: below deliv_bad fails. */
  assert_int_equal(ptv_ch_parent_failing(0, pp.grace_us + 1, 0, &pp), 1);
  assert_int_equal(ptv_ch_parent_failing((uint16_t)(pp.deliv_bad - 1), pp.grace_us + 1, 0, &pp), 1);
  assert_int_equal(ptv_ch_parent_failing((uint16_t)(pp.deliv_bad - 1), young, 0, &pp), 1);
  /* At or above deliv_bad: fine. */
  assert_int_equal(ptv_ch_parent_failing(pp.deliv_bad, pp.grace_us + 1, 0, &pp), 0);
  assert_int_equal(ptv_ch_parent_failing((uint16_t)(pp.deliv_bad + 1), pp.grace_us + 1, 0, &pp), 0);
  assert_int_equal(ptv_ch_parent_failing(65535, 1000 * pp.grace_us, 0, &pp), 0);
  /* A parent held for hold_s has proven itself: a dip between deliv_bad_held
   * and deliv_bad is forgiven, a free-rider's share is not. */
  assert_int_equal(ptv_ch_parent_failing((uint16_t)(pp.deliv_bad - 1), pp.hold_us, 0, &pp), 0);
  assert_int_equal(ptv_ch_parent_failing(pp.deliv_bad_held, 1000 * pp.hold_us, 0, &pp), 0);
  assert_int_equal(ptv_ch_parent_failing((uint16_t)(pp.deliv_bad_held - 1), pp.hold_us, 0, &pp), 1);
  assert_int_equal(ptv_ch_parent_failing(0, 1000 * pp.hold_us, 0, &pp), 1);
  /* The thresholds follow the parameters. */
  pp.deliv_bad = 60000;
  assert_int_equal(ptv_ch_parent_failing(59999, pp.grace_us + 1, 0, &pp), 1);
  assert_int_equal(ptv_ch_parent_failing(60000, pp.grace_us + 1, 0, &pp), 0);
  pp.deliv_bad_held = 50000;
  assert_int_equal(ptv_ch_parent_failing(49999, pp.hold_us, 0, &pp), 1);
  assert_int_equal(ptv_ch_parent_failing(50000, pp.hold_us, 0, &pp), 0);
  /* ... but not while its upload backlog is backlog_max or more: an
   * overloaded parent (a free-rider's slots sold 4x) has not proven itself. */
  pp.deliv_bad_held = 22937;
  assert_true(pp.backlog_max_us > 0);
  assert_int_equal(ptv_ch_parent_failing(40000, pp.hold_us, pp.backlog_max_us - 1, &pp), 0);
  assert_int_equal(ptv_ch_parent_failing(40000, pp.hold_us, pp.backlog_max_us, &pp), 1);
  assert_int_equal(ptv_ch_parent_failing(40000, 1000 * pp.hold_us, 10 * pp.backlog_max_us, &pp), 1);
  assert_int_equal(ptv_ch_parent_failing(60000, pp.hold_us, 10 * pp.backlog_max_us, &pp), 0);
  pp.backlog_max_us = 0; /* off: age alone */
  assert_int_equal(ptv_ch_parent_failing(40000, pp.hold_us, 10 * PTV_S, &pp), 0);
  /* deliv_bad_held at or above deliv_bad: no tolerance for age. */
  pp.deliv_bad_held = 65535;
  assert_int_equal(ptv_ch_parent_failing(59999, 1000 * pp.hold_us, 0, &pp), 1);
}

/* A failing parent is accused (reported to partners) only when it brought
 * clearly less than a slow honest parent does. */
static void test_report_worthy(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  assert_true(pp.suspect_deliv > 0 && pp.suspect_deliv < pp.deliv_bad);
  /* A slow honest parent: failing (below deliv_bad) but not accused. */
  uint16_t slow = (uint16_t)(pp.deliv_bad - 2000);
  assert_int_equal(ptv_ch_parent_failing(slow, pp.grace_us, 0, &pp), 1);
  assert_int_equal(ptv_ch_report_worthy(slow, &pp), 0);
  assert_int_equal(ptv_ch_report_worthy(pp.suspect_deliv, &pp), 0);
  /* A free-rider's share: failing and accused. */
  assert_int_equal(ptv_ch_report_worthy((uint16_t)(pp.suspect_deliv - 1), &pp), 1);
  assert_int_equal(ptv_ch_report_worthy(65535 / 4, &pp), 1);
  assert_int_equal(ptv_ch_report_worthy(0, &pp), 1);
  /* The threshold is the parameter: at deliv_bad every failing parent is accused. */
  char err[128];
  assert_int_equal(ptv_ch_params_set(&pp, "suspect_deliv=32767", err, sizeof(err)), 0);
  assert_int_equal(ptv_ch_report_worthy(slow, &pp), 1);
  assert_int_equal(ptv_ch_params_set(&pp, "suspect_deliv=0", err, sizeof(err)), 0);
  assert_int_equal(ptv_ch_report_worthy(0, &pp), 0);
}

/* The source is found failing by its delivery share only while busy; any
 * other parent always can be. */
static void test_share_counts(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  uint16_t busy = (uint16_t)(pp.source_busy_us / PTV_MS);
  assert_true(busy > 0);
  /* The source, not busy: its share does not count. */
  assert_int_equal(ptv_ch_share_counts(0, 0, &pp), 0);
  assert_int_equal(ptv_ch_share_counts(0, (uint16_t)(busy - 1), &pp), 0);
  /* The source, busy: it does. */
  assert_int_equal(ptv_ch_share_counts(0, busy, &pp), 1);
  assert_int_equal(ptv_ch_share_counts(0, 65535, &pp), 1);
  /* A peer parent, at any tier and queue. */
  assert_int_equal(ptv_ch_share_counts(1, 0, &pp), 1);
  assert_int_equal(ptv_ch_share_counts(7, 0, &pp), 1);
  assert_int_equal(ptv_ch_share_counts(255, 0, &pp), 1);
  /* 0 turns the exception off. */
  char err[128];
  assert_int_equal(ptv_ch_params_set(&pp, "source_busy_s=0", err, sizeof(err)), 0);
  assert_int_equal(ptv_ch_share_counts(0, 0, &pp), 1);
}

/* The source's partner slots: the weakest non-child gives way to a
 * stronger newcomer that could win a stripe slot, if it could not carry one
 * peer (below the stream rate); children are never dropped. */
static void test_source_room(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  const uint32_t R = 500; /* stream rate */
  uint32_t up[] = {1280, 128, 640, 256, 1280};
  uint8_t child[] = {0, 1, 0, 0, 1};
  /* free slots: 128 is a child, so 256 (index 3) is the weakest that may go */
  assert_int_equal(ptv_ch_source_room(up, child, 5, 1280, R, 1, 0, &pp), 3);
  assert_int_equal(ptv_ch_source_room(up, child, 5, 257, R, 1, 0, &pp), 3);
  /* no stronger than it: refused */
  assert_int_equal(ptv_ch_source_room(up, child, 5, 256, R, 1, 0, &pp), -1);
  assert_int_equal(ptv_ch_source_room(up, child, 5, 0, R, 1, 0, &pp), -1);
  /* full: only a newcomer that beats the price by outbid_pct (20%) */
  assert_int_equal(ptv_ch_source_room(up, child, 5, 1280, R, 0, 1000, &pp), 3);
  assert_int_equal(ptv_ch_source_room(up, child, 5, 1200, R, 0, 1000, &pp), -1);
  assert_int_equal(ptv_ch_source_room(up, child, 5, 1201, R, 0, 1000, &pp), 3);
  /* the weakest droppable carries a stream: kept */
  uint32_t strong[] = {1280, 128, 640, 512, 1280};
  assert_int_equal(ptv_ch_source_room(strong, child, 5, 2000, R, 1, 0, &pp), -1);
  assert_int_equal(ptv_ch_source_room(strong, child, 5, 2000, 700, 1, 0, &pp), 3);
  /* every partner a child, no partner, or the rule off: refused */
  uint8_t all[] = {1, 1, 1, 1, 1};
  assert_int_equal(ptv_ch_source_room(up, all, 5, 100000, R, 1, 0, &pp), -1);
  assert_int_equal(ptv_ch_source_room(up, child, 0, 100000, R, 1, 0, &pp), -1);
  char err[128];
  assert_int_equal(ptv_ch_params_set(&pp, "source_swap=0", err, sizeof(err)), 0);
  assert_int_equal(ptv_ch_source_room(up, child, 5, 1280, R, 1, 0, &pp), -1);
  /* random populations, against the contract */
  pp = defaults();
  for (int it = 0; it < 5000; it++) {
    uint32_t u[16];
    uint8_t c[16];
    size_t n = (size_t)(xrand() % 17);
    for (size_t i = 0; i < n; i++) {
      u[i] = (uint32_t)(xrand() % 6) * 256;
      c[i] = (uint8_t)(xrand() % 3 == 0);
    }
    uint32_t nu = (uint32_t)(xrand() % 6) * 256, fs = (uint32_t)(xrand() % 2),
             price = (uint32_t)(xrand() % 6) * 256;
    int k = ptv_ch_source_room(u, c, n, nu, R, fs, price, &pp);
    uint32_t minfree = UINT32_MAX;
    for (size_t i = 0; i < n; i++)
      if (!c[i] && u[i] < minfree) minfree = u[i];
    int wins = fs > 0 || beats(nu, price, pp.outbid_pct);
    if (wins && minfree < nu && minfree < R) {
      assert_true(k >= 0 && (size_t)k < n);
      assert_false(c[k]);
      assert_int_equal(u[k], minfree);
    } else {
      assert_int_equal(k, -1);
    }
  }
}

static void test_source_keeps(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  ptv_tstamp old = pp.hold_us;
  assert_int_equal(ptv_ch_source_keeps(0, 1, old, &pp), 0);     /* droppable */
  assert_int_equal(ptv_ch_source_keeps(1, 1, old, &pp), 1);     /* a child */
  assert_int_equal(ptv_ch_source_keeps(0, 0, old, &pp), 1);     /* not up yet */
  assert_int_equal(ptv_ch_source_keeps(0, 1, old - 1, &pp), 1); /* young */
  assert_int_equal(ptv_ch_source_keeps(0, 1, 0, &pp), 1);
  char err[128];
  assert_int_equal(ptv_ch_params_set(&pp, "hold_s=0", err, sizeof(err)), 0);
  assert_int_equal(ptv_ch_source_keeps(0, 1, 0, &pp), 0);
}

/* ---- the market ------------------------------------------------------------------ */

static ptv_ch_child kid(ptv_id id, uint32_t bid, uint16_t mask) {
  ptv_ch_child k;
  memset(&k, 0, sizeof(k));
  k.id = id;
  k.bid_kbps = bid;
  k.mask = mask;
  return k;
}

static int popcount16(uint16_t x) {
  int n = 0;
  for (; x; x &= (uint16_t)(x - 1)) n++;
  return n;
}

/* Every reported eviction names a child and one stripe that child holds,
 * and no (child, stripe) twice. */
static void check_evictions(const ptv_ch_child *kids, size_t nk, const size_t *evc,
                            const uint16_t *evb, size_t nev) {
  for (size_t i = 0; i < nev; i++) {
    assert_true(evc[i] < nk);
    assert_int_equal(popcount16(evb[i]), 1);
    assert_true((kids[evc[i]].mask & evb[i]) == evb[i]);
    for (size_t j = 0; j < i; j++) assert_false(evc[i] == evc[j] && evb[i] == evb[j]);
  }
}

static void test_grant_free_slots(void **state) {
  ptv_ch_params pp = defaults();
  ptv_ch_child k[] = {kid(1, 100, 0x3), kid(2, 200, 0x4)}; /* 3 slots used */
  size_t evc[16];
  uint16_t evb[16];
  size_t nev = 99;
  /* 8 slots, 5 free: want <= free is granted in full, nobody evicted even
   * for a rich bidder with evictions allowed. */
  for (unsigned want = 0; want <= 5; want++) {
    nev = 99;
    assert_int_equal(ptv_ch_grant(k, NELEM(k), 8, want, 100000, &pp, 8, evc, evb, &nev), want);
    assert_int_equal(nev, 0);
  }
  /* want > free: the free ones only, when the bidder cannot evict. */
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 8, 7, 10, &pp, 8, evc, evb, &nev), 5);
  assert_int_equal(nev, 0);
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 8, 7, 100000, &pp, 0, evc, evb, &nev), 5);
  assert_int_equal(nev, 0);
  /* No children at all. */
  nev = 99;
  assert_int_equal(ptv_ch_grant(NULL, 0, 4, 3, 1, &pp, 2, evc, evb, &nev), 3);
  assert_int_equal(nev, 0);
  nev = 99;
  assert_int_equal(ptv_ch_grant(NULL, 0, 4, 9, 1, &pp, 2, evc, evb, &nev), 4);
  assert_int_equal(nev, 0);
  nev = 99;
  assert_int_equal(ptv_ch_grant(NULL, 0, 0, 2, 1000, &pp, 2, evc, evb, &nev), 0);
  assert_int_equal(nev, 0);
}

static void test_grant_full_evicts_poorest(void **state) {
  ptv_ch_params pp = defaults();
  /* Full (4 slots, 4 children with one stripe each); a bidder richer than
   * all of them by more than outbid_pct. */
  ptv_ch_child k[] = {kid(10, 500, 0x01), kid(11, 100, 0x02), kid(12, 300, 0x04),
                      kid(13, 200, 0x08)};
  size_t evc[16];
  uint16_t evb[16];
  size_t nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 4, 2, 10000, &pp, 2, evc, evb, &nev), 2);
  assert_int_equal(nev, 2);
  check_evictions(k, NELEM(k), evc, evb, nev);
  /* The two poorest, poorest first. */
  assert_int_equal(evc[0], 1);
  assert_int_equal(evc[1], 3);
  assert_int_equal(evb[0], 0x02);
  assert_int_equal(evb[1], 0x08);
  /* At most max_evict, however many it wants. */
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 4, 4, 10000, &pp, 3, evc, evb, &nev), 3);
  assert_int_equal(nev, 3);
  check_evictions(k, NELEM(k), evc, evb, nev);
  assert_int_equal(evc[0], 1);
  assert_int_equal(evc[1], 3);
  assert_int_equal(evc[2], 2);
  /* No more than it wants either. */
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 4, 1, 10000, &pp, 3, evc, evb, &nev), 1);
  assert_int_equal(nev, 1);
  assert_int_equal(evc[0], 1);
  /* max_evict 0: nothing, however rich. */
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 4, 2, UINT32_MAX, &pp, 0, evc, evb, &nev), 0);
  assert_int_equal(nev, 0);
}

static void test_grant_outbid_threshold(void **state) {
  ptv_ch_params pp = defaults();
  /* Full; poorest bids 1000, next 5000. */
  ptv_ch_child k[] = {kid(1, 5000, 0x1), kid(2, 1000, 0x2)};
  const uint32_t thr = 1000u * (100u + pp.outbid_pct) / 100u;
  assert_int_equal(1000u * (100u + pp.outbid_pct) % 100u, 0);
  size_t evc[4];
  uint16_t evb[4];
  size_t nev = 99;
  /* Not more than outbid_pct above the poorest: nothing. */
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 2, 2, thr, &pp, 4, evc, evb, &nev), 0);
  assert_int_equal(nev, 0);
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 2, 1, 1000, &pp, 4, evc, evb, &nev), 0);
  assert_int_equal(nev, 0);
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 2, 1, 999, &pp, 4, evc, evb, &nev), 0);
  assert_int_equal(nev, 0);
  /* Just above it: the poorest only (the other is not beaten). */
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 2, 2, thr + 1, &pp, 4, evc, evb, &nev), 1);
  assert_int_equal(nev, 1);
  assert_int_equal(evc[0], 1);
  assert_int_equal(evb[0], 0x2);
  /* The threshold follows the parameter. */
  pp.outbid_pct = 100;
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 2, 1, 2000, &pp, 4, evc, evb, &nev), 0);
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 2, 1, 2001, &pp, 4, evc, evb, &nev), 1);
  assert_int_equal(evc[0], 1);
}

static void test_grant_free_then_evict(void **state) {
  ptv_ch_params pp = defaults();
  /* 4 slots, 3 used: one free, then the poorest. */
  ptv_ch_child k[] = {kid(1, 400, 0x1), kid(2, 100, 0x2), kid(3, 300, 0x4)};
  size_t evc[4];
  uint16_t evb[4];
  size_t nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 4, 2, 10000, &pp, 1, evc, evb, &nev), 2);
  assert_int_equal(nev, 1);
  assert_int_equal(evc[0], 1);
  assert_int_equal(evb[0], 0x2);
}

static void test_grant_multi_stripe_child(void **state) {
  ptv_ch_params pp = defaults();
  /* The poorest holds two stripes: the eviction takes one it holds. */
  ptv_ch_child k[] = {kid(1, 900, 0x01), kid(2, 100, 0x60)};
  size_t evc[4];
  uint16_t evb[4];
  size_t nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 1, 10000, &pp, 2, evc, evb, &nev), 1);
  assert_int_equal(nev, 1);
  check_evictions(k, NELEM(k), evc, evb, nev);
  assert_int_equal(evc[0], 1);
  assert_true(evb[0] != 0x60); /* one stripe, not its whole mask */
}

/* nonup_stripes: a peer that passes nothing on asks for at most that many
 * stripes (by default none), counting those it holds or asked for,
 * round-robin from start. */
static void test_limit_need(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  assert_int_equal(pp.nonup_stripes, 0);
  /* A contributor asks for everything it lacks. */
  assert_int_equal(ptv_ch_limit_need(0xb4, 3, 8, 0, 1, &pp), 0xb4);
  /* By default a non-contributor asks for nothing. */
  assert_int_equal(ptv_ch_limit_need(0xff, 0, 8, 0, 0, &pp), 0);
  /* One allowed, none held: the first at or after start. */
  pp.nonup_stripes = 1;
  assert_int_equal(ptv_ch_limit_need(0xff, 0, 8, 0, 0, &pp), 0x01);
  assert_int_equal(ptv_ch_limit_need(0xff, 0, 8, 5, 0, &pp), 0x20);
  assert_int_equal(ptv_ch_limit_need(0x12, 0, 8, 5, 0, &pp), 0x02); /* wraps */
  assert_int_equal(ptv_ch_limit_need(0x12, 0, 8, 2, 0, &pp), 0x10);
  /* Holding one (or having asked for one): nothing more. */
  assert_int_equal(ptv_ch_limit_need(0xfe, 1, 8, 0, 0, &pp), 0);
  assert_int_equal(ptv_ch_limit_need(0xfc, 2, 8, 0, 0, &pp), 0);
  /* Nothing needed: nothing asked. */
  assert_int_equal(ptv_ch_limit_need(0, 0, 8, 3, 0, &pp), 0);
  /* Two allowed. */
  pp.nonup_stripes = 2;
  assert_int_equal(ptv_ch_limit_need(0xff, 0, 8, 7, 0, &pp), 0x81);
  assert_int_equal(ptv_ch_limit_need(0xff, 1, 8, 7, 0, &pp), 0x80);
  /* Stripes beyond S are never asked for; start is taken mod S. */
  assert_int_equal(ptv_ch_limit_need(0xf0, 0, 4, 9, 0, &pp), 0);
  assert_int_equal(ptv_ch_limit_need(0x0f, 0, 4, 9, 0, &pp), 0x06);
  /* S or more: no limit. */
  pp.nonup_stripes = 8;
  assert_int_equal(ptv_ch_limit_need(0xff, 5, 8, 0, 0, &pp), 0xff);
  ptv_ch_params q = defaults();
  char err[128];
  assert_int_equal(ptv_ch_params_set(&q, "nonup_stripes=3", err, sizeof(err)), 0);
  assert_int_equal(q.nonup_stripes, 3);
  assert_int_equal(ptv_ch_params_set(&q, "nonup_stripes=17", err, sizeof(err)), -1);
}

/* Partners of the peers that pass nothing on: a stripe is 60 kbps; 0 and
 * 40 kbps peers are below it. */
static void test_accept_nonup(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  assert_int_equal(pp.nonup_partners, 8);
  assert_int_equal(pp.nonup_turn_us, 10 * PTV_S);
  uint32_t up[12];
  ptv_tstamp age[12];
  uint8_t child[12];
  int drop = 7;
  /* Contributors are always taken, by anyone (drop reset to -1). */
  assert_int_equal(ptv_ch_accept(0, 60, 60, NULL, NULL, NULL, 0, &pp, &drop), 1);
  assert_int_equal(drop, -1);
  assert_int_equal(ptv_ch_accept(2000, 60, 60, NULL, NULL, NULL, 0, &pp, &drop), 1);
  /* A peer below a stripe refuses another, whatever it has. */
  assert_int_equal(ptv_ch_accept(0, 0, 60, NULL, NULL, NULL, 0, &pp, &drop), 0);
  assert_int_equal(ptv_ch_accept(59, 40, 60, NULL, NULL, NULL, 0, &pp, &drop), 0);
  /* A contributor with 7 of them (and 4 contributors): takes an eighth. */
  for (int i = 0; i < 12; i++) {
    up[i] = i < 7 ? (i % 2 ? 40u : 0u) : 500u;
    age[i] = (ptv_tstamp)(i + 1) * PTV_S; /* partner 6 the oldest of the kind: 7 s */
    child[i] = 0;
  }
  assert_int_equal(ptv_ch_accept(500, 0, 60, up, age, child, 11, &pp, &drop), 1);
  assert_int_equal(drop, -1);
  /* With 8: refuses while none has been a partner for 10 s ... */
  up[7] = 0; /* partner 7, 8 s */
  assert_int_equal(ptv_ch_accept(500, 0, 60, up, age, child, 11, &pp, &drop), 0);
  assert_int_equal(drop, -1);
  /* ... then turns out the longest-standing one that is not its child. */
  age[3] = 10 * PTV_S;
  assert_int_equal(ptv_ch_accept(500, 40, 60, up, age, child, 11, &pp, &drop), 1);
  assert_int_equal(drop, 3);
  age[5] = 30 * PTV_S;
  assert_int_equal(ptv_ch_accept(500, 40, 60, up, age, child, 11, &pp, &drop), 1);
  assert_int_equal(drop, 5);
  child[5] = 1; /* a child keeps its place */
  assert_int_equal(ptv_ch_accept(500, 40, 60, up, age, child, 11, &pp, &drop), 1);
  assert_int_equal(drop, 3);
  child[3] = 1;
  assert_int_equal(ptv_ch_accept(500, 40, 60, up, age, child, 11, &pp, &drop), 0);
  /* Contributors (partners 8-10, 9-11 s) never count or go. */
  age[8] = 60 * PTV_S;
  assert_int_equal(ptv_ch_accept(500, 40, 60, up, age, child, 11, &pp, &drop), 0);
  /* Off: anyone is taken. */
  pp.nonup_partners = 0;
  assert_int_equal(ptv_ch_accept(0, 0, 60, up, age, child, 11, &pp, &drop), 1);
  assert_int_equal(drop, -1);
  assert_int_equal(ptv_ch_accept(500, 0, 60, up, age, child, 11, &pp, &drop), 1);
  assert_int_equal(drop, -1);
}

static void test_pick_candidate_nonup(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  const uint8_t reach[6] = {1, 1, 0, 1, 1, 0};
  const uint32_t up[6] = {0, 500, 2000, 40, 100, 0};
  assert_int_equal(ptv_ch_pick_candidate(reach, up, 0, 0, 60, &pp, 3), -1);
  /* Below a stripe: only the reachable contributors, 1 and 4. */
  int seen[6] = {0};
  for (uint64_t r = 0; r < 40; r++) seen[ptv_ch_pick_candidate(reach, up, 6, 0, 60, &pp, r)]++;
  assert_true(seen[1] > 0 && seen[4] > 0);
  assert_int_equal(seen[0] + seen[2] + seen[3] + seen[5], 0);
  /* A contributor: any reachable one, 0 1 3 4. */
  memset(seen, 0, sizeof(seen));
  for (uint64_t r = 0; r < 40; r++) seen[ptv_ch_pick_candidate(reach, up, 6, 60, 60, &pp, r)]++;
  assert_true(seen[0] > 0 && seen[1] > 0 && seen[3] > 0 && seen[4] > 0);
  assert_int_equal(seen[2] + seen[5], 0);
  /* No reachable contributor: any reachable one. */
  const uint32_t none[6] = {0, 10, 2000, 40, 0, 0};
  memset(seen, 0, sizeof(seen));
  for (uint64_t r = 0; r < 40; r++) seen[ptv_ch_pick_candidate(reach, none, 6, 0, 60, &pp, r)]++;
  assert_true(seen[0] > 0 && seen[1] > 0 && seen[3] > 0 && seen[4] > 0);
  assert_int_equal(seen[2] + seen[5], 0);
  /* None reachable: any. */
  const uint8_t cut[3] = {0, 0, 0};
  memset(seen, 0, sizeof(seen));
  for (uint64_t r = 0; r < 30; r++) seen[ptv_ch_pick_candidate(cut, up, 3, 0, 60, &pp, r)]++;
  assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
  /* Off: a peer below a stripe picks among every reachable one. */
  pp.nonup_partners = 0;
  memset(seen, 0, sizeof(seen));
  for (uint64_t r = 0; r < 40; r++) seen[ptv_ch_pick_candidate(reach, up, 6, 0, 60, &pp, r)]++;
  assert_true(seen[0] > 0 && seen[3] > 0);
}

/* keep_fed: a full parent takes no stripe from a child fed on keep_fed
 * stripes or fewer (its map says so; 0 is unknown, and such a child is
 * treated as before). The bidder then takes the next poorest that has
 * stripes to spare, or nothing. */
/* The source spreads its slots: full, asked for a stripe with fewer than
 * source_roots children, it frees one from the poorest child of the stripe
 * with most children, if that one has source_roots + 2 and the bidder bids
 * at least as much as that child. */
static void test_source_spread(void **state) {
  (void)state;
  ptv_ch_params pp = defaults();
  assert_int_equal(pp.source_roots, 2);
  /* 4 stripes, 6 slots, full: stripe 0 has 4 children, 1 has 1, 2 has 1,
   * 3 none. */
  ptv_ch_child k[] = {kid(10, 900, 0x1), kid(11, 300, 0x1), kid(12, 500, 0x1),
                      kid(13, 700, 0x1), kid(14, 800, 0x2), kid(15, 800, 0x4)};
  uint32_t cnt[4];
  size_t evc[4];
  uint16_t evb[4];
  /* Asked for stripe 3: the 300 kbps child of stripe 0 gives it up. */
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 6, 0x8, 600, &pp, cnt, evc, evb), 1);
  assert_int_equal(evc[0], 1);
  assert_int_equal(evb[0], 0x1);
  assert_int_equal(cnt[0], 3);
  assert_int_equal(cnt[1], 1);
  assert_int_equal(cnt[3], 0);
  /* Asked for stripes 1 and 3: stripe 0 can spare one only (3 < 2 + 2). */
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 6, 0xa, 600, &pp, cnt, evc, evb), 1);
  assert_int_equal(evc[0], 1);
  assert_int_equal(cnt[0], 3);
  /* A bidder poorer than the poorest there takes nothing. */
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 6, 0x8, 200, &pp, cnt, evc, evb), 0);
  assert_int_equal(cnt[0], 4);
  /* A free slot: nothing taken. */
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 7, 0x8, 600, &pp, cnt, evc, evb), 0);
  /* A stripe with source_roots children already: nothing taken. */
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 6, 0x1, 600, &pp, cnt, evc, evb), 0);
  pp.source_roots = 1; /* stripe 1 has one: enough */
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 6, 0x2, 600, &pp, cnt, evc, evb), 0);
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 6, 0x8, 600, &pp, cnt, evc, evb), 1);
  pp.source_roots = 0; /* off: counts only */
  assert_int_equal(ptv_ch_source_spread(k, NELEM(k), 4, 6, 0x8, 600, &pp, cnt, evc, evb), 0);
  assert_int_equal(cnt[0], 4);
  assert_int_equal(cnt[3], 0);
  /* A child on several stripes gives up the crowded one only. */
  pp = defaults();
  ptv_ch_child m[] = {kid(20, 100, 0x3), kid(21, 900, 0x1), kid(22, 900, 0x1), kid(23, 900, 0x1)};
  assert_int_equal(ptv_ch_source_spread(m, NELEM(m), 4, 5, 0x4, 600, &pp, cnt, evc, evb), 1);
  assert_int_equal(evc[0], 0);
  assert_int_equal(evb[0], 0x1);
}

/* Stripes granted, those with the fewest children first. */
static void test_fewest_first(void **state) {
  (void)state;
  uint32_t cnt[4] = {3, 0, 2, 0};
  assert_int_equal(ptv_ch_fewest_first(cnt, 4, 0xf, 1), 0x2); /* a tie: the lower */
  assert_int_equal(ptv_ch_fewest_first(cnt, 4, 0xf, 2), 0xa);
  assert_int_equal(ptv_ch_fewest_first(cnt, 4, 0xf, 3), 0xe);
  assert_int_equal(ptv_ch_fewest_first(cnt, 4, 0xf, 9), 0xf);
  assert_int_equal(ptv_ch_fewest_first(cnt, 4, 0x5, 1), 0x4);
  assert_int_equal(ptv_ch_fewest_first(cnt, 4, 0x0, 2), 0x0);
  assert_int_equal(ptv_ch_fewest_first(cnt, 4, 0xf, 0), 0x0);
}

static void test_grant_keep_fed(void **state) {
  ptv_ch_params pp = defaults();
  assert_int_equal(pp.keep_fed, 5);
  /* Full (3 slots). The poorest (100) is fed on 5 of 8 stripes, the next
   * (200) on 6, the richest (300) on 8. */
  ptv_ch_child k[] = {kid(1, 300, 0x1), kid(2, 100, 0x2), kid(3, 200, 0x4)};
  k[0].fed = 8;
  k[1].fed = 5;
  k[2].fed = 6;
  size_t evc[4];
  uint16_t evb[4];
  size_t nev = 99;
  /* One stripe: the 200 child's, not the poorest's. */
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 1, 10000, &pp, 2, evc, evb, &nev), 1);
  assert_int_equal(nev, 1);
  assert_int_equal(evc[0], 2);
  assert_int_equal(evb[0], 0x4);
  /* Three wanted, two evictions allowed: the 200 and the 300 child, never
   * the protected one. */
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 3, 10000, &pp, 2, evc, evb, &nev), 2);
  assert_int_equal(nev, 2);
  check_evictions(k, NELEM(k), evc, evb, nev);
  assert_int_equal(evc[0], 2);
  assert_int_equal(evc[1], 0);
  /* A bidder that beats only the protected child gets nothing. */
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 1, 150, &pp, 2, evc, evb, &nev), 0);
  assert_int_equal(nev, 0);
  /* Off (0), or the child's map unknown (fed 0): the poorest goes, as before. */
  pp.keep_fed = 0;
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 1, 10000, &pp, 2, evc, evb, &nev), 1);
  assert_int_equal(evc[0], 1);
  pp.keep_fed = 5;
  k[1].fed = 0;
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 1, 10000, &pp, 2, evc, evb, &nev), 1);
  assert_int_equal(evc[0], 1);
  /* keep_fed 6 protects the 200 child too. */
  k[1].fed = 5;
  pp.keep_fed = 6;
  nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 1, 10000, &pp, 2, evc, evb, &nev), 1);
  assert_int_equal(evc[0], 0);
  /* The parameter is settable, 0-16. */
  char err[128];
  assert_int_equal(ptv_ch_params_set(&pp, "keep_fed=3", err, sizeof(err)), 0);
  assert_int_equal(pp.keep_fed, 3);
  assert_int_equal(ptv_ch_params_set(&pp, "keep_fed=17", err, sizeof(err)), -1);
}

/* Random full parents: every grant is consistent with the market rule. */
static void test_grant_random_properties(void **state) {
  ptv_ch_params pp = defaults();
  rng_state = 0x1234567887654321ULL;
  for (int round = 0; round < 5000; round++) {
    ptv_ch_child k[12];
    size_t nk = (size_t)(xrand() % 13);
    uint32_t used = 0;
    for (size_t i = 0; i < nk; i++) {
      uint16_t m = (uint16_t)(1u << (xrand() % 8)); /* one stripe each */
      k[i] = kid((ptv_id)i, (uint32_t)(xrand() % 3000), m);
      k[i].fed = (uint8_t)(xrand() % 9); /* 0: unknown */
      used += 1;
    }
    uint32_t slots = used + (uint32_t)(xrand() % 3); /* often full */
    unsigned want = (unsigned)(xrand() % 5);
    uint32_t bid = (uint32_t)(xrand() % 4000);
    unsigned max_evict = (unsigned)(xrand() % 4);
    size_t evc[16];
    uint16_t evb[16];
    size_t nev = 99;
    unsigned g = ptv_ch_grant(k, nk, slots, want, bid, &pp, max_evict, evc, evb, &nev);
    uint32_t free_ = slots - used;
    unsigned from_free = want < free_ ? want : free_;
    assert_true(g <= want);
    assert_true(nev <= max_evict);
    assert_int_equal(g, from_free + nev);
    check_evictions(k, nk, evc, evb, nev);
    if (want <= free_) assert_int_equal(nev, 0);
    /* Each evicted child is beaten by more than outbid_pct and has stripes
     * to spare (keep_fed), and no evictable child that was left alone is
     * poorer than an evicted one. */
    uint32_t max_evicted = 0;
    for (size_t i = 0; i < nev; i++) {
      uint32_t b = k[evc[i]].bid_kbps;
      assert_true(beats(bid, b, pp.outbid_pct));
      assert_true(k[evc[i]].fed == 0 || k[evc[i]].fed > pp.keep_fed);
      if (b > max_evicted) max_evicted = b;
    }
    for (size_t i = 0; i < nk && nev > 0; i++) {
      int evicted = 0;
      for (size_t j = 0; j < nev; j++) evicted |= evc[j] == i;
      int spare = k[i].fed == 0 || k[i].fed > pp.keep_fed;
      if (!evicted && spare) assert_true(k[i].bid_kbps >= max_evicted);
    }
    /* It stopped early only for a reason: the bound, or nobody evictable beaten. */
    if (g < want && nev < max_evict) {
      for (size_t i = 0; i < nk; i++) {
        int evicted = 0;
        for (size_t j = 0; j < nev; j++) evicted |= evc[j] == i;
        if (!evicted && (k[i].fed == 0 || k[i].fed > pp.keep_fed))
          assert_false(beats(bid, k[i].bid_kbps, pp.outbid_pct));
      }
    }
  }
}

/* ---- global placement and the carrying constraint ------------------------------- */

static uint32_t *random_caps(size_t n, uint32_t lo, uint32_t hi) {
  uint32_t *cap = malloc((n ? n : 1) * sizeof(*cap));
  assert_non_null(cap);
  for (size_t i = 0; i < n; i++) cap[i] = lo + (uint32_t)(xrand() % (hi - lo + 1));
  return cap;
}

/* Checks a successful placement against the contract. */
static void check_placement(const uint32_t *cap, size_t n, uint32_t source, uint32_t stream,
                            const uint8_t *tier, int ntiers) {
  assert_true(ntiers >= 1);
  uint64_t up[256] = {0}, cnt[256] = {0};
  uint32_t mincap[256], maxcap[256];
  for (int t = 0; t < 256; t++) mincap[t] = UINT32_MAX, maxcap[t] = 0;
  for (size_t i = 0; i < n; i++) {
    assert_true(tier[i] >= 1 && tier[i] <= ntiers);
    up[tier[i]] += cap[i];
    cnt[tier[i]]++;
    if (cap[i] < mincap[tier[i]]) mincap[tier[i]] = cap[i];
    if (cap[i] > maxcap[tier[i]]) maxcap[tier[i]] = cap[i];
  }
  up[0] = source;
  for (int t = 1; t <= ntiers; t++) {
    assert_true(cnt[t] > 0); /* no empty tier in between */
    /* Each tier is fed by the one above... */
    assert_true(cnt[t] * stream <= up[t - 1]);
    /* ...and every tier but the last is as large as the one above can carry. */
    if (t < ntiers) assert_true(cnt[t] == up[t - 1] / stream);
    /* Strongest peers nearest the source. */
    if (t > 1) assert_true(maxcap[t] <= mincap[t - 1]);
  }
}

static void test_place_strongest_first(void **state) {
  /* Source feeds 3 (1500 / 500). Tier 1: the three strongest (carrying
   * 5000+4000+3000 = 12000, 24 peers); the other 5 in tier 2. */
  const uint32_t cap[] = {100, 5000, 700, 3000, 800, 4000, 900, 600};
  uint8_t tier[NELEM(cap)];
  memset(tier, 0, sizeof(tier));
  int t = ptv_ch_place(cap, NELEM(cap), 1500, 500, 10, tier);
  assert_int_equal(t, 2);
  for (size_t i = 0; i < NELEM(cap); i++)
    assert_int_equal(tier[i], cap[i] >= 3000 ? 1 : 2);
  check_placement(cap, NELEM(cap), 1500, 500, tier, t);
  assert_int_equal(ptv_ch_check_carrying(cap, tier, NELEM(cap), 1500, 500), 0);
}

static void test_place_chain(void **state) {
  /* Each peer can feed exactly one: one per tier. */
  const uint32_t cap[] = {500, 500, 500, 500, 500};
  uint8_t tier[5];
  int t = ptv_ch_place(cap, 5, 500, 500, 10, tier);
  assert_int_equal(t, 5);
  int seen[6] = {0};
  for (int i = 0; i < 5; i++) {
    assert_in_range(tier[i], 1, 5);
    seen[tier[i]]++;
  }
  for (int i = 1; i <= 5; i++) assert_int_equal(seen[i], 1);
  /* Exactly as many tiers allowed as needed: fits. Fewer: does not. */
  assert_int_equal(ptv_ch_place(cap, 5, 500, 500, 5, tier), 5);
  assert_int_equal(ptv_ch_place(cap, 5, 500, 500, 4, tier), -1);
  assert_true(ptv_ch_check_carrying(cap, tier, 5, 500, 500) != 0);
}

static void test_place_random_population(void **state) {
  rng_state = 0xC0FFEE1234ULL;
  const uint32_t stream = 500;
  for (int round = 0; round < 200; round++) {
    size_t n = 1 + (size_t)(xrand() % 600);
    /* Each able to carry at least one stream, so the population fits. */
    uint32_t *cap = random_caps(n, 500, 4000);
    uint32_t source = stream * (1 + (uint32_t)(xrand() % 6));
    uint8_t *tier = malloc(n);
    assert_non_null(tier);
    int t = ptv_ch_place(cap, n, source, stream, 254, tier);
    assert_true(t >= 1);
    check_placement(cap, n, source, stream, tier, t);
    /* Tier 1 as large as the source can feed (or everyone). */
    size_t n1 = 0;
    for (size_t i = 0; i < n; i++) n1 += tier[i] == 1;
    size_t want1 = source / stream;
    assert_int_equal(n1, want1 < n ? want1 : n);
    assert_int_equal(ptv_ch_check_carrying(cap, tier, n, source, stream), 0);
    /* With exactly as many tiers allowed the same placement fits; with one
     * fewer it does not, and its last tier is then overloaded. */
    assert_int_equal(ptv_ch_place(cap, n, source, stream, (unsigned)t, tier), t);
    if (t > 1) {
      assert_int_equal(ptv_ch_place(cap, n, source, stream, (unsigned)t - 1, tier), -1);
      assert_int_equal(ptv_ch_check_carrying(cap, tier, n, source, stream), t - 1);
    }
    free(cap);
    free(tier);
  }
}

static void test_place_too_shallow(void **state) {
  rng_state = 42;
  /* Source feeds 4; tier 1 carries at most 4 x 5000 / 500 = 40; 200 peers
   * cannot fit in 2 tiers. */
  size_t n = 200;
  uint32_t *cap = random_caps(n, 500, 5000);
  uint8_t tier[200];
  assert_int_equal(ptv_ch_place(cap, n, 2000, 500, 2, tier), -1);
  assert_int_equal(ptv_ch_place(cap, n, 2000, 500, 1, tier), -1);
  int t = ptv_ch_place(cap, n, 2000, 500, 254, tier);
  assert_true(t >= 3);
  check_placement(cap, n, 2000, 500, tier, t);
  /* Nobody can carry anyone: no depth is enough. */
  const uint32_t zero[] = {0, 0, 0};
  uint8_t zt[3];
  assert_int_equal(ptv_ch_place(zero, 3, 500, 500, 254, zt), -1);
  /* The source cannot feed even one. */
  const uint32_t one[] = {5000};
  uint8_t ot[1];
  assert_int_equal(ptv_ch_place(one, 1, 499, 500, 254, ot), -1);
  assert_int_equal(ptv_ch_place(one, 1, 500, 500, 254, ot), 1);
  assert_int_equal(ot[0], 1);
  free(cap);
}

static void test_place_empty(void **state) {
  uint8_t tier[1] = {77};
  uint32_t cap[1] = {1000};
  assert_int_equal(ptv_ch_place(cap, 0, 1000, 500, 10, tier), 0);
  assert_int_equal(tier[0], 77); /* nothing written */
  assert_int_equal(ptv_ch_check_carrying(cap, tier, 0, 1000, 500), 0);
  assert_int_equal(ptv_ch_check_carrying(cap, tier, 0, 0, 500), 0);
}

static void test_check_carrying_violations(void **state) {
  /* Source 1000, stream 500: tier 1 holds 2; their 2000 carry 4 in tier 2. */
  const uint32_t cap[] = {1000, 1000, 600, 600, 600, 600, 600, 600};
  uint8_t ok[] = {1, 1, 2, 2, 2, 2, 3, 3};
  assert_int_equal(ptv_ch_check_carrying(cap, ok, 8, 1000, 500), 0);
  /* Too many in tier 2. */
  uint8_t t2[] = {1, 1, 2, 2, 2, 2, 2, 3};
  assert_int_equal(ptv_ch_check_carrying(cap, t2, 8, 1000, 500), 2);
  /* Too many in tier 1 (and so in none below): the first, 1. */
  uint8_t t1[] = {1, 1, 1, 2, 2, 2, 2, 2};
  assert_int_equal(ptv_ch_check_carrying(cap, t1, 8, 1000, 500), 1);
  /* Tier 3 over what tier 2 carries: 2 x 600 = 1200 carries 2, not 3. */
  const uint32_t c3[] = {1000, 1000, 600, 600, 100, 100, 100};
  uint8_t t3[] = {1, 1, 2, 2, 3, 3, 3};
  assert_int_equal(ptv_ch_check_carrying(c3, t3, 7, 1000, 500), 3);
  uint8_t t3ok[] = {1, 1, 2, 2, 3, 3, 2};
  assert_int_equal(ptv_ch_check_carrying(c3, t3ok, 7, 1000, 500), 0);
  /* An empty tier between: the next cannot be fed. */
  uint8_t gap[] = {1, 1, 3, 3, 3, 3, 3};
  assert_int_equal(ptv_ch_check_carrying(c3, gap, 7, 1000, 500), 3);
  /* A weak source. */
  uint8_t all1[] = {1};
  assert_int_equal(ptv_ch_check_carrying(cap, all1, 1, 499, 500), 1);
  assert_int_equal(ptv_ch_check_carrying(cap, all1, 1, 500, 500), 0);
  /* Order of peers does not matter. */
  const uint32_t c3r[] = {100, 600, 100, 1000, 100, 600, 1000};
  uint8_t t3r[] = {3, 2, 3, 1, 3, 2, 1};
  assert_int_equal(ptv_ch_check_carrying(c3r, t3r, 7, 1000, 500), 3);
}

/* Random assignments: check_carrying names the first tier whose demand the
 * tier above cannot carry. */
static void test_check_carrying_random(void **state) {
  rng_state = 777;
  for (int round = 0; round < 2000; round++) {
    size_t n = 1 + (size_t)(xrand() % 40);
    uint32_t *cap = random_caps(n, 0, 3000);
    uint8_t tier[40];
    for (size_t i = 0; i < n; i++) tier[i] = (uint8_t)(1 + xrand() % 5);
    uint32_t source = (uint32_t)(xrand() % 5000), stream = 1 + (uint32_t)(xrand() % 800);
    uint64_t up[7] = {0}, cnt[7] = {0};
    for (size_t i = 0; i < n; i++) up[tier[i]] += cap[i], cnt[tier[i]]++;
    up[0] = source;
    int want = 0;
    for (int t = 1; t <= 5 && !want; t++)
      if (cnt[t] * stream > up[t - 1]) want = t;
    assert_int_equal(ptv_ch_check_carrying(cap, tier, n, source, stream), want);
    free(cap);
  }
}

/* ---- parameters ----------------------------------------------------------------- */

static void test_params_default(void **state) {
  ptv_ch_params p = defaults();
  assert_int_equal(p.stripes, 8); /* documented in the header */
  /* Internally consistent defaults. */
  assert_true(p.max_tier >= 2 && p.max_tier < 255);
  assert_true(p.max_per_parent >= 1);
  assert_true(p.improve_gap >= 1);
  assert_true(p.slot_pct >= 1 && p.slot_pct <= 100);
  assert_true(p.deliv_bad > 0 && p.deliv_bad < 65535);
  assert_true(p.grace_us > 0 && p.hold_us > 0 && p.ask_us > 0);
  /* An honest parent's queue (its pushes to a stripe's children, at most
   * per_stripe_chunks chunk times) stays under the backlog bound. */
  assert_true(p.backlog_max_us >= 500 * PTV_MS);
  /* Overwrites whatever was there. */
  ptv_ch_params q;
  memset(&q, 0xA5, sizeof(q));
  ptv_ch_params_default(&q);
  assert_true(params_equal(&p, &q));
}

static void test_params_set_accepts(void **state) {
  char err[256];
  ptv_ch_params d = defaults(), p = defaults();
  assert_int_equal(ptv_ch_params_set(&p, "hold_s=2.5", err, sizeof(err)), 0);
  assert_true(p.hold_us == 2500000u);
  /* Nothing else changed. */
  p.hold_us = d.hold_us;
  assert_true(params_equal(&p, &d));
  assert_int_equal(ptv_ch_params_set(&p, "outbid_pct=30", err, sizeof(err)), 0);
  assert_int_equal(p.outbid_pct, 30);
  p.outbid_pct = d.outbid_pct;
  assert_true(params_equal(&p, &d));
  /* Each field by its name; times in seconds. */
  p = defaults();
  assert_int_equal(ptv_ch_params_set(&p, "max_tier=7", err, sizeof(err)), 0);
  assert_int_equal(p.max_tier, 7);
  assert_int_equal(ptv_ch_params_set(&p, "max_per_parent=3", err, sizeof(err)), 0);
  assert_int_equal(p.max_per_parent, 3);
  assert_int_equal(ptv_ch_params_set(&p, "improve_gap=1", err, sizeof(err)), 0);
  assert_int_equal(p.improve_gap, 1);
  assert_int_equal(ptv_ch_params_set(&p, "slot_pct=100", err, sizeof(err)), 0);
  assert_int_equal(p.slot_pct, 100);
  assert_int_equal(ptv_ch_params_set(&p, "per_stripe_chunks=5", err, sizeof(err)), 0);
  assert_int_equal(p.per_stripe_chunks, 5);
  assert_int_equal(ptv_ch_params_set(&p, "deliv_bad=40000", err, sizeof(err)), 0);
  assert_int_equal(p.deliv_bad, 40000);
  assert_int_equal(ptv_ch_params_set(&p, "deliv_bad=65535", err, sizeof(err)), 0);
  assert_int_equal(p.deliv_bad, 65535);
  assert_int_equal(ptv_ch_params_set(&p, "outbid_pct=0", err, sizeof(err)), 0);
  assert_int_equal(p.outbid_pct, 0);
  assert_int_equal(ptv_ch_params_set(&p, "grace_s=4", err, sizeof(err)), 0);
  assert_true(p.grace_us == 4 * PTV_S);
  assert_int_equal(ptv_ch_params_set(&p, "improve_s=0.5", err, sizeof(err)), 0);
  assert_true(p.improve_us == 500 * PTV_MS);
  assert_int_equal(ptv_ch_params_set(&p, "refuse_s=7", err, sizeof(err)), 0);
  assert_true(p.refuse_us == 7 * PTV_S);
  assert_int_equal(ptv_ch_params_set(&p, "ask_s=0.001", err, sizeof(err)), 0);
  assert_true(p.ask_us == 1 * PTV_MS);
  assert_int_equal(ptv_ch_params_set(&p, "lag_margin_s=0", err, sizeof(err)), 0);
  assert_true(p.lag_margin_us == 0);
  assert_int_equal(ptv_ch_params_set(&p, "settle_s=30", err, sizeof(err)), 0);
  assert_true(p.settle_us == 30 * PTV_S);
  assert_int_equal(ptv_ch_params_set(&p, "hold_s=20", err, sizeof(err)), 0);
  assert_true(p.hold_us == 20 * PTV_S);
  assert_int_equal(ptv_ch_params_set(&p, "backlog_max_s=0", err, sizeof(err)), 0);
  assert_true(p.backlog_max_us == 0);
  assert_int_equal(ptv_ch_params_set(&p, "source_busy_s=0.5", err, sizeof(err)), 0);
  assert_true(p.source_busy_us == 500 * PTV_MS);
  assert_int_equal(ptv_ch_params_set(&p, "nonup_defer_s=2", err, sizeof(err)), 0);
  assert_true(p.nonup_defer_us == 2 * PTV_S);
  assert_int_equal(ptv_ch_params_set(&p, "source_swap=0", err, sizeof(err)), 0);
  assert_int_equal(p.source_swap, 0);
  assert_int_equal(ptv_ch_params_set(&p, "deliv_bad_held=30000", err, sizeof(err)), 0);
  assert_int_equal(p.deliv_bad_held, 30000);
  assert_int_equal(p.deliv_bad == 30000, 0); /* its own field */
  /* Every settable name is accepted. */
  for (size_t i = 0; i < NELEM(k_names); i++) {
    char a[64];
    snprintf(a, sizeof(a), "%s=1", k_names[i]);
    assert_int_equal(ptv_ch_params_set(&p, a, err, sizeof(err)), 0);
  }
}

static void expect_reject(const char *assignment, const char *name) {
  char err[256];
  ptv_ch_params d = defaults(), p = defaults();
  memset(err, 0, sizeof(err));
  int r = ptv_ch_params_set(&p, assignment, err, sizeof(err));
  if (r == 0) fail_msg("'%s' was accepted", assignment);
  if (!strstr(err, name)) fail_msg("message for '%s' lacks '%s': %s", assignment, name, err);
  /* A rejected assignment leaves the parameters alone. */
  assert_true(params_equal(&p, &d));
}

static void test_params_set_rejects(void **state) {
  /* Unknown names (including the internal microsecond names). */
  expect_reject("bogus=1", "bogus");
  expect_reject("holds=2", "holds");
  expect_reject("hold_s_=2", "hold_s_");
  expect_reject("=2", "");
  /* Missing '='. */
  expect_reject("hold_s", "hold_s");
  expect_reject("outbid_pct", "outbid_pct");
  /* Not numbers. */
  expect_reject("hold_s=", "hold_s");
  expect_reject("hold_s=abc", "hold_s");
  expect_reject("outbid_pct=12x", "outbid_pct");
  expect_reject("outbid_pct=x12", "outbid_pct");
  /* Negative. */
  expect_reject("hold_s=-1", "hold_s");
  expect_reject("outbid_pct=-5", "outbid_pct");
  expect_reject("max_tier=-1", "max_tier");
  /* Out of range for the field (a silently wrapped value would be wrong). */
  expect_reject("max_tier=256", "max_tier");
  expect_reject("max_tier=1000", "max_tier");
  expect_reject("improve_gap=300", "improve_gap");
  expect_reject("outbid_pct=65536", "outbid_pct");
  expect_reject("outbid_pct=1e9", "outbid_pct");
  expect_reject("deliv_bad=65536", "deliv_bad");
  expect_reject("slot_pct=101", "slot_pct");
  expect_reject("hold_s=1e300", "hold_s");
  expect_reject("hold_s=inf", "hold_s");
  /* A short error buffer is not overrun and is terminated. */
  char small[8];
  memset(small, 'Z', sizeof(small));
  ptv_ch_params p = defaults();
  assert_int_not_equal(ptv_ch_params_set(&p, "bogus=1", small, 5), 0);
  assert_true(memchr(small, 0, 5) != NULL);
  assert_int_equal(small[5], 'Z');
}

static void test_params_list(void **state) {
  char buf[4096];
  memset(buf, 'Z', sizeof(buf));
  ptv_ch_params_list(buf, sizeof(buf));
  assert_non_null(memchr(buf, 0, sizeof(buf)));
  for (size_t i = 0; i < NELEM(k_names); i++) {
    /* The name as a whole word, followed by its default. */
    char pat[64];
    snprintf(pat, sizeof(pat), " %s (default ", k_names[i]);
    if (!strstr(buf, pat)) fail_msg("list lacks %s:\n%s", k_names[i], buf);
  }
  /* Round trip: every line names a settable parameter, and setting it to the
   * listed default leaves the defaults unchanged. */
  ptv_ch_params d = defaults();
  size_t lines = 0;
  for (const char *l = buf; *l;) {
    const char *nl = strchr(l, '\n');
    assert_non_null(nl);
    char line[128], name[64];
    double v;
    size_t len = (size_t)(nl - l);
    assert_true(len < sizeof(line));
    memcpy(line, l, len);
    line[len] = 0;
    assert_int_equal(sscanf(line, " %63s (default %lf)", name, &v), 2);
    char a[128], err[256];
    snprintf(a, sizeof(a), "%s=%.17g", name, v);
    ptv_ch_params p = defaults();
    assert_int_equal(ptv_ch_params_set(&p, a, err, sizeof(err)), 0);
    if (!params_equal(&p, &d)) fail_msg("listed default of %s is not the default", name);
    lines++;
    l = nl + 1;
  }
  /* (More lines than names are fine: each was checked to be settable.) */
  assert_true(lines >= NELEM(k_names));
  /* A short buffer is terminated and not overrun. */
  char small[32];
  memset(small, 'Z', sizeof(small));
  ptv_ch_params_list(small, 20);
  assert_non_null(memchr(small, 0, 20));
  for (size_t i = 20; i < sizeof(small); i++) assert_int_equal(small[i], 'Z');
}

/* ---- regressions ------------------------------------------- */
/* Regressions for bugs these tests found. The estimate overflowed for large sample counts: claim x samples x deliv
 * exceeds 64 bits (claim ~2^31, samples >= ~2^17), and 8 + samples wraps in
 * 32 bits for samples near UINT32_MAX. */
static void test_bug_estimate_many_samples(void **state) {
  const uint32_t claim = UINT32_MAX / 2;
  uint32_t e = ptv_ch_estimate(claim, 32768, 1000000);
  assert_true(e <= claim);
  assert_true(fabs((double)e - est_contract(claim, 32768, 1000000)) <= 1.0);
  assert_int_equal(ptv_ch_estimate(4000, 65535, UINT32_MAX), 4000);
  assert_true(ptv_ch_estimate(4000, 0, UINT32_MAX) <= 1);
}

/* "one stripe each (a child keeps its other stripes)": a poorest child with
 * several stripes loses only one, the next eviction goes to the next
 * poorest. The code takes every stripe from the same child. */
static void test_bug_grant_one_stripe_per_child(void **state) {
  ptv_ch_params pp = defaults();
  ptv_ch_child k[] = {kid(1, 100, 0x03), kid(2, 200, 0x04)};
  size_t evc[4];
  uint16_t evb[4];
  size_t nev = 99;
  assert_int_equal(ptv_ch_grant(k, NELEM(k), 3, 2, 10000, &pp, 2, evc, evb, &nev), 2);
  assert_int_equal(nev, 2);
  assert_int_equal(evc[0], 0);
  assert_int_equal(evc[1], 1);
}

/* "nan" passes the range check (every comparison with NaN is false) and is
 * then converted to an integer: undefined behaviour. Fractions for integer
 * parameters are silently truncated. */
static void test_bug_params_nan_and_fractions(void **state) {
  expect_reject("hold_s=nan", "hold_s");
  expect_reject("outbid_pct=nan", "outbid_pct");
  expect_reject("max_tier=2.5", "max_tier");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_estimate_prior_without_samples),
      cmocka_unit_test(test_estimate_converges_to_measured),
      cmocka_unit_test(test_estimate_half_weight_at_eight_samples),
      cmocka_unit_test(test_estimate_monotone),
      cmocka_unit_test(test_estimate_full_delivery_keeps_claim),
      cmocka_unit_test(test_estimate_large_claim_no_overflow),
      cmocka_unit_test(test_pick_lowest_tier_wins),
      cmocka_unit_test(test_pick_exclusions_swap_rule),
      cmocka_unit_test(test_pick_outbid_threshold),
      cmocka_unit_test(test_pick_backlog),
      cmocka_unit_test(test_pick_free_slot_over_outbidding),
      cmocka_unit_test(test_pick_larger_estimate_breaks_ties),
      cmocka_unit_test(test_pick_max_per_parent),
      cmocka_unit_test(test_pick_below),
      cmocka_unit_test(test_pick_none),
      cmocka_unit_test(test_pick_random_against_contract),
      cmocka_unit_test(test_orphan_below),
      cmocka_unit_test(test_move_below),
      cmocka_unit_test(test_parent_unfed_long),
      cmocka_unit_test(test_leave_unreplaced),
      cmocka_unit_test(test_parent_looping),
      cmocka_unit_test(test_worth_switch),
      cmocka_unit_test(test_parent_failing),
      cmocka_unit_test(test_report_worthy),
      cmocka_unit_test(test_share_counts),
      cmocka_unit_test(test_source_room),
      cmocka_unit_test(test_source_keeps),
      cmocka_unit_test(test_grant_free_slots),
      cmocka_unit_test(test_grant_full_evicts_poorest),
      cmocka_unit_test(test_grant_outbid_threshold),
      cmocka_unit_test(test_grant_free_then_evict),
      cmocka_unit_test(test_grant_multi_stripe_child),
      cmocka_unit_test(test_grant_keep_fed),
      cmocka_unit_test(test_source_spread),
      cmocka_unit_test(test_fewest_first),
      cmocka_unit_test(test_grant_random_properties),
      cmocka_unit_test(test_place_strongest_first),
      cmocka_unit_test(test_place_chain),
      cmocka_unit_test(test_place_random_population),
      cmocka_unit_test(test_place_too_shallow),
      cmocka_unit_test(test_place_empty),
      cmocka_unit_test(test_check_carrying_violations),
      cmocka_unit_test(test_check_carrying_random),
      cmocka_unit_test(test_params_default),
      cmocka_unit_test(test_params_set_accepts),
      cmocka_unit_test(test_params_set_rejects),
      cmocka_unit_test(test_params_list),
      cmocka_unit_test(test_limit_need),
      cmocka_unit_test(test_accept_nonup),
      cmocka_unit_test(test_pick_candidate_nonup),
      cmocka_unit_test(test_bug_estimate_many_samples),
      cmocka_unit_test(test_bug_grant_one_stripe_per_child),
      cmocka_unit_test(test_bug_params_nan_and_fractions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
