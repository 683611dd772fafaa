/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `run [--detach] [--keep] [create flags] <id>`: create and start; in the
 * foreground wait for the container, forward signals to it, delete it
 * afterwards (unless --keep) and exit with its status.
 */

#include "runtime-cli/cli.h"

int cmd_run(struct cli_context *ctx, int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_create_options opts = { .mode = MOAT_CREATE_RUN_FOREGROUND };
        int status = 0;

        int first = cli_parse_create_flags("run", argc, argv, &opts);
        if (first < 0)
                return 1;
        if (!cli_check_args("run", argc - first, 1, "container id"))
                return 1;
        opts.id = argv[first];
        int r = moat_container_create(&ctx->rt, &opts, &status, &err);
        if (r < 0)
                return cli_fail(r, err);
        return opts.mode == MOAT_CREATE_RUN_FOREGROUND ? status : 0;
}
