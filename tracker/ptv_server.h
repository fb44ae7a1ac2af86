/* ptv_server.h -- the tracker service, sans-I/O: sessions, channels, relay.
 *
 * peertv-tracker is this module plus a libuv driver (sockets, timers, HTTP).
 * The driver reports connections opening, bytes arriving and connections
 * closing; the server answers through callbacks, keeps channels durable in a
 * ptv_store, runs one tracker engine (ptv_tracker) per live channel, and
 * relays ICE/key-exchange signalling between the members of a channel.
 *
 * A connection's first message must be a HELLO (ptv_ctl.h) signed by the
 * key it names, stamped within PTV_SERVER_SKEW of the server's clock:
 *  - a source's HELLO creates its channel (or takes back one its key owns,
 *    e.g. after a tracker restart) and is welcomed;
 *  - a peer's HELLO names a live channel and is welcomed with the channel's
 *    chunk duration and publisher key.
 * After WELCOME, overlay messages (JOIN, HEARTBEAT, LEAVE, REPORT) go to the
 * channel's engine; SIGNAL messages are relayed to the named member with the
 * sender's id and verified key; END (source only) ends the channel.
 *
 * Misbehaviour costs only the sender: a malformed frame, a message out of
 * order, an oversize frame or a request rate over the limit gets an ERROR
 * and the connection is closed (close callback); nothing else changes.
 */
#ifndef PTV_SERVER_H
#define PTV_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "ptv_store.h"
#include "ptv_types.h"

#define PTV_SERVER_SKEW (300ull * PTV_S) /* HELLO time stamps this far off are refused */

typedef struct ptv_server ptv_server;

typedef struct {
  /* Queue bytes on connection `conn`. Non-zero: the connection is broken
   * (the server closes it). */
  int (*send)(void *user, uint64_t conn, const uint8_t *buf, size_t len);
  /* Close `conn` (after flushing what was queued). The server has already
   * forgotten it; ptv_server_conn_closed must not be called for it. */
  void (*close)(void *user, uint64_t conn);
  uint64_t (*rand)(void *user);
  /* Optional: one line for the log (already prefixed with the context). */
  void (*log)(void *user, const char *line);
} ptv_server_callbacks;

typedef struct {
  ptv_store *store;          /* channels and bans (required) */
  uint32_t max_conns;        /* in all (default 4096) */
  uint32_t max_per_addr;     /* per remote address (default 64) */
  uint32_t rate_per_s;       /* messages per second per connection (default 200) */
  uint32_t rate_burst;       /* ... with this burst (default 400) */
  ptv_tstamp hello_timeout;  /* no HELLO this long after opening: closed (default 10 s) */
  ptv_tstamp member_expire;  /* engine: forget silent members (default 60 s) */
} ptv_server_config;

/* Returns NULL on allocation failure or without a store. */
ptv_server *ptv_server_new(const ptv_server_config *c, const ptv_server_callbacks *cb,
                           void *user);
/* Frees everything (no callbacks are made). */
void ptv_server_free(ptv_server *s);

/* A connection opened from address `addr` (any stable key, e.g. the IP
 * address hashed). Returns 0, or PTV_ERR_FULL (over max_conns or
 * max_per_addr: the driver closes it at once), PTV_ERR_EXISTS (conn in use),
 * PTV_ERR_NOMEM. `now` is monotonic; `unix_us` the wall clock. */
int ptv_server_conn_open(ptv_server *s, uint64_t conn, uint64_t addr, ptv_tstamp now);

/* Bytes arrived on `conn`. Returns 0, or a negative PTV_ERR_* when the
 * connection was closed for misbehaving (the close callback has run).
 * PTV_ERR_NOT_FOUND: no such connection. */
int ptv_server_conn_data(ptv_server *s, uint64_t conn, const uint8_t *buf, size_t len,
                         ptv_tstamp now, uint64_t unix_us);

/* The driver saw `conn` close (peer hung up, I/O error). */
void ptv_server_conn_closed(ptv_server *s, uint64_t conn, ptv_tstamp now);

ptv_tstamp ptv_server_get_expiry(const ptv_server *s);
void ptv_server_handle_expiry(ptv_server *s, ptv_tstamp now);

/* ---- for /metrics and /channels ---- */
typedef struct {
  uint64_t conns, conns_total, conns_refused;
  uint64_t hellos_ok, hellos_refused;
  uint64_t msgs_in, bytes_in, msgs_out;
  uint64_t bad_msgs, rate_limited, signals_relayed, signals_unreachable;
  uint64_t bans;
  uint32_t channels_live; /* channels with an engine */
  uint32_t members;       /* members over all channels */
} ptv_server_stats;
void ptv_server_get_stats(const ptv_server *s, ptv_server_stats *st);

/* Members of a live channel (0 if none or unknown). */
uint32_t ptv_server_channel_members(const ptv_server *s, const char *name);

#endif
