#include "ptv_strategy.h"
#include <string.h>

/* The plain random mesh: every hook left to the node's defaults (random
 * partners, accept anyone with a free slot, chunks spread by offers). */
const ptv_strategy ptv_strategy_mesh = {
  .name = "mesh",
  .pick_candidate = NULL,
  .accept = NULL,
  .tick = NULL,
  .push_targets = NULL, /* offers spread chunks; see ptv_node.c */
};

const ptv_strategy *ptv_strategy_find(const char *name) {
  if (strcmp(name, "mesh") == 0) return &ptv_strategy_mesh;
  if (strcmp(name, "chandelier") == 0) return &ptv_strategy_chandelier;
  return NULL;
}
