/* proxy_protocol.c - see proxy_protocol.h.
 */
#include "net/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V1_MAX 107
static const unsigned char v2_signature[12] = {'\r', '\n', '\r', '\n', 0, '\r', '\n',
                                               'Q',  'U',  'I',  'T', '\n'};

/* "PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n", or "PROXY UNKNOWN...\r\n". */
static long parse_v1(const char *buf, size_t len, struct sockaddr_storage *addr,
                     socklen_t *addr_len)
{
    const char *crlf = memchr(buf, '\n', len);
    if (!crlf)
        return len >= V1_MAX ? -1 : 0;
    size_t n = (size_t)(crlf - buf) + 1;
    if (n > V1_MAX || n < 8 || buf[n - 2] != '\r')
        return -1;
    char line[V1_MAX + 1];
    memcpy(line, buf, n - 2);
    line[n - 2] = '\0';
    if (strncmp(line, "PROXY UNKNOWN", 13) == 0) {
        *addr_len = 0;
        return (long)n;
    }
    char proto[8], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], extra;
    unsigned sport, dport;
    if (sscanf(line, "PROXY %7s %45s %45s %u %u%c", proto, src, dst, &sport, &dport, &extra) != 5 ||
        sport > 65535 || dport > 65535)
        return -1;
    memset(addr, 0, sizeof *addr);
    if (strcmp(proto, "TCP4") == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        struct in_addr d;
        if (inet_pton(AF_INET, src, &in->sin_addr) != 1 || inet_pton(AF_INET, dst, &d) != 1)
            return -1;
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)sport);
        *addr_len = sizeof *in;
    } else if (strcmp(proto, "TCP6") == 0) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
        struct in6_addr d;
        if (inet_pton(AF_INET6, src, &in6->sin6_addr) != 1 || inet_pton(AF_INET6, dst, &d) != 1)
            return -1;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)sport);
        *addr_len = sizeof *in6;
    } else {
        return -1;
    }
    return (long)n;
}

/* The 12-byte signature, version 2 with command LOCAL or PROXY, the family,
 * a length; then the addresses (and TLVs, which are skipped). */
static long parse_v2(const unsigned char *buf, size_t len, struct sockaddr_storage *addr,
                     socklen_t *addr_len)
{
    if (len < 16)
        return 0;
    unsigned version = buf[12] >> 4, command = buf[12] & 0x0f;
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (version != 2 || command > 1 || 16 + body > PROXY_HEADER_MAX)
        return -1;
    if (len < 16 + body)
        return 0;
    const unsigned char *a = buf + 16;
    *addr_len = 0;
    if (command == 0)
        return (long)(16 + body); /* LOCAL: the balancer speaking for itself */
    memset(addr, 0, sizeof *addr);
    switch (buf[13]) {
    case 0x11: { /* TCP over IPv4: src, dst, sport, dport */
        if (body < 12)
            return -1;
        struct sockaddr_in *in = (struct sockaddr_in *)addr;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, a, 4);
        memcpy(&in->sin_port, a + 8, 2);
        *addr_len = sizeof *in;
        break;
    }
    case 0x21: { /* TCP over IPv6 */
        if (body < 36)
            return -1;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, a, 16);
        memcpy(&in6->sin6_port, a + 32, 2);
        *addr_len = sizeof *in6;
        break;
    }
    case 0x00: /* UNSPEC: keep the connection's own address */
        break;
    default:
        return -1; /* UDP or UNIX streams have no place on a TCP listener */
    }
    return (long)(16 + body);
}

long proxy_header_parse(const unsigned char *buf, size_t len, struct sockaddr_storage *addr,
                        socklen_t *addr_len)
{
    size_t sig = len < sizeof v2_signature ? len : sizeof v2_signature;
    if (len && memcmp(buf, v2_signature, sig) == 0)
        return sig < sizeof v2_signature ? 0 : parse_v2(buf, len, addr, addr_len);
    static const char v1[] = "PROXY ";
    size_t pre = len < 6 ? len : 6;
    if (memcmp(buf, v1, pre) != 0)
        return -1;
    return pre < 6 ? 0 : parse_v1((const char *)buf, len, addr, addr_len);
}
