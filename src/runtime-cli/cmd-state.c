/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `state <id>`: the OCI state JSON. */

#include <stdio.h>

#include "base/cleanup.h"
#include "runtime-cli/cli.h"

int cmd_state(struct cli_context *ctx, int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *json = NULL;

        if (!cli_check_args("state", argc - 1, 1, "container id"))
                return 1;
        int r = moat_container_state(&ctx->rt, argv[1], &json, &err);
        if (r < 0)
                return cli_fail(r, err);
        puts(json);
        return 0;
}
