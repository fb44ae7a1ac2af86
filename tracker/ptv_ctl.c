/* ptv_ctl.c -- control protocol codec (see ptv_ctl.h for the layouts). */
#include "ptv_ctl.h"

#include <string.h>

#include "ptv_err.h"
#include "ptv_be.h"
#include "ptv_wire.h"

#define HELLO_FIXLEN (1 + 1 + 4 + 4 + 8 + PTV_CTL_PKLEN + 4 + 4 + 1 + 1 + PTV_CTL_SIGLEN)
#define WELCOME_LEN (4 + 4 + 4 + 4 + PTV_CTL_PKLEN)
#define ERROR_FIXLEN 3
#define SIGNAL_FIXLEN (4 + 1 + PTV_CTL_PKLEN + 2)
#define HELLO_DOMAIN "PTVHELLO1"

static uint8_t *putn(uint8_t *p, const void *src, size_t n) {
  if (n) memcpy(p, src, n);
  return p + n;
}
/* Body length of m, or PTV_ERR_INVALID_ARG. */
static int body_len(const ptv_ctl *m) {
  switch (m->type) {
  case PTV_CTL_HELLO: {
    const ptv_ctl_hello *h = &m->u.hello;
    if (!h->pk || !h->sig || h->role > PTV_ROLE_SOURCE || h->nat > PTV_NAT_UNKNOWN ||
        h->name_len == 0 || h->name_len > PTV_CTL_NAME_MAX || !h->name ||
        (h->desc_len && !h->desc))
      return PTV_ERR_INVALID_ARG;
    return HELLO_FIXLEN + h->name_len + h->desc_len;
  }
  case PTV_CTL_WELCOME:
    return m->u.welcome.publisher_pk ? WELCOME_LEN : PTV_ERR_INVALID_ARG;
  case PTV_CTL_ERROR:
    if (m->u.error.code == 0 || m->u.error.code > PTV_CTL_E_MAX ||
        (m->u.error.text_len && !m->u.error.text))
      return PTV_ERR_INVALID_ARG;
    return ERROR_FIXLEN + m->u.error.text_len;
  case PTV_CTL_SIGNAL:
    if (m->u.signal.kind > PTV_SIG_MAX || m->u.signal.data_len > PTV_CTL_SIGNAL_MAX ||
        (m->u.signal.data_len && !m->u.signal.data))
      return PTV_ERR_INVALID_ARG;
    return SIGNAL_FIXLEN + m->u.signal.data_len;
  case PTV_CTL_END:
    return 0;
  default:
    return PTV_ERR_INVALID_ARG;
  }
}

/* The HELLO body up to its signature. */
static uint8_t *put_hello_head(uint8_t *p, const ptv_ctl_hello *h) {
  p = ptv_be_put8(p, h->role);
  p = ptv_be_put8(p, h->nat);
  p = ptv_be_put32(p, h->upload_kbps);
  p = ptv_be_put32(p, h->want_id);
  p = ptv_be_put64(p, h->ts_us);
  p = putn(p, h->pk, PTV_CTL_PKLEN);
  p = ptv_be_put32(p, h->chunk_us);
  p = ptv_be_put32(p, h->stream_kbps);
  p = ptv_be_put8(p, h->name_len);
  p = putn(p, h->name, h->name_len);
  p = ptv_be_put8(p, h->desc_len);
  return putn(p, h->desc, h->desc_len);
}

int ptv_ctl_encode(uint8_t *buf, size_t cap, const ptv_ctl *m) {
  if (!m) return PTV_ERR_INVALID_ARG;
  int blen = body_len(m);
  if (blen < 0) return blen;
  if (!buf || cap < (size_t)PTV_WIRE_HDRLEN + (size_t)blen) return PTV_ERR_NOBUF;
  uint8_t *p = buf;
  p = ptv_be_put8(p, PTV_WIRE_VERSION);
  p = ptv_be_put8(p, m->type);
  p = ptv_be_put32(p, (uint32_t)blen);
  switch (m->type) {
  case PTV_CTL_HELLO:
    p = put_hello_head(p, &m->u.hello);
    p = putn(p, m->u.hello.sig, PTV_CTL_SIGLEN);
    break;
  case PTV_CTL_WELCOME:
    p = ptv_be_put32(p, m->u.welcome.id);
    p = ptv_be_put32(p, m->u.welcome.tracker);
    p = ptv_be_put32(p, m->u.welcome.chunk_us);
    p = ptv_be_put32(p, m->u.welcome.stream_kbps);
    p = putn(p, m->u.welcome.publisher_pk, PTV_CTL_PKLEN);
    break;
  case PTV_CTL_ERROR:
    p = ptv_be_put16(p, m->u.error.code);
    p = ptv_be_put8(p, m->u.error.text_len);
    p = putn(p, m->u.error.text, m->u.error.text_len);
    break;
  case PTV_CTL_SIGNAL: {
    static const uint8_t zero[PTV_CTL_PKLEN];
    p = ptv_be_put32(p, m->u.signal.peer);
    p = ptv_be_put8(p, m->u.signal.kind);
    p = putn(p, m->u.signal.pk ? m->u.signal.pk : zero, PTV_CTL_PKLEN);
    p = ptv_be_put16(p, m->u.signal.data_len);
    p = putn(p, m->u.signal.data, m->u.signal.data_len);
    break;
  }
  default: /* END */
    break;
  }
  return (int)(p - buf);
}

int ptv_ctl_hello_signed_bytes(const ptv_ctl_hello *h, uint8_t *out, size_t cap) {
  ptv_ctl m = {.type = PTV_CTL_HELLO};
  static const uint8_t nosig[PTV_CTL_SIGLEN];
  m.u.hello = *h;
  if (!m.u.hello.sig) m.u.hello.sig = nosig; /* not part of what is signed */
  int blen = body_len(&m);
  if (blen < 0) return blen;
  size_t n = sizeof(HELLO_DOMAIN) - 1 + (size_t)blen - PTV_CTL_SIGLEN;
  if (!out || cap < n) return PTV_ERR_NOBUF;
  memcpy(out, HELLO_DOMAIN, sizeof(HELLO_DOMAIN) - 1);
  put_hello_head(out + sizeof(HELLO_DOMAIN) - 1, h);
  return (int)n;
}

static int decode_hello(ptv_ctl_hello *h, const uint8_t *p, size_t blen) {
  if (blen < HELLO_FIXLEN) return PTV_ERR_MALFORMED;
  h->role = p[0];
  h->nat = p[1];
  h->upload_kbps = ptv_be_get32(p + 2);
  h->want_id = ptv_be_get32(p + 6);
  h->ts_us = ptv_be_get64(p + 10);
  h->pk = p + 18;
  h->chunk_us = ptv_be_get32(p + 50);
  h->stream_kbps = ptv_be_get32(p + 54);
  h->name_len = p[58];
  size_t off = 59;
  if (h->role > PTV_ROLE_SOURCE || h->nat > PTV_NAT_UNKNOWN || h->name_len == 0 ||
      h->name_len > PTV_CTL_NAME_MAX)
    return PTV_ERR_MALFORMED;
  /* name, desc_len, desc and the signature must fill the body exactly */
  if (blen - off < (size_t)h->name_len + 1 + PTV_CTL_SIGLEN) return PTV_ERR_MALFORMED;
  h->name = (const char *)p + off;
  off += h->name_len;
  h->desc_len = p[off++];
  if (blen - off != (size_t)h->desc_len + PTV_CTL_SIGLEN) return PTV_ERR_MALFORMED;
  h->desc = h->desc_len ? (const char *)p + off : NULL;
  off += h->desc_len;
  h->sig = p + off;
  return 0;
}

long ptv_ctl_frame_len(const uint8_t *buf, size_t len, uint32_t max_body) {
  if (len < PTV_WIRE_HDRLEN) return 0;
  if (buf[0] != PTV_WIRE_VERSION) return PTV_ERR_VERSION;
  uint32_t blen = ptv_be_get32(buf + 2);
  if (blen > max_body) return PTV_ERR_MALFORMED;
  return (long)PTV_WIRE_HDRLEN + (long)blen;
}

int ptv_ctl_decode(ptv_ctl *m, const uint8_t *buf, size_t len) {
  if (!m || (!buf && len)) return PTV_ERR_INVALID_ARG;
  if (len < PTV_WIRE_HDRLEN) return PTV_ERR_SHORT;
  if (buf[0] != PTV_WIRE_VERSION) return PTV_ERR_VERSION;
  uint8_t type = buf[1];
  if (type < PTV_CTL_TYPE_MIN || type > PTV_CTL_TYPE_MAX) return PTV_ERR_UNKNOWN_TYPE;
  uint32_t blen = ptv_be_get32(buf + 2);
  if (blen > PTV_CTL_MAX_BODY) return PTV_ERR_MALFORMED;
  if (len - PTV_WIRE_HDRLEN < blen) return PTV_ERR_SHORT;
  const uint8_t *p = buf + PTV_WIRE_HDRLEN;
  int rv = 0;
  memset(m, 0, sizeof(*m));
  m->type = type;
  switch (type) {
  case PTV_CTL_HELLO:
    rv = decode_hello(&m->u.hello, p, blen);
    break;
  case PTV_CTL_WELCOME:
    if (blen != WELCOME_LEN) return PTV_ERR_MALFORMED;
    m->u.welcome.id = ptv_be_get32(p);
    m->u.welcome.tracker = ptv_be_get32(p + 4);
    m->u.welcome.chunk_us = ptv_be_get32(p + 8);
    m->u.welcome.stream_kbps = ptv_be_get32(p + 12);
    m->u.welcome.publisher_pk = p + 16;
    break;
  case PTV_CTL_ERROR:
    if (blen < ERROR_FIXLEN) return PTV_ERR_MALFORMED;
    m->u.error.code = ptv_be_get16(p);
    m->u.error.text_len = p[2];
    if (m->u.error.code == 0 || m->u.error.code > PTV_CTL_E_MAX ||
        blen != ERROR_FIXLEN + (size_t)m->u.error.text_len)
      return PTV_ERR_MALFORMED;
    m->u.error.text = m->u.error.text_len ? (const char *)p + ERROR_FIXLEN : NULL;
    break;
  case PTV_CTL_SIGNAL:
    if (blen < SIGNAL_FIXLEN) return PTV_ERR_MALFORMED;
    m->u.signal.peer = ptv_be_get32(p);
    m->u.signal.kind = p[4];
    m->u.signal.pk = p + 5;
    m->u.signal.data_len = ptv_be_get16(p + 5 + PTV_CTL_PKLEN);
    if (m->u.signal.kind > PTV_SIG_MAX || m->u.signal.data_len > PTV_CTL_SIGNAL_MAX ||
        blen != SIGNAL_FIXLEN + (size_t)m->u.signal.data_len)
      return PTV_ERR_MALFORMED;
    m->u.signal.data = m->u.signal.data_len ? p + SIGNAL_FIXLEN : NULL;
    break;
  default: /* END */
    if (blen != 0) return PTV_ERR_MALFORMED;
    break;
  }
  if (rv < 0) return rv;
  return PTV_WIRE_HDRLEN + (int)blen;
}
