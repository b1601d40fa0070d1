/* mixed.h - the "mixed" listener kind: HTTP, SOCKS5 and SOCKS4/4a on one port.
 *
 * The first byte a client sends tells the protocol, as glider's and gost's
 * mixed listeners do: 0x05 is SOCKS5, 0x04 is SOCKS4 or 4a, anything else
 * is HTTP (a method's first letter). The byte is only peeked at: the chosen
 * front end (front/socks.h, front/http_proxy.h) reads the connection from
 * its first byte, as if it had accepted it itself. A client must send that
 * byte within timeouts.header. A mixed listener takes the keys of both:
 * "mode" (for its HTTP requests) and "country".
 */
#ifndef ANONPROXY_MIXED_H
#define ANONPROXY_MIXED_H

#include "net/listener.h"

extern const listener_kind mixed_kind;

#endif
