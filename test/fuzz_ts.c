/* fuzz_ts.c -- libFuzzer target for ptv_ts (the MPEG-TS demultiplexer and
 * SPS parser a peer runs on every chunk it plays).
 *
 * The input is pushed in pieces whose sizes come from its first bytes, with
 * discontinuities and chunk calls in between; every unit handed out must be
 * readable, inside PES_MAX, and the info must stay consistent. Each NAL-like
 * slice of the input also goes through ptv_ts_parse_sps, whose size must
 * be within its limits when it succeeds.
 *
 * Built with -DPTV_FUZZ_REPLAY_MAIN it has its own main: without arguments
 * it runs a built-in stream (PAT, PMT, H.264 PES with a real SPS, AAC PES)
 * and a fixed burst of its mutations (for make check); with files it
 * replays them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_ts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fz_sum;

static void fz_unit(void *user, int kind, const uint8_t *p, size_t len, int64_t pts, int64_t dts, int discont,
                    int key) {
  (void)user;
  if ((kind != PTV_TS_VIDEO && kind != PTV_TS_AUDIO) || len == 0 || len > ((size_t)4 << 20) ||
      (discont != 0 && discont != 1) || (key != 0 && key != 1))
    abort();
  if (pts != PTV_TS_NO_TS && (pts < 0 || pts >= ((int64_t)1 << 33))) abort();
  if (dts != PTV_TS_NO_TS && (dts < 0 || dts >= ((int64_t)1 << 33))) abort();
  for (size_t i = 0; i < len; i++) fz_sum += p[i]; /* every byte readable */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ptv_ts *t;
  if (ptv_ts_new(&t, fz_unit, NULL) != 0) abort();
  size_t off = 0;
  unsigned step = 0;
  while (off < size) {
    /* piece sizes: whole packets mostly, sometimes ragged */
    uint8_t c = data[step % (size < 4 ? size : 4)];
    size_t n = (c & 0x80) ? (size_t)(c & 0x7f) + 1 : ((size_t)(c & 0x0f) + 1) * 188;
    if (n > size - off) n = size - off;
    switch ((c >> 4) & 7) {
    case 0: ptv_ts_discont(t); break;
    case 1: ptv_ts_gap(t); break;
    case 2: ptv_ts_flush(t); break;
    default: break;
    }
    if (c & 0x40) {
      if (ptv_ts_chunk(t, data + off, n, c & 1) < 0) abort();
    } else if (ptv_ts_push(t, data + off, n) != 0) {
      abort();
    }
    off += n;
    step++;
  }
  ptv_ts_flush(t);
  ptv_ts_info ti;
  ptv_ts_get_info(t, &ti);
  if (ti.bytes > size || ti.width > 16384 || ti.height > 32768 || ti.fps < 0 || ti.fps > 1000) abort();
  ptv_ts_free(t);
  /* SPS parser on every slice after a 0x67 byte */
  for (size_t i = 0; i < size; i++) {
    if ((data[i] & 0x1f) != 7) continue;
    uint32_t w, h;
    double fps;
    int rc = ptv_ts_parse_sps(data + i, size - i > 600 ? 600 : size - i, &w, &h, &fps);
    if (rc == 0 && (w == 0 || h == 0 || w > 16384 || h > 32768 || fps < 0 || fps > 1000)) abort();
    if (rc != 0 && rc != PTV_ERR_SHORT && rc != PTV_ERR_MALFORMED && rc != PTV_ERR_INVALID_ARG) abort();
  }
  return 0;
}

#ifdef PTV_FUZZ_REPLAY_MAIN
#define MUTATIONS 20000
#define SEED_MAX 8192

static uint64_t fz_rng = 0x9e3779b97f4a7c15ull;

static uint64_t fz_rand(void) {
  fz_rng ^= fz_rng >> 12;
  fz_rng ^= fz_rng << 25;
  fz_rng ^= fz_rng >> 27;
  return fz_rng * 2685821657736338717ULL;
}

static const uint8_t SPS[] = {0x67, 0x64, 0x00, 0x1e, 0xac, 0xb4, 0x05, 0x01, 0x7f, 0xcb, 0x80, 0xb5, 0x06, 0x06, 0x06,
                              0xa5, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x8f, 0x16, 0x2e, 0xa0};

/* One TS packet: header, then payload padded with an adaptation field. */
static size_t packet(uint8_t *out, uint16_t pid, int pusi, unsigned cc, const uint8_t *pl, size_t n) {
  if (n > 184) n = 184;
  out[0] = 0x47;
  out[1] = (uint8_t)((pusi ? 0x40 : 0) | (pid >> 8));
  out[2] = (uint8_t)pid;
  size_t stuff = 184 - n;
  if (stuff) {
    out[3] = (uint8_t)(0x30 | (cc & 15));
    out[4] = (uint8_t)(stuff - 1);
    if (stuff > 1) {
      out[5] = 0;
      memset(out + 6, 0xff, stuff - 2);
    }
  } else {
    out[3] = (uint8_t)(0x10 | (cc & 15));
  }
  memcpy(out + 4 + stuff, pl, n);
  return 188;
}

static void put_ts(uint8_t *p, unsigned prefix, int64_t ts) {
  p[0] = (uint8_t)(prefix << 4 | ((ts >> 29) & 0x0e) | 1);
  p[1] = (uint8_t)(ts >> 22);
  p[2] = (uint8_t)(((ts >> 14) & 0xfe) | 1);
  p[3] = (uint8_t)(ts >> 7);
  p[4] = (uint8_t)(((ts << 1) & 0xfe) | 1);
}

/* PAT, PMT (H.264 on 0x100, AAC on 0x101), then frames: an IDR with the
 * SPS, P frames spread over two packets, ADTS audio with a PES length. */
static size_t make_seed(uint8_t *buf) {
  size_t n = 0;
  static const uint8_t pat[] = {0x00, 0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00,
                                0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1, 0x04, 0xb2};
  static const uint8_t pmt[] = {0x00, 0x02, 0xb0, 0x17, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0,
                                0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00,
                                0x00, 0x00, 0x00, 0x00};
  n += packet(buf + n, 0, 1, 0, pat, sizeof pat);
  n += packet(buf + n, 0x1000, 1, 0, pmt, sizeof pmt);
  unsigned vcc = 0, acc = 0;
  for (int f = 0; f < 6; f++) {
    uint8_t pes[400];
    size_t k = 0;
    static const uint8_t hdr[] = {0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5};
    memcpy(pes, hdr, sizeof hdr);
    k = sizeof hdr;
    put_ts(pes + k, 2, 324000000 + f * 3000);
    k += 5;
    if (f == 0) {
      pes[k++] = 0;
      pes[k++] = 0;
      pes[k++] = 1;
      memcpy(pes + k, SPS, sizeof SPS);
      k += sizeof SPS;
    }
    pes[k++] = 0;
    pes[k++] = 0;
    pes[k++] = 1;
    pes[k++] = f == 0 ? 0x65 : 0x41;
    size_t body = f % 2 ? 250 : 40;
    for (size_t i = 0; i < body; i++) pes[k++] = (uint8_t)(i * 7 + 1);
    for (size_t o = 0; o < k; o += 184) n += packet(buf + n, 0x100, o == 0, vcc++, pes + o, k - o);
    uint8_t ap[64];
    static const uint8_t ahdr[] = {0, 0, 1, 0xc0, 0, 0, 0x80, 0x80, 5};
    memcpy(ap, ahdr, sizeof ahdr);
    put_ts(ap + 9, 2, 324000000 + f * 3000);
    memset(ap + 14, 0xf1, 30);
    ap[4] = 0;
    ap[5] = 3 + 5 + 30;
    n += packet(buf + n, 0x101, 1, acc++, ap, 44);
  }
  return n;
}

int main(int argc, char **argv) {
  static uint8_t seed[SEED_MAX], work[SEED_MAX];
  if (argc > 1) {
    for (int i = 1; i < argc; i++) {
      FILE *f = fopen(argv[i], "rb");
      if (!f) {
        perror(argv[i]);
        return 1;
      }
      size_t n = fread(work, 1, sizeof work, f);
      fclose(f);
      LLVMFuzzerTestOneInput(work, n);
    }
    printf("fuzz_ts_replay: %d files replayed\n", argc - 1);
    return 0;
  }
  size_t n = make_seed(seed);
  /* the seed must parse: two streams, six frames, the SPS's size */
  ptv_ts *t;
  if (ptv_ts_new(&t, fz_unit, NULL) != 0 || ptv_ts_chunk(t, seed, n, 1) != 1) return 1;
  ptv_ts_info ti;
  ptv_ts_get_info(t, &ti);
  ptv_ts_free(t);
  if (!ti.video_codec || strcmp(ti.video_codec, "h264") || !ti.audio_codec || strcmp(ti.audio_codec, "aac") ||
      ti.video_frames != 6 || ti.audio_units != 6 || ti.width != 640 || ti.height != 360 || ti.bad_packets) {
    fprintf(stderr, "fuzz_ts_replay: the seed parsed wrong: %s/%s %llu frames %llu audio %ux%u %llu bad\n",
            ti.video_codec ? ti.video_codec : "-", ti.audio_codec ? ti.audio_codec : "-",
            (unsigned long long)ti.video_frames, (unsigned long long)ti.audio_units, ti.width, ti.height,
            (unsigned long long)ti.bad_packets);
    return 1;
  }
  LLVMFuzzerTestOneInput(seed, n);
  for (unsigned m = 0; m < MUTATIONS; m++) {
    memcpy(work, seed, n);
    size_t len = n;
    unsigned edits = 1 + (unsigned)(fz_rand() % 8);
    for (unsigned e = 0; e < edits; e++) {
      size_t at = (size_t)(fz_rand() % len);
      switch (fz_rand() % 4) {
      case 0: work[at] ^= (uint8_t)(1u << (fz_rand() % 8)); break;
      case 1: work[at] = (uint8_t)fz_rand(); break;
      case 2: len = at ? at : 1; break; /* cut */
      default: work[at] = (uint8_t)(fz_rand() % 2 ? 0xff : 0x00); break;
      }
    }
    LLVMFuzzerTestOneInput(work, len);
  }
  printf("fuzz_ts_replay: seed and %u mutations passed (checksum %llu)\n", MUTATIONS, (unsigned long long)fz_sum);
  return 0;
}
#endif
