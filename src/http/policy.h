/* policy.h - anonymity policies: which header fields pass, change or appear.
 *
 * A policy is a JSON file (policies/NAME.json) with rules for requests
 * (toward the origin) and for responses (toward the client):
 *
 *   {
 *     "description": "free text",
 *     "extend": "anonymous",                       optional: start from that policy's rules
 *     "request": {
 *       "strip":  ["Via", "X-Forwarded-*"],        names, case-insensitive; a trailing "*" is a prefix wildcard
 *       "set":    {"Via": "1.1 $proxy_name"},      replace the value (first occurrence, in place; later duplicates removed), or add at the end
 *       "add":    {"X-Note": "hello"},             add a field at the end, whatever exists
 *       "append": {"X-Forwarded-For": "$client_ip"},  list-append to the first occurrence ("a, b"), or add at the end
 *       "allow_only": ["Host", "Accept", "..."],   optional strict allow-list: every other field is dropped
 *       "referer": "origin-when-cross-site"        optional: "keep" (default) or "origin-when-cross-site"
 *     },
 *     "response": { same rule kinds but "referer" }
 *   }
 *
 * Values may use variables: $client_ip, $client_port, $proxy_name, $host
 * (the request's target host), and $$ for a literal dollar sign.
 * With "extend", the child's lists are added to the parent's, the child's
 * set/add/append entries are added (a child "set" of the same name replaces
 * the parent's), and a child allow_only replaces the parent's.
 * Order of application for each field: allow_only, then strip, then set /
 * append (which act in place of the first occurrence). Fields no rule touches
 * are written byte for byte (f->line) in received order.
 *
 * Host, Content-Length and Transfer-Encoding frame or address the message:
 * no rule may name them (loading fails), and allow_only always admits them.
 */
#ifndef ANONPROXY_POLICY_H
#define ANONPROXY_POLICY_H

#include <stddef.h>

#include "http/http_parser.h"

struct evbuffer;

typedef struct policy policy;

typedef enum policy_side {
    POLICY_REQUEST,
    POLICY_RESPONSE,
} policy_side;

/* What variables expand to for one message. NULL members expand to "". */
typedef struct policy_vars {
    const char *client_ip;
    const char *client_port;
    const char *proxy_name;
    const char *host;
} policy_vars;

/* Loads policy `name` from dir/NAME.json, following "extend" (also in dir;
 * a cycle is an error). On failure returns NULL and writes
 * "FILE: JSON.PATH: reason" to err, e.g.
 *   policies/elite.json: request.strip[2]: expected a string */
policy *policy_load(const char *dir, const char *name, char *err, size_t errlen);

void policy_free(policy *p);

/* The policy's name (its file name without .json). */
const char *policy_name(const policy *p);

/* What the protocol layer does with a field the policy lets through. */
typedef enum field_fate {
    FIELD_VERBATIM,   /* write f->line unchanged */
    FIELD_DROP,       /* hop-by-hop: never forwarded */
    FIELD_WRITTEN,    /* the callback wrote its own version to out */
} field_fate;

typedef field_fate (*field_filter)(const http_field *f, struct evbuffer *out, void *arg);

/* Writes the header fields of one message to out (without the start line
 * and without the final empty line), applying the rules of `side`. Each field
 * the policy lets through (unchanged) is first offered to `filter` (may be
 * NULL: every field verbatim), which handles hop-by-hop fields and fields
 * the protocol rewrites. Fields added by set/add/append are not offered to
 * the filter. Allocation-free on the hot path. */
void policy_write_fields(const policy *p, policy_side side, const http_field *fields, size_t n,
                         field_filter filter, void *filter_arg, const policy_vars *vars,
                         struct evbuffer *out);

/* Is a field with this name removed (strip or allow_only) on `side`? For the
 * judge and tests: a name a policy strips must never reach the origin. */
int policy_strips(const policy *p, policy_side side, const char *name, size_t name_len);

#endif
