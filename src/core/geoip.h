/* geoip.h - country of an IP address, from a MaxMind DB (.mmdb) file.
 *
 * Reads country databases in either record layout in use:
 *   MaxMind GeoIP2/GeoLite2   {"country": {"iso_code": "DE"}}, and where that
 *                             is missing (anycast networks) "registered_country";
 *   ip-location-db            {"country_code": "DE"}
 * `make geo` fetches ip-location-db's geo-whois-asn-country database
 * (geo/README.md); tests use build/test-geo*.mmdb, made from
 * geo/test-countries.csv by tools/mmdb_write.py.
 *
 * Thread-safety: a geoip handle is read-only once geoip_open() returns (the
 * file is mmap'ed and libmaxminddb >= 1.3.1 never writes to its MMDB_s during
 * lookups), so any number of threads may look up through one handle at once
 * without locking. Only geoip_close() must not race with lookups.
 */
#ifndef ANONPROXY_GEOIP_H
#define ANONPROXY_GEOIP_H

#include <stddef.h>
#include <sys/socket.h>

/* The database `make geo` fetches, relative to the repository root. */
#define GEOIP_DEFAULT_DB "geo/geo-whois-asn-country.mmdb"

typedef struct geoip geoip;

/* Opens (maps) the database at `path`. Returns a handle owned by the caller,
 * to be released with geoip_close(), or NULL with a message in err such as
 *   geo/x.mmdb: cannot open: No such file or directory
 *   geo/x.mmdb: cannot open: The MaxMind DB file contains invalid metadata */
geoip *geoip_open(const char *path, char *err, size_t errlen);

/* Unmaps and frees the handle. NULL is allowed. */
void geoip_close(geoip *g);

/* Country of an AF_INET or AF_INET6 address; IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d) are looked up as the IPv4 address, since not every
 * database aliases them. Returns 1 and writes two upper-case letters and a
 * NUL to cc when found; 0 when the database has no record or no country for
 * the address; -1 on a lookup error (other address families, corrupt or
 * IPv4-only database asked for IPv6). cc is untouched unless 1 is returned. */
int geoip_country(const geoip *g, const struct sockaddr *addr, char cc[3]);

/* The same from a textual IPv4 or IPv6 address ("192.0.2.1", "::1",
 * "::ffff:192.0.2.1"); -1 also when `ip` is not one. */
int geoip_country_str(const geoip *g, const char *ip, char cc[3]);

/* Fills ss from a textual IPv4 or IPv6 address, as geoip_country_str reads
 * it. Returns 0, or -1 when text is neither. */
int geoip_parse_ip(const char *text, struct sockaddr_storage *ss);

#endif
