/* mixed.c - see mixed.h.
 *
 * Ownership: until the first byte arrives the socket is a pending
 * connection's (net/pending.h); then it goes to the chosen kind's accept.
 */
#include "front/mixed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/config.h"
#include "front/http_proxy.h"
#include "front/socks.h"
#include "net/pending.h"
#include "net/worker.h"

/* The first byte of a TLS ClientHello: a handshake record. */
#define TLS_HANDSHAKE_RECORD 0x16

/* The HTTP kind's per-worker state, which HTTP clients of this listener use. */
typedef struct mixed_worker {
    void *http_state;
} mixed_worker;

/* What a connection waiting for its first byte keeps. */
typedef struct first_byte_wait {
    const listen_config *listener;
    mixed_worker *mw;
} first_byte_wait;

/* Peeks at the first byte and hands the socket to the kind it names. */
static void on_first_byte(pending *p, void *state)
{
    const first_byte_wait *fw = state;
    const listen_config *l = fw->listener;
    unsigned char first;
    ssize_t n = recv(p->fd, &first, 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        pending_close(p, n == 0 ? "closed" : "read error");
        return;
    }
    const struct sockaddr *peer = (const struct sockaddr *)&p->peer;
    /* The chosen connection joins the worker before the pending one leaves it. */
    if (first == 4 || first == 5)
        socks5_kind.accept(p->w, NULL, l, p->fd, peer, p->peer_len);
    else
        http_proxy_accept(p->w, fw->mw->http_state, l, p->fd, peer, p->peer_len,
                          first == TLS_HANDSHAKE_RECORD && l->tls);
    pending_release(p);
}

static void mixed_accept(worker *w, void *state, const listen_config *l, int fd,
                         const struct sockaddr *peer, socklen_t peer_len)
{
    pending *p = pending_start(w, fd, peer, peer_len, "first byte", on_first_byte,
                               sizeof(first_byte_wait));
    if (p)
        *(first_byte_wait *)p->state = (first_byte_wait){l, state};
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
