/* ptv_uvglib.c -- drive a GLib main context from a libuv loop.
 * See ptv_uvglib.h for the design. */
#include "ptv_uvglib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ptv_err.h"

/* One per distinct fd GLib wants polled. */
typedef struct ptv_uvglib_poll {
  uv_poll_t h;
  ptv_uvglib *g;
  int fd;
  unsigned gen;    /* g->gen when GLib last listed this fd */
  gushort want;    /* GIOCondition GLib asked for in this prepare */
  gushort revents; /* GIOCondition seen since this prepare */
  int uv_events;   /* events the uv_poll is started with; 0: stopped */
  int has_handle;  /* uv_poll_init succeeded: must go through uv_close */
  int errored;     /* libuv stopped the poll after an error: restart it */
  int always;      /* not pollable by epoll (regular file): always ready */
  dev_t dev;       /* identity of the file polled, to detect fd reuse */
  ino_t ino;
  uint64_t checked; /* uv_now() of the last identity check */
} ptv_uvglib_poll;

/* An fd whose poll is unchanged is checked for reuse (fstat) at most this
 * often, unless the owner said fds changed: an fstat per fd per loop
 * iteration was 44% of a peer's system calls, every 100 ms 170 a second
 * at 30 peers. A number reused in between unannounced is found within
 * this time. */
#define REUSE_CHECK_MS 1000
#define RECHECK_PREPARES 3 /* after ptv_uvglib_fds_changed: libnice may close a
                              stream's sockets an iteration or two later */

#define G_IO_ANY_ERR (G_IO_ERR | G_IO_HUP | G_IO_NVAL)

static void maybe_done(ptv_uvglib *g) {
  if (!g->closing || g->open_handles > 0)
    return;
  g_main_context_release(g->ctx);
  g_main_context_unref(g->ctx);
  g->ctx = NULL;
  g_free(g->fds);
  g->fds = NULL;
  g_hash_table_destroy(g->polls);
  g->polls = NULL;
  if (g->close_cb)
    g->close_cb(g);
}

static void on_handle_closed(uv_handle_t *h) {
  ptv_uvglib *g = h->data;
  g->open_handles--;
  maybe_done(g);
}

static void on_poll_closed(uv_handle_t *h) {
  ptv_uvglib_poll *p = h->data;
  ptv_uvglib *g = p->g;
  g_free(p);
  g->open_handles--;
  maybe_done(g);
}

/* Removes an entry from the table owner's view and releases it. */
static void poll_release(ptv_uvglib_poll *p) {
  if (p->has_handle) {
    p->g->open_handles++;
    uv_close((uv_handle_t *)&p->h, on_poll_closed);
  } else {
    g_free(p);
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  ptv_uvglib_poll *p = h->data;
  if (status < 0) {
    /* EPOLLERR (libuv says UV_EBADF) or a real error; libuv has stopped
     * this poll. GLib's poll() would have said G_IO_ERR. */
    p->revents |= G_IO_ERR;
    p->errored = 1;
    p->uv_events = 0;
    return;
  }
  if (events & UV_READABLE)
    p->revents |= G_IO_IN;
  if (events & UV_WRITABLE)
    p->revents |= G_IO_OUT;
  if (events & UV_PRIORITIZED)
    p->revents |= G_IO_PRI;
  if (events & UV_DISCONNECT)
    p->revents |= G_IO_HUP;
}

static int to_uv_events(gushort want) {
  int ev = 0;
  if (want & G_IO_IN)
    ev |= UV_READABLE;
  if (want & G_IO_OUT)
    ev |= UV_WRITABLE;
  if (want & G_IO_PRI)
    ev |= UV_PRIORITIZED;
  /* epoll always reports errors, but libuv needs a non-empty set to poll. */
  if (ev == 0 && (want & (G_IO_ERR | G_IO_HUP)))
    ev = UV_DISCONNECT;
  return ev;
}

/* Brings one fd's uv_poll in line with what GLib asked for this time. */
static void poll_sync(ptv_uvglib *g, ptv_uvglib_poll *p) {
  struct stat st;
  int ev, err;
  uint64_t now = uv_now(g->loop);

  if (p->has_handle && !p->errored && to_uv_events(p->want) == p->uv_events &&
      !g->recheck && now - p->checked < REUSE_CHECK_MS)
    return; /* nothing to change, and checked recently */
  p->checked = now;
  if (fstat(p->fd, &st) != 0) {
    /* GLib still lists a closed fd: keep libuv away from it (epoll_ctl on
     * it would abort) and tell GLib what poll() would. */
    if (p->has_handle && p->uv_events)
      uv_poll_stop(&p->h);
    p->uv_events = 0;
    p->revents = G_IO_NVAL;
    g->always_ready = 1;
    return;
  }
  if (!p->has_handle && !p->always) {
    err = uv_poll_init(g->loop, &p->h, p->fd);
    if (err == UV_EPERM) {
      p->always = 1; /* regular file: poll(2) says always ready */
    } else if (err < 0) {
      g_warning("ptv_uvglib: cannot poll fd %d: %s", p->fd, uv_strerror(err));
      p->always = 1;
      p->want &= G_IO_ANY_ERR;
      p->revents = G_IO_ERR; /* tell the source rather than hang it */
      g->always_ready = 1;
      return;
    } else {
      p->has_handle = 1;
      p->h.data = p;
      uv_unref((uv_handle_t *)&p->h);
    }
  }
  if (p->always) {
    p->revents = p->want & (G_IO_IN | G_IO_OUT | G_IO_PRI);
    if (p->revents)
      g->always_ready = 1;
    return;
  }
  ev = to_uv_events(p->want);
  if (ev != p->uv_events || p->errored ||
      (p->uv_events && (st.st_dev != p->dev || st.st_ino != p->ino))) {
    /* uv_poll_start re-registers with epoll from scratch (it stops first),
     * which is also what a reused fd number needs. */
    if (ev)
      err = uv_poll_start(&p->h, ev, on_poll);
    else
      err = uv_poll_stop(&p->h);
    if (err < 0) {
      g_warning("ptv_uvglib: uv_poll_start(fd %d): %s", p->fd, uv_strerror(err));
      ev = 0;
    }
    p->uv_events = ev;
    p->errored = 0;
    p->dev = st.st_dev;
    p->ino = st.st_ino;
  }
}

/* Marks the sources attached since the last scan can-recurse. Source ids
 * are handed out in increasing order per context; a throw-away source
 * tells the newest one. */
static void recurse_scan(ptv_uvglib *g) {
  GSource *probe = g_idle_source_new();
  guint top = g_source_attach(probe, g->ctx);
  g_source_destroy(probe);
  g_source_unref(probe);
  for (guint id = g->scanned_id + 1; id < top; id++) {
    GSource *src = g_main_context_find_source_by_id(g->ctx, id);
    if (src && !g_source_is_destroyed(src))
      g_source_set_can_recurse(src, TRUE);
  }
  g->scanned_id = top;
}

void ptv_uvglib_set_recursive(ptv_uvglib *g) {
  g->recursive = 1;
  recurse_scan(g);
}

static void on_noop_timer(uv_timer_t *h) { (void)h; }
static void on_noop_idle(uv_idle_t *h) { (void)h; }

static void on_prepare(uv_prepare_t *h) {
  ptv_uvglib *g = h->data;
  GHashTableIter it;
  gpointer key, val;
  gint timeout = -1, n, i;
  gboolean ready;

  if (g->closing)
    return;
  /* libuv caches loop time at the start of the iteration; refresh it so the
   * timer below is not armed early from a stale clock. */
  uv_update_time(g->loop);
  ready = g_main_context_prepare(g->ctx, &g->max_prio);
  for (;;) {
    n = g_main_context_query(g->ctx, g->max_prio, &timeout, g->fds, g->fds_alloc);
    if (n <= g->fds_alloc)
      break;
    g->fds = g_renew(GPollFD, g->fds, n);
    g->fds_alloc = n;
  }
  g->nfds = n;
  g->prepared = 1;
  g->gen++;
  g->always_ready = 0;

  /* GLib may list one fd several times (several sources); merge them. */
  for (i = 0; i < n; i++) {
    ptv_uvglib_poll *p = g_hash_table_lookup(g->polls, GINT_TO_POINTER(g->fds[i].fd));
    if (!p) {
      p = g_new0(ptv_uvglib_poll, 1);
      p->g = g;
      p->fd = g->fds[i].fd;
      g_hash_table_insert(g->polls, GINT_TO_POINTER(p->fd), p);
      g->scanned_nfds = -1; /* a new fd: a new source */
    }
    if (p->gen != g->gen) {
      p->gen = g->gen;
      p->want = 0;
      p->revents = 0;
    }
    p->want |= g->fds[i].events;
  }
  if (g->recursive && n != g->scanned_nfds) {
    recurse_scan(g); /* sockets came or went: new sources */
    g->scanned_nfds = n;
  }
  g_hash_table_iter_init(&it, g->polls);
  while (g_hash_table_iter_next(&it, &key, &val)) {
    ptv_uvglib_poll *p = val;
    if (p->gen != g->gen) {
      /* Gone from GLib's set (the fd may already be closed: uv_close only
       * does an epoll DEL, whose failure libuv ignores). */
      g_hash_table_iter_remove(&it);
      poll_release(p);
    } else {
      poll_sync(g, p);
    }
  }

  if (g->recheck > 0)
    g->recheck--;
  if (ready || timeout == 0 || g->always_ready)
    uv_idle_start(&g->idle, on_noop_idle);
  else
    uv_idle_stop(&g->idle);
  /* Wake at least every REUSE_CHECK_MS while any fd is polled, so the
   * deferred reuse checks in poll_sync happen even if nothing else stirs. */
  if (g_hash_table_size(g->polls) > 0 && (timeout < 0 || timeout > REUSE_CHECK_MS))
    timeout = REUSE_CHECK_MS;
  if (timeout > 0)
    uv_timer_start(&g->timer, on_noop_timer, (uint64_t)timeout, 0);
  else
    uv_timer_stop(&g->timer);
}

static void on_check(uv_check_t *h) {
  ptv_uvglib *g = h->data;
  gint i;

  /* Started mid-iteration, or closed: no prepare to pair with. */
  if (!g->prepared || g->closing)
    return;
  g->prepared = 0;
  for (i = 0; i < g->nfds; i++) {
    GPollFD *f = &g->fds[i];
    ptv_uvglib_poll *p = g_hash_table_lookup(g->polls, GINT_TO_POINTER(f->fd));
    f->revents = p ? (gushort)(p->revents & (f->events | G_IO_ANY_ERR)) : 0;
  }
  if (g_main_context_check(g->ctx, g->max_prio, g->fds, g->nfds)) {
    g_main_context_dispatch(g->ctx);
    /* see "Self-wakeups" in the header (recursive: rare, left to GLib) */
    if (g->wake_fd >= 0 && !g->recursive) {
      uint64_t v;
      while (read(g->wake_fd, &v, sizeof(v)) > 0) {
      }
    }
    if (g->after_cb && !g->closing)
      g->after_cb(g->after_arg);
  }
  /* `g` is still valid even if a callback closed it: it is freed only after
   * the close callbacks, which run later in this iteration. */
}

void ptv_uvglib_fds_changed(ptv_uvglib *g) { g->recheck = RECHECK_PREPARES; }

void ptv_uvglib_set_after_dispatch(ptv_uvglib *g, ptv_uvglib_after_cb cb, void *arg) {
  g->after_cb = cb;
  g->after_arg = arg;
}

int ptv_uvglib_init(ptv_uvglib *g, uv_loop_t *loop, GMainContext *ctx) {
  if (!g || !loop)
    return PTV_ERR_INVALID_ARG;
  memset(g, 0, sizeof(*g));
  if (!ctx)
    ctx = g_main_context_default();
  if (!g_main_context_acquire(ctx))
    return PTV_ERR_EXISTS;
  g->loop = loop;
  g->ctx = g_main_context_ref(ctx);
  {
    /* A fresh context lists one fd, its wakeup eventfd: remember it. */
    GPollFD f[2];
    gint timeout, n = g_main_context_query(ctx, G_MAXINT, &timeout, f, 2);
    g->wake_fd = n == 1 ? f[0].fd : -1;
  }
  g->polls = g_hash_table_new(g_direct_hash, g_direct_equal);
  if (uv_prepare_init(loop, &g->prepare) || uv_check_init(loop, &g->check) ||
      uv_idle_init(loop, &g->idle) || uv_timer_init(loop, &g->timer)) {
    /* Cannot happen on Unix (these only link the handle into the loop), and
     * a half-initialized set of handles could not be closed safely. */
    abort();
  }
  g->open_handles = 4;
  g->prepare.data = g->check.data = g->idle.data = g->timer.data = g;
  uv_prepare_start(&g->prepare, on_prepare);
  uv_check_start(&g->check, on_check);
  /* Only the prepare keeps the loop alive; see "Loop liveness". */
  uv_unref((uv_handle_t *)&g->check);
  uv_unref((uv_handle_t *)&g->idle);
  uv_unref((uv_handle_t *)&g->timer);
  return 0;
}

void ptv_uvglib_keepalive(ptv_uvglib *g, int on) {
  if (on)
    uv_ref((uv_handle_t *)&g->prepare);
  else
    uv_unref((uv_handle_t *)&g->prepare);
}

void ptv_uvglib_close(ptv_uvglib *g, ptv_uvglib_close_cb done) {
  GHashTableIter it;
  gpointer key, val;

  if (g->closing)
    return;
  g->closing = 1;
  g->prepared = 0;
  g->close_cb = done;
  uv_close((uv_handle_t *)&g->prepare, on_handle_closed);
  uv_close((uv_handle_t *)&g->check, on_handle_closed);
  uv_close((uv_handle_t *)&g->idle, on_handle_closed);
  uv_close((uv_handle_t *)&g->timer, on_handle_closed);
  g_hash_table_iter_init(&it, g->polls);
  while (g_hash_table_iter_next(&it, &key, &val)) {
    g_hash_table_iter_steal(&it);
    poll_release(val);
  }
}
