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
  /* Sub-streams the stream is split into (chunk id mod stripes), each pushed
   * from a parent to the children that subscribed to it; 0: no stripes
   * (chunks spread by offers and pulls only). The engine handles up to 8. */
  uint8_t stripes;
  /* Per-node strategy state (its knowledge): made when the node is created,
   * freed with it; read back with ptv_node_strategy_state. */
  void *(*init)(ptv_node *n);
  void (*fini)(void *state);
  /* Chooses which of n candidates (none already partners) to connect to next.
   * Returns an index in [0,n) or -1 to connect to none. */
  int (*pick_candidate)(ptv_node *n, const ptv_peer_desc *cands, size_t nc,
                        uint64_t rnd);
  /* Whether to accept a CONNECT from `from` (called only with a free slot;
   * the strategy may drop a partner, ptv_node_drop_partner, to take it).
   * Returns 1 to accept. */
  int (*accept)(ptv_node *n, const ptv_peer_desc *from, ptv_tstamp now);
  /* A CONNECT from `from` found every partner slot taken: the strategy may
   * drop a partner (ptv_node_drop_partner) to make room for it. Returns 1 if
   * it did (accept is then asked as with any free slot). */
  int (*make_room)(ptv_node *n, const ptv_peer_desc *from, ptv_tstamp now);
  /* Periodic adaptation (every maintenance period, default 500 ms). */
  void (*tick)(ptv_node *n, ptv_tstamp now);
  /* Chooses up to `max` partners to push new chunk `id` to without being asked.
   * Returns how many ids it wrote to out. */
  size_t (*push_targets)(ptv_node *n, ptv_chunk_id id, ptv_id *out, size_t max,
                         uint64_t rnd);
  /* Stripes, parent side: partner `child` (bidding `bid_kbps`, its declared
   * upload) asks for the stripe set `want`. Returns the subset granted; it
   * may first evict other children (ptv_node_stripe_evict) to make room.
   * NULL: grant nothing. */
  uint16_t (*grant)(ptv_node *n, ptv_id child, uint16_t want, uint32_t bid_kbps,
                    ptv_tstamp now);
  /* Stripes, child side: `parent` answered our subscription to `asked` with
   * `granted` (and, when full, its price). Optional. */
  void (*on_grant)(ptv_node *n, ptv_id parent, uint16_t asked, uint16_t granted,
                   uint32_t price_kbps, ptv_tstamp now);
  /* Partner `from` warns (ptv_node_report_suspect) that `suspect` delivered
   * only deliv/65535 of what it took on. Called for every map that carries
   * the warning. Optional. */
  void (*on_report)(ptv_node *n, ptv_id from, ptv_id suspect, uint16_t deliv, ptv_tstamp now);
} ptv_strategy;

/* The baseline: random partners, accept anyone with a free slot, no
 * adaptation, the source pushes each chunk to a rotating few partners. */
extern const ptv_strategy ptv_strategy_mesh;

/* Chandelier, the capacity-tiered stripe overlay (chandelier/). */
extern const ptv_strategy ptv_strategy_chandelier;

/* Looks a strategy up by name ("mesh", "chandelier"); NULL if unknown. */
const ptv_strategy *ptv_strategy_find(const char *name);

#endif
