/* ptv_rt.h -- small helpers shared by the real programs (peertv-tracker,
 * peertv-peer, peertv-source): address parsing, clocks, logging. */
#ifndef PTV_RT_H
#define PTV_RT_H

#include <stdint.h>
#include <uv.h>

#include "ptv_types.h"

/* Parses "HOST:PORT" (IPv4 literal, "localhost", or "[v6]:PORT") into host
 * (NUL-terminated) and port. Returns 0 or PTV_ERR_PARSE. */
int ptv_rt_split_hostport(const char *s, char *host, size_t hostcap, uint16_t *port);

/* Resolves HOST:PORT (numeric or "localhost") into a sockaddr for libuv.
 * Returns 0, PTV_ERR_PARSE (not HOST:PORT) or PTV_ERR_INVALID_ARG (not an
 * address). */
int ptv_rt_sockaddr(const char *s, struct sockaddr_storage *out);

/* The engines' clock: monotonic microseconds (the same on every process of
 * a machine, so loopback delays measured across processes are true). */
ptv_tstamp ptv_rt_now(void);
/* Wall clock, microseconds since the Unix epoch. */
uint64_t ptv_rt_unix_us(void);

/* Parses a rate such as "2M", "1500k", "800000" (bits per second) into
 * kbit/s. Returns 0 or PTV_ERR_PARSE. */
int ptv_rt_parse_rate(const char *s, uint32_t *kbps);

/* Log verbosity: 0 errors, 1 info (default), 2 debug. */
extern int ptv_rt_verbosity;
/* One line to stderr: "HH:MM:SS.mmm PROG: message". */
void ptv_rt_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ptv_rt_set_prog(const char *prog);

#endif
