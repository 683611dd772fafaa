/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/*
 * The engine: the daemon's core, the one module that composes the image
 * store (image/), the runtime (runtime/, through the monitor) and the
 * state database (db.h). The API layer (api/) turns HTTP requests into
 * these calls and their results into Docker's JSON; nothing here knows
 * HTTP.
 *
 * Errors follow Docker's classes so the API can pick the status code:
 * -ENOENT not found (404), -EEXIST and -EBUSY conflicts (409), -EALREADY
 * nothing to do (304: start of a running container, stop of a stopped
 * one), -EINVAL bad parameters (400), -EOPNOTSUPP not supported yet (501),
 * anything else a server error (500). Messages are Docker's wording, with
 * no context prefixed, because the client prints them as they are.
 *
 * Thread-safe: the API calls from many threads. One mutex guards the
 * containers table; long operations (unpacking, monitor start-up, the
 * wait for a stopping container) run without holding it, with the
 * container marked busy.
 *
 * On disk, under the data root: containers/<id>/ (container-fs.h, the
 * monitor's sockets and files, config.json), volumes/<name>/_data,
 * images/ (the store), moat.db. Under the exec root: runtime/ (the
 * runtime library's state).
 */
#include "base/compat.h"
#include "base/error.h"

#include <jansson.h>
#include <sys/types.h>

struct moat_engine;

struct moat_engine_config {
        const char *data_root;      /* created 0700 when missing */
        const char *exec_root;
        const char *monitor_path;   /* moat-monitor */
        const char *init_path;      /* the init bound into containers run with --init; NULL: none found */
        /* The daemon's defaults for new containers, as HostConfig fields
         * (LogConfig, ShmSize, IpcMode, Init, Ulimits), filled in at create
         * where the request leaves them unset (moat_engine_defaults_check);
         * NULL: none. */
        const json_t *host_config_defaults;
        /* Where the engine reports what happens (info, warnings); may be NULL. */
        void (*log)(int level, const char *msg);
};

/* Whether defaults are fit to be host_config_defaults: they are put
 * through create's own checks. */
MOAT_NODISCARD int moat_engine_defaults_check(const json_t *defaults, struct moat_error **reterr);

MOAT_NODISCARD int moat_engine_open(const struct moat_engine_config *cfg, struct moat_engine **ret,
                                    struct moat_error **reterr);
/* Leaves containers running (live restore). */
void moat_engine_free(struct moat_engine *e);

struct moat_store *moat_engine_store(struct moat_engine *e);

/* ---- containers ---------------------------------------------------------- */

/* POST /containers/create: body is the request JSON (Config + HostConfig +
 * NetworkingConfig), name may be NULL. Image not found: -ENOENT with
 * "No such image: <ref>". */
MOAT_NODISCARD int moat_engine_create(struct moat_engine *e, const char *name, json_t *body, char **ret_id,
                                      json_t **ret_warnings, struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_start(struct moat_engine *e, const char *ref, struct moat_error **reterr);
/* timeout < 0: the container's StopTimeout, else 10 s. signal NULL: its
 * StopSignal, else SIGTERM. */
MOAT_NODISCARD int moat_engine_stop(struct moat_engine *e, const char *ref, int timeout, const char *signal,
                                    struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_restart(struct moat_engine *e, const char *ref, int timeout, const char *signal,
                                       struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_kill(struct moat_engine *e, const char *ref, const char *signal,
                                    struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_pause(struct moat_engine *e, const char *ref, struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_unpause(struct moat_engine *e, const char *ref, struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_remove(struct moat_engine *e, const char *ref, bool force, bool volumes,
                                      struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_rename(struct moat_engine *e, const char *ref, const char *new_name,
                                      struct moat_error **reterr);

enum moat_wait_condition {
        MOAT_WAIT_NOT_RUNNING,
        MOAT_WAIT_NEXT_EXIT,
        MOAT_WAIT_REMOVED,
};
/* Parse "not-running", "next-exit", "removed" ("" is not-running). */
MOAT_NODISCARD int moat_wait_condition_parse(const char *s, enum moat_wait_condition *ret);

/* Asked every half second by the blocking calls below: true ends the call
 * with -ECANCELED (the client went away, the server stops). */
typedef bool (*moat_engine_cancelled_fn)(void *userdata);

/* Register a wait: returns a handle at once (the API sends the response
 * headers then), then moat_engine_wait_finish blocks until the condition
 * holds or cancelled() says so. */
struct moat_engine_wait;
MOAT_NODISCARD int moat_engine_wait_begin(struct moat_engine *e, const char *ref, enum moat_wait_condition cond,
                                          struct moat_engine_wait **ret, struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_wait_finish(struct moat_engine_wait *w, moat_engine_cancelled_fn cancelled,
                                           void *userdata, int *ret_status, char **ret_error,
                                           struct moat_error **reterr);
void moat_engine_wait_free(struct moat_engine_wait *w);

/* GET /containers/{id}/json */
MOAT_NODISCARD int moat_engine_inspect(struct moat_engine *e, const char *ref, json_t **ret,
                                       struct moat_error **reterr);
/* GET /containers/json: filters is the decoded filters object or NULL. */
MOAT_NODISCARD int moat_engine_list(struct moat_engine *e, bool all, int limit, const json_t *filters, json_t **ret,
                                    struct moat_error **reterr);

/* ?size=1 of inspect and list: the bytes of the container's writable
 * layer (SizeRw) and those plus its image's Size (SizeRootFs). */
MOAT_NODISCARD int moat_engine_container_size(struct moat_engine *e, const char *ref, int64_t *ret_rw,
                                              int64_t *ret_rootfs, struct moat_error **reterr);

/* GET /containers/{id}/changes (changes.c): what the container's writable
 * layer changes in its image, as Docker's array of {Path, Kind} (0
 * modified, 1 added, 2 deleted), sorted by path. */
MOAT_NODISCARD int moat_engine_changes(struct moat_engine *e, const char *ref, json_t **ret,
                                       struct moat_error **reterr);

/* The id of a container named by id, name or unique id prefix. */
MOAT_NODISCARD int moat_engine_resolve(struct moat_engine *e, const char *ref, char **ret_id,
                                       struct moat_error **reterr);

struct moat_engine_attach_options {
        bool stdin_, stdout_, stderr_;
};
/* Attaching is two steps. begin, while the request is answered (before
 * the client can send start), registers the attach, so a start waits for
 * it to connect: `docker run` loses no output. connect gives the
 * connection to the container's monitor streaming its live output
 * (multiplexed frames without a tty, raw with one) and taking stdin; for
 * a container not started yet it blocks until it starts (or cancelled()
 * says so). *ret_tty says which framing the stream uses. */
struct moat_engine_attach;
MOAT_NODISCARD int moat_engine_attach_begin(struct moat_engine *e, const char *ref,
                                            const struct moat_engine_attach_options *o,
                                            struct moat_engine_attach **ret, struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_attach_connect(struct moat_engine_attach *a, moat_engine_cancelled_fn cancelled,
                                              void *userdata, int *ret_fd, bool *ret_tty,
                                              struct moat_error **reterr);
void moat_engine_attach_free(struct moat_engine_attach *a);
MOAT_NODISCARD int moat_engine_resize(struct moat_engine *e, const char *ref, unsigned height, unsigned width,
                                      struct moat_error **reterr);
/* attach?logs=1 (attach-logs.c): a mark of the container's json-file log
 * (its files, opened, and their lengths), taken just before the attach
 * connects; current() says the log has not grown since, so a connection
 * registered meanwhile streams what follows the mark; replay() calls fn
 * with each entry up to the mark (stream 1 stdout, 2 stderr; a non-zero
 * return stops it and is returned). */
struct moat_engine_log_mark;
typedef int (*moat_engine_log_fn)(int stream, const char *data, size_t len, void *userdata);
MOAT_NODISCARD int moat_engine_log_mark(struct moat_engine *e, const char *ref, struct moat_engine_log_mark **ret,
                                        struct moat_error **reterr);
bool moat_engine_log_mark_current(const struct moat_engine_log_mark *m);
MOAT_NODISCARD int moat_engine_log_replay(struct moat_engine_log_mark *m, moat_engine_log_fn fn, void *userdata,
                                          struct moat_error **reterr);
/* The entries of m after those a replay of since gave (the same live file:
 * -ESTALE when it was rotated between the two marks). */
MOAT_NODISCARD int moat_engine_log_replay_since(struct moat_engine_log_mark *m,
                                                const struct moat_engine_log_mark *since, moat_engine_log_fn fn,
                                                void *userdata, struct moat_error **reterr);
void moat_engine_log_mark_free(struct moat_engine_log_mark *m);
/* attach?logs=1&stream=1 to a running container, its log marked by m just
 * before: connect to its monitor (as moat_engine_attach_connect would)
 * asking where the log stood when the monitor registered the connection.
 * 1: it said, and m now ends exactly there: replay(m) and then the stream
 * carry every byte of output once (the stream begins with what had been
 * written but not logged yet, the start of an unfinished line). 0: it did
 * not (a monitor of an older moat): the stream is live output only and m
 * is unchanged. -ESRCH: the container is not running (any more), use
 * moat_engine_attach_connect. */
MOAT_NODISCARD int moat_engine_log_attach(struct moat_engine_log_mark *m, const struct moat_engine_attach_options *o,
                                          int *ret_fd, bool *ret_tty, struct moat_error **reterr);
/* GET /containers/{id}/logs (logs.c): the entries of the container's
 * json-file log at path, oldest first, to fn (stream 1 stdout, 2 stderr;
 * the time in ns since the epoch): only the wanted streams and times
 * (since/until, 0: no bound); tail >= 0: only the last tail of those;
 * follow: then what is written, until the container has stopped and the
 * log is drained, until_ns passes, stopped() says so, or fn returns
 * non-zero (which is returned). */
typedef int (*moat_engine_log_entry_fn)(int stream, int64_t time_ns, const char *data, size_t len,
                                        void *userdata);
struct moat_engine_logs_options {
        bool want_stdout, want_stderr, follow;
        int64_t since_ns, until_ns;
        long tail;
        bool (*stopped)(void *userdata);
};
MOAT_NODISCARD int moat_engine_logs_read(struct moat_engine *e, const char *id, const char *path,
                                         const struct moat_engine_logs_options *o, moat_engine_log_entry_fn fn,
                                         void *userdata, struct moat_error **reterr);
/* docker's RFC 3339 time with nanoseconds, as logs --timestamps writes it. */
#define MOAT_ENGINE_RFC3339NANO_MAX 40
void moat_engine_format_rfc3339nano(int64_t ns, char buf[static MOAT_ENGINE_RFC3339NANO_MAX]);
/* json-file's max-size and max-file of a LogConfig.Config (0: not set);
 * errors name HostConfig.LogConfig.Config.<key>. */
MOAT_NODISCARD int moat_engine_log_options(const json_t *config, uint64_t *ret_size, unsigned *ret_files,
                                           struct moat_error **reterr);
/* The path of the container's json-file log and whether it has a tty. */
MOAT_NODISCARD int moat_engine_log_path(struct moat_engine *e, const char *ref, char **ret_path, bool *ret_tty,
                                        bool *ret_running, struct moat_error **reterr);

/* ---- exec ------------------------------------------------------------------ */

/* POST /containers/{id}/exec: body {Cmd, Env, User, WorkingDir, Tty,
 * AttachStdin/out/err, Privileged, DetachKeys, ConsoleSize}. The container
 * must be running (-EBUSY "Container <id> is not running"). */
MOAT_NODISCARD int moat_engine_exec_create(struct moat_engine *e, const char *ref, json_t *body, char **ret_id,
                                           struct moat_error **reterr);
/* POST /exec/{id}/start: run it. Without detach *ret_fd is the stream of
 * its stdio (framing by *ret_tty), connected before the process starts so
 * no output is lost; with detach *ret_fd is -1. An exec runs once
 * (-EBUSY "exec <id> has already been started"). */
MOAT_NODISCARD int moat_engine_exec_start(struct moat_engine *e, const char *exec_id, bool detach,
                                          int *ret_fd, bool *ret_tty, struct moat_error **reterr);
/* GET /exec/{id}/json, Docker's ExecInspect. */
MOAT_NODISCARD int moat_engine_exec_inspect(struct moat_engine *e, const char *exec_id, json_t **ret,
                                            struct moat_error **reterr);
MOAT_NODISCARD int moat_engine_exec_resize(struct moat_engine *e, const char *exec_id, unsigned height,
                                           unsigned width, struct moat_error **reterr);

/* ---- events ------------------------------------------------------------------ */

struct moat_engine_events_query {
        int64_t since_ns;        /* 0: only new events (none from the past) */
        int64_t until_ns;        /* 0: no end */
        const json_t *filters;   /* docker's filters: type, event, container, image, label; may be NULL */
};
/* Check the filters (-EINVAL "invalid filter '<key>'"). */
MOAT_NODISCARD int moat_engine_events_check(const json_t *filters, struct moat_error **reterr);
/* The next events after *cursor matching q, as Docker's event messages
 * (a JSON array, possibly empty), at most limit; *cursor moves past them.
 * Start with *cursor = 0: it is then set to the newest event of the past
 * that q asks for (since) or to now. */
MOAT_NODISCARD int moat_engine_events_next(struct moat_engine *e, const struct moat_engine_events_query *q,
                                           int64_t *cursor, bool *started, size_t limit, json_t **ret,
                                           struct moat_error **reterr);
/* Block until an event after cursor exists or timeout_ms passes (0 on
 * timeout, 1 when there is one). */
int moat_engine_events_wait(struct moat_engine *e, int64_t cursor, int timeout_ms);
/* A client left a stream with its detach keys, as moby logs it: from an
 * attach to container ref (exec_id NULL), the container's "detach" event;
 * from the stream of exec exec_id (ref NULL), its container's
 * "exec_detach" event with the execID attribute. */
MOAT_NODISCARD int moat_engine_event_detach(struct moat_engine *e, const char *ref, const char *exec_id,
                                            struct moat_error **reterr);

/* ---- stats ------------------------------------------------------------------- */

/* One sample of Docker's stats JSON (cpu_stats, memory_stats, pids_stats,
 * blkio_stats, read, name, id) from the container's cgroup; prev (the
 * previous sample or NULL) becomes precpu_stats and preread. A container
 * that is not running gives the zeroed document docker gives. */
MOAT_NODISCARD int moat_engine_stats(struct moat_engine *e, const char *ref, const json_t *prev, json_t **ret,
                                     struct moat_error **reterr);
