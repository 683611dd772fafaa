/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The container init's birth and set-up.
 *
 * One raw clone() creates the init directly in its new namespaces (no
 * re-exec of the runtime, no intermediate process): the init is pid 1 of its
 * pid namespace from the start. Two namespaces cannot be entered that way
 * and are prepared in the parent around the clone instead: a joined pid
 * namespace and the time namespace (setns/unshare only affect the children
 * of the caller for those two, so the parent switches them, clones, and
 * switches back). The cgroup namespace is created by the init itself after
 * the parent has placed it in its cgroup, so that the namespace's root is
 * the container's cgroup and not the runtime's.
 *
 * Parent and init speak over a SOCK_SEQPACKET socketpair:
 *   parent -> init   GO (maps written, cgroup entered; carries the state
 *                    JSON for hooks), HOOKS_DONE, START
 *   init -> parent   HOOKS (run prestart/createRuntime now), PTY (with the
 *                    master fd), ERROR (message), READY
 * Any failure of the init is sent as ERROR with the full message and the
 * init exits; the parent turns it into the create error. If the parent dies,
 * the init reads EOF and exits, so nothing is left behind.
 *
 * The init opens exec.fifo through an fd of the host's /proc taken before
 * pivot_root, since the fifo lives outside the container; that fd is
 * close-on-exec and closed before the program runs.
 */

#include <fcntl.h>
#include <link.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "runtime/hooks.h"
#include "runtime/linux.h"
#include "runtime/mount.h"
#include "runtime/process.h"
#include "runtime/sync.h"
#include "runtime/protect.h"
#include "runtime/runtime.h"
#include "runtime/terminal.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif


enum sync_type {
        SYNC_GO = 1,
        SYNC_HOOKS,
        SYNC_HOOKS_DONE,
        SYNC_PTY,
        SYNC_ERROR,
        SYNC_READY,
        SYNC_START,
        SYNC_CGROUP_MADE,
};

/* The channel to the init (runtime/sync.h), with this file's types. */
#define SYNC_MSG_MAX MOAT_SYNC_MSG_MAX
#define sync_header moat_sync_header

static int sync_send(int fd, enum sync_type type, int errnum, const char *payload, int pass_fd)
{
        return moat_sync_send(fd, type, errnum, payload, pass_fd);
}

static int sync_recv(int fd, struct sync_header *ret_h, char **ret_payload, int *ret_fd)
{
        return moat_sync_recv(fd, ret_h, ret_payload, ret_fd);
}

/* ---- the init's side ---------------------------------------------------- */

/* Report err to the parent and exit: the last act of a failed init. */
static MOAT_NORETURN void child_fail(int sync_fd, int r, struct moat_error *err)
{
        const char *msg = err && err->msg ? err->msg : strerror(-r);
        if (sync_send(sync_fd, SYNC_ERROR, -r, msg, -EBADF) < 0)
                dprintf(STDERR_FILENO, "moat-runtime: container init: %s\n", msg);
        _exit(1);
}

/* Bound of one map handed to newuidmap/newgidmap (the kernel takes 340
 * lines). */
#define ID_MAP_MAX 340

static bool single_self_map(const struct oci_id_mapping *m, size_t n, unsigned id)
{
        return n == 1 && m[0].size == 1 && m[0].host_id == id;
}

/*
 * An unprivileged runtime may only map its own id, once: every other map
 * (several ids, ranges from /etc/subuid and /etc/subgid) is written by the
 * setuid helpers of shadow's uidmap package, which check the ranges the
 * administrator delegated. Their stderr becomes part of the error.
 */
static int run_id_helper(const char *helper, const char *field, pid_t pid, const struct oci_id_mapping *m,
                         size_t n, struct moat_error **reterr)
{
        if (n > ID_MAP_MAX)
                return moat_error_setx(reterr, -E2BIG, "linux.%s: %zu mappings, at most %d allowed", field, n,
                                       ID_MAP_MAX);
        _cleanup_free_ char *buf = malloc(16 + n * 3 * 12);
        _cleanup_free_ char **argv = calloc(3 + n * 3, sizeof(char *));
        if (!buf || !argv)
                return -ENOMEM;
        char *o = buf;
        size_t k = 0;
        argv[k++] = (char *) helper;
        argv[k++] = o;
        o += sprintf(o, "%d", (int) pid) + 1;
        for (size_t i = 0; i < n; i++) {
                unsigned v[3] = { m[i].container_id, m[i].host_id, m[i].size };
                for (int j = 0; j < 3; j++) {
                        argv[k++] = o;
                        o += sprintf(o, "%u", v[j]) + 1;
                }
        }
        argv[k] = NULL;

        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return moat_error_set(reterr, errno, "pipe");
        _cleanup_close_ int rd = pipefd[0];
        pid_t child = fork();
        if (child < 0) {
                close(pipefd[1]);
                return moat_error_set(reterr, errno, "fork for %s", helper);
        }
        if (child == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull >= 0)
                        dup2(devnull, STDIN_FILENO);
                dup2(pipefd[1], STDOUT_FILENO);
                dup2(pipefd[1], STDERR_FILENO);
                execvp(helper, argv);
                _exit(errno == ENOENT ? 127 : 126);
        }
        close(pipefd[1]);
        char out[1024];
        size_t got = 0;
        for (;;) {
                ssize_t r = read(rd, out + got, sizeof(out) - 1 - got);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        break;
                got += (size_t) r;
                if (got == sizeof(out) - 1)
                        break;
        }
        out[got] = '\0';
        while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == ' '))
                out[--got] = '\0';
        for (char *p = out; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        int status;
        while (waitpid(child, &status, 0) < 0)
                if (errno != EINTR)
                        return moat_error_set(reterr, errno, "waiting for %s", helper);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return moat_error_setx(reterr, -ENOENT,
                                       "linux.%s: an unprivileged user can map only its own id; more needs %s "
                                       "(package uidmap), which is not in PATH",
                                       field, helper);
        return moat_error_setx(reterr, -EPERM,
                               "linux.%s: %s refused the mapping (are the ranges delegated to this user in %s?): %s",
                               field, helper, streq(helper, "newuidmap") ? "/etc/subuid" : "/etc/subgid",
                               got ? out : "no message");
}

static int write_uid_gid_maps(pid_t pid, const struct oci_linux *lx, struct moat_error **reterr)
{
        static const char *const files[2] = { "uid_map", "gid_map" };
        static const char *const fields[2] = { "uidMappings", "gidMappings" };
        static const char *const helpers[2] = { "newuidmap", "newgidmap" };
        const struct oci_id_mapping *maps[2] = { lx->uid_mappings, lx->gid_mappings };
        size_t counts[2] = { lx->n_uid_mappings, lx->n_gid_mappings };
        unsigned self[2] = { geteuid(), getegid() };
        /* Root (of the initial or of an enclosing user namespace) writes
         * any map the kernel accepts from it. */
        bool privileged = self[0] == 0;

        for (int i = 0; i < 2; i++) {
                if (counts[i] == 0)
                        continue;
                if (!privileged && !single_self_map(maps[i], counts[i], self[i])) {
                        int r = run_id_helper(helpers[i], fields[i], pid, maps[i], counts[i], reterr);
                        if (r < 0)
                                return r;
                        continue;
                }
                char path[64];
                if (i == 1 && !privileged) {
                        /* Without CAP_SETGID in the parent namespace the
                         * kernel takes a gid_map only once setgroups() is
                         * off for good in the new namespace. */
                        snprintf(path, sizeof(path), "/proc/%d/setgroups", (int) pid);
                        int r = write_string_file_at(AT_FDCWD, path, "deny");
                        if (r < 0)
                                return moat_error_set(reterr, r, "linux.gidMappings: writing \"deny\" to %s", path);
                }
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&text, &len);
                if (!f)
                        return -ENOMEM;
                for (size_t j = 0; j < counts[i]; j++)
                        fprintf(f, "%u %u %u\n", maps[i][j].container_id, maps[i][j].host_id, maps[i][j].size);
                fclose(f);
                snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, files[i]);
                _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "opening %s", path);
                /* The kernel takes the whole map in one write. */
                if (write(fd, text, len) != (ssize_t) len)
                        return moat_error_set(reterr, errno, "linux.%s: writing %s", fields[i], path);
        }
        return 0;
}

static int join_namespace(const struct oci_namespace *ns, struct moat_error **reterr)
{
        _cleanup_close_ int fd = open(ns->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "linux.namespaces: opening %s namespace '%s'",
                                      oci_namespace_type_to_string(ns->type), ns->path);
        if (setns(fd, (int) oci_namespace_type_clone_flag(ns->type)) < 0) {
                if (errno == EINVAL)
                        return moat_error_setx(reterr, -EINVAL,
                                               "linux.namespaces: '%s' is not a %s namespace", ns->path,
                                               oci_namespace_type_to_string(ns->type));
                return moat_error_set(reterr, errno, "linux.namespaces: joining %s namespace '%s'",
                                      oci_namespace_type_to_string(ns->type), ns->path);
        }
        return 0;
}

static int apply_sysctls(const struct oci_linux *lx, int proc_fd, struct moat_error **reterr)
{
        for (size_t i = 0; i < lx->n_sysctl; i++) {
                const char *key = lx->sysctl[i].key;
                char path[4096];
                int n = snprintf(path, sizeof(path), "sys/%s", key);
                if (n < 0 || (size_t) n >= sizeof(path))
                        return moat_error_setx(reterr, -ENAMETOOLONG, "linux.sysctl: key \"%s\" too long", key);
                /* net.ipv4.conf.eth0/1.x: dots are separators, slashes were dots. */
                for (char *p = path + 4; *p; p++) {
                        if (*p == '.')
                                *p = '/';
                        else if (*p == '/')
                                *p = '.';
                }
                if (strstr(path, "..") || strstr(path, "//"))
                        return moat_error_setx(reterr, -EINVAL, "linux.sysctl: invalid key \"%s\"", key);
                /* Verified procfs, no symlink followed, no mount crossed. */
                _cleanup_close_ int fd = moat_procfs_open(proc_fd, path, O_WRONLY);
                if (fd < 0)
                        return moat_error_set(reterr, fd, "linux.sysctl: \"%s\"", key);
                const char *v = lx->sysctl[i].value;
                if (write_all(fd, v, strlen(v)) < 0)
                        return moat_error_set(reterr, errno, "linux.sysctl: setting \"%s\" to \"%s\"", key, v);
        }
        return 0;
}

static char **build_env(const struct moat_spawn *sp)
{
        const struct oci_process *p = &sp->config->process;
        size_t n = 0;

        for (char **e = p->env; e && *e; e++)
                n++;
        char **env = calloc(n + 3, sizeof(char *));
        if (!env)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (sp->listen_fds > 0 && (startswith(p->env[i], "LISTEN_FDS=") || startswith(p->env[i], "LISTEN_PID=")))
                        continue;
                env[k++] = p->env[i];
        }
        if (sp->listen_fds > 0) {
                static char listen_fds[32];
                snprintf(listen_fds, sizeof(listen_fds), "LISTEN_FDS=%u", sp->listen_fds);
                env[k++] = listen_fds;
                env[k++] = (char *) "LISTEN_PID=1";
        }
        env[k] = NULL;
        return env;
}

static int setup_terminal(const struct moat_spawn *sp, int console_fd, int sync_fd, struct moat_error **reterr)
{
        const struct oci_process *p = &sp->config->process;
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        _cleanup_free_ char *slave_path = NULL;
        int r;

        r = moat_terminal_open_pty(&master, &slave, &slave_path, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "process.terminal");
        if (p->has_console_size) {
                r = moat_terminal_set_size(slave, p->console_height, p->console_width, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "process.consoleSize");
        }
        /* /dev/console is the container's terminal too, as with runc. Both
         * ends are fds: the target is created (never followed) and the pty
         * is attached with move_mount. */
        _cleanup_close_ int console = open("/dev/console", O_WRONLY | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
        if (console < 0 && errno != EROFS)
                return moat_error_set(reterr, errno, "process.terminal: creating /dev/console");
        if (console >= 0) {
                struct stat st;
                if (fstat(console, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)))
                        return moat_error_setx(reterr, -EINVAL, "process.terminal: /dev/console is not a file");
                _cleanup_close_ int tree = (int) syscall(SYS_open_tree, slave, "",
                                                         OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
                if (tree < 0)
                        return moat_error_set(reterr, errno, "process.terminal: cloning %s", slave_path);
                if (syscall(SYS_move_mount, tree, "", console, "",
                            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                        return moat_error_set(reterr, errno, "process.terminal: mounting %s on /dev/console",
                                              slave_path);
        }

        if (console_fd >= 0)
                r = moat_terminal_send_fd_on(console_fd, master, slave_path, reterr);
        else {
                r = sync_send(sync_fd, SYNC_PTY, 0, slave_path, master);
                if (r < 0)
                        moat_error_set(reterr, r, "sending the pty master to the runtime");
        }
        if (r < 0)
                return r;
        master = safe_close(master);
        r = moat_terminal_setup_slave(slave, reterr);
        if (r < 0)
                return r;
        if (slave > STDERR_FILENO)
                slave = safe_close(slave);
        else
                slave = -EBADF;
        return 0;
}

/*
 * Block until `start` (exec.fifo) or the parent (START message) lets the
 * program run. The fifo's write end is handed back and stays open, like the
 * sync socket, until execve closes both (O_CLOEXEC): their EOF tells the
 * other side that the program has been exec'd, which poststart hooks must
 * wait for.
 */
static int wait_for_start(const struct moat_spawn *sp, int sync_fd, int proc_fd, int *ret_fifo,
                          struct moat_error **reterr)
{
        if (sp->fifo_fd >= 0) {
                char path[64];
                snprintf(path, sizeof(path), "self/fd/%d", sp->fifo_fd);
                /* Blocks until `start` opens the read side. */
                _cleanup_close_ int fd = openat(proc_fd, path, O_WRONLY | O_CLOEXEC);
                if (fd < 0)
                        return moat_error_set(reterr, errno, "opening exec.fifo");
                if (write_all(fd, "0", 1) < 0)
                        return moat_error_set(reterr, errno, "writing exec.fifo");
                *ret_fifo = TAKE_FD(fd);
                return 0;
        }
        struct sync_header h;
        int r = sync_recv(sync_fd, &h, NULL, NULL);
        if (r < 0 || h.type != SYNC_START)
                return moat_error_setx(reterr, r < 0 ? r : -EBADMSG, "the runtime did not start the container");
        return 0;
}

/* Whether the init must have the parent's go before it sets up anything:
 * a new user namespace needs its id maps, hooks run before the process
 * settings need the state (with the pid) the go carries, and what depends
 * on the cgroup the init is in (below). */
static bool go_before_setup(const struct moat_spawn *sp, unsigned long created)
{
        const struct oci_config *c = sp->config;
        if (created & CLONE_NEWUSER)
                return true;
        if (c->hooks[OCI_HOOK_PRESTART].n_hooks > 0 || c->hooks[OCI_HOOK_CREATE_RUNTIME].n_hooks > 0 ||
            c->hooks[OCI_HOOK_CREATE_CONTAINER].n_hooks > 0)
                return true;
        /* Made before the go, "cgroup" mounts bind the container's
         * directories from the copy of the parent's mounts
         * (moat_mount_context); in a joined mount namespace they are found
         * from the init's own cgroup, which must be the container's by then. */
        const struct oci_namespace *mntns = oci_config_find_namespace(c, OCI_NS_MOUNT);
        if (!mntns || mntns->path)
                return true;
        /* A new cgroup namespace is made after the go, rooted where the init
         * has been moved; one without a cgroup to bind is made first. */
        const struct oci_namespace *cgns = oci_config_find_namespace(c, OCI_NS_CGROUP);
        return cgns && (cgns->path || !sp->cgroup);
}

/*
 * A fork gets no page-table entries for the program's text (file pages the
 * kernel can fault in again): the init would take a fault for every 64 KiB
 * of code it runs, a dozen and more before its exec, each costing a VM
 * 10-20 us, and as many for its read-only data. One MADV_POPULATE_READ
 * per read-only segment of the program maps them at once. Only the main
 * program's; nothing fails if it cannot.
 */
static int populate_segment(struct dl_phdr_info *info, size_t size, void *userdata)
{
        uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);

        if (info->dlpi_name && info->dlpi_name[0])
                return 0;
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
                        continue;
                uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
                uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
                (void) madvise((void *) start, end - start, MADV_POPULATE_READ);
        }
        return 1;
}

/* A new network namespace comes with its loopback up, as with crun and
 * docker's "none" network: a program in the container can reach itself on
 * 127.0.0.1. Two ioctls on an AF_INET socket, where a netlink library
 * would be more code than the change. */
int moat_loopback_up(void)
{
        _cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr = { .ifr_name = "lo" };

        if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
                return -errno;
        if (ifr.ifr_flags & IFF_UP)
                return 0;
        ifr.ifr_flags |= IFF_UP;
        return ioctl(fd, SIOCSIFFLAGS, &ifr) < 0 ? -errno : 0;
}

/* The init of a create joins its cgroup by itself (moat_cgroup_join_self):
 * when the parent made the directories after the clone and the init waits
 * for them before its mounts. */
static bool init_joins_cgroup(const struct moat_spawn *sp, unsigned long created)
{
        return sp->cgroup && sp->after_clone && !go_before_setup(sp, created);
}

static MOAT_NORETURN void child_main(const struct moat_spawn *sp, int sync_fd, unsigned long created)
{
        const struct oci_config *c = sp->config;
        const struct oci_linux *lx = &c->linux_;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *state_json = NULL;
        _cleanup_close_ int proc_fd = -EBADF;
        int console_fd = sp->console_fd;
        struct sync_header h;
        int r;

        for (size_t i = 0; i < ELEMENTSOF(sp->runtime_fds); i++)
                if (sp->runtime_fds[i] >= 0)
                        close(sp->runtime_fds[i]);
        (void) dl_iterate_phdr(populate_segment, NULL);

        /* The program starts with no signal blocked or ignored, whatever
         * the caller had (run blocks them all to forward them). */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++) {
                struct sigaction sa;
                if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, NULL, &sa) < 0)
                        continue;
                if (sa.sa_handler == SIG_IGN) {
                        sa.sa_handler = SIG_DFL;
                        (void) sigaction(sig, &sa, NULL);
                }
        }

        /* Nobody in the container may ptrace or open /proc/<pid> files of
         * the init while it still holds host resources; execve restores
         * the dumpable flag for the container's program. A new user
         * namespace stays dumpable until its maps are written: an
         * unprivileged parent (or newuidmap acting for it) can only write
         * /proc/<pid>/uid_map of a process that belongs to the caller.
         * Nothing else runs in the namespace yet. */
        if (!(created & CLONE_NEWUSER))
                (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

        /* Wait for the parent (id maps written, cgroup entered, the state
         * for hooks) before anything that depends on it. Without those
         * dependencies the mounts are made meanwhile, and the wait comes
         * before the process's own settings: moving the init into its
         * cgroup costs the parent a write per hierarchy, time the init
         * spends on its root instead of waiting. */
        const bool go_first = go_before_setup(sp, created);
        if (go_first) {
                r = sync_recv(sync_fd, &h, &state_json, NULL);
                if (r < 0 || h.type != SYNC_GO)
                        _exit(1);
        }
        if (created & CLONE_NEWUSER)
                (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

        if (created & CLONE_NEWUSER) {
                if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
                        child_fail(sync_fd, -errno,
                                   (moat_error_set(&err, errno, "becoming root in the new user namespace (are "
                                                                "uid 0 and gid 0 mapped?)"), err));
        }

        /* A joined user namespace comes first: everything created after it
         * is owned by it. */
        const struct oci_namespace *userns = oci_config_find_namespace(c, OCI_NS_USER);
        if (userns && userns->path) {
                r = join_namespace(userns, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }
        unsigned long late = 0;
        for (size_t i = 0; i < lx->n_namespaces; i++) {
                const struct oci_namespace *ns = &lx->namespaces[i];
                if (ns->type == OCI_NS_USER || ns->type == OCI_NS_PID || ns->type == OCI_NS_TIME)
                        continue;
                if (ns->path) {
                        r = join_namespace(ns, &err);
                        if (r < 0)
                                child_fail(sync_fd, r, err);
                } else if (!(created & oci_namespace_type_clone_flag(ns->type)))
                        late |= oci_namespace_type_clone_flag(ns->type);
        }
        /* The cgroup namespace is rooted where the init is when it is made. */
        const unsigned long after_go = go_first ? 0 : late & CLONE_NEWCGROUP;
        const bool new_cgroup_ns = (late | created) & CLONE_NEWCGROUP;
        late &= ~after_go;
        if (late && unshare((int) late) < 0)
                child_fail(sync_fd, -errno, (moat_error_set(&err, errno, "creating namespaces"), err));
        if ((created | late) & CLONE_NEWNET) {
                r = moat_loopback_up();
                if (r < 0)
                        child_fail(sync_fd, r,
                                   (moat_error_set(&err, r, "bringing up the loopback interface of the new network "
                                                            "namespace"), err));
        }

        if (!sp->no_new_keyring)
                /* A fresh anonymous session keyring, so the container does not
                 * share the caller's keys; kernels without keyrings are fine. */
                (void) syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL, 0, 0, 0);

        proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc_fd < 0)
                child_fail(sync_fd, -errno, (moat_error_set(&err, errno, "opening /proc"), err));
        r = moat_procfs_verify(proc_fd);
        if (r < 0)
                child_fail(sync_fd, r, (moat_error_set(&err, r, "/proc is not a procfs"), err));

        /* The parent's cgroup mounts hold for the copy of its mount
         * namespace the clone made, not for a joined one. */
        const struct oci_namespace *mntns = oci_config_find_namespace(c, OCI_NS_MOUNT);
        struct moat_mount_context mctx = {
                .config = c,
                .rootfs = sp->rootfs,
                .in_user_ns = oci_config_find_namespace(c, OCI_NS_USER) != NULL,
                .no_pivot = sp->no_pivot,
                .new_cgroup_ns = new_cgroup_ns,
                .cgroup_mounts = mntns && !mntns->path ? moat_cgroup_mounts(sp->cgroup) : NULL,
                .cgroup = go_first ? NULL : sp->cgroup, /* !go_first: a mount namespace of our own */
        };
        /* The cgroup's directories, which the "cgroup" mounts bind, may be
         * made by the parent after the clone. */
        struct moat_cgroup_join cgroup_join = { .n = 0 };
        if (!go_first && sp->after_clone) {
                r = sync_recv(sync_fd, &h, NULL, NULL);
                if (r < 0 || h.type != SYNC_CGROUP_MADE)
                        _exit(1);
        }
        if (init_joins_cgroup(sp, created)) {
                r = moat_cgroup_join_open(sp->cgroup, &cgroup_join, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }
        r = moat_mount_prepare_rootfs(&mctx, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        if (c->hooks[OCI_HOOK_PRESTART].n_hooks > 0 || c->hooks[OCI_HOOK_CREATE_RUNTIME].n_hooks > 0) {
                r = sync_send(sync_fd, SYNC_HOOKS, 0, NULL, -EBADF);
                if (r < 0 || sync_recv(sync_fd, &h, NULL, NULL) < 0 || h.type != SYNC_HOOKS_DONE)
                        _exit(1);
        }
        r = moat_hooks_run(OCI_HOOK_CREATE_CONTAINER, &c->hooks[OCI_HOOK_CREATE_CONTAINER], state_json,
                           MOAT_HOOKS_STOP_AT_FIRST_FAILURE, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        r = moat_mount_pivot_root(&mctx, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);
        /* The terminal comes before maskedPaths and readonlyPaths, so its
         * /dev/console mount can never be used to cover them. */
        if (c->process.terminal) {
                r = setup_terminal(sp, console_fd, sync_fd, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }
        console_fd = safe_close(console_fd);

        r = moat_mount_finalize(&mctx, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
                child_fail(sync_fd, -errno, (moat_error_set(&err, errno, "hostname: \"%s\"", c->hostname), err));
        if (c->domainname && setdomainname(c->domainname, strlen(c->domainname)) < 0)
                child_fail(sync_fd, -errno,
                           (moat_error_set(&err, errno, "domainname: \"%s\"", c->domainname), err));
        r = apply_sysctls(lx, proc_fd, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        if (!go_first) {
                r = sync_recv(sync_fd, &h, &state_json, NULL);
                if (r < 0 || h.type != SYNC_GO)
                        _exit(1);
                /* After the limits (the parent's, before the go), before
                 * a cgroup namespace is rooted where the init is. */
                r = moat_cgroup_join_self(sp->cgroup, &cgroup_join, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
                if (after_go && unshare((int) after_go) < 0)
                        child_fail(sync_fd, -errno,
                                   (moat_error_set(&err, errno, "creating the cgroup namespace"), err));
        }


        const struct oci_process *p = &c->process;
        r = moat_process_apply_rlimits(p, &err);
        if (r >= 0)
                r = moat_process_apply_oom_score_adj_at(p, proc_fd, &err);
        if (r >= 0)
                r = moat_process_apply_personality(c, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        r = moat_process_make_cwd(p, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        r = moat_lsm_apply_exec_label(c, p, proc_fd, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        /* Without no_new_privs, installing a filter needs CAP_SYS_ADMIN,
         * which the credentials step may drop: install it first (the
         * filter must then allow the credential syscalls, as every
         * sensible profile does). With no_new_privs it comes last. */
        if (sp->seccomp && !p->no_new_privileges) {
                r = moat_seccomp_install(sp->seccomp, state_json, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }

        unsigned securebits = 0;
        r = moat_process_securebits(c, &securebits, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);
        r = moat_process_apply_credentials_ex(p, securebits, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);
        r = moat_process_chdir(p, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        _cleanup_free_ char *exe = NULL;
        r = moat_process_find_executable(p, &exe, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);
        char **env = build_env(sp);
        if (!env)
                child_fail(sync_fd, -ENOMEM, NULL);

        /* Stdio, LISTEN_FDS and --preserve-fds stay open across exec; every
         * other descriptor the caller left without O_CLOEXEC is closed. */
        unsigned first_closed = 3 + sp->listen_fds + sp->preserve_fds;
        for (unsigned fd = 3; fd < first_closed; fd++) {
                int flags = fcntl((int) fd, F_GETFD);
                if (flags >= 0 && (flags & FD_CLOEXEC))
                        (void) fcntl((int) fd, F_SETFD, flags & ~FD_CLOEXEC);
        }
        if (syscall(SYS_close_range, first_closed, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                child_fail(sync_fd, -errno, (moat_error_set(&err, errno, "close_range"), err));

        if (sp->seccomp && p->no_new_privileges) {
                r = moat_seccomp_install(sp->seccomp, state_json, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }

        r = sync_send(sync_fd, SYNC_READY, 0, NULL, -EBADF);
        if (r < 0)
                _exit(1);

        int fifo_fd = -EBADF; /* closed by execve */
        r = wait_for_start(sp, sync_fd, proc_fd, &fifo_fd, &err);
        (void) fifo_fd;
        if (r < 0) {
                dprintf(STDERR_FILENO, "moat-runtime: container init: %s\n", err->msg);
                _exit(1);
        }
        proc_fd = safe_close(proc_fd);

        r = moat_hooks_run(OCI_HOOK_START_CONTAINER, &c->hooks[OCI_HOOK_START_CONTAINER], state_json,
                           MOAT_HOOKS_STOP_AT_FIRST_FAILURE, &err);
        if (r >= 0)
                r = moat_landlock_apply(c, &err);
        if (r < 0) {
                dprintf(STDERR_FILENO, "moat-runtime: %s\n", err->msg);
                _exit(1);
        }

        execve(exe, p->args, env);
        dprintf(STDERR_FILENO, "moat-runtime: exec \"%s\": %s\n", exe, strerror(errno));
        _exit(127);
}

/* ---- the parent's side -------------------------------------------------- */

static int write_time_offsets(const struct oci_linux *lx, struct moat_error **reterr)
{
        _cleanup_close_ int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return moat_error_set(reterr, errno, "linux.timeOffsets: opening /proc/self/timens_offsets");
        for (size_t i = 0; i < lx->n_time_offsets; i++) {
                char line[128];
                const struct oci_time_offset *t = &lx->time_offsets[i];
                int n = snprintf(line, sizeof(line), "%s %lld %u\n",
                                 t->clock == OCI_CLOCK_MONOTONIC ? "monotonic" : "boottime", (long long) t->secs,
                                 t->nanosecs);
                if (write(fd, line, (size_t) n) != n)
                        return moat_error_set(reterr, errno, "linux.timeOffsets[%zu]", i);
        }
        return 0;
}

/* An init that does not wait for the go can fail while the parent still
 * prepares, and a step of the parent's then fails because the init is
 * gone: the init's report, already queued, says why. Returns it, or 0 when
 * nothing is queued. */
static int queued_init_error(int sync_fd, struct moat_error **reterr)
{
        for (;;) {
                struct pollfd p = { .fd = sync_fd, .events = POLLIN };
                if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
                        return 0;
                struct sync_header h;
                _cleanup_free_ char *payload = NULL;
                _cleanup_close_ int passed = -EBADF;
                int r = sync_recv(sync_fd, &h, &payload, &passed);
                if (r == -ECONNRESET)
                        continue; /* reported once, before the queued messages */
                if (r < 0)
                        return 0;
                if (h.type == SYNC_ERROR)
                        return moat_error_setx(reterr, h.errnum < 0 ? h.errnum : -EIO, "%s", payload);
        }
}

static void kill_and_reap(pid_t pid)
{
        (void) kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

static int exit_status_text(pid_t pid, char *buf, size_t len)
{
        int status;
        pid_t w;
        do
                w = waitpid(pid, &status, 0);
        while (w < 0 && errno == EINTR);
        if (w < 0)
                return snprintf(buf, len, "unknown status");
        if (WIFSIGNALED(status))
                return snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
        return snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
}

int moat_linux_spawn(const struct moat_spawn *sp, struct moat_spawn_result *ret, struct moat_error **reterr)
{
        const struct oci_config *c = sp->config;
        const struct oci_linux *lx = &c->linux_;
        _cleanup_close_ int saved_pidns = -EBADF, saved_timens = -EBADF;
        int pair[2];
        int r;

        if (!oci_config_find_namespace(c, OCI_NS_MOUNT))
                return moat_error_setx(reterr, -EINVAL,
                                       "linux.namespaces: a mount namespace is required (the root filesystem "
                                       "is set up in it)");

        unsigned long flags = 0;
        const struct oci_namespace *userns = oci_config_find_namespace(c, OCI_NS_USER);
        for (size_t i = 0; i < lx->n_namespaces; i++) {
                const struct oci_namespace *ns = &lx->namespaces[i];
                if (ns->path || ns->type == OCI_NS_TIME || ns->type == OCI_NS_CGROUP)
                        continue;
                /* With a joined user namespace, the init creates the others
                 * after joining it so that it owns them (pid excepted: it
                 * must be created by the clone). */
                if (userns && userns->path && ns->type != OCI_NS_PID)
                        continue;
                flags |= oci_namespace_type_clone_flag(ns->type);
        }

        /* The cgroup2 directory first, for the clone to put the init in. */
        const bool init_joins = init_joins_cgroup(sp, flags);
        int cgroup_fd = -EBADF; /* owned by sp->cgroup */
        if (init_joins) {
                r = moat_cgroup_make_v2(sp->cgroup, &cgroup_fd, reterr);
                if (r < 0)
                        return r;
        }

        const struct oci_namespace *pidns = oci_config_find_namespace(c, OCI_NS_PID);
        const struct oci_namespace *timens = oci_config_find_namespace(c, OCI_NS_TIME);
        if (pidns && pidns->path) {
                saved_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
                if (saved_pidns < 0)
                        return moat_error_set(reterr, errno, "opening /proc/self/ns/pid");
                r = join_namespace(pidns, reterr);
                if (r < 0)
                        return r;
        }
        if (timens) {
                saved_timens = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
                if (saved_timens < 0)
                        return moat_error_set(reterr, errno, "opening /proc/self/ns/time");
                if (timens->path)
                        r = join_namespace(timens, reterr);
                else if (unshare(CLONE_NEWTIME) < 0)
                        r = moat_error_set(reterr, errno, "linux.namespaces: creating a time namespace");
                else
                        r = write_time_offsets(lx, reterr);
                if (r < 0) {
                        if (saved_pidns >= 0)
                                (void) setns(saved_pidns, CLONE_NEWPID);
                        (void) setns(saved_timens, CLONE_NEWTIME);
                        return r;
                }
        }

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return moat_error_set(reterr, errno, "socketpair");

        /* A network namespace made ahead (by the monitor's spare, off the
         * start's path: creating one is most of the clone's cost) is entered
         * first thing instead; the init counts it as one it created. Not
         * with a new user namespace, which must own it. */
        unsigned long clone_flags = flags;
        int fresh_netns = -EBADF;
        if ((flags & CLONE_NEWNET) && !(flags & CLONE_NEWUSER) && sp->fresh_netns_fd >= 0) {
                clone_flags &= ~(unsigned long) CLONE_NEWNET;
                fresh_netns = sp->fresh_netns_fd;
        }
        pid_t pid = -1;
        bool cloned_into_cgroup = false;
        if (cgroup_fd >= 0) {
                struct clone_args ca = {
                        .flags = clone_flags | CLONE_INTO_CGROUP,
                        .exit_signal = SIGCHLD,
                        .cgroup = (uint64_t) cgroup_fd,
                };
                pid = (pid_t) syscall(SYS_clone3, &ca, sizeof(ca));
                /* Refused (a kernel before 5.7, a seccomp filter, a
                 * cgroup that takes no process): the plain clone below,
                 * then a cgroup.procs write that names what is wrong. */
                cloned_into_cgroup = pid >= 0;
        }
        if (!cloned_into_cgroup)
                pid = (pid_t) syscall(SYS_clone, clone_flags | SIGCHLD, NULL, NULL, NULL, 0);
        int clone_errno = errno;
        if (pid == 0) {
                close(pair[0]);
                if (cgroup_fd >= 0)
                        close(cgroup_fd);
                if (fresh_netns >= 0) {
                        if (setns(fresh_netns, CLONE_NEWNET) < 0) {
                                struct moat_error *err = NULL;
                                child_fail(pair[1], -errno,
                                           (moat_error_set(&err, errno, "entering the new network namespace"), err));
                        }
                        close(fresh_netns);
                }
                child_main(sp, pair[1], flags);
        }
        bool restored = true;
        if (saved_pidns >= 0 && setns(saved_pidns, CLONE_NEWPID) < 0)
                restored = false;
        if (saved_timens >= 0 && setns(saved_timens, CLONE_NEWTIME) < 0)
                restored = false;
        _cleanup_close_ int sync_fd = pair[0];
        close(pair[1]);
        if (pid < 0)
                return moat_error_set(reterr, clone_errno, "clone");
        ret->pty_master = -EBADF;
        _cleanup_free_ char *state_json = NULL;
        if (!restored) {
                /* Hooks forked later would land in the container's namespaces. */
                r = moat_error_set(reterr, errno, "returning to the runtime's own namespaces");
                goto fail;
        }

        if (flags & CLONE_NEWUSER) {
                r = write_uid_gid_maps(pid, lx, reterr);
                if (r < 0)
                        goto fail;
        }
        const bool go_first = go_before_setup(sp, flags);
        if (sp->after_clone) {
                r = sp->after_clone(sp->userdata, reterr);
                if (r < 0)
                        goto fail;
                if (!go_first) {
                        r = sync_send(sync_fd, SYNC_CGROUP_MADE, 0, NULL, -EBADF);
                        if (r < 0 && r != -EPIPE && r != -ECONNRESET) {
                                moat_error_set(reterr, r, "starting container init");
                                goto fail;
                        }
                }
        }
        if (sp->after_cgroup_made) {
                r = sp->after_cgroup_made(sp->userdata, reterr);
                if (r < 0)
                        goto fail;
        }
        if (sp->cgroup && !(init_joins && (cgroup_fd < 0 || cloned_into_cgroup))) {
                _cleanup_error_ struct moat_error *enter_err = NULL;
                r = moat_cgroup_enter(sp->cgroup, pid, init_joins, &enter_err);
                if (r < 0) {
                        int init_r = go_first ? 0 : queued_init_error(sync_fd, reterr);
                        if (init_r < 0)
                                r = init_r;
                        else if (reterr)
                                *reterr = TAKE_PTR(enter_err);
                        goto fail;
                }
        }
        r = sp->state_json(sp->userdata, pid, "creating", &state_json);
        if (r < 0) {
                moat_error_set(reterr, r, "encoding state for hooks");
                goto fail;
        }
        if (strlen(state_json) > SYNC_MSG_MAX) {
                r = moat_error_setx(reterr, -E2BIG, "the container state for hooks is larger than %u bytes "
                                                    "(annotations too large?)", SYNC_MSG_MAX);
                goto fail;
        }
        r = sync_send(sync_fd, SYNC_GO, 0, state_json, -EBADF);
        /* An init that did not wait for the go may have failed already:
         * its error is read below. */
        if (r < 0 && (go_first || (r != -EPIPE && r != -ECONNRESET))) {
                moat_error_set(reterr, r, "starting container init");
                goto fail;
        }
        if (r >= 0 && sp->while_init_prepares) {
                r = sp->while_init_prepares(sp->while_init_prepares_userdata, reterr);
                if (r < 0)
                        goto fail;
        }

        for (;;) {
                struct sync_header h;
                _cleanup_free_ char *payload = NULL;
                int passed = -EBADF;

                r = sync_recv(sync_fd, &h, &payload, &passed);
                /* An init that exits with our go unread leaves ECONNRESET
                 * pending on this end, reported before what it sent. */
                if (r == -ECONNRESET)
                        continue;
                if (r < 0) {
                        char why[64];
                        ret->pty_master = safe_close(ret->pty_master);
                        exit_status_text(pid, why, sizeof(why));
                        return moat_error_setx(reterr, -ECHILD, "container init exited before it was ready (%s)",
                                               why);
                }
                switch (h.type) {
                case SYNC_HOOKS:
                        r = sp->runtime_hooks(sp->userdata, pid, reterr);
                        if (r < 0)
                                goto fail;
                        r = sync_send(sync_fd, SYNC_HOOKS_DONE, 0, NULL, -EBADF);
                        if (r < 0) {
                                moat_error_set(reterr, r, "resuming container init");
                                goto fail;
                        }
                        break;
                case SYNC_PTY:
                        safe_close(ret->pty_master);
                        ret->pty_master = passed;
                        break;
                case SYNC_ERROR:
                        safe_close(passed);
                        safe_close(ret->pty_master);
                        ret->pty_master = -EBADF;
                        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                                ;
                        return moat_error_setx(reterr, h.errnum < 0 ? h.errnum : -EIO, "%s", payload);
                case SYNC_READY:
                        ret->pid = pid;
                        ret->sync_fd = TAKE_FD(sync_fd);
                        return 0;
                default:
                        safe_close(passed);
                        r = moat_error_setx(reterr, -EBADMSG, "unexpected message %u from container init",
                                            h.type);
                        goto fail;
                }
        }

fail:
        safe_close(ret->pty_master);
        ret->pty_master = -EBADF;
        kill_and_reap(pid);
        return r;
}

int moat_linux_send_start(int sync_fd, struct moat_error **reterr)
{
        int r = sync_send(sync_fd, SYNC_START, 0, NULL, -EBADF);
        if (r < 0)
                return moat_error_set(reterr, r, "starting the container");
        return 0;
}

int moat_linux_wait_exec(int fd)
{
        char b;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        for (;;) {
                if (poll(&p, 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                ssize_t n = read(fd, &b, 1);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return 0;
                if (n < 0 && errno != EINTR && errno != EAGAIN)
                        return -errno;
        }
}

/* ---- rootless mode ------------------------------------------------------ */

static enum moat_rootless_mode rootless_mode = MOAT_ROOTLESS_AUTO;

void moat_rootless_set(enum moat_rootless_mode mode)
{
        rootless_mode = mode;
}

bool moat_in_nested_userns(void)
{
        _cleanup_free_ char *text = NULL;
        unsigned a, b, c;
        int n = 0;

        if (read_full_file_at(AT_FDCWD, "/proc/self/uid_map", 64 * 1024, &text, NULL) < 0)
                return false;
        /* The initial namespace maps all 2^32-1 ids to themselves. */
        if (sscanf(text, "%u %u %u %n", &a, &b, &c, &n) != 3)
                return true;
        return !(a == 0 && b == 0 && c == 4294967295U && text[n] == '\0');
}

bool moat_rootless(void)
{
        if (rootless_mode != MOAT_ROOTLESS_AUTO)
                return rootless_mode == MOAT_ROOTLESS_TRUE;
        return geteuid() != 0 || moat_in_nested_userns();
}
