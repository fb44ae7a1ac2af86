/* ptv_ice.h -- one ICE path per partner, through libnice, datagram mode.
 *
 * A thin wrapper over libnice's NiceAgent so the peer runtime can open one
 * ICE "link" per partner and trickle candidates through the tracker, which
 * relays them as opaque strings. Each link is a libnice stream with one
 * component, in non-reliable (datagram) mode, RFC 5245 compatibility, UDP
 * only (ice-tcp off), UPnP off, trickle ICE on.
 *
 * Everything runs in the GMainContext given to ptv_ice_new(), which must be
 * iterated (in PeerTV: by ptv_uvglib from the libuv loop). Callbacks run
 * from that context's dispatch, and also from inside the calls that feed
 * libnice (set_remote_credentials, add_remote_candidate, remote_done, send),
 * because libnice emits its queued signals as its API calls return. Never
 * from ptv_ice_link_new(): gathering starts from an idle source, so it
 * returns before the first callback for the link. A link freed from inside
 * a callback stays valid memory until an idle source reaps it, so those
 * calls may safely touch it after libnice returns.
 *
 * Use, per partner:
 *   link = ptv_ice_link_new(ice, tag, controlling);
 *   ptv_ice_link_local_credentials(link, ...)  -> send to partner
 *   on_local_candidate(..., line)              -> send each to partner
 *   on_gathering_done(...)                     -> tell partner "done"
 *   partner's credentials -> ptv_ice_link_set_remote_credentials()
 *   partner's lines       -> ptv_ice_link_add_remote_candidate()
 *   partner's "done"      -> ptv_ice_link_remote_done()
 *   on_state(CONNECTED)   -> ptv_ice_link_send(); data arrives in on_recv.
 * Credentials and candidates may arrive in any order: candidates received
 * before the remote credentials are held back and handed to libnice with
 * them (libnice would otherwise start checks it cannot authenticate).
 *
 * Roles. libnice's controlling-mode is a property of the whole NiceAgent,
 * not of a stream, and an ICE role conflict flips the whole agent. So a
 * ptv_ice holds up to two NiceAgents, one per role, created on first use;
 * links choose theirs by `controlling`. The two partners of a link must pick
 * opposite roles (e.g. the lower peer id controls).
 *
 * Local addresses. Without cfg->local_addrs, libnice gathers on every
 * interface except loopback (nice_interfaces_get_local_ips(FALSE)). With
 * it, libnice uses exactly those addresses (nice_agent_add_local_address),
 * loopback included; tests use {"127.0.0.1"}.
 *
 * States, reported through on_state once each, in order:
 *   GATHERING -> CONNECTING -> CONNECTED, or FAILED from any of them.
 * FAILED is final. It is reported when no pair has connected
 * cfg->fail_timeout_ms after ptv_ice_link_new(), when libnice declares the
 * component failed after ptv_ice_link_remote_done() (before that, with
 * trickle, more candidates may still come), when a connected path fails,
 * or when gathering cannot start (e.g. no free port in the range).
 *
 * Not thread-safe: call everything from the thread iterating the context. */
#ifndef PTV_ICE_H
#define PTV_ICE_H

#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ptv_ice ptv_ice;
typedef struct ptv_ice_link ptv_ice_link;

typedef enum {
  PTV_ICE_GATHERING = 0,
  PTV_ICE_CONNECTING = 1,
  PTV_ICE_CONNECTED = 2,
  PTV_ICE_FAILED = 3,
} ptv_ice_state;

/* Returns "gathering", "connecting", "connected", "failed" or "?". */
const char *ptv_ice_state_name(ptv_ice_state s);

typedef struct {
  /* STUN server, numeric IPv4/IPv6 address (libnice does not resolve
   * names). NULL: no server-reflexive candidates. Port 0 means 3478. */
  const char *stun_host;
  uint16_t stun_port;
  /* TURN server for UDP relay candidates, numeric address; NULL: none.
   * Port 0 means 3478. */
  const char *turn_host;
  uint16_t turn_port;
  const char *turn_user;
  const char *turn_pass;
  /* Local addresses to gather host candidates on (numeric). NULL or
   * n_local_addrs == 0: every non-loopback interface. */
  const char *const *local_addrs;
  size_t n_local_addrs;
  /* Host candidate port range, inclusive; 0/0: any port. */
  uint16_t port_min, port_max;
  /* A link not connected this long after creation fails; 0: 10000 ms. */
  uint32_t fail_timeout_ms;
  /* Non-zero: only relayed (TURN) pairs are used (libnice's force-relay):
   * to hide addresses, or to test the relay path. Needs a TURN server. */
  int force_relay;
} ptv_ice_config;

/* Every callback gets the `user` given to ptv_ice_new(), the link and the
 * link's peer_tag. Any may be NULL. A callback may call ptv_ice_link_free()
 * on its own link or on others, but not ptv_ice_free(). */
typedef struct {
  /* A local candidate, as one SDP attribute line ("a=candidate:..."), NUL
   * terminated, valid during the call. Trickle it to the partner. */
  void (*on_local_candidate)(void *user, ptv_ice_link *link, uint32_t peer_tag,
                             const char *cand_sdp_line);
  /* No more local candidates will come. */
  void (*on_gathering_done)(void *user, ptv_ice_link *link, uint32_t peer_tag);
  void (*on_state)(void *user, ptv_ice_link *link, uint32_t peer_tag,
                   ptv_ice_state state);
  /* One datagram from the partner; `buf` valid during the call. */
  void (*on_recv)(void *user, ptv_ice_link *link, uint32_t peer_tag,
                  const uint8_t *buf, size_t len);
} ptv_ice_callbacks;

/* Creates the ICE engine for `ctx` (NULL: the global default context).
 * `cfg` may be NULL (all defaults); its strings are copied. `cb` is copied.
 * Returns NULL if cb is NULL, or cfg is invalid (an address that is not
 * numeric, TURN without user/password, port_min > port_max, or only one of
 * them 0). */
ptv_ice *ptv_ice_new(GMainContext *ctx, const ptv_ice_config *cfg,
                     const ptv_ice_callbacks *cb, void *user);

/* Frees every remaining link, then the agents. Must not be called from a
 * ptv_ice callback. libnice closes some sockets from an idle callback, so
 * iterate the context a little afterwards before destroying it (ptv_uvglib
 * keeps iterating until closed). NULL is a no-op. */
void ptv_ice_free(ptv_ice *ice);

/* Opens a link (stream with one component) to the partner identified by
 * peer_tag; gathering starts from the context shortly after. controlling:
 * non-zero on exactly one side. Returns NULL if ice is NULL or libnice
 * refuses the stream (e.g. invalid TURN settings). */
ptv_ice_link *ptv_ice_link_new(ptv_ice *ice, uint32_t peer_tag, int controlling);

/* Closes the link: no callback for it runs after this returns. Safe from
 * inside any ptv_ice callback (libnice's stream removal is then deferred to
 * an idle source). NULL is a no-op. */
void ptv_ice_link_free(ptv_ice_link *link);

uint32_t ptv_ice_link_peer_tag(const ptv_ice_link *link);
ptv_ice_state ptv_ice_link_state(const ptv_ice_link *link);

/* Copies the link's local ICE username fragment and password, NUL
 * terminated. Returns 0, or
 *   PTV_ERR_INVALID_ARG  a NULL argument, or libnice has no credentials;
 *   PTV_ERR_NOBUF        a buffer is too small (libnice uses 4 + 22 chars;
 *                        32 bytes each are ample). */
int ptv_ice_link_local_credentials(ptv_ice_link *link, char *ufrag, size_t ufrag_size,
                                   char *pwd, size_t pwd_size);

/* Sets the partner's credentials and hands libnice any candidates held back
 * until now. Returns 0, or
 *   PTV_ERR_INVALID_ARG  a NULL argument, or libnice rejected them (length);
 *   PTV_ERR_CLOSED       the link has failed. */
int ptv_ice_link_set_remote_credentials(ptv_ice_link *link, const char *ufrag,
                                        const char *pwd);

/* Adds one trickled remote candidate, as produced by on_local_candidate on
 * the other side ("a=candidate:..."; the "a=" may be omitted). Returns 0, or
 *   PTV_ERR_INVALID_ARG  a NULL argument;
 *   PTV_ERR_PARSE        libnice cannot parse the line, a numeric field
 *                        (component, priority, port) is not a number
 *                        (libnice alone would read "x" as 0), or it is for
 *                        another component than 1;
 *   PTV_ERR_CLOSED       the link has failed;
 *   PTV_ERR_FULL         libnice refused the candidate. */
int ptv_ice_link_add_remote_candidate(ptv_ice_link *link, const char *cand_sdp_line);

/* The partner has no more candidates (optional): lets libnice declare the
 * link failed as soon as every pair has failed instead of waiting for the
 * timeout. Returns 0, or PTV_ERR_INVALID_ARG if link is NULL. */
int ptv_ice_link_remote_done(ptv_ice_link *link);

/* Sends one datagram (1..65535 bytes) on the selected pair. Returns 0, or
 *   PTV_ERR_INVALID_ARG  NULL link or buf, len 0 or over 65535;
 *   PTV_ERR_CLOSED       the link is not connected (yet), or has failed;
 *   PTV_ERR_AGAIN        the socket buffer is full, retry later;
 *   PTV_ERR_IO           any other send error. */
int ptv_ice_link_send(ptv_ice_link *link, const uint8_t *buf, size_t len);

/* Sends the datagrams packed back to back in buf[0..len): every one `seg`
 * bytes but the last (1..seg), at most 32 and 65,000 bytes in all, in order
 * on the selected pair. When the pair's local candidate is a UDP socket of
 * ours (host, server- or peer-reflexive; not relayed) they go in one
 * sendmsg on that socket, by UDP GSO (Linux 4.18) when more than one, so
 * bulk data costs one system call per batch, not per datagram; otherwise
 * (relayed, or GSO refused once) one libnice send each. Connectivity checks
 * and keepalives stay libnice's. *via_gso (may be NULL) says whether GSO
 * carried them. Returns the number of datagrams sent (the first that many;
 * fewer only on the libnice path), or
 *   PTV_ERR_INVALID_ARG  NULL link or buf, seg 0 or over 65535, len 0, more
 *                        than 32 datagrams or 65,000 bytes;
 *   PTV_ERR_CLOSED       the link is not connected (yet), or has failed;
 *   PTV_ERR_AGAIN        the socket buffer is full, retry later (none sent);
 *   PTV_ERR_IO           any other send error (none sent). */
int ptv_ice_link_send_segments(ptv_ice_link *link, const uint8_t *buf, size_t seg, size_t len,
                               int *via_gso);

/* Describes the selected candidate pair, e.g.
 * "host 127.0.0.1:40001 -> host 127.0.0.1:40002" (types: host, srflx,
 * prflx, relay). Returns 0, or
 *   PTV_ERR_INVALID_ARG  a NULL argument;
 *   PTV_ERR_NOT_FOUND    no pair selected yet;
 *   PTV_ERR_NOBUF        desc is too small (it then holds a truncated,
 *                        NUL-terminated prefix; 128 bytes are ample). */
int ptv_ice_link_selected_pair(ptv_ice_link *link, char *desc, size_t desc_size);

#ifdef __cplusplus
}
#endif
#endif
