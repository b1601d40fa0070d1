/* geo_cmd.h - `anonproxy geo`: the country of IP addresses, from the
 * command line (geoip.h does the lookups).
 */
#ifndef ANONPROXY_GEO_CMD_H
#define ANONPROXY_GEO_CMD_H

/* `anonproxy geo [--db FILE] IP...`: prints "IP CC" per address, or "IP -"
 * when the country is unknown. Returns the exit status: 0 when every address
 * was looked up, 1 on bad arguments, an unusable database or a failed lookup
 * (with a message on stderr naming the address or the file). */
int geo_main(int argc, char **argv);

#endif
