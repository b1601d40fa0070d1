/* connector.c - see connector.h. */
#include "egress/connector.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/chain.h"
#include "net/dial.h"
#include "core/log.h"
#include "http/target.h"

/* Longest failover list: failover_tries is at most 16. */
#define MAX_TRIES 16

struct connect_req {
    worker *w;
    route rt;
    char host[TARGET_MAX_HOST + 1];
    unsigned port;
    int tunnel;                      /* CONNECT: the exit must open a tunnel */
    char client[64];                 /* the client's address, for sticky selection */
    dial *dialing;
    chain_walk *walking;
    upstream *current;               /* the upstream being tried */
    upstream *tried[MAX_TRIES];
    size_t ntried;
    char detail[160];                /* failure text handed to the client */
    connect_result result;
    proxy_error error;
    struct event *later;             /* deferred delivery */
    connect_cb cb;
    void *arg;
};

/* ---- delivery ---------------------------------------------------------- */

static void req_free(connect_req *r)
{
    if (r->dialing)
        dial_cancel(r->dialing);
    if (r->walking)
        chain_cancel(r->walking);
    if (r->result.bev)
        bufferevent_free(r->result.bev);
    if (r->later)
        event_free(r->later);
    free(r);
}

/* Hands the outcome to the caller and frees the request. */
static void deliver(connect_req *r)
{
    connect_result result = r->result;
    proxy_error error = result.bev ? PE_NONE : r->error;
    char detail[sizeof r->detail];
    connect_cb cb = r->cb;
    void *arg = r->arg;

    memcpy(detail, r->detail, sizeof detail);
    r->result.bev = NULL;
    req_free(r);
    cb(result.bev ? &result : NULL, error, error ? detail : NULL, arg);
}

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deliver(arg);
}

/* Queues the outcome: delivery always happens from the loop. */
static void conclude(connect_req *r, proxy_error error, const char *fmt, const char *arg)
{
    r->error = error;
    snprintf(r->detail, sizeof r->detail, fmt, arg ? arg : "");
    event_active(r->later, EV_TIMEOUT, 0);
}

/* ---- through an upstream ----------------------------------------------- */

static void try_upstream(connect_req *r, const char *last_failure);

static void on_chain(struct bufferevent *bev, chain_status status, proxy_error error,
                     const char *detail, void *arg)
{
    connect_req *r = arg;
    r->walking = NULL;
    if (status == CHAIN_OK) {
        const hop *last = &r->current->hops[r->current->nhops - 1];
        r->result.bev = bev;
        r->result.via = r->current;
        r->result.http_proxy = !r->tunnel && (last->proto == HOP_HTTP || last->proto == HOP_HTTPS)
                                   ? last : NULL;
        conclude(r, PE_NONE, "%s", NULL);
    } else if (status == CHAIN_DEST_FAILED) {
        conclude(r, error, "%s", detail);
    } else {
        log_warn("upstream %s failed: %s; marked down", r->current->name, detail);
        upstream_mark_down(r->current);
        try_upstream(r, detail);
    }
}

static void on_first_hop(struct bufferevent *bev, proxy_error error, const char *detail, void *arg)
{
    connect_req *r = arg;
    r->dialing = NULL;
    if (error != PE_NONE) {
        log_warn("upstream %s unreachable: %s; marked down", r->current->name, detail);
        upstream_mark_down(r->current);
        try_upstream(r, detail);
        return;
    }
    const upstream *u = r->current;
    const hop *last = &u->hops[u->nhops - 1];
    int final_tunnel = r->tunnel || (last->proto != HOP_HTTP && last->proto != HOP_HTTPS);
    r->walking = chain_start(r->w->base, bev, u, r->host, r->port, final_tunnel,
                             r->w->cfg->timeouts.connect_ms, on_chain, r);
    if (!r->walking)
        conclude(r, PE_PROXY_INTERNAL_ERROR, "%s", "out of memory");
}

/* Picks the next healthy upstream of the route's country and dials it. */
static void try_upstream(connect_req *r, const char *last_failure)
{
    const config *cfg = r->w->cfg;
    const char *cc = r->rt.country[0] ? r->rt.country : NULL;
    upstream *u = r->ntried < cfg->failover_tries
                      ? upstream_pick(cfg->upstreams, cc,
                                      r->rt.session[0] ? r->rt.session : NULL, r->client, r->tried,
                                      r->ntried)
                      : NULL;
    if (!u) {
        char where[32] = "", why[sizeof r->detail];
        if (cc)
            snprintf(where, sizeof where, " in country %s", cc);
        if (r->ntried)
            snprintf(why, sizeof why, "no exit%s could be reached (last failure: %s)", where, last_failure);
        else
            snprintf(why, sizeof why, "no healthy exit%s", where);
        conclude(r, PE_DESTINATION_UNAVAILABLE, "%s", why);
        return;
    }
    r->current = u;
    r->tried[r->ntried++] = u;
    r->dialing = dial_start(r->w->base, r->w->dns, cfg, u->hops[0].host, u->hops[0].port,
                            cfg->timeouts.connect_ms, 1, on_first_hop, r);
    if (!r->dialing)
        conclude(r, PE_PROXY_INTERNAL_ERROR, "%s", "out of memory");
}

/* ---- direct ------------------------------------------------------------ */

static void on_direct(struct bufferevent *bev, proxy_error error, const char *detail, void *arg)
{
    connect_req *r = arg;
    r->dialing = NULL;
    r->result.bev = bev;
    if (error == PE_NONE)
        conclude(r, PE_NONE, "%s", NULL);
    else if (error == PE_DNS_TIMEOUT || error == PE_CONNECTION_TIMEOUT)
        conclude(r, error, "%s to the origin", detail);
    else
        conclude(r, error, "%s: the origin", detail);
}

void connector_release(worker *w, origin_pool *pool, const connect_result *how,
                       const char *host, unsigned port, struct bufferevent *bev)
{
    /* Only direct connections are pooled: an exit's connection is tied to the
     * route (country, session) it was chosen for. */
    if (w->cfg->reuse != REUSE_SHARED || how->via || w->draining || !pool)
        bufferevent_free(bev);
    else
        origin_pool_put(pool, host, port, bev);
}

/* ---- entry points ------------------------------------------------------ */

connect_req *connector_start(worker *w, origin_pool *pool, const route *rt, const char *host,
                             unsigned port, int tunnel, const char *client, connect_cb cb, void *arg)
{
    connect_req *r = calloc(1, sizeof *r);
    if (!r || !(r->later = event_new(w->base, -1, 0, on_later, r))) {
        free(r);
        return NULL;
    }
    r->w = w;
    r->rt = *rt;
    snprintf(r->host, sizeof r->host, "%s", host);
    r->port = port;
    r->tunnel = tunnel;
    snprintf(r->client, sizeof r->client, "%s", client);
    r->cb = cb;
    r->arg = arg;

    if (rt->action == ROUTE_UPSTREAM) {
        try_upstream(r, NULL);
    } else if (pool && (r->result.bev = origin_pool_take(pool, host, port))) {
        r->result.reused = 1;
        conclude(r, PE_NONE, "%s", NULL);
    } else {
        r->dialing = dial_start(w->base, w->dns, w->cfg, host, port, w->cfg->timeouts.connect_ms, 1,
                                on_direct, r);
        if (!r->dialing)
            conclude(r, PE_PROXY_INTERNAL_ERROR, "%s", "out of memory");
    }
    return r;
}

void connector_cancel(connect_req *r)
{
    req_free(r);
}
