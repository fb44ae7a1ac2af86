/* ptv_kx.c -- authenticated ephemeral key exchange (libsodium). See the
 * header for the hello format and the key schedule. */
#include "ptv_kx.h"

#include <string.h>

#include <sodium.h>

#include "ptv_be.h"
#include "ptv_err.h"

#define DOMAIN "peertv-kx-v1"
#define DOMAIN_LEN (sizeof(DOMAIN) - 1)
#define TH_LABEL "peertv-kx-v1 th"
#define LABEL_C2S "peertv-srtp-c2s"
#define LABEL_S2C "peertv-srtp-s2c"

#define OFF_IDPK 1
#define OFF_EPH 33
#define OFF_SIG 65
/* Signed transcript: domain | version | 2 ids | id pk | eph pk | ctx hash */
#define TBS_LEN (DOMAIN_LEN + 1 + 4 + 4 + 32 + 32 + 32)

enum { ST_NONE = 0, ST_INIT = 1, ST_DONE = 2 };



static void build_tbs(uint8_t tbs[TBS_LEN], uint32_t sender, uint32_t receiver,
                      const uint8_t idpk[32], const uint8_t eph[32],
                      const uint8_t ctx_hash[32]) {
  uint8_t *p = tbs;

  memcpy(p, DOMAIN, DOMAIN_LEN);
  p += DOMAIN_LEN;
  *p++ = PTV_KX_VERSION;
  ptv_be_put32(p, sender);
  p += 4;
  ptv_be_put32(p, receiver);
  p += 4;
  memcpy(p, idpk, 32);
  p += 32;
  memcpy(p, eph, 32);
  p += 32;
  memcpy(p, ctx_hash, 32);
}

int ptv_kx_init(ptv_kx *kx, const ptv_identity *me, uint32_t my_id,
                uint32_t peer_id, const uint8_t peer_pk[PTV_IDENTITY_PK_LEN],
                const uint8_t *context, size_t ctxlen) {
  uint8_t tbs[TBS_LEN];
  static const uint8_t empty[1] = {0};

  if (kx == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  sodium_memzero(kx, sizeof(*kx));
  if (me == NULL || peer_pk == NULL || (context == NULL && ctxlen != 0) ||
      my_id == peer_id) {
    return PTV_ERR_INVALID_ARG;
  }
  if (sodium_init() < 0) {
    return PTV_ERR_CRYPTO;
  }
  kx->my_id = my_id;
  kx->peer_id = peer_id;
  memcpy(kx->peer_pk, peer_pk, sizeof(kx->peer_pk));
  /* Hash the context once so the transcript has a fixed size and any
   * context length works without allocation. */
  crypto_generichash(kx->ctx_hash, sizeof(kx->ctx_hash),
                     context != NULL ? context : empty, ctxlen, NULL, 0);
  if (crypto_kx_keypair(kx->eph_pk, kx->eph_sk) != 0) {
    goto fail;
  }
  kx->hello[0] = PTV_KX_VERSION;
  memcpy(kx->hello + OFF_IDPK, me->pk, 32);
  memcpy(kx->hello + OFF_EPH, kx->eph_pk, 32);
  build_tbs(tbs, my_id, peer_id, me->pk, kx->eph_pk, kx->ctx_hash);
  if (crypto_sign_detached(kx->hello + OFF_SIG, NULL, tbs, sizeof(tbs),
                           me->sk) != 0) {
    goto fail;
  }
  kx->state = ST_INIT;
  return 0;
fail:
  sodium_memzero(kx, sizeof(*kx));
  return PTV_ERR_CRYPTO;
}

int ptv_kx_hello(const ptv_kx *kx, uint8_t *out, size_t cap) {
  if (kx == NULL || out == NULL || kx->state != ST_INIT) {
    return PTV_ERR_INVALID_ARG;
  }
  if (cap < PTV_KX_HELLO_LEN) {
    return PTV_ERR_NOBUF;
  }
  memcpy(out, kx->hello, PTV_KX_HELLO_LEN);
  return PTV_KX_HELLO_LEN;
}

/* okm = BLAKE2b-256(key = k, msg = label | th) -> key | salt | ssrc */
static void derive_dir(const uint8_t k[32], const char *label,
                       const uint8_t th[32], uint8_t key[16], uint8_t salt[12],
                       uint32_t *ssrc) {
  crypto_generichash_state st;
  uint8_t okm[32];

  crypto_generichash_init(&st, k, 32, sizeof(okm));
  crypto_generichash_update(&st, (const uint8_t *)label, strlen(label));
  crypto_generichash_update(&st, th, 32);
  crypto_generichash_final(&st, okm, sizeof(okm));
  memcpy(key, okm, 16);
  memcpy(salt, okm + 16, 12);
  *ssrc = ptv_be_get32(okm + 28);
  sodium_memzero(okm, sizeof(okm));
  sodium_memzero(&st, sizeof(st));
}

int ptv_kx_finish(ptv_kx *kx, const uint8_t *peer_hello, size_t len,
                  ptv_kx_keys *out) {
  uint8_t tbs[TBS_LEN];
  uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
  uint8_t th[32];
  crypto_generichash_state st;
  int client, rc;

  if (out != NULL) {
    sodium_memzero(out, sizeof(*out));
  }
  if (kx == NULL || out == NULL || (peer_hello == NULL && len != 0) ||
      kx->state != ST_INIT) {
    return PTV_ERR_INVALID_ARG;
  }
  /* Version first so a future, longer hello is reported as VERSION. */
  if (len == 0) {
    return PTV_ERR_SHORT;
  }
  if (peer_hello[0] != PTV_KX_VERSION) {
    return PTV_ERR_VERSION;
  }
  if (len < PTV_KX_HELLO_LEN) {
    return PTV_ERR_SHORT;
  }
  if (len > PTV_KX_HELLO_LEN) {
    return PTV_ERR_MALFORMED;
  }
  /* Pinning the identity key: a valid signature by anyone else is a
   * different node (or an attacker) and must not be accepted. */
  if (sodium_memcmp(peer_hello + OFF_IDPK, kx->peer_pk, 32) != 0) {
    return PTV_ERR_BAD_SIG;
  }
  /* The peer signed with itself as sender and us as receiver. */
  build_tbs(tbs, kx->peer_id, kx->my_id, kx->peer_pk, peer_hello + OFF_EPH,
            kx->ctx_hash);
  if (crypto_sign_verify_detached(peer_hello + OFF_SIG, tbs, sizeof(tbs),
                                  kx->peer_pk) != 0) {
    return PTV_ERR_BAD_SIG;
  }

  client = kx->my_id < kx->peer_id;
  if (client) {
    rc = crypto_kx_client_session_keys(rx, tx, kx->eph_pk, kx->eph_sk,
                                       peer_hello + OFF_EPH);
  } else {
    rc = crypto_kx_server_session_keys(rx, tx, kx->eph_pk, kx->eph_sk,
                                       peer_hello + OFF_EPH);
  }
  if (rc != 0) {
    /* X25519 gave the all-zero point: small-order key, signed anyway. */
    return PTV_ERR_CRYPTO;
  }

  /* Transcript hash in client, server order: identical on both sides. */
  crypto_generichash_init(&st, NULL, 0, sizeof(th));
  crypto_generichash_update(&st, (const uint8_t *)TH_LABEL,
                            sizeof(TH_LABEL) - 1);
  crypto_generichash_update(&st, client ? kx->hello : peer_hello,
                            PTV_KX_HELLO_LEN);
  crypto_generichash_update(&st, client ? peer_hello : kx->hello,
                            PTV_KX_HELLO_LEN);
  crypto_generichash_update(&st, kx->ctx_hash, sizeof(kx->ctx_hash));
  crypto_generichash_final(&st, th, sizeof(th));

  /* crypto_kx: the client's tx is the server's rx (= the c2s key). */
  derive_dir(tx, client ? LABEL_C2S : LABEL_S2C, th, out->tx_key,
             out->tx_salt, &out->tx_ssrc);
  derive_dir(rx, client ? LABEL_S2C : LABEL_C2S, th, out->rx_key,
             out->rx_salt, &out->rx_ssrc);
  memcpy(out->session_hash, th, sizeof(th));
  out->my_id = kx->my_id;
  out->peer_id = kx->peer_id;

  sodium_memzero(rx, sizeof(rx));
  sodium_memzero(tx, sizeof(tx));
  sodium_memzero(&st, sizeof(st));
  /* Forward secrecy: nothing left can recompute the session keys. */
  sodium_memzero(kx->eph_sk, sizeof(kx->eph_sk));
  kx->state = ST_DONE;
  return 0;
}

void ptv_kx_wipe(ptv_kx *kx) {
  if (kx != NULL) {
    sodium_memzero(kx, sizeof(*kx));
  }
}

void ptv_kx_keys_wipe(ptv_kx_keys *keys) {
  if (keys != NULL) {
    sodium_memzero(keys, sizeof(*keys));
  }
}
