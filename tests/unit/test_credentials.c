/* test_credentials.c - unit tests for src/egress/credentials.c.
 *
 * credentials_parse: the "-KEY-VALUE" gateway options in the user name
 * (country-XX uppercased, session-ID cut at CRED_MAX_SESSION), options in
 * any order, words that are not options (or a country that is not two
 * letters) staying part of the account (and belonging to nothing after the
 * first option), empty words from repeated dashes,
 * a name made only of options, input cut at CRED_MAX_USER / CRED_MAX_PASS,
 * input that is not NUL-terminated.
 * credentials_from_basic: "Basic <base64 user:pass>" with a case-insensitive
 * scheme, no colon, empty password, colons in the password, other schemes,
 * bad base64, the 340-character base64 limit, and out being cleared on
 * failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "egress/credentials.h"

/* ------------------------------------------------------------ helpers */

/* Parses a NUL-terminated user and password from exact-size heap copies, so
 * that AddressSanitizer reports any read past the given lengths. out is
 * filled with garbage first to prove every member is written. */
static void parse(const char *user, const char *pass, credentials *out)
{
    size_t ul = strlen(user), pl = strlen(pass);
    char *u = malloc(ul ? ul : 1), *p = malloc(pl ? pl : 1);

    assert_non_null(u);
    assert_non_null(p);
    memcpy(u, user, ul);
    memcpy(p, pass, pl);
    memset(out, 0x5a, sizeof *out);
    credentials_parse(u, ul, p, pl, out);
    free(u);
    free(p);
}

/* Every member at once; "" for the strings that must be empty. */
static void expect(const credentials *c, const char *user, const char *account, const char *pass,
                   const char *country, const char *session)
{
    assert_int_equal(c->present, 1);
    assert_string_equal(c->user, user);
    assert_string_equal(c->account, account);
    assert_string_equal(c->pass, pass);
    assert_string_equal(c->country, country);
    assert_string_equal(c->session, session);
}

/* Options of a user name, with the password "pw". */
static void expect_user(const char *user, const char *account, const char *country,
                        const char *session)
{
    credentials c;

    parse(user, "pw", &c);
    expect(&c, user, account, "pw", country, session);
}

/* "Basic " (or `scheme`) followed by the base64 of plain[0..len). */
static char *basic_value(const char *scheme, const char *plain, size_t len)
{
    size_t sl = strlen(scheme);
    char *v = malloc(sl + 4 * (len / 3 + 1) + 1);

    assert_non_null(v);
    memcpy(v, scheme, sl);
    EVP_EncodeBlock((unsigned char *)v + sl, (const unsigned char *)plain, (int)len);
    return v;
}

/* credentials_from_basic on an exact-size heap copy of value. */
static int from_basic_n(const char *value, size_t len, credentials *out)
{
    char *v = malloc(len ? len : 1);
    int rc;

    assert_non_null(v);
    memcpy(v, value, len);
    memset(out, 0x5a, sizeof *out);
    rc = credentials_from_basic(v, len, out);
    free(v);
    return rc;
}

static int from_basic(const char *value, credentials *out)
{
    return from_basic_n(value, strlen(value), out);
}

/* The value must be refused, leaving out all zero (present == 0). */
static void expect_refused(const char *value)
{
    static const credentials zero;
    credentials c;

    assert_int_equal(from_basic(value, &c), -1);
    assert_int_equal(c.present, 0);
    assert_memory_equal(&c, &zero, sizeof c);
}

/* "Basic " + base64(user_pass) must decode; returns what it decoded to. */
static credentials decode_ok(const char *user_pass)
{
    char *v = basic_value("Basic ", user_pass, strlen(user_pass));
    credentials c;

    assert_int_equal(from_basic(v, &c), 0);
    free(v);
    return c;
}

static char *repeat(char ch, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, ch, n);
    s[n] = '\0';
    return s;
}

/* ------------------------------------------------------------ user name options */

static void test_plain_user(void **state)
{
    credentials c;

    (void)state;
    parse("alice", "secret", &c);
    expect(&c, "alice", "alice", "secret", "", "");
}

static void test_country_and_session(void **state)
{
    (void)state;
    expect_user("alice-country-de-session-abc123", "alice", "DE", "abc123");
}

static void test_options_in_any_order(void **state)
{
    (void)state;
    expect_user("alice-session-abc123-country-de", "alice", "DE", "abc123");
    expect_user("alice-country-fr", "alice", "FR", "");
    expect_user("alice-session-s1", "alice", "", "s1");
    /* Keys are case-insensitive; the country is uppercased, the session kept as sent. */
    expect_user("alice-COUNTRY-gB-Session-AbC", "alice", "GB", "AbC");
    expect_user("alice-Country-DE", "alice", "DE", "");
}

/* Header: "a country that is not two letters belongs to the account name;
 * the options after it still count". */
static void test_country_not_two_letters(void **state)
{
    (void)state;
    expect_user("alice-country-deu-session-s1", "alice-country-deu", "", "s1");
    expect_user("alice-country-d", "alice-country-d", "", "");
    expect_user("alice-country-d3", "alice-country-d3", "", "");
    expect_user("alice-country-42", "alice-country-42", "", "");
    /* "country" as the last word has no value: an ordinary word. */
    expect_user("alice-country", "alice-country", "", "");
    /* A bad country before a good one: the good one counts, the bad one is account. */
    expect_user("alice-country-xyz-country-it", "alice-country-xyz", "IT", "");
}

/* After the first option the account is settled: a bad country (or any
 * other word) there belongs to nothing. The header's "belongs to the account
 * name" holds only for words before the first option; the code drops the
 * later ones, and the options after them still count. */
static void test_bad_country_after_an_option_belongs_to_nothing(void **state)
{
    (void)state;
    expect_user("alice-session-s1-country-deu", "alice", "", "s1");
    expect_user("alice-session-s1-country-deu-country-at", "alice", "AT", "s1");
    expect_user("alice-country-de-session", "alice", "DE", "");
}

static void test_unknown_words_belong_to_account(void **state)
{
    (void)state;
    expect_user("my-name-country-fr", "my-name", "FR", "");
    expect_user("a-b-c", "a-b-c", "", "");
    expect_user("alice-zone-x-session-s", "alice-zone-x", "", "s");
    /* "session" as the last word has no value either. */
    expect_user("alice-session", "alice-session", "", "");
    /* Words after the first option do not change the account. */
    expect_user("alice-country-de-extra-words", "alice", "DE", "");
}

static void test_repeated_dashes(void **state)
{
    (void)state;
    /* Empty words are skipped; the account loses the dashes before the option. */
    expect_user("alice--country--de---session--s1", "alice", "DE", "s1");
    expect_user("alice-country-de-", "alice", "DE", "");
    expect_user("alice---", "alice---", "", "");
    expect_user("-alice-country-de", "-alice", "DE", "");
    expect_user("bob--smith-country-nl", "bob--smith", "NL", "");
}

static void test_name_only_options(void **state)
{
    (void)state;
    expect_user("country-de-session-s1", "", "DE", "s1");
    expect_user("session-s1", "", "", "s1");
    expect_user("-country-de", "", "DE", "");
}

/* Options are taken as pairs from the left: the word after "session" is the
 * session whatever it says, and a repeated option overrides the earlier one. */
static void test_pairs_from_the_left(void **state)
{
    (void)state;
    expect_user("alice-session-country-de", "alice", "", "country");
    expect_user("alice-country-de-country-fr", "alice", "FR", "");
    expect_user("alice-session-a-session-b", "alice", "", "b");
}

static void test_overlong_cut(void **state)
{
    credentials c;
    char *long_user = repeat('u', CRED_MAX_USER + 45);
    char *long_pass = repeat('p', CRED_MAX_PASS + 1);

    (void)state;
    parse(long_user, long_pass, &c);
    assert_int_equal(strlen(c.user), CRED_MAX_USER);
    assert_int_equal(strlen(c.account), CRED_MAX_USER);
    assert_int_equal(strlen(c.pass), CRED_MAX_PASS);
    assert_memory_equal(c.user, long_user, CRED_MAX_USER);
    assert_memory_equal(c.pass, long_pass, CRED_MAX_PASS);
    free(long_user);
    free(long_pass);

    /* Exactly at the limits nothing is cut. */
    long_user = repeat('u', CRED_MAX_USER);
    long_pass = repeat('p', CRED_MAX_PASS);
    parse(long_user, long_pass, &c);
    expect(&c, long_user, long_user, long_pass, "", "");
    free(long_user);
    free(long_pass);
}

static void test_overlong_user_cuts_its_options(void **state)
{
    char user[CRED_MAX_USER + 20];
    credentials c;

    (void)state;
    /* 250 bytes of account, then "-country-de": the cut at 255 leaves "-coun". */
    memset(user, 'a', 250);
    strcpy(user + 250, "-country-de");
    parse(user, "", &c);
    assert_int_equal(strlen(c.user), CRED_MAX_USER);
    assert_string_equal(c.user + 250, "-coun");
    assert_string_equal(c.account, c.user);
    assert_string_equal(c.country, "");

    /* Options before the cut still count; a session word the cut goes
     * through is what is left of it. */
    memset(user, 'a', 230);
    strcpy(user + 230, "-country-de-session-");
    memset(user + 250, 's', 10);
    user[260] = '\0';
    parse(user, "", &c);
    assert_int_equal(strlen(c.user), CRED_MAX_USER);
    assert_string_equal(c.user + 230, "-country-de-session-sssss");
    assert_int_equal(strlen(c.account), 230);
    assert_string_equal(c.country, "DE");
    assert_string_equal(c.session, "sssss");
}

static void test_overlong_session_cut(void **state)
{
    char user[128];
    credentials c;

    (void)state;
    strcpy(user, "alice-session-");
    memset(user + 14, 'x', CRED_MAX_SESSION + 10);
    strcpy(user + 14 + CRED_MAX_SESSION + 10, "-country-de");
    parse(user, "pw", &c);
    assert_string_equal(c.user, user);
    assert_string_equal(c.account, "alice");
    assert_int_equal(strlen(c.session), CRED_MAX_SESSION);
    assert_memory_equal(c.session, user + 14, CRED_MAX_SESSION);
    assert_string_equal(c.country, "DE");

    /* Exactly CRED_MAX_SESSION bytes pass whole. */
    memset(user + 14, 'y', CRED_MAX_SESSION);
    user[14 + CRED_MAX_SESSION] = '\0';
    parse(user, "pw", &c);
    assert_string_equal(c.session, user + 14);
}

static void test_empty_user_and_password(void **state)
{
    credentials c;

    (void)state;
    parse("alice", "", &c);
    expect(&c, "alice", "alice", "", "", "");
    parse("", "", &c);
    expect(&c, "", "", "", "", "");
}

static void test_input_is_not_nul_terminated(void **state)
{
    static const char buf[] = "alice-country-deXsecretY";
    credentials c;

    (void)state;
    /* user "alice-country-de", pass "secret": the bytes after each are not read. */
    credentials_parse(buf, 16, buf + 17, 6, &c);
    expect(&c, "alice-country-de", "alice", "secret", "DE", "");
    /* Lengths, not NULs, delimit: a shorter user drops the country's second letter. */
    credentials_parse(buf, 15, buf + 17, 3, &c);
    expect(&c, "alice-country-d", "alice-country-d", "sec", "", "");
}

/* ------------------------------------------------------------ Basic */

static void test_basic_decodes(void **state)
{
    credentials c;

    (void)state;
    c = decode_ok("alice-country-de-session-abc123:secret");
    expect(&c, "alice-country-de-session-abc123", "alice", "secret", "DE", "abc123");
    /* The RFC 7617 example. */
    assert_int_equal(from_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", &c), 0);
    expect(&c, "Aladdin", "Aladdin", "open sesame", "", "");
}

static void test_basic_scheme_is_case_insensitive(void **state)
{
    credentials c;

    (void)state;
    assert_int_equal(from_basic("basic YTpi", &c), 0);
    expect(&c, "a", "a", "b", "", "");
    assert_int_equal(from_basic("BASIC YTpi", &c), 0);
    expect(&c, "a", "a", "b", "", "");
    assert_int_equal(from_basic("bAsIc YTpi", &c), 0);
    expect(&c, "a", "a", "b", "", "");
}

static void test_basic_no_colon(void **state)
{
    credentials c;

    (void)state;
    c = decode_ok("alice-country-it");
    expect(&c, "alice-country-it", "alice", "", "IT", "");
}

static void test_basic_empty_parts(void **state)
{
    credentials c;

    (void)state;
    c = decode_ok("alice:");
    expect(&c, "alice", "alice", "", "", "");
    c = decode_ok(":secret");
    expect(&c, "", "", "secret", "", "");
    c = decode_ok(":");
    expect(&c, "", "", "", "", "");
}

static void test_basic_password_keeps_later_colons(void **state)
{
    credentials c;

    (void)state;
    c = decode_ok("alice:pa:ss:");
    expect(&c, "alice", "alice", "pa:ss:", "", "");
}

/* Padding decodes to zero bytes that are not part of the text. */
static void test_basic_padding(void **state)
{
    credentials c;

    (void)state;
    assert_int_equal(from_basic("Basic YQ==", &c), 0);     /* "a" */
    expect(&c, "a", "a", "", "", "");
    assert_int_equal(from_basic("Basic YTpi", &c), 0);     /* "a:b", no padding */
    expect(&c, "a", "a", "b", "", "");
    assert_int_equal(from_basic("Basic YTpiYw==", &c), 0); /* "a:bc" */
    expect(&c, "a", "a", "bc", "", "");
    assert_int_equal(from_basic("Basic YTpiY2Q=", &c), 0); /* "a:bcd" */
    expect(&c, "a", "a", "bcd", "", "");
}

/* The decoded text ends at its first NUL (credentials.c: padding and NULs
 * are told apart that way): nothing after it is read. */
static void test_basic_text_ends_at_nul(void **state)
{
    char *v = basic_value("Basic ", "ali\0ce:pw", 9);
    credentials c;

    (void)state;
    assert_int_equal(from_basic(v, &c), 0);
    expect(&c, "ali", "ali", "", "", "");
    free(v);
}

static void test_basic_reads_only_len_bytes(void **state)
{
    static const char value[] = "Basic YTpiYw==GARBAGE";
    credentials c;

    (void)state;
    assert_int_equal(from_basic_n(value, 14, &c), 0);
    expect(&c, "a", "a", "bc", "", "");
    /* Cut inside the base64: 3 characters do not decode. */
    assert_int_equal(from_basic_n(value, 9, &c), -1);
    assert_int_equal(c.present, 0);
}

static void test_not_basic(void **state)
{
    credentials c;

    (void)state;
    expect_refused("Bearer YTpi");
    expect_refused("Digest username=\"a\", realm=\"r\"");
    expect_refused("Negotiate YTpi");
    expect_refused("BasicYTpi");
    expect_refused("Basic\tYTpi");
    expect_refused("Basic");
    expect_refused("Basic ");
    expect_refused("Basi YTpi");
    expect_refused("");
    assert_int_equal(from_basic_n("Basic YTpi", 0, &c), -1);
    assert_int_equal(c.present, 0);
}

static void test_bad_base64(void **state)
{
    (void)state;
    expect_refused("Basic !!!!");
    expect_refused("Basic YTp");       /* not a multiple of 4 */
    expect_refused("Basic YTpiY");
    expect_refused("Basic YT pi");     /* blank inside */
    expect_refused("Basic YT\"pi");
}

/* credentials.c: "340 base64 characters decode to at most 255 bytes". 336
 * characters (252 bytes) pass; 344 and more are refused without decoding. */
static void test_base64_limit(void **state)
{
    char plain[300];
    credentials c;
    char *v;

    (void)state;
    /* 252 bytes: "u...u:p...p" with a 200-byte user. */
    memset(plain, 'u', 200);
    plain[200] = ':';
    memset(plain + 201, 'p', 51);
    v = basic_value("Basic ", plain, 252);
    assert_int_equal(strlen(v), 6 + 336);
    assert_int_equal(from_basic(v, &c), 0);
    assert_int_equal(strlen(c.user), 200);
    assert_int_equal(strlen(c.pass), 51);
    free(v);

    /* 256 bytes: 344 characters, refused. */
    memset(plain + 201, 'p', 55);
    v = basic_value("Basic ", plain, 256);
    assert_int_equal(strlen(v), 6 + 344);
    expect_refused(v);
    free(v);

    /* Far over: refused too (not decoded into a fixed buffer). */
    {
        char *big = repeat('Q', 6 + 4000);
        memcpy(big, "Basic ", 6);
        expect_refused(big);
        free(big);
    }
}

/* The limit itself: exactly 340 characters (a 255-byte "user:pass") is
 * valid Basic and accepted; 341 are refused, even when the extra one is a
 * trailing blank that EVP_DecodeBlock would skip. */
static void test_base64_340_characters(void **state)
{
    char plain[255], with_blank[6 + 341 + 1];
    credentials c;
    char *v;

    (void)state;
    memset(plain, 'u', 200);
    plain[200] = ':';
    memset(plain + 201, 'p', 54);
    v = basic_value("Basic ", plain, 255);
    size_t len = strlen(v);
    snprintf(with_blank, sizeof with_blank, "%s ", v);
    int rc = from_basic(v, &c);
    free(v);
    assert_int_equal(len, 6 + 340);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(c.user), 200);
    assert_int_equal(strlen(c.pass), 54);
    assert_int_equal(strlen(with_blank), 6 + 341);
    expect_refused(with_blank);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_user),
        cmocka_unit_test(test_country_and_session),
        cmocka_unit_test(test_options_in_any_order),
        cmocka_unit_test(test_country_not_two_letters),
        cmocka_unit_test(test_bad_country_after_an_option_belongs_to_nothing),
        cmocka_unit_test(test_unknown_words_belong_to_account),
        cmocka_unit_test(test_repeated_dashes),
        cmocka_unit_test(test_name_only_options),
        cmocka_unit_test(test_pairs_from_the_left),
        cmocka_unit_test(test_overlong_cut),
        cmocka_unit_test(test_overlong_user_cuts_its_options),
        cmocka_unit_test(test_overlong_session_cut),
        cmocka_unit_test(test_empty_user_and_password),
        cmocka_unit_test(test_input_is_not_nul_terminated),
        cmocka_unit_test(test_basic_decodes),
        cmocka_unit_test(test_basic_scheme_is_case_insensitive),
        cmocka_unit_test(test_basic_no_colon),
        cmocka_unit_test(test_basic_empty_parts),
        cmocka_unit_test(test_basic_password_keeps_later_colons),
        cmocka_unit_test(test_basic_padding),
        cmocka_unit_test(test_basic_text_ends_at_nul),
        cmocka_unit_test(test_basic_reads_only_len_bytes),
        cmocka_unit_test(test_not_basic),
        cmocka_unit_test(test_bad_base64),
        cmocka_unit_test(test_base64_limit),
        cmocka_unit_test(test_base64_340_characters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
