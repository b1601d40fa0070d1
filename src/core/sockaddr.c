/* sockaddr.c - see sockaddr.h. */
#include "core/sockaddr.h"

#include <arpa/inet.h>

void sockaddr_ip_text(const struct sockaddr *sa, char ip[INET6_ADDRSTRLEN])
{
    ip[0] = '\0';
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, INET6_ADDRSTRLEN);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, INET6_ADDRSTRLEN);
}

unsigned sockaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

void sockaddr_set_port(struct sockaddr *sa, unsigned port)
{
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((unsigned short)port);
    else if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((unsigned short)port);
}

socklen_t sockaddr_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}
