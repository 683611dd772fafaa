/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat verify: check the whole image store (moat_images_verify): every
 * blob re-hashed, every blob an image needs present and readable, every
 * layer tree named by a ChainID of an image present. Each problem is a
 * line "<digest or layers/name>: <problem>", followed by what references
 * it; then a summary line. Exit 0 when clean, 1 when anything is wrong.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/image-verbs.h"

static void on_issue(const struct moat_images_verify_issue *issue, void *userdata)
{
        printf("%s: %s\n", issue->subject, issue->problem);
        if (issue->referenced_by)
                printf("    referenced by: %s\n", issue->referenced_by);
        else if (startswith(issue->subject, "sha256:"))
                printf("    referenced by: nothing (gc or prune removes it)\n");
}

int cmd_verify(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        struct moat_images_verify_result res = {};
        char size[32];
        int c, r;

        static const struct option none[] = { {} };
        if ((c = getopt_long(argc, argv, "", none, NULL)) != -1)
                return cli_bad_option("verify", argv[optind - 1], reterr);
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "verify: accepts no arguments (got \"%s\")", argv[optind]);
        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;
        r = moat_images_verify(s, on_issue, NULL, &res, reterr);
        if (r < 0)
                return r;
        cli_human_size4(res.bytes, size, sizeof(size));
        printf("verified %zu blob%s (%s) and %zu layer tree%s: ", res.blobs, res.blobs == 1 ? "" : "s", size,
               res.layer_trees, res.layer_trees == 1 ? "" : "s");
        if (res.problems == 0)
                printf("no problems\n");
        else
                printf("%zu problem%s\n", res.problems, res.problems == 1 ? "" : "s");
        return res.problems ? CLI_FAILED_REPORTED : 0;
}
