/* dial.c - see dial.h. */
#include "net/dial.h"

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
#include <unistd.h>

#include "core/log.h"
#include "core/sockaddr.h"
#include "http/target.h"

struct dial {
    struct event_base *base;
    const config *cfg;
    char host[TARGET_MAX_HOST + 1];
    unsigned port;
    int loop_guard;
    struct evdns_getaddrinfo_request *dns;
    struct evutil_addrinfo *addrs;   /* resolved list (owned) */
    struct evutil_addrinfo *next;    /* next address to try */
    struct sockaddr_storage literal; /* the address of a literal host */
    struct evutil_addrinfo literal_ai; /* that address as a list of one (not owned) */
    struct bufferevent *bev;         /* connect in progress */
    struct bufferevent *result;      /* connected, awaiting delivery */
    struct event *timer;             /* deadline, and deferred delivery */
    proxy_error error;               /* failure to deliver; PE_NONE while none */
    const char *detail;
    dial_cb cb;
    void *arg;
};

/* ---- delivery ---------------------------------------------------------- */

static void dial_free(dial *d)
{
    if (d->dns) {
        /* Cancelling runs the DNS callback with EAI_CANCEL, which ignores it. */
        struct evdns_getaddrinfo_request *dns = d->dns;
        d->dns = NULL;
        evdns_getaddrinfo_cancel(dns);
    }
    if (d->bev)
        bufferevent_free(d->bev);
    if (d->result)
        bufferevent_free(d->result);
    if (d->addrs)
        evutil_freeaddrinfo(d->addrs);
    if (d->timer)
        event_free(d->timer);
    free(d);
}

/* Hands the outcome to the caller and frees the dial. */
static void deliver(dial *d)
{
    struct bufferevent *bev = d->result;
    proxy_error error = bev ? PE_NONE : d->error;
    const char *detail = bev ? NULL : d->detail;
    dial_cb cb = d->cb;
    void *arg = d->arg;

    d->result = NULL;
    dial_free(d);
    cb(bev, error, detail, arg);
}

/* The deadline fired, or a result was queued with event_active. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dial *d = arg;
    if (!d->error && !d->result) {
        d->error = d->dns ? PE_DNS_TIMEOUT : PE_CONNECTION_TIMEOUT;
        d->detail = d->dns ? "timed out resolving the host name" : "timed out connecting";
    }
    deliver(d);
}

/* Queues a failure for delivery from the loop (we may be inside dial_start). */
static void fail(dial *d, proxy_error error, const char *detail)
{
    d->error = error;
    d->detail = detail;
    event_active(d->timer, EV_TIMEOUT, 0);
}

/* ---- loop guard -------------------------------------------------------- */

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
    unsigned port = sockaddr_port(addr);
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const struct sockaddr *l = (const struct sockaddr *)&cfg->listen[i].addr;
        if (sockaddr_port(l) != port)
            continue;
        if (same_ip(l, addr) || (is_wildcard(l) && is_local_address(addr)))
            return 1;
    }
    return 0;
}

/* ---- connecting -------------------------------------------------------- */

static void try_next_address(dial *d);

static void on_connect_event(struct bufferevent *bev, short what, void *arg)
{
    dial *d = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        d->bev = NULL;
        d->result = bev;
        event_del(d->timer);
        deliver(d);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    log_debug("connect to %s:%u failed: %s", d->host, d->port, evutil_socket_error_to_string(err));
    bufferevent_free(bev);
    d->bev = NULL;
    if (d->next)
        try_next_address(d);
    else if (err == ECONNREFUSED)
        fail(d, PE_CONNECTION_REFUSED, "connection refused");
    else
        fail(d, PE_DESTINATION_IP_UNROUTABLE, "cannot connect");
}

/* A socket bound to outgoing_address when one is configured. */
static evutil_socket_t open_socket(const dial *d, int family)
{
    evutil_socket_t fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    const config *cfg = d->cfg;
    if (cfg->outgoing_len && cfg->outgoing.ss_family == family &&
        bind(fd, (const struct sockaddr *)&cfg->outgoing, cfg->outgoing_len) < 0) {
        log_warn("cannot bind outgoing_address: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void try_next_address(dial *d)
{
    while (d->next) {
        struct evutil_addrinfo *ai = d->next;
        d->next = ai->ai_next;
        evutil_socket_t fd = open_socket(d, ai->ai_family);
        if (fd < 0) {
            /* Out of descriptors is the operator's business: say so. */
            log_warn("cannot open a socket to %s:%u: %s", d->host, d->port, strerror(errno));
            continue;
        }
        d->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!d->bev) {
            close(fd);
            break;
        }
        bufferevent_setcb(d->bev, NULL, NULL, on_connect_event, d);
        if (bufferevent_socket_connect(d->bev, ai->ai_addr, (int)ai->ai_addrlen) == 0)
            return;
        bufferevent_free(d->bev);
        d->bev = NULL;
    }
    fail(d, PE_DESTINATION_IP_UNROUTABLE, "cannot connect");
}

/* Connects to the first address of list that accepts, unless one of them
 * is this proxy's own listener. */
static void connect_to(dial *d, struct evutil_addrinfo *list)
{
    for (struct evutil_addrinfo *ai = list; d->loop_guard && ai; ai = ai->ai_next) {
        if (is_own_listener(d->cfg, ai->ai_addr)) {
            fail(d, PE_PROXY_LOOP_DETECTED, "the request would loop back into this proxy");
            return;
        }
    }
    d->next = list;
    try_next_address(d);
}

static void on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    dial *d = arg;
    if (result == EVUTIL_EAI_CANCEL)
        return;
    d->dns = NULL;
    if (result != 0 || !res) {
        log_debug("resolving %s failed: %s", d->host, evutil_gai_strerror(result));
        if (res)
            evutil_freeaddrinfo(res);
        fail(d, PE_DNS_ERROR, "cannot resolve the host name");
        return;
    }
    d->addrs = res;
    connect_to(d, res);
}

/* Dials the address a literal host stands for: the one routing matched
 * (target_host_address), so no other reading of the text can be dialled. */
static void connect_literal(dial *d, const target_address *a)
{
    struct evutil_addrinfo *ai = &d->literal_ai;
    if (d->cfg->outgoing_len && d->cfg->outgoing.ss_family != a->family) {
        /* As the resolver's family filter would for a name. */
        log_debug("%s is not of outgoing_address's family", d->host);
        fail(d, PE_DESTINATION_IP_UNROUTABLE, "cannot connect");
        return;
    }
    if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&d->literal;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)d->port);
        memcpy(&sin->sin_addr, a->addr + 12, sizeof sin->sin_addr);
        ai->ai_addrlen = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->literal;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)d->port);
        memcpy(&sin6->sin6_addr, a->addr, sizeof sin6->sin6_addr);
        sin6->sin6_scope_id = a->scope;
        ai->ai_addrlen = sizeof *sin6;
    }
    ai->ai_family = a->family;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_protocol = IPPROTO_TCP;
    ai->ai_addr = (struct sockaddr *)&d->literal;
    connect_to(d, ai);
}

/* ---- entry points ------------------------------------------------------ */

dial *dial_start(struct event_base *base, struct evdns_base *dns, const config *cfg,
                 const char *host, unsigned port, unsigned timeout_ms, int loop_guard,
                 dial_cb cb, void *arg)
{
    dial *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->base = base;
    d->cfg = cfg;
    snprintf(d->host, sizeof d->host, "%s", host);
    d->port = port;
    d->loop_guard = loop_guard;
    d->cb = cb;
    d->arg = arg;
    d->timer = evtimer_new(base, on_timer, d);
    if (!d->timer) {
        free(d);
        return NULL;
    }
    struct timeval tv = ms_to_timeval(timeout_ms);
    evtimer_add(d->timer, &tv);

    target_address a;
    if (target_host_address(d->host, &a)) {
        connect_literal(d, &a);
        return d;
    }
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = cfg->outgoing_len ? cfg->outgoing.ss_family : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* A name: evdns may still answer (/etc/hosts) before returning: then
     * on_resolved has already run and the returned handle is NULL. */
    d->dns = evdns_getaddrinfo(dns, d->host, portstr, &hints, on_resolved, d);
    return d;
}

struct evdns_base *dial_dns_new(struct event_base *base, const config *cfg, char *err, size_t errlen)
{
    const dns_config *dns = &cfg->dns;
    const char *resolv = dns->resolv_conf ? dns->resolv_conf : "/etc/resolv.conf";
    const char *hosts = dns->hosts ? dns->hosts : "/etc/hosts";
    struct evdns_base *r = evdns_base_new(base, 0);

    if (!r) {
        snprintf(err, errlen, "cannot set up the DNS resolver");
        return NULL;
    }
    int rc = evdns_base_resolv_conf_parse(r, DNS_OPTIONS_ALL & ~DNS_OPTION_HOSTSFILE, resolv);
    if (rc != 0 && (dns->resolv_conf || rc != 1)) {
        snprintf(err, errlen, "dns.resolv_conf: cannot use %s (libevent error %d)", resolv, rc);
        evdns_base_free(r, 0);
        return NULL;
    }
    if (evdns_base_load_hosts(r, hosts) != 0 && dns->hosts) {
        snprintf(err, errlen, "dns.hosts: cannot load %s", hosts);
        evdns_base_free(r, 0);
        return NULL;
    }
    return r;
}

void dial_cancel(dial *d)
{
    dial_free(d);
}
