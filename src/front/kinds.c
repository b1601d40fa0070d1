/* kinds.c - see kinds.h. */
#include "front/kinds.h"

#include "core/util.h"
#include "front/http_proxy.h"
#include "front/judge.h"
#include "front/mixed.h"
#include "front/socks.h"

const listener_kind *const listener_kinds[] = {&http_proxy_kind, &judge_kind, &socks5_kind,
                                               &socks4_kind,     &mixed_kind};
const size_t nlistener_kinds = ARRAY_LEN(listener_kinds);

_Static_assert(ARRAY_LEN(listener_kinds) <= LISTENER_KINDS_MAX, "raise LISTENER_KINDS_MAX");
