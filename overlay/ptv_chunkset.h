/* ptv_chunkset.h -- which chunks a node holds, as a sliding window of bits.
 *
 * A node only cares about chunks near the live point, so it keeps a window of
 * PTV_CHUNKSET_BITS chunk ids [base, base+BITS) as a ring of bits. Adding an id
 * beyond the window slides it forward and forgets the oldest ids. The same
 * type, with a fixed base, describes a partner's buffer map.
 */
#ifndef PTV_CHUNKSET_H
#define PTV_CHUNKSET_H

#include "ptv_types.h"

#define PTV_CHUNKSET_BITS 256u
#define PTV_CHUNKSET_WORDS (PTV_CHUNKSET_BITS / 64u)

typedef struct {
  ptv_chunk_id base;   /* oldest id the window covers */
  ptv_chunk_id newest; /* newest id held; valid when count > 0 */
  uint32_t count;      /* ids held in the window */
  uint64_t w[PTV_CHUNKSET_WORDS]; /* ring: id lives at bit id % BITS */
} ptv_chunkset;

/* Empties the set; the window starts at `base`. */
void ptv_chunkset_init(ptv_chunkset *cs, ptv_chunk_id base);

/* 1 if id is held, 0 otherwise (ids outside the window are not held). */
int ptv_chunkset_has(const ptv_chunkset *cs, ptv_chunk_id id);

/* The 64 ids [from, from+64) as a word: bit i is ptv_chunkset_has(from + i).
 * For scans that test many ids at once. */
uint64_t ptv_chunkset_word(const ptv_chunkset *cs, ptv_chunk_id from);

/* Adds id. Returns 1 if it was new, 0 if already held, PTV_ERR_INVALID_ARG if
 * id is older than the window (too old to keep). Slides the window forward if
 * id lies beyond it. */
int ptv_chunkset_add(ptv_chunkset *cs, ptv_chunk_id id);

/* Forgets every id below new_base (no-op if new_base <= base). */
void ptv_chunkset_advance(ptv_chunkset *cs, ptv_chunk_id new_base);

/* Writes the bits for ids [from, from+nbits) into out (MSB-first bytes as on
 * the wire; out must hold ceil(nbits/8) bytes, zeroed by this call). */
void ptv_chunkset_export(const ptv_chunkset *cs, ptv_chunk_id from,
                         unsigned nbits, uint8_t *out);

/* Replaces the contents with a wire bitmap: bit i set means id base+i held.
 * nbits <= PTV_CHUNKSET_BITS. */
void ptv_chunkset_import(ptv_chunkset *cs, ptv_chunk_id base, unsigned nbits,
                         const uint8_t *bits);

#endif
