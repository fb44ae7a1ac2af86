/* ptv_sim_scenario.c -- parser of the simulator's scenario language.
 *
 * The grammar is documented for users in docs/SCENARIOS.md; keep the two in
 * step. Parsing works on a private copy of the text, cut into lines and
 * whitespace-separated words in place, and fills a private ptv_scenario that
 * is handed to the caller only when the whole text parsed, so a failure never
 * leaves half-built state behind. */
#define _POSIX_C_SOURCE 200809L

#include "ptv_sim_scenario.h"

#include "ptv_err.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Words beyond this on one line cannot be a valid statement. */
#define PTV_SCN_MAX_WORDS 16
/* Scenario and CSV files are small; a bound keeps a wrong path (a video, a
 * device) from eating memory. */
#define PTV_SCN_MAX_FILE (16u * 1024u * 1024u)
/* Upper bounds keep every value convertible to microseconds / bits per second
 * in a uint64_t downstream. */
#define PTV_SCN_MAX_KBPS 1e9 /* 1000 Gbps */
#define PTV_SCN_MAX_SECS 1e9 /* about 31 years */
/* Longest numeral accepted (digits and the decimal point). */
#define PTV_SCN_MAX_NUMERAL 63
/* Room for one quoted word in an error message. */
#define PTV_QLEN 48

#if defined(__GNUC__)
#define PTV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PTV_PRINTF(a, b)
#endif

/* ---- built-in distributions ------------------------------------------- */

/* data/upload-sepidar.csv */
static const ptv_dist_entry ptv_dist_sepidar[] = {
    {128, 1}, {256, 1}, {384, 1}, {512, 1},  {640, 1},
    {768, 1}, {896, 1}, {1024, 1}, {1152, 1}, {1280, 1},
};

/* data/upload-clive-trace.csv */
static const ptv_dist_entry ptv_dist_clive[] = {
    {0, 55.77},    {100, 21.15},  {200, 9.50},   {300, 0.346},  {400, 0.346},
    {500, 0.346},  {600, 0.346},  {700, 0.346},  {800, 0.346},  {900, 0.346},
    {1000, 0.346}, {1100, 0.346}, {1200, 0.346}, {1300, 0.346}, {1400, 0.346},
    {1500, 0.346}, {1600, 0.346}, {1700, 0.346}, {1800, 0.346}, {1900, 0.346},
    {2000, 7.69},
};

static void ptv_copy_name(char *dst, size_t n, const char *src) {
  size_t l = strlen(src);
  if (l >= n)
    l = n - 1;
  memcpy(dst, src, l);
  dst[l] = '\0';
}

static int ptv_dist_set(ptv_dist *d, const ptv_dist_entry *v, size_t n,
                        const char *name) {
  ptv_dist_entry *c = malloc(n * sizeof *c);
  if (!c)
    return PTV_ERR_NOMEM;
  memcpy(c, v, n * sizeof *c);
  d->v = c;
  d->n = n;
  ptv_copy_name(d->name, sizeof d->name, name);
  return 0;
}

static int ptv_dist_const(ptv_dist *d, double kbps) {
  ptv_dist_entry e = {kbps, 1.0};
  return ptv_dist_set(d, &e, 1, "const");
}

int ptv_dist_builtin(ptv_dist *d, const char *name) {
  if (!d)
    return PTV_ERR_INVALID_ARG;
  memset(d, 0, sizeof *d);
  if (!name)
    return PTV_ERR_NOT_FOUND;
  if (strcmp(name, "sepidar") == 0)
    return ptv_dist_set(d, ptv_dist_sepidar,
                        sizeof ptv_dist_sepidar / sizeof ptv_dist_sepidar[0], name);
  if (strcmp(name, "clive") == 0)
    return ptv_dist_set(d, ptv_dist_clive,
                        sizeof ptv_dist_clive / sizeof ptv_dist_clive[0], name);
  return PTV_ERR_NOT_FOUND;
}

void ptv_dist_free(ptv_dist *d) {
  if (!d)
    return;
  free(d->v);
  memset(d, 0, sizeof *d);
}

double ptv_dist_sample(const ptv_dist *d, double u) {
  if (!d || !d->v || d->n == 0)
    return 0.0;
  double total = 0.0;
  for (size_t i = 0; i < d->n; i++)
    if (d->v[i].weight > 0)
      total += d->v[i].weight;
  double target = u * total;
  if (!(target > 0)) /* u <= 0: the first entry that can be drawn at all */
    target = 0.0;
  double cum = 0.0;
  for (size_t i = 0; i < d->n; i++) {
    if (d->v[i].weight > 0)
      cum += d->v[i].weight;
    if (target < cum)
      return d->v[i].kbps;
  }
  /* u >= 1, NaN, or rounding in the running sum. */
  return d->v[d->n - 1].kbps;
}

double ptv_dist_mean(const ptv_dist *d) {
  if (!d || !d->v)
    return 0.0;
  double sw = 0.0, swx = 0.0;
  for (size_t i = 0; i < d->n; i++) {
    if (d->v[i].weight > 0) {
      sw += d->v[i].weight;
      swx += d->v[i].weight * d->v[i].kbps;
    }
  }
  return sw > 0 ? swx / sw : 0.0;
}

/* ---- error messages ------------------------------------------------------ */

typedef struct {
  int line;             /* current line, 1-based */
  char *err;            /* may be NULL */
  size_t errlen;
  const char *base_dir; /* for file: paths, may be NULL */
  const char *usage;    /* the current statement's synopsis */
} ptv_pctx;

static int ptv_fail(ptv_pctx *c, int rc, const char *fmt, ...) PTV_PRINTF(3, 4);

/* Writes "line N: <fmt>" and returns rc, so callers can `return ptv_fail()`. */
static int ptv_fail(ptv_pctx *c, int rc, const char *fmt, ...) {
  if (c->err && c->errlen) {
    int k = snprintf(c->err, c->errlen, "line %d: ", c->line);
    if (k >= 0 && (size_t)k < c->errlen) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
      va_end(ap);
    }
  }
  return rc;
}

/* Copies user text into buf for a message: bounded, one line, no control
 * characters, never cut inside a UTF-8 sequence. */
static const char *ptv_q(char *buf, size_t n, const char *s) {
  size_t len = strlen(s), cap = len;
  int cut = len > n - 1;
  if (cut) {
    cap = n - 4; /* room for "..." */
    while (cap > 0 && ((unsigned char)s[cap] & 0xC0) == 0x80)
      cap--;
  }
  for (size_t i = 0; i < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    buf[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
  }
  if (cut) {
    memcpy(buf + cap, "...", 4);
  } else {
    buf[cap] = '\0';
  }
  return buf;
}
#define PTV_Q(buf, s) ptv_q(buf, sizeof buf, s)

/* ---- numbers and quantities --------------------------------------------- */

enum { PTV_NUM_OK = 0, PTV_NUM_NEG, PTV_NUM_BAD, PTV_NUM_LONG };

/* Reads a plain decimal numeral ("5", "0.5", ".5", "5.") from the start of s;
 * *rest points after it. No sign, exponent, hex, inf or nan: scenario values
 * are written by people and those forms are more likely typos. */
static int ptv_scan_num(const char *s, double *v, const char **rest) {
  const char *p = s;
  size_t digits = 0;
  if (*p == '-')
    return PTV_NUM_NEG;
  while (*p >= '0' && *p <= '9') {
    p++;
    digits++;
  }
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') {
      p++;
      digits++;
    }
  }
  if (digits == 0)
    return PTV_NUM_BAD;
  size_t len = (size_t)(p - s);
  if (len > PTV_SCN_MAX_NUMERAL)
    return PTV_NUM_LONG;
  char tmp[PTV_SCN_MAX_NUMERAL + 1];
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  *v = strtod(tmp, NULL);
  *rest = p;
  return PTV_NUM_OK;
}

typedef struct {
  const char *name;
  double mul, div; /* value = number * mul / div (division keeps 0.5% exact) */
} ptv_unit;

typedef struct {
  const ptv_unit *units;
  size_t nunits;
  const char *expect;   /* "a rate like 500kbps or 2Mbps" */
  double max;           /* in the result unit */
  const char *max_text; /* max as written */
} ptv_qkind;

static const ptv_unit ptv_rate_units[] = {
    {"bps", 1, 1000}, {"kbps", 1, 1}, {"Mbps", 1e3, 1}, {"Gbps", 1e6, 1}};
static const ptv_unit ptv_dur_units[] = {
    {"us", 1, 1e6}, {"ms", 1, 1e3}, {"s", 1, 1}, {"min", 60, 1}, {"h", 3600, 1}};
static const ptv_unit ptv_pct_units[] = {{"%", 1, 100}};
static const ptv_unit ptv_churn_units[] = {{"%/min", 1, 100}};

#define PTV_NU(a) (sizeof a / sizeof a[0])
static const ptv_qkind ptv_k_rate = {ptv_rate_units, PTV_NU(ptv_rate_units),
                                     "a rate like 500kbps or 2Mbps",
                                     PTV_SCN_MAX_KBPS, "1000Gbps"};
static const ptv_qkind ptv_k_dur = {ptv_dur_units, PTV_NU(ptv_dur_units),
                                    "a duration like 250ms or 2s",
                                    PTV_SCN_MAX_SECS, "1000000000s"};
static const ptv_qkind ptv_k_time = {ptv_dur_units, PTV_NU(ptv_dur_units),
                                     "a time like 120s or 2min",
                                     PTV_SCN_MAX_SECS, "1000000000s"};
static const ptv_qkind ptv_k_pct = {ptv_pct_units, PTV_NU(ptv_pct_units),
                                    "a share like 30%", 1.0, "100%"};
static const ptv_qkind ptv_k_churn = {ptv_churn_units, PTV_NU(ptv_churn_units),
                                      "a churn rate like 10%/min", 1.0,
                                      "100%/min"};

/* Parses "<number><unit>" of kind k into *out (kbps, seconds, or a fraction
 * for shares). `what` names the value in messages. */
static int ptv_get_q(ptv_pctx *c, const char *tok, const ptv_qkind *k,
                     const char *what, int positive, double *out) {
  char q[PTV_QLEN], qu[PTV_QLEN];
  double v = 0, r = 0;
  const char *unit = NULL;
  switch (ptv_scan_num(tok, &v, &unit)) {
  case PTV_NUM_NEG:
    return ptv_fail(c, PTV_ERR_PARSE, "negative %s '%s', expected %s", what,
                    PTV_Q(q, tok), k->expect);
  case PTV_NUM_BAD:
    return ptv_fail(c, PTV_ERR_PARSE, "%s '%s' is not a number, expected %s",
                    what, PTV_Q(q, tok), k->expect);
  case PTV_NUM_LONG:
    return ptv_fail(c, PTV_ERR_PARSE, "%s '%s' has too many digits, expected %s",
                    what, PTV_Q(q, tok), k->expect);
  default:
    break;
  }
  if (*unit == '\0')
    return ptv_fail(c, PTV_ERR_PARSE,
                    "missing unit in %s '%s', expected %s (no space before the unit)",
                    what, PTV_Q(q, tok), k->expect);
  size_t i;
  for (i = 0; i < k->nunits; i++) {
    if (strcmp(unit, k->units[i].name) == 0) {
      r = v * k->units[i].mul / k->units[i].div;
      break;
    }
  }
  if (i == k->nunits)
    return ptv_fail(c, PTV_ERR_PARSE, "unknown unit '%s' in '%s', expected %s",
                    PTV_Q(qu, unit), PTV_Q(q, tok), k->expect);
  if (positive && !(r > 0))
    return ptv_fail(c, PTV_ERR_PARSE, "%s '%s' must be above zero, expected %s",
                    what, PTV_Q(q, tok), k->expect);
  if (!(r <= k->max))
    return ptv_fail(c, PTV_ERR_PARSE, "%s '%s' is too large, expected at most %s",
                    what, PTV_Q(q, tok), k->max_text);
  *out = r;
  return 0;
}

/* Parses a whole number in [lo, hi]. */
static int ptv_get_uint(ptv_pctx *c, const char *tok, const char *what,
                        uint64_t lo, uint64_t hi, uint64_t *out) {
  char q[PTV_QLEN];
  const char *p = tok;
  uint64_t v = 0;
  int big = *p == '\0';
  if (*p == '-')
    return ptv_fail(c, PTV_ERR_PARSE,
                    "negative %s '%s', expected a whole number from %" PRIu64
                    " to %" PRIu64,
                    what, PTV_Q(q, tok), lo, hi);
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return ptv_fail(c, PTV_ERR_PARSE,
                      "%s '%s' is not a whole number, expected a whole number "
                      "from %" PRIu64 " to %" PRIu64,
                      what, PTV_Q(q, tok), lo, hi);
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      big = 1; /* keep scanning so "99999999999999999999x" says "not a number" */
    else
      v = v * 10 + d;
  }
  if (big || v < lo || v > hi)
    return ptv_fail(c, PTV_ERR_PARSE,
                    "%s '%s' is out of range, expected a whole number from %" PRIu64
                    " to %" PRIu64,
                    what, PTV_Q(q, tok), lo, hi);
  *out = v;
  return 0;
}

/* ---- files ---------------------------------------------------------------- */

/* Reads a whole file. Returns 0, PTV_ERR_IO (errno set), PTV_ERR_NOMEM, or
 * PTV_ERR_FULL when it exceeds PTV_SCN_MAX_FILE. *len excludes the added NUL. */
static int ptv_read_file(const char *path, char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return PTV_ERR_IO;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  if (!buf) {
    fclose(f);
    return PTV_ERR_NOMEM;
  }
  for (;;) {
    if (n == cap) {
      if (cap >= PTV_SCN_MAX_FILE) {
        free(buf);
        fclose(f);
        return PTV_ERR_FULL;
      }
      char *nb = realloc(buf, cap * 2 + 1);
      if (!nb) {
        free(buf);
        fclose(f);
        return PTV_ERR_NOMEM;
      }
      buf = nb;
      cap *= 2;
    }
    size_t k = fread(buf + n, 1, cap - n, f);
    n += k;
    if (k == 0)
      break;
  }
  int bad = ferror(f);
  int e = errno;
  fclose(f);
  if (bad) {
    free(buf);
    errno = e ? e : EIO;
    return PTV_ERR_IO;
  }
  if (n > PTV_SCN_MAX_FILE) {
    free(buf);
    return PTV_ERR_FULL;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

static char *ptv_path_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p)
    return NULL;
  memcpy(p, dir, a);
  size_t k = a;
  if (a > 0 && dir[a - 1] != '/')
    p[k++] = '/';
  memcpy(p + k, name, b + 1);
  return p;
}

static int ptv_is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Tries one candidate: takes ownership of cand; 1 = found (*out = cand),
 * 0 = not there, <0 = out of memory. */
static int ptv_try_path(char *cand, char **out) {
  if (!cand)
    return PTV_ERR_NOMEM;
  if (ptv_is_file(cand)) {
    *out = cand;
    return 1;
  }
  free(cand);
  return 0;
}

/* Resolves a `file:` path (see docs/SCENARIOS.md, "Distribution files"):
 * absolute as is, else base_dir/PATH, else PATH from the current directory;
 * if none exists, the basename in the source and installed data directories,
 * so scenarios written against a checkout layout still run from a tarball.
 * Returns 0 with a malloc'd *out, PTV_ERR_NOT_FOUND or PTV_ERR_NOMEM. */
static int ptv_resolve(const char *path, const char *base_dir, char **out) {
  int r;
  *out = NULL;
  if (path[0] == '/') {
    if ((r = ptv_try_path(strdup(path), out)) != 0)
      return r < 0 ? r : 0;
  } else {
    if (base_dir && *base_dir &&
        (r = ptv_try_path(ptv_path_join(base_dir, path), out)) != 0)
      return r < 0 ? r : 0;
    if ((r = ptv_try_path(strdup(path), out)) != 0)
      return r < 0 ? r : 0;
  }
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (*base == '\0')
    return PTV_ERR_NOT_FOUND;
#ifdef PTV_SRCDATADIR
  if ((r = ptv_try_path(ptv_path_join(PTV_SRCDATADIR, base), out)) != 0)
    return r < 0 ? r : 0;
#endif
#ifdef PTV_DATADIR
  if ((r = ptv_try_path(ptv_path_join(PTV_DATADIR, base), out)) != 0)
    return r < 0 ? r : 0;
#endif
  return PTV_ERR_NOT_FOUND;
}

/* ---- CSV distributions ------------------------------------------------------- */

static char *ptv_trim(char *s) {
  while (*s == ' ' || *s == '\t' || *s == '\r')
    s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = '\0';
  return s;
}

/* Parses one CSV field as a plain number (kbps or weight, no unit). */
static int ptv_csv_num(ptv_pctx *c, const char *tok, const char *what,
                       int positive, double *out) {
  char q[PTV_QLEN];
  const char *rest = NULL;
  double v = 0;
  const char *exp = positive ? "a number above zero" : "a number of kbps, 0 or more";
  switch (ptv_scan_num(tok, &v, &rest)) {
  case PTV_NUM_NEG:
    return ptv_fail(c, PTV_ERR_PARSE, "negative %s '%s', expected %s", what,
                    PTV_Q(q, tok), exp);
  case PTV_NUM_LONG:
    return ptv_fail(c, PTV_ERR_PARSE, "%s '%s' has too many digits, expected %s",
                    what, PTV_Q(q, tok), exp);
  case PTV_NUM_BAD:
    return ptv_fail(c, PTV_ERR_PARSE,
                    "%s '%s' is not a number, expected %s (only the first line "
                    "may be a header)",
                    what, PTV_Q(q, tok), exp);
  default:
    break;
  }
  if (*rest != '\0')
    return ptv_fail(c, PTV_ERR_PARSE,
                    "%s '%s' is not a plain number, expected %s without a unit",
                    what, PTV_Q(q, tok), exp);
  if (positive && !(v > 0))
    return ptv_fail(c, PTV_ERR_PARSE, "%s '%s' must be above zero, expected %s",
                    what, PTV_Q(q, tok), exp);
  if (!positive && !(v <= PTV_SCN_MAX_KBPS))
    return ptv_fail(c, PTV_ERR_PARSE, "%s '%s' is too large, expected at most 1000000000",
                    what, PTV_Q(q, tok));
  *out = v;
  return 0;
}

static int ptv_csv_numeric_start(const char *s) {
  return (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '+';
}

int ptv_dist_parse_csv(ptv_dist *d, const char *text, char *err, size_t errlen) {
  ptv_pctx c = {0, err, errlen, NULL, NULL};
  if (err && errlen)
    err[0] = '\0';
  if (!d)
    return PTV_ERR_INVALID_ARG;
  memset(d, 0, sizeof *d);
  if (!text)
    return PTV_ERR_INVALID_ARG;
  char *buf = strdup(text);
  if (!buf)
    return PTV_ERR_NOMEM;
  ptv_dist_entry *v = NULL;
  size_t n = 0, cap = 0;
  int content = 0, rc = 0, last_empty = 1;
  char *p = buf;
  for (;;) {
    c.line++;
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    last_empty = (*p == '\0');
    char *hash = strchr(p, '#');
    if (hash)
      *hash = '\0';
    char *l = ptv_trim(p);
    if (*l != '\0' && !(++content == 1 && !ptv_csv_numeric_start(l))) {
      char q[PTV_QLEN];
      char *comma = strchr(l, ',');
      double kbps = 0, w = 0;
      if (!comma) {
        rc = ptv_fail(&c, PTV_ERR_PARSE, "row '%s' has no comma, expected upload_kbps,weight",
                      PTV_Q(q, l));
        break;
      }
      if (strchr(comma + 1, ',')) {
        rc = ptv_fail(&c, PTV_ERR_PARSE,
                      "row '%s' has more than two columns, expected upload_kbps,weight",
                      PTV_Q(q, l));
        break;
      }
      *comma = '\0';
      if ((rc = ptv_csv_num(&c, ptv_trim(l), "upload", 0, &kbps)) != 0 ||
          (rc = ptv_csv_num(&c, ptv_trim(comma + 1), "weight", 1, &w)) != 0)
        break;
      if (n == cap) {
        size_t nc = cap ? cap * 2 : 16;
        ptv_dist_entry *nv = realloc(v, nc * sizeof *nv);
        if (!nv) {
          rc = PTV_ERR_NOMEM;
          ptv_fail(&c, rc, "out of memory, expected a smaller distribution");
          break;
        }
        v = nv;
        cap = nc;
      }
      v[n].kbps = kbps;
      v[n].weight = w;
      n++;
    }
    if (!nl)
      break;
    p = nl + 1;
  }
  free(buf);
  if (rc == 0 && n == 0) {
    if (!last_empty)
      c.line++;
    rc = ptv_fail(&c, PTV_ERR_PARSE,
                  "no rows in the distribution, expected at least one upload_kbps,weight row");
  }
  if (rc != 0) {
    free(v);
    return rc;
  }
  d->v = v;
  d->n = n;
  ptv_copy_name(d->name, sizeof d->name, "csv");
  return 0;
}

/* ---- statements ---------------------------------------------------------- */

static int ptv_arity(ptv_pctx *c, char **t, int n, int lo, int hi) {
  char q[PTV_QLEN];
  if (n < lo)
    return ptv_fail(c, PTV_ERR_PARSE, "incomplete '%s' statement, expected '%s'",
                    t[0], c->usage);
  if (n > hi)
    return ptv_fail(c, PTV_ERR_PARSE,
                    "unexpected '%s' at the end of the '%s' statement, expected '%s'",
                    PTV_Q(q, t[hi]), t[0], c->usage);
  return 0;
}

/* Checks a keyword inside a statement ("over", "for", "to", "churn"). */
static int ptv_word(ptv_pctx *c, const char *tok, const char *want) {
  char q[PTV_QLEN];
  if (strcmp(tok, want) == 0)
    return 0;
  return ptv_fail(c, PTV_ERR_PARSE, "unexpected '%s' where '%s' belongs, expected '%s'",
                  PTV_Q(q, tok), want, c->usage);
}

/* Splits "key=value" in place. */
static int ptv_opt(ptv_pctx *c, char *tok, char **key, char **val) {
  char q[PTV_QLEN];
  char *eq = strchr(tok, '=');
  if (!eq || eq == tok)
    return ptv_fail(c, PTV_ERR_PARSE, "'%s' is not a key=value option, expected '%s'",
                    PTV_Q(q, tok), c->usage);
  *eq = '\0';
  *key = tok;
  *val = eq + 1;
  if (**val == '\0')
    return ptv_fail(c, PTV_ERR_PARSE, "empty value for '%s', expected '%s'",
                    PTV_Q(q, tok), c->usage);
  return 0;
}

static int ptv_unknown_opt(ptv_pctx *c, const char *stmt, const char *key,
                           const char *known) {
  char q[PTV_QLEN];
  return ptv_fail(c, PTV_ERR_PARSE, "unknown option '%s' for '%s', expected %s",
                  PTV_Q(q, key), stmt, known);
}

static int ptv_twice(ptv_pctx *c, const char *key) {
  return ptv_fail(c, PTV_ERR_PARSE, "option '%s' given twice, expected '%s'", key,
                  c->usage);
}

static int ptv_add_event(ptv_pctx *c, ptv_scenario *s, ptv_scn_event_kind kind,
                         double at_s, double dur_s, uint32_t count, double frac) {
  /* No capacity field: the array holds max(8, next power of two) slots, so
   * it grows exactly when the count reaches 8, 16, 32, ... */
  size_t n = s->nevents;
  if (n == 0 || (n >= 8 && (n & (n - 1)) == 0)) {
    size_t nc = n ? n * 2 : 8;
    ptv_scn_event *ne = realloc(s->events, nc * sizeof *ne);
    if (!ne)
      return ptv_fail(c, PTV_ERR_NOMEM, "out of memory, expected fewer events");
    s->events = ne;
  }
  ptv_scn_event *e = &s->events[s->nevents++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->at_s = at_s;
  e->dur_s = dur_s;
  e->count = count;
  e->frac = frac;
  e->line = c->line;
  return 0;
}

static int ptv_st_seed(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  int rc = ptv_arity(c, t, n, 2, 2);
  return rc ? rc : ptv_get_uint(c, t[1], "seed", 0, UINT64_MAX, &s->seed);
}

static int ptv_st_stream(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  int rc = ptv_arity(c, t, n, 1, 3), have_rate = 0, have_chunk = 0;
  for (int i = 1; rc == 0 && i < n; i++) {
    char *k = NULL, *v = NULL;
    if ((rc = ptv_opt(c, t[i], &k, &v)) != 0)
      break;
    if (strcmp(k, "rate") == 0) {
      rc = have_rate++ ? ptv_twice(c, k)
                       : ptv_get_q(c, v, &ptv_k_rate, "stream rate", 1, &s->stream_kbps);
    } else if (strcmp(k, "chunk") == 0) {
      rc = have_chunk++ ? ptv_twice(c, k)
                        : ptv_get_q(c, v, &ptv_k_dur, "chunk duration", 1, &s->chunk_s);
    } else {
      rc = ptv_unknown_opt(c, "stream", k, "rate= or chunk=");
    }
  }
  return rc;
}

static int ptv_st_source(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  char *k = NULL, *v = NULL;
  int rc = ptv_arity(c, t, n, 2, 2);
  if (rc == 0)
    rc = ptv_opt(c, t[1], &k, &v);
  if (rc == 0)
    rc = strcmp(k, "upload") == 0
             ? ptv_get_q(c, v, &ptv_k_rate, "source upload", 1, &s->source_kbps)
             : ptv_unknown_opt(c, "source", k, "upload=");
  return rc;
}

static int ptv_st_buffer(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  int rc = ptv_arity(c, t, n, 2, 2);
  return rc ? rc : ptv_get_q(c, t[1], &ptv_k_dur, "buffer", 1, &s->buffer_s);
}

/* Loads DIST (a rate, a built-in name, or file:PATH) into *d, replacing it. */
static int ptv_get_dist(ptv_pctx *c, ptv_dist *d, const char *what, const char *val,
                        int positive) {
  char q[PTV_QLEN], qp[256];
  ptv_dist nd;
  int rc;
  memset(&nd, 0, sizeof nd);
  if (strncmp(val, "file:", 5) == 0) {
    const char *path = val + 5;
    char *full = NULL, *text = NULL;
    size_t len = 0;
    if (*path == '\0')
      return ptv_fail(c, PTV_ERR_PARSE, "empty file name in %s=file:, expected %s=file:PATH",
                      what, what);
    rc = ptv_resolve(path, c->base_dir, &full);
    if (rc == PTV_ERR_NOMEM)
      return ptv_fail(c, rc, "out of memory, expected to open '%s'", PTV_Q(qp, path));
    if (rc != 0)
      return ptv_fail(c, PTV_ERR_IO,
                      "%s file '%s' not found (looked next to the scenario, in the "
                      "current directory and in the data directory), expected an "
                      "existing upload_kbps,weight CSV file",
                      what, PTV_Q(qp, path));
    rc = ptv_read_file(full, &text, &len);
    if (rc != 0) {
      const char *why = rc == PTV_ERR_FULL   ? "it is larger than 16 MiB"
                        : rc == PTV_ERR_NOMEM ? "out of memory"
                                              : strerror(errno);
      ptv_fail(c, rc == PTV_ERR_NOMEM ? rc : PTV_ERR_IO,
               "cannot read %s file '%s' (%s), expected a readable CSV file", what,
               PTV_Q(qp, full), why);
      free(full);
      return rc == PTV_ERR_NOMEM ? rc : PTV_ERR_IO;
    }
    if (memchr(text, '\0', len)) {
      ptv_fail(c, PTV_ERR_PARSE, "%s file '%s' contains a NUL byte, expected a text file",
               what, PTV_Q(qp, full));
      free(full);
      free(text);
      return PTV_ERR_PARSE;
    }
    char inner[256];
    rc = ptv_dist_parse_csv(&nd, text, inner, sizeof inner);
    free(text);
    if (rc != 0) {
      ptv_fail(c, rc, "in %s file '%s': %s", what, PTV_Q(qp, full), inner);
      free(full);
      return rc;
    }
    free(full);
    const char *base = strrchr(path, '/');
    ptv_copy_name(nd.name, sizeof nd.name, base ? base + 1 : path);
  } else if (strcmp(val, "sepidar") == 0 || strcmp(val, "clive") == 0) {
    if ((rc = ptv_dist_builtin(&nd, val)) != 0)
      return ptv_fail(c, rc, "out of memory, expected to load '%s'", val);
  } else if (!ptv_csv_numeric_start(val)) {
    return ptv_fail(c, PTV_ERR_PARSE,
                    "unknown %s distribution '%s', expected a rate like 1Mbps, "
                    "sepidar, clive or file:PATH",
                    what, PTV_Q(q, val));
  } else {
    double kbps = 0;
    if ((rc = ptv_get_q(c, val, &ptv_k_rate, what, positive, &kbps)) != 0)
      return rc;
    if ((rc = ptv_dist_const(&nd, kbps)) != 0)
      return ptv_fail(c, rc, "out of memory, expected to store '%s'", PTV_Q(q, val));
  }
  if (positive) {
    for (size_t i = 0; i < nd.n; i++) {
      if (!(nd.v[i].kbps > 0)) {
        ptv_fail(c, PTV_ERR_PARSE,
                 "%s distribution '%s' contains a zero rate, expected rates above zero",
                 what, PTV_Q(q, nd.name));
        ptv_dist_free(&nd);
        return PTV_ERR_PARSE;
      }
    }
  }
  ptv_dist_free(d);
  *d = nd;
  return 0;
}

/* nat=open:P%,cone:P%,symmetric:P% -> fractions summing to 1. */
static int ptv_get_nat(ptv_pctx *c, double share[3], char *val) {
  static const char *const names[3] = {"open", "cone", "symmetric"};
  char q[PTV_QLEN];
  double sh[3] = {0, 0, 0};
  int seen[3] = {0, 0, 0};
  char *item = val;
  for (;;) {
    char *comma = strchr(item, ',');
    if (comma)
      *comma = '\0';
    char *colon = strchr(item, ':');
    if (*item == '\0')
      return ptv_fail(c, PTV_ERR_PARSE, "empty item in nat=, expected '%s'", c->usage);
    if (!colon)
      return ptv_fail(c, PTV_ERR_PARSE,
                      "NAT item '%s' has no ':', expected CLASS:P%% like open:30%%",
                      PTV_Q(q, item));
    *colon = '\0';
    int k;
    for (k = 0; k < 3 && strcmp(item, names[k]) != 0; k++)
      ;
    if (k == 3)
      return ptv_fail(c, PTV_ERR_PARSE,
                      "unknown NAT class '%s', expected open, cone or symmetric",
                      PTV_Q(q, item));
    if (seen[k]++)
      return ptv_fail(c, PTV_ERR_PARSE,
                      "NAT class '%s' given twice, expected each class at most once",
                      names[k]);
    int rc = ptv_get_q(c, colon + 1, &ptv_k_pct, "NAT share", 0, &sh[k]);
    if (rc)
      return rc;
    if (!comma)
      break;
    item = comma + 1;
  }
  double sum = sh[0] + sh[1] + sh[2];
  /* 0.01 percentage points, plus slack so 33.33% x 3 passes despite rounding */
  if (fabs(sum - 1.0) > 0.0001 + 1e-9)
    return ptv_fail(c, PTV_ERR_PARSE,
                    "NAT shares add up to %.4g%%, expected a total of 100%%",
                    sum * 100.0);
  for (int k = 0; k < 3; k++)
    share[k] = sh[k] / sum;
  return 0;
}

static int ptv_st_peers(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  int rc = ptv_arity(c, t, n, 1, 4), seen_up = 0, seen_down = 0, seen_nat = 0;
  for (int i = 1; rc == 0 && i < n; i++) {
    char *k = NULL, *v = NULL;
    if ((rc = ptv_opt(c, t[i], &k, &v)) != 0)
      break;
    if (strcmp(k, "upload") == 0)
      rc = seen_up++ ? ptv_twice(c, k) : ptv_get_dist(c, &s->upload, "upload", v, 0);
    else if (strcmp(k, "download") == 0)
      rc = seen_down++ ? ptv_twice(c, k)
                       : ptv_get_dist(c, &s->download, "download", v, 1);
    else if (strcmp(k, "nat") == 0)
      rc = seen_nat++ ? ptv_twice(c, k) : ptv_get_nat(c, s->nat_share, v);
    else
      rc = ptv_unknown_opt(c, "peers", k, "upload=, download= or nat=");
  }
  return rc;
}

static int ptv_st_latency(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  char q[PTV_QLEN];
  int rc = ptv_arity(c, t, n, 2, 4);
  if (rc)
    return rc;
  if (strcmp(t[1], "fixed") == 0) {
    double d = 0;
    if ((rc = ptv_arity(c, t, n, 3, 3)) != 0 ||
        (rc = ptv_get_q(c, t[2], &ptv_k_dur, "latency", 0, &d)) != 0)
      return rc;
    s->lat_lo_s = s->lat_hi_s = d;
    return 0;
  }
  if (strcmp(t[1], "uniform") != 0)
    return ptv_fail(c, PTV_ERR_PARSE, "unknown latency model '%s', expected uniform or fixed",
                    PTV_Q(q, t[1]));
  double lo = 0, hi = 0;
  if ((rc = ptv_arity(c, t, n, 4, 4)) != 0 ||
      (rc = ptv_get_q(c, t[2], &ptv_k_dur, "latency", 0, &lo)) != 0 ||
      (rc = ptv_get_q(c, t[3], &ptv_k_dur, "latency", 0, &hi)) != 0)
    return rc;
  if (lo > hi)
    return ptv_fail(c, PTV_ERR_PARSE,
                    "latency range %s..%s is reversed, expected LO no larger than HI",
                    t[2], t[3]);
  s->lat_lo_s = lo;
  s->lat_hi_s = hi;
  return 0;
}

static int ptv_st_loss(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  int rc = ptv_arity(c, t, n, 2, 2);
  return rc ? rc : ptv_get_q(c, t[1], &ptv_k_pct, "loss", 0, &s->loss);
}

static int ptv_st_freeriders(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  char q[PTV_QLEN];
  int rc = ptv_arity(c, t, n, 3, 3);
  if (rc)
    return rc;
  rc = ptv_get_q(c, t[1], &ptv_k_pct, "free-rider share", 0, &s->freerider_share);
  if (rc)
    return rc;
  if (s->freerider_share > 1)
    return ptv_fail(c, PTV_ERR_PARSE, "free-rider share '%s' is above 100%%", PTV_Q(q, t[1]));
  char *end = NULL;
  double f = strncmp(t[2], "claim=", 6) == 0 ? strtod(t[2] + 6, &end) : 0;
  if (!end || end == t[2] + 6 || strcmp(end, "x") != 0 || !(f >= 1 && f <= 1000))
    return ptv_fail(c, PTV_ERR_PARSE, "'%s' is not a claim factor like claim=4x (1 to 1000), expected '%s'",
                    PTV_Q(q, t[2]), c->usage);
  s->freerider_claim = f;
  return 0;
}

static int ptv_st_nat(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  char q[PTV_QLEN];
  int rc = ptv_arity(c, t, n, 3, 3);
  if (rc)
    return rc;
  if (strcmp(t[1], "relay") != 0)
    return ptv_fail(c, PTV_ERR_PARSE, "unknown NAT setting '%s', expected '%s'",
                    PTV_Q(q, t[1]), c->usage);
  if (strcmp(t[2], "on") == 0)
    s->nat_relay = 1;
  else if (strcmp(t[2], "off") == 0)
    s->nat_relay = 0;
  else
    return ptv_fail(c, PTV_ERR_PARSE, "'%s' is not on or off, expected '%s'",
                    PTV_Q(q, t[2]), c->usage);
  return 0;
}

static int ptv_st_strategy(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  char q[PTV_QLEN];
  int rc = ptv_arity(c, t, n, 2, 2);
  if (rc)
    return rc;
  if (strcmp(t[1], "mesh") == 0)
    s->strategy = PTV_STRATEGY_MESH;
  else if (strcmp(t[1], "chandelier") == 0)
    s->strategy = PTV_STRATEGY_CHANDELIER;
  else
    return ptv_fail(c, PTV_ERR_PARSE, "unknown strategy '%s', expected mesh or chandelier",
                    PTV_Q(q, t[1]));
  return 0;
}

/* "N [over DURATION]" at t[i..]; shared by `join` and `at T join`. */
static int ptv_join_tail(ptv_pctx *c, ptv_scenario *s, char **t, int n, int i,
                         double at_s) {
  uint64_t count = 0;
  double dur = 0;
  int rc = ptv_arity(c, t, n, i + 1, i + 3);
  if (rc == 0 && n > i + 1 && (rc = ptv_word(c, t[i + 1], "over")) == 0)
    rc = ptv_arity(c, t, n, i + 3, i + 3);
  if (rc == 0)
    rc = ptv_get_uint(c, t[i], "peer count", 1, UINT32_MAX, &count);
  if (rc == 0 && n == i + 3)
    rc = ptv_get_q(c, t[i + 2], &ptv_k_dur, "join duration", 0, &dur);
  if (rc == 0)
    rc = ptv_add_event(c, s, PTV_SCN_JOIN, at_s, dur, (uint32_t)count, 0);
  return rc;
}

static int ptv_st_join(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  return ptv_join_tail(c, s, t, n, 1, 0.0);
}

static int ptv_st_at(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  char q[PTV_QLEN];
  double at = 0, x = 0;
  uint64_t g = 0;
  int rc = ptv_arity(c, t, n, 3, 6);
  if (rc || (rc = ptv_get_q(c, t[1], &ptv_k_time, "time", 0, &at)) != 0)
    return rc;
  if (strcmp(t[2], "join") == 0) {
    c->usage = "at TIME join N [over DURATION]";
    return ptv_join_tail(c, s, t, n, 3, at);
  }
  if (strcmp(t[2], "fail") == 0 || strcmp(t[2], "leave") == 0) {
    int fail = t[2][0] == 'f';
    c->usage = fail ? "at TIME fail P%" : "at TIME leave P%";
    if ((rc = ptv_arity(c, t, n, 4, 4)) != 0 ||
        (rc = ptv_get_q(c, t[3], &ptv_k_pct, fail ? "failing share" : "leaving share",
                        0, &x)) != 0)
      return rc;
    return ptv_add_event(c, s, fail ? PTV_SCN_FAIL : PTV_SCN_LEAVE, at, 0, 0, x);
  }
  if (strcmp(t[2], "partition") == 0) {
    c->usage = "at TIME partition G for DURATION";
    if ((rc = ptv_arity(c, t, n, 6, 6)) != 0 ||
        (rc = ptv_get_uint(c, t[3], "group count", 2, UINT32_MAX, &g)) != 0 ||
        (rc = ptv_word(c, t[4], "for")) != 0 ||
        (rc = ptv_get_q(c, t[5], &ptv_k_dur, "partition duration", 1, &x)) != 0)
      return rc;
    return ptv_add_event(c, s, PTV_SCN_PARTITION, at, x, (uint32_t)g, 0);
  }
  if (strcmp(t[2], "tracker") == 0) {
    c->usage = "at TIME tracker down for DURATION";
    if ((rc = ptv_arity(c, t, n, 6, 6)) != 0 || (rc = ptv_word(c, t[3], "down")) != 0 ||
        (rc = ptv_word(c, t[4], "for")) != 0 ||
        (rc = ptv_get_q(c, t[5], &ptv_k_dur, "tracker outage", 1, &x)) != 0)
      return rc;
    return ptv_add_event(c, s, PTV_SCN_TRACKER_DOWN, at, x, 0, 0);
  }
  return ptv_fail(c, PTV_ERR_PARSE,
                  "unknown event '%s', expected join, fail, leave, partition or tracker after "
                  "'at TIME'",
                  PTV_Q(q, t[2]));
}

static int ptv_st_from(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  double from = 0, to = 0, rate = 0;
  int rc;
  if ((rc = ptv_arity(c, t, n, 6, 6)) != 0 ||
      (rc = ptv_get_q(c, t[1], &ptv_k_time, "start time", 0, &from)) != 0 ||
      (rc = ptv_word(c, t[2], "to")) != 0 ||
      (rc = ptv_get_q(c, t[3], &ptv_k_time, "end time", 0, &to)) != 0 ||
      (rc = ptv_word(c, t[4], "churn")) != 0 ||
      (rc = ptv_get_q(c, t[5], &ptv_k_churn, "churn rate", 0, &rate)) != 0)
    return rc;
  if (!(to > from))
    return ptv_fail(c, PTV_ERR_PARSE,
                    "churn window from %s to %s is empty, expected the end after the start",
                    t[1], t[3]);
  return ptv_add_event(c, s, PTV_SCN_CHURN, from, to - from, 0, rate);
}

static int ptv_st_run(ptv_pctx *c, ptv_scenario *s, char **t, int n) {
  int rc = ptv_arity(c, t, n, 2, 2);
  return rc ? rc : ptv_get_q(c, t[1], &ptv_k_dur, "run time", 1, &s->run_s);
}

typedef struct {
  const char *kw;
  int (*fn)(ptv_pctx *c, ptv_scenario *s, char **t, int n);
  const char *usage;
  int repeat; /* events may repeat; settings may not */
} ptv_stmt;

static const ptv_stmt ptv_stmts[] = {
    {"seed", ptv_st_seed, "seed N", 0},
    {"stream", ptv_st_stream, "stream [rate=RATE] [chunk=DURATION]", 0},
    {"source", ptv_st_source, "source upload=RATE", 0},
    {"buffer", ptv_st_buffer, "buffer DURATION", 0},
    {"peers", ptv_st_peers,
     "peers [upload=DIST] [download=DIST] [nat=open:P%,cone:P%,symmetric:P%]", 0},
    {"latency", ptv_st_latency, "latency uniform LO HI' or 'latency fixed D", 0},
    {"loss", ptv_st_loss, "loss P%", 0},
    {"nat", ptv_st_nat, "nat relay on|off", 0},
    {"freeriders", ptv_st_freeriders, "freeriders P% claim=Kx", 0},
    {"strategy", ptv_st_strategy, "strategy mesh|chandelier", 0},
    {"join", ptv_st_join, "join N [over DURATION]", 1},
    {"at", ptv_st_at,
     "at TIME join N [over DURATION]|fail P%|leave P%|partition G for DURATION|"
     "tracker down for DURATION",
     1},
    {"from", ptv_st_from, "from TIME to TIME churn P%/min", 1},
    {"run", ptv_st_run, "run DURATION", 0},
};
#define PTV_NSTMTS (sizeof ptv_stmts / sizeof ptv_stmts[0])

static int ptv_scn_defaults(ptv_scenario *s) {
  memset(s, 0, sizeof *s);
  s->seed = 1;
  s->stream_kbps = 500.0;
  s->chunk_s = 0.25;
  s->source_kbps = -1.0; /* 5 x stream once the stream rate is known */
  s->buffer_s = 2.0;
  s->nat_share[0] = 1.0;
  s->freerider_claim = 1.0;
  s->lat_lo_s = 0.010;
  s->lat_hi_s = 0.150;
  s->strategy = PTV_STRATEGY_MESH;
  if (ptv_dist_const(&s->upload, 1000.0) || ptv_dist_const(&s->download, 8000.0))
    return PTV_ERR_NOMEM;
  return 0;
}

/* Parses one line (already cut at its newline). */
static int ptv_scn_line(ptv_pctx *c, ptv_scenario *s, char *p, int seen[]) {
  char *t[PTV_SCN_MAX_WORDS];
  char q[PTV_QLEN];
  int n = 0;
  char *hash = strchr(p, '#');
  if (hash)
    *hash = '\0';
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\r')
      p++;
    if (*p == '\0')
      break;
    if (n == PTV_SCN_MAX_WORDS)
      return ptv_fail(c, PTV_ERR_PARSE,
                      "more than %d words on one line, expected one statement per line",
                      PTV_SCN_MAX_WORDS);
    t[n++] = p;
    while (*p && *p != ' ' && *p != '\t' && *p != '\r')
      p++;
    if (*p)
      *p++ = '\0';
  }
  if (n == 0)
    return 0;
  for (size_t i = 0; i < PTV_NSTMTS; i++) {
    if (strcmp(t[0], ptv_stmts[i].kw) != 0)
      continue;
    if (!ptv_stmts[i].repeat && seen[i])
      return ptv_fail(c, PTV_ERR_PARSE,
                      "second '%s' statement (the first is on line %d), expected each "
                      "setting at most once",
                      t[0], seen[i]);
    seen[i] = c->line;
    c->usage = ptv_stmts[i].usage;
    return ptv_stmts[i].fn(c, s, t, n);
  }
  return ptv_fail(c, PTV_ERR_PARSE,
                  "unknown statement '%s', expected one of seed, stream, source, buffer, "
                  "peers, latency, loss, nat, strategy, join, at, from, run",
                  PTV_Q(q, t[0]));
}

void ptv_scenario_free(ptv_scenario *s) {
  if (!s)
    return;
  ptv_dist_free(&s->upload);
  ptv_dist_free(&s->download);
  free(s->events);
  memset(s, 0, sizeof *s);
}

int ptv_scenario_parse(ptv_scenario *s, const char *text, const char *base_dir,
                       char *err, size_t errlen) {
  ptv_pctx c = {0, err, errlen, base_dir, ""};
  ptv_scenario t;
  int seen[PTV_NSTMTS] = {0};
  int rc, last_empty = 1;
  if (err && errlen)
    err[0] = '\0';
  if (!s)
    return PTV_ERR_INVALID_ARG;
  memset(s, 0, sizeof *s);
  if (!text)
    return PTV_ERR_INVALID_ARG;
  char *buf = strdup(text);
  if (!buf || (rc = ptv_scn_defaults(&t)) != 0) {
    if (buf)
      ptv_scenario_free(&t);
    free(buf);
    return ptv_fail(&c, PTV_ERR_NOMEM, "out of memory, expected a smaller scenario");
  }
  char *p = buf;
  for (;;) {
    c.line++;
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    last_empty = (*p == '\0');
    if ((rc = ptv_scn_line(&c, &t, p, seen)) != 0 || !nl)
      break;
    p = nl + 1;
  }
  free(buf);
  if (rc == 0 && t.run_s <= 0) {
    if (!last_empty)
      c.line++; /* the line just past the end of the text */
    rc = ptv_fail(&c, PTV_ERR_PARSE,
                  "missing 'run' statement, expected a line like 'run 600s'");
  }
  if (rc != 0) {
    ptv_scenario_free(&t);
    return rc;
  }
  if (t.source_kbps < 0)
    t.source_kbps = 5.0 * t.stream_kbps;
  *s = t;
  return 0;
}

int ptv_scenario_load(ptv_scenario *s, const char *path, char *err, size_t errlen) {
  char q[256];
  char *text = NULL, *dir = NULL;
  size_t len = 0;
  if (err && errlen)
    err[0] = '\0';
  if (!s)
    return PTV_ERR_INVALID_ARG;
  memset(s, 0, sizeof *s);
  if (!path)
    return PTV_ERR_INVALID_ARG;
  int rc = ptv_read_file(path, &text, &len);
  if (rc != 0) {
    if (err && errlen)
      snprintf(err, errlen, "cannot read scenario '%s': %s", PTV_Q(q, path),
               rc == PTV_ERR_FULL    ? "larger than 16 MiB"
               : rc == PTV_ERR_NOMEM ? "out of memory"
                                     : strerror(errno));
    return rc == PTV_ERR_NOMEM ? rc : PTV_ERR_IO;
  }
  const char *nul = memchr(text, '\0', len);
  if (nul) {
    ptv_pctx c = {1, err, errlen, NULL, ""};
    for (const char *p = text; p < nul; p++)
      c.line += *p == '\n';
    free(text);
    return ptv_fail(&c, PTV_ERR_PARSE, "NUL byte in the scenario, expected text");
  }
  const char *slash = strrchr(path, '/');
  if (slash) {
    size_t dl = slash == path ? 1 : (size_t)(slash - path); /* "/x.scn" -> "/" */
    dir = malloc(dl + 1);
    if (!dir) {
      free(text);
      if (err && errlen)
        snprintf(err, errlen, "cannot read scenario '%s': out of memory", PTV_Q(q, path));
      return PTV_ERR_NOMEM;
    }
    memcpy(dir, path, dl);
    dir[dl] = '\0';
  }
  rc = ptv_scenario_parse(s, text, dir, err, errlen);
  free(dir);
  free(text);
  return rc;
}
