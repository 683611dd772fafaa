/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `pause <id>`: freeze every process of a running container. */

#include "runtime-cli/cli.h"

int cmd_pause(struct cli_context *ctx, int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;

        if (!cli_check_args("pause", argc - 1, 1, "container id"))
                return 1;
        int r = moat_container_pause(&ctx->rt, argv[1], &err);
        if (r < 0)
                return cli_fail(r, err);
        return 0;
}
