/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include "runtime/runtime.h"

int moat_container_pids(const struct moat_runtime *rt, const char *id, pid_t **ret, size_t *ret_n, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "ps: not supported by this version of moat-runtime");
}
