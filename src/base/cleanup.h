/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Ownership through cleanup attributes. A variable declared with one of
 * these is released when it goes out of scope; TAKE_PTR/TAKE_FD hand the
 * value on and leave the variable empty so nothing is released twice.
 * Every release function accepts NULL / -EBADF.
 */

#include "base/compat.h"

#include <dirent.h>
#include <stdio.h>
#include <unistd.h>

#define DEFINE_CLEANUP_FUNC(type, func)                  \
        static inline void func##p(type *p)              \
        {                                                \
                if (*p)                                  \
                        func(*p);                        \
        }

static inline void freep(void *p)
{
        free(*(void **)p);
}

static inline void closep(int *fd)
{
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}

static inline void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

static inline void strv_free(char **v)
{
        if (!v)
                return;
        for (char **i = v; *i; i++)
                free(*i);
        free(v);
}
DEFINE_CLEANUP_FUNC(char **, strv_free)

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_strv_free_ _cleanup_(strv_freep)

#define TAKE_PTR(p)                          \
        ({                                   \
                typeof(p) _taken = (p);      \
                (p) = NULL;                  \
                _taken;                      \
        })

#define TAKE_FD(fd)                          \
        ({                                   \
                int _taken = (fd);           \
                (fd) = -EBADF;               \
                _taken;                      \
        })

/* Close and mark empty; returns -EBADF so `fd = safe_close(fd)` reads well. */
static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return -EBADF;
}
