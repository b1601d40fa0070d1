/* session.c - see session.h. */
#include "egress/session.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>

#include "core/log.h"
#include "net/closer.h"
#include "net/sockio.h"
#include "net/tunnel.h"

/* A session while it connects; it ends as a tunnel or a closing client. */
typedef struct session {
    worker_conn link;
    worker *w;
    struct bufferevent *client;
    connect_req *connecting;
    const egress_replies *replies;
} session;

static void session_free(session *s)
{
    worker_conn_remove(s->w, &s->link);
    free(s);
}

static void fail_client(worker *w, struct bufferevent *client, const egress_replies *replies,
                        proxy_error error, const char *detail)
{
    log_debug("egress session failed: %s: %s", proxy_error_name(error), detail ? detail : "");
    replies->failed(bufferevent_get_output(client), error, detail);
    closer_start(w, client, w->cfg->timeouts.io_ms, CLOSER_LINGER_MS);
}

static void connected_cb(const connect_result *res, proxy_error error, const char *detail,
                         void *arg)
{
    session *s = arg;
    worker *w = s->w;
    struct bufferevent *client = s->client;
    const egress_replies *replies = s->replies;
    /* The tunnel or the closer joins the worker before the session leaves
     * it, so a draining worker never sees zero connections in between. */
    s->connecting = NULL;
    if (error != PE_NONE) {
        fail_client(w, client, replies, error, detail);
    } else {
        replies->established(bufferevent_get_output(client), res);
        tunnel_start(w, client, res->bev);
    }
    session_free(s);
}

/* A stop lets a connecting session finish: it ends as a tunnel (which
 * drains by itself) or an error, within timeouts.connect. */
static void session_drain(worker_conn *link)
{
    (void)link;
}

/* While connecting, the client connection is the session's: its output may
 * still be delivering earlier responses, and a write error ends it. */
static void client_write_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    sockio_flush(bev);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    session *s = arg;
    if (what & BEV_EVENT_CONNECTED)
        return; /* a TLS client's handshake event, queued before the hand-over */
    log_debug("egress session: the client left while connecting");
    connector_cancel(s->connecting);
    bufferevent_free(s->client);
    session_free(s);
}

static void session_destroy(worker_conn *link)
{
    session *s = (session *)link;
    if (s->connecting)
        connector_cancel(s->connecting);
    bufferevent_free(s->client);
    session_free(s);
}

void egress_tunnel(worker *w, struct bufferevent *client, const egress_dest *dest,
                   const egress_replies *replies)
{
    session *s = calloc(1, sizeof *s);
    if (!s) {
        fail_client(w, client, replies, PE_PROXY_INTERNAL_ERROR, "out of memory");
        return;
    }
    s->w = w;
    s->client = client;
    s->replies = replies;
    s->link.drain = session_drain;
    s->link.destroy = session_destroy;
    worker_conn_add(w, &s->link);
    bufferevent_setcb(client, NULL, client_write_cb, client_event_cb, s);
    s->connecting = connector_start(w, NULL, dest->rt, dest->host, dest->port, 1, dest->client_ip,
                                    connected_cb, s);
    if (!s->connecting) {
        fail_client(w, client, replies, PE_PROXY_INTERNAL_ERROR, "out of memory");
        session_free(s);
    }
}
