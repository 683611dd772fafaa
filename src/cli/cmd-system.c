/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* moat system events|info: docker's system group. */

#include "cli/cli.h"

int cmd_system(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        if (argc < 2)
                return moat_error_setx(reterr, -EINVAL, "usage: moat system events|info");
        if (streq(argv[1], "events"))
                return cmd_events(cli, argc - 1, argv + 1, reterr);
        if (streq(argv[1], "info"))
                return cmd_info(cli, argc - 1, argv + 1, reterr);
        return moat_error_setx(reterr, -EINVAL, "moat system: unknown command \"%s\" (events, info)", argv[1]);
}
