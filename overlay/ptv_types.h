/* ptv_types.h -- basic types shared by the sans-I/O engines. */
#ifndef PTV_TYPES_H
#define PTV_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Time in microseconds on the driver's clock (virtual in the simulator). */
typedef uint64_t ptv_tstamp;
#define PTV_TSTAMP_MAX UINT64_MAX
#define PTV_US 1ULL
#define PTV_MS 1000ULL
#define PTV_S 1000000ULL

/* A node's overlay identity. The driver maps it to a transport address (the
 * simulator uses it as an index; the real runtime maps it to an ICE link). */
typedef uint32_t ptv_id;
#define PTV_ID_NONE UINT32_MAX

/* Chunk sequence number, assigned by the source, starting at 0. */
typedef uint32_t ptv_chunk_id;

/* NAT class as far as the overlay cares (see nat/ for the full model). */
typedef enum {
  PTV_NAT_OPEN = 0,      /* public address or endpoint-independent filtering */
  PTV_NAT_CONE = 1,      /* endpoint-independent mapping, restricted filtering */
  PTV_NAT_SYMMETRIC = 2, /* endpoint-dependent mapping */
  PTV_NAT_UNKNOWN = 3
} ptv_nat_type;

#endif
