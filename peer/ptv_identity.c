/* ptv_identity.c -- a node's long-term Ed25519 identity key (libsodium). */
#include "ptv_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "ptv_err.h"

static const char FILE_MAGIC[8] = {'P', 'T', 'V', 'I', 'D', '0', '1', '\n'};
#define SEED_LEN crypto_sign_SEEDBYTES

/* Fingerprint hash key: a domain separator, so the fingerprint is not
 * reusable as any other hash of the key. */
static const char FP_KEY[] = "peertv-fingerprint-v1";

static int ensure_sodium(void) {
  /* 0: initialised now, 1: already initialised, -1: failure. */
  return sodium_init() < 0 ? PTV_ERR_CRYPTO : 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void seterr(char *errbuf, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (errbuf == NULL || errlen == 0) {
    return;
  }
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

int ptv_identity_generate(ptv_identity *id) {
  if (id == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  if (ensure_sodium() < 0) {
    return PTV_ERR_CRYPTO;
  }
  if (crypto_sign_keypair(id->pk, id->sk) != 0) {
    ptv_identity_wipe(id);
    return PTV_ERR_CRYPTO;
  }
  return 0;
}

/* Reads exactly n bytes; short reads from a regular file only happen at
 * EOF, which the caller reports as a size error. */
static ssize_t read_full(int fd, uint8_t *buf, size_t n) {
  size_t got = 0;

  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0) {
      return -1;
    }
    if (r == 0) {
      break;
    }
    got += (size_t)r;
  }
  return (ssize_t)got;
}

static int write_full(int fd, const uint8_t *buf, size_t n) {
  size_t done = 0;

  while (done < n) {
    ssize_t r = write(fd, buf + done, n - done);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      return -1;
    }
    done += (size_t)r;
  }
  return 0;
}

/* Loads an existing file. Returns 1 if the file does not exist (caller
 * creates it), 0 on success, a PTV_ERR_* otherwise. */
static int load_file(ptv_identity *id, const char *path, char *errbuf,
                     size_t errlen) {
  uint8_t buf[PTV_IDENTITY_FILE_LEN + 1];
  uint8_t pk[PTV_IDENTITY_PK_LEN];
  struct stat st;
  ssize_t n;
  int fd, rv = 0;

  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) {
      return 1;
    }
    seterr(errbuf, errlen, "identity key %s: cannot open: %s", path,
           strerror(errno));
    return PTV_ERR_IO;
  }
  /* fstat on the open descriptor: no window between check and read. */
  if (fstat(fd, &st) != 0) {
    seterr(errbuf, errlen, "identity key %s: cannot stat: %s", path,
           strerror(errno));
    close(fd);
    return PTV_ERR_IO;
  }
  if (!S_ISREG(st.st_mode)) {
    seterr(errbuf, errlen, "identity key %s: not a regular file", path);
    close(fd);
    return PTV_ERR_IO;
  }
  if ((st.st_mode & 077) != 0) {
    seterr(errbuf, errlen,
           "identity key %s: permissions %04o let group/others access the "
           "secret key; refusing it (run: chmod 600 %s)",
           path, (unsigned)(st.st_mode & 07777), path);
    close(fd);
    return PTV_ERR_IO;
  }
  /* Read one byte more than expected so a longer file is caught. */
  n = read_full(fd, buf, sizeof(buf));
  close(fd);
  if (n < 0) {
    seterr(errbuf, errlen, "identity key %s: read failed: %s", path,
           strerror(errno));
    return PTV_ERR_IO;
  }
  if ((size_t)n != PTV_IDENTITY_FILE_LEN) {
    seterr(errbuf, errlen,
           "identity key %s: wrong size (expected %d bytes); not a PeerTV "
           "identity file",
           path, PTV_IDENTITY_FILE_LEN);
    rv = PTV_ERR_MALFORMED;
    goto out;
  }
  if (memcmp(buf, FILE_MAGIC, sizeof(FILE_MAGIC)) != 0) {
    seterr(errbuf, errlen,
           "identity key %s: bad magic; not a PeerTV identity file", path);
    rv = PTV_ERR_MALFORMED;
    goto out;
  }
  if (crypto_sign_seed_keypair(pk, id->sk, buf + sizeof(FILE_MAGIC)) != 0) {
    seterr(errbuf, errlen, "identity key %s: key derivation failed", path);
    rv = PTV_ERR_CRYPTO;
    goto out;
  }
  if (sodium_memcmp(pk, buf + sizeof(FILE_MAGIC) + SEED_LEN, sizeof(pk)) !=
      0) {
    seterr(errbuf, errlen,
           "identity key %s: stored public key does not match the seed; "
           "the file is corrupt",
           path);
    rv = PTV_ERR_MALFORMED;
    goto out;
  }
  memcpy(id->pk, pk, sizeof(pk));
out:
  sodium_memzero(buf, sizeof(buf));
  if (rv != 0) {
    ptv_identity_wipe(id);
  }
  return rv;
}

static void fsync_dir_of(const char *path) {
  char *dir = strdup(path);
  char *slash;
  int fd;

  if (dir == NULL) {
    return;
  }
  slash = strrchr(dir, '/');
  if (slash == NULL) {
    strcpy(dir, ".");
  } else if (slash == dir) {
    dir[1] = '\0';
  } else {
    *slash = '\0';
  }
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd); /* durability only; the key is already usable */
    close(fd);
  }
  free(dir);
}

/* Creates the file. Returns 0, 1 if another process created it first
 * (caller loads that one), or a PTV_ERR_*. */
static int create_file(ptv_identity *id, const char *path, char *errbuf,
                       size_t errlen) {
  uint8_t buf[PTV_IDENTITY_FILE_LEN];
  size_t plen = strlen(path);
  char *tmp;
  int fd, rv = 0;

  tmp = malloc(plen + sizeof(".tmp-XXXXXX"));
  if (tmp == NULL) {
    seterr(errbuf, errlen, "identity key %s: out of memory", path);
    return PTV_ERR_NOMEM;
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp-XXXXXX", sizeof(".tmp-XXXXXX"));
  /* mkstemp creates with O_EXCL and mode 0600 whatever the umask. */
  fd = mkstemp(tmp);
  if (fd < 0) {
    seterr(errbuf, errlen, "identity key %s: cannot create %s: %s", path, tmp,
           strerror(errno));
    free(tmp);
    return PTV_ERR_IO;
  }
  rv = ptv_identity_generate(id);
  if (rv != 0) {
    seterr(errbuf, errlen, "identity key %s: key generation failed", path);
    goto fail;
  }
  memcpy(buf, FILE_MAGIC, sizeof(FILE_MAGIC));
  crypto_sign_ed25519_sk_to_seed(buf + sizeof(FILE_MAGIC), id->sk);
  memcpy(buf + sizeof(FILE_MAGIC) + SEED_LEN, id->pk, PTV_IDENTITY_PK_LEN);
  if (fchmod(fd, 0600) != 0 || write_full(fd, buf, sizeof(buf)) != 0 ||
      fsync(fd) != 0) {
    seterr(errbuf, errlen, "identity key %s: cannot write %s: %s", path, tmp,
           strerror(errno));
    rv = PTV_ERR_IO;
    goto fail;
  }
  if (close(fd) != 0) {
    fd = -1;
    seterr(errbuf, errlen, "identity key %s: cannot write %s: %s", path, tmp,
           strerror(errno));
    rv = PTV_ERR_IO;
    goto fail;
  }
  fd = -1;
  /* link() refuses to replace an existing file, unlike rename(): if another
   * process created the key meanwhile, we use theirs instead of silently
   * replacing a key that may already be registered with the tracker. Some
   * file systems lack hard links; fall back to rename() there. */
  if (link(tmp, path) == 0) {
    unlink(tmp);
  } else if (errno == EEXIST) {
    unlink(tmp);
    rv = 1;
    goto done;
  } else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP ||
             errno == EXDEV || errno == EMLINK) {
    if (rename(tmp, path) != 0) {
      seterr(errbuf, errlen, "identity key %s: cannot rename %s: %s", path,
             tmp, strerror(errno));
      rv = PTV_ERR_IO;
      goto fail;
    }
  } else {
    seterr(errbuf, errlen, "identity key %s: cannot link %s: %s", path, tmp,
           strerror(errno));
    rv = PTV_ERR_IO;
    goto fail;
  }
  fsync_dir_of(path);
  goto done;
fail:
  if (fd >= 0) {
    close(fd);
  }
  unlink(tmp);
done:
  if (rv != 0) {
    ptv_identity_wipe(id);
  }
  sodium_memzero(buf, sizeof(buf));
  free(tmp);
  return rv;
}

int ptv_identity_load_or_create(ptv_identity *id, const char *path,
                                char *errbuf, size_t errlen) {
  int rv, tries;

  if (errbuf != NULL && errlen > 0) {
    errbuf[0] = '\0';
  }
  if (id == NULL || path == NULL || path[0] == '\0') {
    seterr(errbuf, errlen, "identity key: no path given");
    if (id != NULL) {
      ptv_identity_wipe(id);
    }
    return PTV_ERR_INVALID_ARG;
  }
  if (ensure_sodium() < 0) {
    seterr(errbuf, errlen, "identity key %s: sodium_init failed", path);
    ptv_identity_wipe(id);
    return PTV_ERR_CRYPTO;
  }
  /* Two rounds cover losing a creation race once; a file that keeps
   * vanishing under us is reported as an I/O error. */
  for (tries = 0; tries < 2; ++tries) {
    rv = load_file(id, path, errbuf, errlen);
    if (rv == 1) {
      rv = create_file(id, path, errbuf, errlen);
    }
    if (rv != 1) {
      if (rv != 0) {
        ptv_identity_wipe(id);
      }
      return rv;
    }
  }
  seterr(errbuf, errlen, "identity key %s: file keeps appearing and vanishing",
         path);
  ptv_identity_wipe(id);
  return PTV_ERR_IO;
}

const uint8_t *ptv_identity_pk(const ptv_identity *id) { return id->pk; }

int ptv_identity_sign(const ptv_identity *id, const uint8_t *msg, size_t len,
                      uint8_t sig[PTV_IDENTITY_SIG_LEN]) {
  static const uint8_t empty[1] = {0};

  if (id == NULL || sig == NULL || (msg == NULL && len != 0)) {
    return PTV_ERR_INVALID_ARG;
  }
  if (ensure_sodium() < 0) {
    return PTV_ERR_CRYPTO;
  }
  if (crypto_sign_detached(sig, NULL, msg != NULL ? msg : empty, len,
                           id->sk) != 0) {
    return PTV_ERR_CRYPTO;
  }
  return 0;
}

int ptv_identity_verify(const uint8_t pk[PTV_IDENTITY_PK_LEN],
                        const uint8_t *msg, size_t len,
                        const uint8_t sig[PTV_IDENTITY_SIG_LEN]) {
  static const uint8_t empty[1] = {0};

  if (pk == NULL || sig == NULL || (msg == NULL && len != 0)) {
    return PTV_ERR_INVALID_ARG;
  }
  if (ensure_sodium() < 0) {
    return PTV_ERR_CRYPTO;
  }
  if (crypto_sign_verify_detached(sig, msg != NULL ? msg : empty, len, pk) !=
      0) {
    return PTV_ERR_BAD_SIG;
  }
  return 0;
}

int ptv_identity_fingerprint(const uint8_t pk[PTV_IDENTITY_PK_LEN], char *out,
                             size_t cap) {
  static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
  uint8_t h[crypto_generichash_BYTES_MIN]; /* 16; we print the first 10 */
  uint32_t acc = 0;
  int bits = 0;
  size_t i, o = 0, nchars = 0;

  if (pk == NULL || out == NULL) {
    return PTV_ERR_INVALID_ARG;
  }
  if (cap < PTV_IDENTITY_FP_SIZE) {
    if (cap > 0) {
      out[0] = '\0';
    }
    return PTV_ERR_NOBUF;
  }
  if (ensure_sodium() < 0) {
    return PTV_ERR_CRYPTO;
  }
  crypto_generichash(h, sizeof(h), pk, PTV_IDENTITY_PK_LEN,
                     (const uint8_t *)FP_KEY, sizeof(FP_KEY) - 1);
  /* 10 bytes = 80 bits = exactly 16 base32 characters. */
  for (i = 0; i < 10; ++i) {
    acc = (acc << 8) | h[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      if (nchars > 0 && nchars % 4 == 0) {
        out[o++] = '-';
      }
      out[o++] = b32[(acc >> bits) & 31];
      nchars++;
    }
  }
  out[o] = '\0';
  return 0;
}

void ptv_identity_wipe(ptv_identity *id) {
  if (id != NULL) {
    sodium_memzero(id, sizeof(*id));
  }
}
