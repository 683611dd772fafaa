/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Streaming, contained unpacking of one image layer (see layer.h).
 *
 * One pass over the input, two chained libarchive readers:
 *
 *   in_fd --read_compressed()--> A: format "raw", filters gzip/zstd/none
 *          (hashes the bytes as read: the compressed digest)
 *   A's single raw entry --read_uncompressed()--> B: format tar, filter none
 *          (hashes the decompressed bytes: the DiffID; counts max_bytes)
 *
 * libarchive never hands out the uncompressed tar stream of a tar reader,
 * so A does the decompression only and B parses the tar out of A's output.
 * After B's end of archive, whatever is left in A (tar padding) and in
 * in_fd (trailing bytes) is drained into the hashes, so both digests are
 * those of the whole blob and the whole tar.
 *
 * Containment (image.md §4, CVE-2021-29136, CVE-2018-15664, CVE-2021-32760,
 * CVE-2020-27833): names are cleaned lexically ("./", leading "/", "."
 * dropped, ".." popped; a ".." that would leave the tree is refused); the
 * parent of every entry is opened with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS) relative to the tree, so symlinks already in the
 * tree (absolute or chains of "..") resolve inside it; the leaf is then
 * created relative to that parent fd after unlinking whatever was there,
 * never following a symlink at the leaf (O_EXCL|O_NOFOLLOW, *at calls with
 * AT_SYMLINK_NOFOLLOW). An entry naming the tree itself never changes it.
 * Hardlink targets are resolved inside the tree too and must not be
 * directories. Device nodes are skipped (nothing created) unless
 * allow_devices: an unprivileged or user-namespaced unpack, as Docker's
 * rootless mode does, must still succeed. xattrs in trusted.overlay.* are
 * dropped (a layer must not forge overlayfs whiteouts, redirects or
 * metacopy); xattrs on symlinks are not set (no *at call reaches a symlink
 * itself); ENOTSUP from the filesystem is ignored.
 *
 * Metadata after content: chown (keep_ownership), then chmod (chown clears
 * setuid), then xattrs (chown clears security.capability), then times;
 * directories' times are applied at the end, after their contents.
 */

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "image/layer.h"

#define LAYER_PATH_MAX 4096
#define LAYER_DEFAULT_MAX_ENTRIES INT64_C(1000000)
#define LAYER_DEFAULT_MAX_BYTES (INT64_C(64) << 30)
#define LAYER_BUF_SIZE (128 * 1024)
#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"

struct dir_time {
        char *path;
        struct timespec ts[2];
};

struct unpack {
        int in_fd;
        int dir_fd;
        struct archive *raw;  /* A: decompression only */
        struct sha256_ctx compressed;
        struct sha256_ctx diff;
        uint64_t compressed_size;
        uint64_t uncompressed_size;
        uint64_t max_bytes;
        uint64_t max_entries;
        bool allow_devices;
        bool keep_ownership;
        int cb_error;        /* negative errno a callback failed with */
        char cb_msg[256];
        struct dir_time *dirs;
        size_t n_dirs;
        uint8_t inbuf[LAYER_BUF_SIZE];
        uint8_t outbuf[LAYER_BUF_SIZE];
};

static void archive_read_freep(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}
#define _cleanup_archive_ _cleanup_(archive_read_freep)

static ssize_t read_compressed(struct archive *a, void *userdata, const void **buf)
{
        struct unpack *u = userdata;
        ssize_t n;

        do
                n = read(u->in_fd, u->inbuf, sizeof(u->inbuf));
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                u->cb_error = negative_errno();
                snprintf(u->cb_msg, sizeof(u->cb_msg), "reading layer stream: %s", strerror(-u->cb_error));
                archive_set_error(a, -u->cb_error, "%s", u->cb_msg);
                return -1;
        }
        sha256_update(&u->compressed, (size_t) n, u->inbuf);
        u->compressed_size += (uint64_t) n;
        *buf = u->inbuf;
        return n;
}

/* Uncompressed bytes out of A, counted against max_bytes and hashed. */
static ssize_t pull_uncompressed(struct unpack *u)
{
        la_ssize_t n = archive_read_data(u->raw, u->outbuf, sizeof(u->outbuf));
        if (n < 0) {
                int e = archive_errno(u->raw);
                u->cb_error = e > 0 ? -e : -EBADMSG;
                snprintf(u->cb_msg, sizeof(u->cb_msg), "decompressing layer: %s",
                         archive_error_string(u->raw) ?: "unknown error");
                return -1;
        }
        u->uncompressed_size += (uint64_t) n;
        if (u->uncompressed_size > u->max_bytes) {
                u->cb_error = -EFBIG;
                snprintf(u->cb_msg, sizeof(u->cb_msg), "layer is larger than %llu bytes uncompressed",
                         (unsigned long long) u->max_bytes);
                return -1;
        }
        sha256_update(&u->diff, (size_t) n, u->outbuf);
        return n;
}

static ssize_t read_uncompressed(struct archive *a, void *userdata, const void **buf)
{
        struct unpack *u = userdata;
        ssize_t n = pull_uncompressed(u);
        if (n < 0) {
                archive_set_error(a, -u->cb_error, "%s", u->cb_msg);
                return -1;
        }
        *buf = u->outbuf;
        return n;
}

static int archive_fail(struct unpack *u, struct archive *a, struct moat_error **reterr, const char *what)
{
        if (u->cb_error < 0)
                return moat_error_setx(reterr, u->cb_error, "%s", u->cb_msg);
        int e = archive_errno(a);
        return moat_error_setx(reterr, e > 0 ? -e : -EBADMSG, "%s: %s", what,
                               archive_error_string(a) ?: "unknown libarchive error");
}

static int openat2_in_root(int root, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        long r = syscall(SYS_openat2, root, path, &how, sizeof(how));
        return r < 0 ? negative_errno() : (int) r;
}

/*
 * Lexical clean-up of an archive name into "a/b/c" (no leading "/", no
 * ".", no "..", no empty components; "" is the tree itself). Refuses a ".."
 * that would climb out of the tree. *ret is a new string.
 */
static int clean_path(const char *entry, const char *name, const char *what, char **ret,
                      struct moat_error **reterr)
{
        size_t len = strlen(name);
        if (len > LAYER_PATH_MAX)
                return moat_error_setx(reterr, -ENAMETOOLONG, "layer entry \"%.64s...\": %s longer than %d bytes",
                                       entry, what, LAYER_PATH_MAX);
        _cleanup_free_ char *out = malloc(len + 1);
        if (!out)
                return moat_error_set(reterr, -ENOMEM, "layer entry \"%s\"", entry);
        size_t o = 0;
        const char *p = name;
        while (*p) {
                const char *s = strchrnul(p, '/');
                size_t n = (size_t) (s - p);
                if (n == 0 || (n == 1 && p[0] == '.')) {
                        /* empty or "." */
                } else if (n == 2 && p[0] == '.' && p[1] == '.') {
                        if (o == 0)
                                return moat_error_setx(reterr, -EXDEV, "layer entry \"%s\": %s \"%s\" leaves the layer",
                                                       entry, what, name);
                        while (o > 0 && out[o - 1] != '/')
                                o--;
                        if (o > 0)
                                o--;  /* the separator */
                } else {
                        if (o > 0)
                                out[o++] = '/';
                        memcpy(out + o, p, n);
                        o += n;
                }
                p = *s ? s + 1 : s;
        }
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

/*
 * Open the directory at path (cleaned) inside the tree, creating missing
 * components with mode 0755 (each one relative to the fd of its resolved
 * parent). Returns an O_PATH fd.
 */
static int open_dir_in_tree(int root, char *path, int *ret)
{
        int fd = openat2_in_root(root, *path ? path : ".", O_PATH | O_DIRECTORY);
        if (fd >= 0) {
                *ret = fd;
                return 0;
        }
        if (fd != -ENOENT)
                return fd;

        _cleanup_close_ int cur = openat2_in_root(root, ".", O_PATH | O_DIRECTORY);
        if (cur < 0)
                return cur;
        char *p = path;
        for (;;) {
                char *s = strchrnul(p, '/');
                char c = *s;
                *s = '\0';
                fd = openat2_in_root(root, path, O_PATH | O_DIRECTORY);
                if (fd == -ENOENT) {
                        if (mkdirat(cur, p, 0755) < 0 && errno != EEXIST) {
                                int r = negative_errno();
                                *s = c;
                                return r;
                        }
                        fd = openat2_in_root(root, path, O_PATH | O_DIRECTORY);
                }
                *s = c;
                if (fd < 0)
                        return fd;
                cur = safe_close(cur);
                cur = fd;
                if (!c)
                        break;
                p = s + 1;
        }
        *ret = TAKE_FD(cur);
        return 0;
}

/* Remove name in dfd, recursively if it is a directory; never follows symlinks. */
static int rm_rf_at(int dfd, const char *name, unsigned depth)
{
        if (unlinkat(dfd, name, 0) >= 0)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return errno == ENOENT ? 0 : negative_errno();
        if (depth > LAYER_PATH_MAX / 2)
                return -ELOOP;

        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();
                close(fd);
                return r;
        }
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                int r = rm_rf_at(dirfd(d), de->d_name, depth + 1);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return negative_errno();
        return RET_NERRNO(unlinkat(dfd, name, AT_REMOVEDIR));
}

/* Clear the place of leaf for a new entry. A directory stays (merge) when
 * the new entry is a directory too; *ret_merge says so. */
static int clear_leaf(int parent, const char *leaf, bool want_dir, bool *ret_merge)
{
        struct stat st;

        *ret_merge = false;
        if (fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (S_ISDIR(st.st_mode)) {
                if (want_dir) {
                        *ret_merge = true;
                        return 0;
                }
                return rm_rf_at(parent, leaf, 0);
        }
        return RET_NERRNO(unlinkat(parent, leaf, 0));
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
                off += n;
        }
        return 0;
}

static int write_content(struct unpack *u, struct archive *a, struct archive_entry *e, int fd, const char *entry,
                         struct moat_error **reterr)
{
        for (;;) {
                const void *buf;
                size_t size;
                la_int64_t off;
                int ar = archive_read_data_block(a, &buf, &size, &off);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN) {
                        int r = archive_fail(u, a, reterr, "reading content");
                        return moat_error_wrap(reterr, r, "layer entry \"%s\"", entry);
                }
                if (off < 0)
                        return moat_error_setx(reterr, -EBADMSG, "layer entry \"%s\": negative data offset", entry);
                int r = pwrite_all(fd, buf, size, (off_t) off);
                if (r < 0)
                        return moat_error_set(reterr, r, "layer entry \"%s\": writing content", entry);
        }
        if (archive_entry_size_is_set(e) && archive_entry_size(e) >= 0 &&
            ftruncate(fd, (off_t) archive_entry_size(e)) < 0)
                return moat_error_set(reterr, -errno, "layer entry \"%s\": setting size", entry);
        return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2])
{
        ts[1] = (struct timespec) { .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) };
        if (archive_entry_atime_is_set(e))
                ts[0] = (struct timespec) { .tv_sec = archive_entry_atime(e), .tv_nsec = archive_entry_atime_nsec(e) };
        else
                ts[0] = ts[1];
}

static int set_xattrs(struct archive_entry *e, int fd, bool path_fd, const char *entry, struct moat_error **reterr)
{
        const char *name;
        const void *value;
        size_t size;
        char proc[64];

        if (path_fd)
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!name || startswith(name, "trusted.overlay."))
                        continue;
                int r = path_fd ? setxattr(proc, name, value, size, 0) : fsetxattr(fd, name, value, size, 0);
                if (r < 0 && errno != ENOTSUP)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": setting xattr \"%s\"", entry, name);
        }
        return 0;
}

/* chown, chmod, xattrs, times, in that order. fd: the open regular file or -EBADF. */
static int apply_metadata(struct unpack *u, struct archive_entry *e, int parent, const char *leaf, mode_t type,
                          int fd, const char *entry, struct moat_error **reterr)
{
        if (u->keep_ownership &&
            fchownat(parent, leaf, (uid_t) archive_entry_uid(e), (gid_t) archive_entry_gid(e), AT_SYMLINK_NOFOLLOW) < 0)
                return moat_error_set(reterr, -errno, "layer entry \"%s\": chown to %lld:%lld", entry,
                                      (long long) archive_entry_uid(e), (long long) archive_entry_gid(e));

        if (type != AE_IFLNK) {
                mode_t mode = archive_entry_perm(e) & 07777;
                int r = fd >= 0 ? fchmod(fd, mode) : fchmodat(parent, leaf, mode, AT_SYMLINK_NOFOLLOW);
                if (r < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": chmod %04o", entry, mode);

                if (archive_entry_xattr_count(e) > 0) {
                        if (fd >= 0)
                                r = set_xattrs(e, fd, false, entry, reterr);
                        else {
                                _cleanup_close_ int pfd = openat(parent, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
                                if (pfd < 0)
                                        return moat_error_set(reterr, -errno, "layer entry \"%s\": reopening", entry);
                                r = set_xattrs(e, pfd, true, entry, reterr);
                        }
                        if (r < 0)
                                return r;
                }
        }

        struct timespec ts[2];
        entry_times(e, ts);
        if (type == AE_IFDIR) {
                /* after the directory's contents: see unpack_finish_dirs() */
                return 0;
        }
        if (utimensat(parent, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return moat_error_set(reterr, -errno, "layer entry \"%s\": setting times", entry);
        return 0;
}

static int remember_dir(struct unpack *u, const char *path, struct archive_entry *e)
{
        struct dir_time *n = reallocarray(u->dirs, u->n_dirs + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        u->dirs = n;
        char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        u->dirs[u->n_dirs].path = p;
        entry_times(e, u->dirs[u->n_dirs].ts);
        u->n_dirs++;
        return 0;
}

static int finish_dirs(struct unpack *u, struct moat_error **reterr)
{
        for (size_t i = u->n_dirs; i > 0; i--) {
                struct dir_time *d = &u->dirs[i - 1];
                char *slash = strrchr(d->path, '/');
                const char *leaf = slash ? slash + 1 : d->path;
                if (slash)
                        *slash = '\0';
                _cleanup_close_ int parent = openat2_in_root(u->dir_fd, slash ? d->path : ".", O_PATH | O_DIRECTORY);
                if (slash)
                        *slash = '/';
                if (parent == -ENOENT || parent == -ENOTDIR)
                        continue;  /* removed or replaced by a later entry */
                if (parent < 0)
                        return moat_error_set(reterr, parent, "layer directory \"%s\": opening parent", d->path);
                if (utimensat(parent, leaf, d->ts, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
                        return moat_error_set(reterr, -errno, "layer directory \"%s\": setting times", d->path);
        }
        return 0;
}

static int unpack_whiteout(int parent, const char *leaf, const char *entry, struct moat_error **reterr)
{
        if (streq(leaf, WHITEOUT_OPAQUE)) {
                _cleanup_close_ int fd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": opening directory", entry);
                if (fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": marking directory opaque", entry);
                return 0;
        }

        const char *name = leaf + strlen(WHITEOUT_PREFIX);
        if (!*name || streq(name, ".") || streq(name, "..") || startswith(name, WHITEOUT_PREFIX))
                return moat_error_setx(reterr, -EINVAL, "layer entry \"%s\": invalid whiteout name \"%s\"", entry, name);
        bool merge;
        int r = clear_leaf(parent, name, false, &merge);
        if (r < 0)
                return moat_error_set(reterr, r, "layer entry \"%s\": removing \"%s\"", entry, name);
        if (mknodat(parent, name, S_IFCHR | 0000, makedev(0, 0)) < 0)
                return moat_error_set(reterr, -errno, "layer entry \"%s\": creating whiteout \"%s\"", entry, name);
        return 0;
}

static int unpack_hardlink(struct unpack *u, struct archive_entry *e, int parent, const char *leaf,
                           const char *entry, struct moat_error **reterr)
{
        _cleanup_free_ char *target = NULL;
        int r = clean_path(entry, archive_entry_hardlink(e), "hardlink target", &target, reterr);
        if (r < 0)
                return r;
        if (!*target)
                return moat_error_setx(reterr, -EINVAL, "layer entry \"%s\": hardlink to the layer root", entry);

        _cleanup_close_ int fd = openat2_in_root(u->dir_fd, target, O_PATH | O_NOFOLLOW);
        if (fd < 0)
                return moat_error_set(reterr, fd, "layer entry \"%s\": hardlink target \"%s\" is not in the layer",
                                      entry, target);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return moat_error_set(reterr, -errno, "layer entry \"%s\": hardlink target \"%s\"", entry, target);
        if (S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -EPERM, "layer entry \"%s\": hardlink target \"%s\" is a directory",
                                       entry, target);

        bool merge;
        r = clear_leaf(parent, leaf, false, &merge);
        if (r < 0)
                return moat_error_set(reterr, r, "layer entry \"%s\": removing the old entry", entry);
        if (linkat(fd, "", parent, leaf, AT_EMPTY_PATH) < 0) {
                /* without CAP_DAC_READ_SEARCH: through the fd's proc link */
                char proc[64];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                if (errno != ENOENT && errno != EPERM)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": linking to \"%s\"", entry, target);
                if (linkat(AT_FDCWD, proc, parent, leaf, AT_SYMLINK_FOLLOW) < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": linking to \"%s\"", entry, target);
        }
        return 0;
}

static int unpack_entry(struct unpack *u, struct archive *a, struct archive_entry *e, struct moat_error **reterr)
{
        const char *entry = archive_entry_pathname(e);
        if (!entry)
                entry = archive_entry_pathname_utf8(e);
        if (!entry)
                return moat_error_setx(reterr, -EBADMSG, "layer entry without a name");

        _cleanup_free_ char *path = NULL;
        int r = clean_path(entry, entry, "path", &path, reterr);
        if (r < 0)
                return r;

        mode_t type = archive_entry_filetype(e);
        bool hardlink = archive_entry_hardlink(e) != NULL;

        if (!*path) {
                /* The tree itself: never change its type (CVE-2021-29136). */
                if (type == AE_IFDIR && !hardlink)
                        return 0;
                return moat_error_setx(reterr, -EPERM, "layer entry \"%s\": would replace the layer root", entry);
        }

        char *slash = strrchr(path, '/');
        const char *leaf = slash ? slash + 1 : path;
        /* A whiteout name may only be a leaf (".wh.../x" is refused). */
        for (const char *p = path; p < leaf; p = strchr(p, '/') + 1)
                if (startswith(p, WHITEOUT_PREFIX))
                        return moat_error_setx(reterr, -EINVAL, "layer entry \"%s\": whiteout name used as a directory",
                                               entry);

        if (type != AE_IFDIR && type != AE_IFREG && type != AE_IFLNK && type != AE_IFIFO && type != AE_IFCHR &&
            type != AE_IFBLK && !hardlink)
                return moat_error_setx(reterr, -EBADMSG, "layer entry \"%s\": unsupported file type 0%o", entry,
                                       (unsigned) type);
        if ((type == AE_IFCHR || type == AE_IFBLK) && !hardlink && !u->allow_devices)
                return 0;  /* skipped, see the design comment */

        _cleanup_close_ int parent = -EBADF;
        if (slash)
                *slash = '\0';
        r = open_dir_in_tree(u->dir_fd, slash ? path : (char[]) { "" }, &parent);
        if (slash)
                *slash = '/';
        if (r < 0)
                return moat_error_set(reterr, r, "layer entry \"%s\": opening its directory in the layer", entry);

        if (startswith(leaf, WHITEOUT_PREFIX))
                return unpack_whiteout(parent, leaf, entry, reterr);
        if (hardlink)
                return unpack_hardlink(u, e, parent, leaf, entry, reterr);

        bool merge;
        r = clear_leaf(parent, leaf, type == AE_IFDIR, &merge);
        if (r < 0)
                return moat_error_set(reterr, r, "layer entry \"%s\": removing the old entry", entry);

        _cleanup_close_ int fd = -EBADF;
        switch (type) {
        case AE_IFREG:
                fd = openat(parent, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                if (fd < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": creating file", entry);
                r = write_content(u, a, e, fd, entry, reterr);
                if (r < 0)
                        return r;
                break;
        case AE_IFDIR:
                if (!merge && mkdirat(parent, leaf, 0700) < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": creating directory", entry);
                r = remember_dir(u, path, e);
                if (r < 0)
                        return moat_error_set(reterr, r, "layer entry \"%s\"", entry);
                break;
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(e);
                if (!target)
                        target = archive_entry_symlink_utf8(e);
                if (strempty(target) || strlen(target) > LAYER_PATH_MAX)
                        return moat_error_setx(reterr, -EBADMSG, "layer entry \"%s\": symlink target empty or too long",
                                               entry);
                if (symlinkat(target, parent, leaf) < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": creating symlink", entry);
                break;
        }
        case AE_IFIFO:
                if (mknodat(parent, leaf, S_IFIFO | 0600, 0) < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": creating fifo", entry);
                break;
        case AE_IFCHR:
        case AE_IFBLK: {
                dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
                if (major(dev) != archive_entry_rdevmajor(e) || minor(dev) != archive_entry_rdevminor(e))
                        return moat_error_setx(reterr, -EBADMSG, "layer entry \"%s\": device number out of range", entry);
                if (mknodat(parent, leaf, (type == AE_IFCHR ? S_IFCHR : S_IFBLK) | 0600, dev) < 0)
                        return moat_error_set(reterr, -errno, "layer entry \"%s\": creating device node", entry);
                break;
        }
        }

        return apply_metadata(u, e, parent, leaf, type, fd, entry, reterr);
}

static void digest_string(struct sha256_ctx *ctx, char out[80])
{
        uint8_t d[SHA256_DIGEST_SIZE];
        sha256_digest(ctx, sizeof(d), d);
        int o = snprintf(out, 80, "sha256:");
        for (size_t i = 0; i < sizeof(d); i++)
                o += snprintf(out + o, (size_t) (80 - o), "%02x", d[i]);
}

static void unpack_free(struct unpack *u)
{
        if (!u)
                return;
        if (u->raw)
                archive_read_free(u->raw);
        for (size_t i = 0; i < u->n_dirs; i++)
                free(u->dirs[i].path);
        free(u->dirs);
        free(u);
}
DEFINE_CLEANUP_FUNC(struct unpack *, unpack_free)

int moat_layer_unpack(int in_fd, int dir_fd, const struct moat_layer_options *opts, struct moat_layer_result *ret,
                      struct moat_error **reterr)
{
        _cleanup_(unpack_freep) struct unpack *u = calloc(1, sizeof(*u));
        if (!u)
                return moat_error_set(reterr, -ENOMEM, "unpacking layer");
        u->in_fd = in_fd;
        u->dir_fd = dir_fd;
        u->max_entries = opts && opts->max_entries > 0 ? (uint64_t) opts->max_entries : LAYER_DEFAULT_MAX_ENTRIES;
        u->max_bytes = opts && opts->max_bytes > 0 ? (uint64_t) opts->max_bytes : LAYER_DEFAULT_MAX_BYTES;
        u->allow_devices = opts && opts->allow_devices;
        u->keep_ownership = opts && opts->keep_ownership;
        sha256_init(&u->compressed);
        sha256_init(&u->diff);

        struct stat st;
        if (fstat(dir_fd, &st) < 0)
                return moat_error_set(reterr, -errno, "layer directory");
        if (!S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -ENOTDIR, "layer directory: not a directory");

        /* A: decompression only */
        u->raw = archive_read_new();
        if (!u->raw)
                return moat_error_set(reterr, -ENOMEM, "unpacking layer");
        if (archive_read_support_filter_gzip(u->raw) != ARCHIVE_OK ||
            archive_read_support_filter_zstd(u->raw) < ARCHIVE_WARN ||
            archive_read_support_filter_none(u->raw) != ARCHIVE_OK ||
            archive_read_support_format_raw(u->raw) != ARCHIVE_OK)
                return archive_fail(u, u->raw, reterr, "setting up the layer decompressor");
        if (archive_read_open(u->raw, u, NULL, read_compressed, NULL) != ARCHIVE_OK)
                return archive_fail(u, u->raw, reterr, "opening layer stream");
        struct archive_entry *rawe;
        if (archive_read_next_header(u->raw, &rawe) != ARCHIVE_OK)
                return archive_fail(u, u->raw, reterr, "opening layer stream");

        /* B: the tar reader over A's output */
        _cleanup_archive_ struct archive *a = archive_read_new();
        if (!a)
                return moat_error_set(reterr, -ENOMEM, "unpacking layer");
        if (archive_read_support_filter_none(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK)
                return archive_fail(u, a, reterr, "setting up the tar reader");
        if (archive_read_open(a, u, NULL, read_uncompressed, NULL) != ARCHIVE_OK)
                return archive_fail(u, a, reterr, "opening the layer as a tar archive");

        uint64_t n = 0;
        for (;;) {
                struct archive_entry *e;
                int ar = archive_read_next_header(a, &e);
                if (ar == ARCHIVE_EOF)
                        break;
                if (ar < ARCHIVE_WARN)
                        return archive_fail(u, a, reterr, "reading layer entry");
                if (++n > u->max_entries)
                        return moat_error_setx(reterr, -E2BIG, "layer has more than %llu entries",
                                               (unsigned long long) u->max_entries);
                int r = unpack_entry(u, a, e, reterr);
                if (r < 0)
                        return r;
        }

        /* The rest of the tar (padding after the end marker) and of the blob. */
        for (;;) {
                ssize_t k = pull_uncompressed(u);
                if (k < 0)
                        return moat_error_setx(reterr, u->cb_error, "%s", u->cb_msg);
                if (k == 0)
                        break;
        }
        for (;;) {
                ssize_t k = read(in_fd, u->inbuf, sizeof(u->inbuf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return moat_error_set(reterr, -errno, "reading layer stream");
                if (k == 0)
                        break;
                sha256_update(&u->compressed, (size_t) k, u->inbuf);
                u->compressed_size += (uint64_t) k;
        }

        int r = finish_dirs(u, reterr);
        if (r < 0)
                return r;

        if (ret) {
                *ret = (struct moat_layer_result) { .entries = n, .uncompressed_size = u->uncompressed_size };
                digest_string(&u->compressed, ret->compressed_digest);
                digest_string(&u->diff, ret->diff_id);
        }
        return 0;
}
