/* test_rand.h -- the tests' random inputs: xorshift64*, deterministic, good
 * enough for test data. Each test program seeds rng_state itself. */
#ifndef PTV_TEST_RAND_H
#define PTV_TEST_RAND_H

#include <stdint.h>

static uint64_t rng_state;

static inline uint64_t xrand(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ULL;
}

#endif
