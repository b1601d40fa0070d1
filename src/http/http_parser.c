/* http_parser.c - see http_parser.h.
 *
 * Every function works on (pointer, length) ranges and never reads outside
 * them: a head is not NUL-terminated and may sit at the very end of a buffer.
 */
#include "http/http_parser.h"
#include "http/http_chars.h"

#include <limits.h>
#include <string.h>

/* ---------------------------------------------------------------------------
 * Finding the head
 * ------------------------------------------------------------------------- */

/* If the LF at buf[lf] ends an empty line ("\n" or "\r\n"), returns 1 and
 * sets *start to where that line starts. */
static int ends_empty_line(const char *buf, size_t lf, size_t *start)
{
    if (lf == 0 || buf[lf - 1] == '\n') {
        *start = lf;
        return 1;
    }
    if (buf[lf - 1] == '\r' && (lf == 1 || buf[lf - 2] == '\n')) {
        *start = lf - 1;
        return 1;
    }
    return 0;
}

size_t http_head_end(const char *buf, size_t len, size_t *scan)
{
    size_t i = *scan;

    while (i < len) {
        const char *lf = memchr(buf + i, '\n', len - i);
        size_t start, prev_start;

        if (lf == NULL)
            break;
        i = (size_t)(lf - buf);
        /* The head ends at the first empty line that follows a line with
         * content. An empty line that follows another empty line can only be
         * one of the leading empty lines (otherwise the scan would have
         * stopped at the earlier one), so looking back a few bytes is enough
         * and the scan keeps no state but its position. A bare LF counts as
         * a line end here so that such a head is found, then rejected. */
        if (ends_empty_line(buf, i, &start) && start > 0 &&
            !ends_empty_line(buf, start - 1, &prev_start)) {
            *scan = i; /* calling again finds the same end */
            return i + 1;
        }
        i++;
    }
    *scan = len;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Parsing the head
 * ------------------------------------------------------------------------- */

/* Finds the line starting at buf[pos]. Returns 0 and sets *content_len to its
 * length without the CRLF, or -1 if no LF follows or the LF is bare. A CR
 * inside the content is left for the caller's character checks to reject. */
static int line_at(const char *buf, size_t len, size_t pos, size_t *content_len)
{
    const char *line = buf + pos;
    const char *lf = memchr(line, '\n', len - pos);

    if (lf == NULL || lf == line || lf[-1] != '\r')
        return -1;
    *content_len = (size_t)(lf - line) - 1;
    return 0;
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3).
 * Returns 0 for HTTP/1.0 and HTTP/1.1, 505 for any other version, 400 for
 * something that is not a version. */
static int parse_version(const char *p, size_t len, int *minor)
{
    if (len != 8 || memcmp(p, "HTTP/", 5) != 0 || !http_is_digit((unsigned char)p[5]) ||
        p[6] != '.' || !http_is_digit((unsigned char)p[7]))
        return 400;
    if (p[5] != '1' || (p[7] != '0' && p[7] != '1'))
        return 505;
    *minor = p[7] - '0';
    return 0;
}

/* field-line = field-name ":" OWS field-value OWS, without its CRLF. Returns 0
 * or -1. A line starting with whitespace (obs-fold) and whitespace before the
 * colon both fail the name check: either lets two parsers disagree on which
 * field a value belongs to. */
static int parse_field(const char *line, size_t len, http_field *f)
{
    size_t name_len = 0, start, end;

    while (name_len < len && http_is_tchar((unsigned char)line[name_len]))
        name_len++;
    if (name_len == 0 || name_len == len || line[name_len] != ':')
        return -1;
    for (size_t i = name_len + 1; i < len; i++)
        if (!http_is_text((unsigned char)line[i]))
            return -1;

    start = name_len + 1;
    end = len;
    while (start < end && http_is_ows((unsigned char)line[start]))
        start++;
    while (end > start && http_is_ows((unsigned char)line[end - 1]))
        end--;

    f->name = line;
    f->name_len = name_len;
    f->value = line + start;
    f->value_len = end - start;
    f->line = line;
    f->line_len = len + 2;
    f->known = http_classify(line, name_len);
    return 0;
}

/* Parses the field lines from buf[pos] through the empty line, which must be
 * the last bytes of the head. Returns 0 or the status to answer: 400, or 431
 * for a field line (CRLF excluded) longer than max_line or more than
 * max_fields fields. */
static int parse_fields(const char *buf, size_t len, size_t pos,
                        const http_limits *limits, http_field *fields, size_t *nfields)
{
    size_t n = 0, line_len;

    for (;;) {
        if (line_at(buf, len, pos, &line_len) != 0)
            return 400;
        if (line_len == 0)
            break;
        if (line_len > limits->max_line || n == limits->max_fields)
            return 431;
        if (parse_field(buf + pos, line_len, &fields[n]) != 0)
            return 400;
        n++;
        pos += line_len + 2;
    }
    if (pos + 2 != len)
        return 400;
    *nfields = n;
    return 0;
}

/* request-line = method SP request-target SP HTTP-version, without its CRLF.
 * Returns 0 or the status to answer. */
static int parse_request_line(const char *line, size_t len, const http_limits *limits,
                              http_request *req)
{
    size_t method_len = 0, target, target_end;
    const char *sp;

    while (method_len < len && http_is_tchar((unsigned char)line[method_len]))
        method_len++;
    if (method_len == 0 || method_len == len || line[method_len] != ' ')
        return 400;

    target = method_len + 1;
    sp = memchr(line + target, ' ', len - target);
    target_end = sp != NULL ? (size_t)(sp - line) : len;
    /* Measured before anything else so that an overlong target is always
     * answered 414, whatever else is wrong with it. */
    if (target_end - target > limits->max_uri)
        return 414;
    if (target_end == target || sp == NULL)
        return 400;
    for (size_t i = target; i < target_end; i++)
        if (!http_is_vchar((unsigned char)line[i]))
            return 400;

    req->method = line;
    req->method_len = method_len;
    req->target = line + target;
    req->target_len = target_end - target;
    return parse_version(sp + 1, len - target_end - 1, &req->version_minor);
}

static int fail(int *status, int code)
{
    *status = code;
    return HTTP_PARSE_ERROR;
}

int http_parse_request(const char *buf, size_t head_len, const http_limits *limits,
                       http_request *req, int *status)
{
    size_t pos = 0, line_len;
    int rc;

    if (head_len > limits->max_head || head_len > INT_MAX)
        return fail(status, 431);
    /* RFC 9112 2.2: empty lines before the request-line are ignored. */
    while (head_len - pos >= 2 && buf[pos] == '\r' && buf[pos + 1] == '\n')
        pos += 2;
    if (line_at(buf, head_len, pos, &line_len) != 0)
        return fail(status, 400);
    rc = parse_request_line(buf + pos, line_len, limits, req);
    if (rc == 0)
        rc = parse_fields(buf, head_len, pos + line_len + 2, limits, req->fields, &req->nfields);
    if (rc != 0)
        return fail(status, rc);
    req->head_len = head_len;
    return (int)head_len;
}

/* status-line = HTTP-version SP status-code SP [ reason-phrase ], without its
 * CRLF; the second SP may be missing too, as many servers omit it when the
 * reason is empty. Returns 0 or -1. */
static int parse_status_line(const char *line, size_t len, http_response *resp)
{
    const char *code;

    if (len < 12 || parse_version(line, 8, &resp->version_minor) != 0 || line[8] != ' ')
        return -1;
    code = line + 9;
    if (code[0] < '1' || code[0] > '9' || !http_is_digit((unsigned char)code[1]) ||
        !http_is_digit((unsigned char)code[2]))
        return -1;
    if (len > 12 && line[12] != ' ')
        return -1;
    for (size_t i = 13; i < len; i++)
        if (!http_is_text((unsigned char)line[i]))
            return -1;

    resp->status = (code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0');
    resp->reason = len > 12 ? line + 13 : line + 12;
    resp->reason_len = len > 12 ? len - 13 : 0;
    return 0;
}

int http_parse_response(const char *buf, size_t head_len, const http_limits *limits,
                        http_response *resp, int *status)
{
    size_t line_len;

    /* Whatever is wrong, the client can only be told the origin failed; and
     * unlike requests, no leading empty lines are skipped (RFC 9112 2.2
     * allows that for requests only). */
    if (head_len > limits->max_head || head_len > INT_MAX ||
        line_at(buf, head_len, 0, &line_len) != 0 ||
        parse_status_line(buf, line_len, resp) != 0 ||
        parse_fields(buf, head_len, line_len + 2, limits, resp->fields, &resp->nfields) != 0)
        return fail(status, 502);
    resp->head_len = head_len;
    return (int)head_len;
}

/* ---------------------------------------------------------------------------
 * Body framing (RFC 9112 6.3)
 * ------------------------------------------------------------------------- */

/* Returns the first field of a known kind, and in *count how many there are. */
static const http_field *find_field(const http_field *fields, size_t n, http_known kind,
                                    size_t *count)
{
    const http_field *first = NULL;

    *count = 0;
    for (size_t i = 0; i < n; i++) {
        if (fields[i].known != kind)
            continue;
        if (first == NULL)
            first = &fields[i];
        (*count)++;
    }
    return first;
}

/* Content-Length = 1*DIGIT. Returns 0, or -1 for anything else (a sign, a
 * list, inner whitespace) and for a value that does not fit 64 bits. */
static int parse_length(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Reads every Content-Length field. Returns 0 with *present set (and *length
 * when present), or -1 when a value is invalid or two fields disagree. */
static int content_length(const http_field *fields, size_t n, int *present, uint64_t *length)
{
    *present = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        if (fields[i].known != HF_CONTENT_LENGTH)
            continue;
        if (parse_length(fields[i].value, fields[i].value_len, &v) != 0 ||
            (*present && v != *length))
            return -1;
        *present = 1;
        *length = v;
    }
    return 0;
}

/* What the transfer codings of a Transfer-Encoding value amount to. */
typedef struct codings {
    size_t count;       /* codings listed */
    size_t chunked;     /* how many of them are chunked */
    int chunked_last;   /* the final coding is chunked */
    int malformed;      /* a coding name is not a token, or junk follows it */
    int unknown;        /* a coding this proxy does not know */
} codings;

static int is_known_coding(const char *name, size_t len)
{
    static const char *const known[] = {
        "chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress",
    };

    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (http_token_eq(name, len, known[i], strlen(known[i])))
            return 1;
    return 0;
}

/* transfer-coding = token *( OWS ";" OWS transfer-parameter ); only the name
 * matters here, the parameters are passed on untouched. */
static void read_codings(const http_field *te, codings *c)
{
    size_t pos = 0, len;
    const char *elem;

    *c = (codings){ 0 };
    while (http_list_next(te->value, te->value_len, &pos, &elem, &len)) {
        size_t name_len = 0, after;
        int is_chunked;

        while (name_len < len && http_is_tchar((unsigned char)elem[name_len]))
            name_len++;
        after = name_len;
        while (after < len && http_is_ows((unsigned char)elem[after]))
            after++;
        if (name_len == 0 || (after < len && elem[after] != ';'))
            c->malformed = 1;
        if (!is_known_coding(elem, name_len))
            c->unknown = 1;
        is_chunked = http_token_eq(elem, name_len, "chunked", 7);
        c->count++;
        c->chunked += (size_t)is_chunked;
        c->chunked_last = is_chunked;
    }
}

int http_request_framing(const http_request *req, http_framing *out)
{
    size_t nte;
    const http_field *te = find_field(req->fields, req->nfields, HF_TRANSFER_ENCODING, &nte);
    int has_length;
    uint64_t length = 0;
    codings c;

    *out = (http_framing){ .kind = BODY_NONE, .te = te };
    if (content_length(req->fields, req->nfields, &has_length, &length) != 0)
        return 400;
    if (te == NULL) {
        if (has_length) {
            out->kind = BODY_LENGTH;
            out->length = length;
        }
        return 0;
    }
    /* Each of these is a way to make the proxy and the origin delimit the
     * body differently (request smuggling); RFC 9112 6.1 and 6.3 say reject. */
    if (nte > 1 || has_length || req->version_minor == 0)
        return 400;
    read_codings(te, &c);
    if (c.count == 0 || c.malformed)
        return 400;
    if (c.unknown)
        return 501;
    if (c.chunked != 1 || !c.chunked_last)
        return 400;
    out->kind = BODY_CHUNKED;
    return 0;
}

int http_response_framing(const http_response *resp, int request_was_head, http_framing *out)
{
    size_t nte;
    const http_field *te = find_field(resp->fields, resp->nfields, HF_TRANSFER_ENCODING, &nte);
    int has_length;
    uint64_t length = 0;
    codings c;

    *out = (http_framing){ .kind = BODY_NONE, .te = te };
    if (request_was_head || resp->status < 200 || resp->status == 204 || resp->status == 304)
        return 0;
    if (content_length(resp->fields, resp->nfields, &has_length, &length) != 0)
        return 502;
    if (te == NULL) {
        out->kind = has_length ? BODY_LENGTH : BODY_CLOSE;
        out->length = length;
        return 0;
    }
    /* An HTTP/1.0 message with Transfer-Encoding has faulty framing
     * (RFC 9112 6.1), as has one that also carries Content-Length; several
     * Transfer-Encoding fields are refused as for requests. */
    if (nte > 1 || has_length || resp->version_minor == 0)
        return 502;
    /* Unlike a request, a response whose final coding is not chunked is
     * still delimited: by the origin closing the connection. */
    read_codings(te, &c);
    out->kind = c.chunked_last ? BODY_CHUNKED : BODY_CLOSE;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Helpers over fields
 * ------------------------------------------------------------------------- */

http_known http_classify(const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t len;
        http_known kind;
    } known[] = {
        {"Host", 4, HF_HOST},
        {"Connection", 10, HF_CONNECTION},
        {"Content-Length", 14, HF_CONTENT_LENGTH},
        {"Transfer-Encoding", 17, HF_TRANSFER_ENCODING},
        {"Proxy-Connection", 16, HF_PROXY_CONNECTION},
        {"Keep-Alive", 10, HF_KEEP_ALIVE},
        {"TE", 2, HF_TE},
        {"Trailer", 7, HF_TRAILER},
        {"Upgrade", 7, HF_UPGRADE},
        {"Proxy-Authorization", 19, HF_PROXY_AUTHORIZATION},
        {"Proxy-Authenticate", 18, HF_PROXY_AUTHENTICATE},
        {"X-Anonproxy-Country", 19, HF_X_ANONPROXY_COUNTRY},
    };
    /* The length rules out all but one or two candidates before any byte is
     * compared. */
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (known[i].len == len && http_token_eq(name, len, known[i].name, len))
            return known[i].kind;
    return HF_OTHER;
}

int http_name_is(const http_field *f, const char *name)
{
    return http_token_eq(f->name, f->name_len, name, strlen(name));
}

int http_token_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (http_lower((unsigned char)a[i]) != http_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int http_list_next(const char *value, size_t value_len, size_t *pos,
                   const char **elem, size_t *elem_len)
{
    size_t i = *pos, start, end;
    int quoted = 0;

    while (i < value_len && (value[i] == ',' || http_is_ows((unsigned char)value[i])))
        i++;
    if (i >= value_len) {
        *pos = value_len;
        return 0;
    }
    /* A comma inside a quoted-string (a parameter value) does not end the
     * element (RFC 9110 5.6.4). */
    for (start = i; i < value_len; i++) {
        if (quoted && value[i] == '\\' && i + 1 < value_len)
            i++;
        else if (value[i] == '"')
            quoted = !quoted;
        else if (value[i] == ',' && !quoted)
            break;
    }
    end = i;
    while (http_is_ows((unsigned char)value[end - 1]))
        end--;
    *elem = value + start;
    *elem_len = end - start;
    *pos = i;
    return 1;
}

int http_list_has(const char *value, size_t value_len, const char *token)
{
    size_t pos = 0, len, token_len = strlen(token);
    const char *elem;

    while (http_list_next(value, value_len, &pos, &elem, &len))
        if (http_token_eq(elem, len, token, token_len))
            return 1;
    return 0;
}
