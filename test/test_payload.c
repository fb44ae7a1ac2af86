/* test_payload.c -- the engine in payload mode (what the real network runs).
 *
 * A tracker (id 0), a payload-mode source (id 1) that publishes a known byte
 * pattern every chunk, signed with a real Ed25519ph key (libsodium), and
 * peers that verify every chunk before they keep, play or forward it.
 * Messages travel through a small deterministic queue (fixed latency plus
 * the sender's serialisation time at its upload rate). One peer can be made
 * a forger: the harness rewrites every chunk it sends (payload byte flipped,
 * signature stripped, or the payload detached). Asserted: every played chunk
 * carries the source's exact bytes; a forgery is refused by every receiver,
 * its sender is dropped and blocked, and the tracker bans it once two peers
 * reported it; payload memory stays bounded; 50 ms chunks stream too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_chunksig.h"
#include "ptv_err.h"
#include "ptv_node.h"
#include "ptv_tracker.h"
#include "ptv_wire.h"

#define MAXN 10
#define TRACKER_ID 0
#define SOURCE_ID 1
#define FIRST_PEER 2
#define LAT_US (10 * PTV_MS)
#define STREAM_KBPS 800
#define PEER_UP 1600

enum { FORGE_NONE, FORGE_FLIP, FORGE_STRIP, FORGE_DETACH, FORGE_STALL };

typedef struct hmsg {
  ptv_tstamp t;
  uint64_t seq;
  ptv_id from, to;
  size_t len;
  struct hmsg *next;
  uint8_t data[];
} hmsg;

typedef struct harness harness;
typedef struct {
  harness *h;
  ptv_id id;
  uint64_t rng;
  uint64_t played, missed, wrong_bytes;
  int started_play;
  uint32_t max_held;
  ptv_tstamp vfinish; /* upload serialisation */
} nctx;

struct harness {
  int nn;
  ptv_tracker *trk;
  ptv_node *node[MAXN];
  nctx ctx[MAXN];
  ptv_tstamp now, next_publish;
  uint64_t seq;
  hmsg *q; /* sorted list: small swarms only */
  uint32_t chunk_us;
  uint32_t chunk_bytes;
  ptv_id forger;
  int forge_mode;
  uint64_t forged_sent[MAXN]; /* forged chunks delivered, by receiver */
  uint64_t banned_calls;
  ptv_id banned_id;
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
};

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static uint8_t pattern(ptv_chunk_id id, uint32_t i) { return (uint8_t)(id * 131u + i * 7u + (i >> 8)); }

/* The content flags the source gives chunk id: a keyframe every fourth,
 * and some stall notices, which must reach the peers as signed. */
static int chunk_flags(ptv_chunk_id id) {
  return (id % 4 == 0 ? PTV_CHUNK_KEYFRAME : 0) | (id % 7 == 3 ? PTV_CHUNK_STALLED : 0);
}

static void q_add(harness *h, ptv_id from, ptv_id to, const uint8_t *buf, size_t len, ptv_tstamp t) {
  hmsg *m = malloc(sizeof(*m) + len);
  assert_non_null(m);
  m->t = t;
  m->seq = h->seq++;
  m->from = from;
  m->to = to;
  m->len = len;
  memcpy(m->data, buf, len);
  hmsg **pp = &h->q;
  while (*pp && ((*pp)->t < t || ((*pp)->t == t && (*pp)->seq < m->seq))) pp = &(*pp)->next;
  m->next = *pp;
  *pp = m;
}

/* The forger's chunks are rewritten on the way out. */
static size_t forge(harness *h, const uint8_t *buf, size_t len, uint8_t *out, size_t cap) {
  ptv_msg m;
  int rv = ptv_wire_decode(&m, buf, len);
  assert_int_equal(rv, (int)len);
  if (m.type != PTV_MSG_CHUNK) return 0;
  uint8_t *pay = malloc(m.u.chunk.payload_len + 1);
  assert_non_null(pay);
  memcpy(pay, m.u.chunk.payload, m.u.chunk.payload_len);
  m.u.chunk.payload = pay;
  if (h->forge_mode == FORGE_FLIP) {
    pay[m.u.chunk.payload_len / 2] ^= 0x5a;
  } else if (h->forge_mode == FORGE_STRIP) {
    m.u.chunk.flags &= (uint8_t)~PTV_CHUNK_SIGNED;
    m.u.chunk.sig = NULL;
  } else if (h->forge_mode == FORGE_STALL) {
    /* fakes a stall notice, or hides one: the flag is signed */
    m.u.chunk.flags ^= PTV_CHUNK_STALLED;
  } else {
    m.u.chunk.flags |= PTV_CHUNK_DETACHED;
  }
  int n = ptv_wire_encode(out, cap, &m);
  free(pay);
  assert_true(n > 0);
  return (size_t)n;
}

static int cb_send(void *user, ptv_id to, const uint8_t *buf, size_t len, size_t vlen, int bulk) {
  nctx *c = user;
  harness *h = c->h;
  assert_int_equal(vlen, 0); /* payload mode: the bytes travel */
  ptv_tstamp t = h->now + LAT_US;
  if (bulk) {
    ptv_tstamp start = c->vfinish > h->now ? c->vfinish : h->now;
    uint32_t up = c->id == SOURCE_ID ? 4 * STREAM_KBPS : PEER_UP;
    c->vfinish = start + (ptv_tstamp)len * 8000u / up;
    t = c->vfinish + LAT_US;
  }
  if (c->id == h->forger && h->forge_mode != FORGE_NONE && bulk) {
    uint8_t *out = malloc(len + 64);
    assert_non_null(out);
    size_t n = forge(h, buf, len, out, len + 64);
    if (n) {
      q_add(h, c->id, to, out, n, t);
      h->forged_sent[to]++;
    }
    free(out);
    return 0;
  }
  q_add(h, c->id, to, buf, len, t);
  return 0;
}

static int cb_tracker_send(void *user, ptv_id to, const uint8_t *buf, size_t len) {
  harness *h = user;
  q_add(h, TRACKER_ID, to, buf, len, h->now + LAT_US);
  return 0;
}

static uint64_t cb_rand(void *user) { return splitmix64(&((nctx *)user)->rng); }
static uint64_t cb_tracker_rand(void *user) { return splitmix64(&((harness *)user)->ctx[0].rng); }

static void cb_ban(void *user, ptv_id id, ptv_tstamp now) {
  harness *h = user;
  h->banned_calls++;
  h->banned_id = id;
}

static int cb_sign(void *user, const ptv_msg_chunk *c, uint8_t *sig) {
  nctx *x = user;
  return ptv_chunksig_sign(c, x->h->sk, sig);
}

static int cb_verify(void *user, const ptv_msg_chunk *c) {
  nctx *x = user;
  return ptv_chunksig_verify(c, x->h->pk);
}

static void cb_playout(void *user, ptv_chunk_id id, int present, ptv_tstamp now) {
  nctx *c = user;
  harness *h = c->h;
  if (!present) {
    if (getenv("PTV_TEST_VERBOSE")) fprintf(stderr, "peer %u missed %u at %.2f\n", c->id, id, now / 1e6);
    c->missed++;
    return;
  }
  c->played++;
  const uint8_t *p;
  uint32_t len;
  int flags;
  if (ptv_node_chunk_payload(h->node[c->id], id, &p, &len, &flags) != 0 || len != h->chunk_bytes ||
      flags != chunk_flags(id)) {
    c->wrong_bytes++;
    return;
  }
  for (uint32_t i = 0; i < len; i++)
    if (p[i] != pattern(id, i)) {
      c->wrong_bytes++;
      return;
    }
}

static void cb_play_start(void *user, ptv_chunk_id first, ptv_tstamp now) {
  ((nctx *)user)->started_play = 1;
}

static const ptv_node_callbacks cbs = {
    .send = cb_send,
    .rand = cb_rand,
    .on_playout = cb_playout,
    .on_play_start = cb_play_start,
    .sign_chunk = cb_sign,
    .verify_chunk = cb_verify,
};

/* The live harness, freed by the teardown if an assertion jumped out. */
static harness *g_live;

static harness *h_new(int npeers, uint32_t chunk_us, uint64_t seed) {
  harness *h = calloc(1, sizeof(*h));
  assert_non_null(h);
  g_live = h;
  assert_true(sodium_init() >= 0);
  crypto_sign_keypair(h->pk, h->sk);
  h->nn = FIRST_PEER + npeers;
  h->chunk_us = chunk_us;
  h->chunk_bytes = (uint32_t)((uint64_t)STREAM_KBPS * chunk_us / 8000u);
  h->forger = PTV_ID_NONE;
  for (int i = 0; i < h->nn; i++) {
    h->ctx[i].h = h;
    h->ctx[i].id = (ptv_id)i;
    h->ctx[i].rng = seed * 0x100000001b3ULL + (uint64_t)i;
  }
  ptv_tracker_config tc = {.self = TRACKER_ID, .chunk_us = chunk_us};
  ptv_tracker_callbacks tcb = {.send = cb_tracker_send, .rand = cb_tracker_rand, .on_ban = cb_ban};
  h->trk = ptv_tracker_new(&tc, &tcb, h);
  assert_non_null(h->trk);
  for (int i = SOURCE_ID; i < h->nn; i++) {
    ptv_node_config c;
    ptv_node_config_default(&c);
    c.self = (ptv_id)i;
    c.tracker = TRACKER_ID;
    c.carry_payload = 1;
    c.target_partners = 4;
    if (i == SOURCE_ID) {
      c.role = PTV_ROLE_SOURCE;
      c.upload_kbps = 4 * STREAM_KBPS;
      c.stream_kbps = STREAM_KBPS;
      c.chunk_us = chunk_us;
      c.max_partners = 0;
    } else {
      c.upload_kbps = PEER_UP;
    }
    h->node[i] = ptv_node_new(&c, &cbs, &h->ctx[i]);
    assert_non_null(h->node[i]);
    assert_int_equal(ptv_node_start(h->node[i], (ptv_tstamp)(i - 1) * 50 * PTV_MS), 0);
  }
  h->next_publish = chunk_us;
  return h;
}

static void h_free(harness *h) {
  g_live = NULL;
  for (int i = 1; i < h->nn; i++) ptv_node_free(h->node[i]);
  ptv_tracker_free(h->trk);
  while (h->q) {
    hmsg *m = h->q;
    h->q = m->next;
    free(m);
  }
  free(h);
}

static void publish(harness *h) {
  static uint8_t buf[1 << 17];
  ptv_node_stats st;
  ptv_node_get_stats(h->node[SOURCE_ID], &st);
  ptv_chunk_id next = st.held == 0 ? 0 : st.newest + 1;
  assert_true(h->chunk_bytes <= sizeof(buf));
  for (uint32_t i = 0; i < h->chunk_bytes; i++) buf[i] = pattern(next, i);
  int64_t id = ptv_node_source_publish(h->node[SOURCE_ID], buf, h->chunk_bytes, chunk_flags(next), h->now);
  assert_int_equal(id, (int64_t)next);
}

static void h_run(harness *h, ptv_tstamp until) {
  while (h->now < until) {
    ptv_tstamp t = h->next_publish;
    if (h->q && h->q->t < t) t = h->q->t;
    for (int i = 1; i < h->nn; i++) {
      ptv_tstamp e = ptv_node_get_expiry(h->node[i]);
      if (e < t) t = e;
    }
    if (ptv_tracker_get_expiry(h->trk) < t) t = ptv_tracker_get_expiry(h->trk);
    if (t < h->now) t = h->now;
    h->now = t;
    if (h->now >= until) break;
    if (h->now >= h->next_publish) {
      publish(h);
      h->next_publish += h->chunk_us;
    }
    while (h->q && h->q->t <= h->now) {
      hmsg *m = h->q;
      h->q = m->next;
      if (m->to == TRACKER_ID) ptv_tracker_recv(h->trk, m->from, m->data, m->len, h->now);
      else if (m->to < (ptv_id)h->nn) ptv_node_recv(h->node[m->to], m->from, m->data, m->len, h->now);
      free(m);
    }
    for (int i = 1; i < h->nn; i++)
      if (ptv_node_get_expiry(h->node[i]) <= h->now) ptv_node_handle_expiry(h->node[i], h->now);
    if (ptv_tracker_get_expiry(h->trk) <= h->now) ptv_tracker_handle_expiry(h->trk, h->now);
    for (int i = FIRST_PEER; i < h->nn; i++) {
      ptv_node_stats st;
      ptv_node_get_stats(h->node[i], &st);
      if (st.payloads_held > h->ctx[i].max_held) h->ctx[i].max_held = st.payloads_held;
    }
  }
}

static int is_partner(const ptv_node *n, ptv_id id) {
  ptv_partner_info pi[32];
  size_t k = ptv_node_partners(n, pi, 32);
  for (size_t i = 0; i < k; i++)
    if (pi[i].id == id) return 1;
  return 0;
}

/* min_pct: continuity every honest peer must reach, in %. */
static void check_honest(harness *h, ptv_tstamp dur, unsigned min_pct) {
  for (int i = FIRST_PEER; i < h->nn; i++) {
    if ((ptv_id)i == h->forger) continue;
    nctx *c = &h->ctx[i];
    ptv_node_stats st;
    ptv_node_get_stats(h->node[i], &st);
    assert_true(c->started_play);
    assert_int_equal(c->wrong_bytes, 0);
    /* every chunk due since play started: at least 90% of the run */
    assert_true(c->played + c->missed >= (uint64_t)(dur / h->chunk_us) * 8 / 10);
    if (getenv("PTV_TEST_VERBOSE")) fprintf(stderr, "peer %d played %lu missed %lu held<=%u\n", i, (unsigned long)c->played, (unsigned long)c->missed, c->max_held);
    assert_true(c->played * 100 >= (c->played + c->missed) * min_pct);
    /* payloads kept: 8 s behind the newest, plus what waits to be played */
    ptv_tstamp keep = 8 * PTV_S + 4 * PTV_S;
    assert_true((ptv_tstamp)c->max_held * h->chunk_us <= keep);
    assert_true(st.payloads_held > 0);
  }
}

static void test_payload_intact(void **state) {
  harness *h = h_new(6, 250 * PTV_MS, 1);
  h_run(h, 40 * PTV_S);
  check_honest(h, 40 * PTV_S, 99);
  for (int i = FIRST_PEER; i < h->nn; i++) {
    ptv_node_stats st;
    ptv_node_get_stats(h->node[i], &st);
    assert_int_equal(st.chunks_bad, 0);
  }
  assert_int_equal(h->banned_calls, 0);
  h_free(h);
}

/* Low-latency channels: 50 ms chunks. */
static void test_payload_short_chunks(void **state) {
  harness *h = h_new(6, 50 * PTV_MS, 2);
  h_run(h, 30 * PTV_S);
  check_honest(h, 30 * PTV_S, 99);
  h_free(h);
}

static void run_forger(int mode, uint64_t seed) {
  harness *h = h_new(7, 250 * PTV_MS, seed);
  h->forger = (ptv_id)(h->nn - 1);
  h->forge_mode = mode;
  h_run(h, 40 * PTV_S);
  /* A chunk only the forger held yet can be lost: its receivers all turn to
   * the source at once, which serves one chunk's worth of backlog. */
  check_honest(h, 40 * PTV_S, 97);
  int receivers = 0;
  for (int i = FIRST_PEER; i < h->nn; i++) {
    if ((ptv_id)i == h->forger || h->forged_sent[i] == 0) continue;
    receivers++;
    ptv_node_stats st;
    ptv_node_get_stats(h->node[i], &st);
    assert_true(st.chunks_bad >= 1);
    assert_false(is_partner(h->node[i], h->forger));
    /* blocked: it refuses the forger again */
    ptv_peer_desc d = {h->forger, PTV_NAT_OPEN, 0, PEER_UP};
    assert_int_equal(ptv_node_connect(h->node[i], &d, h->now), PTV_ERR_INVALID_ARG);
  }
  assert_true(receivers >= 2); /* the test has teeth: the forger did send */
  /* once banned, the tracker's word reaches the others (the source too) */
  for (int i = SOURCE_ID; i < h->nn; i++)
    if ((ptv_id)i != h->forger) assert_false(is_partner(h->node[i], h->forger));
  assert_int_equal(h->banned_calls, 1);
  assert_int_equal(h->banned_id, h->forger);
  assert_true(ptv_tracker_banned(h->trk, h->forger));
  h_free(h);
}

static void test_forged_payload(void **state) { run_forger(FORGE_FLIP, 3); }
static void test_forged_unsigned(void **state) { run_forger(FORGE_STRIP, 4); }
static void test_forged_detached(void **state) { run_forger(FORGE_DETACH, 5); }
static void test_forged_stall(void **state) { run_forger(FORGE_STALL, 6); }

static void test_publish_errors(void **state) {
  harness *h = h_new(1, 250 * PTV_MS, 6);
  uint8_t b[16] = {0};
  assert_int_equal(ptv_node_source_publish(h->node[FIRST_PEER], b, 16, 0, 0), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_node_source_publish(h->node[SOURCE_ID], b, 0, 0, 0), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_node_source_publish(h->node[SOURCE_ID], NULL, 16, 0, 0), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_node_source_publish(h->node[SOURCE_ID], b, PTV_NODE_MAX_PAYLOAD + 1, 0, 0),
                   PTV_ERR_INVALID_ARG);
  /* only content flags: carriage flags and unknown bits are refused */
  static const int bad_flags[] = {PTV_CHUNK_DETACHED, PTV_CHUNK_SIGNED, 0x10};
  for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++)
    assert_int_equal(ptv_node_source_publish(h->node[SOURCE_ID], b, 16, bad_flags[i], 0), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_node_source_publish(h->node[SOURCE_ID], b, 16, 1, 0), 0);
  assert_int_equal(ptv_node_source_publish(h->node[SOURCE_ID], b, 16, 0, 0), 1);
  assert_int_equal(ptv_node_source_publish(h->node[SOURCE_ID], b, 16, PTV_CHUNK_STALLED, 0), 2);
  const uint8_t *p;
  uint32_t len;
  int flags;
  assert_int_equal(ptv_node_chunk_payload(h->node[SOURCE_ID], 0, &p, &len, &flags), 0);
  assert_int_equal(len, 16);
  assert_int_equal(flags, PTV_CHUNK_KEYFRAME);
  assert_int_equal(ptv_node_chunk_payload(h->node[SOURCE_ID], 1, &p, &len, &flags), 0);
  assert_int_equal(flags, 0);
  assert_int_equal(ptv_node_chunk_payload(h->node[SOURCE_ID], 2, &p, &len, &flags), 0);
  assert_int_equal(flags, PTV_CHUNK_STALLED);
  assert_int_equal(ptv_node_chunk_payload(h->node[SOURCE_ID], 3, &p, &len, &flags), PTV_ERR_NOT_FOUND);
  /* a detached-mode source cannot publish bytes */
  ptv_node_config c;
  ptv_node_config_default(&c);
  c.role = PTV_ROLE_SOURCE;
  c.stream_kbps = 500;
  c.chunk_us = 250 * PTV_MS;
  ptv_node *n = ptv_node_new(&c, &cbs, &h->ctx[SOURCE_ID]);
  assert_non_null(n);
  ptv_node_start(n, 0);
  assert_int_equal(ptv_node_source_publish(n, b, 16, 0, 0), PTV_ERR_INVALID_ARG);
  ptv_node_free(n);
  h_free(h);
}

static int teardown(void **state) {
  if (g_live) h_free(g_live);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_payload_intact, teardown),
      cmocka_unit_test_teardown(test_payload_short_chunks, teardown),
      cmocka_unit_test_teardown(test_forged_payload, teardown),
      cmocka_unit_test_teardown(test_forged_unsigned, teardown),
      cmocka_unit_test_teardown(test_forged_detached, teardown),
      cmocka_unit_test_teardown(test_forged_stall, teardown),
      cmocka_unit_test_teardown(test_publish_errors, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
