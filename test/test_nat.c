/* test_nat.c -- unit tests for the NAT connectivity rule. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ptv_nat.h"

static const ptv_nat_type all[4] = {PTV_NAT_OPEN, PTV_NAT_CONE,
                                    PTV_NAT_SYMMETRIC, PTV_NAT_UNKNOWN};

/* expect[a][b], rows/columns: open, cone, symmetric, unknown. */
static const int expect[4][4] = {
    /*            open cone sym unk */
    /* open */ {1, 1, 1, 1},
    /* cone */ {1, 1, 0, 0},
    /* sym  */ {1, 0, 0, 0},
    /* unk  */ {1, 0, 0, 0},
};

static void test_full_table(void **state) {
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      int got = ptv_nat_can_connect(all[a], all[b]);
      if (got != expect[a][b])
        fail_msg("can_connect(%s, %s) = %d, want %d", ptv_nat_name(all[a]),
                 ptv_nat_name(all[b]), got, expect[a][b]);
    }
}

static void test_symmetric_in_arguments(void **state) {
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++)
      assert_int_equal(ptv_nat_can_connect(all[a], all[b]),
                       ptv_nat_can_connect(all[b], all[a]));
}

static void test_results_are_boolean(void **state) {
  for (int a = 0; a < 4; a++)
    for (int b = 0; b < 4; b++) {
      int r = ptv_nat_can_connect(all[a], all[b]);
      assert_true(r == 0 || r == 1);
    }
}

static void test_unknown_behaves_as_symmetric(void **state) {
  /* The pessimistic guess: every pairing with unknown equals the same
   * pairing with symmetric. */
  for (int b = 0; b < 4; b++)
    assert_int_equal(ptv_nat_can_connect(PTV_NAT_UNKNOWN, all[b]),
                     ptv_nat_can_connect(PTV_NAT_SYMMETRIC,
                                         all[b] == PTV_NAT_UNKNOWN
                                             ? PTV_NAT_SYMMETRIC
                                             : all[b]));
}

static void test_open_reaches_everyone(void **state) {
  for (int b = 0; b < 4; b++) {
    assert_int_equal(ptv_nat_can_connect(PTV_NAT_OPEN, all[b]), 1);
    assert_int_equal(ptv_nat_can_connect(all[b], PTV_NAT_OPEN), 1);
  }
}

static void test_names(void **state) {
  assert_string_equal(ptv_nat_name(PTV_NAT_OPEN), "open");
  assert_string_equal(ptv_nat_name(PTV_NAT_CONE), "cone");
  assert_string_equal(ptv_nat_name(PTV_NAT_SYMMETRIC), "symmetric");
  assert_string_equal(ptv_nat_name(PTV_NAT_UNKNOWN), "unknown");
  /* Out-of-range values still get a non-NULL name. */
  assert_string_equal(ptv_nat_name((ptv_nat_type)42), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_table),
      cmocka_unit_test(test_symmetric_in_arguments),
      cmocka_unit_test(test_results_are_boolean),
      cmocka_unit_test(test_unknown_behaves_as_symmetric),
      cmocka_unit_test(test_open_reaches_everyone),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
