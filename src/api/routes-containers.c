/* SPDX-License-Identifier: Apache-2.0 */
#include "base/compat.h"

/*
 * The /containers routes of the Docker Engine API over the engine
 * (engine.h): request parameters in, Docker's status codes and JSON out.
 * Nothing here decides anything about containers.
 *
 * wait answers its headers at once and its body when the condition holds
 * (the docker CLI sends start only after the headers of wait arrived);
 * attach hijacks the connection and relays between the client and the
 * container's monitor, whose stream is already in Docker's framing.
 */

#include "api/routes.h"

#include <errno.h>
#include <poll.h>
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
        struct moat_http_response *resp;

        if (r == -EALREADY)
                resp = moat_http_response_empty(304);
        else
                resp = moat_http_response_from_error(r, err);
        moat_error_free(err);
        return resp;
}

/* Docker's integer query parameters: absent is def; malformed is an error. */
static int query_int(struct moat_http_request *req, const char *key, long def, long *ret, struct moat_error **reterr)
{
        const char *v = moat_http_request_query(req, key);
        char *end;

        if (!v || !*v) {
                *ret = def;
                return 0;
        }
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || *end)
                return moat_error_setx(reterr, -EINVAL, "invalid value for %s: \"%s\" is not an integer", key, v);
        *ret = n;
        return 0;
}

static struct moat_http_response *create(struct moat_http_request *req, void *userdata)
{
        struct moat_engine *e = userdata;
        struct moat_error *err = NULL;
        _cleanup_free_ char *id = NULL;
        json_t *body = NULL, *warnings = NULL;
        int r;

        r = moat_http_request_json(req, &body, &err);
        if (r < 0)
                return error_response(r, err);
        r = moat_engine_create(e, moat_http_request_query(req, "name"), body, &id, &warnings, &err);
        json_decref(body);
        if (r < 0)
                return error_response(r, err);
        /* A moat extension, for moat's own `run -d`: the start in the same
         * request, one round trip fewer. docker's clients never send it,
         * and "Started" in the reply tells the CLI it was done (a daemon
         * without it ignores the parameter). With warnings to show first,
         * the CLI starts it itself. A failed start answers as the start
         * would: the container stays created, as after docker's. */
        const char *then_start = moat_http_request_query(req, "start");
        if (then_start && streq(then_start, "1") && json_array_size(warnings) == 0) {
                r = moat_engine_start(e, id, &err);
                if (r < 0) {
                        json_decref(warnings);
                        return error_response(r, err);
                }
                return moat_http_response_json(
                        201, json_pack("{s:s, s:o, s:b}", "Id", id, "Warnings", warnings, "Started", 1));
        }
        return moat_http_response_json(201, json_pack("{s:s, s:o}", "Id", id, "Warnings", warnings));
}

static struct moat_http_response *start(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_start(userdata, moat_http_request_param(req, "id"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

static struct moat_http_response *stop_or_restart(struct moat_http_request *req, void *userdata, bool restart)
{
        struct moat_error *err = NULL;
        long t;
        int r;

        r = query_int(req, "t", -1, &t, &err);
        if (r < 0)
                return error_response(r, err);
        const char *id = moat_http_request_param(req, "id");
        const char *sig = moat_http_request_query(req, "signal");
        r = restart ? moat_engine_restart(userdata, id, (int) t, sig, &err)
                    : moat_engine_stop(userdata, id, (int) t, sig, &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

static struct moat_http_response *stop(struct moat_http_request *req, void *userdata)
{
        return stop_or_restart(req, userdata, false);
}

static struct moat_http_response *restart(struct moat_http_request *req, void *userdata)
{
        return stop_or_restart(req, userdata, true);
}

static struct moat_http_response *kill_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_kill(userdata, moat_http_request_param(req, "id"),
                                 moat_http_request_query(req, "signal"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

static struct moat_http_response *pause_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_pause(userdata, moat_http_request_param(req, "id"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

static struct moat_http_response *unpause(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_unpause(userdata, moat_http_request_param(req, "id"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

static struct moat_http_response *remove_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_remove(userdata, moat_http_request_param(req, "id"),
                                   moat_http_request_query_bool(req, "force"),
                                   moat_http_request_query_bool(req, "v"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

static struct moat_http_response *rename_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        int r = moat_engine_rename(userdata, moat_http_request_param(req, "id"),
                                   moat_http_request_query(req, "name"), &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(204);
}

/* size=1: SizeRw and SizeRootFs, absent otherwise as docker omits them. A
 * container whose size cannot be read shows 0, as docker logs and goes on. */
static void add_size(struct moat_engine *e, json_t *doc)
{
        const char *id = json_string_value(json_object_get(doc, "Id"));
        int64_t rw = 0, rootfs = 0;

        if (!id || moat_engine_container_size(e, id, &rw, &rootfs, NULL) < 0)
                rw = rootfs = 0;
        json_object_set_new(doc, "SizeRw", json_integer(rw));
        json_object_set_new(doc, "SizeRootFs", json_integer(rootfs));
}

static struct moat_http_response *inspect(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        json_t *doc = NULL;
        int r = moat_engine_inspect(userdata, moat_http_request_param(req, "id"), &doc, &err);
        if (r < 0)
                return error_response(r, err);
        if (moat_http_request_query_bool(req, "size"))
                add_size(userdata, doc);
        return moat_http_response_json(200, doc);
}

static struct moat_http_response *list(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        const char *filters_text = moat_http_request_query(req, "filters");
        json_t *filters = NULL, *out = NULL;
        long limit;
        int r;

        r = query_int(req, "limit", -1, &limit, &err);
        if (r < 0)
                return error_response(r, err);
        if (filters_text && *filters_text) {
                json_error_t jerr;
                filters = json_loads(filters_text, 0, &jerr);
                if (!json_is_object(filters)) {
                        json_decref(filters);
                        return moat_http_response_error(400, "invalid filter: %s", jerr.text);
                }
        }
        r = moat_engine_list(userdata, moat_http_request_query_bool(req, "all"), (int) limit, filters, &out, &err);
        json_decref(filters);
        if (r < 0)
                return error_response(r, err);
        if (moat_http_request_query_bool(req, "size")) {
                size_t i;
                json_t *c;
                json_array_foreach(out, i, c)
                        add_size(userdata, c);
        }
        return moat_http_response_json(200, out);
}

/* ---- wait ---- */

struct wait_stream {
        struct moat_engine_wait *w;
        struct moat_http_stream *s;
        bool done;
};

static bool stream_gone(void *userdata)
{
        struct wait_stream *ws = userdata;
        return moat_http_stream_wait(ws->s, -1, 0, 0) < 0;
}

static ssize_t wait_produce(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        struct wait_stream *ws = userdata;
        _cleanup_free_ char *error = NULL, *text = NULL;
        struct moat_error *err = NULL;
        int status = 0, r;

        if (ws->done)
                return 0;
        ws->s = s;
        r = moat_engine_wait_finish(ws->w, stream_gone, ws, &status, &error, &err);
        moat_error_free(err);
        if (r < 0)
                return r;
        ws->done = true;
        /* A start that failed already told its error (and the CLI prints a
         * wait error as one more line): the wait only carries the code. */
        json_t *doc = json_pack("{s:i, s:n}", "StatusCode", status, "Error");
        text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        if (len + 1 > max)
                return -EMSGSIZE;
        memcpy(buf, text, len);
        buf[len] = '\n';
        return (ssize_t) len + 1;
}

static void wait_stream_free(void *userdata)
{
        struct wait_stream *ws = userdata;
        moat_engine_wait_free(ws->w);
        free(ws);
}

static struct moat_http_response *wait_(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        enum moat_wait_condition cond;
        struct wait_stream *ws;
        int r;

        if (moat_wait_condition_parse(moat_http_request_query(req, "condition"), &cond) < 0)
                return moat_http_response_error(400, "invalid condition: \"%s\"",
                                                moat_http_request_query(req, "condition"));
        ws = calloc(1, sizeof(*ws));
        if (!ws)
                return NULL;
        r = moat_engine_wait_begin(userdata, moat_http_request_param(req, "id"), cond, &ws->w, &err);
        if (r < 0) {
                free(ws);
                return error_response(r, err);
        }
        return moat_http_response_stream(200, "application/json", wait_produce, ws, wait_stream_free);
}

/* ---- attach ---- */

/* logs=1 first replays the json-file log (engine.h's mark and replay),
 * then stream=1 goes on with the live stream; stream=0 ends there, and
 * without stream a container that is not started is not waited for. */

struct attach {
        struct moat_engine *e;
        char *id;
        struct moat_engine_attach *ea;   /* NULL without stream */
        struct moat_engine_attach_options o;
        bool logs, tty;
        struct moat_http_hijack *h;
        uint8_t detach_keys[16];  /* applied with a tty only, as moby does */
        size_t n_detach_keys;
};

static void attach_free(void *userdata)
{
        struct attach *a = userdata;
        moat_engine_attach_free(a->ea);
        free(a->id);
        free(a);
}

static bool hijack_gone(void *userdata)
{
        struct attach *a = userdata;
        /* Readable before the start is a client that closed (or typed
         * ahead): only a server stop cancels here. */
        return moat_http_hijack_wait(a->h, -1, 0, 0) < 0;
}

static int replay_entry(int stream, const char *data, size_t len, void *userdata)
{
        struct attach *a = userdata;
        uint8_t hdr[8] = { (uint8_t) stream, 0, 0, 0, (uint8_t) (len >> 24), (uint8_t) (len >> 16),
                           (uint8_t) (len >> 8), (uint8_t) len };

        if ((stream == 1 && !a->o.stdout_) || (stream == 2 && !a->o.stderr_) || len == 0)
                return 0;
        if (!a->tty && moat_http_hijack_write(a->h, hdr, sizeof(hdr)) < 0)
                return -EPIPE;
        return moat_http_hijack_write(a->h, data, len) < 0 ? -EPIPE : 0;
}

/* ---- joining the replay and the live stream ----
 *
 * A monitor says where its log stood when it registered the connection
 * (moat_engine_log_attach), and the replay ends exactly there. One started
 * by an older moat does not; for it: when the log grew while the attach
 * connected, the entries between the
 * two marks (the window) are partly before and partly after the point
 * where the live stream began. Everything after it was fanned out to this
 * connection before it was logged, so it arrives as the first live bytes:
 * for each stream, the live stream starts with the window's entries from
 * some entry on. The first entry whose rest matches what arrived is the
 * cut; the window is replayed up to the cuts, then the live bytes read so
 * far go out as they came. A line whose start went out before the attach
 * and whose end after it is logged whole after the point: no entry's rest
 * matches, and the window is replayed whole (its end twice). */

#define JOIN_MAX (1u << 20)    /* bytes of the window, and of live bytes read ahead */
#define JOIN_IDLE_MS 200

struct join_entry {
        uint8_t stream;
        size_t off, len;       /* in w[stream] */
};

struct join {
        struct attach *a;
        struct join_entry *v;
        size_t n;
        char *w[3], *l[3];     /* per stream (1 stdout, 2 stderr): the window's bytes, the live bytes */
        size_t wlen[3], llen[3];
        char *live;            /* the live bytes as read, frames and all */
        size_t live_len, parsed;
};

static void join_done(struct join *j)
{
        for (int s = 1; s <= 2; s++) {
                free(j->w[s]);
                free(j->l[s]);
        }
        free(j->v);
        free(j->live);
}

static int append(char **buf, size_t *len, const char *data, size_t n)
{
        char *p = realloc(*buf, *len + n + 1);
        if (!p)
                return -ENOMEM;
        memcpy(p + *len, data, n);
        *buf = p;
        *len += n;
        return 0;
}

static int join_entry(int stream, const char *data, size_t len, void *userdata)
{
        struct join *j = userdata;

        if ((stream == 1 && !j->a->o.stdout_) || (stream == 2 && !j->a->o.stderr_) || len == 0)
                return 0;
        if (j->wlen[1] + j->wlen[2] + len > JOIN_MAX)
                return -E2BIG;
        if (j->n % 64 == 0) {
                struct join_entry *v = reallocarray(j->v, j->n + 64, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                j->v = v;
        }
        j->v[j->n++] = (struct join_entry) { .stream = (uint8_t) stream, .off = j->wlen[stream], .len = len };
        return append(&j->w[stream], &j->wlen[stream], data, len);
}

/* -1: a and b differ; 0: b is a proper prefix of a; 1: a is a prefix of b. */
static int prefix_match(const char *a, size_t alen, const char *b, size_t blen)
{
        if (memcmp(a, b, alen < blen ? alen : blen) != 0)
                return -1;
        return blen >= alen ? 1 : 0;
}

/* Where stream s's live bytes begin in its window bytes: 1 with *ret set,
 * 0 when more live bytes are needed to tell (final: they will not come). */
static int join_cut(const struct join *j, int s, bool final, size_t *ret)
{
        for (size_t i = 0; i < j->n; i++) {
                if (j->v[i].stream != s)
                        continue;
                size_t off = j->v[i].off;
                int m = prefix_match(j->w[s] + off, j->wlen[s] - off, j->l[s], j->llen[s]);
                if (m == 1) {
                        *ret = off;
                        return 1;
                }
                if (m == 0 && !final)
                        return 0;
        }
        *ret = j->wlen[s];
        return 1;
}

static int join_read(struct join *j, int fd)
{
        if (j->live_len == JOIN_MAX)
                return 0;
        if (!j->live && !(j->live = malloc(JOIN_MAX)))
                return -ENOMEM;
        ssize_t n = read(fd, j->live + j->live_len, JOIN_MAX - j->live_len);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 1 : -errno;
        if (n == 0)
                return 0;
        j->live_len += (size_t) n;
        if (j->a->tty)
                return append(&j->l[1], &j->llen[1], j->live + j->live_len - n, (size_t) n) < 0 ? -ENOMEM : 1;
        while (j->live_len - j->parsed >= 8) {
                const uint8_t *h = (const uint8_t *) j->live + j->parsed;
                size_t size = (size_t) h[4] << 24 | (size_t) h[5] << 16 | (size_t) h[6] << 8 | h[7];
                if (j->live_len - j->parsed - 8 < size)
                        break;
                if ((h[0] == 1 || h[0] == 2) && append(&j->l[h[0]], &j->llen[h[0]], (const char *) h + 8, size) < 0)
                        return -ENOMEM;
                j->parsed += 8 + size;
        }
        return 1;
}

/* Replay the window up to the cuts, then the live bytes read ahead. */
static int attach_join(struct attach *a, int fd, struct moat_engine_log_mark *mark, struct moat_engine_log_mark *since)
{
        struct join j = { .a = a };
        size_t cut[3] = { 0, 0, 0 };
        bool final = false;
        int r;

        r = moat_engine_log_replay_since(mark, since, join_entry, &j, NULL);
        if (r < 0) {
                /* A rotation or a flood while connecting: the window is lost. */
                join_done(&j);
                return r == -EPIPE ? r : 0;
        }
        for (;;) {
                bool decided = true;
                for (int s = 1; s <= 2; s++)
                        decided = join_cut(&j, s, final, &cut[s]) == 1 && decided;
                if (decided)
                        break;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = poll(&p, 1, JOIN_IDLE_MS);
                if (k < 0 && errno == EINTR)
                        continue;
                r = k > 0 ? join_read(&j, fd) : 0;
                if (r < 0) {
                        join_done(&j);
                        return r;
                }
                final = r == 0;
        }
        r = 0;
        for (size_t i = 0; i < j.n && r >= 0; i++) {
                const struct join_entry *e = &j.v[i];
                if (e->off < cut[e->stream])
                        r = replay_entry(e->stream, j.w[e->stream] + e->off, e->len, a);
        }
        if (r >= 0 && j.live_len > 0 && moat_http_hijack_write(a->h, j.live, j.live_len) < 0)
                r = -EPIPE;
        join_done(&j);
        return r;
}

static bool attach_running(struct attach *a)
{
        _cleanup_free_ char *path = NULL;
        bool tty, running = true;

        if (moat_engine_log_path(a->e, a->id, &path, &tty, &running, NULL) < 0)
                return true;
        return running;
}

/* Replay up to mark (taken when it is NULL) and free it unless kept;
 * false when the stream is over (the client went away, or the error was
 * said). */
static bool attach_replay(struct attach *a, struct moat_engine_log_mark *mark, bool keep)
{
        struct moat_error *err = NULL;
        int r = 0;

        if (!mark)
                r = moat_engine_log_mark(a->e, a->id, &mark, &err);
        if (r >= 0)
                r = moat_engine_log_replay(mark, replay_entry, a, &err);
        if (!keep)
                moat_engine_log_mark_free(mark);
        if (r < 0 && r != -EPIPE)
                moat_api_stream_message(a->h, a->tty, 3, err && err->msg ? err->msg : "log replay failed");
        moat_error_free(err);
        return r >= 0;
}

static void attach_relay(struct moat_http_hijack *h, void *userdata)
{
        struct attach *a = userdata;
        _cleanup_close_ int mfd = -EBADF;
        struct moat_engine_log_mark *mark = NULL;
        struct moat_error *err = NULL;
        bool tty = a->tty, exact = false;
        int r;

        a->h = h;
        if (a->logs) {
                /* A container that is not running after the mark writes
                 * nothing before this attach connects (its start waits for
                 * it): the mark is where the live stream will begin. */
                r = moat_engine_log_mark(a->e, a->id, &mark, &err);
                if (r < 0) {
                        moat_api_stream_message(h, tty, 3, err && err->msg ? err->msg : "attach failed");
                        moat_error_free(err);
                        return;
                }
                if (!a->ea || !attach_running(a)) {
                        if (!attach_replay(a, TAKE_PTR(mark), false))
                                return;
                }
        }
        if (!a->ea) {
                (void) !moat_http_hijack_close_write(h);
                return;
        }
        if (mark) {
                /* A running one: its monitor says where the log stood when
                 * it registered this connection. */
                r = moat_engine_log_attach(mark, &a->o, &mfd, &tty, &err);
                if (r < 0 && r != -ESRCH) {
                        moat_engine_log_mark_free(mark);
                        moat_api_stream_message(h, tty, 3, err && err->msg ? err->msg : "attach failed");
                        moat_error_free(err);
                        return;
                }
                if (r >= 0) {
                        exact = r > 0;
                        /* Connected: nothing is pending any more. */
                        moat_engine_attach_free(TAKE_PTR(a->ea));
                }
        }
        if (mfd < 0) {
                r = moat_engine_attach_connect(a->ea, hijack_gone, a, &mfd, &tty, &err);
                if (r == -EBUSY && mark) {
                        /* It exited while this connected: all it wrote is in the log now. */
                        moat_engine_log_mark_free(mark);
                        moat_error_free(err);
                        if (attach_replay(a, NULL, false))
                                (void) !moat_http_hijack_close_write(h);
                        return;
                }
                if (r < 0) {
                        moat_engine_log_mark_free(mark);
                        /* After the 101 the only way to say it is in the stream. */
                        moat_api_stream_message(h, tty, 3, err && err->msg ? err->msg : "attach failed");
                        moat_error_free(err);
                        return;
                }
        }
        if (mark && exact) {
                if (!attach_replay(a, TAKE_PTR(mark), false))
                        return;
        } else if (mark) {
                /* A monitor that did not say: join by content. */
                bool quiet = moat_engine_log_mark_current(mark);
                if (!attach_replay(a, mark, !quiet)) {
                        if (!quiet)
                                moat_engine_log_mark_free(mark);
                        return;
                }
                if (!quiet) {
                        struct moat_engine_log_mark *now = NULL;
                        r = moat_engine_log_mark(a->e, a->id, &now, NULL);
                        if (r >= 0)
                                r = attach_join(a, mfd, now, mark);
                        moat_engine_log_mark_free(now);
                        moat_engine_log_mark_free(mark);
                        if (r < 0)
                                return;
                }
        }
        if (moat_api_relay_detach(h, mfd, a->o.stdin_, a->detach_keys, tty ? a->n_detach_keys : 0))
                (void) !moat_engine_event_detach(a->e, a->id, NULL, NULL);
}

static struct moat_http_response *attach(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        _cleanup_free_ char *id = NULL;
        json_t *doc = NULL;
        int r;

        /* Resolve now so a missing container is a 404, not a broken stream. */
        r = moat_engine_resolve(userdata, moat_http_request_param(req, "id"), &id, &err);
        if (r < 0)
                return error_response(r, err);
        r = moat_engine_inspect(userdata, id, &doc, &err);
        if (r < 0)
                return error_response(r, err);
        bool tty = json_is_true(json_object_get(json_object_get(doc, "Config"), "Tty"));
        json_decref(doc);
        struct attach *a = calloc(1, sizeof(*a));
        if (!a)
                return NULL;
        a->e = userdata;
        a->id = TAKE_PTR(id);
        a->tty = tty;
        a->logs = moat_http_request_query_bool(req, "logs");
        const char *keys = moat_http_request_query(req, "detachKeys");
        if (strempty(keys)) {
                a->detach_keys[0] = 0x10; /* ctrl-p,ctrl-q */
                a->detach_keys[1] = 0x11;
                a->n_detach_keys = 2;
        } else {
                r = moat_api_detach_keys_parse(keys, a->detach_keys, sizeof(a->detach_keys), &a->n_detach_keys,
                                               &err);
                if (r < 0) {
                        attach_free(a);
                        return error_response(r, err);
                }
        }
        a->o = (struct moat_engine_attach_options) {
                .stdin_ = moat_http_request_query_bool(req, "stdin"),
                .stdout_ = moat_http_request_query_bool(req, "stdout"),
                .stderr_ = moat_http_request_query_bool(req, "stderr"),
        };
        if (moat_http_request_query_bool(req, "stream")) {
                r = moat_engine_attach_begin(userdata, a->id, &a->o, &a->ea, &err);
                if (r < 0) {
                        attach_free(a);
                        return error_response(r, err);
                }
        }
        const char *ct = !tty && moat_http_request_version_ge(req, 1, 42) ? "application/vnd.docker.multiplexed-stream"
                                                                            : "application/vnd.docker.raw-stream";
        return moat_http_response_hijack(ct, attach_relay, a, attach_free);
}

static struct moat_http_response *resize(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        long h, w;
        int r;

        r = query_int(req, "h", 0, &h, &err);
        if (r >= 0)
                r = query_int(req, "w", 0, &w, &err);
        if (r >= 0 && (h < 0 || w < 0 || h > 65535 || w > 65535))
                r = moat_error_setx(&err, -EINVAL, "invalid terminal size %ldx%ld", h, w);
        if (r >= 0)
                r = moat_engine_resize(userdata, moat_http_request_param(req, "id"), (unsigned) h, (unsigned) w, &err);
        return r < 0 ? error_response(r, err) : moat_http_response_empty(200);
}

/* ---- stats ---- */

struct stats_stream {
        struct moat_engine *e;
        char *id;
        bool stream, one_shot, done;
        json_t *prev;
};

/* The engine's sample of a container that is not running is docker's
 * zeroed one, read at the zero time. */
static bool sample_running(const json_t *doc)
{
        const char *read = json_string_value(json_object_get(doc, "read"));
        return read && !startswith(read, "0001-01-01");
}

static void stats_free(void *userdata)
{
        struct stats_stream *ss = userdata;
        json_decref(ss->prev);
        free(ss->id);
        free(ss);
}

static ssize_t stats_line(json_t *doc, char *buf, size_t max)
{
        char *text = json_dumps(doc, JSON_COMPACT);
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
        return (ssize_t) len + 1;
}

/* Docker: a sample a second while streaming (a container that is not
 * running gives the empty one, as moby's collector publishes it); without
 * streaming one sample taken a second after a first, so precpu_stats is
 * filled (the CLI's CPU percentage needs both), unless one-shot or the
 * container is not running (moby answers its empty sample at once). */
static ssize_t stats_produce(struct moat_http_stream *s, void *userdata, char *buf, size_t max)
{
        struct stats_stream *ss = userdata;
        struct moat_error *err = NULL;
        json_t *doc = NULL;
        int r;

        if (ss->done)
                return 0;
        if (ss->prev) {
                r = moat_http_stream_wait(s, -1, 0, 1000);
                if (r < 0)
                        return r;
        }
        r = moat_engine_stats(ss->e, ss->id, ss->prev, &doc, &err);
        moat_error_free(err);
        /* Removed: the stream ends, cleanly (the last chunk is sent). */
        if (r == -ENOENT && ss->prev)
                return 0;
        if (r < 0)
                return r;
        if (!ss->stream && !ss->one_shot && !ss->prev && sample_running(doc)) {
                ss->prev = doc;
                r = moat_http_stream_wait(s, -1, 0, 1000);
                if (r < 0)
                        return r;
                r = moat_engine_stats(ss->e, ss->id, ss->prev, &doc, NULL);
                if (r < 0)
                        return r;
        }
        if (!ss->stream)
                ss->done = true;
        /* As dockerd's collector does, a stream goes on after its container
         * stopped, with empty samples; it ends when the container is removed
         * (moat_engine_stats fails). */
        json_decref(ss->prev);
        ss->prev = json_incref(doc);
        ssize_t n = stats_line(doc, buf, max);
        json_decref(doc);
        return n;
}

static struct moat_http_response *stats(struct moat_http_request *req, void *userdata)
{
        struct moat_error *err = NULL;
        _cleanup_free_ char *id = NULL;
        const char *stream = moat_http_request_query(req, "stream");
        int r;

        r = moat_engine_resolve(userdata, moat_http_request_param(req, "id"), &id, &err);
        if (r < 0)
                return error_response(r, err);
        struct stats_stream *ss = calloc(1, sizeof(*ss));
        if (!ss)
                return NULL;
        ss->e = userdata;
        ss->id = TAKE_PTR(id);
        ss->stream = !stream || moat_http_request_query_bool(req, "stream");
        ss->one_shot = moat_http_request_query_bool(req, "one-shot");
        if (ss->stream && ss->one_shot) {
                stats_free(ss);
                return moat_http_response_error(400, "cannot have stream=true and one-shot=true");
        }
        return moat_http_response_stream(200, "application/json", stats_produce, ss, stats_free);
}

int moat_api_register_containers(struct moat_http_router *router, struct moat_engine *e, struct moat_error **reterr)
{
        static const struct {
                const char *method, *pattern;
                moat_http_handler_fn fn;
        } routes[] = {
                { "POST", "/containers/create", create },
                { "GET", "/containers/json", list },
                { "GET", "/containers/{id}/json", inspect },
                { "POST", "/containers/{id}/start", start },
                { "POST", "/containers/{id}/stop", stop },
                { "POST", "/containers/{id}/restart", restart },
                { "POST", "/containers/{id}/kill", kill_ },
                { "POST", "/containers/{id}/pause", pause_ },
                { "POST", "/containers/{id}/unpause", unpause },
                { "POST", "/containers/{id}/rename", rename_ },
                { "POST", "/containers/{id}/wait", wait_ },
                { "POST", "/containers/{id}/attach", attach },
                { "POST", "/containers/{id}/resize", resize },
                { "GET", "/containers/{id}/stats", stats },
                { "DELETE", "/containers/{id}", remove_ },
        };
        for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
                int r = moat_http_router_add(router, routes[i].method, routes[i].pattern, routes[i].fn, e, NULL,
                                             reterr);
                if (r < 0)
                        return r;
        }
        return 0;
}
