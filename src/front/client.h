/* client.h - one client connection: the proxy's request/response cycle.
 *
 * Every request goes through the same steps, each in its own module:
 *   parse    (http_parser.c: strict head parsing and body framing)
 *   scrub    (forward.c: the head sent on, hop-by-hop fields removed)
 *   route    (target.c and connector.c: where the request goes, DNS, connect)
 *   forward  (body.c for bodies, tunnel.c for CONNECT and upgrades)
 * This module is the state machine that drives them: it reads a request
 * head, answers errors itself, streams the request body to the origin with
 * back-pressure, relays the response (interim 1xx included) and then either
 * waits for the next request on the same connection or closes it. Pipelined
 * requests are answered one after another, in order.
 */
#ifndef ANONPROXY_CLIENT_H
#define ANONPROXY_CLIENT_H

#include <event2/util.h>

#include "net/worker.h"

/* Takes ownership of a socket `fd` accepted by listener l of w, from peer. */
void client_accept(worker *w, const listen_config *l, evutil_socket_t fd,
                   const struct sockaddr *peer, int peer_len);

#endif
