/* forward.c - see forward.h. */
#include "forward.h"

#include <event2/buffer.h>
#include <string.h>

/* Fields that only ever concern one connection. */
static const char *const hop_by_hop[] = {
    "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade",
    "Proxy-Authorization", "Proxy-Authenticate",
    "X-Anonproxy-Country", /* asks this proxy for an exit: never passed on */
};

/* Fields a Connection token may never remove: they frame or address the
 * message, so letting the client strip them would desynchronise us and the
 * origin ("Connection: Content-Length" is a known smuggling trick). */
static const char *const never_nominated[] = {"Host", "Content-Length", "Transfer-Encoding"};

static int name_in(const http_field *f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (http_name_is(f, names[i]))
            return 1;
    return 0;
}

/* Is f named by a token of any Connection field? */
static int nominated(const http_field *f, const http_field *fields, size_t nfields)
{
    for (size_t i = 0; i < nfields; i++) {
        if (!http_name_is(&fields[i], "Connection"))
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

/* Should f stop at this hop? Upgrade passes when a protocol switch is on. */
static int is_hop_by_hop(const http_field *f, const http_field *fields, size_t nfields, int upgrading)
{
    if (upgrading && http_name_is(f, "Upgrade"))
        return 0;
    if (name_in(f, hop_by_hop, sizeof hop_by_hop / sizeof *hop_by_hop))
        return 1;
    return !name_in(f, never_nominated, sizeof never_nominated / sizeof *never_nominated) &&
           nominated(f, fields, nfields);
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
        if (http_name_is(f, "Upgrade") && f->value_len > 0)
            has_upgrade = 1;
        else if (http_name_is(f, "Connection") && http_list_has(f->value, f->value_len, "upgrade"))
            conn_upgrade = 1;
    }
    return has_upgrade && conn_upgrade;
}

/* Looks for a connection option in every Connection field. */
static int connection_has(const http_field *fields, size_t n, const char *option)
{
    for (size_t i = 0; i < n; i++)
        if (http_name_is(&fields[i], "Connection") &&
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
        if (http_name_is(&req->fields[i], "Proxy-Connection") &&
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

/* What the protocol layer needs to know about the message being written. */
typedef struct filter_ctx {
    const http_field *fields;
    size_t nfields;
    const target *t;          /* requests only */
    int upgrading;
    int has_connection;       /* a Connection field is present */
    int drop_te;              /* responses decoded for the client */
} filter_ctx;

static field_fate request_filter(const http_field *f, struct evbuffer *out, void *arg)
{
    const filter_ctx *ctx = arg;
    if (http_name_is(f, "Host")) {
        /* RFC 9112 3.2.2: the target's authority wins over a received Host. */
        if (http_token_eq(f->value, f->value_len, ctx->t->authority, ctx->t->authority_len))
            return FIELD_VERBATIM;
        evbuffer_add(out, f->name, f->name_len);
        evbuffer_add(out, ": ", 2);
        evbuffer_add(out, ctx->t->authority, ctx->t->authority_len);
        evbuffer_add(out, "\r\n", 2);
        return FIELD_WRITTEN;
    }
    if (http_name_is(f, "Connection"))
        return write_connection(out, f, NULL, ctx->upgrading);
    if (http_name_is(f, "Proxy-Connection") && !ctx->has_connection)
        /* Browsers say "Proxy-Connection: keep-alive" to a proxy exactly where
         * they say "Connection: keep-alive" to an origin: translate it in place,
         * so the origin sees what the browser would have sent it directly. */
        return write_connection(out, f, "Connection", ctx->upgrading);
    return is_hop_by_hop(f, ctx->fields, ctx->nfields, ctx->upgrading) ? FIELD_DROP : FIELD_VERBATIM;
}

static field_fate response_filter(const http_field *f, struct evbuffer *out, void *arg)
{
    const filter_ctx *ctx = arg;
    if (ctx->upgrading && http_name_is(f, "Connection"))
        return write_connection(out, f, NULL, 1);
    if (ctx->drop_te && http_name_is(f, "Transfer-Encoding"))
        return FIELD_DROP;
    return is_hop_by_hop(f, ctx->fields, ctx->nfields, ctx->upgrading) ? FIELD_DROP : FIELD_VERBATIM;
}

void forward_request_head(struct evbuffer *out, const http_request *req, const target *t,
                          int upgrading, const policy *p, const policy_vars *vars)
{
    filter_ctx ctx = {req->fields, req->nfields, t, upgrading, 0, 0};
    int has_host = 0;
    for (size_t i = 0; i < req->nfields; i++) {
        has_host |= http_name_is(&req->fields[i], "Host");
        ctx.has_connection |= http_name_is(&req->fields[i], "Connection");
    }

    evbuffer_add(out, req->method, req->method_len);
    evbuffer_add(out, " ", 1);
    evbuffer_add_printf(out, "%s", target_origin_prefix(t));
    evbuffer_add(out, t->path, t->path_len);
    evbuffer_add_printf(out, " HTTP/1.%d\r\n", req->version_minor);
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
    filter_ctx ctx = {resp->fields, resp->nfields, NULL, plan->upgrading, 0, plan->drop_te};

    evbuffer_add_printf(out, "HTTP/1.1 %03d ", resp->status);
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
