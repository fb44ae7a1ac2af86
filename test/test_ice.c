/* test_ice.c -- unit tests for ptv_ice, libnice links in datagram mode.
 *
 * One process, loopback only: two ptv_ice engines (side 0 opens controlling
 * links, side 1 controlled ones) share a GMainContext driven by a libuv loop
 * through ptv_uvglib. Credentials, trickled candidates and end-of-candidates
 * travel through an in-test relay, a uv timer that delivers queued strings
 * a few ms later, as the tracker would. Checked: links connect within 3 s
 * and carry 2,000 datagrams of 1,000 bytes each way, none lost and bytes
 * intact; a wrong remote password ends in FAILED within the configured
 * timeout; garbage candidate lines give PTV_ERR_PARSE; 10 links between two
 * engines all connect; freeing links while they connect (also from inside
 * their callbacks) is safe, and nothing leaks fds (or memory, under ASan);
 * a link connects beside a source that is ready at every pass. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_ice.h"
#include "ptv_uvglib.h"

/* ---- harness -------------------------------------------------------------- */

#define MAXP 10
#define RELAY_DELAY_MS 3
#define NDGRAM 2000
#define DGRAM_LEN 1000
/* Datagrams in flight per direction. UDP drops only when the receiver's
 * socket buffer overflows; 32 x ~2 KiB of kernel truesize stays well under
 * the default 208 KiB rmem, so loopback must lose nothing. */
#define WINDOW 32

enum { M_CAND, M_DONE, M_CREDS };

typedef struct {
  uint64_t due;
  int to, pair, kind;
  char *a, *b;
} msg;

typedef struct world world;

typedef struct {
  world *w;
  int side;
  ptv_ice *ice;
} side_t;

typedef struct {
  ptv_ice_link *l[2];
  ptv_ice_state st[2];
  int nstates[2];
  uint64_t t_connected[2];
  int gathered[2];
  int ncand[2];
  uint32_t sent[2], recvd[2]; /* recvd[s]: datagrams side s received */
  int bad[2];
  int corrupt_pwd_for;        /* side whose remote password is wrong, or -1 */
  int free_on_candidate;      /* side that frees its link in a callback, or -1 */
} pairx;

struct world {
  uv_loop_t loop;
  GMainContext *ctx;
  ptv_uvglib g;
  int closed;
  side_t side[2];
  pairx p[MAXP];
  int np;
  GQueue q;
  uv_timer_t relay;
  uint64_t t0;
};

static world *W; /* the callbacks' way back; one world at a time */

static uint64_t now_ms(world *w) {
  uv_update_time(&w->loop);
  return uv_now(&w->loop);
}

static void post(world *w, int to, int pair, int kind, const char *a, const char *b) {
  msg *m = g_new0(msg, 1);
  m->due = now_ms(w) + RELAY_DELAY_MS;
  m->to = to;
  m->pair = pair;
  m->kind = kind;
  m->a = g_strdup(a);
  m->b = g_strdup(b);
  g_queue_push_tail(&w->q, m);
}

static void msg_free(msg *m) {
  g_free(m->a);
  g_free(m->b);
  g_free(m);
}

static void on_relay(uv_timer_t *t) {
  world *w = t->data;
  uint64_t now = now_ms(w);
  while (!g_queue_is_empty(&w->q)) {
    msg *m = g_queue_peek_head(&w->q);
    if (m->due > now)
      break;
    g_queue_pop_head(&w->q);
    ptv_ice_link *l = w->p[m->pair].l[m->to];
    if (l) {
      switch (m->kind) {
      case M_CAND:
        assert_int_equal(ptv_ice_link_add_remote_candidate(l, m->a), 0);
        break;
      case M_DONE:
        assert_int_equal(ptv_ice_link_remote_done(l), 0);
        break;
      case M_CREDS:
        assert_int_equal(ptv_ice_link_set_remote_credentials(l, m->a, m->b), 0);
        break;
      }
    }
    msg_free(m);
  }
}

static void cb_cand(void *user, ptv_ice_link *l, uint32_t tag, const char *line) {
  side_t *s = user;
  pairx *p = &s->w->p[tag];
  assert_ptr_equal(p->l[s->side], l);
  assert_true(strncmp(line, "a=candidate:", 12) == 0);
  p->ncand[s->side]++;
  post(s->w, !s->side, (int)tag, M_CAND, line, NULL);
  if (p->free_on_candidate == s->side) {
    ptv_ice_link_free(l);
    p->l[s->side] = NULL;
  }
}

static void cb_done(void *user, ptv_ice_link *l, uint32_t tag) {
  side_t *s = user;
  pairx *p = &s->w->p[tag];
  assert_ptr_equal(p->l[s->side], l);
  p->gathered[s->side] = 1;
  post(s->w, !s->side, (int)tag, M_DONE, NULL, NULL);
}

static void cb_state(void *user, ptv_ice_link *l, uint32_t tag, ptv_ice_state st) {
  side_t *s = user;
  pairx *p = &s->w->p[tag];
  assert_ptr_equal(p->l[s->side], l);
  /* Forward only, each reported once. */
  if (p->nstates[s->side])
    assert_true(st > p->st[s->side] || st == PTV_ICE_FAILED);
  assert_int_not_equal(p->st[s->side], PTV_ICE_FAILED);
  p->st[s->side] = st;
  p->nstates[s->side]++;
  if (st == PTV_ICE_CONNECTED)
    p->t_connected[s->side] = now_ms(s->w) - s->w->t0;
}

static void fill(uint8_t *b, int from, uint32_t seq) {
  b[0] = 0xaa; /* not mistakable for STUN (whose first two bits are 0) */
  memcpy(b + 1, &seq, 4);
  for (int i = 5; i < DGRAM_LEN; i++)
    b[i] = (uint8_t)(seq * 31u + (unsigned)i * 7u + (unsigned)from);
}

static void cb_recv(void *user, ptv_ice_link *l, uint32_t tag, const uint8_t *buf, size_t len) {
  side_t *s = user;
  pairx *p = &s->w->p[tag];
  uint8_t want[DGRAM_LEN];
  uint32_t seq;
  assert_ptr_equal(p->l[s->side], l);
  memcpy(&seq, buf + 1, 4);
  fill(want, !s->side, seq);
  if (len != DGRAM_LEN || memcmp(buf, want, DGRAM_LEN) != 0 || seq != p->recvd[s->side])
    p->bad[s->side]++; /* corrupted or out of order (loopback keeps order) */
  p->recvd[s->side]++;
}

static const ptv_ice_callbacks CBS = {
    .on_local_candidate = cb_cand,
    .on_gathering_done = cb_done,
    .on_state = cb_state,
    .on_recv = cb_recv,
};

static int count_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  while ((e = readdir(d)))
    n++;
  closedir(d);
  return n;
}

static void w_init(world *w, uint32_t fail_ms) {
  static const char *const lo[] = {"127.0.0.1"};
  memset(w, 0, sizeof(*w));
  W = w;
  for (int i = 0; i < MAXP; i++)
    w->p[i].corrupt_pwd_for = w->p[i].free_on_candidate = -1;
  assert_int_equal(uv_loop_init(&w->loop), 0);
  w->ctx = g_main_context_new();
  assert_int_equal(ptv_uvglib_init(&w->g, &w->loop, w->ctx), 0);
  g_queue_init(&w->q);
  uv_timer_init(&w->loop, &w->relay);
  w->relay.data = w;
  uv_timer_start(&w->relay, on_relay, 1, 1);
  ptv_ice_config cfg = {.local_addrs = lo, .n_local_addrs = 1, .fail_timeout_ms = fail_ms};
  for (int s = 0; s < 2; s++) {
    w->side[s].w = w;
    w->side[s].side = s;
    w->side[s].ice = ptv_ice_new(w->ctx, &cfg, &CBS, &w->side[s]);
    assert_non_null(w->side[s].ice);
  }
  w->t0 = now_ms(w);
}

/* Opens pair i: side 0 controls. Credentials go through the relay too. */
static void open_pair(world *w, int i) {
  pairx *p = &w->p[i];
  char uf[32], pw[32];
  for (int s = 0; s < 2; s++) {
    p->l[s] = ptv_ice_link_new(w->side[s].ice, (uint32_t)i, s == 0);
    assert_non_null(p->l[s]);
    assert_int_equal(ptv_ice_link_state(p->l[s]), PTV_ICE_GATHERING);
    assert_int_equal(ptv_ice_link_peer_tag(p->l[s]), (uint32_t)i);
  }
  for (int s = 0; s < 2; s++) {
    assert_int_equal(ptv_ice_link_local_credentials(p->l[s], uf, sizeof(uf), pw, sizeof(pw)), 0);
    if (p->corrupt_pwd_for == !s)
      pw[0] = pw[0] == 'x' ? 'y' : 'x';
    post(w, !s, i, M_CREDS, uf, pw);
  }
  if (i >= w->np)
    w->np = i + 1;
}

typedef int (*pred_fn)(world *w);

/* Iterates the loop until pred holds or ms pass; returns pred. */
static int run_until(world *w, pred_fn pred, uint64_t ms, void (*each)(world *)) {
  uint64_t end = now_ms(w) + ms;
  while (!pred(w) && now_ms(w) < end) {
    uv_run(&w->loop, UV_RUN_ONCE);
    if (each)
      each(w);
  }
  return pred(w);
}

static int never(world *w) {
  (void)w;
  return 0;
}

static int all_connected(world *w) {
  for (int i = 0; i < w->np; i++)
    if (w->p[i].st[0] != PTV_ICE_CONNECTED || w->p[i].st[1] != PTV_ICE_CONNECTED)
      return 0;
  return 1;
}

static void on_closed(ptv_uvglib *g) {
  (void)g;
  W->closed = 1;
}

static void w_finish(world *w) {
  /* The relay keeps ticking (it bounds each uv_run below) but has no more
   * links to deliver to. */
  g_queue_clear_full(&w->q, (GDestroyNotify)msg_free);
  for (int i = 0; i < w->np; i++)
    for (int s = 0; s < 2; s++) {
      ptv_ice_link_free(w->p[i].l[s]);
      w->p[i].l[s] = NULL;
    }
  ptv_ice_free(w->side[0].ice);
  ptv_ice_free(w->side[1].ice);
  /* libnice finishes closing streams from the context. */
  run_until(w, never, 50, NULL);
  uv_close((uv_handle_t *)&w->relay, NULL);
  ptv_uvglib_close(&w->g, on_closed);
  assert_int_equal(uv_run(&w->loop, UV_RUN_DEFAULT), 0);
  assert_true(w->closed);
  assert_int_equal(uv_loop_close(&w->loop), 0);
  g_main_context_unref(w->ctx);
  W = NULL;
}

/* ---- connect and exchange ------------------------------------------------- */

static void pump(world *w) {
  uint8_t b[DGRAM_LEN];
  for (int i = 0; i < w->np; i++) {
    pairx *p = &w->p[i];
    for (int s = 0; s < 2; s++) {
      while (p->sent[s] < NDGRAM && p->sent[s] - p->recvd[!s] < WINDOW) {
        fill(b, s, p->sent[s]);
        int rv = ptv_ice_link_send(p->l[s], b, sizeof(b));
        if (rv == PTV_ERR_AGAIN)
          break;
        assert_int_equal(rv, 0);
        p->sent[s]++;
      }
    }
  }
}

static int all_received(world *w) {
  for (int i = 0; i < w->np; i++)
    if (w->p[i].recvd[0] < NDGRAM || w->p[i].recvd[1] < NDGRAM)
      return 0;
  return 1;
}

static void test_connect_and_exchange(void **state) {
  (void)state;
  world *w = calloc(1, sizeof(*w));
  int fds0 = count_fds();
  w_init(w, 0);
  open_pair(w, 0);
  pairx *p = &w->p[0];
  /* Not connected yet: nothing can be sent, no pair is selected. */
  uint8_t one = 1;
  char desc[128];
  assert_int_equal(ptv_ice_link_send(p->l[0], &one, 1), PTV_ERR_CLOSED);
  assert_int_equal(ptv_ice_link_selected_pair(p->l[0], desc, sizeof(desc)), PTV_ERR_NOT_FOUND);

  assert_true(run_until(w, all_connected, 3000, NULL));
  assert_true(p->ncand[0] >= 1 && p->ncand[1] >= 1);
  for (int s = 0; s < 2; s++) {
    assert_int_equal(ptv_ice_link_selected_pair(p->l[s], desc, sizeof(desc)), 0);
    print_message("side %d connected after %llu ms: %s\n", s,
                  (unsigned long long)p->t_connected[s], desc);
    assert_true(strncmp(desc, "host 127.0.0.1:", 15) == 0 ||
                strncmp(desc, "prflx 127.0.0.1:", 16) == 0);
    assert_non_null(strstr(desc, " -> "));
    assert_int_equal(ptv_ice_link_selected_pair(p->l[s], desc, 8), PTV_ERR_NOBUF);
  }

  uint64_t t = now_ms(w);
  assert_true(run_until(w, all_received, 20000, pump));
  print_message("%d x %d bytes each way in %llu ms\n", NDGRAM, DGRAM_LEN,
                (unsigned long long)(now_ms(w) - t));
  for (int s = 0; s < 2; s++) {
    assert_int_equal(p->recvd[s], NDGRAM);
    assert_int_equal(p->bad[s], 0);
    assert_int_equal(p->st[s], PTV_ICE_CONNECTED);
  }
  assert_int_equal(ptv_ice_link_send(p->l[0], NULL, 1), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_ice_link_send(p->l[0], &one, 0), PTV_ERR_INVALID_ARG);
  w_finish(w);
  free(w);
  assert_int_equal(count_fds(), fds0);
}

/* ---- batched sends (UDP GSO on our own socket path) ------------------------ */

#define SEGS 8
static int gso_sends, plain_sends;

static void pump_segments(world *w) {
  uint8_t b[SEGS * DGRAM_LEN];
  for (int i = 0; i < w->np; i++) {
    pairx *p = &w->p[i];
    for (int s = 0; s < 2; s++) {
      while (p->sent[s] + SEGS <= NDGRAM && p->sent[s] + SEGS - p->recvd[!s] <= WINDOW) {
        for (int k = 0; k < SEGS; k++) fill(b + k * DGRAM_LEN, s, p->sent[s] + (uint32_t)k);
        int gso = -1;
        int rv = ptv_ice_link_send_segments(p->l[s], b, DGRAM_LEN, sizeof(b), &gso);
        if (rv == PTV_ERR_AGAIN)
          break;
        assert_int_equal(rv, SEGS);
        if (gso)
          gso_sends++;
        else
          plain_sends++;
        p->sent[s] += SEGS;
      }
    }
  }
}

static void test_segments_batched(void **state) {
  (void)state;
  world *w = calloc(1, sizeof(*w));
  w_init(w, 0);
  open_pair(w, 0);
  pairx *p = &w->p[0];
  uint8_t b[40 * DGRAM_LEN];
  memset(b, 0xaa, sizeof(b));
  int gso = -1;
  assert_int_equal(ptv_ice_link_send_segments(p->l[0], b, DGRAM_LEN, 2 * DGRAM_LEN, &gso),
                   PTV_ERR_CLOSED);
  assert_int_equal(gso, 0);
  assert_true(run_until(w, all_connected, 3000, NULL));
  assert_int_equal(ptv_ice_link_send_segments(NULL, b, DGRAM_LEN, DGRAM_LEN, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_ice_link_send_segments(p->l[0], b, 0, DGRAM_LEN, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_ice_link_send_segments(p->l[0], b, DGRAM_LEN, 0, NULL),
                   PTV_ERR_INVALID_ARG);
  /* 33 datagrams, or more than 65,000 bytes: refused, nothing sent */
  assert_int_equal(ptv_ice_link_send_segments(p->l[0], b, 1000, 33 * 1000, NULL),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_ice_link_send_segments(p->l[0], b, 30000, 65001, NULL),
                   PTV_ERR_INVALID_ARG);
  gso_sends = plain_sends = 0;
  assert_true(run_until(w, all_received, 20000, pump_segments));
  print_message("%d x %d bytes each way in batches of %d: %d by GSO, %d not\n", NDGRAM,
                DGRAM_LEN, SEGS, gso_sends, plain_sends);
  for (int s = 0; s < 2; s++) {
    assert_int_equal(p->recvd[s], NDGRAM); /* every datagram, whole, in order */
    assert_int_equal(p->bad[s], 0);
  }
  /* a host pair on loopback: the batches went as one system call each */
  assert_int_equal(gso_sends, 2 * NDGRAM / SEGS);
  assert_int_equal(plain_sends, 0);
  w_finish(w);
  free(w);
}

/* ---- wrong password ------------------------------------------------------- */

static int pair0_side1_final(world *w) { return w->p[0].st[1] == PTV_ICE_FAILED; }

/* A peer that naps between I/O passes finds datagrams waiting at almost
 * every pass: sources of default priority are ready each time, and GLib
 * runs none of lower priority meanwhile. A link's start (candidate
 * gathering) must not wait for an idle moment: it waited 1.5-7.7 s for one
 * with --poll-interval 10-20 at 6 peers. Here a busy source of default
 * priority is ready at every pass. */
static gboolean busy_cb(gpointer data) {
  (*(unsigned *)data)++;
  return G_SOURCE_CONTINUE;
}

static void test_connect_while_busy(void **state) {
  (void)state;
  world *w = calloc(1, sizeof(*w));
  unsigned busy_runs = 0;
  w_init(w, 0);
  GSource *busy = g_idle_source_new();
  g_source_set_priority(busy, G_PRIORITY_DEFAULT);
  g_source_set_callback(busy, busy_cb, &busy_runs, NULL);
  g_source_attach(busy, w->ctx);
  open_pair(w, 0);
  int ok = run_until(w, all_connected, 3000, NULL);
  print_message("states %d/%d gathered %d/%d cands %d/%d busy %u\n", w->p[0].st[0], w->p[0].st[1],
                w->p[0].gathered[0], w->p[0].gathered[1], w->p[0].ncand[0], w->p[0].ncand[1], busy_runs);
  assert_true(ok);
  print_message("connected in %llu / %llu ms beside a source ready at every pass (%u runs)\n",
                (unsigned long long)w->p[0].t_connected[0],
                (unsigned long long)w->p[0].t_connected[1], busy_runs);
  assert_true(busy_runs > 10);
  g_source_destroy(busy);
  g_source_unref(busy);
  w_finish(w);
  free(w);
}

static void test_wrong_password_fails(void **state) {
  (void)state;
  world *w = calloc(1, sizeof(*w));
  w_init(w, 1500);
  w->p[0].corrupt_pwd_for = 1; /* side 1 gets a wrong password for side 0 */
  open_pair(w, 0);
  uint64_t t = now_ms(w);
  assert_true(run_until(w, pair0_side1_final, 3000, NULL));
  uint64_t dt = now_ms(w) - t;
  print_message("wrong password: failed after %llu ms (timeout 1500)\n", (unsigned long long)dt);
  assert_true(dt <= 2000);
  assert_int_not_equal(w->p[0].st[1], PTV_ICE_CONNECTED);
  /* A failed link refuses everything but free. */
  uint8_t one = 1;
  assert_int_equal(ptv_ice_link_send(w->p[0].l[1], &one, 1), PTV_ERR_CLOSED);
  assert_int_equal(ptv_ice_link_add_remote_candidate(w->p[0].l[1], "a=candidate:1 1 UDP 1 127.0.0.1 9 typ host"),
                   PTV_ERR_CLOSED);
  /* Side 0 may think it connected (its own checks were answered) or fail;
   * either way, let the loop run on a little: nothing may crash. */
  run_until(w, never, 200, NULL);
  w_finish(w);
  free(w);
}

/* ---- parse errors and argument checks -------------------------------------- */

static void test_garbage_candidate(void **state) {
  (void)state;
  world *w = calloc(1, sizeof(*w));
  w_init(w, 0);
  open_pair(w, 0);
  ptv_ice_link *l = w->p[0].l[0];
  assert_int_equal(ptv_ice_link_add_remote_candidate(l, "garbage"), PTV_ERR_PARSE);
  assert_int_equal(ptv_ice_link_add_remote_candidate(l, "a=candidate:"), PTV_ERR_PARSE);
  assert_int_equal(ptv_ice_link_add_remote_candidate(l, "a=candidate:1 1 UDP x 127.0.0.1 9 typ host"),
                   PTV_ERR_PARSE);
  assert_int_equal(ptv_ice_link_add_remote_candidate(l, "a=candidate:1 1 UDP 1 not-an-ip 9 typ host"),
                   PTV_ERR_PARSE);
  assert_int_equal(ptv_ice_link_add_remote_candidate(l, "a=candidate:1 2 UDP 1 127.0.0.1 9 typ host"),
                   PTV_ERR_PARSE); /* component 2: we have only 1 */
  assert_int_equal(ptv_ice_link_add_remote_candidate(l, NULL), PTV_ERR_INVALID_ARG);
  /* Well-formed lines are accepted, with or without "a=". */
  assert_int_equal(ptv_ice_link_add_remote_candidate(l, "candidate:7 1 UDP 2015363327 127.0.0.1 9 typ host"), 0);

  char uf[32], pw[32], tiny[2];
  assert_int_equal(ptv_ice_link_local_credentials(l, tiny, sizeof(tiny), pw, sizeof(pw)), PTV_ERR_NOBUF);
  assert_int_equal(ptv_ice_link_local_credentials(l, uf, sizeof(uf), NULL, 0), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_ice_link_set_remote_credentials(l, NULL, "x"), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_ice_link_remote_done(NULL), PTV_ERR_INVALID_ARG);
  assert_string_equal(ptv_ice_state_name(PTV_ICE_CONNECTED), "connected");

  /* Invalid configurations. */
  const char *const bad_addr[] = {"localhost"};
  ptv_ice_config c1 = {.local_addrs = bad_addr, .n_local_addrs = 1};
  assert_null(ptv_ice_new(w->ctx, &c1, &CBS, NULL));
  ptv_ice_config c2 = {.stun_host = "stun.example.org"};
  assert_null(ptv_ice_new(w->ctx, &c2, &CBS, NULL));
  ptv_ice_config c3 = {.turn_host = "192.0.2.1"};
  assert_null(ptv_ice_new(w->ctx, &c3, &CBS, NULL));
  ptv_ice_config c4 = {.port_min = 5000, .port_max = 4000};
  assert_null(ptv_ice_new(w->ctx, &c4, &CBS, NULL));
  assert_null(ptv_ice_new(w->ctx, NULL, NULL, NULL));
  assert_null(ptv_ice_link_new(NULL, 0, 1));
  w_finish(w);
  free(w);
}

/* ---- ten links at once ---------------------------------------------------- */

static void test_ten_links(void **state) {
  (void)state;
  world *w = calloc(1, sizeof(*w));
  int fds0 = count_fds();
  w_init(w, 0);
  for (int i = 0; i < MAXP; i++)
    open_pair(w, i);
  assert_true(run_until(w, all_connected, 5000, NULL));
  uint64_t worst = 0;
  for (int i = 0; i < MAXP; i++)
    for (int s = 0; s < 2; s++)
      worst = w->p[i].t_connected[s] > worst ? w->p[i].t_connected[s] : worst;
  print_message("10 links: all connected after %llu ms\n", (unsigned long long)worst);
  /* Each link carries its own traffic. */
  uint8_t b[DGRAM_LEN];
  for (int i = 0; i < MAXP; i++) {
    fill(b, 0, 0);
    assert_int_equal(ptv_ice_link_send(w->p[i].l[0], b, sizeof(b)), 0);
  }
  run_until(w, never, 100, NULL);
  for (int i = 0; i < MAXP; i++) {
    assert_int_equal(w->p[i].recvd[1], 1);
    assert_int_equal(w->p[i].bad[1], 0);
  }
  w_finish(w);
  free(w);
  assert_int_equal(count_fds(), fds0);
}

/* ---- free while connecting ------------------------------------------------ */

static int any_candidate(world *w) {
  for (int i = 0; i < w->np; i++)
    if (w->p[i].ncand[0] || w->p[i].ncand[1])
      return 1;
  return 0;
}

static void test_free_while_connecting(void **state) {
  (void)state;
  world *w = calloc(1, sizeof(*w));
  int fds0 = count_fds();
  w_init(w, 0);
  /* Pair 0: both links freed right after creation, before gathering. */
  open_pair(w, 0);
  ptv_ice_link_free(w->p[0].l[0]);
  ptv_ice_link_free(w->p[0].l[1]);
  w->p[0].l[0] = w->p[0].l[1] = NULL;
  /* Pair 1: side 1 frees its link from inside its first callback. */
  w->p[1].free_on_candidate = 1;
  open_pair(w, 1);
  /* Pairs 2..5: freed once candidates flow, checks in progress. */
  for (int i = 2; i < 6; i++)
    open_pair(w, i);
  assert_true(run_until(w, any_candidate, 2000, NULL));
  run_until(w, never, 5, NULL);
  for (int i = 2; i < 6; i++) {
    int s = i & 1;
    ptv_ice_link_free(w->p[i].l[s]);
    w->p[i].l[s] = NULL;
  }
  assert_null(w->p[1].l[1]);
  /* The orphaned halves keep checking against closed ports: harmless. */
  run_until(w, never, 300, NULL);
  /* Pairs 6..7: the engines are freed with links still open. */
  open_pair(w, 6);
  open_pair(w, 7);
  run_until(w, never, 10, NULL);
  for (int s = 0; s < 2; s++) {
    ptv_ice_free(w->side[s].ice);
    w->side[s].ice = NULL;
  }
  for (int i = 0; i < w->np; i++)
    w->p[i].l[0] = w->p[i].l[1] = NULL; /* already freed with their engine */
  w_finish(w);
  free(w);
  assert_int_equal(count_fds(), fds0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_garbage_candidate),
      cmocka_unit_test(test_connect_and_exchange),
      cmocka_unit_test(test_segments_batched),
      cmocka_unit_test(test_wrong_password_fails),
      cmocka_unit_test(test_connect_while_busy),
      cmocka_unit_test(test_ten_links),
      cmocka_unit_test(test_free_while_connecting),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
