/* test_http.c -- unit tests for the libuv-driven HTTP server (ptv_http).
 *
 * The server runs on a uv loop in the test's main thread; HTTP clients run
 * in pthreads with plain blocking sockets and a minimal HTTP/1.x parser
 * (status line, headers, chunked bodies). Tested: routing, status and
 * content type, HEAD, 404/405, query strings, port 0, a taken port, the
 * header size limit, streams (data pushed by a 10 ms uv timer arrives in
 * order and byte-identical at two clients at once, and at an HTTP/1.0
 * client), a client leaving mid-stream (on_close, then PTV_ERR_CLOSED) or
 * while its stream is idle, a slow client filling its queue (PTV_ERR_AGAIN)
 * while a fast one keeps receiving, the per-IP connection limit (and that
 * without a log callback MHD's message about it is a debug line of
 * ptv_rt_log(), shown only at verbosity 2), and stop with connections open
 * (run under ASan for leaks).
 *
 * Client threads only record; every assertion runs in the main thread. */
#define _GNU_SOURCE /* strdup, memmem, strndup under -std=c11 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "ptv_err.h"
#include "ptv_http.h"
#include "ptv_rt.h"

#define MAXC 4
#define MAXS 8
#define STREAM_TOTAL ((size_t)500 * 1000)

/* ---- the test's HTTP client ---------------------------------------------- */

typedef struct resp {
  int status; /* 0: no status line (connection closed early) */
  char ctype[128];
  char allow[64];
  int chunked, complete; /* complete: chunked terminator seen */
  long clen;             /* Content-Length, -1 if absent */
  uint8_t *body;
  size_t body_len, raw_len;
} resp;

static void msleep(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int connect_port(uint16_t port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  struct timeval tv = {10, 0}; /* a hung server fails the test, not CI */
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, const char *s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
    if (k <= 0) return -1;
    s += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Reads until EOF (or LIMIT bytes when LIMIT > 0). Returns malloc'd data. */
static uint8_t *read_all(int fd, size_t limit, size_t *len) {
  size_t cap = 65536, n = 0;
  uint8_t *buf = malloc(cap + 1);
  for (;;) {
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap + 1);
    }
    size_t want = cap - n;
    if (limit && want > limit - n) want = limit - n;
    ssize_t k = recv(fd, buf + n, want, 0);
    if (k <= 0) break;
    n += (size_t)k;
    if (limit && n >= limit) break;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

static const char *find_header(const char *hdrs, const char *name) {
  size_t nl = strlen(name);
  for (const char *p = strstr(hdrs, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
      const char *v = p + 3 + nl;
      while (*v == ' ') v++;
      return v;
    }
  }
  return NULL;
}

static void copy_value(char *dst, size_t cap, const char *v) {
  size_t i = 0;
  while (v && v[i] && v[i] != '\r' && i + 1 < cap) {
    dst[i] = v[i];
    i++;
  }
  dst[i] = 0;
}

static void parse(const uint8_t *raw, size_t n, resp *r) {
  memset(r, 0, sizeof(*r));
  r->clen = -1;
  r->raw_len = n;
  const char *end = memmem(raw, n, "\r\n\r\n", 4);
  if (!end || sscanf((const char *)raw, "HTTP/1.%*d %d", &r->status) != 1) {
    r->status = 0;
    return;
  }
  size_t hlen = (size_t)(end - (const char *)raw) + 2;
  char *hdrs = strndup((const char *)raw, hlen);
  const char *v;
  copy_value(r->ctype, sizeof(r->ctype), find_header(hdrs, "Content-Type"));
  copy_value(r->allow, sizeof(r->allow), find_header(hdrs, "Allow"));
  if ((v = find_header(hdrs, "Content-Length"))) r->clen = strtol(v, NULL, 10);
  v = find_header(hdrs, "Transfer-Encoding");
  r->chunked = v && strncasecmp(v, "chunked", 7) == 0;
  free(hdrs);
  const uint8_t *p = (const uint8_t *)end + 4, *lim = raw + n;
  r->body = malloc((size_t)(lim - p) + 1);
  if (!r->chunked) {
    r->body_len = (size_t)(lim - p);
    memcpy(r->body, p, r->body_len);
    return;
  }
  while (p < lim) {
    char *e;
    unsigned long sz = strtoul((const char *)p, &e, 16);
    const uint8_t *crlf = memmem(p, (size_t)(lim - p), "\r\n", 2);
    if (!crlf || (const uint8_t *)e == p) break;
    p = crlf + 2;
    if (sz == 0) {
      r->complete = 1;
      break;
    }
    if ((size_t)(lim - p) < sz + 2) { /* truncated: keep what came */
      memcpy(r->body + r->body_len, p, (size_t)(lim - p));
      r->body_len += (size_t)(lim - p);
      break;
    }
    memcpy(r->body + r->body_len, p, sz);
    r->body_len += sz;
    p += sz + 2;
  }
}

static void request(uint16_t port, const char *req, resp *r) {
  int fd = connect_port(port, 0);
  memset(r, 0, sizeof(*r));
  if (fd < 0) return;
  size_t n = 0;
  uint8_t *raw = NULL;
  if (send_all(fd, req) == 0) raw = read_all(fd, 0, &n);
  close(fd);
  parse(raw ? raw : (const uint8_t *)"", n, r);
  free(raw);
}

static void resp_free(resp *r) {
  free(r->body);
  r->body = NULL;
}

/* The stream content: byte i of every stream. */
static uint8_t pat(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static int matches_pattern(const uint8_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (b[i] != pat(i)) return 0;
  return 1;
}

/* ---- harness: server on the main loop, clients in threads ----------------- */

typedef struct app app;
typedef void (*client_fn)(app *a, int idx);

typedef struct sst {
  app *a;
  ptv_http_stream *s;
  size_t off;
  int slow, idle, on_close_calls, closed_writes, saw_again, released;
  int closed_before_stop, keep_after_close;
} sst;

struct app {
  uv_loop_t loop;
  ptv_http *srv;
  uint16_t port;
  uv_async_t async;
  uv_timer_t tick;
  ptv_http_config cfg;
  pthread_t thr[MAXC];
  client_fn fn[MAXC];
  int nclients;
  atomic_int left;
  atomic_int flag;     /* test-specific signal from the loop to clients */
  atomic_int nclosed;  /* on_close calls so far */
  atomic_int closed_seen; /* a client saw them before leaving */
  resp r[MAXC];
  sst st[MAXS];
  int nst;
  size_t per_tick, total;
  int stop_when_flowing; /* stop the server with streams open */
  int stopping, stopped, nlog;
};

static void on_log(void *user, const char *msg) {
  app *a = user;
  a->nlog++;
  if (getenv("TEST_HTTP_LOG")) fprintf(stderr, "  log: %s\n", msg);
}

static void on_stopped(void *arg) { ((app *)arg)->stopped = 1; }

static void stop_all(app *a) {
  if (!a->stopping) {
    a->stopping = 1;
    ptv_http_stop(a->srv, on_stopped, a);
  }
}

static void on_async(uv_async_t *as) {
  app *a = as->data;
  uv_close((uv_handle_t *)&a->async, NULL);
  uv_close((uv_handle_t *)&a->tick, NULL);
  stop_all(a);
}

static void *client_main(void *arg) {
  void **pa = arg;
  app *a = pa[0];
  int idx = (int)(intptr_t)pa[1];
  free(pa);
  a->fn[idx](a, idx);
  if (atomic_fetch_sub(&a->left, 1) == 1) uv_async_send(&a->async);
  return NULL;
}

static void stream_on_close(ptv_http_stream *s, void *user) {
  sst *t = user;
  (void)s;
  t->on_close_calls++;
  atomic_fetch_add(&t->a->nclosed, 1);
  if (!t->keep_after_close) {
    ptv_http_stream_close(t->s);
    t->released = 1;
  }
}

static void h_stream(ptv_http_reply *reply, void *user) {
  app *a = user;
  if (a->nst == MAXS) return;
  sst *t = &a->st[a->nst++];
  t->a = a;
  const char *who = ptv_http_reply_query(reply, "who");
  t->slow = who && strcmp(who, "slow") == 0;
  t->idle = who && strcmp(who, "idle") == 0;
  t->keep_after_close = who && strcmp(who, "leaver") == 0;
  t->s = ptv_http_reply_stream(reply, "video/mp2t", stream_on_close, t);
}

static void h_hello(ptv_http_reply *reply, void *user) {
  ptv_http_reply_set_body(reply, "hello world\n", 12);
}

static void h_json(ptv_http_reply *reply, void *user) {
  reply->status = 201;
  reply->content_type = "application/json";
  ptv_http_reply_printf(reply, "{\"n\":%d,", 42);
  ptv_http_reply_printf(reply, "\"s\":\"%s\"}", "x");
}

static void h_query(ptv_http_reply *reply, void *user) {
  const char *v = ptv_http_reply_query(reply, "name");
  ptv_http_reply_printf(reply, "%s", v ? v : "(none)");
}

static void h_bad_status(ptv_http_reply *reply, void *user) { reply->status = 42; }

static void on_tick(uv_timer_t *t) {
  app *a = t->data;
  static uint8_t buf[64 * 1024];
  int flowing = 0;
  for (int i = 0; i < a->nst; i++) {
    sst *x = &a->st[i];
    if (x->released || x->idle || !x->s) continue;
    if (x->on_close_calls && !x->keep_after_close) continue;
    size_t n = a->per_tick;
    if (!x->slow && x->off + n > a->total) n = a->total - x->off;
    for (size_t k = 0; k < n; k++) buf[k] = pat(x->off + k);
    int rc = ptv_http_stream_write(x->s, buf, n);
    if (rc == 0) {
      x->off += n;
      if (x->off >= 100000) flowing++;
      if (!x->slow && x->off == a->total) {
        ptv_http_stream_close(x->s);
        x->released = 1;
      }
    } else if (rc == PTV_ERR_CLOSED) {
      x->closed_writes++;
      if (x->closed_writes == 3) { /* a few more to show it stays closed */
        ptv_http_stream_close(x->s);
        x->released = 1;
        atomic_store(&a->flag, 1);
      }
    } else if (rc == PTV_ERR_AGAIN) {
      x->saw_again = 1;
      ptv_http_stream_abort(x->s); /* drop the slow client */
      x->released = 1;
      atomic_store(&a->flag, 1);
    }
  }
  if (a->stop_when_flowing && flowing >= 2 && !a->stopping) {
    for (int i = 0; i < a->nst; i++)
      if (!a->st[i].on_close_calls) a->st[i].closed_before_stop = -1;
    stop_all(a);
  }
}

static void app_init(app *a) {
  memset(a, 0, sizeof(*a));
  assert_int_equal(uv_loop_init(&a->loop), 0);
  a->cfg.log = on_log;
  a->cfg.log_user = a;
  a->per_tick = 5000;
  a->total = STREAM_TOTAL;
}

static void app_start(app *a) {
  assert_int_equal(ptv_http_start(&a->srv, &a->loop, "127.0.0.1", 0, &a->cfg), 0);
  a->port = ptv_http_port(a->srv);
  assert_true(a->port != 0);
  assert_int_equal(ptv_http_route(a->srv, "/hello", h_hello, a), 0);
  assert_int_equal(ptv_http_route(a->srv, "/json", h_json, a), 0);
  assert_int_equal(ptv_http_route(a->srv, "/q", h_query, a), 0);
  assert_int_equal(ptv_http_route(a->srv, "/bad", h_bad_status, a), 0);
  assert_int_equal(ptv_http_route(a->srv, "/stream.ts", h_stream, a), 0);
}

static void app_add_client(app *a, client_fn fn) { a->fn[a->nclients++] = fn; }

static void app_run(app *a) {
  uv_async_init(&a->loop, &a->async, on_async);
  a->async.data = a;
  uv_timer_init(&a->loop, &a->tick);
  a->tick.data = a;
  uv_timer_start(&a->tick, on_tick, 10, 10);
  atomic_store(&a->left, a->nclients);
  for (int i = 0; i < a->nclients; i++) {
    void **pa = malloc(2 * sizeof(void *));
    pa[0] = a;
    pa[1] = (void *)(intptr_t)i;
    assert_int_equal(pthread_create(&a->thr[i], NULL, client_main, pa), 0);
  }
  uv_run(&a->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < a->nclients; i++) pthread_join(a->thr[i], NULL);
  assert_true(a->stopped);
  assert_int_equal(uv_loop_close(&a->loop), 0);
}

static void app_free(app *a) {
  for (int i = 0; i < MAXC; i++) resp_free(&a->r[i]);
}

/* ---- tests --------------------------------------------------------------- */

static void c_basic(app *a, int idx) {
  resp *r = a->r;
  request(a->port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r[0]);
  request(a->port, "HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r[1]);
  request(a->port, "GET /json?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r[2]);
  request(a->port, "GET /q?a=1&name=ab%20c HTTP/1.0\r\n\r\n", &r[3]);
}

static void c_errors(app *a, int idx) {
  resp *r = a->r;
  request(a->port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r[0]);
  request(a->port,
          "POST /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
          "Content-Length: 5\r\n\r\nabcde",
          &r[1]);
  request(a->port, "DELETE /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r[2]);
  /* 20 KB of headers against a 4 KiB limit */
  size_t big = 40000;
  char *req = malloc(big + 200);
  int n = sprintf(req, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
  memset(req + n, 'a', big);
  strcpy(req + n + big, "\r\nConnection: close\r\n\r\n");
  request(a->port, req, &r[3]);
  free(req);
}

static void test_get_head_query(void **state) {
  app a;
  app_init(&a);
  app_start(&a);
  app_add_client(&a, c_basic);
  app_run(&a);
  assert_int_equal(a.r[0].status, 200);
  assert_string_equal(a.r[0].ctype, "text/plain; charset=utf-8");
  assert_int_equal(a.r[0].body_len, 12);
  assert_memory_equal(a.r[0].body, "hello world\n", 12);
  assert_int_equal(a.r[1].status, 200); /* HEAD: headers, no body */
  assert_int_equal(a.r[1].body_len, 0);
  assert_int_equal(a.r[2].status, 201);
  assert_string_equal(a.r[2].ctype, "application/json");
  assert_int_equal(a.r[2].body_len, strlen("{\"n\":42,\"s\":\"x\"}"));
  assert_memory_equal(a.r[2].body, "{\"n\":42,\"s\":\"x\"}", a.r[2].body_len);
  assert_int_equal(a.r[3].status, 200); /* HTTP/1.0, query decoded */
  assert_int_equal(a.r[3].body_len, 4);
  assert_memory_equal(a.r[3].body, "ab c", 4);
  app_free(&a);
}

static void test_404_405_limits(void **state) {
  app a;
  app_init(&a);
  a.cfg.max_header_bytes = 4096;
  app_start(&a);
  app_add_client(&a, c_errors);
  app_run(&a);
  assert_int_equal(a.r[0].status, 404);
  assert_true(a.r[0].body_len > 0);
  assert_int_equal(a.r[1].status, 405);
  assert_string_equal(a.r[1].allow, "GET, HEAD");
  assert_int_equal(a.r[2].status, 405);
  /* too large a header: a 4xx answer, or at worst the connection closes */
  assert_true(a.r[3].status == 0 || (a.r[3].status >= 400 && a.r[3].status < 500));
  app_free(&a);
}

static void on_done_count(void *arg) { (*(int *)arg)++; }

static void count_log(void *user, const char *msg) { (*(int *)user)++; }

static void test_start_errors(void **state) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  ptv_http *h1 = NULL, *h2 = NULL;
  char err[256] = "";
  int logs = 0;
  ptv_http_config cfg = {.errbuf = err, .errbuf_len = sizeof(err)};
  cfg.log = count_log;
  cfg.log_user = &logs;

  assert_int_equal(ptv_http_start(&h1, &loop, "foo.example", 0, &cfg), PTV_ERR_INVALID_ARG);
  assert_null(h1);
  assert_true(strlen(err) > 0);
  assert_int_equal(ptv_http_start(&h1, &loop, NULL, 0, &cfg), PTV_ERR_INVALID_ARG);

  assert_int_equal(ptv_http_start(&h1, &loop, "localhost", 0, &cfg), 0);
  uint16_t port = ptv_http_port(h1);
  assert_true(port != 0);
  err[0] = 0;
  errno = 0;
  assert_int_equal(ptv_http_start(&h2, &loop, "127.0.0.1", port, &cfg), PTV_ERR_IO);
  assert_int_equal(errno, EADDRINUSE);
  assert_null(h2);
  assert_non_null(strstr(err, "in use"));

  assert_int_equal(ptv_http_route(h1, "/a", h_hello, NULL), 0);
  assert_int_equal(ptv_http_route(h1, "/a", h_hello, NULL), PTV_ERR_EXISTS);
  assert_int_equal(ptv_http_route(h1, "a", h_hello, NULL), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_http_route(h1, "/b", NULL, NULL), PTV_ERR_INVALID_ARG);

  int done = 0;
  ptv_http_stop(h1, on_done_count, &done);
  assert_int_equal(done, 0); /* asynchronous */
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(done, 1);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void c_stream_full(app *a, int idx) {
  const char *req = idx == 2 ? "GET /stream.ts HTTP/1.0\r\n\r\n"
                             : "GET /stream.ts HTTP/1.1\r\nHost: x\r\n\r\n";
  request(a->port, req, &a->r[idx]);
}

static void test_stream_three_clients(void **state) {
  app a;
  app_init(&a);
  app_start(&a);
  app_add_client(&a, c_stream_full);
  app_add_client(&a, c_stream_full);
  app_add_client(&a, c_stream_full); /* HTTP/1.0: no chunking */
  app_run(&a);
  assert_int_equal(a.nst, 3);
  for (int i = 0; i < 3; i++) {
    resp *r = &a.r[i];
    assert_int_equal(r->status, 200);
    assert_string_equal(r->ctype, "video/mp2t");
    assert_int_equal(r->chunked, i != 2);
    if (i != 2) assert_true(r->complete);
    assert_int_equal(r->body_len, STREAM_TOTAL);
    assert_true(matches_pattern(r->body, r->body_len));
    assert_int_equal(a.st[i].on_close_calls, 0); /* app closed first */
  }
  app_free(&a);
}

static void wait_flag(app *a, int ms) {
  for (int i = 0; i < ms / 5 && !atomic_load(&a->flag); i++) msleep(5);
}

/* Reads the headers and some data, then goes away. */
static void c_leaver(app *a, int idx) {
  int fd = connect_port(a->port, 0);
  if (fd < 0) return;
  const char *req = idx == 0 ? "GET /stream.ts?who=leaver HTTP/1.1\r\nHost: x\r\n\r\n"
                             : "GET /stream.ts?who=idle HTTP/1.1\r\nHost: x\r\n\r\n";
  send_all(fd, req);
  size_t n;
  uint8_t *raw = read_all(fd, idx == 0 ? 40000 : 1, &n);
  a->r[idx].raw_len = n;
  free(raw);
  close(fd);
  /* stay until both on_close callbacks ran and the app saw CLOSED writes,
   * so stop cannot be the cause */
  for (int i = 0; i < 1000 && atomic_load(&a->nclosed) < 2; i++) msleep(5);
  if (atomic_load(&a->nclosed) == 2) atomic_fetch_add(&a->closed_seen, 1);
  wait_flag(a, 5000);
}

static void test_stream_client_leaves(void **state) {
  app a;
  app_init(&a);
  app_start(&a);
  app_add_client(&a, c_leaver); /* leaves while data flows */
  app_add_client(&a, c_leaver); /* leaves while its stream is idle */
  app_run(&a);
  assert_int_equal(a.nst, 2);
  for (int i = 0; i < 2; i++) {
    sst *t = &a.st[i];
    assert_int_equal(t->on_close_calls, 1);
    assert_true(t->released);
    if (!t->idle) assert_int_equal(t->closed_writes, 3);
  }
  assert_true(a.r[0].raw_len >= 40000);
  assert_int_equal(atomic_load(&a.closed_seen), 2); /* not caused by stop */
  app_free(&a);
}

static void c_slow(app *a, int idx) {
  int fd = connect_port(a->port, 4096);
  if (fd < 0) return;
  send_all(fd, "GET /stream.ts?who=slow HTTP/1.1\r\nHost: x\r\n\r\n");
  wait_flag(a, 20000); /* never read until the server dropped us */
  size_t n;
  uint8_t *raw = read_all(fd, 0, &n);
  close(fd);
  parse(raw, n, &a->r[idx]);
  free(raw);
}

static void test_slow_client(void **state) {
  app a;
  app_init(&a);
  a.cfg.stream_queue_max = 64 * 1024;
  a.per_tick = 16000;
  a.total = 1600000;
  app_start(&a);
  app_add_client(&a, c_slow);
  app_add_client(&a, c_stream_full);
  app_run(&a);
  assert_int_equal(a.nst, 2);
  sst *slow = a.st[0].slow ? &a.st[0] : &a.st[1];
  sst *fast = a.st[0].slow ? &a.st[1] : &a.st[0];
  assert_true(slow->saw_again);
  assert_int_equal(fast->saw_again, 0);
  resp *rs = &a.r[0], *rf = &a.r[1];
  assert_int_equal(rf->status, 200);
  assert_true(rf->complete);
  assert_int_equal(rf->body_len, a.total);
  assert_true(matches_pattern(rf->body, rf->body_len));
  /* the slow client got a correct but truncated stream */
  assert_int_equal(rs->status, 200);
  assert_false(rs->complete);
  assert_true(rs->body_len < slow->off);
  assert_true(matches_pattern(rs->body, rs->body_len));
  app_free(&a);
}

static void c_per_ip(app *a, int idx) {
  int i1 = connect_port(a->port, 0), i2 = connect_port(a->port, 0);
  msleep(100);
  request(a->port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a->r[0]);
  close(i1);
  msleep(100);
  request(a->port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a->r[1]);
  close(i2);
}

static void test_per_ip_limit(void **state) {
  app a;
  app_init(&a);
  a.cfg.per_ip_limit = 2;
  app_start(&a);
  app_add_client(&a, c_per_ip);
  app_run(&a);
  assert_int_equal(a.r[0].status, 0); /* refused: closed without answer */
  assert_int_equal(a.r[0].raw_len, 0);
  assert_int_equal(a.r[1].status, 200); /* a slot was freed */
  assert_true(a.nlog > 0);              /* MHD said why */
  app_free(&a);
}

/* Runs test_per_ip_limit's clients with no log callback at VERBOSITY and
 * returns what the process wrote to stderr meanwhile (malloc'd). */
static char *per_ip_stderr(int verbosity) {
  char path[] = "/tmp/test_http_stderr.XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  unlink(path);
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0);
  assert_true(dup2(fd, 2) >= 0);
  int old = ptv_rt_verbosity;
  ptv_rt_verbosity = verbosity;
  app a;
  app_init(&a);
  a.cfg.log = NULL; /* the default: ptv_rt_log() */
  a.cfg.per_ip_limit = 2;
  app_start(&a);
  app_add_client(&a, c_per_ip);
  app_run(&a);
  int refused = a.r[0].status == 0 && a.r[1].status == 200;
  app_free(&a);
  ptv_rt_verbosity = old;
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  assert_true(refused); /* MHD had something to say */
  off_t len = lseek(fd, 0, SEEK_END);
  assert_true(len >= 0);
  char *out = calloc(1, (size_t)len + 1);
  assert_non_null(out);
  assert_int_equal(pread(fd, out, (size_t)len, 0), len);
  close(fd);
  return out;
}

static void test_default_log_is_debug(void **state) {
  char *quiet = per_ip_stderr(1), *verbose = per_ip_stderr(2);
  if (getenv("TEST_HTTP_LOG")) fprintf(stderr, "  at 1: '%s'\n  at 2: '%s'\n", quiet, verbose);
  assert_string_equal(quiet, ""); /* not at the default verbosity */
  assert_non_null(strstr(verbose, ": http: ")); /* "HH:MM:SS.mmm PROG: http: ..." */
  assert_null(strstr(verbose, "peertv-http"));
  free(quiet);
  free(verbose);
}

static void c_stream_until_eof(app *a, int idx) {
  const char *req = idx == 2 ? "GET /stream.ts?who=idle HTTP/1.1\r\nHost: x\r\n\r\n"
                             : "GET /stream.ts HTTP/1.1\r\nHost: x\r\n\r\n";
  if (idx == 3) {
    int fd = connect_port(a->port, 0); /* idle connection, no request */
    if (fd < 0) return;
    size_t n;
    free(read_all(fd, 0, &n));
    a->r[idx].raw_len = n;
    close(fd);
    return;
  }
  request(a->port, req, &a->r[idx]);
}

static void test_stop_with_open_connections(void **state) {
  app a;
  app_init(&a);
  a.stop_when_flowing = 1;
  app_start(&a);
  for (int i = 0; i < 4; i++) app_add_client(&a, c_stream_until_eof);
  app_run(&a);
  assert_int_equal(a.nst, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(a.st[i].on_close_calls, 1); /* fired by stop */
    assert_int_equal(a.st[i].closed_before_stop, -1);
  }
  for (int i = 0; i < 3; i++) {
    assert_int_equal(a.r[i].status, 200);
    assert_false(a.r[i].complete); /* cut short */
    assert_true(matches_pattern(a.r[i].body, a.r[i].body_len));
  }
  assert_int_equal(a.r[3].raw_len, 0);
  app_free(&a);
}

/* A stream left unreleased after on_close is freed by stop (ASan checks). */
static void keep_on_close(ptv_http_stream *s, void *user) { (*(int *)user)++; }

static ptv_http_stream *g_kept;
static int g_kept_closes;

static void h_keep(ptv_http_reply *reply, void *user) {
  g_kept = ptv_http_reply_stream(reply, NULL, keep_on_close, &g_kept_closes);
  ptv_http_stream_write(g_kept, (const uint8_t *)"abc", 3);
}

static void c_keep(app *a, int idx) {
  request(a->port, "HEAD /keep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a->r[0]);
}

static void test_head_stream_unreleased(void **state) {
  app a;
  app_init(&a);
  app_start(&a);
  assert_int_equal(ptv_http_route(a.srv, "/keep", h_keep, &a), 0);
  app_add_client(&a, c_keep);
  app_run(&a);
  assert_int_equal(a.r[0].status, 200);
  assert_int_equal(a.r[0].body_len, 0);
  assert_int_equal(g_kept_closes, 1); /* HEAD ends the stream at once */
  app_free(&a);
}

/* ptv_http_stop() from inside a handler is deferred until MHD_run() returns. */
static void h_quit(ptv_http_reply *reply, void *user) {
  ptv_http_reply_set_body(reply, "bye\n", 4);
  stop_all(user);
}

static void c_quit(app *a, int idx) {
  request(a->port, "GET /quit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &a->r[0]);
}

static void test_stop_from_handler(void **state) {
  app a;
  app_init(&a);
  app_start(&a);
  assert_int_equal(ptv_http_route(a.srv, "/quit", h_quit, &a), 0);
  app_add_client(&a, c_quit);
  app_run(&a); /* asserts the server stopped */
  /* the answer was queued, but stop closed the connection first */
  assert_true(a.r[0].status == 0 || a.r[0].status == 200);
  app_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_head_query),
      cmocka_unit_test(test_404_405_limits),
      cmocka_unit_test(test_start_errors),
      cmocka_unit_test(test_stream_three_clients),
      cmocka_unit_test(test_stream_client_leaves),
      cmocka_unit_test(test_slow_client),
      cmocka_unit_test(test_per_ip_limit),
      cmocka_unit_test(test_default_log_is_debug),
      cmocka_unit_test(test_stop_with_open_connections),
      cmocka_unit_test(test_head_stream_unreleased),
      cmocka_unit_test(test_stop_from_handler),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
