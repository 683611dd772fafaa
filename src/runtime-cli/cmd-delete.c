/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `delete [--force] <id>`: remove a stopped container (or kill it first). */

#include <getopt.h>

#include "base/log.h"
#include "runtime-cli/cli.h"

int cmd_delete(struct cli_context *ctx, int argc, char **argv)
{
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        bool force = false;
        int c;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "f", options, NULL)) != -1) {
                if (c != 'f') {
                        log_error("delete: unknown option '%s'", argv[optind - 1]);
                        return 1;
                }
                force = true;
        }
        if (!cli_check_args("delete", argc - optind, 1, "container id"))
                return 1;
        int r = moat_container_delete(&ctx->rt, argv[optind], force, &err);
        if (r < 0) {
                /* runc: deleting a missing container with --force succeeds. */
                if (force && r == -ENOENT)
                        return 0;
                return cli_fail(r, err);
        }
        return 0;
}
