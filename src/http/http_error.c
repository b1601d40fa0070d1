/* http_error.c - see http_error.h. */
#include "http/http_error.h"

#include <event2/buffer.h>
#include <stdio.h>

const char *http_reason(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 508: return "Loop Detected";
    default: return "Error";
    }
}

void http_error_write(struct evbuffer *out, int status, const char *detail)
{
    char body[512];
    const char *reason = http_reason(status);
    /* RFC 9110 15.5.6: a 405 lists the methods that would be accepted. */
    static const char allow[] = "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, CONNECT\r\n";
    int n = snprintf(body, sizeof body, "%d %s%s%s\n", status, reason, detail ? ": " : "",
                     detail ? detail : "");
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof body)
        n = sizeof body - 1;
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: %d\r\n"
                        "Connection: close\r\n"
                        "%s"
                        "\r\n",
                        status, reason, n, status == 405 ? allow : "");
    evbuffer_add(out, body, (size_t)n);
}
