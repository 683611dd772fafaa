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

/* How many times the kernel's OOM killer killed in this cgroup (v1
 * memory.oom_control or v2 memory.events "oom_kill"). -ENOENT when no
 * hierarchy has the memory controller or the kernel does not count. */
MOAT_NODISCARD int moat_cgroup_oom_kills(struct moat_cgroup *cg, uint64_t *ret, struct moat_error **reterr);

/* How long freeze and kill_all wait for the kernel before giving up. */
#define MOAT_CGROUP_FREEZE_TIMEOUT_MS 5000u
#define MOAT_CGROUP_KILL_TIMEOUT_MS 5000u

/* Freeze or thaw one cgroup directory: v1 freezer.state, or v2
 * cgroup.freeze (any cgroup2 directory has it, also on a hybrid host),
 * waiting at most timeout_ms until the kernel reports the new state. */
MOAT_NODISCARD int moat_cgroup_freeze_dir(int dir_fd, bool v2, bool frozen, unsigned timeout_ms,
                                          struct moat_error **reterr);
MOAT_NODISCARD int moat_cgroup_dir_is_frozen(int dir_fd, bool v2, bool *ret);

/*
 * The stats document holds unsigned 64-bit counters; jansson integers are
 * signed, so "unlimited" (a v2 "max", which runc prints as
 * 18446744073709551615) is stored as MOAT_CGROUP_STATS_UNLIMITED and
 * written out by moat_cgroup_stats_dumps(), which every caller that prints
 * a document holding stats must use.
 */
#define MOAT_CGROUP_STATS_UNLIMITED INT64_MIN
MOAT_NODISCARD int moat_cgroup_stats_dumps(const json_t *doc, char **ret);

/* ---- parsers of the kernel's files (exposed for the unit tests) ---------- */

/* "key value" lines (memory.stat, cpu.stat, memory.events, cpuacct.stat)
 * into an object of integers; lines of another form are skipped. */
MOAT_NODISCARD int moat_cgroup_parse_flat_keyed(const char *text, json_t **ret);
/* One key of such a file; -ENOENT when it is absent. */
MOAT_NODISCARD int moat_cgroup_parse_key(const char *text, const char *key, uint64_t *ret);
/* A single number, or "max" (UINT64_MAX). */
MOAT_NODISCARD int moat_cgroup_parse_u64_or_max(const char *text, uint64_t *ret);
/* Whitespace-separated numbers (cpuacct.usage_percpu) into an array. */
MOAT_NODISCARD int moat_cgroup_parse_u64_list(const char *text, json_t **ret);
/* cpuacct.usage_all ("cpu user system" header, one line per cpu) into
 * per-cpu user and kernel arrays (nanoseconds). */
MOAT_NODISCARD int moat_cgroup_parse_usage_all(const char *text, json_t **ret_user, json_t **ret_kernel);
/* v1 blkio "MAJ:MIN Op value" lines into runc's BlkioEntry array
 * ({"major","minor","op","value"}); the closing "Total N" line is skipped. */
MOAT_NODISCARD int moat_cgroup_parse_blkio_v1(const char *text, json_t **ret);
/* v2 io.stat ("MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..")
 * into blkio's ioServiceBytesRecursive and ioServicedRecursive arrays. */
MOAT_NODISCARD int moat_cgroup_parse_io_stat(const char *text, json_t *blkio);
