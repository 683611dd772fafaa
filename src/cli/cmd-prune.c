/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat image prune (and moat prune) [-a] [-f] [--filter K=V]...: docker
 * image prune, through POST /images/prune (dangling images; -a every image
 * no container uses: dangling=false). Unless -f, docker's question is
 * asked and answered on standard input; anything but y/yes ends the verb
 * without pruning. Prints docker's report: "Deleted Images:" with
 * "untagged:" and "deleted:" lines, then "Total reclaimed space: <size>".
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "cli/client.h"

int cmd_prune(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_client_ struct moat_client *client = NULL;
        _cleanup_json_ json_t *filters = json_object();
        struct cli_prune_opts po;
        int r;

        if (!filters)
                return moat_error_set(reterr, -ENOMEM, "image prune");
        r = cli_prune_opts_parse("image prune", argc, argv, false, filters, &po, reterr);
        if (r < 0)
                return r;
        bool all = po.all, force = po.force;
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        if (!force && !cli_confirm(all ? "WARNING! This will remove all images without at least one container "
                                         "associated to them.\nAre you sure you want to continue?"
                                       : "WARNING! This will remove all dangling images.\nAre you sure you want to "
                                         "continue?"))
                return 0;
        return cli_image_prune_report(client, filters, all, reterr);
}
