/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat wait CONTAINER...: docker wait. Blocks until each container stops
 * (condition not-running) and prints its exit code; failures on stderr.
 */

#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static int wait_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        _cleanup_json_ json_t *reply = NULL;
        if (!e || asprintf(&target, "/containers/%s/wait", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "wait");
        int r = moat_client_call(client, "POST", target, NULL, NULL, &reply, reterr);
        if (r < 0)
                return r;
        const char *msg = json_string_value(json_object_get(json_object_get(reply, "Error"), "Message"));
        if (!strempty(msg))
                return moat_error_setx(reterr, -EIO, "%s", msg);
        if (!json_is_integer(json_object_get(reply, "StatusCode")))
                return moat_error_setx(reterr, -EPROTO, "wait %s: the daemon's reply has no StatusCode", name);
        printf("%" JSON_INTEGER_FORMAT "\n", json_integer_value(json_object_get(reply, "StatusCode")));
        fflush(stdout);
        return 0;
}

int cmd_wait(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        if (argc > 1 && argv[1][0] == '-' && argv[1][1])
                return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[1]);
        if (argc < 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat wait\" requires at least 1 argument.");
        return cli_for_each(cli, argc, argv, 1, wait_one, NULL, false, reterr);
}
