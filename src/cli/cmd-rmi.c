/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat rmi [-f] REF...: remove each reference, then collect what nothing
 * references any more. Prints docker's "Untagged: <familiar ref>" and, for
 * each manifest (or index) that went with it, "Deleted: sha256:...".
 * There are no containers yet, so -f has nothing to override and is
 * accepted for docker's sake.
 */

#include <getopt.h>
#include <stdio.h>

#include "base/cleanup.h"
#include "cli/cli.h"

static int rmi_one(struct moat_store *s, const char *ref, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *fam = NULL;
        struct moat_images_gc_result gc = {};
        int r;

        r = cli_familiar(ref, &fam, reterr);
        if (r < 0)
                return r;
        /* What the reference names, to say afterwards what went. An
         * artifact or a broken image can still be untagged. */
        r = moat_images_resolve(s, ref, NULL, &img, reterr);
        if (r == -ENOENT)
                return moat_error_wrap(reterr, r, "No such image: %s", ref);
        if (r < 0) {
                if (reterr) {
                        moat_error_free(*reterr);
                        *reterr = NULL;
                }
                img = NULL;
        }
        r = moat_images_rmi(s, ref, &gc, reterr);
        if (r == -ENOENT)
                return moat_error_wrap(reterr, r, "No such image: %s", ref);
        if (r < 0)
                return r;
        printf("Untagged: %s\n", fam);
        if (img) {
                if (moat_store_has_blob(s, img->target_digest) == 0)
                        printf("Deleted: %s\n", img->target_digest);
                if (!streq(img->manifest_digest, img->target_digest) &&
                    moat_store_has_blob(s, img->manifest_digest) == 0)
                        printf("Deleted: %s\n", img->manifest_digest);
        }
        return 0;
}

int cmd_rmi(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "force", no_argument, NULL, 'f' },
                { "no-prune", no_argument, NULL, 'P' },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "+f", options, NULL)) != -1) {
                switch (c) {
                case 'f':
                case 'P':
                        break;
                default:
                        return cli_bad_option("rmi", argv[optind - 1], reterr);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "rmi: requires at least 1 argument (REF...)");

        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;
        for (int i = optind; i < argc; i++) {
                r = rmi_one(s, argv[i], reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}
