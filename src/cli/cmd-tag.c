/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat tag SOURCE TARGET: point TARGET at what SOURCE names. The entry of
 * SOURCE in index.json is copied as it is (an index stays an index); a
 * SOURCE found only by digest points TARGET at the resolved manifest.
 */

#include <getopt.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "image/reference.h"

int cmd_tag(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *buf = NULL;
        struct moat_image_ref *refs = NULL;
        size_t n = 0, len = 0;
        int c, r;

        if ((c = getopt(argc, argv, "+")) != -1)
                return cli_bad_option("tag", argv[optind - 1], reterr);
        if (argc - optind != 2)
                return moat_error_setx(reterr, -EINVAL, "tag: requires exactly 2 arguments (SOURCE TARGET)");
        const char *source = argv[optind], *target = argv[optind + 1];

        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;
        r = moat_images_resolve(s, source, NULL, &img, reterr);
        if (r < 0)
                return r == -ENOENT ? moat_error_wrap(reterr, r, "No such image: %s", source) : r;

        r = moat_images_list(s, &refs, &n, reterr);
        if (r < 0)
                return r;
        struct oci_descriptor d = {};
        for (size_t i = 0; i < n; i++)
                if (streq(refs[i].reference, img->reference)) {
                        d.media_type = refs[i].media_type;
                        d.digest = refs[i].digest;
                        d.size = refs[i].size;
                        break;
                }
        if (!d.digest) {
                r = moat_store_read_blob(s, img->manifest_digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
                if (r < 0)
                        goto finish;
                d.media_type = img->manifest_doc->media_type;
                d.digest = img->manifest_digest;
                d.size = (int64_t) len;
        }
        r = moat_images_tag(s, target, &d, reterr);
        if (r < 0)
                r = moat_error_wrap(reterr, r, "tag %s", target);
finish:
        moat_image_refs_free(refs, n);
        return r;
}
