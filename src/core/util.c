/* util.c - see util.h. */
#include "core/util.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int hex_digit_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t percent_decode(const char *s, size_t len, int plus_is_space, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len &&
            (hi = hex_digit_value((unsigned char)s[i + 1])) >= 0 &&
            (lo = hex_digit_value((unsigned char)s[i + 2])) >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[o] = '\0';
    return o;
}

int percent_check(const char *s, size_t len, size_t *decoded_len)
{
    size_t n = len;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%')
            continue;
        if (i + 2 >= len || hex_digit_value((unsigned char)s[i + 1]) < 0 ||
            hex_digit_value((unsigned char)s[i + 2]) < 0)
            return -1;
        n -= 2;
        i += 2;
    }
    *decoded_len = n;
    return 0;
}

int country_code_parse(const char *s, size_t len, char cc[3])
{
    if (len != 2)
        return 0;
    for (size_t i = 0; i < 2; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return 0;
    }
    if (cc) {
        cc[0] = (char)(s[0] & ~0x20);
        cc[1] = (char)(s[1] & ~0x20);
        cc[2] = '\0';
    }
    return 1;
}

unsigned long elapsed_ms(const struct timeval *from, const struct timeval *to)
{
    if (timercmp(to, from, <))
        return 0;
    struct timeval d;
    timersub(to, from, &d);
    return (unsigned long)d.tv_sec * 1000 + (unsigned long)d.tv_usec / 1000;
}

void monotonic_now(struct timeval *now)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now->tv_sec = ts.tv_sec;
    now->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
}

int exe_dir(char *dir, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    return snprintf(dir, len, "%s", dirname(exe)) < (int)len ? 0 : -1;
}
