/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * GET /containers/{id}/changes (docker diff): what the container's
 * writable layer (containers/<id>/upper) changes in its image, found as
 * docker's overlay2 driver finds it (archive.OverlayChanges), by walking
 * upper/ alone and looking each entry up in the image's layer trees:
 *
 * - a whiteout (char device 0/0) is a deletion (Kind 2) of its path;
 * - an entry the lower layers also have is a modification (Kind 0),
 *   except a directory whose mode and mtime are those of the lower one
 *   (it is in upper/ only as the parent of a change: docker leaves it
 *   out unless a child is added or deleted);
 * - anything else is an addition (Kind 1);
 * - the parent of an addition or deletion is reported as modified
 *   (unless it is the root), as docker does;
 * - an opaque directory (trusted.overlay.opaque=y: removed and made
 *   again) that the lower layers have is a modification, and each entry
 *   of the lower directory that upper/ does not have is a deletion; so
 *   are the directories below it that lower also has (nothing of lower
 *   shows through them either). This is what docker shows through its
 *   naive diff (overlay2 without native diff); OverlayChanges itself
 *   calls the directory deleted and lists no deletions below it, which
 *   says the opposite of what the container sees;
 * - the mount points of docker's init layer (/etc/hosts, /proc, ...:
 *   init_layer below) that the runtime made in upper/ are no changes.
 *
 * "Lower" is the merged view of the image's layers (layer.h form): looked
 * up top down, a whiteout hides the name in the layers below, a
 * non-directory hides them, an opaque directory ends the directory's
 * list. Every step is by fd (fstatat/openat with AT_SYMLINK_NOFOLLOW or
 * O_NOFOLLOW, one component at a time); path strings are only built for
 * the answer. The walk is bounded in depth, entries and path length.
 * The answer is sorted by path, bytewise, as docker sorts changes.
 */

#include "engine/engine-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "engine/engine-images.h"
#include "image/images.h"
#include "oci/image-spec.h"

#define CHANGES_MAX_DEPTH 256u
#define CHANGES_MAX_PATH 4096u
/* The lower directories held open down the walk (depth x layers). */
#define CHANGES_MAX_LOWER_FDS 4096u

enum { KIND_MODIFY = 0, KIND_ADD = 1, KIND_DELETE = 2 };

/* Docker's init layer, between the image and the container's layer: the
 * mount points it makes so that the container's layer never gets them.
 * moat's runtime makes them in upper/ when the image lacks them; the
 * empty files and the directories are not changes the container made. */
static const struct {
        const char *path;
        bool dir;
} init_layer[] = {
        { "/.dockerenv", false },
        { "/dev", true },
        { "/dev/console", false },
        { "/dev/pts", true },
        { "/dev/shm", true },
        { "/etc", true },
        { "/etc/hostname", false },
        { "/etc/hosts", false },
        { "/etc/resolv.conf", false },
        { "/proc", true },
        { "/sys", true },
};

/* 1: w->path is a file of the init layer, 2: a directory of it. */
static int init_layer_entry(const char *path)
{
        for (size_t i = 0; i < ELEMENTSOF(init_layer); i++)
                if (streq(init_layer[i].path, path))
                        return init_layer[i].dir ? 2 : 1;
        return 0;
}

struct change {
        char *path;
        int kind;
};

struct walk {
        struct change *v;
        size_t n, cap;
        size_t entries;
        size_t lower_fds;
        char path[CHANGES_MAX_PATH + 1];
        size_t len;
};

static void walk_done(struct walk *w)
{
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i].path);
        free(w->v);
}

static int add_change(struct walk *w, size_t len, int kind)
{
        if (w->n == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 64;
                struct change *v = reallocarray(w->v, cap, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                w->v = v;
                w->cap = cap;
        }
        char *p = strndup(w->path, len);
        if (!p)
                return -ENOMEM;
        w->v[w->n++] = (struct change) { .path = p, .kind = kind };
        return 0;
}

/* Append "/name" to w->path; the old length goes to *old. */
static int path_push(struct walk *w, const char *name, size_t *old)
{
        size_t l = strlen(name);
        if (w->len + 1 + l > CHANGES_MAX_PATH)
                return -ENAMETOOLONG;
        *old = w->len;
        w->path[w->len++] = '/';
        memcpy(w->path + w->len, name, l);
        w->len += l;
        w->path[w->len] = '\0';
        return 0;
}

static void path_pop(struct walk *w, size_t old)
{
        w->len = old;
        w->path[old] = '\0';
}

static bool is_whiteout(const struct stat *st)
{
        return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static int is_opaque(int fd)
{
        char v[2];
        ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));
        if (n < 0)
                return errno == ENODATA || errno == ENOTSUP ? 0 : -errno;
        return n == 1 && v[0] == 'y';
}

/* name in the merged lower view: 1 with its stat, 0 when absent. */
static int lower_lookup(const int *lowers, size_t n, const char *name, struct stat *ret)
{
        for (size_t i = 0; i < n; i++) {
                if (fstatat(lowers[i], name, ret, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return -errno;
                }
                return is_whiteout(ret) ? 0 : 1;
        }
        return 0;
}

static void close_all(int *fds, size_t n)
{
        for (size_t i = 0; i < n; i++)
                safe_close(fds[i]);
        free(fds);
}

/* The lower directories of name (top down), for the walk below it. */
static int lower_children(struct walk *w, const int *lowers, size_t n, const char *name, int **ret, size_t *ret_n)
{
        int *fds = calloc(n ? n : 1, sizeof(*fds));
        size_t k = 0;
        int r = 0;

        if (!fds)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (fstatat(lowers[i], name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        r = -errno;
                        break;
                }
                if (!S_ISDIR(st.st_mode))
                        break;
                if (w->lower_fds >= CHANGES_MAX_LOWER_FDS) {
                        r = -EMFILE;
                        break;
                }
                int fd = openat(lowers[i], name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        break;
                }
                fds[k++] = fd;
                w->lower_fds++;
                r = is_opaque(fd);
                if (r < 0)
                        break;
                if (r > 0) {
                        r = 0;
                        break;
                }
        }
        if (r < 0) {
                w->lower_fds -= k;
                close_all(fds, k);
                return r;
        }
        *ret = fds;
        *ret_n = k;
        return 0;
}

/* Under an opaque upper directory: every entry of the lower directory
 * that upper does not have is deleted. */
static int opaque_deletions(struct walk *w, int upper_fd, const int *lowers, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int fd = openat(lowers[i], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                _cleanup_closedir_ DIR *d = fdopendir(fd);
                if (!d) {
                        safe_close(fd);
                        return -errno;
                }
                struct dirent *de;
                errno = 0;
                while ((de = readdir(d))) {
                        struct stat st;
                        bool hidden = false;
                        size_t old;
                        int r;

                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (++w->entries > MOAT_ENGINE_TREE_WALK_MAX_ENTRIES)
                                return -E2BIG;
                        if (fstatat(upper_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                                continue;
                        if (errno != ENOENT)
                                return -errno;
                        for (size_t j = 0; j < i && !hidden; j++) {
                                if (fstatat(lowers[j], de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                                        hidden = true;
                                else if (errno != ENOENT)
                                        return -errno;
                        }
                        if (hidden)
                                continue;
                        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                return -errno;
                        if (is_whiteout(&st))
                                continue;
                        r = path_push(w, de->d_name, &old);
                        if (r < 0)
                                return r;
                        r = add_change(w, w->len, KIND_DELETE);
                        path_pop(w, old);
                        if (r < 0)
                                return r;
                        errno = 0;
                }
                if (errno > 0)
                        return -errno;
        }
        return 0;
}

/* The parent of an addition or deletion is reported as modified. */
static int mark_parent(struct walk *w, size_t parent_len, bool *parent_recorded)
{
        if (*parent_recorded || parent_len == 0)
                return 0;
        *parent_recorded = true;
        return add_change(w, parent_len, KIND_MODIFY);
}

static int walk_dir(struct walk *w, int dir_fd, const int *lowers, size_t n_lowers, unsigned depth,
                    bool hidden, bool *dir_recorded, bool *init_skipped);

/* A directory of upper at w->path: its own change, then what is below. A
 * directory in lower whose mode or mtime differ is modified, unless what
 * changed it is the runtime's making of init layer mount points. */
static int walk_subdir(struct walk *w, int dir_fd, const char *name, const struct stat *st, const struct stat *lst,
                       const int *lowers, size_t n_lowers, unsigned depth, size_t dir_len, bool hidden,
                       bool *dir_recorded)
{
        _cleanup_close_ int child = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int *child_lowers = NULL;
        size_t n_child_lowers = 0;
        bool recorded = false, init_skipped = false, attrs_differ = false;
        bool init_dir = init_layer_entry(w->path) == 2;
        size_t len = w->len;
        int r = 0, opaque;

        if (child < 0)
                return errno == ENOENT ? 0 : -errno;   /* removed by the running container meanwhile */
        opaque = is_opaque(child);
        if (opaque < 0)
                return opaque;
        /* Below an opaque directory nothing of lower shows through. */
        opaque = opaque || hidden;
        if (lst)
                attrs_differ = !S_ISDIR(lst->st_mode) || lst->st_mode != st->st_mode ||
                               lst->st_mtim.tv_sec != st->st_mtim.tv_sec ||
                               (lst->st_mtim.tv_nsec != st->st_mtim.tv_nsec && lst->st_mtim.tv_nsec != 0 &&
                                st->st_mtim.tv_nsec != 0);
        if (!lst && !init_dir) {
                r = mark_parent(w, dir_len, dir_recorded);
                if (r < 0)
                        return r;
                r = add_change(w, len, KIND_ADD);
                recorded = true;
        } else if ((lst || init_dir) && (opaque || (lst && !S_ISDIR(lst->st_mode)))) {
                r = add_change(w, len, KIND_MODIFY);
                recorded = true;
        }
        if (r >= 0 && lst && S_ISDIR(lst->st_mode))
                r = lower_children(w, lowers, n_lowers, name, &child_lowers, &n_child_lowers);
        if (r >= 0 && opaque > 0)
                r = opaque_deletions(w, child, child_lowers, n_child_lowers);
        if (r >= 0)
                r = walk_dir(w, child, child_lowers, n_child_lowers, depth + 1, opaque, &recorded, &init_skipped);
        if (r >= 0 && !recorded && attrs_differ && !init_skipped && !init_dir)
                r = add_change(w, len, KIND_MODIFY);
        w->lower_fds -= n_child_lowers;
        close_all(child_lowers, n_child_lowers);
        return r;
}

static int walk_dir(struct walk *w, int dir_fd, const int *lowers, size_t n_lowers, unsigned depth,
                    bool hidden, bool *dir_recorded, bool *init_skipped)
{
        size_t dir_len = w->len;

        if (depth > CHANGES_MAX_DEPTH)
                return -ELOOP;
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -errno;
        }
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                struct stat st, lst;
                size_t old;
                int r, found;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (++w->entries > MOAT_ENGINE_TREE_WALK_MAX_ENTRIES)
                        return -E2BIG;
                if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)   /* removed by the running container meanwhile */
                                goto next;
                        return -errno;
                }
                r = path_push(w, de->d_name, &old);
                if (r < 0)
                        return r;
                if (is_whiteout(&st)) {
                        r = mark_parent(w, dir_len, dir_recorded);
                        if (r >= 0)
                                r = add_change(w, w->len, KIND_DELETE);
                        path_pop(w, old);
                        if (r < 0)
                                return r;
                        goto next;
                }
                found = lower_lookup(lowers, n_lowers, de->d_name, &lst);
                if (found < 0) {
                        path_pop(w, old);
                        return found;
                }
                if (!S_ISDIR(st.st_mode) && S_ISREG(st.st_mode) && st.st_size == 0 &&
                    init_layer_entry(w->path) == 1) {
                        *init_skipped = true;
                        path_pop(w, old);
                        goto next;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (!found)
                                r = mark_parent(w, dir_len, dir_recorded);
                        if (r >= 0)
                                r = add_change(w, w->len, found ? KIND_MODIFY : KIND_ADD);
                        path_pop(w, old);
                        if (r < 0)
                                return r;
                        goto next;
                }

                r = walk_subdir(w, dir_fd, de->d_name, &st, found ? &lst : NULL, lowers, n_lowers, depth, dir_len,
                                hidden, dir_recorded);
                path_pop(w, old);
                if (r < 0)
                        return r;
        next:
                errno = 0;
        }
        return errno > 0 ? -errno : 0;
}

static int change_cmp(const void *a, const void *b)
{
        return strcmp(((const struct change *) a)->path, ((const struct change *) b)->path);
}

int moat_engine_changes(struct moat_engine *e, const char *ref, json_t **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *id = NULL, *image_id = NULL;
        _cleanup_image_ struct moat_image *img = NULL;
        _cleanup_strv_free_ char **chain = NULL;
        _cleanup_close_ int dir_fd = -EBADF, upper_fd = -EBADF, layers_fd = -EBADF;
        _cleanup_free_ int *lowers = NULL;
        struct moat_error *lerr = NULL;
        struct walk w = {};
        struct container *c;
        size_t n = 0;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                id = strdup(c->id);
                image_id = strdup(c->image_id);
                if (!id || !image_id)
                        r = moat_error_set(reterr, -ENOMEM, "changes of %s", ref);
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;

        r = moat_images_lookup(e->store, image_id, NULL, &img, &lerr);
        if (r < 0) {
                moat_error_free(lerr);
                return moat_error_setx(reterr, -EIO, "changes of container %s: its image %s is gone", id,
                                       image_id);
        }
        r = oci_chain_ids(img->config->diff_ids, img->config->n_diff_ids, &chain, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "changes of container %s", id);
        r = moat_images_layers_dir(e->store, &layers_fd, reterr);
        if (r < 0)
                return r;
        while (chain[n])
                n++;
        lowers = calloc(n ? n : 1, sizeof(*lowers));
        if (!lowers)
                return moat_error_set(reterr, -ENOMEM, "changes of container %s", id);
        /* Top down: the last chain id is the top layer. */
        for (size_t i = 0; i < n; i++) {
                lowers[i] = openat(layers_fd, chain[n - 1 - i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (lowers[i] < 0) {
                        r = moat_error_set(reterr, errno, "changes of container %s: layers/%s", id,
                                           chain[n - 1 - i]);
                        close_all(TAKE_PTR(lowers), i);
                        return r;
                }
        }

        dir_fd = openat(e->containers_fd, id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir_fd < 0)
                r = moat_error_set(reterr, errno, "opening containers/%s", id);
        else if ((upper_fd = openat(dir_fd, "upper", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                r = errno == ENOENT ? 0 : moat_error_set(reterr, errno, "opening containers/%s/upper", id);
        else {
                bool root_recorded = true, init_skipped = false;
                r = walk_dir(&w, upper_fd, lowers, n, 0, false, &root_recorded, &init_skipped);
                if (r == -E2BIG || r == -ELOOP || r == -ENAMETOOLONG || r == -EMFILE)
                        r = moat_error_setx(reterr, r,
                                            "changes of containers/%s/upper: more than %u entries, %u levels, "
                                            "%u bytes of path or %u open lower directories",
                                            id, MOAT_ENGINE_TREE_WALK_MAX_ENTRIES, CHANGES_MAX_DEPTH,
                                            CHANGES_MAX_PATH, CHANGES_MAX_LOWER_FDS);
                else if (r < 0)
                        r = moat_error_set(reterr, r, "changes of containers/%s/upper at \"%s\"", id,
                                           w.path[0] ? w.path : "/");
        }
        close_all(TAKE_PTR(lowers), n);
        if (r < 0) {
                walk_done(&w);
                return r;
        }

        if (w.n > 1)
                qsort(w.v, w.n, sizeof(*w.v), change_cmp);
        json_t *out = json_array();
        for (size_t i = 0; out && i < w.n; i++) {
                if (i > 0 && streq(w.v[i].path, w.v[i - 1].path))
                        continue;
                if (json_array_append_new(out, json_pack("{s:s, s:i}", "Path", w.v[i].path, "Kind",
                                                         w.v[i].kind)) < 0) {
                        json_decref(out);
                        out = NULL;
                }
        }
        walk_done(&w);
        if (!out)
                return moat_error_set(reterr, -ENOMEM, "changes of container %s", id);
        *ret = out;
        return 0;
}
