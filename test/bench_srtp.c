/* bench_srtp.c -- micro-benchmark of the link crypto on one core.
 *
 * Not a unit test. Measures, single-threaded:
 *   - ptv_srtp_protect of 1,160-byte datagrams (Mbit/s of datagram bytes),
 *   - ptv_srtp_unprotect of the same packets,
 *   - Ed25519 verification of a 62,500-byte chunk (verifies/s),
 * each for about BENCH_SECONDS (argv[1] overrides). A forwarding peer
 * unprotects and protects every byte once, so its SRTP capacity per core
 * is 1 / (1/protect + 1/unprotect), also printed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>
#include <srtp2/srtp.h>

#include "ptv_err.h"
#include "ptv_aes.h"
#include "ptv_identity.h"
#include "ptv_kx.h"
#include "ptv_srtp.h"

#define DGRAM 1160
#define BATCH 1024
#define CHUNK 62500

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_srtp: %s: %s (%d)\n", what, ptv_strerror(rc), rc);
  exit(1);
}

/* Packets are produced and consumed in batches so the unprotect timing
 * covers only unprotect (plus one memcpy-sized cost, as in real use). */
static uint8_t pkts[BATCH][DGRAM + PTV_SRTP_OVERHEAD + PTV_SRTP_LIB_SLACK];
static uint8_t dgram[DGRAM], out[DGRAM + PTV_SRTP_OVERHEAD];

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 3.0;
  ptv_identity a, b;
  ptv_kx kxa, kxb;
  uint8_t ha[PTV_KX_HELLO_LEN], hb[PTV_KX_HELLO_LEN];
  ptv_kx_keys ka, kb;
  static ptv_srtp sa, sb;
  double t0, tp = 0, tu = 0, end, prot, unprot, t;
  uint64_t bytes = 0, nver = 0;
  uint8_t *chunk, sig[PTV_IDENTITY_SIG_LEN];
  int rc, i;
  int lens[BATCH];

  if (secs <= 0) {
    secs = 3.0;
  }
  if ((rc = ptv_identity_generate(&a)) != 0 ||
      (rc = ptv_identity_generate(&b)) != 0) {
    die("identity", rc);
  }
  if ((rc = ptv_kx_init(&kxa, &a, 1, 2, b.pk, NULL, 0)) != 0 ||
      (rc = ptv_kx_init(&kxb, &b, 2, 1, a.pk, NULL, 0)) != 0) {
    die("kx_init", rc);
  }
  ptv_kx_hello(&kxa, ha, sizeof(ha));
  ptv_kx_hello(&kxb, hb, sizeof(hb));
  if ((rc = ptv_kx_finish(&kxa, hb, sizeof(hb), &ka)) != 0 ||
      (rc = ptv_kx_finish(&kxb, ha, sizeof(ha), &kb)) != 0) {
    die("kx_finish", rc);
  }
  if ((rc = ptv_srtp_init(&sa, &ka)) != 0 ||
      (rc = ptv_srtp_init(&sb, &kb)) != 0) {
    die("srtp_init", rc);
  }
  randombytes_buf(dgram, sizeof(dgram));

  /* SRTP: the split between protect and unprotect is timed per batch. */
  end = now_s() + secs;
  while (now_s() < end) {
    t0 = now_s();
    for (i = 0; i < BATCH; ++i) {
      lens[i] = ptv_srtp_protect(&sa, dgram, DGRAM, pkts[i], sizeof(pkts[i]));
      if (lens[i] < 0) {
        die("protect", lens[i]);
      }
    }
    t = now_s();
    tp += t - t0;
    for (i = 0; i < BATCH; ++i) {
      rc = ptv_srtp_unprotect(&sb, pkts[i], (size_t)lens[i], out, sizeof(out));
      if (rc != DGRAM) {
        die("unprotect", rc);
      }
    }
    tu += now_s() - t;
    bytes += (uint64_t)BATCH * DGRAM;
  }
  prot = (double)bytes * 8 / tp / 1e6;
  unprot = (double)bytes * 8 / tu / 1e6;
  printf("datagram %d bytes, %.0f packets, AES-GCM-128 (%s, %s)\n", DGRAM,
         (double)bytes / DGRAM, srtp_get_version_string(),
         ptv_aes_installed() ? "AES from OpenSSL" : "libsrtp's own AES");
  printf("protect:    %8.0f Mbit/s per core (%.0f packets/s)\n", prot,
         (double)bytes / DGRAM / tp);
  printf("unprotect:  %8.0f Mbit/s per core (%.0f packets/s)\n", unprot,
         (double)bytes / DGRAM / tu);
  printf("forwarding: %8.0f Mbit/s per core (unprotect + protect each "
         "byte)\n",
         1.0 / (1.0 / prot + 1.0 / unprot));

  /* Ed25519 verify of one chunk. */
  chunk = malloc(CHUNK);
  if (chunk == NULL) {
    die("malloc", PTV_ERR_NOMEM);
  }
  randombytes_buf(chunk, CHUNK);
  if ((rc = ptv_identity_sign(&a, chunk, CHUNK, sig)) != 0) {
    die("sign", rc);
  }
  t0 = now_s();
  end = t0 + secs;
  while ((t = now_s()) < end) {
    for (i = 0; i < 64; ++i) {
      if ((rc = ptv_identity_verify(a.pk, chunk, CHUNK, sig)) != 0) {
        die("verify", rc);
      }
    }
    nver += 64;
  }
  printf("ed25519 verify, %d-byte chunk: %8.0f chunks/s per core "
         "(%.0f Mbit/s of chunk data)\n",
         CHUNK, (double)nver / (t - t0),
         (double)nver * CHUNK * 8 / (t - t0) / 1e6);

  free(chunk);
  ptv_srtp_free(&sa);
  ptv_srtp_free(&sb);
  ptv_kx_keys_wipe(&ka);
  ptv_kx_keys_wipe(&kb);
  ptv_identity_wipe(&a);
  ptv_identity_wipe(&b);
  return 0;
}
