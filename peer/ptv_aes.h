/* ptv_aes.h -- the AES under libsrtp, from OpenSSL's libcrypto.
 *
 * Debian's libsrtp2 is built against NSS, whose PKCS#11 layer sets up a
 * fresh session and key context for every packet: on a peer of a 30-peer
 * swarm NSS took about 14% of the process's CPU, the AES itself 2%. And
 * each NSS cipher holds an NSS "context": when the last one goes, NSS shuts
 * down and the next srtp_create loads its modules again (dlopen).
 *
 * libsrtp has a public hook for this, srtp_replace_cipher_type():
 * ptv_aes_install registers cipher types that keep one OpenSSL EVP context
 * per libsrtp cipher (key schedule made once, at init) for
 *   AES-128-GCM and AES-256-GCM (every packet of a ptv_srtp session), and
 *   AES-128-ICM and AES-256-ICM (libsrtp's key derivation for them),
 * so NSS is no longer used at all. The SRTP packet format, key derivation,
 * replay protection and all else stay libsrtp's; the bytes on the wire are
 * the same.
 *
 * Before it accepts a replacement libsrtp runs the type's own known-answer
 * tests (ours: the GCM specification's test cases 4 and 16 with 16- and
 * 8-byte tags, RFC 3711's AES-CM vectors) and those of the type it
 * replaces, plus random round trips, and refuses it on any mismatch. */
#ifndef PTV_AES_H
#define PTV_AES_H

#ifdef __cplusplus
extern "C" {
#endif

/* Replaces libsrtp's AES-GCM and AES-ICM (128 and 256) cipher types. Call
 * after srtp_init() and before any srtp_create(), from one thread
 * (ptv_srtp_global_init does). Returns 0, or PTV_ERR_CRYPTO if libsrtp
 * refused a replacement (a self-test failed); libsrtp then keeps its own
 * type for that one, which is correct, only slower. Calling it again after
 * success is a no-op. */
int ptv_aes_install(void);

/* 1 if ptv_aes_install succeeded in this process, else 0. */
int ptv_aes_installed(void);

#ifdef __cplusplus
}
#endif
#endif
