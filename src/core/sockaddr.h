/* sockaddr.h - the few things every layer asks of an IPv4 or IPv6 socket
 * address: its text, its port, its length.
 */
#ifndef ANONPROXY_SOCKADDR_H
#define ANONPROXY_SOCKADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

/* The address as inet_ntop writes it into ip (INET6_ADDRSTRLEN bytes);
 * "" for a family that is neither. */
void sockaddr_ip_text(const struct sockaddr *sa, char ip[INET6_ADDRSTRLEN]);

/* The port in host order; 0 for another family. */
unsigned sockaddr_port(const struct sockaddr *sa);

/* Sets the port of an IPv4 or IPv6 address. */
void sockaddr_set_port(struct sockaddr *sa, unsigned port);

/* sizeof the family's address structure. */
socklen_t sockaddr_len(const struct sockaddr *sa);

#endif
