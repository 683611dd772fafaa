/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * `exec`: a new process inside a created or running container.
 *
 * The process spec is the container's (from the config saved at create) or
 * the --process document, with the command line's overrides applied at the
 * JSON level; the result replaces "process" in the saved config and the
 * whole document goes through oci_config_parse(), so an exec'd process is
 * validated exactly like an init and errors name the same JSON paths.
 *
 * The new process is a direct child of the runtime, created already inside
 * the container's pid namespace: the runtime joins that namespace for its
 * children only (setns on the init's pidfd, which cannot hit a reused pid),
 * forks, and switches back. The child, still on the host, takes what it
 * needs from there (an fd of the host's /proc for LSM labels, the init's
 * root, the console socket), then joins every other namespace the init
 * does not share with us in one atomic setns() on the pidfd (the kernel
 * orders the user namespace first), after the runtime has put it in the
 * container's cgroup. setns(CLONE_NEWNS) leaves it at the namespace's root,
 * which is the container's root after pivot_root; when the init's root
 * differs (no-pivot) it chroots to the init's. From there it repeats the
 * init's last steps with the shared helpers (terminal, rlimits, LSM label,
 * seccomp, credentials, cwd, fd hygiene) and execs.
 *
 * The child is not dumpable until execve, so nothing in the container can
 * ptrace it or open its /proc files while it holds host descriptors; every
 * such descriptor is close-on-exec, and the sync socket closing on execve
 * is how the runtime learns that the program runs (an error arrives as a
 * message instead).
 */

#include <fcntl.h>
#include <limits.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "base/log.h"
#include "base/parse.h"
#include "oci/runtime-spec.h"
#include "runtime/cgroup.h"
#include "runtime/foreground.h"
#include "runtime/process.h"
#include "runtime/protect.h"
#include "runtime/runtime.h"
#include "runtime/seccomp.h"
#include "runtime/state.h"
#include "runtime/sync.h"
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

/* Bound of a --process document (a process object is a few KiB). */
#define EXEC_PROCESS_MAX (1024u * 1024u)

enum exec_msg {
        EXEC_MSG_GO = 1, /* runtime -> child: placed in the cgroup, go on */
        EXEC_MSG_PTY,    /* child -> runtime: the pty master (foreground relay) */
        EXEC_MSG_ERROR,  /* child -> runtime: what failed; the child exits */
};

/* The channel to the exec'd process (runtime/sync.h). */
#define exec_msg_header moat_sync_header

static int msg_send(int fd, enum exec_msg type, int errnum, const char *payload, int pass_fd)
{
        return moat_sync_send(fd, type, errnum, payload, pass_fd);
}

/* One message; 0 and ret_h->type == 0 on EOF (the child exec'd or died). */
static int msg_recv(int fd, struct exec_msg_header *ret_h, char **ret_payload, int *ret_fd)
{
        int r = moat_sync_recv(fd, ret_h, ret_payload, ret_fd);
        if (r == -EPIPE) {
                *ret_h = (struct exec_msg_header){ 0 };
                return 0;
        }
        return r;
}

/* Move fd to a number >= min (close-on-exec), so that none of the
 * runtime's descriptors sits where --preserve-fds hands fds to the
 * process. */
static int fd_move_above(int fd, int min)
{
        if (fd < 0 || fd >= min)
                return fd;
        int n = fcntl(fd, F_DUPFD_CLOEXEC, min);
        int saved = errno;
        close(fd);
        if (n < 0)
                return -saved;
        return n;
}

/* ---- the process spec -------------------------------------------------- */

static int json_set_or_fail(json_t *o, const char *key, json_t *v)
{
        return v && json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
}

static int env_merge(json_t *proc, char **env, struct moat_error **reterr)
{
        json_t *arr = json_object_get(proc, "env");
        if (!json_is_array(arr)) {
                arr = json_array();
                if (json_set_or_fail(proc, "env", arr) < 0)
                        return -ENOMEM;
        }
        for (char **e = env; e && *e; e++) {
                const char *eq = strchr(*e, '=');
                if (!eq || eq == *e)
                        return moat_error_setx(reterr, -EINVAL, "--env \"%s\": expected NAME=VALUE", *e);
                size_t klen = (size_t) (eq - *e) + 1;
                size_t i;
                json_t *v;
                bool replaced = false;
                json_array_foreach(arr, i, v) {
                        const char *s = json_string_value(v);
                        if (s && strncmp(s, *e, klen) == 0) {
                                if (json_array_set_new(arr, i, json_string(*e)) < 0)
                                        return -ENOMEM;
                                replaced = true;
                                break;
                        }
                }
                if (!replaced && json_array_append_new(arr, json_string(*e)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int caps_add(json_t *proc, char **caps)
{
        static const char *const sets[] = { "bounding", "effective", "inheritable", "permitted", "ambient" };
        json_t *c = json_object_get(proc, "capabilities");

        if (!json_is_object(c)) {
                c = json_object();
                if (json_set_or_fail(proc, "capabilities", c) < 0)
                        return -ENOMEM;
        }
        for (size_t k = 0; k < ELEMENTSOF(sets); k++) {
                json_t *arr = json_object_get(c, sets[k]);
                if (!json_is_array(arr)) {
                        arr = json_array();
                        if (json_set_or_fail(c, sets[k], arr) < 0)
                                return -ENOMEM;
                }
                for (char **cap = caps; *cap; cap++) {
                        size_t i;
                        json_t *v;
                        bool present = false;
                        json_array_foreach(arr, i, v)
                                if (json_is_string(v) && streq(json_string_value(v), *cap))
                                        present = true;
                        if (!present && json_array_append_new(arr, json_string(*cap)) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int user_override(json_t *proc, const struct moat_exec_options *opts, struct moat_error **reterr)
{
        json_t *u = json_object_get(proc, "user");
        if (!json_is_object(u)) {
                u = json_pack("{s:i, s:i}", "uid", 0, "gid", 0);
                if (json_set_or_fail(proc, "user", u) < 0)
                        return -ENOMEM;
        }
        if (opts->user) {
                _cleanup_free_ char *copy = strdup(opts->user);
                uint32_t uid, gid;
                if (!copy)
                        return -ENOMEM;
                char *colon = strchr(copy, ':');
                if (colon)
                        *colon = '\0';
                if (safe_atou32(copy, &uid) < 0 || (colon && safe_atou32(colon + 1, &gid) < 0))
                        return moat_error_setx(reterr, -EINVAL,
                                               "--user \"%s\": expected uid[:gid] as numbers", opts->user);
                if (json_set_or_fail(u, "uid", json_integer(uid)) < 0 ||
                    (colon && json_set_or_fail(u, "gid", json_integer(gid)) < 0))
                        return -ENOMEM;
        }
        if (opts->n_additional_gids > 0) {
                json_t *arr = json_object_get(u, "additionalGids");
                if (!json_is_array(arr)) {
                        arr = json_array();
                        if (json_set_or_fail(u, "additionalGids", arr) < 0)
                                return -ENOMEM;
                }
                for (size_t i = 0; i < opts->n_additional_gids; i++)
                        if (json_array_append_new(arr, json_integer(opts->additional_gids[i])) < 0)
                                return -ENOMEM;
        }
        return 0;
}

/* The process object for exec: --process or the container's, with the
 * command line's overrides (runc's rules: args replace, env entries
 * replace the same name or are added, caps go to every set, additional
 * gids are added). */
static int build_process(json_t *saved_process, const struct moat_exec_options *opts, json_t **ret,
                         struct moat_error **reterr)
{
        json_t *proc = NULL;
        int r;

        if (opts->process_file) {
                _cleanup_free_ char *text = NULL;
                size_t len;
                json_error_t jerr;
                r = read_full_file_at(AT_FDCWD, opts->process_file, EXEC_PROCESS_MAX, &text, &len);
                if (r == -EFBIG)
                        return moat_error_setx(reterr, r, "--process '%s': larger than %u bytes", opts->process_file,
                                               EXEC_PROCESS_MAX);
                if (r < 0)
                        return moat_error_set(reterr, r, "--process '%s'", opts->process_file);
                proc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
                if (!proc)
                        return moat_error_setx(reterr, -EINVAL, "--process '%s': line %d: %s", opts->process_file,
                                               jerr.line, jerr.text);
                if (!json_is_object(proc)) {
                        json_decref(proc);
                        return moat_error_setx(reterr, -EINVAL, "--process '%s': not a JSON object",
                                               opts->process_file);
                }
        } else {
                if (!json_is_object(saved_process))
                        return moat_error_setx(reterr, -EINVAL,
                                               "the container's saved configuration has no process to start from");
                proc = json_deep_copy(saved_process);
                if (!proc)
                        return -ENOMEM;
                json_t *args = json_array();
                r = json_set_or_fail(proc, "args", args);
                for (char **a = opts->args; r >= 0 && a && *a; a++)
                        if (json_array_append_new(args, json_string(*a)) < 0)
                                r = -ENOMEM;
                /* runc: a terminal only when --tty asks for one. */
                if (r >= 0)
                        r = json_set_or_fail(proc, "terminal", json_boolean(opts->tty));
                if (r < 0)
                        goto fail;
        }

        r = 0;
        if (opts->tty)
                r = json_set_or_fail(proc, "terminal", json_true());
        if (r >= 0 && opts->cwd)
                r = json_set_or_fail(proc, "cwd", json_string(opts->cwd));
        if (r >= 0 && opts->env && opts->env[0])
                r = env_merge(proc, opts->env, reterr);
        if (r >= 0 && (opts->user || opts->n_additional_gids > 0))
                r = user_override(proc, opts, reterr);
        if (r >= 0 && opts->caps && opts->caps[0])
                r = caps_add(proc, opts->caps);
        if (r >= 0 && opts->no_new_privs)
                r = json_set_or_fail(proc, "noNewPrivileges", json_true());
        if (r >= 0 && opts->apparmor)
                r = json_set_or_fail(proc, "apparmorProfile", json_string(opts->apparmor));
        if (r >= 0 && opts->process_label)
                r = json_set_or_fail(proc, "selinuxLabel", json_string(opts->process_label));
        if (r < 0)
                goto fail;
        *ret = proc;
        return 0;
fail:
        json_decref(proc);
        return r == -ENOMEM ? moat_error_set(reterr, r, "building the process of exec") : r;
}

/* The container's configuration as created, with "process" replaced by the
 * exec's, parsed and validated as one document. */
static int load_exec_config(int dir_fd, const struct moat_exec_options *opts, struct oci_config **ret,
                            struct moat_error **reterr)
{
        _cleanup_free_ char *text = NULL, *merged = NULL;
        json_error_t jerr;
        size_t len;
        json_t *doc, *proc = NULL;
        int r;

        r = read_full_file_at(dir_fd, MOAT_STATE_CONFIG, OCI_CONFIG_MAX_SIZE, &text, &len);
        if (r < 0)
                return moat_error_set(reterr, r, "reading the container's saved configuration");
        doc = json_loadb(text, len, 0, &jerr);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return moat_error_setx(reterr, -EINVAL, "the container's saved configuration is not a JSON object");
        }
        r = build_process(json_object_get(doc, "process"), opts, &proc, reterr);
        if (r >= 0 && json_object_set_new(doc, "process", proc) < 0)
                r = moat_error_set(reterr, -ENOMEM, "building the process of exec");
        if (r >= 0) {
                merged = json_dumps(doc, JSON_COMPACT);
                if (!merged)
                        r = moat_error_set(reterr, -ENOMEM, "building the process of exec");
        }
        json_decref(doc);
        if (r < 0)
                return r;
        r = oci_config_parse(merged, strlen(merged), ret, reterr);
        if (r < 0) {
                if (opts->process_file)
                        return moat_error_wrap(reterr, r, "--process '%s'", opts->process_file);
                return moat_error_wrap(reterr, r, "exec");
        }
        return 0;
}

/* ---- namespaces --------------------------------------------------------- */

static const struct {
        const char *name;
        unsigned long flag;
} ns_table[] = {
        { "user", CLONE_NEWUSER }, { "mnt", CLONE_NEWNS },      { "pid", CLONE_NEWPID },
        { "net", CLONE_NEWNET },   { "ipc", CLONE_NEWIPC },     { "uts", CLONE_NEWUTS },
        { "cgroup", CLONE_NEWCGROUP }, { "time", CLONE_NEWTIME },
};

/* Every namespace the init is in and we are not (joining one's own user
 * namespace is an error, joining the others is pointless). */
static int namespaces_to_join(pid_t init, unsigned long *ret, struct moat_error **reterr)
{
        unsigned long flags = 0;

        for (size_t i = 0; i < ELEMENTSOF(ns_table); i++) {
                char path[64];
                struct stat theirs, ours;
                snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int) init, ns_table[i].name);
                if (stat(path, &theirs) < 0) {
                        if (errno == ENOENT && ns_table[i].flag == CLONE_NEWTIME)
                                continue; /* a kernel without time namespaces */
                        return moat_error_set(reterr, errno, "reading the %s namespace of the container's init",
                                              ns_table[i].name);
                }
                snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_table[i].name);
                if (stat(path, &ours) < 0)
                        return moat_error_set(reterr, errno, "reading %s", path);
                if (theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino)
                        flags |= ns_table[i].flag;
        }
        *ret = flags;
        return 0;
}

/* ---- the new process ---------------------------------------------------- */

struct exec_child {
        const struct oci_config *config; /* the container's, with the exec's process */
        const struct moat_seccomp *seccomp;
        const char *state_json;
        const char *console_socket;
        bool relay_terminal;
        int pidfd;
        pid_t init_pid;
        unsigned long ns_flags; /* without CLONE_NEWPID: the fork did that */
        unsigned preserve_fds;
        sigset_t saved_mask;
        /* The container's cgroup, joined by the child itself first thing
         * (moat_cgroup_join_self); NULL: the parent moves it. */
        struct moat_cgroup *cgroup;
        struct moat_cgroup_join *cgroup_join;
};

static MOAT_NORETURN void child_fail(int sync_fd, int r, struct moat_error *err)
{
        const char *msg = err && err->msg ? err->msg : strerror(r < 0 ? -r : r);
        if (msg_send(sync_fd, EXEC_MSG_ERROR, r, msg, -EBADF) < 0)
                dprintf(STDERR_FILENO, "moat-runtime: exec: %s\n", msg);
        _exit(1);
}

#define CHILD_FAIL_ERRNO(sync_fd, err, ...)                                  \
        do {                                                                \
                int _e = errno;                                             \
                child_fail(sync_fd, -_e, (moat_error_set(&(err), _e, __VA_ARGS__), (err))); \
        } while (0)

/* After setns(CLONE_NEWNS) we stand at the namespace's root. That is the
 * container's root after pivot_root; with --no-pivot the init chrooted
 * further, so follow its root when the two differ. */
static int enter_init_root(int init_root_fd, struct moat_error **reterr)
{
        struct stat ns_root, init_root;

        if (stat("/", &ns_root) < 0 || fstat(init_root_fd, &init_root) < 0)
                return moat_error_set(reterr, errno, "comparing the root with the container init's");
        if (ns_root.st_dev == init_root.st_dev && ns_root.st_ino == init_root.st_ino)
                return 0;
        if (fchdir(init_root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0)
                return moat_error_set(reterr, errno, "entering the container init's root");
        return 0;
}

static int setup_terminal(const struct exec_child *x, int console_fd, int sync_fd, struct moat_error **reterr)
{
        const struct oci_process *p = &x->config->process;
        _cleanup_close_ int master = -EBADF, slave = -EBADF;
        _cleanup_free_ char *slave_path = NULL;
        int r;

        r = moat_terminal_open_pty(&master, &slave, &slave_path, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "process.terminal");
        if (p->has_console_size) {
                r = moat_terminal_set_size(slave, p->console_height, p->console_width, reterr);
                if (r < 0)
                        return r;
        }
        if (console_fd >= 0) {
                r = moat_terminal_send_fd_on(console_fd, master, slave_path, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "--console-socket '%s'", x->console_socket);
        } else {
                r = msg_send(sync_fd, EXEC_MSG_PTY, 0, NULL, master);
                if (r < 0)
                        return moat_error_set(reterr, r, "handing the pty to the runtime");
        }
        return moat_terminal_setup_slave(TAKE_FD(slave), reterr);
}

static MOAT_NORETURN void exec_child_main(const struct exec_child *x, int sync_fd)
{
        const struct oci_process *p = &x->config->process;
        struct moat_error *err = NULL;
        struct exec_msg_header h;
        int proc_fd, root_fd, console_fd = -EBADF, passed;
        int min_fd = 3 + (int) x->preserve_fds;
        int r;

        /* Nothing in the container may ptrace this process or open its
         * /proc files while it holds host descriptors; execve restores
         * the dumpable flag for the program. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

        if (x->cgroup) {
                r = moat_cgroup_join_self(x->cgroup, x->cgroup_join, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }

        r = msg_recv(sync_fd, &h, NULL, &passed);
        safe_close(passed);
        if (r < 0 || h.type != EXEC_MSG_GO)
                _exit(1);

        proc_fd = fd_move_above(open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC), min_fd);
        if (proc_fd < 0)
                CHILD_FAIL_ERRNO(sync_fd, err, "opening /proc");
        /* While our /proc files are still the host's and owned by us (not
         * dumpable, they would belong to the host's root inside a user
         * namespace). */
        r = moat_process_apply_oom_score_adj_at(p, proc_fd, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);
        char root_path[64];
        snprintf(root_path, sizeof(root_path), "/proc/%d/root", (int) x->init_pid);
        root_fd = fd_move_above(open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC), min_fd);
        if (root_fd < 0)
                CHILD_FAIL_ERRNO(sync_fd, err, "opening the container init's root %s", root_path);
        if (x->config->process.terminal && !x->relay_terminal) {
                console_fd = fd_move_above(moat_terminal_connect(x->console_socket, &err), min_fd);
                if (console_fd < 0)
                        child_fail(sync_fd, console_fd, err);
        }

        if (x->ns_flags && setns(x->pidfd, (int) x->ns_flags) < 0)
                CHILD_FAIL_ERRNO(sync_fd, err, "joining the namespaces of the container's init (pid %d)",
                                 (int) x->init_pid);
        if (x->ns_flags & CLONE_NEWNS) {
                r = enter_init_root(root_fd, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }
        root_fd = safe_close(root_fd);

        /* A fresh anonymous session keyring, as for the init. */
        (void) syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL, 0, 0, 0);

        if (p->terminal) {
                r = setup_terminal(x, console_fd, sync_fd, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }
        console_fd = safe_close(console_fd);

        r = moat_process_apply_rlimits(p, &err);
        if (r >= 0)
                r = moat_process_apply_personality(x->config, &err);
        if (r >= 0)
                r = moat_lsm_apply_exec_label(x->config, p, proc_fd, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        /* Same order as the init: without no_new_privs the filter goes in
         * while CAP_SYS_ADMIN is still held, with it last. */
        if (x->seccomp && !p->no_new_privileges) {
                r = moat_seccomp_install(x->seccomp, x->state_json, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }
        unsigned securebits = 0;
        r = moat_process_securebits(x->config, &securebits, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);
        r = moat_process_apply_credentials_ex(p, securebits, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        /* Resolved inside the root, checked to stay there (runc does not
         * create a missing cwd for exec, neither do we). */
        r = moat_process_chdir(p, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        _cleanup_free_ char *exe = NULL;
        r = moat_process_find_executable(p, &exe, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        /* Stdio and --preserve-fds stay open across exec; every other
         * descriptor is closed by it. */
        for (int fd = 3; fd < min_fd; fd++) {
                int flags = fcntl(fd, F_GETFD);
                if (flags >= 0 && (flags & FD_CLOEXEC))
                        (void) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
        }
        if (syscall(SYS_close_range, (unsigned) min_fd, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                CHILD_FAIL_ERRNO(sync_fd, err, "close_range");

        if (x->seccomp && p->no_new_privileges) {
                r = moat_seccomp_install(x->seccomp, x->state_json, &err);
                if (r < 0)
                        child_fail(sync_fd, r, err);
        }
        r = moat_landlock_apply(x->config, &err);
        if (r < 0)
                child_fail(sync_fd, r, err);

        sigprocmask(SIG_SETMASK, &x->saved_mask, NULL);
        execve(exe, p->args, p->env ? p->env : (char *[]){ NULL });
        CHILD_FAIL_ERRNO(sync_fd, err, "exec \"%s\"", exe);
}

/* ---- the runtime's side ------------------------------------------------- */

static void kill_and_reap(pid_t pid)
{
        (void) kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

static int check_options(const struct moat_exec_options *opts, struct moat_error **reterr)
{
        int r = moat_id_validate(opts->id, reterr);
        if (r < 0)
                return r;
        bool have_args = opts->args && opts->args[0];
        if (opts->process_file && have_args)
                return moat_error_setx(reterr, -EINVAL, "exec: give either --process or a command, not both");
        if (!opts->process_file && !have_args)
                return moat_error_setx(reterr, -EINVAL, "exec: a command (or --process) is required");
        if (opts->preserve_fds > 65536)
                return moat_error_setx(reterr, -EINVAL, "--preserve-fds %u: at most 65536", opts->preserve_fds);
        if (opts->n_additional_gids > NGROUPS_MAX)
                return moat_error_setx(reterr, -EINVAL, "--additional-gids: at most %d groups", NGROUPS_MAX);
        return 0;
}

int moat_container_exec(const struct moat_runtime *rt, const struct moat_exec_options *opts, int *ret_exit_status,
                        struct moat_error **reterr)
{
        _cleanup_close_ int root_fd = -EBADF, dir_fd = -EBADF, pidfd = -EBADF, sync_fd = -EBADF,
                            pty_master = -EBADF, saved_pidns = -EBADF, cgroup_v2_fd = -EBADF;
        _cleanup_state_ struct moat_state *s = NULL;
        _cleanup_oci_config_ struct oci_config *config = NULL;
        _cleanup_seccomp_ struct moat_seccomp *seccomp = NULL;
        _cleanup_cgroup_ struct moat_cgroup *cg = NULL;
        _cleanup_free_ char *state_json = NULL;
        sigset_t forwarded, saved_mask;
        unsigned long ns_flags = 0;
        bool entered_userns = false;
        int min_fd = 3 + (int) opts->preserve_fds;
        int r;

        r = check_options(opts, reterr);
        if (r < 0)
                return r;

        r = moat_state_root_open(rt, false, &root_fd, NULL);
        if (r == -ENOENT)
                return moat_error_setx(reterr, -ENOENT, "container \"%s\" does not exist", opts->id);
        if (r < 0)
                return moat_error_set(reterr, r, "opening the state root");
        root_fd = fd_move_above(root_fd, min_fd);
        if (root_fd < 0)
                return moat_error_set(reterr, root_fd, "opening the state root");
        r = moat_state_load(root_fd, opts->id, &s, &dir_fd, reterr);
        if (r < 0)
                return r;
        dir_fd = fd_move_above(dir_fd, min_fd);
        if (dir_fd < 0)
                return moat_error_set(reterr, dir_fd, "opening the state directory");

        enum moat_status st = moat_state_status(s, dir_fd);
        if (st == MOAT_STATUS_STOPPED)
                return moat_error_setx(reterr, -ESRCH, "cannot exec in container \"%s\": container not running",
                                       opts->id);
        if (st == MOAT_STATUS_PAUSED && !opts->ignore_paused)
                return moat_error_setx(reterr, -EBUSY,
                                       "cannot exec in container \"%s\": container is paused (resume it, or "
                                       "use --ignore-paused)",
                                       opts->id);

        r = load_exec_config(dir_fd, opts, &config, reterr);
        if (r < 0)
                return r;
        const struct oci_process *p = &config->process;
        bool relay_terminal = p->terminal && !opts->console_socket;
        if (relay_terminal && opts->detach)
                return moat_error_setx(reterr, -EINVAL,
                                       "exec: a terminal needs --console-socket when the process is detached");
        if (!p->terminal && opts->console_socket)
                return moat_error_setx(reterr, -EINVAL,
                                       "exec: --console-socket given but no terminal asked for (--tty or "
                                       "process.terminal)");

        r = moat_seccomp_prepare(config, rt->root ? rt->root : MOAT_RUNTIME_DEFAULT_ROOT, rt->warn, &seccomp, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "exec");
        /* Capabilities this kernel does not know are skipped, as runc and
         * crun do; the user hears about it. */
        if (rt->warn) {
                _cleanup_free_ char *unknown_caps = NULL;
                if (moat_process_check_capabilities(p, &unknown_caps) < 0)
                        return moat_error_set(reterr, -ENOMEM, "process.capabilities");
                if (unknown_caps)
                        rt->warn(unknown_caps);
        }

        if (!strempty(s->cgroup)) {
                r = moat_cgroup_deserialize(s->cgroup, &cg, reterr);
                if (r < 0)
                        return r;
        }
        r = moat_state_to_oci_json(s, st, &state_json);
        if (r < 0)
                return moat_error_set(reterr, r, "encoding the container's state");

        r = moat_state_pidfd(s, &pidfd);
        if (r >= 0)
                pidfd = fd_move_above(pidfd, min_fd);
        if (r < 0 || pidfd < 0)
                return moat_error_setx(reterr, -ESRCH, "cannot exec in container \"%s\": container not running",
                                       opts->id);
        /* Joining a pid namespace needs CAP_SYS_ADMIN in the user
         * namespace that owns it and in our own: an unprivileged runtime
         * has both only once it is inside the container's user namespace
         * (as its owner it may enter). It enters for good: this process
         * only serves this exec, and it is not in the container's pid
         * namespace, so nothing there can address it. */
        if (geteuid() != 0) {
                r = namespaces_to_join(s->pid, &ns_flags, reterr);
                if (r < 0)
                        return r;
                if ((ns_flags & CLONE_NEWUSER) && setns(pidfd, CLONE_NEWUSER) < 0)
                        return moat_error_set(reterr, errno, "joining the user namespace of container \"%s\"",
                                              opts->id);
                entered_userns = (ns_flags & CLONE_NEWUSER) != 0;
        }
        r = namespaces_to_join(s->pid, &ns_flags, reterr);
        if (r < 0)
                return r;

        int pair[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return moat_error_set(reterr, errno, "socketpair");
        sync_fd = fd_move_above(pair[0], min_fd);
        int child_fd = fd_move_above(pair[1], min_fd);
        if (sync_fd < 0 || child_fd < 0) {
                safe_close(child_fd);
                return moat_error_set(reterr, sync_fd < 0 ? sync_fd : child_fd, "socketpair");
        }

        struct exec_child x = {
                .config = config,
                .seccomp = seccomp,
                .state_json = state_json,
                .console_socket = opts->console_socket,
                .relay_terminal = relay_terminal,
                .pidfd = pidfd,
                .init_pid = s->pid,
                .ns_flags = ns_flags & ~(unsigned long) CLONE_NEWPID,
                .preserve_fds = opts->preserve_fds,
        };

        /* Signals meant for the process are held from before the fork, so
         * none is lost before the wait loop; the child restores the mask
         * right before execve. */
        moat_foreground_signals(&forwarded);
        sigprocmask(SIG_SETMASK, NULL, &saved_mask);
        x.saved_mask = saved_mask;
        if (!opts->detach)
                sigprocmask(SIG_BLOCK, &forwarded, NULL);

        /* Only children are born into a joined pid namespace. */
        /* From inside the container's user namespace there is no way
         * back to ours, and none is needed: nothing else is forked. */
        if ((ns_flags & CLONE_NEWPID) && !entered_userns) {
                saved_pidns = fd_move_above(open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC), min_fd);
                if (saved_pidns < 0) {
                        r = moat_error_set(reterr, saved_pidns, "opening /proc/self/ns/pid");
                        goto fail_unmask;
                }
        }
        if (ns_flags & CLONE_NEWPID) {
                if (setns(pidfd, CLONE_NEWPID) < 0) {
                        r = moat_error_set(reterr, errno, "joining the pid namespace of container \"%s\"", opts->id);
                        goto fail_unmask;
                }
        }
        /* The child joins the cgroup without the parent's cgroup.procs
         * writes, whose first after a quiet spell waits out an RCU grace
         * period (see moat_cgroup_join_self): cloned into the cgroup2
         * directory, writing the v1 "tasks" files the parent opened (a
         * joined user namespace could not open them). */
        struct moat_cgroup_join cgroup_join = { .n = 0 };
        bool child_joins = false, cloned_into_cgroup = false;
        if (cg && moat_cgroup_join_open(cg, &cgroup_join, NULL) >= 0) {
                child_joins = true;
                for (size_t k = 0; k < cgroup_join.n && child_joins; k++) {
                        cgroup_join.fd[k] = fd_move_above(cgroup_join.fd[k], min_fd);
                        child_joins = cgroup_join.fd[k] >= 0;
                }
                if (!child_joins) {
                        for (size_t k = 0; k < cgroup_join.n; k++)
                                if (cgroup_join.fd[k] >= 0)
                                        safe_close(cgroup_join.fd[k]);
                        cgroup_join.n = 0;
                }
                if (child_joins && moat_cgroup_open_v2(cg, &cgroup_v2_fd, NULL) >= 0)
                        cgroup_v2_fd = fd_move_above(cgroup_v2_fd, min_fd);
                x.cgroup = child_joins ? cg : NULL;
                x.cgroup_join = &cgroup_join;
        }
        pid_t pid = -1;
        if (cgroup_v2_fd >= 0) {
                struct clone_args ca = {
                        .flags = CLONE_INTO_CGROUP,
                        .exit_signal = SIGCHLD,
                        .cgroup = (uint64_t) cgroup_v2_fd,
                };
                pid = (pid_t) syscall(SYS_clone3, &ca, sizeof(ca));
                cloned_into_cgroup = pid >= 0;
        }
        if (!cloned_into_cgroup)
                pid = fork();
        if (pid == 0) {
                sync_fd = safe_close(sync_fd);
                cgroup_v2_fd = safe_close(cgroup_v2_fd);
                exec_child_main(&x, child_fd);
        }
        int fork_errno = errno;
        moat_cgroup_join_close(&cgroup_join);
        safe_close(child_fd);
        if (saved_pidns >= 0 && setns(saved_pidns, CLONE_NEWPID) < 0) {
                r = moat_error_set(reterr, errno, "returning to the runtime's pid namespace");
                if (pid > 0)
                        kill_and_reap(pid);
                goto fail_unmask;
        }
        if (pid < 0) {
                r = moat_error_set(reterr, fork_errno, "fork");
                goto fail_unmask;
        }

        if (cg && !(child_joins && (!moat_cgroup_has_v2(cg) || cloned_into_cgroup))) {
                r = moat_cgroup_enter(cg, pid, child_joins, reterr);
                if (r < 0)
                        goto fail_kill;
        }
        r = msg_send(sync_fd, EXEC_MSG_GO, 0, NULL, -EBADF);
        if (r < 0) {
                r = moat_error_set(reterr, r, "starting the exec'd process");
                goto fail_kill;
        }
        for (;;) {
                struct exec_msg_header h;
                _cleanup_free_ char *payload = NULL;
                int passed;
                r = msg_recv(sync_fd, &h, &payload, &passed);
                if (r < 0) {
                        r = moat_error_set(reterr, r, "reading from the exec'd process");
                        goto fail_kill;
                }
                if (h.type == 0)
                        break; /* execve closed the child's end */
                if (h.type == EXEC_MSG_PTY && passed >= 0 && relay_terminal && pty_master < 0) {
                        pty_master = passed;
                        continue;
                }
                safe_close(passed);
                if (h.type == EXEC_MSG_ERROR) {
                        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                                ;
                        r = moat_error_setx(reterr, h.errnum < 0 ? h.errnum : -EIO, "%s", payload);
                        goto fail_unmask;
                }
                r = moat_error_setx(reterr, -EBADMSG, "unexpected message %u from the exec'd process", h.type);
                goto fail_kill;
        }
        sync_fd = safe_close(sync_fd);

        if (opts->pid_file) {
                r = moat_write_pid_file(opts->pid_file, pid, reterr);
                if (r < 0)
                        goto fail_kill;
        }
        if (opts->ret_pid)
                *opts->ret_pid = pid;
        if (opts->detach)
                return 0;

        int status = 255;
        r = moat_foreground_wait(pid, pty_master, &forwarded, &status, reterr);
        sigprocmask(SIG_SETMASK, &saved_mask, NULL);
        if (r < 0) {
                kill_and_reap(pid);
                return r;
        }
        if (ret_exit_status)
                *ret_exit_status = status;
        return 0;

fail_kill:
        kill_and_reap(pid);
fail_unmask:
        sigprocmask(SIG_SETMASK, &saved_mask, NULL);
        return r;
}
