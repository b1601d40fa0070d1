/* cidr.h - address ranges ("10.0.0.0/8", "::1/128", "127.0.0.1"), compared
 * as 16-byte addresses, IPv4 in its v4-mapped form, so one test serves
 * both families.
 */
#ifndef ANONPROXY_CIDR_H
#define ANONPROXY_CIDR_H

#include <sys/socket.h>

typedef struct cidr {
    unsigned char net[16];
    unsigned prefix;          /* bits over the 128-bit form (IPv4 /n is 96 + n) */
} cidr;

/* Parses "ADDRESS/BITS" or a bare ADDRESS (one address), with the strict
 * inet_pton forms. Returns 0, or -1 when it is not one. */
int cidr_parse(const char *text, cidr *out);

/* The 16-byte form of an address given as 4 (IPv4) or 16 bytes. */
void cidr_address(const void *bytes, int family, unsigned char out[16]);

/* The 16-byte form of a socket address; returns 0, or -1 when it is not
 * IPv4 or IPv6. */
int cidr_sockaddr_address(const struct sockaddr *sa, unsigned char out[16]);

/* Is addr (16-byte form) inside c? */
int cidr_contains(const cidr *c, const unsigned char addr[16]);

/* Is addr inside any of the n ranges? */
int cidr_any_contains(const cidr *list, size_t n, const unsigned char addr[16]);

#endif
