/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Logging for the binaries. Libraries call only log_debug(); the CLI logs
 * errors once, at the top. Output goes to stderr or to the --log file, as
 * text or as JSON lines {"level","msg","time"} (containerd reads the last
 * error line of that file).
 */

#include "base/compat.h"

enum log_level {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
};

enum log_format {
        LOG_FORMAT_TEXT,
        LOG_FORMAT_JSON,
};

/* fd is borrowed and must stay open; -EBADF means stderr. */
void log_setup(int fd, enum log_format format, enum log_level max_level, const char *program);
void log_set_max_level(enum log_level level);
bool log_debug_enabled(void);
/* Text to stderr too, besides a --log file (for interactive users). */
void log_also_stderr(bool yes);

void log_emit(enum log_level level, const char *fmt, ...) MOAT_PRINTF(2, 3);

#define log_error(...) log_emit(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_emit(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                        \
        do {                                                  \
                if (log_debug_enabled())                      \
                        log_emit(LOG_LEVEL_DEBUG, __VA_ARGS__); \
        } while (0)
