/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat kill [-s SIGNAL] CONTAINER...: docker kill; the daemon's default
 * signal is SIGKILL. Names ("TERM", "SIGTERM") and numbers are the
 * daemon's to check.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

static int kill_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        const char *signal = userdata;
        _cleanup_free_ char *e = moat_client_escape(name), *sig = signal ? moat_client_escape(signal) : NULL,
                           *target = NULL;
        if (!e || (signal && !sig) ||
            asprintf(&target, "/containers/%s/kill%s%s", e, sig ? "?signal=" : "", sig ? sig : "") < 0)
                return moat_error_set(reterr, -ENOMEM, "kill");
        return moat_client_call(client, "POST", target, NULL, NULL, NULL, reterr);
}

int cmd_kill(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "signal", required_argument, NULL, 's' },
                {},
        };
        const char *signal = NULL;
        int c;

        while ((c = getopt_long(argc, argv, ":s:", options, NULL)) != -1) {
                switch (c) {
                case 's':
                        signal = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat kill\" requires at least 1 argument.");
        return cli_for_each(cli, argc, argv, optind, kill_one, (void *) signal, true, reterr);
}
