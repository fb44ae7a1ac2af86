/* peertv-peer -- watch a PeerTV channel. See docs/peertv-peer.1. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_host.h"
#include "ptv_rt.h"
#include "ptv_wire.h"

static void usage(FILE *f) {
  fputs("Usage: peertv-peer --tracker HOST:PORT --channel NAME [options]\n"
        "Watch a PeerTV channel: find partners through the tracker, connect to them\n"
        "with ICE, exchange SRTP-protected chunks, play them and upload to others.\n\n"
        "Options:\n"
        "  --tracker HOST:PORT    the tracker (required)\n"
        "  --channel NAME         the channel (required)\n"
        "  --http ADDR:PORT       serve GET /stats (JSON) and GET /stream.ts (live\n"
        "                         MPEG-TS for players) there (port 0: any; printed)\n"
        "  --record FILE          write the played stream (MPEG-TS chunks) to FILE\n"
        "  --upload-limit RATE    upload cap over all partners, e.g. 4M, 800k (default 10M)\n"
        "  --buffer SECONDS       playback buffer (default 2)\n"
        "  --stun HOST:PORT       STUN server for server-reflexive candidates\n"
        "  --turn HOST:PORT       TURN server (UDP relay); with --turn-user/--turn-pass\n"
        "  --turn-user USER, --turn-pass PASS\n"
        "  --local-addr ADDR      use only this local address for ICE (e.g. 127.0.0.1)\n"
        "  --relay-only           use only TURN-relayed paths (hides our addresses;\n"
        "                         needs --turn)\n"
        "  --key FILE             identity key (created 0600 if missing; default: a\n"
        "                         new key each run)\n"
        "  --strategy S           overlay strategy: mesh (default) or chandelier\n"
        "  --partners N           partners to seek (default 8, at most 58); up to N + 6\n"
        "                         are accepted (a strong uploader serving many)\n"
        "  --duration SECONDS     leave after this long (default: until SIGINT/SIGTERM)\n"
        "  --stats-file FILE      write the final /stats JSON there when leaving\n"
        "  --delay-log FILE       one line per chunk received: chunk id, its delay\n"
        "                         from the source in microseconds, sender id, 1 if\n"
        "                         stamped before we started (benchmarks)\n"
        "  -v, --verbose          more log lines; -q, --quiet: errors only\n"
        "  --help, --version\n\n"
        "Exit status: 0 left cleanly, 1 runtime failure (or refused by the tracker),\n"
        "2 usage error.\n",
        f);
}

int main(int argc, char **argv) {
  ptv_host_config c;
  memset(&c, 0, sizeof(c));
  c.role = PTV_ROLE_PEER;
  static const struct option opts[] = {
      PTV_HOST_LONG_OPTIONS,
      {"record", required_argument, NULL, 'r'},      {"buffer", required_argument, NULL, 'b'},
      {"strategy", required_argument, NULL, 'S'},    {"delay-log", required_argument, NULL, 'G'},
      {"partners", required_argument, NULL, 'P'},
      {"help", no_argument, NULL, 'h'},              {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *prog = "peertv-peer";
  ptv_rt_set_prog(prog);
  int o, rv;
  char *e;
  while ((o = getopt_long(argc, argv, "vq", opts, NULL)) != -1) {
    if ((rv = ptv_host_option(&c, o, optarg, prog)) != 0) {
      if (rv < 0) return 2;
      continue;
    }
    switch (o) {
    case 'r': c.record = optarg; break;
    case 'b': {
      double s = strtod(optarg, &e);
      if (*e || s <= 0 || s > 60) {
        fprintf(stderr, "peertv-peer: --buffer wants seconds in (0, 60], not '%s'\n", optarg);
        return 2;
      }
      c.buffer_us = (ptv_tstamp)(s * 1e6);
      break;
    }
    case 'S':
      if (strcmp(optarg, "mesh") && strcmp(optarg, "chandelier")) {
        fprintf(stderr, "peertv-peer: --strategy is mesh or chandelier, not '%s'\n", optarg);
        return 2;
      }
      c.chandelier = strcmp(optarg, "chandelier") == 0;
      break;
    case 'G': c.delay_log = optarg; break;
    case 'P': {
      long v = strtol(optarg, &e, 10);
      if (*e || e == optarg || v < 1 || v > 58) {
        fprintf(stderr, "peertv-peer: --partners wants a count in [1, 58], not '%s'\n", optarg);
        return 2;
      }
      c.partners = (uint8_t)v;
      break;
    }
    case 'h': usage(stdout); return 0;
    case 'V': puts("peertv-peer " PACKAGE_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (ptv_host_options_done(&c, optind, argc, prog) != 0) return 2;
  return ptv_host_run(&c);
}
