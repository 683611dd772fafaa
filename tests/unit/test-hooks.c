/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of src/runtime/hooks.c with real hook programs (/bin/sh,
 * /bin/sleep and scripts written to a temporary directory that is removed
 * at the end).
 */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/hooks.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-hooks-XXXXXX";
static char sh_path[] = "/bin/sh";

static char *tmp(const char *name)
{
        static char buf[4][PATH_MAX];
        static int slot;
        char *b = buf[slot++ % 4];
        snprintf(b, PATH_MAX, "%s/%s", tmpdir, name);
        return b;
}

static char *read_tmp(const char *name)
{
        char *s = NULL;
        if (read_full_file_at(AT_FDCWD, tmp(name), 1 << 24, &s, NULL) < 0)
                return NULL;
        return s;
}

static int write_file(const char *path, const char *content, mode_t mode)
{
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        return write_all(fd, content, strlen(content));
}

static bool exists(const char *name)
{
        return access(tmp(name), F_OK) == 0;
}

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static bool no_children(void)
{
        return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

/* A hook running /bin/sh -c script (argv[0] "sh"). */
static struct oci_hook sh_hook(const char *script, char **argv_storage)
{
        argv_storage[0] = (char *) "sh";
        argv_storage[1] = (char *) "-c";
        argv_storage[2] = (char *) script;
        argv_storage[3] = NULL;
        return (struct oci_hook){ .path = sh_path, .args = argv_storage };
}

static int run1(struct oci_hook *h, const char *state, struct moat_error **err)
{
        struct oci_hook_list list = { .hooks = h, .n_hooks = 1 };
        return moat_hooks_run(OCI_HOOK_CREATE_RUNTIME, &list, state, MOAT_HOOKS_STOP_AT_FIRST_FAILURE, err);
}

static void test_exit_codes(void)
{
        char *a[4];
        int r;

        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct oci_hook h = sh_hook("exit 0", a);
                r = run1(&h, "{}", &err);
                is_int(r, 0, "exit 0 is success");
                ok(!err, "no error set");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct oci_hook h = sh_hook("exit 3", a);
                r = run1(&h, "{}", &err);
                is_int(r, -EIO, "exit 3 fails with EIO");
                is_str(err ? err->msg : NULL, "createRuntime hook [0] /bin/sh exited with status 3", "message");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct oci_hook h = sh_hook("kill -9 $$", a);
                r = run1(&h, "{}", &err);
                is_int(r, -EIO, "killed hook fails with EIO");
                is_str(err ? err->msg : NULL, "createRuntime hook [0] /bin/sh was killed by signal 9", "message");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct oci_hook h = { .path = (char *) "/nonexistent/moat-hook" };
                r = run1(&h, "{}", &err);
                is_int(r, -ENOENT, "missing binary fails with ENOENT");
                is_str(err ? err->msg : NULL,
                       "createRuntime hook [0] /nonexistent/moat-hook failed to run: No such file or directory",
                       "message");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                char *p = tmp("not-executable");
                if (write_file(p, "#!/bin/sh\n", 0644) < 0)
                        printf("# cannot write %s\n", p);
                struct oci_hook h = { .path = p };
                r = run1(&h, "{}", &err);
                is_int(r, -EACCES, "non-executable file fails with EACCES");
                ok(err && strstr(err->msg, "failed to run: Permission denied"), "message: %s",
                   err ? err->msg : "(none)");
        }
        ok(no_children(), "no child left behind");
}

static void test_timeout(void)
{
        static char sleep_path[] = "/bin/sleep";
        char *args[] = { (char *) "sleep", (char *) "10", NULL };
        int r;

        for (int big = 0; big < 2; big++) {
                _cleanup_error_ struct moat_error *err = NULL;
                _cleanup_free_ char *state = NULL;
                struct oci_hook h = { .path = sleep_path, .args = args, .has_timeout = true, .timeout = 1 };

                /* With a state larger than a pipe buffer the hook never
                 * reads, the write must not block past the timeout. */
                if (big) {
                        state = malloc(4 << 20);
                        memset(state, 'x', (4 << 20) - 1);
                        state[(4 << 20) - 1] = '\0';
                }
                double t0 = now_s();
                r = run1(&h, big ? state : "{}", &err);
                double dt = now_s() - t0;
                is_int(r, -ETIMEDOUT, "sleep 10 with timeout 1 times out%s", big ? " (unread 4 MiB state)" : "");
                is_str(err ? err->msg : NULL, "createRuntime hook [0] /bin/sleep timed out after 1s", "message");
                ok(dt >= 0.9 && dt < 3.0, "killed after about 1 s (%.2f s)", dt);
                ok(no_children(), "hook process reaped");
        }

        _cleanup_error_ struct moat_error *err = NULL;
        char *a[4];
        struct oci_hook h = sh_hook("exit 0", a);
        h.has_timeout = true;
        h.timeout = 5;
        double t0 = now_s();
        r = run1(&h, "{}", &err);
        is_int(r, 0, "a quick hook with a timeout succeeds");
        ok(now_s() - t0 < 1.0, "and does not wait for the timeout");
}

static void test_stdin_and_args(void)
{
        static const char script[] = "#!/bin/sh\ncat > \"$1\"\n";
        static const char state[] = "{\"ociVersion\":\"1.3.0\",\"id\":\"abc\",\"status\":\"creating\",\"pid\":42,"
                                    "\"bundle\":\"/tmp/bundle\"}";
        _cleanup_error_ struct moat_error *err = NULL;
        char script_path[PATH_MAX], out[PATH_MAX];
        int r;

        snprintf(script_path, sizeof(script_path), "%s", tmp("state-hook.sh"));
        snprintf(out, sizeof(out), "%s", tmp("state.out"));
        r = write_file(script_path, script, 0755);
        is_int(r, 0, "write hook script");

        char *args[] = { (char *) "my-argv0", out, NULL };
        struct oci_hook h = { .path = script_path, .args = args };
        r = run1(&h, state, &err);
        is_int(r, 0, "state hook runs%s%s", err ? ": " : "", err ? err->msg : "");
        _cleanup_free_ char *got = read_tmp("state.out");
        is_str(got, state, "hook read the state JSON on stdin");

        /* args[0] is argv[0], not the path (seen through /proc/self/cmdline:
         * a #! script would lose it). */
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "tr '\\0' ' ' < /proc/$$/cmdline > %s", tmp("argv0.out"));
        char *args0[] = { (char *) "my-argv0", (char *) "-c", cmd, NULL };
        struct oci_hook h0 = { .path = sh_path, .args = args0 };
        r = run1(&h0, state, &err);
        is_int(r, 0, "argv[0] hook runs");
        _cleanup_free_ char *argv0 = read_tmp("argv0.out");
        ok(argv0 && startswith(argv0, "my-argv0 -c "), "args[0] is argv[0]: %s", argv0 ? argv0 : "(null)");

        /* Without args, the path is argv[0] and there are no arguments. */
        static const char script2[] = "#!/bin/sh\necho \"$0 $#\" > \"${0%/*}/noargs.out\"\n";
        snprintf(script_path, sizeof(script_path), "%s", tmp("noargs.sh"));
        r = write_file(script_path, script2, 0755);
        is_int(r, 0, "write second hook script");
        struct oci_hook h2 = { .path = script_path };
        r = run1(&h2, state, &err);
        is_int(r, 0, "hook without args runs");
        _cleanup_free_ char *noargs = read_tmp("noargs.out");
        char want[PATH_MAX + 8];
        snprintf(want, sizeof(want), "%s 0\n", script_path);
        is_str(noargs, want, "argv is {path}");
}

static void test_env(void)
{
        char cmd[PATH_MAX + 64], *a[4];
        int r;

        snprintf(cmd, sizeof(cmd), "echo \"FOO=$FOO HOME=$HOME\" > %s", tmp("env.out"));
        {
                _cleanup_error_ struct moat_error *err = NULL;
                char *env[] = { (char *) "FOO=bar", NULL };
                struct oci_hook h = sh_hook(cmd, a);
                h.env = env;
                r = run1(&h, "{}", &err);
                is_int(r, 0, "hook with env");
                _cleanup_free_ char *got = read_tmp("env.out");
                is_str(got, "FOO=bar HOME=\n", "hook sees exactly its env");
        }
        {
                _cleanup_error_ struct moat_error *err = NULL;
                setenv("FOO", "leaked", 1);
                struct oci_hook h = sh_hook(cmd, a);
                r = run1(&h, "{}", &err);
                unsetenv("FOO");
                is_int(r, 0, "hook without env");
                _cleanup_free_ char *got = read_tmp("env.out");
                is_str(got, "FOO= HOME=\n", "the runtime's environment is not inherited");
        }
}

static void test_fds_and_output(void)
{
        char cmd[3 * PATH_MAX + 64], *a[4];
        int r;

        /* Only 0, 1 and 2 reach the hook, even without O_CLOEXEC. */
        int leak = open("/dev/null", O_RDONLY);
        /* While ls looks, the shell must hold nothing of its own: no
         * pipeline (it may not have closed the pipe's ends yet), no
         * redirection of one command (it keeps the old fd saved). */
        snprintf(cmd, sizeof(cmd), "exec > %s.ls; ls /proc/$$/fd; exec > %s; tr '\\n' ' ' < %s.ls", tmp("fds.out"),
                 tmp("fds.out"), tmp("fds.out"));
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct oci_hook h = sh_hook(cmd, a);
                r = run1(&h, "{}", &err);
                is_int(r, 0, "fd listing hook");
                _cleanup_free_ char *got = read_tmp("fds.out");
                is_str(got, "0 1 2 ", "the hook has only fds 0, 1 and 2");
        }
        close(leak);

        /* stdout and stderr of the hook both go to the runtime's stderr. */
        fflush(stdout);
        int saved = dup(2);
        int f = open(tmp("stderr.out"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(f, 2);
        close(f);
        {
                _cleanup_error_ struct moat_error *err = NULL;
                struct oci_hook h = sh_hook("echo to-stdout; echo to-stderr >&2", a);
                r = run1(&h, "{}", &err);
        }
        dup2(saved, 2);
        close(saved);
        is_int(r, 0, "output hook");
        _cleanup_free_ char *got = read_tmp("stderr.out");
        is_str(got, "to-stdout\nto-stderr\n", "hook stdout and stderr went to the runtime's stderr");
}

static void test_sigpipe(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *state = malloc(1 << 20);
        char *a[4];
        sigset_t pending;

        memset(state, 'y', (1 << 20) - 1);
        state[(1 << 20) - 1] = '\0';
        struct oci_hook h = sh_hook("exec 0<&-; exit 0", a);
        int r = run1(&h, state, &err);
        is_int(r, 0, "hook closing stdin early does not kill the runtime");
        ok(sigpending(&pending) == 0 && !sigismember(&pending, SIGPIPE), "no SIGPIPE left pending");
}

static void test_modes(void)
{
        char c0[PATH_MAX + 32], c1[PATH_MAX + 32], c2[PATH_MAX + 32];
        char *a0[4], *a1[4], *a2[4];
        int r;

        snprintf(c0, sizeof(c0), "touch %s; exit 1", tmp("mode-0"));
        snprintf(c1, sizeof(c1), "touch %s", tmp("mode-1"));
        snprintf(c2, sizeof(c2), "touch %s; exit 2", tmp("mode-2"));
        struct oci_hook hooks[3] = { sh_hook(c0, a0), sh_hook(c1, a1), sh_hook(c2, a2) };
        struct oci_hook_list list = { .hooks = hooks, .n_hooks = 3 };

        {
                _cleanup_error_ struct moat_error *err = NULL;
                r = moat_hooks_run(OCI_HOOK_POSTSTOP, &list, "{}", MOAT_HOOKS_RUN_ALL, &err);
                is_int(r, -EIO, "RUN_ALL reports a failure");
                is_str(err ? err->msg : NULL, "poststop hook [0] /bin/sh exited with status 1",
                       "RUN_ALL reports the first failure");
                ok(exists("mode-0") && exists("mode-1") && exists("mode-2"), "RUN_ALL ran every hook");
        }
        unlink(tmp("mode-0"));
        unlink(tmp("mode-1"));
        unlink(tmp("mode-2"));
        {
                _cleanup_error_ struct moat_error *err = NULL;
                r = moat_hooks_run(OCI_HOOK_PRESTART, &list, "{}", MOAT_HOOKS_STOP_AT_FIRST_FAILURE, &err);
                is_int(r, -EIO, "STOP_AT_FIRST_FAILURE fails");
                is_str(err ? err->msg : NULL, "prestart hook [0] /bin/sh exited with status 1", "message");
                ok(exists("mode-0") && !exists("mode-1") && !exists("mode-2"), "later hooks did not run");
        }
        {
                struct oci_hook_list empty = { 0 };
                is_int(moat_hooks_run(OCI_HOOK_POSTSTART, &empty, "{}", MOAT_HOOKS_STOP_AT_FIRST_FAILURE, NULL), 0,
                       "empty list");
                is_int(moat_hooks_run(OCI_HOOK_POSTSTART, NULL, NULL, MOAT_HOOKS_RUN_ALL, NULL), 0, "NULL list");
        }
        ok(no_children(), "no child left behind");
}

static int count_fds(void)
{
        _cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
        int n = 0;

        while (d && readdir(d))
                n++;
        return n;
}

static void remove_tmpdir(void)
{
        _cleanup_closedir_ DIR *d = opendir(tmpdir);
        struct dirent *de;

        while (d && (de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        unlinkat(dirfd(d), de->d_name, 0);
        rmdir(tmpdir);
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                printf("1..0 # SKIP mkdtemp failed\n");
                return 0;
        }
        signal(SIGPIPE, SIG_DFL);
        int fds = count_fds();

        test_exit_codes();
        test_timeout();
        test_stdin_and_args();
        test_env();
        test_fds_and_output();
        test_sigpipe();
        test_modes();
        is_int(count_fds(), fds, "no fd leaked by the runtime side");

        remove_tmpdir();
        ok(access(tmpdir, F_OK) < 0, "temporary directory removed");
        return tap_done();
}
