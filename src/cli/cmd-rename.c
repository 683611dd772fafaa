/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* moat rename CONTAINER NEW_NAME: docker rename. */

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

int cmd_rename(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *e = NULL, *n = NULL, *target = NULL;
        int r;

        if (argc != 3)
                return moat_error_setx(reterr, -EINVAL, "\"moat rename\" requires exactly 2 arguments.");
        if (strempty(argv[2]))
                return moat_error_setx(reterr, -EINVAL, "Error: Neither old nor new names may be empty");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        e = moat_client_escape(argv[1]);
        n = moat_client_escape(argv[2]);
        if (!e || !n || asprintf(&target, "/containers/%s/rename?name=%s", e, n) < 0)
                return moat_error_set(reterr, -ENOMEM, "rename");
        return moat_client_call(client, "POST", target, NULL, NULL, NULL, reterr);
}
