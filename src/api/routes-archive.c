/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The routes of a container's files and processes (engine-archive.h):
 * docker cp (HEAD/GET/PUT /containers/{id}/archive), docker export, top,
 * update, and POST /containers/prune.
 *
 * Tar streams: the engine writes the archive into a pipe from a thread of
 * this route while the HTTP layer's producer reads the pipe, so the
 * response streams with bounded memory; errors found before the first
 * byte (no such container or path) are plain error responses. A client
 * that goes away closes the pipe, which ends the writer (EPIPE).
 *
 * docker cp's stat travels base64-encoded in the
 * X-Docker-Container-Path-Stat header (Go's StdEncoding). The encoder is
 * here, a few lines, because the API module links no crypto library.
 */

#include "api/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "engine/engine-archive.h"

#define STAT_HEADER "X-Docker-Container-Path-Stat"
#define DURATION_MAX_SECONDS (INT64_C(100) * 365 * 24 * 3600)

static struct moat_http_response *error_response(int r, struct moat_error *err)
{
        struct moat_http_response *resp = moat_http_response_from_error(r, err);
        moat_error_free(err);
        return resp;
}

static char *base64(const char *in, size_t len)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *out = malloc((len + 2) / 3 * 4 + 1);
        size_t o = 0;

        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) (unsigned char) in[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t) (unsigned char) in[i + 1] << 8;
                if (i + 2 < len)
                        v |= (unsigned char) in[i + 2];
                out[o++] = tab[(v >> 18) & 63];
                out[o++] = tab[(v >> 12) & 63];
                out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
                out[o++] = i + 2 < len ? tab[v & 63] : '=';
        }
        out[o] = '\0';
        return out;
}

static int add_stat_header(struct moat_http_response *resp, json_t *stat)
{
        _cleanup_free_ char *text = json_dumps(stat, JSON_COMPACT);
        _cleanup_free_ char *enc = text ? base64(text, strlen(text)) : NULL;
        if (!enc)
                return -ENOMEM;
        return moat_http_response_add_header(resp, STAT_HEADER, enc);
}

static const char *path_param(struct moat_http_request *req, struct moat_error **reterr)
{
        const char *path = moat_http_request_query(req, "path");
        if (!path || !*path) {
                (void) !moat_error_setx(reterr, -EINVAL, "bad parameter: path cannot be empty");
                return NULL;
        }
        return path;
}

/* ---- tar streams ---------------------------------------------------------------- */

struct tar_stream {
        struct moat_engine_archive *a;
        int rfd, wfd;
        pthread_t thread;
        bool started, joined;
        int result;
};

static void *tar_writer(void *p)
{
        struct tar_stream *ts = p;
        _cleanup_error_ struct moat_error *err = NULL;
        ts->result = moat_engine_archive_write(ts->a, ts->wfd, &err);
        ts->wfd = safe_close(ts->wfd);
        return NULL;
}

static void tar_stream_free(void *p)
{
        struct tar_stream *ts = p;
        if (!ts)
                return;
        ts->rfd = safe_close(ts->rfd);
        if (ts->started && !ts->joined)
                pthread_join(ts->thread, NULL);
        safe_close(ts->wfd);
        moat_engine_archive_close(ts->a);
        free(ts);
}

static ssize_t tar_produce(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        struct tar_stream *ts = userdata;
        for (;;) {
                ssize_t n = read(ts->rfd, buf, max);
                if (n > 0)
                        return n;
                if (n == 0) {
                        /* A writer that failed leaves a cut archive: cut the stream too. */
                        pthread_join(ts->thread, NULL);
                        ts->joined = true;
                        return ts->result < 0 ? -EIO : 0;
                }
                if (errno != EAGAIN && errno != EINTR)
                        return -errno;
                int r = moat_http_stream_wait(s, ts->rfd, POLLIN, -1);
                if (r < 0)
                        return r;
        }
}

static struct moat_http_response *tar_response(struct moat_engine_archive *a, json_t *stat)
{
        struct tar_stream *ts = calloc(1, sizeof(*ts));
        int pipefd[2];

        if (!ts || pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
                free(ts);
                moat_engine_archive_close(a);
                json_decref(stat);
                return moat_http_response_error(500, "cannot stream the archive: %s", strerror(errno));
        }
        ts->a = a;
        ts->rfd = pipefd[0];
        ts->wfd = pipefd[1];
        /* The writer blocks on a full pipe. */
        (void) fcntl(ts->wfd, F_SETFL, fcntl(ts->wfd, F_GETFL) & ~O_NONBLOCK);
        if (pthread_create(&ts->thread, NULL, tar_writer, ts) != 0) {
                tar_stream_free(ts);
                json_decref(stat);
                return moat_http_response_error(500, "cannot start the archive's writer");
        }
        ts->started = true;
        struct moat_http_response *resp =
                moat_http_response_stream(200, "application/x-tar", tar_produce, ts, tar_stream_free);
        if (resp && stat && add_stat_header(resp, stat) < 0) {
                moat_http_response_free(resp);
                resp = NULL;
        }
        json_decref(stat);
        return resp;
}

/* ---- archive ---------------------------------------------------------------------- */

static struct moat_http_response *archive_head(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *stat = NULL;
        const char *path = path_param(req, &err);
        int r = path ? moat_engine_archive_stat(userdata, moat_http_request_param(req, "id"), path, &stat, &err)
                     : -EINVAL;
        if (r < 0)
                return error_response(r, err);
        struct moat_http_response *resp = moat_http_response_empty(200);
        if (resp && add_stat_header(resp, stat) < 0) {
                moat_http_response_free(resp);
                resp = NULL;
        }
        json_decref(stat);
        return resp;
}

static struct moat_http_response *archive_get(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        struct moat_engine_archive *a = NULL;
        json_t *stat = NULL;
        const char *path = path_param(req, &err);
        int r = path ? moat_engine_archive_open(userdata, moat_http_request_param(req, "id"), path, &a, &stat, &err)
                     : -EINVAL;
        if (r < 0)
                return error_response(r, err);
        return tar_response(a, stat);
}

static struct moat_http_response *archive_put(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        const char *path = path_param(req, &err);
        int r = path ? moat_engine_archive_extract(userdata, moat_http_request_param(req, "id"), path,
                                                   moat_http_request_body_fd(req),
                                                   moat_http_request_query_bool(req, "noOverwriteDirNonDir"),
                                                   moat_http_request_query_bool(req, "copyUIDGID"), &err)
                     : -EINVAL;
        if (r >= 0 && !moat_http_request_body_complete(req))
                r = moat_error_setx(&err, -EIO, "the archive ended before the client sent all of it");
        if (r < 0)
                return error_response(r, err);
        return moat_http_response_empty(200);
}

static struct moat_http_response *export_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        struct moat_engine_archive *a = NULL;
        int r = moat_engine_export_open(userdata, moat_http_request_param(req, "id"), &a, &err);
        if (r < 0)
                return error_response(r, err);
        return tar_response(a, NULL);
}

/* ---- top, update, prune ---------------------------------------------------------------- */

static struct moat_http_response *top(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *out = NULL;
        int r = moat_engine_top(userdata, moat_http_request_param(req, "id"), moat_http_request_query(req, "ps_args"),
                                &out, &err);
        return r < 0 ? error_response(r, err) : moat_http_response_json(200, out);
}

static struct moat_http_response *update(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *body = NULL, *warnings = NULL;
        int r = moat_http_request_json(req, &body, &err);
        if (r >= 0)
                r = moat_engine_update(userdata, moat_http_request_param(req, "id"), body, &warnings, &err);
        json_decref(body);
        if (r < 0)
                return error_response(r, err);
        return moat_http_response_json(200, json_pack("{s:o}", "Warnings", warnings));
}

/* Go's time.ParseDuration for the forms docker's until takes ("24h",
 * "1h30m", "90s", "1.5h"), as seconds. */
static int parse_duration(const char *s, int64_t *ret)
{
        double total = 0;
        const char *p = s;

        if (!*p)
                return -EINVAL;
        while (*p) {
                char *end;
                errno = 0;
                double v = strtod(p, &end);
                if (errno || end == p || v < 0)
                        return -EINVAL;
                p = end;
                if (startswith(p, "ms")) {
                        v /= 1000;
                        p += 2;
                } else if (*p == 'h') {
                        v *= 3600;
                        p++;
                } else if (*p == 'm') {
                        v *= 60;
                        p++;
                } else if (*p == 's') {
                        p++;
                } else
                        return -EINVAL;
                total += v;
        }
        if (total > (double) DURATION_MAX_SECONDS)
                return -ERANGE;
        *ret = (int64_t) total;
        return 0;
}

static struct moat_http_response *prune(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        const char *text = moat_http_request_query(req, "filters");
        json_t *filters = NULL, *out = NULL, *until;
        int64_t until_ns = 0;
        json_error_t jerr;
        int r = 0;

        if (text && *text) {
                filters = json_loads(text, 0, &jerr);
                if (!json_is_object(filters)) {
                        json_decref(filters);
                        return moat_http_response_error(400, "invalid filters: %s", jerr.text);
                }
        }
        if ((until = json_object_get(filters, "until"))) {
                const char *v = NULL;
                const char *k;
                json_t *x;
                if (json_is_object(until))
                        json_object_foreach(until, k, x) v = k;
                else if (json_is_array(until))
                        v = json_string_value(json_array_get(until, json_array_size(until) - 1));
                int64_t secs;
                if (v && parse_duration(v, &secs) >= 0) {
                        struct timespec ts;
                        clock_gettime(CLOCK_REALTIME, &ts);
                        until_ns = ((int64_t) ts.tv_sec - secs) * 1000000000 + ts.tv_nsec;
                } else if (!v || moat_api_parse_time(v, &until_ns) < 0 || until_ns <= 0) {
                        json_decref(filters);
                        return moat_http_response_error(400, "invalid filter 'until=%s'", v ? v : "");
                }
        }
        r = moat_engine_containers_prune(userdata, filters, until_ns, &out, &err);
        json_decref(filters);
        return r < 0 ? error_response(r, err) : moat_http_response_json(200, out);
}

int moat_api_register_archive(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        static const struct moat_http_route_opts streamed = { .stream_body = true };
        static const struct {
                const char *method, *pattern;
                moat_http_handler_fn fn;
                const struct moat_http_route_opts *opts;
        } routes[] = {
                { "HEAD", "/containers/{id}/archive", archive_head, NULL },
                { "GET", "/containers/{id}/archive", archive_get, NULL },
                { "PUT", "/containers/{id}/archive", archive_put, &streamed },
                { "GET", "/containers/{id}/export", export_, NULL },
                { "GET", "/containers/{id}/top", top, NULL },
                { "POST", "/containers/{id}/update", update, NULL },
                { "POST", "/containers/prune", prune, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                int r = moat_http_router_add(router, routes[i].method, routes[i].pattern, routes[i].fn, e,
                                             routes[i].opts, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}
