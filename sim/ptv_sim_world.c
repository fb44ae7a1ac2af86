/* ptv_sim_world.c -- the simulator's driver. See ptv_sim_world.h.
 *
 * Node 0 is the tracker, node 1 the source, nodes 2.. are peers in join
 * order. Control messages take the pairwise latency; chunks are flows in the
 * network model and are delivered one latency after their last byte. Every
 * random choice comes from a per-node or the world's own generator seeded
 * from the scenario seed, and same-time events run in scheduling order, so
 * a run is a pure function of (scenario, seed).
 */
#define _POSIX_C_SOURCE 200809L
#include "ptv_sim_world.h"
#include "ptv_err.h"
#include "ptv_nat.h"
#include "ptv_node.h"
#include "ptv_sim_evq.h"
#include "ptv_sim_net.h"
#include "ptv_strategy.h"
#include "ptv_chandelier.h"
#include "ptv_tracker.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { EV_DELIVER, EV_TIMER, EV_JOIN, EV_SCN, EV_PART_END, EV_CHURN, EV_SAMPLE, EV_TRACKER_UP };

#define TRACKER 0u
#define SOURCE 1u
#define RELAY_EXTRA_US (40 * PTV_MS)
#define RECOVER_CLEAN_S 5 /* seconds without a miss that make a peer "back" */
#define NEVER_S 1e9
#define CHAIN_MAX 64 /* hops: a stripe chain longer than this is a loop */

typedef struct {
  uint32_t from, to, len, virt;
  uint8_t bulk;
  uint8_t data[];
} sim_msg;

typedef struct sim_node {
  struct ptv_world *w;
  ptv_node *node; /* NULL for the tracker and for departed peers */
  uint32_t idx;
  uint8_t online, nat, group, played;
  uint32_t up_kbps;
  uint32_t claim_kbps; /* a free-rider's claim, else 0 */
  uint32_t online_pos; /* position in w->online, peers only */
  ptv_tstamp timer_at;
  uint64_t timer_ver, rng;
  ptv_tstamp join_t, play_t;
  int32_t last_miss_sec;
  /* recovery after the disturbance being tracked: candidate first second
   * of 5 clean ones (-1: not tracked), and whether they have passed */
  int32_t rec_cand;
  uint8_t rec_done;
  /* snapshot when the peer leaves */
  uint64_t due, missed;
  /* chunks due and missed when the run's last third began (0: joined later) */
  uint64_t tail_due0, tail_missed0;
  double lag_s, stall_s;
  uint32_t stalls, catchups;
  uint32_t changes;
  double online_s;
} sim_node;

struct ptv_world {
  const ptv_scenario *s;
  const ptv_strategy *strat;
  ptv_evq q;
  ptv_net *net;
  ptv_tracker *tracker;
  sim_node *n;
  uint32_t nn, cap;
  uint32_t *online; /* online peer indices */
  uint32_t nonline;
  uint64_t rng, loss_rng; /* scenario decisions; message loss */
  ptv_tstamp now, end;
  int partitioned;
  int tracker_down; /* `at T tracker down`: nothing to or from node 0 */
  uint32_t ngroups;
  double churn_acc;
  ptv_series_row cur;
  ptv_series_row *rows;
  size_t nrows;
  uint64_t events, messages, drop_nat, drop_loss, drop_part, drop_tracker;
  /* diagnostics on stderr: PTV_SIM_DEBUG (counters, delivery delay every
   * 5 s), PTV_SIM_TRACE=peer-id (that peer's misses) or all (every miss),
   * PTV_SIM_WIN (see debug_window) */
  int debug;
  long trace;
  uint64_t delay_sum0, delay_n0;
  /* per-peer recovery: the scenario event tracked (-1 none), from which
   * second, and each event's result (seconds until the slowest peer was
   * back, -1 never, -2 not tracked) */
  int32_t rec_ev, rec_from;
  double *rec_peer, *rec_p99;
  double total_source_bytes, total_peer_down, total_ctrl, total_payload;
  uint64_t total_changes;
  double wall_s;
};

/* ---- randomness --------------------------------------------------------- */

static uint64_t splitmix(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double unif(uint64_t *x) { return (double)(splitmix(x) >> 11) * 0x1.0p-53; }

static ptv_tstamp latency(const ptv_world *w, uint32_t a, uint32_t b) {
  uint64_t k = w->s->seed * 0x100000001b3ULL ^ ((uint64_t)(a < b ? a : b) << 32 | (a < b ? b : a));
  double u = unif(&k);
  double s = w->s->lat_lo_s + u * (w->s->lat_hi_s - w->s->lat_lo_s);
  return (ptv_tstamp)(s * 1e6);
}

/* ---- scheduling ---------------------------------------------------------- */

static void push(ptv_world *w, ptv_tstamp t, uint32_t kind, uint32_t a, uint64_t b,
                 void *ptr) {
  ptv_event e = {.t = t < w->now ? w->now : t, .kind = kind, .a = a, .b = b, .ptr = ptr};
  if (ptv_evq_push(&w->q, &e) != 0) {
    fprintf(stderr, "peertv-sim: out of memory\n");
    exit(1);
  }
}

static void resched(ptv_world *w, sim_node *sn) {
  ptv_tstamp t = sn->idx == TRACKER ? ptv_tracker_get_expiry(w->tracker)
                                    : ptv_node_get_expiry(sn->node);
  if (t < w->now) t = w->now;
  if (t < sn->timer_at) {
    sn->timer_at = t;
    push(w, t, EV_TIMER, sn->idx, ++sn->timer_ver, NULL);
  }
}

/* ---- the network --------------------------------------------------------- */

static int reachable(ptv_world *w, uint32_t a, uint32_t b, ptv_tstamp *extra) {
  *extra = 0;
  if (w->partitioned && w->n[a].group != w->n[b].group) {
    w->drop_part++;
    return 0;
  }
  if (w->tracker_down && (a == TRACKER || b == TRACKER)) {
    w->drop_tracker++;
    return 0;
  }
  if (!ptv_nat_can_connect(w->n[a].nat, w->n[b].nat)) {
    if (!w->s->nat_relay) {
      w->drop_nat++;
      return 0;
    }
    *extra = RELAY_EXTRA_US;
  }
  return 1;
}

static int sim_send(sim_node *sn, ptv_id to, const uint8_t *buf, size_t len,
                    size_t virt, int bulk) {
  ptv_world *w = sn->w;
  if (to >= w->nn || !sn->online) return 0;
  w->messages++;
  w->total_ctrl += (double)len;
  if (bulk) {
    w->total_payload += (double)virt;
    if (sn->idx == SOURCE) {
      w->cur.source_bytes += (double)(len + virt);
      w->total_source_bytes += (double)(len + virt);
    } else {
      w->cur.peer_up_bytes += (double)(len + virt);
    }
  }
  ptv_tstamp extra;
  if (!w->n[to].online || !reachable(w, sn->idx, to, &extra)) return 0;
  if (w->s->loss > 0 && unif(&w->loss_rng) < w->s->loss) {
    w->drop_loss++;
    return 0;
  }
  sim_msg *m = malloc(sizeof(*m) + len);
  if (!m) return PTV_ERR_NOMEM;
  m->from = sn->idx;
  m->to = to;
  m->len = (uint32_t)len;
  m->virt = (uint32_t)virt;
  m->bulk = (uint8_t)bulk;
  memcpy(m->data, buf, len);
  if (bulk) {
    if (ptv_net_flow_start(w->net, sn->idx, to, (double)(len + virt), w->now, m) < 0) {
      free(m);
      return PTV_ERR_NOMEM;
    }
  } else {
    push(w, w->now + latency(w, sn->idx, to) + extra, EV_DELIVER, m->to, 0, m);
  }
  return 0;
}

static int node_send_cb(void *user, ptv_id to, const uint8_t *buf, size_t len,
                        size_t virt, int bulk) {
  return sim_send(user, to, buf, len, virt, bulk);
}
static int tracker_send_cb(void *user, ptv_id to, const uint8_t *buf, size_t len) {
  return sim_send(user, to, buf, len, 0, 0);
}
static uint64_t rand_cb(void *user) { return splitmix(&((sim_node *)user)->rng); }

static void on_playout(void *user, ptv_chunk_id id, int present, ptv_tstamp now) {
  sim_node *sn = user;
  ptv_world *w = sn->w;
  w->cur.due++;
  if (w->trace == -2 && !present) { /* PTV_SIM_TRACE=all: one line per miss */
    ptv_node_stats st;
    ptv_node_get_stats(sn->node, &st);
    unsigned S = ptv_node_nstripes(sn->node), sb = S ? id % S : 0, fed = 0;
    int pd = -1;
    long par = -1;
    ptv_partner_info pis[64];
    size_t np = ptv_node_partners(sn->node, pis, 64);
    for (size_t k = 0; k < np; k++) {
      fed |= pis[k].sub_in;
      if (S && (pis[k].sub_in >> sb & 1)) {
        pd = pis[k].depth[sb];
        par = (long)pis[k].id - 2;
      }
    }
    /* The missed stripe's delivery delay and deviation, and the lag the
     * slowest stripe needs (delay + 4 deviations: the strategy's target). */
    double sdm = 0, sdd = 0, need = 0;
    for (unsigned b = 0; b < S; b++) {
      ptv_tstamp m = 0, d = 0;
      if (ptv_node_stripe_delay(sn->node, b, &m, &d) != 0) continue;
      if (b == sb) { sdm = (double)m; sdd = (double)d; }
      if ((double)(m + 4 * d) > need) need = (double)(m + 4 * d);
    }
    fprintf(stderr,
            "miss peer %ld t %.2f played %.2f lag %.2f stripe %u parent_depth %d stripes_fed %d "
            "parent %ld way/held/nowhere %llu/%llu/%llu stripe_delay %.2f dev %.2f need %.2f\n",
            (long)sn->idx - 2, (double)now / 1e6, (double)(now - st.play_start) / 1e6,
            (double)st.lag_us / 1e6, sb, pd, __builtin_popcount(fed), par,
            (unsigned long long)st.miss_on_way, (unsigned long long)st.miss_held,
            (unsigned long long)st.miss_nowhere, sdm / 1e6, sdd / 1e6, need / 1e6);
  }
  if (w->trace >= 0 && (long)sn->idx - 2 == w->trace && !present) {
    ptv_node_stats st;
    ptv_node_get_stats(sn->node, &st);
    fprintf(stderr,
            "trace: t=%.3f miss chunk %u lag %.2f way/held/nowhere %llu/%llu/%llu partners %u "
            "newest held %d\n",
            (double)now / 1e6, id, (double)st.lag_us / 1e6, (unsigned long long)st.miss_on_way,
            (unsigned long long)st.miss_held, (unsigned long long)st.miss_nowhere, st.npartners,
            st.newest == PTV_ID_NONE ? -1 : (int)st.newest);
    unsigned S = ptv_node_nstripes(sn->node);
    if (S) { /* which stripe, from whom, how late it usually is */
      unsigned sb = id % S;
      ptv_tstamp m = 0, d = 0;
      ptv_node_stripe_delay(sn->node, sb, &m, &d);
      ptv_partner_info pis[64];
      size_t np = ptv_node_partners(sn->node, pis, 64);
      long par = -1;
      int pd = -1;
      for (size_t k = 0; k < np; k++)
        if (pis[k].sub_in >> sb & 1) {
          par = (long)pis[k].id - 2;
          pd = pis[k].depth[sb];
        }
      fprintf(stderr, "trace:   stripe %u parent %ld (depth %d) delay %.2f +- %.2f s, playing %d\n",
              sb, par, pd, (double)m / 1e6, (double)d / 1e6, st.playing);
    }
  }
  if (!present && sn->rec_cand >= 0 && !sn->rec_done && (int32_t)w->cur.t_s >= w->rec_from) {
    int32_t t = (int32_t)w->cur.t_s;
    if (t >= sn->rec_cand + RECOVER_CLEAN_S) sn->rec_done = 1; /* was back already */
    else sn->rec_cand = t + 1;
  }
  if (!present) {
    w->cur.missed++;
    if (sn->last_miss_sec != (int32_t)w->cur.t_s) {
      sn->last_miss_sec = (int32_t)w->cur.t_s;
      w->cur.peers_missing++;
    }
  }
}

static void on_play_start(void *user, ptv_chunk_id first, ptv_tstamp now) {
  sim_node *sn = user;
  sn->played = 1;
  sn->play_t = now;
}

/* ---- nodes --------------------------------------------------------------- */

static sim_node *new_node(ptv_world *w) {
  if (w->nn == w->cap) {
    fprintf(stderr, "peertv-sim: node table full (internal bound %u)\n", w->cap);
    exit(1);
  }
  sim_node *sn = &w->n[w->nn];
  memset(sn, 0, sizeof(*sn));
  sn->w = w;
  sn->idx = w->nn++;
  sn->timer_at = PTV_TSTAMP_MAX;
  sn->rng = w->s->seed ^ ((uint64_t)sn->idx * 0xd1b54a32d192ed03ULL);
  sn->last_miss_sec = -1;
  sn->rec_cand = -1;
  sn->online = 1;
  return sn;
}

static const ptv_node_callbacks node_cbs = {
    .send = node_send_cb, .rand = rand_cb, .on_playout = on_playout,
    .on_play_start = on_play_start};

static void join_peer(ptv_world *w) {
  const ptv_scenario *s = w->s;
  sim_node *sn = new_node(w);
  /* A peer's traits come from its own stream (seed, index), drawn before its
   * engine uses that stream: the same seed gives the same population whatever
   * the strategy or engine version does. */
  double up = ptv_dist_sample(&s->upload, unif(&sn->rng));
  double down = ptv_dist_sample(&s->download, unif(&sn->rng));
  double u = unif(&sn->rng);
  sn->nat = u < s->nat_share[0] ? PTV_NAT_OPEN
          : u < s->nat_share[0] + s->nat_share[1] ? PTV_NAT_CONE : PTV_NAT_SYMMETRIC;
  sn->group = w->partitioned ? (uint8_t)(splitmix(&w->rng) % w->ngroups) : 0;
  sn->up_kbps = (uint32_t)(up + 0.5);
  /* Drawn only when the scenario has free-riders, so that every other
   * scenario keeps its population and random streams. */
  if (s->freerider_share > 0 && unif(&sn->rng) < s->freerider_share)
    sn->claim_kbps = (uint32_t)(up * s->freerider_claim + 0.5);
  sn->join_t = w->now;
  ptv_net_set_caps(w->net, sn->idx, up * 1000.0, down * 1000.0);
  ptv_node_config c;
  ptv_node_config_default(&c);
  c.self = sn->idx;
  c.tracker = TRACKER;
  c.nat = sn->nat;
  c.upload_kbps = sn->up_kbps;
  c.claim_kbps = sn->claim_kbps;
  c.buffer_us = (ptv_tstamp)(s->buffer_s * 1e6);
  c.strategy = w->strat;
  /* A stripe parent needs a partner per child on top of its own partners. */
  if (w->strat->stripes) c.max_partners = 24;
  sn->node = ptv_node_new(&c, &node_cbs, sn);
  if (!sn->node) {
    fprintf(stderr, "peertv-sim: out of memory creating peer %u\n", sn->idx);
    exit(1);
  }
  sn->online_pos = w->nonline;
  w->online[w->nonline++] = sn->idx;
  ptv_node_start(sn->node, w->now);
  resched(w, sn);
}

static void free_msg_cb(void *arg, void *user) { free(user); }

/* Takes a peer off line: crash (no goodbye) or graceful leave. */
static void depart(ptv_world *w, uint32_t idx, int graceful) {
  sim_node *sn = &w->n[idx];
  if (!sn->online || !sn->node) return;
  if (graceful) ptv_node_leave(sn->node, w->now);
  ptv_node_stats st;
  ptv_node_get_stats(sn->node, &st);
  sn->due = st.chunks_due;
  sn->missed = st.chunks_missed;
  sn->lag_s = (double)st.lag_us / 1e6;
  sn->stalls = st.stalls;
  sn->catchups = st.catchups;
  sn->stall_s = (double)st.stall_us / 1e6;
  sn->changes = st.partner_changes;
  sn->online_s = (double)(w->now - sn->join_t) / 1e6;
  sn->rec_cand = -1; /* gone: its recovery is not the overlay's */
  ptv_node_free(sn->node);
  sn->node = NULL;
  sn->online = 0;
  ptv_net_node_reset(w->net, idx, w->now, free_msg_cb, NULL);
  uint32_t last = w->online[--w->nonline];
  w->online[sn->online_pos] = last;
  w->n[last].online_pos = sn->online_pos;
}

static void depart_random(ptv_world *w, uint32_t k, int graceful) {
  while (k-- > 0 && w->nonline > 0)
    depart(w, w->online[splitmix(&w->rng) % w->nonline], graceful);
}

/* ---- the stripe trees, as a whole ----------------------------------------- */

void ptv_world_stripe_chains(const ptv_world *w, unsigned stripe, uint32_t *reach,
                             uint32_t *orphan, uint32_t *loop) {
  *reach = *orphan = *loop = 0;
  for (uint32_t i = 0; i < w->nonline; i++) {
    uint32_t cur = w->online[i];
    if (w->n[cur].idx < 2 || !w->n[cur].node) continue;
    int steps = 0;
    for (; steps < CHAIN_MAX; steps++) {
      const sim_node *c = &w->n[cur];
      if (!c->node || !c->online) { /* a departed parent its child has not noticed yet */
        (*orphan)++;
        break;
      }
      if (ptv_node_config_get(c->node)->role == PTV_ROLE_SOURCE) {
        (*reach)++;
        break;
      }
      ptv_partner_info pis[64];
      size_t np = ptv_node_partners(c->node, pis, 64), k;
      for (k = 0; k < np && !(pis[k].sub_in >> stripe & 1); k++) {}
      if (k == np) {
        (*orphan)++;
        break;
      }
      cur = pis[k].id;
    }
    if (steps == CHAIN_MAX) (*loop)++; /* longer than any tree: round a loop */
  }
}

/* PTV_SIM_WIN=stripe:from:to -- every second from `from` to `to` s, how
 * far that stripe reaches, and each "root orphan" (a peer whose stripe
 * parent is gone or missing) with a subtree of 5 or more: its depth as it
 * advertises it, whether it is asking, and how many partners are fed
 * there, and with a free slot. stripe 99: only the peers on a loop, summed
 * over the stripes, in the seconds with any. How a tree rebuilds after a
 * crash, second by second. */
static void debug_window(ptv_world *w, uint32_t t_s) {
  const char *e = getenv("PTV_SIM_WIN");
  unsigned st, from, to;
  if (!e || sscanf(e, "%u:%u:%u", &st, &from, &to) != 3 || t_s < from || t_s > to) return;
  if (st == 99) {
    uint32_t sum = 0, mx = 0;
    for (unsigned b = 0; b < w->strat->stripes; b++) {
      uint32_t r, o, l;
      ptv_world_stripe_chains(w, b, &r, &o, &l);
      sum += l;
      if (l > mx) mx = l;
    }
    if (sum) fprintf(stderr, "win t=%u on a loop: %u peer-stripes, at most %u on one stripe\n",
                     t_s, sum, mx);
    return;
  }
  if (st >= w->strat->stripes) return;
  uint32_t reach, orph, loop;
  ptv_world_stripe_chains(w, st, &reach, &orph, &loop);
  fprintf(stderr, "win t=%u stripe %u reach %u orphan %u loop %u\n", t_s, st, reach, orph, loop);
  uint32_t *sub = calloc(w->nn, sizeof(*sub)); /* peers under each root orphan */
  if (!sub) return;
  for (uint32_t i = 0; i < w->nonline; i++) {
    uint32_t cur = w->online[i];
    if (w->n[cur].idx < 2 || !w->n[cur].node) continue;
    for (int steps = 0; steps < CHAIN_MAX; steps++) {
      const sim_node *c = &w->n[cur];
      if (!c->node || !c->online || ptv_node_config_get(c->node)->role == PTV_ROLE_SOURCE) break;
      ptv_partner_info pis[64];
      size_t np = ptv_node_partners(c->node, pis, 64), k;
      for (k = 0; k < np && !(pis[k].sub_in >> st & 1); k++) {}
      if (k == np || !w->n[pis[k].id].online) {
        sub[cur]++;
        break;
      }
      cur = pis[k].id;
    }
  }
  for (uint32_t i = 0; i < w->nn; i++) {
    if (sub[i] < 5) continue;
    ptv_partner_info pis[64];
    size_t np = ptv_node_partners(w->n[i].node, pis, 64);
    long ask = -1, gone = -1;
    unsigned fed = 0, room = 0;
    for (size_t k = 0; k < np; k++) {
      if (pis[k].sub_ask >> st & 1) ask = (long)pis[k].id;
      if (pis[k].sub_in >> st & 1) gone = (long)pis[k].id;
      if (pis[k].has_map && pis[k].depth[st] != 255) {
        fed++;
        room += pis[k].free_slots > 0;
      }
    }
    fprintf(stderr, "win   root %u (%u kbps) subtree %u depth %u partners %zu asking %ld "
            "gone parent %ld fed partners %u with room %u\n", i, w->n[i].up_kbps, sub[i],
            ptv_node_depth(w->n[i].node, st), np, ask, gone, fed, room);
  }
  free(sub);
}

/* ---- events -------------------------------------------------------------- */

/* PTV_SIM_DEBUG: the shape of the stripe overlay (tiers, parents, slots). */
static void debug_stripes(ptv_world *w, uint32_t t_s) {
  uint32_t tiers[17] = {0}, full = 0, online = 0;
  double tdt[17] = {0};
  uint64_t slots = 0, used = 0, td = 0, ntd = 0, pushes = 0, sw = 0, fl = 0, ev = 0;
  uint64_t fp = 0, fo = 0, fn = 0, ps = 0, pl = 0, pw = 0, uf = 0, mw = 0, mh = 0, mn = 0;
  uint64_t cps[12] = {0}, cpl[12] = {0}, cpw[12] = {0}, cused[12] = {0}, cslots[12] = {0};
  unsigned S = w->strat->stripes;
  if (t_s % 50 == 0) { /* how far each stripe reaches, and who holds the source's slots */
    uint32_t fed[16] = {0}, fedup[16] = {0};
    for (uint32_t i = 0; i < w->nonline; i++) {
      sim_node *sn = &w->n[w->online[i]];
      if (sn->idx < 2 || !sn->node) continue;
      for (unsigned b = 0; b < S; b++) if (ptv_node_depth(sn->node, b) != 255) { fed[b]++; if (sn->up_kbps) fedup[b]++; }
    }
    fprintf(stderr, "debug: t=%u peers fed per stripe (of them uploading):", t_s);
    for (unsigned b = 0; b < S; b++) fprintf(stderr, " %u(%u up)", fed[b], fedup[b]);
    fprintf(stderr, "\ndebug: source partners (upload kbps:stripes granted, hex):");
    for (uint32_t i = 0; i < w->nn; i++) {
      sim_node *sn = &w->n[i];
      if (!sn->node || ptv_node_config_get(sn->node)->role != PTV_ROLE_SOURCE) continue;
      ptv_partner_info pis[64];
      size_t np = ptv_node_partners(sn->node, pis, 64);
      for (size_t k = 0; k < np; k++) /* a free-rider: real upload/claim */
        if (w->n[pis[k].id].claim_kbps)
          fprintf(stderr, " %u/%u:%x", w->n[pis[k].id].up_kbps, w->n[pis[k].id].claim_kbps, pis[k].sub_out);
        else
          fprintf(stderr, " %u:%x", w->n[pis[k].id].up_kbps, pis[k].sub_out);
    }
    fprintf(stderr, "\n");
  }
  for (uint32_t i = 0; i < w->nonline; i++) {
    sim_node *sn = &w->n[w->online[i]];
    if (sn->idx < 2 || !sn->node) continue;
    online++;
    uint8_t t = ptv_node_tier(sn->node);
    tiers[t > 15 ? 16 : t]++;
    slots += ptv_node_stripe_slots(sn->node);
    used += ptv_node_stripe_used(sn->node);
    uint16_t in = 0;
    ptv_partner_info pis[64];
    size_t np = ptv_node_partners(sn->node, pis, 64);
    for (size_t k = 0; k < np; k++) in |= pis[k].sub_in;
    if ((unsigned)__builtin_popcount(in) == S) full++;
    if (ptv_node_tree_delay(sn->node)) {
      tdt[t > 15 ? 16 : t] += ptv_node_tree_delay(sn->node) / 1e6;
      td += ptv_node_tree_delay(sn->node);
      ntd++;
    }
    ptv_node_stats st;
    ptv_node_get_stats(sn->node, &st);
    pushes += st.pushes;
    fp += st.stripe_parent;
    fo += st.stripe_other;
    fn += st.stripe_orphan;
    mw += st.miss_on_way;
    mh += st.miss_held;
    mn += st.miss_nowhere;
    {
      unsigned cl = sn->up_kbps / 128 > 11 ? 11 : sn->up_kbps / 128;
      cps[cl] += st.push_sent;
      cpl[cl] += st.push_late;
      cpw[cl] += st.push_wait_us;
      cused[cl] += ptv_node_stripe_used(sn->node);
      cslots[cl] += ptv_node_stripe_slots(sn->node);
    }
    ps += st.push_sent;
    pl += st.push_late;
    pw += st.push_wait_us;
    uf += st.upq_full;
    uint32_t a, b, c;
    ptv_chandelier_get_counters(sn->node, &a, &b, &c);
    sw += a;
    fl += b;
    ev += c;
  }
  fprintf(stderr, "debug: t=%u stripes: %u/%u peers fed on all, slots %llu used %llu (source %u/%u), "
          "tree delay %.2f s, pushes %llu; tiers",
          t_s, full, online, (unsigned long long)slots, (unsigned long long)used,
          ptv_node_stripe_used(w->n[SOURCE].node), ptv_node_stripe_slots(w->n[SOURCE].node),
          ntd ? (double)td / ntd / 1e6 : 0.0, (unsigned long long)pushes);
  fprintf(stderr, "debug: switches %llu failing %llu evictions %llu; chunks from parent %llu "
          "other %llu orphan %llu (online peers)\n",
          (unsigned long long)sw, (unsigned long long)fl, (unsigned long long)ev,
          (unsigned long long)fp, (unsigned long long)fo, (unsigned long long)fn);
  fprintf(stderr, "debug: missed on-its-way %llu held %llu nowhere %llu\n", (unsigned long long)mw,
          (unsigned long long)mh, (unsigned long long)mn);
  fprintf(stderr, "debug: pushes sent %llu (mean wait %.0f ms) late %llu; upload queue full %llu\n",
          (unsigned long long)ps, ps ? pw / 1e3 / ps : 0.0, (unsigned long long)pl,
          (unsigned long long)uf);
  for (int i = 0; i < 12; i++)
    if (cps[i] + cpl[i])
      fprintf(stderr, "debug:   up %4d kbps: used %llu/%llu slots, pushes %llu late %.1f%% wait %.0f ms\n",
              i * 128, (unsigned long long)cused[i], (unsigned long long)cslots[i],
              (unsigned long long)cps[i], 100.0 * cpl[i] / (cps[i] + cpl[i]),
              cps[i] ? cpw[i] / 1e3 / cps[i] : 0.0);
  for (int t = 1; t <= 16; t++)
    if (tiers[t]) fprintf(stderr, " %d:%u(%.1fs)", t == 16 ? 255 : t, tiers[t], tdt[t] / tiers[t]);
  fprintf(stderr, "\n");
  /* Where each peer's stripe parents lead (ptv_world_stripe_chains). */
  fprintf(stderr, "debug: t=%u stripe chains source/orphan/loop:", t_s);
  for (unsigned b = 0; b < S; b++) {
    uint32_t reach, orph, loop;
    ptv_world_stripe_chains(w, b, &reach, &orph, &loop);
    fprintf(stderr, " %u/%u/%u", reach, orph, loop);
  }
  /* The source's children per stripe, online and crashed (not yet noticed). */
  fprintf(stderr, "; source roots live/gone:");
  {
    ptv_partner_info pis[64];
    size_t np = ptv_node_partners(w->n[SOURCE].node, pis, 64);
    for (unsigned b = 0; b < S; b++) {
      unsigned live = 0, gone = 0;
      for (size_t k = 0; k < np; k++)
        if (pis[k].sub_out >> b & 1) {
          if (w->n[pis[k].id].online) live++;
          else gone++;
        }
      fprintf(stderr, " %u/%u", live, gone);
    }
  }
  fprintf(stderr, "\n");
}

/* The second from which the tail figures count: the run's last third, when
 * the overlay has settled after the joins (a 300 s run: from 200 s). */
static uint32_t tail_from_s(const ptv_world *w) { return (uint32_t)(w->s->run_s * 2 / 3); }

static void sample(ptv_world *w) {
  ptv_series_row *r = &w->cur;
  r->online = w->nonline;
  double *lags = malloc((w->nonline + 1) * sizeof(double));
  uint32_t np = 0;
  for (uint32_t i = 0; i < w->nonline; i++) {
    sim_node *sn = &w->n[w->online[i]];
    ptv_node_stats st;
    ptv_node_get_stats(sn->node, &st);
    r->partner_changes += st.partner_changes - sn->changes;
    sn->changes = st.partner_changes;
    if (st.playing && lags) lags[np++] = (double)st.lag_us / 1e6;
  }
  r->playing = np;
  if (r->t_s == tail_from_s(w)) /* the last third begins: snapshot the counts */
    for (uint32_t i = 0; i < w->nonline; i++) {
      sim_node *sn = &w->n[w->online[i]];
      ptv_node_stats st;
      ptv_node_get_stats(sn->node, &st);
      sn->tail_due0 = st.chunks_due;
      sn->tail_missed0 = st.chunks_missed;
    }
  if (w->debug && r->t_s % 5 == 0) {
    uint64_t ds = 0, dn = 0;
    for (uint32_t i = 2; i < w->nn; i++) {
      if (!w->n[i].node) continue;
      ptv_node_stats st;
      ptv_node_get_stats(w->n[i].node, &st);
      ds += st.recv_delay_us;
      dn += st.recv_new;
    }
    if (dn > w->delay_n0)
      fprintf(stderr, "debug: t=%u delivery delay mean %.2f s over %llu new chunks\n", r->t_s,
              (double)(ds - w->delay_sum0) / 1e6 / (double)(dn - w->delay_n0),
              (unsigned long long)(dn - w->delay_n0));
    w->delay_sum0 = ds;
    w->delay_n0 = dn;
    if (w->strat->stripes) debug_stripes(w, r->t_s);
  }
  if (w->strat->stripes) debug_window(w, r->t_s);
  r->lag_p50_s = ptv_percentile(lags, np, 0.5);
  r->lag_p95_s = ptv_percentile(lags, np, 0.95);
  free(lags);
  w->total_changes += r->partner_changes;
  ptv_series_row *nr = realloc(w->rows, (w->nrows + 1) * sizeof(*nr));
  if (!nr) {
    fprintf(stderr, "peertv-sim: out of memory\n");
    exit(1);
  }
  w->rows = nr;
  w->rows[w->nrows++] = *r;
  uint32_t next = r->t_s + 1;
  memset(&w->cur, 0, sizeof(w->cur));
  w->cur.t_s = next;
}

/* Per-peer recovery: a peer is back at the first second from which it
 * misses nothing for RECOVER_CLEAN_S seconds; the event's figure is the
 * slowest peer's (of those playing at the event and online since). Ends the
 * tracking of the previous event at second `now_s`. */
static void recovery_end(ptv_world *w, int32_t now_s) {
  if (w->rec_ev < 0) return;
  double *r = malloc((w->nn + 1) * sizeof(double));
  uint32_t nr = 0;
  for (uint32_t i = 2; i < w->nn; i++) {
    sim_node *sn = &w->n[i];
    if (sn->rec_cand < 0) continue;
    double ri = !sn->rec_done && now_s < sn->rec_cand + RECOVER_CLEAN_S
                    ? NEVER_S /* not back before the run (or tracking) ended */
                    : (double)(sn->rec_cand - w->rec_from);
    if (w->debug && ri > 10)
      fprintf(stderr, "debug: peer %u back %.0f s after the event\n", i - 2, ri);
    if (r) r[nr++] = ri;
    sn->rec_cand = -1;
  }
  double p99 = r ? ptv_percentile(r, nr, 0.99) : NEVER_S;
  double all = 0;
  for (uint32_t i = 0; r && i < nr; i++)
    if (r[i] > all) all = r[i];
  w->rec_p99[w->rec_ev] = p99 >= NEVER_S ? -1 : p99;
  w->rec_peer[w->rec_ev] = all >= NEVER_S || !r ? -1 : all;
  free(r);
  w->rec_ev = -1;
}

static void recovery_begin(ptv_world *w, uint32_t ei) {
  int32_t from = (int32_t)ceil((double)w->now / 1e6);
  recovery_end(w, (int32_t)w->cur.t_s);
  w->rec_ev = (int32_t)ei;
  w->rec_from = from;
  for (uint32_t i = 0; i < w->nonline; i++) {
    sim_node *sn = &w->n[w->online[i]];
    ptv_node_stats st;
    ptv_node_get_stats(sn->node, &st);
    sn->rec_cand = st.playing ? from : -1;
    sn->rec_done = 0;
  }
}

static void scenario_event(ptv_world *w, const ptv_scn_event *e, uint32_t ei) {
  switch (e->kind) {
  case PTV_SCN_FAIL:
    depart_random(w, (uint32_t)floor(e->frac * w->nonline + 0.5), 0);
    recovery_begin(w, ei);
    break;
  case PTV_SCN_LEAVE:
    depart_random(w, (uint32_t)floor(e->frac * w->nonline + 0.5), 1);
    break;
  case PTV_SCN_PARTITION:
    w->partitioned = 1;
    w->ngroups = e->count;
    for (uint32_t i = 2; i < w->nn; i++) w->n[i].group = (uint8_t)(splitmix(&w->rng) % e->count);
    push(w, w->now + (ptv_tstamp)(e->dur_s * 1e6), EV_PART_END, ei, 0, NULL);
    break;
  case PTV_SCN_TRACKER_DOWN:
    w->tracker_down = 1;
    push(w, w->now + (ptv_tstamp)(e->dur_s * 1e6), EV_TRACKER_UP, ei, 0, NULL);
    break;
  case PTV_SCN_CHURN:
    push(w, w->now, EV_CHURN, ei, 0, NULL);
    break;
  default:
    break;
  }
}

static void churn_tick(ptv_world *w, const ptv_scn_event *e, uint32_t ei) {
  ptv_tstamp stop = (ptv_tstamp)((e->at_s + e->dur_s) * 1e6);
  if (w->now >= stop) return;
  w->churn_acc += e->frac / 60.0 * w->nonline;
  uint32_t k = (uint32_t)w->churn_acc;
  w->churn_acc -= k;
  depart_random(w, k, 0);
  /* As many newcomers, spread over the coming second. */
  for (uint32_t i = 0; i < k; i++)
    push(w, w->now + (ptv_tstamp)(unif(&w->rng) * 1e6), EV_JOIN, 0, 0, NULL);
  push(w, w->now + PTV_S, EV_CHURN, ei, 0, NULL);
}

static void dispatch(ptv_world *w, const ptv_event *e) {
  switch (e->kind) {
  case EV_DELIVER: {
    sim_msg *m = e->ptr;
    sim_node *dst = &w->n[m->to];
    if (dst->online) {
      if (m->bulk && m->to >= 2) {
        w->cur.peer_down_bytes += m->virt;
        w->total_peer_down += m->virt;
      }
      if (m->to == TRACKER) ptv_tracker_recv(w->tracker, m->from, m->data, m->len, w->now);
      else if (dst->node) ptv_node_recv(dst->node, m->from, m->data, m->len, w->now);
      resched(w, dst);
    }
    free(m);
    break;
  }
  case EV_TIMER: {
    sim_node *sn = &w->n[e->a];
    if (e->b != sn->timer_ver || !sn->online) break;
    sn->timer_at = PTV_TSTAMP_MAX;
    if (sn->idx == TRACKER) ptv_tracker_handle_expiry(w->tracker, w->now);
    else ptv_node_handle_expiry(sn->node, w->now);
    resched(w, sn);
    break;
  }
  case EV_JOIN:
    join_peer(w);
    break;
  case EV_SCN:
    scenario_event(w, &w->s->events[e->a], e->a);
    break;
  case EV_PART_END:
    w->partitioned = 0;
    recovery_begin(w, e->a);
    break;
  case EV_TRACKER_UP:
    w->tracker_down = 0;
    break;
  case EV_CHURN:
    churn_tick(w, &w->s->events[e->a], e->a);
    break;
  case EV_SAMPLE:
    sample(w);
    break;
  }
}

/* With 10,000 peers most of an event's time went in cache misses on the
 * message, the receiving sim_node and its engine state. The next events are
 * known, so their memory is fetched in a pipeline, each stage reading only
 * what the one before fetched an event earlier: three events ahead the
 * message and sim_node, two ahead the engine state (whose address the
 * sim_node holds), one ahead the partners (found from the engine state). */
static int wakes_node(const ptv_event *e) {
  return e && (e->kind == EV_DELIVER || e->kind == EV_TIMER);
}

static void prefetch_ahead(const ptv_world *w) {
  const ptv_event *e = ptv_evq_ahead(&w->q, 2);
  if (wakes_node(e)) {
    if (e->ptr) __builtin_prefetch(e->ptr);
    __builtin_prefetch(&w->n[e->a]);
  }
  e = ptv_evq_ahead(&w->q, 1);
  if (wakes_node(e) && w->n[e->a].node) ptv_node_prefetch(w->n[e->a].node, 0);
  e = ptv_evq_ahead(&w->q, 0);
  if (wakes_node(e) && w->n[e->a].node) ptv_node_prefetch(w->n[e->a].node, 1);
}

/* ---- set-up and run ------------------------------------------------------ */

static uint32_t node_bound(const ptv_scenario *s) {
  double joins = 0, churn = 0;
  for (size_t i = 0; i < s->nevents; i++) {
    if (s->events[i].kind == PTV_SCN_JOIN) joins += s->events[i].count;
    if (s->events[i].kind == PTV_SCN_CHURN) churn += s->events[i].frac * s->events[i].dur_s / 60.0;
  }
  return (uint32_t)(joins * (1.0 + churn * 1.2) + 64 + joins * 0.05);
}

ptv_world *ptv_world_new(const ptv_scenario *s, char *err, size_t errlen) {
  ptv_world *w = calloc(1, sizeof(*w));
  if (!w) goto nomem;
  w->s = s;
  w->strat = s->strategy == PTV_STRATEGY_CHANDELIER ? &ptv_strategy_chandelier : &ptv_strategy_mesh;
  w->debug = getenv("PTV_SIM_DEBUG") != NULL;
  w->trace = !getenv("PTV_SIM_TRACE") ? -1 : strcmp(getenv("PTV_SIM_TRACE"), "all") == 0 ? -2
                                           : atol(getenv("PTV_SIM_TRACE"));
  w->rng = s->seed ^ 0x5eed5eed5eedULL;
  w->loss_rng = s->seed ^ 0x1055105510551055ULL;
  w->cap = node_bound(s);
  w->rec_ev = -1;
  w->rec_peer = malloc((s->nevents + 1) * sizeof(double));
  w->rec_p99 = malloc((s->nevents + 1) * sizeof(double));
  if (!w->rec_peer || !w->rec_p99) goto nomem;
  for (size_t i = 0; i < s->nevents; i++) w->rec_peer[i] = w->rec_p99[i] = -1;
  w->n = calloc(w->cap, sizeof(sim_node));
  w->online = calloc(w->cap, sizeof(uint32_t));
  w->net = ptv_net_new(w->cap);
  if (!w->n || !w->online || !w->net) goto nomem;
  if (ptv_evq_init(&w->q) != 0) goto nomem;
  w->end = (ptv_tstamp)(s->run_s * 1e6);

  sim_node *t = new_node(w); /* tracker: open, unlimited */
  t->nat = PTV_NAT_OPEN;
  ptv_tracker_config tc = {.self = TRACKER, .chunk_us = (uint32_t)(s->chunk_s * 1e6)};
  ptv_tracker_callbacks tcb = {.send = tracker_send_cb, .rand = rand_cb};
  w->tracker = ptv_tracker_new(&tc, &tcb, t);
  if (!w->tracker) goto nomem;

  sim_node *src = new_node(w);
  src->nat = PTV_NAT_OPEN;
  src->up_kbps = (uint32_t)s->source_kbps;
  ptv_net_set_caps(w->net, SOURCE, s->source_kbps * 1000.0, PTV_NET_UNLIMITED);
  ptv_node_config c;
  ptv_node_config_default(&c);
  c.self = SOURCE;
  c.tracker = TRACKER;
  c.role = PTV_ROLE_SOURCE;
  c.upload_kbps = src->up_kbps;
  c.stream_kbps = (uint32_t)s->stream_kbps;
  c.chunk_us = (uint32_t)(s->chunk_s * 1e6);
  c.max_partners = 0; /* sized from its upload */
  c.strategy = w->strat;
  src->node = ptv_node_new(&c, &node_cbs, src);
  if (!src->node) goto nomem;
  return w;
nomem:
  snprintf(err, errlen, "out of memory setting up the world");
  ptv_world_free(w);
  return NULL;
}

void ptv_world_free(ptv_world *w) {
  if (!w) return;
  ptv_event e;
  while (ptv_evq_pop(&w->q, &e))
    if (e.kind == EV_DELIVER) free(e.ptr);
  ptv_evq_free(&w->q);
  if (w->net) {
    for (uint32_t i = 0; i < w->nn; i++) ptv_net_node_reset(w->net, i, w->now, free_msg_cb, NULL);
    ptv_net_free(w->net);
  }
  for (uint32_t i = 0; i < w->nn; i++) ptv_node_free(w->n[i].node);
  free(w->rec_peer);
  free(w->rec_p99);
  ptv_tracker_free(w->tracker);
  free(w->n);
  free(w->online);
  free(w->rows);
  free(w);
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int ptv_world_run(ptv_world *w, ptv_world_progress_cb cb, void *arg) {
  double t0 = wall_now();
  const ptv_scenario *s = w->s;
  w->n[SOURCE].join_t = 0;
  ptv_node_start(w->n[SOURCE].node, 0);
  /* Samples are queued first, so a sample at second T sees the state before
   * any other event at T (same-time events run in scheduling order). */
  for (ptv_tstamp t = PTV_S; t <= w->end; t += PTV_S) push(w, t, EV_SAMPLE, 0, 0, NULL);
  resched(w, &w->n[SOURCE]);
  resched(w, &w->n[TRACKER]);
  for (size_t i = 0; i < s->nevents; i++) {
    const ptv_scn_event *e = &s->events[i];
    if (e->kind == PTV_SCN_JOIN) {
      /* Arrivals spread evenly over the window, in a seeded order. */
      for (uint32_t k = 0; k < e->count; k++) {
        double off = e->count > 1 ? e->dur_s * (k + unif(&w->rng)) / e->count : 0;
        push(w, (ptv_tstamp)((e->at_s + off) * 1e6), EV_JOIN, 0, 0, NULL);
      }
    } else {
      push(w, (ptv_tstamp)(e->at_s * 1e6), EV_SCN, (uint32_t)i, 0, NULL);
    }
  }
  size_t last_rows = 0;
  for (;;) {
    ptv_tstamp th = ptv_evq_peek_time(&w->q);
    ptv_tstamp tn = ptv_net_next_completion(w->net);
    ptv_tstamp t = th < tn ? th : tn;
    if (t > w->end) break;
    w->now = t;
    w->events++;
    if (tn <= th) {
      void *user;
      if (ptv_net_pop_completed(w->net, t, &user)) {
        sim_msg *m = user;
        ptv_tstamp extra = 0;
        if (!ptv_nat_can_connect(w->n[m->from].nat, w->n[m->to].nat)) extra = RELAY_EXTRA_US;
        push(w, t + latency(w, m->from, m->to) + extra, EV_DELIVER, m->to, 0, m);
      }
      continue;
    }
    ptv_event e;
    ptv_evq_pop(&w->q, &e);
    prefetch_ahead(w);
    dispatch(w, &e);
    if (cb && w->nrows != last_rows) {
      last_rows = w->nrows;
      cb(arg, &w->rows[w->nrows - 1], s->run_s, w->events);
    }
  }
  w->now = w->end;
  recovery_end(w, (int32_t)(w->end / PTV_S));
  w->wall_s = wall_now() - t0;
  return 0;
}

/* ---- results ------------------------------------------------------------- */

/* A peer's playout figures: live from its engine while online, else the
 * snapshot taken when it left. */
typedef struct {
  uint64_t due, missed;
  double lag_s, online_s, stall_s;
  uint32_t stalls, catchups;
} peer_figures;

static peer_figures peer_figures_of(const ptv_world *w, const sim_node *sn) {
  peer_figures f = {sn->due,     sn->missed, sn->lag_s,   sn->online_s,
                    sn->stall_s, sn->stalls, sn->catchups};
  if (sn->node) {
    ptv_node_stats st;
    ptv_node_get_stats(sn->node, &st);
    f.due = st.chunks_due;
    f.missed = st.chunks_missed;
    f.lag_s = (double)st.lag_us / 1e6;
    f.stalls = st.stalls;
    f.catchups = st.catchups;
    f.stall_s = (double)st.stall_us / 1e6;
    f.online_s = (double)(w->end - sn->join_t) / 1e6;
  }
  return f;
}

int ptv_world_write_peers(const ptv_world *w, FILE *f) {
  fprintf(f, "%s\n", PTV_PEERS_HEADER);
  for (uint32_t i = 2; i < w->nn; i++) {
    const sim_node *sn = &w->n[i];
    peer_figures pf = peer_figures_of(w, sn);
    uint64_t due = pf.due, missed = pf.missed;
    double lag = pf.lag_s;
    /* the last third: peers online at the end */
    uint64_t tdue = sn->node ? due - sn->tail_due0 : 0, tmiss = sn->node ? missed - sn->tail_missed0 : 0;
    fprintf(f, "%u,%.3f,%u,%s,%d,%d,%.3f,%llu,%llu,%.4f,%.3f,%u,%.3f,%u,%u,", i - 2,
            (double)sn->join_t / 1e6,
            sn->up_kbps, ptv_nat_name((ptv_nat_type)sn->nat), sn->node != NULL, sn->played,
            sn->played ? (double)(sn->play_t - sn->join_t) / 1e6 : -1.0,
            (unsigned long long)due, (unsigned long long)missed,
            due ? 1.0 - (double)missed / (double)due : 0.0, lag, pf.stalls, pf.stall_s,
            pf.catchups, sn->claim_kbps);
    if (tdue) fprintf(f, "%.4f\n", 1.0 - (double)tmiss / (double)tdue);
    else fprintf(f, "\n");
  }
  return ferror(f) ? PTV_ERR_IO : 0;
}

size_t ptv_world_series(const ptv_world *w, const ptv_series_row **rows) {
  *rows = w->rows;
  return w->nrows;
}

/* First second >= from from which no peer missed anything for 5 seconds
 * running; returns the delay from `from`, or -1. */
static double all_clean(const ptv_world *w, double from) {
  size_t start = (size_t)ceil(from);
  for (size_t i = start; i + RECOVER_CLEAN_S <= w->nrows; i++) {
    int ok = 1;
    for (size_t j = i; j < i + RECOVER_CLEAN_S && ok; j++) ok = w->rows[j].peers_missing == 0;
    if (ok) return (double)i - from > 0 ? (double)i - from : 0;
  }
  return -1;
}

void ptv_world_summarize(ptv_world *w, ptv_world_summary *o) {
  const ptv_scenario *s = w->s;
  memset(o, 0, sizeof(*o));
  uint32_t npeers = w->nn > 2 ? w->nn - 2 : 0;
  double *cont = calloc(npeers + 1, sizeof(double));
  double *start = calloc(npeers + 1, sizeof(double));
  double *lag = calloc(npeers + 1, sizeof(double));
  double *stall = calloc(npeers + 1, sizeof(double));
  double stalls_sum = 0, stall_sum = 0;
  uint32_t nstall = 0;
  double *tail = calloc(npeers + 1, sizeof(double)), tail_sum = 0;
  uint32_t ntail = 0, tail_ok = 0;
  uint32_t nc = 0, nstart = 0, nlag = 0, nstay = 0, stay_ok = 0, ok = 0, nhonest = 0, honest_ok = 0;
  double sum = 0, sum_stay = 0, sum_up = 0, peer_min = 0;
  for (uint32_t i = 2; i < w->nn && cont && start && lag && stall && tail; i++) {
    sim_node *sn = &w->n[i];
    sum_up += sn->up_kbps;
    peer_figures pf = peer_figures_of(w, sn);
    uint64_t due = pf.due, missed = pf.missed;
    double lg = pf.lag_s, online_s = pf.online_s;
    peer_min += online_s / 60.0;
    if (sn->played) {
      start[nstart++] = (double)(sn->play_t - sn->join_t) / 1e6;
      lag[nlag++] = lg;
      stall[nstall] = pf.stall_s;
      stalls_sum += pf.stalls;
      stall_sum += pf.stall_s;
      nstall++;
    } else if (online_s > 10) {
      o->never_started++;
    }
    if (due == 0) continue;
    double c = 1.0 - (double)missed / (double)due;
    cont[nc++] = c;
    sum += c;
    ok += c >= 0.99;
    if (sn->node) {
      nstay++;
      sum_stay += c;
      stay_ok += c >= 0.99;
      if (due > sn->tail_due0) {
        double tc = 1.0 - (double)(missed - sn->tail_missed0) / (double)(due - sn->tail_due0);
        tail[ntail++] = tc;
        tail_sum += tc;
        tail_ok += tc >= 0.99;
      }
    }
    if (!sn->claim_kbps) {
      nhonest++;
      honest_ok += c >= 0.99;
    }
  }
  o->peers_joined = npeers;
  o->peers_played = nc;
  o->duration_s = s->run_s;
  o->stream_kbps = s->stream_kbps;
  double n = npeers ? npeers : 1;
  o->resource_index = (s->source_kbps + sum_up) / (n * s->stream_kbps);
  o->r_max_kbps = ptv_r_max(s->source_kbps, sum_up, n);
  o->lag_bound_s = ptv_lag_bound(n, sum_up / n / s->stream_kbps, s->chunk_s);
  o->cont_mean = nc ? sum / nc : 0;
  o->cont_share_ge_099 = nc ? (double)ok / nc : 0;
  o->cont_stayed_mean = nstay ? sum_stay / nstay : 0;
  o->cont_stayed_share_ge_099 = nstay ? (double)stay_ok / nstay : 0;
  o->cont_honest_share_ge_099 = nhonest ? (double)honest_ok / nhonest : 0;
  o->cont_jain = ptv_jain(cont, nc);
  o->cont_p10 = ptv_percentile(cont, nc, 0.10); /* sorts cont */
  o->cont_p50 = ptv_percentile(cont, nc, 0.50);
  o->tail_from_s = tail_from_s(w);
  o->tail_mean = ntail ? tail_sum / ntail : 0;
  o->tail_share_ge_099 = ntail ? (double)tail_ok / ntail : 0;
  o->tail_jain = ptv_jain(tail, ntail);
  o->tail_p10 = ptv_percentile(tail, ntail, 0.10); /* sorts tail */
  o->tail_p50 = ptv_percentile(tail, ntail, 0.50);
  o->startup_p50 = ptv_percentile(start, nstart, 0.5);
  o->startup_p95 = ptv_percentile(start, nstart, 0.95);
  o->lag_p50 = ptv_percentile(lag, nlag, 0.5);
  o->lag_p95 = ptv_percentile(lag, nlag, 0.95);
  o->stalls_mean = nstall ? stalls_sum / nstall : 0;
  o->stall_s_mean = nstall ? stall_sum / nstall : 0;
  o->stall_s_p95 = ptv_percentile(stall, nstall, 0.95);
  o->savings = w->total_peer_down > 0 ? 1.0 - w->total_source_bytes / w->total_peer_down : 0;
  o->overhead = w->total_payload > 0 ? w->total_ctrl / w->total_payload : 0;
  o->partner_changes_per_peer_min = peer_min > 0 ? (double)w->total_changes / peer_min : 0;
  o->events = w->events;
  o->messages = w->messages;
  o->dropped_nat = w->drop_nat;
  o->dropped_loss = w->drop_loss;
  o->dropped_partition = w->drop_part;
  o->dropped_tracker = w->drop_tracker;
  o->wall_s = w->wall_s;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  o->peak_rss_mb = (double)ru.ru_maxrss / 1024.0;
  for (size_t i = 0; i < s->nevents && o->nrec < 16; i++) {
    const ptv_scn_event *e = &s->events[i];
    if (e->kind != PTV_SCN_FAIL && e->kind != PTV_SCN_PARTITION) continue;
    double from = e->kind == PTV_SCN_PARTITION ? e->at_s + e->dur_s : e->at_s;
    ptv_world_recovery *r = &o->rec[o->nrec++];
    r->kind = e->kind;
    r->at_s = from;
    r->recovery_s = w->rec_p99[i];
    r->recovery_all_s = w->rec_peer[i];
    r->all_clean_s = all_clean(w, from);
  }
  if (w->debug) {
    uint64_t a[12] = {0};
    for (uint32_t i = 2; i < w->nn; i++) {
      if (!w->n[i].node) continue;
      ptv_node_stats st;
      ptv_node_get_stats(w->n[i].node, &st);
      a[0] += st.req_sent; a[1] += st.req_timeouts; a[2] += st.busy_recv;
      a[3] += st.dup_chunks; a[4] += st.late_chunks;
      a[5] += st.offers_sent; a[6] += st.offers_declined; a[7] += st.offer_idle;
      a[8] += st.miss_on_way; a[9] += st.miss_held; a[10] += st.miss_nowhere;
      a[11] += st.catchups;
    }
    fprintf(stderr, "debug: offers %llu declined %llu idle-no-useful %llu\n",
            (unsigned long long)a[5], (unsigned long long)a[6], (unsigned long long)a[7]);
    fprintf(stderr, "debug: req_sent %llu timeouts %llu busy %llu dup %llu late %llu\n",
            (unsigned long long)a[0], (unsigned long long)a[1], (unsigned long long)a[2],
            (unsigned long long)a[3], (unsigned long long)a[4]);
    fprintf(stderr, "debug: missed on-its-way %llu held-by-a-partner %llu nowhere %llu; "
            "catch-ups %llu\n",
            (unsigned long long)a[8], (unsigned long long)a[9], (unsigned long long)a[10],
            (unsigned long long)a[11]);
  }
  free(cont);
  free(start);
  free(lag);
  free(stall);
  free(tail);
}
