/* ptv_store.h -- the tracker's durable, transactional metadata store.
 *
 * The tracker keeps what must survive a restart here: the channels it serves
 * and the peers it has banned. The interface is a table of operations so
 * that backends can be swapped: SQLite embedded (ptv_store_sqlite_open) is
 * the default, a replicated etcd backend is planned. Callers only use the
 * ptv_store_* wrappers below; the wrappers check arguments before any backend
 * sees them, so every backend gives the same answers to bad input.
 *
 * Durability contract, for every backend: when a function that changes
 * something returns 0, the change is committed as ONE transaction and
 * survives a crash of the process or a power cut. When it returns a negative
 * code nothing changed.
 *
 * A store is not thread-safe: use it from one thread at a time.
 * Times are microseconds since the Unix epoch, as uint64_t.
 */
#ifndef PTV_STORE_H
#define PTV_STORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PTV_STORE_NAME_MAX 64    /* channel name: 1..64 of [A-Za-z0-9._-] */
#define PTV_STORE_DESC_MAX 256   /* channel description: UTF-8 bytes */
#define PTV_STORE_REASON_MAX 256 /* ban reason: UTF-8 bytes */
#define PTV_STORE_PK_LEN 32      /* Ed25519 public key */
#define PTV_STORE_ERRMSG_MAX 256 /* ptv_store_errmsg() text, NUL included */

/* How long a SQLite write waits for another connection's write lock before
 * giving up with PTV_ERR_AGAIN. */
#define PTV_STORE_SQLITE_BUSY_MS 2000

/* One channel. Strings are NUL-terminated inside their arrays. */
typedef struct {
  char name[PTV_STORE_NAME_MAX + 1];
  uint8_t publisher_pk[PTV_STORE_PK_LEN]; /* the source's Ed25519 key */
  uint32_t chunk_us;                      /* chunk duration, > 0 */
  uint32_t stream_kbps;                   /* nominal bit rate, 0 = unknown */
  uint64_t created_us;
  uint64_t ended_us;                      /* 0 while live */
  char description[PTV_STORE_DESC_MAX + 1]; /* UTF-8, "" = none */
} ptv_channel;

typedef struct ptv_store ptv_store;

/* Called once per channel by ptv_store_channel_list(). Return 0 to go on;
 * any other value stops the listing and becomes its return value. */
typedef int (*ptv_store_channel_cb)(void *user, const ptv_channel *c);

/* What a backend implements. The wrappers have already checked every
 * argument (see each wrapper), cleared s->errmsg, and fill it from
 * ptv_strerror() if a backend fails without writing it. Returns follow the
 * wrappers' contracts. */
struct ptv_store_ops {
  void (*close)(ptv_store *s);
  int (*channel_create)(ptv_store *s, const ptv_channel *c);
  int (*channel_get)(ptv_store *s, const char *name, ptv_channel *out);
  int (*channel_list)(ptv_store *s, int include_ended, ptv_store_channel_cb cb,
                      void *user);
  int (*channel_end)(ptv_store *s, const char *name, uint64_t now_us);
  int (*ban_add)(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                 uint64_t until_us, const char *reason);
  int (*ban_check)(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                   uint64_t now_us);
};

/* The common head of every backend's store object; a backend embeds it as
 * its first member. Callers treat it as opaque. */
struct ptv_store {
  const struct ptv_store_ops *ops;
  char errmsg[PTV_STORE_ERRMSG_MAX];
};

/* ---- opening -------------------------------------------------------------- */

/* Opens the SQLite database at `path`, creating it (and its schema) if
 * absent; ":memory:" gives a private in-memory store. Sets WAL journaling,
 * synchronous=FULL and a busy timeout of PTV_STORE_SQLITE_BUSY_MS.
 * The schema version is kept in PRAGMA user_version; an empty database gets
 * the current schema in one transaction.
 * On success stores the handle in *out and returns 0. On failure *out is
 * NULL, and unless errlen is 0 a NUL-terminated explanation is written to
 * errbuf (truncated to errlen). Returns
 *   PTV_ERR_INVALID_ARG  out or path is NULL, or errbuf is NULL with errlen > 0
 *   PTV_ERR_NOMEM        allocation failed
 *   PTV_ERR_IO           the file could not be opened, read or written
 *                        (missing directory, permissions, disk full)
 *   PTV_ERR_AGAIN        another connection held the database locked for
 *                        longer than the busy timeout
 *   PTV_ERR_STORE        not a SQLite database (SQLite's message in errbuf),
 *                        a schema version newer than this build knows, a
 *                        non-empty database without a PeerTV schema, a file
 *                        that cannot be switched to WAL, or any other
 *                        SQLite failure. */
int ptv_store_sqlite_open(ptv_store **out, const char *path, char *errbuf,
                          size_t errlen);

/* Closes the store and frees it. NULL is a no-op. */
void ptv_store_close(ptv_store *s);

/* Text for logs explaining the last failure of a call on `s`; "" after a
 * call that succeeded. Valid until the next call on `s`. Never NULL. */
const char *ptv_store_errmsg(ptv_store *s);

/* ---- channels ------------------------------------------------------------- */

/* Returns 1 if `name` is a valid channel name (1..PTV_STORE_NAME_MAX bytes of
 * [A-Za-z0-9._-]), 0 otherwise (also for NULL). Reads at most
 * PTV_STORE_NAME_MAX + 1 bytes, so an unterminated ptv_channel.name array is
 * safely refused. The tracker can use it on names from the wire. */
int ptv_store_name_valid(const char *name);

/* Creates channel c->name, live, with every field of `c` (ended_us must be
 * 0). Names compare byte for byte ("News" and "news" are different).
 * A name is owned by its publisher key forever: if an ENDED channel of that
 * name exists and c->publisher_pk is the same key, the old record is
 * replaced by `c` and the channel is live again; any other existing channel
 * of that name (live, or ended under another key) is left alone. Returns 0 or
 *   PTV_ERR_INVALID_ARG  s or c NULL, bad name, chunk_us 0, ended_us not 0,
 *                        description not terminated within
 *                        PTV_STORE_DESC_MAX bytes or not valid UTF-8
 *   PTV_ERR_EXISTS       the name is taken (see above)
 *   PTV_ERR_NOMEM, PTV_ERR_IO, PTV_ERR_AGAIN, PTV_ERR_STORE
 *                        the backend failed; nothing changed */
int ptv_store_channel_create(ptv_store *s, const ptv_channel *c);

/* Copies channel `name` (live or ended) into *out. Returns 0 or
 *   PTV_ERR_INVALID_ARG  s, name or out NULL, or bad name
 *   PTV_ERR_NOT_FOUND    no channel of that name
 *   PTV_ERR_NOMEM, PTV_ERR_IO, PTV_ERR_AGAIN, PTV_ERR_STORE
 *                        the backend failed (PTV_ERR_STORE also if the stored
 *                        record is out of range, e.g. edited by hand) */
int ptv_store_channel_get(ptv_store *s, const char *name, ptv_channel *out);

/* Calls cb for each live channel, and for ended ones too if include_ended is
 * non-zero, in ascending byte order of name. The set is a snapshot taken
 * before the first call, so cb may itself call the store (e.g. end the
 * channel it is given). Returns 0 after the last channel, the first non-zero
 * value cb returned (listing stops there; ptv_store_errmsg() stays "" for
 * it, the value is the callback's business), or
 *   PTV_ERR_INVALID_ARG  s or cb NULL
 *   PTV_ERR_NOMEM, PTV_ERR_IO, PTV_ERR_AGAIN, PTV_ERR_STORE
 *                        the backend failed before any call to cb */
int ptv_store_channel_list(ptv_store *s, int include_ended,
                           ptv_store_channel_cb cb, void *user);

/* Marks channel `name` ended at now_us. Ending an ended channel is a no-op
 * that returns 0 and keeps the first end time. Returns 0 or
 *   PTV_ERR_INVALID_ARG  s or name NULL, bad name, now_us 0 (0 means live)
 *   PTV_ERR_NOT_FOUND    no channel of that name
 *   PTV_ERR_NOMEM, PTV_ERR_IO, PTV_ERR_AGAIN, PTV_ERR_STORE
 *                        the backend failed; nothing changed */
int ptv_store_channel_end(ptv_store *s, const char *name, uint64_t now_us);

/* ---- bans ----------------------------------------------------------------- */

/* Bans key `pk` until until_us (exclusive; UINT64_MAX = forever). A key holds
 * one ban: if it is already banned until a later or equal time, nothing
 * changes (a second offence never shortens a ban); otherwise the new ban and
 * reason replace the old. reason may be NULL (stored as ""). Returns 0 or
 *   PTV_ERR_INVALID_ARG  s or pk NULL, until_us 0, reason not terminated
 *                        within PTV_STORE_REASON_MAX bytes or not UTF-8
 *   PTV_ERR_NOMEM, PTV_ERR_IO, PTV_ERR_AGAIN, PTV_ERR_STORE
 *                        the backend failed; nothing changed */
int ptv_store_ban_add(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                      uint64_t until_us, const char *reason);

/* Returns 1 if `pk` is banned at now_us (now_us < until_us), 0 if not, or
 *   PTV_ERR_INVALID_ARG  s or pk NULL
 *   PTV_ERR_NOMEM, PTV_ERR_IO, PTV_ERR_AGAIN, PTV_ERR_STORE
 *                        the backend failed */
int ptv_store_ban_check(ptv_store *s, const uint8_t pk[PTV_STORE_PK_LEN],
                        uint64_t now_us);

#ifdef __cplusplus
}
#endif
#endif
