/* ptv_chunksig.c -- see ptv_chunksig.h. */
#include "ptv_chunksig.h"

#include <sodium.h>

#include "ptv_err.h"

static void absorb(crypto_sign_state *st, const ptv_msg_chunk *c) {
  uint8_t base[PTV_WIRE_SIGBASE_LEN];
  ptv_wire_chunk_sigbase(c, base);
  crypto_sign_init(st);
  crypto_sign_update(st, base, sizeof(base));
  crypto_sign_update(st, c->payload, c->payload_len);
}

int ptv_chunksig_sign(const ptv_msg_chunk *c, const uint8_t *sk, uint8_t *sig) {
  crypto_sign_state st;
  if (!c->payload && c->payload_len) return PTV_ERR_INVALID_ARG;
  absorb(&st, c);
  return crypto_sign_final_create(&st, sig, NULL, sk) == 0 ? 0 : PTV_ERR_CRYPTO;
}

int ptv_chunksig_verify(const ptv_msg_chunk *c, const uint8_t *pk) {
  crypto_sign_state st;
  if (!c->sig || (!c->payload && c->payload_len)) return PTV_ERR_BAD_SIG;
  absorb(&st, c);
  /* libsodium takes the signature non-const; it only reads it */
  return crypto_sign_final_verify(&st, (unsigned char *)(uintptr_t)c->sig, pk) == 0
             ? 0
             : PTV_ERR_BAD_SIG;
}
