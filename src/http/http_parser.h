/* http_parser.h - strict, allocation-free HTTP/1.x message head parser.
 *
 * The parser never allocates and never copies: every string it reports points
 * into the caller's buffer, which must stay unchanged while the result is used.
 * It is deliberately stricter than RFC 9112's "MAY accept" clauses: anything
 * that two implementations could read differently (request smuggling,
 * header-injection, obs-fold) is rejected with the HTTP status to answer.
 *
 * Use:
 *   1. http_head_end() on the bytes received so far, resuming from *scan, to
 *      learn whether a whole head (up to the empty line) has arrived;
 *   2. http_parse_request() / http_parse_response() on exactly that head;
 *   3. http_request_framing() / http_response_framing() to learn how the
 *      body that follows is delimited.
 */
#ifndef ANONPROXY_HTTP_PARSER_H
#define ANONPROXY_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

/* Bounds applied while parsing; all in bytes except max_fields. */
typedef struct http_limits {
    size_t max_head;    /* whole head, start line to empty line: else 431 (502 for responses) */
    size_t max_fields;  /* number of header fields: else 431 */
    size_t max_uri;     /* request-target length: else 414 */
    size_t max_line;    /* one header field line: else 431 */
} http_limits;

/* The fields the proxy itself acts on, recognised once while parsing so
 * that the per-request code compares integers, not names. */
typedef enum http_known {
    HF_OTHER,
    HF_HOST,
    HF_CONNECTION,
    HF_CONTENT_LENGTH,
    HF_TRANSFER_ENCODING,
    HF_PROXY_CONNECTION,
    HF_KEEP_ALIVE,
    HF_TE,
    HF_TRAILER,
    HF_UPGRADE,
    HF_PROXY_AUTHORIZATION,
    HF_PROXY_AUTHENTICATE,
    HF_X_ANONPROXY_COUNTRY,
} http_known;

/* One header field. All pointers into the parsed buffer. */
typedef struct http_field {
    const char *name;   /* field name exactly as received (case kept) */
    size_t name_len;
    const char *value;  /* value without leading/trailing SP/HTAB */
    size_t value_len;
    const char *line;   /* the whole line as received, CRLF included */
    size_t line_len;
    http_known known;   /* which known field the name is, whatever its case */
} http_field;

typedef struct http_request {
    const char *method;
    size_t method_len;
    const char *target;   /* request-target as received */
    size_t target_len;
    int version_minor;    /* HTTP/1.<version_minor>; 0 or 1 */
    http_field *fields;   /* caller's array, filled in received order */
    size_t nfields;
    size_t head_len;      /* bytes from the start line through the empty line */
} http_request;

typedef struct http_response {
    int version_minor;
    int status;           /* 100..999 */
    const char *reason;
    size_t reason_len;
    http_field *fields;
    size_t nfields;
    size_t head_len;
} http_response;

/* Parse outcome: >0 is the head length; these are the others. */
enum {
    HTTP_PARSE_INCOMPLETE = -2,
    HTTP_PARSE_ERROR = -1,
};

/* Looks for the end of a message head in buf[0..len), resuming the scan at
 * *scan (start with 0; it is updated so that repeated calls on a growing
 * buffer cost O(new bytes)). Returns the head length including the final
 * empty line, or 0 when the end has not arrived yet. Leading empty lines
 * before a request line (RFC 9112 2.2) are counted as part of the head. */
size_t http_head_end(const char *buf, size_t len, size_t *scan);

/* Parses a request head of exactly head_len bytes (as found by
 * http_head_end). On success fills *req (req->fields must point at an array of
 * limits->max_fields entries) and returns head_len. On failure returns
 * HTTP_PARSE_ERROR and sets *status to the HTTP status the client should get:
 * 400 malformed, 414 target too long, 431 fields too large or too many,
 * 505 unsupported version, 501 unknown method syntax is still 400. */
int http_parse_request(const char *buf, size_t head_len, const http_limits *limits,
                       http_request *req, int *status);

/* Same for a response head. Any failure is reported as *status = 502. */
int http_parse_response(const char *buf, size_t head_len, const http_limits *limits,
                        http_response *resp, int *status);

/* How a message body is delimited (RFC 9112 6.3). */
typedef enum body_kind {
    BODY_NONE,      /* no body at all */
    BODY_LENGTH,    /* exactly `length` bytes */
    BODY_CHUNKED,   /* chunked transfer coding is the final coding */
    BODY_CLOSE,     /* until the sender closes (responses only) */
} body_kind;

typedef struct http_framing {
    body_kind kind;
    uint64_t length;        /* for BODY_LENGTH */
    const http_field *te;   /* the Transfer-Encoding field, if any */
} http_framing;

/* Request framing. Returns 0, or an HTTP status to reject with:
 * 400 for Content-Length together with Transfer-Encoding, several differing
 * or list-valued Content-Length fields, a non-numeric or overflowing length,
 * Transfer-Encoding in an HTTP/1.0 request, several Transfer-Encoding fields,
 * chunked present but not last or present twice; 501 for a transfer coding
 * this proxy does not know (known: chunked, gzip, x-gzip, deflate, compress,
 * x-compress). */
int http_request_framing(const http_request *req, http_framing *out);

/* Response framing, given the request method was HEAD or not and whether the
 * request was CONNECT. Returns 0, or 502 for an unusable response (invalid or
 * conflicting Content-Length, Content-Length with Transfer-Encoding). 1xx,
 * 204, 304 and HEAD responses have BODY_NONE. */
int http_response_framing(const http_response *resp, int request_was_head, http_framing *out);

/* Helpers over fields. */

/* Which known field a name is (HF_OTHER for any other). */
http_known http_classify(const char *name, size_t len);

/* Case-insensitive comparison of a field name with a NUL-terminated name. */
int http_name_is(const http_field *f, const char *name);

/* Case-insensitive ASCII equality of two byte ranges. */
int http_token_eq(const char *a, size_t alen, const char *b, size_t blen);

/* Iterates over the comma-separated elements of a list-valued field value
 * (RFC 9110 5.6.1), skipping empty elements and optional whitespace.
 * Start with *pos = 0; returns 1 and sets *elem and *elem_len for each element,
 * 0 at the end. */
int http_list_next(const char *value, size_t value_len, size_t *pos,
                   const char **elem, size_t *elem_len);

/* Does the comma-separated list in the value contain `token` (case-insensitive)? */
int http_list_has(const char *value, size_t value_len, const char *token);

#endif
