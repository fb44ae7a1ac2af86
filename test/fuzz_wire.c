/* fuzz_wire.c -- libFuzzer target for the wire codec.
 *
 * Decodes every message in the input back to back. Each accepted message is
 * re-encoded and decoded again; the copy must match field by field, and since
 * the format has exactly one encoding per message the re-encoded bytes must
 * also equal the bytes that were consumed. Any mismatch aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptv_ctl.h"
#include "ptv_err.h"
#include "ptv_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int descs_equal(const ptv_peer_desc *a, const ptv_peer_desc *b,
                       size_t n) {
  size_t i;

  for (i = 0; i < n; ++i) {
    if (a[i].id != b[i].id || a[i].nat != b[i].nat || a[i].age != b[i].age ||
        a[i].upload_kbps != b[i].upload_kbps) {
      return 0;
    }
  }
  return 1;
}

/* Pointers may differ (they point into different buffers); contents may not. */
static int bytes_equal(const uint8_t *a, const uint8_t *b, size_t n) {
  if (n == 0) {
    return 1;
  }
  if (a == NULL || b == NULL) {
    return 0;
  }
  return memcmp(a, b, n) == 0;
}

static int ids_equal(const ptv_msg_ids *a, const ptv_msg_ids *b) {
  size_t i;

  if (a->n != b->n || a->n > PTV_WIRE_MAX_IDS) {
    return 0;
  }
  for (i = 0; i < a->n; ++i) {
    if (a->ids[i] != b->ids[i]) {
      return 0;
    }
  }
  return 1;
}

static int msg_equal(const ptv_msg *a, const ptv_msg *b) {
  if (a->type != b->type) {
    return 0;
  }
  switch (a->type) {
  case PTV_MSG_JOIN:
    return a->u.join.role == b->u.join.role && a->u.join.nat == b->u.join.nat &&
           a->u.join.upload_kbps == b->u.join.upload_kbps;
  case PTV_MSG_PEERS:
    return a->u.peers.live == b->u.peers.live &&
           a->u.peers.chunk_us == b->u.peers.chunk_us &&
           a->u.peers.cap_kbps == b->u.peers.cap_kbps && a->u.peers.n == b->u.peers.n &&
           descs_equal(a->u.peers.descs, b->u.peers.descs, a->u.peers.n);
  case PTV_MSG_LEAVE:
    return 1;
  case PTV_MSG_HEARTBEAT:
    return a->u.heartbeat.newest == b->u.heartbeat.newest;
  case PTV_MSG_SHUFFLE:
    return a->u.shuffle.reply == b->u.shuffle.reply &&
           a->u.shuffle.n == b->u.shuffle.n &&
           descs_equal(a->u.shuffle.descs, b->u.shuffle.descs, a->u.shuffle.n);
  case PTV_MSG_CONNECT:
    return a->u.connect.nat == b->u.connect.nat &&
           a->u.connect.flags == b->u.connect.flags &&
           a->u.connect.upload_kbps == b->u.connect.upload_kbps;
  case PTV_MSG_CONNECT_ACK:
    return a->u.connect_ack.status == b->u.connect_ack.status;
  case PTV_MSG_DISCONNECT:
    return a->u.disconnect.reason == b->u.disconnect.reason;
  case PTV_MSG_BUFFERMAP:
    return a->u.buffermap.base == b->u.buffermap.base &&
           a->u.buffermap.nbits == b->u.buffermap.nbits &&
           a->u.buffermap.queue_ms == b->u.buffermap.queue_ms &&
           a->u.buffermap.play == b->u.buffermap.play &&
           a->u.buffermap.ndepth == b->u.buffermap.ndepth &&
           a->u.buffermap.suspect == b->u.buffermap.suspect &&
           a->u.buffermap.suspect_deliv == b->u.buffermap.suspect_deliv &&
           bytes_equal(a->u.buffermap.depth, b->u.buffermap.depth, a->u.buffermap.ndepth) &&
           bytes_equal(a->u.buffermap.kids, b->u.buffermap.kids, a->u.buffermap.ndepth) &&
           a->u.buffermap.free_slots == b->u.buffermap.free_slots &&
           a->u.buffermap.price_kbps == b->u.buffermap.price_kbps &&
           bytes_equal(a->u.buffermap.bits, b->u.buffermap.bits,
                       ((size_t)a->u.buffermap.nbits + 7) / 8);
  case PTV_MSG_REQUEST:
    return a->u.request.chunk == b->u.request.chunk &&
           a->u.request.deadline_ms == b->u.request.deadline_ms &&
           a->u.request.played == b->u.request.played;
  case PTV_MSG_CHUNK: {
    const ptv_msg_chunk *x = &a->u.chunk, *y = &b->u.chunk;

    if (x->chunk != y->chunk || x->ts_us != y->ts_us || x->flags != y->flags ||
        x->payload_len != y->payload_len) {
      return 0;
    }
    if (x->flags & PTV_CHUNK_SIGNED) {
      if (!bytes_equal(x->sig, y->sig, PTV_WIRE_SIGLEN)) {
        return 0;
      }
    } else if (x->sig != NULL || y->sig != NULL) {
      return 0;
    }
    if (x->flags & PTV_CHUNK_DETACHED) {
      return x->payload == NULL && y->payload == NULL;
    }
    return bytes_equal(x->payload, y->payload, x->payload_len);
  }
  case PTV_MSG_BUSY:
    return a->u.busy.chunk == b->u.busy.chunk &&
           a->u.busy.reason == b->u.busy.reason;
  case PTV_MSG_OFFER:
    return ids_equal(&a->u.offer, &b->u.offer);
  case PTV_MSG_SELECT:
    return ids_equal(&a->u.select, &b->u.select);
  case PTV_MSG_STRIPES:
    return a->u.stripes.kind == b->u.stripes.kind && a->u.stripes.mask == b->u.stripes.mask &&
           a->u.stripes.kbps == b->u.stripes.kbps;
  case PTV_MSG_REPORT:
    return a->u.report.suspect == b->u.report.suspect &&
           a->u.report.reason == b->u.report.reason;
  default:
    return 0;
  }
}

static void check_roundtrip(const ptv_msg *m, const uint8_t *wire,
                            size_t wirelen) {
  ptv_msg m2;
  uint8_t *out;
  int len, rv;

  len = ptv_wire_encoded_len(m);
  if (len < 0 || (size_t)len != wirelen) {
    abort();
  }
  /* Exactly sized heap buffer: ASan catches any write past the end. */
  out = malloc((size_t)len);
  if (out == NULL) {
    abort();
  }
  if (ptv_wire_encode(out, (size_t)len - 1, m) != PTV_ERR_NOBUF) {
    abort();
  }
  rv = ptv_wire_encode(out, (size_t)len, m);
  if (rv != len || memcmp(out, wire, wirelen) != 0) {
    abort();
  }
  rv = ptv_wire_decode(&m2, out, (size_t)len);
  if (rv != len || !msg_equal(m, &m2)) {
    abort();
  }
  free(out);
}

/* A control message (ptv_ctl, types from 32; same framing) must re-encode
 * to the very bytes it was decoded from. Returns its length or < 0. */
static int check_ctl(const uint8_t *data, size_t size) {
  ptv_ctl c;
  int rv = ptv_ctl_decode(&c, data, size);
  if (rv < 0) {
    if (rv != PTV_ERR_SHORT && rv != PTV_ERR_VERSION && rv != PTV_ERR_UNKNOWN_TYPE &&
        rv != PTV_ERR_MALFORMED) {
      abort();
    }
    return rv;
  }
  if ((size_t)rv < PTV_WIRE_HDRLEN || (size_t)rv > size) {
    abort();
  }
  uint8_t *out = malloc((size_t)rv);
  if (out == NULL || ptv_ctl_encode(out, (size_t)rv - 1, &c) != PTV_ERR_NOBUF ||
      ptv_ctl_encode(out, (size_t)rv, &c) != rv || memcmp(out, data, (size_t)rv) != 0) {
    abort();
  }
  free(out);
  if (ptv_ctl_frame_len(data, size, PTV_CTL_MAX_BODY) != rv) {
    abort();
  }
  return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  ptv_msg m;
  int rv;

  while (off < size) {
    rv = ptv_wire_decode(&m, data + off, size - off);
    if (rv == PTV_ERR_UNKNOWN_TYPE && size - off > 1 && data[off + 1] >= PTV_CTL_TYPE_MIN) {
      rv = check_ctl(data + off, size - off);
      if (rv < 0) {
        break;
      }
      off += (size_t)rv;
      continue;
    }
    if (rv < 0) {
      if (rv != PTV_ERR_SHORT && rv != PTV_ERR_VERSION &&
          rv != PTV_ERR_UNKNOWN_TYPE && rv != PTV_ERR_MALFORMED) {
        abort();
      }
      break;
    }
    if ((size_t)rv < PTV_WIRE_HDRLEN || (size_t)rv > size - off) {
      abort();
    }
    check_roundtrip(&m, data + off, (size_t)rv);
    off += (size_t)rv;
  }
  return 0;
}
