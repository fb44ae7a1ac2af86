/* test_aes.c -- ptv_aes: OpenSSL's AES under libsrtp gives the same
 * packets as libsrtp's own (NSS) implementation.
 *
 * The group setup creates libsrtp sessions with the stock cipher types
 * first (a session keeps the cipher objects it was created with), then
 * installs ours. ptv_srtp sessions made afterwards use ours, for the
 * per-packet AES-GCM and for the AES-ICM key derivation both, so equal
 * bytes for equal keys and sequence numbers show both agree with libsrtp's,
 * and each side accepts the other's packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <srtp2/srtp.h>

#include "ptv_aes.h"
#include "ptv_be.h"
#include "ptv_err.h"
#include "ptv_srtp.h"

#define SSRC 0x5eed1234u

static uint8_t g_key[PTV_KX_SRTP_KEY_LEN], g_salt[PTV_KX_SRTP_SALT_LEN];
static srtp_t g_stock_tx, g_stock_rx; /* created before ptv_aes_install */

/* The session ptv_srtp makes (see create_session there), straight from
 * libsrtp. */
static srtp_t stock_session(void) {
  uint8_t master[SRTP_AES_GCM_128_KEY_LEN_WSALT];
  srtp_policy_t pol;
  srtp_t s = NULL;
  memset(&pol, 0, sizeof(pol));
  memcpy(master, g_key, sizeof(g_key));
  memcpy(master + sizeof(g_key), g_salt, sizeof(g_salt));
  srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtp);
  srtp_crypto_policy_set_aes_gcm_128_16_auth(&pol.rtcp);
  pol.ssrc.type = ssrc_specific;
  pol.ssrc.value = SSRC;
  pol.key = master;
  pol.window_size = PTV_SRTP_REPLAY_WINDOW;
  if (srtp_create(&s, &pol) != srtp_err_status_ok) return NULL;
  return s;
}

/* Keys for a session that sends and accepts with g_key and SSRC, as the
 * stock sessions do. */
static void loop_keys(ptv_kx_keys *k) {
  memset(k, 0, sizeof(*k));
  memcpy(k->tx_key, g_key, sizeof(g_key));
  memcpy(k->tx_salt, g_salt, sizeof(g_salt));
  memcpy(k->rx_key, g_key, sizeof(g_key));
  memcpy(k->rx_salt, g_salt, sizeof(g_salt));
  k->tx_ssrc = k->rx_ssrc = SSRC;
}

static int group_setup(void **state) {
  (void)state;
  if (sodium_init() < 0 || srtp_init() != srtp_err_status_ok) return -1;
  randombytes_buf(g_key, sizeof(g_key));
  randombytes_buf(g_salt, sizeof(g_salt));
  g_stock_tx = stock_session();
  g_stock_rx = stock_session();
  if (!g_stock_tx || !g_stock_rx || ptv_aes_installed()) return -1;
  return ptv_aes_install() == 0 ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  srtp_dealloc(g_stock_tx);
  srtp_dealloc(g_stock_rx);
  return 0;
}

static void test_installed(void **state) {
  (void)state;
  assert_true(ptv_aes_installed());
  assert_int_equal(ptv_aes_install(), 0); /* again: a no-op */
  assert_int_equal(ptv_srtp_global_init(), 0);
  assert_true(ptv_aes_installed());
}

/* Every length from 0 to 48 (partial and whole AES blocks), then datagram
 * sizes up to the largest: the same packet from both, and each accepts the
 * other's. */
static void test_same_packets_as_libsrtp(void **state) {
  (void)state;
  ptv_kx_keys k;
  loop_keys(&k);
  ptv_srtp ours;
  assert_int_equal(ptv_srtp_init(&ours, &k), 0);
  static const size_t big[] = {255, 256, 1000, 1160, 1199, 1200, 1400, PTV_SRTP_MAX_PAYLOAD};
  size_t nbig = sizeof(big) / sizeof(big[0]);
  static uint32_t sbuf[(PTV_SRTP_SCRATCH_LEN + 3) / 4]; /* aligned, with libsrtp's slack */
  static uint8_t dg[PTV_SRTP_MAX_PAYLOAD], mine[PTV_SRTP_SCRATCH_LEN],
      back[PTV_SRTP_SCRATCH_LEN];
  for (size_t i = 0; i < 49 + nbig; i++) {
    size_t len = i < 49 ? i : big[i - 49];
    uint8_t *pkt = (uint8_t *)sbuf;
    randombytes_buf(dg, len);
    /* stock: the header ptv_srtp.h documents, sequence number = packet count */
    pkt[0] = 0x80;
    pkt[1] = PTV_SRTP_PT;
    ptv_be_put16(pkt + 2, (uint16_t)i);
    ptv_be_put32(pkt + 4, (uint32_t)i);
    ptv_be_put32(pkt + 8, SSRC);
    memcpy(pkt + PTV_SRTP_HDR_LEN, dg, len);
    int n = (int)(PTV_SRTP_HDR_LEN + len);
    assert_int_equal(srtp_protect(g_stock_tx, pkt, &n), srtp_err_status_ok);
    assert_int_equal(n, (int)(len + PTV_SRTP_OVERHEAD));
    int m = ptv_srtp_protect(&ours, dg, len, mine, sizeof(mine));
    assert_int_equal(m, n);
    assert_memory_equal(mine, pkt, (size_t)n);
    /* ours reads libsrtp's packet ... */
    assert_int_equal(ptv_srtp_unprotect(&ours, pkt, (size_t)n, back, sizeof(back)), (int)len);
    if (len) assert_memory_equal(back, dg, len);
    /* ... and libsrtp reads ours */
    memcpy(pkt, mine, (size_t)m);
    assert_int_equal(srtp_unprotect(g_stock_rx, pkt, &m), srtp_err_status_ok);
    assert_int_equal(m, (int)(PTV_SRTP_HDR_LEN + len));
    if (len) assert_memory_equal(pkt + PTV_SRTP_HDR_LEN, dg, len);
  }
  ptv_srtp_free(&ours);
}

/* Ours refuses what libsrtp's would: any flipped bit of a stock packet, the
 * tag's last byte included, and a packet cut short by a byte. */
static void test_forgeries_refused(void **state) {
  (void)state;
  ptv_kx_keys k;
  loop_keys(&k);
  ptv_srtp tx, rx;
  assert_int_equal(ptv_srtp_init(&tx, &k), 0);
  assert_int_equal(ptv_srtp_init(&rx, &k), 0);
  uint8_t dg[100], pkt[256], bad[256], out[256];
  randombytes_buf(dg, sizeof(dg));
  int n = ptv_srtp_protect(&tx, dg, sizeof(dg), pkt, sizeof(pkt));
  assert_int_equal(n, (int)(sizeof(dg) + PTV_SRTP_OVERHEAD));
  for (int i = 0; i < n * 8; i += 7) {
    memcpy(bad, pkt, (size_t)n);
    bad[i / 8] ^= (uint8_t)(1u << (i % 8));
    assert_true(ptv_srtp_unprotect(&rx, bad, (size_t)n, out, sizeof(out)) < 0);
  }
  memcpy(bad, pkt, (size_t)n);
  bad[n - 1] ^= 0x80;
  assert_int_equal(ptv_srtp_unprotect(&rx, bad, (size_t)n, out, sizeof(out)), PTV_ERR_CRYPTO);
  assert_true(ptv_srtp_unprotect(&rx, pkt, (size_t)n - 1, out, sizeof(out)) < 0);
  /* the genuine one still goes through: the forgeries changed nothing */
  assert_int_equal(ptv_srtp_unprotect(&rx, pkt, (size_t)n, out, sizeof(out)), (int)sizeof(dg));
  assert_memory_equal(out, dg, sizeof(dg));
  ptv_srtp_free(&tx);
  ptv_srtp_free(&rx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_installed),
      cmocka_unit_test(test_same_packets_as_libsrtp),
      cmocka_unit_test(test_forgeries_refused),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
