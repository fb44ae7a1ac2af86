/* ptv_store_sqlite.c -- the store's wrappers and its SQLite backend.
 *
 * The first part (argument checks and dispatch) is backend-independent and
 * can move to its own file when a second backend arrives.
 *
 * SQLite notes: the database runs in WAL mode with synchronous=FULL, so each
 * COMMIT is fsync'ed before we return. Every change is one BEGIN IMMEDIATE
 * ... COMMIT: IMMEDIATE takes the write lock up front, so a read-then-write
 * (create, end, ban) cannot be overtaken by another writer between its
 * SELECT and its write. SQL text is constant; input is only ever bound.
 * uint64_t values are stored as their two's-complement int64 image and
 * compared in C, because SQLite integers are signed.
 */
#include "ptv_store.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "ptv_err.h"

#if defined(__GNUC__)
#define PTV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define PTV_PRINTF(f, a)
#endif

/* ---- backend-independent part --------------------------------------------- */

static void PTV_PRINTF(2, 3) set_err(ptv_store *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
  va_end(ap);
}

/* strnlen() without asking for POSIX: length of `p`, or max if no NUL comes
 * within the first max bytes. Never reads beyond them. */
static size_t bounded_len(const char *p, size_t max) {
  size_t n = 0;
  while (n < max && p[n] != '\0') n++;
  return n;
}

/* Checks strict UTF-8 (no overlong forms, no surrogates, <= U+10FFFF) of the
 * NUL-terminated `p`, which must end within `max` bytes. */
static int text_valid(const char *p, size_t max) {
  size_t n = bounded_len(p, max + 1);
  if (n > max) return 0;
  const unsigned char *u = (const unsigned char *)p;
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;      /* overlong */
      else if (c == 0xed) hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;      /* overlong */
      else if (c == 0xf4) hi = 0x8f; /* > U+10FFFF */
    } else return 0;
    if (n - i < len) return 0;
    if (u[i + 1] < lo || u[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
      if (u[i + k] < 0x80 || u[i + k] > 0xbf) return 0;
    i += len;
  }
  return 1;
}

int ptv_store_name_valid(const char *name) {
  if (name == NULL) return 0;
  size_t n = bounded_len(name, PTV_STORE_NAME_MAX + 1);
  if (n == 0 || n > PTV_STORE_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    /* Spelled out instead of isalnum(): that one follows the locale. */
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
      return 0;
  }
  return 1;
}

/* Every wrapper clears the message first, so "" means the last call worked,
 * and makes sure a failure always leaves some text. */
static int finish(ptv_store *s, int rv) {
  if (rv < 0 && s->errmsg[0] == '\0') set_err(s, "%s", ptv_strerror(rv));
  return rv;
}

static int bad_arg(ptv_store *s, const char *what) {
  if (s != NULL) set_err(s, "invalid argument: %s", what);
  return PTV_ERR_INVALID_ARG;
}

void ptv_store_close(ptv_store *s) {
  if (s != NULL) s->ops->close(s);
}

const char *ptv_store_errmsg(ptv_store *s) {
  return s != NULL ? s->errmsg : "no store";
}

int ptv_store_channel_create(ptv_store *s, const ptv_channel *c) {
  if (s == NULL) return PTV_ERR_INVALID_ARG;
  s->errmsg[0] = '\0';
  if (c == NULL) return bad_arg(s, "channel is NULL");
  if (!ptv_store_name_valid(c->name)) return bad_arg(s, "bad channel name");
  if (c->chunk_us == 0) return bad_arg(s, "chunk_us is 0");
  if (c->ended_us != 0) return bad_arg(s, "a new channel cannot be ended");
  if (!text_valid(c->description, PTV_STORE_DESC_MAX))
    return bad_arg(s, "description too long or not UTF-8");
  return finish(s, s->ops->channel_create(s, c));
}

int ptv_store_channel_get(ptv_store *s, const char *name, ptv_channel *out) {
  if (s == NULL) return PTV_ERR_INVALID_ARG;
  s->errmsg[0] = '\0';
  if (out == NULL) return bad_arg(s, "out is NULL");
  if (!ptv_store_name_valid(name)) return bad_arg(s, "bad channel name");
  return finish(s, s->ops->channel_get(s, name, out));
}

int ptv_store_channel_list(ptv_store *s, int include_ended,
                           ptv_store_channel_cb cb, void *user) {
  if (s == NULL) return PTV_ERR_INVALID_ARG;
  s->errmsg[0] = '\0';
  if (cb == NULL) return bad_arg(s, "callback is NULL");
  int rv = s->ops->channel_list(s, include_ended != 0, cb, user);
  /* A callback's own code is passed through untouched, message included. */
  return rv;
}

int ptv_store_channel_end(ptv_store *s, const char *name, uint64_t now_us) {
  if (s == NULL) return PTV_ERR_INVALID_ARG;
  s->errmsg[0] = '\0';
  if (!ptv_store_name_valid(name)) return bad_arg(s, "bad channel name");
  if (now_us == 0) return bad_arg(s, "end time 0 means live");
  return finish(s, s->ops->channel_end(s, name, now_us));
}

int ptv_store_ban_add(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                      uint64_t until_us, const char *reason) {
  if (s == NULL) return PTV_ERR_INVALID_ARG;
  s->errmsg[0] = '\0';
  if (pk == NULL) return bad_arg(s, "key is NULL");
  if (until_us == 0) return bad_arg(s, "ban until 0 bans nothing");
  if (reason == NULL) reason = "";
  if (!text_valid(reason, PTV_STORE_REASON_MAX))
    return bad_arg(s, "reason too long or not UTF-8");
  return finish(s, s->ops->ban_add(s, pk, until_us, reason));
}

int ptv_store_ban_check(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                        uint64_t now_us) {
  if (s == NULL) return PTV_ERR_INVALID_ARG;
  s->errmsg[0] = '\0';
  if (pk == NULL) return bad_arg(s, "key is NULL");
  return finish(s, s->ops->ban_check(s, pk, now_us));
}

/* ---- SQLite backend ------------------------------------------------------- */

#define SCHEMA_VERSION 1
#define APPLICATION_ID 0x50545631 /* "PTV1": marks the file as ours */

/* Runs inside the open transaction, on an empty database only. */
static const char SCHEMA_SQL[] =
    "CREATE TABLE channel ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " publisher_pk BLOB NOT NULL CHECK (length(publisher_pk) = 32),"
    " chunk_us INTEGER NOT NULL,"
    " stream_kbps INTEGER NOT NULL,"
    " created_us INTEGER NOT NULL,"  /* uint64 as int64 image */
    " ended_us INTEGER NOT NULL,"    /* 0 = live */
    " description TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE ban ("
    " pk BLOB PRIMARY KEY NOT NULL CHECK (length(pk) = 32),"
    " until_us INTEGER NOT NULL,"    /* uint64 as int64 image */
    " reason TEXT NOT NULL"
    ") WITHOUT ROWID;"
    "PRAGMA application_id = 1347704369;" /* APPLICATION_ID */
    "PRAGMA user_version = 1;";           /* SCHEMA_VERSION */

enum {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_CH_GET,
  ST_CH_INSERT,
  ST_CH_REPLACE,
  ST_CH_LIST,
  ST_CH_END,
  ST_BAN_GET,
  ST_BAN_PUT,
  ST_COUNT
};

#define CH_COLS \
  "name, publisher_pk, chunk_us, stream_kbps, created_us, ended_us, description"

static const char *const STMT_SQL[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_CH_GET] = "SELECT " CH_COLS " FROM channel WHERE name = ?1",
    [ST_CH_INSERT] = "INSERT INTO channel (" CH_COLS ")"
                     " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
    [ST_CH_REPLACE] = "UPDATE channel SET publisher_pk = ?2, chunk_us = ?3,"
                      " stream_kbps = ?4, created_us = ?5, ended_us = 0,"
                      " description = ?6 WHERE name = ?1",
    [ST_CH_LIST] = "SELECT " CH_COLS " FROM channel"
                   " WHERE ?1 OR ended_us = 0 ORDER BY name",
    [ST_CH_END] = "UPDATE channel SET ended_us = ?2 WHERE name = ?1",
    [ST_BAN_GET] = "SELECT until_us FROM ban WHERE pk = ?1",
    [ST_BAN_PUT] = ("INSERT OR REPLACE INTO ban (pk, until_us, reason)"
                    " VALUES (?1, ?2, ?3)"),
};

typedef struct {
  ptv_store base; /* first: a ptv_store * points here */
  sqlite3 *db;
  sqlite3_stmt *st[ST_COUNT];
} sq_store;

static sq_store *sq(ptv_store *s) { return (sq_store *)(void *)s; }

static int map_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_NOMEM: return PTV_ERR_NOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED: return PTV_ERR_AGAIN;
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_CANTOPEN:
  case SQLITE_READONLY:
  case SQLITE_PERM: return PTV_ERR_IO;
  default: return PTV_ERR_STORE;
  }
}

/* Records SQLite's message for `what` and returns the mapped code. Call it
 * before anything else touches the connection, or the message is lost. */
static int sq_fail(sq_store *q, int rc, const char *what) {
  set_err(&q->base, "%s: %s (sqlite code %d)", what, sqlite3_errmsg(q->db),
          rc);
  return map_rc(rc);
}

static sqlite3_int64 u64_to_db(uint64_t v) {
  /* Spelled out: converting an out-of-range value to a signed type is
   * implementation-defined, the reverse direction is not. */
  if (v <= (uint64_t)INT64_MAX) return (sqlite3_int64)v;
  return (sqlite3_int64)(v - (uint64_t)INT64_MAX - 1u) + INT64_MIN;
}

static uint64_t u64_from_db(sqlite3_int64 v) { return (uint64_t)v; }

/* Steps a statement that returns no row, then resets it. */
static int sq_exec(sq_store *q, int id, const char *what) {
  sqlite3_stmt *st = q->st[id];
  int rc = sqlite3_step(st);
  int rv = 0;
  if (rc != SQLITE_DONE) rv = sq_fail(q, rc, what);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rv;
}

static void sq_done(sqlite3_stmt *st) {
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static int sq_begin(sq_store *q) { return sq_exec(q, ST_BEGIN, "begin"); }

/* Ends the transaction: COMMIT if rv is 0, else ROLLBACK. Returns rv, or the
 * COMMIT's failure (after which SQLite may already have rolled back). */
static int sq_end_tx(sq_store *q, int rv) {
  if (rv == 0) {
    rv = sq_exec(q, ST_COMMIT, "commit");
    if (rv == 0) return 0;
  }
  /* Keep the message of the first failure; ROLLBACK only cleans up. */
  if (!sqlite3_get_autocommit(q->db)) {
    int rc = sqlite3_step(q->st[ST_ROLLBACK]);
    sqlite3_reset(q->st[ST_ROLLBACK]);
    (void)rc;
  }
  return rv;
}

/* Copies the row at the cursor (CH_COLS order) into *c, refusing values the
 * API could not have written. */
static int sq_row_channel(sq_store *q, sqlite3_stmt *st, ptv_channel *c) {
  memset(c, 0, sizeof(*c));
  const unsigned char *name = sqlite3_column_text(st, 0);
  int name_len = sqlite3_column_bytes(st, 0);
  const void *pk = sqlite3_column_blob(st, 1);
  int pk_len = sqlite3_column_bytes(st, 1);
  sqlite3_int64 chunk = sqlite3_column_int64(st, 2);
  sqlite3_int64 kbps = sqlite3_column_int64(st, 3);
  const unsigned char *desc = sqlite3_column_text(st, 6);
  int desc_len = sqlite3_column_bytes(st, 6);
  if ((name == NULL || desc == NULL) &&
      sqlite3_errcode(q->db) == SQLITE_NOMEM) {
    set_err(&q->base, "reading channel: out of memory");
    return PTV_ERR_NOMEM;
  }
  if (name == NULL || name_len < 1 || name_len > PTV_STORE_NAME_MAX ||
      pk == NULL || pk_len != PTV_STORE_PK_LEN || chunk <= 0 ||
      chunk > UINT32_MAX || kbps < 0 || kbps > UINT32_MAX || desc == NULL ||
      desc_len > PTV_STORE_DESC_MAX) {
    set_err(&q->base, "stored channel record is out of range");
    return PTV_ERR_STORE;
  }
  memcpy(c->name, name, (size_t)name_len);
  memcpy(c->publisher_pk, pk, PTV_STORE_PK_LEN);
  c->chunk_us = (uint32_t)chunk;
  c->stream_kbps = (uint32_t)kbps;
  c->created_us = u64_from_db(sqlite3_column_int64(st, 4));
  c->ended_us = u64_from_db(sqlite3_column_int64(st, 5));
  memcpy(c->description, desc, (size_t)desc_len);
  return 0;
}

static int sq_bind_name(sq_store *q, sqlite3_stmt *st, const char *name) {
  int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  return rc == SQLITE_OK ? 0 : sq_fail(q, rc, "bind");
}

/* Looks `name` up inside the caller's transaction: 0 and *c, or
 * PTV_ERR_NOT_FOUND, or an error. */
static int sq_lookup(sq_store *q, const char *name, ptv_channel *c) {
  sqlite3_stmt *st = q->st[ST_CH_GET];
  int rv = sq_bind_name(q, st, name);
  if (rv == 0) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) rv = sq_row_channel(q, st, c);
    else if (rc == SQLITE_DONE) rv = PTV_ERR_NOT_FOUND;
    else rv = sq_fail(q, rc, "read channel");
  }
  sq_done(st);
  return rv;
}

static int sq_channel_create(ptv_store *s, const ptv_channel *c) {
  sq_store *q = sq(s);
  int rv = sq_begin(q);
  if (rv < 0) return rv;
  ptv_channel old;
  int id = ST_CH_INSERT;
  rv = sq_lookup(q, c->name, &old);
  if (rv == 0) {
    if (old.ended_us != 0 &&
        memcmp(old.publisher_pk, c->publisher_pk, PTV_STORE_PK_LEN) == 0) {
      id = ST_CH_REPLACE; /* its publisher takes an ended name back */
    } else {
      set_err(s, "channel '%s' already exists%s", c->name,
              old.ended_us != 0 ? " (ended, owned by another key)" : "");
      rv = PTV_ERR_EXISTS;
    }
  } else if (rv == PTV_ERR_NOT_FOUND) {
    rv = 0;
  }
  if (rv == 0) {
    sqlite3_stmt *st = q->st[id];
    int rc = sqlite3_bind_text(st, 1, c->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_blob(st, 2, c->publisher_pk, PTV_STORE_PK_LEN,
                             SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 3, c->chunk_us);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 4, c->stream_kbps);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 5, u64_to_db(c->created_us));
    if (rc == SQLITE_OK)
      rc = sqlite3_bind_text(st, 6, c->description, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
      rv = sq_fail(q, rc, "bind");
      sq_done(st);
    } else {
      rv = sq_exec(q, id, "write channel");
    }
  }
  return sq_end_tx(q, rv);
}

static int sq_channel_get(ptv_store *s, const char *name, ptv_channel *out) {
  sq_store *q = sq(s);
  int rv = sq_lookup(q, name, out);
  if (rv == PTV_ERR_NOT_FOUND) set_err(s, "no channel '%s'", name);
  return rv;
}

static int sq_channel_list(ptv_store *s, int include_ended,
                           ptv_store_channel_cb cb, void *user) {
  sq_store *q = sq(s);
  sqlite3_stmt *st = q->st[ST_CH_LIST];
  ptv_channel *all = NULL;
  size_t n = 0, cap = 0;
  int rv = 0;
  int rc = sqlite3_bind_int(st, 1, include_ended);
  if (rc != SQLITE_OK) rv = sq_fail(q, rc, "bind");
  /* Collect first: then cb may use the store (the statement is reused) and
   * sees a consistent set. Channel counts are small. */
  while (rv == 0) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      rv = sq_fail(q, rc, "list channels");
      break;
    }
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      ptv_channel *p = NULL;
      if (ncap <= SIZE_MAX / sizeof(*all)) p = realloc(all, ncap * sizeof(*all));
      if (p == NULL) {
        set_err(s, "listing channels: out of memory");
        rv = PTV_ERR_NOMEM;
        break;
      }
      all = p;
      cap = ncap;
    }
    rv = sq_row_channel(q, st, &all[n]);
    if (rv == 0) n++;
  }
  sq_done(st);
  for (size_t i = 0; rv == 0 && i < n; i++) rv = cb(user, &all[i]);
  free(all);
  return rv;
}

static int sq_channel_end(ptv_store *s, const char *name, uint64_t now_us) {
  sq_store *q = sq(s);
  int rv = sq_begin(q);
  if (rv < 0) return rv;
  ptv_channel c;
  rv = sq_lookup(q, name, &c);
  if (rv == PTV_ERR_NOT_FOUND) set_err(s, "no channel '%s'", name);
  if (rv == 0 && c.ended_us == 0) {
    sqlite3_stmt *st = q->st[ST_CH_END];
    int rc = sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, u64_to_db(now_us));
    if (rc != SQLITE_OK) {
      rv = sq_fail(q, rc, "bind");
      sq_done(st);
    } else {
      rv = sq_exec(q, ST_CH_END, "end channel");
    }
  }
  return sq_end_tx(q, rv);
}

/* Reads the ban of `pk`: 0 and *until, PTV_ERR_NOT_FOUND, or an error. */
static int sq_ban_get(sq_store *q, const uint8_t *pk, uint64_t *until) {
  sqlite3_stmt *st = q->st[ST_BAN_GET];
  int rv;
  int rc = sqlite3_bind_blob(st, 1, pk, PTV_STORE_PK_LEN, SQLITE_STATIC);
  if (rc != SQLITE_OK) {
    rv = sq_fail(q, rc, "bind");
  } else {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *until = u64_from_db(sqlite3_column_int64(st, 0));
      rv = 0;
    } else if (rc == SQLITE_DONE) {
      rv = PTV_ERR_NOT_FOUND;
    } else {
      rv = sq_fail(q, rc, "read ban");
    }
  }
  sq_done(st);
  return rv;
}

static int sq_ban_add(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                      uint64_t until_us, const char *reason) {
  sq_store *q = sq(s);
  int rv = sq_begin(q);
  if (rv < 0) return rv;
  uint64_t old = 0;
  rv = sq_ban_get(q, pk, &old);
  if (rv == 0 && old >= until_us) return sq_end_tx(q, 0); /* longer ban stays */
  if (rv == PTV_ERR_NOT_FOUND || rv == 0) {
    sqlite3_stmt *st = q->st[ST_BAN_PUT];
    int rc = sqlite3_bind_blob(st, 1, pk, PTV_STORE_PK_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK) rc = sqlite3_bind_int64(st, 2, u64_to_db(until_us));
    if (rc == SQLITE_OK) rc = sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
      rv = sq_fail(q, rc, "bind");
      sq_done(st);
    } else {
      rv = sq_exec(q, ST_BAN_PUT, "write ban");
    }
  }
  return sq_end_tx(q, rv);
}

static int sq_ban_check(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                        uint64_t now_us) {
  uint64_t until = 0;
  int rv = sq_ban_get(sq(s), pk, &until);
  if (rv == PTV_ERR_NOT_FOUND) return 0;
  if (rv < 0) return rv;
  return now_us < until ? 1 : 0;
}

static void sq_close(ptv_store *s) {
  sq_store *q = sq(s);
  for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(q->st[i]);
  /* All statements are finalized, so close cannot be refused as busy. */
  sqlite3_close(q->db);
  free(q);
}

static const struct ptv_store_ops SQ_OPS = {
    .close = sq_close,
    .channel_create = sq_channel_create,
    .channel_get = sq_channel_get,
    .channel_list = sq_channel_list,
    .channel_end = sq_channel_end,
    .ban_add = sq_ban_add,
    .ban_check = sq_ban_check,
};

/* Reads a one-integer PRAGMA. */
static int sq_pragma_int(sq_store *q, const char *sql, int *val) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *val = sqlite3_column_int(st, 0);
      rc = SQLITE_OK;
    }
  }
  int rv = rc == SQLITE_OK ? 0 : sq_fail(q, rc, sql);
  sqlite3_finalize(st);
  return rv;
}

/* Checks the schema, or creates it in an empty database. Runs in one
 * IMMEDIATE transaction so two processes opening a new file at once cannot
 * both create it. */
static int sq_schema(sq_store *q) {
  int rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return sq_fail(q, rc, "begin");
  int version = 0, app = 0, nobj = 0;
  int rv = sq_pragma_int(q, "PRAGMA user_version", &version);
  if (rv == 0) rv = sq_pragma_int(q, "PRAGMA application_id", &app);
  if (rv == 0)
    rv = sq_pragma_int(q, "SELECT count(*) FROM sqlite_master", &nobj);
  if (rv == 0) {
    if (version < 0 || version > SCHEMA_VERSION) {
      set_err(&q->base,
              "database schema version %d is newer than this build supports "
              "(%d); upgrade peertv-tracker",
              version, SCHEMA_VERSION);
      rv = PTV_ERR_STORE;
    } else if (app != 0 && app != APPLICATION_ID) {
      set_err(&q->base, "not a PeerTV database (application_id 0x%08x)",
              (unsigned)app);
      rv = PTV_ERR_STORE;
    } else if (version == 0 && nobj != 0) {
      /* Never add our tables to somebody else's database. */
      set_err(&q->base, "database is not empty but has no PeerTV schema");
      rv = PTV_ERR_STORE;
    } else if (version == 0) {
      rc = sqlite3_exec(q->db, SCHEMA_SQL, NULL, NULL, NULL);
      if (rc != SQLITE_OK) rv = sq_fail(q, rc, "create schema");
    }
    /* version == SCHEMA_VERSION: nothing to migrate yet. */
  }
  if (rv == 0) {
    rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) rv = sq_fail(q, rc, "commit schema");
  }
  if (rv < 0 && !sqlite3_get_autocommit(q->db))
    sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
  return rv;
}

/* Sets WAL and FULL sync. Both are per-connection choices (WAL sticks to the
 * file too), so this runs on every open. */
static int sq_pragmas(sq_store *q, const char *path) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(q->db, "PRAGMA journal_mode = WAL", -1, &st,
                              NULL);
  if (rc == SQLITE_OK) rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    int rv = sq_fail(q, rc, path);
    sqlite3_finalize(st);
    return rv;
  }
  const char *mode = (const char *)sqlite3_column_text(st, 0);
  /* In-memory databases answer "memory"; anything else means WAL was
   * refused (e.g. a file system without shared memory): fail loudly rather
   * than run with a journal nobody chose. */
  int ok = mode != NULL &&
           (strcmp(mode, "wal") == 0 || strcmp(mode, "memory") == 0);
  if (!ok)
    set_err(&q->base, "%s: cannot use WAL journal (got '%s')", path,
            mode != NULL ? mode : "?");
  sqlite3_finalize(st);
  if (!ok) return PTV_ERR_STORE;
  rc = sqlite3_exec(q->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
  if (rc != SQLITE_OK) return sq_fail(q, rc, "synchronous");
  return 0;
}

static void copy_err(char *errbuf, size_t errlen, const char *msg) {
  if (errlen == 0) return;
  snprintf(errbuf, errlen, "%s", msg);
}

int ptv_store_sqlite_open(ptv_store **out, const char *path, char *errbuf,
                          size_t errlen) {
  if (out != NULL) *out = NULL;
  if (errbuf == NULL && errlen > 0) return PTV_ERR_INVALID_ARG;
  if (out == NULL || path == NULL) {
    copy_err(errbuf, errlen, "invalid argument: out or path is NULL");
    return PTV_ERR_INVALID_ARG;
  }
  sq_store *q = calloc(1, sizeof(*q));
  if (q == NULL) {
    copy_err(errbuf, errlen, "out of memory");
    return PTV_ERR_NOMEM;
  }
  q->base.ops = &SQ_OPS;
  int rv = 0;
  int rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                           NULL);
  if (rc != SQLITE_OK) {
    if (q->db == NULL) {
      set_err(&q->base, "%s: out of memory", path);
      rv = PTV_ERR_NOMEM;
    } else {
      rv = sq_fail(q, rc, path);
    }
  }
  if (rv == 0) {
    /* Extended codes tell an I/O error from the rest in map_rc(). */
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, PTV_STORE_SQLITE_BUSY_MS);
    rv = sq_pragmas(q, path);
  }
  if (rv == 0) rv = sq_schema(q);
  for (int i = 0; rv == 0 && i < ST_COUNT; i++) {
    rc = sqlite3_prepare_v3(q->db, STMT_SQL[i], -1, SQLITE_PREPARE_PERSISTENT,
                            &q->st[i], NULL);
    if (rc != SQLITE_OK) rv = sq_fail(q, rc, "prepare");
  }
  if (rv < 0) {
    copy_err(errbuf, errlen, q->base.errmsg);
    sq_close(&q->base); /* handles a NULL db and unprepared statements */
    return rv;
  }
  copy_err(errbuf, errlen, "");
  *out = &q->base;
  return 0;
}
