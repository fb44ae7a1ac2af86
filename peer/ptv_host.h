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
  /* source */
  uint32_t chunk_us, stream_kbps;
  const char *description;
  double duration_s;        /* stop after this long (0: until a signal) */
  const char *stats_file;   /* write the final /stats JSON here at exit */
  const char *delay_log;    /* one line per new chunk: "id delay_us" (benchmarks) */
} ptv_host_config;

/* Runs until SIGINT/SIGTERM, duration_s, or a final tracker refusal.
 * Returns a process exit status: 0 stopped cleanly, 1 runtime failure
 * (message printed). */
int ptv_host_run(const ptv_host_config *c);

#endif
