/* socks_addr.c - see socks_addr.h. */
#include "front/socks_addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/sockaddr.h"

enum { ATYP_IPV4 = 1, ATYP_NAME = 3, ATYP_IPV6 = 4 };

long socks_addr_read(const unsigned char *m, size_t len, char authority[SOCKS_AUTHORITY_MAX],
                     struct sockaddr_storage *literal, socklen_t *literal_len)
{
    if (len < 2)
        return SOCKS_ADDR_MORE;
    size_t addr_len;
    switch (m[0]) {
    case ATYP_IPV4: addr_len = 4; break;
    case ATYP_NAME: addr_len = 1 + (size_t)m[1]; break;
    case ATYP_IPV6: addr_len = 16; break;
    default: return SOCKS_ADDR_BAD_TYPE;
    }
    if (len < 1 + addr_len + 2)
        return SOCKS_ADDR_MORE;
    const unsigned char *a = m + 1;
    unsigned port = (unsigned)a[addr_len] << 8 | a[addr_len + 1];
    memset(literal, 0, sizeof *literal);
    *literal_len = 0;
    if (m[0] == ATYP_NAME) {
        size_t n = addr_len - 1;
        if (n == 0 || n > TARGET_MAX_HOST || memchr(a + 1, 0, n))
            return SOCKS_ADDR_BAD_NAME;
        snprintf(authority, SOCKS_AUTHORITY_MAX, "%.*s:%u", (int)n, (const char *)a + 1, port);
        return (long)(1 + addr_len + 2);
    }
    if (m[0] == ATYP_IPV4) {
        struct sockaddr_in *in = (struct sockaddr_in *)literal;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, a, 4);
        *literal_len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)literal;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, a, 16);
        *literal_len = sizeof *in6;
    }
    sockaddr_set_port((struct sockaddr *)literal, port);
    char ip[INET6_ADDRSTRLEN];
    sockaddr_ip_text((const struct sockaddr *)literal, ip);
    snprintf(authority, SOCKS_AUTHORITY_MAX, m[0] == ATYP_IPV6 ? "[%s]:%u" : "%s:%u", ip, port);
    return (long)(1 + addr_len + 2);
}

size_t socks_addr_write(const struct sockaddr *sa, unsigned char *out)
{
    size_t n;
    if (sa->sa_family == AF_INET6) {
        out[0] = ATYP_IPV6;
        memcpy(out + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        n = 17;
    } else {
        out[0] = ATYP_IPV4;
        memcpy(out + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        n = 5;
    }
    unsigned port = sockaddr_port(sa);
    out[n] = (unsigned char)(port >> 8);
    out[n + 1] = (unsigned char)port;
    return n + 2;
}
