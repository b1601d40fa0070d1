/* pending.c - see pending.h. */
#include "net/pending.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sockaddr.h"

static void pending_free(pending *p, int close_fd)
{
    if (p->ev)
        event_free(p->ev);
    if (close_fd)
        close(p->fd);
    worker_conn_remove(p->w, &p->link);
    free(p);
}

void pending_close(pending *p, const char *why)
{
    if (log_enabled(LOG_DEBUG)) {
        char ip[INET6_ADDRSTRLEN];
        sockaddr_ip_text((const struct sockaddr *)&p->peer, ip);
        log_debug("connection from %s closed while waiting for its %s: %s", ip, p->what, why);
    }
    pending_free(p, 1);
}

int pending_release(pending *p)
{
    int fd = p->fd;
    pending_free(p, 0);
    return fd;
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    pending *p = arg;
    if (what & EV_TIMEOUT)
        pending_close(p, "not in time (timeouts.header)");
    else
        p->cb(p, p->state);
}

static void pending_drain(worker_conn *link)
{
    pending *p = (pending *)link;
    if (p->w->stopping_for_good)
        pending_free(p, 1);
}

static void pending_destroy(worker_conn *link)
{
    pending_free((pending *)link, 1);
}

pending *pending_start(worker *w, int fd, const struct sockaddr *peer, socklen_t peer_len,
                       const char *what, pending_cb cb, size_t state_size)
{
    pending *p = calloc(1, sizeof *p + state_size);
    if (!p) {
        close(fd);
        return NULL;
    }
    p->w = w;
    p->fd = fd;
    p->peer_len = peer_len < sizeof p->peer ? peer_len : sizeof p->peer;
    memcpy(&p->peer, peer, p->peer_len);
    p->what = what;
    p->cb = cb;
    p->state = p + 1;
    p->link.drain = pending_drain;
    p->link.destroy = pending_destroy;
    worker_conn_add(w, &p->link);
    struct timeval deadline = ms_to_timeval(w->cfg->timeouts.header_ms);
    p->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_event, p);
    if (!p->ev || event_add(p->ev, &deadline) < 0) {
        pending_free(p, 1);
        return NULL;
    }
    return p;
}
