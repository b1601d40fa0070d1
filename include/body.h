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

#include "chunked.h"
#include "http_parser.h"

struct bufferevent;
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

/* Flow settings for a connection that relays bodies or tunnel bytes: reading
 * stops once `limit` bytes wait in its input, the write callback fires when
 * its output drains below limit / 2, and one read or write moves up to
 * `limit` bytes (libevent's default of 16 KiB costs throughput). */
void body_set_flow(struct bufferevent *bev, size_t limit);

/* Reads what bev's socket holds into its input buffer, up to `limit` bytes
 * in it. libevent 2.1 reads at most 4 KiB per readiness event, which caps a
 * relay at a few hundred MB/s; read callbacks call this first. EOF and
 * errors are left for libevent to find on its next read (both are sticky).
 * Does nothing for a TLS bufferevent (its filter does the reading). */
void body_read_more(struct bufferevent *bev, size_t limit);

/* Sends what bev's output holds. A relay keeps EV_WRITE disabled while its
 * output is empty: the bytes are written now, in the same wakeup that
 * produced them, and libevent watches for writability only while some are
 * left, so a small exchange costs no epoll_ctl. If EV_WRITE is already on,
 * the socket was full at the last try and libevent writes when it drains.
 * Errors are left for libevent to find. A TLS bufferevent's filter does its
 * own writing: it just gets EV_WRITE. Call it after adding to the output
 * and from the write callback. */
void body_flush(struct bufferevent *bev);

/* The sender closed its side. Returns 1 when that ends the body properly
 * (close-delimited, or already done), 0 when the body was cut short. */
int body_pump_eof(body_pump *p);

#endif
