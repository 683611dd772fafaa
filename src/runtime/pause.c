/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include "runtime/runtime.h"

int moat_container_pause(const struct moat_runtime *rt, const char *id, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "pause: not supported by this version of moat-runtime");
}

int moat_container_resume(const struct moat_runtime *rt, const char *id, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "resume: not supported by this version of moat-runtime");
}
