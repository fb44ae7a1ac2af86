/* test_server.c -- the tracker service (ptv_server), without sockets.
 *
 * Connections are numbers; what the server sends is collected per
 * connection and decoded. A real SQLite store (in a temp dir) and real
 * Ed25519 keys (libsodium) are used. Asserted: a source's signed HELLO
 * creates its channel and is welcomed; peers join a live channel only;
 * forged or stale HELLOs, a name held by another key, messages before HELLO,
 * garbage, oversize frames and request floods cost only their connection;
 * SIGNAL is relayed with the sender's id and verified key; two reports ban a
 * peer durably; a restarted server (same database) takes the source and
 * peers back under their old ids; END ends the channel; bytes may arrive one
 * at a time.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptv_ctl.h"
#include "ptv_err.h"
#include "ptv_server.h"
#include "ptv_store.h"
#include "ptv_wire.h"

#define MAXC 16
#define UNIX_NOW (1800000000ull * PTV_S)

typedef struct {
  uint8_t buf[1 << 16];
  size_t len;
  int closed;
  int refuse; /* the driver reports sends to it as failed (a reader too slow) */
} cbuf;

typedef struct {
  cbuf c[MAXC];
  uint64_t rng;
  ptv_store *store;
  ptv_server *srv;
  char dir[64], path[96];
} harness;

typedef struct {
  unsigned char pk[32], sk[64];
} key;

static int cb_send(void *user, uint64_t conn, const uint8_t *buf, size_t len) {
  harness *h = user;
  assert_true(conn < MAXC);
  if (h->c[conn].refuse) return -1;
  assert_true(h->c[conn].len + len <= sizeof(h->c[conn].buf));
  memcpy(h->c[conn].buf + h->c[conn].len, buf, len);
  h->c[conn].len += len;
  return 0;
}
static void cb_close(void *user, uint64_t conn) { ((harness *)user)->c[conn].closed = 1; }
static uint64_t cb_rand(void *user) {
  harness *h = user;
  h->rng ^= h->rng << 13;
  h->rng ^= h->rng >> 7;
  h->rng ^= h->rng << 17;
  return h->rng;
}
static const ptv_server_callbacks CBS = {.send = cb_send, .close = cb_close, .rand = cb_rand};

static void h_open_server(harness *h) {
  char err[256];
  assert_int_equal(ptv_store_sqlite_open(&h->store, h->path, err, sizeof(err)), 0);
  ptv_server_config c = {.store = h->store, .max_per_addr = 4, .rate_per_s = 50, .rate_burst = 100};
  h->srv = ptv_server_new(&c, &CBS, h);
  assert_non_null(h->srv);
  memset(h->c, 0, sizeof(h->c));
}

static harness *h_new(void) {
  harness *h = calloc(1, sizeof(*h));
  assert_non_null(h);
  assert_true(sodium_init() >= 0);
  h->rng = 88172645463325252ull;
  snprintf(h->dir, sizeof(h->dir), "/tmp/ptv_server_XXXXXX");
  assert_non_null(mkdtemp(h->dir));
  snprintf(h->path, sizeof(h->path), "%s/t.db", h->dir);
  h_open_server(h);
  return h;
}

static void h_close_server(harness *h) {
  ptv_server_free(h->srv);
  ptv_store_close(h->store);
}

static void h_free(harness *h) {
  h_close_server(h);
  char p[128];
  const char *sfx[] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof(p), "%s%s", h->path, sfx[i]);
    unlink(p);
  }
  rmdir(h->dir);
  free(h);
}

static size_t hello_bytes(uint8_t *out, size_t cap, const key *k, uint8_t role, const char *name,
                          ptv_id want, uint64_t ts, int corrupt) {
  ptv_ctl m = {.type = PTV_CTL_HELLO};
  uint8_t sig[64], tbs[4096];
  m.u.hello.role = role;
  m.u.hello.want_id = want;
  m.u.hello.ts_us = ts;
  m.u.hello.pk = k->pk;
  m.u.hello.chunk_us = role == PTV_ROLE_SOURCE ? 250000 : 0;
  m.u.hello.stream_kbps = role == PTV_ROLE_SOURCE ? 2000 : 0;
  m.u.hello.name = name;
  m.u.hello.name_len = (uint8_t)strlen(name);
  int n = ptv_ctl_hello_signed_bytes(&m.u.hello, tbs, sizeof(tbs));
  assert_true(n > 0);
  crypto_sign_detached(sig, NULL, tbs, (unsigned long long)n, k->sk);
  if (corrupt) sig[5] ^= 1;
  m.u.hello.sig = sig;
  n = ptv_ctl_encode(out, cap, &m);
  assert_true(n > 0);
  return (size_t)n;
}

static int feed(harness *h, uint64_t conn, const uint8_t *b, size_t len) {
  return ptv_server_conn_data(h->srv, conn, b, len, 1 * PTV_S, UNIX_NOW);
}

/* Pops the first message the server sent on conn (overlay or control). */
static size_t pop(harness *h, uint64_t conn, uint8_t *out) {
  cbuf *c = &h->c[conn];
  long fl = ptv_ctl_frame_len(c->buf, c->len, 1 << 20);
  assert_true(fl > 0 && (size_t)fl <= c->len);
  memcpy(out, c->buf, (size_t)fl);
  memmove(c->buf, c->buf + fl, c->len - (size_t)fl);
  c->len -= (size_t)fl;
  return (size_t)fl;
}

static ptv_ctl pop_ctl(harness *h, uint64_t conn, uint8_t *scratch) {
  ptv_ctl m;
  size_t n = pop(h, conn, scratch);
  assert_int_equal(ptv_ctl_decode(&m, scratch, n), (int)n);
  return m;
}

/* Opens conn and says HELLO; returns the id welcomed with. */
static ptv_id connect_as(harness *h, uint64_t conn, const key *k, uint8_t role, const char *name,
                         ptv_id want) {
  uint8_t b[512];
  assert_int_equal(ptv_server_conn_open(h->srv, conn, 100 + conn, 0), 0);
  assert_int_equal(feed(h, conn, b, hello_bytes(b, sizeof(b), k, role, name, want, UNIX_NOW, 0)), 0);
  ptv_ctl w = pop_ctl(h, conn, b);
  assert_int_equal(w.type, PTV_CTL_WELCOME);
  assert_int_equal(w.u.welcome.chunk_us, 250000);
  assert_int_equal(w.u.welcome.tracker, 0);
  return w.u.welcome.id;
}

static void expect_error(harness *h, uint64_t conn, uint16_t code, int closed) {
  uint8_t b[512];
  ptv_ctl e = pop_ctl(h, conn, b);
  assert_int_equal(e.type, PTV_CTL_ERROR);
  assert_int_equal(e.u.error.code, code);
  assert_int_equal(h->c[conn].closed, closed);
}

static void test_channel_and_join(void **state) {
  harness *h = h_new();
  key src, p1;
  crypto_sign_keypair(src.pk, src.sk);
  crypto_sign_keypair(p1.pk, p1.sk);
  uint8_t b[512];
  /* a peer before the channel exists */
  assert_int_equal(ptv_server_conn_open(h->srv, 5, 1, 0), 0);
  assert_true(feed(h, 5, b, hello_bytes(b, sizeof(b), &p1, PTV_ROLE_PEER, "tv", PTV_ID_NONE, UNIX_NOW, 0)) < 0);
  expect_error(h, 5, PTV_CTL_E_NO_CHANNEL, 1);
  ptv_id sid = connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE);
  ptv_channel rec;
  assert_int_equal(ptv_store_channel_get(h->store, "tv", &rec), 0);
  assert_memory_equal(rec.publisher_pk, src.pk, 32);
  assert_int_equal(rec.ended_us, 0);
  ptv_id pid = connect_as(h, 2, &p1, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  assert_int_not_equal(sid, pid);
  /* the source and the peer JOIN; the peer's PEERS names the source */
  ptv_msg j = {.type = PTV_MSG_JOIN};
  j.u.join.role = PTV_ROLE_SOURCE;
  int n = ptv_wire_encode(b, sizeof(b), &j);
  assert_int_equal(feed(h, 1, b, (size_t)n), 0);
  pop(h, 1, b);
  j.u.join.role = PTV_ROLE_PEER;
  n = ptv_wire_encode(b, sizeof(b), &j);
  assert_int_equal(feed(h, 2, b, (size_t)n), 0);
  ptv_msg pm;
  size_t len = pop(h, 2, b);
  assert_int_equal(ptv_wire_decode(&pm, b, len), (int)len);
  assert_int_equal(pm.type, PTV_MSG_PEERS);
  assert_int_equal(pm.u.peers.n, 1);
  assert_int_equal(pm.u.peers.descs[0].id, sid);
  assert_int_equal(ptv_server_channel_members(h->srv, "tv"), 2);
  /* another key cannot take the name */
  key other;
  crypto_sign_keypair(other.pk, other.sk);
  assert_int_equal(ptv_server_conn_open(h->srv, 3, 3, 0), 0);
  assert_true(feed(h, 3, b, hello_bytes(b, sizeof(b), &other, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE, UNIX_NOW, 0)) < 0);
  expect_error(h, 3, PTV_CTL_E_NAME_TAKEN, 1);
  h_free(h);
}

static void test_bad_hellos(void **state) {
  harness *h = h_new();
  key k;
  crypto_sign_keypair(k.pk, k.sk);
  uint8_t b[512];
  assert_int_equal(ptv_server_conn_open(h->srv, 1, 1, 0), 0);
  assert_true(feed(h, 1, b, hello_bytes(b, sizeof(b), &k, PTV_ROLE_SOURCE, "a", PTV_ID_NONE, UNIX_NOW, 1)) < 0);
  expect_error(h, 1, PTV_CTL_E_BAD_SIG, 1);
  assert_int_equal(ptv_server_conn_open(h->srv, 2, 1, 0), 0);
  assert_true(feed(h, 2, b, hello_bytes(b, sizeof(b), &k, PTV_ROLE_SOURCE, "a", PTV_ID_NONE,
                                        UNIX_NOW - 301 * PTV_S, 0)) < 0);
  expect_error(h, 2, PTV_CTL_E_BAD_SIG, 1);
  assert_int_equal(ptv_server_conn_open(h->srv, 3, 1, 0), 0);
  assert_true(feed(h, 3, b, hello_bytes(b, sizeof(b), &k, PTV_ROLE_SOURCE, "a b", PTV_ID_NONE, UNIX_NOW, 0)) < 0);
  expect_error(h, 3, PTV_CTL_E_BAD_REQUEST, 1);
  /* an overlay message before HELLO */
  assert_int_equal(ptv_server_conn_open(h->srv, 4, 1, 0), 0);
  ptv_msg j = {.type = PTV_MSG_JOIN};
  int n = ptv_wire_encode(b, sizeof(b), &j);
  assert_true(feed(h, 4, b, (size_t)n) < 0);
  expect_error(h, 4, PTV_CTL_E_BAD_REQUEST, 1);
  assert_int_equal(ptv_store_channel_get(h->store, "a", &(ptv_channel){0}), PTV_ERR_NOT_FOUND);
  /* no HELLO at all: closed after the timeout */
  assert_int_equal(ptv_server_conn_open(h->srv, 5, 1, 0), 0);
  ptv_server_handle_expiry(h->srv, 5 * PTV_S);
  assert_false(h->c[5].closed);
  ptv_server_handle_expiry(h->srv, 11 * PTV_S);
  assert_true(h->c[5].closed);
  h_free(h);
}

static void test_abuse_costs_only_the_sender(void **state) {
  harness *h = h_new();
  key src, p;
  crypto_sign_keypair(src.pk, src.sk);
  crypto_sign_keypair(p.pk, p.sk);
  connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE);
  connect_as(h, 2, &p, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  uint8_t junk[64];
  for (int i = 0; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 1);
  junk[0] = PTV_WIRE_VERSION;
  junk[1] = 200;
  junk[2] = junk[3] = junk[4] = 0;
  junk[5] = 10;
  assert_int_equal(ptv_server_conn_open(h->srv, 3, 9, 0), 0);
  assert_true(feed(h, 3, junk, sizeof(junk)) < 0); /* unknown type */
  assert_true(h->c[3].closed);
  const uint8_t huge[6] = {PTV_WIRE_VERSION, PTV_CTL_SIGNAL, 0, 0, 0x10, 0};
  assert_true(feed(h, 2, huge, 6) < 0); /* 4 KiB body declared */
  expect_error(h, 2, PTV_CTL_E_BAD_REQUEST, 1);
  /* the source is untouched and can still be talked to */
  assert_false(h->c[1].closed);
  ptv_msg hb = {.type = PTV_MSG_HEARTBEAT};
  uint8_t b[64];
  int n = ptv_wire_encode(b, sizeof(b), &hb);
  assert_int_equal(feed(h, 1, b, (size_t)n), 0);
  /* a flood: 100 burst + 50/s; the 101st message at the same instant fails */
  key q;
  crypto_sign_keypair(q.pk, q.sk);
  connect_as(h, 4, &q, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  int rv = 0, sent = 0;
  while (rv == 0 && sent < 1000) {
    rv = feed(h, 4, b, (size_t)n);
    sent++;
  }
  assert_int_equal(rv, PTV_ERR_FULL);
  assert_true(sent >= 99 && sent <= 101);
  assert_true(h->c[4].closed);
  /* per-address limit: 4 */
  for (uint64_t c = 5; c < 9; c++) assert_int_equal(ptv_server_conn_open(h->srv, c, 77, 0), 0);
  assert_int_equal(ptv_server_conn_open(h->srv, 9, 77, 0), PTV_ERR_FULL);
  ptv_server_conn_closed(h->srv, 5, 0);
  assert_int_equal(ptv_server_conn_open(h->srv, 9, 77, 0), 0);
  ptv_server_stats st;
  ptv_server_get_stats(h->srv, &st);
  assert_true(st.bad_msgs >= 2);
  assert_int_equal(st.rate_limited, 1);
  h_free(h);
}

static void test_signal_relay(void **state) {
  harness *h = h_new();
  key src, a, bk;
  crypto_sign_keypair(src.pk, src.sk);
  crypto_sign_keypair(a.pk, a.sk);
  crypto_sign_keypair(bk.pk, bk.sk);
  connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE);
  ptv_id ida = connect_as(h, 2, &a, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  ptv_id idb = connect_as(h, 3, &bk, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  ptv_ctl m = {.type = PTV_CTL_SIGNAL};
  uint8_t fake[32] = {1}, b[2048];
  m.u.signal.peer = idb;
  m.u.signal.kind = PTV_SIG_CREDS;
  m.u.signal.pk = fake; /* a claimed key is replaced by the verified one */
  m.u.signal.data = (const uint8_t *)"ufrag pwd";
  m.u.signal.data_len = 9;
  int n = ptv_ctl_encode(b, sizeof(b), &m);
  assert_int_equal(feed(h, 2, b, (size_t)n), 0);
  ptv_ctl r = pop_ctl(h, 3, b);
  assert_int_equal(r.type, PTV_CTL_SIGNAL);
  assert_int_equal(r.u.signal.peer, ida);
  assert_memory_equal(r.u.signal.pk, a.pk, 32);
  assert_memory_equal(r.u.signal.data, "ufrag pwd", 9);
  /* an overlay message (a shuffle for a peer without a path) goes the same way */
  uint8_t shuf[16] = {PTV_WIRE_VERSION, PTV_MSG_SHUFFLE, 0, 0, 0, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
  m.u.signal.kind = PTV_SIG_OVERLAY;
  m.u.signal.data = shuf;
  m.u.signal.data_len = sizeof(shuf);
  n = ptv_ctl_encode(b, sizeof(b), &m);
  assert_int_equal(feed(h, 2, b, (size_t)n), 0);
  r = pop_ctl(h, 3, b);
  assert_int_equal(r.type, PTV_CTL_SIGNAL);
  assert_int_equal(r.u.signal.kind, PTV_SIG_OVERLAY);
  assert_int_equal(r.u.signal.peer, ida);
  assert_int_equal(r.u.signal.data_len, sizeof(shuf));
  assert_memory_equal(r.u.signal.data, shuf, sizeof(shuf));
  /* to nobody: an error, the connection stays */
  m.u.signal.peer = 12345;
  n = ptv_ctl_encode(b, sizeof(b), &m);
  assert_int_equal(feed(h, 2, b, (size_t)n), 0);
  expect_error(h, 2, PTV_CTL_E_UNREACHABLE, 0);
  h_free(h);
}

static void report(harness *h, uint64_t conn, ptv_id suspect) {
  ptv_msg r = {.type = PTV_MSG_REPORT};
  uint8_t b[64];
  r.u.report.suspect = suspect;
  int n = ptv_wire_encode(b, sizeof(b), &r);
  assert_int_equal(feed(h, conn, b, (size_t)n), 0);
}

static void join(harness *h, uint64_t conn) {
  ptv_msg j = {.type = PTV_MSG_JOIN};
  uint8_t b[512];
  int n = ptv_wire_encode(b, sizeof(b), &j);
  assert_int_equal(feed(h, conn, b, (size_t)n), 0);
  h->c[conn].len = 0;
}

static void test_reports_ban_durably(void **state) {
  harness *h = h_new();
  key src, k[3];
  crypto_sign_keypair(src.pk, src.sk);
  connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE);
  ptv_id id[3];
  for (int i = 0; i < 3; i++) {
    crypto_sign_keypair(k[i].pk, k[i].sk);
    id[i] = connect_as(h, 2 + (uint64_t)i, &k[i], PTV_ROLE_PEER, "tv", PTV_ID_NONE);
    join(h, 2 + (uint64_t)i);
  }
  report(h, 2, id[2]);
  assert_false(h->c[4].closed);
  report(h, 3, id[2]);
  expect_error(h, 4, PTV_CTL_E_BANNED, 1);
  assert_int_equal(ptv_store_ban_check(h->store, k[2].pk, UNIX_NOW), 1);
  /* after a restart too */
  h_close_server(h);
  h_open_server(h);
  uint8_t b[512];
  assert_int_equal(ptv_server_conn_open(h->srv, 4, 1, 0), 0);
  assert_true(feed(h, 4, b, hello_bytes(b, sizeof(b), &k[2], PTV_ROLE_PEER, "tv", PTV_ID_NONE, UNIX_NOW, 0)) < 0);
  expect_error(h, 4, PTV_CTL_E_BANNED, 1);
  h_free(h);
}

static void test_restart_keeps_channel_and_ids(void **state) {
  harness *h = h_new();
  key src, p;
  crypto_sign_keypair(src.pk, src.sk);
  crypto_sign_keypair(p.pk, p.sk);
  ptv_id sid = connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE);
  ptv_id pid = connect_as(h, 2, &p, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  h_close_server(h); /* the tracker process dies */
  h_open_server(h);
  /* the channel is still live, so a peer may come back before the source */
  assert_int_equal(connect_as(h, 2, &p, PTV_ROLE_PEER, "tv", pid), pid);
  assert_int_equal(connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", sid), sid);
  /* an id already taken is not handed out twice */
  key q;
  crypto_sign_keypair(q.pk, q.sk);
  assert_int_not_equal(connect_as(h, 3, &q, PTV_ROLE_PEER, "tv", pid), pid);
  h_free(h);
}

static void test_end_and_bytewise(void **state) {
  harness *h = h_new();
  key src, p;
  crypto_sign_keypair(src.pk, src.sk);
  crypto_sign_keypair(p.pk, p.sk);
  uint8_t b[512];
  /* the HELLO one byte at a time */
  assert_int_equal(ptv_server_conn_open(h->srv, 1, 1, 0), 0);
  size_t n = hello_bytes(b, sizeof(b), &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE, UNIX_NOW, 0);
  for (size_t i = 0; i < n; i++) assert_int_equal(feed(h, 1, b + i, 1), 0);
  assert_int_equal(pop_ctl(h, 1, b).type, PTV_CTL_WELCOME);
  connect_as(h, 2, &p, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  ptv_ctl e = {.type = PTV_CTL_END};
  int k = ptv_ctl_encode(b, sizeof(b), &e);
  /* a peer may not end the channel */
  assert_true(feed(h, 2, b, (size_t)k) < 0);
  expect_error(h, 2, PTV_CTL_E_BAD_REQUEST, 1);
  connect_as(h, 3, &p, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  assert_true(feed(h, 1, b, (size_t)k) < 0);
  assert_true(h->c[1].closed);
  expect_error(h, 3, PTV_CTL_E_NO_CHANNEL, 1);
  ptv_channel rec;
  assert_int_equal(ptv_store_channel_get(h->store, "tv", &rec), 0);
  assert_true(rec.ended_us != 0);
  ptv_server_stats st;
  ptv_server_get_stats(h->srv, &st);
  assert_int_equal(st.conns, 0);
  assert_int_equal(st.channels_live, 0);
  h_free(h);
}

/* A source that reconnects while its old connection is still open (and
 * alone in the channel) takes over; a different chunk duration on a live
 * channel is refused; a peer's key back on a new connection keeps its id. */
static void test_takeovers(void **state) {
  harness *h = h_new();
  key src, p;
  crypto_sign_keypair(src.pk, src.sk);
  crypto_sign_keypair(p.pk, p.sk);
  ptv_id sid = connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE);
  /* the old connection is alone: its leaving unloads the channel (ASan
   * catches a use after that) */
  assert_int_equal(connect_as(h, 2, &src, PTV_ROLE_SOURCE, "tv", sid), sid);
  expect_error(h, 1, PTV_CTL_E_REPLACED, 1);
  ptv_id pid = connect_as(h, 3, &p, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  assert_int_equal(connect_as(h, 4, &p, PTV_ROLE_PEER, "tv", pid), pid);
  expect_error(h, 3, PTV_CTL_E_REPLACED, 1);
  assert_int_equal(ptv_server_channel_members(h->srv, "tv"), 0); /* nobody JOINed */
  /* another key asking for that id gets another */
  key q;
  crypto_sign_keypair(q.pk, q.sk);
  assert_int_not_equal(connect_as(h, 5, &q, PTV_ROLE_PEER, "tv", pid), pid);
  assert_false(h->c[4].closed);
  /* a live channel's chunk duration cannot change under its peers */
  ptv_ctl m = {.type = PTV_CTL_HELLO};
  uint8_t sig[64], tbs[4096], b[512];
  m.u.hello.role = PTV_ROLE_SOURCE;
  m.u.hello.want_id = PTV_ID_NONE;
  m.u.hello.ts_us = UNIX_NOW;
  m.u.hello.pk = src.pk;
  m.u.hello.chunk_us = 500000;
  m.u.hello.name = "tv";
  m.u.hello.name_len = 2;
  int n = ptv_ctl_hello_signed_bytes(&m.u.hello, tbs, sizeof(tbs));
  crypto_sign_detached(sig, NULL, tbs, (unsigned long long)n, src.sk);
  m.u.hello.sig = sig;
  n = ptv_ctl_encode(b, sizeof(b), &m);
  assert_int_equal(ptv_server_conn_open(h->srv, 6, 6, 0), 0);
  assert_true(feed(h, 6, b, (size_t)n) < 0);
  expect_error(h, 6, PTV_CTL_E_BAD_REQUEST, 1);
  assert_false(h->c[2].closed); /* the live source is untouched */
  h_free(h);
}

/* A peer may not JOIN as the source; a connection the driver can no
 * longer write to is closed (after the call that found it, not during). */
static void test_join_role_and_broken_sends(void **state) {
  harness *h = h_new();
  key src, p, q;
  crypto_sign_keypair(src.pk, src.sk);
  crypto_sign_keypair(p.pk, p.sk);
  crypto_sign_keypair(q.pk, q.sk);
  connect_as(h, 1, &src, PTV_ROLE_SOURCE, "tv", PTV_ID_NONE);
  connect_as(h, 2, &p, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  ptv_msg j = {.type = PTV_MSG_JOIN};
  uint8_t b[64];
  j.u.join.role = PTV_ROLE_SOURCE;
  int n = ptv_wire_encode(b, sizeof(b), &j);
  assert_true(feed(h, 2, b, (size_t)n) < 0);
  expect_error(h, 2, PTV_CTL_E_BAD_REQUEST, 1);
  /* a reader too far behind: its PEERS answer cannot be written */
  connect_as(h, 3, &q, PTV_ROLE_PEER, "tv", PTV_ID_NONE);
  h->c[3].refuse = 1;
  j.u.join.role = PTV_ROLE_PEER;
  n = ptv_wire_encode(b, sizeof(b), &j);
  assert_int_equal(feed(h, 3, b, (size_t)n), PTV_ERR_CLOSED);
  assert_true(h->c[3].closed);
  ptv_server_stats st;
  ptv_server_get_stats(h->srv, &st);
  assert_int_equal(st.conns, 1); /* the source only */
  h_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_channel_and_join),
      cmocka_unit_test(test_bad_hellos),
      cmocka_unit_test(test_abuse_costs_only_the_sender),
      cmocka_unit_test(test_signal_relay),
      cmocka_unit_test(test_reports_ban_durably),
      cmocka_unit_test(test_restart_keeps_channel_and_ids),
      cmocka_unit_test(test_end_and_bytewise),
      cmocka_unit_test(test_takeovers),
      cmocka_unit_test(test_join_role_and_broken_sends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
