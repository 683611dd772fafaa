/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat prune [-a] [-f]: docker image prune (moat_images_prune). Removes
 * the dangling images (no name), with -a every image (the CLI runs no
 * containers, so none is in use), then collects unreferenced blobs and
 * layer trees. Prints docker's report: "Deleted Images:" with "untagged:"
 * and "deleted:" lines, a blank line, then "Total reclaimed space: <size>".
 * On a terminal without -f it asks docker's question first; without a
 * terminal it never asks.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"

int cmd_prune(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "all", no_argument, NULL, 'a' },
                { "force", no_argument, NULL, 'f' },
                { "filter", required_argument, NULL, 'F' },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_images_prune_options opts = {};
        struct moat_images_delete_report rep = {};
        bool force = false;
        int c, r;

        while ((c = getopt_long(argc, argv, ":af", options, NULL)) != -1) {
                switch (c) {
                case 'a':
                        opts.all = true;
                        break;
                case 'f':
                        force = true;
                        break;
                case 'F':
                        return moat_error_setx(reterr, -EOPNOTSUPP, "prune: --filter \"%s\" is not supported by moat",
                                               optarg);
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "prune: option \"%s\" needs an argument",
                                               argv[optind - 1]);
                default:
                        return cli_bad_option("prune", argv[optind - 1], reterr);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "prune: accepts no arguments (got \"%s\")", argv[optind]);
        if (!force && !cli_no_terminal() &&
            !cli_confirm(opts.all ? "WARNING! This will remove all images without at least one container associated "
                                    "to them.\nAre you sure you want to continue?"
                                  : "WARNING! This will remove all dangling images.\nAre you sure you want to "
                                    "continue?"))
                return moat_error_setx(reterr, -ECANCELED, "image prune has been cancelled");

        r = cli_open_store(cli, true, &s, reterr);
        if (r < 0)
                return r;
        opts.in_use = cli_image_in_use;
        opts.userdata = s;
        r = moat_images_prune(s, &opts, &rep, reterr);
        if (rep.n > 0) {
                printf("Deleted Images:\n");
                for (size_t i = 0; i < rep.n; i++) {
                        if (rep.items[i].untagged)
                                printf("untagged: %s\n", rep.items[i].untagged);
                        if (rep.items[i].deleted)
                                printf("deleted: %s\n", rep.items[i].deleted);
                }
                printf("\n");
        }
        if (r >= 0) {
                char size[32];
                cli_human_size4(rep.reclaimed, size, sizeof(size));
                printf("Total reclaimed space: %s\n", size);
        }
        moat_images_delete_report_clear(&rep);
        return r;
}
