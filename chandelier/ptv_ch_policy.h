/* ptv_ch_policy.h -- Chandelier's decisions as pure functions.
 *
 * Everything Chandelier decides is here, free of the engine, so each rule
 * can be tested alone: the capacity estimate (estimation), the choice of a
 * stripe parent (placement, swap rule), when a working parent is worth
 * leaving (hysteresis), what a full parent grants and whom it evicts (the
 * market), and the global tier placement with its carrying constraint (the
 * analysis a tracker-side solver and the benchmarks use). ptv_chandelier.c
 * wires them into the engine's strategy hooks.
 */
#ifndef PTV_CH_POLICY_H
#define PTV_CH_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "ptv_types.h"

typedef struct {
  uint8_t stripes;          /* sub-streams (default 8) */
  uint8_t max_tier;         /* deepest usable parent tier (bounds depth) */
  uint8_t max_per_parent;   /* stripes one peer parent may serve us */
  uint8_t improve_gap;      /* tiers a better parent must gain to switch */
  uint8_t slot_pct;         /* % of a peer's declared upload given out as stripe slots */
  uint8_t per_stripe_chunks; /* a parent's children per stripe are capped so the
                               last waits at most this many chunk times */
  uint16_t outbid_pct;      /* a bid must beat the price by this many % */
  uint16_t deliv_bad;       /* parent delivering below this share (x 65535)
                               after the grace period is replaced */
  uint16_t deliv_bad_held;  /* ... or, for a parent we have held hold_us and that has
                               less than backlog_max_us queued, below this share
                               (x 65535) */
  uint16_t suspect_deliv;   /* ... and reported to our partners as a suspected
                               free-rider only below this share (x 65535) */
  ptv_tstamp grace_us;      /* a new parent's trial period */
  ptv_tstamp hold_us;       /* minimum time with a parent before a voluntary switch */
  ptv_tstamp improve_us;    /* at most one voluntary switch per this period */
  ptv_tstamp refuse_us;     /* a parent that refused is not asked again for this long */
  ptv_tstamp ask_us;        /* an unanswered subscription is given up after this */
  ptv_tstamp lag_margin_us; /* target lag: slowest stripe's delay + 4 deviations + this */
  ptv_tstamp suspect_block_us; /* a peer two partners warned of is not chosen for this long */
  ptv_tstamp fail_block_us;    /* a parent we found failing is not chosen again for this long */
  ptv_tstamp silent_us;     /* a parent silent this long is replaced (it sends maps every second) */
  ptv_tstamp settle_us;     /* a newcomer takes stripes once it has played this long */
  ptv_tstamp settle_fed_us; /* ... or this long, if most of its partners are fed (0: off) */
  ptv_tstamp backlog_max_us; /* a partner with more upload queued than this is not chosen
                                as a parent (0: off) */
  ptv_tstamp source_busy_us; /* the source is found failing only with at least this much
                                upload queued (0: always, like any parent) */
  uint8_t source_swap;       /* 1: the source drops its weakest non-child partner
                                for a stronger newcomer (ptv_ch_source_room) */
  ptv_tstamp nonup_defer_us; /* pulls of partners that upload less than a stripe are served
                                this much later than their deadline says (0: off) */
  uint8_t keep_fed;          /* a full parent does not take a stripe from a child fed on
                                this many stripes or fewer (0: off); the strategy counts
                                contributors' stripes only (ptv_ch_child.fed) */
  ptv_tstamp nonup_poor_us;  /* and among them, the poorest first: a pull is served as if
                                due this much x the share its requester played later still
                                (ptv_node_set_nonup_poor; 0: off) */
  uint8_t nonup_stripes;     /* a peer that uploads less than one stripe takes at most this
                                many stripes (0: none; the stripe count or more: no limit;
                                ptv_ch_limit_need) */
  uint8_t nonup_partners;    /* a contributor keeps at most this many partners that upload
                                less than a stripe; such peers partner only with
                                contributors (0: off; ptv_ch_accept, ptv_ch_pick_candidate) */
  ptv_tstamp nonup_turn_us;  /* ... but turns out the longest-standing of them, once it has
                                been a partner this long, for a newcomer of its kind */
  ptv_tstamp loop_guard_us;  /* a peer unfed on a stripe it passes on takes a new parent
                                no deeper than it was, one tier deeper per this much time
                                unfed (no loops; ptv_ch_orphan_below; 0: off) */
  ptv_tstamp unfed_max_us;   /* a parent unfed this long (and held as long) is left
                                (ptv_ch_parent_unfed_long; 0: off) */
  uint8_t loop_depth;        /* a parent this deep is taken to be on a loop and left
                                (ptv_ch_parent_looping; 0: off) */
  uint8_t source_roots;      /* the source keeps this many children on every stripe
                                when it can (ptv_ch_source_spread; 0: off) */
  uint8_t push_kids;         /* 1: a parent pushes a chunk first to the children with
                                more children on its stripe (ptv_node_set_push_kids) */
} ptv_ch_params;

/* Fills p with the defaults documented in docs/CHANDELIER.md. */
void ptv_ch_params_default(ptv_ch_params *p);

/* Sets one parameter from text, "name=value" (names as the fields; times in
 * seconds, e.g. "hold_s=20"). Returns 0, or -1 for an unknown name or a
 * value out of range, with a message in err. */
int ptv_ch_params_set(ptv_ch_params *p, const char *assignment, char *err, size_t errlen);

/* Writes the parameter names, one "name (default)" per line, for --help. */
void ptv_ch_params_list(char *buf, size_t len);

/* ---- estimation ---------------------------------------------------------- */

/* Upload capacity estimate from a claim and what was measured: `deliv` is
 * the share (x 65535) of promised stripe chunks the peer actually delivered
 * first, over `samples` observations. The claim is a prior that the
 * measurements overrule as they accumulate (weight samples / (samples + 8)):
 * claim x (prior weight + measured share x measured weight). */
uint32_t ptv_ch_estimate(uint32_t claim_kbps, uint16_t deliv, uint32_t samples);

/* ---- choosing a stripe parent -------------------------------------------- */

typedef struct {
  uint8_t tier;          /* its hops from the source, 255 unknown */
  uint8_t free_slots;    /* slots it can still grant */
  uint32_t price_kbps;   /* when full: its poorest child's bid */
  uint32_t est_kbps;     /* our estimate of its upload */
  uint8_t from_it;       /* stripes we already take (or asked) from it */
  uint8_t is_child;      /* it takes this stripe from us: never a parent for it */
  uint8_t blocked;       /* refused us lately, or found delivering too little */
  uint8_t is_source;
  uint8_t can_connect;   /* NAT pair compatible (the swap rule skips it if not) */
  uint32_t backlog_ms;   /* its upload backlog as it advertised it (pushes included) */
} ptv_ch_cand;

/* Chooses the parent for one stripe among nc candidates: usable ones (known
 * tier below max_tier, not our child for it, not blocked, NAT compatible,
 * no more than backlog_max_us of upload queued, fewer than max_per_parent
 * stripes from it unless it is the source) that
 * have a free slot or a price our bid beats by outbid_pct; the lowest tier
 * wins, then a free slot over outbidding, then the larger estimate. With
 * `below` < 255 only candidates whose tier is below it are considered (our
 * own tier, or the current parent's when improving). Returns the index, or
 * -1 if none qualifies. */
int ptv_ch_pick_parent(const ptv_ch_cand *c, size_t nc, uint32_t my_bid_kbps, uint8_t below,
                       const ptv_ch_params *pp);

/* The `below` bound for ptv_ch_pick_parent when a peer needs a new parent
 * on a stripe (its parent left, went silent, fails, evicted it, or is
 * unfed and it moves), so that no loop forms. A peer that passes the
 * stripe on has a subtree there whose maps show depths of depth_was + 1
 * and more (level L: depth_was + L) and, once it is unfed, still those
 * until its loss reaches them, one map round per level; a peer taken from
 * among them would close a loop that feeds no one (catastrophic failure,
 * 1,000 peers: up to 404 peers on one loop). So a peer unfed for
 * unfed_us (0 while a failing parent still feeds it) takes only a parent
 * of tier depth_was + unfed_us / loop_guard_us or less: the bound opens
 * one level per loop_guard_us, behind the news of the loss going down.
 * Until session 32 the bound was depth_was for 1 s and then open, which
 * a subtree five levels deep outran (300 peers, 50% failing, seeds 1-30:
 * loops on 4 seeds, 24 peer-seconds; with push_kids and a 3.5 s start
 * wait on seed 2 of the unit test, 80 peers on a loop of unfed peers that
 * nothing broke). Returns 255 (no bound) if it passes nothing on there, its
 * depth was never known, the guard is off, or the bound is past max_tier. */
uint8_t ptv_ch_orphan_below(uint8_t depth_was, int passes_on, ptv_tstamp unfed_us,
                            const ptv_ch_params *pp);

/* The bound for a move on a stripe: a voluntary one (improving) from a fed
 * parent, below that parent's tier; any other, or one from a parent that
 * is itself unfed (depth 254 or more: its tier says nothing, and its loss
 * is news our subtree may not have yet), ptv_ch_orphan_below's. */
uint8_t ptv_ch_move_below(int improving, uint8_t parent_depth, uint8_t depth_was, int passes_on,
                          ptv_tstamp unfed_us, const ptv_ch_params *pp);

/* Whether a stripe parent has been unfed (depth 254 or more) too long: we
 * have been unfed for unfed_us and held it held_us, both >= unfed_max_us.
 * Then it is left even with no replacement. An orphan finds a parent in
 * a second or two; a loop of unfed peers, each waiting for its parent to
 * find one, never does (nobody in it lacks a parent; 0 when off). */
int ptv_ch_parent_unfed_long(uint8_t depth, ptv_tstamp unfed_us, ptv_tstamp held_us,
                             const ptv_ch_params *pp);

/* Whether a peer leaves its stripe parent when ptv_ch_pick_parent found no
 * replacement: yes if the parent is still heard (failing, or on a loop),
 * the loop guard bounded the choice (below != 255) and the move was not a
 * voluntary improvement. Kept, such a parent (a free-rider high in the
 * tree) fed the peer's whole subtree badly for as long as no partner as
 * shallow had room (free-riders, 1,000 peers, seed 3: honest share >= 0.99
 * 0.984, 0.999 when left); left, the peer is unfed, its subtree hears so,
 * and the bound opens a level per loop_guard_us. */
int ptv_ch_leave_unreplaced(int improving, uint8_t below, int parent_heard);

/* Whether a stripe parent advertising `depth` is on a loop: depths on a
 * loop grow by one each map round, while a tree is no deeper than
 * max_tier plus what moves above add. True for depth >= loop_depth (not
 * 255, which is an orphan, and never when loop_depth is 0). */
int ptv_ch_parent_looping(uint8_t depth, const ptv_ch_params *pp);

/* Hysteresis: whether to leave a working parent of tier cur_tier, held for
 * held_us, for a candidate of tier cand_tier. Only a gain of improve_gap
 * tiers after hold_us is worth a change. */
int ptv_ch_worth_switch(uint8_t cur_tier, uint8_t cand_tier, ptv_tstamp held_us,
                        const ptv_ch_params *pp);

/* Whether a parent must be replaced: it delivered less than deliv_bad after
 * its grace period; or, once we have held it for hold_us and while it has
 * less than backlog_max_us of upload queued (queue_us), less than
 * deliv_bad_held (a parent that has proven itself is not left for a dip; an
 * overloaded one, as a free-rider that sold slots it cannot serve, has not). */
int ptv_ch_parent_failing(uint16_t deliv, ptv_tstamp held_us, ptv_tstamp queue_us,
                          const ptv_ch_params *pp);

/* Whether a failing parent that delivered `deliv` (x 65535) is reported to
 * our partners as a suspected free-rider: only below suspect_deliv. An
 * honest parent that is merely slow (deep in the tree) brings a little under
 * half its stripe first, as our pulls overtake its pushes; it is left, not
 * accused. */
int ptv_ch_report_worthy(uint16_t deliv, const ptv_ch_params *pp);

/* Whether a parent of tier `tier` (0: the source) with `queue_ms` of upload
 * queued can be found failing by its delivery share at all. The source with
 * less than source_busy_us queued cannot: nothing is ahead of it, so a child
 * that got its chunks first from others was pulling too close to their
 * deadline, and moving it (with its whole subtree, on every stripe) to a
 * deeper parent only makes that worse. */
int ptv_ch_share_counts(uint8_t tier, uint16_t queue_ms, const ptv_ch_params *pp);

/* The source keeps its partner slots for the strongest peers (only a
 * partner can bid for its stripe slots, so a source whose partners are all
 * weak feeds a weak first tier for good). A newcomer declaring newcomer_kbps
 * found every partner slot taken; up_kbps[i] are the partners' declared
 * uploads and child[i] says whether partner i holds a stripe from us (a
 * child is never dropped). The newcomer is let in only if it could win one
 * of our stripe slots (free_slots > 0, or it beats price_kbps, our poorest
 * child's bid, by outbid_pct) and source_swap is on. Returns the partner to
 * drop for it: the weakest non-child, if that declares less than the
 * newcomer and less than the stream rate (it could not carry one peer below
 * it); or -1 to turn the newcomer away. */
/* Whether the source keeps a partner whatever a newcomer offers: a child
 * (it holds stripes from us), a partnership not yet up, or one younger than
 * hold_us (a peer pulls from the source while it starts; dropping young
 * partners in the joins of the catastrophic scenario, seed 1, tripled the
 * misses of its first 30 s). */
int ptv_ch_source_keeps(int is_child, int established, ptv_tstamp age_us, const ptv_ch_params *pp);

int ptv_ch_source_room(const uint32_t *up_kbps, const uint8_t *child, size_t n,
                       uint32_t newcomer_kbps, uint32_t stream_kbps, uint32_t free_slots,
                       uint32_t price_kbps, const ptv_ch_params *pp);

/* What a peer asks parents for, of the stripes in `need` (those it lacks a
 * parent for, S of them in all): everything, if it contributes (declared
 * upload enough for one stripe) or nonup_stripes >= S; else at most
 * nonup_stripes minus the `held` stripes it has or has asked for (none
 * with the default 0), taken round-robin from stripe `start` (mod S) on,
 * so that its kind spreads over the stripes. Below a resource index of 1
 * the slots the contributors leave are too few for every peer that passes
 * nothing on: the first comers held them and the rest had none. Returns
 * the stripes to ask for (a subset of need). */
uint16_t ptv_ch_limit_need(uint16_t need, unsigned held, unsigned S, unsigned start,
                           int contributes, const ptv_ch_params *pp);

/* ---- partners of the peers that pass nothing on -------------------------- */

/* Whether a peer declaring my_kbps takes a CONNECT from one declaring
 * from_kbps (a stripe is stripe_kbps), given its n partners: up_kbps[i]
 * declared, age_us[i] how long partnered, child[i] whether it takes a
 * stripe from us. With nonup_partners set: a peer below a stripe refuses
 * another (neither can pass the other anything); a contributor takes at
 * most nonup_partners of them, and when it has that many turns out the
 * longest-standing one that is not its child once that one has been a
 * partner for nonup_turn_us (so that each has its turn at the
 * contributors' spare upload). Returns 1 to accept (first dropping
 * partner *drop, if that is not -1) or 0 to refuse. */
int ptv_ch_accept(uint32_t my_kbps, uint32_t from_kbps, uint32_t stripe_kbps,
                  const uint32_t *up_kbps, const ptv_tstamp *age_us, const uint8_t *child,
                  size_t n, const ptv_ch_params *pp, int *drop);

/* Which of n candidates to connect to: at random among those our NAT can
 * reach (reach[i]); all unreachable: any of them. With nonup_partners set,
 * a peer declaring less than a stripe draws among the reachable
 * contributors, if there are any. Returns an index, or -1 if n is 0. */
int ptv_ch_pick_candidate(const uint8_t *reach, const uint32_t *up_kbps, size_t n,
                          uint32_t my_kbps, uint32_t stripe_kbps, const ptv_ch_params *pp,
                          uint64_t rnd);

/* ---- the market: what a parent grants ------------------------------------- */

typedef struct {
  ptv_id id;
  uint32_t bid_kbps; /* its bid (capped by our estimate of it) */
  uint16_t mask;     /* stripes it has from us */
  uint8_t fed;       /* stripes it is fed on, from any parent, as its map says (0: unknown,
                        or not to be protected) */
} ptv_ch_child;

/* A bidder asks for `want` (popcount stripes); slots are ours, the children
 * (not including the bidder) hold the rest. Grants free slots first, then
 * takes slots from the poorest children whose bid the bidder beats by
 * outbid_pct, at most max_evict of them, and none from a child fed on
 * keep_fed stripes or fewer (the shortage near r_max is then shared rather
 * than heaped on the weakest). Writes the evictions (child index,
 * stripe bit) to ev_child/ev_bit and their count to *nev; returns the number
 * of stripes granted. */
unsigned ptv_ch_grant(const ptv_ch_child *kids, size_t nk, uint32_t slots, unsigned want,
                      uint32_t bid_kbps, const ptv_ch_params *pp, unsigned max_evict,
                      size_t *ev_child, uint16_t *ev_bit, size_t *nev);

/* The source, full, asked for stripes (want) of which some have fewer than
 * source_roots children: for each such stripe (lowest first), it takes one
 * slot from the poorest child of the stripe with most children, if that
 * stripe has source_roots + 2 or more and that child bids no more than the
 * bidder. After 50% of the peers crashed, stripes left with one weak root
 * or none while others had eight took 10-15 s to reach every survivor
 * again. Counts children per stripe into cnt[nstripes] (after the
 * evictions), writes the evictions to ev_child/ev_bit (at most nstripes)
 * and returns their number. */
size_t ptv_ch_source_spread(const ptv_ch_child *kids, size_t nk, unsigned nstripes,
                            uint32_t slots, uint16_t want, uint32_t bid_kbps,
                            const ptv_ch_params *pp, uint32_t *cnt, size_t *ev_child,
                            uint16_t *ev_bit);

/* Picks g of the stripes in want, those with the fewest children (cnt[],
 * nstripes of them) first, the lowest on a tie. Returns the mask. */
uint16_t ptv_ch_fewest_first(const uint32_t *cnt, unsigned nstripes, uint16_t want, unsigned g);

/* ---- global placement (tracker view, analysis) ----------------------------- */

/* Places n peers with upload capacities cap[] (kbps) in tiers below a source
 * of source_kbps for a stream of stream_kbps: peers sorted by capacity, the
 * first tier as many as the source can feed, each next tier as many as the
 * tier above can carry, at most max_depth tiers (the last takes whatever
 * remains). Writes each peer's tier (1 = fed by the source) to tier_out.
 * Returns the number of tiers used, or -1 if the peers do not fit in
 * max_depth tiers (the last tier is then over its carrying limit). */
int ptv_ch_place(const uint32_t *cap, size_t n, uint32_t source_kbps, uint32_t stream_kbps,
                 unsigned max_depth, uint8_t *tier_out);

/* The carrying constraint: each tier's total upload (the source's for tier 1)
 * covers the demand of the tier below (its size x stream_kbps). Returns 0
 * if it holds for every tier, else the first tier t (>= 1) whose demand the
 * tier above cannot carry. */
int ptv_ch_check_carrying(const uint32_t *cap, const uint8_t *tier, size_t n,
                          uint32_t source_kbps, uint32_t stream_kbps);

#endif
