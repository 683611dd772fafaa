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
