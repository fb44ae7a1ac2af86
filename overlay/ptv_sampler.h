/* ptv_sampler.h -- gossip peer sampling (Cyclon, Voulgaris et al. 2005).
 *
 * Each node keeps a small partial view of other peers. Periodically it ages
 * every entry, picks the oldest as its shuffle target, and swaps a few
 * entries with it; the target answers with some of its own. This keeps a
 * random, fresh, self-healing view without the tracker, so a peer keeps
 * finding partners when the tracker is gone and forgets dead peers (the oldest
 * entry is always the one contacted next and is removed if silent).
 */
#ifndef PTV_SAMPLER_H
#define PTV_SAMPLER_H

#include "ptv_wire.h"

#define PTV_SAMPLER_VIEW 20   /* view size */
#define PTV_SAMPLER_SHUFFLE 8 /* entries exchanged per shuffle */

typedef struct {
  ptv_id self;
  uint8_t n;
  ptv_peer_desc v[PTV_SAMPLER_VIEW];
} ptv_sampler;

void ptv_sampler_init(ptv_sampler *s, ptv_id self);

/* Adds or refreshes a peer (keeps the younger age). When the view is full the
 * oldest entry gives way. Self and PTV_ID_NONE are ignored. */
void ptv_sampler_add(ptv_sampler *s, const ptv_peer_desc *d);

/* Removes a peer if present; returns 1 if it was there. */
int ptv_sampler_remove(ptv_sampler *s, ptv_id id);

/* Starts a shuffle: ages every entry, removes the oldest entry (the target,
 * returned in *target) and writes up to PTV_SAMPLER_SHUFFLE-1 random other
 * entries plus `me` (age 0) into out. Returns the count written, or 0 (and
 * *target = PTV_ID_NONE) if the view is empty. `rnd` is a random source. */
size_t ptv_sampler_shuffle_start(ptv_sampler *s, const ptv_peer_desc *me,
                                 uint64_t (*rnd)(void *), void *rarg,
                                 ptv_peer_desc *out, ptv_id *target);

/* Answers a shuffle request: writes up to PTV_SAMPLER_SHUFFLE random entries
 * into out (returns the count), then merges the request's entries, replacing
 * the ones sent where the view is full. */
size_t ptv_sampler_shuffle_answer(ptv_sampler *s, const ptv_peer_desc *in,
                                  size_t nin, uint64_t (*rnd)(void *),
                                  void *rarg, ptv_peer_desc *out);

/* Merges received entries; where the view is full, entries listed in `sent`
 * are replaced first, then the oldest. */
void ptv_sampler_merge(ptv_sampler *s, const ptv_peer_desc *in, size_t nin,
                       const ptv_peer_desc *sent, size_t nsent);

/* A uniformly random entry, or NULL if the view is empty. */
const ptv_peer_desc *ptv_sampler_pick(const ptv_sampler *s,
                                      uint64_t (*rnd)(void *), void *rarg);

#endif
