/* fuzz_kx.c -- libFuzzer target for ptv_kx_finish.
 *
 * Two fixed identities A (id 7) and B (id 42) set up one exchange once.
 * Each input is used twice:
 *   1. raw: fed as A's hello to a copy of B's pristine state. It must be
 *      refused (a valid signature by A cannot be forged) unless it is A's
 *      genuine hello byte for byte; a refused hello must leave B's state
 *      untouched and the output keys zeroed.
 *   2. as a mask XORed onto A's genuine hello (first 129 bytes, zero
 *      padded): the result must be accepted iff the mask is all zero, and
 *      when accepted B's keys must mirror A's.
 * Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_identity.h"
#include "ptv_kx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ready;
static ptv_kx kxb0;
static uint8_t hello_a[PTV_KX_HELLO_LEN];
static ptv_kx_keys keys_a;

static void setup(void) {
  ptv_identity a, b;
  ptv_kx kxa;
  uint8_t hb[PTV_KX_HELLO_LEN];
  static const uint8_t ctx[] = "fuzz-context";

  /* Random identities are fine: nothing depends on their values. */
  if (ptv_identity_generate(&a) != 0 || ptv_identity_generate(&b) != 0 ||
      ptv_kx_init(&kxa, &a, 7, 42, b.pk, ctx, sizeof(ctx)) != 0 ||
      ptv_kx_init(&kxb0, &b, 42, 7, a.pk, ctx, sizeof(ctx)) != 0 ||
      ptv_kx_hello(&kxa, hello_a, sizeof(hello_a)) != PTV_KX_HELLO_LEN ||
      ptv_kx_hello(&kxb0, hb, sizeof(hb)) != PTV_KX_HELLO_LEN ||
      ptv_kx_finish(&kxa, hb, sizeof(hb), &keys_a) != 0) {
    abort();
  }
  ptv_identity_wipe(&a);
  ptv_identity_wipe(&b);
  ready = 1;
}

static int is_zero(const void *p, size_t n) {
  const uint8_t *b = p;
  size_t i;

  for (i = 0; i < n; ++i) {
    if (b[i] != 0) {
      return 0;
    }
  }
  return 1;
}

static int known_code(int rc) {
  return rc == 0 || rc == PTV_ERR_SHORT || rc == PTV_ERR_MALFORMED ||
         rc == PTV_ERR_VERSION || rc == PTV_ERR_BAD_SIG ||
         rc == PTV_ERR_CRYPTO;
}

static void check_keys(const ptv_kx_keys *kb) {
  if (memcmp(kb->rx_key, keys_a.tx_key, sizeof(kb->rx_key)) != 0 ||
      memcmp(kb->tx_key, keys_a.rx_key, sizeof(kb->tx_key)) != 0 ||
      memcmp(kb->rx_salt, keys_a.tx_salt, sizeof(kb->rx_salt)) != 0 ||
      kb->rx_ssrc != keys_a.tx_ssrc || kb->tx_ssrc != keys_a.rx_ssrc) {
    abort();
  }
}

static void run(const uint8_t *hello, size_t len, int expect_ok) {
  ptv_kx kxb;
  ptv_kx_keys kb;
  int rc;

  memcpy(&kxb, &kxb0, sizeof(kxb)); /* bytewise, padding included */
  memset(&kb, 0xa5, sizeof(kb));
  rc = ptv_kx_finish(&kxb, hello, len, &kb);
  if (!known_code(rc) || (rc == 0) != expect_ok) {
    abort();
  }
  if (rc == 0) {
    check_keys(&kb);
  } else if (!is_zero(&kb, sizeof(kb)) ||
             memcmp(&kxb, &kxb0, sizeof(kxb)) != 0) {
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t h[PTV_KX_HELLO_LEN];
  size_t i, n;

  if (!ready) {
    setup();
  }
  run(data, size,
      size == PTV_KX_HELLO_LEN && memcmp(data, hello_a, size) == 0);

  n = size < PTV_KX_HELLO_LEN ? size : PTV_KX_HELLO_LEN;
  memcpy(h, hello_a, sizeof(h));
  for (i = 0; i < n; ++i) {
    h[i] ^= data[i];
  }
  run(h, sizeof(h), is_zero(data, n));
  return 0;
}
