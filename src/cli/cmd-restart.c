/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* moat restart [-t SECONDS] [-s SIGNAL] CONTAINER...: docker restart (stop's flags). */

#include "cli/cli.h"


int cmd_restart(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return cli_stop_like(cli, "restart", argc, argv, reterr);
}
