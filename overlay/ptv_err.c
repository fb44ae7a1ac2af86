#include "ptv_err.h"

const char *ptv_strerror(int err) {
  switch (err) {
  case PTV_OK: return "success";
  case PTV_ERR_INVALID_ARG: return "invalid argument";
  case PTV_ERR_NOMEM: return "out of memory";
  case PTV_ERR_SHORT: return "message truncated";
  case PTV_ERR_MALFORMED: return "malformed message";
  case PTV_ERR_VERSION: return "unsupported protocol version";
  case PTV_ERR_UNKNOWN_TYPE: return "unknown message type";
  case PTV_ERR_NOBUF: return "output buffer too small";
  case PTV_ERR_FULL: return "table full";
  case PTV_ERR_NOT_FOUND: return "not found";
  case PTV_ERR_PARSE: return "parse error";
  case PTV_ERR_IO: return "I/O error";
  case PTV_ERR_CALLBACK: return "callback failed";
  case PTV_ERR_BAD_SIG: return "bad signature";
  case PTV_ERR_CRYPTO: return "cryptographic operation or authentication failed";
  case PTV_ERR_STORE: return "store (database) error";
  case PTV_ERR_EXISTS: return "already exists";
  case PTV_ERR_CLOSED: return "closed";
  case PTV_ERR_AGAIN: return "try again later";
  case PTV_ERR_TIMEOUT: return "timed out";
  case PTV_ERR_REPLAY: return "replayed packet";
  default: return "unknown error";
  }
}
