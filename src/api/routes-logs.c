/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * GET /containers/{id}/logs: the container's json-file log (written by its
 * monitor) as docker serves it: multiplexed frames without a tty, raw
 * bytes with one; stdout/stderr selection, since/until, tail, timestamps,
 * and follow until the container stops.
 *
 * A worker thread reads the log (monitor.h's reader and follower) and
 * writes the frames into a pipe; the stream's producer copies the pipe to
 * the client. The pipe bounds memory, and a client that goes away closes
 * its read end, which ends the worker at its next write. tail is two
 * passes (count, then skip), so no number of lines is held in memory.
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
#include "monitor/monitor.h"

#define FOLLOW_POLL_MS 200
#define MAX_ROTATED 1000

struct logs {
        struct moat_engine *e;
        char *id;
        char *path;
        bool tty, want_out, want_err, timestamps, follow;
        int64_t since_ns, until_ns;   /* 0: no bound */
        long tail;                    /* < 0: all */
        /* pass state */
        bool counting;
        uint64_t count, skip;
        int wfd;                      /* the pipe's write end (worker) */
        int rfd;                      /* its read end (producer) */
        pthread_t thread;
        bool started;
        atomic_bool stop;
};

static int64_t entry_ns(const struct moat_log_entry *en)
{
        return (int64_t) en->time.tv_sec * 1000000000 + en->time.tv_nsec;
}

static bool selected(const struct logs *l, const struct moat_log_entry *en)
{
        if (en->stream == MOAT_STREAM_STDOUT && !l->want_out)
                return false;
        if (en->stream == MOAT_STREAM_STDERR && !l->want_err)
                return false;
        if (l->since_ns > 0 && entry_ns(en) < l->since_ns)
                return false;
        if (l->until_ns > 0 && entry_ns(en) > l->until_ns)
                return false;
        return true;
}

static int emit(const struct moat_log_entry *en, void *userdata)
{
        struct logs *l = userdata;
        char ts[MOAT_RFC3339NANO_MAX + 1];
        size_t tlen = 0;

        if (atomic_load(&l->stop))
                return -ECANCELED;
        if (!selected(l, en))
                return 0;
        if (l->counting) {
                l->count++;
                return 0;
        }
        if (l->skip > 0) {
                l->skip--;
                return 0;
        }
        if (l->timestamps) {
                moat_format_rfc3339nano(&en->time, ts);
                tlen = strlen(ts);
                ts[tlen++] = ' ';
        }
        size_t len = tlen + en->len;
        if (!l->tty) {
                uint8_t hdr[MOAT_FRAME_HEADER_SIZE];
                moat_frame_header(hdr, en->stream, (uint32_t) len);
                if (write_all(l->wfd, hdr, sizeof(hdr)) < 0)
                        return -EPIPE;
        }
        if ((tlen && write_all(l->wfd, ts, tlen) < 0) || write_all(l->wfd, en->data, en->len) < 0)
                return -EPIPE;
        return 0;
}

static bool still_running(struct logs *l)
{
        _cleanup_free_ char *path = NULL;
        bool tty, running = false;

        if (moat_engine_log_path(l->e, l->id, &path, &tty, &running, NULL) < 0)
                return false;
        return running;
}

static void *logs_worker(void *arg)
{
        struct logs *l = arg;
        struct moat_log_follow *f = NULL;
        int r;

        if (l->tail >= 0) {
                l->counting = true;
                r = moat_logfile_read_rotated(l->path, MAX_ROTATED, emit, l, NULL);
                if (r >= 0)
                        r = moat_logfile_read(l->path, 1, emit, l, NULL);
                l->counting = false;
                l->skip = l->count > (uint64_t) l->tail ? l->count - (uint64_t) l->tail : 0;
        }
        r = moat_logfile_read_rotated(l->path, MAX_ROTATED, emit, l, NULL);
        if (r >= 0)
                r = moat_log_follow_open(l->path, &f, NULL);
        if (r >= 0)
                r = moat_log_follow_read(f, emit, l, NULL);
        while (r >= 0 && l->follow && !atomic_load(&l->stop)) {
                bool running = still_running(l);
                r = moat_log_follow_read(f, emit, l, NULL);
                if (r < 0 || (!running && r == 0))
                        break;
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                if (l->until_ns > 0 && (int64_t) now.tv_sec * 1000000000 + now.tv_nsec > l->until_ns)
                        break;
                usleep(FOLLOW_POLL_MS * 1000);
        }
        moat_log_follow_free(f);
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
        l->want_out = moat_http_request_query_bool(req, "stdout");
        l->want_err = moat_http_request_query_bool(req, "stderr");
        if (!l->want_out && !l->want_err) {
                logs_free(l);
                return moat_http_response_error(400, "Bad parameters: you must choose at least one stream");
        }
        l->timestamps = moat_http_request_query_bool(req, "timestamps");
        l->follow = moat_http_request_query_bool(req, "follow");
        const char *tail = moat_http_request_query(req, "tail");
        l->tail = -1;
        if (tail && *tail && !streq(tail, "all")) {
                char *end;
                long n = strtol(tail, &end, 10);
                if (*end == '\0' && n >= 0)
                        l->tail = n;
        }
        if (moat_api_parse_time(moat_http_request_query(req, "since"), &l->since_ns) < 0 ||
            moat_api_parse_time(moat_http_request_query(req, "until"), &l->until_ns) < 0) {
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
