/* proxy_error.c - see proxy_error.h. */
#include "core/proxy_error.h"

static const struct {
    const char *name;
    int http_status;
} errors[] = {
    [PE_NONE] = {"", 200},
    [PE_DNS_ERROR] = {"dns_error", 502},
    [PE_DNS_TIMEOUT] = {"dns_timeout", 504},
    [PE_DESTINATION_UNAVAILABLE] = {"destination_unavailable", 502},
    [PE_DESTINATION_IP_PROHIBITED] = {"destination_ip_prohibited", 403},
    [PE_DESTINATION_IP_UNROUTABLE] = {"destination_ip_unroutable", 502},
    [PE_CONNECTION_REFUSED] = {"connection_refused", 502},
    [PE_CONNECTION_TIMEOUT] = {"connection_timeout", 504},
    [PE_PROXY_LOOP_DETECTED] = {"proxy_loop_detected", 508},
    [PE_PROXY_INTERNAL_ERROR] = {"proxy_internal_error", 500},
};

const char *proxy_error_name(proxy_error e)
{
    return errors[e].name;
}

int proxy_error_http_status(proxy_error e)
{
    return errors[e].http_status;
}
