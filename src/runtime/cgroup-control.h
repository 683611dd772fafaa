/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Acting on a whole container through its cgroup: freeze and thaw (v1
 * freezer, v2 cgroup.freeze, waiting until the kernel reports the new
 * state), kill every process (cgroup.kill where the kernel has it, else
 * freeze, signal each pid, thaw; then wait until the cgroup is empty),
 * resource statistics in runc's event format, and OOM kill counts.
 */

#include "base/compat.h"
#include "base/error.h"
#include "runtime/cgroup.h"

#include <jansson.h>

MOAT_NODISCARD int moat_cgroup_freeze(struct moat_cgroup *cg, bool frozen, struct moat_error **reterr);

/* *ret is true while the cgroup is frozen (or freezing). */
MOAT_NODISCARD int moat_cgroup_is_frozen(struct moat_cgroup *cg, bool *ret, struct moat_error **reterr);

/* Send sig to every process of the cgroup, also those that forked away or
 * are being created; for SIGKILL, wait (bounded) until the cgroup is empty. */
MOAT_NODISCARD int moat_cgroup_kill_all(struct moat_cgroup *cg, int sig, struct moat_error **reterr);

/* runc's stats object ("cpu", "memory", "pids", "blkio", "hugetlb", ...) as
 * `runc events --stats` prints under "data". */
MOAT_NODISCARD int moat_cgroup_stats(struct moat_cgroup *cg, json_t **ret, struct moat_error **reterr);

/* How many times the kernel's OOM killer killed in this cgroup. */
MOAT_NODISCARD int moat_cgroup_oom_kills(struct moat_cgroup *cg, uint64_t *ret, struct moat_error **reterr);
