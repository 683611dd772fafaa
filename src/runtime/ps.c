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
        _cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        int r;

        r = moat_id_validate(id, reterr);
        if (r < 0)
                return r;
        r = moat_state_root_open(rt, false, &root_fd, NULL);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", id);
        if (r < 0)
                return moat_error_set(reterr, r, "opening the state root");
        r = moat_state_load(root_fd, id, &s, &dir_fd, reterr);
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
