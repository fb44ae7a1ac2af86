/* ptv_ctl.h -- the control protocol between a peer (or source) and the tracker.
 *
 * A client keeps one stream connection (TCP) to the tracker. Messages use the
 * overlay's framing (version:u8 type:u8 body_len:u32 body, big-endian; see
 * ptv_wire.h) so one reader splits the stream: types below 32 are overlay
 * messages (JOIN, PEERS, HEARTBEAT, LEAVE, REPORT go to the tracker engine),
 * types from 32 are these control messages:
 *
 *   HELLO    client -> tracker   first message: who I am, which channel; signed
 *   WELCOME  tracker -> client   your overlay id, the channel's parameters
 *   ERROR    tracker -> client   why a request failed (the connection may close)
 *   SIGNAL   both ways           ICE credentials, candidates and key-exchange
 *                                hellos relayed between two peers of a channel
 *   END      source -> tracker   the channel ends
 *
 * Decoding never reads past `len` and never allocates: strings and blobs
 * point into the input. Exactly one encoding per message is accepted.
 */
#ifndef PTV_CTL_H
#define PTV_CTL_H

#include "ptv_types.h"

#define PTV_CTL_TYPE_MIN 32
#define PTV_CTL_NAME_MAX 64     /* channel name bytes */
#define PTV_CTL_DESC_MAX 255    /* channel description bytes */
#define PTV_CTL_TEXT_MAX 255    /* error text bytes */
#define PTV_CTL_SIGNAL_MAX 1024 /* signal payload bytes */
#define PTV_CTL_PKLEN 32
#define PTV_CTL_SIGLEN 64
#define PTV_CTL_MAX_BODY 2048   /* larger control bodies are malformed */

typedef enum {
  PTV_CTL_HELLO = 32,
  PTV_CTL_WELCOME = 33,
  PTV_CTL_ERROR = 34,
  PTV_CTL_SIGNAL = 35,
  PTV_CTL_END = 36,
  PTV_CTL_TYPE_MAX = 36
} ptv_ctl_type;

/* HELLO: role:u8 nat:u8 upload_kbps:u32 want_id:u32 ts_us:u64 pk:32
 *        chunk_us:u32 stream_kbps:u32 name_len:u8 name desc_len:u8 desc sig:64
 * The signature (Ed25519 by pk) covers "PTVHELLO1" and every byte of the body
 * before it: it proves the client holds the key it names (the publisher's
 * key for a source), and ts_us (Unix time) bounds its replay. chunk_us,
 * stream_kbps and desc describe a channel a source creates; peers send 0/empty. */
typedef struct {
  uint8_t role;          /* PTV_ROLE_PEER / PTV_ROLE_SOURCE (ptv_wire.h) */
  uint8_t nat;
  uint32_t upload_kbps;
  ptv_id want_id;        /* the id it had before a reconnect, or PTV_ID_NONE */
  uint64_t ts_us;
  const uint8_t *pk;     /* PTV_CTL_PKLEN bytes */
  uint32_t chunk_us;
  uint32_t stream_kbps;
  uint8_t name_len;
  const char *name;      /* name_len bytes, not NUL-terminated */
  uint8_t desc_len;
  const char *desc;
  const uint8_t *sig;    /* PTV_CTL_SIGLEN bytes */
} ptv_ctl_hello;

/* WELCOME: id:u32 tracker:u32 chunk_us:u32 stream_kbps:u32 publisher_pk:32 */
typedef struct {
  ptv_id id;             /* the client's overlay id in this channel */
  ptv_id tracker;        /* the tracker's overlay id (JOIN goes there) */
  uint32_t chunk_us;
  uint32_t stream_kbps;
  const uint8_t *publisher_pk; /* chunks are signed by this key */
} ptv_ctl_welcome;

#define PTV_CTL_E_BAD_REQUEST 1  /* malformed or out of order */
#define PTV_CTL_E_BAD_SIG 2      /* HELLO signature or time stamp refused */
#define PTV_CTL_E_NO_CHANNEL 3   /* a peer asked for a channel that is not live */
#define PTV_CTL_E_NAME_TAKEN 4   /* a source asked for a name another key holds */
#define PTV_CTL_E_BANNED 5
#define PTV_CTL_E_LIMIT 6        /* too many connections or requests */
#define PTV_CTL_E_INTERNAL 7     /* the store failed */
#define PTV_CTL_E_UNREACHABLE 8  /* SIGNAL: no such peer in the channel */
#define PTV_CTL_E_REPLACED 9     /* a newer connection of the same key took over */
#define PTV_CTL_E_MAX 9
/* ERROR: code:u16 text_len:u8 text */
typedef struct {
  uint16_t code;
  uint8_t text_len;
  const char *text;
} ptv_ctl_error;

#define PTV_SIG_CREDS 0     /* ICE ufrag and password */
#define PTV_SIG_CANDIDATE 1 /* one ICE candidate (SDP attribute line) */
#define PTV_SIG_DONE 2      /* no more candidates */
#define PTV_SIG_KX 3        /* key-exchange hello (ptv_kx) */
#define PTV_SIG_OVERLAY 4   /* one overlay message (ptv_wire frame) for a peer
                               we have no path to: Cyclon shuffles, which
                               would otherwise cost an ICE set-up each */
#define PTV_SIG_MAX 4
/* SIGNAL: peer:u32 kind:u8 pk:32 data_len:u16 data
 * Client -> tracker: peer is the destination, pk is ignored (send zeros).
 * Tracker -> client: peer is the sender, pk its identity key as the tracker
 * verified it at HELLO (what the key exchange is bound to). */
typedef struct {
  ptv_id peer;
  uint8_t kind;
  const uint8_t *pk;
  uint16_t data_len;
  const uint8_t *data;
} ptv_ctl_signal;

typedef struct {
  uint8_t type; /* ptv_ctl_type */
  union {
    ptv_ctl_hello hello;
    ptv_ctl_welcome welcome;
    ptv_ctl_error error;
    ptv_ctl_signal signal;
  } u;
} ptv_ctl;
/* END has an empty body. */

/* Encodes m into buf[0..cap). Returns bytes written, PTV_ERR_NOBUF, or
 * PTV_ERR_INVALID_ARG (a length or enum out of range, a pointer missing). */
int ptv_ctl_encode(uint8_t *buf, size_t cap, const ptv_ctl *m);

/* Decodes one control message. Returns bytes consumed, or PTV_ERR_SHORT
 * (need more bytes), PTV_ERR_VERSION, PTV_ERR_UNKNOWN_TYPE (not a control
 * type), PTV_ERR_MALFORMED (lengths or enums wrong, body over
 * PTV_CTL_MAX_BODY). */
int ptv_ctl_decode(ptv_ctl *m, const uint8_t *buf, size_t len);

/* The bytes a HELLO's signature covers: "PTVHELLO1" then the encoded body
 * up to the signature. Writes them to out (cap >= PTV_CTL_MAX_BODY + 9) and
 * returns their length, or PTV_ERR_INVALID_ARG / PTV_ERR_NOBUF. */
int ptv_ctl_hello_signed_bytes(const ptv_ctl_hello *h, uint8_t *out, size_t cap);

/* Frame splitting for a byte stream: the total size (header + body) of the
 * message starting at buf, 0 if fewer than 6 bytes are there yet, or
 * PTV_ERR_VERSION / PTV_ERR_MALFORMED (declared body over `max_body`). */
long ptv_ctl_frame_len(const uint8_t *buf, size_t len, uint32_t max_body);

#endif
