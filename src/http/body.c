/* body.c - see body.h. */
#include "http/body.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>

void body_pump_init(body_pump *p, const http_framing *in, int out_chunked)
{
    p->in = in->kind;
    p->out_chunked = in->kind == BODY_CHUNKED && out_chunked;
    p->remaining = in->kind == BODY_LENGTH ? in->length : 0;
    p->moved = 0;
    chunked_init(&p->dec);
    p->done = in->kind == BODY_NONE || (in->kind == BODY_LENGTH && in->length == 0);
}

/* Back-pressure is checked before a move, not by cutting one short: moving
 * whole evbuffer chains is free, splitting one copies it. So dst may exceed
 * limit by what src holds (itself bounded: a relay reads at most limit). */
static int full(struct evbuffer *dst, size_t limit)
{
    return evbuffer_get_length(dst) >= limit;
}

/* Moves up to n payload bytes, framed as one chunk when re-encoding. */
static void move_payload(body_pump *p, struct evbuffer *src, struct evbuffer *dst, size_t n)
{
    if (p->out_chunked)
        evbuffer_add_printf(dst, "%zx\r\n", n);
    evbuffer_remove_buffer(src, dst, n);
    if (p->out_chunked)
        evbuffer_add(dst, "\r\n", 2);
    p->moved += n;
}

static int move_chunked(body_pump *p, struct evbuffer *src, struct evbuffer *dst, size_t limit)
{
    while (!p->done) {
        struct evbuffer_iovec first;
        if (evbuffer_peek(src, -1, NULL, &first, 1) < 1 || first.iov_len == 0)
            return 0;
        size_t skip = 0;
        uint64_t data = 0;
        chunked_result r = chunked_next(&p->dec, first.iov_base, first.iov_len, &skip, &data);
        evbuffer_drain(src, skip);
        switch (r) {
        case CHUNKED_ERROR:
            return -1;
        case CHUNKED_MORE:
            break;
        case CHUNKED_DONE:
            if (p->out_chunked)
                evbuffer_add(dst, "0\r\n\r\n", 5);
            p->done = 1;
            return 0;
        case CHUNKED_DATA: {
            size_t n = evbuffer_get_length(src);
            if ((uint64_t)n > data)
                n = (size_t)data;
            if (n == 0 || full(dst, limit))
                return 0;
            move_payload(p, src, dst, n);
            chunked_consume(&p->dec, n);
            break;
        }
        }
    }
    return 0;
}

int body_pump_move(body_pump *p, struct evbuffer *src, struct evbuffer *dst, size_t limit)
{
    if (p->done)
        return 0;
    if (p->in == BODY_CHUNKED)
        return move_chunked(p, src, dst, limit);

    size_t n = evbuffer_get_length(src);
    if (p->in == BODY_LENGTH && (uint64_t)n > p->remaining)
        n = (size_t)p->remaining;
    if (n == 0 || full(dst, limit))
        return 0;
    move_payload(p, src, dst, n);
    if (p->in == BODY_LENGTH) {
        p->remaining -= n;
        p->done = p->remaining == 0;
    }
    return 0;
}

int body_pump_eof(body_pump *p)
{
    if (p->in == BODY_CLOSE)
        p->done = 1;
    return p->done;
}
