/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * libmoat-runtime: the OCI runtime as a library. moat-runtime (the
 * runc-compatible CLI) is a thin layer over these calls, one per verb.
 *
 * State lives in <root>/<id>/: state.json (what `state` reports plus what
 * delete needs), config.json (the configuration the container was created
 * with, for poststop hooks) and, between create and start, exec.fifo, on
 * which the created init blocks (managers rely on that name).
 *
 * Not thread-safe: the runtime is single-threaded around clone().
 */

#include "base/compat.h"
#include "base/error.h"

#include <jansson.h>

#define MOAT_RUNTIME_DEFAULT_ROOT "/run/moat-runtime"
#define MOAT_OCI_VERSION "1.3.0"

/* Bound on container ids (runc accepts [\w+-\.]+, we add a length cap). */
#define MOAT_ID_MAX 1024

struct moat_runtime {
        const char *root;        /* state root; MOAT_RUNTIME_DEFAULT_ROOT when NULL */
        bool systemd_cgroup;     /* --systemd-cgroup: refused until supported */
        /* Where the library reports what must not fail the operation
         * (a failed poststart or poststop hook, as the spec says); may be
         * NULL. The library itself never prints. */
        void (*warn)(const char *msg);
        /* The first fd >= 3 that was not open when the process started (0:
         * unknown). Fds handed to a container (LISTEN_FDS, --preserve-fds)
         * must lie below it. */
        int inherited_fds_end;
        /* The command line, for re-executing from a protected copy of the
         * binary (moat_protect_self_exe) when a container could reach it. */
        int argc;
        char **argv;
};

enum moat_create_mode {
        MOAT_CREATE_ONLY,        /* `create`: init waits on exec.fifo */
        MOAT_CREATE_RUN_DETACHED,/* `run -d`: start right away, return */
        MOAT_CREATE_RUN_FOREGROUND, /* `run`: start, wait, forward signals, delete */
};

struct moat_create_options {
        const char *id;
        const char *bundle;          /* NULL: current directory */
        const char *pid_file;        /* optional */
        const char *console_socket;  /* optional */
        bool no_pivot;
        bool no_new_keyring;
        bool keep;                   /* run: keep the container after it exits */
        unsigned preserve_fds;
        enum moat_create_mode mode;
        pid_t *ret_pid;              /* optional: where the init's pid goes (a child of the caller) */
        bool *ret_poststart_hooks;   /* optional: whether the config has poststart hooks */
        /* optional, MOAT_CREATE_ONLY: what the create allocated (the parsed
         * config, its resources, the seccomp program, ...) is handed over
         * instead of freed, for moat_create_leftovers_free() once the init
         * has exec'd. The init is a fork: until then every page a free
         * writes to is copied. */
        struct moat_create_leftovers **ret_leftovers;
        /* optional: a network namespace made for this container and used
         * by nothing (the monitor's spare makes one ahead of its request),
         * which the init enters instead of creating one when the config
         * asks for a new network namespace and no user namespace. Still
         * the caller's to close. */
        const int *fresh_netns_fd;
        /* optional: called once the init has been cloned and let go, while
         * it sets up its root and before it is ready: work of the caller's
         * that must be done before the create returns but needs nothing of
         * it can run meanwhile (on another CPU). A failure fails the create. */
        int (*while_init_prepares)(void *userdata, struct moat_error **reterr);
        void *while_init_prepares_userdata;
};

struct moat_create_leftovers;
void moat_create_leftovers_free(struct moat_create_leftovers *l);

/*
 * Create (and, by mode, start and wait for) a container. For
 * MOAT_CREATE_RUN_FOREGROUND *ret_exit_status is what `run` must exit with:
 * the container's exit code, or 128+signal.
 */
MOAT_NODISCARD int moat_container_create(const struct moat_runtime *rt, const struct moat_create_options *opts,
                                         int *ret_exit_status, struct moat_error **reterr);

MOAT_NODISCARD int moat_container_start(const struct moat_runtime *rt, const char *id, struct moat_error **reterr);

/* The OCI state JSON of a container (newly allocated, one line). */
MOAT_NODISCARD int moat_container_state(const struct moat_runtime *rt, const char *id, char **ret_json,
                                        struct moat_error **reterr);

MOAT_NODISCARD int moat_container_kill(const struct moat_runtime *rt, const char *id, int sig, bool all,
                                       struct moat_error **reterr);

MOAT_NODISCARD int moat_container_delete(const struct moat_runtime *rt, const char *id, bool force,
                                         struct moat_error **reterr);

struct moat_container_info {
        char *id;
        pid_t pid;
        char *status;
        char *bundle;
        char *created;
        char *owner;
};

MOAT_NODISCARD int moat_container_list(const struct moat_runtime *rt, struct moat_container_info **ret, size_t *ret_n,
                                       struct moat_error **reterr);
void moat_container_info_free(struct moat_container_info *v, size_t n);

/* ---- exec and ps --------------------------------------------------------- */

struct moat_exec_options {
        const char *id;
        const char *process_file;   /* --process: a JSON process object; else args */
        char **args;                /* NULL-terminated; used without --process */
        bool tty;                   /* --tty */
        const char *console_socket;
        bool detach;
        const char *pid_file;
        const char *cwd;            /* overrides */
        char **env;                 /* added to (and overriding) the container's env */
        const char *user;           /* "uid[:gid]" */
        uint32_t *additional_gids;
        size_t n_additional_gids;
        char **caps;                /* added to every capability set */
        bool no_new_privs;
        const char *apparmor;
        const char *process_label;
        unsigned preserve_fds;
        bool ignore_paused;
        /* Optional: where the new process's pid goes. With detach the
         * process stays a child of the caller, which may reap it (a
         * monitor learns its exit status that way). */
        pid_t *ret_pid;
};

/* Run a new process in a running container; in the foreground (not
 * detach) wait for it and set *ret_exit_status like `run`. */
MOAT_NODISCARD int moat_container_exec(const struct moat_runtime *rt, const struct moat_exec_options *opts,
                                       int *ret_exit_status, struct moat_error **reterr);

/* The pids (host view) of every process of the container. */
MOAT_NODISCARD int moat_container_pids(const struct moat_runtime *rt, const char *id, pid_t **ret, size_t *ret_n,
                                       struct moat_error **reterr);
/* The host's `ps` run with args (NULL-terminated; NULL or empty: "-ef")
 * and filtered to pids: *ret_lines (NULL-terminated) is the header, then
 * the lines whose PID column is one of pids (and the thread lines, PID
 * "-", after them). */
MOAT_NODISCARD int moat_ps_table(char *const *args, const pid_t *pids, size_t n_pids, char ***ret_lines,
                                 struct moat_error **reterr);

/* ---- cgroup verbs --------------------------------------------------------- */

/* Change the limits of a live container; resources is a LinuxResources
 * object (what containerd sends on stdin with --resources=-). */
MOAT_NODISCARD int moat_container_update(const struct moat_runtime *rt, const char *id, const json_t *resources,
                                         struct moat_error **reterr);

MOAT_NODISCARD int moat_container_pause(const struct moat_runtime *rt, const char *id, struct moat_error **reterr);
MOAT_NODISCARD int moat_container_resume(const struct moat_runtime *rt, const char *id, struct moat_error **reterr);

/* One event line as runc prints it: {"type":"stats","id":...,"data":{...}}. */
MOAT_NODISCARD int moat_container_stats(const struct moat_runtime *rt, const char *id, char **ret_json,
                                        struct moat_error **reterr);

/* How many times the kernel's OOM killer killed in the container's cgroup
 * (created, running or stopped; also after its init was reaped). -ENOENT
 * when it has no cgroup with the memory controller. */
MOAT_NODISCARD int moat_container_oom_kills(const struct moat_runtime *rt, const char *id, uint64_t *ret,
                                            struct moat_error **reterr);

/* Stream events (oom, and stats every interval_ms) to emit() until the
 * container stops; returns 0 then. */
MOAT_NODISCARD int moat_container_events(const struct moat_runtime *rt, const char *id, unsigned interval_ms,
                                         void (*emit)(const char *json_line, void *userdata), void *userdata,
                                         struct moat_error **reterr);

/* Parse a signal given as a name ("TERM", "SIGTERM", "sigkill") or a number. */
MOAT_NODISCARD int moat_signal_parse(const char *s, int *ret);

/* The default config.json of `spec` (rootless variant when asked). */
MOAT_NODISCARD int moat_spec_default(bool rootless, char **ret_json, struct moat_error **reterr);

/* The config.json of `spec --hardened`: the default spec with moat's
 * default security (11 capabilities, the default seccomp profile,
 * noNewPrivileges, masked/readonly paths, a private cgroup namespace, a
 * pids limit, ping for every group, no terminal). */
MOAT_NODISCARD int moat_spec_hardened(char **ret_json, struct moat_error **reterr);

/* Brings up "lo" in the caller's network namespace (the init does it in one
 * it created); -errno. */
MOAT_NODISCARD int moat_loopback_up(void);

/* The runtime-spec features document (features-schema.json). */
MOAT_NODISCARD int moat_features_json(char **ret_json, struct moat_error **reterr);

/* Validate a container id: non-empty, bounded, [A-Za-z0-9_+.-], not "." or "..". */
MOAT_NODISCARD int moat_id_validate(const char *id, struct moat_error **reterr);
