/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Starting the monitor from a threaded daemon (monitor-spawn.h) with
 * posix_spawn. The sync pipe is the monitor's fd 3. The wait for the sync line also watches the monitor's
 * pidfd, so a monitor that dies without answering cannot hang the caller.
 */

#include "engine/monitor-spawn.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"

#define SYNC_FD 3

extern char **environ;
#define MAX_ARGS 32

struct argv_builder {
        char *v[MAX_ARGS + 1];
        size_t n;
        char numbers[4][24];
        size_t n_numbers;
};

static void arg(struct argv_builder *b, const char *s)
{
        if (b->n < MAX_ARGS)
                b->v[b->n++] = (char *) s;
}

static void arg_u64(struct argv_builder *b, const char *flag, uint64_t v)
{
        if (b->n_numbers >= 4)
                return;
        char *buf = b->numbers[b->n_numbers++];
        snprintf(buf, sizeof(b->numbers[0]), "%" PRIu64, v);
        arg(b, flag);
        arg(b, buf);
}

static int pidfd_open_(pid_t pid)
{
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static void kill_and_reap(pid_t pid, int pidfd)
{
        (void) syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
        (void) waitpid(pid, NULL, 0);
}

/* Read the one sync line, or learn that the monitor died first. */
static int read_sync(int pipe_fd, int pidfd, char **ret, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = malloc(MOAT_MONITOR_SYNC_MAX + 1);
        size_t len = 0;
        struct timespec start;

        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "monitor sync buffer");
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct pollfd p[2] = { { .fd = pipe_fd, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
                struct timespec now;
                long elapsed_ms;

                clock_gettime(CLOCK_MONOTONIC, &now);
                elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                if (elapsed_ms >= MOAT_MONITOR_SYNC_TIMEOUT_MS)
                        return moat_error_setx(reterr, -ETIMEDOUT, "the monitor did not report within %d s",
                                               MOAT_MONITOR_SYNC_TIMEOUT_MS / 1000);
                int n = poll(p, 2, (int) (MOAT_MONITOR_SYNC_TIMEOUT_MS - elapsed_ms));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return moat_error_set(reterr, errno, "waiting for the monitor");
                }
                if (p[0].revents) {
                        ssize_t k = read(pipe_fd, buf + len, MOAT_MONITOR_SYNC_MAX - len);
                        if (k < 0) {
                                if (errno == EINTR || errno == EAGAIN)
                                        continue;
                                return moat_error_set(reterr, errno, "reading the monitor's sync pipe");
                        }
                        if (k == 0)
                                break;
                        len += (size_t) k;
                        if (memchr(buf, '\n', len))
                                break;
                        if (len == MOAT_MONITOR_SYNC_MAX)
                                return moat_error_setx(reterr, -EMSGSIZE, "the monitor's sync line exceeds %u bytes",
                                                       MOAT_MONITOR_SYNC_MAX);
                        continue;
                }
                if (p[1].revents) {
                        /* Dead; whatever it wrote before dying is still in the pipe. */
                        ssize_t k = read(pipe_fd, buf + len, MOAT_MONITOR_SYNC_MAX - len);
                        if (k > 0)
                                len += (size_t) k;
                        break;
                }
        }
        if (len == 0)
                return moat_error_setx(reterr, -EPROTO, "the monitor exited without reporting");
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

static int parse_sync(const char *line, pid_t *ret_pid, struct moat_error **reterr)
{
        json_error_t jerr;
        json_t *doc = json_loads(line, JSON_DISABLE_EOF_CHECK, &jerr);
        int r;

        if (!doc || !json_is_object(doc)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EPROTO, "the monitor's sync line is not a JSON object");
        }
        json_t *err = json_object_get(doc, "error");
        json_t *pid = json_object_get(doc, "pid");
        if (json_is_string(err))
                r = moat_error_setx(reterr, -EIO, "%s", json_string_value(err));
        else if (json_is_integer(pid) && json_integer_value(pid) > 0 && json_integer_value(pid) <= INT32_MAX) {
                *ret_pid = (pid_t) json_integer_value(pid);
                r = 0;
        } else
                r = moat_error_setx(reterr, -EPROTO, "the monitor's sync line has neither \"pid\" nor \"error\"");
        json_decref(doc);
        return r;
}

static int spawn(char *const *argv, struct moat_monitor_started *ret, struct moat_error **reterr)
{
        _cleanup_close_ int rd = -EBADF, wr = -EBADF, pidfd = -EBADF;
        _cleanup_free_ char *line = NULL;
        int fds[2];
        pid_t pid, cpid = 0;
        int r;

        if (access(argv[0], X_OK) < 0)
                return moat_error_set(reterr, errno, "monitor %s", argv[0]);
        if (pipe2(fds, O_CLOEXEC) < 0)
                return moat_error_set(reterr, errno, "pipe for the monitor");
        rd = fds[0];
        wr = fds[1];
        /* posix_spawn (vfork-like in glibc): a fork of the threaded daemon
         * copies its page tables first, 7-17 ms here; this does not. The
         * monitor gets the sync pipe as fd 3, nothing above it, no blocked
         * signals and default handlers. */
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        int sr = posix_spawn_file_actions_adddup2(&fa, wr, SYNC_FD);
        if (sr == 0)
                sr = posix_spawn_file_actions_addclosefrom_np(&fa, SYNC_FD + 1);
        if (sr == 0)
                sr = posix_spawnattr_setsigmask(&attr, &none);
        if (sr == 0)
                sr = posix_spawnattr_setsigdefault(&attr, &all);
        if (sr == 0)
                sr = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (sr == 0)
                sr = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (sr != 0)
                return moat_error_set(reterr, sr, "starting the monitor %s", argv[0]);
        wr = safe_close(wr);
        pidfd = pidfd_open_(pid);
        if (pidfd < 0) {
                r = moat_error_set(reterr, errno, "pidfd of the monitor %d", (int) pid);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        r = read_sync(rd, pidfd, &line, reterr);
        if (r >= 0)
                r = parse_sync(line, &cpid, reterr);
        if (r < 0) {
                kill_and_reap(pid, pidfd);
                return r;
        }
        ret->monitor_pid = pid;
        ret->monitor_pidfd = TAKE_FD(pidfd);
        ret->pid = cpid;
        return 0;
}

int moat_monitor_start_run(const struct moat_monitor_run *o, struct moat_monitor_started *ret,
                           struct moat_error **reterr)
{
        struct argv_builder b = {};

        arg(&b, o->monitor_path);
        arg(&b, "run");
        arg(&b, "--id");
        arg(&b, o->id);
        arg(&b, "--bundle");
        arg(&b, o->bundle);
        arg(&b, "--runtime-root");
        arg(&b, o->runtime_root);
        if (o->log_path) {
                arg(&b, "--log-path");
                arg(&b, o->log_path);
        }
        if (o->log_max_size)
                arg_u64(&b, "--log-max-size", o->log_max_size);
        if (o->log_max_file)
                arg_u64(&b, "--log-max-file", o->log_max_file);
        if (o->tty)
                arg(&b, "--tty");
        if (o->open_stdin)
                arg(&b, "--stdin");
        if (o->stdin_once)
                arg(&b, "--stdin-once");
        if (o->wait_start)
                arg(&b, "--wait-start");
        arg(&b, "--sync-fd");
        arg(&b, "3");
        b.v[b.n] = NULL;
        return spawn(b.v, ret, reterr);
}

int moat_monitor_start_exec(const struct moat_monitor_exec *o, struct moat_monitor_started *ret,
                            struct moat_error **reterr)
{
        struct argv_builder b = {};

        arg(&b, o->monitor_path);
        arg(&b, "exec");
        arg(&b, "--id");
        arg(&b, o->id);
        arg(&b, "--exec-id");
        arg(&b, o->exec_id);
        arg(&b, "--dir");
        arg(&b, o->dir);
        arg(&b, "--runtime-root");
        arg(&b, o->runtime_root);
        arg(&b, "--process");
        arg(&b, o->process_file);
        if (o->tty)
                arg(&b, "--tty");
        if (o->open_stdin)
                arg(&b, "--stdin");
        if (o->stdin_once)
                arg(&b, "--stdin-once");
        if (o->wait_start)
                arg(&b, "--wait-start");
        arg(&b, "--sync-fd");
        arg(&b, "3");
        b.v[b.n] = NULL;
        return spawn(b.v, ret, reterr);
}
