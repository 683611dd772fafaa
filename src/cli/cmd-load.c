/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat load [-i FILE] [-q]: put the images of a docker-archive or OCI
 * layout tarball (plain, gzip or zstd; stdin without -i) into the store,
 * tag the ones the archive names and keep the others as untagged entries.
 * Prints docker's lines: "Loaded image: <familiar reference>" for a tagged
 * image, "Loaded image ID: <config digest>" for one the archive does not
 * name. As docker does, progress ("<id>: Loading layer  1.2MB/4.5MB", one
 * line per layer redrawn in place, a bar on terminals wider than 110
 * columns) goes to standard output when it is a terminal and -q is not
 * given; it is drawn the way docker's jsonmessage stream draws it.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

struct progress_lines {
        char (*ids)[80];   /* the id shown on each line, in order */
        size_t n;
        unsigned width;    /* terminal columns */
};

/* go-units HumanSize: four significant digits. */
static void size4(uint64_t v, char *buf, size_t len)
{
        cli_human_size4(v, buf, len);
}

static void on_progress(const struct moat_archive_progress *p, void *userdata)
{
        struct progress_lines *pl = userdata;
        char id[80], cur[32], tot[32], bar[64] = "", numbers[80];
        size_t line;

        if (p->kind != MOAT_ARCHIVE_BLOB_LAYER)
                return;
        if (p->digest)
                cli_short_id(p->digest, id);
        else {
                /* legacy <dir>/layer.tar: docker names the line by the layer's directory */
                size_t len = strcspn(p->member, "/");
                snprintf(id, 13, "%.*s", (int) (len < 12 ? len : 12), p->member);
        }
        for (line = 0; line < pl->n && !streq(pl->ids[line], id); line++)
                ;
        if (line == pl->n) {
                void *v = reallocarray(pl->ids, pl->n + 1, sizeof(*pl->ids));
                if (!v)
                        return;
                pl->ids = v;
                snprintf(pl->ids[pl->n++], sizeof(*pl->ids), "%s", id);
                fputs("\n", stdout);
        }
        size_t diff = pl->n - line;

        size4(p->current, cur, sizeof(cur));
        if (p->total > 0) {
                size4((uint64_t) p->total, tot, sizeof(tot));
                if (pl->width > 110) {
                        int pct = (int) ((double) p->current / (double) p->total * 100.0) / 2;
                        if (pct > 50)
                                pct = 50;
                        snprintf(bar, sizeof(bar), "[%.*s>%*s] ", pct,
                                 "==================================================", 50 - pct, "");
                }
                if (p->current > (uint64_t) p->total)
                        snprintf(numbers, sizeof(numbers), "%8s", cur);
                else
                        snprintf(numbers, sizeof(numbers), "%8s/%s", cur, tot);
        } else
                snprintf(numbers, sizeof(numbers), "%8s", cur);
        printf("\x1b[%zuA\x1b[2K\r%s: Loading layer %s%s\r\x1b[%zuB", diff, id, bar, numbers, diff);
        fflush(stdout);
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

        while ((c = getopt_long(argc, argv, ":i:q", options, NULL)) != -1) {
                switch (c) {
                case 'i':
                        input = optarg;
                        break;
                case 'q':
                        quiet = true;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "load: option \"%s\" needs an argument",
                                               argv[optind - 1]);
                default:
                        return cli_bad_option("load", argv[optind - 1], reterr);
                }
        }
        if (optind < argc)
                return moat_error_setx(reterr, -EINVAL, "load: unexpected argument \"%s\"", argv[optind]);

        if (input && !streq(input, "-")) {
                fd = open(input, O_RDONLY | O_CLOEXEC | O_NOCTTY);  /* a file or a layout directory */
                if (fd < 0)
                        return moat_error_set(reterr, errno, "open %s", input);
        } else {
                if (isatty(STDIN_FILENO))
                        return moat_error_setx(reterr, -EINVAL,
                                               "requested load from stdin, but stdin is empty (give -i FILE)");
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "standard input");
        }

        r = cli_open_store(cli, true, &s, reterr);
        if (r < 0)
                return r;
        struct progress_lines pl = { .width = 80 };
        struct moat_archive_load_options opts = { .progress = on_progress, .userdata = &pl };
        bool show = !quiet && isatty(STDOUT_FILENO);
        struct winsize ws;
        if (show && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                pl.width = ws.ws_col;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return moat_error_set(reterr, errno, "stat %s", input ? input : "standard input");
        if (S_ISDIR(st.st_mode))
                /* An OCI image layout directory (skopeo's oci:, umoci). */
                r = moat_archive_load_layout_dir(s, fd, &res, reterr);
        else
                r = moat_archive_load(s, fd, show ? &opts : NULL, &res, reterr);
        free(pl.ids);
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
                        printf("Loaded image: %s\n", fam);
                } else {
                        _cleanup_free_ char *id = NULL;
                        struct oci_descriptor d = {
                                .media_type = im->media_type,
                                .digest = im->digest,
                                .size = im->size,
                        };
                        r = moat_images_add_untagged(s, &d, reterr);
                        if (r < 0)
                                return r;
                        r = untagged_id(s, im, &id, reterr);
                        if (r < 0)
                                return r;
                        printf("Loaded image ID: %s\n", id);
                }
        }
        return 0;
}
