/* test_chunked.c - unit tests for src/http/chunked.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"

/* A string literal and its length. */
#define LIT(s) s, sizeof(s) - 1

/* Plays the caller: keeps the bytes the decoder has not consumed yet, shows
 * them again with each new piece (as an exact-size heap copy, so that
 * AddressSanitizer catches a read past the end) and collects the payload. */
typedef struct reader {
    chunked_decoder dec;
    char *pending;
    size_t npending;
    char *payload;
    size_t npayload;
} reader;

static void reader_init(reader *r)
{
    memset(r, 0, sizeof *r);
    chunked_init(&r->dec);
}

static void reader_free(reader *r)
{
    free(r->pending);
    free(r->payload);
}

static void drop(reader *r, size_t n)
{
    memmove(r->pending, r->pending + n, r->npending - n);
    r->npending -= n;
}

/* Adds a piece of the stream and runs the decoder until it needs more, is
 * done or fails; returns that result. */
static chunked_result feed(reader *r, const char *piece, size_t len)
{
    r->pending = realloc(r->pending, r->npending + len + 1);
    assert_non_null(r->pending);
    memcpy(r->pending + r->npending, piece, len);
    r->npending += len;

    for (;;) {
        char *view = malloc(r->npending > 0 ? r->npending : 1);
        size_t skip = 99, n;
        uint64_t data = 99;
        chunked_result res;

        assert_non_null(view);
        memcpy(view, r->pending, r->npending);
        res = chunked_next(&r->dec, view, r->npending, &skip, &data);
        free(view);
        assert_true(skip <= r->npending);
        if (res != CHUNKED_DATA) {
            assert_true(data == 0);
            if (res == CHUNKED_MORE)
                assert_int_equal(skip, r->npending);
            drop(r, skip);
            return res;
        }
        assert_true(data > 0);
        assert_true(skip < r->npending);
        drop(r, skip);
        n = r->npending < data ? r->npending : (size_t)data;
        r->payload = realloc(r->payload, r->npayload + n + 1);
        assert_non_null(r->payload);
        memcpy(r->payload + r->npayload, r->pending, n);
        r->npayload += n;
        chunked_consume(&r->dec, n);
        drop(r, n);
    }
}

/* Decodes a whole message given in one piece. */
static chunked_result decode(const char *msg, size_t len)
{
    reader r;
    chunked_result res;

    reader_init(&r);
    res = feed(&r, msg, len);
    reader_free(&r);
    return res;
}

/* A message with several chunks, upper- and lower-case sizes, extensions of
 * every kind and trailers, and the payload it carries. */
static const char multi_msg[] =
    "5\r\nHello\r\n"
    "1;ext\r\n,\r\n"
    "A ;name=value;q=\"a b;c\"\t\r\n world!!!!\r\n"
    "00000000000000f\r\n0123456789abcde\r\n"
    "10\r\n0123456789ABCDEF\r\n"
    "0;last=1\r\n"
    "Expires: never\r\n"
    "X-Sum:\t\xc3\xa9 1 \r\n"
    "\r\n";
static const char multi_payload[] = "Hello, world!!!!0123456789abcde0123456789ABCDEF";

static void assert_decodes_to_payload(reader *r)
{
    assert_true(chunked_done(&r->dec));
    assert_int_equal(r->npayload, sizeof multi_payload - 1);
    assert_memory_equal(r->payload, multi_payload, r->npayload);
    assert_int_equal(r->npending, 0);
}

/* ---------------------------------------------------------------------------
 * Good messages
 * ------------------------------------------------------------------------- */

static void test_single_chunk_exact_results(void **state)
{
    const char msg[] = "5\r\nhello\r\n0\r\n\r\n";
    chunked_decoder d;
    size_t skip;
    uint64_t data;

    (void)state;
    chunked_init(&d);
    assert_false(chunked_done(&d));
    assert_int_equal(chunked_next(&d, msg, sizeof msg - 1, &skip, &data), CHUNKED_DATA);
    assert_int_equal(skip, 3);
    assert_true(data == 5);
    assert_memory_equal(msg + skip, "hello", 5);
    chunked_consume(&d, 5);
    assert_int_equal(chunked_next(&d, msg + 8, sizeof msg - 1 - 8, &skip, &data), CHUNKED_DONE);
    assert_int_equal(skip, 7);
    assert_true(data == 0);
    assert_true(chunked_done(&d));
}

static void test_partial_payload_and_more(void **state)
{
    chunked_decoder d;
    size_t skip;
    uint64_t data;

    (void)state;
    chunked_init(&d);
    assert_int_equal(chunked_next(&d, LIT("5\r"), &skip, &data), CHUNKED_MORE);
    assert_int_equal(skip, 2);
    /* the size line is complete but no payload has arrived yet */
    assert_int_equal(chunked_next(&d, LIT("\n"), &skip, &data), CHUNKED_MORE);
    assert_int_equal(skip, 1);
    assert_int_equal(chunked_next(&d, LIT("hel"), &skip, &data), CHUNKED_DATA);
    assert_int_equal(skip, 0);
    assert_true(data == 5);
    chunked_consume(&d, 3);
    assert_int_equal(chunked_next(&d, LIT("lo\r\n"), &skip, &data), CHUNKED_DATA);
    assert_int_equal(skip, 0);
    assert_true(data == 2);
    assert_true(d.chunk_left == 2);
    chunked_consume(&d, 2);
    assert_int_equal(chunked_next(&d, LIT("\r\n"), &skip, &data), CHUNKED_MORE);
    assert_int_equal(skip, 2);
    assert_int_equal(chunked_next(&d, LIT("0\r\n\r\n"), &skip, &data), CHUNKED_DONE);
    assert_int_equal(skip, 5);
}

static void test_multi_chunk_whole(void **state)
{
    reader r;

    (void)state;
    reader_init(&r);
    assert_int_equal(feed(&r, LIT(multi_msg)), CHUNKED_DONE);
    assert_decodes_to_payload(&r);
    reader_free(&r);
}

static void test_multi_chunk_one_byte_at_a_time(void **state)
{
    reader r;

    (void)state;
    reader_init(&r);
    for (size_t i = 0; i + 1 < sizeof multi_msg - 1; i++)
        assert_int_equal(feed(&r, multi_msg + i, 1), CHUNKED_MORE);
    assert_int_equal(feed(&r, multi_msg + sizeof multi_msg - 2, 1), CHUNKED_DONE);
    assert_decodes_to_payload(&r);
    reader_free(&r);
}

/* The length of the next piece of a random split: 1 to max bytes, and no
 * more than the `left` there are. */
static size_t piece_len(uint32_t *rng, size_t max, size_t left)
{
    *rng = *rng * 1103515245u + 12345u;
    size_t n = 1 + (*rng >> 16) % max;
    return n < left ? n : left;
}

static void test_multi_chunk_random_splits(void **state)
{
    const size_t total = sizeof multi_msg - 1;
    uint32_t rng = 12345;

    (void)state;
    for (int round = 0; round < 500; round++) {
        reader r;
        size_t pos = 0;
        chunked_result res = CHUNKED_MORE;

        reader_init(&r);
        while (pos < total) {
            size_t n = piece_len(&rng, 24, total - pos);
            assert_int_equal(res, CHUNKED_MORE);
            res = feed(&r, multi_msg + pos, n);
            pos += n;
        }
        assert_int_equal(res, CHUNKED_DONE);
        assert_decodes_to_payload(&r);
        reader_free(&r);
    }
}

static void test_sixteen_digit_size(void **state)
{
    chunked_decoder d;
    size_t skip;
    uint64_t data;

    (void)state;
    chunked_init(&d);
    assert_int_equal(chunked_next(&d, LIT("0000000000000003\r\nabc"), &skip, &data), CHUNKED_DATA);
    assert_int_equal(skip, 18);
    assert_true(data == 3);
    chunked_init(&d);
    assert_int_equal(chunked_next(&d, LIT("ffffffffffffffff\r\nx"), &skip, &data), CHUNKED_DATA);
    assert_true(data == UINT64_MAX);
}

static void test_extensions(void **state)
{
    reader r;

    (void)state;
    reader_init(&r);
    assert_int_equal(feed(&r, LIT("3;a\r\nabc\r\n2\t; b = \"x;y\"\r\nde\r\n0;c=\xff\r\n\r\n")), CHUNKED_DONE);
    assert_int_equal(r.npayload, 5);
    assert_memory_equal(r.payload, "abcde", 5);
    reader_free(&r);
}

static void test_trailers(void **state)
{
    (void)state;
    assert_int_equal(decode(LIT("0\r\nExpires: never\r\nX-A:\r\nX-B:a:b\r\n\r\n")), CHUNKED_DONE);
}

static void test_done_is_sticky_and_leaves_following_bytes(void **state)
{
    chunked_decoder d;
    size_t skip;
    uint64_t data;

    (void)state;
    chunked_init(&d);
    assert_int_equal(chunked_next(&d, LIT("0\r\n\r\nGET / HTTP/1.1\r\n"), &skip, &data), CHUNKED_DONE);
    assert_int_equal(skip, 5);
    assert_int_equal(chunked_next(&d, LIT("GET / HTTP/1.1\r\n"), &skip, &data), CHUNKED_DONE);
    assert_int_equal(skip, 0);
    assert_int_equal(chunked_next(&d, "", 0, &skip, &data), CHUNKED_DONE);
    assert_int_equal(skip, 0);
    assert_true(chunked_done(&d));
}

static void test_size_line_at_max_length(void **state)
{
    /* "5;" and 4094 'a': CHUNKED_MAX_LINE bytes before the CRLF */
    char msg[CHUNKED_MAX_LINE + 32];
    size_t len;

    (void)state;
    memcpy(msg, "5;", 2);
    memset(msg + 2, 'a', CHUNKED_MAX_LINE - 2);
    len = CHUNKED_MAX_LINE;
    memcpy(msg + len, "\r\nhello\r\n0\r\n\r\n", 14);
    len += 14;
    assert_int_equal(decode(msg, len), CHUNKED_DONE);
}

/* "0\r\n", then one trailer field, so that everything after the last-chunk
 * line (the final CRLF included) is `trailer_bytes` long. */
static chunked_result decode_with_trailers(size_t trailer_bytes)
{
    size_t value_len = trailer_bytes - 7; /* "X: " CRLF CRLF */
    size_t len = 3 + trailer_bytes;
    char *msg = malloc(len);
    chunked_result res;

    assert_non_null(msg);
    memcpy(msg, "0\r\nX: ", 6);
    memset(msg + 6, 'v', value_len);
    memcpy(msg + 6 + value_len, "\r\n\r\n", 4);
    res = decode(msg, len);
    free(msg);
    return res;
}

static void test_trailers_at_max_length(void **state)
{
    (void)state;
    assert_int_equal(decode_with_trailers(CHUNKED_MAX_TRAILERS), CHUNKED_DONE);
}

/* ---------------------------------------------------------------------------
 * In-place decoding
 * ------------------------------------------------------------------------- */

/* A head before the body and a pipelined request after it, as a reader of a
 * whole response would hold them in one buffer. */
#define IN_PLACE_HEAD "HTTP/1.1 200 OK\r\n\r\n"
#define IN_PLACE_NEXT "GET / HTTP/1.1\r\n"

static void test_in_place_whole(void **state)
{
    const size_t start = sizeof IN_PLACE_HEAD - 1, body = sizeof multi_msg - 1;
    const size_t len = start + body + sizeof IN_PLACE_NEXT - 1;
    char *buf = malloc(len);
    chunked_decoder d;
    size_t rd = start, wr = start;

    (void)state;
    assert_non_null(buf);
    memcpy(buf, IN_PLACE_HEAD, start);
    memcpy(buf + start, multi_msg, body);
    memcpy(buf + start + body, IN_PLACE_NEXT, len - start - body);
    chunked_init(&d);
    assert_int_equal(chunked_decode_in_place(&d, buf, len, &rd, &wr), CHUNKED_DONE);
    assert_int_equal(wr - start, sizeof multi_payload - 1);
    assert_memory_equal(buf + start, multi_payload, wr - start);
    /* The head stays, and what follows the message is left where it was. */
    assert_memory_equal(buf, IN_PLACE_HEAD, start);
    assert_int_equal(rd, start + body);
    assert_memory_equal(buf + rd, IN_PLACE_NEXT, len - rd);
    free(buf);
}

/* The bytes arrive a few at a time, appended after what came before: the
 * call says CHUNKED_MORE, having used up every byte, until the last one. */
static void test_in_place_as_bytes_arrive(void **state)
{
    const size_t total = sizeof multi_msg - 1;
    char buf[sizeof multi_msg];
    uint32_t rng = 777;

    (void)state;
    for (int round = 0; round < 200; round++) {
        chunked_decoder d;
        size_t len = 0, rd = 0, wr = 0;
        chunked_result res = CHUNKED_MORE;

        chunked_init(&d);
        while (len < total) {
            size_t n = piece_len(&rng, 16, total - len);
            assert_int_equal(res, CHUNKED_MORE);
            memcpy(buf + len, multi_msg + len, n);
            len += n;
            res = chunked_decode_in_place(&d, buf, len, &rd, &wr);
            assert_true(wr <= rd);
            if (res == CHUNKED_MORE)
                assert_int_equal(rd, len);
        }
        assert_int_equal(res, CHUNKED_DONE);
        assert_int_equal(rd, total);
        assert_int_equal(wr, sizeof multi_payload - 1);
        assert_memory_equal(buf, multi_payload, wr);
    }
}

static void test_in_place_empty_and_errors(void **state)
{
    char empty[] = "0\r\n\r\n", bad[] = "5\r\nhelloX\r\n0\r\n\r\n";
    chunked_decoder d;
    size_t rd = 0, wr = 0;

    (void)state;
    chunked_init(&d);
    assert_int_equal(chunked_decode_in_place(&d, empty, 0, &rd, &wr), CHUNKED_MORE);
    assert_int_equal(chunked_decode_in_place(&d, empty, sizeof empty - 1, &rd, &wr), CHUNKED_DONE);
    assert_int_equal(rd, sizeof empty - 1);
    assert_int_equal(wr, 0);

    chunked_init(&d);
    rd = wr = 0;
    assert_int_equal(chunked_decode_in_place(&d, bad, sizeof bad - 1, &rd, &wr), CHUNKED_ERROR);
    assert_int_equal(wr, 5);
    assert_memory_equal(bad, "hello", 5);
}

/* ---------------------------------------------------------------------------
 * Errors: one test per rule
 * ------------------------------------------------------------------------- */

#define REJECT(test_name, msg)                                                        \
    static void test_name(void **state)                                                \
    {                                                                                  \
        (void)state;                                                                   \
        assert_int_equal(decode(LIT(msg)), CHUNKED_ERROR);                             \
    }

REJECT(test_reject_bad_hex, "g\r\n")
REJECT(test_reject_bad_hex_after_digit, "5x\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_hex_prefix, "0x5\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_seventeen_digits, "00000000000000005\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_negative_size, "-5\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_plus_size, "+5\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_space_before_size, " 5\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_empty_size, "\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_whitespace_without_extension, "5 \r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_size_line_lf_only, "5\nhello\r\n0\r\n\r\n")
REJECT(test_reject_size_line_bare_cr, "5\rhello\r\n0\r\n\r\n")
REJECT(test_reject_extension_bare_lf, "5;a\nb\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_extension_bare_cr, "5;a\rb\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_extension_ctl, "5;a\x01\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_extension_del, "5;a\x7f\r\nhello\r\n0\r\n\r\n")
REJECT(test_reject_missing_crlf_after_data, "5\r\nhelloX\r\n0\r\n\r\n")
REJECT(test_reject_lf_only_after_data, "5\r\nhello\n0\r\n\r\n")
REJECT(test_reject_cr_only_after_data, "5\r\nhello\r0\r\n\r\n")
REJECT(test_reject_lf_lf_after_data, "5\r\nhello\n\n0\r\n\r\n")
REJECT(test_reject_trailer_leading_space, "0\r\n X: y\r\n\r\n")
REJECT(test_reject_trailer_leading_htab, "0\r\n\tX: y\r\n\r\n")
REJECT(test_reject_trailer_colon_first, "0\r\n: y\r\n\r\n")
REJECT(test_reject_trailer_without_colon, "0\r\nXy\r\n\r\n")
REJECT(test_reject_trailer_space_before_colon, "0\r\nX : y\r\n\r\n")
REJECT(test_reject_trailer_bare_lf, "0\r\nX: y\n\r\n")
REJECT(test_reject_trailer_bare_cr, "0\r\nX: y\rz\r\n\r\n")
REJECT(test_reject_trailer_ctl, "0\r\nX: \x01\r\n\r\n")
REJECT(test_reject_final_lf_only, "0\r\n\n")
REJECT(test_reject_final_cr_without_lf, "0\r\n\rX")

static void test_reject_oversized_size_line(void **state)
{
    char msg[CHUNKED_MAX_LINE + 32];
    size_t len;

    (void)state;
    memcpy(msg, "5;", 2);
    memset(msg + 2, 'a', CHUNKED_MAX_LINE - 1);
    len = CHUNKED_MAX_LINE + 1;
    memcpy(msg + len, "\r\nhello\r\n0\r\n\r\n", 14);
    len += 14;
    assert_int_equal(decode(msg, len), CHUNKED_ERROR);
}

static void test_reject_oversized_trailers(void **state)
{
    (void)state;
    assert_int_equal(decode_with_trailers(CHUNKED_MAX_TRAILERS + 1), CHUNKED_ERROR);
}

static void test_error_is_sticky(void **state)
{
    chunked_decoder d;
    size_t skip;
    uint64_t data;

    (void)state;
    chunked_init(&d);
    assert_int_equal(chunked_next(&d, LIT("5\r\nhello\r\nz"), &skip, &data), CHUNKED_DATA);
    chunked_consume(&d, 5);
    assert_int_equal(chunked_next(&d, LIT("\r\nz"), &skip, &data), CHUNKED_ERROR);
    assert_int_equal(chunked_next(&d, LIT("0\r\n\r\n"), &skip, &data), CHUNKED_ERROR);
    assert_int_equal(skip, 0);
    assert_false(chunked_done(&d));
}

static void test_consuming_too_much_is_an_error(void **state)
{
    chunked_decoder d;
    size_t skip;
    uint64_t data;

    (void)state;
    chunked_init(&d);
    assert_int_equal(chunked_next(&d, LIT("2\r\nab\r\n0\r\n\r\n"), &skip, &data), CHUNKED_DATA);
    chunked_consume(&d, 3);
    assert_int_equal(chunked_next(&d, LIT("\r\n0\r\n\r\n"), &skip, &data), CHUNKED_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_chunk_exact_results),
        cmocka_unit_test(test_partial_payload_and_more),
        cmocka_unit_test(test_multi_chunk_whole),
        cmocka_unit_test(test_multi_chunk_one_byte_at_a_time),
        cmocka_unit_test(test_multi_chunk_random_splits),
        cmocka_unit_test(test_sixteen_digit_size),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_done_is_sticky_and_leaves_following_bytes),
        cmocka_unit_test(test_size_line_at_max_length),
        cmocka_unit_test(test_trailers_at_max_length),
        cmocka_unit_test(test_in_place_whole),
        cmocka_unit_test(test_in_place_as_bytes_arrive),
        cmocka_unit_test(test_in_place_empty_and_errors),

        cmocka_unit_test(test_reject_bad_hex),
        cmocka_unit_test(test_reject_bad_hex_after_digit),
        cmocka_unit_test(test_reject_hex_prefix),
        cmocka_unit_test(test_reject_seventeen_digits),
        cmocka_unit_test(test_reject_negative_size),
        cmocka_unit_test(test_reject_plus_size),
        cmocka_unit_test(test_reject_space_before_size),
        cmocka_unit_test(test_reject_empty_size),
        cmocka_unit_test(test_reject_whitespace_without_extension),
        cmocka_unit_test(test_reject_size_line_lf_only),
        cmocka_unit_test(test_reject_size_line_bare_cr),
        cmocka_unit_test(test_reject_extension_bare_lf),
        cmocka_unit_test(test_reject_extension_bare_cr),
        cmocka_unit_test(test_reject_extension_ctl),
        cmocka_unit_test(test_reject_extension_del),
        cmocka_unit_test(test_reject_missing_crlf_after_data),
        cmocka_unit_test(test_reject_lf_only_after_data),
        cmocka_unit_test(test_reject_cr_only_after_data),
        cmocka_unit_test(test_reject_lf_lf_after_data),
        cmocka_unit_test(test_reject_trailer_leading_space),
        cmocka_unit_test(test_reject_trailer_leading_htab),
        cmocka_unit_test(test_reject_trailer_colon_first),
        cmocka_unit_test(test_reject_trailer_without_colon),
        cmocka_unit_test(test_reject_trailer_space_before_colon),
        cmocka_unit_test(test_reject_trailer_bare_lf),
        cmocka_unit_test(test_reject_trailer_bare_cr),
        cmocka_unit_test(test_reject_trailer_ctl),
        cmocka_unit_test(test_reject_final_lf_only),
        cmocka_unit_test(test_reject_final_cr_without_lf),
        cmocka_unit_test(test_reject_oversized_size_line),
        cmocka_unit_test(test_reject_oversized_trailers),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_consuming_too_much_is_an_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
