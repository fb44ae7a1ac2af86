/* test_node.c -- unit tests for the peer/source engine (ptv_node).
 *
 * The engine is sans-I/O, so the tests drive it with a tiny deterministic
 * harness: a tracker (id 0), one source (id 1) and N peers (ids 2..N+1); a
 * message queue with a fixed one-way latency ordered by (time, sequence);
 * chunk (bulk) messages additionally take their serialisation time at the
 * sender's upload rate; a driver that always advances to the earliest of the
 * next message, the next scheduled peer start and the earliest engine expiry;
 * a per-node splitmix64 random source. Everything is a pure function of the
 * seed, so runs are reproducible.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_node.h"
#include "ptv_strategy.h"
#include "ptv_tracker.h"
#include "ptv_wire.h"

#define MAXN 16
#define TRACKER_ID 0
#define SOURCE_ID 1
#define FIRST_PEER 2
#define LAT_US (20 * PTV_MS)
#define CHUNK_US (250 * PTV_MS)
#define STREAM_KBPS 500
#define CHUNK_BYTES ((uint64_t)STREAM_KBPS * CHUNK_US / 8000u) /* 15625 */
#define HDR_SLACK 64 /* room for a chunk message's header */
#define PEER_START (1 * PTV_S)
#define PEER_STAGGER (100 * PTV_MS)
#define PARTNER_TIMEOUT (3 * PTV_S) /* documented in ptv_node.c */

/* ---- harness ------------------------------------------------------------ */

typedef struct harness harness;

typedef struct hmsg {
  ptv_tstamp t;
  uint64_t seq;
  ptv_id from, to;
  size_t len, vlen;
  int bulk;
  uint8_t data[];
} hmsg;

typedef struct {
  ptv_chunk_id id;
  int present;
  ptv_tstamp now;
} playrec;

typedef struct {
  harness *h;
  ptv_id id;
  uint64_t rng;
  /* playback as the callbacks report it */
  int nplay_start;
  ptv_chunk_id play_first;
  ptv_tstamp play_at;
  uint32_t held_at_start; /* chunks in hand from the first one when playback began */
  int playout_before_start; /* on_playout before on_play_start: contract breach */
  playrec *plays;
  size_t nplays, capplays;
  /* what it sent */
  uint64_t sends, bulk_sends, bulk_bytes;
  ptv_tstamp vfinish; /* leaky-bucket finish time of its bulk sends */
  ptv_tstamp max_backlog; /* worst (vfinish - now) seen at a bulk send */
  int first_type;
  ptv_id first_to;
  ptv_tstamp first_t;
  uint64_t chunks_got; /* on_chunk calls */
} nctx;

struct harness {
  int nn; /* ids 0..nn-1 in use */
  ptv_tracker *trk;
  ptv_node *node[MAXN];
  nctx ctx[MAXN];
  uint32_t upload[MAXN];
  ptv_tstamp start_at[MAXN];
  uint8_t started[MAXN];
  uint8_t dead[MAXN];             /* crashed: nothing in or out, not driven */
  ptv_tstamp drop_to_after[MAXN]; /* drop messages to it delivered from then on */
  ptv_tstamp drop_bulk_to_after[MAXN]; /* same, chunk data only */
  int noask; /* drop REQUEST and SELECT from noask_from to noask_to (PTV_ID_NONE: anyone),
                and OFFERs the other way */
  ptv_id noask_from, noask_to;
  ptv_tstamp now;
  uint64_t seq;
  hmsg **q;
  size_t nq, capq;
  /* checks on what the engines emit */
  uint64_t hash, nsent;
  uint64_t bad_dest, self_sends, malformed_sends, bulk_mismatch;
  uint64_t node_recv_errors, tracker_recv_errors;
  uint64_t pacing_violations;
  int check_pacing;
  /* SELECTed ids awaiting the offerer's answer, by (offerer, selector) */
  ptv_chunk_id sel[MAXN][MAXN][16];
  uint8_t nsel[MAXN][MAXN];
  uint64_t sel_served[MAXN], sel_refused[MAXN];
  /* capture of one node's sends */
  ptv_id capture_from;
  int ncap;
  struct {
    ptv_id to;
    int type;
  } cap[64];
  /* offers' ages (now minus the source's first send of the chunk), by
   * (offerer, receiver) and whether the stripe is in offer_mask */
  ptv_tstamp born[256];
  uint16_t offer_mask;
  ptv_tstamp offer_min_age[MAXN][MAXN][2];
  uint32_t noffered[MAXN][MAXN][2];
  ptv_tstamp lat; /* one-way latency; 0: LAT_US */
  /* optional: sees every well-formed message as it is sent */
  void (*tap)(harness *h, ptv_id from, ptv_id to, const ptv_msg *m);
  /* optional: until node hold_to plays, chunks to it from its start chunk
   * + hold_ahead on are dropped (its prefetch stays short) */
  ptv_id hold_to;
  uint32_t hold_ahead;
  /* stuck-driver detection */
  ptv_tstamp last_t;
  uint64_t same_t;
};

/* Live harnesses, so a failed assertion (which longjmps out of the test)
 * does not leak them: the group teardown frees whatever is left. */
#define MAX_LIVE 4
static harness *g_live[MAX_LIVE];

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void hash_bytes(uint64_t *h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    *h ^= b[i];
    *h *= 0x100000001b3ULL;
  }
}

static int msg_less(const hmsg *a, const hmsg *b) {
  return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void q_push(harness *h, hmsg *m) {
  if (h->nq == h->capq) {
    h->capq = h->capq ? 2 * h->capq : 256;
    h->q = realloc(h->q, h->capq * sizeof(*h->q));
    assert_non_null(h->q);
  }
  size_t i = h->nq++;
  h->q[i] = m;
  while (i > 0) {
    size_t par = (i - 1) / 2;
    if (!msg_less(h->q[i], h->q[par])) break;
    hmsg *tmp = h->q[i];
    h->q[i] = h->q[par];
    h->q[par] = tmp;
    i = par;
  }
}

static hmsg *q_pop(harness *h) {
  hmsg *top = h->q[0];
  h->q[0] = h->q[--h->nq];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->nq && msg_less(h->q[l], h->q[m])) m = l;
    if (r < h->nq && msg_less(h->q[r], h->q[m])) m = r;
    if (m == i) break;
    hmsg *tmp = h->q[i];
    h->q[i] = h->q[m];
    h->q[m] = tmp;
    i = m;
  }
  return top;
}

/* Follows SELECT -> CHUNK / BUSY between a selector and the offerer. */
static void track_select(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  if (m->type == PTV_MSG_SELECT) {
    for (int i = 0; i < m->u.select.n; i++)
      if (h->nsel[to][from] < 16) h->sel[to][from][h->nsel[to][from]++] = m->u.select.ids[i];
    return;
  }
  ptv_chunk_id id;
  if (m->type == PTV_MSG_CHUNK) id = m->u.chunk.chunk;
  else if (m->type == PTV_MSG_BUSY) id = m->u.busy.chunk;
  else return;
  for (int i = 0; i < h->nsel[from][to]; i++)
    if (h->sel[from][to][i] == id) {
      h->sel[from][to][i] = h->sel[from][to][--h->nsel[from][to]];
      if (m->type == PTV_MSG_CHUNK) h->sel_served[from]++;
      else h->sel_refused[from]++;
      return;
    }
}

/* Every message goes through here: checks it, hashes it, queues it. */
static void h_enqueue(harness *h, ptv_id from, ptv_id to, const uint8_t *buf,
                      size_t len, size_t vlen, int bulk) {
  ptv_msg m;
  int rv = ptv_wire_decode(&m, buf, len);
  if (rv < 0 || (size_t)rv != len) h->malformed_sends++;
  if (rv > 0 && (bulk != (m.type == PTV_MSG_CHUNK) ||
                 (bulk && (!(m.u.chunk.flags & PTV_CHUNK_DETACHED) ||
                           m.u.chunk.payload_len != vlen))))
    h->bulk_mismatch++;
  if (to == from) h->self_sends++;
  if (rv > 0 && from < (ptv_id)h->nn && to < (ptv_id)h->nn) track_select(h, from, to, &m);
  if (rv > 0 && h->tap) h->tap(h, from, to, &m);
  if (rv > 0 && m.type == PTV_MSG_CHUNK && from == SOURCE_ID && h->born[m.u.chunk.chunk % 256] == 0)
    h->born[m.u.chunk.chunk % 256] = h->now;
  if (rv > 0 && m.type == PTV_MSG_OFFER && from < MAXN && to < MAXN)
    for (int i = 0; i < m.u.offer.n; i++) {
      ptv_chunk_id id = m.u.offer.ids[i];
      int in = (h->offer_mask >> (id % 4) & 1) != 0; /* 4: TS_STRIPES, below */
      ptv_tstamp age = h->now - h->born[id % 256];
      if (h->noffered[from][to][in]++ == 0 || age < h->offer_min_age[from][to][in])
        h->offer_min_age[from][to][in] = age;
    }
  if (from < (ptv_id)h->nn) {
    nctx *c = &h->ctx[from];
    if (c->sends == 0) {
      c->first_type = rv > 0 ? m.type : -1;
      c->first_to = to;
      c->first_t = h->now;
    }
    c->sends++;
    if (bulk) {
      c->bulk_sends++;
      c->bulk_bytes += len + vlen;
    }
  }
  if (h->capture_from == from && h->ncap < 64) {
    h->cap[h->ncap].to = to;
    h->cap[h->ncap].type = rv > 0 ? m.type : -1;
    h->ncap++;
  }
  uint64_t rec[6] = {h->now, from, to, len, vlen, (uint64_t)bulk};
  hash_bytes(&h->hash, rec, sizeof(rec));
  hash_bytes(&h->hash, buf, len);
  h->nsent++;
  if (to >= (ptv_id)h->nn) {
    h->bad_dest++;
    return;
  }
  hmsg *q = malloc(sizeof(*q) + (len ? len : 1));
  assert_non_null(q);
  q->t = h->now + (h->lat ? h->lat : LAT_US);
  if (bulk && from < (ptv_id)h->nn && h->upload[from])
    q->t += (ptv_tstamp)vlen * 8000u / h->upload[from];
  q->seq = h->seq++;
  q->from = from;
  q->to = to;
  q->len = len;
  q->vlen = vlen;
  q->bulk = bulk;
  if (len) memcpy(q->data, buf, len);
  q_push(h, q);
}

static int cb_send(void *user, ptv_id to, const uint8_t *buf, size_t len,
                   size_t virtual_len, int bulk) {
  nctx *c = user;
  harness *h = c->h;
  if (bulk) {
    /* Leaky bucket at the declared upload rate, one chunk message deep:
     * bytes sent in any window [a,b] must stay below rate*(b-a) + 1 chunk. */
    uint32_t up = h->upload[c->id];
    if (up == 0) {
      h->pacing_violations++;
    } else {
      ptv_tstamp start = c->vfinish > h->now ? c->vfinish : h->now;
      c->vfinish = start + (ptv_tstamp)(len + virtual_len) * 8000u / up;
      ptv_tstamp backlog = c->vfinish - h->now;
      if (backlog > c->max_backlog) c->max_backlog = backlog;
      if (backlog > (CHUNK_BYTES + HDR_SLACK) * 8000u / up + 1) h->pacing_violations++;
    }
  }
  h_enqueue(h, c->id, to, buf, len, virtual_len, bulk);
  return 0;
}

static int cb_tracker_send(void *user, ptv_id to, const uint8_t *buf, size_t len) {
  harness *h = user;
  h_enqueue(h, TRACKER_ID, to, buf, len, 0, 0);
  return 0;
}

static uint64_t cb_rand(void *user) {
  nctx *c = user;
  return splitmix64(&c->rng);
}

static uint64_t cb_tracker_rand(void *user) {
  harness *h = user;
  return splitmix64(&h->ctx[TRACKER_ID].rng);
}

static void cb_playout(void *user, ptv_chunk_id id, int present, ptv_tstamp now) {
  nctx *c = user;
  if (!c->nplay_start) c->playout_before_start++;
  if (c->nplays == c->capplays) {
    c->capplays = c->capplays ? 2 * c->capplays : 128;
    c->plays = realloc(c->plays, c->capplays * sizeof(*c->plays));
    assert_non_null(c->plays);
  }
  c->plays[c->nplays].id = id;
  c->plays[c->nplays].present = present;
  c->plays[c->nplays].now = now;
  c->nplays++;
}

static void cb_play_start(void *user, ptv_chunk_id first, ptv_tstamp now) {
  nctx *c = user;
  if (c->nplay_start++ == 0) {
    c->play_first = first;
    c->play_at = now;
    const ptv_node *n = c->h->node[c->id];
    c->held_at_start = 0;
    while (n && ptv_node_has_chunk(n, first + c->held_at_start) == 1) c->held_at_start++;
  }
}

static void cb_chunk(void *user, ptv_id from, ptv_chunk_id id, ptv_tstamp now) {
  nctx *c = user;
  c->chunks_got++;
}

static const ptv_node_callbacks node_cbs = {
    .send = cb_send,
    .rand = cb_rand,
    .on_playout = cb_playout,
    .on_play_start = cb_play_start,
    .on_chunk = cb_chunk,
};

/* A tracker, a source (stream 500 kbps, 250 ms chunks, started at t=0) and
 * `npeers` peers started at PEER_START + i*PEER_STAGGER, every node running
 * `strat` (NULL: the random mesh). */
static harness *h_new_strat(int npeers, const uint32_t *peer_up, uint32_t source_up,
                            uint64_t seed, const ptv_strategy *strat) {
  harness *h = calloc(1, sizeof(*h));
  assert_non_null(h);
  assert_true(FIRST_PEER + npeers <= MAXN);
  h->nn = FIRST_PEER + npeers;
  h->capture_from = PTV_ID_NONE;
  h->hash = 0xcbf29ce484222325ULL;
  for (int i = 0; i < h->nn; i++) {
    h->ctx[i].h = h;
    h->ctx[i].id = (ptv_id)i;
    h->ctx[i].rng = seed * 0x100000001b3ULL + (uint64_t)i * 0x9e3779b97f4a7c15ULL;
    h->ctx[i].first_type = -1;
    h->drop_to_after[i] = PTV_TSTAMP_MAX;
    h->drop_bulk_to_after[i] = PTV_TSTAMP_MAX;
  }
  int slot = 0;
  while (slot < MAX_LIVE && g_live[slot]) slot++;
  assert_true(slot < MAX_LIVE);
  g_live[slot] = h;
  ptv_tracker_config tc = {.self = TRACKER_ID, .chunk_us = CHUNK_US};
  ptv_tracker_callbacks tcb = {.send = cb_tracker_send, .rand = cb_tracker_rand};
  h->trk = ptv_tracker_new(&tc, &tcb, h);
  assert_non_null(h->trk);

  ptv_node_config c;
  ptv_node_config_default(&c);
  c.self = SOURCE_ID;
  c.tracker = TRACKER_ID;
  c.role = PTV_ROLE_SOURCE;
  c.upload_kbps = source_up;
  c.stream_kbps = STREAM_KBPS;
  c.chunk_us = CHUNK_US;
  c.max_partners = 0; /* from upload */
  c.strategy = strat;
  h->upload[SOURCE_ID] = source_up;
  h->node[SOURCE_ID] = ptv_node_new(&c, &node_cbs, &h->ctx[SOURCE_ID]);
  assert_non_null(h->node[SOURCE_ID]);
  h->start_at[SOURCE_ID] = 0;

  for (int i = 0; i < npeers; i++) {
    ptv_id id = (ptv_id)(FIRST_PEER + i);
    ptv_node_config_default(&c);
    c.self = id;
    c.tracker = TRACKER_ID;
    c.upload_kbps = peer_up[i];
    c.strategy = strat;
    h->upload[id] = peer_up[i];
    h->node[id] = ptv_node_new(&c, &node_cbs, &h->ctx[id]);
    assert_non_null(h->node[id]);
    h->start_at[id] = PEER_START + (ptv_tstamp)i * PEER_STAGGER;
  }
  return h;
}

static harness *h_new(int npeers, const uint32_t *peer_up, uint32_t source_up,
                      uint64_t seed) {
  return h_new_strat(npeers, peer_up, source_up, seed, NULL);
}

static harness *h_new_uniform(int npeers, uint32_t up, uint32_t source_up,
                              uint64_t seed) {
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = up;
  return h_new(npeers, ups, source_up, seed);
}

static void h_free(harness *h) {
  for (int k = 0; k < MAX_LIVE; k++)
    if (g_live[k] == h) g_live[k] = NULL;
  for (int i = 0; i < h->nn; i++) {
    ptv_node_free(h->node[i]);
    free(h->ctx[i].plays);
  }
  ptv_tracker_free(h->trk);
  for (size_t i = 0; i < h->nq; i++) free(h->q[i]);
  free(h->q);
  free(h);
}

static int h_held(harness *h, const hmsg *m) {
  if (!m->bulk || !h->hold_to || m->to != h->hold_to || !h->started[m->to]) return 0;
  ptv_node_stats st;
  ptv_node_get_stats(h->node[m->to], &st);
  ptv_msg cm;
  if (st.playing || ptv_wire_decode(&cm, m->data, m->len) <= 0) return 0;
  return st.play_next != PTV_ID_NONE && cm.u.chunk.chunk >= st.play_next + h->hold_ahead;
}

/* A pull (REQUEST, or SELECT of an offer), or an offer, that h->noask drops. */
static int h_noask(const harness *h, const hmsg *m) {
  ptv_msg dm;
  if (!h->noask || ptv_wire_decode(&dm, m->data, m->len) <= 0) return 0;
  if (m->from == h->noask_from && (m->to == h->noask_to || h->noask_to == PTV_ID_NONE))
    return dm.type == PTV_MSG_REQUEST || dm.type == PTV_MSG_SELECT;
  if (m->to == h->noask_from && (m->from == h->noask_to || h->noask_to == PTV_ID_NONE))
    return dm.type == PTV_MSG_OFFER;
  return 0;
}

static void h_deliver(harness *h, hmsg *m) {
  int drop = h->dead[m->from] || h->dead[m->to] || m->t >= h->drop_to_after[m->to] ||
             (m->bulk && m->t >= h->drop_bulk_to_after[m->to]) || h_held(h, m) || h_noask(h, m);
  if (!drop) {
    if (m->to == TRACKER_ID) {
      if (ptv_tracker_recv(h->trk, m->from, m->data, m->len, h->now) < 0)
        h->tracker_recv_errors++;
    } else if (h->node[m->to] && h->started[m->to]) {
      if (ptv_node_recv(h->node[m->to], m->from, m->data, m->len, h->now) < 0)
        h->node_recv_errors++;
    }
  }
  free(m);
}

/* Cumulative form of the pacing contract, on the engine's own accounting. */
static void h_check_pacing(harness *h) {
  for (int i = SOURCE_ID; i < h->nn; i++) {
    if (!h->started[i] || h->dead[i]) continue;
    ptv_node_stats st;
    ptv_node_get_stats(h->node[i], &st);
    uint64_t bound = (uint64_t)h->upload[i] * (h->now - h->start_at[i]) / 8000u +
                     CHUNK_BYTES + HDR_SLACK;
    if (st.bytes_up > bound) {
      fail_msg("node %d: bytes_up %llu > %llu at t=%llu us", i,
               (unsigned long long)st.bytes_up, (unsigned long long)bound,
               (unsigned long long)h->now);
    }
  }
}

/* One event: the earliest message, peer start, tracker or node expiry (ties
 * in that order, then by id). Returns 0 if the next event is after `until`. */
static int h_step(harness *h, ptv_tstamp until) {
  ptv_tstamp t = PTV_TSTAMP_MAX;
  int kind = 0, who = -1;
  if (h->nq) {
    t = h->q[0]->t;
    kind = 1;
  }
  for (int i = SOURCE_ID; i < h->nn; i++)
    if (!h->started[i] && !h->dead[i] && h->start_at[i] < t) {
      t = h->start_at[i];
      kind = 2;
      who = i;
    }
  ptv_tstamp te = ptv_tracker_get_expiry(h->trk);
  if (te < t) {
    t = te;
    kind = 3;
  }
  for (int i = SOURCE_ID; i < h->nn; i++) {
    if (!h->started[i] || h->dead[i]) continue;
    ptv_tstamp e = ptv_node_get_expiry(h->node[i]);
    if (e < t) {
      t = e;
      kind = 4;
      who = i;
    }
  }
  if (kind == 0 || t > until) return 0;
  if (t < h->now) t = h->now; /* an expiry in the past means "now" */
  if (t == h->last_t) {
    if (++h->same_t > 100000)
      fail_msg("driver stuck at t=%llu us (event kind %d, node %d)",
               (unsigned long long)t, kind, who);
  } else {
    h->last_t = t;
    h->same_t = 0;
  }
  h->now = t;
  switch (kind) {
  case 1:
    h_deliver(h, q_pop(h));
    break;
  case 2:
    h->started[who] = 1;
    assert_int_equal(ptv_node_start(h->node[who], h->now), 0);
    break;
  case 3:
    ptv_tracker_handle_expiry(h->trk, h->now);
    break;
  default:
    ptv_node_handle_expiry(h->node[who], h->now);
    break;
  }
  if (h->check_pacing) h_check_pacing(h);
  return 1;
}

static void h_run_until(harness *h, ptv_tstamp until) {
  while (h_step(h, until)) {
  }
  if (h->now < until) h->now = until;
}

/* The engines never emit anything malformed, misaddressed or unpaced. */
static void h_assert_clean(const harness *h) {
  assert_int_equal(h->malformed_sends, 0);
  assert_int_equal(h->bulk_mismatch, 0);
  assert_int_equal(h->bad_dest, 0);
  assert_int_equal(h->self_sends, 0);
  assert_int_equal(h->tracker_recv_errors, 0);
  assert_int_equal(h->node_recv_errors, 0);
  assert_int_equal(h->pacing_violations, 0);
  for (int i = 0; i < h->nn; i++) assert_int_equal(h->ctx[i].playout_before_start, 0);
}

static ptv_node_stats h_stats(const harness *h, int i) {
  ptv_node_stats st;
  ptv_node_get_stats(h->node[i], &st);
  return st;
}

/* 1 if `id` is among n's partners (established only, or any state). */
static int has_partner(const ptv_node *n, ptv_id id, int established_only) {
  ptv_partner_info pi;
  for (uint32_t k = 0; ptv_node_partner(n, k, &pi) == 0; k++)
    if (pi.id == id && (!established_only || pi.established)) return 1;
  return 0;
}

static uint32_t n_established(const ptv_node *n) {
  ptv_partner_info pi;
  uint32_t c = 0;
  for (uint32_t k = 0; ptv_node_partner(n, k, &pi) == 0; k++) c += pi.established;
  return c;
}

/* The playout log reports every chunk once, in order: ids consecutive from
 * the first chunk played, never before its slot on the playout clock.
 * Returns the number of entries. */
static size_t check_playout_order(const nctx *c) {
  assert_int_equal(c->nplay_start, 1);
  for (size_t k = 0; k < c->nplays; k++) {
    const playrec *r = &c->plays[k];
    if (r->id != c->play_first + (ptv_chunk_id)k)
      fail_msg("node %u: playout %zu is chunk %u, want %u", c->id, k, r->id,
               c->play_first + (ptv_chunk_id)k);
    if (r->now < c->play_at + (ptv_tstamp)k * CHUNK_US)
      fail_msg("node %u: chunk %u played early, at %llu us", c->id, r->id,
               (unsigned long long)r->now);
    if (k > 0 && r->now < c->plays[k - 1].now)
      fail_msg("node %u: playout time went backwards at chunk %u", c->id, r->id);
  }
  return c->nplays;
}

/* ptv_node.h: chunks play "on a fixed playout clock, skipping a chunk that
 * misses its deadline": chunk first+k is reported at play_start + k*chunk_us
 * exactly (the driver wakes the node exactly at its expiry). */
static size_t check_playout_clock(const nctx *c) {
  check_playout_order(c);
  for (size_t k = 0; k < c->nplays; k++) {
    const playrec *r = &c->plays[k];
    ptv_tstamp due = c->play_at + (ptv_tstamp)k * CHUNK_US;
    if (r->now != due)
      fail_msg("node %u: chunk %u (present %d) played at %llu us, its slot on the "
               "playout clock is %llu us (%+lld us)",
               c->id, r->id, r->present, (unsigned long long)r->now,
               (unsigned long long)due, (long long)(r->now - due));
  }
  return c->nplays;
}

/* ---- 1. joining ---------------------------------------------------------- */

/* The source is not a viewer: it must never start playback. */
static void assert_source_silent_playout(const harness *h) {
  const nctx *c = &h->ctx[SOURCE_ID];
  ptv_node_stats st;
  ptv_node_get_stats(h->node[SOURCE_ID], &st);
  if (c->nplay_start || c->nplays || st.playing || st.chunks_due)
    fail_msg("the source plays: on_play_start x%d (chunk %u at %llu us), on_playout "
             "x%zu, stats playing=%d chunks_due=%llu",
             c->nplay_start, c->play_first, (unsigned long long)c->play_at, c->nplays,
             st.playing, (unsigned long long)st.chunks_due);
}

static void test_join(void **state) {
  (void)state;
  const int np = 4;
  harness *h = h_new_uniform(np, 1000, 2000, 1);

  /* Before its start time a peer says nothing. */
  h_run_until(h, PEER_START - 1);
  for (int i = FIRST_PEER; i < h->nn; i++) assert_int_equal(h->ctx[i].sends, 0);
  /* The source registered with the tracker. */
  assert_int_equal(h->ctx[SOURCE_ID].first_type, PTV_MSG_JOIN);
  assert_int_equal(h->ctx[SOURCE_ID].first_to, TRACKER_ID);
  assert_int_equal(ptv_tracker_nmembers(h->trk), 1);

  ptv_tstamp last_start = h->start_at[h->nn - 1];
  h_run_until(h, last_start);
  /* Starting makes a peer's first message a JOIN to the tracker, at once. */
  for (int i = FIRST_PEER; i < h->nn; i++) {
    assert_true(h->ctx[i].sends > 0);
    assert_int_equal(h->ctx[i].first_type, PTV_MSG_JOIN);
    assert_int_equal(h->ctx[i].first_to, TRACKER_ID);
    assert_int_equal(h->ctx[i].first_t, h->start_at[i]);
    ptv_node_stats st = h_stats(h, i);
    assert_int_equal(st.join_time, h->start_at[i]);
  }
  h_run_until(h, last_start + PTV_S);
  assert_int_equal(ptv_tracker_nmembers(h->trk), 1 + np);
  for (int i = FIRST_PEER; i < h->nn; i++) {
    const ptv_node *n = h->node[i];
    assert_true(ptv_node_npartners(n) > 0);
    assert_true(n_established(n) > 0);
    assert_int_equal(h_stats(h, i).npartners, n_established(n));
    const ptv_sampler *v = ptv_node_view(n);
    assert_true(v->n > 0);
    for (int k = 0; k < v->n; k++) {
      assert_int_not_equal(v->v[k].id, (ptv_id)i); /* never itself */
      assert_true(v->v[k].id < (ptv_id)h->nn && v->v[k].id != TRACKER_ID);
    }
    /* Partner list entries are distinct, valid ids. */
    ptv_partner_info pi, pj;
    for (uint32_t a = 0; ptv_node_partner(n, a, &pi) == 0; a++) {
      assert_true(pi.id != (ptv_id)i && pi.id != TRACKER_ID && pi.id < (ptv_id)h->nn);
      for (uint32_t b = a + 1; ptv_node_partner(n, b, &pj) == 0; b++)
        assert_int_not_equal(pi.id, pj.id);
    }
    assert_int_equal(ptv_node_partner(n, ptv_node_npartners(n), &pi), PTV_ERR_NOT_FOUND);
  }
  /* The first peer found only the source at the tracker, and partnered it. */
  assert_true(has_partner(h->node[FIRST_PEER], SOURCE_ID, 1));
  assert_true(ptv_node_npartners(h->node[SOURCE_ID]) > 0);
  h_assert_clean(h);
  h_free(h);
}

/* ---- 2. streaming with ample capacity ------------------------------------ */

static void test_streaming_ample(void **state) {
  (void)state;
  const int np = 6;
  harness *h = h_new_uniform(np, 2000, 2000, 2);
  h_run_until(h, 10 * PTV_S);
  for (int i = FIRST_PEER; i < h->nn; i++) {
    const nctx *c = &h->ctx[i];
    ptv_node_stats st = h_stats(h, i);
    assert_int_equal(c->nplay_start, 1);
    assert_true(st.playing);
    assert_int_equal(st.play_start, c->play_at);
    assert_int_equal(st.join_time, h->start_at[i]);
    ptv_tstamp startup = st.play_start - st.join_time;
    if (startup >= 3 * PTV_S)
      fail_msg("peer %d: startup %llu us", i, (unsigned long long)startup);
    /* Perfect continuity, and every playout reported. */
    assert_true(st.chunks_due > 0);
    assert_int_equal(st.chunks_missed, 0);
    assert_int_equal(st.chunks_due, c->nplays);
    assert_int_equal(check_playout_clock(c), st.chunks_due);
    for (size_t k = 0; k < c->nplays; k++) assert_int_equal(c->plays[k].present, 1);
    assert_int_equal(st.play_next, c->play_first + (ptv_chunk_id)c->nplays);
    /* It played everything it could since starting: 4 chunks a second. */
    uint64_t expect = (10 * PTV_S - c->play_at) / CHUNK_US + 1;
    assert_true(st.chunks_due + 1 >= expect && st.chunks_due <= expect + 1);
    /* The clock is fixed behind live, never ahead of the source. */
    assert_true(st.lag_us > 0 && st.lag_us < 10 * PTV_S);
    assert_true(st.bytes_down >= st.chunks_due * CHUNK_BYTES);
    assert_true(c->chunks_got >= st.chunks_due);
  }
  h_assert_clean(h);
  /* The source holds the newest chunk; it is not a viewer, so it never plays
   * (on_play_start / on_playout are about playback). */
  assert_true(ptv_node_has_chunk(h->node[SOURCE_ID], 10 * PTV_S / CHUNK_US - 1));
  assert_source_silent_playout(h);
  h_free(h);
}

/* ---- 3. playout never stalls --------------------------------------------- */

/* From `cut` on, the victim gets nothing (all_msgs) or no chunk data (its
 * partners stay alive and keep advertising chunks it will never receive).
 * It may pause for chunks it asked for (late play), but only up to the late
 * budget (LATE_BUDGET = 6 buffers of 2 s); after that it must keep reporting
 * one missing chunk per chunk duration: skip ahead, counted as missed,
 * never wait. */
#define STALL_BUDGET_US (12 * PTV_S)
static void stall_scenario(int all_msgs, uint64_t seed) {
  const int np = 6;
  const int v = FIRST_PEER + 1;
  const ptv_tstamp cut = 5 * PTV_S;
  harness *h = h_new_uniform(np, 2000, 2000, seed);
  if (all_msgs) h->drop_to_after[v] = cut;
  else h->drop_bulk_to_after[v] = cut;
  h_run_until(h, cut);
  ptv_node_stats st = h_stats(h, v);
  assert_true(st.playing);
  assert_true(st.lag_us > 0 && st.lag_us < 4 * PTV_S);
  /* Chunk k plays at ts(k) + lag: a chunk played after cut + lag began after
   * the cut, so it cannot be there. Past the whole budget, no pause is left. */
  ptv_tstamp w0 = cut + st.lag_us + STALL_BUDGET_US + 2 * CHUNK_US;
  ptv_tstamp w1 = w0 + 4 * PTV_S;
  h_run_until(h, w0);
  ptv_node_stats s0 = h_stats(h, v);
  h_run_until(h, w1);
  ptv_node_stats s1 = h_stats(h, v);
  uint64_t due = s1.chunks_due - s0.chunks_due;
  uint64_t missed = s1.chunks_missed - s0.chunks_missed;
  const nctx *c = &h->ctx[v];
  assert_int_equal(check_playout_order(c), s1.chunks_due);
  if (all_msgs) assert_int_equal(s1.catchups, 0); /* no fed partner to catch up with */
  if (s1.catchups > 0) {
    /* Partners fed all along: past the budget it caught up with them,
     * jumping over chunks (each reported, missed) and pausing again with
     * the budget the jump handed back. Still never stalled: in the window
     * at least one chunk per chunk duration was reported, all missed, and
     * it is never further behind than the budget allows. */
    assert_true(due >= 15);
    assert_int_equal(missed, due);
    assert_true(s1.lag_us <= st.lag_us + STALL_BUDGET_US);
    assert_true(s1.playing);
    h_free(h);
    return;
  }
  /* The pauses are bounded and counted... */
  assert_true(s1.lag_us >= st.lag_us && s1.lag_us - st.lag_us <= STALL_BUDGET_US);
  assert_int_equal(s1.stall_us, s1.lag_us - st.lag_us);
  assert_true((s1.stall_us == 0) == (s1.stalls == 0));
  /* ...and spent before w0: 4 s at 4 chunks a second, each one missed. */
  ptv_tstamp grown = s1.lag_us - s0.lag_us;
  uint64_t due_seen = due;
  if (grown != 0 || due < 15 || due > 17)
    fail_msg("%s cut at %llu us: %llu chunks due in (%llu, %llu] us, want 16, lag grew by "
             "%llu us in it (lag was %llu us, now %llu us)",
             all_msgs ? "all messages" : "chunk data", (unsigned long long)cut,
             (unsigned long long)due, (unsigned long long)w0, (unsigned long long)w1,
             (unsigned long long)grown, (unsigned long long)st.lag_us,
             (unsigned long long)s1.lag_us);
  assert_int_equal(missed, due_seen);
  assert_true(s1.playing);
  size_t late = 0;
  for (size_t k = 0; k < c->nplays; k++)
    if (c->plays[k].now > w0) {
      assert_int_equal(c->plays[k].present, 0);
      late++;
    }
  assert_int_equal(late, due_seen);
  /* ...on the fixed clock, from start to end, when nothing was played late
   * (with everything cut, nothing is requested from a live partner). */
  if (s1.lag_us == st.lag_us) check_playout_clock(c);
  else check_playout_order(c);
  if (all_msgs) {
    /* Silence from everyone: all its partnerships timed out. */
    assert_int_equal(s1.npartners, 0);
  }
  /* The others were not hurt. */
  for (int i = FIRST_PEER; i < h->nn; i++) {
    if (i == v) continue;
    ptv_node_stats o = h_stats(h, i);
    assert_true(o.playing);
    assert_true(o.chunks_due > 16);
    assert_true(o.chunks_missed * 20 <= o.chunks_due);
  }
  h_free(h);
}

static void test_playout_never_stalls(void **state) {
  (void)state;
  stall_scenario(1, 3);
}

static void test_playout_never_stalls_data_cut(void **state) {
  (void)state;
  stall_scenario(0, 3);
}

/* ---- 3b. re-anchoring ---------------------------------------------------- */

#define LATE_STEP_US (4 * CHUNK_US)     /* LATE_STEP chunks, in ptv_node.c */
#define REANCHOR_CAP_US (6 * 2 * PTV_S) /* REANCHOR buffers of 2 s */

/* Rebuilds peer i, not started yet, so that it starts `buffer_us` behind live. */
static void h_set_buffer(harness *h, int i, ptv_tstamp buffer_us) {
  assert_false(h->started[i]);
  ptv_node_config c = *ptv_node_config_get(h->node[i]);
  c.buffer_us = buffer_us;
  ptv_node_free(h->node[i]);
  h->node[i] = ptv_node_new(&c, &node_cbs, &h->ctx[i]);
  assert_non_null(h->node[i]);
}

/* The late budget (6 buffers) need not be a whole number of LATE_STEP
 * pauses: with a 1.9 s buffer it is 11.4 s. The victim, no chunk reaching
 * any peer any more, pauses 11 x 1 s and then once for the 0.4 s left, not a chunk
 * (0.25 s) at a time, and never past the budget. */
static void test_late_budget_remainder(void **state) {
  (void)state;
  const int v = FIRST_PEER + 1;
  const ptv_tstamp buf = 1900 * PTV_MS, budget = 6 * buf, cut = 5 * PTV_S;
  harness *h = h_new_uniform(6, 2000, 2000, 3);
  h_set_buffer(h, v, buf);
  /* no chunk data for anyone: no fed partner to catch up with, and the
   * chunks due are ahead of every partner */
  for (int i = FIRST_PEER; i < h->nn; i++) h->drop_bulk_to_after[i] = cut;
  h_run_until(h, cut);
  ptv_node_stats st = h_stats(h, v);
  assert_true(st.playing);
  assert_int_equal(st.stalls, 0);
  h_run_until(h, cut + st.lag_us + budget + 8 * PTV_S);
  ptv_node_stats s1 = h_stats(h, v);
  print_message("victim: %u stalls, %.2f s in all (budget %.2f s), %u catch-ups\n", s1.stalls,
                (double)s1.stall_us / PTV_S, (double)budget / PTV_S, s1.catchups);
  if (s1.catchups == 0) {
    assert_int_equal(s1.stall_us, budget);
    assert_int_equal(s1.stalls, 12);
  } else {
    assert_true(s1.stall_us <= budget);
  }
  h_free(h);
}

enum { RA_MEDIAN, RA_CAPPED, RA_NONE };

/* The victim (the first peer, 2 s buffer) partners every other peer, which
 * start `others_buf` behind live, then play on their fixed clock: they
 * advertise that playback point in their buffer maps. From `cut`, for 3 s,
 * no chunk data reaches the victim (its partners stay up): once the chunks
 * it held are played it misses one. Then it must pause once, back to its
 * partners' median playback point (RA_MEDIAN), or by the whole re-anchoring
 * allowance when they are further behind than that (RA_CAPPED); with
 * partners at its own point (RA_NONE) it only pauses for late chunks,
 * LATE_STEP chunks each time. Either way one chunk is missed, every pause
 * is at that chunk, and it plays on without a miss from there. */
static void reanchor_scenario(int kind, ptv_tstamp others_buf, uint64_t seed) {
  const int np = 6;
  const int v = FIRST_PEER;
  const ptv_tstamp cut = others_buf + 6 * PTV_S; /* everyone plays by then */
  const ptv_tstamp end = cut + 28 * PTV_S;
  harness *h = h_new_uniform(np, 2000, 2000, seed);
  for (int i = v + 1; i < h->nn; i++) h_set_buffer(h, i, others_buf);
  h_run_until(h, cut);

  /* Before the cut: nothing missed, no pause, everyone partnered with v. */
  ptv_node_stats st = h_stats(h, v);
  assert_true(st.playing);
  assert_int_equal(st.chunks_missed, 0);
  assert_int_equal(st.stalls, 0);
  assert_int_equal(st.stall_us, 0);
  ptv_tstamp olag[MAXN];
  int no = 0;
  for (int i = v + 1; i < h->nn; i++) {
    ptv_node_stats o = h_stats(h, i);
    assert_true(o.playing);
    assert_true(has_partner(h->node[v], (ptv_id)i, 1));
    olag[no++] = o.lag_us;
  }
  for (int i = 1; i < no; i++) /* sort: the partners' median lag */
    for (int j = i; j > 0 && olag[j - 1] > olag[j]; j--) {
      ptv_tstamp t = olag[j];
      olag[j] = olag[j - 1];
      olag[j - 1] = t;
    }
  ptv_tstamp med_lag = olag[no / 2];
  if (kind != RA_NONE) {
    /* It plays well ahead of its partners (more than a late pause). */
    if (st.lag_us + 2 * LATE_STEP_US > med_lag)
      fail_msg("victim lag %llu us, its partners' %llu us: not ahead",
               (unsigned long long)st.lag_us, (unsigned long long)med_lag);
  }

  h->drop_bulk_to_after[v] = cut;
  h_run_until(h, cut + 3 * PTV_S);
  h->drop_bulk_to_after[v] = PTV_TSTAMP_MAX;
  h_run_until(h, end);
  ptv_node_stats s = h_stats(h, v);
  const nctx *c = &h->ctx[v];

  /* One chunk missed, counted once; the pauses are what the lag grew by. */
  assert_true(s.playing);
  assert_int_equal(s.chunks_missed, 1);
  assert_true(s.stalls >= 1);
  assert_int_equal(s.stall_us, s.lag_us - st.lag_us);
  assert_true(s.stall_us <= REANCHOR_CAP_US);
  /* The log: every chunk once, in order; the missing one on the fixed clock
   * after the cut; all the pause at it; the rest present, on the clock. */
  assert_int_equal(check_playout_order(c), s.chunks_due);
  size_t m = c->nplays;
  for (size_t k = 0; k < c->nplays; k++)
    if (!c->plays[k].present) {
      assert_int_equal(m, c->nplays); /* only one */
      m = k;
    }
  assert_true(m < c->nplays);
  assert_true(c->plays[m].now > cut);
  assert_true(c->nplays - m > 40); /* it went on playing, 10 s and more */
  for (size_t k = 0; k < c->nplays; k++) {
    ptv_tstamp due = c->play_at + (ptv_tstamp)k * CHUNK_US + (k > m ? s.stall_us : 0);
    if (c->plays[k].now != due)
      fail_msg("victim: chunk %u (present %d) played at %llu us, want %llu us "
               "(missed chunk %u at %llu us, paused %llu us in %u stalls)",
               c->plays[k].id, c->plays[k].present, (unsigned long long)c->plays[k].now,
               (unsigned long long)due, c->plays[m].id,
               (unsigned long long)c->plays[m].now, (unsigned long long)s.stall_us,
               s.stalls);
  }

  switch (kind) {
  case RA_MEDIAN: /* one pause, to about where its partners play (their
                    play points come in their maps, a chunk or so old) */
    if (s.stalls != 1 || s.stall_us < 2 * LATE_STEP_US ||
        s.lag_us + 2 * CHUNK_US < med_lag || s.lag_us > med_lag + 2 * CHUNK_US)
      fail_msg("victim: %u stalls, %llu us in all, lag %llu -> %llu us; want one stall "
               "to its partners' lag %llu us (+-%llu us)",
               s.stalls, (unsigned long long)s.stall_us, (unsigned long long)st.lag_us,
               (unsigned long long)s.lag_us, (unsigned long long)med_lag,
               (unsigned long long)(2 * CHUNK_US));
    break;
  case RA_CAPPED: /* one pause, of the whole allowance: still ahead of them */
    assert_int_equal(s.stalls, 1);
    assert_int_equal(s.stall_us, REANCHOR_CAP_US);
    assert_true(s.lag_us + CHUNK_US < med_lag);
    break;
  default: /* partners at its point: late pauses only, LATE_STEP each */
    assert_int_equal(s.stall_us, (ptv_tstamp)s.stalls * LATE_STEP_US);
    break;
  }

  /* The partners' clocks never moved: they missed nothing, never paused. */
  for (int i = v + 1; i < h->nn; i++) {
    ptv_node_stats o = h_stats(h, i);
    assert_int_equal(o.chunks_missed, 0);
    assert_int_equal(o.stalls, 0);
    assert_int_equal(o.stall_us, 0);
    assert_int_equal(check_playout_clock(&h->ctx[i]), o.chunks_due);
  }
  h_assert_clean(h);
  h_free(h);
}

static void test_playout_reanchor(void **state) {
  (void)state;
  for (uint64_t seed = 12; seed <= 13; seed++) {
    reanchor_scenario(RA_MEDIAN, 5 * PTV_S, seed);
    reanchor_scenario(RA_CAPPED, 16 * PTV_S, seed);
    reanchor_scenario(RA_NONE, 2 * PTV_S, seed);
  }
}

/* ---- 3c. catching up after a blackout ------------------------------------- */

/* The victim (the first peer) gets no chunk data for 24 s while its
 * partners, fed as before, play on. It pauses as far as its budget allows
 * (12 s) and then misses chunk after chunk; catching up, it jumps to where
 * its partners play instead of staying 12 s behind them. Every chunk is
 * still reported once and in order (those jumped over as missed), and once
 * data flows again it plays without a miss, about as far behind live as
 * its partners. */
static void test_playout_catchup(void **state) {
  (void)state;
  const int np = 6;
  const int v = FIRST_PEER;
  const ptv_tstamp cut = 8 * PTV_S, restore = cut + 24 * PTV_S, end = restore + 16 * PTV_S;
  for (uint64_t seed = 21; seed <= 22; seed++) {
    harness *h = h_new_uniform(np, 2000, 2000, seed);
    h_run_until(h, cut);
    ptv_node_stats st = h_stats(h, v);
    assert_true(st.playing);
    assert_int_equal(st.chunks_missed, 0);
    assert_int_equal(st.catchups, 0);

    h->drop_bulk_to_after[v] = cut;
    h_run_until(h, restore);
    ptv_node_stats mid = h_stats(h, v);
    assert_true(mid.chunks_missed >= 8); /* the blackout did hurt */
    assert_true(mid.stall_us > 0);
    h->drop_bulk_to_after[v] = PTV_TSTAMP_MAX;
    h_run_until(h, end);
    ptv_node_stats s = h_stats(h, v);
    const nctx *c = &h->ctx[v];

    assert_true(s.catchups >= 1);
    assert_int_equal(check_playout_order(c), s.chunks_due);
    size_t missed = 0;
    for (size_t k = 0; k < c->nplays; k++) {
      if (!c->plays[k].present) missed++;
      if (c->plays[k].now >= end - 8 * PTV_S && !c->plays[k].present)
        fail_msg("victim: chunk %u missed at %llu us, 8 s before the end", c->plays[k].id,
                 (unsigned long long)c->plays[k].now);
    }
    assert_int_equal(missed, s.chunks_missed);
    ptv_tstamp olag[MAXN];
    int no = 0;
    for (int i = v + 1; i < h->nn; i++) {
      ptv_node_stats o = h_stats(h, i);
      assert_int_equal(o.catchups, 0);
      olag[no++] = o.lag_us;
    }
    for (int i = 1; i < no; i++)
      for (int j = i; j > 0 && olag[j - 1] > olag[j]; j--) {
        ptv_tstamp t = olag[j];
        olag[j] = olag[j - 1];
        olag[j - 1] = t;
      }
    /* Without catching up it would be the whole pause budget (12 s) behind
     * its partners; caught up, it may since have paused again for part of
     * the budget the jump handed back (it did during the blackout). */
    if (s.lag_us + 2 * PTV_S > olag[no / 2] + STALL_BUDGET_US)
      fail_msg("victim lag %llu us, its partners' median %llu us: it did not catch up",
               (unsigned long long)s.lag_us, (unsigned long long)olag[no / 2]);
    h_assert_clean(h);
    h_free(h);
  }
}

/* ---- 4. upload pacing ---------------------------------------------------- */

static void test_upload_pacing(void **state) {
  (void)state;
  /* Peers upload barely more than the stream; the last one uploads nothing. */
  const int np = 7;
  uint32_t ups[7] = {600, 600, 600, 600, 600, 600, 0};
  const int freerider = FIRST_PEER + 6;
  harness *h = h_new(np, ups, 2500, 4);
  h->check_pacing = 1; /* bytes_up <= up * elapsed / 8 + one chunk, every event */
  h_run_until(h, 10 * PTV_S);
  h_assert_clean(h); /* includes the leaky-bucket check on every chunk sent */
  uint64_t total_bulk = 0;
  for (int i = SOURCE_ID; i < h->nn; i++) {
    ptv_node_stats st = h_stats(h, i);
    uint64_t bound = (uint64_t)h->upload[i] * (10 * PTV_S - h->start_at[i]) / 8000u +
                     CHUNK_BYTES + HDR_SLACK;
    assert_true(st.bytes_up <= bound);
    assert_true(h->ctx[i].bulk_bytes <= bound);
    total_bulk += h->ctx[i].bulk_bytes;
  }
  /* Peers with capacity did serve: the swarm is not a star around the source. */
  uint64_t peer_bulk = 0;
  for (int i = FIRST_PEER; i < freerider; i++) peer_bulk += h->ctx[i].bulk_bytes;
  assert_true(peer_bulk > 0);
  assert_true(total_bulk > 0);
  /* The free rider sends no chunk data at all... */
  ptv_node_stats fr = h_stats(h, freerider);
  assert_int_equal(fr.bytes_up, 0);
  assert_int_equal(h->ctx[freerider].bulk_sends, 0);
  assert_int_equal(h->ctx[freerider].bulk_bytes, 0);
  for (int i = SOURCE_ID; i < h->nn; i++) {
    ptv_partner_info pi;
    for (uint32_t k = 0; ptv_node_partner(h->node[i], k, &pi) == 0; k++)
      if (pi.id == (ptv_id)freerider) assert_int_equal(pi.chunks_from, 0);
  }
  /* ...but still plays. */
  assert_int_equal(h->ctx[freerider].nplay_start, 1);
  assert_true(fr.playing);
  assert_true(fr.chunks_due > 0);
  assert_true(fr.chunks_missed * 2 < fr.chunks_due);
  check_playout_order(&h->ctx[freerider]);
  h_free(h);
}

/* ---- 5. partner failure -------------------------------------------------- */

static void test_partner_failure(void **state) {
  (void)state;
  const int np = 11;
  const int x = FIRST_PEER + 4;
  const ptv_tstamp crash = 6 * PTV_S;
  harness *h = h_new_uniform(np, 2000, 3000, 5);
  h_run_until(h, crash);
  uint8_t target_p = ptv_node_config_get(h->node[FIRST_PEER])->target_partners;
  assert_true(target_p > 0);
  int holders[MAXN] = {0}, nholders = 0;
  uint32_t before[MAXN] = {0};
  for (int i = FIRST_PEER; i < h->nn; i++) {
    if (i == x) continue;
    before[i] = n_established(h->node[i]);
    if (has_partner(h->node[i], (ptv_id)x, 1)) holders[nholders++] = i;
  }
  assert_true(nholders > 0);
  h->dead[x] = 1; /* crash: nothing from or to it any more */

  ptv_tstamp gone_at[MAXN];
  uint32_t max_after[MAXN] = {0};
  for (int i = 0; i < MAXN; i++) gone_at[i] = PTV_TSTAMP_MAX;
  for (ptv_tstamp t = crash; t <= crash + 8 * PTV_S; t += 50 * PTV_MS) {
    h_run_until(h, t);
    for (int k = 0; k < nholders; k++) {
      int i = holders[k];
      if (gone_at[i] == PTV_TSTAMP_MAX && !has_partner(h->node[i], (ptv_id)x, 1))
        gone_at[i] = t;
      if (gone_at[i] != PTV_TSTAMP_MAX) {
        uint32_t e = n_established(h->node[i]);
        if (e > max_after[i]) max_after[i] = e;
      }
    }
  }
  for (int k = 0; k < nholders; k++) {
    int i = holders[k];
    /* Gone within the partner timeout plus a maintenance round or so. */
    if (gone_at[i] > crash + PARTNER_TIMEOUT + 1500 * PTV_MS)
      fail_msg("peer %d still holds crashed %d at %llu us", i, x,
               (unsigned long long)gone_at[i]);
    /* And the slot was refilled from the view. */
    uint32_t want = before[i] < target_p ? before[i] : target_p;
    if (max_after[i] < want)
      fail_msg("peer %d: %u partners after the crash, had %u, target %u", i,
               max_after[i], before[i], target_p);
  }
  /* Nobody holds the dead peer as an established partner; streaming goes on. */
  for (int i = SOURCE_ID; i < h->nn; i++) {
    if (i == x) continue;
    assert_false(has_partner(h->node[i], (ptv_id)x, 1));
    if (i >= FIRST_PEER) {
      ptv_node_stats st = h_stats(h, i);
      assert_true(st.playing);
      assert_true(st.npartners > 0);
    }
  }
  h_free(h);
}

/* ---- 5b. a partner the transport says answers nothing --------------------- */

static struct {
  ptv_id watch_from, watch_to;
  ptv_tstamp until;
  int asks; /* REQUEST or SELECT from watch_from to watch_to before until */
} g_un;

static void un_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  if (from == g_un.watch_from && to == g_un.watch_to && h->now < g_un.until &&
      (m->type == PTV_MSG_REQUEST || m->type == PTV_MSG_SELECT))
    g_un.asks++;
}

/* A partner dies while a chunk is on its way from it (promised or pulled).
 * The driver's link notices (its probes go unanswered) long before the
 * engine's own partner timeout: ptv_node_partner_unanswered must release
 * the chunk at once so it is asked of someone else, keep new requests away
 * from the silent partner for a while, and the chunk must still be played. */
static void test_partner_unanswered(void **state) {
  (void)state;
  const ptv_tstamp crash = 6 * PTV_S;
  memset(&g_un, 0, sizeof(g_un));
  harness *h = h_new_uniform(11, 2000, 3000, 5);
  h->tap = un_tap;
  /* Run until some peer waits for a chunk from another peer (not the
   * source), then crash that supplier. */
  int who = -1, x = -1;
  ptv_chunk_id chunk = 0;
  for (ptv_tstamp t = crash; t <= crash + 2 * PTV_S && who < 0; t += 5 * PTV_MS) {
    h_run_until(h, t);
    for (int i = FIRST_PEER; i < h->nn && who < 0; i++) {
      ptv_node_stats st = h_stats(h, i);
      for (ptv_chunk_id id = st.play_next; id <= st.newest + 16 && who < 0; id++) {
        ptv_id from;
        int offered;
        ptv_tstamp timeout;
        if (ptv_node_pending(h->node[i], id, &from, &offered, &timeout) && from >= FIRST_PEER &&
            timeout > h->now + 100 * PTV_MS) {
          who = i;
          x = (int)from;
          chunk = id;
        }
      }
    }
  }
  if (who < 0) fail_msg("no peer waited for a chunk from another peer");
  assert_int_equal(ptv_node_partner_unanswered(h->node[who], 99, h->now), PTV_ERR_NOT_FOUND);
  h->dead[x] = 1;
  /* The engine alone keeps waiting: nothing tells it yet. */
  h_run_until(h, h->now + 50 * PTV_MS);
  ptv_id from = PTV_ID_NONE;
  int offered;
  ptv_tstamp timeout;
  assert_true(ptv_node_pending(h->node[who], chunk, &from, &offered, &timeout));
  assert_int_equal(from, (ptv_id)x);
  ptv_node_stats before = h_stats(h, who);
  g_un.watch_from = (ptv_id)who;
  g_un.watch_to = (ptv_id)x;
  g_un.until = h->now + 300 * PTV_MS; /* within the choke (400 ms) */
  assert_int_equal(ptv_node_partner_unanswered(h->node[who], (ptv_id)x, h->now), 0);
  ptv_node_stats after = h_stats(h, who);
  assert_int_equal(after.unanswered, before.unanswered + 1);
  from = PTV_ID_NONE;
  if (ptv_node_pending(h->node[who], chunk, &from, &offered, &timeout))
    assert_int_not_equal(from, (ptv_id)x); /* asked of someone else */
  /* Still a partner (it may be only slow); a second call releases nothing. */
  assert_true(has_partner(h->node[who], (ptv_id)x, 1));
  assert_int_equal(ptv_node_partner_unanswered(h->node[who], (ptv_id)x, h->now), 0);
  assert_int_equal(h_stats(h, who).unanswered, after.unanswered);
  h_run_until(h, h->now + 3 * PTV_S);
  assert_int_equal(g_un.asks, 0);
  int played = 0;
  for (size_t k = 0; k < h->ctx[who].nplays; k++)
    if (h->ctx[who].plays[k].id == chunk) played = h->ctx[who].plays[k].present;
  if (!played) fail_msg("peer %d did not play chunk %u, released from dead %d", who, chunk, x);
  print_message("peer %d: chunk %u, on its way from %d when it died, asked elsewhere and played\n",
                who, chunk, x);
  h_free(h);
}

/* ---- 6. malformed input -------------------------------------------------- */

static void test_malformed_input(void **state) {
  (void)state;
  const int np = 6;
  const int p = FIRST_PEER + 2;
  harness *h = h_new_uniform(np, 2000, 2000, 6);
  h_run_until(h, 5 * PTV_S);
  ptv_node *n = h->node[p];
  ptv_node_stats s0 = h_stats(h, p);
  assert_true(s0.playing);
  assert_int_equal(s0.bad_msgs, 0);
  ptv_partner_info pi;
  ptv_id q = PTV_ID_NONE, r = PTV_ID_NONE;
  for (uint32_t k = 0; ptv_node_partner(n, k, &pi) == 0; k++) {
    if (!pi.established) continue;
    if (q == PTV_ID_NONE) q = pi.id;
    else if (r == PTV_ID_NONE) r = pi.id;
  }
  assert_true(q != PTV_ID_NONE && r != PTV_ID_NONE);
  uint32_t np0 = ptv_node_npartners(n);
  ptv_msg m;

  /* Garbage from partner q: bad version byte. */
  const uint8_t garbage[] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33};
  int want = ptv_wire_decode(&m, garbage, sizeof(garbage));
  assert_true(want < 0);
  int rv = ptv_node_recv(n, q, garbage, sizeof(garbage), h->now);
  assert_int_equal(rv, want);
  assert_true(rv < 0 && rv >= PTV_ERR_BAD_SIG);
  assert_int_equal(h_stats(h, p).bad_msgs, 1);
  assert_false(has_partner(n, q, 0));
  assert_int_equal(ptv_node_npartners(n), np0 - 1);

  /* A truncated REQUEST from partner r. */
  uint8_t buf[64];
  ptv_msg rq = {.type = PTV_MSG_REQUEST};
  rq.u.request.chunk = s0.play_next + 2;
  rq.u.request.deadline_ms = 1000;
  int len = ptv_wire_encode(buf, sizeof(buf), &rq);
  assert_true(len > PTV_WIRE_HDRLEN);
  rv = ptv_node_recv(n, r, buf, (size_t)len - 1, h->now);
  assert_int_equal(rv, PTV_ERR_SHORT);
  assert_int_equal(h_stats(h, p).bad_msgs, 2);
  assert_false(has_partner(n, r, 0));
  assert_int_equal(ptv_node_npartners(n), np0 - 2);

  /* An empty datagram and an absurd body length, from a non-partner. */
  ptv_id stranger = PTV_ID_NONE;
  for (int i = FIRST_PEER; i < h->nn && stranger == PTV_ID_NONE; i++)
    if (i != p && !has_partner(n, (ptv_id)i, 0)) stranger = (ptv_id)i;
  if (stranger == PTV_ID_NONE) stranger = 1000; /* unknown to everyone */
  rv = ptv_node_recv(n, stranger, buf, 0, h->now);
  assert_true(rv < 0 && rv >= PTV_ERR_BAD_SIG);
  const uint8_t huge[] = {PTV_WIRE_VERSION, PTV_MSG_BUFFERMAP, 0xff, 0xff, 0xff, 0xff, 0};
  rv = ptv_node_recv(n, stranger, huge, sizeof(huge), h->now);
  assert_true(rv < 0 && rv >= PTV_ERR_BAD_SIG);
  const uint8_t badtype[] = {PTV_WIRE_VERSION, 0x7f, 0, 0, 0, 0};
  rv = ptv_node_recv(n, stranger, badtype, sizeof(badtype), h->now);
  assert_int_equal(rv, PTV_ERR_UNKNOWN_TYPE);
  assert_int_equal(h_stats(h, p).bad_msgs, 5);
  assert_int_equal(ptv_node_npartners(n), np0 - 2);

  /* Nothing else changed: it keeps streaming. */
  ptv_node_stats s1 = h_stats(h, p);
  h_run_until(h, 10 * PTV_S);
  ptv_node_stats s2 = h_stats(h, p);
  assert_true(s2.playing);
  assert_int_equal(s2.bad_msgs, 5);
  uint64_t due = s2.chunks_due - s1.chunks_due;
  assert_true(due >= 19 && due <= 21);
  assert_true((s2.chunks_missed - s1.chunks_missed) * 10 <= due);
  assert_true(s2.newest != PTV_ID_NONE && s2.newest >= s1.newest + 15);
  assert_true(s2.npartners > 0);
  check_playout_order(&h->ctx[p]);
  h_assert_clean(h); /* the injections bypassed the harness */
  h_free(h);
}

/* ---- 7. graceful leave --------------------------------------------------- */

static void test_graceful_leave(void **state) {
  (void)state;
  const int np = 6;
  const int p = FIRST_PEER + 3;
  harness *h = h_new_uniform(np, 2000, 2000, 7);
  h_run_until(h, 5 * PTV_S);
  ptv_node *n = h->node[p];
  ptv_id partners[MAXN];
  uint32_t npart = 0;
  ptv_partner_info pi;
  for (uint32_t k = 0; ptv_node_partner(n, k, &pi) == 0; k++) partners[npart++] = pi.id;
  assert_true(npart > 0);
  uint32_t members = ptv_tracker_nmembers(h->trk);

  h->capture_from = (ptv_id)p;
  h->ncap = 0;
  ptv_node_leave(n, h->now);
  /* LEAVE to every partner and to the tracker, and nothing else. */
  assert_int_equal(h->ncap, (int)npart + 1);
  for (int k = 0; k < h->ncap; k++) assert_int_equal(h->cap[k].type, PTV_MSG_LEAVE);
  for (uint32_t j = 0; j <= npart; j++) {
    ptv_id want = j < npart ? partners[j] : TRACKER_ID;
    int seen = 0;
    for (int k = 0; k < h->ncap; k++) seen += h->cap[k].to == want;
    assert_int_equal(seen, 1);
  }
  /* Inert from now on. */
  assert_true(ptv_node_get_expiry(n) == PTV_TSTAMP_MAX);
  h->ncap = 0;
  ptv_node_leave(n, h->now); /* twice is harmless */
  ptv_node_handle_expiry(n, h->now + PTV_S);
  uint8_t buf[64];
  ptv_msg c = {.type = PTV_MSG_CONNECT};
  c.u.connect.upload_kbps = 1000;
  int len = ptv_wire_encode(buf, sizeof(buf), &c);
  assert_true(len > 0);
  ptv_id other = (ptv_id)(p == FIRST_PEER ? FIRST_PEER + 1 : FIRST_PEER);
  assert_int_equal(ptv_node_recv(n, other, buf, (size_t)len, h->now), 0);
  assert_int_equal(h->ncap, 0);
  assert_true(ptv_node_get_expiry(n) == PTV_TSTAMP_MAX);

  /* The rest of the swarm forgets it, and it stays silent whatever arrives. */
  h_run_until(h, 8 * PTV_S);
  assert_int_equal(h->ncap, 0);
  assert_int_equal(ptv_tracker_nmembers(h->trk), members - 1);
  for (int i = SOURCE_ID; i < h->nn; i++) {
    if (i == p) continue;
    assert_false(has_partner(h->node[i], (ptv_id)p, 1));
    if (i >= FIRST_PEER) {
      ptv_node_stats st = h_stats(h, i);
      assert_true(st.playing);
      assert_true(st.chunks_missed * 10 <= st.chunks_due);
    }
  }
  ptv_node_stats ls = h_stats(h, p);
  uint64_t due = ls.chunks_due;
  h_run_until(h, 9 * PTV_S);
  assert_int_equal(h_stats(h, p).chunks_due, due); /* no more playout either */
  h_assert_clean(h);
  h_free(h);
}

/* ---- 8. the source ------------------------------------------------------- */

static void test_source(void **state) {
  (void)state;
  /* Config checks: a source needs a stream rate and a chunk duration. */
  nctx dummy = {0};
  ptv_node_config c;
  ptv_node_config_default(&c);
  c.self = SOURCE_ID;
  c.role = PTV_ROLE_SOURCE;
  c.upload_kbps = 2000;
  c.stream_kbps = 0; /* no stream rate */
  c.chunk_us = CHUNK_US;
  assert_null(ptv_node_new(&c, &node_cbs, &dummy));
  c.stream_kbps = STREAM_KBPS;
  c.chunk_us = 0; /* no chunk duration */
  assert_null(ptv_node_new(&c, &node_cbs, &dummy));
  c.chunk_us = CHUNK_US;
  ptv_node *ok = ptv_node_new(&c, &node_cbs, &dummy);
  assert_non_null(ok);
  ptv_node_free(ok);
  /* A peer needs no stream rate; every node needs send and rand. */
  ptv_node_config_default(&c);
  c.self = 5;
  ok = ptv_node_new(&c, &node_cbs, &dummy);
  assert_non_null(ok);
  assert_true(ptv_node_get_expiry(ok) == PTV_TSTAMP_MAX); /* not started */
  ptv_node_free(ok);
  ptv_node_callbacks nocb = node_cbs;
  nocb.rand = NULL;
  assert_null(ptv_node_new(&c, &nocb, &dummy));
  nocb = node_cbs;
  nocb.send = NULL;
  assert_null(ptv_node_new(&c, &nocb, &dummy));
  assert_null(ptv_node_new(&c, NULL, &dummy));

  /* The chunk clock: chunk k is complete, hence held, at (k+1)*chunk_us. */
  harness *h = h_new_uniform(0, 0, 2000, 8);
  ptv_node *s = h->node[SOURCE_ID];
  for (ptv_chunk_id k = 0; k < 24; k++) {
    ptv_tstamp due = (ptv_tstamp)(k + 1) * CHUNK_US;
    h_run_until(h, due - 1);
    assert_false(ptv_node_has_chunk(s, k));
    h_run_until(h, due);
    assert_true(ptv_node_has_chunk(s, k));
    ptv_node_stats st = h_stats(h, SOURCE_ID);
    assert_int_equal(st.newest, k);
    assert_int_equal(st.held, k + 1);
  }
  for (ptv_chunk_id k = 0; k < 24; k++) assert_true(ptv_node_has_chunk(s, k));
  assert_false(ptv_node_has_chunk(s, 24));
  /* It told the tracker where live is. */
  ptv_chunk_id live = ptv_tracker_live(h->trk);
  assert_true(live != UINT32_MAX && live <= 23);
  assert_int_equal(h->ctx[SOURCE_ID].bulk_sends, 0); /* nobody to send to */
  h_assert_clean(h);
  /* It is not a viewer: no playback, no playout clock. */
  assert_source_silent_playout(h);
  h_free(h);
}

/* ---- 8b. offers are honoured --------------------------------------------- */

/* OFFER means "I can send you these chunks now" and SELECT "send me these of
 * the chunks you offered": with ample capacity and no failures, a node sends
 * what was selected from its own offer instead of refusing it. */
/* Peers send what was selected from their offers; the source sends it or
 * says no. A peer refuses only a promise that waited out its hold (2 chunk
 * times: see test_promise_hold), which here happens only in the burst of
 * selections when everyone starts, newest chunks first. */
static void test_select_honoured(void **state) {
  (void)state;
  harness *h = h_new_uniform(6, 2000, 2000, 2);
  h_run_until(h, 5 * PTV_S);
  uint64_t refused_at_start[MAXN];
  for (int i = 0; i < h->nn; i++) refused_at_start[i] = h->sel_refused[i];
  h_run_until(h, 10 * PTV_S);
  h_assert_clean(h);
  uint64_t served = 0;
  for (int i = SOURCE_ID; i < h->nn; i++) served += h->sel_served[i];
  assert_true(served > 0);
  /* The source sends a first copy at once or refuses it with BUSY (see
   * on_select in ptv_node.c); it must still deliver first copies. */
  assert_true(h->sel_served[SOURCE_ID] > 0);
  for (int i = FIRST_PEER; i < h->nn; i++) {
    ptv_node_stats st = h_stats(h, i);
    if (h->sel_refused[i] > st.promises_expired || h->sel_refused[i] > refused_at_start[i])
      fail_msg("node %d refused %llu selected chunks (%llu after 5 s; served %llu), "
               "%llu of them promises held too long",
               i, (unsigned long long)h->sel_refused[i],
               (unsigned long long)(h->sel_refused[i] - refused_at_start[i]),
               (unsigned long long)h->sel_served[i], (unsigned long long)st.promises_expired);
  }
  h_free(h);
}

/* ---- 8c. offers past a partner's newest chunk ---------------------------- */

/* A partner's buffer map covers PTV_NODE_MAP_BITS ids ending at its newest
 * chunk; an offer of a newer chunk must still be marked in our copy of it
 * (the copy's window slides), or, once ids pass the map's width, a declined
 * offer (the partner was promised the chunk by someone else) is made again
 * on every SELECT, one round trip later: an offer/decline storm. A short
 * round trip (1 ms, a LAN) makes the storm plain; crossing id
 * PTV_NODE_MAP_BITS must change nothing. */
static void test_offer_window_slides(void **state) {
  (void)state;
  harness *h = h_new_uniform(6, 2000, 2000, 3);
  h->lat = 1 * PTV_MS;
  /* before: the 32 chunks up to id W - 1 (W = the map's width; chunk k is
   * made at (k+1) * CHUNK_US) */
  const ptv_chunk_id W = PTV_NODE_MAP_BITS;
  const ptv_tstamp a1 = (ptv_tstamp)W * CHUNK_US, a0 = a1 - 8 * PTV_S;
  /* after: chunks W + 16 .. W + 47, every id past W */
  const ptv_tstamp b0 = a1 + 4 * PTV_S, b1 = b0 + 8 * PTV_S;
  const uint64_t nchunks = (b1 - b0) / CHUNK_US;
  ptv_node_stats s0[MAXN], s1[MAXN];
  uint64_t before = 0, after = 0;
  h_run_until(h, a0);
  for (int i = SOURCE_ID; i < h->nn; i++) s0[i] = h_stats(h, i);
  h_run_until(h, a1);
  for (int i = SOURCE_ID; i < h->nn; i++)
    before += h_stats(h, i).offers_declined - s0[i].offers_declined;
  h_run_until(h, b0);
  assert_true(h_stats(h, SOURCE_ID).newest >= W + 15);
  for (int i = SOURCE_ID; i < h->nn; i++) s0[i] = h_stats(h, i);
  h_run_until(h, b1);
  h_assert_clean(h);
  int storm = 0;
  for (int i = SOURCE_ID; i < h->nn; i++) {
    s1[i] = h_stats(h, i);
    uint64_t dec = s1[i].offers_declined - s0[i].offers_declined;
    uint32_t np = n_established(h->node[i]);
    after += dec;
    print_message("node %d: %llu offers, %llu declined in %llu chunk times, %u partners\n", i,
                  (unsigned long long)(s1[i].offers_sent - s0[i].offers_sent),
                  (unsigned long long)dec, (unsigned long long)nchunks, np);
    /* A decline is a race lost (promised elsewhere, or its map is stale):
     * not more than one per partner per chunk. */
    if (dec > nchunks * np && !storm) storm = i;
    if (i >= FIRST_PEER) assert_true(s1[i].playing);
  }
  print_message("declined: %llu before id %llu, %llu after\n", (unsigned long long)before,
                (unsigned long long)W, (unsigned long long)after);
  if (storm) fail_msg("node %d: an offer/decline storm", storm);
  if (after > 2 * before + 40)
    fail_msg("declined offers: %llu in 8 s before id %llu, %llu in 8 s after",
             (unsigned long long)before, (unsigned long long)W, (unsigned long long)after);
  h_free(h);
}

/* ---- 8d. the source refuses at once -------------------------------------- */

/* The source sends a first copy at once or never: when several peers select
 * the chunk it offered them all at the same moment, one gets it and the
 * others must hear BUSY then, not when its uplink is free again (a chunk's
 * transmission time later): until they hear it they count the chunk as
 * promised and decline every other offer of it. The tap times each answer
 * of the source to a SELECT from when that SELECT reached it. */
static struct {
  ptv_tstamp sel_at[MAXN][256]; /* when peer's SELECT of chunk (mod 256) arrives, + 1 */
  ptv_tstamp same_t[256];       /* selects of a chunk arriving together: when, how many */
  int same_n[256], most;
  uint64_t served, served_late, refused, refused_late;
  ptv_tstamp worst;
  ptv_id worst_to;
  ptv_chunk_id worst_chunk;
} g_sa;

static void sa_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  if (to == SOURCE_ID && m->type == PTV_MSG_SELECT) {
    for (int i = 0; i < m->u.select.n; i++) {
      ptv_chunk_id id = m->u.select.ids[i];
      ptv_tstamp at = h->now + (h->lat ? h->lat : LAT_US);
      g_sa.sel_at[from][id % 256] = at + 1;
      if (g_sa.same_t[id % 256] != at) g_sa.same_n[id % 256] = 0;
      g_sa.same_t[id % 256] = at;
      if (++g_sa.same_n[id % 256] > g_sa.most) g_sa.most = g_sa.same_n[id % 256];
    }
    return;
  }
  if (from != SOURCE_ID || (m->type != PTV_MSG_CHUNK && m->type != PTV_MSG_BUSY)) return;
  ptv_chunk_id id = m->type == PTV_MSG_CHUNK ? m->u.chunk.chunk : m->u.busy.chunk;
  ptv_tstamp *sel = &g_sa.sel_at[to][id % 256];
  if (!*sel) return; /* not an answer to a SELECT */
  ptv_tstamp wait = h->now - (*sel - 1);
  *sel = 0;
  if (m->type == PTV_MSG_CHUNK) {
    g_sa.served++;
    if (wait > 0) g_sa.served_late++;
    return;
  }
  g_sa.refused++;
  if (wait > 0) g_sa.refused_late++; /* the peer counted on it meanwhile */
  if (wait > g_sa.worst) {
    g_sa.worst = wait;
    g_sa.worst_to = to;
    g_sa.worst_chunk = id;
  }
}

static void test_source_refuses_at_once(void **state) {
  (void)state;
  memset(&g_sa, 0, sizeof(g_sa));
  harness *h = h_new_uniform(4, 2000, 2000, 11);
  h->tap = sa_tap;
  h_run_until(h, 8 * PTV_S);
  h_assert_clean(h);
  /* the source's uplink is busy this long after it starts a chunk */
  ptv_tstamp tx = (CHUNK_BYTES + HDR_SLACK) * 8000u / h->upload[SOURCE_ID];
  print_message("source: %llu selects served, %llu refused (%llu late, worst %.1f ms, "
                "a chunk takes %.1f ms); up to %d selects of a chunk at once\n",
                (unsigned long long)g_sa.served, (unsigned long long)g_sa.refused,
                (unsigned long long)g_sa.refused_late, (double)g_sa.worst / 1e3,
                (double)tx / 1e3, g_sa.most);
  assert_true(g_sa.most >= 3); /* peers did select the same chunk together */
  assert_true(g_sa.served > 0);
  assert_int_equal(g_sa.served_late, 0); /* at once... */
  assert_true(g_sa.refused > 0);         /* ...or never */
  if (g_sa.refused_late)
    fail_msg("the source refused %llu of %llu selects late: peer %u's SELECT of chunk %u "
             "got its BUSY %.1f ms after it came",
             (unsigned long long)g_sa.refused_late, (unsigned long long)g_sa.refused,
             g_sa.worst_to, g_sa.worst_chunk, (double)g_sa.worst / 1e3);
  for (int i = FIRST_PEER; i < h->nn; i++) assert_true(h_stats(h, i).playing);
  h_free(h);
}

/* ---- 8f. a promise is kept in time or refused in time ------------------------ */

static struct {
  ptv_tstamp sel_at[MAXN][MAXN][64]; /* [offerer][selector][chunk % 64]: arrival + 1 */
  ptv_tstamp worst;                   /* longest wait for an answer */
  uint64_t served, refused;
} g_ph;

static void ph_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  if (m->type == PTV_MSG_SELECT && to >= FIRST_PEER) {
    for (int i = 0; i < m->u.select.n; i++)
      g_ph.sel_at[to][from][m->u.select.ids[i] % 64] = h->now + (h->lat ? h->lat : LAT_US) + 1;
    return;
  }
  if (from < FIRST_PEER || (m->type != PTV_MSG_CHUNK && m->type != PTV_MSG_BUSY)) return;
  ptv_chunk_id id = m->type == PTV_MSG_CHUNK ? m->u.chunk.chunk : m->u.busy.chunk;
  ptv_tstamp *sel = &g_ph.sel_at[from][to][id % 64];
  /* not the answer to a SELECT (none, or it has not arrived yet) */
  if (!*sel || h->now < *sel - 1) return;
  ptv_tstamp wait = h->now - (*sel - 1);
  *sel = 0;
  if (wait > g_ph.worst) g_ph.worst = wait;
  if (m->type == PTV_MSG_CHUNK) g_ph.served++;
  else g_ph.refused++;
}

/* One peer uploads 3x the stream, the others less than half of it: every
 * peer selects from the strong one's offers and its upload queue, newest
 * chunk first, grows. A selected (promised) chunk must go out or be
 * refused (BUSY) within 2 chunk times, so its receiver asks elsewhere
 * before its deadline; it used to wait behind newer chunks until the
 * receiver's own timeout, often past the deadline. */
static void test_promise_hold(void **state) {
  (void)state;
  memset(&g_ph, 0, sizeof(g_ph));
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 200;
  ups[0] = 1500;
  harness *h = h_new(9, ups, 1000, 3);
  h->tap = ph_tap;
  h_run_until(h, 30 * PTV_S);
  h_assert_clean(h);
  uint64_t expired = 0, full = 0;
  for (int i = FIRST_PEER; i < h->nn; i++) {
    ptv_node_stats st = h_stats(h, i);
    expired += st.promises_expired;
    full += st.upq_full;
  }
  print_message("selects answered: %llu served, %llu refused; longest wait %.0f ms; "
                "%llu promises refused after waiting, %llu selects refused on a full queue\n",
                (unsigned long long)g_ph.served, (unsigned long long)g_ph.refused,
                (double)g_ph.worst / 1e3, (unsigned long long)expired, (unsigned long long)full);
  assert_true(g_ph.served > 100);
  assert_true(expired > 0); /* the strong peer was overcommitted */
  /* 2 chunk times, plus the 1 us by which the timer passes the expiry */
  assert_true(g_ph.worst <= 2 * CHUNK_US + 1);
  h_free(h);
}

/* ---- 8e. a refused selection is offered again ------------------------------ */

/* Two peers join (at 0.70 s and 0.72 s, 100 us from the source and each
 * other) after the source made chunks 0-2 and before anyone else holds them.
 * The source's bulk data arrives faster than its engine plans (the network
 * carries 2,600 kbps, the engine plans at 1,800, as a link pacer with a
 * larger burst does): a peer's map, sent when a chunk reaches it, then
 * comes back while the source is still busy, the source offers chunks 1-2
 * (never sent) and refuses the SELECT at once (on_select). The source must
 * offer them again when its uplink is free; left marked in its copy of the
 * peer's map until the next map, which again came while it was busy, they
 * were refused every chunk time, each BUSY choked the source for the
 * peer's pulls, and both peers missed chunks 1 and 2 (2 requests, 2 missed
 * each, seeds 1-4). */
static void test_refused_select_offered_again(void **state) {
  (void)state;
  harness *h = h_new_uniform(2, 9000, 1800, 1);
  h->lat = 100;                   /* loopback-like */
  h->upload[SOURCE_ID] = 2600;    /* the network, faster than the engine plans */
  h->start_at[FIRST_PEER] = 700 * PTV_MS;
  h->start_at[FIRST_PEER + 1] = 720 * PTV_MS;
  h_run_until(h, 8 * PTV_S);
  h_assert_clean(h);
  for (int i = FIRST_PEER; i < h->nn; i++) {
    ptv_node_stats st = h_stats(h, i);
    print_message("peer %d: %llu due, %llu missed, %llu requests, %llu BUSY\n", i,
                  (unsigned long long)st.chunks_due, (unsigned long long)st.chunks_missed,
                  (unsigned long long)st.req_sent, (unsigned long long)st.busy_recv);
    assert_true(st.playing);
    assert_true(st.chunks_due >= 20);
    assert_int_equal(st.chunks_missed, 0);
  }
  h_free(h);
}

/* ---- 10. stripes --------------------------------------------------------- */

/* A test-only strategy: 4 stripes, a grant hook that grants what is asked
 * within a configurable mask (plus configurable extra bits the engine must
 * drop), and hooks that record every call. Everything else is the mesh. */
#define TS_STRIPES 4
#define TS_ALL 0xfu
#define TS_MAXREC 4096

typedef struct {
  ptv_id self, peer;  /* grant: the parent and the child; on_grant: child, parent */
  uint16_t asked, granted;
  uint32_t kbps;      /* grant: the bid; on_grant: the price */
  ptv_tstamp now;
} ts_grant_rec;

typedef struct {
  ptv_id self, from, suspect;
  uint16_t deliv;
  ptv_tstamp now;
} ts_report_rec;

static struct {
  uint16_t grant_mask;  /* the grant hook returns (want & grant_mask) | grant_extra */
  uint16_t grant_extra;
  int ngrant, non_grant, nreport;
  ts_grant_rec grant[TS_MAXREC], on_grant[TS_MAXREC];
  ts_report_rec report[TS_MAXREC];
} g_ts;

static void ts_reset(void) {
  memset(&g_ts, 0, sizeof(g_ts));
  g_ts.grant_mask = 0xffff;
}

static ptv_id ts_self(const ptv_node *n) { return ptv_node_config_get(n)->self; }

static uint16_t ts_grant(ptv_node *n, ptv_id child, uint16_t want, uint32_t bid_kbps,
                         ptv_tstamp now) {
  uint16_t g = (uint16_t)((want & g_ts.grant_mask) | g_ts.grant_extra);
  if (g_ts.ngrant < TS_MAXREC)
    g_ts.grant[g_ts.ngrant] = (ts_grant_rec){ts_self(n), child, want, g, bid_kbps, now};
  g_ts.ngrant++;
  return g;
}

static void ts_on_grant(ptv_node *n, ptv_id parent, uint16_t asked, uint16_t granted,
                        uint32_t price_kbps, ptv_tstamp now) {
  if (g_ts.non_grant < TS_MAXREC)
    g_ts.on_grant[g_ts.non_grant] =
        (ts_grant_rec){ts_self(n), parent, asked, granted, price_kbps, now};
  g_ts.non_grant++;
}

static void ts_on_report(ptv_node *n, ptv_id from, ptv_id suspect, uint16_t deliv,
                         ptv_tstamp now) {
  if (g_ts.nreport < TS_MAXREC)
    g_ts.report[g_ts.nreport] = (ts_report_rec){ts_self(n), from, suspect, deliv, now};
  g_ts.nreport++;
}

static const ptv_strategy ts_strategy = {
    .name = "test-stripes",
    .stripes = TS_STRIPES,
    .tick = NULL,
    .grant = ts_grant,
    .on_grant = ts_on_grant,
    .on_report = ts_on_report,
};

/* The stripes harness: the test strategy on every node, ample capacity. */
static harness *h_new_stripes(int npeers, uint64_t seed) {
  ts_reset();
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 2000;
  return h_new_strat(npeers, ups, 2000, seed, &ts_strategy);
}

/* Node i's view of partner `id` (which it must have). */
static ptv_partner_info h_pinfo(const harness *h, int i, ptv_id id) {
  ptv_partner_info pi;
  for (uint32_t k = 0; ptv_node_partner(h->node[i], k, &pi) == 0; k++)
    if (pi.id == id) return pi;
  fail_msg("node %d has no partner %u", i, id);
  return pi;
}

/* Hands node `to` a message as if `from` had sent it, now (bypassing the
 * harness queue). Returns what ptv_node_recv returned. */
static int h_inject(harness *h, int to, ptv_id from, const ptv_msg *m) {
  uint8_t buf[256];
  int len = ptv_wire_encode(buf, sizeof(buf), m);
  assert_true(len > 0);
  return ptv_node_recv(h->node[to], from, buf, (size_t)len, h->now);
}

static int h_inject_grant(harness *h, int to, ptv_id from, uint16_t mask) {
  ptv_msg m;
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_STRIPES;
  m.u.stripes.kind = PTV_STRIPES_GRANT;
  m.u.stripes.mask = mask;
  return h_inject(h, to, from, &m);
}

/* A round trip and then some: a SUBSCRIBE and its GRANT are delivered. */
#define GRANT_WAIT (5 * LAT_US)

/* Runs until peers a (and b, if >= 0) play with the source and each other as
 * established partners. */
static void h_stripes_ready(harness *h, int a, int b) {
  h_run_until(h, 5 * PTV_S); /* a stripe peer starts 3.5 s after choosing where */
  assert_true(h_stats(h, a).playing);
  assert_true(has_partner(h->node[a], SOURCE_ID, 1));
  assert_true(has_partner(h->node[SOURCE_ID], (ptv_id)a, 1));
  if (b >= 0) {
    assert_true(h_stats(h, b).playing);
    assert_true(has_partner(h->node[b], SOURCE_ID, 1));
    assert_true(has_partner(h->node[a], (ptv_id)b, 1));
    assert_true(has_partner(h->node[b], (ptv_id)a, 1));
  }
}

/* Subscribe, grant, push: the parent pushes every new chunk of the stripes
 * granted, the child counts them as coming from its stripe parent, and its
 * depth is its parent's plus one. */
static void test_stripes_push(void **state) {
  (void)state;
  const int a = FIRST_PEER, b = FIRST_PEER + 1;
  harness *h = h_new_stripes(2, 31);
  h_stripes_ready(h, a, b);
  ptv_node *na = h->node[a];
  /* Nothing subscribed yet: no parent, nothing pushed, every new chunk an orphan. */
  assert_int_equal(ptv_node_nstripes(na), TS_STRIPES);
  assert_int_equal(ptv_node_tier(na), 255);
  for (unsigned s = 0; s < TS_STRIPES; s++) assert_int_equal(ptv_node_depth(na, s), 255);
  ptv_node_stats a0 = h_stats(h, a), src0 = h_stats(h, SOURCE_ID);
  assert_int_equal(src0.pushes, 0);
  assert_int_equal(a0.stripe_parent + a0.stripe_other, 0);
  assert_true(a0.stripe_orphan > 0);
  assert_int_equal(g_ts.ngrant, 0);
  /* The source advertises its depth 0 in every stripe, and free slots. */
  ptv_partner_info pi = h_pinfo(h, a, SOURCE_ID);
  for (unsigned s = 0; s < TS_STRIPES; s++) assert_int_equal(pi.depth[s], 0);
  assert_int_equal(pi.free_slots, ptv_node_stripe_slots(h->node[SOURCE_ID]));
  assert_true(pi.free_slots > TS_STRIPES);

  ptv_tstamp t_sub = h->now;
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, TS_ALL, h->now), 0);
  pi = h_pinfo(h, a, SOURCE_ID);
  assert_int_equal(pi.sub_ask, TS_ALL);
  assert_int_equal(pi.sub_in, 0); /* counts once granted */
  h_run_until(h, h->now + GRANT_WAIT);

  pi = h_pinfo(h, a, SOURCE_ID);
  assert_int_equal(pi.sub_in, TS_ALL);
  assert_int_equal(pi.sub_ask, 0);
  assert_int_equal(pi.sub_since, t_sub + 2 * LAT_US);
  ptv_partner_info ps = h_pinfo(h, SOURCE_ID, (ptv_id)a);
  assert_int_equal(ps.sub_out, TS_ALL);
  assert_int_equal(ps.bid_kbps, 2000); /* a's declared upload */
  assert_int_equal(ptv_node_stripe_used(h->node[SOURCE_ID]), TS_STRIPES);
  /* The hooks: the source was asked once, a heard the answer once. */
  assert_int_equal(g_ts.ngrant, 1);
  assert_int_equal(g_ts.grant[0].self, SOURCE_ID);
  assert_int_equal(g_ts.grant[0].peer, a);
  assert_int_equal(g_ts.grant[0].asked, TS_ALL);
  assert_int_equal(g_ts.grant[0].kbps, 2000);
  assert_int_equal(g_ts.non_grant, 1);
  assert_int_equal(g_ts.on_grant[0].self, a);
  assert_int_equal(g_ts.on_grant[0].peer, SOURCE_ID);
  assert_int_equal(g_ts.on_grant[0].asked, TS_ALL);
  assert_int_equal(g_ts.on_grant[0].granted, TS_ALL);
  assert_int_equal(g_ts.on_grant[0].kbps, 0); /* not full: no price */
  /* One hop from the source in every stripe; b, unsubscribed, has no tier. */
  for (unsigned s = 0; s < TS_STRIPES; s++) {
    assert_int_equal(ptv_node_depth(na, s), 1);
    assert_int_equal(ptv_node_depth(h->node[b], s), 255);
  }
  assert_int_equal(ptv_node_tier(na), 1);
  assert_int_equal(ptv_node_tier(h->node[b]), 255);
  assert_int_equal(ptv_node_depth(h->node[SOURCE_ID], 0), 0);
  assert_int_equal(ptv_node_tier(h->node[SOURCE_ID]), 0);

  /* 6 s of stream: 24 new chunks, each pushed to a (and to nobody else). */
  ptv_node_stats a1 = h_stats(h, a), src1 = h_stats(h, SOURCE_ID);
  h_run_until(h, h->now + 6 * PTV_S);
  ptv_node_stats a2 = h_stats(h, a), src2 = h_stats(h, SOURCE_ID);
  uint64_t pushes = src2.pushes - src1.pushes;
  if (pushes < 23 || pushes > 25)
    fail_msg("the source queued %llu pushes in 6 s, want 24 (one per new chunk)",
             (unsigned long long)pushes);
  uint64_t from_parent = a2.stripe_parent - a1.stripe_parent;
  uint64_t from_other = a2.stripe_other - a1.stripe_other;
  if (from_parent < 20 || from_parent <= from_other)
    fail_msg("a got %llu new chunks from its stripe parent, %llu from others",
             (unsigned long long)from_parent, (unsigned long long)from_other);
  if (from_parent > pushes + 1) /* +1: one queued before counting began */
    fail_msg("a got %llu chunks from its parent, %llu pushes queued", (unsigned long long)from_parent,
             (unsigned long long)pushes);
  assert_int_equal(a2.stripe_orphan, a1.stripe_orphan); /* every stripe has a parent */
  assert_int_equal(a2.chunks_missed, a1.chunks_missed);
  /* The pushed chunks' delay is measured: at least the one-way latency. */
  assert_true(ptv_node_tree_delay(na) >= LAT_US);
  for (unsigned s = 0; s < TS_STRIPES; s++) {
    ptv_tstamp mean = 0, dev = 0;
    assert_int_equal(ptv_node_stripe_delay(na, s, &mean, &dev), 0);
    assert_true(mean >= LAT_US && mean < 2 * PTV_S);
  }
  /* Still one grant each way: pushes need no further asking. */
  assert_int_equal(g_ts.ngrant, 1);
  h_assert_clean(h);
  h_free(h);
}

/* Make before break: a stripe moves to a new parent only once that parent
 * granted it; the old parent is then told to stop (the rest stays), and the
 * switch counts as one partner change. */
static void test_stripes_make_before_break(void **state) {
  (void)state;
  const int a = FIRST_PEER, b = FIRST_PEER + 1;
  harness *h = h_new_stripes(2, 32);
  h_stripes_ready(h, a, b);
  ptv_node *na = h->node[a];
  /* b takes stripe 0 from the source (depth 1); a takes stripes 0 and 1. */
  assert_int_equal(ptv_node_subscribe(h->node[b], SOURCE_ID, 0x1, h->now), 0);
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0x3, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x3);
  assert_int_equal(h_pinfo(h, b, SOURCE_ID).sub_in, 0x1);
  h_run_until(h, h->now + PTV_S); /* b's maps carry its depth by now */
  assert_int_equal(h_pinfo(h, a, (ptv_id)b).depth[0], 1);
  assert_int_equal(ptv_node_depth(na, 0), 1);
  ptv_node_stats a0 = h_stats(h, a);
  uint64_t b_push0 = h_stats(h, b).pushes;
  int ng0 = g_ts.non_grant;

  /* a asks b for stripe 0: until b answers, the source still feeds it. */
  assert_int_equal(ptv_node_subscribe(na, (ptv_id)b, 0x1, h->now), 0);
  ptv_partner_info pb = h_pinfo(h, a, (ptv_id)b), ps = h_pinfo(h, a, SOURCE_ID);
  assert_int_equal(pb.sub_ask, 0x1);
  assert_int_equal(pb.sub_in, 0);
  assert_int_equal(ps.sub_in, 0x3);
  assert_int_equal(ptv_node_depth(na, 0), 1);
  assert_int_equal(h_stats(h, a).partner_changes, a0.partner_changes);
  h_run_until(h, h->now + LAT_US); /* the SUBSCRIBE is at b, the GRANT on its way */
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x3);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0x3);
  assert_int_equal(h_pinfo(h, b, (ptv_id)a).sub_out, 0x1);
  h_run_until(h, h->now + GRANT_WAIT);

  /* Stripe 0 now comes from b only; stripe 1 still from the source. */
  pb = h_pinfo(h, a, (ptv_id)b);
  ps = h_pinfo(h, a, SOURCE_ID);
  assert_int_equal(pb.sub_in, 0x1);
  assert_int_equal(pb.sub_ask, 0);
  assert_int_equal(ps.sub_in, 0x2);
  /* The source heard a SUBSCRIBE for what is left (stripe 1, not 0). */
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0x2);
  assert_int_equal(h_pinfo(h, b, (ptv_id)a).sub_out, 0x1);
  assert_int_equal(h_stats(h, a).partner_changes, a0.partner_changes + 1);
  assert_int_equal(g_ts.non_grant, ng0 + 2); /* b's grant to a, the source's re-grant */
  int seen_b = 0;
  for (int k = ng0; k < g_ts.non_grant; k++)
    if (g_ts.on_grant[k].self == a && g_ts.on_grant[k].peer == b) {
      assert_int_equal(g_ts.on_grant[k].asked, 0x1);
      assert_int_equal(g_ts.on_grant[k].granted, 0x1);
      seen_b++;
    }
  assert_int_equal(seen_b, 1);
  /* Depth follows the new parent: b is one hop down, so a is two in stripe 0. */
  assert_int_equal(ptv_node_depth(na, 0), 2);
  assert_int_equal(ptv_node_depth(na, 1), 1);
  assert_int_equal(ptv_node_depth(na, 2), 255);
  assert_int_equal(ptv_node_tier(na), 2);

  /* And b does push stripe 0 to a, which counts it as from its parent. */
  ptv_node_stats a1 = h_stats(h, a);
  h_run_until(h, h->now + 4 * PTV_S);
  ptv_node_stats a2 = h_stats(h, a);
  assert_true(h_stats(h, b).pushes >= b_push0 + 3);
  assert_true(a2.stripe_parent - a1.stripe_parent >= 6); /* 2 stripes x 4 s */
  assert_int_equal(a2.partner_changes, a0.partner_changes + 1);
  h_assert_clean(h);
  h_free(h);
}

/* A GRANT names only what was asked for (or held): an unasked one must not
 * move a stripe away from the parent the child chose. */
static void test_stripes_unasked_grant(void **state) {
  (void)state;
  const int a = FIRST_PEER, b = FIRST_PEER + 1;
  harness *h = h_new_stripes(2, 33);
  h_stripes_ready(h, a, b);
  ptv_node *na = h->node[a];
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0x1, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  ptv_node_stats a0 = h_stats(h, a);

  /* b, never asked, "grants" stripe 0. */
  assert_int_equal(h_inject_grant(h, a, (ptv_id)b, 0x1), 0);
  assert_int_equal(h_pinfo(h, a, (ptv_id)b).sub_in, 0);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  /* Nothing was released at the source, and nothing counted as a change. */
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, a, (ptv_id)b).sub_in, 0);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0x1);
  assert_int_equal(h_stats(h, a).partner_changes, a0.partner_changes);
  assert_int_equal(ptv_node_depth(na, 0), 1);

  /* a asks b for stripe 1; before b answers, a forged grant of 0 and 1
   * arrives: only stripe 1, the one asked, is taken. */
  assert_int_equal(ptv_node_subscribe(na, (ptv_id)b, 0x2, h->now), 0);
  assert_int_equal(h_inject_grant(h, a, (ptv_id)b, 0x3), 0);
  assert_int_equal(h_pinfo(h, a, (ptv_id)b).sub_in, 0x2);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  h_run_until(h, h->now + GRANT_WAIT); /* b's real grant (stripe 1) too */
  assert_int_equal(h_pinfo(h, a, (ptv_id)b).sub_in, 0x2);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0x1);
  assert_int_equal(h_pinfo(h, b, (ptv_id)a).sub_out, 0x2);
  assert_int_equal(h_stats(h, a).partner_changes, a0.partner_changes);

  /* A grant from a stranger changes nothing either. */
  assert_int_equal(h_inject_grant(h, a, 999, 0xf), 0);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  assert_int_equal(h_pinfo(h, a, (ptv_id)b).sub_in, 0x2);
  assert_int_equal(h_stats(h, a).bad_msgs, 0);
  h_assert_clean(h); /* the injections bypassed the harness */
  h_free(h);
}

/* The strategy's grant hook decides: the engine grants what it returns,
 * within what was asked, and reports the price once the parent is full. */
static void test_stripes_grant_hook(void **state) {
  (void)state;
  const int a = FIRST_PEER;
  harness *h = h_new_stripes(2, 34);
  h_stripes_ready(h, a, -1);
  ptv_node *src = h->node[SOURCE_ID];
  /* One slot at the source: 7% of 2000 kbps over 125 kbps a stripe. */
  assert_int_equal(ptv_node_stripe_kbps(src), STREAM_KBPS / TS_STRIPES);
  ptv_node_set_slot_pct(src, 7);
  assert_int_equal(ptv_node_stripe_slots(src), 1);
  h_run_until(h, h->now + PTV_S); /* its maps say so */
  ptv_partner_info pi = h_pinfo(h, a, SOURCE_ID);
  assert_int_equal(pi.free_slots, 1);
  assert_int_equal(pi.price_kbps, 0);

  g_ts.grant_mask = 0x2;  /* grants only stripe 1... */
  g_ts.grant_extra = 0x4; /* ...and tries to hand out stripe 2, unasked */
  assert_int_equal(ptv_node_subscribe(h->node[a], SOURCE_ID, 0x3, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(g_ts.ngrant, 1);
  assert_int_equal(g_ts.grant[0].self, SOURCE_ID);
  assert_int_equal(g_ts.grant[0].peer, a);
  assert_int_equal(g_ts.grant[0].asked, 0x3);
  assert_int_equal(g_ts.grant[0].kbps, 2000);
  pi = h_pinfo(h, a, SOURCE_ID);
  assert_int_equal(pi.sub_in, 0x2);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0x2);
  assert_int_equal(ptv_node_stripe_used(src), 1);
  assert_int_equal(g_ts.non_grant, 1);
  assert_int_equal(g_ts.on_grant[0].self, a);
  assert_int_equal(g_ts.on_grant[0].peer, SOURCE_ID);
  assert_int_equal(g_ts.on_grant[0].asked, 0x3);
  assert_int_equal(g_ts.on_grant[0].granted, 0x2);
  assert_int_equal(g_ts.on_grant[0].kbps, 2000); /* full: the lowest bid, a's */
  assert_int_equal(ptv_node_stripe_price(src), 2000);
  assert_int_equal(ptv_node_depth(h->node[a], 0), 255);
  assert_int_equal(ptv_node_depth(h->node[a], 1), 1);
  assert_int_equal(ptv_node_depth(h->node[a], 2), 255);
  /* The source's maps now say it is full, and its price. */
  h_run_until(h, h->now + PTV_S);
  pi = h_pinfo(h, a, SOURCE_ID);
  assert_int_equal(pi.free_slots, 0);
  assert_int_equal(pi.price_kbps, 2000);
  h_assert_clean(h);
  h_free(h);
}

/* A parent evicting a child from a stripe tells it; a child giving a stripe
 * up stops taking it at once. Both are partner changes. */
/* An eviction that crosses a pending request is not taken for its answer:
 * the request's grant still lands and both sides agree (regression: the
 * eviction used to clear the request and the later grant was dropped). */
static void test_stripes_evict_crosses_request(void **state) {
  (void)state;
  const int a = FIRST_PEER;
  harness *h = h_new_stripes(2, 36);
  h_stripes_ready(h, a, -1);
  ptv_node *na = h->node[a], *src = h->node[SOURCE_ID];
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0x1, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0x3, h->now), 0);
  assert_int_equal(ptv_node_stripe_evict(src, (ptv_id)a, 0x1, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0x3);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x3);
  assert_int_equal(ptv_node_depth(na, 0), 1);
  assert_int_equal(ptv_node_depth(na, 1), 1);
}

/* The load hint in a buffer map counts every queued upload, stripe pushes
 * too: a request is served by its deadline, after the pushes due sooner, so
 * a hint without them told requesters the uplink was idle (they gave up
 * early, asked again elsewhere and got the chunk twice). Here the source
 * pushes each new chunk to 3 children, so right after a chunk is cut its
 * queue holds about 3 transmissions. */
static struct {
  uint16_t max_ms;
  uint32_t maps;
} g_lh;

static void lh_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  (void)h;
  (void)to;
  if (from != SOURCE_ID || m->type != PTV_MSG_BUFFERMAP) return;
  g_lh.maps++;
  if (m->u.buffermap.queue_ms > g_lh.max_ms) g_lh.max_ms = m->u.buffermap.queue_ms;
}

static void test_stripes_load_hint(void **state) {
  (void)state;
  const int a = FIRST_PEER;
  harness *h = h_new_stripes(3, 37);
  h_stripes_ready(h, a, a + 1);
  for (int i = a; i < a + 3; i++)
    assert_int_equal(ptv_node_subscribe(h->node[i], SOURCE_ID, TS_ALL, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  for (int i = a; i < a + 3; i++) assert_int_equal(h_pinfo(h, i, SOURCE_ID).sub_in, TS_ALL);
  memset(&g_lh, 0, sizeof(g_lh));
  h->tap = lh_tap;
  uint64_t p0 = h_stats(h, SOURCE_ID).pushes;
  h_run_until(h, h->now + 4 * PTV_S);
  h->tap = NULL;
  uint64_t pushes = h_stats(h, SOURCE_ID).pushes - p0;
  uint32_t tx_ms = (uint32_t)((CHUNK_BYTES + HDR_SLACK) * 8u / h->upload[SOURCE_ID]); /* 62 */
  print_message("source: %llu pushes, %u maps, most queued %u ms (one chunk %u ms)\n",
                (unsigned long long)pushes, g_lh.maps, g_lh.max_ms, tx_ms);
  assert_true(pushes >= 3 * 15); /* 16 chunks x 3 children, give or take the edges */
  assert_true(g_lh.maps > 10);
  /* More than the one chunk on the wire: the queued pushes count. */
  if (g_lh.max_ms < 2 * tx_ms)
    fail_msg("the source's maps showed at most %u ms queued with 3 pushes per chunk of %u ms",
             g_lh.max_ms, tx_ms);
  assert_true(g_lh.max_ms <= 4 * tx_ms + 20); /* and no more than there is */
  h_assert_clean(h);
  h_free(h);
}

/* A stripe peer starts playing with its whole buffer in hand (2 s, 8
 * chunks; a mesh peer with half of it): its first chunks come by pull from
 * uplinks busy with pushes, and those just past a half-buffer prefetch were
 * most of newcomers' misses in the simulator. And it starts 3.5 s after it
 * chose its start point, with what it pulled meanwhile (up to 2 s past the
 * prefetch) in hand too, though the prefetch came sooner: a mesh peer
 * starts as soon as it has its prefetch. */
static void test_stripes_prefetch(void **state) {
  (void)state;
  uint32_t full = (uint32_t)(2 * PTV_S / CHUNK_US), got[2];
  ptv_tstamp waited[2];
  for (int stripes = 0; stripes <= 1; stripes++) {
    uint32_t ups[MAXN];
    for (int i = 0; i < MAXN; i++) ups[i] = 2000;
    harness *h = stripes ? h_new_stripes(5, 43) : h_new(5, ups, 2000, 43);
    const int late = h->nn - 1;
    h->start_at[late] = 8 * PTV_S; /* joins a swarm that plays: starts in the past */
    h_run_until(h, 12 * PTV_S);
    const nctx *c = &h->ctx[late];
    assert_int_equal(c->nplay_start, 1);
    got[stripes] = c->held_at_start;
    waited[stripes] = c->play_at - h->start_at[late];
    h_free(h);
  }
  print_message("a late joiner began with %u chunks in hand after %.2f s (mesh), %u after %.2f s "
                "(stripes)\n",
                got[0], (double)waited[0] / PTV_S, got[1], (double)waited[1] / PTV_S);
  assert_true(got[0] >= full / 2);
  assert_true(waited[0] < 2 * PTV_S);
  if (got[1] < full + full / 2)
    fail_msg("a stripe peer began playing with %u chunks in hand, want %u", got[1], full + full / 2);
  assert_true(waited[1] >= 3500 * PTV_MS && waited[1] < 4500 * PTV_MS);
}

/* A stripe newcomer whose prefetch stays short gives up waiting after
 * 3.5 s; near capacity (the tracker's mean peer upload under 1.25 x the
 * stream rate, here 1.1 x) only after 7.5 s: admission control while the
 * swarm's uplinks are all but committed. Near capacity, with its prefetch
 * in hand, it starts at once, not after 3.5 s (case 2: nothing withheld). */
static void test_stripes_start_wait_near_capacity(void **state) {
  (void)state;
  ptv_tstamp waited[3];
  uint32_t held[3];
  for (int near = 0; near <= 2; near++) {
    uint32_t ups[MAXN];
    for (int i = 0; i < MAXN; i++) ups[i] = near ? STREAM_KBPS * 11 / 10 : 4 * STREAM_KBPS;
    ts_reset();
    harness *h = h_new_strat(5, ups, 2000, 47, &ts_strategy);
    const int late = h->nn - 1;
    h->start_at[late] = 8 * PTV_S;
    if (near < 2) {
      h->hold_to = (ptv_id)late;
      h->hold_ahead = 4; /* of the 8 chunks a stripe peer wants first */
    }
    h_run_until(h, 20 * PTV_S);
    const nctx *c = &h->ctx[late];
    assert_int_equal(c->nplay_start, 1);
    waited[near] = c->play_at - h->start_at[late];
    held[near] = c->held_at_start;
    h_free(h);
  }
  print_message("short prefetch: started after %.2f s (peers 4 x the rate), %.2f s (1.1 x), "
                "with %u / %u chunks; full prefetch at 1.1 x: %.2f s, %u chunks\n",
                (double)waited[0] / PTV_S, (double)waited[1] / PTV_S, held[0], held[1],
                (double)waited[2] / PTV_S, held[2]);
  assert_true(held[0] == 4 && held[1] == 4);
  assert_true(waited[0] >= 3500 * PTV_MS && waited[0] < 5 * PTV_S);
  assert_true(waited[1] >= 7500 * PTV_MS && waited[1] < 9500 * PTV_MS);
  assert_true(held[2] >= 8);
  assert_true(waited[2] < 3 * PTV_S);
}

/* A stripe peer asks for its prefetch with STRIPE_STARTUP_SLACK_US before
 * the first chunk is due, a mesh peer with STARTUP_SLACK_US: suppliers serve
 * by deadline, and with the longer slack a stripe newcomer's prefetch came
 * at stream rate (most of churn's misses were in newcomers' first seconds). */
static struct {
  int late;
  uint32_t min_ms, max_ms, n;
} g_pd;

static void pd_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  (void)to;
  if ((int)from != g_pd.late || m->type != PTV_MSG_REQUEST || h->ctx[g_pd.late].nplay_start) return;
  if (m->u.request.deadline_ms < g_pd.min_ms) g_pd.min_ms = m->u.request.deadline_ms;
  if (m->u.request.deadline_ms > g_pd.max_ms) g_pd.max_ms = m->u.request.deadline_ms;
  g_pd.n++;
}

static void test_stripes_prefetch_deadline(void **state) {
  (void)state;
  uint32_t min_ms[2], max_ms[2];
  for (int stripes = 0; stripes <= 1; stripes++) {
    uint32_t ups[MAXN];
    for (int i = 0; i < MAXN; i++) ups[i] = 2000;
    harness *h = stripes ? h_new_stripes(5, 43) : h_new(5, ups, 2000, 43);
    g_pd.late = h->nn - 1;
    g_pd.min_ms = UINT32_MAX;
    g_pd.max_ms = 0;
    g_pd.n = 0;
    h->start_at[g_pd.late] = 8 * PTV_S;
    h->tap = pd_tap;
    h_run_until(h, 12 * PTV_S);
    assert_int_equal(h->ctx[g_pd.late].nplay_start, 1);
    assert_true(g_pd.n > 0); /* it pulled its prefetch */
    min_ms[stripes] = g_pd.min_ms;
    max_ms[stripes] = g_pd.max_ms;
    h_free(h);
  }
  print_message("prefetch deadlines: %u-%u ms (mesh), %u-%u ms (stripes)\n", min_ms[0], max_ms[0],
                min_ms[1], max_ms[1]);
  /* Before playing, a mesh peer pulls what is due within 2 s; a stripe peer
   * its prefetch (2 s) and 2 s past it. */
  assert_true(max_ms[0] <= 2000);
  assert_in_range(max_ms[1], 2300, 4300); /* the last prefetch chunk: 2050 ms */
  /* The earliest chunk is due at the slack (less a tick's worth of time). */
  assert_in_range(min_ms[0], 900, 1000);
  assert_in_range(min_ms[1], 200, 300);
}

/* A newcomer's pull (it has no stripe parent yet) is served by when it must
 * leave to arrive in time, a fed peer's by its deadline. a pushes every
 * chunk to 4 children, 4 x 63 ms every 250 ms, so its queue hardly ever
 * empties and each new push goes before a fed peer's request. c asks a
 * for a chunk of stripe 1 with a 1 s deadline: fed on stripe 1, it waits
 * for the pushes until its deadline and is refused; a newcomer's leaves its
 * transmission and NEWCOMER_LEAD_US earlier (before the pushes queued in
 * the PULL_OVER_PUSH_US before that), and so does (ORPHAN_LEAD_US) that of a peer fed
 * on stripe 0 only, which has no parent for stripe 1, unless that peer
 * uploads nothing (contributors first). */
enum { NP_NEWCOMER, NP_FED, NP_ORPHAN, NP_ORPHAN_NONUP };
static struct {
  ptv_id to;
  ptv_chunk_id id;
  ptv_tstamp answered; /* CHUNK or BUSY */
  int served;
} g_np;

static void np_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  if (from != FIRST_PEER || to != g_np.to || g_np.answered) return;
  if (m->type == PTV_MSG_CHUNK && m->u.chunk.chunk == g_np.id) g_np.served = 1;
  else if (!(m->type == PTV_MSG_BUSY && m->u.busy.chunk == g_np.id)) return;
  g_np.answered = h->now;
}

/* Mean time to the answer over 4 requests; *served counts the CHUNKs. */
static ptv_tstamp newcomer_pull_wait(int mode, uint16_t deadline_ms, uint64_t seed, int *served) {
  const int a = FIRST_PEER, c = FIRST_PEER + 1;
  ts_reset();
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 2000;
  ups[0] = 2000; /* a: a chunk takes 63 ms, 4 of them a chunk time */
  if (mode == NP_ORPHAN_NONUP) ups[1] = 0; /* c */
  harness *h = h_new_strat(6, ups, 8000, seed, &ts_strategy);
  h_stripes_ready(h, a, c);
  assert_int_equal(ptv_node_subscribe(h->node[a], SOURCE_ID, TS_ALL, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  for (int k = c + 1; k < c + 5; k++) {
    assert_true(has_partner(h->node[k], (ptv_id)a, 1));
    assert_int_equal(ptv_node_subscribe(h->node[k], (ptv_id)a, TS_ALL, h->now), 0);
  }
  if (mode != NP_NEWCOMER)
    assert_int_equal(
        ptv_node_subscribe(h->node[c], SOURCE_ID, mode == NP_FED ? 0x2 : 0x1, h->now), 0);
  h_run_until(h, h->now + 3 * PTV_S);
  for (int k = c + 1; k < c + 5; k++) assert_int_equal(h_pinfo(h, k, (ptv_id)a).sub_in, TS_ALL);
  assert_int_equal(h_pinfo(h, a, (ptv_id)c).depth[0],
                   mode == NP_ORPHAN || mode == NP_ORPHAN_NONUP ? 1 : 255);
  assert_int_equal(h_pinfo(h, a, (ptv_id)c).depth[1], mode == NP_FED ? 1 : 255);
  h->tap = np_tap;
  ptv_tstamp total = 0;
  const int rounds = 4;
  *served = 0;
  for (int r = 0; r < rounds; r++) {
    /* a chunk c and a hold, a second old */
    ptv_node_stats sc = h_stats(h, c);
    memset(&g_np, 0, sizeof(g_np));
    g_np.to = (ptv_id)c;
    g_np.id = (ptv_chunk_id)(sc.newest - 4);
    g_np.id -= (g_np.id + TS_STRIPES - 1) % TS_STRIPES; /* a chunk of stripe 1 */
    ptv_msg rq;
    memset(&rq, 0, sizeof(rq));
    rq.type = PTV_MSG_REQUEST;
    rq.u.request.chunk = g_np.id;
    rq.u.request.deadline_ms = deadline_ms;
    ptv_tstamp t0 = h->now;
    assert_int_equal(h_inject(h, a, (ptv_id)c, &rq), 0);
    h_run_until(h, h->now + 1500 * PTV_MS);
    if (!g_np.answered) fail_msg("a never answered c's request (mode %d)", mode);
    total += g_np.answered - t0;
    *served += g_np.served;
    h_run_until(h, h->now + 137 * PTV_MS); /* another phase against the chunk clock */
  }
  h->tap = NULL;
  h_free(h);
  return total / rounds;
}

static void test_stripes_newcomer_pull(void **state) {
  (void)state;
  int fresh_n, fed_n, orph_n, nonup_n;
  ptv_tstamp fresh = newcomer_pull_wait(NP_NEWCOMER, 1000, 41, &fresh_n),
             fed = newcomer_pull_wait(NP_FED, 1000, 41, &fed_n),
             orph = newcomer_pull_wait(NP_ORPHAN, 1000, 41, &orph_n),
             nonup = newcomer_pull_wait(NP_ORPHAN_NONUP, 1000, 41, &nonup_n);
  print_message("a answered a 1 s pull after %.0f ms for a newcomer (%d of 4 served), %.0f ms "
                "for a peer fed on that stripe (%d served), %.0f ms for one fed on another "
                "(%d served)\n",
                (double)fresh / 1e3, fresh_n, (double)fed / 1e3, fed_n, (double)orph / 1e3, orph_n);
  assert_int_equal(fresh_n, 4); /* in time, all of them */
  assert_int_equal(orph_n, 4);
  if (fresh + 200 * PTV_MS > fed)
    fail_msg("a newcomer's pull waited %.0f ms, a fed peer's %.0f ms", (double)fresh / 1e3,
             (double)fed / 1e3);
  if (orph + 200 * PTV_MS > fed)
    fail_msg("a pull on a stripe without a parent waited %.0f ms, a fed peer's %.0f ms",
             (double)orph / 1e3, (double)fed / 1e3);
  assert_true(fresh < 1000 * PTV_MS);
  assert_true(orph < 1000 * PTV_MS);
  print_message("... %.0f ms for one fed on another that uploads nothing (%d served)\n",
                (double)nonup / 1e3, nonup_n);
  if (orph + 200 * PTV_MS > nonup)
    fail_msg("a non-contributor's pull on a stripe without a parent waited %.0f ms, a "
             "contributor's %.0f ms",
             (double)nonup / 1e3, (double)orph / 1e3);
}

/* With ptv_node_set_push_kids, within a chunk's pushes a child that
 * passes the stripe on to more peers (its maps say how many children it
 * has there) goes first, before a stronger child that passes it on to
 * none: the chunk reaches the deep peers sooner. Parent a; children b (bid
 * 2000) and c (bid 1000) on stripe 0; d and e take stripe 0 from c. With
 * the rule a pushes each chunk to c first; without it (the default), to b
 * first (the bids decide). */
static struct {
  ptv_id from, b, c;
  ptv_chunk_id last;
  int first_c, first_b;
} g_po;

static void po_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  (void)h;
  if (from != g_po.from || m->type != PTV_MSG_CHUNK || m->u.chunk.chunk % TS_STRIPES != 0) return;
  if (to != g_po.b && to != g_po.c) return;
  if (g_po.last != PTV_ID_NONE && m->u.chunk.chunk <= g_po.last) return; /* its second push */
  g_po.last = m->u.chunk.chunk;
  if (to == g_po.c) g_po.first_c++;
  else g_po.first_b++;
}

/* Watches a's stripe-0 pushes to b and c for 8 s, push_kids on or off. */
static void po_watch(harness *h, int a, int b, int c, int push_kids) {
  ptv_node_set_push_kids(h->node[a], push_kids);
  memset(&g_po, 0, sizeof(g_po));
  g_po.from = (ptv_id)a;
  g_po.b = (ptv_id)b;
  g_po.c = (ptv_id)c;
  g_po.last = PTV_ID_NONE;
  h->tap = po_tap;
  h_run_until(h, h->now + 8 * PTV_S);
  h->tap = NULL;
}

static void test_stripes_push_order(void **state) {
  (void)state;
  const int a = FIRST_PEER, b = FIRST_PEER + 1, c = FIRST_PEER + 2, d = FIRST_PEER + 3,
            e = FIRST_PEER + 4;
  ts_reset();
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 2000;
  ups[c - FIRST_PEER] = 1000;
  harness *h = h_new_strat(5, ups, 4000, 53, &ts_strategy);
  h_stripes_ready(h, a, b);
  assert_true(has_partner(h->node[a], (ptv_id)c, 1));
  assert_true(has_partner(h->node[c], (ptv_id)d, 1));
  assert_true(has_partner(h->node[c], (ptv_id)e, 1));
  assert_int_equal(ptv_node_subscribe(h->node[a], SOURCE_ID, TS_ALL, h->now), 0);
  assert_int_equal(ptv_node_subscribe(h->node[b], (ptv_id)a, 0x1, h->now), 0);
  assert_int_equal(ptv_node_subscribe(h->node[c], (ptv_id)a, 0x1, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(ptv_node_subscribe(h->node[d], (ptv_id)c, 0x1, h->now), 0);
  assert_int_equal(ptv_node_subscribe(h->node[e], (ptv_id)c, 0x1, h->now), 0);
  h_run_until(h, h->now + 2 * PTV_S); /* c's maps tell a of its two children */
  assert_int_equal(h_pinfo(h, a, (ptv_id)b).sub_out, 0x1);
  assert_int_equal(h_pinfo(h, a, (ptv_id)c).sub_out, 0x1);
  assert_int_equal(h_pinfo(h, c, (ptv_id)d).sub_out, 0x1);
  assert_int_equal(h_pinfo(h, c, (ptv_id)e).sub_out, 0x1);
  assert_true(h_pinfo(h, a, (ptv_id)b).bid_kbps > h_pinfo(h, a, (ptv_id)c).bid_kbps);

  po_watch(h, a, b, c, 1);
  int with_c = g_po.first_c, with_b = g_po.first_b;
  po_watch(h, a, b, c, 0); /* the rule off: the bids decide */
  print_message("stripe 0 pushes from a, c with 2 children: c first %d / b first %d with the "
                "rule, c first %d / b first %d without\n",
                with_c, with_b, g_po.first_c, g_po.first_b);
  if (with_c < 3 || with_b != 0)
    fail_msg("c, with 2 children, got %d chunks first and b, with none, %d: want c every time",
             with_c, with_b);
  if (g_po.first_b < 3 || g_po.first_c != 0)
    fail_msg("without the rule, b (the higher bid) got %d first and c %d", g_po.first_b,
             g_po.first_c);
  h_free(h);
}

/* Pushes go before a fed peer's pull however soon it is due: a late push
 * delays a whole subtree's stripe, a late pull one chunk that the peer's
 * stripe parent may still bring. Not before a newcomer's: it has nothing
 * else. The same 4 children as above, requests with a 400 ms deadline. */
static void test_stripes_push_first(void **state) {
  (void)state;
  int fresh_n, fed_n;
  ptv_tstamp fresh = newcomer_pull_wait(NP_NEWCOMER, 400, 41, &fresh_n),
             fed = newcomer_pull_wait(NP_FED, 400, 41, &fed_n);
  print_message("a answered a 400 ms pull after %.0f ms for a newcomer (%d of 4 served), "
                "%.0f ms for a peer fed on that stripe (%d served)\n",
                (double)fresh / 1e3, fresh_n, (double)fed / 1e3, fed_n);
  /* (One newcomer's request finds more than 400 ms queued and is refused
   * at once: the pushes of two chunks.) */
  assert_true(fresh_n >= 3);
  assert_true(fresh < 100 * PTV_MS);
  if (fed_n > 0) fail_msg("%d of 4 urgent pulls of a fed peer went before pushes", fed_n);
}

/* Backfill: a child that moved to us (its map shows it fed on another
 * stripe) gets the chunks of its new stripe that it lacks from its playback
 * point on, except those due there within REPAIR_LEAD_US (it pulls those
 * itself); one taking its first parent (fed on no stripe) gets BACKFILL (2)
 * per stripe, and so does one that uploads nothing. c's map, injected, says
 * it plays chunk P = a's newest - 40 (10 s back) and holds nothing from
 * there; then it asks a for stripe 1. */
static struct {
  ptv_id from, to;
  ptv_chunk_id lo, hi, first;
  int n;
} g_bf;

static void bf_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  (void)h;
  if (from != g_bf.from || to != g_bf.to || m->type != PTV_MSG_CHUNK) return;
  ptv_chunk_id id = m->u.chunk.chunk;
  if (id % TS_STRIPES != 1 || id < g_bf.lo || id > g_bf.hi) return; /* new pushes */
  if (g_bf.n++ == 0 || id < g_bf.first) g_bf.first = id;
}

static int backfilled(int moved, int c_up, int from_source, ptv_chunk_id *play,
                      ptv_chunk_id *first) {
  const int c = FIRST_PEER + 1, a = from_source ? SOURCE_ID : FIRST_PEER;
  ts_reset();
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 2000;
  ups[1] = (uint32_t)c_up;
  harness *h = h_new_strat(2, ups, 2000, 43, &ts_strategy);
  h_stripes_ready(h, FIRST_PEER, c);
  h_run_until(h, h->now + 12 * PTV_S);
  ptv_chunk_id hi = h_stats(h, a).newest, p = hi - 40;
  uint8_t bits[128 / 8], depth[TS_STRIPES], kids[TS_STRIPES];
  memset(bits, 0, sizeof(bits));
  memset(depth, 255, sizeof(depth));
  memset(kids, 0, sizeof(kids));
  if (moved) depth[0] = 1;
  ptv_msg bm;
  memset(&bm, 0, sizeof(bm));
  bm.type = PTV_MSG_BUFFERMAP;
  bm.u.buffermap.base = p;
  bm.u.buffermap.nbits = 128;
  bm.u.buffermap.play = p;
  bm.u.buffermap.suspect = PTV_ID_NONE;
  bm.u.buffermap.ndepth = TS_STRIPES;
  bm.u.buffermap.depth = depth;
  bm.u.buffermap.kids = kids;
  bm.u.buffermap.bits = bits;
  assert_int_equal(h_inject(h, a, (ptv_id)c, &bm), 0);
  ptv_msg sub;
  memset(&sub, 0, sizeof(sub));
  sub.type = PTV_MSG_STRIPES;
  sub.u.stripes.kind = PTV_STRIPES_SUBSCRIBE;
  sub.u.stripes.mask = 0x2;
  sub.u.stripes.kbps = 2000;
  memset(&g_bf, 0, sizeof(g_bf));
  g_bf.from = (ptv_id)a;
  g_bf.to = (ptv_id)c;
  g_bf.lo = p;
  g_bf.hi = hi;
  h->tap = bf_tap;
  assert_int_equal(h_inject(h, a, (ptv_id)c, &sub), 0);
  assert_int_equal(h_pinfo(h, a, (ptv_id)c).sub_out, 0x2);
  h_run_until(h, h->now + 3 * PTV_S);
  h->tap = NULL;
  h_free(h);
  *play = p;
  *first = g_bf.first;
  return g_bf.n;
}

static void test_stripes_backfill(void **state) {
  (void)state;
  ptv_chunk_id p, first_moved, first_new, first_nonup, first_src;
  int moved = backfilled(1, 2000, 0, &p, &first_moved);
  int fresh = backfilled(0, 2000, 0, &p, &first_new);
  int nonup = backfilled(1, 0, 0, &p, &first_nonup);
  int src = backfilled(1, 2000, 1, &p, &first_src);
  print_message("backfill of stripe 1 from 40 chunks back: %d chunks to a moved child (first "
                "P+%d), %d to a new one (first P+%d), %d to a moved one that uploads nothing, "
                "%d from the source to a moved child\n",
                moved, (int)(first_moved - p), fresh, (int)(first_new - p), nonup, src);
  /* The source backfills no one: its uplink is the first tier's. */
  assert_int_equal(src, 0);
  /* Stripe 1 of P+4..P+40 (P..P+3 are due within 1 s): 9 chunks, less the
   * newest if it is still on its way to a. The old rule sent 2. */
  assert_in_range(moved, 8, 9);
  assert_true(first_moved >= p + 4 && first_moved <= p + 8);
  assert_in_range(fresh, 1, 2); /* BACKFILL per stripe, the newest */
  assert_true(first_new >= p + 32);
  assert_in_range(nonup, 1, 2); /* it passes nothing on: as a new child */
  assert_true(first_nonup >= p + 32);
}

/* The source's re-push after a crash (source_lost_child in ptv_node.c).
 * a is the source's only child on every stripe and b takes every stripe from
 * a; once a crashed, b cannot pull (its REQUESTs and SELECTs are dropped,
 * and the OFFERs to it), so what reaches b from the source is pushed. a crashes: what the
 * source pushed to it since shortly before it was last heard reached no one.
 * Once the source has dropped a, b subscribes to the source and must be
 * pushed those chunks again, not only the new ones. With `covered`, a third
 * peer c was the source's child on every stripe all along: it has them, so
 * nothing old is pushed again (b could pull them from c). Returns the number of chunks made before b's
 * grant that the source pushed to b; *holes: chunks made in the partner
 * timeout after the crash that b lacks after the re-push. */
static ptv_chunk_id g_rp_grant_id;
static int g_rp_old;

static void rp_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  (void)h;
  if (from == SOURCE_ID && to == FIRST_PEER + 1 && m->type == PTV_MSG_CHUNK &&
      g_rp_grant_id != PTV_ID_NONE && m->u.chunk.chunk < g_rp_grant_id)
    g_rp_old++;
}

static int repushed(int covered, int *holes) {
  const int a = FIRST_PEER, b = FIRST_PEER + 1, c = FIRST_PEER + 2;
  harness *h = h_new_stripes(3, 83);
  h_stripes_ready(h, a, b);
  assert_true(has_partner(h->node[c], SOURCE_ID, 1));
  g_rp_grant_id = PTV_ID_NONE;
  g_rp_old = 0;
  h->tap = rp_tap;
  assert_int_equal(ptv_node_subscribe(h->node[a], SOURCE_ID, TS_ALL, h->now), 0);
  if (covered) assert_int_equal(ptv_node_subscribe(h->node[c], SOURCE_ID, TS_ALL, h->now), 0);
  assert_int_equal(ptv_node_subscribe(h->node[b], (ptv_id)a, TS_ALL, h->now), 0);
  h_run_until(h, h->now + 4 * PTV_S);
  assert_int_equal(h_pinfo(h, b, (ptv_id)a).sub_in, TS_ALL);
  h->noask = 1;
  h->noask_from = (ptv_id)b;
  h->noask_to = PTV_ID_NONE;
  ptv_chunk_id crash_id = h_stats(h, SOURCE_ID).newest;
  h->dead[a] = 1;
  /* the source drops a after its partner timeout (and a maintenance round) */
  h_run_until(h, h->now + PARTNER_TIMEOUT + 1 * PTV_S);
  assert_false(has_partner(h->node[SOURCE_ID], (ptv_id)a, 1));
  g_rp_grant_id = h_stats(h, SOURCE_ID).newest + 1;
  assert_int_equal(ptv_node_subscribe(h->node[b], SOURCE_ID, TS_ALL, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT + 2 * PTV_S); /* 15 chunks at 2 Mbit/s: 1 s */
  assert_int_equal(h_pinfo(h, b, SOURCE_ID).sub_in, TS_ALL);
  ptv_chunk_id play = h_stats(h, b).play_next;
  *holes = 0;
  /* the chunks made while the source took a to be alive (later ones it
   * offered to b, which b would have taken) */
  for (ptv_chunk_id id = crash_id + 1; id <= crash_id + PARTNER_TIMEOUT / CHUNK_US; id++)
    if (id >= play && !ptv_node_has_chunk(h->node[b], id)) (*holes)++;
  h->tap = NULL;
  h_free(h);
  return g_rp_old;
}

static void test_source_repush_after_crash(void **state) {
  (void)state;
  int holes, holes_cov;
  int old = repushed(0, &holes), old_cov = repushed(1, &holes_cov);
  print_message("after the crash of the source's only child: %d old chunks pushed again, %d "
                "holes; with another child all along: %d old chunks, %d holes\n",
                old, holes, old_cov, holes_cov);
  assert_true(old > 0);
  assert_int_equal(holes, 0);
  assert_int_equal(old_cov, 0);
  assert_true(holes_cov > 0); /* what b, not pulling, lacks: the source left it to c */
}

/* A stripe parent silent for over a second (STRIPE_SILENT_US) feeds us no
 * more: our maps say so at once, not at the 3 s partner timeout, and our
 * children's follow, so an orphaned subtree is neither taken for a parent
 * (a loop) nor left unrepaired by the mesh (offers skip a fed stripe). And
 * a child silent that long gives its parent's slots back at once. */
static void test_stripes_silent_parent(void **state) {
  (void)state;
  const int a = FIRST_PEER, b = FIRST_PEER + 1, c = FIRST_PEER + 2;
  harness *h = h_new_stripes(3, 89);
  h_stripes_ready(h, a, b);
  assert_true(has_partner(h->node[c], (ptv_id)b, 1));
  assert_true(has_partner(h->node[SOURCE_ID], (ptv_id)b, 1));
  assert_int_equal(ptv_node_subscribe(h->node[a], SOURCE_ID, TS_ALL, h->now), 0);
  assert_int_equal(ptv_node_subscribe(h->node[b], (ptv_id)a, TS_ALL, h->now), 0);
  assert_int_equal(ptv_node_subscribe(h->node[c], (ptv_id)b, TS_ALL, h->now), 0);
  h_run_until(h, h->now + 3 * PTV_S);
  for (unsigned s = 0; s < TS_STRIPES; s++) {
    assert_int_equal(ptv_node_depth(h->node[b], s), 2);
    assert_int_equal(ptv_node_depth(h->node[c], s), 3);
    assert_int_equal(h_pinfo(h, c, (ptv_id)b).depth[s], 2);
  }
  const uint32_t slots = ptv_node_stripe_slots(h->node[SOURCE_ID]);
  assert_int_equal(ptv_node_stripe_used(h->node[SOURCE_ID]), TS_STRIPES);
  h->dead[a] = 1;
  ptv_tstamp t0 = h->now;
  /* Quiet for less than a second: a parent between two messages. */
  h_run_until(h, t0 + 800 * PTV_MS);
  for (unsigned s = 0; s < TS_STRIPES; s++) assert_int_equal(ptv_node_depth(h->node[b], s), 2);
  assert_int_equal(ptv_node_stripe_used(h->node[SOURCE_ID]), TS_STRIPES);
  /* Past a second (and a maintenance round, a map flush and a hop), b and
   * the peers that hear b say unfed, though b still counts a a partner. */
  h_run_until(h, t0 + 1800 * PTV_MS);
  assert_true(has_partner(h->node[b], (ptv_id)a, 1));
  /* The source, likewise, counts silent a's slots as free, and says so. */
  assert_true(has_partner(h->node[SOURCE_ID], (ptv_id)a, 1));
  assert_int_equal(ptv_node_stripe_used(h->node[SOURCE_ID]), 0);
  assert_int_equal(h_pinfo(h, b, SOURCE_ID).free_slots, slots);
  assert_int_equal(h_pinfo(h, b, (ptv_id)a).sub_in, TS_ALL);
  for (unsigned s = 0; s < TS_STRIPES; s++) {
    assert_int_equal(ptv_node_depth(h->node[b], s), 255);
    assert_int_equal(h_pinfo(h, c, (ptv_id)b).depth[s], 255);
    assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)b).depth[s], 255);
    assert_int_equal(ptv_node_depth(h->node[c], s), 255);
  }
  /* Fed again: the depths come back down the subtree. */
  assert_int_equal(ptv_node_subscribe(h->node[b], SOURCE_ID, TS_ALL, h->now), 0);
  h_run_until(h, h->now + 1 * PTV_S);
  /* (c's own depth is not asserted: since the 3.5 s start rule c, starving
   * 2 s after a fell silent, drops b as a partner that brought nothing
   * useful lately and takes it back unsubscribed, 2.2 s after a fell.) */
  for (unsigned s = 0; s < TS_STRIPES; s++) {
    assert_int_equal(ptv_node_depth(h->node[b], s), 1);
    assert_int_equal(h_pinfo(h, c, (ptv_id)b).depth[s], 1);
  }
  h_free(h);
}

/* make_room: a CONNECT that finds every partner slot taken asks the
 * strategy, which may drop a partner for it. Here the source (500 kbps:
 * 7 partner slots) is filled by seven 100 kbps peers before two 2000 kbps
 * peers start; the test strategy drops the weakest partner for a stronger
 * newcomer. Without the hook they are turned away. */
static int g_mr_calls;

static int mr_make_room(ptv_node *n, const ptv_peer_desc *from, ptv_tstamp now) {
  g_mr_calls++;
  ptv_partner_info pi[16];
  size_t np = ptv_node_partners(n, pi, 16);
  int w = -1;
  for (size_t i = 0; i < np; i++)
    if (pi[i].established && (w < 0 || pi[i].upload_kbps < pi[w].upload_kbps)) w = (int)i;
  if (w < 0 || pi[w].upload_kbps >= from->upload_kbps) return 0;
  return ptv_node_drop_partner(n, pi[w].id, now) == 0;
}

static const ptv_strategy mr_strategy = {.name = "test-make-room", .make_room = mr_make_room};

static int strong_at_source(const ptv_strategy *strat, uint32_t *source_changes) {
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 100;
  ups[7] = ups[8] = 2000; /* the last two to start */
  harness *h = h_new_strat(9, ups, 500, 61, strat);
  assert_int_equal(ptv_node_npartners(h->node[SOURCE_ID]) <= 7, 1);
  h_run_until(h, 6 * PTV_S);
  int strong = has_partner(h->node[SOURCE_ID], FIRST_PEER + 7, 1) +
               has_partner(h->node[SOURCE_ID], FIRST_PEER + 8, 1);
  assert_true(ptv_node_npartners(h->node[SOURCE_ID]) <= 7);
  *source_changes = h_stats(h, SOURCE_ID).partner_changes;
  h_free(h);
  return strong;
}

static void test_make_room(void **state) {
  (void)state;
  uint32_t ch;
  g_mr_calls = 0;
  int with = strong_at_source(&mr_strategy, &ch);
  print_message("with make_room: %d strong partners at the source, %u dropped, %d calls\n", with, ch,
                g_mr_calls);
  assert_int_equal(with, 2);
  assert_true(ch >= 2 && g_mr_calls >= 2);
  int without = strong_at_source(&ts_strategy, &ch);
  print_message("without: %d strong partners at the source, %u dropped\n", without, ch);
  assert_int_equal(without, 0);
  assert_int_equal(ch, 0);
}

/* Contributors first (ptv_node_set_nonup_defer): a's uplink is kept busy
 * pushing to three children; d asks for a chunk due in 900 ms and c for
 * one due in 1000 ms, at the same instant. By deadline, d's goes first;
 * with the defer set on a and d declaring less upload than a stripe (it can
 * pass nothing on), c's does. Returns 1 if c's chunk left a before d's. */
static struct {
  ptv_id c, d;
  ptv_tstamp at_c, at_d;
} g_nd;

static void nd_tap(harness *h, ptv_id from, ptv_id to, const ptv_msg *m) {
  if (from != FIRST_PEER || m->type != PTV_MSG_CHUNK) return;
  if (to == g_nd.c && !g_nd.at_c) g_nd.at_c = h->now;
  if (to == g_nd.d && !g_nd.at_d) g_nd.at_d = h->now;
}

/* The same, with c uploading c_up, a's nonup_poor set to poor, and c's and
 * d's REQUESTs saying they played c_played and d_played (x 255) lately. */
static int pull_c_first(ptv_tstamp defer, ptv_tstamp poor, uint32_t c_up, uint32_t d_up,
                        uint8_t c_played, uint8_t d_played, uint64_t seed) {
  const int a = FIRST_PEER, c = FIRST_PEER + 1, d = FIRST_PEER + 2;
  ts_reset();
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 2000;
  ups[c - FIRST_PEER] = c_up;
  ups[d - FIRST_PEER] = d_up;
  harness *h = h_new_strat(6, ups, 8000, seed, &ts_strategy);
  h_stripes_ready(h, a, c);
  assert_true(has_partner(h->node[a], (ptv_id)d, 1));
  assert_int_equal(h_pinfo(h, a, (ptv_id)d).upload_kbps, d_up);
  assert_int_equal(h_pinfo(h, a, (ptv_id)c).upload_kbps, c_up);
  ptv_node_set_nonup_defer(h->node[a], defer);
  ptv_node_set_nonup_poor(h->node[a], poor);
  assert_int_equal(ptv_node_subscribe(h->node[a], SOURCE_ID, TS_ALL, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  for (int k = d + 1; k < d + 4; k++) {
    assert_true(has_partner(h->node[k], (ptv_id)a, 1));
    assert_int_equal(ptv_node_subscribe(h->node[k], (ptv_id)a, TS_ALL, h->now), 0);
  }
  h_run_until(h, h->now + 3 * PTV_S);
  for (int k = d + 1; k < d + 4; k++) assert_int_equal(h_pinfo(h, k, (ptv_id)a).sub_in, TS_ALL);
  memset(&g_nd, 0, sizeof(g_nd));
  g_nd.c = (ptv_id)c;
  g_nd.d = (ptv_id)d;
  h->tap = nd_tap;
  ptv_chunk_id newest = h_stats(h, a).newest;
  ptv_msg rq;
  memset(&rq, 0, sizeof(rq));
  rq.type = PTV_MSG_REQUEST;
  /* a filler, so that a's uplink is busy when the two pulls come */
  rq.u.request.chunk = newest - 6;
  rq.u.request.deadline_ms = 3000;
  assert_int_equal(h_inject(h, a, (ptv_id)c, &rq), 0);
  rq.u.request.chunk = newest - 4;
  rq.u.request.deadline_ms = 900;
  rq.u.request.played = d_played;
  assert_int_equal(h_inject(h, a, (ptv_id)d, &rq), 0);
  rq.u.request.chunk = newest - 5;
  rq.u.request.deadline_ms = 1000;
  rq.u.request.played = c_played;
  assert_int_equal(h_inject(h, a, (ptv_id)c, &rq), 0);
  h_run_until(h, h->now + 1500 * PTV_MS);
  h->tap = NULL;
  if (!g_nd.at_c || !g_nd.at_d) fail_msg("a did not serve both pulls (c %d, d %d)", !!g_nd.at_c, !!g_nd.at_d);
  int c_first = g_nd.at_c < g_nd.at_d;
  h_free(h);
  return c_first;
}

static int nonup_c_first(ptv_tstamp defer, uint32_t d_up, uint64_t seed) {
  return pull_c_first(defer, 0, 2000, d_up, 255, 255, seed);
}

static void test_stripes_nonup_defer(void **state) {
  (void)state;
  for (uint64_t seed = 51; seed < 54; seed++) {
    assert_false(nonup_c_first(0, 0, seed));              /* by deadline */
    assert_true(nonup_c_first(PTV_S, 0, seed));           /* d uploads nothing */
    assert_false(nonup_c_first(PTV_S, 2000, seed));       /* d can pass stripes on */
  }
}

/* The poorest first (ptv_node_set_nonup_poor): c and d both upload
 * nothing; d's pull is due sooner, c says it played nothing lately and d
 * all. By deadline alone d's goes first; with nonup_poor, c's, unless d is
 * as poor (then by deadline again). Contributors still go before any of
 * them. */
static void test_stripes_nonup_poor(void **state) {
  (void)state;
  for (uint64_t seed = 55; seed < 58; seed++) {
    assert_false(pull_c_first(PTV_S, 0, 0, 0, 0, 255, seed));
    assert_true(pull_c_first(PTV_S, 4 * PTV_S, 0, 0, 0, 255, seed));
    assert_false(pull_c_first(PTV_S, 4 * PTV_S, 0, 0, 0, 0, seed));
    assert_false(pull_c_first(PTV_S, 4 * PTV_S, 0, 2000, 0, 255, seed)); /* d contributes */
  }
}

/* A stripe peer is offered a chunk of a stripe it has a parent for only
 * once the push is late (or it is a hole): an offer it would decline costs
 * the offerer's uplink a round trip idle. Chunks of its other stripes are
 * offered at once. Here a takes stripes 0-1 from c, a slow uplink one hop
 * below the source, so b (no parent for them, fed fast by the source)
 * holds them first and would offer them young. b's own pushes (stripes 2-3,
 * from the source) take about 330 ms from a chunk's timestamp, which is a
 * chunk time (250 ms) before the source sends it: late, for a, is then
 * 330 + 300 ms after the timestamp, 380 ms after the source sent it. */
static void test_stripes_offers_skip_parented(void **state) {
  (void)state;
  const int a = FIRST_PEER, b = FIRST_PEER + 1, c = FIRST_PEER + 2;
  ts_reset();
  uint32_t ups[MAXN];
  for (int i = 0; i < MAXN; i++) ups[i] = 2000;
  ups[c - FIRST_PEER] = 400; /* a chunk takes c 312 ms to send */
  harness *h = h_new_strat(3, ups, 4000, 37, &ts_strategy);
  h_stripes_ready(h, a, b);
  assert_true(has_partner(h->node[a], (ptv_id)c, 1));
  assert_true(has_partner(h->node[b], (ptv_id)a, 1));
  assert_int_equal(TS_STRIPES, 4);
  assert_int_equal(ptv_node_subscribe(h->node[c], SOURCE_ID, 0x3, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(ptv_node_subscribe(h->node[a], (ptv_id)c, 0x3, h->now), 0);
  assert_int_equal(ptv_node_subscribe(h->node[b], SOURCE_ID, 0xc, h->now), 0);
  h_run_until(h, h->now + 2 * PTV_S);
  assert_int_equal(ptv_node_depth(h->node[b], 2), 1);
  assert_int_equal(ptv_node_depth(h->node[b], 0), 255);
  assert_int_equal(ptv_node_depth(h->node[a], 0), 2);
  assert_int_equal(h_pinfo(h, b, (ptv_id)a).depth[0], 2); /* b sees a parented */
  assert_int_equal(h_pinfo(h, b, (ptv_id)a).depth[2], 255);
  h->offer_mask = 0x3;
  memset(h->noffered, 0, sizeof(h->noffered));
  h_run_until(h, h->now + 6 * PTV_S);
  uint32_t in = h->noffered[b][a][1], out = h->noffered[b][a][0];
  ptv_tstamp young_in = h->offer_min_age[b][a][1], young_out = h->offer_min_age[b][a][0];
  print_message("b -> a offers: %u of parented stripes (youngest %.3f s), %u others (%.3f s)\n",
                in, (double)young_in / 1e6, out, (double)young_out / 1e6);
  if (out == 0 || young_out >= 300 * PTV_MS)
    fail_msg("b offered a %u ids of its unparented stripes, youngest %.3f s", out,
             (double)young_out / 1e6);
  if (in > 0 && young_in < 300 * PTV_MS)
    fail_msg("b offered a a chunk of a parented stripe %.3f s old", (double)young_in / 1e6);
  /* Cut the data to a: its parent's pushes stop coming, and b offers the
   * chunks of a's parented stripes once they are late. */
  memset(h->noffered, 0, sizeof(h->noffered));
  h->drop_bulk_to_after[a] = h->now;
  h_run_until(h, h->now + 3 * PTV_S);
  in = h->noffered[b][a][1];
  young_in = h->offer_min_age[b][a][1];
  print_message("data to a cut: b offered %u (youngest %.3f s)\n", in, (double)young_in / 1e6);
  if (in == 0 || young_in < 300 * PTV_MS)
    fail_msg("a starved: b offered it %u chunks of its parented stripes, youngest %.3f s", in,
             (double)young_in / 1e6);
  h_free(h);
}

static void test_stripes_evict(void **state) {
  (void)state;
  const int a = FIRST_PEER;
  harness *h = h_new_stripes(2, 35);
  h_stripes_ready(h, a, -1);
  ptv_node *na = h->node[a], *src = h->node[SOURCE_ID];
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, TS_ALL, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, TS_ALL);
  h_run_until(h, h->now + 2 * PTV_S);
  ptv_node_stats a0 = h_stats(h, a), s0 = h_stats(h, SOURCE_ID);
  assert_int_equal(a0.stripe_orphan, h_stats(h, a).stripe_orphan);
  int ng0 = g_ts.non_grant;

  assert_int_equal(ptv_node_stripe_evict(src, 999, 0x1, h->now), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_node_stripe_evict(src, (ptv_id)a, 0x1, h->now), 0);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0xe);
  assert_int_equal(h_stats(h, SOURCE_ID).partner_changes, s0.partner_changes + 1);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, TS_ALL); /* not told yet */
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0xe);
  assert_int_equal(g_ts.non_grant, ng0); /* an eviction answers no request */
  assert_int_equal(ptv_node_depth(na, 0), 255);
  assert_int_equal(ptv_node_depth(na, 1), 1);
  assert_int_equal(ptv_node_tier(na), 1);
  /* Evicting what it does not have is a no-op. */
  assert_int_equal(ptv_node_stripe_evict(src, (ptv_id)a, 0x1, h->now), 0);
  assert_int_equal(h_stats(h, SOURCE_ID).partner_changes, s0.partner_changes + 1);

  /* Stripe 0 is no longer pushed: its chunks reach a as orphans, pulled. */
  ptv_node_stats a1 = h_stats(h, a), s1 = h_stats(h, SOURCE_ID);
  h_run_until(h, h->now + 4 * PTV_S);
  ptv_node_stats a2 = h_stats(h, a), s2 = h_stats(h, SOURCE_ID);
  assert_true(a2.stripe_orphan - a1.stripe_orphan >= 3);
  uint64_t pushes = s2.pushes - s1.pushes;
  if (pushes < 11 || pushes > 13)
    fail_msg("%llu pushes in 4 s to a child of 3 stripes, want 12",
             (unsigned long long)pushes);

  /* a gives stripes 0-1 up itself: they stop at once, one partner change. */
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0xc, h->now), 0);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0xc);
  assert_int_equal(ptv_node_depth(na, 1), 255);
  assert_int_equal(h_stats(h, a).partner_changes, a2.partner_changes + 1);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0xc);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0xc);
  assert_int_equal(h_stats(h, a).partner_changes, a2.partner_changes + 1);
  /* ...and 0 gives everything up. */
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0, h->now), 0);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0);
  assert_int_equal(h_pinfo(h, SOURCE_ID, (ptv_id)a).sub_out, 0);
  assert_int_equal(ptv_node_tier(na), 255);
  assert_int_equal(ptv_node_stripe_used(src), 0);
  h_assert_clean(h);
  h_free(h);
}

/* The stripe API's errors, and what it says on a mesh node. */
static void test_stripes_api_errors(void **state) {
  (void)state;
  const int a = FIRST_PEER;
  /* With stripes. */
  harness *h = h_new_stripes(2, 36);
  h_stripes_ready(h, a, -1);
  ptv_node *na = h->node[a], *src = h->node[SOURCE_ID];
  assert_int_equal(ptv_node_subscribe(na, 999, 0x1, h->now), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_node_subscribe(na, (ptv_id)a, 0x1, h->now), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_node_subscribe(src, (ptv_id)a, 0x1, h->now), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_node_stripe_evict(na, 999, 0x1, h->now), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_node_stripe_evict(src, 999, 0x1, h->now), PTV_ERR_NOT_FOUND);
  assert_int_equal(g_ts.ngrant, 0); /* nothing was sent */
  assert_int_equal(ptv_node_nstripes(na), TS_STRIPES);
  assert_int_equal(ptv_node_stripe_kbps(src), STREAM_KBPS / TS_STRIPES);
  assert_int_equal(ptv_node_stripe_kbps(na), STREAM_KBPS / TS_STRIPES); /* from chunks */
  assert_int_equal(ptv_node_stripe_slots(na), 2000 / (STREAM_KBPS / TS_STRIPES));
  ptv_node_set_slot_pct(na, 50);
  assert_int_equal(ptv_node_stripe_slots(na), 1000 / (STREAM_KBPS / TS_STRIPES));
  assert_int_equal(ptv_node_depth(na, TS_STRIPES), 255); /* out of range */
  ptv_tstamp mean, dev;
  assert_int_equal(ptv_node_stripe_delay(na, 0, &mean, &dev), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_node_stripe_delay(na, TS_STRIPES, &mean, &dev), PTV_ERR_NOT_FOUND);
  /* Bits beyond the stripes are dropped before asking. */
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0xfff1, h->now), 0);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_ask, 0x1);
  h_run_until(h, h->now + GRANT_WAIT);
  assert_int_equal(g_ts.ngrant, 1);
  assert_int_equal(g_ts.grant[0].asked, 0x1);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_in, 0x1);
  h_assert_clean(h);
  h_free(h);

  /* A mesh node has no stripes. */
  h = h_new_uniform(2, 2000, 2000, 36);
  h_run_until(h, 4 * PTV_S);
  na = h->node[a];
  assert_true(has_partner(na, SOURCE_ID, 1));
  assert_int_equal(ptv_node_subscribe(na, 999, 0x1, h->now), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_node_subscribe(na, SOURCE_ID, 0x1, h->now), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_node_nstripes(na), 0);
  assert_int_equal(ptv_node_stripe_kbps(na), 0);
  assert_int_equal(ptv_node_stripe_slots(na), 0);
  assert_int_equal(ptv_node_stripe_slots(h->node[SOURCE_ID]), 0);
  assert_int_equal(ptv_node_stripe_used(na), 0);
  assert_int_equal(ptv_node_tier(na), 255);
  assert_int_equal(ptv_node_depth(na, 0), 255);
  assert_int_equal(ptv_node_stripe_delay(na, 0, &mean, &dev), PTV_ERR_NOT_FOUND);
  assert_int_equal(h_pinfo(h, a, SOURCE_ID).sub_ask, 0);
  ptv_node_stats st = h_stats(h, a);
  assert_int_equal(st.stripe_parent + st.stripe_other + st.stripe_orphan, 0);
  assert_int_equal(h_stats(h, SOURCE_ID).pushes, 0);
  h_assert_clean(h);
  h_free(h);
}

/* Reports heard at node `self` from `from` (about `suspect`, with `deliv`:
 * counted in *bad otherwise) since time t; the last one's time in *last. */
static int ts_reports(ptv_id self, ptv_id from, ptv_tstamp since, ptv_id suspect,
                      uint16_t deliv, int *bad, ptv_tstamp *last) {
  int c = 0;
  assert_true(g_ts.nreport < TS_MAXREC);
  for (int k = 0; k < g_ts.nreport; k++) {
    const ts_report_rec *r = &g_ts.report[k];
    if (r->self != self || r->from != from || r->now < since) continue;
    c++;
    if (r->suspect != suspect || r->deliv != deliv) (*bad)++;
    if (last && r->now > *last) *last = r->now;
  }
  return c;
}

#define SUSPECT_WINDOW (10 * PTV_S) /* ptv_node.h: the maps of the next 10 s */

/* A free-rider warning rides in the reporter's buffer maps for 10 s; every
 * partner's strategy hears it (except the suspect's own), then it stops. */
static void test_stripes_suspect_report(void **state) {
  (void)state;
  const int a = FIRST_PEER, b = FIRST_PEER + 1, x = FIRST_PEER + 2;
  harness *h = h_new_stripes(3, 37);
  h_stripes_ready(h, a, b);
  assert_true(has_partner(h->node[a], (ptv_id)x, 1));
  assert_int_equal(g_ts.nreport, 0);
  ptv_tstamp t0 = h->now;
  ptv_node_report_suspect(h->node[a], (ptv_id)x, 1234, t0);
  h_run_until(h, t0 + 2 * PTV_S);
  int bad = 0;
  ptv_tstamp last = 0;
  int at_b = ts_reports((ptv_id)b, (ptv_id)a, t0, (ptv_id)x, 1234, &bad, &last);
  int at_src = ts_reports(SOURCE_ID, (ptv_id)a, t0, (ptv_id)x, 1234, &bad, &last);
  int at_x = ts_reports((ptv_id)x, (ptv_id)a, t0, (ptv_id)x, 1234, &bad, &last);
  assert_true(at_b >= 2); /* every map: several a second */
  assert_true(at_src >= 2);
  assert_int_equal(at_x, 0); /* not told about itself */
  assert_int_equal(bad, 0);
  /* Nobody else warned anyone. */
  for (int k = 0; k < g_ts.nreport; k++) assert_int_equal(g_ts.report[k].from, a);

  /* Carried until 10 s after the report, and not after. */
  h_run_until(h, t0 + SUSPECT_WINDOW + 2 * LAT_US);
  last = 0;
  at_b = ts_reports((ptv_id)b, (ptv_id)a, t0, (ptv_id)x, 1234, &bad, &last);
  assert_int_equal(bad, 0);
  if (last < t0 + SUSPECT_WINDOW - PTV_S || last > t0 + SUSPECT_WINDOW + LAT_US)
    fail_msg("last warning heard at %llu us, reported at %llu us",
             (unsigned long long)last, (unsigned long long)t0);
  int n0 = g_ts.nreport;
  ptv_node_stats b0 = h_stats(h, b);
  h_run_until(h, h->now + 4 * PTV_S);
  assert_int_equal(g_ts.nreport, n0);
  assert_true(h_stats(h, b).newest > b0.newest); /* maps kept coming: chunks did */
  /* A new report starts a new window. */
  ptv_node_report_suspect(h->node[a], 77, 7, h->now);
  ptv_tstamp t1 = h->now;
  h_run_until(h, h->now + 2 * PTV_S);
  assert_true(ts_reports((ptv_id)b, (ptv_id)a, t1, 77, 7, &bad, NULL) >= 2);
  assert_int_equal(bad, 0);
  h_assert_clean(h);
  h_free(h);
}

/* ---- 11. live catch-up --------------------------------------------------- */

/* Peer v starts 8 s behind live (buffer_us); with a catch-up target of 2 s it
 * plays up to 10% faster while the chunks are in hand, no chunk skipped,
 * until the lag is down to the target (about 250 chunks, 65 s in all). The
 * stats at 10 s, 90 s and 100 s. */
static void catchup_run(ptv_tstamp target, int set_then_clear, uint64_t seed,
                        ptv_node_stats out[3]) {
  const int v = FIRST_PEER + 2;
  harness *h = h_new_uniform(5, 2000, 2000, seed);
  h_set_buffer(h, v, 8 * PTV_S);
  if (set_then_clear) ptv_node_set_target_lag(h->node[v], 3 * PTV_S);
  ptv_node_set_target_lag(h->node[v], target);
  h_run_until(h, 10 * PTV_S);
  out[0] = h_stats(h, v);
  h_run_until(h, 90 * PTV_S);
  out[1] = h_stats(h, v);
  h_run_until(h, 100 * PTV_S);
  out[2] = h_stats(h, v);
  const nctx *c = &h->ctx[v];
  /* Every chunk reported once, in order, never more than 10% early. */
  assert_int_equal(c->nplay_start, 1);
  assert_int_equal(c->nplays, out[2].chunks_due);
  for (size_t k = 0; k < c->nplays; k++) {
    assert_int_equal(c->plays[k].id, c->play_first + (ptv_chunk_id)k);
    if (k > 0 && c->plays[k].now < c->plays[k - 1].now + CHUNK_US * 9 / 10)
      fail_msg("chunk %u played %llu us after the one before", c->plays[k].id,
               (unsigned long long)(c->plays[k].now - c->plays[k - 1].now));
  }
  h_assert_clean(h);
  h_free(h);
}

/* Near capacity (the tracker's mean peer upload under 1.25 x the stream
 * rate) a peer that plays closer to live than its target lag plays up to
 * 10% slower until it is there; in a swarm with upload to spare it never
 * does (there the target's four deviations would cost lag for nothing).
 * The lag never goes past 4 s inside a buffer map's span
 * (PTV_NODE_MAP_BITS chunks, 48 s) that way, whatever the target. */
static void slowdown_run(uint32_t up, ptv_tstamp target, ptv_tstamp until, uint64_t seed,
                         ptv_node_stats out[3]) {
  const int v = FIRST_PEER + 2;
  harness *h = h_new_uniform(5, up, 2000, seed);
  ptv_node_set_target_lag(h->node[v], target);
  h_run_until(h, 10 * PTV_S);
  out[0] = h_stats(h, v);
  h_run_until(h, until - 10 * PTV_S);
  out[1] = h_stats(h, v);
  h_run_until(h, until);
  out[2] = h_stats(h, v);
  h_assert_clean(h);
  h_free(h);
}

static void test_slowdown_near_capacity(void **state) {
  (void)state;
  const ptv_tstamp step = CHUNK_US / 10, cap = PTV_NODE_MAP_BITS * CHUNK_US - 4 * PTV_S;
  /* 10% slower takes ten times the lag it adds: 10 x cap of play to reach
   * the bound, then the last 10 s (at real time again) and a margin */
  const ptv_tstamp far_until = cap * 11 + 30 * PTV_S;
  for (uint64_t seed = 51; seed <= 52; seed++) {
    ptv_node_stats rich[3], near[3], far[3];
    slowdown_run(4 * STREAM_KBPS, 8 * PTV_S, 90 * PTV_S, seed, rich);
    slowdown_run(STREAM_KBPS * 11 / 10, 8 * PTV_S, 90 * PTV_S, seed, near);
    slowdown_run(STREAM_KBPS * 11 / 10, 60 * PTV_S, far_until, seed, far);
    print_message("seed %llu: lag %.2f -> %.2f s (rich, slowed %.2f s), %.2f -> %.2f s (near "
                  "capacity, slowed %.2f s, paused %u), target 60 s: %.2f s\n",
                  (unsigned long long)seed, (double)rich[0].lag_us / PTV_S,
                  (double)rich[2].lag_us / PTV_S, (double)rich[2].slowdown_us / PTV_S,
                  (double)near[0].lag_us / PTV_S, (double)near[2].lag_us / PTV_S,
                  (double)near[2].slowdown_us / PTV_S, near[2].stalls,
                  (double)far[2].lag_us / PTV_S);
    assert_true(rich[2].playing && near[2].playing && far[2].playing);
    /* With upload to spare: no slow-down, the lag stays where it started. */
    assert_int_equal(rich[2].slowdown_us, 0);
    assert_true(rich[2].lag_us < 4 * PTV_S);
    /* Near capacity: the lag grew to the target, by slowing down (not only
     * by pauses), and stopped there: real time again over the last 10 s. */
    assert_true(near[0].lag_us < 4 * PTV_S);
    if (near[2].slowdown_us < 3 * PTV_S || near[2].lag_us > 8 * PTV_S ||
        near[2].lag_us + step + step < 8 * PTV_S)
      fail_msg("seed %llu: near capacity the lag went %llu -> %llu us, slowed %llu us, target 8 s",
               (unsigned long long)seed, (unsigned long long)near[0].lag_us,
               (unsigned long long)near[2].lag_us, (unsigned long long)near[2].slowdown_us);
    assert_int_equal(near[2].slowdown_us, near[1].slowdown_us);
    assert_true(near[2].chunks_missed <= rich[2].chunks_missed + 2);
    /* A target past the map's span: slowed down to the bound only. */
    if (far[2].slowdown_us == 0 || far[2].lag_us - far[2].stall_us > cap + step ||
        far[2].lag_us + 2 * PTV_S < cap)
      fail_msg("seed %llu: target 60 s: lag %llu us (slowed %llu, paused %llu), bound %llu",
               (unsigned long long)seed, (unsigned long long)far[2].lag_us,
               (unsigned long long)far[2].slowdown_us, (unsigned long long)far[2].stall_us,
               (unsigned long long)cap);
    assert_int_equal(far[2].slowdown_us, far[1].slowdown_us);
  }
}

/* ptv_node_config.live_catchup (what peertv-peer sets): a viewer that had
 * to start at its partners' playback point, 6 s behind live, although its
 * own buffer is 1 s, comes back to the lag it asked for (buffer + one
 * chunk) without a strategy's target; with it off it stays 6 s behind. */
static ptv_node_stats late_joiner_run(int catchup, uint64_t seed) {
  const int v = FIRST_PEER + 4;
  harness *h = h_new_uniform(5, 2000, 2000, seed);
  for (int i = FIRST_PEER; i < v; i++) h_set_buffer(h, i, 6 * PTV_S);
  ptv_node_config c = *ptv_node_config_get(h->node[v]);
  c.buffer_us = 1 * PTV_S;
  c.live_catchup = (uint8_t)catchup;
  ptv_node_free(h->node[v]);
  h->node[v] = ptv_node_new(&c, &node_cbs, &h->ctx[v]);
  assert_non_null(h->node[v]);
  h->start_at[v] = 20 * PTV_S;
  h_run_until(h, 120 * PTV_S);
  ptv_node_stats st = h_stats(h, v);
  h_assert_clean(h);
  h_free(h);
  return st;
}

static void test_live_catchup_config(void **state) {
  (void)state;
  for (uint64_t seed = 43; seed <= 44; seed++) {
    ptv_node_stats off = late_joiner_run(0, seed), on = late_joiner_run(1, seed);
    assert_true(off.playing && on.playing);
    if (off.lag_us < 5 * PTV_S) /* the premise: it started behind, with its partners */
      fail_msg("seed %llu: the late joiner started only %llu us behind", (unsigned long long)seed,
               (unsigned long long)off.lag_us);
    assert_int_equal(off.speedup_us, 0);
    if (on.lag_us > 2 * PTV_S || on.speedup_us == 0)
      fail_msg("seed %llu: with live_catchup the lag is %llu us (sped up %llu us)",
               (unsigned long long)seed, (unsigned long long)on.lag_us,
               (unsigned long long)on.speedup_us);
    assert_true(on.lag_us >= 1 * PTV_S + CHUNK_US);
    assert_true(on.chunks_missed <= off.chunks_missed + 2);
  }
}

/* A viewer with live_catchup pauses for a late chunk by at most half its
 * buffer (here 2 chunks of its 1 s), not LATE_STEP (4) chunks: it asked for
 * low latency. Its data is cut for 3 s; its pauses then average 500 ms at
 * most, against more without live_catchup. */
static ptv_node_stats cut_run(int catchup, uint64_t seed, ptv_tstamp *won_before) {
  const int v = FIRST_PEER;
  harness *h = h_new_uniform(5, 2000, 2000, seed);
  for (int i = FIRST_PEER; i < h->nn; i++) h_set_buffer(h, i, 1 * PTV_S);
  ptv_node_config c = *ptv_node_config_get(h->node[v]);
  c.live_catchup = (uint8_t)catchup;
  ptv_node_free(h->node[v]);
  h->node[v] = ptv_node_new(&c, &node_cbs, &h->ctx[v]);
  assert_non_null(h->node[v]);
  h_run_until(h, 10 * PTV_S);
  assert_int_equal(h_stats(h, v).stalls, 0);
  *won_before = h_stats(h, v).speedup_us; /* from a start later than planned */
  h->drop_bulk_to_after[v] = 10 * PTV_S;
  h_run_until(h, 13 * PTV_S);
  h->drop_bulk_to_after[v] = PTV_TSTAMP_MAX;
  h_run_until(h, 30 * PTV_S);
  ptv_node_stats st = h_stats(h, v);
  h_assert_clean(h);
  h_free(h);
  return st;
}

static void test_live_catchup_pause(void **state) {
  (void)state;
  for (uint64_t seed = 45; seed <= 46; seed++) {
    ptv_tstamp w0, w1;
    ptv_node_stats off = cut_run(0, seed, &w0), on = cut_run(1, seed, &w1);
    on.speedup_us -= w1;
    assert_true(off.stalls >= 1 && on.stalls >= 1);
    /* stall_us is the pause not yet won back: add what catch-up won back */
    /* (a re-anchoring pause to the partners' point may be shorter) */
    if (off.stall_us <= (ptv_tstamp)off.stalls * 2 * CHUNK_US || off.speedup_us != 0 ||
        on.stall_us + on.speedup_us > (ptv_tstamp)on.stalls * 2 * CHUNK_US)
      fail_msg("seed %llu: paused %llu us in %u stalls without catch-up, %llu + %llu won back "
               "in %u with",
               (unsigned long long)seed, (unsigned long long)off.stall_us, off.stalls,
               (unsigned long long)on.stall_us, (unsigned long long)on.speedup_us, on.stalls);
  }
}

static void test_live_catchup(void **state) {
  (void)state;
  const ptv_tstamp target = 2 * PTV_S, step = CHUNK_US / 10;
  for (uint64_t seed = 41; seed <= 42; seed++) {
    ptv_node_stats off[3], on[3], cleared[3];
    catchup_run(0, 0, seed, off);
    catchup_run(target, 0, seed, on);
    catchup_run(0, 1, seed, cleared);
    /* Without a target: no speed-up, it stays about 8 s behind. */
    assert_true(off[2].playing && on[2].playing);
    assert_int_equal(off[2].speedup_us, 0);
    assert_true(off[2].lag_us >= 7 * PTV_S);
    /* Target 0 set over another one is off as well: the very same run. */
    assert_int_equal(cleared[2].speedup_us, 0);
    assert_int_equal(cleared[2].lag_us, off[2].lag_us);
    assert_int_equal(cleared[2].chunks_due, off[2].chunks_due);
    assert_int_equal(cleared[2].chunks_missed, off[2].chunks_missed);
    /* With it: the lag came down, not below the target, with nothing missed
     * that the run without missed too. */
    if (on[2].speedup_us == 0 || on[2].lag_us >= off[2].lag_us)
      fail_msg("seed %llu: lag %llu us with a target (sped up %llu us), %llu us without",
               (unsigned long long)seed, (unsigned long long)on[2].lag_us,
               (unsigned long long)on[2].speedup_us, (unsigned long long)off[2].lag_us);
    assert_true(on[0].lag_us >= 7 * PTV_S); /* it did start far behind */
    assert_true(on[2].lag_us + 4 * PTV_S <= off[2].lag_us);
    assert_true(on[2].lag_us >= target);
    assert_true(on[2].chunks_missed <= off[2].chunks_missed);
    if (on[2].stalls == 0) {
      /* No pause: the lag went down by exactly what was sped up, to the target. */
      assert_int_equal(on[2].lag_us + on[2].speedup_us, on[0].lag_us + on[0].speedup_us);
      assert_true(on[2].lag_us < target + step);
    }
    /* Once there it stops speeding up, and plays in real time again. */
    assert_int_equal(on[2].speedup_us, on[1].speedup_us);
    assert_int_equal(on[2].lag_us, on[1].lag_us);
    assert_int_equal(on[2].chunks_due - on[1].chunks_due, off[2].chunks_due - off[1].chunks_due);
    /* Faster play: more chunks played in the same time. */
    assert_true(on[1].chunks_due > off[1].chunks_due);

    /* A target closer to live than the stream allows (1 us): it speeds up
     * only while SPEEDUP_AHEAD (4) chunks beyond the one played are in hand,
     * so it never plays ahead of the data: it misses nothing more, and stays
     * more than those chunks behind live. */
    ptv_node_stats near[3];
    catchup_run(1, 0, seed, near);
    assert_true(near[2].speedup_us > on[2].speedup_us);
    assert_true(near[2].lag_us < on[2].lag_us);
    assert_true(near[2].chunks_missed <= off[2].chunks_missed);
    assert_true(near[2].lag_us >= 5 * CHUNK_US - step);
  }
}

/* ---- 9. determinism ------------------------------------------------------ */

static void run_once(uint64_t seed, uint64_t *hash, uint64_t *nsent,
                     uint64_t *due_sum) {
  harness *h = h_new_uniform(6, 1000, 2000, seed);
  h_run_until(h, 6 * PTV_S);
  *hash = h->hash;
  *nsent = h->nsent;
  *due_sum = 0;
  for (int i = FIRST_PEER; i < h->nn; i++) {
    ptv_node_stats st = h_stats(h, i);
    *due_sum = *due_sum * 31 + st.chunks_due * 7 + st.chunks_missed + st.bytes_up +
               st.ctrl_bytes_up;
  }
  h_free(h);
}

static void test_determinism(void **state) {
  (void)state;
  uint64_t h1, n1, d1, h2, n2, d2, h3, n3, d3;
  run_once(9, &h1, &n1, &d1);
  run_once(9, &h2, &n2, &d2);
  assert_true(n1 > 1000);
  assert_int_equal(n1, n2);
  assert_int_equal(h1, h2);
  assert_int_equal(d1, d2);
  /* The hash does see the randomness: another seed, another run. */
  run_once(10, &h3, &n3, &d3);
  assert_int_not_equal(h1, h3);
}

static int teardown(void **state) {
  (void)state;
  for (int k = 0; k < MAX_LIVE; k++)
    if (g_live[k]) h_free(g_live[k]);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_join, teardown),
      cmocka_unit_test_teardown(test_streaming_ample, teardown),
      cmocka_unit_test_teardown(test_playout_never_stalls, teardown),
      cmocka_unit_test_teardown(test_playout_reanchor, teardown),
      cmocka_unit_test_teardown(test_playout_catchup, teardown),
      cmocka_unit_test_teardown(test_playout_never_stalls_data_cut, teardown),
      cmocka_unit_test_teardown(test_late_budget_remainder, teardown),
      cmocka_unit_test_teardown(test_upload_pacing, teardown),
      cmocka_unit_test_teardown(test_partner_failure, teardown),
      cmocka_unit_test_teardown(test_partner_unanswered, teardown),
      cmocka_unit_test_teardown(test_malformed_input, teardown),
      cmocka_unit_test_teardown(test_graceful_leave, teardown),
      cmocka_unit_test_teardown(test_source, teardown),
      cmocka_unit_test_teardown(test_select_honoured, teardown),
      cmocka_unit_test_teardown(test_offer_window_slides, teardown),
      cmocka_unit_test_teardown(test_source_refuses_at_once, teardown),
      cmocka_unit_test_teardown(test_refused_select_offered_again, teardown),
      cmocka_unit_test_teardown(test_promise_hold, teardown),
      cmocka_unit_test_teardown(test_determinism, teardown),
      cmocka_unit_test_teardown(test_stripes_push, teardown),
      cmocka_unit_test_teardown(test_stripes_make_before_break, teardown),
      cmocka_unit_test_teardown(test_stripes_unasked_grant, teardown),
      cmocka_unit_test_teardown(test_stripes_grant_hook, teardown),
      cmocka_unit_test_teardown(test_stripes_evict, teardown),
      cmocka_unit_test_teardown(test_stripes_evict_crosses_request, teardown),
      cmocka_unit_test_teardown(test_stripes_load_hint, teardown),
      cmocka_unit_test_teardown(test_stripes_newcomer_pull, teardown),
      cmocka_unit_test_teardown(test_stripes_push_first, teardown),
      cmocka_unit_test_teardown(test_stripes_push_order, teardown),
      cmocka_unit_test_teardown(test_stripes_backfill, teardown),
      cmocka_unit_test_teardown(test_source_repush_after_crash, teardown),
      cmocka_unit_test_teardown(test_stripes_silent_parent, teardown),
      cmocka_unit_test_teardown(test_stripes_nonup_defer, teardown),
      cmocka_unit_test_teardown(test_stripes_nonup_poor, teardown),
      cmocka_unit_test_teardown(test_make_room, teardown),
      cmocka_unit_test_teardown(test_stripes_prefetch, teardown),
      cmocka_unit_test_teardown(test_stripes_start_wait_near_capacity, teardown),
      cmocka_unit_test_teardown(test_stripes_prefetch_deadline, teardown),
      cmocka_unit_test_teardown(test_stripes_api_errors, teardown),
      cmocka_unit_test_teardown(test_stripes_suspect_report, teardown),
      cmocka_unit_test_teardown(test_stripes_offers_skip_parented, teardown),
      cmocka_unit_test_teardown(test_live_catchup, teardown),
      cmocka_unit_test_teardown(test_slowdown_near_capacity, teardown),
      cmocka_unit_test_teardown(test_live_catchup_config, teardown),
      cmocka_unit_test_teardown(test_live_catchup_pause, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
