/* ptv_srtp.c -- SRTP AES-GCM protection of link datagrams (libsrtp2). */
#include "ptv_srtp.h"

#include <stdint.h>
#include <string.h>

#include <sodium.h>
#include <srtp2/srtp.h>

#include "ptv_be.h"
#include "ptv_err.h"
#include "ptv_aes.h"

_Static_assert(PTV_SRTP_LIB_SLACK >= SRTP_MAX_TRAILER_LEN,
               "libsrtp writes up to SRTP_MAX_TRAILER_LEN after a packet");
_Static_assert(PTV_SRTP_TAG_LEN <= SRTP_MAX_TAG_LEN, "tag length");
_Static_assert(PTV_KX_SRTP_KEY_LEN + PTV_KX_SRTP_SALT_LEN ==
                   SRTP_AES_GCM_128_KEY_LEN_WSALT,
               "AES-GCM-128 master key + salt");

#define RTP_B0 0x80 /* V=2, P=0, X=0, CC=0 */

static int g_srtp_ready; /* unlocked once-flag: see the header */

int ptv_srtp_global_init(void) {
  if (!g_srtp_ready) {
    /* bad_param: another part of the process initialised libsrtp first
     * (it refuses a second srtp_init); its crypto kernel is ours too. */
    srtp_err_status_t st = srtp_init();
    if (st != srtp_err_status_ok && st != srtp_err_status_bad_param) {
      return PTV_ERR_CRYPTO;
    }
    /* OpenSSL's AES in place of NSS's (ptv_aes.h). If libsrtp refuses
     * it, its own stays: the same bytes, more CPU. */
    (void)ptv_aes_install();
    g_srtp_ready = 1;
  }
  return 0;
}

static int create_session(srtp_t *out, uint32_t ssrc, const uint8_t *key,
                          const uint8_t *salt) {
  uint8_t master[SRTP_AES_GCM_128_KEY_LEN_WSALT];
  srtp_policy_t pol;
  srtp_err_status_t st;

  memset(&pol, 0, sizeof(pol));
  /* libsrtp wants key | salt in one buffer; it derives its session keys
   * during srtp_create and keeps no pointer to ours. */
  memcpy(master, key, PTV_KX_SRTP_KEY_LEN);
  memcpy(master + PTV_KX_SRTP_KEY_LEN, salt, PTV_KX_SRTP_SALT_LEN);
  srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtp);
  /* RTCP is never sent, but libsrtp derives an RTCP context anyway; give it
   * the same suite so no weaker default is ever instantiated. */
  srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtcp);
  /* A specific SSRC (not ssrc_any_inbound): packets with any other SSRC are
   * refused before any crypto, and the stream exists from the start, so
   * its rollover counter starts at 0 on both sides. */
  pol.ssrc.type = ssrc_specific;
  pol.ssrc.value = ssrc;
  pol.key = master;
  pol.window_size = PTV_SRTP_REPLAY_WINDOW;
  pol.allow_repeat_tx = 0; /* we never resend: a repeat would be a bug */
  pol.next = NULL;
  st = srtp_create(out, &pol);
  sodium_memzero(master, sizeof(master));
  if (st == srtp_err_status_alloc_fail) {
    return PTV_ERR_NOMEM;
  }
  return st == srtp_err_status_ok ? 0 : PTV_ERR_CRYPTO;
}

int ptv_srtp_init(ptv_srtp *s, const ptv_kx_keys *keys) {
  srtp_t tx = NULL, rx = NULL;
  int rv;

  if (s == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  memset(s, 0, sizeof(*s));
  if (keys == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  rv = ptv_srtp_global_init();
  if (rv != 0) {
    return rv;
  }
  rv = create_session(&tx, keys->tx_ssrc, keys->tx_key, keys->tx_salt);
  if (rv != 0) {
    return rv;
  }
  rv = create_session(&rx, keys->rx_ssrc, keys->rx_key, keys->rx_salt);
  if (rv != 0) {
    srtp_dealloc(tx);
    return rv;
  }
  s->tx = tx;
  s->rx = rx;
  s->tx_ssrc = keys->tx_ssrc;
  s->rx_ssrc = keys->rx_ssrc;
  s->sent = 0;
  return 0;
}



static int aligned4(const void *p) { return ((uintptr_t)p & 3u) == 0; }

int ptv_srtp_protect(ptv_srtp *s, const uint8_t *in, size_t len, uint8_t *out,
                     size_t cap) {
  uint8_t *buf;
  int n;

  if (s == NULL || s->tx == NULL || out == NULL || (in == NULL && len > 0) ||
      len > PTV_SRTP_MAX_PAYLOAD) {
    return PTV_ERR_INVALID_ARG;
  }
  if (cap < len + PTV_SRTP_OVERHEAD) {
    return PTV_ERR_NOBUF;
  }
  /* Fast path: build the packet in out itself when libsrtp's assumptions
   * (alignment, SRTP_MAX_TRAILER_LEN writable bytes) hold there. */
  if (aligned4(out) && cap >= PTV_SRTP_HDR_LEN + len + PTV_SRTP_LIB_SLACK) {
    buf = out;
    if (len > 0) {
      memmove(buf + PTV_SRTP_HDR_LEN, in, len); /* before the header: in
                                                   may alias out */
    }
  } else {
    buf = (uint8_t *)s->scratch;
    if (len > 0) {
      memcpy(buf + PTV_SRTP_HDR_LEN, in, len);
    }
  }
  buf[0] = RTP_B0;
  buf[1] = PTV_SRTP_PT; /* M=0 */
  /* libsrtp assumes a new stream starts below 2^15 (it guesses ROC 0
   * then); starting at 0 and counting up keeps sender and receiver ROC in
   * step. */
  ptv_be_put16(buf + 2, (uint16_t)s->sent);
  ptv_be_put32(buf + 4, (uint32_t)s->sent);
  ptv_be_put32(buf + 8, s->tx_ssrc);
  n = (int)(PTV_SRTP_HDR_LEN + len);
  if (srtp_protect((srtp_t)s->tx, buf, &n) != srtp_err_status_ok ||
      (size_t)n != len + PTV_SRTP_OVERHEAD) {
    return PTV_ERR_CRYPTO;
  }
  if (buf != out) {
    memcpy(out, buf, (size_t)n);
  }
  s->sent++;
  return n;
}

int ptv_srtp_unprotect(ptv_srtp *s, const uint8_t *in, size_t len,
                       uint8_t *out, size_t cap) {
  srtp_err_status_t st;
  uint8_t *buf;
  size_t plen;
  int n;

  if (s == NULL || s->rx == NULL || in == NULL || out == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  if (len == 0) {
    return PTV_ERR_SHORT;
  }
  if ((in[0] >> 6) != 2) {
    return PTV_ERR_MALFORMED; /* not RTP: let the caller demultiplex */
  }
  if (len < PTV_SRTP_OVERHEAD) {
    return PTV_ERR_SHORT;
  }
  if (len > PTV_SRTP_OVERHEAD + PTV_SRTP_MAX_PAYLOAD) {
    return PTV_ERR_MALFORMED;
  }
  /* We only ever send this exact header shape; anything else was altered
   * (or sent by someone else), so reject it without touching libsrtp. */
  if (in[0] != RTP_B0 || in[1] != PTV_SRTP_PT ||
      ptv_be_get32(in + 8) != s->rx_ssrc) {
    return PTV_ERR_CRYPTO;
  }
  plen = len - PTV_SRTP_OVERHEAD;
  if (cap < plen) {
    return PTV_ERR_NOBUF;
  }
  /* libsrtp decrypts in place: copy the packet to an aligned buffer. */
  if (aligned4(out) && cap >= len) {
    buf = out;
    memmove(buf, in, len);
  } else {
    buf = (uint8_t *)s->scratch;
    memcpy(buf, in, len);
  }
  n = (int)len;
  st = srtp_unprotect((srtp_t)s->rx, buf, &n);
  if (st != srtp_err_status_ok || (size_t)n != len - PTV_SRTP_TAG_LEN) {
    /* Never leave unauthenticated (possibly decrypted) bytes behind. */
    memset(buf, 0, len);
    if (st == srtp_err_status_replay_fail ||
        st == srtp_err_status_replay_old) {
      return PTV_ERR_REPLAY;
    }
    return PTV_ERR_CRYPTO;
  }
  if (plen > 0) {
    memmove(out, buf + PTV_SRTP_HDR_LEN, plen);
  }
  return (int)plen;
}

void ptv_srtp_free(ptv_srtp *s) {
  if (s == NULL) {
    return;
  }
  if (s->tx != NULL) {
    srtp_dealloc((srtp_t)s->tx);
  }
  if (s->rx != NULL) {
    srtp_dealloc((srtp_t)s->rx);
  }
  sodium_memzero(s, sizeof(*s));
}
