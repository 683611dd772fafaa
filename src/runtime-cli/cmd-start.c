/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `start <id>`: let a created container's init exec its program. */

#include "runtime-cli/cli.h"

int cmd_start(struct cli_context *ctx, int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;

        if (!cli_check_args("start", argc - 1, 1, "container id"))
                return 1;
        int r = moat_container_start(&ctx->rt, argv[1], &err);
        if (r < 0)
                return cli_fail(r, err);
        return 0;
}
