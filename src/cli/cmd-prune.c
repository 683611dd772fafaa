/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

#include "cli/cli.h"

int cmd_prune(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "prune: not supported yet");
}
