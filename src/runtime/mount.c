/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The container's mounts: mounts[], rootfs propagation, pivot_root and the
 * finishing touches (maskedPaths, readonlyPaths, root.readonly), all run by
 * the container init inside its own mount namespace.
 *
 * Every path inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT)
 * from one fd of the rootfs, so a symlink planted in the image can never
 * point a mount at the host. Bind mounts are cloned with open_tree(),
 * given their attributes with mount_setattr() while still detached (which
 * is also what idmapped mounts need) and attached with move_mount() onto
 * the resolved fd; other filesystems are mounted through /proc/self/fd/N
 * of that fd (before pivot_root the host's /proc is still there). After
 * each mount the destination is resolved again and must show the new
 * mount. Inside the new root only fd-based calls are used, because the
 * container may have no /proc at all.
 *
 * Destinations the runtime itself relies on are held to more than "stays
 * inside the root": a proc, sysfs or /dev destination that is a symlink in
 * the image is refused, and nothing but a proc mount (or a bind of a few
 * lxcfs-style files) may be mounted at or under /proc, so a volume can
 * never stand in for the procfs (CVE-2019-16884, CVE-2023-27561).
 */

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "runtime/cgroup.h"
#include "runtime/mount.h"
#include "runtime/protect.h"

#define MOUNTINFO_MAX (64u * 1024u * 1024u)
#define PROC_CGROUP_MAX (1024u * 1024u)
#define COPYUP_MAX_DEPTH 64
#define ID_MAP_MAX_LINES 340

/* ---- paths inside the root ------------------------------------------ */

int moat_open_in_root(int root_fd, const char *path, int flags, mode_t mode)
{
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };

        if (strempty(path))
                path = "/";
        return moat_openat2(root_fd, path, &how);
}

int moat_mkdir_p_in_root(int root_fd, const char *path)
{
        _cleanup_free_ char *buf = strdup(path ? path : "/");
        _cleanup_close_ int fd = -EBADF;

        if (!buf)
                return -ENOMEM;
        if (strlen(buf) >= PATH_MAX)
                return -ENAMETOOLONG;

        fd = moat_open_in_root(root_fd, "/", O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;

        char *p = buf;
        for (;;) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                char *end = p + strcspn(p, "/");
                char saved = *end;
                *end = '\0';

                int next = moat_open_in_root(root_fd, buf, O_PATH | O_DIRECTORY, 0);
                if (next == -ENOENT) {
                        /* fd is the parent, itself resolved inside the root. */
                        if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        next = moat_open_in_root(root_fd, buf, O_PATH | O_DIRECTORY, 0);
                }
                if (next < 0)
                        return next;
                safe_close(fd);
                fd = next;
                *end = saved;
                p = end;
        }
        return TAKE_FD(fd);
}

/* Split "a/b/c/" into "a/b" and "c"; leaf is empty for "/" and "". */
static int split_leaf(const char *path, char **ret_parent, char **ret_leaf)
{
        size_t len = strlen(path);

        while (len > 0 && path[len - 1] == '/')
                len--;
        size_t start = len;
        while (start > 0 && path[start - 1] != '/')
                start--;

        char *parent = strndup(path, start);
        char *leaf = strndup(path + start, len - start);
        if (!parent || !leaf) {
                free(parent);
                free(leaf);
                return -ENOMEM;
        }
        *ret_parent = parent;
        *ret_leaf = leaf;
        return 0;
}

int moat_create_in_root(int root_fd, const char *path, bool directory, mode_t mode)
{
        _cleanup_free_ char *parent = NULL, *leaf = NULL;
        _cleanup_close_ int parent_fd = -EBADF;
        int r;

        if (strlen(path) >= PATH_MAX)
                return -ENAMETOOLONG;
        r = split_leaf(path, &parent, &leaf);
        if (r < 0)
                return r;
        if (!*leaf || streq(leaf, ".") || streq(leaf, ".."))
                return moat_mkdir_p_in_root(root_fd, path);

        parent_fd = moat_mkdir_p_in_root(root_fd, parent);
        if (parent_fd < 0)
                return parent_fd;

        if (directory) {
                if (mkdirat(parent_fd, leaf, mode) < 0 && errno != EEXIST)
                        return negative_errno();
        } else {
                int fd = openat(parent_fd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
                if (fd < 0 && errno != EEXIST)
                        return negative_errno();
                safe_close(fd);
        }
        return moat_open_in_root(root_fd, path, O_PATH, 0);
}

static const char *fd_path(char buf[static 32], int fd)
{
        snprintf(buf, 32, "/proc/self/fd/%d", fd);
        return buf;
}

static int mount_id_of(int fd, uint64_t *ret)
{
        struct statx stx = {};

        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0)
                return negative_errno();
        if (!(stx.stx_mask & STATX_MNT_ID))
                return -EOPNOTSUPP;
        *ret = stx.stx_mnt_id;
        return 0;
}

/* Compare two paths ignoring repeated and trailing slashes and "." parts. */
static bool path_equal(const char *a, const char *b)
{
        for (;;) {
                while (*a == '/' || (a[0] == '.' && (a[1] == '/' || a[1] == '\0')))
                        a++;
                while (*b == '/' || (b[0] == '.' && (b[1] == '/' || b[1] == '\0')))
                        b++;
                size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
                if (la != lb || strncmp(a, b, la) != 0)
                        return false;
                if (la == 0)
                        return true;
                a += la;
                b += lb;
        }
}

/* Whether path is strictly below prefix, comparing components and
 * ignoring repeated slashes and "." parts (no resolution). */
static bool path_is_under_lexically(const char *path, const char *prefix)
{
        for (;;) {
                while (*path == '/' || (path[0] == '.' && (path[1] == '/' || path[1] == '\0')))
                        path++;
                while (*prefix == '/' || (prefix[0] == '.' && (prefix[1] == '/' || prefix[1] == '\0')))
                        prefix++;
                size_t lp = strcspn(prefix, "/");
                if (lp == 0)
                        return *path != '\0';
                size_t la = strcspn(path, "/");
                if (la != lp || strncmp(path, prefix, la) != 0)
                        return false;
                path += la;
                prefix += lp;
        }
}

/* ---- /proc/self/mountinfo ------------------------------------------- */

static void unescape_octal(char *s)
{
        char *w = s;

        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char) (((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
                        r += 4;
                } else
                        *w++ = *r++;
        }
        *w = '\0';
}

static char *next_field(char **p)
{
        char *s = *p;
        if (!s)
                return NULL;
        char *sp = strchr(s, ' ');
        if (sp) {
                *sp = '\0';
                *p = sp + 1;
        } else
                *p = NULL;
        return s;
}

int moat_mountinfo_foreach(int (*cb)(const struct moat_mountinfo_entry *e, void *userdata), void *userdata)
{
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r;

        r = read_full_file_at(AT_FDCWD, "/proc/self/mountinfo", MOUNTINFO_MAX, &buf, &size);
        if (r < 0)
                return r;

        char *line = buf;
        while (line && *line) {
                char *nl = strchr(line, '\n');
                if (nl)
                        *nl = '\0';

                struct moat_mountinfo_entry e = {};
                char *p = line;
                char *id = next_field(&p), *parent = next_field(&p), *majmin = next_field(&p);
                e.root = next_field(&p);
                e.mountpoint = next_field(&p);
                e.mount_options = next_field(&p);
                /* optional fields up to the lone "-" */
                char *opt_start = p, *opt_end = p;
                for (char *f; (f = next_field(&p));) {
                        if (streq(f, "-"))
                                break;
                        opt_end = p;
                }
                if (opt_start && opt_end && opt_end > opt_start)
                        opt_end[-1] = '\0';
                e.optional = (opt_start && opt_end != opt_start) ? opt_start : (char *) "";
                e.fstype = next_field(&p);
                e.source = next_field(&p);
                e.super_options = next_field(&p);

                unsigned maj, min;
                if (id && parent && majmin && sscanf(majmin, "%u:%u", &maj, &min) == 2 && e.root &&
                    e.mountpoint && e.fstype && e.super_options) {
                        e.id = atoi(id);
                        e.parent = atoi(parent);
                        e.dev = makedev(maj, min);
                        unescape_octal(e.root);
                        unescape_octal(e.mountpoint);
                        r = cb(&e, userdata);
                        if (r != 0)
                                return r < 0 ? r : 0;
                }
                line = nl ? nl + 1 : NULL;
        }
        return 0;
}

static bool path_is_under(const char *path, const char *prefix)
{
        size_t n = strlen(prefix);

        if (streq(prefix, "/"))
                return true;
        return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---- attributes ----------------------------------------------------- */

/* The per-mount part of MS_* flags as a mount_setattr() request. */
static void flags_to_attr(unsigned long set, unsigned long clear, struct mount_attr *attr)
{
        static const struct {
                unsigned long ms;
                uint64_t attr;
        } map[] = {
                { MS_RDONLY, MOUNT_ATTR_RDONLY },
                { MS_NOSUID, MOUNT_ATTR_NOSUID },
                { MS_NODEV, MOUNT_ATTR_NODEV },
                { MS_NOEXEC, MOUNT_ATTR_NOEXEC },
                { MS_NODIRATIME, MOUNT_ATTR_NODIRATIME },
                { MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                if (set & map[i].ms)
                        attr->attr_set |= map[i].attr;
                if (clear & map[i].ms)
                        attr->attr_clr |= map[i].attr;
        }

        uint64_t atime;
        if (set & MS_NOATIME)
                atime = MOUNT_ATTR_NOATIME;
        else if (set & MS_STRICTATIME)
                atime = MOUNT_ATTR_STRICTATIME;
        else if (set & MS_RELATIME)
                atime = MOUNT_ATTR_RELATIME;
        else if (clear & MS_RELATIME)
                atime = MOUNT_ATTR_STRICTATIME;
        else if (clear & (MS_NOATIME | MS_STRICTATIME))
                atime = MOUNT_ATTR_RELATIME;
        else
                return;
        attr->attr_clr |= MOUNT_ATTR__ATIME;
        attr->attr_set = (attr->attr_set & ~(uint64_t) MOUNT_ATTR__ATIME) | atime;
}

/* What the kernel keeps locked on a mount that came from a more privileged
 * user namespace, read from the source as runc does. */
static uint64_t locked_attrs(const char *source)
{
        struct statvfs sv;
        uint64_t a = 0;

        if (!source || statvfs(source, &sv) < 0)
                return 0;
        if (sv.f_flag & ST_RDONLY)
                a |= MOUNT_ATTR_RDONLY;
        if (sv.f_flag & ST_NOSUID)
                a |= MOUNT_ATTR_NOSUID;
        if (sv.f_flag & ST_NODEV)
                a |= MOUNT_ATTR_NODEV;
        if (sv.f_flag & ST_NOEXEC)
                a |= MOUNT_ATTR_NOEXEC;
        if (sv.f_flag & (ST_NOATIME | ST_NODIRATIME))
                a |= MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME;
        return a;
}

/* mount_setattr(); on EPERM retry without clearing what the source has
 * locked (nosuid, nodev, noexec, ro, atime), keeping those flags. */
static int setattr_keep_locked(int fd, unsigned flags, struct mount_attr attr, const char *source)
{
        if (attr.attr_set == 0 && attr.attr_clr == 0 && attr.propagation == 0)
                return 0;
        if (mount_setattr(fd, "", AT_EMPTY_PATH | flags, &attr, sizeof(attr)) >= 0)
                return 0;
        if (errno != EPERM)
                return negative_errno();

        uint64_t locked = locked_attrs(source);
        if (locked & MOUNT_ATTR__ATIME) {
                attr.attr_clr &= ~(uint64_t) MOUNT_ATTR__ATIME;
                attr.attr_set &= ~(uint64_t) MOUNT_ATTR__ATIME;
        }
        attr.attr_clr &= ~locked;
        if (attr.attr_set == 0 && attr.attr_clr == 0)
                return 0;
        return RET_NERRNO(mount_setattr(fd, "", AT_EMPTY_PATH | flags, &attr, sizeof(attr)));
}

/* ---- idmapped mounts ------------------------------------------------ */

static int write_id_map(int proc_fd, const char *file, const struct oci_id_mapping *m, size_t n)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (n == 0 || n > ID_MAP_MAX_LINES)
                return -EINVAL;
        buf = malloc(n * 40 + 1);
        if (!buf)
                return -ENOMEM;
        buf[0] = '\0';
        for (size_t i = 0; i < n; i++)
                len += (size_t) snprintf(buf + len, 40, "%" PRIu32 " %" PRIu32 " %" PRIu32 "\n",
                                         m[i].container_id, m[i].host_id, m[i].size);
        return write_string_file_at(proc_fd, file, buf);
}

/* A user namespace holding the given maps: a child unshares it and waits
 * while we write its maps and open /proc/<child>/ns/user. The child reads
 * its own pid from /proc/self so this works from inside a pid namespace. */
static int make_userns(const struct oci_id_mapping *uids, size_t n_uids, const struct oci_id_mapping *gids,
                       size_t n_gids, struct moat_error **reterr)
{
        _cleanup_close_ int ready_r = -EBADF, ready_w = -EBADF, hold_r = -EBADF, hold_w = -EBADF;
        _cleanup_close_ int proc_fd = -EBADF, ns_fd = -EBADF;
        int p[2], r;

        if (pipe2(p, O_CLOEXEC) < 0)
                return moat_error_set(reterr, -errno, "idmap: pipe");
        ready_r = p[0], ready_w = p[1];
        if (pipe2(p, O_CLOEXEC) < 0)
                return moat_error_set(reterr, -errno, "idmap: pipe");
        hold_r = p[0], hold_w = p[1];

        pid_t pid = fork();
        if (pid < 0)
                return moat_error_set(reterr, -errno, "idmap: fork");
        if (pid == 0) {
                int32_t v = -1;
                char buf[32];
                safe_close(ready_r);
                safe_close(hold_w);
                if (unshare(CLONE_NEWUSER) == 0) {
                        ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
                        if (n > 0) {
                                buf[n] = '\0';
                                v = atoi(buf);
                        }
                }
                if (write(ready_w, &v, sizeof(v)) != sizeof(v))
                        _exit(1);
                if (read(hold_r, buf, 1) < 0)
                        _exit(1);
                _exit(0);
        }
        ready_w = safe_close(ready_w);
        hold_r = safe_close(hold_r);

        int32_t child = -1;
        ssize_t n = read(ready_r, &child, sizeof(child));
        if (n != sizeof(child) || child <= 0) {
                r = moat_error_setx(reterr, -EPERM, "idmap: could not create a user namespace");
                goto out;
        }

        char path[64];
        snprintf(path, sizeof(path), "/proc/%" PRIi32, child);
        proc_fd = open(path, O_DIRECTORY | O_PATH | O_CLOEXEC);
        if (proc_fd < 0) {
                r = moat_error_set(reterr, -errno, "idmap: open %s", path);
                goto out;
        }
        r = write_id_map(proc_fd, "uid_map", uids, n_uids);
        if (r < 0) {
                r = moat_error_set(reterr, r, "idmap: writing uid_map");
                goto out;
        }
        r = write_id_map(proc_fd, "gid_map", gids, n_gids);
        if (r < 0) {
                r = moat_error_set(reterr, r, "idmap: writing gid_map");
                goto out;
        }
        ns_fd = openat(proc_fd, "ns/user", O_RDONLY | O_CLOEXEC);
        if (ns_fd < 0)
                r = moat_error_set(reterr, -errno, "idmap: open %s/ns/user", path);
        else
                r = 0;
out:
        hold_w = safe_close(hold_w);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        return r < 0 ? r : TAKE_FD(ns_fd);
}

/* ---- tmpcopyup ------------------------------------------------------ */

static int copy_file_contents(int src, int dst)
{
        char buf[64 * 1024];

        for (;;) {
                ssize_t n = copy_file_range(src, NULL, dst, NULL, 1u << 30, 0);
                if (n == 0)
                        return 0;
                if (n > 0)
                        continue;
                if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP)
                        return negative_errno();
                break;
        }
        for (;;) {
                ssize_t n = read(src, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return 0;
                int r = write_all(dst, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
}

static int copy_entry_meta(int dst_dir, const char *name, const struct stat *st)
{
        struct timespec ts[2] = { st->st_atim, st->st_mtim };

        if (fchownat(dst_dir, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM &&
            errno != EINVAL)
                return negative_errno();
        if (!S_ISLNK(st->st_mode) && fchmodat(dst_dir, name, st->st_mode & 07777, 0) < 0)
                return negative_errno();
        if (utimensat(dst_dir, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        return 0;
}

static int copy_tree(int src_dir, int dst_dir, unsigned depth)
{
        _cleanup_closedir_ DIR *d = NULL;
        int r;

        if (depth > COPYUP_MAX_DEPTH)
                return -ELOOP;
        int fd = openat(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return negative_errno();
        }

        for (struct dirent *de; (errno = 0, de = readdir(d));) {
                const char *name = de->d_name;
                struct stat st;

                if (streq(name, ".") || streq(name, ".."))
                        continue;
                if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();

                if (S_ISDIR(st.st_mode)) {
                        if (mkdirat(dst_dir, name, 0700) < 0 && errno != EEXIST)
                                return negative_errno();
                        _cleanup_close_ int s = openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        _cleanup_close_ int t = openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (s < 0 || t < 0)
                                return negative_errno();
                        r = copy_tree(s, t, depth + 1);
                        if (r < 0)
                                return r;
                } else if (S_ISREG(st.st_mode)) {
                        _cleanup_close_ int s = openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                        if (s < 0)
                                return negative_errno();
                        _cleanup_close_ int t = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                                       0600);
                        if (t < 0)
                                return negative_errno();
                        r = copy_file_contents(s, t);
                        if (r < 0)
                                return r;
                } else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t n = readlinkat(src_dir, name, target, sizeof(target) - 1);
                        if (n < 0)
                                return negative_errno();
                        target[n] = '\0';
                        if (symlinkat(target, dst_dir, name) < 0)
                                return negative_errno();
                } else if (mknodat(dst_dir, name, st.st_mode, st.st_rdev) < 0)
                        return negative_errno();

                r = copy_entry_meta(dst_dir, name, &st);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return negative_errno();
        return 0;
}

/* ---- one entry of mounts[] ------------------------------------------ */

struct mount_job {
        const struct moat_mount_context *ctx;
        const struct oci_mount *m;
        size_t index;
        int root_fd;
        struct moat_mount_options opts;
        const char *type;     /* never NULL: "bind" for a bind mount without type */
        const char *source;
        bool bind;
};

static bool has_data_option(const char *data, const char *name)
{
        size_t n = strlen(name);

        for (const char *p = data; p && *p;) {
                size_t len = strcspn(p, ",");
                if ((len == n || (len > n && p[n] == '=')) && strncmp(p, name, n) == 0)
                        return true;
                p += len;
                if (*p == ',')
                        p++;
        }
        return false;
}

/* Attach a clone of source (recursive for rbind) onto target_fd with the
 * per-mount flags, recursive attributes and idmap applied first. */
static int bind_onto(const struct mount_job *j, const char *source, bool recursive, unsigned long set,
                     unsigned long clear, uint64_t rec_set, uint64_t rec_clr, int target_fd,
                     struct moat_error **reterr)
{
        _cleanup_close_ int tree = -EBADF;
        const struct moat_mount_context *ctx = j->ctx;
        int r;

        tree = open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
        if (tree < 0)
                return moat_error_set(reterr, -errno, "open_tree \"%s\"", source);

        if (j->opts.idmap || j->opts.ridmap) {
                const struct oci_id_mapping *uids = j->m->uid_mappings, *gids = j->m->gid_mappings;
                size_t n_uids = j->m->n_uid_mappings, n_gids = j->m->n_gid_mappings;
                if (n_uids == 0 && n_gids == 0 && ctx->config->has_linux) {
                        uids = ctx->config->linux_.uid_mappings;
                        n_uids = ctx->config->linux_.n_uid_mappings;
                        gids = ctx->config->linux_.gid_mappings;
                        n_gids = ctx->config->linux_.n_gid_mappings;
                }
                if (n_uids == 0 || n_gids == 0)
                        return moat_error_setx(reterr, -EINVAL,
                                               "idmap needs uidMappings and gidMappings (on the mount or in linux)");
                _cleanup_close_ int userns = make_userns(uids, n_uids, gids, n_gids, reterr);
                if (userns < 0)
                        return userns;
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t) userns };
                if (mount_setattr(tree, "", AT_EMPTY_PATH | (j->opts.ridmap ? AT_RECURSIVE : 0), &attr,
                                  sizeof(attr)) < 0)
                        return moat_error_set(reterr, -errno, "mount_setattr idmap");
        }

        struct mount_attr top = {};
        flags_to_attr(set, clear, &top);
        r = setattr_keep_locked(tree, 0, top, source);
        if (r < 0)
                return moat_error_set(reterr, r, "mount_setattr");

        if (rec_set || rec_clr) {
                struct mount_attr rec = { .attr_set = rec_set, .attr_clr = rec_clr };
                r = setattr_keep_locked(tree, AT_RECURSIVE, rec, source);
                if (r < 0)
                        return moat_error_set(reterr, r, "mount_setattr recursive");
        }

        if (move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return moat_error_set(reterr, -errno, "move_mount");
        return 0;
}

static int mount_fs_at(const char *source, int target_fd, const char *type, unsigned long flags, const char *data)
{
        char p[32];
        return RET_NERRNO(mount(source, fd_path(p, target_fd), type, flags, data));
}

/* The container's own path in a cgroup hierarchy, from /proc/self/cgroup:
 * the v2 line when controller is NULL, else the line listing it. */
static int own_cgroup_path(const char *controller, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r;

        r = read_full_file_at(AT_FDCWD, "/proc/self/cgroup", PROC_CGROUP_MAX, &buf, &size);
        if (r < 0)
                return r;
        for (char *line = buf, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *c1 = strchr(line, ':');
                char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (!c2)
                        continue;
                *c2 = '\0';
                const char *ctrls = c1 + 1;
                bool match = false;
                if (!controller)
                        match = *ctrls == '\0';
                else
                        for (const char *p = ctrls; *p;) {
                                size_t len = strcspn(p, ",");
                                if (len == strlen(controller) && strncmp(p, controller, len) == 0)
                                        match = true;
                                p += len;
                                if (*p == ',')
                                        p++;
                        }
                if (match) {
                        *ret = strdup(c2 + 1);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOENT;
}

struct cgroup_v1_state {
        const struct mount_job *j;
        int tmpfs_fd;
        unsigned long flags;  /* per-mount flags for each hierarchy */
        struct moat_error **reterr;
};

static bool is_cgroup_flag_option(const char *opt, size_t len)
{
        static const char *const skip[] = { "rw", "ro", "clone_children", "noprefix", "xattr", "cpuset_v2_mode",
                                            "favordynmods", "nsdelegate", "memory_recursiveprot",
                                            "memory_localevents", "memory_hugetlb_accounting" };
        if (len > 14 && strncmp(opt, "release_agent=", 14) == 0)
                return true;
        for (size_t i = 0; i < ELEMENTSOF(skip); i++)
                if (strlen(skip[i]) == len && strncmp(opt, skip[i], len) == 0)
                        return true;
        return false;
}

static int cgroup_v1_one(const struct moat_cgroup_mount *e, struct cgroup_v1_state *s)
{
        const struct mount_job *j = s->j;
        _cleanup_free_ char *controllers = NULL, *own = NULL, *source = NULL;
        _cleanup_close_ int sub = -EBADF;
        int r;

        if (!startswith(e->mountpoint, "/sys/fs/cgroup/"))
                return 0;
        const char *name = e->mountpoint + strlen("/sys/fs/cgroup/");
        if (!*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return 0;
        bool v2 = e->v2;
        const char *fstype = v2 ? "cgroup2" : "cgroup";

        if (!v2) {
                controllers = calloc(1, strlen(e->options) + 1);
                if (!controllers)
                        return -ENOMEM;
                for (const char *p = e->options; *p;) {
                        size_t len = strcspn(p, ",");
                        if (!is_cgroup_flag_option(p, len)) {
                                if (*controllers)
                                        strcat(controllers, ",");
                                strncat(controllers, p, len);
                        }
                        p += len;
                        if (*p == ',')
                                p++;
                }
                if (!*controllers)
                        return 0;
        }

        if (mkdirat(s->tmpfs_fd, name, 0755) < 0 && errno != EEXIST)
                return moat_error_set(s->reterr, -errno, "mkdir %s", name);
        sub = openat(s->tmpfs_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
                return moat_error_set(s->reterr, -errno, "open %s", name);

        if (j->ctx->cgroup && moat_cgroup_dir_of_mount(j->ctx->cgroup, e, &source) >= 0) {
                r = bind_onto(j, source, false, s->flags, 0, 0, 0, sub, s->reterr);
                if (r < 0)
                        return moat_error_wrap(s->reterr, r, "cgroup %s", name);
        } else if (j->ctx->new_cgroup_ns) {
                /* Inside a cgroup namespace a fresh mount shows only the
                 * container's subtree. */
                r = mount_fs_at(fstype, sub, fstype, s->flags, controllers);
                if (r < 0)
                        return moat_error_set(s->reterr, r, "mount %s (%s)", fstype, name);
        } else {
                char first[256] = "";
                if (controllers) {
                        size_t len = strcspn(controllers, ",");
                        snprintf(first, sizeof(first), "%.*s", (int) len, controllers);
                }
                r = own_cgroup_path(v2 ? NULL : first, &own);
                if (r < 0)
                        return moat_error_set(s->reterr, r, "finding the container's cgroup for %s", name);
                const char *rel = own;
                if (!streq(e->root, "/") && path_is_under(own, e->root))
                        rel = own + strlen(e->root);
                if (asprintf(&source, "%s%s%s", e->mountpoint, *rel == '/' ? "" : "/", rel) < 0)
                        return -ENOMEM;
                r = bind_onto(j, source, false, s->flags, 0, 0, 0, sub, s->reterr);
                if (r < 0)
                        return moat_error_wrap(s->reterr, r, "cgroup %s", name);
        }

        /* cpu -> cpu,cpuacct as on the host */
        if (controllers && strchr(name, ',')) {
                _cleanup_free_ char *copy = strdup(name);
                if (!copy)
                        return -ENOMEM;
                for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                        if (symlinkat(name, s->tmpfs_fd, tok) < 0 && errno != EEXIST)
                                return moat_error_set(s->reterr, -errno, "symlink %s", tok);
        }
        return 0;
}

static int mount_cgroup2(const struct mount_job *j, int target_fd, unsigned long flags, struct moat_error **reterr)
{
        const struct moat_cgroup *cg = j->ctx->cgroup;
        for (size_t i = 0; cg && i < moat_cgroup_n_hierarchies(cg); i++) {
                _cleanup_free_ char *dir = NULL;
                bool v2 = false;
                if (moat_cgroup_hierarchy_dir(cg, i, &dir, &v2) < 0)
                        return -ENOMEM;
                if (v2)
                        return bind_onto(j, dir, false, flags, 0, 0, 0, target_fd, reterr);
        }

        int r = mount_fs_at("cgroup2", target_fd, "cgroup2", flags, j->opts.data);
        if (r >= 0)
                return 0;
        if (r != -EPERM || j->ctx->new_cgroup_ns)
                return moat_error_set(reterr, r, "mount");

        /* Not allowed to mount cgroup2 here (user namespace without cgroup
         * namespace): bind the container's own subtree instead. */
        _cleanup_free_ char *own = NULL, *source = NULL;
        r = own_cgroup_path(NULL, &own);
        if (r < 0)
                return moat_error_set(reterr, r, "mount: not permitted, and no cgroup2 path to bind");
        struct statfs sfs;
        const char *base = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC
                                   ? "/sys/fs/cgroup"
                                   : "/sys/fs/cgroup/unified";
        if (asprintf(&source, "%s%s", base, own) < 0)
                return -ENOMEM;
        return bind_onto(j, source, false, flags, 0, 0, 0, target_fd, reterr);
}

/* The host's v1 layout: a tmpfs holding one mount per hierarchy mounted
 * directly below /sys/fs/cgroup (and the cgroup2 tree at "unified" on a
 * hybrid host), with the host's links from each co-mounted controller. */
static int mount_cgroup_v1_layout(const struct mount_job *j, int target_fd, unsigned long flags,
                                  struct moat_error **reterr)
{
        _cleanup_(moat_cgroup_mounts_freep) struct moat_cgroup_mounts *read = NULL;
        const struct moat_cgroup_mounts *ms = j->ctx->cgroup_mounts;
        _cleanup_close_ int tmpfs_fd = -EBADF;
        int r;

        if (!ms) {
                r = moat_cgroup_mounts_read(&read, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "cgroup hierarchies");
                ms = read;
        }

        r = mount_fs_at("tmpfs", target_fd, "tmpfs", (flags & ~MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "mode=755");
        if (r < 0)
                return moat_error_set(reterr, r, "mount tmpfs");
        tmpfs_fd = moat_open_in_root(j->root_fd, j->m->destination, O_PATH | O_DIRECTORY, 0);
        if (tmpfs_fd < 0)
                return moat_error_set(reterr, tmpfs_fd, "reopening the destination");

        struct cgroup_v1_state s = {
                .j = j,
                .tmpfs_fd = tmpfs_fd,
                .flags = flags | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                .reterr = reterr,
        };
        for (size_t i = 0; i < ms->n; i++) {
                r = cgroup_v1_one(&ms->m[i], &s);
                if (r < 0)
                        return moat_error_set(reterr, r, "cgroup hierarchies");
        }

        if (flags & MS_RDONLY) {
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(tmpfs_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                        return moat_error_set(reterr, -errno, "read-only tmpfs");
        }
        return 0;
}

/* The mount itself, onto target_fd; the caller checks where it landed. */
static int do_mount(struct mount_job *j, int target_fd, bool *ret_devpts, struct moat_error **reterr)
{
        const struct moat_mount_context *ctx = j->ctx;
        const char *type = j->type;
        unsigned long flags = j->opts.flags & ~(MS_BIND | MS_REC);
        int r;

        if (j->bind)
                return bind_onto(j, j->source, j->opts.flags & MS_REC, flags, j->opts.clear, j->opts.rec_set,
                                 j->opts.rec_clr, target_fd, reterr);
        if (j->opts.idmap || j->opts.ridmap)
                return moat_error_setx(reterr, -EINVAL, "idmap is only supported on bind mounts");

        const char *source = j->source ? j->source : type;

        if (streq(type, "proc")) {
                r = mount_fs_at(source, target_fd, type, flags, j->opts.data);
                if (r == -EPERM && ctx->in_user_ns)
                        return moat_error_setx(reterr, r,
                                               "mount: %s (in a user namespace a fresh proc needs a pid "
                                               "namespace owned by it)",
                                               strerror(-r));
                return r < 0 ? moat_error_set(reterr, r, "mount") : 0;
        }

        if (streq(type, "sysfs")) {
                r = mount_fs_at(source, target_fd, type, flags, j->opts.data);
                if (r >= 0)
                        return 0;
                if (r != -EPERM || !ctx->in_user_ns)
                        return moat_error_set(reterr, r, "mount");
                /* No sysfs of our own without a network namespace owned by
                 * our user namespace: bind the host's, as runc does. */
                uint64_t rec = 0;
                struct mount_attr a = {};
                flags_to_attr(flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC), 0, &a);
                rec = a.attr_set;
                return bind_onto(j, "/sys", true, 0, 0, rec | j->opts.rec_set, j->opts.rec_clr, target_fd, reterr);
        }

        if (streq(type, "mqueue")) {
                _cleanup_free_ char *labeled = NULL;
                r = moat_lsm_mount_label_data(ctx->config, j->opts.data, &labeled, reterr);
                if (r < 0)
                        return r;
                r = mount_fs_at(source, target_fd, type, flags, labeled ? labeled : j->opts.data);
                if (r >= 0)
                        return 0;
                if (r != -EPERM || !ctx->in_user_ns)
                        return moat_error_set(reterr, r, "mount");
                return bind_onto(j, "/dev/mqueue", false, flags, 0, 0, 0, target_fd, reterr);
        }

        if (streq(type, "devpts")) {
                _cleanup_free_ char *data = NULL;
                const char *d = j->opts.data ? j->opts.data : "";
                if (asprintf(&data, "%s%s%s%s", has_data_option(d, "newinstance") ? "" : "newinstance,",
                             has_data_option(d, "ptmxmode") ? "" : "ptmxmode=0666,", d, "") < 0)
                        return -ENOMEM;
                size_t len = strlen(data);
                if (len > 0 && data[len - 1] == ',')
                        data[len - 1] = '\0';
                _cleanup_free_ char *labeled = NULL;
                r = moat_lsm_mount_label_data(ctx->config, data, &labeled, reterr);
                if (r < 0)
                        return r;
                r = mount_fs_at(source, target_fd, type, flags, labeled ? labeled : data);
                if (r < 0)
                        return moat_error_set(reterr, r, "mount");
                *ret_devpts = path_equal(j->m->destination, "/dev/pts");
                return 0;
        }

        if (streq(type, "cgroup") || streq(type, "cgroup2")) {
                struct statfs sfs;
                if (streq(type, "cgroup2") || (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC))
                        return mount_cgroup2(j, target_fd, flags, reterr);
                return mount_cgroup_v1_layout(j, target_fd, flags, reterr);
        }

        _cleanup_free_ char *labeled = NULL;
        if (streq(type, "tmpfs")) {
                r = moat_lsm_mount_label_data(ctx->config, j->opts.data, &labeled, reterr);
                if (r < 0)
                        return r;
        }
        r = mount_fs_at(source, target_fd, type, flags, labeled ? labeled : j->opts.data);
        if (r < 0)
                return moat_error_set(reterr, r, "mount");
        return 0;
}

/* ---- destinations that must not be redirected ---------------------- */

/* proc, sysfs and /dev are where the runtime later writes (LSM labels,
 * sysctls), reads (/proc) and creates devices: a symlink there in the
 * image (CVE-2023-27561, CVE-2023-28642, CVE-2026-41579) is refused, as
 * runc does, even though RESOLVE_IN_ROOT would keep it inside the root. */
static bool is_special_destination(const struct mount_job *j)
{
        const char *d = j->m->destination;

        return streq(j->type, "proc") || streq(j->type, "sysfs") || path_equal(d, "/proc") ||
               path_equal(d, "/sys") || path_equal(d, "/dev") || path_is_under_lexically(d, "/dev");
}

/* Only these files under /proc may be mounted over (what lxcfs and
 * runc's checkProcMount allow); anything else would let a mount shadow
 * procfs files the runtime or the kernel interfaces rely on
 * (CVE-2019-16884). */
static const char *const proc_allowed[] = {
        "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",  "/proc/swaps",
        "/proc/uptime",  "/proc/loadavg",   "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
};

static bool source_is_procfs(const char *source)
{
        struct statfs sfs;
        return source && statfs(source, &sfs) == 0 && sfs.f_type == PROC_SUPER_MAGIC;
}

static int check_destination(const struct mount_job *j, struct moat_error **reterr)
{
        const char *d = j->m->destination;
        size_t i = j->index;

        if (path_equal(d, "/proc") || path_is_under_lexically(d, "/proc")) {
                bool ok = (path_equal(d, "/proc") && streq(j->type, "proc")) ||
                          (j->bind && source_is_procfs(j->source));
                for (size_t k = 0; !ok && k < ELEMENTSOF(proc_allowed); k++)
                        ok = path_equal(d, proc_allowed[k]);
                if (!ok)
                        return moat_error_setx(reterr, -EPERM,
                                               "mounts[%zu]: \"%s\" cannot be mounted because it is inside /proc "
                                               "(only a proc mount, or binds over a few files such as "
                                               "/proc/meminfo, are allowed there)",
                                               i, d);
        }

        if (!is_special_destination(j))
                return 0;
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
        };
        int fd = moat_openat2(j->root_fd, d, &how);
        if (fd >= 0) {
                safe_close(fd);
                return 0;
        }
        errno = -fd;
        if (errno == ELOOP)
                return moat_error_setx(reterr, -ELOOP,
                                       "mounts[%zu]: %s mount destination \"%s\" is a symlink in the rootfs "
                                       "(it must be an ordinary directory)",
                                       i, j->type, d);
        if (errno == ENOENT)
                return 0;
        return moat_error_set(reterr, -errno, "mounts[%zu].destination \"%s\"", i, d);
}

static int mount_one(const struct moat_mount_context *ctx, int root_fd, size_t i, bool *devpts,
                     struct moat_error **reterr)
{
        const struct oci_mount *m = &ctx->config->mounts[i];
        _cleanup_close_ int target_fd = -EBADF, new_fd = -EBADF, copy_src = -EBADF;
        struct mount_job j = { .ctx = ctx, .m = m, .index = i, .root_fd = root_fd, .source = m->source };
        int r;

        if (strempty(m->destination))
                return moat_error_setx(reterr, -EINVAL, "mounts[%zu].destination: empty", i);

        r = moat_mount_options_parse(m->options, &j.opts, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "mounts[%zu]", i);

        j.type = m->type && !streq(m->type, "none") ? m->type : NULL;
        if (j.type && streq(j.type, "rbind"))
                j.opts.flags |= MS_BIND | MS_REC;
        j.bind = (j.opts.flags & MS_BIND) || (j.type && (streq(j.type, "bind") || streq(j.type, "rbind")));
        if (j.bind)
                j.opts.flags |= MS_BIND;
        if (!j.type)
                j.type = j.bind ? "bind" : "none";

        bool directory = true;
        if (j.bind) {
                struct stat st;
                if (strempty(j.source)) {
                        r = moat_error_setx(reterr, -EINVAL, "mounts[%zu].source: a bind mount needs a source", i);
                        goto out;
                }
                if (stat(j.source, &st) < 0) {
                        r = moat_error_set(reterr, -errno, "mounts[%zu].source \"%s\"", i, j.source);
                        goto out;
                }
                directory = S_ISDIR(st.st_mode);
        }

        r = check_destination(&j, reterr);
        if (r < 0)
                goto out;

        target_fd = moat_create_in_root(root_fd, m->destination, directory, directory ? 0755 : 0644);
        if (target_fd < 0) {
                r = moat_error_set(reterr, target_fd, "mounts[%zu].destination \"%s\"", i, m->destination);
                goto out;
        }

        if (j.opts.flags & MS_REMOUNT) {
                r = mount_fs_at(j.source, target_fd, j.bind ? NULL : j.type, j.opts.flags, j.opts.data);
                if (r < 0)
                        r = moat_error_set(reterr, r, "mounts[%zu] (%s on %s): remount", i, j.type, m->destination);
                goto out;
        }

        if (j.opts.tmpcopyup) {
                copy_src = moat_open_in_root(root_fd, m->destination, O_RDONLY | O_DIRECTORY, 0);
                if (copy_src < 0) {
                        r = moat_error_set(reterr, copy_src, "mounts[%zu] (%s on %s): tmpcopyup", i, j.type,
                                           m->destination);
                        goto out;
                }
        }

        uint64_t before = 0, after = 0;
        r = mount_id_of(target_fd, &before);
        if (r >= 0)
                r = do_mount(&j, target_fd, devpts, reterr);
        if (r < 0) {
                r = moat_error_wrap(reterr, r, "mounts[%zu] (%s on %s)", i, j.type, m->destination);
                goto out;
        }

        /* Resolve again: the destination inside the root must now be the
         * new mount. */
        new_fd = moat_open_in_root(root_fd, m->destination, O_PATH, 0);
        if (new_fd < 0 || mount_id_of(new_fd, &after) < 0 || after == before) {
                r = moat_error_setx(reterr, -EXDEV, "mounts[%zu] (%s on %s): the mount is not at the destination",
                                    i, j.type, m->destination);
                goto out;
        }

        if (!j.bind && (j.opts.rec_set || j.opts.rec_clr)) {
                struct mount_attr attr = { .attr_set = j.opts.rec_set, .attr_clr = j.opts.rec_clr };
                if (mount_setattr(new_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                        r = moat_error_set(reterr, -errno, "mounts[%zu] (%s on %s): mount_setattr", i, j.type,
                                           m->destination);
                        goto out;
                }
        }

        if (copy_src >= 0) {
                _cleanup_close_ int dst = moat_open_in_root(root_fd, m->destination, O_RDONLY | O_DIRECTORY, 0);
                r = dst < 0 ? dst : copy_tree(copy_src, dst, 0);
                if (r < 0) {
                        r = moat_error_set(reterr, r, "mounts[%zu] (%s on %s): tmpcopyup", i, j.type,
                                           m->destination);
                        goto out;
                }
        }

        if (j.opts.propagation) {
                r = mount_fs_at(NULL, new_fd, NULL, j.opts.propagation, NULL);
                if (r < 0) {
                        r = moat_error_set(reterr, r, "mounts[%zu] (%s on %s): propagation", i, j.type,
                                           m->destination);
                        goto out;
                }
        }
        r = 0;
out:
        moat_mount_options_done(&j.opts);
        return r;
}

/* ---- propagation ---------------------------------------------------- */

static int rootfs_propagation(const struct oci_config *c, unsigned long *ret)
{
        const char *p = c->has_linux ? c->linux_.rootfs_propagation : NULL;

        *ret = 0;
        if (strempty(p))
                return 0;
        if (*p == 'r')
                p++;
        if (streq(p, "private"))
                *ret = MS_PRIVATE | MS_REC;
        else if (streq(p, "shared"))
                *ret = MS_SHARED | MS_REC;
        else if (streq(p, "slave"))
                *ret = MS_SLAVE | MS_REC;
        else if (streq(p, "unbindable"))
                *ret = MS_UNBINDABLE | MS_REC;
        else
                return -EINVAL;
        return 0;
}

/*
 * pivot_root refuses a new root whose parent mount (the mount rootfs sits
 * on, which its bind onto itself is attached to) is shared. After the
 * recursive change of "/" in moat_mount_prepare_rootfs() that mount can only
 * be shared when rootfsPropagation is (r)shared: MS_PRIVATE, MS_SLAVE and
 * MS_UNBINDABLE with MS_REC leave no mount below "/" shared, and a mount
 * propagated into a slave or private one later is never shared. With
 * (r)shared every mount is, and the parent is made private. It is the nearest
 * directory at or above rootfs that is the root of a mount (statx's
 * STATX_ATTR_MOUNT_ROOT, as crun walks up with mount(MS_PRIVATE) until one
 * succeeds): no mountinfo, whose text grows with every mount on the host.
 */
static int make_parent_mount_private(const char *rootfs, struct moat_error **reterr)
{
        _cleanup_free_ char *dir = strdup(rootfs);

        if (!dir)
                return -ENOMEM;
        for (;;) {
                struct statx stx = {};

                if (statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &stx) < 0)
                        return moat_error_set(reterr, -errno, "finding the mount of \"%s\"", rootfs);
                if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
                        return moat_error_setx(reterr, -EOPNOTSUPP,
                                               "finding the mount of \"%s\": the kernel does not report mount "
                                               "roots (STATX_ATTR_MOUNT_ROOT)",
                                               rootfs);
                if ((stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) || streq(dir, "/"))
                        break;
                char *slash = strrchr(dir, '/');
                if (!slash)
                        return moat_error_setx(reterr, -EINVAL, "root.path \"%s\" is not absolute", rootfs);
                if (slash == dir)
                        slash++;
                *slash = '\0';
        }
        if (mount(NULL, dir, NULL, MS_PRIVATE, NULL) < 0)
                return moat_error_set(reterr, -errno, "making \"%s\" private", dir);
        return 0;
}

int moat_mount_prepare_rootfs(const struct moat_mount_context *ctx, struct moat_error **reterr)
{
        _cleanup_free_ char *rootfs = NULL;
        _cleanup_close_ int root_fd = -EBADF;
        unsigned long prop;
        bool devpts = false;
        int r;

        if (!ctx || !ctx->config || strempty(ctx->rootfs))
                return moat_error_setx(reterr, -EINVAL, "root.path: missing");
        if (rootfs_propagation(ctx->config, &prop) < 0)
                return moat_error_setx(reterr, -EINVAL, "linux.rootfsPropagation: unknown value \"%s\"",
                                       ctx->config->linux_.rootfs_propagation);

        /* linux.mountLabel asked for without SELinux fails here, before
         * anything is mounted. */
        _cleanup_free_ char *label_check = NULL;
        r = moat_lsm_mount_label_data(ctx->config, NULL, &label_check, reterr);
        if (r < 0)
                return r;

        if (mount(NULL, "/", NULL, prop ? prop : MS_SLAVE | MS_REC, NULL) < 0)
                return moat_error_set(reterr, -errno, "making \"/\" %s", prop ? "follow rootfsPropagation" : "rslave");

        rootfs = realpath(ctx->rootfs, NULL);
        if (!rootfs)
                return moat_error_set(reterr, -errno, "root.path \"%s\"", ctx->rootfs);

        if (prop & MS_SHARED) {
                r = make_parent_mount_private(rootfs, reterr);
                if (r < 0)
                        return r;
        }

        if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
                return moat_error_set(reterr, -errno, "root.path \"%s\": bind mount onto itself", ctx->rootfs);

        root_fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return moat_error_set(reterr, -errno, "root.path \"%s\"", ctx->rootfs);

        for (size_t i = 0; i < ctx->config->n_mounts; i++) {
                r = mount_one(ctx, root_fd, i, &devpts, reterr);
                if (r < 0)
                        return r;
        }

        return moat_mount_create_devices(ctx, root_fd, devpts, reterr);
}

/* ---- pivot_root ----------------------------------------------------- */

struct hide_state {
        const char *rootfs;
        struct moat_error **reterr;
};

/* Before MS_MOVE + chroot the host's full proc and sysfs mounts stay
 * reachable in the namespace (and make the kernel refuse fresh proc
 * mounts later): detach them, or cover them when that is refused. */
static int hide_one(const struct moat_mountinfo_entry *e, void *userdata)
{
        struct hide_state *s = userdata;

        if (!streq(e->root, "/") || (!streq(e->fstype, "proc") && !streq(e->fstype, "sysfs")) ||
            path_is_under(e->mountpoint, s->rootfs))
                return 0;
        if (mount(NULL, e->mountpoint, NULL, MS_SLAVE | MS_REC, NULL) < 0) {
                if (errno == ENOENT || errno == EINVAL)
                        return 0;
                return moat_error_set(s->reterr, -errno, "making \"%s\" rslave", e->mountpoint);
        }
        if (umount2(e->mountpoint, MNT_DETACH) >= 0)
                return 0;
        if (errno != EINVAL && errno != EPERM)
                return moat_error_set(s->reterr, -errno, "unmounting \"%s\"", e->mountpoint);
        if (mount("tmpfs", e->mountpoint, "tmpfs", MS_RDONLY, NULL) < 0)
                return moat_error_set(s->reterr, -errno, "covering \"%s\"", e->mountpoint);
        return 0;
}

static int move_root(const char *rootfs, int new_root, struct moat_error **reterr)
{
        struct hide_state s = { .rootfs = rootfs, .reterr = reterr };
        int r;

        if (fchdir(new_root) < 0)
                return moat_error_set(reterr, -errno, "chdir to the rootfs");
        r = moat_mountinfo_foreach(hide_one, &s);
        if (r < 0)
                return moat_error_wrap(reterr, r, "no-pivot");
        if (mount(rootfs, "/", NULL, MS_MOVE, NULL) < 0)
                return moat_error_set(reterr, -errno, "moving the rootfs onto \"/\"");
        if (chroot(".") < 0)
                return moat_error_set(reterr, -errno, "chroot");
        if (chdir("/") < 0)
                return moat_error_set(reterr, -errno, "chdir \"/\"");
        return 0;
}

int moat_mount_pivot_root(const struct moat_mount_context *ctx, struct moat_error **reterr)
{
        _cleanup_free_ char *rootfs = NULL;
        _cleanup_close_ int new_root = -EBADF, old_root = -EBADF;
        struct statfs sfs = {};

        rootfs = realpath(ctx->rootfs, NULL);
        if (!rootfs)
                return moat_error_set(reterr, -errno, "root.path \"%s\"", ctx->rootfs);
        new_root = open(rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (new_root < 0)
                return moat_error_set(reterr, -errno, "root.path \"%s\"", ctx->rootfs);
        if (statfs("/", &sfs) < 0)
                return moat_error_set(reterr, -errno, "statfs \"/\"");

        if (ctx->no_pivot || sfs.f_type == RAMFS_MAGIC)
                return move_root(rootfs, new_root, reterr);

        old_root = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (old_root < 0)
                return moat_error_set(reterr, -errno, "open \"/\"");
        if (fchdir(new_root) < 0)
                return moat_error_set(reterr, -errno, "chdir to the rootfs");
        if (syscall(SYS_pivot_root, ".", ".") < 0) {
                if (errno == EINVAL && sfs.f_type == TMPFS_MAGIC)
                        return move_root(rootfs, new_root, reterr);
                return moat_error_set(reterr, -errno, "pivot_root");
        }
        /* The old root is now stacked on "."; detach it without telling
         * the host. */
        if (fchdir(old_root) < 0)
                return moat_error_set(reterr, -errno, "chdir to the old root");
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
                return moat_error_set(reterr, -errno, "making the old root rslave");
        if (umount2(".", MNT_DETACH) < 0)
                return moat_error_set(reterr, -errno, "detaching the old root");
        if (chdir("/") < 0)
                return moat_error_set(reterr, -errno, "chdir \"/\"");
        return 0;
}

/* ---- inside the new root -------------------------------------------- */

static int attach(int tree, int target_fd)
{
        return RET_NERRNO(move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

static int empty_tmpfs(int *ret)
{
        _cleanup_close_ int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
        if (fs < 0)
                return negative_errno();
        if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0 ||
            fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return negative_errno();
        int mnt = fsmount(fs, FSMOUNT_CLOEXEC,
                          MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        if (mnt < 0)
                return negative_errno();
        *ret = mnt;
        return 0;
}

static int mask_paths(int root_fd, char **paths, struct moat_error **reterr)
{
        _cleanup_close_ int tmpfs = -EBADF, devnull = -EBADF;
        int r;

        for (size_t i = 0; paths && paths[i]; i++) {
                _cleanup_close_ int fd = moat_open_in_root(root_fd, paths[i], O_PATH, 0);
                _cleanup_close_ int tree = -EBADF;
                struct stat st;

                if (fd == -ENOENT)
                        continue;
                if (fd < 0)
                        return moat_error_set(reterr, fd, "linux.maskedPaths[%zu] \"%s\"", i, paths[i]);
                if (fstat(fd, &st) < 0)
                        return moat_error_set(reterr, -errno, "linux.maskedPaths[%zu] \"%s\"", i, paths[i]);

                if (S_ISDIR(st.st_mode)) {
                        if (tmpfs < 0) {
                                /* The first masked directory gets a fresh
                                 * tmpfs; once attached it belongs to this
                                 * mount namespace, the only kind of mount
                                 * kernels before 6.x let open_tree clone,
                                 * and the others share it through clones. */
                                r = empty_tmpfs(&tree);
                                if (r < 0)
                                        return moat_error_set(reterr, r, "linux.maskedPaths[%zu] \"%s\": tmpfs",
                                                              i, paths[i]);
                                r = attach(tree, fd);
                                if (r < 0)
                                        return moat_error_set(reterr, r, "linux.maskedPaths[%zu] \"%s\": mount",
                                                              i, paths[i]);
                                tmpfs = TAKE_FD(tree);
                                continue;
                        }
                        tree = open_tree(tmpfs, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
                } else {
                        if (devnull < 0) {
                                struct stat dn;
                                devnull = moat_open_in_root(root_fd, "/dev/null", O_PATH, 0);
                                if (devnull < 0)
                                        return moat_error_set(reterr, devnull, "linux.maskedPaths[%zu] \"%s\": /dev/null",
                                                              i, paths[i]);
                                if (fstat(devnull, &dn) < 0 || !S_ISCHR(dn.st_mode) || dn.st_rdev != makedev(1, 3))
                                        return moat_error_setx(reterr, -ENODEV,
                                                               "linux.maskedPaths[%zu] \"%s\": /dev/null is not the null device",
                                                               i, paths[i]);
                        }
                        tree = open_tree(devnull, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
                }
                r = tree < 0 ? negative_errno() : attach(tree, fd);
                if (r < 0)
                        return moat_error_set(reterr, r, "linux.maskedPaths[%zu] \"%s\": mount", i, paths[i]);
        }
        return 0;
}

static int readonly_paths(int root_fd, char **paths, struct moat_error **reterr)
{
        for (size_t i = 0; paths && paths[i]; i++) {
                _cleanup_close_ int fd = moat_open_in_root(root_fd, paths[i], O_PATH, 0);
                _cleanup_close_ int tree = -EBADF;

                if (fd == -ENOENT)
                        continue;
                if (fd < 0)
                        return moat_error_set(reterr, fd, "linux.readonlyPaths[%zu] \"%s\"", i, paths[i]);
                tree = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
                if (tree < 0)
                        return moat_error_set(reterr, -errno, "linux.readonlyPaths[%zu] \"%s\": open_tree", i, paths[i]);
                /* Only rdonly is added: nosuid/nodev/noexec stay as they
                 * were, locked or not. */
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                        return moat_error_set(reterr, -errno, "linux.readonlyPaths[%zu] \"%s\": mount_setattr", i,
                                              paths[i]);
                int r = attach(tree, fd);
                if (r < 0)
                        return moat_error_set(reterr, r, "linux.readonlyPaths[%zu] \"%s\": mount", i, paths[i]);
        }
        return 0;
}

int moat_mount_finalize(const struct moat_mount_context *ctx, struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF;
        const struct oci_config *c = ctx->config;
        unsigned long prop;
        int r;

        root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return moat_error_set(reterr, -errno, "open \"/\"");

        if (c->has_linux) {
                r = mask_paths(root_fd, c->linux_.masked_paths, reterr);
                if (r < 0)
                        return r;
                r = readonly_paths(root_fd, c->linux_.readonly_paths, reterr);
                if (r < 0)
                        return r;
        }

        if (c->root.readonly) {
                struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
                if (mount_setattr(root_fd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
                        return moat_error_set(reterr, -errno, "root.readonly: remount \"/\" read-only");
        }

        if (rootfs_propagation(c, &prop) < 0)
                return moat_error_setx(reterr, -EINVAL, "linux.rootfsPropagation: unknown value \"%s\"",
                                       c->linux_.rootfs_propagation);
        if (prop && mount(NULL, "/", NULL, prop, NULL) < 0)
                return moat_error_set(reterr, -errno, "linux.rootfsPropagation: \"/\"");
        return 0;
}
