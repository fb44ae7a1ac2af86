/* ptv_tracker.h -- the tracker's protocol engine (bootstrap and membership).
 *
 * Sans-I/O like the node: the driver (peertv-tracker, or the simulator) passes
 * messages and time in and sends what the engine asks. It keeps soft state
 * only: who is online (refreshed by JOIN and HEARTBEAT, forgotten after a
 * silence), the channel's live point as the source reports it, and hands each
 * joining peer a random sample of others plus the source.
 */
#ifndef PTV_TRACKER_H
#define PTV_TRACKER_H

#include "ptv_types.h"
#include "ptv_wire.h"

typedef struct ptv_tracker ptv_tracker;

typedef struct {
  int (*send)(void *user, ptv_id to, const uint8_t *buf, size_t len);
  uint64_t (*rand)(void *user);
  /* Optional: `id` was banned (reported by ban_reports distinct members for
   * sending forged chunks); the driver may make it durable (ban its key). */
  void (*on_ban)(void *user, ptv_id id, ptv_tstamp now);
} ptv_tracker_callbacks;

typedef struct {
  ptv_id self;
  uint32_t chunk_us;      /* the channel's chunk duration, told to peers */
  uint8_t sample;         /* peers per PEERS answer (default 20, max 63) */
  ptv_tstamp expire_us;   /* forget a member silent this long (default 60 s) */
  uint8_t ban_reports;    /* distinct members whose REPORT bans a peer (default
                             2: one liar cannot get an honest peer banned) */
} ptv_tracker_config;

/* Returns NULL on allocation failure. */
ptv_tracker *ptv_tracker_new(const ptv_tracker_config *c,
                             const ptv_tracker_callbacks *cb, void *user);
void ptv_tracker_free(ptv_tracker *t);

/* Processes one message. Returns 0 or the decoder's PTV_ERR_* for malformed
 * input (nothing else changes). */
int ptv_tracker_recv(ptv_tracker *t, ptv_id from, const uint8_t *buf, size_t len,
                     ptv_tstamp now);
ptv_tstamp ptv_tracker_get_expiry(const ptv_tracker *t);
void ptv_tracker_handle_expiry(ptv_tracker *t, ptv_tstamp now);

/* Members currently known (source included). */
uint32_t ptv_tracker_nmembers(const ptv_tracker *t);
/* Newest chunk the source reported, or UINT32_MAX. */
ptv_chunk_id ptv_tracker_live(const ptv_tracker *t);
/* The peers' mean declared upload in kbps, the source left out (its share
 * would make a swarm of a few peers look rich): over the stream rate, the
 * swarm's resource index. 0 when no peer is known. Told to every joiner in
 * PEERS; a stripe newcomer near capacity waits longer for its buffer. */
uint32_t ptv_tracker_capacity(const ptv_tracker *t);
/* 1 if `id` is banned: it is no longer handed out and its JOINs go
 * unanswered. */
int ptv_tracker_banned(const ptv_tracker *t, ptv_id id);
/* Bans `id` at once (e.g. a key the driver's store lists as banned): it is
 * forgotten and every member is sent a REPORT naming it (their engines cut
 * it off). Returns 0 or PTV_ERR_NOMEM. */
int ptv_tracker_ban(ptv_tracker *t, ptv_id id, ptv_tstamp now);

#endif
