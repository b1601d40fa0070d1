/* body.h - moves one message body from one evbuffer to another.
 *
 * The pump knows how the body is delimited on the way in (Content-Length,
 * chunked, or until close) and how to frame it on the way out (unchanged, or
 * re-encoded as chunked, or decoded for an HTTP/1.0 peer). Payload moves
 * between evbuffers without being copied; only chunk framing is rewritten.
 * Chunk extensions and trailer fields are dropped: both can carry
 * identifying data and no browser-facing feature needs them.
 */
#ifndef ANONPROXY_BODY_H
#define ANONPROXY_BODY_H

#include <stdint.h>

#include "http/chunked.h"
#include "http/http_parser.h"

struct evbuffer;

typedef struct body_pump {
    body_kind in;          /* how the body is delimited where it comes from */
    int out_chunked;       /* frame the output as chunked (only with in == BODY_CHUNKED) */
    uint64_t remaining;    /* BODY_LENGTH: bytes still to come */
    uint64_t moved;        /* payload bytes passed on so far */
    chunked_decoder dec;
    int done;
} body_pump;

/* Prepares a pump. With in == BODY_CHUNKED, out_chunked chooses between
 * re-encoding as chunked and passing the bare payload (to a peer that reads
 * until close). BODY_NONE and a zero length are done at once. */
void body_pump_init(body_pump *p, const http_framing *in, int out_chunked);

/* Moves as much of the body as src holds, unless dst already holds `limit`
 * bytes (back-pressure: a move is never cut short, since splitting an
 * evbuffer chain copies it). Bytes after the end of the body stay in src.
 * Returns 0, or -1 when the chunked framing is malformed. */
int body_pump_move(body_pump *p, struct evbuffer *src, struct evbuffer *dst, size_t limit);

/* The sender closed its side. Returns 1 when that ends the body properly
 * (close-delimited, or already done), 0 when the body was cut short. */
int body_pump_eof(body_pump *p);

#endif
