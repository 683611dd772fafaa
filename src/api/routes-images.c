/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The /images routes and GET /system/df of the Docker Engine API over the
 * engine's image operations (engine/engine-images.h): request parameters
 * in, Docker's status codes, JSON and streams out.
 *
 * Three routes move archives:
 * - POST /images/load streams its body (the route's stream_body) into the
 *   engine. The HTTP layer queues a streamed-body route's response only
 *   once the body has been read, so docker's progress messages cannot go
 *   out while the archive arrives: they are collected (bounded by
 *   PROGRESS_MAX; past it only each layer's final message is kept) and
 *   sent after, with the "Loaded image" lines. As docker does, the answer
 *   is 200 with an application/json message stream even when the load
 *   fails: the error is the in-band {"errorDetail":...} message, which
 *   the docker CLI prints and exits 1 on, and docker-py raises.
 * - GET /images/get and /images/{name}/get stream a docker-format tar: a
 *   worker thread writes the archive into a pipe, the stream producer
 *   relays the pipe, so memory stays one pipe buffer whatever the size.
 *   The names are resolved before the 200, so a missing image is a 404.
 *   A failure mid-archive cuts the chunked stream (the client sees a
 *   truncated body, as with docker).
 * - POST /images/create?fromSrc=- imports the body; fromImage= (a pull)
 *   is not supported: moat has no registry client yet.
 */

#include "api/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "engine/engine-images.h"
#include "engine/engine.h"

#define PROGRESS_MAX (1024 * 1024)     /* bytes of progress messages kept per load */
#define PULL_NOT_SUPPORTED "pulling images is not supported yet: moat has no registry client yet"

static struct moat_http_response *error_response(int r, struct moat_error *err)
{
        struct moat_http_response *resp = moat_http_response_from_error(r, err);
        moat_error_free(err);
        return resp;
}

/* The filters query parameter: a JSON object, or NULL when absent. */
static int query_filters(struct moat_http_request *req, json_t **ret, struct moat_error **reterr)
{
        const char *text = moat_http_request_query(req, "filters");
        json_error_t jerr;

        *ret = NULL;
        if (!text || !*text)
                return 0;
        json_t *f = json_loads(text, 0, &jerr);
        if (!json_is_object(f)) {
                json_decref(f);
                return moat_error_setx(reterr, -EINVAL, "invalid filter: %s", f ? "not a JSON object" : jerr.text);
        }
        *ret = f;
        return 0;
}

/* API < 1.44 still has VirtualSize (the same as Size). */
static void add_virtual_size(struct moat_http_request *req, json_t *summary)
{
        if (!moat_http_request_version_ge(req, 1, 44))
                json_object_set(summary, "VirtualSize", json_object_get(summary, "Size"));
}

static struct moat_http_response *list(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *filters = NULL, *out = NULL, *x;
        size_t i;
        int r;

        r = query_filters(req, &filters, &err);
        if (r < 0)
                return error_response(r, err);
        /* all: OCI images have no intermediate parents to hide; digests:
         * RepoDigests are always given, as moby gives them. */
        r = moat_engine_images_list(userdata, filters, moat_http_request_query_bool(req, "shared-size"), &out, &err);
        json_decref(filters);
        if (r < 0)
                return error_response(r, err);
        json_array_foreach(out, i, x)
                add_virtual_size(req, x);
        return moat_http_response_json(200, out);
}

static struct moat_http_response *inspect(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *doc = NULL;
        int r = moat_engine_image_inspect(userdata, moat_http_request_param(req, "name"), &doc, &err);
        if (r < 0)
                return error_response(r, err);
        add_virtual_size(req, doc);
        return moat_http_response_json(200, doc);
}

static struct moat_http_response *history(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *doc = NULL;
        int r = moat_engine_image_history(userdata, moat_http_request_param(req, "name"),
                                          moat_http_request_query(req, "platform"), &doc, &err);
        return r < 0 ? error_response(r, err) : moat_http_response_json(200, doc);
}

static struct moat_http_response *tag(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_image_tag(userdata, moat_http_request_param(req, "name"),
                                      moat_http_request_query(req, "repo"), moat_http_request_query(req, "tag"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(201);
}

static struct moat_http_response *remove_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *items = NULL;
        /* noprune: OCI images have no untagged parents to keep */
        int r = moat_engine_image_remove(userdata, moat_http_request_param(req, "name"),
                                         moat_http_request_query_bool(req, "force"), &items, &err);
        return r < 0 ? error_response(r, err) : moat_http_response_json(200, items);
}

static struct moat_http_response *prune(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *filters = NULL, *out = NULL;
        int r = query_filters(req, &filters, &err);
        if (r >= 0)
                r = moat_engine_images_prune(userdata, filters, &out, &err);
        json_decref(filters);
        return r < 0 ? error_response(r, err) : moat_http_response_json(200, out);
}

static struct moat_http_response *system_df(struct moat_http_request *req, void *userdata)
{
        const struct moat_http_param *params = NULL;
        struct moat_error *err = NULL;
        size_t n = moat_http_request_query_all(req, &params);
        unsigned what = 0;
        json_t *out = NULL;

        for (size_t i = 0; i < n; i++) {
                if (!streq(params[i].key, "type"))
                        continue;
                if (streq(params[i].value, "container"))
                        what |= MOAT_ENGINE_DF_CONTAINERS;
                else if (streq(params[i].value, "image"))
                        what |= MOAT_ENGINE_DF_IMAGES;
                else if (streq(params[i].value, "volume"))
                        what |= MOAT_ENGINE_DF_VOLUMES;
                else if (streq(params[i].value, "build-cache"))
                        what |= MOAT_ENGINE_DF_BUILD_CACHE;
                else
                        return moat_http_response_error(400, "unknown object type: %s", params[i].value);
        }
        int r = moat_engine_system_df(userdata, what, &out, &err);
        if (r < 0)
                return error_response(r, err);
        json_t *images = json_object_get(out, "Images"), *x;
        size_t i;
        json_array_foreach(images, i, x)
                add_virtual_size(req, x);
        return moat_http_response_json(200, out);
}

/* ---- JSON message streams (docker's jsonmessage) ---- */

/* One message a line, as moby's streamformatter writes them. */
static int put_message(FILE *f, json_t *msg)
{
        if (!msg)
                return -ENOMEM;
        char *text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(msg);
        if (!text)
                return -ENOMEM;
        int r = fprintf(f, "%s\r\n", text) < 0 ? -EIO : 0;
        free(text);
        return r;
}

static int put_error(FILE *f, const char *msg)
{
        return put_message(f, json_pack("{s:{s:s}, s:s}", "errorDetail", "message", msg, "error", msg));
}

/* A message stream already complete in memory, sent chunked as docker
 * sends its streams (docker-py reads a non-chunked answer as one JSON
 * document). */
struct buffer_stream {
        char *data;
        size_t len, off;
};

static void buffer_stream_free(void *userdata)
{
        struct buffer_stream *b = userdata;
        free(b->data);
        free(b);
}

static ssize_t buffer_produce(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        struct buffer_stream *b = userdata;
        size_t n = b->len - b->off < max ? b->len - b->off : max;
        memcpy(buf, b->data + b->off, n);
        b->off += n;
        return (ssize_t) n;
}

/* steals data */
static struct moat_http_response *messages_response(char *data, size_t len)
{
        struct buffer_stream *b = calloc(1, sizeof(*b));
        if (!b) {
                free(data);
                return NULL;
        }
        b->data = data;
        b->len = len;
        return moat_http_response_stream(200, "application/json", buffer_produce, b, buffer_stream_free);
}

/* Read and drop what is left of the body (tar padding after an archive's
 * end, or all of it after an early failure): an answer queued in the
 * middle of an upload makes the HTTP layer cut the connection, and the
 * client would see a reset instead of the error. This is what the HTTP
 * layer does itself with a buffered body that is too large. */
static void drain(int fd)
{
        char buf[65536];
        ssize_t n;

        while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
                ;
}

/* go-units HumanSize: four significant digits, decimal units. */
static void human_size(uint64_t v, char *buf, size_t len)
{
        static const char *const units[] = { "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB" };
        double d = (double) v;
        size_t i = 0;
        while (d >= 1000.0 && i < sizeof(units) / sizeof(units[0]) - 1) {
                d /= 1000.0;
                i++;
        }
        snprintf(buf, len, "%.4g%s", d, units[i]);
}

/* jsonmessage.JSONProgress.String() as the daemon renders it (its width
 * is unknown there: the bar is drawn). */
static void progress_text(uint64_t current, int64_t total, char *buf, size_t len)
{
        char cur[32], tot[32];

        human_size(current, cur, sizeof(cur));
        if (total <= 0) {
                snprintf(buf, len, "%8s", cur);
                return;
        }
        human_size((uint64_t) total, tot, sizeof(tot));
        int pct = (int) ((double) current / (double) total * 100.0) / 2;
        if (pct > 50)
                pct = 50;
        if (current > (uint64_t) total)
                snprintf(buf, len, "[%.*s>%*s] %8s", pct, "==================================================",
                         50 - pct, "", cur);
        else
                snprintf(buf, len, "[%.*s>%*s] %8s/%s", pct, "==================================================",
                         50 - pct, "", cur, tot);
}

struct load_out {
        FILE *f;
        size_t progress_bytes;
        int error;
};

static void load_progress(const struct moat_engine_load_progress *p, void *userdata)
{
        struct load_out *o = userdata;
        char text[160];

        if (o->error < 0 || (o->progress_bytes > PROGRESS_MAX && !p->done))
                return;
        progress_text(p->current, p->total, text, sizeof(text));
        json_t *detail = p->total > 0 ? json_pack("{s:I, s:I}", "current", (json_int_t) p->current, "total",
                                                  (json_int_t) p->total)
                                      : json_pack("{s:I}", "current", (json_int_t) p->current);
        long before = ftell(o->f);
        o->error = put_message(o->f, json_pack("{s:s, s:o, s:s, s:s}", "status", "Loading layer", "progressDetail",
                                               detail, "progress", text, "id", p->id));
        long after = ftell(o->f);
        if (before >= 0 && after >= before)
                o->progress_bytes += (size_t) (after - before);
}

static struct moat_http_response *load(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        _cleanup_free_ char *buf = NULL;
        struct load_out o = {};
        size_t len = 0;
        json_t *lines = NULL, *line;
        size_t i;
        int r;

        o.f = open_memstream(&buf, &len);
        if (!o.f)
                return NULL;
        bool quiet = moat_http_request_query_bool(req, "quiet");
        r = moat_engine_images_load(userdata, moat_http_request_body_fd(req), moat_http_request_query(req, "platform"),
                                    quiet ? NULL : load_progress, &o, &lines, &err);
        drain(moat_http_request_body_fd(req));
        if (r >= 0)
                json_array_foreach(lines, i, line) {
                        _cleanup_free_ char *text = NULL;
                        if (asprintf(&text, "%s\n", json_string_value(line)) < 0 ||
                            put_message(o.f, json_pack("{s:s}", "stream", text)) < 0)
                                o.error = -ENOMEM;
                }
        else if (!moat_http_request_body_complete(req))
                (void) put_error(o.f, "the request body ended early: the client went away");
        else
                (void) put_error(o.f, err && err->msg ? err->msg : strerror(-r));
        json_decref(lines);
        moat_error_free(err);
        if (fclose(o.f) != 0 || o.error < 0)
                return NULL;
        return messages_response(TAKE_PTR(buf), len);
}

/* ---- POST /images/create: import (pull is not supported) ---- */

static struct moat_http_response *create(struct moat_http_request *req, void *userdata)
{
        const struct moat_http_param *params = NULL;
        struct moat_error *err = NULL;
        _cleanup_free_ char **changes = NULL;
        _cleanup_free_ char *reference = NULL, *id = NULL, *out = NULL;
        size_t n = moat_http_request_query_all(req, &params), n_changes = 0;
        const char *from_image = moat_http_request_query(req, "fromImage");
        const char *from_src = moat_http_request_query(req, "fromSrc");
        const char *repo = moat_http_request_query(req, "repo");
        const char *tag_ = moat_http_request_query(req, "tag");
        int r;

        if (from_image && *from_image)
                return moat_http_response_error(moat_http_status_for_errno(-EOPNOTSUPP), "%s", PULL_NOT_SUPPORTED);
        if (!from_src || !*from_src)
                return moat_http_response_error(400, "fromImage or fromSrc is required");
        if (!streq(from_src, "-"))
                return moat_http_response_error(moat_http_status_for_errno(-EOPNOTSUPP),
                                                "importing from a URL is not supported yet: give the tarball as "
                                                "the request body (fromSrc=-)");
        changes = calloc(n + 1, sizeof(*changes));
        if (!changes)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (streq(params[i].key, "changes"))
                        changes[n_changes++] = params[i].value;
        if (repo && *repo && asprintf(&reference, "%s%s%s", repo, tag_ && *tag_ ? ":" : "", tag_ ? tag_ : "") < 0)
                return NULL;
        struct moat_engine_import_options o = {
                .changes = changes,
                .n_changes = n_changes,
                .message = moat_http_request_query(req, "message"),
                .platform = moat_http_request_query(req, "platform"),
                .reference = reference,
        };
        r = moat_engine_images_import(userdata, moat_http_request_body_fd(req), &o, &id, &err);
        drain(moat_http_request_body_fd(req));
        if (r < 0)
                return error_response(r, err);
        json_t *msg = json_pack("{s:s}", "status", id);
        char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        if (!text || asprintf(&out, "%s\r\n", text) < 0) {
                free(text);
                return NULL;
        }
        free(text);
        size_t len = strlen(out);
        return messages_response(TAKE_PTR(out), len);
}

/* ---- save ---- */

struct save_stream {
        struct moat_engine_image_save *sv;
        bool oci_only;
        int rfd, wfd;
        pthread_t worker;
        bool running;
        int result;
};

static void *save_worker(void *p)
{
        struct save_stream *ss = p;
        struct moat_error *err = NULL;

        ss->result = moat_engine_images_save_write(ss->sv, ss->wfd, ss->oci_only, &err);
        moat_error_free(err);
        ss->wfd = safe_close(ss->wfd);
        return NULL;
}

static void save_join(struct save_stream *ss)
{
        if (ss->running) {
                pthread_join(ss->worker, NULL);
                ss->running = false;
        }
}

static void save_free(void *userdata)
{
        struct save_stream *ss = userdata;
        /* a worker still writing gets EPIPE */
        ss->rfd = safe_close(ss->rfd);
        save_join(ss);
        safe_close(ss->wfd);
        moat_engine_images_save_free(ss->sv);
        free(ss);
}

static ssize_t save_produce(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        struct save_stream *ss = userdata;

        for (;;) {
                int w = moat_http_stream_wait(s, ss->rfd, POLLIN, -1);
                if (w < 0)
                        return w;
                ssize_t n = read(ss->rfd, buf, max);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -errno;
                if (n > 0)
                        return n;
                save_join(ss);
                return ss->result < 0 ? -EIO : 0;
        }
}

/* format= is moat's: "docker" (the default: the OCI layout plus docker's
 * manifest.json, as docker 25+ writes) or "oci" (the layout alone). */
static struct moat_http_response *save_names(struct moat_engine *e, const char *const *names, size_t n,
                                             const char *platform, const char *format)
{
        struct moat_error *err = NULL;
        struct save_stream *ss;
        int fds[2], r;

        if (format && *format && !streq(format, "docker") && !streq(format, "oci"))
                return moat_http_response_error(400, "format: \"%.64s\" is not docker or oci", format);
        ss = calloc(1, sizeof(*ss));
        if (!ss)
                return NULL;
        ss->rfd = ss->wfd = -EBADF;
        ss->oci_only = format && streq(format, "oci");
        r = moat_engine_images_save_prepare(e, names, n, platform, &ss->sv, &err);
        if (r < 0) {
                free(ss);
                return error_response(r, err);
        }
        if (pipe2(fds, O_CLOEXEC) < 0) {
                moat_engine_images_save_free(ss->sv);
                free(ss);
                return moat_http_response_error(500, "save: pipe: %s", strerror(errno));
        }
        ss->rfd = fds[0];
        ss->wfd = fds[1];
        if (pthread_create(&ss->worker, NULL, save_worker, ss) != 0) {
                save_free(ss);
                return moat_http_response_error(500, "save: cannot create a thread");
        }
        ss->running = true;
        return moat_http_response_stream(200, "application/x-tar", save_produce, ss, save_free);
}

static struct moat_http_response *get_many(struct moat_http_request *req, void *userdata)
{
        const struct moat_http_param *params = NULL;
        size_t n = moat_http_request_query_all(req, &params), k = 0;
        _cleanup_free_ const char **names = calloc(n + 1, sizeof(*names));

        if (!names)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (streq(params[i].key, "names"))
                        names[k++] = params[i].value;
        return save_names(userdata, names, k, moat_http_request_query(req, "platform"),
                          moat_http_request_query(req, "format"));
}

static struct moat_http_response *get_one(struct moat_http_request *req, void *userdata)
{
        const char *name = moat_http_request_param(req, "name");
        return save_names(userdata, &name, 1, moat_http_request_query(req, "platform"),
                          moat_http_request_query(req, "format"));
}

int moat_api_register_images(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        static const struct moat_http_route_opts streamed = { .stream_body = true };
        static const struct {
                const char *method, *pattern;
                moat_http_handler_fn fn;
                const struct moat_http_route_opts *opts;
        } routes[] = {
                /* literal paths first: the router takes the first match */
                { "GET", "/images/json", list, NULL },
                { "POST", "/images/load", load, &streamed },
                { "GET", "/images/get", get_many, NULL },
                { "POST", "/images/create", create, &streamed },
                { "POST", "/images/prune", prune, NULL },
                { "GET", "/system/df", system_df, NULL },
                { "GET", "/images/{name*}/json", inspect, NULL },
                { "GET", "/images/{name*}/history", history, NULL },
                { "GET", "/images/{name*}/get", get_one, NULL },
                { "POST", "/images/{name*}/tag", tag, NULL },
                { "DELETE", "/images/{name*}", remove_, NULL },
        };
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                int r = moat_http_router_add(router, routes[i].method, routes[i].pattern, routes[i].fn, e,
                                             routes[i].opts, reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}
