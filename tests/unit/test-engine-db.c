/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit test of the engine's state database (src/engine/db.c): every
 * operation and constraint, Docker's messages, schema versions, use from
 * several threads and processes, and crash consistency: a child running a
 * long deterministic sequence of transactions is SIGKILLed at random
 * moments; after each kill the file must open, pass integrity_check and
 * hold exactly the first k steps of the sequence, where k is the last step
 * the child reported committed or the one after it (killed between commit
 * and report). The expected contents come from replaying the same steps
 * into a second database.
 */

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "engine/db.h"
#include "tap.h"

static char tmpdir[] = "/tmp/moat-test-db-XXXXXX";

MOAT_PRINTF(2, 3)
static void xasprintf(char **ret, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret, fmt, ap) < 0)
                abort();
        va_end(ap);
}

static char *subdir(const char *name)
{
        char *p = NULL;
        xasprintf(&p, "%s/%s", tmpdir, name);
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                abort();
        return p;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
        (void) sb;
        (void) type;
        (void) ftw;
        return remove(path);
}

static void make_id(char out[65], char tag, unsigned long n)
{
        snprintf(out, 65, "%c%063lx", tag, n);
}

static const char *msg(struct moat_error *e)
{
        return e ? e->msg : "(no error)";
}

/* A container of this test: id from (tag, n), name "c<n>", volumes from the
 * given list mounted. */
static int insert_container(struct moat_db *db, char tag, unsigned long n, const char *name, const char *vol,
                            int64_t created, struct moat_error **e)
{
        char doc[512], id[65];
        struct moat_db_container c = {
                .name = (char *) name,
                .image_ref = (char *) "busybox:latest",
                .image_id = (char *) "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                .created_ns = created,
                .status = { .state = MOAT_CONTAINER_CREATED },
                .doc = doc,
        };

        make_id(id, tag, n);
        memcpy(c.id, id, sizeof(id));
        if (vol)
                snprintf(doc, sizeof(doc),
                         "{\"Config\":{\"Env\":[\"A=%lu\"]},\"Mounts\":[{\"Type\":\"bind\",\"Source\":\"/x\"},"
                         "{\"Type\":\"volume\",\"Name\":\"%s\",\"Destination\":\"/data\"},"
                         "{\"Type\":\"volume\",\"Name\":\"%s\",\"Destination\":\"/data2\"}]}",
                         n, vol, vol);
        else
                snprintf(doc, sizeof(doc), "{\"Config\":{\"Env\":[\"A=%lu\"]},\"Mounts\":[]}", n);
        return moat_db_container_insert(db, &c, e);
}

static int insert_volume(struct moat_db *db, const char *name, struct moat_error **e)
{
        char mp[256];
        struct moat_db_volume v = {
                .name = (char *) name,
                .driver = (char *) "local",
                .mountpoint = mp,
                .created_ns = 1700000000000000000,
                .labels = (char *) "{\"a\":\"b\"}",
        };
        snprintf(mp, sizeof(mp), "/var/lib/moat/volumes/%s/_data", name);
        return moat_db_volume_insert(db, &v, e);
}

static int raw_exec_int(const char *path, const char *q, long long *ret)
{
        sqlite3 *s = NULL;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_open_v2(path, &s, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(s, q, -1, &st, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW && ret)
                        *ret = sqlite3_column_int64(st, 0);
                rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_finalize(st);
        sqlite3_close(s);
        return rc;
}

/* ---- open, files, versions ---- */

static void test_open(void)
{
        _cleanup_free_ char *dir = subdir("open"), *path = NULL, *wal = NULL;
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        struct stat sb;
        long long v = -1;
        int r;

        r = moat_db_open(dir, NULL, &db, &e);
        is_int(r, 0, "open a fresh database: %s", msg(e));
        if (r < 0)
                return;
        xasprintf(&path, "%s/moat.db", dir);
        xasprintf(&wal, "%s/moat.db-wal", dir);
        ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "moat.db is 0600 (%o)", sb.st_mode & 0777);
        r = moat_db_meta_set(db, "daemon-id", "ABCD:EFGH", &e);
        is_int(r, 0, "a first write");
        ok(stat(wal, &sb) == 0 && (sb.st_mode & 0777) == 0600, "moat.db-wal exists and is 0600 (%o)",
           sb.st_mode & 0777);
        is_int(raw_exec_int(path, "PRAGMA user_version", &v), SQLITE_OK, "read user_version");
        is_int(v, MOAT_DB_SCHEMA_VERSION, "user_version is the schema version");

        /* Every descriptor SQLite opened is close-on-exec. */
        {
                _cleanup_closedir_ DIR *d = opendir("/proc/self/fd");
                struct dirent *de;
                int leaks = 0, dbfds = 0;
                char target[4096];
                while (d && (de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        ssize_t n = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                        if (n < 0)
                                continue;
                        target[n] = 0;
                        if (!startswith(target, dir))
                                continue;
                        dbfds++;
                        int fl = fcntl(atoi(de->d_name), F_GETFD);
                        if (fl < 0 || !(fl & FD_CLOEXEC))
                                leaks++;
                }
                ok(dbfds >= 2 && leaks == 0, "the database's %d descriptors are all O_CLOEXEC (%d are not)", dbfds,
                   leaks);
        }
        is_int(moat_db_check(db, true, &e), 0, "integrity_check is ok");
        moat_db_close(TAKE_PTR(db));
        ok(access(wal, F_OK) < 0, "closing the last handle checkpoints and removes the WAL");

        /* Reopen: the data is there, nothing is migrated twice. */
        r = moat_db_open(dir, &(struct moat_db_options) { .flags = MOAT_DB_OPEN_QUICK_CHECK }, &db, &e);
        is_int(r, 0, "reopen with quick_check: %s", msg(e));
        if (r == 0) {
                _cleanup_free_ char *val = NULL;
                is_int(moat_db_meta_get(db, "daemon-id", &val, &e), 0, "meta survives a reopen");
                is_str(val, "ABCD:EFGH", "daemon-id value");
        }
}

static void test_versions(void)
{
        _cleanup_free_ char *d0 = subdir("v0"), *dnew = subdir("vnew"), *dbad = subdir("vbad"),
                            *dlink = subdir("vlink"), *p = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        int r;

        /* A file at user_version 0 holding an unrelated table (as an
         * earlier, unversioned prototype might have left): migrated. */
        xasprintf(&p, "%s/moat.db", d0);
        is_int(raw_exec_int(p, "CREATE TABLE old (x INTEGER)", NULL), SQLITE_OK, "make a user_version 0 file");
        {
                _cleanup_error_ struct moat_error *e = NULL;
                r = moat_db_open(d0, NULL, &db, &e);
                is_int(r, 0, "open migrates from user_version 0: %s", msg(e));
        }
        if (r == 0) {
                _cleanup_error_ struct moat_error *e = NULL;
                long long v = -1, mode = -1;
                is_int(insert_volume(db, "migrated", &e), 0, "the migrated schema works: %s", msg(e));
                moat_db_close(TAKE_PTR(db));
                raw_exec_int(p, "PRAGMA user_version", &v);
                is_int(v, MOAT_DB_SCHEMA_VERSION, "user_version after the migration");
                is_int(raw_exec_int(p, "SELECT count(*) FROM old", &mode), SQLITE_OK, "an unknown table is kept");
                ok(stat(p, &(struct stat) {}) == 0, "file still there");
        }

        /* Newer than this code: refused, and left alone. */
        free(p);
        xasprintf(&p, "%s/moat.db", dnew);
        is_int(raw_exec_int(p, "PRAGMA user_version = 99", NULL), SQLITE_OK, "make a user_version 99 file");
        {
                _cleanup_error_ struct moat_error *e = NULL;
                long long v = 0;
                r = moat_db_open(dnew, NULL, &db, &e);
                is_int(r, -EPROTONOSUPPORT, "a newer schema is refused");
                ok(e && strstr(e->msg, "schema version 99") && strstr(e->msg, "newer moat"), "message: %s", msg(e));
                raw_exec_int(p, "PRAGMA user_version", &v);
                is_int(v, 99, "the newer file is untouched");
        }

        /* Not a database. */
        free(p);
        xasprintf(&p, "%s/moat.db", dbad);
        {
                _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                char junk[8192];
                memset(junk, 'x', sizeof(junk));
                ok(fd >= 0 && write(fd, junk, sizeof(junk)) == (ssize_t) sizeof(junk), "write a junk file");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                r = moat_db_open(dbad, &(struct moat_db_options) { .flags = MOAT_DB_OPEN_QUICK_CHECK }, &db, &e);
                is_int(r, -EUCLEAN, "a junk file is refused as damaged: %s", msg(e));
        }

        /* A symlink planted as moat.db is not followed. */
        free(p);
        xasprintf(&p, "%s/moat.db", dlink);
        ok(symlink("/etc/passwd", p) == 0, "plant a symlink");
        {
                _cleanup_error_ struct moat_error *e = NULL;
                r = moat_db_open(dlink, NULL, &db, &e);
                is_int(r, -ELOOP, "a symlink is refused: %s", msg(e));
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                r = moat_db_open("/nonexistent-moat-dir", NULL, &db, &e);
                is_int(r, -ENOENT, "a missing data root: %s", msg(e));
        }
}

/* ---- containers ---- */

static void test_containers(struct moat_db *db)
{
        char id1[65], id2[65], id3[65];
        int r;

        make_id(id1, 'a', 0x1001);
        make_id(id2, 'a', 0x1002);
        make_id(id3, 'b', 0x1003);
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(insert_container(db, 'a', 0x1001, "/web", NULL, 100, &e), 0, "insert /web: %s", msg(e));
                is_int(insert_container(db, 'a', 0x1002, "db", NULL, 200, &e), 0, "insert db");
                is_int(insert_container(db, 'b', 0x1003, "cache.1_x-y", NULL, 300, &e), 0, "insert cache");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                char want[512];
                r = insert_container(db, 'c', 1, "web", NULL, 400, &e);
                is_int(r, -EEXIST, "a taken name is refused");
                snprintf(want, sizeof(want),
                         "Conflict. The container name \"/web\" is already in use by container \"%s\". You have to "
                         "remove (or rename) that container to be able to reuse that name.",
                         id1);
                is_str(msg(e), want, "Docker's conflict message");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                r = insert_container(db, 'a', 0x1001, "other", NULL, 400, &e);
                is_int(r, -EEXIST, "a taken id is refused: %s", msg(e));
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                static const char *const bad[] = { "a", "_x", "x/y", "x y", "-x", "" };
                for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                        moat_error_freep(&e);
                        r = insert_container(db, 'c', 2, bad[i], NULL, 400, &e);
                        is_int(r, -EINVAL, "name \"%s\" refused: %s", bad[i], msg(e));
                }
                char longname[300];
                memset(longname, 'n', sizeof(longname));
                longname[256] = 0;
                moat_error_freep(&e);
                is_int(insert_container(db, 'c', 2, longname, NULL, 400, &e), -EINVAL, "256-byte name refused");
                longname[255] = 0;
                moat_error_freep(&e);
                is_int(insert_container(db, 'c', 2, longname, NULL, 400, &e), 0, "255-byte name accepted: %s",
                       msg(e));
                char id[65];
                make_id(id, 'c', 2);
                moat_error_freep(&e);
                is_int(moat_db_container_delete(db, id, &e), 0, "delete it");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                struct moat_db_container c = {
                        .name = (char *) "badjson",
                        .image_ref = (char *) "x",
                        .image_id = (char *) "sha256:00",
                        .doc = (char *) "{\"Config\":",
                };
                make_id(c.id, 'd', 1);
                r = moat_db_container_insert(db, &c, &e);
                ok(r == -EINVAL && strstr(msg(e), "not valid JSON"), "invalid JSON refused: %s", msg(e));
                moat_error_freep(&e);
                c.doc = (char *) "[]";
                ok(moat_db_container_insert(db, &c, &e) == -EINVAL && strstr(msg(e), "not a JSON object"),
                   "non-object refused: %s", msg(e));
                moat_error_freep(&e);
                size_t big = MOAT_DB_DOC_MAX + 10;
                _cleanup_free_ char *doc = malloc(big + 1);
                memset(doc, ' ', big);
                doc[0] = '{';
                doc[big - 1] = '}';
                doc[big] = 0;
                c.doc = doc;
                is_int(moat_db_container_insert(db, &c, &e), -E2BIG, "a document over 1 MiB refused: %s", msg(e));
                moat_error_freep(&e);
                c.doc = (char *) "{}";
                memcpy(c.id, "ABC", 4);
                is_int(moat_db_container_insert(db, &c, &e), -EINVAL, "a bad id refused: %s", msg(e));
                moat_error_freep(&e);
                make_id(c.id, 'd', 1);
                c.status.state = _MOAT_CONTAINER_STATE_MAX;
                is_int(moat_db_container_insert(db, &c, &e), -EINVAL, "a bad state refused: %s", msg(e));
        }

        /* get, by name, lookup */
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                r = moat_db_container_get(db, id1, &c, &e);
                is_int(r, 0, "get by id");
                if (r == 0) {
                        is_str(c->name, "web", "the name is stored without the slash");
                        is_str(c->image_ref, "busybox:latest", "image ref");
                        is_int(c->created_ns, 100, "created");
                        is_int(c->status.state, MOAT_CONTAINER_CREATED, "state");
                        is_str(c->status.error, "", "no error");
                        ok(strstr(c->doc, "\"A=4097\"") != NULL, "document");
                }
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_container_ struct moat_db_container *c = NULL, *c2 = NULL;
                is_int(moat_db_container_get_by_name(db, "/db", &c, &e), 0, "get by /name");
                ok(c && streq(c->id, id2), "it is db");
                is_int(moat_db_container_get_by_name(db, "db", &c2, &e), 0, "get by name");
                ok(c2 && streq(c2->id, id2), "it is db");
        }
        {
                static const struct {
                        const char *q;
                        int r;
                        char tag; /* which one, or 0 */
                        const char *msg;
                } cases[] = {
                        { "web", 0, 'w', NULL },
                        { "/web", 0, 'w', NULL },
                        { "b", 0, 'c', NULL },
                        { "b000", 0, 'c', NULL },
                        { "a", -EINVAL, 0, "multiple IDs found with provided prefix: a" },
                        { "nope", -ENOENT, 0, "No such container: nope" },
                        { "c", -ENOENT, 0, "No such container: c" },
                        { "", -ENOENT, 0, "No such container: " },
                        { "A", -ENOENT, 0, NULL },
                        { "a*", -ENOENT, 0, NULL },
                        { "a%", -ENOENT, 0, NULL },
                };
                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        _cleanup_error_ struct moat_error *e = NULL;
                        _cleanup_db_container_ struct moat_db_container *c = NULL;
                        r = moat_db_container_lookup(db, cases[i].q, &c, &e);
                        is_int(r, cases[i].r, "lookup \"%s\": %s", cases[i].q, msg(e));
                        if (cases[i].tag)
                                ok(c && streq(c->id, cases[i].tag == 'w' ? id1 : id3), "lookup \"%s\" found it",
                                   cases[i].q);
                        if (cases[i].msg)
                                is_str(msg(e), cases[i].msg, "lookup \"%s\" message", cases[i].q);
                }
                /* Long prefixes: 63 characters are shared by web and db; 63 of cache are unique. */
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                char prefix[65];
                memcpy(prefix, id1, 63);
                prefix[63] = 0;
                is_int(moat_db_container_lookup(db, prefix, &c, &e), -EINVAL,
                       "a 63-character shared prefix is ambiguous");
                moat_error_freep(&e);
                memcpy(prefix, id3, 63);
                is_int(moat_db_container_lookup(db, prefix, &c, &e), 0, "a 63-character prefix is unique");
                ok(c && streq(c->id, id3), "it is cache");
                moat_db_container_freep(&c);

                /* A name that looks like an id prefix wins over the prefix. */
                is_int(insert_container(db, 'e', 1, "b0", NULL, 50, &e), 0, "insert a container named b0");
                is_int(moat_db_container_lookup(db, "b0", &c, &e), 0, "lookup b0");
                ok(c && streq(c->name, "b0"), "a name wins over an id prefix (as Docker)");
                char id[65];
                make_id(id, 'e', 1);
                is_int(moat_db_container_delete(db, id, &e), 0, "delete b0");
        }

        /* list */
        {
                _cleanup_error_ struct moat_error *e = NULL;
                struct moat_db_container *v = NULL;
                size_t n = 0;
                r = moat_db_container_list(db, 0, &v, &n, &e);
                is_int(r, 0, "list");
                is_int(n, 3, "three containers");
                ok(n == 3 && streq(v[0].id, id3) && streq(v[1].id, id2) && streq(v[2].id, id1), "newest first");
                moat_db_containers_free(v, n);
        }

        /* update */
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                struct moat_db_container_status st = {
                        .state = MOAT_CONTAINER_RUNNING,
                        .pid = 4242,
                        .monitor_pid = 4241,
                        .started_ns = 1234567890123456789,
                        .restart_count = 3,
                };
                r = moat_db_container_update(db, id2, &st, NULL, &e);
                is_int(r, 0, "update db to running: %s", msg(e));
                is_int(moat_db_container_get(db, id2, &c, &e), 0, "get it");
                if (c) {
                        is_int(c->status.state, MOAT_CONTAINER_RUNNING, "running");
                        is_int(c->status.pid, 4242, "pid");
                        is_int(c->status.monitor_pid, 4241, "monitor pid");
                        is_int(c->status.started_ns, 1234567890123456789, "started");
                        is_int(c->status.restart_count, 3, "restart count");
                        ok(strstr(c->doc, "A=4098") != NULL, "a NULL doc keeps the document");
                }
                st = (struct moat_db_container_status) {
                        .state = MOAT_CONTAINER_EXITED,
                        .exit_code = 137,
                        .oom_killed = true,
                        .finished_ns = 99,
                        .error = (char *) "OCI runtime failed:\nline 2",
                };
                r = moat_db_container_update(db, id2, &st, "{\"Config\":{},\"State\":\"new\"}", &e);
                is_int(r, 0, "update db to exited with a new document: %s", msg(e));
                moat_db_container_freep(&c);
                is_int(moat_db_container_get(db, id2, &c, &e), 0, "get it");
                if (c) {
                        is_int(c->status.state, MOAT_CONTAINER_EXITED, "exited");
                        is_int(c->status.exit_code, 137, "exit code");
                        ok(c->status.oom_killed, "oom killed");
                        is_int(c->status.pid, 0, "no pid");
                        is_str(c->status.error, "OCI runtime failed:\nline 2", "error text");
                        is_str(c->doc, "{\"Config\":{},\"State\":\"new\"}", "new document");
                }
                struct moat_db_container *v = NULL;
                size_t n = 0;
                r = moat_db_container_list(db, MOAT_DB_STATE_MASK(MOAT_CONTAINER_EXITED), &v, &n, &e);
                ok(r == 0 && n == 1 && streq(v[0].id, id2), "state filter exited: only db");
                moat_db_containers_free(v, n);
                r = moat_db_container_list(db,
                                           MOAT_DB_STATE_MASK(MOAT_CONTAINER_CREATED) |
                                                   MOAT_DB_STATE_MASK(MOAT_CONTAINER_EXITED),
                                           &v, &n, &e);
                ok(r == 0 && n == 3, "state filter created|exited: all three");
                moat_db_containers_free(v, n);
                r = moat_db_container_list(db, MOAT_DB_STATE_MASK(MOAT_CONTAINER_PAUSED), &v, &n, &e);
                ok(r == 0 && n == 0, "state filter paused: none");
                moat_db_containers_free(v, n);

                char missing[65];
                make_id(missing, 'f', 1);
                is_int(moat_db_container_update(db, missing, &st, NULL, &e), -ENOENT, "update of a missing one");
        }

        /* rename */
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                is_int(moat_db_container_rename(db, id1, "/frontend", &e), 0, "rename web to /frontend: %s", msg(e));
                is_int(moat_db_container_get_by_name(db, "frontend", &c, &e), 0, "found by the new name");
                moat_error_freep(&e);
                moat_db_container_freep(&c);
                is_int(moat_db_container_get_by_name(db, "web", &c, &e), -ENOENT, "not by the old one");
                moat_error_freep(&e);
                r = moat_db_container_rename(db, id1, "db", &e);
                is_int(r, -EEXIST, "rename onto a taken name");
                ok(strstr(msg(e), "\"/db\" is already in use by container") && strstr(msg(e), id2), "message: %s",
                   msg(e));
                moat_error_freep(&e);
                is_int(moat_db_container_rename(db, id1, "frontend", &e), -EINVAL, "rename to its own name: %s",
                       msg(e));
                moat_error_freep(&e);
                is_int(moat_db_container_rename(db, id1, "bad name", &e), -EINVAL, "rename to a bad name");
                moat_error_freep(&e);
                is_int(insert_container(db, 'c', 3, "web", NULL, 5, &e), 0, "the old name is free again");
                char id[65];
                make_id(id, 'c', 3);
                is_int(moat_db_container_delete(db, id, &e), 0, "delete it");
        }

        /* delete */
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                is_int(moat_db_container_delete(db, id3, &e), 0, "delete cache");
                is_int(moat_db_container_delete(db, id3, &e), -ENOENT, "delete again");
                char want[128];
                snprintf(want, sizeof(want), "No such container: %s", id3);
                is_str(msg(e), want, "message");
                moat_error_freep(&e);
                is_int(moat_db_container_get(db, id3, &c, &e), -ENOENT, "gone");
        }
}

/* ---- exec sessions ---- */

static void test_execs(struct moat_db *db)
{
        char cid[65], x1[65], x2[65], missing[65];
        int r;

        make_id(cid, 'a', 0x1002);
        make_id(x1, 'e', 1);
        make_id(x2, 'e', 2);
        make_id(missing, 'f', 9);
        {
                _cleanup_error_ struct moat_error *e = NULL;
                struct moat_db_exec x = { .doc = (char *) "{\"Cmd\":[\"sh\"],\"Tty\":true}", .exit_code = -1 };
                memcpy(x.id, x1, 65);
                memcpy(x.container_id, cid, 65);
                is_int(moat_db_exec_insert(db, &x, &e), 0, "insert exec 1: %s", msg(e));
                memcpy(x.id, x2, 65);
                x.doc = (char *) "{\"Cmd\":[\"ls\"]}";
                is_int(moat_db_exec_insert(db, &x, &e), 0, "insert exec 2");
                is_int(moat_db_exec_insert(db, &x, &e), -EEXIST, "insert exec 2 again");
                moat_error_freep(&e);
                memcpy(x.container_id, missing, 65);
                make_id(x.id, 'e', 3);
                is_int(moat_db_exec_insert(db, &x, &e), -ENOENT, "exec of a missing container: %s", msg(e));
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_exec_ struct moat_db_exec *x = NULL;
                struct moat_db_exec u = { .running = true, .pid = 777, .exit_code = -1 };
                memcpy(u.id, x1, 65);
                is_int(moat_db_exec_update(db, &u, &e), 0, "update exec 1 running");
                u.running = false;
                u.exit_code = 3;
                is_int(moat_db_exec_update(db, &u, &e), 0, "update exec 1 exited");
                r = moat_db_exec_get(db, x1, &x, &e);
                is_int(r, 0, "get exec 1");
                if (x) {
                        ok(!x->running && x->pid == 777 && x->exit_code == 3, "its fields");
                        is_str(x->container_id, cid, "its container");
                        is_str(x->doc, "{\"Cmd\":[\"sh\"],\"Tty\":true}", "its document");
                }
                memcpy(u.id, missing, 65);
                is_int(moat_db_exec_update(db, &u, &e), -ENOENT, "update a missing exec");
                char want[128];
                snprintf(want, sizeof(want), "No such exec instance: %s", missing);
                is_str(msg(e), want, "Docker's message");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                struct moat_db_exec *v = NULL;
                size_t n = 0;
                r = moat_db_exec_list(db, cid, &v, &n, &e);
                ok(r == 0 && n == 2 && streq(v[0].id, x1) && streq(v[1].id, x2), "list: both, in creation order");
                moat_db_execs_free(v, n);
                is_int(moat_db_exec_delete(db, x2, &e), 0, "delete exec 2");
                is_int(moat_db_exec_delete(db, x2, &e), -ENOENT, "delete exec 2 again");
                moat_error_freep(&e);
                r = moat_db_exec_list(db, cid, &v, &n, &e);
                ok(r == 0 && n == 1, "one left");
                moat_db_execs_free(v, n);
        }
        {
                /* Deleting the container deletes its exec sessions. */
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_exec_ struct moat_db_exec *x = NULL;
                is_int(moat_db_container_delete(db, cid, &e), 0, "delete the container");
                is_int(moat_db_exec_get(db, x1, &x, &e), -ENOENT, "its exec session went with it");
        }
}

/* ---- volumes ---- */

static void test_volumes(struct moat_db *db)
{
        char c1[65], c2[65];
        int r;

        make_id(c1, '1', 1);
        make_id(c2, '2', 2);
        {
                _cleanup_error_ struct moat_error *e = NULL;
                is_int(insert_volume(db, "data", &e), 0, "insert volume data: %s", msg(e));
                is_int(insert_volume(db, "logs", &e), 0, "insert volume logs");
                is_int(insert_volume(db, "data", &e), -EEXIST, "insert data again: %s", msg(e));
                moat_error_freep(&e);
                is_int(insert_volume(db, "x", &e), -EINVAL, "a one-character name: %s", msg(e));
                moat_error_freep(&e);
                struct moat_db_volume v = { .name = (char *) "rel", .driver = (char *) "local",
                                            .mountpoint = (char *) "relative" };
                is_int(moat_db_volume_insert(db, &v, &e), -EINVAL, "a relative mountpoint: %s", msg(e));
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_volume_ struct moat_db_volume *v = NULL;
                r = moat_db_volume_get(db, "data", &v, &e);
                is_int(r, 0, "get data");
                if (v) {
                        is_str(v->driver, "local", "driver");
                        is_str(v->mountpoint, "/var/lib/moat/volumes/data/_data", "mountpoint");
                        is_str(v->labels, "{\"a\":\"b\"}", "labels");
                        is_str(v->options, "{}", "options default {}");
                        is_int(v->n_users, 0, "unused");
                }
                moat_db_volume_freep(&v);
                is_int(moat_db_volume_get(db, "nope", &v, &e), -ENOENT, "get a missing volume");
                is_str(msg(e), "get nope: no such volume", "message");
        }
        {
                /* A container mounting a missing volume is not inserted. */
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                r = insert_container(db, '9', 9, "novol", "ghost", 1, &e);
                is_int(r, -ENOENT, "a container mounting a missing volume: %s", msg(e));
                moat_error_freep(&e);
                is_int(moat_db_container_get_by_name(db, "novol", &c, &e), -ENOENT, "nothing was inserted");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                _cleanup_strv_free_ char **users = NULL;
                _cleanup_db_volume_ struct moat_db_volume *v = NULL;
                char want[512];
                is_int(insert_container(db, '1', 1, "user1", "data", 1, &e), 0, "container 1 mounts data: %s",
                       msg(e));
                is_int(insert_container(db, '2', 2, "user2", "data", 2, &e), 0, "container 2 mounts data");
                r = moat_db_volume_users(db, "data", &users, &e);
                ok(r == 0 && users[0] && users[1] && !users[2] && streq(users[0], c1) && streq(users[1], c2),
                   "data is used by both (once each)");
                is_int(moat_db_volume_get(db, "data", &v, &e), 0, "get data");
                is_int(v ? v->n_users : 99, 2, "n_users 2");
                r = moat_db_volume_delete(db, "data", &e);
                is_int(r, -EBUSY, "removing a volume in use is refused");
                snprintf(want, sizeof(want), "remove data: volume is in use - [%s, %s]", c1, c2);
                is_str(msg(e), want, "Docker's message");
                moat_error_freep(&e);
                moat_db_volume_freep(&v);
                is_int(moat_db_volume_get(db, "data", &v, &e), 0, "data is still there");

                /* Changing the document's Mounts changes the uses. */
                struct moat_db_container_status st = { .state = MOAT_CONTAINER_CREATED };
                is_int(moat_db_container_update(db, c2, &st, "{\"Mounts\":[{\"Type\":\"volume\",\"Name\":\"logs\"}]}",
                                                &e),
                       0, "container 2 now mounts logs: %s", msg(e));
                strv_free(users);
                users = NULL;
                r = moat_db_volume_users(db, "data", &users, &e);
                ok(r == 0 && users[0] && !users[1] && streq(users[0], c1), "data is used by container 1 only");
                is_int(moat_db_container_delete(db, c1, &e), 0, "delete container 1");
                is_int(moat_db_volume_delete(db, "data", &e), 0, "now data can be removed: %s", msg(e));
                is_int(moat_db_volume_delete(db, "data", &e), -ENOENT, "removing it again");
                moat_error_freep(&e);
                is_int(moat_db_volume_delete(db, "logs", &e), -EBUSY, "logs is in use by container 2");
                moat_error_freep(&e);
                is_int(moat_db_container_delete(db, c2, &e), 0, "delete container 2");
        }
        {
                _cleanup_error_ struct moat_error *e = NULL;
                struct moat_db_volume *v = NULL;
                size_t n = 0;
                is_int(insert_volume(db, "aaa", &e), 0, "insert aaa");
                r = moat_db_volume_list(db, &v, &n, &e);
                ok(r == 0 && n == 2 && streq(v[0].name, "aaa") && streq(v[1].name, "logs") && v[1].n_users == 0,
                   "list: aaa, logs (now unused)");
                moat_db_volumes_free(v, n);
        }
}

/* ---- events and metadata ---- */

static void test_events(void)
{
        _cleanup_free_ char *dir = subdir("events");
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        struct moat_db_event *v = NULL;
        size_t n = 0;
        int r;

        r = moat_db_open(dir, &(struct moat_db_options) { .events_max = 10 }, &db, &e);
        is_int(r, 0, "open with events_max 10");
        if (r < 0)
                return;
        bool good = true;
        for (int i = 1; i <= 25; i++) {
                char attrs[64];
                int64_t seq = 0;
                snprintf(attrs, sizeof(attrs), "{\"name\":\"c%d\"}", i);
                struct moat_db_event ev = { .type = (char *) "container", .action = (char *) "start",
                                            .actor_id = (char *) "abc", .attributes = attrs, .time_ns = i * 1000 };
                if (moat_db_event_append(db, &ev, &seq, &e) < 0 || seq != i)
                        good = false;
        }
        ok(good, "25 events appended with seq 1..25: %s", msg(e));
        r = moat_db_event_list(db, NULL, &v, &n, &e);
        ok(r == 0 && n == 10 && v[0].seq == 16 && v[9].seq == 25, "only the newest 10 are kept, in order");
        if (n == 10) {
                is_str(v[9].attributes, "{\"name\":\"c25\"}", "attributes");
                is_str(v[9].type, "container", "type");
                is_int(v[9].time_ns, 25000, "time");
        }
        moat_db_events_free(v, n);
        r = moat_db_event_list(db, &(struct moat_db_event_query) { .since_ns = 18000, .until_ns = 20000 }, &v, &n, &e);
        ok(r == 0 && n == 3 && v[0].seq == 18 && v[2].seq == 20, "since/until are inclusive");
        moat_db_events_free(v, n);
        r = moat_db_event_list(db, &(struct moat_db_event_query) { .after_seq = 22 }, &v, &n, &e);
        ok(r == 0 && n == 3 && v[0].seq == 23, "after a cursor");
        moat_db_events_free(v, n);
        r = moat_db_event_list(db, &(struct moat_db_event_query) { .limit = 2 }, &v, &n, &e);
        ok(r == 0 && n == 2 && v[0].seq == 16, "limit: the oldest two");
        moat_db_events_free(v, n);
        {
                struct moat_db_event ev = { .type = (char *) "container", .action = (char *) "start",
                                            .actor_id = (char *) "", .attributes = (char *) "[1]" };
                is_int(moat_db_event_append(db, &ev, NULL, &e), -EINVAL, "attributes must be an object");
                moat_error_freep(&e);
                ev.attributes = NULL;
                ev.type = (char *) "";
                is_int(moat_db_event_append(db, &ev, NULL, &e), -EINVAL, "a type is required");
                moat_error_freep(&e);
        }
        moat_db_close(TAKE_PTR(db));

        /* The default bound is 10000: 10005 appends keep 10000. */
        r = moat_db_open(dir, NULL, &db, &e);
        is_int(r, 0, "reopen with the default bound");
        if (r < 0)
                return;
        {
                _cleanup_free_ char *path = NULL;
                long long count = 0;
                xasprintf(&path, "%s/moat.db", dir);
                /* Fill quickly in one transaction behind the API (fsync per
                 * append would take seconds), then append through it. */
                raw_exec_int(path,
                             "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 10000) "
                             "INSERT INTO events (time_ns, type, action, actor_id, attributes) "
                             "SELECT i, 'container', 'x', '', '{}' FROM s",
                             NULL);
                struct moat_db_event ev = { .type = (char *) "daemon", .action = (char *) "reload",
                                            .actor_id = (char *) "d", .time_ns = 1 };
                int64_t seq = 0;
                is_int(moat_db_event_append(db, &ev, &seq, &e), 0, "append after 10010 events");
                raw_exec_int(path, "SELECT count(*) FROM events", &count);
                is_int(count, 10000, "10000 events kept");
                r = moat_db_event_list(db, &(struct moat_db_event_query) { .after_seq = seq - 1 }, &v, &n, &e);
                ok(r == 0 && n == 1 && streq(v[0].type, "daemon"), "the newest is there");
                moat_db_events_free(v, n);
        }
}

/* A start's state and its event in one transaction: both or neither. */
static void test_update_with_event(void)
{
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        _cleanup_free_ char *dir = subdir("update-event");
        struct moat_db_event *v = NULL;
        size_t n = 0;
        char id[65];
        int64_t seq = 0;

        int r = moat_db_open(dir, NULL, &db, &e);
        is_int(r, 0, "open: %s", msg(e));
        if (r < 0)
                return;
        make_id(id, 'e', 1);
        is_int(insert_container(db, 'e', 1, "ev", NULL, 1, &e), 0, "insert: %s", msg(e));
        struct moat_db_container_status st = { .state = MOAT_CONTAINER_RUNNING, .pid = 42, .monitor_pid = 41,
                                               .started_ns = 5 };
        struct moat_db_event ev = { .type = (char *) "container", .action = (char *) "start",
                                    .actor_id = id, .attributes = (char *) "{\"name\":\"ev\"}", .time_ns = 7 };
        r = moat_db_container_update_event(db, id, &st, NULL, NULL, &ev, &seq, &e);
        is_int(r, 0, "state and event: %s", msg(e));
        ok(seq > 0, "the event's seq is returned");
        {
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                is_int(moat_db_container_get(db, id, &c, &e), 0, "get");
                ok(c && c->status.state == MOAT_CONTAINER_RUNNING && c->status.pid == 42, "the state is stored");
                ok(c && strstr(c->doc, "\"A=1\"") != NULL, "a NULL document keeps the one stored");
        }
        r = moat_db_event_list(db, NULL, &v, &n, &e);
        ok(r == 0 && n == 1 && v[0].seq == seq && streq(v[0].action, "start"), "the event is stored");
        moat_db_events_free(v, n);

        /* An event the database refuses: the state is not stored either. */
        st.state = MOAT_CONTAINER_EXITED;
        ev.attributes = (char *) "[1]";
        seq = 0;
        moat_error_freep(&e);
        is_int(moat_db_container_update_event(db, id, &st, NULL, NULL, &ev, &seq, &e), -EINVAL,
               "an invalid event fails the update");
        moat_error_freep(&e);
        {
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                is_int(moat_db_container_get(db, id, &c, &e), 0, "get again");
                ok(c && c->status.state == MOAT_CONTAINER_RUNNING, "the state was not changed");
        }
        /* A state the database refuses: no event either. */
        ev.attributes = (char *) "{}";
        is_int(moat_db_container_update_event(db, "0000", &st, NULL, NULL, &ev, &seq, &e), -EINVAL,
               "an invalid id fails it");
        moat_error_freep(&e);
        r = moat_db_event_list(db, NULL, &v, &n, &e);
        ok(r == 0 && n == 1, "and no event was added");
        moat_db_events_free(v, n);
}

/* A create's row and its event in one transaction: both or neither. */
static void test_insert_with_event(void)
{
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        _cleanup_free_ char *dir = subdir("insert-event");
        struct moat_db_event *v = NULL;
        size_t n = 0;
        char id[65];
        int64_t seq = 0;

        int r = moat_db_open(dir, NULL, &db, &e);
        is_int(r, 0, "open: %s", msg(e));
        if (r < 0)
                return;
        make_id(id, 'c', 1);
        struct moat_db_container c = {
                .name = (char *) "made",
                .image_ref = (char *) "busybox:latest",
                .image_id = (char *) "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                .created_ns = 3,
                .status = { .state = MOAT_CONTAINER_CREATED },
                .doc = (char *) "{\"Mounts\":[]}",
        };
        memcpy(c.id, id, sizeof(id));
        struct moat_db_event ev = { .type = (char *) "container", .action = (char *) "create",
                                    .actor_id = id, .attributes = (char *) "{\"name\":\"made\"}", .time_ns = 4 };
        ok(moat_db_event_valid(&ev), "the event is within bounds");
        r = moat_db_container_insert_event(db, &c, NULL, &ev, &seq, &e);
        is_int(r, 0, "row and event: %s", msg(e));
        ok(seq > 0, "the event's seq is returned");
        {
                _cleanup_db_container_ struct moat_db_container *got = NULL;
                is_int(moat_db_container_get(db, id, &got, &e), 0, "the row is stored");
        }
        r = moat_db_event_list(db, NULL, &v, &n, &e);
        ok(r == 0 && n == 1 && v[0].seq == seq && streq(v[0].action, "create"), "the event is stored");
        moat_db_events_free(v, n);

        /* An event the database refuses: no row either. */
        make_id(id, 'c', 2);
        memcpy(c.id, id, sizeof(id));
        c.name = (char *) "refused";
        ev.attributes = (char *) "[1]";
        ok(!moat_db_event_valid(&ev), "an attributes array is refused");
        is_int(moat_db_container_insert_event(db, &c, NULL, &ev, &seq, &e), -EINVAL, "an invalid event fails it");
        moat_error_freep(&e);
        {
                _cleanup_db_container_ struct moat_db_container *got = NULL;
                is_int(moat_db_container_get(db, id, &got, &e), -ENOENT, "and the row was not stored");
                moat_error_freep(&e);
        }
        /* A row the database refuses (its name taken): no event either. */
        make_id(id, 'c', 3);
        memcpy(c.id, id, sizeof(id));
        c.name = (char *) "made";
        ev.attributes = (char *) "{}";
        is_int(moat_db_container_insert_event(db, &c, NULL, &ev, &seq, &e), -EEXIST, "a taken name fails it");
        moat_error_freep(&e);
        r = moat_db_event_list(db, NULL, &v, &n, &e);
        ok(r == 0 && n == 1, "and no event was added");
        moat_db_events_free(v, n);
}

static void test_meta(struct moat_db *db)
{
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_free_ char *v = NULL, *v2 = NULL, *v3 = NULL;

        is_int(moat_db_meta_get(db, "nokey", &v, &e), -ENOENT, "unset key: %s", msg(e));
        moat_error_freep(&e);
        is_int(moat_db_meta_set(db, "k", "1", &e), 0, "set");
        is_int(moat_db_meta_set(db, "k", "2", &e), 0, "overwrite");
        is_int(moat_db_meta_get(db, "k", &v, &e), 0, "get");
        is_str(v, "2", "the new value");
        is_int(moat_db_meta_set_default(db, "k", "3", &v2, &e), 0, "set_default on a set key");
        is_str(v2, "2", "keeps the value");
        is_int(moat_db_meta_set_default(db, "id", "XYZ", &v3, &e), 0, "set_default on an unset key");
        is_str(v3, "XYZ", "sets it");
        is_int(moat_db_meta_delete(db, "k", &e), 0, "delete");
        is_int(moat_db_meta_delete(db, "k", &e), -ENOENT, "delete again");
        moat_error_freep(&e);
        is_int(moat_db_meta_set(db, "", "x", &e), -EINVAL, "an empty key");
}

/* ---- concurrency ---- */

#define PER_WORKER 50

struct worker {
        const char *dir;
        struct moat_db *shared; /* or NULL: open an own handle */
        char tag;
        int failures;
        char err[256];
};

static void *worker_run(void *arg)
{
        struct worker *w = arg;
        _cleanup_db_ struct moat_db *own = NULL;
        _cleanup_error_ struct moat_error *e = NULL;
        struct moat_db *db = w->shared;

        if (!db) {
                if (moat_db_open(w->dir, NULL, &own, &e) < 0) {
                        snprintf(w->err, sizeof(w->err), "%s", msg(e));
                        w->failures = PER_WORKER;
                        return NULL;
                }
                db = own;
        }
        for (unsigned long i = 0; i < PER_WORKER; i++) {
                char name[32];
                snprintf(name, sizeof(name), "w%c-%lu", w->tag, i);
                struct moat_db_event ev = { .type = (char *) "container", .action = (char *) "create",
                                            .actor_id = name, .time_ns = (int64_t) i };
                if (insert_container(db, w->tag, i, name, NULL, (int64_t) i, &e) < 0 ||
                    moat_db_event_append(db, &ev, NULL, &e) < 0) {
                        if (!w->failures)
                                snprintf(w->err, sizeof(w->err), "%s", msg(e));
                        moat_error_freep(&e);
                        w->failures++;
                }
        }
        return NULL;
}

static size_t count_containers(struct moat_db *db)
{
        struct moat_db_container *v = NULL;
        size_t n = 0;
        if (moat_db_container_list(db, 0, &v, &n, NULL) < 0)
                return SIZE_MAX;
        moat_db_containers_free(v, n);
        return n;
}

static void test_threads(bool shared)
{
        _cleanup_free_ char *dir = subdir(shared ? "threads-shared" : "threads-own");
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        struct worker w[2] = {
                { .tag = '1' },
                { .tag = '2' },
        };
        pthread_t t[2];

        if (moat_db_open(dir, NULL, &db, &e) < 0) {
                ok(false, "open: %s", msg(e));
                return;
        }
        for (int i = 0; i < 2; i++) {
                w[i].dir = dir;
                w[i].shared = shared ? db : NULL;
                pthread_create(&t[i], NULL, worker_run, &w[i]);
        }
        for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
        ok(w[0].failures == 0 && w[1].failures == 0, "two threads with %s: no failures (%s%s)",
           shared ? "one shared handle" : "a handle each", w[0].err, w[1].err);
        is_int(count_containers(db), 2 * PER_WORKER, "all %d containers are there", 2 * PER_WORKER);
        is_int(moat_db_check(db, true, &e), 0, "integrity_check ok");
}

static void test_processes(void)
{
        _cleanup_free_ char *dir = subdir("procs");
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        pid_t pids[2];
        int good = 0;

        /* The parent's handle is open across fork (the children never
         * touch it), as in a daemon that forks helpers. */
        if (moat_db_open(dir, NULL, &db, &e) < 0) {
                ok(false, "open: %s", msg(e));
                return;
        }
        fflush(stdout);
        for (int i = 0; i < 2; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        struct worker w = { .dir = dir, .tag = (char) ('1' + i) };
                        worker_run(&w);
                        if (w.failures)
                                fprintf(stderr, "child %d: %d failures: %s\n", i, w.failures, w.err);
                        _exit(w.failures ? 1 : 0);
                }
        }
        for (int i = 0; i < 2; i++) {
                int status = 0;
                if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] && WIFEXITED(status) &&
                    WEXITSTATUS(status) == 0)
                        good++;
        }
        is_int(good, 2, "two processes wrote concurrently without failures");
        is_int(count_containers(db), 2 * PER_WORKER, "all %d containers are there", 2 * PER_WORKER);
        is_int(moat_db_check(db, true, &e), 0, "integrity_check ok");
}

/* ---- crash consistency ---- */

#define CRASH_EVENTS_MAX 40

/* Step i of the sequence: exactly one transaction, deterministic. Blocks
 * of 50 steps: a volume per block, containers created at i % 5 == 3 that
 * mount it, are started the step after, get an exec session 3 steps after
 * and are deleted 12 steps after; the previous block's volume is removed
 * at step 42 of a block; the other steps append events (and set meta). */
static int crash_step(struct moat_db *db, long i, struct moat_error **e)
{
        long b = i / 50, m = i % 50;
        char name[64], id[65], doc[256];

        if (m == 1) {
                snprintf(name, sizeof(name), "vol%ld", b);
                return insert_volume(db, name, e);
        }
        if (m == 42 && b > 0) {
                snprintf(name, sizeof(name), "vol%ld", b - 1);
                return moat_db_volume_delete(db, name, e);
        }
        if (m % 5 == 3) {
                snprintf(name, sizeof(name), "c%ld", i);
                snprintf(doc, sizeof(doc), "vol%ld", b);
                return insert_container(db, 'c', (unsigned long) i, name, doc, i, e);
        }
        if (m % 5 == 4) {
                struct moat_db_container_status st = {
                        .state = MOAT_CONTAINER_RUNNING, .pid = (pid_t) i, .started_ns = i * 7, .restart_count = 1,
                };
                make_id(id, 'c', (unsigned long) (i - 1));
                if (i % 20 == 4) {
                        snprintf(doc, sizeof(doc), "{\"Mounts\":[],\"Step\":%ld}", i);
                        return moat_db_container_update(db, id, &st, doc, e);
                }
                return moat_db_container_update(db, id, &st, NULL, e);
        }
        if (m % 5 == 0 && i >= 15) {
                make_id(id, 'c', (unsigned long) (i - 12));
                return moat_db_container_delete(db, id, e);
        }
        if (m % 5 == 1 && m != 1) {
                struct moat_db_exec x = { .doc = (char *) "{\"Cmd\":[\"true\"]}", .running = true, .pid = 1,
                                          .exit_code = -1 };
                make_id(x.id, 'e', (unsigned long) i);
                make_id(x.container_id, 'c', (unsigned long) (i - 3));
                return moat_db_exec_insert(db, &x, e);
        }
        if (m == 22) {
                snprintf(doc, sizeof(doc), "%ld", i);
                return moat_db_meta_set(db, "last", doc, e);
        }
        snprintf(doc, sizeof(doc), "{\"step\":\"%ld\"}", i);
        struct moat_db_event ev = { .type = (char *) "container", .action = (char *) "step",
                                    .actor_id = (char *) "x", .attributes = doc, .time_ns = i };
        return moat_db_event_append(db, &ev, NULL, e);
}

/* Every row of every table (and the schema version) as text. */
static char *dump(const char *dir)
{
        _cleanup_free_ char *path = NULL;
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        sqlite3 *s = NULL;
        sqlite3_stmt *tables = NULL;

        xasprintf(&path, "%s/moat.db", dir);
        if (sqlite3_open_v2(path, &s, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name", -1, &tables,
                               NULL) != SQLITE_OK) {
                fprintf(f, "cannot open: %s", sqlite3_errmsg(s));
                goto out;
        }
        while (sqlite3_step(tables) == SQLITE_ROW) {
                char q[256];
                sqlite3_stmt *st = NULL;
                snprintf(q, sizeof(q), "SELECT * FROM \"%s\" ORDER BY 1, 2", sqlite3_column_text(tables, 0));
                fprintf(f, "[%s]\n", sqlite3_column_text(tables, 0));
                if (sqlite3_prepare_v2(s, q, -1, &st, NULL) != SQLITE_OK) {
                        fprintf(f, "error %s\n", sqlite3_errmsg(s));
                        continue;
                }
                while (sqlite3_step(st) == SQLITE_ROW) {
                        for (int c = 0; c < sqlite3_column_count(st); c++)
                                fprintf(f, "%s|", sqlite3_column_text(st, c) ? (const char *) sqlite3_column_text(st, c)
                                                                             : "NULL");
                        fputc('\n', f);
                }
                sqlite3_finalize(st);
        }
        {
                sqlite3_stmt *st = NULL;
                if (sqlite3_prepare_v2(s, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
                    sqlite3_step(st) == SQLITE_ROW)
                        fprintf(f, "user_version %d\n", sqlite3_column_int(st, 0));
                sqlite3_finalize(st);
        }
out:
        sqlite3_finalize(tables);
        sqlite3_close(s);
        fclose(f);
        return out;
}

static void crash_child(const char *dir, long start, int wfd)
{
        struct moat_error *e = NULL;
        struct moat_db *db = NULL;
        struct moat_db_options opts = { .events_max = CRASH_EVENTS_MAX };

        if (moat_db_open(dir, &opts, &db, &e) < 0) {
                fprintf(stderr, "crash child: open: %s\n", msg(e));
                _exit(2);
        }
        for (long i = start; i < start + 1000000; i++) {
                if (crash_step(db, i, &e) < 0) {
                        fprintf(stderr, "crash child: step %ld: %s\n", i, msg(e));
                        _exit(3);
                }
                if (write(wfd, &i, sizeof(i)) != (ssize_t) sizeof(i))
                        _exit(4);
        }
        _exit(0);
}

static void test_crash(void)
{
        /* On tmpfs when there is one: what SIGKILL may break is the same
         * (the page cache outlives the process either way), and without
         * the disk's fsync latency the kills land all over the write path
         * instead of mostly inside fsync, and the test stays short. */
        char base[] = "/dev/shm/moat-test-db-crash-XXXXXX";
        bool shm = mkdtemp(base) != NULL;
        _cleanup_free_ char *dir = NULL, *refdir = NULL;
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *ref = NULL;
        struct moat_db_options opts = { .events_max = CRASH_EVENTS_MAX };
        long ref_at = -1, next = 0, total_kills = 0, mid_commit = 0, wanted = 0;
        int iterations = 30, bad = 0;
        unsigned seed;

        if (shm) {
                xasprintf(&dir, "%s/crash", base);
                xasprintf(&refdir, "%s/ref", base);
                if (mkdir(dir, 0700) < 0 || mkdir(refdir, 0700) < 0)
                        abort();
        } else {
                dir = subdir("crash");
                refdir = subdir("crash-ref");
        }
        if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
                seed = (unsigned) time(NULL);
        printf("# crash test seed %u, in %s\n", seed, dir);
        srandom(seed);
        if (moat_db_open(refdir, &opts, &ref, &e) < 0) {
                ok(false, "open the reference: %s", msg(e));
                return;
        }
        for (int it = 0; it < iterations && !bad; it++) {
                int p[2];
                long last = next - 1, v;
                /* Kill once the child has reported `target` more steps
                 * (0 for every fourth run: during open and recovery), then
                 * a random few microseconds later, wherever it then is. */
                long target = it % 4 == 0 ? 0 : random() % 200;
                long delay_us = random() % 2000;
                pid_t pid;
                int status;

                wanted += target;
                if (pipe2(p, O_CLOEXEC) < 0) {
                        ok(false, "pipe: %m");
                        return;
                }
                fflush(stdout);
                pid = fork();
                if (pid == 0) {
                        close(p[0]);
                        crash_child(dir, next, p[1]);
                }
                close(p[1]);
                while (last < next - 1 + target) {
                        ssize_t n = read(p[0], &v, sizeof(v));
                        if (n != (ssize_t) sizeof(v))
                                break; /* the child died: reported below */
                        last = v;
                }
                usleep((useconds_t) delay_us);
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                while (read(p[0], &v, sizeof(v)) == (ssize_t) sizeof(v))
                        last = v;
                close(p[0]);
                if (!WIFSIGNALED(status)) {
                        ok(false, "iteration %d: the child ended by itself (status %d) before the kill", it, status);
                        bad++;
                        break;
                }
                total_kills++;

                /* Reopen: recovery, integrity. */
                {
                        _cleanup_db_ struct moat_db *db = NULL;
                        _cleanup_error_ struct moat_error *e2 = NULL;
                        opts.flags = MOAT_DB_OPEN_QUICK_CHECK;
                        if (moat_db_open(dir, &opts, &db, &e2) < 0 || moat_db_check(db, true, &e2) < 0) {
                                ok(false, "iteration %d: reopen after SIGKILL: %s", it, msg(e2));
                                bad++;
                                break;
                        }
                        opts.flags = 0;
                }

                /* The contents are the first `last` or `last + 1` steps. */
                _cleanup_free_ char *got = dump(dir), *want = NULL;
                while (ref_at < last) {
                        if (crash_step(ref, ++ref_at, &e) < 0) {
                                ok(false, "reference step %ld: %s", ref_at, msg(e));
                                return;
                        }
                }
                want = dump(refdir);
                if (!streq(got, want)) {
                        free(want);
                        if (crash_step(ref, ++ref_at, &e) < 0) {
                                ok(false, "reference step %ld: %s", ref_at, msg(e));
                                return;
                        }
                        want = dump(refdir);
                        if (!streq(got, want)) {
                                ok(false, "iteration %d: the database is not the first %ld or %ld steps", it, last + 1,
                                   last + 2);
                                printf("# got:\n%s\n# want (step %ld):\n%s\n", got, ref_at, want);
                                bad++;
                                break;
                        }
                        mid_commit++;
                }
                next = ref_at + 1;
        }
        ok(!bad, "%ld SIGKILLs at random moments: every reopen passed integrity_check and held exactly a prefix of "
                 "the committed steps (%ld steps in all; %ld kills between a commit and its report)",
           total_kills, next, mid_commit);
        ok(next >= wanted, "the children got through the planned sequence (%ld steps, %ld planned)", next, wanted);
        if (shm)
                nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* How long quick_check takes on a database of a daemon with 1000
 * containers (for the choice documented in db.c; not asserted). */
static void measure_quick_check(void)
{
        _cleanup_free_ char *dir = subdir("measure"), *path = NULL;
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;
        struct timespec a, b;
        struct stat sb = {};

        if (moat_db_open(dir, NULL, &db, &e) < 0)
                return;
        moat_db_close(TAKE_PTR(db));
        xasprintf(&path, "%s/moat.db", dir);
        raw_exec_int(path,
                     "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 1000) "
                     "INSERT INTO containers (id, name, image_ref, image_id, created_ns, state, doc) "
                     "SELECT printf('%064x', i), 'n' || i, 'img', 'sha256:x', i, 'running', "
                     "'{\"x\":\"' || hex(randomblob(2000)) || '\"}' FROM s",
                     NULL);
        if (moat_db_open(dir, NULL, &db, &e) < 0)
                return;
        stat(path, &sb);
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = moat_db_check(db, false, &e);
        clock_gettime(CLOCK_MONOTONIC, &b);
        is_int(r, 0, "quick_check of a 1000-container database");
        printf("# quick_check of %lld KiB took %.2f ms\n", (long long) sb.st_size / 1024,
               (double) (b.tv_sec - a.tv_sec) * 1e3 + (double) (b.tv_nsec - a.tv_nsec) / 1e6);
}

/* ---- the statement cache ---- */

/*
 * Every text is prepared once per handle and reused: a reused statement
 * must be reset and rebound (else its bind fails, or it still holds the
 * previous call's row and snapshot), also after a call that stopped early
 * (an ambiguous prefix stops at the second row) or failed.
 */
static void test_statement_reuse(void)
{
        _cleanup_free_ char *dir = subdir("reuse");
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *a = NULL, *b = NULL;
        const unsigned long n = 120;
        char id[65], name[32];
        bool good = true;
        int r;

        if (moat_db_open(dir, NULL, &a, &e) < 0 || moat_db_open(dir, NULL, &b, &e) < 0) {
                ok(false, "open two handles: %s", msg(e));
                return;
        }
        for (unsigned long i = 0; i < n && good; i++) {
                snprintf(name, sizeof(name), "r%lu", i);
                good = insert_container(a, '7', i, name, NULL, (int64_t) i, &e) == 0;
        }
        ok(good, "%lu inserts through one statement: %s", n, msg(e));

        good = true;
        for (unsigned round = 0; round < 3 && good; round++)
                for (unsigned long k = 0; k < n && good; k++) {
                        unsigned long i = (k * 7 + round * 13) % n;
                        _cleanup_db_container_ struct moat_db_container *c1 = NULL, *c2 = NULL, *c3 = NULL;
                        char env[32];

                        make_id(id, '7', i);
                        snprintf(name, sizeof(name), "r%lu", i);
                        snprintf(env, sizeof(env), "\"A=%lu\"", i);
                        good = moat_db_container_get(a, id, &c1, &e) == 0 && streq(c1->id, id) &&
                               streq(c1->name, name) && strstr(c1->doc, env) &&
                               moat_db_container_get_by_name(a, name, &c2, &e) == 0 && streq(c2->id, id) &&
                               moat_db_container_lookup(a, name, &c3, &e) == 0 && streq(c3->id, id);
                        if (!good)
                                printf("# container %lu, round %u: %s\n", i, round, msg(e));
                }
        ok(good, "three rounds of get, get by name and lookup of each: always the row asked for");

        {
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                struct moat_db_container_status st = { .state = MOAT_CONTAINER_EXITED, .exit_code = 7 };

                make_id(id, '7', 5);
                ok(moat_db_container_get(a, id, &c, &e) == 0 && c->status.state == MOAT_CONTAINER_CREATED,
                   "read on the first handle");
                moat_db_container_freep(&c);
                is_int(moat_db_container_update(b, id, &st, NULL, &e), 0, "update on the second handle");
                ok(moat_db_container_get(a, id, &c, &e) == 0 && c->status.state == MOAT_CONTAINER_EXITED &&
                           c->status.exit_code == 7,
                   "the first handle sees it: its kept statements hold no snapshot");
        }

        make_id(id, '9', 0);
        is_int(insert_container(a, '9', 0, "lone", NULL, 0, &e), 0, "a container whose id starts with 9");
        for (int i = 0; i < 3; i++) {
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                moat_error_freep(&e);
                r = moat_db_container_lookup(a, "7", &c, &e);
                ok(r == -EINVAL && strstr(msg(e), "multiple IDs"), "prefix 7 is ambiguous (%d): %s", i, msg(e));
                r = moat_db_container_lookup(a, "9", &c, &e);
                ok(r == 0 && c && streq(c->id, id), "prefix 9 is the lone one (%d)", i);
        }

        moat_error_freep(&e);
        make_id(id, '7', 3);
        r = insert_container(a, '7', n + 1, "r3", NULL, 0, &e);
        ok(r == -EEXIST && strstr(msg(e), "already in use"), "a taken name fails mid-transaction: %s", msg(e));
        moat_error_freep(&e);
        r = insert_container(a, '7', 3, "fresh", NULL, 0, &e);
        ok(r == -EEXIST && strstr(msg(e), "already exists"), "a taken id fails: %s", msg(e));
        moat_error_freep(&e);
        is_int(insert_container(a, '7', n + 1, "fresh", NULL, 0, &e), 0, "the next insert works: %s", msg(e));
        {
                _cleanup_db_container_ struct moat_db_container *c = NULL;
                make_id(id, '7', n + 1);
                ok(moat_db_container_get_by_name(a, "fresh", &c, &e) == 0 && streq(c->id, id), "and reads back");
        }

        /* The document given parsed: its Mounts are what the database reads. */
        {
                const char *text = "{\"Mounts\":[{\"Type\":\"volume\",\"Name\":\"pv\",\"Destination\":\"/d\"}]}";
                json_t *doc = json_loads(text, 0, NULL);
                struct moat_db_container c = {
                        .name = (char *) "parsed",
                        .image_ref = (char *) "busybox:latest",
                        .image_id = (char *) "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                        .status = { .state = MOAT_CONTAINER_CREATED },
                        .doc = (char *) text,
                };
                _cleanup_strv_free_ char **users = NULL;
                _cleanup_db_container_ struct moat_db_container *got = NULL;

                make_id(c.id, '9', 1);
                moat_error_freep(&e);
                r = moat_db_container_insert_parsed(a, &c, doc, &e);
                ok(r == -ENOENT && strstr(msg(e), "no such volume"), "parsed: its volume must exist: %s", msg(e));
                moat_error_freep(&e);
                is_int(insert_volume(a, "pv", &e), 0, "volume pv");
                is_int(moat_db_container_insert_parsed(a, &c, doc, &e), 0, "inserted with its parse: %s", msg(e));
                ok(moat_db_volume_users(b, "pv", &users, &e) == 0 && users[0] && streq(users[0], c.id) && !users[1],
                   "it uses pv");
                ok(moat_db_container_get(b, c.id, &got, &e) == 0 && streq(got->doc, text), "the text is stored");
                json_decref(doc);
                doc = json_loads("{\"Mounts\":[]}", 0, NULL);
                is_int(moat_db_container_update_parsed(a, c.id, &c.status, "{\"Mounts\":[]}", doc, &e), 0,
                       "updated with its parse");
                strv_freep(&users);
                ok(moat_db_volume_users(b, "pv", &users, &e) == 0 && !users[0], "pv is free");
                json_decref(doc);
                doc = json_loads("[]", 0, NULL);
                moat_error_freep(&e);
                r = moat_db_container_update_parsed(a, c.id, &c.status, "[]", doc, &e);
                ok(r == -EINVAL && strstr(msg(e), "not a JSON object"), "a parse that is no object: %s", msg(e));
                json_decref(doc);
        }
        is_int(moat_db_check(a, true, &e), 0, "integrity_check");
}

int main(void)
{
        _cleanup_error_ struct moat_error *e = NULL;
        _cleanup_db_ struct moat_db *db = NULL;

        if (!mkdtemp(tmpdir)) {
                perror("mkdtemp");
                return 1;
        }

        test_open();
        test_versions();
        {
                _cleanup_free_ char *dir = subdir("main");
                int r = moat_db_open(dir, NULL, &db, &e);
                is_int(r, 0, "open the main database: %s", msg(e));
                if (r == 0) {
                        test_containers(db);
                        test_execs(db);
                        test_volumes(db);
                        test_meta(db);
                        is_int(moat_db_check(db, true, &e), 0, "integrity_check after all that");
                        moat_db_close(TAKE_PTR(db));
                }
        }
        test_events();
        test_update_with_event();
        test_insert_with_event();
        test_statement_reuse();
        test_threads(true);
        test_threads(false);
        test_processes();
        test_crash();
        measure_quick_check();

        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return tap_done();
}
