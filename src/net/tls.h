/* tls.h - the proxy's TLS contexts: a listener's (server) and an exit's (client).
 *
 * Both allow TLS 1.2 and 1.3 only. A listener's context offers ECDHE with
 * AES-GCM or ChaCha20 under TLS 1.2 (TLS 1.3's suites are all modern), no
 * renegotiation, and answers ALPN with "http/1.1" (a client that offers
 * only other protocols gets no ALPN answer). A context is shared read-only
 * by every worker; each connection's SSL holds a reference to it, so a
 * reload may free the old context while old connections still use it.
 */
#ifndef ANONPROXY_TLS_H
#define ANONPROXY_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/* A server context from a PEM certificate chain and its PEM private key.
 * Returns NULL with a reason naming the file in err. */
SSL_CTX *tls_server_ctx_new(const char *cert_file, const char *key_file, char *err,
                            size_t errlen);

/* A client context that verifies the peer's chain against the system's
 * trust anchors and ca_file (may be NULL); the name is checked per
 * connection. Returns NULL with a reason in err. */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/* NULL is fine. */
void tls_ctx_free(SSL_CTX *ctx);

#endif
