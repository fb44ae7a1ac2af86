/* ptv_identity.h -- a node's long-term Ed25519 identity key.
 *
 * Every node (peer, source, tracker) has one Ed25519 key pair. The public
 * key is what the tracker advertises for the node; the secret key signs key
 * exchange hellos (ptv_kx.h). All crypto is libsodium's; each function calls
 * sodium_init() itself, which is idempotent.
 *
 * Key file format (exactly PTV_IDENTITY_FILE_LEN = 72 bytes, binary):
 *   "PTVID01\n" (8 bytes) | Ed25519 seed (32) | Ed25519 public key (32)
 * The stored public key lets a load detect a corrupt seed. */
#ifndef PTV_IDENTITY_H
#define PTV_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PTV_IDENTITY_PK_LEN 32  /* Ed25519 public key */
#define PTV_IDENTITY_SK_LEN 64  /* libsodium Ed25519 secret key (seed | pk) */
#define PTV_IDENTITY_SIG_LEN 64 /* Ed25519 signature */
#define PTV_IDENTITY_FILE_LEN 72
/* Fingerprint: 80 bits of BLAKE2b(pk) in lower-case RFC 4648 base32, in
 * four groups of four, e.g. "k3fq-7zpa-m2xd-c6se" (19 chars + NUL). */
#define PTV_IDENTITY_FP_SIZE 20

typedef struct {
  uint8_t pk[PTV_IDENTITY_PK_LEN];
  uint8_t sk[PTV_IDENTITY_SK_LEN];
} ptv_identity;

/* Fills *id with a fresh random key pair.
 * Returns 0, PTV_ERR_INVALID_ARG (id NULL) or PTV_ERR_CRYPTO (sodium_init
 * or key generation failed). */
int ptv_identity_generate(ptv_identity *id);

/* Loads the key pair stored at path; if no file exists there, generates one
 * and stores it. A new file is written to a temporary file (mode 0600) in
 * the same directory, fsync'ed, then linked into place, so a reader never
 * sees a half-written key and two processes racing to create it end up
 * with the same key (the loser loads the winner's file).
 * An existing file is refused unless it is a regular file with no group or
 * other permission bits (mode 0600 or 0400) and holds exactly the format
 * above with a public key matching its seed.
 * On failure a one-line English explanation naming the path is written to
 * errbuf (if errbuf is non-NULL and errlen > 0) and *id is wiped.
 * Returns 0, or
 *   PTV_ERR_INVALID_ARG  id or path NULL or path empty;
 *   PTV_ERR_IO           the OS refused an operation (e.g. the directory
 *                        does not exist or is not writable), or the file is
 *                        group/world accessible or not a regular file;
 *   PTV_ERR_MALFORMED    wrong size, wrong magic, or seed/pk mismatch;
 *   PTV_ERR_CRYPTO       sodium_init or key generation failed. */
int ptv_identity_load_or_create(ptv_identity *id, const char *path,
                                char *errbuf, size_t errlen);

/* Returns a pointer to the PTV_IDENTITY_PK_LEN-byte public key inside *id
 * (valid as long as *id is). id must not be NULL. */
const uint8_t *ptv_identity_pk(const ptv_identity *id);

/* Writes the Ed25519 signature of msg[0..len) to sig (64 bytes).
 * msg may be NULL when len is 0.
 * Returns 0, PTV_ERR_INVALID_ARG (NULL argument) or PTV_ERR_CRYPTO. */
int ptv_identity_sign(const ptv_identity *id, const uint8_t *msg, size_t len,
                      uint8_t sig[PTV_IDENTITY_SIG_LEN]);

/* Checks sig over msg[0..len) against public key pk (libsodium's strict
 * verification: non-canonical signatures and small-order keys fail).
 * Returns 0 if valid, PTV_ERR_BAD_SIG if not, PTV_ERR_INVALID_ARG for a
 * NULL argument, PTV_ERR_CRYPTO if sodium_init failed. */
int ptv_identity_verify(const uint8_t pk[PTV_IDENTITY_PK_LEN],
                        const uint8_t *msg, size_t len,
                        const uint8_t sig[PTV_IDENTITY_SIG_LEN]);

/* Writes the printable fingerprint of pk (see PTV_IDENTITY_FP_SIZE) to
 * out, NUL-terminated. Meant for logs and for humans comparing keys.
 * Returns 0, PTV_ERR_INVALID_ARG (NULL argument), PTV_ERR_NOBUF (cap <
 * PTV_IDENTITY_FP_SIZE) or PTV_ERR_CRYPTO (sodium_init failed). */
int ptv_identity_fingerprint(const uint8_t pk[PTV_IDENTITY_PK_LEN], char *out,
                             size_t cap);

/* Zeroes *id with sodium_memzero (not optimised away). NULL is a no-op. */
void ptv_identity_wipe(ptv_identity *id);

#ifdef __cplusplus
}
#endif
#endif
