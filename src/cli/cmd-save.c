/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat save [-o FILE] [--format docker|oci] IMAGE...: docker save. Each
 * IMAGE is a reference, an ID or a unique ID prefix (moat_images_lookup).
 * The default format is docker's current one: an OCI image layout with
 * docker's manifest.json beside it, which docker load (20.10 and later),
 * podman load and moat load all read; --format oci leaves manifest.json
 * out. A reference's image is saved with its name (RepoTags and the
 * layout's ref annotations, in docker's familiar form); an image named by
 * ID or by digest goes without a name, as docker saves it.
 *
 * For the docker format, a reference naming an index is saved as the
 * manifest of this platform (manifest.json can only describe one image);
 * --format oci keeps the index and the platforms the store holds.
 *
 * Output goes to standard output unless -o; a terminal is refused. -o
 * writes an unnamed temp file (O_TMPFILE, else a dot-file) in the target's
 * directory and renames it into place only when the archive is complete,
 * so a failure or a crash never leaves a partial FILE.
 */

#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "cli/cli.h"
#include "image/image-archive.h"
#include "image/reference.h"

struct save_item {
        char *ref;
        char *digest;
};

/* The RepoTag docker would write for what the user typed: the familiar
 * reference when it names a tag, NULL for an ID or a digest reference. */
static int save_name(const struct moat_image *img, char **ret, struct moat_error **reterr)
{
        struct moat_reference ref = {};
        int r;

        *ret = NULL;
        if (img->by_id)
                return 0;
        r = moat_reference_parse(img->reference, &ref, reterr);
        if (r < 0)
                return r;
        if (!ref.digest)
                r = moat_reference_familiar(&ref, ret);
        moat_reference_clear(&ref);
        return r < 0 ? moat_error_set(reterr, r, "format reference \"%s\"", img->reference) : 0;
}

/* A new file in path's directory that nobody sees until it is linked. */
static int open_temp(const char *path, char **ret_tmp_name, int *ret_fd, struct moat_error **reterr)
{
        _cleanup_free_ char *copy = strdup(path), *copy2 = strdup(path), *tmp = NULL;
        mode_t um;
        int fd;

        if (!copy || !copy2)
                return moat_error_set(reterr, -ENOMEM, "save");
        const char *dir = dirname(copy);
        fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
        if (fd >= 0) {
                *ret_fd = fd;
                *ret_tmp_name = NULL;
                return 0;
        }
        if (errno != EOPNOTSUPP && errno != EISDIR)
                return moat_error_set(reterr, errno, "save: create a file in %s", dir);
        if (asprintf(&tmp, "%s/.%s.moat-save-XXXXXX", dir, basename(copy2)) < 0)
                return moat_error_set(reterr, -ENOMEM, "save");
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "save: create %s", tmp);
        um = umask(0);
        umask(um);
        if (fchmod(fd, 0666 & ~um) < 0) {
                int r = -errno;
                unlink(tmp);
                close(fd);
                return moat_error_set(reterr, r, "save: chmod %s", tmp);
        }
        *ret_fd = fd;
        *ret_tmp_name = TAKE_PTR(tmp);
        return 0;
}

/* Put the finished temp file at path. */
static int commit_temp(int fd, const char *tmp_name, const char *path, struct moat_error **reterr)
{
        _cleanup_free_ char *name = NULL, *copy = strdup(path);
        char proc[64];

        if (!copy)
                return moat_error_set(reterr, -ENOMEM, "save");
        if (fsync(fd) < 0)
                return moat_error_set(reterr, errno, "save: fsync %s", path);
        if (!tmp_name) {
                /* linkat cannot replace, so link under a temp name, then rename. */
                for (int tries = 0; tries < 16 && !name; tries++) {
                        uint64_t rnd;
                        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                                return moat_error_set(reterr, errno, "save: getrandom");
                        if (asprintf(&name, "%s/.moat-save-%016llx", dirname(copy), (unsigned long long) rnd) < 0)
                                return moat_error_set(reterr, -ENOMEM, "save");
                        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                        if (linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) < 0) {
                                int e = errno;
                                free(name);
                                name = NULL;
                                if (e != EEXIST)
                                        return moat_error_set(reterr, e, "save: link the new file into %s", path);
                                free(copy);
                                copy = strdup(path);
                                if (!copy)
                                        return moat_error_set(reterr, -ENOMEM, "save");
                        }
                }
                if (!name)
                        return moat_error_setx(reterr, -EEXIST, "save: no free temp name beside %s", path);
                tmp_name = name;
        }
        if (rename(tmp_name, path) < 0) {
                int r = -errno;
                unlink(tmp_name);
                return moat_error_set(reterr, r, "save: rename to %s", path);
        }
        return 0;
}

int cmd_save(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        enum { OPT_FORMAT = 256, OPT_PLATFORM };
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "format", required_argument, NULL, OPT_FORMAT },
                { "platform", required_argument, NULL, OPT_PLATFORM },
                {},
        };
        _cleanup_(cli_platform_clear) struct oci_platform platform = {};
        const char *platform_text = NULL;
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_free_ struct save_item *items = NULL;
        _cleanup_free_ struct moat_archive_save_image *saves = NULL;
        _cleanup_free_ char *tmp_name = NULL;
        _cleanup_close_ int fd = -EBADF;
        enum moat_archive_format format = MOAT_ARCHIVE_DOCKER;
        const char *output = NULL;
        size_t n = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "+o:", options, NULL)) != -1) {
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case OPT_PLATFORM:
                        platform_text = optarg;
                        break;
                case OPT_FORMAT:
                        if (streq(optarg, "oci"))
                                format = MOAT_ARCHIVE_OCI;
                        else if (streq(optarg, "docker"))
                                format = MOAT_ARCHIVE_DOCKER;
                        else
                                return moat_error_setx(reterr, -EINVAL,
                                                       "save: --format \"%s\": docker or oci", optarg);
                        break;
                case ':':
                        return moat_error_setx(reterr, -EINVAL, "save: option \"%s\" needs an argument",
                                               argv[optind - 1]);
                default:
                        return cli_bad_option("save", argv[optind - 1], reterr);
                }
        }
        if (optind >= argc)
                return moat_error_setx(reterr, -EINVAL, "save: requires at least 1 argument (IMAGE...)");
        if ((size_t) (argc - optind) > MOAT_ARCHIVE_IMAGES_MAX)
                return moat_error_setx(reterr, -E2BIG, "save: more than %u images", MOAT_ARCHIVE_IMAGES_MAX);
        if (strempty(output) && isatty(STDOUT_FILENO))
                return moat_error_setx(reterr, -EINVAL,
                                       "cowardly refusing to save to a terminal. Use the -o flag or redirect");
        if (output && strempty(output))
                return moat_error_setx(reterr, -EINVAL, "save: -o: empty file name");

        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;
        items = calloc((size_t) (argc - optind), sizeof(*items));
        saves = calloc((size_t) (argc - optind), sizeof(*saves));
        if (!items || !saves)
                return moat_error_set(reterr, -ENOMEM, "save");
        for (int i = optind; i < argc; i++) {
                _cleanup_image_ struct moat_image *img = NULL;
                _cleanup_free_ char *name = NULL;
                bool dup = false;

                if (i == optind && (r = cli_platform(platform_text, &platform, reterr)) < 0)
                        return r;
                r = moat_images_lookup(s, argv[i], platform_text ? &platform : NULL, &img, reterr);
                if (r >= 0)
                        r = cli_platform_check(img, &platform, argv[i], reterr);
                if (r < 0)
                        goto finish;
                r = save_name(img, &name, reterr);
                if (r < 0)
                        goto finish;
                /* A name goes with what it names; an ID with the image itself. */
                const char *digest = name && !(format == MOAT_ARCHIVE_DOCKER &&
                                               !streq(img->target_digest, img->manifest_digest))
                                             ? img->target_digest
                                             : img->manifest_digest;
                for (size_t k = 0; k < n && !dup; k++)
                        dup = streq(items[k].digest, digest) &&
                              ((!items[k].ref && !name) || (items[k].ref && name && streq(items[k].ref, name)));
                if (dup)
                        continue;
                items[n].digest = strdup(digest);
                if (!items[n].digest) {
                        r = moat_error_set(reterr, -ENOMEM, "save");
                        goto finish;
                }
                items[n].ref = TAKE_PTR(name);
                saves[n] = (struct moat_archive_save_image) { .ref = items[n].ref, .digest = items[n].digest };
                n++;
        }

        if (output) {
                r = open_temp(output, &tmp_name, &fd, reterr);
                if (r < 0)
                        goto finish;
        }
        r = moat_archive_save(s, saves, n, output ? fd : STDOUT_FILENO, format, reterr);
        if (r < 0) {
                if (tmp_name)
                        unlink(tmp_name);
                goto finish;
        }
        if (output) {
                r = commit_temp(fd, tmp_name, output, reterr);
                if (r < 0 && tmp_name)
                        unlink(tmp_name);
        }
finish:
        for (size_t k = 0; k < n; k++) {
                free(items[k].ref);
                free(items[k].digest);
        }
        return r;
}
