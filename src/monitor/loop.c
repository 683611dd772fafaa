/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The monitor's loop (docs/monitor.md), entered by moat-monitor (main.c)
 * once the container (or the exec'd process) exists as its child. It owns,
 * until the process has exited and its output is drained:
 *
 *   - the process's output: read as it comes (never blocking the
 *     container), logged as docker's json-file (run only), copied to every
 *     attach client that asked for that stream;
 *   - the process's stdin: bytes of attach clients that asked for it;
 *   - attach.sock and ctl.sock (resize, close-stdin, status, start);
 *   - reaping: the process (its status becomes exit.json), and any orphan
 *     that re-parents to us (we are a child subreaper).
 *
 * One poll() loop, no threads. Memory stays bounded: a client's queued
 * output is at most MOAT_MONITOR_CLIENT_BUFFER_MAX (a client that falls
 * further behind is dropped, never the container slowed down), stdin
 * moves through one 4 KiB buffer (clients are not read while it is full),
 * requests are bounded lines. Buffers are allocated when used and freed
 * when empty, so an idle monitor holds none.
 *
 * Work that needs the runtime library while the monitor has a life ahead
 * runs in a short-lived forked child (the helper main.c passes): the start
 * of a --wait-start container with poststart hooks. Whatever that work
 * touches is gone with the child, so an idle monitor keeps only the pages
 * the loop itself uses. After the init exited, the OOM count and the
 * forced delete (which also kills what was left in the cgroup, so the
 * output pipes reach EOF) run here (main.c's cleanup): the monitor is
 * ending, and a fork would cost every exit a process start.
 *
 * JSON: requests are flat objects of strings, booleans and integers, and
 * replies are written with snprintf; a small parser here reads them, so
 * that the loop touches none of jansson's pages (every page an idle
 * monitor touches is private or shared memory it is charged for).
 *
 * Signals: SIGCHLD drives reaping; SIGTERM, SIGINT, SIGHUP, SIGQUIT,
 * SIGUSR1, SIGUSR2 and SIGPIPE are blocked and read away (the daemon stops
 * a container through the runtime's kill; the monitor lives as long as the
 * container does). SIGKILL ends the monitor; the container keeps running
 * without its stdio reader.
 */

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <poll.h>
#include <sys/mman.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/parse.h"
#include "monitor/flatjson.h"
#include "monitor/loop.h"
#include "monitor/monitor.h"
#include "runtime/runtime.h"

/* After the process exited: how long output may still come (another
 * process may hold the pipes: a background child of an exec'd process),
 * and how long attach clients get to take what is queued for them. */
#define DRAIN_MS 2000
/* An exec started with --wait-start that ended before its start request:
 * how long its output is kept for the client that will ask for it. */
#define HOLD_MS 30000
/* When the monitor gives back what set-up and create left behind: this
 * long after the process started, or after its creation when it waits
 * for a start request that does not come. */
#define TRIM_AFTER_START_MS 50
#define TRIM_WAIT_MS 1000
#define FLUSH_MS 5000
#define STDIN_BUFFER 4096u
#define HELPER_REPLY_MAX 4096u

struct client {
        int fd;
        bool ctl;
        bool have_request;
        bool want_in, want_out, want_err;
        bool in_closed;
        char *line; /* request bytes until the newline */
        size_t line_len;
        char *out;  /* queued output */
        size_t out_off, out_len, out_cap;
};

static struct {
        bool exec;
        const char *id, *exec_id, *runtime_root;
        moat_monitor_helper_fn helper;
        moat_monitor_cleanup_fn cleanup;
        pid_t pid;
        int dir_fd, out_fd, err_fd, pty_fd, in_fd, attach_l, ctl_l, sync_fd, sig_fd;
        bool tty, stdin_once, wait_start, started, had_stdin, trimmed;
        uint64_t trim_at;
        struct moat_create_leftovers *leftovers;
        int fifo_path_fd, state_dir_fd;  /* O_PATH: the runtime's exec.fifo and state dir, or -1 */
        struct moat_logfile *log;
        uint64_t oom_base;
        bool exited, oom_killed;
        int status_code, status_signal;
        struct timespec started_at, finished_at;
        char in_buf[STDIN_BUFFER];
        size_t in_off, in_len;
        bool close_stdin_pending;
        struct client clients[MOAT_MONITOR_MAX_CLIENTS + MOAT_MONITOR_MAX_CTL];
        struct moat_log_stream s_out, s_err;
} M;

static uint64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void file_name(const char *name, char buf[1100])
{
        if (moat_monitor_file_name(M.exec ? M.exec_id : NULL, name, buf, 1100) < 0)
                snprintf(buf, 1100, "%s", name);
}

/* ---- clients ---------------------------------------------------------------- */

static void client_drop(struct client *c)
{
        if (c->fd < 0)
                return;
        if (!c->ctl && c->want_in && !c->in_closed && M.stdin_once)
                M.close_stdin_pending = true;
        close(c->fd);
        free(c->line);
        free(c->out);
        *c = (struct client){ .fd = -1 };
}

/* Queue a (header and) payload for c, sending straight away what the
 * socket takes. A client that would hold more than the bound is dropped. */
static void client_send(struct client *c, const void *hdr, size_t hlen, const void *data, size_t len)
{
        size_t pending = c->out_len - c->out_off;
        if (pending == 0) {
                struct iovec iov[2] = { { (void *) hdr, hlen }, { (void *) data, len } };
                struct msghdr msg = { .msg_iov = hlen ? iov : iov + 1, .msg_iovlen = hlen ? 2 : 1 };
                ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EAGAIN && errno != EINTR) {
                        client_drop(c);
                        return;
                }
                size_t sent = n > 0 ? (size_t) n : 0;
                if (sent >= hlen + len)
                        return;
                size_t hskip = sent < hlen ? sent : hlen;
                hdr = (const char *) hdr + hskip;
                hlen -= hskip;
                sent -= hskip;
                data = (const char *) data + sent;
                len -= sent;
        }
        if (pending + hlen + len > MOAT_MONITOR_CLIENT_BUFFER_MAX) {
                client_drop(c);
                return;
        }
        if (c->out_off > 0) {
                memmove(c->out, c->out + c->out_off, pending);
                c->out_off = 0;
                c->out_len = pending;
        }
        if (c->out_len + hlen + len > c->out_cap) {
                size_t cap = c->out_cap ? c->out_cap : 16384;
                while (cap < c->out_len + hlen + len)
                        cap *= 2;
                if (cap > MOAT_MONITOR_CLIENT_BUFFER_MAX)
                        cap = MOAT_MONITOR_CLIENT_BUFFER_MAX;
                char *n = realloc(c->out, cap);
                if (!n) {
                        client_drop(c);
                        return;
                }
                c->out = n;
                c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, hdr, hlen);
        memcpy(c->out + c->out_len + hlen, data, len);
        c->out_len += hlen + len;
}

static void client_flush(struct client *c)
{
        while (c->fd >= 0 && c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        client_drop(c);
                        return;
                }
                c->out_off += (size_t) n;
        }
        if (c->fd >= 0) {
                free(c->out);
                c->out = NULL;
                c->out_off = c->out_len = c->out_cap = 0;
        }
}

static void fanout(enum moat_stream stream, const char *data, size_t len)
{
        uint8_t hdr[MOAT_FRAME_HEADER_SIZE];

        moat_frame_header(hdr, stream, (uint32_t) len);
        for (size_t i = 0; i < ELEMENTSOF(M.clients); i++) {
                struct client *c = &M.clients[i];
                if (c->fd < 0 || c->ctl || !c->have_request)
                        continue;
                if (!(stream == MOAT_STREAM_STDERR ? c->want_err : c->want_out))
                        continue;
                client_send(c, hdr, M.tty ? 0 : sizeof(hdr), data, len);
        }
}

static void reply(struct client *c, const char *line)
{
        client_send(c, line, strlen(line), "\n", 1);
}

static void reply_error(struct client *c, const char *msg)
{
        char esc[1024], line[1100];
        flatjson_escape(msg, esc, sizeof(esc));
        snprintf(line, sizeof(line), "{\"error\":\"%s\"}", esc);
        reply(c, line);
}

/* ---- stdin --------------------------------------------------------------------- */

static void stdin_close(void)
{
        /* A terminal has no input side of its own to close: forwarding
         * stops (see docs/monitor.md). */
        if (M.in_fd >= 0 && M.in_fd != M.pty_fd)
                close(M.in_fd);
        M.in_fd = -1;
        M.in_off = M.in_len = 0;
        M.close_stdin_pending = false;
}

static void stdin_flush(void)
{
        while (M.in_fd >= 0 && M.in_off < M.in_len) {
                ssize_t n = write(M.in_fd, M.in_buf + M.in_off, M.in_len - M.in_off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n < 0) {
                        stdin_close(); /* the container closed its stdin */
                        return;
                }
                M.in_off += (size_t) n;
        }
        M.in_off = M.in_len = 0;
        if (M.close_stdin_pending)
                stdin_close();
}

/* ---- helpers (the runtime's start and cleanup) -------------------------------------- */

/* Run a helper verb in a child and return its JSON reply line. */
static int run_helper(const char *verb, char *out, size_t size)
{
        int p[2];
        size_t n = 0;

        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (dup2(p[1], STDOUT_FILENO) < 0)
                        _exit(127);
                _exit(M.helper(verb, M.id, M.runtime_root));
        }
        close(p[1]);
        for (;;) {
                ssize_t k = read(p[0], out + n, size - 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (n == size - 1)
                        break;
        }
        close(p[0]);
        out[n] = '\0';
        char *nl = strchr(out, '\n');
        if (nl)
                *nl = '\0';
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static const char *helper_error(const char *out)
{
        static struct flatjson_field f[] = { { .key = "error" } };
        if (flatjson_parse(out, f, 1) < 0 || f[0].type != FLATJSON_STR)
                return "the runtime helper failed";
        return f[0].str;
}

static void cleanup_container(void)
{
        uint64_t ooms = 0;
        if (M.exec)
                return;
        if (M.cleanup(M.id, M.runtime_root, &ooms) >= 0 && ooms > M.oom_base)
                M.oom_killed = true;
}

/* ---- control requests ----------------------------------------------------------------- */

/*
 * The runtime's start for a container without poststart hooks, done here
 * rather than by a helper child: main.c kept O_PATH fds of exec.fifo and
 * of the state directory; opening the fifo for
 * reading lets the init write its byte and run its program; the fifo then
 * goes (the runtime's state reads "running" from its absence). Saves a
 * process start on every `docker run` (5-30 ms here). The runtime's own
 * start (container.c) stays the reference; this follows it step by step:
 * the init's pidfd before the fifo, its byte or its death, unlink.
 * Returns NULL or the reason it failed.
 */
static const char *start_inline(void)
{
        static char why[160];
        char path[64];
        int pidfd = (int) syscall(SYS_pidfd_open, M.pid, 0);

        if (pidfd < 0)
                return "start: the container's init is gone (container not running)";
        snprintf(path, sizeof(path), "/proc/self/fd/%d", M.fifo_path_fd);
        int fifo = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fifo < 0) {
                snprintf(why, sizeof(why), "start: opening exec.fifo: %s", strerror(errno));
                close(pidfd);
                return why;
        }
        const char *ret = NULL;
        for (;;) {
                struct pollfd p[2] = { { .fd = fifo, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
                int n = poll(p, 2, 30000);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        ret = "start: the container's init did not answer";
                        break;
                }
                if (p[0].revents & (POLLIN | POLLHUP)) {
                        char b;
                        ssize_t k = read(fifo, &b, 1);
                        if (k == 1)
                                break;
                        if (k == 0) {
                                ret = "start: the container was started by someone else";
                                break;
                        }
                }
                if (p[1].revents) {
                        ret = "cannot start the container: its init exited (container not running)";
                        break;
                }
        }
        close(fifo);
        close(pidfd);
        if (!ret && unlinkat(M.state_dir_fd, "exec.fifo", 0) < 0 && errno != ENOENT) {
                snprintf(why, sizeof(why), "start: removing exec.fifo: %s", strerror(errno));
                ret = why;
        }
        M.fifo_path_fd = safe_close(M.fifo_path_fd);
        return ret;
}

/* The container's start, for a start request or right after the sync
 * answer: NULL, or why it failed. */
static const char *start_container(void)
{
        static char out[HELPER_REPLY_MAX];
        const char *why = NULL;

        if (M.fifo_path_fd >= 0)
                why = start_inline();
        else if (run_helper("start", out, sizeof(out)) < 0)
                why = helper_error(out);
        if (why)
                return why;
        M.started = true;
        M.trim_at = now_ms() + TRIM_AFTER_START_MS;
        clock_gettime(CLOCK_REALTIME, &M.started_at);
        return NULL;
}

static void ctl_request(struct client *c, const char *line)
{
        struct flatjson_field f[] = { { .key = "op" }, { .key = "height" }, { .key = "width" } };
        const char *op = flatjson_parse(line, f, ELEMENTSOF(f)) >= 0 && f[0].type == FLATJSON_STR ? f[0].str : NULL;
        char buf[256];

        if (!op) {
                reply_error(c, "a request is a JSON object with a string \"op\"");
        } else if (streq(op, "status")) {
                if (M.exited)
                        snprintf(buf, sizeof(buf), "{\"pid\":%d,\"running\":false,\"started\":%s,\"exit_code\":%d}",
                                 (int) M.pid, M.started ? "true" : "false", M.status_code);
                else
                        snprintf(buf, sizeof(buf), "{\"pid\":%d,\"running\":%s,\"started\":%s}", (int) M.pid,
                                 M.started ? "true" : "false", M.started ? "true" : "false");
                reply(c, buf);
        } else if (streq(op, "resize")) {
                if (M.pty_fd < 0)
                        reply_error(c, "resize: the process has no terminal");
                else if (f[1].type != FLATJSON_INT || f[2].type != FLATJSON_INT || f[1].i < 0 || f[1].i > 65535 || f[2].i < 0 ||
                         f[2].i > 65535)
                        reply_error(c, "resize: \"height\" and \"width\" must be integers from 0 to 65535");
                else {
                        struct winsize ws = { .ws_row = (unsigned short) f[1].i, .ws_col = (unsigned short) f[2].i };
                        if (ioctl(M.pty_fd, TIOCSWINSZ, &ws) < 0) {
                                snprintf(buf, sizeof(buf), "resize: TIOCSWINSZ: %s", strerror(errno));
                                reply_error(c, buf);
                        } else
                                reply(c, "{}");
                }
        } else if (streq(op, "close-stdin")) {
                if (!M.had_stdin)
                        reply_error(c, "close-stdin: the process has no stdin (monitor started without --stdin)");
                else {
                        if (M.in_len > 0)
                                M.close_stdin_pending = true;
                        else
                                stdin_close();
                        reply(c, "{}");
                }
        } else if (streq(op, "start")) {
                if (!M.wait_start || M.started)
                        reply_error(c, "start: the container is already started");
                else if (M.exec) {
                        /* An exec'd process runs from its create on; until
                         * now its output waited in the pipe (or pty): let it out. */
                        M.started = true;
                        snprintf(buf, sizeof(buf), "{\"pid\":%d}", (int) M.pid);
                        reply(c, buf);
                } else if (M.exited)
                        reply_error(c, "start: the container's init has exited");
                else {
                        const char *why = start_container();
                        if (why)
                                reply_error(c, why);
                        else
                                reply(c, "{}");
                }
        } else {
                snprintf(buf, sizeof(buf), "unknown op \"%.64s\" (resize, close-stdin, status, start)", op);
                reply_error(c, buf);
        }
}

/* What a client that replays the log needs to join the replay to the
 * stream: the log's position now, and then (before any later output) what
 * has been read and fanned out but not logged yet, the start of an
 * unfinished line, which the log has after the position. false: no log. */
static bool attach_log_position(struct client *c)
{
        struct moat_monitor_log_position pos;
        uint8_t hdr[MOAT_FRAME_HEADER_SIZE];
        char buf[128];

        if (!M.log || moat_logfile_position(M.log, &pos) < 0)
                return false;
        snprintf(buf, sizeof(buf), "{\"log_dev\":%llu,\"log_ino\":%llu,\"log_size\":%llu}",
                 (unsigned long long) pos.dev, (unsigned long long) pos.ino, (unsigned long long) pos.size);
        reply(c, buf);
        const struct moat_log_stream *pending[] = { &M.s_out, &M.s_err };
        for (size_t i = 0; i < ELEMENTSOF(pending) && c->fd >= 0; i++) {
                const struct moat_log_stream *ls = pending[i];
                if (ls->n == 0 || !(ls->stream == MOAT_STREAM_STDERR ? c->want_err : c->want_out))
                        continue;
                moat_frame_header(hdr, ls->stream, (uint32_t) ls->n);
                client_send(c, hdr, M.tty ? 0 : sizeof(hdr), ls->buf, ls->n);
        }
        return true;
}

static void attach_request(struct client *c, const char *line)
{
        struct flatjson_field f[] = { { .key = "stdin" }, { .key = "stdout" }, { .key = "stderr" }, { .key = "logs" } };
        bool bad = flatjson_parse(line, f, ELEMENTSOF(f)) < 0;
        for (size_t i = 0; i < ELEMENTSOF(f); i++)
                if (f[i].type != FLATJSON_NONE && f[i].type != FLATJSON_BOOL)
                        bad = true;
        if (bad) {
                /* Nothing is sent back: the stream has no room for an error. */
                client_drop(c);
                return;
        }
        c->have_request = true;
        c->want_in = f[0].type == FLATJSON_BOOL && f[0].b && M.had_stdin;
        c->want_out = f[1].type == FLATJSON_BOOL && f[1].b;
        c->want_err = f[2].type == FLATJSON_BOOL && f[2].b;
        free(c->line);
        c->line = NULL;
        /* The acknowledgement: output from now on reaches this client, so a
         * caller that waits for it before starting the process loses none. */
        if (!(f[3].type == FLATJSON_BOOL && f[3].b && attach_log_position(c)))
                reply(c, "{}");
}

/* Read what a client sent: request bytes (attach: up to the newline,
 * byte by byte, so that stdin data after it stays in the socket), control
 * lines, or stdin data. */
static void client_read(struct client *c)
{
        if (c->have_request && !c->ctl) {
                if (M.in_fd < 0 || M.in_len > 0 || !c->want_in)
                        return;
                ssize_t n = read(c->fd, M.in_buf, sizeof(M.in_buf));
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return;
                if (n <= 0) {
                        c->in_closed = true;
                        if (n < 0)
                                client_drop(c);
                        else if (M.stdin_once) {
                                if (M.in_len > 0)
                                        M.close_stdin_pending = true;
                                else
                                        stdin_close();
                        }
                        return;
                }
                M.in_len = (size_t) n;
                M.in_off = 0;
                stdin_flush();
                return;
        }
        if (!c->line) {
                c->line = malloc(MOAT_MONITOR_LINE_MAX);
                if (!c->line) {
                        client_drop(c);
                        return;
                }
                c->line_len = 0;
        }
        size_t want = c->ctl ? MOAT_MONITOR_LINE_MAX - c->line_len : 1;
        ssize_t n = read(c->fd, c->line + c->line_len, want);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n <= 0) {
                client_drop(c);
                return;
        }
        c->line_len += (size_t) n;
        for (;;) {
                char *nl = memchr(c->line, '\n', c->line_len);
                if (!nl)
                        break;
                *nl = '\0';
                size_t used = (size_t) (nl - c->line) + 1;
                if (!c->ctl) {
                        attach_request(c, c->line);
                        return;
                }
                ctl_request(c, c->line);
                if (c->fd < 0)
                        return;
                memmove(c->line, c->line + used, c->line_len - used);
                c->line_len -= used;
        }
        if (c->line_len == MOAT_MONITOR_LINE_MAX) {
                if (c->ctl)
                        reply_error(c, "request line too long");
                client_drop(c);
        }
}

static void accept_client(int listen_fd, bool ctl)
{
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return;
        size_t lo = ctl ? MOAT_MONITOR_MAX_CLIENTS : 0;
        size_t hi = ctl ? ELEMENTSOF(M.clients) : MOAT_MONITOR_MAX_CLIENTS;
        for (size_t i = lo; i < hi; i++)
                if (M.clients[i].fd < 0) {
                        M.clients[i] = (struct client){ .fd = fd, .ctl = ctl };
                        return;
                }
        close(fd); /* full */
}

/* ---- output ----------------------------------------------------------------------------- */

static void output(int *fdp, struct moat_log_stream *ls)
{
        char *p;
        size_t avail;

        moat_log_stream_space(ls, &p, &avail);
        ssize_t n = read(*fdp, p, avail);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
        if (n > 0) {
                fanout(ls->stream, p, (size_t) n);
                int r = moat_log_stream_commit(ls, M.log, (size_t) n, NULL);
                (void) r; /* a full disk drops entries; the container goes on */
                return;
        }
        /* EOF, or EIO from a pty master whose every slave is closed. */
        int r = moat_log_stream_finish(ls, M.log, NULL);
        (void) r;
        if (*fdp == M.in_fd)
                M.in_fd = -1;
        close(*fdp);
        if (*fdp == M.pty_fd)
                M.pty_fd = -1;
        *fdp = -1;
}

/* ---- exit ------------------------------------------------------------------------------------ */

static void reap(void)
{
        for (;;) {
                int st;
                pid_t p = waitpid(-1, &st, WNOHANG);
                if (p <= 0)
                        return;
                if (p != M.pid || M.exited)
                        continue;
                M.exited = true;
                clock_gettime(CLOCK_REALTIME, &M.finished_at);
                if (WIFSIGNALED(st)) {
                        M.status_signal = WTERMSIG(st);
                        M.status_code = 128 + M.status_signal;
                } else
                        M.status_code = WEXITSTATUS(st);
        }
}

static int write_exit_file(void)
{
        char text[256], st[MOAT_RFC3339NANO_MAX] = "", fin[MOAT_RFC3339NANO_MAX], name[1100];
        if (M.started)
                moat_format_rfc3339nano(&M.started_at, st);
        moat_format_rfc3339nano(&M.finished_at, fin);
        int n = snprintf(text, sizeof(text),
                         "{\"exit_code\":%d,\"signal\":%d,\"oom_killed\":%s,\"started_at\":\"%s\",\"finished_at\":\"%s\"}\n",
                         M.status_code, M.status_signal, M.oom_killed ? "true" : "false", st, fin);
        file_name(MOAT_MONITOR_EXIT_FILE, name);
        return write_file_replace_at(M.dir_fd, name, text, (size_t) n, 0644);
}

static void remove_files(bool pid_file)
{
        char name[1100];
        file_name(MOAT_MONITOR_ATTACH_SOCK, name);
        (void) unlinkat(M.dir_fd, name, 0);
        file_name(MOAT_MONITOR_CTL_SOCK, name);
        (void) unlinkat(M.dir_fd, name, 0);
        if (pid_file) {
                file_name(MOAT_MONITOR_PID_FILE, name);
                (void) unlinkat(M.dir_fd, name, 0);
        }
}

/* ---- the loop ---------------------------------------------------------------------------------- */

enum slot { S_SIG, S_OUT, S_ERR, S_PTY, S_IN, S_ATTACH, S_CTL, S_CLIENT0 };

static void trim_memory(void);

static void loop(void)
{
        struct pollfd pfd[S_CLIENT0 + ELEMENTSOF(M.clients)];
        uint64_t drain_deadline = 0, flush_deadline = 0, hold_deadline = 0;
        bool flushing = false;

        M.trim_at = now_ms() + (M.started ? TRIM_AFTER_START_MS : TRIM_WAIT_MS);

        for (;;) {
                /* What set-up and create left behind goes once the process
                 * runs, a little later than the start and its answer, which
                 * the caller is waiting for. */
                if (!M.trimmed && (M.exited || now_ms() >= M.trim_at)) {
                        trim_memory();
                        M.trimmed = true;
                }
                /* An exec held for its start keeps its output (and so its
                 * end) until then, for a bounded time. */
                bool held = M.exec && M.wait_start && !M.started;
                if (held && M.exited && hold_deadline == 0)
                        hold_deadline = now_ms() + HOLD_MS;
                if (held && hold_deadline && now_ms() >= hold_deadline) {
                        M.started = true;
                        held = false;
                }
                if (M.exited && drain_deadline == 0 && !held) {
                        cleanup_container();
                        drain_deadline = now_ms() + DRAIN_MS;
                }
                if (M.exited && !held && !flushing &&
                    ((M.out_fd < 0 && M.err_fd < 0 && M.pty_fd < 0) || now_ms() >= drain_deadline)) {
                        int r = moat_log_stream_finish(&M.s_out, M.log, NULL);
                        r = moat_log_stream_finish(&M.s_err, M.log, NULL);
                        (void) r;
                        /* The exit code is on disk before any stream ends: a
                         * client reads it right after its stream closes. */
                        if (write_exit_file() < 0) {
                                /* nothing better to do than to go on */
                        }
                        remove_files(false);
                        M.attach_l = safe_close(M.attach_l);
                        M.ctl_l = safe_close(M.ctl_l);
                        flushing = true;
                        flush_deadline = now_ms() + FLUSH_MS;
                }
                if (flushing) {
                        bool pending = false;
                        for (size_t i = 0; i < ELEMENTSOF(M.clients); i++)
                                if (M.clients[i].fd >= 0 && M.clients[i].out_off < M.clients[i].out_len)
                                        pending = true;
                        if (!pending || now_ms() >= flush_deadline)
                                break;
                }

                memset(pfd, 0, sizeof(pfd));
                for (size_t i = 0; i < ELEMENTSOF(pfd); i++)
                        pfd[i].fd = -1;
                pfd[S_SIG] = (struct pollfd){ .fd = M.sig_fd, .events = POLLIN };
                if (!flushing) {
                        if (!held) {
                                pfd[S_OUT] = (struct pollfd){ .fd = M.out_fd, .events = POLLIN };
                                pfd[S_ERR] = (struct pollfd){ .fd = M.err_fd, .events = POLLIN };
                                pfd[S_PTY] = (struct pollfd){ .fd = M.pty_fd, .events = POLLIN };
                        }
                        if (M.in_fd >= 0 && M.in_len > 0)
                                pfd[S_IN] = (struct pollfd){ .fd = M.in_fd, .events = POLLOUT };
                        pfd[S_ATTACH] = (struct pollfd){ .fd = M.attach_l, .events = POLLIN };
                        pfd[S_CTL] = (struct pollfd){ .fd = M.ctl_l, .events = POLLIN };
                }
                for (size_t i = 0; i < ELEMENTSOF(M.clients); i++) {
                        struct client *c = &M.clients[i];
                        struct pollfd *p = &pfd[S_CLIENT0 + i];
                        if (c->fd < 0)
                                continue;
                        /* A client whose stdin bytes wait for the process's
                         * stdin to drain is not read meanwhile; not polled
                         * either (unless it has output to take), so that its
                         * hang-up does not drop it before the bytes left in
                         * its socket are read. */
                        bool input_waits = !flushing && c->have_request && !c->ctl && c->want_in &&
                                           !c->in_closed && M.in_fd >= 0 && M.in_len > 0;
                        if (input_waits && c->out_off >= c->out_len)
                                continue;
                        p->fd = c->fd;
                        if (c->out_off < c->out_len)
                                p->events |= POLLOUT;
                        if (flushing)
                                continue;
                        if (c->ctl || !c->have_request ||
                            (c->want_in && !c->in_closed && M.in_fd >= 0 && M.in_len == 0))
                                p->events |= POLLIN;
                }
                uint64_t until = UINT64_MAX, now = now_ms();
                if (held && hold_deadline)
                        until = hold_deadline;
                else if (M.exited)
                        until = flushing ? flush_deadline : drain_deadline;
                if (!M.trimmed && M.trim_at < until)
                        until = M.trim_at;
                int timeout = until == UINT64_MAX ? -1 : until > now ? (int) (until - now) : 0;
                int n = poll(pfd, ELEMENTSOF(pfd), timeout);
                if (n < 0 && errno != EINTR)
                        return;
                if (n <= 0)
                        continue;

                if (pfd[S_SIG].revents) {
                        struct signalfd_siginfo si;
                        while (read(M.sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                                ;
                        reap();
                }
                if (pfd[S_OUT].revents)
                        output(&M.out_fd, &M.s_out);
                if (pfd[S_ERR].revents)
                        output(&M.err_fd, &M.s_err);
                if (pfd[S_PTY].revents)
                        output(&M.pty_fd, &M.s_out);
                if (pfd[S_IN].revents) {
                        if (pfd[S_IN].revents & (POLLERR | POLLHUP))
                                stdin_close();
                        else
                                stdin_flush();
                }
                if (pfd[S_ATTACH].revents)
                        accept_client(M.attach_l, false);
                if (pfd[S_CTL].revents)
                        accept_client(M.ctl_l, true);
                for (size_t i = 0; i < ELEMENTSOF(M.clients); i++) {
                        struct client *c = &M.clients[i];
                        short ev = pfd[S_CLIENT0 + i].revents;
                        if (c->fd < 0 || c->fd != pfd[S_CLIENT0 + i].fd || !ev)
                                continue;
                        if (ev & POLLOUT)
                                client_flush(c);
                        if (c->fd >= 0 && (ev & (POLLIN | POLLHUP | POLLERR)) && !flushing) {
                                if ((ev & POLLIN) || c->ctl || !c->have_request)
                                        client_read(c);
                                else if (ev & (POLLHUP | POLLERR))
                                        client_drop(c);
                        } else if (c->fd >= 0 && (ev & (POLLHUP | POLLERR)))
                                client_drop(c);
                }
                if (M.close_stdin_pending && M.in_len == 0)
                        stdin_close();
        }
}

/* ---- set-up ------------------------------------------------------------------------------------- */

static void nonblock(int fd)
{
        if (fd >= 0)
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void sync_reply(const char *line)
{
        if (M.sync_fd < 0)
                return;
        int r = write_all(M.sync_fd, line, strlen(line));
        (void) r;
        M.sync_fd = safe_close(M.sync_fd);
}

static int fail(const char *what)
{
        char line[512];
        (void) kill(M.pid, SIGKILL);
        while (waitpid(M.pid, NULL, 0) < 0 && errno == EINTR)
                ;
        char esc[400];
        cleanup_container();
        remove_files(true);
        flatjson_escape(what, esc, sizeof(esc));
        snprintf(line, sizeof(line), "{\"error\":\"%s\"}\n", esc);
        sync_reply(line);
        return 1;
}

/*
 * What an idle monitor costs is mostly its own program text: the kernel
 * maps a file's pages around every fault (fault-around), so a static
 * program ends up with nearly all its text counted in its PSS. Once set
 * up, drop the read-only segments from our page tables and ask for no
 * fault-around (MADV_RANDOM): from then on only the pages the loop really
 * runs are mapped. Writable segments are never touched (they hold
 * relocated data); the read-only ones are file pages, dropping them loses
 * nothing.
 */
static int trim_segment(struct dl_phdr_info *info, size_t size, void *userdata)
{
        long page = sysconf(_SC_PAGESIZE);
        if (info->dlpi_name && info->dlpi_name[0])
                return 0; /* only the program itself */
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
                        continue;
                uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t) (page - 1);
                uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + (uintptr_t) page - 1) &
                                ~(uintptr_t) (page - 1);
                (void) madvise((void *) start, end - start, MADV_RANDOM);
                (void) madvise((void *) start, end - start, MADV_DONTNEED);
        }
        return 1;
}

static void trim_memory(void)
{
        /* By now the init has exec'd: these pages are ours alone again. */
        moat_create_leftovers_free(TAKE_PTR(M.leftovers));
        /* glibc's default again: a spare raised it to keep its warmed heap. */
        (void) mallopt(M_TRIM_THRESHOLD, 128 * 1024);
        (void) malloc_trim(0);
        (void) dl_iterate_phdr(trim_segment, NULL);
}

int moat_monitor_loop(const struct moat_monitor_loop_args *a)
{
        for (size_t i = 0; i < ELEMENTSOF(M.clients); i++)
                M.clients[i].fd = -1;
        M.exec = a->exec;
        M.id = a->id;
        M.exec_id = a->exec_id ? a->exec_id : "-";
        M.runtime_root = a->runtime_root;
        M.helper = a->helper;
        M.cleanup = a->cleanup;
        M.pid = a->pid;
        M.dir_fd = a->dir_fd;
        M.out_fd = a->out_fd;
        M.err_fd = a->err_fd;
        M.pty_fd = a->pty_fd;
        M.in_fd = a->in_fd;
        M.attach_l = a->attach_l;
        M.ctl_l = a->ctl_l;
        M.sync_fd = a->sync_fd;
        M.sig_fd = -1;
        M.oom_base = a->oom_base;
        M.tty = M.pty_fd >= 0;
        M.stdin_once = a->stdin_once;
        M.wait_start = a->wait_start;
        M.started = !M.wait_start;
        M.fifo_path_fd = a->fifo_path_fd;
        M.state_dir_fd = a->state_dir_fd;
        M.leftovers = a->leftovers;
        if (a->started_at)
                M.started_at = *a->started_at;
        /* With a terminal, stdin goes to the pty master when asked for. */
        if (M.tty && M.in_fd < 0 && a->stdin_to_pty)
                M.in_fd = M.pty_fd;
        M.had_stdin = M.in_fd >= 0;
        nonblock(M.out_fd);
        nonblock(M.err_fd);
        nonblock(M.pty_fd);
        nonblock(M.in_fd);
        moat_log_stream_init(&M.s_out, MOAT_STREAM_STDOUT);
        moat_log_stream_init(&M.s_err, MOAT_STREAM_STDERR);

        sigset_t mask;
        sigemptyset(&mask);
        int sigs[] = { SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaddset(&mask, sigs[i]);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        M.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (M.sig_fd < 0)
                return fail("signalfd failed");

        M.log = a->log;
        if (!M.log && a->log_path) {
                _cleanup_error_ struct moat_error *err = NULL;
                if (moat_logfile_open(a->log_path, a->log_max_size, a->log_max_file ? a->log_max_file : 1, &M.log,
                                      &err) < 0)
                        return fail(err->msg);
        }

        char line[64];
        snprintf(line, sizeof(line), "{\"pid\":%d}\n", (int) M.pid);
        sync_reply(line);
        /* A process that exited before the signalfd existed. */
        reap();
        /* Started only now: its program's exec, which the scheduler lets
         * run before us on this CPU, is no longer between the caller and
         * the answer. A start that fails leaves a container that exited. */
        if (a->start_after_sync && !M.exited) {
                const char *why = start_container();
                if (why) {
                        /* The caller has its answer: the reason goes to the
                         * log, where docker logs shows it. */
                        char rec[512];
                        int n = snprintf(rec, sizeof(rec), "moat-monitor: %s\n", why);
                        if (M.log && n > 0)
                                (void) !moat_logfile_write(M.log, MOAT_STREAM_STDERR, rec,
                                                           (size_t) n < sizeof(rec) ? (size_t) n : sizeof(rec) - 1, NULL,
                                                           NULL);
                        (void) kill(M.pid, SIGKILL);
                }
        }
        if (a->started_fd >= 0)
                close(a->started_fd);
        loop();
        moat_logfile_close(M.log);
        remove_files(true);
        return 0;
}
