/* ptv_uvglib.h -- drive a GLib main context from a libuv loop.
 *
 * A PeerTV process runs ONE event loop, libuv's. libnice (and GStreamer)
 * need a GMainContext iterated; instead of a second loop thread, this module
 * performs GLib's loop iteration (prepare, query, poll, check, dispatch; see
 * "Customizing the main loop iteration" in the GLib manual) with libuv
 * handles, so GLib callbacks run on the libuv thread, between libuv
 * callbacks, and need no locking against them.
 *
 * How one libuv iteration drives one GLib iteration:
 *
 *   uv_prepare (before libuv polls)
 *       g_main_context_prepare() + g_main_context_query() give the fds GLib
 *       wants polled, their events and a timeout. One uv_poll_t is kept per
 *       distinct fd: started for new fds, restarted when the events change,
 *       closed when the fd leaves the set. The timeout arms a uv_timer_t
 *       (only to bound libuv's poll; its callback does nothing); a timeout
 *       of 0, or a source already ready, starts a uv_idle_t so that libuv
 *       does not block at all. Time is refreshed first (uv_update_time) so
 *       the timer is not armed from a stale loop time.
 *   libuv polls; uv_poll callbacks only record revents per fd.
 *   uv_check (after libuv polls)
 *       copies the recorded revents into the GPollFD array that query
 *       filled, then g_main_context_check() and, if something is ready,
 *       g_main_context_dispatch(). GLib callbacks run here.
 *
 * The context is acquired (g_main_context_acquire) for the lifetime of the
 * integration, as prepare/query/check/dispatch require. Nobody else may
 * iterate it meanwhile (no g_main_loop_run, no g_main_context_iteration on
 * it), and only one ptv_uvglib may drive a given context.
 *
 * File descriptors GLib closes and reuses. GLib sources may close an fd and
 * a later socket may get the same number. Prepare therefore fstat()s each
 * fd it keeps polling (when its events change, in the 3 prepares after the
 * owner said fds changed (ptv_uvglib_fds_changed), and otherwise at most
 * every second, with the loop woken at least that often while fds are
 * polled: one fstat per fd per iteration was most of a peer's system
 * calls, and every 100 ms still 170 a second at 30 peers) and
 * compares (st_dev, st_ino) with what it saw
 * when polling started: a different file means the number was reused, so
 * the uv_poll is restarted (re-registered with epoll); EBADF means GLib
 * still lists a closed fd, so it gets G_IO_NVAL as poll(2) would report and
 * is not handed to libuv (libuv <= 1.44 aborts when epoll_ctl fails with
 * EBADF). libuv reports EPOLLERR (e.g. a queued ICMP error on a UDP socket)
 * as status UV_EBADF and stops that uv_poll; we turn that into G_IO_ERR for
 * GLib and restart the poll at the next prepare. uv_poll_init makes the fd
 * non-blocking; GLib's own fds (GSocket, wakeup eventfd) already are.
 * Regular files cannot be polled by epoll (EPERM): like poll(2), they are
 * reported always ready.
 *
 * Loop liveness. GLib always lists at least its own wakeup fd, so "GLib has
 * no more work" cannot be told apart from "GLib is idle". The integration
 * therefore behaves like a listening socket: while it is open, uv_run
 * (UV_RUN_DEFAULT) keeps running. Only the uv_prepare is referenced; the
 * check, idle, timer and poll handles are unreferenced, so
 * ptv_uvglib_keepalive(g, 0) makes the integration no longer keep the loop
 * alive (uv_run returns when the caller's own handles are done). uv_stop()
 * is safe at any point: prepare and check always run in the same libuv
 * iteration, and a check without a preceding prepare does nothing. To end
 * for good, call ptv_uvglib_close().
 *
 * Threading: everything here runs on the thread running uv_run. Other
 * threads may add sources to the context; GLib's wakeup fd then wakes the
 * libuv poll.
 *
 * Self-wakeups. GLib signals its wakeup fd whenever a source's fds are
 * added or removed, and a socket source (libnice's) removes and re-adds its
 * fd around every dispatch: two eventfd writes per datagram, and one more
 * loop iteration that only reads the eventfd (40% of a peer's wakeups). So
 * when the context is fresh at ptv_uvglib_init (GLib lists only its wakeup
 * fd) that fd is remembered and drained right after each dispatch: changes
 * made on our own thread are picked up by the next prepare anyway, which
 * runs before libuv blocks; a signal from another thread after the drain
 * still wakes the poll. ptv_uvglib_set_recursive removes the cause where it
 * is safe: GLib does not block a source marked can-recurse around its
 * dispatch, so the two writes, the drain and GLib's rebuilding of its poll
 * records go away (about 1,000 system calls a second at 10 peers). */
#ifndef PTV_UVGLIB_H
#define PTV_UVGLIB_H

#include <glib.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptv_uvglib ptv_uvglib;

/* Called once every handle of a closed integration has been released; `g`
 * may then be freed. */
typedef void (*ptv_uvglib_close_cb)(ptv_uvglib *g);

/* Called after each GLib dispatch (ptv_uvglib_set_after_dispatch). */
typedef void (*ptv_uvglib_after_cb)(void *arg);

/* Caller-allocated, like a libuv handle. Fields are private. */
struct ptv_uvglib {
  uv_loop_t *loop;
  GMainContext *ctx;
  uv_prepare_t prepare;
  uv_check_t check;
  uv_idle_t idle;
  uv_timer_t timer;
  GHashTable *polls;   /* fd -> struct ptv_uvglib_poll * */
  GPollFD *fds;        /* as filled by g_main_context_query() */
  gint fds_alloc;
  gint nfds;
  gint max_prio;
  unsigned gen;        /* prepare counter, marks fds still in GLib's set */
  int prepared;        /* prepare ran and check has not yet */
  int closing;
  int open_handles;    /* uv handles not yet through their close callback */
  int always_ready;    /* some fd cannot be polled and is always ready */
  int wake_fd;         /* GLib's own wakeup fd when known, else -1 */
  int recursive;       /* ptv_uvglib_set_recursive */
  int recheck;         /* prepares left that check every fd (ptv_uvglib_fds_changed) */
  guint scanned_id;    /* sources up to this id have been marked */
  gint scanned_nfds;   /* GLib's fd count at the last scan */
  ptv_uvglib_close_cb close_cb;
  ptv_uvglib_after_cb after_cb; /* ptv_uvglib_set_after_dispatch */
  void *after_arg;
};

/* Marks every source of the context (now and, checked when GLib's fd set
 * changes, later) can-recurse (g_source_set_can_recurse), so GLib does not
 * block each around its dispatch (see "Self-wakeups"). Only for a context
 * that no callback ever iterates from inside a dispatch: then no source can
 * be re-entered anyway. ptv_links' own context (libnice's sockets and
 * timers) is one. */
void ptv_uvglib_set_recursive(ptv_uvglib *g);

/* cb (NULL: none) runs right after every g_main_context_dispatch, in the
 * same libuv check callback, unless a GLib callback closed the
 * integration. For work that GLib callbacks make due and that is cheaper
 * done once per iteration than once per callback: ptv_links writes its
 * datagrams there, once for all those received in the pass. A libuv check
 * handle cannot do it: libuv runs check handles last-started first, so one
 * started after ptv_uvglib_init runs before the dispatch. */
void ptv_uvglib_set_after_dispatch(ptv_uvglib *g, ptv_uvglib_after_cb cb, void *arg);

/* The caller created or destroyed something that opens or closes fds GLib
 * polls (ptv_links: a libnice stream): the next 3 prepares check every fd
 * for reuse at once, not within the second. A number can only be reused
 * after a close, and one closed and reopened within one iteration never
 * leaves GLib's set, so nothing else tells. Cheap: call it freely. */
void ptv_uvglib_fds_changed(ptv_uvglib *g);

/* Starts driving `ctx` (NULL: g_main_context_default()) from `loop`.
 * Takes a reference on the context and acquires it.
 * Returns 0, or
 *   PTV_ERR_INVALID_ARG  g or loop is NULL;
 *   PTV_ERR_EXISTS       another thread owns the context;
 *   PTV_ERR_IO           a libuv handle could not be initialized. */
int ptv_uvglib_init(ptv_uvglib *g, uv_loop_t *loop, GMainContext *ctx);

/* on != 0 (the default after init): an open integration keeps uv_run
 * running. on == 0: it does not (see "Loop liveness" above). */
void ptv_uvglib_keepalive(ptv_uvglib *g, int on);

/* Stops driving the context and closes every libuv handle. Closing is
 * asynchronous: `done` (may be NULL) runs from a later libuv callback once
 * all handles are closed; the context is released and unreferenced just
 * before. GLib sources stay attached to the context; they are simply no
 * longer dispatched. Safe to call from inside a GLib callback dispatched by
 * this integration. Calling it twice is a no-op. */
void ptv_uvglib_close(ptv_uvglib *g, ptv_uvglib_close_cb done);

#ifdef __cplusplus
}
#endif
#endif
