/* test_wire.c -- unit tests for the overlay wire codec. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"
#include "ptv_wire.h"

#define BUFSZ 4096

/* ---- helpers ------------------------------------------------------------ */

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Builds a raw message: header (version 1, type, body_len = blen) + body. */
static size_t mkraw(uint8_t *buf, uint8_t type, const uint8_t *body,
                    size_t blen) {
  buf[0] = PTV_WIRE_VERSION;
  buf[1] = type;
  put32(buf + 2, (uint32_t)blen);
  if (blen) {
    memcpy(buf + PTV_WIRE_HDRLEN, body, blen);
  }
  return PTV_WIRE_HDRLEN + blen;
}

/* Decodes from an exactly sized heap copy so ASan flags any read past len. */
static int decode_exact(ptv_msg *m, const uint8_t *p, size_t len) {
  uint8_t *copy = malloc(len ? len : 1);
  int rv;

  assert_non_null(copy);
  if (len) {
    memcpy(copy, p, len);
  }
  rv = ptv_wire_decode(m, copy, len);
  free(copy);
  return rv;
}

static int decode_raw(uint8_t type, const uint8_t *body, size_t blen) {
  uint8_t buf[BUFSZ];
  ptv_msg m;

  assert_true(blen + PTV_WIRE_HDRLEN <= sizeof(buf));
  return decode_exact(&m, buf, mkraw(buf, type, body, blen));
}

/* Encodes m into buf, checks encoded_len agrees and the header is right,
 * decodes into out and checks the whole buffer was consumed. */
static size_t roundtrip(const ptv_msg *m, ptv_msg *out, uint8_t *buf,
                        size_t cap) {
  int len = ptv_wire_encoded_len(m);
  int rv;

  assert_true(len >= PTV_WIRE_HDRLEN);
  rv = ptv_wire_encode(buf, cap, m);
  assert_int_equal(rv, len);
  assert_int_equal(buf[0], PTV_WIRE_VERSION);
  assert_int_equal(buf[1], m->type);
  assert_int_equal(((uint32_t)buf[2] << 24) | ((uint32_t)buf[3] << 16) |
                       ((uint32_t)buf[4] << 8) | buf[5],
                   (uint32_t)(len - PTV_WIRE_HDRLEN));
  memset(out, 0x5a, sizeof(*out));
  assert_int_equal(ptv_wire_decode(out, buf, (size_t)len), len);
  assert_int_equal(out->type, m->type);
  return (size_t)len;
}

static void fill_descs(ptv_peer_desc *d, size_t n) {
  size_t i;

  for (i = 0; i < n; ++i) {
    d[i].id = (ptv_id)(0x01020304u + i);
    d[i].nat = (uint8_t)(i % 4);
    d[i].age = (uint8_t)(i == 0 ? 255 : i);
    d[i].upload_kbps = i == 0 ? UINT32_MAX : (uint32_t)(i * 1000);
  }
}

static void assert_descs_equal(const ptv_peer_desc *a, const ptv_peer_desc *b,
                               size_t n) {
  size_t i;

  for (i = 0; i < n; ++i) {
    assert_int_equal(a[i].id, b[i].id);
    assert_int_equal(a[i].nat, b[i].nat);
    assert_int_equal(a[i].age, b[i].age);
    assert_int_equal(a[i].upload_kbps, b[i].upload_kbps);
  }
}

/* ---- round trips -------------------------------------------------------- */

static void test_join_bytes(void **state) {
  static const uint8_t want[] = {2, PTV_MSG_JOIN, 0, 0, 0, 6,
                                 1, 3,            0xde, 0xad, 0xbe, 0xef};
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_JOIN};

  m.u.join.role = PTV_ROLE_SOURCE;
  m.u.join.nat = PTV_NAT_UNKNOWN;
  m.u.join.upload_kbps = 0xdeadbeef;
  assert_int_equal(ptv_wire_encode(buf, sizeof(buf), &m), sizeof(want));
  assert_memory_equal(buf, want, sizeof(want));
}

static void test_roundtrip_join(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_JOIN}, out;
  unsigned role, nat;

  for (role = 0; role <= PTV_ROLE_SOURCE; ++role) {
    for (nat = 0; nat <= PTV_NAT_UNKNOWN; ++nat) {
      m.u.join.role = (uint8_t)role;
      m.u.join.nat = (uint8_t)nat;
      m.u.join.upload_kbps = role ? UINT32_MAX : 0;
      assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 12);
      assert_int_equal(out.u.join.role, role);
      assert_int_equal(out.u.join.nat, nat);
      assert_int_equal(out.u.join.upload_kbps, m.u.join.upload_kbps);
    }
  }
}

static void test_roundtrip_peers(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m, out;
  size_t len;

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_PEERS;
  m.u.peers.live = UINT32_MAX;
  m.u.peers.chunk_us = 0x11223344;
  m.u.peers.cap_kbps = 0x55667788;
  m.u.peers.n = 0;
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 13);
  assert_int_equal(out.u.peers.live, UINT32_MAX);
  assert_int_equal(out.u.peers.chunk_us, 0x11223344);
  assert_int_equal(out.u.peers.cap_kbps, 0x55667788);
  assert_int_equal(out.u.peers.n, 0);
  {
    static const uint8_t cap[] = {0x55, 0x66, 0x77, 0x88}; /* after chunk_us */
    assert_memory_equal(buf + 6 + 8, cap, sizeof(cap));
  }

  m.u.peers.live = 0;
  m.u.peers.n = PTV_WIRE_MAX_DESCS;
  fill_descs(m.u.peers.descs, PTV_WIRE_MAX_DESCS);
  len = roundtrip(&m, &out, buf, sizeof(buf));
  assert_int_equal(len, 6 + 13 + 10 * PTV_WIRE_MAX_DESCS);
  assert_int_equal(out.u.peers.live, 0);
  assert_int_equal(out.u.peers.n, PTV_WIRE_MAX_DESCS);
  assert_descs_equal(out.u.peers.descs, m.u.peers.descs, PTV_WIRE_MAX_DESCS);
  /* First descriptor on the wire: id:u32 nat:u8 age:u8 up:u32, big-endian. */
  {
    static const uint8_t d0[] = {1, 2, 3, 4, 0, 255, 0xff, 0xff, 0xff, 0xff};
    assert_memory_equal(buf + 6 + 13, d0, sizeof(d0));
    assert_int_equal(buf[6 + 12], PTV_WIRE_MAX_DESCS);
  }
}

static void test_roundtrip_leave(void **state) {
  static const uint8_t want[] = {2, PTV_MSG_LEAVE, 0, 0, 0, 0};
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_LEAVE}, out;

  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6);
  assert_memory_equal(buf, want, sizeof(want));
}

static void test_roundtrip_heartbeat(void **state) {
  static const uint8_t want[] = {2, PTV_MSG_HEARTBEAT, 0, 0, 0, 4,
                                 0x80, 0, 0, 1};
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_HEARTBEAT}, out;

  m.u.heartbeat.newest = 0x80000001u;
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), sizeof(want));
  assert_memory_equal(buf, want, sizeof(want));
  assert_int_equal(out.u.heartbeat.newest, 0x80000001u);
  m.u.heartbeat.newest = UINT32_MAX;
  roundtrip(&m, &out, buf, sizeof(buf));
  assert_int_equal(out.u.heartbeat.newest, UINT32_MAX);
}

static void test_roundtrip_shuffle(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m, out;

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_SHUFFLE;
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 2);
  assert_int_equal(out.u.shuffle.reply, 0);
  assert_int_equal(out.u.shuffle.n, 0);

  m.u.shuffle.reply = 1;
  m.u.shuffle.n = PTV_WIRE_MAX_DESCS;
  fill_descs(m.u.shuffle.descs, PTV_WIRE_MAX_DESCS);
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)),
                   6 + 2 + 10 * PTV_WIRE_MAX_DESCS);
  assert_int_equal(out.u.shuffle.reply, 1);
  assert_int_equal(out.u.shuffle.n, PTV_WIRE_MAX_DESCS);
  assert_descs_equal(out.u.shuffle.descs, m.u.shuffle.descs,
                     PTV_WIRE_MAX_DESCS);
}

static void test_roundtrip_connect(void **state) {
  static const uint8_t want[] = {2, PTV_MSG_CONNECT, 0, 0, 0, 6,
                                 2, 0xff, 0, 0, 3, 0};
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_CONNECT}, out;

  m.u.connect.nat = PTV_NAT_SYMMETRIC;
  m.u.connect.flags = 0xff;
  m.u.connect.upload_kbps = 768;
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), sizeof(want));
  assert_memory_equal(buf, want, sizeof(want));
  assert_int_equal(out.u.connect.nat, PTV_NAT_SYMMETRIC);
  assert_int_equal(out.u.connect.flags, 0xff);
  assert_int_equal(out.u.connect.upload_kbps, 768);
}

static void test_roundtrip_connect_ack(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_CONNECT_ACK}, out;
  unsigned s;

  for (s = 0; s <= PTV_ACK_REFUSED; ++s) {
    m.u.connect_ack.status = (uint8_t)s;
    assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 7);
    assert_int_equal(out.u.connect_ack.status, s);
  }
}

static void test_roundtrip_disconnect(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_DISCONNECT}, out;

  m.u.disconnect.reason = 0;
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 7);
  assert_int_equal(out.u.disconnect.reason, 0);
  m.u.disconnect.reason = 255; /* reason is opaque: any value goes */
  roundtrip(&m, &out, buf, sizeof(buf));
  assert_int_equal(out.u.disconnect.reason, 255);
}

static void test_roundtrip_buffermap(void **state) {
  static const uint16_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 511, 512};
  static const uint8_t depth[PTV_STRIPES_MAX] = {0, 1, 2, 255, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 254};
  static const uint8_t kids[PTV_STRIPES_MAX] = {3, 0, 255, 1, 2, 9, 4, 4, 0, 7, 1, 1, 0, 5, 6, 200};
  uint8_t bits[PTV_WIRE_MAX_BITMAP_BITS / 8];
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_BUFFERMAP}, out;
  size_t k;
  unsigned i, nbits;

  for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); ++k) {
    nbits = sizes[k];
    memset(bits, 0, sizeof(bits));
    for (i = 0; i < nbits; ++i) {
      if (i % 3 == 0 || i == nbits - 1) {
        ptv_wire_bit_set(bits, i);
      }
    }
    m.u.buffermap.base = 0xfedcba98u;
    m.u.buffermap.nbits = (uint16_t)nbits;
    m.u.buffermap.queue_ms = 65535;
    m.u.buffermap.play = 0x01020304u;
    m.u.buffermap.free_slots = 250;
    m.u.buffermap.suspect = 0xa1b2c3d4u;
    m.u.buffermap.suspect_deliv = 0x1234;
    m.u.buffermap.ndepth = (uint8_t)(k % 3 == 0 ? 0 : k % 3 == 1 ? 5 : PTV_STRIPES_MAX);
    m.u.buffermap.depth = depth;
    m.u.buffermap.kids = kids;
    m.u.buffermap.price_kbps = 0xbeef;
    m.u.buffermap.bits = nbits ? bits : NULL;
    assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)),
                     6 + 22 + 2 * m.u.buffermap.ndepth + (nbits + 7) / 8);
    assert_int_equal(out.u.buffermap.ndepth, m.u.buffermap.ndepth);
    if (m.u.buffermap.ndepth) {
      assert_memory_equal(out.u.buffermap.depth, depth, m.u.buffermap.ndepth);
      assert_memory_equal(out.u.buffermap.kids, kids, m.u.buffermap.ndepth);
    } else {
      assert_null(out.u.buffermap.depth);
      assert_null(out.u.buffermap.kids);
    }
    assert_int_equal(out.u.buffermap.free_slots, 250);
    assert_int_equal(out.u.buffermap.suspect, 0xa1b2c3d4u);
    assert_int_equal(out.u.buffermap.suspect_deliv, 0x1234);
    assert_int_equal(out.u.buffermap.price_kbps, 0xbeef);
    assert_int_equal(out.u.buffermap.base, 0xfedcba98u);
    assert_int_equal(out.u.buffermap.nbits, nbits);
    assert_int_equal(out.u.buffermap.queue_ms, 65535);
    assert_int_equal(out.u.buffermap.play, 0x01020304u);
    /* Bits point into the input buffer, not a copy. */
    if (nbits) {
      assert_ptr_equal(out.u.buffermap.bits, buf + 6 + 22 + 2 * m.u.buffermap.ndepth);
    }
    for (i = 0; i < nbits; ++i) {
      assert_int_equal(ptv_wire_bit_get(out.u.buffermap.bits, i),
                       i % 3 == 0 || i == nbits - 1);
    }
  }
}

static void test_roundtrip_stripes(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_STRIPES}, out;
  uint8_t kind;

  for (kind = 0; kind <= PTV_STRIPES_EVICT; ++kind) {
    m.u.stripes.kind = kind;
    m.u.stripes.mask = 0xa5c3;
    m.u.stripes.kbps = 0x89abcdefu;
    assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 7);
    assert_int_equal(out.u.stripes.kind, kind);
    assert_int_equal(out.u.stripes.mask, 0xa5c3);
    assert_int_equal(out.u.stripes.kbps, 0x89abcdefu);
    assert_int_equal(buf[6], kind); /* kind:u8 mask:u16 kbps:u32, big-endian */
    assert_int_equal(buf[7], 0xa5);
    assert_int_equal(buf[9], 0x89);
  }
  /* An unknown kind is refused both ways. */
  m.u.stripes.kind = PTV_STRIPES_EVICT + 1;
  assert_int_equal(ptv_wire_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  m.u.stripes.kind = PTV_STRIPES_EVICT;
  assert_int_equal(ptv_wire_encode(buf, sizeof(buf), &m), 13);
  buf[6] = PTV_STRIPES_EVICT + 1;
  assert_int_equal(ptv_wire_decode(&out, buf, 13), PTV_ERR_MALFORMED);
}

static void test_roundtrip_report(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_REPORT}, out;

  m.u.report.suspect = 0x01020304u;
  m.u.report.reason = PTV_REPORT_BAD_CHUNK;
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 5);
  assert_int_equal(out.u.report.suspect, 0x01020304u);
  assert_int_equal(out.u.report.reason, PTV_REPORT_BAD_CHUNK);
  assert_int_equal(buf[6], 0x01); /* suspect:u32 reason:u8, big-endian */
  assert_int_equal(buf[10], PTV_REPORT_BAD_CHUNK);
  m.u.report.reason = PTV_REPORT_MAX + 1;
  assert_int_equal(ptv_wire_encode(buf, sizeof(buf), &m), PTV_ERR_INVALID_ARG);
  buf[10] = PTV_REPORT_MAX + 1;
  assert_int_equal(ptv_wire_decode(&out, buf, 11), PTV_ERR_MALFORMED);
  buf[10] = PTV_REPORT_MALFORMED;
  assert_int_equal(ptv_wire_decode(&out, buf, 10), PTV_ERR_SHORT);
}

/* The signed bytes name the chunk, its time, its keyframe flag and its
 * length, and nothing that changes between hops. */
static void test_chunk_sigbase(void **state) {
  ptv_msg_chunk c = {.chunk = 7, .ts_us = 0x0102030405060708ull,
                     .flags = PTV_CHUNK_KEYFRAME | PTV_CHUNK_SIGNED, .payload_len = 300};
  uint8_t a[PTV_WIRE_SIGBASE_LEN], b[PTV_WIRE_SIGBASE_LEN];

  ptv_wire_chunk_sigbase(&c, a);
  assert_memory_equal(a, "PTVCHNK1", 8);
  assert_int_equal(a[11], 7);
  assert_int_equal(a[12], 0x01);
  assert_int_equal(a[20], 1);
  assert_int_equal(a[23], 300 >> 8);
  c.flags = PTV_CHUNK_KEYFRAME; /* carriage flags do not count */
  ptv_wire_chunk_sigbase(&c, b);
  assert_memory_equal(a, b, sizeof(a));
  c.flags = 0; /* the keyframe flag does */
  ptv_wire_chunk_sigbase(&c, b);
  assert_memory_not_equal(a, b, sizeof(a));
  c.flags = PTV_CHUNK_KEYFRAME | PTV_CHUNK_STALLED; /* and so does the stall flag */
  ptv_wire_chunk_sigbase(&c, b);
  assert_memory_not_equal(a, b, sizeof(a));
  assert_int_equal(b[20], PTV_CHUNK_KEYFRAME | PTV_CHUNK_STALLED);
  c.flags = PTV_CHUNK_STALLED | PTV_CHUNK_SIGNED | PTV_CHUNK_DETACHED;
  ptv_wire_chunk_sigbase(&c, b);
  assert_int_equal(b[20], PTV_CHUNK_STALLED);
  c.flags = PTV_CHUNK_KEYFRAME;
  c.chunk = 8;
  ptv_wire_chunk_sigbase(&c, b);
  assert_memory_not_equal(a, b, sizeof(a));
}

static void test_encode_buffermap_clears_padding(void **state) {
  static const uint8_t bits[] = {0xff, 0xff};
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_BUFFERMAP}, out;

  m.u.buffermap.nbits = 9;
  m.u.buffermap.bits = bits;
  roundtrip(&m, &out, buf, sizeof(buf));
  assert_int_equal(buf[6 + 22], 0xff);
  assert_int_equal(buf[6 + 23], 0x80);
}

static void test_roundtrip_request(void **state) {
  static const uint8_t want[] = {2, PTV_MSG_REQUEST, 0, 0, 0, 7,
                                 0x12, 0x34, 0x56, 0x78, 0xab, 0xcd, 0x9e};
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_REQUEST}, out;

  m.u.request.chunk = 0x12345678;
  m.u.request.deadline_ms = 0xabcd;
  m.u.request.played = 0x9e;
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), sizeof(want));
  assert_memory_equal(buf, want, sizeof(want));
  assert_int_equal(out.u.request.chunk, 0x12345678);
  assert_int_equal(out.u.request.deadline_ms, 0xabcd);
  assert_int_equal(out.u.request.played, 0x9e);
}

static void test_roundtrip_busy(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = {.type = PTV_MSG_BUSY}, out;
  unsigned r;

  for (r = 0; r <= PTV_BUSY_TOO_LATE; ++r) {
    m.u.busy.chunk = UINT32_MAX - r;
    m.u.busy.reason = (uint8_t)r;
    assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 5);
    assert_int_equal(out.u.busy.chunk, UINT32_MAX - r);
    assert_int_equal(out.u.busy.reason, r);
  }
}

/* OFFER / SELECT: the id list lives in u.offer or u.select by type. */
static ptv_msg ids_msg(uint8_t type, unsigned n) {
  ptv_msg m;
  ptv_msg_ids *ids;
  unsigned i;

  memset(&m, 0, sizeof(m));
  m.type = type;
  ids = type == PTV_MSG_OFFER ? &m.u.offer : &m.u.select;
  ids->n = (uint8_t)n;
  for (i = 0; i < n && i < PTV_WIRE_MAX_IDS; ++i) {
    ids->ids[i] = i == 0 ? UINT32_MAX : (ptv_chunk_id)(0x01020304u * i);
  }
  return m;
}

static void test_roundtrip_ids(void **state) {
  static const uint8_t types[] = {PTV_MSG_OFFER, PTV_MSG_SELECT};
  static const unsigned counts[] = {0, 1, PTV_WIRE_MAX_IDS};
  uint8_t buf[BUFSZ];
  ptv_msg m, out;
  const ptv_msg_ids *in_ids, *out_ids;
  size_t t, c, i;

  for (t = 0; t < 2; ++t) {
    for (c = 0; c < 3; ++c) {
      m = ids_msg(types[t], counts[c]);
      assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)),
                       6 + 1 + 4 * counts[c]);
      in_ids = types[t] == PTV_MSG_OFFER ? &m.u.offer : &m.u.select;
      out_ids = types[t] == PTV_MSG_OFFER ? &out.u.offer : &out.u.select;
      assert_int_equal(buf[6], counts[c]);
      assert_int_equal(out_ids->n, counts[c]);
      for (i = 0; i < counts[c]; ++i) {
        assert_int_equal(out_ids->ids[i], in_ids->ids[i]);
      }
    }
  }
}

static void test_ids_bytes(void **state) {
  static const uint8_t offer[] = {2,    PTV_MSG_OFFER, 0,    0,    0,
                                  9,    2,             0xff, 0xff, 0xff,
                                  0xff, 0x01,          0x02, 0x03, 0x04};
  static const uint8_t select[] = {2, PTV_MSG_SELECT, 0, 0, 0, 1, 0};
  uint8_t buf[BUFSZ];
  ptv_msg m = ids_msg(PTV_MSG_OFFER, 2), out;

  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), sizeof(offer));
  assert_memory_equal(buf, offer, sizeof(offer));
  m = ids_msg(PTV_MSG_SELECT, 0);
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), sizeof(select));
  assert_memory_equal(buf, select, sizeof(select));
}

static uint8_t test_sig[PTV_WIRE_SIGLEN];
static uint8_t test_payload[100];

static void init_blobs(void) {
  size_t i;

  for (i = 0; i < sizeof(test_sig); ++i) {
    test_sig[i] = (uint8_t)(0xa0 + i);
  }
  for (i = 0; i < sizeof(test_payload); ++i) {
    test_payload[i] = (uint8_t)(i * 3 + 1);
  }
}

static ptv_msg chunk_msg(uint8_t flags, uint32_t payload_len) {
  ptv_msg m;

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_CHUNK;
  m.u.chunk.chunk = 0xcafef00d;
  m.u.chunk.ts_us = 0x0102030405060708ull;
  m.u.chunk.flags = flags;
  m.u.chunk.payload_len = payload_len;
  m.u.chunk.sig = (flags & PTV_CHUNK_SIGNED) ? test_sig : NULL;
  m.u.chunk.payload = (flags & PTV_CHUNK_DETACHED) ? NULL : test_payload;
  return m;
}

static void test_chunk_bytes(void **state) {
  static const uint8_t want[] = {2,    PTV_MSG_CHUNK, 0,    0,    0,    20,
                                 0xca, 0xfe,          0xf0, 0x0d, 1,    2,
                                 3,    4,             5,    6,    7,    8,
                                 PTV_CHUNK_KEYFRAME,  0,    0,    0,    3,
                                 1,    4,             7};
  uint8_t buf[BUFSZ];
  ptv_msg m = chunk_msg(PTV_CHUNK_KEYFRAME, 3), out;

  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), sizeof(want));
  assert_memory_equal(buf, want, sizeof(want));
  assert_int_equal(out.u.chunk.chunk, 0xcafef00d);
  assert_true(out.u.chunk.ts_us == 0x0102030405060708ull);
  assert_int_equal(out.u.chunk.flags, PTV_CHUNK_KEYFRAME);
  assert_int_equal(out.u.chunk.payload_len, 3);
  assert_null(out.u.chunk.sig);
  assert_ptr_equal(out.u.chunk.payload, buf + 6 + 17);
}

static void test_roundtrip_chunk_signed(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = chunk_msg(PTV_CHUNK_SIGNED | PTV_CHUNK_KEYFRAME,
                        sizeof(test_payload)),
          out;

  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)),
                   6 + 17 + PTV_WIRE_SIGLEN + sizeof(test_payload));
  assert_int_equal(out.u.chunk.flags, PTV_CHUNK_SIGNED | PTV_CHUNK_KEYFRAME);
  assert_ptr_equal(out.u.chunk.sig, buf + 6 + 17);
  assert_memory_equal(out.u.chunk.sig, test_sig, PTV_WIRE_SIGLEN);
  assert_int_equal(out.u.chunk.payload_len, sizeof(test_payload));
  assert_ptr_equal(out.u.chunk.payload, buf + 6 + 17 + PTV_WIRE_SIGLEN);
  assert_memory_equal(out.u.chunk.payload, test_payload, sizeof(test_payload));
}

/* A signed stall notice keeps its flag through the codec. */
static void test_roundtrip_chunk_stalled(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = chunk_msg(PTV_CHUNK_SIGNED | PTV_CHUNK_STALLED, sizeof(test_payload)), out;

  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)),
                   6 + 17 + PTV_WIRE_SIGLEN + sizeof(test_payload));
  assert_int_equal(buf[6 + 12], PTV_CHUNK_SIGNED | PTV_CHUNK_STALLED);
  assert_int_equal(out.u.chunk.flags, PTV_CHUNK_SIGNED | PTV_CHUNK_STALLED);
  assert_memory_equal(out.u.chunk.payload, test_payload, sizeof(test_payload));
}

static void test_roundtrip_chunk_detached(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = chunk_msg(PTV_CHUNK_DETACHED, UINT32_MAX), out;

  /* payload_len only states a size: the body stops after the header. */
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 17);
  assert_int_equal(out.u.chunk.payload_len, UINT32_MAX);
  assert_null(out.u.chunk.payload);
  assert_null(out.u.chunk.sig);

  m = chunk_msg(PTV_CHUNK_FLAGS_ALL, 1316);
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)),
                   6 + 17 + PTV_WIRE_SIGLEN);
  assert_int_equal(out.u.chunk.flags, PTV_CHUNK_FLAGS_ALL);
  assert_int_equal(out.u.chunk.payload_len, 1316);
  assert_null(out.u.chunk.payload);
  assert_memory_equal(out.u.chunk.sig, test_sig, PTV_WIRE_SIGLEN);

  /* A stray payload pointer on a detached chunk is not sent. */
  m = chunk_msg(PTV_CHUNK_DETACHED, 50);
  m.u.chunk.payload = test_payload;
  assert_int_equal(ptv_wire_encoded_len(&m), 6 + 17);
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 17);
}

static void test_roundtrip_chunk_empty_payload(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m = chunk_msg(0, 0), out;

  m.u.chunk.payload = NULL; /* allowed: nothing to copy */
  assert_int_equal(roundtrip(&m, &out, buf, sizeof(buf)), 6 + 17);
  assert_int_equal(out.u.chunk.payload_len, 0);
  assert_int_equal(out.u.chunk.flags, 0);

  /* A sig pointer without SIGNED is not sent either. */
  m.u.chunk.sig = test_sig;
  assert_int_equal(ptv_wire_encoded_len(&m), 6 + 17);
}

/* The largest body the decoder accepts is exactly PTV_WIRE_MAX_BODY. */
static void test_chunk_max_body(void **state) {
  const uint32_t maxpl = PTV_WIRE_MAX_BODY - 17;
  size_t cap = PTV_WIRE_HDRLEN + PTV_WIRE_MAX_BODY;
  uint8_t *big = calloc(1, cap), *payload = calloc(1, maxpl);
  ptv_msg m = chunk_msg(0, maxpl), out;

  assert_non_null(big);
  assert_non_null(payload);
  payload[maxpl - 1] = 0x42;
  m.u.chunk.payload = payload;
  assert_int_equal(ptv_wire_encoded_len(&m), (int)cap);
  assert_int_equal(ptv_wire_encode(big, cap, &m), (int)cap);
  assert_int_equal(ptv_wire_decode(&out, big, cap), (int)cap);
  assert_int_equal(out.u.chunk.payload_len, maxpl);
  assert_int_equal(out.u.chunk.payload[maxpl - 1], 0x42);

  /* One more byte would exceed the body limit. */
  m.u.chunk.payload_len = maxpl + 1;
  assert_int_equal(ptv_wire_encoded_len(&m), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_wire_encode(big, cap, &m), PTV_ERR_INVALID_ARG);
  m = chunk_msg(PTV_CHUNK_SIGNED, maxpl - PTV_WIRE_SIGLEN + 1);
  m.u.chunk.payload = payload;
  assert_int_equal(ptv_wire_encoded_len(&m), PTV_ERR_INVALID_ARG);
  m.u.chunk.payload_len = maxpl - PTV_WIRE_SIGLEN;
  assert_int_equal(ptv_wire_encoded_len(&m), (int)cap);

  free(payload);
  free(big);
}

static void test_back_to_back(void **state) {
  uint8_t buf[BUFSZ], bits[2] = {0xc0, 0x80};
  ptv_msg msgs[6], out;
  size_t off = 0, ends[6], i;
  int rv;

  memset(msgs, 0, sizeof(msgs));
  msgs[0].type = PTV_MSG_JOIN;
  msgs[0].u.join.upload_kbps = 1;
  msgs[1].type = PTV_MSG_PEERS;
  msgs[1].u.peers.n = 3;
  fill_descs(msgs[1].u.peers.descs, 3);
  msgs[2] = chunk_msg(PTV_CHUNK_SIGNED, 10);
  msgs[3].type = PTV_MSG_BUFFERMAP;
  msgs[3].u.buffermap.nbits = 9;
  msgs[3].u.buffermap.bits = bits;
  msgs[4].type = PTV_MSG_LEAVE;
  msgs[5].type = PTV_MSG_BUSY;
  msgs[5].u.busy.chunk = 9;
  for (i = 0; i < 6; ++i) {
    rv = ptv_wire_encode(buf + off, sizeof(buf) - off, &msgs[i]);
    assert_true(rv > 0);
    off += (size_t)rv;
    ends[i] = off;
  }

  off = 0;
  for (i = 0; i < 6; ++i) {
    rv = decode_exact(&out, buf + off, ends[5] - off);
    assert_int_equal(rv, (int)(ends[i] - off));
    assert_int_equal(out.type, msgs[i].type);
    off += (size_t)rv;
  }
  assert_int_equal(off, ends[5]);
  /* Spot-check contents survive being decoded mid-buffer. */
  rv = ptv_wire_decode(&out, buf + ends[0], ends[5] - ends[0]);
  assert_int_equal(rv, (int)(ends[1] - ends[0]));
  assert_int_equal(out.u.peers.n, 3);
  assert_descs_equal(out.u.peers.descs, msgs[1].u.peers.descs, 3);
  rv = ptv_wire_decode(&out, buf + ends[1], ends[5] - ends[1]);
  assert_int_equal(rv, (int)(ends[2] - ends[1]));
  assert_memory_equal(out.u.chunk.payload, test_payload, 10);

  /* A cut-off message at the end of the stream is SHORT, not garbage. */
  assert_int_equal(decode_exact(&out, buf + ends[4], ends[5] - ends[4] - 1),
                   PTV_ERR_SHORT);
}

/* ---- header rejections -------------------------------------------------- */

static void test_decode_short_header(void **state) {
  uint8_t buf[PTV_WIRE_HDRLEN] = {PTV_WIRE_VERSION, PTV_MSG_LEAVE, 0, 0, 0, 0};
  ptv_msg m;
  size_t len;

  for (len = 0; len < PTV_WIRE_HDRLEN; ++len) {
    assert_int_equal(decode_exact(&m, buf, len), PTV_ERR_SHORT);
  }
  assert_int_equal(ptv_wire_decode(&m, NULL, 0), PTV_ERR_SHORT);
  assert_int_equal(decode_exact(&m, buf, PTV_WIRE_HDRLEN), PTV_WIRE_HDRLEN);
}

static void test_decode_version(void **state) {
  static const uint8_t versions[] = {0, 1, 3, 255}; /* 1: before BUFFERMAP's kids */
  uint8_t buf[PTV_WIRE_HDRLEN] = {PTV_WIRE_VERSION, PTV_MSG_LEAVE, 0, 0, 0, 0};
  ptv_msg m;
  size_t i;

  for (i = 0; i < sizeof(versions); ++i) {
    buf[0] = versions[i];
    assert_int_equal(decode_exact(&m, buf, sizeof(buf)), PTV_ERR_VERSION);
  }
}

static void test_decode_unknown_type(void **state) {
  /* 17 is the first unassigned type since REPORT (16). */
  static const uint8_t types[] = {0, 17, 18, 255};
  uint8_t buf[PTV_WIRE_HDRLEN + 1] = {PTV_WIRE_VERSION, 0, 0, 0, 0, 0, 0};
  ptv_msg m;
  size_t i;

  assert_int_equal(PTV_MSG_TYPE_MAX, 16);
  assert_int_equal(PTV_MSG_TYPE_MAX + 1, 17);
  for (i = 0; i < sizeof(types); ++i) {
    buf[1] = types[i];
    assert_int_equal(decode_exact(&m, buf, PTV_WIRE_HDRLEN),
                     PTV_ERR_UNKNOWN_TYPE);
  }
  /* The newer types are known: an empty id list (n = 0) decodes. */
  for (i = PTV_MSG_OFFER; i <= PTV_MSG_SELECT; ++i) {
    buf[1] = (uint8_t)i;
    buf[5] = 1;
    assert_int_equal(decode_exact(&m, buf, sizeof(buf)), PTV_WIRE_HDRLEN + 1);
    assert_int_equal(m.type, i);
    buf[5] = 0;
    assert_int_equal(decode_exact(&m, buf, PTV_WIRE_HDRLEN),
                     PTV_ERR_MALFORMED);
  }
}

static void test_decode_body_too_large(void **state) {
  uint8_t buf[PTV_WIRE_HDRLEN] = {PTV_WIRE_VERSION, PTV_MSG_CHUNK};
  ptv_msg m;

  /* Rejected from the header alone, before waiting for the body. */
  put32(buf + 2, PTV_WIRE_MAX_BODY + 1);
  assert_int_equal(decode_exact(&m, buf, sizeof(buf)), PTV_ERR_MALFORMED);
  put32(buf + 2, UINT32_MAX);
  assert_int_equal(decode_exact(&m, buf, sizeof(buf)), PTV_ERR_MALFORMED);
  /* Exactly the limit is legal, so this is merely incomplete. */
  put32(buf + 2, PTV_WIRE_MAX_BODY);
  assert_int_equal(decode_exact(&m, buf, sizeof(buf)), PTV_ERR_SHORT);
}

/* Every strict prefix of a valid message (past the header) is SHORT. */
static void test_decode_truncated(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg msgs[5], out;
  size_t i, len, cut;
  int rv;

  msgs[4] = ids_msg(PTV_MSG_OFFER, 3);
  msgs[0] = chunk_msg(PTV_CHUNK_SIGNED, 20);
  memset(&msgs[1], 0, sizeof(msgs[1]));
  msgs[1].type = PTV_MSG_PEERS;
  msgs[1].u.peers.n = 2;
  fill_descs(msgs[1].u.peers.descs, 2);
  memset(&msgs[2], 0, sizeof(msgs[2]));
  msgs[2].type = PTV_MSG_JOIN;
  memset(&msgs[3], 0, sizeof(msgs[3]));
  msgs[3].type = PTV_MSG_BUFFERMAP;
  msgs[3].u.buffermap.nbits = 16;
  msgs[3].u.buffermap.bits = test_payload;
  for (i = 0; i < 5; ++i) {
    rv = ptv_wire_encode(buf, sizeof(buf), &msgs[i]);
    assert_true(rv > PTV_WIRE_HDRLEN);
    len = (size_t)rv;
    for (cut = PTV_WIRE_HDRLEN; cut < len; ++cut) {
      assert_int_equal(decode_exact(&out, buf, cut), PTV_ERR_SHORT);
    }
    assert_int_equal(decode_exact(&out, buf, len), (int)len);
  }
}

/* ---- body rejections ---------------------------------------------------- */

/* Fixed-size bodies: one byte short or one trailing byte is malformed. An
 * all-zero body is valid for each of these types. */
static void test_decode_fixed_body_length(void **state) {
  static const struct {
    uint8_t type;
    size_t len;
  } fixed[] = {
      {PTV_MSG_JOIN, 6},        {PTV_MSG_LEAVE, 0},      {PTV_MSG_HEARTBEAT, 4},
      {PTV_MSG_CONNECT, 6},     {PTV_MSG_CONNECT_ACK, 1}, {PTV_MSG_DISCONNECT, 1},
      {PTV_MSG_REQUEST, 7},     {PTV_MSG_BUSY, 5},       {PTV_MSG_STRIPES, 7},
  };
  uint8_t zero[32] = {0};
  size_t i;

  for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); ++i) {
    assert_int_equal(decode_raw(fixed[i].type, zero, fixed[i].len),
                     (int)(PTV_WIRE_HDRLEN + fixed[i].len));
    assert_int_equal(decode_raw(fixed[i].type, zero, fixed[i].len + 1),
                     PTV_ERR_MALFORMED);
    if (fixed[i].len > 0) {
      assert_int_equal(decode_raw(fixed[i].type, zero, fixed[i].len - 1),
                       PTV_ERR_MALFORMED);
    }
  }
  /* The variable-length types have fixed parts too. */
  assert_int_equal(decode_raw(PTV_MSG_PEERS, zero, 12), PTV_ERR_MALFORMED);
  assert_int_equal(decode_raw(PTV_MSG_SHUFFLE, zero, 1), PTV_ERR_MALFORMED);
  assert_int_equal(decode_raw(PTV_MSG_BUFFERMAP, zero, 7), PTV_ERR_MALFORMED);
  assert_int_equal(decode_raw(PTV_MSG_BUFFERMAP, zero, 21), PTV_ERR_MALFORMED);
  assert_int_equal(decode_raw(PTV_MSG_BUFFERMAP, zero, 22), PTV_WIRE_HDRLEN + 22);
  {
    /* ndepth counts two bytes per stripe (depth, children) that must be
     * there, and at most PTV_STRIPES_MAX stripes */
    uint8_t bm[22 + 2 * (PTV_STRIPES_MAX + 1)] = {0};
    bm[21] = 3;
    assert_int_equal(decode_raw(PTV_MSG_BUFFERMAP, bm, 25), PTV_ERR_MALFORMED);
    assert_int_equal(decode_raw(PTV_MSG_BUFFERMAP, bm, 27), PTV_ERR_MALFORMED);
    assert_int_equal(decode_raw(PTV_MSG_BUFFERMAP, bm, 28), PTV_WIRE_HDRLEN + 28);
    bm[21] = PTV_STRIPES_MAX + 1;
    assert_int_equal(decode_raw(PTV_MSG_BUFFERMAP, bm, 22 + 2 * (PTV_STRIPES_MAX + 1)),
                     PTV_ERR_MALFORMED);
  }
  assert_int_equal(decode_raw(PTV_MSG_CHUNK, zero, 16), PTV_ERR_MALFORMED);
  assert_int_equal(decode_raw(PTV_MSG_CHUNK, zero, 17), PTV_WIRE_HDRLEN + 17);
}

/* body = prefix (fix bytes, count at cnt_off) + n zeroed descriptors. */
static int decode_desc_list(uint8_t type, size_t fix, size_t cnt_off,
                            unsigned n_field, size_t n_actual, size_t extra) {
  uint8_t body[BUFSZ];
  size_t blen = fix + 10 * n_actual + extra;

  assert_true(blen <= sizeof(body));
  memset(body, 0, blen);
  body[cnt_off] = (uint8_t)n_field;
  return decode_raw(type, body, blen);
}

static void test_decode_desc_count(void **state) {
  static const struct {
    uint8_t type;
    size_t fix, cnt;
  } lists[] = {{PTV_MSG_PEERS, 13, 12}, {PTV_MSG_SHUFFLE, 2, 1}};
  size_t i, fix, cnt;
  uint8_t t;

  for (i = 0; i < 2; ++i) {
    t = lists[i].type;
    fix = lists[i].fix;
    cnt = lists[i].cnt;
    assert_int_equal(decode_desc_list(t, fix, cnt, 2, 2, 0),
                     (int)(6 + fix + 20));
    assert_int_equal(decode_desc_list(t, fix, cnt, 64, 64, 0),
                     (int)(6 + fix + 640));
    /* count and body disagree */
    assert_int_equal(decode_desc_list(t, fix, cnt, 2, 1, 0), PTV_ERR_MALFORMED);
    assert_int_equal(decode_desc_list(t, fix, cnt, 2, 2, 1), PTV_ERR_MALFORMED);
    assert_int_equal(decode_desc_list(t, fix, cnt, 2, 2, 9), PTV_ERR_MALFORMED);
    assert_int_equal(decode_desc_list(t, fix, cnt, 0, 0, 10),
                     PTV_ERR_MALFORMED);
    /* too many, even when the body is consistent with the count */
    assert_int_equal(decode_desc_list(t, fix, cnt, 65, 65, 0),
                     PTV_ERR_MALFORMED);
    assert_int_equal(decode_desc_list(t, fix, cnt, 255, 255, 0),
                     PTV_ERR_MALFORMED);
  }
}

static void test_decode_nat_range(void **state) {
  uint8_t body[13 + 20];
  unsigned nat;
  int ok;

  for (nat = 0; nat <= 4; ++nat) {
    ok = nat <= PTV_NAT_UNKNOWN;
    {
      uint8_t join[6] = {0, (uint8_t)nat, 0, 0, 0, 0};
      assert_int_equal(decode_raw(PTV_MSG_JOIN, join, 6),
                       ok ? 12 : PTV_ERR_MALFORMED);
    }
    {
      uint8_t conn[6] = {(uint8_t)nat, 0, 0, 0, 0, 0};
      assert_int_equal(decode_raw(PTV_MSG_CONNECT, conn, 6),
                       ok ? 12 : PTV_ERR_MALFORMED);
    }
    /* The bad descriptor is the second one, to catch a loop checking only
     * the first. */
    memset(body, 0, sizeof(body));
    body[12] = 2;
    body[13 + 10 + 4] = (uint8_t)nat;
    assert_int_equal(decode_raw(PTV_MSG_PEERS, body, 13 + 20),
                     ok ? 6 + 33 : PTV_ERR_MALFORMED);
    memset(body, 0, sizeof(body));
    body[1] = 2;
    body[2 + 10 + 4] = (uint8_t)nat;
    assert_int_equal(decode_raw(PTV_MSG_SHUFFLE, body, 2 + 20),
                     ok ? 6 + 22 : PTV_ERR_MALFORMED);
  }
  {
    uint8_t join[6] = {0, 255, 0, 0, 0, 0};
    assert_int_equal(decode_raw(PTV_MSG_JOIN, join, 6), PTV_ERR_MALFORMED);
  }
}

static void test_decode_enum_ranges(void **state) {
  uint8_t join[6] = {0}, shuffle[2] = {0}, ack[1], busy[5] = {0};

  join[0] = PTV_ROLE_SOURCE;
  assert_int_equal(decode_raw(PTV_MSG_JOIN, join, 6), 12);
  join[0] = 2;
  assert_int_equal(decode_raw(PTV_MSG_JOIN, join, 6), PTV_ERR_MALFORMED);

  shuffle[0] = 1;
  assert_int_equal(decode_raw(PTV_MSG_SHUFFLE, shuffle, 2), 8);
  shuffle[0] = 2;
  assert_int_equal(decode_raw(PTV_MSG_SHUFFLE, shuffle, 2), PTV_ERR_MALFORMED);
  shuffle[0] = 0xff;
  assert_int_equal(decode_raw(PTV_MSG_SHUFFLE, shuffle, 2), PTV_ERR_MALFORMED);

  ack[0] = PTV_ACK_REFUSED;
  assert_int_equal(decode_raw(PTV_MSG_CONNECT_ACK, ack, 1), 7);
  ack[0] = 3;
  assert_int_equal(decode_raw(PTV_MSG_CONNECT_ACK, ack, 1), PTV_ERR_MALFORMED);

  busy[4] = PTV_BUSY_TOO_LATE;
  assert_int_equal(decode_raw(PTV_MSG_BUSY, busy, 5), 11);
  busy[4] = 3;
  assert_int_equal(decode_raw(PTV_MSG_BUSY, busy, 5), PTV_ERR_MALFORMED);
}

/* OFFER / SELECT body: count byte n_field followed by nbytes of ids. */
static int decode_ids_raw(uint8_t type, unsigned n_field, size_t nbytes) {
  uint8_t body[1 + 4 * 256];
  size_t i;

  assert_true(1 + nbytes <= sizeof(body));
  body[0] = (uint8_t)n_field;
  for (i = 0; i < nbytes; ++i) {
    body[1 + i] = (uint8_t)(0xa0 + i);
  }
  return decode_raw(type, body, 1 + nbytes);
}

static void test_decode_ids(void **state) {
  static const uint8_t types[] = {PTV_MSG_OFFER, PTV_MSG_SELECT};
  uint8_t buf[16], body[9] = {2, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7};
  ptv_msg m;
  size_t i;
  uint8_t t;

  for (i = 0; i < 2; ++i) {
    t = types[i];
    assert_int_equal(decode_ids_raw(t, 0, 0), 6 + 1);
    assert_int_equal(decode_ids_raw(t, 1, 4), 6 + 5);
    assert_int_equal(decode_ids_raw(t, 16, 64), 6 + 65);
    /* too many ids, even with a body consistent with the count */
    assert_int_equal(decode_ids_raw(t, 17, 68), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 17, 64), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 255, 1020), PTV_ERR_MALFORMED);
    /* no count byte at all */
    assert_int_equal(decode_raw(t, body, 0), PTV_ERR_MALFORMED);
    /* body too short for the count */
    assert_int_equal(decode_ids_raw(t, 1, 0), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 1, 3), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 16, 63), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 16, 60), PTV_ERR_MALFORMED);
    /* body too long for the count */
    assert_int_equal(decode_ids_raw(t, 0, 1), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 0, 4), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 1, 5), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 1, 8), PTV_ERR_MALFORMED);
    assert_int_equal(decode_ids_raw(t, 16, 65), PTV_ERR_MALFORMED);

    /* Ids are big-endian and land in the member named by the type. */
    assert_int_equal(decode_exact(&m, buf, mkraw(buf, t, body, sizeof(body))),
                     6 + 9);
    assert_int_equal(m.type, t);
    {
      const ptv_msg_ids *ids = t == PTV_MSG_OFFER ? &m.u.offer : &m.u.select;
      assert_int_equal(ids->n, 2);
      assert_int_equal(ids->ids[0], 0xdeadbeefu);
      assert_int_equal(ids->ids[1], 7);
    }
  }
}

static int decode_bitmap(unsigned nbits, const uint8_t *bits, size_t nbytes) {
  uint8_t body[22 + 80] = {0};

  body[4] = (uint8_t)(nbits >> 8);
  body[5] = (uint8_t)nbits;
  memcpy(body + 22, bits, nbytes);
  return decode_raw(PTV_MSG_BUFFERMAP, body, 22 + nbytes);
}

static void test_decode_bitmap(void **state) {
  uint8_t bits[80];
  unsigned nbits, pad;

  memset(bits, 0xff, sizeof(bits));
  assert_int_equal(decode_bitmap(512, bits, 64), 6 + 22 + 64);
  assert_int_equal(decode_bitmap(513, bits, 65), PTV_ERR_MALFORMED);
  assert_int_equal(decode_bitmap(520, bits, 65), PTV_ERR_MALFORMED);
  assert_int_equal(decode_bitmap(0xffff, bits, 0), PTV_ERR_MALFORMED);
  assert_int_equal(decode_bitmap(0, bits, 0), 6 + 22);
  assert_int_equal(decode_bitmap(8, bits, 1), 6 + 22 + 1);
  /* bitmap byte count must be exactly ceil(nbits / 8) */
  assert_int_equal(decode_bitmap(0, bits, 1), PTV_ERR_MALFORMED);
  assert_int_equal(decode_bitmap(9, bits + 1, 1), PTV_ERR_MALFORMED);
  memset(bits, 0, sizeof(bits));
  assert_int_equal(decode_bitmap(9, bits, 3), PTV_ERR_MALFORMED);
  assert_int_equal(decode_bitmap(512, bits, 63), PTV_ERR_MALFORMED);

  /* Each padding bit alone is rejected; the last real bit alone is not. */
  for (nbits = 1; nbits < 16; ++nbits) {
    if (nbits % 8 == 0) {
      continue;
    }
    memset(bits, 0, sizeof(bits));
    ptv_wire_bit_set(bits, nbits - 1);
    assert_int_equal(decode_bitmap(nbits, bits, (nbits + 7) / 8),
                     (int)(6 + 22 + (nbits + 7) / 8));
    for (pad = nbits; pad % 8 != 0; ++pad) {
      memset(bits, 0, sizeof(bits));
      ptv_wire_bit_set(bits, pad);
      assert_int_equal(decode_bitmap(nbits, bits, (nbits + 7) / 8),
                       PTV_ERR_MALFORMED);
    }
  }
  memset(bits, 0, sizeof(bits));
  bits[63] = 0x01;
  assert_int_equal(decode_bitmap(511, bits, 64), PTV_ERR_MALFORMED);
}

/* Chunk body: chunk:u32 ts:u64 flags:u8 payload_len:u32 [sig] [payload]. */
static int decode_chunk_raw(uint8_t flags, uint32_t payload_len, size_t tail) {
  uint8_t body[17 + 200] = {0};

  assert_true(tail <= 200);
  body[12] = flags;
  put32(body + 13, payload_len);
  return decode_raw(PTV_MSG_CHUNK, body, 17 + tail);
}

static void test_decode_chunk_flags(void **state) {
  static const uint8_t bad[] = {0x10, 0x20, 0x80, 0xff, PTV_CHUNK_FLAGS_ALL | 0x40};
  size_t i;

  for (i = 0; i < sizeof(bad); ++i) {
    assert_int_equal(decode_chunk_raw(bad[i], 0, 0), PTV_ERR_MALFORMED);
  }
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_KEYFRAME, 0, 0), 6 + 17);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_STALLED, 0, 0), 6 + 17);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_STALLED | PTV_CHUNK_KEYFRAME, 0, 0), 6 + 17);
}

static void test_decode_chunk_payload_length(void **state) {
  /* carried payload must be exactly payload_len bytes */
  assert_int_equal(decode_chunk_raw(0, 5, 5), 6 + 22);
  assert_int_equal(decode_chunk_raw(0, 5, 4), PTV_ERR_MALFORMED);
  assert_int_equal(decode_chunk_raw(0, 5, 6), PTV_ERR_MALFORMED);
  assert_int_equal(decode_chunk_raw(0, 0, 1), PTV_ERR_MALFORMED);
  assert_int_equal(decode_chunk_raw(0, UINT32_MAX, 100), PTV_ERR_MALFORMED);
  /* with a signature in front */
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_SIGNED, 5, 64 + 5), 6 + 86);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_SIGNED, 5, 64 + 4),
                   PTV_ERR_MALFORMED);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_SIGNED, 5, 64 + 6),
                   PTV_ERR_MALFORMED);
  /* a signature that is cut short */
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_SIGNED, 0, 64), 6 + 81);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_SIGNED, 0, 63),
                   PTV_ERR_MALFORMED);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_SIGNED, 0, 0), PTV_ERR_MALFORMED);
}

static void test_decode_chunk_detached(void **state) {
  ptv_msg m;
  uint8_t buf[64];
  uint8_t body[17] = {0};

  /* The body ends after the header (or signature) whatever payload_len says. */
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_DETACHED, 1000, 0), 6 + 17);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_DETACHED, 1000, 1),
                   PTV_ERR_MALFORMED);
  assert_int_equal(decode_chunk_raw(PTV_CHUNK_DETACHED, 0, 1),
                   PTV_ERR_MALFORMED);
  assert_int_equal(
      decode_chunk_raw(PTV_CHUNK_DETACHED | PTV_CHUNK_SIGNED, 1000, 64),
      6 + 81);
  assert_int_equal(
      decode_chunk_raw(PTV_CHUNK_DETACHED | PTV_CHUNK_SIGNED, 1000, 65),
      PTV_ERR_MALFORMED);
  assert_int_equal(
      decode_chunk_raw(PTV_CHUNK_DETACHED | PTV_CHUNK_SIGNED, 1000, 63),
      PTV_ERR_MALFORMED);

  body[12] = PTV_CHUNK_DETACHED;
  put32(body + 13, 1316);
  assert_int_equal(decode_exact(&m, buf, mkraw(buf, PTV_MSG_CHUNK, body, 17)),
                   6 + 17);
  assert_int_equal(m.u.chunk.payload_len, 1316);
  assert_null(m.u.chunk.payload);
  assert_null(m.u.chunk.sig);
}

/* ---- encoder errors ----------------------------------------------------- */

static void test_encode_nobuf(void **state) {
  uint8_t bits[64];
  ptv_msg msgs[7];
  uint8_t buf[BUFSZ + 16];
  size_t i, cap, len, k;
  int rv;

  memset(bits, 0xff, sizeof(bits));
  msgs[0] = chunk_msg(PTV_CHUNK_SIGNED, 30);
  memset(&msgs[1], 0, sizeof(msgs[1]));
  msgs[1].type = PTV_MSG_PEERS;
  msgs[1].u.peers.n = PTV_WIRE_MAX_DESCS;
  fill_descs(msgs[1].u.peers.descs, PTV_WIRE_MAX_DESCS);
  memset(&msgs[2], 0, sizeof(msgs[2]));
  msgs[2].type = PTV_MSG_BUFFERMAP;
  msgs[2].u.buffermap.nbits = 500;
  msgs[2].u.buffermap.bits = bits;
  memset(&msgs[3], 0, sizeof(msgs[3]));
  msgs[3].type = PTV_MSG_LEAVE;
  msgs[4] = ids_msg(PTV_MSG_OFFER, PTV_WIRE_MAX_IDS);
  msgs[5] = ids_msg(PTV_MSG_SELECT, 0);
  msgs[6] = ids_msg(PTV_MSG_SELECT, 1);

  for (i = 0; i < 7; ++i) {
    rv = ptv_wire_encoded_len(&msgs[i]);
    assert_true(rv > 0);
    len = (size_t)rv;
    assert_true(len + 16 <= sizeof(buf));
    for (cap = 0; cap < len; ++cap) {
      memset(buf, 0xee, sizeof(buf));
      assert_int_equal(ptv_wire_encode(buf, cap, &msgs[i]), PTV_ERR_NOBUF);
      for (k = cap; k < sizeof(buf); ++k) {
        assert_int_equal(buf[k], 0xee);
      }
    }
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(ptv_wire_encode(buf, len, &msgs[i]), (int)len);
    for (k = len; k < sizeof(buf); ++k) {
      assert_int_equal(buf[k], 0xee);
    }
  }
  assert_int_equal(ptv_wire_encode(NULL, 0, &msgs[3]), PTV_ERR_NOBUF);
}

static void expect_invalid(const ptv_msg *m) {
  uint8_t buf[BUFSZ];

  assert_int_equal(ptv_wire_encoded_len(m), PTV_ERR_INVALID_ARG);
  memset(buf, 0xee, sizeof(buf));
  assert_int_equal(ptv_wire_encode(buf, sizeof(buf), m), PTV_ERR_INVALID_ARG);
  assert_int_equal(buf[0], 0xee);
}

static void test_encode_invalid(void **state) {
  uint8_t bits[65] = {0};
  ptv_msg m;

  assert_int_equal(ptv_wire_encoded_len(NULL), PTV_ERR_INVALID_ARG);
  assert_int_equal(ptv_wire_encode(bits, sizeof(bits), NULL),
                   PTV_ERR_INVALID_ARG);

  memset(&m, 0, sizeof(m));
  m.type = 0;
  expect_invalid(&m);
  m.type = PTV_MSG_TYPE_MAX + 1;
  expect_invalid(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_JOIN;
  m.u.join.role = 2;
  expect_invalid(&m);
  m.u.join.role = 0;
  m.u.join.nat = 4;
  expect_invalid(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_PEERS;
  m.u.peers.n = PTV_WIRE_MAX_DESCS + 1;
  expect_invalid(&m);
  m.u.peers.n = 3;
  m.u.peers.descs[2].nat = 4;
  expect_invalid(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_SHUFFLE;
  m.u.shuffle.n = PTV_WIRE_MAX_DESCS + 1;
  expect_invalid(&m);
  m.u.shuffle.n = 0;
  m.u.shuffle.reply = 2;
  expect_invalid(&m);
  m.u.shuffle.reply = 1;
  m.u.shuffle.n = 1;
  m.u.shuffle.descs[0].nat = 200;
  expect_invalid(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_CONNECT;
  m.u.connect.nat = 4;
  expect_invalid(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_CONNECT_ACK;
  m.u.connect_ack.status = 3;
  expect_invalid(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_BUSY;
  m.u.busy.reason = 3;
  expect_invalid(&m);

  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_BUFFERMAP;
  m.u.buffermap.nbits = PTV_WIRE_MAX_BITMAP_BITS + 1;
  m.u.buffermap.bits = bits;
  expect_invalid(&m);
  m.u.buffermap.nbits = 1;
  m.u.buffermap.bits = NULL;
  expect_invalid(&m);

  m = ids_msg(PTV_MSG_OFFER, PTV_WIRE_MAX_IDS + 1);
  expect_invalid(&m);
  m = ids_msg(PTV_MSG_SELECT, PTV_WIRE_MAX_IDS + 1);
  expect_invalid(&m);
  m = ids_msg(PTV_MSG_OFFER, 255);
  expect_invalid(&m);
  m = ids_msg(PTV_MSG_SELECT, 255);
  expect_invalid(&m);

  m = chunk_msg(0x10, 0);
  expect_invalid(&m);
  m = chunk_msg(0, 1);
  m.u.chunk.payload = NULL;
  expect_invalid(&m);
  m = chunk_msg(PTV_CHUNK_SIGNED, 0);
  m.u.chunk.sig = NULL;
  expect_invalid(&m);
  m = chunk_msg(PTV_CHUNK_SIGNED | PTV_CHUNK_DETACHED, 0);
  m.u.chunk.sig = NULL;
  expect_invalid(&m);
}

static void test_bit_helpers(void **state) {
  uint8_t bits[2] = {0};

  ptv_wire_bit_set(bits, 0);
  ptv_wire_bit_set(bits, 9);
  ptv_wire_bit_set(bits, 15);
  assert_int_equal(bits[0], 0x80);
  assert_int_equal(bits[1], 0x41);
  assert_int_equal(ptv_wire_bit_get(bits, 0), 1);
  assert_int_equal(ptv_wire_bit_get(bits, 1), 0);
  assert_int_equal(ptv_wire_bit_get(bits, 9), 1);
  assert_int_equal(ptv_wire_bit_get(bits, 15), 1);
}

/* Which encoded messages a transport may send unreliably: buffer maps and
 * empty selects only; a select that takes a chunk, an offer, a chunk and
 * anything too short are not. */
static void test_loss_tolerant(void **state) {
  uint8_t buf[BUFSZ];
  ptv_msg m;
  int n;

  (void)state;
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_SELECT;
  n = ptv_wire_encode(buf, sizeof(buf), &m);
  assert_true(n > 0);
  assert_int_equal(ptv_wire_loss_tolerant(buf, (size_t)n), 1);
  assert_int_equal(ptv_wire_loss_tolerant(buf, (size_t)n - 1), 0);
  m.u.select.n = 1;
  m.u.select.ids[0] = 7;
  n = ptv_wire_encode(buf, sizeof(buf), &m);
  assert_int_equal(ptv_wire_loss_tolerant(buf, (size_t)n), 0);
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_OFFER;
  n = ptv_wire_encode(buf, sizeof(buf), &m);
  assert_true(n > 0);
  assert_int_equal(ptv_wire_loss_tolerant(buf, (size_t)n), 0);
  uint8_t bits[16] = {0xff};
  memset(&m, 0, sizeof(m));
  m.type = PTV_MSG_BUFFERMAP;
  m.u.buffermap.nbits = 128;
  m.u.buffermap.bits = bits;
  m.u.buffermap.suspect = PTV_ID_NONE;
  m.u.buffermap.play = PTV_ID_NONE;
  n = ptv_wire_encode(buf, sizeof(buf), &m);
  assert_true(n > 0);
  assert_int_equal(ptv_wire_loss_tolerant(buf, (size_t)n), 1);
  assert_int_equal(ptv_wire_loss_tolerant(buf, PTV_WIRE_HDRLEN - 1), 0);
  assert_int_equal(ptv_wire_loss_tolerant(NULL, 64), 0);
  buf[1] = PTV_MSG_CHUNK;
  assert_int_equal(ptv_wire_loss_tolerant(buf, (size_t)n), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_join_bytes),
      cmocka_unit_test(test_roundtrip_join),
      cmocka_unit_test(test_roundtrip_peers),
      cmocka_unit_test(test_roundtrip_leave),
      cmocka_unit_test(test_roundtrip_heartbeat),
      cmocka_unit_test(test_roundtrip_shuffle),
      cmocka_unit_test(test_roundtrip_connect),
      cmocka_unit_test(test_roundtrip_connect_ack),
      cmocka_unit_test(test_roundtrip_disconnect),
      cmocka_unit_test(test_roundtrip_buffermap),
      cmocka_unit_test(test_encode_buffermap_clears_padding),
      cmocka_unit_test(test_roundtrip_stripes),
      cmocka_unit_test(test_roundtrip_request),
      cmocka_unit_test(test_roundtrip_busy),
      cmocka_unit_test(test_roundtrip_ids),
      cmocka_unit_test(test_ids_bytes),
      cmocka_unit_test(test_chunk_bytes),
      cmocka_unit_test(test_roundtrip_chunk_signed),
      cmocka_unit_test(test_roundtrip_chunk_stalled),
      cmocka_unit_test(test_roundtrip_chunk_detached),
      cmocka_unit_test(test_roundtrip_chunk_empty_payload),
      cmocka_unit_test(test_chunk_max_body),
      cmocka_unit_test(test_back_to_back),
      cmocka_unit_test(test_decode_short_header),
      cmocka_unit_test(test_decode_version),
      cmocka_unit_test(test_decode_unknown_type),
      cmocka_unit_test(test_decode_body_too_large),
      cmocka_unit_test(test_decode_truncated),
      cmocka_unit_test(test_decode_fixed_body_length),
      cmocka_unit_test(test_decode_desc_count),
      cmocka_unit_test(test_decode_nat_range),
      cmocka_unit_test(test_decode_enum_ranges),
      cmocka_unit_test(test_decode_ids),
      cmocka_unit_test(test_decode_bitmap),
      cmocka_unit_test(test_decode_chunk_flags),
      cmocka_unit_test(test_decode_chunk_payload_length),
      cmocka_unit_test(test_decode_chunk_detached),
      cmocka_unit_test(test_encode_nobuf),
      cmocka_unit_test(test_encode_invalid),
      cmocka_unit_test(test_bit_helpers),
      cmocka_unit_test(test_roundtrip_report),
      cmocka_unit_test(test_chunk_sigbase),
      cmocka_unit_test(test_loss_tolerant),
  };

  init_blobs();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
