/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/* `list [--format table|json] [--quiet]` */

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>

#include "base/log.h"
#include "runtime-cli/cli.h"

int cmd_list(struct cli_context *ctx, int argc, char **argv)
{
        static const struct option options[] = {
                { "format", required_argument, NULL, 'f' },
                { "quiet", no_argument, NULL, 'q' },
                {},
        };
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_container_info *v = NULL;
        bool json = false, quiet = false;
        size_t n = 0;
        int c;

        opterr = 0;
        while ((c = getopt_long_only(argc, argv, "f:q", options, NULL)) != -1) {
                if (c == 'f' && (streq(optarg, "json") || streq(optarg, "table")))
                        json = streq(optarg, "json");
                else if (c == 'q')
                        quiet = true;
                else {
                        log_error("list: bad option '%s' (--format table|json, --quiet)", argv[optind - 1]);
                        return 1;
                }
        }
        int r = moat_container_list(&ctx->rt, &v, &n, &err);
        if (r < 0)
                return cli_fail(r, err);

        if (quiet) {
                for (size_t i = 0; i < n; i++)
                        puts(v[i].id);
        } else if (json) {
                json_t *arr = json_array();
                for (size_t i = 0; i < n; i++)
                        json_array_append_new(arr, json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "id", v[i].id, "pid",
                                                             (json_int_t) v[i].pid, "status", v[i].status, "bundle",
                                                             v[i].bundle, "created", v[i].created, "owner",
                                                             v[i].owner));
                char *text = json_dumps(arr, JSON_COMPACT);
                json_decref(arr);
                if (text)
                        puts(text);
                free(text);
        } else {
                printf("%-20s %-10s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
                for (size_t i = 0; i < n; i++)
                        printf("%-20s %-10d %-10s %-40s %-32s %s\n", v[i].id, (int) v[i].pid, v[i].status,
                               v[i].bundle, v[i].created, v[i].owner);
        }
        moat_container_info_free(v, n);
        return 0;
}
