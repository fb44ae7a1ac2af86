/* ptv_kx.h -- authenticated ephemeral key exchange for one peer link.
 *
 * Two peers that know each other's identity public key (from the tracker)
 * each send one hello, in any order, over any channel (the tracker's
 * signalling relay, which is untrusted, or the ICE path itself), and each
 * derives the same pair of directional SRTP keys. No round trip is needed:
 * both hellos can be sent at once.
 *
 * Hello (PTV_KX_HELLO_LEN = 129 bytes, fixed):
 *   off 0    1 byte   version, PTV_KX_VERSION (1)
 *   off 1   32 bytes  sender's identity (Ed25519) public key
 *   off 33  32 bytes  sender's ephemeral X25519 public key
 *   off 65  64 bytes  Ed25519 signature by the identity key over
 *     "peertv-kx-v1" (12 bytes, no NUL) | version (1) |
 *     sender overlay id (4, big-endian) | receiver overlay id (4, BE) |
 *     sender identity pk (32) | sender ephemeral pk (32) |
 *     BLAKE2b-256(context) (32)
 * The context is whatever both sides know of this particular session (e.g.
 * both ICE ufrags and the channel name), so a hello cannot be replayed into
 * another session or for another pair of ids. Each side builds the context
 * with the same bytes in the same order.
 *
 * Roles: the side with the smaller overlay id is the crypto_kx "client",
 * the other the "server" (ids must differ). The crypto_kx session keys
 * (BLAKE2b of the X25519 shared secret and both ephemeral keys) are then
 * bound to the whole exchange: for each direction,
 *   okm(32) = BLAKE2b-256(key = that direction's crypto_kx key,
 *                         msg = label | th)
 *   label   = "peertv-srtp-c2s" or "peertv-srtp-s2c" (c2s: client to server)
 *   th      = BLAKE2b-256("peertv-kx-v1 th" | client hello | server hello |
 *                         BLAKE2b-256(context))
 *   okm     = SRTP master key (16) | SRTP master salt (12) | SSRC (4, BE)
 * Forward secrecy comes from the ephemeral keys, which are wiped after
 * ptv_kx_finish; a leaked identity key lets an attacker impersonate a node
 * in future sessions, not decrypt past ones. A replayed old hello can at
 * worst make a session fail (its ephemeral secret is gone).
 *
 * Not thread-safe per object; distinct objects are independent. */
#ifndef PTV_KX_H
#define PTV_KX_H

#include <stddef.h>
#include <stdint.h>

#include "ptv_identity.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PTV_KX_VERSION 1
#define PTV_KX_HELLO_LEN 129
#define PTV_KX_SRTP_KEY_LEN 16  /* AES-128 master key */
#define PTV_KX_SRTP_SALT_LEN 12 /* AES-GCM master salt (RFC 7714) */

/* Result of a key exchange: what ptv_srtp_init needs. tx = what we send,
 * rx = what we receive; A's tx equals B's rx and vice versa. */
typedef struct {
  uint8_t tx_key[PTV_KX_SRTP_KEY_LEN];
  uint8_t tx_salt[PTV_KX_SRTP_SALT_LEN];
  uint8_t rx_key[PTV_KX_SRTP_KEY_LEN];
  uint8_t rx_salt[PTV_KX_SRTP_SALT_LEN];
  uint32_t tx_ssrc;            /* SSRC of the packets we send */
  uint32_t rx_ssrc;            /* SSRC of the packets we accept */
  uint8_t session_hash[32];    /* th above: equal on both sides; usable for
                                  channel binding or logging */
  uint32_t my_id, peer_id;
} ptv_kx_keys;

/* One side of one exchange. Treat the fields as private. */
typedef struct {
  uint32_t my_id, peer_id;
  int state; /* 0 unused/wiped, 1 initialised, 2 finished */
  uint8_t peer_pk[PTV_IDENTITY_PK_LEN];
  uint8_t eph_pk[32];
  uint8_t eph_sk[32];
  uint8_t ctx_hash[32];
  uint8_t hello[PTV_KX_HELLO_LEN]; /* our signed hello, built by init */
} ptv_kx;

/* Starts an exchange: makes an ephemeral X25519 key pair and signs our
 * hello with me's identity key. me is not referenced after the call.
 * context (ctxlen bytes; may be NULL if ctxlen is 0) must be the same bytes
 * on both sides.
 * Returns 0, PTV_ERR_INVALID_ARG (NULL kx/me/peer_pk, context NULL with
 * ctxlen > 0, or my_id == peer_id) or PTV_ERR_CRYPTO. On failure *kx is
 * wiped. */
int ptv_kx_init(ptv_kx *kx, const ptv_identity *me, uint32_t my_id,
                uint32_t peer_id, const uint8_t peer_pk[PTV_IDENTITY_PK_LEN],
                const uint8_t *context, size_t ctxlen);

/* Copies our hello (PTV_KX_HELLO_LEN bytes) to out. May be called any
 * number of times (e.g. to resend) until ptv_kx_finish succeeds.
 * Returns PTV_KX_HELLO_LEN, PTV_ERR_INVALID_ARG (NULL, or kx not
 * initialised or already finished) or PTV_ERR_NOBUF (cap too small). */
int ptv_kx_hello(const ptv_kx *kx, uint8_t *out, size_t cap);

/* Checks the peer's hello and derives the session keys into *out.
 * The hello must carry the expected peer identity key and a valid
 * signature for (peer id -> my id, this context).
 * Returns 0 on success; then the ephemeral secret is wiped and kx can no
 * longer be used except by ptv_kx_wipe. Otherwise *out is zeroed, kx is
 * left unchanged (a forged hello from the untrusted relay does not kill
 * the exchange; the genuine one can still be fed) and the result is
 *   PTV_ERR_INVALID_ARG  NULL argument, or kx not initialised / finished;
 *   PTV_ERR_SHORT        fewer than PTV_KX_HELLO_LEN bytes (or none);
 *   PTV_ERR_VERSION      first byte is not PTV_KX_VERSION;
 *   PTV_ERR_MALFORMED    more than PTV_KX_HELLO_LEN bytes;
 *   PTV_ERR_BAD_SIG      another identity key, or a signature that does
 *                        not verify for this id pair and context;
 *   PTV_ERR_CRYPTO       the validly signed ephemeral key is degenerate
 *                        (small order), i.e. the peer misbehaves. */
int ptv_kx_finish(ptv_kx *kx, const uint8_t *peer_hello, size_t len,
                  ptv_kx_keys *out);

/* Zeroes *kx (including the ephemeral secret). NULL is a no-op. */
void ptv_kx_wipe(ptv_kx *kx);

/* Zeroes *keys; call once the SRTP sessions are created. NULL is a no-op. */
void ptv_kx_keys_wipe(ptv_kx_keys *keys);

#ifdef __cplusplus
}
#endif
#endif
