/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * moat daemon: configuration (flags merged with daemon.json the way dockerd
 * merges them), the pid file, the API socket, and the run loop that serves
 * the API until SIGTERM/SIGINT. The library never prints: what the daemon
 * has to say goes through struct moat_daemon_log, which the binary writes.
 */

#include "base/compat.h"

#include <jansson.h>

#include "base/error.h"
#include "base/log.h"

#define MOAT_DAEMON_DEFAULT_HOST "unix:///run/moat.sock"
#define MOAT_DAEMON_DEFAULT_EXEC_ROOT "/run/moat"
#define MOAT_DAEMON_DEFAULT_PIDFILE "/run/moat.pid"
#define MOAT_DAEMON_DEFAULT_CONFIG "/etc/moat/daemon.json"
#define MOAT_DAEMON_DEFAULT_GROUP "moat"
#define MOAT_DAEMON_MAX_CONFIG (1024 * 1024)
#define MOAT_DAEMON_STOP_GRACE_MS 5000

/* What the command line said; NULL / false: not given. */
struct moat_daemon_flags {
        const char *host;
        const char *data_root;
        const char *exec_root;
        const char *pidfile;
        const char *config_file;
        const char *group;
        const char *log_level;
        bool debug;
};

struct moat_daemon_config {
        char *socket_path;
        char *data_root;
        char *exec_root;
        char *pidfile;
        char *config_file;
        char *group;
        char *log_driver;       /* stored for the engine; NULL when not set */
        json_t *log_opts;
        json_t *host_config_defaults; /* for new containers (moat_engine_config); NULL: none */
        enum log_level level;
        bool debug;
};

/* Merge flags, daemon.json and defaults (default_data_root when neither
 * gives one). */
MOAT_NODISCARD int moat_daemon_config_load(const struct moat_daemon_flags *flags, const char *default_data_root,
                                           struct moat_daemon_config *ret, struct moat_error **reterr);
void moat_daemon_config_clear(struct moat_daemon_config *c);

/* "unix:///path" -> "/path"; tcp:// and fd:// are refused with the reason. */
MOAT_NODISCARD int moat_daemon_parse_host(const char *host, char **ret_path, struct moat_error **reterr);
MOAT_NODISCARD int moat_daemon_parse_log_level(const char *s, enum log_level *ret, struct moat_error **reterr);

struct moat_daemon_log {
        void (*emit)(void *userdata, enum log_level level, const char *msg);
        void (*set_level)(void *userdata, enum log_level level);
        void *userdata;
};

/* Serve until SIGTERM or SIGINT; returns 0 after a clean stop (socket and
 * pid file removed). flags are kept for SIGHUP's re-read of the file. */
MOAT_NODISCARD int moat_daemon_run(const struct moat_daemon_flags *flags, const struct moat_daemon_config *cfg,
                                   const struct moat_daemon_log *log, struct moat_error **reterr);
