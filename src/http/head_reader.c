/* head_reader.c - see head_reader.h. */
#include "http/head_reader.h"

#include <event2/buffer.h>

#include "http/http_parser.h"

long http_head_find(struct evbuffer *in, size_t max, size_t *scan, const char **buf)
{
    size_t len = evbuffer_get_length(in);
    size_t window = len < max + 1 ? len : max + 1;
    *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)window);
    size_t head_len = http_head_end(*buf, window, scan);
    if (head_len > 0 && head_len <= max)
        return (long)head_len;
    return window > max ? -1 : 0;
}
