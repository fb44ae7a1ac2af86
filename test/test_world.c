/* test_world.c -- tests of the simulator's driver (sim/ptv_sim_world.c) run
 * end to end: scenarios are parsed from text in memory (built-in or constant
 * upload distributions, so no files are needed), run with ptv_world_run, and
 * the per-second series and the summary are checked for determinism,
 * bookkeeping, the analytic limits, and the effect of NATs and partitions.
 * The swarms are small so that the whole file runs in a few seconds even
 * under AddressSanitizer. */
#define _POSIX_C_SOURCE 200809L

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
#include "ptv_chandelier.h"
#include "ptv_err.h"
#include "ptv_sim_scenario.h"
#include "ptv_sim_metrics.h"
#include "ptv_sim_world.h"

#define ERRLEN 512

#define assert_near(a, b, eps)                                                 \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(fabs(a_ - b_) <= (eps))) {                                           \
      print_error("%s = %.12g, expected %.12g\n", #a, a_, b_);                 \
      fail();                                                                  \
    }                                                                          \
  } while (0)

/* ---- running a scenario -------------------------------------------------- */

typedef struct {
  ptv_world_summary sum;
  ptv_series_row *rows; /* a copy, owned */
  size_t nrows;
  size_t ncb;            /* progress callbacks seen */
  uint32_t cb_last_t;    /* t_s of the last row passed to the callback */
  int cb_in_order;       /* every callback row was the next second */
  double cb_run_s;       /* run_s as the callback saw it */
} run_result;

#define KEEP_MAX 8
static void *g_keep[KEEP_MAX]; /* series copies not yet freed */

static void keep(void *p) {
  for (size_t i = 0; i < KEEP_MAX; i++)
    if (!g_keep[i]) {
      g_keep[i] = p;
      return;
    }
  fail_msg("too many live results");
}

static void unkeep(void *p) {
  for (size_t i = 0; i < KEEP_MAX; i++)
    if (g_keep[i] == p) g_keep[i] = NULL;
}

static void progress_cb(void *arg, const ptv_series_row *row, double run_s,
                        uint64_t events) {
  (void)events;
  run_result *r = arg;
  if (row->t_s != r->ncb) r->cb_in_order = 0;
  r->cb_last_t = row->t_s;
  r->cb_run_s = run_s;
  r->ncb++;
}

static void parse_ok(ptv_scenario *s, const char *text) {
  char err[ERRLEN] = "";
  int rv = ptv_scenario_parse(s, text, NULL, err, sizeof err);
  if (rv != 0) {
    print_error("scenario did not parse (%d): %s\n", rv, err);
    fail();
  }
}

/* Parses `text`, optionally overrides the seed (seed >= 0), runs it, and
 * fills *out (free with result_free). */
static void run_text(const char *text, long long seed, run_result *out) {
  memset(out, 0, sizeof(*out));
  out->cb_in_order = 1;
  ptv_scenario s;
  parse_ok(&s, text);
  if (seed >= 0) s.seed = (uint64_t)seed;
  char err[ERRLEN] = "";
  ptv_world *w = ptv_world_new(&s, err, sizeof err);
  if (!w) {
    print_error("ptv_world_new failed: %s\n", err);
    ptv_scenario_free(&s);
    fail();
  }
  assert_int_equal(ptv_world_run(w, progress_cb, out), 0);
  ptv_world_summarize(w, &out->sum);
  const ptv_series_row *rows = NULL;
  out->nrows = ptv_world_series(w, &rows);
  if (out->nrows) {
    assert_non_null(rows);
    out->rows = malloc(out->nrows * sizeof(*rows));
    assert_non_null(out->rows);
    keep(out->rows);
    memcpy(out->rows, rows, out->nrows * sizeof(*rows));
  }
  ptv_world_free(w);
  ptv_scenario_free(&s);
}

static void result_free(run_result *r) {
  unkeep(r->rows);
  free(r->rows);
  r->rows = NULL;
  r->nrows = 0;
}

/* A failed assertion leaves the test early; its teardown frees whatever
 * series copies the test had not freed, so LeakSanitizer stays quiet. */
static int teardown_rows(void **state) {
  (void)state;
  for (size_t i = 0; i < KEEP_MAX; i++) {
    free(g_keep[i]);
    g_keep[i] = NULL;
  }
  return 0;
}

static void dump_online(const run_result *r) {
  for (size_t i = 0; i < r->nrows; i++)
    print_message("  t=%u online=%u playing=%u due=%llu missed=%llu peers_missing=%u\n",
                  r->rows[i].t_s, r->rows[i].online, r->rows[i].playing,
                  (unsigned long long)r->rows[i].due,
                  (unsigned long long)r->rows[i].missed, r->rows[i].peers_missing);
}

/* ---- determinism --------------------------------------------------------- */

/* Exercises every random choice: sampled uploads, a NAT mix with relays,
 * loss, a failure, a partition and churn. */
static const char k_busy[] =
    "seed 42\n"
    "stream rate=500kbps chunk=250ms\n"
    "source upload=2500kbps\n"
    "buffer 2s\n"
    "peers upload=sepidar download=8Mbps nat=open:40%,cone:40%,symmetric:20%\n"
    "nat relay on\n"
    "latency uniform 10ms 80ms\n"
    "loss 1%\n"
    "join 50 over 4s\n"
    "from 6s to 16s churn 20%/min\n"
    "at 9s fail 20%\n"
    "at 11s partition 2 for 3s\n"
    "run 18s\n";

#define SAME_U(f)                                                              \
  do {                                                                         \
    if (a->f != b->f) {                                                        \
      print_error("summary.%s differs: %llu vs %llu\n", #f,                    \
                  (unsigned long long)a->f, (unsigned long long)b->f);         \
      fail();                                                                  \
    }                                                                          \
  } while (0)
/* Bitwise: the same run must give the same doubles, not merely close ones. */
#define SAME_D(f)                                                              \
  do {                                                                         \
    if (memcmp(&a->f, &b->f, sizeof(double)) != 0) {                           \
      print_error("summary.%s differs: %.17g vs %.17g\n", #f, (double)a->f,    \
                  (double)b->f);                                               \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static void assert_same_summary(const ptv_world_summary *a, const ptv_world_summary *b) {
  SAME_U(peers_joined);
  SAME_D(duration_s);
  SAME_D(stream_kbps);
  SAME_D(resource_index);
  SAME_D(r_max_kbps);
  SAME_D(lag_bound_s);
  SAME_D(cont_mean);
  SAME_D(cont_share_ge_099);
  SAME_D(cont_stayed_mean);
  SAME_D(cont_stayed_share_ge_099);
  SAME_U(peers_played);
  SAME_U(never_started);
  SAME_D(startup_p50);
  SAME_D(startup_p95);
  SAME_D(lag_p50);
  SAME_D(lag_p95);
  SAME_D(savings);
  SAME_D(overhead);
  SAME_D(partner_changes_per_peer_min);
  SAME_U(events);
  SAME_U(messages);
  SAME_U(dropped_nat);
  SAME_U(dropped_loss);
  SAME_U(dropped_partition);
  SAME_U(nrec);
  for (size_t i = 0; i < a->nrec; i++) {
    SAME_U(rec[i].kind);
    SAME_D(rec[i].at_s);
    SAME_D(rec[i].recovery_s);
    SAME_D(rec[i].recovery_all_s);
    SAME_D(rec[i].all_clean_s);
  }
  /* wall_s and peak_rss_mb depend on the machine and are not compared. */
}

static void first_diff(const run_result *a, const run_result *b) {
  size_t n = a->nrows < b->nrows ? a->nrows : b->nrows;
  for (size_t i = 0; i < n; i++)
    if (memcmp(&a->rows[i], &b->rows[i], sizeof(ptv_series_row)) != 0) {
      print_error("first differing row: t=%u (online %u/%u, due %llu/%llu, missed %llu/%llu)\n",
                  a->rows[i].t_s, a->rows[i].online, b->rows[i].online,
                  (unsigned long long)a->rows[i].due, (unsigned long long)b->rows[i].due,
                  (unsigned long long)a->rows[i].missed,
                  (unsigned long long)b->rows[i].missed);
      return;
    }
}

static void test_same_seed_same_run(void **state) {
  (void)state;
  run_result a, b;
  run_text(k_busy, -1, &a);
  run_text(k_busy, -1, &b);
  assert_int_equal(a.nrows, 18);
  assert_int_equal(b.nrows, a.nrows);
  if (memcmp(a.rows, b.rows, a.nrows * sizeof(ptv_series_row)) != 0) {
    first_diff(&a, &b);
    fail_msg("two runs of the same scenario and seed gave different series");
  }
  assert_same_summary(&a.sum, &b.sum);
  /* The scenario did exercise the random parts. */
  assert_true(a.sum.dropped_loss > 0);
  assert_true(a.sum.dropped_partition > 0);
  assert_true(a.sum.peers_joined > 50); /* churn newcomers */
  assert_int_equal(a.sum.nrec, 2);      /* the failure and the heal */
  result_free(&a);
  result_free(&b);
}

static void test_other_seed_other_run(void **state) {
  (void)state;
  run_result a, b, c;
  run_text(k_busy, -1, &a);  /* seed 42 from the file */
  run_text(k_busy, 43, &b);  /* the override, as `peertv-sim --seed` does */
  run_text(k_busy, 42, &c);  /* overriding with the file's own seed changes nothing */
  assert_int_equal(b.nrows, a.nrows);
  assert_true(memcmp(a.rows, b.rows, a.nrows * sizeof(ptv_series_row)) != 0);
  assert_int_equal(c.nrows, a.nrows);
  assert_memory_equal(a.rows, c.rows, a.nrows * sizeof(ptv_series_row));
  /* The analytic figures depend on the drawn uploads, so they move too. */
  assert_true(a.sum.r_max_kbps != b.sum.r_max_kbps || a.sum.events != b.sum.events);
  result_free(&a);
  result_free(&b);
  result_free(&c);
}

/* ---- bookkeeping --------------------------------------------------------- */

static void check_series_shape(const run_result *r, double run_s) {
  assert_int_equal(r->nrows, (size_t)run_s);
  for (size_t i = 0; i < r->nrows; i++) {
    assert_int_equal(r->rows[i].t_s, i);
    assert_true(r->rows[i].playing <= r->rows[i].online);
    assert_true(r->rows[i].missed <= r->rows[i].due);
  }
  /* The progress callback saw each row once, in order. */
  assert_int_equal(r->ncb, r->nrows);
  assert_true(r->cb_in_order);
  assert_near(r->cb_run_s, run_s, 0);
}

static void test_joins(void **state) {
  (void)state;
  run_result r;
  run_text("seed 5\n"
           "peers upload=sepidar\n"
           "latency uniform 20ms 40ms\n"
           "join 20\n"
           "at 3s join 15 over 4s\n"
           "at 12.5s join 5\n"
           "run 16s\n",
           -1, &r);
  check_series_shape(&r, 16);
  assert_int_equal(r.sum.peers_joined, 40);
  assert_near(r.sum.duration_s, 16, 0);
  assert_near(r.sum.stream_kbps, 500, 0);
  /* Row t covers the second [t, t+1) and is taken at its end. */
  for (size_t t = 0; t < r.nrows; t++) {
    uint32_t on = r.rows[t].online;
    if (t <= 1) assert_int_equal(on, 20);           /* before 3 s */
    else if (t >= 6 && t <= 11) assert_int_equal(on, 35); /* 3..7 s done */
    else if (t >= 12) assert_int_equal(on, 40);     /* after 12.5 s */
    else assert_true(on >= 20 && on <= 35);         /* arriving */
    if (t > 0) assert_true(on >= r.rows[t - 1].online); /* nobody leaves */
  }
  /* Everybody starts playing in a well-provisioned swarm. */
  assert_int_equal(r.rows[r.nrows - 1].playing, 40);
  result_free(&r);
}

static void test_fail_and_leave(void **state) {
  (void)state;
  run_result r;
  run_text("seed 3\n"
           "peers upload=sepidar\n"
           "latency uniform 20ms 40ms\n"
           "join 60 over 5s\n"
           "at 10s fail 50%\n"
           "at 12.5s leave 20%\n"
           "run 15s\n",
           -1, &r);
  check_series_shape(&r, 15);
  assert_int_equal(r.sum.peers_joined, 60);
  for (size_t t = 4; t <= 8; t++) assert_int_equal(r.rows[t].online, 60);
  for (size_t t = 10; t <= 11; t++) assert_int_equal(r.rows[t].online, 30);
  for (size_t t = 13; t < 15; t++) assert_int_equal(r.rows[t].online, 24); /* 30 - 6 */
  /* One recovery entry, for the failure (leaves have none). */
  assert_int_equal(r.sum.nrec, 1);
  assert_int_equal(r.sum.rec[0].kind, PTV_SCN_FAIL);
  assert_near(r.sum.rec[0].at_s, 10, 0);
  result_free(&r);
}

/* Recovery per peer: every peer playing at the event is back at the first
 * second from which it misses nothing for 5 s. That moment comes no later
 * than the first 5 s in which no peer at all misses (all_clean_s), and never
 * when the run ends less than 5 s after the event. */
static void test_recovery_per_peer(void **state) {
  (void)state;
  static const char *head = "seed 4\n"
                            "peers upload=sepidar\n"
                            "latency uniform 20ms 40ms\n"
                            "join 60 over 5s\n";
  char text[512];
  const char *tails[] = {"at 12s fail 50%\nrun 45s\n", "at 12s partition 2 for 6s\nrun 45s\n"};
  for (int k = 0; k < 2; k++) {
    run_result r;
    snprintf(text, sizeof text, "%s%s", head, tails[k]);
    run_text(text, -1, &r);
    assert_int_equal(r.sum.nrec, 1);
    const ptv_world_recovery *rc = &r.sum.rec[0];
    assert_int_equal(rc->kind, k == 0 ? PTV_SCN_FAIL : PTV_SCN_PARTITION);
    assert_near(rc->at_s, k == 0 ? 12 : 18, 0);
    /* 60 peers with Sepidar uploads and a 500 kbps stream recover well
     * within the 27 s left: a -1 here is a failure to heal. */
    assert_true(rc->recovery_all_s >= 0 && rc->recovery_all_s <= 45 - rc->at_s - 5);
    /* Half the peers failing, or half the swarm cut off from the source for
     * 6 s, costs somebody a chunk: recovery takes time. */
    assert_true(rc->recovery_all_s >= 1);
    if (rc->all_clean_s >= 0) assert_true(rc->recovery_all_s <= rc->all_clean_s);
    /* The slowest peer is no faster than 99% of them. */
    if (rc->recovery_s >= 0 && rc->recovery_all_s < rc->recovery_s)
      fail_msg("case %d: 99%% back after %.0f s, all after %.0f s", k, rc->recovery_s,
               rc->recovery_all_s);
    result_free(&r);
  }
  run_result r;
  snprintf(text, sizeof text, "%sat 12s fail 50%%\nrun 16s\n", head);
  run_text(text, -1, &r);
  assert_int_equal(r.sum.nrec, 1);
  assert_near(r.sum.rec[0].recovery_all_s, -1, 0); /* 4 s left: cannot tell */
  assert_near(r.sum.rec[0].all_clean_s, -1, 0);
  result_free(&r);
}

/* A second's share_ge_099 is "playing peers with no miss / playing peers",
 * so the peers counted as missing must be among the peers counted as playing,
 * and the row for the second [9 s, 10 s) must describe the swarm before the
 * failure at exactly 10 s. */
static void test_fail_second_boundary(void **state) {
  (void)state;
  run_result r;
  run_text("seed 3\n"
           "peers upload=sepidar\n"
           "latency uniform 20ms 40ms\n"
           "join 60 over 5s\n"
           "at 10s fail 50%\n"
           "run 12s\n",
           -1, &r);
  int bad = 0;
  for (size_t t = 0; t < r.nrows; t++)
    if (r.rows[t].peers_missing > r.rows[t].playing) bad = 1;
  if (bad || r.rows[9].online != 60) {
    dump_online(&r);
    print_error("row t=9 (the second before the failure at 10 s): online %u (expected 60), "
                "playing %u, peers_missing %u, due %llu\n",
                r.rows[9].online, r.rows[9].playing, r.rows[9].peers_missing,
                (unsigned long long)r.rows[9].due);
    result_free(&r);
    fail_msg("per-second rows mix counts from before and after an event at a whole second");
  }
  result_free(&r);
}

static void test_churn_keeps_size(void **state) {
  (void)state;
  run_result r;
  run_text("seed 9\n"
           "peers upload=sepidar\n"
           "latency uniform 20ms 40ms\n"
           "join 100 over 5s\n"
           "from 10s to 40s churn 30%/min\n"
           "run 40s\n",
           -1, &r);
  check_series_shape(&r, 40);
  for (size_t t = 5; t < r.nrows; t++) {
    if (r.rows[t].online < 90 || r.rows[t].online > 110) {
      dump_online(&r);
      fail_msg("online count %u at t=%zu is not within 10%% of 100", r.rows[t].online, t);
    }
  }
  /* 30%/min of ~100 peers for half a minute: about 15 replacements. */
  assert_true(r.sum.peers_joined >= 100 + 12);
  assert_true(r.sum.peers_joined <= 100 + 18);
  result_free(&r);
}

/* ---- analytic limits ----------------------------------------------------- */

static void test_limits_constant_upload(void **state) {
  (void)state;
  run_result r;
  run_text("stream rate=500kbps chunk=250ms\n"
           "source upload=2.5Mbps\n"
           "peers upload=1Mbps\n"
           "latency fixed 20ms\n"
           "join 50\n"
           "run 2s\n",
           -1, &r);
  assert_int_equal(r.sum.peers_joined, 50);
  /* min(2500, (2500 + 50 * 1000) / 50) = min(2500, 1050) */
  assert_near(r.sum.r_max_kbps, 1050, 1e-9);
  /* (2500 + 50000) / (50 * 500) */
  assert_near(r.sum.resource_index, 2.1, 1e-12);
  /* c = 1000 / 500 = 2: ceil(log 50 / log 3) = ceil(3.56) = 4 chunks */
  assert_near(r.sum.lag_bound_s, ceil(log(50.0) / log(3.0)) * 0.25, 1e-12);
  assert_near(r.sum.lag_bound_s, 1.0, 1e-12);
  result_free(&r);
}

static void test_limits_source_bound(void **state) {
  (void)state;
  run_result r;
  /* Rich peers: the source is the bottleneck, r_max = u_s. Default source
   * upload is 5 x stream = 2000 kbps. */
  run_text("stream rate=400kbps chunk=500ms\n"
           "peers upload=8Mbps\n"
           "latency fixed 20ms\n"
           "join 10\n"
           "run 2s\n",
           -1, &r);
  assert_int_equal(r.sum.peers_joined, 10);
  assert_near(r.sum.r_max_kbps, 2000, 1e-9);
  assert_near(r.sum.resource_index, (2000.0 + 80000.0) / (10 * 400.0), 1e-12);
  /* c = 8000 / 400 = 20: ceil(log 10 / log 21) = 1 chunk */
  assert_near(r.sum.lag_bound_s, 0.5, 1e-12);
  result_free(&r);
}

static void test_limits_poor_peers(void **state) {
  (void)state;
  run_result r;
  /* c = 100 / 400 = 0.25: ceil(log 10 / log 1.25) = ceil(10.3) = 11 */
  run_text("stream rate=400kbps chunk=250ms\n"
           "peers upload=100kbps\n"
           "latency fixed 20ms\n"
           "join 10\n"
           "run 2s\n",
           -1, &r);
  assert_near(r.sum.r_max_kbps, (2000.0 + 1000.0) / 10, 1e-9);
  assert_near(r.sum.resource_index, 3000.0 / 4000.0, 1e-12);
  assert_near(r.sum.lag_bound_s, 11 * 0.25, 1e-12);
  result_free(&r);
  /* Free riders only: c = 0, the bound is n chunk times. */
  run_text("peers upload=0kbps\n"
           "latency fixed 20ms\n"
           "join 10\n"
           "run 2s\n",
           -1, &r);
  assert_near(r.sum.r_max_kbps, 2500.0 / 10, 1e-9);
  assert_near(r.sum.resource_index, 2500.0 / (10 * 500.0), 1e-12);
  assert_near(r.sum.lag_bound_s, 10 * 0.25, 1e-12);
  result_free(&r);
}

/* Jain's index: 1 for equal shares, 1/n when one peer has everything, and
 * the summary's spread figures order as percentiles must. */
static void test_fairness(void **state) {
  (void)state;
  const double eq[] = {0.5, 0.5, 0.5, 0.5}, one[] = {1, 0, 0, 0}, two[] = {1, 0.5};
  assert_near(ptv_jain(eq, 4), 1.0, 1e-12);
  assert_near(ptv_jain(one, 4), 0.25, 1e-12);
  assert_near(ptv_jain(two, 2), 2.25 / 2.5, 1e-12);
  assert_near(ptv_jain(NULL, 0), 1.0, 1e-12);
  assert_near(ptv_jain(one + 1, 3), 1.0, 1e-12); /* all zero: equal */
  run_result r;
  /* 40 peers on 300 kbps each for a 500 kbps stream (RI 0.72): a shortfall
   * to share */
  run_text("seed 3\n"
           "stream rate=500kbps chunk=250ms\n"
           "source upload=2500kbps\n"
           "peers upload=300kbps download=8Mbps\n"
           "latency uniform 20ms 40ms\n"
           "join 40 over 5s\n"
           "run 40s\n",
           -1, &r);
  print_message("RI %.2f: continuity mean %.3f p10 %.3f p50 %.3f Jain %.3f\n",
                r.sum.resource_index, r.sum.cont_mean, r.sum.cont_p10, r.sum.cont_p50,
                r.sum.cont_jain);
  assert_true(r.sum.cont_mean < 0.95);
  assert_true(r.sum.cont_p10 <= r.sum.cont_p50 && r.sum.cont_p50 <= 1.0);
  assert_true(r.sum.cont_p10 <= r.sum.cont_mean);
  assert_true(r.sum.cont_jain > 0 && r.sum.cont_jain <= 1.0);
  result_free(&r);
}

/* ---- the engines through the simulator ----------------------------------- */

static void test_well_provisioned_swarm(void **state) {
  (void)state;
  run_result r;
  run_text("seed 1\n"
           "stream rate=500kbps chunk=250ms\n"
           "source upload=2500kbps\n"
           "buffer 2s\n"
           "peers upload=2Mbps download=8Mbps\n"
           "latency uniform 20ms 40ms\n"
           "loss 0%\n"
           "join 30 over 5s\n"
           "run 40s\n",
           -1, &r);
  check_series_shape(&r, 40);
  const ptv_world_summary *s = &r.sum;
  print_message("  well-provisioned: continuity mean %.4f share>=0.99 %.4f, savings %.4f, "
                "startup p50 %.2f p95 %.2f, lag p50 %.2f p95 %.2f, never started %u, "
                "overhead %.4f\n",
                s->cont_mean, s->cont_share_ge_099, s->savings, s->startup_p50,
                s->startup_p95, s->lag_p50, s->lag_p95, s->never_started, s->overhead);
  assert_int_equal(s->peers_joined, 30);
  assert_int_equal(s->never_started, 0);
  assert_int_equal(s->dropped_nat, 0);
  assert_int_equal(s->dropped_loss, 0);
  assert_int_equal(s->dropped_partition, 0);
  assert_true(s->cont_share_ge_099 >= 0.9);
  /* The source never uploads more than its capacity, so savings is at least
   * 1 - u_s / (n r), here 1 - 2500 / (30 * 500) = 0.833 (less a little for
   * chunk headers and the first seconds before everyone joined). */
  assert_true(s->savings >= 1.0 - 2500.0 / (30 * 500.0) - 0.03);
  assert_true(s->savings < 1.0);
  result_free(&r);
}

/* ---- NAT ----------------------------------------------------------------- */

static const char k_nat_sym[] =
    "seed 3\n"
    "peers upload=1Mbps nat=symmetric:100%\n"
    "nat relay off\n"
    "latency uniform 20ms 40ms\n"
    "join 30 over 3s\n"
    "run 12s\n";

static double peer_up_total(const run_result *r) {
  double b = 0;
  for (size_t i = 0; i < r->nrows; i++) b += r->rows[i].peer_up_bytes;
  return b;
}

static void test_nat_symmetric_no_relay(void **state) {
  (void)state;
  run_result r;
  run_text(k_nat_sym, -1, &r);
  assert_int_equal(r.sum.peers_joined, 30);
  assert_true(r.sum.dropped_nat > 0);
  assert_int_equal(r.sum.dropped_partition, 0);
  /* Peers reach only the (open) source: no chunk goes from peer to peer. */
  assert_near(peer_up_total(&r), 0, 0);
  double src = 0;
  for (size_t i = 0; i < r.nrows; i++) src += r.rows[i].source_bytes;
  assert_true(src > 0);
  /* 30 peers x 500 kbps cannot come from a 2500 kbps source alone. */
  assert_true(r.sum.cont_mean < 0.9);
  result_free(&r);
}

static void test_nat_symmetric_with_relay(void **state) {
  (void)state;
  /* The same swarm with relays: nothing is dropped for NAT reasons and the
   * peers do trade chunks. */
  char text[sizeof k_nat_sym + 16];
  const char *p = strstr(k_nat_sym, "nat relay off");
  assert_non_null(p);
  int len = (int)(p - k_nat_sym);
  snprintf(text, sizeof text, "%.*snat relay on%s", len, k_nat_sym, p + strlen("nat relay off"));
  run_result r;
  run_text(text, -1, &r);
  assert_int_equal(r.sum.dropped_nat, 0);
  assert_true(peer_up_total(&r) > 0);
  result_free(&r);
}

static void test_nat_open_default(void **state) {
  (void)state;
  run_result r;
  run_text("seed 3\n"
           "peers upload=1Mbps\n"
           "latency uniform 20ms 40ms\n"
           "join 30 over 3s\n"
           "run 8s\n",
           -1, &r);
  assert_int_equal(r.sum.dropped_nat, 0);
  assert_true(peer_up_total(&r) > 0);
  result_free(&r);
}

/* ---- partition ----------------------------------------------------------- */

static void test_partition(void **state) {
  (void)state;
  static const char text[] = "seed 6\n"
                             "peers upload=sepidar\n"
                             "latency uniform 20ms 40ms\n"
                             "join 40 over 4s\n"
                             "at 10s partition 2 for 5s\n"
                             "run %s\n";
  char buf[sizeof text + 16];
  run_result r;
  snprintf(buf, sizeof buf, text, "20s");
  run_text(buf, -1, &r);
  assert_true(r.sum.dropped_partition > 0);
  assert_int_equal(r.sum.dropped_nat, 0);
  assert_int_equal(r.sum.nrec, 1);
  assert_int_equal(r.sum.rec[0].kind, PTV_SCN_PARTITION);
  assert_near(r.sum.rec[0].at_s, 15, 0); /* measured from the heal */
  /* A partition splits the swarm but takes nobody off line. */
  for (size_t t = 3; t < r.nrows; t++) assert_int_equal(r.rows[t].online, 40);
  result_free(&r);
  /* Stopped before the partition: nothing is dropped for it. */
  snprintf(buf, sizeof buf, text, "9s");
  run_text(buf, -1, &r);
  assert_int_equal(r.sum.dropped_partition, 0);
  result_free(&r);
}

/* ---- set-up errors ------------------------------------------------------- */

/* The same small swarm under both strategies: Chandelier keeps continuity
 * and plays closer to live than the mesh (its stripes are pushed down a
 * capacity-ordered tree instead of offered hop by hop). */
static void test_chandelier_vs_mesh(void **state) {
  (void)state;
  static const char text[] = "stream rate=500kbps chunk=250ms\n"
                             "source upload=2500kbps\n"
                             "peers upload=sepidar download=8Mbps\n"
                             "latency uniform 10ms 150ms\n"
                             "strategy %s\n"
                             "at 10s join 120 over 10s\n"
                             "run 120s\n";
  char buf[sizeof text + 16];
  run_result m, c;
  snprintf(buf, sizeof buf, text, "mesh");
  run_text(buf, 5, &m);
  snprintf(buf, sizeof buf, text, "chandelier");
  run_text(buf, 5, &c);
  print_message("mesh: continuity %.4f lag p95 %.2f s; chandelier: %.4f, %.2f s\n", m.sum.cont_mean,
                m.sum.lag_p95, c.sum.cont_mean, c.sum.lag_p95);
  assert_int_equal(c.sum.peers_joined, 120);
  assert_true(c.sum.cont_mean >= 0.99);
  assert_true(c.sum.lag_p95 < m.sum.lag_p95);
  result_free(&m);
  result_free(&c);
}

/* 300 Sepidar peers under Chandelier at RI 1.4, joining in the first 10 s. */
#define CH_SWARM_300                                                                               \
  "stream rate=500kbps chunk=250ms\n"                                                              \
  "source upload=2500kbps\n"                                                                       \
  "peers upload=sepidar download=8Mbps\n"                                                          \
  "latency uniform 10ms 150ms\n"                                                                   \
  "loss 0.5%\n"                                                                                    \
  "strategy chandelier\n"                                                                          \
  "join 300 over 10s\n"

/* Streaming and repair go on without the tracker: it is unreachable from
 * 30 s to 75 s, and at 40 s 20% of the peers crash. The survivors find new
 * stripe parents among the partners they have (the loop is between
 * partners) and are back within 10 s; newcomers at 45 s cannot join until
 * the tracker is back (so it really was gone), then do. */
static void test_chandelier_tracker_down(void **state) {
  (void)state;
  run_result r;
  run_text(CH_SWARM_300 "at 30s tracker down for 45s\n"
           "at 40s fail 20%\n"
           "at 45s join 10\n"
           "run 95s\n",
           3, &r);
  assert_true(r.sum.dropped_tracker > 0);
  assert_int_equal(r.sum.nrec, 1);
  const ptv_world_recovery *rc = &r.sum.rec[0];
  assert_int_equal(rc->kind, PTV_SCN_FAIL);
  print_message("tracker down 30-75 s, 20%% fail at 40 s: 99%% back after %.0f s, all %.0f s; "
                "playing at 74 s %u of %u online, at 94 s %u of %u; dropped %llu\n",
                rc->recovery_s, rc->recovery_all_s, r.rows[74].playing, r.rows[74].online,
                r.rows[94].playing, r.rows[94].online, (unsigned long long)r.sum.dropped_tracker);
  assert_true(rc->recovery_s >= 0 && rc->recovery_s <= 10);
  /* After the recovery and until the tracker is back, the survivors play on. */
  for (size_t t = 40 + (size_t)rc->recovery_s + 1; t < 75; t++) {
    double c = ptv_row_continuity(&r.rows[t]);
    if (c < 0.99) fail_msg("second %zu: continuity %.4f without the tracker", t, c);
    assert_int_equal(r.rows[t].playing, 240);
  }
  /* The newcomers waited for the tracker, then joined and play. */
  assert_int_equal(r.rows[74].online, 250);
  assert_int_equal(r.rows[94].playing, 250);
  result_free(&r);
}

/* A peer that lost its stripe parent re-attaches while its subtree may
 * still show the depths it had through it. Without Chandelier's loop guard
 * (loop_guard_s, loop_depth) some took a parent from their own subtree
 * (seeds 2 / 3: loops of up to 13 / 138 of these 300 peers on one stripe;
 * before the engine's maps said "unfed" within a second of a parent's
 * silence, up to 212), and a loop feeds no one. The chains are followed
 * every second. With the guard (1 s) for every peer that needs a parent,
 * also one whose parent fails (session 29; before, seed 4 looped for 2 s),
 * no seed of 1-6 loops at all. */
typedef struct {
  ptv_world *w;
  uint32_t loop_max, loop_seconds;
} loop_watch;

static void loop_cb(void *arg, const ptv_series_row *row, double run_s, uint64_t events) {
  (void)run_s, (void)events;
  loop_watch *lw = arg;
  uint32_t sum = 0;
  for (unsigned b = 0; b < 8; b++) {
    uint32_t reach, orphan, loop;
    ptv_world_stripe_chains(lw->w, b, &reach, &orphan, &loop);
    assert_true(reach + orphan + loop <= row->online); /* each peer counted once at most */
    sum += loop;
    if (loop > lw->loop_max) lw->loop_max = loop;
  }
  lw->loop_seconds += sum > 0;
}

static loop_watch run_loops(long long seed, const ptv_ch_params *pp) {
  static const char text[] = CH_SWARM_300 "at 40s fail 50%\n"
                             "run 60s\n";
  ptv_scenario s;
  parse_ok(&s, text);
  s.seed = (uint64_t)seed;
  ptv_chandelier_set_params(pp);
  char err[ERRLEN] = "";
  loop_watch lw = {0};
  lw.w = ptv_world_new(&s, err, sizeof err);
  assert_non_null(lw.w);
  assert_int_equal(ptv_world_run(lw.w, loop_cb, &lw), 0);
  ptv_world_free(lw.w);
  ptv_scenario_free(&s);
  ptv_chandelier_set_params(NULL);
  return lw;
}

static void test_chandelier_no_stripe_loops(void **state) {
  (void)state;
  static ptv_ch_params on, off;
  ptv_ch_params_default(&on);
  off = on;
  off.loop_guard_us = 0;
  off.loop_depth = 0;
  /* Which seeds loop without the guard is chaotic (any change to the
   * engine moves it), so six of them: with the guard none may loop, and
   * without it some must, or the check (or the scenario) sees nothing. */
  int looped = 0;
  for (long long seed = 1; seed <= 6; seed++) {
    loop_watch without = run_loops(seed, &off), with = run_loops(seed, &on);
    print_message("seed %lld: guard off: loops in %u s, at most %u peers; on: %u s, %u peers\n",
                  seed, without.loop_seconds, without.loop_max, with.loop_seconds,
                  with.loop_max);
    looped += without.loop_max > 0;
    if (with.loop_max > 0)
      fail_msg("seed %lld: %u peers on a loop with the guard on", seed, with.loop_max);
  }
  if (looped < 2) fail_msg("without the guard only %d of 6 seeds looped", looped);
}

static void test_no_peers(void **state) {
  (void)state;
  run_result r;
  run_text("run 3s\n", -1, &r);
  check_series_shape(&r, 3);
  assert_int_equal(r.sum.peers_joined, 0);
  for (size_t t = 0; t < r.nrows; t++) assert_int_equal(r.rows[t].online, 0);
  assert_near(r.sum.r_max_kbps, 2500, 1e-9);
  result_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_same_seed_same_run, teardown_rows),
      cmocka_unit_test_teardown(test_other_seed_other_run, teardown_rows),
      cmocka_unit_test_teardown(test_joins, teardown_rows),
      cmocka_unit_test_teardown(test_fail_and_leave, teardown_rows),
      cmocka_unit_test_teardown(test_fail_second_boundary, teardown_rows),
      cmocka_unit_test_teardown(test_recovery_per_peer, teardown_rows),
      cmocka_unit_test_teardown(test_churn_keeps_size, teardown_rows),
      cmocka_unit_test_teardown(test_limits_constant_upload, teardown_rows),
      cmocka_unit_test_teardown(test_limits_source_bound, teardown_rows),
      cmocka_unit_test_teardown(test_limits_poor_peers, teardown_rows),
      cmocka_unit_test_teardown(test_fairness, teardown_rows),
      cmocka_unit_test_teardown(test_well_provisioned_swarm, teardown_rows),
      cmocka_unit_test_teardown(test_nat_symmetric_no_relay, teardown_rows),
      cmocka_unit_test_teardown(test_nat_symmetric_with_relay, teardown_rows),
      cmocka_unit_test_teardown(test_nat_open_default, teardown_rows),
      cmocka_unit_test_teardown(test_partition, teardown_rows),
      cmocka_unit_test_teardown(test_chandelier_vs_mesh, teardown_rows),
      cmocka_unit_test(test_chandelier_no_stripe_loops),
      cmocka_unit_test_teardown(test_chandelier_tracker_down, teardown_rows),
      cmocka_unit_test_teardown(test_no_peers, teardown_rows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
