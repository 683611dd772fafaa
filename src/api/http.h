/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The HTTP layer of moat's Docker Engine API: a libmicrohttpd server on a
 * listen socket the caller made, a router of (method, pattern) routes, the
 * /v<major>.<minor>/ prefix with docker's version range, request objects
 * with decoded query parameters, bounded bodies and peer credentials, and
 * the kinds of response the docker CLI needs: JSON, empty, raw bytes,
 * streams whose headers go out before any body exists, and hijacked
 * connections (101 then raw bytes). See docs/api.md.
 */

#include "base/compat.h"

#include <jansson.h>
#include <sys/types.h>

#include "base/error.h"

#define MOAT_API_VERSION_MAJOR 1
#define MOAT_API_VERSION_MINOR 51
#define MOAT_API_MIN_VERSION_MAJOR 1
#define MOAT_API_MIN_VERSION_MINOR 24
#define MOAT_API_VERSION "1.51"
#define MOAT_API_MIN_VERSION "1.24"

/* Bounds on what a client controls. */
#define MOAT_HTTP_MAX_TARGET 8192              /* request target (path + query) */
#define MOAT_HTTP_MAX_QUERY_PARAMS 64
#define MOAT_HTTP_MAX_PATH_PARAMS 8
#define MOAT_HTTP_DEFAULT_MAX_BODY (1024 * 1024)
/* Request line + headers, per connection. Not above 32 KiB: past that
 * libmicrohttpd maps each connection's memory afresh (16 more page faults
 * per connection here) instead of taking it from the heap. */
#define MOAT_HTTP_HEADER_MEMORY (32 * 1024)
#define MOAT_HTTP_MAX_CONNECTIONS 256
#define MOAT_HTTP_IDLE_TIMEOUT_SEC 300

struct moat_http_server;
struct moat_http_router;
struct moat_http_request;
struct moat_http_response;
struct moat_http_stream;
struct moat_http_hijack;

struct moat_http_param {
        char *key;
        char *value;
};

struct moat_http_path_param {
        const char *name;   /* owned by the route */
        const char *value;
};

/* ---- pure parsing (exposed for the unit tests) ---- */

/* Split a request target into its percent-decoded path and its query
 * parameters, decoded as Go's url.ParseQuery does ('+' is a space).
 * Bounded by MOAT_HTTP_MAX_TARGET and MOAT_HTTP_MAX_QUERY_PARAMS. */
MOAT_NODISCARD int moat_http_split_target(const char *target, char **ret_path, struct moat_http_param **ret_params,
                                          size_t *ret_n, struct moat_error **reterr);
void moat_http_params_free(struct moat_http_param *p, size_t n);

/* Strip a "/v<major>.<minor>" prefix from path. Without one, *ret_rest is
 * path and the version is the maximum. Returns -EINVAL for a malformed
 * version, -ERANGE for one outside [1.24, 1.51]; the message is moby's. */
MOAT_NODISCARD int moat_http_parse_version_prefix(const char *path, unsigned *ret_major, unsigned *ret_minor,
                                                  const char **ret_rest, struct moat_error **reterr);

/* Docker's query booleans (moby httputils.BoolValue): anything but "",
 * "0", "no", "false", "none" (any case) is true. */
bool moat_http_bool_value(const char *v);

/* ---- router ---- */

struct moat_http_route_opts {
        size_t max_body;      /* 0: MOAT_HTTP_DEFAULT_MAX_BODY; buffered bodies only */
        bool stream_body;     /* the handler runs in a worker and reads the body from a pipe */
};

/* A handler always returns a response (errors are responses); NULL means
 * out of memory and becomes a 500. */
typedef struct moat_http_response *(*moat_http_handler_fn)(struct moat_http_request *req, void *userdata);

MOAT_NODISCARD int moat_http_router_new(struct moat_http_router **ret);
void moat_http_router_free(struct moat_http_router *r);

/* pattern: "/containers/{id}/json"; a "{name*}" segment matches one or
 * more segments ("/images/{name*}/json" matches "/images/a/b:c/json"). */
MOAT_NODISCARD int moat_http_router_add(struct moat_http_router *r, const char *method, const char *pattern,
                                        moat_http_handler_fn fn, void *userdata,
                                        const struct moat_http_route_opts *opts, struct moat_error **reterr);

enum moat_http_match {
        MOAT_HTTP_MATCH_OK,
        MOAT_HTTP_MATCH_NO_ROUTE,
        MOAT_HTTP_MATCH_BAD_METHOD,
        MOAT_HTTP_MATCH_NO_MEMORY,
};

struct moat_http_route;

/* Find the route for (method, path without version prefix); path
 * parameters go to params (MOAT_HTTP_MAX_PATH_PARAMS entries; values point
 * into *ret_buf, which the caller frees). */
enum moat_http_match moat_http_router_match(const struct moat_http_router *r, const char *method, const char *path,
                                            const struct moat_http_route **ret_route,
                                            struct moat_http_path_param *params, size_t *ret_n, char **ret_buf);

/* ---- server ---- */

struct moat_http_server_config {
        int listen_fd;                  /* a listening SOCK_STREAM socket; owned by the server afterwards */
        const char *server_header;      /* "Moat/0.1.0 (linux)" */
        unsigned max_connections;       /* 0: MOAT_HTTP_MAX_CONNECTIONS */
};

MOAT_NODISCARD int moat_http_server_start(const struct moat_http_server_config *cfg, struct moat_http_router *router,
                                          struct moat_http_server **ret, struct moat_error **reterr);
/* Stop accepting, wake every blocked producer and hijack handler, give
 * in-flight requests up to grace_ms to finish, then cut the rest. The
 * listen socket is closed. */
void moat_http_server_stop(struct moat_http_server *s, int grace_ms);
/* Readable once the server is stopping (for handlers' own poll loops). */
int moat_http_server_cancel_fd(const struct moat_http_server *s);

/* ---- requests (valid for the duration of the handler) ---- */

const char *moat_http_request_method(const struct moat_http_request *req);
const char *moat_http_request_path(const struct moat_http_request *req);  /* without the version prefix */
void moat_http_request_version(const struct moat_http_request *req, unsigned *major, unsigned *minor);
/* true when the request's API version is at least major.minor */
bool moat_http_request_version_ge(const struct moat_http_request *req, unsigned major, unsigned minor);
const char *moat_http_request_param(const struct moat_http_request *req, const char *name);  /* path {name} */
const char *moat_http_request_query(const struct moat_http_request *req, const char *key);   /* first value */
size_t moat_http_request_query_all(const struct moat_http_request *req, const struct moat_http_param **ret);
bool moat_http_request_query_bool(const struct moat_http_request *req, const char *key);
const char *moat_http_request_header(const struct moat_http_request *req, const char *name);
const void *moat_http_request_body(const struct moat_http_request *req, size_t *ret_len);
/* The JSON object of the body; an empty body is an empty object. -EINVAL
 * with "invalid JSON: <what> at line L column C" for a malformed one. */
MOAT_NODISCARD int moat_http_request_json(const struct moat_http_request *req, json_t **ret, struct moat_error **reterr);
/* Streaming routes only: the body as a pipe; EOF ends it, and
 * moat_http_request_body_complete() then says whether the client sent it
 * all (false: the client went away mid-body). */
int moat_http_request_body_fd(const struct moat_http_request *req);
bool moat_http_request_body_complete(const struct moat_http_request *req);
/* SO_PEERCRED of the connection; -1 each when unknown. */
void moat_http_request_peer(const struct moat_http_request *req, pid_t *pid, uid_t *uid, gid_t *gid);
struct moat_http_server *moat_http_request_server(const struct moat_http_request *req);

/* ---- responses ---- */

/* Docker's status for an errno: ENOENT 404, EEXIST/EBUSY 409, EINVAL 400,
 * EPERM/EACCES 403, EOPNOTSUPP/ENOSYS 501, EALREADY 304, else 500. */
int moat_http_status_for_errno(int r);

struct moat_http_response *moat_http_response_json(int status, json_t *body);  /* steals body */
struct moat_http_response *moat_http_response_error(int status, const char *fmt, ...) MOAT_PRINTF(2, 3);
/* {"message": err->msg} with the errno's status. */
struct moat_http_response *moat_http_response_from_error(int r, const struct moat_error *err);
struct moat_http_response *moat_http_response_empty(int status);
/* steals data (malloc'd) */
struct moat_http_response *moat_http_response_bytes(int status, const char *content_type, void *data, size_t len);

/* A producer fills buf (at most max bytes) and returns how many, 0 at the
 * end of the stream, or -errno to cut the stream. It may block; to wait
 * for something it uses moat_http_stream_wait() so a client that goes away
 * or a server that stops ends the wait. */
typedef ssize_t (*moat_http_producer_fn)(struct moat_http_stream *s, void *userdata, char *buf, size_t max);
/* Chunked; the headers are sent before the producer is first called. */
struct moat_http_response *moat_http_response_stream(int status, const char *content_type,
                                                     moat_http_producer_fn produce, void *userdata,
                                                     void (*free_userdata)(void *));
/* Wait until fd (may be -1) has events, timeout_ms passes (-1: forever),
 * the client disconnects (-EPIPE) or the server stops (-ECANCELED).
 * Returns 1 when fd is ready, 0 on timeout. */
int moat_http_stream_wait(struct moat_http_stream *s, int fd, short events, int timeout_ms);

/* The hijack handler owns the connection's socket (blocking mode) until it
 * returns; the library then closes it. */
typedef void (*moat_http_hijack_fn)(struct moat_http_hijack *h, void *userdata);
/* 101 UPGRADED with Content-Type, Connection: Upgrade, Upgrade: tcp. */
struct moat_http_response *moat_http_response_hijack(const char *content_type, moat_http_hijack_fn fn,
                                                     void *userdata, void (*free_userdata)(void *));
int moat_http_hijack_fd(const struct moat_http_hijack *h);
/* Read from the client (bytes MHD read ahead come first): >0 bytes, 0 at
 * the client's half-close or disconnect, -errno. */
ssize_t moat_http_hijack_read(struct moat_http_hijack *h, void *buf, size_t len);
MOAT_NODISCARD int moat_http_hijack_write(struct moat_http_hijack *h, const void *buf, size_t len);
/* shutdown(SHUT_WR): the client reads EOF and may still write. */
int moat_http_hijack_close_write(struct moat_http_hijack *h);
/* Like moat_http_stream_wait, also returning 2 when the client's socket is
 * readable (data or EOF). */
int moat_http_hijack_wait(struct moat_http_hijack *h, int fd, short events, int timeout_ms);

MOAT_NODISCARD int moat_http_response_add_header(struct moat_http_response *resp, const char *name, const char *value);
void moat_http_response_free(struct moat_http_response *resp);
