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

/* Write the limits. A value the kernel refuses fails with the file and
 * the value named ("memory.limit_in_bytes = 1048576: Device or resource
 * busy (usage is above the new limit)"). */
MOAT_NODISCARD int moat_resources_apply(struct moat_cgroup *cg, const struct moat_resources *r,
                                        enum moat_resources_mode mode, struct moat_error **reterr);
