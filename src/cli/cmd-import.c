/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat import [-c CHANGE]... [-m MESSAGE] [--platform P] file|- [REPOSITORY[:TAG]]:
 * docker import. The tarball (a file, or standard input for "-") becomes a
 * one-layer image (image/import.h); with a reference it is tagged, without
 * one it is kept as an untagged (<none>) image, as docker keeps it. Prints
 * the image ID ("sha256:<hex>"). A URL source is refused: moat does not
 * fetch from the network here.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "image/import.h"
#include "image/reference.h"

int cmd_import(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_PLATFORM = 256 };
        static const struct option options[] = {
                { "change", required_argument, NULL, 'c' },
                { "message", required_argument, NULL, 'm' },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                {},
        };
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_import_result_ struct moat_import_result *res = NULL;
        _cleanup_free_ char **changes = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct moat_import_options o = {};
        size_t n_changes = 0;
        int c, r;

        changes = calloc((size_t) argc + 1, sizeof(char *));
        if (!changes)
                return moat_error_set(reterr, -ENOMEM, "import");
        while ((c = getopt_long(argc, argv, "+c:m:", options, NULL)) != -1) {
                switch (c) {
                case 'c':
                        if (n_changes >= MOAT_IMPORT_CHANGES_MAX)
                                return moat_error_setx(reterr, -E2BIG, "import: more than %u --change options",
                                                       MOAT_IMPORT_CHANGES_MAX);
                        changes[n_changes++] = optarg;
                        break;
                case 'm':
                        o.message = optarg;
                        break;
                case OPT_PLATFORM:
                        o.platform = optarg;
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "import: option \"%s\" needs an argument",
                                               argv[optind - 1]);
                default:
                        return cli_bad_option("import", argv[optind - 1], reterr);
                }
        }
        if (argc - optind < 1 || argc - optind > 2)
                return moat_error_setx(reterr, -EINVAL,
                                       "import: requires at least 1 and at most 2 arguments (file|- [REPOSITORY[:TAG]])");
        const char *source = argv[optind];
        const char *reference = argc - optind == 2 ? argv[optind + 1] : NULL;
        o.changes = changes;
        o.n_changes = n_changes;

        if (startswith(source, "http://") || startswith(source, "https://"))
                return moat_error_setx(reterr, -EOPNOTSUPP, "import: importing from a URL is not supported yet");
        if (reference) {
                struct moat_reference ref = {};
                r = moat_reference_parse(reference, &ref, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "import");
                bool digest = ref.digest != NULL;
                moat_reference_clear(&ref);
                if (digest)
                        return moat_error_setx(reterr, -EINVAL, "import: cannot import digest reference \"%s\"",
                                               reference);
        }

        if (streq(source, "-")) {
                if (isatty(STDIN_FILENO))
                        return moat_error_setx(reterr, -EINVAL,
                                               "import: standard input is a terminal: redirect a tarball into it");
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "standard input");
        } else {
                fd = open(source, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "open %s", source);
        }

        r = cli_open_store(cli, true, &s, reterr);
        if (r < 0)
                return r;
        r = moat_import_rootfs(s, fd, &o, &res, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "import %s", streq(source, "-") ? "standard input" : source);
        if (reference)
                r = moat_images_tag(s, reference, &res->manifest, reterr);
        else
                r = moat_images_add_untagged(s, &res->manifest, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "import: %s", reference ? reference : "keep the image");
        printf("%s\n", res->id);
        return 0;
}
