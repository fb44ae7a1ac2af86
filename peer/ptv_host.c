/* ptv_host.c -- see ptv_host.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptv_host.h"

#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "ptv_chunksig.h"
#include "ptv_ctl.h"
#include "ptv_err.h"
#include "ptv_http.h"
#include "ptv_identity.h"
#include "ptv_links.h"
#include "ptv_node.h"
#include "ptv_rt.h"
#include "ptv_strategy.h"
#include "ptv_tclient.h"
#include "ptv_ts.h"
#include "ptv_wire.h"

#define CHUNK_DEADLINE_US (4 * PTV_S) /* a chunk message not through by then is dropped */
#define TS_PACKET 188
#define MARKER "PEERTV-CLEAR-MARKER"
#define DELAY_BUCKETS 10001

typedef struct {
  ptv_host_config cfg;
  uv_loop_t *loop;
  ptv_identity id;
  ptv_tclient *tc;
  ptv_links *links;
  ptv_node *node;
  ptv_id self;
  uint8_t pub_pk[32];
  uint32_t chunk_us;
  ptv_tstamp poll_us; /* handle I/O at most this often (run_loop) */
  uv_timer_t node_timer, source_timer, stop_timer, rate_timer;
  uv_signal_t sigint, sigterm;
  ptv_http *http;
  FILE *rec, *dlog;
  uint64_t rng;
  ptv_tstamp started, play_at;
  uint64_t last_up, last_down;
  double up_kbps, down_kbps;
  int stopping, exit_code, handles;
  int input_stopped, grace_pending, grace_code, rec_keyframe;
  int stalled;             /* the newest played chunk is a stall notice */
  uint64_t stall_notices;  /* stall notices played */
  uint64_t relayed_out, relayed_in, relayed_refused; /* overlay messages via the tracker */
  uint32_t ts_cc;
  /* source-to-us delay of every new chunk, 1 ms buckets (last: overflow);
   * the clock is shared on one machine (monotonic), so on loopback these
   * are true one-way delays */
  uint32_t delay_hist[DELAY_BUCKETS];
  uint64_t delay_n;
  ptv_tstamp first_chunk;
  struct player *players; /* GET /stream.ts clients (peers only) */
  unsigned nplayers;
  ptv_ts *ts;              /* peer without an output: /stats "media" */
  ptv_tstamp ts_first;     /* when ts took its first frame */
  int output_stopped;
} host_state;

static host_state H;

static void rearm(void);
static void begin_stop(int code);

/* ---- the loop ------------------------------------------------------------- */

/* --poll-interval: with the chunk duration known (a source's own, a peer's
 * from the tracker's WELCOME). A 100 ms chunk gives 10 ms, the most (1 ms
 * the least). At 10 ms against 4 ms (scripts/bench-net, docs/BENCHMARKS.md
 * sessions 12-13): CPU per peer 1.8-2.5% against 2.8-3.1% at 10 peers,
 * 3.0% against 3.7-4.7% at 30; delay p50/p95 100/135 ms against 67/123 at
 * 10 peers, 157/220 against 98/150 at 30. It was at most 5 ms while
 * test/net_swarm.sh failed 4 runs of 10 at 10 ms, survivors missing chunks
 * promised or pulled from partners that died or lagged; the links now
 * report a partner that stops answering (ptv_node_partner_unanswered) and
 * a peer keeps or refuses a promise within 2 chunk times: 7 of 7 runs
 * passed. Two faults that made longer naps fail outright are fixed too:
 * congestion control took the naps for queueing delay, and libnice links
 * started from idle-priority sources, which a napping loop starved. */
static void set_poll_interval(uint32_t chunk_us) {
  if (H.cfg.poll_us < 0) {
    H.poll_us = 0;
  } else if (H.cfg.poll_us > 0) {
    H.poll_us = (ptv_tstamp)H.cfg.poll_us;
  } else {
    ptv_tstamp t = chunk_us / 10u;
    H.poll_us = t < PTV_MS ? PTV_MS : t > 10 * PTV_MS ? 10 * PTV_MS : t;
  }
  ptv_links_set_poll_interval(H.links, H.poll_us);
}

/* Runs the loop, handling I/O at most every H.poll_us: datagrams from
 * many partners arrive a few ms apart, and waking for each one is the
 * largest cost of a peer (each wakeup a context switch, and a wakeup for
 * the sender to pay too). Sleeping between passes lets them queue and be
 * taken in one pass (set_poll_interval has the figures). */
static void run_loop(void) {
  ptv_tstamp t0 = ptv_rt_now();
  while (uv_run(H.loop, UV_RUN_ONCE)) {
    ptv_tstamp t1 = ptv_rt_now();
    if (H.poll_us && !H.stopping) {
      /* a pass that came quickly sleeps the rest of the interval; one that
       * waited longer (idle, then woken) sleeps a whole interval */
      ptv_tstamp nap = t1 - t0 < H.poll_us ? H.poll_us - (t1 - t0) : H.poll_us;
      struct timespec ts = {(time_t)(nap / PTV_S), (long)(nap % PTV_S) * 1000L};
      nanosleep(&ts, NULL);
      t1 = ptv_rt_now();
    }
    t0 = t1;
  }
}

/* ---- node callbacks ------------------------------------------------------- */

/* Test aid (PTV_TEST_FORGE=1): this peer corrupts one byte of every chunk it
 * forwards, keeping the source's signature, so tests can watch honest
 * peers refuse the forgery, drop and report its sender. */
static int g_forge;

/* Engine messages sent, by wire type (byte 1 of the header): /stats shows
 * where a peer's control traffic goes. */
static uint64_t g_msgs_out[PTV_MSG_REPORT + 1];
static const char *const MSG_NAMES[PTV_MSG_REPORT + 1] = {
    [PTV_MSG_JOIN] = "join",         [PTV_MSG_PEERS] = "peers",     [PTV_MSG_LEAVE] = "leave",
    [PTV_MSG_HEARTBEAT] = "heartbeat", [PTV_MSG_SHUFFLE] = "shuffle", [PTV_MSG_CONNECT] = "connect",
    [PTV_MSG_CONNECT + 1] = "accept", [PTV_MSG_DISCONNECT] = "disconnect",
    [PTV_MSG_BUFFERMAP] = "buffermap", [PTV_MSG_REQUEST] = "request", [PTV_MSG_CHUNK] = "chunk",
    [PTV_MSG_BUSY] = "busy",         [PTV_MSG_OFFER] = "offer",     [PTV_MSG_SELECT] = "select",
    [PTV_MSG_STRIPES] = "stripes",   [PTV_MSG_REPORT] = "report"};

static int node_send(void *user, ptv_id to, const uint8_t *buf, size_t len, size_t vlen, int bulk) {
  (void)user;
  (void)vlen;
  if (to == PTV_ID_NONE) return -1;
  if (len >= PTV_WIRE_HDRLEN && buf[1] <= PTV_MSG_REPORT) g_msgs_out[buf[1]]++;
  const ptv_node_config *nc = ptv_node_config_get(H.node);
  if (to == nc->tracker) return ptv_tclient_send(H.tc, buf, len) == 0 ? 0 : -1;
  /* A Cyclon shuffle (or its answer) to a peer we have no path to goes
   * through the tracker: one relayed message instead of an ICE set-up
   * (a libnice stream, tens of datagrams, a key exchange, and the tracker
   * relaying the signalling anyway). Shuffles go every 2 s to the oldest
   * entry of the view, rarely a partner: at 30 peers this was most of a
   * peer's ~50 path set-ups a minute. Without the tracker no path could
   * be set up either. */
  if (len >= PTV_WIRE_HDRLEN && buf[1] == PTV_MSG_SHUFFLE && len <= PTV_CTL_SIGNAL_MAX &&
      !ptv_links_path_up(H.links, to) && H.tc && ptv_tclient_up(H.tc) &&
      ptv_tclient_signal(H.tc, to, PTV_SIG_OVERLAY, buf, len) == 0) {
    H.relayed_out++;
    return 0;
  }
  if (g_forge && bulk && len > 200) {
    uint8_t *copy = malloc(len);
    if (!copy) return -1;
    memcpy(copy, buf, len);
    copy[len - 100] ^= 0x5a; /* inside the payload, after header and signature */
    int rv = ptv_links_send(H.links, to, copy, len, 1, ptv_rt_now() + CHUNK_DEADLINE_US);
    free(copy);
    return rv == 0 ? 0 : -1;
  }
  int rv = ptv_links_send(H.links, to, buf, len, bulk, bulk ? ptv_rt_now() + CHUNK_DEADLINE_US : 0);
  return rv == 0 ? 0 : -1;
}

static uint64_t node_rand(void *user) {
  (void)user;
  H.rng ^= H.rng << 13;
  H.rng ^= H.rng >> 7;
  H.rng ^= H.rng << 17;
  return H.rng;
}

static int node_sign(void *user, const ptv_msg_chunk *c, uint8_t *sig) {
  (void)user;
  return ptv_chunksig_sign(c, H.id.sk, sig);
}

static int node_verify(void *user, const ptv_msg_chunk *c) {
  (void)user;
  return ptv_chunksig_verify(c, H.pub_pk);
}

/* ---- GET /stream.ts ------------------------------------------------------------
 * Every open player gets the played chunks' bytes in order, from the first
 * played chunk that starts with a keyframe after it connected (like
 * --record); chunks we did not have are skipped. A player that cannot keep
 * up (its ptv_http queue is full) is dropped: skipping part of an MPEG-TS
 * stream would hand it undecodable data anyway. */
struct player {
  struct player *next;
  ptv_http_stream *s;
  int started; /* a keyframe chunk has gone out */
};

static void player_forget(struct player *pl) {
  for (struct player **pp = &H.players; *pp; pp = &(*pp)->next)
    if (*pp == pl) {
      *pp = pl->next;
      H.nplayers--;
      break;
    }
  free(pl);
}

/* the client went away (or the server is stopping) */
static void player_closed(ptv_http_stream *s, void *user) {
  ptv_http_stream_close(s);
  player_forget(user);
}

static void players_write(const uint8_t *p, uint32_t len, int key) {
  struct player *pl = H.players, *next;
  for (; pl; pl = next) {
    next = pl->next;
    if (!pl->started && !key) continue;
    pl->started = 1;
    int rv = ptv_http_stream_write(pl->s, p, len);
    if (rv == 0) continue;
    if (rv == PTV_ERR_CLOSED) {
      ptv_http_stream_close(pl->s); /* on_close will not fire any more */
    } else {
      ptv_rt_log(1, "http: dropping a /stream.ts client: %s",
                 rv == PTV_ERR_AGAIN ? "it does not keep up" : ptv_strerror(rv));
      ptv_http_stream_abort(pl->s);
    }
    player_forget(pl);
  }
}

/* ends every player's response (shutdown) */
static void players_close_all(void) {
  while (H.players) {
    ptv_http_stream_close(H.players->s);
    player_forget(H.players);
  }
}

static void http_stream_ts(ptv_http_reply *r, void *user) {
  (void)user;
  if (H.stopping) {
    r->status = 503;
    ptv_http_reply_printf(r, "stopping\n");
    return;
  }
  if (ptv_http_reply_is_head(r)) {
    /* headers only: nothing to wait for */
    ptv_http_stream_close(ptv_http_reply_stream(r, "video/mp2t", NULL, NULL));
    return;
  }
  struct player *pl = calloc(1, sizeof(*pl));
  if (!pl) {
    r->status = 503;
    return;
  }
  pl->s = ptv_http_reply_stream(r, "video/mp2t", player_closed, pl);
  if (!pl->s) { /* the client gets 500 */
    free(pl);
    return;
  }
  pl->next = H.players;
  H.players = pl;
  H.nplayers++;
}

/* The played stream, to the output (a player) or to the parser that fills
 * /stats "media". */
static void media_playout(const uint8_t *p, uint32_t len, int key, int present) {
  const ptv_host_output *o = H.cfg.output;
  if (o && !H.output_stopped) {
    if (present) o->chunk(o->user, p, len, key);
    else o->gap(o->user);
  } else if (H.ts) {
    if (!present) {
      ptv_ts_gap(H.ts);
      return;
    }
    ptv_ts_chunk(H.ts, p, len, key);
    if (!H.ts_first) {
      ptv_ts_info ti;
      ptv_ts_get_info(H.ts, &ti);
      if (ti.video_frames) H.ts_first = ptv_rt_now();
    }
  }
}

static void node_playout(void *user, ptv_chunk_id id, int present, ptv_tstamp now) {
  (void)user;
  const uint8_t *p = NULL;
  uint32_t len = 0;
  int flags = 0;
  if (!present && ptv_rt_verbosity >= 2) {
    /* why, from the engine's counters (counted just before this call) */
    static uint64_t way, held;
    ptv_node_stats st;
    ptv_id from = 0;
    int offered = 0;
    ptv_tstamp until = 0;
    ptv_node_get_stats(H.node, &st);
    if (ptv_node_pending(H.node, id, &from, &offered, &until))
      ptv_rt_log(2, "missed chunk %u: %s %u (we would give up on it at %+.0f ms)", id,
                 offered ? "promised by" : "pulled from", from, ((double)until - (double)now) / 1e3);
    else
      ptv_rt_log(2, "missed chunk %u: %s", id,
                 st.miss_on_way > way ? "it was on its way"
                 : st.miss_held > held ? "a partner held it, nobody asked"
                                       : "no partner held it");
    way = st.miss_on_way;
    held = st.miss_held;
  }
  if (present && ptv_node_chunk_payload(H.node, id, &p, &len, &flags) != 0) present = 0;
  if (present && (flags & PTV_CHUNK_STALLED)) { /* a notice from the source, not media */
    H.stall_notices++;
    if (!H.stalled) ptv_rt_log(1, "channel stalled: the source's input delivers nothing (chunk %u)", id);
    H.stalled = 1;
    return;
  }
  if (present && H.stalled) {
    H.stalled = 0;
    ptv_rt_log(1, "channel resumed (chunk %u)", id);
    /* the source rebuilt its input: a new stream, which the recording, the
     * players and the media output take up again at its first keyframe */
    H.rec_keyframe = 0;
    for (struct player *pl = H.players; pl; pl = pl->next) pl->started = 0;
    media_playout(NULL, 0, 0, 0);
  }
  int key = (flags & PTV_CHUNK_KEYFRAME) != 0;
  media_playout(p, len, key, present);
  if ((!H.rec && !H.players) || !present) return;
  if (H.players) players_write(p, len, key);
  if (!H.rec) return;
  /* The recording begins at the first played chunk that starts with a
   * keyframe: what comes before cannot be decoded on its own. */
  if (!H.rec_keyframe && !key) return;
  H.rec_keyframe = 1;
  fwrite(p, 1, len, H.rec);
}

static void node_chunk(void *user, ptv_id from, ptv_chunk_id id, ptv_tstamp now) {
  (void)user;
  ptv_tstamp ts;
  if (!H.first_chunk) H.first_chunk = now;
  if (ptv_node_chunk_ts(H.node, id, &ts) != 0) return;
  uint64_t ms = now > ts ? (now - ts) / 1000 : 0;
  /* older: stamped before this process started (a joiner's first chunks,
   * whose delay is mostly their age at the join, not the transport's) */
  if (H.dlog)
    fprintf(H.dlog, "%u %llu %u %d\n", id, (unsigned long long)(now > ts ? now - ts : 0), from,
            ts < H.started);
  H.delay_hist[ms < DELAY_BUCKETS - 1 ? ms : DELAY_BUCKETS - 1]++;
  H.delay_n++;
}

/* The q-quantile of the delays seen, in ms (-1: none yet). */
static double delay_quantile(double q) {
  if (!H.delay_n) return -1;
  uint64_t want = (uint64_t)(q * (double)(H.delay_n - 1)) + 1, seen = 0;
  for (unsigned i = 0; i < DELAY_BUCKETS; i++)
    if ((seen += H.delay_hist[i]) >= want) return i + 0.5;
  return DELAY_BUCKETS;
}

static void node_play_start(void *user, ptv_chunk_id first, ptv_tstamp now) {
  (void)user;
  H.play_at = now;
  ptv_rt_log(1, "playing from chunk %u, %.2f s after start", first,
             (double)(now - H.started) / 1e6);
}

/* ---- tracker connection ------------------------------------------------------ */

static const ptv_node_callbacks NODE_CBS = {
    .send = node_send,
    .rand = node_rand,
    .on_playout = node_playout,
    .on_play_start = node_play_start,
    .on_chunk = node_chunk,
    .sign_chunk = node_sign,
    .verify_chunk = node_verify,
};

static void source_tick(uv_timer_t *t);

static void tc_welcome(void *user, const ptv_ctl_welcome *w) {
  (void)user;
  if (H.node) {
    if (w->id != H.self)
      ptv_rt_log(0, "tracker gave id %u after a reconnect (we are %u); partners keep the old one",
                 w->id, H.self);
    else
      ptv_rt_log(1, "tracker connection back (id %u)", w->id);
    /* a restarted tracker knows no members: be handed out again */
    ptv_node_rejoin(H.node, ptv_rt_now());
    rearm();
    return;
  }
  H.self = w->id;
  H.chunk_us = w->chunk_us;
  set_poll_interval(H.cfg.role == PTV_ROLE_SOURCE ? H.cfg.chunk_us : w->chunk_us);
  memcpy(H.pub_pk, w->publisher_pk, 32);
  ptv_links_set_self(H.links, w->id);
  ptv_node_config c;
  ptv_node_config_default(&c);
  c.self = w->id;
  c.tracker = w->tracker;
  c.role = H.cfg.role;
  /* The engine plans chunk uploads at 90% of the limit: the links' pacer
   * enforces the limit on whole datagrams (SRTP and link headers, acks,
   * control, repairs: 5-8% more), and an engine planning at 100% fell
   * behind it, so copies piled up in the links and each took 3x its time
   * (source-to-peer delay p50 112 ms for an 18.75 kB chunk at 6 Mbit/s). */
  c.upload_kbps = H.cfg.upload_kbps / 10 * 9;
  c.carry_payload = 1;
  /* A viewer: late chunks' pauses are won back (glass-to-glass latency at
   * 30 peers with 100 ms chunks: the lag only grew, 0.8-1.1 s). */
  c.live_catchup = H.cfg.role == PTV_ROLE_PEER;
  if (H.cfg.buffer_us) c.buffer_us = H.cfg.buffer_us;
  if (H.cfg.chandelier) c.strategy = &ptv_strategy_chandelier;
  if (H.cfg.partners) {
    /* A strong uploader may serve many: accept as many as it seeks, plus
     * room for the default's 6 beyond its 8 (partners that came to us). */
    c.target_partners = H.cfg.partners;
    c.max_partners = H.cfg.partners + 6 > 64 ? 64 : (uint8_t)(H.cfg.partners + 6);
  }
  if (H.cfg.role == PTV_ROLE_SOURCE) {
    c.stream_kbps = H.cfg.stream_kbps;
    c.chunk_us = H.cfg.chunk_us;
    c.max_partners = 0;
  }
  H.node = ptv_node_new(&c, &NODE_CBS, NULL);
  if (!H.node || ptv_node_start(H.node, ptv_rt_now()) != 0) {
    ptv_rt_log(0, "cannot start the node engine");
    ptv_node_free(H.node);
    H.node = NULL;
    begin_stop(1);
    return;
  }
  char fp[PTV_IDENTITY_FP_SIZE];
  ptv_identity_fingerprint(ptv_identity_pk(&H.id), fp, sizeof(fp));
  ptv_rt_log(1, "joined channel %s as %u (key %s), %.0f ms chunks", H.cfg.channel, w->id, fp,
             w->chunk_us / 1000.0);
  rearm();
  if (H.cfg.role == PTV_ROLE_SOURCE && H.cfg.input) {
    if (H.cfg.input->start(H.cfg.input->user) != 0) begin_stop(1);
  } else if (H.cfg.role == PTV_ROLE_SOURCE) {
    uv_timer_start(&H.source_timer, source_tick, 0, H.cfg.chunk_us / 1000 ? H.cfg.chunk_us / 1000 : 1);
  }
}

static void tc_overlay(void *user, const uint8_t *buf, size_t len) {
  (void)user;
  if (!H.node) return;
  const ptv_node_config *nc = ptv_node_config_get(H.node);
  ptv_node_recv(H.node, nc->tracker, buf, len, ptv_rt_now());
  rearm();
}

/* A shuffle the tracker relayed (see node_send): the engine takes it as
 * from the peer the tracker names; nothing but shuffles comes this way. */
static void relayed_overlay(const ptv_ctl_signal *s) {
  if (!H.node || s->data_len < PTV_WIRE_HDRLEN || s->data[1] != PTV_MSG_SHUFFLE) {
    H.relayed_refused++;
    return;
  }
  H.relayed_in++;
  ptv_node_recv(H.node, s->peer, s->data, s->data_len, ptv_rt_now());
  rearm();
}

static void tc_signal(void *user, const ptv_ctl_signal *s) {
  (void)user;
  if (s->kind == PTV_SIG_OVERLAY) relayed_overlay(s);
  else ptv_links_on_signal(H.links, s);
}

static void tc_error(void *user, uint16_t code, const char *text, int final) {
  (void)user;
  ptv_rt_log(0, "tracker: %s (error %u)%s", text, code, final ? "" : "; retrying");
  if (final && !H.node) begin_stop(1);
  else if (H.node && code == PTV_CTL_E_NO_CHANNEL) begin_stop(0); /* the channel ended */
  else if (H.node && (code == PTV_CTL_E_BANNED || code == PTV_CTL_E_REPLACED)) begin_stop(1);
}

static void tc_down(void *user, const char *why) {
  (void)user;
  ptv_rt_log(1, "tracker connection lost (%s); streaming goes on, reconnecting", why);
}

static const ptv_tclient_callbacks TC_CBS = {
    .on_welcome = tc_welcome, .on_overlay = tc_overlay, .on_signal = tc_signal,
    .on_error = tc_error, .on_down = tc_down};

/* ---- partner paths ---------------------------------------------------------- */

static void links_deliver(void *user, ptv_id peer, const uint8_t *buf, size_t len) {
  (void)user;
  if (!H.node) return;
  ptv_node_recv(H.node, peer, buf, len, ptv_rt_now());
  rearm();
}

/* The link to `peer` answers nothing: what it owes us is asked of others
 * now, not at the engine's request timeout (sized for slow partners, it
 * outlasted the deadline when partners died: docs/BENCHMARKS.md). */
static void links_unanswered(void *user, ptv_id peer) {
  (void)user;
  if (!H.node) return;
  ptv_node_partner_unanswered(H.node, peer, ptv_rt_now());
  rearm();
}

static int links_signal(void *user, ptv_id peer, uint8_t kind, const uint8_t *data, size_t len) {
  (void)user;
  return ptv_tclient_signal(H.tc, peer, kind, data, len);
}

/* ---- timers -------------------------------------------------------------------- */

static void on_node_timer(uv_timer_t *t) {
  (void)t;
  if (H.node) ptv_node_handle_expiry(H.node, ptv_rt_now());
  rearm();
}

static void rearm(void) {
  if (!H.node || H.stopping) return;
  ptv_tstamp e = ptv_node_get_expiry(H.node), now = ptv_rt_now();
  /* >= 1 ms: a 0 ms timer re-armed from its own callback would run again
   * in the same libuv pass (1.44) and starve I/O. */
  uint64_t ms = e <= now ? 1 : (e - now + 999) / 1000;
  if (ms > 1000) ms = 1000;
  uv_timer_start(&H.node_timer, on_node_timer, ms, 0);
}

/* Synthetic input: MPEG-TS packets (sync byte, PID 0x100, continuity
 * counter) whose payload repeats a marker with the chunk number, so tests
 * can tell the stream's bytes anywhere they would appear in clear. */
static void source_tick(uv_timer_t *t) {
  (void)t;
  if (!H.node || H.stopping) return;
  static uint8_t *buf;
  static uint32_t cap;
  uint32_t size = (uint32_t)((uint64_t)H.cfg.stream_kbps * H.cfg.chunk_us / 8000u);
  size = size / TS_PACKET * TS_PACKET;
  if (size < TS_PACKET) size = TS_PACKET;
  if (size > cap) {
    free(buf);
    buf = malloc(size);
    cap = buf ? size : 0;
    if (!buf) return;
  }
  ptv_node_stats st;
  ptv_node_get_stats(H.node, &st);
  uint32_t chunk = st.held ? st.newest + 1 : 0;
  for (uint32_t off = 0; off < size; off += TS_PACKET) {
    uint8_t *p = buf + off;
    p[0] = 0x47;
    p[1] = (uint8_t)((off == 0 ? 0x40 : 0) | 0x01);
    p[2] = 0x00;
    p[3] = (uint8_t)(0x10 | (H.ts_cc++ & 0x0f));
    int n = snprintf((char *)p + 4, TS_PACKET - 4, MARKER " chunk %u packet %u ", chunk, off / TS_PACKET);
    for (int i = 4 + n; i < TS_PACKET; i++) p[i] = (uint8_t)(i * 7 + chunk);
  }
  int64_t id = ptv_node_source_publish(H.node, buf, size, chunk % 4 == 0, ptv_rt_now());
  if (id < 0) ptv_rt_log(0, "publish: %s", ptv_strerror((int)id));
  rearm();
}

int64_t ptv_host_publish(const uint8_t *buf, size_t len, int flags) {
  if (!H.node || H.stopping || H.cfg.role != PTV_ROLE_SOURCE) return PTV_ERR_INVALID_ARG;
  if (len > PTV_NODE_MAX_PAYLOAD) {
    ptv_rt_log(0, "publish: a chunk of %zu bytes is over the %u-byte limit; dropped", len,
               PTV_NODE_MAX_PAYLOAD);
    return PTV_ERR_INVALID_ARG;
  }
  int64_t id = ptv_node_source_publish(H.node, buf, (uint32_t)len, flags, ptv_rt_now());
  if (id < 0) ptv_rt_log(0, "publish: %s", ptv_strerror((int)id));
  else H.stalled = (flags & PTV_CHUNK_STALLED) != 0; /* the source's /stats says so too */
  rearm();
  return id;
}

static void on_rate_timer(uv_timer_t *t) {
  (void)t;
  if (!H.node) return;
  ptv_node_stats st;
  ptv_node_get_stats(H.node, &st);
  /* kbit/s over the last second, smoothed */
  double up = (double)(st.bytes_up - H.last_up) * 8 / 1000, down = (double)(st.bytes_down - H.last_down) * 8 / 1000;
  H.up_kbps = H.up_kbps ? 0.5 * H.up_kbps + 0.5 * up : up;
  H.down_kbps = H.down_kbps ? 0.5 * H.down_kbps + 0.5 * down : down;
  H.last_up = st.bytes_up;
  H.last_down = st.bytes_down;
}

/* ---- /stats ---------------------------------------------------------------------- */

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

/* /stats "media": the played stream as a viewer sees it (peers only). */
static json_t *media_json(void) {
  if (H.cfg.role != PTV_ROLE_PEER) return json_null();
  ptv_host_media m;
  memset(&m, 0, sizeof(m));
  const ptv_host_output *out = H.cfg.output;
  if (out && !H.output_stopped) {
    out->media(out->user, &m);
  } else if (H.ts) {
    ptv_ts_info ti;
    ptv_ts_get_info(H.ts, &ti);
    m.codec = ti.video_codec;
    m.audio_codec = ti.audio_codec;
    m.width = ti.width;
    m.height = ti.height;
    m.fps = ti.fps;
    m.bitrate_kbps = ti.media_us ? (double)ti.bytes * 8.0 / ((double)ti.media_us / 1e3) : 0;
    /* not decoded: the frames handed on in order, and those lost in gaps */
    m.frames_played = ti.video_frames;
    m.frames_lost = ti.frames_lost;
    m.first_frame_at = H.ts_first;
  }
  json_t *o = json_object();
  json_object_set_new(o, "decoding", json_boolean(m.decoding));
  json_object_set_new(o, "codec", str_or_null(m.codec));
  json_object_set_new(o, "audio_codec", str_or_null(m.audio_codec));
  json_object_set_new(o, "width", m.width ? json_integer(m.width) : json_null());
  json_object_set_new(o, "height", m.height ? json_integer(m.height) : json_null());
  json_object_set_new(o, "fps", m.fps > 0 ? json_real(m.fps) : json_null());
  json_object_set_new(o, "bitrate_kbps", m.bitrate_kbps > 0 ? json_real(m.bitrate_kbps) : json_null());
  json_object_set_new(o, "frames_played", json_integer((json_int_t)m.frames_played));
  json_object_set_new(o, "frames_dropped", json_integer((json_int_t)(m.frames_late + m.frames_lost)));
  json_object_set_new(o, "frames_late", json_integer((json_int_t)m.frames_late));
  json_object_set_new(o, "frames_lost", json_integer((json_int_t)m.frames_lost));
  json_object_set_new(o, "first_frame_s", m.first_frame_at ? json_real((double)(m.first_frame_at - H.started) / 1e6)
                                                           : json_null());
  return o;
}

static json_t *stats_json(void) {
  json_t *o = json_object();
  ptv_node_stats st;
  memset(&st, 0, sizeof(st));
  if (H.node) ptv_node_get_stats(H.node, &st);
  const char *state = !H.node ? "connecting"
                      : H.cfg.role == PTV_ROLE_SOURCE ? (H.stalled ? "stalled" : "source")
                      : !st.playing ? "joining"
                      : H.stalled ? "stalled" : "playing";
  json_object_set_new(o, "state", json_string(state));
  json_object_set_new(o, "role", json_string(H.cfg.role == PTV_ROLE_SOURCE ? "source" : "peer"));
  json_object_set_new(o, "channel", json_string(H.cfg.channel));
  json_object_set_new(o, "id", H.node ? json_integer(H.self) : json_null());
  json_object_set_new(o, "uptime_s", json_real((double)(ptv_rt_now() - H.started) / 1e6));
  json_object_set_new(o, "startup_s", H.play_at ? json_real((double)(H.play_at - H.started) / 1e6) : json_null());
  json_object_set_new(o, "lag_s", st.playing ? json_real((double)st.lag_us / 1e6) : json_null());
  double cont = st.chunks_due ? 1.0 - (double)st.chunks_missed / (double)st.chunks_due : 1.0;
  json_object_set_new(o, "continuity", json_real(cont));
  json_object_set_new(o, "chunks_due", json_integer((json_int_t)st.chunks_due));
  json_object_set_new(o, "chunks_missed", json_integer((json_int_t)st.chunks_missed));
  json_object_set_new(o, "chunks_bad", json_integer((json_int_t)st.chunks_bad));
  json_object_set_new(o, "stall_notices", json_integer((json_int_t)H.stall_notices));
  json_object_set_new(o, "partners", json_integer(H.node ? ptv_node_npartners(H.node) : 0));
  json_t *ids = json_array();
  if (H.node) {
    ptv_partner_info pi[64];
    size_t k = ptv_node_partners(H.node, pi, 64);
    for (size_t i = 0; i < k; i++) json_array_append_new(ids, json_integer(pi[i].id));
  }
  json_object_set_new(o, "partner_ids", ids);
  json_object_set_new(o, "down_kbps", json_real(H.down_kbps));
  json_object_set_new(o, "up_kbps", json_real(H.up_kbps));
  json_object_set_new(o, "bytes_up", json_integer((json_int_t)st.bytes_up));
  json_object_set_new(o, "bytes_down", json_integer((json_int_t)st.bytes_down));
  json_object_set_new(o, "delay_ms_mean",
                      json_real(st.recv_new ? (double)st.recv_delay_us / (double)st.recv_new / 1e3 : 0));
  json_object_set_new(o, "chunks_received", json_integer((json_int_t)st.recv_new));
  json_object_set_new(o, "http_streams", json_integer(H.nplayers));
  json_object_set_new(o, "first_chunk_s", H.first_chunk ? json_real((double)(H.first_chunk - H.started) / 1e6)
                                                        : json_null());
  json_t *d = json_object();
  json_object_set_new(d, "n", json_integer((json_int_t)H.delay_n));
  json_object_set_new(d, "p50", json_real(delay_quantile(0.50)));
  json_object_set_new(d, "p95", json_real(delay_quantile(0.95)));
  json_object_set_new(d, "p99", json_real(delay_quantile(0.99)));
  json_object_set_new(o, "delay_ms", d);
  json_object_set_new(o, "media", media_json());
  /* the engine's own counters: what a slow or busy peer is doing */
  json_t *e = json_object();
  json_object_set_new(e, "ctrl_bytes_up", json_integer((json_int_t)st.ctrl_bytes_up));
  json_object_set_new(e, "requests", json_integer((json_int_t)st.req_sent));
  json_object_set_new(e, "request_timeouts", json_integer((json_int_t)st.req_timeouts));
  json_object_set_new(e, "asked_elsewhere", json_integer((json_int_t)st.unanswered));
  json_object_set_new(e, "promises_refused", json_integer((json_int_t)st.promises_expired));
  json_object_set_new(e, "offers", json_integer((json_int_t)st.offers_sent));
  json_object_set_new(e, "offers_declined", json_integer((json_int_t)st.offers_declined));
  json_object_set_new(e, "busy", json_integer((json_int_t)st.busy_recv));
  json_object_set_new(e, "duplicates", json_integer((json_int_t)st.dup_chunks));
  json_object_set_new(e, "late", json_integer((json_int_t)st.late_chunks));
  /* why chunks were missed: on their way, held by a partner nobody asked,
   * held by no partner */
  json_object_set_new(e, "missed_on_way", json_integer((json_int_t)st.miss_on_way));
  json_object_set_new(e, "missed_held", json_integer((json_int_t)st.miss_held));
  json_object_set_new(e, "missed_nowhere", json_integer((json_int_t)st.miss_nowhere));
  json_object_set_new(e, "partner_changes", json_integer(st.partner_changes));
  json_t *mo = json_object();
  for (unsigned t = 0; t <= PTV_MSG_REPORT; t++)
    if (MSG_NAMES[t]) json_object_set_new(mo, MSG_NAMES[t], json_integer((json_int_t)g_msgs_out[t]));
  json_object_set_new(e, "messages_out", mo);
  json_object_set_new(o, "engine", e);
  json_object_set_new(o, "tracker_connected", json_boolean(H.tc && ptv_tclient_up(H.tc)));
  json_t *rl = json_object();
  json_object_set_new(rl, "out", json_integer((json_int_t)H.relayed_out));
  json_object_set_new(rl, "in", json_integer((json_int_t)H.relayed_in));
  json_object_set_new(rl, "refused", json_integer((json_int_t)H.relayed_refused));
  json_object_set_new(o, "tracker_relayed", rl);
  ptv_links_stats ls;
  ptv_links_get_stats(H.links, &ls);
  json_t *l = json_object();
  json_object_set_new(l, "up", json_integer(ls.paths_up));
  json_object_set_new(l, "setting_up", json_integer(ls.paths_setting_up));
  json_object_set_new(l, "opened", json_integer((json_int_t)ls.paths_opened));
  json_object_set_new(l, "failed", json_integer((json_int_t)ls.paths_failed));
  json_object_set_new(l, "srtp_rejected", json_integer((json_int_t)ls.srtp_rejected));
  json_object_set_new(l, "retransmits", json_integer((json_int_t)ls.retransmits));
  json_object_set_new(l, "unanswered", json_integer((json_int_t)ls.unanswered));
  json_object_set_new(l, "datagrams_out", json_integer((json_int_t)ls.dgrams_out));
  json_object_set_new(l, "datagrams_in", json_integer((json_int_t)ls.dgrams_in));
  json_object_set_new(l, "datagrams_ack_only", json_integer((json_int_t)ls.dgrams_ack_only));
  json_object_set_new(l, "datagrams_control", json_integer((json_int_t)ls.dgrams_ctrl));
  json_object_set_new(l, "datagrams_soft", json_integer((json_int_t)ls.dgrams_soft));
  json_object_set_new(l, "sends", json_integer((json_int_t)ls.sends));
  json_object_set_new(l, "gso_batches", json_integer((json_int_t)ls.gso_batches));
  /* selected: the candidate pairs in use; links: the same paths keyed by
   * partner, with what the link layer measures on each */
  json_t *sel = json_array(), *links = json_array();
  if (H.node) {
    ptv_partner_info pi[64];
    size_t k = ptv_node_partners(H.node, pi, 64);
    char desc[160];
    for (size_t i = 0; i < k; i++) {
      ptv_link_stats lk;
      if (ptv_links_describe(H.links, pi[i].id, desc, sizeof(desc)) != 0 ||
          ptv_links_link_stats(H.links, pi[i].id, &lk) != 0)
        continue;
      json_array_append_new(sel, json_string(desc));
      json_t *x = json_object();
      json_object_set_new(x, "partner", json_integer(pi[i].id));
      json_object_set_new(x, "pair", json_string(desc));
      json_object_set_new(x, "srtt_ms", json_real((double)lk.srtt / 1e3));
      json_object_set_new(x, "min_rtt_ms", json_real((double)lk.min_rtt / 1e3));
      json_object_set_new(x, "rate_kbps", json_real((double)lk.rate_bps / 1e3));
      json_object_set_new(x, "queued_bytes", json_integer((json_int_t)lk.queue_bytes));
      json_object_set_new(x, "retransmits", json_integer((json_int_t)lk.retransmits));
      json_object_set_new(x, "delay_events", json_integer((json_int_t)lk.delay_events));
      json_object_set_new(x, "loss_events", json_integer((json_int_t)lk.loss_events));
      json_array_append_new(links, x);
    }
  }
  json_object_set_new(l, "selected", sel);
  json_object_set_new(l, "links", links);
  json_object_set_new(o, "paths", l);
  return o;
}

static void http_stats(ptv_http_reply *r, void *user) {
  (void)user;
  json_t *o = stats_json();
  char *s = json_dumps(o, JSON_INDENT(1));
  r->content_type = "application/json";
  if (s) ptv_http_reply_printf(r, "%s\n", s);
  free(s);
  json_decref(o);
}

/* ---- life cycle ----------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h) {
  (void)h;
  H.handles--;
}

static void links_freed(void *arg) {
  (void)arg;
  H.links = NULL;
}

static void http_stopped(void *arg) {
  (void)arg;
  H.http = NULL;
}

static void stop_output(void) {
  if (!H.cfg.output || H.output_stopped) return;
  H.output_stopped = 1;
  H.cfg.output->stop(H.cfg.output->user);
}

static void stop_input(void) {
  if (!H.cfg.input || H.input_stopped) return;
  H.input_stopped = 1;
  H.cfg.input->stop(H.cfg.input->user);
}

static void finish(uv_timer_t *t) {
  (void)t;
  ptv_tclient_stop(H.tc);
  H.tc = NULL;
  players_close_all();
  if (H.http) ptv_http_stop(H.http, http_stopped, NULL);
  ptv_links_free(H.links, links_freed, NULL);
  uv_handle_t *hs[] = {(uv_handle_t *)&H.node_timer, (uv_handle_t *)&H.source_timer,
                       (uv_handle_t *)&H.stop_timer, (uv_handle_t *)&H.rate_timer,
                       (uv_handle_t *)&H.sigint, (uv_handle_t *)&H.sigterm};
  for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
    if (!uv_is_closing(hs[i])) uv_close(hs[i], handle_closed);
}

static void write_stats_file(void) {
  if (!H.cfg.stats_file) return;
  json_t *o = stats_json();
  if (json_dump_file(o, H.cfg.stats_file, JSON_INDENT(1)) != 0)
    ptv_rt_log(0, "cannot write %s", H.cfg.stats_file);
  json_decref(o);
}

/* Says goodbye (LEAVE to partners and tracker), lets it go out, then closes. */
static void begin_stop(int code) {
  if (H.stopping) return;
  H.stopping = 1;
  H.exit_code = code;
  write_stats_file();
  /* players get the end of their response while we say goodbye */
  players_close_all();
  uv_timer_stop(&H.node_timer);
  uv_timer_stop(&H.source_timer);
  stop_input();
  stop_output();
  if (H.node) ptv_node_leave(H.node, ptv_rt_now());
  /* A source stopped on purpose ends its channel (a crashed one does not:
   * it may come back and take the channel again). */
  if (H.cfg.role == PTV_ROLE_SOURCE && H.tc && code == 0) ptv_tclient_end(H.tc);
  uv_timer_start(&H.stop_timer, finish, 200, 0);
}

static void on_signal(uv_signal_t *s, int sig) {
  (void)s;
  ptv_rt_log(1, "signal %d: leaving", sig);
  begin_stop(0);
}

static void on_duration(uv_timer_t *t) {
  (void)t;
  begin_stop(0);
}

static void on_grace(uv_timer_t *t) {
  (void)t;
  begin_stop(H.grace_code);
}

void ptv_host_stop(int code, uint32_t grace_ms) {
  if (H.stopping || H.grace_pending) return;
  if (!grace_ms) {
    begin_stop(code);
    return;
  }
  stop_input();
  /* the stop timer is the grace period's from here on (it replaces a
   * pending --duration; a signal still stops at once) */
  H.grace_pending = 1;
  H.grace_code = code;
  uv_timer_start(&H.stop_timer, on_grace, grace_ms, 0);
}

int ptv_host_run(const ptv_host_config *c) {
  memset(&H, 0, sizeof(H));
  H.cfg = *c;
  if (H.cfg.role == PTV_ROLE_SOURCE && !H.cfg.upload_kbps) H.cfg.upload_kbps = 4 * H.cfg.stream_kbps;
  if (!H.cfg.upload_kbps) H.cfg.upload_kbps = 10000;
  if (sodium_init() < 0) {
    fprintf(stderr, "libsodium failed to start\n");
    return 1;
  }
  H.rng = ((uint64_t)randombytes_random() << 32 | randombytes_random()) | 1;
  const char *forge = getenv("PTV_TEST_FORGE");
  g_forge = forge && strcmp(forge, "1") == 0 && c->role == PTV_ROLE_PEER;
  if (g_forge) ptv_rt_log(0, "PTV_TEST_FORGE=1: this peer corrupts every chunk it sends (a test)");
  char err[512];
  if (c->key_path) {
    if (ptv_identity_load_or_create(&H.id, c->key_path, err, sizeof(err)) != 0) {
      fprintf(stderr, "cannot use key file %s: %s\n", c->key_path, err);
      return 1;
    }
  } else if (ptv_identity_generate(&H.id) != 0) {
    fprintf(stderr, "cannot generate a key\n");
    return 1;
  }
  if (c->record && !(H.rec = fopen(c->record, "wb"))) {
    perror(c->record);
    return 1;
  }
  if (c->delay_log && !(H.dlog = fopen(c->delay_log, "w"))) {
    perror(c->delay_log);
    return 1;
  }
  H.loop = uv_default_loop();
  H.started = ptv_rt_now();
  ptv_links_config lc = {.id = &H.id, .channel = c->channel, .upload_kbps = H.cfg.upload_kbps,
                         .stun = c->stun, .turn = c->turn, .turn_user = c->turn_user,
                         .turn_pass = c->turn_pass, .local_addr = c->local_addr,
                         .relay_only = c->relay_only};
  ptv_links_callbacks lcb = {.deliver = links_deliver, .signal = links_signal,
                             .unanswered = links_unanswered};
  int rv = ptv_links_new(&H.links, H.loop, &lc, &lcb, NULL);
  if (rv != 0) {
    fprintf(stderr, "cannot set up the network side: %s%s\n", ptv_strerror(rv),
            rv == PTV_ERR_INVALID_ARG ? " (STUN/TURN must be numeric HOST:PORT; --turn needs"
                                        " --turn-user and --turn-pass; --relay-only needs --turn)"
                                      : "");
    return 1;
  }
  ptv_tclient_config tcc = {.tracker = c->tracker, .channel = c->channel, .role = c->role,
                            .id = &H.id, .nat = PTV_NAT_OPEN, .upload_kbps = H.cfg.upload_kbps,
                            .chunk_us = c->chunk_us, .stream_kbps = c->stream_kbps,
                            .description = c->description};
  rv = ptv_tclient_start(&H.tc, H.loop, &tcc, &TC_CBS, NULL);
  if (rv != 0) {
    fprintf(stderr, "cannot use tracker %s / channel %s: %s\n", c->tracker, c->channel,
            rv == PTV_ERR_PARSE ? "the tracker must be HOST:PORT"
                                : "channel names are 1-64 of A-Z a-z 0-9 . _ -");
    return 1;
  }
  if (c->http) {
    char host[256];
    uint16_t port;
    ptv_http_config hc = {.errbuf = err, .errbuf_len = sizeof(err)};
    if (ptv_rt_split_hostport(c->http, host, sizeof(host), &port) != 0 ||
        ptv_http_start(&H.http, H.loop, host, port, &hc) != 0) {
      fprintf(stderr, "cannot serve HTTP on %s: %s\n", c->http, err);
      return 1;
    }
    ptv_http_route(H.http, "/stats", http_stats, NULL);
    /* a source plays nothing out: /stream.ts is a peer's (404 here) */
    if (c->role == PTV_ROLE_PEER) ptv_http_route(H.http, "/stream.ts", http_stream_ts, NULL);
    printf("http %s:%u\n", host, (unsigned)ptv_http_port(H.http));
    fflush(stdout);
  }
  uv_timer_init(H.loop, &H.node_timer);
  uv_timer_init(H.loop, &H.source_timer);
  uv_timer_init(H.loop, &H.stop_timer);
  uv_timer_init(H.loop, &H.rate_timer);
  uv_signal_init(H.loop, &H.sigint);
  uv_signal_init(H.loop, &H.sigterm);
  H.handles = 6;
  uv_signal_start(&H.sigint, on_signal, SIGINT);
  uv_signal_start(&H.sigterm, on_signal, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  uv_timer_start(&H.rate_timer, on_rate_timer, 1000, 1000);
  /* without an output, /stats "media" comes from parsing (NULL: none) */
  if (c->role == PTV_ROLE_PEER && !c->output) ptv_ts_new(&H.ts, NULL, NULL);
  if (c->duration_s > 0) uv_timer_start(&H.stop_timer, on_duration, (uint64_t)(c->duration_s * 1000), 0);
  run_loop();
  if (H.node) ptv_node_free(H.node);
  ptv_ts_free(H.ts);
  if (H.rec) fclose(H.rec);
  if (H.dlog) fclose(H.dlog);
  ptv_identity_wipe(&H.id);
  uv_loop_close(H.loop);
  return H.exit_code;
}

/* ---- shared command line ------------------------------------------------ */

int ptv_host_option(ptv_host_config *c, int code, const char *arg, const char *prog) {
  char *e;
  switch (code) {
  case PTV_OPT_TRACKER: c->tracker = arg; return 1;
  case PTV_OPT_CHANNEL: c->channel = arg; return 1;
  case PTV_OPT_HTTP: c->http = arg; return 1;
  case PTV_OPT_UPLOAD:
    if (ptv_rt_parse_rate(arg, &c->upload_kbps) != 0) {
      fprintf(stderr, "%s: --upload-limit wants a rate such as 4M or 800k, not '%s'\n", prog, arg);
      return -1;
    }
    return 1;
  case PTV_OPT_STUN: c->stun = arg; return 1;
  case PTV_OPT_TURN: c->turn = arg; return 1;
  case PTV_OPT_TURN_USER: c->turn_user = arg; return 1;
  case PTV_OPT_TURN_PASS: c->turn_pass = arg; return 1;
  case PTV_OPT_LOCAL: c->local_addr = arg; return 1;
  case PTV_OPT_RELAY_ONLY: c->relay_only = 1; return 1;
  case PTV_OPT_KEY: c->key_path = arg; return 1;
  case PTV_OPT_DURATION:
    c->duration_s = strtod(arg, &e);
    if (*e || c->duration_s <= 0) {
      fprintf(stderr, "%s: --duration wants seconds, not '%s'\n", prog, arg);
      return -1;
    }
    return 1;
  case PTV_OPT_STATS_FILE: c->stats_file = arg; return 1;
  case PTV_OPT_POLL: {
    double ms = strtod(arg, &e);
    if (strcmp(arg, "auto") == 0) {
      c->poll_us = 0;
    } else if (*e || e == arg || ms < 0 || ms > 100) {
      fprintf(stderr, "%s: --poll-interval wants milliseconds 0..100 or 'auto', not '%s'\n", prog,
              arg);
      return -1;
    } else {
      c->poll_us = ms > 0 ? (int32_t)(ms * 1000) : -1;
      if (c->poll_us == 0) c->poll_us = -1;
    }
    return 1;
  }
  case 'v':
  case PTV_OPT_VERBOSE: ptv_rt_verbosity++; return 1;
  case 'q':
  case PTV_OPT_QUIET: ptv_rt_verbosity = 0; return 1;
  default: return 0;
  }
}

int ptv_host_options_done(const ptv_host_config *c, int optind_, int argc, const char *prog) {
  if (optind_ < argc || !c->tracker || !c->channel) {
    fprintf(stderr, "%s: %s (see --help)\n", prog,
            optind_ < argc ? "unexpected argument" : "--tracker and --channel are required");
    return -1;
  }
  return 0;
}
