/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat rmi [-f] [--no-prune] IMAGE...: docker's image removal
 * (moat_images_remove) of each argument in order: a reference is untagged,
 * then its image deleted when no name is left; an ID or ID prefix deletes
 * the image, refused without -f when several names hold it. Prints
 * docker's "Untagged: <familiar ref>" and "Deleted: sha256:..." lines (the
 * image ID, then the ChainIDs of the layers that went). An argument that
 * fails is reported ("moat: ...") and the others still processed; the exit
 * status is 1 when any failed. The CLI runs no containers, so no use check
 * is passed. --no-prune is accepted and has no effect: OCI images have no
 * untagged parents to keep (docker ignores it for such images too).
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"

static void print_report(struct moat_images_delete_report *rep)
{
        for (size_t i = 0; i < rep->n; i++) {
                if (rep->items[i].untagged)
                        printf("Untagged: %s\n", rep->items[i].untagged);
                if (rep->items[i].deleted)
                        printf("Deleted: %s\n", rep->items[i].deleted);
        }
        fflush(stdout);
}

int cmd_rmi(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_NO_PRUNE = 256 };
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                { "no-prune", no_argument, NULL, OPT_NO_PRUNE },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_images_remove_options opts = {};
        bool failed = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "f", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                        opts.force = true;
                        break;
                case OPT_NO_PRUNE:
                        break;
                default:
                        return cli_bad_option("rmi", argv[optind - 1], reterr);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "rmi: requires at least 1 argument (IMAGE...)");

        r = cli_open_store(cli, false, &s, NULL);
        if (r < 0 && r != -ENOENT)
                return cli_open_store(cli, false, &s, reterr);
        opts.in_use = cli_image_in_use;
        opts.userdata = s;
        for (int i = optind; i < argc; i++) {
                struct moat_images_delete_report rep = {};
                _cleanup_error_ struct moat_error *err = NULL;

                r = s ? moat_images_remove(s, argv[i], &opts, &rep, &err) : -ENOENT;
                print_report(&rep);
                moat_images_delete_report_clear(&rep);
                if (r < 0) {
                        if (!s)
                                moat_error_setx(&err, r, "No such image: %s", argv[i]);
                        fprintf(stderr, "moat: %s\n", err && err->msg ? err->msg : strerror(-r));
                        failed = true;
                }
        }
        return failed ? CLI_FAILED_REPORTED : 0;
}
