/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * docker's json-file log driver, both ends: the writer the monitor feeds
 * with the container's output (line splitting as docker's copier, entries
 * as its jsonlog encoder, rotation as its LogFile), and the reader the
 * daemon uses for `docker logs`.
 *
 * The encoder is hand-written rather than jansson's: docker's escaping
 * differs from any JSON library's (it escapes <, > and &, writes tabs as
 * \u0009, replaces invalid UTF-8 by \ufffd byte by byte), readers compare
 * the files byte for byte with docker's, and the monitor's idle memory
 * budget has no room for a JSON library (see loop.c). The reader
 * (logread.c) uses jansson.
 *
 * Memory: the writer owns no buffer beyond one encoded entry, which is
 * allocated on first use; a write error (a full disk) drops the entry
 * rather than ever blocking the container.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "monitor/monitor.h"

/* ---- framing ---------------------------------------------------------------- */

void moat_frame_header(uint8_t hdr[MOAT_FRAME_HEADER_SIZE], enum moat_stream stream, uint32_t size)
{
        hdr[0] = (uint8_t) stream;
        hdr[1] = hdr[2] = hdr[3] = 0;
        hdr[4] = (uint8_t) (size >> 24);
        hdr[5] = (uint8_t) (size >> 16);
        hdr[6] = (uint8_t) (size >> 8);
        hdr[7] = (uint8_t) size;
}

int moat_frame_parse(const uint8_t hdr[MOAT_FRAME_HEADER_SIZE], enum moat_stream *ret_stream, uint32_t *ret_size)
{
        if (hdr[0] > MOAT_STREAM_SYSTEMERR || hdr[1] || hdr[2] || hdr[3])
                return -EBADMSG;
        *ret_stream = (enum moat_stream) hdr[0];
        *ret_size = (uint32_t) hdr[4] << 24 | (uint32_t) hdr[5] << 16 | (uint32_t) hdr[6] << 8 | hdr[7];
        return 0;
}

/* ---- time ---------------------------------------------------------------------- */

void moat_format_rfc3339nano(const struct timespec *ts, char buf[MOAT_RFC3339NANO_MAX])
{
        struct tm tm;
        time_t t = ts->tv_sec;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, MOAT_RFC3339NANO_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
        long ns = ts->tv_nsec;
        if (ns > 0 && ns < 1000000000L) {
                char frac[11];
                snprintf(frac, sizeof(frac), ".%09ld", ns);
                size_t fl = 10;
                while (frac[fl - 1] == '0')
                        fl--;
                memcpy(buf + n, frac, fl);
                n += fl;
        }
        buf[n++] = 'Z';
        buf[n] = '\0';
}

int moat_parse_rfc3339nano(const char *s, struct timespec *ret)
{
        struct tm tm = {};
        const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        long ns = 0;

        if (!p)
                return -EINVAL;
        if (*p == '.') {
                int digits = 0;
                for (p++; *p >= '0' && *p <= '9'; p++, digits++)
                        if (digits < 9)
                                ns = ns * 10 + (*p - '0');
                if (digits == 0)
                        return -EINVAL;
                for (; digits < 9; digits++)
                        ns *= 10;
        }
        time_t t = timegm(&tm);
        if (*p == 'Z')
                p++;
        else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
                int h = (p[1] - '0') * 10 + (p[2] - '0'), m = (p[4] - '0') * 10 + (p[5] - '0');
                if (h < 0 || h > 23 || m < 0 || m > 59)
                        return -EINVAL;
                t += (*p == '+' ? -1 : 1) * (h * 3600 + m * 60);
                p += 6;
        } else
                return -EINVAL;
        if (*p)
                return -EINVAL;
        ret->tv_sec = t;
        ret->tv_nsec = ns;
        return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (Go's utf8.DecodeRune rules:
 * no overlongs, no surrogates, at most U+10FFFF), 0 when invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t avail, uint32_t *ret_cp)
{
        unsigned char c = s[0];
        size_t n;
        uint32_t cp, min;

        if (c >= 0xc2 && c <= 0xdf) {
                n = 2;
                cp = c & 0x1f;
                min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                cp = c & 0x0f;
                min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                cp = c & 0x07;
                min = 0x10000;
        } else
                return 0;
        if (avail < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

static size_t encode_string(char *out, const unsigned char *s, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        size_t o = 0;

        out[o++] = '"';
        for (size_t i = 0; i < len;) {
                unsigned char b = s[i];
                if (b < 0x80) {
                        if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') {
                                out[o++] = (char) b;
                        } else if (b == '\\' || b == '"') {
                                out[o++] = '\\';
                                out[o++] = (char) b;
                        } else if (b == '\n') {
                                out[o++] = '\\';
                                out[o++] = 'n';
                        } else if (b == '\r') {
                                out[o++] = '\\';
                                out[o++] = 'r';
                        } else {
                                memcpy(out + o, "\\u00", 4);
                                o += 4;
                                out[o++] = hex[b >> 4];
                                out[o++] = hex[b & 0xf];
                        }
                        i++;
                        continue;
                }
                uint32_t cp;
                size_t n = utf8_valid_len(s + i, len - i, &cp);
                if (n == 0) {
                        memcpy(out + o, "\\ufffd", 6);
                        o += 6;
                        i++;
                        continue;
                }
                if (cp == 0x2028 || cp == 0x2029) {
                        memcpy(out + o, "\\u202", 5);
                        o += 5;
                        out[o++] = hex[cp & 0xf];
                } else {
                        memcpy(out + o, s + i, n);
                        o += n;
                }
                i += n;
        }
        out[o++] = '"';
        return o;
}

static const char *stream_name(enum moat_stream stream)
{
        return stream == MOAT_STREAM_STDERR ? "stderr" : "stdout";
}

/* With newline, the message is logged with a newline after it (a
 * complete line whose newline the splitter consumed). */
static size_t encode_entry(char *out, enum moat_stream stream, const void *msg, size_t len, bool newline,
                           const struct timespec *ts)
{
        char tbuf[MOAT_RFC3339NANO_MAX];
        size_t o = 0;

        moat_format_rfc3339nano(ts, tbuf);
        out[o++] = '{';
        if (len > 0 || newline) {
                memcpy(out + o, "\"log\":", 6);
                o += 6;
                o += encode_string(out + o, msg, len);
                if (newline) {
                        o--;
                        memcpy(out + o, "\\n\"", 3);
                        o += 3;
                }
                out[o++] = ',';
        }
        o += (size_t) sprintf(out + o, "\"stream\":\"%s\",\"time\":\"%s\"}\n", stream_name(stream), tbuf);
        return o;
}

size_t moat_log_encode(char *out, enum moat_stream stream, const void *msg, size_t len, const struct timespec *ts)
{
        return encode_entry(out, stream, msg, len, false, ts);
}

/* ---- the writer --------------------------------------------------------------- */

struct moat_logfile {
        int dir_fd;
        char *name;
        int fd;
        uint64_t size;
        uint64_t max_size;
        unsigned max_files;
        char *entry; /* MOAT_LOG_ENTRY_MAX bytes, allocated on first write */
};

static int split_path(const char *path, int *ret_dir_fd, char **ret_name)
{
        const char *slash = strrchr(path, '/');
        _cleanup_free_ char *dir = NULL;

        if (!slash)
                dir = strdup(".");
        else if (slash == path)
                dir = strdup("/");
        else
                dir = strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        const char *base = slash ? slash + 1 : path;
        if (!*base || streq(base, ".") || streq(base, ".."))
                return -EINVAL;
        *ret_name = strdup(base);
        if (!*ret_name)
                return -ENOMEM;
        *ret_dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*ret_dir_fd < 0) {
                int r = -errno;
                free(*ret_name);
                *ret_name = NULL;
                return r;
        }
        return 0;
}

static int open_log(struct moat_logfile *lf, bool truncate)
{
        int fd = openat(lf->dir_fd, lf->name,
                        O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EINVAL;
        }
        lf->fd = fd;
        lf->size = (uint64_t) st.st_size;
        return 0;
}

int moat_logfile_open(const char *path, uint64_t max_size, unsigned max_files, struct moat_logfile **ret,
                      struct moat_error **reterr)
{
        struct moat_logfile *lf = calloc(1, sizeof(*lf));
        int r;

        if (!lf)
                return moat_error_set(reterr, -ENOMEM, "log file");
        lf->fd = lf->dir_fd = -EBADF;
        lf->max_size = max_size;
        lf->max_files = max_files ? max_files : 1;
        r = split_path(path, &lf->dir_fd, &lf->name);
        if (r >= 0)
                r = open_log(lf, false);
        if (r < 0) {
                moat_logfile_close(lf);
                return moat_error_set(reterr, r, "log file '%s'", path);
        }
        *ret = lf;
        return 0;
}

void moat_logfile_close(struct moat_logfile *lf)
{
        if (!lf)
                return;
        safe_close(lf->fd);
        safe_close(lf->dir_fd);
        free(lf->name);
        free(lf->entry);
        free(lf);
}

static int rotate(struct moat_logfile *lf)
{
        char from[PATH_MAX], to[PATH_MAX];

        lf->fd = safe_close(lf->fd);
        if (lf->max_files >= 2) {
                snprintf(to, sizeof(to), "%s.%u", lf->name, lf->max_files - 1);
                if (unlinkat(lf->dir_fd, to, 0) < 0 && errno != ENOENT)
                        return -errno;
                for (unsigned i = lf->max_files - 1; i > 1; i--) {
                        snprintf(to, sizeof(to), "%s.%u", lf->name, i);
                        snprintf(from, sizeof(from), "%s.%u", lf->name, i - 1);
                        if (renameat(lf->dir_fd, from, lf->dir_fd, to) < 0 && errno != ENOENT)
                                return -errno;
                }
                snprintf(to, sizeof(to), "%s.1", lf->name);
                if (renameat(lf->dir_fd, lf->name, lf->dir_fd, to) < 0 && errno != ENOENT)
                        return -errno;
        }
        return open_log(lf, true);
}

static int logfile_write(struct moat_logfile *lf, enum moat_stream stream, const void *msg, size_t len, bool newline,
                         const struct timespec *ts, struct moat_error **reterr)
{
        int r;

        if (len > MOAT_LOG_LINE_MAX + 1)
                return moat_error_setx(reterr, -EMSGSIZE, "log entry of %zu bytes: at most %u", len,
                                       MOAT_LOG_LINE_MAX + 1);
        if (!lf->entry) {
                lf->entry = malloc(MOAT_LOG_ENTRY_MAX);
                if (!lf->entry)
                        return moat_error_set(reterr, -ENOMEM, "log entry buffer");
        }
        if (lf->fd < 0 || (lf->max_size > 0 && lf->size >= lf->max_size)) {
                r = rotate(lf);
                if (r < 0)
                        return moat_error_set(reterr, r, "rotating log file '%s'", lf->name);
        }
        size_t n = encode_entry(lf->entry, stream, msg, len, newline, ts);
        r = write_all(lf->fd, lf->entry, n);
        if (r < 0)
                return moat_error_set(reterr, r, "writing log file '%s'", lf->name);
        lf->size += n;
        return 0;
}

int moat_logfile_write(struct moat_logfile *lf, enum moat_stream stream, const void *msg, size_t len,
                       const struct timespec *ts, struct moat_error **reterr)
{
        return logfile_write(lf, stream, msg, len, false, ts, reterr);
}

int moat_logfile_position(const struct moat_logfile *lf, struct moat_monitor_log_position *ret)
{
        struct stat st;

        if (lf->fd < 0)
                return -EBADF;
        if (fstat(lf->fd, &st) < 0)
                return -errno;
        *ret = (struct moat_monitor_log_position) {
                .known = true,
                .dev = (uint64_t) st.st_dev,
                .ino = (uint64_t) st.st_ino,
                .size = (uint64_t) st.st_size,
        };
        return 0;
}

/* ---- line splitting ---------------------------------------------------------- */

void moat_log_stream_init(struct moat_log_stream *s, enum moat_stream stream)
{
        s->stream = stream;
        s->n = 0;
        s->partial = false;
}

void moat_log_stream_space(struct moat_log_stream *s, char **ret_ptr, size_t *ret_avail)
{
        *ret_ptr = s->buf + s->n;
        *ret_avail = sizeof(s->buf) - s->n;
}

static int emit(struct moat_log_stream *s, struct moat_logfile *lf, const char *p, size_t len, bool complete,
                struct moat_error **reterr)
{
        struct timespec now, ts;

        clock_gettime(CLOCK_REALTIME, &now);
        if (complete) {
                ts = s->partial ? s->partial_ts : now;
                s->partial = false;
        } else {
                if (!s->partial)
                        s->partial_ts = now;
                ts = s->partial_ts;
                s->partial = true;
        }
        if (!lf)
                return 0;
        /* The entry carries the newline of a complete line. */
        return logfile_write(lf, s->stream, p, len, complete, &ts, reterr);
}

int moat_log_stream_commit(struct moat_log_stream *s, struct moat_logfile *lf, size_t n, struct moat_error **reterr)
{
        size_t p = 0;
        int r = 0, k;

        s->n += n;
        for (;;) {
                char *nl = memchr(s->buf + p, '\n', s->n - p);
                if (!nl)
                        break;
                size_t q = (size_t) (nl - (s->buf + p));
                k = emit(s, lf, s->buf + p, q, true, reterr);
                if (k < 0 && r == 0)
                        r = k;
                p += q + 1;
        }
        if (p == 0 && s->n == sizeof(s->buf)) {
                k = emit(s, lf, s->buf, s->n, false, reterr);
                if (k < 0 && r == 0)
                        r = k;
                p = s->n;
        }
        if (p > 0) {
                memmove(s->buf, s->buf + p, s->n - p);
                s->n -= p;
        }
        return r;
}

int moat_log_stream_finish(struct moat_log_stream *s, struct moat_logfile *lf, struct moat_error **reterr)
{
        int r = 0;
        if (s->n > 0)
                r = emit(s, lf, s->buf, s->n, false, reterr);
        s->n = 0;
        s->partial = false;
        return r;
}

/* ---- file names ------------------------------------------------------------------ */

int moat_monitor_file_name(const char *exec_id, const char *name, char *buf, size_t size)
{
        int n = exec_id ? snprintf(buf, size, "exec-%s.%s", exec_id, name) : snprintf(buf, size, "%s", name);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        if (exec_id && (strchr(exec_id, '/') || exec_id[0] == '\0' || exec_id[0] == '.'))
                return -EINVAL;
        return 0;
}
