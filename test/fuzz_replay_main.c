/* fuzz_replay_main.c -- runs the wire fuzz target without libFuzzer.
 *
 * Under `make check` (plain gcc) this feeds LLVMFuzzerTestOneInput a seed
 * corpus built in memory plus a fixed, deterministic burst of mutations of
 * it, so every build exercises the round-trip checks. Arguments are files to
 * replay (e.g. a libFuzzer crash-* artifact). `--write-seeds DIR` writes the
 * seed corpus to DIR instead, for scripts/fuzz.
 *
 * A failing input aborts inside the target, so reaching the end means all
 * inputs passed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_ctl.h"
#include "ptv_err.h"
#include "ptv_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MUTATIONS 300000
#define MAX_SEEDS 64
#define ARENA_SIZE 16384
#define WORK_SIZE 4096

typedef struct {
  const uint8_t *data;
  size_t len;
} seed;

static uint8_t arena[ARENA_SIZE];
static size_t arena_used;
static seed seeds[MAX_SEEDS];
static size_t nseeds;
static unsigned long long nrun;

/* xorshift64: fixed seed, so every run mutates the same way. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void) {
  uint64_t x = rng_state;

  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  rng_state = x;
  return x;
}

static size_t rng_below(size_t n) { return n ? (size_t)(rng_next() % n) : 0; }

static void die(const char *what) {
  fprintf(stderr, "fuzz_wire_replay: %s\n", what);
  exit(1);
}

/* Copies p into the arena; the caller registers it as a seed. */
static const uint8_t *arena_push(const uint8_t *p, size_t len) {
  uint8_t *dst;

  if (ARENA_SIZE - arena_used < len) {
    die("seed corpus does not fit");
  }
  dst = arena + arena_used;
  memcpy(dst, p, len);
  arena_used += len;
  return dst;
}

static void register_seed(const uint8_t *p, size_t len) {
  if (nseeds == MAX_SEEDS) {
    die("too many seeds");
  }
  seeds[nseeds].data = p;
  seeds[nseeds].len = len;
  ++nseeds;
}

static void add_seed(const ptv_msg *m) {
  uint8_t buf[WORK_SIZE];
  int rv = ptv_wire_encode(buf, sizeof(buf), m);

  if (rv < 0) {
    fprintf(stderr, "fuzz_wire_replay: seed type %u: %s\n", m->type,
            ptv_strerror(rv));
    exit(1);
  }
  register_seed(arena_push(buf, (size_t)rv), (size_t)rv);
}

static void add_ctl_seed(const ptv_ctl *m) {
  uint8_t buf[WORK_SIZE];
  int rv = ptv_ctl_encode(buf, sizeof(buf), m);

  if (rv < 0) {
    fprintf(stderr, "fuzz_wire_replay: control seed type %u: %s\n", m->type,
            ptv_strerror(rv));
    exit(1);
  }
  register_seed(arena_push(buf, (size_t)rv), (size_t)rv);
}

/* One seed of every control message type (ptv_ctl). */
static void add_ctl_seeds(void) {
  static const uint8_t key[PTV_CTL_PKLEN] = {1, 2, 3}, sig[PTV_CTL_SIGLEN] = {9};
  ptv_ctl c;

  memset(&c, 0, sizeof(c));
  c.type = PTV_CTL_HELLO;
  c.u.hello.role = PTV_ROLE_SOURCE;
  c.u.hello.want_id = PTV_ID_NONE;
  c.u.hello.pk = key;
  c.u.hello.sig = sig;
  c.u.hello.name = "news.hd";
  c.u.hello.name_len = 7;
  c.u.hello.desc = "evening news";
  c.u.hello.desc_len = 12;
  c.u.hello.chunk_us = 250000;
  add_ctl_seed(&c);
  memset(&c, 0, sizeof(c));
  c.type = PTV_CTL_WELCOME;
  c.u.welcome.id = 77;
  c.u.welcome.publisher_pk = key;
  add_ctl_seed(&c);
  memset(&c, 0, sizeof(c));
  c.type = PTV_CTL_ERROR;
  c.u.error.code = PTV_CTL_E_NO_CHANNEL;
  c.u.error.text = "no such channel";
  c.u.error.text_len = 15;
  add_ctl_seed(&c);
  memset(&c, 0, sizeof(c));
  c.type = PTV_CTL_SIGNAL;
  c.u.signal.peer = 5;
  c.u.signal.kind = PTV_SIG_CANDIDATE;
  c.u.signal.data = (const uint8_t *)"a=candidate:1 1 UDP 2013266431 127.0.0.1 40000 typ host";
  c.u.signal.data_len = 56;
  add_ctl_seed(&c);
  memset(&c, 0, sizeof(c));
  c.type = PTV_CTL_END;
  add_ctl_seed(&c);
}

static void fill_descs(ptv_peer_desc *d, size_t n) {
  size_t i;

  for (i = 0; i < n; ++i) {
    d[i].id = (ptv_id)(i * 2654435761u);
    d[i].nat = (uint8_t)(i & 3);
    d[i].age = (uint8_t)(i == n - 1 ? 255 : i);
    d[i].upload_kbps = (uint32_t)(i == 0 ? UINT32_MAX : 100 * i);
  }
}

static void build_seeds(void) {
  static const uint8_t bits[PTV_WIRE_MAX_BITMAP_BITS / 8] = {
      0xa5, 0x5a, 0xff, 0x00, 0x81, 0x7e, 0x01, 0x80, [60] = 0xfe, [63] = 0xff};
  static uint8_t sig[PTV_WIRE_SIGLEN], payload[48];
  static const uint16_t nbits[] = {0, 1, 9, 512};
  static const uint8_t chunk_flags[] = {0,
                                        PTV_CHUNK_KEYFRAME,
                                        PTV_CHUNK_SIGNED,
                                        PTV_CHUNK_DETACHED,
                                        PTV_CHUNK_SIGNED | PTV_CHUNK_DETACHED,
                                        PTV_CHUNK_SIGNED | PTV_CHUNK_STALLED,
                                        PTV_CHUNK_FLAGS_ALL};
  ptv_msg m;
  size_t i, start;

  for (i = 0; i < sizeof(sig); ++i) {
    sig[i] = (uint8_t)(0xc0 ^ i);
  }
  for (i = 0; i < sizeof(payload); ++i) {
    payload[i] = (uint8_t)(i * 7);
  }

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_JOIN;
  add_seed(&m);
  m.u.join.role = PTV_ROLE_SOURCE;
  m.u.join.nat = PTV_NAT_UNKNOWN;
  m.u.join.upload_kbps = UINT32_MAX;
  add_seed(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_PEERS;
  m.u.peers.live = UINT32_MAX;
  m.u.peers.chunk_us = 500000;
  add_seed(&m);
  m.u.peers.live = 12345;
  m.u.peers.cap_kbps = 704;
  m.u.peers.n = 1;
  fill_descs(m.u.peers.descs, 1);
  add_seed(&m);
  m.u.peers.n = PTV_WIRE_MAX_DESCS;
  fill_descs(m.u.peers.descs, PTV_WIRE_MAX_DESCS);
  add_seed(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_LEAVE;
  add_seed(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_HEARTBEAT;
  m.u.heartbeat.newest = UINT32_MAX;
  add_seed(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_SHUFFLE;
  add_seed(&m);
  m.u.shuffle.reply = 1;
  m.u.shuffle.n = PTV_WIRE_MAX_DESCS;
  fill_descs(m.u.shuffle.descs, PTV_WIRE_MAX_DESCS);
  add_seed(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_CONNECT;
  m.u.connect.nat = PTV_NAT_SYMMETRIC;
  m.u.connect.flags = 0xff;
  m.u.connect.upload_kbps = 768;
  add_seed(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_CONNECT_ACK;
  for (i = 0; i <= PTV_ACK_REFUSED; ++i) {
    m.u.connect_ack.status = (uint8_t)i;
    add_seed(&m);
  }

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_DISCONNECT;
  m.u.disconnect.reason = 255;
  add_seed(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_BUFFERMAP;
  m.u.buffermap.base = 4000000000u;
  m.u.buffermap.queue_ms = 65535;
  m.u.buffermap.ndepth = 8;
  m.u.buffermap.depth = bits;
  m.u.buffermap.kids = bits;
  m.u.buffermap.free_slots = 5;
  m.u.buffermap.price_kbps = 640;
  m.u.buffermap.bits = bits;
  for (i = 0; i < sizeof(nbits) / sizeof(nbits[0]); ++i) {
    m.u.buffermap.nbits = nbits[i];
    add_seed(&m); /* the encoder zeroes padding bits */
  }

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_REQUEST;
  m.u.request.chunk = 77;
  m.u.request.deadline_ms = 1500;
  m.u.request.played = 200;
  add_seed(&m);

  for (i = 0; i < sizeof(chunk_flags); ++i) {
    memset(&m, 0, sizeof(m));
    m.type = PTV_MSG_CHUNK;
    m.u.chunk.chunk = (ptv_chunk_id)i;
    m.u.chunk.ts_us = 0x0102030405060708ull;
    m.u.chunk.flags = chunk_flags[i];
    m.u.chunk.payload_len = (chunk_flags[i] & PTV_CHUNK_DETACHED)
                                ? 1316u * 100
                                : (uint32_t)(i == 1 ? 0 : sizeof(payload));
    m.u.chunk.payload = payload;
    m.u.chunk.sig = sig;
    add_seed(&m);
  }

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_BUSY;
  for (i = 0; i <= PTV_BUSY_TOO_LATE; ++i) {
    m.u.busy.chunk = (ptv_chunk_id)(UINT32_MAX - i);
    m.u.busy.reason = (uint8_t)i;
    add_seed(&m);
  }

  for (i = 0; i < 2; ++i) {
    static const uint8_t counts[] = {0, 3, PTV_WIRE_MAX_IDS};
    ptv_msg_ids *ids;
    size_t c, k;

    memset(&m, 0, sizeof(m));
    m.type = i == 0 ? PTV_MSG_OFFER : PTV_MSG_SELECT;
    ids = i == 0 ? &m.u.offer : &m.u.select;
    for (c = 0; c < sizeof(counts); ++c) {
      ids->n = counts[c];
      for (k = 0; k < counts[c]; ++k) {
        ids->ids[k] = k == 0 ? UINT32_MAX : (ptv_chunk_id)(k * 2654435761u);
      }
      add_seed(&m);
    }
  }

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_STRIPES;
  for (i = 0; i <= PTV_STRIPES_EVICT; ++i) {
    m.u.stripes.kind = (uint8_t)i;
    m.u.stripes.mask = (uint16_t)(0xffff >> i);
    m.u.stripes.kbps = 1280;
    add_seed(&m);
  }

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_REPORT;
  for (i = 0; i <= PTV_REPORT_MAX; ++i) {
    m.u.report.suspect = (ptv_id)(i * 77u);
    m.u.report.reason = (uint8_t)i;
    add_seed(&m);
  }

  add_ctl_seeds();

  /* One input with several messages back to back. */
  start = arena_used;
  for (i = 0; i < nseeds; i += 5) {
    arena_push(seeds[i].data, seeds[i].len);
  }
  register_seed(arena + start, arena_used - start);
}

/* Runs one input from an exactly sized heap copy, as libFuzzer does, so ASan
 * sees any read past its end. */
static void run_one(const uint8_t *p, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);

  if (copy == NULL) {
    die("out of memory");
  }
  if (len) {
    memcpy(copy, p, len);
  }
  LLVMFuzzerTestOneInput(copy, len);
  free(copy);
  ++nrun;
}

/* Applies one random edit to buf[0..*len), which has WORK_SIZE bytes. */
static void mutate(uint8_t *buf, size_t *len) {
  const seed *other;
  size_t pos, n, i;
  uint32_t blen;

  switch (rng_below(10)) {
  case 0: /* bit flip */
    if (*len) {
      pos = rng_below(*len);
      buf[pos] ^= (uint8_t)(1u << rng_below(8));
    }
    break;
  case 1:
    if (*len) {
      buf[rng_below(*len)] = 0x00;
    }
    break;
  case 2:
    if (*len) {
      buf[rng_below(*len)] = 0xff;
    }
    break;
  case 3:
    if (*len) {
      buf[rng_below(*len)] = (uint8_t)rng_next();
    }
    break;
  case 4: /* truncate */
    *len = rng_below(*len + 1);
    break;
  case 5: /* extend with random bytes */
    n = 1 + rng_below(16);
    for (i = 0; i < n && *len < WORK_SIZE; ++i) {
      buf[(*len)++] = (uint8_t)rng_next();
    }
    break;
  case 6: /* splice: our prefix, another seed's suffix */
    other = &seeds[rng_below(nseeds)];
    *len = rng_below(*len + 1);
    pos = rng_below(other->len + 1);
    n = other->len - pos;
    if (n > WORK_SIZE - *len) {
      n = WORK_SIZE - *len;
    }
    memcpy(buf + *len, other->data + pos, n);
    *len += n;
    break;
  case 7: /* append a whole other message */
    other = &seeds[rng_below(nseeds)];
    n = other->len;
    if (n > WORK_SIZE - *len) {
      n = WORK_SIZE - *len;
    }
    memcpy(buf + *len, other->data, n);
    *len += n;
    break;
  case 8: /* nudge the header: type or body length of the first message */
    if (*len < PTV_WIRE_HDRLEN) {
      break;
    }
    if (rng_below(2)) {
      buf[1] = (uint8_t)rng_below(PTV_MSG_TYPE_MAX + 2);
    } else {
      blen = ((uint32_t)buf[2] << 24) | ((uint32_t)buf[3] << 16) |
             ((uint32_t)buf[4] << 8) | buf[5];
      blen += (uint32_t)rng_below(21) - 10;
      buf[2] = (uint8_t)(blen >> 24);
      buf[3] = (uint8_t)(blen >> 16);
      buf[4] = (uint8_t)(blen >> 8);
      buf[5] = (uint8_t)blen;
    }
    break;
  default: /* insert or delete one byte */
    pos = rng_below(*len + 1);
    if (rng_below(2) && *len < WORK_SIZE) {
      memmove(buf + pos + 1, buf + pos, *len - pos);
      buf[pos] = (uint8_t)rng_next();
      ++*len;
    } else if (pos < *len) {
      memmove(buf + pos, buf + pos + 1, *len - pos - 1);
      --*len;
    }
    break;
  }
}

static void run_mutations(void) {
  static uint8_t buf[WORK_SIZE];
  size_t len, i, k, nmut;
  const seed *s;

  for (i = 0; i < MUTATIONS; ++i) {
    s = &seeds[rng_below(nseeds)];
    memcpy(buf, s->data, s->len);
    len = s->len;
    nmut = 1 + rng_below(4);
    for (k = 0; k < nmut; ++k) {
      mutate(buf, &len);
    }
    run_one(buf, len);
  }
}

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *data = NULL, *tmp;
  size_t len = 0, cap = 0, n;

  if (f == NULL) {
    perror(path);
    return -1;
  }
  for (;;) {
    if (len == cap) {
      cap = cap ? cap * 2 : 65536;
      tmp = realloc(data, cap);
      if (tmp == NULL) {
        free(data);
        fclose(f);
        die("out of memory");
      }
      data = tmp;
    }
    n = fread(data + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      break;
    }
  }
  if (ferror(f)) {
    perror(path);
    fclose(f);
    free(data);
    return -1;
  }
  fclose(f);
  run_one(data, len);
  free(data);
  return 0;
}

static int write_seeds(const char *dir) {
  char path[4096];
  size_t i;
  FILE *f;

  for (i = 0; i < nseeds; ++i) {
    snprintf(path, sizeof(path), "%s/seed-%03zu", dir, i);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(seeds[i].data, 1, seeds[i].len, f) != seeds[i].len) {
      perror(path);
      if (f) {
        fclose(f);
      }
      return 1;
    }
    if (fclose(f) != 0) {
      perror(path);
      return 1;
    }
  }
  printf("wrote %zu seeds to %s\n", nseeds, dir);
  return 0;
}

int main(int argc, char **argv) {
  unsigned long long nfailed = 0;
  size_t i;
  int a;

  build_seeds();

  if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
    return write_seeds(argv[2]);
  }

  if (argc > 1) {
    for (a = 1; a < argc; ++a) {
      if (run_file(argv[a]) != 0) {
        ++nfailed;
      }
    }
  } else {
    for (i = 0; i < nseeds; ++i) {
      run_one(seeds[i].data, seeds[i].len);
    }
    run_mutations();
  }

  printf("%llu passed, %llu failed\n", nrun, nfailed);
  return nfailed ? 1 : 0;
}
