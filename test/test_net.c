/* test_net.c -- unit tests for the flow-level network model (ptv_sim_net). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_sim_net.h"

#define UNL PTV_NET_UNLIMITED
#define MBPS 1e6

static void assert_close(double got, double want, double rel) {
  double tol = rel * (fabs(want) > 1 ? fabs(want) : 1);
  if (fabs(got - want) > tol)
    fail_msg("got %.17g, want %.17g (tol %.3g)", got, want, tol);
}

/* flow_rate reports a missing flow as a negative error code in a double. */
static void assert_not_found(double rate) {
  if (rate != (double)PTV_ERR_NOT_FOUND)
    fail_msg("got %.17g, want PTV_ERR_NOT_FOUND", rate);
}

/* ---- basic rates -------------------------------------------------------- */

static void test_single_flow_min_of_caps(void **state) {
  ptv_net *net = ptv_net_new(6);
  int64_t a, b, c;
  (void)state;
  assert_non_null(net);
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 1, UNL, 0.3 * MBPS), 0);
  assert_int_equal(ptv_net_set_caps(net, 2, 2 * MBPS, 8 * MBPS), 0);
  assert_int_equal(ptv_net_set_caps(net, 3, 8 * MBPS, 5 * MBPS), 0);
  a = ptv_net_flow_start(net, 0, 1, 1000, 0, NULL); /* downlink-limited */
  b = ptv_net_flow_start(net, 2, 3, 1000, 0, NULL); /* uplink-limited */
  c = ptv_net_flow_start(net, 4, 5, 1000, 0, NULL); /* both unlimited */
  assert_true(a >= 0 && b >= 0 && c >= 0);
  assert_true(a != b && b != c && a != c);
  assert_close(ptv_net_flow_rate(net, a), 0.3 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, b), 2 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, c), UNL, 1e-12);
  assert_int_equal(ptv_net_nflows(net), 3);
  ptv_net_free(net);
}

static void test_two_flows_share_uplink(void **state) {
  ptv_net *net = ptv_net_new(3);
  int64_t a, b;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, UNL), 0);
  a = ptv_net_flow_start(net, 0, 1, 1e5, 0, NULL);
  assert_close(ptv_net_flow_rate(net, a), 1 * MBPS, 1e-12);
  b = ptv_net_flow_start(net, 0, 2, 1e5, 0, NULL);
  assert_close(ptv_net_flow_rate(net, a), 0.5 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, b), 0.5 * MBPS, 1e-12);
  ptv_net_free(net);
}

static void test_maxmin_classic(void **state) {
  ptv_net *net = ptv_net_new(4);
  int64_t slow, fast, other;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 10 * MBPS, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 1, UNL, 2 * MBPS), 0);
  assert_int_equal(ptv_net_set_caps(net, 2, UNL, 100 * MBPS), 0);
  assert_int_equal(ptv_net_set_caps(net, 3, 100 * MBPS, UNL), 0);
  slow = ptv_net_flow_start(net, 0, 1, 1e6, 0, NULL);
  fast = ptv_net_flow_start(net, 0, 2, 1e6, 0, NULL);
  assert_close(ptv_net_flow_rate(net, slow), 2 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, fast), 8 * MBPS, 1e-12);
  /* A second sender into the slow downlink halves the slow flow; the
   * uplink's leftover goes to the fast flow (two hops of propagation). */
  other = ptv_net_flow_start(net, 3, 1, 1e6, 0, NULL);
  assert_close(ptv_net_flow_rate(net, slow), 1 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, other), 1 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, fast), 9 * MBPS, 1e-12);
  ptv_net_free(net);
}

/* ---- completion times --------------------------------------------------- */

static void test_completion_exact(void **state) {
  ptv_net *net = ptv_net_new(2);
  int tag = 7;
  void *u = NULL;
  int64_t h;
  (void)state;
  assert_int_equal(ptv_net_next_completion(net), PTV_TSTAMP_MAX);
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, UNL), 0);
  h = ptv_net_flow_start(net, 0, 1, 125000, 5 * PTV_S, &tag);
  assert_true(h >= 0);
  /* 125000 B = 1e6 bits at 1 Mbps: exactly one second, not a us more. */
  assert_int_equal(ptv_net_next_completion(net), 6 * PTV_S);
  assert_int_equal(ptv_net_pop_completed(net, 6 * PTV_S - 1, &u), 0);
  assert_null(u);
  assert_int_equal(ptv_net_pop_completed(net, 6 * PTV_S, &u), 1);
  assert_ptr_equal(u, &tag);
  assert_int_equal(ptv_net_nflows(net), 0);
  assert_int_equal(ptv_net_next_completion(net), PTV_TSTAMP_MAX);
  assert_int_equal(ptv_net_pop_completed(net, PTV_TSTAMP_MAX, &u), 0);
  assert_close(ptv_net_bytes_up(net, 0), 125000, 1e-12);
  assert_close(ptv_net_bytes_up(net, 1), 0, 1e-12);
  ptv_net_free(net);
}

static void test_completion_rounds_up(void **state) {
  ptv_net *net = ptv_net_new(2);
  (void)state;
  /* 1000 B at 3 Mbps = 2666.67 us: must be delivered at 2667, never 2666. */
  assert_int_equal(ptv_net_set_caps(net, 0, 3 * MBPS, UNL), 0);
  assert_true(ptv_net_flow_start(net, 0, 1, 1000, 100, NULL) >= 0);
  assert_int_equal(ptv_net_next_completion(net), 100 + 2667);
  ptv_net_free(net);
}

/* 5 Mbps / 9 is inexact in binary (125000 B then computes as 1.8 s plus
 * 2e-10 us); that noise must not push an exact completion a us late. */
static void test_completion_inexact_rate(void **state) {
  ptv_net *net = ptv_net_new(10);
  void *u = NULL;
  int i;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 5 * MBPS, UNL), 0);
  for (i = 1; i <= 9; i++)
    assert_true(ptv_net_flow_start(net, 0, (uint32_t)i, 125000, 0, NULL) >= 0);
  assert_int_equal(ptv_net_next_completion(net), 1800 * PTV_MS);
  for (i = 0; i < 9; i++)
    assert_int_equal(ptv_net_pop_completed(net, 1800 * PTV_MS, &u), 1);
  assert_int_equal(ptv_net_nflows(net), 0);
  ptv_net_free(net);
}

static void test_rerate_midway(void **state) {
  ptv_net *net = ptv_net_new(3);
  int ta = 1, tb = 2;
  void *u = NULL;
  int64_t a, b;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, UNL), 0);
  a = ptv_net_flow_start(net, 0, 1, 125000, 0, &ta);
  assert_int_equal(ptv_net_next_completion(net), 1 * PTV_S);
  /* Halfway: A has 62500 B left; at 0.5 Mbps that is another second. */
  b = ptv_net_flow_start(net, 0, 2, 125000, PTV_S / 2, &tb);
  assert_close(ptv_net_flow_rate(net, a), 0.5 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, b), 0.5 * MBPS, 1e-12);
  assert_close(ptv_net_bytes_up(net, 0), 62500, 1e-12);
  assert_int_equal(ptv_net_next_completion(net), 3 * PTV_S / 2);
  assert_int_equal(ptv_net_pop_completed(net, 3 * PTV_S / 2, &u), 1);
  assert_ptr_equal(u, &ta);
  /* B carried 62500 B in its first second and now runs alone at 1 Mbps. */
  assert_close(ptv_net_flow_rate(net, b), 1 * MBPS, 1e-12);
  assert_int_equal(ptv_net_next_completion(net), 2 * PTV_S);
  assert_close(ptv_net_bytes_up(net, 0), 125000 + 62500, 1e-12);
  assert_int_equal(ptv_net_pop_completed(net, 2 * PTV_S, &u), 1);
  assert_ptr_equal(u, &tb);
  assert_close(ptv_net_bytes_up(net, 0), 250000, 1e-12);
  ptv_net_free(net);
}

static void test_flow_end_speeds_up_other(void **state) {
  ptv_net *net = ptv_net_new(3);
  int ts = 1, tl = 2;
  void *u = NULL;
  int64_t s, l;
  (void)state;
  /* Two senders into one 1 Mbps downlink. */
  assert_int_equal(ptv_net_set_caps(net, 0, 10 * MBPS, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 1, 10 * MBPS, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 2, UNL, 1 * MBPS), 0);
  s = ptv_net_flow_start(net, 0, 2, 12500, 0, &ts);
  l = ptv_net_flow_start(net, 1, 2, 125000, 0, &tl);
  assert_close(ptv_net_flow_rate(net, l), 0.5 * MBPS, 1e-12);
  assert_int_equal(ptv_net_next_completion(net), 200 * PTV_MS);
  assert_int_equal(ptv_net_pop_completed(net, 200 * PTV_MS, &u), 1);
  assert_ptr_equal(u, &ts);
  assert_not_found(ptv_net_flow_rate(net, s));
  assert_close(ptv_net_flow_rate(net, l), 1 * MBPS, 1e-12);
  /* 112500 B left at 1 Mbps: 0.9 s more. */
  assert_int_equal(ptv_net_next_completion(net), 1100 * PTV_MS);
  assert_int_equal(ptv_net_pop_completed(net, 1100 * PTV_MS, &u), 1);
  assert_ptr_equal(u, &tl);
  ptv_net_free(net);
}

/* A downlink only constrains its flows once their senders could overrun it;
 * the model must notice it turning binding on a start and slack again on an
 * end or a reset, and re-rate the flow on the far side either way. */
static void test_link_turns_binding_and_slack(void **state) {
  ptv_net *net = ptv_net_new(4);
  int ta = 1;
  void *u = NULL;
  int64_t a, b, c;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 1.5 * MBPS, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 1, 1.5 * MBPS, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 2, 1.5 * MBPS, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 3, UNL, 2 * MBPS), 0);
  a = ptv_net_flow_start(net, 0, 3, 18750, 0, &ta); /* 0.15 s at 1 Mbps */
  b = ptv_net_flow_start(net, 1, 3, 1e6, 0, NULL);
  /* 2 x 1.5 Mbps can overrun the 2 Mbps downlink: it now binds. */
  assert_close(ptv_net_flow_rate(net, a), 1 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, b), 1 * MBPS, 1e-12);
  /* A ends: the downlink is slack again and B gets its whole uplink. */
  assert_int_equal(ptv_net_next_completion(net), 150 * PTV_MS);
  assert_int_equal(ptv_net_pop_completed(net, 150 * PTV_MS, &u), 1);
  assert_ptr_equal(u, &ta);
  assert_close(ptv_net_flow_rate(net, b), 1.5 * MBPS, 1e-12);
  /* Same through a reset of the other sender. */
  c = ptv_net_flow_start(net, 2, 3, 1e6, 200 * PTV_MS, NULL);
  assert_close(ptv_net_flow_rate(net, b), 1 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, c), 1 * MBPS, 1e-12);
  assert_int_equal(ptv_net_node_reset(net, 2, 300 * PTV_MS, NULL, NULL), 1);
  assert_close(ptv_net_flow_rate(net, b), 1.5 * MBPS, 1e-12);
  ptv_net_free(net);
}

/* The driver pops late: the survivor must speed up from the true completion
 * time, not from the (later) time the driver got round to popping. */
static void test_late_pop_rerates_at_completion_time(void **state) {
  ptv_net *net = ptv_net_new(3);
  void *u = NULL;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, UNL), 0);
  assert_true(ptv_net_flow_start(net, 0, 1, 62500, 0, NULL) >= 0);
  assert_true(ptv_net_flow_start(net, 0, 2, 125000, 0, NULL) >= 0);
  assert_int_equal(ptv_net_next_completion(net), 1 * PTV_S);
  assert_int_equal(ptv_net_pop_completed(net, 5 * PTV_S, &u), 1);
  /* 62500 B left at 1 Mbps from t=1 s. */
  assert_int_equal(ptv_net_next_completion(net), 3 * PTV_S / 2);
  ptv_net_free(net);
}

/* ---- node reset --------------------------------------------------------- */

typedef struct {
  int calls;
  void *seen[8];
} cb_log;

static void record_cb(void *arg, void *user) {
  cb_log *log = arg;
  assert_true(log->calls < 8);
  log->seen[log->calls++] = user;
}

static int log_has(const cb_log *log, void *p) {
  int i, n = 0;
  for (i = 0; i < log->calls; i++) n += log->seen[i] == p;
  return n;
}

static void test_node_reset(void **state) {
  ptv_net *net = ptv_net_new(5);
  int t[5];
  int64_t h[5];
  cb_log log;
  int i;
  (void)state;
  memset(&log, 0, sizeof(log));
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, 1 * MBPS), 0);
  assert_int_equal(ptv_net_set_caps(net, 3, UNL, 1 * MBPS), 0);
  h[0] = ptv_net_flow_start(net, 0, 1, 1e6, 0, &t[0]);
  h[1] = ptv_net_flow_start(net, 0, 2, 1e6, 0, &t[1]);
  h[2] = ptv_net_flow_start(net, 2, 0, 1e6, 0, &t[2]); /* into node 0 */
  h[3] = ptv_net_flow_start(net, 0, 3, 1e6, 0, &t[3]);
  h[4] = ptv_net_flow_start(net, 4, 3, 1e6, 0, &t[4]); /* bystander */
  for (i = 0; i < 5; i++) assert_true(h[i] >= 0);
  assert_close(ptv_net_flow_rate(net, h[3]), MBPS / 3, 1e-12);
  assert_close(ptv_net_flow_rate(net, h[4]), 2 * MBPS / 3, 1e-12);

  assert_int_equal(ptv_net_node_reset(net, 0, 100 * PTV_MS, record_cb, &log),
                   4);
  assert_int_equal(log.calls, 4);
  for (i = 0; i < 4; i++) assert_int_equal(log_has(&log, &t[i]), 1);
  assert_int_equal(log_has(&log, &t[4]), 0);
  for (i = 0; i < 4; i++)
    assert_not_found(ptv_net_flow_rate(net, h[i]));
  assert_int_equal(ptv_net_nflows(net), 1);
  /* The bystander now has node 3's whole downlink. */
  assert_close(ptv_net_flow_rate(net, h[4]), 1 * MBPS, 1e-12);
  /* Node 0 sent at 1 Mbps for 0.1 s before failing. */
  assert_close(ptv_net_bytes_up(net, 0), 12500, 1e-9);

  log.calls = 0;
  assert_int_equal(ptv_net_node_reset(net, 0, 200 * PTV_MS, record_cb, &log),
                   0);
  assert_int_equal(log.calls, 0);
  assert_int_equal(ptv_net_node_reset(net, 5, 0, record_cb, &log),
                   PTV_ERR_INVALID_ARG);
  /* Now that node 0 is idle its caps may change. */
  assert_int_equal(ptv_net_set_caps(net, 0, 2 * MBPS, 2 * MBPS), 0);
  ptv_net_free(net);
}

/* ---- degenerate capacities ---------------------------------------------- */

static void test_zero_capacity_never_completes(void **state) {
  ptv_net *net = ptv_net_new(5);
  int64_t z, zd, ok;
  void *u = NULL;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 0, UNL), 0);
  assert_int_equal(ptv_net_set_caps(net, 2, UNL, 0), 0);
  assert_int_equal(ptv_net_set_caps(net, 3, 1 * MBPS, UNL), 0);
  z = ptv_net_flow_start(net, 0, 1, 1000, 0, NULL);
  assert_true(ptv_net_flow_rate(net, z) == 0);
  assert_int_equal(ptv_net_next_completion(net), PTV_TSTAMP_MAX);
  assert_int_equal(ptv_net_pop_completed(net, PTV_TSTAMP_MAX - 1, &u), 0);
  assert_int_equal(ptv_net_pop_completed(net, PTV_TSTAMP_MAX, &u), 0);
  /* A stalled flow on node 3's uplink does not take capacity away. */
  zd = ptv_net_flow_start(net, 3, 2, 1000, 0, NULL);
  ok = ptv_net_flow_start(net, 3, 4, 125000, 0, NULL);
  assert_true(ptv_net_flow_rate(net, zd) == 0);
  assert_close(ptv_net_flow_rate(net, ok), 1 * MBPS, 1e-12);
  assert_int_equal(ptv_net_next_completion(net), 1 * PTV_S);
  assert_int_equal(ptv_net_pop_completed(net, PTV_TSTAMP_MAX, &u), 1);
  assert_int_equal(ptv_net_pop_completed(net, PTV_TSTAMP_MAX, &u), 0);
  assert_int_equal(ptv_net_nflows(net), 2);
  assert_int_equal(ptv_net_node_reset(net, 0, 0, NULL, NULL), 1);
  assert_int_equal(ptv_net_node_reset(net, 2, 0, NULL, NULL), 1);
  assert_int_equal(ptv_net_nflows(net), 0);
  assert_close(ptv_net_bytes_up(net, 0), 0, 1e-12);
  ptv_net_free(net);
}

static void test_unlimited_links(void **state) {
  ptv_net *net = ptv_net_new(4);
  void *u = NULL;
  int64_t a, b, c;
  (void)state;
  /* Node 0 keeps the default UNLIMITED caps, like the tracker. */
  assert_int_equal(ptv_net_set_caps(net, 1, UNL, 1 * MBPS), 0);
  assert_int_equal(ptv_net_set_caps(net, 2, UNL, 4 * MBPS), 0);
  a = ptv_net_flow_start(net, 0, 1, 1e6, 0, NULL);
  b = ptv_net_flow_start(net, 0, 2, 1e6, 0, NULL);
  c = ptv_net_flow_start(net, 0, 3, 1000, 10, NULL);
  /* An unlimited uplink is never the bottleneck: no sharing between them. */
  assert_close(ptv_net_flow_rate(net, a), 1 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, b), 4 * MBPS, 1e-12);
  assert_close(ptv_net_flow_rate(net, c), UNL, 1e-12);
  /* 8000 bits at 1e15 bit/s: rounds up to the next microsecond. */
  assert_int_equal(ptv_net_next_completion(net), 11);
  assert_int_equal(ptv_net_pop_completed(net, 11, &u), 1);
  assert_not_found(ptv_net_flow_rate(net, c));
  /* Capacities above UNLIMITED (even infinity) act as UNLIMITED. */
  assert_int_equal(ptv_net_set_caps(net, 3, INFINITY, 1e20), 0);
  c = ptv_net_flow_start(net, 3, 3, 1000, 20, NULL);
  assert_close(ptv_net_flow_rate(net, c), UNL, 1e-12);
  assert_int_equal(ptv_net_next_completion(net), 21);
  ptv_net_free(net);
}

/* ---- ordering and handles ----------------------------------------------- */

static void test_ties_pop_in_start_order(void **state) {
  ptv_net *net = ptv_net_new(8);
  int ta = 1, tb = 2, tc = 3, tp = 4, tq = 5;
  void *u = NULL;
  int i;
  (void)state;
  for (i = 0; i < 8; i++)
    assert_int_equal(ptv_net_set_caps(net, (uint32_t)i, 1 * MBPS, UNL), 0);
  /* A (first) ends at 1 s alone, B at 1.5 s. C joining A's uplink at 0.5 s
   * pushes A to 1.5 s with a newer heap entry than B's: A still pops first. */
  assert_true(ptv_net_flow_start(net, 0, 1, 125000, 0, &ta) >= 0);
  assert_true(ptv_net_flow_start(net, 2, 3, 187500, 0, &tb) >= 0);
  assert_true(ptv_net_flow_start(net, 0, 4, 1e6, PTV_S / 2, &tc) >= 0);
  assert_int_equal(ptv_net_next_completion(net), 3 * PTV_S / 2);
  assert_int_equal(ptv_net_pop_completed(net, 3 * PTV_S / 2, &u), 1);
  assert_ptr_equal(u, &ta);
  assert_int_equal(ptv_net_pop_completed(net, 3 * PTV_S / 2, &u), 1);
  assert_ptr_equal(u, &tb);
  assert_int_equal(ptv_net_node_reset(net, 0, 2 * PTV_S, NULL, NULL), 1);

  /* Freed slots are reused last-in first-out, so P gets a higher slot than
   * Q; the tie must still follow start order, not slot order. */
  assert_true(ptv_net_flow_start(net, 5, 6, 125000, 3 * PTV_S, &tp) >= 0);
  assert_true(ptv_net_flow_start(net, 7, 1, 125000, 3 * PTV_S, &tq) >= 0);
  assert_int_equal(ptv_net_next_completion(net), 4 * PTV_S);
  assert_int_equal(ptv_net_pop_completed(net, 4 * PTV_S, &u), 1);
  assert_ptr_equal(u, &tp);
  assert_int_equal(ptv_net_pop_completed(net, 4 * PTV_S, &u), 1);
  assert_ptr_equal(u, &tq);
  ptv_net_free(net);
}

static void test_stale_handle(void **state) {
  ptv_net *net = ptv_net_new(2);
  int64_t old, fresh;
  void *u = NULL;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, UNL), 0);
  old = ptv_net_flow_start(net, 0, 1, 100, 0, NULL);
  assert_true(old >= 0);
  assert_int_equal(ptv_net_pop_completed(net, PTV_S, &u), 1);
  assert_not_found(ptv_net_flow_rate(net, old));
  /* The slot is reused; the old handle must not alias the new flow. */
  fresh = ptv_net_flow_start(net, 0, 1, 100, PTV_S, NULL);
  assert_true(fresh >= 0);
  assert_true(fresh != old);
  assert_close(ptv_net_flow_rate(net, fresh), 1 * MBPS, 1e-12);
  assert_not_found(ptv_net_flow_rate(net, old));
  assert_not_found(ptv_net_flow_rate(net, -1));
  assert_not_found(ptv_net_flow_rate(net, fresh + 1000));
  assert_not_found(ptv_net_flow_rate(net, INT64_MAX));
  ptv_net_free(net);
}

static void test_invalid_args(void **state) {
  ptv_net *net = ptv_net_new(2);
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 2, 1, 1), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_set_caps(net, 0, -1, 1), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_set_caps(net, 0, 1, -1), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_set_caps(net, 0, NAN, 1), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_flow_start(net, 2, 0, 1, 0, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_flow_start(net, 0, 2, 1, 0, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_flow_start(net, 0, 1, -1, 0, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_flow_start(net, 0, 1, NAN, 0, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_flow_start(net, 0, 1, INFINITY, 0, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_nflows(net), 0);
  /* Caps cannot change under running flows (no `now` to settle them). */
  assert_true(ptv_net_flow_start(net, 0, 1, 1, 0, NULL) >= 0);
  assert_int_equal(ptv_net_set_caps(net, 0, 1, 1), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_net_set_caps(net, 1, 1, 1), PTV_ERR_INVALID_ARG);
  ptv_net_free(net);
}

/* A long flow re-rated twice per cycle by 1000 short flows: exercises the
 * lazy heap (stale entries, compaction) and exact remaining-byte carry-over. */
static void test_many_rerates(void **state) {
  ptv_net *net = ptv_net_new(3);
  int tl = 1, ts = 2;
  void *u = NULL;
  ptv_tstamp now = 0;
  int64_t l;
  int i;
  (void)state;
  assert_int_equal(ptv_net_set_caps(net, 0, 1 * MBPS, UNL), 0);
  /* 0.5 Mbps for 1000 x 0.2 s carries 12.5 MB; then 125000 B alone. */
  l = ptv_net_flow_start(net, 0, 1, 12500000.0 + 125000.0, 0, &tl);
  for (i = 0; i < 1000; i++) {
    assert_true(ptv_net_flow_start(net, 0, 2, 12500, now, &ts) >= 0);
    assert_close(ptv_net_flow_rate(net, l), 0.5 * MBPS, 1e-12);
    assert_int_equal(ptv_net_next_completion(net), now + 200 * PTV_MS);
    now += 200 * PTV_MS;
    assert_int_equal(ptv_net_pop_completed(net, now, &u), 1);
    assert_ptr_equal(u, &ts);
    assert_int_equal(ptv_net_pop_completed(net, now, &u), 0);
  }
  assert_int_equal(now, 200 * PTV_S);
  assert_close(ptv_net_flow_rate(net, l), 1 * MBPS, 1e-12);
  assert_int_equal(ptv_net_next_completion(net), 201 * PTV_S);
  assert_int_equal(ptv_net_pop_completed(net, 201 * PTV_S, &u), 1);
  assert_ptr_equal(u, &tl);
  assert_close(ptv_net_bytes_up(net, 0), 12500000.0 + 125000.0 + 1000 * 12500.0,
               1e-12);
  ptv_net_free(net);
}

/* ---- reference model ------------------------------------------------------
 * A from-scratch global progressive filling, written the naive way: scan all
 * links for the smallest fair share, freeze, repeat. Same semantics as the
 * model: links >= UNLIMITED are no constraint, a flow with no finite link
 * runs at UNLIMITED. */

#define MAXN 64
#define MAXF 512

typedef struct {
  int64_t h;
  uint32_t src, dst;
  double bytes;
  double rem;  /* bytes left, integrated by the test from observed rates */
  double rate; /* rate observed after the last change */
  int live;
  int id;
} tflow;

typedef struct {
  ptv_net *net;
  uint32_t n;
  double up[MAXN], down[MAXN];
  tflow f[MAXF];
  int nf;
  ptv_tstamp now;         /* time the test model was last advanced to */
  double expect_up[MAXN]; /* bytes each uplink should report */
  long checks, pops, resets, cancels;
} world;

static double cap_of(const world *w, int link) {
  return link % 2 == 0 ? w->up[link / 2] : w->down[link / 2];
}

static void ref_rates(const world *w, double *out) {
  double rem[2 * MAXN];
  int cnt[2 * MAXN], frozen[MAXF];
  int i, l;
  for (l = 0; l < 2 * (int)w->n; l++) {
    rem[l] = cap_of(w, l);
    cnt[l] = 0;
  }
  for (i = 0; i < w->nf; i++) {
    frozen[i] = !w->f[i].live;
    if (!w->f[i].live) continue;
    cnt[2 * w->f[i].src]++;
    cnt[2 * w->f[i].dst + 1]++;
  }
  for (;;) {
    int best = -1;
    double bs = 0;
    for (l = 0; l < 2 * (int)w->n; l++) {
      double s;
      if (cnt[l] == 0 || cap_of(w, l) >= UNL) continue;
      s = rem[l] / cnt[l];
      if (s < 0) s = 0;
      if (best < 0 || s < bs) {
        best = l;
        bs = s;
      }
    }
    if (best < 0) break;
    for (i = 0; i < w->nf; i++) {
      int a, b;
      if (frozen[i]) continue;
      a = 2 * (int)w->f[i].src;
      b = 2 * (int)w->f[i].dst + 1;
      if (a != best && b != best) continue;
      frozen[i] = 1;
      out[i] = bs;
      rem[a] -= bs;
      rem[b] -= bs;
      cnt[a]--;
      cnt[b]--;
    }
  }
  for (i = 0; i < w->nf; i++)
    if (!frozen[i]) out[i] = UNL;
}

/* Compares the incremental rates with the reference and checks capacity and
 * the max-min (bottleneck) property directly. */
static void world_check(world *w) {
  double ref[MAXF], sum[2 * MAXN], mx[2 * MAXN];
  uint32_t live = 0;
  int i, l;
  ref_rates(w, ref);
  for (l = 0; l < 2 * (int)w->n; l++) sum[l] = mx[l] = 0;
  for (i = 0; i < w->nf; i++) {
    tflow *f = &w->f[i];
    if (!f->live) {
      assert_not_found(ptv_net_flow_rate(w->net, f->h));
      continue;
    }
    live++;
    f->rate = ptv_net_flow_rate(w->net, f->h);
    assert_true(f->rate >= 0);
    assert_close(f->rate, ref[i], 1e-9);
    sum[2 * f->src] += f->rate;
    sum[2 * f->dst + 1] += f->rate;
    if (f->rate > mx[2 * f->src]) mx[2 * f->src] = f->rate;
    if (f->rate > mx[2 * f->dst + 1]) mx[2 * f->dst + 1] = f->rate;
  }
  assert_int_equal(ptv_net_nflows(w->net), live);
  for (l = 0; l < 2 * (int)w->n; l++)
    if (cap_of(w, l) < UNL) assert_true(sum[l] <= cap_of(w, l) * (1 + 1e-9));
  for (i = 0; i < w->nf; i++) {
    const tflow *f = &w->f[i];
    int links[2], k, ok = 0;
    if (!f->live) continue;
    links[0] = 2 * (int)f->src;
    links[1] = 2 * (int)f->dst + 1;
    if (cap_of(w, links[0]) >= UNL && cap_of(w, links[1]) >= UNL) {
      assert_close(f->rate, UNL, 1e-12);
      continue;
    }
    for (k = 0; k < 2; k++) {
      double c = cap_of(w, links[k]);
      if (c >= UNL) continue;
      if (sum[links[k]] >= c * (1 - 1e-9) - 1e-6 &&
          f->rate >= mx[links[k]] * (1 - 1e-9))
        ok = 1;
    }
    if (!ok)
      fail_msg("flow %d (%u->%u, %.17g bps) has no bottleneck link", i, f->src,
               f->dst, f->rate);
  }
  w->checks++;
}

/* Integrates the test's own view of every flow's progress up to t. */
static void world_advance(world *w, ptv_tstamp t) {
  int i;
  assert_true(t >= w->now);
  for (i = 0; i < w->nf; i++) {
    tflow *f = &w->f[i];
    if (f->live) f->rem -= f->rate * (double)(t - w->now) / 8e6;
  }
  w->now = t;
}

static void world_pop_until(world *w, ptv_tstamp until) {
  for (;;) {
    ptv_tstamp t = ptv_net_next_completion(w->net);
    void *u = NULL;
    tflow *f;
    if (t > until) break;
    world_advance(w, t);
    assert_int_equal(ptv_net_pop_completed(w->net, t, &u), 1);
    f = u;
    assert_non_null(f);
    assert_true(f->live);
    assert_true(f->rate > 0);
    /* Never early, and at most one microsecond late. */
    assert_true(f->rem <= 1e-9 * f->bytes + 1e-6);
    assert_true(f->rem >= -f->rate / 8e6 - 1e-9 * f->bytes - 1e-6);
    f->live = 0;
    w->expect_up[f->src] += f->bytes;
    w->pops++;
    world_check(w);
  }
}

static void world_cancel_cb(void *arg, void *user) {
  world *w = arg;
  tflow *f = user;
  assert_true(f->live);
  f->live = 0;
  /* The model accounts progress up to the failure. */
  w->expect_up[f->src] += f->bytes - (f->rem > 0 ? f->rem : 0);
  w->cancels++;
}

static uint64_t rng_next(uint64_t *s) {
  /* splitmix64: fixed seed, reproducible everywhere. */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n) {
  return (uint32_t)(rng_next(s) % n);
}

static void run_random(uint64_t seed, uint32_t nodes, int nstarts) {
  static const double caps[] = {64e3, 256e3, 512e3, 1e6, 2e6, 5e6, 10e6, 100e6};
  world *w = calloc(1, sizeof(*w));
  uint64_t rs = seed;
  uint32_t i;
  int started = 0;
  assert_non_null(w);
  assert_true(nodes <= MAXN && nstarts <= MAXF);
  w->n = nodes;
  w->net = ptv_net_new(nodes);
  assert_non_null(w->net);
  for (i = 0; i < nodes; i++) {
    w->up[i] = caps[rng_below(&rs, 8)];
    w->down[i] = caps[rng_below(&rs, 8)];
  }
  /* A big source (large components), a tracker-like unlimited node, and
   * dead uplink/downlink nodes. */
  w->up[0] = 20e6;
  w->up[1] = w->down[1] = UNL;
  w->up[2] = 0;
  w->down[3] = 0;
  for (i = 0; i < nodes; i++)
    assert_int_equal(ptv_net_set_caps(w->net, i, w->up[i], w->down[i]), 0);

  while (started < nstarts) {
    ptv_tstamp next = w->now + rng_below(&rs, 100000); /* up to 100 ms */
    uint32_t act = rng_below(&rs, 100);
    world_pop_until(w, next);
    world_advance(w, next);
    if (act < 5) {
      uint32_t node = rng_below(&rs, nodes);
      int live_before = 0, j, n;
      for (j = 0; j < w->nf; j++)
        live_before += w->f[j].live &&
                       (w->f[j].src == node || w->f[j].dst == node);
      n = ptv_net_node_reset(w->net, node, w->now, world_cancel_cb, w);
      assert_int_equal(n, live_before);
      w->resets++;
    } else {
      tflow *f = &w->f[w->nf];
      f->id = w->nf;
      /* A third of the flows leave the big source. */
      f->src = act < 35 ? 0 : rng_below(&rs, nodes);
      f->dst = rng_below(&rs, nodes);
      f->bytes = 1000 + rng_below(&rs, 200000);
      f->rem = f->bytes;
      f->live = 1;
      f->h = ptv_net_flow_start(w->net, f->src, f->dst, f->bytes, w->now, f);
      assert_true(f->h >= 0);
      w->nf++;
      started++;
    }
    world_check(w);
  }
  /* Drain: everything with a positive rate completes, then clear the
   * stalled flows and compare the byte accounting. */
  world_pop_until(w, PTV_TSTAMP_MAX - 1);
  assert_int_equal(ptv_net_next_completion(w->net), PTV_TSTAMP_MAX);
  for (i = 0; i < nodes; i++)
    ptv_net_node_reset(w->net, i, w->now, world_cancel_cb, w);
  world_check(w);
  assert_int_equal(ptv_net_nflows(w->net), 0);
  for (i = 0; i < nodes; i++)
    assert_close(ptv_net_bytes_up(w->net, i), w->expect_up[i], 1e-9);
  /* The run must have exercised what it claims to. */
  assert_true(w->pops > nstarts / 2);
  assert_true(w->resets > 0 && w->cancels > 0);
  ptv_net_free(w->net);
  free(w);
}

static void test_random_matches_reference(void **state) {
  (void)state;
  run_random(1, 30, 200);
  run_random(2, 30, 200);
  run_random(3, 12, 200); /* few nodes: dense, large components */
  run_random(4, 64, 500);
}

/* One source feeding hundreds of receivers with varied downlinks: a single
 * big component, checked against the reference after every change. */
static void test_big_component(void **state) {
  static const double dl[] = {100e3, 250e3, 400e3, 1e6, 3e6};
  world *w = calloc(1, sizeof(*w));
  uint32_t i;
  int k;
  (void)state;
  assert_non_null(w);
  w->n = MAXN;
  w->net = ptv_net_new(MAXN);
  w->up[0] = 10e6;
  w->down[0] = UNL;
  w->up[1] = 1e6; /* a second sender couples some receivers */
  w->down[1] = UNL;
  for (i = 2; i < MAXN; i++) {
    w->up[i] = 1e6;
    w->down[i] = dl[i % 5];
  }
  for (i = 0; i < MAXN; i++)
    assert_int_equal(ptv_net_set_caps(w->net, i, w->up[i], w->down[i]), 0);
  for (k = 0; k < 300; k++) {
    tflow *f = &w->f[w->nf];
    f->src = k % 7 == 0 ? 1 : 0;
    f->dst = 2 + (uint32_t)(k * 17) % (MAXN - 2);
    f->bytes = 10000 + 37.0 * k;
    f->rem = f->bytes;
    f->live = 1;
    f->h = ptv_net_flow_start(w->net, f->src, f->dst, f->bytes, 0, f);
    assert_true(f->h >= 0);
    w->nf++;
    if (k % 25 == 0) world_check(w);
  }
  world_check(w);
  world_pop_until(w, PTV_TSTAMP_MAX - 1);
  assert_int_equal(ptv_net_nflows(w->net), 0);
  assert_int_equal(w->pops, 300);
  ptv_net_free(w->net);
  free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_flow_min_of_caps),
      cmocka_unit_test(test_two_flows_share_uplink),
      cmocka_unit_test(test_maxmin_classic),
      cmocka_unit_test(test_completion_exact),
      cmocka_unit_test(test_completion_rounds_up),
      cmocka_unit_test(test_completion_inexact_rate),
      cmocka_unit_test(test_rerate_midway),
      cmocka_unit_test(test_flow_end_speeds_up_other),
      cmocka_unit_test(test_late_pop_rerates_at_completion_time),
      cmocka_unit_test(test_link_turns_binding_and_slack),
      cmocka_unit_test(test_node_reset),
      cmocka_unit_test(test_zero_capacity_never_completes),
      cmocka_unit_test(test_unlimited_links),
      cmocka_unit_test(test_ties_pop_in_start_order),
      cmocka_unit_test(test_stale_handle),
      cmocka_unit_test(test_invalid_args),
      cmocka_unit_test(test_many_rerates),
      cmocka_unit_test(test_random_matches_reference),
      cmocka_unit_test(test_big_component),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
