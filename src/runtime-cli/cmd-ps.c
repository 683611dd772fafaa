/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `ps [--format table|json] <id> [ps options]`, as runc: json prints the
 * container's host pids as an array; table runs the host's ps (default
 * -ef) and keeps the header and the lines whose PID column is one of the
 * container's pids (moat_ps_table(), shared with docker top).
 */

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "runtime-cli/cli.h"

static int print_table(char **ps_args, const pid_t *pids, size_t n)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_strv_free_ char **lines = NULL;

        int r = moat_ps_table(ps_args, pids, n, &lines, &err);
        if (r < 0)
                return cli_fail(r, err);
        for (size_t i = 0; lines[i]; i++)
                puts(lines[i]);
        return 0;
}

int cmd_ps(struct cli_context *ctx, int argc, char **argv)
{
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        bool json = false;
        size_t n = 0;
        int c;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "+f:", options, NULL)) != -1) {
                if (c == 'f' && (streq(optarg, "json") || streq(optarg, "table")))
                        json = streq(optarg, "json");
                else {
                        log_error("ps: bad option '%s' (--format table|json)", argv[optind - 1]);
                        return 1;
                }
        }
        if (optind >= argc) {
                log_error("ps: expects a container id, then options for ps");
                return 1;
        }
        const char *id = argv[optind];
        int n_ps = argc - optind - 1;
        char **ps_opts = argv + optind + 1;
        if (n_ps > 0 && streq(ps_opts[0], "--")) {
                ps_opts++;
                n_ps--;
        }
        if (json && n_ps > 0) {
                log_error("ps: options for ps are not allowed with --format json");
                return 1;
        }

        int r = moat_container_pids(&ctx->rt, id, &pids, &n, &err);
        if (r < 0)
                return cli_fail(r, err);

        if (json) {
                json_t *arr = json_array();
                for (size_t i = 0; arr && i < n; i++)
                        json_array_append_new(arr, json_integer(pids[i]));
                char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
                json_decref(arr);
                if (!text) {
                        log_error("ps: out of memory");
                        return 1;
                }
                puts(text);
                free(text);
                return 0;
        }

        _cleanup_free_ char **ps_args = calloc((size_t) n_ps + 1, sizeof(char *));
        if (!ps_args) {
                log_error("ps: out of memory");
                return 1;
        }
        for (int i = 0; i < n_ps; i++)
                ps_args[i] = ps_opts[i];
        return print_table(ps_args, pids, n);
}
