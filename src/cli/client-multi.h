/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Several streamed GETs at once on the client's daemon (a connection each,
 * polled together), for verbs that follow many streams together: docker stats
 * reads every container's stats stream concurrently. Each stream's body
 * is cut into lines (each bounded by MOAT_CLIENT_MULTI_LINE_MAX) handed to
 * line(); when a stream ends (the daemon closed it, an error status, a
 * broken connection) end() is called once with 0 or -errno and a message.
 */

#include "base/compat.h"

#include "base/error.h"
#include "cli/client.h"

#define MOAT_CLIENT_MULTI_LINE_MAX (1024u * 1024)
#define MOAT_CLIENT_MULTI_MAX 1024u   /* streams at once */

struct moat_client_multi;

typedef void (*moat_client_line_fn)(size_t key, const char *line, size_t len, void *userdata);
typedef void (*moat_client_end_fn)(size_t key, int r, const char *message, void *userdata);

MOAT_NODISCARD int moat_client_multi_new(struct moat_client *c, moat_client_line_fn line, moat_client_end_fn end,
                                         void *userdata, struct moat_client_multi **ret,
                                         struct moat_error **reterr);
void moat_client_multi_free(struct moat_client_multi *m);
static inline void moat_client_multi_freep(struct moat_client_multi **m)
{
        moat_client_multi_free(*m);
        *m = NULL;
}
#define _cleanup_client_multi_ __attribute__((cleanup(moat_client_multi_freep)))

/* Start GET target (without the version prefix) as the stream of key. */
MOAT_NODISCARD int moat_client_multi_add(struct moat_client_multi *m, size_t key, const char *target,
                                         struct moat_error **reterr);
/* Stop and forget the stream of key (no end() call); absent is fine. */
void moat_client_multi_remove(struct moat_client_multi *m, size_t key);
/* Move the streams for up to timeout_ms, calling line() and end(). */
MOAT_NODISCARD int moat_client_multi_run(struct moat_client_multi *m, int timeout_ms, struct moat_error **reterr);
