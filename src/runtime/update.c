/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `update`: new limits for a live container. The object is checked as a
 * whole before anything is written (a bad value changes nothing), then the
 * cgroup recorded at create gets only what the object sets, through the
 * same code create uses (cgroup-resources.c).
 */

#include <fcntl.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "runtime/cgroup-resources.h"
#include "runtime/cgroup.h"
#include "runtime/runtime.h"
#include "runtime/state.h"

int moat_container_update(const struct moat_runtime *rt, const char *id, const json_t *resources,
                          struct moat_error **reterr)
{
        _cleanup_resources_ struct moat_resources *res = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        int r;

        r = moat_id_validate(id, reterr);
        if (r < 0)
                return r;
        r = moat_resources_parse(resources, "resources", &res, reterr);
        if (r < 0)
                return r;
        moat_resources_set_warn(res, rt->warn);

        r = moat_state_open(rt, id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        if (moat_state_status(s, dir_fd) == MOAT_STATUS_STOPPED)
                return moat_error_setx(reterr, -ESRCH, "cannot update container \"%s\": container not running", id);
        if (strempty(s->cgroup))
                return moat_error_setx(reterr, -ENOENT, "container \"%s\" has no cgroup recorded", id);
        r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "container \"%s\"", id);
        r = moat_resources_apply(cg, res, MOAT_RESOURCES_UPDATE, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "updating container \"%s\"", id);
        return 0;
}
