/* ptv_chunksig.h -- the source's signature on a chunk, made and checked in
 * one place: Ed25519ph (RFC 8032, pre-hashed, libsodium) over the canonical
 * header ptv_wire_chunk_sigbase() then the payload, so it is computed without
 * copying the payload next to the header. */
#ifndef PTV_CHUNKSIG_H
#define PTV_CHUNKSIG_H

#include <stdint.h>

#include "ptv_wire.h"

/* Signs c (its payload must be there) with the Ed25519 secret key sk (64
 * bytes, libsodium's layout) into sig (PTV_WIRE_SIGLEN bytes). Returns 0 or
 * PTV_ERR_INVALID_ARG (no payload), PTV_ERR_CRYPTO. */
int ptv_chunksig_sign(const ptv_msg_chunk *c, const uint8_t *sk, uint8_t *sig);

/* Checks c->sig against the publisher key pk (32 bytes). Returns 0, or
 * PTV_ERR_BAD_SIG (no signature, no payload, or it does not verify). */
int ptv_chunksig_verify(const ptv_msg_chunk *c, const uint8_t *pk);

#endif
