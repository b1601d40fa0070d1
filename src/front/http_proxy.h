/* http_proxy.h - the "http" listener kind: the forward proxy's exchange.
 *
 * Every request goes through the same steps, each in its own module:
 *   parse    (http/http_parser.c: strict head parsing and body framing)
 *   route    (egress/credentials.c and route.c: who asks, and where it goes)
 *   scrub    (http/forward.c and policy.c: the head sent on, the mode's rules)
 *   connect  (egress/connector.c: direct or through the exits)
 *   forward  (http/body.c for bodies; CONNECT and upgrades become tunnels)
 * This module is the state machine that drives them for one client
 * connection: it reads a request head, answers errors itself, streams the
 * request body to the origin with back-pressure, relays the response
 * (interim 1xx included) and then either waits for the next request on the
 * same connection or closes it. Pipelined requests are answered one after
 * another, in order. CONNECT hands the client to an egress session
 * (egress/session.h).
 */
#ifndef ANONPROXY_HTTP_PROXY_H
#define ANONPROXY_HTTP_PROXY_H

#include <sys/socket.h>

#include "net/listener.h"

struct worker;
struct listen_config;

extern const listener_kind http_proxy_kind;

/* The kind's accept, with TLS chosen by the caller (a mixed listener tells
 * a ClientHello from plain HTTP): takes ownership of fd, accepted on l. */
void http_proxy_accept(struct worker *w, void *state, const struct listen_config *l, int fd,
                       const struct sockaddr *peer, socklen_t peer_len, int tls);

/* Writes a 503 "too many connections" to a fresh socket, best effort. Every
 * HTTP-speaking kind refuses busy clients this way. */
void http_refuse_busy(int fd);

#endif
