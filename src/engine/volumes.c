/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Volumes of the local driver (engine-volumes.h).
 *
 * Why it is built this way:
 *  - The database says which containers use a volume (their Mounts), so
 *    "in use" is one atomic check there. A container records its Mounts
 *    only after its volumes exist (db.h refuses a use of a missing
 *    volume), which leaves a window between the volume's creation and the
 *    container's record: a volume handed to a starting container is
 *    "pending" until the container says it recorded the use, and removal
 *    and prune leave pending volumes alone.
 *  - Every change of volumes (create, remove, prune, acquire) runs under
 *    one process-wide mutex: they are rare and short, and it makes
 *    "check users, unmount, delete" one step for each other.
 *  - Directories are made and removed by fd under volumes/; removal never
 *    crosses into another filesystem (a volume's bind or tmpfs mount is
 *    unmounted first, and anything still mounted below stops the removal)
 *    so a bind mount can never make it delete host files.
 *  - The copy of the image's content into a new volume uses the image
 *    library's contained copy (snapshot.h), the source found by openat2
 *    RESOLVE_IN_ROOT in the container's root, so symlinks in the image
 *    resolve inside it.
 */

#include "engine/container-fs.h"
#include "engine/engine-volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "engine/db.h"
#include "engine/engine-internal.h"
#include "image/snapshot.h"

#define VOLUMES_DIR "volumes"
#define DATA_DIR "_data"
#define MAX_FILTER_VALUES 64
#define WALK_DEPTH_MAX 1024u
#define OPTION_MAX 4096u

static pthread_mutex_t volumes_lock = PTHREAD_MUTEX_INITIALIZER;

/* Volumes handed to starting containers; under volumes_lock. */
struct pending {
        struct pending *next;
        const struct moat_engine *e;
        char *name;
        unsigned count;
};
static struct pending *pending_list;

static struct pending *pending_find_locked(const struct moat_engine *e, const char *name)
{
        for (struct pending *p = pending_list; p; p = p->next)
                if (p->e == e && streq(p->name, name))
                        return p;
        return NULL;
}

static int pending_add_locked(const struct moat_engine *e, const char *name)
{
        struct pending *p = pending_find_locked(e, name);
        if (p) {
                p->count++;
                return 0;
        }
        p = calloc(1, sizeof(*p));
        if (!p || !(p->name = strdup(name))) {
                free(p);
                return -ENOMEM;
        }
        p->e = e;
        p->count = 1;
        p->next = pending_list;
        pending_list = p;
        return 0;
}

void engine_volume_release(struct moat_engine *e, const char *name)
{
        pthread_mutex_lock(&volumes_lock);
        for (struct pending **pp = &pending_list; *pp; pp = &(*pp)->next) {
                struct pending *p = *pp;
                if (p->e == e && streq(p->name, name)) {
                        if (--p->count == 0) {
                                *pp = p->next;
                                free(p->name);
                                free(p);
                        }
                        break;
                }
        }
        pthread_mutex_unlock(&volumes_lock);
}

/* ---- names, directories ------------------------------------------------------ */

/* docker's local driver: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (db.h's rule too). */
static bool name_valid(const char *n)
{
        size_t len = strnlen(n, MOAT_DB_NAME_MAX + 1);

        if (len < 2 || len > MOAT_DB_NAME_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char ch = n[i];
                bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
                if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
                        return false;
        }
        return true;
}

static int check_name(const char *name, struct moat_error **reterr)
{
        if (!name_valid(name))
                return moat_error_setx(reterr, -EINVAL,
                                       "create %.300s: \"%.300s\" includes invalid characters for a local volume name, "
                                       "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                                       "directory, use absolute path",
                                       name, name);
        return 0;
}

static int random_name(char ret[static 65])
{
        uint8_t b[32];

        if (getrandom(b, sizeof(b), 0) != sizeof(b))
                return negative_errno();
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(ret + 2 * i, 3, "%02x", b[i]);
        return 0;
}

static int open_volumes_dir(struct moat_engine *e, struct moat_error **reterr)
{
        if (mkdirat(e->data_fd, VOLUMES_DIR, 0701) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating %s/" VOLUMES_DIR, e->data_root);
        int fd = openat(e->data_fd, VOLUMES_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening %s/" VOLUMES_DIR, e->data_root);
        if (fchmod(fd, 0701) < 0) {
                int r = moat_error_set(reterr, errno, "chmod %s/" VOLUMES_DIR, e->data_root);
                close(fd);
                return r;
        }
        return fd;
}

/* An fd of volumes/<name>/_data. */
static int open_data(struct moat_engine *e, const char *name, int flags, struct moat_error **reterr)
{
        _cleanup_close_ int vfd = open_volumes_dir(e, reterr);
        if (vfd < 0)
                return vfd;
        _cleanup_free_ char *rel = NULL;
        if (asprintf(&rel, "%s/" DATA_DIR, name) < 0)
                return moat_error_set(reterr, -ENOMEM, "path");
        struct open_how how = {
                .flags = (uint64_t) (flags | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
        };
        int fd = moat_openat2(vfd, rel, &how);
        if (fd < 0)
                return moat_error_set(reterr, fd, "opening the directory of volume %s", name);
        return fd;
}

static bool is_mount_root(int fd)
{
        struct statx stx;
        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &stx) < 0)
                return false;
        return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Remove name in dfd and everything below, staying on dev. */
static int rm_tree_at(int dfd, const char *name, dev_t dev, unsigned depth)
{
        struct stat st;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return RET_NERRNO(unlinkat(dfd, name, 0));
        if (st.st_dev != dev)
                return -EXDEV; /* something is mounted there */
        if (depth >= WALK_DEPTH_MAX)
                return -ELOOP;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        _cleanup_closedir_ DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return negative_errno();
        }
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno)
                                return negative_errno();
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                int r = rm_tree_at(dirfd(d), de->d_name, dev, depth + 1);
                if (r < 0)
                        return r;
        }
        return RET_NERRNO(unlinkat(dfd, name, AT_REMOVEDIR));
}

/* Bytes of the regular files below fd on its filesystem (a hard-linked
 * file counts once per name). */
static uint64_t tree_size(int fd, dev_t dev, unsigned depth)
{
        uint64_t total = 0;

        if (depth >= WALK_DEPTH_MAX)
                return 0;
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return 0;
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return 0;
        }
        for (struct dirent *de; (de = readdir(d));) {
                struct stat st;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISREG(st.st_mode))
                        total += (uint64_t) st.st_size;
                else if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
                        _cleanup_close_ int sub =
                                openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub >= 0)
                                total += tree_size(sub, dev, depth + 1);
                }
        }
        return total;
}

uint64_t engine_tree_size(int fd)
{
        struct stat st;
        return fstat(fd, &st) < 0 ? 0 : tree_size(fd, st.st_dev, 0);
}

/* ---- driver options ----------------------------------------------------------- */

struct local_opts {
        const char *type, *device, *o;
};

static void local_opts_of(const json_t *options, struct local_opts *ret)
{
        ret->type = json_string_value(json_object_get(options, "type"));
        ret->device = json_string_value(json_object_get(options, "device"));
        ret->o = json_string_value(json_object_get(options, "o"));
}

static bool has_options(const struct local_opts *lo)
{
        return !strempty(lo->type) || !strempty(lo->device) || !strempty(lo->o);
}

struct mount_flags {
        unsigned long flags;
        bool bind, rbind;
        char data[OPTION_MAX];
};

/* The "o" option as mount(8) takes it: flag words become mount flags,
 * the rest the filesystem's data. */
static int parse_o(const char *o, struct mount_flags *ret, struct moat_error **reterr)
{
        static const struct {
                const char *name;
                unsigned long set, clear;
        } words[] = {
                { "ro", MS_RDONLY, 0 },        { "rw", 0, MS_RDONLY },         { "nosuid", MS_NOSUID, 0 },
                { "suid", 0, MS_NOSUID },      { "nodev", MS_NODEV, 0 },       { "dev", 0, MS_NODEV },
                { "noexec", MS_NOEXEC, 0 },    { "exec", 0, MS_NOEXEC },       { "sync", MS_SYNCHRONOUS, 0 },
                { "async", 0, MS_SYNCHRONOUS }, { "noatime", MS_NOATIME, 0 },  { "atime", 0, MS_NOATIME },
                { "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
                { "relatime", MS_RELATIME, 0 }, { "norelatime", 0, MS_RELATIME },
                { "strictatime", MS_STRICTATIME, 0 }, { "defaults", 0, 0 },
        };
        _cleanup_free_ char *copy = strdup(o ? o : "");
        size_t len = 0;

        *ret = (struct mount_flags) {};
        if (!copy)
                return moat_error_set(reterr, -ENOMEM, "volume options");
        for (char *save = NULL, *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                bool known = false;
                if (streq(w, "bind") || streq(w, "rbind")) {
                        ret->bind = true;
                        ret->rbind = ret->rbind || streq(w, "rbind");
                        continue;
                }
                for (size_t i = 0; i < ELEMENTSOF(words) && !known; i++)
                        if (streq(w, words[i].name)) {
                                ret->flags = (ret->flags | words[i].set) & ~words[i].clear;
                                known = true;
                        }
                if (known)
                        continue;
                size_t wl = strlen(w);
                if (len + wl + 2 > sizeof(ret->data))
                        return moat_error_setx(reterr, -EINVAL, "volume option o: longer than %u bytes", OPTION_MAX);
                if (len > 0)
                        ret->data[len++] = ',';
                memcpy(ret->data + len, w, wl + 1);
                len += wl;
        }
        return 0;
}

/* docker's local driver rules (validateOpts), and what moat mounts: a
 * tmpfs, or a bind mount (type none, o with bind). */
static int check_options(const json_t *options, struct moat_error **reterr)
{
        static const char *const mandatory[][3] = {
                { "device", "type", NULL },
                { "type", "device", NULL },
                { "o", "device", "type" },
        };
        const char *k;
        json_t *v;

        if (!options || json_is_null(options))
                return 0;
        if (!json_is_object(options))
                return moat_error_setx(reterr, -EINVAL, "DriverOpts: must be an object of strings");
        if (json_object_size(options) > 16)
                return moat_error_setx(reterr, -EINVAL, "DriverOpts: too many options");
        json_object_foreach((json_t *) options, k, v) {
                if (!streq(k, "type") && !streq(k, "device") && !streq(k, "o") && !streq(k, "size"))
                        return moat_error_setx(reterr, -EINVAL, "invalid option: \"%.100s\"", k);
                if (!json_is_string(v) || json_string_length(v) > OPTION_MAX)
                        return moat_error_setx(reterr, -EINVAL, "DriverOpts.%s: must be a string of at most %u bytes",
                                               k, OPTION_MAX);
        }
        if (json_object_get(options, "size"))
                return moat_error_setx(reterr, -EINVAL, "quota size requested but no quota support");
        for (size_t i = 0; i < ELEMENTSOF(mandatory); i++) {
                if (!json_object_get(options, mandatory[i][0]))
                        continue;
                for (size_t j = 1; j < 3 && mandatory[i][j]; j++)
                        if (!json_object_get(options, mandatory[i][j]))
                                return moat_error_setx(reterr, -EINVAL, "missing required option: \"%s\"",
                                                       mandatory[i][j]);
        }
        struct local_opts lo;
        struct mount_flags mf;
        local_opts_of(options, &lo);
        if (!has_options(&lo))
                return 0;
        int r = parse_o(lo.o, &mf, reterr);
        if (r < 0)
                return r;
        if (streq(lo.type, "tmpfs")) {
                if (mf.bind)
                        return moat_error_setx(reterr, -EINVAL, "volume options: type=tmpfs cannot be a bind mount");
                return 0;
        }
        if ((streq(lo.type, "none") || streq(lo.type, "bind")) && mf.bind) {
                struct stat st;
                if (lo.device[0] != '/')
                        return moat_error_setx(reterr, -EINVAL,
                                               "volume options: device \"%.300s\" of a bind mount must be an absolute path",
                                               lo.device);
                if (stat(lo.device, &st) < 0)
                        return moat_error_set(reterr, errno, "volume options: bind source \"%.300s\"", lo.device);
                if (mf.data[0])
                        return moat_error_setx(reterr, -EINVAL, "volume options: o=%.300s: \"%s\" is not a bind mount option",
                                               lo.o, mf.data);
                return 0;
        }
        if (streq(lo.type, "none") || streq(lo.type, "bind"))
                return moat_error_setx(reterr, -EINVAL, "volume options: type=%s needs o=bind (or rbind)", lo.type);
        return moat_error_setx(reterr, -EOPNOTSUPP,
                               "volume options: type=%.100s is not supported (the local driver here mounts tmpfs, or a bind "
                               "mount with type=none,o=bind)",
                               lo.type);
}

/* Place the mount of the volume's options on its _data (once). */
static int mount_options(struct moat_engine *e, const struct moat_db_volume *v, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        json_error_t jerr;
        json_t *options = json_loads(v->options ? v->options : "{}", 0, &jerr);
        struct local_opts lo;
        struct mount_flags mf;
        char target[64];
        int r = 0;

        local_opts_of(options, &lo);
        if (!has_options(&lo))
                goto out;
        r = parse_o(lo.o, &mf, reterr);
        if (r < 0)
                goto out;
        fd = open_data(e, v->name, O_PATH, reterr);
        if (fd < 0) {
                r = fd;
                goto out;
        }
        if (is_mount_root(fd))
                goto out;
        snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
        if (streq(lo.type, "tmpfs")) {
                if (mount(lo.device, target, "tmpfs", mf.flags, mf.data[0] ? mf.data : NULL) < 0)
                        r = moat_error_set(reterr, errno, "mounting tmpfs for volume %s (o=%s)", v->name,
                                           lo.o ? lo.o : "");
        } else {
                if (mount(lo.device, target, NULL, MS_BIND | (mf.rbind ? MS_REC : 0), NULL) < 0)
                        r = moat_error_set(reterr, errno, "bind-mounting %s for volume %s", lo.device, v->name);
                else if (mf.flags &&
                         mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | mf.flags, NULL) < 0) {
                        r = moat_error_set(reterr, errno, "applying o=%s to the bind mount of volume %s", lo.o,
                                           v->name);
                        (void) umount2(target, MNT_DETACH);
                }
        }
out:
        json_decref(options);
        return r;
}

static int unmount_data(struct moat_engine *e, const char *name, struct moat_error **reterr)
{
        for (unsigned i = 0; i < 64; i++) {
                _cleanup_close_ int fd = open_data(e, name, O_PATH, NULL);
                char target[64];
                if (fd < 0 || !is_mount_root(fd))
                        return 0;
                snprintf(target, sizeof(target), "/proc/self/fd/%d", fd);
                if (umount2(target, MNT_DETACH) < 0)
                        return moat_error_set(reterr, errno, "unmounting volume %s", name);
        }
        return moat_error_setx(reterr, -EBUSY, "volume %s: too many mounts stacked on its directory", name);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static json_t *json_or_null(const char *text)
{
        json_error_t jerr;
        json_t *j = text ? json_loads(text, 0, &jerr) : NULL;
        if (!json_is_object(j) || json_object_size(j) == 0) {
                json_decref(j);
                return json_null();
        }
        return j;
}

static json_t *volume_json(const struct moat_db_volume *v)
{
        char created[40];
        struct tm tm;
        time_t secs = (time_t) (v->created_ns / 1000000000);

        gmtime_r(&secs, &tm);
        strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *labels = json_or_null(v->labels);
        if (json_is_null(labels)) {
                json_decref(labels);
                labels = json_object();
        }
        return json_pack("{s:s, s:s, s:o, s:s, s:s, s:o, s:s}", "CreatedAt", created, "Driver",
                         v->driver ? v->driver : "local", "Labels", labels, "Mountpoint", v->mountpoint, "Name", v->name,
                         "Options", json_or_null(v->options), "Scope", "local");
}

/* Record a volume event and wake the event streams (as containers.c's
 * event_locked() does for containers). */
static void volume_event(struct moat_engine *e, const char *action, const char *name)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_db_event ev = {
                .type = (char *) "volume",
                .action = (char *) action,
                .actor_id = (char *) name,
                .attributes = (char *) "{\"driver\":\"local\"}",
                .time_ns = engine_now_ns(),
        };
        int64_t seq = 0;

        if (moat_db_event_append(e->db, &ev, &seq, &err) < 0) {
                engine_log(e, 4, "event %s of volume %s: %s", action, name, err->msg);
                return;
        }
        pthread_mutex_lock(&e->lock);
        if (seq > e->last_event_seq)
                e->last_event_seq = seq;
        pthread_cond_broadcast(&e->changed);
        pthread_mutex_unlock(&e->lock);
}

/* ---- create ---------------------------------------------------------------------------- */

/* Under volumes_lock: get name, or create it with labels and options
 * (JSON objects, may be NULL). *ret_created says which. */
static int get_or_create_locked(struct moat_engine *e, const char *name, const json_t *labels, const json_t *options,
                                struct moat_db_volume **ret, bool *ret_created, struct moat_error **reterr)
{
        _cleanup_close_ int vfd = -EBADF;
        _cleanup_free_ char *mountpoint = NULL, *labels_text = NULL, *options_text = NULL, *data = NULL;
        bool made_dir = false;
        int r;

        *ret_created = false;
        r = moat_db_volume_get(e->db, name, ret, NULL);
        if (r >= 0)
                return 0;
        if (r != -ENOENT)
                return moat_db_volume_get(e->db, name, ret, reterr);
        r = check_name(name, reterr);
        if (r < 0)
                return r;
        r = check_options(options, reterr);
        if (r < 0)
                return r;
        vfd = open_volumes_dir(e, reterr);
        if (vfd < 0)
                return vfd;
        if (asprintf(&mountpoint, "%s/" VOLUMES_DIR "/%s/" DATA_DIR, e->data_root, name) < 0 ||
            asprintf(&data, "%s/" DATA_DIR, name) < 0)
                return moat_error_set(reterr, -ENOMEM, "volume path");
        if (mkdirat(vfd, name, 0755) < 0) {
                if (errno != EEXIST)
                        return moat_error_set(reterr, errno, "creating the directory of volume %s", name);
        } else
                made_dir = true;
        if (mkdirat(vfd, data, 0755) < 0 && errno != EEXIST) {
                r = moat_error_set(reterr, errno, "creating the directory of volume %s", name);
                goto fail;
        }
        if (labels && json_object_size(labels) > 0 && !(labels_text = json_dumps(labels, JSON_COMPACT))) {
                r = moat_error_set(reterr, -ENOMEM, "labels");
                goto fail;
        }
        if (options && json_object_size(options) > 0 && !(options_text = json_dumps(options, JSON_COMPACT))) {
                r = moat_error_set(reterr, -ENOMEM, "options");
                goto fail;
        }
        struct moat_db_volume v = {
                .name = (char *) name,
                .driver = (char *) "local",
                .mountpoint = mountpoint,
                .created_ns = engine_now_ns(),
                .labels = labels_text,
                .options = options_text,
        };
        r = moat_db_volume_insert(e->db, &v, reterr);
        if (r < 0)
                goto fail;
        r = moat_db_volume_get(e->db, name, ret, reterr);
        if (r < 0)
                return r;
        *ret_created = true;
        volume_event(e, "create", name);
        return 0;
fail:
        if (made_dir) {
                struct stat st;
                if (fstat(vfd, &st) == 0)
                        (void) rm_tree_at(vfd, name, st.st_dev, 0);
        }
        return r;
}

static int check_string_map(const json_t *m, const char *what, struct moat_error **reterr)
{
        const char *k;
        json_t *v;

        if (!m || json_is_null(m))
                return 0;
        if (!json_is_object(m))
                return moat_error_setx(reterr, -EINVAL, "%s: must be an object of strings", what);
        if (json_object_size(m) > MOAT_DOCKER_ARRAY_MAX)
                return moat_error_setx(reterr, -EINVAL, "%s: more than %u entries", what, MOAT_DOCKER_ARRAY_MAX);
        json_object_foreach((json_t *) m, k, v)
                if (!json_is_string(v) || json_string_length(v) > MOAT_DOCKER_STRING_MAX)
                        return moat_error_setx(reterr, -EINVAL, "%s.%.100s: must be a string", what, k);
        return 0;
}

int moat_engine_volume_create(struct moat_engine *e, const json_t *body, json_t **ret, struct moat_error **reterr)
{
        _cleanup_db_volume_ struct moat_db_volume *v = NULL;
        const json_t *name_j = json_object_get(body, "Name"), *driver_j = json_object_get(body, "Driver");
        const json_t *opts = json_object_get(body, "DriverOpts"), *labels = json_object_get(body, "Labels");
        char generated[65];
        const char *name;
        bool created;
        int r;

        if ((name_j && !json_is_null(name_j) && !json_is_string(name_j)) ||
            (driver_j && !json_is_null(driver_j) && !json_is_string(driver_j)))
                return moat_error_setx(reterr, -EINVAL, "Name and Driver must be strings");
        const char *driver = json_string_value(driver_j);
        if (!strempty(driver) && !streq(driver, "local"))
                return moat_error_setx(reterr, -EOPNOTSUPP, "volume driver \"%.100s\" is not supported (only \"local\")",
                                       driver);
        json_t *cluster = json_object_get(body, "ClusterVolumeSpec");
        if (cluster && !json_is_null(cluster))
                return moat_error_setx(reterr, -EOPNOTSUPP, "cluster volumes are not supported (no swarm)");
        if ((r = check_string_map(labels, "Labels", reterr)) < 0 ||
            (r = check_string_map(opts, "DriverOpts", reterr)) < 0)
                return r;
        name = json_string_value(name_j);
        if (strempty(name)) {
                r = random_name(generated);
                if (r < 0)
                        return moat_error_set(reterr, r, "volume name");
                name = generated;
        }
        pthread_mutex_lock(&volumes_lock);
        r = get_or_create_locked(e, name, json_is_object(labels) ? labels : NULL, json_is_object(opts) ? opts : NULL,
                                 &v, &created, reterr);
        pthread_mutex_unlock(&volumes_lock);
        if (r < 0)
                return r;
        if (!(*ret = volume_json(v)))
                return moat_error_set(reterr, -ENOMEM, "volume");
        return 0;
}

int moat_engine_volume_inspect(struct moat_engine *e, const char *name, json_t **ret, struct moat_error **reterr)
{
        _cleanup_db_volume_ struct moat_db_volume *v = NULL;
        int r = moat_db_volume_get(e->db, name, &v, reterr);
        if (r < 0)
                return r;
        if (!(*ret = volume_json(v)))
                return moat_error_set(reterr, -ENOMEM, "volume");
        return 0;
}

/* ---- list, filters ------------------------------------------------------------------------ */

/* {"key":{"value":true}} or, from old clients, {"key":["value"]}. */
static size_t filter_values(const json_t *filters, const char *key, const char *out[MAX_FILTER_VALUES])
{
        json_t *v = json_object_get(filters, key), *x;
        size_t n = 0, i;
        const char *k;

        if (json_is_object(v)) {
                json_object_foreach(v, k, x)
                        if (n < MAX_FILTER_VALUES && json_is_true(x))
                                out[n++] = k;
        } else if (json_is_array(v)) {
                json_array_foreach(v, i, x)
                        if (n < MAX_FILTER_VALUES && json_is_string(x))
                                out[n++] = json_string_value(x);
        }
        return n;
}

static int check_filter_keys(const json_t *filters, const char *const *known, size_t n_known,
                             struct moat_error **reterr)
{
        const char *key;
        json_t *v;

        json_object_foreach((json_t *) filters, key, v) {
                bool ok = false;
                for (size_t i = 0; i < n_known; i++)
                        ok = ok || streq(key, known[i]);
                if (!ok)
                        return moat_error_setx(reterr, -EINVAL, "invalid filter '%.100s'", key);
        }
        return 0;
}

static bool label_matches(const json_t *labels, const char *want)
{
        const char *eq = strchr(want, '=');
        _cleanup_free_ char *key = eq ? strndup(want, (size_t) (eq - want)) : strdup(want);

        if (!key)
                return false;
        json_t *v = json_object_get(labels, key);
        if (!json_is_string(v))
                return false;
        return !eq || streq(json_string_value(v), eq + 1);
}

static int parse_bool_filter(const char *key, const char *value, bool *ret, struct moat_error **reterr)
{
        if (streq(value, "true") || streq(value, "1"))
                *ret = true;
        else if (streq(value, "false") || streq(value, "0"))
                *ret = false;
        else
                return moat_error_setx(reterr, -EINVAL, "invalid filter '%s=%.100s'", key, value);
        return 0;
}

/* docker matches the name filter as a regular expression; POSIX extended
 * syntax covers what the CLI's users write (substrings, ^...$). */
static int name_matches(const char *pattern, const char *name, bool *ret, struct moat_error **reterr)
{
        regex_t re;

        if (strlen(pattern) > 1024)
                return moat_error_setx(reterr, -EINVAL, "name filter: longer than 1024 bytes");
        if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
                return moat_error_setx(reterr, -EINVAL, "name filter: \"%.100s\" is not a regular expression", pattern);
        *ret = regexec(&re, name, 0, NULL, 0) == 0;
        regfree(&re);
        return 0;
}

static int list_matches(const struct moat_db_volume *v, const json_t *labels, const json_t *filters, bool *ret,
                        struct moat_error **reterr)
{
        const char *vals[MAX_FILTER_VALUES];
        size_t n;
        int r;

        *ret = false;
        n = filter_values(filters, "dangling", vals);
        for (size_t i = 0; i < n; i++) {
                bool want;
                if ((r = parse_bool_filter("dangling", vals[i], &want, reterr)) < 0)
                        return r;
                if ((v->n_users == 0) != want)
                        return 0;
        }
        n = filter_values(filters, "driver", vals);
        bool any = n == 0;
        for (size_t i = 0; i < n && !any; i++)
                any = streq(vals[i], v->driver ? v->driver : "local");
        if (!any)
                return 0;
        n = filter_values(filters, "name", vals);
        any = n == 0;
        for (size_t i = 0; i < n && !any; i++)
                if ((r = name_matches(vals[i], v->name, &any, reterr)) < 0)
                        return r;
        if (!any)
                return 0;
        n = filter_values(filters, "label", vals);
        for (size_t i = 0; i < n; i++)
                if (!label_matches(labels, vals[i]))
                        return 0;
        n = filter_values(filters, "label!", vals);
        for (size_t i = 0; i < n; i++)
                if (label_matches(labels, vals[i]))
                        return 0;
        *ret = true;
        return 0;
}

int engine_volumes_df(struct moat_engine *e, json_t **ret, struct moat_error **reterr)
{
        struct moat_db_volume *v = NULL;
        size_t n = 0;
        int r;

        r = moat_db_volume_list(e->db, &v, &n, reterr);
        if (r < 0)
                return r;
        json_t *list = json_array();
        for (size_t i = 0; list && i < n; i++) {
                _cleanup_close_ int fd = open_data(e, v[i].name, O_RDONLY, NULL);
                int64_t size = fd >= 0 ? (int64_t) engine_tree_size(fd) : -1;
                json_t *o = volume_json(&v[i]);
                if (!o || json_object_set_new(o, "UsageData",
                                              json_pack("{s:I, s:I}", "Size", (json_int_t) size, "RefCount",
                                                        (json_int_t) v[i].n_users)) < 0 ||
                    json_array_append_new(list, o) < 0) {
                        json_decref(list);
                        list = NULL;
                }
        }
        moat_db_volumes_free(v, n);
        if (!list)
                return moat_error_set(reterr, -ENOMEM, "system df volumes");
        *ret = list;
        return 0;
}

int moat_engine_volume_list(struct moat_engine *e, const json_t *filters, json_t **ret, struct moat_error **reterr)
{
        static const char *const known[] = { "dangling", "name", "label", "driver" };
        struct moat_db_volume *v = NULL;
        size_t n = 0;
        int r;

        r = check_filter_keys(filters, known, ELEMENTSOF(known), reterr);
        if (r < 0)
                return r;
        r = moat_db_volume_list(e->db, &v, &n, reterr);
        if (r < 0)
                return r;
        json_t *list = json_array();
        for (size_t i = 0; list && i < n && r >= 0; i++) {
                json_t *labels = json_or_null(v[i].labels);
                bool match;
                r = list_matches(&v[i], labels, filters, &match, reterr);
                json_decref(labels);
                if (r >= 0 && match && json_array_append_new(list, volume_json(&v[i])) < 0)
                        r = moat_error_set(reterr, -ENOMEM, "volume list");
        }
        moat_db_volumes_free(v, n);
        if (!list)
                return moat_error_set(reterr, -ENOMEM, "volume list");
        if (r < 0) {
                json_decref(list);
                return r;
        }
        *ret = json_pack("{s:o, s:[]}", "Volumes", list, "Warnings");
        if (!*ret)
                return moat_error_set(reterr, -ENOMEM, "volume list");
        return 0;
}

/* ---- remove, prune ---------------------------------------------------------------------------- */

static int remove_locked(struct moat_engine *e, const char *name, uint64_t *ret_size, struct moat_error **reterr)
{
        _cleanup_db_volume_ struct moat_db_volume *v = NULL;
        _cleanup_strv_free_ char **users = NULL;
        _cleanup_close_ int vfd = -EBADF;
        struct stat st;
        int r;

        r = moat_db_volume_get(e->db, name, &v, reterr);
        if (r < 0)
                return r;
        if (pending_find_locked(e, v->name))
                return moat_error_setx(reterr, -EBUSY, "remove %s: volume is in use - [a container being started]",
                                       v->name);
        r = moat_db_volume_users(e->db, v->name, &users, reterr);
        if (r < 0)
                return r;
        if (users && users[0]) {
                size_t len = 0;
                for (size_t i = 0; users[i]; i++)
                        len += strlen(users[i]) + 2;
                _cleanup_free_ char *list = calloc(1, len + 1);
                if (!list)
                        return moat_error_set(reterr, -ENOMEM, "volume users");
                for (size_t i = 0; users[i]; i++) {
                        if (i > 0)
                                strcat(list, ", ");
                        strcat(list, users[i]);
                }
                return moat_error_setx(reterr, -EBUSY, "remove %s: volume is in use - [%s]", v->name, list);
        }
        r = unmount_data(e, v->name, reterr);
        if (r < 0)
                return r;
        vfd = open_volumes_dir(e, reterr);
        if (vfd < 0)
                return vfd;
        if (ret_size) {
                _cleanup_close_ int dfd = open_data(e, v->name, O_RDONLY, NULL);
                *ret_size = 0;
                if (dfd >= 0 && fstat(dfd, &st) == 0)
                        *ret_size = tree_size(dfd, st.st_dev, 0);
        }
        r = moat_db_volume_delete(e->db, v->name, reterr);
        if (r < 0)
                return r;
        if (fstat(vfd, &st) < 0)
                return moat_error_set(reterr, errno, "volumes directory");
        r = rm_tree_at(vfd, v->name, st.st_dev, 0);
        if (r < 0) {
                engine_log(e, 3, "volume %s: removing its directory: %s", v->name, strerror(-r));
                return moat_error_set(reterr, r, "remove %s: removing its directory (its record is gone)", v->name);
        }
        volume_event(e, "destroy", v->name);
        return 0;
}

int moat_engine_volume_remove(struct moat_engine *e, const char *name, bool force, struct moat_error **reterr)
{
        pthread_mutex_lock(&volumes_lock);
        int r = remove_locked(e, name, NULL, reterr);
        pthread_mutex_unlock(&volumes_lock);
        if (r == -ENOENT && force) {
                moat_error_free(*reterr);
                *reterr = NULL;
                return 0;
        }
        return r;
}

int moat_engine_volume_prune(struct moat_engine *e, const json_t *filters, json_t **ret, struct moat_error **reterr)
{
        static const char *const known[] = { "label", "label!", "all" };
        const char *vals[MAX_FILTER_VALUES];
        struct moat_db_volume *v = NULL;
        uint64_t reclaimed = 0;
        bool all = false;
        size_t n = 0;
        int r;

        r = check_filter_keys(filters, known, ELEMENTSOF(known), reterr);
        if (r < 0)
                return r;
        size_t na = filter_values(filters, "all", vals);
        for (size_t i = 0; i < na; i++)
                if ((r = parse_bool_filter("all", vals[i], &all, reterr)) < 0)
                        return r;
        json_t *deleted = json_array();
        if (!deleted)
                return moat_error_set(reterr, -ENOMEM, "prune");
        pthread_mutex_lock(&volumes_lock);
        r = moat_db_volume_list(e->db, &v, &n, reterr);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                json_t *labels = json_or_null(v[i].labels);
                bool match = v[i].n_users == 0 && !pending_find_locked(e, v[i].name) &&
                             (all || json_object_get(labels, MOAT_VOLUME_ANONYMOUS_LABEL));
                size_t nl = filter_values(filters, "label", vals);
                for (size_t k = 0; k < nl && match; k++)
                        match = label_matches(labels, vals[k]);
                nl = filter_values(filters, "label!", vals);
                for (size_t k = 0; k < nl && match; k++)
                        match = !label_matches(labels, vals[k]);
                json_decref(labels);
                if (!match)
                        continue;
                _cleanup_error_ struct moat_error *err = NULL;
                uint64_t size = 0;
                if (remove_locked(e, v[i].name, &size, &err) < 0) {
                        engine_log(e, 4, "prune: %s", err ? err->msg : v[i].name);
                        continue;
                }
                reclaimed += size;
                json_array_append_new(deleted, json_string(v[i].name));
        }
        pthread_mutex_unlock(&volumes_lock);
        moat_db_volumes_free(v, n);
        if (r < 0) {
                json_decref(deleted);
                return r;
        }
        *ret = json_pack("{s:o, s:I}", "VolumesDeleted", deleted, "SpaceReclaimed", (json_int_t) reclaimed);
        if (!*ret)
                return moat_error_set(reterr, -ENOMEM, "prune");
        return 0;
}

void engine_volumes_remove_anonymous(struct moat_engine *e, const json_t *mounts)
{
        size_t i;
        json_t *m;

        json_array_foreach(mounts, i, m) {
                _cleanup_db_volume_ struct moat_db_volume *v = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                const char *name = json_string_value(json_object_get(m, "Name"));

                if (!streq(json_string_value(json_object_get(m, "Type")) ?: "", "volume") || strempty(name))
                        continue;
                pthread_mutex_lock(&volumes_lock);
                if (moat_db_volume_get(e->db, name, &v, NULL) >= 0) {
                        json_t *labels = json_or_null(v->labels);
                        if (json_object_get(labels, MOAT_VOLUME_ANONYMOUS_LABEL)) {
                                int r = remove_locked(e, name, NULL, &err);
                                if (r < 0 && r != -EBUSY && r != -ENOENT)
                                        engine_log(e, 4, "removing volume %s: %s", name, err ? err->msg : "");
                        }
                        json_decref(labels);
                }
                pthread_mutex_unlock(&volumes_lock);
        }
}

/* ---- for starting containers ----------------------------------------------------------------- */

static bool dir_is_empty(int fd)
{
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return false;
        _cleanup_closedir_ DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return false;
        }
        for (struct dirent *de; (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return false;
        return true;
}

/* docker's CopyImagePathToVolume: a directory at destination in the
 * container's root is copied into the empty volume, with its owner and
 * mode on the volume's root. */
static int copy_image_content(int root_fd, const char *destination, int data_fd, struct moat_error **reterr)
{
        struct open_how how = {
                .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_close_ int src = moat_openat2(root_fd, destination, &how);
        if (src < 0)
                errno = -src;
        _cleanup_close_ int parent = -EBADF;
        char proc[64], host[PATH_MAX];
        struct stat st, st2;

        if (src < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0
                                                           : moat_error_set(reterr, errno, "opening %s in the container",
                                                                            destination);
        if (!dir_is_empty(data_fd))
                return 0;
        /* snapshot.h copies a named directory in a parent: find the name
         * the resolved directory has, and check the parent holds it. */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", src);
        ssize_t k = readlink(proc, host, sizeof(host) - 1);
        if (k <= 0)
                return moat_error_set(reterr, k < 0 ? errno : EIO, "resolving %s in the container", destination);
        host[k] = '\0';
        const char *base = strrchr(host, '/');
        base = base ? base + 1 : host;
        parent = openat(src, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0)
                return moat_error_set(reterr, errno, "opening the parent of %s in the container", destination);
        if (fstat(src, &st) < 0 || fstatat(parent, base, &st2, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != st2.st_ino ||
            st.st_dev != st2.st_dev)
                return moat_error_setx(reterr, -EXDEV, "%s in the container is a mount point; its content is not copied",
                                       destination);
        const char *ids[] = { base };
        int r = moat_snapshot_copy(parent, ids, 1, data_fd, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "copying %s of the image into the volume", destination);
        if (fchown(data_fd, st.st_uid, st.st_gid) < 0 || fchmod(data_fd, st.st_mode & 07777) < 0)
                return moat_error_set(reterr, errno, "setting the owner and mode of the volume for %s", destination);
        return 0;
}

/* VolumeOptions.Subpath, as moby's filepath.IsLocal: relative, not
 * empty, and not leaving the volume lexically; "." and empty components
 * dropped, "a/.." folded. *ret is the cleaned path ("" is the volume). */
static int subpath_clean(const char *subpath, char **ret, struct moat_error **reterr)
{
        static const char invalid[] = "invalid mount config for type \"volume\": subpath must be a relative path "
                                      "within the volume (VolumeOptions.Subpath \"%.200s\")";
        size_t len = strlen(subpath);

        if (len >= PATH_MAX)
                return moat_error_setx(reterr, -ENAMETOOLONG, "VolumeOptions.Subpath: longer than %d bytes", PATH_MAX - 1);
        if (subpath[0] == '/')
                return moat_error_setx(reterr, -EINVAL, invalid, subpath);
        _cleanup_free_ char *out = malloc(len + 1);
        if (!out)
                return moat_error_set(reterr, -ENOMEM, "subpath");
        size_t n = 0;
        for (const char *p = subpath; *p;) {
                size_t c = strcspn(p, "/");
                if (c == 2 && p[0] == '.' && p[1] == '.') {
                        if (n == 0)
                                return moat_error_setx(reterr, -EINVAL, invalid, subpath);
                        while (n > 0 && out[n - 1] != '/')
                                n--;
                        if (n > 0)
                                n--;
                } else if (c > 0 && !(c == 1 && p[0] == '.')) {
                        if (n > 0)
                                out[n++] = '/';
                        memcpy(out + n, p, c);
                        n += c;
                }
                p += c;
                if (*p == '/')
                        p++;
        }
        out[n] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

/* The subpath beneath the volume's data by fd: no symlink is followed
 * (moby refuses those leaving the volume; here none are taken, so a
 * subpath cannot be turned into a way out), and it must exist. */
static int subpath_open(int data_fd, const char *sub, const char *subpath, const char *volume,
                        struct moat_error **reterr)
{
        if (!*sub) {
                int fd = fcntl(data_fd, F_DUPFD_CLOEXEC, 3);
                return fd >= 0 ? fd : moat_error_set(reterr, errno, "volume \"%s\"", volume);
        }
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC, /* the last component is no symlink either */
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        int fd = moat_openat2(data_fd, sub, &how);
        if (fd < 0)
                errno = -fd;
        if (fd < 0 && errno == ENOENT)
                return moat_error_setx(reterr, -EINVAL, "VolumeOptions.Subpath \"%.200s\" does not exist in volume \"%s\"",
                                       subpath, volume);
        if (fd < 0 && errno == ELOOP)
                return moat_error_setx(reterr, -EINVAL,
                                       "VolumeOptions.Subpath \"%.200s\" in volume \"%s\" is or passes through a "
                                       "symbolic link (not followed)",
                                       subpath, volume);
        if (fd < 0 && errno == EXDEV)
                return moat_error_setx(reterr, -EINVAL, "VolumeOptions.Subpath \"%.200s\" escapes volume \"%s\"",
                                       subpath, volume);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening VolumeOptions.Subpath \"%.200s\" in volume \"%s\"",
                                      subpath, volume);
        struct stat st;
        if (fstat(fd, &st) < 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
                close(fd);
                return moat_error_setx(reterr, -EINVAL,
                                       "VolumeOptions.Subpath \"%.200s\" in volume \"%s\" is not a directory or a file",
                                       subpath, volume);
        }
        return fd;
}

/* mountpoint/sub, checked to still be what sub_fd holds (no symlink
 * anywhere below the mountpoint, the same inode). */
static int subpath_host_path(const char *mountpoint, const char *sub, int sub_fd, char **ret,
                             struct moat_error **reterr)
{
        _cleanup_free_ char *path = NULL;
        struct stat a, b;

        if (asprintf(&path, "%s%s%s", mountpoint, *sub ? "/" : "", sub) < 0)
                return moat_error_set(reterr, -ENOMEM, "subpath");
        _cleanup_close_ int mfd = open(mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0)
                return moat_error_set(reterr, errno, "opening %s", mountpoint);
        struct open_how how = {
                .flags = O_PATH | O_CLOEXEC, /* the last component is no symlink either */
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_close_ int fd = *sub ? moat_openat2(mfd, sub, &how) : fcntl(mfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || fstat(fd, &a) < 0 || fstat(sub_fd, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return moat_error_setx(reterr, -EAGAIN, "VolumeOptions.Subpath: %s changed while it was being mounted",
                                       path);
        *ret = TAKE_PTR(path);
        return 0;
}

/* The subpath sub_fd holds, cloned onto a new mount point in the
 * container's MOAT_SUBPATH_PINS/: a path made of the daemon's own
 * directories, so what the runtime bind-mounts is what was checked, even
 * if a container swaps a component of the subpath for a symlink meanwhile
 * (moby's safepath does the same). */
static int subpath_pin(int pin_dir_fd, int sub_fd, char **ret, struct moat_error **reterr)
{
        _cleanup_close_ int pins = -EBADF, tree = -EBADF;
        char name[32];
        struct stat st;

        if (fstat(sub_fd, &st) < 0)
                return moat_error_set(reterr, errno, "VolumeOptions.Subpath: stat");
        if (mkdirat(pin_dir_fd, MOAT_SUBPATH_PINS, 0700) < 0 && errno != EEXIST)
                return moat_error_set(reterr, errno, "creating %s/", MOAT_SUBPATH_PINS);
        pins = openat(pin_dir_fd, MOAT_SUBPATH_PINS, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (pins < 0)
                return moat_error_set(reterr, errno, "opening %s/", MOAT_SUBPATH_PINS);
        for (unsigned i = 0;; i++) {
                if (i >= 256)
                        return moat_error_setx(reterr, -E2BIG, "more than 256 volume subpaths");
                snprintf(name, sizeof(name), "%u", i);
                int r = S_ISDIR(st.st_mode) ? mkdirat(pins, name, 0700)
                                            : mknodat(pins, name, S_IFREG | 0600, 0);
                if (r == 0)
                        break;
                if (errno != EEXIST)
                        return moat_error_set(reterr, errno, "creating %s/%s", MOAT_SUBPATH_PINS, name);
        }
        tree = (int) syscall(SYS_open_tree, sub_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (tree < 0 || syscall(SYS_move_mount, tree, "", pins, name, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
                int r = moat_error_set(reterr, errno, "pinning VolumeOptions.Subpath");
                (void) unlinkat(pins, name, S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
                return r;
        }
        char link[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", pins);
        char real[PATH_MAX];
        ssize_t n = readlink(link, real, sizeof(real) - 1);
        if (n <= 0)
                return moat_error_set(reterr, errno, "resolving %s/", MOAT_SUBPATH_PINS);
        real[n] = '\0';
        if (asprintf(ret, "%s/%s", real, name) < 0)
                return moat_error_set(reterr, -ENOMEM, "subpath");
        return 0;
}

int engine_volume_acquire(struct moat_engine *e, const struct moat_docker_volume_request *req, const char *reuse_name,
                          int root_fd, int pin_dir_fd, char **ret_host_path, char **ret_name,
                          struct moat_error **reterr)
{
        _cleanup_db_volume_ struct moat_db_volume *v = NULL;
        _cleanup_close_ int data_fd = -EBADF, sub_fd = -EBADF;
        _cleanup_free_ char *sub = NULL;
        json_t *labels = NULL;
        char generated[65];
        const char *name = req->name ? req->name : reuse_name;
        bool created;
        int r;

        if (req->driver && *req->driver && !streq(req->driver, "local"))
                return moat_error_setx(reterr, -EOPNOTSUPP, "volume driver \"%.100s\" is not supported (only \"local\")",
                                       req->driver);
        if (!strempty(req->subpath)) {
                if (!req->name)
                        return moat_error_setx(reterr, -EINVAL,
                                               "invalid mount config for type \"volume\": must not set "
                                               "VolumeOptions.Subpath when using anonymous volumes");
                r = subpath_clean(req->subpath, &sub, reterr);
                if (r < 0)
                        return r;
        }
        if (!name) {
                r = random_name(generated);
                if (r < 0)
                        return moat_error_set(reterr, r, "volume name");
                name = generated;
        }
        if (json_is_object(req->labels))
                labels = json_deep_copy(req->labels);
        else
                labels = json_object();
        if (!labels)
                return moat_error_set(reterr, -ENOMEM, "labels");
        if (!req->name)
                json_object_set_new(labels, MOAT_VOLUME_ANONYMOUS_LABEL, json_string(""));

        pthread_mutex_lock(&volumes_lock);
        if (sub) {
                /* A new volume is empty: no subpath of it can exist, and a
                 * refused mount must not leave one behind. */
                _cleanup_db_volume_ struct moat_db_volume *old = NULL;
                r = moat_db_volume_get(e->db, name, &old, NULL);
                if (r < 0)
                        r = moat_error_setx(reterr, -EINVAL, /* a 400: a 404 makes the CLI pull */
                                            "VolumeOptions.Subpath \"%s\": volume \"%s\" does not exist (a new volume "
                                            "has no subpath)",
                                            req->subpath, name);
        } else
                r = 0;
        if (r >= 0)
                r = get_or_create_locked(e, name, labels,
                                         json_is_object(req->driver_options) ? req->driver_options : NULL, &v, &created,
                                         reterr);
        json_decref(labels);
        if (r >= 0)
                r = mount_options(e, v, reterr);
        if (r >= 0) {
                data_fd = open_data(e, v->name, O_RDONLY, reterr);
                if (data_fd < 0)
                        r = data_fd;
        }
        if (r >= 0 && sub) {
                sub_fd = subpath_open(data_fd, sub, req->subpath, v->name, reterr);
                if (sub_fd < 0)
                        r = sub_fd;
        }
        if (r >= 0 && !req->nocopy && root_fd >= 0)
                r = copy_image_content(root_fd, req->destination, data_fd, reterr);
        if (r >= 0 && pending_add_locked(e, v->name) < 0)
                r = moat_error_set(reterr, -ENOMEM, "volume %s", v->name);
        pthread_mutex_unlock(&volumes_lock);
        if (r < 0)
                return r;
        if (sub && pin_dir_fd >= 0)
                r = subpath_pin(pin_dir_fd, sub_fd, ret_host_path, reterr);
        else if (sub)
                r = subpath_host_path(v->mountpoint, sub, sub_fd, ret_host_path, reterr);
        else if (!(*ret_host_path = strdup(v->mountpoint)))
                r = moat_error_set(reterr, -ENOMEM, "volume");
        if (r < 0) {
                engine_volume_release(e, v->name);
                return r;
        }
        if (!(*ret_name = strdup(v->name))) {
                free(*ret_host_path);
                *ret_host_path = NULL;
                engine_volume_release(e, v->name);
                return moat_error_set(reterr, -ENOMEM, "volume");
        }
        return 0;
}
