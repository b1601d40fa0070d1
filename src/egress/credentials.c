/* credentials.c - see credentials.h. */
#include "egress/credentials.h"

#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

/* Copies s[0..len) into out (cap + 1 bytes), cut at cap. */
static void copy_cut(char *out, size_t cap, const char *s, size_t len)
{
    if (len > cap)
        len = cap;
    memcpy(out, s, len);
    out[len] = '\0';
}

/* Reads the "-KEY-VALUE" options out of the user name. The name is split
 * into words at '-' (empty words are skipped); a word naming a known option
 * with a valid next word takes that pair, any other word is passed over.
 * The account is what comes before the first option. */
static void parse_options(credentials *c)
{
    enum { MAX_WORDS = CRED_MAX_USER / 2 + 1 };
    const char *word[MAX_WORDS];
    size_t len[MAX_WORDS], n = 0;
    for (const char *p = c->user; *p && n < MAX_WORDS;) {
        size_t l = strcspn(p, "-");
        if (l) {
            word[n] = p;
            len[n++] = l;
        }
        p += l + (p[l] == '-');
    }
    size_t account_len = strlen(c->user);
    int account_found = 0;
    for (size_t i = 0; i + 1 < n;) {
        int taken = 0;
        if (len[i] == 7 && strncasecmp(word[i], "country", 7) == 0)
            taken = country_code_parse(word[i + 1], len[i + 1], c->country);
        else if (len[i] == 7 && strncasecmp(word[i], "session", 7) == 0) {
            copy_cut(c->session, CRED_MAX_SESSION, word[i + 1], len[i + 1]);
            taken = 1;
        }
        if (!taken) {
            i++;
            continue;
        }
        if (!account_found) {
            account_found = 1;
            account_len = (size_t)(word[i] - c->user);
            while (account_len && c->user[account_len - 1] == '-')
                account_len--;
        }
        i += 2;
    }
    copy_cut(c->account, CRED_MAX_USER, c->user, account_len);
}

void credentials_parse(const char *user, size_t user_len, const char *pass, size_t pass_len,
                       credentials *out)
{
    memset(out, 0, sizeof *out);
    out->present = 1;
    copy_cut(out->user, CRED_MAX_USER, user, user_len);
    copy_cut(out->pass, CRED_MAX_PASS, pass, pass_len);
    parse_options(out);
}

int credentials_from_basic(const char *value, size_t len, credentials *out)
{
    /* 340 base64 characters decode to at most 255 bytes: EVP_DecodeBlock
     * writes len / 4 * 3 bytes, so any length up to MAX_BASE64 fits. */
    enum { MAX_BASE64 = 340 };
    unsigned char decoded[MAX_BASE64 / 4 * 3 + 1];

    memset(out, 0, sizeof *out);
    if (len <= 6 || strncasecmp(value, "Basic ", 6) != 0 || len - 6 > MAX_BASE64)
        return -1;
    int n = EVP_DecodeBlock(decoded, (const unsigned char *)value + 6, (int)(len - 6));
    if (n <= 0)
        return -1;
    /* EVP_DecodeBlock counts the padding's zero bytes: the text ends at the first NUL. */
    size_t text_len = strnlen((const char *)decoded, (size_t)n);
    const char *colon = memchr(decoded, ':', text_len);
    size_t user_len = colon ? (size_t)(colon - (const char *)decoded) : text_len;
    const char *pass = colon ? colon + 1 : "";
    size_t pass_len = colon ? text_len - user_len - 1 : 0;
    credentials_parse((const char *)decoded, user_len, pass, pass_len, out);
    return 0;
}
