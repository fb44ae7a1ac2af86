/* peertv-source -- broadcast a PeerTV channel. See docs/peertv-source.1.
 *
 * This source publishes a synthetic MPEG-TS stream at the chosen
 * rate (GStreamer inputs come with the next issue): every chunk is signed
 * with the channel key and pushed into the swarm. */
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
  fputs("Usage: peertv-source --tracker HOST:PORT --channel NAME [options]\n"
        "Broadcast a PeerTV channel: create it in the tracker under this source's key,\n"
        "cut the stream into signed chunks and push them into the swarm.\n\n"
        "Options:\n"
        "  --tracker HOST:PORT    the tracker (required)\n"
        "  --channel NAME         the channel to create or take back (required)\n"
        "  --input INPUT          synthetic (default: test MPEG-TS packets at --rate)\n"
        "  --rate RATE            stream rate, e.g. 2M (default 2M)\n"
        "  --chunk-ms MS          chunk duration, 50..2000 (default 250)\n"
        "  --key FILE             the channel's publisher key (created 0600 if missing;\n"
        "                         default: peertv-source.key)\n"
        "  --description TEXT     shown in the tracker's channel list\n"
        "  --upload-limit RATE    upload cap (default 4 x the stream rate)\n"
        "  --http ADDR:PORT       serve GET /stats (JSON) there\n"
        "  --stun, --turn, --turn-user, --turn-pass, --local-addr, --relay-only:\n"
        "                         as peertv-peer\n"
        "  --duration SECONDS     stop after this long (default: until SIGINT/SIGTERM)\n"
        "  --stats-file FILE      write the final /stats JSON there when stopping\n"
        "  -v, --verbose          more log lines; -q, --quiet: errors only\n"
        "  --help, --version\n\n"
        "Exit status: 0 stopped cleanly, 1 runtime failure (or refused by the tracker),\n"
        "2 usage error.\n",
        f);
}

int main(int argc, char **argv) {
  ptv_host_config c;
  memset(&c, 0, sizeof(c));
  c.role = PTV_ROLE_SOURCE;
  c.stream_kbps = 2000;
  c.chunk_us = 250000;
  c.key_path = "peertv-source.key";
  static const struct option opts[] = {
      PTV_HOST_LONG_OPTIONS,
      {"input", required_argument, NULL, 'i'},       {"rate", required_argument, NULL, 'R'},
      {"chunk-ms", required_argument, NULL, 'C'},    {"description", required_argument, NULL, 'D'},
      {"help", no_argument, NULL, 'h'},              {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  const char *prog = "peertv-source";
  ptv_rt_set_prog(prog);
  int o, rv;
  char *e;
  while ((o = getopt_long(argc, argv, "vq", opts, NULL)) != -1) {
    if ((rv = ptv_host_option(&c, o, optarg, prog)) != 0) {
      if (rv < 0) return 2;
      continue;
    }
    switch (o) {
    case 'i':
      if (strcmp(optarg, "synthetic") != 0) {
        fprintf(stderr, "peertv-source: input '%s' is not supported yet (only 'synthetic';"
                        " camera, file and stream inputs come with GStreamer)\n", optarg);
        return 2;
      }
      break;
    case 'R':
      if (ptv_rt_parse_rate(optarg, &c.stream_kbps) != 0) {
        fprintf(stderr, "peertv-source: --rate wants a rate such as 2M or 1500k, not '%s'\n", optarg);
        return 2;
      }
      break;
    case 'C': {
      long ms = strtol(optarg, &e, 10);
      if (*e || ms < 50 || ms > 2000) {
        fprintf(stderr, "peertv-source: --chunk-ms wants 50..2000, not '%s'\n", optarg);
        return 2;
      }
      c.chunk_us = (uint32_t)ms * 1000u;
      break;
    }
    case 'D': c.description = optarg; break;
    case 'h': usage(stdout); return 0;
    case 'V': puts("peertv-source " PACKAGE_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (ptv_host_options_done(&c, optind, argc, prog) != 0) return 2;
  return ptv_host_run(&c);
}
