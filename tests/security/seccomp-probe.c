/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny static probe for the seccomp tests: makes one raw syscall per
 * argument and prints {"name": errno} as one JSON line (0 on success).
 * Built by the tests with `cc -static` (the shared payload has no raw
 * syscall subcommand). Arguments: mount, umount, unshare-user, unshare-fs,
 * clone-newns, clone-plain, clone3, keyctl, add-key, bpf, perf, io-uring,
 * userfaultfd, kexec, init-module, open-by-handle, reboot, swapon, iopl,
 * acct, settimeofday, clock-settime, ptrace, socket-alg, socket-vsock,
 * socket-inet, socket-unix, socket-alg-highbits, personality-0,
 * personality-0x40000, personality-query, getpid, sethostname, setns,
 * chroot, pivot-root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long raw(long nr, long a, long b, long c, long d, long e)
{
        return syscall(nr, a, b, c, d, e, 0);
}

/* errno of a syscall that forks on success: reap the child, report 0. */
static int fork_errno(long r)
{
        if (r < 0)
                return errno;
        if (r == 0)
                _exit(0);
        waitpid((pid_t) r, NULL, 0);
        return 0;
}

static int probe(const char *what)
{
        long r;
        errno = 0;
        if (!strcmp(what, "mount"))
                r = raw(SYS_mount, (long) "none", (long) "/mnt", (long) "tmpfs", 0, 0);
        else if (!strcmp(what, "umount"))
                r = raw(SYS_umount2, (long) "/proc", 2 /* MNT_DETACH */, 0, 0, 0);
        else if (!strcmp(what, "unshare-user"))
                r = raw(SYS_unshare, CLONE_NEWUSER, 0, 0, 0, 0);
        else if (!strcmp(what, "unshare-fs"))
                r = raw(SYS_unshare, CLONE_FS, 0, 0, 0, 0);
        else if (!strcmp(what, "clone-newns"))
                return fork_errno(raw(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
        else if (!strcmp(what, "clone-plain"))
                return fork_errno(raw(SYS_clone, SIGCHLD, 0, 0, 0, 0));
        else if (!strcmp(what, "clone3")) {
                struct clone_args ca;
                memset(&ca, 0, sizeof(ca));
                ca.exit_signal = SIGCHLD;
                return fork_errno(raw(SYS_clone3, (long) &ca, sizeof(ca), 0, 0, 0));
        } else if (!strcmp(what, "keyctl"))
                r = raw(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0, 0, 0);
        else if (!strcmp(what, "add-key"))
                r = raw(SYS_add_key, (long) "user", (long) "moat", (long) "x", 1, -3);
        else if (!strcmp(what, "bpf"))
                r = raw(SYS_bpf, 0, 0, 0, 0, 0);
        else if (!strcmp(what, "perf"))
                r = raw(SYS_perf_event_open, 0, 0, -1, -1, 0);
        else if (!strcmp(what, "io-uring"))
                r = raw(SYS_io_uring_setup, 1, 0, 0, 0, 0);
        else if (!strcmp(what, "userfaultfd"))
                r = raw(SYS_userfaultfd, 0, 0, 0, 0, 0);
        else if (!strcmp(what, "kexec"))
                r = raw(SYS_kexec_load, 0, 0, 0, 0, 0);
        else if (!strcmp(what, "init-module"))
                r = raw(SYS_init_module, 0, 0, (long) "", 0, 0);
        else if (!strcmp(what, "open-by-handle"))
                r = raw(SYS_open_by_handle_at, -1, 0, 0, 0, 0);
        else if (!strcmp(what, "reboot"))
                r = raw(SYS_reboot, 0, 0, 0, 0, 0); /* bad magic: EINVAL when allowed */
        else if (!strcmp(what, "swapon"))
                r = raw(SYS_swapon, (long) "/nonexistent", 0, 0, 0, 0);
#ifdef SYS_iopl
        else if (!strcmp(what, "iopl"))
                r = raw(SYS_iopl, 0, 0, 0, 0, 0);
#endif
        else if (!strcmp(what, "acct"))
                r = raw(SYS_acct, 0, 0, 0, 0, 0);
        else if (!strcmp(what, "settimeofday"))
                r = raw(SYS_settimeofday, 0, 0, 0, 0, 0);
        else if (!strcmp(what, "clock-settime"))
                r = raw(SYS_clock_settime, CLOCK_REALTIME, 0, 0, 0, 0);
        else if (!strcmp(what, "ptrace"))
                r = raw(SYS_ptrace, 0x4206 /* PTRACE_SEIZE */, 1, 0, 0, 0);
        else if (!strcmp(what, "socket-alg"))
                r = raw(SYS_socket, 38, 5 /* SOCK_SEQPACKET */, 0, 0, 0);
        else if (!strcmp(what, "socket-vsock"))
                r = raw(SYS_socket, 40, 1, 0, 0, 0);
        else if (!strcmp(what, "socket-alg-highbits"))
                r = raw(SYS_socket, (long) ((1UL << 32) | 38), 5, 0, 0, 0);
        else if (!strcmp(what, "socket-inet"))
                r = raw(SYS_socket, 2, 2 /* SOCK_DGRAM */, 0, 0, 0);
        else if (!strcmp(what, "socket-unix"))
                r = raw(SYS_socket, 1, 1, 0, 0, 0);
        else if (!strcmp(what, "personality-0"))
                r = raw(SYS_personality, 0, 0, 0, 0, 0);
        else if (!strcmp(what, "personality-0x40000"))
                r = raw(SYS_personality, 0x0040000, 0, 0, 0, 0);
        else if (!strcmp(what, "personality-query"))
                r = raw(SYS_personality, 0xffffffff, 0, 0, 0, 0);
        else if (!strcmp(what, "getpid"))
                r = raw(SYS_getpid, 0, 0, 0, 0, 0);
        else if (!strcmp(what, "sethostname"))
                r = raw(SYS_sethostname, (long) "x", 1, 0, 0, 0);
        else if (!strcmp(what, "setns"))
                r = raw(SYS_setns, -1, 0, 0, 0, 0);
        else if (!strcmp(what, "chroot"))
                r = raw(SYS_chroot, (long) "/", 0, 0, 0, 0);
        else if (!strcmp(what, "pivot-root"))
                r = raw(SYS_pivot_root, (long) "/nonexistent", (long) "/nonexistent", 0, 0, 0);
        else if (!strcmp(what, "getcwd")) {
                char buf[256];
                r = raw(SYS_getcwd, (long) buf, sizeof(buf), 0, 0, 0);
        } else
                return -1;
        return r < 0 ? errno : 0;
}

int main(int argc, char **argv)
{
        printf("{");
        for (int i = 1; i < argc; i++) {
                int e = probe(argv[i]);
                printf("%s\"%s\": %d", i > 1 ? ", " : "", argv[i], e);
        }
        printf("}\n");
        fflush(stdout);
        return 0;
}
