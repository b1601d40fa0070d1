/* kinds.h - the table of listener kinds, one row per front end.
 *
 * The config loader resolves listen[].protocol here; adding a front end is
 * adding its module to front/ and its row to this table.
 */
#ifndef ANONPROXY_KINDS_H
#define ANONPROXY_KINDS_H

#include <stddef.h>

#include "net/listener.h"

#define LISTENER_KINDS_MAX 8

/* Every kind, the default ("http") first. */
extern const listener_kind *const listener_kinds[];
extern const size_t nlistener_kinds;

#endif
