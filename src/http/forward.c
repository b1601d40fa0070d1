/* forward.c - see forward.h. */
#include "http/forward.h"

#include <event2/buffer.h>
#include <string.h>

#define KIND(k) (1u << (k))

/* Fields that only ever concern one connection. X-Anonproxy-Country asks
 * this proxy for an exit: it is never passed on either. */
static const unsigned hop_by_hop =
    KIND(HF_CONNECTION) | KIND(HF_KEEP_ALIVE) | KIND(HF_PROXY_CONNECTION) | KIND(HF_TE) |
    KIND(HF_TRAILER) | KIND(HF_UPGRADE) | KIND(HF_PROXY_AUTHORIZATION) |
    KIND(HF_PROXY_AUTHENTICATE) | KIND(HF_X_ANONPROXY_COUNTRY);

/* Fields a Connection token may never remove: they frame or address the
 * message, so letting the client strip them would desynchronise us and the
 * origin ("Connection: Content-Length" is a known smuggling trick). */
static const unsigned never_nominated = KIND(HF_HOST) | KIND(HF_CONTENT_LENGTH) |
                                        KIND(HF_TRANSFER_ENCODING);

static int connection_token_kept(const char *tok, size_t len, int upgrading);

/* Is f named by a token of any Connection field? */
static int nominated(const http_field *f, const http_field *fields, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].known != HF_CONNECTION)
            continue;
        size_t pos = 0;
        const char *tok;
        size_t tok_len;
        while (http_list_next(fields[i].value, fields[i].value_len, &pos, &tok, &tok_len))
            if (http_token_eq(f->name, f->name_len, tok, tok_len))
                return 1;
    }
    return 0;
}

/* Do the Connection fields name any field at all (a token other than the
 * connection options)? Usually not, and then no field needs looking up. */
static int names_fields(const http_field *fields, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        if (fields[i].known != HF_CONNECTION)
            continue;
        size_t pos = 0;
        const char *tok;
        size_t tok_len;
        while (http_list_next(fields[i].value, fields[i].value_len, &pos, &tok, &tok_len))
            if (!connection_token_kept(tok, tok_len, 1))
                return 1;
    }
    return 0;
}

/* What the protocol layer needs to know about the message being written. */
typedef struct filter_ctx {
    const http_field *fields;
    size_t nfields;
    const target *t;          /* requests only */
    int upgrading;
    int has_connection;       /* a Connection field is present */
    int drop_te;              /* responses decoded for the client */
    int names_fields;         /* Connection names other fields (names_fields()) */
} filter_ctx;

/* Should f stop at this hop? Upgrade passes when a protocol switch is on. */
static int is_hop_by_hop(const http_field *f, const filter_ctx *ctx)
{
    if (ctx->upgrading && f->known == HF_UPGRADE)
        return 0;
    if (hop_by_hop & KIND(f->known))
        return 1;
    return ctx->names_fields && !(never_nominated & KIND(f->known)) &&
           nominated(f, ctx->fields, ctx->nfields);
}

static int connection_token_kept(const char *tok, size_t len, int upgrading)
{
    return http_token_eq(tok, len, "keep-alive", 10) || http_token_eq(tok, len, "close", 5) ||
           (upgrading && http_token_eq(tok, len, "upgrade", 7));
}

/* Writes a Connection field (named `name`) with only the kept tokens: the
 * line as received when nothing was removed and the name is unchanged, and
 * nothing at all when no token is left. */
static field_fate write_connection(struct evbuffer *out, const http_field *f, const char *name,
                                   int upgrading)
{
    size_t pos = 0, kept = 0, all = 0;
    const char *tok;
    size_t tok_len;
    while (http_list_next(f->value, f->value_len, &pos, &tok, &tok_len)) {
        all++;
        kept += connection_token_kept(tok, tok_len, upgrading);
    }
    if (kept == 0)
        return FIELD_DROP;
    if (kept == all && !name)
        return FIELD_VERBATIM;
    if (name)
        evbuffer_add(out, name, strlen(name));
    else
        evbuffer_add(out, f->name, f->name_len);
    evbuffer_add(out, ": ", 2);
    pos = 0;
    size_t written = 0;
    while (http_list_next(f->value, f->value_len, &pos, &tok, &tok_len)) {
        if (!connection_token_kept(tok, tok_len, upgrading))
            continue;
        if (written++)
            evbuffer_add(out, ", ", 2);
        evbuffer_add(out, tok, tok_len);
    }
    evbuffer_add(out, "\r\n", 2);
    return FIELD_WRITTEN;
}

int forward_wants_upgrade(const http_request *req)
{
    int has_upgrade = 0, conn_upgrade = 0;
    for (size_t i = 0; i < req->nfields; i++) {
        const http_field *f = &req->fields[i];
        if (f->known == HF_UPGRADE && f->value_len > 0)
            has_upgrade = 1;
        else if (f->known == HF_CONNECTION && http_list_has(f->value, f->value_len, "upgrade"))
            conn_upgrade = 1;
    }
    return has_upgrade && conn_upgrade;
}

/* Looks for a connection option in every Connection field. */
static int connection_has(const http_field *fields, size_t n, const char *option)
{
    for (size_t i = 0; i < n; i++)
        if (fields[i].known == HF_CONNECTION &&
            http_list_has(fields[i].value, fields[i].value_len, option))
            return 1;
    return 0;
}

int forward_client_keep_alive(const http_request *req)
{
    if (connection_has(req->fields, req->nfields, "close"))
        return 0;
    if (req->version_minor >= 1)
        return 1;
    /* HTTP/1.0 clients opt in; Proxy-Connection is what they use with proxies. */
    if (connection_has(req->fields, req->nfields, "keep-alive"))
        return 1;
    for (size_t i = 0; i < req->nfields; i++)
        if (req->fields[i].known == HF_PROXY_CONNECTION &&
            http_list_has(req->fields[i].value, req->fields[i].value_len, "keep-alive"))
            return 1;
    return 0;
}

int forward_origin_keep_alive(const http_response *resp)
{
    if (connection_has(resp->fields, resp->nfields, "close"))
        return 0;
    return resp->version_minor >= 1 || connection_has(resp->fields, resp->nfields, "keep-alive");
}



static field_fate request_filter(const http_field *f, struct evbuffer *out, void *arg)
{
    const filter_ctx *ctx = arg;
    if (f->known == HF_HOST) {
        /* RFC 9112 3.2.2: the target's authority wins over a received Host. */
        if (http_token_eq(f->value, f->value_len, ctx->t->authority, ctx->t->authority_len))
            return FIELD_VERBATIM;
        evbuffer_add(out, f->name, f->name_len);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, ctx->t->authority, ctx->t->authority_len);
        evbuffer_add(out, "\r\n", 2);
        return FIELD_WRITTEN;
    }
    if (f->known == HF_CONNECTION)
        return write_connection(out, f, NULL, ctx->upgrading);
    if (f->known == HF_PROXY_CONNECTION && !ctx->has_connection)
        /* Browsers say "Proxy-Connection: keep-alive" to a proxy exactly where
         * they say "Connection: keep-alive" to an origin: translate it in place,
         * so the origin sees what the browser would have sent it directly. */
        return write_connection(out, f, "Connection", ctx->upgrading);
    return is_hop_by_hop(f, ctx) ? FIELD_DROP : FIELD_VERBATIM;
}

static field_fate response_filter(const http_field *f, struct evbuffer *out, void *arg)
{
    const filter_ctx *ctx = arg;
    if (ctx->upgrading && f->known == HF_CONNECTION)
        return write_connection(out, f, NULL, 1);
    if (ctx->drop_te && f->known == HF_TRANSFER_ENCODING)
        return FIELD_DROP;
    return is_hop_by_hop(f, ctx) ? FIELD_DROP : FIELD_VERBATIM;
}

void forward_request_head(struct evbuffer *out, const http_request *req, const target *t,
                          int upgrading, const policy *p, const policy_vars *vars)
{
    filter_ctx ctx = {req->fields, req->nfields, t, upgrading, 0, 0,
                      names_fields(req->fields, req->nfields)};
    int has_host = 0;
    for (size_t i = 0; i < req->nfields; i++) {
        has_host |= req->fields[i].known == HF_HOST;
        ctx.has_connection |= req->fields[i].known == HF_CONNECTION;
    }

    evbuffer_add(out, req->method, req->method_len);
    if (t->path_len == 0 && req->method_len == 7 && memcmp(req->method, "OPTIONS", 7) == 0) {
        /* RFC 9112 3.2.4: OPTIONS for a URI with no path and no query asks
         * about the server itself, which origin-form spells "*", not "/". */
        evbuffer_add(out, " *", 2);
    } else {
        /* " " then "/" when the path needs one (target_origin_prefix). */
        evbuffer_add(out, " /", 1 + (*target_origin_prefix(t) == '/'));
        evbuffer_add(out, t->path, t->path_len);
    }
    evbuffer_add(out, req->version_minor ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", 11);
    if (!has_host) {
        /* Where browsers put it: first. */
        evbuffer_add(out, "Host: ", 6);
        evbuffer_add(out, t->authority, t->authority_len);
        evbuffer_add(out, "\r\n", 2);
    }
    policy_write_fields(p, POLICY_REQUEST, req->fields, req->nfields, request_filter, &ctx, vars, out);
    evbuffer_add(out, "\r\n", 2);
}

void forward_response_head(struct evbuffer *out, const http_response *resp, const response_plan *plan,
                           const policy *p, const policy_vars *vars)
{
    filter_ctx ctx = {resp->fields, resp->nfields, NULL, plan->upgrading, 0, plan->drop_te,
                      names_fields(resp->fields, resp->nfields)};
    char status[14] = "HTTP/1.1 000 ";
    status[9] = (char)('0' + resp->status / 100);
    status[10] = (char)('0' + resp->status / 10 % 10);
    status[11] = (char)('0' + resp->status % 10);

    evbuffer_add(out, status, 13);
    evbuffer_add(out, resp->reason, resp->reason_len);
    evbuffer_add(out, "\r\n", 2);
    policy_write_fields(p, POLICY_RESPONSE, resp->fields, resp->nfields, response_filter, &ctx, vars, out);
    if (!plan->upgrading) {
        if (!plan->keep_alive && plan->client_minor >= 1)
            evbuffer_add(out, "Connection: close\r\n", 19);
        else if (plan->keep_alive && plan->client_minor == 0)
            evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    }
    evbuffer_add(out, "\r\n", 2);
}
