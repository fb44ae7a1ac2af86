/* ptv_sim_metrics.h -- the figures of ../docs/METRICS.md: percentiles, the
 * per-second series, and the analytic limits printed next to measurements. */
#ifndef PTV_SIM_METRICS_H
#define PTV_SIM_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One row of the per-second CSV series. */
typedef struct {
  uint32_t t_s;
  uint32_t online, playing;
  uint64_t due, missed;          /* chunks due / missed in this second */
  uint32_t peers_missing;        /* playing peers with a miss this second */
  double lag_p50_s, lag_p95_s;
  double source_bytes, peer_up_bytes, peer_down_bytes;
  uint32_t partner_changes;
} ptv_series_row;

#define PTV_SERIES_HEADER \
  "t_s,online,playing,continuity,share_ge_099,lag_p50_s,lag_p95_s,savings," \
  "source_kbps,peer_up_kbps,partner_changes"

/* Per-second continuity (1 when nothing was due). */
double ptv_row_continuity(const ptv_series_row *r);
/* Share of playing peers whose continuity this second was >= 0.99 (no miss;
 * exact while a second holds fewer than 100 chunks). 1 when nobody plays. */
double ptv_row_share(const ptv_series_row *r);
/* Writes one CSV line (no header). */
void ptv_row_write_csv(const ptv_series_row *r, FILE *f);

/* q-quantile (0..1) of v[0..n) by nearest rank; sorts v in place. 0 if n==0. */
double ptv_percentile(double *v, size_t n, double q);

/* Jain's fairness index of v[0..n): (sum v)^2 / (n x sum v^2), in (0, 1],
 * 1 when all are equal (also when n == 0 or all are 0); 1/n when one holds
 * everything. How evenly a shortfall is shared. */
double ptv_jain(const double *v, size_t n);

/* Kumar-Liu-Ross maximum sustainable rate: min(u_s, (u_s + sum_u) / n). */
double ptv_r_max(double u_s, double sum_u, double n);

/* Liu's minimum delay with homogeneous upload c (in stream rates):
 * ceil(log_{1+c}(n)) chunk times, in seconds; n chunk times when c <= 0. */
double ptv_lag_bound(double n, double c, double chunk_s);

#endif
