/* ptv_node.h -- the PeerTV peer engine (and, with role SOURCE, the source).
 *
 * Sans-I/O in the ngtcp2 manner: the driver passes in messages and the time,
 * asks when the engine next wants to be woken, and receives outgoing messages
 * through a callback. No sockets, clocks, threads or globals inside, so the
 * simulator and the real runtime run exactly this code.
 *
 *   ptv_node_start(node, now)                  begin (join the tracker)
 *   ptv_node_recv(node, from, buf, len, now)   a message arrived
 *   ptv_node_get_expiry(node)                  next wake-up time
 *   ptv_node_handle_expiry(node, now)          call at or after that time
 *
 * A peer: joins through the tracker, keeps a gossip view (ptv_sampler), holds
 * partners, exchanges buffer maps, pulls chunks (deadline-aware, latest useful
 * first, re-requests on timeout or refusal), serves partners' requests paced
 * at its upload capacity, and plays chunks on a playout clock. A chunk that
 * misses its deadline counts as missed; if it is requested from or promised
 * by a partner it is played late (the clock moves back one chunk, at most
 * twice buffer_us in all, so the lag adapts to the peer's place in the overlay),
 * otherwise it is skipped: playback never waits for a hopeless chunk. A source: cuts the stream into chunks
 * (ptv_source), pushes each new chunk to some partners and serves requests.
 * The overlay shape (who partners with whom, what is pushed) is delegated to
 * a strategy (ptv_strategy.h).
 */
#ifndef PTV_NODE_H
#define PTV_NODE_H

#include "ptv_chunkset.h"
#include "ptv_sampler.h"
#include "ptv_types.h"
#include "ptv_wire.h"

typedef struct ptv_node ptv_node;
struct ptv_strategy;

typedef struct {
  /* Sends one encoded message. `virtual_len` bytes of chunk payload travel
   * with it without being in buf (simulation, DETACHED chunks); `bulk` is 1 for
   * chunk data, 0 for control. Return 0, or non-zero to report the send
   * failed (the engine treats the message as lost). */
  int (*send)(void *user, ptv_id to, const uint8_t *buf, size_t len,
              size_t virtual_len, int bulk);
  /* Uniform 64-bit random numbers. Required. */
  uint64_t (*rand)(void *user);
  /* Optional: a chunk reached its playback deadline; present says whether it
   * was there. The first call comes after on_play_start. */
  void (*on_playout)(void *user, ptv_chunk_id id, int present, ptv_tstamp now);
  /* Optional: playback started with chunk `first`. */
  void (*on_play_start)(void *user, ptv_chunk_id first, ptv_tstamp now);
  /* Optional: a chunk arrived that the node did not hold (for statistics). */
  void (*on_chunk)(void *user, ptv_id from, ptv_chunk_id id, ptv_tstamp now);
  /* Payload mode only (config carry_payload). Source: signs a chunk it
   * publishes: writes the PTV_WIRE_SIGLEN-byte signature of
   * ptv_wire_chunk_sigbase(c) followed by c->payload into sig; returns 0 or
   * non-zero (the chunk is then published unsigned). NULL: unsigned. */
  int (*sign_chunk)(void *user, const ptv_msg_chunk *c, uint8_t *sig);
  /* Peer: checks a received chunk (c->sig is NULL if it came unsigned);
   * returns 0 to accept it. A chunk refused is dropped, its sender is cut
   * off (disconnected, refused for BLOCK time) and reported to the tracker
   * (REPORT, reason BAD_CHUNK). NULL: every chunk is accepted. */
  int (*verify_chunk)(void *user, const ptv_msg_chunk *c);
} ptv_node_callbacks;

typedef struct {
  ptv_id self;
  ptv_id tracker;          /* PTV_ID_NONE: start from `seeds` only */
  uint8_t role;            /* PTV_ROLE_PEER or PTV_ROLE_SOURCE */
  uint8_t nat;             /* ptv_nat_type, as the node detected it */
  uint32_t upload_kbps;    /* upload capacity; requests are paced to it; 0 serves nothing */
  uint32_t claim_kbps;     /* capacity declared to others; 0: upload_kbps (the
                              simulator's free-riders claim more than they have) */
  uint32_t stream_kbps;    /* source: stream rate (chunk size = rate x duration) */
  uint32_t chunk_us;       /* source: chunk duration; peers learn it from the tracker */
  ptv_tstamp buffer_us;    /* playback starts this far behind the live point (or at
                              the partners' median playback point if further) */
  uint8_t target_partners; /* partners a peer looks for (default 8) */
  uint8_t max_partners;    /* partners accepted (default 14; source: from upload) */
  const struct ptv_strategy *strategy; /* NULL: the random mesh */
  /* 0: chunks travel DETACHED (sizes only: the simulator). 1: real payloads:
   * the source gets them from ptv_node_source_publish, peers keep them from
   * arrival until keep_us behind the newest chunk (and never before they are
   * played) and forward them with the source's signature. */
  uint8_t carry_payload;
  ptv_tstamp keep_us;      /* payload mode: default 8 s */
  /* 1: without a strategy's target lag (ptv_node_set_target_lag), catch up
   * to the lag the peer started with (buffer + one chunk), undoing the
   * pauses of late chunks and a start behind the live point, as live
   * players do. 0 (default, the simulator's baselines): the lag only grows. */
  uint8_t live_catchup;
} ptv_node_config;

/* Fills c with defaults (role peer, 8/14 partners, 2 s buffer, 250 ms chunks). */
void ptv_node_config_default(ptv_node_config *c);

/* Creates a node. Returns NULL on allocation failure or a config that makes no
 * sense (source without stream rate or chunk duration). */
ptv_node *ptv_node_new(const ptv_node_config *c, const ptv_node_callbacks *cb,
                       void *user);
void ptv_node_free(ptv_node *n);

/* Begins: a peer sends JOIN to the tracker, a source registers and starts its
 * chunk clock. Returns 0 or PTV_ERR_CALLBACK. */
int ptv_node_start(ptv_node *n, ptv_tstamp now);

/* The tracker forgot us (it restarted, or our connection to it was
 * replaced): JOIN again now, so it hands us out again and knows the live
 * point. Partnerships are untouched. */
void ptv_node_rejoin(ptv_node *n, ptv_tstamp now);

/* Graceful leave: tells partners and the tracker. The node stays allocated but
 * inert. */
void ptv_node_leave(ptv_node *n, ptv_tstamp now);

/* Processes one datagram from `from`. Returns 0, or the decoder's negative
 * PTV_ERR_* for a malformed message (the sender is penalised; the node is
 * unaffected). */
int ptv_node_recv(ptv_node *n, ptv_id from, const uint8_t *buf, size_t len,
                  ptv_tstamp now);

ptv_tstamp ptv_node_get_expiry(const ptv_node *n);
void ptv_node_handle_expiry(ptv_node *n, ptv_tstamp now);

/* A hint, no effect on behaviour: starts loading the state a call into the
 * node touches first. A driver that knows which nodes come next (the
 * simulator does) calls it with stage 0 two events ahead (the node's own
 * state, without reading it) and with stage 1 one event ahead (its partners,
 * found from that state). */
void ptv_node_prefetch(const ptv_node *n, int stage);

/* Payload-mode source: publishes the next chunk (payload copied; time
 * stamped `now`; signed, flags included, through callbacks.sign_chunk).
 * flags: PTV_CHUNK_KEYFRAME (starts with a keyframe) and/or
 * PTV_CHUNK_STALLED (a stall notice, not media), from ptv_wire.h; so 1 and
 * 0 still mean keyframe or not. Returns its chunk id (>= 0), or
 * PTV_ERR_INVALID_ARG (not a payload-mode source, not started, len 0 or
 * larger than PTV_NODE_MAX_PAYLOAD, another flag bit), PTV_ERR_NOMEM. */
#define PTV_NODE_MAX_PAYLOAD (8u << 20)
int64_t ptv_node_source_publish(ptv_node *n, const uint8_t *payload, uint32_t len,
                                int flags, ptv_tstamp now);

/* Payload mode: the payload of a held chunk (valid until the next call into
 * the node), and in *flags (may be NULL) its PTV_CHUNK_KEYFRAME and
 * PTV_CHUNK_STALLED bits as the source signed them. Returns 0, or
 * PTV_ERR_NOT_FOUND if not held (or already released). */
int ptv_node_chunk_payload(const ptv_node *n, ptv_chunk_id id, const uint8_t **payload,
                           uint32_t *len, int *flags);

/* Payload mode: the source's time stamp of a held chunk (when it was
 * published, on the source's clock). Returns 0 or PTV_ERR_NOT_FOUND. */
int ptv_node_chunk_ts(const ptv_node *n, ptv_chunk_id id, ptv_tstamp *ts);

/* Seeds the gossip view (e.g. from a saved peer list) without the tracker. */
void ptv_node_add_known(ptv_node *n, const ptv_peer_desc *d);

/* ---- read-only view, for strategies, drivers and tests ---- */

typedef struct {
  ptv_id id;
  uint8_t nat;
  uint8_t established;   /* 0 while CONNECT is pending */
  uint32_t upload_kbps;  /* as the partner declared it */
  ptv_chunk_id newest;   /* newest chunk in its last buffer map */
  uint8_t has_map;
  uint32_t chunks_from;  /* useful chunks it delivered to us */
  uint32_t chunks_to;    /* chunks we delivered to it */
  ptv_tstamp since;      /* when the partnership started */
  /* stripes */
  uint16_t sub_in;       /* stripes we take from it (it is our parent) */
  uint16_t sub_out;      /* stripes it takes from us (it is our child) */
  uint16_t sub_ask;      /* our subscription waiting for its answer */
  uint8_t depth[8];      /* its hops from the source per stripe, 255 unknown */
  uint8_t free_slots;    /* stripe slots it can still grant */
  uint16_t price_kbps;   /* when full, the lowest bid among its children */
  uint16_t deliv;        /* share of its stripes' chunks it brought first, x 65535 */
  uint32_t bid_kbps;     /* its bid as our child */
  ptv_tstamp sub_since;  /* when it last granted us a stripe */
  ptv_chunk_id play;     /* its playback point, PTV_ID_NONE unknown */
  ptv_tstamp last_heard; /* when its last message came */
  uint16_t queue_ms;     /* its upload backlog, as its last buffer map gave it */
} ptv_partner_info;

/* Chunk ids a buffer map covers, ending at its sender's newest chunk (48 s
 * of 250 ms chunks; the wire allows up to PTV_WIRE_MAX_BITMAP_BITS). A
 * peer further behind live than that cannot see in its partners' maps what
 * it lacks; a node never slows its playout that far back. */
#define PTV_NODE_MAP_BITS 192u

typedef struct {
  uint8_t playing;
  ptv_chunk_id play_next;    /* next chunk to play */
  ptv_tstamp play_start;     /* when playback began */
  ptv_tstamp join_time;      /* when ptv_node_start was called */
  ptv_tstamp lag_us;         /* playback point behind the live point */
  uint64_t chunks_due, chunks_missed;
  uint64_t bytes_up, bytes_down, ctrl_bytes_up;
  uint32_t partner_changes;  /* partners dropped by choice (not failures) */
  uint32_t bad_msgs;         /* malformed messages received */
  uint64_t req_sent, req_timeouts, busy_recv, dup_chunks, late_chunks;
  uint64_t unanswered;       /* ptv_node_partner_unanswered calls that released a chunk */
  uint64_t offers_sent, offers_declined, offer_idle; /* idle: nothing to offer */
  /* why chunks were missed: on their way, held by a partner but not asked
   * for, or held by no partner */
  uint64_t miss_on_way, miss_held, miss_nowhere;
  uint64_t recv_delay_us, recv_new; /* source-to-us delay summed over new chunks, and their count */
  uint32_t stalls;           /* playback paused: late play or re-anchoring */
  uint32_t catchups;         /* jumps forward to fed partners after a blackout */
  uint64_t pushes;           /* stripe chunks queued to children */
  /* new chunks received: from the stripe's parent, from another partner
   * while the stripe had a parent, with no parent for the stripe */
  uint64_t stripe_parent, stripe_other, stripe_orphan;
  uint64_t push_sent, push_late, push_wait_us, upq_full;
  uint64_t promises_expired; /* selected offers refused after waiting promise_hold */
  ptv_tstamp speedup_us;     /* lag undone by live catch-up */
  ptv_tstamp slowdown_us;    /* lag added by playing slower near capacity */
  ptv_tstamp stall_us;       /* total pause, which is what the lag grew by */
  uint64_t chunks_bad;       /* chunks refused by verify_chunk (payload mode) */
  uint32_t payloads_held;    /* payloads in memory (payload mode) */
  uint32_t npartners;
  ptv_chunk_id newest;       /* newest chunk held */
  uint32_t held;             /* chunks held in the window */
} ptv_node_stats;

void ptv_node_get_stats(const ptv_node *n, ptv_node_stats *st);
uint32_t ptv_node_npartners(const ptv_node *n);
/* Fills *pi for partner i (0 <= i < npartners). Returns 0 or PTV_ERR_NOT_FOUND. */
int ptv_node_partner(const ptv_node *n, uint32_t i, ptv_partner_info *pi);
/* Fills out[] with up to max partners (in slot order, as ptv_node_partner
 * numbers them); returns how many. One pass, for loops over all partners. */
size_t ptv_node_partners(const ptv_node *n, ptv_partner_info *out, size_t max);
const ptv_node_config *ptv_node_config_get(const ptv_node *n);
const ptv_sampler *ptv_node_view(const ptv_node *n);
int ptv_node_has_chunk(const ptv_node *n, ptv_chunk_id id);
/* Whether chunk id is on its way: promised by a partner's offer (*offered
 * 1) or pulled from it (0); *from is that partner and *timeout when we stop
 * waiting for it. Returns 1, or 0 if it is not on its way (outputs
 * untouched). For diagnostics (a peer's log of its misses). */
int ptv_node_pending(const ptv_node *n, ptv_chunk_id id, ptv_id *from, int *offered,
                     ptv_tstamp *timeout);
/* The strategy's per-node state (ptv_strategy.init), or NULL. */
void *ptv_node_strategy_state(const ptv_node *n);

/* Stripes (see ptv_strategy.h). With none, these return 0 (tier: 255). */
uint8_t ptv_node_nstripes(const ptv_node *n);
/* Rate of one stripe: the stream rate (the source's, or estimated from the
 * chunks received) over the number of stripes, rounded up; 0 unknown. */
uint32_t ptv_node_stripe_kbps(const ptv_node *n);
/* Stripe slots: the share set by ptv_node_set_slot_pct (default 100%) of
 * the declared upload, over the stripe rate. */
uint32_t ptv_node_stripe_slots(const ptv_node *n);
/* Stripe slots granted to children. */
uint32_t ptv_node_stripe_used(const ptv_node *n);
/* The lowest bid among our children (what a newcomer must beat when full). */
uint32_t ptv_node_stripe_price(const ptv_node *n);
/* Hops from the source in stripe s: 0 for the source, 1 + the parent's
 * depth for a peer with a parent for s that is itself fed there and was
 * heard in the last second, else 255 (unfed). */
uint8_t ptv_node_depth(const ptv_node *n, unsigned s);
/* The tier: the deepest of our fed stripes (255: none fed). */
uint8_t ptv_node_tier(const ptv_node *n);
/* Moving average of the source-to-us delay of chunks our stripe parents pushed. */
ptv_tstamp ptv_node_tree_delay(const ptv_node *n);
/* Mean and mean deviation of the delay of stripe s's pushed chunks. Returns
 * 0, or PTV_ERR_NOT_FOUND if none has come yet. */
int ptv_node_stripe_delay(const ptv_node *n, unsigned s, ptv_tstamp *mean, ptv_tstamp *dev);
/* Live catch-up: while the playback lag exceeds lag_us and the next chunks
 * are in hand, play up to 10% faster than real time (no chunk is skipped).
 * 0 (the default) turns it off. */
void ptv_node_set_target_lag(ptv_node *n, ptv_tstamp lag_us);
/* Share (in %, at most 100) of the declared upload offered as stripe slots;
 * the rest is slack that keeps pushes on time and serves repairs. */
void ptv_node_set_slot_pct(ptv_node *n, uint8_t pct);
/* Contributors first: with stripes, a pull from a partner that declared less
 * upload than one stripe's rate (it can pass nothing on) is served as if its
 * deadline were defer_us later, behind the pulls of partners that upload
 * (its expiry is unchanged). 0 (the default): by deadline alone. */
void ptv_node_set_nonup_defer(ptv_node *n, ptv_tstamp defer_us);
/* Among such pulls, the poorest first: each is served as if due a further
 * poor_us x the share of its chunks the requester played lately (its
 * REQUEST's `played`). 0 (the default): by deadline alone. */
void ptv_node_set_nonup_poor(ptv_node *n, ptv_tstamp poor_us);

/* Stripe parents: among a chunk's pushes, the children with more children
 * of their own on its stripe (as their buffer maps say) go first, then the
 * higher bids; off (0, the default): by bid only. */
void ptv_node_set_push_kids(ptv_node *n, int on);
/* Warns our partners, in the buffer maps of the next 10 s, that peer `id`
 * delivered only deliv/65535 of what it took on (a likely free-rider);
 * their strategy's on_report hook hears it. */
void ptv_node_report_suspect(ptv_node *n, ptv_id id, uint16_t deliv, ptv_tstamp now);
/* The driver's transport says partner `id` has answered nothing for a while
 * (a link acknowledging nothing through its probe timeouts: dead, or cut
 * off). The chunks it promised us or we asked it for are asked of others at
 * once, not after the request timeout (which is sized for a slow partner
 * and can outlast the deadline), and it gets no new request for a while.
 * It stays a partner: it may be only slow. Returns 0 or PTV_ERR_NOT_FOUND. */
int ptv_node_partner_unanswered(ptv_node *n, ptv_id id, ptv_tstamp now);

/* ---- actions a strategy may take ---- */

/* Asks `d` to become a partner. Returns 0, PTV_ERR_FULL (no slot),
 * PTV_ERR_INVALID_ARG (self, or already a partner). */
int ptv_node_connect(ptv_node *n, const ptv_peer_desc *d, ptv_tstamp now);
/* Ends a partnership by choice (counted in partner_changes). Returns 0 or
 * PTV_ERR_NOT_FOUND. */
int ptv_node_drop_partner(ptv_node *n, ptv_id id, ptv_tstamp now);
/* Asks established partner `parent` for the stripe set `mask` (the whole set
 * wanted from it; 0 gives all up). Stripes it had granted and mask drops stop
 * at once (a partner change); new ones count once granted, and then their
 * old parent is released. Returns 0, PTV_ERR_NOT_FOUND (not an established
 * partner), PTV_ERR_INVALID_ARG (no stripes, or called on the source). */
int ptv_node_subscribe(ptv_node *n, ptv_id parent, uint16_t mask, ptv_tstamp now);
/* Parent: stops serving stripes `mask` to `child` and tells it (a partner
 * change). Returns 0 or PTV_ERR_NOT_FOUND. */
int ptv_node_stripe_evict(ptv_node *n, ptv_id child, uint16_t mask, ptv_tstamp now);

#endif
