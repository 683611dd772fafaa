/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The monitor's loop (loop.c), entered by moat-monitor (main.c) once the
 * container or the exec'd process exists. It takes ownership of every fd
 * given here and returns only when the process has exited and its output
 * is drained (the exit code of moat-monitor).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct moat_logfile;

/* The runtime's work the loop needs ("start": the runtime's start of a
 * --wait-start container; "cleanup", for `moat-monitor cleanup`: the OOM
 * count and the forced delete after the init exited). Called in a forked child of the monitor with
 * stdout on a pipe: writes one JSON line and returns the exit status. */
typedef int (*moat_monitor_helper_fn)(const char *verb, const char *id, const char *runtime_root);

/* The cleanup itself, called in the monitor once the init has exited (the
 * monitor is ending: what it touches need not stay out of an idle
 * monitor's pages, and a fork would cost the exit path a process start).
 * *ret_oom_kills is set when the count could be read, else left alone. */
typedef int (*moat_monitor_cleanup_fn)(const char *id, const char *runtime_root, uint64_t *ret_oom_kills);

struct moat_monitor_loop_args {
        bool exec;
        const char *id, *exec_id; /* exec_id NULL for a container */
        const char *runtime_root;
        moat_monitor_helper_fn helper;
        moat_monitor_cleanup_fn cleanup;
        pid_t pid;                /* the container's init or the exec'd process, our child */
        int dir_fd;               /* the run directory */
        int out_fd, err_fd;       /* the pipes' read ends, or -1 */
        int pty_fd;               /* the pty master, or -1 */
        int in_fd;                /* the stdin pipe's write end, or -1 */
        bool stdin_to_pty;        /* stdin goes to the pty master */
        int attach_l, ctl_l;      /* listening sockets */
        int sync_fd;              /* answered {"pid":N} or {"error":...} */
        struct moat_logfile *log; /* the log, already open (owned); NULL: opened here from log_path */
        const char *log_path;     /* NULL: no log (exec) */
        uint64_t log_max_size;
        uint32_t log_max_file;
        uint64_t oom_base;
        const struct timespec *started_at; /* NULL while waiting for the start */
        bool stdin_once, wait_start;
        bool start_after_sync;    /* created only: the loop starts it after the sync answer */
        struct moat_create_leftovers *leftovers; /* the create's, freed with the trim (owned) */
        int fifo_path_fd, state_dir_fd; /* O_PATH: the runtime's exec.fifo and state dir, or -1 */
        int started_fd;           /* closed once the sync is answered and the process started (owned), or -1 */
};

int moat_monitor_loop(const struct moat_monitor_loop_args *a);
