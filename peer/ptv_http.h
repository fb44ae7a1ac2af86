/* ptv_http.h -- a small HTTP/1.1 server driven by the process's libuv loop.
 *
 * PeerTV processes have one libuv loop and no extra threads, yet need to
 * serve a few local HTTP endpoints: JSON status pages, Prometheus metrics
 * and a live MPEG-TS stream to any number of local players. This module
 * runs libmicrohttpd (MHD) in "external" epoll mode: one uv_poll_t watches
 * MHD's epoll fd and one uv_timer_t is armed from MHD_get_timeout(); MHD_run()
 * is called when either fires.
 *
 * Routing is by exact path for GET and HEAD; the query string is ignored
 * for routing but can be read by the handler. Unknown paths get 404, other
 * methods 405.
 *
 * A handler either fills a reply (status, content type, body) or turns it
 * into a stream: the response is then sent with chunked encoding (HTTP/1.1
 * clients) or without a length and closed at the end (HTTP/1.0), from data
 * the application pushes later with ptv_http_stream_write(). Each stream has
 * a bounded queue so one slow player cannot eat the process's memory; a
 * stream whose queue is empty is suspended inside MHD, so nothing polls.
 *
 * Every function must be called from the loop's thread. Functions that
 * return int return 0 on success or a negative PTV_ERR_* code (ptv_err.h).
 */
#ifndef PTV_HTTP_H
#define PTV_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptv_http ptv_http;
typedef struct ptv_http_stream ptv_http_stream;

/* What a handler fills. The library creates it; handlers only set the two
 * public fields and call the ptv_http_reply_* functions on it. It is valid
 * only during the handler call. */
typedef struct ptv_http_reply {
  int status;               /* HTTP status; 200 unless set. Outside
                               100..599 the client gets 500. */
  const char *content_type; /* "text/plain; charset=utf-8" unless set; must
                               stay valid until the handler returns (it is
                               copied then). NULL sends no Content-Type. */
} ptv_http_reply;

/* Handles one GET or HEAD request on a routed path. Runs on the loop
 * thread, inside MHD_run(); it must not block. For HEAD the handler runs as
 * for GET and the library drops the body (ptv_http_reply_is_head() lets it
 * skip expensive work). */
typedef void (*ptv_http_handler)(ptv_http_reply *reply, void *user);

/* Called once when a stream's connection ends before the application
 * closed the stream: the client went away, the connection timed out or
 * failed, or the server is stopping. From then on ptv_http_stream_write()
 * returns PTV_ERR_CLOSED; the handle stays valid until the application
 * calls ptv_http_stream_close() (or _abort()), which it must do once,
 * possibly from inside this callback. */
typedef void (*ptv_http_stream_close_cb)(ptv_http_stream *s, void *user);

/* Receives MHD's (and this module's) error messages, one line without the
 * trailing newline. */
typedef void (*ptv_http_log_cb)(void *user, const char *msg);

/* Server settings. Zero fields take the default shown. */
typedef struct ptv_http_config {
  unsigned conn_limit;     /* total connections, default 64 */
  unsigned per_ip_limit;   /* connections from one client address, default
                              16; beyond it MHD closes new connections right
                              after accept(), without an HTTP answer */
  unsigned conn_timeout_s; /* idle connection timeout, default 30 s; a stream
                              waiting for application data is not idle */
  size_t max_header_bytes; /* request line + headers, default 8 KiB; larger
                              requests get a 4xx answer. MHD keeps them in a
                              per-connection pool that also holds the send
                              buffer, so the pool is this + 24 KiB. */
  size_t stream_queue_max; /* bytes queued per stream, default 4 MiB (or
                              $PTV_TEST_HTTP_QUEUE bytes, for tests) */
  ptv_http_log_cb log;     /* NULL: ptv_rt_log(), "http: MESSAGE": MHD's
                              messages at debug level (-v; a player hanging
                              up mid-stream is one), ours as errors */
  void *log_user;
  char *errbuf;            /* if not NULL, a failed ptv_http_start() writes a
                              one-line reason here ("... Address already in
                              use"), NUL-terminated */
  size_t errbuf_len;
} ptv_http_config;

/* Starts a server bound to ADDR:PORT and registers it with LOOP. ADDR is an
 * IPv4 or IPv6 literal or "localhost" (127.0.0.1); PORT 0 picks a free port
 * (see ptv_http_port()). CFG may be NULL for defaults; it is not kept.
 * Returns 0 and sets *out, or
 *   PTV_ERR_INVALID_ARG  a NULL argument or ADDR is not an address literal;
 *   PTV_ERR_NOMEM        allocation failed;
 *   PTV_ERR_IO           MHD could not start, e.g. bind() failed (the port
 *                        is taken): errno is left as the OS set it, and the
 *                        reason is in cfg->errbuf when given. */
int ptv_http_start(ptv_http **out, uv_loop_t *loop, const char *addr,
                   uint16_t port, const ptv_http_config *cfg);

/* The port the server listens on (the real one when started with 0). */
uint16_t ptv_http_port(const ptv_http *h);

/* Sends GET and HEAD requests for exactly PATH (which starts with '/'; the
 * query string does not count) to FN with USER. PATH is copied.
 * Returns 0, or PTV_ERR_INVALID_ARG (NULL argument, PATH without a leading
 * '/'), PTV_ERR_EXISTS (PATH already routed), PTV_ERR_NOMEM. */
int ptv_http_route(ptv_http *h, const char *path, ptv_http_handler fn,
                   void *user);

/* Replaces the reply body with a copy of BUF[0..LEN).
 * Returns 0, or PTV_ERR_INVALID_ARG (NULL reply, NULL buf with LEN > 0, or
 * the reply is already a stream), PTV_ERR_NOMEM. */
int ptv_http_reply_set_body(ptv_http_reply *reply, const void *buf,
                            size_t len);

/* Appends printf-formatted text to the reply body.
 * Returns 0, or PTV_ERR_INVALID_ARG (NULL argument, reply is a stream),
 * PTV_ERR_NOMEM. After NOMEM the client gets 500 whatever the handler
 * does next. */
int ptv_http_reply_printf(ptv_http_reply *reply, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The value of query argument KEY ("?key=value", URL-decoded), or NULL when
 * it is absent or has no '='. Valid until the handler returns. */
const char *ptv_http_reply_query(const ptv_http_reply *reply, const char *key);

/* 1 if the request is HEAD (the body will not be sent), else 0. */
int ptv_http_reply_is_head(const ptv_http_reply *reply);

/* Turns the reply into a stream with CONTENT_TYPE (copied; NULL sends
 * none) and the reply's status. A body set before is dropped. ON_CLOSE may
 * be NULL. Data written before the handler returns is sent first.
 * Returns the stream handle, or NULL if REPLY is NULL, is already a stream,
 * or allocation failed (the client then gets 500).
 * For HEAD requests the stream ends as soon as the headers are sent
 * (ON_CLOSE fires). */
ptv_http_stream *ptv_http_reply_stream(ptv_http_reply *reply,
                                       const char *content_type,
                                       ptv_http_stream_close_cb on_close,
                                       void *user);

/* Queues a copy of BUF[0..LEN) for the stream's client.
 * Returns 0, or
 *   PTV_ERR_INVALID_ARG  NULL stream, or NULL buf with LEN > 0;
 *   PTV_ERR_CLOSED       the connection ended (on_close has fired or is
 *                        about to) or the stream is closing;
 *   PTV_ERR_AGAIN        the queue would exceed stream_queue_max: the client
 *                        does not keep up. Nothing was queued; the caller
 *                        may skip data or drop the client with
 *                        ptv_http_stream_abort();
 *   PTV_ERR_NOMEM        allocation failed, nothing was queued. */
int ptv_http_stream_write(ptv_http_stream *s, const uint8_t *buf, size_t len);

/* Bytes queued for the client and not yet handed to MHD. */
size_t ptv_http_stream_queued(const ptv_http_stream *s);

/* Ends the stream gracefully: queued data is still sent, then the response
 * is terminated (last chunk, or connection close for HTTP/1.0). Releases
 * the handle: it is invalid afterwards, and on_close will not fire any
 * more. NULL is ignored. */
void ptv_http_stream_close(ptv_http_stream *s);

/* Drops the queued data and closes the connection now (the client sees a
 * truncated response). Releases the handle like ptv_http_stream_close().
 * NULL is ignored. */
void ptv_http_stream_abort(ptv_http_stream *s);

/* Stops the server: open connections are closed (streams' on_close fires
 * for those the application has not closed), MHD is stopped, the uv handles
 * are closed and DONE(ARG) runs from a later loop iteration; then H and
 * every stream handle are freed. DONE may be NULL. May be called from a
 * handler or an on_close callback. Calling it twice, or any other function
 * on H afterwards, is an error (the second stop is ignored). */
void ptv_http_stop(ptv_http *h, void (*done)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
