/* chain.h - reaching a destination through a chain of upstream proxies.
 *
 * Given a connection to the first hop, walks the chain: each hop is asked to
 * open a tunnel to the next (HTTP CONNECT, SOCKS5 or SOCKS4a), TLS is started
 * toward HTTPS hops, and the last hop is asked for the destination itself.
 * The destination host name always travels to the exit unresolved (CONNECT
 * host:port, SOCKS5 domain address type, SOCKS4a), so the proxy never makes
 * a DNS query for it: no DNS leak.
 *
 * When the request is plain HTTP and the last hop is an HTTP(S) proxy, the
 * chain stops at that proxy (final_tunnel = 0): the caller then sends an
 * absolute-form request with the hop's own Proxy-Authorization.
 */
#ifndef ANONPROXY_CHAIN_H
#define ANONPROXY_CHAIN_H

#include "core/proxy_error.h"
#include "egress/upstream.h"

struct bufferevent;
struct event_base;
typedef struct chain_walk chain_walk;

/* How a walk ended. */
typedef enum chain_status {
    CHAIN_OK,
    CHAIN_UPSTREAM_FAILED,   /* a hop refused, failed authentication, broke the protocol or timed out */
    CHAIN_DEST_FAILED,       /* the exit answered that the destination cannot be reached */
} chain_status;

/* On CHAIN_OK, bev is ready for the request (ownership passes to the
 * callee); otherwise bev is NULL and detail says what went wrong, fit for a
 * client. On CHAIN_DEST_FAILED, error is what the exit said about the
 * destination (refused, unreachable, timed out, ...). The walk is freed
 * before the call. */
typedef void (*chain_cb)(struct bufferevent *bev, chain_status status, proxy_error error,
                         const char *detail, void *arg);

/* Takes ownership of bev, a TCP connection to u->hops[0]. Returns NULL
 * only when out of memory (bev is then freed). The callback always runs from
 * the event loop, never from inside chain_start. */
chain_walk *chain_start(struct event_base *base, struct bufferevent *bev, const upstream *u,
                        const char *dest_host, unsigned dest_port, int final_tunnel,
                        unsigned timeout_ms, chain_cb cb, void *arg);

/* Abandons a walk whose callback has not run; frees its connection. */
void chain_cancel(chain_walk *w);

#endif
