/* ptv_wire.h -- the PeerTV overlay wire codec.
 *
 * Every message is  version:u8 | type:u8 | body_len:u32 | body  (all integers
 * big-endian). A buffer may hold several messages back to back; the decoder
 * returns how many bytes it consumed. Decoding never reads past `len` and never
 * allocates: variable parts (bitmaps, payloads) point into the input buffer.
 */
#ifndef PTV_WIRE_H
#define PTV_WIRE_H

#include "ptv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: BUFFERMAP carries the sender's children per stripe (kids, session 30) */
#define PTV_WIRE_VERSION 2
#define PTV_WIRE_HDRLEN 6
#define PTV_WIRE_MAX_DESCS 64      /* peer descriptors in one message */
#define PTV_WIRE_MAX_BITMAP_BITS 512
#define PTV_WIRE_SIGLEN 64         /* Ed25519 signature */
#define PTV_WIRE_MAX_BODY (16u << 20) /* 16 MiB: larger bodies are malformed */
#define PTV_STRIPES_MAX 16         /* stripes a buffer map or subscription names */

typedef enum {
  PTV_MSG_JOIN = 1,        /* peer -> tracker: I want to watch */
  PTV_MSG_PEERS = 2,       /* tracker -> peer: some peers, and where live is */
  PTV_MSG_LEAVE = 3,       /* peer -> tracker/partners: I am going */
  PTV_MSG_HEARTBEAT = 4,   /* peer/source -> tracker: still here */
  PTV_MSG_SHUFFLE = 5,     /* gossip peer sampling exchange */
  PTV_MSG_CONNECT = 6,     /* ask to become partners */
  PTV_MSG_CONNECT_ACK = 7, /* answer to CONNECT */
  PTV_MSG_DISCONNECT = 8,  /* partnership ends */
  PTV_MSG_BUFFERMAP = 9,   /* which chunks I hold */
  PTV_MSG_REQUEST = 10,    /* send me this chunk */
  PTV_MSG_CHUNK = 11,      /* a chunk */
  PTV_MSG_BUSY = 12,       /* cannot serve that request */
  PTV_MSG_OFFER = 13,      /* I can send you these chunks now */
  PTV_MSG_SELECT = 14,     /* send me these of the chunks you offered */
  PTV_MSG_STRIPES = 15,    /* stripe subscription (child -> parent) or grant */
  PTV_MSG_REPORT = 16,     /* peer -> tracker: this peer misbehaved */
  PTV_MSG_TYPE_MAX = 16
} ptv_msg_type;

/* A peer as gossiped: 10 bytes on the wire (id:u32 nat:u8 age:u8 up:u32). */
typedef struct {
  ptv_id id;
  uint8_t nat;        /* ptv_nat_type */
  uint8_t age;        /* gossip rounds since created, saturating at 255 */
  uint32_t upload_kbps; /* declared or measured upload capacity */
} ptv_peer_desc;

#define PTV_ROLE_PEER 0
#define PTV_ROLE_SOURCE 1

typedef struct {
  uint8_t role;        /* PTV_ROLE_* */
  uint8_t nat;
  uint32_t upload_kbps;
} ptv_msg_join; /* body: role:u8 nat:u8 upload:u32 */

typedef struct {
  ptv_chunk_id live;   /* newest chunk the source announced, or UINT32_MAX */
  uint32_t chunk_us;   /* chunk duration */
  uint32_t cap_kbps;   /* peers' mean declared upload (source left out), 0 unknown */
  uint8_t n;           /* <= PTV_WIRE_MAX_DESCS */
  ptv_peer_desc descs[PTV_WIRE_MAX_DESCS];
} ptv_msg_peers; /* body: live:u32 chunk_us:u32 cap_kbps:u32 n:u8 desc*n */

typedef struct {
  ptv_chunk_id newest; /* newest chunk held, or UINT32_MAX */
} ptv_msg_heartbeat; /* body: newest:u32 */

typedef struct {
  uint8_t reply;       /* 0 request, 1 response */
  uint8_t n;
  ptv_peer_desc descs[PTV_WIRE_MAX_DESCS];
} ptv_msg_shuffle; /* body: reply:u8 n:u8 desc*n */

typedef struct {
  uint8_t nat;
  uint8_t flags;       /* strategy-defined hints */
  uint32_t upload_kbps;
} ptv_msg_connect; /* body: nat:u8 flags:u8 upload:u32 */

#define PTV_ACK_ACCEPT 0
#define PTV_ACK_FULL 1
#define PTV_ACK_REFUSED 2
typedef struct {
  uint8_t status;      /* PTV_ACK_* */
} ptv_msg_connect_ack; /* body: status:u8 */

typedef struct {
  uint8_t reason;
} ptv_msg_disconnect; /* body: reason:u8 */

typedef struct {
  ptv_chunk_id base;   /* chunk id of bit 0 */
  uint16_t nbits;      /* <= PTV_WIRE_MAX_BITMAP_BITS */
  uint16_t queue_ms;   /* sender's upload backlog, a load hint */
  ptv_chunk_id play;   /* next chunk the sender will play (UINT32_MAX: not
                          playing); older chunks are no use to it */
  /* stripe overlays (see below; zero/none otherwise) */
  uint8_t free_slots;  /* stripe slots the sender can still grant */
  uint16_t price_kbps; /* when full: the lowest bid among its children */
  ptv_id suspect;      /* a peer the sender found delivering far below its
                          claim, PTV_ID_NONE if none (free-rider warning) */
  uint16_t suspect_deliv; /* the share it delivered, x 65535 */
  uint8_t ndepth;      /* <= PTV_STRIPES_MAX */
  const uint8_t *depth; /* ndepth bytes: the sender's hops from the source in
                           each stripe (0 source, 255 not fed) */
  const uint8_t *kids;  /* ndepth bytes: the sender's children in each stripe
                           (at most 255), so its parent pushes first to the
                           children that pass a chunk on to most peers */
  const uint8_t *bits; /* ceil(nbits/8) bytes, bit i = byte i/8, mask 0x80>>(i%8) */
} ptv_msg_buffermap;
/* body: base:u32 nbits:u16 queue_ms:u16 play:u32 free:u8 price:u16
 *       suspect:u32 suspect_deliv:u16 ndepth:u8 depth:u8*ndepth
 *       kids:u8*ndepth bits */

/* Stripes: the stream is split into sub-streams (chunk id mod the number of
 * stripes); a child subscribes to some of them from a parent, which then
 * pushes every chunk of those stripes as soon as it has it. */
#define PTV_STRIPES_SUBSCRIBE 0 /* child -> parent: the stripes I want from you */
#define PTV_STRIPES_GRANT 1     /* parent -> child: the stripes you get from me (an answer) */
#define PTV_STRIPES_EVICT 2     /* parent -> child, unasked: you keep only these */
typedef struct {
  uint8_t kind;        /* PTV_STRIPES_* */
  uint16_t mask;       /* bit s: stripe s; the whole set, not a change */
  uint32_t kbps;       /* SUBSCRIBE: the child's bid (its upload capacity);
                          GRANT: the parent's price when full, else 0;
                          EVICT: 0 */
} ptv_msg_stripes; /* body: kind:u8 mask:u16 kbps:u32 */

typedef struct {
  ptv_chunk_id chunk;
  uint16_t deadline_ms; /* how long until the requester must play it */
  uint8_t played;       /* share of the chunks lately due that the requester
                           played, x 255 (255 also before it plays): below a
                           resource index of 1, suppliers serve the poorest
                           of those that pass nothing on first */
} ptv_msg_request; /* body: chunk:u32 deadline_ms:u16 played:u8 */

#define PTV_CHUNK_KEYFRAME 0x01 /* chunk starts with a keyframe */
#define PTV_CHUNK_DETACHED 0x02 /* payload not carried (simulation only) */
#define PTV_CHUNK_SIGNED 0x04   /* a signature follows the header */
/* The source's input delivers nothing: the payload is a notice, not media
 * (not recorded, not played out); the source sends one per chunk period
 * while it lasts, so peers see a live but stalled channel. Signed with the
 * chunk, like KEYFRAME, so no relay can forge or hide a stall. */
#define PTV_CHUNK_STALLED 0x08
#define PTV_CHUNK_FLAGS_ALL 0x0f
/* The flags that describe the content (signed); the others describe the
 * carriage and may differ between hops. */
#define PTV_CHUNK_CONTENT_FLAGS (PTV_CHUNK_KEYFRAME | PTV_CHUNK_STALLED)
typedef struct {
  ptv_chunk_id chunk;
  uint64_t ts_us;       /* source timestamp of the chunk start */
  uint8_t flags;        /* PTV_CHUNK_* */
  uint32_t payload_len; /* payload size, carried or not */
  const uint8_t *sig;   /* PTV_WIRE_SIGLEN bytes if SIGNED, else NULL */
  const uint8_t *payload; /* payload_len bytes, NULL if DETACHED */
} ptv_msg_chunk;
/* body: chunk:u32 ts:u64 flags:u8 payload_len:u32 [sig:64] [payload] ;
 * with DETACHED the body ends after the signature and payload_len only states
 * the size the payload would have (the simulator charges it as bytes). */

#define PTV_BUSY_NOT_HELD 0
#define PTV_BUSY_OVERLOAD 1
#define PTV_BUSY_TOO_LATE 2
typedef struct {
  ptv_chunk_id chunk;
  uint8_t reason;       /* PTV_BUSY_* */
} ptv_msg_busy; /* body: chunk:u32 reason:u8 */

#define PTV_WIRE_MAX_IDS 16
/* OFFER and SELECT: a short list of chunk ids (n <= PTV_WIRE_MAX_IDS; an
 * empty SELECT declines the offer). */
typedef struct {
  uint8_t n;
  ptv_chunk_id ids[PTV_WIRE_MAX_IDS];
} ptv_msg_ids; /* body: n:u8 id:u32*n */

#define PTV_REPORT_BAD_CHUNK 0 /* sent a chunk whose signature did not verify */
#define PTV_REPORT_MALFORMED 1 /* sent malformed messages */
#define PTV_REPORT_MAX PTV_REPORT_MALFORMED
typedef struct {
  ptv_id suspect;
  uint8_t reason;       /* PTV_REPORT_* */
} ptv_msg_report; /* body: suspect:u32 reason:u8 */

/* What the source signs for a chunk: this fixed header, then the payload.
 * "PTVCHNK1" chunk:u32 ts:u64 flags:u8 payload_len:u32 (25 bytes), flags
 * being the chunk's PTV_CHUNK_CONTENT_FLAGS (KEYFRAME, STALLED). The
 * signature is Ed25519ph (RFC 8032, pre-hashed, so it can be computed and
 * checked without copying the payload next to the header). */
#define PTV_WIRE_SIGBASE_LEN 25
void ptv_wire_chunk_sigbase(const ptv_msg_chunk *c, uint8_t out[PTV_WIRE_SIGBASE_LEN]);

typedef struct {
  uint8_t type; /* ptv_msg_type */
  union {
    ptv_msg_join join;
    ptv_msg_peers peers;
    ptv_msg_heartbeat heartbeat;
    ptv_msg_shuffle shuffle;
    ptv_msg_connect connect;
    ptv_msg_connect_ack connect_ack;
    ptv_msg_disconnect disconnect;
    ptv_msg_buffermap buffermap;
    ptv_msg_request request;
    ptv_msg_chunk chunk;
    ptv_msg_busy busy;
    ptv_msg_ids offer;
    ptv_msg_ids select;
    ptv_msg_stripes stripes;
    ptv_msg_report report;
  } u;
} ptv_msg;
/* LEAVE has an empty body. */

/* Encodes `m` into buf[0..cap). Returns the number of bytes written, or
 * PTV_ERR_NOBUF if cap is too small, PTV_ERR_INVALID_ARG if a field is out of
 * range (n > PTV_WIRE_MAX_DESCS, nbits > max, unknown type, a payload missing
 * when not DETACHED). */
int ptv_wire_encode(uint8_t *buf, size_t cap, const ptv_msg *m);

/* Size ptv_wire_encode would write for `m`, or PTV_ERR_INVALID_ARG. */
int ptv_wire_encoded_len(const ptv_msg *m);

/* Decodes one message from buf[0..len). On success fills *m and returns the
 * number of bytes consumed (>= PTV_WIRE_HDRLEN). Errors: PTV_ERR_SHORT (len
 * shorter than the header or the declared body), PTV_ERR_VERSION,
 * PTV_ERR_UNKNOWN_TYPE, PTV_ERR_MALFORMED (body length does not match the
 * fields, count or flag out of range, body larger than PTV_WIRE_MAX_BODY). */
int ptv_wire_decode(ptv_msg *m, const uint8_t *buf, size_t len);

/* 1 if the encoded message buf[0..len) (one whole frame) costs little if
 * lost, so a transport may send it unreliably: a BUFFERMAP (the next one
 * supersedes it) or an empty SELECT (a decline; lost, the offerer's offer
 * times out after 1 s instead). 0 for anything else, or a buffer too short
 * to tell. Looks at the header and the SELECT count only. */
int ptv_wire_loss_tolerant(const uint8_t *buf, size_t len);

/* Buffer-map bit helpers. */
static inline int ptv_wire_bit_get(const uint8_t *bits, unsigned i) {
  return (bits[i >> 3] >> (7 - (i & 7))) & 1;
}
static inline void ptv_wire_bit_set(uint8_t *bits, unsigned i) {
  bits[i >> 3] |= (uint8_t)(0x80 >> (i & 7));
}

#ifdef __cplusplus
}
#endif
#endif
