/* ptv_sim_net.h -- flow-level network model of the simulator.
 *
 * Every node has an upload and a download capacity (bits per second). Bulk
 * transfers (chunks) are flows from a sender's uplink to a receiver's downlink;
 * the rates of concurrent flows are max-min fair (progressive filling). When a
 * flow starts or ends only the connected component of links it touches is
 * recomputed, so the cost of a change is proportional to the flows it can
 * affect, not to the whole network.
 *
 * The model keeps its own completion order: the driver asks for the time of
 * the next completion and pops completed flows. Time is in microseconds and
 * passed in; there is no clock inside.
 */
#ifndef PTV_SIM_NET_H
#define PTV_SIM_NET_H

#include "ptv_types.h"

typedef struct ptv_net ptv_net;

/* Capacity that is never a bottleneck (e.g. the tracker). A link at or above
 * it is not a constraint at all: it does not couple its flows into one
 * component, and a flow whose both ends are unlimited runs at exactly
 * PTV_NET_UNLIMITED bits/s (so it completes within a microsecond or so). */
#define PTV_NET_UNLIMITED 1e15

/* Creates a model for nodes 0..max_nodes-1, every capacity UNLIMITED.
 * Returns NULL on allocation failure. */
ptv_net *ptv_net_new(uint32_t max_nodes);
void ptv_net_free(ptv_net *net);

/* Sets a node's capacities in bits/s (0 means the link carries nothing).
 * Must be called while the node has no flows. Returns PTV_ERR_INVALID_ARG for
 * a node out of range or a negative capacity. (Also PTV_ERR_INVALID_ARG, with
 * nothing changed, for a NaN capacity or if the node still has flows; values
 * at or above PTV_NET_UNLIMITED, infinity included, mean unlimited.) */
int ptv_net_set_caps(ptv_net *net, uint32_t node, double up_bps, double down_bps);

/* Starts a flow of `bytes` bytes from src's uplink to dst's downlink at time
 * `now`, re-rating the affected component. `user` is returned on completion.
 * Returns a flow handle >= 0, PTV_ERR_INVALID_ARG, or PTV_ERR_NOMEM. (bytes
 * must be finite and >= 0; src == dst is allowed. Completion times are
 * rounded up to the next microsecond, so a flow is never delivered early.
 * On PTV_ERR_NOMEM the flow was not added and no rate changed.) */
int64_t ptv_net_flow_start(ptv_net *net, uint32_t src, uint32_t dst,
                           double bytes, ptv_tstamp now, void *user);

/* Time at which the earliest flow completes, or PTV_TSTAMP_MAX if none will
 * (no flows, or only flows at rate 0). */
ptv_tstamp ptv_net_next_completion(ptv_net *net);

/* If a flow completes at or before `now`, removes it, re-rates its component,
 * stores its user pointer in *user and returns 1; else returns 0. Flows that
 * complete at the same time pop in the order they were started. (The
 * component is re-rated as of the flow's completion time, not `now`, so
 * popping late does not shift the survivors' timings. `user` may be NULL.) */
int ptv_net_pop_completed(ptv_net *net, ptv_tstamp now, void **user);

/* Cancels every flow from or to `node` (it failed or left). For each one
 * calls cb(arg, user) so the driver can free its message. Returns the count.
 * (cb may be NULL. It runs after the survivors are re-rated and must not
 * call back into the model. Returns PTV_ERR_INVALID_ARG for a node out of
 * range, PTV_ERR_NOMEM with nothing cancelled.) */
int ptv_net_node_reset(ptv_net *net, uint32_t node, ptv_tstamp now,
                       void (*cb)(void *arg, void *user), void *arg);

/* Current rate of a flow in bits/s, or a negative PTV_ERR_NOT_FOUND. */
double ptv_net_flow_rate(const ptv_net *net, int64_t flow);

/* Number of flows in progress. */
uint32_t ptv_net_nflows(const ptv_net *net);

/* Bytes carried so far (completed flows plus progress of running ones up to
 * the last re-rating) from the node's uplink. (Flows whose rate did not change
 * in a re-rating are not advanced by it; cancelled flows count up to the
 * reset. 0 for a node out of range.) */
double ptv_net_bytes_up(const ptv_net *net, uint32_t node);

#endif
