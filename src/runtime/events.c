/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include "runtime/runtime.h"

int moat_container_stats(const struct moat_runtime *rt, const char *id, char **ret_json, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "events: not supported by this version of moat-runtime");
}

int moat_container_events(const struct moat_runtime *rt, const char *id, unsigned interval_ms,
                          void (*emit)(const char *json_line, void *userdata), void *userdata,
                          struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "events: not supported by this version of moat-runtime");
}
