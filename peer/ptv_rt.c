/* ptv_rt.c -- see ptv_rt.h. */
#include "ptv_rt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ptv_err.h"

int ptv_rt_verbosity = 1;
static const char *g_prog = "peertv";

void ptv_rt_set_prog(const char *prog) { g_prog = prog; }

int ptv_rt_split_hostport(const char *s, char *host, size_t hostcap, uint16_t *port) {
  const char *colon, *h = s;
  size_t hl;
  if (!s || !*s) return PTV_ERR_PARSE;
  if (*s == '[') { /* [v6]:port */
    const char *end = strchr(s, ']');
    if (!end || end[1] != ':') return PTV_ERR_PARSE;
    h = s + 1;
    hl = (size_t)(end - h);
    colon = end + 1;
  } else {
    colon = strrchr(s, ':');
    if (!colon) return PTV_ERR_PARSE;
    hl = (size_t)(colon - s);
  }
  if (hl == 0 || hl >= hostcap) return PTV_ERR_PARSE;
  char *e;
  errno = 0;
  unsigned long p = strtoul(colon + 1, &e, 10);
  if (errno || e == colon + 1 || *e || p > 65535) return PTV_ERR_PARSE;
  memcpy(host, h, hl);
  host[hl] = 0;
  *port = (uint16_t)p;
  return 0;
}

int ptv_rt_sockaddr(const char *s, struct sockaddr_storage *out) {
  char host[256];
  uint16_t port;
  if (ptv_rt_split_hostport(s, host, sizeof(host), &port) != 0) return PTV_ERR_PARSE;
  if (strcmp(host, "localhost") == 0) snprintf(host, sizeof(host), "127.0.0.1");
  memset(out, 0, sizeof(*out));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0) return 0;
  return PTV_ERR_INVALID_ARG;
}

ptv_tstamp ptv_rt_now(void) { return uv_hrtime() / 1000u; }

uint64_t ptv_rt_unix_us(void) {
  uv_timeval64_t tv;
  if (uv_gettimeofday(&tv) != 0) return 0;
  return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}

int ptv_rt_parse_rate(const char *s, uint32_t *kbps) {
  char *e;
  errno = 0;
  double v = strtod(s, &e);
  if (errno || e == s || v <= 0) return PTV_ERR_PARSE;
  double mult = 1e-3; /* bits/s -> kbit/s */
  if (*e == 'k' || *e == 'K') mult = 1, e++;
  else if (*e == 'm' || *e == 'M') mult = 1e3, e++;
  else if (*e == 'g' || *e == 'G') mult = 1e6, e++;
  if (*e == 'b' || *e == 'B') e++; /* "2Mb", "2Mbps" */
  if (strcmp(e, "ps") == 0 || strcmp(e, "it/s") == 0 || strcmp(e, "/s") == 0) e += strlen(e);
  if (*e) return PTV_ERR_PARSE;
  double k = v * mult;
  if (k < 1 || k > 4e9) return PTV_ERR_PARSE;
  *kbps = (uint32_t)(k + 0.5);
  return 0;
}

void ptv_rt_log(int level, const char *fmt, ...) {
  if (level > ptv_rt_verbosity) return;
  uint64_t us = ptv_rt_unix_us();
  time_t t = (time_t)(us / 1000000u);
  struct tm tm;
  gmtime_r(&t, &tm);
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "%02d:%02d:%02d.%03u %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
          (unsigned)(us / 1000u % 1000u), g_prog, line);
}
