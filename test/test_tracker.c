/* test_tracker.c -- unit tests for the sans-I/O tracker engine.
 *
 * The tracker is driven with messages built by the wire encoder, and every
 * datagram it sends is captured by the send callback and decoded back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_tracker.h"
#include "ptv_wire.h"

#define S PTV_S
#define TRACKER_ID 0xfffffff0u
#define CHUNK_US 500000u

/* ---- harness -------------------------------------------------------------- */

typedef struct {
  ptv_id to;
  size_t len;
  uint8_t buf[PTV_WIRE_HDRLEN + 13 + PTV_WIRE_MAX_DESCS * 10];
} sent_msg;

typedef struct {
  uint64_t rng;
  size_t nsent;
  sent_msg last;
  int send_rv;
} harness;

static int cb_send(void *user, ptv_id to, const uint8_t *buf, size_t len) {
  harness *h = user;
  assert_true(len <= sizeof(h->last.buf));
  h->nsent++;
  h->last.to = to;
  h->last.len = len;
  memcpy(h->last.buf, buf, len);
  return h->send_rv;
}

static uint64_t cb_rand(void *user) {
  harness *h = user;
  h->rng ^= h->rng >> 12;
  h->rng ^= h->rng << 25;
  h->rng ^= h->rng >> 27;
  return h->rng * 2685821657736338717ULL;
}

static const ptv_tracker_callbacks CBS = {.send = cb_send, .rand = cb_rand};

static ptv_tracker *mk_tracker(harness *h, uint8_t sample, ptv_tstamp expire_us) {
  memset(h, 0, sizeof(*h));
  h->rng = 0x5eed5eed5eedULL;
  ptv_tracker_config c = {.self = TRACKER_ID, .chunk_us = CHUNK_US,
                          .sample = sample, .expire_us = expire_us};
  ptv_tracker *t = ptv_tracker_new(&c, &CBS, h);
  assert_non_null(t);
  return t;
}

static size_t enc(uint8_t *buf, const ptv_msg *m) {
  int len = ptv_wire_encode(buf, 64, m);
  assert_true(len >= PTV_WIRE_HDRLEN);
  return (size_t)len;
}

/* Decodes the last datagram as a PEERS addressed to `to`. */
static ptv_msg_peers last_peers(const harness *h, ptv_id to) {
  ptv_msg m;
  assert_int_equal(ptv_wire_decode(&m, h->last.buf, h->last.len), (int)h->last.len);
  assert_int_equal(m.type, PTV_MSG_PEERS);
  assert_int_equal(h->last.to, to);
  return m.u.peers;
}

/* Sends a JOIN and returns the PEERS answer (exactly one datagram). */
static ptv_msg_peers join(ptv_tracker *t, harness *h, ptv_id from, uint8_t role,
                          uint8_t nat, uint32_t up, ptv_tstamp now) {
  ptv_msg m = {.type = PTV_MSG_JOIN};
  m.u.join.role = role;
  m.u.join.nat = nat;
  m.u.join.upload_kbps = up;
  uint8_t buf[64];
  size_t len = enc(buf, &m);
  size_t before = h->nsent;
  assert_int_equal(ptv_tracker_recv(t, from, buf, len, now), 0);
  assert_int_equal(h->nsent, before + 1);
  return last_peers(h, from);
}

static void heartbeat(ptv_tracker *t, harness *h, ptv_id from, ptv_chunk_id newest,
                      ptv_tstamp now) {
  ptv_msg m = {.type = PTV_MSG_HEARTBEAT};
  m.u.heartbeat.newest = newest;
  uint8_t buf[64];
  size_t len = enc(buf, &m);
  size_t before = h->nsent;
  assert_int_equal(ptv_tracker_recv(t, from, buf, len, now), 0);
  assert_int_equal(h->nsent, before); /* never answered */
}

static void leave(ptv_tracker *t, harness *h, ptv_id from, ptv_tstamp now) {
  ptv_msg m = {.type = PTV_MSG_LEAVE};
  uint8_t buf[64];
  size_t len = enc(buf, &m);
  size_t before = h->nsent;
  assert_int_equal(ptv_tracker_recv(t, from, buf, len, now), 0);
  assert_int_equal(h->nsent, before);
}

/* Acts as a driver: runs every sweep the tracker asks for up to `now`. */
static void sweep_until(ptv_tracker *t, ptv_tstamp now) {
  for (int guard = 0; ptv_tracker_get_expiry(t) <= now; guard++) {
    assert_true(guard < 100000);
    ptv_tstamp due = ptv_tracker_get_expiry(t);
    ptv_tracker_handle_expiry(t, due);
    assert_true(ptv_tracker_get_expiry(t) > due);
  }
}

static int peers_has(const ptv_msg_peers *p, ptv_id id) {
  for (int i = 0; i < p->n; i++)
    if (p->descs[i].id == id) return 1;
  return 0;
}

static void check_no_dups(const ptv_msg_peers *p) {
  for (int i = 0; i < p->n; i++)
    for (int j = i + 1; j < p->n; j++) assert_int_not_equal(p->descs[i].id, p->descs[j].id);
}

static uint64_t xs(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* ---- construction ------------------------------------------------------ */

static void test_new_rejects_missing_callbacks(void **state) {
  ptv_tracker_config c = {.self = TRACKER_ID, .chunk_us = CHUNK_US};
  harness h;
  memset(&h, 0, sizeof(h));
  assert_null(ptv_tracker_new(&c, NULL, &h));
  ptv_tracker_callbacks cb = {.send = cb_send, .rand = NULL};
  assert_null(ptv_tracker_new(&c, &cb, &h));
  cb.send = NULL;
  cb.rand = cb_rand;
  assert_null(ptv_tracker_new(&c, &cb, &h));
  ptv_tracker_free(NULL);
}

static void test_new_initial_state(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  assert_int_equal(ptv_tracker_nmembers(t), 0);
  assert_int_equal(ptv_tracker_live(t), UINT32_MAX);
  assert_true(ptv_tracker_get_expiry(t) != PTV_TSTAMP_MAX);
  assert_int_equal(h.nsent, 0);
  /* Sweeping an empty tracker is harmless. */
  sweep_until(t, 100 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 0);
  ptv_tracker_free(t);
}

/* ---- JOIN ----------------------------------------------------------------- */

static void test_first_join(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  ptv_msg_peers p = join(t, &h, 42, PTV_ROLE_PEER, PTV_NAT_CONE, 800, 1 * S);
  assert_int_equal(p.n, 0); /* nobody else yet, and never the joiner */
  assert_int_equal(p.live, UINT32_MAX);
  assert_int_equal(p.chunk_us, CHUNK_US);
  assert_int_equal(ptv_tracker_nmembers(t), 1);
  /* The second joiner learns about the first, with its declared data. */
  p = join(t, &h, 43, PTV_ROLE_PEER, PTV_NAT_OPEN, 100, 2 * S);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.descs[0].id, 42);
  assert_int_equal(p.descs[0].nat, PTV_NAT_CONE);
  assert_int_equal(p.descs[0].upload_kbps, 800);
  assert_int_equal(ptv_tracker_nmembers(t), 2);
  ptv_tracker_free(t);
}

static void test_join_excludes_joiner_and_offers_all_when_few(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0); /* sample 20 */
  for (ptv_id id = 100; id < 110; id++) {
    ptv_msg_peers p = join(t, &h, id, PTV_ROLE_PEER, (uint8_t)(id % 4), id * 2, 0);
    assert_false(peers_has(&p, id));
    check_no_dups(&p);
    /* Fewer members than the sample size: all the others are offered. */
    assert_int_equal(p.n, id - 100);
    for (ptv_id o = 100; o < id; o++) {
      assert_true(peers_has(&p, o));
    }
    for (int i = 0; i < p.n; i++) {
      assert_int_equal(p.descs[i].nat, p.descs[i].id % 4);
      assert_int_equal(p.descs[i].upload_kbps, p.descs[i].id * 2);
    }
  }
  /* Re-joining does not duplicate the member and still excludes it. */
  ptv_msg_peers p = join(t, &h, 105, PTV_ROLE_PEER, PTV_NAT_OPEN, 7, 1 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 10);
  assert_false(peers_has(&p, 105));
  assert_int_equal(p.n, 9);
  /* ... and updates what others are told about it. */
  p = join(t, &h, 200, PTV_ROLE_PEER, PTV_NAT_OPEN, 1, 1 * S);
  for (int i = 0; i < p.n; i++) {
    if (p.descs[i].id == 105) {
      assert_int_equal(p.descs[i].nat, PTV_NAT_OPEN);
      assert_int_equal(p.descs[i].upload_kbps, 7);
    }
  }
  assert_true(peers_has(&p, 105));
  ptv_tracker_free(t);
}

static void test_source_offered_first(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 5, 0);
  /* Peers that joined before the source know nothing of it. */
  for (ptv_id id = 1; id <= 30; id++) join(t, &h, id, PTV_ROLE_PEER, 0, 100, 0);
  /* The source itself is not offered to itself. */
  ptv_msg_peers p = join(t, &h, 999, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 5000, 0);
  assert_false(peers_has(&p, 999));
  assert_true(p.n <= 5);
  for (ptv_id id = 31; id <= 130; id++) {
    p = join(t, &h, id, PTV_ROLE_PEER, 0, 100, 0);
    assert_true(p.n >= 1);
    assert_true(p.n <= 5);
    assert_int_equal(p.descs[0].id, 999);
    assert_int_equal(p.descs[0].nat, PTV_NAT_OPEN);
    assert_int_equal(p.descs[0].upload_kbps, 5000);
    /* Exactly once. */
    for (int i = 1; i < p.n; i++) assert_int_not_equal(p.descs[i].id, 999);
    check_no_dups(&p);
    assert_false(peers_has(&p, id));
  }
  /* A peer that joined before the source gets it when it rejoins. */
  p = join(t, &h, 7, PTV_ROLE_PEER, 0, 100, 0);
  assert_int_equal(p.descs[0].id, 999);
  assert_int_equal(ptv_tracker_nmembers(t), 131);
  ptv_tracker_free(t);
}

static void test_source_alone_then_one_peer(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  ptv_msg_peers p = join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 10000, 0);
  assert_int_equal(p.n, 0);
  p = join(t, &h, 2, PTV_ROLE_PEER, PTV_NAT_CONE, 10, 0);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.descs[0].id, 1);
  ptv_tracker_free(t);
}

static void test_sample_size_bounded(void **state) {
  static const struct {
    uint8_t cfg;
    uint8_t eff;
  } cases[] = {{0, 20}, {1, 1}, {5, 5}, {20, 20}, {63, 63}, {64, 63}, {255, 63}};
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    harness h;
    ptv_tracker *t = mk_tracker(&h, cases[c].cfg, 0);
    /* With and without a source. */
    for (int with_source = 0; with_source < 2; with_source++) {
      ptv_id base = with_source ? 100000 : 0;
      if (with_source) join(t, &h, 5, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 1, 0);
      for (ptv_id id = 1; id <= 400; id++) {
        ptv_msg_peers p = join(t, &h, base + id, PTV_ROLE_PEER, 0, 1, 0);
        assert_true(p.n <= cases[c].eff);
        check_no_dups(&p);
        assert_false(peers_has(&p, base + id));
        if (with_source) assert_int_equal(p.descs[0].id, 5);
        /* Plenty of members: the answer is full. */
        if (id > 200) assert_int_equal(p.n, cases[c].eff);
      }
    }
    ptv_tracker_free(t);
  }
}

/* ---- HEARTBEAT / live ---------------------------------------------------- */

static void test_heartbeat_live(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  join(t, &h, 10, PTV_ROLE_PEER, 0, 1, 0);
  /* No source yet: a peer's heartbeat does not set live. */
  heartbeat(t, &h, 10, 77, 1 * S);
  assert_int_equal(ptv_tracker_live(t), UINT32_MAX);
  /* The source, before it joined, is unknown: ignored. */
  heartbeat(t, &h, 1, 50, 1 * S);
  assert_int_equal(ptv_tracker_live(t), UINT32_MAX);
  assert_int_equal(ptv_tracker_nmembers(t), 1);

  join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 1, 2 * S);
  heartbeat(t, &h, 1, 50, 3 * S);
  assert_int_equal(ptv_tracker_live(t), 50);
  heartbeat(t, &h, 1, 51, 4 * S);
  assert_int_equal(ptv_tracker_live(t), 51);
  /* A peer claiming a newer chunk does not move live. */
  heartbeat(t, &h, 10, 9999, 4 * S);
  assert_int_equal(ptv_tracker_live(t), 51);
  /* Joiners are told the live point. */
  ptv_msg_peers p = join(t, &h, 11, PTV_ROLE_PEER, 0, 1, 5 * S);
  assert_int_equal(p.live, 51);
  assert_int_equal(p.chunk_us, CHUNK_US);
  /* Unknown senders' heartbeats do not make them members. */
  heartbeat(t, &h, 12345, 1, 5 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 3);
  ptv_tracker_free(t);
}

/* ---- capacity ------------------------------------------------------------- */

/* PEERS tells the peers' mean declared upload, the source left out, as of
 * the JOIN it answers; re-joins, leaves and expiry keep the sum right. */
static void test_capacity(void **state) {
  (void)state;
  harness h;
  ptv_tracker *t = mk_tracker(&h, 20, 60 * S);
  assert_int_equal(ptv_tracker_capacity(t), 0);
  ptv_msg_peers p = join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 2500, 0);
  assert_int_equal(p.cap_kbps, 0); /* no peer yet: unknown */
  assert_int_equal(ptv_tracker_capacity(t), 0);
  p = join(t, &h, 10, PTV_ROLE_PEER, PTV_NAT_OPEN, 100, 1 * S);
  assert_int_equal(p.cap_kbps, 100); /* the joiner counts */
  p = join(t, &h, 11, PTV_ROLE_PEER, PTV_NAT_CONE, 400, 2 * S);
  assert_int_equal(p.cap_kbps, 250);
  p = join(t, &h, 12, PTV_ROLE_PEER, PTV_NAT_CONE, 0, 3 * S);
  assert_int_equal(p.cap_kbps, 166); /* 500 / 3, rounded down */
  /* a re-JOIN replaces the member's figure, it does not add to it */
  p = join(t, &h, 11, PTV_ROLE_PEER, PTV_NAT_CONE, 1000, 4 * S);
  assert_int_equal(p.cap_kbps, 366);
  leave(t, &h, 10, 5 * S);
  assert_int_equal(ptv_tracker_capacity(t), 500);
  /* the source re-joining with another upload changes nothing */
  join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 9000, 6 * S);
  assert_int_equal(ptv_tracker_capacity(t), 500);
  /* 11 and 12 go silent; the source keeps beating */
  heartbeat(t, &h, 1, 7, 40 * S);
  sweep_until(t, 70 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 1);
  assert_int_equal(ptv_tracker_capacity(t), 0);
  p = join(t, &h, 13, PTV_ROLE_PEER, PTV_NAT_OPEN, 700, 71 * S);
  assert_int_equal(p.cap_kbps, 700);
  ptv_tracker_free(t);
}

/* ---- LEAVE ---------------------------------------------------------------- */

static void test_leave(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 1, 0);
  for (ptv_id id = 10; id < 15; id++) join(t, &h, id, PTV_ROLE_PEER, 0, 1, 0);
  assert_int_equal(ptv_tracker_nmembers(t), 6);
  leave(t, &h, 12, 1 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 5);
  leave(t, &h, 12, 1 * S); /* twice: no-op */
  leave(t, &h, 777, 1 * S); /* stranger: no-op */
  assert_int_equal(ptv_tracker_nmembers(t), 5);
  ptv_msg_peers p = join(t, &h, 20, PTV_ROLE_PEER, 0, 1, 2 * S);
  assert_false(peers_has(&p, 12));
  assert_int_equal(p.n, 5); /* source + 10, 11, 13, 14 */
  assert_int_equal(p.descs[0].id, 1);

  /* The source leaves: no longer offered, anywhere in the list. */
  leave(t, &h, 1, 3 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 5);
  p = join(t, &h, 21, PTV_ROLE_PEER, 0, 1, 3 * S);
  assert_false(peers_has(&p, 1));
  assert_int_equal(p.n, 5);
  /* A heartbeat from the departed source no longer moves live. */
  ptv_chunk_id live = ptv_tracker_live(t);
  heartbeat(t, &h, 1, 4242, 4 * S);
  assert_int_equal(ptv_tracker_live(t), live);

  /* The departed source coming back as a plain peer is not the source:
   * its heartbeats do not move live. */
  join(t, &h, 1, PTV_ROLE_PEER, PTV_NAT_OPEN, 1, 4 * S);
  heartbeat(t, &h, 1, 4343, 4 * S);
  assert_int_equal(ptv_tracker_live(t), live);
  leave(t, &h, 1, 4 * S);

  /* Leaving and rejoining works. */
  leave(t, &h, 12, 5 * S);
  join(t, &h, 12, PTV_ROLE_PEER, 0, 1, 5 * S);
  p = join(t, &h, 22, PTV_ROLE_PEER, 0, 1, 5 * S);
  assert_true(peers_has(&p, 12));
  ptv_tracker_free(t);
}

/* ---- expiry --------------------------------------------------------------- */

static void test_expiry(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 20 * S);
  join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 1, 0);
  join(t, &h, 10, PTV_ROLE_PEER, 0, 1, 0);       /* silent from 0 */
  join(t, &h, 11, PTV_ROLE_PEER, 0, 1, 7 * S);   /* silent from 7 s */
  join(t, &h, 12, PTV_ROLE_PEER, 0, 1, 0);       /* heartbeats */
  for (ptv_tstamp now = 0; now <= 20 * S; now += S) {
    heartbeat(t, &h, 1, (ptv_chunk_id)(now / S), now);
    heartbeat(t, &h, 12, 0, now);
    sweep_until(t, now);
  }
  /* Silent for exactly expire_us: still there. */
  assert_int_equal(ptv_tracker_nmembers(t), 4);

  /* Keep the source and 12 alive; 10 and 11 go silent for good. */
  for (ptv_tstamp now = 21 * S; now <= 60 * S; now += S) {
    heartbeat(t, &h, 1, (ptv_chunk_id)(now / S), now);
    heartbeat(t, &h, 12, 0, now);
    sweep_until(t, now);
    if (now <= 27 * S) {
      assert_true(ptv_tracker_nmembers(t) >= 3); /* 11 is silent < 20 s */
    }
  }
  assert_int_equal(ptv_tracker_nmembers(t), 2);
  ptv_msg_peers p = join(t, &h, 30, PTV_ROLE_PEER, 0, 1, 60 * S);
  assert_false(peers_has(&p, 10));
  assert_false(peers_has(&p, 11));
  assert_true(peers_has(&p, 12));
  assert_int_equal(p.descs[0].id, 1);
  assert_int_equal(p.live, 60);

  /* The source falls silent: it expires and is no longer offered. */
  for (ptv_tstamp now = 61 * S; now <= 120 * S; now += S) {
    heartbeat(t, &h, 12, 0, now);
    heartbeat(t, &h, 30, 0, now);
    sweep_until(t, now);
  }
  assert_int_equal(ptv_tracker_nmembers(t), 2);
  p = join(t, &h, 31, PTV_ROLE_PEER, 0, 1, 120 * S);
  assert_false(peers_has(&p, 1));
  assert_int_equal(p.n, 2);
  ptv_tracker_free(t);
}

static void test_expiry_default_60s(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  join(t, &h, 10, PTV_ROLE_PEER, 0, 1, 0);
  sweep_until(t, 60 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 1);
  sweep_until(t, 90 * S);
  assert_int_equal(ptv_tracker_nmembers(t), 0);
  ptv_tracker_free(t);
}

static void test_expiry_removes_many(void **state) {
  /* Half the members go silent; the swap-remove sweep must drop exactly
   * those, including runs of consecutive expired entries. */
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 10 * S);
  for (ptv_id id = 1; id <= 2000; id++) join(t, &h, id, PTV_ROLE_PEER, 0, id, 0);
  /* Sweeps at 5, 10 and 15 s; the one at 15 s is the first where the
   * silent ones (last seen at 0) exceed 10 s, and it must drop them all. */
  for (ptv_tstamp now = S; now <= 15 * S; now += S) {
    for (ptv_id id = 1; id <= 2000; id++)
      if (id % 3 == 0 || id > 1500) heartbeat(t, &h, id, 0, now);
    if (now < 15 * S) {
      sweep_until(t, now);
      assert_int_equal(ptv_tracker_nmembers(t), 2000);
    }
  }
  sweep_until(t, 15 * S);
  uint32_t keep = 0;
  for (ptv_id id = 1; id <= 2000; id++) keep += id % 3 == 0 || id > 1500;
  assert_int_equal(ptv_tracker_nmembers(t), keep);
  /* Heartbeats from expired members do not bring them back. */
  heartbeat(t, &h, 1, 0, 16 * S);
  heartbeat(t, &h, 2, 0, 16 * S);
  assert_int_equal(ptv_tracker_nmembers(t), keep);
  /* Every survivor is still found (rejoin does not add), every expired one
   * is gone (rejoin adds). */
  for (ptv_id id = 1; id <= 2000; id++) {
    int alive = id % 3 == 0 || id > 1500;
    uint32_t before = ptv_tracker_nmembers(t);
    ptv_msg_peers p = join(t, &h, id, PTV_ROLE_PEER, 0, id, 16 * S);
    for (int i = 0; i < p.n; i++) assert_int_equal(p.descs[i].upload_kbps, p.descs[i].id);
    assert_int_equal(ptv_tracker_nmembers(t), before + (alive ? 0 : 1));
  }
  ptv_tracker_free(t);
}

static void test_expiry_huge_timeout(void **state) {
  /* A timeout too long to ever elapse (PTV_TSTAMP_MAX, "never") must not
   * wrap around in last_seen + expire_us and expire everyone at once. */
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, PTV_TSTAMP_MAX);
  join(t, &h, 10, PTV_ROLE_PEER, 0, 1, 1 * S);
  join(t, &h, 11, PTV_ROLE_PEER, 0, 1, 2 * S);
  sweep_until(t, 3600 * S);
  uint32_t n = ptv_tracker_nmembers(t);
  ptv_tracker_free(t);
  assert_int_equal(n, 2);
}

/* ---- hash table under churn ------------------------------------------- */

/* Multiplicative inverse of an odd number modulo 2^32 (Newton iteration). */
static uint32_t inv32(uint32_t a) {
  uint32_t x = a;
  for (int i = 0; i < 5; i++) x *= 2u - a * x;
  return x;
}

enum { POOL = 3000 };

typedef struct {
  ptv_id id[POOL];
  uint8_t in[POOL];
  uint8_t nat[POOL];
  uint32_t up[POOL];
  uint32_t n;
  uint64_t sorted[POOL]; /* id << 32 | index, sorted */
} ref_set;

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int ref_index(const ref_set *r, ptv_id id) {
  size_t lo = 0, hi = POOL;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    ptv_id mid_id = (ptv_id)(r->sorted[mid] >> 32);
    if (mid_id < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo < POOL && (ptv_id)(r->sorted[lo] >> 32) == id) return (int)(uint32_t)r->sorted[lo];
  return -1;
}

static void check_peers_against_ref(const ref_set *r, const ptv_msg_peers *p,
                                    ptv_id joiner, ptv_id source, uint8_t sample) {
  assert_true(p->n <= sample);
  check_no_dups(p);
  assert_false(peers_has(p, joiner));
  assert_int_equal(p->descs[0].id, source);
  for (int i = 1; i < p->n; i++) {
    int k = ref_index(r, p->descs[i].id);
    assert_true(k >= 0);
    assert_true(r->in[k]);
    assert_int_equal(p->descs[i].nat, r->nat[k]);
    assert_int_equal(p->descs[i].upload_kbps, r->up[k]);
  }
  /* Enough members around: full answers. */
  if (r->n > 4u * sample) assert_int_equal(p->n, sample);
}

static void test_hash_churn_against_reference(void **state) {
  /* Ids chosen to collide under a multiplicative hash on the low bits: a
   * third share home slot 0, a third share the last slot (chains wrap
   * around the table), a third are random. 5000 random joins/leaves/
   * heartbeats, compared after every step with a reference set. */
  static ref_set r;
  memset(&r, 0, sizeof(r));
  const uint32_t K = 2654435761u;
  uint32_t last_home = (4095u * inv32(K)) & 4095u; /* id*K = 4095 mod 4096 */
  uint64_t rs = 0xc0ffeeULL;
  assert_true(inv32(K) * K == 1u);
  for (int i = 0; i < POOL; i++) {
    ptv_id id;
    xs(&rs);
    if (i % 3 == 0) id = (ptv_id)(i + 1) * 4096u;
    else if (i % 3 == 1) id = (ptv_id)(i + 1) * 4096u + last_home;
    else id = 0x40000000u | (ptv_id)(rs >> 40); /* above the structured ids */
    r.id[i] = id;
    r.nat[i] = (uint8_t)(rs % 4);
    r.up[i] = (uint32_t)(rs >> 20);
    r.sorted[i] = (uint64_t)id << 32 | (uint32_t)i;
  }
  qsort(r.sorted, POOL, sizeof(r.sorted[0]), cmp_u64);
  for (int i = 1; i < POOL; i++) /* distinct ids */
    assert_true(r.sorted[i] >> 32 != r.sorted[i - 1] >> 32);
  for (int i = 0; i < POOL; i++) {
    assert_int_equal(ref_index(&r, r.id[i]), i);
    assert_int_not_equal(r.id[i], 1);
  }

  const uint8_t sample = 10;
  harness h;
  ptv_tracker *t = mk_tracker(&h, sample, 0);
  join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 9, 0);
  uint32_t max_n = 0;
  for (int step = 0; step < 5000; step++) {
    int k = (int)(cb_rand(&h) % POOL);
    unsigned op = (unsigned)(cb_rand(&h) % 10);
    /* Joins dominate early so the table grows past its first capacity,
     * then leaves catch up. */
    unsigned join_cut = step < 2500 ? 8 : 4;
    if (op < join_cut) {
      ptv_msg_peers p = join(t, &h, r.id[k], PTV_ROLE_PEER, r.nat[k], r.up[k], 0);
      if (!r.in[k]) r.n++;
      r.in[k] = 1;
      check_peers_against_ref(&r, &p, r.id[k], 1, sample);
    } else if (op < 9) {
      leave(t, &h, r.id[k], 0);
      if (r.in[k]) r.n--;
      r.in[k] = 0;
    } else {
      heartbeat(t, &h, r.id[k], 3, 0);
    }
    assert_int_equal(ptv_tracker_nmembers(t), r.n + 1);
    if (r.n > max_n) max_n = r.n;

    if (step % 1000 == 999) {
      /* Membership probe for the whole pool: members rejoin without
       * changing the count; strangers leave without changing it. */
      for (int i = 0; i < POOL; i++) {
        if (r.in[i]) join(t, &h, r.id[i], PTV_ROLE_PEER, r.nat[i], r.up[i], 0);
        else leave(t, &h, r.id[i], 0);
        assert_int_equal(ptv_tracker_nmembers(t), r.n + 1);
      }
    }
  }
  assert_true(max_n > 1100); /* the table had to grow */
  /* Drain: each member's LEAVE removes exactly one. */
  for (int i = 0; i < POOL; i++) {
    if (!r.in[i]) continue;
    uint32_t before = ptv_tracker_nmembers(t);
    leave(t, &h, r.id[i], 0);
    assert_int_equal(ptv_tracker_nmembers(t), before - 1);
  }
  assert_int_equal(ptv_tracker_nmembers(t), 1);
  ptv_msg_peers p = join(t, &h, 2, PTV_ROLE_PEER, 0, 0, 0);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.descs[0].id, 1);
  ptv_tracker_free(t);
}

/* ---- malformed and irrelevant input ------------------------------------ */

typedef struct {
  uint32_t n;
  ptv_chunk_id live;
  ptv_tstamp expiry;
  size_t nsent;
} snapshot;

static snapshot snap(const ptv_tracker *t, const harness *h) {
  snapshot s = {ptv_tracker_nmembers(t), ptv_tracker_live(t),
                ptv_tracker_get_expiry(t), h->nsent};
  return s;
}

static void assert_unchanged(const ptv_tracker *t, const harness *h, snapshot s) {
  assert_int_equal(ptv_tracker_nmembers(t), s.n);
  assert_int_equal(ptv_tracker_live(t), s.live);
  assert_true(ptv_tracker_get_expiry(t) == s.expiry);
  assert_int_equal(h->nsent, s.nsent);
}

static void test_malformed_input(void **state) {
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 9, 0);
  heartbeat(t, &h, 1, 500, 0);
  join(t, &h, 10, PTV_ROLE_PEER, 0, 1, 0);

  uint8_t good_join[64], good_hb[64], good_leave[64];
  ptv_msg m = {.type = PTV_MSG_JOIN};
  m.u.join.role = PTV_ROLE_PEER;
  size_t jl = enc(good_join, &m);
  m.type = PTV_MSG_HEARTBEAT;
  m.u.heartbeat.newest = 1000;
  size_t hl = enc(good_hb, &m);
  m.type = PTV_MSG_LEAVE;
  size_t ll = enc(good_leave, &m);

  uint8_t b[64];
  int rv;
  snapshot s = snap(t, &h);

  /* Truncated JOIN from a stranger: not added, not answered. */
  for (size_t cut = 0; cut < jl; cut++) {
    memcpy(b, good_join, jl);
    rv = ptv_tracker_recv(t, 50, b, cut, 1 * S);
    assert_true(rv < 0);
    assert_int_equal(rv, PTV_ERR_SHORT);
    assert_unchanged(t, &h, s);
  }
  /* Truncated HEARTBEAT from the source: live unchanged. */
  for (size_t cut = 0; cut < hl; cut++) {
    rv = ptv_tracker_recv(t, 1, good_hb, cut, 1 * S);
    assert_int_equal(rv, PTV_ERR_SHORT);
    assert_unchanged(t, &h, s);
  }
  /* NULL buffer. */
  rv = ptv_tracker_recv(t, 50, NULL, 0, 1 * S);
  assert_true(rv < 0);
  assert_unchanged(t, &h, s);

  /* Bad version. */
  memcpy(b, good_join, jl);
  b[0] = 1; /* the version before BUFFERMAP's kids */
  assert_int_equal(ptv_tracker_recv(t, 50, b, jl, 1 * S), PTV_ERR_VERSION);
  assert_unchanged(t, &h, s);
  /* Unknown type. */
  memcpy(b, good_join, jl);
  b[1] = 0;
  assert_int_equal(ptv_tracker_recv(t, 50, b, jl, 1 * S), PTV_ERR_UNKNOWN_TYPE);
  b[1] = PTV_MSG_TYPE_MAX + 1;
  assert_int_equal(ptv_tracker_recv(t, 50, b, jl, 1 * S), PTV_ERR_UNKNOWN_TYPE);
  assert_unchanged(t, &h, s);
  /* JOIN with a role or NAT out of range. */
  memcpy(b, good_join, jl);
  b[PTV_WIRE_HDRLEN] = 2;
  assert_int_equal(ptv_tracker_recv(t, 50, b, jl, 1 * S), PTV_ERR_MALFORMED);
  memcpy(b, good_join, jl);
  b[PTV_WIRE_HDRLEN + 1] = 4;
  assert_int_equal(ptv_tracker_recv(t, 50, b, jl, 1 * S), PTV_ERR_MALFORMED);
  assert_unchanged(t, &h, s);
  /* A source JOIN with a bad NAT must not take over the source role. */
  memcpy(b, good_join, jl);
  b[PTV_WIRE_HDRLEN] = PTV_ROLE_SOURCE;
  b[PTV_WIRE_HDRLEN + 1] = 9;
  assert_int_equal(ptv_tracker_recv(t, 50, b, jl, 1 * S), PTV_ERR_MALFORMED);
  assert_unchanged(t, &h, s);
  /* JOIN body one byte too long (length field and data agree). */
  memcpy(b, good_join, jl);
  b[5] = (uint8_t)(b[5] + 1);
  b[jl] = 0;
  assert_int_equal(ptv_tracker_recv(t, 50, b, jl + 1, 1 * S), PTV_ERR_MALFORMED);
  assert_unchanged(t, &h, s);
  /* HEARTBEAT from the source with a short body. */
  memcpy(b, good_hb, hl);
  b[5] = 3;
  assert_int_equal(ptv_tracker_recv(t, 1, b, hl - 1, 1 * S), PTV_ERR_MALFORMED);
  assert_unchanged(t, &h, s);
  /* LEAVE with a body, from a member: member stays. */
  memcpy(b, good_leave, ll);
  b[5] = 1;
  b[ll] = 0;
  assert_int_equal(ptv_tracker_recv(t, 10, b, ll + 1, 1 * S), PTV_ERR_MALFORMED);
  assert_unchanged(t, &h, s);
  /* Hostile body length. */
  memcpy(b, good_leave, ll);
  b[2] = 0xff;
  assert_int_equal(ptv_tracker_recv(t, 10, b, ll, 1 * S), PTV_ERR_MALFORMED);
  assert_unchanged(t, &h, s);

  /* Random garbage never crashes, never answers, never adds members. */
  uint64_t g = 99;
  for (int i = 0; i < 2000; i++) {
    size_t len = (size_t)(xs(&g) % sizeof(b));
    for (size_t j = 0; j < len; j++) b[j] = (uint8_t)xs(&g);
    if ((i & 1) && len > 1) {
      b[0] = PTV_WIRE_VERSION;
      b[1] = (uint8_t)(1 + xs(&g) % 4); /* JOIN..HEARTBEAT */
    }
    rv = ptv_tracker_recv(t, 60, b, len, 1 * S);
    if (rv < 0) {
      assert_true(rv >= PTV_ERR_BAD_SIG);
      assert_unchanged(t, &h, s);
    } else {
      /* A well-formed message slipped through: only a JOIN may change
       * anything (possibly claiming the source role); undo it. */
      leave(t, &h, 60, 1 * S);
      join(t, &h, 1, PTV_ROLE_SOURCE, PTV_NAT_OPEN, 9, 1 * S);
      s = snap(t, &h);
    }
  }

  /* Still fully working. */
  ptv_msg_peers p = join(t, &h, 11, PTV_ROLE_PEER, 0, 1, 2 * S);
  assert_int_equal(p.live, 500);
  assert_int_equal(p.descs[0].id, 1);
  assert_true(peers_has(&p, 10));
  ptv_tracker_free(t);
}

static void test_irrelevant_messages_ignored(void **state) {
  /* Well-formed overlay messages the tracker has no use for: accepted
   * (return 0), but nothing changes and nothing is sent. */
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  join(t, &h, 10, PTV_ROLE_PEER, 0, 1, 0);
  snapshot s = snap(t, &h);
  ptv_msg m;
  uint8_t buf[64];
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_CONNECT;
  assert_int_equal(ptv_tracker_recv(t, 20, buf, enc(buf, &m), 1 * S), 0);
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_REQUEST;
  m.u.request.chunk = 5;
  assert_int_equal(ptv_tracker_recv(t, 20, buf, enc(buf, &m), 1 * S), 0);
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_PEERS;
  assert_int_equal(ptv_tracker_recv(t, 10, buf, enc(buf, &m), 1 * S), 0);
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_SHUFFLE;
  assert_int_equal(ptv_tracker_recv(t, 10, buf, enc(buf, &m), 1 * S), 0);
  assert_unchanged(t, &h, s);
  ptv_tracker_free(t);
}

static int g_bans;
static ptv_id g_banned;
static void cb_ban(void *user, ptv_id id, ptv_tstamp now) {
  g_bans++;
  g_banned = id;
}

static void report(ptv_tracker *t, ptv_id from, ptv_id suspect, ptv_tstamp now) {
  ptv_msg m = {.type = PTV_MSG_REPORT};
  uint8_t buf[64];
  m.u.report.suspect = suspect;
  m.u.report.reason = PTV_REPORT_BAD_CHUNK;
  assert_int_equal(ptv_tracker_recv(t, from, buf, enc(buf, &m), now), 0);
}

/* Forged chunks: two distinct members' reports ban the sender; one liar,
 * repeated reports, a non-member's or a self-report do not. */
static void test_reports_ban(void **state) {
  harness h;
  memset(&h, 0, sizeof(h));
  h.rng = 7;
  ptv_tracker_callbacks cb = {.send = cb_send, .rand = cb_rand, .on_ban = cb_ban};
  ptv_tracker_config c = {.self = TRACKER_ID, .chunk_us = CHUNK_US};
  ptv_tracker *t = ptv_tracker_new(&c, &cb, &h);
  assert_non_null(t);
  g_bans = 0;
  for (ptv_id id = 10; id < 14; id++) join(t, &h, id, PTV_ROLE_PEER, 0, 1, 0);
  join(t, &h, 20, PTV_ROLE_SOURCE, 0, 1, 0);
  report(t, 10, 20, 1 * S); /* the source: reports never ban it */
  report(t, 11, 20, 1 * S);
  report(t, 12, 20, 1 * S);
  assert_false(ptv_tracker_banned(t, 20));
  leave(t, &h, 20, 1 * S);
  report(t, 10, 13, 1 * S);
  report(t, 10, 13, 2 * S); /* the same reporter again */
  report(t, 99, 13, 2 * S); /* not a member */
  report(t, 13, 13, 2 * S); /* itself */
  assert_false(ptv_tracker_banned(t, 13));
  assert_int_equal(ptv_tracker_nmembers(t), 4);
  size_t before_ban = h.nsent;
  report(t, 11, 13, 3 * S);
  assert_true(ptv_tracker_banned(t, 13));
  /* every remaining member (10, 11, 12) is told */
  assert_int_equal(h.nsent, before_ban + 3);
  ptv_msg told;
  assert_int_equal(ptv_wire_decode(&told, h.last.buf, h.last.len), (int)h.last.len);
  assert_int_equal(told.type, PTV_MSG_REPORT);
  assert_int_equal(told.u.report.suspect, 13);
  assert_int_equal(g_bans, 1);
  assert_int_equal(g_banned, 13);
  assert_int_equal(ptv_tracker_nmembers(t), 3);
  report(t, 12, 13, 4 * S); /* already banned: no second callback */
  assert_int_equal(g_bans, 1);
  /* its JOIN goes unanswered and it is never handed out */
  ptv_msg m = {.type = PTV_MSG_JOIN};
  uint8_t buf[64];
  size_t before = h.nsent;
  assert_int_equal(ptv_tracker_recv(t, 13, buf, enc(buf, &m), 5 * S), 0);
  assert_int_equal(h.nsent, before);
  for (int i = 0; i < 20; i++) {
    ptv_msg jm = {.type = PTV_MSG_JOIN};
    uint8_t jb[64];
    size_t nb = h.nsent;
    assert_int_equal(ptv_tracker_recv(t, 10, jb, enc(jb, &jm), 6 * S), 0);
    /* PEERS without it, then the ban list (a REPORT naming it) */
    assert_int_equal(h.nsent, nb + 2);
    ptv_msg ban;
    assert_int_equal(ptv_wire_decode(&ban, h.last.buf, h.last.len), (int)h.last.len);
    assert_int_equal(ban.type, PTV_MSG_REPORT);
    assert_int_equal(ban.u.report.suspect, 13);
  }
  /* a ban from the driver (a key its store lists) */
  assert_int_equal(ptv_tracker_ban(t, 12, 7 * S), 0);
  assert_true(ptv_tracker_banned(t, 12));
  assert_int_equal(ptv_tracker_nmembers(t), 2);
  ptv_tracker_free(t);
}

static void test_send_failure_tolerated(void **state) {
  /* A failing send callback does not undo the membership change. */
  harness h;
  ptv_tracker *t = mk_tracker(&h, 0, 0);
  h.send_rv = -1;
  join(t, &h, 10, PTV_ROLE_PEER, 0, 1, 0);
  join(t, &h, 11, PTV_ROLE_PEER, 0, 1, 0);
  assert_int_equal(ptv_tracker_nmembers(t), 2);
  ptv_tracker_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_rejects_missing_callbacks),
      cmocka_unit_test(test_reports_ban),
      cmocka_unit_test(test_new_initial_state),
      cmocka_unit_test(test_first_join),
      cmocka_unit_test(test_join_excludes_joiner_and_offers_all_when_few),
      cmocka_unit_test(test_source_offered_first),
      cmocka_unit_test(test_source_alone_then_one_peer),
      cmocka_unit_test(test_sample_size_bounded),
      cmocka_unit_test(test_heartbeat_live),
      cmocka_unit_test(test_capacity),
      cmocka_unit_test(test_leave),
      cmocka_unit_test(test_expiry),
      cmocka_unit_test(test_expiry_default_60s),
      cmocka_unit_test(test_expiry_removes_many),
      cmocka_unit_test(test_expiry_huge_timeout),
      cmocka_unit_test(test_hash_churn_against_reference),
      cmocka_unit_test(test_malformed_input),
      cmocka_unit_test(test_irrelevant_messages_ignored),
      cmocka_unit_test(test_send_failure_tolerated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
