/* http_chars.h - the character classes of HTTP (RFC 9110 5.5, 5.6.2) and
 * ASCII case folding, shared by the parser, the chunked decoder and the
 * policy engine so that they agree on what a name or a value may hold.
 * Bytes go in as unsigned char, so that obs-text (0x80-0xff) is classified
 * the same whatever the signedness of char. Not <ctype.h>: HTTP is ASCII
 * whatever the locale says. */
#ifndef ANONPROXY_HTTP_CHARS_H
#define ANONPROXY_HTTP_CHARS_H

static inline int http_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* tchar: what a token (a method, a field name) is made of. */
static inline int http_is_tchar(unsigned char c)
{
    if (http_is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    /* A switch, not strchr: it runs for every byte of every field name. */
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return 1;
    default:
        return 0;
    }
}

/* Visible ASCII: the only bytes a request-target may hold. */
static inline int http_is_vchar(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e;
}

static inline int http_is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* HTAB, SP, VCHAR and obs-text: what a field value, a reason phrase, a chunk
 * extension may hold. Everything else is a control character, including the
 * CR and LF that would otherwise let a value smuggle in a line of its own. */
static inline int http_is_text(unsigned char c)
{
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

static inline unsigned char http_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

#endif
