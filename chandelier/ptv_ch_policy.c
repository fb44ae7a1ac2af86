/* ptv_ch_policy.c -- Chandelier's decisions as pure functions. See ptv_ch_policy.h. */
#include "ptv_ch_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ptv_ch_params_default(ptv_ch_params *p) {
  memset(p, 0, sizeof(*p));
  p->stripes = 8;
  p->max_tier = 12;
  p->max_per_parent = 4;
  p->improve_gap = 2;
  p->per_stripe_chunks = 2;
  p->slot_pct = 90;
  p->outbid_pct = 20;
  p->deliv_bad = 65535 / 2;
  p->deliv_bad_held = 22937; /* 0.35 */
  p->suspect_deliv = 22937; /* 0.35 */
  p->grace_us = 3 * PTV_S;
  p->hold_us = 20 * PTV_S;
  p->improve_us = 5 * PTV_S;
  p->refuse_us = 5 * PTV_S;
  p->ask_us = 1500 * PTV_MS;
  p->lag_margin_us = 250 * PTV_MS;
  p->settle_us = 20 * PTV_S;
  p->silent_us = 1 * PTV_S;
  p->suspect_block_us = 60 * PTV_S;
  p->fail_block_us = 60 * PTV_S;
  p->backlog_max_us = 1 * PTV_S;
  p->source_busy_us = 300 * PTV_MS;
  p->nonup_defer_us = 1 * PTV_S;
  p->source_swap = 1;
  p->keep_fed = 5;
  p->nonup_stripes = 0;
  p->nonup_poor_us = 8 * PTV_S;
  p->nonup_partners = 8;
  p->nonup_turn_us = 10 * PTV_S;
  p->loop_guard_us = 250 * PTV_MS;
  p->unfed_max_us = 3 * PTV_S;
  p->loop_depth = 24;
  p->source_roots = 2;
  p->push_kids = 1;
}

/* name, kind (i: integer, t: seconds), offset, max */
static const struct {
  const char *name;
  char kind;
  size_t off, size;
  double max;
} k_params[] = {
#define PI(f, m) {#f, 'i', offsetof(ptv_ch_params, f), sizeof(((ptv_ch_params *)0)->f), m}
#define PT(f) {#f "_s", 't', offsetof(ptv_ch_params, f##_us), sizeof(ptv_tstamp), 3600}
    PI(max_tier, 254),    PI(max_per_parent, 16), PI(improve_gap, 254), PI(per_stripe_chunks, 64), PI(slot_pct, 100), PI(outbid_pct, 60000),
    PI(deliv_bad, 65535), PI(deliv_bad_held, 65535), PI(suspect_deliv, 65535), PT(grace),              PT(hold),             PT(improve),
    PT(refuse),           PT(ask),                PT(lag_margin),       PT(settle), PT(settle_fed),    PT(silent),    PT(suspect_block), PT(fail_block), PT(backlog_max), PT(source_busy),
    PT(nonup_defer),      PI(source_swap, 1),     PI(keep_fed, 16), PI(nonup_stripes, 16), PT(nonup_poor),
    PI(nonup_partners, 64), PT(nonup_turn),  PT(loop_guard), PT(unfed_max),     PI(loop_depth, 254), PI(source_roots, 16), PI(push_kids, 1),
#undef PI
#undef PT
};

int ptv_ch_params_set(ptv_ch_params *p, const char *a, char *err, size_t errlen) {
  const char *eq = strchr(a, '=');
  size_t nl = eq ? (size_t)(eq - a) : strlen(a);
  for (size_t i = 0; i < sizeof(k_params) / sizeof(k_params[0]); i++) {
    if (strlen(k_params[i].name) != nl || strncmp(a, k_params[i].name, nl) != 0) continue;
    char *end;
    double v = eq ? strtod(eq + 1, &end) : -1;
    if (!eq || end == eq + 1 || *end || !(v >= 0 && v <= k_params[i].max)) { /* NaN too */
      snprintf(err, errlen, "parameter %s needs a number from 0 to %g", k_params[i].name,
               k_params[i].max);
      return -1;
    }
    if (k_params[i].kind == 'i' && v != (double)(uint32_t)v) {
      snprintf(err, errlen, "parameter %s needs a whole number", k_params[i].name);
      return -1;
    }
    char *f = (char *)p + k_params[i].off;
    if (k_params[i].kind == 't') {
      ptv_tstamp t = (ptv_tstamp)(v * 1e6 + 0.5);
      memcpy(f, &t, sizeof t);
    } else if (k_params[i].size == 1) {
      uint8_t x = (uint8_t)v;
      memcpy(f, &x, 1);
    } else {
      uint16_t x = (uint16_t)v;
      memcpy(f, &x, 2);
    }
    return 0;
  }
  snprintf(err, errlen, "unknown Chandelier parameter '%.*s'", (int)nl, a);
  return -1;
}

void ptv_ch_params_list(char *buf, size_t len) {
  ptv_ch_params d;
  ptv_ch_params_default(&d);
  size_t o = 0;
  if (len == 0) return;
  buf[0] = 0;
  for (size_t i = 0; i < sizeof(k_params) / sizeof(k_params[0]) && o < len; i++) {
    const char *f = (const char *)&d + k_params[i].off;
    double v;
    if (k_params[i].kind == 't') {
      ptv_tstamp t;
      memcpy(&t, f, sizeof t);
      v = (double)t / 1e6;
    } else if (k_params[i].size == 1) {
      v = *(const uint8_t *)f;
    } else {
      uint16_t x;
      memcpy(&x, f, 2);
      v = x;
    }
    int w = snprintf(buf + o, len - o, "    %s (default %g)\n", k_params[i].name, v);
    if (w < 0) break;
    o += (size_t)w;
  }
}

uint32_t ptv_ch_estimate(uint32_t claim_kbps, uint16_t deliv, uint32_t samples) {
  /* claim x (8 + samples x deliv) / (8 + samples), in doubles: the
   * integer products overflow 64 bits for large claims and sample counts */
  double w = (double)samples;
  double est = (double)claim_kbps * (8.0 + w * (deliv / 65535.0)) / (8.0 + w);
  return est >= (double)claim_kbps ? claim_kbps : (uint32_t)est;
}

static int affordable(const ptv_ch_cand *c, uint32_t bid, const ptv_ch_params *pp) {
  if (c->free_slots > 0) return 1;
  /* bid > price x (1 + outbid) */
  return (uint64_t)bid * 100 > (uint64_t)c->price_kbps * (100u + pp->outbid_pct);
}

int ptv_ch_pick_parent(const ptv_ch_cand *c, size_t nc, uint32_t my_bid_kbps, uint8_t below,
                       const ptv_ch_params *pp) {
  int best = -1;
  for (size_t i = 0; i < nc; i++) {
    const ptv_ch_cand *x = &c[i];
    if (x->tier == 255 || x->tier >= pp->max_tier || x->is_child || x->blocked ||
        !x->can_connect)
      continue;
    if (!x->is_source && x->from_it >= pp->max_per_parent) continue;
    /* An uplink this far behind delivers pushes late to every child it has:
     * a free-rider, which took on children for the upload it claimed. */
    if (pp->backlog_max_us && (ptv_tstamp)x->backlog_ms * PTV_MS > pp->backlog_max_us) continue;
    if (below != 255 && x->tier >= below) continue;
    if (!affordable(x, my_bid_kbps, pp)) continue;
    if (best < 0) {
      best = (int)i;
      continue;
    }
    const ptv_ch_cand *b = &c[best];
    if (x->tier != b->tier) {
      if (x->tier < b->tier) best = (int)i;
    } else if ((x->free_slots > 0) != (b->free_slots > 0)) {
      if (x->free_slots > 0) best = (int)i;
    } else if (x->est_kbps > b->est_kbps) {
      best = (int)i;
    }
  }
  return best;
}

uint8_t ptv_ch_orphan_below(uint8_t depth_was, int passes_on, ptv_tstamp unfed_us,
                            const ptv_ch_params *pp) {
  if (!passes_on || depth_was >= 254 || !pp->loop_guard_us) return 255;
  uint64_t below = (uint64_t)depth_was + 1 + unfed_us / pp->loop_guard_us;
  return below > pp->max_tier ? 255 : (uint8_t)below;
}

uint8_t ptv_ch_move_below(int improving, uint8_t parent_depth, uint8_t depth_was, int passes_on,
                          ptv_tstamp unfed_us, const ptv_ch_params *pp) {
  if (improving && parent_depth < 254) return parent_depth;
  return ptv_ch_orphan_below(depth_was, passes_on, unfed_us, pp);
}

int ptv_ch_parent_unfed_long(uint8_t depth, ptv_tstamp unfed_us, ptv_tstamp held_us,
                             const ptv_ch_params *pp) {
  return pp->unfed_max_us && depth >= 254 && unfed_us >= pp->unfed_max_us &&
         held_us >= pp->unfed_max_us;
}

int ptv_ch_leave_unreplaced(int improving, uint8_t below, int parent_heard) {
  return !improving && below != 255 && parent_heard;
}

int ptv_ch_parent_looping(uint8_t depth, const ptv_ch_params *pp) {
  return pp->loop_depth && depth != 255 && depth >= pp->loop_depth;
}

int ptv_ch_worth_switch(uint8_t cur_tier, uint8_t cand_tier, ptv_tstamp held_us,
                        const ptv_ch_params *pp) {
  if (held_us < pp->hold_us || cand_tier == 255) return 0;
  if (cur_tier == 255) return 1;
  return (int)cand_tier + pp->improve_gap <= (int)cur_tier;
}

int ptv_ch_parent_failing(uint16_t deliv, ptv_tstamp held_us, ptv_tstamp queue_us,
                          const ptv_ch_params *pp) {
  int proven = held_us >= pp->hold_us && (!pp->backlog_max_us || queue_us < pp->backlog_max_us);
  uint16_t bad = proven && pp->deliv_bad_held < pp->deliv_bad ? pp->deliv_bad_held : pp->deliv_bad;
  return held_us >= pp->grace_us && deliv < bad;
}

int ptv_ch_report_worthy(uint16_t deliv, const ptv_ch_params *pp) {
  return deliv < pp->suspect_deliv;
}

int ptv_ch_share_counts(uint8_t tier, uint16_t queue_ms, const ptv_ch_params *pp) {
  return tier != 0 || (ptv_tstamp)queue_ms * PTV_MS >= pp->source_busy_us;
}

int ptv_ch_source_keeps(int is_child, int established, ptv_tstamp age_us, const ptv_ch_params *pp) {
  return is_child || !established || age_us < pp->hold_us;
}

int ptv_ch_source_room(const uint32_t *up_kbps, const uint8_t *child, size_t n,
                       uint32_t newcomer_kbps, uint32_t stream_kbps, uint32_t free_slots,
                       uint32_t price_kbps, const ptv_ch_params *pp) {
  if (!pp->source_swap) return -1;
  /* only for a newcomer that could win one of our stripe slots */
  if (free_slots == 0 && (uint64_t)newcomer_kbps * 100 <= (uint64_t)price_kbps * (100u + pp->outbid_pct))
    return -1;
  int weakest = -1;
  for (size_t i = 0; i < n; i++)
    if (!child[i] && (weakest < 0 || up_kbps[i] < up_kbps[weakest])) weakest = (int)i;
  return weakest >= 0 && up_kbps[weakest] < newcomer_kbps && up_kbps[weakest] < stream_kbps
             ? weakest
             : -1;
}

uint16_t ptv_ch_limit_need(uint16_t need, unsigned held, unsigned S, unsigned start,
                           int contributes, const ptv_ch_params *pp) {
  if (S > 16) S = 16;
  if (contributes || pp->nonup_stripes >= S) return need;
  uint16_t out = 0;
  for (unsigned i = 0; i < S && held < pp->nonup_stripes; i++) {
    unsigned b = (start + i) % S;
    if (need >> b & 1) {
      out |= (uint16_t)(1u << b);
      held++;
    }
  }
  return out;
}

int ptv_ch_accept(uint32_t my_kbps, uint32_t from_kbps, uint32_t stripe_kbps,
                  const uint32_t *up_kbps, const ptv_tstamp *age_us, const uint8_t *child,
                  size_t n, const ptv_ch_params *pp, int *drop) {
  *drop = -1;
  if (!pp->nonup_partners || from_kbps >= stripe_kbps) return 1;
  if (my_kbps < stripe_kbps) return 0;
  size_t kind = 0;
  int old = -1;
  for (size_t i = 0; i < n; i++) {
    if (up_kbps[i] >= stripe_kbps) continue;
    kind++;
    if (!child[i] && (old < 0 || age_us[i] > age_us[old])) old = (int)i;
  }
  if (kind < pp->nonup_partners) return 1;
  if (old < 0 || age_us[old] < pp->nonup_turn_us) return 0;
  *drop = old;
  return 1;
}

int ptv_ch_pick_candidate(const uint8_t *reach, const uint32_t *up_kbps, size_t n,
                          uint32_t my_kbps, uint32_t stripe_kbps, const ptv_ch_params *pp,
                          uint64_t rnd) {
  if (n == 0) return -1;
  int only_up = 0;
  if (pp->nonup_partners && my_kbps < stripe_kbps)
    for (size_t i = 0; i < n && !only_up; i++) only_up = reach[i] && up_kbps[i] >= stripe_kbps;
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) ok += reach[i] && (!only_up || up_kbps[i] >= stripe_kbps);
  if (ok == 0) return (int)(rnd % n);
  size_t k = (size_t)(rnd % ok);
  for (size_t i = 0; i < n; i++)
    if (reach[i] && (!only_up || up_kbps[i] >= stripe_kbps) && k-- == 0) return (int)i;
  return -1;
}

unsigned ptv_ch_grant(const ptv_ch_child *kids, size_t nk, uint32_t slots, unsigned want,
                      uint32_t bid_kbps, const ptv_ch_params *pp, unsigned max_evict,
                      size_t *ev_child, uint16_t *ev_bit, size_t *nev) {
  uint32_t used = 0;
  for (size_t i = 0; i < nk; i++) used += (uint32_t)__builtin_popcount(kids[i].mask);
  unsigned g = 0;
  *nev = 0;
  while (g < want && used + g < slots) g++;
  if (g == want || max_evict == 0) return g;
  /* Full: take slots from the poorest children the bid beats, one stripe
   * each (a child keeps its other stripes), poorest first. */
  uint16_t left[64];
  size_t m = nk < 64 ? nk : 64;
  for (size_t i = 0; i < m; i++) left[i] = kids[i].mask;
  while (g < want && *nev < max_evict) {
    int poor = -1;
    for (size_t i = 0; i < m; i++)
      if (left[i] && !(kids[i].fed && kids[i].fed <= pp->keep_fed) &&
          (poor < 0 || kids[i].bid_kbps < kids[poor].bid_kbps))
        poor = (int)i;
    if (poor < 0) break;
    if ((uint64_t)bid_kbps * 100 <= (uint64_t)kids[poor].bid_kbps * (100u + pp->outbid_pct)) break;
    uint16_t bit = (uint16_t)(left[poor] & -left[poor]); /* its lowest stripe */
    left[poor] = 0; /* one stripe per child: it keeps its others */
    ev_child[*nev] = (size_t)poor;
    ev_bit[*nev] = bit;
    (*nev)++;
    g++;
  }
  return g;
}

size_t ptv_ch_source_spread(const ptv_ch_child *kids, size_t nk, unsigned nstripes,
                            uint32_t slots, uint16_t want, uint32_t bid_kbps,
                            const ptv_ch_params *pp, uint32_t *cnt, size_t *ev_child,
                            uint16_t *ev_bit) {
  uint32_t used = 0;
  size_t nev = 0;
  if (nstripes > 16) nstripes = 16;
  for (unsigned b = 0; b < nstripes; b++) cnt[b] = 0;
  for (size_t i = 0; i < nk; i++)
    for (unsigned b = 0; b < nstripes; b++)
      if (kids[i].mask >> b & 1) {
        cnt[b]++;
        used++;
      }
  if (!pp->source_roots) return 0;
  uint16_t gone[64] = {0}; /* bits already taken from each child here */
  for (unsigned b = 0; b < nstripes && used >= slots; b++) {
    if (!(want >> b & 1) || cnt[b] >= pp->source_roots) continue;
    unsigned m = 0;
    for (unsigned c = 1; c < nstripes; c++)
      if (cnt[c] > cnt[m]) m = c;
    if (cnt[m] < (uint32_t)pp->source_roots + 2) break; /* nothing to spare */
    int poor = -1;
    for (size_t i = 0; i < nk && i < 64; i++)
      if ((kids[i].mask & ~gone[i]) >> m & 1 && (poor < 0 || kids[i].bid_kbps < kids[poor].bid_kbps))
        poor = (int)i;
    if (poor < 0 || kids[poor].bid_kbps > bid_kbps) continue;
    gone[poor] |= (uint16_t)(1u << m);
    ev_child[nev] = (size_t)poor;
    ev_bit[nev] = (uint16_t)(1u << m);
    nev++;
    cnt[m]--;
    used--;
  }
  return nev;
}

uint16_t ptv_ch_fewest_first(const uint32_t *cnt, unsigned nstripes, uint16_t want, unsigned g) {
  uint16_t out = 0;
  if (nstripes > 16) nstripes = 16;
  while (g > 0) {
    int best = -1;
    for (unsigned b = 0; b < nstripes; b++)
      if ((want >> b & 1) && !(out >> b & 1) && (best < 0 || cnt[b] < cnt[best])) best = (int)b;
    if (best < 0) break;
    out |= (uint16_t)(1u << best);
    g--;
  }
  return out;
}

static int cmp_desc(const void *a, const void *b) {
  uint32_t x = **(const uint32_t *const *)a, y = **(const uint32_t *const *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

int ptv_ch_place(const uint32_t *cap, size_t n, uint32_t source_kbps, uint32_t stream_kbps,
                 unsigned max_depth, uint8_t *tier_out) {
  if (n == 0) return 0;
  if (stream_kbps == 0 || max_depth == 0) return -1;
  const uint32_t **ord = malloc(n * sizeof(*ord));
  if (!ord) return -1;
  for (size_t i = 0; i < n; i++) ord[i] = &cap[i];
  qsort(ord, n, sizeof(*ord), cmp_desc); /* strongest first */
  uint64_t carry = source_kbps; /* upload of the tier above */
  size_t i = 0;
  unsigned t = 0;
  int fits = 1;
  while (i < n) {
    t++;
    size_t room = (size_t)(carry / stream_kbps);
    if (t == max_depth) {
      if (room < n - i) fits = 0;
      room = n - i;
    }
    if (room == 0) { /* nothing above can carry anyone: put the rest last */
      fits = 0;
      room = n - i;
    }
    uint64_t next = 0;
    for (size_t k = 0; k < room && i < n; k++, i++) {
      tier_out[ord[i] - cap] = (uint8_t)(t > 254 ? 254 : t);
      next += *ord[i];
    }
    carry = next;
  }
  free(ord);
  return fits ? (int)t : -1;
}

int ptv_ch_check_carrying(const uint32_t *cap, const uint8_t *tier, size_t n,
                          uint32_t source_kbps, uint32_t stream_kbps) {
  uint64_t up[256] = {0}, cnt[256] = {0};
  unsigned maxt = 0;
  for (size_t i = 0; i < n; i++) {
    up[tier[i]] += cap[i];
    cnt[tier[i]]++;
    if (tier[i] > maxt) maxt = tier[i];
  }
  up[0] = source_kbps;
  for (unsigned t = 1; t <= maxt; t++)
    if (cnt[t] * stream_kbps > up[t - 1]) return (int)t;
  return 0;
}
