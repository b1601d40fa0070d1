/* worker.c - see worker.h. */
#include "net/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front/client.h"
#include "egress/connector.h"
#include "net/dial.h"
#include "front/judge.h"
#include "core/log.h"

#define LISTEN_BACKLOG 1024
/* What the main thread writes to wake a worker for a stop. */
#define STOP_FINAL 'F'
#define STOP_HANDOVER 'H'


/* Client connections across all workers, for limits.max_connections. */
static atomic_size_t open_connections;

void worker_conn_add(worker *w, worker_conn *c)
{
    c->next = w->conns.next;
    c->prev = &w->conns;
    w->conns.next->prev = c;
    w->conns.next = c;
    w->nconns++;
    atomic_fetch_add(&open_connections, 1);
}

void worker_conn_remove(worker *w, worker_conn *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&open_connections, 1);
    if (w->draining && w->nconns == 0)
        event_base_loopbreak(w->base);
}

static void refuse_busy(evutil_socket_t fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 46\r\n"
                               "Connection: close\r\n\r\n"
                               "503 Service Unavailable: too many connections\n";
    /* Best effort: the socket buffer of a fresh connection has room. */
    ssize_t n = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    evutil_closesocket(fd);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    worker_listener *wl = arg;
    worker *w = wl->w;
    if (atomic_load(&open_connections) >= w->cfg->limits.max_connections) {
        log_warn("limits.max_connections (%zu) reached: refusing a client",
                 w->cfg->limits.max_connections);
        refuse_busy(fd);
        return;
    }
    client_accept(w, wl->cfg, fd, sa, len);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    (void)l;
    worker_listener *wl = arg;
    /* EMFILE and friends: the listener retries on its next readiness. EINVAL
     * is a socket listen_set_refuse has shut: the stop is on its way. */
    if (errno == EINVAL)
        log_debug("worker %u: listener shut for the stop", wl->w->id);
    else
        log_warn("accept failed: %s", strerror(errno));
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker *w = arg;
    log_info("worker %u: shutdown grace period over, closing %zu connection(s)", w->id, w->nconns);
    event_base_loopbreak(w->base);
}

/* The main thread asked for a graceful shutdown. */
static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    worker *w = arg;
    char how = 0;
    ssize_t n = read(fd, &how, 1);
    (void)n;
    if (w->draining)
        return;
    w->draining = 1;
    w->stopping_for_good = how == STOP_FINAL;
    for (size_t i = 0; i < w->nlisteners; i++) {
        evutil_socket_t lfd = evconnlistener_get_fd(w->listeners[i].evl);
        evconnlistener_free(w->listeners[i].evl);
        w->listeners[i].evl = NULL;
        /* At a final stop new clients are refused at once; at a reload the
         * socket goes on with the next generation. */
        if (w->stopping_for_good)
            close(lfd);
    }
    upstream_pool_free(w->pool);
    w->pool = NULL;
    if (w->judge) {
        judge_free(w->judge);
        w->judge = NULL;
    }
    /* Idle connections close now; busy ones close after their exchange. */
    for (worker_conn *c = w->conns.next, *next; c != &w->conns; c = next) {
        next = c->next;
        c->drain(c);
    }
    if (w->nconns == 0) {
        event_base_loopbreak(w->base);
        return;
    }
    unsigned ms = w->cfg->timeouts.shutdown_ms;
    struct timeval tv = ms_to_timeval(ms);
    evtimer_add(w->deadline_ev, &tv);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    event_base_dispatch(w->base);
    while (w->conns.next != &w->conns)
        w->conns.next->destroy(w->conns.next);
    return NULL;
}

static void worker_free(worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].evl)
            evconnlistener_free(w->listeners[i].evl);
    free(w->listeners);
    upstream_pool_free(w->pool);
    if (w->judge)
        judge_free(w->judge);
    if (w->dns)
        evdns_base_free(w->dns, 0);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->deadline_ev)
        event_free(w->deadline_ev);
    for (int i = 0; i < 2; i++)
        if (w->wake_fds[i] >= 0)
            close(w->wake_fds[i]);
    if (w->base)
        event_base_free(w->base);
    free(w->scratch_fields);
    if (w->scratch)
        evbuffer_free(w->scratch);
}

/* Binds once without SO_REUSEPORT: with it, a second anonproxy (or anything
 * of the same user) on the same address would silently share the traffic
 * instead of failing. */
static int probe_address(const struct sockaddr_storage *addr, socklen_t len, const char *name,
                         char *err, size_t errlen)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)addr, len) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

static int same_address(const struct sockaddr_storage *a, socklen_t alen,
                        const struct sockaddr_storage *b, socklen_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* The socket for address l and worker id: the one an earlier generation
 * used, else a new one. Returns the fd or -1 with err. */
static int take_socket(listen_set *socks, const listen_config *l, unsigned id, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < socks->n; i++) {
        listen_socket *s = &socks->items[i];
        if (s->worker == id && same_address(&s->addr, s->addr_len, &l->addr, l->addr_len)) {
            s->in_use = 1;
            return s->fd;
        }
    }
    listen_socket *grown = realloc(socks->items, (socks->n + 1) * sizeof *grown);
    if (!grown) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    socks->items = grown;
    int one = 1;
    /* Non-blocking: the old and new generation may both wake for one connection. */
    int fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)&l->addr, l->addr_len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", l->address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socks->items[socks->n++] = (listen_socket){l->addr, l->addr_len, id, fd, 1};
    return fd;
}

static int known_address(const listen_set *socks, const listen_config *l)
{
    for (size_t i = 0; i < socks->n; i++)
        if (same_address(&socks->items[i].addr, socks->items[i].addr_len, &l->addr, l->addr_len))
            return 1;
    return 0;
}

void listen_set_prune(listen_set *socks)
{
    size_t kept = 0;
    for (size_t i = 0; i < socks->n; i++) {
        if (socks->items[i].in_use)
            socks->items[kept++] = socks->items[i];
        else
            close(socks->items[i].fd);
    }
    socks->n = kept;
}

void listen_set_refuse(listen_set *socks)
{
    for (size_t i = 0; i < socks->n; i++)
        shutdown(socks->items[i].fd, SHUT_RD);
}

void listen_set_free(listen_set *socks, int closed)
{
    for (size_t i = 0; i < socks->n && !closed; i++)
        close(socks->items[i].fd);
    free(socks->items);
    socks->items = NULL;
    socks->n = 0;
}

static int worker_init(worker *w, unsigned id, const config *cfg, listen_set *socks, char *err,
                       size_t errlen)
{
    w->id = id;
    w->cfg = cfg;
    w->wake_fds[0] = w->wake_fds[1] = -1;
    w->conns.next = w->conns.prev = &w->conns;

    struct event_config *ec = event_config_new();
    if (ec) {
        /* One thread per base: no locking needed. */
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    w->limits = (http_limits){cfg->limits.max_header_bytes, cfg->limits.max_headers,
                              cfg->limits.max_uri_bytes, cfg->limits.max_line_bytes};
    w->scratch_fields = calloc(cfg->limits.max_headers, sizeof *w->scratch_fields);
    w->listeners = calloc(cfg->nlisten, sizeof *w->listeners);
    w->pool = upstream_pool_new();
    w->scratch = evbuffer_new();
    if (!w->base || !w->scratch || !w->scratch_fields || !w->listeners || !w->pool ||
        pipe2(w->wake_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        snprintf(err, errlen, "cannot set up worker %u: %s", id, strerror(errno));
        return -1;
    }
    if (!(w->dns = dial_dns_new(w->base, cfg, err, errlen)))
        return -1;
    w->wake_ev = event_new(w->base, w->wake_fds[0], EV_READ | EV_PERSIST, wake_cb, w);
    w->deadline_ev = evtimer_new(w->base, deadline_cb, w);
    if (!w->wake_ev || !w->deadline_ev || event_add(w->wake_ev, NULL) < 0) {
        snprintf(err, errlen, "cannot set up worker %u", id);
        return -1;
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const listen_config *l = &cfg->listen[i];
        worker_listener *wl = &w->listeners[i];
        wl->w = w;
        wl->cfg = l;
        int fd = take_socket(socks, l, id, err, errlen);
        if (fd < 0)
            return -1;
        /* Not LEV_OPT_CLOSE_ON_FREE: the socket outlives this generation. */
        wl->evl = evconnlistener_new(w->base, accept_cb, wl, LEV_OPT_CLOSE_ON_EXEC, -1, fd);
        if (!wl->evl) {
            snprintf(err, errlen, "cannot listen on %s", l->address);
            return -1;
        }
        evconnlistener_set_error_cb(wl->evl, accept_error_cb);
        w->nlisteners = i + 1;
    }
    if (id == 0 && cfg->judge_address) {
        char reason[256];
        w->judge = judge_start(w->base, (const struct sockaddr *)&cfg->judge_addr, cfg->judge_addr_len,
                               cfg->geo ? cfg->geoip_path : NULL, reason, sizeof reason);
        if (!w->judge) {
            snprintf(err, errlen, "judge: %s", reason);
            return -1;
        }
    }
    return 0;
}

int workers_start(const config *cfg, listen_set *socks, worker **out, char *err, size_t errlen)
{
    for (size_t i = 0; i < socks->n; i++)
        socks->items[i].in_use = 0;
    for (size_t i = 0; i < cfg->nlisten; i++)
        if (!known_address(socks, &cfg->listen[i]) &&
            probe_address(&cfg->listen[i].addr, cfg->listen[i].addr_len, cfg->listen[i].address, err,
                          errlen) < 0)
            return -1;
    /* The judge is probed at first start only: on reload the old one holds it. */
    if (socks->n == 0 && cfg->judge_address &&
        probe_address(&cfg->judge_addr, cfg->judge_addr_len, cfg->judge_address, err, errlen) < 0)
        return -1;

    worker *ws = calloc(cfg->workers, sizeof *ws);
    if (!ws) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    unsigned n;
    for (n = 0; n < cfg->workers; n++) {
        if (worker_init(&ws[n], n, cfg, socks, err, errlen) < 0) {
            worker_free(&ws[n]);
            break;
        }
    }
    if (n == cfg->workers) {
        for (n = 0; n < cfg->workers; n++) {
            int rc = pthread_create(&ws[n].thread, NULL, worker_main, &ws[n]);
            if (rc != 0) {
                snprintf(err, errlen, "cannot start worker thread: %s", strerror(rc));
                worker_free(&ws[n]);
                break;
            }
        }
        if (n == cfg->workers) {
            *out = ws;
            return 0;
        }
        /* Threads 0..n-1 run: stop them the normal way. */
        workers_stop(ws, n, 0);
        for (unsigned i = n + 1; i < cfg->workers; i++)
            worker_free(&ws[i]);
        workers_join(ws, n);
        return -1;
    }
    for (unsigned i = 0; i < n; i++)
        worker_free(&ws[i]);
    free(ws);
    return -1;
}

void workers_stop(worker *ws, unsigned n, int final)
{
    char how = final ? STOP_FINAL : STOP_HANDOVER;
    for (unsigned i = 0; i < n; i++) {
        ssize_t r = write(ws[i].wake_fds[1], &how, 1);
        (void)r;
    }
}

void workers_join(worker *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
        worker_free(&ws[i]);
    }
    free(ws);
}
