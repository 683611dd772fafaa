/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `create [--bundle B] [--pid-file P] [--console-socket S] ... <id>` */

#include "runtime-cli/cli.h"

int cmd_create(struct cli_context *ctx, int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_create_options opts = { .mode = MOAT_CREATE_ONLY };

        int first = cli_parse_create_flags("create", argc, argv, &opts);
        if (first < 0)
                return 1;
        if (!cli_check_args("create", argc - first, 1, "container id"))
                return 1;
        opts.id = argv[first];
        int r = moat_container_create(&ctx->rt, &opts, NULL, &err);
        if (r < 0)
                return cli_fail(r, err);
        return 0;
}
