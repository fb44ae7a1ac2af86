/* peertv-tracker -- bootstrap, channel catalogue and signalling relay.
 * See docs/peertv-tracker.1.
 *
 * The libuv driver around ptv_server (sans-I/O): TCP connections are fed
 * to the server, its answers written back; one timer follows the server's
 * expiry; the HTTP side (libmicrohttpd on the same loop) serves /channels
 * (JSON) and /metrics (Prometheus text). Durable metadata lives in SQLite
 * (ptv_store): killing the process loses nothing a reply announced. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ptv_err.h"
#include "ptv_http.h"
#include "ptv_rt.h"
#include "ptv_server.h"
#include "ptv_store.h"

#define WRITE_QUEUE_MAX (4u << 20) /* a reader this far behind gets no more (see NETWORK.md) */

typedef struct tconn {
  uv_tcp_t h;
  uint64_t id;
  int gone; /* the server has forgotten it; only closing remains */
} tconn;

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} wreq;

static uv_loop_t *g_loop;
static uv_tcp_t g_listen;
static uv_timer_t g_timer;
static uv_signal_t g_sigint, g_sigterm;
static ptv_server *g_srv;
static ptv_store *g_store;
static ptv_http *g_http;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static int g_stopping;

static void rearm(void);

static uint64_t srv_rand(void *user) {
  (void)user;
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return g_rng;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

static void on_write(uv_write_t *req, int status) {
  (void)status; /* a failed write shows up as a read error and closes */
  free(req);
}

static int srv_send(void *user, uint64_t id, const uint8_t *buf, size_t len) {
  (void)user;
  tconn *c = (tconn *)(uintptr_t)id;
  if (c->gone || uv_is_closing((uv_handle_t *)&c->h)) return -1;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->h) > WRITE_QUEUE_MAX) return -1;
  wreq *w = malloc(sizeof(*w) + len);
  if (!w) return -1;
  memcpy(w + 1, buf, len);
  w->buf = uv_buf_init((char *)(w + 1), (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&c->h, &w->buf, 1, on_write) != 0) {
    free(w);
    return -1;
  }
  return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  uv_handle_t *h = (uv_handle_t *)req->handle;
  if (!uv_is_closing(h)) uv_close(h, on_closed);
  free(req);
}

/* The server is done with this connection: flush what it said, then close. */
static void srv_close(void *user, uint64_t id) {
  (void)user;
  tconn *c = (tconn *)(uintptr_t)id;
  c->gone = 1;
  uv_read_stop((uv_stream_t *)&c->h);
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (!req || uv_shutdown(req, (uv_stream_t *)&c->h, on_shutdown) != 0) {
    free(req);
    if (!uv_is_closing((uv_handle_t *)&c->h)) uv_close((uv_handle_t *)&c->h, on_closed);
  }
}

static void srv_log(void *user, const char *line) {
  (void)user;
  ptv_rt_log(1, "%s", line);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  static char slab[65536];
  (void)suggested;
  *buf = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  tconn *c = s->data;
  if (n > 0) {
    ptv_server_conn_data(g_srv, c->id, (const uint8_t *)buf->base, (size_t)n, ptv_rt_now(),
                         ptv_rt_unix_us());
  } else if (n < 0) {
    if (!c->gone) ptv_server_conn_closed(g_srv, c->id, ptv_rt_now());
    c->gone = 1;
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_closed);
  }
  rearm();
}

/* A stable key for the per-address limit: the remote IP, port left out. */
static uint64_t addr_key(const struct sockaddr_storage *ss) {
  const uint8_t *p;
  size_t n;
  if (ss->ss_family == AF_INET) {
    p = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
    n = 4;
  } else {
    p = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    n = 16;
  }
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void on_connection(uv_stream_t *srv, int status) {
  if (status < 0) {
    ptv_rt_log(0, "accept: %s", uv_strerror(status));
    return;
  }
  tconn *c = calloc(1, sizeof(*c));
  if (!c) return;
  uv_tcp_init(g_loop, &c->h);
  c->h.data = c;
  c->id = (uint64_t)(uintptr_t)c;
  if (uv_accept(srv, (uv_stream_t *)&c->h) != 0) {
    uv_close((uv_handle_t *)&c->h, on_closed);
    return;
  }
  uv_tcp_nodelay(&c->h, 1);
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  memset(&ss, 0, sizeof(ss));
  uv_tcp_getpeername(&c->h, (struct sockaddr *)&ss, &len);
  int rv = ptv_server_conn_open(g_srv, c->id, addr_key(&ss), ptv_rt_now());
  if (rv != 0) {
    ptv_rt_log(2, "connection refused: %s", ptv_strerror(rv));
    c->gone = 1;
    uv_close((uv_handle_t *)&c->h, on_closed);
    return;
  }
  uv_read_start((uv_stream_t *)&c->h, on_alloc, on_read);
  rearm();
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  ptv_server_handle_expiry(g_srv, ptv_rt_now());
  rearm();
}

static void rearm(void) {
  if (g_stopping) return;
  ptv_tstamp e = ptv_server_get_expiry(g_srv), now = ptv_rt_now();
  uint64_t ms = e <= now ? 1 : (e - now + 999) / 1000; /* >= 1: see ptv_host.c */
  if (ms > 1000) ms = 1000;
  uv_timer_start(&g_timer, on_timer, ms, 0);
}

/* ---- HTTP ------------------------------------------------------------------ */

typedef struct {
  json_t *arr;
} list_ctx;

static int list_one(void *user, const ptv_channel *c) {
  list_ctx *lc = user;
  json_t *o = json_object();
  char pk[65];
  for (int i = 0; i < 32; i++) snprintf(pk + 2 * i, 3, "%02x", c->publisher_pk[i]);
  json_object_set_new(o, "name", json_string(c->name));
  json_object_set_new(o, "description", json_string(c->description));
  json_object_set_new(o, "publisher_key", json_string(pk));
  json_object_set_new(o, "chunk_ms", json_real(c->chunk_us / 1000.0));
  json_object_set_new(o, "stream_kbps", json_integer(c->stream_kbps));
  json_object_set_new(o, "created_unix", json_real((double)c->created_us / 1e6));
  json_object_set_new(o, "live", json_boolean(c->ended_us == 0));
  if (c->ended_us) json_object_set_new(o, "ended_unix", json_real((double)c->ended_us / 1e6));
  json_object_set_new(o, "members", json_integer(ptv_server_channel_members(g_srv, c->name)));
  json_array_append_new(lc->arr, o);
  return 0;
}

static void http_channels(ptv_http_reply *r, void *user) {
  (void)user;
  const char *all = ptv_http_reply_query(r, "all");
  list_ctx lc = {json_array()};
  int rv = ptv_store_channel_list(g_store, all && strcmp(all, "0") != 0, list_one, &lc);
  if (rv < 0) {
    r->status = 503;
    ptv_http_reply_printf(r, "store error: %s\n", ptv_store_errmsg(g_store));
  } else {
    char *s = json_dumps(lc.arr, JSON_INDENT(1));
    r->content_type = "application/json";
    if (s) ptv_http_reply_printf(r, "%s\n", s);
    free(s);
  }
  json_decref(lc.arr);
}

static void http_metrics(ptv_http_reply *r, void *user) {
  (void)user;
  ptv_server_stats st;
  ptv_server_get_stats(g_srv, &st);
  r->content_type = "text/plain; version=0.0.4";
#define M(name, type, help, v)                                                              \
  ptv_http_reply_printf(r, "# HELP peertv_tracker_" name " " help "\n# TYPE peertv_tracker_" name \
                           " " type "\npeertv_tracker_" name " %llu\n",                        \
                        (unsigned long long)(v))
  M("connections", "gauge", "Open client connections.", st.conns);
  M("connections_total", "counter", "Connections accepted.", st.conns_total);
  M("connections_refused_total", "counter", "Connections refused by limits.", st.conns_refused);
  M("hellos_total", "counter", "HELLOs welcomed.", st.hellos_ok);
  M("hellos_refused_total", "counter", "HELLOs refused.", st.hellos_refused);
  M("messages_in_total", "counter", "Messages received.", st.msgs_in);
  M("bytes_in_total", "counter", "Bytes received.", st.bytes_in);
  M("messages_out_total", "counter", "Messages sent.", st.msgs_out);
  M("bad_messages_total", "counter", "Malformed or out-of-order messages.", st.bad_msgs);
  M("rate_limited_total", "counter", "Connections cut for their request rate.", st.rate_limited);
  M("signals_relayed_total", "counter", "Signalling messages relayed.", st.signals_relayed);
  M("signals_unreachable_total", "counter", "Signalling to absent peers.", st.signals_unreachable);
  M("bans_total", "counter", "Peers banned for forged chunks.", st.bans);
  M("channels_live", "gauge", "Channels with members or a source.", st.channels_live);
  M("members", "gauge", "Members over all channels.", st.members);
#undef M
}

/* ---- life cycle ------------------------------------------------------------ */

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (uv_is_closing(h)) return;
  if (h->type == UV_TCP && h != (uv_handle_t *)&g_listen) {
    tconn *c = h->data;
    uv_close(h, on_closed);
    (void)c;
  } else if (h->type == UV_TCP || h->type == UV_TIMER || h->type == UV_SIGNAL) {
    uv_close(h, NULL);
  }
}

static void http_stopped(void *arg) {
  (void)arg;
  g_http = NULL;
}

static void on_signal(uv_signal_t *s, int sig) {
  (void)s;
  ptv_rt_log(1, "signal %d: stopping", sig);
  g_stopping = 1;
  if (g_http) ptv_http_stop(g_http, http_stopped, NULL);
  uv_walk(g_loop, close_walk, NULL);
}

static void usage(FILE *f) {
  fputs("Usage: peertv-tracker [options]\n"
        "PeerTV tracker: channel catalogue, peer bootstrap and ICE signalling relay.\n\n"
        "Options:\n"
        "  --listen ADDR:PORT   where clients connect (default 0.0.0.0:7070; port 0:\n"
        "                       any free port, printed at start)\n"
        "  --db PATH            SQLite database of channels and bans\n"
        "                       (default peertv-tracker.db; created if missing)\n"
        "  --http ADDR:PORT     serve /channels (JSON) and /metrics (Prometheus) there\n"
        "  --max-conns N        connections in all (default 4096)\n"
        "  --max-per-addr N     connections from one address (default 64)\n"
        "  --rate N             messages per second per connection (default 200)\n"
        "  -v, --verbose        debug log lines (connections refused, ...)\n"
        "  -q, --quiet          errors only\n"
        "  --help               show this help\n"
        "  --version            show the version\n\n"
        "Stops cleanly on SIGINT or SIGTERM. Exit status: 0 stopped, 1 runtime\n"
        "failure, 2 usage error.\n",
        f);
}

static int parse_u32(const char *s, uint32_t *out) {
  char *e;
  errno = 0;
  unsigned long v = strtoul(s, &e, 10);
  if (errno || e == s || *e || v == 0 || v > 1000000) return -1;
  *out = (uint32_t)v;
  return 0;
}

int main(int argc, char **argv) {
  const char *listen = "0.0.0.0:7070", *db = "peertv-tracker.db", *http = NULL;
  ptv_server_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  static const struct option opts[] = {
      {"listen", required_argument, NULL, 'l'}, {"db", required_argument, NULL, 'd'},
      {"http", required_argument, NULL, 'H'},   {"max-conns", required_argument, NULL, 'c'},
      {"max-per-addr", required_argument, NULL, 'a'}, {"rate", required_argument, NULL, 'r'},
      {"verbose", no_argument, NULL, 'v'},      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  ptv_rt_set_prog("peertv-tracker");
  int o;
  while ((o = getopt_long(argc, argv, "vq", opts, NULL)) != -1) {
    switch (o) {
    case 'l': listen = optarg; break;
    case 'd': db = optarg; break;
    case 'H': http = optarg; break;
    case 'c':
      if (parse_u32(optarg, &cfg.max_conns)) goto bad_num;
      break;
    case 'a':
      if (parse_u32(optarg, &cfg.max_per_addr)) goto bad_num;
      break;
    case 'r':
      if (parse_u32(optarg, &cfg.rate_per_s)) goto bad_num;
      cfg.rate_burst = 2 * cfg.rate_per_s;
      break;
    case 'v': ptv_rt_verbosity++; break;
    case 'q': ptv_rt_verbosity = 0; break;
    case 'h': usage(stdout); return 0;
    case 'V': puts("peertv-tracker " PACKAGE_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "peertv-tracker: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }
  struct sockaddr_storage la;
  if (ptv_rt_sockaddr(listen, &la) != 0) {
    fprintf(stderr, "peertv-tracker: --listen wants ADDR:PORT (e.g. 0.0.0.0:7070), not '%s'\n", listen);
    return 2;
  }
  char err[512];
  int rv = ptv_store_sqlite_open(&g_store, db, err, sizeof(err));
  if (rv != 0) {
    fprintf(stderr, "peertv-tracker: cannot open database %s: %s\n", db, err);
    return 1;
  }
  g_loop = uv_default_loop();
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  g_rng ^= (uint64_t)tv.tv_usec * 0x100000001b3ull ^ (uint64_t)uv_os_getpid() << 32;
  cfg.store = g_store;
  ptv_server_callbacks cb = {.send = srv_send, .close = srv_close, .rand = srv_rand, .log = srv_log};
  g_srv = ptv_server_new(&cfg, &cb, NULL);
  if (!g_srv) {
    fprintf(stderr, "peertv-tracker: out of memory\n");
    return 1;
  }
  uv_tcp_init(g_loop, &g_listen);
  if ((rv = uv_tcp_bind(&g_listen, (struct sockaddr *)&la, 0)) != 0 ||
      (rv = uv_listen((uv_stream_t *)&g_listen, 511, on_connection)) != 0) {
    fprintf(stderr, "peertv-tracker: cannot listen on %s: %s\n", listen, uv_strerror(rv));
    return 1;
  }
  struct sockaddr_storage bound;
  int blen = sizeof(bound);
  char host[64] = "?";
  uv_tcp_getsockname(&g_listen, (struct sockaddr *)&bound, &blen);
  if (bound.ss_family == AF_INET) uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof(host));
  else uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof(host));
  unsigned port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  char hh[256];
  uint16_t hp;
  if (http) {
    if (ptv_rt_split_hostport(http, hh, sizeof(hh), &hp) != 0) {
      fprintf(stderr, "peertv-tracker: --http wants ADDR:PORT, not '%s'\n", http);
      return 2;
    }
    ptv_http_config hc = {.errbuf = err, .errbuf_len = sizeof(err)};
    if (ptv_http_start(&g_http, g_loop, hh, hp, &hc) != 0) {
      fprintf(stderr, "peertv-tracker: cannot serve HTTP on %s: %s\n", http, err);
      return 1;
    }
    ptv_http_route(g_http, "/channels", http_channels, NULL);
    ptv_http_route(g_http, "/metrics", http_metrics, NULL);
  }
  uv_timer_init(g_loop, &g_timer);
  uv_signal_init(g_loop, &g_sigint);
  uv_signal_init(g_loop, &g_sigterm);
  uv_signal_start(&g_sigint, on_signal, SIGINT);
  uv_signal_start(&g_sigterm, on_signal, SIGTERM);
  signal(SIGPIPE, SIG_IGN);
  /* One parseable line for scripts that pass port 0. */
  printf("peertv-tracker listening on %s:%u", host, port);
  if (g_http) printf(" http %s:%u", hh, (unsigned)ptv_http_port(g_http));
  printf(" db %s\n", db);
  fflush(stdout);
  rearm();
  uv_run(g_loop, UV_RUN_DEFAULT);
  ptv_server_free(g_srv);
  ptv_store_close(g_store);
  uv_loop_close(g_loop);
  return 0;

bad_num:
  fprintf(stderr, "peertv-tracker: %s wants a positive number, not '%s'\n", argv[optind - 1], optarg);
  return 2;
}
