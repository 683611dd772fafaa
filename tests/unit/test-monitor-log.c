/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Unit tests of src/monitor/logfile.c and logread.c: docker's jsonlog
 * escaping byte for byte, RFC3339Nano as Go prints it, the copier's line
 * splitting (newlines, 16 KiB partials, EOF), rotation into exactly
 * max-file files, reading the entries back in order; and the multiplexed
 * frame header.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "monitor/monitor.h"
#include "tap.h"

static const struct timespec T = { .tv_sec = 1796148000, .tv_nsec = 123456000 }; /* 2026-12-01T18:00:00.123456Z */

static char *encode(const char *msg, size_t len)
{
        static char out[MOAT_LOG_ENTRY_MAX];
        size_t n = moat_log_encode(out, MOAT_STREAM_STDOUT, msg, len, &T);
        out[n] = '\0';
        return out;
}

static void test_time(void)
{
        char buf[MOAT_RFC3339NANO_MAX];
        struct timespec ts = T, back;

        moat_format_rfc3339nano(&ts, buf);
        is_str(buf, "2026-12-01T18:00:00.123456Z", "trailing zeros of the fraction are dropped");
        ts.tv_nsec = 0;
        moat_format_rfc3339nano(&ts, buf);
        is_str(buf, "2026-12-01T18:00:00Z", "no fraction when it is zero");
        ts.tv_nsec = 5;
        moat_format_rfc3339nano(&ts, buf);
        is_str(buf, "2026-12-01T18:00:00.000000005Z", "nanoseconds");
        is_int(moat_parse_rfc3339nano("2026-12-01T18:00:00.000000005Z", &back), 0, "parse");
        ok(back.tv_sec == ts.tv_sec && back.tv_nsec == 5, "round trip");
        is_int(moat_parse_rfc3339nano("2026-12-01T19:00:00.5+01:00", &back), 0, "parse with an offset");
        ok(back.tv_sec == ts.tv_sec && back.tv_nsec == 500000000, "offset applied");
        is_int(moat_parse_rfc3339nano("2026-12-01 18:00:00Z", &back), -EINVAL, "a space is not RFC 3339");
        is_int(moat_parse_rfc3339nano("2026-12-01T18:00:00", &back), -EINVAL, "a zone is required");
}

static void test_encode(void)
{
        is_str(encode("hello\n", 6), "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-01T18:00:00.123456Z\"}\n",
               "a line as docker writes it");
        is_str(encode("a\t<b>&\"\\\r", 9),
               "{\"log\":\"a\\u0009\\u003cb\\u003e\\u0026\\\"\\\\\\r\",\"stream\":\"stdout\",\"time\":\"2026-12-01T18:00:00.123456Z\"}\n",
               "HTML characters, tab, quote, backslash, CR escaped like Go's jsonlog");
        is_str(encode("\xff" "x\xc3\xa9\xe2\x80\xa8", 7),
               "{\"log\":\"\\ufffdx\xc3\xa9\\u2028\",\"stream\":\"stdout\",\"time\":\"2026-12-01T18:00:00.123456Z\"}\n",
               "invalid UTF-8 becomes U+FFFD, valid stays, U+2028 escaped");
        is_str(encode("\xe0\x80\x80", 3),
               "{\"log\":\"\\ufffd\\ufffd\\ufffd\",\"stream\":\"stdout\",\"time\":\"2026-12-01T18:00:00.123456Z\"}\n",
               "an overlong sequence is invalid byte by byte");
        is_str(encode("", 0), "{\"stream\":\"stdout\",\"time\":\"2026-12-01T18:00:00.123456Z\"}\n",
               "an empty message has no log field (omitempty)");
        char big[MOAT_LOG_LINE_MAX + 1];
        memset(big, 1, sizeof(big));
        ok(strlen(encode(big, sizeof(big))) < MOAT_LOG_ENTRY_MAX, "the worst case fits the bound");
}

static void test_frame(void)
{
        uint8_t h[MOAT_FRAME_HEADER_SIZE];
        enum moat_stream s;
        uint32_t size;

        moat_frame_header(h, MOAT_STREAM_STDERR, 0x01020304);
        ok(h[0] == 2 && h[1] == 0 && h[2] == 0 && h[3] == 0 && h[4] == 1 && h[5] == 2 && h[6] == 3 && h[7] == 4,
           "stream byte, three zeros, big-endian size");
        is_int(moat_frame_parse(h, &s, &size), 0, "parse");
        ok(s == MOAT_STREAM_STDERR && size == 0x01020304, "round trip");
        h[2] = 1;
        is_int(moat_frame_parse(h, &s, &size), -EBADMSG, "non-zero padding is refused");
        h[2] = 0;
        h[0] = 4;
        is_int(moat_frame_parse(h, &s, &size), -EBADMSG, "stream 4 is refused");
}

struct collected {
        char data[1 << 20];
        size_t len;
        int n;
        int n_err;
        int n_partial;
};

static int collect(const struct moat_log_entry *e, void *userdata)
{
        struct collected *c = userdata;
        if (c->len + e->len <= sizeof(c->data)) {
                memcpy(c->data + c->len, e->data, e->len);
                c->len += e->len;
        }
        c->n++;
        if (e->stream == MOAT_STREAM_STDERR)
                c->n_err++;
        if (e->len == 0 || e->data[e->len - 1] != '\n')
                c->n_partial++;
        return 0;
}

static char tmpdir[] = "/tmp/test-monitor-log-XXXXXX";

static char *path_of(const char *name)
{
        static char p[256];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
        return p;
}

static void feed(struct moat_log_stream *s, struct moat_logfile *lf, const char *data, size_t len)
{
        while (len > 0) {
                char *p;
                size_t avail;
                moat_log_stream_space(s, &p, &avail);
                size_t n = len < avail ? len : avail;
                memcpy(p, data, n);
                int r = moat_log_stream_commit(s, lf, n, NULL);
                (void) r;
                data += n;
                len -= n;
        }
}

static void test_split(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_logfile *lf = NULL;
        static struct moat_log_stream out, errs;
        static struct collected c;

        is_int(moat_logfile_open(path_of("split.log"), 0, 1, &lf, &err), 0, "open a log");
        moat_log_stream_init(&out, MOAT_STREAM_STDOUT);
        moat_log_stream_init(&errs, MOAT_STREAM_STDERR);
        feed(&out, lf, "one\ntw", 6);
        feed(&errs, lf, "e1\n", 3);
        feed(&out, lf, "o\n", 2);
        /* a 40000-byte line: two 16 KiB partials and the rest with its newline */
        static char longline[40001];
        memset(longline, 'z', 40000);
        longline[40000] = '\n';
        feed(&out, lf, longline, sizeof(longline));
        feed(&out, lf, "end", 3);
        is_int(moat_log_stream_finish(&out, lf, NULL), 0, "finish at EOF");
        moat_logfile_close(lf);

        is_int(moat_logfile_read(path_of("split.log"), 1, collect, &c, &err), 0, "read back");
        is_int(c.n, 7, "one, e1, two, 3 pieces of the long line, end");
        is_int(c.n_err, 1, "one stderr entry");
        is_int(c.n_partial, 3, "two 16 KiB partials and the unterminated end");
        ok(c.len == 4 + 3 + 4 + 40001 + 3 && memcmp(c.data, "one\ne1\ntwo\n", 11) == 0 &&
           memcmp(c.data + c.len - 3, "end", 3) == 0,
           "the bytes come back in order");

        /* the file itself: the first entry byte for byte apart from time */
        _cleanup_free_ char *text = NULL;
        size_t len;
        is_int(read_full_file_at(AT_FDCWD, path_of("split.log"), 1 << 22, &text, &len), 0, "read the file");
        ok(text && strncmp(text, "{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\"", 41) == 0,
           "entries are docker's json-file lines");
}

static int count_files(const char *prefix)
{
        DIR *d = opendir(tmpdir);
        struct dirent *de;
        int n = 0;
        while (d && (de = readdir(d)))
                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                        n++;
        if (d)
                closedir(d);
        return n;
}

static void test_rotation(void)
{
        _cleanup_error_ struct moat_error *err = NULL;
        struct moat_logfile *lf = NULL;
        static struct collected c;
        char line[101];
        struct stat st;

        memset(line, 'r', 100);
        line[100] = '\n';
        is_int(moat_logfile_open(path_of("rot.log"), 4096, 3, &lf, &err), 0, "open with max-size 4096, max-file 3");
        for (int i = 0; i < 500; i++) {
                int r = moat_logfile_write(lf, MOAT_STREAM_STDOUT, line, sizeof(line), &T, NULL);
                if (r < 0)
                        break;
        }
        moat_logfile_close(lf);
        is_int(count_files("rot.log"), 3, "exactly rot.log, rot.log.1, rot.log.2");
        ok(stat(path_of("rot.log.2"), &st) == 0 && st.st_size >= 4096 && st.st_size < 4096 + 200,
           "a rotated file holds max-size and at most one entry more");
        ok(stat(path_of("rot.log"), &st) == 0 && (st.st_mode & 0777) == 0640, "log files are 0640");
        is_int(moat_logfile_read(path_of("rot.log"), 3, collect, &c, &err), 0, "read across the rotated files");
        ok(c.n > 60 && c.n < 500, "the oldest entries are gone, the rest are read");

        /* max-file 1: truncate in place */
        is_int(moat_logfile_open(path_of("one.log"), 1000, 1, &lf, &err), 0, "open with max-file 1");
        for (int i = 0; i < 50; i++) {
                int r = moat_logfile_write(lf, MOAT_STREAM_STDOUT, line, sizeof(line), &T, NULL);
                (void) r;
        }
        moat_logfile_close(lf);
        is_int(count_files("one.log"), 1, "no rotated files with max-file 1");
        ok(stat(path_of("one.log"), &st) == 0 && st.st_size < 1000 + 200, "the file is truncated instead");

        /* a line being written is not an entry yet; garbage is an error */
        int fd = open(path_of("bad.log"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ok(fd >= 0 && write(fd, "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-01T18:00:00Z\"}\n{\"log\":", 70) == 70,
           "write a log with a half line");
        close(fd);
        static struct collected c2;
        is_int(moat_logfile_read(path_of("bad.log"), 1, collect, &c2, &err), 0, "a half last line is skipped");
        is_int(c2.n, 1, "one entry");
        fd = open(path_of("bad.log"), O_WRONLY | O_APPEND | O_CLOEXEC);
        ok(fd >= 0 && write(fd, "x\n", 2) == 2, "complete it with garbage");
        close(fd);
        is_int(moat_logfile_read(path_of("bad.log"), 1, collect, &c2, &err), -EBADMSG, "garbage is an error");
        ok(err && strstr(err->msg, "line 2"), "naming the line");
}

int main(void)
{
        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp\n");
                return 1;
        }
        test_time();
        test_encode();
        test_frame();
        test_split();
        test_rotation();
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd) != 0)
                printf("# could not remove %s\n", tmpdir);
        return tap_done();
}
