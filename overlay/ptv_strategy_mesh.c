#include "ptv_strategy.h"
#include <string.h>

/* The plain random mesh: the node's defaults, plus the source's push. */
static size_t mesh_push_targets(ptv_node *n, ptv_chunk_id id, ptv_id *out,
                                size_t max, uint64_t rnd) {
  const ptv_node_config *c = ptv_node_config_get(n);
  if (c->role != PTV_ROLE_SOURCE || c->stream_kbps == 0) return 0;
  /* Spend all but one stream's worth of upload on first copies; the rest
   * answers pulls. */
  size_t fan = c->upload_kbps / c->stream_kbps;
  fan = fan > 1 ? fan - 1 : 1;
  if (fan > max) fan = max;
  uint32_t np = ptv_node_npartners(n);
  size_t k = 0;
  /* Rotate from a random offset so first copies spread over partners. */
  for (uint32_t i = 0; i < np && k < fan; i++) {
    ptv_partner_info pi;
    if (ptv_node_partner(n, (uint32_t)((rnd + i) % np), &pi) == 0 && pi.established)
      out[k++] = pi.id;
  }
  (void)id;
  return k;
}

const ptv_strategy ptv_strategy_mesh = {
  .name = "mesh",
  .pick_candidate = NULL,
  .accept = NULL,
  .tick = NULL,
  .push_targets = mesh_push_targets,
};

const ptv_strategy *ptv_strategy_find(const char *name) {
  if (strcmp(name, "mesh") == 0) return &ptv_strategy_mesh;
  return NULL;
}
