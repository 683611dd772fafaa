/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of src/runtime/cgroup-control.c: the stat-file parsers on
 * samples of the kernel's formats, then (as root) freeze, kill and stats on
 * a real cgroup holding forked children, checked through the kernel's own
 * files. The v2 freezer is exercised on the container's cgroup2 directory
 * also on a hybrid host (every cgroup2 directory has cgroup.freeze). The
 * cgroup is named after the test pid and removed at the end.
 */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/cgroup.h"
#include "runtime/cgroup-control.h"
#include "tap.h"

static json_int_t jint(json_t *o, const char *path)
{
        /* "a.b.c" */
        char buf[128], *save = NULL;
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *t = strtok_r(buf, ".", &save); t && o; t = strtok_r(NULL, ".", &save))
                o = json_object_get(o, t);
        return json_is_integer(o) ? json_integer_value(o) : -1;
}

static void test_simple_parsers(void)
{
        uint64_t v = 0;

        is_int(moat_cgroup_parse_u64_or_max("12345\n", &v), 0, "plain number");
        is_int(v, 12345, "its value");
        is_int(moat_cgroup_parse_u64_or_max("max\n", &v), 0, "max");
        ok(v == UINT64_MAX, "max is UINT64_MAX");
        ok(moat_cgroup_parse_u64_or_max("-1", &v) < 0, "negative refused");
        ok(moat_cgroup_parse_u64_or_max("12abc", &v) < 0, "trailing garbage refused");
        ok(moat_cgroup_parse_u64_or_max("", &v) < 0, "empty refused");

        const char *oom_control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        is_int(moat_cgroup_parse_key(oom_control, "oom_kill", &v), 0, "oom_kill found");
        is_int(v, 3, "oom_kill value");
        is_int(moat_cgroup_parse_key(oom_control, "oom_kil", &v), -ENOENT, "prefix of a key is not the key");
        is_int(moat_cgroup_parse_key("low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n", "max", &v), 0,
               "memory.events max");
        is_int(v, 7, "memory.events max value");
        is_int(moat_cgroup_parse_key("populated 1\nfrozen 0", "frozen", &v), 0, "last line without newline");
        is_int(v, 0, "frozen 0");

        json_t *o = NULL;
        const char *stat = "cache 8192\nrss 4096\nrss_huge 0\nhierarchical_memory_limit 9223372036854771712\n"
                           "weird line\n\ntotal_cache 8192\n";
        is_int(moat_cgroup_parse_flat_keyed(stat, &o), 0, "memory.stat parsed");
        is_int(json_object_size(o), 5, "five keyed lines, the malformed ones skipped");
        is_int(jint(o, "cache"), 8192, "cache");
        is_int(jint(o, "hierarchical_memory_limit"), 9223372036854771712LL, "v1 'no limit' fits");
        json_decref(o);

        is_int(moat_cgroup_parse_u64_list("2143251 33417 \n", &o), 0, "usage_percpu parsed");
        is_int(json_array_size(o), 2, "two cpus");
        is_int(json_integer_value(json_array_get(o, 1)), 33417, "second cpu");
        json_decref(o);
        o = NULL;
        ok(moat_cgroup_parse_u64_list("1 x 3", &o) < 0 && !o, "non-number in a list refused");
}

static void test_usage_all(void)
{
        json_t *user = NULL, *kernel = NULL;
        const char *text = "cpu user system\n0 1500 200\n1 300 4000\n";

        is_int(moat_cgroup_parse_usage_all(text, &user, &kernel), 0, "cpuacct.usage_all parsed");
        is_int(json_array_size(user), 2, "two cpus of user time");
        is_int(json_integer_value(json_array_get(user, 0)), 1500, "cpu0 user");
        is_int(json_integer_value(json_array_get(kernel, 1)), 4000, "cpu1 system");
        json_decref(user);
        json_decref(kernel);
        user = kernel = NULL;
        ok(moat_cgroup_parse_usage_all("cpu user system\n0 1\n", &user, &kernel) < 0, "short line refused");
}

static void test_blkio(void)
{
        json_t *a = NULL;
        const char *text = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n"
                           "8:0 Total 12288\n259:1 Read 1\nTotal 12289\n";

        is_int(moat_cgroup_parse_blkio_v1(text, &a), 0, "blkio.throttle.io_service_bytes parsed");
        is_int(json_array_size(a), 7, "every device line, the closing Total skipped");
        json_t *e = json_array_get(a, 1);
        is_int(jint(e, "major"), 8, "major");
        is_int(jint(e, "minor"), 0, "minor");
        is_str(json_string_value(json_object_get(e, "op")), "Write", "op");
        is_int(jint(e, "value"), 8192, "value");
        is_int(jint(json_array_get(a, 6), "major"), 259, "second device");
        json_decref(a);
        a = NULL;
        is_int(moat_cgroup_parse_blkio_v1("Total 0\n", &a), 0, "no I/O yet");
        is_int(json_array_size(a), 0, "empty array");
        json_decref(a);
        a = NULL;
        ok(moat_cgroup_parse_blkio_v1("8-0 Read 1\n", &a) < 0, "bad device number refused");

        json_t *blkio = json_object();
        is_int(moat_cgroup_parse_io_stat("254:0 rbytes=4096 wbytes=512 rios=2 wios=1 dbytes=0 dios=0\n"
                                         "8:16 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6 cost.usage=9\n",
                                         blkio),
               0, "io.stat parsed");
        json_t *bytes = json_object_get(blkio, "ioServiceBytesRecursive"),
               *ios = json_object_get(blkio, "ioServicedRecursive");
        is_int(json_array_size(bytes), 6, "read, write and discard bytes of two devices");
        is_int(json_array_size(ios), 6, "read, write and discard ios of two devices");
        is_int(jint(json_array_get(bytes, 0), "value"), 4096, "rbytes");
        is_str(json_string_value(json_object_get(json_array_get(bytes, 1), "op")), "Write", "wbytes is Write");
        is_int(jint(json_array_get(ios, 3), "minor"), 16, "second device's minor");
        is_int(jint(json_array_get(ios, 5), "value"), 6, "dios");
        ok(moat_cgroup_parse_io_stat("254:0 rbytes\n", blkio) < 0, "key without value refused");
        json_decref(blkio);
}

static void test_dumps(void)
{
        json_t *doc = json_pack("{s:s, s:{s:I, s:I}}", "id", "x", "data", "limit",
                                (json_int_t) MOAT_CGROUP_STATS_UNLIMITED, "usage", (json_int_t) 5);
        _cleanup_free_ char *text = NULL;
        is_int(moat_cgroup_stats_dumps(doc, &text), 0, "dumped");
        is_str(text, "{\"id\":\"x\",\"data\":{\"limit\":18446744073709551615,\"usage\":5}}",
               "unlimited written as runc does");
        json_decref(doc);
}

/* ---- on a real cgroup ---------------------------------------------------- */

static char name[64];

static int read_file(const char *path, char *buf, size_t size)
{
        _cleanup_free_ char *text = NULL;
        int r = read_full_file_at(AT_FDCWD, path, 1 << 20, &text, NULL);
        if (r < 0)
                return r;
        snprintf(buf, size, "%s", text);
        size_t n = strlen(buf);
        while (n && buf[n - 1] == '\n')
                buf[--n] = '\0';
        return 0;
}

/* Whether the process is runnable: it bumps a counter in shared memory. */
static volatile uint64_t *counter;

static volatile uint64_t *mmap_shared_counter(void)
{
        void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

static bool counter_moves(void)
{
        uint64_t a = *counter;
        for (int i = 0; i < 200; i++) {
                struct timespec ts = { 0, 5 * 1000000L };
                nanosleep(&ts, NULL);
                if (*counter != a)
                        return true;
        }
        return false;
}

static pid_t spawn_worker(struct moat_cgroup *cg)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                close(p[1]);
                if (read(p[0], &c, 1) != 1)
                        _exit(1);
                signal(SIGUSR1, SIG_IGN);
                /* A grandchild too: kill_all must get both. */
                if (fork() == 0) {
                        for (;;)
                                pause();
                }
                for (;;)
                        (*counter)++;
        }
        close(p[0]);
        int r = moat_cgroup_enter(cg, pid, false, NULL);
        if (write(p[1], "x", 1) != 1 || r < 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                pid = -1;
        }
        close(p[1]);
        return pid;
}

static size_t count_procs(struct moat_cgroup *cg)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        if (moat_cgroup_pids(cg, &pids, &n, NULL) < 0)
                return (size_t) -1;
        return n;
}

static void wait_procs(struct moat_cgroup *cg, size_t want)
{
        for (int i = 0; i < 500 && count_procs(cg) != want; i++) {
                struct timespec ts = { 0, 2 * 1000000L };
                nanosleep(&ts, NULL);
        }
}

static int find_dir(struct moat_cgroup *cg, bool want_v2, const char *file, char *buf, size_t size)
{
        for (size_t i = 0; i < moat_cgroup_n_hierarchies(cg); i++) {
                _cleanup_free_ char *path = NULL;
                bool v2;
                char probe[PATH_MAX];
                if (moat_cgroup_hierarchy_dir(cg, i, &path, &v2) < 0 || v2 != want_v2)
                        continue;
                snprintf(probe, sizeof(probe), "%s/%s", path, file);
                if (access(probe, F_OK) == 0) {
                        snprintf(buf, size, "%s", path);
                        return 0;
                }
        }
        return -ENOENT;
}

static void test_freeze(struct moat_cgroup *cg, pid_t worker)
{
        char dir[PATH_MAX], file[PATH_MAX + 32], buf[64];
        bool frozen = true;
        _cleanup_error_ struct moat_error *err = NULL;

        is_int(moat_cgroup_is_frozen(cg, &frozen, NULL), 0, "is_frozen answers");
        ok(!frozen, "a new cgroup is not frozen");
        ok(counter_moves(), "the worker runs");

        int r = moat_cgroup_freeze(cg, true, &err);
        is_int(r, 0, "freeze: %s", err ? err->msg : "ok");
        is_int(moat_cgroup_is_frozen(cg, &frozen, NULL), 0, "is_frozen after freeze");
        ok(frozen, "reported frozen");
        ok(!counter_moves(), "the worker's counter stops");
        bool v1 = find_dir(cg, false, "freezer.state", dir, sizeof(dir)) == 0;
        if (v1) {
                snprintf(file, sizeof(file), "%s/freezer.state", dir);
                ok(read_file(file, buf, sizeof(buf)) == 0 && streq(buf, "FROZEN"), "kernel says FROZEN (%s)", buf);
        }
        is_int(moat_cgroup_freeze(cg, true, NULL), 0, "freezing twice is fine");
        is_int(moat_cgroup_freeze(cg, false, NULL), 0, "thaw");
        is_int(moat_cgroup_is_frozen(cg, &frozen, NULL), 0, "is_frozen after thaw");
        ok(!frozen, "reported thawed");
        ok(counter_moves(), "the worker runs again");
        if (v1) {
                ok(read_file(file, buf, sizeof(buf)) == 0 && streq(buf, "THAWED"), "kernel says THAWED (%s)", buf);
        }

        /* The v2 freezer on the container's cgroup2 directory. */
        if (find_dir(cg, true, "cgroup.freeze", dir, sizeof(dir)) == 0) {
                _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                _cleanup_error_ struct moat_error *err2 = NULL;
                r = moat_cgroup_freeze_dir(fd, true, true, 5000, &err2);
                is_int(r, 0, "v2 freeze of %s: %s", dir, err2 ? err2->msg : "ok");
                snprintf(file, sizeof(file), "%s/cgroup.events", dir);
                char events[256];
                ok(read_file(file, events, sizeof(events)) == 0 && strstr(events, "frozen 1"),
                   "cgroup.events says frozen 1");
                ok(!counter_moves(), "the worker stops under the v2 freezer");
                is_int(moat_cgroup_dir_is_frozen(fd, true, &frozen), 0, "v2 is_frozen");
                ok(frozen, "v2 reported frozen");
                is_int(moat_cgroup_freeze_dir(fd, true, false, 5000, NULL), 0, "v2 thaw");
                ok(read_file(file, events, sizeof(events)) == 0 && strstr(events, "frozen 0"),
                   "cgroup.events says frozen 0");
                ok(counter_moves(), "the worker runs after the v2 thaw");
        } else {
                printf("# no cgroup2 directory: v2 freezer not tested\n");
        }
        (void) worker;
}

static void test_stats(struct moat_cgroup *cg)
{
        json_t *stats = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        char dir[PATH_MAX], file[PATH_MAX + 32], buf[64];

        int r = moat_cgroup_stats(cg, &stats, &err);
        is_int(r, 0, "stats: %s", err ? err->msg : "ok");
        if (r < 0)
                return;
        if (find_dir(cg, false, "pids.current", dir, sizeof(dir)) == 0 ||
            find_dir(cg, true, "pids.current", dir, sizeof(dir)) == 0) {
                snprintf(file, sizeof(file), "%s/pids.current", dir);
                if (read_file(file, buf, sizeof(buf)) == 0)
                        is_int(jint(stats, "pids.current"), atoll(buf), "pids.current agrees with %s", file);
        }
        if (find_dir(cg, false, "memory.limit_in_bytes", dir, sizeof(dir)) == 0) {
                snprintf(file, sizeof(file), "%s/memory.limit_in_bytes", dir);
                if (read_file(file, buf, sizeof(buf)) == 0)
                        is_int(jint(stats, "memory.usage.limit"), atoll(buf), "memory limit agrees with %s", file);
                ok(jint(stats, "memory.usage.usage") > 0, "memory usage reported");
                ok(json_is_object(json_object_get(json_object_get(stats, "memory"), "raw")), "memory.stat as raw");
        }
        if (find_dir(cg, false, "cpuacct.usage", dir, sizeof(dir)) == 0) {
                ok(jint(stats, "cpu.usage.total") > 0, "cpu time of the busy worker reported");
                json_t *percpu = json_object_get(json_object_get(json_object_get(stats, "cpu"), "usage"), "percpu");
                is_int(json_array_size(percpu), sysconf(_SC_NPROCESSORS_CONF), "one percpu entry per cpu");
        }
        ok(json_is_object(json_object_get(stats, "blkio")), "blkio present");
        json_decref(stats);

        uint64_t ooms = 99;
        is_int(moat_cgroup_oom_kills(cg, &ooms, NULL), 0, "oom count readable");
        is_int(ooms, 0, "no OOM kill yet");
}

static void test_kill(struct moat_cgroup *cg, pid_t worker)
{
        _cleanup_error_ struct moat_error *err = NULL;
        bool frozen = false;

        /* Another signal to a paused cgroup: delivered, and it stays paused. */
        is_int(moat_cgroup_freeze(cg, true, NULL), 0, "pause before signalling");
        is_int(moat_cgroup_kill_all(cg, SIGUSR1, NULL), 0, "SIGUSR1 to every process (ignored by the worker)");
        is_int(moat_cgroup_is_frozen(cg, &frozen, NULL), 0, "is_frozen");
        ok(frozen, "a paused cgroup stays paused after another signal");
        is_int(count_procs(cg), 2, "worker and grandchild still there");

        /* SIGKILL to the paused cgroup: everything dies, it is thawed. */
        int r = moat_cgroup_kill_all(cg, SIGKILL, &err);
        is_int(r, 0, "SIGKILL to every process: %s", err ? err->msg : "ok");
        is_int(count_procs(cg), 0, "cgroup.procs is empty");
        is_int(moat_cgroup_is_frozen(cg, &frozen, NULL), 0, "is_frozen");
        ok(!frozen, "thawed after SIGKILL");
        int status = 0;
        is_int(waitpid(worker, &status, 0), worker, "worker reaped");
        ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "worker died of SIGKILL");
        is_int(moat_cgroup_kill_all(cg, SIGKILL, NULL), 0, "killing an empty cgroup is fine");
}

int main(void)
{
        test_simple_parsers();
        test_usage_all();
        test_blkio();
        test_dumps();

        if (geteuid() != 0) {
                printf("# not root: real cgroup checks skipped\n");
                return tap_done();
        }
        counter = mmap_shared_counter();
        /* The grandchildren re-parent to us, so they are reaped here. */
        if (!counter || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
                ok(false, "set up shared memory and subreaper");
                return tap_done();
        }
        snprintf(name, sizeof(name), "/moat-unit-ctl-%d", (int) getpid());
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        _cleanup_error_ struct moat_error *err = NULL;
        int r = moat_cgroup_create(name, "x", &cg, &err);
        is_int(r, 0, "create %s: %s", name, err ? err->msg : "ok");
        if (r < 0)
                return tap_done();
        pid_t worker = spawn_worker(cg);
        ok(worker > 0, "worker started in the cgroup");
        if (worker > 0) {
                wait_procs(cg, 2);
                is_int(count_procs(cg), 2, "worker and grandchild in the cgroup");
                test_freeze(cg, worker);
                test_stats(cg);
                test_kill(cg, worker);
                if (count_procs(cg) != 0) {
                        kill(worker, SIGKILL);
                        waitpid(worker, NULL, 0);
                }
        }
        /* The grandchild re-parents to init or a subreaper; it is dead. */
        _cleanup_error_ struct moat_error *derr = NULL;
        r = moat_cgroup_destroy(cg, &derr);
        is_int(r, 0, "cgroup removed: %s", derr ? derr->msg : "ok");
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        return tap_done();
}
