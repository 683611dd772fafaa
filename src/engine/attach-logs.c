/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * attach?logs=1 (engine.h): the container's json-file log replayed ahead
 * of the live stream, without a gap or a repeat between the two.
 *
 * The monitor fans a read of the process's output out to its attach
 * clients and hands it to the log in the same turn of its loop, and
 * registers a new client in another turn: at that moment everything read
 * so far is either logged (the log's live file up to some length) or
 * waiting in the line splitter for the rest of its line. A client that
 * asks (moat_monitor_attach_logs) is told that position in the
 * acknowledgement, and gets the waiting bytes first on its stream. A mark
 * records the log's files (the rotated files and the live one, opened by
 * fd so a rotation does not move them) just before the attach connects;
 * moat_engine_log_attach cuts it at the position (the file is found by its
 * inode: a rotation renames it), and the replay of the mark and then the
 * stream carry each byte once. A container that was not running at the
 * mark writes nothing until the attach is registered (its start waits for
 * pending attaches): the mark alone is exact.
 *
 * A monitor of an older moat answers without a position. Then, when the
 * log has not grown by the time the connection is registered, the mark is
 * where the live stream begins; for one that wrote meanwhile, a second
 * mark after the connection gives the entries in between (replay_since),
 * and the caller finds where among them the live stream begins by
 * comparing them with its first bytes. The start of a line fanned out
 * before the attach, its newline after, is then in neither the replay nor
 * the stream, or (when the comparison fails) twice.
 *
 * Limit: with max-file 1 a rotation truncates the live file in place; one
 * between the attach and the replay leaves the replay short.
 */

#include "engine/engine-internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "monitor/monitor.h"

#define LOG_SUFFIX "-json.log"
#define MARK_MAX_FILES 1000u
#define LINE_MAX_BYTES (MOAT_LOG_ENTRY_MAX + 1024u)

struct marked_file {
        int fd;
        off_t len;
        off_t whole;      /* where the last whole line read by a replay ends */
        dev_t dev;
        ino_t ino;
};

struct moat_engine_log_mark {
        struct moat_engine *e;
        char id[65];             /* the container's */
        int dir_fd;              /* the container's directory */
        char name[128];          /* the live log file's name in it (ids are 64 characters) */
        struct marked_file files[MARK_MAX_FILES + 1];   /* oldest first, the live one last */
        size_t n;
        bool live;               /* the live file existed at the mark */
        dev_t dev;               /* its identity */
        ino_t ino;
        bool running;
};

void moat_engine_log_mark_free(struct moat_engine_log_mark *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n; i++)
                close(m->files[i].fd);
        if (m->dir_fd >= 0)
                close(m->dir_fd);
        free(m);
}

static int mark_file(struct moat_engine_log_mark *m, const char *name, bool live, struct moat_error **reterr)
{
        struct stat st;
        int fd = openat(m->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

        if (fd < 0)
                return errno == ENOENT ? 0 : moat_error_set(reterr, errno, "opening log file %s", name);
        int r = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EINVAL;
        if (r < 0) {
                close(fd);
                return moat_error_set(reterr, r, "log file %s", name);
        }
        m->files[m->n++] = (struct marked_file) { .fd = fd, .len = st.st_size, .dev = st.st_dev, .ino = st.st_ino };
        if (live) {
                m->live = true;
                m->dev = st.st_dev;
                m->ino = st.st_ino;
        }
        return 0;
}

int moat_engine_log_mark(struct moat_engine *e, const char *ref, struct moat_engine_log_mark **ret,
                         struct moat_error **reterr)
{
        _cleanup_free_ struct moat_engine_log_mark *m = calloc(1, sizeof(*m));
        _cleanup_free_ char *id = NULL;
        char name[160];
        unsigned rotated = 0;
        struct container *c;
        int r;

        if (!m)
                return moat_error_set(reterr, -ENOMEM, "log mark");
        m->dir_fd = -EBADF;
        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, ref, &c, reterr);
        if (r >= 0) {
                if (!(id = strdup(c->id)))
                        r = moat_error_set(reterr, -ENOMEM, "log mark");
                m->running = container_is_running(c) || c->busy;
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        m->e = e;
        snprintf(m->id, sizeof(m->id), "%s", id);
        m->dir_fd = openat(e->containers_fd, id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (m->dir_fd < 0) {
                r = moat_error_set(reterr, errno, "opening containers/%s", id);
                moat_engine_log_mark_free(TAKE_PTR(m));
                return r;
        }
        if (snprintf(m->name, sizeof(m->name), "%s%s", id, LOG_SUFFIX) >= (int) sizeof(m->name)) {
                moat_engine_log_mark_free(TAKE_PTR(m));
                return moat_error_setx(reterr, -ENAMETOOLONG, "log file of %s: id too long", id);
        }
        /* The rotated files are <name>.1 (newest) to <name>.N (oldest). */
        while (rotated < MARK_MAX_FILES) {
                snprintf(name, sizeof(name), "%s.%u", m->name, rotated + 1);
                if (faccessat(m->dir_fd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
                        break;
                rotated++;
        }
        for (unsigned i = rotated; r >= 0 && i >= 1; i--) {
                snprintf(name, sizeof(name), "%s.%u", m->name, i);
                r = mark_file(m, name, false, reterr);
        }
        if (r >= 0)
                r = mark_file(m, m->name, true, reterr);
        if (r < 0) {
                moat_engine_log_mark_free(TAKE_PTR(m));
                return r;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

bool moat_engine_log_mark_current(const struct moat_engine_log_mark *m)
{
        struct stat st;

        if (!m->running)
                return true;
        if (fstatat(m->dir_fd, m->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT && !m->live;
        if (!m->live)
                return st.st_size == 0;
        return st.st_dev == m->dev && st.st_ino == m->ino && st.st_size == m->files[m->n - 1].len;
}

static int parse_line(const char *line, size_t len, moat_engine_log_fn fn, void *userdata)
{
        json_error_t jerr;
        json_t *doc = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
        const char *stream = json_string_value(json_object_get(doc, "stream"));
        json_t *log = json_object_get(doc, "log");
        int r;

        if (!json_is_object(doc) || !stream || (log && !json_is_string(log)) ||
            (!streq(stream, "stdout") && !streq(stream, "stderr"))) {
                json_decref(doc);
                return -EBADMSG;
        }
        r = fn(streq(stream, "stdout") ? MOAT_STREAM_STDOUT : MOAT_STREAM_STDERR, log ? json_string_value(log) : "",
               log ? json_string_length(log) : 0, userdata);
        json_decref(doc);
        return r;
}

/* The complete lines of f between from and f->len. */
static int replay_file(struct marked_file *f, off_t from, size_t index, char *buf, moat_engine_log_fn fn,
                       void *userdata, struct moat_error **reterr)
{
        off_t off = from;
        size_t n = 0, lineno = 0;

        f->whole = from;

        while (off < f->len) {
                size_t want = LINE_MAX_BYTES - n;
                if ((off_t) want > f->len - off)
                        want = (size_t) (f->len - off);
                ssize_t k = pread(f->fd, buf + n, want, off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return moat_error_set(reterr, errno, "reading log file %zu", index);
                if (k == 0)
                        break; /* truncated under us */
                off += k;
                n += (size_t) k;
                size_t p = 0;
                for (char *nl; (nl = memchr(buf + p, '\n', n - p));) {
                        lineno++;
                        int r = parse_line(buf + p, (size_t) (nl - (buf + p)), fn, userdata);
                        if (r == -EBADMSG)
                                return moat_error_setx(reterr, r, "log file %zu: line %zu is not a log entry", index,
                                                       lineno);
                        if (r != 0)
                                return r;
                        f->whole += nl - (buf + p) + 1;
                        p = (size_t) (nl - buf) + 1;
                }
                if (p == 0 && n == LINE_MAX_BYTES)
                        return moat_error_setx(reterr, -EBADMSG, "log file %zu: line %zu is longer than %u bytes",
                                               index, lineno + 1, LINE_MAX_BYTES);
                memmove(buf, buf + p, n - p);
                n -= p;
        }
        return 0;
}

/* Cut m at pos: the files older than the one pos names whole, that one up
 * to pos, none after it. false when m does not hold that file. */
static bool mark_cut(struct moat_engine_log_mark *m, const struct moat_monitor_log_position *pos)
{
        for (size_t i = m->n; i-- > 0;) {
                struct marked_file *f = &m->files[i];
                if ((uint64_t) f->dev != pos->dev || (uint64_t) f->ino != pos->ino)
                        continue;
                for (size_t j = i + 1; j < m->n; j++)
                        close(m->files[j].fd);
                m->n = i + 1;
                f->len = (off_t) pos->size;
                return true;
        }
        return false;
}

int moat_engine_log_attach(struct moat_engine_log_mark *m, const struct moat_engine_attach_options *o, int *ret_fd,
                           bool *ret_tty, struct moat_error **reterr)
{
        struct moat_engine *e = m->e;
        struct moat_monitor_log_position pos;
        _cleanup_error_ struct moat_error *err = NULL;
        _cleanup_free_ char *dir = NULL;
        struct container *c;
        bool running = false;
        int r;

        pthread_mutex_lock(&e->lock);
        r = container_find_locked(e, m->id, &c, reterr);
        if (r >= 0) {
                running = container_is_running(c) && !c->busy;
                *ret_tty = c->tty;
        }
        pthread_mutex_unlock(&e->lock);
        if (r < 0)
                return r;
        if (!running)
                return -ESRCH;
        r = engine_run_dir_path(e, m->id, &dir, reterr);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = moat_monitor_attach_logs(dir, NULL, o->stdin_, o->stdout_, o->stderr_, &pos, &err);
        if (fd == -ENOENT || fd == -ECONNREFUSED)
                return -ESRCH; /* it exited since: its sockets are gone */
        if (fd < 0) {
                if (reterr && !*reterr)
                        *reterr = TAKE_PTR(err);
                return fd;
        }
        if (pos.known && !mark_cut(m, &pos)) {
                /* The log was rotated between the mark and the attach: the
                 * file the position names is among the files now. Were it
                 * gone too (rotated out at once), m stays: what was logged
                 * between the two is lost, nothing is repeated. */
                struct moat_engine_log_mark *now = NULL;
                r = moat_engine_log_mark(e, m->id, &now, reterr);
                if (r < 0)
                        return r;
                if (mark_cut(now, &pos)) {
                        for (size_t i = 0; i < m->n; i++)
                                close(m->files[i].fd);
                        memcpy(m->files, now->files, now->n * sizeof(now->files[0]));
                        m->n = now->n;
                        now->n = 0;
                }
                moat_engine_log_mark_free(now);
        }
        *ret_fd = TAKE_FD(fd);
        return pos.known ? 1 : 0;
}

int moat_engine_log_replay(struct moat_engine_log_mark *m, moat_engine_log_fn fn, void *userdata,
                           struct moat_error **reterr)
{
        _cleanup_free_ char *buf = malloc(LINE_MAX_BYTES);

        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "log replay");
        for (size_t i = 0; i < m->n; i++) {
                int r = replay_file(&m->files[i], 0, i, buf, fn, userdata, reterr);
                if (r != 0)
                        return r;
        }
        return 0;
}

int moat_engine_log_replay_since(struct moat_engine_log_mark *m, const struct moat_engine_log_mark *since,
                                 moat_engine_log_fn fn, void *userdata, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = NULL;

        if (!m->live)
                return 0;
        if (since->live && (m->dev != since->dev || m->ino != since->ino))
                return moat_error_setx(reterr, -ESTALE, "the log was rotated between the marks");
        if (!(buf = malloc(LINE_MAX_BYTES)))
                return moat_error_set(reterr, -ENOMEM, "log replay");
        return replay_file(&m->files[m->n - 1], since->live ? since->files[since->n - 1].whole : 0, m->n - 1, buf,
                           fn, userdata, reterr);
}
