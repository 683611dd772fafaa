/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The engine's state database: containers, exec sessions, volumes, events
 * and daemon metadata in one SQLite file (<data-root>/moat.db, WAL mode).
 * Image references are not here: the image store keeps them (index.json).
 *
 * Contract, for the engine:
 *  - Every function is one transaction: it either happened completely or
 *    not at all, also when the daemon is SIGKILLed at any instruction. A
 *    function that returned 0 after a write has committed: SIGKILL cannot
 *    undo it (synchronous=NORMAL with WAL); a power loss may lose the last
 *    commits but never the file's consistency.
 *  - A handle may be shared by the daemon's threads (calls are serialised
 *    by a mutex inside it). Several handles, in one or several processes,
 *    may use the same file at once; a writer waits up to 10 s for another
 *    one (then -EBUSY). After fork() the child must neither use nor close
 *    a handle of its parent: it opens its own or _exit()s.
 *  - Errors: -errno and a moat_error naming the object, with Docker's
 *    wording where Docker has one: -ENOENT ("No such container: x"),
 *    -EEXIST (name conflict, duplicate ids/volumes), -EBUSY (volume in use,
 *    database locked too long), -EINVAL (bad input, ambiguous id prefix),
 *    -EUCLEAN (the file is corrupt), -EIO/-ENOSPC (the disk).
 *  - Container and volume names follow Docker: [a-zA-Z0-9][a-zA-Z0-9_.-]+,
 *    2..255 bytes. A container name is stored without Docker's leading "/";
 *    every function taking a container name also accepts it with one.
 *  - Ids (containers, exec sessions) are 64 lower-case hex digits.
 *  - Times are int64 Unix nanoseconds; 0 means "never" (Docker's
 *    0001-01-01T00:00:00Z). Formatting as RFC 3339 is the engine's job.
 *  - JSON documents are text (parsed by the engine with jansson), at most
 *    1 MiB, and must be a JSON object.
 */

#include <sys/types.h>

#include "base/compat.h"
#include "base/error.h"

/* The schema version this code writes (PRAGMA user_version). A database
 * with a newer version is refused; older ones are migrated at open. */
#define MOAT_DB_SCHEMA_VERSION 1

#define MOAT_DB_FILENAME "moat.db"
#define MOAT_DB_NAME_MAX 255u
#define MOAT_DB_DOC_MAX (1u << 20)
#define MOAT_DB_EVENTS_MAX_DEFAULT 10000u

struct moat_db;
struct json_t;

enum {
        /* PRAGMA quick_check at open; a failing check fails the open with
         * -EUCLEAN. A few ms per MiB of database (see db.c). */
        MOAT_DB_OPEN_QUICK_CHECK = 1u << 0,
};

struct moat_db_options {
        unsigned flags;      /* MOAT_DB_OPEN_* */
        unsigned events_max; /* events kept (newest); 0 = MOAT_DB_EVENTS_MAX_DEFAULT */
};

/* Open (creating it 0600 if missing) <dir>/moat.db. dir must exist. opts
 * may be NULL. */
MOAT_NODISCARD int moat_db_open(const char *dir, const struct moat_db_options *opts, struct moat_db **ret,
                                struct moat_error **reterr);
void moat_db_close(struct moat_db *db);

static inline void moat_db_closep(struct moat_db **db)
{
        if (*db)
                moat_db_close(*db);
        *db = NULL;
}
#define _cleanup_db_ __attribute__((cleanup(moat_db_closep)))

/* PRAGMA quick_check (full = false) or integrity_check (full = true):
 * 0 when "ok", -EUCLEAN with the first problem otherwise. */
MOAT_NODISCARD int moat_db_check(struct moat_db *db, bool full, struct moat_error **reterr);

/* ---- containers ---- */

enum moat_container_state {
        MOAT_CONTAINER_CREATED,
        MOAT_CONTAINER_RUNNING,
        MOAT_CONTAINER_PAUSED,
        MOAT_CONTAINER_RESTARTING,
        MOAT_CONTAINER_REMOVING,
        MOAT_CONTAINER_EXITED,
        MOAT_CONTAINER_DEAD,
        _MOAT_CONTAINER_STATE_MAX,
};

#define MOAT_DB_STATE_MASK(s) (1u << (s))

/* Docker's State.Status words ("created", "running", ...). */
const char *moat_container_state_to_string(enum moat_container_state s);
/* The state, or -EINVAL. */
int moat_container_state_from_string(const char *s);

/* The fields that change over a container's life. */
struct moat_db_container_status {
        enum moat_container_state state;
        pid_t pid;         /* the container's init, 0 when not running */
        pid_t monitor_pid; /* its monitor, 0 when none */
        int exit_code;
        int64_t started_ns;
        int64_t finished_ns;
        bool oom_killed;
        uint32_t restart_count;
        char *error; /* Docker's State.Error; NULL reads as "" */
};

struct moat_db_container {
        char id[65];
        char *name; /* without the leading "/" when read back */
        char *image_ref; /* what the user asked for, e.g. "busybox:latest" */
        char *image_id;  /* "sha256:<hex>" */
        int64_t created_ns;
        struct moat_db_container_status status;
        /* Docker-shaped Config, HostConfig, NetworkSettings, Mounts, ...:
         * the engine's. One field is read here: "Mounts", Docker inspect's
         * array; each entry {"Type": "volume", "Name": n} records that the
         * container uses volume n (which must exist), so that removing it
         * is refused while the container exists. */
        char *doc;
};

void moat_db_container_done(struct moat_db_container *c); /* frees the strings */
void moat_db_container_free(struct moat_db_container *c);
void moat_db_containers_free(struct moat_db_container *v, size_t n);
static inline void moat_db_container_freep(struct moat_db_container **c)
{
        moat_db_container_free(*c);
        *c = NULL;
}
#define _cleanup_db_container_ __attribute__((cleanup(moat_db_container_freep)))

/* Name taken: -EEXIST, Docker's "Conflict. The container name "/x" is
 * already in use by container "<id>". You have to remove (or rename) that
 * container to be able to reuse that name." */
MOAT_NODISCARD int moat_db_container_insert(struct moat_db *db, const struct moat_db_container *c,
                                            struct moat_error **reterr);
/* Exactly this full id. */
MOAT_NODISCARD int moat_db_container_get(struct moat_db *db, const char *id, struct moat_db_container **ret,
                                         struct moat_error **reterr);
MOAT_NODISCARD int moat_db_container_get_by_name(struct moat_db *db, const char *name,
                                                 struct moat_db_container **ret, struct moat_error **reterr);
/* What a Docker API path names: a full id, else a name, else a unique id
 * prefix (ambiguous: -EINVAL "multiple IDs found with provided prefix: x";
 * none: -ENOENT "No such container: x"). */
MOAT_NODISCARD int moat_db_container_lookup(struct moat_db *db, const char *id_or_name,
                                            struct moat_db_container **ret, struct moat_error **reterr);
/* Newest first. state_mask: OR of MOAT_DB_STATE_MASK(), 0 = all. */
MOAT_NODISCARD int moat_db_container_list(struct moat_db *db, unsigned state_mask, struct moat_db_container **ret,
                                          size_t *ret_n, struct moat_error **reterr);
/* Replace the status fields; doc replaces the document unless NULL (its
 * Mounts are re-read). */
MOAT_NODISCARD int moat_db_container_update(struct moat_db *db, const char *id,
                                            const struct moat_db_container_status *st, const char *doc,
                                            struct moat_error **reterr);
/* moat_db_container_insert and _update for a caller holding the document
 * parsed (the engine dumps its own): the text is stored and doc_json, which
 * must be what the text says, is read instead of parsing the text again. */
MOAT_NODISCARD int moat_db_container_insert_parsed(struct moat_db *db, const struct moat_db_container *c,
                                                   const struct json_t *doc_json, struct moat_error **reterr);
MOAT_NODISCARD int moat_db_container_update_parsed(struct moat_db *db, const char *id,
                                                   const struct moat_db_container_status *st, const char *doc,
                                                   const struct json_t *doc_json, struct moat_error **reterr);
struct moat_db_event;
/* moat_db_container_insert_parsed and moat_db_event_append in one
 * transaction: a create's row and its event, both or neither. */
MOAT_NODISCARD int moat_db_container_insert_event(struct moat_db *db, const struct moat_db_container *c,
                                                  const struct json_t *doc_json, const struct moat_db_event *ev,
                                                  int64_t *ret_seq, struct moat_error **reterr);
/* moat_db_container_update_parsed (doc may be NULL) and
 * moat_db_event_append in one transaction: a start's new state and its
 * event, both or neither. */
MOAT_NODISCARD int moat_db_container_update_event(struct moat_db *db, const char *id,
                                                  const struct moat_db_container_status *st, const char *doc,
                                                  const struct json_t *doc_json, const struct moat_db_event *ev,
                                                  int64_t *ret_seq, struct moat_error **reterr);
MOAT_NODISCARD int moat_db_container_rename(struct moat_db *db, const char *id, const char *new_name,
                                            struct moat_error **reterr);
/* Also deletes its exec sessions and its uses of volumes. */
MOAT_NODISCARD int moat_db_container_delete(struct moat_db *db, const char *id, struct moat_error **reterr);

/* ---- exec sessions ---- */

struct moat_db_exec {
        char id[65];
        char container_id[65];
        char *doc; /* the engine's: Cmd, Tty, User, Env, ... */
        bool running;
        pid_t pid;
        int exit_code; /* -1 until it ended (Docker's null) */
};

void moat_db_exec_done(struct moat_db_exec *e);
void moat_db_exec_free(struct moat_db_exec *e);
void moat_db_execs_free(struct moat_db_exec *v, size_t n);
static inline void moat_db_exec_freep(struct moat_db_exec **e)
{
        moat_db_exec_free(*e);
        *e = NULL;
}
#define _cleanup_db_exec_ __attribute__((cleanup(moat_db_exec_freep)))

/* The container must exist (-ENOENT "No such container: <id>"). */
MOAT_NODISCARD int moat_db_exec_insert(struct moat_db *db, const struct moat_db_exec *e, struct moat_error **reterr);
/* -ENOENT "No such exec instance: <id>". */
MOAT_NODISCARD int moat_db_exec_get(struct moat_db *db, const char *id, struct moat_db_exec **ret,
                                    struct moat_error **reterr);
/* Replaces running, pid and exit_code of e->id; doc and container_id are
 * not changed. */
MOAT_NODISCARD int moat_db_exec_update(struct moat_db *db, const struct moat_db_exec *e, struct moat_error **reterr);
/* In creation order. */
MOAT_NODISCARD int moat_db_exec_list(struct moat_db *db, const char *container_id, struct moat_db_exec **ret,
                                     size_t *ret_n, struct moat_error **reterr);
MOAT_NODISCARD int moat_db_exec_delete(struct moat_db *db, const char *id, struct moat_error **reterr);

/* ---- volumes ---- */

struct moat_db_volume {
        char *name;
        char *driver; /* "local" */
        char *mountpoint;
        int64_t created_ns;
        char *labels;  /* JSON object; NULL on insert = {} */
        char *options; /* JSON object; NULL on insert = {} */
        size_t n_users; /* read back: how many containers use it */
};

void moat_db_volume_done(struct moat_db_volume *v);
void moat_db_volume_free(struct moat_db_volume *v);
void moat_db_volumes_free(struct moat_db_volume *v, size_t n);
static inline void moat_db_volume_freep(struct moat_db_volume **v)
{
        moat_db_volume_free(*v);
        *v = NULL;
}
#define _cleanup_db_volume_ __attribute__((cleanup(moat_db_volume_freep)))

/* -EEXIST if the name exists (Docker's create then answers with the
 * existing volume; that is the engine's decision). */
MOAT_NODISCARD int moat_db_volume_insert(struct moat_db *db, const struct moat_db_volume *v,
                                         struct moat_error **reterr);
/* -ENOENT "get x: no such volume". */
MOAT_NODISCARD int moat_db_volume_get(struct moat_db *db, const char *name, struct moat_db_volume **ret,
                                      struct moat_error **reterr);
/* By name. */
MOAT_NODISCARD int moat_db_volume_list(struct moat_db *db, struct moat_db_volume **ret, size_t *ret_n,
                                       struct moat_error **reterr);
/* The ids of the containers using it, sorted; NULL-terminated. */
MOAT_NODISCARD int moat_db_volume_users(struct moat_db *db, const char *name, char ***ret,
                                        struct moat_error **reterr);
/* In use: -EBUSY "remove x: volume is in use - [<id>, ...]", and nothing is
 * removed. */
MOAT_NODISCARD int moat_db_volume_delete(struct moat_db *db, const char *name, struct moat_error **reterr);

/* ---- events ---- */

struct moat_db_event {
        int64_t seq; /* read back: increasing, never reused */
        char *type;     /* "container", "image", "volume", "network", "daemon" */
        char *action;   /* "create", "start", "exec_create: sh -c ...", ... */
        char *actor_id;
        char *attributes; /* JSON object of strings; NULL on append = {} */
        int64_t time_ns;
};

void moat_db_event_done(struct moat_db_event *e);
void moat_db_events_free(struct moat_db_event *v, size_t n);

/* Whether the database takes e within its bounds (an event it refuses is
 * dropped, not what it records). */
bool moat_db_event_valid(const struct moat_db_event *e);
/* Appends, then drops all but the newest events_max events, in one
 * transaction. ret_seq may be NULL. */
MOAT_NODISCARD int moat_db_event_append(struct moat_db *db, const struct moat_db_event *e, int64_t *ret_seq,
                                        struct moat_error **reterr);

struct moat_db_event_query {
        int64_t since_ns; /* time_ns >= since_ns */
        int64_t until_ns; /* time_ns <= until_ns; 0 = no bound */
        int64_t after_seq; /* seq > after_seq (a stream's cursor); 0 = all */
        size_t limit;     /* at most this many (the oldest matching); 0 = no limit */
};

/* In append order (seq). q may be NULL (everything kept). */
MOAT_NODISCARD int moat_db_event_list(struct moat_db *db, const struct moat_db_event_query *q,
                                      struct moat_db_event **ret, size_t *ret_n, struct moat_error **reterr);

/* ---- daemon metadata (small key/value) ---- */

#define MOAT_DB_META_KEY_MAX 128u
#define MOAT_DB_META_VALUE_MAX (64u << 10)

/* -ENOENT if unset. */
MOAT_NODISCARD int moat_db_meta_get(struct moat_db *db, const char *key, char **ret, struct moat_error **reterr);
MOAT_NODISCARD int moat_db_meta_set(struct moat_db *db, const char *key, const char *value,
                                    struct moat_error **reterr);
/* Set only if unset; *ret is the value now stored (the given one or the
 * one that was there), so two daemons racing to pick an ID agree. */
MOAT_NODISCARD int moat_db_meta_set_default(struct moat_db *db, const char *key, const char *value, char **ret,
                                            struct moat_error **reterr);
MOAT_NODISCARD int moat_db_meta_delete(struct moat_db *db, const char *key, struct moat_error **reterr);
