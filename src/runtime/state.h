/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The per-container state directory <root>/<id>/ (internal to the runtime
 * library): state.json, the config copy, exec.fifo. A container's status
 * is derived, never stored: its init is alive (same pid and same start
 * time as recorded) or not, and exec.fifo exists until start.
 */

#include "base/compat.h"
#include "base/error.h"

#include <jansson.h>

#include "runtime/runtime.h"

#define MOAT_STATE_FILE "state.json"
#define MOAT_STATE_CONFIG "config.json"
#define MOAT_STATE_FIFO "exec.fifo"
#define MOAT_STATE_MAX_SIZE (4u * 1024u * 1024u)

enum moat_status {
        MOAT_STATUS_CREATING,
        MOAT_STATUS_CREATED,
        MOAT_STATUS_RUNNING,
        MOAT_STATUS_PAUSED,
        MOAT_STATUS_STOPPED,
};

const char *moat_status_to_string(enum moat_status s);

struct moat_state {
        char *id;
        pid_t pid;
        uint64_t pid_start_time;   /* /proc/<pid>/stat field 22, guards against pid reuse */
        char *bundle;
        char *rootfs;
        char *created;             /* RFC 3339 */
        char *owner;
        json_t *annotations;       /* object, owned */
        char *cgroup;              /* moat_cgroup_serialize() text */
        bool has_poststop_hooks;        /* poststart or poststop hooks: config.json saved */
};

void moat_state_free(struct moat_state *s);
static inline void moat_state_freep(struct moat_state **s)
{
        moat_state_free(*s);
        *s = NULL;
}
#define _cleanup_state_ __attribute__((cleanup(moat_state_freep)))

/* Open the state root (creating it 0700 when create is set). */
MOAT_NODISCARD int moat_state_root_open(const struct moat_runtime *rt, bool create, int *ret_fd,
                                        struct moat_error **reterr);

/* Open the state root and load container id: the first step of every verb
 * on an existing container. -ENOENT: "container \"<id>\" does not exist".
 * *ret_dir_fd (may be NULL) is the container's state directory. */
MOAT_NODISCARD int moat_state_open(const struct moat_runtime *rt, const char *id, struct moat_state **ret,
                                   int *ret_dir_fd, struct moat_error **reterr);

/* Load <root>/<id>/state.json; -ENOENT: "container \"<id>\" does not exist". */
MOAT_NODISCARD int moat_state_load(int root_fd, const char *id, struct moat_state **ret, int *ret_dir_fd,
                                   struct moat_error **reterr);

MOAT_NODISCARD int moat_state_save(int dir_fd, const struct moat_state *s, struct moat_error **reterr);

/* Current status of the recorded init. */
enum moat_status moat_state_status(const struct moat_state *s, int dir_fd);

/* Remove <root>/<id> and everything in it. */
MOAT_NODISCARD int moat_state_remove(int root_fd, const char *id, struct moat_error **reterr);

/* Start time of a process (field 22 of /proc/<pid>/stat) and whether it is
 * a zombie. -ESRCH when there is no such process. */
MOAT_NODISCARD int moat_process_start_time(pid_t pid, uint64_t *ret_start, bool *ret_zombie);

/* A pidfd of the recorded init, checked (after opening, so a reused pid
 * cannot slip in) against the recorded start time. -ESRCH when it is gone. */
MOAT_NODISCARD int moat_state_pidfd(const struct moat_state *s, int *ret);

/* Write pid to --pid-file path (replaced atomically; relative to the
 * current directory). */
MOAT_NODISCARD int moat_write_pid_file(const char *path, pid_t pid, struct moat_error **reterr);

/* The OCI state JSON (state-schema.json) of s with the given status. */
MOAT_NODISCARD int moat_state_to_oci_json(const struct moat_state *s, enum moat_status status, char **ret);

/* "2026-12-01T16:12:58.123456789Z" */
MOAT_NODISCARD int moat_now_rfc3339(char **ret);
