/* connector.h - obtaining a connection for a request: direct or through an exit.
 *
 * Direct connections are dialled (dial.h: evdns, non-blocking connect, loop
 * guard); with upstream_reuse "shared", idle ones come from the caller's
 * origin pool (origin_pool.h). Through an upstream, the connector picks a
 * healthy one of the route's country (upstream.h), dials its first hop and
 * walks the chain (chain.h); a failure before the exit answers marks that
 * upstream down and tries another of the same country.
 *
 * The result is always delivered from the event loop, never from inside
 * connector_start, so callers need not handle re-entrance.
 */
#ifndef ANONPROXY_CONNECTOR_H
#define ANONPROXY_CONNECTOR_H

#include "core/proxy_error.h"
#include "egress/origin_pool.h"
#include "egress/route.h"
#include "egress/upstream.h"
#include "net/worker.h"

struct bufferevent;
typedef struct connect_req connect_req;

/* A connection ready for a request. */
typedef struct connect_result {
    struct bufferevent *bev;
    int reused;               /* came from the idle pool (the origin may have closed it meanwhile) */
    upstream *via;            /* the exit used, NULL when direct */
    const hop *http_proxy;    /* non-NULL: the connection ends at this HTTP(S) proxy, so the
                               * request goes in absolute-form with its Proxy-Authorization */
} connect_result;

/* On success error is PE_NONE and res->bev is owned by the callee from now
 * on. On failure res is NULL, error says why (the dial's reasons, and
 * PE_DESTINATION_UNAVAILABLE when no exit of the route's country is healthy
 * or none could be reached, or what the exit said about the destination)
 * and detail is a short reason fit for a client. The request is freed
 * first. */
typedef void (*connect_cb)(const connect_result *res, proxy_error error, const char *detail,
                           void *arg);

/* Starts getting a connection to host:port along route rt: direct, or
 * through a healthy upstream of the route's country with failover to
 * others of that country (failover_tries). tunnel: the request is CONNECT.
 * pool, when not NULL, may give an idle direct connection. client is the
 * client's address, for the sticky strategy when rt has no session.
 * Returns NULL only when out of memory. */
connect_req *connector_start(worker *w, origin_pool *pool, const route *rt, const char *host,
                             unsigned port, int tunnel, const char *client, connect_cb cb, void *arg);

/* Abandons a request whose callback has not run yet; the callback never runs. */
void connector_cancel(connect_req *r);

/* Gives back a connection (owned by the callee from now on) that finished
 * an exchange and may be reused. With upstream_reuse "shared" a direct one
 * joins pool (when not NULL and the worker is not draining); otherwise it
 * is freed. */
void connector_release(worker *w, origin_pool *pool, const connect_result *how, const char *host,
                       unsigned port, struct bufferevent *bev);

#endif
