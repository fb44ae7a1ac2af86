/* ptv_tracker.c -- see ptv_tracker.h. Members live in a dense array (O(1)
 * random sampling, swap-remove) indexed by an open-addressing hash on id. */
#include "ptv_tracker.h"
#include "ptv_err.h"
#include <stdlib.h>
#include <string.h>

#define SWEEP_US (5 * PTV_S)
#define EMPTY UINT32_MAX
#define REPORTS_MAX 64   /* suspects with reports pending, at once */
#define REPORTERS_MAX 8

/* Reports against one peer not yet banned: distinct reporters. */
typedef struct {
  ptv_id suspect;
  uint8_t n;
  ptv_id by[REPORTERS_MAX];
} report;

typedef struct {
  ptv_peer_desc d;
  uint8_t role;
  ptv_tstamp last_seen;
} member;

struct ptv_tracker {
  ptv_tracker_config cfg;
  ptv_tracker_callbacks cb;
  void *user;
  member *m;
  uint32_t n, cap;
  uint32_t *hash; /* slot -> index into m, EMPTY if free */
  uint32_t hcap;  /* power of two, >= 2 * cap */
  ptv_id source;
  ptv_chunk_id live;
  uint64_t up_sum; /* declared upload of all members (see ptv_tracker_capacity) */
  ptv_tstamp next_sweep;
  report rep[REPORTS_MAX];
  uint32_t nrep;
  ptv_id *banned;
  uint32_t nbanned, capbanned;
};

/* Fibonacci hashing: the high bits of the product mix every bit of id. */
static uint32_t hslot(const ptv_tracker *t, ptv_id id) {
  return (uint32_t)(((uint64_t)(id * 2654435761u) * t->hcap) >> 32);
}

static uint32_t hfind(const ptv_tracker *t, ptv_id id) {
  for (uint32_t s = hslot(t, id);; s = (s + 1) & (t->hcap - 1)) {
    if (t->hash[s] == EMPTY) return EMPTY;
    if (t->m[t->hash[s]].d.id == id) return s;
  }
}

static void hput(ptv_tracker *t, ptv_id id, uint32_t idx) {
  uint32_t s = hslot(t, id);
  while (t->hash[s] != EMPTY) s = (s + 1) & (t->hcap - 1);
  t->hash[s] = idx;
}

/* Deletion with backward shift keeps probe chains intact without tombstones. */
static void hdel(ptv_tracker *t, uint32_t s) {
  uint32_t mask = t->hcap - 1;
  t->hash[s] = EMPTY;
  for (uint32_t j = (s + 1) & mask; t->hash[j] != EMPTY; j = (j + 1) & mask) {
    uint32_t idx = t->hash[j];
    uint32_t home = hslot(t, t->m[idx].d.id);
    /* Move idx back to s if its home is not cyclically in (s, j]. */
    if (((j - home) & mask) >= ((j - s) & mask)) {
      t->hash[s] = idx;
      t->hash[j] = EMPTY;
      s = j;
    }
  }
}

static int grow(ptv_tracker *t) {
  uint32_t ncap = t->cap ? t->cap * 2 : 1024;
  member *nm = realloc(t->m, ncap * sizeof(member));
  if (!nm) return PTV_ERR_NOMEM;
  t->m = nm;
  uint32_t nh = ncap * 2;
  uint32_t *h = malloc(nh * sizeof(uint32_t));
  if (!h) return PTV_ERR_NOMEM;
  memset(h, 0xff, nh * sizeof(uint32_t));
  free(t->hash);
  t->hash = h;
  t->hcap = nh;
  t->cap = ncap;
  for (uint32_t i = 0; i < t->n; i++) hput(t, t->m[i].d.id, i);
  return 0;
}

static void remove_member(ptv_tracker *t, ptv_id id) {
  uint32_t s = hfind(t, id);
  if (s == EMPTY) return;
  uint32_t idx = t->hash[s];
  t->up_sum -= t->m[idx].d.upload_kbps;
  hdel(t, s);
  uint32_t last = --t->n;
  if (idx != last) {
    uint32_t ls = hfind(t, t->m[last].d.id);
    t->m[idx] = t->m[last];
    t->hash[ls] = idx;
  }
  if (id == t->source) t->source = PTV_ID_NONE;
}

static member *touch(ptv_tracker *t, ptv_id id, ptv_tstamp now) {
  uint32_t s = hfind(t, id);
  if (s != EMPTY) {
    t->m[t->hash[s]].last_seen = now;
    return &t->m[t->hash[s]];
  }
  if (t->n == t->cap && grow(t) != 0) return NULL;
  member *m = &t->m[t->n];
  memset(m, 0, sizeof(*m));
  m->d.id = id;
  m->last_seen = now;
  hput(t, id, t->n);
  t->n++;
  return m;
}

static void send_peers(ptv_tracker *t, ptv_id to) {
  ptv_msg r = {.type = PTV_MSG_PEERS};
  r.u.peers.live = t->live;
  r.u.peers.chunk_us = t->cfg.chunk_us;
  r.u.peers.cap_kbps = ptv_tracker_capacity(t);
  uint8_t k = 0;
  /* The source is always offered; it refuses when its slots are full. */
  if (t->source != PTV_ID_NONE && t->source != to) {
    uint32_t s = hfind(t, t->source);
    if (s != EMPTY) r.u.peers.descs[k++] = t->m[t->hash[s]].d;
  }
  uint32_t want = t->cfg.sample;
  for (uint32_t tries = 0; k < want && tries < 4 * want && t->n > 0; tries++) {
    const member *m = &t->m[t->cb.rand(t->user) % t->n];
    if (m->d.id == to || m->d.id == t->source) continue;
    int dup = 0;
    for (uint8_t i = 0; i < k && !dup; i++) dup = r.u.peers.descs[i].id == m->d.id;
    if (!dup) r.u.peers.descs[k++] = m->d;
  }
  r.u.peers.n = k;
  uint8_t buf[PTV_WIRE_HDRLEN + 13 + PTV_WIRE_MAX_DESCS * 10];
  int len = ptv_wire_encode(buf, sizeof(buf), &r);
  if (len > 0) t->cb.send(t->user, to, buf, (size_t)len);
}

/* The most recent bans, to a joiner: gossip may still carry a banned
 * peer's address, and the joiner must not take it as a partner. */
#define BANS_TOLD 32
static void send_bans(ptv_tracker *t, ptv_id to) {
  uint32_t first = t->nbanned > BANS_TOLD ? t->nbanned - BANS_TOLD : 0;
  for (uint32_t i = first; i < t->nbanned; i++) {
    ptv_msg r = {.type = PTV_MSG_REPORT};
    r.u.report.suspect = t->banned[i];
    r.u.report.reason = PTV_REPORT_BAD_CHUNK;
    uint8_t buf[PTV_WIRE_HDRLEN + 8];
    int len = ptv_wire_encode(buf, sizeof(buf), &r);
    if (len > 0) t->cb.send(t->user, to, buf, (size_t)len);
  }
}

int ptv_tracker_banned(const ptv_tracker *t, ptv_id id) {
  for (uint32_t i = 0; i < t->nbanned; i++)
    if (t->banned[i] == id) return 1;
  return 0;
}

int ptv_tracker_ban(ptv_tracker *t, ptv_id id, ptv_tstamp now) {
  if (ptv_tracker_banned(t, id)) return 0;
  if (t->nbanned == t->capbanned) {
    uint32_t ncap = t->capbanned ? 2 * t->capbanned : 16;
    ptv_id *nb = realloc(t->banned, ncap * sizeof(*nb));
    if (!nb) return PTV_ERR_NOMEM;
    t->banned = nb;
    t->capbanned = ncap;
  }
  t->banned[t->nbanned++] = id;
  remove_member(t, id);
  /* Tell every member, so those that never received a forgery drop the
   * banned peer too (the source first of all: it may still push to it). */
  ptv_msg r = {.type = PTV_MSG_REPORT};
  r.u.report.suspect = id;
  r.u.report.reason = PTV_REPORT_BAD_CHUNK;
  uint8_t buf[PTV_WIRE_HDRLEN + 8];
  int len = ptv_wire_encode(buf, sizeof(buf), &r);
  for (uint32_t i = 0; len > 0 && i < t->n; i++) t->cb.send(t->user, t->m[i].d.id, buf, (size_t)len);
  for (uint32_t i = 0; i < t->nrep; i++)
    if (t->rep[i].suspect == id) {
      t->rep[i] = t->rep[--t->nrep];
      break;
    }
  if (t->cb.on_ban) t->cb.on_ban(t->user, id, now);
  return 0;
}

/* A member says `suspect` sent it a forged chunk. Counted once per
 * reporter; enough distinct reporters ban the suspect. */
static void on_report(ptv_tracker *t, ptv_id from, ptv_id suspect, ptv_tstamp now) {
  /* The source is never banned by reports: it signs what it sends, and a
   * pair of colluding peers must not be able to take a channel down. */
  if (suspect == from || suspect == t->source || hfind(t, from) == EMPTY ||
      ptv_tracker_banned(t, suspect))
    return;
  report *r = NULL;
  for (uint32_t i = 0; i < t->nrep && !r; i++)
    if (t->rep[i].suspect == suspect) r = &t->rep[i];
  if (!r) {
    if (t->nrep == REPORTS_MAX) return; /* a flood of reports: the oldest stand */
    r = &t->rep[t->nrep++];
    memset(r, 0, sizeof(*r));
    r->suspect = suspect;
  }
  for (uint8_t i = 0; i < r->n; i++)
    if (r->by[i] == from) return;
  if (r->n < REPORTERS_MAX) r->by[r->n++] = from;
  if (r->n >= t->cfg.ban_reports) ptv_tracker_ban(t, suspect, now);
}

int ptv_tracker_recv(ptv_tracker *t, ptv_id from, const uint8_t *buf, size_t len,
                     ptv_tstamp now) {
  ptv_msg m;
  int rv = ptv_wire_decode(&m, buf, len);
  if (rv < 0) return rv;
  if (from == PTV_ID_NONE) return PTV_ERR_INVALID_ARG;
  switch (m.type) {
  case PTV_MSG_JOIN: {
    if (ptv_tracker_banned(t, from)) break;
    member *e = touch(t, from, now);
    if (!e) return PTV_ERR_NOMEM;
    e->d.nat = m.u.join.nat;
    t->up_sum += (uint64_t)m.u.join.upload_kbps - e->d.upload_kbps;
    e->d.upload_kbps = m.u.join.upload_kbps;
    e->role = m.u.join.role;
    if (m.u.join.role == PTV_ROLE_SOURCE) t->source = from;
    else if (t->source == from) t->source = PTV_ID_NONE; /* re-joined as a peer */
    send_peers(t, from);
    send_bans(t, from);
    break;
  }
  case PTV_MSG_HEARTBEAT: {
    uint32_t s = hfind(t, from);
    if (s == EMPTY) break; /* unknown: it will JOIN again */
    t->m[t->hash[s]].last_seen = now;
    if (from == t->source) t->live = m.u.heartbeat.newest;
    break;
  }
  case PTV_MSG_LEAVE:
    remove_member(t, from);
    break;
  case PTV_MSG_REPORT:
    on_report(t, from, m.u.report.suspect, now);
    break;
  default:
    break;
  }
  return 0;
}

ptv_tstamp ptv_tracker_get_expiry(const ptv_tracker *t) { return t->next_sweep; }

void ptv_tracker_handle_expiry(ptv_tracker *t, ptv_tstamp now) {
  if (now < t->next_sweep) return;
  for (uint32_t i = 0; i < t->n;) {
    /* Written as a difference so a huge expire_us cannot wrap around. */
    if (now > t->m[i].last_seen && now - t->m[i].last_seen > t->cfg.expire_us)
      remove_member(t, t->m[i].d.id);
    else i++;
  }
  t->next_sweep = now + SWEEP_US;
}

ptv_tracker *ptv_tracker_new(const ptv_tracker_config *c,
                             const ptv_tracker_callbacks *cb, void *user) {
  if (!cb || !cb->send || !cb->rand) return NULL;
  ptv_tracker *t = calloc(1, sizeof(*t));
  if (!t) return NULL;
  t->cfg = *c;
  if (t->cfg.sample == 0) t->cfg.sample = 20;
  if (t->cfg.sample > PTV_WIRE_MAX_DESCS - 1) t->cfg.sample = PTV_WIRE_MAX_DESCS - 1;
  if (t->cfg.expire_us == 0) t->cfg.expire_us = 60 * PTV_S;
  if (t->cfg.ban_reports == 0) t->cfg.ban_reports = 2;
  t->cb = *cb;
  t->user = user;
  t->source = PTV_ID_NONE;
  t->live = UINT32_MAX;
  t->next_sweep = SWEEP_US;
  if (grow(t) != 0) {
    ptv_tracker_free(t);
    return NULL;
  }
  return t;
}

void ptv_tracker_free(ptv_tracker *t) {
  if (!t) return;
  free(t->m);
  free(t->hash);
  free(t->banned);
  free(t);
}

uint32_t ptv_tracker_nmembers(const ptv_tracker *t) { return t->n; }
ptv_chunk_id ptv_tracker_live(const ptv_tracker *t) { return t->live; }

uint32_t ptv_tracker_capacity(const ptv_tracker *t) {
  uint64_t sum = t->up_sum;
  uint32_t peers = t->n;
  uint32_t s = t->source != PTV_ID_NONE ? hfind(t, t->source) : EMPTY;
  if (s != EMPTY) {
    sum -= t->m[t->hash[s]].d.upload_kbps;
    peers--;
  }
  if (peers == 0) return 0;
  uint64_t c = sum / peers;
  return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}
