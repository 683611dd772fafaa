/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Birth of a container init (internal to the runtime library): one clone()
 * with the namespaces to create, the parent's half of the set-up (id maps,
 * cgroup placement, createRuntime/prestart hooks) and the init's half
 * (joining namespaces, the filesystem, credentials, the terminal), talking
 * over a SOCK_SEQPACKET pair. The call returns once the init reports
 * READY, i.e. it only waits for start (exec.fifo or a START message) and
 * then execs the program.
 */

#include "base/compat.h"
#include "base/error.h"
#include "oci/runtime-spec.h"
#include "runtime/cgroup.h"
#include "runtime/seccomp.h"

struct moat_spawn {
        const struct oci_config *config;
        const char *id;
        const char *bundle;          /* absolute */
        const char *rootfs;          /* absolute */
        int fifo_fd;                 /* O_PATH fd of exec.fifo; -EBADF: wait for START on the sync socket */
        int console_fd;              /* connected --console-socket (by the parent, outside any user
                                      * namespace), or -EBADF */
        bool relay_terminal;         /* send the pty master back to the parent */
        bool no_pivot;
        bool no_new_keyring;
        unsigned preserve_fds;
        unsigned listen_fds;         /* LISTEN_FDS of the caller, passed through */
        struct moat_cgroup *cgroup;
        const struct moat_seccomp *seccomp; /* NULL: no filter */
        /* The runtime's own directory fds (state root, state dir, bundle):
         * the init closes them first thing, so no path inside the
         * container can ever reach them (CVE-2024-21626). -EBADF: unused. */
        int runtime_fds[3];
        /* A fresh network namespace to enter instead of cloning one
         * (moat_create_options.fresh_netns_fd), or -EBADF. */
        int fresh_netns_fd;
        /* Called in the parent right after the clone, before the init is
         * moved into sp->cgroup (NULL: nothing to do): makes the cgroup's
         * directories when the caller only planned them. An init that
         * does not wait for the go first waits for this before its
         * mounts (its "cgroup" mounts bind those directories). */
        int (*after_clone)(void *userdata, struct moat_error **reterr);
        /* Called after the init was told the directories exist, before it
         * is moved in (NULL: nothing): the state that records the cgroup
         * and its limits, done while the init mounts its root. */
        int (*after_cgroup_made)(void *userdata, struct moat_error **reterr);
        /* moat_create_options.while_init_prepares, after the go; NULL: none. */
        int (*while_init_prepares)(void *userdata, struct moat_error **reterr);
        void *while_init_prepares_userdata;
        /* Run prestart + createRuntime hooks with the init's pid known;
         * called from the parent while the init waits before pivot_root. */
        int (*runtime_hooks)(void *userdata, pid_t pid, struct moat_error **reterr);
        void *userdata;
        /* The state JSON passed to hooks ("creating"), built by the parent
         * once the pid is known. */
        int (*state_json)(void *userdata, pid_t pid, const char *status, char **ret);
};

struct moat_spawn_result {
        pid_t pid;
        int sync_fd;      /* parent's end; send START or close it */
        int pty_master;   /* relay_terminal: the pty master, else -EBADF */
};

/* On failure the init is killed and reaped; the caller removes the cgroup
 * and the state directory. */
MOAT_NODISCARD int moat_linux_spawn(const struct moat_spawn *sp, struct moat_spawn_result *ret,
                                    struct moat_error **reterr);

/* Tell an init spawned without a fifo to go ahead. */
MOAT_NODISCARD int moat_linux_send_start(int sync_fd, struct moat_error **reterr);

/* Wait until the init (or the process behind a start fifo) has exec'd:
 * the read side sees EOF when execve closes the init's end (sync socket or
 * exec.fifo). */
MOAT_NODISCARD int moat_linux_wait_exec(int fd);

/*
 * Rootless mode (the --rootless global option, process-wide like the log
 * level): AUTO is rootless when the effective uid is not 0 or the process
 * runs in a user namespace other than the initial one (/proc/self/uid_map
 * is not the identity map of all ids). A rootless create requires a user
 * namespace in the config, maps ids other than the caller's own through
 * newuidmap/newgidmap, and runs without a cgroup when none can be created
 * (unless linux.resources asks for limits).
 */
enum moat_rootless_mode {
        MOAT_ROOTLESS_AUTO,
        MOAT_ROOTLESS_TRUE,
        MOAT_ROOTLESS_FALSE,
};
void moat_rootless_set(enum moat_rootless_mode mode);
bool moat_rootless(void);
bool moat_in_nested_userns(void);
