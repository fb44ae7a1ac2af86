/* ptv_chandelier.c -- Chandelier as an engine strategy: a MAPE-K loop per peer.
 *
 * Knowledge: per peer we have dealt with, the capacity estimate (claim as a
 * prior, corrected by what it delivered as our parent) and back-off timers.
 * Each maintenance tick (500 ms) a peer
 *   Monitors its stripe parents (delivery share, tier) and its partners'
 *     advertised tiers, free slots and prices;
 *   Analyses: which stripes have no parent, a failing one, or (rarely, with
 *     hysteresis) a parent much deeper than one it could have;
 *   Plans a parent per such stripe with ptv_ch_pick_parent (lowest tier it
 *     can afford, NAT-compatible: the swap rule);
 *   Executes by subscribing (make-before-break: the old parent is released
 *     when the new one grants).
 * Parents grant by the market rule (ptv_ch_grant): free slots first, then
 * the poorest child's slot to a bidder that beats it. Strong peers thus bid
 * their way up next to the source, tier under tier. Decisions live in
 * ptv_ch_policy.c. */
#include "ptv_chandelier.h"

#include <stdlib.h>
#include <string.h>

#include "ptv_ch_policy.h"
#include "ptv_nat.h"
#include "ptv_sampler.h"
#include "ptv_strategy.h"

#define KNOW_MAX 32
#define MAXP 64

typedef struct {
  ptv_id id;
  uint32_t est_kbps;     /* our own measurement (0: none) */
  uint16_t factor;       /* delivered share partners reported, x 65535 (0: none) */
  uint8_t reporters;     /* distinct partners that reported it (counted up to 255) */
  ptv_id last_reporter;
  ptv_tstamp blocked_until;
} know;

typedef struct {
  ptv_ch_params pp;
  know k[KNOW_MAX];
  uint32_t nk_next; /* round-robin replacement */
  ptv_tstamp ask_until[PTV_STRIPES_MAX];
  ptv_tstamp next_improve;
  uint32_t switches, failures, evictions;
  uint8_t depth_was[PTV_STRIPES_MAX]; /* our depth per stripe when last fed (255: never) */
  ptv_tstamp fed_at[PTV_STRIPES_MAX];  /* when */
  ptv_tstamp unfed_at[PTV_STRIPES_MAX]; /* the first tick after that we were not (the loop
                                           guard counts from then: fed_at is a tick older
                                           than the loss, up to 500 ms) */
} ch_state;

static const ptv_ch_params *params_override;

void ptv_chandelier_set_params(const ptv_ch_params *pp) { params_override = pp; }

static know *know_find(ch_state *s, ptv_id id, int create) {
  for (int i = 0; i < KNOW_MAX; i++)
    if (s->k[i].id == id) return &s->k[i];
  if (!create) return NULL;
  know *k = &s->k[s->nk_next++ % KNOW_MAX];
  memset(k, 0, sizeof(*k));
  k->id = id;
  k->last_reporter = PTV_ID_NONE;
  return k;
}

static ch_state *s_of(const ptv_node *n) { return ptv_node_strategy_state(n); }

static void *ch_init(ptv_node *n) {
  ch_state *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  if (params_override) s->pp = *params_override;
  else ptv_ch_params_default(&s->pp);
  for (int i = 0; i < KNOW_MAX; i++) s->k[i].id = s->k[i].last_reporter = PTV_ID_NONE;
  memset(s->depth_was, 255, sizeof(s->depth_was));
  ptv_node_set_slot_pct(n, s->pp.slot_pct);
  /* Below a resource index of 1 the swarm cannot serve everyone: the
   * contributors, who carry the tiers, are served in full first (hard case,
   * 1,000 CLive peers, seeds 1 / 2: peers >= 0.99 over the last third
   * 0.15 / 0.05 -> 0.29 / 0.31). */
  ptv_node_set_nonup_defer(n, s->pp.nonup_defer_us);
  ptv_node_set_nonup_poor(n, s->pp.nonup_poor_us);
  ptv_node_set_push_kids(n, s->pp.push_kids);
  return s;
}

static void ch_fini(void *st) { free(st); }

/* Capacity estimate: the claim, unless we measured less, or at least two
 * partners reported it delivering a share of it (one report is not enough:
 * a liar could slander an honest peer, and an honest parent can fail once
 * because its own parent did). */
static uint32_t est_of(ch_state *s, ptv_id id, uint32_t claim) {
  know *k = know_find(s, id, 0);
  uint32_t e = claim;
  if (!k) return e;
  if (k->est_kbps && k->est_kbps < e) e = k->est_kbps;
  if (k->reporters >= 2 && k->factor) {
    uint32_t r = ptv_ch_estimate(claim, k->factor, 16);
    if (r < e) e = r;
  }
  return e;
}

static void ch_on_report(ptv_node *n, ptv_id from, ptv_id suspect, uint16_t deliv, ptv_tstamp now) {
  ch_state *s = ptv_node_strategy_state(n);
  know *k = know_find(s, suspect, 1);
  if (k->last_reporter == from) return; /* the same warning, map after map */
  k->last_reporter = from;
  if (k->reporters < 255) k->reporters++;
  k->factor = k->factor ? (uint16_t)((k->factor + deliv) / 2) : deliv;
  if (k->reporters >= 2) k->blocked_until = now + s->pp.suspect_block_us;
}

static int blocked(ch_state *s, ptv_id id, ptv_tstamp now) {
  know *k = know_find(s, id, 0);
  return k && k->blocked_until > now;
}

static uint32_t declared(const ptv_node_config *cfg) {
  return cfg->claim_kbps ? cfg->claim_kbps : cfg->upload_kbps;
}

/* Partner choice: at random among the NAT-compatible candidates (the swap
 * rule: a pair that cannot connect is never tried while another can); a
 * peer that passes nothing on, among the contributors (ptv_ch_pick_candidate).
 * Weighting by capacity was tried: every newcomer then crowds the same few
 * strong peers and the mesh that feeds newcomers suffers. */
static int ch_pick_candidate(ptv_node *n, const ptv_peer_desc *c, size_t nc, uint64_t rnd) {
  const ptv_node_config *cfg = ptv_node_config_get(n);
  uint8_t reach[PTV_SAMPLER_VIEW];
  uint32_t up[PTV_SAMPLER_VIEW];
  if (nc > PTV_SAMPLER_VIEW) nc = PTV_SAMPLER_VIEW; /* the view is no larger */
  for (size_t i = 0; i < nc; i++) {
    reach[i] = (uint8_t)ptv_nat_can_connect(cfg->nat, c[i].nat);
    up[i] = c[i].upload_kbps;
  }
  return ptv_ch_pick_candidate(reach, up, nc, declared(cfg), ptv_node_stripe_kbps(n), &s_of(n)->pp,
                               rnd);
}

/* Partners of the peers that pass nothing on (ptv_ch_accept). Below a
 * resource index of 1 they took most contributors' partner slots and the
 * spare upload behind them, unevenly: a peer's share followed how many
 * strong partners it happened to have (hard case, seed 2, last third: none
 * 0.06, three or more 0.115). Capped at 8 per contributor and taking turns
 * every 10 s, with no stripes for them (nonup_stripes 0) and the poorest
 * served first (nonup_poor_s 8): 1,000 peers, seeds 1-3, last third, peers
 * in full 0.329 / 0.317 / 0.328 -> 0.411 / 0.405 / 0.411, Jain within the
 * class that uploads nothing 0.57 / 0.56 / 0.57 -> 0.94 / 0.94 / 0.94
 * (the mesh's 0.89 / 0.92 / 0.84), its mean 0.14-0.15 -> 0.09-0.10 (the
 * contributors' 0.94-0.95 -> 0.99). A cap of 6 / 10 or turns every 5 s:
 * see docs/CHANDELIER.md. */
static int ch_accept(ptv_node *n, const ptv_peer_desc *from, ptv_tstamp now) {
  const ptv_node_config *cfg = ptv_node_config_get(n);
  if (cfg->role == PTV_ROLE_SOURCE) return 1; /* ch_make_room decides there */
  ptv_partner_info pis[MAXP];
  uint32_t up[MAXP];
  ptv_tstamp age[MAXP];
  uint8_t child[MAXP];
  size_t np = ptv_node_partners(n, pis, MAXP);
  for (size_t i = 0; i < np; i++) {
    up[i] = pis[i].upload_kbps;
    age[i] = now - pis[i].since;
    child[i] = pis[i].sub_out != 0;
  }
  int drop;
  if (!ptv_ch_accept(declared(cfg), from->upload_kbps, ptv_node_stripe_kbps(n), up, age, child, np,
                     &s_of(n)->pp, &drop))
    return 0;
  if (drop >= 0) ptv_node_drop_partner(n, pis[drop].id, now);
  return 1;
}

/* The source keeps its partner slots for the strongest peers: its own
 * upload goes to the first tier, and only a partner can bid for it (hard
 * case, seed 4: the source's 19 partners were peers of 0-200 kbps, 5 of the
 * 8 stripes reached 4 peers in all, and no peer was served in full). */
static int ch_make_room(ptv_node *n, const ptv_peer_desc *from, ptv_tstamp now) {
  ch_state *s = ptv_node_strategy_state(n);
  if (ptv_node_config_get(n)->role != PTV_ROLE_SOURCE) return 0;
  /* A free-rider claims the most: a newcomer is taken at what we know of it
   * (partners' warnings), and not at all if two of them warned us. */
  if (blocked(s, from->id, now)) return 0;
  ptv_partner_info pis[MAXP];
  uint32_t up[MAXP];
  uint8_t keep[MAXP];
  size_t np = ptv_node_partners(n, pis, MAXP);
  for (size_t i = 0; i < np; i++) {
    up[i] = pis[i].upload_kbps;
    keep[i] = (uint8_t)ptv_ch_source_keeps(pis[i].sub_out != 0, pis[i].established,
                                           now - pis[i].since, &s->pp);
  }
  uint32_t slots = ptv_node_stripe_slots(n), used = ptv_node_stripe_used(n);
  int k = ptv_ch_source_room(up, keep, np, est_of(s, from->id, from->upload_kbps),
                             ptv_node_config_get(n)->stream_kbps,
                             slots > used ? slots - used : 0, ptv_node_stripe_price(n), &s->pp);
  return k >= 0 && ptv_node_drop_partner(n, pis[k].id, now) == 0;
}

static uint16_t ch_grant(ptv_node *n, ptv_id child, uint16_t want, uint32_t bid, ptv_tstamp now) {
  ch_state *s = ptv_node_strategy_state(n);
  /* Only stripes we are fed (the source: all) can be passed on. */
  for (unsigned b = 0; b < ptv_node_nstripes(n); b++)
    if (ptv_node_depth(n, b) == 255) want &= (uint16_t)~(1u << b);
  if (!want) return 0;
  uint32_t slots = ptv_node_stripe_slots(n);
  ptv_ch_child kids[MAXP];
  ptv_partner_info pis[MAXP];
  size_t nk = 0, np = ptv_node_partners(n, pis, MAXP);
  for (size_t i = 0; i < np; i++) {
    const ptv_partner_info *pi = &pis[i];
    if (!pi->sub_out || pi->id == child) continue;
    /* A child silent for silent_us (its maps come every 62 ms to 1 s) has
     * likely crashed: its slots go to askers now, not at the partner
     * timeout (3 s). */
    if (now > pi->last_heard + s->pp.silent_us) continue;
    kids[nk].id = pi->id;
    kids[nk].bid_kbps = est_of(s, pi->id, pi->bid_kbps);
    kids[nk].mask = pi->sub_out;
    /* keep_fed protects contributors only (as nonup_defer_s): in the hard
     * case, protecting the peers that upload nothing too left no peer fed
     * in full (seed 1: 0.304 -> 0.001 over the last third; their class
     * mean 0.156 -> 0.451, Jain in it 0.56 -> 0.91). */
    kids[nk].fed = 0;
    if (pi->has_map && kids[nk].bid_kbps >= ptv_node_stripe_kbps(n))
      for (unsigned b = 0; b < ptv_node_nstripes(n) && b < sizeof(pi->depth); b++)
        kids[nk].fed += pi->depth[b] != 255;
    nk++;
  }
  /* At most cap children per stripe: a parent sends a stripe's chunk to its
   * children one after the other, so the last one waits cap transmissions;
   * cap = per_stripe_chunks x slots / stripes keeps that within as many
   * chunk times (a slow uplink serves one child per stripe). */
  {
    unsigned S = ptv_node_nstripes(n);
    uint32_t cap = S ? s->pp.per_stripe_chunks * slots / S : 0;
    if (cap < 1) cap = 1;
    for (unsigned b = 0; b < S; b++) {
      if (!(want >> b & 1)) continue;
      uint32_t c = 0;
      for (size_t i = 0; i < nk; i++) c += kids[i].mask >> b & 1;
      if (c >= cap) want &= (uint16_t)~(1u << b);
    }
    if (!want) return 0;
  }
  /* The source spreads its slots over the stripes (ptv_ch_source_spread). */
  uint32_t cnt[16];
  int src = ptv_node_depth(n, 0) == 0 && s->pp.source_roots; /* only the source is 0 deep */
  if (src) {
    size_t sc[16];
    uint16_t sb[16];
    size_t ns = ptv_ch_source_spread(kids, nk, ptv_node_nstripes(n), slots, want,
                                     est_of(s, child, bid), &s->pp, cnt, sc, sb);
    for (size_t i = 0; i < ns; i++) {
      ptv_node_stripe_evict(n, kids[sc[i]].id, sb[i], now);
      kids[sc[i]].mask &= (uint16_t)~sb[i];
      s->evictions++;
    }
  }
  size_t evc[PTV_STRIPES_MAX];
  uint16_t evb[PTV_STRIPES_MAX];
  size_t nev = 0;
  unsigned g = ptv_ch_grant(kids, nk, slots, (unsigned)__builtin_popcount(want),
                            est_of(s, child, bid), &s->pp, 2, evc, evb, &nev);
  for (size_t i = 0; i < nev; i++) {
    ptv_node_stripe_evict(n, kids[evc[i]].id, evb[i], now);
    s->evictions++;
  }
  /* The source: the stripes with fewest roots first. */
  uint16_t out = src ? ptv_ch_fewest_first(cnt, ptv_node_nstripes(n), want, g) : 0;
  for (unsigned b = 0; b < 16 && g > (unsigned)__builtin_popcount(out); b++)
    if (want >> b & 1) out |= (uint16_t)(1u << b);
  return out;
}

static void ch_on_grant(ptv_node *n, ptv_id parent, uint16_t asked, uint16_t granted,
                        uint32_t price, ptv_tstamp now) {
  ch_state *s = ptv_node_strategy_state(n);
  (void)price;
  for (unsigned b = 0; b < PTV_STRIPES_MAX; b++)
    if (asked >> b & 1) s->ask_until[b] = 0;
  if (asked & ~granted) {
    know *k = know_find(s, parent, 1);
    k->blocked_until = now + s->pp.refuse_us;
  }
}

/* Most of our partners are fed on every stripe and some have free slots:
 * we joined an established tree, not a flash crowd. */
static int partners_fed(const ptv_node *n) {
  ptv_partner_info pi[MAXP];
  size_t np = ptv_node_partners(n, pi, MAXP), up = 0, fed = 0, room = 0;
  unsigned S = ptv_node_nstripes(n);
  for (size_t i = 0; i < np; i++) {
    if (!pi[i].established || !pi[i].has_map) continue;
    up++;
    int all = 1;
    for (unsigned b = 0; b < S; b++) all &= pi[i].depth[b] != 255;
    fed += (size_t)all;
    room += (size_t)(all && pi[i].free_slots > 0);
  }
  return up > 0 && 2 * fed > up && room > 0;
}

static void ch_tick(ptv_node *n, ptv_tstamp now) {
  ch_state *s = ptv_node_strategy_state(n);
  const ptv_node_config *cfg = ptv_node_config_get(n);
  unsigned S = ptv_node_nstripes(n);
  if (!S || cfg->role == PTV_ROLE_SOURCE) return;
  /* A newcomer is fed by the mesh until it has played settle_s: a flash
   * crowd of parentless peers bidding at once makes for a churning tree. */
  ptv_node_stats ns;
  ptv_node_get_stats(n, &ns);
  if (!ns.playing) return;
  if (now < ns.play_start + s->pp.settle_us &&
      (!s->pp.settle_fed_us || now < ns.play_start + s->pp.settle_fed_us || !partners_fed(n)))
    return;
  ptv_partner_info pi[MAXP];
  size_t np = ptv_node_partners(n, pi, MAXP);
  uint32_t m = 0;
  for (size_t i = 0; i < np; i++) /* keep the established ones, in order */
    if (pi[i].established) pi[m++] = pi[i];
  int parent[PTV_STRIPES_MAX];
  for (unsigned b = 0; b < S; b++) parent[b] = -1;
  for (uint32_t i = 0; i < m; i++)
    for (unsigned b = 0; b < S; b++)
      if (pi[i].sub_in >> b & 1) parent[b] = (int)i;
  /* Knowledge for the loop guard: the stripes we pass on, our depth on
   * each when a live parent last fed it, and how long we have been unfed. */
  uint16_t passes_on = 0;
  for (uint32_t i = 0; i < m; i++) passes_on |= pi[i].sub_out;
  ptv_tstamp unfed_us[PTV_STRIPES_MAX];
  for (unsigned b = 0; b < S; b++) {
    if (parent[b] >= 0 && pi[parent[b]].depth[b] < 254 &&
        now <= pi[parent[b]].last_heard + s->pp.silent_us) {
      s->depth_was[b] = (uint8_t)(pi[parent[b]].depth[b] + 1);
      s->fed_at[b] = now;
    } else if (s->unfed_at[b] <= s->fed_at[b]) {
      s->unfed_at[b] = now;
    }
    unfed_us[b] = s->fed_at[b] == now ? 0 : now - s->unfed_at[b];
  }

  /* Knowledge for playout: the lag our place in the tree needs is the
   * slowest stripe's delay with a margin for its jitter. */
  {
    ptv_tstamp need = 0, mean, dev;
    int all = 1;
    for (unsigned b = 0; b < S; b++) {
      if (ptv_node_stripe_delay(n, b, &mean, &dev) != 0) {
        all = 0;
        break;
      }
      if (mean + 4 * dev > need) need = mean + 4 * dev;
    }
    ptv_node_set_target_lag(n, all ? need + s->pp.lag_margin_us : 0);
  }
  /* Analyse: stripes without a parent (and no answer pending) or with a
   * failing one. A failing parent's estimate drops to what it delivered. */
  uint16_t need = 0, unfed_long = 0;
  for (unsigned b = 0; b < S; b++) {
    if (s->ask_until[b] > now) continue;
    if (parent[b] < 0) {
      need |= (uint16_t)(1u << b);
      continue;
    }
    const ptv_partner_info *p = &pi[parent[b]];
    if (now > p->last_heard + s->pp.silent_us) { /* gone quiet: likely crashed */
      need |= (uint16_t)(1u << b);
      s->failures++;
      continue;
    }
    if (ptv_ch_parent_unfed_long(p->depth[b], unfed_us[b], now - p->sub_since, &s->pp)) {
      need |= (uint16_t)(1u << b);
      unfed_long |= (uint16_t)(1u << b);
      continue;
    }
    if (ptv_ch_parent_looping(p->depth[b], &s->pp)) { /* a loop: it feeds no one */
      need |= (uint16_t)(1u << b);
      s->failures++;
      continue;
    }
    /* The source, not busy, is as early as anything can be (15-minute steady
     * runs, 1,000 peers: a first-tier peer leaving it on all 8 stripes set
     * off a minute of moves down its subtree; last-5-minute changes per peer
     * per minute on seeds 1-3 0.74 / 1.04 / 0.84 -> 0.71 / 0.20 / 0.56). */
    if (!ptv_ch_share_counts(p->depth[b], p->queue_ms, &s->pp)) continue;
    if (ptv_ch_parent_failing(p->deliv, now - p->sub_since, (ptv_tstamp)p->queue_ms * PTV_MS,
                              &s->pp)) {
      know *k = know_find(s, p->id, 1);
      k->est_kbps = ptv_ch_estimate(p->upload_kbps, p->deliv, 16);
      /* Long: a free-rider's free slots draw children back at once (20 s:
       * honest peers >= 0.99 with 20% free-riders 0.30; 60 s: 0.43). */
      k->blocked_until = now + s->pp.fail_block_us;
      /* Tell our partners: with a second report, they stop choosing it
       * and their parents rank it by what it delivered (demotion). Only
       * below suspect_deliv: a slow honest parent is left, not accused (in
       * the steady state every failing parent, 1,049 in 6 minutes, had
       * delivered 0.3-0.5; two accusations demote a peer at its parents). */
      if (ptv_ch_report_worthy(p->deliv, &s->pp)) ptv_node_report_suspect(n, p->id, p->deliv, now);
      need |= (uint16_t)(1u << b);
      s->failures++;
    }
  }
  /* A peer that passes nothing on takes at most nonup_stripes stripes (the
   * default: none; the first to ask for changes each second, in case one
   * finds no parent). Hard case, 1,000 peers, seeds 1-3, last third, Jain
   * within the class that uploads nothing: one stripe each at most 0.86 /
   * 0.82 / 0.83 (no limit 0.57 / 0.56 / 0.57); with the partner rules
   * (ch_accept) one stripe 0.84 / 0.83 / 0.84, none 0.92 / 0.93 / 0.92. */
  {
    uint32_t up = declared(cfg);
    unsigned held = 0;
    for (unsigned b = 0; b < S; b++)
      held += (parent[b] >= 0 && !(need >> b & 1)) || s->ask_until[b] > now;
    need = ptv_ch_limit_need(need, held, S, (unsigned)((cfg->self + now / PTV_S) % S),
                             up >= ptv_node_stripe_kbps(n), &s->pp);
  }
  int improving = 0;
  if (!need && now >= s->next_improve) {
    /* Hysteresis: at most one voluntary move per improve period, from the
     * deepest parent, and only for a gain of improve_gap tiers. */
    s->next_improve = now + s->pp.improve_us;
    int worst = -1;
    for (unsigned b = 0; b < S; b++)
      if (parent[b] >= 0 && (worst < 0 || pi[parent[b]].depth[b] > pi[parent[worst]].depth[worst]))
        worst = (int)b;
    if (worst >= 0) {
      need = (uint16_t)(1u << worst);
      improving = 1;
    }
  }
  if (!need) return;

  /* Plan: a parent per needy stripe. */
  ptv_ch_cand c[MAXP];
  uint16_t add[MAXP], drop[MAXP];
  memset(add, 0, sizeof(add));
  memset(drop, 0, sizeof(drop));
  uint32_t bid = declared(cfg);
  for (unsigned b = 0; b < S; b++) {
    if (!(need >> b & 1)) continue;
    for (uint32_t i = 0; i < m; i++) {
      const ptv_partner_info *p = &pi[i];
      c[i].tier = p->has_map ? p->depth[b] : 255;
      c[i].free_slots = p->free_slots;
      c[i].price_kbps = p->price_kbps;
      c[i].est_kbps = est_of(s, p->id, p->upload_kbps);
      c[i].from_it = (uint8_t)__builtin_popcount((p->sub_in | p->sub_ask | add[i]) & ~(1u << b));
      c[i].is_child = (uint8_t)((p->sub_out >> b & 1) != 0);
      c[i].blocked = (uint8_t)(blocked(s, p->id, now) || (int)i == parent[b]);
      c[i].backlog_ms = p->queue_ms;
      c[i].is_source = c[i].tier == 0;
      c[i].can_connect = 1; /* partners are connected; ch_pick_candidate applies the NAT rule */
      /* A slot we just planned to take is no longer free. */
      int taken = __builtin_popcount(add[i]);
      c[i].free_slots = (uint8_t)(c[i].free_slots > taken ? c[i].free_slots - taken : 0);
    }
    /* The loop guard holds however we came to need a parent: ours gone,
     * silent, evicting us or failing. Not for a failing one until session
     * 29: a peer whose parent failed could take a grandchild, whose depth
     * was true but deeper than ours, when no shallower partner had room
     * (300 peers, 50% failing at 40 s, seed 4: 32 peer-stripes on a loop
     * for 2 s; seeds 1-12 with the guard for all: none). Nor for a
     * voluntary move from an unfed parent until session 32: its tier (255)
     * bounded nothing, so any partner, a grandchild not yet told, would do. */
    uint8_t below = ptv_ch_move_below(improving, parent[b] >= 0 ? pi[parent[b]].depth[b] : 255,
                                      s->depth_was[b], passes_on >> b & 1, unfed_us[b], &s->pp);
    int k = ptv_ch_pick_parent(c, m, bid, below, &s->pp);
    if (k < 0) {
      /* A failing parent and none no deeper than we are with room: leave
       * it. Unfed, we tell our subtree, and the bound opens a level per
       * loop_guard_us, as the news goes down. A parent unfed too long: leave
       * it anyway (on a loop of unfed peers it is the only way out). */
      if (parent[b] >= 0 &&
          ((unfed_long >> b & 1) ||
           ptv_ch_leave_unreplaced(improving, below,
                                   now <= pi[parent[b]].last_heard + s->pp.silent_us)))
        drop[parent[b]] |= (uint16_t)(1u << b);
      continue;
    }
    if (improving && (parent[b] < 0 ||
                      !ptv_ch_worth_switch(pi[parent[b]].depth[b], c[k].tier,
                                           now - pi[parent[b]].sub_since, &s->pp)))
      continue;
    add[k] |= (uint16_t)(1u << b);
  }
  /* Execute. */
  for (uint32_t i = 0; i < m; i++) {
    if (!add[i] && !drop[i]) continue;
    ptv_node_subscribe(n, pi[i].id, (uint16_t)((pi[i].sub_in & ~drop[i]) | add[i]), now);
    if (!add[i]) continue;
    for (unsigned b = 0; b < S; b++)
      if (add[i] >> b & 1) s->ask_until[b] = now + s->pp.ask_us;
    if (improving) s->switches++;
  }
}

const ptv_strategy ptv_strategy_chandelier = {
    .name = "chandelier",
    .stripes = 8,
    .init = ch_init,
    .fini = ch_fini,
    .pick_candidate = ch_pick_candidate,
    .accept = ch_accept,
    .make_room = ch_make_room,
    .tick = ch_tick,
    .push_targets = NULL,
    .grant = ch_grant,
    .on_grant = ch_on_grant,
    .on_report = ch_on_report,
};

void ptv_chandelier_get_counters(const ptv_node *n, uint32_t *switches, uint32_t *failures,
                                 uint32_t *evictions) {
  const ch_state *s = ptv_node_strategy_state(n);
  *switches = s ? s->switches : 0;
  *failures = s ? s->failures : 0;
  *evictions = s ? s->evictions : 0;
}
