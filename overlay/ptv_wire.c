/* ptv_wire.c -- the PeerTV overlay wire codec (see ptv_wire.h for layout).
 *
 * The decoder accepts exactly one encoding per message: lengths must match the
 * fields, counts and enums must be in range, and bitmap padding must be zero.
 * The encoder enforces the same limits, so encode(decode(x)) == x byte for
 * byte and anything the encoder emits the decoder accepts. */
#include "ptv_wire.h"

#include <string.h>

#include "ptv_err.h"
#include "ptv_be.h"

/* Fixed body sizes. */
#define PTV_DESCLEN 10
#define PTV_JOIN_BODYLEN 6
#define PTV_PEERS_FIXLEN 13
#define PTV_HEARTBEAT_BODYLEN 4
#define PTV_SHUFFLE_FIXLEN 2
#define PTV_CONNECT_BODYLEN 6
#define PTV_CONNECT_ACK_BODYLEN 1
#define PTV_DISCONNECT_BODYLEN 1
#define PTV_BUFFERMAP_FIXLEN 22
#define PTV_REQUEST_BODYLEN 7
#define PTV_CHUNK_FIXLEN 17
#define PTV_BUSY_BODYLEN 5
#define PTV_IDS_FIXLEN 1
#define PTV_IDLEN 4
#define PTV_STRIPES_BODYLEN 7
#define PTV_REPORT_BODYLEN 5

#define PTV_NAT_MAX PTV_NAT_UNKNOWN
#define PTV_ACK_MAX PTV_ACK_REFUSED
#define PTV_BUSY_MAX PTV_BUSY_TOO_LATE

static size_t bitmap_len(size_t nbits) { return (nbits + 7) / 8; }

/* Mask of the padding bits in the last bitmap byte (0 if nbits % 8 == 0). */
static uint8_t bitmap_padmask(size_t nbits) {
  return (nbits & 7) ? (uint8_t)(0xffu >> (nbits & 7)) : 0;
}

/* ---- encoder ---------------------------------------------------------- */

static int descs_valid(const ptv_peer_desc *d, size_t n) {
  size_t i;

  for (i = 0; i < n; ++i) {
    if (d[i].nat > PTV_NAT_MAX) {
      return 0;
    }
  }
  return 1;
}

/* Body length of a chunk, or PTV_ERR_INVALID_ARG. The payload size is bounded
 * so that the body stays within PTV_WIRE_MAX_BODY, which the decoder checks. */
static int chunk_bodylen(const ptv_msg_chunk *c) {
  size_t len = PTV_CHUNK_FIXLEN;

  if (c->flags & ~PTV_CHUNK_FLAGS_ALL) {
    return PTV_ERR_INVALID_ARG;
  }
  if (c->flags & PTV_CHUNK_SIGNED) {
    if (c->sig == NULL) {
      return PTV_ERR_INVALID_ARG;
    }
    len += PTV_WIRE_SIGLEN;
  }
  if (!(c->flags & PTV_CHUNK_DETACHED)) {
    if (c->payload_len > PTV_WIRE_MAX_BODY - len) {
      return PTV_ERR_INVALID_ARG;
    }
    if (c->payload == NULL && c->payload_len > 0) {
      return PTV_ERR_INVALID_ARG;
    }
    len += c->payload_len;
  }
  return (int)len;
}

/* Validates m and returns its body length, or PTV_ERR_INVALID_ARG. */
static int body_len(const ptv_msg *m) {
  switch (m->type) {
  case PTV_MSG_JOIN:
    if (m->u.join.role > PTV_ROLE_SOURCE || m->u.join.nat > PTV_NAT_MAX) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_JOIN_BODYLEN;
  case PTV_MSG_PEERS:
    if (m->u.peers.n > PTV_WIRE_MAX_DESCS ||
        !descs_valid(m->u.peers.descs, m->u.peers.n)) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_PEERS_FIXLEN + PTV_DESCLEN * m->u.peers.n;
  case PTV_MSG_LEAVE:
    return 0;
  case PTV_MSG_HEARTBEAT:
    return PTV_HEARTBEAT_BODYLEN;
  case PTV_MSG_SHUFFLE:
    if (m->u.shuffle.reply > 1 || m->u.shuffle.n > PTV_WIRE_MAX_DESCS ||
        !descs_valid(m->u.shuffle.descs, m->u.shuffle.n)) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_SHUFFLE_FIXLEN + PTV_DESCLEN * m->u.shuffle.n;
  case PTV_MSG_CONNECT:
    if (m->u.connect.nat > PTV_NAT_MAX) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_CONNECT_BODYLEN;
  case PTV_MSG_CONNECT_ACK:
    if (m->u.connect_ack.status > PTV_ACK_MAX) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_CONNECT_ACK_BODYLEN;
  case PTV_MSG_DISCONNECT:
    return PTV_DISCONNECT_BODYLEN;
  case PTV_MSG_BUFFERMAP:
    if (m->u.buffermap.nbits > PTV_WIRE_MAX_BITMAP_BITS ||
        (m->u.buffermap.nbits > 0 && m->u.buffermap.bits == NULL)) {
      return PTV_ERR_INVALID_ARG;
    }
    if (m->u.buffermap.ndepth > PTV_STRIPES_MAX ||
        (m->u.buffermap.ndepth > 0 &&
         (m->u.buffermap.depth == NULL || m->u.buffermap.kids == NULL))) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_BUFFERMAP_FIXLEN + 2 * m->u.buffermap.ndepth +
           (int)bitmap_len(m->u.buffermap.nbits);
  case PTV_MSG_REQUEST:
    return PTV_REQUEST_BODYLEN;
  case PTV_MSG_CHUNK:
    return chunk_bodylen(&m->u.chunk);
  case PTV_MSG_BUSY:
    if (m->u.busy.reason > PTV_BUSY_MAX) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_BUSY_BODYLEN;
  case PTV_MSG_OFFER:
  case PTV_MSG_SELECT: {
    const ptv_msg_ids *ids =
        m->type == PTV_MSG_OFFER ? &m->u.offer : &m->u.select;

    if (ids->n > PTV_WIRE_MAX_IDS) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_IDS_FIXLEN + PTV_IDLEN * ids->n;
  }
  case PTV_MSG_STRIPES:
    if (m->u.stripes.kind > PTV_STRIPES_EVICT) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_STRIPES_BODYLEN;
  case PTV_MSG_REPORT:
    if (m->u.report.reason > PTV_REPORT_MAX) {
      return PTV_ERR_INVALID_ARG;
    }
    return PTV_REPORT_BODYLEN;
  default:
    return PTV_ERR_INVALID_ARG;
  }
}

static uint8_t *put_descs(uint8_t *p, const ptv_peer_desc *d, size_t n) {
  size_t i;

  for (i = 0; i < n; ++i) {
    p = ptv_be_put32(p, d[i].id);
    p = ptv_be_put8(p, d[i].nat);
    p = ptv_be_put8(p, d[i].age);
    p = ptv_be_put32(p, d[i].upload_kbps);
  }
  return p;
}

/* Writes the already validated body of m at p. */
static uint8_t *put_body(uint8_t *p, const ptv_msg *m) {
  switch (m->type) {
  case PTV_MSG_JOIN:
    p = ptv_be_put8(p, m->u.join.role);
    p = ptv_be_put8(p, m->u.join.nat);
    return ptv_be_put32(p, m->u.join.upload_kbps);
  case PTV_MSG_PEERS:
    p = ptv_be_put32(p, m->u.peers.live);
    p = ptv_be_put32(p, m->u.peers.chunk_us);
    p = ptv_be_put32(p, m->u.peers.cap_kbps);
    p = ptv_be_put8(p, m->u.peers.n);
    return put_descs(p, m->u.peers.descs, m->u.peers.n);
  case PTV_MSG_LEAVE:
    return p;
  case PTV_MSG_HEARTBEAT:
    return ptv_be_put32(p, m->u.heartbeat.newest);
  case PTV_MSG_SHUFFLE:
    p = ptv_be_put8(p, m->u.shuffle.reply);
    p = ptv_be_put8(p, m->u.shuffle.n);
    return put_descs(p, m->u.shuffle.descs, m->u.shuffle.n);
  case PTV_MSG_CONNECT:
    p = ptv_be_put8(p, m->u.connect.nat);
    p = ptv_be_put8(p, m->u.connect.flags);
    return ptv_be_put32(p, m->u.connect.upload_kbps);
  case PTV_MSG_CONNECT_ACK:
    return ptv_be_put8(p, m->u.connect_ack.status);
  case PTV_MSG_DISCONNECT:
    return ptv_be_put8(p, m->u.disconnect.reason);
  case PTV_MSG_BUFFERMAP: {
    const ptv_msg_buffermap *bm = &m->u.buffermap;
    size_t n = bitmap_len(bm->nbits);

    p = ptv_be_put32(p, bm->base);
    p = ptv_be_put16(p, bm->nbits);
    p = ptv_be_put16(p, bm->queue_ms);
    p = ptv_be_put32(p, bm->play);
    p = ptv_be_put8(p, bm->free_slots);
    p = ptv_be_put16(p, bm->price_kbps);
    p = ptv_be_put32(p, bm->suspect);
    p = ptv_be_put16(p, bm->suspect_deliv);
    p = ptv_be_put8(p, bm->ndepth);
    if (bm->ndepth) {
      memcpy(p, bm->depth, bm->ndepth);
      p += bm->ndepth;
      memcpy(p, bm->kids, bm->ndepth);
      p += bm->ndepth;
    }
    if (n) {
      memcpy(p, bm->bits, n);
      /* Bits past nbits carry no meaning; zero them so the output is the
       * canonical form the decoder insists on. */
      p[n - 1] &= (uint8_t)~bitmap_padmask(bm->nbits);
      p += n;
    }
    return p;
  }
  case PTV_MSG_REQUEST:
    p = ptv_be_put32(p, m->u.request.chunk);
    p = ptv_be_put16(p, m->u.request.deadline_ms);
    *p++ = m->u.request.played;
    return p;
  case PTV_MSG_CHUNK: {
    const ptv_msg_chunk *c = &m->u.chunk;

    p = ptv_be_put32(p, c->chunk);
    p = ptv_be_put64(p, c->ts_us);
    p = ptv_be_put8(p, c->flags);
    p = ptv_be_put32(p, c->payload_len);
    if (c->flags & PTV_CHUNK_SIGNED) {
      memcpy(p, c->sig, PTV_WIRE_SIGLEN);
      p += PTV_WIRE_SIGLEN;
    }
    if (!(c->flags & PTV_CHUNK_DETACHED) && c->payload_len) {
      memcpy(p, c->payload, c->payload_len);
      p += c->payload_len;
    }
    return p;
  }
  case PTV_MSG_BUSY:
    p = ptv_be_put32(p, m->u.busy.chunk);
    return ptv_be_put8(p, m->u.busy.reason);
  case PTV_MSG_OFFER:
  case PTV_MSG_SELECT: {
    const ptv_msg_ids *ids =
        m->type == PTV_MSG_OFFER ? &m->u.offer : &m->u.select;
    size_t i;

    p = ptv_be_put8(p, ids->n);
    for (i = 0; i < ids->n; ++i) {
      p = ptv_be_put32(p, ids->ids[i]);
    }
    return p;
  }
  case PTV_MSG_STRIPES:
    p = ptv_be_put8(p, m->u.stripes.kind);
    p = ptv_be_put16(p, m->u.stripes.mask);
    return ptv_be_put32(p, m->u.stripes.kbps);
  case PTV_MSG_REPORT:
    p = ptv_be_put32(p, m->u.report.suspect);
    return ptv_be_put8(p, m->u.report.reason);
  default:
    /* body_len() has already rejected unknown types. */
    return p;
  }
}

void ptv_wire_chunk_sigbase(const ptv_msg_chunk *c, uint8_t out[PTV_WIRE_SIGBASE_LEN]) {
  uint8_t *p = out;

  memcpy(p, "PTVCHNK1", 8);
  p += 8;
  p = ptv_be_put32(p, c->chunk);
  p = ptv_be_put64(p, c->ts_us);
  /* Only the content flags mean something to a player; SIGNED/DETACHED
   * describe the carriage and may differ between hops. */
  p = ptv_be_put8(p, (uint8_t)(c->flags & PTV_CHUNK_CONTENT_FLAGS));
  ptv_be_put32(p, c->payload_len);
}

int ptv_wire_encoded_len(const ptv_msg *m) {
  int blen;

  if (m == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  blen = body_len(m);
  if (blen < 0) {
    return blen;
  }
  return PTV_WIRE_HDRLEN + blen;
}

int ptv_wire_encode(uint8_t *buf, size_t cap, const ptv_msg *m) {
  uint8_t *p;
  int blen;

  if (m == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  blen = body_len(m);
  if (blen < 0) {
    return blen;
  }
  /* Check the whole size up front so nothing is written on failure. */
  if (buf == NULL || cap < (size_t)PTV_WIRE_HDRLEN + (size_t)blen) {
    return PTV_ERR_NOBUF;
  }

  p = buf;
  p = ptv_be_put8(p, PTV_WIRE_VERSION);
  p = ptv_be_put8(p, m->type);
  p = ptv_be_put32(p, (uint32_t)blen);
  p = put_body(p, m);

  return (int)(p - buf);
}

/* ---- decoder ---------------------------------------------------------- */

/* Decodes n descriptors from p; the caller has checked the length. */
static int get_descs(ptv_peer_desc *d, const uint8_t *p, size_t n) {
  size_t i;

  for (i = 0; i < n; ++i, p += PTV_DESCLEN) {
    d[i].id = ptv_be_get32(p);
    d[i].nat = p[4];
    d[i].age = p[5];
    d[i].upload_kbps = ptv_be_get32(p + 6);
    if (d[i].nat > PTV_NAT_MAX) {
      return PTV_ERR_MALFORMED;
    }
  }
  return 0;
}

static int decode_chunk(ptv_msg_chunk *c, const uint8_t *p, size_t blen) {
  size_t off = PTV_CHUNK_FIXLEN;

  if (blen < PTV_CHUNK_FIXLEN) {
    return PTV_ERR_MALFORMED;
  }
  c->chunk = ptv_be_get32(p);
  c->ts_us = ptv_be_get64(p + 4);
  c->flags = p[12];
  c->payload_len = ptv_be_get32(p + 13);
  if (c->flags & ~PTV_CHUNK_FLAGS_ALL) {
    return PTV_ERR_MALFORMED;
  }

  c->sig = NULL;
  if (c->flags & PTV_CHUNK_SIGNED) {
    if (blen - off < PTV_WIRE_SIGLEN) {
      return PTV_ERR_MALFORMED;
    }
    c->sig = p + off;
    off += PTV_WIRE_SIGLEN;
  }

  if (c->flags & PTV_CHUNK_DETACHED) {
    /* payload_len is only a size claim here; nothing may follow. */
    if (blen != off) {
      return PTV_ERR_MALFORMED;
    }
    c->payload = NULL;
    return 0;
  }

  if (blen - off != c->payload_len) {
    return PTV_ERR_MALFORMED;
  }
  c->payload = p + off;
  return 0;
}

/* OFFER / SELECT body: n:u8 id:u32*n, n <= PTV_WIRE_MAX_IDS. */
static int decode_ids(ptv_msg_ids *ids, const uint8_t *p, size_t blen) {
  size_t i;

  if (blen < PTV_IDS_FIXLEN) {
    return PTV_ERR_MALFORMED;
  }
  ids->n = p[0];
  if (ids->n > PTV_WIRE_MAX_IDS ||
      blen != PTV_IDS_FIXLEN + (size_t)PTV_IDLEN * ids->n) {
    return PTV_ERR_MALFORMED;
  }
  for (i = 0; i < ids->n; ++i) {
    ids->ids[i] = ptv_be_get32(p + PTV_IDS_FIXLEN + PTV_IDLEN * i);
  }
  return 0;
}

/* Decodes a body of exactly blen bytes at p into m (m->type already set). */
static int decode_body(ptv_msg *m, const uint8_t *p, size_t blen) {
  switch (m->type) {
  case PTV_MSG_JOIN:
    if (blen != PTV_JOIN_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.join.role = p[0];
    m->u.join.nat = p[1];
    m->u.join.upload_kbps = ptv_be_get32(p + 2);
    if (m->u.join.role > PTV_ROLE_SOURCE || m->u.join.nat > PTV_NAT_MAX) {
      return PTV_ERR_MALFORMED;
    }
    return 0;
  case PTV_MSG_PEERS: {
    ptv_msg_peers *pr = &m->u.peers;

    if (blen < PTV_PEERS_FIXLEN) {
      return PTV_ERR_MALFORMED;
    }
    pr->live = ptv_be_get32(p);
    pr->chunk_us = ptv_be_get32(p + 4);
    pr->cap_kbps = ptv_be_get32(p + 8);
    pr->n = p[12];
    if (pr->n > PTV_WIRE_MAX_DESCS ||
        blen != PTV_PEERS_FIXLEN + (size_t)PTV_DESCLEN * pr->n) {
      return PTV_ERR_MALFORMED;
    }
    return get_descs(pr->descs, p + PTV_PEERS_FIXLEN, pr->n);
  }
  case PTV_MSG_LEAVE:
    return blen == 0 ? 0 : PTV_ERR_MALFORMED;
  case PTV_MSG_HEARTBEAT:
    if (blen != PTV_HEARTBEAT_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.heartbeat.newest = ptv_be_get32(p);
    return 0;
  case PTV_MSG_SHUFFLE: {
    ptv_msg_shuffle *sh = &m->u.shuffle;

    if (blen < PTV_SHUFFLE_FIXLEN) {
      return PTV_ERR_MALFORMED;
    }
    sh->reply = p[0];
    sh->n = p[1];
    if (sh->reply > 1 || sh->n > PTV_WIRE_MAX_DESCS ||
        blen != PTV_SHUFFLE_FIXLEN + (size_t)PTV_DESCLEN * sh->n) {
      return PTV_ERR_MALFORMED;
    }
    return get_descs(sh->descs, p + PTV_SHUFFLE_FIXLEN, sh->n);
  }
  case PTV_MSG_CONNECT:
    if (blen != PTV_CONNECT_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.connect.nat = p[0];
    m->u.connect.flags = p[1];
    m->u.connect.upload_kbps = ptv_be_get32(p + 2);
    return m->u.connect.nat > PTV_NAT_MAX ? PTV_ERR_MALFORMED : 0;
  case PTV_MSG_CONNECT_ACK:
    if (blen != PTV_CONNECT_ACK_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.connect_ack.status = p[0];
    return m->u.connect_ack.status > PTV_ACK_MAX ? PTV_ERR_MALFORMED : 0;
  case PTV_MSG_DISCONNECT:
    if (blen != PTV_DISCONNECT_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.disconnect.reason = p[0];
    return 0;
  case PTV_MSG_BUFFERMAP: {
    ptv_msg_buffermap *bm = &m->u.buffermap;
    size_t n;

    if (blen < PTV_BUFFERMAP_FIXLEN) {
      return PTV_ERR_MALFORMED;
    }
    bm->base = ptv_be_get32(p);
    bm->nbits = ptv_be_get16(p + 4);
    bm->queue_ms = ptv_be_get16(p + 6);
    bm->play = ptv_be_get32(p + 8);
    bm->free_slots = p[12];
    bm->price_kbps = ptv_be_get16(p + 13);
    bm->suspect = ptv_be_get32(p + 15);
    bm->suspect_deliv = ptv_be_get16(p + 19);
    bm->ndepth = p[21];
    if (bm->nbits > PTV_WIRE_MAX_BITMAP_BITS || bm->ndepth > PTV_STRIPES_MAX) {
      return PTV_ERR_MALFORMED;
    }
    n = bitmap_len(bm->nbits);
    if (blen != PTV_BUFFERMAP_FIXLEN + 2 * (size_t)bm->ndepth + n) {
      return PTV_ERR_MALFORMED;
    }
    bm->depth = bm->ndepth ? p + PTV_BUFFERMAP_FIXLEN : NULL;
    bm->kids = bm->ndepth ? p + PTV_BUFFERMAP_FIXLEN + bm->ndepth : NULL;
    bm->bits = p + PTV_BUFFERMAP_FIXLEN + 2 * (size_t)bm->ndepth;
    /* Stray padding bits would give one map two encodings. */
    if (n && (bm->bits[n - 1] & bitmap_padmask(bm->nbits))) {
      return PTV_ERR_MALFORMED;
    }
    return 0;
  }
  case PTV_MSG_REQUEST:
    if (blen != PTV_REQUEST_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.request.chunk = ptv_be_get32(p);
    m->u.request.deadline_ms = ptv_be_get16(p + 4);
    m->u.request.played = p[6];
    return 0;
  case PTV_MSG_CHUNK:
    return decode_chunk(&m->u.chunk, p, blen);
  case PTV_MSG_BUSY:
    if (blen != PTV_BUSY_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.busy.chunk = ptv_be_get32(p);
    m->u.busy.reason = p[4];
    return m->u.busy.reason > PTV_BUSY_MAX ? PTV_ERR_MALFORMED : 0;
  case PTV_MSG_OFFER:
    return decode_ids(&m->u.offer, p, blen);
  case PTV_MSG_SELECT:
    return decode_ids(&m->u.select, p, blen);
  case PTV_MSG_STRIPES:
    if (blen != PTV_STRIPES_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.stripes.kind = p[0];
    m->u.stripes.mask = ptv_be_get16(p + 1);
    m->u.stripes.kbps = ptv_be_get32(p + 3);
    return m->u.stripes.kind > PTV_STRIPES_EVICT ? PTV_ERR_MALFORMED : 0;
  case PTV_MSG_REPORT:
    if (blen != PTV_REPORT_BODYLEN) {
      return PTV_ERR_MALFORMED;
    }
    m->u.report.suspect = ptv_be_get32(p);
    m->u.report.reason = p[4];
    return m->u.report.reason > PTV_REPORT_MAX ? PTV_ERR_MALFORMED : 0;
  default:
    return PTV_ERR_UNKNOWN_TYPE;
  }
}

int ptv_wire_loss_tolerant(const uint8_t *buf, size_t len) {
  if (buf == NULL || len < PTV_WIRE_HDRLEN) {
    return 0;
  }
  if (buf[1] == PTV_MSG_BUFFERMAP) {
    return 1;
  }
  return buf[1] == PTV_MSG_SELECT && len == PTV_WIRE_HDRLEN + PTV_IDS_FIXLEN &&
         buf[PTV_WIRE_HDRLEN] == 0;
}

int ptv_wire_decode(ptv_msg *m, const uint8_t *buf, size_t len) {
  uint32_t blen;
  uint8_t type;
  int rv;

  if (m == NULL || (buf == NULL && len > 0)) {
    return PTV_ERR_INVALID_ARG;
  }
  if (len < PTV_WIRE_HDRLEN) {
    return PTV_ERR_SHORT;
  }
  if (buf[0] != PTV_WIRE_VERSION) {
    return PTV_ERR_VERSION;
  }
  type = buf[1];
  if (type == 0 || type > PTV_MSG_TYPE_MAX) {
    return PTV_ERR_UNKNOWN_TYPE;
  }
  blen = ptv_be_get32(buf + 2);
  /* Checked before SHORT so a hostile length never makes a caller wait for
   * (or buffer) 4 GiB. */
  if (blen > PTV_WIRE_MAX_BODY) {
    return PTV_ERR_MALFORMED;
  }
  if (len - PTV_WIRE_HDRLEN < blen) {
    return PTV_ERR_SHORT;
  }

  m->type = type;
  rv = decode_body(m, buf + PTV_WIRE_HDRLEN, blen);
  if (rv != 0) {
    return rv;
  }
  return PTV_WIRE_HDRLEN + (int)blen;
}
