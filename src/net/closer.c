/* closer.c - see closer.h. */
#include "net/closer.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "net/sockio.h"

typedef struct closer {
    worker_conn link;
    worker *w;
    struct bufferevent *bev;
    struct event *timer;      /* the end of lingering */
    unsigned linger_ms;
    int lingering;            /* flushed and half-closed: discarding input */
} closer;

static void closer_free(closer *c)
{
    bufferevent_free(c->bev);
    if (c->timer)
        event_free(c->timer);
    worker_conn_remove(c->w, &c->link);
    free(c);
}

/* Everything is written: half-close and discard what still comes. */
static void start_lingering(closer *c)
{
    struct timeval tv = ms_to_timeval(c->linger_ms);
    c->lingering = 1;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    evbuffer_drain(bufferevent_get_input(c->bev), (size_t)-1);
    bufferevent_enable(c->bev, EV_READ);
    evtimer_add(c->timer, &tv);
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
    (void)what;
    closer_free(arg);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    closer_free(arg);
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
