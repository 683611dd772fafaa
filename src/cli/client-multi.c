/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * Concurrent streams (client-multi.h): one easy handle per stream on a
 * libcurl multi handle, on the daemon's unix socket with the client's
 * negotiated version. A successful reply's body is split into lines as it
 * arrives; an error reply's body (bounded) becomes docker's "Error
 * response from daemon: <message>".
 */

#include "cli/client-multi.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cleanup.h"
#include "moat-config.h"

#define BASE_URL "http://api.moby.localhost"
#define ERROR_BODY_MAX (64u * 1024)

struct stream {
        struct moat_client_multi *m;
        size_t key;
        CURL *easy;
        char *url;
        char *buf;             /* an incomplete line, or an error body */
        size_t len;
        bool overflow;
        char errbuf[CURL_ERROR_SIZE];
};

struct moat_client_multi {
        struct moat_client *c;
        CURLM *multi;
        char *socket_path;
        moat_client_line_fn line;
        moat_client_end_fn end;
        void *userdata;
        struct stream *streams[MOAT_CLIENT_MULTI_MAX];
        size_t n;
};

static void stream_free(struct moat_client_multi *m, struct stream *s)
{
        if (!s)
                return;
        if (s->easy) {
                curl_multi_remove_handle(m->multi, s->easy);
                curl_easy_cleanup(s->easy);
        }
        free(s->url);
        free(s->buf);
        free(s);
}

void moat_client_multi_free(struct moat_client_multi *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n; i++)
                stream_free(m, m->streams[i]);
        if (m->multi)
                curl_multi_cleanup(m->multi);
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
        m->multi = curl_multi_init();
        if (!m->socket_path || !m->multi) {
                moat_client_multi_free(m);
                return moat_error_set(reterr, -ENOMEM, "streams");
        }
        *ret = m;
        return 0;
}

static long status_of(struct stream *s)
{
        long status = 0;
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
        return status;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct stream *s = userdata;
        size_t n = size * nmemb;
        long status = status_of(s);

        if (status >= 400) {
                size_t take = s->len + n > ERROR_BODY_MAX ? ERROR_BODY_MAX - s->len : n;
                char *b = realloc(s->buf, s->len + take + 1);
                if (!b)
                        return 0;
                memcpy(b + s->len, data, take);
                s->buf = b;
                s->len += take;
                s->buf[s->len] = 0;
                return n;
        }
        for (size_t p = 0; p < n;) {
                char *nl = memchr(data + p, '\n', n - p);
                size_t piece = nl ? (size_t) (nl - (data + p)) : n - p;
                if (s->len + piece > MOAT_CLIENT_MULTI_LINE_MAX) {
                        s->overflow = true;
                        return 0;
                }
                char *b = realloc(s->buf, s->len + piece + 1);
                if (!b)
                        return 0;
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
        return n;
}

int moat_client_multi_add(struct moat_client_multi *m, size_t key, const char *target, struct moat_error **reterr)
{
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
        s->easy = curl_easy_init();
        if (!s->easy || asprintf(&s->url, "%s/v%s%s", BASE_URL, version, target) < 0) {
                stream_free(m, s);
                return moat_error_set(reterr, -ENOMEM, "stream");
        }
        curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->errbuf);
        curl_easy_setopt(s->easy, CURLOPT_UNIX_SOCKET_PATH, m->socket_path);
        curl_easy_setopt(s->easy, CURLOPT_URL, s->url);
        curl_easy_setopt(s->easy, CURLOPT_USERAGENT, "moat/" MOAT_VERSION " (linux)");
        curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s->easy, CURLOPT_PROTOCOLS_STR, "http");
        if (curl_multi_add_handle(m->multi, s->easy) != CURLM_OK) {
                stream_free(m, s);
                return moat_error_set(reterr, -ENOMEM, "stream");
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
        stream_free(m, s);
}

void moat_client_multi_remove(struct moat_client_multi *m, size_t key)
{
        for (size_t i = 0; i < m->n; i++)
                if (m->streams[i]->key == key) {
                        forget(m, m->streams[i]);
                        return;
                }
}

static void finished(struct moat_client_multi *m, struct stream *s, CURLcode code)
{
        long status = status_of(s);
        _cleanup_free_ char *msg = NULL;
        int r = 0;

        if (status >= 400) {
                json_t *doc = s->buf ? json_loads(s->buf, 0, NULL) : NULL;
                const char *text = json_string_value(json_object_get(doc, "message"));
                r = status == 404 ? -ENOENT : status == 409 ? -EEXIST : status == 400 ? -EINVAL : -EIO;
                if (asprintf(&msg, "Error response from daemon: %s", text ? text : s->buf ? s->buf : "") < 0)
                        msg = NULL;
                json_decref(doc);
        } else if (code == CURLE_COULDNT_CONNECT) {
                r = -ECONNREFUSED;
                if (asprintf(&msg, "Cannot connect to the moat daemon at %s. Is the moat daemon running?",
                             moat_client_host(m->c)) < 0)
                        msg = NULL;
        } else if (s->overflow) {
                r = -EFBIG;
                if (asprintf(&msg, "a line of %s is longer than %u bytes", s->url, MOAT_CLIENT_MULTI_LINE_MAX) < 0)
                        msg = NULL;
        } else if (code != CURLE_OK) {
                r = -EIO;
                if (asprintf(&msg, "%s: %s", s->url, s->errbuf[0] ? s->errbuf : curl_easy_strerror(code)) < 0)
                        msg = NULL;
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

int moat_client_multi_run(struct moat_client_multi *m, int timeout_ms, struct moat_error **reterr)
{
        int64_t deadline = now_ms() + timeout_ms;

        for (;;) {
                int running = 0, left;
                CURLMcode mc = curl_multi_perform(m->multi, &running);
                if (mc != CURLM_OK)
                        return moat_error_setx(reterr, -EIO, "streams: %s", curl_multi_strerror(mc));
                CURLMsg *msg;
                while ((msg = curl_multi_info_read(m->multi, &left)))
                        if (msg->msg == CURLMSG_DONE) {
                                struct stream *s = NULL;
                                curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &s);
                                if (s)
                                        finished(m, s, msg->data.result);
                        }
                int64_t wait = deadline - now_ms();
                if (wait <= 0)
                        return 0;
                mc = curl_multi_poll(m->multi, NULL, 0, (int) wait, NULL);
                if (mc != CURLM_OK)
                        return moat_error_setx(reterr, -EIO, "streams: %s", curl_multi_strerror(mc));
        }
}
