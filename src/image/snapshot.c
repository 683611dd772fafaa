/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Container root filesystems from unpacked layer trees (see snapshot.h):
 * the overlayfs mount, its copy-based fallback and the container's
 * upper/work directories.
 *
 * Mounting: every directory handed to the kernel is first opened here as
 * an O_PATH fd (the layer with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS,
 * so a chain id can only name a real directory inside layers_dir_fd) and
 * passed as /proc/self/fd/N. With Linux >= 6.8 each lower goes in its own
 * fsconfig("lowerdir+") call, so the length of their paths never meets the
 * one-page option limit (nor fsconfig's 256-byte limit on one string).
 * overlayfs takes at most 500 lowers; beyond, the lowest layers are first
 * mounted as a detached read-only overlay which becomes the lowest lower
 * of the container's overlay (up to 999 layers). Older kernels
 * get one mount(2) whose option string is built from the short
 * /proc/self/fd/N names; beyond one page, a clear error.
 *
 * Options: index=off (a layer is shared by many overlays; the index would
 * tie a lower to one upper and make later mounts fail with ESTALE/EBUSY),
 * redirect_dir=off and metacopy=off (nothing in a layer may redirect a
 * lookup elsewhere or stand for data kept in another layer; renaming a
 * lower directory gives EXDEV and tools fall back to copying, as on
 * Docker's defaults). Whiteouts (0/0 char devices) and opaque directories
 * (trusted.overlay.opaque=y) need no option: overlayfs honours them in
 * every lower layer when mounted by root. A read-only snapshot of a single
 * layer is a read-only bind mount (an overlay with one lower and no upper
 * is refused by older kernels).
 *
 * Copy fallback: each layer is walked by fd, one component at a time;
 * destination directories are opened with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) from their parent's fd and leaves are created with
 * O_EXCL/O_NOFOLLOW or *at calls that do not follow symlinks, so a symlink
 * in a lower layer never redirects a write outside the destination.
 */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "image/snapshot.h"

#define OVERLAY_OPTIONS "index=off,redirect_dir=off,metacopy=off"
#define FD_PATH_MAX 32
#define REMOVE_MAX_DEPTH 2048
#define COPY_PATH_MAX 4096
#define XATTR_LIST_MAX_BYTES 65536
#define XATTR_VALUE_MAX_BYTES 65536

/* ---- common ------------------------------------------------------------ */

static int openat2_beneath(int dirfd, const char *name, int flags)
{
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC | O_NOFOLLOW),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long r = syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
        return r < 0 ? negative_errno() : (int) r;
}

static int validate_ids(const char *const *chain_ids, size_t n, size_t max,
                        struct moat_error **reterr)
{
        if (n == 0)
                return moat_error_setx(reterr, EINVAL, "snapshot: no layers given");
        if (n > max)
                return moat_error_setx(reterr, E2BIG, "snapshot: %zu layers, at most %zu are supported",
                                       n, max);
        if (!chain_ids)
                return moat_error_setx(reterr, EINVAL, "snapshot: no layer list given");
        for (size_t i = 0; i < n; i++) {
                const char *id = chain_ids[i];
                if (!id || !*id)
                        return moat_error_setx(reterr, EINVAL, "snapshot: layer %zu: empty chain id", i);
                size_t len = strnlen(id, MOAT_SNAPSHOT_ID_MAX + 1);
                if (len > MOAT_SNAPSHOT_ID_MAX)
                        return moat_error_setx(reterr, EINVAL,
                                               "snapshot: layer %zu: chain id longer than %d bytes", i,
                                               MOAT_SNAPSHOT_ID_MAX);
                if (strchr(id, '/') || streq(id, ".") || streq(id, ".."))
                        return moat_error_setx(reterr, EINVAL,
                                               "snapshot: layer %zu: chain id \"%s\" is not a single name",
                                               i, id);
        }
        return 0;
}

static int open_layer(int layers_dir_fd, const char *id, int flags, struct moat_error **reterr)
{
        int fd = openat2_beneath(layers_dir_fd, id, flags | O_DIRECTORY);
        if (fd < 0)
                return moat_error_set(reterr, fd, "layer \"%s\": cannot open its tree", id);
        return fd;
}

static void fd_path(char buf[static FD_PATH_MAX], int fd)
{
        snprintf(buf, FD_PATH_MAX, "/proc/self/fd/%d", fd);
}

static void fds_close(int *fds, size_t n)
{
        if (!fds)
                return;
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        free(fds);
}

/* ---- upper/work ---------------------------------------------------------- */

static int make_dir(int dirfd, const char *name, mode_t mode, struct moat_error **reterr)
{
        if (mkdirat(dirfd, name, mode) == 0)
                return 0;
        if (errno != EEXIST)
                return moat_error_set(reterr, errno, "cannot create %s/", name);
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return moat_error_set(reterr, errno, "cannot stat %s/", name);
        if (!S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, ENOTDIR, "%s exists and is not a directory", name);
        return 0;
}

int moat_snapshot_prepare(int layers_dir_fd, const char *const *chain_ids, size_t n,
                          int container_dir_fd, bool readonly, struct moat_error **reterr)
{
        int r = validate_ids(chain_ids, n, MOAT_SNAPSHOT_MAX_COPY_LAYERS, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int fd = open_layer(layers_dir_fd, chain_ids[i], O_PATH, reterr);
                if (fd < 0)
                        return fd;
        }
        if (readonly)
                return 0;
        r = make_dir(container_dir_fd, "upper", 0755, reterr);
        if (r < 0)
                return r;
        return make_dir(container_dir_fd, "work", 0700, reterr);
}

/* ---- mounting ------------------------------------------------------------ */

/* Append the kernel's messages about the fs context (fsopen's log), if any. */
static void fc_log(int fsfd, char *buf, size_t size)
{
        size_t len = 0;
        buf[0] = '\0';
        for (int i = 0; i < 16; i++) {
                char msg[512];
                ssize_t k = read(fsfd, msg, sizeof(msg) - 1);
                if (k <= 0)
                        break;
                msg[k] = '\0';
                int w = snprintf(buf + len, size - len, "%s%s", len ? "; " : " (kernel: ", msg);
                if (w < 0 || (size_t) w >= size - len)
                        break;
                len += (size_t) w;
        }
        if (len > 0 && len + 2 <= size)
                strcat(buf, ")");
}

static int set_string(int fsfd, const char *key, const char *value, struct moat_error **reterr)
{
        if (fsconfig(fsfd, FSCONFIG_SET_STRING, key, value, 0) == 0)
                return 0;
        int e = errno;
        char log[1024];
        fc_log(fsfd, log, sizeof(log));
        return moat_error_set(reterr, e, "overlay option %s=%s refused%s", key, value, log);
}

static int attach(int mnt_fd, int target_fd, struct moat_error **reterr)
{
        if (move_mount(mnt_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return moat_error_set(reterr, errno, "cannot attach the snapshot mount to its target");
        return 0;
}

static int bind_readonly(int layers_dir_fd, const char *id, int target_fd, struct moat_error **reterr)
{
        _cleanup_close_ int layer = open_layer(layers_dir_fd, id, O_PATH, reterr);
        if (layer < 0)
                return layer;
        _cleanup_close_ int tree = open_tree(layer, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0)
                return moat_error_set(reterr, errno, "layer \"%s\": cannot clone a bind mount", id);
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
        if (mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                return moat_error_set(reterr, errno, "layer \"%s\": cannot make the bind mount read-only", id);
        return attach(tree, target_fd, reterr);
}

/* The marker a volatile mount leaves in work/ (the kernel refuses to mount
 * the upper again while it is there); only cleared for another volatile
 * mount, whose writes are disposable anyway. */
static void clear_volatile_marker(int work_fd)
{
        _cleanup_close_ int inner = openat2_beneath(work_fd, "work", O_PATH | O_DIRECTORY);
        if (inner < 0)
                return;
        _cleanup_close_ int incompat = openat2_beneath(inner, "incompat", O_PATH | O_DIRECTORY);
        if (incompat < 0)
                return;
        (void) unlinkat(incompat, "volatile", AT_REMOVEDIR);
        (void) unlinkat(inner, "incompat", AT_REMOVEDIR);
}

static int open_upper_work(int container_dir_fd, int *upper, int *work, struct moat_error **reterr)
{
        *upper = openat2_beneath(container_dir_fd, "upper", O_PATH | O_DIRECTORY);
        if (*upper < 0)
                return moat_error_set(reterr, *upper, "cannot open upper/ (was the snapshot prepared?)");
        *work = openat2_beneath(container_dir_fd, "work", O_PATH | O_DIRECTORY);
        if (*work < 0) {
                int r = *work;
                *upper = safe_close(*upper);
                return moat_error_set(reterr, r, "cannot open work/ (was the snapshot prepared?)");
        }
        return 0;
}

static int overlay_context(struct moat_error **reterr)
{
        _cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fsfd < 0) {
                if (errno == ENODEV)
                        return moat_error_set(reterr, errno, "overlayfs is not available");
                return moat_error_set(reterr, errno, "cannot open an overlayfs context");
        }
        static const char *const options[][2] = {
                { "index", "off" }, { "redirect_dir", "off" }, { "metacopy", "off" },
        };
        for (size_t i = 0; i < ELEMENTSOF(options); i++) {
                int r = set_string(fsfd, options[i][0], options[i][1], reterr);
                if (r < 0)
                        return r;
        }
        return TAKE_FD(fsfd);
}

/* Add layers [from, to) as lowers, topmost first (overlayfs's order).
 * lowerdir+ resolves the path at once, so each fd is closed right after
 * its call. 1: the kernel has no "lowerdir+", 0: done, <0: error. */
static int add_lowers(int fsfd, int layers_dir_fd, const char *const *chain_ids, size_t from,
                      size_t to, struct moat_error **reterr)
{
        for (size_t i = to; i-- > from;) {
                _cleanup_close_ int fd = open_layer(layers_dir_fd, chain_ids[i], O_PATH, reterr);
                if (fd < 0)
                        return fd;
                char p[FD_PATH_MAX];
                fd_path(p, fd);
                if (fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", p, 0) < 0) {
                        int e = errno;
                        char log[1024];
                        fc_log(fsfd, log, sizeof(log));
                        if (i == to - 1 && e == EINVAL && strstr(log, "lowerdir+"))
                                return 1;
                        return moat_error_set(reterr, e, "layer %zu \"%s\": overlay refused it as a lower%s",
                                              i, chain_ids[i], log);
                }
        }
        return 0;
}

static int create(int fsfd, size_t n, struct moat_error **reterr)
{
        if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
                int e = errno;
                char log[1024];
                fc_log(fsfd, log, sizeof(log));
                return moat_error_set(reterr, e, "cannot create the overlay of %zu layers%s", n, log);
        }
        return 0;
}

/* 1: the kernel has no "lowerdir+" (fall back), 0: mounted, <0: error. */
static int mount_fsconfig(int layers_dir_fd, const char *const *chain_ids, size_t n,
                          int container_dir_fd, unsigned flags, int target_fd,
                          struct moat_error **reterr)
{
        bool readonly = flags & MOAT_SNAPSHOT_READONLY;
        /* Beyond overlayfs's 500 lowers, the lowest layers become one
         * detached read-only overlay that is itself the lowest lower
         * (stacking depth 2, the kernel's maximum, so no deeper nesting). */
        size_t nested = n > MOAT_SNAPSHOT_OVL_MAX_STACK ? n - (MOAT_SNAPSHOT_OVL_MAX_STACK - 1) : 0;
        _cleanup_close_ int inner = -EBADF;
        if (nested > 0) {
                _cleanup_close_ int ifs = overlay_context(reterr);
                if (ifs < 0)
                        return ifs;
                int r = add_lowers(ifs, layers_dir_fd, chain_ids, 0, nested, reterr);
                if (r != 0)
                        return r;
                r = create(ifs, nested, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "the lowest %zu layers", nested);
                inner = fsmount(ifs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY);
                if (inner < 0)
                        return moat_error_set(reterr, errno, "cannot mount the lowest %zu layers", nested);
        }

        _cleanup_close_ int fsfd = overlay_context(reterr);
        if (fsfd < 0)
                return fsfd;
        int r = add_lowers(fsfd, layers_dir_fd, chain_ids, nested, n, reterr);
        if (r != 0)
                return r;
        if (inner >= 0) {
                char p[FD_PATH_MAX];
                fd_path(p, inner);
                r = set_string(fsfd, "lowerdir+", p, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "the overlay of the lowest %zu layers", nested);
        }

        _cleanup_close_ int upper = -EBADF, work = -EBADF;
        if (!readonly) {
                r = open_upper_work(container_dir_fd, &upper, &work, reterr);
                if (r < 0)
                        return r;
                char p[FD_PATH_MAX];
                fd_path(p, upper);
                r = set_string(fsfd, "upperdir", p, reterr);
                if (r < 0)
                        return r;
                fd_path(p, work);
                r = set_string(fsfd, "workdir", p, reterr);
                if (r < 0)
                        return r;
                if (flags & MOAT_SNAPSHOT_VOLATILE) {
                        clear_volatile_marker(work);
                        if (fsconfig(fsfd, FSCONFIG_SET_FLAG, "volatile", NULL, 0) < 0)
                                return moat_error_set(reterr, errno, "overlayfs option volatile");
                }
        }

        r = create(fsfd, n, reterr);
        if (r < 0)
                return r;
        _cleanup_close_ int mnt = fsmount(fsfd, FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0);
        if (mnt < 0)
                return moat_error_set(reterr, errno, "cannot make a mount of the overlay");
        return attach(mnt, target_fd, reterr);
}

int moat_snapshot_mount(int layers_dir_fd, const char *const *chain_ids, size_t n,
                        int container_dir_fd, unsigned flags, int target_fd, struct moat_error **reterr)
{
        bool readonly = flags & MOAT_SNAPSHOT_READONLY;
        int r = validate_ids(chain_ids, n, MOAT_SNAPSHOT_MAX_LAYERS, reterr);
        if (r < 0)
                return r;
        if (readonly && n == 1)
                return bind_readonly(layers_dir_fd, chain_ids[0], target_fd, reterr);
        r = mount_fsconfig(layers_dir_fd, chain_ids, n, container_dir_fd, flags, target_fd, reterr);
        if (r <= 0)
                return r;
        return moat_snapshot_mount_legacy(layers_dir_fd, chain_ids, n, container_dir_fd, flags,
                                          target_fd, reterr);
}

static int append(char *buf, size_t size, size_t *len, const char *s)
{
        size_t l = strlen(s);
        if (*len + l + 1 > size)
                return -E2BIG;
        memcpy(buf + *len, s, l + 1);
        *len += l;
        return 0;
}

int moat_snapshot_mount_legacy(int layers_dir_fd, const char *const *chain_ids, size_t n,
                               int container_dir_fd, unsigned flags, int target_fd,
                               struct moat_error **reterr)
{
        bool readonly = flags & MOAT_SNAPSHOT_READONLY;
        int r = validate_ids(chain_ids, n, MOAT_SNAPSHOT_OVL_MAX_STACK, reterr);
        if (r < 0)
                return r;
        if (readonly && n == 1)
                return bind_readonly(layers_dir_fd, chain_ids[0], target_fd, reterr);

        long page = sysconf(_SC_PAGESIZE);
        size_t size = page > 0 ? (size_t) page : 4096;
        _cleanup_free_ char *data = malloc(size);
        int *fds = calloc(n, sizeof(int));
        if (!data || !fds) {
                free(fds);
                return moat_error_set(reterr, ENOMEM, "snapshot mount options");
        }
        for (size_t i = 0; i < n; i++)
                fds[i] = -EBADF;
        _cleanup_close_ int upper = -EBADF, work = -EBADF;

        size_t len = 0;
        data[0] = '\0';
        r = append(data, size, &len, OVERLAY_OPTIONS ",lowerdir=");
        /* The fds stay open until mount(2): older kernels resolve the
         * paths only when the superblock is made. */
        for (size_t i = n; r >= 0 && i-- > 0;) {
                fds[i] = open_layer(layers_dir_fd, chain_ids[i], O_PATH, reterr);
                if (fds[i] < 0) {
                        r = fds[i];
                        goto out;
                }
                char p[FD_PATH_MAX];
                fd_path(p, fds[i]);
                if (i != n - 1)
                        r = append(data, size, &len, ":");
                if (r >= 0)
                        r = append(data, size, &len, p);
        }
        if (r >= 0 && !readonly) {
                r = open_upper_work(container_dir_fd, &upper, &work, reterr);
                if (r < 0)
                        goto out;
                char p[FD_PATH_MAX];
                fd_path(p, upper);
                r = append(data, size, &len, ",upperdir=");
                if (r >= 0)
                        r = append(data, size, &len, p);
                fd_path(p, work);
                if (r >= 0)
                        r = append(data, size, &len, ",workdir=");
                if (r >= 0)
                        r = append(data, size, &len, p);
                if (r >= 0 && (flags & MOAT_SNAPSHOT_VOLATILE)) {
                        clear_volatile_marker(work);
                        r = append(data, size, &len, ",volatile");
                }
        }
        if (r < 0) {
                r = moat_error_setx(reterr, E2BIG,
                                    "%zu layers do not fit in the overlay option string (one page, %zu bytes, "
                                    "even with /proc/self/fd names); without \"lowerdir+\" (Linux 6.8) "
                                    "no more fit in one overlay mount",
                                    n, size);
                goto out;
        }

        char target[FD_PATH_MAX];
        fd_path(target, target_fd);
        if (mount("overlay", target, "overlay", readonly ? MS_RDONLY : 0, data) < 0)
                r = moat_error_set(reterr, errno, "cannot mount the overlay of %zu layers", n);
out:
        fds_close(fds, n);
        return r < 0 ? r : 0;
}

/* ---- removal ------------------------------------------------------------- */

static int remove_entry(int dirfd, const char *name, unsigned depth, struct moat_error **reterr);

/* Empty the directory dirfd (an fd that may be O_PATH). */
static int clear_dir(int dirfd, const char *what, unsigned depth, struct moat_error **reterr)
{
        if (depth > REMOVE_MAX_DEPTH)
                return moat_error_setx(reterr, ELOOP, "%s: directories nested deeper than %d", what,
                                       REMOVE_MAX_DEPTH);
        for (;;) {
                int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "%s: cannot open", what);
                _cleanup_closedir_ DIR *d = fdopendir(fd);
                if (!d) {
                        safe_close(fd);
                        return moat_error_set(reterr, errno, "%s: cannot read", what);
                }
                bool removed = false;
                struct dirent *de;
                errno = 0;
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        int r = remove_entry(dirfd, de->d_name, depth + 1, reterr);
                        if (r < 0)
                                return moat_error_wrap(reterr, r, "%s", what);
                        removed = true;
                        errno = 0;
                }
                if (errno != 0)
                        return moat_error_set(reterr, errno, "%s: cannot read", what);
                if (!removed)
                        return 0;
        }
}

static int remove_entry(int dirfd, const char *name, unsigned depth, struct moat_error **reterr)
{
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0;
                return moat_error_set(reterr, errno, "\"%s\": cannot stat", name);
        }
        if (S_ISDIR(st.st_mode)) {
                _cleanup_close_ int fd = openat2_beneath(dirfd, name, O_PATH | O_DIRECTORY);
                if (fd < 0)
                        return moat_error_set(reterr, fd, "\"%s\": cannot open", name);
                char what[NAME_MAX + 3];
                snprintf(what, sizeof(what), "\"%s\"", name);
                int r = clear_dir(fd, what, depth, reterr);
                if (r < 0)
                        return r;
                if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                        return moat_error_set(reterr, errno, "\"%s\": cannot remove", name);
                return 0;
        }
        if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
                return moat_error_set(reterr, errno, "\"%s\": cannot remove", name);
        return 0;
}

int moat_snapshot_remove(int container_dir_fd, struct moat_error **reterr)
{
        static const char *const names[] = { "upper", "work" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                int r = remove_entry(container_dir_fd, names[i], 0, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "snapshot removal");
        }
        return 0;
}

/* ---- copy fallback ------------------------------------------------------- */

struct copy_ctx {
        const char *layer;
        char path[COPY_PATH_MAX];
        size_t len;
};

static int copy_fail(struct copy_ctx *c, struct moat_error **reterr, int r, const char *what)
{
        return moat_error_set(reterr, r, "layer \"%s\": \"/%s\": %s", c->layer, c->path, what);
}

static bool is_opaque(int fd)
{
        char v[4];
        ssize_t k = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));
        return k == 1 && v[0] == 'y';
}

static int copy_xattrs(struct copy_ctx *c, int src, int dst, struct moat_error **reterr)
{
        ssize_t k = flistxattr(src, NULL, 0);
        if (k < 0)
                return (errno == ENOTSUP) ? 0 : copy_fail(c, reterr, errno, "cannot list xattrs");
        if (k == 0)
                return 0;
        if (k > XATTR_LIST_MAX_BYTES)
                return copy_fail(c, reterr, E2BIG, "xattr list too long");
        _cleanup_free_ char *list = malloc((size_t) k);
        _cleanup_free_ char *value = malloc(XATTR_VALUE_MAX_BYTES);
        if (!list || !value)
                return copy_fail(c, reterr, ENOMEM, "xattrs");
        k = flistxattr(src, list, (size_t) k);
        if (k < 0)
                return copy_fail(c, reterr, errno, "cannot list xattrs");
        for (const char *name = list; name < list + k; name += strlen(name) + 1) {
                const char *set_name = name;
                char unescaped[XATTR_NAME_MAX + 1];
                /* overlayfs state is not copied; escaped names
                 * (trusted.overlay.overlay.X) are unescaped as overlayfs
                 * shows them (trusted.overlay.X). */
                if (startswith(name, "trusted.overlay.")) {
                        if (!startswith(name, "trusted.overlay.overlay."))
                                continue;
                        snprintf(unescaped, sizeof(unescaped), "trusted.%s",
                                 name + strlen("trusted.overlay."));
                        set_name = unescaped;
                }
                ssize_t vlen = fgetxattr(src, name, value, XATTR_VALUE_MAX_BYTES);
                if (vlen < 0)
                        return copy_fail(c, reterr, errno, "cannot read an xattr");
                if (fsetxattr(dst, set_name, value, (size_t) vlen, 0) < 0 && errno != ENOTSUP)
                        return moat_error_set(reterr, errno, "layer \"%s\": \"/%s\": cannot set xattr %s",
                                              c->layer, c->path, set_name);
        }
        return 0;
}

/* Ownership, mode, xattrs, times: in this order (chown clears setuid and
 * security.capability). */
static int copy_meta(struct copy_ctx *c, int src, int dst, const struct stat *st,
                     struct moat_error **reterr)
{
        if (fchown(dst, st->st_uid, st->st_gid) < 0)
                return copy_fail(c, reterr, errno, "cannot set the owner");
        if (fchmod(dst, st->st_mode & 07777) < 0)
                return copy_fail(c, reterr, errno, "cannot set the mode");
        int r = copy_xattrs(c, src, dst, reterr);
        if (r < 0)
                return r;
        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (futimens(dst, ts) < 0)
                return copy_fail(c, reterr, errno, "cannot set the times");
        return 0;
}

static int copy_data(struct copy_ctx *c, int src, int dst, struct moat_error **reterr)
{
        bool use_cfr = true;
        for (;;) {
                ssize_t k;
                if (use_cfr) {
                        k = copy_file_range(src, NULL, dst, NULL, 1 << 30, 0);
                        if (k < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                                      errno == EOPNOTSUPP)) {
                                use_cfr = false;
                                continue;
                        }
                } else {
                        char buf[65536];
                        k = read(src, buf, sizeof(buf));
                        for (ssize_t done = 0; k > 0 && done < k;) {
                                ssize_t w = write(dst, buf + done, (size_t) (k - done));
                                if (w < 0) {
                                        if (errno == EINTR)
                                                continue;
                                        return copy_fail(c, reterr, errno, "cannot write");
                                }
                                done += w;
                        }
                }
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return copy_fail(c, reterr, errno, "cannot copy");
                }
                if (k == 0)
                        return 0;
        }
}

static int copy_leaf(struct copy_ctx *c, int src_dir, int dst_dir, const char *name,
                     const struct stat *st, struct moat_error **reterr)
{
        if (S_ISREG(st->st_mode)) {
                _cleanup_close_ int src = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (src < 0)
                        return copy_fail(c, reterr, errno, "cannot open");
                _cleanup_close_ int dst = openat(dst_dir, name,
                                                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (dst < 0)
                        return copy_fail(c, reterr, errno, "cannot create");
                int r = copy_data(c, src, dst, reterr);
                if (r < 0)
                        return r;
                return copy_meta(c, src, dst, st, reterr);
        }

        struct timespec ts[2] = { st->st_atim, st->st_mtim };
        if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t k = readlinkat(src_dir, name, target, sizeof(target));
                if (k < 0)
                        return copy_fail(c, reterr, errno, "cannot read the symlink");
                if ((size_t) k >= sizeof(target))
                        return copy_fail(c, reterr, ENAMETOOLONG, "symlink target too long");
                target[k] = '\0';
                if (symlinkat(target, dst_dir, name) < 0)
                        return copy_fail(c, reterr, errno, "cannot create the symlink");
                if (fchownat(dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return copy_fail(c, reterr, errno, "cannot set the owner");
        } else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) || S_ISFIFO(st->st_mode) ||
                   S_ISSOCK(st->st_mode)) {
                if (mknodat(dst_dir, name, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
                        return copy_fail(c, reterr, errno, "cannot create the node");
                if (fchownat(dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return copy_fail(c, reterr, errno, "cannot set the owner");
                if (fchmodat(dst_dir, name, st->st_mode & 07777, 0) < 0)
                        return copy_fail(c, reterr, errno, "cannot set the mode");
        } else {
                return copy_fail(c, reterr, EINVAL, "unsupported file type");
        }
        if (utimensat(dst_dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return copy_fail(c, reterr, errno, "cannot set the times");
        return 0;
}

static int apply_dir(struct copy_ctx *c, int src_dir, int dst_dir, unsigned depth,
                     struct moat_error **reterr);

static int apply_entry(struct copy_ctx *c, int src_dir, int dst_dir, const char *name,
                       unsigned depth, struct moat_error **reterr)
{
        struct stat st, dst_st;
        if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return copy_fail(c, reterr, errno, "cannot stat");
        bool exists = fstatat(dst_dir, name, &dst_st, AT_SYMLINK_NOFOLLOW) == 0;
        if (!exists && errno != ENOENT)
                return copy_fail(c, reterr, errno, "cannot stat in the destination");

        /* A whiteout deletes what the layers below put here. */
        if (S_ISCHR(st.st_mode) && st.st_rdev == 0)
                return exists ? remove_entry(dst_dir, name, 0, reterr) : 0;

        if (!S_ISDIR(st.st_mode)) {
                if (exists) {
                        int r = remove_entry(dst_dir, name, 0, reterr);
                        if (r < 0)
                                return r;
                }
                return copy_leaf(c, src_dir, dst_dir, name, &st, reterr);
        }

        if (depth >= MOAT_SNAPSHOT_MAX_DEPTH)
                return copy_fail(c, reterr, ELOOP, "directories nested too deep");
        _cleanup_close_ int src = openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (src < 0)
                return copy_fail(c, reterr, errno, "cannot open");
        if (exists && !S_ISDIR(dst_st.st_mode)) {
                int r = remove_entry(dst_dir, name, 0, reterr);
                if (r < 0)
                        return r;
                exists = false;
        }
        if (!exists && mkdirat(dst_dir, name, 0700) < 0)
                return copy_fail(c, reterr, errno, "cannot create the directory");
        _cleanup_close_ int dst = openat2_beneath(dst_dir, name, O_RDONLY | O_DIRECTORY);
        if (dst < 0)
                return copy_fail(c, reterr, -dst, "cannot open in the destination");
        if (exists && is_opaque(src)) {
                int r = clear_dir(dst, c->path, 0, reterr);
                if (r < 0)
                        return r;
        }
        int r = apply_dir(c, src, dst, depth + 1, reterr);
        if (r < 0)
                return r;
        return copy_meta(c, src, dst, &st, reterr);
}

static int apply_dir(struct copy_ctx *c, int src_dir, int dst_dir, unsigned depth,
                     struct moat_error **reterr)
{
        int fd = openat(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return copy_fail(c, reterr, errno, "cannot open");
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return copy_fail(c, reterr, errno, "cannot read");
        }
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return copy_fail(c, reterr, errno, "cannot read");
                        return 0;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                size_t saved = c->len;
                size_t l = strlen(de->d_name);
                if (saved + l + 2 > sizeof(c->path))
                        return copy_fail(c, reterr, ENAMETOOLONG, "path too long");
                if (saved > 0)
                        c->path[c->len++] = '/';
                memcpy(c->path + c->len, de->d_name, l + 1);
                c->len += l;
                int r = apply_entry(c, src_dir, dst_dir, de->d_name, depth, reterr);
                c->len = saved;
                c->path[saved] = '\0';
                if (r < 0)
                        return r;
        }
}

int moat_snapshot_copy(int layers_dir_fd, const char *const *chain_ids, size_t n, int dest_dir_fd,
                       struct moat_error **reterr)
{
        int r = validate_ids(chain_ids, n, MOAT_SNAPSHOT_MAX_COPY_LAYERS, reterr);
        if (r < 0)
                return r;
        _cleanup_close_ int dst = openat(dest_dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dst < 0)
                return moat_error_set(reterr, errno, "snapshot copy: cannot open the destination");
        _cleanup_free_ struct copy_ctx *c = calloc(1, sizeof(*c));
        if (!c)
                return moat_error_set(reterr, ENOMEM, "snapshot copy");
        for (size_t i = 0; i < n; i++) {
                /* The layer's root: its opaque mark is ignored, as overlayfs
                 * does; its metadata is not the container's root's. */
                _cleanup_close_ int src = open_layer(layers_dir_fd, chain_ids[i], O_RDONLY, reterr);
                if (src < 0)
                        return src;
                c->layer = chain_ids[i];
                c->len = 0;
                c->path[0] = '\0';
                r = apply_dir(c, src, dst, 0, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- finding the read-only mounts of a stack -------------------------------- */

int moat_snapshot_mounted_stack(const char *path, int layers_fd, char *const *ids, size_t n_ids, int single,
                                ssize_t *ret_which, struct moat_error **reterr)
{
        struct statx stx;
        struct statfs sfs;

        *ret_which = -1;
        if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_INO, &stx) < 0)
                return moat_error_set(reterr, errno, "mount point %s", path);
        if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
                return moat_error_setx(reterr, -EOPNOTSUPP, "mount point %s: the kernel does not say whether "
                                       "it is a mount point", path);
        if (!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
                return 0;
        if (statfs(path, &sfs) < 0)
                return moat_error_set(reterr, errno, "mount point %s", path);
        if (!(sfs.f_flags & ST_RDONLY))
                return 1;
        bool overlay = sfs.f_type == OVERLAYFS_SUPER_MAGIC;
        dev_t dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);

        for (size_t i = 0; i < n_ids; i++) {
                struct stat st;
                if (fstatat(layers_fd, ids[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                if (st.st_ino != stx.stx_ino)
                        continue;
                if (overlay ? single != 1 : single != 0 && st.st_dev == dev) {
                        *ret_which = (ssize_t) i;
                        break;
                }
        }
        return 1;
}

/* /proc/self/mountinfo can be long on a busy host; this bounds the read. */
#define MOUNTINFO_MAX (64u * 1024u * 1024u)

/* Undo mountinfo's octal escapes (space, tab, newline, backslash) in place. */
static void unescape_octal(char *s)
{
        char *w = s;
        for (const char *p = s; *p;) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
                    p[3] <= '7') {
                        *w++ = (char) (((p[1] - '0') << 6) | ((p[2] - '0') << 3) | (p[3] - '0'));
                        p += 4;
                } else
                        *w++ = *p++;
        }
        *w = '\0';
}

int moat_snapshot_mount_point(int layers_fd, const char *top, bool single, char **ret_path, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        char *ids[1] = { (char *) top };

        int r = read_full_file_at(AT_FDCWD, "/proc/self/mountinfo", MOUNTINFO_MAX, &buf, &size);
        if (r < 0)
                return moat_error_set(reterr, r, "read /proc/self/mountinfo");
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                /* id parent major:minor root mount-point options ... */
                char *f[6] = {}, *fsave = NULL, *tok = strtok_r(line, " ", &fsave);
                for (size_t i = 0; tok && i < ELEMENTSOF(f); i++, tok = strtok_r(NULL, " ", &fsave))
                        f[i] = tok;
                if (!f[5] || !(startswith(f[5], "ro,") || streq(f[5], "ro")))
                        continue;
                unescape_octal(f[4]);
                ssize_t which;
                _cleanup_error_ struct moat_error *ignored = NULL;
                /* a mount point that vanished or is hidden is not this one */
                if (moat_snapshot_mounted_stack(f[4], layers_fd, ids, 1, single, &which, &ignored) > 0 && which == 0) {
                        *ret_path = strdup(f[4]);
                        return *ret_path ? 1 : moat_error_set(reterr, -ENOMEM, "mount point");
                }
        }
        return 0;
}
