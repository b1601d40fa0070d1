/* tunnel.h - a byte-exact, bidirectional relay between two connections.
 *
 * Used for CONNECT and for upgraded (101 Switching Protocols) connections.
 * Bytes are moved between evbuffers without copying, with back-pressure in
 * both directions, and a half-close on one side is passed on to the other
 * (shutdown(SHUT_WR)) once everything before it has been written. Nothing
 * inside a tunnel is parsed or changed.
 */
#ifndef ANONPROXY_TUNNEL_H
#define ANONPROXY_TUNNEL_H

#include "net/worker.h"

struct bufferevent;

/* Takes ownership of both connected bufferevents (whatever callbacks they had
 * are replaced). Bytes already waiting in either input buffer are relayed
 * first. The tunnel frees itself and both connections when both directions
 * have closed, on an error, or after timeouts.tunnel_idle without a byte
 * either way. Returns 0, or -1 when out of memory (both are then freed). */
int tunnel_start(worker *w, struct bufferevent *client, struct bufferevent *origin);

#endif
