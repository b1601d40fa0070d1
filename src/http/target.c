/* target.c - see target.h. */
#include "http/target.h"

#include <event2/util.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>

static int is_host_char(unsigned char c)
{
    /* RFC 3986 reg-name restricted to what DNS names and IPv4 literals use:
     * anything else (pct-encoding, sub-delims) has no business in a name we
     * resolve, and refusing it closes the door on parser differentials. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}

static int is_ipv6_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
           c == ':' || c == '.';
}

/* Parses "host[:port]" in s[0..len), port defaulting to default_port (0 means
 * the port is required). Fills t->host, t->host_is_ipv6, t->port. */
static int parse_host_port(const char *s, size_t len, unsigned default_port, target *t)
{
    size_t host_start, host_end, i;

    if (len == 0)
        return -1;
    if (s[0] == '[') {
        for (i = 1; i < len && s[i] != ']'; i++)
            if (!is_ipv6_char((unsigned char)s[i]))
                return -1;
        if (i == len || i == 1)
            return -1;
        host_start = 1;
        host_end = i;
        i++;
        t->host_is_ipv6 = 1;
    } else {
        for (i = 0; i < len && s[i] != ':'; i++)
            if (!is_host_char((unsigned char)s[i]))
                return -1;
        if (i == 0)
            return -1;
        host_start = 0;
        host_end = i;
        t->host_is_ipv6 = 0;
    }
    if (host_end - host_start > TARGET_MAX_HOST)
        return -1;
    for (size_t k = host_start; k < host_end; k++) {
        char c = s[k];
        t->host[k - host_start] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    t->host[host_end - host_start] = '\0';

    if (i == len) {
        if (default_port == 0)
            return -1;
        t->port = default_port;
        return 0;
    }
    if (s[i] != ':' || i + 1 == len || len - (i + 1) > 5)
        return -1;
    unsigned port = 0;
    for (i++; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        port = port * 10 + (unsigned)(s[i] - '0');
    }
    if (port == 0 || port > 65535)
        return -1;
    t->port = port;
    return 0;
}

int target_parse_absolute(const char *s, size_t len, target *t)
{
    static const char http[] = "http://", https[] = "https://";

    memset(t, 0, sizeof *t);
    if (len > 0 && s[0] == '/') {
        t->form = TARGET_ORIGIN;
        return 0;
    }
    if (len >= sizeof https - 1 && strncasecmp(s, https, sizeof https - 1) == 0) {
        t->form = TARGET_HTTPS;
        return 0;
    }
    if (len < sizeof http - 1 || strncasecmp(s, http, sizeof http - 1) != 0) {
        t->form = TARGET_OTHER;
        return 0;
    }
    t->form = TARGET_HTTP;

    const char *auth = s + sizeof http - 1;
    const char *end = s + len;
    const char *auth_end = NULL, *at = NULL;
    /* One pass over the rest: a control byte (CR and LF above all: they
     * would split the head we write) or a fragment, which is never part of a
     * request-target, refuses it wherever it is; on the way, the authority
     * ends at the first '/' or '?' and userinfo at the authority's last '@'. */
    for (const char *p = auth; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f || c == '#')
            return -1;
        if (!auth_end && (c == '/' || c == '?'))
            auth_end = p;
        else if (!auth_end && c == '@')
            at = p;
    }
    if (!auth_end)
        auth_end = end;

    /* userinfo is deprecated in http URIs (RFC 9110 4.2.4) and would otherwise
     * reach the origin inside the Host field: drop it. */
    if (at)
        auth = at + 1;

    t->authority = auth;
    t->authority_len = (size_t)(auth_end - auth);
    if (parse_host_port(auth, t->authority_len, 80, t) < 0)
        return -1;

    /* May be empty or start with '?': RFC 9112 3.2.1 says such a path is
     * sent as "/" followed by the query, which target_write_origin_form does. */
    t->path = auth_end;
    t->path_len = (size_t)(end - auth_end);
    return 0;
}

int target_parse_authority(const char *s, size_t len, target *t)
{
    memset(t, 0, sizeof *t);
    t->form = TARGET_OTHER;
    if (parse_host_port(s, len, 0, t) < 0)
        return -1;
    t->authority = s;
    t->authority_len = len;
    return 0;
}

const char *target_origin_prefix(const target *t)
{
    return (t->path_len == 0 || t->path[0] == '?') ? "/" : "";
}

/* Digits and dots only: exactly what libevent's sscanf("%u.%u.%u.%u%c")
 * accepts of such text (each part taken modulo 2^32 as %u stores it, a
 * part beyond 2^64 saturating), without sscanf's cost on every request.
 * Returns 1 with the address, 0 when it is not one. */
static int dotted_decimal(const char *s, unsigned char out[4])
{
    for (int part = 0; part < 4; part++) {
        unsigned long long v = 0;
        int digits = 0, saturated = 0;
        for (; *s >= '0' && *s <= '9'; s++, digits++) {
            unsigned d = (unsigned)(*s - '0');
            if (v > (ULLONG_MAX - d) / 10)
                saturated = 1;
            else
                v = v * 10 + d;
        }
        unsigned value = saturated ? UINT_MAX : (unsigned)v;
        if (!digits || value > 255 || *s != (part < 3 ? '.' : '\0'))
            return 0;
        out[part] = (unsigned char)value;
        s++;
    }
    return 1;
}

/* Can text be neither an IPv6 literal (it has no ':') nor what sscanf's %u
 * reads (digits, signs, dots, white space)? Then it is a name, cheaply. */
static int surely_a_name(const char *s)
{
    if (strchr(s, ':') || strchr(s, '%'))
        return 0;
    return s[strspn(s, "0123456789.+- \t\n\v\f\r")] != '\0';
}

int target_host_address(const char *host, target_address *out)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct in_addr a4;

    /* The common cases first: hosts are names or plain dotted quads. */
    if (host[strspn(host, "0123456789.")] == '\0') {
        unsigned char quad[4];
        memset(out, 0, sizeof *out);
        if (!dotted_decimal(host, quad))
            return 0;
        out->family = AF_INET;
        memcpy(out->addr, v4_mapped, sizeof v4_mapped);
        memcpy(out->addr + 12, quad, sizeof quad);
        return 1;
    }
    if (surely_a_name(host)) {
        memset(out, 0, sizeof *out);
        return 0;
    }

    /* In evutil_getaddrinfo_common_'s order: IPv6 (with a zone), then IPv4. */
    if (evutil_inet_pton_scope(AF_INET6, host, out->addr, &out->scope) == 1) {
        out->family = AF_INET6;
        return 1;
    }
    if (evutil_inet_pton(AF_INET, host, &a4) == 1) {
        out->family = AF_INET;
        out->scope = 0;
        memcpy(out->addr, v4_mapped, sizeof v4_mapped);
        memcpy(out->addr + 12, &a4, sizeof a4);
        return 1;
    }
    memset(out, 0, sizeof *out); /* a zone may have been read before the address failed */
    return 0;
}
