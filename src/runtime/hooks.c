/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * OCI hook execution (see hooks.h). Each hook is forked and exec'd with the
 * state JSON on a pipe as stdin and the runtime's stderr as stdout and
 * stderr; nothing else is inherited. The parent feeds the pipe without
 * blocking and waits on a pidfd, so a hook that never reads its stdin or
 * never exits still meets its timeout, and every path ends with the child
 * reaped. SIGPIPE is held blocked while writing: a hook that closes stdin
 * early must not kill the runtime. An exec failure travels back as an errno
 * on a close-on-exec pipe, so the error says why the hook could not run.
 */

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "runtime/hooks.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static uint64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* Keep fds away from 0..2 so that the child's dup2()s cannot clobber them
 * (the runtime may have been started with a standard fd closed). */
static int fd_above_stdio(int fd)
{
        if (fd > 2)
                return fd;
        int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        int r = nfd < 0 ? negative_errno() : nfd;
        close(fd);
        return r;
}

static int pipe_above_stdio(int p[2])
{
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        p[0] = fd_above_stdio(p[0]);
        p[1] = fd_above_stdio(p[1]);
        if (p[0] < 0 || p[1] < 0) {
                int r = p[0] < 0 ? p[0] : p[1];
                p[0] = safe_close(p[0]);
                p[1] = safe_close(p[1]);
                return r;
        }
        return 0;
}

static MOAT_NORETURN void hook_child(const struct oci_hook *hook, char *const *argv, char *const *envp, int stdin_fd,
                                     int err_fd)
{
        sigset_t none;
        int e;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        signal(sig, SIG_DFL);

        if (dup2(stdin_fd, 0) < 0 || dup2(2, 1) < 0) {
                /* fd 2 closed: the hook gets no output channel rather than
                 * whatever the runtime's fd 1 is. */
                if (errno != EBADF)
                        goto fail;
                close(1);
        }
        if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
                long max = sysconf(_SC_OPEN_MAX);
                if (max < 0 || max > 1 << 20)
                        max = 1 << 16;
                for (int fd = 3; fd < max; fd++)
                        if (fd != err_fd)
                                close(fd);
        }

        execve(hook->path, argv, envp);
fail:
        e = errno;
        if (write(err_fd, &e, sizeof(e)) < 0) {
                /* nothing left to tell */
        }
        _exit(127);
}

static void kill_and_reap(pid_t pid, int pidfd)
{
        /* With a pidfd the signal cannot hit a recycled pid. */
        if (pidfd >= 0) {
                if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0)
                        log_debug("hook %d: pidfd_send_signal: %m", (int) pid);
        } else
                kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* Write what fits of state into the non-blocking pipe; returns true when
 * nothing more is to be written (all of it, or the reader went away). */
static bool feed_stdin(int fd, const char *state, size_t len, size_t *off)
{
        while (*off < len) {
                ssize_t k = write(fd, state + *off, len - *off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return false;
                        return true; /* EPIPE and friends: the hook does not want it */
                }
                *off += (size_t) k;
        }
        return true;
}

/*
 * Wait for the hook while feeding its stdin. Returns 0 with *ret_status set
 * when it exited (reaped), -ETIMEDOUT when it was killed after the
 * timeout (reaped), or another -errno (reaped as well).
 */
static int wait_hook(pid_t pid, int timeout_s, int stdin_w, const char *state, size_t state_len, siginfo_t *ret_si)
{
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        _cleanup_close_ int in = stdin_w;
        uint64_t deadline = timeout_s > 0 ? now_ms() + (uint64_t) timeout_s * 1000u : 0;
        size_t off = 0;
        int r;

        if (feed_stdin(in, state, state_len, &off))
                in = safe_close(in);

        for (;;) {
                struct pollfd pfd[2];
                nfds_t nfds = 0;
                int wait_ms = -1;

                if (deadline) {
                        uint64_t now = now_ms();
                        if (now >= deadline) {
                                kill_and_reap(pid, pidfd);
                                return -ETIMEDOUT;
                        }
                        wait_ms = (int) (deadline - now > INT_MAX ? INT_MAX : deadline - now);
                }

                if (pidfd >= 0)
                        pfd[nfds++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
                else if (wait_ms < 0 || wait_ms > 10)
                        wait_ms = 10; /* no pidfd (old kernel): poll the child */
                if (in >= 0)
                        pfd[nfds++] = (struct pollfd){ .fd = in, .events = POLLOUT };

                r = poll(pfd, nfds, wait_ms);
                if (r < 0 && errno != EINTR) {
                        r = negative_errno();
                        kill_and_reap(pid, pidfd);
                        return r;
                }
                if (in >= 0 && feed_stdin(in, state, state_len, &off))
                        in = safe_close(in);

                memset(ret_si, 0, sizeof(*ret_si));
                if (waitid(P_PID, (id_t) pid, ret_si, WEXITED | WNOHANG) < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        kill_and_reap(pid, pidfd);
                        return r;
                }
                if (ret_si->si_pid == pid)
                        return 0;
        }
}

static int run_hook(enum oci_hook_kind kind, size_t idx, const struct oci_hook *hook, const char *state,
                    size_t state_len, struct moat_error **reterr)
{
        const char *kname = oci_hook_kind_to_string(kind);
        char *default_argv[2] = { hook->path, NULL };
        char *empty_env[1] = { NULL };
        char *const *argv = hook->args && hook->args[0] ? hook->args : default_argv;
        char *const *envp = hook->env ? hook->env : empty_env;
        int in[2] = { -EBADF, -EBADF }, errp[2] = { -EBADF, -EBADF };
        sigset_t pipe_set, old_mask, pending_before;
        siginfo_t si;
        int r, exec_errno = 0;

        r = pipe_above_stdio(in);
        if (r >= 0) {
                r = pipe_above_stdio(errp);
                if (r < 0) {
                        in[0] = safe_close(in[0]);
                        in[1] = safe_close(in[1]);
                }
        }
        if (r < 0)
                return moat_error_set(reterr, r, "%s hook [%zu] %s: creating pipes", kname, idx, hook->path);

        pid_t pid = fork();
        if (pid < 0) {
                r = negative_errno();
                safe_close(in[0]);
                safe_close(in[1]);
                safe_close(errp[0]);
                safe_close(errp[1]);
                return moat_error_set(reterr, r, "%s hook [%zu] %s: fork", kname, idx, hook->path);
        }
        if (pid == 0)
                hook_child(hook, argv, envp, in[0], errp[1]);

        safe_close(in[0]);
        safe_close(errp[1]);
        _cleanup_close_ int err_r = errp[0];

        r = fcntl(in[1], F_SETFL, O_NONBLOCK);
        if (r < 0)
                log_debug("hook stdin: cannot make the pipe non-blocking: %m");

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        sigpending(&pending_before);
        sigprocmask(SIG_BLOCK, &pipe_set, &old_mask);

        r = wait_hook(pid, hook->has_timeout ? hook->timeout : 0, in[1], state, state_len, &si);

        /* Drop a SIGPIPE our writes raised, unless it was there before or
         * the caller keeps it blocked anyway. */
        if (!sigismember(&pending_before, SIGPIPE) && !sigismember(&old_mask, SIGPIPE)) {
                sigset_t pending;
                if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
                        struct timespec zero = { 0, 0 };
                        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                                ;
                }
        }
        sigprocmask(SIG_SETMASK, &old_mask, NULL);

        if (r == -ETIMEDOUT)
                return moat_error_setx(reterr, r, "%s hook [%zu] %s timed out after %ds", kname, idx, hook->path,
                                       hook->timeout);
        if (r < 0)
                return moat_error_set(reterr, r, "%s hook [%zu] %s: waiting for it", kname, idx, hook->path);

        if (si.si_code == CLD_EXITED && si.si_status == 127) {
                ssize_t k;
                while ((k = read(err_r, &exec_errno, sizeof(exec_errno))) < 0 && errno == EINTR)
                        ;
                if (k == (ssize_t) sizeof(exec_errno) && exec_errno > 0)
                        return moat_error_set(reterr, exec_errno, "%s hook [%zu] %s failed to run", kname, idx,
                                              hook->path);
        }
        if (si.si_code == CLD_EXITED) {
                if (si.si_status == 0)
                        return 0;
                return moat_error_setx(reterr, -EIO, "%s hook [%zu] %s exited with status %d", kname, idx,
                                       hook->path, si.si_status);
        }
        return moat_error_setx(reterr, -EIO, "%s hook [%zu] %s was killed by signal %d", kname, idx,
                               hook->path, si.si_status);
}

int moat_hooks_run(enum oci_hook_kind kind, const struct oci_hook_list *list, const char *state_json,
                   enum moat_hooks_mode mode, struct moat_error **reterr)
{
        size_t state_len = state_json ? strlen(state_json) : 0;
        int first = 0;

        if (!list)
                return 0;
        for (size_t i = 0; i < list->n_hooks; i++) {
                _cleanup_error_ struct moat_error *err = NULL;
                int r;

                log_debug("running %s hook [%zu] %s", oci_hook_kind_to_string(kind), i, list->hooks[i].path);
                r = run_hook(kind, i, &list->hooks[i], state_json ? state_json : "", state_len, &err);
                if (r >= 0)
                        continue;
                if (mode == MOAT_HOOKS_STOP_AT_FIRST_FAILURE || first == 0) {
                        first = r;
                        if (reterr && !*reterr)
                                *reterr = TAKE_PTR(err);
                }
                if (mode == MOAT_HOOKS_STOP_AT_FIRST_FAILURE)
                        return first;
                if (err)
                        log_debug("%s", err->msg);
        }
        return first;
}
