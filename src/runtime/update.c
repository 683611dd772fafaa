/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include "runtime/runtime.h"

int moat_container_update(const struct moat_runtime *rt, const char *id, const json_t *resources, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "update: not supported by this version of moat-runtime");
}
