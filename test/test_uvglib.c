/* test_uvglib.c -- unit tests for ptv_uvglib, libuv driving a GMainContext.
 *
 * Each test runs a private uv loop and a private GMainContext joined by
 * ptv_uvglib and checks that GLib sources (timeouts, idles, fd watches
 * through GIOChannel and GSocket) dispatch under uv_run: on time, when data
 * arrives from a libuv callback, when added from inside a dispatch, with
 * many fds, when fd numbers are closed and reused, after EPOLLERR, that the
 * after-dispatch hook runs once per dispatch, and that
 * closing releases everything (the tests also run under ASan). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>

#include "ptv_err.h"
#include "ptv_uvglib.h"

/* ---- harness -------------------------------------------------------------- */

typedef struct {
  uv_loop_t loop;
  GMainContext *ctx;
  ptv_uvglib g;
  int closed;          /* ptv_uvglib close callback ran */
  uv_timer_t guard;    /* fails the test if it runs too long */
  uint64_t t0_ms;
} harness;

static void on_closed(ptv_uvglib *g) {
  harness *h = (harness *)((char *)g - offsetof(harness, g));
  h->closed = 1;
}

static void on_guard(uv_timer_t *t) {
  (void)t;
  fail_msg("test timed out");
}

static void h_init(harness *h, uint64_t guard_ms) {
  memset(h, 0, sizeof(*h));
  assert_int_equal(uv_loop_init(&h->loop), 0);
  h->ctx = g_main_context_new();
  assert_int_equal(ptv_uvglib_init(&h->g, &h->loop, h->ctx), 0);
  assert_int_equal(uv_timer_init(&h->loop, &h->guard), 0);
  uv_timer_start(&h->guard, on_guard, guard_ms, 0);
  uv_unref((uv_handle_t *)&h->guard);
  h->t0_ms = uv_now(&h->loop);
}

/* Ends the run: closes the integration; uv_run returns once all is closed. */
static void h_stop(harness *h) {
  ptv_uvglib_close(&h->g, on_closed);
  if (!uv_is_closing((uv_handle_t *)&h->guard))
    uv_close((uv_handle_t *)&h->guard, NULL);
}

static void h_finish(harness *h) {
  assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
  assert_true(h->closed);
  assert_int_equal(uv_loop_close(&h->loop), 0);
  g_main_context_unref(h->ctx);
}

static guint attach(harness *h, GSource *s, GSourceFunc fn, void *data) {
  g_source_set_callback(s, fn, data, NULL);
  guint id = g_source_attach(s, h->ctx);
  g_source_unref(s);
  return id;
}

/* Watches fd for input through a GIOChannel source in the harness context. */
static void watch_in(harness *h, int fd, GIOFunc fn, void *data) {
  GIOChannel *ch = g_io_channel_unix_new(fd);
  GSource *s = g_io_create_watch(ch, G_IO_IN);
  g_source_set_callback(s, (GSourceFunc)(void (*)(void))fn, data, NULL);
  g_source_attach(s, h->ctx);
  g_source_unref(s);
  g_io_channel_unref(ch);
}

/* ---- timeout and idle ----------------------------------------------------- */

typedef struct {
  harness *h;
  uint64_t fired_ms;
  int count;
} tcount;

static gboolean on_timeout_once(gpointer data) {
  tcount *c = data;
  uv_update_time(&c->h->loop);
  c->fired_ms = uv_now(&c->h->loop);
  c->count++;
  h_stop(c->h);
  return G_SOURCE_REMOVE;
}

static void test_timeout_fires_on_time(void **state) {
  (void)state;
  harness h;
  tcount c = {.h = &h};
  h_init(&h, 5000);
  attach(&h, g_timeout_source_new(120), on_timeout_once, &c);
  h_finish(&h);
  assert_int_equal(c.count, 1);
  uint64_t dt = c.fired_ms - h.t0_ms;
  /* GLib never fires early; allow generous lateness for a loaded machine. */
  assert_true(dt >= 119);
  assert_true(dt <= 220);
}

static gboolean on_idle_count(gpointer data) {
  tcount *c = data;
  if (++c->count < 5)
    return G_SOURCE_CONTINUE;
  uv_update_time(&c->h->loop);
  c->fired_ms = uv_now(&c->h->loop);
  h_stop(c->h);
  return G_SOURCE_REMOVE;
}

static void test_idle_runs(void **state) {
  (void)state;
  harness h;
  tcount c = {.h = &h};
  h_init(&h, 5000);
  attach(&h, g_idle_source_new(), on_idle_count, &c);
  h_finish(&h);
  assert_int_equal(c.count, 5);
  /* An idle must not wait for anything. */
  assert_true(c.fired_ms - h.t0_ms < 1000);
}

/* With keepalive off, an open integration alone does not keep uv_run going. */
static void test_keepalive_off_returns(void **state) {
  (void)state;
  uv_loop_t loop;
  ptv_uvglib g;
  GMainContext *ctx = g_main_context_new();
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ptv_uvglib_init(&g, &loop, ctx), 0);
  ptv_uvglib_keepalive(&g, 0);
  /* Nothing else is referenced: uv_run returns at once. */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  ptv_uvglib_close(&g, NULL);
  ptv_uvglib_close(&g, NULL); /* twice: no-op */
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
  g_main_context_unref(ctx);
}

static void test_init_errors(void **state) {
  (void)state;
  uv_loop_t loop;
  ptv_uvglib g;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ptv_uvglib_init(NULL, &loop, NULL), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_uvglib_init(&g, NULL, NULL), PTV_ERR_INVALID_ARG);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- fd sources ----------------------------------------------------------- */

typedef struct {
  harness *h;
  int fds[2];          /* socketpair: [0] watched by GLib, [1] written by uv */
  uv_timer_t writer;
  int got;
  char buf[64];
  uint64_t written_ms, read_ms;
} fdtest;

static void on_write_timer(uv_timer_t *t) {
  fdtest *f = t->data;
  uv_update_time(&f->h->loop);
  f->written_ms = uv_now(&f->h->loop);
  assert_int_equal(write(f->fds[1], "hello", 5), 5);
  uv_close((uv_handle_t *)&f->writer, NULL);
}

static gboolean on_channel_in(GIOChannel *ch, GIOCondition cond, gpointer data) {
  fdtest *f = data;
  assert_true(cond & G_IO_IN);
  ssize_t n = read(g_io_channel_unix_get_fd(ch), f->buf, sizeof(f->buf));
  assert_int_equal(n, 5);
  uv_update_time(&f->h->loop);
  f->read_ms = uv_now(&f->h->loop);
  f->got++;
  h_stop(f->h);
  return G_SOURCE_REMOVE;
}

static void test_iochannel_dispatches_on_data(void **state) {
  (void)state;
  harness h;
  fdtest f = {.h = &h};
  h_init(&h, 5000);
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, f.fds), 0);
  watch_in(&h, f.fds[0], on_channel_in, &f);
  uv_timer_init(&h.loop, &f.writer);
  f.writer.data = &f;
  uv_timer_start(&f.writer, on_write_timer, 30, 0);
  h_finish(&h);
  assert_int_equal(f.got, 1);
  assert_memory_equal(f.buf, "hello", 5);
  /* Dispatched in the same or the next loop iteration, not on a timeout. */
  assert_true(f.read_ms - f.written_ms <= 20);
  close(f.fds[0]);
  close(f.fds[1]);
}

/* GSocket source on a UDP socket, written to from a libuv timer. */
typedef struct {
  harness *h;
  GSocket *rx;
  int tx;
  struct sockaddr_in to;
  uv_timer_t writer;
  int sent, got;
} udptest;

static void on_udp_write(uv_timer_t *t) {
  udptest *u = t->data;
  uint8_t b[100];
  memset(b, u->sent, sizeof(b));
  assert_int_equal(sendto(u->tx, b, sizeof(b), 0, (struct sockaddr *)&u->to, sizeof(u->to)),
                   (ssize_t)sizeof(b));
  if (++u->sent == 10)
    uv_close((uv_handle_t *)&u->writer, NULL);
}

static gboolean on_gsocket_in(GSocket *s, GIOCondition cond, gpointer data) {
  udptest *u = data;
  uint8_t b[200];
  assert_true(cond & G_IO_IN);
  for (;;) {
    gssize n = g_socket_receive(s, (gchar *)b, sizeof(b), NULL, NULL);
    if (n < 0)
      break;
    assert_int_equal(n, 100);
    assert_int_equal(b[0], u->got);
    assert_int_equal(b[99], u->got);
    u->got++;
  }
  if (u->got == 10) {
    h_stop(u->h);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static void test_gsocket_udp_dispatches(void **state) {
  (void)state;
  harness h;
  udptest u = {.h = &h};
  h_init(&h, 5000);
  u.rx = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  assert_non_null(u.rx);
  g_socket_set_blocking(u.rx, FALSE);
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *sa = g_inet_socket_address_new(lo, 0);
  assert_true(g_socket_bind(u.rx, sa, TRUE, NULL));
  g_object_unref(sa);
  g_object_unref(lo);
  struct sockaddr_in bound;
  socklen_t bl = sizeof(bound);
  assert_int_equal(getsockname(g_socket_get_fd(u.rx), (struct sockaddr *)&bound, &bl), 0);
  u.to = bound;
  u.tx = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(u.tx >= 0);
  GSource *s = g_socket_create_source(u.rx, G_IO_IN, NULL);
  attach(&h, s, (GSourceFunc)(void (*)(void))on_gsocket_in, &u);
  uv_timer_init(&h.loop, &u.writer);
  u.writer.data = &u;
  uv_timer_start(&u.writer, on_udp_write, 5, 5);
  h_finish(&h);
  assert_int_equal(u.got, 10);
  close(u.tx);
  g_object_unref(u.rx);
}

/* ---- after-dispatch hook ----------------------------------------------------- */

/* Two sockets made readable before one poll: both GLib callbacks run in
 * one dispatch, and the hook runs once after them, not once per callback
 * (ptv_links writes its datagrams there, once per pass). */
typedef struct {
  harness *h;
  int fds[2][2]; /* two socketpairs: [i][0] watched, [i][1] written */
  uv_timer_t writer;
  int cbs;          /* GLib callbacks run */
  int after;        /* hook calls */
  int cbs_at_first; /* callbacks run when the hook first ran */
  int rounds;       /* writes done (one byte to each pair per round) */
} aftertest;

static gboolean on_after_in(GIOChannel *ch, GIOCondition cond, gpointer data) {
  aftertest *a = data;
  char b;
  (void)cond;
  assert_int_equal(read(g_io_channel_unix_get_fd(ch), &b, 1), 1);
  a->cbs++;
  return G_SOURCE_CONTINUE;
}

static void on_after_hook(void *arg) {
  aftertest *a = arg;
  if (a->after++ == 0)
    a->cbs_at_first = a->cbs;
  if (a->cbs == 2 * 3)
    h_stop(a->h);
}

static void on_after_write(uv_timer_t *t) {
  aftertest *a = t->data;
  for (int i = 0; i < 2; i++)
    assert_int_equal(write(a->fds[i][1], "x", 1), 1);
  if (++a->rounds == 3)
    uv_close((uv_handle_t *)&a->writer, NULL);
}

static void test_after_dispatch_once_per_pass(void **state) {
  (void)state;
  harness h;
  aftertest a = {.h = &h};
  h_init(&h, 5000);
  ptv_uvglib_set_after_dispatch(&h.g, on_after_hook, &a);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, a.fds[i]), 0);
    watch_in(&h, a.fds[i][0], on_after_in, &a);
  }
  uv_timer_init(&h.loop, &a.writer);
  a.writer.data = &a;
  uv_timer_start(&a.writer, on_after_write, 20, 20);
  h_finish(&h);
  assert_int_equal(a.cbs, 6);
  assert_int_equal(a.cbs_at_first, 2); /* after both callbacks of the pass */
  assert_int_equal(a.after, 3);        /* one per pass with data, no more */
  for (int i = 0; i < 2; i++) {
    close(a.fds[i][0]);
    close(a.fds[i][1]);
  }
}

/* ---- recursive: no blocking around a dispatch ----------------------------- */

typedef struct {
  udptest u;
  GSource *src;
  int wakeups_seen; /* GLib signalled its wakeup fd before our callback */
  int recurse_seen; /* our source was marked can-recurse when dispatched */
} rectest;

static gboolean on_rec_in(GSocket *s, GIOCondition cond, gpointer data) {
  rectest *r = data;
  uint64_t v;
  /* Blocking a source around its dispatch removes its fd (a wakeup write);
   * a can-recurse source is not blocked, so nothing was written. */
  if (read(r->u.h->g.wake_fd, &v, sizeof(v)) > 0)
    r->wakeups_seen++;
  if (g_source_get_can_recurse(r->src))
    r->recurse_seen++;
  return on_gsocket_in(s, cond, &r->u);
}

static void run_rectest(int recursive, rectest *r) {
  harness h;
  memset(r, 0, sizeof(*r));
  r->u.h = &h;
  h_init(&h, 5000);
  assert_true(h.g.wake_fd >= 0);
  if (recursive)
    ptv_uvglib_set_recursive(&h.g); /* before the source: found by a rescan */
  r->u.rx = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  assert_non_null(r->u.rx);
  g_socket_set_blocking(r->u.rx, FALSE);
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *sa = g_inet_socket_address_new(lo, 0);
  assert_true(g_socket_bind(r->u.rx, sa, TRUE, NULL));
  g_object_unref(sa);
  g_object_unref(lo);
  socklen_t bl = sizeof(r->u.to);
  assert_int_equal(getsockname(g_socket_get_fd(r->u.rx), (struct sockaddr *)&r->u.to, &bl), 0);
  r->u.tx = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(r->u.tx >= 0);
  r->src = g_socket_create_source(r->u.rx, G_IO_IN, NULL);
  g_source_set_callback(r->src, (GSourceFunc)(void (*)(void))on_rec_in, r, NULL);
  g_source_attach(r->src, h.ctx);
  uv_timer_init(&h.loop, &r->u.writer);
  r->u.writer.data = &r->u;
  uv_timer_start(&r->u.writer, on_udp_write, 5, 5);
  h_finish(&h);
  g_source_unref(r->src);
  close(r->u.tx);
  g_object_unref(r->u.rx);
}

static void test_recursive_skips_block(void **state) {
  (void)state;
  rectest r;
  run_rectest(0, &r);
  assert_int_equal(r.u.got, 10);
  assert_int_equal(r.recurse_seen, 0);
  assert_true(r.wakeups_seen > 0); /* the cost this option removes */
  run_rectest(1, &r);
  assert_int_equal(r.u.got, 10);
  assert_true(r.recurse_seen > 0);
  assert_int_equal(r.wakeups_seen, 0);
}

/* ---- sources added from inside a dispatch --------------------------------- */

typedef struct {
  harness *h;
  int stage;
  int fds[2];
} chain;

static gboolean chain_fd(GIOChannel *ch, GIOCondition cond, gpointer data) {
  chain *c = data;
  char b[8];
  assert_true(cond & G_IO_IN);
  assert_int_equal(read(g_io_channel_unix_get_fd(ch), b, sizeof(b)), 1);
  assert_int_equal(c->stage, 3);
  c->stage = 4;
  h_stop(c->h);
  return G_SOURCE_REMOVE;
}

static gboolean chain_timeout(gpointer data) {
  chain *c = data;
  assert_int_equal(c->stage, 2);
  c->stage = 3;
  /* Add an fd watch and make it readable right away, from GLib code. */
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, c->fds), 0);
  GIOChannel *ch = g_io_channel_unix_new(c->fds[0]);
  GSource *s = g_io_create_watch(ch, G_IO_IN);
  g_io_channel_unref(ch);
  attach(c->h, s, (GSourceFunc)(void (*)(void))chain_fd, c);
  assert_int_equal(write(c->fds[1], "x", 1), 1);
  return G_SOURCE_REMOVE;
}

static gboolean chain_idle(gpointer data) {
  chain *c = data;
  assert_int_equal(c->stage, 1);
  c->stage = 2;
  attach(c->h, g_timeout_source_new(20), chain_timeout, c);
  return G_SOURCE_REMOVE;
}

static gboolean chain_start(gpointer data) {
  chain *c = data;
  assert_int_equal(c->stage, 0);
  c->stage = 1;
  attach(c->h, g_idle_source_new(), chain_idle, c);
  return G_SOURCE_REMOVE;
}

static void test_sources_added_from_dispatch(void **state) {
  (void)state;
  harness h;
  chain c = {.h = &h};
  h_init(&h, 5000);
  attach(&h, g_timeout_source_new(10), chain_start, &c);
  h_finish(&h);
  assert_int_equal(c.stage, 4);
  close(c.fds[0]);
  close(c.fds[1]);
}

/* ---- many fds, closed and reused ------------------------------------------ */

#define NSOCK 50

typedef struct {
  harness *h;
  int pair[NSOCK][2];
  guint src[NSOCK];
  int hits[NSOCK];
  int round;        /* 0: first writes; 1: after half were closed and reopened */
  int total;
  int hint;         /* announce the reuse with ptv_uvglib_fds_changed */
  uint64_t reopened_ms, done_ms;
  uv_timer_t writer;
} many;

static gboolean many_in(GIOChannel *ch, GIOCondition cond, gpointer data);

static void many_watch(many *m, int i) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, m->pair[i]), 0);
  GIOChannel *ch = g_io_channel_unix_new(m->pair[i][0]);
  GSource *s = g_io_create_watch(ch, G_IO_IN);
  g_io_channel_unref(ch);
  m->src[i] = attach(m->h, s, (GSourceFunc)(void (*)(void))many_in, m);
}

static void on_many_write(uv_timer_t *t) {
  many *m = t->data;
  for (int i = 0; i < NSOCK; i++)
    assert_int_equal(write(m->pair[i][1], &i, sizeof(i)), (ssize_t)sizeof(i));
}

static gboolean many_in(GIOChannel *ch, GIOCondition cond, gpointer data) {
  many *m = data;
  int i;
  assert_true(cond & G_IO_IN);
  assert_int_equal(read(g_io_channel_unix_get_fd(ch), &i, sizeof(i)), (ssize_t)sizeof(i));
  assert_true(i >= 0 && i < NSOCK);
  assert_int_equal(m->pair[i][0], g_io_channel_unix_get_fd(ch));
  m->hits[i]++;
  if (++m->total == NSOCK && m->round == 0) {
    /* Close every other socket (GLib drops the watch, we close the fd), then
     * open new ones: the kernel hands back the same fd numbers, which the
     * integration must notice and re-register with epoll. */
    for (int k = 0; k < NSOCK; k += 2) {
      g_source_destroy(g_main_context_find_source_by_id(m->h->ctx, m->src[k]));
      close(m->pair[k][0]);
      close(m->pair[k][1]);
    }
    for (int k = 0; k < NSOCK; k += 2)
      many_watch(m, k);
    if (m->hint) ptv_uvglib_fds_changed(&m->h->g);
    uv_update_time(&m->h->loop);
    m->reopened_ms = uv_now(&m->h->loop);
    m->round = 1;
    uv_timer_start(&m->writer, on_many_write, 10, 0);
  }
  if (m->total == 2 * NSOCK) {
    uv_update_time(&m->h->loop);
    m->done_ms = uv_now(&m->h->loop);
    uv_close((uv_handle_t *)&m->writer, NULL);
    h_stop(m->h);
  }
  return G_SOURCE_CONTINUE;
}

/* Unannounced, the reused numbers are found by the periodic check (at most
 * a second); announced, by the next prepare: the writes 10 ms after the
 * reuse are read at once. */
static void many_fds(int hint) {
  harness h;
  many *m = calloc(1, sizeof(*m));
  m->h = &h;
  m->hint = hint;
  h_init(&h, 10000);
  for (int i = 0; i < NSOCK; i++)
    many_watch(m, i);
  uv_timer_init(&h.loop, &m->writer);
  m->writer.data = m;
  uv_timer_start(&m->writer, on_many_write, 10, 0);
  h_finish(&h);
  for (int i = 0; i < NSOCK; i++) {
    assert_int_equal(m->hits[i], 2);
    close(m->pair[i][0]);
    close(m->pair[i][1]);
  }
  if (hint) assert_true(m->done_ms - m->reopened_ms < 500);
  else assert_true(m->done_ms - m->reopened_ms >= 100); /* waited for the sweep */
  free(m);
}

static void test_many_fds(void **state) {
  (void)state;
  many_fds(0);
}

static void test_many_fds_announced(void **state) {
  (void)state;
  many_fds(1);
}

/* ---- EPOLLERR on a UDP socket --------------------------------------------- */

typedef struct {
  harness *h;
  int s;
  int errs, ins;
  struct sockaddr_in live;
  int live_fd;
} errtest;

static gboolean err_watch(GIOChannel *ch, GIOCondition cond, gpointer data) {
  errtest *e = data;
  char b[16];
  (void)ch;
  if (cond & G_IO_ERR) {
    /* Reading fetches (and clears) the queued ICMP error. */
    assert_int_equal(recv(e->s, b, sizeof(b), 0), -1);
    assert_int_equal(errno, ECONNREFUSED);
    if (e->errs++ == 0) {
      /* The poll libuv stopped on EPOLLERR must be restarted: data now. */
      assert_int_equal(connect(e->s, (struct sockaddr *)&e->live, sizeof(e->live)), 0);
      struct sockaddr_in me;
      socklen_t ml = sizeof(me);
      assert_int_equal(getsockname(e->s, (struct sockaddr *)&me, &ml), 0);
      assert_int_equal(sendto(e->live_fd, "ok", 2, 0, (struct sockaddr *)&me, ml), 2);
    }
    return G_SOURCE_CONTINUE;
  }
  if (cond & G_IO_IN) {
    assert_int_equal(recv(e->s, b, sizeof(b), 0), 2);
    e->ins++;
    h_stop(e->h);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

static void test_epollerr_then_data(void **state) {
  (void)state;
  harness h;
  errtest e = {.h = &h};
  h_init(&h, 5000);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  /* A port nobody listens on: bind, learn the port, close. */
  int dead = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(bind(dead, (struct sockaddr *)&a, sizeof(a)), 0);
  struct sockaddr_in dead_addr;
  assert_int_equal(getsockname(dead, (struct sockaddr *)&dead_addr, &al), 0);
  close(dead);
  e.live_fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(bind(e.live_fd, (struct sockaddr *)&a, sizeof(a)), 0);
  al = sizeof(e.live);
  assert_int_equal(getsockname(e.live_fd, (struct sockaddr *)&e.live, &al), 0);
  e.s = socket(AF_INET, SOCK_DGRAM, 0);
  assert_int_equal(connect(e.s, (struct sockaddr *)&dead_addr, sizeof(dead_addr)), 0);
  GIOChannel *ch = g_io_channel_unix_new(e.s);
  GSource *src = g_io_create_watch(ch, G_IO_IN | G_IO_ERR);
  g_io_channel_unref(ch);
  attach(&h, src, (GSourceFunc)(void (*)(void))err_watch, &e);
  assert_int_equal(send(e.s, "x", 1, 0), 1); /* ICMP port unreachable comes back */
  h_finish(&h);
  assert_true(e.errs >= 1);
  assert_int_equal(e.ins, 1);
  close(e.s);
  close(e.live_fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_errors),
      cmocka_unit_test(test_timeout_fires_on_time),
      cmocka_unit_test(test_idle_runs),
      cmocka_unit_test(test_keepalive_off_returns),
      cmocka_unit_test(test_iochannel_dispatches_on_data),
      cmocka_unit_test(test_gsocket_udp_dispatches),
      cmocka_unit_test(test_recursive_skips_block),
      cmocka_unit_test(test_after_dispatch_once_per_pass),
      cmocka_unit_test(test_sources_added_from_dispatch),
      cmocka_unit_test(test_many_fds),
      cmocka_unit_test(test_many_fds_announced),
      cmocka_unit_test(test_epollerr_then_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
