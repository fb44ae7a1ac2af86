#include "ptv_sim_metrics.h"
#include <math.h>
#include <stdlib.h>

double ptv_row_continuity(const ptv_series_row *r) {
  return r->due ? 1.0 - (double)r->missed / (double)r->due : 1.0;
}

double ptv_row_share(const ptv_series_row *r) {
  if (r->playing == 0) return 1.0;
  double s = 1.0 - (double)r->peers_missing / (double)r->playing;
  return s < 0 ? 0 : s;
}

void ptv_row_write_csv(const ptv_series_row *r, FILE *f) {
  double sav = r->peer_down_bytes > 0 ? 1.0 - r->source_bytes / r->peer_down_bytes : 0.0;
  fprintf(f, "%u,%u,%u,%.4f,%.4f,%.3f,%.3f,%.4f,%.1f,%.1f,%u\n", r->t_s, r->online,
          r->playing, ptv_row_continuity(r), ptv_row_share(r), r->lag_p50_s,
          r->lag_p95_s, sav, r->source_bytes * 8 / 1000, r->peer_up_bytes * 8 / 1000,
          r->partner_changes);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double ptv_percentile(double *v, size_t n, double q) {
  if (n == 0) return 0;
  qsort(v, n, sizeof(double), cmp_double);
  size_t k = (size_t)ceil(q * (double)n);
  if (k == 0) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

double ptv_jain(const double *v, size_t n) {
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) {
    s += v[i];
    s2 += v[i] * v[i];
  }
  return s2 > 0 ? s * s / ((double)n * s2) : 1.0;
}

double ptv_r_max(double u_s, double sum_u, double n) {
  if (n <= 0) return u_s;
  double r = (u_s + sum_u) / n;
  return r < u_s ? r : u_s;
}

double ptv_lag_bound(double n, double c, double chunk_s) {
  if (n <= 1) return chunk_s;
  if (c <= 0) return n * chunk_s;
  return ceil(log(n) / log(1.0 + c)) * chunk_s;
}
