/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * GET /events: Docker's event stream, newline-separated JSON messages,
 * from the engine's event log (engine.h). since/until as docker takes
 * them: Unix seconds with an optional fraction, or RFC 3339. Without until
 * the stream stays open, as `docker events` and `docker stats` expect.
 */

#include "api/routes.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/cleanup.h"
#include "engine/engine.h"

#define EVENTS_PAGE 64

struct events_stream {
        struct moat_engine *e;
        struct moat_engine_events_query q;
        json_t *filters;
        json_t *pending;     /* messages not sent yet */
        size_t next;
        int64_t cursor;
        bool started;
};

static void events_free(void *userdata)
{
        struct events_stream *es = userdata;
        json_decref(es->filters);
        json_decref(es->pending);
        free(es);
}

int moat_api_parse_time(const char *s, int64_t *ret)
{
        char *end;
        struct tm tm = {};
        const char *rest;

        if (!s || !*s) {
                *ret = 0;
                return 0;
        }
        errno = 0;
        double secs = strtod(s, &end);
        if (!errno && *end == '\0' && secs >= 0) {
                *ret = (int64_t) llround(secs * 1e9);
                return 0;
        }
        rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
        if (rest) {
                long nsec = 0, scale = 100000000;
                if (*rest == '.')
                        for (rest++; *rest >= '0' && *rest <= '9'; rest++, scale /= 10)
                                nsec += (*rest - '0') * scale;
                if (*rest != 'Z' && *rest != '\0')
                        return -EINVAL;
                *ret = (int64_t) timegm(&tm) * 1000000000 + nsec;
                return 0;
        }
        return -EINVAL;
}

static ssize_t events_produce(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        struct events_stream *es = userdata;
        struct moat_error *err = NULL;

        for (;;) {
                if (es->pending && es->next < json_array_size(es->pending)) {
                        char *text = json_dumps(json_array_get(es->pending, es->next), JSON_COMPACT);
                        if (!text)
                                return -ENOMEM;
                        size_t len = strlen(text);
                        if (len + 1 > max) {
                                free(text);
                                return -EMSGSIZE;
                        }
                        memcpy(buf, text, len);
                        buf[len] = '\n';
                        free(text);
                        es->next++;
                        return (ssize_t) len + 1;
                }
                json_decref(es->pending);
                es->pending = NULL;
                es->next = 0;
                int64_t before = es->cursor;
                int r = moat_engine_events_next(es->e, &es->q, &es->cursor, &es->started, EVENTS_PAGE, &es->pending,
                                                &err);
                if (r < 0) {
                        moat_error_free(err);
                        return r;
                }
                if (json_array_size(es->pending) > 0 || es->cursor != before)
                        continue;  /* matches, or a page read and filtered away: the next page */
                struct timespec now;
                clock_gettime(CLOCK_REALTIME, &now);
                if (es->q.until_ns > 0 && (int64_t) now.tv_sec * 1000000000 + now.tv_nsec >= es->q.until_ns)
                        return 0;
                /* Nothing new: wait a little, watching the client. */
                r = moat_http_stream_wait(s, -1, 0, 0);
                if (r < 0)
                        return r;
                (void) !moat_engine_events_wait(es->e, es->cursor, 500);
        }
}

static struct moat_http_response *events(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        const char *filters_text = moat_http_request_query(req, "filters");
        struct events_stream *es = calloc(1, sizeof(*es));
        int r;

        if (!es)
                return NULL;
        es->e = userdata;
        const char *since = moat_http_request_query(req, "since");
        if (moat_api_parse_time(since, &es->q.since_ns) < 0 ||
            moat_api_parse_time(moat_http_request_query(req, "until"), &es->q.until_ns) < 0) {
                events_free(es);
                return moat_http_response_error(400, "invalid time: since=%s until=%s",
                                                moat_http_request_query(req, "since") ?: "",
                                                moat_http_request_query(req, "until") ?: "");
        }
        if (filters_text && *filters_text) {
                json_error_t jerr;
                es->filters = json_loads(filters_text, 0, &jerr);
                if (!json_is_object(es->filters)) {
                        events_free(es);
                        return moat_http_response_error(400, "invalid filter: %s", jerr.text);
                }
        }
        r = moat_engine_events_check(es->filters, &err);
        if (r < 0) {
                events_free(es);
                struct moat_http_response *resp = moat_http_response_from_error(r, err);
                moat_error_free(err);
                return resp;
        }
        /* "since 0" is the whole history, not "since now". */
        if (since && *since && es->q.since_ns <= 0)
                es->q.since_ns = 1;
        es->q.filters = es->filters;
        return moat_http_response_stream(200, "application/json", events_produce, es, events_free);
}

int moat_api_register_events(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        return moat_http_router_add(router, "GET", "/events", events, e, NULL, reterr);
}
