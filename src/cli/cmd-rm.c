/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat rm [-f] [-v] CONTAINER...: docker rm; -f kills a running container
 * first, -v removes its anonymous volumes. Prints each removed name.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

struct rm_args {
        bool force, volumes;
};

static int rm_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        const struct rm_args *a = userdata;
        _cleanup_free_ char *e = moat_client_escape(name), *target = NULL;
        if (strempty(name))
                return moat_error_setx(reterr, -EINVAL, "Error response from daemon: invalid container name or ID: "
                                                        "value is empty");
        if (!e || asprintf(&target, "/containers/%s?force=%d&v=%d", e, a->force, a->volumes) < 0)
                return moat_error_set(reterr, -ENOMEM, "rm");
        return moat_client_call(client, "DELETE", target, NULL, NULL, NULL, reterr);
}

int cmd_rm(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                { "volumes", no_argument, NULL, 'v' },
                {},
        };
        struct rm_args a = {};
        int c;

        while ((c = getopt_long(argc, argv, ":fv", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        a.force = true;
                        break;
                case 'v':
                        a.volumes = true;
                        break;
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat rm\" requires at least 1 argument.");
        return cli_for_each(cli, argc, argv, optind, rm_one, &a, true, reterr);
}
