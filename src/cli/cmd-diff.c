/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat diff CONTAINER: docker diff. GET /containers/{id}/changes; one
 * line per change, "C", "A" or "D" (modified, added, deleted) and the
 * path, in the daemon's order.
 */

#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

int cmd_diff(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *e = NULL, *target = NULL;
        _cleanup_json_ json_t *reply = NULL;
        json_t *c;
        size_t i;
        int r;

        if (argc > 1 && argv[1][0] == '-' && argv[1][1])
                return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[1]);
        if (argc != 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat diff\" requires exactly 1 argument.");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        e = moat_client_escape(argv[1]);
        if (!e || asprintf(&target, "/containers/%s/changes", e) < 0)
                return moat_error_set(reterr, -ENOMEM, "diff");
        r = moat_client_call(client, "GET", target, NULL, NULL, &reply, reterr);
        if (r < 0)
                return r;
        if (!json_is_array(reply) && !json_is_null(reply))
                return moat_error_setx(reterr, -EPROTO, "diff %s: the daemon's reply is not an array", argv[1]);
        json_array_foreach(reply, i, c) {
                const char *path = json_string_value(json_object_get(c, "Path"));
                json_int_t kind = json_integer_value(json_object_get(c, "Kind"));
                if (!path || kind < 0 || kind > 2)
                        return moat_error_setx(reterr, -EPROTO, "diff %s: change %zu of the daemon's reply is malformed",
                                               argv[1], i);
                printf("%c %s\n", "CAD"[kind], path);
        }
        return fflush(stdout) == 0 ? 0 : moat_error_set(reterr, -errno, "writing to stdout");
}
