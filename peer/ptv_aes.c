/* ptv_aes.c -- libsrtp's AES cipher types on OpenSSL. See ptv_aes.h.
 *
 * libsrtp 2.x drives an AEAD cipher so: init(key) once per session key;
 * then per packet set_iv(iv, direction), set_aad (one or more calls),
 * encrypt(buf, len) in place followed by get_tag, or decrypt(buf, len)
 * with the tag at the end of buf, which it checks and strips. An ICM
 * (counter mode) cipher: init(key | salt), then set_iv and encrypt (=
 * decrypt). One EVP context per cipher holds the key schedule; each packet
 * only sets the IV. */
#include "ptv_aes.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>
#include <srtp2/cipher.h>
#include <srtp2/srtp.h>

#include "ptv_err.h"

#define GCM_IV_LEN 12
#define GCM_TAG_MAX 16

/* First in both kinds of state: the EVP context (the key schedule) and
 * which AES mode and size it runs. */
typedef struct {
  EVP_CIPHER_CTX *ctx;
  const EVP_CIPHER *evp;
} evp_head;

typedef struct {
  evp_head h;            /* AES-128-GCM or AES-256-GCM */
  int tag_len;           /* 16, or 8 (libsrtp's *_8_auth policies) */
  int dir;               /* srtp_direction_*: set by set_iv */
  int ready;             /* a key was set */
  uint8_t tag[GCM_TAG_MAX];
} gcm;

static const srtp_cipher_type_t k_gcm128, k_gcm256, k_icm128, k_icm256;
static int g_installed;

/* A libsrtp cipher with a zeroed state of `size` bytes that starts with an
 * evp_head, for `evp`; key_len counts the salt (libsrtp derives that many
 * bytes), algorithm is the type id (libsrtp takes its AEAD path on the GCM
 * ones). */
static srtp_err_status_t cipher_new(srtp_cipher_pointer_t *cp, const srtp_cipher_type_t *type,
                                    const EVP_CIPHER *evp, int key_len, int algorithm,
                                    size_t size, void **state) {
  srtp_cipher_t *c = calloc(1, sizeof(*c));
  evp_head *h = calloc(1, size);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!c || !h || !ctx) {
    free(c);
    free(h);
    EVP_CIPHER_CTX_free(ctx);
    return srtp_err_status_alloc_fail;
  }
  h->ctx = ctx;
  h->evp = evp;
  c->type = type;
  c->state = h;
  c->key_len = key_len;
  c->algorithm = algorithm;
  *cp = c;
  *state = h;
  return srtp_err_status_ok;
}

static srtp_err_status_t cipher_free(srtp_cipher_pointer_t c, size_t size) {
  if (!c) return srtp_err_status_ok;
  evp_head *h = c->state;
  if (h) {
    EVP_CIPHER_CTX_free(h->ctx); /* clears the key schedule */
    sodium_memzero(h, size);
    free(h);
  }
  free(c);
  return srtp_err_status_ok;
}

static srtp_err_status_t gcm_alloc(srtp_cipher_pointer_t *cp, int key_len, int tag_len) {
  const srtp_cipher_type_t *type;
  const EVP_CIPHER *evp;
  int algorithm;
  if (key_len == SRTP_AES_GCM_128_KEY_LEN_WSALT) {
    type = &k_gcm128;
    evp = EVP_aes_128_gcm();
    algorithm = SRTP_AES_GCM_128;
  } else if (key_len == SRTP_AES_GCM_256_KEY_LEN_WSALT) {
    type = &k_gcm256;
    evp = EVP_aes_256_gcm();
    algorithm = SRTP_AES_GCM_256;
  } else {
    return srtp_err_status_bad_param;
  }
  if (tag_len != 16 && tag_len != 8) return srtp_err_status_bad_param;
  void *st;
  srtp_err_status_t rv = cipher_new(cp, type, evp, key_len, algorithm, sizeof(gcm), &st);
  if (rv != srtp_err_status_ok) return rv;
  gcm *g = st;
  g->tag_len = tag_len;
  g->dir = srtp_direction_any;
  return srtp_err_status_ok;
}

static srtp_err_status_t gcm_dealloc(srtp_cipher_pointer_t c) { return cipher_free(c, sizeof(gcm)); }

/* key: the session key without the salt (libsrtp folds the salt into the IV). */
static srtp_err_status_t gcm_init(void *state, const uint8_t *key) {
  gcm *g = state;
  g->ready = 0;
  if (EVP_CipherInit_ex(g->h.ctx, g->h.evp, NULL, key, NULL, 1) != 1) return srtp_err_status_cipher_fail;
  g->ready = 1;
  g->dir = srtp_direction_any;
  return srtp_err_status_ok;
}

static srtp_err_status_t gcm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t dir) {
  gcm *g = state;
  if (!g->ready || (dir != srtp_direction_encrypt && dir != srtp_direction_decrypt))
    return srtp_err_status_bad_param;
  /* The IV also restarts GHASH: any AAD from an abandoned packet is gone. */
  if (EVP_CipherInit_ex(g->h.ctx, NULL, NULL, NULL, iv, dir == srtp_direction_encrypt) != 1) {
    g->dir = srtp_direction_any;
    return srtp_err_status_cipher_fail;
  }
  g->dir = dir;
  return srtp_err_status_ok;
}

static srtp_err_status_t gcm_set_aad(void *state, const uint8_t *aad, uint32_t len) {
  gcm *g = state;
  int outl;
  if (g->dir == srtp_direction_any) return srtp_err_status_bad_param;
  if (len > 0 && EVP_CipherUpdate(g->h.ctx, NULL, &outl, aad, (int)len) != 1)
    return srtp_err_status_cipher_fail;
  return srtp_err_status_ok;
}

static srtp_err_status_t gcm_encrypt(void *state, uint8_t *buf, unsigned int *len) {
  gcm *g = state;
  int outl = 0, fl = 0;
  if (g->dir != srtp_direction_encrypt || *len > (unsigned)INT32_MAX) return srtp_err_status_bad_param;
  g->dir = srtp_direction_any; /* one packet per IV */
  if (*len > 0 && EVP_CipherUpdate(g->h.ctx, buf, &outl, buf, (int)*len) != 1)
    return srtp_err_status_cipher_fail;
  /* GCM's final writes nothing; the tag waits for get_tag (libsrtp puts it
   * after the encrypted bytes). */
  if (EVP_CipherFinal_ex(g->h.ctx, buf + outl, &fl) != 1 ||
      EVP_CIPHER_CTX_ctrl(g->h.ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_MAX, g->tag) != 1)
    return srtp_err_status_cipher_fail;
  return srtp_err_status_ok;
}

static srtp_err_status_t gcm_get_tag(void *state, uint8_t *tag, uint32_t *len) {
  gcm *g = state;
  memcpy(tag, g->tag, (size_t)g->tag_len); /* a short tag is the full one truncated */
  *len = (uint32_t)g->tag_len;
  return srtp_err_status_ok;
}

/* buf: ciphertext then tag; on success *len loses the tag. */
static srtp_err_status_t gcm_decrypt(void *state, uint8_t *buf, unsigned int *len) {
  gcm *g = state;
  int outl = 0, fl = 0;
  if (g->dir != srtp_direction_decrypt || *len > (unsigned)INT32_MAX) return srtp_err_status_bad_param;
  g->dir = srtp_direction_any;
  if (*len < (unsigned)g->tag_len) return srtp_err_status_auth_fail;
  unsigned int clen = *len - (unsigned)g->tag_len;
  if (EVP_CIPHER_CTX_ctrl(g->h.ctx, EVP_CTRL_GCM_SET_TAG, g->tag_len, buf + clen) != 1)
    return srtp_err_status_cipher_fail;
  if (clen > 0 && EVP_CipherUpdate(g->h.ctx, buf, &outl, buf, (int)clen) != 1)
    return srtp_err_status_cipher_fail;
  if (EVP_CipherFinal_ex(g->h.ctx, buf + outl, &fl) != 1) return srtp_err_status_auth_fail;
  *len = clen;
  return srtp_err_status_ok;
}

/* ---- AES-ICM (RFC 3711 counter mode): libsrtp's key derivation ---- */

typedef struct {
  evp_head h; /* AES-128-CTR or AES-256-CTR */
  int key_size;
  int ready;
  uint8_t offset[16]; /* the salt, its last two bytes zero: the block counter */
} icm;

static srtp_err_status_t icm_alloc(srtp_cipher_pointer_t *cp, int key_len, int tag_len) {
  const srtp_cipher_type_t *type;
  const EVP_CIPHER *evp;
  int algorithm, key_size;
  (void)tag_len;
  if (key_len == SRTP_AES_ICM_128_KEY_LEN_WSALT) {
    type = &k_icm128;
    evp = EVP_aes_128_ctr();
    algorithm = SRTP_AES_ICM_128;
    key_size = 16;
  } else if (key_len == SRTP_AES_ICM_256_KEY_LEN_WSALT) {
    type = &k_icm256;
    evp = EVP_aes_256_ctr();
    algorithm = SRTP_AES_ICM_256;
    key_size = 32;
  } else {
    return srtp_err_status_bad_param;
  }
  void *st;
  srtp_err_status_t rv = cipher_new(cp, type, evp, key_len, algorithm, sizeof(icm), &st);
  if (rv != srtp_err_status_ok) return rv;
  ((icm *)st)->key_size = key_size;
  return srtp_err_status_ok;
}

static srtp_err_status_t icm_dealloc(srtp_cipher_pointer_t c) { return cipher_free(c, sizeof(icm)); }

/* key: the key, then the 14-byte salt. */
static srtp_err_status_t icm_init(void *state, const uint8_t *key) {
  icm *k = state;
  k->ready = 0;
  memset(k->offset, 0, sizeof(k->offset));
  memcpy(k->offset, key + k->key_size, SRTP_SALT_LEN);
  if (EVP_EncryptInit_ex(k->h.ctx, k->h.evp, NULL, key, NULL) != 1) return srtp_err_status_cipher_fail;
  k->ready = 1;
  return srtp_err_status_ok;
}

static srtp_err_status_t icm_set_iv(void *state, uint8_t *iv, srtp_cipher_direction_t dir) {
  icm *k = state;
  uint8_t ctr[16];
  (void)dir; /* counter mode: the same either way */
  if (!k->ready) return srtp_err_status_bad_param;
  for (int i = 0; i < 16; i++) ctr[i] = k->offset[i] ^ iv[i];
  return EVP_EncryptInit_ex(k->h.ctx, NULL, NULL, NULL, ctr) == 1 ? srtp_err_status_ok
                                                                 : srtp_err_status_cipher_fail;
}

static srtp_err_status_t icm_crypt(void *state, uint8_t *buf, unsigned int *len) {
  icm *k = state;
  int outl = 0;
  if (!k->ready || *len > (unsigned)INT32_MAX) return srtp_err_status_bad_param;
  if (*len > 0 && EVP_EncryptUpdate(k->h.ctx, buf, &outl, buf, (int)*len) != 1)
    return srtp_err_status_cipher_fail;
  return srtp_err_status_ok;
}

/* Known answers, the GCM specification's (McGrew and Viega) test cases 4
 * (AES-128) and 16 (AES-256): 60 bytes, 20 bytes of AAD. libsrtp's key
 * buffers carry the 12-byte salt after the key; the cipher ignores it. */
#define TC_P                                                                                   \
  "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24" \
  "49a6b525b16aedf5aa0de657ba637b39"
#define TC_A "feedfacedeadbeeffeedfacedeadbeefabaddad2"
#define TC_IV "cafebabefacedbaddecaf888"
#define TC_K128 "feffe9928665731c6d6a8f9467308308"
#define TC_C128                                                                                \
  "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5a" \
  "ac84aa051ba30b396a0aac973d58e091"                                                           \
  "5bc94fbc3221a5db94fae95ae7121a47"
#define TC_C256                                                                                \
  "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10" \
  "56828838c5f61e6393ba7a0abcc9f662"                                                           \
  "76fc6ece0f4e1768cddf8853bb2d551b"

/* RFC 3711 B.2 (AES-128) and libsrtp's AES-256 case: the keystream of
 * 32 zero bytes at IV 0 with salt f0f1...fd. */
#define TC_SALT "f0f1f2f3f4f5f6f7f8f9fafbfcfd"
#define TC_ICM_K128 "2b7e151628aed2a6abf7158809cf4f3c"
#define TC_ICM_C128 "e03ead0935c95e80e166b16dd92b4eb4d23513162b02d0f72a43a2fe4a5f97ab"
#define TC_ICM_K256 "57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98"
#define TC_ICM_C256 "92bdd28a93c3f52511c677d08b5515a49da71b2378a854f67050756ded165bac"

static uint8_t tc_p[60], tc_a[20], tc_iv[GCM_IV_LEN];
static uint8_t tc_k128[SRTP_AES_GCM_128_KEY_LEN_WSALT], tc_c128[76];
static uint8_t tc_k256[SRTP_AES_GCM_256_KEY_LEN_WSALT], tc_c256[76];

static uint8_t tc_zero[32], tc_iv0[16];
static uint8_t tc_ik128[SRTP_AES_ICM_128_KEY_LEN_WSALT], tc_ic128[32];
static uint8_t tc_ik256[SRTP_AES_ICM_256_KEY_LEN_WSALT], tc_ic256[32];

/* The same ciphertext with the tag cut to 8 bytes, then the full one. */
static srtp_cipher_test_case_t tc128_8 = {SRTP_AES_GCM_128_KEY_LEN_WSALT, tc_k128, tc_iv, 60, tc_p, 68,
                                          tc_c128, 20, tc_a, 8, NULL};
static srtp_cipher_test_case_t tc128 = {SRTP_AES_GCM_128_KEY_LEN_WSALT, tc_k128, tc_iv, 60, tc_p, 76,
                                        tc_c128, 20, tc_a, 16, &tc128_8};
static srtp_cipher_test_case_t tc256_8 = {SRTP_AES_GCM_256_KEY_LEN_WSALT, tc_k256, tc_iv, 60, tc_p, 68,
                                          tc_c256, 20, tc_a, 8, NULL};
static srtp_cipher_test_case_t tc256 = {SRTP_AES_GCM_256_KEY_LEN_WSALT, tc_k256, tc_iv, 60, tc_p, 76,
                                        tc_c256, 20, tc_a, 16, &tc256_8};

static srtp_cipher_test_case_t tci128 = {SRTP_AES_ICM_128_KEY_LEN_WSALT, tc_ik128, tc_iv0, 32, tc_zero, 32,
                                        tc_ic128, 0, NULL, 0, NULL};
static srtp_cipher_test_case_t tci256 = {SRTP_AES_ICM_256_KEY_LEN_WSALT, tc_ik256, tc_iv0, 32, tc_zero, 32,
                                        tc_ic256, 0, NULL, 0, NULL};

static const srtp_cipher_type_t k_gcm128 = {
    gcm_alloc, gcm_dealloc, gcm_init,    gcm_set_aad, gcm_encrypt, gcm_decrypt, gcm_set_iv,
    gcm_get_tag, "AES-128 GCM using OpenSSL (PeerTV)", &tc128, SRTP_AES_GCM_128};
static const srtp_cipher_type_t k_gcm256 = {
    gcm_alloc, gcm_dealloc, gcm_init,    gcm_set_aad, gcm_encrypt, gcm_decrypt, gcm_set_iv,
    gcm_get_tag, "AES-256 GCM using OpenSSL (PeerTV)", &tc256, SRTP_AES_GCM_256};
static const srtp_cipher_type_t k_icm128 = {
    icm_alloc, icm_dealloc, icm_init, NULL, icm_crypt, icm_crypt, icm_set_iv, NULL,
    "AES-128 ICM using OpenSSL (PeerTV)", &tci128, SRTP_AES_ICM_128};
static const srtp_cipher_type_t k_icm256 = {
    icm_alloc, icm_dealloc, icm_init, NULL, icm_crypt, icm_crypt, icm_set_iv, NULL,
    "AES-256 ICM using OpenSSL (PeerTV)", &tci256, SRTP_AES_ICM_256};

static int unhex(uint8_t *out, size_t cap, const char *hex) {
  size_t n = 0;
  return sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &n, NULL) == 0 && n == cap ? 0 : -1;
}

int ptv_aes_install(void) {
  if (g_installed) return 0;
  memset(tc_k128, 0, sizeof(tc_k128));
  memset(tc_k256, 0, sizeof(tc_k256));
  if (unhex(tc_p, sizeof(tc_p), TC_P) || unhex(tc_a, sizeof(tc_a), TC_A) ||
      unhex(tc_iv, sizeof(tc_iv), TC_IV) || unhex(tc_k128, 16, TC_K128) ||
      unhex(tc_k256, 16, TC_K128) || unhex(tc_k256 + 16, 16, TC_K128) ||
      unhex(tc_c128, sizeof(tc_c128), TC_C128) || unhex(tc_c256, sizeof(tc_c256), TC_C256) ||
      unhex(tc_ik128, 16, TC_ICM_K128) || unhex(tc_ik128 + 16, SRTP_SALT_LEN, TC_SALT) ||
      unhex(tc_ic128, 32, TC_ICM_C128) || unhex(tc_ik256, 32, TC_ICM_K256) ||
      unhex(tc_ik256 + 32, SRTP_SALT_LEN, TC_SALT) || unhex(tc_ic256, 32, TC_ICM_C256))
    return PTV_ERR_CRYPTO;
  /* libsrtp runs both types' tests, ours and its own, before replacing;
   * a refused one stays libsrtp's. */
  int ok = srtp_replace_cipher_type(&k_gcm128, SRTP_AES_GCM_128) == srtp_err_status_ok;
  ok &= srtp_replace_cipher_type(&k_gcm256, SRTP_AES_GCM_256) == srtp_err_status_ok;
  ok &= srtp_replace_cipher_type(&k_icm128, SRTP_AES_ICM_128) == srtp_err_status_ok;
  ok &= srtp_replace_cipher_type(&k_icm256, SRTP_AES_ICM_256) == srtp_err_status_ok;
  if (!ok) return PTV_ERR_CRYPTO;
  g_installed = 1;
  return 0;
}

int ptv_aes_installed(void) { return g_installed; }
