/* proxy_protocol.h - the PROXY protocol header a load balancer puts in
 * front of a connection (HAProxy's v1 text form and v2 binary form).
 *
 * With "proxy_protocol": true on a listener, every connection must start
 * with a header, and only peers in "proxy_protocol_from" (default: the
 * loopback addresses) may connect at all; anyone else is closed without a
 * byte read. The client address the header carries is then the one the
 * listener's kind sees: for transparent mode's X-Forwarded-For, sticky
 * exits and logs. A LOCAL (v2) or UNKNOWN (v1) header keeps the balancer's
 * own address, as the specification says (a health check). The worker
 * reads the header exactly, never a byte past it, within timeouts.header;
 * a malformed or oversized one closes the connection. This module parses.
 */
#ifndef ANONPROXY_PROXY_PROTOCOL_H
#define ANONPROXY_PROXY_PROTOCOL_H

#include <stddef.h>
#include <sys/socket.h>

/* The longest header accepted: v2's 16 bytes and up to 1 KiB of addresses
 * and TLVs (v1 is at most 107 bytes). */
#define PROXY_HEADER_MAX (16 + 1024)

/* Parses a header at buf[0..len). Returns its length, with the client
 * address in *addr (*addr_len 0 for LOCAL or UNKNOWN); 0 when every byte
 * so far may start a valid header but it is not whole yet; -1 when it is
 * malformed. */
long proxy_header_parse(const unsigned char *buf, size_t len, struct sockaddr_storage *addr,
                        socklen_t *addr_len);

#endif
