/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * A container's files and processes from the outside (engine-archive.h):
 * docker cp, export, top, update and container prune.
 *
 * Why it is built this way:
 *  - One operation on a container's files holds the container's busy
 *    claim from the moment its root is opened to the end of the stream,
 *    so it cannot be started, stopped-and-unmounted or removed under the
 *    copy; a stopped container's root is mounted for the operation and
 *    unmounted after (container-fs.h).
 *  - Paths are docker's (moby's ResolvePath): cleaned lexically as
 *    absolute paths, every component but the last followed inside the
 *    container's root with openat2 RESOLVE_IN_ROOT, the last one not
 *    followed unless the path ends in "/" or "/.". What is then opened
 *    is opened relative to the parent's fd with O_NOFOLLOW, so no symlink
 *    swapped in meanwhile leads anywhere else.
 *  - Tar out: the image library's export (export.h) writes a directory's
 *    content with names relative to it and no entry for the directory
 *    itself, and nothing for a single file; docker cp wants the entry
 *    named by the path's base name first. So a directory's export stream
 *    is re-encoded here with libarchive (names and hardlink targets
 *    prefixed), and single entries are written here.
 *  - Tar in: the image library's contained unpacking (layer.h) does the
 *    writing; the client's archive passes through a libarchive filter
 *    here first that applies docker's rules layer.h does not know
 *    (noOverwriteDirNonDir, copyUIDGID ownership) and refuses what it
 *    would turn into overlayfs whiteouts (".wh." names).
 *  - The claim and the reference counting are containers.c's
 *    (engine-internal.h).
 */

#include "engine/engine-archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "engine/container-fs.h"
#include "engine/engine-internal.h"
#include "engine/engine-volumes.h"
#include "image/export.h"
#include "image/layer.h"
#include "runtime/runtime.h"

#define COPY_BUF (128 * 1024)
#define PATH_ARG_MAX 4096u
#define PASSWD_MAX (4u << 20)
#define PS_ARGS_MAX 64u
#define TRAILING_MAX (1u << 20)

/* ---- claim --------------------------------------------------------------------- */

static void release_locked(struct moat_engine *e, struct container *c)
{
        container_release_locked(e, c);
        container_unref_locked(c);
}

/* The container of a path operation: claimed, its root open. */
struct croot {
        struct moat_engine *e;
        struct container *c;
        char id[65];
        int dir_fd;
        int run_fd;         /* the run directory; -EBADF before a first start */
        int root_fd;
        bool mounted_here;
        bool readonly_rootfs;
        json_t *mounts;     /* inspect's Mounts */
        char *user;         /* Config.User */
};

static void croot_close(struct croot *cr)
{
        if (!cr->e)
                return;
        cr->root_fd = safe_close(cr->root_fd);
        if (cr->mounted_here && cr->dir_fd >= 0) {
                _cleanup_error_ struct moat_error *err = NULL;
                if (moat_container_fs_unmount(cr->dir_fd, &err) < 0)
                        engine_log(cr->e, 3, "container %s: %s", cr->id, err->msg);
        }
        cr->dir_fd = safe_close(cr->dir_fd);
        cr->run_fd = safe_close(cr->run_fd);
        pthread_mutex_lock(&cr->e->lock);
        release_locked(cr->e, cr->c);
        pthread_mutex_unlock(&cr->e->lock);
        json_decref(cr->mounts);
        free(cr->user);
        *cr = (struct croot) { .dir_fd = -EBADF, .run_fd = -EBADF, .root_fd = -EBADF };
}

static bool is_mount_root(int dir_fd, const char *name)
{
        struct statx stx;
        if (statx(dir_fd, name, AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
                return false;
        return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static int croot_open(struct moat_engine *e, const char *ref, struct croot *cr, struct moat_error **reterr)
{
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_free_ char *image_id = NULL;
        struct container *c;
        bool is_running;
        int r;

        *cr = (struct croot) { .dir_fd = -EBADF, .run_fd = -EBADF, .root_fd = -EBADF };
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r < 0) {
                pthread_mutex_unlock(&e->lock);
                return r;
        }
        c->refs++;
        while (c->busy && !c->removed)
                pthread_cond_wait(&e->changed, &e->lock);
        if (c->removed) {
                container_unref_locked(c);
                pthread_mutex_unlock(&e->lock);
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", ref);
        }
        c->busy = true;
        cr->e = e;
        cr->c = c;
        snprintf(cr->id, sizeof(cr->id), "%s", c->id);
        is_running = container_is_running(c);
        cr->mounts = c->mounts ? json_deep_copy(c->mounts) : json_array();
        cr->readonly_rootfs = json_is_true(json_object_get(c->host_config, "ReadonlyRootfs"));
        const char *user = json_string_value(json_object_get(c->config, "User"));
        cr->user = strdup(user ? user : "");
        image_id = strdup(c->image_id);
        pthread_mutex_unlock(&e->lock);
        if (!cr->mounts || !cr->user || !image_id) {
                r = moat_error_set(reterr, -ENOMEM, "container %s", cr->id);
                goto fail;
        }
        cr->dir_fd = openat(e->containers_fd, cr->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cr->dir_fd < 0) {
                r = moat_error_set(reterr, errno, "containers/%s", cr->id);
                goto fail;
        }
        cr->run_fd = engine_run_dir_open(e, cr->id, false, NULL);
        if (!is_running && !is_mount_root(cr->dir_fd, MOAT_CONTAINER_ROOTFS)) {
                r = moat_images_lookup(e->store, image_id, NULL, &img, reterr);
                if (r < 0) {
                        r = moat_error_wrap(reterr, r, "image %s of container %s", image_id, cr->id);
                        goto fail;
                }
                r = moat_container_fs_mount(e->store, img, cr->dir_fd, 0, reterr);
                if (r < 0)
                        goto fail;
                cr->mounted_here = true;
        }
        cr->root_fd = openat(cr->dir_fd, MOAT_CONTAINER_ROOTFS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cr->root_fd < 0) {
                r = moat_error_set(reterr, errno, "opening the root filesystem of container %s", cr->id);
                goto fail;
        }
        return 0;
fail:
        croot_close(cr);
        return r;
}

/* ---- paths --------------------------------------------------------------------------- */

static int openat2_in_root(int root, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        return moat_openat2(root, path, &how);
}

/* Go's filepath.Clean of "/" + path; *trailing: the path ended in "/" (1)
 * or "/." (2), as archive.PreserveTrailingDotOrSeparator keeps them. */
static int clean_abs(const char *path, char **ret, int *trailing, struct moat_error **reterr)
{
        size_t len = strnlen(path, PATH_ARG_MAX + 1);
        if (len == 0 || len > PATH_ARG_MAX)
                return moat_error_setx(reterr, -EINVAL, "path: empty or longer than %u bytes", PATH_ARG_MAX);
        *trailing = 0;
        if (len >= 2 && streq(path + len - 2, "/."))
                *trailing = 2;
        else if (streq(path, "."))
                *trailing = 2;
        else if (path[len - 1] == '/')
                *trailing = 1;
        _cleanup_free_ char *out = malloc(len + 2);
        _cleanup_free_ char *copy = strdup(path);
        if (!out || !copy)
                return moat_error_set(reterr, -ENOMEM, "path");
        size_t n = 0;
        out[n++] = '/';
        out[n] = '\0';
        for (char *save = NULL, *seg = strtok_r(copy, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
                if (streq(seg, "."))
                        continue;
                if (streq(seg, "..")) {
                        while (n > 1 && out[n - 1] != '/')
                                n--;
                        if (n > 1)
                                n--;
                        out[n] = '\0';
                        continue;
                }
                if (n > 1)
                        out[n++] = '/';
                size_t sl = strlen(seg);
                memcpy(out + n, seg, sl);
                n += sl;
                out[n] = '\0';
        }
        *ret = TAKE_PTR(out);
        return 0;
}

struct resolved {
        int base_fd;        /* what paths resolve in: the root or a mount's source */
        char *prefix;       /* the container path of base_fd ("" for the root) */
        bool read_only;
        char *abs;          /* cleaned container path */
        char *name;         /* docker's name for it: filepath.Base of the path */
        int parent_fd;      /* O_PATH: the directory holding the entry ... */
        char *leaf;         /* ... and its name there; */
        int self_fd;        /* or O_PATH of the entry itself (path ending in "/" or "/.", or a mount's root) */
        struct stat st;
};

static void resolved_done(struct resolved *rs)
{
        safe_close(rs->base_fd);
        safe_close(rs->parent_fd);
        safe_close(rs->self_fd);
        free(rs->prefix);
        free(rs->abs);
        free(rs->name);
        free(rs->leaf);
        *rs = (struct resolved) { .base_fd = -EBADF, .parent_fd = -EBADF, .self_fd = -EBADF };
}

/* The mount of the container holding abs (the deepest one), or NULL. */
static const json_t *mount_of(const json_t *mounts, const char *abs)
{
        const json_t *best = NULL, *m;
        size_t best_len = 0, i;

        json_array_foreach(mounts, i, m) {
                const char *d = json_string_value(json_object_get(m, "Destination"));
                size_t dl = d ? strlen(d) : 0;
                while (dl > 1 && d[dl - 1] == '/')
                        dl--;
                if (!d || dl == 0 || dl <= best_len)
                        continue;
                if (strncmp(abs, d, dl) == 0 && (abs[dl] == '\0' || abs[dl] == '/' || dl == 1)) {
                        best = m;
                        best_len = dl;
                }
        }
        return best;
}

/* Resolve path in the container as docker does (see the top). follow:
 * follow the last component too (the extraction directory of PUT). */
static int resolve(struct croot *cr, const char *path, bool follow, struct resolved *rs, struct moat_error **reterr)
{
        _cleanup_free_ char *rel = NULL;
        int trailing, r;

        *rs = (struct resolved) { .base_fd = -EBADF, .parent_fd = -EBADF, .self_fd = -EBADF };
        r = clean_abs(path, &rs->abs, &trailing, reterr);
        if (r < 0)
                return r;
        /* /etc/hostname, /etc/hosts and /etc/resolv.conf are the engine's
         * files bind-mounted over the image's (container-spec.c). */
        static const char *const etc_files[] = { "hostname", "hosts", "resolv.conf" };
        for (size_t i = 0; !follow && !trailing && i < ELEMENTSOF(etc_files); i++) {
                struct stat st;
                if (!startswith(rs->abs, "/etc/") || !streq(rs->abs + 5, etc_files[i]) ||
                    cr->run_fd < 0 || fstatat(cr->run_fd, etc_files[i], &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(st.st_mode))
                        continue;
                rs->base_fd = fcntl(cr->run_fd, F_DUPFD_CLOEXEC, 3);
                rs->parent_fd = fcntl(cr->run_fd, F_DUPFD_CLOEXEC, 3);
                rs->prefix = strdup("/etc");
                rs->name = strdup(etc_files[i]);
                rs->leaf = strdup(etc_files[i]);
                rs->st = st;
                rs->read_only = true;
                if (rs->base_fd < 0 || rs->parent_fd < 0)
                        return moat_error_set(reterr, errno, "container directory");
                if (!rs->prefix || !rs->name || !rs->leaf)
                        return moat_error_set(reterr, -ENOMEM, "path");
                return 0;
        }
        const json_t *m = mount_of(cr->mounts, rs->abs);
        const char *type = m ? json_string_value(json_object_get(m, "Type")) : NULL;
        if (m && type && (streq(type, "volume") || streq(type, "bind"))) {
                const char *src = json_string_value(json_object_get(m, "Source"));
                const char *dst = json_string_value(json_object_get(m, "Destination"));
                size_t dl = strlen(dst);
                while (dl > 1 && dst[dl - 1] == '/')
                        dl--;
                if (!src || src[0] != '/')
                        return moat_error_setx(reterr, -EIO, "the %s mount at %s has no source", type, dst);
                rs->base_fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (rs->base_fd < 0)
                        return moat_error_set(reterr, errno, "opening the source %s of the mount at %s", src, dst);
                rs->prefix = strndup(dst, dl);
                rs->read_only = json_is_false(json_object_get(m, "RW"));
                rel = strdup(rs->abs + (dl == 1 ? 0 : dl));
                if (rel && !*rel) {
                        free(rel);
                        rel = strdup("/");
                }
        } else if (m) {
                return moat_error_setx(reterr, -EOPNOTSUPP,
                                       "%s is on a %s mount of the container, which copying cannot reach",
                                       rs->abs, type ? type : "");
        } else {
                rs->base_fd = fcntl(cr->root_fd, F_DUPFD_CLOEXEC, 3);
                if (rs->base_fd < 0)
                        return moat_error_set(reterr, errno, "container root");
                rs->prefix = strdup("");
                rs->read_only = cr->readonly_rootfs;
                rel = strdup(rs->abs);
        }
        if (!rel || !rs->prefix)
                return moat_error_set(reterr, -ENOMEM, "path");

        /* docker's name: filepath.Base of the path as given (trailing "/." kept). */
        const char *slash = strrchr(rs->abs, '/');
        rs->name = strdup(trailing == 2 ? "." : streq(rs->abs, "/") ? "/" : slash + 1);
        if (!rs->name)
                return moat_error_set(reterr, -ENOMEM, "path");

        if (follow || trailing || streq(rel, "/")) {
                rs->self_fd = openat2_in_root(rs->base_fd, rel, O_PATH | (trailing ? O_DIRECTORY : 0));
                if (rs->self_fd < 0)
                        return rs->self_fd;
                if (fstat(rs->self_fd, &rs->st) < 0)
                        return negative_errno();
                return 0;
        }
        char *last = strrchr(rel, '/');
        rs->leaf = strdup(last + 1);
        if (!rs->leaf)
                return moat_error_set(reterr, -ENOMEM, "path");
        *(last == rel ? last + 1 : last) = '\0';
        rs->parent_fd = openat2_in_root(rs->base_fd, rel, O_PATH | O_DIRECTORY);
        if (rs->parent_fd < 0)
                return rs->parent_fd;
        if (fstatat(rs->parent_fd, rs->leaf, &rs->st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        return 0;
}

static int not_found(int r, const struct croot *cr, const char *path, struct moat_error **reterr)
{
        if (r == -ENOENT || r == -ENOTDIR)
                return moat_error_setx(reterr, -ENOENT, "Could not find the file %s in container %s", path, cr->id);
        return moat_error_set(reterr, r, "%s in container %s", path, cr->id);
}

/* Open the resolved entry for reading, never following a symlink. */
static int open_entry(const struct resolved *rs, int flags)
{
        int fd = rs->self_fd >= 0 ? openat(rs->self_fd, ".", flags | O_CLOEXEC)
                                  : openat(rs->parent_fd, rs->leaf, flags | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* ---- stat ------------------------------------------------------------------------------- */

/* Go's os.FileMode of a stat mode. */
static uint32_t go_file_mode(mode_t m)
{
        uint32_t g = m & 0777;

        if (S_ISDIR(m))
                g |= 1u << 31;
        else if (S_ISLNK(m))
                g |= 1u << 27;
        else if (S_ISBLK(m))
                g |= 1u << 26;
        else if (S_ISCHR(m))
                g |= (1u << 26) | (1u << 21);
        else if (S_ISFIFO(m))
                g |= 1u << 25;
        else if (S_ISSOCK(m))
                g |= 1u << 24;
        if (m & S_ISUID)
                g |= 1u << 23;
        if (m & S_ISGID)
                g |= 1u << 22;
        if (m & S_ISVTX)
                g |= 1u << 20;
        return g;
}

static int fd_host_path(int fd, char buf[static PATH_MAX])
{
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ssize_t k = readlink(proc, buf, PATH_MAX - 1);
        if (k <= 0)
                return -EIO;
        buf[k] = '\0';
        return 0;
}

/* Where a symlink leads inside the container (moby's linkTarget). */
static char *link_target(const struct resolved *rs)
{
        char root[PATH_MAX], target[PATH_MAX];
        _cleanup_free_ char *rel = NULL;
        char *out = NULL;
        const char *inside = rs->abs + strlen(rs->prefix);

        if (!*inside)
                inside = "/";
        _cleanup_close_ int fd = openat2_in_root(rs->base_fd, inside, O_PATH);
        if (fd >= 0 && fd_host_path(rs->base_fd, root) >= 0 && fd_host_path(fd, target) >= 0) {
                size_t rl = strlen(root);
                if (streq(root, "/"))
                        rl = 0;
                if (strncmp(target, root, rl) == 0 && (target[rl] == '/' || target[rl] == '\0')) {
                        const char *tail = target + rl;
                        if (asprintf(&out, "%s%s", rs->prefix, *tail ? tail : (*rs->prefix ? "" : "/")) < 0)
                                out = NULL;
                        return out;
                }
        }
        /* Dangling (or unmappable): the link's text, absolute in the container. */
        char text[PATH_MAX];
        ssize_t k = readlinkat(rs->parent_fd, rs->leaf, text, sizeof(text) - 1);
        if (k < 0)
                return strdup("");
        text[k] = '\0';
        if (text[0] == '/')
                return strdup(text);
        _cleanup_free_ char *dir = strdup(rs->abs);
        if (!dir)
                return NULL;
        char *slash = strrchr(dir, '/');
        *(slash == dir ? slash + 1 : slash) = '\0';
        if (asprintf(&rel, "%s/%s", dir, text) < 0)
                return NULL;
        int trailing;
        if (clean_abs(rel, &out, &trailing, NULL) < 0)
                return NULL;
        return out;
}

static json_t *stat_json(const struct resolved *rs)
{
        char mtime[64];
        struct tm tm;
        time_t secs = rs->st.st_mtim.tv_sec;
        _cleanup_free_ char *target = S_ISLNK(rs->st.st_mode) ? link_target(rs) : strdup("");

        if (!target)
                return NULL;
        gmtime_r(&secs, &tm);
        size_t n = strftime(mtime, sizeof(mtime), "%Y-%m-%dT%H:%M:%S", &tm);
        if (rs->st.st_mtim.tv_nsec) {
                n += (size_t) snprintf(mtime + n, sizeof(mtime) - n, ".%09ld", rs->st.st_mtim.tv_nsec);
                while (mtime[n - 1] == '0')
                        mtime[--n] = '\0';
        }
        snprintf(mtime + n, sizeof(mtime) - n, "Z");
        return json_pack("{s:s, s:I, s:I, s:s, s:s}", "name", rs->name, "size", (json_int_t) rs->st.st_size, "mode",
                         (json_int_t) go_file_mode(rs->st.st_mode), "mtime", mtime, "linkTarget", target);
}

int moat_engine_archive_stat(struct moat_engine *e, const char *ref, const char *path, json_t **ret_stat,
                             struct moat_error **reterr)
{
        struct croot cr;
        struct resolved rs = { .base_fd = -EBADF, .parent_fd = -EBADF, .self_fd = -EBADF };
        int r;

        r = croot_open(e, ref, &cr, reterr);
        if (r < 0)
                return r;
        r = resolve(&cr, path, false, &rs, reterr);
        if (r < 0)
                r = not_found(r, &cr, path, reterr);
        else if (!(*ret_stat = stat_json(&rs)))
                r = moat_error_set(reterr, -ENOMEM, "stat");
        resolved_done(&rs);
        croot_close(&cr);
        return r;
}

/* ---- tar out ------------------------------------------------------------------------------ */

struct moat_engine_archive {
        struct croot cr;
        struct resolved rs;
        bool whole_root;
};

void moat_engine_archive_close(struct moat_engine_archive *a)
{
        if (!a)
                return;
        resolved_done(&a->rs);
        croot_close(&a->cr);
        free(a);
}

int moat_engine_archive_open(struct moat_engine *e, const char *ref, const char *path,
                             struct moat_engine_archive **ret, json_t **ret_stat, struct moat_error **reterr)
{
        struct moat_engine_archive *a = calloc(1, sizeof(*a));
        int r;

        if (!a)
                return moat_error_set(reterr, -ENOMEM, "archive");
        a->rs = (struct resolved) { .base_fd = -EBADF, .parent_fd = -EBADF, .self_fd = -EBADF };
        r = croot_open(e, ref, &a->cr, reterr);
        if (r < 0) {
                free(a);
                return r;
        }
        r = resolve(&a->cr, path, false, &a->rs, reterr);
        if (r < 0)
                r = not_found(r, &a->cr, path, reterr);
        else if (ret_stat && !(*ret_stat = stat_json(&a->rs)))
                r = moat_error_set(reterr, -ENOMEM, "stat");
        if (r < 0) {
                moat_engine_archive_close(a);
                return r;
        }
        *ret = a;
        return 0;
}

int moat_engine_export_open(struct moat_engine *e, const char *ref, struct moat_engine_archive **ret,
                            struct moat_error **reterr)
{
        struct moat_engine_archive *a = calloc(1, sizeof(*a));
        int r;

        if (!a)
                return moat_error_set(reterr, -ENOMEM, "export");
        a->rs = (struct resolved) { .base_fd = -EBADF, .parent_fd = -EBADF, .self_fd = -EBADF };
        r = croot_open(e, ref, &a->cr, reterr);
        if (r < 0) {
                free(a);
                return r;
        }
        a->whole_root = true;
        *ret = a;
        return 0;
}

static void archive_writep(struct archive **a)
{
        if (*a)
                archive_write_free(*a);
}

static void archive_readp(struct archive **a)
{
        if (*a)
                archive_read_free(*a);
}

static void entryp(struct archive_entry **e)
{
        if (*e)
                archive_entry_free(*e);
}

static int tar_fail(struct archive *a, const char *what, struct moat_error **reterr)
{
        int errnum = archive_errno(a);
        return moat_error_setx(reterr, errnum > 0 ? -errnum : -EIO, "%s: %s", what,
                               archive_error_string(a) ? archive_error_string(a) : "archive error");
}

struct export_job {
        int dir_fd;
        int out_fd;
        int r;
        struct moat_error *err;
};

static void *export_thread(void *p)
{
        struct export_job *j = p;
        j->r = moat_export_tree(j->dir_fd, j->out_fd, NULL, NULL, &j->err);
        j->out_fd = safe_close(j->out_fd);
        return NULL;
}

static char *prefixed(const char *prefix, const char *name)
{
        char *out;
        if (asprintf(&out, "%s/%s", prefix, name) < 0)
                return NULL;
        return out;
}

/* The directory's own entry, then export.h's stream of its content with
 * every name (and hardlink target) under name/. */
static int write_dir(struct archive *out, int dir_fd, const char *name, const struct stat *st,
                     struct moat_error **reterr)
{
        _cleanup_(entryp) struct archive_entry *top = archive_entry_new();
        _cleanup_(archive_readp) struct archive *in = NULL;
        _cleanup_free_ char *top_name = NULL, *buf = NULL;
        struct export_job job = { .dir_fd = dir_fd, .out_fd = -EBADF };
        pthread_t t;
        int pipefd[2], r = 0;

        if (!top || asprintf(&top_name, "%s/", name) < 0 || !(buf = malloc(COPY_BUF)))
                return moat_error_set(reterr, -ENOMEM, "archive");
        archive_entry_copy_stat(top, st);
        archive_entry_set_pathname(top, top_name);
        if (archive_write_header(out, top) != ARCHIVE_OK)
                return tar_fail(out, "writing the archive", reterr);

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return moat_error_set(reterr, errno, "pipe");
        job.out_fd = pipefd[1];
        if ((r = pthread_create(&t, NULL, export_thread, &job)) != 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return moat_error_set(reterr, r, "starting the export");
        }
        in = archive_read_new();
        if (!in || archive_read_support_format_tar(in) != ARCHIVE_OK ||
            archive_read_open_fd(in, pipefd[0], COPY_BUF) != ARCHIVE_OK) {
                r = in ? tar_fail(in, "reading the export", reterr) : moat_error_set(reterr, -ENOMEM, "archive");
                goto out;
        }
        for (;;) {
                struct archive_entry *ent;
                int k = archive_read_next_header(in, &ent);
                if (k == ARCHIVE_EOF)
                        break;
                if (k != ARCHIVE_OK) {
                        r = tar_fail(in, "reading the export", reterr);
                        goto out;
                }
                _cleanup_free_ char *pname = prefixed(name, archive_entry_pathname(ent));
                const char *hl = archive_entry_hardlink(ent);
                _cleanup_free_ char *hname = hl ? prefixed(name, hl) : NULL;
                if (!pname || (hl && !hname)) {
                        r = moat_error_set(reterr, -ENOMEM, "archive");
                        goto out;
                }
                archive_entry_set_pathname(ent, pname);
                if (hl)
                        archive_entry_set_hardlink(ent, hname);
                if (archive_write_header(out, ent) != ARCHIVE_OK) {
                        r = tar_fail(out, "writing the archive", reterr);
                        goto out;
                }
                for (;;) {
                        la_ssize_t n = archive_read_data(in, buf, COPY_BUF);
                        if (n == 0)
                                break;
                        if (n < 0) {
                                r = tar_fail(in, "reading the export", reterr);
                                goto out;
                        }
                        if (archive_write_data(out, buf, (size_t) n) != n) {
                                r = tar_fail(out, "writing the archive", reterr);
                                goto out;
                        }
                }
        }
out:
        archive_readp(&in);
        in = NULL;
        close(pipefd[0]); /* an export still writing ends with EPIPE */
        pthread_join(t, NULL);
        if (r >= 0 && job.r < 0)
                r = moat_error_wrap(reterr, job.r, "%s", job.err ? job.err->msg : "export");
        moat_error_free(job.err);
        return r;
}

static int write_single(struct archive *out, const struct resolved *rs, struct moat_error **reterr)
{
        _cleanup_(entryp) struct archive_entry *ent = archive_entry_new();
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;

        if (!ent)
                return moat_error_set(reterr, -ENOMEM, "archive");
        if (S_ISREG(rs->st.st_mode)) {
                fd = open_entry(rs, O_RDONLY);
                if (fd < 0)
                        return moat_error_set(reterr, fd, "opening %s", rs->abs);
                if (fstat(fd, &st) < 0)
                        return moat_error_set(reterr, errno, "%s", rs->abs);
        } else
                st = rs->st;
        archive_entry_copy_stat(ent, &st);
        archive_entry_set_pathname(ent, rs->name);
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t k = readlinkat(rs->parent_fd, rs->leaf, target, sizeof(target) - 1);
                if (k < 0)
                        return moat_error_set(reterr, errno, "reading the symlink %s", rs->abs);
                target[k] = '\0';
                archive_entry_set_symlink(ent, target);
        } else if (S_ISSOCK(st.st_mode))
                return moat_error_setx(reterr, -EINVAL, "%s is a socket, which a tar archive cannot hold", rs->abs);
        if (archive_write_header(out, ent) != ARCHIVE_OK)
                return tar_fail(out, "writing the archive", reterr);
        if (fd < 0)
                return 0;
        if (!(buf = malloc(COPY_BUF)))
                return moat_error_set(reterr, -ENOMEM, "archive");
        /* Exactly the size of the header: cut or zero-padded if it changes. */
        for (off_t left = st.st_size; left > 0;) {
                ssize_t n = read(fd, buf, (size_t) (left < COPY_BUF ? left : COPY_BUF));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return moat_error_set(reterr, errno, "reading %s", rs->abs);
                if (n == 0) {
                        n = left < COPY_BUF ? left : COPY_BUF;
                        memset(buf, 0, (size_t) n);
                }
                if (archive_write_data(out, buf, (size_t) n) != n)
                        return tar_fail(out, "writing the archive", reterr);
                left -= n;
        }
        return 0;
}

int moat_engine_archive_write(struct moat_engine_archive *a, int out_fd, struct moat_error **reterr)
{
        _cleanup_(archive_writep) struct archive *out = NULL;
        _cleanup_close_ int dir_fd = -EBADF;
        int r;

        if (a->whole_root) {
                r = moat_export_tree(a->cr.root_fd, out_fd, NULL, NULL, reterr);
                return r < 0 ? moat_error_wrap(reterr, r, "exporting container %s", a->cr.id) : 0;
        }
        out = archive_write_new();
        if (!out || archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
            archive_write_add_filter_none(out) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(out, 1) != ARCHIVE_OK ||
            archive_write_open_fd(out, out_fd) != ARCHIVE_OK)
                return out ? tar_fail(out, "archive", reterr) : moat_error_set(reterr, -ENOMEM, "archive");
        if (S_ISDIR(a->rs.st.st_mode)) {
                dir_fd = open_entry(&a->rs, O_RDONLY | O_DIRECTORY);
                if (dir_fd < 0)
                        return moat_error_set(reterr, dir_fd, "opening %s", a->rs.abs);
                r = write_dir(out, dir_fd, streq(a->rs.name, "/") ? "." : a->rs.name, &a->rs.st, reterr);
        } else
                r = write_single(out, &a->rs, reterr);
        if (r < 0)
                return r;
        if (archive_write_close(out) != ARCHIVE_OK)
                return tar_fail(out, "writing the archive", reterr);
        return 0;
}

/* ---- tar in ---------------------------------------------------------------------------------- */

/* uid and gid of name (or number) in the container's passwd or group. */
static int lookup_id(int root_fd, const char *file, const char *name, uint32_t *ret_id, uint32_t *ret_gid,
                     struct moat_error **reterr)
{
        _cleanup_close_ int fd = openat2_in_root(root_fd, file, O_RDONLY);
        _cleanup_free_ char *text = NULL;
        size_t len;

        if (fd < 0 || read_full_fd(fd, PASSWD_MAX, &text, &len) < 0)
                return moat_error_setx(reterr, -ENOENT, "unable to find user %s: no matching entries in %s file", name,
                                       file);
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char *f[4] = {};
                char *p = line;
                for (int i = 0; i < 4 && p; i++) {
                        f[i] = p;
                        p = strchr(p, ':');
                        if (p)
                                *p++ = '\0';
                }
                if (!f[0] || !f[2] || !streq(f[0], name))
                        continue;
                int v;
                if (safe_atoi(f[2], &v) < 0 || v < 0)
                        continue;
                *ret_id = (uint32_t) v;
                if (ret_gid && f[3] && safe_atoi(f[3], &v) >= 0 && v >= 0)
                        *ret_gid = (uint32_t) v;
                return 0;
        }
        return moat_error_setx(reterr, -ENOENT, "unable to find user %s: no matching entries in %s file", name, file);
}

/* Config.User ("", "name", "uid", "user:group") to numbers in the
 * container, as docker's copyUIDGID does. */
static int container_user(const struct croot *cr, uint32_t *ret_uid, uint32_t *ret_gid, struct moat_error **reterr)
{
        _cleanup_free_ char *u = strdup(cr->user);
        char *g;
        int v, r;

        *ret_uid = *ret_gid = 0;
        if (!u)
                return moat_error_set(reterr, -ENOMEM, "user");
        if (!*u)
                return 0;
        g = strchr(u, ':');
        if (g)
                *g++ = '\0';
        if (safe_atoi(u, &v) >= 0 && v >= 0) {
                *ret_uid = (uint32_t) v;
                uint32_t ignored;
                (void) !lookup_id(cr->root_fd, "/etc/passwd", u, &ignored, ret_gid, NULL);
        } else if ((r = lookup_id(cr->root_fd, "/etc/passwd", u, ret_uid, ret_gid, reterr)) < 0)
                return r;
        if (g && *g) {
                if (safe_atoi(g, &v) >= 0 && v >= 0)
                        *ret_gid = (uint32_t) v;
                else if ((r = lookup_id(cr->root_fd, "/etc/group", g, ret_gid, NULL, reterr)) < 0)
                        return r;
        }
        return 0;
}

struct unpack_job {
        int in_fd;
        int dir_fd;
        int r;
        struct moat_error *err;
};

static void *unpack_thread(void *p)
{
        struct unpack_job *j = p;
        struct moat_layer_options o = { .allow_devices = true, .keep_ownership = true };
        j->r = moat_layer_unpack(j->in_fd, j->dir_fd, &o, NULL, &j->err);
        j->in_fd = safe_close(j->in_fd); /* a writer still writing gets EPIPE */
        return NULL;
}

struct put_rules {
        int dir_fd;
        bool no_overwrite_dir_non_dir;
        bool chown;
        uint32_t uid, gid;
};

/* docker's rules on one entry of the client's archive. */
static int check_entry(const struct put_rules *pr, struct archive_entry *ent, struct moat_error **reterr)
{
        const char *name = archive_entry_pathname(ent);
        if (!name)
                return moat_error_setx(reterr, -EINVAL, "archive entry without a name");
        for (const char *p = name; p && *p; p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL)
                if (startswith(p, ".wh."))
                        return moat_error_setx(reterr, -EOPNOTSUPP,
                                               "archive entry \"%.300s\": names starting with \".wh.\" are not supported",
                                               name);
        if (pr->chown) {
                archive_entry_set_uid(ent, pr->uid);
                archive_entry_set_gid(ent, pr->gid);
                archive_entry_set_uname(ent, NULL);
                archive_entry_set_gname(ent, NULL);
        }
        if (!pr->no_overwrite_dir_non_dir)
                return 0;
        bool is_dir = archive_entry_filetype(ent) == AE_IFDIR && !archive_entry_hardlink(ent);
        _cleanup_close_ int fd = openat2_in_root(pr->dir_fd, name, O_PATH | O_NOFOLLOW);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0)
                return 0;
        if (S_ISDIR(st.st_mode) && !is_dir)
                return moat_error_setx(reterr, -EINVAL, "cannot overwrite directory \"%.300s\" with non-directory \"%.300s\"",
                                       name, name);
        if (!S_ISDIR(st.st_mode) && is_dir)
                return moat_error_setx(reterr, -EINVAL, "cannot overwrite non-directory \"%.300s\" with directory \"%.300s\"",
                                       name, name);
        return 0;
}

/* Pass the client's archive (any compression libarchive reads) to out as
 * a plain tar, applying pr. */
static int filter_archive(int in_fd, int out_fd, const struct put_rules *pr, struct moat_error **reterr)
{
        _cleanup_(archive_readp) struct archive *in = archive_read_new();
        _cleanup_(archive_writep) struct archive *out = archive_write_new();
        _cleanup_free_ char *buf = malloc(COPY_BUF);

        if (!in || !out || !buf)
                return moat_error_set(reterr, -ENOMEM, "archive");
        if (archive_read_support_format_tar(in) != ARCHIVE_OK || archive_read_support_filter_all(in) != ARCHIVE_OK ||
            archive_read_open_fd(in, in_fd, COPY_BUF) != ARCHIVE_OK)
                return tar_fail(in, "reading the archive", reterr);
        if (archive_write_set_format_pax_restricted(out) != ARCHIVE_OK ||
            archive_write_add_filter_none(out) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(out, 1) != ARCHIVE_OK ||
            archive_write_open_fd(out, out_fd) != ARCHIVE_OK)
                return tar_fail(out, "archive", reterr);
        for (;;) {
                struct archive_entry *ent;
                int k = archive_read_next_header(in, &ent);
                if (k == ARCHIVE_EOF)
                        break;
                if (k != ARCHIVE_OK && k != ARCHIVE_WARN)
                        return tar_fail(in, "reading the archive", reterr);
                int r = check_entry(pr, ent, reterr);
                if (r < 0)
                        return r;
                if (archive_write_header(out, ent) != ARCHIVE_OK)
                        return tar_fail(out, "extracting", reterr);
                for (;;) {
                        la_ssize_t n = archive_read_data(in, buf, COPY_BUF);
                        if (n == 0)
                                break;
                        if (n < 0)
                                return tar_fail(in, "reading the archive", reterr);
                        if (archive_write_data(out, buf, (size_t) n) != n)
                                return tar_fail(out, "extracting", reterr);
                }
        }
        if (archive_write_close(out) != ARCHIVE_OK)
                return tar_fail(out, "extracting", reterr);
        /* What follows the archive's end (padding to the record size) is
         * read too: the request is complete only when its body is. */
        uint64_t trailing = 0;
        for (;;) {
                ssize_t n = read(in_fd, buf, COPY_BUF);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return moat_error_set(reterr, errno, "reading the archive");
                if (n == 0)
                        return 0;
                trailing += (uint64_t) n;
                if (trailing > TRAILING_MAX)
                        return moat_error_setx(reterr, -EINVAL, "more than %u bytes after the end of the archive",
                                               TRAILING_MAX);
        }
}

int moat_engine_archive_extract(struct moat_engine *e, const char *ref, const char *path, int in_fd,
                                bool no_overwrite_dir_non_dir, bool copy_uid_gid, struct moat_error **reterr)
{
        struct croot cr;
        struct resolved rs = { .base_fd = -EBADF, .parent_fd = -EBADF, .self_fd = -EBADF };
        _cleanup_close_ int dir_fd = -EBADF;
        struct unpack_job job = { .in_fd = -EBADF };
        struct put_rules pr = { .no_overwrite_dir_non_dir = no_overwrite_dir_non_dir, .chown = copy_uid_gid };
        _cleanup_error_ struct moat_error *ferr = NULL;
        pthread_t t;
        int pipefd[2], r;

        r = croot_open(e, ref, &cr, reterr);
        if (r < 0)
                return r;
        r = resolve(&cr, path, true, &rs, reterr);
        if (r < 0) {
                r = not_found(r, &cr, path, reterr);
                goto out;
        }
        if (!S_ISDIR(rs.st.st_mode)) {
                r = moat_error_setx(reterr, -EINVAL, "extraction point is not a directory");
                goto out;
        }
        if (rs.read_only) {
                r = moat_error_setx(reterr, -EACCES, "container rootfs is marked read-only");
                goto out;
        }
        if (copy_uid_gid && (r = container_user(&cr, &pr.uid, &pr.gid, reterr)) < 0)
                goto out;
        dir_fd = open_entry(&rs, O_RDONLY | O_DIRECTORY);
        if (dir_fd < 0) {
                r = moat_error_set(reterr, dir_fd, "opening %s", rs.abs);
                goto out;
        }
        pr.dir_fd = dir_fd;
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                r = moat_error_set(reterr, errno, "pipe");
                goto out;
        }
        job.in_fd = pipefd[0];
        job.dir_fd = dir_fd;
        if ((r = pthread_create(&t, NULL, unpack_thread, &job)) != 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                r = moat_error_set(reterr, r, "starting the extraction");
                goto out;
        }
        r = filter_archive(in_fd, pipefd[1], &pr, &ferr);
        close(pipefd[1]);
        pthread_join(t, NULL);
        /* The unpacker's error explains a broken pipe better. */
        if (job.r < 0)
                r = moat_error_wrap(reterr, job.r, "%s", job.err ? job.err->msg : "extracting");
        else if (r < 0) {
                *reterr = TAKE_PTR(ferr);
                if (r == -EINVAL || r == -EOPNOTSUPP)
                        ; /* docker's rules: the client's fault */
                else if (!*reterr)
                        r = moat_error_set(reterr, r, "extracting");
        }
        moat_error_free(job.err);
out:
        resolved_done(&rs);
        croot_close(&cr);
        return r;
}

/* ---- top ------------------------------------------------------------------------------------ */

int moat_engine_top(struct moat_engine *e, const char *ref, const char *ps_args, json_t **ret,
                    struct moat_error **reterr)
{
        struct moat_runtime rt = { .root = e->runtime_root };
        _cleanup_free_ pid_t *pids = NULL;
        _cleanup_free_ char *id = NULL, *args_copy = NULL;
        _cleanup_strv_free_ char **lines = NULL;
        char *argv[PS_ARGS_MAX + 1] = {};
        struct container *c;
        size_t n = 0, na = 0;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0 && c->st.state == MOAT_CONTAINER_RESTARTING)
                r = moat_error_setx(reterr, -EBUSY, "Container %s is restarting, wait until the container is running",
                                    c->id);
        else if (r >= 0 && !container_is_running(c))
                r = moat_error_setx(reterr, -EBUSY, "Container %s is not running", c->id);
        if (r >= 0 && !(id = strdup(c->id)))
                r = moat_error_set(reterr, -ENOMEM, "container");
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        if (ps_args && *ps_args) {
                if (strlen(ps_args) > PATH_ARG_MAX)
                        return moat_error_setx(reterr, -EINVAL, "ps_args: longer than %u bytes", PATH_ARG_MAX);
                if (!(args_copy = strdup(ps_args)))
                        return moat_error_set(reterr, -ENOMEM, "ps_args");
                for (char *save = NULL, *w = strtok_r(args_copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                        if (na >= PS_ARGS_MAX)
                                return moat_error_setx(reterr, -EINVAL, "ps_args: more than %u words", PS_ARGS_MAX);
                        argv[na++] = w;
                }
        }
        r = moat_container_pids(&rt, id, &pids, &n, reterr);
        if (r < 0)
                return r;
        r = moat_ps_table(argv, pids, n, &lines, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "Error running ps");

        json_t *titles = json_array(), *procs = json_array();
        size_t n_titles = 0;
        for (size_t i = 0; titles && procs && lines[i]; i++) {
                json_t *row = i == 0 ? titles : json_array();
                const char *p = lines[i];
                size_t col = 0;
                while (row) {
                        while (*p == ' ' || *p == '\t')
                                p++;
                        if (!*p)
                                break;
                        /* The last title takes the rest of the line (COMMAND has spaces). */
                        size_t len = i > 0 && col + 1 >= n_titles ? strlen(p) : strcspn(p, " \t");
                        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                                len--;
                        json_array_append_new(row, json_stringn(p, len));
                        p += len;
                        col++;
                }
                if (i == 0)
                        n_titles = json_array_size(titles);
                else if (row)
                        json_array_append_new(procs, row);
        }
        *ret = json_pack("{s:o, s:o}", "Titles", titles ? titles : json_array(), "Processes",
                         procs ? procs : json_array());
        if (!*ret)
                return moat_error_set(reterr, -ENOMEM, "top");
        return 0;
}

/* ---- update ------------------------------------------------------------------------------------ */

/* body[key] as an integer when present and not null. */
static int get_int(const json_t *body, const char *key, bool *has, int64_t *ret, struct moat_error **reterr)
{
        json_t *v = json_object_get(body, key);
        *has = v && !json_is_null(v);
        if (!*has)
                return 0;
        if (!json_is_integer(v))
                return moat_error_setx(reterr, -EINVAL, "%s: must be an integer", key);
        *ret = json_integer_value(v);
        return 0;
}

static int get_str(const json_t *body, const char *key, const char **ret, struct moat_error **reterr)
{
        json_t *v = json_object_get(body, key);
        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || json_string_length(v) > 4096)
                return moat_error_setx(reterr, -EINVAL, "%s: must be a string", key);
        *ret = json_string_value(v);
        return 0;
}

int moat_engine_update(struct moat_engine *e, const char *ref, const json_t *body, json_t **ret_warnings,
                       struct moat_error **reterr)
{
        static const char *const int_keys[] = { "Memory",    "MemorySwap", "MemoryReservation", "NanoCpus",
                                                "CpuShares", "CpuQuota",   "CpuPeriod",         "PidsLimit",
                                                "BlkioWeight" };
        int64_t v[ELEMENTSOF(int_keys)] = {};
        bool has[ELEMENTSOF(int_keys)] = {};
        enum { MEM, SWAP, RES, NANO, SHARES, QUOTA, PERIOD, PIDS, BLKIO };
        const char *cpus, *mems;
        struct moat_runtime rt = { .root = e->runtime_root };
        struct container *c;
        int r;

        if (!json_is_object(body))
                return moat_error_setx(reterr, -EINVAL, "update: the body must be a JSON object");
        for (size_t i = 0; i < ELEMENTSOF(int_keys); i++)
                if ((r = get_int(body, int_keys[i], &has[i], &v[i], reterr)) < 0)
                        return r;
        if ((r = get_str(body, "CpusetCpus", &cpus, reterr)) < 0 || (r = get_str(body, "CpusetMems", &mems, reterr)) < 0)
                return r;
        /* 0 means "unchanged" for docker's update, except PidsLimit (0 and -1: unlimited). */
        for (size_t i = 0; i < ELEMENTSOF(int_keys); i++)
                if (i != PIDS && has[i] && v[i] == 0)
                        has[i] = false;
        if (cpus && !*cpus)
                cpus = NULL;
        if (mems && !*mems)
                mems = NULL;
        if (has[MEM] && v[MEM] < 6 * 1024 * 1024)
                return moat_error_setx(reterr, -EINVAL, "Minimum memory limit allowed is 6MB");
        if (has[SWAP] && v[SWAP] < -1)
                return moat_error_setx(reterr, -EINVAL, "MemorySwap: must be -1 (unlimited) or a size");
        if (has[RES] && v[RES] < 6 * 1024 * 1024)
                return moat_error_setx(reterr, -EINVAL, "Minimum memory reservation allowed is 6MB");
        if (has[NANO] && (has[PERIOD] || has[QUOTA]))
                return moat_error_setx(reterr, -EINVAL, "Conflicting options: Nano CPUs and CPU %s cannot both be set",
                                       has[PERIOD] ? "Period" : "Quota");
        if (has[NANO]) {
                long ncpus = sysconf(_SC_NPROCESSORS_ONLN);
                if (v[NANO] < 0 || v[NANO] > (int64_t) ncpus * 1000000000)
                        return moat_error_setx(reterr, -EINVAL,
                                               "Range of CPUs is from 0.01 to %ld.00, as there are only %ld CPUs available",
                                               ncpus, ncpus);
        }
        if (has[PERIOD] && (v[PERIOD] < 1000 || v[PERIOD] > 1000000))
                return moat_error_setx(reterr, -EINVAL,
                                       "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        if (has[QUOTA] && v[QUOTA] > 0 && v[QUOTA] < 1000)
                return moat_error_setx(reterr, -EINVAL, "CPU cfs quota can not be less than 1ms (i.e. 1000)");
        if (has[BLKIO] && (v[BLKIO] < 10 || v[BLKIO] > 1000))
                return moat_error_setx(reterr, -EINVAL, "Range of blkio weight is from 10 to 1000");
        if (has[SHARES] && v[SHARES] < 0)
                return moat_error_setx(reterr, -EINVAL, "CpuShares: must not be negative");
        json_t *policy = json_object_get(body, "RestartPolicy");
        const char *policy_name = NULL;
        if (json_is_object(policy)) {
                json_t *name = json_object_get(policy, "Name"), *max = json_object_get(policy, "MaximumRetryCount");
                policy_name = json_string_value(name);
                if (name && !json_is_null(name) && !policy_name)
                        return moat_error_setx(reterr, -EINVAL, "RestartPolicy.Name: must be a string");
                if (policy_name && *policy_name && !streq(policy_name, "no") && !streq(policy_name, "always") &&
                    !streq(policy_name, "unless-stopped") && !streq(policy_name, "on-failure"))
                        return moat_error_setx(reterr, -EINVAL, "invalid restart policy: unknown policy '%.100s'; use one "
                                               "of 'no', 'always', 'on-failure', or 'unless-stopped'", policy_name);
                if (max && !json_is_null(max) && (!json_is_integer(max) || json_integer_value(max) < 0))
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid restart policy: maximum retry count must be a positive integer");
                if (json_integer_value(max) > 0 && (!policy_name || !streq(policy_name, "on-failure")))
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid restart policy: maximum retry count can only be used with 'on-failure'");
                if (!policy_name || !*policy_name)
                        policy = NULL;
        } else if (policy && !json_is_null(policy))
                return moat_error_setx(reterr, -EINVAL, "RestartPolicy: must be an object");
        else
                policy = NULL;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r < 0)
                goto out;
        json_t *hc = c->host_config;
        int64_t cur_swap = json_integer_value(json_object_get(hc, "MemorySwap"));
        if (has[MEM] && !has[SWAP] && cur_swap > 0 && v[MEM] > cur_swap) {
                r = moat_error_setx(reterr, -EINVAL, "Memory limit should be smaller than already set memoryswap limit, "
                                                     "update the memoryswap at the same time");
                goto out;
        }
        if (has[SWAP] && v[SWAP] > 0 && v[SWAP] < (has[MEM] ? v[MEM] : json_integer_value(json_object_get(hc, "Memory")))) {
                r = moat_error_setx(reterr, -EINVAL,
                                    "Minimum memoryswap limit should be larger than memory limit, see usage");
                goto out;
        }
        if (has[NANO] && (json_integer_value(json_object_get(hc, "CpuQuota")) > 0 ||
                          json_integer_value(json_object_get(hc, "CpuPeriod")) > 0)) {
                r = moat_error_setx(reterr, -EINVAL,
                                    "Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set");
                goto out;
        }
        if ((has[QUOTA] || has[PERIOD]) && json_integer_value(json_object_get(hc, "NanoCpus")) > 0) {
                r = moat_error_setx(reterr, -EINVAL,
                                    "Conflicting options: CPU Quota/Period cannot be updated as NanoCPUs has already been set");
                goto out;
        }
        if (policy && json_is_true(json_object_get(hc, "AutoRemove"))) {
                r = moat_error_setx(reterr, -EINVAL,
                                    "Restart policy cannot be updated because AutoRemove is enabled for the container");
                goto out;
        }

        if (container_is_running(c) && c->st.pid > 0) {
                json_t *res = json_object(), *mem = json_object(), *cpu = json_object();
                if (has[MEM])
                        json_object_set_new(mem, "limit", json_integer(v[MEM]));
                if (has[SWAP])
                        json_object_set_new(mem, "swap", json_integer(v[SWAP]));
                if (has[RES])
                        json_object_set_new(mem, "reservation", json_integer(v[RES]));
                if (has[SHARES])
                        json_object_set_new(cpu, "shares", json_integer(v[SHARES]));
                if (has[NANO]) {
                        json_object_set_new(cpu, "period", json_integer(100000));
                        json_object_set_new(cpu, "quota", json_integer(v[NANO] * 100000 / 1000000000));
                }
                if (has[QUOTA])
                        json_object_set_new(cpu, "quota", json_integer(v[QUOTA]));
                if (has[PERIOD])
                        json_object_set_new(cpu, "period", json_integer(v[PERIOD]));
                if (cpus)
                        json_object_set_new(cpu, "cpus", json_string(cpus));
                if (mems)
                        json_object_set_new(cpu, "mems", json_string(mems));
                if (json_object_size(mem))
                        json_object_set(res, "memory", mem);
                if (json_object_size(cpu))
                        json_object_set(res, "cpu", cpu);
                if (has[PIDS])
                        json_object_set_new(res, "pids", json_pack("{s:I}", "limit", (json_int_t) (v[PIDS] > 0 ? v[PIDS] : -1)));
                if (has[BLKIO])
                        json_object_set_new(res, "blockIO", json_pack("{s:I}", "weight", (json_int_t) v[BLKIO]));
                json_decref(mem);
                json_decref(cpu);
                if (json_object_size(res) > 0)
                        r = moat_container_update(&rt, c->id, res, reterr);
                json_decref(res);
                if (r < 0) {
                        r = moat_error_wrap(reterr, r, "Cannot update container %s", c->id);
                        goto out;
                }
        }
        for (size_t i = 0; i < ELEMENTSOF(int_keys); i++)
                if (has[i])
                        json_object_set_new(hc, int_keys[i], json_integer(v[i]));
        if (cpus)
                json_object_set_new(hc, "CpusetCpus", json_string(cpus));
        if (mems)
                json_object_set_new(hc, "CpusetMems", json_string(mems));
        if (policy)
                json_object_set_new(hc, "RestartPolicy",
                                    json_pack("{s:s, s:I}", "Name", policy_name, "MaximumRetryCount",
                                              (json_int_t) json_integer_value(json_object_get(policy, "MaximumRetryCount"))));
        r = container_save_locked(e, c, reterr);
        if (r >= 0)
                event_locked(e, c, "update", NULL);
out:
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        *ret_warnings = json_array();
        return *ret_warnings ? 0 : moat_error_set(reterr, -ENOMEM, "update");
}

/* ---- prune ---------------------------------------------------------------------------------------- */

static size_t filter_values(const json_t *filters, const char *key, const char *out[64])
{
        json_t *v = json_object_get(filters, key), *x;
        size_t n = 0, i;
        const char *k;

        if (json_is_object(v)) {
                json_object_foreach(v, k, x)
                        if (n < 64 && json_is_true(x))
                                out[n++] = k;
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, x)
                        if (n < 64 && json_is_string(x))
                                out[n++] = json_string_value(x);
        }
        return n;
}

static bool label_matches(const json_t *labels, const char *want)
{
        const char *eq = strchr(want, '=');
        _cleanup_free_ char *key = eq ? strndup(want, (size_t) (eq - want)) : strdup(want);
        json_t *v;

        if (!key || !json_is_string(v = json_object_get(labels, key)))
                return false;
        return !eq || streq(json_string_value(v), eq + 1);
}

int moat_engine_containers_prune(struct moat_engine *e, const json_t *filters, int64_t until_ns, json_t **ret,
                                 struct moat_error **reterr)
{
        const char *vals[64];
        const char *key;
        json_t *fv;
        uint64_t reclaimed = 0;
        size_t n = 0, cap = 0;
        _cleanup_strv_free_ char **ids = NULL;

        json_object_foreach((json_t *) filters, key, fv)
                if (!streq(key, "until") && !streq(key, "label") && !streq(key, "label!"))
                        return moat_error_setx(reterr, -EINVAL, "invalid filter '%.100s'", key);
        pthread_mutex_lock(&e->lock);
        for (struct container *c = e->containers; c; c = c->next)
                cap++;
        ids = calloc(cap + 1, sizeof(char *));
        for (struct container *c = e->containers; ids && c; c = c->next) {
                json_t *labels = json_object_get(c->config, "Labels");
                bool match = !container_is_running(c) && c->st.state != MOAT_CONTAINER_REMOVING &&
                             (until_ns <= 0 || c->created_ns < until_ns);
                size_t nl = filter_values(filters, "label", vals);
                for (size_t k = 0; k < nl && match; k++)
                        match = label_matches(labels, vals[k]);
                nl = filter_values(filters, "label!", vals);
                for (size_t k = 0; k < nl && match; k++)
                        match = !label_matches(labels, vals[k]);
                if (match && n < cap && !(ids[n++] = strdup(c->id)))
                        n--;
        }
        pthread_mutex_unlock(&e->lock);
        if (!ids)
                return moat_error_set(reterr, -ENOMEM, "prune");

        json_t *deleted = json_array();
        if (!deleted)
                return moat_error_set(reterr, -ENOMEM, "prune");
        for (size_t i = 0; i < n; i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_free_ char *upper = NULL;
                uint64_t size = 0;
                if (asprintf(&upper, "%s/upper", ids[i]) >= 0) {
                        _cleanup_close_ int fd =
                                openat(e->containers_fd, upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd >= 0)
                                size = engine_tree_size(fd);
                }
                if (moat_engine_remove(e, ids[i], false, false, &err) < 0) {
                        engine_log(e, 4, "prune: %s", err ? err->msg : ids[i]);
                        continue;
                }
                reclaimed += size;
                json_array_append_new(deleted, json_string(ids[i]));
        }
        *ret = json_pack("{s:o, s:I}", "ContainersDeleted", deleted, "SpaceReclaimed", (json_int_t) reclaimed);
        return *ret ? 0 : moat_error_set(reterr, -ENOMEM, "prune");
}
