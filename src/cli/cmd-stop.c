/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat stop [-t SECONDS] [-s SIGNAL] CONTAINER...: docker stop. The stop
 * signal and the grace time are the daemon's (the container's StopSignal
 * and StopTimeout, else SIGTERM and 10 s) unless given; each stopped
 * container's name is printed, each failure on stderr (exit 1).
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "base/parse.h"
#include "cli/cli.h"
#include "cli/client.h"

struct stop_args {
        const char *verb;
        const char *timeout;
        const char *signal;
};

static int stop_one(struct moat_client *client, const char *name, void *userdata, struct moat_error **reterr)
{
        const struct stop_args *a = userdata;
        _cleanup_free_ char *e = moat_client_escape(name), *sig = a->signal ? moat_client_escape(a->signal) : NULL,
                           *target = NULL;
        if (!e || (a->signal && !sig) ||
            asprintf(&target, "/containers/%s/%s?%s%s%s%s%s", e, a->verb, a->timeout ? "t=" : "",
                     a->timeout ? a->timeout : "", a->timeout && sig ? "&" : "", sig ? "signal=" : "",
                     sig ? sig : "") < 0)
                return moat_error_set(reterr, -ENOMEM, "%s", a->verb);
        return moat_client_call(client, "POST", target, NULL, NULL, NULL, reterr);
}

/* stop and restart take the same flags */
int cli_stop_like(struct moat_cli *cli, const char *verb, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "time", required_argument, NULL, 't' },
                { "timeout", required_argument, NULL, 't' },
                { "signal", required_argument, NULL, 's' },
                {},
        };
        struct stop_args a = { .verb = verb };
        int c;

        while ((c = getopt_long(argc, argv, ":t:s:", options, NULL)) != -1) {
                switch (c) {
                case 't': {
                        int v;
                        if (safe_atoi(optarg, &v) < 0)
                                return moat_error_setx(reterr, -EINVAL,
                                                       "invalid argument \"%s\" for \"-t, --time\" flag: invalid syntax",
                                                       optarg);
                        a.timeout = optarg;
                        break;
                }
                case 's':
                        a.signal = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "flag needs an argument: %s", argv[optind - 1]);
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "\"moat %s\" requires at least 1 argument.", verb);
        return cli_for_each(cli, argc, argv, optind, stop_one, &a, true, reterr);
}

int cmd_stop(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        return cli_stop_like(cli, "stop", argc, argv, reterr);
}
