/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Concurrent streams (client-multi.h): one HTTP connection per stream
 * (http-conn.c) on the daemon's unix socket with the client's negotiated
 * version, all polled together. A successful reply's body is split into
 * lines as it arrives; an error reply's body (bounded) becomes docker's
 * "Error response from daemon: <message>". A stream whose connection
 * cannot be opened ends, like any other, at the next run.
 */

#include "cli/client-multi.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cleanup.h"
#include "cli/http-conn.h"
#include "moat-config.h"

#define ERROR_BODY_MAX (64u * 1024)

struct stream {
        struct moat_client_multi *m;
        size_t key;
        struct moat_http_conn *conn;
        char *target;
        char *buf;             /* an incomplete line, or an error body */
        size_t len;
        bool overflow;
        bool failed;           /* could not be sent: ends at the next run with error */
        struct moat_error *error;
        int r;
};

struct moat_client_multi {
        struct moat_client *c;
        char *socket_path;
        moat_client_line_fn line;
        moat_client_end_fn end;
        void *userdata;
        struct stream *streams[MOAT_CLIENT_MULTI_MAX];
        struct pollfd pfds[MOAT_CLIENT_MULTI_MAX];
        size_t n;
};

static void stream_free(struct stream *s)
{
        if (!s)
                return;
        moat_http_conn_free(s->conn);
        moat_error_free(s->error);
        free(s->target);
        free(s->buf);
        free(s);
}

void moat_client_multi_free(struct moat_client_multi *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n; i++)
                stream_free(m->streams[i]);
        free(m->socket_path);
        free(m);
}

int moat_client_multi_new(struct moat_client *c, moat_client_line_fn line, moat_client_end_fn end, void *userdata,
                          struct moat_client_multi **ret, struct moat_error **reterr)
{
        const char *host = moat_client_host(c);
        struct moat_client_multi *m = calloc(1, sizeof(*m));

        if (!m)
                return moat_error_set(reterr, -ENOMEM, "streams");
        *m = (struct moat_client_multi) { .c = c, .line = line, .end = end, .userdata = userdata };
        if (!startswith(host, "unix://")) {
                free(m);
                return moat_error_setx(reterr, -EINVAL, "host \"%.256s\": not a unix:// address", host);
        }
        m->socket_path = strdup(host + strlen("unix://"));
        if (!m->socket_path) {
                moat_client_multi_free(m);
                return moat_error_set(reterr, -ENOMEM, "streams");
        }
        *ret = m;
        return 0;
}

static int on_data(const struct moat_http_response *resp, const char *data, size_t n, void *userdata,
                   struct moat_error **reterr)
{
        struct stream *s = userdata;

        if (resp->status >= 400) {
                size_t take = s->len + n > ERROR_BODY_MAX ? ERROR_BODY_MAX - s->len : n;
                char *b = realloc(s->buf, s->len + take + 1);
                if (!b)
                        return -ENOMEM;
                memcpy(b + s->len, data, take);
                s->buf = b;
                s->len += take;
                s->buf[s->len] = 0;
                return 0;
        }
        for (size_t p = 0; p < n;) {
                char *nl = memchr(data + p, '\n', n - p);
                size_t piece = nl ? (size_t) (nl - (data + p)) : n - p;
                if (s->len + piece > MOAT_CLIENT_MULTI_LINE_MAX) {
                        s->overflow = true;
                        return -EFBIG;
                }
                char *b = realloc(s->buf, s->len + piece + 1);
                if (!b)
                        return -ENOMEM;
                memcpy(b + s->len, data + p, piece);
                s->buf = b;
                s->len += piece;
                s->buf[s->len] = 0;
                p += piece;
                if (nl) {
                        p++;
                        if (s->len > 0)
                                s->m->line(s->key, s->buf, s->len, s->m->userdata);
                        s->len = 0;
                }
        }
        return 0;
}

int moat_client_multi_add(struct moat_client_multi *m, size_t key, const char *target, struct moat_error **reterr)
{
        static const char *const headers[] = { "User-Agent: moat/" MOAT_VERSION " (linux)", NULL };
        _cleanup_free_ char *path = NULL;
        const char *version;
        struct stream *s;
        int r;

        if (m->n == MOAT_CLIENT_MULTI_MAX)
                return moat_error_setx(reterr, -E2BIG, "more than %u streams at once", MOAT_CLIENT_MULTI_MAX);
        r = moat_client_api_version(m->c, &version, reterr);
        if (r < 0)
                return r;
        s = calloc(1, sizeof(*s));
        if (!s)
                return moat_error_set(reterr, -ENOMEM, "stream");
        s->m = m;
        s->key = key;
        if (asprintf(&path, "/v%s%s", version, target) < 0 || !(s->target = strdup(target))) {
                stream_free(s);
                return moat_error_set(reterr, -ENOMEM, "stream");
        }
        r = moat_http_conn_new(m->socket_path, &s->conn, reterr);
        if (r < 0) {
                stream_free(s);
                return r;
        }
        struct moat_http_request req = {
                .method = "GET",
                .target = path,
                .host = "api.moby.localhost",
                .headers = headers,
                .on_body = on_data,
                .userdata = s,
        };
        r = moat_http_conn_connect(s->conn, &s->error);
        if (r < 0) {
                moat_error_free(TAKE_PTR(s->error));
                r = moat_error_setx(&s->error, -ECONNREFUSED,
                                    "Cannot connect to the moat daemon at %s. Is the moat daemon running?",
                                    moat_client_host(m->c));
        } else
                r = moat_http_conn_request(s->conn, &req, &s->error);
        if (r < 0) {
                s->failed = true;
                s->r = r;
        }
        m->streams[m->n++] = s;
        return 0;
}

static void forget(struct moat_client_multi *m, struct stream *s)
{
        for (size_t i = 0; i < m->n; i++)
                if (m->streams[i] == s) {
                        m->streams[i] = m->streams[--m->n];
                        break;
                }
        stream_free(s);
}

void moat_client_multi_remove(struct moat_client_multi *m, size_t key)
{
        for (size_t i = 0; i < m->n; i++)
                if (m->streams[i]->key == key) {
                        forget(m, m->streams[i]);
                        return;
                }
}

static void finished(struct moat_client_multi *m, struct stream *s)
{
        long status = s->failed ? 0 : moat_http_conn_response(s->conn)->status;
        _cleanup_free_ char *msg = NULL;
        int r = 0;

        if (status >= 400) {
                json_t *doc = s->buf ? json_loads(s->buf, 0, NULL) : NULL;
                const char *text = json_string_value(json_object_get(doc, "message"));
                r = status == 404 ? -ENOENT : status == 409 ? -EEXIST : status == 400 ? -EINVAL : -EIO;
                if (asprintf(&msg, "Error response from daemon: %s", text ? text : s->buf ? s->buf : "") < 0)
                        msg = NULL;
                json_decref(doc);
        } else if (s->overflow) {
                r = -EFBIG;
                if (asprintf(&msg, "a line of %s is longer than %u bytes", s->target, MOAT_CLIENT_MULTI_LINE_MAX) < 0)
                        msg = NULL;
        } else if (s->r < 0) {
                r = s->r;
                msg = s->error && s->error->msg ? strdup(s->error->msg) : NULL;
        } else if (s->len > 0)
                m->line(s->key, s->buf, s->len, m->userdata);
        size_t key = s->key;
        forget(m, s);
        m->end(key, r, msg ? msg : "", m->userdata);
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* End the streams that are done; 1 when one was. */
static bool reap(struct moat_client_multi *m)
{
        bool any = false;
        for (size_t i = 0; i < m->n;) {
                struct stream *s = m->streams[i];
                if (s->failed || moat_http_conn_response(s->conn)->complete) {
                        finished(m, s);         /* moves the last stream to i */
                        any = true;
                } else
                        i++;
        }
        return any;
}

int moat_client_multi_run(struct moat_client_multi *m, int timeout_ms, struct moat_error **reterr)
{
        int64_t deadline = now_ms() + timeout_ms;

        for (;;) {
                (void) reap(m);
                int64_t wait = deadline - now_ms();
                if (wait <= 0)
                        return 0;
                size_t n = m->n;
                for (size_t i = 0; i < n; i++)
                        m->pfds[i] = (struct pollfd) { .fd = moat_http_conn_fd(m->streams[i]->conn), .events = POLLIN };
                if (poll(m->pfds, (nfds_t) n, (int) wait) < 0) {
                        if (errno == EINTR)
                                continue;
                        return moat_error_set(reterr, -errno, "streams: poll");
                }
                for (size_t i = 0; i < n; i++) {
                        struct stream *s = m->streams[i];
                        if (!m->pfds[i].revents)
                                continue;
                        int r = moat_http_conn_feed(s->conn, &s->error);
                        if (r < 0) {
                                s->failed = true;
                                s->r = r;
                        }
                }
        }
}
