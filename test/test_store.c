/* test_store.c -- unit tests for the tracker's durable store (SQLite backend).
 *
 * Covers the record round trip, the argument checks every backend shares,
 * name ownership across channel end and re-create, list order and filtering,
 * bans and their expiry, and durability: a clean restart, a process that dies
 * without closing, and files the store must refuse (not SQLite, a newer
 * schema, somebody else's database). File tests run in a mkdtemp directory
 * that teardown removes. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ptv_err.h"
#include "ptv_store.h"

#define T0 1700000000000000ULL /* a plausible "now" in microseconds */

/* ---- harness -------------------------------------------------------------- */

static ptv_channel mkch(const char *name, uint8_t key, uint32_t chunk_us) {
  ptv_channel c;
  memset(&c, 0, sizeof(c));
  snprintf(c.name, sizeof(c.name), "%s", name);
  memset(c.publisher_pk, key, sizeof(c.publisher_pk));
  c.chunk_us = chunk_us;
  c.stream_kbps = 800;
  c.created_us = T0;
  return c;
}

/* Field by field: the struct has padding, which copies need not keep. */
static void assert_channel_equal(const ptv_channel *a, const ptv_channel *b) {
  assert_string_equal(a->name, b->name);
  assert_memory_equal(a->publisher_pk, b->publisher_pk, PTV_STORE_PK_LEN);
  assert_int_equal(a->chunk_us, b->chunk_us);
  assert_int_equal(a->stream_kbps, b->stream_kbps);
  assert_true(a->created_us == b->created_us); /* cmocka ints are 64-bit, */
  assert_true(a->ended_us == b->ended_us);     /* but say it plainly */
  assert_string_equal(a->description, b->description);
}

static ptv_store *open_mem(void) {
  ptv_store *s = NULL;
  char err[256];
  assert_int_equal(ptv_store_sqlite_open(&s, ":memory:", err, sizeof(err)), 0);
  assert_non_null(s);
  assert_string_equal(err, "");
  return s;
}

/* A temp directory with one database path in it; teardown removes both. */
typedef struct {
  char dir[256];
  char db[300];
} tmp_db;

static int tmp_setup(void **state) {
  tmp_db *t = calloc(1, sizeof(*t));
  if (t == NULL) return -1;
  const char *base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  snprintf(t->dir, sizeof(t->dir), "%s/ptv_store_XXXXXX", base);
  if (mkdtemp(t->dir) == NULL) {
    free(t);
    return -1;
  }
  snprintf(t->db, sizeof(t->db), "%s/tracker.db", t->dir);
  *state = t;
  return 0;
}

static int tmp_teardown(void **state) {
  tmp_db *t = *state;
  static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
  char p[320];
  for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
    snprintf(p, sizeof(p), "%s%s", t->db, sfx[i]);
    unlink(p);
  }
  int rv = rmdir(t->dir); /* fails, and so flags the test, if a file is left */
  free(t);
  return rv;
}

/* Runs constant SQL on the file behind the store's back. */
static void raw_exec(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) fprintf(stderr, "raw_exec: %s\n", msg ? msg : "?");
  sqlite3_free(msg);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
  assert_int_equal(rc, SQLITE_OK);
}

static int raw_int(const char *path, const char *sql) {
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  int v = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
  return v;
}

/* Records the names list() hands out, in order. */
typedef struct {
  char names[16][PTV_STORE_NAME_MAX + 1];
  size_t n;
  int stop_at;   /* return stop_rv at this call (1-based), 0 = never */
  int stop_rv;
  ptv_store *end_with; /* if set, end each channel while listing */
} collect;

static int cb_collect(void *user, const ptv_channel *c) {
  collect *k = user;
  assert_true(k->n < 16);
  snprintf(k->names[k->n], sizeof(k->names[0]), "%s", c->name);
  k->n++;
  if (k->end_with != NULL)
    assert_int_equal(ptv_store_channel_end(k->end_with, c->name, T0 + 1), 0);
  if (k->stop_at != 0 && (int)k->n == k->stop_at) return k->stop_rv;
  return 0;
}

/* ---- channels ------------------------------------------------------------- */

static void test_open_args(void **state) {
  ptv_store *s = (ptv_store *)1;
  char err[64];
  assert_int_equal(ptv_store_sqlite_open(NULL, ":memory:", err, sizeof(err)),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_sqlite_open(&s, NULL, err, sizeof(err)),
                   PTV_ERR_INVALID_ARG);
  assert_null(s);
  assert_int_equal(ptv_store_sqlite_open(&s, ":memory:", NULL, 1),
                   PTV_ERR_INVALID_ARG);
  /* No error buffer at all is fine. */
  assert_int_equal(ptv_store_sqlite_open(&s, ":memory:", NULL, 0), 0);
  assert_string_equal(ptv_store_errmsg(s), "");
  ptv_store_close(s);
  ptv_store_close(NULL);
}

static void test_roundtrip_every_field(void **state) {
  ptv_store *s = open_mem();
  ptv_channel c;
  memset(&c, 0, sizeof(c));
  /* 64 characters, every allowed class. */
  const char *name =
      "AZaz09._-bcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123";
  assert_int_equal(strlen(name), PTV_STORE_NAME_MAX);
  memcpy(c.name, name, PTV_STORE_NAME_MAX);
  for (int i = 0; i < PTV_STORE_PK_LEN; i++) c.publisher_pk[i] = (uint8_t)(i * 37 + 1);
  c.publisher_pk[5] = 0; /* an embedded zero must not cut the key */
  c.chunk_us = UINT32_MAX;
  c.stream_kbps = UINT32_MAX - 1;
  c.created_us = UINT64_MAX; /* above INT64_MAX: the signed-storage edge */
  /* 256 bytes of UTF-8: 128 two-byte characters. */
  for (int i = 0; i < PTV_STORE_DESC_MAX; i += 2) memcpy(c.description + i, "\xc3\xa9", 2);
  assert_int_equal(ptv_store_channel_create(s, &c), 0);
  assert_string_equal(ptv_store_errmsg(s), "");

  ptv_channel g;
  memset(&g, 0xaa, sizeof(g));
  assert_int_equal(ptv_store_channel_get(s, name, &g), 0);
  assert_channel_equal(&g, &c);

  /* Mid-range values and an empty description. */
  ptv_channel d = mkch("x", 3, 500000);
  d.created_us = (uint64_t)INT64_MAX + 1;
  assert_int_equal(ptv_store_channel_create(s, &d), 0);
  assert_int_equal(ptv_store_channel_get(s, "x", &g), 0);
  assert_channel_equal(&g, &d);
  ptv_store_close(s);
}

static void test_duplicate_exists(void **state) {
  ptv_store *s = open_mem();
  ptv_channel c = mkch("news", 1, 500000);
  assert_int_equal(ptv_store_channel_create(s, &c), 0);
  ptv_channel c2 = mkch("news", 1, 250000); /* same key, still live */
  assert_int_equal(ptv_store_channel_create(s, &c2), PTV_ERR_EXISTS);
  assert_non_null(strstr(ptv_store_errmsg(s), "news"));
  ptv_channel c3 = mkch("news", 2, 500000);
  assert_int_equal(ptv_store_channel_create(s, &c3), PTV_ERR_EXISTS);
  /* Names are byte-exact: another case is another channel. */
  ptv_channel c4 = mkch("News", 2, 500000);
  assert_int_equal(ptv_store_channel_create(s, &c4), 0);
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s, "news", &g), 0);
  assert_int_equal(g.chunk_us, 500000); /* the failed creates changed nothing */
  assert_int_equal(g.publisher_pk[0], 1);
  ptv_store_close(s);
}

static void test_bad_arguments(void **state) {
  ptv_store *s = open_mem();
  ptv_channel g;
  static const char *const bad[] = {"", " ", "a b", "a/b", "../x", "caf\xc3\xa9",
                                    "tab\t", "a:b", "a\\b", "\xff"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ptv_channel c = mkch(bad[i], 1, 500000);
    assert_int_equal(ptv_store_channel_create(s, &c), PTV_ERR_INVALID_ARG);
    assert_int_equal(ptv_store_channel_get(s, bad[i], &g), PTV_ERR_INVALID_ARG);
    assert_int_equal(ptv_store_channel_end(s, bad[i], T0), PTV_ERR_INVALID_ARG);
    assert_false(ptv_store_name_valid(bad[i]));
  }
  assert_false(ptv_store_name_valid(NULL));
  assert_int_equal(ptv_store_channel_get(s, NULL, &g), PTV_ERR_INVALID_ARG);

  char n65[66];
  memset(n65, 'a', 65);
  n65[65] = '\0';
  assert_int_equal(ptv_store_channel_get(s, n65, &g), PTV_ERR_INVALID_ARG);
  n65[64] = '\0';
  assert_true(ptv_store_name_valid(n65));
  /* A record whose name array holds no NUL at all. */
  ptv_channel c = mkch("ok", 1, 500000);
  memset(c.name, 'a', sizeof(c.name));
  assert_int_equal(ptv_store_channel_create(s, &c), PTV_ERR_INVALID_ARG);
  assert_non_null(strstr(ptv_store_errmsg(s), "name"));

  c = mkch("ok", 1, 0);
  assert_int_equal(ptv_store_channel_create(s, &c), PTV_ERR_INVALID_ARG);
  c = mkch("ok", 1, 500000);
  c.ended_us = T0;
  assert_int_equal(ptv_store_channel_create(s, &c), PTV_ERR_INVALID_ARG);
  c = mkch("ok", 1, 500000);
  memset(c.description, 'd', sizeof(c.description)); /* 257 bytes, no NUL */
  assert_int_equal(ptv_store_channel_create(s, &c), PTV_ERR_INVALID_ARG);
  static const char *const bad_utf8[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80",
                                         "\xf4\x90\x80\x80", "a\x80", "\xfe"};
  for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
    c = mkch("ok", 1, 500000);
    snprintf(c.description, sizeof(c.description), "%s", bad_utf8[i]);
    assert_int_equal(ptv_store_channel_create(s, &c), PTV_ERR_INVALID_ARG);
  }
  c = mkch("ok", 1, 500000);
  snprintf(c.description, sizeof(c.description), "\xf0\x9f\x93\xba TV \xe2\x82\xac");
  assert_int_equal(ptv_store_channel_create(s, &c), 0);

  assert_int_equal(ptv_store_channel_create(s, NULL), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_channel_create(NULL, &c), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_channel_get(s, "ok", NULL), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_channel_list(s, 1, NULL, NULL), PTV_ERR_INVALID_ARG);
  /* Nothing but "ok" got in. */
  collect k = {0};
  assert_int_equal(ptv_store_channel_list(s, 1, cb_collect, &k), 0);
  assert_int_equal(k.n, 1);
  assert_string_equal(k.names[0], "ok");
  ptv_store_close(s);
}

static void test_get_not_found(void **state) {
  ptv_store *s = open_mem();
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s, "nope", &g), PTV_ERR_NOT_FOUND);
  assert_non_null(strstr(ptv_store_errmsg(s), "nope"));
  ptv_store_close(s);
}

static void test_list_order_and_ended_flag(void **state) {
  ptv_store *s = open_mem();
  static const char *const names[] = {"b", "a", "_x", "A", "c-1", "c.0"};
  for (size_t i = 0; i < 6; i++) {
    ptv_channel c = mkch(names[i], 1, 500000);
    c.created_us = T0 + i; /* creation order is not name order */
    assert_int_equal(ptv_store_channel_create(s, &c), 0);
  }
  assert_int_equal(ptv_store_channel_end(s, "a", T0 + 5), 0);
  assert_int_equal(ptv_store_channel_end(s, "c.0", T0 + 5), 0);

  /* Byte order: 'A' 0x41 < '_' 0x5f < 'a' 0x61; '-' 0x2d < '.' 0x2e. */
  collect k = {0};
  assert_int_equal(ptv_store_channel_list(s, 1, cb_collect, &k), 0);
  static const char *const all[] = {"A", "_x", "a", "b", "c-1", "c.0"};
  assert_int_equal(k.n, 6);
  for (size_t i = 0; i < 6; i++) assert_string_equal(k.names[i], all[i]);

  memset(&k, 0, sizeof(k));
  assert_int_equal(ptv_store_channel_list(s, 0, cb_collect, &k), 0);
  static const char *const live[] = {"A", "_x", "b", "c-1"};
  assert_int_equal(k.n, 4);
  for (size_t i = 0; i < 4; i++) assert_string_equal(k.names[i], live[i]);

  /* Any non-zero flag means "include ended". */
  memset(&k, 0, sizeof(k));
  assert_int_equal(ptv_store_channel_list(s, 42, cb_collect, &k), 0);
  assert_int_equal(k.n, 6);
  ptv_store_close(s);
}

static void test_list_stop_and_reentry(void **state) {
  ptv_store *s = open_mem();
  static const char *const names[] = {"a", "b", "c"};
  for (size_t i = 0; i < 3; i++) {
    ptv_channel c = mkch(names[i], 1, 500000);
    assert_int_equal(ptv_store_channel_create(s, &c), 0);
  }
  collect k = {.stop_at = 2, .stop_rv = 7};
  assert_int_equal(ptv_store_channel_list(s, 0, cb_collect, &k), 7);
  assert_int_equal(k.n, 2);
  memset(&k, 0, sizeof(k));
  k.stop_at = 1;
  k.stop_rv = PTV_ERR_CALLBACK;
  assert_int_equal(ptv_store_channel_list(s, 0, cb_collect, &k), PTV_ERR_CALLBACK);
  assert_int_equal(k.n, 1);

  /* The callback may write to the store: end every channel while listing. */
  memset(&k, 0, sizeof(k));
  k.end_with = s;
  assert_int_equal(ptv_store_channel_list(s, 0, cb_collect, &k), 0);
  assert_int_equal(k.n, 3);
  memset(&k, 0, sizeof(k));
  assert_int_equal(ptv_store_channel_list(s, 0, cb_collect, &k), 0);
  assert_int_equal(k.n, 0);

  /* An empty store lists nothing. */
  ptv_store *e = open_mem();
  assert_int_equal(ptv_store_channel_list(e, 1, cb_collect, &k), 0);
  assert_int_equal(k.n, 0);
  ptv_store_close(e);
  ptv_store_close(s);
}

static void test_end(void **state) {
  ptv_store *s = open_mem();
  ptv_channel c = mkch("live", 1, 500000);
  assert_int_equal(ptv_store_channel_create(s, &c), 0);
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s, "live", &g), 0);
  assert_int_equal(g.ended_us, 0);

  assert_int_equal(ptv_store_channel_end(s, "live", UINT64_MAX - 1), 0);
  assert_int_equal(ptv_store_channel_get(s, "live", &g), 0);
  assert_true(g.ended_us == UINT64_MAX - 1);
  assert_true(g.created_us == T0); /* the rest is untouched */
  assert_int_equal(g.chunk_us, 500000);

  /* Ending again is a no-op that keeps the first end time. */
  assert_int_equal(ptv_store_channel_end(s, "live", T0 + 99), 0);
  assert_int_equal(ptv_store_channel_get(s, "live", &g), 0);
  assert_true(g.ended_us == UINT64_MAX - 1);

  assert_int_equal(ptv_store_channel_end(s, "ghost", T0), PTV_ERR_NOT_FOUND);
  assert_non_null(strstr(ptv_store_errmsg(s), "ghost"));
  assert_int_equal(ptv_store_channel_end(s, "live", 0), PTV_ERR_INVALID_ARG);
  ptv_store_close(s);
}

static void test_recreate_ended(void **state) {
  ptv_store *s = open_mem();
  ptv_channel c = mkch("show", 1, 500000);
  snprintf(c.description, sizeof(c.description), "first run");
  assert_int_equal(ptv_store_channel_create(s, &c), 0);
  assert_int_equal(ptv_store_channel_end(s, "show", T0 + 10), 0);

  /* Another key may not take the ended name. */
  ptv_channel other = mkch("show", 2, 250000);
  assert_int_equal(ptv_store_channel_create(s, &other), PTV_ERR_EXISTS);
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s, "show", &g), 0);
  assert_true(g.ended_us == T0 + 10);
  assert_int_equal(g.publisher_pk[0], 1);

  /* The owner may, and the new record replaces the old one entirely. */
  ptv_channel again = mkch("show", 1, 250000);
  again.stream_kbps = 1200;
  again.created_us = T0 + 20;
  assert_int_equal(ptv_store_channel_create(s, &again), 0);
  assert_int_equal(ptv_store_channel_get(s, "show", &g), 0);
  assert_channel_equal(&g, &again); /* ended 0, description "" */

  /* Live again, so even the owner gets EXISTS. */
  assert_int_equal(ptv_store_channel_create(s, &again), PTV_ERR_EXISTS);
  /* Keys differing only in the last byte are different keys. */
  assert_int_equal(ptv_store_channel_end(s, "show", T0 + 30), 0);
  ptv_channel near = again;
  near.publisher_pk[PTV_STORE_PK_LEN - 1] ^= 1;
  assert_int_equal(ptv_store_channel_create(s, &near), PTV_ERR_EXISTS);
  ptv_store_close(s);
}

/* ---- bans ----------------------------------------------------------------- */

static void test_bans(void **state) {
  ptv_store *s = open_mem();
  uint8_t pk[PTV_STORE_PK_LEN], pk2[PTV_STORE_PK_LEN];
  memset(pk, 0x11, sizeof(pk));
  memset(pk2, 0x11, sizeof(pk2));
  pk2[31] = 0x12;

  assert_int_equal(ptv_store_ban_check(s, pk, T0), 0);
  assert_int_equal(ptv_store_ban_add(s, pk, T0 + 1000, "forged chunk 17"), 0);
  assert_int_equal(ptv_store_ban_check(s, pk, T0), 1);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 999), 1);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 1000), 0); /* until is exclusive */
  assert_int_equal(ptv_store_ban_check(s, pk2, T0), 0);

  /* A shorter second ban never shortens the first; a longer one extends. */
  assert_int_equal(ptv_store_ban_add(s, pk, T0 + 10, NULL), 0);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 500), 1);
  assert_int_equal(ptv_store_ban_add(s, pk, T0 + 5000, "again"), 0);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 4999), 1);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 5000), 0);

  /* Forever, above INT64_MAX where signed storage would flip the sign. */
  assert_int_equal(ptv_store_ban_add(s, pk2, UINT64_MAX, NULL), 0);
  assert_int_equal(ptv_store_ban_check(s, pk2, UINT64_MAX - 1), 1);
  assert_int_equal(ptv_store_ban_check(s, pk2, (uint64_t)INT64_MAX + 1), 1);

  assert_int_equal(ptv_store_ban_add(s, pk, 0, "x"), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_ban_add(s, NULL, T0, "x"), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_ban_check(s, NULL, T0), PTV_ERR_INVALID_ARG);
  char reason[PTV_STORE_REASON_MAX + 2];
  memset(reason, 'r', sizeof(reason) - 1);
  reason[sizeof(reason) - 1] = '\0'; /* 257 bytes */
  assert_int_equal(ptv_store_ban_add(s, pk, T0 + 9000, reason), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_ban_add(s, pk, T0 + 9000, "\xc3("), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 5000), 0); /* refused = unchanged */
  reason[PTV_STORE_REASON_MAX] = '\0'; /* 256 bytes is fine */
  assert_int_equal(ptv_store_ban_add(s, pk, T0 + 9000, reason), 0);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 8999), 1);
  ptv_store_close(s);
}

/* ---- durability and refusals ---------------------------------------------- */

static void test_restart_loses_nothing(void **state) {
  tmp_db *t = *state;
  char err[256];
  uint8_t pk[PTV_STORE_PK_LEN];
  memset(pk, 0x42, sizeof(pk));
  ptv_store *s = NULL;
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, err, sizeof(err)), 0);
  ptv_channel a = mkch("alpha", 1, 500000), b = mkch("beta", 2, 400000);
  snprintf(b.description, sizeof(b.description), "second");
  assert_int_equal(ptv_store_channel_create(s, &a), 0);
  assert_int_equal(ptv_store_channel_create(s, &b), 0);
  assert_int_equal(ptv_store_channel_end(s, "alpha", T0 + 7), 0);
  assert_int_equal(ptv_store_ban_add(s, pk, T0 + 100, "forged"), 0);
  ptv_store_close(s);

  /* The file is in WAL mode and carries our schema version. */
  assert_int_equal(raw_int(t->db, "PRAGMA user_version"), 1);

  s = NULL;
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, err, sizeof(err)), 0);
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s, "alpha", &g), 0);
  a.ended_us = T0 + 7;
  assert_channel_equal(&g, &a);
  assert_int_equal(ptv_store_channel_get(s, "beta", &g), 0);
  assert_channel_equal(&g, &b);
  assert_int_equal(ptv_store_ban_check(s, pk, T0 + 99), 1);
  /* Still writable after reopening an existing schema. */
  ptv_channel c = mkch("gamma", 3, 500000);
  assert_int_equal(ptv_store_channel_create(s, &c), 0);
  ptv_store_close(s);

  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

static void test_crash_loses_nothing(void **state) {
  tmp_db *t = *state;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* No cmocka asserts here: report through the exit status only. */
    ptv_store *s = NULL;
    if (ptv_store_sqlite_open(&s, t->db, NULL, 0) != 0) _exit(2);
    ptv_channel c = mkch("survivor", 9, 500000);
    if (ptv_store_channel_create(s, &c) != 0) _exit(3);
    uint8_t pk[PTV_STORE_PK_LEN];
    memset(pk, 0x66, sizeof(pk));
    if (ptv_store_ban_add(s, pk, UINT64_MAX, "crash test") != 0) _exit(4);
    _exit(0); /* no close, no checkpoint, no atexit */
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);

  ptv_store *s = NULL;
  char err[256];
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, err, sizeof(err)), 0);
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s, "survivor", &g), 0);
  assert_int_equal(g.publisher_pk[0], 9);
  assert_int_equal(g.ended_us, 0);
  uint8_t pk[PTV_STORE_PK_LEN];
  memset(pk, 0x66, sizeof(pk));
  assert_int_equal(ptv_store_ban_check(s, pk, T0), 1);
  ptv_store_close(s);
}

static void test_garbage_file_refused(void **state) {
  tmp_db *t = *state;
  FILE *f = fopen(t->db, "wb");
  assert_non_null(f);
  for (int i = 0; i < 64; i++) fputs("this is not a database, just text.\n", f);
  assert_int_equal(fclose(f), 0);

  ptv_store *s = (ptv_store *)1;
  char err[256];
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, err, sizeof(err)),
                   PTV_ERR_STORE);
  assert_null(s);
  assert_non_null(strstr(err, "not a database")); /* SQLite's own words */
  assert_non_null(strstr(err, t->db));
  /* A tiny buffer is truncated, never overrun. */
  char tiny[8];
  memset(tiny, 'x', sizeof(tiny));
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, tiny, sizeof(tiny)),
                   PTV_ERR_STORE);
  assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

static void test_newer_schema_refused(void **state) {
  tmp_db *t = *state;
  raw_exec(t->db, "CREATE TABLE future (x); PRAGMA user_version = 999;");
  ptv_store *s = NULL;
  char err[256];
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, err, sizeof(err)),
                   PTV_ERR_STORE);
  assert_null(s);
  assert_non_null(strstr(err, "999"));
  assert_non_null(strstr(err, "newer"));
  /* Refusing did not touch the file. */
  assert_int_equal(raw_int(t->db, "PRAGMA user_version"), 999);
  assert_int_equal(raw_int(t->db, "SELECT count(*) FROM sqlite_master"), 1);
}

static void test_foreign_db_refused(void **state) {
  tmp_db *t = *state;
  /* Version 0 but not empty: somebody else's database. */
  raw_exec(t->db, "CREATE TABLE channel (x);");
  ptv_store *s = NULL;
  char err[256];
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, err, sizeof(err)),
                   PTV_ERR_STORE);
  assert_non_null(strstr(err, "PeerTV"));
  /* Another application's id is refused even at our version. */
  unlink(t->db);
  raw_exec(t->db, "PRAGMA application_id = 1234; PRAGMA user_version = 1;");
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, err, sizeof(err)),
                   PTV_ERR_STORE);
  assert_non_null(strstr(err, "application_id"));
}

static void test_missing_dir_is_io(void **state) {
  tmp_db *t = *state;
  char p[400];
  snprintf(p, sizeof(p), "%s/no/such/dir.db", t->dir);
  ptv_store *s = NULL;
  char err[256];
  assert_int_equal(ptv_store_sqlite_open(&s, p, err, sizeof(err)), PTV_ERR_IO);
  assert_null(s);
  assert_true(err[0] != '\0');
}

/* A failed change must roll back and release the write lock, or a second
 * connection would wait out the busy timeout and get PTV_ERR_AGAIN. */
static void test_failure_releases_lock(void **state) {
  tmp_db *t = *state;
  ptv_store *s1 = NULL, *s2 = NULL;
  assert_int_equal(ptv_store_sqlite_open(&s1, t->db, NULL, 0), 0);
  assert_int_equal(ptv_store_sqlite_open(&s2, t->db, NULL, 0), 0);
  ptv_channel c = mkch("one", 1, 500000);
  assert_int_equal(ptv_store_channel_create(s1, &c), 0);
  assert_int_equal(ptv_store_channel_create(s1, &c), PTV_ERR_EXISTS);
  assert_int_equal(ptv_store_channel_end(s1, "ghost", T0), PTV_ERR_NOT_FOUND);

  ptv_channel d = mkch("two", 2, 500000);
  assert_int_equal(ptv_store_channel_create(s2, &d), 0);
  /* Each connection sees the other's commits. */
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s1, "two", &g), 0);
  assert_int_equal(ptv_store_channel_get(s2, "one", &g), 0);
  ptv_store_close(s1);
  ptv_store_close(s2);
}

/* A writer held off past the busy timeout gets PTV_ERR_AGAIN and nothing
 * changes; reads still work (WAL). Takes PTV_STORE_SQLITE_BUSY_MS. */
static void test_locked_is_again(void **state) {
  tmp_db *t = *state;
  ptv_store *s = NULL;
  assert_int_equal(ptv_store_sqlite_open(&s, t->db, NULL, 0), 0);
  ptv_channel c = mkch("held", 1, 500000);
  assert_int_equal(ptv_store_channel_create(s, &c), 0);

  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  ptv_channel d = mkch("blocked", 1, 500000);
  assert_int_equal(ptv_store_channel_create(s, &d), PTV_ERR_AGAIN);
  assert_true(ptv_store_errmsg(s)[0] != '\0');
  ptv_channel g;
  assert_int_equal(ptv_store_channel_get(s, "held", &g), 0);
  assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);

  assert_int_equal(ptv_store_channel_get(s, "blocked", &g), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_store_channel_create(s, &d), 0);
  ptv_store_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_args),
      cmocka_unit_test(test_roundtrip_every_field),
      cmocka_unit_test(test_duplicate_exists),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_get_not_found),
      cmocka_unit_test(test_list_order_and_ended_flag),
      cmocka_unit_test(test_list_stop_and_reentry),
      cmocka_unit_test(test_end),
      cmocka_unit_test(test_recreate_ended),
      cmocka_unit_test(test_bans),
      cmocka_unit_test_setup_teardown(test_restart_loses_nothing, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_crash_loses_nothing, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_garbage_file_refused, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_newer_schema_refused, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_foreign_db_refused, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_missing_dir_is_io, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_failure_releases_lock, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_locked_is_again, tmp_setup,
                                      tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
