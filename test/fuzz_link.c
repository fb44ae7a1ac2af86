/* fuzz_link.c -- libFuzzer target for the link layer (ptv_link).
 *
 * The input is a script of operations on link A, which talks to a well
 * behaved partner B over a lossless in-memory path:
 *   op % 4 == 0  advance the clock by the next byte x 500 us, run timers;
 *   op % 4 == 1  queue a message on A or B (size, kind, deadline from the
 *                next two bytes; bit 4 of op: a soft message instead);
 *   otherwise    a datagram for A: a 2-byte length, then that many bytes.
 * After every operation A's and B's datagrams are exchanged until both are
 * quiet. A receives arbitrary bytes, B receives whatever A makes of them (so
 * A's acks of fuzzed packet numbers are fed to B too). Checked: return codes
 * are documented ones, datagrams never exceed the mtu, delivered messages
 * never exceed max_msg and the memory bounds hold; ASan/UBSan and the leak
 * checker do the rest.
 *
 * Built with -DPTV_FUZZ_REPLAY_MAIN it gets its own main: without arguments it
 * runs the seed scripts and a fixed burst of mutations (for make check);
 * with files it replays them; `--write-seeds DIR` writes the seeds for
 * libFuzzer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_link.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_MTU 200
#define FZ_MAX_MSG 4000
#define FZ_BOUND 20000

typedef struct {
  uint64_t got, bytes;
} fz_ep;

static void fz_on_message(void *user, const uint8_t *buf, size_t len,
                          int bulk) {
  fz_ep *e = user;
  size_t i;
  uint64_t sum = 0;

  if (len == 0 || len > FZ_MAX_MSG || (bulk != 0 && bulk != 1)) {
    abort();
  }
  for (i = 0; i < len; ++i) {
    sum += buf[i]; /* every byte readable */
  }
  e->got++;
  e->bytes += sum;
}

static void fz_on_closed(void *user) { (void)user; }

static int recv_ok(int rv) {
  return rv == 0 || rv == PTV_ERR_SHORT || rv == PTV_ERR_MALFORMED ||
         rv == PTV_ERR_VERSION || rv == PTV_ERR_CLOSED;
}

static void check_bounds(const ptv_link *l) {
  ptv_link_stats st;

  ptv_link_get_stats(l, &st);
  if (st.queue_bytes > FZ_BOUND || st.reasm_bytes > FZ_BOUND) {
    abort();
  }
}

/* Exchanges datagrams until both links are quiet (bounded). */
static void pump(ptv_link *a, ptv_link *b, ptv_tstamp now) {
  uint8_t buf[FZ_MTU];
  int round, i;
  ptrdiff_t n;

  for (round = 0; round < 8; ++round) {
    int quiet = 1;

    for (i = 0; i < 64; ++i) {
      n = ptv_link_write(a, buf, sizeof(buf), now);
      if (n < 0 || n > FZ_MTU) {
        abort();
      }
      if (n == 0) {
        break;
      }
      quiet = 0;
      if (!recv_ok(ptv_link_recv(b, buf, (size_t)n, now))) {
        abort();
      }
    }
    for (i = 0; i < 64; ++i) {
      n = ptv_link_write(b, buf, sizeof(buf), now);
      if (n < 0 || n > FZ_MTU) {
        abort();
      }
      if (n == 0) {
        break;
      }
      quiet = 0;
      if (!recv_ok(ptv_link_recv(a, buf, (size_t)n, now))) {
        abort();
      }
    }
    if (quiet) {
      break;
    }
  }
  check_bounds(a);
  check_bounds(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const ptv_link_callbacks cbs = {fz_on_message, fz_on_closed, NULL};
  static uint8_t msg[FZ_MAX_MSG];
  ptv_link_config cfg;
  ptv_link *a, *b;
  fz_ep ea = {0, 0}, eb = {0, 0};
  ptv_tstamp now = 0;
  size_t i = 0;

  ptv_link_config_default(&cfg);
  cfg.mtu = FZ_MTU;
  cfg.max_msg = FZ_MAX_MSG;
  cfg.max_queue_bytes = FZ_BOUND;
  cfg.max_reasm_bytes = FZ_BOUND;
  a = ptv_link_new(&cfg, &cbs, &ea, 0);
  b = ptv_link_new(&cfg, &cbs, &eb, 0);
  if (a == NULL || b == NULL) {
    abort();
  }
  memset(msg, 0x5a, sizeof(msg));
  /* Something in flight both ways, so acks and data have state to hit. */
  if (ptv_link_send(a, msg, 700, 0, 0, 0) != 0 ||
      ptv_link_send(a, msg, 900, 1, 500 * PTV_MS, 0) != 0 ||
      ptv_link_send(b, msg, 650, 1, 0, 0) != 0) {
    abort();
  }
  pump(a, b, now);

  while (i < size) {
    uint8_t op = data[i++];

    if (op % 4 == 0) {
      now += (ptv_tstamp)(i < size ? data[i++] : 1) * 500;
      if (ptv_link_get_expiry(a) <= now) {
        ptv_link_handle_expiry(a, now);
      }
      if (ptv_link_get_expiry(b) <= now) {
        ptv_link_handle_expiry(b, now);
      }
    } else if (op % 4 == 1) {
      size_t len = 1;
      ptv_tstamp deadline = 0;
      int rv;

      if (i + 1 < size) {
        len = 1 + (size_t)data[i] * 16;
        deadline = data[i + 1] ? now + (ptv_tstamp)data[i + 1] * PTV_MS : 0;
        i += 2;
      }
      if (len > FZ_MAX_MSG) {
        len = FZ_MAX_MSG;
      }
      if ((op >> 4) & 1) {
        if (len > FZ_MTU - PTV_LINK_SOFT_OVERHEAD) {
          len = FZ_MTU - PTV_LINK_SOFT_OVERHEAD;
        }
        rv = ptv_link_send_soft((op & 4) ? b : a, msg, len, now);
      } else {
        rv = ptv_link_send((op & 4) ? b : a, msg, len, (op >> 3) & 1, deadline,
                           now);
      }
      if (rv != 0 && rv != PTV_ERR_AGAIN && rv != PTV_ERR_CLOSED) {
        abort();
      }
    } else {
      size_t len = 0;
      int rv;

      if (i + 1 < size) {
        len = (size_t)data[i] << 8 | data[i + 1];
        i += 2;
      }
      if (len > size - i) {
        len = size - i;
      }
      rv = ptv_link_recv(a, data + i, len, now);
      if (!recv_ok(rv)) {
        abort();
      }
      i += len;
    }
    pump(a, b, now);
  }
  ptv_link_free(a);
  ptv_link_free(b);
  return 0;
}

#ifdef PTV_FUZZ_REPLAY_MAIN
/* Seeds: scripts that replay datagrams a real link A' sends to B', i.e. what
 * A would see from a partner, interleaved with clock steps. */
#define SEEDS 8
#define SEED_MAX 8192
#define MUTATIONS 20000

static uint8_t seeds[SEEDS][SEED_MAX];
static size_t seed_len[SEEDS];
static uint64_t fz_rng = 0x9e3779b97f4a7c15ull;

static uint64_t fz_rand(void) {
  fz_rng ^= fz_rng >> 12;
  fz_rng ^= fz_rng << 25;
  fz_rng ^= fz_rng >> 27;
  return fz_rng * 2685821657736338717ULL;
}

static void make_seeds(void) {
  static const ptv_link_callbacks cbs = {fz_on_message, fz_on_closed, NULL};
  ptv_link_config cfg;
  uint8_t buf[FZ_MTU], m[3000];
  int s;

  ptv_link_config_default(&cfg);
  cfg.mtu = FZ_MTU;
  cfg.max_msg = FZ_MAX_MSG;
  cfg.max_queue_bytes = FZ_BOUND;
  cfg.max_reasm_bytes = FZ_BOUND;
  memset(m, 0x5a, sizeof(m));
  for (s = 0; s < SEEDS; ++s) {
    fz_ep e = {0, 0};
    ptv_link *x = ptv_link_new(&cfg, &cbs, &e, 0);
    size_t p = 0;
    ptrdiff_t n;
    ptv_tstamp now = 0;
    int k;

    if (x == NULL) {
      abort();
    }
    ptv_link_send(x, m, 1 + (size_t)s * 350, s & 1, 0, 0);
    ptv_link_send(x, m, 40, 0, 0, 0);
    if (s & 2) {
      ptv_link_send_soft(x, m, 30 + (size_t)s, 0); /* soft datagrams too */
    }
    for (k = 0; k < 40 && p + 3 + FZ_MTU + 2 < SEED_MAX; ++k) {
      n = ptv_link_write(x, buf, sizeof(buf), now);
      if (n > 0) {
        seeds[s][p++] = 2;
        seeds[s][p++] = (uint8_t)(n >> 8);
        seeds[s][p++] = (uint8_t)n;
        memcpy(&seeds[s][p], buf, (size_t)n);
        p += (size_t)n;
      } else {
        seeds[s][p++] = 0;
        seeds[s][p++] = 20;
        now += 20 * 500;
        ptv_link_handle_expiry(x, now);
      }
    }
    seed_len[s] = p;
    ptv_link_free(x);
  }
}

int main(int argc, char **argv) {
  static uint8_t work[SEED_MAX];
  int i;
  unsigned long run = 0;

  make_seeds();
  if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
    for (i = 0; i < SEEDS; ++i) {
      char path[4096];
      FILE *f;

      snprintf(path, sizeof(path), "%s/seed-%d", argv[2], i);
      f = fopen(path, "wb");
      if (f == NULL || fwrite(seeds[i], 1, seed_len[i], f) != seed_len[i]) {
        perror(path);
        return 1;
      }
      fclose(f);
    }
    return 0;
  }
  if (argc > 1) {
    for (i = 1; i < argc; ++i) {
      FILE *f = fopen(argv[i], "rb");
      size_t n;

      if (f == NULL) {
        perror(argv[i]);
        return 1;
      }
      n = fread(work, 1, sizeof(work), f);
      fclose(f);
      LLVMFuzzerTestOneInput(work, n);
    }
    return 0;
  }
  for (i = 0; i < SEEDS; ++i) {
    LLVMFuzzerTestOneInput(seeds[i], seed_len[i]);
    run++;
  }
  for (i = 0; i < MUTATIONS; ++i) {
    int s = (int)(fz_rand() % SEEDS), k, flips = 1 + (int)(fz_rand() % 8);
    size_t n = seed_len[s];

    memcpy(work, seeds[s], n);
    for (k = 0; k < flips && n > 0; ++k) {
      work[fz_rand() % n] = (uint8_t)fz_rand();
    }
    if (fz_rand() % 4 == 0) {
      n = (size_t)(fz_rand() % (n + 1));
    }
    LLVMFuzzerTestOneInput(work, n);
    run++;
  }
  printf("fuzz_link replay: %lu inputs passed\n", run);
  return 0;
}
#endif
