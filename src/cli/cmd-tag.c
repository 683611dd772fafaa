/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat tag SOURCE TARGET: point TARGET at what SOURCE names (a reference,
 * an ID or a unique ID prefix). The descriptor of SOURCE's index.json
 * entry is copied (an index stays an index); a SOURCE found only by digest
 * points TARGET at the resolved manifest. The image TARGET held before
 * stays as an untagged image when nothing else holds it (docker).
 */

#include <getopt.h>

#include "base/cleanup.h"
#include "cli/cli.h"

int cmd_tag(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int c, r;

        static const struct option none[] = { {} };
        if ((c = getopt_long(argc, argv, "", none, NULL)) != -1)
                return cli_bad_option("tag", argv[optind - 1], reterr);
        if (argc - optind != 2)
                return moat_error_setx(reterr, -EINVAL, "tag: requires exactly 2 arguments (SOURCE TARGET)");
        const char *source = argv[optind], *target = argv[optind + 1];

        r = cli_open_store(cli, false, &s, NULL);
        if (r == -ENOENT)
                return moat_error_setx(reterr, r, "No such image: %s", source);
        if (r < 0)
                return cli_open_store(cli, false, &s, reterr);
        r = moat_images_lookup(s, source, NULL, &img, reterr);
        if (r < 0)
                return r;

        struct oci_descriptor d = {
                .media_type = img->target_media_type,
                .digest = img->target_digest,
                .size = img->target_size,
        };
        if (d.size < 0) {
                r = moat_store_read_blob(s, img->manifest_digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
                if (r < 0)
                        return r;
                d.media_type = img->manifest_doc->media_type;
                d.digest = img->manifest_digest;
                d.size = (int64_t) len;
        }
        r = moat_images_tag(s, target, &d, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "tag %s", target);
        return 0;
}
