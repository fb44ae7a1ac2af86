/* ptv_srtp.h -- every datagram of a peer link protected with SRTP
 * (AEAD_AES_128_GCM, RFC 7714) through libsrtp2, the AES from OpenSSL.
 *
 * Each datagram becomes the payload of one RTP packet:
 *   12-byte RTP header: V=2, P=0, X=0, CC=0, M=0, PT=96 (dynamic),
 *                       sequence number (16 bits, +1 per packet, from 0),
 *                       timestamp (= low 32 bits of the packet count),
 *                       SSRC (ptv_kx_keys.tx_ssrc)
 *   payload, encrypted in full
 *   16-byte GCM tag (authenticates header and payload)
 * so a protected packet is PTV_SRTP_OVERHEAD bytes longer than the
 * datagram. The header is in clear but authenticated.
 *
 * One libsrtp session per direction, keyed from ptv_kx_keys: the outbound
 * one accepts only our SSRC, the inbound one only the peer's. The inbound
 * replay window is PTV_SRTP_REPLAY_WINDOW packets: a packet older than
 * that, or one already accepted, is refused. The rollover counter is
 * tracked by libsrtp on both sides, so sequence numbers wrap freely as
 * long as fewer than 32,768 consecutive packets are lost.
 *
 * Threads: the first ptv_srtp_init calls srtp_init() through an unlocked
 * once-flag, so call ptv_srtp_init first from one thread (or call
 * ptv_srtp_global_init() at start-up). A ptv_srtp object must not be used
 * from two threads at once; distinct objects are independent. */
#ifndef PTV_SRTP_H
#define PTV_SRTP_H

#include <stddef.h>
#include <stdint.h>

#include "ptv_kx.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTV_SRTP_HDR_LEN 12
#define PTV_SRTP_TAG_LEN 16
#define PTV_SRTP_OVERHEAD (PTV_SRTP_HDR_LEN + PTV_SRTP_TAG_LEN) /* 28 */
#define PTV_SRTP_PT 96
#define PTV_SRTP_REPLAY_WINDOW 1024
/* Largest datagram accepted by ptv_srtp_protect (and so the largest
 * payload ptv_srtp_unprotect can return): well above any path MTU. */
#define PTV_SRTP_MAX_PAYLOAD 2048
/* libsrtp writes up to SRTP_MAX_TRAILER_LEN (144 in 2.x: 16-byte tag +
 * 128-byte MKI room) after the packet even when it appends only the tag.
 * Buffers with this much slack, and 4-byte aligned, are processed in
 * place; others go through the object's scratch buffer (one extra copy). */
#define PTV_SRTP_LIB_SLACK 144
#define PTV_SRTP_SCRATCH_LEN                                                   \
  (PTV_SRTP_HDR_LEN + PTV_SRTP_MAX_PAYLOAD + PTV_SRTP_LIB_SLACK)

typedef struct {
  void *tx;         /* srtp_t, outbound */
  void *rx;         /* srtp_t, inbound */
  uint32_t tx_ssrc; /* SSRC we send */
  uint32_t rx_ssrc; /* SSRC we accept */
  uint64_t sent;    /* packets protected; seq and timestamp come from it */
  /* uint32_t so the scratch buffer is 4-byte aligned, as libsrtp wants. */
  uint32_t scratch[(PTV_SRTP_SCRATCH_LEN + 3) / 4];
} ptv_srtp;

/* Runs srtp_init() once per process (not thread-safe; see above), unless
 * something else in the process already did, and installs OpenSSL's AES
 * under libsrtp (ptv_aes.h; if libsrtp refuses it, its own stays).
 * Returns 0 or PTV_ERR_CRYPTO. Called by ptv_srtp_init as needed. */
int ptv_srtp_global_init(void);

/* Creates both sessions from the exchanged keys (keys may be wiped
 * afterwards: libsrtp keeps its own derived session keys).
 * Returns 0, PTV_ERR_INVALID_ARG (NULL argument), PTV_ERR_NOMEM or
 * PTV_ERR_CRYPTO (libsrtp refused the policy, e.g. built without AES-GCM).
 * On failure *s is zeroed and needs no ptv_srtp_free. */
int ptv_srtp_init(ptv_srtp *s, const ptv_kx_keys *keys);

/* Protects the datagram in[0..len) into out; returns the packet length
 * (len + PTV_SRTP_OVERHEAD). in and out may be the same buffer (or
 * overlap). Every call uses the next sequence number, so send each
 * returned packet at most once and never resend an old one.
 * Errors: PTV_ERR_INVALID_ARG (s/out NULL, in NULL with len > 0, or len >
 * PTV_SRTP_MAX_PAYLOAD), PTV_ERR_NOBUF (cap < len + PTV_SRTP_OVERHEAD),
 * PTV_ERR_CRYPTO (libsrtp failed, e.g. key usage limit reached).
 * On error no sequence number is consumed. */
int ptv_srtp_protect(ptv_srtp *s, const uint8_t *in, size_t len, uint8_t *out,
                     size_t cap);

/* Checks and decrypts the packet in[0..len) and writes the datagram to
 * out; returns its length (len - PTV_SRTP_OVERHEAD). in and out may be the
 * same buffer (or overlap). Errors:
 *   PTV_ERR_INVALID_ARG  s/in/out NULL;
 *   PTV_ERR_SHORT        len is 0, or len < PTV_SRTP_OVERHEAD with the
 *                        version bits saying RTP;
 *   PTV_ERR_MALFORMED    RTP version is not 2 (not an RTP packet at all,
 *                        e.g. STUN; RFC 7983 demultiplexing; checked
 *                        before the length), or longer
 *                        than PTV_SRTP_HDR_LEN + PTV_SRTP_MAX_PAYLOAD +
 *                        PTV_SRTP_TAG_LEN;
 *   PTV_ERR_NOBUF        cap < len - PTV_SRTP_OVERHEAD;
 *   PTV_ERR_REPLAY       already received, or older than the window
 *                        (libsrtp checks this before authenticating, so
 *                        a forgery carrying such a sequence number gets
 *                        this code too; either way: drop it);
 *   PTV_ERR_CRYPTO       anything else: authentication failed (tampered,
 *                        other keys), or a header we never send (padding,
 *                        extension, CSRCs, other payload type or SSRC) --
 *                        the header is authenticated, so any change to it
 *                        is a forgery.
 * A forged or replayed packet does not change the state. On error the
 * first min(len, cap) bytes of out may have been overwritten (zeroed). */
int ptv_srtp_unprotect(ptv_srtp *s, const uint8_t *in, size_t len,
                       uint8_t *out, size_t cap);

/* Destroys both sessions and zeroes *s. NULL or a zeroed *s is a no-op. */
void ptv_srtp_free(ptv_srtp *s);

#ifdef __cplusplus
}
#endif
#endif
