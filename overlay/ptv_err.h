/* ptv_err.h -- error codes shared by every PeerTV module.
 *
 * Functions return 0 (or a non-negative count) on success and one of the
 * negative PTV_ERR_* codes below on failure. */
#ifndef PTV_ERR_H
#define PTV_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#define PTV_OK 0
#define PTV_ERR_INVALID_ARG -1  /* a caller passed an argument out of range */
#define PTV_ERR_NOMEM -2        /* allocation failed */
#define PTV_ERR_SHORT -3        /* buffer ended before the message did */
#define PTV_ERR_MALFORMED -4    /* a field holds a value the format forbids */
#define PTV_ERR_VERSION -5      /* unknown protocol version */
#define PTV_ERR_UNKNOWN_TYPE -6 /* unknown message type */
#define PTV_ERR_NOBUF -7        /* output buffer too small */
#define PTV_ERR_FULL -8         /* a table or queue is full */
#define PTV_ERR_NOT_FOUND -9    /* no such entry */
#define PTV_ERR_PARSE -10       /* text input could not be parsed */
#define PTV_ERR_IO -11          /* the operating system refused a file operation */
#define PTV_ERR_CALLBACK -12    /* a user callback failed */
#define PTV_ERR_BAD_SIG -13     /* a signature did not verify */
#define PTV_ERR_CRYPTO -14      /* a cipher or key operation failed, or a
                                   packet failed authentication */
#define PTV_ERR_STORE -15       /* the durable store (database) failed */
#define PTV_ERR_EXISTS -16      /* an entry with that key already exists */
#define PTV_ERR_CLOSED -17      /* the link or connection is closed */
#define PTV_ERR_AGAIN -18       /* not now: a window or queue is full, retry later */
#define PTV_ERR_TIMEOUT -19     /* the peer did not answer in time */
#define PTV_ERR_REPLAY -20      /* a packet was seen before (replay) */

/* Returns a static English description of an error code; never NULL. */
const char *ptv_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
