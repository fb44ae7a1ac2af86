/* ptv_nat.h -- which pairs of peers can open a direct UDP path.
 *
 * The overlay classes NATs coarsely (ptv_nat_type). The rule follows the
 * NATCracker findings (Roverso et al. 2009) for simple hole punching: an open
 * host reaches anyone; two endpoint-independent-mapping NATs (cone) punch
 * through each other; a symmetric NAT only reaches open hosts, since its
 * per-destination port cannot be predicted by a restricted peer. */
#ifndef PTV_NAT_H
#define PTV_NAT_H

#include "ptv_types.h"

/* 1 if a direct path between NAT classes a and b can be set up, else 0.
 * Symmetric in its arguments. PTV_NAT_UNKNOWN is treated as symmetric
 * (the pessimistic guess). */
int ptv_nat_can_connect(ptv_nat_type a, ptv_nat_type b);

/* Short lowercase name ("open", "cone", "symmetric", "unknown"). */
const char *ptv_nat_name(ptv_nat_type t);

#endif
