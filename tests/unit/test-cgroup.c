/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of src/runtime/cgroup.c against the host's real cgroup
 * hierarchies (runs as root). Every cgroup it makes is named after the test
 * pid and removed at the end, also when a check fails.
 */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <linux/sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/cgroup.h"
#include "tap.h"

#define MAX_MOUNTS 64

static char mounts[MAX_MOUNTS][PATH_MAX];
static size_t n_mounts;
static char name[64];

/* The cgroup mounts under /sys/fs/cgroup, read independently of the code
 * under test (no escaping: the test hosts have plain mountpoints). */
static void list_mounts(void)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096];

        while (f && fgets(line, sizeof(line), f)) {
                char mp[PATH_MAX], *sep = strstr(line, " - ");
                char fstype[32];

                if (!sep || sscanf(sep + 3, "%31s", fstype) != 1)
                        continue;
                if (!streq(fstype, "cgroup") && !streq(fstype, "cgroup2"))
                        continue;
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 || !startswith(mp, "/sys/fs/cgroup"))
                        continue;
                bool dup = false;
                for (size_t i = 0; i < n_mounts; i++)
                        dup = dup || streq(mounts[i], mp);
                if (!dup && n_mounts < MAX_MOUNTS)
                        snprintf(mounts[n_mounts++], PATH_MAX, "%s", mp);
        }
}

static bool mount_path(char *buf, size_t size, size_t i, const char *a, const char *b)
{
        int n = snprintf(buf, size, "%s%s%s", mounts[i], a, b);
        return n > 0 && (size_t) n < size;
}

static bool is_dir(const char *path)
{
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static size_t count_dirs(const char *suffix)
{
        size_t n = 0;
        for (size_t i = 0; i < n_mounts; i++) {
                char p[PATH_MAX * 2];
                n += mount_path(p, sizeof(p), i, suffix, "") && is_dir(p);
        }
        return n;
}

/* Best-effort removal of everything the test may have left behind. */
static void cleanup_all(void)
{
        static const char *const suffixes[] = { "/a/b/c", "/a/b", "/a", "", "-pre/c", "-pre", "-def" };

        for (size_t i = 0; i < n_mounts; i++)
                for (size_t k = 0; k < ELEMENTSOF(suffixes); k++) {
                        char p[PATH_MAX * 2], leaf[256];
                        snprintf(leaf, sizeof(leaf), "/%s%s", name, suffixes[k]);
                        if (mount_path(p, sizeof(p), i, leaf, ""))
                                rmdir(p);
                }
}

static pid_t spawn_sleeper(void)
{
        pid_t pid = fork();
        if (pid == 0) {
                for (;;)
                        pause();
        }
        return pid;
}

static void reap(pid_t pid)
{
        if (pid <= 0)
                return;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* One line of /proc/<pid>/cgroup per mounted hierarchy names want (or,
 * for a relative path, ends with it). Other lines can only be hierarchies
 * that are alive but not mounted here (another test may be mounting and
 * unmounting one), which the code under test cannot see. */
static bool pid_in_cgroup(pid_t pid, const char *want, bool suffix, size_t *ret_lines)
{
        char path[64];
        _cleanup_free_ char *text = NULL;
        size_t lines = 0, matches = 0;

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int) pid);
        if (read_full_file_at(AT_FDCWD, path, 1 << 20, &text, NULL) < 0)
                return false;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *p = strchr(line, ':');
                p = p ? strchr(p + 1, ':') : NULL;
                if (!p)
                        return false;
                p++;
                lines++;
                bool match = suffix ? strlen(p) >= strlen(want) && streq(p + strlen(p) - strlen(want), want)
                                    : streq(p, want);
                if (match)
                        matches++;
                else
                        printf("#   %s: %s\n", path, line);
        }
        *ret_lines = lines;
        return matches == n_mounts;
}

static void diag_text(const char *title, const char *s)
{
        printf("# %s:\n", title);
        for (const char *p = s; p && *p;) {
                size_t n = strcspn(p, "\n");
                printf("#   %.*s\n", (int) n, p);
                p += n;
                if (*p)
                        p++;
        }
}

static size_t count_lines(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                n += *s == '\n';
        return n;
}

static void test_layout(void)
{
        enum moat_cgroup_layout layout;
        int r = moat_cgroup_detect_layout(&layout, NULL);

        is_int(r, 0, "detect_layout");
        printf("# layout %d, %zu cgroup mounts\n", (int) layout, n_mounts);
        ok(layout == MOAT_CGROUP_LAYOUT_UNIFIED || layout == MOAT_CGROUP_LAYOUT_LEGACY ||
                   layout == MOAT_CGROUP_LAYOUT_HYBRID,
           "layout is a known value");
        enum moat_cgroup_layout again;
        r = moat_cgroup_detect_layout(&again, NULL);
        ok(r == 0 && again == layout, "layout is stable");
}

static void test_absolute(void)
{
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL, *cg2 = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *text = NULL, *text2 = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        char want[128];
        size_t n_pids = 0, lines = 0;
        enum moat_cgroup_layout layout;
        int r;

        snprintf(want, sizeof(want), "/%s", name);
        r = moat_cgroup_create(want, "ignored", &cg, &err);
        is_int(r, 0, "create %s%s%s", want, err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        is_str(moat_cgroup_path(cg), want, "path is shown as given");
        is_int(count_dirs(want), n_mounts, "directory exists in all %zu hierarchies", n_mounts);

        r = moat_cgroup_serialize(cg, &text);
        is_int(r, 0, "serialize");
        is_int(count_lines(text), n_mounts, "one state line per hierarchy");
        diag_text("state", text);

        pid_t child = spawn_sleeper();
        ok(child > 0, "fork sleeper");
        r = moat_cgroup_enter(cg, child, false, &err);
        is_int(r, 0, "enter %d%s%s", (int) child, err ? ": " : "", err ? err->msg : "");
        ok(pid_in_cgroup(child, want, false, &lines), "/proc/child/cgroup shows %s in every mounted hierarchy",
           want);
        ok(lines >= n_mounts, "/proc/child/cgroup has %zu lines", lines);

        r = moat_cgroup_pids(cg, &pids, &n_pids, &err);
        ok(r == 0 && n_pids == 1 && pids[0] == child, "pids lists the child");

        if (moat_cgroup_detect_layout(&layout, NULL) >= 0) {
                int fd = -1, again = -1;
                r = moat_cgroup_make_v2(cg, &fd, &err);
                if (layout == MOAT_CGROUP_LAYOUT_LEGACY)
                        ok(r == 0 && fd == -EBADF, "no cgroup2 directory on a v1 host");
                else
                        ok(r == 0 && fd >= 0 && moat_cgroup_make_v2(cg, &again, &err) == 0 && again == fd,
                           "cgroup2 directory opened once for CLONE_INTO_CGROUP");
        }

        r = moat_cgroup_deserialize(text, &cg2, &err);
        is_int(r, 0, "deserialize%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0) {
                reap(child);
                return;
        }
        r = moat_cgroup_serialize(cg2, &text2);
        ok(r == 0 && streq(text, text2), "serialize(deserialize(x)) == x");
        is_str(moat_cgroup_path(cg2), want, "deserialized path");

        moat_error_freep(&err);
        r = moat_cgroup_destroy(cg2, &err);
        is_int(r, -EBUSY, "destroy with a process inside fails with EBUSY");
        ok(err && strstr(err->msg, name), "error names the directory: %s", err ? err->msg : "");
        is_int(count_dirs(want), n_mounts, "directories still there");

        reap(child);
        moat_error_freep(&err);
        r = moat_cgroup_destroy(cg, &err);
        is_int(r, 0, "destroy after the child exited%s%s", err ? ": " : "", err ? err->msg : "");
        is_int(count_dirs(want), 0, "directories are gone");
        r = moat_cgroup_destroy(cg, &err);
        is_int(r, 0, "destroy again is fine");
}

static void test_nested(void)
{
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL, *cg2 = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *text = NULL;
        char want[192], pre[128];
        size_t lines = 0;
        int r;

        /* Missing parents are created and removed again. */
        snprintf(want, sizeof(want), "//%s/./a/b/c/", name);
        r = moat_cgroup_create(want, "x", &cg, &err);
        is_int(r, 0, "create nested %s%s%s", want, err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        snprintf(want, sizeof(want), "/%s/a/b/c", name);
        is_str(moat_cgroup_path(cg), want, "path is normalized");
        pid_t child = spawn_sleeper();
        r = moat_cgroup_enter(cg, child, false, &err);
        is_int(r, 0, "enter nested (cpuset filled on every level)%s%s", err ? ": " : "", err ? err->msg : "");
        ok(pid_in_cgroup(child, want, false, &lines), "child is in %s everywhere", want);
        reap(child);
        if (moat_cgroup_serialize(cg, &text) >= 0)
                ok(strstr(text, "\t4\n") != NULL, "four levels recorded as created");
        r = moat_cgroup_destroy(cg, &err);
        is_int(r, 0, "destroy nested%s%s", err ? ": " : "", err ? err->msg : "");
        snprintf(want, sizeof(want), "/%s", name);
        is_int(count_dirs(want), 0, "all created levels are gone");

        /* An existing parent (here with an empty cpuset) is kept. */
        snprintf(pre, sizeof(pre), "/%s-pre", name);
        for (size_t i = 0; i < n_mounts; i++) {
                char p[PATH_MAX * 2];
                if (mount_path(p, sizeof(p), i, pre, ""))
                        mkdir(p, 0755);
        }
        snprintf(want, sizeof(want), "%s/c", pre);
        r = moat_cgroup_create(want, "x", &cg2, &err);
        is_int(r, 0, "create below an existing parent%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        child = spawn_sleeper();
        r = moat_cgroup_enter(cg2, child, false, &err);
        is_int(r, 0, "enter below an existing parent%s%s", err ? ": " : "", err ? err->msg : "");
        reap(child);
        r = moat_cgroup_destroy(cg2, &err);
        is_int(r, 0, "destroy");
        is_int(count_dirs(want), 0, "created leaf is gone");
        is_int(count_dirs(pre), n_mounts, "existing parent is kept");
}

static void test_default_and_relative(void)
{
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL, *rel = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *text = NULL;
        char id[96], want[128], relname[96];
        size_t lines = 0;
        int r;

        snprintf(id, sizeof(id), "%s-def", name);
        snprintf(want, sizeof(want), "/%s", id);
        r = moat_cgroup_create(NULL, id, &cg, &err);
        is_int(r, 0, "create with the default path%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        is_str(moat_cgroup_path(cg), want, "default path is /<id>");
        is_int(count_dirs(want), n_mounts, "default path created everywhere");
        r = moat_cgroup_destroy(cg, &err);
        is_int(r, 0, "destroy default");
        is_int(count_dirs(want), 0, "default path removed");

        snprintf(relname, sizeof(relname), "%s-rel", name);
        r = moat_cgroup_create(relname, "x", &rel, &err);
        is_int(r, 0, "create relative %s%s%s", relname, err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;
        if (moat_cgroup_serialize(rel, &text) >= 0)
                diag_text("relative state", text);
        pid_t child = spawn_sleeper();
        r = moat_cgroup_enter(rel, child, false, &err);
        is_int(r, 0, "enter relative%s%s", err ? ": " : "", err ? err->msg : "");

        /* The child's cgroup must be the test's own one plus relname. */
        _cleanup_free_ char *self = NULL, *childcg = NULL;
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d/cgroup", (int) child);
        if (read_full_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 20, &self, NULL) >= 0 &&
            read_full_file_at(AT_FDCWD, p, 1 << 20, &childcg, NULL) >= 0) {
                size_t matches = 0;
                char *sl = self, *cl = childcg;
                while (*sl && *cl) {
                        char *se = strchr(sl, '\n'), *ce = strchr(cl, '\n');
                        if (!se || !ce)
                                break;
                        *se = *ce = '\0';
                        char want_line[PATH_MAX];
                        bool root = se > sl && se[-1] == '/';
                        snprintf(want_line, sizeof(want_line), "%s%s%s", sl, root ? "" : "/", relname);
                        if (streq(want_line, cl))
                                matches++;
                        else
                                printf("#   got %s want %s\n", cl, want_line);
                        sl = se + 1;
                        cl = ce + 1;
                }
                is_int(matches, n_mounts, "relative path resolved below the caller's cgroup in each hierarchy");
        }
        ok(pid_in_cgroup(child, relname, true, &lines), "child cgroups end with %s", relname);
        reap(child);
        r = moat_cgroup_destroy(rel, &err);
        is_int(r, 0, "destroy relative%s%s", err ? ": " : "", err ? err->msg : "");
        ok(!strstr(text ? text : "", "\t0\n"), "relative leaf was created in every hierarchy");
}

static void test_refused(void)
{
        static const struct {
                const char *path;
                int err;
                const char *msg;
        } cases[] = {
                { "system.slice:moat:abc", -EOPNOTSUPP, "systemd cgroup driver is not supported" },
                { "/a/../b", -EINVAL, ".." },
                { "../x", -EINVAL, ".." },
                { "a/..", -EINVAL, ".." },
                { "/", -EINVAL, "below the root" },
                { "/./", -EINVAL, "below the root" },
                { "/a\tb", -EINVAL, "control" },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
                _cleanup_error_ struct moat_error *err = NULL;

                r = moat_cgroup_create(cases[i].path, "x", &cg, &err);
                is_int(r, cases[i].err, "cgroupsPath case %zu refused", i);
                ok(err && strstr(err->msg, cases[i].msg), "message: %s", err ? err->msg : "(none)");
                ok(!cg, "nothing returned");
        }

        _cleanup_free_ char *longpath = malloc(8192);
        memset(longpath, 'a', 8191);
        longpath[0] = '/';
        longpath[8191] = '\0';
        for (size_t i = 200; i < 8191; i += 200)
                longpath[i] = '/';
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        r = moat_cgroup_create(longpath, "x", &cg, NULL);
        is_int(r, -ENAMETOOLONG, "over-long path refused");
        memset(longpath, 'b', 300);
        longpath[0] = '/';
        longpath[300] = '\0';
        r = moat_cgroup_create(longpath, "x", &cg, NULL);
        is_int(r, -ENAMETOOLONG, "over-long component refused");
        r = moat_cgroup_create(NULL, "", &cg, NULL);
        is_int(r, -EINVAL, "empty id with no path refused");
}

static void test_deserialize_bad(void)
{
        static const char *const bad[] = {
                "",
                "/sys/fs/cgroup/memory\t/x\n\n/sys/fs/cgroup/pids\t/x\t1\n",
                "/etc\t/x\t1\n",
                "/sys/fs/cgroupx\t/x\t1\n",
                "sys/fs/cgroup/memory\t/x\t1\n",
                "/sys/fs/cgroup/../../etc\t/x\t1\n",
                "/sys/fs/cgroup/memory\t/../x\t1\n",
                "/sys/fs/cgroup/memory\tx\t1\n",
                "/sys/fs/cgroup/memory\t/x\t2\n",
                "/sys/fs/cgroup/memory\t/x\t-1\n",
                "/sys/fs/cgroup/memory\t/x\n",
                "/sys/fs/cgroup/memory\t/x\t1\textra\n",
                "/sys/fs/cgroup/memory\t/\t0\n",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
                _cleanup_error_ struct moat_error *err = NULL;
                int r = moat_cgroup_deserialize(bad[i], &cg, &err);
                ok(r < 0 && err && !cg, "bad state %zu refused: %s", i, err ? err->msg : "(none)");
        }

        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        int r = moat_cgroup_deserialize("/sys/fs/cgroup/memory\t/a/b\t2\n/sys/fs/cgroup/pids\t/a/b\t0", &cg, NULL);
        is_int(r, 0, "good state without a final newline");
        if (r >= 0)
                is_str(moat_cgroup_path(cg), "/a/b", "path of a loaded state");
}

/* The init's way in: cloned into the cgroup2 directory, then "0" written to
 * each v1 "tasks" by the process itself. */
static void test_join_self(void)
{
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        char want[128];
        size_t lines = 0;
        int v2_fd = -EBADF, r;

        snprintf(want, sizeof(want), "/%s", name);
        r = moat_cgroup_plan(want, "x", &cg, &err);
        if (r >= 0)
                r = moat_cgroup_make_v2(cg, &v2_fd, &err);
        if (r >= 0)
                r = moat_cgroup_make(cg, &err);
        is_int(r, 0, "plan, make the cgroup2 directory, make the rest%s%s", err ? ": " : "", err ? err->msg : "");
        if (r < 0)
                return;

        int ready[2];
        if (pipe2(ready, O_CLOEXEC) < 0)
                return;
        struct clone_args ca = { .exit_signal = SIGCHLD };
        if (v2_fd >= 0) {
                ca.flags = CLONE_INTO_CGROUP;
                ca.cgroup = (uint64_t) v2_fd;
        }
        pid_t child = (pid_t) syscall(SYS_clone3, &ca, sizeof(ca));
        if (child == 0) {
                struct moat_cgroup_join join;
                close(ready[0]);
                if (moat_cgroup_join_open(cg, &join, NULL) < 0 || moat_cgroup_join_self(cg, &join, NULL) < 0)
                        _exit(1);
                (void) !write(ready[1], "j", 1);
                for (;;)
                        pause();
        }
        close(ready[1]);
        char c = 0;
        ok(child > 0 && read(ready[0], &c, 1) == 1 && c == 'j', "the child joined by itself");
        close(ready[0]);
        ok(pid_in_cgroup(child, want, false, &lines), "/proc/child/cgroup shows %s in every mounted hierarchy",
           want);
        reap(child);

        /* A v1 hierarchy whose directory is gone: the error names it. */
        struct moat_cgroup_join join;
        r = moat_cgroup_destroy(cg, &err);
        is_int(r, 0, "destroy");
        moat_error_freep(&err);
        enum moat_cgroup_layout layout;
        if (moat_cgroup_detect_layout(&layout, NULL) >= 0 && layout != MOAT_CGROUP_LAYOUT_UNIFIED) {
                r = moat_cgroup_join_open(cg, &join, &err);
                ok(r == -ENOENT && err && strstr(err->msg, name) && strstr(err->msg, "/tasks"),
                   "join_open of a removed cgroup fails naming its tasks file: %s", err ? err->msg : "");
        }
}

int main(void)
{
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root\n");
                return 0;
        }
        snprintf(name, sizeof(name), "moat-unit-test-%d", (int) getpid());
        list_mounts();
        if (n_mounts == 0) {
                printf("1..0 # SKIP no cgroup mounts under /sys/fs/cgroup\n");
                return 0;
        }

        test_layout();
        test_absolute();
        cleanup_all();
        test_nested();
        cleanup_all();
        test_default_and_relative();
        cleanup_all();
        test_refused();
        test_deserialize_bad();
        test_join_self();

        char root[96];
        snprintf(root, sizeof(root), "/%s", name);
        cleanup_all();
        is_int(count_dirs(root), 0, "nothing left behind");
        return tap_done();
}
