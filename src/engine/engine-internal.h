/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* What the files of the engine share: the engine and container structs.
 * Fields of a container are read and written under engine->lock. */
#include "base/compat.h"
#include "engine/engine.h"

#include <pthread.h>

#include "engine/db.h"
#include "image/images.h"
#include "image/store.h"

struct moat_db;
struct moat_watch;

struct container {
        struct container *next;
        char *id;
        char *name;            /* without docker's leading "/" */
        char *image;           /* the reference as given at create */
        char *image_id;        /* "sha256:<config digest hex>" */
        int64_t created_ns;
        json_t *config;        /* Docker's Config, normalised */
        json_t *host_config;   /* Docker's HostConfig, normalised */
        json_t *mounts;        /* Docker's Mounts array for inspect */
        json_t *health;        /* State.Health, or NULL without a health check */
        char *path;            /* the command the container runs: Path and Args */
        json_t *args;
        struct moat_db_container_status st;
        bool manually_stopped;
        bool tty;
        /* Not persisted. */
        bool busy;             /* a start, stop, exit or removal is under way */
        bool removed;
        unsigned exit_seq;     /* bumped at every exit */
        unsigned attach_pending;
        bool monitor_ready;    /* created by its monitor, start not yet requested */
        unsigned refs;         /* holders outside the lock (waits) */
};

struct moat_engine {
        char *data_root;
        char *exec_root;
        char *runtime_root;
        char *monitor_path;
        char *init_path;
        json_t *host_config_defaults; /* moat_engine_config's, or NULL */
        int data_fd;
        int containers_fd;         /* <data-root>/containers */
        int run_containers_fd;     /* <exec-root>/containers */
        struct moat_store *store;
        struct moat_db *db;
        struct moat_watch *watch;
        pthread_mutex_t lock;
        pthread_cond_t changed;
        struct container *containers;
        int64_t last_event_seq;    /* of the newest event appended */
        bool closing;              /* moat_engine_free has begun */
        unsigned bg_threads;       /* restart threads alive */
        void (*log)(int level, const char *msg);
        /* Removed containers' directories, ready for new ones (containers.c,
         * READY_PREFIX): names under containers/, under the lock. */
        char ready[64][24];
        unsigned n_ready;
        unsigned ready_seq;
};

void engine_log(struct moat_engine *e, int level, const char *fmt, ...) MOAT_PRINTF(3, 4);

/* A container lives in two directories. <data-root>/containers/<id> keeps
 * what must outlast a reboot: the writable layer (upper/, work/), the
 * mount point of its root (rootfs/) and its log. The run directory,
 * <exec-root>/containers/<id> (a tmpfs such as /run in deployments, as
 * docker's and containerd's state directories are), holds what only
 * means something while the host is up and is written at every start:
 * the bundle's config.json, the /etc files bind-mounted into the
 * container, and the monitor's sockets, pid and exit files. */
MOAT_NODISCARD int engine_run_dir_path(struct moat_engine *e, const char *id, char **ret_path,
                                       struct moat_error **reterr);
MOAT_NODISCARD int engine_run_dir_open(struct moat_engine *e, const char *id, bool create,
                                       struct moat_error **reterr);
void engine_run_dir_remove(struct moat_engine *e, const char *id);

/* Under e->lock: the container named by id, name or unique id prefix. */
MOAT_NODISCARD int container_find_locked(struct moat_engine *e, const char *ref, struct container **ret,
                                         struct moat_error **reterr);
void container_free(struct container *c);
bool container_is_running(const struct container *c);
/* Under the lock, c referenced (c->refs++): wait until no other operation
 * runs on c, then claim it; -ENOENT when it was removed meanwhile. */
MOAT_NODISCARD int container_claim_locked(struct moat_engine *e, struct container *c);
/* End the claim and wake the waiters. */
void container_release_locked(struct moat_engine *e, struct container *c);
/* Drop a reference; the last one frees a removed container. */
void container_unref_locked(struct container *c);

/* Persist c (under e->lock). */
MOAT_NODISCARD int container_save_locked(struct moat_engine *e, struct container *c, struct moat_error **reterr);

/* The monitor of id exited (the watcher's callback). */
void container_monitor_exited(const char *id, void *userdata);
/* Start the health check thread of a running container (health.c); a
 * container without a Healthcheck gets none. */
void container_health_start_locked(struct moat_engine *e, struct container *c);
/* The monitor of an exec exited. */
void exec_monitor_exited(struct moat_engine *e, const char *container_id, const char *exec_id);
/* Record and broadcast a container event; extra (attributes) is stolen. */
void event_locked(struct moat_engine *e, const struct container *c, const char *action, json_t *extra);

/* Load the containers of the database and reconnect to running ones. */
MOAT_NODISCARD int containers_restore(struct moat_engine *e, struct moat_error **reterr);

int64_t engine_now_ns(void);
/* The exit code docker reports for a process that could not be started,
 * from the error's message: 127 not found, 126 not runnable, else 128. */
int engine_start_failure_code(const char *msg);
/* RFC 3339 with nanoseconds in UTC ("2026-12-01T18:00:00.123456789Z");
 * 0 is Docker's zero time "0001-01-01T00:00:00Z". */
void engine_format_time(int64_t ns, char buf[static 40]);

/* container-spec.c: the glue to docker-spec.h. */

/* Validate a create body and return Docker's normalised Config and
 * HostConfig (defaults filled) and the create warnings. */
MOAT_NODISCARD int container_normalize_create(struct moat_engine *e, json_t *body, json_t **ret_config,
                                              json_t **ret_host_config, json_t **ret_warnings,
                                              struct moat_error **reterr);
/* The text of the OCI config.json of c, its root filesystem mounted at
 * dir/rootfs (users are resolved in it), the /etc files it mounts written
 * in its run directory run_fd; also sets c->config, c->host_config,
 * c->path, c->args and c->mounts, which the caller saves (the document is
 * saved here only when volumes are held for it). */
MOAT_NODISCARD int container_make_spec(struct moat_engine *e, struct container *c, const struct moat_image *img,
                                       int dir_fd, int run_fd, char **ret_spec_text, struct moat_error **reterr);
/* Does it ask for volumes or bind mounts (which docker resolves at create)? */
bool container_wants_volumes(const struct container *c);
MOAT_NODISCARD int container_create_volumes(struct moat_engine *e, struct container *c, const struct moat_image *img,
                                            int dir_fd, struct moat_error **reterr);
