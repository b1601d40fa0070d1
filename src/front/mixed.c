/* mixed.c - see mixed.h.
 *
 * Ownership: a sniffer owns the accepted socket and its read event until
 * the first byte arrives; then the socket goes to the chosen kind's accept
 * and the sniffer is freed without closing it.
 */
#include "front/mixed.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "front/http_proxy.h"
#include "front/socks.h"
#include "net/worker.h"

/* The first byte of a TLS ClientHello: a handshake record. */
#define TLS_HANDSHAKE_RECORD 0x16

/* The HTTP kind's per-worker state, which HTTP clients of this listener use. */
typedef struct mixed_worker {
    void *http_state;
} mixed_worker;

typedef struct sniffer {
    worker_conn link;
    worker *w;
    mixed_worker *mw;
    const listen_config *listener;
    int fd;
    struct event *ev;             /* readable, or timeouts.header */
    struct sockaddr_storage peer;
    socklen_t peer_len;
} sniffer;

/* Frees the sniffer; closes the socket unless it was handed on. */
static void sniffer_free(sniffer *s, int close_fd)
{
    if (s->ev)
        event_free(s->ev);
    if (close_fd)
        close(s->fd);
    worker_conn_remove(s->w, &s->link);
    free(s);
}

static void sniff_cb(evutil_socket_t fd, short what, void *arg)
{
    sniffer *s = arg;
    unsigned char first;
    if (what & EV_TIMEOUT) {
        log_debug("mixed listener %s: no first byte in time", s->listener->address);
        sniffer_free(s, 1);
        return;
    }
    ssize_t n = recv(fd, &first, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        sniffer_free(s, 1);
        return;
    }
    const struct sockaddr *peer = (const struct sockaddr *)&s->peer;
    /* The chosen connection joins the worker before the sniffer leaves it. */
    if (first == 4 || first == 5)
        socks5_kind.accept(s->w, NULL, s->listener, s->fd, peer, s->peer_len);
    else
        http_proxy_accept(s->w, s->mw->http_state, s->listener, s->fd, peer, s->peer_len,
                          first == TLS_HANDSHAKE_RECORD && s->listener->tls);
    sniffer_free(s, 0);
}

/* A final stop closes sniffers; at a reload they go on, since the next
 * generation would reset a client that did nothing wrong. */
static void sniffer_drain(worker_conn *link)
{
    sniffer *s = (sniffer *)link;
    if (s->w->stopping_for_good)
        sniffer_free(s, 1);
}

static void sniffer_destroy(worker_conn *link)
{
    sniffer_free((sniffer *)link, 1);
}

static void mixed_accept(worker *w, void *state, const listen_config *l, int fd,
                         const struct sockaddr *peer, socklen_t peer_len)
{
    sniffer *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return;
    }
    s->w = w;
    s->mw = state;
    s->listener = l;
    s->fd = fd;
    s->peer_len = peer_len < sizeof s->peer ? peer_len : sizeof s->peer;
    memcpy(&s->peer, peer, s->peer_len);
    s->link.drain = sniffer_drain;
    s->link.destroy = sniffer_destroy;
    worker_conn_add(w, &s->link);
    struct timeval deadline = ms_to_timeval(w->cfg->timeouts.header_ms);
    s->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, sniff_cb, s);
    if (!s->ev || event_add(s->ev, &deadline) < 0)
        sniffer_free(s, 1);
}

static int mixed_worker_init(worker *w, void **state, char *err, size_t errlen)
{
    mixed_worker *mw = calloc(1, sizeof *mw);
    if (!mw || http_proxy_kind.worker_init(w, &mw->http_state, err, errlen) < 0) {
        free(mw);
        if (!mw)
            snprintf(err, errlen, "cannot set up worker %u: out of memory", w->id);
        return -1;
    }
    *state = mw;
    return 0;
}

static void mixed_worker_drain(void *state)
{
    mixed_worker *mw = state;
    http_proxy_kind.worker_drain(mw->http_state);
}

static void mixed_worker_free(void *state)
{
    mixed_worker *mw = state;
    if (!mw)
        return;
    http_proxy_kind.worker_free(mw->http_state);
    free(mw);
}

static const char *const mixed_keys[] = {"mode", "country", "tls", "udp_address", NULL};

const listener_kind mixed_kind = {
    "mixed", mixed_keys, mixed_worker_init, mixed_worker_drain, mixed_worker_free, mixed_accept,
    http_refuse_busy,
};
