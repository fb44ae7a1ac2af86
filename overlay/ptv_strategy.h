/* ptv_strategy.h -- how the overlay is shaped: the strategy interface.
 *
 * The node engine does the mechanics (membership, partners, buffer maps,
 * scheduling, playout, healing). A strategy decides the shape: whom to
 * partner with, whom to accept, what to push, and what to change on each
 * maintenance tick (its monitor-analyse-plan-execute loop). The baseline is a
 * random mesh (ptv_strategy_mesh); Chandelier (chandelier/) implements the
 * capacity-tiered overlay through the same table.
 *
 * Every hook is optional (NULL means the mesh behaviour). Hooks run inside
 * the engine's calls, so they must not block; they act only through the
 * ptv_node_* actions and read through the ptv_node_* accessors.
 */
#ifndef PTV_STRATEGY_H
#define PTV_STRATEGY_H

#include "ptv_node.h"

typedef struct ptv_strategy {
  const char *name;
  /* Chooses which of n candidates (none already partners) to connect to next.
   * Returns an index in [0,n) or -1 to connect to none. */
  int (*pick_candidate)(ptv_node *n, const ptv_peer_desc *cands, size_t nc,
                        uint64_t rnd);
  /* Whether to accept a CONNECT from `from` (called only with a free slot).
   * Returns 1 to accept. */
  int (*accept)(ptv_node *n, const ptv_peer_desc *from);
  /* Periodic adaptation (every maintenance period, default 500 ms). */
  void (*tick)(ptv_node *n, ptv_tstamp now);
  /* Chooses up to `max` partners to push new chunk `id` to without being asked.
   * Returns how many ids it wrote to out. */
  size_t (*push_targets)(ptv_node *n, ptv_chunk_id id, ptv_id *out, size_t max,
                         uint64_t rnd);
} ptv_strategy;

/* The baseline: random partners, accept anyone with a free slot, no
 * adaptation, the source pushes each chunk to a rotating few partners. */
extern const ptv_strategy ptv_strategy_mesh;

/* Looks a strategy up by name ("mesh"); NULL if unknown. */
const ptv_strategy *ptv_strategy_find(const char *name);

#endif
