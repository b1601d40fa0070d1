/* test_proxy_protocol.c - unit tests for net/proxy_protocol.c (the PROXY
 * header parser, v1 and v2) and core/cidr.c (the ranges that say who may
 * send one). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "core/cidr.h"
#include "net/proxy_protocol.h"

static long parse(const void *buf, size_t len, struct sockaddr_storage *ss, socklen_t *sl)
{
    return proxy_header_parse(buf, len, ss, sl);
}

static void assert_v4(const struct sockaddr_storage *ss, socklen_t sl, const char *ip, unsigned port)
{
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    char text[INET_ADDRSTRLEN];
    assert_int_equal(sl, sizeof *in);
    assert_int_equal(in->sin_family, AF_INET);
    assert_string_equal(inet_ntop(AF_INET, &in->sin_addr, text, sizeof text), ip);
    assert_int_equal(ntohs(in->sin_port), port);
}

static void test_v1_tcp4_and_tcp6(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sl;
    const char h[] = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET /";
    assert_int_equal(parse(h, sizeof h - 1, &ss, &sl), 45);
    assert_v4(&ss, sl, "192.0.2.7", 56324);

    const char h6[] = "PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n";
    assert_int_equal(parse(h6, sizeof h6 - 1, &ss, &sl), (long)sizeof h6 - 1);
    assert_int_equal(sl, sizeof(struct sockaddr_in6));
    assert_int_equal(((struct sockaddr_in6 *)&ss)->sin6_family, AF_INET6);

    const char unknown[] = "PROXY UNKNOWN\r\n";
    assert_int_equal(parse(unknown, sizeof unknown - 1, &ss, &sl), 15);
    assert_int_equal(sl, 0);
}

static void test_v1_incomplete_then_whole(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sl;
    const char h[] = "PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n";
    for (size_t i = 0; i + 1 < sizeof h - 1; i++)
        assert_int_equal(parse(h, i, &ss, &sl), 0);
    assert_int_equal(parse(h, sizeof h - 1, &ss, &sl), (long)sizeof h - 1);
}

static void test_v1_malformed(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sl;
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",           /* LF without CR */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n",     /* port out of range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",           /* a field missing */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",       /* one too many */
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",             /* the wrong family */
        "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(parse(bad[i], strlen(bad[i]), &ss, &sl), -1);
    char longest[200];
    memset(longest, 'x', sizeof longest);
    memcpy(longest, "PROXY ", 6);
    assert_int_equal(parse(longest, sizeof longest, &ss, &sl), -1); /* no CRLF within 107 bytes */
}

static size_t v2(unsigned char *out, unsigned char ver_cmd, unsigned char fam, const void *addr,
                 size_t addr_len)
{
    static const unsigned char sig[12] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (unsigned char)(addr_len >> 8);
    out[15] = (unsigned char)addr_len;
    memcpy(out + 16, addr, addr_len);
    return 16 + addr_len;
}

static void test_v2_proxy_local_and_tlvs(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sl;
    unsigned char buf[128];
    /* src 192.0.2.7, dst 10.0.0.1, sport 4660, dport 80, then a TLV. */
    const unsigned char a4[] = {192, 0, 2, 7, 10, 0, 0, 1, 0x12, 0x34, 0, 80, 0x04, 0x00, 0x01, 'x'};
    size_t n = v2(buf, 0x21, 0x11, a4, sizeof a4);
    assert_int_equal(parse(buf, n, &ss, &sl), (long)n);
    assert_v4(&ss, sl, "192.0.2.7", 0x1234);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(parse(buf, i, &ss, &sl), 0);

    n = v2(buf, 0x20, 0x00, "", 0); /* LOCAL */
    assert_int_equal(parse(buf, n, &ss, &sl), 16);
    assert_int_equal(sl, 0);

    unsigned char a6[36] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1, [16] = 0x20, [17] = 0x01, [32] = 0, [33] = 99};
    n = v2(buf, 0x21, 0x21, a6, sizeof a6);
    assert_int_equal(parse(buf, n, &ss, &sl), (long)n);
    assert_int_equal(sl, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 99);
}

static void test_v2_malformed(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t sl;
    unsigned char buf[PROXY_HEADER_MAX + 64];
    const unsigned char a4[12] = {0};
    size_t n = v2(buf, 0x31, 0x11, a4, sizeof a4); /* version 3 */
    assert_int_equal(parse(buf, n, &ss, &sl), -1);
    n = v2(buf, 0x22, 0x11, a4, sizeof a4);        /* command 2 */
    assert_int_equal(parse(buf, n, &ss, &sl), -1);
    n = v2(buf, 0x21, 0x12, a4, sizeof a4);        /* UDP */
    assert_int_equal(parse(buf, n, &ss, &sl), -1);
    n = v2(buf, 0x21, 0x11, a4, 8);                /* too short for TCP4 */
    assert_int_equal(parse(buf, n, &ss, &sl), -1);
    buf[14] = 0xff;                                /* longer than PROXY_HEADER_MAX */
    buf[15] = 0xff;
    assert_int_equal(parse(buf, 16, &ss, &sl), -1);
    unsigned char sig_bad[16] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', 'X'};
    assert_int_equal(parse(sig_bad, sizeof sig_bad, &ss, &sl), -1);
}

static void test_cidr(void **state)
{
    (void)state;
    cidr c;
    unsigned char a[16];
    struct in_addr v4;
    assert_int_equal(cidr_parse("127.0.0.0/8", &c), 0);
    inet_pton(AF_INET, "127.1.2.3", &v4);
    cidr_address(&v4, AF_INET, a);
    assert_true(cidr_contains(&c, a));
    inet_pton(AF_INET, "128.0.0.1", &v4);
    cidr_address(&v4, AF_INET, a);
    assert_false(cidr_contains(&c, a));
    assert_int_equal(cidr_parse("10.0.0.1", &c), 0); /* one address */
    assert_int_equal(c.prefix, 128);
    assert_int_equal(cidr_parse("::1/128", &c), 0);
    struct in6_addr v6;
    inet_pton(AF_INET6, "::1", &v6);
    cidr_address(&v6, AF_INET6, a);
    assert_true(cidr_contains(&c, a));
    assert_int_equal(cidr_parse("10.0.0.0/12", &c), 0);
    inet_pton(AF_INET, "10.15.255.255", &v4);
    cidr_address(&v4, AF_INET, a);
    assert_true(cidr_contains(&c, a));
    inet_pton(AF_INET, "10.16.0.0", &v4);
    cidr_address(&v4, AF_INET, a);
    assert_false(cidr_contains(&c, a));
    assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
    assert_true(cidr_contains(&c, a));
    static const char *const bad[] = {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x",
                                      "010.0.0.1", "example.com", "10.0.0.0/8/8", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cidr_parse(bad[i], &c), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4_and_tcp6),
        cmocka_unit_test(test_v1_incomplete_then_whole),
        cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v2_proxy_local_and_tlvs),
        cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_cidr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
