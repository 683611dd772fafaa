/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat-image: the helper moat execs for verify, mount and unmount
 * (helper.c), the verbs that run the image library on --root's store. It
 * takes moat's --root (absolute: moat made it so) and --debug, then the
 * verb's own argv, and answers as moat would: the same messages, printed
 * the same way (common.c), the same exit statuses. --help is moat's to
 * answer (help.c) before it gets here. The store and --platform helpers
 * the three verbs share live here.
 */

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base/cleanup.h"
#include "base/locale.h"
#include "base/log.h"
#include "cli/image-verbs.h"
#include "image/import.h"

static const struct {
        const char *name;
        moat_cli_verb_fn fn;
} verbs[] = {
        { "verify", cmd_verify },
        { "mount", cmd_mount },
        { "unmount", cmd_unmount },
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

int cli_platform(const char *text, struct oci_platform *ret, struct moat_error **reterr)
{
        *ret = (struct oci_platform) {};
        if (!text)
                return 0;
        int r = moat_import_platform(text, ret, reterr);
        return r < 0 ? moat_error_wrap(reterr, r, "--platform") : 0;
}

void cli_platform_clear(struct oci_platform *p)
{
        free(p->architecture);
        free(p->os);
        free(p->variant);
        *p = (struct oci_platform) {};
}

int cli_platform_check(const struct moat_image *img, const struct oci_platform *want, const char *ref,
                       struct moat_error **reterr)
{
        const struct oci_image_config *c = img->config;

        if (!want || !want->os)
                return 0;
        if (!c->os || !c->architecture || !streq(c->os, want->os) || !streq(c->architecture, want->architecture) ||
            (want->variant && c->variant && !streq(want->variant, c->variant)))
                return moat_error_setx(reterr, -ENOENT,
                                       "image with reference %s was found but its platform (%s/%s%s%s) does not match "
                                       "the specified platform (%s/%s%s%s)",
                                       ref, c->os ? c->os : "?", c->architecture ? c->architecture : "?",
                                       c->variant ? "/" : "", c->variant ? c->variant : "", want->os,
                                       want->architecture, want->variant ? "/" : "", want->variant ? want->variant : "");
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: moat-image --root DIR [--debug] verify|mount|unmount [ARGUMENTS]\n"
                   "(run by moat for 'moat verify', 'moat mount' and 'moat unmount')\n");
}

int main(int argc, char **argv)
{
        enum { OPT_ROOT = 256, OPT_DEBUG };
        static const struct option options[] = {
                { "root", required_argument, NULL, OPT_ROOT },
                { "debug", no_argument, NULL, OPT_DEBUG },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct moat_cli cli = { .error_exit = 1 };
        int c;

        moat_locale_utf8_ctype();
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) != -1) {
                switch (c) {
                case OPT_ROOT:
                        cli.root = optarg;
                        break;
                case OPT_DEBUG:
                        cli.debug = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "moat-image: unknown option '%s'\n", argv[optind - 1]);
                        usage(stderr);
                        return 1;
                }
        }
        if (!cli.root || cli.root[0] != '/') {
                fprintf(stderr, "moat-image: --root needs an absolute directory\n");
                return 1;
        }
        log_setup(-EBADF, LOG_FORMAT_TEXT, cli.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARNING, "moat");

        if (optind >= argc) {
                usage(stderr);
                return 1;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, argv[optind]))
                        return cli_run_verb(&cli, verbs[i].fn, false, argc - optind, argv + optind);
        fprintf(stderr, "moat-image: unknown command \"%s\"\n", argv[optind]);
        usage(stderr);
        return 1;
}
