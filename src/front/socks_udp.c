/* socks_udp.c - see socks_udp.h.
 *
 * Ownership: an association owns its control bufferevent, its two sockets
 * (relay and outgoing), their events, its idle timer and a pending name
 * resolution. It frees all of them when the control connection ends, when
 * it stays idle, or at a final stop.
 */
#include "front/socks_udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/sockaddr.h"
#include "core/util.h"
#include "egress/route.h"
#include "front/socks_addr.h"
#include "http/target.h"

/* How long a resolved name is used for the next datagrams to it. */
#define NAME_TTL_MS 60000
/* The largest UDP payload over IPv4 or IPv6, plus the largest SOCKS header. */
#define DATAGRAM_MAX (65535 + 4 + 1 + 255 + 2)

static atomic_size_t open_associations;

typedef struct association {
    worker_conn link;
    worker *w;
    const listen_config *listener;
    credentials cred;
    struct bufferevent *control;
    int relay_fd, out4_fd, out6_fd;           /* -1 when not open */
    struct event *relay_ev, *out4_ev, *out6_ev;
    struct event *idle;
    struct sockaddr_storage client;           /* where the client sends from */
    int client_port_known;
    /* One name resolving at a time, with the one datagram waiting for it. */
    struct evdns_getaddrinfo_request *resolving;
    unsigned char *pending;                   /* owned */
    size_t pending_len;
    unsigned pending_port;
    /* The last name resolved. */
    char name[TARGET_MAX_HOST + 1];
    struct sockaddr_storage name_addr;
    struct timeval name_at;
} association;

static void association_free(association *a)
{
    if (a->resolving)
        evdns_getaddrinfo_cancel(a->resolving); /* its callback frees nothing of ours */
    struct event *evs[] = {a->relay_ev, a->out4_ev, a->out6_ev, a->idle};
    for (size_t i = 0; i < ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    int fds[] = {a->relay_fd, a->out4_fd, a->out6_fd};
    for (size_t i = 0; i < ARRAY_LEN(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (a->control)
        bufferevent_free(a->control);
    free(a->pending);
    worker_conn_remove(a->w, &a->link);
    atomic_fetch_sub(&open_associations, 1);
    free(a);
}

static void touch(association *a)
{
    struct timeval tv = ms_to_timeval(a->w->cfg->timeouts.tunnel_idle_ms);
    evtimer_add(a->idle, &tv);
}

static int same_ip(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
    unsigned char a[16], b[16];
    return cidr_sockaddr_address((const struct sockaddr *)x, a) == 0 &&
           cidr_sockaddr_address((const struct sockaddr *)y, b) == 0 && memcmp(a, b, 16) == 0;
}

static void on_outgoing(evutil_socket_t fd, short what, void *arg);

/* The outgoing socket of a family, opened on first use. */
static int outgoing_fd(association *a, int family)
{
    int *fd = family == AF_INET6 ? &a->out6_fd : &a->out4_fd;
    struct event **ev = family == AF_INET6 ? &a->out6_ev : &a->out4_ev;
    if (*fd >= 0)
        return *fd;
    const config *cfg = a->w->cfg;
    int s = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    if (cfg->outgoing_len && cfg->outgoing.ss_family == family &&
        bind(s, (const struct sockaddr *)&cfg->outgoing, cfg->outgoing_len) < 0) {
        close(s);
        return -1;
    }
    *ev = event_new(a->w->base, s, EV_READ | EV_PERSIST, on_outgoing, a);
    if (!*ev || event_add(*ev, NULL) < 0) {
        close(s);
        return -1;
    }
    *fd = s;
    return s;
}

static void send_out(association *a, const struct sockaddr_storage *dest, const unsigned char *data,
                     size_t len)
{
    int fd = outgoing_fd(a, dest->ss_family);
    const struct sockaddr *to = (const struct sockaddr *)dest;
    if (fd < 0 || sendto(fd, data, len, 0, to, sockaddr_len(to)) < 0)
        log_debug("socks udp: cannot send to the destination: %s", strerror(errno));
}

static void resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    association *a = arg;
    if (result == EVUTIL_EAI_CANCEL)
        return; /* the association is being freed */
    a->resolving = NULL;
    if (result != 0 || !res) {
        log_debug("socks udp: %s does not resolve", a->name);
        a->name[0] = '\0';
    } else {
        memset(&a->name_addr, 0, sizeof a->name_addr);
        memcpy(&a->name_addr, res->ai_addr, res->ai_addrlen);
        sockaddr_set_port((struct sockaddr *)&a->name_addr, a->pending_port);
        event_base_gettimeofday_cached(a->w->base, &a->name_at);
        send_out(a, &a->name_addr, a->pending, a->pending_len);
    }
    if (res)
        evutil_freeaddrinfo(res);
    free(a->pending);
    a->pending = NULL;
}

/* A datagram for a name: the cached answer, else a resolution (if none is
 * running) with this datagram waiting for it. */
static void send_to_name(association *a, const char *host, unsigned port, const unsigned char *data,
                         size_t len)
{
    struct timeval now;
    event_base_gettimeofday_cached(a->w->base, &now);
    if (strcmp(a->name, host) == 0 && !a->resolving &&
        elapsed_ms(&a->name_at, &now) < NAME_TTL_MS) {
        sockaddr_set_port((struct sockaddr *)&a->name_addr, port);
        send_out(a, &a->name_addr, data, len);
        return;
    }
    if (a->resolving || !(a->pending = malloc(len ? len : 1)))
        return; /* dropped: UDP may lose datagrams */
    memcpy(a->pending, data, len);
    a->pending_len = len;
    a->pending_port = port;
    snprintf(a->name, sizeof a->name, "%s", host);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    a->resolving = evdns_getaddrinfo(a->w->dns, host, NULL, &hints, resolved_cb, a);
}

/* A datagram from the client: RSV(2) FRAG ATYP DST.ADDR DST.PORT DATA. */
static void from_client(association *a, const unsigned char *m, size_t len)
{
    if (len < 4 || m[2] != 0)
        return; /* too short, or a fragment: fragments are not reassembled */
    char authority[SOCKS_AUTHORITY_MAX];
    struct sockaddr_storage dest;
    socklen_t dest_len;
    long addr_len = socks_addr_read(m + 3, len - 3, authority, &dest, &dest_len);
    if (addr_len <= 0)
        return;
    const unsigned char *data = m + 3 + addr_len;
    size_t data_len = len - 3 - (size_t)addr_len;
    target t;
    if (target_parse_authority(authority, strlen(authority), &t) < 0)
        return;
    route rt;
    route_input in = {t.host, &a->cred, NULL, 0, a->listener};
    route_decide(a->w->cfg, &in, &rt);
    if (rt.action != ROUTE_DIRECT) {
        log_debug("socks udp: a datagram for %s dropped: %s", t.host,
                  rt.action == ROUTE_BLOCK ? "blocked" : "its route needs an exit, and exits carry no UDP");
        return;
    }
    if (dest_len)
        send_out(a, &dest, data, data_len);
    else
        send_to_name(a, t.host, t.port, data, data_len);
}

static void on_relay(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    association *a = arg;
    unsigned char buf[DATAGRAM_MAX];
    for (int i = 0; i < 64; i++) { /* bounded: other connections get their turn */
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
        if (n < 0)
            return;
        /* Only the client, and once known, only its port. */
        if (!same_ip(&from, &a->client) ||
            (a->client_port_known && sockaddr_port((const struct sockaddr *)&from) !=
                                         sockaddr_port((const struct sockaddr *)&a->client)))
            continue;
        if (!a->client_port_known) {
            a->client = from;
            a->client_port_known = 1;
        }
        touch(a);
        from_client(a, buf, (size_t)n);
    }
}

/* A datagram from a destination: wrapped for the client. */
static void on_outgoing(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    association *a = arg;
    unsigned char buf[DATAGRAM_MAX];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof from;
        size_t head = 3 + SOCKS_ADDR_WRITE_MAX;
        ssize_t n = recvfrom(fd, buf + head, sizeof buf - head, 0, (struct sockaddr *)&from, &from_len);
        if (n < 0)
            return;
        if (!a->client_port_known)
            continue;
        touch(a);
        /* RSV(2) FRAG=0 and the sender's address, just before the data. */
        unsigned char field[SOCKS_ADDR_WRITE_MAX];
        size_t field_len = socks_addr_write((const struct sockaddr *)&from, field);
        unsigned char *h = buf + head - 3 - field_len;
        h[0] = h[1] = h[2] = 0;
        memcpy(h + 3, field, field_len);
        size_t total = 3 + field_len + (size_t)n;
        if (sendto(a->relay_fd, h, total, 0, (const struct sockaddr *)&a->client,
                   sockaddr_len((const struct sockaddr *)&a->client)) < 0)
            log_debug("socks udp: cannot send to the client: %s", strerror(errno));
    }
}

/* The control connection ended (or sent what it should not): so does the
 * association. */
static void control_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    association_free(arg);
}

static void control_read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    log_debug("socks udp: association idle for timeouts.tunnel_idle, closed");
    association_free(arg);
}

static void association_drain(worker_conn *link)
{
    association *a = (association *)link;
    if (a->w->stopping_for_good)
        association_free(a);
}

static void association_destroy(worker_conn *link)
{
    association_free((association *)link);
}

/* VER REP RSV ATYP BND.ADDR BND.PORT: where the client must send. */
static void write_reply(struct bufferevent *control, const struct sockaddr_storage *bound)
{
    unsigned char r[3 + SOCKS_ADDR_WRITE_MAX] = {5, 0, 0};
    size_t n = 3 + socks_addr_write((const struct sockaddr *)bound, r + 3);
    evbuffer_add(bufferevent_get_output(control), r, n);
}

int socks_udp_start(worker *w, struct bufferevent *control, const listen_config *l,
                    const credentials *cred, const struct sockaddr *hint, socklen_t hint_len)
{
    const config *cfg = w->cfg;
    route rt;
    route_input in = {"", cred, NULL, 0, l};
    route_decide(cfg, &in, &rt);
    if (rt.action != ROUTE_DIRECT) {
        log_info("socks udp: UDP ASSOCIATE refused: its route (%s) goes through an exit, and exits "
                 "carry no UDP",
                 rt.why);
        return 0x07;
    }
    if (atomic_fetch_add(&open_associations, 1) >= cfg->limits.max_udp_associations) {
        atomic_fetch_sub(&open_associations, 1);
        log_warn("limits.max_udp_associations (%zu) reached: UDP ASSOCIATE refused",
                 cfg->limits.max_udp_associations);
        return 0x01;
    }
    association *a = calloc(1, sizeof *a);
    if (!a) {
        atomic_fetch_sub(&open_associations, 1);
        return 0x01;
    }
    a->w = w;
    a->listener = l;
    a->cred = *cred;
    a->relay_fd = a->out4_fd = a->out6_fd = -1;
    a->link.drain = association_drain;
    a->link.destroy = association_destroy;
    worker_conn_add(w, &a->link);

    /* The relay listens where the client reached us over TCP. */
    int tcp = bufferevent_getfd(control);
    struct sockaddr_storage local, peer;
    socklen_t local_len = sizeof local, peer_len = sizeof peer;
    if (getsockname(tcp, (struct sockaddr *)&local, &local_len) < 0 ||
        getpeername(tcp, (struct sockaddr *)&peer, &peer_len) < 0)
        goto fail;
    sockaddr_set_port((struct sockaddr *)&local, 0);
    a->relay_fd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;
    if (a->relay_fd < 0 || bind(a->relay_fd, (struct sockaddr *)&local, local_len) < 0 ||
        getsockname(a->relay_fd, (struct sockaddr *)&bound, &bound_len) < 0)
        goto fail;
    a->relay_ev = event_new(w->base, a->relay_fd, EV_READ | EV_PERSIST, on_relay, a);
    a->idle = evtimer_new(w->base, idle_cb, a);
    if (!a->relay_ev || !a->idle || event_add(a->relay_ev, NULL) < 0)
        goto fail;

    /* The client sends from its TCP address; the request may name the port. */
    a->client = peer;
    if (hint && hint_len) {
        unsigned port = sockaddr_port(hint);
        if (port) {
            sockaddr_set_port((struct sockaddr *)&a->client, port);
            a->client_port_known = 1;
        }
    }
    if (l->udp_addr_len) {
        unsigned port = sockaddr_port((const struct sockaddr *)&bound);
        memcpy(&bound, &l->udp_addr, l->udp_addr_len);
        sockaddr_set_port((struct sockaddr *)&bound, port);
    }
    a->control = control;
    bufferevent_setcb(control, control_read_cb, NULL, control_event_cb, a);
    bufferevent_enable(control, EV_READ);
    write_reply(control, &bound);
    touch(a);
    return 0;
fail:
    log_warn("socks udp: cannot open the relay socket: %s", strerror(errno));
    association_free(a);
    return 0x01;
}
