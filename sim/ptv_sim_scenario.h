/* ptv_sim_scenario.h -- the simulator's scenario language (docs/SCENARIOS.md).
 *
 * A scenario is a text file, one statement per line, '#' starts a comment.
 * Quantities carry units: bps/kbps/Mbps/Gbps, us/ms/s/min/h, and % for shares.
 * Parsed values are stored as kbps (1 kbps = 1000 bit/s), seconds, and
 * fractions (P% -> P/100).
 */
#ifndef PTV_SIM_SCENARIO_H
#define PTV_SIM_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  double kbps;
  double weight; /* relative, > 0 */
} ptv_dist_entry;

/* An empirical distribution (weights need not sum to 1). A constant is one
 * entry. */
typedef struct {
  ptv_dist_entry *v;
  size_t n;
  char name[64]; /* "const", "sepidar", "clive", or the file name */
} ptv_dist;

typedef enum {
  PTV_SCN_JOIN,      /* at `at_s` join `count` peers spread over `dur_s` */
  PTV_SCN_LEAVE,     /* at `at_s` `frac` of online peers leave gracefully */
  PTV_SCN_FAIL,      /* at `at_s` `frac` of online peers crash at once */
  PTV_SCN_CHURN,     /* from `at_s` to `at_s+dur_s`, `frac` of peers per minute
                        crash and as many new peers join */
  PTV_SCN_PARTITION, /* at `at_s` split peers into `count` groups for `dur_s` */
  PTV_SCN_TRACKER_DOWN, /* from `at_s` for `dur_s` nothing reaches the tracker
                           or comes from it */
} ptv_scn_event_kind;

typedef struct {
  ptv_scn_event_kind kind;
  double at_s;
  double dur_s;
  uint32_t count;
  double frac; /* 0..1 */
  int line;    /* source line, for messages */
} ptv_scn_event;

#define PTV_STRATEGY_MESH 0
#define PTV_STRATEGY_CHANDELIER 1

typedef struct {
  uint64_t seed;          /* `seed N`, default 1 */
  double stream_kbps;     /* `stream rate=R chunk=D`, default 500 kbps */
  double chunk_s;         /* default 0.25 s */
  double source_kbps;     /* `source upload=R`, default 5 x stream */
  double buffer_s;        /* `buffer D`, default 2 s */
  ptv_dist upload;        /* `peers upload=...`, default const 1 Mbps */
  ptv_dist download;      /* `peers download=...`, default const 8 Mbps */
  double nat_share[3];    /* open, cone, symmetric as fractions summing to 1;
                             default 100% open = {1, 0, 0} */
  double lat_lo_s, lat_hi_s; /* `latency uniform LO HI`, default 10-150 ms */
  double loss;            /* `loss P%` as a fraction P/100, default 0 */
  double freerider_share; /* `freeriders P% claim=Kx`: share of peers that claim */
  double freerider_claim; /* K times the upload they have (and deliver); default 0, 1 */
  int nat_relay;          /* `nat relay on|off`, default off (fail) */
  int strategy;           /* `strategy mesh|chandelier`, default mesh */
  double run_s;           /* `run D`, required */
  ptv_scn_event *events;  /* in file order */
  size_t nevents;
} ptv_scenario;

/* Parses scenario text. `base_dir` resolves relative `file:` paths (may be
 * NULL for the current directory). On error returns PTV_ERR_PARSE (or
 * PTV_ERR_IO for an unreadable distribution file, PTV_ERR_NOMEM) and writes
 * one line "line N: <what was wrong>, expected <what>" into err. On success
 * returns 0 and the caller owns *s (free with ptv_scenario_free). */
int ptv_scenario_parse(ptv_scenario *s, const char *text, const char *base_dir,
                       char *err, size_t errlen);

/* Reads and parses a file (base_dir = the file's directory). Returns as
 * ptv_scenario_parse, or PTV_ERR_IO with err naming the file. */
int ptv_scenario_load(ptv_scenario *s, const char *path, char *err, size_t errlen);

void ptv_scenario_free(ptv_scenario *s);

/* Loads `upload_kbps,weight` CSV text ('#' comments and one header line
 * allowed) into d. Returns 0, PTV_ERR_PARSE (err says the line), PTV_ERR_NOMEM. */
int ptv_dist_parse_csv(ptv_dist *d, const char *text, char *err, size_t errlen);

/* Looks up a built-in distribution by name ("sepidar", "clive"). Returns 0 or
 * PTV_ERR_NOT_FOUND. */
int ptv_dist_builtin(ptv_dist *d, const char *name);

/* Draws a value given a uniform u in [0,1). */
double ptv_dist_sample(const ptv_dist *d, double u);
double ptv_dist_mean(const ptv_dist *d);
void ptv_dist_free(ptv_dist *d);

#endif
