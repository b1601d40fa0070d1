/* chain.c - see chain.h.
 *
 * The walk is a small state machine over one bufferevent: at each hop it
 * sends that hop's request for the next target (the next hop, or at the end
 * the destination) and parses the reply; toward an HTTPS hop it first layers
 * a TLS filter over the connection.
 */
#include "egress/chain.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "http/head_reader.h"
#include "http/http_parser.h"

/* A proxy's reply to CONNECT is small; anything bigger is not a reply. */
#define MAX_REPLY_HEAD 16384
#define MAX_REPLY_FIELDS 64

typedef enum walk_state {
    W_TLS,              /* TLS handshake with the current hop */
    W_HTTP_CONNECT,     /* waiting for the reply to CONNECT */
    W_SOCKS5_METHOD,    /* waiting for the method selection */
    W_SOCKS5_AUTH,      /* waiting for the RFC 1929 verdict */
    W_SOCKS5_CONNECT,   /* waiting for the CONNECT reply */
    W_SOCKS4,           /* waiting for the SOCKS4a reply */
} walk_state;

struct chain_walk {
    struct event_base *base;
    struct bufferevent *bev;     /* the top of the stack: TLS filters over the TCP one */
    const upstream *u;
    size_t hop;                  /* the hop we are talking to */
    char dest_host[TARGET_MAX_HOST + 1];
    unsigned dest_port;
    int final_tunnel;
    walk_state state;
    size_t scan;                 /* http_head_end resume point */
    struct event *timer;         /* deadline, and deferred delivery */
    chain_status status;
    proxy_error error;             /* CHAIN_DEST_FAILED: what the exit said */
    const char *detail;
    int done;                    /* outcome decided, delivery queued */
    chain_cb cb;
    void *arg;
};

/* ---- delivery ---------------------------------------------------------- */

static void walk_free(chain_walk *w)
{
    if (w->bev)
        bufferevent_free(w->bev);
    if (w->timer)
        event_free(w->timer);
    free(w);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    chain_walk *w = arg;
    if (!w->done) {
        w->status = CHAIN_UPSTREAM_FAILED;
        w->detail = "the upstream proxy did not answer in time";
    }
    struct bufferevent *bev = w->status == CHAIN_OK ? w->bev : NULL;
    chain_status status = w->status;
    proxy_error error = w->error;
    const char *detail = w->detail;
    chain_cb cb = w->cb;
    void *arg2 = w->arg;
    if (bev) {
        bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
        bufferevent_disable(bev, EV_READ);
        w->bev = NULL;
    }
    walk_free(w);
    cb(bev, status, error, detail, arg2);
}

/* Ends the walk; delivery happens from the loop. */
static void finish(chain_walk *w, chain_status status, const char *detail)
{
    if (w->done)
        return;
    w->done = 1;
    w->status = status;
    w->detail = detail;
    if (status != CHAIN_OK)
        log_debug("upstream %s, hop %zu: %s", w->u->name, w->hop, detail);
    event_active(w->timer, EV_TIMEOUT, 0);
}

/* ---- requests ---------------------------------------------------------- */

/* Where the current hop must take us: the next hop, or the destination. */
static void next_target(const chain_walk *w, const char **host, unsigned *port, int *is_dest)
{
    *is_dest = w->hop + 1 == w->u->nhops;
    *host = *is_dest ? w->dest_host : w->u->hops[w->hop + 1].host;
    *port = *is_dest ? w->dest_port : w->u->hops[w->hop + 1].port;
}

static void send_http_connect(chain_walk *w, const hop *h, const char *host, unsigned port)
{
    struct evbuffer *out = bufferevent_get_output(w->bev);
    int v6 = strchr(host, ':') != NULL;
    evbuffer_add_printf(out, "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n", v6 ? "[" : "", host,
                        v6 ? "]" : "", port, v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (h->proxy_auth)
        evbuffer_add_printf(out, "Proxy-Authorization: %s\r\n", h->proxy_auth);
    evbuffer_add(out, "\r\n", 2);
    w->scan = 0;
    w->state = W_HTTP_CONNECT;
}

static void send_socks5_connect(chain_walk *w, const char *host, unsigned port)
{
    unsigned char req[4 + 1 + TARGET_MAX_HOST + 2] = {5, 1, 0};
    size_t len = 4;
    struct in_addr a4;
    struct in6_addr a6;
    /* Literal addresses go as addresses; names always go as names, so
     * that the exit, not this proxy, resolves them. */
    if (inet_pton(AF_INET, host, &a4) == 1) {
        req[3] = 1;
        memcpy(req + len, &a4, 4);
        len += 4;
    } else if (inet_pton(AF_INET6, host, &a6) == 1) {
        req[3] = 4;
        memcpy(req + len, &a6, 16);
        len += 16;
    } else {
        size_t n = strlen(host);
        req[3] = 3;
        req[len++] = (unsigned char)n;
        memcpy(req + len, host, n);
        len += n;
    }
    req[len++] = (unsigned char)(port >> 8);
    req[len++] = (unsigned char)port;
    bufferevent_write(w->bev, req, len);
    w->state = W_SOCKS5_CONNECT;
}

static void send_socks4a(chain_walk *w, const hop *h, const char *host, unsigned port)
{
    struct evbuffer *out = bufferevent_get_output(w->bev);
    unsigned char head[8] = {4, 1, (unsigned char)(port >> 8), (unsigned char)port, 0, 0, 0, 1};
    struct in_addr a4;
    int literal = inet_pton(AF_INET, host, &a4) == 1;
    if (literal)
        memcpy(head + 4, &a4, 4);
    evbuffer_add(out, head, sizeof head);
    evbuffer_add(out, h->user ? h->user : "", h->user ? strlen(h->user) + 1 : 1);
    if (!literal)
        /* DSTIP 0.0.0.1 says "SOCKS4a: the name follows". */
        evbuffer_add(out, host, strlen(host) + 1);
    w->state = W_SOCKS4;
}

static void start_tls(chain_walk *w);

/* Asks the current hop for the next target, or completes the walk. */
static void advance(chain_walk *w)
{
    const hop *h = &w->u->hops[w->hop];
    const char *host;
    unsigned port;
    int is_dest;
    next_target(w, &host, &port, &is_dest);

    if (is_dest && !w->final_tunnel) {
        finish(w, CHAIN_OK, NULL);
        return;
    }
    switch (h->proto) {
    case HOP_HTTP:
    case HOP_HTTPS:
        send_http_connect(w, h, host, port);
        break;
    case HOP_SOCKS5:
    case HOP_SOCKS5H: {
        static const unsigned char no_auth[] = {5, 1, 0}, user_pass[] = {5, 2, 0, 2};
        if (h->user)
            bufferevent_write(w->bev, user_pass, sizeof user_pass);
        else
            bufferevent_write(w->bev, no_auth, sizeof no_auth);
        w->state = W_SOCKS5_METHOD;
        break;
    }
    case HOP_SOCKS4A:
        send_socks4a(w, h, host, port);
        break;
    }
}

/* The current hop opened the tunnel: we now talk to the next one. */
static void hop_done(chain_walk *w)
{
    const char *host;
    unsigned port;
    int is_dest;
    next_target(w, &host, &port, &is_dest);
    if (is_dest) {
        finish(w, CHAIN_OK, NULL);
        return;
    }
    w->hop++;
    if (w->u->hops[w->hop].proto == HOP_HTTPS)
        start_tls(w);
    else
        advance(w);
}

/* A failure of the current hop's request: the destination's fault when the
 * target was the destination and the hop says why (dest_error is not
 * PE_NONE), the upstream's otherwise. */
static void refused(chain_walk *w, proxy_error dest_error, const char *upstream_detail,
                    const char *dest_detail)
{
    const char *host;
    unsigned port;
    int is_dest;
    next_target(w, &host, &port, &is_dest);
    if (is_dest && dest_error != PE_NONE) {
        w->error = dest_error;
        finish(w, CHAIN_DEST_FAILED, dest_detail);
    } else {
        finish(w, CHAIN_UPSTREAM_FAILED, upstream_detail);
    }
}

/* What an HTTP proxy's refusal of CONNECT says about the destination. */
static proxy_error http_reply_error(int status)
{
    switch (status) {
    case 403: return PE_DESTINATION_IP_PROHIBITED;
    case 502:
    case 503: return PE_DESTINATION_UNAVAILABLE;
    case 504: return PE_CONNECTION_TIMEOUT;
    default: return PE_NONE;
    }
}

/* What a SOCKS5 reply code (RFC 1928 section 6) says about the destination;
 * 0x07 and 0x08 are the proxy's own limits, not the destination's. */
static proxy_error socks5_reply_error(unsigned code)
{
    static const proxy_error by_code[] = {
        [1] = PE_DESTINATION_UNAVAILABLE,  [2] = PE_DESTINATION_IP_PROHIBITED,
        [3] = PE_DESTINATION_IP_UNROUTABLE, [4] = PE_DESTINATION_IP_UNROUTABLE,
        [5] = PE_CONNECTION_REFUSED,       [6] = PE_CONNECTION_TIMEOUT,
    };
    return code < ARRAY_LEN(by_code) ? by_code[code] : PE_NONE;
}

/* ---- replies ----------------------------------------------------------- */

static void read_http_reply(chain_walk *w, struct evbuffer *in)
{
    const char *buf;
    long found = http_head_find(in, MAX_REPLY_HEAD, &w->scan, &buf);
    if (found < 0)
        finish(w, CHAIN_UPSTREAM_FAILED, "the upstream proxy sent an oversized reply");
    if (found <= 0)
        return;
    size_t head_len = (size_t)found;
    http_field fields[MAX_REPLY_FIELDS];
    http_limits limits = {MAX_REPLY_HEAD, MAX_REPLY_FIELDS, MAX_REPLY_HEAD, MAX_REPLY_HEAD};
    http_response resp;
    int status;
    resp.fields = fields;
    if (http_parse_response(buf, head_len, &limits, &resp, &status) < 0) {
        finish(w, CHAIN_UPSTREAM_FAILED, "the upstream proxy sent a malformed reply");
        return;
    }
    evbuffer_drain(in, head_len);
    if (resp.status >= 200 && resp.status < 300)
        hop_done(w);
    else if (resp.status == 407)
        finish(w, CHAIN_UPSTREAM_FAILED, "the upstream proxy refused our credentials");
    else
        refused(w, http_reply_error(resp.status), "the upstream proxy refused the tunnel",
                "the exit could not reach the origin");
}

/* Bytes a SOCKS5 CONNECT reply has, given its first 5 bytes. */
static size_t socks5_reply_len(const unsigned char *r)
{
    switch (r[3]) {
    case 1: return 4 + 4 + 2;
    case 4: return 4 + 16 + 2;
    case 3: return 4 + 1 + r[4] + 2;
    default: return 0;
    }
}

static void read_socks(chain_walk *w, struct evbuffer *in)
{
    const hop *h = &w->u->hops[w->hop];
    unsigned char r[4 + 1 + 255 + 2];
    size_t have = evbuffer_get_length(in);
    const char *host;
    unsigned port;
    int is_dest;

    switch (w->state) {
    case W_SOCKS5_METHOD:
        if (have < 2)
            return;
        evbuffer_remove(in, r, 2);
        if (r[0] != 5 || (r[1] != 0 && r[1] != 2) || (r[1] == 2 && !h->user)) {
            finish(w, CHAIN_UPSTREAM_FAILED, r[1] == 0xff ? "the SOCKS5 proxy accepts none of our methods"
                                                            : "the SOCKS5 proxy broke the protocol");
            return;
        }
        next_target(w, &host, &port, &is_dest);
        if (r[1] == 2) {
            size_t ul = strlen(h->user), pl = strlen(h->pass);
            unsigned char auth[3 + 255 + 255];
            auth[0] = 1;
            auth[1] = (unsigned char)ul;
            memcpy(auth + 2, h->user, ul);
            auth[2 + ul] = (unsigned char)pl;
            memcpy(auth + 3 + ul, h->pass, pl);
            bufferevent_write(w->bev, auth, 3 + ul + pl);
            w->state = W_SOCKS5_AUTH;
        } else {
            send_socks5_connect(w, host, port);
        }
        return;
    case W_SOCKS5_AUTH:
        if (have < 2)
            return;
        evbuffer_remove(in, r, 2);
        if (r[1] != 0) {
            finish(w, CHAIN_UPSTREAM_FAILED, "the SOCKS5 proxy refused our credentials");
            return;
        }
        next_target(w, &host, &port, &is_dest);
        send_socks5_connect(w, host, port);
        return;
    case W_SOCKS5_CONNECT: {
        if (have < 5)
            return;
        evbuffer_copyout(in, r, 5);
        size_t need = socks5_reply_len(r);
        if (r[0] != 5 || need == 0) {
            finish(w, CHAIN_UPSTREAM_FAILED, "the SOCKS5 proxy broke the protocol");
            return;
        }
        if (have < need)
            return;
        evbuffer_drain(in, need);
        if (r[1] == 0)
            hop_done(w);
        else
            refused(w, socks5_reply_error(r[1]), "the SOCKS5 proxy refused the tunnel",
                    "the exit could not reach the origin");
        return;
    }
    case W_SOCKS4:
        if (have < 8)
            return;
        evbuffer_remove(in, r, 8);
        if (r[0] != 0)
            finish(w, CHAIN_UPSTREAM_FAILED, "the SOCKS4a proxy broke the protocol");
        else if (r[1] == 0x5a)
            hop_done(w);
        else
            refused(w, r[1] == 0x5b ? PE_DESTINATION_UNAVAILABLE : PE_NONE,
                    "the SOCKS4a proxy refused the tunnel",
                    "the exit could not reach the origin");
        return;
    default:
        return;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    chain_walk *w = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (w->done)
        return;
    if (w->state == W_HTTP_CONNECT)
        read_http_reply(w, in);
    else if (w->state != W_TLS)
        read_socks(w, in);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    chain_walk *w = arg;
    if (w->done)
        return;
    if ((what & BEV_EVENT_CONNECTED) && w->state == W_TLS) {
        advance(w);
        return;
    }
    if (w->state == W_TLS) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        log_debug("TLS with upstream %s failed: %s", w->u->name, e ? ERR_reason_error_string(e) : "closed");
        finish(w, CHAIN_UPSTREAM_FAILED, "TLS with the upstream proxy failed");
    } else {
        finish(w, CHAIN_UPSTREAM_FAILED, "the upstream proxy closed the connection");
    }
}

/* Layers TLS toward the current hop over whatever carries us to it. */
static void start_tls(chain_walk *w)
{
    const hop *h = &w->u->hops[w->hop];
    SSL *ssl = SSL_new(h->tls);
    struct in_addr a4;
    struct in6_addr a6;
    int literal = inet_pton(AF_INET, h->host, &a4) == 1 || inet_pton(AF_INET6, h->host, &a6) == 1;

    if (!ssl) {
        finish(w, CHAIN_UPSTREAM_FAILED, "cannot start TLS");
        return;
    }
    /* The certificate must name the proxy we meant to reach. */
    if (literal)
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h->host);
    else {
        SSL_set_tlsext_host_name(ssl, h->host);
        SSL_set1_host(ssl, h->host);
    }
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        w->base, w->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (!tls) {
        SSL_free(ssl);
        finish(w, CHAIN_UPSTREAM_FAILED, "cannot start TLS");
        return;
    }
    w->bev = tls;
    w->state = W_TLS;
    bufferevent_setcb(tls, on_read, NULL, on_event, w);
    bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* ---- entry points ------------------------------------------------------ */

chain_walk *chain_start(struct event_base *base, struct bufferevent *bev, const upstream *u,
                        const char *dest_host, unsigned dest_port, int final_tunnel,
                        unsigned timeout_ms, chain_cb cb, void *arg)
{
    chain_walk *w = calloc(1, sizeof *w);
    if (!w || !(w->timer = evtimer_new(base, on_timer, w))) {
        free(w);
        bufferevent_free(bev);
        return NULL;
    }
    w->base = base;
    w->bev = bev;
    w->u = u;
    snprintf(w->dest_host, sizeof w->dest_host, "%s", dest_host);
    w->dest_port = dest_port;
    w->final_tunnel = final_tunnel;
    w->cb = cb;
    w->arg = arg;
    struct timeval tv = ms_to_timeval(timeout_ms);
    evtimer_add(w->timer, &tv);

    bufferevent_setcb(bev, on_read, NULL, on_event, w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (u->hops[0].proto == HOP_HTTPS)
        start_tls(w);
    else
        advance(w);
    return w;
}

void chain_cancel(chain_walk *w)
{
    walk_free(w);
}
