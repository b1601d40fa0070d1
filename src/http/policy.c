/* policy.c - anonymity policies. See policy.h.
 *
 * Loading does the work so that applying a policy to a message is cheap.
 * For each side, every name the rules mention exactly, plus the three framing
 * names and Referer, goes into one small open-addressing hash table keyed by
 * the lowercased name. A slot holds all the rules say about that name: flags
 * (stripped, allowed, framing, referer rule) and the index of its set or
 * append rule, with the wildcards that match the name folded in. So a field
 * costs one hash of its name and usually one probe; only names the table
 * does not know are tried against the (few) prefix wildcards.
 *
 * Values are split at load into literal pieces and variables, so writing a
 * field is a handful of evbuffer_add() calls and never allocates.
 */
#include "http/policy.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/util.h"
#include "http/http_chars.h"

#define MAX_CHAIN 8          /* policies in one extend chain, the loaded one included */
#define MAX_VALUE_RULES 64   /* set + add + append per side: one bit each in a uint64_t */
#define FILE_LEN 4096

/* What a name means to one side: the flags of a slot. */
enum {
    M_STRIP = 1 << 0,
    M_ALLOW = 1 << 1,     /* listed in allow_only */
    M_FRAMING = 1 << 2,   /* Host, Content-Length, Transfer-Encoding: never removed */
    M_REFERER = 1 << 3,   /* Referer, under "origin-when-cross-site" */
};

/* Lowercase, as the table stores them. */
static const char *const framing_names[] = { "host", "content-length", "transfer-encoding" };

typedef enum var_id { VAR_NONE, VAR_CLIENT_IP, VAR_CLIENT_PORT, VAR_PROXY_NAME, VAR_HOST } var_id;

static const char *const var_names[] = {
    [VAR_CLIENT_IP] = "client_ip",
    [VAR_CLIENT_PORT] = "client_port",
    [VAR_PROXY_NAME] = "proxy_name",
    [VAR_HOST] = "host",
};

/* A run of literal bytes (var == VAR_NONE) or a variable. */
typedef struct piece {
    var_id var;
    const char *text;   /* into value_rule.value */
    size_t len;
} piece;

typedef enum rule_kind { RULE_SET, RULE_ADD, RULE_APPEND } rule_kind;

static const char *const kind_names[] = {
    [RULE_SET] = "set", [RULE_ADD] = "add", [RULE_APPEND] = "append",
};

/* A set, add or append entry. Owns every string it points to. */
typedef struct value_rule {
    rule_kind kind;
    char *name;         /* as written in the file: the casing of fields it adds */
    char *lower;
    size_t len;
    char *value;        /* as written; the pieces point into it */
    piece *pieces;
    size_t npieces;
    size_t level;       /* its file's place in the extend chain, to tell a
                         * same-file clash (an error) from an override */
} value_rule;

/* A strip or allow_only name. */
typedef struct pattern {
    char *lower;        /* owned, without the trailing '*' */
    size_t len;
    int prefix;         /* had a trailing '*': matches every name starting with lower */
} pattern;

/* A name to match and what it means. Borrows lower from the rules (or a
 * string literal). An empty table slot has lower == NULL. */
typedef struct slot {
    const char *lower;
    size_t len;
    uint32_t hash;
    unsigned flags;
    int rule;           /* index of the name's set or append rule, or -1 */
} slot;

typedef struct side_rules {
    /* What the files said, merged along the extend chain. */
    pattern *strip;
    size_t nstrip;
    pattern *allow;
    size_t nallow;
    int allow_only;     /* allow_only given (even empty): unlisted fields are dropped */
    value_rule *rules;
    size_t nrules;
    int referer_origin;

    /* Built from the above by compile() for matching. */
    slot *table;        /* mask + 1 slots, at most half used */
    size_t mask;
    slot *wild;         /* prefix patterns (rule unused) */
    size_t nwild;
} side_rules;

struct policy {
    char *name;
    side_rules sides[2];    /* indexed by policy_side */
};

static const char *const side_names[] = { [POLICY_REQUEST] = "request", [POLICY_RESPONSE] = "response" };

/* ---------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------- */

/* FNV-1a over the lowercased name: the same hash whatever the casing. */
static uint32_t name_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++)
        h = (h ^ http_lower((unsigned char)name[i])) * 16777619u;
    return h;
}

/* Do the first n bytes of name equal lower, ignoring name's case? */
static int starts_with_lower(const char *name, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (http_lower((unsigned char)name[i]) != (unsigned char)lower[i])
            return 0;
    return 1;
}

static char *lower_copy(const char *s, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++)
        copy[i] = (char)http_lower((unsigned char)s[i]);
    copy[len] = '\0';
    return copy;
}

/* ---------------------------------------------------------------------------
 * Matching
 * ------------------------------------------------------------------------- */

static unsigned wild_flags(const side_rules *r, const char *name, size_t len)
{
    unsigned flags = 0;

    for (size_t i = 0; i < r->nwild; i++)
        if (r->wild[i].len <= len && starts_with_lower(name, r->wild[i].lower, r->wild[i].len))
            flags |= r->wild[i].flags;
    return flags;
}

/* What the rules say about a field name: M_* flags, and in *rule the index of
 * its set or append rule (-1 if none). */
static unsigned name_flags(const side_rules *r, const char *name, size_t len, int *rule)
{
    uint32_t h = name_hash(name, len);

    for (size_t i = h & r->mask; r->table[i].lower != NULL; i = (i + 1) & r->mask) {
        const slot *s = &r->table[i];
        if (s->hash == h && s->len == len && starts_with_lower(name, s->lower, len)) {
            *rule = s->rule;
            return s->flags;
        }
    }
    *rule = -1;
    return wild_flags(r, name, len);
}

static int is_dropped(const side_rules *r, unsigned flags)
{
    if (flags & M_FRAMING)
        return 0;
    return (flags & M_STRIP) || (r->allow_only && !(flags & M_ALLOW));
}

int policy_strips(const policy *p, policy_side side, const char *name, size_t name_len)
{
    const side_rules *r = &p->sides[side];
    int rule;

    return is_dropped(r, name_flags(r, name, name_len, &rule));
}

const char *policy_name(const policy *p)
{
    return p->name;
}

/* ---------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------- */

static const char *var_value(const policy_vars *vars, var_id var)
{
    const char *v = NULL;

    if (vars != NULL) {
        switch (var) {
        case VAR_CLIENT_IP: v = vars->client_ip; break;
        case VAR_CLIENT_PORT: v = vars->client_port; break;
        case VAR_PROXY_NAME: v = vars->proxy_name; break;
        case VAR_HOST: v = vars->host; break;
        case VAR_NONE: break;
        }
    }
    return v != NULL ? v : "";
}

static void write_value(const value_rule *r, const policy_vars *vars, struct evbuffer *out)
{
    for (size_t i = 0; i < r->npieces; i++) {
        const piece *pc = &r->pieces[i];
        if (pc->var == VAR_NONE) {
            evbuffer_add(out, pc->text, pc->len);
        } else {
            /* Variables come from the connection and the configuration; a
             * line break in one must not start a field of its own. */
            const char *v = var_value(vars, pc->var);
            evbuffer_add(out, v, strcspn(v, "\r\n"));
        }
    }
}

static void write_name(const char *name, size_t len, struct evbuffer *out)
{
    evbuffer_add(out, name, len);
    evbuffer_add(out, ": ", 2);
}

/* "Name: value\r\n" with the rule's value. */
static void write_field(const char *name, size_t len, const value_rule *r, const policy_vars *vars,
                        struct evbuffer *out)
{
    write_name(name, len, out);
    write_value(r, vars, out);
    evbuffer_add(out, "\r\n", 2);
}

/* Appends the rule's value to the list formed by fields[0] and every later
 * field of the same name, as one field where fields[0] stood. Appending to
 * fields[0] alone would put the new element in the middle of the combined
 * list (RFC 9110 5.3), e.g. before the last hop's address in X-Forwarded-For. */
static void write_appended(const http_field *fields, size_t n, const value_rule *r,
                           const policy_vars *vars, struct evbuffer *out)
{
    const http_field *first = &fields[0];
    int any = 0;

    write_name(first->name, first->name_len, out);
    for (size_t i = 0; i < n; i++) {
        const http_field *f = &fields[i];
        if (f->value_len == 0 || !http_token_eq(f->name, f->name_len, first->name, first->name_len))
            continue;
        if (any)
            evbuffer_add(out, ", ", 2);
        evbuffer_add(out, f->value, f->value_len);
        any = 1;
    }
    if (any)
        evbuffer_add(out, ", ", 2);
    write_value(r, vars, out);
    evbuffer_add(out, "\r\n", 2);
}

static int is_scheme_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.';
}

/* "[::1]" and "::1" name the same host. */
static void unbracket(const char **s, size_t *len)
{
    if (*len >= 2 && (*s)[0] == '[' && (*s)[*len - 1] == ']') {
        (*s)++;
        *len -= 2;
    }
}

/* Under "origin-when-cross-site": a Referer pointing at another host than the
 * request's is written as its origin, "scheme://host[:port]/" (userinfo left
 * out). Returns 0 when the field passes unchanged (same host), 1 when it was
 * written or dropped: a Referer that is not an absolute URL cannot be judged,
 * and this rule exists to leak less, so it does not pass. */
static int trim_referer(const http_field *f, const policy_vars *vars, struct evbuffer *out)
{
    const char *v = f->value, *end = v + f->value_len, *p = v;
    const char *auth, *auth_end, *at, *hostport, *host, *host_end, *target;
    size_t host_len, target_len;

    while (p < end && is_scheme_char((unsigned char)*p))
        p++;
    if (p == v || end - p < 3 || memcmp(p, "://", 3) != 0)
        return 1;
    auth = p + 3;
    for (auth_end = auth; auth_end < end && memchr("/?#", *auth_end, 3) == NULL; auth_end++)
        ;
    at = memrchr(auth, '@', (size_t)(auth_end - auth));
    hostport = host = at != NULL ? at + 1 : auth;
    if (host < auth_end && *host == '[') {
        if ((host_end = memchr(host, ']', (size_t)(auth_end - host))) == NULL)
            return 1;
        host_end++;
    } else if ((host_end = memchr(host, ':', (size_t)(auth_end - host))) == NULL) {
        host_end = auth_end;
    }
    if ((host_len = (size_t)(host_end - host)) == 0)
        return 1;

    target = var_value(vars, VAR_HOST);
    target_len = strlen(target);
    unbracket(&host, &host_len);
    unbracket(&target, &target_len);
    if (http_token_eq(host, host_len, target, target_len))
        return 0;

    write_name(f->name, f->name_len, out);
    evbuffer_add(out, v, (size_t)(auth - v));                         /* scheme:// */
    evbuffer_add(out, hostport, (size_t)(auth_end - hostport));       /* host[:port] */
    evbuffer_add(out, "/\r\n", 3);
    return 1;
}

void policy_write_fields(const policy *p, policy_side side, const http_field *fields, size_t n,
                         field_filter filter, void *filter_arg, const policy_vars *vars,
                         struct evbuffer *out)
{
    const side_rules *r = &p->sides[side];
    uint64_t seen = 0;   /* set and append rules whose name occurred */

    for (size_t i = 0; i < n; i++) {
        const http_field *f = &fields[i];
        int rule;
        unsigned flags = name_flags(r, f->name, f->name_len, &rule);

        if (is_dropped(r, flags))
            continue;
        if (rule >= 0) {
            const value_rule *vr = &r->rules[rule];
            uint64_t bit = (uint64_t)1 << rule;
            /* The first occurrence stands for all: later ones were replaced
             * (set) or merged into it (append). */
            if (!(seen & bit)) {
                seen |= bit;
                if (vr->kind == RULE_SET)
                    write_field(f->name, f->name_len, vr, vars, out);
                else
                    write_appended(f, n - i, vr, vars, out);
            }
            continue;
        }
        if ((flags & M_REFERER) && trim_referer(f, vars, out))
            continue;
        if (filter == NULL || filter(f, out, filter_arg) == FIELD_VERBATIM)
            evbuffer_add(out, f->line, f->line_len);
    }

    /* Then the fields the rules add: set, add, append, each in file order. */
    for (rule_kind kind = RULE_SET; kind <= RULE_APPEND; kind++) {
        for (size_t i = 0; i < r->nrules; i++) {
            const value_rule *vr = &r->rules[i];
            if (vr->kind == kind && !(seen & ((uint64_t)1 << i)))
                write_field(vr->name, vr->len, vr, vars, out);
        }
    }
}

/* ---------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------- */

/* State of one policy_load(). */
typedef struct loader {
    const char *dir;
    char *err;
    size_t errlen;
    const char *chain[MAX_CHAIN];   /* policies being loaded, the requested one first */
    size_t depth;                   /* entries of chain in use */
} loader;

/* The file being read, for messages. */
typedef struct source {
    loader *l;
    const char *file;   /* NULL before there is one */
    size_t level;       /* place in the extend chain */
} source;

/* Writes "FILE: PATH: reason" (FILE and PATH left out when NULL) and returns
 * -1, so callers can `return fail(...)`. */
__attribute__((format(printf, 3, 4)))
static int fail(const source *s, const char *path, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(s->l->err, s->l->errlen, "%s%s%s%s%s", s->file ? s->file : "", s->file ? ": " : "",
             path ? path : "", path ? ": " : "", reason);
    return -1;
}

/* Formats a JSON path for messages into a PATH_LEN buffer; a path too long
 * for it is only truncated. */
__attribute__((format(printf, 2, 3)))
static void make_path(char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(path, PATH_LEN, fmt, ap);
    va_end(ap);
}

/* Makes room for one more element of an array grown by doubling; n is the
 * count so far. Returns the (maybe moved) array, or NULL. */
static void *room_for_one(void *arr, size_t n, size_t size)
{
    if (n > 0 && (n & (n - 1)) != 0)
        return arr;
    return realloc(arr, (n > 0 ? 2 * n : 1) * size);
}

static void free_patterns(pattern *pats, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(pats[i].lower);
    free(pats);
}

static void clear_rule(value_rule *r)
{
    free(r->name);
    free(r->lower);
    free(r->value);
    free(r->pieces);
}

static void free_side(side_rules *r)
{
    free_patterns(r->strip, r->nstrip);
    free_patterns(r->allow, r->nallow);
    for (size_t i = 0; i < r->nrules; i++)
        clear_rule(&r->rules[i]);
    free(r->rules);
    free(r->table);
    free(r->wild);
}

void policy_free(policy *p)
{
    if (p == NULL)
        return;
    free_side(&p->sides[POLICY_REQUEST]);
    free_side(&p->sides[POLICY_RESPONSE]);
    free(p->name);
    free(p);
}

/* Fails on the first key of obj not among keys[0..n). */
static int check_keys(const source *s, json_t *obj, const char *path, const char *const *keys, size_t n)
{
    const char *key;
    json_t *v;
    char kpath[PATH_LEN];

    json_object_foreach(obj, key, v) {
        size_t i = 0;
        while (i < n && strcmp(key, keys[i]) != 0)
            i++;
        if (i == n) {
            make_path(kpath, "%s%s%s", path ? path : "", path ? "." : "", key);
            return fail(s, kpath, "unknown key");
        }
    }
    return 0;
}

/* How a rule uses the names it lists. */
enum {
    NAME_WILDCARD = 1 << 0,   /* a trailing '*' makes a prefix ("*" alone: every name) */
    NAME_CHANGES = 1 << 1,    /* the rule removes or rewrites the field: framing
                               * fields may not be named (allow_only may, harmlessly) */
};

/* Checks a header name from the file: a token, or a token prefix ending in
 * '*' with NAME_WILDCARD. Returns its length without the '*' and sets
 * *prefix, or -1. */
static long check_name(const source *s, const char *path, const char *name, size_t len, unsigned how,
                       int *prefix)
{
    size_t base;
    int valid = len > 0;

    *prefix = (how & NAME_WILDCARD) && len > 0 && name[len - 1] == '*';
    base = len - (size_t)*prefix;
    for (size_t i = 0; i < base; i++)
        if (!http_is_tchar((unsigned char)name[i]) || name[i] == '*')
            valid = 0;
    if (!valid)
        return fail(s, path, how & NAME_WILDCARD ? "\"%s\" is not a header name or a prefix ending in '*'"
                                                 : "\"%s\" is not a header name", name);
    if ((how & NAME_CHANGES) && !*prefix)
        for (size_t i = 0; i < ARRAY_LEN(framing_names); i++)
            if (http_token_eq(name, base, framing_names[i], strlen(framing_names[i])))
                return fail(s, path, "%s addresses or frames the message and cannot be changed", name);
    return (long)base;
}

/* Loads a JSON array of names into *pats (appending to what is there). */
static int load_names(const source *s, const char *path, json_t *arr, unsigned how,
                      pattern **pats, size_t *n)
{
    size_t i;
    json_t *item;
    char ipath[PATH_LEN];

    if (!json_is_array(arr))
        return fail(s, path, "expected an array of strings");
    json_array_foreach(arr, i, item) {
        pattern *grown;
        int prefix;
        long len;

        make_path(ipath, "%s[%zu]", path, i);
        if (!json_is_string(item))
            return fail(s, ipath, "expected a string");
        len = check_name(s, ipath, json_string_value(item), json_string_length(item), how, &prefix);
        if (len < 0)
            return -1;
        if ((grown = room_for_one(*pats, *n, sizeof(**pats))) == NULL)
            return fail(s, ipath, "out of memory");
        *pats = grown;
        grown[*n] = (pattern){ .lower = lower_copy(json_string_value(item), (size_t)len),
                               .len = (size_t)len, .prefix = prefix };
        if (grown[(*n)++].lower == NULL)
            return fail(s, ipath, "out of memory");
    }
    return 0;
}

static int is_var_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int add_piece(const source *s, const char *path, value_rule *r, var_id var, const char *text,
                     size_t len)
{
    piece *grown;

    if (var == VAR_NONE && len == 0)
        return 0;
    if ((grown = room_for_one(r->pieces, r->npieces, sizeof(*grown))) == NULL)
        return fail(s, path, "out of memory");
    r->pieces = grown;
    grown[r->npieces++] = (piece){ var, text, len };
    return 0;
}

/* Splits r->value into literal pieces and variables. */
static int parse_value(const source *s, const char *path, value_rule *r)
{
    const char *v = r->value, *end = v + strlen(v), *lit = v, *p = v;

    while (p < end) {
        const char *name = p + 1, *name_end = name;
        var_id var = VAR_NONE;

        if (*p != '$') {
            p++;
            continue;
        }
        if (name < end && *name == '$') {   /* "$$": the literal runs to the first '$' */
            if (add_piece(s, path, r, VAR_NONE, lit, (size_t)(name - lit)) < 0)
                return -1;
            lit = p = name + 1;
            continue;
        }
        while (name_end < end && is_var_char((unsigned char)*name_end))
            name_end++;
        for (size_t i = VAR_CLIENT_IP; i < ARRAY_LEN(var_names); i++)
            if (strlen(var_names[i]) == (size_t)(name_end - name) &&
                memcmp(var_names[i], name, (size_t)(name_end - name)) == 0)
                var = (var_id)i;
        if (var == VAR_NONE && name == name_end)
            return fail(s, path, "lone '$' (write $$ for a dollar sign)");
        if (var == VAR_NONE)
            return fail(s, path, "unknown variable $%.*s (known: $client_ip, $client_port, "
                        "$proxy_name, $host, and $$ for '$')", (int)(name_end - name), name);
        if (add_piece(s, path, r, VAR_NONE, lit, (size_t)(p - lit)) < 0 ||
            add_piece(s, path, r, var, NULL, 0) < 0)
            return -1;
        lit = p = name_end;
    }
    return add_piece(s, path, r, VAR_NONE, lit, (size_t)(end - lit));
}

/* Values become field values: CR, LF or NUL would inject fields or cut the
 * line, and anything beyond ASCII has no agreed meaning in a field. */
static int check_value(const source *s, const char *path, const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c != '\t' && (c < ' ' || c > '~'))
            return fail(s, path, "byte 0x%02x at offset %zu: a value may hold only visible ASCII, "
                        "spaces and tabs", c, i);
    }
    return 0;
}

/* Builds a rule from a name and a checked value. */
static int make_rule(const source *s, const char *path, const char *name, size_t len, const char *value,
                     rule_kind kind, value_rule *nr)
{
    *nr = (value_rule){ .kind = kind, .name = strdup(name), .lower = lower_copy(name, len), .len = len,
                        .value = strdup(value), .level = s->level };
    if (nr->name == NULL || nr->lower == NULL || nr->value == NULL) {
        clear_rule(nr);
        return fail(s, path, "out of memory");
    }
    if (parse_value(s, path, nr) < 0) {
        clear_rule(nr);
        return -1;
    }
    return 0;
}

/* Adds nr to the side, which then owns it. A set or append rule replaces a
 * parent's set or append rule of the same name, so a name has at most one
 * (two in the same file are an error); add rules accumulate. */
static int place_rule(const source *s, const char *path, side_rules *r, const value_rule *nr)
{
    value_rule *old = NULL, *grown;

    for (size_t i = 0; i < r->nrules && nr->kind != RULE_ADD; i++)
        if (r->rules[i].kind != RULE_ADD && r->rules[i].len == nr->len &&
            memcmp(r->rules[i].lower, nr->lower, nr->len) == 0)
            old = &r->rules[i];
    if (old != NULL && old->level == nr->level)
        return fail(s, path, "%s already has a %s rule", nr->name, kind_names[old->kind]);
    if (old != NULL) {
        clear_rule(old);
        *old = *nr;
        return 0;
    }
    if (r->nrules == MAX_VALUE_RULES)
        return fail(s, path, "more than %d set, add and append rules", MAX_VALUE_RULES);
    if ((grown = room_for_one(r->rules, r->nrules, sizeof(*grown))) == NULL)
        return fail(s, path, "out of memory");
    r->rules = grown;
    r->rules[r->nrules++] = *nr;
    return 0;
}

/* Loads one set, add or append object. */
static int load_values(const source *s, const char *path, json_t *obj, rule_kind kind, side_rules *r)
{
    const char *key;
    size_t key_len;
    json_t *v;
    char kpath[PATH_LEN];

    if (!json_is_object(obj))
        return fail(s, path, "expected an object of header names and string values");
    json_object_keylen_foreach(obj, key, key_len, v) {
        value_rule nr;
        int prefix;
        long len;

        make_path(kpath, "%s.%s", path, key);
        if ((len = check_name(s, kpath, key, key_len, NAME_CHANGES, &prefix)) < 0)
            return -1;
        if (!json_is_string(v))
            return fail(s, kpath, "expected a string");
        if (check_value(s, kpath, json_string_value(v), json_string_length(v)) < 0 ||
            make_rule(s, kpath, key, (size_t)len, json_string_value(v), kind, &nr) < 0)
            return -1;
        if (place_rule(s, kpath, r, &nr) < 0) {
            clear_rule(&nr);
            return -1;
        }
    }
    return 0;
}

static int load_side(const source *s, policy_side side, json_t *obj, side_rules *r)
{
    /* "referer" last: responses have every key but it. */
    static const char *const keys[] = { "strip", "allow_only", "set", "add", "append", "referer" };
    const char *name = side_names[side];
    char path[PATH_LEN];
    json_t *v;

    if (!json_is_object(obj))
        return fail(s, name, "expected an object");
    if (check_keys(s, obj, name, keys, ARRAY_LEN(keys) - (side == POLICY_RESPONSE)) < 0)
        return -1;

    make_path(path, "%s.strip", name);
    if ((v = json_object_get(obj, "strip")) &&
        load_names(s, path, v, NAME_WILDCARD | NAME_CHANGES, &r->strip, &r->nstrip) < 0)
        return -1;
    if ((v = json_object_get(obj, "allow_only"))) {
        /* A child's list replaces the parent's. */
        free_patterns(r->allow, r->nallow);
        r->allow = NULL;
        r->nallow = 0;
        r->allow_only = 1;
        make_path(path, "%s.allow_only", name);
        if (load_names(s, path, v, NAME_WILDCARD, &r->allow, &r->nallow) < 0)
            return -1;
    }
    for (rule_kind kind = RULE_SET; kind <= RULE_APPEND; kind++) {
        make_path(path, "%s.%s", name, kind_names[kind]);
        if ((v = json_object_get(obj, kind_names[kind])) && load_values(s, path, v, kind, r) < 0)
            return -1;
    }
    if ((v = json_object_get(obj, "referer"))) {
        const char *mode = json_string_value(v);   /* NULL if not a string */
        make_path(path, "%s.referer", name);
        if (mode == NULL || (strcmp(mode, "keep") != 0 && strcmp(mode, "origin-when-cross-site") != 0))
            return fail(s, path, "expected \"keep\" or \"origin-when-cross-site\"");
        r->referer_origin = strcmp(mode, "origin-when-cross-site") == 0;
    }
    return 0;
}

/* [A-Za-z0-9_-]+: a file name that stays in dir. */
static int valid_policy_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_var_char((unsigned char)name[i]) && name[i] != '-')
            return 0;
    return 1;
}

static int load_file(loader *l, policy *p, const char *name, const source *from);

static int load_object(const source *s, policy *p, json_t *root)
{
    static const char *const keys[] = { "description", "extend", "request", "response" };
    json_t *v;

    if (!json_is_object(root))
        return fail(s, NULL, "expected an object");
    if (check_keys(s, root, NULL, keys, ARRAY_LEN(keys)) < 0)
        return -1;
    if ((v = json_object_get(root, "description")) && !json_is_string(v))
        return fail(s, "description", "expected a string");
    /* The parent first, so that this file's rules are applied over it. */
    if ((v = json_object_get(root, "extend"))) {
        if (!json_is_string(v))
            return fail(s, "extend", "expected a string");
        if (load_file(s->l, p, json_string_value(v), s) < 0)
            return -1;
    }
    for (policy_side side = POLICY_REQUEST; side <= POLICY_RESPONSE; side++)
        if ((v = json_object_get(root, side_names[side])) && load_side(s, side, v, &p->sides[side]) < 0)
            return -1;
    return 0;
}

/* Loads dir/NAME.json into p. `from` is the file that extends it (NULL for
 * the policy asked for). */
static int load_file(loader *l, policy *p, const char *name, const source *from)
{
    source s = { .l = l, .file = NULL, .level = l->depth };
    const source *blame = from != NULL ? from : &s;
    const char *where = from != NULL ? "extend" : NULL;
    char file[FILE_LEN];
    json_error_t jerr;
    json_t *root;
    FILE *fp;
    int rc;

    if (!valid_policy_name(name))
        return fail(blame, where, "policy name \"%s\" invalid (letters, digits, '_' and '-' only)", name);
    for (size_t i = 0; i < l->depth; i++) {
        if (strcmp(l->chain[i], name) == 0) {
            char chain[MAX_CHAIN * 64] = "";
            size_t used = 0;
            for (size_t j = i; j < l->depth && used < sizeof(chain); j++)
                used += (size_t)snprintf(chain + used, sizeof(chain) - used, "%s -> ", l->chain[j]);
            return fail(blame, where, "cycle: %s%s", chain, name);
        }
    }
    if (l->depth == MAX_CHAIN)
        return fail(blame, where, "more than %d policies in the extend chain", MAX_CHAIN);
    if ((size_t)snprintf(file, sizeof(file), "%s/%s.json", l->dir, name) >= sizeof(file))
        return fail(blame, where, "path of policy \"%s\" too long", name);
    s.file = file;

    if ((fp = fopen(file, "r")) == NULL)
        return fail(&s, NULL, "cannot read: %s", strerror(errno));
    root = json_loadf(fp, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    fclose(fp);
    if (root == NULL)
        return fail(&s, NULL, "line %d column %d: %s", jerr.line, jerr.column, jerr.text);

    l->chain[l->depth++] = name;
    rc = load_object(&s, p, root);
    l->depth--;
    json_decref(root);
    return rc;
}

/* Puts a name into the table, or adds flags to its slot. */
static slot *table_put(side_rules *r, const char *lower, size_t len, unsigned flags)
{
    uint32_t h = name_hash(lower, len);
    size_t i = h & r->mask;

    while (r->table[i].lower != NULL &&
           !(r->table[i].len == len && memcmp(r->table[i].lower, lower, len) == 0))
        i = (i + 1) & r->mask;
    if (r->table[i].lower == NULL)
        r->table[i] = (slot){ .lower = lower, .len = len, .hash = h, .rule = -1 };
    r->table[i].flags |= flags;
    return &r->table[i];
}

/* Builds the matching structures of a loaded side. */
static int compile(side_rules *r)
{
    size_t names = r->nstrip + r->nallow + r->nrules + ARRAY_LEN(framing_names) + 1, size = 16;

    while (size < 2 * names)
        size *= 2;
    r->table = calloc(size, sizeof(*r->table));
    r->wild = calloc(r->nstrip + r->nallow + 1, sizeof(*r->wild));
    if (r->table == NULL || r->wild == NULL)
        return -1;
    r->mask = size - 1;

    for (size_t i = 0; i < ARRAY_LEN(framing_names); i++)
        table_put(r, framing_names[i], strlen(framing_names[i]), M_FRAMING);
    if (r->referer_origin)
        table_put(r, "referer", 7, M_REFERER);
    for (int allow = 0; allow <= 1; allow++) {
        const pattern *pats = allow ? r->allow : r->strip;
        size_t n = allow ? r->nallow : r->nstrip;
        unsigned flags = allow ? M_ALLOW : M_STRIP;
        for (size_t i = 0; i < n; i++) {
            if (pats[i].prefix)
                r->wild[r->nwild++] = (slot){ .lower = pats[i].lower, .len = pats[i].len, .flags = flags };
            else
                table_put(r, pats[i].lower, pats[i].len, flags);
        }
    }
    for (size_t i = 0; i < r->nrules; i++)
        if (r->rules[i].kind != RULE_ADD)
            table_put(r, r->rules[i].lower, r->rules[i].len, 0)->rule = (int)i;

    /* A name found in the table is not tried against the wildcards again. */
    for (size_t i = 0; i <= r->mask; i++)
        if (r->table[i].lower != NULL)
            r->table[i].flags |= wild_flags(r, r->table[i].lower, r->table[i].len);
    return 0;
}

policy *policy_load(const char *dir, const char *name, char *err, size_t errlen)
{
    loader l = { .dir = dir, .err = err, .errlen = errlen };
    source none = { .l = &l };
    policy *p = calloc(1, sizeof(*p));

    if (p == NULL || (p->name = strdup(name)) == NULL) {
        free(p);
        fail(&none, NULL, "out of memory");
        return NULL;
    }
    if (load_file(&l, p, name, NULL) < 0) {
        policy_free(p);
        return NULL;
    }
    if (compile(&p->sides[POLICY_REQUEST]) < 0 || compile(&p->sides[POLICY_RESPONSE]) < 0) {
        policy_free(p);
        fail(&none, NULL, "out of memory");
        return NULL;
    }
    return p;
}
