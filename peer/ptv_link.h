/* ptv_link.h -- reliable, paced, congestion-controlled message link between
 * two peers over one datagram path (sans-I/O, in the manner of ngtcp2).
 *
 * One ptv_link per partner. The engine hands it whole messages
 * (ptv_link_send); the driver pulls datagrams of at most `mtu` bytes out of it
 * (ptv_link_write), protects them (SRTP) and sends them over ICE; datagrams
 * from the partner go in through ptv_link_recv and whole messages come back
 * out through callbacks.on_message. Time is always passed in; the link never
 * reads a clock, opens a socket, starts a thread or touches a global. It
 * allocates only per message (a copy of each queued message, a reassembly
 * buffer per message being received) and once at creation.
 *
 * Three kinds of message:
 *  - control (bulk = 0): reliable, delivered in send order, sent before any
 *    bulk data, retransmitted until acknowledged;
 *  - bulk (bulk = 1, chunk data): delivered whole in any order, retransmitted
 *    only until its deadline; at the deadline the sender forgets it and tells
 *    the receiver ("forget below") so the receiver drops its partial copy;
 *  - soft (ptv_link_send_soft): state that the next one supersedes (buffer
 *    maps), in one datagram, sent once, never retransmitted and not
 *    ack-eliciting, so the partner owes no ack for it: a lost one is
 *    replaced by the next. A newer one replaces one not yet written; one
 *    older than a soft message already delivered is dropped.
 *
 * Driving it:
 *   after ptv_link_new, ptv_link_send, ptv_link_recv or ptv_link_handle_expiry,
 *   call ptv_link_write in a loop until it returns 0 and send each datagram;
 *   arm a timer for ptv_link_get_expiry and, when it fires, call
 *   ptv_link_handle_expiry and then the write loop again.
 *
 * Integrity and authenticity are not this layer's job: every datagram is
 * SRTP-authenticated below it. Bounds are nevertheless checked everywhere, and
 * a datagram that does not parse changes nothing.
 *
 * Wire format (version 1), all integers big-endian:
 *
 *   0   u8   version (1)
 *   1   u8   flags: 0x01 ACK, 0x02 FORGET, 0x04 DATA, 0x08 BULK (with DATA
 *            only), 0x10 PING, 0x20 SOFT (not with DATA or PING); other
 *            bits must be 0
 *   2   u32  packet number (per direction, from 0, +1 per datagram)
 *   then, in this order, the parts the flags announce:
 *   ACK (9 + 4n bytes):
 *        u32 largest acknowledged packet number
 *        u16 ack delay, units of 8 us (time the largest waited for this ack)
 *        u8  n = number of extra ranges
 *        u16 first range: packets largest-first .. largest are acknowledged
 *        n x { u16 gap, u16 len }: as QUIC: next range's largest is
 *            previous smallest - gap - 2, its smallest is that - len
 *   FORGET (4 bytes):
 *        u32 bulk id: the sender has forgotten every bulk message below it
 *   DATA (10-byte header, payload runs to the end of the datagram):
 *        u32 message id (control: in-order sequence; bulk: bulk id; separate
 *            spaces, both from 0)
 *        u24 offset of the payload in the message
 *        u24 total message length (1 .. 2^24-1)
 *        payload, >= 1 byte, offset + length <= total
 *   SOFT (payload runs to the end of the datagram, >= 1 byte): one whole
 *        soft message
 *   At least one flag other than BULK must be set. A datagram without DATA
 *   or SOFT must end right after its last part. DATA, FORGET
 *   and PING make a datagram ack-eliciting; SOFT does not. A fragment datagram carries at
 *   most mtu - 29 payload bytes, leaving room for a one-range ACK and FORGET:
 *   overhead 16 bytes, 29 with ack and forget.
 *
 * Reliability: selective acks of packet numbers (up to 32 ranges), loss by
 * packet threshold (3) and time threshold (9/8 RTT), RFC 6298/9002 RTT
 * estimate, PTO probes for tail loss. Windows: a sender has control ids in
 * flight only within 1024 of its oldest unacknowledged one, and bulk ids only
 * within 1024 of the forget value the receiver acknowledged; the receiver
 * refuses ids beyond (its delivered-bulk bitmap is that wide). A fragment
 * that does not fit in max_reasm_bytes is dropped unacknowledged, so the
 * sender repeats it once memory frees up.
 *
 * Congestion control: rate based and paced, driven by queueing delay
 * q = RTT - min RTT (min over 10-20 s windows) and the delivery rate dr
 * measured from acks (as in BBR). Slow start sends at 2 x dr (never lowering
 * the rate) until q passes target/2 (target 25 ms); then rate = dr x
 * (1 + 0.25 e), e = (target - q) / target clipped to [-1.2, 1]: up to +25%
 * per RTT on an empty queue, level at target, below the bottleneck rate (at
 * most x0.7) above it so the queue drains -- a first-order loop with no
 * overshoot-and-cut cycle. A loss event (at most one per RTT) cuts the rate
 * to 0.7 x dr when losses look like congestion: smoothed loss rate above 8%
 * (a buffer too shallow for the delay signal) or q above 2 x target; random
 * loss below that is ignored. Every
 * 10 s a standing queue is drained for 1.5 RTT, >= 100 ms (rate 0.5 x dr), so
 * min RTT is re-measured without our own queue in it. Bytes in flight are
 * capped at 2 x rate x srtt; the rate stays in [min_rate_bps, max_rate_bps].
 *
 * Times passed in should not decrease; a smaller `now` than one seen before
 * is taken as the latest seen.
 *
 * Not thread-safe; one link per thread at a time. Callbacks may call
 * ptv_link_send and ptv_link_get_stats on the same link, nothing else. */
#ifndef PTV_LINK_H
#define PTV_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "ptv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTV_LINK_VERSION 1
#define PTV_LINK_MIN_MTU 64
#define PTV_LINK_MAX_MTU 65507 /* largest UDP payload */
#define PTV_LINK_MAX_MSG ((size_t)(1u << 24) - 1) /* 24-bit offsets */
#define PTV_LINK_FRAG_OVERHEAD 29 /* mtu - this = fragment payload size */
#define PTV_LINK_SOFT_OVERHEAD 19 /* mtu - this = largest soft message (room
                                     for the header and a one-range ack) */

typedef struct ptv_link ptv_link;

/* Zero in any field means "use the default". */
typedef struct {
  size_t mtu;             /* largest datagram emitted; default 1160 */
  size_t max_msg;         /* largest message sent or accepted; default 4 MiB */
  size_t max_queue_bytes; /* bound on queued outgoing bytes; default 8 MiB */
  size_t max_reasm_bytes; /* bound on reassembly memory; default 8 MiB */
  uint64_t init_rate_bps; /* starting rate; default 1 Mbit/s */
  uint64_t min_rate_bps;  /* rate floor; default 64 kbit/s */
  uint64_t max_rate_bps;  /* rate cap; default none (0) */
  ptv_tstamp idle_timeout;  /* silence that closes the link; default 10 s */
  ptv_tstamp max_ack_delay; /* how long an ack may wait; default 10 ms */
  unsigned ack_every;       /* ack at once after this many ack-eliciting
                               packets (or any out of order); default 2.
                               Higher: fewer acks, less CPU per byte */
  ptv_tstamp target_delay;  /* queueing delay target; default 25 ms */
  ptv_tstamp burst_time;    /* the pacer lets this much of the rate (at
                               least 8 datagrams) go back to back; default
                               2 ms. A driver that handles I/O only every
                               T should give T, or the rate is capped at
                               one burst per T */
  ptv_tstamp sched_delay;   /* round-trip delay the two ends' scheduling
                               adds, not the network's: a driver handling
                               I/O every T adds up to T at each end, so
                               give 2T. Taken off the queueing delay the
                               congestion control sees; default 0 */
} ptv_link_config;

typedef struct {
  /* A complete message from the partner. buf is valid only during the call.
   * Control messages arrive once each, in send order; bulk ones once each,
   * in any order. Required. */
  void (*on_message)(void *user, const uint8_t *buf, size_t len, int bulk);
  /* The link closed: idle timeout, or packet numbers exhausted after 2^32
   * datagrams. Called once; optional (may be NULL). */
  void (*on_closed)(void *user);
  /* The partner has acknowledged nothing for `waited`, while we had
   * ack-eliciting data in flight: 3 x (srtt + 4 rttvar + max_ack_delay),
   * three probe timeouts' worth, and then again at each further such
   * period until an ack comes. It is gone, cut off or stalled (the idle
   * timeout closes the link much later). Called from
   * ptv_link_handle_expiry; optional (may be NULL). */
  void (*on_unanswered)(void *user, ptv_tstamp waited);
} ptv_link_callbacks;

typedef struct {
  ptv_tstamp srtt, rttvar, min_rtt, latest_rtt; /* 0 until the first sample */
  uint64_t rate_bps;        /* current paced rate */
  uint64_t cwnd;            /* bytes-in-flight cap */
  uint64_t bytes_in_flight;
  uint64_t packets_sent, bytes_sent; /* every datagram written */
  uint64_t packets_ack_only;  /* of those: acks (and forgets) alone */
  uint64_t packets_ctrl;      /* of those: carrying control message data */
  uint64_t packets_soft;      /* of those: a soft message */
  uint64_t packets_recv, bytes_recv; /* every datagram accepted */
  uint64_t bytes_acked;     /* datagram bytes the partner acknowledged */
  uint64_t retransmits;     /* fragments sent again */
  uint64_t losses;          /* packets declared lost */
  uint64_t pto_count;       /* probe timeouts fired */
  uint64_t unanswered;      /* waits that went unanswered (on_unanswered
                               called, once or more) */
  uint64_t loss_events;     /* rate decreases for loss */
  uint64_t delay_events;    /* rate decreases for queueing delay */
  uint64_t msgs_sent;       /* messages fully acknowledged */
  uint64_t msgs_delivered;  /* messages passed to on_message */
  uint64_t bulk_expired;    /* bulk messages dropped at their deadline
                               before being fully acknowledged (sender) */
  uint64_t bulk_abandoned;  /* partial bulk messages freed on FORGET
                               (receiver) */
  uint64_t rejected;        /* datagrams refused (malformed, or no memory) */
  size_t queue_msgs, queue_bytes; /* outgoing messages held */
  size_t reasm_msgs, reasm_bytes; /* incoming partial messages held */
} ptv_link_stats;

/* Fills cfg with the defaults above. */
void ptv_link_config_default(ptv_link_config *cfg);

/* Creates a link at time `now`. cfg may be NULL (defaults). The callbacks
 * are copied. Returns NULL if callbacks or callbacks->on_message is NULL, if
 * cfg holds an out-of-range value (mtu outside [PTV_LINK_MIN_MTU,
 * PTV_LINK_MAX_MTU], max_msg > PTV_LINK_MAX_MSG, max_queue_bytes or
 * max_reasm_bytes < max_msg, an explicit min_rate_bps > max_rate_bps; a
 * defaulted floor is lowered to a lower max_rate_bps) or
 * if memory runs out. */
ptv_link *ptv_link_new(const ptv_link_config *cfg,
                       const ptv_link_callbacks *callbacks, void *user,
                       ptv_tstamp now);

/* Frees the link and everything it holds. NULL is allowed. Not from a
 * callback. */
void ptv_link_free(ptv_link *link);

/* Queues a copy of msg[0..len). bulk 0: control; bulk 1: chunk data that is
 * retransmitted only while now < deadline (deadline 0: no deadline; deadline
 * is ignored for control). Returns 0, or
 *   PTV_ERR_INVALID_ARG  link or msg NULL, len 0 or len > max_msg;
 *   PTV_ERR_AGAIN        the queue would exceed max_queue_bytes;
 *   PTV_ERR_CLOSED       the link has closed;
 *   PTV_ERR_NOMEM        out of memory. */
int ptv_link_send(ptv_link *link, const uint8_t *msg, size_t len, int bulk,
                  ptv_tstamp deadline, ptv_tstamp now);

/* Queues a soft message (see above): msg[0..len) replaces any soft message
 * not yet written and goes out with the next ptv_link_write the pacer
 * allows, ahead of the congestion window (it is never in flight), with an
 * ack riding if one is pending. The partner's on_message gets it (bulk 0)
 * if it arrives and nothing newer came first. Returns 0, or
 *   PTV_ERR_INVALID_ARG  link or msg NULL, len 0 or len > mtu -
 *                        PTV_LINK_SOFT_OVERHEAD;
 *   PTV_ERR_CLOSED       the link has closed. */
int ptv_link_send_soft(ptv_link *link, const uint8_t *msg, size_t len, ptv_tstamp now);

/* 1 if a soft message waits to be written (a new one would replace it). */
int ptv_link_soft_pending(const ptv_link *link);

/* Processes one datagram from the partner: acks, forget, a fragment (which
 * may complete messages and call on_message, possibly several times).
 * Duplicates are ignored. Returns 0 (also when the datagram was well formed
 * but dropped for want of reassembly memory; it is then not acknowledged and
 * the partner sends it again), or
 *   PTV_ERR_INVALID_ARG  link NULL, or dgram NULL with len > 0;
 *   PTV_ERR_SHORT        the datagram ends inside a field;
 *   PTV_ERR_VERSION      version byte is not PTV_LINK_VERSION;
 *   PTV_ERR_MALFORMED    unknown flag bits, trailing bytes, an ack of a packet
 *                        never sent or with impossible ranges, a fragment with
 *                        length 0, beyond its total, total > max_msg, total
 *                        differing from earlier fragments, bytes differing from
 *                        bytes already received, or an id outside the window;
 *   PTV_ERR_NOMEM        out of memory;
 *   PTV_ERR_CLOSED       the link has closed.
 * On any error the link is unchanged. */
int ptv_link_recv(ptv_link *link, const uint8_t *dgram, size_t len,
                  ptv_tstamp now);

/* Writes the next datagram to send at `now` into out: a fragment (with ack and
 * forget piggybacked when due), or a pure ack, forget or ping. Returns its
 * length (<= mtu), 0 when nothing may be sent now (nothing due, congestion
 * window full, pacing says wait, or the link has closed), or
 *   PTV_ERR_INVALID_ARG  link or out NULL;
 *   PTV_ERR_NOBUF        cap < mtu (nothing is consumed). */
ptrdiff_t ptv_link_write(ptv_link *link, uint8_t *out, size_t cap,
                         ptv_tstamp now);

/* Earliest time at which the link wants ptv_link_handle_expiry and a write
 * loop: loss or probe timer, delayed ack, pacing release, bulk deadline,
 * keepalive or idle timeout. PTV_TSTAMP_MAX if none (e.g. closed). */
ptv_tstamp ptv_link_get_expiry(const ptv_link *link);

/* Runs the timers due at `now`: declares losses, arms probes, forgets bulk
 * messages past their deadline and closes an idle link (calling on_closed).
 * Harmless when nothing is due. */
void ptv_link_handle_expiry(ptv_link *link, ptv_tstamp now);

/* 1 once the link has closed, else 0. */
int ptv_link_is_closed(const ptv_link *link);

/* on != 0: until called again with 0, ptv_link_write emits no datagram
 * that would carry only an ack; acks still ride on every other datagram.
 * For a driver that sends control messages at set points (ptv_links: once
 * per loop pass) and would rather an ack wait for them than leave alone
 * just before: an ack-only datagram costs as much CPU as any other. The
 * ack stays due (ptv_link_get_expiry keeps reporting it), so the driver
 * must write without the hold soon, within its own poll interval. */
void ptv_link_hold_acks(ptv_link *link, int on);

/* Fills *st. */
void ptv_link_get_stats(const ptv_link *link, ptv_link_stats *st);

#ifdef __cplusplus
}
#endif
#endif
