/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * First include of every moat source file: feature macros, attribute
 * shorthands and the small helpers that everything else assumes.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#define MOAT_NODISCARD __attribute__((warn_unused_result))
#define MOAT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MOAT_UNUSED __attribute__((unused))
#define MOAT_NORETURN __attribute__((noreturn))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define streq(a, b) (strcmp((a), (b)) == 0)

static inline bool strempty(const char *s)
{
        return !s || !*s;
}

static inline bool startswith(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Negative errno from a libc call that reports failure through errno. */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

#define RET_NERRNO(expr)                          \
        ({                                        \
                int _r = (expr);                  \
                _r < 0 ? negative_errno() : _r;   \
        })
