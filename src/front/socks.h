/* socks.h - the "socks5" and "socks4" listener kinds: SOCKS front doors.
 *
 * SOCKS5 (RFC 1928) with the methods "no authentication" and
 * username/password (RFC 1929), and SOCKS4 / SOCKS4a, detected by the
 * first byte on a "socks5" listener or alone on a "socks4" one. Only
 * CONNECT is served: it goes through the same checks as HTTP CONNECT
 * (connect_ports, routes, the credentials' -country-XX-session-ID options,
 * the listener's country) and the same egress session (egress/session.h),
 * so a domain name is never resolved here when an exit carries the
 * connection: it travels to the exit as a name. BIND and UDP ASSOCIATE are
 * answered "command not supported" (0x07; SOCKS4: rejected).
 *
 * Every malformed greeting or request is answered where the protocol has a
 * reply for it, then closed; a whole handshake must arrive within
 * timeouts.header. The SOCKS5 success reply carries 0.0.0.0:0 as the bound
 * address: the proxy's outgoing address is nobody's business.
 */
#ifndef ANONPROXY_SOCKS_H
#define ANONPROXY_SOCKS_H

#include "net/listener.h"

extern const listener_kind socks5_kind;
extern const listener_kind socks4_kind;

#endif
