/* chunked.c - see chunked.h.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *
 * One state per position in that grammar, advanced a byte at a time, so the
 * decoder can stop and resume anywhere. Payload is never walked byte by byte:
 * the caller is told how much there is and reports back what it took.
 */
#include "http/chunked.h"

#include <string.h>

#include "core/util.h"
#include "http/http_chars.h"

enum {
    CS_SIZE,          /* chunk-size digits */
    CS_SIZE_WS,       /* whitespace after the size: only ';' may follow */
    CS_EXT,           /* chunk extensions, skipped up to the CR */
    CS_SIZE_LF,
    CS_DATA,          /* chunk_left payload bytes */
    CS_DATA_CR,
    CS_DATA_LF,
    CS_TRAILER_NAME,  /* a trailer field name, or the CR of the final empty line */
    CS_TRAILER_VALUE,
    CS_TRAILER_LF,
    CS_END_LF,
    CS_DONE,
    CS_ERROR,
};

/* 16 hex digits fill a uint64_t, so a size within the limit cannot overflow. */
#define MAX_SIZE_DIGITS 16

static void start_size_line(chunked_decoder *d)
{
    d->state = CS_SIZE;
    d->chunk_left = 0;
    d->size_digits = 0;
    d->line_bytes = 0;
}

void chunked_init(chunked_decoder *d)
{
    start_size_line(d);
    d->trailer_bytes = 0;
}

/* Reads one byte of the size line (CR excluded). Returns 0 or -1. */
static int size_line_byte(chunked_decoder *d, unsigned char c)
{
    int v = hex_digit_value(c);

    if (++d->line_bytes > CHUNKED_MAX_LINE)
        return -1;
    switch (d->state) {
    case CS_SIZE:
        if (v >= 0) {
            if (d->size_digits == MAX_SIZE_DIGITS)
                return -1;
            d->chunk_left = d->chunk_left << 4 | (uint64_t)v;
            d->size_digits++;
        } else if (d->size_digits == 0) {
            return -1; /* a sign, whitespace or nothing before the size */
        } else if (c == ';') {
            d->state = CS_EXT;
        } else if (c == ' ' || c == '\t') {
            d->state = CS_SIZE_WS;
        } else {
            return -1;
        }
        return 0;
    case CS_SIZE_WS:
        if (c == ';')
            d->state = CS_EXT;
        else if (c != ' ' && c != '\t')
            return -1;
        return 0;
    default: /* CS_EXT */
        return http_is_text(c) ? 0 : -1;
    }
}

/* Reads one byte of the trailer section or of the final CRLF, both of which
 * count towards CHUNKED_MAX_TRAILERS. Returns 0 or -1.
 * Trailer fields are dropped, so they are only checked enough to be sure
 * where each line ends: a name without whitespace (no obs-fold, nothing
 * between name and colon), a colon, then text. */
static int trailer_byte(chunked_decoder *d, unsigned char c)
{
    if (++d->trailer_bytes > CHUNKED_MAX_TRAILERS)
        return -1;
    switch (d->state) {
    case CS_TRAILER_NAME:
        if (c == '\r' && d->line_bytes == 0)
            d->state = CS_END_LF;
        else if (c == ':' && d->line_bytes > 0)
            d->state = CS_TRAILER_VALUE;
        else if (c <= ' ' || c >= 0x7f)
            return -1;
        d->line_bytes++;
        return 0;
    case CS_TRAILER_VALUE:
        if (c == '\r')
            d->state = CS_TRAILER_LF;
        else if (!http_is_text(c))
            return -1;
        return 0;
    case CS_TRAILER_LF:
        if (c != '\n')
            return -1;
        d->state = CS_TRAILER_NAME;
        d->line_bytes = 0;
        return 0;
    default: /* CS_END_LF */
        if (c != '\n')
            return -1;
        d->state = CS_DONE;
        return 0;
    }
}

/* Advances over one framing byte. Returns 0 or -1. */
static int framing_byte(chunked_decoder *d, unsigned char c)
{
    switch (d->state) {
    case CS_SIZE:
    case CS_SIZE_WS:
    case CS_EXT:
        if (c != '\r')
            return size_line_byte(d, c);
        /* Whitespace after the size may only lead to an extension. */
        if (d->state == CS_SIZE_WS || d->size_digits == 0)
            return -1;
        d->state = CS_SIZE_LF;
        return 0;
    case CS_SIZE_LF:
        if (c != '\n')
            return -1;
        d->line_bytes = 0;
        d->state = d->chunk_left > 0 ? CS_DATA : CS_TRAILER_NAME;
        return 0;
    case CS_DATA_CR:
        if (c != '\r')
            return -1;
        d->state = CS_DATA_LF;
        return 0;
    case CS_DATA_LF:
        if (c != '\n')
            return -1;
        start_size_line(d);
        return 0;
    case CS_TRAILER_NAME:
    case CS_TRAILER_VALUE:
    case CS_TRAILER_LF:
    case CS_END_LF:
        return trailer_byte(d, c);
    default:
        return -1;
    }
}

chunked_result chunked_next(chunked_decoder *d, const char *buf, size_t len,
                            size_t *skip, uint64_t *data)
{
    size_t i = 0;

    *data = 0;
    for (;;) {
        *skip = i;
        if (d->state == CS_DONE)
            return CHUNKED_DONE;
        if (d->state == CS_ERROR)
            return CHUNKED_ERROR;
        /* Payload is reported only when some of it is there, so that a
         * caller looping until CHUNKED_MORE always makes progress. */
        if (d->state == CS_DATA && i < len) {
            *data = d->chunk_left;
            return CHUNKED_DATA;
        }
        if (i == len)
            return CHUNKED_MORE;
        if (framing_byte(d, (unsigned char)buf[i]) != 0)
            d->state = CS_ERROR;
        else
            i++;
    }
}

void chunked_consume(chunked_decoder *d, uint64_t n)
{
    if (n == 0)
        return;
    /* Taking more than the chunk holds is a caller bug; failing the message
     * is better than silently misframing the rest of it. */
    if (d->state != CS_DATA || n > d->chunk_left) {
        d->state = CS_ERROR;
        return;
    }
    d->chunk_left -= n;
    if (d->chunk_left == 0)
        d->state = CS_DATA_CR;
}

int chunked_done(const chunked_decoder *d)
{
    return d->state == CS_DONE;
}

chunked_result chunked_decode_in_place(chunked_decoder *d, char *buf, size_t len, size_t *rd,
                                       size_t *wr)
{
    for (;;) {
        size_t skip;
        uint64_t data;
        chunked_result r = chunked_next(d, buf + *rd, len - *rd, &skip, &data);
        *rd += skip;
        if (r != CHUNKED_DATA)
            return r;
        size_t n = len - *rd < data ? len - *rd : (size_t)data;
        memmove(buf + *wr, buf + *rd, n);
        *wr += n;
        *rd += n;
        chunked_consume(d, n);
    }
}
