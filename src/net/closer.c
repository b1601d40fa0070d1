/* closer.c - see closer.h. */
#include "net/closer.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "core/util.h"
#include "net/sockio.h"

/* Under TLS, how often to look whether the encrypted bytes left the socket. */
#define TLS_DRAIN_CHECK_MS 100

typedef struct closer {
    worker_conn link;
    worker *w;
    struct bufferevent *bev;
    struct event *timer;      /* the end of lingering (TLS: also the drain check) */
    unsigned write_ms, linger_ms;
    int lingering;            /* flushed and half-closed: discarding input */
    /* TLS: the filter's output drains into the socket's bufferevent, which
     * can still hold megabytes; lingering waits until it is written. */
    size_t tls_pending;       /* bytes in the socket's output at the last check */
    struct timeval tls_progress_at;
} closer;

static void closer_free(closer *c)
{
    bufferevent_free(c->bev);
    if (c->timer)
        event_free(c->timer);
    worker_conn_remove(c->w, &c->link);
    free(c);
}

/* Encrypted bytes not yet written to the socket (0 for a plain one). */
static size_t tls_unsent(const closer *c)
{
    struct bufferevent *raw = bufferevent_get_underlying(c->bev);
    return raw ? evbuffer_get_length(bufferevent_get_output(raw)) : 0;
}

static void arm(closer *c, unsigned ms)
{
    struct timeval tv = ms_to_timeval(ms);
    evtimer_add(c->timer, &tv);
}

/* Everything is written: half-close and discard what still comes. Under
 * TLS the half-close is a close_notify alert (a TCP one would cut the
 * record stream), queued behind the bytes still on their way. */
static void start_lingering(closer *c)
{
    c->lingering = 1;
    if (bufferevent_get_underlying(c->bev)) {
        SSL_shutdown(bufferevent_openssl_get_ssl(c->bev));
        c->tls_pending = tls_unsent(c);
        event_base_gettimeofday_cached(c->w->base, &c->tls_progress_at);
    } else {
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    }
    evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
    bufferevent_enable(c->bev, EV_READ);
    arm(c, tls_unsent(c) ? TLS_DRAIN_CHECK_MS : c->linger_ms);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    closer *c = arg;
    sockio_flush(bev);
    if (!c->lingering && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        start_lingering(c);
}

/* EOF, an error or the write timeout: nothing more to wait for. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & BEV_EVENT_CONNECTED)
        return; /* a TLS handshake finishing late: nothing to do with it */
    closer_free(arg);
}

/* Lingering is over, unless TLS bytes are still leaving: then the wait
 * goes on while they move, at most write_ms without progress. */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    closer *c = arg;
    size_t unsent = tls_unsent(c);
    if (unsent) {
        struct timeval now;
        event_base_gettimeofday_cached(c->w->base, &now);
        if (unsent != c->tls_pending) {
            c->tls_pending = unsent;
            c->tls_progress_at = now;
        }
        if (elapsed_ms(&c->tls_progress_at, &now) < c->write_ms) {
            arm(c, TLS_DRAIN_CHECK_MS);
            return;
        }
    } else if (c->tls_pending) {
        c->tls_pending = 0;
        arm(c, c->linger_ms); /* all out: the ordinary linger starts now */
        return;
    }
    closer_free(c);
}

/* A stop does not cut a closing connection short: it ends by itself within
 * its timeouts, or when the worker's grace period is over. */
static void closer_drain(worker_conn *link)
{
    (void)link;
}

static void closer_destroy(worker_conn *link)
{
    closer_free((closer *)link);
}

void closer_start(worker *w, struct bufferevent *bev, unsigned write_ms, unsigned linger_ms)
{
    closer *c = calloc(1, sizeof *c);
    if (!c || !(c->timer = evtimer_new(w->base, timer_cb, c))) {
        free(c);
        bufferevent_free(bev);
        return;
    }
    c->w = w;
    c->bev = bev;
    c->write_ms = write_ms;
    c->linger_ms = linger_ms;
    c->link.drain = closer_drain;
    c->link.destroy = closer_destroy;
    worker_conn_add(w, &c->link);

    struct timeval wtv = ms_to_timeval(write_ms);
    bufferevent_setcb(bev, read_cb, write_cb, event_cb, c);
    bufferevent_set_timeouts(bev, NULL, &wtv);
    bufferevent_disable(bev, EV_READ);
    sockio_flush(bev);
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        start_lingering(c);
}
