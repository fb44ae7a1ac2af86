/* test_crypto.c -- unit tests for the link crypto: identity keys
 * (ptv_identity), the authenticated key exchange (ptv_kx) and SRTP
 * protection of datagrams (ptv_srtp).
 *
 * identity: key file round trip, mode 0600 on creation and refusal of
 *   group/world-accessible files, corrupt/truncated files refused, missing
 *   directory, sign/verify with bit flips, fingerprints.
 * kx: both sides derive crossed keys, fresh sessions give fresh keys,
 *   hellos by a third key / for swapped ids / another context / reflected
 *   are BAD_SIG and do not break the exchange, bad lengths and versions,
 *   and a hello built by hand from the documented format is accepted.
 * srtp: round trips of every size 0..1200 (in place, unaligned, tight
 *   buffers), no plaintext in the output, every single-bit flip rejected,
 *   replays and too-old packets rejected, packets from another session
 *   rejected, 70,000 packets across the sequence-number rollover, and
 *   reordering within the replay window. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ptv_err.h"
#include "ptv_identity.h"
#include "ptv_kx.h"
#include "ptv_srtp.h"

#define ID_A 7u
#define ID_B 42u
static const char CTX[] = "ufragA:ufragB:channel-1";

/* ---- helpers ---------------------------------------------------------------- */

typedef struct {
  char dir[64];
  char path[128];
} tmpdir;

static int setup_dir(void **state) {
  tmpdir *t = calloc(1, sizeof(*t));

  if (t == NULL) {
    return -1;
  }
  strcpy(t->dir, "/tmp/ptv-test-crypto-XXXXXX");
  if (mkdtemp(t->dir) == NULL) {
    free(t);
    return -1;
  }
  snprintf(t->path, sizeof(t->path), "%s/id.key", t->dir);
  *state = t;
  return 0;
}

static int teardown_dir(void **state) {
  tmpdir *t = *state;

  unlink(t->path);
  rmdir(t->dir);
  free(t);
  return 0;
}

static void write_file(const char *path, const uint8_t *buf, size_t len,
                       mode_t mode) {
  int fd;

  unlink(path);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, buf, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;

  assert_non_null(f);
  n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

static int all_zero(const uint8_t *p, size_t n) {
  size_t i;
  uint8_t acc = 0;

  for (i = 0; i < n; ++i) {
    acc |= p[i];
  }
  return acc == 0;
}

/* A and B identities plus finished keys for both sides. */
typedef struct {
  ptv_identity a, b;
  ptv_kx kxa, kxb;
  uint8_t ha[PTV_KX_HELLO_LEN], hb[PTV_KX_HELLO_LEN];
  ptv_kx_keys ka, kb;
} pair;

static void pair_init(pair *p) {
  memset(p, 0, sizeof(*p));
  assert_int_equal(ptv_identity_generate(&p->a), 0);
  assert_int_equal(ptv_identity_generate(&p->b), 0);
  assert_int_equal(ptv_kx_init(&p->kxa, &p->a, ID_A, ID_B, p->b.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_init(&p->kxb, &p->b, ID_B, ID_A, p->a.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_hello(&p->kxa, p->ha, sizeof(p->ha)),
                   PTV_KX_HELLO_LEN);
  assert_int_equal(ptv_kx_hello(&p->kxb, p->hb, sizeof(p->hb)),
                   PTV_KX_HELLO_LEN);
}

static void pair_finish(pair *p) {
  assert_int_equal(ptv_kx_finish(&p->kxa, p->hb, sizeof(p->hb), &p->ka), 0);
  assert_int_equal(ptv_kx_finish(&p->kxb, p->ha, sizeof(p->ha), &p->kb), 0);
}

/* ---- identity ----------------------------------------------------------------- */

static void test_identity_file_roundtrip(void **state) {
  tmpdir *t = *state;
  ptv_identity id1, id2;
  char err[256];
  struct stat st;
  mode_t old;

  /* umask 0: the 0600 must come from the code, not from the umask. */
  old = umask(0);
  assert_int_equal(ptv_identity_load_or_create(&id1, t->path, err, sizeof(err)),
                   0);
  umask(old);
  assert_int_equal(stat(t->path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(st.st_size, PTV_IDENTITY_FILE_LEN);

  assert_int_equal(ptv_identity_load_or_create(&id2, t->path, err, sizeof(err)),
                   0);
  assert_memory_equal(id1.pk, id2.pk, PTV_IDENTITY_PK_LEN);
  assert_memory_equal(id1.sk, id2.sk, PTV_IDENTITY_SK_LEN);
  assert_ptr_equal(ptv_identity_pk(&id2), id2.pk);

  /* Read-only for the owner is fine too. */
  assert_int_equal(chmod(t->path, 0400), 0);
  assert_int_equal(ptv_identity_load_or_create(&id2, t->path, err, sizeof(err)),
                   0);
  assert_memory_equal(id1.pk, id2.pk, PTV_IDENTITY_PK_LEN);

  /* No temporary file is left behind. */
  assert_int_equal(chmod(t->path, 0600), 0);
  unlink(t->path);
  assert_int_equal(rmdir(t->dir), 0);
  assert_int_equal(mkdir(t->dir, 0700), 0);

  ptv_identity_wipe(&id1);
  assert_true(all_zero((const uint8_t *)&id1, sizeof(id1)));
  ptv_identity_wipe(&id2);
}

static void test_identity_permissions_refused(void **state) {
  tmpdir *t = *state;
  static const mode_t bad[] = {0640, 0604, 0644, 0660, 0610, 0601, 0700};
  ptv_identity id, again;
  char err[256];
  size_t i;

  assert_int_equal(ptv_identity_load_or_create(&id, t->path, err, sizeof(err)),
                   0);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    if ((bad[i] & 077) == 0) {
      continue; /* 0700 is owner-only: accepted */
    }
    assert_int_equal(chmod(t->path, bad[i]), 0);
    err[0] = '\0';
    assert_int_equal(
        ptv_identity_load_or_create(&again, t->path, err, sizeof(err)),
        PTV_ERR_IO);
    assert_non_null(strstr(err, "permissions"));
    assert_non_null(strstr(err, t->path));
    assert_true(all_zero((const uint8_t *)&again, sizeof(again)));
  }
  /* The refused file was not replaced by a new key. */
  assert_int_equal(chmod(t->path, 0600), 0);
  assert_int_equal(
      ptv_identity_load_or_create(&again, t->path, err, sizeof(err)), 0);
  assert_memory_equal(id.pk, again.pk, PTV_IDENTITY_PK_LEN);
}

static void test_identity_corrupt_refused(void **state) {
  tmpdir *t = *state;
  uint8_t good[PTV_IDENTITY_FILE_LEN + 8], bad[PTV_IDENTITY_FILE_LEN + 8];
  ptv_identity id;
  char err[256];
  size_t n, i;

  assert_int_equal(ptv_identity_load_or_create(&id, t->path, err, sizeof(err)),
                   0);
  n = read_file(t->path, good, sizeof(good));
  assert_int_equal(n, PTV_IDENTITY_FILE_LEN);

  /* Any flipped byte: magic, seed or public key. */
  for (i = 0; i < PTV_IDENTITY_FILE_LEN; i += 5) {
    memcpy(bad, good, n);
    bad[i] ^= 0x01;
    write_file(t->path, bad, n, 0600);
    assert_int_equal(
        ptv_identity_load_or_create(&id, t->path, err, sizeof(err)),
        PTV_ERR_MALFORMED);
  }
  /* Truncated, extended, empty. */
  write_file(t->path, good, n - 1, 0600);
  assert_int_equal(ptv_identity_load_or_create(&id, t->path, err, sizeof(err)),
                   PTV_ERR_MALFORMED);
  assert_non_null(strstr(err, "size"));
  memcpy(bad, good, n);
  bad[n] = 0;
  write_file(t->path, bad, n + 1, 0600);
  assert_int_equal(ptv_identity_load_or_create(&id, t->path, err, sizeof(err)),
                   PTV_ERR_MALFORMED);
  write_file(t->path, good, 0, 0600);
  assert_int_equal(ptv_identity_load_or_create(&id, t->path, err, sizeof(err)),
                   PTV_ERR_MALFORMED);
  /* The corrupt file is left alone for the operator to inspect. */
  assert_int_equal(read_file(t->path, bad, sizeof(bad)), 0);
}

static void test_identity_missing_dir(void **state) {
  tmpdir *t = *state;
  ptv_identity id;
  char path[192], err[256];
  struct stat st;

  snprintf(path, sizeof(path), "%s/no-such-dir/id.key", t->dir);
  assert_int_equal(ptv_identity_load_or_create(&id, path, err, sizeof(err)),
                   PTV_ERR_IO);
  assert_true(strlen(err) > 0);
  assert_int_not_equal(stat(path, &st), 0);
  assert_int_equal(ptv_identity_load_or_create(&id, "", err, sizeof(err)),
                   PTV_ERR_INVALID_ARG);
  /* A directory in place of the file. */
  assert_int_equal(mkdir(t->path, 0700), 0);
  assert_int_equal(ptv_identity_load_or_create(&id, t->path, NULL, 0),
                   PTV_ERR_IO);
  assert_int_equal(rmdir(t->path), 0);
}

static void test_identity_sign_verify(void **state) {
  ptv_identity a, b;
  uint8_t msg[100], sig[PTV_IDENTITY_SIG_LEN], sig2[PTV_IDENTITY_SIG_LEN];
  size_t i;

  (void)state;
  assert_int_equal(ptv_identity_generate(&a), 0);
  assert_int_equal(ptv_identity_generate(&b), 0);
  for (i = 0; i < sizeof(msg); ++i) {
    msg[i] = (uint8_t)(i * 7);
  }
  assert_int_equal(ptv_identity_sign(&a, msg, sizeof(msg), sig), 0);
  assert_int_equal(ptv_identity_verify(a.pk, msg, sizeof(msg), sig), 0);
  assert_int_equal(ptv_identity_verify(b.pk, msg, sizeof(msg), sig),
                   PTV_ERR_BAD_SIG);
  for (i = 0; i < sizeof(msg) * 8; i += 13) {
    msg[i / 8] ^= (uint8_t)(1u << (i % 8));
    assert_int_equal(ptv_identity_verify(a.pk, msg, sizeof(msg), sig),
                     PTV_ERR_BAD_SIG);
    msg[i / 8] ^= (uint8_t)(1u << (i % 8));
  }
  for (i = 0; i < sizeof(sig) * 8; ++i) {
    memcpy(sig2, sig, sizeof(sig));
    sig2[i / 8] ^= (uint8_t)(1u << (i % 8));
    assert_int_equal(ptv_identity_verify(a.pk, msg, sizeof(msg), sig2),
                     PTV_ERR_BAD_SIG);
  }
  assert_int_equal(ptv_identity_verify(a.pk, msg, sizeof(msg) - 1, sig),
                   PTV_ERR_BAD_SIG);
  /* Empty message, NULL pointer allowed with length 0. */
  assert_int_equal(ptv_identity_sign(&a, NULL, 0, sig), 0);
  assert_int_equal(ptv_identity_verify(a.pk, NULL, 0, sig), 0);
  assert_int_equal(ptv_identity_sign(&a, NULL, 1, sig), PTV_ERR_INVALID_ARG);
  ptv_identity_wipe(&a);
  ptv_identity_wipe(&b);
}

static void test_identity_fingerprint(void **state) {
  ptv_identity a, b;
  char fa[PTV_IDENTITY_FP_SIZE], fa2[64], fb[PTV_IDENTITY_FP_SIZE];
  size_t i;

  (void)state;
  assert_int_equal(ptv_identity_generate(&a), 0);
  assert_int_equal(ptv_identity_generate(&b), 0);
  assert_int_equal(ptv_identity_fingerprint(a.pk, fa, sizeof(fa)), 0);
  assert_int_equal(ptv_identity_fingerprint(a.pk, fa2, sizeof(fa2)), 0);
  assert_int_equal(ptv_identity_fingerprint(b.pk, fb, sizeof(fb)), 0);
  assert_string_equal(fa, fa2);
  assert_string_not_equal(fa, fb);
  assert_int_equal(strlen(fa), PTV_IDENTITY_FP_SIZE - 1);
  for (i = 0; i < strlen(fa); ++i) {
    if (i % 5 == 4) {
      assert_int_equal(fa[i], '-');
    } else {
      assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", fa[i]));
    }
  }
  assert_int_equal(
      ptv_identity_fingerprint(a.pk, fa2, PTV_IDENTITY_FP_SIZE - 1),
      PTV_ERR_NOBUF);
}

/* ---- kx ------------------------------------------------------------------------ */

static void test_kx_keys_match(void **state) {
  pair p;
  uint8_t tmp[PTV_KX_HELLO_LEN];

  (void)state;
  pair_init(&p);
  pair_finish(&p);
  assert_memory_equal(p.ka.tx_key, p.kb.rx_key, PTV_KX_SRTP_KEY_LEN);
  assert_memory_equal(p.ka.tx_salt, p.kb.rx_salt, PTV_KX_SRTP_SALT_LEN);
  assert_memory_equal(p.ka.rx_key, p.kb.tx_key, PTV_KX_SRTP_KEY_LEN);
  assert_memory_equal(p.ka.rx_salt, p.kb.tx_salt, PTV_KX_SRTP_SALT_LEN);
  assert_int_equal(p.ka.tx_ssrc, p.kb.rx_ssrc);
  assert_int_equal(p.ka.rx_ssrc, p.kb.tx_ssrc);
  assert_memory_equal(p.ka.session_hash, p.kb.session_hash, 32);
  /* The two directions are independent keys. */
  assert_memory_not_equal(p.ka.tx_key, p.ka.rx_key, PTV_KX_SRTP_KEY_LEN);
  assert_memory_not_equal(p.ka.tx_salt, p.ka.rx_salt, PTV_KX_SRTP_SALT_LEN);
  assert_false(all_zero(p.ka.tx_key, PTV_KX_SRTP_KEY_LEN));
  assert_int_equal(p.ka.my_id, ID_A);
  assert_int_equal(p.ka.peer_id, ID_B);
  /* Ephemeral secrets are gone; the object is spent. */
  assert_true(all_zero(p.kxa.eph_sk, sizeof(p.kxa.eph_sk)));
  assert_true(all_zero(p.kxb.eph_sk, sizeof(p.kxb.eph_sk)));
  assert_int_equal(ptv_kx_finish(&p.kxa, p.hb, sizeof(p.hb), &p.ka),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_kx_hello(&p.kxa, tmp, sizeof(tmp)),
                   PTV_ERR_INVALID_ARG);
  ptv_kx_keys_wipe(&p.ka);
  assert_true(all_zero((const uint8_t *)&p.ka, sizeof(p.ka)));
  ptv_kx_wipe(&p.kxa);
  assert_true(all_zero((const uint8_t *)&p.kxa, sizeof(p.kxa)));
}

static void test_kx_fresh_sessions(void **state) {
  pair p, q;

  (void)state;
  pair_init(&p);
  pair_finish(&p);
  /* Same identities, ids and context: new ephemerals, new keys. */
  q = p;
  assert_int_equal(ptv_kx_init(&q.kxa, &p.a, ID_A, ID_B, p.b.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_init(&q.kxb, &p.b, ID_B, ID_A, p.a.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_hello(&q.kxa, q.ha, sizeof(q.ha)), PTV_KX_HELLO_LEN);
  assert_int_equal(ptv_kx_hello(&q.kxb, q.hb, sizeof(q.hb)), PTV_KX_HELLO_LEN);
  pair_finish(&q);
  assert_memory_not_equal(p.ka.tx_key, q.ka.tx_key, PTV_KX_SRTP_KEY_LEN);
  assert_memory_not_equal(p.ka.rx_key, q.ka.rx_key, PTV_KX_SRTP_KEY_LEN);
  assert_memory_not_equal(p.ka.session_hash, q.ka.session_hash, 32);
  assert_memory_equal(q.ka.tx_key, q.kb.rx_key, PTV_KX_SRTP_KEY_LEN);
  /* An old hello replayed into the new exchange still verifies (same ids
   * and context) but yields keys the old peer cannot share: mismatch. */
  assert_int_equal(ptv_kx_init(&q.kxb, &p.b, ID_B, ID_A, p.a.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_finish(&q.kxb, p.ha, sizeof(p.ha), &q.kb), 0);
  assert_memory_not_equal(q.kb.rx_key, p.kb.rx_key, PTV_KX_SRTP_KEY_LEN);
}

static void test_kx_bad_sig(void **state) {
  pair p;
  ptv_identity c;
  ptv_kx kxc;
  ptv_kx_keys out;
  uint8_t h[PTV_KX_HELLO_LEN];
  static const char other_ctx[] = "ufragA:ufragX:channel-1";

  (void)state;
  pair_init(&p);
  assert_int_equal(ptv_identity_generate(&c), 0);

  /* Signed by a third key claiming to be A (right ids and context). */
  assert_int_equal(ptv_kx_init(&kxc, &c, ID_A, ID_B, p.b.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_hello(&kxc, h, sizeof(h)), PTV_KX_HELLO_LEN);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_BAD_SIG);
  assert_true(all_zero((const uint8_t *)&out, sizeof(out)));
  /* ... and with A's public key pasted in. */
  memcpy(h + 1, p.a.pk, PTV_IDENTITY_PK_LEN);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_BAD_SIG);

  /* Signed by A, but with the ids swapped. */
  assert_int_equal(ptv_kx_init(&kxc, &p.a, ID_B, ID_A, p.b.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_hello(&kxc, h, sizeof(h)), PTV_KX_HELLO_LEN);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_BAD_SIG);
  /* Signed by A for another receiver id. */
  assert_int_equal(ptv_kx_init(&kxc, &p.a, ID_A, ID_B + 1, p.b.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  assert_int_equal(ptv_kx_hello(&kxc, h, sizeof(h)), PTV_KX_HELLO_LEN);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_BAD_SIG);
  /* Signed by A for another context (another ICE session). */
  assert_int_equal(ptv_kx_init(&kxc, &p.a, ID_A, ID_B, p.b.pk,
                               (const uint8_t *)other_ctx, strlen(other_ctx)),
                   0);
  assert_int_equal(ptv_kx_hello(&kxc, h, sizeof(h)), PTV_KX_HELLO_LEN);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_BAD_SIG);
  /* Empty context differs from a non-empty one. */
  assert_int_equal(ptv_kx_init(&kxc, &p.a, ID_A, ID_B, p.b.pk, NULL, 0), 0);
  assert_int_equal(ptv_kx_hello(&kxc, h, sizeof(h)), PTV_KX_HELLO_LEN);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_BAD_SIG);
  /* B's own hello reflected back to it. */
  assert_int_equal(ptv_kx_finish(&p.kxb, p.hb, sizeof(p.hb), &out),
                   PTV_ERR_BAD_SIG);
  /* A's genuine hello with its ephemeral key replaced. */
  memcpy(h, p.ha, sizeof(h));
  h[40] ^= 0x10;
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_BAD_SIG);

  /* None of that broke B's exchange: the genuine hello still works. */
  pair_finish(&p);
  assert_memory_equal(p.ka.tx_key, p.kb.rx_key, PTV_KX_SRTP_KEY_LEN);
  ptv_kx_wipe(&kxc);
  ptv_identity_wipe(&c);
}

static void test_kx_bad_bytes(void **state) {
  pair p;
  ptv_kx_keys out;
  uint8_t h[PTV_KX_HELLO_LEN + 1];
  size_t len;

  (void)state;
  pair_init(&p);
  assert_int_equal(ptv_kx_finish(&p.kxb, p.ha, 0, &out), PTV_ERR_SHORT);
  for (len = 1; len < PTV_KX_HELLO_LEN; len += 16) {
    assert_int_equal(ptv_kx_finish(&p.kxb, p.ha, len, &out), PTV_ERR_SHORT);
  }
  assert_int_equal(ptv_kx_finish(&p.kxb, p.ha, PTV_KX_HELLO_LEN - 1, &out),
                   PTV_ERR_SHORT);
  memcpy(h, p.ha, PTV_KX_HELLO_LEN);
  h[PTV_KX_HELLO_LEN] = 0;
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out),
                   PTV_ERR_MALFORMED);
  h[0] = PTV_KX_VERSION + 1;
  assert_int_equal(ptv_kx_finish(&p.kxb, h, PTV_KX_HELLO_LEN, &out),
                   PTV_ERR_VERSION);
  h[0] = 0;
  assert_int_equal(ptv_kx_finish(&p.kxb, h, PTV_KX_HELLO_LEN, &out),
                   PTV_ERR_VERSION);
  /* Random garbage: wrong version, or right version and bad signature. */
  randombytes_buf(h, sizeof(h));
  h[0] = 0xff;
  assert_int_equal(ptv_kx_finish(&p.kxb, h, PTV_KX_HELLO_LEN, &out),
                   PTV_ERR_VERSION);
  h[0] = PTV_KX_VERSION;
  assert_int_equal(ptv_kx_finish(&p.kxb, h, PTV_KX_HELLO_LEN, &out),
                   PTV_ERR_BAD_SIG);
  memcpy(h + 1, p.a.pk, PTV_IDENTITY_PK_LEN);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, PTV_KX_HELLO_LEN, &out),
                   PTV_ERR_BAD_SIG);
  /* Argument checks. */
  assert_int_equal(ptv_kx_finish(&p.kxb, NULL, 0, &out), PTV_ERR_SHORT);
  assert_int_equal(ptv_kx_finish(&p.kxb, NULL, 5, &out), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_kx_hello(&p.kxa, h, PTV_KX_HELLO_LEN - 1),
                   PTV_ERR_NOBUF);
  assert_int_equal(ptv_kx_init(&p.kxa, &p.a, ID_A, ID_A, p.b.pk, NULL, 0),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_kx_init(&p.kxa, &p.a, ID_A, ID_B, p.b.pk, NULL, 3),
                   PTV_ERR_INVALID_ARG);
  /* B is still usable after all of it. */
  assert_int_equal(ptv_kx_finish(&p.kxb, p.ha, PTV_KX_HELLO_LEN, &out), 0);
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Builds A's hello by hand, exactly as the header documents it. */
static void hand_hello(const ptv_identity *a, const uint8_t eph[32],
                       uint8_t h[PTV_KX_HELLO_LEN]) {
  uint8_t tbs[12 + 1 + 4 + 4 + 32 + 32 + 32];
  uint8_t *q = tbs;

  memcpy(q, "peertv-kx-v1", 12);
  q += 12;
  *q++ = 1;
  put_be32(q, ID_A);
  q += 4;
  put_be32(q, ID_B);
  q += 4;
  memcpy(q, a->pk, 32);
  q += 32;
  memcpy(q, eph, 32);
  q += 32;
  crypto_generichash(q, 32, (const uint8_t *)CTX, strlen(CTX), NULL, 0);
  h[0] = 1;
  memcpy(h + 1, a->pk, 32);
  memcpy(h + 33, eph, 32);
  assert_int_equal(ptv_identity_sign(a, tbs, sizeof(tbs), h + 65), 0);
}

static void test_kx_documented_format(void **state) {
  pair p;
  ptv_kx_keys out;
  uint8_t eph_pk[32], eph_sk[32], h[PTV_KX_HELLO_LEN], zero[32];

  (void)state;
  pair_init(&p);
  /* Our own hello matches the documented layout. */
  assert_int_equal(p.ha[0], PTV_KX_VERSION);
  assert_memory_equal(p.ha + 1, p.a.pk, 32);
  hand_hello(&p.a, p.ha + 33, h);
  assert_memory_equal(h, p.ha, PTV_KX_HELLO_LEN); /* Ed25519 is deterministic */

  /* A hand-built hello with a fresh ephemeral key is accepted ... */
  assert_int_equal(crypto_kx_keypair(eph_pk, eph_sk), 0);
  hand_hello(&p.a, eph_pk, h);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), 0);

  /* ... and a validly signed all-zero (small-order) ephemeral is not. */
  assert_int_equal(ptv_kx_init(&p.kxb, &p.b, ID_B, ID_A, p.a.pk,
                               (const uint8_t *)CTX, strlen(CTX)),
                   0);
  memset(zero, 0, sizeof(zero));
  hand_hello(&p.a, zero, h);
  assert_int_equal(ptv_kx_finish(&p.kxb, h, sizeof(h), &out), PTV_ERR_CRYPTO);
  sodium_memzero(eph_sk, sizeof(eph_sk));
}

/* ---- srtp ------------------------------------------------------------------------ */

typedef struct {
  pair p;
  ptv_srtp a, b;
} link_t;

static void link_init(link_t *l) {
  pair_init(&l->p);
  pair_finish(&l->p);
  assert_int_equal(ptv_srtp_init(&l->a, &l->p.ka), 0);
  assert_int_equal(ptv_srtp_init(&l->b, &l->p.kb), 0);
}

static void link_free(link_t *l) {
  ptv_srtp_free(&l->a);
  ptv_srtp_free(&l->b);
  assert_null(l->a.tx);
}

static void fill(uint8_t *buf, size_t len, uint32_t seed) {
  size_t i;

  for (i = 0; i < len; ++i) {
    buf[i] = (uint8_t)((seed * 2654435761u + i * 40503u) >> 13);
  }
}

#define PKT_MAX (1200 + PTV_SRTP_OVERHEAD + 256)

static void test_srtp_roundtrip_sizes(void **state) {
  static link_t l;
  static uint8_t in[1200], pkt[PKT_MAX + 4], out[PKT_MAX];
  uint32_t words[(PKT_MAX + 3) / 4 + 1];
  uint8_t *inplace = (uint8_t *)words;
  size_t len;
  int n, m;

  (void)state;
  link_init(&l);
  for (len = 0; len <= 1200; ++len) {
    fill(in, len, (uint32_t)len);
    /* A -> B, roomy aligned buffer (libsrtp works in place). */
    n = ptv_srtp_protect(&l.a, in, len, pkt, PKT_MAX);
    assert_int_equal(n, (int)(len + PTV_SRTP_OVERHEAD));
    assert_int_equal(pkt[0], 0x80);
    assert_int_equal(pkt[1], PTV_SRTP_PT);
    /* A protects two packets per round (this one and the in-place one). */
    assert_int_equal(((unsigned)pkt[2] << 8 | pkt[3]),
                     (unsigned)((2 * len) & 0xffff));
    m = ptv_srtp_unprotect(&l.b, pkt, (size_t)n, out, sizeof(out));
    assert_int_equal(m, (int)len);
    assert_memory_equal(out, in, len);

    /* B -> A with exact-size, unaligned buffers (scratch path). */
    n = ptv_srtp_protect(&l.b, in, len, pkt + 1, len + PTV_SRTP_OVERHEAD);
    assert_int_equal(n, (int)(len + PTV_SRTP_OVERHEAD));
    m = ptv_srtp_unprotect(&l.a, pkt + 1, (size_t)n, out + 1, len);
    assert_int_equal(m, (int)len);
    assert_memory_equal(out + 1, in, len);

    /* In place: datagram at the start of the buffer becomes the packet,
     * and the packet becomes the datagram again. */
    memcpy(inplace, in, len);
    n = ptv_srtp_protect(&l.a, inplace, len, inplace, PKT_MAX);
    assert_int_equal(n, (int)(len + PTV_SRTP_OVERHEAD));
    m = ptv_srtp_unprotect(&l.b, inplace, (size_t)n, inplace, PKT_MAX);
    assert_int_equal(m, (int)len);
    assert_memory_equal(inplace, in, len);
  }
  /* Buffer and argument errors consume nothing. */
  assert_int_equal(ptv_srtp_protect(&l.a, in, 100, pkt, 100 + 27),
                   PTV_ERR_NOBUF);
  assert_int_equal(ptv_srtp_protect(&l.a, in, PTV_SRTP_MAX_PAYLOAD + 1, pkt,
                                    sizeof(pkt)),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_srtp_protect(&l.a, NULL, 1, pkt, sizeof(pkt)),
                   PTV_ERR_INVALID_ARG);
  n = ptv_srtp_protect(&l.a, in, 100, pkt, sizeof(pkt));
  assert_int_equal(n, 128);
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkt, (size_t)n, out, 99),
                   PTV_ERR_NOBUF);
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkt, (size_t)n, out, 100), 100);
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkt, 0, out, 100), PTV_ERR_SHORT);
  assert_int_equal(
      ptv_srtp_unprotect(&l.b, pkt, PTV_SRTP_OVERHEAD - 1, out, 100),
      PTV_ERR_SHORT);
  pkt[0] = 0x00; /* STUN starts with two zero bits */
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkt, (size_t)n, out, 100),
                   PTV_ERR_MALFORMED);
  link_free(&l);
}

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle,
                    size_t k) {
  size_t i;

  for (i = 0; i + k <= n; ++i) {
    if (memcmp(hay + i, needle, k) == 0) {
      return 1;
    }
  }
  return 0;
}

static void test_srtp_no_plaintext(void **state) {
  static link_t l;
  static const uint8_t marker[16] = "PEERTV-MARKER-16";
  uint8_t ts[1128], pkt[1128 + PTV_SRTP_OVERHEAD], pkt2[sizeof(pkt)];
  uint8_t out[1128];
  size_t i, j;
  int n, run;

  (void)state;
  link_init(&l);
  /* Six MPEG-TS packets: sync byte 0x47 every 188 bytes, marker inside. */
  memset(ts, 0xff, sizeof(ts));
  for (i = 0; i < 6; ++i) {
    ts[i * 188] = 0x47;
    ts[i * 188 + 1] = 0x01;
    memcpy(ts + i * 188 + 4, marker, sizeof(marker));
  }
  n = ptv_srtp_protect(&l.a, ts, sizeof(ts), pkt, sizeof(pkt));
  assert_int_equal(n, (int)sizeof(pkt));
  assert_false(contains(pkt, sizeof(pkt), marker, sizeof(marker)));
  assert_false(contains(pkt, sizeof(pkt), marker, 8));
  /* No 0x47 repeated at a 188-byte stride anywhere (3 in a row would be
   * chance once in 2^16 offsets; 6 is the plaintext). */
  for (i = 0; i + 2 * 188 < sizeof(pkt); ++i) {
    run = 0;
    for (j = i; j < sizeof(pkt); j += 188) {
      run += pkt[j] == 0x47;
    }
    assert_true(run < 4);
  }
  /* No run of 16 0xff bytes survives either. */
  memset(out, 0xff, 16);
  assert_false(contains(pkt + PTV_SRTP_HDR_LEN, sizeof(pkt) - 12, out, 16));
  /* Same datagram again: entirely different ciphertext. */
  n = ptv_srtp_protect(&l.a, ts, sizeof(ts), pkt2, sizeof(pkt2));
  assert_int_equal(n, (int)sizeof(pkt2));
  run = 0;
  for (i = PTV_SRTP_HDR_LEN; i < sizeof(pkt); ++i) {
    run += pkt[i] == pkt2[i];
  }
  assert_true(run < 30);
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkt, sizeof(pkt), out, sizeof(out)),
                   (int)sizeof(ts));
  assert_memory_equal(out, ts, sizeof(ts));
  link_free(&l);
}

static void test_srtp_bitflips(void **state) {
  static link_t l;
  uint8_t in[100], pkt[100 + PTV_SRTP_OVERHEAD], bad[sizeof(pkt)];
  uint8_t out[sizeof(pkt)], first[sizeof(pkt)];
  size_t bit;
  int n, rc;

  (void)state;
  link_init(&l);
  fill(in, sizeof(in), 99);
  /* The second packet (seq 1, a non-zero sequence number), with the first
   * never delivered: libsrtp checks replay before authentication, so a
   * flip that turned the sequence number into an already received one
   * would be reported as PTV_ERR_REPLAY instead (tested below). */
  n = ptv_srtp_protect(&l.a, in, sizeof(in), pkt, sizeof(pkt));
  memcpy(first, pkt, sizeof(pkt));
  n = ptv_srtp_protect(&l.a, in, sizeof(in), pkt, sizeof(pkt));
  assert_int_equal(n, (int)sizeof(pkt));
  for (bit = 0; bit < sizeof(pkt) * 8; ++bit) {
    memcpy(bad, pkt, sizeof(pkt));
    bad[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
    rc = ptv_srtp_unprotect(&l.b, bad, sizeof(bad), out, sizeof(out));
    if (bit < 2) {
      /* The version bits: no longer RTP at all (RFC 7983 demux). */
      assert_int_equal(rc, PTV_ERR_MALFORMED);
    } else {
      if (rc != PTV_ERR_CRYPTO) {
        fail_msg("bit %zu: got %d", bit, rc);
      }
    }
  }
  /* None of the forgeries moved the replay window or the ROC. */
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkt, sizeof(pkt), out, sizeof(out)),
                   (int)sizeof(in));
  assert_memory_equal(out, in, sizeof(in));
  /* seq 1 received: a forgery claiming seq 1 is dropped as a replay. */
  memcpy(bad, first, sizeof(bad));
  bad[3] ^= 1;
  assert_int_equal(ptv_srtp_unprotect(&l.b, bad, sizeof(bad), out,
                                      sizeof(out)),
                   PTV_ERR_REPLAY);
  assert_int_equal(ptv_srtp_unprotect(&l.b, first, sizeof(first), out,
                                      sizeof(out)),
                   (int)sizeof(in));
  /* Truncation (tag cut short) is a forgery too. */
  n = ptv_srtp_protect(&l.a, in, sizeof(in), pkt, sizeof(pkt));
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkt, sizeof(pkt) - 1, out,
                                      sizeof(out)),
                   PTV_ERR_CRYPTO);
  link_free(&l);
}

static void test_srtp_replay(void **state) {
  static link_t l;
  static uint8_t pkts[1100][64 + PTV_SRTP_OVERHEAD];
  uint8_t in[64], out[64 + PTV_SRTP_OVERHEAD];
  size_t i;
  int n;

  (void)state;
  link_init(&l);
  for (i = 0; i < 1100; ++i) {
    fill(in, sizeof(in), (uint32_t)i);
    n = ptv_srtp_protect(&l.a, in, sizeof(in), pkts[i], sizeof(pkts[i]));
    assert_int_equal(n, (int)sizeof(pkts[i]));
  }
  assert_int_equal(
      ptv_srtp_unprotect(&l.b, pkts[0], sizeof(pkts[0]), out, sizeof(out)), 64);
  assert_int_equal(
      ptv_srtp_unprotect(&l.b, pkts[0], sizeof(pkts[0]), out, sizeof(out)),
      PTV_ERR_REPLAY);
  /* Skip ahead; packets 1..(1099-1024) fall out of the window. */
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkts[1099], sizeof(pkts[1099]),
                                      out, sizeof(out)),
                   64);
  assert_int_equal(
      ptv_srtp_unprotect(&l.b, pkts[10], sizeof(pkts[10]), out, sizeof(out)),
      PTV_ERR_REPLAY);
  /* Still inside the window: accepted once, then a replay. */
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkts[1099 - 1000],
                                      sizeof(pkts[0]), out, sizeof(out)),
                   64);
  fill(in, sizeof(in), 99);
  assert_memory_equal(out, in, sizeof(in));
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkts[1099 - 1000],
                                      sizeof(pkts[0]), out, sizeof(out)),
                   PTV_ERR_REPLAY);
  assert_int_equal(ptv_srtp_unprotect(&l.b, pkts[1099], sizeof(pkts[1099]),
                                      out, sizeof(out)),
                   PTV_ERR_REPLAY);
  link_free(&l);
}

static void test_srtp_other_session(void **state) {
  static link_t l1, l2;
  static ptv_srtp s1, s2, s3;
  ptv_kx_keys k;
  uint8_t in[200], pkt[200 + PTV_SRTP_OVERHEAD], out[sizeof(pkt)];
  int n;

  (void)state;
  link_init(&l1);
  link_init(&l2);
  fill(in, sizeof(in), 5);
  /* Another link's packet (other keys, other SSRC). */
  n = ptv_srtp_protect(&l2.a, in, sizeof(in), pkt, sizeof(pkt));
  assert_int_equal(ptv_srtp_unprotect(&l1.b, pkt, (size_t)n, out, sizeof(out)),
                   PTV_ERR_CRYPTO);
  /* Our own outbound packet looped back to us. */
  n = ptv_srtp_protect(&l1.a, in, sizeof(in), pkt, sizeof(pkt));
  assert_int_equal(ptv_srtp_unprotect(&l1.a, pkt, (size_t)n, out, sizeof(out)),
                   PTV_ERR_CRYPTO);

  /* Same SSRC, different key: only the GCM tag can tell, and does. */
  memset(&k, 0, sizeof(k));
  randombytes_buf(k.tx_key, sizeof(k.tx_key));
  randombytes_buf(k.tx_salt, sizeof(k.tx_salt));
  k.tx_ssrc = k.rx_ssrc = 0x12345678u;
  memcpy(k.rx_key, k.tx_key, sizeof(k.rx_key));
  memcpy(k.rx_salt, k.tx_salt, sizeof(k.rx_salt));
  assert_int_equal(ptv_srtp_init(&s1, &k), 0);
  assert_int_equal(ptv_srtp_init(&s2, &k), 0);
  k.rx_key[0] ^= 1;
  assert_int_equal(ptv_srtp_init(&s3, &k), 0);
  n = ptv_srtp_protect(&s1, in, sizeof(in), pkt, sizeof(pkt));
  assert_int_equal(ptv_srtp_unprotect(&s3, pkt, (size_t)n, out, sizeof(out)),
                   PTV_ERR_CRYPTO);
  assert_int_equal(ptv_srtp_unprotect(&s2, pkt, (size_t)n, out, sizeof(out)),
                   (int)sizeof(in));
  assert_memory_equal(out, in, sizeof(in));
  ptv_srtp_free(&s1);
  ptv_srtp_free(&s2);
  ptv_srtp_free(&s3);
  link_free(&l1);
  link_free(&l2);
}

static void test_srtp_rollover(void **state) {
  static link_t l;
  uint8_t in[32], pkt[32 + PTV_SRTP_OVERHEAD], out[32];
  uint32_t i, got;
  int n;

  (void)state;
  link_init(&l);
  for (i = 0; i < 70000; ++i) {
    memset(in, 0, sizeof(in));
    memcpy(in, &i, sizeof(i));
    n = ptv_srtp_protect(&l.a, in, sizeof(in), pkt, sizeof(pkt));
    assert_int_equal(n, (int)sizeof(pkt));
    assert_int_equal(((unsigned)pkt[2] << 8 | pkt[3]), i & 0xffff);
    n = ptv_srtp_unprotect(&l.b, pkt, sizeof(pkt), out, sizeof(out));
    if (n != (int)sizeof(in)) {
      fail_msg("packet %u: unprotect returned %d", (unsigned)i, n);
    }
    memcpy(&got, out, sizeof(got));
    assert_int_equal(got, i);
  }
  link_free(&l);
}

static void test_srtp_reorder(void **state) {
  static link_t l;
  static uint8_t pkts[4096][16 + PTV_SRTP_OVERHEAD];
  static uint32_t order[4096];
  uint8_t in[16], out[16];
  uint32_t i, j, tmp, got;
  int n;

  (void)state;
  link_init(&l);
  /* Start just below the 16-bit wrap so reordering straddles it too. */
  for (i = 0; i < 65536 - 2048; ++i) {
    n = ptv_srtp_protect(&l.a, in, 0, pkts[0], sizeof(pkts[0]));
    assert_int_equal(
        ptv_srtp_unprotect(&l.b, pkts[0], (size_t)n, out, sizeof(out)), 0);
  }
  for (i = 0; i < 4096; ++i) {
    memset(in, 0, sizeof(in));
    memcpy(in, &i, sizeof(i));
    n = ptv_srtp_protect(&l.a, in, sizeof(in), pkts[i], sizeof(pkts[i]));
    assert_int_equal(n, (int)sizeof(pkts[i]));
    order[i] = i;
  }
  /* Blocks of 64 delivered backwards, then random swaps inside blocks of
   * 512: no packet arrives more than 511 places late (window: 1024). */
  for (i = 0; i < 4096; i += 64) {
    for (j = 0; j < 32; ++j) {
      tmp = order[i + j];
      order[i + j] = order[i + 63 - j];
      order[i + 63 - j] = tmp;
    }
  }
  for (i = 0; i < 4096; i += 3) {
    j = (i & ~511u) + randombytes_uniform(512);
    tmp = order[i];
    order[i] = order[j];
    order[j] = tmp;
  }
  for (i = 0; i < 4096; ++i) {
    n = ptv_srtp_unprotect(&l.b, pkts[order[i]], sizeof(pkts[0]), out,
                           sizeof(out));
    if (n != (int)sizeof(in)) {
      fail_msg("delivery %u (packet %u): %d", (unsigned)i,
               (unsigned)order[i], n);
    }
    memcpy(&got, out, sizeof(got));
    assert_int_equal(got, order[i]);
  }
  /* Every one of them is now a replay. */
  for (i = 4096 - 1000; i < 4096; i += 37) {
    assert_int_equal(ptv_srtp_unprotect(&l.b, pkts[i], sizeof(pkts[0]), out,
                                        sizeof(out)),
                     PTV_ERR_REPLAY);
  }
  link_free(&l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_identity_file_roundtrip, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_identity_permissions_refused,
                                      setup_dir, teardown_dir),
      cmocka_unit_test_setup_teardown(test_identity_corrupt_refused, setup_dir,
                                      teardown_dir),
      cmocka_unit_test_setup_teardown(test_identity_missing_dir, setup_dir,
                                      teardown_dir),
      cmocka_unit_test(test_identity_sign_verify),
      cmocka_unit_test(test_identity_fingerprint),
      cmocka_unit_test(test_kx_keys_match),
      cmocka_unit_test(test_kx_fresh_sessions),
      cmocka_unit_test(test_kx_bad_sig),
      cmocka_unit_test(test_kx_bad_bytes),
      cmocka_unit_test(test_kx_documented_format),
      cmocka_unit_test(test_srtp_roundtrip_sizes),
      cmocka_unit_test(test_srtp_no_plaintext),
      cmocka_unit_test(test_srtp_bitflips),
      cmocka_unit_test(test_srtp_replay),
      cmocka_unit_test(test_srtp_other_session),
      cmocka_unit_test(test_srtp_rollover),
      cmocka_unit_test(test_srtp_reorder),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
