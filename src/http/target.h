/* target.h - the request-target of a forward proxy request (RFC 9112 3.2).
 *
 * A forward proxy receives absolute-form targets ("http://host:port/path?q")
 * and, for CONNECT, authority-form ("host:port"). This module splits them
 * without allocating; results point into the caller's string.
 */
#ifndef ANONPROXY_TARGET_H
#define ANONPROXY_TARGET_H

#include <stddef.h>

/* Longest host name accepted (DNS limit). */
#define TARGET_MAX_HOST 253

typedef enum target_form {
    TARGET_HTTP,       /* absolute-form with the http scheme */
    TARGET_HTTPS,      /* absolute-form with the https scheme: clients must use CONNECT */
    TARGET_ORIGIN,     /* origin-form "/path": a request meant for an origin server, not a proxy */
    TARGET_OTHER,      /* asterisk-form, other schemes, or unparseable */
} target_form;

typedef struct target {
    target_form form;
    const char *authority;  /* host[:port] exactly as written, without userinfo */
    size_t authority_len;
    char host[TARGET_MAX_HOST + 1]; /* lowercased, brackets removed from IPv6, NUL-terminated */
    int host_is_ipv6;
    unsigned port;
    const char *path;       /* path and query as written; may be empty or start with '?' */
    size_t path_len;
} target;

/* Splits an absolute-form request-target. Returns 0 with t->form set (only
 * TARGET_HTTP has every field filled in), or -1 when an http:// target is
 * malformed (bad host or port, fragment, control bytes). */
int target_parse_absolute(const char *s, size_t len, target *t);

/* Splits a CONNECT authority-form target "host:port" (port required).
 * Returns 0, or -1 when malformed. */
int target_parse_authority(const char *s, size_t len, target *t);

/* A host read as an address literal, by target_host_address. */
typedef struct target_address {
    int family;              /* AF_INET or AF_INET6 */
    unsigned char addr[16];  /* IPv4 in its v4-mapped form, so that one
                              * comparison serves both families */
    unsigned scope;          /* IPv6 zone index ("fe80::1%eth0"), else 0 */
} target_address;

/* Is host (NUL-terminated, e.g. t->host) an address literal, and which
 * address? Returns 1 and fills *out, or 0 (*out zeroed) when host is a name.
 *
 * This is the one answer to that question: routing (route.c) matches the
 * address it gives and the dialer (dial.c) connects to that same address,
 * so that no spelling of a host can reach an address the routes never saw.
 * It is libevent's own reading, the one evdns_getaddrinfo applies before
 * it resolves anything (evutil_inet_pton_scope for IPv6, then
 * evutil_inet_pton for IPv4), and it is laxer than inet_pton(3):
 *   - each IPv4 part is read by sscanf "%u": always in decimal, whatever
 *     its leading zeros ("010.0.0.1" and "0010.0.0.01" are 10.0.0.1; never
 *     octal), with a sign ("10.-0.0.1" is 10.0.0.1) and modulo 2^32
 *     ("4294967306.0.0.1" is 10.0.0.1); the same inside IPv6
 *     ("::ffff:010.0.0.1" is ::ffff:10.0.0.1);
 *   - an IPv6 literal may end in one ':' ("1::2:" is 1::2) and carry a
 *     zone, a name or an index after '%' (target.c refuses '%' in hosts);
 *   - fewer than four IPv4 parts ("10.1"), hexadecimal ("0x0a.0.0.1"), one
 *     number ("167772161") or a trailing dot ("10.0.0.1.") make a name: the
 *     dialer resolves it through DNS, and routes match it as a name.
 * Where stacks disagree, leading zeros above all (inet_aton(3) and glibc's
 * getaddrinfo read "010.0.0.1" as the octal 8.0.0.1), routing and dialling
 * here read alike: a route of 10.0.0.0/8 covers "010.0.0.1", the address
 * that is dialled. Allocates only for a zone (libevent copies the text). */
int target_host_address(const char *host, target_address *out);

/* The origin-form to send for t->path: "/" prepended when the path is empty
 * or only a query (RFC 9112 3.2.1): returns "/" or "", to write before t->path. */
const char *target_origin_prefix(const target *t);

#endif
