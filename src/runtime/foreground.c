/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The foreground wait shared by `run` and `exec`. One epoll set holds the
 * signalfd and the process's pidfd, so both the terminal relay and the
 * plain wait wake up for either; reaping stays with waitpid() so the
 * status is exact. SIGWINCH reaches the process through the pty's window
 * size (the relay copies it), SIGCHLD is the runtime's own: neither is
 * forwarded.
 */

#include <poll.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/log.h"
#include "runtime/foreground.h"
#include "runtime/terminal.h"

/* After the process exits, what it wrote may still be on its way through
 * the line discipline: relay until the pty hangs up, but no longer than
 * this when something it left behind keeps the terminal open. */
#define FINAL_RELAY_MS 1000

void moat_foreground_signals(sigset_t *ret)
{
        sigfillset(ret);
        sigdelset(ret, SIGSEGV);
        sigdelset(ret, SIGBUS);
        sigdelset(ret, SIGILL);
        sigdelset(ret, SIGFPE);
        sigdelset(ret, SIGTTIN);
        sigdelset(ret, SIGTTOU);
}

static void relay_rest(int pty_master)
{
        _cleanup_close_ int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
        struct itimerspec its = { .it_value = { .tv_sec = FINAL_RELAY_MS / 1000,
                                                .tv_nsec = (FINAL_RELAY_MS % 1000) * 1000000L } };
        _cleanup_error_ struct moat_error *rerr = NULL;

        if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
                return;
        if (moat_terminal_relay(pty_master, tfd, &rerr) < 0)
                log_debug("terminal relay after exit: %s", rerr ? rerr->msg : "failed");
}

int moat_foreground_wait(pid_t pid, int pty_master, const sigset_t *forwarded, int *ret_status,
                         struct moat_error **reterr)
{
        _cleanup_close_ int sfd = signalfd(-1, forwarded, SFD_CLOEXEC | SFD_NONBLOCK);
        _cleanup_close_ int pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        _cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
        if (sfd < 0 || pidfd < 0 || ep < 0)
                return moat_error_set(reterr, errno, "waiting for the container process");
        struct epoll_event ev = { .events = EPOLLIN, .data.fd = sfd };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev) < 0)
                return moat_error_set(reterr, errno, "epoll_ctl");
        ev.data.fd = pidfd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev) < 0)
                return moat_error_set(reterr, errno, "epoll_ctl");

        bool relaying = pty_master >= 0;
        for (;;) {
                struct pollfd p = { .fd = ep, .events = POLLIN };
                if (relaying) {
                        _cleanup_error_ struct moat_error *rerr = NULL;
                        /* Returns when the pty hangs up, on an error, or when
                         * ep is readable. */
                        int r = moat_terminal_relay(pty_master, ep, &rerr);
                        if (r < 0) {
                                log_debug("terminal relay stopped: %s", rerr ? rerr->msg : strerror(-r));
                                relaying = false;
                        } else if (poll(&p, 1, 0) <= 0)
                                relaying = false;
                } else if (poll(&p, 1, -1) < 0 && errno != EINTR)
                        return moat_error_set(reterr, errno, "waiting for the container process");

                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof(si)) == (ssize_t) sizeof(si))
                        if (si.ssi_signo != SIGCHLD && si.ssi_signo != SIGWINCH)
                                (void) kill(pid, (int) si.ssi_signo);

                int status;
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid) {
                        if (relaying)
                                relay_rest(pty_master);
                        *ret_status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
                        return 0;
                }
                if (w < 0 && errno != EINTR)
                        return moat_error_set(reterr, errno, "waiting for the container process");
        }
}

void moat_foreground_drain_signals(const sigset_t *set)
{
        static const struct timespec zero = { 0, 0 };
        while (sigtimedwait(set, NULL, &zero) > 0)
                ;
}
