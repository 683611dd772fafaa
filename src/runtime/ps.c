/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `ps`: the processes of a container are those of its cgroup (host pids),
 * which also covers processes that left its pid namespace's view or that
 * joined through exec. The cgroup is the one recorded at create.
 */

#include "base/cleanup.h"
#include "runtime/cgroup.h"
#include "runtime/runtime.h"
#include "runtime/state.h"

int moat_container_pids(const struct moat_runtime *rt, const char *id, pid_t **ret, size_t *ret_n,
                        struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        int r;

        r = moat_state_open(rt, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        if (strempty(s->cgroup)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
        if (r < 0)
                return r;
        r = moat_cgroup_pids(cg, ret, ret_n, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", id);
        return 0;
}
