/* ptv_node.c -- the peer (and source) engine. See ptv_node.h. */
#include "ptv_node.h"
#include "ptv_err.h"
#include "ptv_source.h"
#include "ptv_strategy.h"
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Protocol timing. Chosen for loopback-to-continental latencies (<= 300 ms
 * RTT); documented in docs/ARCHITECTURE.md. */
#define MAINT_US (500 * PTV_MS)       /* maintenance / strategy tick */
#define GOSSIP_US (2 * PTV_S)         /* Cyclon shuffle period */
#define HEARTBEAT_US (20 * PTV_S)     /* peer -> tracker */
#define SRC_HEARTBEAT_US (2 * PTV_S)  /* source -> tracker (live point) */
#define JOIN_RETRY_US (2 * PTV_S)
#define PARTNER_TIMEOUT_US (3 * PTV_S) /* silent partner is presumed gone */
#define STRIPE_SILENT_US (1 * PTV_S)  /* a stripe parent or child this quiet has likely crashed */
#define CONNECT_TIMEOUT_US (2 * PTV_S)
#define BM_KEEPALIVE_US (1 * PTV_S)
#define STARVE_US (2 * PTV_S)         /* no new chunk for this long: starving */
#define REJOIN_US (1 * PTV_S)         /* at most one tracker re-join per this */
#define USELESS_US (4 * PTV_S)        /* partner gave nothing useful this long */
#define STARVE_DROP 4                 /* useless partners a starving peer drops per tick */
#define CHOKE_US (400 * PTV_MS)       /* back off a partner that refused */
#define START_RETRY_US (3 * PTV_S)    /* start chunk never came: pick again */
#define START_WAIT_US (1500 * PTV_MS) /* longest wait for the prefetch */
#define PREFETCH_MAX_US (1 * PTV_S)   /* chunks in hand before playback starts */
#define STRIPE_START_WAIT_US (3500 * PTV_MS) /* ... for a stripe peer, and its shortest (see start_wait) */
#define STRIPE_PREPLAY_US (2 * PTV_S) /* a stripe newcomer pulls this far past its prefetch */
#define NEAR_CAP_START_WAIT_US (7500 * PTV_MS) /* ... near capacity (see start_wait) */
#define NEAR_CAP_PCT 125 /* near capacity: resource index below 1.25 */
#define NEWCOMER_LEAD_US (600 * PTV_MS) /* a newcomer's pull leaves this early (see on_request) */
#define ORPHAN_LEAD_US (1200 * PTV_MS) /* ... and a pull on a stripe without a parent */
#define REQ_SLACK_US (600 * PTV_MS)   /* request timeout beyond expected time */
#define REQ_MARGIN_US (300 * PTV_MS)  /* a round trip's worth of safety */
#define STARTUP_SLACK_US (1 * PTV_S)  /* deadline slack before playback starts */
#define STRIPE_STARTUP_SLACK_US (300 * PTV_MS) /* ... for a stripe peer (see deadline_of) */

/* Buffer-map bits sent and kept per partner. 192, not 128: near capacity
 * (0.90 x r_max) a stripe's delay + 4 deviations is 30-40 s, and the
 * weakest peers that paused past what a 128-bit map spans (32 s, less the
 * slow-down's 4 s margin) missed chunks their partners held (steady at 632
 * kbps, seeds 1-12, share >= 0.99: 10 of 12 held, seeds 9 / 10 0.981 /
 * 0.988; with 192 bits 12 of 12, the lowest 0.993; lag p95 30 -> 40-44 s;
 * the other scenarios unchanged). */
#define MAP_BITS PTV_NODE_MAP_BITS
_Static_assert(MAP_BITS % 64 == 0 && MAP_BITS <= PTV_WIRE_MAX_BITMAP_BITS &&
                   MAP_BITS <= PTV_CHUNKSET_BITS,
               "a map is whole words, fits a message and what we hold");
#define UPQ_MAX 32     /* queued uploads: requests, selections, pushes */
#define DLQ_MAX 16     /* chunks promised to us or requested by us */
#define PER_PARTNER_REQ 2 /* our pulls in flight to one partner */
#define LACK_CACHE ((int)MAP_BITS) /* rarity cached this many chunks back from our newest */
#define PULL_MARGIN_US (500 * PTV_MS) /* pull what is due within 2 chunks + this */
#define SRC_WINDOW 16  /* chunks the source still injects */
#define LATE_BUDGET 6  /* late play may move the clock back by this many buffers */
#define LATE_STEP 4    /* chunks the clock moves back on a late play (a rebuffer) */
#define CATCHUP_RUN 8  /* missed in a row before catching up is considered */
#define CATCHUP_GAP 8  /* chunks the fed partners must play ahead of us */
#define REANCHOR 6     /* re-anchoring may move the clock back by this many buffers */
#define SPEEDUP_PCT 10 /* live catch-up: play at most this % faster than real time */
#define SPEEDUP_AHEAD 4 /* ... and only with this many chunks in hand beyond the one played */
#define SLOWDOWN_PCT 10 /* near capacity: play at most this % slower than real time ... */
#define SLOWDOWN_MAP_MARGIN_US (4 * PTV_S) /* ... to a lag this far inside a buffer map's span */
#define RARITY_SCAN 48 /* chunks back from the newest a peer considers offering */
_Static_assert(RARITY_SCAN <= 64, "useful_for scans one 64-bit word");
#define OFFER_IDS 4    /* chunks per offer */
#define SELECT_MAX 1   /* chunks a receiver takes from one offer */
#define OFFERS_OUT 8   /* offers a sender has in flight */
#define OFFER_TIMEOUT_US (1 * PTV_S)
#define OFFER_AHEAD_US (300 * PTV_MS) /* offer again this long before idle */
#define OFFER_WINDOW_US (600 * PTV_MS) /* offers in flight cover this much sending */
#define LOST_REPUSH_US (3 * PTV_S) /* see source_lost_child */
#define PUSH_HOLD 8    /* chunk times a stripe push may wait in the upload queue */
#ifndef PROMISE_HOLD
#define PROMISE_HOLD 2 /* chunk times a selected offer may wait ... */
#endif
#ifndef PROMISE_MAX
#define PROMISE_MAX (500 * PTV_MS) /* ... at least 200 ms, at most this */
#endif
#define PULL_OVER_PUSH_US (250 * PTV_MS) /* see on_request */
#ifndef BACKFILL
#define BACKFILL 2     /* chunks per stripe a new child is sent from before */
#endif
#define BACKFILL_MOVED 16 /* ... one that moved to us (fed elsewhere): from its playback point */
#define BACKFILL_LEAD_US (1500 * PTV_MS) /* a moved child's backfill leaves this before it is due */
#define SUSPECT_US (10 * PTV_S) /* a free-rider warning rides in our maps this long */
#define BLOCK_MAX 8               /* peers cut off for bad chunks, remembered at once */
#define BLOCK_US (600 * PTV_S)    /* ... for this long */
#define KEEP_DEFAULT_US (8 * PTV_S) /* payload mode: payloads kept behind the newest */
#define OVERDUE_SLACK_US (300 * PTV_MS) /* a stripe chunk this late may come from anyone */
#ifndef LATE_HOP_US
#define LATE_HOP_US (400 * PTV_MS) /* a tier deeper is this much later, or less */
#endif
#ifndef REPAIR_LEAD_US
#define REPAIR_LEAD_US (1 * PTV_S) /* ... and so may one due this soon (2 s: repairs crowd out pushes) */
#endif

enum { P_FREE = 0, P_PENDING = 1, P_UP = 2 };
#define NODE_STRIPES_MAX 8 /* stripes the engine keeps depths for */

/* Zeroes the header and one union member of a message, not all of ptv_msg
 * (792 bytes): these are built several times per chunk per peer. */
#define MSG_INIT(m, t, member)                                                   \
  do {                                                                           \
    memset(&(m), 0, offsetof(ptv_msg, u) + sizeof((m).u.member));                \
    (m).type = (t);                                                              \
  } while (0)

typedef struct {
  /* First two cache lines: what the per-message scans over all partners
   * read (offers, pulls, lookups). The struct is padded to three lines and
   * the array aligned, so they are two lines. */
  _Alignas(64) ptv_id id;
  uint8_t nat;
  uint8_t state;
  uint8_t outstanding; /* our pulls in flight to it (not its promises) */
  uint8_t has_map;
  uint32_t upload_kbps;
  ptv_chunk_id newest;
  ptv_chunk_id play; /* its playback point, PTV_ID_NONE if unknown */
  ptv_chunk_id map_base;
  ptv_tstamp offer_until; /* our offer to it is pending until then */
  uint64_t map[MAP_BITS / 64];
  ptv_tstamp choke_until;
  uint16_t queue_ms;
  uint8_t free_slots;       /* stripe slots it can still grant (its last map) */
  uint8_t kids[NODE_STRIPES_MAX]; /* its children per stripe (its last map) */
  ptv_tstamp out_since;     /* when we last granted it a stripe (cold: the
                               second line has room) */
  /* third line */
  _Alignas(64) ptv_tstamp last_heard;
  ptv_tstamp last_useful, since;
  ptv_tstamp sub_since;     /* when it last granted us a stripe */
  uint32_t chunks_from, chunks_to;
  uint32_t bid_kbps;        /* its bid, when it is our child */
  /* stripes (see ptv_strategy.h): what we take from it and it from us */
  uint16_t sub_in, sub_out, sub_ask;
  uint16_t price_kbps;
  uint16_t deliv;           /* share of its stripes' chunks that came from it
                               first, x 65535 (moving average) */
  uint8_t depth[NODE_STRIPES_MAX]; /* its hops from the source, per stripe */
} partner;
_Static_assert(sizeof(partner) == 192, "a partner is three cache lines");

typedef struct {
  ptv_chunk_id id;
  ptv_id to;
  ptv_tstamp deadline;
  uint32_t size;
  uint8_t push;
  uint8_t promise;   /* a peer's selected offer: kept or refused by expire */
  ptv_tstamp queued;
  ptv_tstamp expire; /* given up (BUSY TOO_LATE) after this; = deadline unless pushed
                        or promised (promise_hold) */
} upreq;

/* Payload mode: one chunk's bytes and the source's signature. */
typedef struct {
  ptv_chunk_id id;
  uint32_t len;
  uint8_t *data;          /* NULL: slot empty */
  ptv_tstamp ts;          /* the source's time stamp, forwarded unchanged */
  uint8_t flags;          /* KEYFRAME | STALLED | SIGNED */
  uint8_t sig[PTV_WIRE_SIGLEN];
} pl_slot;

typedef struct {
  ptv_chunk_id id;
  ptv_id from;
  ptv_tstamp timeout;
  uint8_t offered; /* promised by an offer (else pulled by us) */
} dlreq;

struct ptv_node {
  ptv_node_config cfg;
  ptv_node_callbacks cb;
  void *user;
  const ptv_strategy *strat;
  uint8_t started, left, playing, start_decided;
  /* The last offer round found no partner lacking anything we hold: skip
   * the scan until a map, a chunk, a partner or an expiring offer changes
   * that (most calls of a peer with a free uplink find nothing to offer). */
  uint8_t offers_idle;
  ptv_tstamp idle_recheck;
  uint8_t nupq, ndlq, maxp;
  partner *p;
  ptv_sampler view;
  ptv_chunkset have;
  uint32_t meta[PTV_CHUNKSET_BITS]; /* size | flags << 28, by ring slot */
  uint8_t *copies; /* source only: copies sent of each chunk, by ring slot */
  ptv_source src;
  /* playout: chunk k is due at play_t0 + (k - start_chunk) * chunk_us */
  ptv_chunk_id start_chunk, play_next;
  ptv_tstamp play_t0, decided_at, epoch; /* epoch: ts of chunk 0 */
  uint8_t epoch_known;
  uint32_t chunk_us, avg_chunk;
  ptv_tstamp t_join, t_gossip, t_maint, t_heartbeat, t_bm_keep, t_bm_flush;
  ptv_tstamp busy_until, last_new_chunk, last_rejoin, join_time;
  ptv_tstamp last_now; /* time of the latest call into the engine */
  ptv_chunk_id live_hint, late_id;
  uint32_t miss_run; /* chunks missed in a row */
  ptv_tstamp live_hint_t, shift_us;
  uint32_t swarm_kbps; /* peers' mean upload, as the tracker last told; 0 unknown */
  upreq upq[UPQ_MAX];
  dlreq dlq[DLQ_MAX];
  ptv_node_stats st;
  void *sdata;           /* the strategy's per-node state */
  uint8_t nstripes;
  ptv_tstamp tree_delay; /* source-to-us delay of chunks pushed by stripe parents */
  ptv_tstamp stripe_delay[NODE_STRIPES_MAX]; /* the same, per stripe */
  ptv_tstamp stripe_dev[NODE_STRIPES_MAX];   /* and its mean deviation */
  ptv_tstamp target_lag; /* live catch-up target, 0: none */
  /* The source, per stripe: chunks since lost_from[s] may have gone only to
   * children that crashed; until lost_until[s] they go again to every child
   * of the stripe that lacks them (see source_lost_child). */
  ptv_tstamp lost_from[NODE_STRIPES_MAX], lost_until[NODE_STRIPES_MAX];
  uint16_t unfed_told;   /* stripes our maps last said we are fed on none */
  uint8_t slot_pct;      /* share of the declared upload given out as stripe slots */
  ptv_tstamp nonup_defer; /* pulls of partners that can pass on no stripe wait this much longer */
  ptv_tstamp nonup_poor; /* and by their played share x this: the poorest of them first */
  uint8_t push_kids;     /* rank a chunk's pushes by the children's children first */
  uint16_t played_avg;   /* share of the chunks lately due that we played, x 65535 */
  pl_slot *pl;           /* payload mode: by ring slot (PTV_CHUNKSET_BITS) */
  ptv_chunk_id pl_lo;    /* no payload is held below this id */
  uint8_t *txbuf;        /* payload mode: an encoded chunk on its way out */
  size_t txcap;
  ptv_id blocked[BLOCK_MAX]; /* sent us bad chunks: refused until blocked_until */
  ptv_tstamp blocked_until[BLOCK_MAX];
  ptv_id suspect;        /* free-rider warning carried in our maps until suspect_until */
  uint16_t suspect_deliv;
  ptv_tstamp suspect_until;
  /* Partner ids by slot (PTV_ID_NONE: free), in the node's own allocation
   * right after it, followed by the partners: finding a partner by id is
   * done for every message and read one cache line instead of one or two
   * per partner. */
  ptv_id pid[];
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t rnd(ptv_node *n) { return n->cb.rand(n->user); }
static uint64_t rnd_thunk(void *arg) {
  ptv_node *n = arg;
  return n->cb.rand(n->user);
}

static ptv_tstamp tmin(ptv_tstamp a, ptv_tstamp b) { return a < b ? a : b; }

static uint32_t tx_us(uint32_t bytes, uint32_t kbps) {
  if (kbps == 0) return UINT32_MAX;
  return (uint32_t)((uint64_t)bytes * 8000u / kbps);
}

static void send_msg(ptv_node *n, ptv_id to, const ptv_msg *m) {
  uint8_t buf[1024];
  int len = ptv_wire_encode(buf, sizeof(buf), m);
  if (len < 0) return; /* cannot happen for messages we build */
  n->st.ctrl_bytes_up += (uint64_t)len;
  n->cb.send(n->user, to, buf, (size_t)len, 0, 0);
}

static partner *find_partner(ptv_node *n, ptv_id id) {
  if (id == PTV_ID_NONE) return NULL;
  for (int i = 0; i < n->maxp; i++)
    if (n->pid[i] == id) return &n->p[i];
  return NULL;
}

static uint32_t count_partners(const ptv_node *n, int established_only) {
  uint32_t c = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP || (!established_only && n->p[i].state == P_PENDING))
      c++;
  return c;
}

/* The upload capacity we tell others (a free-rider in the simulator claims
 * more than it has; everyone else declares what it has). */
static uint32_t declared_kbps(const ptv_node *n) {
  return n->cfg.claim_kbps ? n->cfg.claim_kbps : n->cfg.upload_kbps;
}

static ptv_peer_desc self_desc(const ptv_node *n) {
  ptv_peer_desc d = {n->cfg.self, n->cfg.nat, 0, declared_kbps(n)};
  return d;
}

static int has_chunk(const ptv_node *n, ptv_chunk_id id) {
  return ptv_chunkset_has(&n->have, id);
}

/* ---- payloads (payload mode) ---------------------------------------------- */

static pl_slot *pl_get(const ptv_node *n, ptv_chunk_id id) {
  if (!n->pl) return NULL;
  pl_slot *sl = &n->pl[id % PTV_CHUNKSET_BITS];
  return sl->data && sl->id == id ? sl : NULL;
}

static void pl_free(ptv_node *n, pl_slot *sl) {
  if (!sl->data) return;
  free(sl->data);
  sl->data = NULL;
  n->st.payloads_held--;
}

/* Releases payloads older than keep_us behind our newest chunk that we no
 * longer need to play: memory stays bounded at a few seconds of stream. */
static void pl_trim(ptv_node *n) {
  if (!n->pl || !n->have.count || !n->chunk_us) return;
  ptv_tstamp keep_us = n->cfg.keep_us ? n->cfg.keep_us : KEEP_DEFAULT_US;
  ptv_chunk_id keep = (ptv_chunk_id)(keep_us / n->chunk_us) + 1;
  if (n->have.newest < keep) return;
  ptv_chunk_id lo = n->have.newest - keep;
  if (n->cfg.role == PTV_ROLE_PEER && n->playing && n->play_next < lo) lo = n->play_next;
  if (n->cfg.role == PTV_ROLE_PEER && !n->playing && n->start_decided && n->start_chunk < lo)
    lo = n->start_chunk;
  if (lo > n->pl_lo + PTV_CHUNKSET_BITS) n->pl_lo = lo - PTV_CHUNKSET_BITS;
  for (; n->pl_lo < lo; n->pl_lo++) {
    pl_slot *sl = &n->pl[n->pl_lo % PTV_CHUNKSET_BITS];
    if (sl->data && sl->id == n->pl_lo) pl_free(n, sl);
  }
}

/* Stores a copy of c's payload and signature. Returns 0 or PTV_ERR_NOMEM. */
static int pl_store(ptv_node *n, const ptv_msg_chunk *c) {
  pl_slot *sl = &n->pl[c->chunk % PTV_CHUNKSET_BITS];
  uint8_t *d = malloc(c->payload_len ? c->payload_len : 1);
  if (!d) return PTV_ERR_NOMEM;
  pl_free(n, sl); /* an id a whole window older: long out of use */
  memcpy(d, c->payload, c->payload_len);
  sl->data = d;
  sl->id = c->chunk;
  sl->len = c->payload_len;
  sl->ts = c->ts_us;
  sl->flags = (uint8_t)(c->flags & PTV_CHUNK_CONTENT_FLAGS);
  if (c->sig) {
    memcpy(sl->sig, c->sig, PTV_WIRE_SIGLEN);
    sl->flags |= PTV_CHUNK_SIGNED;
  }
  n->st.payloads_held++;
  return 0;
}

static int is_blocked(const ptv_node *n, ptv_id id, ptv_tstamp now) {
  for (int i = 0; i < BLOCK_MAX; i++)
    if (n->blocked[i] == id && n->blocked_until[i] > now) return 1;
  return 0;
}

static uint8_t rev8(uint8_t b) {
  b = (uint8_t)((b & 0xF0) >> 4 | (b & 0x0F) << 4);
  b = (uint8_t)((b & 0xCC) >> 2 | (b & 0x33) << 2);
  return (uint8_t)((b & 0xAA) >> 1 | (b & 0x55) << 1);
}

/* The partner's map for ids [from, from+64) as a word (bit i: id from+i). */
static uint64_t map_word(const partner *p, ptv_chunk_id from) {
  if (!p->has_map) return 0;
  int64_t off = (int64_t)from - (int64_t)p->map_base;
  if (off >= (int64_t)MAP_BITS || off <= -64) return 0;
  if (off < 0) return p->map[0] << (unsigned)-off;
  unsigned w = (unsigned)off >> 6, sh = (unsigned)off & 63;
  uint64_t v = p->map[w] >> sh;
  if (sh && w + 1 < MAP_BITS / 64) v |= p->map[w + 1] << (64 - sh);
  return v;
}

static int map_has(const partner *p, ptv_chunk_id id) {
  if (!p->has_map || id < p->map_base || id - p->map_base >= MAP_BITS) return 0;
  uint32_t i = id - p->map_base;
  return (int)((p->map[i >> 6] >> (i & 63)) & 1);
}

/* Deadline of chunk id on our playout clock; before playback starts, chunks
 * are treated as due now (they are what stands between us and starting).
 * A stripe peer's slack is shorter: its suppliers serve by deadline, so a
 * prefetch asked with 1 s of slack came at stream rate, 5 of its 8 chunks
 * when the wait ran out, and the newcomer then played from hand to mouth
 * (churn, 1,000 peers, seeds 1-6: stayers >= 0.99 0.995 / 0.986 / 0.994 /
 * 0.990 / 0.985 / 0.995 -> 0.995 / 0.991 / 0.998 / 0.996 / 0.993 / 0.994;
 * their misses were in their first 8 s of play). */
static ptv_tstamp deadline_of(const ptv_node *n, ptv_chunk_id id, ptv_tstamp now) {
  if (!n->playing) /* we start as soon as start_chunk is here */
    return now + (ptv_tstamp)(id > n->start_chunk ? id - n->start_chunk : 0) * n->chunk_us +
           (n->nstripes ? STRIPE_STARTUP_SLACK_US : STARTUP_SLACK_US);
  if (id < n->start_chunk) return n->play_t0;
  return n->play_t0 + (ptv_tstamp)(id - n->start_chunk) * n->chunk_us;
}

static void release_requests_to(ptv_node *n, ptv_id id) {
  for (int i = 0; i < n->ndlq;) {
    if (n->dlq[i].from == id) n->dlq[i] = n->dlq[--n->ndlq];
    else i++;
  }
  for (int i = 0; i < n->nupq;) {
    if (n->upq[i].to == id) n->upq[i] = n->upq[--n->nupq];
    else i++;
  }
}

static void remove_partner(ptv_node *n, partner *p) {
  n->offers_idle = 0;
  release_requests_to(n, p->id);
  memset(p, 0, sizeof(*p));
  n->pid[p - n->p] = PTV_ID_NONE;
}

/* ---- buffer maps -------------------------------------------------------- */

static ptv_tstamp upload_backlog(const ptv_node *n, ptv_tstamp now);

/* Encodes our buffer map (the same for every partner) into buf; returns its
 * length or a negative PTV_ERR_*. */
static int encode_bm(const ptv_node *n, ptv_tstamp now, uint8_t *buf, size_t cap) {
  uint8_t bits[MAP_BITS / 8];
  ptv_chunk_id from = n->have.base;
  if (n->have.count > 0 && n->have.newest >= from + MAP_BITS)
    from = n->have.newest - MAP_BITS + 1;
  ptv_chunkset_export(&n->have, from, MAP_BITS, bits);
  /* The load hint counts everything queued, stripe pushes too. A request
   * is served by its deadline, after the pushes due sooner: a hint without
   * them told requesters an uplink busy with pushes was idle, so they gave
   * up on it early, asked again elsewhere and often got the chunk twice
   * (simulator, 1,000 peers, seeds 1-3, honest peers >= 0.99 with 20%
   * free-riders: 0.58 / 0.54 / 0.14 -> 0.81 / 0.81 / 0.45). */
  ptv_tstamp backlog = upload_backlog(n, now);
  ptv_msg m;
  MSG_INIT(m, PTV_MSG_BUFFERMAP, buffermap);
  m.u.buffermap.base = from;
  m.u.buffermap.nbits = n->have.count ? MAP_BITS : 0;
  m.u.buffermap.queue_ms = (uint16_t)(backlog / 1000 > 65535 ? 65535 : backlog / 1000);
  m.u.buffermap.bits = bits;
  uint8_t depth[NODE_STRIPES_MAX], kids[NODE_STRIPES_MAX] = {0};
  m.u.buffermap.suspect = now < n->suspect_until ? n->suspect : PTV_ID_NONE;
  m.u.buffermap.suspect_deliv = n->suspect_deliv;
  if (n->nstripes) {
    for (unsigned s = 0; s < n->nstripes; s++) depth[s] = ptv_node_depth(n, s);
    /* our children per stripe, in one pass (at most maxp each: fits a byte) */
    for (int i = 0; i < n->maxp; i++)
      if (n->p[i].state == P_UP)
        for (unsigned s = 0; s < n->nstripes; s++) kids[s] += (uint8_t)(n->p[i].sub_out >> s & 1);
    m.u.buffermap.ndepth = n->nstripes;
    m.u.buffermap.depth = depth;
    m.u.buffermap.kids = kids;
    uint32_t slots = ptv_node_stripe_slots(n), used = ptv_node_stripe_used(n);
    m.u.buffermap.free_slots = (uint8_t)(slots > used + 255 ? 255 : slots > used ? slots - used : 0);
    uint32_t price = slots > used ? 0 : ptv_node_stripe_price(n);
    m.u.buffermap.price_kbps = (uint16_t)(price > 65535 ? 65535 : price);
  }
  /* Partners offer nothing older than our playback point. */
  m.u.buffermap.play = n->playing ? n->play_next
                       : n->start_decided && n->cfg.role == PTV_ROLE_PEER ? n->start_chunk
                                                                           : PTV_ID_NONE;
  return ptv_wire_encode(buf, cap, &m);
}

static void send_raw(ptv_node *n, ptv_id to, const uint8_t *buf, int len) {
  n->st.ctrl_bytes_up += (uint64_t)len;
  n->cb.send(n->user, to, buf, (size_t)len, 0, 0);
}

/* header 6, fixed part 22, depth and children per stripe, bits */
#define BM_BUF (6 + 22 + 2 * NODE_STRIPES_MAX + MAP_BITS / 8)

static void send_bm_to(ptv_node *n, ptv_id to, ptv_tstamp now) {
  uint8_t buf[BM_BUF];
  int len = encode_bm(n, now, buf, sizeof(buf));
  if (len > 0) send_raw(n, to, buf, len);
}

/* One encoding for all partners: the map is the same for each. */
static void flush_bm(ptv_node *n, ptv_tstamp now) {
  uint8_t buf[BM_BUF];
  int len = encode_bm(n, now, buf, sizeof(buf));
  for (int i = 0; i < n->maxp && len > 0; i++)
    if (n->p[i].state == P_UP) send_raw(n, n->p[i].id, buf, len);
  n->t_bm_keep = now + BM_KEEPALIVE_US;
  n->t_bm_flush = PTV_TSTAMP_MAX;
}

/* Coalesce: at most one round of maps per quarter chunk. */
static void bm_dirty(ptv_node *n, ptv_tstamp now) {
  ptv_tstamp gap = n->chunk_us ? n->chunk_us / 4 : 50 * PTV_MS;
  ptv_tstamp last = n->t_bm_keep - BM_KEEPALIVE_US;
  ptv_tstamp at = now >= last + gap ? now : last + gap;
  if (at < n->t_bm_flush) n->t_bm_flush = at;
}

/* ---- upload side -------------------------------------------------------- */

static void send_busy(ptv_node *n, ptv_id to, ptv_chunk_id id, uint8_t reason) {
  ptv_msg b;
  MSG_INIT(b, PTV_MSG_BUSY, busy);
  b.u.busy.chunk = id;
  b.u.busy.reason = reason;
  send_msg(n, to, &b);
}

/* How long a chunk we promised (a selected offer) may wait in the upload
 * queue. Newer chunks go first, so under load an old promise could wait
 * behind them until the receiver gave up on it, after its own timeout
 * (600 ms more than it expected), often past the deadline: on loopback the
 * busiest peer's promises were most of the chunks missed. Refused in
 * time, the receiver asks elsewhere at once. */
static ptv_tstamp promise_hold(const ptv_node *n) {
  ptv_tstamp h = (ptv_tstamp)PROMISE_HOLD * n->chunk_us;
  return h < 200 * PTV_MS ? 200 * PTV_MS : h > PROMISE_MAX ? PROMISE_MAX : h;
}

static void serve_uploads(ptv_node *n, ptv_tstamp now) {
  while (n->nupq > 0 && n->busy_until <= now) {
    int best = -1;
    for (int i = 0; i < n->nupq; i++)
      if (best < 0 || n->upq[i].deadline < n->upq[best].deadline) best = i;
    upreq r = n->upq[best];
    n->upq[best] = n->upq[--n->nupq];
    partner *p = find_partner(n, r.to);
    if (!p || p->state != P_UP) continue;
    if (r.push) {
      if (r.expire < now) n->st.push_late++;
      else n->st.push_wait_us += now - r.queued, n->st.push_sent++;
    }
    /* (a promise past its hold that the free uplink takes now still goes) */
    if ((r.expire < now && !r.promise) || !has_chunk(n, r.id) || (n->pl && !pl_get(n, r.id))) {
      send_busy(n, r.to, r.id, PTV_BUSY_TOO_LATE); /* so it asks elsewhere in time */
      continue;
    }
    uint32_t meta = n->meta[r.id % PTV_CHUNKSET_BITS];
    ptv_msg m;
    MSG_INIT(m, PTV_MSG_CHUNK, chunk);
    m.u.chunk.chunk = r.id;
    uint8_t sbuf[64], *buf = sbuf;
    size_t cap = sizeof(sbuf), vlen;
    const pl_slot *sl = pl_get(n, r.id);
    if (sl) { /* the bytes and the source's stamp and signature, as they came */
      m.u.chunk.ts_us = sl->ts;
      m.u.chunk.flags = sl->flags;
      m.u.chunk.payload_len = sl->len;
      m.u.chunk.payload = sl->data;
      m.u.chunk.sig = sl->flags & PTV_CHUNK_SIGNED ? sl->sig : NULL;
      cap = 6 + 17 + PTV_WIRE_SIGLEN + (size_t)sl->len;
      if (cap > n->txcap) {
        uint8_t *nb = realloc(n->txbuf, cap);
        if (!nb) continue;
        n->txbuf = nb;
        n->txcap = cap;
      }
      buf = n->txbuf;
      vlen = 0;
    } else {
      m.u.chunk.ts_us = n->epoch + (ptv_tstamp)r.id * n->chunk_us;
      m.u.chunk.flags = (uint8_t)((meta >> 28) | PTV_CHUNK_DETACHED);
      m.u.chunk.payload_len = meta & 0x0fffffffu;
      vlen = m.u.chunk.payload_len;
    }
    int len = ptv_wire_encode(buf, cap, &m);
    if (len < 0) continue;
    n->cb.send(n->user, r.to, buf, (size_t)len, vlen, 1);
    n->st.bytes_up += (uint64_t)len + vlen;
    p->chunks_to++;
    if (n->copies && n->copies[r.id % PTV_CHUNKSET_BITS] < 255) n->copies[r.id % PTV_CHUNKSET_BITS]++;
    ptv_tstamp start = n->busy_until > now ? n->busy_until : now;
    n->busy_until = start + tx_us((uint32_t)(len + vlen), n->cfg.upload_kbps);
  }
  /* Promises that waited out their hold, whatever their place in the queue
   * (one the free uplink just took went above). */
  for (int i = 0; i < n->nupq;) {
    upreq *r = &n->upq[i];
    if (r->promise && r->expire < now) {
      n->st.promises_expired++;
      send_busy(n, r->to, r->id, PTV_BUSY_TOO_LATE);
      *r = n->upq[--n->nupq];
    } else {
      i++;
    }
  }
}

static void enqueue_upload(ptv_node *n, ptv_id to, ptv_chunk_id id,
                           ptv_tstamp deadline) {
  if (n->nupq == UPQ_MAX) {
    n->st.upq_full++;
    return;
  }
  upreq *r = &n->upq[n->nupq++];
  r->push = 0;
  r->promise = 0;
  r->queued = n->last_now;
  r->id = id;
  r->to = to;
  r->deadline = r->expire = deadline;
  r->size = n->meta[id % PTV_CHUNKSET_BITS] & 0x0fffffffu;
}

/* Queues a stripe push: ordered by key, given up after expire. Returns 0,
 * or -1 if the upload queue is full. */
static int enqueue_push(ptv_node *n, ptv_id to, ptv_chunk_id id, ptv_tstamp key,
                        ptv_tstamp expire) {
  if (n->nupq == UPQ_MAX) {
    n->st.upq_full++;
    return -1;
  }
  enqueue_upload(n, to, id, key);
  n->upq[n->nupq - 1].push = 1;
  n->upq[n->nupq - 1].expire = expire;
  n->st.pushes++;
  return 0;
}

/* A stripe partner with no stripe parent at all (its map says unfed in
 * every stripe): a newcomer, or one whose parents all failed. */
static int unfed(const ptv_node *n, const partner *p) {
  if (!p->has_map) return 0;
  for (unsigned s = 0; s < n->nstripes && s < NODE_STRIPES_MAX; s++)
    if (p->depth[s] != 255) return 0;
  return 1;
}

/* Partner p declared upload enough for one stripe: it passes chunks on. */
static int contributes(const ptv_node *n, const partner *p) {
  return p->upload_kbps >= ptv_node_stripe_kbps(n);
}

/* Partner p has no parent for chunk id's stripe (its map says unfed there). */
static int orphaned(const ptv_node *n, const partner *p, ptv_chunk_id id) {
  unsigned s = id % n->nstripes;
  return p->has_map && s < NODE_STRIPES_MAX && p->depth[s] == 255;
}

static void on_request(ptv_node *n, partner *p, const ptv_msg_request *rq,
                       ptv_tstamp now) {
  ptv_msg m;
  MSG_INIT(m, PTV_MSG_BUSY, busy);
  m.u.busy.chunk = rq->chunk;
  if (!has_chunk(n, rq->chunk) || (n->pl && !pl_get(n, rq->chunk))) {
    m.u.busy.reason = PTV_BUSY_NOT_HELD;
    send_msg(n, p->id, &m);
    return;
  }
  uint32_t size = n->meta[rq->chunk % PTV_CHUNKSET_BITS] & 0x0fffffffu;
  ptv_tstamp backlog = upload_backlog(n, now);
  ptv_tstamp need = backlog + tx_us(size, n->cfg.upload_kbps);
  if (n->cfg.upload_kbps == 0 || n->nupq == UPQ_MAX ||
      (n->cfg.role == PTV_ROLE_SOURCE && backlog > tx_us(size, n->cfg.upload_kbps))) {
    m.u.busy.reason = PTV_BUSY_OVERLOAD;
    send_msg(n, p->id, &m);
    return;
  }
  if (need > (ptv_tstamp)rq->deadline_ms * PTV_MS) {
    m.u.busy.reason = PTV_BUSY_TOO_LATE;
    send_msg(n, p->id, &m);
    return;
  }
  ptv_tstamp deadline = now + (ptv_tstamp)rq->deadline_ms * PTV_MS, key = deadline;
  int newcomer = n->nstripes && unfed(n, p);
  if (newcomer || (n->nstripes && orphaned(n, p, rq->chunk) && contributes(n, p))) {
    /* A newcomer, fed by pulls alone until it takes stripe parents: its pull
     * is served by when it must leave to arrive in time, not by its
     * deadline, which pushes due sooner would fill up to the last moment
     * (the chunk then came late, after the newcomer had asked elsewhere
     * too). Churn, 1,000 peers, seeds 1-3: newcomers' misses -20% with a
     * lead of 300 ms, -45% with 600 ms (1 s: no better). A fed peer with no
     * parent for this chunk's stripe (evicted, or short of slots: the
     * weakest peers near r_max) has only pulls for it too, and asks only in
     * the last REPAIR_LEAD_US: it goes first (rate sweep, 0.85 x r_max,
     * seeds 1-3, with the backfill below: see docs/CHANDELIER.md). */
    ptv_tstamp lead = tx_us(size, n->cfg.upload_kbps) +
                      (newcomer ? NEWCOMER_LEAD_US : ORPHAN_LEAD_US);
    /* (Only a contributor's: below a resource index of 1 a peer that
     * uploads nothing and has a parent on some stripes otherwise took what
     * the others that upload nothing were left; hard case, seeds 1-3, Jain
     * within that class over the last third 0.40-0.43 instead of
     * 0.54-0.56.) */
    key = deadline > now + lead ? deadline - lead : now;
    /* Pushes go before every other pull (push_stripe); this one goes
     * before those queued from PULL_OVER_PUSH_US before it must leave on
     * (pushes first for these too: churn, 12 seeds, share >= 0.99 of the
     * peers that stayed 0.993 -> 0.988 on average). */
    key = key > PULL_OVER_PUSH_US ? key - PULL_OVER_PUSH_US : 0;
  }
  /* Contributors first (a strategy's choice, ptv_node_set_nonup_defer): a
   * partner that declared less upload than one stripe passes nothing on,
   * so its pull yields to those of partners that do. */
  if (n->nonup_defer && n->nstripes && !contributes(n, p)) {
    key += n->nonup_defer;
    /* Among those, the poorest first: the share each played lately (its
     * REQUEST says) puts up to nonup_poor on top. A supplier sees only its
     * own partners; served by that share, a peer whose partners have
     * little upload to spare is no longer left with what the others leave
     * (hard case, 1,000 peers, seeds 1-3, last third, Jain within the
     * class that uploads nothing, with Chandelier's partner rules: 0.82 /
     * 0.82 / 0.84 without, 0.94 / 0.94 / 0.94 with 8 s). A peer that
     * understates its share takes only from others that pass nothing on. */
    key += n->nonup_poor * rq->played / 255;
  }
  enqueue_upload(n, p->id, rq->chunk, key);
  n->upq[n->nupq - 1].expire = deadline;
  serve_uploads(n, now);
}


/* ---- stripes: sub-streams pushed from parent to child -------------------- */

static uint16_t stripes_all(const ptv_node *n) {
  return n->nstripes ? (uint16_t)((1u << n->nstripes) - 1) : 0;
}

static partner *stripe_parent(ptv_node *n, unsigned s) {
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && (n->p[i].sub_in >> s & 1)) return &n->p[i];
  return NULL;
}

/* The stream rate: configured at the source, measured from the chunks we
 * hold elsewhere (0 until we hold one). */
static uint32_t stream_kbps(const ptv_node *n) {
  if (n->cfg.role == PTV_ROLE_SOURCE) return n->cfg.stream_kbps;
  return n->chunk_us && n->avg_chunk ? (uint32_t)((uint64_t)n->avg_chunk * 8000u / n->chunk_us)
                                     : 0;
}

uint32_t ptv_node_stripe_kbps(const ptv_node *n) {
  if (!n->nstripes) return 0;
  return (stream_kbps(n) + n->nstripes - 1) / n->nstripes;
}

uint32_t ptv_node_stripe_slots(const ptv_node *n) {
  uint32_t k = ptv_node_stripe_kbps(n);
  /* slot_pct of the uplink: pushes need slack to leave on time */
  return k ? (uint32_t)((uint64_t)declared_kbps(n) * n->slot_pct / 100 / k) : 0;
}

/* A stripe partner silent for STRIPE_SILENT_US has likely crashed, well
 * before the partner timeout drops it: a parent feeds us no more (see
 * ptv_node_depth); a child's slots count as free, in our maps too. */
static int stripe_silent(const ptv_node *n, const partner *p) {
  return n->last_now > p->last_heard + STRIPE_SILENT_US;
}

uint32_t ptv_node_stripe_used(const ptv_node *n) {
  uint32_t u = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && !stripe_silent(n, &n->p[i]))
      u += (uint32_t)__builtin_popcount(n->p[i].sub_out);
  return u;
}

uint32_t ptv_node_stripe_price(const ptv_node *n) {
  uint32_t price = 0;
  int any = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && n->p[i].sub_out && !stripe_silent(n, &n->p[i]) &&
        (!any || n->p[i].bid_kbps < price)) {
      price = n->p[i].bid_kbps;
      any = 1;
    }
  return price;
}

/* A parent silent for STRIPE_SILENT_US makes us unfed at once, not at the
 * partner timeout (3 s): our maps and, a map round per level, our
 * subtree's then say so, so no orphan takes a parent from inside its own
 * subtree (a loop), the peer under a crashed parent can take a parent of
 * any depth 1 s later (Chandelier's loop guard, loop_guard_s) and the mesh
 * repairs the subtree as unfed. 300 peers, 50% failing, seeds 1-6, peers
 * on a loop, summed over the seconds: 136 / 0 / 208 / 0 / 0 / 0 with a 5 s
 * guard before; 0 on every seed with this and a 1 s guard (without the
 * prompt maps, 909 / 28 / 333 / 131 / 226 / 110). */
uint8_t ptv_node_depth(const ptv_node *n, unsigned s) {
  if (n->cfg.role == PTV_ROLE_SOURCE) return 0;
  if (s >= n->nstripes) return 255;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && (n->p[i].sub_in >> s & 1))
      return n->p[i].depth[s] >= 254 || stripe_silent(n, &n->p[i])
                 ? 255
                 : (uint8_t)(n->p[i].depth[s] + 1);
  return 255;
}

uint8_t ptv_node_tier(const ptv_node *n) {
  if (n->cfg.role == PTV_ROLE_SOURCE) return 0;
  int t = -1;
  for (unsigned s = 0; s < n->nstripes; s++) {
    uint8_t d = ptv_node_depth(n, s);
    if (d != 255 && d > t) t = d;
  }
  return t < 0 ? 255 : (uint8_t)t;
}

static void send_stripes(ptv_node *n, ptv_id to, uint8_t kind, uint16_t mask, uint32_t kbps) {
  ptv_msg m;
  MSG_INIT(m, PTV_MSG_STRIPES, stripes);
  m.u.stripes.kind = kind;
  m.u.stripes.mask = mask;
  m.u.stripes.kbps = kbps;
  send_msg(n, to, &m);
}

/* A stripe chunk is overdue once it is later than chunks from our stripe
 * parents usually are: from then on anyone may send it (mesh repair);
 * before, offers of it are declined so the push does not come twice. */
static int stripe_overdue(const ptv_node *n, ptv_chunk_id id, ptv_tstamp now) {
  if (!n->epoch_known) return 1;
  unsigned s = id % n->nstripes;
  ptv_tstamp d = n->stripe_delay[s] ? n->stripe_delay[s] + 4 * n->stripe_dev[s] : n->tree_delay;
  /* ... and at the latest REPAIR_LEAD_US before it is due */
  if (n->playing && now + REPAIR_LEAD_US >= deadline_of(n, id, now)) return 1;
  return now >= n->epoch + (ptv_tstamp)id * n->chunk_us + d + OVERDUE_SLACK_US;
}

/* A push's place in the upload queue: before every request but a
 * newcomer's or an orphan's about to be late (see on_request); within a
 * chunk's pushes, the stronger children first (higher bids) and, with
 * ptv_node_set_push_kids, before them those with more children of their
 * own on its stripe (their maps say how many): the chunk reaches the deep
 * peers sooner, the leaves later (1,000 peers, seeds 1-12: steady lag p95
 * mean 5.83 -> 5.67 s, but churn's stayers >= 0.99 mean 0.9948 -> 0.9929;
 * docs/CHANDELIER.md). A fed peer's pull due within 250 ms used to go first too;
 * each one delayed a whole subtree's stripe (12 seeds, catastrophic:
 * survivors back in 7.5 s on average, slowest 10 s -> 6.2 / 8 s; see
 * docs/CHANDELIER.md). With PUSH_BID_MAX, before every new push. */
#define PUSH_BID_MAX 100000u
static ptv_tstamp push_key(ptv_tstamp now, uint32_t bid_kbps) {
  ptv_tstamp b = bid_kbps < PUSH_BID_MAX ? bid_kbps : PUSH_BID_MAX;
  return now > b ? now - b : 0;
}

/* A child's rank among a chunk's pushes (see push_key): its bid; with
 * push_kids, its children on the stripe, then its bid (capped), below
 * PUSH_BID_MAX. */
#define PUSH_KIDS_MAX 20u
#define PUSH_BID_CAP 4095u
static uint32_t push_rank(const ptv_node *n, const partner *p, unsigned s) {
  if (!n->push_kids) return p->bid_kbps;
  uint32_t k = p->kids[s] < PUSH_KIDS_MAX ? p->kids[s] : PUSH_KIDS_MAX;
  return k * (PUSH_BID_CAP + 1) + (p->bid_kbps < PUSH_BID_CAP ? p->bid_kbps : PUSH_BID_CAP);
}
_Static_assert(PUSH_KIDS_MAX * (PUSH_BID_CAP + 1) + PUSH_BID_CAP < PUSH_BID_MAX,
               "a push ranks below backfill");

/* Parent: a new chunk goes at once to the children of its stripe that lack it. */
static void push_stripe(ptv_node *n, ptv_chunk_id id, ptv_tstamp now) {
  unsigned s = id % n->nstripes;
  /* Pushes go before everything else (a push feeds a subtree, a request one
   * peer) and are given up after PUSH_HOLD chunk times, or three of their
   * own transmissions on a slow uplink (the child repairs them). */
  ptv_tstamp hold = (ptv_tstamp)PUSH_HOLD * n->chunk_us;
  ptv_tstamp tx3 = 3 * (ptv_tstamp)tx_us(n->avg_chunk ? n->avg_chunk : 16000, n->cfg.upload_kbps);
  ptv_tstamp exp = now + (hold > tx3 ? hold : tx3);
  for (int i = 0; i < n->maxp; i++) {
    partner *p = &n->p[i];
    if (p->state != P_UP || !(p->sub_out >> s & 1) || map_has(p, id) ||
        (p->play != PTV_ID_NONE && id < p->play))
      continue;
    if (enqueue_push(n, p->id, id, push_key(now, push_rank(n, p, s)), exp) != 0) break;
  }
  serve_uploads(n, now);
}

/* A new child that plays already gets the chunks of its new stripes that it
 * lacks from its playback point on: what it missed meanwhile then flows on
 * down its own subtree.
 * - One taking its first parents (unfed: it played from the mesh), or one
 *   that passes nothing on, gets at most BACKFILL per stripe, before new
 *   pushes.
 * - One that moved to us (fed on another stripe: its old parent failed or
 *   evicted it) and contributes gets up to BACKFILL_MOVED per stripe, each
 *   queued by when it is due there less BACKFILL_LEAD_US, so that it waits
 *   behind pushes due sooner; those due within REPAIR_LEAD_US it is pulling
 *   already. Near r_max a moved child plays 10-20 s behind, and the chunks
 *   between its playback point and its new parent's first push came one
 *   pull at a time in the last second, from uplinks busy with pushes (rate
 *   sweep at 0.85 x r_max: most misses of the weakest peers had a parent).
 *   Everyone's first parents at once (the joins) must not get the long
 *   backfill: it crowded out the pushes (free-riders seed 3: 0.984).
 * - The source backfills no one: what a child lacks behind the live point,
 *   the swarm holds; the source's uplink feeds the first tier, and every
 *   subtree waits while it sends old chunks (rate sweep, 0.90 x r_max, seed
 *   2: its first-tier children got stripes 4 and 7 1.7 s late for 10 s and
 *   every peer missed chunks of both; share >= 0.99 on seeds 1-6 0.857 /
 *   0.753 / 0.921 / 0.945 / 0.899 / 0.953 -> 0.881 / 0.829 / 0.935 / 0.957 /
 *   0.940 / 0.953). */
static void backfill(ptv_node *n, partner *p, uint16_t stripes, ptv_tstamp now) {
  if (p->play == PTV_ID_NONE || !p->has_map || n->have.count == 0) return;
  if (n->cfg.role == PTV_ROLE_SOURCE) return;
  int moved = !unfed(n, p) && contributes(n, p);
  ptv_chunk_id hi = n->have.newest;
  ptv_chunk_id span = (ptv_chunk_id)(moved ? BACKFILL_MOVED : BACKFILL) * n->nstripes;
  ptv_chunk_id lo = hi >= span ? hi - span + 1 : 0;
  if (p->play > lo) lo = p->play;
  if (lo < n->have.base) lo = n->have.base;
  ptv_tstamp exp = now + (ptv_tstamp)PUSH_HOLD * n->chunk_us;
  for (ptv_chunk_id id = lo; id <= hi && id >= lo && n->nupq < UPQ_MAX; id++) {
    if (!(stripes >> (id % n->nstripes) & 1) || !has_chunk(n, id) || map_has(p, id)) continue;
    if (!moved) {
      enqueue_push(n, p->id, id, push_key(now, PUSH_BID_MAX), exp); /* before new pushes */
      continue;
    }
    ptv_tstamp due = now + (ptv_tstamp)(id - p->play) * n->chunk_us; /* id >= lo >= play */
    if (due < now + REPAIR_LEAD_US) continue;
    enqueue_push(n, p->id, id, due > now + BACKFILL_LEAD_US ? due - BACKFILL_LEAD_US : now,
                 due > exp ? due : exp);
  }
  serve_uploads(n, now);
}

/* The source: child p of stripe s gets the chunks of s made from
 * lost_from[s] until it became a child that it lacks (later ones were
 * pushed to it), before every other upload. */
static void reroot_push(ptv_node *n, partner *p, unsigned s, ptv_tstamp now) {
  if (p->play == PTV_ID_NONE || n->have.count == 0) return;
  ptv_tstamp exp = now + (ptv_tstamp)PUSH_HOLD * n->chunk_us;
  for (ptv_chunk_id id = n->have.newest; id >= n->have.base && id >= p->play; id--) {
    ptv_tstamp made = n->epoch + (ptv_tstamp)id * n->chunk_us;
    if (made + n->chunk_us < n->lost_from[s]) break;
    if (id % n->nstripes == s && made < p->out_since && has_chunk(n, id) && !map_has(p, id)) {
      if (enqueue_push(n, p->id, id, push_key(now, PUSH_BID_MAX), exp) != 0) break;
    }
    if (id == 0) break;
  }
}

/* The source drops child p that went silent (crashed): the chunks of its
 * stripes it was sent since it was last heard may have reached no one
 * else, and then every peer waits for them. Unless another child of the
 * stripe, heard lately, had it since before then, the stripe's children
 * get those chunks again, now and for LOST_REPUSH_US as they come. */
static void source_lost_child(ptv_node *n, const partner *p, ptv_tstamp now) {
  for (unsigned s = 0; s < n->nstripes && s < NODE_STRIPES_MAX; s++) {
    if (!(p->sub_out >> s & 1)) continue;
    int covered = 0;
    for (int i = 0; i < n->maxp && !covered; i++) {
      const partner *q = &n->p[i];
      covered = q != p && q->state == P_UP && (q->sub_out >> s & 1) &&
                q->last_heard + PTV_S >= now && q->out_since <= p->last_heard;
    }
    if (covered) continue;
    /* from a keepalive before it was last heard: what it got since, it
     * may not have passed on */
    ptv_tstamp from = p->last_heard > BM_KEEPALIVE_US ? p->last_heard - BM_KEEPALIVE_US : 0;
    if (now >= n->lost_until[s] || from < n->lost_from[s]) n->lost_from[s] = from;
    n->lost_until[s] = now + LOST_REPUSH_US;
    for (int i = 0; i < n->maxp; i++) {
      partner *q = &n->p[i];
      if (q != p && q->state == P_UP && (q->sub_out >> s & 1)) reroot_push(n, q, s, now);
    }
  }
}

static void on_stripes(ptv_node *n, partner *p, const ptv_msg_stripes *m, ptv_tstamp now) {
  uint16_t all = stripes_all(n);
  if (m->kind == PTV_STRIPES_SUBSCRIBE) {
    uint16_t want = m->mask & all, g = 0, had = p->sub_out;
    p->bid_kbps = m->kbps;
    p->sub_out = 0; /* the request replaces what it had */
    if (want && n->strat->grant && !n->left) g = n->strat->grant(n, p->id, want, m->kbps, now) & want;
    p->sub_out = g;
    if (g & (uint16_t)~had) {
      p->out_since = now;
      backfill(n, p, g & (uint16_t)~had, now);
      if (n->cfg.role == PTV_ROLE_SOURCE)
        for (unsigned s = 0; s < n->nstripes && s < NODE_STRIPES_MAX; s++)
          if ((g & ~had) >> s & 1 && now < n->lost_until[s]) reroot_push(n, p, s, now);
    }
    uint32_t slots = ptv_node_stripe_slots(n);
    send_stripes(n, p->id, PTV_STRIPES_GRANT, g,
                 ptv_node_stripe_used(n) >= slots ? ptv_node_stripe_price(n) : 0);
    return;
  }
  /* Only what we asked for or had: an unasked grant must not take a
   * stripe away from the parent we chose. */
  if (m->kind == PTV_STRIPES_EVICT) { /* not an answer: our request stands */
    p->sub_in &= m->mask;
    return;
  }
  uint16_t g = m->mask & all & (p->sub_ask | p->sub_in), asked = p->sub_ask;
  uint16_t gained = g & ~p->sub_in;
  p->sub_ask = 0;
  if (gained) {
    /* Make before break: the stripes now come from p; release their old
     * parents (a switch, counted as a partner change). */
    for (int i = 0; i < n->maxp; i++) {
      partner *q = &n->p[i];
      if (q == p || q->state != P_UP || !(q->sub_in & gained)) continue;
      q->sub_in &= (uint16_t)~gained;
      send_stripes(n, q->id, PTV_STRIPES_SUBSCRIBE, q->sub_in, declared_kbps(n));
      n->st.partner_changes++;
    }
    p->sub_since = now;
    p->deliv = 65535; /* a new parent starts trusted */
  }
  p->sub_in = g;
  if (n->strat->on_grant) n->strat->on_grant(n, p->id, asked, g, m->kbps, now);
}

int ptv_node_subscribe(ptv_node *n, ptv_id parent, uint16_t mask, ptv_tstamp now) {
  partner *p = find_partner(n, parent);
  if (!p || p->state != P_UP) return PTV_ERR_NOT_FOUND;
  if (!n->nstripes || n->cfg.role == PTV_ROLE_SOURCE) return PTV_ERR_INVALID_ARG;
  mask &= stripes_all(n);
  if (p->sub_in & ~mask) n->st.partner_changes++; /* giving stripes up by choice */
  p->sub_in &= mask;
  p->sub_ask = mask;
  send_stripes(n, parent, PTV_STRIPES_SUBSCRIBE, mask, declared_kbps(n));
  (void)now;
  return 0;
}

int ptv_node_stripe_evict(ptv_node *n, ptv_id child, uint16_t mask, ptv_tstamp now) {
  partner *p = find_partner(n, child);
  if (!p || p->state != P_UP) return PTV_ERR_NOT_FOUND;
  if (!(p->sub_out & mask)) return 0;
  p->sub_out &= (uint16_t)~mask;
  n->st.partner_changes++;
  send_stripes(n, child, PTV_STRIPES_EVICT, p->sub_out, 0);
  (void)now;
  return 0;
}

/* ---- offers: sender-driven diffusion ------------------------------------- */

static ptv_tstamp upload_backlog(const ptv_node *n, ptv_tstamp now) {
  ptv_tstamp b = n->busy_until > now ? n->busy_until - now : 0;
  for (int i = 0; i < n->nupq; i++) b += tx_us(n->upq[i].size, n->cfg.upload_kbps);
  return b;
}

/* Marks id as held in our copy of p's map. A partner's map ends at its
 * newest chunk, so an id newer than that lies past the window: the window
 * slides forward (its oldest bits, below what p plays, are let go). Without
 * this, a chunk just past p's newest could not be marked as offered, and a
 * declined offer of it was made again at once, every round trip: an
 * offer/decline storm of thousands of messages a second once ids passed
 * MAP_BITS. */
static void map_set(partner *p, ptv_chunk_id id) {
  if (!p->has_map || id < p->map_base) return;
  if (id - p->map_base >= MAP_BITS) {
    uint32_t sh = id - p->map_base - MAP_BITS + 1;
    p->map_base += sh;
    for (unsigned w = 0; w < MAP_BITS / 64; w++) {
      /* word w takes bits [w*64 + sh, w*64 + sh + 64) of the old map */
      unsigned src = w * 64 + sh;
      uint64_t v = 0;
      if (src < MAP_BITS) {
        unsigned sw = src >> 6, sb = src & 63;
        v = p->map[sw] >> sb;
        if (sb && sw + 1 < MAP_BITS / 64) v |= p->map[sw + 1] << (64 - sb);
      }
      p->map[w] = v;
    }
  }
  uint32_t i = id - p->map_base;
  p->map[i >> 6] |= 1ULL << (i & 63);
}

/* Unmarks id in our copy of p's map (an offer of it that came to nothing). */
static void map_clear(partner *p, ptv_chunk_id id) {
  if (!p->has_map || id < p->map_base || id - p->map_base >= MAP_BITS) return;
  uint32_t i = id - p->map_base;
  p->map[i >> 6] &= ~(1ULL << (i & 63));
}

/* Chunks this partner lacks that we hold, newest first, not older than what
 * it can still play (its newest minus twice the buffer). */
/* How many of our partners lack chunk id and can still play it. */
static int count_lacking(const ptv_node *n, ptv_chunk_id id) {
  int lack = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && n->p[i].has_map && !map_has(&n->p[i], id) &&
        (n->p[i].play == PTV_ID_NONE || id >= n->p[i].play))
      lack++;
  return lack;
}

/* The oldest chunk worth offering to p: what it plays next, else its newest
 * minus twice the buffer, never below its map or ours. */
static ptv_chunk_id offer_floor(const ptv_node *n, const partner *p) {
  ptv_chunk_id back = (ptv_chunk_id)(2 * n->cfg.buffer_us / (n->chunk_us ? n->chunk_us : 1)) + 4;
  ptv_chunk_id lo = p->map_base;
  if (p->play != PTV_ID_NONE) {
    if (p->play > lo) lo = p->play;
  } else if (p->newest != PTV_ID_NONE && p->newest > back && p->newest - back > lo) {
    lo = p->newest - back;
  }
  if (lo < n->have.base) lo = n->have.base;
  return lo;
}

/* A peer's offer candidates for p: the chunks in [*start, hi] we hold and
 * it lacks, as a word whose bit i is chunk *from + i. The scan starts at
 * our newest chunk, or at the end of what the partner plays within
 * RARITY_SCAN chunks if that is older: a partner far behind (after a
 * partition) is offered what it needs next, not chunks it will play in half
 * a minute, and passes those on to peers as far behind. */
static uint64_t peer_candidates(const ptv_node *n, const partner *p, ptv_chunk_id lo,
                                ptv_chunk_id *from) {
  ptv_chunk_id hi = n->have.newest;
  if (p->play != PTV_ID_NONE && p->play + RARITY_SCAN - 1 < hi) hi = p->play + RARITY_SCAN - 1;
  if (hi < lo) return 0;
  ptv_chunk_id start = hi - lo >= RARITY_SCAN ? hi - (RARITY_SCAN - 1) : lo;
  *from = hi >= 63 ? hi - 63 : 0;
  uint64_t cand = ptv_chunkset_word(&n->have, *from) & ~map_word(p, *from);
  cand &= ~0ULL >> (63 - (hi - *from));
  cand &= ~0ULL << (start - *from);
  return cand;
}

/* Whether a peer has anything to offer p (useful_for would return > 0). */
static int peer_useful_any(const ptv_node *n, const partner *p) {
  if (!p->has_map || n->have.count == 0) return 0;
  ptv_chunk_id from;
  return peer_candidates(n, p, offer_floor(n, p), &from) != 0;
}

/* Chunk id is later than partner p, fed by a stripe parent, can expect it:
 * older than our own stripe delay plus a hop per tier it is deeper than our
 * depth md in that stripe, and
 * slack (we cannot see its statistics; an orphaned subtree looks like this). */
static int stripe_late_for(const ptv_node *n, const partner *p, ptv_chunk_id id, uint8_t md) {
  unsigned s = id % n->nstripes;
  ptv_tstamp ts = n->epoch + (ptv_tstamp)id * n->chunk_us;
  ptv_tstamp mine = n->stripe_delay[s] ? n->stripe_delay[s] + 2 * n->stripe_dev[s] : n->tree_delay;
  uint8_t pd = p->depth[s];
  if (md != 255 && pd > md) mine += (ptv_tstamp)(pd - md) * LATE_HOP_US;
  return n->last_now > ts + mine + OVERDUE_SLACK_US;
}

/* lacks[j], if not NULL, caches count_lacking(newest - j) (-1: not yet
 * computed) across the partners considered in one round of offers. */
static int useful_for(const ptv_node *n, const partner *p, ptv_chunk_id *out, int max,
                      int *lacks) {
  if (!p->has_map || n->have.count == 0) return 0;
  ptv_chunk_id lo = offer_floor(n, p);
  int k = 0;
  int k0 = 0;
  if (n->cfg.role == PTV_ROLE_SOURCE) {
    /* The source injects: first every recent chunk not yet sent to anyone
     * (oldest first, so none is skipped when offers are declined), then
     * the newest ones. Older chunks are the swarm's job. */
    ptv_chunk_id s_lo = n->have.newest > SRC_WINDOW ? n->have.newest - SRC_WINDOW : 0;
    if (s_lo < lo) s_lo = lo;
    for (ptv_chunk_id id = s_lo; id <= n->have.newest && k < max; id++)
      if (n->copies[id % PTV_CHUNKSET_BITS] == 0 && has_chunk(n, id) && !map_has(p, id))
        out[k++] = id;
    k0 = k;
    if (n->have.newest > lo + 1) lo = n->have.newest - 1;
  }
  if (n->cfg.role == PTV_ROLE_SOURCE) {
    for (ptv_chunk_id id = n->have.newest; id >= lo && k < max; id--) {
      int dup = 0;
      for (int i = 0; i < k0 && !dup; i++) dup = out[i] == id;
      if (!dup && has_chunk(n, id) && !map_has(p, id)) out[k++] = id;
      if (id == 0) break;
    }
    return k;
  }
  /* Peers: the rarest among our partners first (the chunk most of them
   * lack), the newest among equals. Pure "latest useful" starves a chunk
   * that got few early copies: everyone moves on to fresher ones and it
   * spreads only when it is due. */
  int best_lack[PTV_WIRE_MAX_IDS];
  uint8_t my_depth[NODE_STRIPES_MAX]; /* our depth per stripe, bit set in looked once known */
  unsigned looked = 0;
  ptv_chunk_id from;
  uint64_t cand = peer_candidates(n, p, lo, &from);
  while (cand) {
    unsigned bit = 63 - (unsigned)__builtin_clzll(cand);
    cand &= ~(1ULL << bit);
    ptv_chunk_id id = from + bit;
    /* A stripe peer takes a chunk of a stripe it has a parent for from that
     * parent; offer it only a hole (it holds a later chunk of the stripe) or
     * a late one: an offer it must decline costs our uplink a round trip
     * idle, which the peers still without parents (newcomers) need. In
     * churn this cut newcomers' misses by a quarter (stayers >= 0.99:
     * 0.931 -> 0.955, 0.929 -> 0.962). */
    if (n->nstripes && p->depth[id % n->nstripes] != 255 && !map_has(p, id + n->nstripes)) {
      unsigned sb = id % n->nstripes;
      if (!(looked >> sb & 1)) { /* once per call: a scan of our partners */
        my_depth[sb] = ptv_node_depth(n, sb);
        looked |= 1u << sb;
      }
      if (!stripe_late_for(n, p, id, my_depth[sb])) continue;
    }
    int lack;
    uint32_t off = n->have.newest - id; /* lacks[] is indexed from our newest */
    if (!lacks || off >= LACK_CACHE) lack = count_lacking(n, id);
    else if ((lack = lacks[off]) < 0) lack = lacks[off] = count_lacking(n, id);
    /* insert into the top-max list, ordered by lack (newest wins ties) */
    int pos = k;
    while (pos > 0 && best_lack[pos - 1] < lack) pos--;
    if (pos >= max) continue;
    int end = k < max ? k : max - 1;
    for (int j = end; j > pos; j--) {
      out[j] = out[j - 1];
      best_lack[j] = best_lack[j - 1];
    }
    out[pos] = id;
    best_lack[pos] = lack;
    if (k < max) k++;
  }
  return k;
}

/* "Random useful partner, latest useful chunks" (Bonald et al. 2008): while
 * our uplink is about to run dry, offer the newest chunks a randomly chosen
 * partner lacks. The receiver takes what nobody else promised it, so the
 * uplink is kept busy without sending duplicates. */
static void make_offers(ptv_node *n, ptv_tstamp now) {
  if (n->cfg.upload_kbps == 0 || n->left || n->have.count == 0) return;
  if (n->busy_until > now + OFFER_AHEAD_US) return; /* the usual case: busy */
  if (n->offers_idle && now < n->idle_recheck && n->cfg.role == PTV_ROLE_PEER) {
    n->st.offer_idle++; /* nothing changed since a round found nothing */
    return;
  }
  int out = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && n->p[i].offer_until > now) out++;
  /* Enough offers in flight to cover a round trip and the declines at our
   * own pace: a fast uplink needs several, a slow one one. */
  uint32_t tx = tx_us(n->avg_chunk ? n->avg_chunk : 16000, n->cfg.upload_kbps);
  int max_out = tx ? (int)((OFFER_WINDOW_US + tx - 1) / tx) : OFFERS_OUT;
  if (max_out < 1) max_out = 1;
  if (max_out > OFFERS_OUT) max_out = OFFERS_OUT;
  int lacks_buf[LACK_CACHE], *lacks = NULL;
  while (out < max_out && upload_backlog(n, now) <= OFFER_AHEAD_US) {
    if (!lacks) {
      for (int j = 0; j < LACK_CACHE; j++) lacks_buf[j] = -1;
      lacks = lacks_buf;
    }
    partner *pick = NULL;
    uint64_t seen = 0;
    ptv_chunk_id ids[OFFER_IDS];
    int nids = 0;
    for (int i = 0; i < n->maxp; i++) {
      partner *p = &n->p[i];
      if (p->state != P_UP || p->offer_until > now) continue;
      ptv_chunk_id tmp[OFFER_IDS];
      int k = useful_for(n, p, tmp, OFFER_IDS, lacks);
      if (k == 0) continue;
      /* Weight: the square of the partner's declared upload. A chunk
       * given to a fast uploader is passed on sooner and to more peers,
       * which shortens every path behind it (the mean delivery delay on
       * the steady scenario drops from 5 s to 4 s). */
      uint64_t wt = ((uint64_t)p->upload_kbps + 64) * ((uint64_t)p->upload_kbps + 64);
      seen += wt;
      if (rnd(n) % seen < wt) { /* weighted reservoir pick */
        pick = p;
        nids = k;
        memcpy(ids, tmp, sizeof(tmp[0]) * (size_t)k);
      }
    }
    if (!pick) {
      n->st.offer_idle++;
      n->offers_idle = 1;
      n->idle_recheck = PTV_TSTAMP_MAX; /* a pending offer expiring frees a partner */
      for (int i = 0; i < n->maxp; i++)
        if (n->p[i].state == P_UP && n->p[i].offer_until > now)
          n->idle_recheck = tmin(n->idle_recheck, n->p[i].offer_until);
      return;
    }
    n->st.offers_sent++;
    ptv_msg m;
    MSG_INIT(m, PTV_MSG_OFFER, offer);
    m.u.offer.n = (uint8_t)nids;
    for (int i = 0; i < nids; i++) {
      m.u.offer.ids[i] = ids[i];
      map_set(pick, ids[i]); /* do not offer it again before its next map */
      ptv_chunk_id j = n->have.newest - ids[i]; /* keep lacks[] exact */
      if (lacks && ids[i] <= n->have.newest && j < LACK_CACHE && lacks[j] > 0) lacks[j]--;
    }
    send_msg(n, pick->id, &m);
    pick->offer_until = now + OFFER_TIMEOUT_US;
    out++;
  }
}

static void on_select(ptv_node *n, partner *p, const ptv_msg_ids *sel, ptv_tstamp now) {
  p->offer_until = 0;
  if (sel->n == 0) n->st.offers_declined++;
  for (int i = 0; i < sel->n; i++) {
    ptv_chunk_id id = sel->ids[i];
    /* Among offered chunks the newest goes first (it is the one the
     * receiver can pass on furthest); pulls, with real deadlines, before. */
    /* The source sends a first copy at once or refuses it (BUSY TOO_LATE:
     * the receiver then gets the chunk from the swarm): a first copy that
     * waits behind others is late for everyone below it, and the refusals
     * keep the source from promising more than its uplink carries. */
    ptv_tstamp dl = n->cfg.role == PTV_ROLE_SOURCE ? now : (PTV_TSTAMP_MAX >> 1) - id;
    if (!has_chunk(n, id)) continue;
    if (n->nupq == UPQ_MAX && n->cfg.role != PTV_ROLE_SOURCE) {
      /* answer: silence cost the receiver its promise timeout */
      n->st.upq_full++;
      send_busy(n, p->id, id, PTV_BUSY_OVERLOAD);
      continue;
    }
    /* A busy mesh source says so at once, not when its uplink frees up:
     * those it could not serve took the chunk for promised meanwhile and
     * declined every peer's offer of it (on loopback: 100 ms more delay).
     * Not with stripes: there a BUSY from a stripe parent lowers its
     * delivery score, and the early answers cut Chandelier's continuity in
     * the simulator (1,000 peers, seed 1, share >= 0.99: churn 0.96 ->
     * 0.90, free-riders 0.65 -> 0.02, steady 1.00 -> 0.99). */
    if (n->cfg.role == PTV_ROLE_SOURCE && !n->nstripes && n->busy_until > now) {
      send_busy(n, p->id, id, PTV_BUSY_TOO_LATE);
      /* A first copy (no one else can supply it): offer it again once the
       * uplink is free, not before (no offer to p until then: it would be
       * refused too). Left marked in our copy of p's map, it was offered
       * again only when p's next map came, which p sends when a chunk
       * reaches it: with links faster than busy_until plans (a larger
       * pacer burst), always while we were still busy. A chunk only we
       * held was then offered, selected and refused every chunk time, and
       * each BUSY kept us choked for p's pulls (CHOKE_US > a chunk time):
       * on loopback, 2 peers that came after chunks 1 and 2 were made
       * never got them. Simulator, mesh, seeds 1-3: hard-clive (the
       * source always busy) mean continuity 0.44/0.45/0.42 -> 0.41/0.43/
       * 0.38; the other scenarios within seed noise. */
      if (n->copies[id % PTV_CHUNKSET_BITS] == 0) {
        map_clear(p, id);
        if (p->offer_until < n->busy_until) p->offer_until = n->busy_until;
      }
      continue;
    }
    enqueue_upload(n, p->id, id, dl);
    if (n->cfg.role != PTV_ROLE_SOURCE) {
      n->upq[n->nupq - 1].promise = 1;
      n->upq[n->nupq - 1].expire = now + promise_hold(n);
    }
  }
  serve_uploads(n, now);
}

static int promised(const ptv_node *n, ptv_chunk_id id);

/* Receiver: take the offered chunks we still need and nobody promised,
 * the most urgent first, then the newest. Always answer, so the sender can
 * offer elsewhere at once. */
static void on_offer(ptv_node *n, partner *p, const ptv_msg_ids *off, ptv_tstamp now) {
  ptv_msg m;
  MSG_INIT(m, PTV_MSG_SELECT, select);
  ptv_chunk_id want[PTV_WIRE_MAX_IDS];
  int nw = 0;
  if (n->start_decided && n->cfg.role == PTV_ROLE_PEER) {
    ptv_chunk_id lo = n->playing ? n->play_next : n->start_chunk;
    for (int i = 0; i < off->n; i++) {
      ptv_chunk_id id = off->ids[i];
      if (id >= lo && id >= n->have.base && !has_chunk(n, id) && !promised(n, id) &&
          (!n->nstripes || !stripe_parent(n, id % n->nstripes) || stripe_overdue(n, id, now)))
        want[nw++] = id;
    }
  }
  /* Take them in the sender's order: it ranked them by how many of its
   * partners lack each (rarest first, newest among equals), which it can see
   * and we cannot. Urgent gaps are left to pulls. */
  /* Promised chunks fill at most half the download queue and take none of
   * a partner's pull slots: a pull, which has a deadline, always finds room
   * (a peer catching up is offered much, and missed what it pulled late). */
  int offered = 0;
  for (int i = 0; i < n->ndlq; i++) offered += n->dlq[i].offered;
  for (int i = 0; i < nw && m.u.select.n < SELECT_MAX && n->ndlq < DLQ_MAX &&
                  offered < DLQ_MAX / 2;
       i++) {
    int best = -1;
    for (int j = 0; j < nw && best < 0; j++) /* in the sender's order */
      if (want[j] != PTV_ID_NONE) best = j;
    if (best < 0) break;
    ptv_chunk_id id = want[best];
    want[best] = PTV_ID_NONE;
    m.u.select.ids[m.u.select.n++] = id;
    dlreq *d = &n->dlq[n->ndlq++];
    d->id = id;
    d->from = p->id;
    d->offered = 1;
    d->timeout = now + (ptv_tstamp)p->queue_ms * PTV_MS +
                 2 * (ptv_tstamp)tx_us(n->avg_chunk ? n->avg_chunk : 16000, p->upload_kbps) +
                 REQ_SLACK_US;
  }
  send_msg(n, p->id, &m);
}

/* ---- download side: the scheduler ----------------------------------------- */

static int requested(const ptv_node *n, ptv_chunk_id id) {
  for (int i = 0; i < n->ndlq; i++)
    if (n->dlq[i].id == id) return 1;
  return 0;
}

/* Promised by an offer: a pulled chunk may still be taken from an offer,
 * which usually comes from a less loaded sender. */
static int promised(const ptv_node *n, ptv_chunk_id id) {
  for (int i = 0; i < n->ndlq; i++)
    if (n->dlq[i].id == id && n->dlq[i].offered) return 1;
  return 0;
}

/* Chooses whom to ask for chunk id. Among partners that hold it and have a
 * free request slot, those expected to deliver before the deadline are
 * feasible; one of them is drawn with probability proportional to its upload
 * capacity, which spreads requests the way capacity is spread (a "least
 * loaded" pick would send every requester to the same partner, whose load
 * hint is stale by a round trip). With nothing feasible, an urgent chunk goes
 * to whoever is expected soonest. */
static partner *pick_supplier(ptv_node *n, ptv_chunk_id id, ptv_tstamp now,
                              ptv_tstamp left, int urgent, ptv_tstamp *wait_out) {
  partner *soonest = NULL, *pick = NULL;
  ptv_tstamp best_wait = PTV_TSTAMP_MAX, pick_wait = 0;
  uint64_t wsum = 0;
  for (int k = 0; k < n->maxp; k++) {
    partner *p = &n->p[k];
    if (p->state != P_UP || p->outstanding >= PER_PARTNER_REQ ||
        p->choke_until > now || p->upload_kbps == 0 || !map_has(p, id))
      continue;
    ptv_tstamp w = (ptv_tstamp)p->queue_ms * PTV_MS +
                   (ptv_tstamp)(p->outstanding + 1) * tx_us(n->avg_chunk, p->upload_kbps);
    if (w < best_wait) {
      best_wait = w;
      soonest = p;
    }
    if (w + REQ_MARGIN_US <= left) {
      /* Weighted reservoir draw (one pass, no allocation); the weight is the
       * capacity discounted by the work already queued there. */
      uint64_t tx = tx_us(n->avg_chunk, p->upload_kbps) / PTV_MS + 1;
      uint64_t wt = (uint64_t)p->upload_kbps * tx / (tx + p->queue_ms + tx * p->outstanding) + 1;
      wsum += wt;
      if (rnd(n) % wsum < wt) {
        pick = p;
        pick_wait = w;
      }
    }
  }
  if (pick) {
    *wait_out = pick_wait;
    return pick;
  }
  *wait_out = best_wait;
  return urgent ? soonest : NULL;
}

static int request_chunk(ptv_node *n, ptv_chunk_id id, ptv_tstamp now, int urgent) {
  ptv_tstamp dl = deadline_of(n, id, now);
  ptv_tstamp left = dl > now ? dl - now : 0;
  ptv_tstamp wait;
  partner *p = pick_supplier(n, id, now, left, urgent, &wait);
  if (!p) return 0;
  ptv_msg m;
  MSG_INIT(m, PTV_MSG_REQUEST, request);
  m.u.request.chunk = id;
  /* A request we know will be late still goes out: the supplier refuses at
   * once if it cannot help, which costs one round trip. */
  ptv_tstamp ms = left / PTV_MS;
  if (ms < 200) ms = 200;
  m.u.request.deadline_ms = (uint16_t)(ms > 65535 ? 65535 : ms);
  m.u.request.played = (uint8_t)(n->played_avg / 257);
  send_msg(n, p->id, &m);
  n->st.req_sent++;
  dlreq *d = &n->dlq[n->ndlq++];
  d->id = id;
  d->from = p->id;
  d->offered = 0;
  d->timeout = now + wait + wait / 2 + REQ_SLACK_US;
  /* Give up early enough to try another partner before the deadline. */
  if (urgent == 0 && dl > now + wait + REQ_MARGIN_US && d->timeout > dl - REQ_MARGIN_US)
    d->timeout = dl - REQ_MARGIN_US;
  p->outstanding++;
  return 1;
}

static ptv_tstamp prefetch_us(const ptv_node *n);
static int roomy(const ptv_node *n);

/* Repair by pull: a chunk due soon that nobody has offered or promised is
 * requested from a partner that holds it, earliest deadline first. The bulk
 * of the stream arrives through offers (see make_offers). */
static void schedule(ptv_node *n, ptv_tstamp now) {
  if (n->cfg.role == PTV_ROLE_SOURCE || !n->start_decided || n->left) return;
  if (n->ndlq >= DLQ_MAX) return;
  /* Stripe peers repair further ahead: a chunk of a stripe whose parent
   * is late (stripe_overdue) is pulled up to REPAIR_LEAD_US before it is
   * due, not only in the last second. */
  ptv_tstamp urgent = now + 2 * (ptv_tstamp)n->chunk_us + PULL_MARGIN_US;
  ptv_tstamp repair = n->nstripes ? now + REPAIR_LEAD_US : urgent;
  if (repair < urgent) repair = urgent;
  if (n->playing) { /* the usual case, checked first: nothing due is missing */
    ptv_chunk_id id = n->play_next < n->have.base ? n->have.base : n->play_next;
    int need = 0;
    for (unsigned k = 0; k < PTV_CHUNKSET_BITS && !need; k++, id++) {
      ptv_tstamp dl = deadline_of(n, id, now);
      if (dl > repair) break;
      need = !has_chunk(n, id) && !requested(n, id) &&
             (dl <= urgent || !n->nstripes || !stripe_parent(n, id % n->nstripes) ||
              stripe_overdue(n, id, now));
    }
    if (!need) return;
  }
  ptv_chunk_id hi = 0;
  int any = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && n->p[i].has_map && n->p[i].newest != PTV_ID_NONE) {
      if (!any || n->p[i].newest > hi) hi = n->p[i].newest;
      any = 1;
    }
  if (!any) return;
  /* Nothing to do unless some partner can take a request. */
  int free_slots = 0;
  for (int i = 0; i < n->maxp && !free_slots; i++)
    free_slots = n->p[i].state == P_UP && n->p[i].outstanding < PER_PARTNER_REQ &&
                 n->p[i].choke_until <= now && n->p[i].upload_kbps > 0;
  if (!free_slots) return;
  ptv_chunk_id lo = n->playing ? n->play_next : n->start_chunk;
  if (lo < n->have.base) lo = n->have.base;
  if (hi < lo) return;
  if (hi - lo >= PTV_CHUNKSET_BITS) hi = lo + PTV_CHUNKSET_BITS - 1;
  /* Pull only what offers have not brought with a round trip and a chunk
   * transfer to spare; before playback, the whole prefetch, and a stripe
   * peer STRIPE_PREPLAY_US past it. Offers bring a newcomer the newest
   * chunks; those between its start point and them come by pull alone,
   * which at the repair lead (1 s before the deadline) from uplinks busy
   * with pushes was where newcomers missed (before session 33 the horizon
   * did not even reach a stripe peer's last prefetch chunk). */
  if (!n->playing)
    urgent = repair = n->nstripes && roomy(n) ? now + prefetch_us(n) + STRIPE_PREPLAY_US
                                              : now + PTV_S + PREFETCH_MAX_US;
  for (ptv_chunk_id id = lo; id <= hi && n->ndlq < DLQ_MAX; id++) {
    ptv_tstamp dl = deadline_of(n, id, now);
    if (dl > repair) break;
    if (has_chunk(n, id) || requested(n, id)) continue;
    if (dl <= urgent || !n->nstripes || !stripe_parent(n, id % n->nstripes) ||
        stripe_overdue(n, id, now))
      request_chunk(n, id, now, 1);
  }
}

static void expire_requests(ptv_node *n, ptv_tstamp now) {
  for (int i = 0; i < n->ndlq;) {
    dlreq *d = &n->dlq[i];
    int drop = d->timeout <= now || has_chunk(n, d->id) ||
               (n->playing && d->id < n->play_next);
    if (!drop) {
      i++;
      continue;
    }
    partner *p = find_partner(n, d->from);
    if (p) {
      if (p->outstanding && !d->offered) p->outstanding--;
      if (d->timeout <= now && !has_chunk(n, d->id)) p->choke_until = now + CHOKE_US;
    }
    if (d->timeout <= now && !has_chunk(n, d->id)) {
      n->st.req_timeouts++;
    }
    *d = n->dlq[--n->ndlq];
  }
}

/* ---- playout ------------------------------------------------------------ */

/* The median playback point of our partners that play, not counting points
 * beyond max, and if fed_only only of those being fed (holding chunks at or
 * beyond their playback point); PTV_ID_NONE if there is none. */
static ptv_chunk_id partners_median_play(const ptv_node *n, ptv_chunk_id max, int fed_only) {
  ptv_chunk_id plays[64];
  int np = 0;
  for (int i = 0; i < n->maxp && np < 64; i++) {
    const partner *p = &n->p[i];
    if (p->state == P_UP && p->has_map && p->play != PTV_ID_NONE && p->play <= max &&
        (!fed_only || (p->newest != PTV_ID_NONE && p->newest >= p->play)))
      plays[np++] = p->play;
  }
  if (np == 0) return PTV_ID_NONE;
  for (int i = 1; i < np; i++) /* insertion sort: np <= 64 */
    for (int j = i; j > 0 && plays[j - 1] > plays[j]; j--) {
      ptv_chunk_id t = plays[j];
      plays[j] = plays[j - 1];
      plays[j - 1] = t;
    }
  return plays[np / 2];
}

static void decide_start(ptv_node *n, ptv_tstamp now) {
  ptv_chunk_id hi = 0;
  int any = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && n->p[i].has_map && n->p[i].newest != PTV_ID_NONE) {
      if (!any || n->p[i].newest > hi) hi = n->p[i].newest;
      any = 1;
    }
  if (!any || n->chunk_us == 0) return;
  ptv_chunk_id back = (ptv_chunk_id)(n->cfg.buffer_us / n->chunk_us);
  ptv_chunk_id ref = hi;
  if (n->live_hint != PTV_ID_NONE) {
    /* The tracker's word on the live point beats our partners' newest
     * chunk, which lags by however far the swarm is behind. */
    ref = n->live_hint + (ptv_chunk_id)((now - n->live_hint_t) / n->chunk_us);
    if (ref > hi + back) ref = hi + back;
  }
  n->start_chunk = ref > back ? ref - back : 0;
  /* Partners already playing have found a lag that their place in the
   * overlay sustains; join them at their median playback point rather than
   * closer to live (a newcomer is further from the source than they are). */
  ptv_chunk_id med = partners_median_play(n, hi, 0);
  if (med != PTV_ID_NONE && med < n->start_chunk) n->start_chunk = med;
  n->play_next = n->start_chunk;
  n->start_decided = 1;
  n->decided_at = now;
  ptv_chunkset_advance(&n->have, n->start_chunk);
  n->offers_idle = 0;
}

/* On its way: requested from, or promised by, a partner and not timed out. */
static int chunk_on_its_way(const ptv_node *n, ptv_chunk_id id) {
  return requested(n, id);
}

static int held_by_partner(const ptv_node *n, ptv_chunk_id id) {
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && map_has(&n->p[i], id)) return 1;
  return 0;
}

/* No partner has reached chunk id yet: we play ahead of them, and it is
 * still to come (as opposed to a hole the swarm skipped). */
static int ahead_of_partners(const ptv_node *n, ptv_chunk_id id) {
  int any = 0;
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_UP && n->p[i].has_map) {
      if (n->p[i].newest != PTV_ID_NONE && n->p[i].newest >= id) return 0;
      any = 1;
    }
  return any;
}

/* The played share, a moving average over about 64 chunks (16 s at 4 a
 * second): what our REQUESTs tell suppliers (ptv_node_set_nonup_poor). */
static void note_played(ptv_node *n, int present) {
  int32_t v = n->played_avg, target = present ? 65535 : 0;
  n->played_avg = (uint16_t)(v + (target - v) / 64);
}

static ptv_tstamp start_not_before(const ptv_node *n) {
  if (!n->epoch_known) return 0;
  return n->epoch + (ptv_tstamp)(n->start_chunk + 1) * n->chunk_us + n->cfg.buffer_us;
}

/* The playout clock is fixed at start, so is the lag but for pauses, catch-up
 * and slow-down: when chunk start_chunk was played less when the source
 * began it. */
static ptv_tstamp play_lag(const ptv_node *n) {
  ptv_tstamp ts = n->epoch + (ptv_tstamp)n->start_chunk * n->chunk_us;
  return n->play_t0 > ts ? n->play_t0 - ts : 0;
}

/* Live catch-up: while the lag is above the target and the next chunks are
 * in hand, play a little faster than real time (as players do for live
 * latency), so the lag falls to the target with no chunk skipped. The lag
 * undone goes back to the pause budget. */
static ptv_tstamp catchup_target(const ptv_node *n) {
  if (n->target_lag) return n->target_lag;
  return n->cfg.live_catchup ? n->cfg.buffer_us + n->chunk_us : 0;
}

static void speed_up(ptv_node *n) {
  ptv_tstamp lag = play_lag(n);
  ptv_tstamp step = (ptv_tstamp)n->chunk_us * SPEEDUP_PCT / 100;
  if (lag < catchup_target(n) + step) return;
  for (ptv_chunk_id k = 0; k < SPEEDUP_AHEAD; k++)
    if (!has_chunk(n, n->play_next + k)) return;
  n->play_t0 -= step;
  n->shift_us = n->shift_us > step ? n->shift_us - step : 0;
  n->st.speedup_us += step;
}

/* How much of the stream a newcomer holds before it starts playing: half
 * its buffer, at most PREFETCH_MAX_US; a stripe peer, its whole buffer, at
 * most twice that, and it waits for it up to STRIPE_START_WAIT_US. Its
 * first chunks come from partners whose uplinks are mostly committed to
 * pushes, and the chunks just after a half-buffer prefetch were most of
 * the newcomers' misses (churn, 1,000 peers, seeds 1-3, with on_request's
 * newcomer rule: share >= 0.99 0.964 / 0.973 / 0.980 -> 0.984 / 0.985 /
 * 0.988; startup p50 1.3-1.6 s -> 2.5 s). */
static ptv_tstamp prefetch_us(const ptv_node *n) {
  if (n->nstripes)
    return n->cfg.buffer_us < 2 * PREFETCH_MAX_US ? n->cfg.buffer_us : 2 * PREFETCH_MAX_US;
  return n->cfg.buffer_us / 2 < PREFETCH_MAX_US ? n->cfg.buffer_us / 2 : PREFETCH_MAX_US;
}

/* Near capacity: the tracker's figure for the peers' mean upload is below
 * NEAR_CAP_PCT % of the stream rate (we know the rate from the chunks we
 * hold). 0 while either is unknown. */
static int near_capacity(const ptv_node *n) {
  uint32_t r = stream_kbps(n);
  return n->swarm_kbps && r && (uint64_t)n->swarm_kbps * 100 < (uint64_t)r * NEAR_CAP_PCT;
}

/* Known not to be near capacity: both figures known, and the swarm's mean
 * upload at least NEAR_CAP_PCT % of the stream rate. */
static int roomy(const ptv_node *n) {
  uint32_t r = stream_kbps(n);
  return n->swarm_kbps && r && !near_capacity(n);
}

/* A stripe peer starts 3.5 s after it chose its start point, however soon
 * its prefetch is in hand (session 33), pulling meanwhile up to
 * STRIPE_PREPLAY_US past it, so it begins with about 4 s of the stream
 * rather than 2 and at the lag the wait gives; not near capacity, where
 * those pulls are demand the uplinks cannot take (0.90 x r_max, seeds
 * 1-7, share >= 0.99: 0.987 / 0.936 / 0.811 / 0.945 / 0.999 / 0.999 /
 * 0.071 with them). Churn, 1,000 peers, seeds
 * 1-12: newcomers with a miss in their first 30 s of playing 17.0% ->
 * 7.8%, stayers >= 0.99 mean 0.9940 -> 0.9986 (seeds 1-24: 21 -> 24 of
 * 24), startup p50 3.5 -> 3.75 s; the longer pull horizon alone started
 * them at 2.1 s and left 14.4%, starting 0.75-1.5 s further back instead
 * of waiting 15-16% (more of what offers do not bring had to be pulled).
 * It waits for its whole buffer up to 3.5 s (2.25 s until
 * session 32: churn, 1,000 peers, with push_kids, stayers >= 0.99 over
 * seeds 1-24 0.9931 mean, 4 seeds below 0.99 -> 0.9946, none; the churn
 * misses were newcomers', and the longer wait starts them further behind
 * live, at a cost of startup p50 2.5 -> 3.7 s); near capacity up
 * to 7.5 s. There the uplinks are nearly all committed while the peers
 * join: the last prefetch chunks are not pulled (not due soon enough), they
 * come by offers from what upload is spare, and a newcomer that starts
 * without them misses while it adds its demand to the joins. Waiting is
 * admission control (rate sweep at 0.90 x r_max, seeds 1-6, share >= 0.99
 * of peers at >= 0.99: 2.25 s everywhere 0.935 / 0.883 / 0.952 / ...;
 * near capacity 7.5 s 0.994 / 0.990 / 0.998 / 0.994 / 0.995 / 0.991;
 * 10 s 0.992 / 0.988 / 1.000 / 0.993 / 0.997 / 0.991; 12.5 s worse,
 * 0.979-0.987: the weakest late joiners fall more than a buffer map behind
 * their partners). Everywhere, the 10 s wait cost lag where the swarm is
 * not short (120 peers, RI 1.4: lag p95 6.7 -> 12.2 s, above the mesh's
 * 12.0), startup (steady p50 2.5 -> 4.6-6.7 s) and symmetric-NAT peers
 * (NAT mix seed 1: 0.987 -> 0.942); gated on partners' backlog it was
 * not enough (0.90 seeds 1 / 2: 0.939 / 0.972). */
static ptv_tstamp start_wait(const ptv_node *n) {
  if (!n->nstripes) return START_WAIT_US;
  return near_capacity(n) ? NEAR_CAP_START_WAIT_US : STRIPE_START_WAIT_US;
}

/* Near capacity, adaptive playout the other way: a fed peer that plays
 * closer to live than its stripes' delays need (the strategy's target lag:
 * the slowest stripe's delay plus four deviations) plays up to SLOWDOWN_PCT
 * slower than real time until it is there, so pushes arrive before their
 * chunks are due instead of each late one costing a miss and a pause. At
 * 0.90 x r_max the uplinks are ~94% busy and a stripe's delay varies by
 * seconds (seed 7: failing peers' misses were mostly pushes and pulls under
 * way, at lags of 16-28 s under stripes whose delay + 4 deviations was
 * 30-39 s). Never past SLOWDOWN_MAP_MARGIN_US inside what a buffer map spans
 * behind its newest chunk: further back, partners no longer show what we
 * lack (without that bound: lag p95 40-47 s and the weakest late joiners
 * failed). Only near capacity: elsewhere the target's four deviations cost
 * lag for nothing (steady, RI 1.41: lag p95 5.6 -> 6.5-6.8 s). */
static void slow_down(ptv_node *n) {
  if (!n->target_lag || !near_capacity(n)) return;
  ptv_tstamp lag = play_lag(n);
  ptv_tstamp step = (ptv_tstamp)n->chunk_us * SLOWDOWN_PCT / 100;
  ptv_tstamp span = (ptv_tstamp)MAP_BITS * n->chunk_us;
  if (span <= SLOWDOWN_MAP_MARGIN_US || lag + step > span - SLOWDOWN_MAP_MARGIN_US) return;
  if (lag + step > n->target_lag) return;
  n->play_t0 += step;
  n->st.slowdown_us += step;
}

static void playout(ptv_node *n, ptv_tstamp now) {
  if (!n->start_decided || n->left || n->cfg.role == PTV_ROLE_SOURCE) return;
  if (!n->playing) {
    /* Start once the first chunks are in hand (see prefetch_us), so the
     * clock does not start on one chunk with its successors still far away;
     * give up waiting for the full prefetch after start_wait. */
    ptv_chunk_id pre = (ptv_chunk_id)(prefetch_us(n) / n->chunk_us);
    if (pre < 1) pre = 1;
    ptv_chunk_id k = 0;
    while (k < pre && has_chunk(n, n->start_chunk + k)) k++;
    /* A stripe peer never starts sooner than STRIPE_START_WAIT_US, unless
     * near capacity or not knowing whether it is (see start_wait). */
    if (n->nstripes && k > 0 && now < n->decided_at + STRIPE_START_WAIT_US && roomy(n)) return;
    if (k == 0 || (k < pre && now < n->decided_at + start_wait(n))) {
      if (k == 0 && now >= n->decided_at + START_RETRY_US) decide_start(n, now);
      return;
    }
    /* Never closer to live than the buffer: matters when the stream has
     * only just begun and there is no older chunk to start from. */
    if (now < start_not_before(n)) return;
    n->playing = 1;
    n->play_t0 = now;
    n->st.play_start = now;
    if (n->cb.on_play_start) n->cb.on_play_start(n->user, n->start_chunk, now);
  }
  while (deadline_of(n, n->play_next, now) <= now) {
    ptv_chunk_id id = n->play_next;
    int present = has_chunk(n, id);
    if (id != n->late_id) { /* each chunk counts once, at its first deadline */
      n->st.chunks_due++;
      if (!present) {
        n->st.chunks_missed++;
        if (chunk_on_its_way(n, id)) n->st.miss_on_way++;
        else if (held_by_partner(n, id)) n->st.miss_held++;
        else n->st.miss_nowhere++;
      }
      if (n->cb.on_playout) n->cb.on_playout(n->user, id, present, now);
    }
    if (id != n->late_id) {
      n->miss_run = present ? 0 : n->miss_run + 1;
      note_played(n, present);
    }
    if (!present && n->miss_run >= CATCHUP_RUN) {
      ptv_chunk_id tgt = partners_median_play(n, PTV_ID_NONE, 1);
      if (tgt != PTV_ID_NONE && tgt > id + CATCHUP_GAP) {
        /* A blackout (a partition, a lost neighbourhood) left us far
         * behind partners that are fed again: catch up, jump to where they
         * play, rather than fetch what we are late for while they trade
         * other chunks (after a partition heals, every peer of the cut-off
         * half was back within 10 s, not 13-17 s). The chunks jumped over
         * count as missed, now; the lag the pauses built up is handed back
         * to the pause budget as far as the jump undoes it. */
        for (ptv_chunk_id k = id + 1; k < tgt; k++) {
          n->st.chunks_due++;
          n->st.chunks_missed++;
          note_played(n, 0);
          if (held_by_partner(n, k)) n->st.miss_held++;
          else n->st.miss_nowhere++;
          if (n->cb.on_playout) n->cb.on_playout(n->user, k, 0, now);
        }
        ptv_tstamp jump = (ptv_tstamp)(tgt - id) * n->chunk_us;
        n->play_t0 -= jump; /* tgt is due when id was */
        n->shift_us = n->shift_us > jump ? n->shift_us - jump : 0;
        n->play_next = tgt;
        n->late_id = PTV_ID_NONE;
        n->miss_run = 0;
        n->st.catchups++;
        continue;
      }
    }
    /* A miss (counted above) pauses playback rather than skipping when
     * waiting helps: the clock, and so the lag, moves back, so the lag grows
     * to what this peer's place in the overlay needs, in a few pauses rather
     * than one miss per chunk. Every pause is counted (stalls, stall_us). */
    ptv_chunk_id med = PTV_ID_NONE;
    if (!present && id != n->late_id && n->shift_us + n->chunk_us <= REANCHOR * n->cfg.buffer_us)
      med = partners_median_play(n, PTV_ID_NONE - 1, 0);
    if (med != PTV_ID_NONE && med + 1 < id) {
      /* We play ahead of what our partners play: they have found the lag
       * their place in the overlay sustains and we have not. Rebuffer once,
       * back to their median playback point (as a newcomer would start),
       * rather than miss chunk after chunk on the way there. */
      ptv_tstamp step = (ptv_tstamp)(id - med) * n->chunk_us;
      if (n->shift_us + step > REANCHOR * n->cfg.buffer_us)
        step = REANCHOR * n->cfg.buffer_us - n->shift_us;
      n->late_id = id;
      n->play_t0 += step;
      n->shift_us += step;
      n->st.stalls++;
      continue;
    }
    /* Otherwise, a chunk on its way or not yet reached by any partner: pause
     * LATE_STEP chunks. Skip when it is hopeless (a hole the partners have
     * passed) or the lag has grown by LATE_BUDGET buffers already. */
    if (!present && n->shift_us + n->chunk_us <= LATE_BUDGET * n->cfg.buffer_us &&
        (chunk_on_its_way(n, id) || ahead_of_partners(n, id))) {
      ptv_tstamp step = (ptv_tstamp)LATE_STEP * n->chunk_us;
      /* A viewer that catches up asked for low latency: its pauses are at
       * most half its buffer (in whole chunks; 400 ms pauses on a 0.5 s
       * buffer with 100 ms chunks made glass to glass 1.25 s at p95). */
      if (n->cfg.live_catchup && step > n->cfg.buffer_us / 2) {
        step = n->cfg.buffer_us / 2 / n->chunk_us * n->chunk_us;
        if (step < n->chunk_us) step = n->chunk_us;
      }
      /* Near the budget, pause for what is left of it, in one stall rather
       * than a chunk at a time (a run of up to LATE_STEP short stalls). */
      if (n->shift_us + step > LATE_BUDGET * n->cfg.buffer_us)
        step = LATE_BUDGET * n->cfg.buffer_us - n->shift_us;
      n->late_id = id;
      n->play_t0 += step;
      n->shift_us += step;
      n->st.stalls++;
      continue;
    }
    n->play_next++;
    if (present && catchup_target(n)) speed_up(n);
    if (present) slow_down(n);
  }
}

/* ---- partners ----------------------------------------------------------- */

static partner *alloc_partner(ptv_node *n, const ptv_peer_desc *d, uint8_t state,
                              ptv_tstamp now) {
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state == P_FREE) {
      partner *p = &n->p[i];
      memset(p, 0, sizeof(*p));
      n->offers_idle = 0;
      p->id = d->id;
      p->nat = d->nat;
      p->upload_kbps = d->upload_kbps;
      p->state = state;
      n->pid[i] = d->id;
      p->newest = PTV_ID_NONE;
      p->last_heard = p->last_useful = p->since = now;
      return p;
    }
  return NULL;
}

int ptv_node_connect(ptv_node *n, const ptv_peer_desc *d, ptv_tstamp now) {
  if (d->id == n->cfg.self || find_partner(n, d->id) || is_blocked(n, d->id, now))
    return PTV_ERR_INVALID_ARG;
  partner *p = alloc_partner(n, d, P_PENDING, now);
  if (!p) return PTV_ERR_FULL;
  ptv_msg m = {.type = PTV_MSG_CONNECT};
  m.u.connect.nat = n->cfg.nat;
  m.u.connect.upload_kbps = declared_kbps(n);
  send_msg(n, d->id, &m);
  return 0;
}

int ptv_node_drop_partner(ptv_node *n, ptv_id id, ptv_tstamp now) {
  partner *p = find_partner(n, id);
  if (!p) return PTV_ERR_NOT_FOUND;
  ptv_msg m = {.type = PTV_MSG_DISCONNECT};
  send_msg(n, id, &m);
  remove_partner(n, p);
  n->st.partner_changes++;
  (void)now;
  return 0;
}

int ptv_node_partner_unanswered(ptv_node *n, ptv_id id, ptv_tstamp now) {
  partner *p = find_partner(n, id);
  if (!p || p->state != P_UP) return PTV_ERR_NOT_FOUND;
  int released = 0;
  for (int i = 0; i < n->ndlq;) {
    if (n->dlq[i].from == id) {
      if (p->outstanding && !n->dlq[i].offered) p->outstanding--;
      n->dlq[i] = n->dlq[--n->ndlq];
      released++;
    } else {
      i++;
    }
  }
  p->choke_until = now + CHOKE_US;
  if (released) {
    n->st.unanswered++;
    schedule(n, now);
  }
  return 0;
}

static void fill_partners(ptv_node *n, ptv_tstamp now, int max_new) {
  if (n->cfg.role == PTV_ROLE_SOURCE) return;
  uint32_t have = count_partners(n, 0);
  ptv_peer_desc cands[PTV_SAMPLER_VIEW];
  while (have < n->cfg.target_partners && max_new-- > 0) {
    size_t nc = 0;
    for (int i = 0; i < n->view.n; i++)
      if (!find_partner(n, n->view.v[i].id)) cands[nc++] = n->view.v[i];
    if (nc == 0) return;
    int pick = -1;
    if (n->strat->pick_candidate) pick = n->strat->pick_candidate(n, cands, nc, rnd(n));
    else pick = (int)(rnd(n) % nc);
    if (pick < 0 || (size_t)pick >= nc) return;
    if (ptv_node_connect(n, &cands[pick], now) != 0) return;
    have++;
  }
}

static int starving(const ptv_node *n, ptv_tstamp now) {
  return n->cfg.role == PTV_ROLE_PEER && n->start_decided && now > n->last_new_chunk + STARVE_US;
}

static void rejoin(ptv_node *n, ptv_tstamp now, int force) {
  if (n->cfg.tracker == PTV_ID_NONE) return;
  if (!force && n->last_rejoin && now < n->last_rejoin + REJOIN_US) return;
  n->last_rejoin = now;
  ptv_msg m = {.type = PTV_MSG_JOIN};
  m.u.join.role = n->cfg.role;
  m.u.join.nat = n->cfg.nat;
  m.u.join.upload_kbps = declared_kbps(n);
  send_msg(n, n->cfg.tracker, &m);
}

void ptv_node_rejoin(ptv_node *n, ptv_tstamp now) {
  if (!n->started || n->left) return;
  n->last_now = now;
  rejoin(n, now, 1);
}

/* Healing: drop silent partners; when starving (no new chunk for a while),
 * replace partners that have had nothing for us and ask the tracker for fresh
 * peers, which is how two halves of a partitioned overlay find each other
 * again once the network heals. */
static void maintain(ptv_node *n, ptv_tstamp now) {
  for (int i = 0; i < n->maxp; i++) {
    partner *p = &n->p[i];
    if (p->state == P_UP && now > p->last_heard + PARTNER_TIMEOUT_US) {
      if (n->cfg.role == PTV_ROLE_SOURCE && p->sub_out) source_lost_child(n, p, now);
      ptv_sampler_remove(&n->view, p->id);
      remove_partner(n, p);
    } else if (p->state == P_PENDING && now > p->since + CONNECT_TIMEOUT_US) {
      ptv_sampler_remove(&n->view, p->id);
      remove_partner(n, p);
    }
  }
  if (starving(n, now)) {
    rejoin(n, now, 0);
    int dropped = 0;
    for (int i = 0; i < n->maxp && dropped < STARVE_DROP; i++) {
      partner *p = &n->p[i];
      if (p->state == P_UP && now > p->last_useful + USELESS_US &&
          now > p->since + USELESS_US) {
        ptv_node_drop_partner(n, p->id, now);
        dropped++;
      }
    }
    fill_partners(n, now, 2 + dropped);
  } else {
    fill_partners(n, now, 2);
  }
  /* A stripe we were fed on and are not any more: our maps say so now, not
   * at the next chunk (see ptv_node_depth). */
  if (n->nstripes && n->cfg.role == PTV_ROLE_PEER) {
    uint16_t unfed = 0;
    for (unsigned s = 0; s < n->nstripes; s++)
      if (ptv_node_depth(n, s) == 255) unfed |= (uint16_t)(1u << s);
    if (unfed & ~n->unfed_told) bm_dirty(n, now);
    n->unfed_told = unfed;
  }
  if (n->strat->tick) n->strat->tick(n, now);
}

/* ---- receiving ---------------------------------------------------------- */

/* A peer that forged chunks (found by us, or banned by the tracker):
 * disconnected, forgotten, and refused for BLOCK_US. */
static void cut_off(ptv_node *n, ptv_id id, ptv_tstamp now) {
  if (id == n->cfg.self || id == n->cfg.tracker) return;
  int slot = 0;
  for (int i = 0; i < BLOCK_MAX; i++) {
    if (n->blocked[i] == id) {
      slot = i;
      break;
    }
    if (n->blocked_until[i] < n->blocked_until[slot]) slot = i;
  }
  n->blocked[slot] = id;
  n->blocked_until[slot] = now + BLOCK_US;
  partner *p = find_partner(n, id);
  if (p) {
    ptv_msg d = {.type = PTV_MSG_DISCONNECT};
    send_msg(n, id, &d);
    remove_partner(n, p);
  }
  ptv_sampler_remove(&n->view, id);
}

static void on_chunk(ptv_node *n, ptv_id from, partner *p, const ptv_msg_chunk *c,
                     ptv_tstamp now) {
  if (n->cfg.role == PTV_ROLE_SOURCE) return;
  if (!n->epoch_known) {
    n->epoch = c->ts_us - (ptv_tstamp)c->chunk * n->chunk_us;
    n->epoch_known = 1;
  }
  if (!n->start_decided) return; /* pushed before we chose where to start */
  if (has_chunk(n, c->chunk) || c->chunk < n->have.base) { /* duplicate */
    n->st.dup_chunks++;
    return;
  }
  if (n->playing && c->chunk < n->play_next) { /* too late to be useful */
    n->st.late_chunks++;
    return;
  }
  if (n->pl) {
    /* Only the source's own bytes are played or forwarded. A forgery cuts
     * its sender off and is reported, so the tracker can ban it. */
    if ((c->flags & PTV_CHUNK_DETACHED) ||
        (n->cb.verify_chunk && n->cb.verify_chunk(n->user, c) != 0)) {
      n->st.chunks_bad++;
      cut_off(n, from, now);
      if (n->cfg.tracker != PTV_ID_NONE) {
        ptv_msg r;
        MSG_INIT(r, PTV_MSG_REPORT, report);
        r.u.report.suspect = from;
        r.u.report.reason = PTV_REPORT_BAD_CHUNK;
        send_msg(n, n->cfg.tracker, &r);
      }
      return;
    }
    if (pl_store(n, c) != 0) return; /* no memory: as if it never came */
  }
  if (ptv_chunkset_add(&n->have, c->chunk) != 1) return;
  if (now > c->ts_us) n->st.recv_delay_us += now - c->ts_us;
  n->st.recv_new++;
  n->meta[c->chunk % PTV_CHUNKSET_BITS] =
      (c->payload_len & 0x0fffffffu) | ((uint32_t)(c->flags & PTV_CHUNK_CONTENT_FLAGS) << 28);
  n->avg_chunk = n->avg_chunk ? (n->avg_chunk * 7 + c->payload_len) / 8 : c->payload_len;
  n->st.bytes_down += c->payload_len;
  if (c->chunk == n->have.newest) n->last_new_chunk = now;
  if (p) {
    p->chunks_from++;
    p->last_useful = now;
  }
  if (n->nstripes) {
    /* Parent health: the share of its stripes' chunks it brought first. */
    partner *par = stripe_parent(n, c->chunk % n->nstripes);
    if (!par) n->st.stripe_orphan++;
    else if (par == p) n->st.stripe_parent++;
    else n->st.stripe_other++;
    if (par) {
      int got = par == p;
      par->deliv = (uint16_t)((7u * par->deliv + (got ? 65535u : 0u)) / 8u);
      if (got && now > c->ts_us) {
        unsigned s = c->chunk % n->nstripes;
        ptv_tstamp d = now - c->ts_us, *sd = &n->stripe_delay[s];
        n->tree_delay = n->tree_delay ? (7 * n->tree_delay + d) / 8 : d;
        if (*sd) { /* as TCP keeps its round-trip time: mean and deviation */
          ptv_tstamp dev = d > *sd ? d - *sd : *sd - d;
          n->stripe_dev[s] = (3 * n->stripe_dev[s] + dev) / 4;
          *sd = (7 * *sd + d) / 8;
        } else {
          *sd = d;
          n->stripe_dev[s] = d / 4;
        }
      }
    }
  }
  if (n->cb.on_chunk) n->cb.on_chunk(n->user, from, c->chunk, now);
  pl_trim(n);
  bm_dirty(n, now);
  if (n->nstripes) push_stripe(n, c->chunk, now);
}

static void on_buffermap(ptv_node *n, partner *p, const ptv_msg_buffermap *b,
                         ptv_tstamp now) {
  p->has_map = 1;
  p->map_base = b->base;
  p->queue_ms = b->queue_ms;
  p->play = b->play;
  for (unsigned s = 0; s < NODE_STRIPES_MAX; s++) {
    uint8_t d = s < b->ndepth ? b->depth[s] : 255;
    if ((p->sub_in >> s & 1) && d == 255 && p->depth[s] != 255) bm_dirty(n, now); /* ditto */
    p->depth[s] = d;
    p->kids[s] = s < b->ndepth ? b->kids[s] : 0;
  }
  if (b->suspect != PTV_ID_NONE && n->strat->on_report && b->suspect != n->cfg.self)
    n->strat->on_report(n, p->id, b->suspect, b->suspect_deliv, now);
  p->free_slots = b->free_slots;
  p->price_kbps = b->price_kbps;
  memset(p->map, 0, sizeof(p->map));
  p->newest = PTV_ID_NONE;
  unsigned nb = b->nbits > MAP_BITS ? MAP_BITS : b->nbits;
  /* A byte at a time (wire bytes are MSB-first): maps arrive several times
   * a second from every partner. */
  for (unsigned j = 0; j < (nb + 7) / 8; j++)
    p->map[j >> 3] |= (uint64_t)rev8(b->bits[j]) << (8 * (j & 7));
  for (unsigned w = 0; w < MAP_BITS / 64; w++) {
    unsigned first = w * 64;
    if (nb <= first) p->map[w] = 0;
    else if (nb < first + 64) p->map[w] &= ~0ULL >> (first + 64 - nb);
    if (p->map[w]) p->newest = b->base + first + 63 - (unsigned)__builtin_clzll(p->map[w]);
  }
  /* A partner with chunks we lack is useful even before it sends one. */
  if (p->newest != PTV_ID_NONE && n->start_decided &&
      (n->have.count == 0 || p->newest > n->have.newest))
    p->last_useful = now;
  if (!n->start_decided && n->cfg.role == PTV_ROLE_PEER) decide_start(n, now);
}

static void on_connect(ptv_node *n, ptv_id from, const ptv_msg_connect *c,
                       ptv_tstamp now) {
  ptv_msg m = {.type = PTV_MSG_CONNECT_ACK};
  partner *p = find_partner(n, from);
  ptv_peer_desc d = {from, c->nat, 0, c->upload_kbps};
  if (!p) {
    if (count_partners(n, 0) >= n->maxp && !n->left && !is_blocked(n, from, now) &&
        n->strat->make_room)
      n->strat->make_room(n, &d, now);
    int ok = count_partners(n, 0) < n->maxp && !n->left && !is_blocked(n, from, now);
    if (ok && n->strat->accept) ok = n->strat->accept(n, &d, now);
    if (ok) p = alloc_partner(n, &d, P_UP, now);
    if (!p) {
      m.u.connect_ack.status = ok ? PTV_ACK_FULL : PTV_ACK_REFUSED;
      if (count_partners(n, 0) >= n->maxp) m.u.connect_ack.status = PTV_ACK_FULL;
      send_msg(n, from, &m);
      return;
    }
  }
  p->state = P_UP;
  p->upload_kbps = c->upload_kbps;
  p->nat = c->nat;
  m.u.connect_ack.status = PTV_ACK_ACCEPT;
  send_msg(n, from, &m);
  ptv_sampler_add(&n->view, &d);
  send_bm_to(n, from, now);
}

int ptv_node_recv(ptv_node *n, ptv_id from, const uint8_t *buf, size_t len,
                  ptv_tstamp now) {
  ptv_msg m;
  n->last_now = now;
  int rv = ptv_wire_decode(&m, buf, len);
  if (rv < 0 || (m.type != PTV_MSG_OFFER && m.type != PTV_MSG_REQUEST &&
                 m.type != PTV_MSG_BUSY && m.type != PTV_MSG_SHUFFLE &&
                 m.type != PTV_MSG_PEERS && m.type != PTV_MSG_BUFFERMAP))
    n->offers_idle = 0; /* chunks, selects, partners: rescan (maps: below) */
  if (rv < 0) {
    n->st.bad_msgs++;
    partner *bad = find_partner(n, from);
    if (bad) { /* malformed input costs the sender its partnership */
      remove_partner(n, bad);
      ptv_sampler_remove(&n->view, from);
    }
    return rv;
  }
  if (n->left) return 0;
  partner *p = find_partner(n, from);
  if (p) p->last_heard = now;
  switch (m.type) {
  case PTV_MSG_PEERS:
    if (from != n->cfg.tracker) break;
    if (n->chunk_us == 0 && m.u.peers.chunk_us) n->chunk_us = m.u.peers.chunk_us;
    if (m.u.peers.live != PTV_ID_NONE) {
      n->live_hint = m.u.peers.live;
      n->live_hint_t = now;
    }
    if (m.u.peers.cap_kbps) n->swarm_kbps = m.u.peers.cap_kbps;
    for (int i = 0; i < m.u.peers.n; i++) ptv_sampler_add(&n->view, &m.u.peers.descs[i]);
    n->t_join = PTV_TSTAMP_MAX;
    if (starving(n, now)) {
      /* Starving: the tracker's peers are the freshest news of the rest of
       * the overlay (after a partition our view knows only our own side).
       * Try them all, beyond the target, up to the partner limit; the
       * useless partners they replace are dropped by maintain(). */
      uint32_t have = count_partners(n, 0);
      for (int i = 0; i < m.u.peers.n && have < n->maxp; i++) {
        const ptv_peer_desc *d = &m.u.peers.descs[i];
        if (d->id == n->cfg.self || find_partner(n, d->id)) continue;
        if (ptv_node_connect(n, d, now) == 0) have++;
      }
    }
    fill_partners(n, now, n->cfg.target_partners);
    break;
  case PTV_MSG_SHUFFLE: {
    ptv_peer_desc out[PTV_WIRE_MAX_DESCS];
    if (m.u.shuffle.reply == 0) {
      ptv_msg r = {.type = PTV_MSG_SHUFFLE};
      r.u.shuffle.reply = 1;
      r.u.shuffle.n = (uint8_t)ptv_sampler_shuffle_answer(
          &n->view, m.u.shuffle.descs, m.u.shuffle.n, rnd_thunk, n, out);
      memcpy(r.u.shuffle.descs, out, r.u.shuffle.n * sizeof(out[0]));
      send_msg(n, from, &r);
    } else {
      ptv_sampler_merge(&n->view, m.u.shuffle.descs, m.u.shuffle.n, NULL, 0);
    }
    break;
  }
  case PTV_MSG_CONNECT:
    on_connect(n, from, &m.u.connect, now);
    break;
  case PTV_MSG_CONNECT_ACK:
    if (!p || p->state != P_PENDING) break;
    if (m.u.connect_ack.status == PTV_ACK_ACCEPT) {
      p->state = P_UP;
      p->since = now;
      send_bm_to(n, from, now);
    } else {
      remove_partner(n, p);
      fill_partners(n, now, 1);
    }
    break;
  case PTV_MSG_DISCONNECT:
  case PTV_MSG_LEAVE:
    if (p) remove_partner(n, p);
    if (m.type == PTV_MSG_LEAVE) ptv_sampler_remove(&n->view, from);
    break;
  case PTV_MSG_BUFFERMAP:
    if (!p || p->state != P_UP) {
      /* Not (or no longer) partners: say so, so it stops counting on us. */
      ptv_msg d = {.type = PTV_MSG_DISCONNECT};
      send_msg(n, from, &d);
      break;
    }
    on_buffermap(n, p, &m.u.buffermap, now);
    /* A map changes only what p lacks: the offer scan stays skipped unless
     * p now lacks something we could offer it (maps are most messages). */
    if (n->offers_idle && (n->cfg.role != PTV_ROLE_PEER ||
                           (p->state == P_UP && p->offer_until <= now && peer_useful_any(n, p))))
      n->offers_idle = 0;
    break;
  case PTV_MSG_REQUEST:
    if (p && p->state == P_UP) on_request(n, p, &m.u.request, now);
    break;
  case PTV_MSG_CHUNK:
    on_chunk(n, from, p, &m.u.chunk, now);
    break;
  case PTV_MSG_OFFER:
    if (p && p->state == P_UP) on_offer(n, p, &m.u.offer, now);
    break;
  case PTV_MSG_SELECT:
    if (p && p->state == P_UP) on_select(n, p, &m.u.select, now);
    break;
  case PTV_MSG_STRIPES:
    if (p && p->state == P_UP) on_stripes(n, p, &m.u.stripes, now);
    break;
  case PTV_MSG_BUSY:
    n->st.busy_recv++;
    if (p) p->choke_until = now + CHOKE_US;
    if (p && n->nstripes && (p->sub_in >> (m.u.busy.chunk % n->nstripes) & 1))
      p->deliv = (uint16_t)(7u * p->deliv / 8u); /* a push it dropped */
    for (int i = 0; i < n->ndlq; i++)
      if (n->dlq[i].id == m.u.busy.chunk && n->dlq[i].from == from) {
        if (p && p->outstanding && !n->dlq[i].offered) p->outstanding--;
        n->dlq[i] = n->dlq[--n->ndlq]; /* ask elsewhere at once */
        break;
      }
    break;
  case PTV_MSG_REPORT: /* from the tracker: a banned peer */
    if (from == n->cfg.tracker) cut_off(n, m.u.report.suspect, now);
    break;
  default: /* JOIN, HEARTBEAT are for the tracker */
    break;
  }
  expire_requests(n, now);
  if (!n->playing) playout(n, now);
  schedule(n, now);
  serve_uploads(n, now);
  make_offers(n, now);
  return 0;
}

/* ---- timers ------------------------------------------------------------- */

void ptv_node_prefetch(const ptv_node *n, int stage) {
  if (stage == 0) {
    __builtin_prefetch(n);
    __builtin_prefetch((const char *)n + 64);
    __builtin_prefetch(&n->p);
    __builtin_prefetch(&n->last_now);
    __builtin_prefetch(n->pid); /* computed, not loaded: n may be cold still */
    return;
  }
  int k = n->maxp < 16 ? n->maxp : 16; /* the first line of each */
#ifndef PF_NOPART
  for (int i = 0; i < k; i++) __builtin_prefetch(&n->p[i]);
#else
  (void)k;
#endif
}

ptv_tstamp ptv_node_get_expiry(const ptv_node *n) {
  if (!n->started || n->left) return PTV_TSTAMP_MAX;
  ptv_tstamp t = tmin(n->t_join, n->t_gossip);
  t = tmin(t, n->t_maint);
  t = tmin(t, n->t_heartbeat);
  t = tmin(t, n->t_bm_keep);
  t = tmin(t, n->t_bm_flush);
  if (n->nupq > 0) t = tmin(t, n->busy_until);
  for (int i = 0; i < n->nupq; i++)
    if (n->upq[i].promise) t = tmin(t, n->upq[i].expire + 1); /* its hold: serve_uploads */
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].offer_until > n->last_now) t = tmin(t, n->p[i].offer_until);
  if (n->busy_until > n->last_now + OFFER_AHEAD_US && n->have.count)
    t = tmin(t, n->busy_until - OFFER_AHEAD_US);
  for (int i = 0; i < n->ndlq; i++) t = tmin(t, n->dlq[i].timeout);
  if (n->playing) t = tmin(t, deadline_of(n, n->play_next, 0));
  else if (n->start_decided && n->cfg.role == PTV_ROLE_PEER) {
    ptv_tstamp w = n->decided_at + start_wait(n);
    if (w > n->last_now) t = tmin(t, w); /* only while still ahead */
    w = start_not_before(n);
    if (w > n->last_now) t = tmin(t, w);
  }
  if (n->cfg.role == PTV_ROLE_SOURCE && !n->pl) t = tmin(t, ptv_source_next_due(&n->src));
  return t;
}

/* A chunk the source has made: held, offered and pushed. */
static void source_new_chunk(ptv_node *n, const ptv_chunk_meta *cm, ptv_tstamp now);

static void source_tick(ptv_node *n, ptv_tstamp now) {
  ptv_chunk_meta cm;
  while (ptv_source_poll(&n->src, now, &cm)) source_new_chunk(n, &cm, now);
}

int64_t ptv_node_source_publish(ptv_node *n, const uint8_t *payload, uint32_t len,
                                int flags, ptv_tstamp now) {
  if (!n->pl || n->cfg.role != PTV_ROLE_SOURCE || !n->started || n->left || !payload ||
      len == 0 || len > PTV_NODE_MAX_PAYLOAD || (flags & ~PTV_CHUNK_CONTENT_FLAGS))
    return PTV_ERR_INVALID_ARG;
  n->last_now = now;
  ptv_chunk_meta cm = {n->src.next_id, now, len, (uint8_t)((flags & PTV_CHUNK_KEYFRAME) != 0)};
  uint8_t sig[PTV_WIRE_SIGLEN];
  ptv_msg_chunk c = {.chunk = cm.id, .ts_us = now,
                     .flags = (uint8_t)flags,
                     .payload_len = len, .payload = payload};
  if (n->cb.sign_chunk && n->cb.sign_chunk(n->user, &c, sig) == 0) {
    c.sig = sig;
    c.flags |= PTV_CHUNK_SIGNED;
  }
  if (pl_store(n, &c) != 0) return PTV_ERR_NOMEM;
  n->src.next_id++;
  source_new_chunk(n, &cm, now);
  pl_trim(n);
  serve_uploads(n, now);
  make_offers(n, now);
  return cm.id;
}

int ptv_node_chunk_payload(const ptv_node *n, ptv_chunk_id id, const uint8_t **payload,
                           uint32_t *len, int *flags) {
  const pl_slot *sl = pl_get(n, id);
  if (!sl) return PTV_ERR_NOT_FOUND;
  *payload = sl->data;
  *len = sl->len;
  if (flags) *flags = sl->flags & PTV_CHUNK_CONTENT_FLAGS;
  return 0;
}

int ptv_node_chunk_ts(const ptv_node *n, ptv_chunk_id id, ptv_tstamp *ts) {
  const pl_slot *sl = pl_get(n, id);
  if (!sl) return PTV_ERR_NOT_FOUND;
  *ts = sl->ts;
  return 0;
}

static void source_new_chunk(ptv_node *n, const ptv_chunk_meta *cm, ptv_tstamp now) {
  ptv_chunkset_add(&n->have, cm->id);
  n->copies[cm->id % PTV_CHUNKSET_BITS] = 0;
  n->meta[cm->id % PTV_CHUNKSET_BITS] =
      (cm->size & 0x0fffffffu) | ((uint32_t)(cm->keyframe ? PTV_CHUNK_KEYFRAME : 0) << 28);
  n->last_new_chunk = now;
  ptv_id targets[32];
  size_t k = 0;
  if (n->strat->push_targets) k = n->strat->push_targets(n, cm->id, targets, 32, rnd(n));
  for (size_t i = 0; i < k; i++) enqueue_upload(n, targets[i], cm->id, now + n->chunk_us);
  bm_dirty(n, now);
  if (n->nstripes) push_stripe(n, cm->id, now);
}

void ptv_node_handle_expiry(ptv_node *n, ptv_tstamp now) {
  if (!n->started || n->left) return;
  n->last_now = now;
  if (n->cfg.role == PTV_ROLE_SOURCE && !n->pl) source_tick(n, now);
  if (now >= n->t_join) {
    rejoin(n, now, 1);
    n->t_join = now + JOIN_RETRY_US;
  }
  if (now >= n->t_maint) {
    maintain(n, now);
    n->t_maint = now + MAINT_US;
  }
  if (now >= n->t_gossip) {
    ptv_peer_desc me = self_desc(n), out[PTV_SAMPLER_SHUFFLE];
    ptv_id target;
    size_t k = ptv_sampler_shuffle_start(&n->view, &me, rnd_thunk, n, out, &target);
    if (target != PTV_ID_NONE) {
      ptv_msg m = {.type = PTV_MSG_SHUFFLE};
      m.u.shuffle.n = (uint8_t)k;
      memcpy(m.u.shuffle.descs, out, k * sizeof(out[0]));
      send_msg(n, target, &m);
    }
    n->t_gossip = now + GOSSIP_US;
  }
  if (now >= n->t_heartbeat && n->cfg.tracker != PTV_ID_NONE) {
    ptv_msg m = {.type = PTV_MSG_HEARTBEAT};
    m.u.heartbeat.newest = n->have.count ? n->have.newest : PTV_ID_NONE;
    send_msg(n, n->cfg.tracker, &m);
    n->t_heartbeat =
        now + (n->cfg.role == PTV_ROLE_SOURCE ? SRC_HEARTBEAT_US : HEARTBEAT_US);
  }
  expire_requests(n, now);
  playout(n, now);
  schedule(n, now);
  serve_uploads(n, now);
  make_offers(n, now);
  if (now >= n->t_bm_flush || now >= n->t_bm_keep) flush_bm(n, now);
}

/* ---- life cycle --------------------------------------------------------- */

void ptv_node_config_default(ptv_node_config *c) {
  memset(c, 0, sizeof(*c));
  c->self = 0;
  c->tracker = PTV_ID_NONE;
  c->role = PTV_ROLE_PEER;
  c->nat = PTV_NAT_OPEN;
  c->upload_kbps = 1000;
  c->chunk_us = 250 * PTV_MS;
  c->buffer_us = 2 * PTV_S;
  c->target_partners = 8;
  c->max_partners = 14;
}

ptv_node *ptv_node_new(const ptv_node_config *c, const ptv_node_callbacks *cb,
                       void *user) {
  if (!cb || !cb->send || !cb->rand) return NULL;
  if (c->role == PTV_ROLE_SOURCE && (c->stream_kbps == 0 || c->chunk_us == 0))
    return NULL;
  uint8_t maxp = c->max_partners ? c->max_partners : 14;
  if (c->role == PTV_ROLE_SOURCE && c->max_partners == 0) {
    uint32_t slots = 3 * (c->upload_kbps / c->stream_kbps) + 4;
    maxp = (uint8_t)(slots > 64 ? 64 : slots);
  }
  size_t pids = (sizeof(ptv_node) + maxp * sizeof(ptv_id) + 63) / 64 * 64;
  size_t size = pids + maxp * sizeof(partner);
  ptv_node *n = aligned_alloc(64, size); /* partners start on a cache line */
  if (!n) return NULL;
  memset(n, 0, size);
  n->cfg = *c;
  n->cb = *cb;
  n->user = user;
  n->strat = c->strategy ? c->strategy : &ptv_strategy_mesh;
  n->maxp = maxp;
  n->p = (partner *)((char *)n + pids);
  for (int i = 0; i < maxp; i++) n->pid[i] = PTV_ID_NONE;
  if (c->role == PTV_ROLE_SOURCE) n->copies = calloc(PTV_CHUNKSET_BITS, 1);
  if (c->carry_payload) n->pl = calloc(PTV_CHUNKSET_BITS, sizeof(pl_slot));
  if ((c->role == PTV_ROLE_SOURCE && !n->copies) || (c->carry_payload && !n->pl)) {
    free(n->copies);
    free(n->pl);
    free(n);
    return NULL;
  }
  if (n->cfg.target_partners > n->maxp) n->cfg.target_partners = n->maxp;
  n->slot_pct = 100;
  n->played_avg = 65535;
  n->nstripes = n->strat->stripes > NODE_STRIPES_MAX ? NODE_STRIPES_MAX : n->strat->stripes;
  if (n->strat->init && !(n->sdata = n->strat->init(n))) {
    free(n->copies);
    free(n->pl);
    free(n);
    return NULL;
  }
  ptv_sampler_init(&n->view, c->self);
  ptv_chunkset_init(&n->have, 0);
  n->chunk_us = c->role == PTV_ROLE_SOURCE ? c->chunk_us : 0;
  n->t_join = n->t_gossip = n->t_maint = n->t_heartbeat = PTV_TSTAMP_MAX;
  n->t_bm_keep = n->t_bm_flush = PTV_TSTAMP_MAX;
  n->live_hint = n->late_id = n->suspect = PTV_ID_NONE;
  return n;
}

void ptv_node_free(ptv_node *n) {
  if (!n) return;
  if (n->strat->fini) n->strat->fini(n->sdata);
  if (n->pl)
    for (unsigned i = 0; i < PTV_CHUNKSET_BITS; i++) pl_free(n, &n->pl[i]);
  free(n->pl);
  free(n->txbuf);
  free(n->copies);
  free(n);
}

int ptv_node_start(ptv_node *n, ptv_tstamp now) {
  n->started = 1;
  n->join_time = now;
  n->st.join_time = now;
  n->last_new_chunk = now;
  n->t_maint = now + MAINT_US;
  n->t_gossip = now + GOSSIP_US / 2 + rnd(n) % GOSSIP_US;
  n->t_bm_keep = now + BM_KEEPALIVE_US;
  if (n->cfg.role == PTV_ROLE_SOURCE) {
    if (ptv_source_init(&n->src, now, n->cfg.chunk_us, n->cfg.stream_kbps, 1) != 0)
      return PTV_ERR_INVALID_ARG;
    n->epoch = now;
    n->epoch_known = 1;
    n->start_decided = 1;
    n->avg_chunk = ptv_source_chunk_bytes(&n->src);
  }
  if (n->cfg.tracker != PTV_ID_NONE) {
    n->t_join = now; /* sent by the first handle_expiry, at once */
    n->t_heartbeat = now + (n->cfg.role == PTV_ROLE_SOURCE ? SRC_HEARTBEAT_US : HEARTBEAT_US);
  } else {
    fill_partners(n, now, n->cfg.target_partners);
  }
  return 0;
}

void ptv_node_leave(ptv_node *n, ptv_tstamp now) {
  if (n->left) return;
  ptv_msg m = {.type = PTV_MSG_LEAVE};
  for (int i = 0; i < n->maxp; i++)
    if (n->p[i].state != P_FREE) send_msg(n, n->p[i].id, &m);
  if (n->cfg.tracker != PTV_ID_NONE) send_msg(n, n->cfg.tracker, &m);
  n->left = 1;
  (void)now;
}

void ptv_node_add_known(ptv_node *n, const ptv_peer_desc *d) {
  ptv_sampler_add(&n->view, d);
}

/* ---- accessors ---------------------------------------------------------- */

void ptv_node_get_stats(const ptv_node *n, ptv_node_stats *st) {
  *st = n->st;
  st->playing = n->playing;
  st->play_next = n->play_next;
  st->npartners = count_partners(n, 1);
  st->newest = n->have.count ? n->have.newest : PTV_ID_NONE;
  st->held = n->have.count;
  st->stall_us = n->shift_us;
  st->lag_us = 0;
  if (n->playing && n->epoch_known) st->lag_us = play_lag(n);
}

uint32_t ptv_node_npartners(const ptv_node *n) { return count_partners(n, 0); }

static void partner_info(const partner *p, ptv_partner_info *pi) {
  pi->id = p->id;
  pi->nat = p->nat;
  pi->established = p->state == P_UP;
  pi->upload_kbps = p->upload_kbps;
  pi->newest = p->newest;
  pi->has_map = p->has_map;
  pi->chunks_from = p->chunks_from;
  pi->chunks_to = p->chunks_to;
  pi->since = p->since;
  pi->sub_in = p->sub_in;
  pi->sub_out = p->sub_out;
  pi->sub_ask = p->sub_ask;
  memcpy(pi->depth, p->depth, sizeof(pi->depth));
  pi->free_slots = p->free_slots;
  pi->price_kbps = p->price_kbps;
  pi->deliv = p->deliv;
  pi->bid_kbps = p->bid_kbps;
  pi->sub_since = p->sub_since;
  pi->play = p->play;
  pi->last_heard = p->last_heard;
  pi->queue_ms = p->queue_ms;
}

int ptv_node_partner(const ptv_node *n, uint32_t i, ptv_partner_info *pi) {
  uint32_t k = 0;
  for (int j = 0; j < n->maxp; j++) {
    const partner *p = &n->p[j];
    if (p->state == P_FREE) continue;
    if (k++ != i) continue;
    partner_info(p, pi);
    return 0;
  }
  return PTV_ERR_NOT_FOUND;
}

size_t ptv_node_partners(const ptv_node *n, ptv_partner_info *out, size_t max) {
  size_t k = 0;
  for (int j = 0; j < n->maxp && k < max; j++)
    if (n->p[j].state != P_FREE) partner_info(&n->p[j], &out[k++]);
  return k;
}

const ptv_node_config *ptv_node_config_get(const ptv_node *n) { return &n->cfg; }
void *ptv_node_strategy_state(const ptv_node *n) { return n->sdata; }
void ptv_node_set_target_lag(ptv_node *n, ptv_tstamp lag_us) { n->target_lag = lag_us; }
void ptv_node_set_slot_pct(ptv_node *n, uint8_t pct) { n->slot_pct = pct > 100 ? 100 : pct; }

void ptv_node_set_nonup_defer(ptv_node *n, ptv_tstamp defer_us) { n->nonup_defer = defer_us; }
void ptv_node_set_nonup_poor(ptv_node *n, ptv_tstamp poor_us) { n->nonup_poor = poor_us; }
void ptv_node_set_push_kids(ptv_node *n, int on) { n->push_kids = on != 0; }
void ptv_node_report_suspect(ptv_node *n, ptv_id id, uint16_t deliv, ptv_tstamp now) {
  n->suspect = id;
  n->suspect_deliv = deliv;
  n->suspect_until = now + SUSPECT_US;
  bm_dirty(n, now);
}
int ptv_node_stripe_delay(const ptv_node *n, unsigned s, ptv_tstamp *mean, ptv_tstamp *dev) {
  if (s >= n->nstripes || !n->stripe_delay[s]) return PTV_ERR_NOT_FOUND;
  *mean = n->stripe_delay[s];
  *dev = n->stripe_dev[s];
  return 0;
}
uint8_t ptv_node_nstripes(const ptv_node *n) { return n->nstripes; }
ptv_tstamp ptv_node_tree_delay(const ptv_node *n) { return n->tree_delay; }
const ptv_sampler *ptv_node_view(const ptv_node *n) { return &n->view; }
int ptv_node_has_chunk(const ptv_node *n, ptv_chunk_id id) { return has_chunk(n, id); }
int ptv_node_pending(const ptv_node *n, ptv_chunk_id id, ptv_id *from, int *offered,
                     ptv_tstamp *timeout) {
  for (int i = 0; i < n->ndlq; i++)
    if (n->dlq[i].id == id) {
      *from = n->dlq[i].from;
      *offered = n->dlq[i].offered;
      *timeout = n->dlq[i].timeout;
      return 1;
    }
  return 0;
}
