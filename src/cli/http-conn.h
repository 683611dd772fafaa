/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A small HTTP/1.1 client connection over a unix socket: what the moat CLI
 * needs to talk to its daemon, and nothing else (no TLS, no proxies, no
 * redirects, no TCP). One request at a time on one connection, kept alive
 * between sequential requests and reopened when the server has closed it.
 *
 * A request is sent whole by moat_http_conn_request (blocking; a streamed
 * body is pulled from a callback). Its response is read either from the
 * caller's own poll loop (poll moat_http_conn_fd() for POLLIN, then
 * moat_http_conn_feed(), which never waits) or with the blocking
 * moat_http_conn_wait_head() / moat_http_conn_wait(). The body goes to the
 * request's on_body callback as it arrives.
 *
 * An upgrade request (upgrade = "tcp") answered with 101, or with a 2xx
 * (docker's raw stream for attach and exec), ends the HTTP exchange after
 * the head: moat_http_conn_take() hands over the socket together with the
 * bytes already read past the head.
 *
 * Bounds: a request head MOAT_HTTP_REQUEST_HEAD_MAX, a response head
 * (interim 1xx heads included) MOAT_HTTP_HEAD_MAX, MOAT_HTTP_MAX_HEADERS
 * header fields; the body is the callback's to bound.
 */

#include "base/compat.h"

#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

#define MOAT_HTTP_HEAD_MAX (64u * 1024)
#define MOAT_HTTP_REQUEST_HEAD_MAX (64u * 1024)
#define MOAT_HTTP_MAX_HEADERS 128u

struct moat_http_conn;

struct moat_http_header {
        char *name;
        char *value;
};

struct moat_http_response {
        int status;
        unsigned version_major, version_minor;
        char reason[128];
        struct moat_http_header *headers;       /* in arrival order, duplicates kept */
        size_t n_headers;
        bool head_done;
        bool complete;
        bool upgraded;          /* the socket now carries another protocol: moat_http_conn_take */
        bool keep_alive;        /* once complete: the connection serves the next request */
        uint64_t body_len;      /* body bytes delivered so far */
};

/* A streamed request body: up to len bytes into buf; 0 at its end, -errno
 * to abort the request. */
typedef ssize_t (*moat_http_source_fn)(char *buf, size_t len, void *userdata);
/* A piece of the response body; a negative return aborts the response (the
 * connection is closed) and is returned by feed/wait. */
typedef int (*moat_http_body_fn)(const struct moat_http_response *resp, const char *data, size_t len,
                                 void *userdata, struct moat_error **reterr);

struct moat_http_request {
        const char *method;
        const char *target;             /* origin form: "/v1.51/containers/json?all=1" */
        const char *host;               /* the Host header; NULL: "localhost" */
        const char *const *headers;     /* "Name: value" lines, NULL-terminated; may be NULL */
        const void *body;               /* sent with Content-Length: body_len when not NULL */
        size_t body_len;
        moat_http_source_fn source;     /* a streamed body, instead of body */
        void *source_data;
        int64_t source_length;          /* the source's length, or -1: chunked transfer coding */
        const char *upgrade;            /* a protocol: Connection: Upgrade and Upgrade: <it> */
        moat_http_body_fn on_body;      /* NULL: the body is read and dropped */
        void *userdata;
};

/* Nothing is connected yet: the first request (or moat_http_conn_connect)
 * does. */
MOAT_NODISCARD int moat_http_conn_new(const char *socket_path, struct moat_http_conn **ret,
                                      struct moat_error **reterr);
void moat_http_conn_free(struct moat_http_conn *c);
static inline void moat_http_conn_freep(struct moat_http_conn **c)
{
        moat_http_conn_free(*c);
        *c = NULL;
}
#define _cleanup_http_conn_ __attribute__((cleanup(moat_http_conn_freep)))

/* Make sure a live connection is open: a kept-alive one the server has not
 * closed, else a new one. Only connect(2)'s failures come from here. */
MOAT_NODISCARD int moat_http_conn_connect(struct moat_http_conn *c, struct moat_error **reterr);

/* Send req (connecting first if needed; a previous response not read to
 * its end is abandoned with its connection). Blocks until all of it is
 * sent, or until the server answers early while a streamed body is still
 * being sent (the answer is then read as usual; the connection is not
 * reused). req's pointers are not kept, except on_body and userdata. */
MOAT_NODISCARD int moat_http_conn_request(struct moat_http_conn *c, const struct moat_http_request *req,
                                          struct moat_error **reterr);

/* The socket to poll for POLLIN while a response is due; -EBADF when none. */
int moat_http_conn_fd(const struct moat_http_conn *c);
/* Read and parse what the socket holds now, without waiting: 1 when the
 * response is complete (or upgraded), 0 when more is to come, -errno. */
MOAT_NODISCARD int moat_http_conn_feed(struct moat_http_conn *c, struct moat_error **reterr);
/* Block until the response head has arrived (1xx interim heads skipped). */
MOAT_NODISCARD int moat_http_conn_wait_head(struct moat_http_conn *c, struct moat_error **reterr);
/* Block until the response is complete (or upgraded). */
MOAT_NODISCARD int moat_http_conn_wait(struct moat_http_conn *c, struct moat_error **reterr);

/* The current response (status 0 until its head has arrived). */
const struct moat_http_response *moat_http_conn_response(const struct moat_http_conn *c);
/* The first header field called name (case-insensitive); NULL if none. */
const char *moat_http_response_header(const struct moat_http_response *resp, const char *name);

/* After an upgrade: the socket (blocking, O_CLOEXEC; the caller owns it)
 * and the bytes that followed the head (*ret_buf malloc'ed, NULL when
 * none). The connection is left empty; the next request opens another. */
MOAT_NODISCARD int moat_http_conn_take(struct moat_http_conn *c, int *ret_fd, char **ret_buf, size_t *ret_len,
                                       struct moat_error **reterr);
