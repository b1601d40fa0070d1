/* cidr.c - see cidr.h. */
#include "core/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

void cidr_address(const void *bytes, int family, unsigned char out[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET) {
        memcpy(out, mapped, 12);
        memcpy(out + 12, bytes, 4);
    } else {
        memcpy(out, bytes, 16);
    }
}

int cidr_parse(const char *text, cidr *out)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    unsigned char bytes[16];
    int family;
    if (alen >= sizeof addr)
        return -1;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, bytes) == 1)
        family = AF_INET;
    else if (inet_pton(AF_INET6, addr, bytes) == 1)
        family = AF_INET6;
    else
        return -1;
    unsigned max = family == AF_INET ? 32 : 128, bits = max;
    if (slash) {
        char *end;
        if (slash[1] < '0' || slash[1] > '9')
            return -1;
        unsigned long n = strtoul(slash + 1, &end, 10);
        if (*end || n > max)
            return -1;
        bits = (unsigned)n;
    }
    cidr_address(bytes, family, out->net);
    out->prefix = bits + (family == AF_INET ? 96 : 0);
    return 0;
}

int cidr_sockaddr_address(const struct sockaddr *sa, unsigned char out[16])
{
    if (sa->sa_family == AF_INET)
        cidr_address(&((const struct sockaddr_in *)sa)->sin_addr, AF_INET, out);
    else if (sa->sa_family == AF_INET6)
        cidr_address(&((const struct sockaddr_in6 *)sa)->sin6_addr, AF_INET6, out);
    else
        return -1;
    return 0;
}

int cidr_contains(const cidr *c, const unsigned char addr[16])
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(addr, c->net, full) != 0)
        return 0;
    return rest == 0 || ((addr[full] ^ c->net[full]) & (0xff00 >> rest) & 0xff) == 0;
}

int cidr_any_contains(const cidr *list, size_t n, const unsigned char addr[16])
{
    for (size_t i = 0; i < n; i++)
        if (cidr_contains(&list[i], addr))
            return 1;
    return 0;
}
