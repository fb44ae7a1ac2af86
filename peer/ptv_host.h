/* ptv_host.h -- runs one node engine (peer or source) as a real process.
 *
 * The glue of peertv-peer and peertv-source: one libuv loop; the node's
 * identity key; the tracker connection (ptv_tclient); partner paths
 * (ptv_links: ICE, key exchange, SRTP, reliable link); the node engine
 * (ptv_node, payload mode, chunks signed by the source and verified by
 * every peer before it keeps, plays or forwards them); a timer on the
 * engine's expiry; the HTTP side (/stats); a recording of what is played;
 * the played stream to the program's output (a player) or, without one,
 * through an MPEG-TS parser for /stats "media".
 * The engine is the one the simulator runs; only this driver differs.
 */
#ifndef PTV_HOST_H
#define PTV_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "ptv_types.h"

/* A source's chunk input supplied by the program (peertv-source's media
 * input), so that this library, which peertv-peer links too, needs no
 * GStreamer. The program opens its input before ptv_host_run (a bad input
 * fails before the tracker is contacted) and hands chunks over with
 * ptv_host_publish. */
typedef struct ptv_host_input {
  void *user;
  /* The source joined its channel (once): start the input. Returns 0, or
   * -1 with a line logged (the source stops with status 1). */
  int (*start)(void *user);
  /* The host stops (once, also if start was never called): stop and
   * release the input; no ptv_host_publish after this. Handles may still
   * be closed: the loop runs on until they are. */
  void (*stop)(void *user);
} ptv_host_input;

/* What /stats shows as "media" (see ptv_host_output). */
typedef struct ptv_host_media {
  const char *codec, *audio_codec; /* "h264", "aac", ...; NULL unknown */
  uint32_t width, height;          /* 0 unknown */
  double fps, bitrate_kbps;        /* 0 unknown */
  uint64_t frames_played, frames_late, frames_lost;
  int64_t first_frame_at;          /* ptv_rt_now() of the first frame; 0 */
  int decoding;                    /* frames are decoded (a player runs) */
} ptv_host_media;

/* A peer's output supplied by the program (peertv-peer --play: ptv_player),
 * so that this library needs no GStreamer. Without one, the host parses
 * the played chunks itself (ptv_ts: codecs, size, frame rate, frames) for
 * /stats. All on the loop's thread. */
typedef struct ptv_host_output {
  void *user;
  /* A played chunk, in order, as --record gets it. */
  void (*chunk)(void *user, const uint8_t *ts, size_t len, int keyframe);
  /* A chunk due was missing. */
  void (*gap)(void *user);
  /* Fills what /stats shows (m is zeroed first). */
  void (*media)(void *user, ptv_host_media *m);
  /* The host stops (once): release the output. */
  void (*stop)(void *user);
} ptv_host_output;

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
  int32_t poll_us;          /* --poll-interval: handle network I/O at most
                               every this long. 0: the default, the chunk
                               duration / 25 within 1..5 ms; < 0: at once */
  const char *delay_log;    /* one line per new chunk: "id delay_us" (benchmarks) */
  const ptv_host_input *input; /* source: chunks from the program; NULL: the
                               synthetic test chunks every chunk_us */
  const ptv_host_output *output; /* peer: where played chunks go, or NULL */
} ptv_host_config;

/* Command-line options peertv-peer and peertv-source share. Their getopt
 * codes start at PTV_OPT_BASE, so a program's own letters never clash; put
 * PTV_HOST_LONG_OPTIONS in the program's struct option array (getopt.h). */
enum {
  PTV_OPT_BASE = 256,
  PTV_OPT_TRACKER = PTV_OPT_BASE, PTV_OPT_CHANNEL, PTV_OPT_HTTP, PTV_OPT_UPLOAD,
  PTV_OPT_STUN, PTV_OPT_TURN, PTV_OPT_TURN_USER, PTV_OPT_TURN_PASS, PTV_OPT_LOCAL,
  PTV_OPT_RELAY_ONLY, PTV_OPT_KEY, PTV_OPT_DURATION, PTV_OPT_STATS_FILE,
  PTV_OPT_VERBOSE, PTV_OPT_QUIET, PTV_OPT_POLL
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
      {"quiet", no_argument, NULL, PTV_OPT_QUIET},                                       \
      {"poll-interval", required_argument, NULL, PTV_OPT_POLL}

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

/* For a source with an input (on the loop's thread, inside ptv_host_run):
 * publishes the next chunk (payload copied) with flags PTV_CHUNK_KEYFRAME
 * (it starts with a keyframe) and/or PTV_CHUNK_STALLED (a stall notice:
 * peers neither record nor serve it), from ptv_wire.h. Returns the chunk id
 * (>= 0), or PTV_ERR_INVALID_ARG when the node has not joined yet or is
 * stopping (the chunk is dropped) or flags holds another bit, or another
 * negative PTV_ERR_* code (logged). */
int64_t ptv_host_publish(const uint8_t *buf, size_t len, int flags);

/* Stops the host as SIGTERM would, with exit status code, grace_ms from now
 * (0: at once), so partners can still fetch the last chunks. The input's
 * stop runs at once. A stop already under way wins. */
void ptv_host_stop(int code, uint32_t grace_ms);

#endif
