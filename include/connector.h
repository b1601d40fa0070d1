/* connector.h - obtaining a connection to an origin: DNS, connect, reuse.
 *
 * Resolution goes through evdns (resolv.conf and /etc/hosts) and connects
 * are non-blocking, so the event loop never waits. Every resolved address is
 * checked against the proxy's own listeners, so a request can never loop
 * back into the proxy. With upstream_reuse "shared", idle connections are
 * kept in a per-worker pool keyed by host and port.
 *
 * The result is always delivered from the event loop, never from inside
 * connector_start, so callers need not handle re-entrance.
 */
#ifndef ANONPROXY_CONNECTOR_H
#define ANONPROXY_CONNECTOR_H

#include "worker.h"

struct bufferevent;
typedef struct connect_req connect_req;

/* Outcome of a connect request. On success status is 0 and bev is a
 * connected bufferevent whose ownership passes to the callee; reused says it
 * came from the idle pool (it may have been closed by the origin meanwhile).
 * On failure bev is NULL, status is the HTTP status to report (502 for DNS
 * failure or refusal, 504 for the connect timeout, 508 for a loop) and detail
 * a short reason fit for a client. The request is freed before the call. */
typedef void (*connect_cb)(struct bufferevent *bev, int reused, int status, const char *detail,
                           void *arg);

/* Starts connecting to host:port; may_reuse allows an idle pooled connection
 * (never for tunnels). Returns NULL only when out of memory. */
connect_req *connector_start(worker *w, const char *host, unsigned port, int may_reuse,
                             connect_cb cb, void *arg);

/* Abandons a request whose callback has not run yet; the callback never runs. */
void connector_cancel(connect_req *r);

/* Gives back a connection that finished an exchange and may be reused. With
 * upstream_reuse "shared" it joins the pool; otherwise it is freed. */
void connector_release(worker *w, const char *host, unsigned port, struct bufferevent *bev);

/* Per-worker pool lifetime. */
struct upstream_pool *upstream_pool_new(void);
void upstream_pool_free(struct upstream_pool *pool);

#endif
