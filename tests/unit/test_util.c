/* test_util.c - unit tests for src/core/util.c and the inline helpers of
 * src/core/util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"

/* A string literal and its length. */
#define LIT(s) s, sizeof(s) - 1

/* ---------------------------------------------------------------------------
 * Hex digits and percent-encoding
 * ------------------------------------------------------------------------- */

static void test_hex_digit_value(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9' ? c - '0'
                 : c >= 'a' && c <= 'f' ? c - 'a' + 10
                 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        assert_int_equal(hex_digit_value((unsigned char)c), want);
    }
}

/* Decodes s into an exact-size heap buffer (len + 1, the most the decoder
 * may need), so that AddressSanitizer catches a write past it; returns the
 * decoded length and copies the output, NUL included, to out. */
static size_t decode(const char *s, size_t len, int plus_is_space, char *out)
{
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    memset(buf, 'X', len + 1);
    size_t n = percent_decode(s, len, plus_is_space, buf);
    assert_true(n <= len);
    assert_int_equal(buf[n], '\0');
    memcpy(out, buf, n + 1);
    free(buf);
    return n;
}

/* Input (len bytes of in), '+' mode, and the decoded bytes (out_len of out). */
static const struct {
    const char *in;
    size_t len;
    int plus_is_space;
    const char *out;
    size_t out_len;
} decodings[] = {
    {LIT(""), 0, LIT("")},
    {LIT("a%41b%7a%7A"), 0, LIT("aAbzz")},
    {LIT("%2F%2f"), 0, LIT("//")},
    {LIT("%ff"), 0, LIT("\xff")},
    /* A decoded '%' does not start another escape. */
    {LIT("%2541"), 0, LIT("%41")},
    /* A '%' without two hex digits after it is kept. */
    {LIT("abc%"), 0, LIT("abc%")},
    {LIT("%"), 0, LIT("%")},
    {LIT("%4"), 0, LIT("%4")},
    {LIT("%g1%4g"), 0, LIT("%g1%4g")},
    {LIT("%%41"), 0, LIT("%A")},
    /* Only the bytes within len count: the last '1' is not there. */
    {"%41%41", 5, 0, LIT("A%4")},
    /* In a query string '+' is a space, but an escaped one stays a '+'. */
    {LIT("a+b%2B"), 0, LIT("a+b+")},
    {LIT("a+b%2B"), 1, LIT("a b+")},
    /* %00 gives a NUL inside the output, counted in its length. */
    {LIT("a%00b"), 0, LIT("a\0b")},
};

static void test_percent_decode(void **state)
{
    char out[64];

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(decodings); i++) {
        size_t n = decode(decodings[i].in, decodings[i].len, decodings[i].plus_is_space, out);
        assert_int_equal(n, decodings[i].out_len);
        assert_memory_equal(out, decodings[i].out, n);
    }
}

static void test_percent_check(void **state)
{
    size_t n = 99;

    (void)state;
    assert_int_equal(percent_check(LIT("user:p%40ss%2f"), &n), 0);
    assert_int_equal(n, 10);
    assert_int_equal(percent_check("", 0, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(percent_check(LIT("a+b%00"), &n), 0);
    assert_int_equal(n, 4);
    /* The length it promises is what percent_decode gives. */
    char out[64];
    assert_int_equal(percent_check(LIT("%2541%7e"), &n), 0);
    assert_int_equal(n, decode(LIT("%2541%7e"), 0, out));

    n = 99;
    assert_int_equal(percent_check(LIT("abc%"), &n), -1);
    assert_int_equal(percent_check(LIT("%4"), &n), -1);
    assert_int_equal(percent_check(LIT("%4g"), &n), -1);
    assert_int_equal(percent_check(LIT("%g4"), &n), -1);
    assert_int_equal(percent_check("%41", 2, &n), -1);
    assert_int_equal(n, 99);
}

/* ---------------------------------------------------------------------------
 * Country codes
 * ------------------------------------------------------------------------- */

static void test_country_code_parse(void **state)
{
    char cc[3];

    (void)state;
    assert_int_equal(country_code_parse(LIT("DE"), cc), 1);
    assert_string_equal(cc, "DE");
    assert_int_equal(country_code_parse(LIT("fr"), cc), 1);
    assert_string_equal(cc, "FR");
    assert_int_equal(country_code_parse(LIT("gB"), cc), 1);
    assert_string_equal(cc, "GB");
    assert_int_equal(country_code_parse(LIT("az"), cc), 1);
    assert_string_equal(cc, "AZ");
    /* Only the first len bytes count. */
    assert_int_equal(country_code_parse("usa", 2, cc), 1);
    assert_string_equal(cc, "US");
    /* NULL cc: only the check. */
    assert_int_equal(country_code_parse(LIT("nl"), NULL), 1);
}

static void test_country_code_rejects(void **state)
{
    /* The neighbours of the letter ranges, digits, and what is not 7-bit. */
    static const char *const bad[] = {"@A", "A[", "`a", "a{", "D1", "1D", "D ", "\xc3\xa9",
                                      "D\0"};
    char cc[3] = "XY";

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        assert_int_equal(country_code_parse(bad[i], 2, cc), 0);
        assert_int_equal(country_code_parse(bad[i], 2, NULL), 0);
    }
    assert_int_equal(country_code_parse("", 0, cc), 0);
    assert_int_equal(country_code_parse(LIT("D"), cc), 0);
    assert_int_equal(country_code_parse(LIT("DEU"), cc), 0);
    /* cc is written only on success. */
    assert_string_equal(cc, "XY");
}

/* ---------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------- */

static void test_elapsed_ms(void **state)
{
    struct timeval a = {100, 250000}, b = {100, 250999}, c = {101, 249999}, d = {103, 0};

    (void)state;
    assert_int_equal(elapsed_ms(&a, &a), 0);
    assert_int_equal(elapsed_ms(&a, &b), 0);      /* under a millisecond */
    assert_int_equal(elapsed_ms(&a, &c), 999);    /* a borrow from the seconds */
    assert_int_equal(elapsed_ms(&a, &d), 2750);
    /* Backwards is 0, not a huge unsigned value. */
    assert_int_equal(elapsed_ms(&d, &a), 0);
    assert_int_equal(elapsed_ms(&b, &a), 0);
    struct timeval zero = {0, 0}, big = {4000000, 999999};
    assert_true(elapsed_ms(&zero, &big) == 4000000999ul);
}

static void test_monotonic_now(void **state)
{
    struct timeval t0, t1;

    (void)state;
    monotonic_now(&t0);
    assert_true(t0.tv_usec >= 0 && t0.tv_usec < 1000000);
    usleep(20000);
    monotonic_now(&t1);
    unsigned long ms = elapsed_ms(&t0, &t1);
    assert_true(ms >= 19 && ms < 1000);
}

/* ---------------------------------------------------------------------------
 * The intrusive list
 * ------------------------------------------------------------------------- */

typedef struct item {
    int value;
    list_link link;
} item;

/* The values from the front, as a string of digits. */
static void values(list_link *head, char *out)
{
    for (list_link *l = head->next; l != head; l = l->next) {
        assert_ptr_equal(l->next->prev, l);
        *out++ = (char)('0' + list_entry(l, item, link)->value);
    }
    *out = '\0';
}

static void test_list(void **state)
{
    list_link head;
    item items[4];
    char seen[8];

    (void)state;
    list_init(&head);
    assert_true(list_empty(&head));
    values(&head, seen);
    assert_string_equal(seen, "");

    for (int i = 0; i < 4; i++) {
        items[i].value = i;
        list_push_front(&head, &items[i].link);
        assert_false(list_empty(&head));
    }
    values(&head, seen);
    assert_string_equal(seen, "3210");
    assert_ptr_equal(list_entry(head.next, item, link), &items[3]);
    assert_ptr_equal(list_entry(head.prev, item, link), &items[0]);

    list_unlink(&items[2].link);   /* the middle */
    values(&head, seen);
    assert_string_equal(seen, "310");
    /* An unlinked element is its own empty list: unlinking it again is harmless. */
    assert_true(list_empty(&items[2].link));
    list_unlink(&items[2].link);
    values(&head, seen);
    assert_string_equal(seen, "310");

    list_unlink(&items[3].link);   /* the front */
    list_unlink(&items[0].link);   /* the back */
    values(&head, seen);
    assert_string_equal(seen, "1");
    list_unlink(&items[1].link);
    assert_true(list_empty(&head));

    list_push_front(&head, &items[2].link);   /* an element goes back in */
    values(&head, seen);
    assert_string_equal(seen, "2");
}

/* ---------------------------------------------------------------------------
 * exe_dir
 * ------------------------------------------------------------------------- */

static void test_exe_dir(void **state)
{
    char exe[PATH_MAX], dir[PATH_LEN];

    (void)state;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';   /* this binary's directory: build/obj.../unit */

    assert_int_equal(exe_dir(dir, sizeof dir), 0);
    assert_string_equal(dir, exe);
    /* Exactly enough room, and one byte too little. */
    assert_int_equal(exe_dir(dir, strlen(exe) + 1), 0);
    assert_string_equal(dir, exe);
    assert_int_equal(exe_dir(dir, strlen(exe)), -1);
}

static void test_array_len(void **state)
{
    int four[4];
    const char *const two[] = {"a", "b"};

    (void)state;
    assert_int_equal(ARRAY_LEN(four), 4);
    assert_int_equal(ARRAY_LEN(two), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_digit_value),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_percent_check),
        cmocka_unit_test(test_country_code_parse),
        cmocka_unit_test(test_country_code_rejects),
        cmocka_unit_test(test_elapsed_ms),
        cmocka_unit_test(test_monotonic_now),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_exe_dir),
        cmocka_unit_test(test_array_len),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
