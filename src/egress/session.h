/* session.h - the egress half that every front end shares.
 *
 * A front end has parsed its protocol's request (HTTP CONNECT, tomorrow
 * SOCKS5 CONNECT) and decided the route (route.h). An egress session then
 * does the rest without knowing the protocol: it picks the exit, connects
 * (direct or through the chain, with failover: connector.h) and becomes a
 * tunnel (net/tunnel.h) between the client and the destination. The front
 * end's replies (HTTP "200 Connection established" or an error status,
 * a SOCKS reply code) come from a small table of its own.
 *
 * An HTTP request is the other use of an egress connection: the exchange
 * (front/http_proxy.c) calls connector_start itself and keeps the
 * connection for the request and its response.
 */
#ifndef ANONPROXY_SESSION_H
#define ANONPROXY_SESSION_H

#include "egress/connector.h"
#include "egress/route.h"
#include "net/worker.h"

struct bufferevent;
struct evbuffer;

/* Where a session goes, and for whom. */
typedef struct egress_dest {
    const char *host;          /* lowercase name or address literal */
    unsigned port;
    const route *rt;
    const char *client_ip;     /* the client's address, for sticky exit selection */
} egress_dest;

/* How a front end answers its client; neither may fail or keep a pointer. */
typedef struct egress_replies {
    /* The destination is reached: the success reply, into out. */
    void (*established)(struct evbuffer *out, const connect_result *res);
    /* It cannot be: the error reply, into out. error says why (connector.h),
     * detail is a short reason fit for a client. */
    void (*failed)(struct evbuffer *out, proxy_error error, const char *detail);
} egress_replies;

/* Takes ownership of client, a connected bufferevent whose reading is with
 * libevent and disabled (sock_reader_detach): nothing more is read from it
 * until the tunnel runs, and bytes already in its input are relayed first.
 * Its callbacks are the session's from now on (earlier output is still
 * delivered; a write error ends the session).
 * On failure the client gets replies->failed and a lingering close
 * (net/closer.h). replies must outlive the session (a static table). */
void egress_tunnel(worker *w, struct bufferevent *client, const egress_dest *dest,
                   const egress_replies *replies);

#endif
