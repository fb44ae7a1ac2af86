/* ptv_ts.c -- see ptv_ts.h. */
#include "ptv_ts.h"

#include <stdlib.h>
#include <string.h>

#include "ptv_err.h"

#define PES_MAX ((size_t)4 << 20) /* one access unit; a 4K intra frame fits */
#define SPS_MAX 512
#define TS_WRAP ((int64_t)1 << 33)
#define GAP_MAX_90K ((int64_t)60 * 90000) /* longer: a jump, not lost frames */
#define STEP_MAX_90K 90000                /* a DTS step over 1 s is no frame step */
/* Packets kept until the first PMT: mpegtsmux writes the PAT and PMT after
 * the keyframe's first packets, so a stream joined at a keyframe names its
 * streams only after the frame it should start with. */
#define BACKLOG_MAX 2048

typedef struct {
  uint16_t pid;    /* 0: none */
  uint8_t type;    /* PMT stream_type */
  int cc;          /* last continuity counter, -1 unknown */
  int open;        /* a PES is being collected */
  uint8_t *buf;
  size_t len, cap, want; /* want: payload length from the header, 0 unbounded */
  int64_t pts, dts;
  int discont;     /* the next unit is the first after a gap */
} stream;

struct ptv_ts {
  ptv_ts_unit_cb cb;
  void *user;
  uint8_t part[PTV_TS_PACKET];
  size_t part_len;
  uint16_t pmt_pid; /* 0: not known yet */
  stream s[2];      /* PTV_TS_VIDEO, PTV_TS_AUDIO */
  ptv_ts_info info;
  int sps_timing;   /* info.fps comes from the SPS */
  int64_t last_dts; /* last video unit's, PTV_TS_NO_TS before one */
  int64_t step;     /* frame duration in 90 kHz ticks, 0 unknown */
  int video_gap;    /* a discont happened since the last video unit */
  int started, gap; /* ptv_ts_chunk: a chunk taken; a gap since */
  int need_key;     /* video units are dropped until a keyframe */
  uint8_t *backlog; /* packets before the first PMT, BACKLOG_MAX at most */
  size_t nback;
  int replaying;
};

/* ---- H.264 sequence parameter set ------------------------------------------ */

typedef struct {
  const uint8_t *p;
  size_t bits, pos;
  int err;
} bitrd;

static uint32_t rd_bits(bitrd *b, unsigned n) {
  uint32_t v = 0;
  for (unsigned i = 0; i < n; i++) {
    if (b->pos >= b->bits) {
      b->err = PTV_ERR_SHORT;
      return 0;
    }
    v = v << 1 | ((b->p[b->pos >> 3] >> (7 - (b->pos & 7))) & 1u);
    b->pos++;
  }
  return v;
}

static uint32_t rd_ue(bitrd *b) {
  unsigned lz = 0;
  while (!b->err && rd_bits(b, 1) == 0)
    if (++lz > 31) {
      b->err = PTV_ERR_MALFORMED;
      return 0;
    }
  if (b->err) return 0;
  return (uint32_t)(((uint64_t)1 << lz) - 1 + rd_bits(b, lz));
}

static int32_t rd_se(bitrd *b) {
  uint32_t k = rd_ue(b);
  return k & 1 ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

/* A bound check: a value over max makes the SPS malformed. */
static uint32_t rd_ue_max(bitrd *b, uint32_t max) {
  uint32_t v = rd_ue(b);
  if (!b->err && v > max) b->err = PTV_ERR_MALFORMED;
  return v;
}

static void skip_scaling_list(bitrd *b, int size) {
  int last = 8, next = 8;
  for (int j = 0; j < size && !b->err; j++) {
    if (next != 0) {
      int32_t d = rd_se(b);
      if (d < -128 || d > 127) b->err = PTV_ERR_MALFORMED;
      next = (last + d + 256) % 256;
    }
    last = next == 0 ? last : next;
  }
}

int ptv_ts_parse_sps(const uint8_t *nal, size_t len, uint32_t *width, uint32_t *height, double *fps) {
  if (!nal || !width || !height || !fps || len < 1 || (nal[0] & 0x1f) != 7) return PTV_ERR_INVALID_ARG;
  /* drop emulation prevention bytes (00 00 03 -> 00 00) */
  uint8_t rbsp[SPS_MAX];
  size_t n = 0, zeros = 0;
  for (size_t i = 1; i < len && n < SPS_MAX; i++) {
    if (zeros >= 2 && nal[i] == 3) {
      zeros = 0;
      continue;
    }
    zeros = nal[i] == 0 ? zeros + 1 : 0;
    rbsp[n++] = nal[i];
  }
  bitrd b = {rbsp, n * 8, 0, 0};
  uint32_t profile = rd_bits(&b, 8);
  rd_bits(&b, 16); /* constraint flags, level */
  rd_ue_max(&b, 31);
  uint32_t chroma = 1;
  int separate = 0;
  if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 ||
      profile == 83 || profile == 86 || profile == 118 || profile == 128 || profile == 138 ||
      profile == 139 || profile == 134 || profile == 135) {
    chroma = rd_ue_max(&b, 3);
    if (chroma == 3) separate = (int)rd_bits(&b, 1);
    rd_ue_max(&b, 6);
    rd_ue_max(&b, 6);
    rd_bits(&b, 1);
    if (rd_bits(&b, 1))
      for (int i = 0; i < (chroma != 3 ? 8 : 12) && !b.err; i++)
        if (rd_bits(&b, 1)) skip_scaling_list(&b, i < 6 ? 16 : 64);
  }
  rd_ue_max(&b, 12); /* log2_max_frame_num_minus4 */
  uint32_t poc = rd_ue_max(&b, 2);
  if (poc == 0) {
    rd_ue_max(&b, 12);
  } else if (poc == 1) {
    rd_bits(&b, 1);
    rd_se(&b);
    rd_se(&b);
    uint32_t cycle = rd_ue_max(&b, 255);
    for (uint32_t i = 0; i < cycle && !b.err; i++) rd_se(&b);
  }
  rd_ue_max(&b, 32); /* max_num_ref_frames */
  rd_bits(&b, 1);
  uint32_t wmbs = rd_ue_max(&b, 1023) + 1, hmap = rd_ue_max(&b, 1023) + 1;
  uint32_t frame_mbs_only = rd_bits(&b, 1);
  if (!frame_mbs_only) rd_bits(&b, 1);
  rd_bits(&b, 1); /* direct_8x8_inference */
  uint32_t cl = 0, cr = 0, ct = 0, cb = 0;
  if (rd_bits(&b, 1)) {
    cl = rd_ue_max(&b, 8192);
    cr = rd_ue_max(&b, 8192);
    ct = rd_ue_max(&b, 8192);
    cb = rd_ue_max(&b, 8192);
  }
  double rate = 0;
  if (!b.err && rd_bits(&b, 1)) { /* VUI */
    if (rd_bits(&b, 1) && rd_bits(&b, 8) == 255) rd_bits(&b, 32);
    if (rd_bits(&b, 1)) rd_bits(&b, 1);
    if (rd_bits(&b, 1)) {
      rd_bits(&b, 4);
      if (rd_bits(&b, 1)) rd_bits(&b, 24);
    }
    if (rd_bits(&b, 1)) {
      rd_ue_max(&b, 5);
      rd_ue_max(&b, 5);
    }
    if (rd_bits(&b, 1)) {
      uint32_t units = rd_bits(&b, 32), scale = rd_bits(&b, 32);
      /* a frame is two ticks (fields); beyond 1000 fps it is nonsense */
      if (!b.err && units && scale && (double)scale / (2.0 * units) <= 1000)
        rate = (double)scale / (2.0 * units);
    }
    /* what follows (HRD, bitstream restriction) is not needed; a VUI cut
     * short there still gave the size */
    if (b.err == PTV_ERR_SHORT) b.err = 0;
  }
  if (b.err) return b.err;
  uint32_t cux = 1, cuy = 2 - frame_mbs_only;
  if (!separate && chroma == 1) cux = 2, cuy *= 2;
  else if (!separate && chroma == 2) cux = 2;
  uint32_t w = wmbs * 16, h = (2 - frame_mbs_only) * hmap * 16;
  if ((uint64_t)(cl + cr) * cux >= w || (uint64_t)(ct + cb) * cuy >= h) return PTV_ERR_MALFORMED;
  *width = w - (cl + cr) * cux;
  *height = h - (ct + cb) * cuy;
  *fps = rate;
  return 0;
}

/* ---- access units -------------------------------------------------------------- */

/* Scans Annex B NAL units: key frame (IDR, or an H.265 IRAP) and SPS. */
static int scan_video(ptv_ts *t, const uint8_t *p, size_t n) {
  int key = 0, h265 = t->s[PTV_TS_VIDEO].type == 0x24, h264 = t->s[PTV_TS_VIDEO].type == 0x1b;
  if (!h264 && !h265) {
    /* MPEG-1/2: a sequence header starts a closed group */
    for (size_t i = 0; i + 3 < n; i++)
      if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1 && p[i + 3] == 0xb3) return 1;
    return 0;
  }
  for (size_t i = 0; i + 3 < n; i++) {
    if (p[i] != 0 || p[i + 1] != 0 || p[i + 2] != 1) continue;
    size_t s = i + 3, e = s;
    while (e + 2 < n && !(p[e] == 0 && p[e + 1] == 0 && (p[e + 2] == 1 || p[e + 2] == 0))) e++;
    if (e + 2 >= n) e = n;
    if (h265) {
      unsigned ty = (p[s] >> 1) & 0x3f;
      if (ty >= 16 && ty <= 21) key = 1;
    } else {
      unsigned ty = p[s] & 0x1f;
      if (ty == 5) key = 1;
      if (ty == 7) {
        uint32_t w, h;
        double fps;
        if (ptv_ts_parse_sps(p + s, e - s, &w, &h, &fps) == 0) {
          t->info.width = w;
          t->info.height = h;
          if (fps > 0) {
            t->info.fps = fps;
            t->sps_timing = 1;
            t->step = (int64_t)(90000.0 / fps + 0.5);
          }
        } else {
          t->info.bad_packets++;
        }
      }
    }
    i = e - 1;
  }
  return key;
}

static void video_timing(ptv_ts *t, int64_t dts) {
  if (dts == PTV_TS_NO_TS) return;
  if (t->last_dts != PTV_TS_NO_TS) {
    int64_t d = (dts - t->last_dts) & (TS_WRAP - 1);
    if (t->video_gap) {
      if (t->step > 0 && d < GAP_MAX_90K) {
        int64_t k = (d + t->step / 2) / t->step;
        if (k > 1) t->info.frames_lost += (uint64_t)(k - 1);
      }
      t->info.media_us += (uint64_t)(t->step * 1000 / 90);
    } else if (d > 0 && d <= STEP_MAX_90K) {
      t->info.media_us += (uint64_t)(d * 1000 / 90);
      if (!t->sps_timing) {
        t->step = d;
        t->info.fps = 90000.0 / (double)d;
      }
    }
  } else {
    t->info.media_us += (uint64_t)(t->step * 1000 / 90);
  }
  t->last_dts = dts;
  t->video_gap = 0;
}

static void emit(ptv_ts *t, int kind) {
  stream *s = &t->s[kind];
  if (!s->open) return;
  s->open = 0;
  if (!s->len) return;
  int key = 1;
  if (kind == PTV_TS_VIDEO) {
    key = scan_video(t, s->buf, s->len);
    /* a frame before the first keyframe (after a start or a gap) cannot be
     * decoded: not handed out; after a gap, the DTS step counts it lost */
    if (t->need_key && !key) return;
    t->need_key = 0;
    t->info.video_frames++;
    video_timing(t, s->dts);
  } else {
    t->info.audio_units++;
  }
  int discont = s->discont;
  s->discont = 0;
  if (t->cb) t->cb(t->user, kind, s->buf, s->len, s->pts, s->dts, discont, key);
}

static int append(ptv_ts *t, stream *s, const uint8_t *p, size_t n) {
  if (s->len + n > PES_MAX) {
    s->open = 0;
    t->info.bad_packets++;
    return -1;
  }
  if (s->len + n > s->cap) {
    size_t cap = s->cap ? s->cap : 65536;
    while (cap < s->len + n) cap *= 2;
    uint8_t *b = realloc(s->buf, cap);
    if (!b) {
      s->open = 0;
      return -1;
    }
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, p, n);
  s->len += n;
  return 0;
}

static int64_t rd_ts(const uint8_t *p) {
  return (int64_t)(p[0] >> 1 & 7) << 30 | (int64_t)p[1] << 22 | (int64_t)(p[2] >> 1) << 15 |
         (int64_t)p[3] << 7 | p[4] >> 1;
}

/* The first packet of a PES: its header, then the start of its payload. */
static void pes_start(ptv_ts *t, int kind, const uint8_t *p, size_t n) {
  stream *s = &t->s[kind];
  emit(t, kind);
  s->len = 0;
  s->want = 0;
  if (n < 9 || p[0] || p[1] || p[2] != 1 || (p[6] & 0xc0) != 0x80 || 9u + p[8] > n) {
    t->info.bad_packets++;
    return;
  }
  unsigned flags = p[7] >> 6, hdl = p[8];
  s->pts = s->dts = PTV_TS_NO_TS;
  if (flags & 2) {
    if (hdl < 5) {
      t->info.bad_packets++;
      return;
    }
    s->pts = s->dts = rd_ts(p + 9);
    if (flags == 3 && hdl >= 10) s->dts = rd_ts(p + 14);
  }
  unsigned plen = (unsigned)p[4] << 8 | p[5];
  if (plen) {
    if (plen < 3 + hdl) {
      t->info.bad_packets++;
      return;
    }
    s->want = plen - 3 - hdl;
  }
  s->open = 1;
  if (append(t, s, p + 9 + hdl, n - 9 - hdl) == 0 && s->want && s->len >= s->want) {
    s->len = s->want;
    emit(t, kind);
  }
}

static void stream_reset(stream *s, uint16_t pid, uint8_t type) {
  s->pid = pid;
  s->type = type;
  s->cc = -1;
  s->open = 0;
  s->len = 0;
}

static const char *video_name(uint8_t ty) {
  switch (ty) {
  case 0x1b: return "h264";
  case 0x24: return "h265";
  case 0x02: return "mpeg2video";
  case 0x01: return "mpeg1video";
  default: return "unknown";
  }
}

static const char *audio_name(uint8_t ty) {
  switch (ty) {
  case 0x0f: return "aac";
  case 0x11: return "aac_latm";
  case 0x03: return "mp2";
  case 0x04: return "mp3";
  case 0x81: return "ac3";
  case 0x87: return "eac3";
  default: return "unknown";
  }
}

/* A PSI section that starts in this packet (tables longer than one packet
 * are not used by the muxers we read): p is the payload from the pointer
 * field. Returns the body after the 8-byte header and its length without
 * the CRC, or NULL. */
static const uint8_t *section(ptv_ts *t, const uint8_t *p, size_t n, unsigned table, size_t *len) {
  if (n < 1 || 1u + p[0] >= n) goto bad;
  n -= 1u + p[0];
  p += 1u + p[0];
  if (n < 3 || p[0] != table) goto bad;
  size_t slen = ((size_t)(p[1] & 0x0f) << 8) | p[2];
  /* slen counts 5 more header bytes and the CRC after its own field */
  if (slen < 9 || 3 + slen > n) goto bad;
  *len = slen - 9;
  return p + 8;
bad:
  t->info.bad_packets++;
  return NULL;
}

static void on_pat(ptv_ts *t, const uint8_t *p, size_t n) {
  size_t len;
  const uint8_t *q = section(t, p, n, 0x00, &len);
  if (!q) return;
  for (size_t i = 0; i + 4 <= len; i += 4) {
    unsigned prog = (unsigned)q[i] << 8 | q[i + 1];
    uint16_t pid = (uint16_t)((q[i + 2] & 0x1f) << 8 | q[i + 3]);
    if (prog == 0) continue; /* the network PID */
    if (pid != t->pmt_pid) {
      t->pmt_pid = pid;
      stream_reset(&t->s[0], 0, 0);
      stream_reset(&t->s[1], 0, 0);
    }
    return;
  }
}

static void on_packet(ptv_ts *t, const uint8_t *p);

static void on_pmt(ptv_ts *t, const uint8_t *p, size_t n) {
  size_t len;
  const uint8_t *q = section(t, p, n, 0x02, &len);
  if (!q) return;
  if (len < 4) {
    t->info.bad_packets++;
    return;
  }
  size_t info_len = ((size_t)(q[2] & 0x0f) << 8) | q[3], i = 4 + info_len;
  uint16_t vpid = 0, apid = 0;
  uint8_t vty = 0, aty = 0;
  while (i + 5 <= len) {
    uint8_t ty = q[i];
    uint16_t pid = (uint16_t)((q[i + 1] & 0x1f) << 8 | q[i + 2]);
    size_t es = ((size_t)(q[i + 3] & 0x0f) << 8) | q[i + 4];
    int video = ty == 0x1b || ty == 0x24 || ty == 0x01 || ty == 0x02;
    int audio = ty == 0x0f || ty == 0x11 || ty == 0x03 || ty == 0x04 || ty == 0x81 || ty == 0x87;
    if (video && !vpid) vpid = pid, vty = ty;
    if (audio && !apid) apid = pid, aty = ty;
    i += 5 + es;
  }
  if (vpid != t->s[0].pid || vty != t->s[0].type) stream_reset(&t->s[0], vpid, vty);
  if (apid != t->s[1].pid || aty != t->s[1].type) stream_reset(&t->s[1], apid, aty);
  t->info.video_type = vty;
  t->info.audio_type = aty;
  t->info.video_codec = vpid ? video_name(vty) : NULL;
  t->info.audio_codec = apid ? audio_name(aty) : NULL;
  if ((vpid || apid) && t->nback && !t->replaying) {
    /* what came before the PMT, from its first packet */
    t->replaying = 1;
    for (size_t k = 0; k < t->nback; k++) {
      const uint8_t *b = t->backlog + k * PTV_TS_PACKET;
      uint16_t pid = (uint16_t)((b[1] & 0x1f) << 8 | b[2]);
      if (pid == vpid || pid == apid) on_packet(t, b);
    }
    t->replaying = 0;
    free(t->backlog);
    t->backlog = NULL;
    t->nback = 0;
  }
}

static void on_packet(ptv_ts *t, const uint8_t *p) {
  if (p[0] != 0x47 || (p[1] & 0x80)) {
    t->info.bad_packets++;
    return;
  }
  if (!t->s[0].pid && !t->s[1].pid && !t->replaying && t->nback < BACKLOG_MAX) {
    if (!t->backlog && !(t->backlog = malloc((size_t)BACKLOG_MAX * PTV_TS_PACKET))) return;
    memcpy(t->backlog + t->nback++ * PTV_TS_PACKET, p, PTV_TS_PACKET);
  }
  int pusi = p[1] & 0x40;
  uint16_t pid = (uint16_t)((p[1] & 0x1f) << 8 | p[2]);
  unsigned afc = p[3] >> 4 & 3, cc = p[3] & 0x0f;
  size_t off = 4;
  if (afc == 0) {
    t->info.bad_packets++;
    return;
  }
  if (afc & 2) {
    off = 5u + p[4];
    if (off > PTV_TS_PACKET) {
      t->info.bad_packets++;
      return;
    }
  }
  if (!(afc & 1) || off >= PTV_TS_PACKET) return; /* no payload */
  const uint8_t *q = p + off;
  size_t n = PTV_TS_PACKET - off;
  if (pid == 0) {
    if (pusi) on_pat(t, q, n);
    return;
  }
  if (pid == t->pmt_pid && t->pmt_pid) {
    if (pusi) on_pmt(t, q, n);
    return;
  }
  for (int k = 0; k < 2; k++) {
    stream *s = &t->s[k];
    if (!s->pid || pid != s->pid) continue;
    if (s->cc >= 0 && (int)cc == s->cc) return; /* a duplicate packet */
    int lost = s->cc >= 0 && (int)cc != ((s->cc + 1) & 0x0f);
    s->cc = (int)cc;
    if (pusi) {
      pes_start(t, k, q, n);
    } else if (s->open) {
      if (lost) { /* a hole inside the unit: it cannot be decoded */
        s->open = 0;
        t->info.bad_packets++;
        return;
      }
      if (append(t, s, q, n) == 0 && s->want && s->len >= s->want) {
        s->len = s->want;
        emit(t, k);
      }
    }
    return;
  }
}

/* ---- API ---------------------------------------------------------------------- */

int ptv_ts_new(ptv_ts **out, ptv_ts_unit_cb cb, void *user) {
  if (!out) return PTV_ERR_INVALID_ARG;
  ptv_ts *t = calloc(1, sizeof(*t));
  if (!t) return PTV_ERR_NOMEM;
  t->cb = cb;
  t->user = user;
  t->last_dts = PTV_TS_NO_TS;
  t->need_key = 1;
  stream_reset(&t->s[0], 0, 0);
  stream_reset(&t->s[1], 0, 0);
  *out = t;
  return 0;
}

int ptv_ts_push(ptv_ts *t, const uint8_t *buf, size_t len) {
  if (!t || (!buf && len)) return PTV_ERR_INVALID_ARG;
  t->info.bytes += len;
  if (t->part_len) {
    size_t k = PTV_TS_PACKET - t->part_len < len ? PTV_TS_PACKET - t->part_len : len;
    memcpy(t->part + t->part_len, buf, k);
    t->part_len += k;
    buf += k;
    len -= k;
    if (t->part_len < PTV_TS_PACKET) return 0;
    t->part_len = 0;
    on_packet(t, t->part);
  }
  for (; len >= PTV_TS_PACKET; buf += PTV_TS_PACKET, len -= PTV_TS_PACKET) on_packet(t, buf);
  if (len) {
    memcpy(t->part, buf, len);
    t->part_len = len;
  }
  return 0;
}

void ptv_ts_flush(ptv_ts *t) {
  if (!t) return;
  for (int k = 0; k < 2; k++)
    if (!t->s[k].want) emit(t, k); /* bounded PES complete by themselves */
}

void ptv_ts_discont(ptv_ts *t) {
  if (!t) return;
  t->part_len = 0;
  t->nback = 0;
  for (int k = 0; k < 2; k++) {
    t->s[k].open = 0;
    t->s[k].len = 0;
    t->s[k].cc = -1;
    t->s[k].discont = 1;
  }
  t->video_gap = 1;
  t->need_key = 1;
}

int ptv_ts_chunk(ptv_ts *t, const uint8_t *buf, size_t len, int keyframe) {
  if (!t || (!buf && len)) return PTV_ERR_INVALID_ARG;
  if ((!t->started || t->gap) && !keyframe) {
    t->info.chunks_skipped++;
    return 0;
  }
  if (t->gap) ptv_ts_discont(t);
  t->started = 1;
  t->gap = 0;
  t->info.chunks++;
  ptv_ts_push(t, buf, len);
  ptv_ts_flush(t);
  return 1;
}

void ptv_ts_gap(ptv_ts *t) {
  if (!t || !t->started) return;
  if (!t->gap) t->info.gaps++;
  t->gap = 1;
}

void ptv_ts_get_info(const ptv_ts *t, ptv_ts_info *out) {
  if (!out) return;
  if (!t) {
    memset(out, 0, sizeof(*out));
    return;
  }
  *out = t->info;
}

void ptv_ts_free(ptv_ts *t) {
  if (!t) return;
  free(t->s[0].buf);
  free(t->s[1].buf);
  free(t->backlog);
  free(t);
}
