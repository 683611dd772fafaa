/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

#include "cli/cli.h"

int cmd_mount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "mount: not supported yet");
}

int cmd_unmount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EOPNOTSUPP, "unmount: not supported yet");
}
