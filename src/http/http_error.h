/* http_error.h - the error responses the proxy itself sends to clients.
 *
 * Short plain-text bodies, always followed by closing the connection. They
 * never name the software or its version: an error page must not tell an
 * origin-side observer (or a fingerprinting page) which proxy is in use.
 */
#ifndef ANONPROXY_HTTP_ERROR_H
#define ANONPROXY_HTTP_ERROR_H

struct evbuffer;

/* Standard reason phrase for a status the proxy may send ("Bad Gateway"). */
const char *http_reason(int status);

/* Appends a complete response with `status` and a one-line body
 * "<status> <reason>: <detail>" (detail may be NULL) to out. The response
 * carries Connection: close; the caller closes after flushing. */
void http_error_write(struct evbuffer *out, int status, const char *detail);

#endif
