/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat: the client binary of DESIGN.md. Parses the global options, then
 * dispatches to one cmd-<verb>.c per verb; every verb returns -errno with
 * an error, which is printed here, once. The shared helpers of the verbs
 * (store opening, reference display, sizes) live here too.
 */

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "cli/cli.h"
#include "image/reference.h"
#include "moat-config.h"

#define MOAT_DEFAULT_ROOT "/var/lib/moat"

static const struct {
        const char *name;
        moat_cli_verb_fn fn;
        const char *summary;
} verbs[] = {
        { "images", cmd_images, "list images" },
        { "inspect", cmd_inspect, "show an image's details as JSON" },
        { "load", cmd_load, "load images from a docker-archive or OCI tarball" },
        { "rmi", cmd_rmi, "remove image references and unreferenced blobs" },
        { "tag", cmd_tag, "add a reference to an image" },
        { "save", cmd_save, "write images to a docker-archive or OCI tarball" },
        { "import", cmd_import, "make a one-layer image from a root filesystem tarball" },
        { "history", cmd_history, "show an image's layers and how they were made" },
        { "verify", cmd_verify, "re-hash every blob and layer of the image store" },
        { "prune", cmd_prune, "remove unused images and unreferenced data" },
        { "mount", cmd_mount, "mount an image's root filesystem read-only and print where" },
        { "unmount", cmd_unmount, "unmount what mount mounted" },
        { "daemon", cmd_daemon, "run the moat daemon" },
};

int cli_open_store(const struct moat_cli *cli, bool create, struct moat_store **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *path = NULL;

        if (create && mkdir(cli->root, 0700) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "create %s", cli->root);
        if (asprintf(&path, "%s/images", cli->root) < 0)
                return moat_error_set(reterr, -ENOMEM, "store path");
        int r = moat_store_open(path, create, ret, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "image store %s", path);
        return 0;
}

int cli_familiar(const char *reference, char **ret, struct moat_error **reterr)
{
        struct moat_reference ref = {};
        int r = moat_reference_parse(reference, &ref, reterr);
        if (r < 0)
                return r;
        r = moat_reference_familiar(&ref, ret);
        moat_reference_clear(&ref);
        if (r < 0)
                return moat_error_set(reterr, r, "format reference \"%s\"", reference);
        return 0;
}

int cli_repo_tag(const char *reference, char **ret_repo, char **ret_tag, struct moat_error **reterr)
{
        struct moat_reference ref = {};
        _cleanup_free_ char *fam = NULL;
        int r = moat_reference_parse(reference, &ref, reterr);
        if (r < 0)
                return r;
        char *saved_tag = ref.tag, *saved_digest = ref.digest;
        /* The familiar form of the name alone: drop tag and digest. */
        ref.tag = NULL;
        ref.digest = NULL;
        r = moat_reference_familiar(&ref, &fam);
        ref.tag = saved_tag;
        ref.digest = saved_digest;
        if (r < 0) {
                moat_reference_clear(&ref);
                return moat_error_set(reterr, r, "format reference \"%s\"", reference);
        }
        /* Whatever the formatter appended for a missing tag goes too. */
        char *cut = strpbrk(fam + (strrchr(fam, '/') ? (size_t) (strrchr(fam, '/') - fam) : 0), ":@");
        if (cut)
                *cut = '\0';
        char *tag = strdup(ref.tag ? ref.tag : "<none>");
        moat_reference_clear(&ref);
        if (!tag)
                return moat_error_set(reterr, -ENOMEM, "tag");
        *ret_repo = TAKE_PTR(fam);
        *ret_tag = tag;
        return 0;
}

int64_t cli_image_size(const struct moat_image *img)
{
        int64_t sum = 0;
        for (size_t i = 0; i < img->manifest->n_layers; i++)
                if (img->manifest->layers[i].size > 0)
                        sum += img->manifest->layers[i].size;
        return sum;
}

void cli_human_size(int64_t size, char *buf, size_t len)
{
        static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB" };
        double v = (double) size;
        size_t u = 0;
        while (v >= 1000.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1000.0;
                u++;
        }
        snprintf(buf, len, "%.3g%s", v, units[u]);
}

int cli_bad_option(const char *verb, const char *arg, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EINVAL, "%s: unknown option \"%s\"", verb, arg);
}

static void usage(FILE *f)
{
        fprintf(f,
                "usage: moat [global options] <command> [options] [arguments]\n"
                "\n"
                "global options:\n"
                "  --root DIR    state directory (default %s; images in DIR/images)\n"
                "  --debug       debug logging\n"
                "  --version, --help\n"
                "\ncommands:\n",
                MOAT_DEFAULT_ROOT);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].summary);
}

int main(int argc, char **argv)
{
        enum { OPT_ROOT = 256, OPT_DEBUG };
        static const struct option options[] = {
                { "root", required_argument, NULL, OPT_ROOT },
                { "debug", no_argument, NULL, OPT_DEBUG },
                { "version", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct moat_cli cli = { .root = MOAT_DEFAULT_ROOT };
        _cleanup_free_ char *root_abs = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+vh", options, NULL)) != -1) {
                switch (c) {
                case OPT_ROOT:
                        if (strempty(optarg)) {
                                fprintf(stderr, "moat: --root: empty directory name\n");
                                return 1;
                        }
                        if (optarg[0] != '/') {
                                _cleanup_free_ char *cwd = get_current_dir_name();
                                if (!cwd || asprintf(&root_abs, "%s/%s", cwd, optarg) < 0) {
                                        fprintf(stderr, "moat: --root '%s': %m\n", optarg);
                                        return 1;
                                }
                                cli.root = root_abs;
                        } else
                                cli.root = optarg;
                        break;
                case OPT_DEBUG:
                        cli.debug = true;
                        break;
                case 'v':
                        printf("moat version %s\n", MOAT_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "moat: unknown global option '%s'\n", argv[optind - 1]);
                        usage(stderr);
                        return 1;
                }
        }
        log_setup(-EBADF, LOG_FORMAT_TEXT, cli.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "moat");

        if (optind >= argc) {
                usage(stderr);
                return 1;
        }
        int first = optind;
        const char *verb = argv[first];
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                if (!streq(verbs[i].name, verb))
                        continue;
                /* The verb sees its own argv (argv[0] is the verb) and
                 * parses it with getopt from the start. */
                optind = 0;
                opterr = 0;
                int r = verbs[i].fn(&cli, argc - first, argv + first, &err);
                if (fflush(stdout) != 0 && r >= 0)
                        r = moat_error_set(&err, errno, "write standard output");
                if (r < 0) {
                        fprintf(stderr, "moat: %s\n", err && err->msg ? err->msg : strerror(-r));
                        return 1;
                }
                return 0;
        }
        fprintf(stderr, "moat: unknown command \"%s\"\n", verb);
        usage(stderr);
        return 1;
}
