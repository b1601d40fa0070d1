/* config_load.c - anonproxy.json loading and validation. See config_load.h.
 *
 * Every JSON object in the file is described by a table of fields (key, parse
 * function, where the value goes). parse_fields() walks an object against its
 * table, so unknown keys are rejected in one place and adding a key is adding
 * one table row. Values are checked by a few typed getters that take the JSON
 * path only to name it in error messages.
 */
#include "conf/config_load.h"

#include <libgen.h>
#include <limits.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/geoip.h"
#include "core/util.h"
#include "egress/route.h"
#include "egress/upstream.h"
#include "front/kinds.h"
#include "http/policy.h"
#include "net/tls.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define MAX_WORKERS 256
#define MAX_TIMEOUT_SECONDS 86400
#define MAX_HOPS 8 /* a longer chain is a configuration mistake */

/* A repeated key would silently override; any top-level value is decoded so
 * that a non-object gets our "expected an object" message. */
#define LOAD_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

static const char *const reuse_names[] = {
    [REUSE_CLIENT] = "client",
    [REUSE_SHARED] = "shared",
    [REUSE_OFF] = "off",
};

/* Indexed by config.log_level. */
static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

/* Where error messages go, and the file name they start with. */
typedef struct parser {
    const char *name;
    char *err;
    size_t errlen;
    json_t *judge; /* the "judge" value, made a listener once "listen" is known */
} parser;

typedef struct field field;

/* Parses `v` found at `path` into `obj`, the struct the field table describes. */
typedef int parse_fn(parser *p, json_t *v, const char *path, const field *f, void *obj);

/* The fields of one JSON object. */
typedef struct field_table {
    const field *fields;
    size_t n;
} field_table;

#define FIELD_TABLE(a) (&(const field_table){a, ARRAY_LEN(a)})

struct field {
    const char *key;
    parse_fn *parse;
    size_t offset;            /* member of obj filled, for the generic parsers */
    long long lo, hi;         /* accepted range, for integers */
    const field_table *inner; /* a nested object's fields, for parse_object */
};

/* Writes "FILE: PATH: reason" and returns -1, so callers can `return fail(...)`. */
__attribute__((format(printf, 3, 4)))
static int fail(parser *p, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s: %s: %s", p->name, path[0] ? path : "top level", reason);
    return -1;
}

static char *dup_string(parser *p, const char *path, const char *s)
{
    char *copy = strdup(s);
    if (!copy)
        fail(p, path, "out of memory");
    return copy;
}

/* ---------------------------------------------------------- typed getters */

static int get_int(parser *p, json_t *v, const char *path, long long lo, long long hi,
                   long long *out)
{
    if (!json_is_integer(v))
        return fail(p, path, "expected an integer");
    *out = json_integer_value(v);
    if (*out < lo || *out > hi)
        return fail(p, path, "must be between %lld and %lld", lo, hi);
    return 0;
}

static int get_string(parser *p, json_t *v, const char *path, const char **out)
{
    if (!json_is_string(v))
        return fail(p, path, "expected a string");
    *out = json_string_value(v);
    return 0;
}

/* Returns the index of v's string in names[n], or -1. `what` names the kind
 * of value in the message, which lists the choices. */
static int get_choice(parser *p, json_t *v, const char *path, const char *what,
                      const char *const *names, size_t n)
{
    char expected[256] = "";
    const char *s = NULL;
    size_t used = 0;

    if (get_string(p, v, path, &s) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    for (size_t i = 0; i < n && used < sizeof expected; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        used += snprintf(expected + used, sizeof expected - used, "%s%s", sep, names[i]);
    }
    return fail(p, path, "unknown %s \"%s\" (expected %s)", what, s, expected);
}

/* Seconds in the file, milliseconds in memory. */
static int get_ms(parser *p, json_t *v, const char *path, unsigned *out)
{
    double s;

    if (!json_is_number(v))
        return fail(p, path, "expected a number of seconds");
    s = json_number_value(v);
    if (!(s > 0 && s <= MAX_TIMEOUT_SECONDS))
        return fail(p, path, "must be > 0 and <= %d seconds", MAX_TIMEOUT_SECONDS);
    *out = (unsigned)(s * 1000 + 0.5);
    /* A positive timeout must not round down to 0, which would mean "none". */
    if (*out == 0)
        *out = 1;
    return 0;
}

/* Walks object `v` against `fields`, calling each present key's parser. */
static int parse_fields(parser *p, json_t *v, const char *path, const field *fields, size_t nfields,
                        void *obj)
{
    const char *key;
    json_t *value;

    if (!json_is_object(v))
        return fail(p, path, "expected an object");
    json_object_foreach(v, key, value)
    {
        char child[PATH_LEN];
        const field *f = NULL;

        snprintf(child, sizeof child, "%s%s%s", path, path[0] ? "." : "", key);
        for (size_t i = 0; i < nfields && !f; i++)
            if (strcmp(key, fields[i].key) == 0)
                f = &fields[i];
        if (!f)
            return fail(p, child, "unknown key");
        if (f->parse(p, value, child, f, obj) < 0)
            return -1;
    }
    return 0;
}

/* A nested object, filled into the struct member at f->offset. */
static int parse_object(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    return parse_fields(p, v, path, f->inner->fields, f->inner->n, (char *)obj + f->offset);
}

/* path + suffix in buf (PATH_LEN bytes); longer paths are only cut in messages. */
static const char *subpath(char *buf, const char *path, const char *suffix)
{
    if (snprintf(buf, PATH_LEN, "%s%s", path, suffix) >= PATH_LEN)
        buf[PATH_LEN - 1] = '\0';
    return buf;
}

/* ------------------------------------------------------- generic parsers */

static int parse_size(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    long long n = 0;

    if (get_int(p, v, path, f->lo, f->hi, &n) < 0)
        return -1;
    *(size_t *)((char *)obj + f->offset) = (size_t)n;
    return 0;
}

static int parse_timeout(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    return get_ms(p, v, path, (unsigned *)((char *)obj + f->offset));
}

/* Copies a string into the char * member at f->offset (owned by the config). */
static int parse_owned_string(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    const char *text = NULL;
    char **slot = (char **)((char *)obj + f->offset);

    if (get_string(p, v, path, &text) < 0)
        return -1;
    if (!text[0])
        return fail(p, path, "must not be empty");
    free(*slot);
    *slot = dup_string(p, path, text);
    return *slot ? 0 : -1;
}

/* --------------------------------------------------------------- limits */

static const field limit_fields[] = {
    {"max_header_bytes", parse_size, offsetof(limits_config, max_header_bytes), 1024, 1048576, NULL},
    {"max_headers", parse_size, offsetof(limits_config, max_headers), 8, 10000, NULL},
    {"max_uri_bytes", parse_size, offsetof(limits_config, max_uri_bytes), 64, 1048576, NULL},
    {"max_line_bytes", parse_size, offsetof(limits_config, max_line_bytes), 64, 1048576, NULL},
    {"max_connections", parse_size, offsetof(limits_config, max_connections), 1, 1000000, NULL},
    {"buffer_bytes", parse_size, offsetof(limits_config, buffer_bytes), 4096, 67108864, NULL},
    {"max_udp_associations", parse_size, offsetof(limits_config, max_udp_associations), 0, 100000,
     NULL},
};

static int parse_limits(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    limits_config *l = (limits_config *)((char *)obj + f->offset);
    char child[PATH_LEN];

    if (parse_object(p, v, path, f, obj) < 0)
        return -1;
    /* A line longer than the whole head could never be accepted. */
    if (l->max_line_bytes > l->max_header_bytes) {
        subpath(child, path, ".max_line_bytes");
        return fail(p, child, "must not exceed max_header_bytes (%zu)", l->max_header_bytes);
    }
    return 0;
}

/* ------------------------------------------------------------- timeouts */

static const field timeout_fields[] = {
    {"connect", parse_timeout, offsetof(timeouts_config, connect_ms), 0, 0, NULL},
    {"header", parse_timeout, offsetof(timeouts_config, header_ms), 0, 0, NULL},
    {"idle", parse_timeout, offsetof(timeouts_config, idle_ms), 0, 0, NULL},
    {"io", parse_timeout, offsetof(timeouts_config, io_ms), 0, 0, NULL},
    {"tunnel_idle", parse_timeout, offsetof(timeouts_config, tunnel_idle_ms), 0, 0, NULL},
    {"shutdown", parse_timeout, offsetof(timeouts_config, shutdown_ms), 0, 0, NULL},
};

/* ------------------------------------------------------------------ dns */

/* A file path checked now, so that -t catches it rather than start-up. */
static int parse_readable_file(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    if (parse_owned_string(p, v, path, f, obj) < 0)
        return -1;
    const char *file = *(char **)((char *)obj + f->offset);
    if (access(file, R_OK) < 0)
        return fail(p, path, "cannot read %s: %s", file, strerror(errno));
    return 0;
}

static const field dns_fields[] = {
    {"resolv_conf", parse_readable_file, offsetof(dns_config, resolv_conf), 0, 0, NULL},
    {"hosts", parse_readable_file, offsetof(dns_config, hosts), 0, 0, NULL},
};

/* ---------------------------------------------------------------- exits */

static int get_country(parser *p, json_t *v, const char *path, char out[3])
{
    const char *s = NULL;

    if (get_string(p, v, path, &s) < 0)
        return -1;
    if (!country_code_parse(s, strlen(s), out))
        return fail(p, path, "\"%s\" is not a two-letter country code (e.g. \"DE\")", s);
    return 0;
}

static int parse_country(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    return get_country(p, v, path, (char *)obj + f->offset);
}

static int parse_bool(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    if (!json_is_boolean(v))
        return fail(p, path, "expected true or false");
    *(int *)((char *)obj + f->offset) = json_is_true(v);
    return 0;
}

static int parse_unsigned(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    long long n = 0;

    if (get_int(p, v, path, f->lo, f->hi, &n) < 0)
        return -1;
    *(unsigned *)((char *)obj + f->offset) = (unsigned)n;
    return 0;
}

/* Keeps the JSON value itself, for fields checked once their siblings are known. */
static int parse_json_ref(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    (void)p;
    (void)path;
    *(json_t **)((char *)obj + f->offset) = v;
    return 0;
}

/* One "upstreams" entry before it becomes an upstream. */
typedef struct upstream_entry {
    json_t *url, *chain, *name;
    char country[3];
    unsigned weight;
    char *ca_file;
} upstream_entry;

static const field upstream_fields[] = {
    {"url", parse_json_ref, offsetof(upstream_entry, url), 0, 0, NULL},
    {"chain", parse_json_ref, offsetof(upstream_entry, chain), 0, 0, NULL},
    {"name", parse_json_ref, offsetof(upstream_entry, name), 0, 0, NULL},
    {"country", parse_country, offsetof(upstream_entry, country), 0, 0, NULL},
    {"weight", parse_unsigned, offsetof(upstream_entry, weight), 1, 1000, NULL},
    {"ca_file", parse_readable_file, offsetof(upstream_entry, ca_file), 0, 0, NULL},
};

/* Appends an upstream with room for nhops hops; NULL when out of memory. */
static upstream *add_upstream(parser *p, config *cfg, const char *path, size_t nhops)
{
    upstream_set *set = cfg->upstreams;
    upstream *grown = realloc(set->items, (set->n + 1) * sizeof *grown);

    if (!grown) {
        fail(p, path, "out of memory");
        return NULL;
    }
    set->items = grown;
    upstream *u = &set->items[set->n];
    memset(u, 0, sizeof *u);
    u->hops = calloc(nhops, sizeof *u->hops);
    if (!u->hops) {
        fail(p, path, "out of memory");
        return NULL;
    }
    set->n++;
    u->nhops = nhops;
    return u;
}

/* The default name: the URLs without their credentials. */
static int name_upstream(parser *p, upstream *u, const char *path)
{
    char name[1024];
    size_t used = 0;

    name[0] = '\0';
    for (size_t i = 0; i < u->nhops && used < sizeof name; i++) {
        const hop *h = &u->hops[i];
        int v6 = strchr(h->host, ':') != NULL;
        used += (size_t)snprintf(name + used, sizeof name - used, "%s%s://%s%s%s:%u",
                                 i ? " -> " : "", upstream_proto_name(h->proto), v6 ? "[" : "",
                                 h->host, v6 ? "]" : "", h->port);
    }
    u->name = dup_string(p, path, name);
    return u->name ? 0 : -1;
}

static int parse_hop(parser *p, json_t *v, const char *path, const char *ca_file, hop *h)
{
    const char *url = NULL;
    char reason[512];

    if (get_string(p, v, path, &url) < 0)
        return -1;
    if (upstream_parse_hop(url, ca_file, h, reason, sizeof reason) < 0)
        return fail(p, path, "%s", reason);
    return 0;
}

static int parse_upstream(parser *p, config *cfg, json_t *v, const char *path)
{
    upstream_entry e;
    char child[PATH_LEN];
    const char *name = NULL;
    int rc = -1;

    memset(&e, 0, sizeof e);
    if (parse_fields(p, v, path, upstream_fields, ARRAY_LEN(upstream_fields), &e) < 0)
        goto out;
    if (!e.url == !e.chain) {
        fail(p, path, "needs exactly one of \"url\" and \"chain\"");
        goto out;
    }
    if (e.chain && (!json_is_array(e.chain) || json_array_size(e.chain) == 0 ||
                    json_array_size(e.chain) > MAX_HOPS)) {
        subpath(child, path, ".chain");
        fail(p, child, "expected an array of 1 to %d proxy URLs", MAX_HOPS);
        goto out;
    }
    if (e.name) {
        subpath(child, path, ".name");
        if (get_string(p, e.name, child, &name) < 0)
            goto out;
    }
    upstream *u = add_upstream(p, cfg, path, e.chain ? json_array_size(e.chain) : 1);
    if (!u)
        goto out;
    memcpy(u->configured_country, e.country, sizeof u->configured_country);
    u->weight = e.weight;
    for (size_t i = 0; i < u->nhops; i++) {
        char suffix[32];
        snprintf(suffix, sizeof suffix, ".chain[%zu]", i);
        subpath(child, path, e.chain ? suffix : ".url");
        if (parse_hop(p, e.chain ? json_array_get(e.chain, i) : e.url, child, e.ca_file,
                      &u->hops[i]) < 0)
            goto out;
    }
    rc = name ? ((u->name = dup_string(p, path, name)) ? 0 : -1) : name_upstream(p, u, path);
out:
    free(e.ca_file);
    return rc;
}

static int parse_upstreams(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    char item[PATH_LEN];
    size_t i;
    json_t *e;

    (void)f;
    if (!json_is_array(v))
        return fail(p, path, "expected an array");
    json_array_foreach(v, i, e)
    {
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        if (parse_upstream(p, obj, e, item) < 0)
            return -1;
    }
    return 0;
}

/* A proxy list file: one URL a line, blank lines and '#' comments skipped. */
static int parse_upstreams_file(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    const char *file = NULL;
    char line[2048], reason[512];
    int lineno = 0, rc = 0;

    (void)f;
    if (get_string(p, v, path, &file) < 0)
        return -1;
    FILE *fp = fopen(file, "r");
    if (!fp)
        return fail(p, path, "cannot read %s: %s", file, strerror(errno));
    while (rc == 0 && fgets(line, sizeof line, fp)) {
        char *s = line, *end;
        lineno++;
        while (isspace((unsigned char)*s))
            s++;
        end = s + strlen(s);
        while (end > s && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (!*s || *s == '#')
            continue;
        upstream *u = add_upstream(p, obj, path, 1);
        if (!u)
            rc = -1;
        else if (upstream_parse_hop(s, NULL, &u->hops[0], reason, sizeof reason) < 0)
            rc = fail(p, path, "%s:%d: %s", file, lineno, reason);
        else
            rc = name_upstream(p, u, path);
    }
    fclose(fp);
    return rc;
}

static const char *const strategy_names[] = {
    [STRATEGY_ROUND_ROBIN] = "round_robin",
    [STRATEGY_RANDOM] = "random",
    [STRATEGY_LEAST_LATENCY] = "least_latency",
    [STRATEGY_STICKY] = "sticky",
};

static int parse_strategy(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    int i = get_choice(p, v, path, f->key, strategy_names, ARRAY_LEN(strategy_names));

    if (i < 0)
        return -1;
    ((config *)obj)->upstreams->strategy = (strategy)i;
    return 0;
}

/* An IP address without a port into *ss (port 0). */
static int get_ip_address(parser *p, json_t *v, const char *path, struct sockaddr_storage *ss,
                          socklen_t *len)
{
    const char *text = NULL;
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    if (get_string(p, v, path, &text) < 0)
        return -1;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        *len = sizeof *in;
    } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        *len = sizeof *in6;
    } else {
        return fail(p, path, "\"%s\" is not an IP address", text);
    }
    return 0;
}

static int parse_outgoing(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    config *cfg = obj;

    (void)f;
    return get_ip_address(p, v, path, &cfg->outgoing, &cfg->outgoing_len);
}

/* One "routes" entry before it becomes a route_rule. */
typedef struct route_entry {
    json_t *match, *action, *country;
    char *mode;
} route_entry;

static const field route_fields[] = {
    {"match", parse_json_ref, offsetof(route_entry, match), 0, 0, NULL},
    {"action", parse_json_ref, offsetof(route_entry, action), 0, 0, NULL},
    {"country", parse_json_ref, offsetof(route_entry, country), 0, 0, NULL},
    {"mode", parse_owned_string, offsetof(route_entry, mode), 0, 0, NULL},
};

static int parse_route(parser *p, json_t *v, const char *path, route_rule *r)
{
    static const char *const actions[] = {"direct", "block", "upstream"};
    route_entry e;
    char child[PATH_LEN], reason[256];
    const char *match = NULL;
    int action = -1;

    memset(&e, 0, sizeof e);
    if (parse_fields(p, v, path, route_fields, ARRAY_LEN(route_fields), &e) < 0)
        goto fail;
    r->mode = e.mode;
    e.mode = NULL;
    subpath(child, path, ".match");
    if (!e.match) {
        fail(p, path, "missing \"match\"");
        goto fail;
    }
    if (get_string(p, e.match, child, &match) < 0)
        goto fail;
    if (route_parse_match(match, r, reason, sizeof reason) < 0) {
        fail(p, child, "%s", reason);
        goto fail;
    }
    if (!(r->match = dup_string(p, child, match)))
        goto fail;
    subpath(child, path, ".country");
    if (e.country && get_country(p, e.country, child, r->country) < 0)
        goto fail;
    subpath(child, path, ".action");
    if (e.action &&
        (action = get_choice(p, e.action, child, "action", actions, ARRAY_LEN(actions))) < 0)
        goto fail;
    if (action < 0)
        action = e.country ? ROUTE_UPSTREAM : -1;
    if (action < 0) {
        fail(p, path, "needs a \"country\" or an \"action\"");
        goto fail;
    }
    if (e.country && action != ROUTE_UPSTREAM) {
        fail(p, child, "\"%s\" cannot go with a country", actions[action]);
        goto fail;
    }
    r->action = action == 0 ? ROUTE_DIRECT : action == 1 ? ROUTE_BLOCK : ROUTE_UPSTREAM;
    return 0;
fail:
    free(e.mode);
    return -1;
}

static int parse_routes(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    config *cfg = obj;
    char item[PATH_LEN];

    (void)f;
    if (!json_is_array(v))
        return fail(p, path, "expected an array");
    /* Counted before filling, so config_free() cleans up a partial array. */
    cfg->nroutes = json_array_size(v);
    cfg->routes = calloc(cfg->nroutes + 1, sizeof *cfg->routes);
    if (!cfg->routes)
        return fail(p, path, "out of memory");
    for (size_t i = 0; i < cfg->nroutes; i++) {
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        if (parse_route(p, json_array_get(v, i), item, &cfg->routes[i]) < 0)
            return -1;
    }
    return 0;
}

/* judge_url must be an http:// URL the health checker can request. */
static int parse_judge_url(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    target t;

    if (parse_owned_string(p, v, path, f, obj) < 0)
        return -1;
    const char *url = *(char **)((char *)obj + f->offset);
    if (target_parse_absolute(url, strlen(url), &t) < 0 || t.form != TARGET_HTTP)
        return fail(p, path, "\"%s\" is not an http:// URL", url);
    return 0;
}

static const field health_fields[] = {
    {"interval", parse_timeout, offsetof(health_config, interval_ms), 0, 0, NULL},
    {"timeout", parse_timeout, offsetof(health_config, timeout_ms), 0, 0, NULL},
    {"rise", parse_unsigned, offsetof(health_config, rise), 1, 100, NULL},
    {"fall", parse_unsigned, offsetof(health_config, fall), 1, 100, NULL},
    {"judge_url", parse_judge_url, offsetof(health_config, judge_url), 0, 0, NULL},
};

/* Checked now, made a listener of kind "judge" by add_judge_listener. */
static int parse_judge(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    struct sockaddr_storage addr;
    socklen_t len;
    const char *text = NULL;
    char reason[256];

    (void)f;
    (void)obj;
    if (get_string(p, v, path, &text) < 0)
        return -1;
    if (config_parse_address(text, &addr, &len, reason, sizeof reason) < 0)
        return fail(p, path, "%s", reason);
    p->judge = v;
    return 0;
}

/* --------------------------------------------------------------- listen */

static int set_listen_address(parser *p, listen_config *l, const char *path, const char *text)
{
    char reason[256];

    if (config_parse_address(text, &l->addr, &l->addr_len, reason, sizeof reason) < 0)
        return fail(p, path, "%s", reason);
    l->address = dup_string(p, path, text);
    return l->address ? 0 : -1;
}

static int parse_listen_address(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    const char *text = NULL;

    (void)f;
    if (get_string(p, v, path, &text) < 0)
        return -1;
    return set_listen_address(p, obj, path, text);
}

static int parse_listen_kind(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    const char *names[LISTENER_KINDS_MAX];
    int i;

    for (size_t k = 0; k < nlistener_kinds; k++)
        names[k] = listener_kinds[k]->name;
    if ((i = get_choice(p, v, path, f->key, names, nlistener_kinds)) < 0)
        return -1;
    ((listen_config *)obj)->kind = listener_kinds[i];
    return 0;
}

/* An IP address (no port): where SOCKS5 clients are told to send UDP. */
static int parse_udp_address(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    listen_config *l = obj;

    (void)f;
    return get_ip_address(p, v, path, &l->udp_addr, &l->udp_addr_len);
}

/* A list of address ranges, "10.0.0.0/8" or a bare address. */
static int parse_proxy_from(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    listen_config *l = obj;
    char item[PATH_LEN + 32];
    size_t i;
    json_t *e;

    (void)f;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(p, path, "expected a non-empty array of addresses or CIDR ranges");
    free(l->proxy_from);
    l->nproxy_from = 0;
    if (!(l->proxy_from = calloc(json_array_size(v), sizeof *l->proxy_from)))
        return fail(p, path, "out of memory");
    json_array_foreach(v, i, e) {
        const char *text = NULL;
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        if (get_string(p, e, item, &text) < 0)
            return -1;
        if (cidr_parse(text, &l->proxy_from[l->nproxy_from]) < 0)
            return fail(p, item, "\"%s\" is not an address or CIDR range", text);
        l->nproxy_from++;
    }
    return 0;
}

static const field listen_tls_fields[] = {
    {"cert", parse_readable_file, offsetof(listen_config, tls_cert), 0, 0, NULL},
    {"key", parse_readable_file, offsetof(listen_config, tls_key), 0, 0, NULL},
};

static const field listen_fields[] = {
    {"address", parse_listen_address, 0, 0, 0, NULL},
    {"protocol", parse_listen_kind, 0, 0, 0, NULL},
    {"mode", parse_owned_string, offsetof(listen_config, mode), 0, 0, NULL},
    {"country", parse_country, offsetof(listen_config, country), 0, 0, NULL},
    {"tls", parse_object, 0, 0, 0, FIELD_TABLE(listen_tls_fields)},
    {"proxy_protocol", parse_bool, offsetof(listen_config, proxy_protocol), 0, 0, NULL},
    {"udp_address", parse_udp_address, 0, 0, 0, NULL},
    {"proxy_protocol_from", parse_proxy_from, 0, 0, 0, NULL},
};

/* Keys every listener takes, whatever its protocol. */
static const char *const listen_common_keys[] = {"address", "protocol", "proxy_protocol",
                                                 "proxy_protocol_from", NULL};

/* Without a list, only loopback peers may send a PROXY header. */
static int load_proxy_protocol(parser *p, listen_config *l, const char *item)
{
    char path[PATH_LEN + 32];

    if (l->proxy_from && !l->proxy_protocol) {
        snprintf(path, sizeof path, "%s.proxy_protocol_from", item);
        return fail(p, path, "needs \"proxy_protocol\": true");
    }
    if (!l->proxy_protocol || l->proxy_from)
        return 0;
    static const char *const loopback[] = {"127.0.0.0/8", "::1/128"};
    if (!(l->proxy_from = calloc(ARRAY_LEN(loopback), sizeof *l->proxy_from)))
        return fail(p, item, "out of memory");
    for (size_t i = 0; i < ARRAY_LEN(loopback); i++)
        cidr_parse(loopback[i], &l->proxy_from[l->nproxy_from++]);
    return 0;
}

/* "tls": both files, and a context built from them now, so that -t and a
 * reload catch a bad certificate before a client does. */
static int load_listen_tls(parser *p, listen_config *l, const char *item)
{
    char path[PATH_LEN + 8], reason[512];

    if (!l->tls_cert && !l->tls_key)
        return 0;
    snprintf(path, sizeof path, "%s.tls", item);
    if (!l->tls_cert || !l->tls_key)
        return fail(p, path, "needs both \"cert\" and \"key\"");
    l->tls = tls_server_ctx_new(l->tls_cert, l->tls_key, reason, sizeof reason);
    return l->tls ? 0 : fail(p, path, "%s", reason);
}

static int kind_takes(const listener_kind *kind, const char *key)
{
    for (const char *const *k = kind->keys; *k; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    return 0;
}

/* Each kind takes only its own keys: a "mode" on a judge would be ignored. */
static int check_kind_keys(parser *p, json_t *v, const char *item, const listen_config *l)
{
    const char *key;
    json_t *value;
    char child[2 * PATH_LEN];

    (void)value;
    json_object_foreach(v, key, value)
    {
        int common = 0;
        for (const char *const *k = listen_common_keys; *k && !common; k++)
            common = strcmp(*k, key) == 0;
        if (common || kind_takes(l->kind, key))
            continue;
        snprintf(child, sizeof child, "%.*s.%.*s", PATH_LEN, item, PATH_LEN - 1, key);
        return fail(p, child, "not a key of a \"%s\" listener", l->kind->name);
    }
    return 0;
}

/* Fails when cfg->listen[i] repeats the address of an earlier listener. */
static int check_unique_address(parser *p, const config *cfg, size_t i, const char *path)
{
    const listen_config *l = &cfg->listen[i];

    for (size_t j = 0; j < i; j++)
        if (l->addr_len == cfg->listen[j].addr_len &&
            memcmp(&l->addr, &cfg->listen[j].addr, l->addr_len) == 0)
            return fail(p, path, "duplicate of listen[%zu]", j);
    return 0;
}

static int parse_listen(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    config *cfg = obj;
    char item[PATH_LEN], child[PATH_LEN];

    (void)f;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(p, path, "expected a non-empty array");
    /* Counted before filling, so config_free() cleans up a partial array. */
    cfg->nlisten = json_array_size(v);
    cfg->listen = calloc(cfg->nlisten, sizeof *cfg->listen);
    if (!cfg->listen)
        return fail(p, path, "out of memory");
    for (size_t i = 0; i < cfg->nlisten; i++) {
        listen_config *l = &cfg->listen[i];
        json_t *entry = json_array_get(v, i);

        l->kind = listener_kinds[0];
        snprintf(item, sizeof item, "%s[%zu]", path, i);
        if (parse_fields(p, entry, item, listen_fields, ARRAY_LEN(listen_fields), l) < 0)
            return -1;
        if (!l->address)
            return fail(p, item, "missing \"address\"");
        if (check_kind_keys(p, entry, item, l) < 0 || load_listen_tls(p, l, item) < 0 ||
            load_proxy_protocol(p, l, item) < 0)
            return -1;
        snprintf(child, sizeof child, "%s[%zu].address", path, i);
        if (check_unique_address(p, cfg, i, child) < 0)
            return -1;
    }
    return 0;
}

/* The default listener when "listen" is absent. */
static int add_default_listener(parser *p, config *cfg)
{
    cfg->listen = calloc(1, sizeof *cfg->listen);
    if (!cfg->listen)
        return fail(p, "listen", "out of memory");
    cfg->nlisten = 1;
    cfg->listen[0].kind = listener_kinds[0];
    return set_listen_address(p, cfg->listen, "listen", DEFAULT_LISTEN);
}

/* "judge": ADDRESS becomes the last listener, of kind "judge". */
static int add_judge_listener(parser *p, config *cfg)
{
    const listener_kind *judge = NULL;
    listen_config *grown;

    if (!p->judge)
        return 0;
    for (size_t k = 0; k < nlistener_kinds; k++)
        if (strcmp(listener_kinds[k]->name, "judge") == 0)
            judge = listener_kinds[k];
    grown = realloc(cfg->listen, (cfg->nlisten + 1) * sizeof *grown);
    if (!grown)
        return fail(p, "judge", "out of memory");
    cfg->listen = grown;
    memset(&cfg->listen[cfg->nlisten], 0, sizeof *grown);
    cfg->listen[cfg->nlisten++].kind = judge;
    if (set_listen_address(p, &cfg->listen[cfg->nlisten - 1], "judge",
                           json_string_value(p->judge)) < 0)
        return -1;
    return check_unique_address(p, cfg, cfg->nlisten - 1, "judge");
}

/* -------------------------------------------------------- connect_ports */

/* Parses "lo-hi" with 1 <= lo <= hi <= 65535. */
static int parse_port_range(const char *s, port_range *r)
{
    unsigned long lo, hi;
    char *end;

    /* strtoul would accept signs and spaces; ranges are digits only. */
    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    lo = strtoul(s, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9')
        return -1;
    hi = strtoul(end + 1, &end, 10);
    if (*end || errno || lo < 1 || lo > hi || hi > 65535)
        return -1;
    r->lo = (unsigned short)lo;
    r->hi = (unsigned short)hi;
    return 0;
}

static int parse_connect_ports(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    config *cfg = obj;
    char item[PATH_LEN];
    size_t i;
    json_t *e;

    (void)f;
    if (!json_is_array(v))
        return fail(p, path, "expected an array");
    /* Never NULL, even when empty: NULL means "all ports allowed". */
    cfg->connect_ports = calloc(json_array_size(v) + 1, sizeof *cfg->connect_ports);
    if (!cfg->connect_ports)
        return fail(p, path, "out of memory");
    json_array_foreach(v, i, e)
    {
        port_range *r = &cfg->connect_ports[i];
        long long port = 0;

        snprintf(item, sizeof item, "%s[%zu]", path, i);
        if (json_is_string(e)) {
            if (parse_port_range(json_string_value(e), r) < 0)
                return fail(p, item, "bad port range \"%s\"", json_string_value(e));
        } else {
            if (get_int(p, e, item, 1, 65535, &port) < 0)
                return -1;
            r->lo = r->hi = (unsigned short)port;
        }
        cfg->nconnect_ports++;
    }
    return 0;
}

/* ------------------------------------------------------------ top level */

static int parse_reuse(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    int i = get_choice(p, v, path, f->key, reuse_names, ARRAY_LEN(reuse_names));

    if (i < 0)
        return -1;
    ((config *)obj)->reuse = (upstream_reuse)i;
    return 0;
}

static int parse_log_level(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    int i = get_choice(p, v, path, f->key, log_level_names, ARRAY_LEN(log_level_names));

    if (i < 0)
        return -1;
    ((config *)obj)->log_level = i;
    return 0;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    /* Capped so the default obeys the same bound as an explicit value. */
    return n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : (unsigned)n;
}

static int parse_workers(parser *p, json_t *v, const char *path, const field *f, void *obj)
{
    long long n = 0;

    if (get_int(p, v, path, f->lo, f->hi, &n) < 0)
        return -1;
    ((config *)obj)->workers = n == 0 ? online_cpus() : (unsigned)n;
    return 0;
}

static const field config_fields[] = {
    {"listen", parse_listen, 0, 0, 0, NULL},
    {"mode", parse_owned_string, offsetof(config, mode), 0, 0, NULL},
    {"policies", parse_owned_string, offsetof(config, policies_dir), 0, 0, NULL},
    {"proxy_name", parse_owned_string, offsetof(config, proxy_name), 0, 0, NULL},
    {"workers", parse_workers, 0, 0, MAX_WORKERS, NULL}, /* 0 = one per CPU */
    {"upstream_reuse", parse_reuse, 0, 0, 0, NULL},
    {"connect_ports", parse_connect_ports, 0, 0, 0, NULL},
    {"log_level", parse_log_level, 0, 0, 0, NULL},
    {"limits", parse_limits, offsetof(config, limits), 0, 0, FIELD_TABLE(limit_fields)},
    {"timeouts", parse_object, offsetof(config, timeouts), 0, 0, FIELD_TABLE(timeout_fields)},
    {"dns", parse_object, offsetof(config, dns), 0, 0, FIELD_TABLE(dns_fields)},
    {"upstreams", parse_upstreams, 0, 0, 0, NULL},
    {"upstreams_file", parse_upstreams_file, 0, 0, 0, NULL},
    {"strategy", parse_strategy, 0, 0, 0, NULL},
    {"geoip", parse_owned_string, offsetof(config, geoip_path), 0, 0, NULL},
    {"outgoing_address", parse_outgoing, 0, 0, 0, NULL},
    {"routes", parse_routes, 0, 0, 0, NULL},
    {"country_header", parse_bool, offsetof(config, country_header), 0, 0, NULL},
    {"failover_tries", parse_unsigned, offsetof(config, failover_tries), 1, 16, NULL},
    {"health", parse_object, offsetof(config, health), 0, 0, FIELD_TABLE(health_fields)},
    {"judge", parse_judge, 0, 0, 0, NULL},
};

static void set_defaults(config *cfg)
{
    cfg->workers = online_cpus();
    cfg->reuse = REUSE_CLIENT;
    cfg->log_level = 2;
    cfg->limits = (limits_config){
        .max_header_bytes = 65536,
        .max_headers = 100,
        .max_uri_bytes = 8192,
        .max_line_bytes = 16384,
        .max_connections = 16384,
        .buffer_bytes = 1048576,
        .max_udp_associations = 1024,
    };
    cfg->timeouts = (timeouts_config){
        .connect_ms = 10000,
        .header_ms = 15000,
        .idle_ms = 60000,
        .io_ms = 60000,
        .tunnel_idle_ms = 300000,
        .shutdown_ms = 10000,
    };
    cfg->failover_tries = 3;
    cfg->health = (health_config){
        .interval_ms = 30000,
        .timeout_ms = 5000,
        .rise = 2,
        .fall = 2,
    };
}

/* Joins a directory and a relative path into a new string (NULL when out of memory). */
static char *join_path(const char *dir, const char *rel)
{
    size_t len = strlen(dir) + 1 + strlen(rel) + 1;
    char *out = malloc(len);
    if (out)
        snprintf(out, len, "%s/%s", dir, rel);
    return out;
}

/* The first existing policies folder of: beside the config file, beside the
 * binary's folder (a build tree: build/../policies), and the installed
 * share/anonproxy/policies. Falls back to the first, for the error message. */
static char *default_policies_dir(const char *config_name)
{
    char here[PATH_MAX], bin_dir[PATH_MAX], *candidates[3] = {NULL, NULL, NULL}, *found = NULL;

    snprintf(here, sizeof here, "%s", config_name);
    candidates[0] = join_path(dirname(here), "policies");
    if (exe_dir(bin_dir, sizeof bin_dir) == 0) {
        candidates[1] = join_path(bin_dir, "../policies");
        candidates[2] = join_path(bin_dir, "../share/anonproxy/policies");
    }
    for (size_t i = 0; i < ARRAY_LEN(candidates) && !found; i++)
        if (candidates[i] && access(candidates[i], R_OK | X_OK) == 0)
            found = candidates[i];
    if (!found)
        found = candidates[0];
    for (size_t i = 0; i < ARRAY_LEN(candidates); i++)
        if (candidates[i] != found)
            free(candidates[i]);
    return found;
}

/* Defaults that depend on where the files are, or are strings to own. */
static int set_default_strings(parser *p, config *cfg, const char *name)
{
    if (!cfg->mode && !(cfg->mode = dup_string(p, "mode", "elite")))
        return -1;
    if (!cfg->proxy_name && !(cfg->proxy_name = dup_string(p, "proxy_name", "proxy")))
        return -1;
    if (!cfg->policies_dir && !(cfg->policies_dir = default_policies_dir(name)))
        return fail(p, "policies", "out of memory");
    return 0;
}

/* Returns the loaded policy called `name`, loading it on first use. */
static const policy *use_policy(parser *p, config *cfg, const char *path, const char *name)
{
    char reason[768];
    policy *pol, **grown;

    for (size_t i = 0; i < cfg->npolicies; i++)
        if (strcmp(policy_name(cfg->policies[i]), name) == 0)
            return cfg->policies[i];
    pol = policy_load(cfg->policies_dir, name, reason, sizeof reason);
    if (!pol) {
        fail(p, path, "%s", reason);
        return NULL;
    }
    grown = realloc(cfg->policies, (cfg->npolicies + 1) * sizeof *grown);
    if (!grown) {
        policy_free(pol);
        fail(p, path, "out of memory");
        return NULL;
    }
    cfg->policies = grown;
    cfg->policies[cfg->npolicies++] = pol;
    return pol;
}

/* Every listener of a kind with modes gets the policy of its mode, or of
 * the global mode, which is loaded when there is such a listener. */
static int load_policies(parser *p, config *cfg)
{
    const policy *global = NULL;
    char path[PATH_LEN];

    for (size_t i = 0; i < cfg->nlisten && !global; i++)
        if (kind_takes(cfg->listen[i].kind, "mode") &&
            !(global = use_policy(p, cfg, "mode", cfg->mode)))
            return -1;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        listen_config *l = &cfg->listen[i];
        if (!kind_takes(l->kind, "mode"))
            continue;
        snprintf(path, sizeof path, "listen[%zu].mode", i);
        l->policy = l->mode ? use_policy(p, cfg, path, l->mode) : global;
        if (!l->policy)
            return -1;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        route_rule *r = &cfg->routes[i];
        snprintf(path, sizeof path, "routes[%zu].mode", i);
        if (r->mode && !(r->policy = use_policy(p, cfg, path, r->mode)))
            return -1;
    }
    return 0;
}

/* The country database: an explicit "geoip" must open; the default (the
 * database `make geo` fetches, beside the config or the build tree) is
 * optional, and without it exits have only their configured countries. */
static int open_geoip(parser *p, config *cfg, const char *name)
{
    char reason[512];

    if (!cfg->geoip_path) {
        char here[PATH_MAX], bin_dir[PATH_MAX];
        snprintf(here, sizeof here, "%s", name);
        cfg->geoip_path = join_path(dirname(here), GEOIP_DEFAULT_DB);
        if (cfg->geoip_path && access(cfg->geoip_path, R_OK) != 0 &&
            exe_dir(bin_dir, sizeof bin_dir) == 0) {
            free(cfg->geoip_path);
            cfg->geoip_path = join_path(bin_dir, "../" GEOIP_DEFAULT_DB);
        }
        if (!cfg->geoip_path)
            return fail(p, "geoip", "out of memory");
        if (access(cfg->geoip_path, R_OK) != 0)
            return 0;
    }
    cfg->geo = geoip_open(cfg->geoip_path, reason, sizeof reason);
    return cfg->geo ? 0 : fail(p, "geoip", "%s", reason);
}

static int init_upstreams(parser *p, config *cfg)
{
    for (size_t i = 0; i < cfg->upstreams->n; i++)
        if (upstream_init(&cfg->upstreams->items[i], cfg->geo) < 0)
            return fail(p, "upstreams", "cannot initialise upstream %zu", i);
    return 0;
}

/* Shared tail of config_load() and config_parse(); takes ownership of root. */
static int load_json(json_t *root, const json_error_t *jerr, const char *name, config *cfg,
                     char *err, size_t errlen)
{
    parser p = {name, err, errlen, NULL};
    char where[64];
    int rc = -1;

    memset(cfg, 0, sizeof *cfg);
    if (!root) {
        snprintf(where, sizeof where, "line %d, column %d", jerr->line, jerr->column);
        return fail(&p, where, "%s", jerr->text);
    }
    set_defaults(cfg);
    if ((cfg->path = dup_string(&p, "", name)) == NULL)
        goto out;
    if (!(cfg->upstreams = calloc(1, sizeof *cfg->upstreams))) {
        fail(&p, "upstreams", "out of memory");
        goto out;
    }
    if (parse_fields(&p, root, "", config_fields, ARRAY_LEN(config_fields), cfg) < 0)
        goto out;
    if (!cfg->listen && add_default_listener(&p, cfg) < 0)
        goto out;
    if (add_judge_listener(&p, cfg) < 0)
        goto out;
    if (set_default_strings(&p, cfg, name) < 0 || load_policies(&p, cfg) < 0 ||
        open_geoip(&p, cfg, name) < 0 || init_upstreams(&p, cfg) < 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    if (rc < 0)
        config_free(cfg);
    return rc;
}

/* ------------------------------------------------------------ public API */

int config_load(const char *path, config *cfg, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    FILE *fp = fopen(path, "r");

    if (!fp) {
        memset(cfg, 0, sizeof *cfg);
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    root = json_loadf(fp, LOAD_FLAGS, &jerr);
    fclose(fp);
    return load_json(root, &jerr, path, cfg, err, errlen);
}

int config_load_or_report(const char *path, config *cfg)
{
    char err[1024];

    if (config_load(path, cfg, err, sizeof err) == 0)
        return 0;
    fprintf(stderr, "%s\n", err);
    return -1;
}

int config_parse(const char *json_text, const char *name, config *cfg, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(json_text, LOAD_FLAGS, &jerr);

    return load_json(root, &jerr, name, cfg, err, errlen);
}

void config_free(config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nlisten; i++) {
        free(cfg->listen[i].address);
        free(cfg->listen[i].mode);
        free(cfg->listen[i].tls_cert);
        free(cfg->listen[i].tls_key);
        tls_ctx_free(cfg->listen[i].tls);
        free(cfg->listen[i].proxy_from);
    }
    for (size_t i = 0; i < cfg->npolicies; i++)
        policy_free(cfg->policies[i]);
    free(cfg->policies);
    free(cfg->mode);
    free(cfg->policies_dir);
    free(cfg->proxy_name);
    if (cfg->upstreams) {
        upstream_set_free(cfg->upstreams);
        free(cfg->upstreams);
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].match);
        free(cfg->routes[i].mode);
    }
    free(cfg->routes);
    geoip_close(cfg->geo);
    free(cfg->geoip_path);
    free(cfg->health.judge_url);
    free(cfg->listen);
    free(cfg->connect_ports);
    free(cfg->path);
    free(cfg->dns.resolv_conf);
    free(cfg->dns.hosts);
    memset(cfg, 0, sizeof *cfg);
}
