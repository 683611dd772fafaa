/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Device nodes inside the rootfs: the default devices of config-linux.md
 * (null, zero, full, random, urandom, tty), linux.devices, and the /dev
 * links (fd, stdin, stdout, stderr, ptmx, core). Nodes are made with
 * mknodat() in their parent directory resolved inside the root, so a
 * symlink planted in the image is never followed, and a rootfs whose /dev
 * is a symlink is refused outright; in a user namespace,
 * where mknod is refused, the host's node is bind-mounted onto an empty
 * file instead, as runc does.
 */

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "runtime/mount.h"

struct device {
        const char *path;
        char type;
        uint64_t major;
        uint64_t minor;
        mode_t mode;
        uid_t uid;
        gid_t gid;
};

static const struct device default_devices[] = {
        { "/dev/null", 'c', 1, 3, 0666, 0, 0 },
        { "/dev/zero", 'c', 1, 5, 0666, 0, 0 },
        { "/dev/full", 'c', 1, 7, 0666, 0, 0 },
        { "/dev/random", 'c', 1, 8, 0666, 0, 0 },
        { "/dev/urandom", 'c', 1, 9, 0666, 0, 0 },
        { "/dev/tty", 'c', 5, 0, 0666, 0, 0 },
};

/* Compare paths component by component, ignoring repeated slashes. */
static bool same_path(const char *a, const char *b)
{
        for (;;) {
                a += strspn(a, "/");
                b += strspn(b, "/");
                size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
                if (la != lb || strncmp(a, b, la) != 0)
                        return false;
                if (la == 0)
                        return true;
                a += la;
                b += lb;
        }
}

static int bind_host_node(int root_fd, int parent_fd, const char *leaf, const struct device *d)
{
        _cleanup_close_ int target = -EBADF, tree = -EBADF;

        int fd = openat(parent_fd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0000);
        if (fd < 0 && errno != EEXIST)
                return negative_errno();
        safe_close(fd);

        /* The leaf itself, never followed: a symlink the image put there
         * is refused rather than bound over its target. */
        target = openat(parent_fd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (target < 0)
                return negative_errno();
        struct stat st;
        if (fstat(target, &st) < 0)
                return negative_errno();
        if (S_ISLNK(st.st_mode) || S_ISDIR(st.st_mode))
                return -ELOOP;
        tree = open_tree(AT_FDCWD, d->path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
        if (tree < 0)
                return negative_errno();
        return RET_NERRNO(move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

/* Returns -errno with *ret_step naming the failed call. */
static int create_device(int root_fd, const struct device *d, bool in_user_ns, const char **ret_step)
{
        _cleanup_free_ char *parent = NULL;
        _cleanup_close_ int parent_fd = -EBADF;
        int r;

        *ret_step = "path";
        if (!d->path || d->path[0] != '/')
                return -EINVAL;
        const char *slash = strrchr(d->path, '/');
        const char *leaf = slash + 1;
        if (!*leaf || streq(leaf, ".") || streq(leaf, ".."))
                return -EINVAL;
        parent = strndup(d->path, (size_t) (slash - d->path));
        if (!parent)
                return -ENOMEM;

        *ret_step = "creating the parent directory";
        parent_fd = moat_mkdir_p_in_root(root_fd, parent);
        if (parent_fd < 0)
                return parent_fd;

        mode_t kind = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
        dev_t rdev = d->type == 'p' ? 0 : makedev(d->major, d->minor);

        if (!in_user_ns) {
                *ret_step = "mknod";
                for (int attempt = 0; attempt < 2; attempt++) {
                        if (mknodat(parent_fd, leaf, kind | (d->mode & 07777), rdev) >= 0)
                                break;
                        if (errno == EPERM)
                                goto bind;
                        if (errno != EEXIST || attempt > 0)
                                return negative_errno();

                        /* Something is there already (never followed): keep
                         * the right node, replace anything else. */
                        struct stat st;
                        if (fstatat(parent_fd, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                return negative_errno();
                        if ((st.st_mode & S_IFMT) == kind && (kind == S_IFIFO || st.st_rdev == rdev))
                                break;
                        if (S_ISDIR(st.st_mode))
                                return -EISDIR;
                        if (unlinkat(parent_fd, leaf, 0) < 0)
                                return negative_errno();
                }
                *ret_step = "chmod";
                if (fchmodat(parent_fd, leaf, d->mode & 07777, 0) < 0)
                        return negative_errno();
                *ret_step = "chown";
                if (fchownat(parent_fd, leaf, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
                return 0;
        }

bind:
        *ret_step = "bind mount of the host's node";
        r = bind_host_node(root_fd, parent_fd, leaf, d);
        return r;
}

static int dev_links(int root_fd, bool devpts_at_dev_pts, struct moat_error **reterr)
{
        static const struct {
                const char *target;
                const char *name;
        } links[] = {
                { "/proc/self/fd", "fd" },
                { "/proc/self/fd/0", "stdin" },
                { "/proc/self/fd/1", "stdout" },
                { "/proc/self/fd/2", "stderr" },
        };
        _cleanup_close_ int dev_fd = moat_mkdir_p_in_root(root_fd, "/dev");

        if (dev_fd < 0)
                return moat_error_set(reterr, dev_fd, "/dev");
        for (size_t i = 0; i < ELEMENTSOF(links); i++)
                if (symlinkat(links[i].target, dev_fd, links[i].name) < 0 && errno != EEXIST)
                        return moat_error_set(reterr, -errno, "/dev/%s: symlink", links[i].name);

        /* The host's /proc: we run before pivot_root. */
        if (access("/proc/kcore", F_OK) == 0 && symlinkat("/proc/kcore", dev_fd, "core") < 0 && errno != EEXIST)
                return moat_error_set(reterr, -errno, "/dev/core: symlink");

        if (devpts_at_dev_pts) {
                if (unlinkat(dev_fd, "ptmx", 0) < 0 && errno != ENOENT)
                        return moat_error_set(reterr, -errno, "/dev/ptmx: unlink");
                if (symlinkat("pts/ptmx", dev_fd, "ptmx") < 0)
                        return moat_error_set(reterr, -errno, "/dev/ptmx: symlink");
        }
        return 0;
}

int moat_mount_create_devices(const struct moat_mount_context *ctx, int root_fd, bool devpts_at_dev_pts,
                              struct moat_error **reterr)
{
        const struct oci_linux *l = ctx->config->has_linux ? &ctx->config->linux_ : NULL;
        const char *step;
        struct stat st;
        int r;

        /* A /dev symlink in the image (CVE-2026-41579, CVE-2026-47766) is
         * refused: even resolved inside the root it would put the nodes
         * wherever the image chose. */
        if (fstatat(root_fd, "dev", &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -ELOOP,
                                       "/dev in the rootfs is not a directory (%s): refusing to create devices "
                                       "through it",
                                       S_ISLNK(st.st_mode) ? "a symlink" : "another file type");

        for (size_t i = 0; i < ELEMENTSOF(default_devices); i++) {
                bool overridden = false;
                for (size_t k = 0; l && k < l->n_devices; k++)
                        if (l->devices[k].path && same_path(l->devices[k].path, default_devices[i].path))
                                overridden = true;
                if (overridden)
                        continue;
                r = create_device(root_fd, &default_devices[i], ctx->in_user_ns, &step);
                if (r < 0)
                        return moat_error_set(reterr, r, "default device \"%s\": %s", default_devices[i].path, step);
        }

        for (size_t i = 0; l && i < l->n_devices; i++) {
                const struct oci_device *od = &l->devices[i];
                struct device d = {
                        .path = od->path,
                        .type = od->type,
                        .major = od->has_major_minor ? (uint64_t) od->major : 0,
                        .minor = od->has_major_minor ? (uint64_t) od->minor : 0,
                        .mode = od->has_file_mode ? (mode_t) od->file_mode : 0666,
                        .uid = od->has_uid ? od->uid : 0,
                        .gid = od->has_gid ? od->gid : 0,
                };
                if (!strchr("cbup", od->type) || od->type == '\0')
                        return moat_error_setx(reterr, -EINVAL, "linux.devices[%zu] \"%s\": unknown type '%c'", i,
                                               od->path ? od->path : "", od->type ? od->type : '?');
                if (od->type != 'p' && (!od->has_major_minor || od->major < 0 || od->minor < 0))
                        return moat_error_setx(reterr, -EINVAL, "linux.devices[%zu] \"%s\": needs major and minor",
                                               i, od->path ? od->path : "");
                r = create_device(root_fd, &d, ctx->in_user_ns, &step);
                if (r < 0)
                        return moat_error_set(reterr, r, "linux.devices[%zu] \"%s\": %s", i, od->path ? od->path : "",
                                              step);
        }

        return dev_links(root_fd, devpts_at_dev_pts, reterr);
}
