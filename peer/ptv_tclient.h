/* ptv_tclient.h -- a peer's (or source's) connection to the tracker.
 *
 * One TCP connection on the process's libuv loop: it says HELLO (signed by
 * the node's identity key), hands the overlay messages that come back
 * (PEERS) and relayed signalling to the caller, and sends the node's JOIN,
 * HEARTBEAT, LEAVE and REPORT. When the connection drops it retries with
 * backoff (0.5 s doubling to 5 s) and asks for the overlay id it had, so a
 * tracker restart does not disturb the overlay: streaming between peers
 * never depends on this connection. A refusal the tracker says is final
 * (no such channel, banned, name taken, bad signature) is reported and not
 * retried. */
#ifndef PTV_TCLIENT_H
#define PTV_TCLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "ptv_ctl.h"
#include "ptv_identity.h"
#include "ptv_types.h"

typedef struct ptv_tclient ptv_tclient;

typedef struct {
  /* Welcomed (first time, and after every reconnect). */
  void (*on_welcome)(void *user, const ptv_ctl_welcome *w);
  /* An overlay message from the tracker (for the node engine). */
  void (*on_overlay)(void *user, const uint8_t *buf, size_t len);
  /* Signalling relayed from another member. */
  void (*on_signal)(void *user, const ptv_ctl_signal *s);
  /* An ERROR from the tracker. final: it will not be retried (the caller
   * should give up or exit). */
  void (*on_error)(void *user, uint16_t code, const char *text, int final);
  /* The connection went down (a retry is scheduled). Optional. */
  void (*on_down)(void *user, const char *why);
} ptv_tclient_callbacks;

typedef struct {
  const char *tracker;        /* HOST:PORT */
  const char *channel;
  uint8_t role;               /* PTV_ROLE_PEER / PTV_ROLE_SOURCE */
  const ptv_identity *id;
  uint8_t nat;
  uint32_t upload_kbps;
  uint32_t chunk_us, stream_kbps; /* source: the channel's parameters */
  const char *description;    /* source: optional */
} ptv_tclient_config;

/* Starts connecting. Returns 0, PTV_ERR_PARSE (tracker not HOST:PORT),
 * PTV_ERR_INVALID_ARG (bad channel name), PTV_ERR_NOMEM. */
int ptv_tclient_start(ptv_tclient **out, uv_loop_t *loop, const ptv_tclient_config *c,
                      const ptv_tclient_callbacks *cb, void *user);

/* Sends one encoded overlay message. Returns 0 or PTV_ERR_CLOSED (not
 * connected and welcomed: the engine retries on its own timers). */
int ptv_tclient_send(ptv_tclient *t, const uint8_t *buf, size_t len);

/* Relays signalling to member `peer`. Returns 0, PTV_ERR_CLOSED,
 * PTV_ERR_INVALID_ARG (kind or length out of range). */
int ptv_tclient_signal(ptv_tclient *t, ptv_id peer, uint8_t kind, const uint8_t *data,
                       size_t len);

/* Source: ends the channel (then the tracker closes the connection). */
int ptv_tclient_end(ptv_tclient *t);

/* 1 while connected and welcomed. */
int ptv_tclient_up(const ptv_tclient *t);

/* Closes the connection and frees everything (asynchronously; no
 * callbacks after this call). */
void ptv_tclient_stop(ptv_tclient *t);

#endif
