/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The engine's state database (see db.h): one SQLite file in the data
 * root, written only through the functions here.
 *
 * Why it is built this way:
 *  - SQLite in WAL mode, because the engine's state is a handful of small
 *    related tables that must change together (a container and its uses of
 *    volumes; a container and its exec sessions), and SQLite's commit is
 *    atomic and survives a kill at any instruction: after SIGKILL the next
 *    open replays or discards the WAL and the file shows exactly the
 *    committed transactions. Every public function is exactly one
 *    transaction, so the engine cannot leave half an operation behind.
 *  - synchronous=NORMAL with WAL: a commit is in the OS page cache when it
 *    returns, so it survives SIGKILL of the daemon at any point (the
 *    requirement); a power loss may lose the last commits, never the
 *    file's consistency, and the engine reconciles its container
 *    directories with the database at start (containers.c). FULL would
 *    fsync the WAL at every lifecycle change: 8 fsyncs per `docker run
 *    --rm`, 6-30 ms on this machine, for a guarantee the filesystem state
 *    around the database does not have anyway. Checkpoints still fsync.
 *  - One connection per handle, guarded by a mutex, rather than one
 *    connection per thread: SQLite admits one writer at a time anyway, the
 *    queries take microseconds, and a single connection means the daemon's
 *    own threads never meet SQLITE_BUSY, need no per-thread handles and
 *    share one statement cache. Other handles and other processes (a second
 *    daemon by mistake, a debugging tool) coordinate through SQLite's file
 *    locks: writes start with BEGIN IMMEDIATE, so a writer waits for the
 *    write lock in the busy handler (10 s) at the start, instead of failing
 *    with SQLITE_BUSY when a deferred read transaction tries to upgrade.
 *    While one thread waits there (another process holds the write lock),
 *    the handle's other callers wait behind the mutex: the price of not
 *    having connections per thread, paid only when a second process
 *    writes.
 *  - The statement cache: each text is prepared once per handle
 *    (SQLITE_PREPARE_PERSISTENT) and kept, BEGIN, COMMIT and ROLLBACK
 *    included: preparing at every call cost about as much CPU as running
 *    the statements, in a container's create and start. Texts are
 *    compared whole, so built ones are safe; at most STMT_CACHE_MAX are
 *    kept, others are prepared per use, as is a text whose statement is
 *    in use further up the stack. A statement is given back reset and
 *    with its bindings cleared (they point into the caller's strings),
 *    under the handle's lock: a function declares its statements after
 *    its transaction, so that their cleanups run first.
 *  - Schema versioned with PRAGMA user_version (transactional, in the file
 *    header): migrations[v] takes version v to v + 1, each in its own
 *    BEGIN IMMEDIATE transaction that re-reads the version, so two
 *    processes opening a new file at once migrate it once. A file from a
 *    newer moat is refused rather than guessed at.
 *  - Constraints live in the schema, not only in C: UNIQUE container names,
 *    foreign keys with ON DELETE CASCADE for exec sessions and volume uses,
 *    ON DELETE RESTRICT from a volume use to its volume, CHECKs on states.
 *    The C code checks first to produce Docker's messages; the schema is
 *    what keeps the file consistent whatever the C code does.
 *  - Which containers use a volume is a table (container_volumes), derived
 *    here from the container document's Mounts in the same transaction as
 *    the container's insert, update or delete, so `volume rm` of an in-use
 *    volume is refused atomically and nobody has to scan JSON documents.
 *  - The file is made 0600 before SQLite opens it (SQLite gives the -wal
 *    and -shm files the same mode): documents hold environment variables,
 *    which often are secrets. SQLite is hardened against a tampered file
 *    (defensive mode, untrusted schema, cell size checks); an integrity
 *    check at open is an option (MOAT_DB_OPEN_QUICK_CHECK): measured by the
 *    unit test at 9 to 22 ms for 1000 containers with 4 KiB documents
 *    (4.6 MiB, warm cache), so the daemon can afford it at every start.
 *    The full integrity_check (moat_db_check) also verifies indexes
 *    against tables; it is for tests and repair tools.
 *  - Events keep the newest events_max rows (10000): the prune is a range
 *    delete on the AUTOINCREMENT key, in the append's transaction, so the
 *    table never grows beyond the bound and sequence numbers are never
 *    reused (a stream's cursor stays meaningful).
 */

#include "engine/db.h"

#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"

#define BUSY_TIMEOUT_MS 10000
#define IMAGE_REF_MAX 1024u
#define IMAGE_ID_MAX 256u
#define ERROR_TEXT_MAX (64u << 10)
#define DRIVER_MAX 64u
#define MOUNTPOINT_MAX 4096u
#define EVENT_TYPE_MAX 32u
#define EVENT_ACTION_MAX 4096u
#define EVENT_ACTOR_MAX 1024u
#define EVENT_ATTRS_MAX (64u << 10)
#define VOLUMES_PER_CONTAINER_MAX 1024u
/* Statements kept prepared: the engine uses about 40 texts. */
#define STMT_CACHE_MAX 48u

/* A prepared statement kept for the next call with the same text. */
struct stmt_slot {
        char *text;
        uint32_t hash;
        sqlite3_stmt *st;
        bool in_use;
};

struct moat_db {
        pthread_mutex_t lock;
        sqlite3 *sql;
        unsigned events_max;
        struct stmt_slot cache[STMT_CACHE_MAX];
        size_t n_cached;
};

/* ---- schema ---- */

static const char *const migrations[] = {
        /* 0 -> 1 */
        "CREATE TABLE meta ("
        "  key TEXT PRIMARY KEY NOT NULL,"
        "  value TEXT NOT NULL"
        ") WITHOUT ROWID;"
        "CREATE TABLE containers ("
        "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),"
        "  name TEXT NOT NULL UNIQUE,"
        "  image_ref TEXT NOT NULL,"
        "  image_id TEXT NOT NULL,"
        "  created_ns INTEGER NOT NULL,"
        "  state TEXT NOT NULL CHECK (state IN ('created', 'running', 'paused', 'restarting',"
        "                                       'removing', 'exited', 'dead')),"
        "  pid INTEGER NOT NULL DEFAULT 0,"
        "  monitor_pid INTEGER NOT NULL DEFAULT 0,"
        "  exit_code INTEGER NOT NULL DEFAULT 0,"
        "  started_ns INTEGER NOT NULL DEFAULT 0,"
        "  finished_ns INTEGER NOT NULL DEFAULT 0,"
        "  oom_killed INTEGER NOT NULL DEFAULT 0 CHECK (oom_killed IN (0, 1)),"
        "  restart_count INTEGER NOT NULL DEFAULT 0,"
        "  error TEXT NOT NULL DEFAULT '',"
        "  doc TEXT NOT NULL"
        ");"
        "CREATE TABLE volumes ("
        "  name TEXT PRIMARY KEY NOT NULL,"
        "  driver TEXT NOT NULL,"
        "  mountpoint TEXT NOT NULL,"
        "  created_ns INTEGER NOT NULL,"
        "  labels TEXT NOT NULL,"
        "  options TEXT NOT NULL"
        ");"
        "CREATE TABLE container_volumes ("
        "  container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,"
        "  volume_name TEXT NOT NULL REFERENCES volumes(name) ON DELETE RESTRICT,"
        "  PRIMARY KEY (container_id, volume_name)"
        ") WITHOUT ROWID;"
        "CREATE INDEX container_volumes_by_volume ON container_volumes(volume_name);"
        "CREATE TABLE execs ("
        "  id TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 64),"
        "  container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,"
        "  doc TEXT NOT NULL,"
        "  running INTEGER NOT NULL DEFAULT 0 CHECK (running IN (0, 1)),"
        "  pid INTEGER NOT NULL DEFAULT 0,"
        "  exit_code INTEGER NOT NULL DEFAULT -1"
        ");"
        "CREATE INDEX execs_by_container ON execs(container_id);"
        "CREATE TABLE events ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  time_ns INTEGER NOT NULL,"
        "  type TEXT NOT NULL,"
        "  action TEXT NOT NULL,"
        "  actor_id TEXT NOT NULL,"
        "  attributes TEXT NOT NULL"
        ");"
        "CREATE INDEX events_by_time ON events(time_ns);",
};

_Static_assert(ELEMENTSOF(migrations) == MOAT_DB_SCHEMA_VERSION, "one migration per schema version");

static const char *const state_names[_MOAT_CONTAINER_STATE_MAX] = {
        [MOAT_CONTAINER_CREATED] = "created",       [MOAT_CONTAINER_RUNNING] = "running",
        [MOAT_CONTAINER_PAUSED] = "paused",         [MOAT_CONTAINER_RESTARTING] = "restarting",
        [MOAT_CONTAINER_REMOVING] = "removing",     [MOAT_CONTAINER_EXITED] = "exited",
        [MOAT_CONTAINER_DEAD] = "dead",
};

const char *moat_container_state_to_string(enum moat_container_state s)
{
        return (unsigned) s < _MOAT_CONTAINER_STATE_MAX ? state_names[s] : NULL;
}

int moat_container_state_from_string(const char *s)
{
        for (int i = 0; s && i < _MOAT_CONTAINER_STATE_MAX; i++)
                if (streq(s, state_names[i]))
                        return i;
        return -EINVAL;
}

/* ---- errors ---- */

static int sqlite_to_errno(sqlite3 *sql, int rc)
{
        int sys = sql ? sqlite3_system_errno(sql) : 0;

        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EPERM;
        case SQLITE_CONSTRAINT:
        case SQLITE_MISMATCH:
        case SQLITE_RANGE:
                return -EINVAL;
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
                return sys > 0 ? -sys : -EIO;
        default:
                return -EIO;
        }
}

/* "<context>: <SQLite's message>"; the caller holds the lock, so the
 * message is this thread's. */
MOAT_PRINTF(4, 5)
static int db_fail(sqlite3 *sql, int rc, struct moat_error **reterr, const char *fmt, ...)
{
        _cleanup_free_ char *ctx = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&ctx, fmt, ap) < 0)
                ctx = NULL;
        va_end(ap);
        return moat_error_setx(reterr, sqlite_to_errno(sql, rc), "%s: %s", ctx ? ctx : "database",
                               sql ? sqlite3_errmsg(sql) : sqlite3_errstr(rc));
}

/* ---- statements and transactions ---- */

/* A statement for one use: the cache's (slot) or prepared for this use
 * alone. Released by its cleanup attribute, which must run under the
 * handle's lock: declare it after the struct txn, so it goes first. */
struct stmt {
        sqlite3_stmt *s;
        struct stmt_slot *slot;
};

static void stmt_release(struct stmt *q)
{
        if (q->slot) {
                /* Bindings point into the caller's strings: dropped now. */
                (void) sqlite3_reset(q->s);
                (void) sqlite3_clear_bindings(q->s);
                q->slot->in_use = false;
        } else
                sqlite3_finalize(q->s);
        *q = (struct stmt) {};
}
#define _cleanup_stmt_ _cleanup_(stmt_release)

static uint32_t text_hash(const char *s)
{
        uint32_t h = 2166136261u;

        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 16777619u;
        return h;
}

/* The cached statement of text, or a new one: cached while the cache has
 * room, else (or when the cached one is in use further up the stack) for
 * this use alone. Texts are compared whole, so built texts are fine. */
static int stmt_get(struct moat_db *db, const char *text, struct stmt *ret)
{
        uint32_t h = text_hash(text);
        bool busy = false;
        sqlite3_stmt *st = NULL;
        int rc;

        for (size_t i = 0; i < db->n_cached; i++) {
                struct stmt_slot *slot = &db->cache[i];

                if (slot->hash != h || !streq(slot->text, text))
                        continue;
                if (!slot->in_use) {
                        slot->in_use = true;
                        *ret = (struct stmt) { .s = slot->st, .slot = slot };
                        return SQLITE_OK;
                }
                busy = true;
                break;
        }

        bool keep = !busy && db->n_cached < STMT_CACHE_MAX;
        _cleanup_free_ char *copy = keep ? strdup(text) : NULL;
        rc = sqlite3_prepare_v3(db->sql, text, -1, copy ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
        if (rc != SQLITE_OK)
                return rc;
        if (!st)
                return SQLITE_MISUSE; /* an empty text */
        *ret = (struct stmt) { .s = st };
        if (copy) {
                struct stmt_slot *slot = &db->cache[db->n_cached++];

                *slot = (struct stmt_slot) { .text = TAKE_PTR(copy), .hash = h, .st = st, .in_use = true };
                ret->slot = slot;
        }
        return SQLITE_OK;
}

static void stmt_cache_clear(struct moat_db *db)
{
        for (size_t i = 0; i < db->n_cached; i++) {
                sqlite3_finalize(db->cache[i].st);
                free(db->cache[i].text);
        }
        db->n_cached = 0;
}

static int prep(struct moat_db *db, const char *sqltext, struct stmt *ret, struct moat_error **reterr)
{
        int rc = stmt_get(db, sqltext, ret);

        if (rc != SQLITE_OK)
                return db_fail(db->sql, rc, reterr, "preparing a query of the state database");
        return 0;
}

/* Runs a statement without parameters or rows (BEGIN, COMMIT, ...). */
static int run_simple(struct moat_db *db, const char *text, struct moat_error **reterr, const char *what)
{
        _cleanup_stmt_ struct stmt q = {};
        int rc = stmt_get(db, text, &q);

        if (rc == SQLITE_OK) {
                rc = sqlite3_step(q.s);
                if (rc == SQLITE_DONE || rc == SQLITE_ROW)
                        return 0;
        }
        return db_fail(db->sql, rc, reterr, "%s", what);
}

struct txn {
        struct moat_db *db;
        bool open;
};

static void txn_end(struct txn *t)
{
        if (!t->db)
                return;
        if (t->open)
                (void) run_simple(t->db, "ROLLBACK", NULL, "rolling back");
        pthread_mutex_unlock(&t->db->lock);
        t->db = NULL;
}
#define _cleanup_txn_ _cleanup_(txn_end)

/* Locks the handle and starts a transaction: a write one takes SQLite's
 * write lock now (waiting in the busy handler), a read one is a snapshot. */
static int txn_begin(struct moat_db *db, bool write, struct txn *t, struct moat_error **reterr)
{
        int r;

        pthread_mutex_lock(&db->lock);
        r = run_simple(db, write ? "BEGIN IMMEDIATE" : "BEGIN", reterr,
                       "starting a transaction on the state database");
        if (r < 0) {
                pthread_mutex_unlock(&db->lock);
                return r;
        }
        *t = (struct txn) { .db = db, .open = true };
        return 0;
}

static int txn_commit(struct txn *t, struct moat_error **reterr)
{
        int r = run_simple(t->db, "COMMIT", reterr, "committing to the state database");

        if (r < 0)
                return r;
        t->open = false;
        return 0;
}

/* Binds parameters 1.. in order: 't' text (NULL binds NULL), 'i' int64,
 * 'd' int. The strings must outlive the statement's use. */
static int bindf(struct moat_db *db, sqlite3_stmt *st, struct moat_error **reterr, const char *fmt, ...)
{
        va_list ap;
        int rc = SQLITE_OK;

        va_start(ap, fmt);
        for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
                switch (fmt[i]) {
                case 't': {
                        const char *s = va_arg(ap, const char *);
                        rc = s ? sqlite3_bind_text(st, i + 1, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i + 1);
                        break;
                }
                case 'i':
                        rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
                        break;
                case 'd':
                        rc = sqlite3_bind_int(st, i + 1, va_arg(ap, int));
                        break;
                default:
                        rc = SQLITE_MISUSE;
                }
        }
        va_end(ap);
        if (rc != SQLITE_OK)
                return db_fail(db->sql, rc, reterr, "binding a query of the state database");
        return 0;
}

/* SQLITE_ROW -> 1, SQLITE_DONE -> 0, else the error. */
static int step(struct moat_db *db, sqlite3_stmt *st, struct moat_error **reterr)
{
        int rc = sqlite3_step(st);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return db_fail(db->sql, rc, reterr, "state database");
}

/* Runs a statement that returns no rows. */
static int exec_bound(struct moat_db *db, sqlite3_stmt *st, struct moat_error **reterr)
{
        int r = step(db, st, reterr);
        if (r > 0)
                return moat_error_setx(reterr, -EIO, "state database: a write returned rows");
        return r;
}

static int col_dup(sqlite3_stmt *st, int col, char **ret)
{
        const unsigned char *s = sqlite3_column_text(st, col);

        *ret = strdup(s ? (const char *) s : "");
        return *ret ? 0 : -ENOMEM;
}

/* Copies a 64-hex id column into a fixed buffer; anything else is a file
 * edited behind our back. */
static int col_id(sqlite3_stmt *st, int col, char out[65])
{
        const unsigned char *s = sqlite3_column_text(st, col);

        if (!s || strlen((const char *) s) != 64)
                return -EUCLEAN;
        memcpy(out, s, 65);
        return 0;
}

/* ---- validation ---- */

static bool is_hex_id(const char *s, size_t min, size_t max)
{
        size_t n = 0;

        if (!s)
                return false;
        for (; s[n]; n++)
                if (n >= max || !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
                        return false;
        return n >= min;
}

static bool is_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Docker's [a-zA-Z0-9][a-zA-Z0-9_.-]+, bounded. */
static bool is_name(const char *s)
{
        size_t n;

        if (!s || !is_alnum(s[0]))
                return false;
        for (n = 1; s[n]; n++)
                if (n >= MOAT_DB_NAME_MAX || !(is_alnum(s[n]) || s[n] == '_' || s[n] == '.' || s[n] == '-'))
                        return false;
        return n >= 2;
}

static const char *strip_slash(const char *name)
{
        return name && name[0] == '/' ? name + 1 : name;
}

static int check_id(const char *what, const char *id, struct moat_error **reterr)
{
        if (!is_hex_id(id, 64, 64))
                return moat_error_setx(reterr, -EINVAL, "%s id \"%.80s\" is not 64 lower-case hex digits", what,
                                       id ? id : "");
        return 0;
}

static int check_container_name(const char *name, struct moat_error **reterr)
{
        if (!is_name(name))
                return moat_error_setx(reterr, -EINVAL,
                                       "Invalid container name (%.300s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed "
                                       "(2 to %u characters)",
                                       name ? name : "", MOAT_DB_NAME_MAX);
        return 0;
}

static int check_volume_name(const char *name, struct moat_error **reterr)
{
        if (!is_name(name))
                return moat_error_setx(reterr, -EINVAL,
                                       "volume name \"%.300s\" is invalid: only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                                       "allowed (2 to %u characters)",
                                       name ? name : "", MOAT_DB_NAME_MAX);
        return 0;
}

/* Bounded text without control characters (single line) unless multiline. */
static int check_text(const char *what, const char *s, size_t min, size_t max, bool multiline,
                      struct moat_error **reterr)
{
        size_t n;

        if (!s)
                return moat_error_setx(reterr, -EINVAL, "%s is missing", what);
        n = strnlen(s, max + 1);
        if (n < min || n > max)
                return moat_error_setx(reterr, -EINVAL, "%s is %zu%s bytes long, must be %zu to %zu", what, n,
                                       n > max ? " or more" : "", min, max);
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 && !(multiline && (s[i] == '\n' || s[i] == '\t')))
                        return moat_error_setx(reterr, -EINVAL, "%s contains a control character (byte %zu)",
                                               what, i);
        return 0;
}

/* A JSON object of at most max bytes; *ret (if given) gets the parse. */
static int check_json_object(const char *what, const char *doc, size_t max, json_t **ret,
                             struct moat_error **reterr)
{
        json_error_t jerr;
        json_t *j;
        size_t n;

        if (!doc)
                return moat_error_setx(reterr, -EINVAL, "%s is missing", what);
        n = strnlen(doc, max + 1);
        if (n > max)
                return moat_error_setx(reterr, -E2BIG, "%s is larger than %zu bytes", what, max);
        j = json_loadb(doc, n, 0, &jerr);
        if (!j)
                return moat_error_setx(reterr, -EINVAL, "%s is not valid JSON: %s (line %d, column %d)", what,
                                       jerr.text, jerr.line, jerr.column);
        if (!json_is_object(j)) {
                json_decref(j);
                return moat_error_setx(reterr, -EINVAL, "%s is not a JSON object", what);
        }
        if (ret)
                *ret = j;
        else
                json_decref(j);
        return 0;
}

static int check_status(const char *id, const struct moat_db_container_status *st, struct moat_error **reterr)
{
        if ((unsigned) st->state >= _MOAT_CONTAINER_STATE_MAX)
                return moat_error_setx(reterr, -EINVAL, "container %s: state %d is not a container state", id,
                                       (int) st->state);
        if (st->pid < 0 || st->monitor_pid < 0)
                return moat_error_setx(reterr, -EINVAL, "container %s: negative pid", id);
        if (st->started_ns < 0 || st->finished_ns < 0)
                return moat_error_setx(reterr, -EINVAL, "container %s: negative time", id);
        if (st->error)
                return check_text("container's error", st->error, 0, ERROR_TEXT_MAX, true, reterr);
        return 0;
}

/* The volumes a container document's Mounts name (Docker inspect's shape:
 * [{"Type": "volume", "Name": "x", ...}, ...]), without duplicates. */
static int doc_volumes(const char *id, const json_t *doc, char ***ret, struct moat_error **reterr)
{
        json_t *mounts = json_object_get(doc, "Mounts"), *m;
        _cleanup_strv_free_ char **v = NULL;
        size_t n = 0, i;

        if (!mounts || json_is_null(mounts)) {
                *ret = calloc(1, sizeof(char *));
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_is_array(mounts))
                return moat_error_setx(reterr, -EINVAL, "container %s: Mounts is not an array", id);
        if (json_array_size(mounts) > VOLUMES_PER_CONTAINER_MAX)
                return moat_error_setx(reterr, -E2BIG, "container %s: more than %u mounts", id,
                                       VOLUMES_PER_CONTAINER_MAX);
        v = calloc(json_array_size(mounts) + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        json_array_foreach(mounts, i, m) {
                const char *type = json_string_value(json_object_get(m, "Type"));
                const char *name = json_string_value(json_object_get(m, "Name"));
                bool dup = false;
                int r;

                if (!type || !streq(type, "volume"))
                        continue;
                r = check_volume_name(name, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "container %s: Mounts[%zu]", id, i);
                for (size_t k = 0; k < n && !dup; k++)
                        dup = streq(v[k], name);
                if (dup)
                        continue;
                v[n] = strdup(name);
                if (!v[n])
                        return -ENOMEM;
                n++;
        }
        *ret = TAKE_PTR(v);
        return 0;
}

/* ---- open ---- */

static int pragma_text(struct moat_db *db, const char *q, char **ret, struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt st = {};
        int r = prep(db, q, &st, reterr);

        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -EIO, "state database: \"%s\" returned nothing", q);
        return col_dup(st.s, 0, ret);
}

static int user_version(struct moat_db *db, int *ret, struct moat_error **reterr)
{
        _cleanup_free_ char *s = NULL;
        int r = pragma_text(db, "PRAGMA user_version", &s, reterr);

        if (r < 0)
                return r;
        *ret = atoi(s);
        return 0;
}

static int migrate(struct moat_db *db, const char *path, struct moat_error **reterr)
{
        for (;;) {
                _cleanup_txn_ struct txn t = {};
                char set[64];
                int v, rc, r;

                r = txn_begin(db, true, &t, reterr);
                if (r < 0)
                        return r;
                r = user_version(db, &v, reterr);
                if (r < 0)
                        return r;
                if (v > MOAT_DB_SCHEMA_VERSION || v < 0)
                        return moat_error_setx(reterr, -EPROTONOSUPPORT,
                                               "%s has schema version %d, this moat knows versions up to %d: it "
                                               "was written by a newer moat",
                                               path, v, MOAT_DB_SCHEMA_VERSION);
                if (v == MOAT_DB_SCHEMA_VERSION)
                        return 0;
                rc = sqlite3_exec(db->sql, migrations[v], NULL, NULL, NULL);
                if (rc != SQLITE_OK)
                        return db_fail(db->sql, rc, reterr, "%s: migrating the schema from version %d", path, v);
                snprintf(set, sizeof(set), "PRAGMA user_version = %d", v + 1);
                rc = sqlite3_exec(db->sql, set, NULL, NULL, NULL);
                if (rc != SQLITE_OK)
                        return db_fail(db->sql, rc, reterr, "%s: setting the schema version", path);
                r = txn_commit(&t, reterr);
                if (r < 0)
                        return r;
        }
}

static int run_check(struct moat_db *db, bool full, struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt st = {};
        _cleanup_free_ char *first = NULL;
        int r;

        r = prep(db, full ? "PRAGMA integrity_check(1)" : "PRAGMA quick_check(1)", &st, reterr);
        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -EIO, "state database: the integrity check returned nothing");
        r = col_dup(st.s, 0, &first);
        if (r < 0)
                return r;
        if (!streq(first, "ok"))
                return moat_error_setx(reterr, -EUCLEAN, "state database is damaged: %s", first);
        return 0;
}

int moat_db_check(struct moat_db *db, bool full, struct moat_error **reterr)
{
        pthread_mutex_lock(&db->lock);
        int r = run_check(db, full, reterr);
        pthread_mutex_unlock(&db->lock);
        return r;
}

/* Creates <dir>/moat.db 0600 if missing, and refuses anything but a
 * regular file (a symlink planted there included). */
static int prepare_file(const char *dir, const char *path, struct moat_error **reterr)
{
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int fd = -EBADF;
        struct stat sb;

        if (dfd < 0)
                return moat_error_set(reterr, errno, "opening the data root %s", dir);
        fd = openat(dfd, MOAT_DB_FILENAME, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (fd < 0)
                return moat_error_set(reterr, errno, "opening %s", path);
        if (fstat(fd, &sb) < 0)
                return moat_error_set(reterr, errno, "checking %s", path);
        if (!S_ISREG(sb.st_mode))
                return moat_error_setx(reterr, -EINVAL, "%s is not a regular file", path);
        if ((sb.st_mode & 077) && fchmod(fd, sb.st_mode & 0700) < 0)
                return moat_error_set(reterr, errno, "making %s private", path);
        return 0;
}

static int db_setup(struct moat_db *db, const char *path, const struct moat_db_options *opts,
                    struct moat_error **reterr)
{
        static const int off_or_on[][2] = {
                { SQLITE_DBCONFIG_DEFENSIVE, 1 },
                { SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0 },
                { SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0 },
        };
        _cleanup_free_ char *mode = NULL;
        int rc, r;

        for (size_t i = 0; i < ELEMENTSOF(off_or_on); i++) {
                rc = sqlite3_db_config(db->sql, off_or_on[i][0], off_or_on[i][1], NULL);
                if (rc != SQLITE_OK)
                        return db_fail(db->sql, rc, reterr, "%s: configuring SQLite", path);
        }
        rc = sqlite3_busy_timeout(db->sql, BUSY_TIMEOUT_MS);
        if (rc != SQLITE_OK)
                return db_fail(db->sql, rc, reterr, "%s: setting the busy timeout", path);

        if (opts && (opts->flags & MOAT_DB_OPEN_QUICK_CHECK)) {
                r = run_check(db, false, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "%s", path);
        }

        r = pragma_text(db, "PRAGMA journal_mode = WAL", &mode, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "%s: switching to WAL", path);
        if (!streq(mode, "wal"))
                return moat_error_setx(reterr, -EIO, "%s: SQLite refused WAL mode (journal mode is %s)", path,
                                       mode);
        rc = sqlite3_exec(db->sql,
                          "PRAGMA synchronous = NORMAL;"
                          "PRAGMA foreign_keys = ON;"
                          "PRAGMA cell_size_check = ON;",
                          NULL, NULL, NULL);
        if (rc != SQLITE_OK)
                return db_fail(db->sql, rc, reterr, "%s: setting pragmas", path);

        return migrate(db, path, reterr);
}

int moat_db_open(const char *dir, const struct moat_db_options *opts, struct moat_db **ret,
                 struct moat_error **reterr)
{
        _cleanup_free_ char *path = NULL;
        struct moat_db *db;
        int rc, r;

        if (strempty(dir))
                return moat_error_setx(reterr, -EINVAL, "no data root given for the state database");
        if (!sqlite3_threadsafe())
                return moat_error_setx(reterr, -ENOTSUP, "this SQLite library was built without thread support");
        if (asprintf(&path, "%s/%s", dir, MOAT_DB_FILENAME) < 0)
                return -ENOMEM;
        r = prepare_file(dir, path, reterr);
        if (r < 0)
                return r;

        db = calloc(1, sizeof(*db));
        if (!db)
                return -ENOMEM;
        pthread_mutex_init(&db->lock, NULL);
        db->events_max = opts && opts->events_max ? opts->events_max : MOAT_DB_EVENTS_MAX_DEFAULT;

        rc = sqlite3_open_v2(path, &db->sql,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
                                     SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc != SQLITE_OK)
                r = db_fail(db->sql, rc, reterr, "opening %s", path);
        else
                r = db_setup(db, path, opts, reterr);
        if (r < 0) {
                moat_db_close(db);
                return r;
        }
        *ret = db;
        return 0;
}

void moat_db_close(struct moat_db *db)
{
        if (!db)
                return;
        /* sqlite3_close_v2 checkpoints and removes the WAL when this was
         * the last connection; the callers' statements are all released by
         * now, the cached ones go here. */
        stmt_cache_clear(db);
        sqlite3_close_v2(db->sql);
        pthread_mutex_destroy(&db->lock);
        free(db);
}

/* ---- containers ---- */

#define CONTAINER_COLUMNS                                                                                  \
        "id, name, image_ref, image_id, created_ns, state, pid, monitor_pid, exit_code, started_ns, "     \
        "finished_ns, oom_killed, restart_count, error, doc"

void moat_db_container_done(struct moat_db_container *c)
{
        if (!c)
                return;
        free(c->name);
        free(c->image_ref);
        free(c->image_id);
        free(c->status.error);
        free(c->doc);
        *c = (struct moat_db_container) {};
}

void moat_db_container_free(struct moat_db_container *c)
{
        moat_db_container_done(c);
        free(c);
}

void moat_db_containers_free(struct moat_db_container *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                moat_db_container_done(&v[i]);
        free(v);
}

static int read_container(sqlite3_stmt *st, struct moat_db_container *c, struct moat_error **reterr)
{
        int state;

        *c = (struct moat_db_container) {};
        if (col_id(st, 0, c->id) < 0)
                return moat_error_setx(reterr, -EUCLEAN, "state database: a container id is not 64 characters");
        state = moat_container_state_from_string((const char *) sqlite3_column_text(st, 5));
        if (state < 0)
                return moat_error_setx(reterr, -EUCLEAN, "state database: container %s has an unknown state", c->id);
        c->created_ns = sqlite3_column_int64(st, 4);
        c->status = (struct moat_db_container_status) {
                .state = state,
                .pid = sqlite3_column_int(st, 6),
                .monitor_pid = sqlite3_column_int(st, 7),
                .exit_code = sqlite3_column_int(st, 8),
                .started_ns = sqlite3_column_int64(st, 9),
                .finished_ns = sqlite3_column_int64(st, 10),
                .oom_killed = sqlite3_column_int(st, 11) != 0,
                .restart_count = (uint32_t) sqlite3_column_int64(st, 12),
        };
        if (col_dup(st, 1, &c->name) < 0 || col_dup(st, 2, &c->image_ref) < 0 || col_dup(st, 3, &c->image_id) < 0 ||
            col_dup(st, 13, &c->status.error) < 0 || col_dup(st, 14, &c->doc) < 0) {
                moat_db_container_done(c);
                return -ENOMEM;
        }
        return 0;
}

/* One container by a column: 1 and *ret, or 0 when there is none, or 2
 * when there are several (only the prefix query can have several). */
static int container_query(struct moat_db *db, const char *where, const char *arg, struct moat_db_container **ret,
                           struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt st = {};
        _cleanup_free_ char *q = NULL;
        _cleanup_free_ struct moat_db_container *c = NULL;
        int r;

        if (asprintf(&q, "SELECT " CONTAINER_COLUMNS " FROM containers WHERE %s LIMIT 2", where) < 0)
                return -ENOMEM;
        r = prep(db, q, &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", arg);
        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r <= 0)
                return r;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        r = read_container(st.s, c, reterr);
        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r != 0) {
                moat_db_container_done(c);
                return r < 0 ? r : 2;
        }
        *ret = TAKE_PTR(c);
        return 1;
}

/* The owner of a name, as its id; 0 if free. */
static int name_owner(struct moat_db *db, const char *name, char owner[65], struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt st = {};
        int r;

        r = prep(db, "SELECT id FROM containers WHERE name = ?", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", name);
        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r <= 0)
                return r;
        if (col_id(st.s, 0, owner) < 0)
                return moat_error_setx(reterr, -EUCLEAN, "state database: a container id is not 64 characters");
        return 1;
}

static int name_conflict(const char *name, const char *owner, struct moat_error **reterr)
{
        return moat_error_setx(reterr, -EEXIST,
                               "Conflict. The container name \"/%s\" is already in use by container \"%s\". You "
                               "have to remove (or rename) that container to be able to reuse that name.",
                               name, owner);
}

static int row_exists(struct moat_db *db, const char *q, const char *arg, struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt st = {};
        int r = prep(db, q, &st, reterr);

        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", arg);
        if (r < 0)
                return r;
        return step(db, st.s, reterr);
}

/* Replaces the container's rows in container_volumes with vols; each
 * volume must exist. */
static int set_container_volumes(struct moat_db *db, const char *id, char **vols, struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt del = {}, ins = {};
        int r;

        r = prep(db, "DELETE FROM container_volumes WHERE container_id = ?", &del, reterr);
        if (r < 0)
                return r;
        r = bindf(db, del.s, reterr, "t", id);
        if (r < 0)
                return r;
        r = exec_bound(db, del.s, reterr);
        if (r < 0)
                return r;
        if (!vols[0])
                return 0;
        r = prep(db, "INSERT INTO container_volumes (container_id, volume_name) VALUES (?, ?)", &ins, reterr);
        if (r < 0)
                return r;
        for (char **v = vols; *v; v++) {
                r = row_exists(db, "SELECT 1 FROM volumes WHERE name = ?", *v, reterr);
                if (r < 0)
                        return r;
                if (r == 0)
                        return moat_error_setx(reterr, -ENOENT, "container %s mounts volume %s: no such volume", id,
                                               *v);
                sqlite3_reset(ins.s);
                r = bindf(db, ins.s, reterr, "tt", id, *v);
                if (r < 0)
                        return r;
                r = exec_bound(db, ins.s, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "container %s: recording its use of volume %s", id, *v);
        }
        return 0;
}

/* A container document and the volumes its Mounts name: parsed here, or
 * the caller's parse of it (parsed) trusted to be what the text says. */
static int container_doc_volumes(const char *id, const char *doc, const json_t *parsed, char ***ret,
                                 struct moat_error **reterr)
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        int r;

        if (!parsed) {
                r = check_json_object("container's document", doc, MOAT_DB_DOC_MAX, &j, reterr);
                if (r < 0)
                        return moat_error_wrap(reterr, r, "container %s", id);
                parsed = j;
        } else if (!doc)
                return moat_error_setx(reterr, -EINVAL, "container %s: container's document is missing", id);
        else if (strnlen(doc, MOAT_DB_DOC_MAX + 1) > MOAT_DB_DOC_MAX)
                return moat_error_setx(reterr, -E2BIG, "container %s: container's document is larger than %u bytes",
                                       id, MOAT_DB_DOC_MAX);
        else if (!json_is_object(parsed))
                return moat_error_setx(reterr, -EINVAL, "container %s: container's document is not a JSON object",
                                       id);
        return doc_volumes(id, parsed, ret, reterr);
}

static int event_check(const struct moat_db_event *e, struct moat_error **reterr);
static int event_insert(struct moat_db *db, const struct moat_db_event *e, int64_t *ret_seq,
                        struct moat_error **reterr);

static int container_insert(struct moat_db *db, const struct moat_db_container *c, const json_t *parsed,
                            const struct moat_db_event *ev, int64_t *ret_seq, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **vols = NULL;
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        const char *name = strip_slash(c->name);
        char owner[65];
        int r;

        r = check_id("container", c->id, reterr);
        if (r < 0)
                return r;
        r = check_container_name(name, reterr);
        if (r < 0)
                return r;
        r = check_text("container's image reference", c->image_ref, 1, IMAGE_REF_MAX, false, reterr);
        if (r < 0)
                return r;
        r = check_text("container's image id", c->image_id, 1, IMAGE_ID_MAX, false, reterr);
        if (r < 0)
                return r;
        if (c->created_ns < 0)
                return moat_error_setx(reterr, -EINVAL, "container %s: negative creation time", c->id);
        r = check_status(c->id, &c->status, reterr);
        if (r < 0)
                return r;
        r = container_doc_volumes(c->id, c->doc, parsed, &vols, reterr);
        if (r < 0)
                return r;
        if (ev) {
                r = event_check(ev, reterr);
                if (r < 0)
                        return r;
        }

        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = name_owner(db, name, owner, reterr);
        if (r < 0)
                return r;
        if (r > 0)
                return name_conflict(name, owner, reterr);
        r = row_exists(db, "SELECT 1 FROM containers WHERE id = ?", c->id, reterr);
        if (r < 0)
                return r;
        if (r > 0)
                return moat_error_setx(reterr, -EEXIST, "a container with id %s already exists", c->id);
        r = prep(db,
                 "INSERT INTO containers (" CONTAINER_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "ttttitdddiiditt", c->id, name, c->image_ref, c->image_id, c->created_ns,
                  state_names[c->status.state], (int) c->status.pid, (int) c->status.monitor_pid, c->status.exit_code,
                  c->status.started_ns, c->status.finished_ns, (int) c->status.oom_killed,
                  (int64_t) c->status.restart_count, c->status.error ? c->status.error : "", c->doc);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "inserting container %s", c->id);
        r = set_container_volumes(db, c->id, vols, reterr);
        if (r < 0)
                return r;
        if (ev) {
                r = event_insert(db, ev, ret_seq, reterr);
                if (r < 0)
                        return r;
        }
        return txn_commit(&t, reterr);
}

int moat_db_container_insert(struct moat_db *db, const struct moat_db_container *c, struct moat_error **reterr)
{
        return container_insert(db, c, NULL, NULL, NULL, reterr);
}

int moat_db_container_insert_parsed(struct moat_db *db, const struct moat_db_container *c, const json_t *doc,
                                    struct moat_error **reterr)
{
        return container_insert(db, c, doc, NULL, NULL, reterr);
}

int moat_db_container_insert_event(struct moat_db *db, const struct moat_db_container *c, const json_t *doc,
                                   const struct moat_db_event *ev, int64_t *ret_seq, struct moat_error **reterr)
{
        return container_insert(db, c, doc, ev, ret_seq, reterr);
}

int moat_db_container_get(struct moat_db *db, const char *id, struct moat_db_container **ret,
                          struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        int r;

        if (!is_hex_id(id, 64, 64))
                return moat_error_setx(reterr, -ENOENT, "No such container: %.80s", id ? id : "");
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = container_query(db, "id = ?", id, ret, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", id);
        return 0;
}

int moat_db_container_get_by_name(struct moat_db *db, const char *name, struct moat_db_container **ret,
                                  struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        const char *n = strip_slash(name);
        int r;

        if (!is_name(n))
                return moat_error_setx(reterr, -ENOENT, "No such container: %.300s", name ? name : "");
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = container_query(db, "name = ?", n, ret, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", name);
        return 0;
}

int moat_db_container_lookup(struct moat_db *db, const char *id_or_name, struct moat_db_container **ret,
                             struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        const char *s = id_or_name ? id_or_name : "";
        const char *n = strip_slash(s);
        int r;

        if (strnlen(s, MOAT_DB_NAME_MAX + 2) > MOAT_DB_NAME_MAX + 1)
                return moat_error_setx(reterr, -ENOENT, "No such container: %.300s...", s);
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        if (is_hex_id(s, 64, 64)) {
                r = container_query(db, "id = ?", s, ret, reterr);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        if (is_name(n)) {
                r = container_query(db, "name = ?", n, ret, reterr);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        if (is_hex_id(s, 1, 64)) {
                char pattern[66];

                snprintf(pattern, sizeof(pattern), "%s*", s);
                r = container_query(db, "id GLOB ?", pattern, ret, reterr);
                if (r < 0)
                        return r;
                if (r == 2)
                        return moat_error_setx(reterr, -EINVAL, "multiple IDs found with provided prefix: %s", s);
                if (r == 1)
                        return 0;
        }
        return moat_error_setx(reterr, -ENOENT, "No such container: %s", s);
}

int moat_db_container_list(struct moat_db *db, unsigned state_mask, struct moat_db_container **ret, size_t *ret_n,
                           struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        struct moat_db_container *v = NULL;
        size_t n = 0, cap = 0;
        int r;

        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db, "SELECT " CONTAINER_COLUMNS " FROM containers ORDER BY created_ns DESC, rowid DESC", &st, reterr);
        if (r < 0)
                return r;
        while ((r = step(db, st.s, reterr)) > 0) {
                int state = moat_container_state_from_string((const char *) sqlite3_column_text(st.s, 5));

                if (state >= 0 && state_mask && !(state_mask & MOAT_DB_STATE_MASK(state)))
                        continue;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct moat_db_container *nv = reallocarray(v, ncap, sizeof(*v));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        cap = ncap;
                }
                r = read_container(st.s, &v[n], reterr);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                moat_db_containers_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int event_check(const struct moat_db_event *e, struct moat_error **reterr);
static int event_insert(struct moat_db *db, const struct moat_db_event *e, int64_t *ret_seq,
                        struct moat_error **reterr);

static int container_update(struct moat_db *db, const char *id, const struct moat_db_container_status *s,
                            const char *doc, const json_t *parsed, const struct moat_db_event *ev, int64_t *ret_seq,
                            struct moat_error **reterr)
{
        _cleanup_strv_free_ char **vols = NULL;
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        int r;

        r = check_id("container", id, reterr);
        if (r < 0)
                return r;
        r = check_status(id, s, reterr);
        if (r < 0)
                return r;
        if (ev) {
                r = event_check(ev, reterr);
                if (r < 0)
                        return r;
        }
        if (doc) {
                r = container_doc_volumes(id, doc, parsed, &vols, reterr);
                if (r < 0)
                        return r;
        }

        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db,
                 "UPDATE containers SET state = ?, pid = ?, monitor_pid = ?, exit_code = ?, started_ns = ?, "
                 "finished_ns = ?, oom_killed = ?, restart_count = ?, error = ?, doc = coalesce(?, doc) WHERE id = ?",
                 &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "tdddiiditt" "t", state_names[s->state], (int) s->pid, (int) s->monitor_pid,
                  s->exit_code, s->started_ns, s->finished_ns, (int) s->oom_killed, (int64_t) s->restart_count,
                  s->error ? s->error : "", doc, id);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "updating container %s", id);
        if (sqlite3_changes(db->sql) == 0)
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", id);
        if (vols) {
                r = set_container_volumes(db, id, vols, reterr);
                if (r < 0)
                        return r;
        }
        if (ev) {
                r = event_insert(db, ev, ret_seq, reterr);
                if (r < 0)
                        return r;
        }
        return txn_commit(&t, reterr);
}

int moat_db_container_update(struct moat_db *db, const char *id, const struct moat_db_container_status *s,
                             const char *doc, struct moat_error **reterr)
{
        return container_update(db, id, s, doc, NULL, NULL, NULL, reterr);
}

int moat_db_container_update_parsed(struct moat_db *db, const char *id, const struct moat_db_container_status *s,
                                    const char *doc, const json_t *doc_json, struct moat_error **reterr)
{
        return container_update(db, id, s, doc, doc ? doc_json : NULL, NULL, NULL, reterr);
}

int moat_db_container_update_event(struct moat_db *db, const char *id, const struct moat_db_container_status *s,
                                   const char *doc, const json_t *doc_json, const struct moat_db_event *ev,
                                   int64_t *ret_seq, struct moat_error **reterr)
{
        return container_update(db, id, s, doc, doc ? doc_json : NULL, ev, ret_seq, reterr);
}

int moat_db_container_rename(struct moat_db *db, const char *id, const char *new_name, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        const char *name = strip_slash(new_name);
        char owner[65];
        int r;

        r = check_id("container", id, reterr);
        if (r < 0)
                return r;
        r = check_container_name(name, reterr);
        if (r < 0)
                return r;
        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = row_exists(db, "SELECT 1 FROM containers WHERE id = ?", id, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", id);
        r = name_owner(db, name, owner, reterr);
        if (r < 0)
                return r;
        if (r > 0 && streq(owner, id))
                return moat_error_setx(reterr, -EINVAL,
                                       "Renaming a container with the same name as its current name");
        if (r > 0)
                return name_conflict(name, owner, reterr);
        r = prep(db, "UPDATE containers SET name = ? WHERE id = ?", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "tt", name, id);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "renaming container %s", id);
        return txn_commit(&t, reterr);
}

/* DELETE ... WHERE <key> = arg in its own write transaction; -ENOENT with
 * missing_fmt when nothing matched. */
static int delete_one(struct moat_db *db, const char *q, const char *arg, const char *missing_fmt,
                      struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        int r;

        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db, q, &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", arg);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "removing %s", arg);
        if (sqlite3_changes(db->sql) == 0) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
                return moat_error_setx(reterr, -ENOENT, missing_fmt, arg);
#pragma GCC diagnostic pop
        }
        return txn_commit(&t, reterr);
}

int moat_db_container_delete(struct moat_db *db, const char *id, struct moat_error **reterr)
{
        if (!is_hex_id(id, 64, 64))
                return moat_error_setx(reterr, -ENOENT, "No such container: %.80s", id ? id : "");
        return delete_one(db, "DELETE FROM containers WHERE id = ?", id, "No such container: %s", reterr);
}

/* ---- exec sessions ---- */

#define EXEC_COLUMNS "id, container_id, doc, running, pid, exit_code"

void moat_db_exec_done(struct moat_db_exec *e)
{
        if (!e)
                return;
        free(e->doc);
        *e = (struct moat_db_exec) {};
}

void moat_db_exec_free(struct moat_db_exec *e)
{
        moat_db_exec_done(e);
        free(e);
}

void moat_db_execs_free(struct moat_db_exec *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                moat_db_exec_done(&v[i]);
        free(v);
}

static int read_exec(sqlite3_stmt *st, struct moat_db_exec *e, struct moat_error **reterr)
{
        *e = (struct moat_db_exec) {};
        if (col_id(st, 0, e->id) < 0 || col_id(st, 1, e->container_id) < 0)
                return moat_error_setx(reterr, -EUCLEAN,
                                       "state database: an exec or container id is not 64 characters");
        e->running = sqlite3_column_int(st, 3) != 0;
        e->pid = sqlite3_column_int(st, 4);
        e->exit_code = sqlite3_column_int(st, 5);
        return col_dup(st, 2, &e->doc);
}

int moat_db_exec_insert(struct moat_db *db, const struct moat_db_exec *e, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        int r;

        r = check_id("exec", e->id, reterr);
        if (r < 0)
                return r;
        r = check_id("container", e->container_id, reterr);
        if (r < 0)
                return r;
        if (e->pid < 0)
                return moat_error_setx(reterr, -EINVAL, "exec %s: negative pid", e->id);
        r = check_json_object("exec's document", e->doc, MOAT_DB_DOC_MAX, NULL, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "exec %s", e->id);

        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = row_exists(db, "SELECT 1 FROM containers WHERE id = ?", e->container_id, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", e->container_id);
        r = row_exists(db, "SELECT 1 FROM execs WHERE id = ?", e->id, reterr);
        if (r < 0)
                return r;
        if (r > 0)
                return moat_error_setx(reterr, -EEXIST, "an exec instance with id %s already exists", e->id);
        r = prep(db, "INSERT INTO execs (" EXEC_COLUMNS ") VALUES (?, ?, ?, ?, ?, ?)", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "tttddd", e->id, e->container_id, e->doc, (int) e->running, (int) e->pid,
                  e->exit_code);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "inserting exec %s", e->id);
        return txn_commit(&t, reterr);
}

int moat_db_exec_get(struct moat_db *db, const char *id, struct moat_db_exec **ret, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        _cleanup_(moat_db_exec_freep) struct moat_db_exec *e = NULL;
        int r;

        if (!is_hex_id(id, 64, 64))
                return moat_error_setx(reterr, -ENOENT, "No such exec instance: %.80s", id ? id : "");
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db, "SELECT " EXEC_COLUMNS " FROM execs WHERE id = ?", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", id);
        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "No such exec instance: %s", id);
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        r = read_exec(st.s, e, reterr);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(e);
        return 0;
}

int moat_db_exec_update(struct moat_db *db, const struct moat_db_exec *e, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        int r;

        if (!is_hex_id(e->id, 64, 64))
                return moat_error_setx(reterr, -ENOENT, "No such exec instance: %.80s", e->id);
        if (e->pid < 0)
                return moat_error_setx(reterr, -EINVAL, "exec %s: negative pid", e->id);
        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db, "UPDATE execs SET running = ?, pid = ?, exit_code = ? WHERE id = ?", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "dddt", (int) e->running, (int) e->pid, e->exit_code, e->id);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "updating exec %s", e->id);
        if (sqlite3_changes(db->sql) == 0)
                return moat_error_setx(reterr, -ENOENT, "No such exec instance: %s", e->id);
        return txn_commit(&t, reterr);
}

int moat_db_exec_list(struct moat_db *db, const char *container_id, struct moat_db_exec **ret, size_t *ret_n,
                      struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        struct moat_db_exec *v = NULL;
        size_t n = 0, cap = 0;
        int r;

        if (!is_hex_id(container_id, 64, 64))
                return moat_error_setx(reterr, -ENOENT, "No such container: %.80s", container_id ? container_id : "");
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = row_exists(db, "SELECT 1 FROM containers WHERE id = ?", container_id, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "No such container: %s", container_id);
        r = prep(db, "SELECT " EXEC_COLUMNS " FROM execs WHERE container_id = ? ORDER BY rowid", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", container_id);
        if (r < 0)
                return r;
        while ((r = step(db, st.s, reterr)) > 0) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        struct moat_db_exec *nv = reallocarray(v, ncap, sizeof(*v));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        cap = ncap;
                }
                r = read_exec(st.s, &v[n], reterr);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                moat_db_execs_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int moat_db_exec_delete(struct moat_db *db, const char *id, struct moat_error **reterr)
{
        if (!is_hex_id(id, 64, 64))
                return moat_error_setx(reterr, -ENOENT, "No such exec instance: %.80s", id ? id : "");
        return delete_one(db, "DELETE FROM execs WHERE id = ?", id, "No such exec instance: %s", reterr);
}

/* ---- volumes ---- */

#define VOLUME_COLUMNS                                                                                 \
        "name, driver, mountpoint, created_ns, labels, options, "                                     \
        "(SELECT count(*) FROM container_volumes WHERE volume_name = volumes.name)"

void moat_db_volume_done(struct moat_db_volume *v)
{
        if (!v)
                return;
        free(v->name);
        free(v->driver);
        free(v->mountpoint);
        free(v->labels);
        free(v->options);
        *v = (struct moat_db_volume) {};
}

void moat_db_volume_free(struct moat_db_volume *v)
{
        moat_db_volume_done(v);
        free(v);
}

void moat_db_volumes_free(struct moat_db_volume *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                moat_db_volume_done(&v[i]);
        free(v);
}

static int read_volume(sqlite3_stmt *st, struct moat_db_volume *v)
{
        *v = (struct moat_db_volume) {};
        v->created_ns = sqlite3_column_int64(st, 3);
        v->n_users = (size_t) sqlite3_column_int64(st, 6);
        if (col_dup(st, 0, &v->name) < 0 || col_dup(st, 1, &v->driver) < 0 || col_dup(st, 2, &v->mountpoint) < 0 ||
            col_dup(st, 4, &v->labels) < 0 || col_dup(st, 5, &v->options) < 0) {
                moat_db_volume_done(v);
                return -ENOMEM;
        }
        return 0;
}

int moat_db_volume_insert(struct moat_db *db, const struct moat_db_volume *v, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        const char *labels = v->labels ? v->labels : "{}", *options = v->options ? v->options : "{}";
        int r;

        r = check_volume_name(v->name, reterr);
        if (r < 0)
                return r;
        r = check_text("volume's driver", v->driver, 1, DRIVER_MAX, false, reterr);
        if (r >= 0)
                r = check_text("volume's mountpoint", v->mountpoint, 1, MOUNTPOINT_MAX, false, reterr);
        if (r >= 0 && v->mountpoint[0] != '/')
                r = moat_error_setx(reterr, -EINVAL, "volume's mountpoint %s is not an absolute path", v->mountpoint);
        if (r >= 0 && v->created_ns < 0)
                r = moat_error_setx(reterr, -EINVAL, "negative creation time");
        if (r >= 0)
                r = check_json_object("volume's labels", labels, MOAT_DB_DOC_MAX, NULL, reterr);
        if (r >= 0)
                r = check_json_object("volume's options", options, MOAT_DB_DOC_MAX, NULL, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "volume %s", v->name);

        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = row_exists(db, "SELECT 1 FROM volumes WHERE name = ?", v->name, reterr);
        if (r < 0)
                return r;
        if (r > 0)
                return moat_error_setx(reterr, -EEXIST, "volume %s already exists", v->name);
        r = prep(db,
                 "INSERT INTO volumes (name, driver, mountpoint, created_ns, labels, options) "
                 "VALUES (?, ?, ?, ?, ?, ?)",
                 &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "tttitt", v->name, v->driver, v->mountpoint, v->created_ns, labels, options);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "inserting volume %s", v->name);
        return txn_commit(&t, reterr);
}

int moat_db_volume_get(struct moat_db *db, const char *name, struct moat_db_volume **ret, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        _cleanup_(moat_db_volume_freep) struct moat_db_volume *v = NULL;
        int r;

        if (!is_name(name))
                return moat_error_setx(reterr, -ENOENT, "get %.300s: no such volume", name ? name : "");
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db, "SELECT " VOLUME_COLUMNS " FROM volumes WHERE name = ?", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", name);
        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "get %s: no such volume", name);
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        r = read_volume(st.s, v);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(v);
        return 0;
}

int moat_db_volume_list(struct moat_db *db, struct moat_db_volume **ret, size_t *ret_n, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        struct moat_db_volume *v = NULL;
        size_t n = 0, cap = 0;
        int r;

        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db, "SELECT " VOLUME_COLUMNS " FROM volumes ORDER BY name", &st, reterr);
        if (r < 0)
                return r;
        while ((r = step(db, st.s, reterr)) > 0) {
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct moat_db_volume *nv = reallocarray(v, ncap, sizeof(*v));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        cap = ncap;
                }
                r = read_volume(st.s, &v[n]);
                if (r < 0)
                        break;
                n++;
        }
        if (r < 0) {
                moat_db_volumes_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int volume_users(struct moat_db *db, const char *name, char ***ret, struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt st = {};
        _cleanup_strv_free_ char **v = NULL;
        size_t n = 0, cap = 0;
        int r;

        r = prep(db, "SELECT container_id FROM container_volumes WHERE volume_name = ? ORDER BY container_id", &st,
                 reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", name);
        if (r < 0)
                return r;
        v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        while ((r = step(db, st.s, reterr)) > 0) {
                if (n + 1 >= cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        char **nv = reallocarray(v, ncap, sizeof(char *));
                        if (!nv)
                                return -ENOMEM;
                        v = nv;
                        cap = ncap;
                }
                v[n + 1] = NULL;
                r = col_dup(st.s, 0, &v[n]);
                if (r < 0)
                        return r;
                n++;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(v);
        return 0;
}

int moat_db_volume_users(struct moat_db *db, const char *name, char ***ret, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        int r;

        if (!is_name(name))
                return moat_error_setx(reterr, -ENOENT, "get %.300s: no such volume", name ? name : "");
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = row_exists(db, "SELECT 1 FROM volumes WHERE name = ?", name, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "get %s: no such volume", name);
        return volume_users(db, name, ret, reterr);
}

int moat_db_volume_delete(struct moat_db *db, const char *name, struct moat_error **reterr)
{
        _cleanup_strv_free_ char **users = NULL;
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        int r;

        if (!is_name(name))
                return moat_error_setx(reterr, -ENOENT, "remove %.300s: no such volume", name ? name : "");
        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = volume_users(db, name, &users, reterr);
        if (r < 0)
                return r;
        if (users[0]) {
                _cleanup_free_ char *list = NULL;
                size_t len = 0;

                for (char **u = users; *u; u++)
                        len += strlen(*u) + 2;
                list = calloc(len + 1, 1);
                if (!list)
                        return -ENOMEM;
                for (char **u = users; *u; u++) {
                        if (u != users)
                                strcat(list, ", ");
                        strcat(list, *u);
                }
                return moat_error_setx(reterr, -EBUSY, "remove %s: volume is in use - [%s]", name, list);
        }
        r = prep(db, "DELETE FROM volumes WHERE name = ?", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", name);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "removing volume %s", name);
        if (sqlite3_changes(db->sql) == 0)
                return moat_error_setx(reterr, -ENOENT, "remove %s: no such volume", name);
        return txn_commit(&t, reterr);
}

/* ---- events ---- */

void moat_db_event_done(struct moat_db_event *e)
{
        if (!e)
                return;
        free(e->type);
        free(e->action);
        free(e->actor_id);
        free(e->attributes);
        *e = (struct moat_db_event) {};
}

void moat_db_events_free(struct moat_db_event *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                moat_db_event_done(&v[i]);
        free(v);
}

static int event_check(const struct moat_db_event *e, struct moat_error **reterr)
{
        const char *attrs = e->attributes ? e->attributes : "{}";
        int r;

        r = check_text("event type", e->type, 1, EVENT_TYPE_MAX, false, reterr);
        /* Multi-line: Docker's "exec_create: <command>" holds the command. */
        if (r >= 0)
                r = check_text("event action", e->action, 1, EVENT_ACTION_MAX, true, reterr);
        if (r >= 0)
                r = check_text("event actor id", e->actor_id, 0, EVENT_ACTOR_MAX, false, reterr);
        if (r >= 0)
                r = check_json_object("event attributes", attrs, EVENT_ATTRS_MAX, NULL, reterr);
        if (r >= 0 && e->time_ns < 0)
                r = moat_error_setx(reterr, -EINVAL, "event time is negative");
        return r;
}

/* In an open write transaction: the event, then the prune of all but the
 * newest events_max. */
static int event_insert(struct moat_db *db, const struct moat_db_event *e, int64_t *ret_seq,
                        struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt ins = {}, prune = {};
        const char *attrs = e->attributes ? e->attributes : "{}";
        int64_t seq;
        int r;

        r = prep(db, "INSERT INTO events (time_ns, type, action, actor_id, attributes) VALUES (?, ?, ?, ?, ?)", &ins,
                 reterr);
        if (r < 0)
                return r;
        r = bindf(db, ins.s, reterr, "itttt", e->time_ns, e->type, e->action, e->actor_id, attrs);
        if (r < 0)
                return r;
        r = exec_bound(db, ins.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "recording event %s %s", e->type, e->action);
        seq = sqlite3_last_insert_rowid(db->sql);
        r = prep(db, "DELETE FROM events WHERE seq <= ?", &prune, reterr);
        if (r < 0)
                return r;
        r = bindf(db, prune.s, reterr, "i", seq - (int64_t) db->events_max);
        if (r < 0)
                return r;
        r = exec_bound(db, prune.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "pruning old events");
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

bool moat_db_event_valid(const struct moat_db_event *e)
{
        _cleanup_error_ struct moat_error *ignored = NULL;
        return event_check(e, &ignored) >= 0;
}

int moat_db_event_append(struct moat_db *db, const struct moat_db_event *e, int64_t *ret_seq,
                         struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        int64_t seq;
        int r;

        r = event_check(e, reterr);
        if (r < 0)
                return r;
        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = event_insert(db, e, &seq, reterr);
        if (r < 0)
                return r;
        r = txn_commit(&t, reterr);
        if (r < 0)
                return r;
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

int moat_db_event_list(struct moat_db *db, const struct moat_db_event_query *q, struct moat_db_event **ret,
                       size_t *ret_n, struct moat_error **reterr)
{
        static const struct moat_db_event_query all = {};
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        struct moat_db_event *v = NULL;
        size_t n = 0, cap = 0;
        int r;

        if (!q)
                q = &all;
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db,
                 "SELECT seq, time_ns, type, action, actor_id, attributes FROM events "
                 "WHERE time_ns >= ? AND (? = 0 OR time_ns <= ?) AND seq > ? ORDER BY seq LIMIT ?",
                 &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "iiiii", q->since_ns, q->until_ns, q->until_ns, q->after_seq,
                  q->limit && q->limit <= INT64_MAX ? (int64_t) q->limit : (int64_t) -1);
        if (r < 0)
                return r;
        while ((r = step(db, st.s, reterr)) > 0) {
                struct moat_db_event *e;

                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct moat_db_event *nv = reallocarray(v, ncap, sizeof(*v));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        cap = ncap;
                }
                e = &v[n++];
                *e = (struct moat_db_event) {
                        .seq = sqlite3_column_int64(st.s, 0),
                        .time_ns = sqlite3_column_int64(st.s, 1),
                };
                if (col_dup(st.s, 2, &e->type) < 0 || col_dup(st.s, 3, &e->action) < 0 ||
                    col_dup(st.s, 4, &e->actor_id) < 0 || col_dup(st.s, 5, &e->attributes) < 0) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r < 0) {
                moat_db_events_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ---- metadata ---- */

static int check_key(const char *key, struct moat_error **reterr)
{
        return check_text("metadata key", key, 1, MOAT_DB_META_KEY_MAX, false, reterr);
}

static int meta_read(struct moat_db *db, const char *key, char **ret, struct moat_error **reterr)
{
        _cleanup_stmt_ struct stmt st = {};
        int r;

        r = prep(db, "SELECT value FROM meta WHERE key = ?", &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "t", key);
        if (r < 0)
                return r;
        r = step(db, st.s, reterr);
        if (r < 0)
                return r;
        if (r == 0)
                return moat_error_setx(reterr, -ENOENT, "daemon metadata %s is not set", key);
        return col_dup(st.s, 0, ret);
}

int moat_db_meta_get(struct moat_db *db, const char *key, char **ret, struct moat_error **reterr)
{
        _cleanup_txn_ struct txn t = {};
        int r;

        r = check_key(key, reterr);
        if (r < 0)
                return r;
        r = txn_begin(db, false, &t, reterr);
        if (r < 0)
                return r;
        return meta_read(db, key, ret, reterr);
}

static int meta_write(struct moat_db *db, const char *q, const char *key, const char *value, char **ret,
                      struct moat_error **reterr)
{
        _cleanup_free_ char *now = NULL;
        _cleanup_txn_ struct txn t = {};
        _cleanup_stmt_ struct stmt st = {};
        int r;

        r = check_key(key, reterr);
        if (r < 0)
                return r;
        r = check_text("metadata value", value, 0, MOAT_DB_META_VALUE_MAX, true, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "daemon metadata %s", key);
        r = txn_begin(db, true, &t, reterr);
        if (r < 0)
                return r;
        r = prep(db, q, &st, reterr);
        if (r < 0)
                return r;
        r = bindf(db, st.s, reterr, "tt", key, value);
        if (r < 0)
                return r;
        r = exec_bound(db, st.s, reterr);
        if (r < 0)
                return moat_error_wrap(reterr, r, "setting daemon metadata %s", key);
        if (ret) {
                r = meta_read(db, key, &now, reterr);
                if (r < 0)
                        return r;
        }
        r = txn_commit(&t, reterr);
        if (r < 0)
                return r;
        if (ret)
                *ret = TAKE_PTR(now);
        return 0;
}

int moat_db_meta_set(struct moat_db *db, const char *key, const char *value, struct moat_error **reterr)
{
        return meta_write(db,
                          "INSERT INTO meta (key, value) VALUES (?, ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                          key, value, NULL, reterr);
}

int moat_db_meta_set_default(struct moat_db *db, const char *key, const char *value, char **ret,
                             struct moat_error **reterr)
{
        return meta_write(db, "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", key, value, ret, reterr);
}

int moat_db_meta_delete(struct moat_db *db, const char *key, struct moat_error **reterr)
{
        int r = check_key(key, reterr);

        if (r < 0)
                return r;
        return delete_one(db, "DELETE FROM meta WHERE key = ?", key, "daemon metadata %s is not set", reterr);
}
