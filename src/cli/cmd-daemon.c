/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat daemon: becomes moat-daemon (src/api/daemon-main.c), the helper
 * that links the engine, so the client binary stays small (helper.c).
 * The verb's arguments pass unchanged, after moat's global --root and
 * --debug.
 */

#include "cli/cli.h"

int cmd_daemon(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return cli_exec_helper(cli, "daemon", "moat-daemon", "api", argc - 1, argv + 1, reterr);
}
