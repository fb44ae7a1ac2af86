#include "ptv_sampler.h"
#include <string.h>

void ptv_sampler_init(ptv_sampler *s, ptv_id self) {
  memset(s, 0, sizeof(*s));
  s->self = self;
}

static int find(const ptv_sampler *s, ptv_id id) {
  for (int i = 0; i < s->n; i++)
    if (s->v[i].id == id) return i;
  return -1;
}

static void remove_at(ptv_sampler *s, int i) {
  s->v[i] = s->v[s->n - 1];
  s->n--;
}

static int oldest(const ptv_sampler *s) {
  int o = -1;
  for (int i = 0; i < s->n; i++)
    if (o < 0 || s->v[i].age > s->v[o].age) o = i;
  return o;
}

void ptv_sampler_add(ptv_sampler *s, const ptv_peer_desc *d) {
  if (d->id == s->self || d->id == PTV_ID_NONE) return;
  int i = find(s, d->id);
  if (i >= 0) {
    if (d->age <= s->v[i].age) s->v[i] = *d;
    return;
  }
  if (s->n == PTV_SAMPLER_VIEW) remove_at(s, oldest(s));
  s->v[s->n++] = *d;
}

int ptv_sampler_remove(ptv_sampler *s, ptv_id id) {
  int i = find(s, id);
  if (i < 0) return 0;
  remove_at(s, i);
  return 1;
}

/* Picks up to k distinct random entries (partial Fisher-Yates over indices). */
static size_t pick_k(const ptv_sampler *s, size_t k, uint64_t (*rnd)(void *),
                     void *rarg, ptv_peer_desc *out) {
  uint8_t idx[PTV_SAMPLER_VIEW];
  for (int i = 0; i < s->n; i++) idx[i] = (uint8_t)i;
  if (k > s->n) k = s->n;
  for (size_t i = 0; i < k; i++) {
    size_t j = i + (size_t)(rnd(rarg) % (uint64_t)(s->n - i));
    uint8_t t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    out[i] = s->v[idx[i]];
  }
  return k;
}

size_t ptv_sampler_shuffle_start(ptv_sampler *s, const ptv_peer_desc *me,
                                 uint64_t (*rnd)(void *), void *rarg,
                                 ptv_peer_desc *out, ptv_id *target) {
  *target = PTV_ID_NONE;
  if (s->n == 0) return 0;
  for (int i = 0; i < s->n; i++)
    if (s->v[i].age < 255) s->v[i].age++;
  int o = oldest(s);
  *target = s->v[o].id;
  remove_at(s, o);
  size_t k = pick_k(s, PTV_SAMPLER_SHUFFLE - 1, rnd, rarg, out + 1);
  out[0] = *me;
  out[0].age = 0;
  return k + 1;
}

void ptv_sampler_merge(ptv_sampler *s, const ptv_peer_desc *in, size_t nin,
                       const ptv_peer_desc *sent, size_t nsent) {
  size_t si = 0;
  for (size_t i = 0; i < nin; i++) {
    const ptv_peer_desc *d = &in[i];
    if (d->id == s->self || d->id == PTV_ID_NONE) continue;
    int j = find(s, d->id);
    if (j >= 0) {
      if (d->age < s->v[j].age) s->v[j] = *d;
      continue;
    }
    if (s->n < PTV_SAMPLER_VIEW) {
      s->v[s->n++] = *d;
      continue;
    }
    /* Full: replace an entry we sent away, as Cyclon does. */
    int r = -1;
    while (si < nsent && r < 0) r = find(s, sent[si++].id);
    if (r < 0) r = oldest(s);
    s->v[r] = *d;
  }
}

size_t ptv_sampler_shuffle_answer(ptv_sampler *s, const ptv_peer_desc *in,
                                  size_t nin, uint64_t (*rnd)(void *),
                                  void *rarg, ptv_peer_desc *out) {
  size_t k = pick_k(s, PTV_SAMPLER_SHUFFLE, rnd, rarg, out);
  ptv_sampler_merge(s, in, nin, out, k);
  return k;
}

const ptv_peer_desc *ptv_sampler_pick(const ptv_sampler *s,
                                      uint64_t (*rnd)(void *), void *rarg) {
  if (s->n == 0) return NULL;
  return &s->v[rnd(rarg) % s->n];
}
