/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include "runtime/runtime.h"

int moat_container_exec(const struct moat_runtime *rt, const struct moat_exec_options *opts, int *ret_exit_status, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "exec: not supported by this version of moat-runtime");
}
