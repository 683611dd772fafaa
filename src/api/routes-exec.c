/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The exec routes of the Docker Engine API: create, start (hijacked like
 * attach, or detached), inspect and resize, over engine.h. The stream from
 * the exec's monitor is already in Docker's framing; the relay copies it.
 */

#include "api/routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "engine/engine.h"

static struct moat_http_response *error_response(int r, struct moat_error *err)
{
        struct moat_http_response *resp = moat_http_response_from_error(r, err);
        moat_error_free(err);
        return resp;
}

static struct moat_http_response *exec_create(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        _cleanup_free_ char *id = NULL;
        json_t *body = NULL;
        int r;

        r = moat_http_request_json(req, &body, &err);
        if (r < 0)
                return error_response(r, err);
        json_t *keys = json_object_get(body, "DetachKeys");
        if (keys && !json_is_null(keys)) {
                uint8_t k[16];
                size_t n;
                if (!json_is_string(keys))
                        r = moat_error_setx(&err, -EINVAL, "DetachKeys: must be a string");
                else if (json_string_length(keys) > 0)
                        r = moat_api_detach_keys_parse(json_string_value(keys), k, sizeof(k), &n, &err);
                if (r < 0) {
                        json_decref(body);
                        return error_response(r, err);
                }
        }
        r = moat_engine_exec_create(userdata, moat_http_request_param(req, "id"), body, &id, &err);
        json_decref(body);
        if (r < 0)
                return error_response(r, err);
        return moat_http_response_json(201, json_pack("{s:s}", "Id", id));
}

struct exec_stream {
        struct moat_engine *e;
        char *id;
        int fd;
        bool stdin_;
        bool tty;
        uint8_t detach_keys[16];  /* applied with a tty only, as moby does */
        size_t n_detach_keys;
        char *error;   /* the start failed: this is all the stream says */
};

static void exec_stream_free(void *userdata)
{
        struct exec_stream *x = userdata;
        if (x->fd >= 0)
                close(x->fd);
        free(x->error);
        free(x->id);
        free(x);
}

/* Relay until the exec's stream ends (its process exited and its output
 * was drained), or say why it could not start. */
static void exec_relay(struct moat_http_hijack *h, void *userdata)
{
        struct exec_stream *x = userdata;

        if (x->error) {
                /* As moby: the message on the process's stdout, then the
                 * stream ends; the CLI takes the code (126/127) from inspect. */
                _cleanup_free_ char *line = NULL;
                if (asprintf(&line, "%s\r\n", x->error) >= 0)
                        moat_api_stream_message(h, x->tty, 1, line);
                return;
        }
        if (moat_api_relay_detach(h, x->fd, x->stdin_, x->detach_keys, x->tty ? x->n_detach_keys : 0))
                (void) !moat_engine_event_detach(x->e, NULL, x->id, NULL);
}

static struct moat_http_response *exec_start(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *body = NULL, *info = NULL;
        const char *id = moat_http_request_param(req, "id");
        bool tty = false;
        int fd = -1, r;

        r = moat_http_request_json(req, &body, &err);
        if (r < 0)
                return error_response(r, err);
        bool detach = json_is_true(json_object_get(body, "Detach"));
        json_decref(body);
        r = moat_engine_exec_inspect(userdata, id, &info, &err);
        if (r < 0)
                return error_response(r, err);
        bool open_stdin = json_is_true(json_object_get(info, "OpenStdin"));
        uint8_t keys[16] = { 0x10, 0x11 }; /* ctrl-p,ctrl-q */
        size_t n_keys = 2;
        const char *spec = json_string_value(json_object_get(info, "DetachKeys"));
        if (!strempty(spec))
                r = moat_api_detach_keys_parse(spec, keys, sizeof(keys), &n_keys, &err);
        json_decref(info);
        if (r < 0)
                return error_response(r, err);
        r = moat_engine_exec_start(userdata, id, detach, &fd, &tty, &err);
        if (r < 0 && (detach || r == -ENOENT || r == -EBUSY || r == -EINVAL))
                return error_response(r, err);
        if (r < 0) {
                /* The process could not be started (its exit code, 126/127, is
                 * recorded): like moby, say it in the stream, where the CLI
                 * prints it before asking for the exit code. */
                struct exec_stream *x = calloc(1, sizeof(*x));
                if (!x) {
                        moat_error_free(err);
                        return NULL;
                }
                x->fd = -1;
                x->error = strdup(err && err->msg ? err->msg : "exec failed");
                x->tty = tty;
                moat_error_free(err);
                return moat_http_response_hijack(!tty && moat_http_request_version_ge(req, 1, 42)
                                                         ? "application/vnd.docker.multiplexed-stream"
                                                         : "application/vnd.docker.raw-stream",
                                                 exec_relay, x, exec_stream_free);
        }
        if (detach)
                return moat_http_response_empty(200);
        struct exec_stream *x = calloc(1, sizeof(*x));
        if (!x) {
                close(fd);
                return NULL;
        }
        x->fd = fd;
        x->e = userdata;
        x->id = strdup(id);
        if (!x->id) {
                exec_stream_free(x);
                return NULL;
        }
        x->stdin_ = open_stdin;
        x->tty = tty;
        memcpy(x->detach_keys, keys, sizeof(keys));
        x->n_detach_keys = n_keys;
        const char *ct = !tty && moat_http_request_version_ge(req, 1, 42) ? "application/vnd.docker.multiplexed-stream"
                                                                            : "application/vnd.docker.raw-stream";
        return moat_http_response_hijack(ct, exec_relay, x, exec_stream_free);
}

static struct moat_http_response *exec_inspect(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *doc = NULL;
        int r = moat_engine_exec_inspect(userdata, moat_http_request_param(req, "id"), &doc, &err);
        return r < 0 ? error_response(r, err) : moat_http_response_json(200, doc);
}

static struct moat_http_response *exec_resize(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        const char *h = moat_http_request_query(req, "h"), *w = moat_http_request_query(req, "w");
        char *end1 = NULL, *end2 = NULL;
        long hv = h ? strtol(h, &end1, 10) : -1, wv = w ? strtol(w, &end2, 10) : -1;

        if (!h || !w || *end1 || *end2 || hv < 0 || wv < 0 || hv > 65535 || wv > 65535)
                return moat_http_response_error(400, "invalid terminal size h=%s w=%s", h ? h : "", w ? w : "");
        int r = moat_engine_exec_resize(userdata, moat_http_request_param(req, "id"), (unsigned) hv, (unsigned) wv,
                                        &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(200);
}

int moat_api_register_exec(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        static const struct {
                const char *method, *pattern;
                moat_http_handler_fn fn;
        } routes[] = {
                { "POST", "/containers/{id}/exec", exec_create },
                { "POST", "/exec/{id}/start", exec_start },
                { "POST", "/exec/{id}/resize", exec_resize },
                { "GET", "/exec/{id}/json", exec_inspect },
        };
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                int r = moat_http_router_add(router, routes[i].method, routes[i].pattern, routes[i].fn, e, NULL,
                                             reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}
