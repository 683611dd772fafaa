/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `kill [--all] <id> [SIGNAL]`: SIGTERM by default; names or numbers. */

#include <getopt.h>
#include <signal.h>

#include "base/log.h"
#include "runtime-cli/cli.h"

int cmd_kill(struct cli_context *ctx, int argc, char **argv)
{
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        bool all = false;
        int c, sig = SIGTERM;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "a", options, NULL)) != -1) {
                if (c != 'a') {
                        log_error("kill: unknown option '%s'", argv[optind - 1]);
                        return 1;
                }
                all = true;
        }
        int n = argc - optind;
        if (n < 1 || n > 2) {
                log_error("kill: expects a container id and an optional signal, got %d arguments", n);
                return 1;
        }
        if (n == 2 && moat_signal_parse(argv[optind + 1], &sig) < 0) {
                log_error("kill: invalid signal \"%s\"", argv[optind + 1]);
                return 1;
        }
        int r = moat_container_kill(&ctx->rt, argv[optind], sig, all, &err);
        if (r < 0)
                return cli_fail(r, err);
        return 0;
}
