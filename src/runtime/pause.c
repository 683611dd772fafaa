/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `pause` and `resume`: freeze and thaw the container's cgroup (see
 * cgroup-control.c). Nothing is recorded: `state` reads the freezer, so a
 * container paused by another tool shows as paused too. Like runc, only a
 * running container can be paused and only a paused one resumed.
 */

#include <unistd.h>

#include "base/cleanup.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup-control.h"
#include "runtime/state.h"

static int load(const struct moat_runtime *rt, const char *id, struct moat_state **ret_s, enum moat_status *ret_status,
                struct moat_cgroup **ret_cg, struct moat_error **reterr)
{
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        int r;

        r = moat_state_open(rt, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        *ret_status = moat_state_status(s, dir_fd);
        if (strempty(s->cgroup))
                return moat_error_setx(reterr, -EOPNOTSUPP, "container \"%s\" has no cgroup to freeze", id);
        r = moat_cgroup_deserialize(s->cgroup, ret_cg, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", id);
        *ret_s = TAKE_PTR(s);
        return 0;
}

int moat_container_pause(const struct moat_runtime *rt, const char *id, struct moat_error **reterr)
{
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        enum moat_status st;

        int r = load(rt, id, &s, &st, &cg, reterr);
        if (r < 0)
                return r;
        if (st != MOAT_STATUS_RUNNING)
                return moat_error_setx(reterr, -EINVAL, "container \"%s\": container not running (it is %s)", id,
                                       moat_status_to_string(st));
        r = moat_cgroup_freeze(cg, true, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "pausing container \"%s\"", id);
        return 0;
}

int moat_container_resume(const struct moat_runtime *rt, const char *id, struct moat_error **reterr)
{
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        enum moat_status st;

        int r = load(rt, id, &s, &st, &cg, reterr);
        if (r < 0)
                return r;
        if (st != MOAT_STATUS_PAUSED)
                return moat_error_setx(reterr, -EINVAL, "container \"%s\": container not paused (it is %s)", id,
                                       moat_status_to_string(st));
        r = moat_cgroup_freeze(cg, false, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "resuming container \"%s\"", id);
        return 0;
}
