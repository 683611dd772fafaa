/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat mount IMAGE [DIR] and moat unmount IMAGE|DIR (podman's image mount):
 * an image's root filesystem, read-only, in the host's mount namespace, so
 * a person or a script can look at it. mount looks the image up (reference
 * or ID, as docker takes them), unpacks the layers into the store's layer cache (ownership kept and
 * device nodes made when running as real root) and mounts their read-only
 * overlay (snapshot.h) on DIR, by default on <root>/mounts/<image id hex>,
 * then prints the path. unmount takes a directory (an argument starting
 * with "/" or ".") or an image, whose mount it takes down: the default
 * directory's first, else one on a directory of the user's; one a call.
 *
 * There is no record of mounts besides the kernel's. /proc/self/mountinfo
 * cannot tell whose a mount is (overlayfs shows its lowers as the
 * /proc/self/fd/N strings snapshot.c gave it), so a mount is recognised by
 * what stat shows at the mount point: the root of a read-only mount that
 * is either a bind of the image's single layer tree (same device and
 * inode) or an overlay whose root directory has the inode of the topmost
 * layer tree (overlayfs reports the topmost lower's inode for a directory
 * when every layer is on one filesystem, as the layer cache is), whose
 * ChainID names every layer below it. So mounting twice mounts once and
 * prints the same path, unmount only takes down what mount made, and
 * cli_image_mount_point() finds an image's mounts anywhere by checking the
 * read-only mount points mountinfo lists.
 *
 * The layer cache is keyed by ChainID alone: trees unpacked before by
 * another caller without ownership would be reused as they are.
 */

#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "cli/image-verbs.h"
#include "image/snapshot.h"

struct image_mount {
        char *id_hex;         /* the config digest's hex */
        char **chain_ids;     /* lowest first */
        size_t n;
};

static void image_mount_clear(struct image_mount *m)
{
        free(m->id_hex);
        strv_free(m->chain_ids);
        *m = (struct image_mount) {};
}

/* 1: m's image is mounted at path, 0: nothing is (*ret_other false) or
 * something else is (*ret_other true). */
static int find_mount(const char *path, int layers_fd, const struct image_mount *m, bool *ret_other,
                      struct moat_error **reterr)
{
        ssize_t which;
        int r = moat_snapshot_mounted_stack(path, layers_fd, &m->chain_ids[m->n - 1], 1, m->n == 1, &which, reterr);
        if (r < 0)
                return r;
        *ret_other = r > 0 && which < 0;
        return r > 0 && which == 0;
}

static bool running_as_real_root(void)
{
        if (geteuid() != 0)
                return false;
        /* In a user namespace, uid 0 cannot make device nodes. */
        _cleanup_free_ char *map = NULL;
        size_t size = 0;
        if (read_full_file_at(AT_FDCWD, "/proc/self/uid_map", 4096, &map, &size) < 0)
                return false;
        unsigned long inside, outside, count;
        return sscanf(map, "%lu %lu %lu", &inside, &outside, &count) == 3 && inside == 0 && outside == 0 &&
               count == 4294967295UL;
}

/* Look ref up into m; with unpack, make sure the layer trees exist. */
static int image_setup(struct moat_store *s, const char *ref, const struct oci_platform *platform, bool unpack,
                       struct image_mount *m, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        /* A reference, a full ID or an unambiguous ID prefix, as docker takes
         * them; lookup's own message already names ref ("No such image: ..."). */
        int r = moat_images_lookup(s, ref, platform, &img, reterr);
        if (r >= 0)
                r = cli_platform_check(img, platform, ref, reterr);
        if (r < 0)
                return r;
        if (!startswith(img->config_digest, "sha256:"))
                return moat_error_setx(reterr, -EINVAL, "image %s: unexpected image id \"%s\"", ref,
                                       img->config_digest);
        if (img->manifest->n_layers == 0)
                return moat_error_setx(reterr, -EINVAL, "image %s has no layers: nothing to mount", ref);
        if (img->manifest->n_layers > MOAT_SNAPSHOT_MAX_LAYERS)
                return moat_error_setx(reterr, -E2BIG, "image %s has %zu layers, more than %u can be mounted",
                                       ref, img->manifest->n_layers, MOAT_SNAPSHOT_MAX_LAYERS);
        m->id_hex = strdup(img->config_digest + strlen("sha256:"));
        if (!m->id_hex)
                return moat_error_set(reterr, -ENOMEM, "image %s", ref);

        if (unpack) {
                struct moat_layer_options opts = {
                        .allow_devices = running_as_real_root(),
                        .keep_ownership = geteuid() == 0,
                };
                r = moat_images_unpack(s, img, &opts, &m->chain_ids, reterr);
        } else
                r = oci_chain_ids(img->config->diff_ids, img->config->n_diff_ids, &m->chain_ids, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "image %s", ref);
        m->n = img->manifest->n_layers;
        return 0;
}

/* The canonical path of an existing directory. */
static int canonical_dir(const char *path, char **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *p = realpath(path, NULL);
        struct stat st;
        if (!p || stat(p, &st) < 0)
                return moat_error_set(reterr, errno, "mount point %s", path);
        if (!S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -ENOTDIR, "mount point %s is not a directory", path);
        *ret = TAKE_PTR(p);
        return 0;
}

/* <root>/mounts/<id hex>, created 0700 (and <root>/mounts) when create is set. */
static int default_dir(const struct moat_cli *cli, const char *id_hex, bool create, char **ret,
                       struct moat_error **reterr)
{
        _cleanup_free_ char *mounts = NULL, *dir = NULL;
        if (asprintf(&mounts, "%s/mounts", cli->root) < 0 || asprintf(&dir, "%s/%s", mounts, id_hex) < 0)
                return moat_error_set(reterr, -ENOMEM, "mount directory");
        if (create) {
                if (mkdir(mounts, 0700) < 0 && errno != EEXIST)
                        return moat_error_set(reterr, errno, "create %s", mounts);
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return moat_error_set(reterr, errno, "create %s", dir);
        }
        *ret = TAKE_PTR(dir);
        return 0;
}

/*
 * Where image_id (text moat_images_lookup takes) is mounted read-only by
 * `moat mount`, wherever that is: each read-only mount point of
 * /proc/self/mountinfo is checked as find_mount does. 1 and *ret_path (the
 * first such mount point) when mounted, 0 when not.
 */
int cli_image_mount_point(struct moat_store *s, const char *image_id, char **ret_path, struct moat_error **reterr)
{
        _cleanup_(image_mount_clear) struct image_mount m = {};
        _cleanup_close_ int layers_fd = -EBADF;
        int r;

        r = image_setup(s, image_id, NULL, false, &m, reterr);
        if (r < 0)
                return r;
        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        return moat_snapshot_mount_point(layers_fd, m.chain_ids[m.n - 1], m.n == 1, ret_path, reterr);
}

int cmd_mount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_free_ char *dir = NULL, *path = NULL;
        _cleanup_close_ int target = -EBADF, layers_fd = -EBADF;
        _cleanup_(image_mount_clear) struct image_mount m = {};
        _cleanup_(cli_platform_clear) struct oci_platform platform = {};
        const char *platform_text = NULL;
        static const struct option options[] = {
                { "platform", required_argument, NULL, 'P' },
                {},
        };
        bool other = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) != -1) {
                if (c != 'P')
                        return cli_bad_option("mount", argv[optind - 1], reterr);
                platform_text = optarg;
        }
        r = cli_platform(platform_text, &platform, reterr);
        if (r < 0)
                return r;
        if (argc - optind < 1 || argc - optind > 2)
                return moat_error_setx(reterr, -EINVAL, "mount: requires IMAGE and an optional DIR");
        const char *ref = argv[optind];
        const char *user_dir = argc - optind == 2 ? argv[optind + 1] : NULL;

        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;
        r = image_setup(s, ref, platform_text ? &platform : NULL, true, &m, reterr);
        if (r < 0)
                return r;
        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;

        if (user_dir)
                r = canonical_dir(user_dir, &path, reterr);
        else {
                r = default_dir(cli, m.id_hex, true, &dir, reterr);
                if (r >= 0)
                        r = canonical_dir(dir, &path, reterr);
        }
        if (r >= 0)
                r = find_mount(path, layers_fd, &m, &other, reterr);
        if (r > 0) {
                printf("%s\n", path);
                return 0;
        }
        if (r >= 0 && other)
                r = moat_error_setx(reterr, -EBUSY, "mount %s: %s is already a mount point (not of this image)",
                                    ref, path);
        if (r >= 0) {
                target = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (target < 0)
                        r = moat_error_set(reterr, errno, "mount point %s", path);
        }
        if (r >= 0) {
                r = moat_snapshot_mount(layers_fd, (const char *const *) m.chain_ids, m.n, -EBADF, true, target,
                                        reterr);
                if (r < 0)
                        r = moat_error_wrap(reterr, r, "mount %s on %s", ref, path);
        }
        if (r < 0) {
                if (dir && !other)
                        (void) rmdir(dir);   /* only when empty: never one in use */
                return r;
        }
        printf("%s\n", path);
        return 0;
}

/* Unmount path and remove it when it is a default directory of root. */
static int unmount_at(const struct moat_cli *cli, const char *path, const char *what, struct moat_error **reterr)
{
        if (umount2(path, UMOUNT_NOFOLLOW) < 0)
                return moat_error_set(reterr, errno, "unmount %s from %s", what, path);
        _cleanup_free_ char *mounts = NULL, *mounts_canon = NULL, *parent = NULL;
        if (asprintf(&mounts, "%s/mounts", cli->root) < 0 || !(parent = strdup(path)))
                return moat_error_set(reterr, -ENOMEM, "unmount %s", path);
        char *slash = strrchr(parent, '/');
        if (slash)
                *slash = '\0';
        mounts_canon = realpath(mounts, NULL);
        if (mounts_canon && streq(mounts_canon, parent) && rmdir(path) < 0 && errno != ENOENT)
                return moat_error_set(reterr, errno, "unmount %s: remove %s", what, path);
        return 0;
}

/* Unmount the directory arg, which must hold a read-only mount of a layer
 * stack of this store (what mount made, for any of its images). */
static int unmount_dir(const struct moat_cli *cli, struct moat_store *s, const char *arg,
                       struct moat_error **reterr)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int layers_fd = -EBADF;
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_strv_free_ char **ids = NULL;
        size_t n = 0;
        ssize_t which = -1;
        int r;

        r = canonical_dir(arg, &path, reterr);
        if (r < 0)
                return r;
        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        int dfd = fcntl(layers_fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0 || !(d = fdopendir(dfd))) {
                r = -errno;
                if (dfd >= 0)
                        close(dfd);
                return moat_error_set(reterr, r, "list the layer cache");
        }
        /* The cache is bounded by what the store holds; ids grows with it. */
        for (struct dirent *de; (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                char **nv = reallocarray(ids, n + 2, sizeof(char *));
                if (!nv)
                        return moat_error_set(reterr, -ENOMEM, "list the layer cache");
                ids = nv;
                ids[n] = strdup(de->d_name);
                ids[n + 1] = NULL;
                if (!ids[n])
                        return moat_error_set(reterr, -ENOMEM, "list the layer cache");
                n++;
        }
        r = moat_snapshot_mounted_stack(path, layers_fd, ids, n, -1, &which, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -EINVAL, "unmount: %s is not a mount point", path);
        if (which < 0)
                return moat_error_setx(reterr, -EINVAL, "unmount: %s is not an image mount of %s", path, cli->root);
        return unmount_at(cli, path, path, reterr);
}

int cmd_unmount(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        _cleanup_store_ struct moat_store *s = NULL;
        _cleanup_free_ char *dir = NULL, *path = NULL;
        _cleanup_close_ int layers_fd = -EBADF;
        _cleanup_(image_mount_clear) struct image_mount m = {};
        bool other = false;
        int c, r;

        if ((c = getopt(argc, argv, "+")) != -1)
                return cli_bad_option("unmount", argv[optind - 1], reterr);
        if (argc - optind != 1)
                return moat_error_setx(reterr, -EINVAL, "unmount: requires exactly 1 argument (IMAGE or DIR)");
        const char *arg = argv[optind];

        r = cli_open_store(cli, false, &s, reterr);
        if (r < 0)
                return r;

        /* A path when it looks like one; otherwise an image reference. */
        if (arg[0] == '/' || arg[0] == '.')
                return unmount_dir(cli, s, arg, reterr);

        r = image_setup(s, arg, NULL, false, &m, reterr);
        if (r < 0)
                return r;
        r = moat_images_layers_dir(s, &layers_fd, reterr);
        if (r < 0)
                return r;
        r = default_dir(cli, m.id_hex, false, &dir, reterr);
        if (r < 0)
                return r;
        if (access(dir, F_OK) == 0) {
                r = canonical_dir(dir, &path, reterr);
                if (r < 0)
                        return r;
                r = find_mount(path, layers_fd, &m, &other, reterr);
                if (r < 0)
                        return r;
                if (other)
                        return moat_error_setx(reterr, -EBUSY, "unmount %s: %s holds a mount that is not this image's",
                                               arg, path);
                if (r > 0)
                        return unmount_at(cli, path, arg, reterr);
                /* left by a failed or external unmount */
                if (rmdir(dir) < 0 && errno != ENOENT)
                        return moat_error_set(reterr, errno, "unmount %s: remove %s", arg, dir);
        }
        /* Mounted on a directory of the user's (moat mount IMAGE DIR)? */
        _cleanup_free_ char *where = NULL;
        r = cli_image_mount_point(s, arg, &where, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -EINVAL, "unmount: image %s is not mounted", arg);
        return unmount_at(cli, where, arg, reterr);
}
