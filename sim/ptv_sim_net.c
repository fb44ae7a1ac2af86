/* ptv_sim_net.c -- flow-level network model: incremental max-min fairness.
 *
 * Every node owns two links, its uplink (index 2n) and its downlink (2n+1).
 * A flow crosses exactly one uplink and one downlink, so the constraint graph
 * is bipartite. Each link keeps an intrusive doubly-linked list of its flows
 * (indices into a slot array), so a flow costs no allocation once the arrays
 * have grown to the working-set size.
 *
 * Binding links. A link is a constraint only if its flows could ever exceed
 * it: its `reach`, the sum of the capacities at the far ends of its flows, is
 * above its own capacity. A link with reach <= cap can never be over-used, so
 * dropping it from the constraint set leaves the (unique) max-min allocation
 * unchanged. This is what keeps components small: an 8 Mbps downlink fed by a
 * few 1 Mbps uplinks is slack and does not glue its senders together. Links
 * at or above PTV_NET_UNLIMITED are never constraints. A flow with no binding
 * link runs at the smaller of its two capacities. Caps cannot change while a
 * node has flows, so `reach` is kept up to date on link/unlink alone.
 *
 * A change (start, completion, node reset) re-rates only the connected
 * component of binding links reachable from the links it touched: BFS over
 * links through their flows, expanding only binding links. Membership is a
 * sparse set (an element is in the component iff its `local` index points
 * back at it), so nothing proportional to the network is cleared per change.
 * Within the component, progressive filling uses a binary min-heap of links
 * keyed by fair share (remaining capacity / unfrozen flows). Freezing a flow
 * at the current minimum share s can only raise the share of the other link
 * it crosses ((r - s)/(n - 1) >= r/n when s <= r/n), so stale heap entries
 * are skipped lazily instead of decreasing keys. Cost per change, for a
 * component of L links and F flows: O(L + F) for the BFS plus
 * O((L + F) log(L + F)) for the filling.
 *
 * Completion order is a binary min-heap of (completion time, start sequence)
 * with lazy invalidation: each flow has a version bumped whenever its rate
 * changes or it ends, and entries carrying an older version are dropped when
 * they surface. The heap is compacted when stale entries dominate.
 */
#include "ptv_sim_net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"

#define NONE UINT32_MAX
/* Handle generations use 31 bits so a handle is always >= 0. */
#define GEN_MASK 0x7fffffffu

typedef struct {
  double cap;     /* bits/s, clamped to PTV_NET_UNLIMITED */
  double reach;   /* sum of the far-end capacities of this link's flows */
  uint32_t head;  /* first flow on this link, NONE if empty */
  uint32_t local; /* index in net->clinks while in the component */
} net_link;

typedef struct {
  double remaining; /* bytes left as of `last` */
  double rate;      /* bits/s; -1 until first rated */
  double nrate;     /* scratch: rate being computed, < 0 while unfrozen */
  ptv_tstamp last;  /* time `remaining` refers to */
  ptv_tstamp done;  /* completion time, PTV_TSTAMP_MAX if rate is 0 */
  uint64_t seq;     /* start order, breaks completion ties */
  void *user;
  uint32_t src, dst;         /* nodes; src == NONE marks a free slot */
  uint32_t up_prev, up_next; /* uplink list; up_next links the free list */
  uint32_t dn_prev, dn_next; /* downlink list */
  uint32_t gen;              /* handle generation, bumped on free */
  uint32_t ver;              /* completion-heap version */
  uint32_t local;            /* index in net->cflows while in the component */
} net_flow;

typedef struct {
  ptv_tstamp done;
  uint64_t seq;
  uint32_t slot;
  uint32_t ver;
} net_event;

typedef struct {
  double share;
  uint32_t local;
  uint32_t cnt; /* the link's unfrozen count when pushed: its version */
} net_fill;

/* Progressive-filling state of one component link. */
typedef struct {
  double rem;   /* capacity not yet handed out */
  uint32_t cnt; /* flows not yet frozen (0 for a non-binding seed link) */
} net_lstate;

struct ptv_net {
  uint32_t max_nodes;
  net_link *links;  /* 2 * max_nodes */
  double *bytes_up; /* max_nodes */

  net_flow *flows;
  uint32_t nslots, slots_cap, free_head, nflows;
  uint64_t next_seq;

  net_event *ev; /* completion heap */
  size_t nev, ev_cap;

  /* Component scratch, reused across changes. */
  uint32_t *clinks; /* links of the component, BFS order */
  size_t nclinks, clinks_cap;
  net_lstate *lst; /* per component link, same index as clinks */
  size_t lst_cap;
  uint32_t *cflows; /* flows of the component */
  size_t ncflows, cflows_cap;
  net_fill *fill; /* progressive-filling heap */
  size_t fill_cap;
  void **users; /* node_reset: user pointers for the callbacks */
  size_t users_cap;
};

/* ---- small helpers ------------------------------------------------------ */

/* Grows *p to hold at least `need` elements (doubling). */
static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  size_t n;
  void *q;
  if (need <= *cap) return 0;
  n = *cap ? *cap : 16;
  while (n < need) n *= 2;
  q = realloc(*p, n * elem);
  if (!q) return PTV_ERR_NOMEM;
  *p = q;
  *cap = n;
  return 0;
}

static uint32_t up_link(uint32_t node) { return 2 * node; }
static uint32_t dn_link(uint32_t node) { return 2 * node + 1; }

/* Can this link's flows ever exceed it? Only then is it a constraint. */
static int is_binding(const net_link *l) {
  return l->cap < PTV_NET_UNLIMITED && l->reach > l->cap;
}

/* ---- completion heap ---------------------------------------------------- */

static int ev_less(const net_event *a, const net_event *b) {
  if (a->done != b->done) return a->done < b->done;
  return a->seq < b->seq;
}

static void ev_sift_up(net_event *h, size_t i) {
  net_event e = h[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!ev_less(&e, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = e;
}

static void ev_sift_down(net_event *h, size_t n, size_t i) {
  net_event e = h[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && ev_less(&h[c + 1], &h[c])) c++;
    if (!ev_less(&h[c], &e)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = e;
}

static int ev_valid(const ptv_net *net, const net_event *e) {
  const net_flow *f = &net->flows[e->slot];
  return f->src != NONE && f->ver == e->ver;
}

static void ev_pop(ptv_net *net) {
  net->ev[0] = net->ev[--net->nev];
  if (net->nev > 0) ev_sift_down(net->ev, net->nev, 0);
}

/* Drops stale entries and re-heapifies in O(n). */
static void ev_compact(ptv_net *net) {
  size_t i, n = 0;
  for (i = 0; i < net->nev; i++)
    if (ev_valid(net, &net->ev[i])) net->ev[n++] = net->ev[i];
  net->nev = n;
  for (i = n / 2; i-- > 0;) ev_sift_down(net->ev, n, i);
}

/* Makes room for n pushes, so re-scheduling a component cannot fail
 * half-way. Compaction runs only when stale entries outnumber live flows by
 * a margin, which keeps it amortised O(1) per push. */
static int ev_reserve(ptv_net *net, size_t n) {
  if (net->nev > 2 * (size_t)net->nflows + 64) ev_compact(net);
  return grow((void **)&net->ev, &net->ev_cap, net->nev + n, sizeof(*net->ev));
}

/* Caller has reserved room with ev_reserve. */
static void ev_push(ptv_net *net, const net_flow *f, uint32_t slot) {
  net_event e;
  e.done = f->done;
  e.seq = f->seq;
  e.slot = slot;
  e.ver = f->ver;
  net->ev[net->nev] = e;
  ev_sift_up(net->ev, net->nev++);
}

/* ---- flow state --------------------------------------------------------- */

/* Moves a flow's progress forward to t at its current rate. Never goes back
 * in time: a flow last rated after t keeps its state. */
static void flow_advance(ptv_net *net, net_flow *f, ptv_tstamp t) {
  if (t <= f->last) return;
  if (f->rate > 0) {
    double d = f->rate * (double)(t - f->last) / 8e6;
    /* At or past its (rounded-up) completion time the flow is done; float
     * residue must not push it a microsecond later when it is re-rated. */
    if (d > f->remaining || t >= f->done) d = f->remaining;
    f->remaining -= d;
    net->bytes_up[f->src] += d;
  }
  f->last = t;
}

/* Sets the completion time from (last, remaining, rate) and queues it. */
static void flow_schedule(ptv_net *net, net_flow *f, uint32_t slot) {
  double us, slack;
  f->ver++;
  if (!(f->rate > 0)) {
    f->done = PTV_TSTAMP_MAX;
    return;
  }
  /* Round up so a flow is never delivered early. The slack (relative, at
   * most 1e-6 us) absorbs float noise in exact cases: 125000 B at 5/9 Mbps
   * must be 1.8 s, not 1.8 s + 1 us. */
  us = f->remaining * 8e6 / f->rate;
  slack = us * 1e-12;
  us = ceil(us - (slack < 1e-6 ? slack : 1e-6));
  if (us < 0) us = 0;
  if (us >= (double)(PTV_TSTAMP_MAX - 1 - f->last))
    f->done = PTV_TSTAMP_MAX - 1; /* absurdly far, but still finite */
  else
    f->done = f->last + (ptv_tstamp)us;
  ev_push(net, f, slot);
}

static void flow_link(ptv_net *net, uint32_t slot) {
  net_flow *f = &net->flows[slot];
  net_link *u = &net->links[up_link(f->src)];
  net_link *d = &net->links[dn_link(f->dst)];
  f->up_prev = NONE;
  f->up_next = u->head;
  if (u->head != NONE) net->flows[u->head].up_prev = slot;
  u->head = slot;
  u->reach += d->cap;
  f->dn_prev = NONE;
  f->dn_next = d->head;
  if (d->head != NONE) net->flows[d->head].dn_prev = slot;
  d->head = slot;
  d->reach += u->cap;
}

static void flow_unlink(ptv_net *net, uint32_t slot) {
  net_flow *f = &net->flows[slot];
  net_link *u = &net->links[up_link(f->src)];
  net_link *d = &net->links[dn_link(f->dst)];
  if (f->up_prev != NONE) net->flows[f->up_prev].up_next = f->up_next;
  else u->head = f->up_next;
  if (f->up_next != NONE) net->flows[f->up_next].up_prev = f->up_prev;
  /* Reset an empty link's reach exactly, so float residue cannot build up. */
  u->reach = u->head == NONE ? 0 : u->reach - d->cap;
  if (f->dn_prev != NONE) net->flows[f->dn_prev].dn_next = f->dn_next;
  else d->head = f->dn_next;
  if (f->dn_next != NONE) net->flows[f->dn_next].dn_prev = f->dn_prev;
  d->reach = d->head == NONE ? 0 : d->reach - u->cap;
}

/* Returns the slot to the free list; bumping gen and ver invalidates the
 * handle and any heap entries still pointing at the slot. */
static void flow_free(ptv_net *net, uint32_t slot) {
  net_flow *f = &net->flows[slot];
  f->src = NONE;
  f->user = NULL;
  f->gen = (f->gen + 1) & GEN_MASK;
  f->ver++;
  f->up_next = net->free_head;
  net->free_head = slot;
  net->nflows--;
}

static int flow_alloc(ptv_net *net, uint32_t *slot) {
  if (net->free_head != NONE) {
    *slot = net->free_head;
    net->free_head = net->flows[*slot].up_next;
    return 0;
  }
  if (net->nslots == NONE - 1) return PTV_ERR_NOMEM;
  if (net->nslots == net->slots_cap) {
    size_t cap = net->slots_cap;
    if (grow((void **)&net->flows, &cap, (size_t)net->nslots + 1,
             sizeof(*net->flows)))
      return PTV_ERR_NOMEM;
    net->slots_cap = cap > NONE - 1 ? NONE - 1 : (uint32_t)cap;
  }
  *slot = net->nslots++;
  memset(&net->flows[*slot], 0, sizeof(net->flows[*slot]));
  net->flows[*slot].src = NONE;
  return 0;
}

static const net_flow *flow_get(const ptv_net *net, int64_t h) {
  uint32_t slot;
  const net_flow *f;
  if (h < 0) return NULL;
  slot = (uint32_t)((uint64_t)h & 0xffffffffu);
  if (slot >= net->nslots) return NULL;
  f = &net->flows[slot];
  if (f->src == NONE || f->gen != (uint32_t)((uint64_t)h >> 32)) return NULL;
  return f;
}

/* ---- component re-rating ------------------------------------------------ */

static void comp_begin(ptv_net *net) {
  net->nclinks = 0;
  net->ncflows = 0;
}

static int comp_has_link(const ptv_net *net, uint32_t li) {
  uint32_t k = net->links[li].local;
  return k < net->nclinks && net->clinks[k] == li;
}

/* Adds a link to be expanded (a seed, or a binding link found by the BFS). */
static int comp_add_link(ptv_net *net, uint32_t li) {
  if (comp_has_link(net, li)) return 0;
  if (grow((void **)&net->clinks, &net->clinks_cap, net->nclinks + 1,
           sizeof(*net->clinks)))
    return PTV_ERR_NOMEM;
  net->links[li].local = (uint32_t)net->nclinks;
  net->clinks[net->nclinks++] = li;
  return 0;
}

static int comp_add_flow(ptv_net *net, uint32_t slot) {
  net_flow *f = &net->flows[slot];
  if (f->local < net->ncflows && net->cflows[f->local] == slot) return 0;
  if (grow((void **)&net->cflows, &net->cflows_cap, net->ncflows + 1,
           sizeof(*net->cflows)))
    return PTV_ERR_NOMEM;
  f->local = (uint32_t)net->ncflows;
  f->nrate = -1;
  net->cflows[net->ncflows++] = slot;
  return 0;
}

/* BFS from the seeded links: every flow on an expanded link joins, and so
 * does the link at its other end if that one is binding. Also sets up each
 * link's filling state. */
static int comp_expand(ptv_net *net) {
  size_t i;
  int rv;
  for (i = 0; i < net->nclinks; i++) {
    uint32_t li = net->clinks[i];
    const net_link *l = &net->links[li];
    int up = (li & 1) == 0;
    uint32_t s = l->head, cnt = 0;
    while (s != NONE) {
      const net_flow *f = &net->flows[s];
      uint32_t other = up ? dn_link(f->dst) : up_link(f->src);
      uint32_t next = up ? f->up_next : f->dn_next;
      if ((rv = comp_add_flow(net, s)) != 0) return rv;
      if (is_binding(&net->links[other]) &&
          (rv = comp_add_link(net, other)) != 0)
        return rv;
      cnt++;
      s = next;
    }
    if (grow((void **)&net->lst, &net->lst_cap, i + 1, sizeof(*net->lst)))
      return PTV_ERR_NOMEM;
    net->lst[i].rem = l->cap;
    /* A seed that is not binding takes no part in the filling. */
    net->lst[i].cnt = is_binding(l) ? cnt : 0;
  }
  return 0;
}

static int fill_less(const net_fill *a, const net_fill *b) {
  if (a->share != b->share) return a->share < b->share;
  return a->local < b->local;
}

static void fill_sift_down(net_fill *h, size_t n, size_t i) {
  net_fill e = h[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && fill_less(&h[c + 1], &h[c])) c++;
    if (!fill_less(&h[c], &e)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = e;
}

static void fill_sift_up(net_fill *h, size_t i) {
  net_fill e = h[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!fill_less(&e, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = e;
}

static double share_of(double rem, uint32_t cnt) {
  double s = rem / (double)cnt;
  return s > 0 ? s : 0;
}

/* Progressive filling over the component's binding links; leaves each
 * flow's nrate set, or < 0 for a flow that crosses no binding link. */
static int comp_fill(ptv_net *net) {
  size_t i, n = 0, nl = net->nclinks;
  net_lstate *st = net->lst;
  /* Each link enters once, plus at most one push per frozen flow. */
  if (grow((void **)&net->fill, &net->fill_cap, nl + net->ncflows,
           sizeof(*net->fill)))
    return PTV_ERR_NOMEM;

  for (i = 0; i < nl; i++) {
    if (st[i].cnt == 0) continue;
    net->fill[n].share = share_of(st[i].rem, st[i].cnt);
    net->fill[n].local = (uint32_t)i;
    net->fill[n].cnt = st[i].cnt;
    n++;
  }
  for (i = n / 2; i-- > 0;) fill_sift_down(net->fill, n, i);

  while (n > 0) {
    net_fill top = net->fill[0];
    uint32_t li, s;
    int up;
    double share;
    net->fill[0] = net->fill[--n];
    if (n > 0) fill_sift_down(net->fill, n, 0);
    /* Every update of a link lowers its count and pushes a fresh entry, so
     * an entry is current iff the counts match (0: already saturated). */
    if (st[top.local].cnt != top.cnt) continue;
    share = share_of(st[top.local].rem, st[top.local].cnt);

    /* This link is the bottleneck of all its unfrozen flows. */
    li = net->clinks[top.local];
    up = (li & 1) == 0;
    for (s = net->links[li].head; s != NONE;) {
      net_flow *f = &net->flows[s];
      uint32_t next = up ? f->up_next : f->dn_next;
      if (f->nrate < 0) {
        const net_link *o =
            &net->links[up ? dn_link(f->dst) : up_link(f->src)];
        f->nrate = share;
        /* A binding far end is in the component (the BFS put it there). */
        if (is_binding(o)) {
          net_lstate *os = &st[o->local];
          os->rem -= share;
          if (--os->cnt > 0) {
            net->fill[n].share = share_of(os->rem, os->cnt);
            net->fill[n].local = o->local;
            net->fill[n].cnt = os->cnt;
            fill_sift_up(net->fill, n++);
          }
        }
      }
      s = next;
    }
    st[top.local].cnt = 0;
    st[top.local].rem = 0;
  }
  return 0;
}

/* Expands the seeded component, recomputes its rates and re-schedules every
 * flow whose rate changed, after advancing it to t at its old rate. All
 * allocation happens before the first flow is touched, so on PTV_ERR_NOMEM
 * every flow still has a consistent (if no longer max-min) rate. */
static int comp_run(ptv_net *net, ptv_tstamp t) {
  size_t i;
  int rv;
  if ((rv = comp_expand(net)) != 0 || (rv = comp_fill(net)) != 0 ||
      (rv = ev_reserve(net, net->ncflows)) != 0)
    return rv;
  for (i = 0; i < net->ncflows; i++) {
    uint32_t slot = net->cflows[i];
    net_flow *f = &net->flows[slot];
    double r = f->nrate;
    if (r < 0) {
      /* No binding link: the flow gets all that both ends can carry. */
      double cu = net->links[up_link(f->src)].cap;
      double cd = net->links[dn_link(f->dst)].cap;
      r = cu < cd ? cu : cd;
    }
    /* An unchanged rate keeps its progress and heap entry as they are. */
    if (r == f->rate) continue;
    flow_advance(net, f, t);
    f->rate = r;
    flow_schedule(net, f, slot);
  }
  return 0;
}

/* ---- public API --------------------------------------------------------- */

ptv_net *ptv_net_new(uint32_t max_nodes) {
  ptv_net *net;
  size_t nl, i;
  if (max_nodes > GEN_MASK) return NULL; /* link indices must fit uint32 */
  net = calloc(1, sizeof(*net));
  if (!net) return NULL;
  net->max_nodes = max_nodes;
  nl = 2 * (size_t)max_nodes;
  net->links = malloc((nl ? nl : 1) * sizeof(*net->links));
  net->bytes_up = calloc(max_nodes ? max_nodes : 1, sizeof(*net->bytes_up));
  if (!net->links || !net->bytes_up) {
    ptv_net_free(net);
    return NULL;
  }
  for (i = 0; i < nl; i++) {
    net->links[i].cap = PTV_NET_UNLIMITED;
    net->links[i].reach = 0;
    net->links[i].head = NONE;
    net->links[i].local = NONE;
  }
  net->free_head = NONE;
  return net;
}

void ptv_net_free(ptv_net *net) {
  if (!net) return;
  free(net->links);
  free(net->bytes_up);
  free(net->flows);
  free(net->ev);
  free(net->clinks);
  free(net->lst);
  free(net->cflows);
  free(net->fill);
  free(net->users);
  free(net);
}

int ptv_net_set_caps(ptv_net *net, uint32_t node, double up_bps,
                     double down_bps) {
  net_link *u, *d;
  /* !(x >= 0) also rejects NaN. */
  if (!net || node >= net->max_nodes || !(up_bps >= 0) || !(down_bps >= 0))
    return PTV_ERR_INVALID_ARG;
  u = &net->links[up_link(node)];
  d = &net->links[dn_link(node)];
  /* There is no `now` to settle running flows, and the far ends' reach
   * includes these caps. */
  if (u->head != NONE || d->head != NONE) return PTV_ERR_INVALID_ARG;
  u->cap = up_bps < PTV_NET_UNLIMITED ? up_bps : PTV_NET_UNLIMITED;
  d->cap = down_bps < PTV_NET_UNLIMITED ? down_bps : PTV_NET_UNLIMITED;
  return 0;
}

int64_t ptv_net_flow_start(ptv_net *net, uint32_t src, uint32_t dst,
                           double bytes, ptv_tstamp now, void *user) {
  uint32_t slot;
  net_flow *f;
  int rv;
  if (!net || src >= net->max_nodes || dst >= net->max_nodes ||
      !(bytes >= 0) || !isfinite(bytes))
    return PTV_ERR_INVALID_ARG;
  /* Reserve the seeds' scratch first so a failure leaves no trace (and so
   * pop_completed, which seeds two links, never needs to allocate). */
  if (grow((void **)&net->clinks, &net->clinks_cap, 2, sizeof(*net->clinks)) ||
      grow((void **)&net->cflows, &net->cflows_cap, 1, sizeof(*net->cflows)))
    return PTV_ERR_NOMEM;
  if ((rv = flow_alloc(net, &slot)) != 0) return rv;
  f = &net->flows[slot];
  f->remaining = bytes;
  f->rate = -1; /* differs from any computed rate, so it gets scheduled */
  f->last = now;
  f->done = PTV_TSTAMP_MAX;
  f->seq = net->next_seq++;
  f->user = user;
  f->src = src;
  f->dst = dst;
  f->local = NONE;
  flow_link(net, slot);
  net->nflows++;

  /* Reach only grew, so only these two links can have become binding; a
   * link that is not binding cannot couple the new flow to anything. */
  comp_begin(net);
  (void)comp_add_flow(net, slot);
  if (is_binding(&net->links[up_link(src)]))
    (void)comp_add_link(net, up_link(src));
  if (is_binding(&net->links[dn_link(dst)]))
    (void)comp_add_link(net, dn_link(dst));
  if ((rv = comp_run(net, now)) != 0) {
    /* Nothing was re-rated yet: take the flow back out. */
    flow_unlink(net, slot);
    flow_free(net, slot);
    return rv;
  }
  return (int64_t)(((uint64_t)f->gen << 32) | slot);
}

ptv_tstamp ptv_net_next_completion(ptv_net *net) {
  if (!net) return PTV_TSTAMP_MAX;
  while (net->nev > 0 && !ev_valid(net, &net->ev[0])) ev_pop(net);
  return net->nev > 0 ? net->ev[0].done : PTV_TSTAMP_MAX;
}

int ptv_net_pop_completed(ptv_net *net, ptv_tstamp now, void **user) {
  uint32_t slot, ul, dl;
  int ub, db;
  net_flow *f;
  ptv_tstamp t;
  void *u;
  if (!net || ptv_net_next_completion(net) > now || net->nev == 0) return 0;
  slot = net->ev[0].slot;
  ev_pop(net);
  f = &net->flows[slot];
  t = f->done;
  /* Account what the flow carried; any float residue counts as delivered. */
  flow_advance(net, f, t);
  if (f->remaining > 0) net->bytes_up[f->src] += f->remaining;
  f->remaining = 0;
  u = f->user;
  ul = up_link(f->src);
  dl = dn_link(f->dst);
  /* A link that constrained the flow constrained its neighbours too; it must
   * be expanded even if losing this flow made it slack. */
  ub = is_binding(&net->links[ul]);
  db = is_binding(&net->links[dl]);
  flow_unlink(net, slot);
  flow_free(net, slot);

  comp_begin(net);
  if (ub) (void)comp_add_link(net, ul); /* room reserved by flow_start */
  if (db) (void)comp_add_link(net, dl);
  /* The others sped up at the true completion time, not at `now`. Out of
   * memory here only leaves the component's old rates in place. */
  (void)comp_run(net, t);
  if (user) *user = u;
  return 1;
}

int ptv_net_node_reset(ptv_net *net, uint32_t node, ptv_tstamp now,
                       void (*cb)(void *arg, void *user), void *arg) {
  size_t n = 0, i, most = 0;
  uint32_t s;
  int k;
  if (!net || node >= net->max_nodes) return PTV_ERR_INVALID_ARG;
  /* Reserve room for every user pointer and far-end link up front. */
  for (s = net->links[up_link(node)].head; s != NONE; s = net->flows[s].up_next)
    most++;
  for (s = net->links[dn_link(node)].head; s != NONE; s = net->flows[s].dn_next)
    most++;
  if (grow((void **)&net->users, &net->users_cap, most, sizeof(*net->users)) ||
      grow((void **)&net->clinks, &net->clinks_cap, most, sizeof(*net->clinks)))
    return PTV_ERR_NOMEM;
  comp_begin(net);
  for (k = 0; k < 2; k++) {
    net_link *l = &net->links[k == 0 ? up_link(node) : dn_link(node)];
    while (l->head != NONE) {
      uint32_t slot = l->head;
      net_flow *f = &net->flows[slot];
      uint32_t far = k == 0 ? dn_link(f->dst) : up_link(f->src);
      /* Reach only shrinks during the reset, so a far end is binding at its
       * first encounter iff it was binding before: then its other flows were
       * coupled through it and need re-rating. */
      if (far != up_link(node) && far != dn_link(node) &&
          is_binding(&net->links[far]))
        (void)comp_add_link(net, far);
      net->users[n++] = f->user;
      flow_advance(net, f, now);
      flow_unlink(net, slot);
      flow_free(net, slot);
    }
  }
  (void)comp_run(net, now); /* on NOMEM the far ends keep their old rates */
  /* Callbacks last, once the model is consistent again. */
  if (cb)
    for (i = 0; i < n; i++) cb(arg, net->users[i]);
  return (int)n;
}

double ptv_net_flow_rate(const ptv_net *net, int64_t flow) {
  const net_flow *f = net ? flow_get(net, flow) : NULL;
  return f ? f->rate : (double)PTV_ERR_NOT_FOUND;
}

uint32_t ptv_net_nflows(const ptv_net *net) { return net ? net->nflows : 0; }

double ptv_net_bytes_up(const ptv_net *net, uint32_t node) {
  if (!net || node >= net->max_nodes) return 0;
  return net->bytes_up[node];
}
