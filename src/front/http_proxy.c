/* http_proxy.c - see http_proxy.h.
 *
 * Ownership: a client owns its two bufferevents (client side `cbev`, origin
 * side `ubev`), its timer, its pending connect request and its buffered
 * request head. It ends in one of three ways: freed, or handing its
 * connection to a closer (an error answer), a tunnel (an upgrade) or an
 * egress session (CONNECT). Any function that can end the client returns
 * int: -1 means "the client is gone, touch nothing", 0 means it is alive.
 *
 * The file has two halves after the shared parts: the request path (a head
 * from the client, routing, the connection to the origin, the request
 * body) and the response path (the response head, its body, and what
 * happens to both connections after it).
 */
#include "front/http_proxy.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/sockaddr.h"
#include "core/util.h"
#include "egress/connector.h"
#include "egress/credentials.h"
#include "egress/origin_pool.h"
#include "egress/route.h"
#include "egress/session.h"
#include "http/body.h"
#include "http/forward.h"
#include "http/head_reader.h"
#include "http/http_error.h"
#include "http/http_parser.h"
#include "http/policy.h"
#include "http/target.h"
#include "net/closer.h"
#include "net/sockio.h"
#include "net/tunnel.h"
#include "net/worker.h"

/* The states of one client connection. Every change goes through
 * set_state, which logs it at debug level. */
typedef enum client_state {
    CS_READ_HEAD,      /* waiting for a request head (idle between requests) */
    CS_CONNECTING,     /* request parsed, origin connection being set up */
    CS_AWAIT_RESPONSE, /* request forwarded (its body may still flow); no final response head yet */
    CS_RESPONSE_BODY,  /* relaying the response body */
    CS_CLOSING,        /* final: the connection went to a closer */
    CS_TUNNEL,         /* final: the connection went to a tunnel or an egress session */
} client_state;

static const char *const client_state_names[] = {
    [CS_READ_HEAD] = "read-head",
    [CS_CONNECTING] = "connecting",
    [CS_AWAIT_RESPONSE] = "await-response",
    [CS_RESPONSE_BODY] = "response-body",
    [CS_CLOSING] = "closing",
    [CS_TUNNEL] = "tunnel",
};

/* What the kind keeps per worker: heads are parsed and passed on within
 * one callback, so one set of scratch space serves every connection. */
typedef struct http_worker {
    http_limits limits;           /* cfg->limits as the parser wants them */
    struct evbuffer *scratch;     /* a head being built, before it joins an output */
    http_field *scratch_fields;   /* limits.max_headers entries */
    origin_pool *pool;            /* idle direct origin connections (upstream_reuse "shared") */
} http_worker;

typedef struct client {
    worker_conn link;
    worker *w;
    http_worker *hw;
    const listen_config *listener;
    const policy *policy;           /* the current request's mode (route's, else listener's) */
    char peer_ip[INET6_ADDRSTRLEN]; /* for $client_ip */
    char peer_port[6];
    struct bufferevent *cbev;       /* the client */
    struct bufferevent *ubev;       /* the origin; may outlive one exchange */
    sock_reader cread, uread;       /* their read sides */
    char up_host[TARGET_MAX_HOST + 1];
    unsigned up_port;
    char up_authority[TARGET_MAX_HOST + 8]; /* host[:port] as the client wrote it */
    route up_route;                 /* how ubev was obtained: direct or which country */
    connect_result up;              /* what ubev goes through (up.bev unused) */
    int up_reused;                  /* ubev already served an exchange */
    connect_req *connecting;
    struct event *timer;            /* head deadline, idle, io */
    client_state state;

    /* Current request. */
    size_t head_scan;               /* http_head_find resume point */
    int head_started;               /* first byte of the head arrived */
    unsigned served;                /* exchanges completed on this connection */
    int is_head;                    /* method HEAD */
    int upgrading;                  /* asked to switch protocols */
    int client_minor;               /* HTTP/1.<minor> */
    int client_keep_alive;
    int client_eof;                 /* client sent FIN: no more requests after those buffered */
    struct evbuffer *request_head;  /* head sent to the origin, kept for one retry */
    body_pump req_body;

    /* Current response. */
    size_t resp_scan;
    int resp_started;               /* bytes of a final response reached the client */
    int origin_keep_alive;
    int client_keeps;               /* client connection persists after this response */
    int origin_eof;
    body_pump resp_body;

    /* The io timeout: callbacks stamp progress and the timer checks it
     * lazily, so a busy connection re-arms no timer per read or write. */
    struct timeval progress_at;
    size_t out_seen;                /* client output length at the last check */
} client;

/* ---- shared parts ------------------------------------------------------ */

static void set_state(client *c, client_state next)
{
    log_debug("http client %s: %s -> %s", c->peer_ip, client_state_names[c->state],
              client_state_names[next]);
    c->state = next;
}

/* What policy variables expand to for this client; host may be NULL. */
static policy_vars vars_of(const client *c, const char *host)
{
    policy_vars v = {c->peer_ip, c->peer_port, c->w->cfg->proxy_name, host};
    return v;
}

static void touch(client *c)
{
    event_base_gettimeofday_cached(c->w->base, &c->progress_at);
}

/* Milliseconds of timeouts.io left since the last progress (0: stalled).
 * A client draining its output counts as progress even when no write
 * callback fired (they fire only below the low watermark). */
static unsigned io_left(client *c)
{
    size_t out = evbuffer_get_length(bufferevent_get_output(c->cbev));
    if (out != c->out_seen) {
        c->out_seen = out;
        touch(c);
    }
    struct timeval now;
    event_base_gettimeofday_cached(c->w->base, &now);
    unsigned long ms = elapsed_ms(&c->progress_at, &now);
    unsigned io = c->w->cfg->timeouts.io_ms;
    return ms >= io ? 0 : (unsigned)(io - ms);
}

/* How much a connection's input may hold: limits.buffer_bytes, but never
 * less than it takes to see that a head is too large (max_header_bytes + 1),
 * or a small buffer would wait for bytes it refuses to read. */
static size_t read_limit(const config *cfg)
{
    size_t head = cfg->limits.max_header_bytes + 1;
    return cfg->limits.buffer_bytes > head ? cfg->limits.buffer_bytes : head;
}

static void set_timer(client *c, unsigned ms)
{
    struct timeval tv = ms_to_timeval(ms);
    evtimer_add(c->timer, &tv);
}

/* Bytes of earlier responses not yet written to the client. */
static int output_pending(const client *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->cbev)) > 0;
}

static void free_origin(client *c)
{
    if (c->ubev) {
        sock_reader_detach(&c->uread);
        bufferevent_free(c->ubev);
        c->ubev = NULL;
    }
}

/* Frees the client and everything it still owns. Always returns -1. */
static int client_free(client *c)
{
    if (c->connecting)
        connector_cancel(c->connecting);
    free_origin(c);
    if (c->cbev) {
        sock_reader_detach(&c->cread);
        bufferevent_free(c->cbev);
    }
    if (c->timer)
        event_free(c->timer);
    if (c->request_head)
        evbuffer_free(c->request_head);
    worker_conn_remove(c->w, &c->link);
    free(c);
    return -1;
}

/* Takes the client connection away from the client (its reader given back
 * to libevent) so that another connection object can own it. */
static struct bufferevent *hand_over_client(client *c, client_state final)
{
    struct bufferevent *cbev = c->cbev;
    set_state(c, final);
    sock_reader_detach(&c->cread);
    /* No callback of the client's may run once it is freed: not even one
     * libevent queued before (a TLS bufferevent defers them). */
    bufferevent_setcb(cbev, NULL, NULL, NULL, NULL);
    c->cbev = NULL;
    return cbev;
}

/* Stops taking requests: what is queued for the client is flushed, then a
 * closer lingers (net/closer.h) and closes. Always returns -1. */
static int close_after_flush(client *c)
{
    struct bufferevent *cbev = hand_over_client(c, CS_CLOSING);
    /* The closer joins the worker first so a draining worker never sees zero. */
    closer_start(c->w, cbev, c->w->cfg->timeouts.io_ms, CLOSER_LINGER_MS);
    return client_free(c);
}

/* Answers the current request with an error and closes. If part of a
 * response already reached the client, the only honest signal left is to
 * cut the connection, which the client sees as a truncated message. */
static int fail_request(client *c, int status, const char *detail)
{
    log_debug("client request failed: %d %s", status, detail ? detail : "");
    if (c->resp_started)
        return client_free(c);
    http_error_write(bufferevent_get_output(c->cbev), status, detail);
    return close_after_flush(c);
}

/* Hands both connections to a tunnel and frees the client. */
static int become_tunnel(client *c)
{
    struct bufferevent *ubev = c->ubev;
    sock_reader_detach(&c->uread);
    c->ubev = NULL;
    struct bufferevent *cbev = hand_over_client(c, CS_TUNNEL);
    /* The tunnel joins the worker first so a draining worker never sees zero. */
    tunnel_start(c->w, cbev, ubev);
    return client_free(c);
}

/* Moves body bytes from `from`'s input to `to`'s output and sends them. A
 * move stops once `limit` bytes wait in the output; when the flush then
 * empties it at once, no write callback will come to resume the move, so
 * it goes on here. Returns 0, or -1 when the chunked framing is malformed. */
static int relay_body(body_pump *p, struct bufferevent *from, struct bufferevent *to, size_t limit)
{
    struct evbuffer *in = bufferevent_get_input(from);
    struct evbuffer *out = bufferevent_get_output(to);

    for (;;) {
        if (body_pump_move(p, in, out, limit) < 0)
            return -1;
        int stopped_full = evbuffer_get_length(out) >= limit;
        sockio_flush(to);
        if (!stopped_full || p->done || evbuffer_get_length(in) == 0 ||
            evbuffer_get_length(out) >= limit)
            return 0;
    }
}

/* ======================================================================
 * The request path: a head from the client, routing, the connection to
 * the origin, the request body.
 * ====================================================================== */

static int handle_head(client *c);
static void origin_read_cb(struct bufferevent *bev, void *arg);
static void origin_write_cb(struct bufferevent *bev, void *arg);
static void origin_event_cb(struct bufferevent *bev, short what, void *arg);

/* Moves request body bytes toward the origin, pausing the client when the
 * origin side is full. */
static int pump_request_body(client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->ubev);
    size_t limit = c->w->cfg->limits.buffer_bytes;

    if (relay_body(&c->req_body, c->cbev, c->ubev, limit) < 0)
        return fail_request(c, 400, "malformed chunked request body");
    /* Reading pauses only while the origin side is full. Once the body is
     * in, what the client sends is its next pipelined request: it waits in
     * the input (up to its read limit) until this response is
     * done, and reading never toggles (each toggle is an epoll_ctl). */
    if (!c->req_body.done && evbuffer_get_length(out) >= limit)
        sock_reader_disable(&c->cread);
    else if (!c->client_eof)
        sock_reader_enable(&c->cread);
    return 0;
}

/* Copies the request head out (it is kept: a reused connection that turns
 * out to have been closed by the origin gets it again on a new one). Toward
 * an HTTP proxy exit the target goes in absolute-form, followed by that
 * proxy's own credentials. */
static void write_request_head(client *c, struct evbuffer *out)
{
    size_t len = evbuffer_get_length(c->request_head);
    const char *head = (const char *)evbuffer_pullup(c->request_head, -1);
    const hop *proxy = c->up.http_proxy;
    if (!proxy) {
        evbuffer_add(out, head, len);
        return;
    }
    const char *space = memchr(head, ' ', len);
    size_t method_len = (size_t)(space - head) + 1;
    evbuffer_add(out, head, method_len);
    evbuffer_add_printf(out, "http://%s", c->up_authority);
    /* "OPTIONS *" (forward.c) is an empty path in absolute-form (RFC 9112
     * 3.2.4): the exit, the last proxy, is the one to write the "*". */
    size_t star = len - method_len > 2 && memcmp(head + method_len, "* ", 2) == 0;
    /* Everything up to the final empty line, then the credentials. */
    evbuffer_add(out, head + method_len + star, len - method_len - star - 2);
    if (proxy->proxy_auth)
        evbuffer_add_printf(out, "Proxy-Authorization: %s\r\n", proxy->proxy_auth);
    evbuffer_add(out, "\r\n", 2);
}

/* The origin connection is ready: send the head and start both bodies. */
static int send_request(client *c)
{
    const struct config *cfg = c->w->cfg;

    set_state(c, CS_AWAIT_RESPONSE);
    c->resp_scan = 0;
    c->resp_started = 0;
    c->origin_eof = 0;
    touch(c);
    c->out_seen = evbuffer_get_length(bufferevent_get_output(c->cbev));
    set_timer(c, cfg->timeouts.io_ms);

    bufferevent_setcb(c->ubev, origin_read_cb, origin_write_cb, origin_event_cb, c);
    write_request_head(c, bufferevent_get_output(c->ubev));
    sock_reader_enable(&c->uread);
    return pump_request_body(c);
}

static void connected_cb(const connect_result *res, proxy_error error, const char *detail,
                         void *arg)
{
    client *c = arg;
    c->connecting = NULL;
    if (error != PE_NONE) {
        fail_request(c, proxy_error_http_status(error), detail);
        return;
    }
    c->ubev = res->bev;
    c->up = *res;
    c->up.bev = NULL;
    c->up_reused = res->reused;
    sockio_set_flow(c->ubev, c->w->cfg->limits.buffer_bytes);
    if (sock_reader_attach(&c->uread, c->ubev, read_limit(c->w->cfg)) < 0) {
        fail_request(c, 500, "out of memory");
        return;
    }
    send_request(c);
}

static int start_connect(client *c)
{
    set_state(c, CS_CONNECTING);
    /* The connector has its own deadline (timeouts.connect). */
    event_del(c->timer);
    /* Nothing more is read from the client until the origin is there: the
     * body would otherwise pile up in memory. */
    sock_reader_disable(&c->cread);
    origin_pool *pool = c->w->cfg->reuse == REUSE_SHARED ? c->hw->pool : NULL;
    c->connecting = connector_start(c->w, pool, &c->up_route, c->up_host, c->up_port, 0, c->peer_ip,
                                    connected_cb, c);
    if (!c->connecting)
        return fail_request(c, 500, "out of memory");
    return 0;
}

/* Counts fields of a known kind. */
static size_t count_fields(const http_request *req, http_known kind)
{
    size_t n = 0;
    for (size_t i = 0; i < req->nfields; i++)
        n += req->fields[i].known == kind;
    return n;
}

static int method_is(const http_request *req, const char *m)
{
    size_t n = strlen(m);
    return req->method_len == n && memcmp(req->method, m, n) == 0;
}

static int same_route(const route *a, const route *b)
{
    return a->action == b->action && strcmp(a->country, b->country) == 0 &&
           strcmp(a->session, b->session) == 0;
}

/* The routing input of a request: its destination, the credentials of its
 * Proxy-Authorization and the X-Anonproxy-Country hint. The last of each
 * field counts, as a later header overrides an earlier one. */
static void route_input_of(const client *c, const target *t, const http_request *req,
                           credentials *cred, route_input *in)
{
    *in = (route_input){t->host, cred, NULL, 0, c->listener};
    cred->present = 0;
    for (size_t i = 0; i < req->nfields; i++) {
        const http_field *f = &req->fields[i];
        if (f->known == HF_PROXY_AUTHORIZATION) {
            credentials parsed;
            if (credentials_from_basic(f->value, f->value_len, &parsed) == 0)
                *cred = parsed;
        } else if (f->known == HF_X_ANONPROXY_COUNTRY &&
                   country_code_parse(f->value, f->value_len, NULL)) {
            in->header_country = f->value;
            in->header_country_len = f->value_len;
        }
    }
}

/* Decides where the request goes (route.h) into *rt and takes its mode.
 * Returns 1 to go on. A blocked request is answered here, and what
 * fail_request returned comes back (-1: the client is gone); the request
 * must go no further. */
static int decide_route(client *c, const target *t, const http_request *req, route *rt)
{
    credentials cred;
    route_input in;
    route_input_of(c, t, req, &cred, &in);
    route_decide(c->w->cfg, &in, rt);
    c->policy = rt->policy ? rt->policy : c->listener->policy;
    if (rt->action == ROUTE_BLOCK) {
        char detail[300];
        snprintf(detail, sizeof detail, "blocked by route %s", rt->why);
        return fail_request(c, 403, detail);
    }
    return 1;
}

/* Sets the origin to reach along rt; drops a kept connection that leads
 * elsewhere. */
static void set_origin(client *c, const target *t, const route *rt)
{
    if (c->ubev && (c->up_port != t->port || strcmp(c->up_host, t->host) != 0 ||
                    !same_route(rt, &c->up_route)))
        free_origin(c);
    c->up_route = *rt;
    memcpy(c->up_host, t->host, sizeof c->up_host);
    c->up_port = t->port;
    snprintf(c->up_authority, sizeof c->up_authority, "%.*s", (int)t->authority_len, t->authority);
}

static void connect_established(struct evbuffer *out, const connect_result *res)
{
    (void)res;
    evbuffer_add(out, "HTTP/1.1 200 Connection established\r\n\r\n", 39);
}

static void connect_failed(struct evbuffer *out, proxy_error error, const char *detail)
{
    http_error_write(out, proxy_error_http_status(error), detail);
}

/* CONNECT's answers, for the egress session. */
static const egress_replies connect_replies = {connect_established, connect_failed};

/* CONNECT: checked here, then the egress session connects and tunnels. */
static int handle_connect(client *c, const http_request *req, size_t head_len)
{
    const config *cfg = c->w->cfg;
    target t;
    route rt;
    int rc;

    if (target_parse_authority(req->target, req->target_len, &t) < 0)
        return fail_request(c, 400, "CONNECT needs a host:port target");
    if (!config_connect_port_allowed(cfg, t.port))
        return fail_request(c, 403, "CONNECT to this port is not allowed");
    if (count_fields(req, HF_CONTENT_LENGTH) || count_fields(req, HF_TRANSFER_ENCODING))
        return fail_request(c, 400, "a CONNECT request has no body");
    /* A tunnel always gets a connection of its own. */
    free_origin(c);
    if ((rc = decide_route(c, &t, req, &rt)) != 1)
        return rc;
    evbuffer_drain(bufferevent_get_input(c->cbev), head_len);
    event_del(c->timer);
    egress_dest dest = {t.host, t.port, &rt, c->peer_ip};
    /* The session joins the worker first so a draining worker never sees zero. */
    egress_tunnel(c->w, hand_over_client(c, CS_TUNNEL), &dest, &connect_replies);
    return client_free(c);
}

static int handle_request(client *c, const http_request *req, size_t head_len)
{
    target t;
    route rt;
    http_framing framing;
    int status, rc;

    if (method_is(req, "CONNECT"))
        return handle_connect(c, req, head_len);
    if (method_is(req, "TRACE"))
        return fail_request(c, 405, "TRACE is refused: it would echo identifying headers");
    if (count_fields(req, HF_HOST) > 1)
        return fail_request(c, 400, "more than one Host field");
    if (target_parse_absolute(req->target, req->target_len, &t) < 0)
        return fail_request(c, 400, "malformed request-target");
    switch (t.form) {
    case TARGET_HTTP:
        break;
    case TARGET_HTTPS:
        return fail_request(c, 400, "https:// URLs go through a CONNECT tunnel (use the proxy for HTTPS with CONNECT)");
    case TARGET_ORIGIN:
        return fail_request(c, 400, "this is a proxy: requests must use an absolute URL (http://host/path)");
    case TARGET_OTHER:
        return fail_request(c, 400, "unsupported request-target (only http:// URLs and CONNECT)");
    }
    if ((status = http_request_framing(req, &framing)) != 0)
        return fail_request(c, status, status == 501 ? "unknown transfer coding"
                                                     : "ambiguous request body framing");

    c->is_head = method_is(req, "HEAD");
    c->upgrading = forward_wants_upgrade(req);
    c->client_minor = req->version_minor;
    c->client_keep_alive = forward_client_keep_alive(req);
    if ((rc = decide_route(c, &t, req, &rt)) != 1)
        return rc;
    set_origin(c, &t, &rt);
    evbuffer_drain(c->request_head, (size_t)-1);
    policy_vars vars = vars_of(c, t.host);
    forward_request_head(c->request_head, req, &t, c->upgrading, c->policy, &vars);
    body_pump_init(&c->req_body, &framing, 1);
    /* The head's bytes are no longer needed: req and t point into them. */
    evbuffer_drain(bufferevent_get_input(c->cbev), head_len);

    if (c->ubev && c->w->cfg->reuse == REUSE_CLIENT) {
        c->up_reused = 1;
        return send_request(c);
    }
    free_origin(c);
    return start_connect(c);
}

/* Looks for a complete request head in the client's input and acts on it. */
static int handle_head(client *c)
{
    http_worker *hw = c->hw;
    const config *cfg = c->w->cfg;
    struct evbuffer *in = bufferevent_get_input(c->cbev);
    size_t len = evbuffer_get_length(in);

    if (len == 0)
        return 0;
    if (!c->head_started) {
        c->head_started = 1;
        set_timer(c, cfg->timeouts.header_ms);
    }
    const char *buf;
    long found = http_head_find(in, cfg->limits.max_header_bytes, &c->head_scan, &buf);
    if (found < 0)
        return fail_request(c, 431, "request head too large");
    if (found == 0)
        return 0;
    size_t head_len = (size_t)found;
    http_request req;
    int status;
    req.fields = hw->scratch_fields;
    event_del(c->timer);
    c->resp_started = 0;
    if (http_parse_request(buf, head_len, &hw->limits, &req, &status) < 0)
        return fail_request(c, status, status == 414 ? "request-target too long"
                                       : status == 431 ? "request header fields too large"
                                       : status == 505 ? "only HTTP/1.0 and HTTP/1.1 are supported"
                                                       : "malformed request");
    return handle_request(c, &req, head_len);
}

/* ======================================================================
 * The response path: the response head, its body, and what happens to
 * both connections after it.
 * ====================================================================== */

/* A connection kept for the next request of this client: anything it does
 * while idle (the origin closing it, stray bytes) ends it. */
static void idle_origin_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    free_origin(arg);
}

static void idle_origin_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    free_origin(arg);
}

/* The response is complete. Decide what happens to both connections. */
static int exchange_done(client *c)
{
    const config *cfg = c->w->cfg;
    int origin_clean = c->origin_keep_alive && !c->origin_eof && c->req_body.done &&
                       evbuffer_get_length(bufferevent_get_input(c->ubev)) == 0 &&
                       cfg->reuse != REUSE_OFF && !c->w->draining;

    evbuffer_drain(c->request_head, (size_t)-1);
    c->served++;
    /* The next request's errors get an answer of their own. */
    c->resp_started = 0;
    if (!origin_clean) {
        free_origin(c);
    } else if (cfg->reuse == REUSE_SHARED) {
        sock_reader_detach(&c->uread);
        connector_release(c->w, c->hw->pool, &c->up, c->up_host, c->up_port, c->ubev);
        c->ubev = NULL;
    } else {
        /* It lives as long as the client's idle time, at most. */
        bufferevent_setcb(c->ubev, idle_origin_read_cb, NULL, idle_origin_event_cb, c);
        sock_reader_enable(&c->uread);
        c->up_reused = 1;
    }

    if (!c->client_keeps || !c->req_body.done || c->w->draining)
        return close_after_flush(c);

    set_state(c, CS_READ_HEAD);
    c->head_scan = 0;
    c->head_started = 0;
    set_timer(c, cfg->timeouts.idle_ms);
    /* Reading may have stopped with the input full of pipelined requests. */
    if (!c->client_eof)
        sock_reader_enable(&c->cread);
    /* A pipelined request may already be waiting. */
    if (handle_head(c) < 0)
        return -1;
    /* A client that closed its side sends nothing more: once the requests
     * it had sent are answered, the connection ends. */
    if (c->state == CS_READ_HEAD && c->client_eof)
        return close_after_flush(c);
    return 0;
}

static int pump_response_body(client *c)
{
    struct evbuffer *in = bufferevent_get_input(c->ubev);
    struct evbuffer *out = bufferevent_get_output(c->cbev);
    size_t limit = c->w->cfg->limits.buffer_bytes;

    if (relay_body(&c->resp_body, c->ubev, c->cbev, limit) < 0) {
        log_debug("malformed chunked response from %s:%u", c->up_host, c->up_port);
        return client_free(c);
    }
    if (c->resp_body.done)
        return exchange_done(c);
    if (c->origin_eof) {
        if (evbuffer_get_length(in) > 0)
            return 0; /* the rest goes as the client drains */
        if (body_pump_eof(&c->resp_body))
            return exchange_done(c);
        log_debug("origin %s:%u closed mid-response", c->up_host, c->up_port);
        /* Flush what arrived, then close: the client sees the body cut short. */
        c->client_keeps = 0;
        return close_after_flush(c);
    }
    if (evbuffer_get_length(out) >= limit)
        sock_reader_disable(&c->uread);
    else
        sock_reader_enable(&c->uread);
    return 0;
}

/* Reads response heads: interim 1xx ones are relayed and skipped, the final
 * one is rewritten for the client and its body relay started. */
static int handle_response_head(client *c)
{
    http_worker *hw = c->hw;
    worker *w = c->w;
    const config *cfg = w->cfg;
    struct evbuffer *in = bufferevent_get_input(c->ubev);
    struct evbuffer *out = bufferevent_get_output(c->cbev);
    policy_vars vars = vars_of(c, c->up_host);

    for (;;) {
        if (evbuffer_get_length(in) == 0)
            return 0;
        const char *buf;
        long found = http_head_find(in, cfg->limits.max_header_bytes, &c->resp_scan, &buf);
        if (found < 0)
            return fail_request(c, 502, "the origin sent an oversized response head");
        if (found == 0)
            return 0;
        size_t head_len = (size_t)found;
        http_response resp;
        int status;
        resp.fields = hw->scratch_fields;
        if (http_parse_response(buf, head_len, &hw->limits, &resp, &status) < 0)
            return fail_request(c, 502, "the origin sent a malformed response");
        c->resp_scan = 0;
        /* The origin answered: the request can no longer be retried. */
        evbuffer_drain(c->request_head, (size_t)-1);

        if (resp.status == 101) {
            if (!c->upgrading)
                return fail_request(c, 502, "the origin switched protocols unasked");
            response_plan plan = {c->client_minor, 1, 0, 1};
            forward_response_head(hw->scratch, &resp, &plan, c->policy, &vars);
            evbuffer_add_buffer(out, hw->scratch);
            evbuffer_drain(in, head_len);
            return become_tunnel(c);
        }
        if (resp.status < 200) {
            /* HTTP/1.0 clients do not understand interim responses. */
            if (c->client_minor >= 1) {
                response_plan plan = {c->client_minor, 1, 0, 0};
                forward_response_head(hw->scratch, &resp, &plan, c->policy, &vars);
                evbuffer_add_buffer(out, hw->scratch);
                sockio_flush(c->cbev);
            }
            evbuffer_drain(in, head_len);
            continue;
        }

        http_framing framing;
        if (http_response_framing(&resp, c->is_head, &framing) != 0)
            return fail_request(c, 502, "the origin sent a response with ambiguous framing");
        int chunked = framing.kind == BODY_CHUNKED;
        c->origin_keep_alive = forward_origin_keep_alive(&resp) && framing.kind != BODY_CLOSE;
        /* A client that is still sending its body when the answer comes
         * cannot be resynchronised: close after this response. */
        c->client_keeps = c->client_keep_alive && c->req_body.done && !w->draining &&
                          framing.kind != BODY_CLOSE && !(chunked && c->client_minor == 0);
        response_plan plan = {c->client_minor, c->client_keeps, chunked && c->client_minor == 0, 0};
        /* Built aside and moved in once: each add to a bufferevent's output
         * runs its callbacks. */
        forward_response_head(hw->scratch, &resp, &plan, c->policy, &vars);
        evbuffer_add_buffer(out, hw->scratch);
        evbuffer_drain(in, head_len);
        body_pump_init(&c->resp_body, &framing, c->client_minor >= 1);
        c->resp_started = 1;
        set_state(c, CS_RESPONSE_BODY);
        return pump_response_body(c);
    }
}

static void origin_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    client *c = arg;
    touch(c);
    if (c->state == CS_AWAIT_RESPONSE)
        handle_response_head(c);
    else
        pump_response_body(c);
}

/* The origin took some of the request body: read more from the client. */
static void origin_write_cb(struct bufferevent *bev, void *arg)
{
    client *c = arg;
    touch(c);
    sockio_flush(bev);
    if (!c->req_body.done && (c->state == CS_AWAIT_RESPONSE || c->state == CS_RESPONSE_BODY))
        pump_request_body(c);
}

static void origin_event_cb(struct bufferevent *bev, short what, void *arg)
{
    client *c = arg;

    if (what & BEV_EVENT_EOF) {
        c->origin_eof = 1;
        if (c->state == CS_RESPONSE_BODY) {
            pump_response_body(c);
            return;
        }
        if (evbuffer_get_length(bufferevent_get_input(bev)) == 0 && c->up_reused &&
            evbuffer_get_length(c->request_head) > 0 && c->req_body.in == BODY_NONE) {
            /* A reused connection the origin had closed while idle: the
             * request never reached it, so it is safe to send again. */
            free_origin(c);
            start_connect(c);
            return;
        }
        fail_request(c, 502, "the origin closed the connection without a complete response");
        return;
    }
    fail_request(c, 502, "the connection to the origin failed");
}

/* ======================================================================
 * Client-side events, and the listener kind.
 * ====================================================================== */

static int exchanging(const client *c)
{
    return c->state == CS_AWAIT_RESPONSE || c->state == CS_RESPONSE_BODY;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    client *c = arg;
    if (c->state == CS_READ_HEAD) {
        handle_head(c);
    } else if (exchanging(c) && !c->req_body.done) {
        touch(c);
        pump_request_body(c);
    }
}

static void client_write_cb(struct bufferevent *bev, void *arg)
{
    client *c = arg;
    touch(c);
    sockio_flush(bev);
    if (c->state == CS_RESPONSE_BODY)
        pump_response_body(c);
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    client *c = arg;
    /* A TLS listener's handshake is done: the request comes next. */
    if (what & BEV_EVENT_CONNECTED)
        return;

    if (what & BEV_EVENT_EOF) {
        if ((exchanging(c) || c->state == CS_CONNECTING) && c->req_body.done) {
            /* A client may half-close once its request is sent; the response
             * still goes to it, then the connection closes. */
            c->client_eof = 1;
            return;
        }
        if (c->state == CS_READ_HEAD && output_pending(c)) {
            /* What was already answered is delivered before closing. */
            close_after_flush(c);
            return;
        }
    }
    client_free(c);
}

static void client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client *c = arg;
    int delivering = c->state == CS_READ_HEAD && !c->head_started && output_pending(c);
    if (exchanging(c) || delivering) {
        unsigned left = io_left(c);
        if (left)
            set_timer(c, left);
        else if (delivering || c->resp_started)
            client_free(c); /* the client stopped reading, or the origin stalled mid-body */
        else if (!c->req_body.done)
            fail_request(c, 408, "the request body stalled");
        else
            fail_request(c, 504, "the origin did not answer in time");
    } else if (c->state == CS_READ_HEAD && c->head_started) {
        fail_request(c, 408, "the request head was not received in time");
    } else {
        client_free(c); /* idle keep-alive expired */
    }
}

/* Shutdown: an idle keep-alive connection closes once what it was answered
 * is delivered; a busy one closes after its exchange (exchange_done). At a
 * reload, a connection accepted just before has sent nothing yet but will:
 * it is served like a busy one (its header timeout and the shutdown
 * deadline still apply), since closing it would reset a client that did
 * nothing wrong while the proxy stays up. */
static void client_drain(worker_conn *link)
{
    client *c = (client *)link;
    if (c->state == CS_READ_HEAD && !c->head_started &&
        (c->served > 0 || c->w->stopping_for_good)) {
        if (output_pending(c))
            close_after_flush(c);
        else
            client_free(c);
    }
}

static void client_destroy(worker_conn *link)
{
    client_free((client *)link);
}

/* Text forms of the peer address, for policy variables. */
static void describe_peer(const struct sockaddr *sa, socklen_t len, char ip[INET6_ADDRSTRLEN],
                          char port[6])
{
    int whole = len >= sockaddr_len(sa);
    ip[0] = '\0';
    if (whole)
        sockaddr_ip_text(sa, ip);
    snprintf(port, 6, "%u", whole ? sockaddr_port(sa) : 0);
}

/* The client side of a new connection: the socket itself, or TLS over it
 * (a filter, as toward an HTTPS exit, so sockio sees TLS the same way). */
static struct bufferevent *client_bufferevent(worker *w, const listen_config *l, int fd, int tls)
{
    struct bufferevent *raw = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!raw)
        evutil_closesocket(fd);
    if (!raw || !tls)
        return raw;
    SSL *ssl = SSL_new(l->tls);
    struct bufferevent *bev = ssl ? bufferevent_openssl_filter_new(w->base, raw, ssl,
                                                                  BUFFEREVENT_SSL_ACCEPTING,
                                                                  BEV_OPT_CLOSE_ON_FREE |
                                                                      BEV_OPT_DEFER_CALLBACKS)
                                  : NULL;
    if (!bev) {
        if (ssl)
            SSL_free(ssl);
        bufferevent_free(raw); /* closes fd */
    }
    return bev;
}

void http_proxy_accept(worker *w, void *state, const listen_config *l, int fd,
                       const struct sockaddr *peer, socklen_t peer_len, int tls)
{
    const config *cfg = w->cfg;
    client *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->w = w;
    c->hw = state;
    c->listener = l;
    c->policy = l->policy;
    describe_peer(peer, peer_len, c->peer_ip, c->peer_port);
    c->link.drain = client_drain;
    c->link.destroy = client_destroy;
    worker_conn_add(w, &c->link);
    c->state = CS_READ_HEAD;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->cbev = client_bufferevent(w, l, fd, tls);
    c->timer = evtimer_new(w->base, client_timer_cb, c);
    c->request_head = evbuffer_new();
    if (!c->cbev || !c->timer || !c->request_head ||
        sock_reader_attach(&c->cread, c->cbev, read_limit(cfg)) < 0) {
        client_free(c);
        return;
    }
    bufferevent_setcb(c->cbev, client_read_cb, client_write_cb, client_event_cb, c);
    sockio_set_flow(c->cbev, cfg->limits.buffer_bytes);
    sock_reader_enable(&c->cread);
    set_timer(c, cfg->timeouts.header_ms);
}

static void client_accept(worker *w, void *state, const listen_config *l, int fd,
                          const struct sockaddr *peer, socklen_t peer_len)
{
    http_proxy_accept(w, state, l, fd, peer, peer_len, l->tls != NULL);
}

void http_refuse_busy(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 46\r\n"
                               "Connection: close\r\n\r\n"
                               "503 Service Unavailable: too many connections\n";
    /* Best effort: the socket buffer of a fresh connection has room. */
    ssize_t n = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
}

static void http_worker_free(void *state)
{
    http_worker *hw = state;
    if (!hw)
        return;
    origin_pool_free(hw->pool);
    free(hw->scratch_fields);
    if (hw->scratch)
        evbuffer_free(hw->scratch);
    free(hw);
}

static int http_worker_init(worker *w, void **state, char *err, size_t errlen)
{
    const limits_config *lim = &w->cfg->limits;
    http_worker *hw = calloc(1, sizeof *hw);
    if (hw) {
        hw->limits = (http_limits){lim->max_header_bytes, lim->max_headers, lim->max_uri_bytes,
                                   lim->max_line_bytes};
        hw->scratch = evbuffer_new();
        hw->scratch_fields = calloc(lim->max_headers, sizeof *hw->scratch_fields);
        hw->pool = origin_pool_new(w->cfg->timeouts.idle_ms);
    }
    if (!hw || !hw->scratch || !hw->scratch_fields || !hw->pool) {
        http_worker_free(hw);
        snprintf(err, errlen, "cannot set up worker %u: out of memory", w->id);
        return -1;
    }
    *state = hw;
    return 0;
}

/* Idle pooled connections close at once: nothing new will use them. */
static void http_worker_drain(void *state)
{
    http_worker *hw = state;
    origin_pool_free(hw->pool);
    hw->pool = NULL;
}

static const char *const http_keys[] = {"mode", "country", "tls", NULL};

const listener_kind http_proxy_kind = {
    "http", http_keys, http_worker_init, http_worker_drain, http_worker_free, client_accept,
    http_refuse_busy,
};
