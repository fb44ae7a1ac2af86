/* ptv_http.c -- libmicrohttpd in external epoll mode on a libuv loop.
 *
 * How MHD is driven: MHD_USE_EPOLL gives one epoll fd that becomes readable
 * when any of MHD's sockets (or its resume eventfd) has an event; a uv_poll_t
 * watches it. MHD registers its sockets edge-triggered and may leave work
 * pending after MHD_run(), which it reports through MHD_get_timeout()
 * (0 ms), so the uv_timer_t is re-armed from MHD_get_timeout() after every
 * MHD_run(); without that, connections hang with data in the kernel.
 *
 * Streams: a content-reader response of unknown size. When its queue is
 * empty the reader suspends the connection (returning 0 without suspending
 * would make MHD call it again at once, i.e. busy-wait); a write resumes
 * it. MHD does not notice a client closing a suspended connection, so while
 * suspended a second uv_poll_t watches the socket for EPOLLRDHUP only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strdup, memmem, strndup under -std=c11 */
#endif
#include "ptv_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "ptv_err.h"
#include "ptv_rt.h"

#define DEF_CONN_LIMIT 64u
#define DEF_PER_IP_LIMIT 16u
#define DEF_TIMEOUT_S 30u
#define DEF_MAX_HEADER ((size_t)8 * 1024)
#define POOL_EXTRA ((size_t)24 * 1024)
#define DEF_QUEUE_MAX ((size_t)4 * 1024 * 1024)
#define QBLOCK_MIN ((size_t)16 * 1024)
#define READER_BLOCK ((size_t)32 * 1024)
#define MAX_TIMER_MS 3600000ull
#define DEFAULT_TYPE "text/plain; charset=utf-8"

typedef struct qblock {
  struct qblock *next;
  size_t len, cap;
  uint8_t data[];
} qblock;

/* Separate from the stream: uv_close() completes later, after the stream
 * may be gone or suspended again with a new watch. */
typedef struct watch {
  uv_poll_t poll;
  ptv_http_stream *s; /* NULL once detached */
} watch;

struct ptv_http_stream {
  ptv_http *h;
  ptv_http_stream *prev, *next;
  struct MHD_Connection *conn; /* NULL once MHD is done with it */
  qblock *head, *tail;
  size_t head_off, queued;
  ptv_http_stream_close_cb on_close;
  void *user;
  watch *w;
  char *content_type;
  unsigned suspended : 1; /* we suspended it in MHD */
  unsigned eof : 1;       /* app closed: end after the queue drains */
  unsigned dead : 1;      /* abort, disconnect or stop: reader fails */
  unsigned released : 1;  /* app let go of the handle */
  unsigned done : 1;      /* MHD destroyed the response */
};

typedef struct route {
  char *path;
  ptv_http_handler fn;
  void *user;
} route;

struct ptv_http {
  uv_loop_t *loop;
  struct MHD_Daemon *mhd;
  uv_poll_t poll;
  uv_timer_t timer;
  int nclosing;
  uint16_t port;
  route *routes;
  size_t nroutes, routes_cap;
  ptv_http_stream *streams;
  size_t queue_max;
  int test_sndbuf; /* > 0: SO_SNDBUF of stream connections (PTV_TEST_HTTP_QUEUE) */
  ptv_http_log_cb log;
  void *log_user;
  char last_log[256]; /* for start errors */
  int in_run, kick, stopping, stop_deferred;
  int quiet; /* our reader failed on purpose: skip MHD's complaint */
  void (*done)(void *);
  void *done_arg;
};

/* The handler sees only .pub; the rest is the request's state. */
typedef struct reply_impl {
  ptv_http_reply pub;
  struct MHD_Connection *conn;
  ptv_http *h;
  int head, nomem;
  char *body;
  size_t len, cap;
  ptv_http_stream *stream;
} reply_impl;

static reply_impl *impl(ptv_http_reply *r) { return (reply_impl *)r; }

/* ---- logging ------------------------------------------------------------- */

/* Without a log callback: this module's own errors are errors, MHD's
 * messages (mostly a client that hung up mid-response, "Failed to send the
 * chunked response body ...") are debug lines, shown with -v. */
static void emit(ptv_http *h, const char *msg, int from_mhd) {
  if (h->log)
    h->log(h->log_user, msg);
  else
    ptv_rt_log(from_mhd ? 2 : 0, "http: %s", msg);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
  ptv_http *h = cls;
  char buf[512];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  size_t n = strlen(buf);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  if (h->quiet && strstr(buf, "application error")) {
    h->quiet = 0; /* a client left or we dropped it: not worth a line */
    return;
  }
  size_t k = n < sizeof(h->last_log) - 1 ? n : sizeof(h->last_log) - 1;
  memcpy(h->last_log, buf, k);
  h->last_log[k] = '\0';
  emit(h, buf, 1);
}

/* ---- driving MHD --------------------------------------------------------- */

static void really_stop(ptv_http *h);

static void on_timer(uv_timer_t *t);

static void rearm(ptv_http *h) {
  MHD_UNSIGNED_LONG_LONG ms = 0;
  if (h->kick) {
    h->kick = 0;
  } else if (MHD_get_timeout(h->mhd, &ms) != MHD_YES) {
    uv_timer_stop(&h->timer); /* nothing pending: the epoll fd will wake us */
    return;
  }
  if (ms > MAX_TIMER_MS) ms = MAX_TIMER_MS;
  /* >= 1 ms: libuv 1.44 runs a timer re-armed at 0 from its own callback
   * again in the same pass, and MHD may say 0 more than once in a row. */
  if (ms == 0) ms = 1;
  uv_timer_start(&h->timer, on_timer, (uint64_t)ms, 0);
}

static void drive(ptv_http *h) {
  h->in_run = 1;
  h->kick = 0;
  MHD_run(h->mhd);
  h->in_run = 0;
  if (h->stop_deferred) {
    really_stop(h);
    return;
  }
  rearm(h); /* MHD's timeout changes with every run */
}

static void on_timer(uv_timer_t *t) { drive(t->data); }

static void on_poll(uv_poll_t *p, int status, int events) {
  ptv_http *h = p->data;
  if (status < 0) {
    char msg[128];
    snprintf(msg, sizeof(msg), "poll on MHD epoll fd: %s", uv_strerror(status));
    emit(h, msg, 0);
  }
  drive(h);
}

/* Makes MHD run soon, e.g. after MHD_resume_connection() from outside
 * MHD_run(): the header asks for MHD_run() + MHD_get_timeout() after it. */
static void kick(ptv_http *h) {
  if (h->stopping) return;
  if (h->in_run)
    h->kick = 1;
  else
    uv_timer_start(&h->timer, on_timer, 0, 0);
}

/* ---- streams ------------------------------------------------------------- */

static void queue_clear(ptv_http_stream *s) {
  qblock *b = s->head;
  while (b) {
    qblock *n = b->next;
    free(b);
    b = n;
  }
  s->head = s->tail = NULL;
  s->head_off = s->queued = 0;
}

static void stream_free(ptv_http_stream *s) {
  ptv_http *h = s->h;
  if (s->w) s->w->s = NULL;
  if (s->prev)
    s->prev->next = s->next;
  else
    h->streams = s->next;
  if (s->next) s->next->prev = s->prev;
  queue_clear(s);
  free(s->content_type);
  free(s);
}

static void watch_closed(uv_handle_t *hd) { free(hd->data); }

/* Stops watching for disconnect. Must run while MHD still owns the fd
 * (uv_close() does epoll_ctl(DEL) on it now), never after MHD closed it:
 * the number may already belong to another socket. */
static void unwatch(ptv_http_stream *s) {
  if (!s->w) return;
  s->w->s = NULL;
  uv_close((uv_handle_t *)&s->w->poll, watch_closed);
  s->w = NULL;
}

static void resume(ptv_http_stream *s) {
  if (!s->suspended) return;
  unwatch(s);
  s->suspended = 0;
  MHD_resume_connection(s->conn);
  kick(s->h);
}

static void on_disconnect(uv_poll_t *p, int status, int events) {
  watch *w = p->data;
  ptv_http_stream *s = w->s;
  if (!s) return;
  s->dead = 1; /* the reader then fails and MHD closes the connection */
  resume(s);
}

static void watch_start(ptv_http_stream *s) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
  if (!ci) return;
  watch *w = malloc(sizeof(*w));
  if (!w) return; /* the disconnect is then seen on the next write */
  if (uv_poll_init_socket(s->h->loop, &w->poll, ci->connect_fd) != 0) {
    free(w);
    return;
  }
  w->poll.data = w;
  w->s = s;
  s->w = w;
  uv_poll_start(&w->poll, UV_DISCONNECT, on_disconnect);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
  ptv_http_stream *s = cls;
  if (s->dead) {
    s->h->quiet = 1;
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  if (s->queued == 0) {
    if (s->eof) return MHD_CONTENT_READER_END_OF_STREAM;
    s->suspended = 1;
    MHD_suspend_connection(s->conn);
    watch_start(s);
    return 0;
  }
  size_t n = 0;
  while (n < max && s->head) {
    qblock *b = s->head;
    size_t take = b->len - s->head_off;
    if (take == 0) break; /* the kept, fully read tail */
    if (take > max - n) take = max - n;
    memcpy(buf + n, b->data + s->head_off, take);
    n += take;
    s->head_off += take;
    if (s->head_off == b->len && (b->next || b->len == b->cap)) {
      s->head = b->next;
      if (!s->head) s->tail = NULL;
      s->head_off = 0;
      free(b);
    }
  }
  s->queued -= n;
  return (ssize_t)n;
}

/* MHD is done with the response: the connection ended one way or another. */
static void stream_freed(void *cls) {
  ptv_http_stream *s = cls;
  s->done = 1;
  s->conn = NULL;
  s->suspended = 0;
  unwatch(s);
  if (s->released) {
    stream_free(s);
    return;
  }
  s->dead = 1;
  ptv_http_stream_close_cb cb = s->on_close;
  s->on_close = NULL;
  if (cb) cb(s, s->user); /* may release (and free) s */
}

int ptv_http_stream_write(ptv_http_stream *s, const uint8_t *buf, size_t len) {
  if (!s || (!buf && len > 0)) return PTV_ERR_INVALID_ARG;
  if (s->done || s->dead || s->eof || s->released) return PTV_ERR_CLOSED;
  if (len == 0) return 0;
  if (len > s->h->queue_max - s->queued) return PTV_ERR_AGAIN;
  qblock *t = s->tail;
  if (t && t->cap - t->len >= len) {
    memcpy(t->data + t->len, buf, len);
    t->len += len;
  } else {
    size_t cap = len > QBLOCK_MIN ? len : QBLOCK_MIN;
    qblock *b = malloc(sizeof(*b) + cap);
    if (!b) return PTV_ERR_NOMEM;
    b->next = NULL;
    b->len = len;
    b->cap = cap;
    memcpy(b->data, buf, len);
    if (t) {
      /* a fully read, kept-for-reuse tail can go now */
      if (s->head == t && s->head_off == t->len) {
        s->head = s->tail = NULL;
        s->head_off = 0;
        free(t);
        t = NULL;
      }
    }
    if (t)
      t->next = b;
    else
      s->head = b;
    s->tail = b;
  }
  s->queued += len;
  resume(s);
  return 0;
}

size_t ptv_http_stream_queued(const ptv_http_stream *s) {
  return s ? s->queued : 0;
}

void ptv_http_stream_close(ptv_http_stream *s) {
  if (!s || s->released) return;
  s->released = 1;
  s->on_close = NULL;
  if (s->done) {
    stream_free(s);
    return;
  }
  s->eof = 1;
  resume(s); /* the reader ends the response once the queue is empty */
}

void ptv_http_stream_abort(ptv_http_stream *s) {
  if (!s || s->released) return;
  s->released = 1;
  s->on_close = NULL;
  if (s->done) {
    stream_free(s);
    return;
  }
  s->dead = 1;
  queue_clear(s);
  if (s->suspended) {
    resume(s);
  } else if (s->conn) {
    /* MHD may be waiting for a full socket to drain and not call the
     * reader for a long time; shutdown() makes its next send fail now. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) shutdown(ci->connect_fd, SHUT_RDWR);
    kick(s->h);
  }
}

/* ---- requests ------------------------------------------------------------ */

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *text, int allow) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, DEFAULT_TYPE);
  if (allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

static unsigned fix_status(int st) {
  return (st >= 100 && st <= 599) ? (unsigned)st : MHD_HTTP_INTERNAL_SERVER_ERROR;
}

static enum MHD_Result queue_stream(reply_impl *ri) {
  ptv_http_stream *s = ri->stream;
  struct MHD_Response *r = MHD_create_response_from_callback(
      MHD_SIZE_UNKNOWN, READER_BLOCK, stream_reader, s, stream_freed);
  if (!r) {
    stream_freed(s); /* the connection is about to fail: tell the app */
    return send_text(ri->conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                     "out of memory\n", 0);
  }
  if (s->content_type)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, s->content_type);
  /* live data: a cached copy is always stale */
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  s->conn = ri->conn;
  if (ri->h->test_sndbuf > 0) {
    /* a fixed send buffer: loopback's autotuned one holds megabytes */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(ri->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
      setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &ri->h->test_sndbuf,
                 sizeof(ri->h->test_sndbuf));
  }
  enum MHD_Result ret = MHD_queue_response(ri->conn, fix_status(ri->pub.status), r);
  MHD_destroy_response(r); /* on failure this calls stream_freed() */
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
  ptv_http *h = cls;
  if (*req_cls) {
    /* a request body after we answered (405): discard it */
    *upload_data_size = 0;
    return MHD_YES;
  }
  *req_cls = h;
  if (h->stopping) return MHD_NO;
  int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
  if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
    return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", 1);
  const route *rt = NULL;
  for (size_t i = 0; i < h->nroutes; i++)
    if (strcmp(h->routes[i].path, url) == 0) rt = &h->routes[i];
  if (!rt) return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n", 0);

  reply_impl ri;
  memset(&ri, 0, sizeof(ri));
  ri.pub.status = MHD_HTTP_OK;
  ri.pub.content_type = DEFAULT_TYPE;
  ri.conn = conn;
  ri.h = h;
  ri.head = head;
  rt->fn(&ri.pub, rt->user);

  if (ri.stream) {
    free(ri.body);
    return queue_stream(&ri);
  }
  if (ri.nomem) {
    free(ri.body);
    return send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", 0);
  }
  struct MHD_Response *r;
  if (ri.body)
    r = MHD_create_response_from_buffer(ri.len, ri.body, MHD_RESPMEM_MUST_FREE);
  else
    r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!r) {
    free(ri.body);
    return MHD_NO;
  }
  if (ri.pub.content_type)
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ri.pub.content_type);
  enum MHD_Result ret = MHD_queue_response(conn, fix_status(ri.pub.status), r);
  MHD_destroy_response(r);
  return ret;
}

/* ---- reply API ----------------------------------------------------------- */

static int body_reserve(reply_impl *ri, size_t extra) {
  if (extra <= ri->cap - ri->len) return 0;
  size_t cap = ri->cap ? ri->cap : 256;
  while (cap - ri->len < extra) {
    if (cap > SIZE_MAX / 2) goto nomem;
    cap *= 2;
  }
  char *b = realloc(ri->body, cap);
  if (!b) goto nomem;
  ri->body = b;
  ri->cap = cap;
  return 0;
nomem:
  ri->nomem = 1;
  return PTV_ERR_NOMEM;
}

int ptv_http_reply_set_body(ptv_http_reply *reply, const void *buf, size_t len) {
  if (!reply || (!buf && len > 0)) return PTV_ERR_INVALID_ARG;
  reply_impl *ri = impl(reply);
  if (ri->stream) return PTV_ERR_INVALID_ARG;
  ri->len = 0;
  if (len == 0) return 0;
  int rc = body_reserve(ri, len);
  if (rc < 0) return rc;
  memcpy(ri->body, buf, len);
  ri->len = len;
  return 0;
}

int ptv_http_reply_printf(ptv_http_reply *reply, const char *fmt, ...) {
  if (!reply || !fmt) return PTV_ERR_INVALID_ARG;
  reply_impl *ri = impl(reply);
  if (ri->stream) return PTV_ERR_INVALID_ARG;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return PTV_ERR_INVALID_ARG;
  int rc = body_reserve(ri, (size_t)n + 1); /* + vsnprintf's NUL */
  if (rc < 0) return rc;
  va_start(ap, fmt);
  vsnprintf(ri->body + ri->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  ri->len += (size_t)n;
  return 0;
}

const char *ptv_http_reply_query(const ptv_http_reply *reply, const char *key) {
  if (!reply || !key) return NULL;
  return MHD_lookup_connection_value(((const reply_impl *)reply)->conn,
                                     MHD_GET_ARGUMENT_KIND, key);
}

int ptv_http_reply_is_head(const ptv_http_reply *reply) {
  return reply ? ((const reply_impl *)reply)->head : 0;
}

ptv_http_stream *ptv_http_reply_stream(ptv_http_reply *reply,
                                       const char *content_type,
                                       ptv_http_stream_close_cb on_close,
                                       void *user) {
  if (!reply) return NULL;
  reply_impl *ri = impl(reply);
  if (ri->stream) return NULL;
  ptv_http_stream *s = calloc(1, sizeof(*s));
  if (!s) {
    ri->nomem = 1;
    return NULL;
  }
  if (content_type && !(s->content_type = strdup(content_type))) {
    free(s);
    ri->nomem = 1;
    return NULL;
  }
  s->h = ri->h;
  s->on_close = on_close;
  s->user = user;
  s->next = s->h->streams;
  if (s->next) s->next->prev = s;
  s->h->streams = s;
  ri->stream = s;
  return s;
}

/* ---- server -------------------------------------------------------------- */

static void set_err(const ptv_http_config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_err(const ptv_http_config *cfg, const char *fmt, ...) {
  if (!cfg || !cfg->errbuf || cfg->errbuf_len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cfg->errbuf, cfg->errbuf_len, fmt, ap);
  va_end(ap);
}

int ptv_http_start(ptv_http **out, uv_loop_t *loop, const char *addr,
                   uint16_t port, const ptv_http_config *cfg) {
  if (!out || !loop || !addr) return PTV_ERR_INVALID_ARG;
  *out = NULL;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  const char *lit = strcmp(addr, "localhost") == 0 ? "127.0.0.1" : addr;
  struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, lit, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
  } else if (inet_pton(AF_INET6, lit, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    flags |= MHD_USE_IPv6;
  } else {
    set_err(cfg, "%s: not an IP address", addr);
    return PTV_ERR_INVALID_ARG;
  }

  ptv_http_config c;
  memset(&c, 0, sizeof(c));
  if (cfg) c = *cfg;
  if (!c.conn_limit) c.conn_limit = DEF_CONN_LIMIT;
  if (!c.per_ip_limit) c.per_ip_limit = DEF_PER_IP_LIMIT;
  if (!c.conn_timeout_s) c.conn_timeout_s = DEF_TIMEOUT_S;
  if (!c.max_header_bytes) c.max_header_bytes = DEF_MAX_HEADER;
  /* PTV_TEST_HTTP_QUEUE=BYTES (tests): when the config leaves the queue
   * to us, BYTES of queue and of socket send buffer per stream, so that a
   * test sees a slow player dropped in seconds rather than a minute */
  int test_sndbuf = 0;
  if (!c.stream_queue_max) {
    const char *q = getenv("PTV_TEST_HTTP_QUEUE");
    char *end = NULL;
    unsigned long long v = q ? strtoull(q, &end, 10) : 0;
    if (q && *q && !*end && v > 0 && v <= (1u << 30)) {
      c.stream_queue_max = (size_t)v;
      test_sndbuf = (int)v;
    } else {
      c.stream_queue_max = DEF_QUEUE_MAX;
    }
  }
  if (c.max_header_bytes > SIZE_MAX - POOL_EXTRA) return PTV_ERR_INVALID_ARG;

  ptv_http *h = calloc(1, sizeof(*h));
  if (!h) return PTV_ERR_NOMEM;
  h->loop = loop;
  h->queue_max = c.stream_queue_max;
  h->test_sndbuf = test_sndbuf;
  h->log = c.log;
  h->log_user = c.log_user;

  /* the logger goes first so option errors are reported through it */
  h->mhd = MHD_start_daemon(
      flags, port, NULL, NULL, on_request, h,
      MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_CONNECTION_LIMIT, c.conn_limit,
      MHD_OPTION_PER_IP_CONNECTION_LIMIT, c.per_ip_limit,
      MHD_OPTION_CONNECTION_TIMEOUT, c.conn_timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, c.max_header_bytes + POOL_EXTRA,
      MHD_OPTION_END);
  if (!h->mhd) {
    int e = errno;
    if (h->last_log[0])
      set_err(cfg, "%s:%u: %s", addr, (unsigned)port, h->last_log);
    else
      set_err(cfg, "%s:%u: %s", addr, (unsigned)port, strerror(e));
    free(h);
    errno = e;
    return PTV_ERR_IO;
  }
  h->last_log[0] = '\0';

  const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  int efd = di ? di->epoll_fd : -1;
  di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
  h->port = di ? di->port : port;
  int rc = efd < 0 ? UV_EINVAL : uv_poll_init(loop, &h->poll, efd);
  if (rc != 0) {
    set_err(cfg, "cannot watch MHD's epoll fd: %s", uv_strerror(rc));
    MHD_stop_daemon(h->mhd);
    free(h);
    return PTV_ERR_IO;
  }
  uv_timer_init(loop, &h->timer);
  h->poll.data = h;
  h->timer.data = h;
  uv_poll_start(&h->poll, UV_READABLE, on_poll);
  rearm(h);
  *out = h;
  return 0;
}

uint16_t ptv_http_port(const ptv_http *h) { return h ? h->port : 0; }

int ptv_http_route(ptv_http *h, const char *path, ptv_http_handler fn,
                   void *user) {
  if (!h || !path || !fn || path[0] != '/') return PTV_ERR_INVALID_ARG;
  for (size_t i = 0; i < h->nroutes; i++)
    if (strcmp(h->routes[i].path, path) == 0) return PTV_ERR_EXISTS;
  if (h->nroutes == h->routes_cap) {
    size_t cap = h->routes_cap ? h->routes_cap * 2 : 8;
    route *r = realloc(h->routes, cap * sizeof(*r));
    if (!r) return PTV_ERR_NOMEM;
    h->routes = r;
    h->routes_cap = cap;
  }
  char *p = strdup(path);
  if (!p) return PTV_ERR_NOMEM;
  h->routes[h->nroutes++] = (route){.path = p, .fn = fn, .user = user};
  return 0;
}

static void handle_closed(uv_handle_t *hd) {
  ptv_http *h = hd->data;
  if (--h->nclosing > 0) return;
  /* streams the app never released die with the server */
  while (h->streams) stream_free(h->streams);
  for (size_t i = 0; i < h->nroutes; i++) free(h->routes[i].path);
  free(h->routes);
  void (*done)(void *) = h->done;
  void *arg = h->done_arg;
  free(h);
  if (done) done(arg);
}

static void really_stop(ptv_http *h) {
  h->stop_deferred = 0;
  uv_timer_stop(&h->timer);
  /* uv_close() deletes the epoll fd from libuv's epoll now: it must happen
   * before MHD closes that fd, whose number may then be reused */
  h->nclosing = 2;
  uv_close((uv_handle_t *)&h->poll, handle_closed);
  /* MHD_stop_daemon() with suspended connections is an API violation, and
   * MHD_resume_connection() only takes effect in the next MHD_run(). */
  int any = 0;
  for (ptv_http_stream *s = h->streams; s; s = s->next) {
    if (s->done) continue;
    s->dead = 1;
    if (s->suspended) {
      any = 1;
      unwatch(s);
      s->suspended = 0;
      MHD_resume_connection(s->conn);
    }
  }
  h->in_run = 1; /* on_close callbacks may call ptv_http_* functions */
  if (any) MHD_run(h->mhd);
  MHD_stop_daemon(h->mhd); /* closes the rest: stream_freed() for each */
  h->mhd = NULL;
  h->in_run = 0;
  h->quiet = 0;
  uv_close((uv_handle_t *)&h->timer, handle_closed);
}

void ptv_http_stop(ptv_http *h, void (*done)(void *arg), void *arg) {
  if (!h || h->stopping) return;
  h->stopping = 1;
  h->done = done;
  h->done_arg = arg;
  if (h->in_run)
    h->stop_deferred = 1; /* MHD_stop_daemon() inside MHD_run() would crash */
  else
    really_stop(h);
}
