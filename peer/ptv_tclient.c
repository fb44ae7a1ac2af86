/* ptv_tclient.c -- see ptv_tclient.h. */
#include "ptv_tclient.h"

#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_rt.h"
#include "ptv_store.h"
#include "ptv_wire.h"

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 5000
#define FRAME_MAX (PTV_WIRE_HDRLEN + 4096)

typedef struct sock {
  uv_tcp_t h;
  uv_connect_t creq;
  ptv_tclient *t;
  int dead; /* superseded or closing: its callbacks are ignored */
} sock;

struct ptv_tclient {
  uv_loop_t *loop;
  ptv_tclient_config cfg;
  char channel[PTV_CTL_NAME_MAX + 1];
  char desc[PTV_CTL_DESC_MAX + 1];
  char tracker[300];
  ptv_tclient_callbacks cb;
  void *user;
  sock *s;            /* current connection attempt or connection */
  uv_timer_t retry;
  unsigned retry_ms;
  int welcomed, stopped, final_error;
  ptv_id my_id;       /* asked for again after a reconnect */
  uint8_t rbuf[FRAME_MAX];
  size_t rlen;
  int open_handles;   /* the client is freed when the last one closes */
};

static void connect_now(ptv_tclient *t);
static void on_retry(uv_timer_t *timer) { connect_now(timer->data); }

static void maybe_free(ptv_tclient *t) {
  if (t->stopped && t->open_handles == 0) free(t);
}

static void sock_closed(uv_handle_t *h) {
  sock *s = h->data;
  ptv_tclient *t = s->t;
  free(s);
  t->open_handles--;
  maybe_free(t);
}

static void drop_sock(ptv_tclient *t, const char *why) {
  sock *s = t->s;
  if (!s) return;
  t->s = NULL;
  s->dead = 1;
  uv_close((uv_handle_t *)&s->h, sock_closed);
  int was_up = t->welcomed;
  t->welcomed = 0;
  t->rlen = 0;
  if (t->stopped) return;
  if (was_up && t->cb.on_down) t->cb.on_down(t->user, why);
  if (t->final_error) return;
  ptv_rt_log(2, "tracker %s: %s; retrying in %u ms", t->tracker, why, t->retry_ms);
  uv_timer_start(&t->retry, on_retry, t->retry_ms, 0);
  t->retry_ms = t->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : t->retry_ms * 2;
}

static void on_write(uv_write_t *req, int status) {
  (void)status;
  free(req);
}

static int write_raw(ptv_tclient *t, const uint8_t *buf, size_t len) {
  if (!t->s || t->s->dead) return PTV_ERR_CLOSED;
  uv_write_t *req = malloc(sizeof(*req) + len);
  if (!req) return PTV_ERR_NOMEM;
  memcpy(req + 1, buf, len);
  uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)len);
  if (uv_write(req, (uv_stream_t *)&t->s->h, &b, 1, on_write) != 0) {
    free(req);
    return PTV_ERR_CLOSED;
  }
  return 0;
}

static int send_hello(ptv_tclient *t) {
  ptv_ctl m = {.type = PTV_CTL_HELLO};
  uint8_t sig[PTV_CTL_SIGLEN], tbs[PTV_CTL_MAX_BODY + 16], buf[PTV_WIRE_HDRLEN + PTV_CTL_MAX_BODY];
  ptv_ctl_hello *h = &m.u.hello;
  h->role = t->cfg.role;
  h->nat = t->cfg.nat;
  h->upload_kbps = t->cfg.upload_kbps;
  h->want_id = t->my_id;
  h->ts_us = ptv_rt_unix_us();
  h->pk = ptv_identity_pk(t->cfg.id);
  h->chunk_us = t->cfg.chunk_us;
  h->stream_kbps = t->cfg.stream_kbps;
  h->name = t->channel;
  h->name_len = (uint8_t)strlen(t->channel);
  h->desc = t->desc;
  h->desc_len = (uint8_t)strlen(t->desc);
  int n = ptv_ctl_hello_signed_bytes(h, tbs, sizeof(tbs));
  if (n < 0 || ptv_identity_sign(t->cfg.id, tbs, (size_t)n, sig) != 0) return PTV_ERR_INVALID_ARG;
  h->sig = sig;
  n = ptv_ctl_encode(buf, sizeof(buf), &m);
  if (n < 0) return n;
  return write_raw(t, buf, (size_t)n);
}

static void on_frame(ptv_tclient *t, const uint8_t *f, size_t len) {
  if (f[1] < PTV_CTL_TYPE_MIN) {
    if (t->welcomed && t->cb.on_overlay) t->cb.on_overlay(t->user, f, len);
    return;
  }
  ptv_ctl m;
  if (ptv_ctl_decode(&m, f, len) < 0) {
    drop_sock(t, "malformed message from the tracker");
    return;
  }
  switch (m.type) {
  case PTV_CTL_WELCOME:
    t->welcomed = 1;
    t->my_id = m.u.welcome.id;
    t->retry_ms = RETRY_MIN_MS;
    if (t->cb.on_welcome) t->cb.on_welcome(t->user, &m.u.welcome);
    break;
  case PTV_CTL_SIGNAL:
    if (t->welcomed && t->cb.on_signal) t->cb.on_signal(t->user, &m.u.signal);
    break;
  case PTV_CTL_ERROR: {
    char text[PTV_CTL_TEXT_MAX + 1];
    memcpy(text, m.u.error.text ? m.u.error.text : "", m.u.error.text_len);
    text[m.u.error.text_len] = 0;
    uint16_t c = m.u.error.code;
    /* REPLACED: another process runs with our key; fighting over the
     * connection would only make both rejoin for ever */
    int final = c == PTV_CTL_E_NO_CHANNEL || c == PTV_CTL_E_BANNED ||
                c == PTV_CTL_E_NAME_TAKEN || c == PTV_CTL_E_BAD_SIG || c == PTV_CTL_E_REPLACED;
    if (final) t->final_error = 1; /* no retry, welcomed or not */
    if (t->cb.on_error) t->cb.on_error(t->user, c, text, final);
    break;
  }
  default:
    break;
  }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char slab[65536];
  *buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  sock *s = st->data;
  ptv_tclient *t = s->t;
  if (s->dead) return;
  if (n < 0) {
    drop_sock(t, n == UV_EOF ? "the tracker closed the connection" : uv_strerror((int)n));
    return;
  }
  const uint8_t *p = (const uint8_t *)buf->base;
  size_t len = (size_t)n;
  while (len > 0 && t->s == s) {
    size_t want = PTV_WIRE_HDRLEN;
    if (t->rlen >= PTV_WIRE_HDRLEN) {
      long fl = ptv_ctl_frame_len(t->rbuf, t->rlen, FRAME_MAX - PTV_WIRE_HDRLEN);
      if (fl < 0) {
        drop_sock(t, "bad framing from the tracker");
        return;
      }
      want = (size_t)fl;
    }
    size_t take = want - t->rlen < len ? want - t->rlen : len;
    memcpy(t->rbuf + t->rlen, p, take);
    t->rlen += take;
    p += take;
    len -= take;
    if (t->rlen < PTV_WIRE_HDRLEN) break;
    long fl = ptv_ctl_frame_len(t->rbuf, t->rlen, FRAME_MAX - PTV_WIRE_HDRLEN);
    if (fl < 0) {
      drop_sock(t, "bad framing from the tracker");
      return;
    }
    if (t->rlen == (size_t)fl) {
      t->rlen = 0;
      on_frame(t, t->rbuf, (size_t)fl);
    }
  }
}

static void on_connect(uv_connect_t *req, int status) {
  sock *s = req->data;
  ptv_tclient *t = s->t;
  if (s->dead) return;
  if (status < 0) {
    drop_sock(t, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&s->h, 1);
  uv_read_start((uv_stream_t *)&s->h, on_alloc, on_read);
  if (send_hello(t) != 0) drop_sock(t, "cannot send HELLO");
}

static void connect_now(ptv_tclient *t) {
  if (t->stopped || t->s) return;
  struct sockaddr_storage sa;
  if (ptv_rt_sockaddr(t->tracker, &sa) != 0) return;
  sock *s = calloc(1, sizeof(*s));
  if (!s) return;
  s->t = t;
  uv_tcp_init(t->loop, &s->h);
  s->h.data = s;
  s->creq.data = s;
  t->open_handles++;
  t->s = s;
  if (uv_tcp_connect(&s->creq, &s->h, (struct sockaddr *)&sa, on_connect) != 0)
    drop_sock(t, "connect failed");
}

int ptv_tclient_start(ptv_tclient **out, uv_loop_t *loop, const ptv_tclient_config *c,
                      const ptv_tclient_callbacks *cb, void *user) {
  struct sockaddr_storage sa;
  if (ptv_rt_sockaddr(c->tracker, &sa) != 0) return PTV_ERR_PARSE;
  if (!c->channel || !ptv_store_name_valid(c->channel) || !c->id) return PTV_ERR_INVALID_ARG;
  ptv_tclient *t = calloc(1, sizeof(*t));
  if (!t) return PTV_ERR_NOMEM;
  t->loop = loop;
  t->cfg = *c;
  snprintf(t->channel, sizeof(t->channel), "%s", c->channel);
  snprintf(t->desc, sizeof(t->desc), "%s", c->description ? c->description : "");
  snprintf(t->tracker, sizeof(t->tracker), "%s", c->tracker);
  t->cfg.channel = t->channel;
  t->cfg.tracker = t->tracker;
  t->cfg.description = t->desc;
  t->cb = *cb;
  t->user = user;
  t->my_id = PTV_ID_NONE;
  t->retry_ms = RETRY_MIN_MS;
  uv_timer_init(loop, &t->retry);
  t->retry.data = t;
  t->open_handles = 1;
  connect_now(t);
  *out = t;
  return 0;
}

int ptv_tclient_send(ptv_tclient *t, const uint8_t *buf, size_t len) {
  if (!t->welcomed) return PTV_ERR_CLOSED;
  return write_raw(t, buf, len);
}

int ptv_tclient_signal(ptv_tclient *t, ptv_id peer, uint8_t kind, const uint8_t *data,
                       size_t len) {
  if (kind > PTV_SIG_MAX || len > PTV_CTL_SIGNAL_MAX) return PTV_ERR_INVALID_ARG;
  if (!t->welcomed) return PTV_ERR_CLOSED;
  ptv_ctl m = {.type = PTV_CTL_SIGNAL};
  uint8_t buf[PTV_WIRE_HDRLEN + 64 + PTV_CTL_SIGNAL_MAX];
  m.u.signal.peer = peer;
  m.u.signal.kind = kind;
  m.u.signal.data = data;
  m.u.signal.data_len = (uint16_t)len;
  int n = ptv_ctl_encode(buf, sizeof(buf), &m);
  if (n < 0) return n;
  return write_raw(t, buf, (size_t)n);
}

int ptv_tclient_end(ptv_tclient *t) {
  if (!t->welcomed) return PTV_ERR_CLOSED;
  ptv_ctl m = {.type = PTV_CTL_END};
  uint8_t buf[PTV_WIRE_HDRLEN];
  int n = ptv_ctl_encode(buf, sizeof(buf), &m);
  return n < 0 ? n : write_raw(t, buf, (size_t)n);
}

int ptv_tclient_up(const ptv_tclient *t) { return t->welcomed; }

static void retry_closed(uv_handle_t *h) {
  ptv_tclient *t = h->data;
  t->open_handles--;
  maybe_free(t);
}

void ptv_tclient_stop(ptv_tclient *t) {
  if (!t || t->stopped) return;
  t->stopped = 1;
  drop_sock(t, "stopped");
  uv_close((uv_handle_t *)&t->retry, retry_closed);
}
