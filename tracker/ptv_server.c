/* ptv_server.c -- the tracker service (see ptv_server.h). */
#include "ptv_server.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_ctl.h"
#include "ptv_err.h"
#include "ptv_tracker.h"
#include "ptv_wire.h"

#define TRACKER_OID 0          /* the tracker's overlay id in every channel */
#define TICK_US (1 * PTV_S)    /* HELLO timeouts are checked this often */
#define MAX_FRAME (PTV_WIRE_HDRLEN + PTV_CTL_MAX_BODY)
#define MAX_CHUNK_US (10 * PTV_S)

/* ---- a small u64 -> pointer map (open addressing, backward-shift delete) -- */

typedef struct {
  uint64_t *keys;
  void **vals; /* NULL: empty slot */
  uint32_t cap, n; /* cap: power of two */
} umap;

static uint32_t umap_slot(const umap *m, uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return (uint32_t)k & (m->cap - 1);
}

static void *umap_get(const umap *m, uint64_t k) {
  if (!m->cap) return NULL;
  for (uint32_t s = umap_slot(m, k);; s = (s + 1) & (m->cap - 1)) {
    if (!m->vals[s]) return NULL;
    if (m->keys[s] == k) return m->vals[s];
  }
}

static int umap_put(umap *m, uint64_t k, void *v);

static int umap_grow(umap *m) {
  umap n = {0};
  n.cap = m->cap ? 2 * m->cap : 64;
  n.keys = calloc(n.cap, sizeof(*n.keys));
  n.vals = calloc(n.cap, sizeof(*n.vals));
  if (!n.keys || !n.vals) {
    free(n.keys);
    free(n.vals);
    return PTV_ERR_NOMEM;
  }
  for (uint32_t i = 0; i < m->cap; i++)
    if (m->vals[i]) umap_put(&n, m->keys[i], m->vals[i]);
  free(m->keys);
  free(m->vals);
  *m = n;
  return 0;
}

static int umap_put(umap *m, uint64_t k, void *v) {
  if (2 * (m->n + 1) > m->cap && umap_grow(m) != 0) return PTV_ERR_NOMEM;
  uint32_t s = umap_slot(m, k);
  while (m->vals[s]) s = (s + 1) & (m->cap - 1);
  m->keys[s] = k;
  m->vals[s] = v;
  m->n++;
  return 0;
}

static void umap_del(umap *m, uint64_t k) {
  if (!m->cap) return;
  uint32_t mask = m->cap - 1, s = umap_slot(m, k);
  for (;; s = (s + 1) & mask) {
    if (!m->vals[s]) return;
    if (m->keys[s] == k) break;
  }
  m->vals[s] = NULL;
  m->n--;
  for (uint32_t j = (s + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
    uint32_t home = umap_slot(m, m->keys[j]);
    if (((j - home) & mask) >= ((j - s) & mask)) {
      m->keys[s] = m->keys[j];
      m->vals[s] = m->vals[j];
      m->vals[j] = NULL;
      s = j;
    }
  }
}

static void umap_free(umap *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof(*m));
}

/* ---- state -------------------------------------------------------------- */

typedef struct chan chan;

typedef struct conn {
  uint64_t id, addr;
  uint8_t welcomed, role;
  uint8_t broken; /* a send failed: closed at the next sweep (not under callers) */
  ptv_id oid;
  chan *ch;
  uint8_t pk[PTV_CTL_PKLEN];
  ptv_tstamp opened;
  double tokens;
  ptv_tstamp tokens_at;
  uint8_t *rbuf;
  size_t rlen;
} conn;

struct chan {
  ptv_server *srv;
  uint32_t seq;            /* member keys: seq << 32 | overlay id */
  char name[PTV_CTL_NAME_MAX + 1];
  uint8_t pk[PTV_CTL_PKLEN];
  uint32_t chunk_us, stream_kbps;
  ptv_tracker *eng;
  conn *source;
  uint32_t nconns;         /* welcomed connections in it */
  chan *next;
};

struct ptv_server {
  ptv_server_config cfg;
  ptv_server_callbacks cb;
  void *user;
  umap conns;   /* conn id -> conn */
  umap members; /* chan seq << 32 | oid -> conn */
  umap addrs;   /* address -> count (stored as pointer-sized integer + 1) */
  chan *chans;
  uint32_t chan_seq;
  ptv_tstamp next_tick;
  int any_broken;
  ptv_server_stats st;
};

static void logf_(ptv_server *s, const char *fmt, ...) {
  if (!s->cb.log) return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  s->cb.log(s->user, line);
}

static uint64_t member_key(const chan *c, ptv_id oid) { return (uint64_t)c->seq << 32 | oid; }

static void send_bytes(ptv_server *s, conn *c, const uint8_t *buf, size_t len) {
  if (c->broken) return;
  s->st.msgs_out++;
  if (s->cb.send(s->user, c->id, buf, len) != 0) {
    c->broken = 1; /* its callers may still hold it: closed by sweep_broken */
    s->any_broken = 1;
  }
}

static void send_error(ptv_server *s, conn *c, uint16_t code, const char *text) {
  ptv_ctl m = {.type = PTV_CTL_ERROR};
  uint8_t buf[PTV_WIRE_HDRLEN + 3 + PTV_CTL_TEXT_MAX];
  size_t tl = strlen(text);
  m.u.error.code = code;
  m.u.error.text = text;
  m.u.error.text_len = (uint8_t)(tl > PTV_CTL_TEXT_MAX ? PTV_CTL_TEXT_MAX : tl);
  int n = ptv_ctl_encode(buf, sizeof(buf), &m);
  if (n > 0) send_bytes(s, c, buf, (size_t)n);
}

static void addr_count(ptv_server *s, uint64_t addr, int delta) {
  uintptr_t v = (uintptr_t)umap_get(&s->addrs, addr);
  uintptr_t cnt = v ? v - 1 : 0;
  if (v) umap_del(&s->addrs, addr);
  cnt = delta > 0 ? cnt + 1 : (cnt ? cnt - 1 : 0);
  if (cnt) umap_put(&s->addrs, addr, (void *)(cnt + 1));
}

static void chan_free(ptv_server *s, chan *ch) {
  for (chan **pp = &s->chans; *pp; pp = &(*pp)->next)
    if (*pp == ch) {
      *pp = ch->next;
      break;
    }
  ptv_tracker_free(ch->eng);
  free(ch);
}

/* Leaves the channel: the engine hears a LEAVE so the member is no longer
 * handed out; an empty channel without its source is unloaded (the store
 * keeps it live: the source may come back). */
static void conn_leave(ptv_server *s, conn *c, ptv_tstamp now) {
  chan *ch = c->ch;
  if (!ch || !c->welcomed) return;
  umap_del(&s->members, member_key(ch, c->oid));
  uint8_t buf[PTV_WIRE_HDRLEN];
  ptv_msg m = {.type = PTV_MSG_LEAVE};
  if (ptv_wire_encode(buf, sizeof(buf), &m) > 0) ptv_tracker_recv(ch->eng, c->oid, buf, sizeof(buf), now);
  if (ch->source == c) ch->source = NULL;
  c->ch = NULL;
  c->welcomed = 0;
  if (--ch->nconns == 0 && !ch->source) chan_free(s, ch);
}

static void conn_forget(ptv_server *s, conn *c, ptv_tstamp now) {
  conn_leave(s, c, now);
  umap_del(&s->conns, c->id);
  addr_count(s, c->addr, -1);
  s->st.conns--;
  free(c->rbuf);
  free(c);
}

/* Closes a misbehaving or finished connection: ERROR (if code), close. */
static void conn_kill(ptv_server *s, conn *c, uint16_t code, const char *why, ptv_tstamp now) {
  if (code) send_error(s, c, code, why);
  uint64_t id = c->id;
  conn_forget(s, c, now);
  s->cb.close(s->user, id);
}

/* Connections whose sends failed (a reader too far behind) are closed here,
 * where nothing up the stack holds them. */
static void sweep_broken(ptv_server *s, ptv_tstamp now) {
  if (!s->any_broken) return;
  s->any_broken = 0;
  for (uint32_t i = 0; i < s->conns.cap; i++) {
    conn *c = s->conns.vals[i];
    if (c && c->broken) {
      conn_kill(s, c, 0, "", now);
      i = (uint32_t)-1; /* the map changed: rescan */
    }
  }
}

/* ---- engine callbacks ---------------------------------------------------- */

static int eng_send(void *user, ptv_id to, const uint8_t *buf, size_t len) {
  chan *ch = user;
  conn *c = umap_get(&ch->srv->members, member_key(ch, to));
  if (!c) return -1;
  send_bytes(ch->srv, c, buf, len);
  return 0;
}

static uint64_t eng_rand(void *user) {
  chan *ch = user;
  return ch->srv->cb.rand(ch->srv->user);
}

static void eng_ban(void *user, ptv_id id, ptv_tstamp now) {
  chan *ch = user;
  ptv_server *s = ch->srv;
  conn *c = umap_get(&s->members, member_key(ch, id));
  s->st.bans++;
  if (!c) return;
  char fp[17];
  for (int i = 0; i < 8; i++) snprintf(fp + 2 * i, 3, "%02x", c->pk[i]);
  logf_(s, "channel %s: peer %u (key %s) banned for forged chunks", ch->name, id, fp);
  if (ptv_store_ban_add(s->cfg.store, c->pk, UINT64_MAX, "forged chunks") != 0)
    logf_(s, "store: ban not recorded: %s", ptv_store_errmsg(s->cfg.store));
  conn_kill(s, c, PTV_CTL_E_BANNED, "banned: forged chunks reported by other peers", now);
}

static chan *chan_get(ptv_server *s, const ptv_channel *rec) {
  for (chan *ch = s->chans; ch; ch = ch->next)
    if (strcmp(ch->name, rec->name) == 0) return ch;
  chan *ch = calloc(1, sizeof(*ch));
  if (!ch) return NULL;
  ch->srv = s;
  ch->seq = ++s->chan_seq;
  snprintf(ch->name, sizeof(ch->name), "%s", rec->name);
  memcpy(ch->pk, rec->publisher_pk, PTV_CTL_PKLEN);
  ch->chunk_us = rec->chunk_us;
  ch->stream_kbps = rec->stream_kbps;
  ptv_tracker_config tc = {.self = TRACKER_OID, .chunk_us = rec->chunk_us,
                           .expire_us = s->cfg.member_expire};
  ptv_tracker_callbacks tcb = {.send = eng_send, .rand = eng_rand, .on_ban = eng_ban};
  ch->eng = ptv_tracker_new(&tc, &tcb, ch);
  if (!ch->eng) {
    free(ch);
    return NULL;
  }
  ch->next = s->chans;
  s->chans = ch;
  return ch;
}

/* ---- HELLO ---------------------------------------------------------------- */

static int on_hello(ptv_server *s, conn *c, const ptv_ctl_hello *h, ptv_tstamp now,
                    uint64_t unix_us) {
  uint8_t tbs[PTV_CTL_MAX_BODY + 16];
  int n = ptv_ctl_hello_signed_bytes(h, tbs, sizeof(tbs));
  uint64_t skew = h->ts_us > unix_us ? h->ts_us - unix_us : unix_us - h->ts_us;
  if (n < 0 || skew > PTV_SERVER_SKEW ||
      crypto_sign_verify_detached(h->sig, tbs, (unsigned long long)n, h->pk) != 0) {
    s->st.hellos_refused++;
    conn_kill(s, c, PTV_CTL_E_BAD_SIG,
              skew > PTV_SERVER_SKEW ? "hello time stamp too far from the tracker's clock"
                                     : "hello signature does not verify",
              now);
    return PTV_ERR_BAD_SIG;
  }
  char name[PTV_CTL_NAME_MAX + 1];
  memcpy(name, h->name, h->name_len);
  name[h->name_len] = 0;
  if (!ptv_store_name_valid(name)) {
    s->st.hellos_refused++;
    conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "channel names are 1-64 of A-Z a-z 0-9 . _ -", now);
    return PTV_ERR_INVALID_ARG;
  }
  int rv = ptv_store_ban_check(s->cfg.store, h->pk, unix_us);
  if (rv < 0) goto store_failed; /* fail closed: a ban we cannot read still holds */
  if (rv == 1) {
    s->st.hellos_refused++;
    conn_kill(s, c, PTV_CTL_E_BANNED, "this key is banned", now);
    return PTV_ERR_INVALID_ARG;
  }
  ptv_channel rec;
  rv = ptv_store_channel_get(s->cfg.store, name, &rec);
  if (rv < 0 && rv != PTV_ERR_NOT_FOUND) goto store_failed;
  if (h->role == PTV_ROLE_SOURCE) {
    if (rv == 0 && memcmp(rec.publisher_pk, h->pk, PTV_CTL_PKLEN) != 0) {
      s->st.hellos_refused++;
      conn_kill(s, c, PTV_CTL_E_NAME_TAKEN, "channel name held by another publisher key", now);
      return PTV_ERR_EXISTS;
    }
    if (h->chunk_us == 0 || h->chunk_us > MAX_CHUNK_US) {
      s->st.hellos_refused++;
      conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "chunk duration must be 1 us .. 10 s", now);
      return PTV_ERR_INVALID_ARG;
    }
    if (rv == 0 && rec.ended_us == 0 && rec.chunk_us != h->chunk_us) {
      /* peers in the channel time their playback by its chunk duration */
      char text[160];
      snprintf(text, sizeof(text),
               "channel %s is live with %u ms chunks: use the same duration, or end it first",
               name, rec.chunk_us / 1000);
      s->st.hellos_refused++;
      conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, text, now);
      return PTV_ERR_INVALID_ARG;
    }
    if (rv == PTV_ERR_NOT_FOUND || rec.ended_us != 0) {
      memset(&rec, 0, sizeof(rec));
      snprintf(rec.name, sizeof(rec.name), "%s", name);
      memcpy(rec.publisher_pk, h->pk, PTV_CTL_PKLEN);
      rec.chunk_us = h->chunk_us;
      rec.stream_kbps = h->stream_kbps;
      rec.created_us = unix_us;
      if (h->desc_len) memcpy(rec.description, h->desc, h->desc_len);
      rec.description[h->desc_len] = 0;
      rv = ptv_store_channel_create(s->cfg.store, &rec);
      if (rv == PTV_ERR_INVALID_ARG) {
        s->st.hellos_refused++;
        conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "channel description is not valid UTF-8", now);
        return rv;
      }
      if (rv < 0) goto store_failed;
      logf_(s, "channel %s created (%u us chunks, %u kbps)", name, rec.chunk_us, rec.stream_kbps);
    }
  } else if (rv == PTV_ERR_NOT_FOUND || rec.ended_us != 0) {
    s->st.hellos_refused++;
    conn_kill(s, c, PTV_CTL_E_NO_CHANNEL, "no live channel of that name", now);
    return PTV_ERR_NOT_FOUND;
  }
  /* A reconnect beats a stale link: the old connection of the same source
   * goes first (its leaving may unload the channel, so look it up after). */
  for (chan *old = s->chans; old && h->role == PTV_ROLE_SOURCE; old = old->next)
    if (strcmp(old->name, rec.name) == 0) {
      if (old->source)
        conn_kill(s, old->source, PTV_CTL_E_REPLACED, "replaced by a newer source connection", now);
      break;
    }
  chan *ch = chan_get(s, &rec);
  if (!ch) {
    conn_kill(s, c, PTV_CTL_E_INTERNAL, "out of memory", now);
    return PTV_ERR_NOMEM;
  }
  ptv_id oid = h->want_id;
  conn *holder = oid != PTV_ID_NONE ? umap_get(&s->members, member_key(ch, oid)) : NULL;
  if (holder && holder != c && memcmp(holder->pk, h->pk, PTV_CTL_PKLEN) == 0) {
    /* the same key back on a new connection (the old one half-open): it
     * keeps its id, which its partners know it by */
    conn_kill(s, holder, PTV_CTL_E_REPLACED, "replaced by a newer connection of this key", now);
    ch = chan_get(s, &rec); /* the old one's leaving may have unloaded it */
    if (!ch) {
      conn_kill(s, c, PTV_CTL_E_INTERNAL, "out of memory", now);
      return PTV_ERR_NOMEM;
    }
  }
  if (oid == TRACKER_OID || oid == PTV_ID_NONE || umap_get(&s->members, member_key(ch, oid))) {
    do oid = (ptv_id)(s->cb.rand(s->user) % 0x7ffffffeu) + 1;
    while (umap_get(&s->members, member_key(ch, oid)));
  }
  if (umap_put(&s->members, member_key(ch, oid), c) != 0) {
    conn_kill(s, c, PTV_CTL_E_INTERNAL, "out of memory", now);
    return PTV_ERR_NOMEM;
  }
  c->welcomed = 1;
  c->ch = ch;
  c->oid = oid;
  c->role = h->role;
  memcpy(c->pk, h->pk, PTV_CTL_PKLEN);
  ch->nconns++;
  if (h->role == PTV_ROLE_SOURCE) ch->source = c;
  s->st.hellos_ok++;
  ptv_ctl w = {.type = PTV_CTL_WELCOME};
  w.u.welcome.id = oid;
  w.u.welcome.tracker = TRACKER_OID;
  w.u.welcome.chunk_us = ch->chunk_us;
  w.u.welcome.stream_kbps = ch->stream_kbps;
  w.u.welcome.publisher_pk = ch->pk;
  uint8_t buf[PTV_WIRE_HDRLEN + 64];
  n = ptv_ctl_encode(buf, sizeof(buf), &w);
  if (n > 0) send_bytes(s, c, buf, (size_t)n);
  return 0;

store_failed:
  logf_(s, "store: %s", ptv_store_errmsg(s->cfg.store));
  conn_kill(s, c, PTV_CTL_E_INTERNAL, "tracker store failed; try again", now);
  return PTV_ERR_STORE;
}

/* ---- messages ---------------------------------------------------------- */

static int on_signal(ptv_server *s, conn *c, const ptv_ctl_signal *sg) {
  conn *to = umap_get(&s->members, member_key(c->ch, sg->peer));
  if (!to || to == c) {
    s->st.signals_unreachable++;
    char text[64];
    snprintf(text, sizeof(text), "peer %u is not in this channel", sg->peer);
    send_error(s, c, PTV_CTL_E_UNREACHABLE, text);
    return 0;
  }
  ptv_ctl m = {.type = PTV_CTL_SIGNAL};
  m.u.signal = *sg;
  m.u.signal.peer = c->oid;
  m.u.signal.pk = c->pk; /* the key it proved at HELLO, not one it claims */
  uint8_t buf[PTV_WIRE_HDRLEN + 64 + PTV_CTL_SIGNAL_MAX];
  int n = ptv_ctl_encode(buf, sizeof(buf), &m);
  if (n > 0) send_bytes(s, to, buf, (size_t)n);
  s->st.signals_relayed++;
  return 0;
}

static void on_end(ptv_server *s, conn *c, ptv_tstamp now, uint64_t unix_us) {
  chan *ch = c->ch;
  if (ptv_store_channel_end(s->cfg.store, ch->name, unix_us ? unix_us : 1) != 0)
    logf_(s, "store: %s", ptv_store_errmsg(s->cfg.store));
  logf_(s, "channel %s ended by its source", ch->name);
  /* Everyone in it is told and let go; the last one out unloads it. */
  for (uint32_t i = 0; i < s->members.cap; i++) {
    conn *m = s->members.vals[i];
    if (m && m->ch == ch && m != c) {
      conn_kill(s, m, PTV_CTL_E_NO_CHANNEL, "the channel has ended", now);
      i = (uint32_t)-1; /* the map changed under us: start over */
    }
  }
  conn_kill(s, c, 0, "", now);
}

/* One complete frame. Returns 0, or < 0 if the connection was closed. */
static int on_frame(ptv_server *s, conn *c, const uint8_t *f, size_t len, ptv_tstamp now,
                    uint64_t unix_us) {
  s->st.msgs_in++;
  if (f[1] >= PTV_CTL_TYPE_MIN) {
    ptv_ctl m;
    int rv = ptv_ctl_decode(&m, f, len);
    if (rv < 0) {
      s->st.bad_msgs++;
      conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "malformed control message", now);
      return rv;
    }
    if (!c->welcomed) {
      if (m.type == PTV_CTL_HELLO) return on_hello(s, c, &m.u.hello, now, unix_us);
      s->st.bad_msgs++;
      conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "HELLO must come first", now);
      return PTV_ERR_INVALID_ARG;
    }
    switch (m.type) {
    case PTV_CTL_SIGNAL:
      return on_signal(s, c, &m.u.signal);
    case PTV_CTL_END:
      if (c->role == PTV_ROLE_SOURCE) {
        on_end(s, c, now, unix_us);
        return PTV_ERR_CLOSED;
      }
      break; /* only a source may end its channel */
    default:
      break;
    }
    s->st.bad_msgs++;
    conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "unexpected control message", now);
    return PTV_ERR_INVALID_ARG;
  }
  if (!c->welcomed) {
    s->st.bad_msgs++;
    conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "HELLO must come first", now);
    return PTV_ERR_INVALID_ARG;
  }
  /* A peer may not JOIN as the source (the engine would hand it out as
   * one and never ban it): the role is the one its HELLO was welcomed as. */
  if (f[1] == PTV_MSG_JOIN && len > PTV_WIRE_HDRLEN && f[PTV_WIRE_HDRLEN] != c->role) {
    s->st.bad_msgs++;
    conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "JOIN role differs from the HELLO's", now);
    return PTV_ERR_INVALID_ARG;
  }
  int rv = ptv_tracker_recv(c->ch->eng, c->oid, f, len, now);
  if (rv < 0) {
    s->st.bad_msgs++;
    conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "malformed overlay message", now);
    return rv;
  }
  return 0;
}

int ptv_server_conn_data(ptv_server *s, uint64_t id, const uint8_t *buf, size_t len,
                         ptv_tstamp now, uint64_t unix_us) {
  conn *c = umap_get(&s->conns, id);
  if (!c) return PTV_ERR_NOT_FOUND;
  s->st.bytes_in += len;
  for (;;) {
    /* Gather one frame: its header, then as much body as it declares. */
    if (c->rlen < PTV_WIRE_HDRLEN) {
      size_t take = PTV_WIRE_HDRLEN - c->rlen < len ? PTV_WIRE_HDRLEN - c->rlen : len;
      memcpy(c->rbuf + c->rlen, buf, take);
      c->rlen += take;
      buf += take;
      len -= take;
      if (c->rlen < PTV_WIRE_HDRLEN) return 0;
    }
    long fl = ptv_ctl_frame_len(c->rbuf, c->rlen, PTV_CTL_MAX_BODY);
    if (fl < 0) {
      s->st.bad_msgs++;
      conn_kill(s, c, PTV_CTL_E_BAD_REQUEST,
                fl == PTV_ERR_VERSION ? "unsupported protocol version" : "message too large", now);
      return (int)fl;
    }
    if (c->rlen < (size_t)fl) {
      size_t take = (size_t)fl - c->rlen < len ? (size_t)fl - c->rlen : len;
      memcpy(c->rbuf + c->rlen, buf, take);
      c->rlen += take;
      buf += take;
      len -= take;
      if (c->rlen < (size_t)fl) return 0;
    }
    /* A whole frame: charge it to the sender's rate, then handle it. */
    double dt = (double)(now - c->tokens_at) / 1e6;
    c->tokens_at = now;
    c->tokens += dt * s->cfg.rate_per_s;
    if (c->tokens > s->cfg.rate_burst) c->tokens = s->cfg.rate_burst;
    if (c->tokens < 1.0) {
      s->st.rate_limited++;
      conn_kill(s, c, PTV_CTL_E_LIMIT, "request rate over the limit", now);
      return PTV_ERR_FULL;
    }
    c->tokens -= 1.0;
    size_t flen = c->rlen;
    c->rlen = 0;
    int rv = on_frame(s, c, c->rbuf, flen, now, unix_us);
    if (rv < 0) {
      sweep_broken(s, now);
      return rv;
    }
    if (s->any_broken) {
      int self = c->broken;
      sweep_broken(s, now);
      if (self) return PTV_ERR_CLOSED;
    }
  }
  return 0;
}

/* ---- connections --------------------------------------------------------- */

int ptv_server_conn_open(ptv_server *s, uint64_t id, uint64_t addr, ptv_tstamp now) {
  if (umap_get(&s->conns, id)) return PTV_ERR_EXISTS;
  uintptr_t v = (uintptr_t)umap_get(&s->addrs, addr);
  if (s->st.conns >= s->cfg.max_conns || (v ? v - 1 : 0) >= s->cfg.max_per_addr) {
    s->st.conns_refused++;
    return PTV_ERR_FULL;
  }
  conn *c = calloc(1, sizeof(*c));
  if (!c || !(c->rbuf = malloc(MAX_FRAME))) {
    free(c);
    return PTV_ERR_NOMEM;
  }
  c->id = id;
  c->addr = addr;
  c->opened = c->tokens_at = now;
  c->tokens = s->cfg.rate_burst;
  c->oid = PTV_ID_NONE;
  if (umap_put(&s->conns, id, c) != 0) {
    free(c->rbuf);
    free(c);
    return PTV_ERR_NOMEM;
  }
  addr_count(s, addr, +1);
  s->st.conns++;
  s->st.conns_total++;
  return 0;
}

void ptv_server_conn_closed(ptv_server *s, uint64_t id, ptv_tstamp now) {
  conn *c = umap_get(&s->conns, id);
  if (c) conn_forget(s, c, now);
}

ptv_tstamp ptv_server_get_expiry(const ptv_server *s) {
  ptv_tstamp t = s->next_tick;
  for (chan *ch = s->chans; ch; ch = ch->next) {
    ptv_tstamp e = ptv_tracker_get_expiry(ch->eng);
    if (e < t) t = e;
  }
  return t;
}

void ptv_server_handle_expiry(ptv_server *s, ptv_tstamp now) {
  for (chan *ch = s->chans; ch; ch = ch->next)
    if (ptv_tracker_get_expiry(ch->eng) <= now) ptv_tracker_handle_expiry(ch->eng, now);
  sweep_broken(s, now);
  if (now < s->next_tick) return;
  s->next_tick = now + TICK_US;
  for (uint32_t i = 0; i < s->conns.cap; i++) {
    conn *c = s->conns.vals[i];
    if (c && !c->welcomed && now - c->opened > s->cfg.hello_timeout) {
      conn_kill(s, c, PTV_CTL_E_BAD_REQUEST, "no HELLO in time", now);
      i = (uint32_t)-1; /* the map changed: rescan */
    }
  }
}

ptv_server *ptv_server_new(const ptv_server_config *c, const ptv_server_callbacks *cb,
                           void *user) {
  if (!c || !c->store || !cb || !cb->send || !cb->close || !cb->rand) return NULL;
  if (sodium_init() < 0) return NULL;
  ptv_server *s = calloc(1, sizeof(*s));
  if (!s) return NULL;
  s->cfg = *c;
  if (!s->cfg.max_conns) s->cfg.max_conns = 4096;
  if (!s->cfg.max_per_addr) s->cfg.max_per_addr = 64;
  if (!s->cfg.rate_per_s) s->cfg.rate_per_s = 200;
  if (!s->cfg.rate_burst) s->cfg.rate_burst = 400;
  if (!s->cfg.hello_timeout) s->cfg.hello_timeout = 10 * PTV_S;
  if (!s->cfg.member_expire) s->cfg.member_expire = 60 * PTV_S;
  s->cb = *cb;
  s->user = user;
  return s;
}

void ptv_server_free(ptv_server *s) {
  if (!s) return;
  for (uint32_t i = 0; i < s->conns.cap; i++) {
    conn *c = s->conns.vals[i];
    if (c) {
      free(c->rbuf);
      free(c);
    }
  }
  while (s->chans) chan_free(s, s->chans);
  umap_free(&s->conns);
  umap_free(&s->members);
  umap_free(&s->addrs);
  free(s);
}

void ptv_server_get_stats(const ptv_server *s, ptv_server_stats *st) {
  *st = s->st;
  st->channels_live = 0;
  st->members = 0;
  for (chan *ch = s->chans; ch; ch = ch->next) {
    st->channels_live++;
    st->members += ptv_tracker_nmembers(ch->eng);
  }
}

uint32_t ptv_server_channel_members(const ptv_server *s, const char *name) {
  for (chan *ch = s->chans; ch; ch = ch->next)
    if (strcmp(ch->name, name) == 0) return ptv_tracker_nmembers(ch->eng);
  return 0;
}
