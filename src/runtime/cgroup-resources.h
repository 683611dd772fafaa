/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * linux.resources: parsed into typed limits, validated (errors name the
 * JSON path: "linux.resources.memory.limit: must be ..."), and written to
 * the container's cgroup on v1, v2 and hybrid hosts with the conversions
 * runc and crun use (shares -> cpu.weight, blkio weight -> io.weight, swap
 * -> memory.swap.max = swap - limit, ...). Device rules go to
 * devices.allow/deny on v1 and to an eBPF program on v2.
 *
 * Used at create (before the init joins the cgroup) and by update (live).
 */

#include "base/compat.h"
#include "base/error.h"
#include "runtime/cgroup.h"

#include <jansson.h>

struct moat_resources;

/* Parse a LinuxResources object (may be NULL: no resources). path_prefix
 * is the JSON path for messages ("linux.resources" at create, "resources"
 * for update's stdin). */
MOAT_NODISCARD int moat_resources_parse(const json_t *resources, const char *path_prefix,
                                        struct moat_resources **ret, struct moat_error **reterr);
void moat_resources_free(struct moat_resources *r);
static inline void moat_resources_freep(struct moat_resources **r)
{
        moat_resources_free(*r);
        *r = NULL;
}
#define _cleanup_resources_ __attribute__((cleanup(moat_resources_freep)))

enum moat_resources_mode {
        MOAT_RESOURCES_CREATE,  /* a new, empty cgroup: also install the default device rules */
        MOAT_RESOURCES_UPDATE,  /* a live container: only what the object sets changes */
};

/* Where non-fatal problems go (a setting a layout ignores, as runc does:
 * kernel memory, blockIO.leafWeight on v2, ...); without it they are only
 * logged at debug level. */
void moat_resources_set_warn(struct moat_resources *r, void (*warn)(const char *msg));

/* Write the limits. A value the kernel refuses fails with the JSON path,
 * the value and the file named ("linux.resources.memory.limit: writing
 * \"1048576\" to memory.limit_in_bytes: the container uses 2379776 bytes,
 * more than the new limit: Device or resource busy"). CREATE also installs
 * the default device rules and, on cgroup v2, memory.oom.group = 1. */
MOAT_NODISCARD int moat_resources_apply(struct moat_cgroup *cg, const struct moat_resources *r,
                                        enum moat_resources_mode mode, struct moat_error **reterr);

/* ---- conversions and checks, shared with the CLI and the unit tests ----- */

/* cpu.shares (v1, 2..262144) to cpu.weight (v2, 1..10000) with crun's
 * formula, 10^((log2(s)^2 + 125*log2(s))/612 - 7/34), clamped; 0 stays 0. */
uint64_t moat_cpu_shares_to_weight(uint64_t shares);

/* blkio.weight (10..1000) to io.weight (1..10000): 1 + (w-10)*9999/990. */
uint64_t moat_blkio_weight_to_io_weight(uint64_t weight);

/* memory.swap.max from the OCI memory+swap value: swap - limit, -1 for
 * "max". -EINVAL with a message when the two do not fit together. */
MOAT_NODISCARD int moat_swap_to_v2(int64_t swap, int64_t limit, int64_t *ret, const char **ret_why);

#define MOAT_CPUSET_MAX 8192
#define MOAT_CPUSET_WORDS (MOAT_CPUSET_MAX / 64)
/* Parse a cpuset list ("0-3,6,8-9") into a bitmap of MOAT_CPUSET_WORDS
 * words. -EINVAL: bad syntax; -ERANGE: an id of MOAT_CPUSET_MAX or more. */
MOAT_NODISCARD int moat_cpuset_parse(const char *s, uint64_t *bits);

/* A size as runc's update flags take it: "1048576", "512k", "512m", "1g",
 * "1.5G", "2GiB", "1gb" (binary multiples, as docker's RAMInBytes), or
 * "-1" for unlimited. */
MOAT_NODISCARD int moat_parse_size(const char *s, int64_t *ret);
