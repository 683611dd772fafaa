/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * What moat and its helper moat-image (image-main.c) share, so that a
 * verb answers the same whichever of the two runs it: running a verb and
 * printing its error once with its exit status, the unknown-option error,
 * docker's human sizes.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"

int cli_run_verb(struct moat_cli *cli, moat_cli_verb_fn fn, bool plain_errors, int argc, char **argv)
{
        _cleanup_error_ struct moat_error *err = NULL;

        /* The verb sees its own argv (argv[0] is the verb) and parses it
         * with getopt from the start. */
        optind = 0;
        opterr = 0;
        int r = fn(cli, argc, argv, &err);
        if (fflush(stdout) != 0 && r >= 0)
                r = moat_error_set(&err, errno, "write standard output");
        if (r == CLI_FAILED_REPORTED && !err)
                return cli->error_exit;
        if (r < 0) {
                const char *msg = err && err->msg ? err->msg : strerror(-r);
                if (plain_errors)
                        fprintf(stderr, "%s\n", msg);
                else
                        fprintf(stderr, "moat: %s\n", msg);
                return cli->error_exit;
        }
        return cli->exit_code;
}

int cli_bad_option(const char *verb, const char *arg, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EINVAL, "%s: unknown option \"%s\"", verb, arg);
}

static void human_size_prec(double v, int prec, char *buf, size_t len)
{
        static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
        size_t u = 0;
        while (v >= 1000.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1000.0;
                u++;
        }
        snprintf(buf, len, "%.*g%s", prec, v, units[u]);
}

void cli_human_size(int64_t size, char *buf, size_t len)
{
        human_size_prec((double) size, 3, buf, len);
}

void cli_human_size4(uint64_t size, char *buf, size_t len)
{
        human_size_prec((double) size, 4, buf, len);
}
