/* ptv_links.c -- see ptv_links.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ptv_links.h"

#include <glib.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_ice.h"
#include "ptv_kx.h"
#include "ptv_link.h"
#include "ptv_pacer.h"
#include "ptv_rt.h"
#include "ptv_srtp.h"
#include "ptv_uvglib.h"
#include "ptv_wire.h"

#define MTU 1160                 /* link datagram; + SRTP 28 + UDP/IP fits 1280 */
#define BATCH 16                 /* datagrams one path sends in one go (a chunk's worth) */
#define PENDING_MAX 64           /* messages held per path before it is up */
#define RETRY_US (5 * PTV_S)     /* a failed path is not retried sooner */
#define MAX_PATHS 256
#define SETUP_DEFAULT_US (10 * PTV_S)
/* No engine message either way for this long: the partnership is over (or
 * there was none: gossip), close the path. Partners talk every chunk; a
 * path to a peer sampled for gossip (about one a second) mostly idles. At
 * 15 s a peer of 30 held about 20 paths for 7-14 partners, each a GLib
 * source in every loop pass; at 5 s about 16, for 3-4% less CPU (bench-net
 * --compare, docs/BENCHMARKS.md session 14) and as many path set-ups. */
#define PATH_IDLE_US (5 * PTV_S)
/* Control messages to one partner made in one loop pass travel as one link
 * message (ptv_wire frames back to back): buffer maps, offers and selects
 * were most datagrams, each a system call, an SRTP seal and an ack. */
#define BUNDLE_MAX (MTU - PTV_LINK_FRAG_OVERHEAD)
_Static_assert(BUNDLE_MAX <= MTU - PTV_LINK_SOFT_OVERHEAD, "a bundle fits a soft message");

enum { PS_SETUP = 0, PS_UP = 1, PS_FAILED = 2 };

typedef struct pending {
  struct pending *next;
  size_t len;
  int bulk;
  ptv_tstamp deadline;
  uint8_t data[];
} pending;

typedef struct path {
  ptv_links *l;
  ptv_id peer;
  int state;
  ptv_ice_link *ice;
  int ice_up;
  int have_pk, kx_sent, keys_ready, creds_sent;
  uint8_t peer_pk[PTV_IDENTITY_PK_LEN];
  ptv_kx kx;
  uint8_t peer_hello[PTV_KX_HELLO_LEN];
  int have_peer_hello;
  ptv_srtp srtp;
  ptv_link *link;
  /* The pump writes only paths whose link may have something to send: one
   * called since (dirty) or one whose expiry has come. Writing and asking
   * every path each time was 5% of a peer's CPU at 30 peers by perf. */
  int dirty;
  ptv_tstamp expiry; /* ptv_link_get_expiry when last asked */
  pending *pq, **pq_tail;
  unsigned npending;
  ptv_tstamp created, failed_at;
  ptv_tstamp last_use; /* last engine message sent or delivered */
  const char *fail_why; /* failure noticed inside ptv_link_recv: acted on after */
  int unanswered;       /* the link's probes went unanswered: tell the owner */
  uint64_t ua_counted;  /* of the link's unanswered waits, those in l->st */
  char remote_ufrag[64]; /* the partner's current ICE attempt */
  size_t blen;
  int bsoft; /* the bundle holds only ptv_wire_loss_tolerant messages */
  uint8_t bundle[BUNDLE_MAX];
} path;

struct ptv_links {
  uv_loop_t *loop;
  ptv_links_config cfg;
  char channel[80];
  ptv_links_callbacks cb;
  void *user;
  ptv_id self;
  GMainContext *ctx;
  ptv_uvglib glib;
  ptv_ice *ice;
  ptv_pacer pacer;
  ptv_tstamp poll_us; /* the driver's poll interval: pacers' bursts, links' sched_delay */
  uv_timer_t timer;
  uv_prepare_t flush_prep; /* bundles go out before the loop polls ... */
  uv_check_t flush_check;  /* ... and after the callbacks of a poll */
  path *paths[MAX_PATHS];
  unsigned npaths;
  int in_recv; /* inside ptv_link_recv: its callbacks may only queue (ptv_link.h) */
  unsigned rr; /* round-robin start for the write pump */
  int pump_due; /* datagrams came in this pass: pump after GLib's dispatch */
  uint8_t batch[BATCH * (MTU + PTV_SRTP_OVERHEAD)]; /* one path's datagrams, sealed */
  ptv_links_stats st;
  void (*done)(void *);
  void *done_arg;
  int closing;
  char stun_host[256], turn_host[256];
  const char *local[1];
};

static void pump(ptv_links *l, int acks);

static path *find(const ptv_links *l, ptv_id peer) {
  for (unsigned i = 0; i < l->npaths; i++)
    if (l->paths[i]->peer == peer) return l->paths[i];
  return NULL;
}

static void path_free(ptv_links *l, path *p) {
  if (p->state == PS_UP) l->st.paths_up--;
  else if (p->state == PS_SETUP) l->st.paths_setting_up--;
  for (unsigned i = 0; i < l->npaths; i++)
    if (l->paths[i] == p) {
      l->paths[i] = l->paths[--l->npaths];
      break;
    }
  if (p->ice) {
    ptv_ice_link_free(p->ice);
    ptv_uvglib_fds_changed(&l->glib); /* its sockets close: numbers free for reuse */
  }
  ptv_link_free(p->link);
  ptv_srtp_free(&p->srtp);
  ptv_kx_wipe(&p->kx);
  while (p->pq) {
    pending *q = p->pq;
    p->pq = q->next;
    free(q);
  }
  free(p);
}

/* A path that failed: its resources go, a tombstone stays for RETRY_US so
 * the engine's retries do not turn into a storm of ICE setups. */
static void path_fail(ptv_links *l, path *p, const char *why) {
  if (p->state == PS_FAILED) return;
  if (l->in_recv) { /* the link is still in use up the stack */
    p->fail_why = why;
    return;
  }
  ptv_rt_log(2, "path to %u failed: %s", p->peer, why);
  if (p->state == PS_UP) l->st.paths_up--;
  else l->st.paths_setting_up--;
  l->st.paths_failed++;
  p->state = PS_FAILED;
  p->failed_at = ptv_rt_now();
  if (p->ice) {
    ptv_ice_link_free(p->ice);
    ptv_uvglib_fds_changed(&l->glib);
    p->ice = NULL;
  }
  ptv_link_free(p->link);
  p->link = NULL;
  ptv_srtp_free(&p->srtp);
  while (p->pq) {
    pending *q = p->pq;
    p->pq = q->next;
    free(q);
    l->st.queued_dropped++;
  }
  p->npending = 0;
}

/* ---- link layer callbacks ------------------------------------------------- */

/* A link message holds one or more ptv_wire frames (a bundle). */
static void on_link_message(void *user, const uint8_t *buf, size_t len, int bulk) {
  (void)bulk;
  path *p = user;
  p->last_use = ptv_rt_now();
  while (len > 0) {
    size_t flen = len;
    if (len >= 6) {
      uint64_t body = (uint64_t)buf[2] << 24 | (uint64_t)buf[3] << 16 | (uint64_t)buf[4] << 8 | buf[5];
      if (6 + body <= len) flen = 6 + (size_t)body;
    }
    /* a frame that does not fit goes whole: the engine's decoder refuses it */
    p->l->cb.deliver(p->l->user, p->peer, buf, flen);
    if (p->state != PS_UP) return; /* delivering may have failed the path */
    buf += flen;
    len -= flen;
  }
}

/* A bundle of nothing but messages a partner may lose at little cost
 * (ptv_wire_loss_tolerant: buffer maps, declines; the engine takes every
 * message as lossy anyway, the simulator loses them) goes soft
 * (ptv_link_send_soft), so the partner owes no ack for it; unless the
 * link still holds an unwritten soft message, which it would replace.
 * Reliable, each cost the partner an ack sent alone about as often as not
 * (a quarter of the bundles were maps alone; 88% of offers are declined). */
#ifndef PTV_SOFT_BUNDLES
#define PTV_SOFT_BUNDLES 1 /* 0: every bundle reliable (A/B builds) */
#endif
static void bundle_flush(ptv_links *l, path *p) {
  if (!p->blen || p->state != PS_UP) return;
  p->dirty = 1;
  ptv_tstamp now = ptv_rt_now();
  int soft = PTV_SOFT_BUNDLES && p->bsoft && !ptv_link_soft_pending(p->link);
  int rv = soft ? ptv_link_send_soft(p->link, p->bundle, p->blen, now)
                : ptv_link_send(p->link, p->bundle, p->blen, 0, 0, now);
  if (rv != 0) l->st.queued_dropped++; /* the link's queue is full: the engine's timers retry */
  p->blen = 0;
}

/* Control messages leave in bundles at set points of a loop pass, and
 * ack-only datagrams only with the prepare's (see pump). */
static int flush_bundles(ptv_links *l) {
  int any = 0;
  for (unsigned i = 0; i < l->npaths; i++)
    if (l->paths[i]->blen) {
      bundle_flush(l, l->paths[i]);
      any = 1;
    }
  return any;
}

/* Before the loop polls (after the nap, the timers and the engine's own
 * timer): the bundles, then every due ack, riding with them if it can. */
static void on_flush_prep(uv_prepare_t *h) {
  ptv_links *l = h->data;
  flush_bundles(l);
  pump(l, 1);
}

/* After the poll's callbacks (the tracker's, the HTTP server's): their
 * messages. */
static void on_flush_check(uv_check_t *h) {
  ptv_links *l = h->data;
  if (flush_bundles(l)) pump(l, 0);
}

/* After GLib's dispatch, once for all the datagrams it delivered: chunks
 * the engine sent on receipt, with acks riding. The engine's control
 * replies wait in the bundles for the next prepare, a poll interval away:
 * sent here, a third to a half more control datagrams left and a peer
 * used more CPU, not less (docs/BENCHMARKS.md, session 14). */
static void on_after_dispatch(void *arg) {
  ptv_links *l = arg;
  if (l->pump_due) pump(l, 0);
}

static void on_link_closed(void *user) {
  path *p = user;
  /* handled in the timer (not from inside the link's own call) */
  p->failed_at = 1;
}

static void on_link_unanswered(void *user, ptv_tstamp waited) {
  path *p = user;
  (void)waited;
  p->unanswered = 1; /* acted on in the timer, outside the link's call */
}

static void try_up(ptv_links *l, path *p) {
  if (p->state != PS_SETUP || !p->ice_up || !p->keys_ready) return;
  ptv_link_config lc;
  ptv_link_config_default(&lc);
  lc.mtu = MTU;
  if (l->cfg.upload_kbps) lc.max_rate_bps = (uint64_t)l->cfg.upload_kbps * 1000u;
  /* Start fast (a whole chunk goes out at once on a path that can take
   * it), and ack every 8 packets or 20 ms: acks were most datagrams sent,
   * each a system call, an SRTP seal and a GLib dispatch. */
  lc.init_rate_bps = 10000000;
  lc.ack_every = 8;
  lc.max_ack_delay = 20 * PTV_MS;
  lc.burst_time = l->poll_us > 2 * PTV_MS ? l->poll_us : 2 * PTV_MS;
  lc.sched_delay = 2 * l->poll_us; /* the partner naps as long as we do */
  ptv_link_callbacks cb = {.on_message = on_link_message, .on_closed = on_link_closed,
                           .on_unanswered = on_link_unanswered};
  p->link = ptv_link_new(&lc, &cb, p, ptv_rt_now());
  if (!p->link) {
    path_fail(l, p, "out of memory");
    return;
  }
  p->state = PS_UP;
  p->dirty = 1;
  l->st.paths_setting_up--;
  l->st.paths_up++;
  ptv_tstamp now = ptv_rt_now();
  while (p->pq) {
    pending *q = p->pq;
    p->pq = q->next;
    if ((q->bulk && q->deadline && q->deadline <= now) ||
        ptv_link_send(p->link, q->data, q->len, q->bulk, q->deadline, now) != 0)
      l->st.queued_dropped++;
    free(q);
  }
  p->npending = 0;
  char desc[160] = "";
  ptv_ice_link_selected_pair(p->ice, desc, sizeof(desc));
  ptv_rt_log(2, "path to %u up (%s) in %.0f ms", p->peer, desc,
             (double)(now - p->created) / 1e3);
  pump(l, 0);
}

/* ---- key exchange --------------------------------------------------------- */

static void kx_start(ptv_links *l, path *p) {
  if (p->kx_sent || !p->have_pk || l->self == PTV_ID_NONE) return;
  if (ptv_kx_init(&p->kx, l->cfg.id, l->self, p->peer, p->peer_pk, (const uint8_t *)l->channel,
                  strlen(l->channel)) != 0) {
    path_fail(l, p, "key exchange init");
    return;
  }
  uint8_t hello[PTV_KX_HELLO_LEN];
  if (ptv_kx_hello(&p->kx, hello, sizeof(hello)) < 0) {
    path_fail(l, p, "key exchange hello");
    return;
  }
  l->cb.signal(l->user, p->peer, PTV_SIG_KX, hello, sizeof(hello));
  p->kx_sent = 1;
}

static void kx_finish(ptv_links *l, path *p) {
  if (!p->kx_sent || !p->have_peer_hello || p->keys_ready) return;
  ptv_kx_keys keys;
  int rv = ptv_kx_finish(&p->kx, p->peer_hello, sizeof(p->peer_hello), &keys);
  if (rv != 0) {
    path_fail(l, p, ptv_strerror(rv));
    return;
  }
  rv = ptv_srtp_init(&p->srtp, &keys);
  ptv_kx_keys_wipe(&keys);
  if (rv != 0) {
    path_fail(l, p, "SRTP init");
    return;
  }
  p->keys_ready = 1;
  try_up(l, p);
}

/* ---- ICE callbacks ---------------------------------------------------------- */

static void ice_candidate(void *user, ptv_ice_link *il, uint32_t tag, const char *line) {
  ptv_links *l = user;
  (void)il;
  l->cb.signal(l->user, (ptv_id)tag, PTV_SIG_CANDIDATE, (const uint8_t *)line, strlen(line));
}

static void ice_gathering_done(void *user, ptv_ice_link *il, uint32_t tag) {
  ptv_links *l = user;
  (void)il;
  l->cb.signal(l->user, (ptv_id)tag, PTV_SIG_DONE, NULL, 0);
}

static void ice_state(void *user, ptv_ice_link *il, uint32_t tag, ptv_ice_state state) {
  ptv_links *l = user;
  (void)il;
  path *p = find(l, (ptv_id)tag);
  if (!p || p->state == PS_FAILED) return;
  if (state == PTV_ICE_CONNECTED) {
    p->ice_up = 1;
    try_up(l, p);
  } else if (state == PTV_ICE_FAILED) {
    path_fail(l, p, "ICE failed");
  }
}

static void ice_recv(void *user, ptv_ice_link *il, uint32_t tag, const uint8_t *buf, size_t len) {
  ptv_links *l = user;
  (void)il;
  path *p = find(l, (ptv_id)tag);
  if (!p || p->state != PS_UP) return;
  uint8_t plain[PTV_SRTP_MAX_PAYLOAD];
  int n = ptv_srtp_unprotect(&p->srtp, buf, len, plain, sizeof(plain));
  if (n < 0) {
    l->st.srtp_rejected++;
    return;
  }
  l->st.dgrams_in++;
  l->st.bytes_in += len;
  l->in_recv++;
  p->dirty = 1;
  ptv_link_recv(p->link, plain, (size_t)n, ptv_rt_now());
  l->in_recv--;
  /* failures noticed meanwhile (ICE callbacks run inside libnice calls) */
  for (unsigned i = 0; i < l->npaths; i++)
    if (l->paths[i]->fail_why) {
      const char *why = l->paths[i]->fail_why;
      l->paths[i]->fail_why = NULL;
      path_fail(l, l->paths[i], why);
    }
  /* Not pump() here: once after GLib's dispatch (on_after_dispatch), for
   * all datagrams of the pass, so the paths are scanned once (it ran per
   * datagram: about 900 times a second at 30 peers). */
  l->pump_due = 1;
}

/* ---- paths ------------------------------------------------------------------- */

static path *path_new(ptv_links *l, ptv_id peer) {
  if (l->npaths == MAX_PATHS || l->self == PTV_ID_NONE || peer == l->self) return NULL;
  path *p = calloc(1, sizeof(*p));
  if (!p) return NULL;
  p->l = l;
  p->peer = peer;
  p->pq_tail = &p->pq;
  p->created = p->last_use = ptv_rt_now();
  /* the smaller id is controlling, whoever starts: no role conflict */
  p->ice = ptv_ice_link_new(l->ice, peer, l->self < peer);
  ptv_uvglib_fds_changed(&l->glib); /* new sockets, maybe on reused numbers */
  if (!p->ice) {
    free(p);
    return NULL;
  }
  l->paths[l->npaths++] = p;
  l->st.paths_opened++;
  l->st.paths_setting_up++;
  char ufrag[64], pwd[128];
  if (ptv_ice_link_local_credentials(p->ice, ufrag, sizeof(ufrag), pwd, sizeof(pwd)) == 0) {
    char creds[200];
    int n = snprintf(creds, sizeof(creds), "%s %s", ufrag, pwd);
    l->cb.signal(l->user, peer, PTV_SIG_CREDS, (const uint8_t *)creds, (size_t)n);
    p->creds_sent = 1;
  }
  return p;
}

void ptv_links_on_signal(ptv_links *l, const ptv_ctl_signal *s) {
  if (l->closing || l->self == PTV_ID_NONE) return;
  path *p = find(l, s->peer);
  if (p && p->state == PS_FAILED) {
    /* the other side tries again: start afresh */
    path_free(l, p);
    p = NULL;
  }
  if (!p && !(p = path_new(l, s->peer))) return;
  if (!p->have_pk) {
    memcpy(p->peer_pk, s->pk, PTV_IDENTITY_PK_LEN);
    p->have_pk = 1;
    kx_start(l, p);
  } else if (memcmp(p->peer_pk, s->pk, PTV_IDENTITY_PK_LEN) != 0) {
    path_fail(l, p, "the peer's key changed");
    return;
  }
  char text[PTV_CTL_SIGNAL_MAX + 1];
  memcpy(text, s->data ? (const char *)s->data : "", s->data_len);
  text[s->data_len] = 0;
  switch (s->kind) {
  case PTV_SIG_CREDS: {
    char ufrag[PTV_CTL_SIGNAL_MAX], pwd[PTV_CTL_SIGNAL_MAX];
    if (sscanf(text, "%255s %255s", ufrag, pwd) != 2 || strlen(ufrag) >= sizeof(p->remote_ufrag)) {
      path_fail(l, p, "bad ICE credentials");
      break;
    }
    if (p->remote_ufrag[0] && strcmp(p->remote_ufrag, ufrag) != 0) {
      /* the partner started over (its side of the path failed or timed
       * out): so do we, or its new attempt would meet our old one */
      path_free(l, p);
      if (!(p = path_new(l, s->peer))) return;
      memcpy(p->peer_pk, s->pk, PTV_IDENTITY_PK_LEN);
      p->have_pk = 1;
      kx_start(l, p);
    }
    snprintf(p->remote_ufrag, sizeof(p->remote_ufrag), "%s", ufrag);
    if (ptv_ice_link_set_remote_credentials(p->ice, ufrag, pwd) != 0)
      path_fail(l, p, "bad ICE credentials");
    break;
  }
  case PTV_SIG_CANDIDATE:
    /* a line libnice cannot use costs only that candidate */
    ptv_ice_link_add_remote_candidate(p->ice, text);
    break;
  case PTV_SIG_DONE:
    ptv_ice_link_remote_done(p->ice);
    break;
  case PTV_SIG_KX:
    if (s->data_len != PTV_KX_HELLO_LEN) {
      path_fail(l, p, "bad key-exchange hello");
      return;
    }
    memcpy(p->peer_hello, s->data, PTV_KX_HELLO_LEN);
    p->have_peer_hello = 1;
    kx_finish(l, p);
    break;
  default:
    break;
  }
}

int ptv_links_send(ptv_links *l, ptv_id peer, const uint8_t *buf, size_t len, int bulk,
                   ptv_tstamp deadline) {
  if (!buf || !len || l->closing) return PTV_ERR_INVALID_ARG;
  path *p = find(l, peer);
  ptv_tstamp now = ptv_rt_now();
  if (p && p->state == PS_FAILED) {
    if (now - p->failed_at < RETRY_US) return PTV_ERR_CLOSED;
    path_free(l, p);
    p = NULL;
  }
  if (!p && !(p = path_new(l, peer))) return PTV_ERR_NOMEM;
  p->last_use = now;
  if (p->state == PS_UP) {
    if (!bulk && len <= BUNDLE_MAX) {
      if (p->blen + len > BUNDLE_MAX) bundle_flush(l, p);
      if (p->blen == 0) p->bsoft = 1;
      if (!ptv_wire_loss_tolerant(buf, len)) p->bsoft = 0;
      memcpy(p->bundle + p->blen, buf, len);
      p->blen += len;
      return 0; /* out at the end of this loop pass */
    }
    bundle_flush(l, p); /* keep control messages in order */
    p->dirty = 1;
    int rv = ptv_link_send(p->link, buf, len, bulk, deadline, now);
    if (!l->in_recv) pump(l, 0); /* inside ptv_link_recv only ptv_link_send is allowed */
    return rv;
  }
  if (p->npending >= PENDING_MAX) return PTV_ERR_AGAIN;
  pending *q = malloc(sizeof(*q) + len);
  if (!q) return PTV_ERR_NOMEM;
  q->next = NULL;
  q->len = len;
  q->bulk = bulk;
  q->deadline = deadline;
  memcpy(q->data, buf, len);
  *p->pq_tail = q;
  p->pq_tail = &q->next;
  if (p->pq == q) p->pq_tail = &q->next;
  p->npending++;
  return 0;
}

/* ---- the write pump ------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

/* Sends a path's sealed datagrams, packed in l->batch, in one go. */
static void batch_flush(ptv_links *l, path *p, size_t seg, size_t len, int n) {
  int gso = 0;
  int rv = ptv_ice_link_send_segments(p->ice, l->batch, seg, len, &gso);
  if (rv <= 0) return; /* lost like any datagram: the link layer repairs */
  l->st.sends += gso ? 1u : (uint64_t)rv;
  l->st.gso_batches += gso ? 1u : 0u;
  l->st.dgrams_out += (uint64_t)rv;
  l->st.bytes_out += rv == n ? (uint64_t)len : (uint64_t)rv * seg;
}

/* Writes datagrams from every up path, round robin, up to BATCH from one
 * path in a row (they leave in one system call: UDP GSO), while the
 * node's upload budget allows; then arms the timer for the earliest thing
 * due. acks == 0: a due ack leaves only riding on other data; the prepare
 * (once per pass) sends the rest, with the pass's control bundles. An ack
 * timer firing in the timer phase used to send its ack alone just before
 * the prepare sent a bundle to the same partner. */
static void pump(ptv_links *l, int acks) {
  l->pump_due = 0;
  if (l->closing) return;
  ptv_tstamp now = ptv_rt_now();
  uint8_t dg[MTU], pkt[MTU + PTV_SRTP_OVERHEAD];
  int progress = 1, paced = 0;
  while (progress && !paced) {
    progress = 0;
    for (unsigned k = 0; k < l->npaths && !paced; k++) {
      path *p = l->paths[(l->rr + k) % l->npaths];
      if (p->state != PS_UP || (!p->dirty && p->expiry > now)) continue;
      p->dirty = 1; /* its expiry is asked again below */
      /* GSO: every datagram of a batch the size of the first, but the last */
      size_t blen = 0, seg = 0;
      int nseg = 0;
      ptv_link_hold_acks(p->link, !acks);
      for (int j = 0; j < BATCH; j++) {
        if (l->cfg.upload_kbps && ptv_pacer_next(&l->pacer, MTU, now) > now) {
          paced = 1;
          break;
        }
        ptrdiff_t n = ptv_link_write(p->link, dg, sizeof(dg), now);
        if (n <= 0) break;
        int m = ptv_srtp_protect(&p->srtp, dg, (size_t)n, pkt, sizeof(pkt));
        if (m < 0) continue;
        if (l->cfg.upload_kbps) ptv_pacer_take(&l->pacer, (size_t)m, now);
        progress = 1;
        if (nseg && (size_t)m > seg) {
          batch_flush(l, p, seg, blen, nseg);
          blen = 0;
          nseg = 0;
        }
        if (!nseg) seg = (size_t)m;
        memcpy(l->batch + blen, pkt, (size_t)m);
        blen += (size_t)m;
        nseg++;
        if ((size_t)m < seg) break; /* a short one ends a batch */
      }
      if (nseg) batch_flush(l, p, seg, blen, nseg);
    }
    l->rr++;
  }
  ptv_tstamp next = now + 1 * PTV_S;
  ptv_tstamp setup = l->cfg.setup_timeout ? l->cfg.setup_timeout : SETUP_DEFAULT_US;
  for (unsigned i = 0; i < l->npaths; i++) {
    path *p = l->paths[i];
    if (p->state == PS_UP && p->dirty) {
      p->expiry = ptv_link_get_expiry(p->link);
      /* a paced pass may not have reached it: look again next time */
      p->dirty = paced;
    }
    ptv_tstamp e = p->state == PS_UP      ? p->expiry
                   : p->state == PS_SETUP ? p->created + setup
                                          : p->failed_at + 6 * RETRY_US;
    if (e < next) next = e;
  }
  if (l->cfg.upload_kbps) {
    ptv_tstamp pn = ptv_pacer_next(&l->pacer, MTU, now);
    if (pn > now && pn < next) next = pn;
  }
  /* At least 1 ms: libuv (1.44) runs a timer re-armed at 0 from its own
   * callback again in the same pass, which would starve all I/O. */
  uint64_t ms = next <= now ? 1 : (next - now + 999) / 1000;
  uv_timer_start(&l->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t *t) {
  ptv_links *l = t->data;
  ptv_tstamp now = ptv_rt_now();
  ptv_tstamp setup = l->cfg.setup_timeout ? l->cfg.setup_timeout : SETUP_DEFAULT_US;
  for (unsigned i = 0; i < l->npaths; i++) {
    path *p = l->paths[i];
    if (p->state == PS_UP) {
      if (p->dirty || p->expiry <= now) {
        ptv_link_handle_expiry(p->link, now);
        p->dirty = 1;
      }
      if (p->unanswered && !ptv_link_is_closed(p->link)) {
        ptv_link_stats ls;
        ptv_link_get_stats(p->link, &ls);
        p->unanswered = 0;
        l->st.unanswered += ls.unanswered - p->ua_counted; /* waits, not calls */
        p->ua_counted = ls.unanswered;
        if (l->cb.unanswered) {
          ptv_id peer = p->peer;
          l->cb.unanswered(l->user, peer);
          /* the owner may have closed paths: start the scan again */
          if (i >= l->npaths || l->paths[i] != p) {
            i = (unsigned)-1;
            continue;
          }
        }
      }
      if (ptv_link_is_closed(p->link)) {
        path_fail(l, p, "link idle");
      } else if (now - p->last_use > PATH_IDLE_US) {
        ptv_rt_log(2, "path to %u unused for %.0f s: closed", p->peer, PATH_IDLE_US / 1e6);
        path_free(l, p);
        i--;
      }
    } else if (p->state == PS_SETUP && now - p->created > setup) {
      path_fail(l, p, "setup timed out");
    } else if (p->state == PS_FAILED && now - p->failed_at > 6 * RETRY_US) {
      path_free(l, p);
      i--;
    }
  }
  pump(l, 0);
}

/* ---- life cycle ----------------------------------------------------------------- */

static void glib_closed(ptv_uvglib *g);

/* STUN/TURN "HOST:PORT" (TURN may start with "turn:") and the local address
 * into libnice's terms. Returns 0 or PTV_ERR_INVALID_ARG. */
static int ice_config(ptv_links *l, ptv_ice_config *ic) {
  const ptv_links_config *c = &l->cfg;
  if (c->stun) {
    if (ptv_rt_split_hostport(c->stun, l->stun_host, sizeof(l->stun_host), &ic->stun_port) != 0)
      return PTV_ERR_INVALID_ARG;
    ic->stun_host = l->stun_host;
  }
  if (c->turn) {
    const char *t = strncmp(c->turn, "turn:", 5) == 0 ? c->turn + 5 : c->turn;
    if (ptv_rt_split_hostport(t, l->turn_host, sizeof(l->turn_host), &ic->turn_port) != 0 ||
        !c->turn_user || !c->turn_pass)
      return PTV_ERR_INVALID_ARG;
    ic->turn_host = l->turn_host;
    ic->turn_user = c->turn_user;
    ic->turn_pass = c->turn_pass;
  }
  if (c->local_addr) {
    l->local[0] = c->local_addr;
    ic->local_addrs = l->local;
    ic->n_local_addrs = 1;
  }
  ic->fail_timeout_ms = (uint32_t)((c->setup_timeout ? c->setup_timeout : SETUP_DEFAULT_US) / 1000);
  if (c->relay_only && !c->turn) return PTV_ERR_INVALID_ARG;
  ic->force_relay = c->relay_only;
  return 0;
}

static const ptv_ice_callbacks ICE_CBS = {
    .on_local_candidate = ice_candidate,
    .on_gathering_done = ice_gathering_done,
    .on_state = ice_state,
    .on_recv = ice_recv,
};

int ptv_links_new(ptv_links **out, uv_loop_t *loop, const ptv_links_config *c,
                  const ptv_links_callbacks *cb, void *user) {
  if (ptv_srtp_global_init() != 0) return PTV_ERR_CRYPTO;
  ptv_links *l = calloc(1, sizeof(*l));
  if (!l) return PTV_ERR_NOMEM;
  l->loop = loop;
  l->cfg = *c;
  snprintf(l->channel, sizeof(l->channel), "%s", c->channel ? c->channel : "");
  l->cb = *cb;
  l->user = user;
  l->self = PTV_ID_NONE;
  /* Our own context (the integration takes a reference), so nothing else in
   * the process iterates it. */
  l->ctx = g_main_context_new();
  if (ptv_uvglib_init(&l->glib, loop, l->ctx) != 0) {
    g_main_context_unref(l->ctx);
    free(l);
    return PTV_ERR_NOMEM;
  }
  g_main_context_unref(l->ctx);
  ptv_uvglib_keepalive(&l->glib, 0);
  /* libnice's callbacks only queue and send: nothing iterates the context
   * from inside a dispatch, so its sources need no blocking around one */
  ptv_uvglib_set_recursive(&l->glib);
  ptv_uvglib_set_after_dispatch(&l->glib, on_after_dispatch, l);
  ptv_ice_config ic;
  memset(&ic, 0, sizeof(ic));
  int rv = ice_config(l, &ic);
  if (rv == 0) {
    l->ice = ptv_ice_new(l->ctx, &ic, &ICE_CBS, l);
    if (!l->ice) rv = PTV_ERR_INVALID_ARG;
  }
  if (rv != 0) {
    ptv_uvglib_close(&l->glib, glib_closed);
    return rv;
  }
  if (c->upload_kbps)
    ptv_pacer_init(&l->pacer, (uint64_t)c->upload_kbps * 1000u, 16 * MTU, ptv_rt_now());
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  uv_unref((uv_handle_t *)&l->timer);
  uv_prepare_init(loop, &l->flush_prep);
  uv_check_init(loop, &l->flush_check);
  l->flush_prep.data = l->flush_check.data = l;
  uv_prepare_start(&l->flush_prep, on_flush_prep);
  uv_check_start(&l->flush_check, on_flush_check);
  uv_unref((uv_handle_t *)&l->flush_prep);
  uv_unref((uv_handle_t *)&l->flush_check);
  *out = l;
  return 0;
}

void ptv_links_set_self(ptv_links *l, ptv_id self) { l->self = self; }

/* The upload limit's bucket holds a poll interval's worth (at least 16
 * datagrams): emptied once per interval, a smaller one would cap the rate
 * at one bucket per interval. */
void ptv_links_set_poll_interval(ptv_links *l, ptv_tstamp us) {
  l->poll_us = us;
  if (!l->cfg.upload_kbps) return;
  uint64_t b = (uint64_t)l->cfg.upload_kbps * 1000u / 8u * us / PTV_S;
  ptv_pacer_set_rate(&l->pacer, (uint64_t)l->cfg.upload_kbps * 1000u, b > 16 * MTU ? b : 16 * MTU,
                     ptv_rt_now());
}

void ptv_links_close(ptv_links *l, ptv_id peer) {
  path *p = find(l, peer);
  if (p) path_free(l, p);
}

void ptv_links_get_stats(const ptv_links *l, ptv_links_stats *st) {
  *st = l->st;
  for (unsigned i = 0; i < l->npaths; i++)
    if (l->paths[i]->state == PS_UP) {
      ptv_link_stats ls;
      ptv_link_get_stats(l->paths[i]->link, &ls);
      st->retransmits += ls.retransmits;
      st->losses += ls.losses;
      st->dgrams_ack_only += ls.packets_ack_only;
      st->dgrams_ctrl += ls.packets_ctrl;
      st->dgrams_soft += ls.packets_soft;
    }
}

int ptv_links_path_up(const ptv_links *l, ptv_id peer) {
  path *p = find(l, peer);
  return p && p->state == PS_UP;
}

int ptv_links_describe(const ptv_links *l, ptv_id peer, char *out, size_t cap) {
  path *p = find(l, peer);
  if (!p || p->state != PS_UP) return PTV_ERR_NOT_FOUND;
  return ptv_ice_link_selected_pair(p->ice, out, cap);
}

int ptv_links_link_stats(const ptv_links *l, ptv_id peer, ptv_link_stats *st) {
  path *p = find(l, peer);
  if (!p || p->state != PS_UP) return PTV_ERR_NOT_FOUND;
  ptv_link_get_stats(p->link, st);
  return 0;
}

static void glib_closed(ptv_uvglib *g) {
  ptv_links *l = (ptv_links *)((char *)g - offsetof(ptv_links, glib));
  void (*done)(void *) = l->done;
  void *arg = l->done_arg;
  free(l);
  if (done) done(arg);
}

/* The timer, the prepare and the check close in that order (one after the
 * other's callback), then the GLib integration. */
static void timer_closed(uv_handle_t *h) {
  ptv_links *l = h->data;
  if (h == (uv_handle_t *)&l->timer)
    uv_close((uv_handle_t *)&l->flush_prep, timer_closed);
  else if (h == (uv_handle_t *)&l->flush_prep)
    uv_close((uv_handle_t *)&l->flush_check, timer_closed);
  else
    ptv_uvglib_close(&l->glib, glib_closed);
}

void ptv_links_free(ptv_links *l, void (*done)(void *arg), void *arg) {
  if (!l) return;
  l->closing = 1;
  l->done = done;
  l->done_arg = arg;
  while (l->npaths) path_free(l, l->paths[0]);
  ptv_ice_free(l->ice);
  l->ice = NULL;
  uv_close((uv_handle_t *)&l->timer, timer_closed);
}
