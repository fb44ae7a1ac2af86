/* ptv_chandelier.h -- Chandelier, the capacity-tiered stripe overlay.
 *
 * A strategy for the node engine (ptv_strategy_chandelier, declared in
 * ptv_strategy.h): the stream is split into stripes, each peer takes each
 * stripe from a parent in a tier nearer the source, parents grant their
 * slots by a market that favours the strongest uploaders, and a per-peer
 * monitor-analyse-plan-execute loop keeps that so under churn. The rules
 * are in ptv_ch_policy.h; docs/CHANDELIER.md describes the whole. */
#ifndef PTV_CHANDELIER_H
#define PTV_CHANDELIER_H

#include "ptv_ch_policy.h"
#include "ptv_node.h"

/* Parameters for nodes created from now on (NULL: the defaults). The
 * pointer is kept, not copied. For experiments and tests. */
void ptv_chandelier_set_params(const ptv_ch_params *pp);

/* A node's loop counters: voluntary parent switches, failing parents
 * replaced, children evicted by richer bidders. */
void ptv_chandelier_get_counters(const ptv_node *n, uint32_t *switches, uint32_t *failures,
                                 uint32_t *evictions);

#endif
