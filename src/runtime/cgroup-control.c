/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written). */

#include <signal.h>

#include "base/cleanup.h"
#include "runtime/cgroup-control.h"

int moat_cgroup_freeze(struct moat_cgroup *cg, bool frozen, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "freezing a cgroup is not supported yet");
}

int moat_cgroup_is_frozen(struct moat_cgroup *cg, bool *ret, struct moat_error **reterr)
{
        *ret = false;
        return 0;
}

int moat_cgroup_kill_all(struct moat_cgroup *cg, int sig, struct moat_error **reterr)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int r = moat_cgroup_pids(cg, &pids, &n, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (kill(pids[i], sig) < 0 && errno != ESRCH)
                        return moat_error_set(reterr, errno, "signalling pid %d", (int) pids[i]);
        return 0;
}

int moat_cgroup_stats(struct moat_cgroup *cg, json_t **ret, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "cgroup statistics are not supported yet");
}

int moat_cgroup_oom_kills(struct moat_cgroup *cg, uint64_t *ret, struct moat_error **reterr)
{
        *ret = 0;
        return 0;
}
