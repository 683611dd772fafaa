/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat top CONTAINER [ps OPTIONS]: docker top. GET
 * /containers/{id}/top?ps_args=...; the daemon's Titles and Processes
 * printed as docker's table.
 */

#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

int cmd_top(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_free_ char *e = NULL, *args = NULL, *eargs = NULL, *target = NULL;
        _cleanup_json_ json_t *reply = NULL;
        _cleanup_table_ struct cli_table *t = cli_table_new();
        json_t *v, *row;
        size_t i, k;
        int r;

        if (argc < 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat top\" requires at least 1 argument.");
        if (!t)
                return moat_error_set(reterr, -ENOMEM, "top");
        size_t len = 0;
        for (int a = 2; a < argc; a++)
                len += strlen(argv[a]) + 1;
        args = calloc(1, len + 1);
        if (!args)
                return moat_error_set(reterr, -ENOMEM, "top");
        for (int a = 2; a < argc; a++) {
                if (a > 2)
                        strcat(args, " ");
                strcat(args, argv[a]);
        }
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        e = moat_client_escape(argv[1]);
        eargs = moat_client_escape(args);
        if (!e || !eargs || asprintf(&target, "/containers/%s/top%s%s", e, *args ? "?ps_args=" : "", eargs) < 0)
                return moat_error_set(reterr, -ENOMEM, "top");
        r = moat_client_call(client, "GET", target, NULL, NULL, &reply, reterr);
        if (r < 0)
                return r;
        for (int pass = 0; pass < 2; pass++) {
                json_t *rows = pass == 0 ? json_pack("[O]", json_object_get(reply, "Titles"))
                                         : json_incref(json_object_get(reply, "Processes"));
                json_array_foreach(rows, i, row) {
                        _cleanup_free_ char *line = NULL;
                        size_t ll = 0;
                        FILE *f = open_memstream(&line, &ll);
                        if (!f) {
                                json_decref(rows);
                                return moat_error_set(reterr, -ENOMEM, "top");
                        }
                        json_array_foreach(row, k, v)
                                fprintf(f, "%s%s", k ? "\t" : "", json_is_string(v) ? json_string_value(v) : "");
                        fclose(f);
                        if (cli_table_add(t, line) < 0) {
                                json_decref(rows);
                                return moat_error_set(reterr, -ENOMEM, "top");
                        }
                }
                json_decref(rows);
        }
        cli_table_print(t, stdout);
        return 0;
}
