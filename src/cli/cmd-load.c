/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat load [-i FILE] [-q]: put the images of a docker-archive or OCI
 * layout tarball (plain, gzip or zstd; stdin without -i) into the store and
 * tag the ones the archive names. Prints docker's lines: "Loaded image:
 * <familiar reference>" for a tagged image, "Loaded image ID: <config
 * digest>" for one the archive does not name.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "image/image-archive.h"
#include "oci/image-spec.h"

/* The config digest of an untagged image: manifest, or through an index
 * the manifest of this platform. */
static int untagged_id(struct moat_store *s, const struct moat_archive_image *im, char **ret,
                       struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *doc = NULL;
        _cleanup_oci_image_doc_ struct oci_image_doc *mdoc = NULL;
        size_t len;
        int r;

        r = moat_store_read_blob(s, im->digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
        if (r < 0)
                return r;
        r = oci_image_doc_parse(buf, len, im->media_type, &doc, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s", im->digest);
        const struct oci_manifest *m = oci_image_doc_manifest(doc);
        if (!m) {
                const struct oci_index *idx = oci_image_doc_index(doc);
                const struct oci_descriptor *d = NULL;
                if (!idx)
                        return moat_error_setx(reterr, -EINVAL, "%s is neither a manifest nor an index",
                                               im->digest);
                r = oci_index_select(idx, NULL, NULL, NULL, &d, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", im->digest);
                free(buf);
                buf = NULL;
                r = moat_store_read_blob(s, d->digest, OCI_IMAGE_DOC_MAX_SIZE, &buf, &len, reterr);
                if (r < 0)
                        return r;
                r = oci_image_doc_parse(buf, len, d->media_type, &mdoc, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", d->digest);
                m = oci_image_doc_manifest(mdoc);
                if (!m)
                        return moat_error_setx(reterr, -EINVAL, "%s is not a manifest", d->digest);
        }
        *ret = strdup(m->config.digest);
        return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "config digest");
}

int cmd_load(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "input", required_argument, NULL, 'i' },
                { "quiet", no_argument, NULL, 'q' },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_archive_result_ struct moat_archive_result *res = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *input = NULL;
        bool quiet = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "+i:q", options, NULL)) != -1) {
                switch (c) {
                case 'i':
                        input = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                default:
                        return cli_bad_option("load", argv[optind - 1], reterr);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "load: unexpected argument \"%s\"", argv[optind]);

        if (input && !streq(input, "-")) {
                fd = open(input, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "open %s", input);
        } else {
                if (isatty(STDIN_FILENO))
                        return moat_error_setx(reterr, -EINVAL,
                                               "load: no input: give -i FILE or redirect standard input");
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "standard input");
        }

        r = cli_open_store(cli, true, &s, reterr);
        if (r < 0)
                return r;
        r = moat_archive_load(s, fd, &res, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "load %s", input ? input : "standard input");

        for (size_t i = 0; i < res->n_images; i++) {
                const struct moat_archive_image *im = &res->images[i];
                if (im->ref) {
                        _cleanup_free_ char *fam = NULL;
                        struct oci_descriptor d = {
                                .media_type = im->media_type,
                                .digest = im->digest,
                                .size = im->size,
                        };
                        r = moat_images_tag(s, im->ref, &d, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "tag %s", im->ref);
                        r = cli_familiar(im->ref, &fam, reterr);
                        if (r < 0)
                                return r;
                        if (!quiet)
                                printf("Loaded image: %s\n", fam);
                } else {
                        _cleanup_free_ char *id = NULL;
                        r = untagged_id(s, im, &id, reterr);
                        if (r < 0)
                                return r;
                        if (!quiet)
                                printf("Loaded image ID: %s\n", id);
                }
        }
        return 0;
}
