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

/* The origin-form to send for t->path: "/" prepended when the path is empty
 * or only a query (RFC 9112 3.2.1): returns "/" or "", to write before t->path. */
const char *target_origin_prefix(const target *t);

#endif
