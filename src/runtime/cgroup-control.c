/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Acting on a whole container through its cgroup, on v1, v2 and hybrid
 * hosts alike: each controller is looked up on its own
 * (moat_cgroup_open_controller says whether a v1 or the v2 hierarchy holds
 * it), so a hybrid host that has hugetlb in the unified tree and everything
 * else in v1 gets both.
 *
 * Freezing waits until the kernel reports the new state (v1 freezer.state
 * leaves FREEZING, v2 cgroup.events says "frozen 1"), bounded. Killing
 * prefers cgroup.kill (the kernel kills every member, forks included; it
 * exists in every cgroup2 directory, also the unified one of a hybrid host,
 * where the container's processes are members too) and otherwise freezes,
 * signals each pid and thaws, so no fork escapes between reading
 * cgroup.procs and signalling. A frozen v1 task only dies of SIGKILL once
 * thawed, so SIGKILL always ends with a thaw, then waits until the cgroup
 * is empty.
 *
 * Statistics are runc's `events --stats` document (runc's types.Stats JSON
 * names), read from whatever files the kernel has: a missing file leaves its
 * field out rather than reporting an invented zero. The stat-file parsers
 * are written here because they are a few lines per format and no library
 * reads cgroup files.
 */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "runtime/cgroup-control.h"

/* Bound on one cgroup file (memory.stat, per-cpu lists of big machines). */
#define STAT_FILE_MAX (1024u * 1024u)

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void sleep_us(unsigned us)
{
        struct timespec ts = { us / 1000000u, (long) (us % 1000000u) * 1000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* The directory behind dir_fd, for messages only. */
static void fd_path(int dir_fd, char *buf, size_t size)
{
        char link[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", dir_fd);
        ssize_t n = readlink(link, buf, size - 1);
        if (n < 0) {
                snprintf(buf, size, "(cgroup fd %d)", dir_fd);
                return;
        }
        buf[n] = '\0';
}

static int read_file_at(int dir_fd, const char *name, char **ret)
{
        return read_full_file_at(dir_fd, name, STAT_FILE_MAX, ret, NULL);
}

static char *strip(char *s)
{
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = '\0';
        while (*s == ' ' || *s == '\t')
                s++;
        return s;
}

/* ---- parsers ------------------------------------------------------------- */

int moat_cgroup_parse_u64_or_max(const char *text, uint64_t *ret)
{
        char buf[64];
        size_t n = strlen(text);
        if (n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, text, n + 1);
        char *s = strip(buf);
        if (streq(s, "max")) {
                *ret = UINT64_MAX;
                return 0;
        }
        return safe_atou64(s, ret);
}

/* Walk "key value" lines; fn is called for each well-formed one. */
static int for_each_keyed(const char *text, int (*fn)(const char *key, uint64_t v, void *data), void *data)
{
        const char *p = text;
        while (*p) {
                const char *eol = strchr(p, '\n');
                size_t len = eol ? (size_t) (eol - p) : strlen(p);
                char line[512];
                if (len < sizeof(line)) {
                        memcpy(line, p, len);
                        line[len] = '\0';
                        char *sp = strchr(line, ' ');
                        uint64_t v;
                        if (sp && sp != line) {
                                *sp = '\0';
                                if (moat_cgroup_parse_u64_or_max(sp + 1, &v) >= 0) {
                                        int r = fn(line, v, data);
                                        if (r != 0)
                                                return r;
                                }
                        }
                }
                p += len;
                if (*p == '\n')
                        p++;
        }
        return 0;
}

static json_t *json_u64(uint64_t v)
{
        /* See MOAT_CGROUP_STATS_UNLIMITED: only "unlimited" is this large. */
        return json_integer(v > (uint64_t) INT64_MAX ? MOAT_CGROUP_STATS_UNLIMITED : (json_int_t) v);
}

static int set_u64(json_t *o, const char *key, uint64_t v)
{
        return json_object_set_new(o, key, json_u64(v)) < 0 ? -ENOMEM : 0;
}

static int add_keyed(const char *key, uint64_t v, void *data)
{
        return set_u64(data, key, v);
}

int moat_cgroup_parse_flat_keyed(const char *text, json_t **ret)
{
        json_t *o = json_object();
        if (!o)
                return -ENOMEM;
        int r = for_each_keyed(text, add_keyed, o);
        if (r < 0) {
                json_decref(o);
                return r;
        }
        *ret = o;
        return 0;
}

struct find_key {
        const char *key;
        uint64_t v;
};

static int match_key(const char *key, uint64_t v, void *data)
{
        struct find_key *f = data;
        if (!streq(key, f->key))
                return 0;
        f->v = v;
        return 1;
}

int moat_cgroup_parse_key(const char *text, const char *key, uint64_t *ret)
{
        struct find_key f = { key, 0 };
        if (for_each_keyed(text, match_key, &f) != 1)
                return -ENOENT;
        *ret = f.v;
        return 0;
}

int moat_cgroup_parse_u64_list(const char *text, json_t **ret)
{
        json_t *a = json_array();
        if (!a)
                return -ENOMEM;
        const char *p = text;
        for (;;) {
                p += strspn(p, " \t\n");
                if (!*p)
                        break;
                size_t len = strcspn(p, " \t\n");
                char tok[32];
                uint64_t v;
                if (len >= sizeof(tok)) {
                        json_decref(a);
                        return -EINVAL;
                }
                memcpy(tok, p, len);
                tok[len] = '\0';
                int r = safe_atou64(tok, &v);
                if (r < 0 || json_array_append_new(a, json_u64(v)) < 0) {
                        json_decref(a);
                        return r < 0 ? r : -ENOMEM;
                }
                p += len;
        }
        *ret = a;
        return 0;
}

int moat_cgroup_parse_usage_all(const char *text, json_t **ret_user, json_t **ret_kernel)
{
        _cleanup_free_ char *copy = strdup(text);
        json_t *user = json_array(), *kernel = json_array();
        int r = 0;

        if (!copy || !user || !kernel) {
                r = -ENOMEM;
                goto fail;
        }
        bool header = true;
        for (char *line = copy, *save = NULL; (line = strtok_r(line, "\n", &save)); line = NULL) {
                char *f[3], *s2 = NULL;
                size_t n = 0;
                for (char *t = line; n < 3 && (t = strtok_r(t, " \t", &s2)); t = NULL)
                        f[n++] = t;
                if (header) {
                        /* "cpu user system" */
                        header = false;
                        if (n == 3 && streq(f[0], "cpu"))
                                continue;
                }
                uint64_t cpu, u, k;
                if (n != 3 || safe_atou64(f[0], &cpu) < 0 || safe_atou64(f[1], &u) < 0 ||
                    safe_atou64(f[2], &k) < 0) {
                        r = -EINVAL;
                        goto fail;
                }
                if (json_array_append_new(user, json_u64(u)) < 0 || json_array_append_new(kernel, json_u64(k)) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        *ret_user = user;
        *ret_kernel = kernel;
        return 0;
fail:
        json_decref(user);
        json_decref(kernel);
        return r;
}

static int parse_devnum(const char *s, uint64_t *major, uint64_t *minor)
{
        char buf[48];
        const char *colon = strchr(s, ':');
        if (!colon || (size_t) (colon - s) >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, (size_t) (colon - s));
        buf[colon - s] = '\0';
        if (safe_atou64(buf, major) < 0 || safe_atou64(colon + 1, minor) < 0)
                return -EINVAL;
        return 0;
}

static int append_blkio_entry(json_t *a, uint64_t major, uint64_t minor, const char *op, uint64_t v)
{
        json_t *e = json_object();
        if (!e || set_u64(e, "major", major) < 0 || set_u64(e, "minor", minor) < 0 ||
            json_object_set_new(e, "op", json_string(op)) < 0 || set_u64(e, "value", v) < 0 ||
            json_array_append_new(a, e) < 0) {
                json_decref(e);
                return -ENOMEM;
        }
        return 0;
}

int moat_cgroup_parse_blkio_v1(const char *text, json_t **ret)
{
        _cleanup_free_ char *copy = strdup(text);
        json_t *a = json_array();
        if (!copy || !a) {
                json_decref(a);
                return -ENOMEM;
        }
        for (char *line = copy, *save = NULL; (line = strtok_r(line, "\n", &save)); line = NULL) {
                char *f[4], *s2 = NULL;
                size_t n = 0;
                for (char *t = line; n < 4 && (t = strtok_r(t, " \t", &s2)); t = NULL)
                        f[n++] = t;
                if (n == 2 && streq(f[0], "Total"))
                        continue;
                uint64_t major, minor, v;
                if (n != 3 || parse_devnum(f[0], &major, &minor) < 0 || safe_atou64(f[2], &v) < 0 ||
                    strlen(f[1]) > 32) {
                        json_decref(a);
                        return -EINVAL;
                }
                int r = append_blkio_entry(a, major, minor, f[1], v);
                if (r < 0) {
                        json_decref(a);
                        return r;
                }
        }
        *ret = a;
        return 0;
}

static json_t *get_or_add_array(json_t *o, const char *key)
{
        json_t *a = json_object_get(o, key);
        if (a)
                return a;
        a = json_array();
        if (json_object_set_new(o, key, a) < 0)
                return NULL;
        return a;
}

int moat_cgroup_parse_io_stat(const char *text, json_t *blkio)
{
        /* The io.stat keys runc reports, and where. */
        static const struct {
                const char *key, *array, *op;
        } map[] = {
                { "rbytes", "ioServiceBytesRecursive", "Read" },
                { "wbytes", "ioServiceBytesRecursive", "Write" },
                { "dbytes", "ioServiceBytesRecursive", "Discard" },
                { "rios", "ioServicedRecursive", "Read" },
                { "wios", "ioServicedRecursive", "Write" },
                { "dios", "ioServicedRecursive", "Discard" },
        };
        _cleanup_free_ char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        for (char *line = copy, *save = NULL; (line = strtok_r(line, "\n", &save)); line = NULL) {
                char *s2 = NULL, *dev = strtok_r(line, " \t", &s2);
                uint64_t major, minor;
                if (!dev || parse_devnum(dev, &major, &minor) < 0)
                        return -EINVAL;
                for (char *kv; (kv = strtok_r(NULL, " \t", &s2));) {
                        char *eq = strchr(kv, '=');
                        uint64_t v;
                        if (!eq)
                                return -EINVAL;
                        *eq = '\0';
                        for (size_t i = 0; i < ELEMENTSOF(map); i++) {
                                if (!streq(kv, map[i].key))
                                        continue;
                                if (safe_atou64(eq + 1, &v) < 0)
                                        return -EINVAL;
                                json_t *a = get_or_add_array(blkio, map[i].array);
                                if (!a)
                                        return -ENOMEM;
                                int r = append_blkio_entry(a, major, minor, map[i].op, v);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

int moat_cgroup_stats_dumps(const json_t *doc, char **ret)
{
        static const char sentinel[] = ":-9223372036854775808", unlimited[] = ":18446744073709551615";
        _cleanup_free_ char *text = json_dumps(doc, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        /* Same length on both sides, so the text is rewritten in place. A
         * string value never holds the sentinel after a ':' (the keys and
         * values of a stats document are names from the kernel and ids,
         * which have no ':'); only numbers do. */
        _Static_assert(sizeof(sentinel) == sizeof(unlimited), "same length");
        for (char *p = text; (p = strstr(p, sentinel)); p += sizeof(sentinel) - 1)
                memcpy(p, unlimited, sizeof(unlimited) - 1);
        *ret = TAKE_PTR(text);
        return 0;
}

/* ---- freezing ------------------------------------------------------------ */

static int read_trimmed_at(int dir_fd, const char *name, char *buf, size_t size)
{
        _cleanup_free_ char *text = NULL;
        int r = read_full_file_at(dir_fd, name, 4096, &text, NULL);
        if (r < 0)
                return r;
        snprintf(buf, size, "%s", strip(text));
        return 0;
}

static int freeze_v1(int dir_fd, bool frozen, unsigned timeout_ms, struct moat_error **reterr)
{
        const char *want = frozen ? "FROZEN" : "THAWED";
        uint64_t start = now_ms(), last_kick = start;
        unsigned pause = 100;
        char state[32], path[PATH_MAX];

        for (;;) {
                int r = write_string_file_at(dir_fd, "freezer.state", want);
                if (r >= 0)
                        r = read_trimmed_at(dir_fd, "freezer.state", state, sizeof(state));
                if (r < 0) {
                        fd_path(dir_fd, path, sizeof(path));
                        return moat_error_set(reterr, r, "setting %s/freezer.state to %s", path, want);
                }
                if (streq(state, want))
                        return 0;
                uint64_t now = now_ms();
                if (now - start >= timeout_ms) {
                        fd_path(dir_fd, path, sizeof(path));
                        if (frozen && write_string_file_at(dir_fd, "freezer.state", "THAWED") < 0)
                                log_debug("could not thaw %s after a failed freeze", path);
                        return moat_error_setx(reterr, -ETIMEDOUT,
                                               "%s/freezer.state still says %s %u ms after writing %s: a process "
                                               "in the container does not stop",
                                               path, state, timeout_ms, want);
                }
                /* A task waiting on a vfork child that is already frozen
                 * keeps the cgroup FREEZING forever on v1; a short thaw
                 * lets it move on, as runc does. */
                if (frozen && now - last_kick >= 500) {
                        last_kick = now;
                        if (write_string_file_at(dir_fd, "freezer.state", "THAWED") < 0)
                                log_debug("could not thaw a freezing cgroup to retry");
                }
                sleep_us(pause);
                if (pause < 10000)
                        pause *= 2;
        }
}

static int events_frozen(int events_fd, bool *ret)
{
        char buf[512];
        ssize_t n = pread(events_fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        uint64_t v;
        int r = moat_cgroup_parse_key(buf, "frozen", &v);
        if (r < 0)
                return -EOPNOTSUPP; /* a kernel before 5.2 has no v2 freezer */
        *ret = v != 0;
        return 0;
}

static int freeze_v2(int dir_fd, bool frozen, unsigned timeout_ms, struct moat_error **reterr)
{
        char path[PATH_MAX];
        int r;

        _cleanup_close_ int events_fd = openat(dir_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        if (events_fd < 0) {
                fd_path(dir_fd, path, sizeof(path));
                return moat_error_set(reterr, errno, "opening %s/cgroup.events", path);
        }
        r = write_string_file_at(dir_fd, "cgroup.freeze", frozen ? "1" : "0");
        if (r < 0) {
                fd_path(dir_fd, path, sizeof(path));
                if (r == -ENOENT)
                        return moat_error_setx(reterr, -EOPNOTSUPP,
                                               "%s has no cgroup.freeze: the kernel has no cgroup2 freezer", path);
                return moat_error_set(reterr, r, "writing %d to %s/cgroup.freeze", frozen, path);
        }
        uint64_t start = now_ms();
        for (;;) {
                bool is;
                /* Reading re-arms the notification: kernfs reports POLLPRI
                 * for a change after the last read. */
                r = events_frozen(events_fd, &is);
                if (r < 0) {
                        fd_path(dir_fd, path, sizeof(path));
                        return moat_error_set(reterr, r, "reading %s/cgroup.events", path);
                }
                if (is == frozen)
                        return 0;
                uint64_t spent = now_ms() - start;
                if (spent >= timeout_ms) {
                        fd_path(dir_fd, path, sizeof(path));
                        if (frozen && write_string_file_at(dir_fd, "cgroup.freeze", "0") < 0)
                                log_debug("could not thaw %s after a failed freeze", path);
                        return moat_error_setx(reterr, -ETIMEDOUT,
                                               "%s/cgroup.events still says \"frozen %d\" %u ms after writing %d "
                                               "to cgroup.freeze",
                                               path, !frozen, timeout_ms, frozen);
                }
                struct pollfd p = { .fd = events_fd, .events = POLLPRI };
                if (poll(&p, 1, (int) (timeout_ms - spent)) < 0 && errno != EINTR) {
                        fd_path(dir_fd, path, sizeof(path));
                        return moat_error_set(reterr, errno, "waiting on %s/cgroup.events", path);
                }
        }
}

int moat_cgroup_freeze_dir(int dir_fd, bool v2, bool frozen, unsigned timeout_ms, struct moat_error **reterr)
{
        return v2 ? freeze_v2(dir_fd, frozen, timeout_ms, reterr) : freeze_v1(dir_fd, frozen, timeout_ms, reterr);
}

int moat_cgroup_dir_is_frozen(int dir_fd, bool v2, bool *ret)
{
        char buf[32];
        int r;

        if (!v2) {
                r = read_trimmed_at(dir_fd, "freezer.state", buf, sizeof(buf));
                if (r < 0)
                        return r;
                /* FREEZING counts: the container is on its way to paused
                 * (or a parent cgroup is frozen). */
                *ret = !streq(buf, "THAWED");
                return 0;
        }
        r = read_trimmed_at(dir_fd, "cgroup.freeze", buf, sizeof(buf));
        if (r < 0)
                return r;
        if (streq(buf, "1")) {
                *ret = true;
                return 0;
        }
        /* Frozen through an ancestor. */
        _cleanup_close_ int events_fd = openat(dir_fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        if (events_fd < 0)
                return -errno;
        return events_frozen(events_fd, ret);
}

int moat_cgroup_freeze(struct moat_cgroup *cg, bool frozen, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        bool v2;
        int r = moat_cgroup_open_controller(cg, "freezer", &fd, &v2, reterr);
        if (r < 0)
                return r == -ENOENT ? moat_error_wrap(reterr, -EOPNOTSUPP, "cannot %s the container",
                                                      frozen ? "freeze" : "thaw")
                                    : r;
        return moat_cgroup_freeze_dir(fd, v2, frozen, MOAT_CGROUP_FREEZE_TIMEOUT_MS, reterr);
}

int moat_cgroup_is_frozen(struct moat_cgroup *cg, bool *ret, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        bool v2;
        int r = moat_cgroup_open_controller(cg, "freezer", &fd, &v2, NULL);
        if (r == -ENOENT) {
                *ret = false;
                return 0;
        }
        if (r < 0)
                return moat_error_set(reterr, r, "opening the freezer of cgroup %s", moat_cgroup_path(cg));
        r = moat_cgroup_dir_is_frozen(fd, v2, ret);
        if (r == -ENOENT || r == -EOPNOTSUPP) {
                *ret = false;
                return 0;
        }
        if (r < 0)
                return moat_error_set(reterr, r, "reading the freezer state of cgroup %s", moat_cgroup_path(cg));
        return 0;
}

/* ---- killing ------------------------------------------------------------- */

/* cgroup.kill in the container's cgroup2 directory: 0 when written,
 * -EOPNOTSUPP when there is none (v1-only host, kernel before 5.14). */
static int kill_by_kernel(struct moat_cgroup *cg, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        bool v2 = false;
        int r = moat_cgroup_open_controller(cg, "kill", &fd, &v2, NULL);
        if (r < 0 || !v2)
                return -EOPNOTSUPP;
        r = write_string_file_at(fd, "cgroup.kill", "1");
        if (r == -ENOENT)
                return -EOPNOTSUPP;
        if (r < 0) {
                char path[PATH_MAX];
                fd_path(fd, path, sizeof(path));
                return moat_error_set(reterr, r, "writing 1 to %s/cgroup.kill", path);
        }
        return 0;
}

static int signal_members(struct moat_cgroup *cg, int sig, size_t *ret_n, char *list, size_t list_size,
                          struct moat_error **reterr)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0, used = 0;
        int r = moat_cgroup_pids(cg, &pids, &n, reterr);
        if (r < 0)
                return r;
        if (list_size)
                list[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                if (kill(pids[i], sig) < 0 && errno != ESRCH)
                        return moat_error_set(reterr, errno, "sending signal %d to pid %d of cgroup %s", sig,
                                              (int) pids[i], moat_cgroup_path(cg));
                if (list_size && used < list_size) {
                        int k = snprintf(list + used, list_size - used, "%s%d", i ? ", " : "", (int) pids[i]);
                        if (k > 0)
                                used += (size_t) k;
                }
        }
        *ret_n = n;
        return 0;
}

/* After SIGKILL: wait until cgroup.procs is empty, killing again whatever
 * shows up (a fork that raced the first round where nothing froze it). */
static int wait_empty(struct moat_cgroup *cg, struct moat_error **reterr)
{
        uint64_t start = now_ms();
        unsigned pause = 200;
        char left[256];

        for (;;) {
                size_t n = 0;
                int r = signal_members(cg, SIGKILL, &n, left, sizeof(left), reterr);
                if (r < 0)
                        return r;
                if (n == 0)
                        return 0;
                if (now_ms() - start >= MOAT_CGROUP_KILL_TIMEOUT_MS)
                        return moat_error_setx(reterr, -EBUSY,
                                               "processes still in cgroup %s %u ms after SIGKILL: %s%s",
                                               moat_cgroup_path(cg), MOAT_CGROUP_KILL_TIMEOUT_MS, left,
                                               strlen(left) + 1 >= sizeof(left) ? "..." : "");
                sleep_us(pause);
                if (pause < 20000)
                        pause *= 2;
        }
}

int moat_cgroup_kill_all(struct moat_cgroup *cg, int sig, struct moat_error **reterr)
{
        _cleanup_close_ int freezer = -EBADF;
        bool fv2 = false, was_frozen = false, froze = false, by_kernel = false;
        int r;

        if (sig == SIGKILL) {
                r = kill_by_kernel(cg, reterr);
                if (r < 0 && r != -EOPNOTSUPP)
                        return r;
                by_kernel = r == 0;
        }
        if (moat_cgroup_open_controller(cg, "freezer", &freezer, &fv2, NULL) < 0)
                freezer = -EBADF;
        if (freezer >= 0 && moat_cgroup_dir_is_frozen(freezer, fv2, &was_frozen) < 0)
                was_frozen = false;

        if (!by_kernel) {
                /* Frozen, nobody forks between reading cgroup.procs and the
                 * signal. Without a freezer (or when it cannot freeze in
                 * time), signal anyway: for SIGKILL wait_empty catches late
                 * forks. */
                if (freezer >= 0 && !was_frozen) {
                        _cleanup_error_ struct moat_error *ferr = NULL;
                        froze = moat_cgroup_freeze_dir(freezer, fv2, true, MOAT_CGROUP_FREEZE_TIMEOUT_MS, &ferr) >= 0;
                        if (!froze)
                                log_debug("kill: %s; signalling without freezing", ferr ? ferr->msg : "freeze failed");
                }
                size_t n;
                r = signal_members(cg, sig, &n, NULL, 0, reterr);
                if (r < 0) {
                        if (froze && moat_cgroup_freeze_dir(freezer, fv2, false, MOAT_CGROUP_FREEZE_TIMEOUT_MS,
                                                            NULL) < 0)
                                log_debug("kill: could not thaw %s", moat_cgroup_path(cg));
                        return r;
                }
        }
        /* Thaw what we froze; after SIGKILL also a paused container, whose
         * tasks (on v1) only die once they run again. Any other signal to a
         * paused container waits for resume, as with runc. */
        if (freezer >= 0 && (froze || (sig == SIGKILL && was_frozen))) {
                r = moat_cgroup_freeze_dir(freezer, fv2, false, MOAT_CGROUP_FREEZE_TIMEOUT_MS, reterr);
                if (r < 0)
                        return r;
        }
        if (sig != SIGKILL)
                return 0;
        return wait_empty(cg, reterr);
}

/* ---- statistics ---------------------------------------------------------- */

/* Read a file holding one number (or "max"): 0, -ENOENT when the kernel has
 * no such file, or another error. */
static int read_u64_at(int dir_fd, const char *name, uint64_t *ret)
{
        _cleanup_free_ char *text = NULL;
        int r = read_full_file_at(dir_fd, name, 4096, &text, NULL);
        if (r < 0)
                return r;
        return moat_cgroup_parse_u64_or_max(text, ret);
}

static int read_key_at(int dir_fd, const char *name, const char *key, uint64_t *ret)
{
        _cleanup_free_ char *text = NULL;
        int r = read_file_at(dir_fd, name, &text);
        if (r < 0)
                return r;
        return moat_cgroup_parse_key(text, key, ret);
}

/* Set o[key] from a one-number file when it exists. */
static int set_from_file(json_t *o, const char *key, int dir_fd, const char *name)
{
        uint64_t v;
        int r = read_u64_at(dir_fd, name, &v);
        if (r == -ENOENT || r == -EINVAL || r == -EOPNOTSUPP)
                return 0;
        if (r < 0)
                return r;
        return set_u64(o, key, v);
}

/* Set o[key] from one key of a keyed file (times mul) when it exists. */
static int set_from_key(json_t *o, const char *key, int dir_fd, const char *name, const char *fkey, uint64_t mul)
{
        uint64_t v;
        int r = read_key_at(dir_fd, name, fkey, &v);
        if (r == -ENOENT || r == -EOPNOTSUPP)
                return 0;
        if (r < 0)
                return r;
        return set_u64(o, key, v == UINT64_MAX ? v : v * mul);
}

/* Attach child to parent[key] when it has anything in it. */
static int attach(json_t *parent, const char *key, json_t *child)
{
        if ((json_is_object(child) && json_object_size(child) == 0) ||
            (json_is_array(child) && json_array_size(child) == 0)) {
                json_decref(child);
                return 0;
        }
        return json_object_set_new(parent, key, child) < 0 ? -ENOMEM : 0;
}

static int open_v2_dir(struct moat_cgroup *cg, int *ret_fd)
{
        for (size_t i = 0; i < moat_cgroup_n_hierarchies(cg); i++) {
                _cleanup_free_ char *path = NULL;
                bool v2;
                if (moat_cgroup_hierarchy_dir(cg, i, &path, &v2) < 0 || !v2)
                        continue;
                int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                *ret_fd = fd;
                return 0;
        }
        return -ENOENT;
}

static int stats_cpu(struct moat_cgroup *cg, json_t *stats, struct moat_error **reterr)
{
        _cleanup_close_ int acct = -EBADF, cpu = -EBADF;
        bool acct_v2 = false, cpu_v2 = false;
        json_t *usage = json_object(), *thr = json_object(), *cpuo = json_object();
        int r = 0;

        if (!usage || !thr || !cpuo) {
                r = -ENOMEM;
                goto out;
        }
        r = moat_cgroup_open_controller(cg, "cpuacct", &acct, &acct_v2, NULL);
        if (r >= 0 && !acct_v2) {
                _cleanup_free_ char *text = NULL;
                json_t *a = NULL, *user = NULL, *kernel = NULL;

                if ((r = set_from_file(usage, "total", acct, "cpuacct.usage")) < 0)
                        goto out;
                if (read_file_at(acct, "cpuacct.usage_percpu", &text) >= 0 &&
                    moat_cgroup_parse_u64_list(text, &a) >= 0 && (r = attach(usage, "percpu", a)) < 0)
                        goto out;
                free(text);
                text = NULL;
                if (read_file_at(acct, "cpuacct.usage_all", &text) >= 0 &&
                    moat_cgroup_parse_usage_all(text, &user, &kernel) >= 0) {
                        if ((r = attach(usage, "percpu_kernel", kernel)) < 0) {
                                json_decref(user);
                                goto out;
                        }
                        if ((r = attach(usage, "percpu_user", user)) < 0)
                                goto out;
                }
                /* cpuacct.stat counts USER_HZ ticks; runc reports ns. */
                long hz = sysconf(_SC_CLK_TCK);
                uint64_t mul = hz > 0 ? 1000000000ull / (uint64_t) hz : 10000000ull;
                if ((r = set_from_key(usage, "kernel", acct, "cpuacct.stat", "system", mul)) < 0 ||
                    (r = set_from_key(usage, "user", acct, "cpuacct.stat", "user", mul)) < 0)
                        goto out;
        } else if (r < 0 && r != -ENOENT) {
                goto out;
        }

        r = moat_cgroup_open_controller(cg, "cpu", &cpu, &cpu_v2, NULL);
        if (r == -ENOENT && json_object_size(usage) == 0) {
                /* cgroup2 has cpu.stat's usage in every directory, also
                 * without the cpu controller. */
                r = open_v2_dir(cg, &cpu);
                cpu_v2 = true;
        }
        if (r >= 0) {
                if (cpu_v2 && json_object_size(usage) == 0) {
                        if ((r = set_from_key(usage, "total", cpu, "cpu.stat", "usage_usec", 1000)) < 0 ||
                            (r = set_from_key(usage, "kernel", cpu, "cpu.stat", "system_usec", 1000)) < 0 ||
                            (r = set_from_key(usage, "user", cpu, "cpu.stat", "user_usec", 1000)) < 0)
                                goto out;
                }
                if ((r = set_from_key(thr, "periods", cpu, "cpu.stat", "nr_periods", 1)) < 0 ||
                    (r = set_from_key(thr, "throttledPeriods", cpu, "cpu.stat", "nr_throttled", 1)) < 0 ||
                    (r = set_from_key(thr, "throttledTime", cpu, "cpu.stat", cpu_v2 ? "throttled_usec" : "throttled_time",
                                      cpu_v2 ? 1000 : 1)) < 0)
                        goto out;
        } else if (r != -ENOENT) {
                goto out;
        }
        r = attach(cpuo, "usage", TAKE_PTR(usage));
        if (r >= 0)
                r = attach(cpuo, "throttling", TAKE_PTR(thr));
        if (r >= 0)
                r = attach(stats, "cpu", TAKE_PTR(cpuo));
out:
        json_decref(usage);
        json_decref(thr);
        json_decref(cpuo);
        if (r < 0 && r != -ENOENT)
                return moat_error_set(reterr, r, "reading the cpu statistics of cgroup %s", moat_cgroup_path(cg));
        return 0;
}

/* One v1 memory counter group ("memory.", "memory.memsw.", ...). */
static int memory_entry_v1(int fd, const char *prefix, json_t *memory, const char *key)
{
        static const struct {
                const char *json, *file;
        } files[] = {
                { "usage", "usage_in_bytes" },
                { "max", "max_usage_in_bytes" },
                { "failcnt", "failcnt" },
                { "limit", "limit_in_bytes" },
        };
        json_t *e = json_object();
        if (!e)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char name[128];
                snprintf(name, sizeof(name), "%s%s", prefix, files[i].file);
                int r = set_from_file(e, files[i].json, fd, name);
                if (r < 0) {
                        json_decref(e);
                        return r;
                }
        }
        return attach(memory, key, e);
}

static int stats_memory_v2(int fd, json_t *usage, json_t *swap)
{
        uint64_t cur = 0, max = 0, v;
        int r;

        if (!usage || !swap)
                return -ENOMEM;
        bool have_cur = read_u64_at(fd, "memory.current", &cur) >= 0;
        bool have_max = read_u64_at(fd, "memory.max", &max) >= 0;
        if ((have_cur && (r = set_u64(usage, "usage", cur)) < 0) ||
            (have_max && (r = set_u64(usage, "limit", max)) < 0) ||
            (r = set_from_file(usage, "max", fd, "memory.peak")) < 0 ||
            (r = set_from_key(usage, "failcnt", fd, "memory.events", "max", 1)) < 0)
                return r;
        /* runc reports v2 swap like v1's memsw: memory plus swap. */
        if (have_cur && read_u64_at(fd, "memory.swap.current", &v) >= 0 && (r = set_u64(swap, "usage", v + cur)) < 0)
                return r;
        if (have_max && read_u64_at(fd, "memory.swap.max", &v) >= 0 &&
            (r = set_u64(swap, "limit", v == UINT64_MAX || max == UINT64_MAX ? UINT64_MAX : v + max)) < 0)
                return r;
        if (json_object_size(swap) > 0 &&
            (r = set_from_key(swap, "failcnt", fd, "memory.swap.events", "max", 1)) < 0)
                return r;
        return 0;
}

static int stats_memory(struct moat_cgroup *cg, json_t *stats, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *stat_text = NULL;
        bool v2;
        int r = moat_cgroup_open_controller(cg, "memory", &fd, &v2, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return moat_error_set(reterr, r, "opening the memory cgroup of %s", moat_cgroup_path(cg));

        json_t *memory = json_object(), *raw = NULL;
        if (!memory)
                return -ENOMEM;
        r = read_file_at(fd, "memory.stat", &stat_text);
        if (r >= 0) {
                r = moat_cgroup_parse_flat_keyed(stat_text, &raw);
                if (r < 0)
                        goto out;
                uint64_t cache;
                if (moat_cgroup_parse_key(stat_text, v2 ? "file" : "cache", &cache) >= 0 &&
                    (r = set_u64(memory, "cache", cache)) < 0)
                        goto out;
        } else if (r != -ENOENT)
                goto out;

        if (!v2) {
                if ((r = memory_entry_v1(fd, "memory.", memory, "usage")) < 0 ||
                    (r = memory_entry_v1(fd, "memory.memsw.", memory, "swap")) < 0 ||
                    (r = memory_entry_v1(fd, "memory.kmem.", memory, "kernel")) < 0 ||
                    (r = memory_entry_v1(fd, "memory.kmem.tcp.", memory, "kernelTCP")) < 0)
                        goto out;
        } else {
                json_t *usage = json_object(), *swap = json_object();
                r = stats_memory_v2(fd, usage, swap);
                if (r >= 0)
                        r = attach(memory, "usage", TAKE_PTR(usage));
                if (r >= 0)
                        r = attach(memory, "swap", TAKE_PTR(swap));
                json_decref(usage);
                json_decref(swap);
                if (r < 0)
                        goto out;
        }
        if (raw) {
                r = attach(memory, "raw", TAKE_PTR(raw));
                if (r < 0)
                        goto out;
        }
        r = attach(stats, "memory", TAKE_PTR(memory));
out:
        json_decref(memory);
        json_decref(raw);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the memory statistics of cgroup %s", moat_cgroup_path(cg));
        return 0;
}

static int stats_pids(struct moat_cgroup *cg, json_t *stats, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        bool v2;
        int r = moat_cgroup_open_controller(cg, "pids", &fd, &v2, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return moat_error_set(reterr, r, "opening the pids cgroup of %s", moat_cgroup_path(cg));
        json_t *pids = json_object();
        uint64_t limit;
        if (!pids)
                return -ENOMEM;
        r = set_from_file(pids, "current", fd, "pids.current");
        /* runc leaves the limit out when there is none ("max"). */
        if (r >= 0 && read_u64_at(fd, "pids.max", &limit) >= 0 && limit != UINT64_MAX)
                r = set_u64(pids, "limit", limit);
        if (r >= 0)
                r = attach(stats, "pids", pids);
        else
                json_decref(pids);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the pids statistics of cgroup %s", moat_cgroup_path(cg));
        return 0;
}

static int stats_blkio(struct moat_cgroup *cg, json_t *stats, struct moat_error **reterr)
{
        static const struct {
                const char *file, *key;
        } v1_files[] = {
                { "blkio.throttle.io_service_bytes_recursive", "ioServiceBytesRecursive" },
                { "blkio.throttle.io_serviced_recursive", "ioServicedRecursive" },
        };
        _cleanup_close_ int fd = -EBADF;
        bool v2 = false;
        int r = moat_cgroup_open_controller(cg, "blkio", &fd, &v2, NULL);
        if (r == -ENOENT || (r >= 0 && v2)) {
                fd = safe_close(fd);
                r = moat_cgroup_open_controller(cg, "io", &fd, &v2, NULL);
                if (r >= 0 && !v2)
                        r = -ENOENT;
        }
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return moat_error_set(reterr, r, "opening the blkio cgroup of %s", moat_cgroup_path(cg));

        json_t *blkio = json_object();
        if (!blkio)
                return -ENOMEM;
        if (v2) {
                _cleanup_free_ char *text = NULL;
                r = read_file_at(fd, "io.stat", &text);
                if (r >= 0)
                        r = moat_cgroup_parse_io_stat(text, blkio);
        } else {
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(v1_files); i++) {
                        _cleanup_free_ char *text = NULL;
                        json_t *a = NULL;
                        r = read_file_at(fd, v1_files[i].file, &text);
                        if (r == -ENOENT) {
                                r = 0;
                                continue;
                        }
                        if (r >= 0)
                                r = moat_cgroup_parse_blkio_v1(text, &a);
                        if (r >= 0)
                                r = attach(blkio, v1_files[i].key, a);
                }
        }
        if (r == -ENOENT)
                r = 0;
        if (r >= 0) {
                /* runc always has the object, even with no I/O yet. */
                r = json_object_set_new(stats, "blkio", blkio) < 0 ? -ENOMEM : 0;
                blkio = NULL;
        }
        json_decref(blkio);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the blkio statistics of cgroup %s", moat_cgroup_path(cg));
        return 0;
}

/* "hugetlb.2MB.current" -> "2MB" when the name is hugetlb.<size><suffix>
 * with a size of no dots (which skips the .rsvd. files). */
static bool hugetlb_size(const char *name, const char *suffix, char *buf, size_t size)
{
        if (!startswith(name, "hugetlb."))
                return false;
        name += strlen("hugetlb.");
        size_t n = strlen(name), sl = strlen(suffix);
        if (n <= sl || !streq(name + n - sl, suffix) || n - sl >= size)
                return false;
        memcpy(buf, name, n - sl);
        buf[n - sl] = '\0';
        return !strchr(buf, '.');
}

static int stats_hugetlb(struct moat_cgroup *cg, json_t *stats, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        bool v2;
        int r = moat_cgroup_open_controller(cg, "hugetlb", &fd, &v2, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return moat_error_set(reterr, r, "opening the hugetlb cgroup of %s", moat_cgroup_path(cg));

        int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        _cleanup_closedir_ DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d) {
                safe_close(dfd);
                return moat_error_set(reterr, errno, "listing the hugetlb cgroup of %s", moat_cgroup_path(cg));
        }
        json_t *hugetlb = json_object();
        if (!hugetlb)
                return -ENOMEM;
        struct dirent *de;
        r = 0;
        while (r >= 0 && (de = readdir(d))) {
                char sz[32], name[128];
                if (!hugetlb_size(de->d_name, v2 ? ".current" : ".usage_in_bytes", sz, sizeof(sz)))
                        continue;
                json_t *e = json_object();
                if (!e) {
                        r = -ENOMEM;
                        break;
                }
                r = set_from_file(e, "usage", fd, de->d_name);
                if (r >= 0 && !v2) {
                        snprintf(name, sizeof(name), "hugetlb.%s.max_usage_in_bytes", sz);
                        r = set_from_file(e, "max", fd, name);
                        snprintf(name, sizeof(name), "hugetlb.%s.failcnt", sz);
                        if (r >= 0)
                                r = set_from_file(e, "failcnt", fd, name);
                } else if (r >= 0) {
                        snprintf(name, sizeof(name), "hugetlb.%s.events", sz);
                        r = set_from_key(e, "failcnt", fd, name, "max", 1);
                }
                if (r >= 0)
                        r = json_object_set_new(hugetlb, sz, e) < 0 ? -ENOMEM : 0;
                else
                        json_decref(e);
        }
        if (r >= 0)
                r = attach(stats, "hugetlb", hugetlb);
        else
                json_decref(hugetlb);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the hugetlb statistics of cgroup %s", moat_cgroup_path(cg));
        return 0;
}

int moat_cgroup_stats(struct moat_cgroup *cg, json_t **ret, struct moat_error **reterr)
{
        json_t *stats = json_object();
        if (!stats)
                return moat_error_set(reterr, ENOMEM, "collecting statistics");
        int r = stats_cpu(cg, stats, reterr);
        if (r >= 0)
                r = stats_memory(cg, stats, reterr);
        if (r >= 0)
                r = stats_pids(cg, stats, reterr);
        if (r >= 0)
                r = stats_blkio(cg, stats, reterr);
        if (r >= 0)
                r = stats_hugetlb(cg, stats, reterr);
        if (r < 0) {
                json_decref(stats);
                return r == -ENOMEM ? moat_error_set(reterr, r, "collecting statistics") : r;
        }
        *ret = stats;
        return 0;
}

int moat_cgroup_oom_kills(struct moat_cgroup *cg, uint64_t *ret, struct moat_error **reterr)
{
        _cleanup_close_ int fd = -EBADF;
        bool v2;
        int r = moat_cgroup_open_controller(cg, "memory", &fd, &v2, reterr);
        if (r < 0)
                return r;
        const char *file = v2 ? "memory.events" : "memory.oom_control";
        r = read_key_at(fd, file, "oom_kill", ret);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "the kernel does not count OOM kills in %s of cgroup %s",
                                       file, moat_cgroup_path(cg));
        if (r < 0)
                return moat_error_set(reterr, r, "reading %s of cgroup %s", file, moat_cgroup_path(cg));
        return 0;
}
