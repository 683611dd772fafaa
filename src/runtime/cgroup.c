/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Container cgroup placement (see cgroup.h). The hierarchies are whatever
 * cgroup and cgroup2 filesystems are mounted under /sys/fs/cgroup, read once
 * per create (listmount/statmount, see moat_cgroup_mounts_read()) and handed
 * on to the container init for its /sys/fs/cgroup; that one list covers
 * unified, legacy and hybrid hosts alike, the layout only decides whether
 * clone3's CLONE_INTO_CGROUP can be used. Each hierarchy remembers how many
 * trailing components of its path create made, so destroy removes exactly
 * those and never a cgroup someone else owns. This runs on every container start, so
 * the common case is one mkdir per hierarchy and no other probing.
 */

#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "runtime/cgroup.h"
#include "runtime/mount.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
#define CGROUP_MAX_HIERARCHIES 64
/* Bound on a cgroup path below its mountpoint; leaves room in PATH_MAX for
 * the mountpoint and a control file name. */
#define CGROUP_PATH_MAX 3072
#define PROC_CGROUP_MAX (256u << 10)
#define CGROUP_STATE_MAX (256u << 10)
#define CGROUP_PROCS_MAX (64u << 20)
#define CPUSET_VALUE_MAX (64u << 10)
#define DESTROY_BUSY_WAIT_NS (1000ull * 1000 * 1000)

struct hierarchy {
        char *mountpoint; /* "/sys/fs/cgroup/memory" */
        char *path;       /* the container's cgroup below mountpoint: "/a/b" */
        unsigned created; /* how many trailing components of path create made */
        bool v2;
        bool cpuset;
        int rank;         /* preference for moat_cgroup_pids(): lowest first */
        bool made;        /* hierarchy_create() done for this create */
        dev_t dev;        /* the hierarchy's superblock; 0 when deserialized */
};

struct moat_cgroup {
        struct hierarchy *h;
        size_t n;
        char *path;     /* for state and list */
        int v2_fd;      /* the cgroup2 directory for CLONE_INTO_CGROUP (moat_cgroup_make_v2) */
        bool unified;
        struct moat_cgroup_mounts *mounts; /* what create found; NULL when deserialized */
};

static bool is_cgroup2(const char *path)
{
        struct statfs sfs;

        return statfs(path, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
}

int moat_cgroup_detect_layout(enum moat_cgroup_layout *ret, struct moat_error **reterr)
{
        static int cached = -1;
        struct statfs sfs;

        if (cached < 0) {
                if (statfs(CGROUP_ROOT, &sfs) < 0)
                        return moat_error_set(reterr, errno, "statfs %s", CGROUP_ROOT);
                if (sfs.f_type == CGROUP2_SUPER_MAGIC)
                        cached = MOAT_CGROUP_LAYOUT_UNIFIED;
                else if (is_cgroup2(CGROUP_ROOT "/unified"))
                        cached = MOAT_CGROUP_LAYOUT_HYBRID;
                else
                        cached = MOAT_CGROUP_LAYOUT_LEGACY;
        }
        *ret = (enum moat_cgroup_layout) cached;
        return 0;
}

static bool has_control_chars(const char *s)
{
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* "a//b/./c/" -> "/a/b/c"; the root is "". Refuses "..", control
 * characters and over-long names. */
static int path_normalize(const char *in, char **ret)
{
        size_t len = strlen(in);
        _cleanup_free_ char *out = NULL;
        size_t o = 0;

        if (len > CGROUP_PATH_MAX)
                return -ENAMETOOLONG;
        if (has_control_chars(in))
                return -EINVAL;
        out = malloc(len + 2);
        if (!out)
                return -ENOMEM;
        for (const char *p = in; *p;) {
                size_t n = strcspn(p, "/");

                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return -EINVAL;
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        out[o++] = '/';
                        memcpy(out + o, p, n);
                        o += n;
                }
                p += n;
                if (*p == '/')
                        p++;
        }
        out[o] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

static unsigned path_depth(const char *normalized)
{
        unsigned n = 0;

        for (const char *p = normalized; *p; p++)
                if (*p == '/')
                        n++;
        return n;
}

/* Length of the prefix of path that names its ancestor `up` levels up. */
static size_t ancestor_len(const char *path, size_t len, unsigned up)
{
        while (up > 0 && len > 0) {
                len--;
                if (path[len] == '/')
                        up--;
        }
        return len;
}

static bool comma_list_has(const char *list, const char *tok, size_t toklen)
{
        for (const char *p = list; *p;) {
                size_t n = strcspn(p, ",");

                if (n == toklen && memcmp(p, tok, n) == 0)
                        return true;
                p += n;
                if (*p == ',')
                        p++;
        }
        return false;
}

static bool under_cgroup_root(const char *mountpoint)
{
        return startswith(mountpoint, CGROUP_ROOT) &&
               (mountpoint[strlen(CGROUP_ROOT)] == '\0' || mountpoint[strlen(CGROUP_ROOT)] == '/');
}

/* ---- the cgroup mounts ----------------------------------------------- */

/*
 * The hierarchies come from the kernel's mount table. /proc/self/mountinfo
 * has them, but every read formats the text of every mount in the namespace
 * (overlay roots with their long lowerdir options among them), so its cost
 * grows with each running container. listmount(2) and statmount(2) (Linux
 * 6.8; superblock options since 6.11) give the same fields for the mounts
 * below /sys/fs/cgroup alone: the mount there (statx STATX_MNT_ID_UNIQUE),
 * the mounts in its subtree, and for each its superblock's magic and device,
 * its root, mountpoint and options. statfs() of the entries of
 * /sys/fs/cgroup would not do: it cannot tell the root of a hierarchy
 * mounted from a subtree, nor the controllers of a mount whose name is not
 * theirs (the names are a convention). When those calls are missing (older
 * kernels, a seccomp profile answering ENOSYS or EPERM) or tell less,
 * mountinfo is read instead.
 */

#ifndef SYS_statmount
#define SYS_statmount 457
#endif
#ifndef SYS_listmount
#define SYS_listmount 458
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif
#define CG_STATMOUNT_SB_BASIC 0x00000001U
#define CG_STATMOUNT_MNT_ROOT 0x00000008U
#define CG_STATMOUNT_MNT_POINT 0x00000010U
#define CG_STATMOUNT_MNT_OPTS 0x00000080U
#define CG_SB_RDONLY 1u
/* Mounts in the subtree of /sys/fs/cgroup looked at before giving up on
 * listmount (normally a dozen; more if /sys/fs/cgroup is no mount). */
#define CG_LISTMOUNT_MAX 4096
#define CG_STATMOUNT_BUF_MAX (1u << 20)

/* The fixed part of struct statmount (<linux/mount.h> of Linux 6.11 on:
 * older headers lack it); its size never changes, the strings follow. */
struct cg_statmount {
        uint32_t size;
        uint32_t mnt_opts;
        uint64_t mask;
        uint32_t sb_dev_major;
        uint32_t sb_dev_minor;
        uint64_t sb_magic;
        uint32_t sb_flags;
        uint32_t fs_type;
        uint64_t mnt_id;
        uint64_t mnt_parent_id;
        uint32_t mnt_id_old;
        uint32_t mnt_parent_id_old;
        uint64_t mnt_attr;
        uint64_t mnt_propagation;
        uint64_t mnt_peer_group;
        uint64_t mnt_master;
        uint64_t propagate_from;
        uint32_t mnt_root;
        uint32_t mnt_point;
        uint64_t spare[50];
        char str[];
};
_Static_assert(sizeof(struct cg_statmount) == 512, "struct statmount is 512 bytes");

struct cg_mnt_id_req {
        uint32_t size;
        uint32_t spare;
        uint64_t mnt_id;
        uint64_t param;
};

void moat_cgroup_mounts_free(struct moat_cgroup_mounts *ms)
{
        if (!ms)
                return;
        for (size_t i = 0; i < ms->n; i++) {
                free(ms->m[i].mountpoint);
                free(ms->m[i].root);
                free(ms->m[i].options);
        }
        free(ms->m);
        free(ms);
}

static struct moat_cgroup_mounts *mounts_new(void)
{
        struct moat_cgroup_mounts *ms = calloc(1, sizeof(*ms));

        if (!ms)
                return NULL;
        ms->m = calloc(CGROUP_MAX_HIERARCHIES, sizeof(*ms->m));
        if (!ms->m) {
                free(ms);
                return NULL;
        }
        return ms;
}

static void mount_clear(struct moat_cgroup_mount *m)
{
        free(m->mountpoint);
        free(m->root);
        free(m->options);
        *m = (struct moat_cgroup_mount){};
}

/* Add one cgroup mount in mount order: only mountpoints under
 * /sys/fs/cgroup count, and a later mount on the same mountpoint hides the
 * earlier one. */
static int mounts_add(struct moat_cgroup_mounts *ms, const char *mountpoint, const char *root,
                      const char *options, dev_t dev, bool v2)
{
        if (!under_cgroup_root(mountpoint) || has_control_chars(mountpoint) || strlen(mountpoint) > PATH_MAX / 4)
                return 0;
        for (size_t i = 0; i < ms->n; i++)
                if (streq(ms->m[i].mountpoint, mountpoint)) {
                        mount_clear(&ms->m[i]);
                        ms->m[i] = ms->m[--ms->n];
                        ms->m[ms->n] = (struct moat_cgroup_mount){};
                        break;
                }
        if (ms->n >= CGROUP_MAX_HIERARCHIES)
                return -E2BIG;
        struct moat_cgroup_mount *m = &ms->m[ms->n];
        m->mountpoint = strdup(mountpoint);
        m->root = strdup(root);
        m->options = strdup(options);
        if (!m->mountpoint || !m->root || !m->options) {
                mount_clear(m);
                return -ENOMEM;
        }
        m->dev = dev;
        m->v2 = v2;
        ms->n++;
        return 0;
}

static int mountinfo_one(const struct moat_mountinfo_entry *e, void *userdata)
{
        bool v2 = streq(e->fstype, "cgroup2");

        if (!v2 && !streq(e->fstype, "cgroup"))
                return 0;
        return mounts_add(userdata, e->mountpoint, e->root, e->super_options, e->dev, v2);
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* A string of a statmount() answer, NULL when its offset is out of it. */
static const char *statmount_str(const struct cg_statmount *sm, size_t size, uint32_t off)
{
        size_t len = sm->size < size ? sm->size : size;

        if (len <= sizeof(*sm) || off >= len - sizeof(*sm) || !memchr(sm->str + off, 0, len - sizeof(*sm) - off))
                return NULL;
        return sm->str + off;
}

/* statmount() of one mount into *buf (grown on EOVERFLOW). */
static int statmount_one(uint64_t id, uint64_t mask, struct cg_statmount **buf, size_t *size)
{
        struct cg_mnt_id_req req = { .size = sizeof(req), .mnt_id = id, .param = mask };

        for (;;) {
                if (syscall(SYS_statmount, &req, *buf, *size, 0) == 0)
                        return 0;
                if (errno != EOVERFLOW || *size >= CG_STATMOUNT_BUF_MAX)
                        return negative_errno();
                size_t nsize = *size * 2;
                struct cg_statmount *n = realloc(*buf, nsize);
                if (!n)
                        return -ENOMEM;
                *buf = n;
                *size = nsize;
        }
}

/* The listmount/statmount way; -EOPNOTSUPP (or the calls' errors) when the
 * kernel cannot answer it all and mountinfo must be read. */
static int mounts_read_statmount(struct moat_cgroup_mounts *ms)
{
        _cleanup_free_ uint64_t *ids = NULL;
        _cleanup_free_ struct cg_statmount *sm = NULL;
        size_t n_ids = 0, size = 4096;
        struct statx stx = {};
        int r;

        if (statx(AT_FDCWD, CGROUP_ROOT, AT_NO_AUTOMOUNT, STATX_MNT_ID_UNIQUE, &stx) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!(stx.stx_mask & STATX_MNT_ID_UNIQUE))
                return -EOPNOTSUPP;

        ids = malloc(sizeof(*ids) * (CG_LISTMOUNT_MAX + 1));
        sm = malloc(size);
        if (!ids || !sm)
                return -ENOMEM;
        ids[n_ids++] = stx.stx_mnt_id;
        for (;;) {
                struct cg_mnt_id_req req = {
                        .size = sizeof(req),
                        .mnt_id = stx.stx_mnt_id,
                        .param = n_ids > 1 ? ids[n_ids - 1] : 0,
                };
                size_t room = CG_LISTMOUNT_MAX + 1 - n_ids;
                if (room == 0)
                        return -EOPNOTSUPP;
                long got = syscall(SYS_listmount, &req, ids + n_ids, room, 0);
                if (got < 0)
                        return negative_errno();
                n_ids += (size_t) got;
                if ((size_t) got < room)
                        break;
        }
        /* Unique ids grow with each mount: their order is mount order, as
         * in mountinfo, so a later mount on a mountpoint wins. */
        qsort(ids, n_ids, sizeof(*ids), cmp_u64);

        const uint64_t want = CG_STATMOUNT_SB_BASIC | CG_STATMOUNT_MNT_ROOT | CG_STATMOUNT_MNT_POINT |
                              CG_STATMOUNT_MNT_OPTS;
        for (size_t i = 0; i < n_ids; i++) {
                r = statmount_one(ids[i], want, &sm, &size);
                if (r == -ENOENT) /* unmounted meanwhile */
                        continue;
                if (r < 0)
                        return r;
                if (!(sm->mask & CG_STATMOUNT_SB_BASIC))
                        return -EOPNOTSUPP;
                bool v2 = sm->sb_magic == CGROUP2_SUPER_MAGIC;
                if (!v2 && sm->sb_magic != CGROUP_SUPER_MAGIC)
                        continue;
                /* Empty options leave MNT_OPTS out of the mask; a v1
                 * hierarchy always has some (its controllers or name=). */
                if ((sm->mask & (CG_STATMOUNT_MNT_ROOT | CG_STATMOUNT_MNT_POINT)) !=
                            (CG_STATMOUNT_MNT_ROOT | CG_STATMOUNT_MNT_POINT) ||
                    (!v2 && !(sm->mask & CG_STATMOUNT_MNT_OPTS)))
                        return -EOPNOTSUPP;
                const char *opts = sm->mask & CG_STATMOUNT_MNT_OPTS ? statmount_str(sm, size, sm->mnt_opts) : "";
                const char *point = statmount_str(sm, size, sm->mnt_point);
                const char *root = statmount_str(sm, size, sm->mnt_root);
                if (!opts || !point || !root)
                        return -EBADMSG;
                /* As mountinfo shows them: the sb's ro/rw, then the rest. */
                _cleanup_free_ char *superopts = NULL;
                if (asprintf(&superopts, "%s%s%s", sm->sb_flags & CG_SB_RDONLY ? "ro" : "rw", *opts ? "," : "",
                             opts) < 0)
                        return -ENOMEM;
                r = mounts_add(ms, point, root, superopts, makedev(sm->sb_dev_major, sm->sb_dev_minor), v2);
                if (r < 0)
                        return r;
        }
        return 0;
}

int moat_cgroup_mounts_read(struct moat_cgroup_mounts **ret, struct moat_error **reterr)
{
        _cleanup_(moat_cgroup_mounts_freep) struct moat_cgroup_mounts *ms = mounts_new();
        int r;

        if (!ms)
                return -ENOMEM;
        r = mounts_read_statmount(ms);
        if (r == -ENOMEM)
                return r;
        if (r == -E2BIG)
                return moat_error_setx(reterr, r, "more than %d cgroup hierarchies under %s",
                                       CGROUP_MAX_HIERARCHIES, CGROUP_ROOT);
        if (r < 0) {
                log_debug("cgroup mounts: listmount/statmount: %s; reading /proc/self/mountinfo", strerror(-r));
                moat_cgroup_mounts_free(ms);
                ms = mounts_new();
                if (!ms)
                        return -ENOMEM;
                r = moat_mountinfo_foreach(mountinfo_one, ms);
                if (r == -E2BIG)
                        return moat_error_setx(reterr, r, "/proc/self/mountinfo: more than %d cgroup hierarchies",
                                               CGROUP_MAX_HIERARCHIES);
                if (r < 0)
                        return moat_error_set(reterr, r, "reading /proc/self/mountinfo");
        }
        *ret = TAKE_PTR(ms);
        return 0;
}

const struct moat_cgroup_mounts *moat_cgroup_mounts(const struct moat_cgroup *cg)
{
        return cg ? cg->mounts : NULL;
}

/* The calling process's cgroup in the hierarchy of m, from /proc/self/cgroup. */
static const char *own_cgroup(const struct moat_cgroup_mount *m, const char *proc_cgroup, size_t size, size_t *ret_len)
{
        for (const char *line = proc_cgroup; line < proc_cgroup + size && *line;) {
                const char *end = strchr(line, '\n');
                size_t len = end ? (size_t) (end - line) : strlen(line);
                const char *c1 = memchr(line, ':', len);
                const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t) (c1 + 1 - line)) : NULL;

                if (c2) {
                        const char *ctrls = c1 + 1;
                        size_t first = strcspn(ctrls, ",:");
                        bool match = m->v2 ? c2 == c1 + 1 : first > 0 && comma_list_has(m->options, ctrls, first);

                        if (match) {
                                *ret_len = len - (size_t) (c2 + 1 - line);
                                return c2 + 1;
                        }
                }
                if (!end)
                        break;
                line = end + 1;
        }
        return NULL;
}

static int rank_of(bool v2, const char *controllers)
{
        if (v2)
                return 2;
        if (comma_list_has(controllers, "pids", 4))
                return 0;
        if (comma_list_has(controllers, "memory", 6))
                return 1;
        return 3;
}

static void cgroup_set_primary_path(struct moat_cgroup *cg)
{
        const struct hierarchy *best = NULL;

        for (size_t i = 0; i < cg->n; i++)
                if (!best || cg->h[i].rank < best->rank)
                        best = &cg->h[i];
        cg->path = best ? best->path : NULL;
}

static int rmdir_created(struct hierarchy *h, bool wait_busy, uint64_t *deadline, struct moat_error **reterr)
{
        char buf[PATH_MAX];
        int n = snprintf(buf, sizeof(buf), "%s%s", h->mountpoint, h->path);

        if (n < 0 || (size_t) n >= sizeof(buf))
                return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s is too long", h->mountpoint,
                                       h->path);
        size_t len = (size_t) n;

        while (h->created > 0) {
                unsigned sleep_ms = 1;

                buf[len] = '\0';
                for (;;) {
                        if (rmdir(buf) == 0 || errno == ENOENT)
                                break;
                        if (errno != EBUSY || !wait_busy)
                                return moat_error_set(reterr, errno, "removing cgroup %s", buf);

                        struct timespec now;
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        uint64_t now_ns = (uint64_t) now.tv_sec * 1000000000ull + (uint64_t) now.tv_nsec;
                        if (*deadline == 0)
                                *deadline = now_ns + DESTROY_BUSY_WAIT_NS;
                        if (now_ns >= *deadline)
                                return moat_error_set(reterr, EBUSY, "removing cgroup %s", buf);

                        struct timespec ts = { 0, (long) sleep_ms * 1000000L };
                        nanosleep(&ts, NULL);
                        if (sleep_ms < 50)
                                sleep_ms *= 2;
                }
                h->created--;
                len = ancestor_len(buf, len, 1);
        }
        return 0;
}

static void rollback(struct moat_cgroup *cg)
{
        uint64_t deadline = 0;

        for (size_t i = 0; i < cg->n; i++)
                if (rmdir_created(&cg->h[i], false, &deadline, NULL) < 0)
                        log_debug("cgroup rollback: could not remove %s%s", cg->h[i].mountpoint, cg->h[i].path);
}

static int read_trimmed(const char *path, char **ret)
{
        _cleanup_free_ char *s = NULL;
        int r = read_full_file_at(AT_FDCWD, path, CPUSET_VALUE_MAX, &s, NULL);

        if (r < 0)
                return r;
        s[strcspn(s, "\n")] = '\0';
        *ret = TAKE_PTR(s);
        return 0;
}

/*
 * A v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and no
 * task can join it until they are set. Return the values of the directory
 * named by the first len bytes of path; when they are empty, fill it (and
 * any empty ancestor on the way) from the nearest ancestor that has some.
 */
static int cpuset_values(const char *path, size_t len, size_t root_len, char **ret_cpus, char **ret_mems,
                         struct moat_error **reterr)
{
        static const char *const files[2] = { "cpuset.cpus", "cpuset.mems" };
        _cleanup_free_ char *cpus = NULL, *mems = NULL;
        char **val[2] = { &cpus, &mems };
        char buf[PATH_MAX];
        size_t l = len;
        int r;

        for (;;) {
                for (int i = 0; i < 2; i++) {
                        free(*val[i]);
                        *val[i] = NULL;
                        snprintf(buf, sizeof(buf), "%.*s/%s", (int) l, path, files[i]);
                        r = read_trimmed(buf, val[i]);
                        if (r < 0)
                                return moat_error_set(reterr, r, "reading %s", buf);
                }
                if ((*cpus && *mems) || l <= root_len)
                        break;
                l = ancestor_len(path, l, 1);
        }

        /* Fill the empty levels between that ancestor and the target. */
        while (l < len) {
                l += 1 + strcspn(path + l + 1, "/");
                for (int i = 0; i < 2; i++) {
                        _cleanup_free_ char *cur = NULL;

                        if (!**val[i])
                                continue;
                        snprintf(buf, sizeof(buf), "%.*s/%s", (int) l, path, files[i]);
                        r = read_trimmed(buf, &cur);
                        if (r < 0)
                                return moat_error_set(reterr, r, "reading %s", buf);
                        if (*cur)
                                continue;
                        r = write_string_file_at(AT_FDCWD, buf, *val[i]);
                        if (r < 0)
                                return moat_error_set(reterr, r, "writing \"%s\" to %s", *val[i], buf);
                }
        }
        *ret_cpus = TAKE_PTR(cpus);
        *ret_mems = TAKE_PTR(mems);
        return 0;
}

/* mkdir the hierarchy's path, and the missing parents; count what was made. */
static int hierarchy_create(struct hierarchy *h, struct moat_error **reterr)
{
        char buf[PATH_MAX];
        int n = snprintf(buf, sizeof(buf), "%s%s", h->mountpoint, h->path);
        size_t root_len = strlen(h->mountpoint);
        unsigned depth = path_depth(h->path);
        int r;

        if (n < 0 || (size_t) n >= sizeof(buf) - 32)
                return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s is too long", h->mountpoint,
                                       h->path);
        size_t len = (size_t) n;

        if (mkdir(buf, 0755) == 0)
                h->created = 1;
        else if (errno == EEXIST)
                h->created = 0;
        else if (errno != ENOENT)
                return moat_error_set(reterr, errno, "creating cgroup %s", buf);
        else {
                /* Walk down from the mountpoint; everything after the first
                 * directory made here is new as well. */
                for (unsigned level = 1; level <= depth; level++) {
                        size_t l = ancestor_len(buf, len, depth - level);
                        char saved = buf[l];

                        buf[l] = '\0';
                        if (mkdir(buf, 0755) == 0) {
                                if (h->created == 0)
                                        h->created = depth - level + 1;
                        } else if (errno != EEXIST || h->created > 0) {
                                r = moat_error_set(reterr, errno, "creating cgroup %s", buf);
                                buf[l] = saved;
                                return r;
                        }
                        buf[l] = saved;
                }
        }

        if (!h->cpuset)
                return 0;

        _cleanup_free_ char *cpus = NULL, *mems = NULL;
        if (h->created == 0)
                return cpuset_values(buf, len, root_len, &cpus, &mems, reterr);
        r = cpuset_values(buf, ancestor_len(buf, len, h->created), root_len, &cpus, &mems, reterr);
        if (r < 0)
                return r;
        for (unsigned k = h->created; k > 0; k--) {
                size_t l = ancestor_len(buf, len, k - 1);

                for (int i = 0; i < 2; i++) {
                        const char *val = i == 0 ? cpus : mems;
                        char file[PATH_MAX];

                        if (!*val)
                                continue;
                        snprintf(file, sizeof(file), "%.*s/%s", (int) l, buf, i == 0 ? "cpuset.cpus" : "cpuset.mems");
                        r = write_string_file_at(AT_FDCWD, file, val);
                        if (r < 0)
                                return moat_error_set(reterr, r, "writing \"%s\" to %s", val, file);
                }
        }
        return 0;
}

static int resolve_spec_path(const char *cgroups_path, const char *id, char **ret, bool *ret_relative,
                             struct moat_error **reterr)
{
        _cleanup_free_ char *def = NULL;
        const char *given = cgroups_path;
        int r;

        if (strempty(given)) {
                if (strempty(id) || strchr(id, '/'))
                        return moat_error_setx(reterr, -EINVAL, "container id \"%s\": not usable as a cgroup name",
                                               id ? id : "");
                if (asprintf(&def, "/%s", id) < 0)
                        return -ENOMEM;
                given = def;
        }

        if (given[0] != '/') {
                const char *c1 = strchr(given, ':');
                const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
                if (c2 && !strchr(c2 + 1, ':'))
                        return moat_error_setx(reterr, -EOPNOTSUPP,
                                               "cgroupsPath \"%s\": the systemd cgroup driver is not supported yet",
                                               given);
        }

        if (has_control_chars(given))
                return moat_error_setx(reterr, -EINVAL, "cgroupsPath \"%s\": control characters are not allowed",
                                       given);
        r = path_normalize(given, ret);
        if (r == -EINVAL)
                return moat_error_setx(reterr, r, "cgroupsPath \"%s\": \"..\" components are not allowed", given);
        if (r == -ENAMETOOLONG)
                return moat_error_setx(reterr, r, "cgroupsPath \"%.64s...\": too long", given);
        if (r < 0)
                return moat_error_set(reterr, r, "cgroupsPath \"%s\"", given);
        if (!**ret) {
                free(*ret);
                *ret = NULL;
                return moat_error_setx(reterr, -EINVAL, "cgroupsPath \"%s\": must name a cgroup below the root",
                                       given);
        }
        *ret_relative = given[0] != '/';
        return 0;
}

/* The container's path in the hierarchy of m: the spec path itself, or for
 * a relative one, the spec path below the caller's own cgroup. */
static int hierarchy_path(const struct moat_cgroup_mount *m, const char *spec, bool relative, const char *proc_cgroup,
                          size_t proc_cgroup_size, char **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *own = NULL, *raw = NULL;
        size_t raw_len = 0;
        int r;

        if (!relative) {
                *ret = strdup(spec);
                return *ret ? 0 : -ENOMEM;
        }

        const char *line = proc_cgroup ? own_cgroup(m, proc_cgroup, proc_cgroup_size, &raw_len) : NULL;
        if (!line)
                return moat_error_setx(reterr, -ENOENT, "no entry for the cgroup mount %s in /proc/self/cgroup",
                                       m->mountpoint);
        raw = strndup(line, raw_len);
        if (!raw)
                return -ENOMEM;
        r = path_normalize(raw, &own);
        if (r < 0)
                return moat_error_set(reterr, r, "own cgroup \"%s\" in %s", raw, m->mountpoint);

        /* A mount of a subtree: own paths are shown from the hierarchy root. */
        if (!streq(m->root, "/")) {
                _cleanup_free_ char *root = NULL;
                r = path_normalize(m->root, &root);
                if (r >= 0 && *root && startswith(own, root) && (own[strlen(root)] == '\0' || own[strlen(root)] == '/'))
                        memmove(own, own + strlen(root), strlen(own) - strlen(root) + 1);
        }

        if (strlen(own) + strlen(spec) > CGROUP_PATH_MAX)
                return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s%s is too long", m->mountpoint, own,
                                       spec);
        if (asprintf(ret, "%s%s", own, spec) < 0)
                return -ENOMEM;
        return 0;
}

static struct moat_cgroup *cgroup_new(size_t n)
{
        struct moat_cgroup *cg = calloc(1, sizeof(*cg));

        if (!cg)
                return NULL;
        cg->v2_fd = -EBADF;
        cg->h = calloc(n ? n : 1, sizeof(*cg->h));
        if (!cg->h) {
                free(cg);
                return NULL;
        }
        return cg;
}

int moat_cgroup_plan(const char *cgroups_path, const char *id, struct moat_cgroup **ret,
                     struct moat_error **reterr)
{
        _cleanup_free_ char *spec = NULL, *proc_cgroup = NULL;
        _cleanup_(moat_cgroup_freep) struct moat_cgroup *cg = NULL;
        _cleanup_(moat_cgroup_mounts_freep) struct moat_cgroup_mounts *ms = NULL;
        size_t proc_cgroup_size = 0;
        bool relative = false;
        int r;

        r = resolve_spec_path(cgroups_path, id, &spec, &relative, reterr);
        if (r < 0)
                return r;

        r = moat_cgroup_mounts_read(&ms, reterr);
        if (r < 0)
                return r;
        if (ms->n == 0)
                return moat_error_setx(reterr, -ENOENT, "no cgroup filesystem is mounted under %s", CGROUP_ROOT);

        if (relative) {
                r = read_full_file_at(AT_FDCWD, "/proc/self/cgroup", PROC_CGROUP_MAX, &proc_cgroup,
                                      &proc_cgroup_size);
                if (r < 0)
                        return moat_error_set(reterr, r, "reading /proc/self/cgroup");
        }

        cg = cgroup_new(ms->n);
        if (!cg)
                return -ENOMEM;
        for (size_t i = 0; i < ms->n; i++) {
                struct hierarchy *h = &cg->h[cg->n];
                const struct moat_cgroup_mount *m = &ms->m[i];

                /* A second mount of a hierarchy adds nothing. */
                bool again = false;
                for (size_t k = 0; k < i && !again; k++)
                        again = ms->m[k].dev == m->dev;
                if (again)
                        continue;

                r = hierarchy_path(m, spec, relative, proc_cgroup, proc_cgroup_size, &h->path, reterr);
                if (r < 0)
                        return r;
                h->mountpoint = strdup(m->mountpoint);
                if (!h->mountpoint)
                        return -ENOMEM;
                h->v2 = m->v2;
                h->dev = m->dev;
                h->cpuset = !m->v2 && comma_list_has(m->options, "cpuset", 6);
                h->rank = rank_of(m->v2, m->v2 ? "" : m->options);
                cg->n++;
        }
        cg->unified = cg->n == 1 && cg->h[0].v2 && streq(cg->h[0].mountpoint, CGROUP_ROOT);

        cgroup_set_primary_path(cg);
        cg->mounts = TAKE_PTR(ms);
        *ret = TAKE_PTR(cg);
        return 0;
}

int moat_cgroup_make(struct moat_cgroup *cg, struct moat_error **reterr)
{
        for (size_t i = 0; i < cg->n; i++) {
                if (cg->h[i].made)
                        continue;
                int r = hierarchy_create(&cg->h[i], reterr);
                if (r < 0) {
                        rollback(cg);
                        return r;
                }
                cg->h[i].made = true;
        }
        return 0;
}

int moat_cgroup_make_v2(struct moat_cgroup *cg, int *ret_fd, struct moat_error **reterr)
{
        for (size_t i = 0; i < cg->n; i++) {
                struct hierarchy *h = &cg->h[i];
                char buf[PATH_MAX];
                int r;

                if (!h->v2)
                        continue;
                if (!h->made) {
                        r = hierarchy_create(h, reterr);
                        if (r < 0)
                                return r;
                        h->made = true;
                }
                if (cg->v2_fd < 0) {
                        snprintf(buf, sizeof(buf), "%s%s", h->mountpoint, h->path);
                        cg->v2_fd = open(buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (cg->v2_fd < 0) {
                                r = moat_error_set(reterr, errno, "opening cgroup %s", buf);
                                rollback(cg);
                                return r;
                        }
                }
                *ret_fd = cg->v2_fd;
                return 0;
        }
        *ret_fd = -EBADF;
        return 0;
}

int moat_cgroup_join_open(struct moat_cgroup *cg, struct moat_cgroup_join *ret, struct moat_error **reterr)
{
        *ret = (struct moat_cgroup_join){ .n = 0 };
        for (size_t i = 0; i < cg->n; i++) {
                const struct hierarchy *h = &cg->h[i];
                char buf[PATH_MAX];

                if (h->v2)
                        continue;
                if (ret->n >= ELEMENTSOF(ret->fd)) {
                        moat_cgroup_join_close(ret);
                        return moat_error_setx(reterr, -E2BIG, "more than %zu cgroup v1 hierarchies",
                                               ELEMENTSOF(ret->fd));
                }
                snprintf(buf, sizeof(buf), "%s%s/tasks", h->mountpoint, h->path);
                int fd = open(buf, O_WRONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        int r = moat_error_set(reterr, errno, "opening %s", buf);
                        moat_cgroup_join_close(ret);
                        return r;
                }
                ret->hierarchy[ret->n] = i;
                ret->fd[ret->n++] = fd;
        }
        return 0;
}

int moat_cgroup_join_self(struct moat_cgroup *cg, struct moat_cgroup_join *join, struct moat_error **reterr)
{
        int r = 0;

        for (size_t k = 0; k < join->n && r >= 0; k++)
                if (write(join->fd[k], "0", 1) != 1) {
                        const struct hierarchy *h = &cg->h[join->hierarchy[k]];
                        r = moat_error_set(reterr, errno, "joining cgroup %s%s", h->mountpoint, h->path);
                }
        moat_cgroup_join_close(join);
        return r;
}

void moat_cgroup_join_close(struct moat_cgroup_join *join)
{
        for (size_t k = 0; k < join->n; k++)
                safe_close(join->fd[k]);
        join->n = 0;
}

int moat_cgroup_create(const char *cgroups_path, const char *id, struct moat_cgroup **ret,
                       struct moat_error **reterr)
{
        _cleanup_(moat_cgroup_freep) struct moat_cgroup *cg = NULL;
        int r = moat_cgroup_plan(cgroups_path, id, &cg, reterr);
        if (r < 0)
                return r;
        r = moat_cgroup_make(cg, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(cg);
        return 0;
}

int moat_cgroup_enter(struct moat_cgroup *cg, pid_t pid, bool v2_only, struct moat_error **reterr)
{
        char pidstr[32];
        int r;

        snprintf(pidstr, sizeof(pidstr), "%d", (int) pid);
        for (size_t i = 0; i < cg->n; i++) {
                char buf[PATH_MAX];
                if (v2_only && !cg->h[i].v2)
                        continue;
                int n = snprintf(buf, sizeof(buf), "%s%s/cgroup.procs", cg->h[i].mountpoint, cg->h[i].path);

                if (n < 0 || (size_t) n >= sizeof(buf))
                        return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s is too long",
                                               cg->h[i].mountpoint, cg->h[i].path);
                r = write_string_file_at(AT_FDCWD, buf, pidstr);
                if (r < 0)
                        return moat_error_set(reterr, r, "writing pid %s to %s", pidstr, buf);
        }
        return 0;
}

int moat_cgroup_serialize(const struct moat_cgroup *cg, char **ret)
{
        size_t size = 1;

        for (size_t i = 0; i < cg->n; i++)
                size += strlen(cg->h[i].mountpoint) + strlen(cg->h[i].path) + 16;

        _cleanup_free_ char *out = malloc(size);
        if (!out)
                return -ENOMEM;
        size_t o = 0;
        out[0] = '\0';
        for (size_t i = 0; i < cg->n; i++)
                o += (size_t) snprintf(out + o, size - o, "%s\t%s\t%u\n", cg->h[i].mountpoint, cg->h[i].path,
                                       cg->h[i].created);
        *ret = TAKE_PTR(out);
        return 0;
}

static int deserialize_line(char *line, struct hierarchy *h, struct moat_error **reterr, size_t lineno)
{
        _cleanup_free_ char *norm = NULL;
        char *f[3];
        uint32_t created;
        int r;

        f[0] = line;
        for (int k = 1; k < 3; k++) {
                f[k] = strchr(f[k - 1], '\t');
                if (!f[k])
                        return moat_error_setx(reterr, -EINVAL, "cgroup state line %zu: expected 3 fields", lineno);
                *f[k]++ = '\0';
        }
        if (strchr(f[2], '\t'))
                return moat_error_setx(reterr, -EINVAL, "cgroup state line %zu: expected 3 fields", lineno);

        r = path_normalize(f[0], &norm);
        if (r < 0 || f[0][0] != '/' || !streq(norm, f[0]) || !under_cgroup_root(f[0]) ||
            strlen(f[0]) > PATH_MAX / 4)
                return moat_error_setx(reterr, -EINVAL,
                                       "cgroup state line %zu: mountpoint \"%s\" is not a clean path under %s",
                                       lineno, f[0], CGROUP_ROOT);
        free(norm);
        norm = NULL;
        r = path_normalize(f[1], &norm);
        if (r < 0 || !streq(norm, f[1]) || !*norm)
                return moat_error_setx(reterr, -EINVAL, "cgroup state line %zu: path \"%s\" is not a clean cgroup path",
                                       lineno, f[1]);
        r = safe_atou32(f[2], &created);
        if (r < 0 || created > path_depth(f[1]))
                return moat_error_setx(reterr, -EINVAL, "cgroup state line %zu: invalid created count \"%s\"", lineno,
                                       f[2]);

        h->mountpoint = strdup(f[0]);
        h->path = TAKE_PTR(norm);
        if (!h->mountpoint)
                return -ENOMEM;
        h->created = created;
        h->v2 = is_cgroup2(f[0]);
        const char *base = strrchr(f[0], '/') + 1;
        h->cpuset = !h->v2 && comma_list_has(base, "cpuset", 6);
        h->rank = rank_of(h->v2, base);
        return 0;
}

int moat_cgroup_deserialize(const char *text, struct moat_cgroup **ret, struct moat_error **reterr)
{
        _cleanup_(moat_cgroup_freep) struct moat_cgroup *cg = NULL;
        _cleanup_free_ char *copy = NULL;
        size_t len = strnlen(text, CGROUP_STATE_MAX + 1), lines = 0;
        int r;

        if (len > CGROUP_STATE_MAX)
                return moat_error_setx(reterr, -EFBIG, "cgroup state: larger than %u bytes", CGROUP_STATE_MAX);
        for (size_t i = 0; i < len; i++)
                if (text[i] == '\n' || i == len - 1)
                        lines++;
        if (lines == 0)
                return moat_error_setx(reterr, -EINVAL, "cgroup state: empty");
        if (lines > CGROUP_MAX_HIERARCHIES)
                return moat_error_setx(reterr, -EINVAL, "cgroup state: more than %d hierarchies",
                                       CGROUP_MAX_HIERARCHIES);
        copy = strndup(text, len);
        cg = cgroup_new(lines);
        if (!copy || !cg)
                return -ENOMEM;

        size_t lineno = 0;
        for (char *line = copy, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                if (!*line)
                        return moat_error_setx(reterr, -EINVAL, "cgroup state line %zu: empty", lineno);
                r = deserialize_line(line, &cg->h[cg->n], reterr, lineno);
                if (r < 0)
                        return r;
                cg->n++;
        }
        if (cg->n == 0)
                return moat_error_setx(reterr, -EINVAL, "cgroup state: empty");
        cg->unified = cg->n == 1 && cg->h[0].v2 && streq(cg->h[0].mountpoint, CGROUP_ROOT);
        cgroup_set_primary_path(cg);
        *ret = TAKE_PTR(cg);
        return 0;
}

const char *moat_cgroup_path(const struct moat_cgroup *cg)
{
        return cg->path;
}

int moat_cgroup_pids(struct moat_cgroup *cg, pid_t **ret, size_t *ret_n, struct moat_error **reterr)
{
        const struct hierarchy *h = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t size = 0, n = 0, cap = 0;
        char buf[PATH_MAX];
        int r;

        for (size_t i = 0; i < cg->n; i++)
                if (!h || cg->h[i].rank < h->rank)
                        h = &cg->h[i];
        if (!h)
                return moat_error_setx(reterr, -ENOENT, "no cgroup hierarchy");

        r = snprintf(buf, sizeof(buf), "%s%s/cgroup.procs", h->mountpoint, h->path);
        if (r < 0 || (size_t) r >= sizeof(buf))
                return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s is too long", h->mountpoint,
                                       h->path);
        r = read_full_file_at(AT_FDCWD, buf, CGROUP_PROCS_MAX, &text, &size);
        if (r == -ENOENT) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return moat_error_set(reterr, r, "reading %s", buf);

        for (char *line = text, *next; line && *line; line = next) {
                int pid;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (!*line)
                        continue;
                r = safe_atoi(line, &pid);
                if (r < 0 || pid <= 0)
                        return moat_error_setx(reterr, -EINVAL, "%s: invalid pid \"%s\"", buf, line);
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        pid_t *np = reallocarray(pids, ncap, sizeof(*pids));
                        if (!np)
                                return -ENOMEM;
                        pids = np;
                        cap = ncap;
                }
                pids[n++] = pid;
        }
        *ret = TAKE_PTR(pids);
        *ret_n = n;
        return 0;
}

static bool v1_mount_has(const char *mountpoint, const char *controller)
{
        const char *base = strrchr(mountpoint, '/');
        base = base ? base + 1 : mountpoint;
        if (startswith(base, "name="))
                base += 5;
        return comma_list_has(base, controller, strlen(controller));
}

static bool v2_dir_has(int dir_fd, const char *controller)
{
        if (streq(controller, "freezer") || streq(controller, "kill"))
                return true;
        _cleanup_free_ char *list = NULL;
        if (read_full_file_at(dir_fd, "cgroup.controllers", 64 * 1024, &list, NULL) < 0)
                return false;
        for (char *tok = list, *save = NULL; (tok = strtok_r(tok, " \n", &save)); tok = NULL)
                if (streq(tok, controller))
                        return true;
        return false;
}

int moat_cgroup_open_controller(struct moat_cgroup *cg, const char *controller, int *ret_fd, bool *ret_v2,
                                struct moat_error **reterr)
{
        char path[PATH_MAX];

        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < cg->n; i++) {
                        const struct hierarchy *h = &cg->h[i];
                        if (h->v2 != (pass == 1))
                                continue;
                        if (!h->v2 && !v1_mount_has(h->mountpoint, controller))
                                continue;
                        int n = snprintf(path, sizeof(path), "%s%s", h->mountpoint, h->path);
                        if (n < 0 || (size_t) n >= sizeof(path))
                                return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s is too long",
                                                       h->mountpoint, h->path);
                        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0)
                                return moat_error_set(reterr, errno, "opening cgroup %s", path);
                        if (h->v2 && !v2_dir_has(fd, controller))
                                continue;
                        *ret_fd = TAKE_FD(fd);
                        if (ret_v2)
                                *ret_v2 = h->v2;
                        return 0;
                }
        return moat_error_setx(reterr, -ENOENT, "no cgroup hierarchy has the %s controller", controller);
}

bool moat_cgroup_is_unified(const struct moat_cgroup *cg)
{
        return cg->unified;
}

static const struct hierarchy *v2_hierarchy(const struct moat_cgroup *cg)
{
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].v2)
                        return &cg->h[i];
        return NULL;
}

bool moat_cgroup_has_v2(const struct moat_cgroup *cg)
{
        return v2_hierarchy(cg) != NULL;
}

int moat_cgroup_open_v2(struct moat_cgroup *cg, int *ret_fd, struct moat_error **reterr)
{
        const struct hierarchy *h = v2_hierarchy(cg);
        char path[PATH_MAX];

        if (!h)
                return moat_error_setx(reterr, -ENOENT, "no cgroup2 hierarchy is mounted");
        int n = snprintf(path, sizeof(path), "%s%s", h->mountpoint, h->path);
        if (n < 0 || (size_t) n >= sizeof(path))
                return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s is too long", h->mountpoint, h->path);
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening cgroup %s", path);
        *ret_fd = fd;
        return 0;
}

static bool space_list_has(const char *path, const char *controller)
{
        _cleanup_free_ char *list = NULL;

        if (read_full_file_at(AT_FDCWD, path, 64 * 1024, &list, NULL) < 0)
                return false;
        for (char *tok = list, *save = NULL; (tok = strtok_r(tok, " \n", &save)); tok = NULL)
                if (streq(tok, controller))
                        return true;
        return false;
}

int moat_cgroup_v2_enable(struct moat_cgroup *cg, const char *controller, struct moat_error **reterr)
{
        const struct hierarchy *h = v2_hierarchy(cg);
        char buf[PATH_MAX], file[PATH_MAX], op[64];
        int r;

        if (!h)
                return moat_error_setx(reterr, -ENOENT, "no cgroup2 hierarchy is mounted");
        if (strlen(controller) > 32 || strpbrk(controller, " /\n+-"))
                return moat_error_setx(reterr, -EINVAL, "invalid controller name \"%s\"", controller);
        int n = snprintf(buf, sizeof(buf), "%s%s", h->mountpoint, h->path);
        if (n < 0 || (size_t) n >= sizeof(buf) - 32)
                return moat_error_setx(reterr, -ENAMETOOLONG, "cgroup path %s%s is too long", h->mountpoint, h->path);
        size_t len = (size_t) n, root_len = strlen(h->mountpoint);

        snprintf(file, sizeof(file), "%s/cgroup.controllers", h->mountpoint);
        if (!space_list_has(file, controller))
                return moat_error_setx(reterr, -ENOENT, "the %s controller is not available in the cgroup2 hierarchy %s",
                                       controller, h->mountpoint);
        snprintf(op, sizeof(op), "+%s", controller);

        /* From the root down to the container's parent. */
        unsigned depth = path_depth(h->path);
        for (unsigned up = depth; up >= 1; up--) {
                size_t l = ancestor_len(buf, len, up);
                if (l < root_len)
                        l = root_len;
                snprintf(file, sizeof(file), "%.*s/cgroup.subtree_control", (int) l, buf);
                if (space_list_has(file, controller))
                        continue;
                /* cgroup v2 gives no controllers to the children of a
                 * cgroup that holds processes (the root excepted): domain
                 * controllers are refused, and threaded ones (cpu, cpuset,
                 * pids) would turn it "domain threaded" and its children
                 * unusable for processes. Refuse instead of breaking it. */
                if (l > root_len) {
                        char procs[PATH_MAX];
                        _cleanup_free_ char *text = NULL;
                        snprintf(procs, sizeof(procs), "%.*s/cgroup.procs", (int) l, buf);
                        if (read_full_file_at(AT_FDCWD, procs, 64, &text, NULL) == -EFBIG ||
                            (text && text[0] != '\0'))
                                return moat_error_setx(reterr, -EBUSY,
                                                       "enabling the %s controller: %.*s holds processes, and "
                                                       "cgroup v2 gives no controllers to the children of such a "
                                                       "cgroup (use an absolute cgroupsPath)",
                                                       controller, (int) l, buf);
                }
                r = write_string_file_at(AT_FDCWD, file, op);
                if (r < 0)
                        return moat_error_set(reterr, r, "enabling the %s controller (writing \"%s\" to %s)",
                                              controller, op, file);
        }
        return 0;
}

size_t moat_cgroup_n_hierarchies(const struct moat_cgroup *cg)
{
        return cg->n;
}

int moat_cgroup_hierarchy_dir(const struct moat_cgroup *cg, size_t i, char **ret_path, bool *ret_v2)
{
        if (i >= cg->n)
                return -ERANGE;
        if (asprintf(ret_path, "%s%s", cg->h[i].mountpoint, cg->h[i].path) < 0)
                return -ENOMEM;
        if (ret_v2)
                *ret_v2 = cg->h[i].v2;
        return 0;
}

int moat_cgroup_dir_of_mount(const struct moat_cgroup *cg, const struct moat_cgroup_mount *m, char **ret_path)
{
        for (size_t i = 0; i < cg->n; i++)
                if (cg->h[i].dev != 0 && cg->h[i].dev == m->dev)
                        return asprintf(ret_path, "%s%s", cg->h[i].mountpoint, cg->h[i].path) < 0 ? -ENOMEM : 0;
        return -ENOENT;
}

int moat_cgroup_destroy(struct moat_cgroup *cg, struct moat_error **reterr)
{
        uint64_t deadline = 0;
        int ret = 0;

        cg->v2_fd = safe_close(cg->v2_fd);
        for (size_t i = 0; i < cg->n; i++) {
                int r = rmdir_created(&cg->h[i], true, &deadline, reterr);
                if (r < 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

void moat_cgroup_free(struct moat_cgroup *cg)
{
        if (!cg)
                return;
        for (size_t i = 0; i < cg->n; i++) {
                free(cg->h[i].mountpoint);
                free(cg->h[i].path);
        }
        safe_close(cg->v2_fd);
        moat_cgroup_mounts_free(cg->mounts);
        free(cg->h);
        free(cg);
}
