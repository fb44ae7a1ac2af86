/* ptv_be.h -- big-endian integer access, for every PeerTV codec (overlay
 * wire, tracker control, link layer, key exchange, SRTP framing). The put
 * functions return the position after what they wrote; callers have checked
 * the room. */
#ifndef PTV_BE_H
#define PTV_BE_H

#include <stdint.h>

static inline uint8_t *ptv_be_put8(uint8_t *p, uint8_t v) {
  p[0] = v;
  return p + 1;
}
static inline uint8_t *ptv_be_put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
  return p + 2;
}
static inline uint8_t *ptv_be_put24(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 16);
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)v;
  return p + 3;
}
static inline uint8_t *ptv_be_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
  return p + 4;
}
static inline uint8_t *ptv_be_put64(uint8_t *p, uint64_t v) {
  return ptv_be_put32(ptv_be_put32(p, (uint32_t)(v >> 32)), (uint32_t)v);
}
static inline uint16_t ptv_be_get16(const uint8_t *p) {
  return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}
static inline uint32_t ptv_be_get24(const uint8_t *p) {
  return ((uint32_t)p[0] << 16) | ((uint32_t)p[1] << 8) | (uint32_t)p[2];
}
static inline uint32_t ptv_be_get32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
         (uint32_t)p[3];
}
static inline uint64_t ptv_be_get64(const uint8_t *p) {
  return ((uint64_t)ptv_be_get32(p) << 32) | ptv_be_get32(p + 4);
}

#endif
