/* credentials.h - who the client says it is, and what it asks of the gateway.
 *
 * A front end produces one credentials object per request (HTTP: the
 * Proxy-Authorization field; SOCKS5: the RFC 1929 sub-negotiation) and
 * routing reads its options; nothing below the front end sees a raw header.
 *
 * The user name carries gateway options the way commercial gateways take
 * them: "alice-country-de-session-abc123" is the account "alice" asking for
 * a DE exit pinned by session "abc123". Options are "-KEY-VALUE" pairs
 * after the account name:
 *   country-XX   two letters, uppercased here;
 *   session-ID   up to CRED_MAX_SESSION bytes (longer ones are cut).
 * A word that is not a known option (or a country that is not two
 * letters) belongs to the account name; the options after it still count.
 */
#ifndef ANONPROXY_CREDENTIALS_H
#define ANONPROXY_CREDENTIALS_H

#include <stddef.h>

#define CRED_MAX_USER 255
#define CRED_MAX_PASS 255
#define CRED_MAX_SESSION 64

typedef struct credentials {
    int present;                       /* the client sent a user name */
    char user[CRED_MAX_USER + 1];      /* the whole user name as sent (cut at CRED_MAX_USER) */
    char account[CRED_MAX_USER + 1];   /* user without its options */
    char pass[CRED_MAX_PASS + 1];
    char country[3];                   /* "country" option, "" when none */
    char session[CRED_MAX_SESSION + 1];/* "session" option, "" when none */
} credentials;

/* Fills out from a user name and password (not NUL-terminated; either may
 * be empty). Never fails: overlong input is cut. */
void credentials_parse(const char *user, size_t user_len, const char *pass, size_t pass_len,
                       credentials *out);

/* Fills out from a Proxy-Authorization value "Basic <base64 user:pass>"
 * (RFC 7617; the scheme name is case-insensitive). Returns 0, or -1 (out
 * then has present == 0) when the value is not Basic or does not decode. */
int credentials_from_basic(const char *value, size_t len, credentials *out);

#endif
