/* ptv_link.c -- reliable paced message link (see ptv_link.h for the protocol
 * and the wire format). */
#include "ptv_link.h"

#include <stdlib.h>
#include <string.h>

#include "ptv_be.h"
#include "ptv_err.h"
#include "ptv_pacer.h"

#define HDR_LEN 6
#define ACK_MIN_LEN 9
#define ACK_RANGE_LEN 4
#define FORGET_LEN 4
#define DATA_HDR_LEN 10

#define F_ACK 0x01
#define F_FORGET 0x02
#define F_DATA 0x04
#define F_BULK 0x08
#define F_PING 0x10
#define F_SOFT 0x20
#define F_ALL 0x3f

#define SENT_CAP 4096u   /* packets tracked in flight (ring) */
#define RECV_RANGES 32   /* pn ranges remembered and acked */
#define WIRE_RANGES 256  /* first range + u8 extra ranges */
#define CTRL_WIN 1024u   /* control ids in flight beyond the oldest unacked */
#define BULK_WIN 1024u   /* bulk ids in flight beyond the acked forget */
#define MAX_IVS 4096u    /* received intervals per partial message */
#define PKT_THRESH 3
#define INIT_RTT (100 * PTV_MS)
#define GRANULARITY PTV_MS
#define ACK_DELAY_UNIT 8 /* us */
#define MINRTT_WIN (10 * PTV_S) /* min RTT forgets older paths after 10-20 s */
#define PROBE_RTT_TIME (100 * PTV_MS)
#define MAX_PTO_SHIFT 6
#define LOSS_EWMA_GAIN (1.0 / 128)
#define LOSS_CONGESTED 0.08
#define LOSS_BETA 0.7
#define CC_GAIN 0.25

enum { FS_NEW, FS_SENT, FS_LOST, FS_ACKED };
enum { RS_FREE = 0, RS_INFLIGHT = 1 };
#define RF_FORGET 0x01
#define RF_APPLIM 0x02

typedef struct smsg {
  struct smsg *next, *prev;
  uint32_t id;
  int bulk;
  size_t len;
  ptv_tstamp deadline;
  uint32_t nfrags, nacked, nneed, scan; /* scan: no NEW/LOST frag below */
  uint8_t *fstate;
  uint8_t *data;
} smsg;

typedef struct {
  smsg *head, *tail;
} squeue;

typedef struct {
  ptv_tstamp sent;
  ptv_tstamp delivered_time; /* delivery-rate sampling, as in BBR */
  uint64_t delivered;
  smsg *msg; /* NULL once the message is gone */
  uint32_t frag;
  uint32_t forget;
  uint32_t size;
  uint8_t state;
  uint8_t flags;
} sent_rec;

typedef struct {
  uint64_t lo, hi;
} pnrange;

typedef struct {
  uint32_t s, e;
} ival;

typedef struct rmsg {
  struct rmsg *next;
  uint32_t id;
  int bulk;
  size_t total, got, mem;
  uint32_t niv, capiv;
  ival *ivs;
  uint8_t *buf;
} rmsg;

struct ptv_link {
  ptv_link_config cfg;
  ptv_link_callbacks cb;
  void *user;
  int closed;
  size_t frag_size;
  ptv_tstamp now; /* latest time seen */
  ptv_tstamp keepalive;

  /* sending */
  squeue ctrl, bulk;
  uint32_t next_ctrl_id, next_bulk_id;
  size_t queue_bytes, queue_msgs;
  uint64_t need_frags; /* fragments waiting for (re)transmission */
  uint32_t forget_below, forget_acked, forget_sent;
  sent_rec *ring;
  uint64_t next_pn, ring_base;
  uint64_t largest_acked;
  int have_largest_acked;
  uint64_t inflight;
  ptv_tstamp last_eliciting_sent, loss_time;
  ptv_tstamp srtt, rttvar, latest_rtt, qdelay;
  int have_rtt;
  ptv_tstamp minrtt_cur, minrtt_prev, minrtt_epoch;
  unsigned pto_count;
  int waiting;           /* ack-eliciting data in flight ... */
  ptv_tstamp wait_since; /* ... and nothing acked since this time */
  unsigned ua_count;     /* on_unanswered calls in this wait */
  int probes;
  ptv_tstamp probe_time;
  size_t soft_len; /* a soft message waiting to be written (0: none) */
  uint8_t *soft;   /* its bytes (mtu bytes, allocated with the link) */

  /* congestion control */
  double rate; /* bytes per second */
  uint64_t dlv_bytes; /* bytes acked so far */
  ptv_tstamp dlv_time; /* when dlv_bytes last grew */
  int slow_start;
  ptv_tstamp last_decrease;
  uint64_t recovery_pn;
  double loss_ewma;
  double last_dr; /* latest delivery-rate sample, bytes per second */
  ptv_tstamp probe_rtt_until; /* draining to re-measure min RTT */
  ptv_pacer pacer;

  /* receiving */
  pnrange rr[RECV_RANGES]; /* descending */
  size_t nrr;
  uint64_t largest_recv;
  int have_recv;
  ptv_tstamp largest_recv_time;
  unsigned ack_elicit;
  uint64_t recv_since_ack;
  ptv_tstamp ack_deadline;
  int ack_hold; /* ptv_link_hold_acks */
  uint32_t ctrl_next, bulk_base;
  uint64_t soft_pn;   /* packet number of the last soft message delivered */
  int have_soft;
  uint8_t delivered[BULK_WIN / 8];
  rmsg *reasm;
  size_t reasm_bytes, reasm_msgs;
  ptv_tstamp last_recv;

  ptv_link_stats st;
};


static ptv_tstamp tmin(ptv_tstamp a, ptv_tstamp b) { return a < b ? a : b; }
static ptv_tstamp tmax(ptv_tstamp a, ptv_tstamp b) { return a > b ? a : b; }

/* ---- configuration ------------------------------------------------------ */

void ptv_link_config_default(ptv_link_config *cfg) {
  if (cfg == NULL) {
    return;
  }
  memset(cfg, 0, sizeof(*cfg));
  cfg->mtu = 1160;
  cfg->max_msg = (size_t)4 << 20;
  cfg->max_queue_bytes = (size_t)8 << 20;
  cfg->max_reasm_bytes = (size_t)8 << 20;
  cfg->init_rate_bps = 1000000;
  cfg->min_rate_bps = 64000;
  cfg->max_rate_bps = 0;
  cfg->idle_timeout = 10 * PTV_S;
  cfg->max_ack_delay = 10 * PTV_MS;
  cfg->ack_every = 2;
  cfg->target_delay = 25 * PTV_MS;
  cfg->burst_time = 2 * PTV_MS;
}

static int fill_config(ptv_link_config *out, const ptv_link_config *in) {
  ptv_link_config d;

  ptv_link_config_default(&d);
  if (in == NULL) {
    *out = d;
    return 0;
  }
  *out = *in;
#define DEF(f)                                                                 \
  if (out->f == 0) {                                                           \
    out->f = d.f;                                                              \
  }
  DEF(mtu)
  DEF(max_msg)
  DEF(max_queue_bytes)
  DEF(max_reasm_bytes)
  DEF(init_rate_bps)
  DEF(min_rate_bps)
  DEF(idle_timeout)
  if (in->min_rate_bps == 0 && out->max_rate_bps != 0 &&
      out->min_rate_bps > out->max_rate_bps) {
    out->min_rate_bps = out->max_rate_bps; /* a low cap lowers the floor */
  }
  DEF(max_ack_delay)
  DEF(ack_every)
  DEF(target_delay)
  DEF(burst_time)
#undef DEF
  if (out->mtu < PTV_LINK_MIN_MTU || out->mtu > PTV_LINK_MAX_MTU ||
      out->max_msg > PTV_LINK_MAX_MSG || out->max_queue_bytes < out->max_msg ||
      out->max_reasm_bytes < out->max_msg ||
      (out->max_rate_bps != 0 && out->min_rate_bps > out->max_rate_bps)) {
    return PTV_ERR_INVALID_ARG;
  }
  return 0;
}

/* ---- congestion control ------------------------------------------------- */

static ptv_tstamp srtt_or_init(const ptv_link *l) {
  return l->have_rtt ? l->srtt : INIT_RTT;
}

static ptv_tstamp min_rtt(const ptv_link *l) {
  return tmin(l->minrtt_cur, l->minrtt_prev);
}

static uint64_t cwnd(const ptv_link *l) {
  double c = 2.0 * l->rate * (double)srtt_or_init(l) / 1e6;
  /* At least two acks' worth: a receiver acks every ack_every packets, so
   * a window smaller than that waits out max_ack_delay each round trip (on
   * loopback, ack_every 8 in a 4-packet window made every 19 kB chunk take
   * 70-80 ms instead of 8). */
  unsigned pk = 2 * l->cfg.ack_every > 4 ? 2 * l->cfg.ack_every : 4;
  double floor = (double)pk * (double)l->cfg.mtu;

  return (uint64_t)(c > floor ? c : floor);
}

/* Eight datagrams (TCP's initial window is ten), or 2 ms worth at high
 * rates, may leave back to back: fewer timer wake-ups on both sides, and
 * batches the driver hands the kernel in one system call (UDP GSO). Against
 * two (scripts/bench-net, 45 s): CPU per peer 2.91% vs 3.28% (10 peers),
 * delay p50 48 vs 60 ms; one peer serving 20 forwards 302 vs 239 Mbit/s per
 * core. */
static size_t burst_bytes(const ptv_link *l) {
  double b = l->rate * ((double)l->cfg.burst_time / PTV_S);
  double floor = 8.0 * (double)l->cfg.mtu;

  return (size_t)(b > floor ? b : floor);
}

static void set_rate(ptv_link *l, double rate, ptv_tstamp now) {
  double lo = (double)l->cfg.min_rate_bps / 8.0;

  if (l->cfg.max_rate_bps != 0 && rate > (double)l->cfg.max_rate_bps / 8.0) {
    rate = (double)l->cfg.max_rate_bps / 8.0;
  }
  if (rate < lo) {
    rate = lo;
  }
  l->rate = rate;
  ptv_pacer_set_rate(&l->pacer, (uint64_t)(rate * 8.0), burst_bytes(l), now);
}

/* The rate follows the measured delivery rate dr: rate = dr x (1 + K x e),
 * e = (target - queueing delay) / target in [-1.2, 1]. Below target the rate
 * grows up to 25% per RTT (dr follows it an RTT later), near target it levels
 * off, above target it drops below the bottleneck's rate by up to 30% so the
 * queue drains: a first-order loop on queueing delay, so no limit cycle of
 * overshoot and deep cuts. Slow start sends at 2 x dr until the queueing
 * delay passes target / 2. */
static void cc_on_ack(ptv_link *l, double dr, int applim, uint64_t pn,
                      ptv_tstamp now) {
  double target = (double)l->cfg.target_delay;
  double e = (target - (double)l->qdelay) / target;
  double r;

  if (pn < l->recovery_pn || dr <= 0) {
    return; /* a loss cut is in force for this round trip */
  }
  if (e < -1.2) {
    e = -1.2;
  }
  if (l->slow_start && e < 0.5) {
    l->slow_start = 0;
  }
  if (l->slow_start) {
    /* Early samples span the first RTT and undercount: never go down. */
    r = 2.0 * dr > l->rate ? 2.0 * dr : l->rate;
  } else {
    r = dr * (1.0 + CC_GAIN * e);
  }
  if (now < l->probe_rtt_until) {
    r = dr * 0.5;
  }
  if (applim && r < l->rate) {
    return; /* an unused rate proves nothing about the path */
  }
  if (e < 0 && r < l->rate && now - l->last_decrease >= srtt_or_init(l)) {
    l->last_decrease = now;
    l->st.delay_events++;
  }
  l->last_dr = dr;
  set_rate(l, r, now);
}

static void cc_on_loss(ptv_link *l, uint64_t pn, ptv_tstamp now) {
  l->loss_ewma = l->loss_ewma * (1 - LOSS_EWMA_GAIN) + LOSS_EWMA_GAIN;
  if (pn < l->recovery_pn) {
    return; /* same loss event as an earlier decrease */
  }
  /* Random loss is not congestion, and the delay loop already drains
   * queues: cut only when losses are frequent (a buffer too shallow for the
   * delay signal) or the queue is far above target. */
  if ((double)l->qdelay > 2.0 * (double)l->cfg.target_delay ||
      l->loss_ewma > LOSS_CONGESTED) {
    double base = l->last_dr > 0 && l->last_dr < l->rate ? l->last_dr : l->rate;

    l->slow_start = 0;
    l->last_decrease = now;
    l->recovery_pn = l->next_pn;
    set_rate(l, base * LOSS_BETA, now);
    l->st.loss_events++;
  }
}

static void rtt_sample(ptv_link *l, ptv_tstamp latest, ptv_tstamp ack_delay,
                       ptv_tstamp now) {
  ptv_tstamp adj = latest, mr;

  if (now - l->minrtt_epoch >= MINRTT_WIN) {
    l->minrtt_prev = l->minrtt_cur;
    l->minrtt_cur = PTV_TSTAMP_MAX;
    l->minrtt_epoch = now;
    /* Our own standing queue (about target) would otherwise become the new
     * "minimum" and the queue would ratchet up by target every window:
     * drain it briefly so the new window sees the empty-queue RTT. */
    if (l->qdelay > GRANULARITY) {
      l->probe_rtt_until =
          now + tmax(PROBE_RTT_TIME, srtt_or_init(l) + srtt_or_init(l) / 2);
    }
  }
  if (latest < l->minrtt_cur) {
    l->minrtt_cur = latest;
  }
  mr = min_rtt(l);
  ack_delay = tmin(ack_delay, l->cfg.max_ack_delay);
  if (latest >= mr + ack_delay) {
    adj = latest - ack_delay;
  }
  l->latest_rtt = latest;
  /* Our own naps between I/O passes are not a queue: counted as one, the
   * delay loop cut the rate below the stream's once they neared target
   * (poll interval 20 ms: links fell from 10-20 to 1.2-4.5 Mbit/s and the
   * swarm's delay p95 rose to 2 s). */
  l->qdelay = adj - mr > l->cfg.sched_delay ? adj - mr - l->cfg.sched_delay : 0;
  if (!l->have_rtt) {
    l->have_rtt = 1;
    l->srtt = adj;
    l->rttvar = adj / 2;
  } else {
    ptv_tstamp d = l->srtt > adj ? l->srtt - adj : adj - l->srtt;

    l->rttvar = (3 * l->rttvar + d) / 4;
    l->srtt = (7 * l->srtt + adj) / 8;
  }
}

/* ---- send queue --------------------------------------------------------- */

static sent_rec *rec_of(ptv_link *l, uint64_t pn) {
  return &l->ring[pn % SENT_CAP];
}

static void q_unlink(squeue *q, smsg *m) {
  if (m->prev) {
    m->prev->next = m->next;
  } else {
    q->head = m->next;
  }
  if (m->next) {
    m->next->prev = m->prev;
  } else {
    q->tail = m->prev;
  }
}

static void update_forget(ptv_link *l) {
  l->forget_below = l->bulk.head ? l->bulk.head->id : l->next_bulk_id;
}

static void smsg_free(ptv_link *l, smsg *m) {
  uint64_t pn;

  q_unlink(m->bulk ? &l->bulk : &l->ctrl, m);
  l->need_frags -= m->nneed;
  l->queue_bytes -= m->len;
  l->queue_msgs--;
  /* Packets still in flight stop referring to it: their loss or ack no
   * longer matters to the message. */
  for (pn = l->ring_base; pn < l->next_pn; ++pn) {
    sent_rec *r = rec_of(l, pn);

    if (r->msg == m) {
      r->msg = NULL;
    }
  }
  if (m->bulk) {
    update_forget(l);
  }
  free(m);
}

static void expire_bulk(ptv_link *l, ptv_tstamp now) {
  smsg *m = l->bulk.head, *next;

  for (; m != NULL; m = next) {
    next = m->next;
    if (m->deadline != 0 && now >= m->deadline) {
      l->st.bulk_expired++;
      smsg_free(l, m);
    }
  }
}

static void frag_acked(ptv_link *l, smsg *m, uint32_t fi) {
  uint8_t s = m->fstate[fi];

  if (s == FS_ACKED) {
    return;
  }
  if (s == FS_NEW || s == FS_LOST) {
    m->nneed--;
    l->need_frags--;
  }
  m->fstate[fi] = FS_ACKED;
  if (++m->nacked == m->nfrags) {
    l->st.msgs_sent++;
    smsg_free(l, m);
  }
}

static int msg_next_frag(smsg *m, uint32_t *fi) {
  if (m->nneed == 0) {
    return 0;
  }
  while (m->scan < m->nfrags && m->fstate[m->scan] != FS_NEW &&
         m->fstate[m->scan] != FS_LOST) {
    m->scan++;
  }
  if (m->scan >= m->nfrags) {
    return 0; /* cannot happen while nneed > 0 */
  }
  *fi = m->scan;
  return 1;
}

/* The next fragment to send: control first (oldest first), then bulk in id
 * order, each within the receiver's window. */
static int pick(ptv_link *l, smsg **pm, uint32_t *fi) {
  smsg *m;

  if (l->need_frags == 0) {
    return 0;
  }
  for (m = l->ctrl.head; m != NULL; m = m->next) {
    if (m->id - l->ctrl.head->id >= CTRL_WIN) {
      break;
    }
    if (msg_next_frag(m, fi)) {
      *pm = m;
      return 1;
    }
  }
  for (m = l->bulk.head; m != NULL; m = m->next) {
    if (m->id - l->forget_acked >= BULK_WIN) {
      break;
    }
    if (msg_next_frag(m, fi)) {
      *pm = m;
      return 1;
    }
  }
  return 0;
}

static int has_sendable(const ptv_link *l) {
  const smsg *m;

  if (l->need_frags == 0) {
    return 0;
  }
  for (m = l->ctrl.head; m != NULL; m = m->next) {
    if (m->id - l->ctrl.head->id >= CTRL_WIN) {
      break;
    }
    if (m->nneed) {
      return 1;
    }
  }
  for (m = l->bulk.head; m != NULL; m = m->next) {
    if (m->id - l->forget_acked >= BULK_WIN) {
      break;
    }
    if (m->nneed) {
      return 1;
    }
  }
  return 0;
}

int ptv_link_send(ptv_link *l, const uint8_t *msg, size_t len, int bulk,
                  ptv_tstamp deadline, ptv_tstamp now) {
  smsg *m;
  size_t nfrags;
  squeue *q;

  if (l == NULL || msg == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  if (l->closed) {
    return PTV_ERR_CLOSED;
  }
  if (len == 0 || len > l->cfg.max_msg) {
    return PTV_ERR_INVALID_ARG;
  }
  if (l->queue_bytes + len > l->cfg.max_queue_bytes) {
    return PTV_ERR_AGAIN;
  }
  nfrags = (len + l->frag_size - 1) / l->frag_size;
  m = malloc(sizeof(*m) + nfrags + len);
  if (m == NULL) {
    return PTV_ERR_NOMEM;
  }
  memset(m, 0, sizeof(*m));
  m->fstate = (uint8_t *)(m + 1);
  m->data = m->fstate + nfrags;
  memset(m->fstate, FS_NEW, nfrags);
  memcpy(m->data, msg, len);
  m->len = len;
  m->nfrags = (uint32_t)nfrags;
  m->nneed = (uint32_t)nfrags;
  m->bulk = bulk != 0;
  if (m->bulk) {
    m->id = l->next_bulk_id++;
    m->deadline = deadline;
    q = &l->bulk;
  } else {
    m->id = l->next_ctrl_id++;
    q = &l->ctrl;
  }
  m->prev = q->tail;
  if (q->tail) {
    q->tail->next = m;
  } else {
    q->head = m;
  }
  q->tail = m;
  l->need_frags += nfrags;
  l->queue_bytes += len;
  l->queue_msgs++;
  if (m->bulk && l->bulk.head == m) {
    update_forget(l);
  }
  if (now < l->now) {
    now = l->now; /* a clock stepping back would corrupt RTTs and timers */
  }
  l->now = now;
  return 0;
}

/* ---- loss detection ----------------------------------------------------- */

static void advance_ring(ptv_link *l) {
  while (l->ring_base < l->next_pn &&
         rec_of(l, l->ring_base)->state == RS_FREE) {
    l->ring_base++;
  }
}

static void declare_lost(ptv_link *l, uint64_t pn, ptv_tstamp now) {
  sent_rec *r = rec_of(l, pn);

  if (r->state != RS_INFLIGHT) {
    return;
  }
  r->state = RS_FREE;
  l->inflight -= r->size;
  l->st.losses++;
  if (r->msg != NULL && r->msg->fstate[r->frag] == FS_SENT) {
    smsg *m = r->msg;

    m->fstate[r->frag] = FS_LOST;
    m->nneed++;
    l->need_frags++;
    if (r->frag < m->scan) {
      m->scan = r->frag;
    }
  }
  if ((r->flags & RF_FORGET) && r->forget == l->forget_sent &&
      l->forget_acked < l->forget_sent) {
    l->forget_sent = l->forget_acked; /* send it again */
  }
  r->msg = NULL;
  cc_on_loss(l, pn, now);
}

static ptv_tstamp loss_delay(const ptv_link *l) {
  ptv_tstamp d = tmax(srtt_or_init(l), l->latest_rtt);

  return tmax(d + d / 8, GRANULARITY);
}

static void detect_losses(ptv_link *l, ptv_tstamp now) {
  ptv_tstamp ld = loss_delay(l);
  uint64_t pn;

  l->loss_time = 0;
  if (!l->have_largest_acked) {
    return;
  }
  for (pn = l->ring_base; pn < l->largest_acked && pn < l->next_pn; ++pn) {
    sent_rec *r = rec_of(l, pn);

    if (r->state != RS_INFLIGHT) {
      continue;
    }
    if (r->sent + ld <= now || l->largest_acked >= pn + PKT_THRESH) {
      declare_lost(l, pn, now);
    } else if (l->loss_time == 0 || r->sent + ld < l->loss_time) {
      l->loss_time = r->sent + ld;
    }
  }
  advance_ring(l);
}

/* One probe timeout without backoff (RFC 9002): srtt + 4 rttvar + the
 * partner's ack delay. */
static ptv_tstamp pto_base(const ptv_link *l) {
  return srtt_or_init(l) + tmax(4 * (l->have_rtt ? l->rttvar : INIT_RTT / 2), GRANULARITY) +
         l->cfg.max_ack_delay;
}

static ptv_tstamp pto_time(const ptv_link *l) {
  unsigned shift = l->pto_count < MAX_PTO_SHIFT ? l->pto_count : MAX_PTO_SHIFT;

  if (l->inflight == 0) {
    return PTV_TSTAMP_MAX;
  }
  return l->last_eliciting_sent + (pto_base(l) << shift);
}

/* When the partner counts as not answering (on_unanswered): three probe
 * timeouts' worth (without backoff) after the wait began, then one more
 * per further call. A live partner acks within srtt + max_ack_delay. */
static ptv_tstamp unanswered_time(const ptv_link *l) {
  return l->wait_since + (3 + (ptv_tstamp)l->ua_count) * pto_base(l);
}

/* ---- acks received ------------------------------------------------------ */

static void on_ack(ptv_link *l, const pnrange *rg, size_t n,
                   ptv_tstamp ack_delay, ptv_tstamp now) {
  uint64_t largest = rg[0].hi, acked = 0, pn, best_pn = 0, best_delivered = 0;
  ptv_tstamp best_dtime = 0;
  int have_best = 0, applim = 0;
  size_t i;

  for (i = 0; i < n; ++i) {
    uint64_t lo = rg[i].lo > l->ring_base ? rg[i].lo : l->ring_base;
    uint64_t hi = rg[i].hi < l->next_pn ? rg[i].hi : l->next_pn - 1;

    for (pn = lo; l->next_pn > 0 && pn <= hi; ++pn) {
      sent_rec *r = rec_of(l, pn);

      if (r->state != RS_INFLIGHT) {
        continue;
      }
      if (pn == largest) {
        rtt_sample(l, now - r->sent, ack_delay, now);
      }
      if (!have_best || pn > best_pn) {
        have_best = 1;
        best_pn = pn;
        best_delivered = r->delivered;
        best_dtime = r->delivered_time;
        applim = (r->flags & RF_APPLIM) != 0;
      }
      r->state = RS_FREE;
      acked += r->size;
      l->inflight -= r->size;
      l->loss_ewma *= 1 - LOSS_EWMA_GAIN;
      if ((r->flags & RF_FORGET) && r->forget > l->forget_acked) {
        l->forget_acked = r->forget;
      }
      if (r->msg != NULL) {
        smsg *m = r->msg;

        r->msg = NULL;
        frag_acked(l, m, r->frag);
      }
    }
  }
  if (!l->have_largest_acked || largest > l->largest_acked) {
    l->largest_acked = largest;
    l->have_largest_acked = 1;
  }
  if (acked == 0) {
    return;
  }
  l->st.bytes_acked += acked;
  /* an answer: whatever is still in flight is waited for from now */
  l->waiting = l->inflight > 0;
  l->wait_since = now;
  l->ua_count = 0;
  l->dlv_bytes += acked;
  l->dlv_time = now;
  l->pto_count = 0;
  detect_losses(l, now);
  if (now > best_dtime) {
    double dr = (double)(l->dlv_bytes - best_delivered) * 1e6 /
                (double)(now - best_dtime);

    cc_on_ack(l, dr, applim, best_pn, now);
  }
}

/* ---- receive side ------------------------------------------------------- */

static void rr_insert(ptv_link *l, uint64_t pn) {
  size_t i;

  for (i = 0; i < l->nrr; ++i) {
    pnrange *r = &l->rr[i];

    if (pn > r->hi + 1) {
      break; /* new range before i */
    }
    if (pn == r->hi + 1) {
      r->hi = pn;
      if (i > 0 && l->rr[i - 1].lo == pn + 1) {
        l->rr[i - 1].lo = r->lo;
        memmove(&l->rr[i], &l->rr[i + 1], (l->nrr - i - 1) * sizeof(*r));
        l->nrr--;
      }
      return;
    }
    if (pn >= r->lo) {
      return; /* duplicate */
    }
    if (pn + 1 == r->lo) {
      r->lo = pn;
      if (i + 1 < l->nrr && l->rr[i + 1].hi + 1 == pn) {
        r->lo = l->rr[i + 1].lo;
        memmove(&l->rr[i + 1], &l->rr[i + 2], (l->nrr - i - 2) * sizeof(*r));
        l->nrr--;
      }
      return;
    }
  }
  if (i == RECV_RANGES) {
    return; /* older than everything we remember */
  }
  if (l->nrr == RECV_RANGES) {
    l->nrr--; /* forget the oldest range */
  }
  memmove(&l->rr[i + 1], &l->rr[i], (l->nrr - i) * sizeof(pnrange));
  l->rr[i].lo = l->rr[i].hi = pn;
  l->nrr++;
}

static rmsg *reasm_find(ptv_link *l, int bulk, uint32_t id) {
  rmsg *r;

  for (r = l->reasm; r != NULL; r = r->next) {
    if (r->bulk == bulk && r->id == id) {
      return r;
    }
  }
  return NULL;
}

static void reasm_remove(ptv_link *l, rmsg *r) {
  rmsg **pp;

  for (pp = &l->reasm; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  l->reasm_bytes -= r->mem;
  l->reasm_msgs--;
  free(r->ivs);
  free(r);
}

static int bit_get(const ptv_link *l, uint32_t id) {
  return (l->delivered[(id % BULK_WIN) / 8] >> (id % 8)) & 1;
}
static void bit_set(ptv_link *l, uint32_t id, int v) {
  uint8_t *b = &l->delivered[(id % BULK_WIN) / 8];

  if (v) {
    *b = (uint8_t)(*b | (1u << (id % 8)));
  } else {
    *b = (uint8_t)(*b & ~(1u << (id % 8)));
  }
}

static void apply_forget(ptv_link *l, uint32_t below) {
  rmsg *r, *next;
  uint32_t id;

  if (below <= l->bulk_base) {
    return;
  }
  for (r = l->reasm; r != NULL; r = next) {
    next = r->next;
    if (r->bulk && r->id < below) {
      l->st.bulk_abandoned++;
      reasm_remove(l, r);
    }
  }
  if (below - l->bulk_base >= BULK_WIN) {
    memset(l->delivered, 0, sizeof(l->delivered));
  } else {
    for (id = l->bulk_base; id != below; ++id) {
      bit_set(l, id, 0);
    }
  }
  l->bulk_base = below;
}

static void deliver(ptv_link *l, const uint8_t *buf, size_t len, int bulk) {
  l->st.msgs_delivered++;
  l->cb.on_message(l->user, buf, len, bulk);
}

/* Control messages that were waiting for their predecessors. */
static void deliver_ctrl_chain(ptv_link *l) {
  rmsg *r;

  while ((r = reasm_find(l, 0, l->ctrl_next)) != NULL && r->got == r->total) {
    l->ctrl_next++;
    deliver(l, r->buf, r->total, 0);
    reasm_remove(l, r);
  }
}

typedef struct {
  uint64_t pn;
  uint8_t flags;
  size_t nranges;
  ptv_tstamp ack_delay;
  pnrange ranges[WIRE_RANGES];
  uint32_t forget;
  uint32_t id, off, total;
  const uint8_t *payload;
  size_t plen;
} pkt;

static int parse(const uint8_t *d, size_t len, pkt *k) {
  size_t p = HDR_LEN, i, n;

  if (len == 0) {
    return PTV_ERR_SHORT;
  }
  if (d[0] != PTV_LINK_VERSION) {
    return PTV_ERR_VERSION;
  }
  if (len < HDR_LEN) {
    return PTV_ERR_SHORT;
  }
  k->flags = d[1];
  if ((k->flags & ~F_ALL) != 0 || k->flags == 0 ||
      ((k->flags & F_BULK) && !(k->flags & F_DATA)) ||
      ((k->flags & F_SOFT) && (k->flags & (F_DATA | F_PING)))) {
    return PTV_ERR_MALFORMED;
  }
  k->pn = ptv_be_get32(d + 2);
  k->nranges = 0;
  if (k->flags & F_ACK) {
    uint64_t largest, first;

    if (len - p < ACK_MIN_LEN) {
      return PTV_ERR_SHORT;
    }
    largest = ptv_be_get32(d + p);
    k->ack_delay = (ptv_tstamp)ptv_be_get16(d + p + 4) * ACK_DELAY_UNIT;
    n = d[p + 6];
    first = ptv_be_get16(d + p + 7);
    p += ACK_MIN_LEN;
    if (first > largest) {
      return PTV_ERR_MALFORMED;
    }
    k->ranges[0].hi = largest;
    k->ranges[0].lo = largest - first;
    k->nranges = 1;
    if (len - p < n * ACK_RANGE_LEN) {
      return PTV_ERR_SHORT;
    }
    for (i = 0; i < n; ++i) {
      uint64_t gap = ptv_be_get16(d + p), rl = ptv_be_get16(d + p + 2), prev_lo, hi;

      p += ACK_RANGE_LEN;
      prev_lo = k->ranges[k->nranges - 1].lo;
      if (prev_lo < gap + 2) {
        return PTV_ERR_MALFORMED;
      }
      hi = prev_lo - gap - 2;
      if (rl > hi) {
        return PTV_ERR_MALFORMED;
      }
      k->ranges[k->nranges].hi = hi;
      k->ranges[k->nranges].lo = hi - rl;
      k->nranges++;
    }
  }
  if (k->flags & F_FORGET) {
    if (len - p < FORGET_LEN) {
      return PTV_ERR_SHORT;
    }
    k->forget = ptv_be_get32(d + p);
    p += FORGET_LEN;
  }
  if (k->flags & F_DATA) {
    if (len - p < DATA_HDR_LEN) {
      return PTV_ERR_SHORT;
    }
    k->id = ptv_be_get32(d + p);
    k->off = ptv_be_get24(d + p + 4);
    k->total = ptv_be_get24(d + p + 7);
    p += DATA_HDR_LEN;
    k->payload = d + p;
    k->plen = len - p;
    if (k->plen == 0 || k->total == 0 || k->off + k->plen > k->total) {
      return PTV_ERR_MALFORMED;
    }
  } else if (k->flags & F_SOFT) {
    k->payload = d + p;
    k->plen = len - p;
    if (k->plen == 0) {
      return PTV_ERR_MALFORMED;
    }
  } else if (p != len) {
    return PTV_ERR_MALFORMED;
  }
  return 0;
}

enum { D_DUP, D_DIRECT, D_STORE, D_REFUSE };

/* Decides what to do with a fragment without changing anything (apart from
 * growing a buffer, which changes no state). *pr gets the reassembly entry to
 * store into, possibly freshly allocated and not yet linked. */
static int check_frag(ptv_link *l, const pkt *k, uint32_t base, rmsg **pr,
                      int *verdict) {
  int bulk = (k->flags & F_BULK) != 0;
  uint32_t a = k->off, b = (uint32_t)(k->off + k->plen), i, touch = 0;
  rmsg *r;

  *pr = NULL;
  if (k->total > l->cfg.max_msg) {
    return PTV_ERR_MALFORMED;
  }
  if (bulk) {
    if (k->id < base) {
      *verdict = D_DUP;
      return 0;
    }
    if (k->id - base >= BULK_WIN) {
      return PTV_ERR_MALFORMED;
    }
    if (bit_get(l, k->id)) {
      *verdict = D_DUP;
      return 0;
    }
  } else {
    if (k->id < l->ctrl_next) {
      *verdict = D_DUP;
      return 0;
    }
    if (k->id - l->ctrl_next >= CTRL_WIN) {
      return PTV_ERR_MALFORMED;
    }
  }
  r = reasm_find(l, bulk, k->id);
  if (r == NULL) {
    size_t mem;

    if (k->off == 0 && k->plen == k->total && (bulk || k->id == l->ctrl_next)) {
      *verdict = D_DIRECT;
      return 0;
    }
    mem = sizeof(*r) + k->total + 8 * sizeof(ival);
    if (l->reasm_bytes + mem > l->cfg.max_reasm_bytes) {
      *verdict = D_REFUSE;
      return 0;
    }
    r = calloc(1, sizeof(*r) + k->total);
    if (r == NULL) {
      return PTV_ERR_NOMEM;
    }
    r->ivs = malloc(8 * sizeof(ival));
    if (r->ivs == NULL) {
      free(r);
      return PTV_ERR_NOMEM;
    }
    r->capiv = 8;
    r->buf = (uint8_t *)(r + 1);
    r->bulk = bulk;
    r->id = k->id;
    r->total = k->total;
    r->mem = mem;
    *pr = r;
    *verdict = D_STORE;
    return 0;
  }
  if (r->total != k->total) {
    return PTV_ERR_MALFORMED;
  }
  if (r->got == r->total) {
    *verdict = D_DUP; /* complete control message waiting for its turn */
    return 0;
  }
  for (i = 0; i < r->niv; ++i) {
    uint32_t s = r->ivs[i].s, e = r->ivs[i].e;

    if (e < a || s > b) {
      continue;
    }
    touch++;
    if (s < b && e > a) {
      uint32_t os = s > a ? s : a, oe = e < b ? e : b;

      if (memcmp(r->buf + os, k->payload + (os - a), oe - os) != 0) {
        return PTV_ERR_MALFORMED;
      }
    }
  }
  if (touch == 0 && r->niv >= r->capiv) {
    size_t grow = r->capiv * sizeof(ival);
    ival *n;

    if (r->capiv >= MAX_IVS ||
        l->reasm_bytes + grow > l->cfg.max_reasm_bytes) {
      *verdict = D_REFUSE;
      return 0;
    }
    n = realloc(r->ivs, 2 * grow);
    if (n == NULL) {
      return PTV_ERR_NOMEM;
    }
    r->ivs = n;
    r->capiv *= 2;
    r->mem += grow;
    l->reasm_bytes += grow;
  }
  *pr = r;
  *verdict = D_STORE;
  return 0;
}

static void store_frag(rmsg *r, const pkt *k) {
  uint32_t a = k->off, b = (uint32_t)(k->off + k->plen), i, first = 0, n = 0;
  uint32_t s = a, e = b;
  size_t overlap = 0;

  for (i = 0; i < r->niv; ++i) {
    if (r->ivs[i].e < a) {
      first = i + 1;
      continue;
    }
    if (r->ivs[i].s > b) {
      break;
    }
    if (n == 0) {
      first = i;
    }
    n++;
    if (r->ivs[i].s < b && r->ivs[i].e > a) {
      overlap += (r->ivs[i].e < b ? r->ivs[i].e : b) -
                 (r->ivs[i].s > a ? r->ivs[i].s : a);
    }
    if (r->ivs[i].s < s) {
      s = r->ivs[i].s;
    }
    if (r->ivs[i].e > e) {
      e = r->ivs[i].e;
    }
  }
  memcpy(r->buf + a, k->payload, k->plen);
  r->got += k->plen - overlap;
  if (n == 0) {
    memmove(&r->ivs[first + 1], &r->ivs[first],
            (r->niv - first) * sizeof(ival));
    r->niv++;
  } else if (n > 1) {
    memmove(&r->ivs[first + 1], &r->ivs[first + n],
            (r->niv - first - n) * sizeof(ival));
    r->niv -= n - 1;
  }
  r->ivs[first].s = s;
  r->ivs[first].e = e;
}

int ptv_link_recv(ptv_link *l, const uint8_t *dgram, size_t len,
                  ptv_tstamp now) {
  pkt k;
  rmsg *r = NULL;
  int rv, verdict = D_DUP, fresh, eliciting, bulk, ooo;
  uint32_t base;

  if (l == NULL || (dgram == NULL && len > 0)) {
    return PTV_ERR_INVALID_ARG;
  }
  if (l->closed) {
    return PTV_ERR_CLOSED;
  }
  rv = parse(dgram, len, &k);
  if (rv == 0 && (k.flags & F_ACK) && k.ranges[0].hi >= l->next_pn) {
    rv = PTV_ERR_MALFORMED; /* acks a packet never sent */
  }
  base = l->bulk_base;
  if (rv == 0 && (k.flags & F_FORGET) && k.forget > base) {
    base = k.forget;
  }
  if (rv == 0 && (k.flags & F_DATA)) {
    rv = check_frag(l, &k, base, &r, &verdict);
  }
  if (rv != 0) {
    l->st.rejected++;
    return rv;
  }
  fresh = r != NULL && reasm_find(l, r->bulk, r->id) != r;

  /* From here on the datagram is accepted. */
  if (now < l->now) {
    now = l->now; /* a clock stepping back would corrupt RTTs and timers */
  }
  l->now = now;
  l->last_recv = now;
  l->st.packets_recv++;
  l->st.bytes_recv += len;
  if (k.flags & F_ACK) {
    on_ack(l, k.ranges, k.nranges, k.ack_delay, now);
  }
  if (k.flags & F_FORGET) {
    apply_forget(l, k.forget);
  }
  if (verdict == D_REFUSE) {
    if (fresh) {
      free(r->ivs);
      free(r);
    }
    l->st.rejected++;
    return 0; /* not acknowledged: the partner will send it again */
  }

  eliciting = (k.flags & (F_DATA | F_FORGET | F_PING)) != 0;
  /* A gap or reordering is news the sender needs at once. */
  ooo = l->have_recv && k.pn != l->largest_recv + 1;
  rr_insert(l, k.pn);
  if (!l->have_recv || k.pn > l->largest_recv) {
    l->largest_recv = k.pn;
    l->largest_recv_time = now;
    l->have_recv = 1;
  }
  l->recv_since_ack++;
  if (eliciting) {
    if (l->ack_elicit++ == 0) {
      l->ack_deadline = now + l->cfg.max_ack_delay;
    }
    if (l->ack_elicit >= l->cfg.ack_every || ooo) {
      l->ack_deadline = now;
    }
  }

  if ((k.flags & F_SOFT) && (!l->have_soft || k.pn > l->soft_pn)) {
    /* newer state than any delivered: an older one arriving late is not */
    l->have_soft = 1;
    l->soft_pn = k.pn;
    deliver(l, k.payload, k.plen, 0);
    return 0;
  }
  if (!(k.flags & F_DATA) || verdict == D_DUP) {
    return 0;
  }
  bulk = (k.flags & F_BULK) != 0;
  if (verdict == D_DIRECT) {
    if (bulk) {
      bit_set(l, k.id, 1);
      deliver(l, k.payload, k.plen, 1);
    } else {
      l->ctrl_next++;
      deliver(l, k.payload, k.plen, 0);
      deliver_ctrl_chain(l);
    }
    return 0;
  }
  if (fresh) {
    r->next = l->reasm;
    l->reasm = r;
    l->reasm_bytes += r->mem;
    l->reasm_msgs++;
  }
  store_frag(r, &k);
  if (r->got == r->total) {
    if (bulk) {
      bit_set(l, r->id, 1);
      deliver(l, r->buf, r->total, 1);
      reasm_remove(l, r);
    } else if (r->id == l->ctrl_next) {
      deliver_ctrl_chain(l);
    }
  }
  return 0;
}

/* ---- soft messages -------------------------------------------------------- */

int ptv_link_send_soft(ptv_link *l, const uint8_t *msg, size_t len, ptv_tstamp now) {
  if (l == NULL || msg == NULL || len == 0 || len > l->cfg.mtu - PTV_LINK_SOFT_OVERHEAD) {
    return PTV_ERR_INVALID_ARG;
  }
  if (l->closed) {
    return PTV_ERR_CLOSED;
  }
  (void)now;
  memcpy(l->soft, msg, len); /* a newer state replaces one not yet written */
  l->soft_len = len;
  return 0;
}

int ptv_link_soft_pending(const ptv_link *l) { return l != NULL && l->soft_len > 0; }

/* ---- writing datagrams -------------------------------------------------- */

/* Encodes as many ack ranges as fit in room (>= ACK_MIN_LEN). Sets *complete
 * when every remembered range went in. */
static size_t encode_ack(const ptv_link *l, uint8_t *out, size_t room,
                         ptv_tstamp now, int *complete) {
  uint64_t first = l->rr[0].hi - l->rr[0].lo, delay;
  size_t p = ACK_MIN_LEN, i = 1, n = 0;
  int stop = 0;

  delay = (now - tmin(now, l->largest_recv_time)) / ACK_DELAY_UNIT;
  if (first > 0xffff) {
    first = 0xffff; /* acking fewer packets than received is safe */
    stop = 1;
  }
  ptv_be_put32(out, (uint32_t)l->rr[0].hi);
  ptv_be_put16(out + 4, (uint32_t)(delay > 0xffff ? 0xffff : delay));
  ptv_be_put16(out + 7, (uint32_t)first);
  for (; !stop && i < l->nrr && p + ACK_RANGE_LEN <= room && n < 255; ++i) {
    uint64_t gap = l->rr[i - 1].lo - l->rr[i].hi - 2;
    uint64_t rl = l->rr[i].hi - l->rr[i].lo;

    if (gap > 0xffff) {
      break;
    }
    if (rl > 0xffff) {
      rl = 0xffff;
      stop = 1;
    }
    ptv_be_put16(out + p, (uint32_t)gap);
    ptv_be_put16(out + p + 2, (uint32_t)rl);
    p += ACK_RANGE_LEN;
    n++;
  }
  out[6] = (uint8_t)n;
  *complete = i >= l->nrr && !stop;
  return p;
}

/* The oldest fragment still in flight, re-sent by a probe. */
static int oldest_inflight(ptv_link *l, smsg **pm, uint32_t *fi) {
  uint64_t pn;

  for (pn = l->ring_base; pn < l->next_pn; ++pn) {
    sent_rec *r = rec_of(l, pn);

    if (r->state == RS_INFLIGHT && r->msg != NULL &&
        r->msg->fstate[r->frag] == FS_SENT) {
      *pm = r->msg;
      *fi = r->frag;
      return 1;
    }
  }
  return 0;
}

static void do_close(ptv_link *l) {
  rmsg *r;

  if (l->closed) {
    return;
  }
  l->closed = 1;
  /* Nothing more can be sent or completed: release memory now. */
  while (l->ctrl.head) {
    smsg_free(l, l->ctrl.head);
  }
  while (l->bulk.head) {
    smsg_free(l, l->bulk.head);
  }
  while ((r = l->reasm) != NULL) {
    reasm_remove(l, r);
  }
  if (l->cb.on_closed) {
    l->cb.on_closed(l->user);
  }
}

enum { K_NONE, K_DATA, K_FORGET, K_PING, K_SOFT };

ptrdiff_t ptv_link_write(ptv_link *l, uint8_t *out, size_t cap,
                         ptv_tstamp now) {
  size_t mtu, p = HDR_LEN, plen = 0;
  int probe, paced, cc_ok, kind = K_NONE, ack_due, complete = 1, retx = 0;
  uint8_t flags = 0;
  smsg *m = NULL;
  uint32_t fi = 0;
  sent_rec *r;

  if (l == NULL || out == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  if (l->closed) {
    return 0;
  }
  mtu = l->cfg.mtu;
  if (cap < mtu) {
    return PTV_ERR_NOBUF;
  }
  if (now < l->now) {
    now = l->now; /* a clock stepping back would corrupt RTTs and timers */
  }
  l->now = now;
  if (l->next_pn > UINT32_MAX) {
    do_close(l); /* packet numbers exhausted */
    return 0;
  }
  expire_bulk(l, now);
  /* Keep the ring from wrapping onto packets still tracked. */
  while (l->next_pn - l->ring_base >= SENT_CAP) {
    declare_lost(l, l->ring_base, now);
    advance_ring(l);
  }

  probe = l->probes > 0;
  paced = ptv_pacer_next(&l->pacer, mtu, now) <= now;
  cc_ok = probe || (l->inflight + mtu <= cwnd(l) && paced);
  if (l->soft_len > 0 && !probe && paced) {
    kind = K_SOFT; /* small and never in flight: ahead of the window */
  } else if (cc_ok && pick(l, &m, &fi)) {
    kind = K_DATA;
  } else if (probe && oldest_inflight(l, &m, &fi)) {
    kind = K_DATA;
    retx = 1;
  } else if (l->forget_below > l->forget_sent) {
    kind = K_FORGET; /* tiny: not held back by the window */
  } else if (probe || now >= l->last_eliciting_sent + l->keepalive) {
    kind = K_PING;
  }
  ack_due = l->nrr > 0 && l->ack_elicit > 0 && now >= l->ack_deadline;
  if (kind == K_NONE && (!ack_due || l->ack_hold)) {
    return 0;
  }

  if (kind == K_DATA) {
    size_t off = (size_t)fi * l->frag_size;

    plen = m->len - off < l->frag_size ? m->len - off : l->frag_size;
  }
  if (l->nrr > 0 && (ack_due || l->recv_since_ack > 0)) {
    size_t room = mtu - HDR_LEN - FORGET_LEN;

    if (kind == K_DATA) {
      room -= DATA_HDR_LEN + plen;
    } else if (kind == K_SOFT) {
      room -= l->soft_len;
    }
    p += encode_ack(l, out + p, room, now, &complete);
    flags |= F_ACK;
    l->recv_since_ack = 0;
    /* A truncated piggybacked ack leaves the pure ack due. */
    if (complete || kind == K_NONE) {
      l->ack_elicit = 0;
    }
  }
  if (kind != K_NONE && kind != K_SOFT && l->forget_below > l->forget_acked) {
    flags |= F_FORGET;
    ptv_be_put32(out + p, l->forget_below);
    p += FORGET_LEN;
    if (l->forget_below > l->forget_sent) {
      l->forget_sent = l->forget_below;
    }
  }
  if (kind == K_DATA) {
    size_t off = (size_t)fi * l->frag_size;

    flags |= F_DATA | (m->bulk ? F_BULK : 0);
    ptv_be_put32(out + p, m->id);
    ptv_be_put24(out + p + 4, (uint32_t)off);
    ptv_be_put24(out + p + 7, (uint32_t)m->len);
    memcpy(out + p + DATA_HDR_LEN, m->data + off, plen);
    p += DATA_HDR_LEN + plen;
  } else if (kind == K_PING) {
    flags |= F_PING;
  } else if (kind == K_SOFT) {
    flags |= F_SOFT;
    memcpy(out + p, l->soft, l->soft_len);
    p += l->soft_len;
    l->soft_len = 0;
    ptv_pacer_take(&l->pacer, p, now);
  }
  out[0] = PTV_LINK_VERSION;
  out[1] = flags;
  ptv_be_put32(out + 2, (uint32_t)l->next_pn);

  r = rec_of(l, l->next_pn);
  memset(r, 0, sizeof(*r));
  r->sent = now;
  r->size = (uint32_t)p;
  if (kind != K_NONE && kind != K_SOFT) { /* a soft message is not in flight */
    if (l->inflight == 0) {
      l->dlv_time = now; /* idle time is not path time */
    }
    r->state = RS_INFLIGHT;
    r->delivered = l->dlv_bytes;
    r->delivered_time = l->dlv_time;
    l->inflight += p;
    l->last_eliciting_sent = now;
    if (!l->waiting) {
      l->waiting = 1;
      l->wait_since = now;
      l->ua_count = 0;
    }
    if (flags & F_FORGET) {
      r->flags |= RF_FORGET;
      r->forget = l->forget_below;
    }
    if (kind == K_DATA) {
      uint8_t s = m->fstate[fi];

      r->msg = m;
      r->frag = fi;
      if (s == FS_LOST || retx) {
        l->st.retransmits++;
      }
      if (s == FS_NEW || s == FS_LOST) {
        m->nneed--;
        l->need_frags--;
      }
      m->fstate[fi] = FS_SENT;
      if (!probe) {
        ptv_pacer_take(&l->pacer, p, now);
      }
    }
    if (l->need_frags == 0) {
      r->flags |= RF_APPLIM; /* nothing queued behind it */
    }
    if (probe) {
      l->probes--;
    }
  }
  l->next_pn++;
  advance_ring(l);
  l->st.packets_sent++;
  if (kind == K_SOFT) {
    l->st.packets_soft++;
  } else if (kind == K_NONE || kind == K_FORGET) {
    l->st.packets_ack_only++;
  } else if (kind == K_DATA && !m->bulk) {
    l->st.packets_ctrl++;
  }
  l->st.bytes_sent += p;
  return (ptrdiff_t)p;
}

/* ---- timers ------------------------------------------------------------- */

ptv_tstamp ptv_link_get_expiry(const ptv_link *l) {
  ptv_tstamp t;
  const smsg *m;

  if (l == NULL || l->closed) {
    return PTV_TSTAMP_MAX;
  }
  t = l->last_recv + l->cfg.idle_timeout;
  t = tmin(t, l->last_eliciting_sent + l->keepalive);
  t = tmin(t, l->loss_time != 0 ? l->loss_time : pto_time(l));
  if (l->waiting && l->cb.on_unanswered != NULL) {
    t = tmin(t, unanswered_time(l));
  }
  for (m = l->bulk.head; m != NULL; m = m->next) {
    if (m->deadline != 0) {
      t = tmin(t, m->deadline);
    }
  }
  if (l->ack_elicit > 0 && l->nrr > 0) {
    t = tmin(t, l->ack_deadline);
  }
  if (l->probes > 0) {
    t = tmin(t, l->probe_time);
  }
  if (l->forget_below > l->forget_sent) {
    t = tmin(t, l->now);
  }
  if ((l->inflight + l->cfg.mtu <= cwnd(l) && has_sendable(l)) || l->soft_len > 0) {
    t = tmin(t, ptv_pacer_next(&l->pacer, l->cfg.mtu, l->now));
  }
  return t;
}

void ptv_link_handle_expiry(ptv_link *l, ptv_tstamp now) {
  if (l == NULL || l->closed) {
    return;
  }
  if (now < l->now) {
    now = l->now; /* a clock stepping back would corrupt RTTs and timers */
  }
  l->now = now;
  if (now >= l->last_recv + l->cfg.idle_timeout) {
    do_close(l);
    return;
  }
  expire_bulk(l, now);
  if (l->loss_time != 0) {
    if (now >= l->loss_time) {
      detect_losses(l, now);
    }
  } else if (now >= pto_time(l)) {
    /* Tail loss: no ack will come to trigger loss detection, so probe. */
    l->pto_count++;
    l->st.pto_count++;
    l->probes = 2;
    l->probe_time = now;
  }
  if (l->waiting && l->cb.on_unanswered != NULL && now >= unanswered_time(l)) {
    if (l->ua_count++ == 0) {
      l->st.unanswered++;
    }
    l->cb.on_unanswered(l->user, now - l->wait_since);
  }
}

/* ---- lifecycle ---------------------------------------------------------- */

ptv_link *ptv_link_new(const ptv_link_config *cfg,
                       const ptv_link_callbacks *callbacks, void *user,
                       ptv_tstamp now) {
  ptv_link *l;

  if (callbacks == NULL || callbacks->on_message == NULL) {
    return NULL;
  }
  l = calloc(1, sizeof(*l));
  if (l == NULL) {
    return NULL;
  }
  if (fill_config(&l->cfg, cfg) != 0) {
    free(l);
    return NULL;
  }
  l->ring = calloc(SENT_CAP, sizeof(*l->ring));
  l->soft = malloc(l->cfg.mtu);
  if (l->ring == NULL || l->soft == NULL) {
    free(l->ring);
    free(l->soft);
    free(l);
    return NULL;
  }
  l->cb = *callbacks;
  l->user = user;
  l->now = now;
  l->frag_size = l->cfg.mtu - PTV_LINK_FRAG_OVERHEAD;
  l->keepalive = l->cfg.idle_timeout / 4;
  l->last_recv = now;
  l->last_eliciting_sent = now;
  l->minrtt_cur = l->minrtt_prev = PTV_TSTAMP_MAX;
  l->minrtt_epoch = now;
  l->dlv_time = now;
  l->slow_start = 1;
  l->rate = (double)l->cfg.init_rate_bps / 8.0;
  ptv_pacer_init(&l->pacer, l->cfg.init_rate_bps, 2 * l->cfg.mtu, now);
  set_rate(l, l->rate, now);
  return l;
}

void ptv_link_free(ptv_link *l) {
  rmsg *r;

  if (l == NULL) {
    return;
  }
  while (l->ctrl.head) {
    smsg_free(l, l->ctrl.head);
  }
  while (l->bulk.head) {
    smsg_free(l, l->bulk.head);
  }
  while ((r = l->reasm) != NULL) {
    reasm_remove(l, r);
  }
  free(l->ring);
  free(l->soft);
  free(l);
}

int ptv_link_is_closed(const ptv_link *l) { return l != NULL && l->closed; }

void ptv_link_hold_acks(ptv_link *l, int on) {
  if (l != NULL) {
    l->ack_hold = on != 0;
  }
}

void ptv_link_get_stats(const ptv_link *l, ptv_link_stats *st) {
  if (l == NULL || st == NULL) {
    return;
  }
  *st = l->st;
  st->srtt = l->have_rtt ? l->srtt : 0;
  st->rttvar = l->have_rtt ? l->rttvar : 0;
  st->min_rtt = l->have_rtt ? min_rtt(l) : 0;
  st->latest_rtt = l->latest_rtt;
  st->rate_bps = (uint64_t)(l->rate * 8.0);
  st->cwnd = cwnd(l);
  st->bytes_in_flight = l->inflight;
  st->queue_msgs = l->queue_msgs;
  st->queue_bytes = l->queue_bytes;
  st->reasm_msgs = l->reasm_msgs;
  st->reasm_bytes = l->reasm_bytes;
}
