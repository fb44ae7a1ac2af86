/* ptv_links.h -- every partner path of one node: ICE + key exchange + SRTP +
 * the reliable link, per partner, on the process's libuv loop.
 *
 * The node engine addresses partners by overlay id. ptv_links turns that
 * into datagrams on an ICE path per partner:
 *
 *   engine message -> ptv_link (framing, fragments, loss recovery before the
 *   deadline, congestion control) -> pacer (the node's --upload-limit over
 *   all partners) -> SRTP (AES-GCM, per-direction keys) -> libnice (ICE)
 *
 * and back. A path is set up the first time either side needs it: each side
 * sends its ICE credentials and candidates through the tracker (trickle), and
 * once it learns the other's identity key (the tracker stamps every relayed
 * signal with the sender's verified key) a key-exchange hello bound to both
 * ids, both keys and the channel. The side with the smaller id is ICE
 * controlling and the key-exchange client. Messages queued before the path
 * is up wait (bounded; bulk ones until their deadline). Nothing of a message
 * travels outside SRTP.
 *
 * A path that fails (ICE failure, no answer within the setup timeout, link
 * idle) is torn down; the engine sees the partner fall silent and replaces
 * it. A new attempt to the same peer waits RETRY_US.
 */
#ifndef PTV_LINKS_H
#define PTV_LINKS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ptv_ctl.h"
#include "ptv_identity.h"
#include "ptv_link.h"
#include "ptv_types.h"

typedef struct ptv_links ptv_links;

typedef struct {
  /* A whole message from partner `peer` (for ptv_node_recv). */
  void (*deliver)(void *user, ptv_id peer, const uint8_t *buf, size_t len);
  /* Signalling to relay to `peer` through the tracker. Return 0, or
   * non-zero if it cannot go now (the path setup then times out). */
  int (*signal)(void *user, ptv_id peer, uint8_t kind, const uint8_t *data, size_t len);
  /* The path to `peer` is up but has answered none of our probes (see
   * ptv_link_callbacks.on_unanswered): what we are waiting for from it
   * is better asked of others. Optional. */
  void (*unanswered)(void *user, ptv_id peer);
} ptv_links_callbacks;

typedef struct {
  const ptv_identity *id;
  const char *channel;      /* bound into the key exchange */
  uint32_t upload_kbps;     /* pacer: all partners together (0: unlimited) */
  const char *stun;         /* HOST:PORT or NULL */
  const char *turn;         /* turn:HOST:PORT or NULL */
  const char *turn_user, *turn_pass;
  const char *local_addr;   /* only this local address (tests: 127.0.0.1), or NULL */
  int relay_only;           /* only TURN-relayed paths */
  ptv_tstamp setup_timeout; /* default 10 s */
} ptv_links_config;

typedef struct {
  uint32_t paths_up, paths_setting_up;
  uint64_t paths_failed, paths_opened;
  uint64_t dgrams_out, dgrams_in, bytes_out, bytes_in;
  uint64_t sends;           /* system calls (or libnice sends) that carried them */
  uint64_t gso_batches;     /* sends of several datagrams by UDP GSO */
  uint64_t srtp_rejected;   /* datagrams that failed SRTP authentication */
  uint64_t queued_dropped;  /* messages given up before their path was up */
  uint64_t retransmits, losses;
  uint64_t unanswered;      /* times a path went unanswered (its partner
                               dead or stalled: ptv_link on_unanswered) */
  uint64_t dgrams_ack_only, dgrams_ctrl, dgrams_soft; /* of dgrams_out, over the paths
                                            now up: acks alone; control messages;
                                            buffer maps alone, sent soft */
} ptv_links_stats;

/* Creates the manager (one libnice agent on the loop's GLib context).
 * Returns 0, PTV_ERR_INVALID_ARG (bad STUN/TURN address), PTV_ERR_NOMEM,
 * PTV_ERR_CRYPTO (SRTP could not start). */
int ptv_links_new(ptv_links **out, uv_loop_t *loop, const ptv_links_config *c,
                  const ptv_links_callbacks *cb, void *user);

/* Our overlay id (known after the tracker's WELCOME); paths need it. */
void ptv_links_set_self(ptv_links *l, ptv_id self);

/* The driver handles I/O at most every `us` (0: at once): the pacers (the
 * upload limit's, and those of paths set up from now on) let that much of
 * their rate go back to back, else one burst per interval would cap the
 * rate. */
void ptv_links_set_poll_interval(ptv_links *l, ptv_tstamp us);

/* Sends a message to `peer` (setting its path up if needed). bulk: chunk
 * data, given up at `deadline` (0: none). Returns 0, PTV_ERR_AGAIN (queue
 * full), PTV_ERR_CLOSED (the path failed recently; try later),
 * PTV_ERR_INVALID_ARG, PTV_ERR_NOMEM. */
int ptv_links_send(ptv_links *l, ptv_id peer, const uint8_t *buf, size_t len, int bulk,
                   ptv_tstamp deadline);

/* 1 if the path to `peer` is up (messages to it go straight out), else 0. */
int ptv_links_path_up(const ptv_links *l, ptv_id peer);

/* Signalling from `s->peer`, relayed by the tracker. */
void ptv_links_on_signal(ptv_links *l, const ptv_ctl_signal *s);

/* Forgets the path to `peer` (the engine dropped it for good). */
void ptv_links_close(ptv_links *l, ptv_id peer);

void ptv_links_get_stats(const ptv_links *l, ptv_links_stats *st);

/* Describes the path to `peer` ("host 127.0.0.1:40001 -> host ...") into
 * out. Returns 0 or PTV_ERR_NOT_FOUND. */
int ptv_links_describe(const ptv_links *l, ptv_id peer, char *out, size_t cap);

/* The link-layer figures of the path to `peer` (RTT, paced rate, queue).
 * Returns 0 or PTV_ERR_NOT_FOUND (no path up to it). */
int ptv_links_link_stats(const ptv_links *l, ptv_id peer, ptv_link_stats *st);

/* Tears everything down (asynchronously: `done` runs when the last handle
 * has closed; the manager is freed then). */
void ptv_links_free(ptv_links *l, void (*done)(void *arg), void *arg);

#endif
