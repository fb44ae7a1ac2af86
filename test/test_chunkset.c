/* test_chunkset.c -- unit tests for the sliding-window chunk set. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "ptv_chunkset.h"
#include "ptv_err.h"
#include "ptv_wire.h"
#include "test_rand.h"

#define BITS PTV_CHUNKSET_BITS

/* ---- helpers ------------------------------------------------------------ */

/* Counts the ids held in [from, to) by asking has(). */
static uint32_t count_held(const ptv_chunkset *cs, ptv_chunk_id from,
                           ptv_chunk_id to) {
  uint32_t n = 0;
  for (ptv_chunk_id id = from; id < to; id++) n += (uint32_t)ptv_chunkset_has(cs, id);
  return n;
}

/* ---- init / has ------------------------------------------------------- */

static void test_init_empty(void **state) {
  ptv_chunkset cs;
  memset(&cs, 0xa5, sizeof(cs)); /* init must not rely on zeroed memory */
  ptv_chunkset_init(&cs, 1000);
  assert_int_equal(cs.base, 1000);
  assert_int_equal(cs.count, 0);
  assert_int_equal(cs.newest, 1000);
  assert_int_equal(count_held(&cs, 0, 1000 + 2 * BITS), 0);
}

static void test_has_outside_window(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 512);
  assert_int_equal(ptv_chunkset_add(&cs, 512), 1);
  assert_int_equal(ptv_chunkset_add(&cs, 512 + BITS - 1), 1);
  /* Same ring bits as the held ids, but outside the window: not held. */
  assert_int_equal(ptv_chunkset_has(&cs, 512 - BITS), 0);
  assert_int_equal(ptv_chunkset_has(&cs, 512 + BITS), 0);
  assert_int_equal(ptv_chunkset_has(&cs, 512 + 2 * BITS - 1), 0);
  assert_int_equal(ptv_chunkset_has(&cs, 511), 0);
  assert_int_equal(ptv_chunkset_has(&cs, 512), 1);
  assert_int_equal(ptv_chunkset_has(&cs, 512 + BITS - 1), 1);
}

/* ---- add -------------------------------------------------------------- */

static void test_add_new_and_duplicate(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  assert_int_equal(ptv_chunkset_add(&cs, 5), 1);
  assert_int_equal(cs.count, 1);
  assert_int_equal(cs.newest, 5);
  assert_int_equal(ptv_chunkset_add(&cs, 5), 0);
  assert_int_equal(cs.count, 1);
  assert_int_equal(ptv_chunkset_add(&cs, 3), 1);
  assert_int_equal(cs.count, 2);
  assert_int_equal(cs.newest, 5); /* older id does not move newest */
  assert_int_equal(ptv_chunkset_add(&cs, 200), 1);
  assert_int_equal(cs.newest, 200);
  assert_int_equal(cs.base, 0);
  assert_true(ptv_chunkset_has(&cs, 3));
  assert_true(ptv_chunkset_has(&cs, 5));
  assert_true(ptv_chunkset_has(&cs, 200));
  assert_false(ptv_chunkset_has(&cs, 4));
  assert_int_equal(count_held(&cs, 0, BITS), 3);
}

static void test_add_base_is_newest_when_first(void **state) {
  /* The first add sets newest even when it equals the initial newest. */
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 50);
  assert_int_equal(ptv_chunkset_add(&cs, 50), 1);
  assert_int_equal(cs.newest, 50);
  assert_int_equal(cs.count, 1);
}

static void test_add_too_old_rejected(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 100);
  assert_int_equal(ptv_chunkset_add(&cs, 99), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_chunkset_add(&cs, 0), PTV_ERR_INVALID_ARG);
  assert_int_equal(cs.count, 0);
  assert_int_equal(cs.base, 100);
  assert_int_equal(ptv_chunkset_add(&cs, 100), 1); /* base itself is fine */

  /* After the window slid, ids that fell out are too old. */
  assert_int_equal(ptv_chunkset_add(&cs, 1000), 1);
  assert_int_equal(cs.base, 1000 - BITS + 1);
  assert_int_equal(ptv_chunkset_add(&cs, 1000 - BITS), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_chunkset_add(&cs, 100), PTV_ERR_INVALID_ARG);
  assert_int_equal(cs.count, 1);
  assert_int_equal(cs.newest, 1000);
  /* The oldest id still inside is accepted. */
  assert_int_equal(ptv_chunkset_add(&cs, 1000 - BITS + 1), 1);
  assert_int_equal(cs.count, 2);
}

static void test_window_boundary_slide_by_one(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  for (ptv_chunk_id id = 0; id < BITS; id++)
    assert_int_equal(ptv_chunkset_add(&cs, id), 1);
  /* Exactly full, no slide yet. */
  assert_int_equal(cs.base, 0);
  assert_int_equal(cs.count, BITS);
  assert_int_equal(cs.newest, BITS - 1);
  assert_true(ptv_chunkset_has(&cs, 0));

  /* One past the window: slides by exactly one, forgetting id 0 whose ring
   * bit is the one id BITS reuses. */
  assert_int_equal(ptv_chunkset_add(&cs, BITS), 1);
  assert_int_equal(cs.base, 1);
  assert_int_equal(cs.count, BITS);
  assert_int_equal(cs.newest, BITS);
  assert_false(ptv_chunkset_has(&cs, 0));
  assert_true(ptv_chunkset_has(&cs, 1));
  assert_true(ptv_chunkset_has(&cs, BITS));
  assert_int_equal(count_held(&cs, 0, 3 * BITS), BITS);
}

static void test_ring_wraparound_many_laps(void **state) {
  /* Adding ids one by one over several laps of the ring: the window always
   * holds the last BITS ids and nothing older. */
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  for (ptv_chunk_id id = 0; id < 5 * BITS + 17; id++) {
    assert_int_equal(ptv_chunkset_add(&cs, id), 1);
    uint32_t expect = id + 1 < BITS ? id + 1 : BITS;
    assert_int_equal(cs.count, expect);
    assert_int_equal(cs.newest, id);
    if (id >= BITS) {
      assert_int_equal(cs.base, id - BITS + 1);
      assert_false(ptv_chunkset_has(&cs, id - BITS));
      assert_true(ptv_chunkset_has(&cs, id - BITS + 1));
    }
  }
  ptv_chunk_id last = 5 * BITS + 16;
  assert_int_equal(count_held(&cs, 0, last + BITS), BITS);
}

static void test_sparse_slide_keeps_survivors(void **state) {
  /* Every third id, then a jump of half a window: ids still in the window
   * survive, older ones are gone, and count agrees with has(). */
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  uint32_t added = 0;
  for (ptv_chunk_id id = 0; id < BITS; id += 3) {
    assert_int_equal(ptv_chunkset_add(&cs, id), 1);
    added++;
  }
  assert_int_equal(cs.count, added);
  ptv_chunk_id jump = BITS + BITS / 2; /* new base = BITS/2 + 1 */
  assert_int_equal(ptv_chunkset_add(&cs, jump), 1);
  assert_int_equal(cs.base, jump - BITS + 1);
  for (ptv_chunk_id id = 0; id < BITS; id++) {
    int expect = (id % 3 == 0) && id >= cs.base;
    assert_int_equal(ptv_chunkset_has(&cs, id), expect);
  }
  assert_int_equal(cs.count, count_held(&cs, 0, 3 * BITS));
  assert_int_equal(cs.newest, jump);
}

static void test_far_jump_clears_everything(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  for (ptv_chunk_id id = 0; id < BITS; id++) ptv_chunkset_add(&cs, id);
  ptv_chunk_id far = 10 * BITS + 3;
  assert_int_equal(ptv_chunkset_add(&cs, far), 1);
  assert_int_equal(cs.count, 1);
  assert_int_equal(cs.base, far - BITS + 1);
  assert_int_equal(cs.newest, far);
  assert_int_equal(count_held(&cs, 0, far + BITS), 1);
  /* A jump of exactly BITS beyond the window edge also clears all. */
  ptv_chunkset_init(&cs, 0);
  ptv_chunkset_add(&cs, 7);
  assert_int_equal(ptv_chunkset_add(&cs, 2 * BITS - 1), 1); /* base -> BITS */
  assert_int_equal(cs.base, BITS);
  assert_int_equal(cs.count, 1);
  assert_false(ptv_chunkset_has(&cs, 7));
}

static void test_high_ids(void **state) {
  /* Ids near the top of the 32-bit range. */
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  assert_int_equal(ptv_chunkset_add(&cs, UINT32_MAX - 1), 1);
  assert_int_equal(cs.base, UINT32_MAX - BITS);
  assert_int_equal(ptv_chunkset_add(&cs, UINT32_MAX), 1);
  assert_int_equal(cs.base, UINT32_MAX - BITS + 1);
  assert_int_equal(cs.count, 2);
  assert_int_equal(cs.newest, UINT32_MAX);
  assert_true(ptv_chunkset_has(&cs, UINT32_MAX));
  assert_true(ptv_chunkset_has(&cs, UINT32_MAX - 1));
  assert_false(ptv_chunkset_has(&cs, UINT32_MAX - 2));
  assert_false(ptv_chunkset_has(&cs, 0));
  assert_int_equal(ptv_chunkset_add(&cs, 5), PTV_ERR_INVALID_ARG);
}

/* ---- advance ---------------------------------------------------------- */

static void test_advance(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 10);
  for (ptv_chunk_id id = 10; id < 10 + BITS; id += 2) ptv_chunkset_add(&cs, id);
  uint32_t before = cs.count;

  /* No-op when new_base <= base. */
  ptv_chunkset_advance(&cs, 10);
  ptv_chunkset_advance(&cs, 3);
  assert_int_equal(cs.base, 10);
  assert_int_equal(cs.count, before);

  /* Forgets 10, 12, 14, 16 (ids below 17). */
  ptv_chunkset_advance(&cs, 17);
  assert_int_equal(cs.base, 17);
  assert_int_equal(cs.count, before - 4);
  assert_false(ptv_chunkset_has(&cs, 16));
  assert_true(ptv_chunkset_has(&cs, 18));
  assert_int_equal(cs.newest, 10 + BITS - 2);
  assert_int_equal(ptv_chunkset_add(&cs, 16), PTV_ERR_INVALID_ARG);
  /* Advancing does not extend the window's content: 17 + BITS - 1 is a new
   * id inside the window, adding it does not slide. */
  assert_int_equal(ptv_chunkset_add(&cs, 17 + BITS - 1), 1);
  assert_int_equal(cs.base, 17);

  /* Advance past everything held: empty, newest follows the base. */
  ptv_chunkset_advance(&cs, 17 + BITS);
  assert_int_equal(cs.count, 0);
  assert_int_equal(cs.base, 17 + BITS);
  assert_int_equal(cs.newest, 17 + BITS);
  assert_int_equal(count_held(&cs, 0, 20 + 3 * BITS), 0);

  /* Advance by far more than a window. */
  ptv_chunkset_add(&cs, 17 + BITS + 5);
  ptv_chunkset_advance(&cs, 100000);
  assert_int_equal(cs.count, 0);
  assert_int_equal(cs.base, 100000);
  assert_false(ptv_chunkset_has(&cs, 17 + BITS + 5));
  assert_int_equal(ptv_chunkset_add(&cs, 100000), 1);
  assert_int_equal(cs.newest, 100000);
}

/* ---- model check -------------------------------------------------------- */

#define MODEL_IDS 6000

static void test_random_against_model(void **state) {
  /* Random adds (mostly near the front, some too old, some far ahead) and
   * advances, compared after every step with a plain array model. */
  static uint8_t held[MODEL_IDS + 2 * BITS];
  memset(held, 0, sizeof(held));
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  ptv_chunk_id mbase = 0;
  rng_state = 0x1234567ULL;

  for (int step = 0; step < 4000 && mbase < MODEL_IDS - 2 * BITS; step++) {
    uint64_t r = xrand();
    if (r % 10 == 0) {
      ptv_chunk_id nb = mbase + (ptv_chunk_id)(xrand() % 40);
      ptv_chunkset_advance(&cs, nb);
      if (nb > mbase) {
        for (ptv_chunk_id id = mbase; id < nb; id++) held[id] = 0;
        mbase = nb;
      }
    } else {
      /* ids in [mbase-20, mbase+BITS+60) */
      int64_t lo = (int64_t)mbase - 20;
      int64_t id64 = lo + (int64_t)(xrand() % (BITS + 80));
      if (id64 < 0) id64 = 0;
      ptv_chunk_id id = (ptv_chunk_id)id64;
      int rv = ptv_chunkset_add(&cs, id);
      if (id < mbase) {
        assert_int_equal(rv, PTV_ERR_INVALID_ARG);
      } else {
        if (id - mbase >= BITS) {
          ptv_chunk_id nb = id - BITS + 1;
          for (ptv_chunk_id j = mbase; j < nb; j++) held[j] = 0;
          mbase = nb;
        }
        assert_int_equal(rv, held[id] ? 0 : 1);
        held[id] = 1;
      }
    }
    assert_int_equal(cs.base, mbase);
    uint32_t mcount = 0;
    ptv_chunk_id mnewest = 0;
    for (ptv_chunk_id id = mbase; id < mbase + BITS; id++) {
      if (held[id]) {
        mcount++;
        mnewest = id;
      }
    }
    assert_int_equal(cs.count, mcount);
    if (mcount) assert_int_equal(cs.newest, mnewest);
    ptv_chunk_id from = mbase > 30 ? mbase - 30 : 0;
    for (ptv_chunk_id id = from; id < mbase + BITS + 30; id++) {
      int expect = id >= mbase && id < mbase + BITS && held[id];
      assert_int_equal(ptv_chunkset_has(&cs, id), expect);
    }
  }
  assert_true(mbase > 2 * BITS); /* the window really travelled */
}

/* ---- export / import -------------------------------------------------- */

static void test_export_bit_order(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 1000);
  ptv_chunkset_add(&cs, 1000); /* bit 0  -> byte 0 mask 0x80 */
  ptv_chunkset_add(&cs, 1007); /* bit 7  -> byte 0 mask 0x01 */
  ptv_chunkset_add(&cs, 1009); /* bit 9  -> byte 1 mask 0x40 */
  ptv_chunkset_add(&cs, 1015); /* bit 15 -> byte 1 mask 0x01 */
  ptv_chunkset_add(&cs, 1016); /* bit 16 -> byte 2 mask 0x80 */
  uint8_t out[4];
  memset(out, 0xff, sizeof(out));
  ptv_chunkset_export(&cs, 1000, 24, out);
  assert_int_equal(out[0], 0x81);
  assert_int_equal(out[1], 0x41);
  assert_int_equal(out[2], 0x80);
  assert_int_equal(out[3], 0xff); /* beyond ceil(24/8): untouched */
}

static void test_export_partial_byte_and_offset(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  ptv_chunkset_add(&cs, 3);
  ptv_chunkset_add(&cs, 4);
  ptv_chunkset_add(&cs, 12);
  ptv_chunkset_add(&cs, 13); /* outside the 10 exported bits from 3 */
  uint8_t out[3];
  memset(out, 0xff, sizeof(out));
  /* ids [3, 13): bits 0 (id 3), 1 (id 4), 9 (id 12). */
  ptv_chunkset_export(&cs, 3, 10, out);
  assert_int_equal(out[0], 0xc0);
  assert_int_equal(out[1], 0x40); /* padding bits zeroed, id 13 not there */
  assert_int_equal(out[2], 0xff);
}

static void test_export_outside_window_is_zero(void **state) {
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  for (ptv_chunk_id id = 300; id < 300 + BITS; id++) ptv_chunkset_add(&cs, id);
  /* base is now 300; export [200, 200+BITS*2): only [300, 300+BITS) set. */
  uint8_t out[2 * BITS / 8];
  ptv_chunkset_export(&cs, 200, 2 * BITS, out);
  for (unsigned i = 0; i < 2 * BITS; i++) {
    int expect = 200 + i >= 300 && 200 + i < 300 + BITS;
    assert_int_equal(ptv_wire_bit_get(out, i), expect);
  }
  /* Nothing held: all zero even if the buffer was dirty. */
  ptv_chunkset_init(&cs, 0);
  memset(out, 0xff, sizeof(out));
  ptv_chunkset_export(&cs, 0, 2 * BITS, out);
  for (size_t i = 0; i < sizeof(out); i++) assert_int_equal(out[i], 0);
}

static void test_import_basic(void **state) {
  uint8_t bits[3] = {0x81, 0x00, 0x20}; /* bits 0, 7, 18 */
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 0);
  for (ptv_chunk_id id = 0; id < 50; id++) ptv_chunkset_add(&cs, id);
  ptv_chunkset_import(&cs, 5000, 19, bits);
  assert_int_equal(cs.base, 5000);
  assert_int_equal(cs.count, 3);
  assert_int_equal(cs.newest, 5018);
  assert_true(ptv_chunkset_has(&cs, 5000));
  assert_true(ptv_chunkset_has(&cs, 5007));
  assert_true(ptv_chunkset_has(&cs, 5018));
  assert_int_equal(count_held(&cs, 0, 5000 + 2 * BITS), 3);
  /* The old contents are gone. */
  assert_false(ptv_chunkset_has(&cs, 10));

  /* Only nbits bits count: bit 18 ignored with nbits = 18. */
  ptv_chunkset_import(&cs, 5000, 18, bits);
  assert_int_equal(cs.count, 2);
  assert_false(ptv_chunkset_has(&cs, 5018));

  /* Empty import. */
  ptv_chunkset_import(&cs, 77, 0, bits);
  assert_int_equal(cs.count, 0);
  assert_int_equal(cs.base, 77);
}

static void test_import_full_window(void **state) {
  uint8_t bits[BITS / 8];
  memset(bits, 0xff, sizeof(bits));
  ptv_chunkset cs;
  ptv_chunkset_import(&cs, 123, BITS, bits);
  assert_int_equal(cs.base, 123); /* a full window does not slide */
  assert_int_equal(cs.count, BITS);
  assert_int_equal(cs.newest, 123 + BITS - 1);
  assert_true(ptv_chunkset_has(&cs, 123));
  assert_false(ptv_chunkset_has(&cs, 123 + BITS));
}

static void test_import_oversized_keeps_base(void **state) {
  /* nbits beyond the window: the map still starts at `base` (no slide),
   * the bits that fit are taken, the rest dropped. */
  uint8_t bits[2 * BITS / 8];
  memset(bits, 0, sizeof(bits));
  ptv_wire_bit_set(bits, 0);
  ptv_wire_bit_set(bits, BITS - 1);
  ptv_wire_bit_set(bits, BITS);       /* would need a slide */
  ptv_wire_bit_set(bits, 2 * BITS - 1);
  ptv_chunkset cs;
  ptv_chunkset_import(&cs, 10, 2 * BITS, bits);
  assert_int_equal(cs.base, 10);
  assert_int_equal(cs.count, 2);
  assert_true(ptv_chunkset_has(&cs, 10));
  assert_true(ptv_chunkset_has(&cs, 10 + BITS - 1));
  assert_int_equal(cs.newest, 10 + BITS - 1);
}

static void test_export_import_roundtrip(void **state) {
  rng_state = 0xfeedULL;
  for (int round = 0; round < 50; round++) {
    ptv_chunkset a, b;
    ptv_chunk_id base = (ptv_chunk_id)(xrand() % 100000);
    ptv_chunkset_init(&a, base);
    /* Fill with a random pattern, sliding the window a random amount so the
     * ring does not start at bit 0. */
    ptv_chunk_id top = base + (ptv_chunk_id)(xrand() % (3 * BITS));
    for (ptv_chunk_id id = base; id <= top; id++)
      if (xrand() & 1) ptv_chunkset_add(&a, id);
    ptv_chunkset_add(&a, top);

    uint8_t wire[BITS / 8];
    ptv_chunkset_export(&a, a.base, BITS, wire);
    ptv_chunkset_import(&b, a.base, BITS, wire);
    assert_int_equal(b.base, a.base);
    assert_int_equal(b.count, a.count);
    assert_int_equal(b.newest, a.newest);
    for (ptv_chunk_id id = a.base - (a.base > 10 ? 10 : 0); id < a.base + BITS + 10; id++)
      assert_int_equal(ptv_chunkset_has(&b, id), ptv_chunkset_has(&a, id));

    /* And back again gives the same bytes. */
    uint8_t wire2[BITS / 8];
    ptv_chunkset_export(&b, b.base, BITS, wire2);
    assert_memory_equal(wire, wire2, sizeof(wire));
  }
}

static void test_roundtrip_through_wire_message(void **state) {
  /* A buffer map built from a chunk set survives the wire codec and import. */
  ptv_chunkset a, b;
  ptv_chunkset_init(&a, 40);
  for (ptv_chunk_id id = 40; id < 40 + 100; id += 7) ptv_chunkset_add(&a, id);
  uint8_t bits[(100 + 7) / 8];
  ptv_chunkset_export(&a, 40, 100, bits);

  ptv_msg m;
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_BUFFERMAP;
  m.u.buffermap.base = 40;
  m.u.buffermap.nbits = 100;
  m.u.buffermap.bits = bits;
  uint8_t buf[256];
  int len = ptv_wire_encode(buf, sizeof(buf), &m);
  assert_true(len > 0);
  ptv_msg d;
  assert_int_equal(ptv_wire_decode(&d, buf, (size_t)len), len);
  ptv_chunkset_import(&b, d.u.buffermap.base, d.u.buffermap.nbits,
                      d.u.buffermap.bits);
  assert_int_equal(b.count, a.count);
  for (ptv_chunk_id id = 30; id < 40 + BITS; id++)
    assert_int_equal(ptv_chunkset_has(&b, id), ptv_chunkset_has(&a, id));
}

/* ptv_chunkset_word(cs, from) is the 64 ids from `from` as bits: it must
 * agree with ptv_chunkset_has for every id, across the ring's wrap, below
 * the window and beyond it (where the ring would alias older ids). */
static void test_word_matches_has(void **state) {
  (void)state;
  rng_state = 77;
  for (int round = 0; round < 200; round++) {
    ptv_chunkset cs;
    ptv_chunk_id base = (ptv_chunk_id)(xrand() % 1000);
    ptv_chunkset_init(&cs, base);
    int adds = (int)(xrand() % 300);
    for (int i = 0; i < adds; i++)
      ptv_chunkset_add(&cs, base + (ptv_chunk_id)(xrand() % 400));
    for (int k = 0; k < 40; k++) {
      int64_t f = (int64_t)cs.base + (int64_t)(xrand() % 400) - 100;
      if (f < 0) f = 0;
      ptv_chunk_id from = (ptv_chunk_id)f;
      uint64_t w = ptv_chunkset_word(&cs, from);
      for (unsigned i = 0; i < 64; i++)
        if ((int)((w >> i) & 1) != ptv_chunkset_has(&cs, from + i))
          fail_msg("base %u from %u bit %u: word %d has %d", cs.base, from, i,
                   (int)((w >> i) & 1), ptv_chunkset_has(&cs, from + i));
    }
  }
  /* A full window: the word just beyond it is empty, the last one full. */
  ptv_chunkset cs;
  ptv_chunkset_init(&cs, 10);
  for (ptv_chunk_id id = 10; id < 10 + PTV_CHUNKSET_BITS; id++) ptv_chunkset_add(&cs, id);
  assert_true(ptv_chunkset_word(&cs, 10 + PTV_CHUNKSET_BITS) == 0);
  assert_true(ptv_chunkset_word(&cs, 10 + PTV_CHUNKSET_BITS - 64) == ~0ULL);
  assert_true(ptv_chunkset_word(&cs, 10 + PTV_CHUNKSET_BITS - 1) == 1);
  assert_true(ptv_chunkset_word(&cs, 9) == ~0ULL << 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_empty),
      cmocka_unit_test(test_has_outside_window),
      cmocka_unit_test(test_add_new_and_duplicate),
      cmocka_unit_test(test_add_base_is_newest_when_first),
      cmocka_unit_test(test_add_too_old_rejected),
      cmocka_unit_test(test_window_boundary_slide_by_one),
      cmocka_unit_test(test_ring_wraparound_many_laps),
      cmocka_unit_test(test_sparse_slide_keeps_survivors),
      cmocka_unit_test(test_far_jump_clears_everything),
      cmocka_unit_test(test_high_ids),
      cmocka_unit_test(test_advance),
      cmocka_unit_test(test_random_against_model),
      cmocka_unit_test(test_export_bit_order),
      cmocka_unit_test(test_export_partial_byte_and_offset),
      cmocka_unit_test(test_export_outside_window_is_zero),
      cmocka_unit_test(test_import_basic),
      cmocka_unit_test(test_import_full_window),
      cmocka_unit_test(test_import_oversized_keeps_base),
      cmocka_unit_test(test_export_import_roundtrip),
      cmocka_unit_test(test_roundtrip_through_wire_message),
      cmocka_unit_test(test_word_matches_has),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
