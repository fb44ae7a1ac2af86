#include "ptv_chunkset.h"
#include "ptv_err.h"
#include "ptv_wire.h"
#include <string.h>

#define RING(id) ((id) % PTV_CHUNKSET_BITS)

void ptv_chunkset_init(ptv_chunkset *cs, ptv_chunk_id base) {
  memset(cs, 0, sizeof(*cs));
  cs->base = base;
  cs->newest = base;
}

int ptv_chunkset_has(const ptv_chunkset *cs, ptv_chunk_id id) {
  if (id < cs->base || id - cs->base >= PTV_CHUNKSET_BITS) return 0;
  unsigned r = RING(id);
  return (int)((cs->w[r >> 6] >> (r & 63)) & 1);
}

uint64_t ptv_chunkset_word(const ptv_chunkset *cs, ptv_chunk_id from) {
  /* Only ids in [base, base + BITS) are held: the ring aliases the rest. */
  uint64_t lo = cs->base, hi = (uint64_t)cs->base + PTV_CHUNKSET_BITS, f = from;
  if (f + 64 <= lo || f >= hi) return 0;
  unsigned r = RING(from), wi = r >> 6, sh = r & 63;
  uint64_t v = cs->w[wi] >> sh;
  if (sh) v |= cs->w[(wi + 1) % PTV_CHUNKSET_WORDS] << (64 - sh);
  if (f < lo) v &= ~0ULL << (lo - f);              /* below the window */
  if (f + 64 > hi) v &= ~0ULL >> (f + 64 - hi);    /* beyond it */
  return v;
}

static void clear_bit(ptv_chunkset *cs, ptv_chunk_id id) {
  unsigned r = RING(id);
  uint64_t m = 1ULL << (r & 63);
  if (cs->w[r >> 6] & m) {
    cs->w[r >> 6] &= ~m;
    cs->count--;
  }
}

void ptv_chunkset_advance(ptv_chunkset *cs, ptv_chunk_id new_base) {
  if (new_base <= cs->base) return;
  if (new_base - cs->base >= PTV_CHUNKSET_BITS) {
    memset(cs->w, 0, sizeof(cs->w));
    cs->count = 0;
  } else {
    for (ptv_chunk_id id = cs->base; id < new_base; id++) clear_bit(cs, id);
  }
  cs->base = new_base;
  if (cs->count == 0) cs->newest = new_base;
}

int ptv_chunkset_add(ptv_chunkset *cs, ptv_chunk_id id) {
  if (id < cs->base) return PTV_ERR_INVALID_ARG;
  if (id - cs->base >= PTV_CHUNKSET_BITS)
    ptv_chunkset_advance(cs, id - PTV_CHUNKSET_BITS + 1);
  unsigned r = RING(id);
  uint64_t m = 1ULL << (r & 63);
  if (cs->w[r >> 6] & m) return 0;
  cs->w[r >> 6] |= m;
  if (cs->count == 0 || id > cs->newest) cs->newest = id;
  cs->count++;
  return 1;
}

void ptv_chunkset_export(const ptv_chunkset *cs, ptv_chunk_id from,
                         unsigned nbits, uint8_t *out) {
  memset(out, 0, (nbits + 7) / 8);
  for (unsigned i = 0; i < nbits; i++)
    if (ptv_chunkset_has(cs, from + i)) ptv_wire_bit_set(out, i);
}

void ptv_chunkset_import(ptv_chunkset *cs, ptv_chunk_id base, unsigned nbits,
                         const uint8_t *bits) {
  if (nbits > PTV_CHUNKSET_BITS) nbits = PTV_CHUNKSET_BITS;
  ptv_chunkset_init(cs, base);
  for (unsigned i = 0; i < nbits; i++)
    if (ptv_wire_bit_get(bits, i)) ptv_chunkset_add(cs, base + i);
}
