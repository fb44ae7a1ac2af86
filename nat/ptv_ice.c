/* ptv_ice.c -- one ICE path per partner, through libnice, datagram mode.
 * See ptv_ice.h for the model. */
#include "ptv_ice.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <nice/agent.h>

#include "ptv_err.h"

#define DEFAULT_FAIL_MS 10000u
#define DEFAULT_STUN_PORT 3478u
#define COMPONENT 1u
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h: send GSO, Linux 4.18 */
#endif
#define GSO_MAX_SEGS 32 /* well under the kernel's 64 (UDP_MAX_SEGMENTS) */

struct ptv_ice {
  GMainContext *ctx;
  ptv_ice_callbacks cb;
  void *user;
  /* config, strings owned */
  char *stun_host, *turn_host, *turn_user, *turn_pass;
  guint stun_port, turn_port;
  char **local_addrs; /* NULL-terminated, or NULL */
  guint port_min, port_max;
  guint fail_ms;
  int force_relay;
  /* [0] controlled, [1] controlling; created on first use */
  NiceAgent *agent[2];
  GHashTable *links[2]; /* stream_id -> ptv_ice_link */
  /* Links freed while libnice or ptv_ice was on the stack; their stream
   * removal and memory wait for the reaper idle. */
  GPtrArray *doomed;
  GSource *reaper;
  int in_cb;            /* depth of libnice calls and callbacks we are in */
};

struct ptv_ice_link {
  ptv_ice *ice;
  int role;             /* index into ice->agent */
  guint stream_id;
  uint32_t peer_tag;
  ptv_ice_state state;
  int reported;         /* state was reported at least once */
  int have_remote_creds;
  int remote_done;
  int dead;             /* freed by the user, awaiting the reaper */
  GSList *held;         /* NiceCandidate * awaiting remote credentials */
  GSource *start;       /* idle that starts gathering */
  GSource *timer;       /* fail timeout */
  /* Our own send path on the selected pair (see ptv_ice_link_send_segments):
   * FAST_UNKNOWN until looked up after each pair selection. */
  enum { FAST_UNKNOWN, FAST_NONE, FAST_UDP } fast;
  int fd;
  int gso_bad;          /* the kernel refused UDP_SEGMENT once: no more */
  struct sockaddr_storage to;
  socklen_t tolen;
};

const char *ptv_ice_state_name(ptv_ice_state s) {
  switch (s) {
  case PTV_ICE_GATHERING: return "gathering";
  case PTV_ICE_CONNECTING: return "connecting";
  case PTV_ICE_CONNECTED: return "connected";
  case PTV_ICE_FAILED: return "failed";
  default: return "?";
  }
}

static void source_kill(GSource **s) {
  if (*s) {
    g_source_destroy(*s);
    g_source_unref(*s);
    *s = NULL;
  }
}

static ptv_ice_link *find_link(ptv_ice *ice, NiceAgent *agent, guint stream_id) {
  int role = agent == ice->agent[1];
  if (agent != ice->agent[role] || !ice->links[role])
    return NULL;
  return g_hash_table_lookup(ice->links[role], GUINT_TO_POINTER(stream_id));
}

/* Moves the link to `s` and tells the user once. Forward only, FAILED is
 * final; a connected link goes nowhere but FAILED. */
static void set_state(ptv_ice_link *l, ptv_ice_state s) {
  if (l->dead)
    return;
  if (l->reported && (l->state == s || l->state == PTV_ICE_FAILED))
    return;
  if (l->reported && s != PTV_ICE_FAILED && s < l->state)
    return;
  l->state = s;
  l->reported = 1;
  if (s == PTV_ICE_CONNECTED || s == PTV_ICE_FAILED)
    source_kill(&l->timer);
  if (l->ice->cb.on_state) {
    ptv_ice *ice = l->ice;
    ice->in_cb++;
    ice->cb.on_state(ice->user, l, l->peer_tag, s);
    ice->in_cb--;
  }
}

/* ---- libnice signals and receive ------------------------------------------ */

static void on_new_candidate(NiceAgent *agent, NiceCandidate *cand, gpointer data) {
  ptv_ice *ice = data;
  ptv_ice_link *l = find_link(ice, agent, cand->stream_id);
  if (!l || !ice->cb.on_local_candidate)
    return;
  gchar *sdp = nice_agent_generate_local_candidate_sdp(agent, cand);
  if (!sdp)
    return;
  ice->in_cb++;
  ice->cb.on_local_candidate(ice->user, l, l->peer_tag, sdp);
  ice->in_cb--;
  g_free(sdp);
}

static void on_gathering_done(NiceAgent *agent, guint stream_id, gpointer data) {
  ptv_ice *ice = data;
  ptv_ice_link *l = find_link(ice, agent, stream_id);
  if (!l || !ice->cb.on_gathering_done)
    return;
  ice->in_cb++;
  ice->cb.on_gathering_done(ice->user, l, l->peer_tag);
  ice->in_cb--;
}

static void on_component_state(NiceAgent *agent, guint stream_id, guint component,
                               guint state, gpointer data) {
  ptv_ice *ice = data;
  ptv_ice_link *l = find_link(ice, agent, stream_id);
  if (!l || component != COMPONENT)
    return;
  switch (state) {
  case NICE_COMPONENT_STATE_GATHERING:
    set_state(l, PTV_ICE_GATHERING);
    break;
  case NICE_COMPONENT_STATE_CONNECTING:
    set_state(l, PTV_ICE_CONNECTING);
    break;
  case NICE_COMPONENT_STATE_CONNECTED:
  case NICE_COMPONENT_STATE_READY:
    set_state(l, PTV_ICE_CONNECTED);
    break;
  case NICE_COMPONENT_STATE_FAILED:
    /* With trickle, "failed" before the partner's last candidate only means
     * the pairs known so far failed; our timer decides then. */
    if (l->remote_done || l->state == PTV_ICE_CONNECTED)
      set_state(l, PTV_ICE_FAILED);
    break;
  default: /* DISCONNECTED: before gathering, or on removal */
    break;
  }
}

static void on_selected_pair(NiceAgent *agent, guint stream_id, guint component,
                             NiceCandidate *lc, NiceCandidate *rc, gpointer data) {
  (void)lc;
  (void)rc;
  ptv_ice_link *l = find_link(data, agent, stream_id);
  if (l && component == COMPONENT)
    l->fast = FAST_UNKNOWN; /* look the socket and address up again */
}

static void on_recv(NiceAgent *agent, guint stream_id, guint component, guint len,
                    gchar *buf, gpointer data) {
  ptv_ice *ice = data;
  ptv_ice_link *l = find_link(ice, agent, stream_id);
  if (!l || !ice->cb.on_recv)
    return;
  ice->in_cb++;
  ice->cb.on_recv(ice->user, l, l->peer_tag, (const uint8_t *)buf, len);
  ice->in_cb--;
}

/* ---- agents --------------------------------------------------------------- */

static NiceAgent *get_agent(ptv_ice *ice, int role) {
  NiceAgent *a = ice->agent[role];
  if (a)
    return a;
  /* No NICE_AGENT_OPTION_RELIABLE: datagram mode. */
  a = nice_agent_new_full(ice->ctx, NICE_COMPATIBILITY_RFC5245, NICE_AGENT_OPTION_ICE_TRICKLE);
  if (!a)
    return NULL;
  g_object_set(a, "controlling-mode", role ? TRUE : FALSE, "ice-tcp", FALSE, "ice-udp", TRUE,
               "upnp", FALSE, "force-relay", ice->force_relay ? TRUE : FALSE, NULL);
  if (ice->stun_host)
    g_object_set(a, "stun-server", ice->stun_host, "stun-server-port", ice->stun_port, NULL);
  for (char **s = ice->local_addrs; s && *s; s++) {
    NiceAddress addr;
    nice_address_init(&addr);
    nice_address_set_from_string(&addr, *s); /* validated in ptv_ice_new */
    nice_agent_add_local_address(a, &addr);
  }
  g_signal_connect(a, "new-candidate-full", G_CALLBACK(on_new_candidate), ice);
  g_signal_connect(a, "candidate-gathering-done", G_CALLBACK(on_gathering_done), ice);
  g_signal_connect(a, "component-state-changed", G_CALLBACK(on_component_state), ice);
  g_signal_connect(a, "new-selected-pair-full", G_CALLBACK(on_selected_pair), ice);
  ice->agent[role] = a;
  ice->links[role] = g_hash_table_new(g_direct_hash, g_direct_equal);
  return a;
}

static void link_destroy(ptv_ice_link *l) {
  ptv_ice *ice = l->ice;
  source_kill(&l->start);
  source_kill(&l->timer);
  g_slist_free_full(l->held, (GDestroyNotify)nice_candidate_free);
  nice_agent_remove_stream(ice->agent[l->role], l->stream_id);
  g_free(l);
}

static void reap(ptv_ice *ice) {
  while (ice->doomed->len)
    link_destroy(g_ptr_array_steal_index(ice->doomed, ice->doomed->len - 1));
}

static gboolean on_reap(gpointer data) {
  ptv_ice *ice = data;
  g_source_unref(ice->reaper);
  ice->reaper = NULL;
  reap(ice);
  return G_SOURCE_REMOVE;
}

static int valid_addr(const char *s) {
  NiceAddress a;
  nice_address_init(&a);
  return s && nice_address_set_from_string(&a, s);
}

ptv_ice *ptv_ice_new(GMainContext *ctx, const ptv_ice_config *cfg,
                     const ptv_ice_callbacks *cb, void *user) {
  static const ptv_ice_config defaults;
  if (!cb)
    return NULL;
  if (!cfg)
    cfg = &defaults;
  if (cfg->stun_host && !valid_addr(cfg->stun_host))
    return NULL;
  if (cfg->turn_host && (!valid_addr(cfg->turn_host) || !cfg->turn_user || !cfg->turn_pass))
    return NULL;
  if (cfg->port_min > cfg->port_max || (!cfg->port_min != !cfg->port_max))
    return NULL;
  for (size_t i = 0; cfg->local_addrs && i < cfg->n_local_addrs; i++)
    if (!valid_addr(cfg->local_addrs[i]))
      return NULL;

  ptv_ice *ice = g_new0(ptv_ice, 1);
  ice->ctx = g_main_context_ref(ctx ? ctx : g_main_context_default());
  ice->cb = *cb;
  ice->user = user;
  ice->stun_host = g_strdup(cfg->stun_host);
  ice->stun_port = cfg->stun_port ? cfg->stun_port : DEFAULT_STUN_PORT;
  ice->turn_host = g_strdup(cfg->turn_host);
  ice->turn_port = cfg->turn_port ? cfg->turn_port : DEFAULT_STUN_PORT;
  ice->turn_user = g_strdup(cfg->turn_user);
  ice->turn_pass = g_strdup(cfg->turn_pass);
  if (cfg->local_addrs && cfg->n_local_addrs) {
    ice->local_addrs = g_new0(char *, cfg->n_local_addrs + 1);
    for (size_t i = 0; i < cfg->n_local_addrs; i++)
      ice->local_addrs[i] = g_strdup(cfg->local_addrs[i]);
  }
  ice->port_min = cfg->port_min;
  ice->port_max = cfg->port_max;
  ice->fail_ms = cfg->fail_timeout_ms ? cfg->fail_timeout_ms : DEFAULT_FAIL_MS;
  ice->force_relay = cfg->force_relay;
  ice->doomed = g_ptr_array_new();
  return ice;
}

void ptv_ice_free(ptv_ice *ice) {
  if (!ice)
    return;
  for (int r = 0; r < 2; r++) {
    if (!ice->agent[r])
      continue;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, ice->links[r]);
    while (g_hash_table_iter_next(&it, &k, &v)) {
      g_hash_table_iter_steal(&it);
      g_ptr_array_add(ice->doomed, v);
    }
  }
  reap(ice);
  g_ptr_array_free(ice->doomed, TRUE);
  source_kill(&ice->reaper);
  for (int r = 0; r < 2; r++) {
    if (!ice->agent[r])
      continue;
    g_signal_handlers_disconnect_by_data(ice->agent[r], ice);
    g_object_unref(ice->agent[r]);
    g_hash_table_destroy(ice->links[r]);
  }
  g_main_context_unref(ice->ctx);
  g_free(ice->stun_host);
  g_free(ice->turn_host);
  g_free(ice->turn_user);
  g_free(ice->turn_pass);
  g_strfreev(ice->local_addrs);
  g_free(ice);
}

/* ---- links ---------------------------------------------------------------- */

static gboolean on_fail_timeout(gpointer data) {
  ptv_ice_link *l = data;
  g_source_unref(l->timer);
  l->timer = NULL;
  set_state(l, PTV_ICE_FAILED);
  return G_SOURCE_REMOVE;
}

static gboolean on_start(gpointer data) {
  ptv_ice_link *l = data;
  ptv_ice *ice = l->ice;
  g_source_unref(l->start);
  l->start = NULL;
  ice->in_cb++; /* libnice signals our callbacks as it returns */
  gboolean ok = nice_agent_gather_candidates(ice->agent[l->role], l->stream_id);
  ice->in_cb--;
  if (!ok)
    set_state(l, PTV_ICE_FAILED);
  return G_SOURCE_REMOVE;
}

static GSource *add_source(ptv_ice *ice, GSource *s, GSourceFunc fn, void *data) {
  /* Default priority, idles included: they mean "soon", not "when nothing
   * else is ready". A peer napping between I/O passes finds datagrams at
   * almost every pass, and GLib runs no lower-priority source meanwhile: a
   * link's gathering waited 1.5-7.7 s at --poll-interval 10-20. */
  g_source_set_priority(s, G_PRIORITY_DEFAULT);
  g_source_set_callback(s, fn, data, NULL);
  g_source_attach(s, ice->ctx);
  return s; /* we keep the reference, to destroy it early */
}

ptv_ice_link *ptv_ice_link_new(ptv_ice *ice, uint32_t peer_tag, int controlling) {
  if (!ice)
    return NULL;
  int role = controlling ? 1 : 0;
  NiceAgent *a = get_agent(ice, role);
  if (!a)
    return NULL;
  guint sid = nice_agent_add_stream(a, 1);
  if (!sid)
    return NULL;
  if (ice->port_min)
    nice_agent_set_port_range(a, sid, COMPONENT, ice->port_min, ice->port_max);
  if (ice->turn_host &&
      !nice_agent_set_relay_info(a, sid, COMPONENT, ice->turn_host, ice->turn_port,
                                 ice->turn_user, ice->turn_pass, NICE_RELAY_TYPE_TURN_UDP)) {
    nice_agent_remove_stream(a, sid);
    return NULL;
  }
  /* Our receive callback also feeds libnice its STUN traffic. */
  nice_agent_attach_recv(a, sid, COMPONENT, ice->ctx, on_recv, ice);

  ptv_ice_link *l = g_new0(ptv_ice_link, 1);
  l->ice = ice;
  l->role = role;
  l->stream_id = sid;
  l->peer_tag = peer_tag;
  l->state = PTV_ICE_GATHERING;
  g_hash_table_insert(ice->links[role], GUINT_TO_POINTER(sid), l);
  /* Gather from the context, so no callback runs before we return. */
  l->start = add_source(ice, g_idle_source_new(), on_start, l);
  l->timer = add_source(ice, g_timeout_source_new(ice->fail_ms), on_fail_timeout, l);
  return l;
}

void ptv_ice_link_free(ptv_ice_link *l) {
  if (!l || l->dead)
    return;
  ptv_ice *ice = l->ice;
  /* From now on its libnice events find no link and are dropped. */
  g_hash_table_remove(ice->links[l->role], GUINT_TO_POINTER(l->stream_id));
  if (ice->in_cb) {
    /* libnice may be iterating this stream right now (e.g. reading more
     * datagrams after our on_recv), and our caller may still hold `l`:
     * finish from an idle. */
    l->dead = 1;
    source_kill(&l->start);
    source_kill(&l->timer);
    g_ptr_array_add(ice->doomed, l);
    if (!ice->reaper)
      ice->reaper = add_source(ice, g_idle_source_new(), on_reap, ice);
  } else {
    link_destroy(l);
  }
}

uint32_t ptv_ice_link_peer_tag(const ptv_ice_link *l) { return l->peer_tag; }
ptv_ice_state ptv_ice_link_state(const ptv_ice_link *l) { return l->state; }

static int copy_str(char *dst, size_t size, const char *src) {
  size_t n = strlen(src);
  if (n >= size)
    return PTV_ERR_NOBUF;
  memcpy(dst, src, n + 1);
  return 0;
}

int ptv_ice_link_local_credentials(ptv_ice_link *l, char *ufrag, size_t ufrag_size,
                                   char *pwd, size_t pwd_size) {
  gchar *u = NULL, *p = NULL;
  int rv;
  if (!l || !ufrag || !pwd)
    return PTV_ERR_INVALID_ARG;
  if (!nice_agent_get_local_credentials(l->ice->agent[l->role], l->stream_id, &u, &p))
    return PTV_ERR_INVALID_ARG;
  rv = copy_str(ufrag, ufrag_size, u);
  if (rv == 0)
    rv = copy_str(pwd, pwd_size, p);
  g_free(u);
  g_free(p);
  return rv;
}

static int flush_held(ptv_ice_link *l) {
  if (!l->held || !l->have_remote_creds)
    return 0;
  GSList *held = l->held;
  l->held = NULL;
  l->ice->in_cb++;
  int n = nice_agent_set_remote_candidates(l->ice->agent[l->role], l->stream_id, COMPONENT, held);
  l->ice->in_cb--;
  g_slist_free_full(held, (GDestroyNotify)nice_candidate_free);
  return n < 0 ? PTV_ERR_FULL : 0;
}

int ptv_ice_link_set_remote_credentials(ptv_ice_link *l, const char *ufrag, const char *pwd) {
  if (!l || !ufrag || !pwd)
    return PTV_ERR_INVALID_ARG;
  if (l->state == PTV_ICE_FAILED || l->dead)
    return PTV_ERR_CLOSED;
  l->ice->in_cb++;
  gboolean ok = nice_agent_set_remote_credentials(l->ice->agent[l->role], l->stream_id, ufrag, pwd);
  l->ice->in_cb--;
  if (!ok)
    return PTV_ERR_INVALID_ARG;
  l->have_remote_creds = 1;
  return l->dead ? 0 : flush_held(l);
}

static int all_digits(const char *s) {
  if (!*s)
    return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

/* libnice reads numbers with strtoul and takes "x" as priority 0; insist
 * on "a=candidate:F C T PRIO ADDR PORT typ TYPE ..." with numeric fields. */
static int well_formed(const char *line) {
  if (strncmp(line, "a=candidate:", 12) != 0)
    return 0;
  gchar **tok = g_strsplit(line + 12, " ", 0);
  int ok = g_strv_length(tok) >= 8 && all_digits(tok[1]) && all_digits(tok[3]) &&
           all_digits(tok[5]) && strcmp(tok[6], "typ") == 0;
  g_strfreev(tok);
  return ok;
}

int ptv_ice_link_add_remote_candidate(ptv_ice_link *l, const char *line) {
  if (!l || !line)
    return PTV_ERR_INVALID_ARG;
  if (l->state == PTV_ICE_FAILED || l->dead)
    return PTV_ERR_CLOSED;
  gchar *owned = NULL;
  if (strncmp(line, "a=", 2) != 0)
    line = owned = g_strconcat("a=", line, NULL);
  if (!well_formed(line)) {
    g_free(owned);
    return PTV_ERR_PARSE;
  }
  NiceCandidate *c =
      nice_agent_parse_remote_candidate_sdp(l->ice->agent[l->role], l->stream_id, line);
  g_free(owned);
  if (!c)
    return PTV_ERR_PARSE;
  if (c->component_id != COMPONENT) {
    nice_candidate_free(c);
    return PTV_ERR_PARSE;
  }
  l->held = g_slist_append(l->held, c);
  return flush_held(l);
}

int ptv_ice_link_remote_done(ptv_ice_link *l) {
  if (!l)
    return PTV_ERR_INVALID_ARG;
  if (l->dead)
    return 0;
  l->remote_done = 1;
  l->ice->in_cb++;
  nice_agent_peer_candidate_gathering_done(l->ice->agent[l->role], l->stream_id);
  l->ice->in_cb--;
  return 0;
}

int ptv_ice_link_send(ptv_ice_link *l, const uint8_t *buf, size_t len) {
  if (!l || !buf || len == 0 || len > 65535)
    return PTV_ERR_INVALID_ARG;
  if (l->state != PTV_ICE_CONNECTED || l->dead)
    return PTV_ERR_CLOSED;
  GOutputVector v = {buf, len};
  NiceOutputMessage m = {&v, 1};
  GError *err = NULL;
  l->ice->in_cb++;
  gint n = nice_agent_send_messages_nonblocking(l->ice->agent[l->role], l->stream_id, COMPONENT,
                                                &m, 1, NULL, &err);
  l->ice->in_cb--;
  if (n == 1)
    return 0;
  if (n == 0)
    return PTV_ERR_AGAIN;
  int rv = PTV_ERR_IO;
  if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    rv = PTV_ERR_AGAIN;
  else if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    rv = PTV_ERR_CLOSED;
  g_clear_error(&err);
  return rv;
}

/* Our own path: the selected pair's local UDP socket, when the local
 * candidate is not relayed (a relayed one needs libnice's TURN framing). */
static void fast_lookup(ptv_ice_link *l) {
  NiceAgent *a = l->ice->agent[l->role];
  NiceCandidate *lc = NULL, *rc = NULL;
  l->fast = FAST_NONE;
  if (!nice_agent_get_selected_pair(a, l->stream_id, COMPONENT, &lc, &rc) || !lc || !rc ||
      lc->type == NICE_CANDIDATE_TYPE_RELAYED || lc->transport != NICE_CANDIDATE_TRANSPORT_UDP)
    return;
  GSocket *gs = nice_agent_get_selected_socket(a, l->stream_id, COMPONENT);
  if (!gs)
    return;
  int fd = g_socket_get_fd(gs);
  g_object_unref(gs); /* libnice keeps it open as long as the stream */
  if (fd < 0)
    return;
  memset(&l->to, 0, sizeof(l->to));
  nice_address_copy_to_sockaddr(&rc->addr, (struct sockaddr *)&l->to);
  l->tolen = l->to.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  l->fd = fd;
  l->fast = FAST_UDP;
}

/* One sendmsg of `n` datagrams: with n > 1 through UDP GSO (every datagram
 * `seg` bytes but the last). Returns n, 0 if GSO was refused (send them
 * another way), or a PTV_ERR_*. */
static int fast_send(ptv_ice_link *l, const uint8_t *buf, size_t seg, size_t len, int n) {
  struct iovec iov = {(void *)buf, len};
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } ctl;
  struct msghdr mh = {.msg_name = &l->to, .msg_namelen = l->tolen, .msg_iov = &iov,
                      .msg_iovlen = 1};
  if (n > 1) {
    memset(&ctl, 0, sizeof(ctl));
    mh.msg_control = ctl.buf;
    mh.msg_controllen = sizeof(ctl.buf);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_UDP;
    cm->cmsg_type = UDP_SEGMENT;
    cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t gso = (uint16_t)seg;
    memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
  }
  ssize_t r;
  do
    r = sendmsg(l->fd, &mh, 0);
  while (r < 0 && errno == EINTR);
  if (r >= 0)
    return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
    return PTV_ERR_AGAIN;
  if (n > 1 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP)) {
    l->gso_bad = 1; /* no GSO here (an old kernel, a device without it) */
    return 0;
  }
  return PTV_ERR_IO;
}

int ptv_ice_link_send_segments(ptv_ice_link *l, const uint8_t *buf, size_t seg, size_t len,
                               int *via_gso) {
  if (via_gso)
    *via_gso = 0;
  if (!l || !buf || seg == 0 || seg > 65535 || len == 0)
    return PTV_ERR_INVALID_ARG;
  size_t n = (len + seg - 1) / seg;
  if (n > GSO_MAX_SEGS || len > 65000)
    return PTV_ERR_INVALID_ARG;
  if (l->state != PTV_ICE_CONNECTED || l->dead)
    return PTV_ERR_CLOSED;
  if (l->fast == FAST_UNKNOWN)
    fast_lookup(l);
  if (l->fast == FAST_UDP && (n == 1 || !l->gso_bad)) {
    int rv = fast_send(l, buf, seg, len, (int)n);
    if (rv != 0) {
      if (via_gso && rv > 1)
        *via_gso = 1;
      return rv;
    }
  }
  /* libnice, one datagram at a time */
  int sent = 0;
  for (size_t off = 0; off < len; off += seg) {
    size_t k = len - off < seg ? len - off : seg;
    int rv = ptv_ice_link_send(l, buf + off, k);
    if (rv != 0)
      return sent ? sent : rv;
    sent++;
  }
  return sent;
}

static const char *cand_type(NiceCandidateType t) {
  switch (t) {
  case NICE_CANDIDATE_TYPE_HOST: return "host";
  case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE: return "srflx";
  case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE: return "prflx";
  case NICE_CANDIDATE_TYPE_RELAYED: return "relay";
  default: return "?";
  }
}

static void fmt_addr(char *out, const NiceAddress *a) {
  char ip[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(a, ip);
  if (nice_address_ip_version(a) == 6)
    snprintf(out, NICE_ADDRESS_STRING_LEN + 10, "[%s]:%u", ip, nice_address_get_port(a));
  else
    snprintf(out, NICE_ADDRESS_STRING_LEN + 10, "%s:%u", ip, nice_address_get_port(a));
}

int ptv_ice_link_selected_pair(ptv_ice_link *l, char *desc, size_t desc_size) {
  NiceCandidate *lc = NULL, *rc = NULL;
  char la[NICE_ADDRESS_STRING_LEN + 10], ra[NICE_ADDRESS_STRING_LEN + 10];
  if (!l || !desc || desc_size == 0)
    return PTV_ERR_INVALID_ARG;
  if (!nice_agent_get_selected_pair(l->ice->agent[l->role], l->stream_id, COMPONENT, &lc, &rc) ||
      !lc || !rc)
    return PTV_ERR_NOT_FOUND;
  fmt_addr(la, &lc->addr);
  fmt_addr(ra, &rc->addr);
  int n = snprintf(desc, desc_size, "%s %s -> %s %s", cand_type(lc->type), la,
                   cand_type(rc->type), ra);
  return (n < 0 || (size_t)n >= desc_size) ? PTV_ERR_NOBUF : 0;
}
