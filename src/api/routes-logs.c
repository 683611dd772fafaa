/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * GET /containers/{id}/logs: the container's json-file log (written by its
 * monitor) as docker serves it: multiplexed frames without a tty, raw
 * bytes with one; stdout/stderr selection, since/until, tail, timestamps,
 * and follow until the container stops.
 *
 * A worker thread reads the log's entries (the engine's
 * moat_engine_logs_read) and writes the frames into a pipe; the stream's
 * producer copies the pipe to the client. The pipe bounds memory, and a
 * client that goes away closes its read end, which ends the worker at its
 * next write.
 */

#include "api/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cleanup.h"
#include "base/fileio.h"
#include "engine/engine.h"

#define FRAME_HEADER_SIZE 8

struct logs {
        struct moat_engine *e;
        char *id;
        char *path;
        bool tty, timestamps;
        struct moat_engine_logs_options o;
        int wfd;                      /* the pipe's write end (worker) */
        int rfd;                      /* its read end (producer) */
        pthread_t thread;
        bool started;
        atomic_bool stop;
};

static bool stopped(void *userdata)
{
        return atomic_load(&((struct logs *) userdata)->stop);
}

/* docker's stdcopy frame: [stream 0 0 0 size(be32)] */
static void frame_header(uint8_t hdr[FRAME_HEADER_SIZE], int stream, uint32_t size)
{
        hdr[0] = (uint8_t) stream;
        hdr[1] = hdr[2] = hdr[3] = 0;
        hdr[4] = (uint8_t) (size >> 24);
        hdr[5] = (uint8_t) (size >> 16);
        hdr[6] = (uint8_t) (size >> 8);
        hdr[7] = (uint8_t) size;
}

static int emit(int stream, int64_t time_ns, const char *data, size_t len, void *userdata)
{
        struct logs *l = userdata;
        char ts[MOAT_ENGINE_RFC3339NANO_MAX + 1];
        size_t tlen = 0;

        if (atomic_load(&l->stop))
                return -ECANCELED;
        if (l->timestamps) {
                moat_engine_format_rfc3339nano(time_ns, ts);
                tlen = strlen(ts);
                ts[tlen++] = ' ';
        }
        if (!l->tty) {
                uint8_t hdr[FRAME_HEADER_SIZE];
                frame_header(hdr, stream, (uint32_t) (tlen + len));
                if (write_all(l->wfd, hdr, sizeof(hdr)) < 0)
                        return -EPIPE;
        }
        if ((tlen && write_all(l->wfd, ts, tlen) < 0) || write_all(l->wfd, data, len) < 0)
                return -EPIPE;
        return 0;
}

static void *logs_worker(void *arg)
{
        struct logs *l = arg;
        int r = moat_engine_logs_read(l->e, l->id, l->path, &l->o, emit, l, NULL);

        (void) r; /* the client sees the stream end */
        close(l->wfd);
        l->wfd = -1;
        return NULL;
}

static void logs_free(void *userdata)
{
        struct logs *l = userdata;

        atomic_store(&l->stop, true);
        if (l->rfd >= 0)
                close(l->rfd);   /* a worker blocked writing gets EPIPE */
        if (l->started)
                pthread_join(l->thread, NULL);
        if (l->wfd >= 0)
                close(l->wfd);
        free(l->id);
        free(l->path);
        free(l);
}

static ssize_t logs_produce(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        struct logs *l = userdata;

        for (;;) {
                ssize_t n = read(l->rfd, buf, max);
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                int w = moat_http_stream_wait(s, l->rfd, POLLIN, -1);
                if (w < 0)
                        return w;
        }
}

static struct moat_http_response *logs(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        struct logs *l = calloc(1, sizeof(*l));
        bool running = false;
        int fds[2], r;

        if (!l)
                return NULL;
        l->wfd = l->rfd = -1;
        l->e = userdata;
        r = moat_engine_resolve(userdata, moat_http_request_param(req, "id"), &l->id, &err);
        if (r >= 0)
                r = moat_engine_log_path(userdata, l->id, &l->path, &l->tty, &running, &err);
        if (r < 0) {
                logs_free(l);
                struct moat_http_response *resp = moat_http_response_from_error(r, err);
                moat_error_free(err);
                return resp;
        }
        l->o.want_stdout = moat_http_request_query_bool(req, "stdout");
        l->o.want_stderr = moat_http_request_query_bool(req, "stderr");
        if (!l->o.want_stdout && !l->o.want_stderr) {
                logs_free(l);
                return moat_http_response_error(400, "Bad parameters: you must choose at least one stream");
        }
        l->o.stopped = stopped;
        l->timestamps = moat_http_request_query_bool(req, "timestamps");
        l->o.follow = moat_http_request_query_bool(req, "follow");
        const char *tail = moat_http_request_query(req, "tail");
        l->o.tail = -1;
        if (tail && *tail && !streq(tail, "all")) {
                char *end;
                long n = strtol(tail, &end, 10);
                if (*end == '\0' && n >= 0)
                        l->o.tail = n;
        }
        if (moat_api_parse_time(moat_http_request_query(req, "since"), &l->o.since_ns) < 0 ||
            moat_api_parse_time(moat_http_request_query(req, "until"), &l->o.until_ns) < 0) {
                logs_free(l);
                return moat_http_response_error(400, "invalid time in since or until");
        }
        if (pipe2(fds, O_CLOEXEC) < 0) {
                logs_free(l);
                return moat_http_response_error(500, "pipe: %s", strerror(errno));
        }
        l->rfd = fds[0];
        l->wfd = fds[1];
        (void) fcntl(l->rfd, F_SETFL, O_NONBLOCK);
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = pthread_create(&l->thread, NULL, logs_worker, l);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r != 0) {
                logs_free(l);
                return moat_http_response_error(500, "logs thread: %s", strerror(r));
        }
        l->started = true;
        return moat_http_response_stream(200,
                                         l->tty ? "application/vnd.docker.raw-stream"
                                                : "application/vnd.docker.multiplexed-stream",
                                         logs_produce, l, logs_free);
}

int moat_api_register_logs(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        return moat_http_router_add(router, "GET", "/containers/{id}/logs", logs, e, NULL, reterr);
}
