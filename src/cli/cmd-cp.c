/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * moat cp [-a] [-L] [-q] CONTAINER:SRC DEST|- and moat cp SRC|- CONTAINER:DEST:
 * docker cp through /containers/{id}/archive (HEAD for a path's stat,
 * GET for a tar of it, PUT to extract one), with the rules of docker's
 * pkg/archive copy: a path ending in "/." means the directory's content,
 * one ending in "/" must be a directory, an existing directory receives
 * the source under its own name, anything else is created or replaced
 * under the destination's name (the archive's top entry renamed); -L
 * follows a symlink source (its entries renamed back to the link's name).
 *
 * Out of a container the tar streams from the client into a pipe and a thread
 * extracts it with libarchive under the destination's parent directory,
 * held open as a directory fd: every entry is created with *at() calls
 * relative to a parent opened with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS), names with ".." are refused, a symlink whose
 * target climbs out is refused as docker's breakout check does, existing
 * files are replaced (unlinked, never written through), a directory never
 * replaced by a non-directory nor the other way round. Ownership is not
 * restored on the host (docker's NoLchown); modes and times are.
 *
 * Into a container a thread writes the tar of the host path with
 * libarchive's disk reader (symlinks not followed below the top) into a
 * pipe that the client sends as the PUT's chunked body; -a asks the daemon to
 * keep the host's uid/gid. Owners go in as numbers only, without user and
 * group names, as docker's FileInfoHeaderNoLookups writes them (and moat,
 * a static executable, cannot use NSS for the names anyway). "-" reads a
 * tar from standard input (the destination must be a directory) or writes
 * the container's tar to standard output unchanged.
 */

#include <archive.h>
#include <archive_entry.h>

#include "base/locale.h"
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "cli/cli.h"
#include "cli/client.h"

#define STAT_HEADER "X-Docker-Container-Path-Stat"
#define GO_MODE_DIR (1u << 31)
#define GO_MODE_SYMLINK (1u << 27)
#define MAX_DEPTH 256
#define MAX_DIRS (1u << 20)

struct path_stat {
        char *name;
        char *link_target;
        uint32_t mode;
        bool exists;
};

static void path_stat_clear(struct path_stat *s)
{
        free(s->name);
        free(s->link_target);
        *s = (struct path_stat) {};
}

/* ---- paths, as docker's pkg/archive splits them ---- */

static bool has_trailing_sep(const char *p)
{
        return *p && p[strlen(p) - 1] == '/';
}

static bool specifies_current_dir(const char *p)
{
        size_t n = strlen(p);
        return (n == 1 && p[0] == '.') || (n >= 2 && p[n - 1] == '.' && p[n - 2] == '/');
}

static bool asserts_directory(const char *p)
{
        return has_trailing_sep(p) || specifies_current_dir(p);
}

/* Go's filepath.Clean. */
static char *path_clean(const char *p)
{
        bool abs = p[0] == '/';
        size_t n = strlen(p);
        char *out = malloc(n + 2), *o = out;
        if (!out)
                return NULL;
        if (abs)
                *o++ = '/';
        for (const char *s = p; *s;) {
                while (*s == '/')
                        s++;
                size_t l = strcspn(s, "/");
                if (l == 0)
                        break;
                if (l == 1 && s[0] == '.') {
                } else if (l == 2 && s[0] == '.' && s[1] == '.') {
                        char *start = out + abs;
                        char *last = o > start ? memrchr(start, '/', (size_t) (o - start)) : NULL;
                        if (o > start && !(o - start >= 2 && o[-1] == '.' && o[-2] == '.' &&
                                           (o - start == 2 || o[-3] == '/')))
                                o = last ? last : start;
                        else if (!abs) {
                                if (o > start)
                                        *o++ = '/';
                                *o++ = '.', *o++ = '.';
                        }
                } else {
                        if (o > out + abs)
                                *o++ = '/';
                        memcpy(o, s, l);
                        o += l;
                }
                s += l;
        }
        if (o == out)
                *o++ = '.';
        *o = 0;
        return out;
}

/* SplitPathDirEntry: the cleaned path's directory and base ("." kept
 * for a path that ends in "/."). */
static int split_dir_entry(const char *path, char **ret_dir, char **ret_base)
{
        _cleanup_free_ char *clean = path_clean(path), *withdot = NULL;
        if (!clean)
                return -ENOMEM;
        if (specifies_current_dir(path) && !streq(clean, ".")) {
                if (asprintf(&withdot, "%s/.", streq(clean, "/") ? "" : clean) < 0)
                        return -ENOMEM;
        } else if (specifies_current_dir(path)) {
                withdot = strdup("./.");
                if (!withdot)
                        return -ENOMEM;
        }
        const char *c = withdot ? withdot : clean;
        const char *slash = strrchr(c, '/');
        if (!slash) {
                *ret_dir = strdup(".");
                *ret_base = strdup(c);
        } else {
                *ret_dir = slash == c ? strdup("/") : strndup(c, (size_t) (slash - c));
                *ret_base = strdup(slash[1] ? slash + 1 : "/");
        }
        if (!*ret_dir || !*ret_base) {
                free(*ret_dir);
                free(*ret_base);
                return -ENOMEM;
        }
        return 0;
}

static char *base_name(const char *p)
{
        _cleanup_free_ char *dir = NULL;
        char *base = NULL;
        return split_dir_entry(p, &dir, &base) < 0 ? NULL : base;
}

/* resolveLocalPath: absolute, with a trailing "/" or "/." kept. */
static char *local_abs(const char *p)
{
        _cleanup_free_ char *cwd = NULL, *joined = NULL, *clean = NULL;
        char *out = NULL;

        if (p[0] != '/') {
                cwd = get_current_dir_name();
                if (!cwd || asprintf(&joined, "%s/%s", cwd, p) < 0)
                        return NULL;
        }
        clean = path_clean(joined ? joined : p);
        if (!clean)
                return NULL;
        if (specifies_current_dir(p) && !specifies_current_dir(clean)) {
                if (asprintf(&out, "%s%s.", clean, streq(clean, "/") ? "" : "/") < 0)
                        return NULL;
        } else if (has_trailing_sep(p) && !has_trailing_sep(clean)) {
                if (asprintf(&out, "%s/", clean) < 0)
                        return NULL;
        } else
                out = TAKE_PTR(clean);
        return out;
}

/* GetRebaseName: the resolved path (with a "/." the original had) and the
 * name its entries take back (NULL when the base names agree). */
static int rebase_name(const char *path, const char *resolved, char **ret_resolved, char **ret_name)
{
        _cleanup_free_ char *pb = NULL, *rb = NULL;
        char *res = NULL;

        if (specifies_current_dir(path) && !specifies_current_dir(resolved)) {
                if (asprintf(&res, "%s/.", resolved) < 0)
                        return -ENOMEM;
        } else if (!(res = strdup(resolved)))
                return -ENOMEM;
        pb = base_name(path);
        rb = base_name(res);
        if (!pb || !rb) {
                free(res);
                return -ENOMEM;
        }
        *ret_resolved = res;
        *ret_name = streq(pb, rb) ? NULL : TAKE_PTR(pb);
        return 0;
}

/* "lstat PATH: no such file or directory", in Go's words (lower case). */
static int lstat_error(int e, const char *path, struct moat_error **reterr)
{
        char msg[256];
        snprintf(msg, sizeof(msg), "%s", strerror(e));
        if (msg[0] >= 'A' && msg[0] <= 'Z')
                msg[0] = (char) (msg[0] - 'A' + 'a');
        return moat_error_setx(reterr, -e, "lstat %s: %s", path, msg);
}

/* ---- the daemon's stat header ---- */

static int b64_value(char c)
{
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static int parse_stat_header(const char *b64, struct path_stat *ret)
{
        size_t n = strlen(b64), o = 0;
        _cleanup_free_ char *raw = malloc(n / 4 * 3 + 4);
        uint32_t acc = 0;
        int bits = 0;
        json_error_t jerr;

        if (!raw)
                return -ENOMEM;
        for (size_t i = 0; i < n && b64[i] != '='; i++) {
                int v = b64_value(b64[i]);
                if (v < 0)
                        return -EPROTO;
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        raw[o++] = (char) ((acc >> bits) & 0xff);
                }
        }
        _cleanup_json_ json_t *j = json_loadb(raw, o, 0, &jerr);
        if (!json_is_object(j))
                return -EPROTO;
        ret->mode = (uint32_t) json_integer_value(json_object_get(j, "mode"));
        ret->name = strdup(json_string_value(json_object_get(j, "name")) ?: "");
        ret->link_target = strdup(json_string_value(json_object_get(j, "linkTarget")) ?: "");
        ret->exists = true;
        return ret->name && ret->link_target ? 0 : -ENOMEM;
}

static int archive_target(const char *container, const char *path, const char *extra, char **ret)
{
        _cleanup_free_ char *ec = moat_client_escape(container), *ep = moat_client_escape(path);
        if (!ec || !ep || asprintf(ret, "/containers/%s/archive?path=%s%s", ec, ep, extra ? extra : "") < 0)
                return -ENOMEM;
        return 0;
}

/* HEAD: 0 with *ret filled, or the error (-ENOENT when not there). */
static int container_stat(struct moat_client *client, const char *container, const char *path,
                          struct path_stat *ret, struct moat_error **reterr)
{
        _cleanup_free_ char *target = NULL;
        struct moat_client_transfer t = { .want_header = STAT_HEADER };
        int r;

        if (archive_target(container, path, NULL, &target) < 0)
                return moat_error_set(reterr, -ENOMEM, "cp");
        r = moat_client_transfer(client, "HEAD", target, &t, reterr);
        if (r >= 0 && !t.header)
                r = moat_error_setx(reterr, -EPROTO, "the daemon sent no %s header", STAT_HEADER);
        if (r >= 0 && parse_stat_header(t.header, ret) < 0)
                r = moat_error_setx(reterr, -EPROTO, "the daemon's %s header is not valid", STAT_HEADER);
        free(t.header);
        return r;
}

/* ---- extracting on the host ---- */

struct extract {
        int dir_fd;               /* the destination directory */
        const char *old_base;     /* entries named old_base[/...] are renamed new_base[/...] */
        const char *new_base;
        struct archive *a;
        int in_fd;                /* opened by the thread: opening reads */
        const char *dst_dir;      /* for messages */
        char **dirs;              /* directories whose times are set at the end */
        time_t *dir_times;        /* mtime, nsec pairs */
        long *dir_nsec;
        size_t n_dirs;
        struct moat_error *err;
        int r;
};

static int open_beneath(int dir_fd, const char *path, int flags, mode_t mode)
{
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .mode = mode,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        long fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
        return fd < 0 ? -errno : (int) fd;
}

/* The entry's name after the rebase, cleaned and relative; NULL for
 * one that would leave the destination. */
static char *entry_name(const struct extract *x, const char *name, struct moat_error **reterr)
{
        _cleanup_free_ char *renamed = NULL, *clean = NULL;
        size_t ol = x->old_base ? strlen(x->old_base) : 0;

        if (x->old_base && strncmp(name, x->old_base, ol) == 0 && (name[ol] == 0 || name[ol] == '/')) {
                if (asprintf(&renamed, "%s%s", x->new_base, name + ol) < 0)
                        return NULL;
                name = renamed;
        }
        clean = path_clean(name[0] == '/' ? name + 1 : name);
        if (!clean)
                return NULL;
        if (streq(clean, "..") || startswith(clean, "../") || clean[0] == '/') {
                (void) moat_error_setx(reterr, -EPERM, "invalid archive entry %s: it would be outside the destination",
                                       name);
                return NULL;
        }
        return TAKE_PTR(clean);
}

/* The parent directory of rel, opened beneath the destination, its
 * missing components created (0755) as docker's untar does; *ret_base
 * points into rel. */
static int open_parent(struct extract *x, const char *rel, const char **ret_base, struct moat_error **reterr)
{
        const char *slash = strrchr(rel, '/');
        int fd;

        *ret_base = slash ? slash + 1 : rel;
        if (!slash) {
                fd = fcntl(x->dir_fd, F_DUPFD_CLOEXEC, 3);
                return fd < 0 ? moat_error_set(reterr, errno, "dup") : fd;
        }
        _cleanup_free_ char *parent = strndup(rel, (size_t) (slash - rel));
        if (!parent)
                return moat_error_set(reterr, -ENOMEM, "cp");
        fd = open_beneath(x->dir_fd, parent, O_PATH | O_DIRECTORY, 0);
        for (size_t k = 0; fd == -ENOENT && k <= strlen(parent); k++) {
                if (parent[k] != '/' && parent[k] != 0)
                        continue;
                _cleanup_free_ char *prefix = strndup(parent, k);
                if (!prefix)
                        return moat_error_set(reterr, -ENOMEM, "cp");
                char *ps = strrchr(prefix, '/');
                _cleanup_close_ int up = -EBADF;
                if (ps) {
                        *ps = 0;
                        up = open_beneath(x->dir_fd, prefix, O_PATH | O_DIRECTORY, 0);
                        *ps = '/';
                } else
                        up = fcntl(x->dir_fd, F_DUPFD_CLOEXEC, 3);
                if (up < 0) {
                        fd = up;
                        break;
                }
                if (mkdirat(up, ps ? ps + 1 : prefix, 0755) < 0 && errno != EEXIST)
                        return moat_error_set(reterr, errno, "mkdir %s", prefix);
                if (parent[k] == 0)
                        fd = open_beneath(x->dir_fd, parent, O_PATH | O_DIRECTORY, 0);
        }
        if (fd == -EXDEV || fd == -ELOOP)
                return moat_error_setx(reterr, -EPERM, "%s: the path leaves the destination through a symlink", rel);
        if (fd < 0)
                return moat_error_set(reterr, fd, "open the directory of %s", rel);
        return fd;
}

/* docker's breakout check for symlinks: the target, taken from the
 * entry's directory, must stay under the destination. */
static bool symlink_stays(const char *rel, const char *target)
{
        _cleanup_free_ char *joined = NULL, *clean = NULL;
        const char *slash = strrchr(rel, '/');
        if (target[0] == '/')
                return true; /* joined onto the destination by docker: inside */
        if (asprintf(&joined, "%.*s%s%s", slash ? (int) (slash - rel) : 0, rel, slash ? "/" : "", target) < 0)
                return false;
        clean = path_clean(joined);
        return clean && !streq(clean, "..") && !startswith(clean, "../");
}

static int extract_entry(struct extract *x, struct archive_entry *e, struct moat_error **reterr)
{
        _cleanup_free_ char *rel = entry_name(x, archive_entry_pathname(e), reterr);
        _cleanup_close_ int pfd = -EBADF;
        const char *base;
        struct stat st;
        mode_t type = archive_entry_filetype(e), perm = archive_entry_perm(e);
        const char *hardlink = archive_entry_hardlink(e);
        int r;

        if (!rel)
                return *reterr ? -EPERM : moat_error_set(reterr, -ENOMEM, "cp");
        if (streq(rel, ".")) {
                /* the destination itself: only its mode and times */
                if (type == AE_IFDIR)
                        (void) fchmod(x->dir_fd, perm);
                return 0;
        }
        pfd = open_parent(x, rel, &base, reterr);
        if (pfd < 0)
                return pfd;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                bool is_dir = S_ISDIR(st.st_mode), want_dir = !hardlink && type == AE_IFDIR;
                if (is_dir && !want_dir)
                        return moat_error_setx(reterr, -EISDIR, "cannot overwrite directory \"%s\" with non-directory",
                                               rel);
                if (!is_dir && want_dir)
                        return moat_error_setx(reterr, -ENOTDIR,
                                               "cannot overwrite non-directory \"%s\" with directory", rel);
                if (!is_dir && unlinkat(pfd, base, 0) < 0)
                        return moat_error_set(reterr, errno, "remove %s", rel);
        } else if (errno != ENOENT)
                return moat_error_set(reterr, errno, "lstat %s", rel);

        if (hardlink) {
                _cleanup_free_ char *lrel = entry_name(x, hardlink, reterr);
                _cleanup_close_ int lfd = -EBADF;
                const char *lbase;
                if (!lrel)
                        return *reterr ? -EPERM : moat_error_set(reterr, -ENOMEM, "cp");
                lfd = open_parent(x, lrel, &lbase, reterr);
                if (lfd < 0)
                        return lfd;
                if (linkat(lfd, lbase, pfd, base, 0) < 0)
                        return moat_error_set(reterr, errno, "link %s to %s", rel, lrel);
                return 0;
        }
        switch (type) {
        case AE_IFDIR:
                if (mkdirat(pfd, base, 0700) < 0 && errno != EEXIST)
                        return moat_error_set(reterr, errno, "mkdir %s", rel);
                break;
        case AE_IFREG: {
                _cleanup_close_ int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
                const void *buf;
                size_t len;
                la_int64_t off;
                if (fd < 0)
                        return moat_error_set(reterr, errno, "create %s", rel);
                for (;;) {
                        r = archive_read_data_block(x->a, &buf, &len, &off);
                        if (r == ARCHIVE_EOF)
                                break;
                        if (r != ARCHIVE_OK)
                                return moat_error_setx(reterr, -EIO, "read %s from the archive: %s", rel,
                                                       archive_error_string(x->a));
                        if (pwrite(fd, buf, len, off) != (ssize_t) len)
                                return moat_error_set(reterr, errno ? errno : EIO, "write %s", rel);
                }
                if (ftruncate(fd, archive_entry_size(e)) < 0 || fchmod(fd, perm) < 0)
                        return moat_error_set(reterr, errno, "write %s", rel);
                break;
        }
        case AE_IFLNK: {
                const char *target = archive_entry_symlink(e);
                if (!target || !symlink_stays(rel, target))
                        return moat_error_setx(reterr, -EPERM, "invalid symlink \"%s/%s\" -> \"%s\"", x->dst_dir,
                                               rel, target ? target : "");
                if (symlinkat(target, pfd, base) < 0)
                        return moat_error_set(reterr, errno, "symlink %s", rel);
                break;
        }
        case AE_IFIFO:
        case AE_IFCHR:
        case AE_IFBLK:
                if (mknodat(pfd, base, type | perm, archive_entry_rdev(e)) < 0)
                        return moat_error_set(reterr, errno, "mknod %s", rel);
                break;
        default:
                return moat_error_setx(reterr, -EOPNOTSUPP, "%s: unsupported file type in the archive", rel);
        }
        if (type != AE_IFLNK && type != AE_IFREG && fchmodat(pfd, base, perm, 0) < 0)
                return moat_error_set(reterr, errno, "chmod %s", rel);
        struct timespec ts[2] = {
                { .tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e),
                  .tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : archive_entry_mtime_nsec(e) },
                { .tv_sec = archive_entry_mtime(e), .tv_nsec = archive_entry_mtime_nsec(e) },
        };
        if (type == AE_IFDIR) {
                if (x->n_dirs < MAX_DIRS) {
                        char **d = reallocarray(x->dirs, x->n_dirs + 1, sizeof(char *));
                        time_t *t = d ? reallocarray(x->dir_times, x->n_dirs + 1, sizeof(time_t)) : NULL;
                        long *ns = t ? reallocarray(x->dir_nsec, x->n_dirs + 1, sizeof(long)) : NULL;
                        if (d)
                                x->dirs = d;
                        if (t)
                                x->dir_times = t;
                        if (!ns || !(x->dirs[x->n_dirs] = strdup(rel)))
                                return moat_error_set(reterr, -ENOMEM, "cp");
                        x->dir_nsec = ns;
                        x->dir_times[x->n_dirs] = ts[1].tv_sec;
                        x->dir_nsec[x->n_dirs] = ts[1].tv_nsec;
                        x->n_dirs++;
                }
        } else
                (void) utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
}

static void *extract_thread(void *userdata)
{
        struct extract *x = userdata;
        struct archive_entry *e;
        int r;

        if (archive_read_open_fd(x->a, x->in_fd, 64 * 1024) != ARCHIVE_OK) {
                x->r = moat_error_setx(&x->err, -EIO, "reading the container's archive: %s",
                                       archive_error_string(x->a));
                goto out;
        }
        for (;;) {
                r = archive_read_next_header(x->a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN) {
                        x->r = moat_error_setx(&x->err, -EIO, "reading the container's archive: %s",
                                               archive_error_string(x->a));
                        break;
                }
                r = extract_entry(x, e, &x->err);
                if (r < 0) {
                        x->r = r;
                        break;
                }
        }
        for (size_t i = x->n_dirs; x->r >= 0 && i > 0; i--) {
                struct timespec ts[2] = { { .tv_sec = x->dir_times[i - 1], .tv_nsec = x->dir_nsec[i - 1] },
                                          { .tv_sec = x->dir_times[i - 1], .tv_nsec = x->dir_nsec[i - 1] } };
                _cleanup_close_ int fd = open_beneath(x->dir_fd, x->dirs[i - 1], O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
                if (fd >= 0)
                        (void) utimensat(fd, "", ts, AT_EMPTY_PATH);
        }
out:
        /* the writer sees EPIPE rather than waiting on a reader gone */
        x->in_fd = safe_close(x->in_fd);
        return NULL;
}

/* ---- from the container ---- */

struct from {
        struct moat_client_transfer t;
        const char *src;          /* the container path fetched */
        const char *rebase;       /* -L: the link's base name */
        const char *dst;          /* absolute host path; NULL: standard output */
        bool started, thread_started;
        int out_fd;
        int pipe_r;
        pthread_t thread;
        struct extract x;
        struct archive *a;
        char *dst_dir, *old_base, *new_base;
        uint64_t copied;
        struct moat_error *err;
        int r;
};

/* CopyInfoDestinationPath and PrepareArchiveCopy: where to extract and
 * what to rename, once the source's stat is known. */
static int plan_from(struct from *f, struct moat_error **reterr)
{
        _cleanup_free_ char *path = strdup(f->dst), *dst_dir = NULL, *dst_base = NULL, *src_dir = NULL;
        _cleanup_free_ char *src_base = NULL;
        struct path_stat src = {};
        struct stat st;
        bool exists = false, is_dir = false, src_is_dir;
        int r;

        if (!path)
                return moat_error_set(reterr, -ENOMEM, "cp");
        if (!f->t.header || parse_stat_header(f->t.header, &src) < 0)
                return moat_error_setx(reterr, -EPROTO, "the daemon sent no valid %s header", STAT_HEADER);
        src_is_dir = src.mode & GO_MODE_DIR;
        path_stat_clear(&src);

        r = lstat(path, &st);
        for (int n = 0; r == 0 && S_ISLNK(st.st_mode); n++) {
                char target[PATH_MAX];
                char *next = NULL;
                ssize_t l;
                if (n > 10)
                        return moat_error_setx(reterr, -ELOOP, "too many symlinks in %s", f->dst);
                l = readlink(path, target, sizeof(target) - 1);
                if (l < 0)
                        return moat_error_set(reterr, errno, "readlink %s", path);
                target[l] = 0;
                if (target[0] != '/') {
                        _cleanup_free_ char *d = NULL, *b = NULL;
                        if (split_dir_entry(path, &d, &b) < 0 || asprintf(&next, "%s/%s", d, target) < 0)
                                return moat_error_set(reterr, -ENOMEM, "cp");
                } else if (!(next = strdup(target)))
                        return moat_error_set(reterr, -ENOMEM, "cp");
                free(path);
                path = next;
                r = lstat(path, &st);
        }
        if (r == 0) {
                exists = true;
                is_dir = S_ISDIR(st.st_mode);
        } else if (errno != ENOENT)
                return moat_error_set(reterr, errno, "lstat %s", path);
        else {
                _cleanup_free_ char *d = NULL, *b = NULL;
                if (split_dir_entry(path, &d, &b) < 0)
                        return moat_error_set(reterr, -ENOMEM, "cp");
                if (stat(d, &st) < 0)
                        return moat_error_set(reterr, errno, "stat %s", d);
                if (!S_ISDIR(st.st_mode))
                        return moat_error_setx(reterr, -ENOTDIR, "not a directory");
        }
        if (split_dir_entry(path, &dst_dir, &dst_base) < 0 || split_dir_entry(f->src, &src_dir, &src_base) < 0)
                return moat_error_set(reterr, -ENOMEM, "cp");
        if (exists && is_dir) {
                f->dst_dir = TAKE_PTR(path);
                if (f->rebase) {
                        f->old_base = TAKE_PTR(src_base);
                        if (!(f->new_base = strdup(f->rebase)))
                                return moat_error_set(reterr, -ENOMEM, "cp");
                }
                return 0;
        }
        if (exists && src_is_dir)
                return moat_error_setx(reterr, -EISDIR, "cannot copy directory");
        if (!exists && !src_is_dir && asserts_directory(path))
                return moat_error_setx(reterr, -ENOENT, "no such directory");
        f->dst_dir = TAKE_PTR(dst_dir);
        f->old_base = TAKE_PTR(src_base);
        f->new_base = TAKE_PTR(dst_base);
        return 0;
}

static int from_start(struct from *f)
{
        int fds[2];
        int r;

        if (!f->dst) {
                f->out_fd = STDOUT_FILENO;
                return 0;
        }
        r = plan_from(f, &f->err);
        if (r < 0)
                return r;
        f->x.dir_fd = open(f->dst_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (f->x.dir_fd < 0)
                return moat_error_set(&f->err, errno, "open %s", f->dst_dir);
        f->x.old_base = f->old_base;
        f->x.dst_dir = f->dst_dir;
        f->x.new_base = f->new_base;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return moat_error_set(&f->err, errno, "pipe");
        f->pipe_r = fds[0];
        f->out_fd = fds[1];
        f->a = archive_read_new();
        if (!f->a || archive_read_support_format_tar(f->a) != ARCHIVE_OK)
                return moat_error_setx(&f->err, -ENOMEM, "cp: libarchive: out of memory");
        f->x.a = f->a;
        f->x.in_fd = f->pipe_r;
        r = -pthread_create(&f->thread, NULL, extract_thread, &f->x);
        if (r < 0)
                return moat_error_set(&f->err, r, "cp: thread");
        f->thread_started = true;
        return 0;
}

static int from_data(const char *data, size_t len, void *userdata)
{
        struct from *f = userdata;
        int r;

        if (!f->started) {
                f->started = true;
                r = from_start(f);
                if (r < 0)
                        return r;
        }
        f->copied += len;
        return write_all(f->out_fd, data, len);
}

static int copy_from(struct moat_client *client, const char *container, const char *src, const char *dst,
                     bool follow, bool progress, struct moat_error **reterr)
{
        _cleanup_free_ char *abs = NULL, *target = NULL, *resolved = NULL, *rebase = NULL;
        struct from f = { .out_fd = -EBADF, .pipe_r = -EBADF, .x = { .dir_fd = -EBADF } };
        struct stat st;
        int r;

        if (!streq(dst, "-")) {
                _cleanup_free_ char *clean = NULL, *dir = NULL;
                abs = local_abs(dst);
                clean = abs ? path_clean(abs) : NULL;
                if (!clean)
                        return moat_error_set(reterr, -ENOMEM, "cp");
                dir = strdup(clean);
                if (!dir)
                        return moat_error_set(reterr, -ENOMEM, "cp");
                if (stat(dirname(dir), &st) < 0 && errno == ENOENT) {
                        _cleanup_free_ char *d2 = strdup(clean);
                        return moat_error_setx(reterr, -ENOENT, "invalid output path: directory \"%s\" does not exist",
                                               d2 ? dirname(d2) : clean);
                }
                if (stat(clean, &st) == 0 && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                        return moat_error_setx(reterr, -EINVAL, "invalid output path: \"%s\" %s", clean,
                                               S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "got a device"
                                                                                          : "got an irregular file");
                f.dst = abs;
        }
        if (follow) {
                struct path_stat ps = {};
                _cleanup_error_ struct moat_error *err = NULL;
                r = container_stat(client, container, src, &ps, &err);
                if (r >= 0 && !strempty(ps.link_target)) {
                        _cleanup_free_ char *link = NULL;
                        if (ps.link_target[0] != '/') {
                                _cleanup_free_ char *d = NULL, *b = NULL;
                                if (split_dir_entry(src, &d, &b) < 0 ||
                                    asprintf(&link, "%s/%s", d, ps.link_target) < 0) {
                                        path_stat_clear(&ps);
                                        return moat_error_set(reterr, -ENOMEM, "cp");
                                }
                        } else
                                link = strdup(ps.link_target);
                        if (!link || rebase_name(src, link, &resolved, &rebase) < 0) {
                                path_stat_clear(&ps);
                                return moat_error_set(reterr, -ENOMEM, "cp");
                        }
                        src = resolved;
                }
                path_stat_clear(&ps);
        }
        f.src = src;
        f.rebase = rebase;
        f.t.want_header = STAT_HEADER;
        f.t.fn = from_data;
        f.t.userdata = &f;
        if (archive_target(container, src, NULL, &target) < 0)
                return moat_error_set(reterr, -ENOMEM, "cp");
        r = moat_client_transfer(client, "GET", target, &f.t, reterr);
        if (f.out_fd >= 0 && f.out_fd != STDOUT_FILENO)
                close(f.out_fd);
        if (f.thread_started) {
                pthread_join(f.thread, NULL);
                if (f.x.r < 0) {
                        moat_error_free(*reterr);
                        *reterr = TAKE_PTR(f.x.err);
                        r = f.x.r;
                }
        }
        if (f.err) {
                moat_error_free(*reterr);
                *reterr = TAKE_PTR(f.err);
                if (r >= 0)
                        r = -EIO;
        }
        if (r >= 0 && !f.started && f.dst)
                r = moat_error_setx(reterr, -EPROTO, "the daemon sent an empty archive");
        if (f.a)
                archive_read_free(f.a);
        if (!f.thread_started)
                safe_close(f.pipe_r);
        safe_close(f.x.dir_fd);
        for (size_t i = 0; i < f.x.n_dirs; i++)
                free(f.x.dirs[i]);
        free(f.x.dirs);
        free(f.x.dir_times);
        free(f.x.dir_nsec);
        moat_error_free(f.x.err);
        free(f.t.header);
        free(f.dst_dir);
        free(f.old_base);
        free(f.new_base);
        if (r >= 0 && progress && f.dst) {
                char size[32];
                cli_human_size4(f.copied, size, sizeof(size));
                fprintf(stderr, "Successfully copied %s to %s\n", size, dst);
        }
        return r < 0 ? r : 0;
}

/* ---- into the container ---- */

void *cli_pack_thread(void *userdata)
{
        struct cli_pack *p = userdata;
        struct archive *w = archive_write_new(), *d = archive_read_disk_new();
        struct archive_entry *e = NULL;
        size_t plen = strlen(p->path);
        char buf[64 * 1024];

        if (!w || !d || archive_write_set_format_pax_restricted(w) != ARCHIVE_OK ||
            archive_write_open_fd(w, p->out_fd) != ARCHIVE_OK) {
                p->r = moat_error_setx(&p->err, -ENOMEM, "cp: libarchive");
                goto out;
        }
        archive_read_disk_set_symlink_physical(d);
        archive_read_disk_set_behavior(d, ARCHIVE_READDISK_NO_XATTR | ARCHIVE_READDISK_NO_ACL |
                                                  ARCHIVE_READDISK_NO_FFLAGS);
        if (archive_read_disk_open(d, p->path) != ARCHIVE_OK) {
                p->r = moat_error_setx(&p->err, -EIO, "%s", archive_error_string(d));
                goto out;
        }
        for (;;) {
                _cleanup_free_ char *name = NULL;
                if (e)
                        archive_entry_free(e);
                e = archive_entry_new();
                if (!e) {
                        p->r = moat_error_set(&p->err, -ENOMEM, "cp");
                        break;
                }
                int r = archive_read_next_header2(d, e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN) {
                        p->r = moat_error_setx(&p->err, -EIO, "%s", archive_error_string(d));
                        break;
                }
                (void) archive_read_disk_descend(d);
                const char *full = archive_entry_pathname(e);
                const char *rel = full && strncmp(full, p->path, plen) == 0 ? full + plen : "";
                if (asprintf(&name, "%s%s", p->name, rel) < 0) {
                        p->r = moat_error_set(&p->err, -ENOMEM, "cp");
                        break;
                }
                archive_entry_set_pathname(e, name);
                if (archive_write_header(w, e) < ARCHIVE_WARN) {
                        p->r = moat_error_setx(&p->err, -EIO, "%s: %s", full, archive_error_string(w));
                        break;
                }
                if (archive_entry_filetype(e) != AE_IFREG)
                        continue;
                for (;;) {
                        ssize_t n = archive_read_data(d, buf, sizeof(buf));
                        if (n == 0)
                                break;
                        if (n < 0) {
                                p->r = moat_error_setx(&p->err, -EIO, "%s: %s", full, archive_error_string(d));
                                goto out;
                        }
                        if (archive_write_data(w, buf, (size_t) n) != n) {
                                p->r = moat_error_setx(&p->err, -EIO, "%s: %s", full, archive_error_string(w));
                                goto out;
                        }
                }
        }
out:
        if (e)
                archive_entry_free(e);
        if (w) {
                if (p->r >= 0 && archive_write_close(w) != ARCHIVE_OK)
                        p->r = moat_error_setx(&p->err, -EIO, "cp: %s", archive_error_string(w));
                archive_write_free(w);
        }
        if (d)
                archive_read_free(d);
        close(p->out_fd);
        p->out_fd = -EBADF;
        return NULL;
}

struct to {
        int in_fd;
        uint64_t copied;
};

static ssize_t to_read(char *buf, size_t len, void *userdata)
{
        struct to *t = userdata;
        for (;;) {
                ssize_t n = read(t->in_fd, buf, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n > 0)
                        t->copied += (uint64_t) n;
                return n < 0 ? -errno : n;
        }
}

static int stat_following(struct moat_client *client, const char *container, const char *path,
                          struct path_stat *ret, char **ret_path)
{
        _cleanup_error_ struct moat_error *err = NULL;
        int r = container_stat(client, container, path, ret, &err);
        *ret_path = strdup(path);
        if (!*ret_path)
                return -ENOMEM;
        if (r >= 0 && (ret->mode & GO_MODE_SYMLINK)) {
                char *link = NULL;
                if (ret->link_target[0] != '/') {
                        _cleanup_free_ char *d = NULL, *b = NULL;
                        if (split_dir_entry(path, &d, &b) < 0 || asprintf(&link, "%s/%s", d, ret->link_target) < 0)
                                return -ENOMEM;
                } else if (!(link = strdup(ret->link_target)))
                        return -ENOMEM;
                free(*ret_path);
                *ret_path = link;
                path_stat_clear(ret);
                moat_error_free(TAKE_PTR(err));
                r = container_stat(client, container, link, ret, &err);
        }
        if (r < 0)
                path_stat_clear(ret);
        return r == -ENOMEM ? r : 0;
}

static int copy_to(struct moat_client *client, const char *src, const char *container, const char *dst, bool follow,
                   bool archive_mode, bool progress, struct moat_error **reterr)
{
        _cleanup_free_ char *dst_path = NULL, *abs = NULL, *resolved = NULL, *rebase = NULL, *put_dir = NULL;
        _cleanup_free_ char *entry = NULL, *target = NULL, *extra = NULL;
        struct path_stat ds = {};
        struct to t = { .in_fd = STDIN_FILENO };
        struct cli_pack p = { .out_fd = -EBADF };
        pthread_t thread;
        bool thread_started = false;
        struct stat st;
        int r;

        if (stat_following(client, container, dst, &ds, &dst_path) < 0)
                return moat_error_set(reterr, -ENOMEM, "cp");
        bool dst_exists = ds.exists, dst_is_dir = ds.exists && (ds.mode & GO_MODE_DIR);
        path_stat_clear(&ds);

        if (streq(src, "-")) {
                if (!dst_is_dir)
                        return moat_error_setx(reterr, -ENOTDIR, "destination \"%s:%s\" must be a directory",
                                               container, dst);
                put_dir = TAKE_PTR(dst_path);
        } else {
                abs = local_abs(src);
                if (!abs)
                        return moat_error_set(reterr, -ENOMEM, "cp");
                /* ResolveHostSourcePath */
                if (follow) {
                        _cleanup_free_ char *real = realpath(abs, NULL);
                        if (!real)
                                return lstat_error(errno, abs, reterr);
                        if (rebase_name(abs, real, &resolved, &rebase) < 0)
                                return moat_error_set(reterr, -ENOMEM, "cp");
                } else {
                        _cleanup_free_ char *d = NULL, *real = NULL;
                        const char *slash = strrchr(abs, '/');
                        d = strndup(abs, (size_t) (slash - abs) + 1);
                        if (!d)
                                return moat_error_set(reterr, -ENOMEM, "cp");
                        real = realpath(d, NULL);
                        if (!real)
                                return lstat_error(errno, abs, reterr);
                        if (asprintf(&resolved, "%s/%s", streq(real, "/") ? "" : real, slash + 1) < 0)
                                return moat_error_set(reterr, -ENOMEM, "cp");
                        _cleanup_free_ char *ab = base_name(abs), *rb = base_name(resolved);
                        if (!ab || !rb)
                                return moat_error_set(reterr, -ENOMEM, "cp");
                        if (has_trailing_sep(abs) && !streq(ab, rb))
                                rebase = TAKE_PTR(ab);
                }
                if (lstat(resolved, &st) < 0)
                        return lstat_error(errno, resolved, reterr);
                bool src_is_dir = S_ISDIR(st.st_mode);
                _cleanup_free_ char *sd = NULL, *sb = NULL, *dd = NULL, *db = NULL;
                if (split_dir_entry(resolved, &sd, &sb) < 0 || split_dir_entry(dst_path, &dd, &db) < 0)
                        return moat_error_set(reterr, -ENOMEM, "cp");
                /* PrepareArchiveCopy */
                if (dst_exists && dst_is_dir) {
                        put_dir = TAKE_PTR(dst_path);
                        entry = strdup(rebase ? rebase : sb);
                } else if (dst_exists && src_is_dir)
                        return moat_error_setx(reterr, -EISDIR, "cannot copy directory");
                else if (!dst_exists && !src_is_dir && asserts_directory(dst))
                        return moat_error_setx(reterr, -ENOENT, "no such directory");
                else {
                        put_dir = TAKE_PTR(dd);
                        entry = TAKE_PTR(db);
                }
                if (!entry)
                        return moat_error_set(reterr, -ENOMEM, "cp");
                /* the disk reader walks the directory itself for "dir/." */
                if (streq(sb, ".")) {
                        size_t l = strlen(resolved);
                        if (l >= 2)
                                resolved[l - 2] = 0;
                        if (!*resolved)
                                strcpy(resolved, "/");
                }
                int fds[2];
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return moat_error_set(reterr, errno, "pipe");
                t.in_fd = fds[0];
                p.out_fd = fds[1];
                p.path = resolved;
                p.name = entry;
                r = -pthread_create(&thread, NULL, cli_pack_thread, &p);
                if (r < 0) {
                        close(fds[0]);
                        close(fds[1]);
                        return moat_error_set(reterr, r, "cp: thread");
                }
                thread_started = true;
        }
        if (asprintf(&extra, "&noOverwriteDirNonDir=true&copyUIDGID=%s", archive_mode ? "true" : "false") < 0 ||
            archive_target(container, put_dir, extra, &target) < 0)
                r = moat_error_set(reterr, -ENOMEM, "cp");
        else {
                struct moat_client_transfer tr = { .content_type = "application/x-tar", .read = to_read,
                                                   .read_data = &t };
                r = moat_client_transfer(client, "PUT", target, &tr, reterr);
                free(tr.header);
        }
        if (thread_started) {
                close(t.in_fd);  /* a writer still going sees EPIPE */
                pthread_join(thread, NULL);
                if (p.r < 0 && r >= 0) {
                        *reterr = TAKE_PTR(p.err);
                        r = p.r;
                }
                moat_error_free(p.err);
        }
        if (r >= 0 && progress) {
                char size[32];
                cli_human_size4(t.copied, size, sizeof(size));
                fprintf(stderr, "Successfully copied %s to %s:%s\n", size, container, dst);
        }
        return r < 0 ? r : 0;
}

/* splitCpArg: "container:path", or a local path (absolute, or starting
 * with ".", or without a colon). */
static const char *split_arg(char *arg, char **ret_container)
{
        char *colon;
        *ret_container = NULL;
        if (arg[0] == '/' || arg[0] == '.')
                return arg;
        colon = strchr(arg, ':');
        if (!colon)
                return arg;
        *colon = 0;
        *ret_container = arg;
        return colon + 1;
}

int cmd_cp(struct moat_cli *cli, int argc, char **argv, struct moat_error **reterr)
{
        static const struct option options[] = {
                { "archive", no_argument, NULL, 'a' },
                { "follow-link", no_argument, NULL, 'L' },
                { "quiet", no_argument, NULL, 'q' },
                {},
        };
        _cleanup_client_ struct moat_client *client = NULL;
        bool archive_mode = false, follow = false, quiet = false;
        char *src_container, *dst_container;
        int c, r;

        /* Only cp reads and writes tar members (base/locale.h); loading
         * the locale costs every other command 0.2-0.3 ms. */
        moat_locale_utf8_ctype();
        while ((c = getopt_long(argc, argv, ":aLq", options, NULL)) != -1) {
                switch (c) {
                case 'a':
                        archive_mode = true;
                        break;
                case 'L':
                        follow = true;
                        break;
                case 'q':
                        quiet = true;
                        break;
                default:
                        return moat_error_setx(reterr, -EINVAL, "unknown flag: %s", argv[optind - 1]);
                }
        }
        if (argc - optind != 2)
                return moat_error_setx(reterr, -EINVAL, "\"moat cp\" requires exactly 2 arguments.");
        const char *src = split_arg(argv[optind], &src_container);
        const char *dst = split_arg(argv[optind + 1], &dst_container);
        if (src_container && dst_container)
                return moat_error_setx(reterr, -EINVAL, "copying between containers is not supported");
        if (!src_container && !dst_container)
                return moat_error_setx(reterr, -EINVAL, "must specify at least one container source");
        if (strempty(src) || strempty(dst))
                return moat_error_setx(reterr, -EINVAL, "filepath can not be empty");
        if (strempty(src_container ? src_container : dst_container))
                return moat_error_setx(reterr, -EINVAL, "container name can not be empty");
        r = cli_client(cli, &client, reterr);
        if (r < 0)
                return r;
        (void) signal(SIGPIPE, SIG_IGN);
        bool progress = !quiet && isatty(STDERR_FILENO);
        if (src_container)
                return copy_from(client, src_container, src, dst, follow, progress && !streq(dst, "-"), reterr);
        return copy_to(client, src, dst_container, dst, follow, archive_mode, progress && !streq(src, "-"), reterr);
}
