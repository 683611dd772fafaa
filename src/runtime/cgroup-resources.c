/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* PLACEHOLDER (being written): resources are not applied yet. */

#include "runtime/cgroup-resources.h"

int moat_resources_parse(const json_t *resources, const char *path_prefix, struct moat_resources **ret,
                         struct moat_error **reterr)
{
        *ret = NULL;
        return 0;
}

void moat_resources_free(struct moat_resources *r)
{
}

int moat_resources_apply(struct moat_cgroup *cg, const struct moat_resources *r, enum moat_resources_mode mode,
                         struct moat_error **reterr)
{
        return 0;
}
