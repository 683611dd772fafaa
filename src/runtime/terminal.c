/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Pseudo-terminals for process.terminal.
 *
 * The pair is allocated inside the container's mount namespace, from its
 * own devpts, so the slave's /dev/pts/N name means something to the
 * container. The slave is obtained from the master with TIOCGPTPEER rather
 * than by opening /dev/pts/N: a path lookup inside a root the container
 * controls could be redirected, the peer ioctl cannot.
 *
 * The master leaves the runtime in one of two ways: sent with SCM_RIGHTS to
 * the manager's --console-socket (runc's protocol: one sendmsg, the pty name
 * as payload; receivers ignore it or use it as the fd's name), or relayed by
 * the runtime itself for a foreground `run` without a socket. The relay is a
 * poll loop with bounded buffers; the master is non-blocking so a container
 * that stops reading its input can never wedge the output direction. The
 * user's terminal is put in raw mode for the relay and always restored, and
 * SIGWINCH arrives through a signalfd so no handler runs asynchronously.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "runtime/terminal.h"

#define RELAY_BUFFER_SIZE (32u * 1024u)
#define RELAY_DRAIN_MAX (8u * RELAY_BUFFER_SIZE)        /* per wakeup */
#define RELAY_FINAL_DRAIN_MAX (1024u * 1024u)          /* after stop_fd */
#define FD_NAME_MAX 4096

int moat_terminal_open_pty(int *ret_master, int *ret_slave, char **ret_slave_path, struct moat_error **reterr)
{
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        int unlock = 0;
        unsigned int n = 0;
        char *path = NULL;

        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0)
                return moat_error_set(reterr, errno, "opening /dev/ptmx failed");
        if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
                return moat_error_set(reterr, errno, "unlocking the pty (TIOCSPTLCK) failed");
        if (ioctl(master, TIOCGPTN, &n) < 0)
                return moat_error_set(reterr, errno, "reading the pty number (TIOCGPTN) failed");
        slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (slave < 0)
                return moat_error_set(reterr, errno, "opening the pty slave /dev/pts/%u (TIOCGPTPEER) failed", n);
        if (ret_slave_path) {
                if (asprintf(&path, "/dev/pts/%u", n) < 0)
                        return moat_error_set(reterr, -ENOMEM, "pty name");
                *ret_slave_path = path;
        }
        *ret_master = TAKE_FD(master);
        *ret_slave = TAKE_FD(slave);
        return 0;
}

int moat_terminal_set_size(int fd, uint32_t height, uint32_t width, struct moat_error **reterr)
{
        struct winsize ws = {};

        if (height > USHRT_MAX || width > USHRT_MAX)
                return moat_error_setx(reterr, -EINVAL,
                                       "process.consoleSize %" PRIu32 "x%" PRIu32 ": larger than %u in one dimension",
                                       height, width, (unsigned) USHRT_MAX);
        ws.ws_row = (unsigned short) height;
        ws.ws_col = (unsigned short) width;
        if (ioctl(fd, TIOCSWINSZ, &ws) < 0)
                return moat_error_set(reterr, errno, "process.consoleSize %" PRIu32 "x%" PRIu32 ": TIOCSWINSZ failed",
                                      height, width);
        return 0;
}

int moat_terminal_setup_slave(int slave_fd, struct moat_error **reterr)
{
        if (slave_fd < 0)
                return moat_error_setx(reterr, -EBADF, "pty slave: invalid file descriptor");
        if (setsid() < 0)
                return moat_error_set(reterr, errno, "pty slave: setsid failed");
        if (ioctl(slave_fd, TIOCSCTTY, 0) < 0)
                return moat_error_set(reterr, errno, "pty slave: making it the controlling terminal (TIOCSCTTY) failed");

        for (int i = 0; i <= 2; i++) {
                if (slave_fd == i) {
                        /* dup2 onto itself keeps O_CLOEXEC: clear it by hand. */
                        int flags = fcntl(i, F_GETFD);
                        if (flags < 0 || fcntl(i, F_SETFD, flags & ~FD_CLOEXEC) < 0)
                                return moat_error_set(reterr, errno, "pty slave: clearing close-on-exec on fd %d failed", i);
                        continue;
                }
                if (dup2(slave_fd, i) < 0)
                        return moat_error_set(reterr, errno, "pty slave: dup2 onto fd %d failed", i);
        }
        if (slave_fd > 2)
                close(slave_fd);
        return 0;
}

int moat_terminal_connect(const char *socket_path, struct moat_error **reterr)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        size_t len;

        if (strempty(socket_path))
                return moat_error_setx(reterr, -EINVAL, "console socket: empty path");
        len = strlen(socket_path);
        if (len >= sizeof(sa.sun_path))
                return moat_error_setx(reterr, -ENAMETOOLONG,
                                       "console socket \"%s\": path is longer than %zu bytes, the limit of a unix socket address",
                                       socket_path, sizeof(sa.sun_path) - 1);
        memcpy(sa.sun_path, socket_path, len + 1);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return moat_error_set(reterr, errno, "console socket \"%s\": socket failed", socket_path);
        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + 1)) >= 0)
                        break;
                if (errno != EINTR)
                        return moat_error_set(reterr, errno, "console socket \"%s\": connect failed", socket_path);
        }
        return TAKE_FD(fd);
}

int moat_terminal_send_fd_on(int sock_fd, int fd, const char *name, struct moat_error **reterr)
{
        union {
                struct cmsghdr hdr;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        /* A stream socket drops ancillary data sent with no bytes: always
         * send at least one. */
        const char *payload = strempty(name) ? "-" : name;
        size_t len = strlen(payload);
        struct iovec iov = { .iov_base = (void *) payload, .iov_len = len };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *cmsg;
        ssize_t n;

        if (len > FD_NAME_MAX)
                return moat_error_setx(reterr, -ENAMETOOLONG, "console socket: fd name is longer than %d bytes", FD_NAME_MAX);

        cmsg = CMSG_FIRSTHDR(&mh);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));

        do
                n = sendmsg(sock_fd, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return moat_error_set(reterr, errno, "console socket: sending the pty master failed");

        /* The fd went with the first byte; finish the name. */
        for (size_t off = (size_t) n; off < len;) {
                ssize_t k = send(sock_fd, payload + off, len - off, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return moat_error_set(reterr, errno, "console socket: sending the pty name failed");
                }
                off += (size_t) k;
        }
        return 0;
}

int moat_terminal_send_fd(const char *socket_path, int fd, const char *name, struct moat_error **reterr)
{
        _cleanup_close_ int sock = -EBADF;
        int r;

        sock = moat_terminal_connect(socket_path, reterr);
        if (sock < 0)
                return sock;
        r = moat_terminal_send_fd_on(sock, fd, name, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "console socket \"%s\"", socket_path);
        return 0;
}

/* ---- relay ---- */

struct relay_state {
        bool raw;
        struct termios saved_termios;
        bool mask_changed;
        sigset_t saved_mask;
        int master_flags; /* -1 when unchanged */
        int master_fd;
        int sig_fd;
};

static void relay_restore(struct relay_state *s)
{
        if (s->raw) {
                if (tcsetattr(STDIN_FILENO, TCSADRAIN, &s->saved_termios) < 0)
                        log_debug("restoring the terminal mode failed: %m");
                s->raw = false;
        }
        s->sig_fd = safe_close(s->sig_fd);
        if (s->mask_changed) {
                sigprocmask(SIG_SETMASK, &s->saved_mask, NULL);
                s->mask_changed = false;
        }
        if (s->master_flags >= 0) {
                if (fcntl(s->master_fd, F_SETFL, s->master_flags) < 0)
                        log_debug("restoring the pty master flags failed: %m");
                s->master_flags = -1;
        }
}

static void copy_window_size(int tty_fd, int master_fd)
{
        struct winsize ws;

        if (tty_fd < 0)
                return;
        if (ioctl(tty_fd, TIOCGWINSZ, &ws) < 0)
                return;
        if (ioctl(master_fd, TIOCSWINSZ, &ws) < 0)
                log_debug("copying the window size to the pty failed: %m");
}

/* Write everything to a (possibly blocking) fd. */
static int write_out(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, buf, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                struct pollfd p = { .fd = fd, .events = POLLOUT };
                                if (poll(&p, 1, -1) < 0 && errno != EINTR)
                                        return negative_errno();
                                continue;
                        }
                        return negative_errno();
                }
                buf += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Move what the master has to stdout, at most max bytes so a container
 * that never stops writing cannot starve the other fds. Returns 1 when the
 * slave side is gone (EIO), 0 when the master would block or max is reached. */
static int drain_master(int master_fd, char *buf, size_t size, size_t max, struct moat_error **reterr)
{
        for (size_t done = 0; done < max;) {
                ssize_t n = read(master_fd, buf, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        if (errno == EIO)
                                return 1;
                        return moat_error_set(reterr, errno, "terminal relay: reading the pty master failed");
                }
                if (n == 0)
                        return 1;
                int r = write_out(STDOUT_FILENO, buf, (size_t) n);
                if (r < 0)
                        return moat_error_set(reterr, r, "terminal relay: writing to stdout failed");
                done += (size_t) n;
        }
        return 0;
}

static int relay_loop(struct relay_state *s, int master_fd, int stop_fd, int tty_fd, struct moat_error **reterr)
{
        _cleanup_free_ char *out = malloc(RELAY_BUFFER_SIZE);
        _cleanup_free_ char *in = malloc(RELAY_BUFFER_SIZE);
        size_t in_len = 0, in_off = 0;
        bool stdin_open = true;
        int r;

        if (!out || !in)
                return moat_error_set(reterr, -ENOMEM, "terminal relay");

        for (;;) {
                struct pollfd pfd[4];
                int n_pfd = 0, i_stdin = -1, i_master, i_sig = -1, i_stop = -1;

                if (stdin_open && in_len == 0) {
                        i_stdin = n_pfd;
                        pfd[n_pfd++] = (struct pollfd) { .fd = STDIN_FILENO, .events = POLLIN };
                }
                i_master = n_pfd;
                pfd[n_pfd++] = (struct pollfd) { .fd = master_fd, .events = POLLIN | (in_len > 0 ? POLLOUT : 0) };
                if (s->sig_fd >= 0) {
                        i_sig = n_pfd;
                        pfd[n_pfd++] = (struct pollfd) { .fd = s->sig_fd, .events = POLLIN };
                }
                if (stop_fd >= 0) {
                        i_stop = n_pfd;
                        pfd[n_pfd++] = (struct pollfd) { .fd = stop_fd, .events = POLLIN };
                }

                if (poll(pfd, (nfds_t) n_pfd, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return moat_error_set(reterr, errno, "terminal relay: poll failed");
                }

                if (i_stop >= 0 && pfd[i_stop].revents) {
                        /* Hand over what the container already wrote. */
                        r = drain_master(master_fd, out, RELAY_BUFFER_SIZE, RELAY_FINAL_DRAIN_MAX, reterr);
                        return r < 0 ? r : 0;
                }

                if (i_sig >= 0 && (pfd[i_sig].revents & POLLIN)) {
                        struct signalfd_siginfo si;
                        while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                                ;
                        copy_window_size(tty_fd, master_fd);
                }

                if (pfd[i_master].revents & POLLNVAL)
                        return moat_error_setx(reterr, -EBADF, "terminal relay: the pty master is not open");
                if (pfd[i_master].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = drain_master(master_fd, out, RELAY_BUFFER_SIZE, RELAY_DRAIN_MAX, reterr);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                return 0; /* the container's side closed, all its output shown */
                }

                if (i_stdin >= 0 && pfd[i_stdin].revents) {
                        ssize_t n = read(STDIN_FILENO, in, RELAY_BUFFER_SIZE);
                        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                                continue;
                        if (n <= 0) {
                                /* EOF (or a terminal we lost): stop forwarding input,
                                 * keep showing the container's output. */
                                stdin_open = false;
                        } else {
                                in_len = (size_t) n;
                                in_off = 0;
                        }
                }

                if (in_len > 0) {
                        ssize_t n = write(master_fd, in + in_off, in_len - in_off);
                        if (n < 0) {
                                if (errno == EIO) /* slave closed; drain happens on POLLHUP */
                                        in_len = in_off = 0;
                                else if (errno != EAGAIN && errno != EINTR)
                                        return moat_error_set(reterr, errno, "terminal relay: writing to the pty failed");
                        } else {
                                in_off += (size_t) n;
                                if (in_off == in_len)
                                        in_len = in_off = 0;
                        }
                }
        }
}

int moat_terminal_relay(int master_fd, int stop_fd, struct moat_error **reterr)
{
        struct relay_state s = { .master_flags = -1, .master_fd = master_fd, .sig_fd = -EBADF };
        int tty_fd = -EBADF, flags, r;
        sigset_t winch;

        if (master_fd < 0)
                return moat_error_setx(reterr, -EBADF, "terminal relay: invalid pty master");

        if (isatty(STDIN_FILENO))
                tty_fd = STDIN_FILENO;
        else if (isatty(STDOUT_FILENO))
                tty_fd = STDOUT_FILENO;

        flags = fcntl(master_fd, F_GETFL);
        if (flags < 0)
                return moat_error_set(reterr, errno, "terminal relay: reading the pty master flags failed");
        if (!(flags & O_NONBLOCK)) {
                if (fcntl(master_fd, F_SETFL, flags | O_NONBLOCK) < 0)
                        return moat_error_set(reterr, errno, "terminal relay: making the pty master non-blocking failed");
                s.master_flags = flags;
        }

        sigemptyset(&winch);
        sigaddset(&winch, SIGWINCH);
        if (sigprocmask(SIG_BLOCK, &winch, &s.saved_mask) < 0) {
                r = moat_error_set(reterr, errno, "terminal relay: blocking SIGWINCH failed");
                goto finish;
        }
        s.mask_changed = true;
        s.sig_fd = signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK);
        if (s.sig_fd < 0) {
                r = moat_error_set(reterr, errno, "terminal relay: signalfd failed");
                goto finish;
        }

        if (tty_fd == STDIN_FILENO) {
                struct termios raw;
                if (tcgetattr(STDIN_FILENO, &s.saved_termios) < 0) {
                        r = moat_error_set(reterr, errno, "terminal relay: reading the terminal mode failed");
                        goto finish;
                }
                raw = s.saved_termios;
                cfmakeraw(&raw);
                if (tcsetattr(STDIN_FILENO, TCSADRAIN, &raw) < 0) {
                        r = moat_error_set(reterr, errno, "terminal relay: setting the terminal to raw mode failed");
                        goto finish;
                }
                s.raw = true;
        }
        copy_window_size(tty_fd, master_fd);

        r = relay_loop(&s, master_fd, stop_fd, tty_fd, reterr);
finish:
        relay_restore(&s);
        return r;
}
