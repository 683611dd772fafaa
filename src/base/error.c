/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

#include <stdarg.h>
#include <stdio.h>

#include "base/error.h"

MOAT_PRINTF(4, 0)
static int error_vset(struct moat_error **reterr, int r, bool with_errno, const char *fmt, va_list ap)
{
        int errnum = r < 0 ? -r : r;

        if (errnum == 0)
                errnum = EIO;
        if (!reterr || *reterr)
                return -errnum;

        struct moat_error *e = calloc(1, sizeof(*e));
        if (!e)
                return -errnum;

        char *base = NULL;
        if (vasprintf(&base, fmt, ap) < 0)
                base = NULL;
        if (base && with_errno) {
                char *full = NULL;
                if (asprintf(&full, "%s: %s", base, strerror(errnum)) >= 0) {
                        free(base);
                        base = full;
                }
        }
        e->errnum = errnum;
        e->msg = base ? base : strdup(strerror(errnum));
        *reterr = e;
        return -errnum;
}

int moat_error_set(struct moat_error **reterr, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        r = error_vset(reterr, r, true, fmt, ap);
        va_end(ap);
        return r;
}

int moat_error_setx(struct moat_error **reterr, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        r = error_vset(reterr, r, false, fmt, ap);
        va_end(ap);
        return r;
}

int moat_error_wrap(struct moat_error **reterr, int r, const char *fmt, ...)
{
        int errnum = r < 0 ? -r : r;
        va_list ap;

        if (errnum == 0)
                errnum = EIO;
        if (!reterr)
                return -errnum;

        va_start(ap, fmt);
        if (!*reterr) {
                r = error_vset(reterr, errnum, true, fmt, ap);
                va_end(ap);
                return r;
        }

        char *ctx = NULL, *full = NULL;
        if (vasprintf(&ctx, fmt, ap) >= 0 && asprintf(&full, "%s: %s", ctx, (*reterr)->msg) >= 0) {
                free((*reterr)->msg);
                (*reterr)->msg = full;
        }
        free(ctx);
        va_end(ap);
        return -errnum;
}

void moat_error_free(struct moat_error *e)
{
        if (!e)
                return;
        free(e->msg);
        free(e);
}
