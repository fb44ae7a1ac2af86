#include "ptv_nat.h"

int ptv_nat_can_connect(ptv_nat_type a, ptv_nat_type b) {
  if (a == PTV_NAT_UNKNOWN) a = PTV_NAT_SYMMETRIC;
  if (b == PTV_NAT_UNKNOWN) b = PTV_NAT_SYMMETRIC;
  if (a == PTV_NAT_OPEN || b == PTV_NAT_OPEN) return 1;
  return a == PTV_NAT_CONE && b == PTV_NAT_CONE;
}

const char *ptv_nat_name(ptv_nat_type t) {
  switch (t) {
  case PTV_NAT_OPEN: return "open";
  case PTV_NAT_CONE: return "cone";
  case PTV_NAT_SYMMETRIC: return "symmetric";
  default: return "unknown";
  }
}
