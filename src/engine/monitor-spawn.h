/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * Starting a per-container monitor (docs/monitor.md) and learning whether
 * the container it creates came up. The monitor is forked and exec'd with
 * a pipe as its sync fd; it answers one JSON line, {"pid":N} or
 * {"error":"..."}, then lives on its own (setsid), so a daemon restart
 * does not touch it.
 */
#include "base/compat.h"
#include "base/error.h"

#include <sys/types.h>

/* Bound on the sync line and on the wait for it. */
#define MOAT_MONITOR_SYNC_MAX 65536u
#define MOAT_MONITOR_SYNC_TIMEOUT_MS (120 * 1000)

struct moat_monitor_run {
        const char *monitor_path;   /* the moat-monitor executable */
        const char *id;
        const char *bundle;         /* the container's directory: config.json, rootfs/ */
        const char *runtime_root;
        const char *log_path;       /* NULL: no log file */
        uint64_t log_max_size;      /* 0: unbounded */
        unsigned log_max_file;      /* 0: default */
        bool tty;
        bool open_stdin;
        bool stdin_once;
        bool wait_start;            /* create, report, and start only when asked on ctl.sock */
};

struct moat_monitor_exec {
        const char *monitor_path;
        const char *id;
        const char *exec_id;
        const char *dir;            /* the container's directory */
        const char *runtime_root;
        const char *process_file;   /* a JSON process object */
        bool tty;
        bool open_stdin;
        bool stdin_once;
        bool wait_start;            /* run the process only when asked on its ctl socket */
};

struct moat_monitor_started {
        pid_t monitor_pid;
        int monitor_pidfd;          /* owned by the caller */
        pid_t pid;                  /* the container's init, or the exec'd process */
};

/* Start the monitor and wait for its sync line. On error nothing is left
 * running (a monitor that did not answer is killed and reaped) and the
 * message is the monitor's. */
MOAT_NODISCARD int moat_monitor_start_run(const struct moat_monitor_run *o, struct moat_monitor_started *ret,
                                          struct moat_error **reterr);
MOAT_NODISCARD int moat_monitor_start_exec(const struct moat_monitor_exec *o, struct moat_monitor_started *ret,
                                           struct moat_error **reterr);

/* Ends the monitor zygote, if one runs, and reaps it (waiting at most
 * 2 s): the daemon's exit would otherwise leave it to whatever reaper is
 * above the daemon. Monitors are not touched. */
void moat_monitor_zygote_stop(void);
