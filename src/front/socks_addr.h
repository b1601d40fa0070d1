/* socks_addr.h - the SOCKS5 address field: ATYP, DST.ADDR, DST.PORT (RFC 1928
 * sections 4, 6 and 7), shared by requests, replies and UDP datagrams.
 */
#ifndef ANONPROXY_SOCKS_ADDR_H
#define ANONPROXY_SOCKS_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#include "http/target.h"

/* "host:port" as target.h parses it, a bracketed IPv6 literal included. */
#define SOCKS_AUTHORITY_MAX (TARGET_MAX_HOST + 16)

/* The most an address field takes to write: ATYP, 16 bytes, the port. */
#define SOCKS_ADDR_WRITE_MAX (1 + 16 + 2)

enum {
    SOCKS_ADDR_MORE = 0,        /* not whole yet */
    SOCKS_ADDR_BAD_TYPE = -1,   /* an ATYP that is none of the three */
    SOCKS_ADDR_BAD_NAME = -2,   /* an empty name, a NUL in it, or a name too long */
};

/* Reads the field at m[0..len) (m[0] is ATYP). Returns its length with the
 * destination as text in authority and, for an IP address, the socket
 * address in *literal (*literal_len 0 for a name); or one of the values
 * above. */
long socks_addr_read(const unsigned char *m, size_t len, char authority[SOCKS_AUTHORITY_MAX],
                     struct sockaddr_storage *literal, socklen_t *literal_len);

/* Writes an IPv4 or IPv6 address as an address field into out
 * (SOCKS_ADDR_WRITE_MAX bytes); returns its length. */
size_t socks_addr_write(const struct sockaddr *sa, unsigned char *out);

#endif
