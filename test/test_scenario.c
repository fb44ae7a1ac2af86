/* test_scenario.c -- unit tests of the scenario language (sim/ptv_sim_scenario.c).
 *
 * Needs PTV_SRCDATADIR (the build defines it) for the data-directory fallback
 * of `file:` paths and to find sim/scenarios/example.scn. */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptv_err.h"
#include "ptv_sim_scenario.h"

/* A private directory for CSV and scenario files; doubles as a base_dir in
 * which the example's ../shared/data path does not exist. */
static char g_dir[64];

#define ERRLEN 512

#define assert_near(a, b, eps)                                                 \
  do {                                                                         \
    double a_ = (a), b_ = (b);                                                 \
    if (!(fabs(a_ - b_) <= (eps))) {                                           \
      print_error("%s = %.12g, expected %.12g\n", #a, a_, b_);                 \
      fail();                                                                  \
    }                                                                          \
  } while (0)

static void write_file(const char *name, const char *text, size_t len) {
  char path[256];
  snprintf(path, sizeof path, "%s/%s", g_dir, name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
}

static void write_text(const char *name, const char *text) {
  write_file(name, text, strlen(text));
}

static const char *const g_files[] = {"up.csv",  "bad.csv",   "hdr.csv",
                                      "s.scn",   "nul.scn",   "sub/x.csv",
                                      "sub/s.scn", "cwd.csv", "big.scn"};

static int group_setup(void **state) {
  (void)state;
  strcpy(g_dir, "/tmp/ptv_test_scn_XXXXXX");
  if (!mkdtemp(g_dir))
    return -1;
  char sub[128];
  snprintf(sub, sizeof sub, "%s/sub", g_dir);
  return mkdir(sub, 0700);
}

static int group_teardown(void **state) {
  (void)state;
  char path[256];
  for (size_t i = 0; i < sizeof g_files / sizeof g_files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", g_dir, g_files[i]);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/sub", g_dir);
  rmdir(path);
  rmdir(g_dir);
  return 0;
}

/* True when every byte of s is zero: what a failed parse must leave. */
static int is_zeroed(const ptv_scenario *s) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < sizeof *s; i++)
    if (p[i])
      return 0;
  return 1;
}

static int parse(ptv_scenario *s, const char *text, char *err) {
  return ptv_scenario_parse(s, text, g_dir, err, ERRLEN);
}

/* Parses text that must fail with rc on `line`, with a one-line message
 * "line N: ..., expected ..." containing `want`. */
static void check_error_at(const char *text, int rc, int line, const char *want,
                           const char *file, int srcline) {
  ptv_scenario s;
  char err[ERRLEN];
  char prefix[32];
  memset(&s, 0xA5, sizeof s);
  int got = parse(&s, text, err);
  snprintf(prefix, sizeof prefix, "line %d: ", line);
  if (got != rc || strncmp(err, prefix, strlen(prefix)) != 0 ||
      !strstr(err, ", expected ") || strchr(err, '\n') ||
      (want && !strstr(err, want)) || !is_zeroed(&s)) {
    print_error("%s:%d: input \"%.60s\": rc %d (want %d), err \"%s\" (want "
                "prefix \"%s\" and \"%s\")\n",
                file, srcline, text, got, rc, err, prefix, want ? want : "");
    fail();
  }
  ptv_scenario_free(&s);
}
#define check_error(text, line, want)                                          \
  check_error_at(text, PTV_ERR_PARSE, line, want, __FILE__, __LINE__)

/* Parses "<stmt>\nrun 1s\n", which must succeed. */
static void parse_ok(ptv_scenario *s, const char *text) {
  char err[ERRLEN];
  int rc = parse(s, text, err);
  if (rc != 0) {
    print_error("input \"%s\": %s\n", text, err);
    fail();
  }
}

#ifdef PTV_SRCDATADIR
static const char g_example[] =
    "# a heterogeneous swarm with a flash crowd, churn, a failure and a partition\n"
    "seed 7\n"
    "stream rate=500kbps chunk=250ms\n"
    "source upload=2500kbps\n"
    "buffer 2s\n"
    "peers upload=file:../shared/data/upload-sepidar.csv download=8Mbps "
    "nat=open:30%,cone:50%,symmetric:20%\n"
    "latency uniform 10ms 150ms\n"
    "loss 0.5%\n"
    "join 1000 over 20s\n"
    "at 120s join 1000 over 5s\n"
    "from 200s to 400s churn 10%/min\n"
    "at 300s fail 30%\n"
    "at 450s partition 2 for 30s\n"
    "run 600s\n";

static void check_example(const ptv_scenario *s) {
  assert_int_equal(s->seed, 7);
  assert_near(s->stream_kbps, 500, 0);
  assert_near(s->chunk_s, 0.25, 0);
  assert_near(s->source_kbps, 2500, 0);
  assert_near(s->buffer_s, 2, 0);
  assert_string_equal(s->upload.name, "upload-sepidar.csv");
  assert_int_equal(s->upload.n, 10);
  for (size_t i = 0; i < 10; i++) {
    assert_near(s->upload.v[i].kbps, 128.0 * (double)(i + 1), 0);
    assert_near(s->upload.v[i].weight, 1, 0);
  }
  assert_near(ptv_dist_mean(&s->upload), 704, 1e-9);
  assert_string_equal(s->download.name, "const");
  assert_int_equal(s->download.n, 1);
  assert_near(s->download.v[0].kbps, 8000, 0);
  assert_near(s->nat_share[0], 0.30, 1e-12);
  assert_near(s->nat_share[1], 0.50, 1e-12);
  assert_near(s->nat_share[2], 0.20, 1e-12);
  assert_near(s->lat_lo_s, 0.010, 1e-12);
  assert_near(s->lat_hi_s, 0.150, 1e-12);
  assert_near(s->loss, 0.005, 1e-15);
  assert_int_equal(s->nat_relay, 0);
  assert_int_equal(s->strategy, PTV_STRATEGY_MESH);
  assert_near(s->run_s, 600, 0);
  assert_int_equal(s->nevents, 5);
  const ptv_scn_event *e = s->events;
  assert_int_equal(e[0].kind, PTV_SCN_JOIN);
  assert_near(e[0].at_s, 0, 0);
  assert_near(e[0].dur_s, 20, 0);
  assert_int_equal(e[0].count, 1000);
  assert_int_equal(e[0].line, 9);
  assert_int_equal(e[1].kind, PTV_SCN_JOIN);
  assert_near(e[1].at_s, 120, 0);
  assert_near(e[1].dur_s, 5, 0);
  assert_int_equal(e[1].count, 1000);
  assert_int_equal(e[1].line, 10);
  assert_int_equal(e[2].kind, PTV_SCN_CHURN);
  assert_near(e[2].at_s, 200, 0);
  assert_near(e[2].dur_s, 200, 0);
  assert_near(e[2].frac, 0.10, 1e-15);
  assert_int_equal(e[2].line, 11);
  assert_int_equal(e[3].kind, PTV_SCN_FAIL);
  assert_near(e[3].at_s, 300, 0);
  assert_near(e[3].frac, 0.30, 1e-15);
  assert_int_equal(e[3].line, 12);
  assert_int_equal(e[4].kind, PTV_SCN_PARTITION);
  assert_near(e[4].at_s, 450, 0);
  assert_near(e[4].dur_s, 30, 0);
  assert_int_equal(e[4].count, 2);
  assert_int_equal(e[4].line, 13);
}

#endif

/* ---- the example --------------------------------------------------------- */

static void test_example_text(void **state) {
  (void)state;
#ifdef PTV_SRCDATADIR
  ptv_scenario s;
  char err[ERRLEN];
  int rc = ptv_scenario_parse(&s, g_example, g_dir, err, sizeof err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, 0);
  check_example(&s);
  ptv_scenario_free(&s);
  assert_true(is_zeroed(&s));
#else
  skip();
#endif
}

/* The shipped file is the example, byte for byte, and loads from its own
 * directory where ../shared does not exist either. */
static void test_example_file(void **state) {
  (void)state;
#ifdef PTV_SRCDATADIR
  const char *path = PTV_SRCDATADIR "/../sim/scenarios/example.scn";
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char buf[2048];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  assert_string_equal(buf, g_example);

  ptv_scenario s;
  char err[ERRLEN];
  int rc = ptv_scenario_load(&s, path, err, sizeof err);
  if (rc)
    print_error("%s\n", err);
  assert_int_equal(rc, 0);
  check_example(&s);
  ptv_scenario_free(&s);
#else
  skip();
#endif
}

/* ---- statements ------------------------------------------------------------ */

static void test_defaults(void **state) {
  (void)state;
  ptv_scenario s;
  parse_ok(&s, "run 10s");
  assert_int_equal(s.seed, 1);
  assert_near(s.stream_kbps, 500, 0);
  assert_near(s.chunk_s, 0.25, 0);
  assert_near(s.source_kbps, 2500, 0);
  assert_near(s.buffer_s, 2, 0);
  assert_string_equal(s.upload.name, "const");
  assert_int_equal(s.upload.n, 1);
  assert_near(s.upload.v[0].kbps, 1000, 0);
  assert_string_equal(s.download.name, "const");
  assert_near(s.download.v[0].kbps, 8000, 0);
  assert_near(s.nat_share[0], 1, 0);
  assert_near(s.nat_share[1], 0, 0);
  assert_near(s.nat_share[2], 0, 0);
  assert_near(s.lat_lo_s, 0.010, 1e-15);
  assert_near(s.lat_hi_s, 0.150, 1e-15);
  assert_near(s.loss, 0, 0);
  assert_int_equal(s.nat_relay, 0);
  assert_int_equal(s.strategy, PTV_STRATEGY_MESH);
  assert_near(s.run_s, 10, 0);
  assert_int_equal(s.nevents, 0);
  assert_null(s.events);
  ptv_scenario_free(&s);
}

static void test_seed(void **state) {
  (void)state;
  ptv_scenario s;
  parse_ok(&s, "seed 0\nrun 1s");
  assert_int_equal(s.seed, 0);
  ptv_scenario_free(&s);
  parse_ok(&s, "seed 18446744073709551615\nrun 1s");
  assert_true(s.seed == UINT64_MAX);
  ptv_scenario_free(&s);
  check_error("seed 18446744073709551616\nrun 1s", 1, "out of range");
  check_error("seed 99999999999999999999999999999999\nrun 1s", 1, "out of range");
  check_error("seed -1\nrun 1s", 1, "negative seed");
  check_error("seed 1.5\nrun 1s", 1, "not a whole number");
  check_error("seed 0x10\nrun 1s", 1, "not a whole number");
  check_error("seed\nrun 1s", 1, "incomplete 'seed'");
  check_error("seed 1 2\nrun 1s", 1, "unexpected '2'");
}

static void test_stream(void **state) {
  (void)state;
  ptv_scenario s;
  parse_ok(&s, "stream chunk=1s rate=2Mbps\nrun 1s");
  assert_near(s.stream_kbps, 2000, 0);
  assert_near(s.chunk_s, 1, 0);
  assert_near(s.source_kbps, 10000, 0); /* 5 x stream when no source line */
  ptv_scenario_free(&s);
  parse_ok(&s, "stream rate=300kbps\nrun 1s");
  assert_near(s.stream_kbps, 300, 0);
  assert_near(s.chunk_s, 0.25, 0);
  ptv_scenario_free(&s);
  parse_ok(&s, "stream chunk=100ms\nrun 1s");
  assert_near(s.stream_kbps, 500, 0);
  assert_near(s.chunk_s, 0.1, 1e-15);
  ptv_scenario_free(&s);
  parse_ok(&s, "stream\nrun 1s");
  assert_near(s.stream_kbps, 500, 0);
  ptv_scenario_free(&s);
  /* the source line may come before the stream line; the default follows */
  parse_ok(&s, "run 1s\nstream rate=1Mbps\nsource upload=3Mbps");
  assert_near(s.source_kbps, 3000, 0);
  ptv_scenario_free(&s);

  check_error("stream rate=0kbps\nrun 1s", 1, "must be above zero");
  check_error("stream chunk=0ms\nrun 1s", 1, "chunk duration '0ms' must be above zero");
  check_error("stream rate=1Mbps rate=2Mbps\nrun 1s", 1, "'rate' given twice");
  check_error("stream speed=1Mbps\nrun 1s", 1, "unknown option 'speed' for 'stream'");
  check_error("stream rate=\nrun 1s", 1, "empty value for 'rate'");
  check_error("stream 500kbps\nrun 1s", 1, "not a key=value option");
  check_error("stream =500kbps\nrun 1s", 1, "not a key=value option");
  check_error("stream rate=1Mbps chunk=1s x=1\nrun 1s", 1, "unexpected 'x=1'");
}

static void test_rate_units(void **state) {
  (void)state;
  static const struct {
    const char *tok;
    double kbps;
  } cases[] = {
      {"64000bps", 64},   {"500bps", 0.5},  {"500kbps", 500}, {"1.5Mbps", 1500},
      {"2Mbps", 2000},    {"1Gbps", 1e6},   {".5Mbps", 500},  {"3.kbps", 3},
      {"1000Gbps", 1e9},  {"0.001kbps", 0.001},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[128];
    ptv_scenario s;
    snprintf(text, sizeof text, "source upload=%s\nrun 1s", cases[i].tok);
    parse_ok(&s, text);
    assert_near(s.source_kbps, cases[i].kbps, cases[i].kbps * 1e-12);
    ptv_scenario_free(&s);
  }
  check_error("source upload=500\nrun 1s", 1, "missing unit in source upload '500'");
  check_error("source upload=500kbs\nrun 1s", 1, "unknown unit 'kbs' in '500kbs'");
  check_error("source upload=500KBPS\nrun 1s", 1, "unknown unit 'KBPS'");
  check_error("source upload=500mbps\nrun 1s", 1, "unknown unit 'mbps'");
  check_error("source upload=1e3kbps\nrun 1s", 1, "unknown unit 'e3kbps'");
  check_error("source upload=-5kbps\nrun 1s", 1, "negative source upload '-5kbps'");
  check_error("source upload=+5kbps\nrun 1s", 1, "is not a number");
  check_error("source upload=nankbps\nrun 1s", 1, "is not a number");
  check_error("source upload=NaN\nrun 1s", 1, "is not a number");
  check_error("source upload=inf\nrun 1s", 1, "is not a number");
  check_error("source upload=infkbps\nrun 1s", 1, "is not a number");
  check_error("source upload=1001Gbps\nrun 1s", 1, "too large, expected at most 1000Gbps");
  check_error("source upload=.kbps\nrun 1s", 1, "is not a number");
  check_error("source upload=1.2.3kbps\nrun 1s", 1, "unknown unit '.3kbps'");
  check_error("source upload=0kbps\nrun 1s", 1, "must be above zero");
  check_error("source rate=1Mbps\nrun 1s", 1, "unknown option 'rate' for 'source'");
  check_error("source\nrun 1s", 1, "incomplete 'source'");
}

static void test_duration_units(void **state) {
  (void)state;
  static const struct {
    const char *tok;
    double s;
  } cases[] = {
      {"500us", 0.0005}, {"250ms", 0.25}, {"2s", 2},   {"1.5s", 1.5},
      {"2min", 120},     {"1.5h", 5400},  {"1h", 3600}, {"0.5min", 30},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[128];
    ptv_scenario s;
    snprintf(text, sizeof text, "buffer %s\nrun %s", cases[i].tok, cases[i].tok);
    parse_ok(&s, text);
    assert_near(s.buffer_s, cases[i].s, cases[i].s * 1e-12);
    assert_near(s.run_s, cases[i].s, cases[i].s * 1e-12);
    ptv_scenario_free(&s);
  }
  check_error("buffer 2\nrun 1s", 1, "no space before the unit");
  check_error("buffer 2 s\nrun 1s", 1, "unexpected 's'");
  check_error("buffer 2sec\nrun 1s", 1, "unknown unit 'sec' in '2sec'");
  check_error("buffer 2S\nrun 1s", 1, "unknown unit 'S'");
  check_error("buffer 0s\nrun 1s", 1, "buffer '0s' must be above zero");
  check_error("buffer -2s\nrun 1s", 1, "negative buffer");
  check_error("buffer 1000000001s\nrun 1s", 1, "too large, expected at most 1000000000s");
  check_error("buffer 300000h\nrun 1s", 1, "too large");
  check_error("run 0s", 1, "run time '0s' must be above zero");
  check_error("run 0.0ms", 1, "must be above zero");
  check_error("run", 1, "incomplete 'run'");
  check_error("run 1s 2s", 1, "unexpected '2s'");
  check_error("buffer 1234567890123456789012345678901234567890123456789012345678901234s"
              "\nrun 1s",
              1, "too many digits");
}

static void test_peers(void **state) {
  (void)state;
  ptv_scenario s;
  parse_ok(&s, "peers nat=cone:100% download=10Mbps upload=300kbps\nrun 1s");
  assert_string_equal(s.upload.name, "const");
  assert_near(s.upload.v[0].kbps, 300, 0);
  assert_near(s.download.v[0].kbps, 10000, 0);
  assert_near(s.nat_share[0], 0, 0);
  assert_near(s.nat_share[1], 1, 0);
  assert_near(s.nat_share[2], 0, 0);
  ptv_scenario_free(&s);

  parse_ok(&s, "peers upload=sepidar\nrun 1s");
  assert_string_equal(s.upload.name, "sepidar");
  assert_int_equal(s.upload.n, 10);
  assert_near(ptv_dist_mean(&s.upload), 704, 1e-9);
  assert_near(s.download.v[0].kbps, 8000, 0); /* untouched default */
  ptv_scenario_free(&s);

  parse_ok(&s, "peers upload=clive download=sepidar\nrun 1s");
  assert_string_equal(s.upload.name, "clive");
  assert_int_equal(s.upload.n, 21);
  assert_string_equal(s.download.name, "sepidar");
  ptv_scenario_free(&s);

  /* free riders: upload 0 is allowed */
  parse_ok(&s, "peers upload=0kbps\nrun 1s");
  assert_near(s.upload.v[0].kbps, 0, 0);
  ptv_scenario_free(&s);

  parse_ok(&s, "peers\nrun 1s");
  assert_near(s.nat_share[0], 1, 0);
  ptv_scenario_free(&s);

  /* missing classes are 0; shares within 0.01 points of 100% pass and are
   * normalised */
  parse_ok(&s, "peers nat=symmetric:40%,open:60%\nrun 1s");
  assert_near(s.nat_share[0], 0.6, 1e-12);
  assert_near(s.nat_share[1], 0, 0);
  assert_near(s.nat_share[2], 0.4, 1e-12);
  ptv_scenario_free(&s);
  parse_ok(&s, "peers nat=open:33.33%,cone:33.33%,symmetric:33.33%\nrun 1s");
  assert_near(s.nat_share[0] + s.nat_share[1] + s.nat_share[2], 1, 1e-12);
  assert_near(s.nat_share[0], 1.0 / 3, 1e-12);
  ptv_scenario_free(&s);
  parse_ok(&s, "peers nat=open:50.005%,cone:50.005%\nrun 1s");
  assert_near(s.nat_share[0], 0.5, 1e-12);
  ptv_scenario_free(&s);

  check_error("peers nat=open:33.3%,cone:33.3%,symmetric:33.3%\nrun 1s", 1,
              "NAT shares add up to 99.9%, expected a total of 100%");
  check_error("peers nat=open:50.01%,cone:50.01%\nrun 1s", 1, "add up to");
  check_error("peers nat=open:30%\nrun 1s", 1, "add up to 30%");
  check_error("peers nat=open:130%,cone:0%\nrun 1s", 1, "too large, expected at most 100%");
  check_error("peers nat=full:100%\nrun 1s", 1, "unknown NAT class 'full'");
  check_error("peers nat=open:50%,open:50%\nrun 1s", 1, "NAT class 'open' given twice");
  check_error("peers nat=open\nrun 1s", 1, "has no ':'");
  check_error("peers nat=open:100%,\nrun 1s", 1, "empty item in nat=");
  check_error("peers nat=,open:100%\nrun 1s", 1, "empty item in nat=");
  check_error("peers nat=open:100\nrun 1s", 1, "missing unit");
  check_error("peers nat=open:-100%\nrun 1s", 1, "negative NAT share");
  check_error("peers upload=fast\nrun 1s", 1,
              "unknown upload distribution 'fast', expected a rate like 1Mbps, "
              "sepidar, clive or file:PATH");
  check_error("peers upload=Sepidar\nrun 1s", 1, "unknown upload distribution");
  check_error("peers upload=1Mbit\nrun 1s", 1, "unknown unit 'Mbit'");
  check_error("peers upload=-1Mbps\nrun 1s", 1, "negative upload");
  check_error("peers download=0kbps\nrun 1s", 1, "download '0kbps' must be above zero");
  check_error("peers download=clive\nrun 1s", 1,
              "download distribution 'clive' contains a zero rate");
  check_error("peers upload=1Mbps upload=2Mbps\nrun 1s", 1, "'upload' given twice");
  check_error("peers up=1Mbps\nrun 1s", 1, "unknown option 'up' for 'peers'");
  check_error("peers upload=1Mbps download=1Mbps nat=open:100% x=y\nrun 1s", 1,
              "unexpected 'x=y'");
}

static void test_latency_loss(void **state) {
  (void)state;
  ptv_scenario s;
  parse_ok(&s, "latency uniform 5ms 1s\nloss 1%\nrun 1s");
  assert_near(s.lat_lo_s, 0.005, 1e-15);
  assert_near(s.lat_hi_s, 1, 0);
  assert_near(s.loss, 0.01, 1e-15);
  ptv_scenario_free(&s);
  parse_ok(&s, "latency fixed 40ms\nloss 100%\nrun 1s");
  assert_near(s.lat_lo_s, 0.04, 1e-15);
  assert_near(s.lat_hi_s, 0.04, 1e-15);
  assert_near(s.loss, 1, 0);
  ptv_scenario_free(&s);
  parse_ok(&s, "latency uniform 0ms 0ms\nloss 0%\nrun 1s");
  assert_near(s.lat_hi_s, 0, 0);
  assert_near(s.loss, 0, 0);
  ptv_scenario_free(&s);

  check_error("latency uniform 150ms 10ms\nrun 1s", 1, "is reversed");
  check_error("latency normal 10ms 150ms\nrun 1s", 1, "unknown latency model 'normal'");
  check_error("latency uniform 10ms\nrun 1s", 1, "incomplete 'latency'");
  check_error("latency fixed 10ms 20ms\nrun 1s", 1, "unexpected '20ms'");
  check_error("latency fixed\nrun 1s", 1, "incomplete 'latency'");
  check_error("latency\nrun 1s", 1, "incomplete 'latency'");
  check_error("latency uniform 10 150ms\nrun 1s", 1, "missing unit in latency '10'");
  check_error("loss 0.5\nrun 1s", 1, "missing unit in loss '0.5', expected a share like 30%");
  check_error("loss 101%\nrun 1s", 1, "loss '101%' is too large");
  check_error("loss 5pc\nrun 1s", 1, "unknown unit 'pc'");
  check_error("loss -1%\nrun 1s", 1, "negative loss");
}

static void test_nat_strategy(void **state) {
  (void)state;
  ptv_scenario s;
  parse_ok(&s, "nat relay on\nstrategy chandelier\nrun 1s");
  assert_int_equal(s.nat_relay, 1);
  assert_int_equal(s.strategy, PTV_STRATEGY_CHANDELIER);
  ptv_scenario_free(&s);
  parse_ok(&s, "nat relay off\nstrategy mesh\nrun 1s");
  assert_int_equal(s.nat_relay, 0);
  assert_int_equal(s.strategy, PTV_STRATEGY_MESH);
  ptv_scenario_free(&s);
  check_error("nat relay yes\nrun 1s", 1, "'yes' is not on or off");
  check_error("nat traversal on\nrun 1s", 1, "unknown NAT setting 'traversal'");
  check_error("nat relay\nrun 1s", 1, "incomplete 'nat'");
  check_error("strategy tree\nrun 1s", 1, "unknown strategy 'tree', expected mesh or chandelier");
  check_error("strategy\nrun 1s", 1, "incomplete 'strategy'");
}

static void test_events(void **state) {
  (void)state;
  ptv_scenario s;
  parse_ok(&s, "join 10\n"
               "at 1min join 5\n"
               "at 2min leave 25%\n"
               "at 1.5min fail 100%\n"
               "at 0s partition 4 for 1h\n"
               "from 1min to 2min churn 0.5%/min\n"
               "join 3 over 0s\n"
               "run 10s\n"
               "at 1h join 1 over 1s # after the end: allowed, never fires\n"
               "at 5s tracker down for 30s\n");
  assert_int_equal(s.nevents, 9);
  const ptv_scn_event *e = s.events;
  assert_int_equal(e[0].kind, PTV_SCN_JOIN);
  assert_int_equal(e[0].count, 10);
  assert_near(e[0].at_s, 0, 0);
  assert_near(e[0].dur_s, 0, 0);
  assert_int_equal(e[0].line, 1);
  assert_int_equal(e[1].kind, PTV_SCN_JOIN);
  assert_int_equal(e[1].count, 5);
  assert_near(e[1].at_s, 60, 0);
  assert_near(e[1].dur_s, 0, 0);
  assert_int_equal(e[2].kind, PTV_SCN_LEAVE);
  assert_near(e[2].at_s, 120, 0);
  assert_near(e[2].frac, 0.25, 0);
  assert_int_equal(e[3].kind, PTV_SCN_FAIL);
  assert_near(e[3].at_s, 90, 0);
  assert_near(e[3].frac, 1, 0);
  assert_int_equal(e[4].kind, PTV_SCN_PARTITION);
  assert_int_equal(e[4].count, 4);
  assert_near(e[4].dur_s, 3600, 0);
  assert_int_equal(e[5].kind, PTV_SCN_CHURN);
  assert_near(e[5].at_s, 60, 0);
  assert_near(e[5].dur_s, 60, 0);
  assert_near(e[5].frac, 0.005, 1e-15);
  assert_int_equal(e[6].count, 3);
  assert_int_equal(e[7].kind, PTV_SCN_JOIN);
  assert_near(e[7].at_s, 3600, 0);
  assert_int_equal(e[8].kind, PTV_SCN_TRACKER_DOWN);
  assert_near(e[8].at_s, 5, 0);
  assert_near(e[8].dur_s, 30, 0);
  assert_int_equal(e[7].line, 9);
  ptv_scenario_free(&s);

  /* many events: the array grows past its first allocation */
  char big[64 * 40];
  size_t k = 0;
  for (int i = 0; i < 40; i++)
    k += (size_t)snprintf(big + k, sizeof big - k, "at %ds fail 1%%\n", i);
  snprintf(big + k, sizeof big - k, "run 1s\n");
  parse_ok(&s, big);
  assert_int_equal(s.nevents, 40);
  for (int i = 0; i < 40; i++) {
    assert_near(s.events[i].at_s, i, 0);
    assert_int_equal(s.events[i].line, i + 1);
  }
  ptv_scenario_free(&s);

  check_error("join 0 over 1s\nrun 1s", 1, "peer count '0' is out of range");
  check_error("join 4294967296\nrun 1s", 1, "out of range, expected a whole number from 1 to 4294967295");
  check_error("join 10 over\nrun 1s", 1, "incomplete 'join'");
  check_error("join 10 in 5s\nrun 1s", 1, "unexpected 'in' where 'over' belongs");
  check_error("join 10 over 5s now\nrun 1s", 1, "unexpected 'now'");
  check_error("join ten over 5s\nrun 1s", 1, "not a whole number");
  check_error("join\nrun 1s", 1, "incomplete 'join'");
  check_error("at 10s join 5 over -1s\nrun 1s", 1, "negative join duration");
  check_error("at 10 join 5\nrun 1s", 1, "missing unit in time '10', expected a time like");
  check_error("at 10s jion 5\nrun 1s", 1, "unknown event 'jion'");
  check_error("at 10s\nrun 1s", 1, "incomplete 'at'");
  check_error("at 10s fail\nrun 1s", 1, "incomplete 'at'");
  check_error("at 10s fail 30\nrun 1s", 1, "missing unit in failing share '30'");
  check_error("at 10s leave 130%\nrun 1s", 1, "leaving share '130%' is too large");
  check_error("at 10s fail 30% now\nrun 1s", 1, "unexpected 'now'");
  check_error("at 10s partition 1 for 5s\nrun 1s", 1,
              "group count '1' is out of range, expected a whole number from 2");
  check_error("at 10s partition 2 during 5s\nrun 1s", 1, "unexpected 'during' where 'for' belongs");
  check_error("at 10s partition 2 for 0s\nrun 1s", 1, "partition duration '0s' must be above zero");
  check_error("at 10s partition 2\nrun 1s", 1, "incomplete 'at'");
  check_error("at 10s tracker up for 5s\nrun 1s", 1, "unexpected 'up' where 'down' belongs");
  check_error("at 10s tracker down for 0s\nrun 1s", 1, "tracker outage '0s' must be above zero");
  check_error("at 10s tracker down\nrun 1s", 1, "incomplete 'at'");
  check_error("from 400s to 200s churn 10%/min\nrun 1s", 1, "churn window from 400s to 200s is empty");
  check_error("from 200s to 200s churn 10%/min\nrun 1s", 1, "is empty");
  check_error("from 200s to 400s churn 10%\nrun 1s", 1, "unknown unit '%' in '10%', expected a churn rate like 10%/min");
  check_error("from 200s to 400s churn 10%/h\nrun 1s", 1, "unknown unit '%/h'");
  check_error("from 200s to 400s churn 101%/min\nrun 1s", 1, "at most 100%/min");
  check_error("from 200s until 400s churn 1%/min\nrun 1s", 1, "where 'to' belongs");
  check_error("from 200s to 400s fail 1%/min\nrun 1s", 1, "where 'churn' belongs");
  check_error("from 200s to 400s\nrun 1s", 1, "incomplete 'from'");
}

static void test_lexical(void **state) {
  (void)state;
  ptv_scenario s;
  /* comments, blank lines, tabs, CRLF, trailing comments, comment glued on */
  parse_ok(&s, "\n# only a comment\n   \t \r\n"
               "\tseed\t\t42   # the answer\r\n"
               "loss 2%#no space before the comment\r\n"
               "  #indented comment\n"
               "run 5s\r\n"
               "\n");
  assert_int_equal(s.seed, 42);
  assert_near(s.loss, 0.02, 1e-15);
  assert_near(s.run_s, 5, 0);
  ptv_scenario_free(&s);
  /* no newline at the end */
  parse_ok(&s, "run 5s");
  ptv_scenario_free(&s);
}

/* ---- errors in general ------------------------------------------------------- */

static void test_error_format(void **state) {
  (void)state;
  ptv_scenario s;
  char err[ERRLEN];

  assert_int_equal(parse(&s, "seed 1\nstream rate=1Mbps\nsource upload=500kbs\nrun 1s", err),
                   PTV_ERR_PARSE);
  assert_string_equal(err, "line 3: unknown unit 'kbs' in '500kbs', expected a rate "
                           "like 500kbps or 2Mbps");
  assert_true(is_zeroed(&s));

  assert_int_equal(parse(&s, "\n\n\n\n\n\n\n\njion 5 over 1s\nrun 1s", err), PTV_ERR_PARSE);
  assert_string_equal(err, "line 9: unknown statement 'jion', expected one of seed, "
                           "stream, source, buffer, peers, latency, loss, nat, "
                           "strategy, join, at, from, run");

  /* missing run: the line just past the end */
  check_error("seed 1\n", 2, "missing 'run' statement");
  check_error("seed 1", 2, "missing 'run' statement");
  check_error("seed 1\n\n# c\n", 4, "missing 'run' statement");
  check_error("seed 1\n# last", 3, "missing 'run' statement");
  check_error("", 1, "missing 'run' statement, expected a line like 'run 600s'");
  check_error("\n\n", 3, "missing 'run'");
  check_error("# nothing", 2, "missing 'run'");

  /* the first error wins */
  check_error("run 1s\nseed x\nloss 5\n", 2, "seed 'x'");
  /* settings at most once, events repeat */
  check_error("seed 1\nrun 1s\nseed 2\n", 3, "second 'seed' statement (the first is on line 1)");
  check_error("run 1s\nrun 2s\n", 2, "second 'run'");
  check_error("peers upload=1Mbps\npeers nat=open:100%\nrun 1s\n", 2, "second 'peers'");
  /* keywords are case-sensitive */
  check_error("Seed 1\nrun 1s", 1, "unknown statement 'Seed'");
  check_error("RUN 1s", 1, "unknown statement 'RUN'");
  /* NULL and tiny error buffers */
  assert_int_equal(ptv_scenario_parse(&s, "jion", NULL, NULL, 0), PTV_ERR_PARSE);
  assert_int_equal(ptv_scenario_parse(&s, "jion", NULL, err, 1), PTV_ERR_PARSE);
  assert_string_equal(err, "");
  assert_int_equal(ptv_scenario_parse(&s, "jion", NULL, err, 8), PTV_ERR_PARSE);
  assert_string_equal(err, "line 1:");
  assert_int_equal(ptv_scenario_parse(&s, "jion", NULL, err, 12), PTV_ERR_PARSE);
  assert_string_equal(err, "line 1: unk");
  assert_int_equal(ptv_scenario_parse(NULL, "run 1s", NULL, err, sizeof err),
                   PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_scenario_parse(&s, NULL, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  assert_true(is_zeroed(&s));
}

static void test_hostile_input(void **state) {
  (void)state;
  ptv_scenario s;
  char err[ERRLEN];

  /* an overlong word is shortened in the message, which stays one line */
  size_t n = 100000;
  char *text = malloc(n + 16);
  assert_non_null(text);
  memset(text, 'x', n);
  strcpy(text + n, "\nrun 1s");
  assert_int_equal(parse(&s, text, err), PTV_ERR_PARSE);
  assert_true(strlen(err) < 200);
  assert_non_null(strstr(err, "line 1: unknown statement 'xxx"));
  assert_non_null(strstr(err, "...', expected"));
  /* the same as a number and as a value */
  memcpy(text, "run ", 4);
  memset(text + 4, '9', n - 4);
  strcpy(text + n, "s");
  assert_int_equal(parse(&s, text, err), PTV_ERR_PARSE);
  assert_non_null(strstr(err, "too many digits"));
  memcpy(text, "buffer 1", 8);
  memset(text + 8, 'z', n - 8);
  strcpy(text + n, "\nrun 1s");
  assert_int_equal(parse(&s, text, err), PTV_ERR_PARSE);
  assert_non_null(strstr(err, "unknown unit"));
  assert_true(strlen(err) < 300);
  free(text);

  /* control characters and UTF-8 in a quoted word */
  assert_int_equal(parse(&s, "s\x01\x1b[31m\x7f\xc3\xa9 1\nrun 1s", err), PTV_ERR_PARSE);
  for (const char *p = err; *p; p++)
    assert_false((unsigned char)*p < 0x20 || *p == 0x7f);
  assert_non_null(strstr(err, "'s??[31m?\xc3\xa9'"));
  /* truncation never splits a UTF-8 sequence */
  char utf[256] = "";
  for (int i = 0; i < 60; i++)
    strcat(utf, "\xc3\xa9");
  strcat(utf, "\nrun 1s");
  assert_int_equal(parse(&s, utf, err), PTV_ERR_PARSE);
  char *dots = strstr(err, "...'");
  assert_non_null(dots);
  assert_true(((unsigned char)dots[-1] & 0xC0) == 0x80); /* ends on a full char */
  assert_true((unsigned char)dots[-2] == 0xc3);

  check_error("a b c d e f g h i j k l m n o p q r\nrun 1s", 1, "more than 16 words");
  check_error("at 1s fail 1% 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\nrun 1s", 1,
              "more than 16 words");
  check_error("run 1s\n\x01\n", 2, "unknown statement '?'");
  check_error("run 1s\n=\n", 2, "unknown statement '='");

  /* deterministic fuzz: random words from a grammar-ish alphabet, plus bytes */
  static const char *const words[] = {
      "seed", "stream", "source", "buffer", "peers", "latency", "loss", "nat",
      "strategy", "join", "at", "from", "run", "rate=1Mbps", "chunk=", "upload=",
      "upload=file:", "nat=open:", "1", "0", "-1", "1e9", "nan", "inf", "10s",
      "10%", "10%/min", "over", "for", "to", "churn", "fail", "leave", "partition",
      "uniform", "fixed", "relay", "on", "=", ":", ",", "%", "#", "\t", "\r",
      "99999999999999999999999999", "0.000000001us", "download=clive",
      "upload=file:/nonexistent", "nat=open:50%,cone:50%", "1000Gbps", "1001Gbps"};
  const size_t nw = sizeof words / sizeof words[0];
  uint64_t x = 0x9E3779B97F4A7C15ull;
  char line[1024];
  for (int iter = 0; iter < 4000; iter++) {
    size_t k = 0;
    int nlines = 1 + (int)(x % 4);
    for (int l = 0; l < nlines; l++) {
      int nwords = (int)((x >> 8) % 8);
      for (int w = 0; w < nwords && k < sizeof line - 64; w++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        if ((x >> 60) == 0) {
          line[k++] = (char)(1 + (x >> 20) % 255); /* any byte but NUL */
        } else {
          const char *wd = words[(x >> 33) % nw];
          size_t wl = strlen(wd);
          memcpy(line + k, wd, wl);
          k += wl;
        }
        line[k++] = (x >> 40) & 1 ? ' ' : '\t';
      }
      line[k++] = '\n';
      x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
    if (x & 1) {
      memcpy(line + k, "run 1s\n", 7);
      k += 7;
    }
    line[k] = '\0';
    int rc = parse(&s, line, err);
    if (rc == 0) {
      assert_true(s.run_s > 0);
      ptv_scenario_free(&s);
    } else {
      assert_true(rc == PTV_ERR_PARSE || rc == PTV_ERR_IO);
      assert_true(strncmp(err, "line ", 5) == 0);
      assert_non_null(strstr(err, ", expected "));
      assert_null(strchr(err, '\n'));
      assert_true(is_zeroed(&s));
    }
  }
}

static void test_free_safe(void **state) {
  (void)state;
  ptv_scenario s;
  memset(&s, 0, sizeof s);
  ptv_scenario_free(&s);
  ptv_scenario_free(&s);
  ptv_scenario_free(NULL);
  ptv_dist d;
  memset(&d, 0, sizeof d);
  ptv_dist_free(&d);
  ptv_dist_free(NULL);
  parse_ok(&s, "peers upload=sepidar\njoin 1\nrun 1s");
  ptv_scenario_free(&s);
  assert_true(is_zeroed(&s));
  ptv_scenario_free(&s);
}

/* ---- distribution files ------------------------------------------------------ */

static void test_csv_parse(void **state) {
  (void)state;
  ptv_dist d;
  char err[ERRLEN];
  assert_int_equal(ptv_dist_parse_csv(&d,
                                      "# comment\n"
                                      "\n"
                                      "upload_kbps,weight\n"
                                      "  100 , 1  # trailing comment\r\n"
                                      "# another\n"
                                      "200,3\n"
                                      "0,0.5\n"
                                      "1.5,.25",
                                      err, sizeof err),
                   0);
  assert_int_equal(d.n, 4);
  assert_near(d.v[0].kbps, 100, 0);
  assert_near(d.v[0].weight, 1, 0);
  assert_near(d.v[1].kbps, 200, 0);
  assert_near(d.v[1].weight, 3, 0);
  assert_near(d.v[2].kbps, 0, 0);
  assert_near(d.v[3].kbps, 1.5, 0);
  assert_near(d.v[3].weight, 0.25, 0);
  ptv_dist_free(&d);

  /* no header is fine too */
  assert_int_equal(ptv_dist_parse_csv(&d, "5,1\n", err, sizeof err), 0);
  assert_int_equal(d.n, 1);
  ptv_dist_free(&d);

  static const struct {
    const char *text;
    const char *want;
  } bad[] = {
      {"a,b\n1,1\n\nkbps,weight\n", "line 4: upload 'kbps' is not a number"},
      {"# c\n100,0\n", "line 2: weight '0' must be above zero, expected a number above zero"},
      {"100,1\n200,-1\n", "line 2: negative weight '-1'"},
      {"-100,1\n", "line 1: negative upload '-100'"},
      {"100\n", "line 1: row '100' has no comma, expected upload_kbps,weight"},
      {"h\n100;1\n", "line 2: row '100;1' has no comma"},
      {"100,1,2\n", "line 1: row '100,1,2' has more than two columns"},
      {"100kbps,1\n", "line 1: upload '100kbps' is not a plain number"},
      {"100,1x\n", "line 1: weight '1x' is not a plain number"},
      {"100,\n", "line 1: weight '' is not a number"},
      {"1,1\n,1\n", "line 2: upload '' is not a number"},
      {",1\n", "line 2: no rows"}, /* a non-numeric first line is the header */
      {"1,1\nnan,1\n", "line 2: upload 'nan' is not a number"},
      {"1,inf\n", "line 1: weight 'inf' is not a number"},
      {"1e3,1\n", "line 1: upload '1e3' is not a plain number"},
      {"2000000000,1\n", "line 1: upload '2000000000' is too large"},
      {"", "line 1: no rows in the distribution, expected at least one"},
      {"\n", "line 2: no rows"},
      {"upload_kbps,weight\n", "line 2: no rows"},
      {"# only\n# comments", "line 3: no rows"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&d, 0x5A, sizeof d);
    int rc = ptv_dist_parse_csv(&d, bad[i].text, err, sizeof err);
    if (rc != PTV_ERR_PARSE || strncmp(err, bad[i].want, strlen(bad[i].want)) != 0 ||
        !strstr(err, ", expected ")) {
      print_error("csv \"%s\": rc %d, err \"%s\", want \"%s\"\n", bad[i].text, rc, err,
                  bad[i].want);
      fail();
    }
    assert_null(d.v);
    assert_int_equal(d.n, 0);
  }
  assert_int_equal(ptv_dist_parse_csv(NULL, "1,1", err, sizeof err), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_dist_parse_csv(&d, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_dist_parse_csv(&d, "1,0", NULL, 0), PTV_ERR_PARSE);
}

static void test_csv_data_files(void **state) {
  (void)state;
#ifdef PTV_SRCDATADIR
  /* the embedded tables equal the shipped CSV files */
  static const char *const names[] = {"sepidar", "clive"};
  static const char *const files[] = {PTV_SRCDATADIR "/upload-sepidar.csv",
                                      PTV_SRCDATADIR "/upload-clive-trace.csv"};
  for (int i = 0; i < 2; i++) {
    FILE *f = fopen(files[i], "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    ptv_dist a, b;
    char err[ERRLEN];
    assert_int_equal(ptv_dist_parse_csv(&a, buf, err, sizeof err), 0);
    assert_int_equal(ptv_dist_builtin(&b, names[i]), 0);
    assert_string_equal(b.name, names[i]);
    assert_int_equal(a.n, b.n);
    for (size_t k = 0; k < a.n; k++) {
      assert_near(a.v[k].kbps, b.v[k].kbps, 0);
      assert_near(a.v[k].weight, b.v[k].weight, 0);
    }
    ptv_dist_free(&a);
    ptv_dist_free(&b);
  }
#else
  skip();
#endif
}

static void test_builtin(void **state) {
  (void)state;
  ptv_dist d;
  assert_int_equal(ptv_dist_builtin(&d, "sepidar"), 0);
  assert_int_equal(d.n, 10);
  assert_near(d.v[0].kbps, 128, 0);
  assert_near(d.v[9].kbps, 1280, 0);
  assert_near(ptv_dist_mean(&d), 704, 1e-9);
  ptv_dist_free(&d);
  assert_int_equal(ptv_dist_builtin(&d, "clive"), 0);
  assert_int_equal(d.n, 21);
  assert_near(d.v[0].kbps, 0, 0);
  assert_near(d.v[0].weight, 55.77, 0);
  assert_near(d.v[20].kbps, 2000, 0);
  assert_near(ptv_dist_mean(&d), 258.672693815505, 1e-6);
  ptv_dist_free(&d);
  assert_int_equal(ptv_dist_builtin(&d, "Sepidar"), PTV_ERR_NOT_FOUND);
  assert_null(d.v);
  assert_int_equal(ptv_dist_builtin(&d, NULL), PTV_ERR_NOT_FOUND);
  assert_int_equal(ptv_dist_builtin(NULL, "clive"), PTV_ERR_INVALID_ARG);
}

static void test_file_resolution(void **state) {
  (void)state;
  ptv_scenario s;
  char err[ERRLEN], text[512];
  write_text("up.csv", "upload_kbps,weight\n100,1\n300,3\n");
  write_text("sub/x.csv", "7,1\n");

  /* relative to base_dir */
  parse_ok(&s, "peers upload=file:up.csv\nrun 1s");
  assert_string_equal(s.upload.name, "up.csv");
  assert_int_equal(s.upload.n, 2);
  assert_near(ptv_dist_mean(&s.upload), 250, 1e-12);
  ptv_scenario_free(&s);
  parse_ok(&s, "peers upload=file:sub/x.csv download=file:./up.csv\nrun 1s");
  assert_string_equal(s.upload.name, "x.csv");
  assert_near(s.upload.v[0].kbps, 7, 0);
  assert_string_equal(s.download.name, "up.csv");
  ptv_scenario_free(&s);

  /* absolute */
  snprintf(text, sizeof text, "peers upload=file:%s/sub/x.csv\nrun 1s", g_dir);
  assert_int_equal(ptv_scenario_parse(&s, text, "/nonexistent", err, sizeof err), 0);
  assert_near(s.upload.v[0].kbps, 7, 0);
  ptv_scenario_free(&s);

  /* relative to the current directory when base_dir lacks it (or is NULL) */
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(g_dir), 0);
  write_text("cwd.csv", "9,1\n");
  int rc1 = ptv_scenario_parse(&s, "peers upload=file:cwd.csv\nrun 1s", "/nonexistent",
                               err, sizeof err);
  double v1 = rc1 == 0 ? s.upload.v[0].kbps : -1;
  ptv_scenario_free(&s);
  int rc2 = ptv_scenario_parse(&s, "peers upload=file:sub/x.csv\nrun 1s", NULL, err,
                               sizeof err);
  double v2 = rc2 == 0 ? s.upload.v[0].kbps : -1;
  ptv_scenario_free(&s);
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(rc1, 0);
  assert_near(v1, 9, 0);
  assert_int_equal(rc2, 0);
  assert_near(v2, 7, 0);

  /* base_dir wins over the data directory for the same basename */
  write_text("hdr.csv", "kbps,w\n42,1\n");
  parse_ok(&s, "peers upload=file:hdr.csv\nrun 1s");
  assert_near(s.upload.v[0].kbps, 42, 0);
  ptv_scenario_free(&s);

#ifdef PTV_SRCDATADIR
  /* fallback: the basename in the data directory */
  parse_ok(&s, "peers upload=file:no/such/dir/upload-clive-trace.csv\nrun 1s");
  assert_string_equal(s.upload.name, "upload-clive-trace.csv");
  assert_int_equal(s.upload.n, 21);
  ptv_scenario_free(&s);
  parse_ok(&s, "peers upload=file:/no/such/dir/upload-sepidar.csv\nrun 1s");
  assert_int_equal(s.upload.n, 10);
  ptv_scenario_free(&s);
#endif

  /* not found, a directory, empty name */
  check_error_at("run 1s\npeers upload=file:nope/missing.csv\n", PTV_ERR_IO, 2,
                 "upload file 'nope/missing.csv' not found", __FILE__, __LINE__);
  check_error_at("run 1s\npeers upload=file:sub\n", PTV_ERR_IO, 2, "not found", __FILE__,
                 __LINE__);
  check_error_at("run 1s\npeers upload=file:sub/\n", PTV_ERR_IO, 2, "not found", __FILE__,
                 __LINE__);
  check_error("run 1s\npeers upload=file:\n", 2, "empty file name");

  /* errors inside the file carry both line numbers */
  write_text("bad.csv", "upload_kbps,weight\n100,1\n200,0\n");
  check_error("seed 1\npeers upload=file:bad.csv\nrun 1s", 2,
              "bad.csv': line 3: weight '0' must be above zero");
  write_text("bad.csv", "# empty\n");
  check_error("peers download=file:bad.csv\nrun 1s", 1,
              "in download file");
  check_error("peers download=file:bad.csv\nrun 1s", 1, "line 2: no rows");
  write_text("bad.csv", "0,1\n");
  check_error("peers download=file:bad.csv\nrun 1s", 1,
              "download distribution 'bad.csv' contains a zero rate");
  write_file("bad.csv", "1,1\n\0\n", 6);
  check_error("peers upload=file:bad.csv\nrun 1s", 1, "contains a NUL byte");
}

static void test_load(void **state) {
  (void)state;
  ptv_scenario s;
  char err[ERRLEN], path[256];

  /* file: paths are relative to the scenario's directory */
  write_text("sub/x.csv", "11,1\n");
  write_text("sub/s.scn", "peers upload=file:x.csv\nrun 3s\n");
  snprintf(path, sizeof path, "%s/sub/s.scn", g_dir);
  assert_int_equal(ptv_scenario_load(&s, path, err, sizeof err), 0);
  assert_near(s.upload.v[0].kbps, 11, 0);
  assert_near(s.run_s, 3, 0);
  ptv_scenario_free(&s);

  write_text("s.scn", "seed 3\nrun 1s\nloss 3\n");
  snprintf(path, sizeof path, "%s/s.scn", g_dir);
  assert_int_equal(ptv_scenario_load(&s, path, err, sizeof err), PTV_ERR_PARSE);
  assert_string_equal(err, "line 3: missing unit in loss '3', expected a share like 30% "
                           "(no space before the unit)");
  assert_true(is_zeroed(&s));

  write_file("nul.scn", "run 1s\n\nseed 1\0\n", 15);
  snprintf(path, sizeof path, "%s/nul.scn", g_dir);
  assert_int_equal(ptv_scenario_load(&s, path, err, sizeof err), PTV_ERR_PARSE);
  assert_string_equal(err, "line 3: NUL byte in the scenario, expected text");

  snprintf(path, sizeof path, "%s/missing.scn", g_dir);
  assert_int_equal(ptv_scenario_load(&s, path, err, sizeof err), PTV_ERR_IO);
  assert_non_null(strstr(err, "missing.scn"));
  assert_non_null(strstr(err, "No such file"));
  assert_true(is_zeroed(&s));
  /* a directory reads as an error, not as an empty scenario */
  assert_int_equal(ptv_scenario_load(&s, g_dir, err, sizeof err), PTV_ERR_IO);
  assert_non_null(strstr(err, g_dir));
  assert_int_equal(ptv_scenario_load(NULL, path, err, sizeof err), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_scenario_load(&s, NULL, err, sizeof err), PTV_ERR_INVALID_ARG);

  /* an empty file lacks `run` on line 1 */
  write_text("big.scn", "");
  snprintf(path, sizeof path, "%s/big.scn", g_dir);
  assert_int_equal(ptv_scenario_load(&s, path, err, sizeof err), PTV_ERR_PARSE);
  assert_string_equal(err, "line 1: missing 'run' statement, expected a line like 'run 600s'");
}

/* ---- sampling -------------------------------------------------------------- */

static void test_sample(void **state) {
  (void)state;
  ptv_dist_entry e[3] = {{10, 1}, {20, 2}, {30, 7}};
  ptv_dist d = {e, 3, "t"};
  assert_near(ptv_dist_sample(&d, 0.0), 10, 0);
  assert_near(ptv_dist_sample(&d, 0.0999), 10, 0);
  assert_near(ptv_dist_sample(&d, 0.1001), 20, 0);
  assert_near(ptv_dist_sample(&d, 0.2999), 20, 0);
  assert_near(ptv_dist_sample(&d, 0.3001), 30, 0);
  assert_near(ptv_dist_sample(&d, 0.999999999), 30, 0);
  assert_near(ptv_dist_sample(&d, nextafter(1.0, 0.0)), 30, 0);
  /* out of range u is clamped */
  assert_near(ptv_dist_sample(&d, -1.0), 10, 0);
  assert_near(ptv_dist_sample(&d, 1.0), 30, 0);
  assert_near(ptv_dist_sample(&d, 5.0), 30, 0);
  assert_near(ptv_dist_sample(&d, NAN), 10, 0);

  /* a deterministic sweep of u reproduces the weights */
  int count[3] = {0, 0, 0};
  const int n = 100000;
  for (int i = 0; i < n; i++) {
    double x = ptv_dist_sample(&d, (i + 0.5) / n);
    count[(int)(x / 10) - 1]++;
  }
  assert_int_equal(count[0], 10000);
  assert_int_equal(count[1], 20000);
  assert_int_equal(count[2], 70000);

  /* the clive table: the sweep matches each weight share within one step */
  ptv_dist c;
  assert_int_equal(ptv_dist_builtin(&c, "clive"), 0);
  double total = 0;
  for (size_t k = 0; k < c.n; k++)
    total += c.v[k].weight;
  int cc[21] = {0};
  for (int i = 0; i < n; i++)
    cc[(int)(ptv_dist_sample(&c, (i + 0.5) / n) / 100)]++;
  for (size_t k = 0; k < c.n; k++)
    assert_near(cc[k], n * c.v[k].weight / total, 1.5);
  ptv_dist_free(&c);

  /* entries without weight are never drawn, even at u = 0 */
  ptv_dist_entry z[3] = {{1, 0}, {2, 1}, {3, 0}};
  ptv_dist dz = {z, 3, "z"};
  assert_near(ptv_dist_sample(&dz, 0.0), 2, 0);
  assert_near(ptv_dist_sample(&dz, 0.99), 2, 0);

  /* a constant, and nothing */
  ptv_dist_entry one = {42, 1};
  ptv_dist d1 = {&one, 1, "const"};
  assert_near(ptv_dist_sample(&d1, 0.0), 42, 0);
  assert_near(ptv_dist_sample(&d1, 0.7), 42, 0);
  ptv_dist empty = {NULL, 0, ""};
  assert_near(ptv_dist_sample(&empty, 0.5), 0, 0);
  assert_near(ptv_dist_sample(NULL, 0.5), 0, 0);
}

static void test_mean(void **state) {
  (void)state;
  ptv_dist_entry e[2] = {{100, 1}, {300, 3}};
  ptv_dist d = {e, 2, "t"};
  assert_near(ptv_dist_mean(&d), 250, 1e-12);
  ptv_dist_entry e2[3] = {{100, 0.5}, {200, 0.5}, {1e6, 0}};
  ptv_dist d2 = {e2, 3, "t"};
  assert_near(ptv_dist_mean(&d2), 150, 1e-12);
  ptv_dist_entry one = {42, 7};
  ptv_dist d1 = {&one, 1, "const"};
  assert_near(ptv_dist_mean(&d1), 42, 0);
  ptv_dist empty = {NULL, 0, ""};
  assert_near(ptv_dist_mean(&empty), 0, 0);
  assert_near(ptv_dist_mean(NULL), 0, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_example_text),
      cmocka_unit_test(test_example_file),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_seed),
      cmocka_unit_test(test_stream),
      cmocka_unit_test(test_rate_units),
      cmocka_unit_test(test_duration_units),
      cmocka_unit_test(test_peers),
      cmocka_unit_test(test_latency_loss),
      cmocka_unit_test(test_nat_strategy),
      cmocka_unit_test(test_events),
      cmocka_unit_test(test_lexical),
      cmocka_unit_test(test_error_format),
      cmocka_unit_test(test_hostile_input),
      cmocka_unit_test(test_free_safe),
      cmocka_unit_test(test_csv_parse),
      cmocka_unit_test(test_csv_data_files),
      cmocka_unit_test(test_builtin),
      cmocka_unit_test(test_file_resolution),
      cmocka_unit_test(test_load),
      cmocka_unit_test(test_sample),
      cmocka_unit_test(test_mean),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
