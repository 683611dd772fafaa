/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests for src/runtime/terminal.c: pty allocation, window size, the
 * console-socket protocol (received here with recvmsg, as a manager
 * would), and the relay, run in forked children with pipes or a second pty
 * standing in for the user's terminal.
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "runtime/terminal.h"
#include "tap.h"

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read from fd into buf (appending) until needle shows up or timeout. */
static bool read_until(int fd, char *buf, size_t size, size_t *len, const char *needle, int timeout_ms)
{
        int64_t end = now_ms() + timeout_ms;

        while (!strstr(buf, needle)) {
                int64_t left = end - now_ms();
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (left <= 0 || *len >= size - 1)
                        return false;
                if (poll(&p, 1, (int) left) <= 0)
                        continue;
                ssize_t n = read(fd, buf + *len, size - 1 - *len);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n <= 0)
                        return false;
                *len += (size_t) n;
                buf[*len] = '\0';
        }
        return true;
}

static void test_open_pty(void)
{
        struct moat_error *err = NULL;
        int master = -1, slave = -1, r;
        char *path = NULL, name[64] = "";
        unsigned n = 0;

        r = moat_terminal_open_pty(&master, &slave, &path, &err);
        is_int(r, 0, "open a pty pair");
        if (r < 0) {
                printf("# %s\n", err->msg);
                moat_error_free(err);
                return;
        }
        bool got_n = ioctl(master, TIOCGPTN, &n) == 0;
        ok(got_n, "  TIOCGPTN on the master");
        snprintf(name, sizeof(name), "/dev/pts/%u", n);
        is_str(path, name, "  slave path is /dev/pts/N");
        ok(isatty(slave), "  slave is a terminal");
        ok((fcntl(master, F_GETFD) & FD_CLOEXEC) && (fcntl(slave, F_GETFD) & FD_CLOEXEC), "  both are close-on-exec");

        char ttyname_buf[64] = "";
        bool named = ttyname_r(slave, ttyname_buf, sizeof(ttyname_buf)) == 0 && streq(ttyname_buf, path);
        ok(named,
           "  the slave is the pts the name says (%s)", ttyname_buf);

        char buf[64] = "";
        size_t len = 0;
        if (write(slave, "abc\n", 4) != 4)
                perror("write");
        bool seen = read_until(master, buf, sizeof(buf), &len, "abc", 2000);
        ok(seen, "  data written to the slave reaches the master");

        r = moat_terminal_set_size(master, 24, 80, &err);
        is_int(r, 0, "set the window size");
        struct winsize ws = {};
        bool sized = ioctl(slave, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 24 && ws.ws_col == 80;
        ok(sized,
           "  TIOCGWINSZ on the slave reads 24x80 (got %ux%u)", ws.ws_row, ws.ws_col);

        r = moat_terminal_set_size(master, 70000, 80, &err);
        is_int(r, -EINVAL, "a window size beyond 65535: -EINVAL");
        is_str(err ? err->msg : NULL, "process.consoleSize 70000x80: larger than 65535 in one dimension", "  says so");
        moat_error_free(err);

        close(master);
        close(slave);
        free(path);
}

static void test_send_fd(void)
{
        char tmp[] = "/tmp/moat-test-terminal-XXXXXX";
        char sock_path[100], long_path[200];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct moat_error *err = NULL;
        int master = -1, slave = -1, r;
        char *name = NULL;

        if (!mkdtemp(tmp)) {
                ok(false, "mkdtemp: %m");
                return;
        }
        snprintf(sock_path, sizeof(sock_path), "%s/console.sock", tmp);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);

        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool listening = lfd >= 0 && bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0;
        ok(listening,
           "listen on a console socket");

        r = moat_terminal_open_pty(&master, &slave, &name, &err);
        is_int(r, 0, "open a pty pair to send");

        r = moat_terminal_send_fd(sock_path, master, name, &err);
        is_int(r, 0, "send the master over the console socket");
        if (r < 0)
                printf("# %s\n", err->msg);

        /* Receive as a manager does (go-runc recvFd, conmon recvfd). */
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        ok(cfd >= 0, "  the connection is queued for accept");
        char payload[4096 + 1] = "";
        union {
                struct cmsghdr hdr;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control = {};
        struct iovec iov = { .iov_base = payload, .iov_len = sizeof(payload) - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
        ssize_t n = cfd >= 0 ? recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC) : -1;
        ok(n > 0, "  recvmsg");
        if (n > 0)
                payload[n] = '\0';
        struct cmsghdr *cmsg = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
        int got = -1;
        ok(cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
                   cmsg->cmsg_len == CMSG_LEN(sizeof(int)),
           "  one SCM_RIGHTS fd arrived");
        if (cmsg)
                memcpy(&got, CMSG_DATA(cmsg), sizeof(int));
        is_str(payload, name, "  the payload is the pty name");
        unsigned a = 1, b = 2;
        bool same = got >= 0 && ioctl(got, TIOCGPTN, &a) == 0 && ioctl(master, TIOCGPTN, &b) == 0 && a == b;
        ok(same,
           "  the received fd is the same pty master");
        if (got >= 0)
                close(got);
        if (cfd >= 0)
                close(cfd);

        /* Connected socket, empty name: one placeholder byte carries the fd. */
        int conn = moat_terminal_connect(sock_path, &err);
        ok(conn >= 0, "connect to the console socket");
        r = conn >= 0 ? moat_terminal_send_fd_on(conn, slave, "", &err) : -1;
        is_int(r, 0, "send an fd with an empty name on a connected socket");
        cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        memset(&control, 0, sizeof(control));
        mh = (struct msghdr) { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
        n = cfd >= 0 ? recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC) : -1;
        cmsg = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
        ok(n == 1 && cmsg && cmsg->cmsg_type == SCM_RIGHTS, "  the fd arrived with a one-byte payload");
        if (cmsg) {
                memcpy(&got, CMSG_DATA(cmsg), sizeof(int));
                ok(isatty(got), "  it is the slave");
                close(got);
        }
        if (cfd >= 0)
                close(cfd);
        if (conn >= 0)
                close(conn);

        /* Errors. */
        memset(long_path, 'x', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = '\0';
        r = moat_terminal_send_fd(long_path, master, name, &err);
        is_int(r, -ENAMETOOLONG, "a socket path longer than sun_path: -ENAMETOOLONG");
        ok(err && strstr(err->msg, "path is longer than 107 bytes"), "  says so (%s)", err ? err->msg : "");
        moat_error_free(err);
        err = NULL;

        char missing[300];
        snprintf(missing, sizeof(missing), "%s/nosuch.sock", tmp);
        r = moat_terminal_send_fd(missing, master, name, &err);
        is_int(r, -ENOENT, "a socket that does not exist: -ENOENT");
        char want[400];
        snprintf(want, sizeof(want), "console socket \"%s\": connect failed: No such file or directory", missing);
        is_str(err ? err->msg : NULL, want, "  names the path");
        moat_error_free(err);
        err = NULL;

        close(lfd);
        unlink(sock_path);
        rmdir(tmp);
        close(master);
        close(slave);
        free(name);
}

/* The relay between pipes and a container process that talks on the slave. */
static void test_relay_pipes(void)
{
        struct moat_error *err = NULL;
        int master = -1, slave = -1, in[2], out[2], st = 0;
        pid_t container, relay;

        if (moat_terminal_open_pty(&master, &slave, NULL, &err) < 0 || pipe2(in, O_CLOEXEC) < 0 ||
            pipe2(out, O_CLOEXEC) < 0) {
                ok(false, "relay setup");
                return;
        }
        fflush(stdout);
        container = fork();
        if (container == 0) {
                char line[128];
                close(master);
                if (moat_terminal_setup_slave(slave, &err) < 0) {
                        fprintf(stderr, "%s\n", err->msg);
                        _exit(1);
                }
                if (!isatty(0) || !isatty(1) || !isatty(2) || (fcntl(0, F_GETFD) & FD_CLOEXEC))
                        _exit(2);
                if (tcgetpgrp(0) != getpgrp())
                        _exit(3);
                printf("hello from the container\n");
                fflush(stdout);
                if (!fgets(line, sizeof(line), stdin))
                        _exit(4);
                printf("got: %s", line);
                fflush(stdout);
                _exit(0);
        }
        close(slave);

        relay = fork();
        if (relay == 0) {
                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(3);
                int r = moat_terminal_relay(master, -1, &err);
                if (r < 0)
                        fprintf(stderr, "relay: %s\n", err->msg);
                _exit(r < 0 ? 1 : 0);
        }
        close(master);
        close(in[0]);
        close(out[1]);
        if (write(in[1], "ping\n", 5) != 5)
                perror("write");
        close(in[1]); /* stdin EOF: the relay keeps showing output */

        char buf[4096] = "";
        size_t len = 0;
        read_until(out[0], buf, sizeof(buf), &len, "\x01never", 10000); /* until EOF */
        close(out[0]);

        waitpid(container, &st, 0);
        is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), 0,
               "container side: setup_slave gave a controlling tty on 0, 1, 2");
        waitpid(relay, &st, 0);
        is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), 0,
               "the relay ends when the container's side closes");
        ok(strstr(buf, "hello from the container\r\n") != NULL, "  container output relayed to stdout");
        ok(strstr(buf, "got: ping\r\n") != NULL, "  stdin relayed to the container");
}

/* A lot of output, with the container exiting right after writing it: all
 * of it comes out, through the bounded buffers. */
static void test_relay_bulk(void)
{
        enum { TOTAL = 300000 };
        struct moat_error *err = NULL;
        int master = -1, slave = -1, out[2], st = 0;
        pid_t container, relay;

        if (moat_terminal_open_pty(&master, &slave, NULL, &err) < 0 || pipe2(out, O_CLOEXEC) < 0) {
                ok(false, "relay setup");
                return;
        }
        fflush(stdout);
        container = fork();
        if (container == 0) {
                char chunk[1000];
                close(master);
                memset(chunk, 'x', sizeof(chunk));
                for (int i = 0; i < TOTAL / (int) sizeof(chunk); i++)
                        if (write(slave, chunk, sizeof(chunk)) != (ssize_t) sizeof(chunk))
                                _exit(1);
                _exit(0);
        }
        close(slave);
        relay = fork();
        if (relay == 0) {
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(out[1], 1) < 0)
                        _exit(3);
                _exit(moat_terminal_relay(master, -1, &err) < 0 ? 1 : 0);
        }
        close(master);
        close(out[1]);

        size_t count = 0;
        char buf[8192];
        for (;;) {
                ssize_t n = read(out[0], buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                for (ssize_t i = 0; i < n; i++)
                        count += buf[i] == 'x';
        }
        close(out[0]);
        waitpid(container, &st, 0);
        waitpid(relay, &st, 0);
        is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), 0, "bulk relay ends cleanly");
        is_int(count, TOTAL, "  all %d bytes of output relayed", TOTAL);
}

/* The relay with a second pty as the user's terminal: raw mode, SIGWINCH,
 * stop fd, and restoring the terminal. */
static void test_relay_tty(void)
{
        struct moat_error *err = NULL;
        int ma = -1, sa = -1, mb = -1, sb = -1, stop[2], st = 0;
        struct termios t;
        struct winsize ws = {};
        pid_t relay;
        int64_t end;

        if (moat_terminal_open_pty(&ma, &sa, NULL, &err) < 0 || moat_terminal_open_pty(&mb, &sb, NULL, &err) < 0 ||
            pipe2(stop, O_CLOEXEC) < 0 || moat_terminal_set_size(mb, 30, 100, &err) < 0) {
                ok(false, "relay setup");
                return;
        }
        tcgetattr(sb, &t);
        ok(t.c_lflag & ICANON, "the user's terminal starts canonical");

        fflush(stdout);
        relay = fork();
        if (relay == 0) {
                if (dup2(sb, 0) < 0 || dup2(sb, 1) < 0)
                        _exit(3);
                close(sa);
                int r = moat_terminal_relay(ma, stop[0], &err);
                if (r < 0)
                        fprintf(stderr, "relay: %s\n", err->msg);
                _exit(r < 0 ? 1 : 0);
        }
        close(stop[0]);

        bool raw = false;
        for (end = now_ms() + 5000; now_ms() < end; usleep(10000))
                if (tcgetattr(sb, &t) == 0 && !(t.c_lflag & ICANON) && !(t.c_lflag & ECHO)) {
                        raw = true;
                        break;
                }
        ok(raw, "the relay puts the user's terminal in raw mode");

        bool sized = false;
        for (end = now_ms() + 5000; now_ms() < end; usleep(10000))
                if (ioctl(ma, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 30 && ws.ws_col == 100) {
                        sized = true;
                        break;
                }
        ok(sized, "the pty gets the terminal's size at start (%ux%u)", ws.ws_row, ws.ws_col);

        if (moat_terminal_set_size(mb, 40, 120, &err) < 0)
                moat_error_free(TAKE_PTR(err));
        kill(relay, SIGWINCH);
        sized = false;
        for (end = now_ms() + 5000; now_ms() < end; usleep(10000))
                if (ioctl(ma, TIOCGWINSZ, &ws) == 0 && ws.ws_row == 40 && ws.ws_col == 120) {
                        sized = true;
                        break;
                }
        ok(sized, "SIGWINCH copies the new size to the pty (%ux%u)", ws.ws_row, ws.ws_col);

        char buf[4096] = "";
        size_t len = 0;
        if (write(sa, "container says hi\n", 18) != 18)
                perror("write");
        bool seen = read_until(mb, buf, sizeof(buf), &len, "container says hi", 5000);
        ok(seen, "container output reaches the terminal");

        /* Raw mode: a keystroke goes through without a newline. */
        if (write(mb, "k", 1) != 1)
                perror("write");
        int fl = fcntl(sa, F_GETFL);
        fcntl(sa, F_SETFL, fl | O_NONBLOCK);
        struct termios ta;
        tcgetattr(sa, &ta);
        ta.c_lflag &= (tcflag_t) ~(ICANON | ECHO);
        tcsetattr(sa, TCSANOW, &ta);
        char kbuf[16] = "";
        size_t klen = 0;
        seen = read_until(sa, kbuf, sizeof(kbuf), &klen, "k", 5000);
        ok(seen, "a keystroke reaches the container at once");

        /* Output written just before the stop is still shown. */
        if (write(sa, "last words", 10) != 10)
                perror("write");
        if (write(stop[1], "x", 1) != 1)
                perror("write");
        waitpid(relay, &st, 0);
        is_int(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), 0, "the relay ends when stop_fd is readable");
        seen = read_until(mb, buf, sizeof(buf), &len, "last words", 2000);
        ok(seen, "  output pending at the stop is drained");
        bool restored = tcgetattr(sb, &t) == 0 && (t.c_lflag & ICANON) && (t.c_lflag & ECHO);
        ok(restored, "  the terminal mode is restored");

        close(stop[1]);
        close(ma);
        close(sa);
        close(mb);
        close(sb);
}

static void test_relay_bad_fd(void)
{
        struct moat_error *err = NULL;
        int r = moat_terminal_relay(-1, -1, &err);

        is_int(r, -EBADF, "relay without a master: -EBADF");
        moat_error_free(err);
}

int main(void)
{
        alarm(60);
        signal(SIGPIPE, SIG_IGN);

        test_open_pty();
        test_send_fd();
        test_relay_pipes();
        test_relay_bulk();
        test_relay_tty();
        test_relay_bad_fd();

        return tap_done();
}
