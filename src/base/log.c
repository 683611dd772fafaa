/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/log.h"

static int log_fd = -EBADF;
static enum log_format log_fmt = LOG_FORMAT_TEXT;
static enum log_level log_max = LOG_LEVEL_WARNING;
static const char *log_program = "moat";
static bool log_stderr_too;

static const char *const level_names[] = {
        [LOG_LEVEL_ERROR] = "error",
        [LOG_LEVEL_WARNING] = "warning",
        [LOG_LEVEL_INFO] = "info",
        [LOG_LEVEL_DEBUG] = "debug",
};

void log_setup(int fd, enum log_format format, enum log_level max_level, const char *program)
{
        log_fd = fd;
        log_fmt = format;
        log_max = max_level;
        if (program)
                log_program = program;
}

void log_set_max_level(enum log_level level)
{
        log_max = level;
}

bool log_debug_enabled(void)
{
        return log_max >= LOG_LEVEL_DEBUG;
}

void log_also_stderr(bool yes)
{
        log_stderr_too = yes;
}

/* JSON string escaping for the log line; written by hand because the base
 * module links no JSON library and this is the only place it needs one. */
static void json_escape(FILE *f, const char *s)
{
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c == '\n')
                        fputs("\\n", f);
                else if (c == '\t')
                        fputs("\\t", f);
                else if (c < 0x20)
                        fprintf(f, "\\u%04x", c);
                else
                        fputc(c, f);
        }
}

void log_emit(enum log_level level, const char *fmt, ...)
{
        char msg[4096];
        va_list ap;
        int saved = errno;

        if (level > log_max)
                return;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        int fd = log_fd >= 0 ? log_fd : STDERR_FILENO;
        char *line = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&line, &len);
        if (!f) {
                errno = saved;
                return;
        }
        if (log_fmt == LOG_FORMAT_JSON) {
                struct timespec ts;
                struct tm tm;
                char when[64];
                clock_gettime(CLOCK_REALTIME, &ts);
                gmtime_r(&ts.tv_sec, &tm);
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
                fprintf(f, "{\"level\":\"%s\",\"msg\":\"", level_names[level]);
                json_escape(f, msg);
                fprintf(f, "\",\"time\":\"%s.%09ldZ\"}\n", when, ts.tv_nsec);
        } else if (level == LOG_LEVEL_ERROR || level == LOG_LEVEL_WARNING) {
                fprintf(f, "%s: %s%s\n", log_program, level == LOG_LEVEL_WARNING ? "warning: " : "", msg);
        } else {
                fprintf(f, "%s: %s: %s\n", log_program, level_names[level], msg);
        }
        fclose(f);
        if (line) {
                if (write_all(fd, line, len) < 0)
                        errno = saved;
                if (log_stderr_too && fd != STDERR_FILENO && level <= LOG_LEVEL_WARNING) {
                        char *t = NULL;
                        if (asprintf(&t, "%s: %s\n", log_program, msg) >= 0) {
                                if (write_all(STDERR_FILENO, t, strlen(t)) < 0)
                                errno = saved;
                                free(t);
                        }
                }
        }
        free(line);
        errno = saved;
}
