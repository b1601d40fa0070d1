/* socks_udp.h - SOCKS5 UDP ASSOCIATE (RFC 1928 section 7), direct only.
 *
 * An association is a relay socket bound on the address the client
 * reached over TCP (or the listener's "udp_address", the public one a
 * client behind NAT must send to), port chosen by the system. It takes
 * datagrams only from the client's address (and from the port the request
 * named, or else the first one seen), drops fragments (FRAG != 0), sends
 * each datagram's data to its destination from an outgoing socket (bound to
 * outgoing_address when set), and wraps what comes back in the SOCKS UDP
 * header. Routes apply per datagram: a blocked destination, or one a route
 * sends through an exit, is dropped (exits carry no UDP here). A domain
 * name is resolved with the proxy's resolver; while one name resolves, other
 * datagrams to unknown names are dropped (UDP may lose them anyway), and the
 * last answer is kept for a minute.
 *
 * The association lives as long as its TCP control connection, and ends
 * after timeouts.tunnel_idle without a datagram either way. At most
 * limits.max_udp_associations exist at once, all workers together.
 */
#ifndef ANONPROXY_SOCKS_UDP_H
#define ANONPROXY_SOCKS_UDP_H

#include <sys/socket.h>

#include "egress/credentials.h"
#include "net/worker.h"

struct bufferevent;

/* Starts an association for the client of control (a connected
 * bufferevent, reading with libevent and disabled); hint is the DST.ADDR
 * and DST.PORT of the request (the client's sending address; 0 values for
 * "unknown"). On success writes the SOCKS5 success reply into control's
 * output, takes ownership of control and returns 0. Otherwise returns the
 * SOCKS5 reply code to send (control stays the caller's). */
int socks_udp_start(worker *w, struct bufferevent *control, const listen_config *l,
                    const credentials *cred, const struct sockaddr *hint, socklen_t hint_len);

#endif
