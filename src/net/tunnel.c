/* tunnel.c - see tunnel.h. */
#include "net/tunnel.h"

#include "core/util.h"
#include "net/sockio.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <sys/socket.h>

typedef struct tunnel tunnel;

typedef struct tunnel_side {
    tunnel *t;
    struct bufferevent *bev;
    sock_reader rd;
    int eof;        /* this side sent FIN: nothing more will be read from it */
    int shut;       /* FIN passed on to this side (SHUT_WR done) */
} tunnel_side;

struct tunnel {
    worker_conn link;
    worker *w;
    tunnel_side side[2];          /* 0: client, 1: origin */
    struct timeval last_active;   /* last byte read on either side */
};

static tunnel_side *other(tunnel_side *s)
{
    return s == &s->t->side[0] ? &s->t->side[1] : &s->t->side[0];
}

static void tunnel_free(tunnel *t)
{
    worker_conn_remove(t->w, &t->link);
    for (int i = 0; i < 2; i++) {
        sock_reader_detach(&t->side[i].rd);
        bufferevent_free(t->side[i].bev);
    }
    free(t);
}

/* Passes a FIN on to `to` once everything before it has been written. */
static void maybe_shut(tunnel_side *to)
{
    if (!to->shut && other(to)->eof && evbuffer_get_length(bufferevent_get_output(to->bev)) == 0) {
        /* Under TLS (an HTTPS upstream) a TCP half-close would cut the
         * record stream: that side just gets nothing more. */
        if (!bufferevent_get_underlying(to->bev))
            shutdown(bufferevent_getfd(to->bev), SHUT_WR);
        to->shut = 1;
    }
}

/* Moves what `from` has read to the other side, pausing `from` while the
 * other side's output is full. Returns 1 when the tunnel is finished. */
static int relay(tunnel_side *from)
{
    tunnel_side *to = other(from);
    struct evbuffer *out = bufferevent_get_output(to->bev);
    evbuffer_add_buffer(out, bufferevent_get_input(from->bev));
    sockio_flush(to->bev);
    if (!from->eof) {
        if (evbuffer_get_length(out) >= from->t->w->cfg->limits.buffer_bytes)
            sock_reader_disable(&from->rd);
        else
            sock_reader_enable(&from->rd);
    }
    maybe_shut(to);
    return from->t->side[0].shut && from->t->side[1].shut;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    tunnel_side *s = arg;
    (void)bev;
    event_base_gettimeofday_cached(s->t->w->base, &s->t->last_active);
    if (relay(s))
        tunnel_free(s->t);
}

/* This side's output drained: resume reading into it. */
static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    tunnel_side *s = arg;
    event_base_gettimeofday_cached(s->t->w->base, &s->t->last_active);
    if (relay(other(s)))
        tunnel_free(s->t);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    tunnel_side *s = arg;
    tunnel *t = s->t;

    if (what & BEV_EVENT_EOF) {
        s->eof = 1;
        sock_reader_disable(&s->rd);
        if (relay(s))
            tunnel_free(t);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        /* Idle means no byte either way: traffic on the other side (a long
         * one-way download, say) keeps this side's silence legitimate. */
        struct timeval now;
        event_base_gettimeofday_cached(t->w->base, &now);
        if (elapsed_ms(&t->last_active, &now) < t->w->cfg->timeouts.tunnel_idle_ms) {
            if (what & BEV_EVENT_READING)
                sock_reader_enable(&s->rd);
            else
                sockio_flush(bev); /* bytes still wait: watch for writability again */
            return;
        }
    }
    tunnel_free(t);
}

static void tunnel_destroy(worker_conn *c)
{
    tunnel_free((tunnel *)c);
}

/* In-flight tunnels are left to finish within the shutdown grace period. */
static void tunnel_drain(worker_conn *c)
{
    (void)c;
}

int tunnel_start(worker *w, struct bufferevent *client, struct bufferevent *origin)
{
    tunnel *t = calloc(1, sizeof *t);
    if (!t) {
        bufferevent_free(client);
        bufferevent_free(origin);
        return -1;
    }
    t->w = w;
    t->link.drain = tunnel_drain;
    t->link.destroy = tunnel_destroy;
    worker_conn_add(w, &t->link);
    event_base_gettimeofday_cached(w->base, &t->last_active);

    size_t limit = w->cfg->limits.buffer_bytes;
    t->side[0].bev = client;
    t->side[1].bev = origin;
    for (int i = 0; i < 2; i++) {
        tunnel_side *s = &t->side[i];
        s->t = t;
        bufferevent_setcb(s->bev, on_read, on_write, on_event, s);
        sockio_set_flow(s->bev, limit);
        if (sock_reader_attach(&s->rd, s->bev, limit) < 0) {
            tunnel_free(t);
            return -1;
        }
        /* Writing counts too: with both peers not reading, both sides
         * pause on back-pressure and only a write timeout can end it. */
        sockio_set_timeouts(&s->rd, w->cfg->timeouts.tunnel_idle_ms, w->cfg->timeouts.tunnel_idle_ms);
        sock_reader_enable(&s->rd);
    }
    /* Bytes that arrived with the request head (a TLS ClientHello sent
     * without waiting for our 200, say) or after the 101 head. */
    relay(&t->side[0]);
    relay(&t->side[1]);
    return 0;
}
