/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The client side of the Docker Engine API, as moat's verbs use it: the
 * only way src/cli/ reaches the daemon. A client is bound to one host
 * ("unix:///run/moat.sock"), negotiates the API version with GET /_ping on
 * its first request, and offers four kinds of exchange:
 *
 *   - calls: a request with an optional JSON body, the status and the
 *     parsed JSON reply (moat_client_call);
 *   - streams: the body handed to a callback as it arrives (logs, events,
 *     stats; moat_client_stream);
 *   - pending requests: sent, their response head received, their body
 *     collected later while the caller does other things (docker run's
 *     wait; moat_client_pending_*);
 *   - hijacks: 101 Upgrade, then raw bytes both ways with half-close
 *     (attach, exec start; moat_client_hijack).
 *
 * A daemon error ({"message": ...} with a 4xx/5xx status) becomes -errno
 * with "Error response from daemon: <message>", the errno following the
 * status as the docker client classifies it (404 -ENOENT, 409 -EEXIST,
 * 400 -EINVAL, 403 -EPERM, 501 -EOPNOTSUPP, 304 -EALREADY, else -EIO); a
 * daemon that does not answer becomes -ECONNREFUSED with docker's "Cannot
 * connect to the moat daemon at ... Is the moat daemon running?".
 */

#include "base/compat.h"

#include <jansson.h>
#include <poll.h>
#include <sys/types.h>

#include "base/error.h"

#define MOAT_CLIENT_API_VERSION "1.51"    /* the newest version this client speaks */
#define MOAT_CLIENT_DEFAULT_HOST "unix:///run/moat.sock"
#define MOAT_CLIENT_MAX_REPLY (64u * 1024 * 1024)   /* a buffered reply's body */

struct moat_client;
struct moat_client_pending;
struct moat_client_hijack;

/* host: "unix:///path" or NULL for $MOAT_HOST, else the default. */
MOAT_NODISCARD int moat_client_new(const char *host, struct moat_client **ret, struct moat_error **reterr);
void moat_client_free(struct moat_client *c);
static inline void moat_client_freep(struct moat_client **c)
{
        moat_client_free(*c);
        *c = NULL;
}
#define _cleanup_client_ __attribute__((cleanup(moat_client_freep)))

const char *moat_client_host(const struct moat_client *c);
/* The negotiated version (pings the daemon if not done yet). */
MOAT_NODISCARD int moat_client_api_version(struct moat_client *c, const char **ret, struct moat_error **reterr);

/* Percent-encode s for a path segment or query value; NULL on no memory. */
char *moat_client_escape(const char *s);

/*
 * method and target (path with query, without the version prefix:
 * "/containers/json?all=1"). body may be NULL. *ret_status gets the HTTP
 * status when not NULL; *ret_reply the parsed JSON body (NULL for an
 * empty one or a non-JSON one, which *ret_text gets instead) when not
 * NULL. A status >= 400 is an error; 304 is returned, not an error.
 */
MOAT_NODISCARD int moat_client_call(struct moat_client *c, const char *method, const char *target, json_t *body,
                                    long *ret_status, json_t **ret_reply, struct moat_error **reterr);
/* Like moat_client_call, the reply body as bytes (NUL-terminated). */
MOAT_NODISCARD int moat_client_call_raw(struct moat_client *c, const char *method, const char *target,
                                        json_t *body, long *ret_status, char **ret_body, size_t *ret_len,
                                        struct moat_error **reterr);

/* Called with each piece of a streamed body; a negative return ends the
 * stream with that error. content_type is the reply's. */
typedef int (*moat_client_data_fn)(const char *data, size_t len, void *userdata);
MOAT_NODISCARD int moat_client_stream(struct moat_client *c, const char *method, const char *target, json_t *body,
                                      moat_client_data_fn fn, void *userdata, struct moat_error **reterr);

/*
 * A request with a streamed body (chunked, read from read until it
 * returns 0; a negative return aborts with that error) and/or a reply
 * header to keep (want_header: its value in *header, the caller frees;
 * NULL when absent). The reply body goes to fn as it arrives, or, without
 * fn, whole to reply_fn (a buffered reply, bounded by
 * MOAT_CLIENT_MAX_REPLY). status is the reply's.
 */
typedef ssize_t (*moat_client_read_fn)(char *buf, size_t len, void *userdata);
struct moat_client_transfer {
        const char *content_type;       /* of the upload; default application/x-tar */
        moat_client_read_fn read;
        void *read_data;
        moat_client_data_fn fn;
        moat_client_data_fn reply_fn;
        void *userdata;
        const char *want_header;
        char *header;
        long status;
};
MOAT_NODISCARD int moat_client_transfer(struct moat_client *c, const char *method, const char *target,
                                        struct moat_client_transfer *t, struct moat_error **reterr);

/* A request whose response head has arrived and whose body is still to
 * come: start returns once the daemon answered (or failed). */
MOAT_NODISCARD int moat_client_pending_start(struct moat_client *c, const char *method, const char *target,
                                             json_t *body, struct moat_client_pending **ret,
                                             struct moat_error **reterr);
/* Drive the transfer and wait up to timeout_ms (-1: until something
 * happens) for it or for the extra descriptors (their revents are
 * filled). Returns 1 when the body is complete, 0 otherwise. */
MOAT_NODISCARD int moat_client_pending_poll(struct moat_client_pending *p, struct pollfd *extra, unsigned n_extra,
                                            int timeout_ms, struct moat_error **reterr);
/* The complete body as JSON (1 done: *ret set) once poll returned 1. */
MOAT_NODISCARD int moat_client_pending_result(struct moat_client_pending *p, json_t **ret,
                                              struct moat_error **reterr);
void moat_client_pending_free(struct moat_client_pending *p);

/*
 * POST target with Connection: Upgrade / Upgrade: tcp and the JSON body;
 * returns once the daemon answered 101 (or 200 with a raw stream). The
 * bytes after the head come through read; close_write half-closes our
 * side (the daemon reads EOF: the container's stdin is closed).
 */
MOAT_NODISCARD int moat_client_hijack(struct moat_client *c, const char *target, json_t *body,
                                      struct moat_client_hijack **ret, struct moat_error **reterr);
int moat_client_hijack_fd(const struct moat_client_hijack *h);
/* The reply's Content-Type. */
const char *moat_client_hijack_content_type(const struct moat_client_hijack *h);
/* >0 bytes, 0 at EOF, -EAGAIN when nothing is there yet, -errno. */
ssize_t moat_client_hijack_read(struct moat_client_hijack *h, void *buf, size_t len);
/* All of buf (waits while the socket is full); -errno. */
int moat_client_hijack_write(struct moat_client_hijack *h, const void *buf, size_t len);
int moat_client_hijack_close_write(struct moat_client_hijack *h);
void moat_client_hijack_free(struct moat_client_hijack *h);

/* Docker's stdcopy: frames [type 0 0 0 size(be32)] payload, type 1
 * stdout, 2 stderr, 3 the daemon's error. Fed any split of the stream. */
struct moat_demux {
        unsigned char head[8];
        size_t head_len;
        uint32_t left;      /* payload bytes of the current frame still to come */
        int stream;
        char *error;        /* a type-3 frame's text, kept */
        size_t error_len;
};
/* Writes payloads to out_fd/err_fd; -EPROTO on a bad frame type, -errno
 * when writing fails. */
MOAT_NODISCARD int moat_demux_feed(struct moat_demux *d, const char *data, size_t len, int out_fd, int err_fd);
void moat_demux_done(struct moat_demux *d);

/* write(2) all of buf, retrying on EINTR/EAGAIN; -errno. */
int moat_write_all(int fd, const void *buf, size_t len);

static inline void moat_json_decrefp(json_t **j)
{
        if (*j)
                json_decref(*j);
        *j = NULL;
}
#define _cleanup_json_ __attribute__((cleanup(moat_json_decrefp)))
