/* peertv-sim -- MyP2PWorld, the PeerTV simulator. See docs/peertv-sim.1. */
#define _POSIX_C_SOURCE 200809L
#include "ptv_chandelier.h"
#include "ptv_err.h"
#include "ptv_sim_scenario.h"
#include "ptv_sim_world.h"
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
  char params[1024];
  ptv_ch_params_list(params, sizeof params);
  fputs("Usage: peertv-sim SCENARIO [options]\n"
        "Run PeerTV's protocol engines for a source and many peers over a simulated\n"
        "network, as the scenario file describes (grammar: docs/SCENARIOS.md).\n\n"
        "Options:\n"
        "  --seed N            override the scenario's seed\n"
        "  --strategy S        overlay strategy: mesh (default) or chandelier\n"
        "  --json FILE         write the summary as JSON ('-' for stdout)\n"
        "  --csv FILE          write the per-second series as CSV\n"
        "  --peers FILE        write one CSV line per peer (join, upload, continuity...)\n"
        "  --quiet             no progress bar and no human summary\n"
        "  --help              show this help\n"
        "  --version           show the version\n"
        "  --ch-param NAME=V   set a Chandelier parameter (repeatable); they are:\n",
        f);
  fputs(params, f);
  fputs("\nExit status: 0 success, 1 runtime failure, 2 usage or scenario error.\n", f);
}

typedef struct {
  int tty;
} progress_state;

static void progress(void *arg, const ptv_series_row *r, double run_s, uint64_t events) {
  (void)events;
  progress_state *ps = arg;
  if (!ps->tty) return;
  double frac = run_s > 0 ? (r->t_s + 1) / run_s : 1;
  if (frac > 1) frac = 1;
  int bar = (int)(frac * 30);
  fprintf(stderr, "\r[%.*s%*s] %3.0f%% t=%us online=%u playing=%u cont=%.3f lag50=%.1fs",
          bar, "##############################", 30 - bar, "", frac * 100, r->t_s + 1,
          r->online, r->playing, ptv_row_continuity(r), r->lag_p50_s);
  fflush(stderr);
}

static json_t *summary_json(const ptv_world_summary *s, const ptv_scenario *sc) {
  json_t *o = json_object();
  json_object_set_new(o, "peers_joined", json_integer(s->peers_joined));
  json_object_set_new(o, "duration_s", json_real(s->duration_s));
  json_object_set_new(o, "seed", json_integer((json_int_t)sc->seed));
  json_object_set_new(o, "strategy",
                      json_string(sc->strategy == PTV_STRATEGY_MESH ? "mesh" : "chandelier"));
  json_object_set_new(o, "stream_kbps", json_real(s->stream_kbps));
  json_object_set_new(o, "resource_index", json_real(s->resource_index));
  json_object_set_new(o, "r_max_kbps", json_real(s->r_max_kbps));
  json_object_set_new(o, "lag_bound_s", json_real(s->lag_bound_s));
  json_t *c = json_object();
  json_object_set_new(c, "mean", json_real(s->cont_mean));
  json_object_set_new(c, "share_ge_099", json_real(s->cont_share_ge_099));
  json_object_set_new(c, "stayed_mean", json_real(s->cont_stayed_mean));
  json_object_set_new(c, "stayed_share_ge_099", json_real(s->cont_stayed_share_ge_099));
  json_object_set_new(c, "honest_share_ge_099", json_real(s->cont_honest_share_ge_099));
  json_object_set_new(c, "p10", json_real(s->cont_p10));
  json_object_set_new(c, "p50", json_real(s->cont_p50));
  json_object_set_new(c, "jain", json_real(s->cont_jain));
  json_t *t = json_object();
  json_object_set_new(t, "from_s", json_real(s->tail_from_s));
  json_object_set_new(t, "mean", json_real(s->tail_mean));
  json_object_set_new(t, "share_ge_099", json_real(s->tail_share_ge_099));
  json_object_set_new(t, "p10", json_real(s->tail_p10));
  json_object_set_new(t, "p50", json_real(s->tail_p50));
  json_object_set_new(t, "jain", json_real(s->tail_jain));
  json_object_set_new(c, "tail", t);
  json_object_set_new(o, "continuity", c);
  json_object_set_new(o, "peers_played", json_integer(s->peers_played));
  json_object_set_new(o, "never_started", json_integer(s->never_started));
  json_t *st = json_object();
  json_object_set_new(st, "p50", json_real(s->startup_p50));
  json_object_set_new(st, "p95", json_real(s->startup_p95));
  json_object_set_new(o, "startup_s", st);
  json_t *lg = json_object();
  json_object_set_new(lg, "p50", json_real(s->lag_p50));
  json_object_set_new(lg, "p95", json_real(s->lag_p95));
  json_object_set_new(o, "lag_s", lg);
  json_t *sl = json_object();
  json_object_set_new(sl, "per_peer", json_real(s->stalls_mean));
  json_object_set_new(sl, "seconds_mean", json_real(s->stall_s_mean));
  json_object_set_new(sl, "seconds_p95", json_real(s->stall_s_p95));
  json_object_set_new(o, "stalls", sl);
  json_object_set_new(o, "savings", json_real(s->savings));
  json_object_set_new(o, "overhead", json_real(s->overhead));
  json_object_set_new(o, "partner_changes_per_peer_min", json_real(s->partner_changes_per_peer_min));
  json_t *rec = json_array();
  for (size_t i = 0; i < s->nrec; i++) {
    json_t *r = json_object();
    json_object_set_new(r, "event", json_string(s->rec[i].kind == PTV_SCN_FAIL ? "fail" : "partition_heal"));
    json_object_set_new(r, "at_s", json_real(s->rec[i].at_s));
    json_object_set_new(r, "recovery_s", json_real(s->rec[i].recovery_s));
    json_object_set_new(r, "recovery_all_s", json_real(s->rec[i].recovery_all_s));
    json_object_set_new(r, "all_clean_s", json_real(s->rec[i].all_clean_s));
    json_array_append_new(rec, r);
  }
  json_object_set_new(o, "recovery", rec);
  json_object_set_new(o, "events", json_integer((json_int_t)s->events));
  json_object_set_new(o, "messages", json_integer((json_int_t)s->messages));
  json_t *d = json_object();
  json_object_set_new(d, "nat", json_integer((json_int_t)s->dropped_nat));
  json_object_set_new(d, "loss", json_integer((json_int_t)s->dropped_loss));
  json_object_set_new(d, "partition", json_integer((json_int_t)s->dropped_partition));
  json_object_set_new(d, "tracker", json_integer((json_int_t)s->dropped_tracker));
  json_object_set_new(o, "dropped", d);
  json_object_set_new(o, "wall_s", json_real(s->wall_s));
  json_object_set_new(o, "events_per_s", json_real(s->wall_s > 0 ? s->events / s->wall_s : 0));
  json_object_set_new(o, "peak_rss_mb", json_real(s->peak_rss_mb));
  return o;
}

static void print_summary(FILE *f, const ptv_world_summary *s, const ptv_scenario *sc) {
  fprintf(f, "PeerTV simulation: %u peers, %.0f s, stream %.0f kbps, strategy %s, seed %llu\n",
          s->peers_joined, s->duration_s, s->stream_kbps,
          sc->strategy == PTV_STRATEGY_MESH ? "mesh" : "chandelier",
          (unsigned long long)sc->seed);
  fprintf(f, "  resource index      %.3f   (r_max %.0f kbps, stream/r_max %.2f)\n",
          s->resource_index, s->r_max_kbps, s->r_max_kbps > 0 ? s->stream_kbps / s->r_max_kbps : 0);
  fprintf(f, "  continuity          mean %.4f, share >= 0.99: %.4f (%u peers played, %u never started)\n",
          s->cont_mean, s->cont_share_ge_099, s->peers_played, s->never_started);
  fprintf(f, "  continuity (stayed) mean %.4f, share >= 0.99: %.4f\n", s->cont_stayed_mean,
          s->cont_stayed_share_ge_099);
  fprintf(f, "  continuity spread   p10 %.4f, p50 %.4f, Jain's fairness %.4f\n", s->cont_p10,
          s->cont_p50, s->cont_jain);
  fprintf(f, "  last third (>= %.0f s) mean %.4f, share >= 0.99: %.4f, p10 %.4f, Jain's %.4f\n",
          s->tail_from_s, s->tail_mean, s->tail_share_ge_099, s->tail_p10, s->tail_jain);
  fprintf(f, "  startup             p50 %.2f s, p95 %.2f s\n", s->startup_p50, s->startup_p95);
  fprintf(f, "  playback lag        p50 %.2f s, p95 %.2f s   (minimum-delay bound %.2f s)\n",
          s->lag_p50, s->lag_p95, s->lag_bound_s);
  fprintf(f, "  stalls              %.2f per peer, %.2f s in all (p95 %.2f s)\n", s->stalls_mean,
          s->stall_s_mean, s->stall_s_p95);
  fprintf(f, "  savings             %.4f\n", s->savings);
  fprintf(f, "  overhead            %.4f\n", s->overhead);
  fprintf(f, "  partner changes     %.3f per peer per minute\n", s->partner_changes_per_peer_min);
  for (size_t i = 0; i < s->nrec; i++)
    fprintf(f,
            "  recovery after %-9s at %.0f s: %.0f s (99%% of peers), %.0f s (every peer), "
            "%.0f s (no peer missing anything)\n",
            s->rec[i].kind == PTV_SCN_FAIL ? "failure" : "heal", s->rec[i].at_s,
            s->rec[i].recovery_s, s->rec[i].recovery_all_s, s->rec[i].all_clean_s);
  fprintf(f, "  simulation          %llu events in %.1f s wall (%.0f events/s), peak RSS %.0f MiB\n",
          (unsigned long long)s->events, s->wall_s, s->wall_s > 0 ? s->events / s->wall_s : 0,
          s->peak_rss_mb);
}

int main(int argc, char **argv) {
  static const struct option opts[] = {
      {"seed", required_argument, NULL, 's'},  {"strategy", required_argument, NULL, 'S'},
      {"json", required_argument, NULL, 'j'},  {"csv", required_argument, NULL, 'c'},
      {"peers", required_argument, NULL, 'p'}, {"ch-param", required_argument, NULL, 'P'},
      {"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},     {NULL, 0, NULL, 0}};
  const char *json_path = NULL, *csv_path = NULL, *peers_path = NULL, *strategy = NULL;
  long long seed = -1;
  int quiet = 0, ch;
  static ptv_ch_params chp; /* kept by ptv_chandelier_set_params */
  int chp_set = 0;
  ptv_ch_params_default(&chp);
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 's': {
      char *end;
      errno = 0;
      seed = strtoll(optarg, &end, 10);
      if (errno || *end || seed < 0) {
        fprintf(stderr, "peertv-sim: --seed needs a non-negative integer, got '%s'\n", optarg);
        return 2;
      }
      break;
    }
    case 'S': strategy = optarg; break;
    case 'j': json_path = optarg; break;
    case 'c': csv_path = optarg; break;
    case 'p': peers_path = optarg; break;
    case 'P': {
      char perr[160];
      if (ptv_ch_params_set(&chp, optarg, perr, sizeof perr) != 0) {
        fprintf(stderr, "peertv-sim: --ch-param: %s (see --help)\n", perr);
        return 2;
      }
      chp_set = 1;
      break;
    }
    case 'q': quiet = 1; break;
    case 'h': usage(stdout); return 0;
    case 'V': puts("peertv-sim " PACKAGE_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "peertv-sim: expected exactly one scenario file (try --help)\n");
    return 2;
  }
  ptv_scenario sc;
  char err[512];
  int rv = ptv_scenario_load(&sc, argv[optind], err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "peertv-sim: %s: %s\n", argv[optind], err);
    return 2;
  }
  if (seed >= 0) sc.seed = (uint64_t)seed;
  if (strategy) {
    if (strcmp(strategy, "mesh") == 0) sc.strategy = PTV_STRATEGY_MESH;
    else if (strcmp(strategy, "chandelier") == 0) sc.strategy = PTV_STRATEGY_CHANDELIER;
    else {
      fprintf(stderr, "peertv-sim: unknown strategy '%s', expected mesh or chandelier\n", strategy);
      ptv_scenario_free(&sc);
      return 2;
    }
  }
  if (chp_set) ptv_chandelier_set_params(&chp);
  ptv_world *w = ptv_world_new(&sc, err, sizeof(err));
  if (!w) {
    fprintf(stderr, "peertv-sim: %s\n", err);
    ptv_scenario_free(&sc);
    return 2;
  }
  progress_state ps = {.tty = !quiet && isatty(2)};
  ptv_world_run(w, progress, &ps);
  if (ps.tty) fputc('\n', stderr);
  ptv_world_summary sum;
  ptv_world_summarize(w, &sum);
  int status = 0;
  if (csv_path) {
    FILE *f = fopen(csv_path, "w");
    if (!f) {
      fprintf(stderr, "peertv-sim: cannot write %s: %s\n", csv_path, strerror(errno));
      status = 1;
    } else {
      const ptv_series_row *rows;
      size_t nr = ptv_world_series(w, &rows);
      fprintf(f, "%s\n", PTV_SERIES_HEADER);
      for (size_t i = 0; i < nr; i++) ptv_row_write_csv(&rows[i], f);
      if (fclose(f) != 0) status = 1;
    }
  }
  if (peers_path) {
    FILE *f = fopen(peers_path, "w");
    if (!f) {
      fprintf(stderr, "peertv-sim: cannot write %s: %s\n", peers_path, strerror(errno));
      status = 1;
    } else {
      if (ptv_world_write_peers(w, f) != 0) status = 1;
      if (fclose(f) != 0) status = 1;
    }
  }
  if (json_path) {
    json_t *j = summary_json(&sum, &sc);
    int jr = strcmp(json_path, "-") == 0
                 ? json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6))
                 : json_dump_file(j, json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (jr != 0) {
      fprintf(stderr, "peertv-sim: cannot write %s\n", json_path);
      status = 1;
    }
    if (strcmp(json_path, "-") == 0) putchar('\n');
    json_decref(j);
  }
  if (!quiet) print_summary(json_path && strcmp(json_path, "-") == 0 ? stderr : stdout, &sum, &sc);
  ptv_world_free(w);
  ptv_scenario_free(&sc);
  return status;
}
