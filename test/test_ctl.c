/* test_ctl.c -- the peer <-> tracker control codec (ptv_ctl).
 *
 * Round trips of every message with every field checked, the exact bytes of
 * the layout where a mistake would silently break interoperability, the
 * bytes a HELLO signature covers (everything but the signature, behind a
 * domain string), rejection of every malformed form (short, trailing bytes,
 * lengths that overrun, enums out of range, oversize bodies), and the
 * stream frame splitter.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ptv_ctl.h"
#include "ptv_err.h"
#include "ptv_wire.h"

static const uint8_t PK[PTV_CTL_PKLEN] = {0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                         16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 0xbb};
static uint8_t SIG[PTV_CTL_SIGLEN];

static ptv_ctl hello(void) {
  ptv_ctl m = {.type = PTV_CTL_HELLO};
  for (int i = 0; i < PTV_CTL_SIGLEN; i++) SIG[i] = (uint8_t)(0xc0 + i);
  m.u.hello.role = PTV_ROLE_SOURCE;
  m.u.hello.nat = PTV_NAT_CONE;
  m.u.hello.upload_kbps = 8000;
  m.u.hello.want_id = 0x01020304;
  m.u.hello.ts_us = 0x1122334455667788ull;
  m.u.hello.pk = PK;
  m.u.hello.chunk_us = 250000;
  m.u.hello.stream_kbps = 2000;
  m.u.hello.name = "news";
  m.u.hello.name_len = 4;
  m.u.hello.desc = "late news";
  m.u.hello.desc_len = 9;
  m.u.hello.sig = SIG;
  return m;
}

static void test_hello_roundtrip(void **state) {
  ptv_ctl m = hello(), out;
  uint8_t buf[512];
  int n = ptv_ctl_encode(buf, sizeof(buf), &m);
  assert_int_equal(n, 6 + 124 + 4 + 9);
  assert_int_equal(buf[1], PTV_CTL_HELLO);
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), n);
  assert_int_equal(out.u.hello.role, PTV_ROLE_SOURCE);
  assert_int_equal(out.u.hello.nat, PTV_NAT_CONE);
  assert_int_equal(out.u.hello.upload_kbps, 8000);
  assert_int_equal(out.u.hello.want_id, 0x01020304);
  assert_true(out.u.hello.ts_us == 0x1122334455667788ull);
  assert_memory_equal(out.u.hello.pk, PK, PTV_CTL_PKLEN);
  assert_int_equal(out.u.hello.chunk_us, 250000);
  assert_int_equal(out.u.hello.stream_kbps, 2000);
  assert_int_equal(out.u.hello.name_len, 4);
  assert_memory_equal(out.u.hello.name, "news", 4);
  assert_int_equal(out.u.hello.desc_len, 9);
  assert_memory_equal(out.u.hello.desc, "late news", 9);
  assert_memory_equal(out.u.hello.sig, SIG, PTV_CTL_SIGLEN);
  assert_int_equal(buf[6 + 18], 0xaa); /* pk starts after role nat up want ts */
  /* a peer's HELLO: no description */
  m.u.hello.desc_len = 0;
  m.u.hello.desc = NULL;
  n = ptv_ctl_encode(buf, sizeof(buf), &m);
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), n);
  assert_null(out.u.hello.desc);
}

static void test_hello_signed_bytes(void **state) {
  ptv_ctl m = hello();
  uint8_t a[PTV_CTL_MAX_BODY + 16], b[PTV_CTL_MAX_BODY + 16], wire[512];
  int na = ptv_ctl_hello_signed_bytes(&m.u.hello, a, sizeof(a));
  assert_int_equal(na, 9 + 124 + 4 + 9 - 64);
  assert_memory_equal(a, "PTVHELLO1", 9);
  int nw = ptv_ctl_encode(wire, sizeof(wire), &m);
  /* exactly the body before the signature */
  assert_memory_equal(a + 9, wire + 6, (size_t)nw - 6 - 64);
  SIG[0] ^= 1; /* the signature itself is not covered */
  assert_int_equal(ptv_ctl_hello_signed_bytes(&m.u.hello, b, sizeof(b)), na);
  assert_memory_equal(a, b, (size_t)na);
  m.u.hello.ts_us++; /* every field is */
  ptv_ctl_hello_signed_bytes(&m.u.hello, b, sizeof(b));
  assert_memory_not_equal(a, b, (size_t)na);
  m = hello();
  m.u.hello.role = PTV_ROLE_PEER;
  ptv_ctl_hello_signed_bytes(&m.u.hello, b, sizeof(b));
  assert_memory_not_equal(a, b, (size_t)na);
  assert_int_equal(ptv_ctl_hello_signed_bytes(&m.u.hello, b, 10), PTV_ERR_NOBUF);
}

static void test_other_roundtrips(void **state) {
  uint8_t buf[2048];
  ptv_ctl m = {.type = PTV_CTL_WELCOME}, out;
  m.u.welcome.id = 9;
  m.u.welcome.tracker = 0;
  m.u.welcome.chunk_us = 50000;
  m.u.welcome.stream_kbps = 1500;
  m.u.welcome.publisher_pk = PK;
  int n = ptv_ctl_encode(buf, sizeof(buf), &m);
  assert_int_equal(n, 6 + 48);
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), n);
  assert_int_equal(out.u.welcome.id, 9);
  assert_int_equal(out.u.welcome.chunk_us, 50000);
  assert_int_equal(out.u.welcome.stream_kbps, 1500);
  assert_memory_equal(out.u.welcome.publisher_pk, PK, 32);

  memset(&m, 0, sizeof(m));
  m.type = PTV_CTL_ERROR;
  m.u.error.code = PTV_CTL_E_BANNED;
  m.u.error.text = "banned";
  m.u.error.text_len = 6;
  n = ptv_ctl_encode(buf, sizeof(buf), &m);
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), n);
  assert_int_equal(out.u.error.code, PTV_CTL_E_BANNED);
  assert_memory_equal(out.u.error.text, "banned", 6);

  uint8_t data[PTV_CTL_SIGNAL_MAX];
  for (int i = 0; i < PTV_CTL_SIGNAL_MAX; i++) data[i] = (uint8_t)i;
  memset(&m, 0, sizeof(m));
  m.type = PTV_CTL_SIGNAL;
  m.u.signal.peer = 0xdeadbeef;
  m.u.signal.kind = PTV_SIG_KX;
  m.u.signal.pk = PK;
  m.u.signal.data = data;
  m.u.signal.data_len = PTV_CTL_SIGNAL_MAX;
  n = ptv_ctl_encode(buf, sizeof(buf), &m);
  assert_int_equal(n, 6 + 39 + PTV_CTL_SIGNAL_MAX);
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), n);
  assert_int_equal(out.u.signal.peer, 0xdeadbeef);
  assert_int_equal(out.u.signal.kind, PTV_SIG_KX);
  assert_memory_equal(out.u.signal.pk, PK, 32);
  assert_memory_equal(out.u.signal.data, data, PTV_CTL_SIGNAL_MAX);
  m.u.signal.pk = NULL; /* a client sends zeros */
  m.u.signal.data_len = 0;
  m.u.signal.data = NULL;
  n = ptv_ctl_encode(buf, sizeof(buf), &m);
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), n);
  for (int i = 0; i < 32; i++) assert_int_equal(out.u.signal.pk[i], 0);
  assert_null(out.u.signal.data);
  m.u.signal.kind = PTV_SIG_OVERLAY; /* the highest kind */
  n = ptv_ctl_encode(buf, sizeof(buf), &m);
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), n);
  assert_int_equal(out.u.signal.kind, PTV_SIG_OVERLAY);
  buf[6 + 4] = PTV_SIG_MAX + 1; /* one above: refused */
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), PTV_ERR_MALFORMED);

  memset(&m, 0, sizeof(m));
  m.type = PTV_CTL_END;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), 6);
  assert_int_equal(ptv_ctl_decode(&out, buf, 6), 6);
  assert_int_equal(out.type, PTV_CTL_END);
}

static void test_encode_invalid(void **state) {
  uint8_t buf[2048];
  ptv_ctl m = hello();
  m.u.hello.name_len = 0;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  m = hello();
  m.u.hello.name_len = PTV_CTL_NAME_MAX + 1;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  m = hello();
  m.u.hello.role = 2;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  m = hello();
  m.u.hello.pk = NULL;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  m = hello();
  assert_int_equal(ptv_ctl_encode(buf, 20, &m), PTV_ERR_NOBUF);
  memset(&m, 0, sizeof(m));
  m.type = PTV_CTL_SIGNAL;
  m.u.signal.kind = PTV_SIG_MAX + 1;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  m.u.signal.kind = 0;
  m.u.signal.data_len = PTV_CTL_SIGNAL_MAX + 1;
  m.u.signal.data = buf;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  memset(&m, 0, sizeof(m));
  m.type = PTV_CTL_ERROR; /* code 0 is not an error */
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  m.type = 40;
  assert_int_equal(ptv_ctl_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
}

static void test_decode_malformed(void **state) {
  uint8_t buf[512];
  ptv_ctl m = hello(), out;
  int n = ptv_ctl_encode(buf, sizeof(buf), &m);
  /* every truncation is SHORT (header says more is coming) */
  for (int k = 0; k < n; k++) assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)k), PTV_ERR_SHORT);
  /* a body one byte longer than its fields is malformed */
  buf[5]++;
  buf[n] = 0;
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n + 1), PTV_ERR_MALFORMED);
  buf[5]--;
  /* name_len pointing past the body */
  uint8_t save = buf[6 + 58];
  buf[6 + 58] = 200;
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), PTV_ERR_MALFORMED);
  buf[6 + 58] = 0;
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), PTV_ERR_MALFORMED);
  buf[6 + 58] = save;
  buf[6] = 7; /* role */
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), PTV_ERR_MALFORMED);
  buf[6] = PTV_ROLE_SOURCE;
  buf[0] = 1; /* the version before BUFFERMAP's kids */
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), PTV_ERR_VERSION);
  buf[0] = PTV_WIRE_VERSION;
  buf[1] = PTV_MSG_JOIN; /* an overlay type is not a control message */
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), PTV_ERR_UNKNOWN_TYPE);
  buf[1] = PTV_CTL_TYPE_MAX + 1;
  assert_int_equal(ptv_ctl_decode(&out, buf, (size_t)n), PTV_ERR_UNKNOWN_TYPE);
  /* a huge declared body is refused before waiting for it */
  const uint8_t huge[6] = {PTV_WIRE_VERSION, PTV_CTL_SIGNAL, 0, 1, 0, 0};
  assert_int_equal(ptv_ctl_decode(&out, huge, 6), PTV_ERR_MALFORMED);
  const uint8_t end_body[7] = {PTV_WIRE_VERSION, PTV_CTL_END, 0, 0, 0, 1, 0};
  assert_int_equal(ptv_ctl_decode(&out, end_body, 7), PTV_ERR_MALFORMED);
  const uint8_t err0[9] = {PTV_WIRE_VERSION, PTV_CTL_ERROR, 0, 0, 0, 3, 0, 0, 0};
  assert_int_equal(ptv_ctl_decode(&out, err0, 9), PTV_ERR_MALFORMED);
}

static void test_frame_len(void **state) {
  uint8_t buf[16] = {PTV_WIRE_VERSION, 9, 0, 0, 0, 4};
  assert_int_equal(ptv_ctl_frame_len(buf, 5, 100), 0);
  assert_int_equal(ptv_ctl_frame_len(buf, 6, 100), 10);
  assert_int_equal(ptv_ctl_frame_len(buf, 6, 3), PTV_ERR_MALFORMED);
  buf[0] = 0;
  assert_int_equal(ptv_ctl_frame_len(buf, 6, 100), PTV_ERR_VERSION);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello_roundtrip),   cmocka_unit_test(test_hello_signed_bytes),
      cmocka_unit_test(test_other_roundtrips),  cmocka_unit_test(test_encode_invalid),
      cmocka_unit_test(test_decode_malformed),  cmocka_unit_test(test_frame_len),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
