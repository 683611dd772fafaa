/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The one error contract of moat. A function that can fail returns a
 * negative errno and, when its caller passed a non-NULL reterr, leaves a
 * struct moat_error describing what failed, on what. Callers add context on
 * the way up with moat_error_wrap(), which prefixes the message and returns
 * the same negative value, so propagating stays one line:
 *
 *     r = mount_one(...);
 *     if (r < 0)
 *             return moat_error_wrap(reterr, r, "mounts[%zu]", i);
 *
 * On success *reterr is never touched. Libraries never print errors; the
 * binaries print err->msg once, at the top.
 */

#include "base/compat.h"

struct moat_error {
        int errnum;  /* positive errno */
        char *msg;   /* full message, without a trailing newline */
};

/* Set *reterr (if non-NULL and still empty) and return -abs(r). r may be
 * positive or negative errno; the strerror text is appended. */
int moat_error_set(struct moat_error **reterr, int r, const char *fmt, ...) MOAT_PRINTF(3, 4);

/* Like moat_error_set, without the strerror suffix (for validation errors
 * whose message already says everything). */
int moat_error_setx(struct moat_error **reterr, int r, const char *fmt, ...) MOAT_PRINTF(3, 4);

/* Prefix context to an existing error ("ctx: old message"); if none was
 * set, behaves like moat_error_set. Returns -abs(r). */
int moat_error_wrap(struct moat_error **reterr, int r, const char *fmt, ...) MOAT_PRINTF(3, 4);

void moat_error_free(struct moat_error *e);

static inline void moat_error_freep(struct moat_error **e)
{
        moat_error_free(*e);
        *e = NULL;
}
#define _cleanup_error_ __attribute__((cleanup(moat_error_freep)))
