/* workers.c - see workers.h. */
#include "net/workers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/dial.h"
#include "net/pending.h"
#include "net/proxy_protocol.h"

/* What the main thread writes to wake a worker for a stop. */
#define STOP_FINAL 'F'
#define STOP_HANDOVER 'H'

/* ---- the PROXY protocol header (net/proxy_protocol.h) ------------------ */

/* What a connection waiting for its PROXY header keeps (net/pending.h). */
typedef struct header_wait {
    worker_listener *wl;
    unsigned char buf[PROXY_HEADER_MAX];
    size_t have;                      /* header bytes consumed so far */
} header_wait;

/* Peeks at what has arrived: takes exactly the header's bytes once it is
 * whole, else every byte (all of them belong to the header), so that the
 * socket does not stay readable with bytes nobody takes. Then the
 * listener's kind gets the socket, with the address the header carries. */
static void on_header_bytes(pending *p, void *state)
{
    header_wait *h = state;
    ssize_t n = recv(p->fd, h->buf + h->have, sizeof h->buf - h->have, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        pending_close(p, n == 0 ? "closed before the header" : "read error");
        return;
    }
    struct sockaddr_storage client;
    socklen_t client_len = 0;
    long whole = proxy_header_parse(h->buf, h->have + (size_t)n, &client, &client_len);
    if (whole < 0) {
        pending_close(p, "malformed header");
        return;
    }
    size_t take = whole ? (size_t)whole - h->have : (size_t)n;
    if (recv(p->fd, h->buf + h->have, take, 0) != (ssize_t)take) {
        pending_close(p, "read error");
        return;
    }
    h->have += take;
    if (!whole)
        return;
    if (!client_len) {
        client = p->peer;
        client_len = p->peer_len;
    }
    worker_listener *wl = h->wl;
    worker *w = p->w;
    /* The kind's connection joins the worker before the pending one leaves. */
    wl->cfg->kind->accept(w, wl->kind_state, wl->cfg, p->fd, (const struct sockaddr *)&client,
                          client_len);
    pending_release(p);
}

/* The pipeline every accepted connection goes through: the connection
 * limit, the PROXY protocol header when the listener expects one, then the
 * accept function of the listener's kind. */
static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l;
    worker_listener *wl = arg;
    worker *w = wl->w;
    const listener_kind *kind = wl->cfg->kind;
    if (worker_open_connections() >= w->cfg->limits.max_connections) {
        log_warn("limits.max_connections (%zu) reached: refusing a client",
                 w->cfg->limits.max_connections);
        if (kind->refuse_busy)
            kind->refuse_busy(fd);
        evutil_closesocket(fd);
        return;
    }
    if (wl->cfg->proxy_protocol) {
        unsigned char a[16];
        if (cidr_sockaddr_address(sa, a) < 0 ||
            !cidr_any_contains(wl->cfg->proxy_from, wl->cfg->nproxy_from, a)) {
            log_debug("%s: a peer outside proxy_protocol_from: closed", wl->cfg->address);
            evutil_closesocket(fd);
            return;
        }
        pending *p = pending_start(w, fd, sa, (socklen_t)len, "PROXY header", on_header_bytes,
                                   sizeof(header_wait));
        if (p)
            ((header_wait *)p->state)->wl = wl;
        return;
    }
    kind->accept(w, wl->kind_state, wl->cfg, fd, sa, (socklen_t)len);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    worker_listener *wl = arg;
    /* EMFILE and friends: the listener retries on its next readiness. EINVAL
     * is a socket listen_set_refuse has shut: the stop is on its way, and the
     * shut socket would stay readable, so the listener stops watching it. */
    if (errno == EINVAL) {
        log_debug("worker %u: listener shut for the stop", wl->w->id);
        evconnlistener_disable(l);
    } else {
        log_warn("accept failed: %s", strerror(errno));
    }
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
    for (size_t i = 0; i < w->nlisteners; i++) {
        worker_listener *wl = &w->listeners[i];
        if (wl->owns_state && wl->cfg->kind->worker_drain)
            wl->cfg->kind->worker_drain(wl->kind_state);
    }
    /* Idle connections close now; busy ones close after their exchange. */
    for (list_link *e = w->conns.next, *next; e != &w->conns; e = next) {
        next = e->next;
        worker_conn *c = list_entry(e, worker_conn, link);
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
    while (!list_empty(&w->conns)) {
        worker_conn *c = list_entry(w->conns.next, worker_conn, link);
        c->destroy(c);
    }
    return NULL;
}

static void worker_free(worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        worker_listener *wl = &w->listeners[i];
        if (wl->evl)
            evconnlistener_free(wl->evl);
        if (wl->owns_state && wl->cfg->kind->worker_free)
            wl->cfg->kind->worker_free(wl->kind_state);
    }
    free(w->listeners);
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
}

/* The kind state listener i shares: an earlier listener's of the same
 * kind, else a new one (owned by listener i). */
static int kind_state_for(worker *w, size_t i, char *err, size_t errlen)
{
    worker_listener *wl = &w->listeners[i];
    const listener_kind *kind = wl->cfg->kind;
    for (size_t j = 0; j < i; j++) {
        if (w->listeners[j].cfg->kind == kind) {
            wl->kind_state = w->listeners[j].kind_state;
            return 0;
        }
    }
    wl->owns_state = 1;
    return kind->worker_init ? kind->worker_init(w, &wl->kind_state, err, errlen) : 0;
}

static int worker_init(worker *w, unsigned id, const config *cfg, listen_set *socks, char *err,
                       size_t errlen)
{
    w->id = id;
    w->cfg = cfg;
    w->wake_fds[0] = w->wake_fds[1] = -1;
    list_init(&w->conns);

    struct event_config *ec = event_config_new();
    if (ec) {
        /* One thread per base: no locking needed. */
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    w->listeners = calloc(cfg->nlisten, sizeof *w->listeners);
    if (!w->base || !w->listeners || pipe2(w->wake_fds, O_CLOEXEC | O_NONBLOCK) < 0) {
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
        w->nlisteners = i + 1;
        if (kind_state_for(w, i, err, errlen) < 0)
            return -1;
        int fd = listen_set_take(socks, l, id, err, errlen);
        if (fd < 0)
            return -1;
        /* Not LEV_OPT_CLOSE_ON_FREE: the socket outlives this generation. */
        wl->evl = evconnlistener_new(w->base, accept_cb, wl, LEV_OPT_CLOSE_ON_EXEC, -1, fd);
        if (!wl->evl) {
            snprintf(err, errlen, "cannot listen on %s", l->address);
            return -1;
        }
        evconnlistener_set_error_cb(wl->evl, accept_error_cb);
    }
    return 0;
}

int workers_start(const config *cfg, listen_set *socks, worker **out, char *err, size_t errlen)
{
    if (listen_set_prepare(socks, cfg, err, errlen) < 0)
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
