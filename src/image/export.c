/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Trees to tar streams (export.h), written with libarchive's pax writer
 * (pax_restricted: plain ustar headers, extended headers only where ustar
 * cannot say it: long names, big numbers, xattrs).
 *
 * The walk is depth-first with one open fd per directory level. Each
 * directory's names are read whole and sorted before any is visited, so
 * the output order does not depend on the filesystem. Every entry is
 * looked at with fstatat(AT_SYMLINK_NOFOLLOW), then opened with O_NOFOLLOW
 * (directories O_DIRECTORY, regular files O_RDONLY|O_NONBLOCK so a fifo
 * swapped in cannot block, everything else O_PATH) and its type checked
 * again on the fd: the header always describes the object whose bytes
 * are written. Extended attributes of O_PATH fds are read through
 * /proc/self/fd/N, which names the object itself (never what a symlink
 * points at). Hard links are found by (st_dev, st_ino) of inodes with more
 * than one link, kept in a tsearch() tree.
 */

#include "image/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cleanup.h"

#define BUF_SIZE (128 * 1024)
#define NAMES_MAX 10000000u

struct inode_key {
        dev_t dev;
        ino_t ino;
        char *path;
};

struct exporter {
        struct archive *a;
        void *links; /* tsearch tree of struct inode_key */
        unsigned max_depth;
        char *buf;
        struct moat_export_result res;
};

static int inode_cmp(const void *x, const void *y)
{
        const struct inode_key *a = x, *b = y;
        if (a->dev != b->dev)
                return a->dev < b->dev ? -1 : 1;
        if (a->ino != b->ino)
                return a->ino < b->ino ? -1 : 1;
        return 0;
}

static void inode_free(void *p)
{
        struct inode_key *k = p;
        free(k->path);
        free(k);
}

static int str_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void strv_n_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The sorted names of a directory (without "." and ".."). */
static int read_names(int dfd, const char *path, char ***ret, size_t *ret_n, struct moat_error **reterr)
{
        _cleanup_closedir_ DIR *d = NULL;
        char **v = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        int fd;

        fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "open %s", *path ? path : ".");
        d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return moat_error_set(reterr, r, "read %s", *path ? path : ".");
        }
        while ((errno = 0, de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (n >= NAMES_MAX) {
                        strv_n_free(v, n);
                        return moat_error_setx(reterr, -E2BIG, "%s: more than %u entries", *path ? path : ".",
                                               NAMES_MAX);
                }
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 32;
                        char **nv = reallocarray(v, ncap, sizeof(char *));
                        if (!nv) {
                                strv_n_free(v, n);
                                return moat_error_set(reterr, -ENOMEM, "read %s", path);
                        }
                        v = nv;
                        cap = ncap;
                }
                v[n] = strdup(de->d_name);
                if (!v[n]) {
                        strv_n_free(v, n);
                        return moat_error_set(reterr, -ENOMEM, "read %s", path);
                }
                n++;
        }
        if (errno != 0) {
                int r = -errno;
                strv_n_free(v, n);
                return moat_error_set(reterr, r, "read %s", *path ? path : ".");
        }
        if (n > 1)
                qsort(v, n, sizeof(char *), str_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

static int add_xattrs(struct archive_entry *e, int fd, bool opath, const char *path, struct moat_error **reterr)
{
        _cleanup_free_ char *list = NULL, *value = NULL;
        char proc[64];
        ssize_t len;

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        len = opath ? listxattr(proc, NULL, 0) : flistxattr(fd, NULL, 0);
        if (len < 0 && (errno == ENOTSUP || errno == EPERM))
                return 0;
        if (len < 0)
                return moat_error_set(reterr, errno, "list xattrs of %s", path);
        if (len == 0)
                return 0;
        list = malloc(XATTR_LIST_MAX);
        value = malloc(XATTR_SIZE_MAX);
        if (!list || !value)
                return moat_error_set(reterr, -ENOMEM, "xattrs of %s", path);
        len = opath ? listxattr(proc, list, XATTR_LIST_MAX) : flistxattr(fd, list, XATTR_LIST_MAX);
        if (len < 0)
                return moat_error_set(reterr, errno, "list xattrs of %s", path);
        for (char *name = list; name < list + len; name += strlen(name) + 1) {
                if (startswith(name, "trusted.overlay."))
                        continue;
                ssize_t vlen = opath ? getxattr(proc, name, value, XATTR_SIZE_MAX)
                                     : fgetxattr(fd, name, value, XATTR_SIZE_MAX);
                if (vlen < 0 && errno == ENODATA)
                        continue; /* removed meanwhile */
                if (vlen < 0)
                        return moat_error_set(reterr, errno, "read xattr %s of %s", name, path);
                archive_entry_xattr_add_entry(e, name, value, (size_t) vlen);
        }
        return 0;
}

/* The first name of a multiply linked inode, or NULL (and it is recorded). */
static int hardlink_of(struct exporter *ex, const struct stat *st, const char *path, const char **ret)
{
        struct inode_key *k = malloc(sizeof(*k)), **found;

        *ret = NULL;
        if (!k)
                return -ENOMEM;
        *k = (struct inode_key) { .dev = st->st_dev, .ino = st->st_ino };
        found = tsearch(k, &ex->links, inode_cmp);
        if (!found) {
                free(k);
                return -ENOMEM;
        }
        if (*found != k) {
                free(k);
                *ret = (*found)->path;
                return 0;
        }
        k->path = strdup(path);
        if (!k->path) {
                tdelete(k, &ex->links, inode_cmp);
                free(k);
                return -ENOMEM;
        }
        return 0;
}

static int write_header(struct exporter *ex, struct archive_entry *e, const char *path, struct moat_error **reterr)
{
        if (archive_write_header(ex->a, e) < ARCHIVE_WARN)
                return moat_error_setx(reterr, -EIO, "export %s: %s", path, archive_error_string(ex->a));
        ex->res.entries++;
        return 0;
}

static int write_file_data(struct exporter *ex, int fd, int64_t size, const char *path, struct moat_error **reterr)
{
        for (int64_t left = size; left > 0;) {
                ssize_t k = read(fd, ex->buf, left < BUF_SIZE ? (size_t) left : BUF_SIZE);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return moat_error_set(reterr, errno, "read %s", path);
                if (k == 0)
                        break; /* shrank: libarchive pads the rest with zeros */
                if (archive_write_data(ex->a, ex->buf, (size_t) k) != k)
                        return moat_error_setx(reterr, -EIO, "export %s: %s", path, archive_error_string(ex->a));
                left -= k;
                ex->res.bytes += (uint64_t) k;
        }
        return 0;
}

static int walk(struct exporter *ex, int dfd, const char *prefix, unsigned depth, struct moat_error **reterr);

static int export_entry(struct exporter *ex, int dfd, const char *name, const char *path, unsigned depth,
                        struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        struct archive_entry *e = NULL;
        struct stat st, fst;
        const char *link = NULL;
        char target[PATH_MAX + 1];
        bool opath = false;
        int r;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : moat_error_set(reterr, errno, "stat %s", path);
        switch (st.st_mode & S_IFMT) {
        case S_IFSOCK:
                return 0;
        case S_IFCHR:
                if (major(st.st_rdev) == 0 && minor(st.st_rdev) == 0)
                        return 0; /* overlay whiteout */
                opath = true;
                break;
        case S_IFDIR:
                if (depth >= ex->max_depth)
                        return moat_error_setx(reterr, -ELOOP, "export %s: deeper than %u directories", path,
                                               ex->max_depth);
                fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                break;
        case S_IFREG:
                fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                break;
        default: /* symlinks, block devices, fifos */
                opath = true;
                break;
        }
        if (opath)
                fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : moat_error_set(reterr, errno, "open %s", path);
        if (fstat(fd, &fst) < 0)
                return moat_error_set(reterr, errno, "stat %s", path);
        if ((fst.st_mode & S_IFMT) != (st.st_mode & S_IFMT) || fst.st_ino != st.st_ino || fst.st_dev != st.st_dev)
                return moat_error_setx(reterr, -EAGAIN, "export %s: replaced while being exported", path);
        if (S_ISLNK(fst.st_mode)) {
                ssize_t l = readlinkat(fd, "", target, sizeof(target));
                if (l < 0)
                        return moat_error_set(reterr, errno, "readlink %s", path);
                if ((size_t) l >= sizeof(target))
                        return moat_error_setx(reterr, -ENAMETOOLONG, "export %s: symlink target too long", path);
                target[l] = '\0';
        }

        if (!S_ISDIR(fst.st_mode) && fst.st_nlink > 1) {
                r = hardlink_of(ex, &fst, path, &link);
                if (r < 0)
                        return moat_error_set(reterr, r, "export %s", path);
        }

        e = archive_entry_new();
        if (!e)
                return moat_error_set(reterr, -ENOMEM, "export %s", path);
        archive_entry_set_pathname(e, path);
        archive_entry_set_uid(e, fst.st_uid);
        archive_entry_set_gid(e, fst.st_gid);
        archive_entry_set_mode(e, fst.st_mode);
        archive_entry_set_mtime(e, fst.st_mtim.tv_sec, 0);
        if (link) {
                archive_entry_set_hardlink(e, link);
                archive_entry_set_size(e, 0);
        } else {
                if (S_ISREG(fst.st_mode))
                        archive_entry_set_size(e, fst.st_size);
                else
                        archive_entry_set_size(e, 0);
                if (S_ISLNK(fst.st_mode))
                        archive_entry_set_symlink(e, target);
                if (S_ISCHR(fst.st_mode) || S_ISBLK(fst.st_mode)) {
                        archive_entry_set_rdevmajor(e, major(fst.st_rdev));
                        archive_entry_set_rdevminor(e, minor(fst.st_rdev));
                }
                r = add_xattrs(e, fd, opath, path, reterr);
                if (r < 0) {
                        archive_entry_free(e);
                        return r;
                }
        }
        r = write_header(ex, e, path, reterr);
        archive_entry_free(e);
        if (r < 0)
                return r;
        if (!link && S_ISREG(fst.st_mode)) {
                r = write_file_data(ex, fd, fst.st_size, path, reterr);
                if (r < 0)
                        return r;
        }
        if (S_ISDIR(fst.st_mode)) {
                _cleanup_free_ char *sub = NULL;
                if (asprintf(&sub, "%s/", path) < 0)
                        return moat_error_set(reterr, -ENOMEM, "export %s", path);
                return walk(ex, fd, sub, depth + 1, reterr);
        }
        return 0;
}

static int walk(struct exporter *ex, int dfd, const char *prefix, unsigned depth, struct moat_error **reterr)
{
        char **names = NULL;
        size_t n = 0;
        int r;

        r = read_names(dfd, prefix, &names, &n, reterr);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s%s", prefix, names[i]) < 0) {
                        r = moat_error_set(reterr, -ENOMEM, "export");
                        break;
                }
                r = export_entry(ex, dfd, names[i], path, depth, reterr);
        }
        strv_n_free(names, n);
        return r;
}

int moat_export_tree(int dir_fd, int out_fd, const struct moat_export_options *opts, struct moat_export_result *ret,
                     struct moat_error **reterr)
{
        struct exporter ex = {
                .max_depth = opts && opts->max_depth ? opts->max_depth : MOAT_EXPORT_DEPTH_MAX,
        };
        struct stat st;
        int r;

        if (fstat(dir_fd, &st) < 0)
                return moat_error_set(reterr, errno, "export: the tree's root");
        if (!S_ISDIR(st.st_mode))
                return moat_error_setx(reterr, -ENOTDIR, "export: the tree's root is not a directory");
        ex.buf = malloc(BUF_SIZE);
        ex.a = archive_write_new();
        if (!ex.buf || !ex.a) {
                r = moat_error_set(reterr, -ENOMEM, "export");
                goto finish;
        }
        if (archive_write_set_format_pax_restricted(ex.a) != ARCHIVE_OK ||
            archive_write_add_filter_none(ex.a) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(ex.a, 1) != ARCHIVE_OK ||
            archive_write_open_fd(ex.a, out_fd) != ARCHIVE_OK) {
                r = moat_error_setx(reterr, -EIO, "export: %s", archive_error_string(ex.a));
                goto finish;
        }
        r = walk(&ex, dir_fd, "", 0, reterr);
        if (r >= 0 && archive_write_close(ex.a) != ARCHIVE_OK)
                r = moat_error_setx(reterr, -EIO, "export: %s", archive_error_string(ex.a));
finish:
        if (ex.a)
                archive_write_free(ex.a);
        tdestroy(ex.links, inode_free);
        free(ex.buf);
        if (r >= 0 && ret)
                *ret = ex.res;
        return r;
}
