/* config.c - see config.h. */
#include "core/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int config_parse_address(const char *text, struct sockaddr_storage *addr, socklen_t *len, char *err,
                         size_t errlen)
{
    /* Brackets are required around IPv6, so "::1:80" is never guessed at. */
    int v6 = text[0] == '[';
    const char *host = v6 ? text + 1 : text;
    const char *host_end = v6 ? strchr(text, ']') : strrchr(text, ':');
    const char *port = !host_end ? NULL
                       : v6      ? (host_end[1] == ':' ? host_end + 2 : NULL)
                                 : host_end + 1;
    char buf[INET6_ADDRSTRLEN];
    size_t hlen = host_end ? (size_t)(host_end - host) : 0;
    unsigned long n = 0;
    int ok = 0;

    if (!port || !*port) {
        snprintf(err, errlen, "\"%s\" has no port (expected A.B.C.D:PORT or [V6]:PORT)", text);
        return -1;
    }
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9') {
            snprintf(err, errlen, "bad port \"%s\"", port);
            return -1;
        }
        if (n <= 65535)
            n = n * 10 + (unsigned long)(*c - '0'); /* stops before overflow */
    }
    if (n < 1 || n > 65535) {
        snprintf(err, errlen, "port %s out of range", port);
        return -1;
    }
    memset(addr, 0, sizeof *addr);
    if (hlen < sizeof buf) {
        memcpy(buf, host, hlen);
        buf[hlen] = '\0';
        if (v6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
            ok = inet_pton(AF_INET6, buf, &sin6->sin6_addr) == 1;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((unsigned short)n);
            *len = sizeof *sin6;
        } else {
            struct sockaddr_in *sin = (struct sockaddr_in *)addr;
            ok = inet_pton(AF_INET, buf, &sin->sin_addr) == 1;
            sin->sin_family = AF_INET;
            sin->sin_port = htons((unsigned short)n);
            *len = sizeof *sin;
        }
    }
    if (!ok) {
        snprintf(err, errlen, "\"%s\" is not an IP address (use 127.0.0.1:PORT or [::1]:PORT)",
                 text);
        return -1;
    }
    return 0;
}

int config_connect_port_allowed(const config *cfg, unsigned port)
{
    if (!cfg->connect_ports)
        return 1;
    for (size_t i = 0; i < cfg->nconnect_ports; i++)
        if (port >= cfg->connect_ports[i].lo && port <= cfg->connect_ports[i].hi)
            return 1;
    return 0;
}
