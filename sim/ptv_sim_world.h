/* ptv_sim_world.h -- MyP2PWorld: runs the real engines (ptv_node, ptv_tracker)
 * for a source and many peers over the modelled network (ptv_sim_net), driven
 * by a scenario, in virtual time, deterministically from the seed. */
#ifndef PTV_SIM_WORLD_H
#define PTV_SIM_WORLD_H

#include "ptv_sim_metrics.h"
#include "ptv_sim_scenario.h"
#include <stdio.h>

typedef struct ptv_world ptv_world;

typedef struct {
  int kind;           /* ptv_scn_event_kind */
  double at_s;        /* when the disturbance ended (heal) or happened */
  /* Each peer playing at the event and online since is back at the first
   * second from which it misses nothing for 5 s; -1: not back before the
   * run ended (more than 1% of them, for recovery_s) */
  double recovery_s;     /* seconds until 99% of those peers were back */
  double recovery_all_s; /* until every one of them was */
  double all_clean_s;    /* until no peer at all missed anything for 5 s
                            running (stricter: counts background misses of
                            peers long back); -1 never */
} ptv_world_recovery;

typedef struct {
  uint32_t peers_joined;
  double duration_s, stream_kbps, resource_index, r_max_kbps, lag_bound_s;
  double cont_mean, cont_share_ge_099;
  double cont_stayed_mean, cont_stayed_share_ge_099; /* peers online at the end */
  double cont_honest_share_ge_099; /* peers that are not free-riders */
  /* how evenly continuity is spread over the peers that played: its 10th
   * percentile and median, and Jain's fairness index */
  double cont_p10, cont_p50, cont_jain;
  /* the same over the run's last third only (from tail_from_s), for the
   * peers online at the end: the settled overlay, without the joins */
  double tail_from_s, tail_mean, tail_share_ge_099, tail_p10, tail_p50, tail_jain;
  uint32_t peers_played, never_started;
  double startup_p50, startup_p95, lag_p50, lag_p95;
  /* playback pauses per playing peer (late play, re-anchoring): how many,
   * and their total length, which is what the peer's lag grew by */
  double stalls_mean, stall_s_mean, stall_s_p95;
  double savings, overhead, partner_changes_per_peer_min;
  uint64_t events, messages, dropped_nat, dropped_loss, dropped_partition;
  uint64_t dropped_tracker; /* during `at T tracker down` */
  double wall_s, peak_rss_mb;
  ptv_world_recovery rec[16];
  size_t nrec;
} ptv_world_summary;

/* Progress report, called once per simulated second. */
typedef void (*ptv_world_progress_cb)(void *arg, const ptv_series_row *row,
                                      double run_s, uint64_t events);

/* Builds a world for scenario s (not copied: keep s alive). Returns NULL and
 * a message in err on failure. */
ptv_world *ptv_world_new(const ptv_scenario *s, char *err, size_t errlen);
void ptv_world_free(ptv_world *w);

/* Runs the whole scenario. Returns 0 or PTV_ERR_NOMEM. */
int ptv_world_run(ptv_world *w, ptv_world_progress_cb cb, void *arg);

/* Results, valid after ptv_world_run. */
void ptv_world_summarize(ptv_world *w, ptv_world_summary *out);
size_t ptv_world_series(const ptv_world *w, const ptv_series_row **rows);

#define PTV_PEERS_HEADER \
  "id,join_s,upload_kbps,nat,online_at_end,started,startup_s,chunks_due,chunks_missed,continuity,lag_s,stalls,stall_s,catchups,claim_kbps,continuity_tail"

/* Writes one CSV line per peer that ever joined (header PTV_PEERS_HEADER
 * first), for per-peer analysis. Returns 0 or PTV_ERR_IO. */
int ptv_world_write_peers(const ptv_world *w, FILE *f);

/* Where the online peers' parents on one stripe lead, following each peer's
 * stripe parent up: to the source (*reach), to a peer with no parent there
 * or one that has left (*orphan), or round a loop (*loop: no end within 64
 * hops, longer than any tree). Callable between events, e.g. from the
 * progress callback; costs peers x depth x partners. */
void ptv_world_stripe_chains(const ptv_world *w, unsigned stripe, uint32_t *reach,
                             uint32_t *orphan, uint32_t *loop);

#endif
