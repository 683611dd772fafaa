/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Reading back a json-file log (logfile.c writes it) for `docker logs`:
 * the rotated files oldest first, then the live one, one entry per line,
 * each line bounded. A last line without its newline is being written
 * and is left for the next read.
 */

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/cleanup.h"
#include "monitor/monitor.h"

/* ---- the reader ------------------------------------------------------------------ */

#define READ_LINE_MAX (MOAT_LOG_ENTRY_MAX + 1024u)

static int parse_entry(const char *line, size_t len, struct moat_log_entry *e, json_t **ret_doc)
{
        json_error_t jerr;
        json_t *doc = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return -EBADMSG;
        }
        json_t *log = json_object_get(doc, "log"), *stream = json_object_get(doc, "stream"),
               *time = json_object_get(doc, "time");
        if ((log && !json_is_string(log)) || !json_is_string(stream) || !json_is_string(time) ||
            moat_parse_rfc3339nano(json_string_value(time), &e->time) < 0) {
                json_decref(doc);
                return -EBADMSG;
        }
        const char *st = json_string_value(stream);
        if (streq(st, "stdout"))
                e->stream = MOAT_STREAM_STDOUT;
        else if (streq(st, "stderr"))
                e->stream = MOAT_STREAM_STDERR;
        else {
                json_decref(doc);
                return -EBADMSG;
        }
        e->data = log ? json_string_value(log) : "";
        e->len = log ? json_string_length(log) : 0;
        *ret_doc = doc;
        return 0;
}

static int read_one(const char *path, char *buf, int (*cb)(const struct moat_log_entry *, void *), void *userdata,
                    struct moat_error **reterr)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        size_t n = 0, lineno = 0;
        bool eof = false;

        if (fd < 0)
                return errno == ENOENT ? 0 : moat_error_set(reterr, errno, "log file '%s'", path);
        for (;;) {
                if (!eof && n < READ_LINE_MAX) {
                        ssize_t k = read(fd, buf + n, READ_LINE_MAX - n);
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0)
                                return moat_error_set(reterr, errno, "reading log file '%s'", path);
                        if (k == 0)
                                eof = true;
                        n += (size_t) k;
                }
                size_t p = 0;
                for (;;) {
                        char *nl = memchr(buf + p, '\n', n - p);
                        if (!nl)
                                break;
                        lineno++;
                        struct moat_log_entry e;
                        json_t *doc = NULL;
                        if (parse_entry(buf + p, (size_t) (nl - (buf + p)), &e, &doc) < 0)
                                return moat_error_setx(reterr, -EBADMSG, "log file '%s': line %zu is not a log entry",
                                                       path, lineno);
                        int r = cb(&e, userdata);
                        json_decref(doc);
                        if (r != 0)
                                return r;
                        p = (size_t) (nl - buf) + 1;
                }
                if (p == 0 && n == READ_LINE_MAX)
                        return moat_error_setx(reterr, -EBADMSG, "log file '%s': line %zu is longer than %u bytes",
                                               path, lineno + 1, READ_LINE_MAX);
                memmove(buf, buf + p, n - p);
                n -= p;
                if (eof)
                        return 0; /* a last line without newline is still being written */
        }
}

int moat_logfile_read(const char *path, unsigned max_files, int (*cb)(const struct moat_log_entry *e, void *userdata),
                      void *userdata, struct moat_error **reterr)
{
        _cleanup_free_ char *buf = malloc(READ_LINE_MAX);
        char name[PATH_MAX];
        int r;

        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "log reader");
        for (unsigned i = max_files > 1 ? max_files - 1 : 0; i >= 1; i--) {
                if (snprintf(name, sizeof(name), "%s.%u", path, i) >= (int) sizeof(name))
                        return moat_error_setx(reterr, -ENAMETOOLONG, "log file '%s': path too long", path);
                r = read_one(name, buf, cb, userdata, reterr);
                if (r != 0)
                        return r;
        }
        return read_one(path, buf, cb, userdata, reterr);
}

/* ---- following ---------------------------------------------------------------------- */

int moat_logfile_read_rotated(const char *path, unsigned max_files,
                              int (*cb)(const struct moat_log_entry *e, void *userdata), void *userdata,
                              struct moat_error **reterr)
{
        _cleanup_free_ char *buf = malloc(READ_LINE_MAX);
        char name[PATH_MAX];
        unsigned n = 0;
        int r;

        if (!buf)
                return moat_error_set(reterr, -ENOMEM, "log reader");
        /* How many rotated files there are now: path.1, path.2, ... */
        while (n < max_files) {
                if (snprintf(name, sizeof(name), "%s.%u", path, n + 1) >= (int) sizeof(name))
                        return moat_error_setx(reterr, -ENAMETOOLONG, "log file '%s': path too long", path);
                if (access(name, F_OK) < 0)
                        break;
                n++;
        }
        for (unsigned i = n; i >= 1; i--) {
                snprintf(name, sizeof(name), "%s.%u", path, i);
                r = read_one(name, buf, cb, userdata, reterr);
                if (r != 0)
                        return r;
        }
        return 0;
}

struct moat_log_follow {
        char *path;
        int fd;
        dev_t dev;
        ino_t ino;
        size_t n;            /* bytes of an incomplete line held in buf */
        char *buf;
        size_t lineno;
};

void moat_log_follow_free(struct moat_log_follow *f)
{
        if (!f)
                return;
        if (f->fd >= 0)
                close(f->fd);
        free(f->buf);
        free(f->path);
        free(f);
}

static void follow_reopen(struct moat_log_follow *f)
{
        struct stat st;
        int fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return;
        }
        if (f->fd >= 0)
                close(f->fd);
        f->fd = fd;
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->n = 0;
        f->lineno = 0;
}

int moat_log_follow_open(const char *path, struct moat_log_follow **ret, struct moat_error **reterr)
{
        struct moat_log_follow *f = calloc(1, sizeof(*f));

        if (!f || !(f->path = strdup(path)) || !(f->buf = malloc(READ_LINE_MAX))) {
                moat_log_follow_free(f);
                return moat_error_set(reterr, -ENOMEM, "log follower");
        }
        f->fd = -1;
        follow_reopen(f);
        *ret = f;
        return 0;
}

/* Complete entries of the open file from where we stopped. */
static int follow_drain(struct moat_log_follow *f, int (*cb)(const struct moat_log_entry *, void *), void *userdata,
                        struct moat_error **reterr)
{
        int count = 0;

        for (;;) {
                ssize_t k = read(f->fd, f->buf + f->n, READ_LINE_MAX - f->n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return moat_error_set(reterr, errno, "reading log file '%s'", f->path);
                if (k == 0)
                        return count;
                f->n += (size_t) k;
                size_t p = 0;
                for (;;) {
                        char *nl = memchr(f->buf + p, '\n', f->n - p);
                        if (!nl)
                                break;
                        f->lineno++;
                        struct moat_log_entry e;
                        json_t *doc = NULL;
                        if (parse_entry(f->buf + p, (size_t) (nl - (f->buf + p)), &e, &doc) < 0)
                                return moat_error_setx(reterr, -EBADMSG, "log file '%s': line %zu is not a log entry",
                                                       f->path, f->lineno);
                        int r = cb(&e, userdata);
                        json_decref(doc);
                        if (r != 0)
                                return r;
                        count++;
                        p = (size_t) (nl - f->buf) + 1;
                }
                if (p == 0 && f->n == READ_LINE_MAX)
                        return moat_error_setx(reterr, -EBADMSG, "log file '%s': line %zu is longer than %u bytes",
                                               f->path, f->lineno + 1, READ_LINE_MAX);
                memmove(f->buf, f->buf + p, f->n - p);
                f->n -= p;
        }
}

int moat_log_follow_read(struct moat_log_follow *f, int (*cb)(const struct moat_log_entry *e, void *userdata),
                         void *userdata, struct moat_error **reterr)
{
        struct stat st;
        int total = 0, r;

        if (f->fd < 0) {
                follow_reopen(f);
                if (f->fd < 0)
                        return 0;
        }
        r = follow_drain(f, cb, userdata, reterr);
        if (r < 0)
                return r;
        total += r;
        /* Rotated (or truncated) since: finish this file, then the new one. */
        if (stat(f->path, &st) == 0 && (st.st_dev != f->dev || st.st_ino != f->ino)) {
                follow_reopen(f);
                r = follow_drain(f, cb, userdata, reterr);
                if (r < 0)
                        return r;
                total += r;
        }
        return total;
}
