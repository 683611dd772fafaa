/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Starting the monitor from a threaded daemon (monitor-spawn.h). Monitors
 * are forked by the zygote (monitor/zygote.h), one moat-monitor process
 * this file starts with posix_spawn at the first monitor start and again
 * if it died; requests to it are serialised by a mutex. The zygote clones
 * with CLONE_PARENT, so each monitor is the daemon's child as a spawned
 * one would be, and hands back its pidfd, taken at the clone (no window
 * in which the daemon's reaper could collect the pid first). The sync
 * pipe is the monitor's fd 3. The wait for the sync line also watches the
 * monitor's pidfd, so a monitor that dies without answering cannot hang
 * the caller.
 */

#include "engine/monitor-spawn.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "monitor/zygote.h"

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

/* posix_spawn (vfork-like in glibc): a fork of the threaded daemon copies
 * its page tables first, 7-17 ms here; this does not. The child gets fd
 * as its fd 3, nothing above it, no blocked signals and default handlers. */
static int spawn_with_fd3(char *const *argv, int fd, pid_t *ret_pid)
{
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
        int sr = posix_spawn_file_actions_adddup2(&fa, fd, SYNC_FD);
        if (sr == 0)
                sr = posix_spawn_file_actions_addclosefrom_np(&fa, SYNC_FD + 1);
        if (sr == 0)
                sr = posix_spawnattr_setsigmask(&attr, &none);
        if (sr == 0)
                sr = posix_spawnattr_setsigdefault(&attr, &all);
        if (sr == 0)
                sr = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
        if (sr == 0)
                sr = posix_spawn(ret_pid, argv[0], &fa, &attr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        return -sr;
}

/* ---- the zygote ----------------------------------------------------------------- */

#define ZYGOTE_REPLY_TIMEOUT_MS (30 * 1000)

static pthread_mutex_t zygote_lock = PTHREAD_MUTEX_INITIALIZER;
static int zygote_sock = -EBADF;
static pid_t zygote_pid;
/* The spare the zygote last announced (zygote.h): our child, waiting for
 * a request on the socket we hold. */
static struct {
        pid_t pid;
        int pidfd;
        int sock;
} spare = { .pidfd = -EBADF, .sock = -EBADF };

/* Without its socket the spare exits; it is our child, reaped where the
 * caller waits for it or by the SIGCHLD handler. */
static void spare_forget_locked(void)
{
        spare.sock = safe_close(spare.sock);
        spare.pidfd = safe_close(spare.pidfd);
        spare.pid = 0;
}

/* Its end closed, the zygote exits; the daemon's SIGCHLD handler reaps it.
 * A spare it announced stays usable. */
static void zygote_drop_locked(void)
{
        zygote_sock = safe_close(zygote_sock);
        zygote_pid = 0;
}

/* A message from the zygote: an answer, or an announcement (its socket and
 * pidfd then kept as the spare). 1: an announcement, 0: an answer in
 * *rep with its pidfd (or -EBADF), -errno. */
static int zygote_receive_locked(int flags, struct moat_zygote_reply *rep, int *ret_pidfd)
{
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } ctl;
        struct iovec iov = { .iov_base = rep, .iov_len = sizeof(*rep) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        int fds[2] = { -EBADF, -EBADF };
        size_t n_fds = 0;
        ssize_t k;

        do
                k = recvmsg(zygote_sock, &mh, MSG_CMSG_CLOEXEC | flags);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if (k == 0)
                return -EPIPE;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (n_fds < 2)
                                fds[n_fds++] = fd;
                        else
                                close(fd);
                }
        }
        bool announcement = k == (ssize_t) sizeof(*rep) && rep->pid == 0 && rep->error == 0 && rep->next_spare > 0;
        if (announcement && n_fds == 2 && !(mh.msg_flags & MSG_CTRUNC)) {
                spare_forget_locked();
                spare.pid = rep->next_spare;
                spare.sock = fds[0];
                spare.pidfd = fds[1];
                return 1;
        }
        if (announcement || k != (ssize_t) sizeof(*rep) || n_fds > 1 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
                safe_close(fds[0]);
                safe_close(fds[1]);
                return -EPROTO;
        }
        *ret_pidfd = fds[0];
        return 0;
}

/* Reads the announcements waiting on the socket, without blocking. */
static void zygote_read_announcements_locked(void)
{
        struct moat_zygote_reply rep;
        int pidfd = -EBADF;

        while (zygote_sock >= 0) {
                int r = zygote_receive_locked(MSG_DONTWAIT, &rep, &pidfd);
                if (r == 1)
                        continue;
                if (r == 0)
                        safe_close(pidfd); /* no answer is due: drop it */
                if (r == -EPIPE || r == -ECONNRESET)
                        zygote_drop_locked(); /* gone: started again below */
                return;
        }
}

static int zygote_start_locked(const char *monitor_path, struct moat_error **reterr)
{
        int sv[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return moat_error_set(reterr, errno, "socket for the monitor zygote");
        char *const argv[] = { (char *) monitor_path, (char *) "zygote", NULL };
        int r = spawn_with_fd3(argv, sv[1], &pid);
        close(sv[1]);
        if (r < 0) {
                close(sv[0]);
                return moat_error_set(reterr, r, "starting the monitor zygote %s", monitor_path);
        }
        zygote_sock = sv[0];
        zygote_pid = pid;
        return 0;
}

/* Closes a spare's socket (it exits at its end) and waits for it: the
 * daemon reaps its own children before it goes. */
static void spare_end(pid_t pid, int pidfd, int sock)
{
        safe_close(sock);
        if (pidfd < 0)
                return;
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        while (poll(&p, 1, 2000) < 0 && errno == EINTR)
                ;
        (void) waitpid(pid, NULL, WNOHANG);
        close(pidfd);
}

void moat_monitor_zygote_stop(void)
{
        pthread_mutex_lock(&zygote_lock);
        pid_t pid = zygote_pid;
        int pidfd = pid > 0 ? (int) syscall(SYS_pidfd_open, pid, 0) : -EBADF;
        /* First the zygote's end, so that it clones no other spare; then
         * the spare held, and each one announced until the zygote's end
         * (it goes once its spare has); all reaped here, or by the SIGCHLD
         * handler first (ECHILD then). */
        if (zygote_sock >= 0)
                (void) shutdown(zygote_sock, SHUT_WR);
        spare_end(spare.pid, TAKE_FD(spare.pidfd), TAKE_FD(spare.sock));
        spare.pid = 0;
        while (zygote_sock >= 0) {
                struct pollfd p = { .fd = zygote_sock, .events = POLLIN };
                int pr = poll(&p, 1, 2000);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr <= 0)
                        break;
                struct moat_zygote_reply rep;
                int answer_fd = -EBADF;
                int r = zygote_receive_locked(MSG_DONTWAIT, &rep, &answer_fd);
                if (r == 1) {
                        spare_end(spare.pid, TAKE_FD(spare.pidfd), TAKE_FD(spare.sock));
                        spare.pid = 0;
                        continue;
                }
                safe_close(answer_fd);
                if (r < 0 && r != -EAGAIN && r != -EPROTO)
                        break; /* its end: it has gone */
        }
        if (pidfd >= 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };
                while (poll(&p, 1, 2000) < 0 && errno == EINTR)
                        ;
                (void) waitpid(pid, NULL, WNOHANG);
                close(pidfd);
        }
        zygote_drop_locked();
        pthread_mutex_unlock(&zygote_lock);
}

/* The request as the zygote and its spares read it (zygote.h). */
static int request_build(char *const *argv, char **ret_buf, size_t *ret_len, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = malloc(MOAT_ZYGOTE_REQUEST_MAX);
        size_t len = 0, n_args = 0;

        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "zygote request");
        for (; argv[n_args]; n_args++) {
                size_t l = strlen(argv[n_args]) + 1;
                if (n_args >= MOAT_ZYGOTE_MAX_ARGS || len + l > MOAT_ZYGOTE_REQUEST_MAX)
                        return moat_error_setx(reterr, -E2BIG, "the monitor's arguments exceed the zygote's bounds");
                memcpy(buf + len, argv[n_args], l);
                len += l;
        }
        *ret_buf = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* The request with the sync pipe attached; -errno. */
static int request_send(int sock, const char *buf, size_t len, int sync_fd)
{
        union {
                struct cmsghdr h;
                char buf[CMSG_SPACE(sizeof(int))];
        } ctl = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &sync_fd, sizeof(int));
        ssize_t k;
        while ((k = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
                ;
        if (k < 0)
                return -errno;
        return k == (ssize_t) len ? 0 : -EPROTO;
}

/* The spare serves the request: one wake-up fewer than through the
 * zygote, which clones the next spare once this one has taken it.
 * -ENOENT: no spare at hand (or it is gone). */
static int spare_request_locked(const char *buf, size_t len, int sync_fd, pid_t *ret_pid, int *ret_pidfd)
{
        if (spare.sock < 0)
                return -ENOENT;
        int r = request_send(spare.sock, buf, len, sync_fd);
        if (r < 0) {
                spare_forget_locked();
                return -ENOENT;
        }
        *ret_pid = spare.pid;
        *ret_pidfd = TAKE_FD(spare.pidfd);
        spare_forget_locked();
        return 0;
}

/* One request; -EPIPE when the zygote is gone (the caller starts another). */
static int zygote_request_locked(const char *buf, size_t len, int sync_fd, pid_t *ret_pid, int *ret_pidfd,
                                 struct moat_error **reterr)
{
        int r = request_send(zygote_sock, buf, len, sync_fd);
        if (r == -EPIPE || r == -ECONNRESET || r == -ENOTCONN)
                return -EPIPE;
        if (r < 0)
                return moat_error_set(reterr, r, "sending to the monitor zygote");

        struct moat_zygote_reply rep;
        int pidfd = -EBADF;
        for (;;) {
                struct pollfd p = { .fd = zygote_sock, .events = POLLIN };
                int pr = poll(&p, 1, ZYGOTE_REPLY_TIMEOUT_MS);
                if (pr < 0 && errno == EINTR)
                        continue;
                if (pr == 0)
                        return moat_error_setx(reterr, -ETIMEDOUT, "the monitor zygote did not answer within %d s",
                                               ZYGOTE_REPLY_TIMEOUT_MS / 1000);
                r = zygote_receive_locked(0, &rep, &pidfd);
                if (r == 1) /* a spare announced: wait on for the answer */
                        continue;
                break;
        }
        if (r == -EPIPE || r == -ECONNRESET)
                return -EPIPE;
        if (r == -EPROTO || (r == 0 && rep.error == 0 && (pidfd < 0 || rep.pid <= 0))) {
                safe_close(pidfd);
                return moat_error_setx(reterr, -EPROTO, "the monitor zygote's answer is malformed");
        }
        if (r < 0)
                return moat_error_set(reterr, r, "the monitor zygote");
        if (rep.error != 0) {
                safe_close(pidfd);
                return moat_error_set(reterr, -rep.error, "the monitor zygote could not start a monitor");
        }
        *ret_pid = rep.pid;
        *ret_pidfd = pidfd;
        return 0;
}

/* A monitor with sync_fd as its fd 3: the spare, or one the zygote forks. */
static int zygote_spawn(char *const *argv, int sync_fd, pid_t *ret_pid, int *ret_pidfd, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = request_build(argv, &buf, &len, reterr);
        if (r < 0)
                return r;

        pthread_mutex_lock(&zygote_lock);
        if (zygote_sock >= 0)
                zygote_read_announcements_locked();
        /* A zygote found gone is replaced now, even when its last spare
         * serves this request: it clones the next. */
        if (zygote_sock < 0 && spare.sock >= 0) {
                _cleanup_error_ struct moat_error *ignored = NULL;
                (void) !zygote_start_locked(argv[0], &ignored);
        }
        r = spare_request_locked(buf, len, sync_fd, ret_pid, ret_pidfd);
        for (int attempt = 0; attempt < 2 && r < 0 && (r == -ENOENT || r == -EPIPE); attempt++) {
                if (zygote_sock < 0) {
                        r = zygote_start_locked(argv[0], reterr);
                        if (r < 0)
                                break;
                }
                r = zygote_request_locked(buf, len, sync_fd, ret_pid, ret_pidfd, reterr);
                if (r == -EPIPE || r == -ETIMEDOUT || r == -EPROTO)
                        zygote_drop_locked();
        }
        pthread_mutex_unlock(&zygote_lock);
        if (r == -EPIPE)
                return moat_error_setx(reterr, -EPIPE, "the monitor zygote %s exited", argv[0]);
        return r;
}

/* ---- monitors ---------------------------------------------------------------------- */

static int spawn(char *const *argv, struct moat_monitor_started *ret, struct moat_error **reterr)
{
        _cleanup_close_ int rd = -EBADF, wr = -EBADF, pidfd = -EBADF;
        _cleanup_free_ char *line = NULL;
        int fds[2];
        pid_t pid = 0, cpid = 0;
        int r;

        if (access(argv[0], X_OK) < 0)
                return moat_error_set(reterr, errno, "monitor %s", argv[0]);
        if (pipe2(fds, O_CLOEXEC) < 0)
                return moat_error_set(reterr, errno, "pipe for the monitor");
        rd = fds[0];
        wr = fds[1];
        r = zygote_spawn(argv, wr, &pid, &pidfd, reterr);
        if (r < 0)
                return r;
        wr = safe_close(wr);
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
