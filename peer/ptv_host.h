/* ptv_host.h -- runs one node engine (peer or source) as a real process.
 *
 * The glue of peertv-peer and peertv-source: one libuv loop; the node's
 * identity key; the tracker connection (ptv_tclient); partner paths
 * (ptv_links: ICE, key exchange, SRTP, reliable link); the node engine
 * (ptv_node, payload mode, chunks signed by the source and verified by
 * every peer before it keeps, plays or forwards them); a timer on the
 * engine's expiry; the HTTP side (/stats); a recording of what is played.
 * The engine is the one the simulator runs; only this driver differs.
 */
#ifndef PTV_HOST_H
#define PTV_HOST_H

#include <stdint.h>

#include "ptv_types.h"

typedef struct {
  uint8_t role;             /* PTV_ROLE_PEER or PTV_ROLE_SOURCE */
  const char *tracker;      /* HOST:PORT */
  const char *channel;
  const char *key_path;     /* identity key file (created if missing); NULL: a
                               fresh key per run */
  uint32_t upload_kbps;     /* --upload-limit (0: peer 10 Mbit/s, source 4 x stream) */
  const char *http;         /* ADDR:PORT for /stats, or NULL */
  const char *record;       /* file the played chunks are appended to, or NULL */
  const char *stun, *turn, *turn_user, *turn_pass;
  const char *local_addr;   /* restrict ICE to this address (loopback tests) */
  int relay_only;           /* only TURN-relayed paths (needs turn) */
  ptv_tstamp buffer_us;     /* peer: playback buffer (default 2 s) */
  int chandelier;           /* overlay strategy: 0 mesh, 1 chandelier */
  uint8_t partners;         /* peer: partners sought, N + 6 accepted (0: the
                               engine's 8 and 14) */
  /* source */
  uint32_t chunk_us, stream_kbps;
  const char *description;
  double duration_s;        /* stop after this long (0: until a signal) */
  const char *stats_file;   /* write the final /stats JSON here at exit */
  const char *delay_log;    /* one line per new chunk: "id delay_us" (benchmarks) */
} ptv_host_config;

/* Command-line options peertv-peer and peertv-source share. Their getopt
 * codes start at PTV_OPT_BASE, so a program's own letters never clash; put
 * PTV_HOST_LONG_OPTIONS in the program's struct option array (getopt.h). */
enum {
  PTV_OPT_BASE = 256,
  PTV_OPT_TRACKER = PTV_OPT_BASE, PTV_OPT_CHANNEL, PTV_OPT_HTTP, PTV_OPT_UPLOAD,
  PTV_OPT_STUN, PTV_OPT_TURN, PTV_OPT_TURN_USER, PTV_OPT_TURN_PASS, PTV_OPT_LOCAL,
  PTV_OPT_RELAY_ONLY, PTV_OPT_KEY, PTV_OPT_DURATION, PTV_OPT_STATS_FILE,
  PTV_OPT_VERBOSE, PTV_OPT_QUIET
};
#define PTV_HOST_LONG_OPTIONS                                                              \
  {"tracker", required_argument, NULL, PTV_OPT_TRACKER},                                 \
      {"channel", required_argument, NULL, PTV_OPT_CHANNEL},                             \
      {"http", required_argument, NULL, PTV_OPT_HTTP},                                   \
      {"upload-limit", required_argument, NULL, PTV_OPT_UPLOAD},                         \
      {"stun", required_argument, NULL, PTV_OPT_STUN},                                   \
      {"turn", required_argument, NULL, PTV_OPT_TURN},                                   \
      {"turn-user", required_argument, NULL, PTV_OPT_TURN_USER},                         \
      {"turn-pass", required_argument, NULL, PTV_OPT_TURN_PASS},                         \
      {"local-addr", required_argument, NULL, PTV_OPT_LOCAL},                            \
      {"relay-only", no_argument, NULL, PTV_OPT_RELAY_ONLY},                             \
      {"key", required_argument, NULL, PTV_OPT_KEY},                                     \
      {"duration", required_argument, NULL, PTV_OPT_DURATION},                           \
      {"stats-file", required_argument, NULL, PTV_OPT_STATS_FILE},                       \
      {"verbose", no_argument, NULL, PTV_OPT_VERBOSE},                                   \
      {"quiet", no_argument, NULL, PTV_OPT_QUIET}

/* Applies one shared option (code from getopt_long; 'v' and 'q' count as
 * --verbose and --quiet). Returns 1 if it was one, 0 if the code is the
 * program's own, -1 if its value is bad (a message naming prog and the
 * option has been printed: exit with status 2). */
int ptv_host_option(ptv_host_config *c, int code, const char *arg, const char *prog);

/* After the options: 0 if --tracker and --channel were given and nothing
 * else is left over, else -1 (a message has been printed: exit 2). */
int ptv_host_options_done(const ptv_host_config *c, int optind_, int argc, const char *prog);

/* Runs until SIGINT/SIGTERM, duration_s, or a final tracker refusal.
 * Returns a process exit status: 0 stopped cleanly, 1 runtime failure
 * (message printed). */
int ptv_host_run(const ptv_host_config *c);

#endif
