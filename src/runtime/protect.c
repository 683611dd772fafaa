/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include "runtime/protect.h"

int moat_protect_self_exe(int argc, char **argv, struct moat_error **reterr)
{
        return 0;
}

int moat_lsm_apply_exec_label(const struct oci_config *c, const struct oci_process *p, int proc_fd,
                              struct moat_error **reterr)
{
        return 0;
}

int moat_landlock_apply(const struct oci_config *c, struct moat_error **reterr)
{
        return 0;
}

int moat_landlock_validate(const struct oci_config *c, struct moat_error **reterr)
{
        return 0;
}
