/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* moat unpause CONTAINER...: docker unpause; prints each name, each failure on stderr. */

#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static int unpause_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        if (!e || asprintf(&target, "/containers/%s/unpause", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "unpause");
        return moat_client_call(client, "POST", target, NULL, NULL, NULL, reterr);
}

int cmd_unpause(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        if (argc > 1 && argv[1][0] == '-' && argv[1][1])
                return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[1]);
        if (argc < 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat unpause\" requires at least 1 argument.");
        return cli_for_each(cli, argc, argv, 1, unpause_one, NULL, true, reterr);
}
