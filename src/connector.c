/* connector.c - see connector.h. */
#include "connector.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "target.h"

/* Idle origin connections kept per worker with upstream_reuse "shared". */
#define POOL_MAX_IDLE 256

struct connect_req {
    worker *w;
    char host[TARGET_MAX_HOST + 1];
    unsigned port;
    struct evdns_getaddrinfo_request *dns;
    struct evutil_addrinfo *addrs;   /* resolved list (owned) */
    struct evutil_addrinfo *next;    /* next address to try */
    struct bufferevent *bev;         /* connect in progress */
    struct bufferevent *result;      /* connected, awaiting delivery */
    int reused;
    struct event *timer;             /* connect deadline, and deferred delivery */
    int status;                      /* failure to deliver; 0 while none */
    const char *detail;
    connect_cb cb;
    void *arg;
};

typedef struct pooled {
    struct pooled *prev, *next;
    struct upstream_pool *pool;
    char host[TARGET_MAX_HOST + 1];
    unsigned port;
    struct bufferevent *bev;
} pooled;

struct upstream_pool {
    pooled head;   /* sentinel; most recently released first */
    size_t count;
};

/* ---- delivery ---------------------------------------------------------- */

static void req_free(connect_req *r)
{
    if (r->bev)
        bufferevent_free(r->bev);
    if (r->result)
        bufferevent_free(r->result);
    if (r->addrs)
        evutil_freeaddrinfo(r->addrs);
    if (r->timer)
        event_free(r->timer);
    free(r);
}

/* Hands the outcome to the caller and frees the request. */
static void deliver(connect_req *r)
{
    struct bufferevent *bev = r->result;
    int status = bev ? 0 : (r->status ? r->status : 504);
    const char *detail = bev ? NULL : (r->status ? r->detail : "timed out connecting to the origin");
    int reused = r->reused;
    connect_cb cb = r->cb;
    void *arg = r->arg;

    r->result = NULL;
    req_free(r);
    cb(bev, reused, status, detail, arg);
}

/* The deadline fired, or a result was queued with event_active. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_req *r = arg;
    if (r->dns) {
        /* Cancelling runs the DNS callback with EAI_CANCEL, which ignores it. */
        struct evdns_getaddrinfo_request *dns = r->dns;
        r->dns = NULL;
        evdns_getaddrinfo_cancel(dns);
        if (!r->status && !r->result) {
            r->status = 504;
            r->detail = "timed out resolving the origin's host name";
        }
    }
    deliver(r);
}

/* Queues a failure for delivery from the loop (we may be inside connector_start). */
static void fail(connect_req *r, int status, const char *detail)
{
    r->status = status;
    r->detail = detail;
    event_active(r->timer, EV_TIMEOUT, 0);
}

/* ---- loop guard -------------------------------------------------------- */

static unsigned sa_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

/* The IPv4 address of sa, also when written as IPv4-mapped IPv6. */
static int as_ipv4(const struct sockaddr *sa, struct in_addr *out)
{
    if (sa->sa_family == AF_INET) {
        *out = ((const struct sockaddr_in *)sa)->sin_addr;
        return 1;
    }
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(a6)) {
        memcpy(out, &a6->s6_addr[12], 4);
        return 1;
    }
    return 0;
}

/* Compares the address part only. */
static int same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
    struct in_addr a4 = {0}, b4 = {0};
    int a_is4 = as_ipv4(a, &a4), b_is4 = as_ipv4(b, &b4);
    if (a_is4 || b_is4)
        return a_is4 && b_is4 && a4.s_addr == b4.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static int is_wildcard(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* Is addr one of this machine's own addresses? Only asked when a wildcard
 * listener has the same port, which is rare, so no caching. */
static int is_local_address(const struct sockaddr *addr)
{
    if (addr->sa_family == AF_INET &&
        (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127)
        return 1;
    struct ifaddrs *ifs, *i;
    if (getifaddrs(&ifs) < 0)
        return 1; /* cannot tell: refusing is the safe side */
    int found = 0;
    for (i = ifs; i && !found; i = i->ifa_next)
        if (i->ifa_addr && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6))
            found = same_ip(i->ifa_addr, addr);
    freeifaddrs(ifs);
    return found;
}

static int is_own_listener(const config *cfg, const struct sockaddr *addr)
{
    unsigned port = sa_port(addr);
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const struct sockaddr *l = (const struct sockaddr *)&cfg->listen[i].addr;
        if (sa_port(l) != port)
            continue;
        if (same_ip(l, addr) || (is_wildcard(l) && is_local_address(addr)))
            return 1;
    }
    return 0;
}

/* ---- connecting -------------------------------------------------------- */

static void try_next_address(connect_req *r);

static void on_connect_event(struct bufferevent *bev, short what, void *arg)
{
    connect_req *r = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        r->bev = NULL;
        r->result = bev;
        event_del(r->timer);
        deliver(r);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    log_debug("connect to %s:%u failed: %s", r->host, r->port, evutil_socket_error_to_string(err));
    bufferevent_free(bev);
    r->bev = NULL;
    if (r->next)
        try_next_address(r);
    else
        fail(r, 502, err == ECONNREFUSED ? "connection refused by the origin"
                                         : "cannot connect to the origin");
}

static void try_next_address(connect_req *r)
{
    while (r->next) {
        struct evutil_addrinfo *ai = r->next;
        r->next = ai->ai_next;
        r->bev = bufferevent_socket_new(r->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (!r->bev)
            break;
        bufferevent_setcb(r->bev, NULL, NULL, on_connect_event, r);
        if (bufferevent_socket_connect(r->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
            return;
        bufferevent_free(r->bev);
        r->bev = NULL;
    }
    fail(r, 502, "cannot connect to the origin");
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    connect_req *r = arg;
    if (result == EVUTIL_EAI_CANCEL)
        return;
    r->dns = NULL;
    if (result != 0 || !res) {
        log_debug("resolving %s failed: %s", r->host, evutil_gai_strerror(result));
        if (res)
            evutil_freeaddrinfo(res);
        fail(r, 502, "cannot resolve the origin's host name");
        return;
    }
    r->addrs = res;
    for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (is_own_listener(r->w->cfg, ai->ai_addr)) {
            fail(r, 508, "the request would loop back into this proxy");
            return;
        }
    }
    r->next = res;
    try_next_address(r);
}

/* ---- pool -------------------------------------------------------------- */

struct upstream_pool *upstream_pool_new(void)
{
    struct upstream_pool *p = calloc(1, sizeof *p);
    if (p)
        p->head.next = p->head.prev = &p->head;
    return p;
}

static void pooled_free(pooled *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->pool->count--;
    bufferevent_free(e->bev);
    free(e);
}

void upstream_pool_free(struct upstream_pool *pool)
{
    if (!pool)
        return;
    while (pool->head.next != &pool->head)
        pooled_free(pool->head.next);
    free(pool);
}

/* Anything from an idle origin connection (data, close, timeout) ends it:
 * an origin may not speak before it is asked. */
static void on_pooled_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    pooled_free(arg);
}

static void on_pooled_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    pooled_free(arg);
}

static struct bufferevent *pool_take(struct upstream_pool *pool, const char *host, unsigned port)
{
    for (pooled *e = pool->head.next; e != &pool->head; e = e->next) {
        if (e->port == port && strcmp(e->host, host) == 0) {
            struct bufferevent *bev = e->bev;
            e->prev->next = e->next;
            e->next->prev = e->prev;
            pool->count--;
            free(e);
            bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
            bufferevent_set_timeouts(bev, NULL, NULL);
            return bev;
        }
    }
    return NULL;
}

void connector_release(worker *w, const char *host, unsigned port, struct bufferevent *bev)
{
    struct upstream_pool *pool = w->pool;
    pooled *e;
    if (w->cfg->reuse != REUSE_SHARED || w->draining || !pool || !(e = calloc(1, sizeof *e))) {
        bufferevent_free(bev);
        return;
    }
    if (pool->count >= POOL_MAX_IDLE)
        pooled_free(pool->head.prev); /* the oldest */
    snprintf(e->host, sizeof e->host, "%s", host);
    e->port = port;
    e->bev = bev;
    e->pool = pool;
    e->next = pool->head.next;
    e->prev = &pool->head;
    pool->head.next->prev = e;
    pool->head.next = e;
    pool->count++;
    struct timeval idle = {w->cfg->timeouts.idle_ms / 1000, (w->cfg->timeouts.idle_ms % 1000) * 1000};
    bufferevent_setcb(bev, on_pooled_read, NULL, on_pooled_event, e);
    bufferevent_set_timeouts(bev, &idle, NULL);
    bufferevent_enable(bev, EV_READ);
}

/* ---- entry points ------------------------------------------------------ */

connect_req *connector_start(worker *w, const char *host, unsigned port, int may_reuse,
                             connect_cb cb, void *arg)
{
    connect_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->w = w;
    snprintf(r->host, sizeof r->host, "%s", host);
    r->port = port;
    r->cb = cb;
    r->arg = arg;
    r->timer = evtimer_new(w->base, on_timer, r);
    if (!r->timer) {
        free(r);
        return NULL;
    }

    if (may_reuse && w->pool && (r->result = pool_take(w->pool, host, port))) {
        r->reused = 1;
        event_active(r->timer, EV_TIMEOUT, 0);
        return r;
    }

    unsigned ms = w->cfg->timeouts.connect_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->timer, &tv);

    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* evdns may answer (numeric hosts, /etc/hosts) before returning: then
     * on_resolved has already run and the returned handle is NULL. */
    r->dns = evdns_getaddrinfo(w->dns, r->host, portstr, &hints, on_resolved, r);
    return r;
}

void connector_cancel(connect_req *r)
{
    if (r->dns) {
        struct evdns_getaddrinfo_request *dns = r->dns;
        r->dns = NULL;
        evdns_getaddrinfo_cancel(dns);
    }
    req_free(r);
}
