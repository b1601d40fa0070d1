/* upstreams_cmd.h - `anonproxy upstreams`: one round of health checks
 * (health.h) over the configured upstreams, reported as a table or JSON.
 */
#ifndef ANONPROXY_UPSTREAMS_CMD_H
#define ANONPROXY_UPSTREAMS_CMD_H

/* `anonproxy upstreams [-c FILE] [--json]`: loads the config, checks every
 * upstream once and prints name, URL (without credentials), country and
 * where it came from, health, latency, exit IP and verdict. Returns the exit
 * status: 0 when at least one upstream is up, 1 when none is or on errors,
 * 2 on bad arguments. */
int upstreams_main(int argc, char **argv);

#endif
