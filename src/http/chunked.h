/* chunked.h - incremental decoder for the chunked transfer coding (RFC 9112 7.1).
 *
 * A byte-driven state machine that never allocates and never copies: the
 * caller shows it whatever bytes have arrived (any split, even one byte at a
 * time) and it says how many of them are framing to drop and how many are
 * payload to pass on. That lets the proxy move payload between evbuffers
 * without copying and re-frame it for the other side.
 *
 * Strict: chunk sizes are 1-16 hex digits (no sign, no whitespace, no
 * overflow), every line ends in CRLF (a bare CR or LF is an error), chunk
 * extensions are syntax-checked and skipped, trailer fields are syntax-checked
 * and dropped. Line and trailer sizes are bounded.
 */
#ifndef ANONPROXY_CHUNKED_H
#define ANONPROXY_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

typedef enum chunked_result {
    CHUNKED_MORE,   /* all shown bytes were framing: drop *skip, wait for more */
    CHUNKED_DATA,   /* drop *skip, then up to *data payload bytes follow */
    CHUNKED_DONE,   /* drop *skip: the message (last chunk and trailers) is complete */
    CHUNKED_ERROR,  /* malformed framing; the message cannot be delimited */
} chunked_result;

typedef struct chunked_decoder {
    int state;             /* private */
    uint64_t chunk_left;   /* payload bytes left in the current chunk */
    unsigned size_digits;  /* private: hex digits seen in the size */
    size_t line_bytes;     /* private: bytes on the current size or trailer line */
    size_t trailer_bytes;  /* private: bytes of trailer section so far */
} chunked_decoder;

/* Bounds: a chunk-size line (with extensions) and the whole trailer section. */
#define CHUNKED_MAX_LINE 4096
#define CHUNKED_MAX_TRAILERS 16384

void chunked_init(chunked_decoder *d);

/* Shows the decoder buf[0..len). It consumes framing bytes from the front,
 * reporting how many in *skip, and stops at payload, at the end of the
 * message, at an error, or when buf is used up.
 * On CHUNKED_DATA, *data (> 0) is how many payload bytes the current chunk
 * still has; the bytes at buf[*skip..] are payload (as many as are there).
 * The caller passes on n <= min(*data, len - *skip) of them and then calls
 * chunked_consume(d, n) before calling chunked_next again with the bytes
 * after them. */
chunked_result chunked_next(chunked_decoder *d, const char *buf, size_t len,
                            size_t *skip, uint64_t *data);

/* Records that n payload bytes (n <= chunk_left) were taken by the caller. */
void chunked_consume(chunked_decoder *d, uint64_t n);

/* True once the decoder has seen the whole message. */
int chunked_done(const chunked_decoder *d);

/* Decodes a chunked body in place, for callers that read a whole (small)
 * message into one buffer of their own: payload moves left over the framing
 * it replaces, so nothing is allocated and buf stays the caller's.
 * *rd is the next framed byte, *wr the end of the payload decoded so far,
 * both offsets into buf; start both at the body's first byte, with d fresh
 * from chunked_init. Goes through buf[*rd..len) and returns
 *   CHUNKED_MORE   all of it is used up: append to buf, call again with the
 *                  new len (buf may have been moved: only offsets are kept);
 *   CHUNKED_DONE   the body is whole: the payload is buf[start..*wr), and
 *                  whatever follows the message starts at *rd;
 *   CHUNKED_ERROR  malformed framing.
 * Never CHUNKED_DATA. */
chunked_result chunked_decode_in_place(chunked_decoder *d, char *buf, size_t len, size_t *rd,
                                       size_t *wr);

#endif
